#!/usr/bin/env bash
# Runs a command against a fresh local AWS emulator (moto server) behind the IAM gate, each on a
# free loopback port, then stops both, whatever the command's outcome. Used by `make test`,
# `make dev`, `make fuzz`.
#   local/with-emulator.sh <moto_server> <log file> -- command args...
# The command sees AWS_ENDPOINT_URL = the gate (local-stack gate): every principal's request is
# checked against its role's policies there before it reaches moto. moto runs with MOTO_PORT set
# to the gate's port, so the calls its Step Functions makes for a state machine pass the gate
# too. IAM_AUDIT (default: the log's name with .iam-audit.jsonl) receives one JSON line per decision.
set -euo pipefail
moto_server=$1
log=$2
shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
gate_bin=${LOCAL_STACK_BIN:-$root/target/debug/local-stack}
audit=${IAM_AUDIT:-${log%.log}.iam-audit.jsonl}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
gate_port=$(free_port)
while [[ $gate_port == "$port" ]]; do gate_port=$(free_port); done
mkdir -p "$(dirname "$log")"
# The deployer's token: provisioning, the tests' own assertions and the local gateway send it
# to register roles and reach the emulator's own API; function processes never see it.
export LOCAL_GATE_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
[[ -x $gate_bin ]] || { echo "the IAM gate binary $gate_bin is missing: cargo build -p local-stack --bin local-stack" >&2; exit 1; }
MOTO_PORT=$gate_port "$moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
: >"$audit"
"$gate_bin" gate --port "$gate_port" --emulator "http://127.0.0.1:$port" --audit "$audit" 2>>"$log.gate" &
gate_pid=$!
trap 'kill "$pid" "$gate_pid" 2>/dev/null || true; wait "$pid" "$gate_pid" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/data.json" 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "emulator failed to start; see $log" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/data.json" || { echo "emulator not ready after 20 s; see $log" >&2; exit 1; }
# Step Functions executions really run in the emulator (needed by the approval workflow tests).
curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"stepfunctions": {"execute_state_machine": true}}' "http://127.0.0.1:$port/moto-api/config"
for _ in $(seq 1 50); do
  if curl -fsS -o /dev/null -H "x-local-gate-token: $LOCAL_GATE_TOKEN" "http://127.0.0.1:$gate_port/moto-api/data.json" 2>/dev/null; then break; fi
  if ! kill -0 "$gate_pid" 2>/dev/null; then echo "IAM gate failed to start; see $log.gate" >&2; exit 1; fi
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$gate_port"
# The deployer's credentials (CloudFormation, the operator, test assertions): not checked.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export EMULATOR_DIRECT_URL="http://127.0.0.1:$port"
echo "emulator: $AWS_ENDPOINT_URL (IAM gate; moto at $EMULATOR_DIRECT_URL; log: $log; IAM audit: $audit)"
"$@"
