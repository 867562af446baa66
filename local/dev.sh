#!/usr/bin/env bash
# `make dev`: provision template.yaml's resources in the running emulator, then serve every
# function with cargo lambda watch on 127.0.0.1:9000 (invoke them with `cargo lambda invoke`).
set -euo pipefail
: "${STATE_DIR:?}" "${CARGO_LAMBDA:?}"
mkdir -p "$STATE_DIR"
env_file="$STATE_DIR/dev.env"
echo "[1/2] provisioning resources from template.yaml"
cargo run --quiet -p local-stack --bin local-stack -- provision --prefix dev --env-file "$env_file"
cat <<TOUR
[2/2] serving functions with cargo lambda watch on http://127.0.0.1:9000 (environment: $env_file)
Try, in another terminal:
  cargo lambda invoke items-api --invoke-address 127.0.0.1 --invoke-port 9000 --data-file events/items-api/create.json
  cargo lambda invoke items-api --invoke-address 127.0.0.1 --invoke-port 9000 --data-file events/items-api/list.json
  cargo lambda invoke items-stream --invoke-address 127.0.0.1 --invoke-port 9000 --data-file events/items-stream/changes.json
  cargo lambda invoke presigner --invoke-address 127.0.0.1 --invoke-port 9000 --data-file events/presigner/create-upload.json
  cargo lambda invoke chat-put --invoke-address 127.0.0.1 --invoke-port 9000 --data-file events/chat-put/post-message.json
  cargo lambda invoke chat-get --invoke-address 127.0.0.1 --invoke-port 9000 --data-file events/chat-get/history.json
  cargo lambda invoke approval-api --invoke-address 127.0.0.1 --invoke-port 9000 --data-file events/approval-api/start.json
  cargo lambda invoke appointments-api --invoke-address 127.0.0.1 --invoke-port 9000 --data-file events/appointments-api/create.json
(cargo lambda is .venv-sam/bin/cargo-lambda if it is not on your PATH.)
Ctrl-C stops the functions and the emulator.
TOUR
"$CARGO_LAMBDA" lambda watch --invoke-address 127.0.0.1 --invoke-port 9000 --env-file "$env_file"
