#!/usr/bin/env bash
# The benchmarks of docs/benchmarks.md, each beside its same-run baseline. Not a test: it prints
# one JSON object per line. Needs PostgreSQL on loopback (scripts/test.sh starts it) and pgbench.
# Usage: scripts/bench.sh [quick]   (quick: smaller runs)
set -euo pipefail
cd "$(dirname "$0")/.."
PG=${NEURONX_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
BIN=${NEURONX_BIN:-target/release/neuronx}
[ -x "$BIN" ] || cargo build --release
scale=1; [ "${1:-}" = quick ] && scale=10
fresh() { psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1; echo "$PG/$1"; }
baseline=../shared/tools/pg-baseline
run() { echo "# $*" >&2; NEURONX_LOG=warn "$@"; }

if [ -x "$baseline" ]; then
  echo "{\"pg_baseline\": $("$baseline" "$(fresh bench_baseline)" 10)}"
fi
# Saturated runs measure PostgreSQL's ceiling before and after themselves (10 s each); paced
# runs, whose figures are latency and memory, skip it.
run "$BIN" bench engine --database-url "$(fresh bench_engine)" --opportunities $((20000 / scale)) --first-touch-seconds 5
run "$BIN" bench engine --database-url "$(fresh bench_timers)" --opportunities $((9000 / scale)) --rate 150 \
  --first-touch-seconds 5 --armed-timers $((1000000 / scale)) --baseline-seconds 0
run "$BIN" bench engine --database-url "$(fresh bench_million)" --opportunities $((1000000 / scale)) --night \
  --first-touch-seconds 7200 --timeout-seconds 1800 --baseline-seconds 0
run "$BIN" bench engine --database-url "$(fresh bench_dial)" --opportunities $((6000 / scale)) --rate 100 \
  --first-touch-seconds 5 --simulator --baseline-seconds 0
for n in 2 3; do
  run "$BIN" bench engine --database-url "$(fresh bench_engine_$n)" --opportunities $((20000 / scale)) \
    --first-touch-seconds 5 --instances $n
done
run "$BIN" bench failover --kills $((20 / (scale > 1 ? 4 : 1)))
run "$BIN" bench webhooks --database-url "$(fresh bench_webhooks)" --requests $((50000 / scale))
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
run "$BIN" bench engine --database-url "sqlite://$tmp/bench.db" --opportunities $((20000 / scale)) --first-touch-seconds 5 \
  --concurrency 200
