#!/usr/bin/env bash
# `make fuzz`: the local stack (as `make dev` runs it) on a free port, then schemathesis over every
# operation of docs/openapi.yaml, positive and negative cases. Passes only with no 5xx, no response
# outside the document, and no function process that crashed or timed out.
#   run inside local/with-emulator.sh; FUZZ_EXAMPLES cases per operation and phase (default 300).
set -euo pipefail
: "${SCHEMATHESIS:?}" "${STATE_DIR:?}"
examples=${FUZZ_EXAMPLES:-300}
mkdir -p "$STATE_DIR"
state="$STATE_DIR/fuzz-stack.json"
log="$STATE_DIR/fuzz-stack.log"
rm -f "$state"

cargo build --quiet --locked -p local-stack --bin local-stack
cargo run --quiet --locked -p local-stack --bin local-stack -- \
  dev --port 0 --prefix "fuzz$RANDOM" --state-file "$state" >"$log" 2>&1 &
stack=$!
trap 'kill -INT "$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true' EXIT
echo "starting the local stack (log: $log)"
for _ in $(seq 1 3600); do
  [[ -s $state ]] && break
  kill -0 "$stack" 2>/dev/null || { tail -20 "$log"; echo "the local stack exited" >&2; exit 1; }
  sleep 0.5
done
url=$(grep -o '"gateway": *"[^"]*"' "$state" | cut -d'"' -f4)
key=$(grep -o '"api_key": *"[^"]*"' "$state" | cut -d'"' -f4)
# A signed-in person: the cases reach the functions behind the authorizer.
token=$(target/debug/local-stack token --state-file "$state" --name Fuzz)
echo "fuzzing $url with $examples examples per operation"

"$SCHEMATHESIS" run docs/openapi.yaml --url "$url" --header "x-api-key: $key" \
  --header "authorization: $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
  --mode all --max-examples "$examples" --seed 20261121 --workers 2 \
  --suppress-health-check all --report junit --report-dir "$STATE_DIR/fuzz-report"

exits=$(curl -fsS "$url/_local/health" | grep -o '"unexpected_exits": *[0-9]*' | grep -o '[0-9]*$')
echo "function processes that crashed or timed out: $exits"
[[ $exits == 0 ]]
