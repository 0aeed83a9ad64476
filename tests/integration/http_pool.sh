#!/bin/bash
#  http_pool.sh - the HTTP front in epoll mode (http_threads = 2): it says
#  so at start-up, serves the job API and results downloads, holds many
#  keep-alive polling connections at once without an error (3,000 here,
#  HTTP_POOL_CONNS for more: 10,000 needs an open file limit above 20,000
#  for both ends) while jobs still run, and still cuts off a client whose
#  request does not arrive within request_timeout.
#  Environment: HTTP_POOL_CONNS (3000), HTTP_POOL_SECS (10).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/load.sh"
conns=${HTTP_POOL_CONNS:-3000}
secs=${HTTP_POOL_SECS:-10}
#  Root may raise the hard open file limit for the node and the clients.
want_fd=$((2 * conns + 1000))
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$want_fd" ] || ulimit -Hn "$want_fd" 2>/dev/null
[ "$(ulimit -Hn)" = unlimited ] || ulimit -Sn "$(ulimit -Hn)"
need "jq" command -v jq
need "python3 at /usr/bin/python3" test -x /usr/bin/python3
need "an open file limit of $want_fd" test "$(ulimit -Sn)" = unlimited -o "$(ulimit -Sn)" -ge "$want_fd"

node_dir
mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: count_entries
SELECT COUNT(*) AS n FROM entries;

-- name: echo_n
SELECT ? AS n;

-- name: numbers
WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
SELECT x, printf ('%08d', x) AS s FROM c;
SQL
node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
request_timeout = 2s
http_threads = 2
max_connections = $((conns + 100))
max_connections_per_ip = 0
worker_concurrency = 4
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.sample]
type = sqlite
dsn = @DIR@/sample.db
sample_data = true
[results.res]
type = sqlite
dsn = @DIR@/results.db
INI
node_start a || bail "node did not start"
url="http://127.0.0.1:$a_HTTP"
like "$(cat "$NODE_DIR/a.log")" "http: listening on .*epoll, 2 threads, [0-9]+ waiters; at most $((conns + 100)) connections" \
     "the epoll mode and its threads are logged"

api POST /tasks/count_entries/jobs '{"job_id":"p1"}'
is "$STATUS" 200 "a job is accepted"
ok "it succeeds" wait_state p1 SUCCESS 20
api POST /tasks/numbers/jobs '{"job_id":"big"}'
is "$STATUS" 200 "a 20,000-row job is accepted"
ok "it succeeds" wait_state big SUCCESS 30
rows=$(curl -s "$url/jobs/big/results?format=csv" | wc -l)
ok "its results download whole as CSV ($rows lines)" test "$rows" -ge 20000
api GET /jobs/nosuch
is "$STATUS" 404 "an unknown job is 404"

#  A job submission to this node's own dispatcher goes from the epoll
#  thread without a waiter (dbt_api_submit_prepare); its answers are the
#  blocking path's.
api POST /tasks/count_entries/jobs '{"job_id":"q1","queue":"parked"}'
is "$STATUS" 200 "a job for a queue without workers is accepted"
is "$(jfield '[.status, .data.job_id, .data.task, .data.queue] | join(" ")')" \
   "success q1 count_entries parked" "its answer names the job, task and queue"
api POST /tasks/count_entries/jobs '{"job_id":"q1","queue":"parked"}'
is "$STATUS" 409 "the same job id again while it waits is 409"
is "$(jfield '[.status, .data.job_id, .data.state] | join(" ")')" "error q1 PENDING" \
   "with the waiting job's status"
like "$(jfield .message)" "already queued" "and says why"
api POST /tasks/nosuch/jobs '{"job_id":"q2"}'
is "$STATUS" 404 "an unknown task is 404"
like "$(jfield .message)" "unrecognized task: nosuch" "naming the task"
api POST /tasks/count_entries/jobs '{"job_id":'
is "$STATUS" 400 "a malformed body is 400"
api POST /tasks/count_entries/jobs '{"job_id":"bad id!"}'
is "$STATUS" 400 "a hostile job id is 400"
api GET /jobs/q2
is "$STATUS" 404 "and neither made a job"
load_start "$a_HTTP" echo_n burst 2000 30 "$NODE_DIR/burst.acks" 0 32
load_wait
is "$LOAD_ACKED" 2000 "2,000 submissions from 32 connections at once are all acknowledged"
is "$(sort -u "$NODE_DIR/burst.acks" | wc -l)" 2000 "each with its own id"
load_check "$a_HTTP" "$NODE_DIR/burst.acks" 60 > "$NODE_DIR/burst.states"
is "$(awk '$2 == "SUCCESS"' "$NODE_DIR/burst.states" | wc -l)" 2000 "and every one of them succeeds"

#  hold.py PORT CONNS SECS: open CONNS keep-alive connections, then poll
#  GET /jobs/p1 on each in turn for SECS seconds. Prints JSON.
cat > "$NODE_DIR/hold.py" <<'PY'
import json, selectors, socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
req = b"GET /jobs/p1 HTTP/1.1\r\nHost: t\r\n\r\n"
sel = selectors.DefaultSelector()
socks, errors, answers, bad = [], 0, [0] * n, 0
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    socks.append(s)
bufs = [b""] * n
for i, s in enumerate(socks):
    s.send(req)
    sel.register(s, selectors.EVENT_READ, i)
end = time.time() + secs
while time.time() < end:
    for key, _ in sel.select(timeout=1):
        i = key.data
        try:
            data = key.fileobj.recv(65536)
        except OSError:
            data = b""
        if not data:
            errors += 1
            sel.unregister(key.fileobj)
            continue
        bufs[i] += data
        head, sep, rest = bufs[i].partition(b"\r\n\r\n")
        if not sep:
            continue
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        if len(rest) < length:
            continue
        if not head.startswith(b"HTTP/1.1 200"):
            bad += 1
        bufs[i] = rest[length:]
        answers[i] += 1
        key.fileobj.send(req)
print(json.dumps({"connections": n, "errors": errors, "non_200": bad,
                  "answers": sum(answers), "unanswered": sum(1 for a in answers if a == 0),
                  "open": len(sel.get_map())}))
PY
/usr/bin/python3 "$NODE_DIR/hold.py" "$a_HTTP" "$conns" "$secs" > "$NODE_DIR/hold.json" &
hold=$!
sleep $((secs / 2))
api POST /tasks/count_entries/jobs '{"job_id":"during"}'
is "$STATUS" 200 "a job is accepted while $conns connections poll"
ok "and succeeds meanwhile" wait_state during SUCCESS 20
wait "$hold"
diag "hold: $(cat "$NODE_DIR/hold.json")"
h () { jq -r "$1" "$NODE_DIR/hold.json"; }
is "$(h .errors)" 0 "no polling connection was closed or failed"
is "$(h .non_200)" 0 "every poll answered 200"
is "$(h .unanswered)" 0 "every one of the $conns connections was answered"
is "$(h .open)" "$conns" "all $conns connections are still open at the end"
ok "they were answered over and over ($(h .answers) answers)" test "$(h .answers)" -gt "$((conns * 2))"

#  A client that never finishes its request is cut off at the deadline
#  (2 s) in epoll mode as well.
start=$(date +%s.%N)
/usr/bin/python3 - "$a_HTTP" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.send(b"GET / HTTP/1.1\r\n")
s.settimeout(0.5)
end = time.time() + 10
while time.time() < end:
    s.send(b"X")                 # a byte every 0.5 s: never idle
    try:
        if s.recv(100) == b"":
            break
    except socket.timeout:
        pass
    except OSError:
        break
PY
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
ok "a trickling client is cut off after about request_timeout ($took s)" \
   awk -v t="$took" 'BEGIN { exit !(t >= 1.5 && t <= 4.5) }'
#  Stopped while submissions are in flight: the node ends promptly, each
#  submission it acknowledged is there after a restart, and none of them
#  is lost or left unanswered by a connection held suspended.
load_start "$a_HTTP" echo_n stop 100000 5 "$NODE_DIR/stop.acks" 0 32
sleep 1
pid=$(cat "$NODE_DIR/a.pid")
t0=$(date +%s%N)
node_stop a
stopped_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok "the node stops within 5 s while 32 clients submit ($stopped_ms ms)" test "$stopped_ms" -lt 5000
ok "and cleanly" bash -c "! grep -qE 'Assertion|AddressSanitizer|runtime error' '$NODE_DIR/a.log'"
load_wait
ok "it had acknowledged submissions before it stopped ($LOAD_ACKED)" test "$LOAD_ACKED" -gt 0
node_start a || bail "node did not start again"
load_check "$a_HTTP" "$NODE_DIR/stop.acks" 60 > "$NODE_DIR/stop.states"
is "$(awk '$2 == "SUCCESS"' "$NODE_DIR/stop.states" | wc -l)" "$(sort -u "$NODE_DIR/stop.acks" | wc -l)" \
   "every acknowledged one is there after the restart, and succeeds"
done_testing
