#!/usr/bin/env bash
# The whole test suite: starts (and if need be installs) PostgreSQL and Redis on loopback and
# installs aiosmtpd (the notification tests' SMTP server, which they start themselves),
# then checks formatting and lints, runs every test in the workspace with cargo-nextest (each
# test in a process of its own, all of them whatever fails, every failure listed at the end;
# .config/nextest.toml), then the API fuzzing and browser checks. Prints each stage's wall
# time, the total, and last a line `tests: N passed, N failed` alone; exits non-zero on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

# Wall time of each stage: `stage NAME` starts one (ending the one before), `stage` alone ends
# the last.
started=$SECONDS stage_name="" stage_started=0 times=()
stage() {
  if [ -n "$stage_name" ]; then
    local took=$((SECONDS - stage_started))
    log "$stage_name: $took s"
    times+=("$stage_name $took s")
  fi
  stage_name=${1:-} stage_started=$SECONDS
  if [ -n "$stage_name" ]; then log "$stage_name"; fi
}
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

# Python's aiosmtpd, the SMTP server the notification tests start on loopback
# (tests/common/smtp.rs runs tests/fixtures/smtp_sink.py with it), in a virtualenv of its own.
ensure_aiosmtpd() {
  local venv="${CARGO_TARGET_DIR:-target}/aiosmtpd-venv"
  if ! "$venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
    log "installing aiosmtpd"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q aiosmtpd
  fi
  NEURONX_TEST_SMTP_PYTHON="$(cd "$venv/bin" && pwd)/python"
  export NEURONX_TEST_SMTP_PYTHON
}

stage "services"
ensure_postgres
ensure_redis
ensure_aiosmtpd
export NEURONX_TEST_PG_URL="${NEURONX_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Each test makes its own database (nx_e2e_*, nx_t_*) and drops it when it ends; a test killed
# from outside (a timeout) cannot, so drop those left by earlier runs.
leftovers() {
  psql "$NEURONX_TEST_PG_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'nx\_%'" 2>/dev/null
}
leftovers | while read -r db; do
  psql "$NEURONX_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
done

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

stage "cargo nextest"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# --all-targets: unit, integration and bench targets (this workspace has no doc tests).
# --no-fail-fast: every test runs, whatever fails before it. The ci profile prints each
# failure's output as it happens and again at the end, after the summary's list of failures.
set +e
cargo nextest run --profile ci --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$out"
nextest_status=${PIPESTATUS[0]}
status=$nextest_status
left=$(leftovers | wc -l)
if [ "$left" -gt 0 ]; then log "test databases left behind: $left (dropped by the next run)"; fi

# Checks outside cargo, each counted as one test: the API fuzzed from its OpenAPI document,
# that document validated and its generated clients checked, and the operator console in a
# real browser.
extra_passed=0 extra_failed=0
for check in scripts/schemathesis.sh scripts/openapi.sh scripts/browser.sh; do
  stage "$check"
  if "$check"; then extra_passed=$((extra_passed + 1)); else extra_failed=$((extra_failed + 1)); status=1; fi
done
set -e
stage
log "wall times: $(IFS=,; echo "${times[*]}" | sed 's/,/, /g')"
log "total: $((SECONDS - started)) s"

# The counts, from nextest's closing line (`Summary [ 612.345s] 740 tests run: 738 passed
# (2 slow), 1 failed, 1 timed out, 0 skipped`, or `738/740 tests run: ...` when some never ran):
# failed, exec failed and timed out tests count as failed, and so does a test that never ran.
# A failed nextest run that counted no failure (the build failed: no summary) counts as one.
awk -v xp="$extra_passed" -v xf="$extra_failed" -v nextest_status="$nextest_status" '
  { gsub(/\033\[[0-9;]*m/, "") }
  /^ *Summary \[/ && / tests run: / {
    p = 0; f = 0; notrun = 0
    for (i = 1; i < NF; i++) {
      n = $i; next1 = $(i + 1); next2 = (i + 2 <= NF) ? $(i + 2) : ""
      if (next1 == "tests" && next2 ~ /^run/) {
        if (split(n, parts, "/") == 2) notrun = parts[2] - parts[1]
      }
      if (n !~ /^[0-9]+$/) continue
      if (next1 ~ /^passed/) p = n
      else if (next1 ~ /^failed/) f += n
      else if (next1 == "exec" && next2 ~ /^failed/) f += n
      else if (next1 == "timed" && next2 ~ /^out/) f += n
    }
    f += notrun
  }
  END {
    if (nextest_status != 0 && f == 0) f = 1
    printf "tests: %d passed, %d failed\n", p + xp, f + xf
  }' "$out"
exit "$status"
