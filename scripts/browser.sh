#!/usr/bin/env bash
# The console in a real browser: Debian's chromium driven by playwright-core, with axe-core
# (installed here when missing; the npm packages into tests/browser/node_modules, ignored by
# git). Starts `neuronx serve` on a temporary database and `neuronx carrier-sim` as the
# tenant's Twilio (every lead answers in person; rep cara's phone presses 1), with an operator,
# rep cara (away) and two leads, then runs tests/browser/console.mjs: the operator pauses a
# lead live; cara sees a lead arrive in her queue, sets herself available, clicks call now and
# sees the conversation when the simulator bridges it; axe-core and a 375 px screen on every
# page, light and dark. Nothing here touches a shared database. Screenshots go to
# target/artifacts/; with
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
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  log "installing playwright-core and axe-core"
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi

# Sealing the tenant's Twilio token needs a key; the simulator calls back our public URL.
NEURONX_SECRET_KEYS="browser:$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
# The simulator on this machine is a host the tenant supplies: let loopback through.
export NEURONX_SECRET_KEYS NEURONX_OUTBOUND_ALLOW="127.0.0.0/8"
# The rep's lead lives in a fixed area code and must be called whenever this runs: every hour
# open (the gate holds a call to the area code's own zone).
export NEURONX_COMPLIANCE__RULES_FILE="$PWD/tests/fixtures/compliance-all-day.toml"
source scripts/temp-server.sh

sim_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$TEMP_DIR/sim.toml" <<'TOML'
[outcome_mix]
answered = 1
voicemail = 0
no_answer = 0
busy = 0
failed = 0

[flow.digits]
"+14155550201" = ["1"]
TOML
"$NEURONX_BIN" carrier-sim --listen "127.0.0.1:$sim_port" --sim-config "$TEMP_DIR/sim.toml" 2>"$TEMP_DIR/sim.log" &
sim_pid=$!
stop_all() {
  kill "$sim_pid" 2>/dev/null || true
  wait "$sim_pid" 2>/dev/null || true
  stop_temp_server
}
trap stop_all EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$sim_port/sim/stats" >/dev/null 2>&1 && break
  sleep 0.1
done

api() { curl -fsS -H "Authorization: Bearer $OWNER_KEY" -H 'content-type: application/json' "$@"; }
api -X POST "$BASE/v1/teams" -d '{"name": "west"}' >/dev/null
api -X POST "$BASE/v1/principals" -d '{"name": "ana", "role": "operator", "team": "west"}' >/dev/null
api -X POST "$BASE/v1/principals" -d '{"name": "bo", "role": "operator", "team": "west"}' >/dev/null
OPERATOR_KEY=$(api -X POST "$BASE/v1/keys" -d '{"name": "ana (console)", "role": "operator", "principal": "ana"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
api -X POST "$BASE/v1/principals" -d '{"name": "cara", "role": "operator", "team": "west"}' >/dev/null
api -X PUT "$BASE/v1/principals/cara/rep" -d '{"phone": "+14155550201", "time_zone": "America/New_York"}' >/dev/null
api -X POST "$BASE/v1/principals/cara/status" -d '{"status": "away"}' >/dev/null
REP_KEY=$(api -X POST "$BASE/v1/keys" -d '{"name": "cara (console)", "role": "operator", "principal": "cara", "team": "west"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
for lead in "Ana Lima:+14155550100" "Rui Costa:+14155550101"; do
  name=${lead%%:*} phone=${lead##*:}
  api -X POST "$BASE/v1/opportunities" -d "{\"external_id\": \"$phone\", \"team\": \"west\",
    \"contact\": {\"name\": \"$name\", \"phone\": \"$phone\", \"timezone\": \"America/Los_Angeles\",
    \"consent\": {\"voice\": true, \"sms\": true}}, \"sla\": {\"first_touch_seconds\": 900}}" >/dev/null
done

# The simulator is the tenant's Twilio from here on: the leads above were made without one.
api -X PUT "$BASE/v1/channels/twilio" -d "{\"account_sid\": \"ACfeedfacefeedfacefeedfacefeedface\",
  \"auth_token\": \"sim-auth-token\", \"from_number\": \"+14155550000\",
  \"base_url\": \"http://127.0.0.1:$sim_port\"}" >/dev/null

mkdir -p "${CARGO_TARGET_DIR:-target}/artifacts"
doc_images=""
[ "${NEURONX_UPDATE_DOC_IMAGES:-0}" = 1 ] && doc_images=docs/images
log "console in chromium"
BASE="$BASE" KEY="$OPERATOR_KEY" REP_KEY="$REP_KEY" OWNER_KEY="$OWNER_KEY" CHROMIUM="$(command -v chromium)" \
  ARTIFACTS="${CARGO_TARGET_DIR:-target}/artifacts" DOC_IMAGES="$doc_images" \
  node tests/browser/console.mjs
