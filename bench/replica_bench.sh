#!/bin/bash
#  replica_bench.sh - how far behind the mesh's replicas are
#
#    bench/replica_bench.sh [RUNS] [SECONDS] [RATE] [CATCHUP_JOBS]
#
#  Two nodes on loopback: alpha dispatches (SQLite, 8 runners), beta has a
#  front and a replica of alpha. (1) Lag: jobs are posted to alpha at RATE
#  per second (default 500) for SECONDS (20); each job changes its record
#  three times (PENDING, STARTED, SUCCESS). beta's replica measures, for
#  every update it applies, the time since alpha published it (both on one
#  clock here); the p50 and p99 of those delays come from beta's /metrics
#  histogram (dungbeetle_replica_delay_seconds, interpolated within
#  buckets). The reference beside it is the submission's own HTTP round
#  trip on alpha in the same run (accept, commit, reply), measured by the
#  poster; the ratio says how many round trips behind a reader on beta is.
#  The poster (bench/paced_post.js, Node, open loop over 32 keep-alive
#  connections) prints the rate it reached, so it is seen not to be the
#  bound. Needs node, jq and /usr/bin/python3.
#  (2) Catch-up: alpha holds CATCHUP_JOBS (100,000) queued jobs;
#  beta starts with an empty data directory, and the time until its replica
#  is live at alpha's sequence is measured. RUNS (5) runs of each;
#  min/median/max are printed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}; seconds=${2:-20}; rate=${3:-500}; catchup=${4:-100000}
: "${DBT_BIN:=$top/src/dungbeetle}"
. "$top/tests/lib/tap.sh"
. "$top/tests/lib/node.sh"
node_dir

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/b.sql" <<'SQL'
-- name: one
SELECT 1 AS n;
SQL
a_mesh=$(free_port)
sqlite () { printf '[db.src]\ntype = sqlite\ndsn = %s/src-%s.db\nsample_data = true\n[results.res]\ntype = sqlite\ndsn = %s/res-%s.db\n' \
    "$NODE_DIR" "$1" "$NODE_DIR" "$1"; }
node_config alpha <<INI
[app]
worker_name = alpha
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-alpha
worker_concurrency = 8
log_level = WARN
state_ttl = 0
[mesh]
bind = tcp://127.0.0.1:$a_mesh
$(sqlite alpha)
INI
node_config beta <<INI
[app]
worker_name = beta
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-beta
worker_concurrency = 1
log_level = WARN
[mesh]
dispatch = false
peers = tcp://127.0.0.1:$a_mesh
$(sqlite beta)
INI
node_start alpha >/dev/null || { echo "alpha did not start"; exit 1; }
node_start beta >/dev/null || { echo "beta did not start"; exit 1; }

stats () {      # min/median/max of the numbers on stdin
    sort -n | awk '{ v [NR] = $1 } END { if (NR) printf "%s/%s/%s", v [1], v [int ((NR + 1) / 2)], v [NR] }'
}
histogram () { curl -s "http://127.0.0.1:$beta_HTTP/metrics" | grep '^dungbeetle_replica_delay_seconds_bucket{node="alpha"'; }
quantiles () {  # quantiles BEFORE AFTER: p50 and p99 in ms of the difference
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, re
def read(path):
    out = []
    for line in open(path):
        m = re.search(r'le="([^"]+)"\} (\d+)', line)
        if m:
            out.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), int(m.group(2))))
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
cum = [(le, nb - na) for (le, na), (_, nb) in zip(a, b)]
total = cum[-1][1]
def q(p):
    want, lo_le, lo_n = p * total, 0.0, 0
    for le, n in cum:
        if n >= want:
            if le == float("inf"):
                return lo_le * 1000
            span = n - lo_n
            frac = (want - lo_n) / span if span else 0
            return (lo_le + (le - lo_le) * frac) * 1000
        lo_le, lo_n = le, n
    return 0
print("%.2f %.2f %d" % (q(0.5), q(0.99), total))
PY
}

echo "replica lag: $rate jobs/s for $seconds s, $runs runs"
for run in $(seq "$runs"); do
    histogram > "$NODE_DIR/before"
    post50=$(node "$top/bench/paced_post.js" "$alpha_HTTP" "$rate" "$seconds" "r$run")
    sleep 2
    histogram > "$NODE_DIR/after"
    read -r p50 p99 n <<< "$(quantiles "$NODE_DIR/before" "$NODE_DIR/after")"
    echo "  run $run: $n update messages (one per commit) applied, delay p50 ${p50} ms, p99 ${p99} ms (submit round trip p50 ${post50} ms: ratio $(awk -v a="$p50" -v b="$post50" 'BEGIN { printf "%.2f", a / b }'))"
    awk -v a="$p50" -v b="$post50" 'BEGIN { printf "%.3f\n", a / b }' >> "$NODE_DIR/ratio"
    echo "$p50" >> "$NODE_DIR/p50"; echo "$p99" >> "$NODE_DIR/p99"
done
echo "replica delay p50 (ms) min/median/max: $(stats < "$NODE_DIR/p50")"
echo "replica delay p99 (ms) min/median/max: $(stats < "$NODE_DIR/p99")"
echo "replica delay p50 / submit round trip p50 min/median/max: $(stats < "$NODE_DIR/ratio")"

#  Catch-up from empty.
echo "catch-up: $catchup queued jobs"
have=$(curl -s "http://127.0.0.1:$alpha_HTTP/metrics" | awk '/^dungbeetle_jobs\{queue="parked",state="PENDING"\}/ { print $2 }')
need=$((catchup - ${have:-0}))
while [ "$need" -gt 0 ]; do
    n=$(( need > 10000 ? 10000 : need ))
    /usr/bin/python3 -c "
import json, sys
print(json.dumps({'jobs': [{'task': 'one', 'queue': 'parked'} for _ in range($n)]}))" > "$NODE_DIR/group.json"
    curl -s -o /dev/null -w '' --data-binary @"$NODE_DIR/group.json" "http://127.0.0.1:$alpha_HTTP/groups"
    need=$((need - n))
done
seq_alpha () { curl -s "http://127.0.0.1:$alpha_HTTP/metrics" >/dev/null; \
    curl -s "http://127.0.0.1:$beta_HTTP/health" | jq -r '.data.peers[0].replica_seq'; }
for run in $(seq "$runs"); do
    node_stop beta
    rm -rf "$NODE_DIR/data-beta"
    t0=$(date +%s%3N)
    node_start beta >/dev/null || { echo "beta did not restart"; exit 1; }
    while true; do
        lag=$(curl -s "http://127.0.0.1:$beta_HTTP/health" | jq -r '.data.peers[0].replica_lag_ms')
        [ "${lag:--1}" -ge 0 ] 2>/dev/null && break
        sleep 0.05
    done
    t1=$(date +%s%3N)
    count=$(curl -s "http://127.0.0.1:$beta_HTTP/metrics" | awk '/^dungbeetle_jobs\{queue="parked",state="PENDING"\}/ { print $2 }')
    echo "  run $run: live after $((t1 - t0)) ms (node start included), $count queued jobs in the replica"
    echo $((t1 - t0)) >> "$NODE_DIR/catchup"
done
echo "catch-up of $catchup jobs (ms) min/median/max: $(stats < "$NODE_DIR/catchup")"
