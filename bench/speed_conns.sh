#!/bin/bash
#  speed_conns.sh - hold CONNS keep-alive connections polling GET /jobs/{id}
#  for SECS seconds with wrk against a node in the given HTTP threading
#  mode, and report wrk's errors (connect, read, write, timeout, non-2xx).
#
#    bench/speed_conns.sh [THREADS] [CONNS] [SECS]     (default 2 10000 60)
#  Needs an open file limit above CONNS + 1000 (raised to the hard limit).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
threads=${1:-2}
conns=${2:-10000}
secs=${3:-60}
dbt=${DBT:-$top/src/dungbeetle}
ulimit -Sn "$(ulimit -Hn)"
dir=$(mktemp -d /tmp/dbt-speedconns.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir" || exit 1
"$dbt" --new-config > /dev/null
port=$((10000 + RANDOM % 22000))
sed -i -e "s|^server = .*|server = 127.0.0.1:$port|" \
       -e "s|^bind = .*|bind = tcp://127.0.0.1:$((port + 1))|" \
       -e "s|^log_level = .*|log_level = INFO|" config.ini
sed -i -e "/^\[app\]/a http_threads = $threads\nmax_connections = $((conns + 500))\nmax_connections_per_ip = 0" config.ini
"$dbt" --config config.ini > node.log 2>&1 &
pid=$!
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
grep 'http: listening' node.log | sed 's/.*http: //'
curl -s -o /dev/null -X POST "http://127.0.0.1:$port/tasks/count_entries/jobs" -d '{"job_id":"c1"}'
sleep 0.5
wrk -t 2 -c "$conns" -d "${secs}s" --timeout 10s --latency "http://127.0.0.1:$port/jobs/c1" \
    | grep -E 'Requests/sec|99%|50%|Non-2xx|Socket errors|requests in'
echo "node threads at the end: $(ls /proc/$pid/task | wc -l); still up: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")"
