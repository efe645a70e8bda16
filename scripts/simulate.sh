#!/usr/bin/env bash
# Runs N schedules of the fault simulation (tests/simulation) and records the run in
# docs/simulation.md: date, commit, backend, engines, seed range, schedules, result.
#
#   scripts/simulate.sh N [--backend sqlite|pg] [--engines 1|3] [--start SEED]
#
# The seed range starts at --start (default: one past the last range recorded for the same
# backend and engine count, so runs accumulate fresh seeds). PostgreSQL needs
# NEURONX_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres); several engines
# need Redis (NEURONX_TEST_REDIS_URL, default redis://127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 N [--backend sqlite|pg] [--engines 1|3] [--start SEED]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
count=$1; shift
backend=sqlite; engines=1; start=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --backend) backend=${2:-}; shift 2 ;;
    --engines) engines=${2:-}; shift 2 ;;
    --start) start=${2:-}; shift 2 ;;
    *) usage ;;
  esac
done
case $backend in sqlite|pg) ;; *) usage ;; esac
[[ $engines =~ ^[0-9]+$ && $engines -ge 1 ]] || usage
if [[ $backend == sqlite && $engines != 1 ]]; then
  echo "SQLite serves one engine per file: --engines 1" >&2; exit 2
fi

log=docs/simulation.md
if [[ -z $start ]]; then
  # Table rows: | date | commit | backend | engines | first–last | schedules | result |
  last=$(awk -F'|' -v b="$backend" -v e="$engines" \
    '$4 ~ "^ *"b" *$" && $5 ~ "^ *"e" *$" { split($6, r, "[–-]"); gsub(/ /, "", r[2]); if (r[2] + 0 > m) m = r[2] + 0 } END { print m + 0 }' "$log")
  start=$(( last < 100000 ? 100000 : last + 1 ))
fi
end=$(( start + count - 1 ))
commit=$(git rev-parse --short HEAD)
dirty=""
git diff --quiet HEAD -- src supervision actors adapters tests/simulation || dirty="+dirty"

echo "simulating $count schedules on $backend with $engines engine(s), seeds $start–$end"
began=$(date +%s)
# libtest rather than nextest: a long run must not meet the suite's per-test timeout (nextest
# kills the serial group's tests after 300 s, and a cut run used to record nothing).
set +e
NEURONX_SIM_BACKEND=$backend NEURONX_SIM_ENGINES=$engines NEURONX_SIM_START=$start \
NEURONX_SIM_SCHEDULES=$count \
  cargo test -q -p neuronx --test simulation -- --ignored --exact simulate --nocapture \
  2>&1 | tee target/simulate.log | grep -E '^(simulation:|seed |  )'
status=${PIPESTATUS[0]}
secs=$(( $(date +%s) - began ))
clean=$(grep -oE 'simulation: [0-9]+ of [0-9]+ schedules clean' target/simulate.log | tail -1 | awk '{print $2}')
set -e
clean=${clean:-0}
if [[ $status -eq 0 ]]; then
  result="clean ($clean/$count, ${secs}s)"
else
  failed=$(grep -oE '^seed [0-9]+' target/simulate.log | awk '{print $2}' | sort -un | paste -sd, -)
  result="FAILED: $clean/$count clean; failing seeds ${failed:-unknown (see target/simulate.log)} (${secs}s)"
fi
printf '| %s | %s%s | %s | %s | %s–%s | %s | %s |\n' "$(date -u +%F)" "$commit" "$dirty" \
  "$backend" "$engines" "$start" "$end" "$count" "$result" >> "$log"
total=$(awk -F'|' '$8 ~ /^ *clean/ { n += $7 } END { print n + 0 }' "$log")
echo "$result (recorded in $log; $total clean schedules recorded in all)"
exit "$status"
