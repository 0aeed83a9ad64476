#!/bin/bash
#  http_front.sh - the HTTP front under hostile clients: slow connections
#  are cut off at the request deadline and cannot lock other clients out
#  (per-address and total connection limits), a streamed download is not
#  cut off, over-limit bodies are refused before they are read, ambiguous
#  framing is 400, and HEAD answers as GET without the body.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
#  Root may raise the hard open file limit for the node (checked below).
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 2000 ] || ulimit -Hn 4096 2>/dev/null
need "jq" command -v jq
need "python3" command -v python3

node_dir
mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: count_entries
SELECT COUNT(*) AS n FROM entries;

-- name: many_rows
WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
SELECT i, 'padding padding padding padding padding' AS pad FROM n;
SQL
node_config a <<'INI'
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
request_timeout = 2s
max_connections_per_ip = 200
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
like "$(cat "$NODE_DIR/a.log")" "http: open file limit (is|raised)" "the open file limit is logged"
like "$(cat "$NODE_DIR/a.log")" "at most [0-9]+ connections, 200 per client address" \
     "the connection limits are logged"
max=$(sed -n 's/.*at most \([0-9]*\) connections.*/\1/p' "$NODE_DIR/a.log" | head -1)
#  1200 connections at once need the descriptors (server and client side).
#  A low hard open file limit skips this check, but never under CI=true.
many=yes
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 2000 ] || many=
if [ -n "$many" ] || [ "${CI:-}" = true ]; then
    ok "the total limit is above the old fixed 1000 (${max})" test "${max:-0}" -gt 1300
else
    printf 'ok %d - %s # SKIP %s\n' "$((_tap_n += 1))" "the total limit is above the old fixed 1000" \
        "hard open file limit $(ulimit -Hn) < 2000"
fi

#  --- Slow clients. Each sends a byte every 0.5 s and never completes its
#  request, so libmicrohttpd's idle timeout (2 s) never fires; only the
#  whole-request deadline (request_timeout = 2s) ends them.

#  timed METHOD PATH [BODY] [curl args...]: "STATUS SECONDS" of one call.
timed () {
    local method=$1 path=$2; shift 2
    local body=
    if [ $# -gt 0 ]; then body=$1; shift; fi
    curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}' -X "$method" \
         ${body:+--data-binary "$body"} "$@" "$url$path"
}
prompt () {     # prompt "STATUS SECONDS" WANT: right status within 1 s
    local status=${1% *} secs=${1#* }
    [ "$status" = "$2" ] && awk -v s="$secs" 'BEGIN { exit !(s < 1.0) }'
}
#  slow COUNT SOURCES MODE: start the slow clients; waits until they are
#  all open. The summary lands in $NODE_DIR/slow.json.
slow () {
    rm -f "$NODE_DIR/ready" "$NODE_DIR/slow.json"
    python3 "$top_srcdir/tests/lib/slow_clients.py" "$a_HTTP" "$1" "$2" "$NODE_DIR/ready" \
            0.5 12 "$3" > "$NODE_DIR/slow.json" &
    slow_pid=$!
    local n=0
    while [ ! -e "$NODE_DIR/ready" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
}
sfield () { jq -r "$1" "$NODE_DIR/slow.json"; }
within () { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v != "null" && v >= lo && v <= hi) }'; }

#  1000 connections from one address: 200 are let in, the rest closed.
n=1000
[ -n "$many" ] || n=400
slow "$n" 127.0.0.2 headers
held=$(cut -d' ' -f2 "$NODE_DIR/ready")
ok "one address holds at most max_connections_per_ip connections (${held} of $n)" \
   test "${held:-0}" -le 200 -a "${held:-0}" -ge 150
r=$(timed GET /health)
ok "/health answers promptly meanwhile ($r)" prompt "$r" 200
r=$(timed POST /tasks/count_entries/jobs '{"job_id":"during1"}')
ok "a job submission answers promptly meanwhile ($r)" prompt "$r" 200
r=$(timed GET /health '' --interface 127.0.0.3)
ok "so does another client address ($r)" prompt "$r" 200
wait "$slow_pid"
diag "slow clients: $(cat "$NODE_DIR/slow.json")"
is "$(sfield .open)" 0 "the server closed every slow connection"
ok "each about request_timeout after it opened ($(sfield .min_life)-$(sfield .max_life) s)" \
   within "$(sfield .min_life)" 1.5 3.5
ok "none later than request_timeout + 1.5 s" within "$(sfield .max_life)" 1.5 3.5

#  1200 connections from 8 addresses, each sending whole headers and then
#  dripping its body: more than the old limit of 1000 connections in all
#  (300 from 2 addresses when the descriptor limit is low).
if [ -n "$many" ]; then
    slow 1200 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9 body
    want=1200
else
    slow 300 127.0.0.2,127.0.0.3 body
    want=300
fi
held=$(cut -d' ' -f2 "$NODE_DIR/ready")
is "$held" "$want" "$want slow connections from several addresses are all let in"
r=$(timed GET /health)
ok "/health answers promptly meanwhile ($r)" prompt "$r" 200
r=$(timed POST /tasks/count_entries/jobs '{"job_id":"during2"}')
ok "a job submission answers promptly meanwhile ($r)" prompt "$r" 200
wait "$slow_pid"
diag "slow clients: $(cat "$NODE_DIR/slow.json")"
is "$(sfield .open)" 0 "the server closed every slow body"
ok "each about request_timeout after it opened ($(sfield .min_life)-$(sfield .max_life) s)" \
   within "$(sfield .min_life)" 1.5 3.5
ok "none later than request_timeout + 1.5 s" within "$(sfield .max_life)" 1.5 3.5
ok "the deadline cuts are logged" grep -q "http: closed [0-9]* connections* whose request took over 2000 ms" \
   "$NODE_DIR/a.log"
ok "the jobs submitted meanwhile ran" wait_state during2 SUCCESS 20

#  --- A results download that takes longer than request_timeout is not
#  cut off: the deadline covers receiving a request, not sending an answer.
api POST /tasks/many_rows/jobs '{"job_id":"many"}'
ok "a job with 100000 rows ran" wait_state many SUCCESS 60
python3 - "$a_HTTP" > "$NODE_DIR/download.txt" <<'PY'
import json, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)     # small window: the server must wait
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /jobs/many/results HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
start, data = time.monotonic(), b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
    time.sleep(0.01)                                          # about 1 MB/s
took = time.monotonic() - start
head, _, body = data.partition(b"\r\n\r\n")
if b"chunked" in head.lower():
    plain, rest = b"", body
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        plain, rest = plain + rest[:n], rest[n + 2:]
    body = plain
try:
    rows = len(json.loads(body)["data"]["rows"])
except ValueError:
    rows = -1
print("%d %.1f %d" % (rows, took, len(data)))
PY
read -r rows took bytes < "$NODE_DIR/download.txt"
diag "download: $rows rows, $bytes bytes in $took s"
ok "the download took longer than request_timeout ($took s)" within "$took" 3 60
is "$rows" 100000 "and arrived whole"

#  --- Bodies declared over max_body_size (1MB) are refused before they are
#  read: no "100 Continue", and the 413 comes without the body being sent.
#  raw REQUEST: the server's answer to REQUEST (Python escapes), until it
#  closes or 3 s pass, as "FIRST-LINE | SECONDS | closed/open | BODY".
raw () {
    python3 - "$a_HTTP" "$1" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(3)
start, data, state = time.monotonic(), b"", "open"
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            state = "closed"
            break
        data += chunk
except (socket.timeout, ConnectionResetError):
    pass
head, _, body = data.partition(b"\r\n\r\n")
print("%s | %.1f | %s | %s" % (head.split(b"\r\n")[0].decode(), time.monotonic() - start,
                               state, body.decode(errors="replace")))
PY
}
post='POST /tasks/count_entries/jobs HTTP/1.1\r\nHost: x\r\n'
answer=$(raw "${post}Content-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
like "$answer" '^HTTP/1.1 413 ' "Expect: 100-continue with an over-limit length gets 413, not 100"
like "$answer" 'request body too large' "with the error envelope"
like "$answer" '\| closed \|' "and the connection is closed, the body unread"
answer=$(raw "${post}Content-Length: 10000000\r\n\r\n")
like "$answer" '^HTTP/1.1 413 ' "an over-limit length gets 413 before any body is sent"
answer=$(raw "${post}Content-Length: 16\r\nExpect: 100-continue\r\n\r\n")
like "$answer" '^HTTP/1.1 100 Continue' "a length within the limit still gets 100 Continue"

#  --- Framing: duplicate or non-decimal Content-Length, or one alongside
#  Transfer-Encoding, is 400.
answer=$(raw "${post}Content-Length: 16\r\nContent-Length: 16\r\n\r\n{\"job_id\":\"dup\"}")
like "$answer" '^HTTP/1.1 400 ' "two equal Content-Length headers are 400"
like "$answer" '"message":"more than one Content-Length header"' "with a message saying so"
answer=$(raw "${post}Content-Length: 16\r\nContent-Length: 5\r\n\r\n{\"job_id\":\"dup\"}")
like "$answer" '^HTTP/1.1 400 ' "two different Content-Length headers are 400"
api GET /jobs/dup
is "$STATUS" 404 "and no job was queued from either"
for value in '+16' '16 16' '0x10' '-1' '1.6e1' ''; do
    answer=$(raw "${post}Content-Length: $value\r\n\r\n{\"job_id\":\"dup\"}")
    like "$answer" '^HTTP/1.1 400 ' "Content-Length '$value' is 400"
done
answer=$(raw "${post}Content-Length: 16\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"job_id\":\"dup\"}\r\n0\r\n\r\n")
like "$answer" '^HTTP/1.1 400 ' "Content-Length with Transfer-Encoding is 400"
answer=$(raw "${post}Content-Length: 0016\r\nConnection: close\r\n\r\n{\"job_id\":\"z16\"}")
like "$answer" '^HTTP/1.1 200 ' "a plain decimal length (leading zeros too) is accepted"

#  --- HEAD: GET's status and headers, no body.
#  head_of PATH [-I]: "STATUS|Content-Type|Content-Length|body bytes" of a
#  GET, or with -I of a HEAD.
head_of () {
    local status type length size
    size=$(curl -s -D "$NODE_DIR/h" -o /dev/null -w '%{size_download}' ${2:+-I} "$url$1")
    status=$(head -1 "$NODE_DIR/h" | cut -d' ' -f2)
    type=$(grep -i '^content-type:' "$NODE_DIR/h" | tr -d '\r' | cut -d' ' -f2-)
    length=$(grep -i '^content-length:' "$NODE_DIR/h" | tr -d '\r' | cut -d' ' -f2)
    printf '%s|%s|%s|%s' "$status" "$type" "$length" "$size"
}
for path in / /tasks /jobs/during1 /jobs/nope /groups/nope /jobs/queue/default /no/such/route; do
    get=$(head_of "$path"); head=$(head_of "$path" -I)
    is "${head%|*}" "${get%|*}" "HEAD $path: same status and headers as GET (${get%|*})"
    is "${head##*|}" 0 "HEAD $path: no body"
done
r=$(curl -s -I -o /dev/null -w '%{http_code}|%{size_download}' "$url/health")
is "$r" "200|0" "HEAD /health: 200, no body"
api POST /tasks/count_entries/jobs '{"job_id":"small"}'
wait_state small SUCCESS 20
head=$(curl -s -I -o /dev/null -w '%{http_code}|%{content_type}|%{size_download}' "$url/jobs/small/results")
is "$head" "200|application/json; charset=utf-8|0" "HEAD of a results download: 200, its type, no body"
allow=$(curl -s -o /dev/null -D - -X PUT "$url/jobs/small" | tr -d '\r' | sed -n 's/^Allow: //Ip')
is "$allow" "GET, HEAD, DELETE" "Allow lists HEAD where it lists GET"
r=$(curl -s -I -o /dev/null -w '%{http_code}' "$url/tasks/count_entries/jobs")
is "$r" 405 "HEAD on a POST-only route is 405"
allow=$(curl -s -I "$url/tasks/count_entries/jobs" | tr -d '\r' | sed -n 's/^Allow: //Ip')
is "$allow" "POST" "with Allow: POST"

pid=$(cat "$NODE_DIR/a.pid")
ok "the node is still running" kill -0 "$pid"
node_stop a TERM
ok "it stops on SIGTERM" test -n "$pid" -a ! -e "/proc/$pid"
#  Memory errors and undefined behaviour fail the test. Leaks at exit are
#  shown as a diagnostic, not judged: this test is about the HTTP front,
#  and leak stacks that stop inside libczmq cannot be told apart by module.
report=$(grep -E "ERROR: AddressSanitizer|runtime error" "$NODE_DIR/a.log" | head -3)
is "$report" "" "and logged no memory error or undefined behaviour (--enable-sanitizers builds)"
grep -q "LeakSanitizer" "$NODE_DIR/a.log" && diag "leaks at exit: $(grep SUMMARY "$NODE_DIR/a.log")"
done_testing
