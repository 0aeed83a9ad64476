#!/bin/bash
#  speed_get.sh - GET /jobs/{id} requests/s of one node with wrk, with the
#  HTTP front in a given threading mode, optionally against nginx serving
#  a static file of the same body size with the same worker count.
#
#    bench/speed_get.sh THREADS [CONNS] [SECS] [nginx]
#      THREADS: http_threads (0 = a thread per connection); CONNS 64; SECS 10
#  Environment: DBT=path/to/dungbeetle (default the build's), WRK_THREADS (2).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
threads=$1
conns=${2:-64}
secs=${3:-10}
dbt=${DBT:-$top/src/dungbeetle}
dir=$(mktemp -d /tmp/dbt-speedget.XXXXXX)
pid=; npid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; [ -n "$npid" ] && kill $npid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
chmod 755 "$dir"; cd "$dir" || exit 1
"$dbt" --new-config > /dev/null
port=$((10000 + RANDOM % 22000))
sed -i -e "s|^server = .*|server = 127.0.0.1:$port|" \
       -e "s|^bind = .*|bind = tcp://127.0.0.1:$((port + 1))|" \
       -e "s|^log_level = .*|log_level = WARN|" config.ini
sed -i -e "/^\[app\]/a http_threads = $threads\nmax_connections = 20000\nmax_connections_per_ip = 0" config.ini
"$dbt" --config config.ini > node.log 2>&1 &
pid=$!
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
curl -s -o /dev/null -X POST "http://127.0.0.1:$port/tasks/count_entries/jobs" -d '{"job_id":"g1"}'
sleep 0.5
curl -s "http://127.0.0.1:$port/jobs/g1" > body.json
echo "body $(wc -c < body.json) bytes: $(head -c 80 body.json)..."
wrk -t "${WRK_THREADS:-2}" -c "$conns" -d "${secs}s" --latency "http://127.0.0.1:$port/jobs/g1" \
    | grep -E 'Requests/sec|99%|50%|Non-2xx|Socket errors'
if [ "${4:-}" = nginx ]; then
    nport=$((10000 + RANDOM % 22000))
    mkdir -p www; cp body.json www/g1
    cat > nginx.conf <<NGX
worker_processes ${NGINX_WORKERS:-2};
daemon off; pid $dir/nginx.pid; error_log $dir/nginx.err;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 100000000;
  server { listen 127.0.0.1:$nport; root $dir/www; location / { default_type application/json; } } }
NGX
    nginx -c "$dir/nginx.conf" -p "$dir" &
    npid=$!
    sleep 0.5
    echo "nginx:"
    wrk -t "${WRK_THREADS:-2}" -c "$conns" -d "${secs}s" --latency "http://127.0.0.1:$nport/g1" \
        | grep -E 'Requests/sec|99%|50%|Non-2xx|Socket errors'
fi
