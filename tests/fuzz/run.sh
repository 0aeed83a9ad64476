#!/bin/sh
#  run.sh - run one libFuzzer target at low priority over its seed corpus
#
#  Usage, from the build tree after ./configure --enable-fuzzers && make:
#      tests/fuzz/run.sh NAME [SECONDS [RUNS]]
#  Runs tests/fuzz/fuzz_NAME_lf under nice -n 19 for at most SECONDS
#  (default 1800) or RUNS executions (default 10000000), whichever comes
#  first, with ASan+UBSan. New inputs go to fuzz-work/NAME/corpus (the seed
#  corpus tests/fixtures/NAME/ in the source tree is only read), crashes to
#  fuzz-work/NAME/ as crash-*, the log to fuzz-work/NAME/log, and the final
#  line says how many executions ran in how many seconds. Extra libFuzzer
#  flags may be given in FUZZ_FLAGS (e.g. FUZZ_FLAGS=-max_len=65536).
set -u
name="${1:?usage: run.sh NAME [SECONDS [RUNS]]}"
seconds="${2:-1800}"
runs="${3:-10000000}"
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
[ -n "${top_srcdir:-}" ] && srcdir="$top_srcdir"
builddir=$(pwd)
fuzzer="$builddir/tests/fuzz/fuzz_${name}_lf"
seeds="$srcdir/tests/fixtures/$name"
if [ ! -x "$fuzzer" ]; then
    echo "run.sh: no $fuzzer (configure --enable-fuzzers, then make)" >&2
    exit 2
fi
if [ ! -d "$seeds" ]; then
    echo "run.sh: no seed corpus $seeds" >&2
    exit 2
fi
work="$builddir/fuzz-work/$name"
mkdir -p "$work/corpus"
start=$(date +%s)
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
ZSYS_SIGHANDLER=false \
nice -n 19 "$fuzzer" -max_total_time="$seconds" -runs="$runs" -print_final_stats=1 \
    -artifact_prefix="$work/" ${FUZZ_FLAGS:-} "$work/corpus" "$seeds" > "$work/log" 2>&1
rc=$?
end=$(date +%s)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
echo "$name: exit $rc, ${execs:-?} executions in $((end - start)) s (log $work/log)"
exit $rc
