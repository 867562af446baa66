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
  cargo lambda invoke items-api --invoke-port 9000 --data-file events/items-api/create.json
  cargo lambda invoke items-api --invoke-port 9000 --data-file events/items-api/list.json
  cargo lambda invoke items-stream --invoke-port 9000 --data-file events/items-stream/changes.json
Ctrl-C stops the functions and the emulator.
TOUR
"$CARGO_LAMBDA" lambda watch --invoke-address 127.0.0.1 --invoke-port 9000 --env-file "$env_file"
