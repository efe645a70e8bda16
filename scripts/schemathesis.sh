#!/usr/bin/env bash
# Fuzzes the API from its own OpenAPI document (`/openapi.json`): `neuronx serve` on a
# temporary SQLite database, called with a tenant owner's key. Schemathesis must find no 5xx
# and no response that breaks the document's schema. Bounded by SCHEMATHESIS_MAX_EXAMPLES per
# operation (default 25) and a fixed seed. Installs schemathesis into a virtualenv under the
# target folder when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
target=${CARGO_TARGET_DIR:-target}
venv="$target/schemathesis-venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
  log "installing schemathesis"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q schemathesis
fi

cargo build --locked -q --bin neuronx
bin="$target/debug/neuronx"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export NEURONX_DATABASE_URL="sqlite://$dir/schemathesis.db" NEURONX_LISTEN="127.0.0.1:$port" NEURONX_LOG=warn
key=$("$bin" tenant create schemathesis | python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
"$bin" serve 2>"$dir/serve.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

log "schemathesis against http://127.0.0.1:$port/openapi.json"
status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,response_schema_conformance \
  -H "Authorization: Bearer $key" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" --seed 1 \
  --phases examples,coverage,fuzzing --workers 1 --request-timeout 10 || status=$?
if [ "$status" != 0 ] && [ -s "$dir/serve.log" ]; then
  log "server log:"; tail -n 50 "$dir/serve.log" >&2
fi
exit "$status"
