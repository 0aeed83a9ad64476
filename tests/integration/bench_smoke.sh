#!/bin/bash
#  bench_smoke.sh - the benchmark suite still runs: bench/run --smoke runs
#  every benchmark once at tiny size (servers, BullMQ, nginx, wrk, the load
#  generator) and each produces its figures and its section of the report.
#  It checks that the figures exist and are numbers, not how fast anything
#  is. bench/run installs what is missing (apt-get as root; npm ci for
#  bench/bullmq from the lock file); under CI=true a missing tool fails.
. "$top_srcdir/tests/lib/tap.sh"
for tool in nginx wrk redis-server node npm jq curl; do
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || need "$tool (bench/run installs it only as root)" command -v "$tool"
done

dir=$(mktemp -d /tmp/dbt-bench-smoke.XXXXXX)
trap 'rm -rf "$dir"' EXIT
start=$(date +%s)
"$top_srcdir/bench/run" --smoke --results "$dir/results.tsv" --report "$dir/benchmarks.md" > "$dir/log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
if [ $rc != 0 ]; then
    diag "bench/run's progress:"; grep '^bench: ' "$dir/log" | sed 's/^/#   /'
    diag "its last lines:"; tail -40 "$dir/log" | sed 's/^/#   /'
fi
is "$rc" 0 "bench/run --smoke exits 0"
diag "bench/run --smoke took $took s"

#  fig BENCH FIGURE SIDE: the one-run figure is a number
fig () {
    awk -F '\t' -v b="$1" -v f="$2" -v s="$3" '$1 == "fig" && $2 == b && $3 == f && $4 == s { print $6 }' \
        "$dir/results.tsv" | head -1
}
number () { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; }
check () {      # check BENCH FIGURE SIDE...
    local b=$1 f=$2 s v; shift 2
    for s in "$@"; do
        v=$(fig "$b" "$f" "$s")
        ok "$b: '$f' of $s is a number ($v)" number "$v"
    done
}
check p2_sqlite "jobs/s 4 runners" dungbeetle "bullmq always" "bullmq everysec"
check p2_sqlite "jobs/s 16 runners" dungbeetle "bullmq always" "bullmq everysec"
check p2_sqlite "last/first completions 16 runners" dungbeetle
is "$(fig p2_sqlite "failed jobs 16 runners" dungbeetle)" 0 "p2_sqlite: no job failed with 16 runners"
is "$(fig p2_sqlite "results read-back 16 runners" dungbeetle)" 200 "p2_sqlite: results read back"
check p2_pg "jobs/s 4 runners" dungbeetle "bullmq always" "bullmq everysec"
check p2_pg "jobs/s 16 runners" dungbeetle "bullmq always" "bullmq everysec"
check accept "acceptances/s" dungbeetle "bullmq always" "bullmq everysec"
check accept "jobs per commit" dungbeetle
check p3_get "req/s" dungbeetle nginx
check p3_get "p99" dungbeetle nginx
is "$(fig p3_get non-2xx dungbeetle)/$(fig p3_get non-2xx nginx)" 0/0 "p3_get: every answer was 200 on both sides"
is "$(fig p3_hold errors dungbeetle)" 0 "p3_hold: no polling connection saw an error"
check p3_hold "connections held" dungbeetle
check p4_latency "submit to SUCCESS p50" dungbeetle "bullmq always" "bullmq everysec"
check p4_latency "created to started p99" dungbeetle "bullmq always"
check p1_pg "rows/s" dungbeetle "psql pipe"
check p1_mariadb "rows/s" dungbeetle "mariadb pipe"
check p1_clickhouse "rows/s" dungbeetle "curl | psql"
check p5_rss "peak RSS 10000 rows" dungbeetle
check p5_rss "peak RSS 100000 rows" dungbeetle

for b in p2_sqlite p2_pg accept p3_get p3_hold p4_latency p1_pg p1_mariadb p1_clickhouse p5_rss; do
    ok "the report has a section for $b" grep -q "(\`$b\`)" "$dir/benchmarks.md"
done
ok "the report has a summary of the targets" grep -q "^## Summary" "$dir/benchmarks.md"
ok "the report names the machine" grep -q '^| cores | ' "$dir/benchmarks.md"
ok "the report gives ratios of medians" grep -q '^| jobs/s 4 runners: dungbeetle / bullmq always | [0-9]' "$dir/benchmarks.md"
ok "the report holds no failed benchmark" bash -c "! grep -q 'No figure' '$dir/benchmarks.md'"
done_testing
