#!/usr/bin/env bash
# Fuzzes the API from its own OpenAPI document (`/openapi.json`): `neuronx serve` on a
# temporary SQLite database, called with a tenant owner's key. Schemathesis must find no 5xx
# and no response that breaks the document's schema. Bounded by SCHEMATHESIS_MAX_EXAMPLES per
# operation (default 25) and a fixed seed. Installs schemathesis into a virtualenv under the
# target folder when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
venv="${CARGO_TARGET_DIR:-target}/schemathesis-venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
  log "installing schemathesis"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q schemathesis
fi

source scripts/temp-server.sh

log "schemathesis against $BASE/openapi.json"
status=0
"$venv/bin/schemathesis" run "$BASE/openapi.json" \
  --checks not_a_server_error,response_schema_conformance \
  -H "Authorization: Bearer $OWNER_KEY" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" --seed 1 \
  --phases examples,coverage,fuzzing --workers 1 --request-timeout 10 || status=$?
if [ "$status" != 0 ] && [ -s "$TEMP_DIR/serve.log" ]; then
  log "server log:"; tail -n 50 "$TEMP_DIR/serve.log" >&2
fi
exit "$status"
