#!/usr/bin/env bash
# The end-to-end suite in its deployed-stack mode (what `make e2e-aws STACK=...` runs), rehearsed
# on a fresh local stack: a state file in the deployed shape (target "aws", the stack's name) and
# the default credentials chain (AWS_ENDPOINT_URL: the emulator's gate) instead of the local
# stack's own. Proves the skips and the deployed paths work without an account; the real state
# file comes from local/tools/stack_state.py (tested against moto's CloudFormation).
# Run inside local/with-emulator.sh (make e2e-aws-rehearsal).
set -euo pipefail
work=$(mktemp -d)
trap 'kill "$stack_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
prefix="rehearsal$RANDOM"
mkfifo "$work/stdin"
target/debug/local-stack dev --port 0 --prefix "$prefix" --state-file "$work/local.json" \
  --exit-with-stdin < "$work/stdin" > "$work/stack.log" 2>&1 &
stack_pid=$!
exec 3> "$work/stdin"
for _ in $(seq 1 900); do
  [ -s "$work/local.json" ] && break
  kill -0 "$stack_pid" 2>/dev/null || { tail -40 "$work/stack.log"; exit 1; }
  sleep 1
done
python3 - "$work/local.json" "$prefix" > "$work/deployed.json" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
state.update(target="aws", stack=sys.argv[2], region="us-east-1")
json.dump(state, sys.stdout)
PY
E2E_STACK_STATE="$work/deployed.json" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_REGION=us-east-1 cargo test --locked -p local-stack --test e2e -- --test-threads 4
