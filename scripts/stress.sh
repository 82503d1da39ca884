#!/usr/bin/env bash
# Prove the test suite holds on a busy machine: a CPU-bound competitor on
# every core, then the unit tests (ctest, ASan build) N times in a row
# and/or the e2e suite M times, stopping at the first failing run.
# Not part of the CI suite: the tool that shows the suite does not flake.
#
# Usage: scripts/stress.sh [options] [unit [N]] [e2e [M]]
#   (no mode: unit 40, then e2e 5)
#   -R REGEX   only the ctest tests matching REGEX (ctest -R)
#   -k EXPR    only the e2e tests matching EXPR (pytest -k)
#   -j JOBS    ctest parallelism (default 2, as scripts/test.sh)
#   -H HOGS    CPU-bound competitors (default: one per core, nproc)
#   -c         keep going after a failing run and tally the failures
#              (default: stop at the first failing run and print it)
# Logs of every run go to $STRESS_DIR (default build-asan/stress/).
set -euo pipefail
cd "$(dirname "$0")/.."

regex="" kexpr="" jobs=2 hogs=$(nproc) keep_going=0
while getopts "R:k:j:H:c" opt; do
    case $opt in
    R) regex=$OPTARG ;;
    k) kexpr=$OPTARG ;;
    j) jobs=$OPTARG ;;
    H) hogs=$OPTARG ;;
    c) keep_going=1 ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

unit_runs=0 e2e_runs=0
[ $# -eq 0 ] && unit_runs=40 e2e_runs=5
while [ $# -gt 0 ]; do
    mode=$1
    shift
    n=""
    if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
        n=$1
        shift
    fi
    case $mode in
    unit) unit_runs=${n:-40} ;;
    e2e) e2e_runs=${n:-5} ;;
    *) echo "stress.sh: unknown mode '$mode' (unit or e2e)" >&2; exit 2 ;;
    esac
done

# Build before the competitors start: a build is not what is measured.
scripts/build.sh build-asan -DRECOVERD_SANITIZE=ON
[ "$e2e_runs" -gt 0 ] && scripts/build.sh build
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
logs=${STRESS_DIR:-$PWD/build-asan/stress}
mkdir -p "$logs"

# The competitors: their pids are recorded and exactly those are killed.
hog_pids=()
stop_hogs() {
    if [ ${#hog_pids[@]} -gt 0 ]; then
        kill "${hog_pids[@]}" 2>/dev/null || true
        wait "${hog_pids[@]}" 2>/dev/null || true
    fi
    hog_pids=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for ((i = 0; i < hogs; i++)); do
    yes >/dev/null &
    hog_pids+=($!)
done
echo "stress: $hogs CPU-bound competitor(s) (pids ${hog_pids[*]}) on $(nproc) core(s)"

declare -A failed_tests=() # name -> failing runs (with -c)
failures=0

# run KIND I N LOG CMD...: one run; prints a line, the log on failure.
run() {
    local kind=$1 i=$2 n=$3 log=$4 t0 rc=0
    shift 4
    t0=$(date +%s)
    "$@" >"$log" 2>&1 || rc=$?
    printf 'stress: %s run %d/%d: %s in %ds\n' "$kind" "$i" "$n" \
        "$([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)")" $(($(date +%s) - t0))
    return $rc
}

# The names a failed ctest or pytest run lists, one a line.
failed_names() {
    sed -n -e 's/^[[:space:]]*[0-9]* - \([^ ]*\) .*/\1/p' \
        -e 's/^FAILED \([^ ]*\).*/\1/p' -e 's/^ERROR \([^ ]*\).*/\1/p' "$1"
}

# A failing run: print it; stop unless -c.
on_failure() {
    local kind=$1 log=$2 name
    failures=$((failures + 1))
    echo "---- $kind: failing run, $log ----"
    if [ "$kind" = unit ]; then
        grep -v -e '^ *Start ' -e 'Passed' "$log" | tail -n 150
    else
        tail -n 150 "$log"
    fi
    echo "----"
    while read -r name; do
        [ -n "$name" ] && failed_tests[$name]=$((${failed_tests[$name]:-0} + 1))
    done < <(failed_names "$log")
    [ "$keep_going" -eq 1 ] || exit 1
}

for ((i = 1; i <= unit_runs; i++)); do
    args=(ctest -j"$jobs" --output-on-failure)
    [ -n "$regex" ] && args+=(-R "$regex")
    run unit "$i" "$unit_runs" "$logs/unit-$i.log" \
        bash -c 'cd build-asan && exec "$@"' ctest "${args[@]}" ||
        on_failure unit "$logs/unit-$i.log"
done

for ((i = 1; i <= e2e_runs; i++)); do
    args=(pytest-3 -q -p no:cacheprovider tests/e2e)
    [ -n "$kexpr" ] && args+=(-k "$kexpr")
    run e2e "$i" "$e2e_runs" "$logs/e2e-$i.log" \
        env RECOVERD_BUILD="$PWD/build-asan" "${args[@]}" ||
        on_failure e2e "$logs/e2e-$i.log"
done

echo "stress: unit $unit_runs run(s), e2e $e2e_runs run(s), $failures failing run(s)"
for name in "${!failed_tests[@]}"; do
    echo "stress:   $name failed in ${failed_tests[$name]} run(s)"
done
[ "$failures" -eq 0 ]
