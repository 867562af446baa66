#!/usr/bin/env bash
# `make dev`: the whole system against a fresh local emulator. local-stack provisions
# template.yaml's resources, builds and runs every function as a Lambda Runtime API process,
# serves the REST and WebSocket APIs on 127.0.0.1:$DEV_PORT and the web app on
# 127.0.0.1:$DEV_WEB_PORT, and runs the event sources and pipes.
set -euo pipefail
: "${STATE_DIR:?}" "${MOTO:?}" "${DEV_PORT:?}" "${DEV_WEB_PORT:=3001}"
mkdir -p "$STATE_DIR"
state="$STATE_DIR/dev.json"

# One at a time: a second `make dev` says where the first one is instead of fighting over ports.
if [[ -f $state ]]; then
  pid=$(grep -o '"pid": *[0-9]*' "$state" | grep -o '[0-9]*$' || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    gateway=$(grep -o '"gateway": *"[^"]*"' "$state" | cut -d'"' -f4)
    echo "make dev is already running (pid $pid, $gateway). Stop it with Ctrl-C in its terminal." >&2
    exit 1
  fi
fi

echo "building the local stack (cargo build -p local-stack)"
cargo build --quiet --locked -p local-stack --bin local-stack
exec local/with-emulator.sh "$MOTO" "$STATE_DIR/emulator-dev.log" -- \
  cargo run --quiet --locked -p local-stack --bin local-stack -- \
  dev --port "$DEV_PORT" --web-port "$DEV_WEB_PORT" --state-file "$state" ${DEV_ARGS:-}
