#!/usr/bin/env bash
# Fuzz the parsers that read outside bytes: build the libFuzzer targets
# (fuzz/build.sh: clang, ASan, UBSan) and run each for SECONDS, two at a time
# (a 2-core host), from the seed corpus fuzz/corpus/<target> plus what earlier
# runs here added to DIR/corpus/<target>. Prints, per target, the executions,
# the CPU time they took, the corpus size and the verdict.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default: 60 s, every target)
# Env:   FUZZ_DIR (build directory, default build-fuzz), FUZZ_JOBS (default 2)
# Exit:  0 nothing found; 1 a target crashed, leaked, hung, ran out of memory
#        or broke a property: its report is printed and its reproducer kept
#        in DIR/artifacts/<target>/ (replay: DIR/fuzz/fuzz_<target> FILE);
#        2 usage or build failure.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
case $secs in '' | *[!0-9]*) sed -n 's/^# \{0,1\}//; /^Usage:/,/^Exit/p' "$0" >&2; exit 2 ;; esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request http_response url config)
dir=${FUZZ_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-2}

fuzz/build.sh "$dir" || exit 2
# A known leak inside libfyaml is not a finding of ours (fuzz/lsan.supp says which).
export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$PWD/fuzz/lsan.supp

# Longest input per target: past the parsers' own limits (16 KiB heads), so
# that the limits themselves are fuzzed; a url or a config needs less.
max_len()
{
  case $1 in
    request | http_response) echo 20000 ;;
    url) echo 512 ;;
    *) echo 8192 ;;
  esac
}

# One target for secs seconds; its log, exit code and CPU times (the
# subshell's children: the fuzzer) land in DIR/runs/<target>.*.
run_one()
{
  local t=$1 out=$dir/runs/$1
  mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t" "$dir/runs"
  rm -f "$out".*
  touch "$out.start" # what this run found is newer (earlier findings stay kept)
  (
    rc=0
    # -timeout: one input running this long (wall clock, on a busy host) is a hang.
    "$dir/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=20 -max_len="$(max_len "$t")" \
      -dict="fuzz/dict/$t.dict" -artifact_prefix="$dir/artifacts/$t/" -print_final_stats=1 \
      "$dir/corpus/$t" "fuzz/corpus/$t" >"$out.log" 2>&1 || rc=$?
    times >"$out.times"
    echo "$rc" >"$out.rc"
  )
}

# "1m2.500s" -> "62.50"
seconds()
{
  awk -v t="$1" 'BEGIN { split(t, a, "m"); sub("s", "", a[2]); printf "%.2f", a[1] * 60 + a[2] }'
}

for t in "${targets[@]}"; do
  if [ ! -x "$dir/fuzz/fuzz_$t" ]; then
    echo "fuzz.sh: no target '$t' (fuzz/$t.c)" >&2
    exit 2
  fi
done
echo "fuzz: ${targets[*]}: $secs s each, $jobs at a time, ASan+UBSan" >&2
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

failed=()
total=0
printf '%-14s %12s %9s %10s %7s  %s\n' TARGET EXECUTIONS CPU_S EXEC/CPU_S CORPUS RESULT
for t in "${targets[@]}"; do
  out=$dir/runs/$t
  rc=$(cat "$out.rc" 2>/dev/null || echo 99)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out.log" | tail -1)
  read -r user sys < <(sed -n 2p "$out.times")
  cpu=$(awk -v u="$(seconds "$user")" -v s="$(seconds "$sys")" 'BEGIN { printf "%.1f", u + s }')
  total=$(awk -v a="$total" -v b="$cpu" 'BEGIN { printf "%.1f", a + b }')
  rate=$(awk -v e="${execs:-0}" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? e / c : 0) }')
  corpus=$(find "$dir/corpus/$t" -type f | wc -l)
  result=ok
  [ "$rc" = 0 ] || { result="FOUND (exit $rc)"; failed+=("$t"); }
  printf '%-14s %12s %9s %10s %7s  %s\n' "$t" "${execs:-?}" "$cpu" "$rate" "$corpus" "$result"
done
echo "fuzz: $total CPU seconds in all" >&2

for t in "${failed[@]}"; do
  echo "=== fuzz_$t: what it found (the end of its log) ===" >&2
  grep -v -e '^#[0-9]' -e '^	NEW_FUNC' "$dir/runs/$t.log" | tail -60 >&2
  find "$dir/artifacts/$t" -type f -newer "$dir/runs/$t.start" | while read -r f; do
    echo "--- reproducer $f ($(wc -c <"$f") bytes); replay: $dir/fuzz/fuzz_$t $f" >&2
    od -A d -c "$f" | head -20 >&2
  done
done
[ ${#failed[@]} -eq 0 ] || exit 1
