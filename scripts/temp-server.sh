# Sourced by the checks that drive a real server (scripts/schemathesis.sh, scripts/browser.sh):
# builds `neuronx`, starts `neuronx serve` on a temporary SQLite database and a free port, and
# creates a tenant. Sets BASE (http://127.0.0.1:PORT), OWNER_KEY and TEMP_DIR; stops the server
# and removes the folder on exit.

target=${CARGO_TARGET_DIR:-target}
cargo build --locked -q --bin neuronx
NEURONX_BIN="$target/debug/neuronx"
TEMP_DIR=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export NEURONX_DATABASE_URL="sqlite://$TEMP_DIR/neuronx.db" NEURONX_LISTEN="127.0.0.1:$port" NEURONX_LOG=warn \
  NEURONX_PUBLIC_URL="http://127.0.0.1:$port"
BASE="http://127.0.0.1:$port"
OWNER_KEY=$("$NEURONX_BIN" tenant create checks | python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
"$NEURONX_BIN" serve 2>"$TEMP_DIR/serve.log" &
server_pid=$!
stop_temp_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$TEMP_DIR"
}
trap stop_temp_server EXIT
for _ in $(seq 1 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
