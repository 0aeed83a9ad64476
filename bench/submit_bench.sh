#!/bin/bash
#  submit_bench.sh - how many jobs a node accepts per second, each one
#  acknowledged only after its LMDB commit, and how many commits that took
#  (group commit). Sample config (SQLite), jobs parked on a queue no worker
#  serves so only acceptance is measured.
#
#    bench/submit_bench.sh [JOBS] [CLIENTS]        (default 4000 8)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=${1:-4000}
clients=${2:-8}
dir=$(mktemp -d /tmp/dbt-submit.XXXXXX)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$top/src/dungbeetle" --new-config > /dev/null
port=$((10000 + RANDOM % 22000))
sed -i -e "s|^server = .*|server = 127.0.0.1:$port|" -e "s|^bind = .*|bind = tcp://127.0.0.1:$((port + 1))|" config.ini
"$top/src/dungbeetle" --config config.ini > node.log 2>&1 &
pid=$!
for i in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
/usr/bin/python3 - "$port" "$jobs" "$clients" <<'PY'
import http.client, json, sys, threading, time
port, n, t = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def post(k):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(k, n, t):
        c.request("POST", "/tasks/count_entries/jobs", json.dumps({"job_id": "s%d" % i, "queue": "parked"}),
                  {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
start = time.time()
threads = [threading.Thread(target=post, args=(k,)) for k in range(t)]
[x.start() for x in threads]; [x.join() for x in threads]
took = time.time() - start
print("accepted %d jobs in %.2f s: %.0f jobs/s with %d keep-alive clients" % (n, took, n / took, t))
PY
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^dungbeetle_(jobs_submitted_total|state_commits_total)'
