#!/usr/bin/env bash
# The whole test suite: starts (and if need be installs) PostgreSQL and Redis on loopback,
# then checks formatting and lints, and runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_ready=0
apt_install() {
  if [ "$apt_ready" = 0 ]; then as_root apt-get update -qq; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_up; then return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql postgresql-client
    local hba
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
    # A test server on loopback only: trust local connections, as the CI machine does.
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting PostgreSQL"
  local version
  version=$(ls /etc/postgresql | head -n1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_up && return; sleep 0.5; done
  log "PostgreSQL did not start"; exit 1
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  if ! command -v redis-server >/dev/null; then
    log "installing Redis"
    apt_install redis-server
  fi
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 60); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return; sleep 0.5; done
  log "Redis did not start"; exit 1
}

ensure_postgres
ensure_redis
export NEURONX_TEST_PG_URL="${NEURONX_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Each test makes its own database (nx_e2e_*, nx_t_*); drop those left by earlier runs.
psql "$NEURONX_TEST_PG_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'nx\_%'" 2>/dev/null |
  while read -r db; do psql "$NEURONX_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
out=$(mktemp); trap 'rm -f "$out"' EXIT
# --all-targets: unit, integration and bench targets (this workspace has no doc tests).
set +e
cargo test --workspace --all-targets --locked 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
# Checks outside cargo, each counted as one test: the API fuzzed from its OpenAPI document,
# and the operator console in a real browser.
extra_passed=0 extra_failed=0
for check in scripts/schemathesis.sh scripts/browser.sh; do
  log "$check"
  if "$check"; then extra_passed=$((extra_passed + 1)); else extra_failed=$((extra_failed + 1)); status=1; fi
done
set -e
awk -v xp="$extra_passed" -v xf="$extra_failed" \
  '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p + xp, f + xf }' "$out"
exit "$status"
