#!/usr/bin/env bash
# The operator console in a real browser: Debian's chromium driven by playwright-core (both
# installed here when missing; playwright-core into tests/browser/node_modules, ignored by
# git). Starts `neuronx serve` on a temporary database with an operator and a lead, then runs
# tests/browser/console.mjs: sign in, find the lead, click pause, see the paused badge appear
# live, check through the API. Screenshots go to target/artifacts/; with
# NEURONX_UPDATE_DOC_IMAGES=1 also to docs/images/ for the operator guide (off by default, so a
# test run leaves the work tree clean).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
apt_ready=0
apt_install() {
  if [ "$apt_ready" = 0 ]; then apt-get update -qq; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v chromium >/dev/null || { log "installing chromium"; apt_install chromium; }
command -v node >/dev/null || { log "installing node"; apt_install nodejs npm; }
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  log "installing playwright-core"
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi

source scripts/temp-server.sh

api() { curl -fsS -H "Authorization: Bearer $OWNER_KEY" -H 'content-type: application/json' "$@"; }
api -X POST "$BASE/v1/teams" -d '{"name": "west"}' >/dev/null
api -X POST "$BASE/v1/principals" -d '{"name": "ana", "role": "operator", "team": "west"}' >/dev/null
api -X POST "$BASE/v1/principals" -d '{"name": "bo", "role": "operator", "team": "west"}' >/dev/null
OPERATOR_KEY=$(api -X POST "$BASE/v1/keys" -d '{"name": "ana (console)", "role": "operator", "principal": "ana"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
for lead in "Ana Lima:+14155550100" "Rui Costa:+14155550101"; do
  name=${lead%%:*} phone=${lead##*:}
  api -X POST "$BASE/v1/opportunities" -d "{\"external_id\": \"$phone\", \"team\": \"west\",
    \"contact\": {\"name\": \"$name\", \"phone\": \"$phone\", \"timezone\": \"America/Los_Angeles\",
    \"consent\": {\"voice\": true, \"sms\": true}}, \"sla\": {\"first_touch_seconds\": 900}}" >/dev/null
done

mkdir -p "${CARGO_TARGET_DIR:-target}/artifacts"
doc_images=""
[ "${NEURONX_UPDATE_DOC_IMAGES:-0}" = 1 ] && doc_images=docs/images
log "console in chromium"
BASE="$BASE" KEY="$OPERATOR_KEY" CHROMIUM="$(command -v chromium)" \
  ARTIFACTS="${CARGO_TARGET_DIR:-target}/artifacts" DOC_IMAGES="$doc_images" \
  node tests/browser/console.mjs
