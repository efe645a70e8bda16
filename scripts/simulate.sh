#!/usr/bin/env bash
# Runs N schedules of the fault simulation (tests/simulation) and records the run in
# docs/simulation.md: date, commit, backend, engines, seed range, schedules, result.
#
#   scripts/simulate.sh N [--backend sqlite|pg] [--engines 1|3] [--start SEED] [--jobs K]
#
# The seed range starts at --start (default: one past the last range recorded for the same
# backend and engine count, so runs accumulate fresh seeds). --jobs K runs K test processes at
# once on disjoint parts of the range (the test binary is built once; every PostgreSQL schedule
# has a database of its own); the run is still one row. Bulk runs beside other work:
# `nice -n 19 scripts/simulate.sh ...` (the processes inherit it). PostgreSQL needs
# NEURONX_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres); several engines
# need Redis (NEURONX_TEST_REDIS_URL, default redis://127.0.0.1:6379).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 N [--backend sqlite|pg] [--engines 1|3] [--start SEED] [--jobs K]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
count=$1; shift
backend=sqlite; engines=1; start=""; jobs=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --jobs) jobs=${2:-}; shift 2 ;;
    --backend) backend=${2:-}; shift 2 ;;
    --engines) engines=${2:-}; shift 2 ;;
    --start) start=${2:-}; shift 2 ;;
    *) usage ;;
  esac
done
case $backend in sqlite|pg) ;; *) usage ;; esac
[[ $engines =~ ^[0-9]+$ && $engines -ge 1 ]] || usage
[[ $jobs =~ ^[0-9]+$ && $jobs -ge 1 ]] || usage
(( jobs > count )) && jobs=$count
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

echo "simulating $count schedules on $backend with $engines engine(s), seeds $start–$end, $jobs job(s)"
# libtest rather than nextest: a long run must not meet the suite's per-test timeout (nextest
# kills the serial group's tests after 300 s, and a cut run used to record nothing). The binary
# is copied so that a rebuild in the shared tree cannot swap it under a running job.
# `|| true`: under pipefail a failed build or an empty grep would end the script here, before
# the message below; cargo's own errors go to stderr.
exe=$(cargo test -q -p neuronx --test simulation --no-run --message-format=json \
  | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4 || true)
[[ -n $exe && -x $exe ]] || { echo "could not build the simulation test binary" >&2; exit 1; }
bin=target/simulate-bin-$$
cp "$exe" "$bin"
began=$(date +%s)
set +e
pids=(); logs=()
per=$(( count / jobs )); extra=$(( count % jobs )); from=$start
for (( j = 0; j < jobs; j++ )); do
  n=$(( per + (j < extra ? 1 : 0) ))
  joblog=target/simulate-$$-$j.log; logs+=("$joblog")
  NEURONX_SIM_BACKEND=$backend NEURONX_SIM_ENGINES=$engines NEURONX_SIM_START=$from \
  NEURONX_SIM_SCHEDULES=$n RUST_BACKTRACE=0 \
    "$bin" --ignored --exact simulate --nocapture >"$joblog" 2>&1 &
  pids+=($!)
  from=$(( from + n ))
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
secs=$(( $(date +%s) - began ))
# Each run its own log (two runs, e.g. one per backend, may end together), then the latest.
runlog=target/simulate-$$.log
cat "${logs[@]}" > "$runlog"
rm -f "$bin" "${logs[@]}"
cp "$runlog" target/simulate.log
grep -E '^(seed |  [a-z])' "$runlog" | cut -c1-400
# One line per schedule that started, and one per schedule that passed: a seed that started
# and did not pass failed (broke an invariant, or panicked and ended its job).
# (`comm` needs text order, not numeric.)
started=$(grep -oE '^simulation: seed [0-9]+ on' "$runlog" | awk '{ print $3 }' | sort)
passed=$(grep -oE '^simulation: seed [0-9]+ clean' "$runlog" | awk '{ print $3 }' | sort)
clean=$(printf '%s\n' "$passed" | grep -c . || true)
set -e
if [[ $status -eq 0 ]]; then
  # (No `$( (( jobs > 1 )) && ... )` here: its false test fails the assignment under set -e,
  # which ended every clean run of one job before its row was written.)
  result="clean ($clean/$count, ${secs}s)"
  if (( jobs > 1 )); then result="clean ($clean/$count, ${secs}s, $jobs jobs)"; fi
else
  # `|| true`: no seed left unpassed (one panicked before it said it started) must still
  # write the FAILED row.
  failed=$(comm -23 <(printf '%s\n' "$started") <(printf '%s\n' "$passed") | grep . | sort -n \
    | paste -sd, - || true)
  result="FAILED: $clean/$count clean; failing seeds ${failed:-unknown (see $runlog)} (${secs}s)"
fi
printf '| %s | %s%s | %s | %s | %s–%s | %s | %s |\n' "$(date -u +%F)" "$commit" "$dirty" \
  "$backend" "$engines" "$start" "$end" "$count" "$result" >> "$log"
# Every schedule that passed: a clean row's count, and a failed row's "N/M clean".
total=$(awk -F'|' '$8 ~ /^ *clean/ { n += $7 } $8 ~ /^ *FAILED: [0-9]+\// { split($8, f, /[:\/]/); n += f[2] } END { print n + 0 }' "$log")
echo "$result (recorded in $log; $total clean schedules recorded in all)"
[[ $status -eq 0 ]] && rm -f "$runlog"
exit "$status"
