#!/usr/bin/env bash
# Runs a command against a fresh local AWS emulator (moto server) on a free loopback port, then
# stops the emulator, whatever the command's outcome. Used by `make test`.
#   local/with-emulator.sh <moto_server> <log file> -- command args...
set -euo pipefail
moto_server=$1
log=$2
shift 3

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$(dirname "$log")"
"$moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/data.json" 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "emulator failed to start; see $log" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/data.json" || { echo "emulator not ready after 20 s; see $log" >&2; exit 1; }
# Step Functions executions really run in the emulator (needed by the approval workflow tests).
curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"stepfunctions": {"execute_state_machine": true}}' "http://127.0.0.1:$port/moto-api/config"

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
echo "emulator: $AWS_ENDPOINT_URL (log: $log)"
"$@"
