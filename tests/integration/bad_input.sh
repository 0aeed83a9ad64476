#!/bin/bash
#  bad_input.sh - every kind of bad input gets a clear error, never crashes
#  the node and never changes stored state (LMDB is dumped before and after).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "jq" command -v jq
need "mdb_dump (lmdb-utils)" command -v mdb_dump
need "python3 with zmq and msgpack" /usr/bin/python3 -c 'import zmq, msgpack'

node_dir
mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: entries_of
SELECT * FROM entries WHERE user_id = ? ORDER BY id;
-- name: count_entries
SELECT COUNT(*) AS n FROM entries;
SQL
node_config a <<'INI'
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
max_body_size = 1MB
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

#  Some state to protect: a finished job and a pending one.
api POST /tasks/count_entries/jobs '{"job_id":"keep1"}'
wait_state keep1 SUCCESS 20 || bail "setup job failed"
api POST /tasks/count_entries/jobs '{"job_id":"keep2","queue":"parked"}'
sleep 0.3
before=$(mdb_dump -a "$NODE_DIR/data" | md5sum)

post () { api POST "/tasks/$1/jobs" "$2"; }

post entries_of '{"job_id": "x", "args": ["user1"'
is "$STATUS" 400 "malformed JSON is 400"
is "$(jfield .message)" "error parsing request JSON" "malformed JSON message"
is "$(jfield .status)" "error" "malformed JSON gets the error envelope"
post entries_of '{"job_id":"tg1","args":["user1"]}garbage'
is "$STATUS" 400 "trailing garbage after the JSON body is 400"
is "$(jfield .message)" "error parsing request JSON" "trailing garbage message"
api POST /groups '{"jobs":[{"task":"count_entries","job_id":"tg2"}]} {}'
is "$STATUS" 400 "trailing garbage after a group body is 400"
is "$(jfield .message)" "error parsing JSON body" "group trailing garbage message"
#  Trailing whitespace is fine: the body is decoded and the task looked up.
post no_such_task "$(printf '{"job_id":"tg3"} \r\n\t')"
is "$STATUS" 404 "trailing whitespace after the JSON body is decoded"
post entries_of ''
is "$STATUS" 400 "empty body is 400"
is "$(jfield .message)" "request body is empty" "empty body message"
post entries_of '[1,2,3]'
is "$STATUS" 400 "a JSON array body is 400"
post no_such_task '{"job_id":"y"}'
is "$STATUS" 404 "unknown task is 404"
is "$(jfield .message)" "unrecognized task: no_such_task" "unknown task message"
post entries_of '{"job_id":"x\"; DROP TABLE t; --","args":["user1"]}'
is "$STATUS" 400 "hostile job id is 400"
like "$(jfield .message)" 'invalid characters in the `job_id`' "hostile job id message"
post entries_of '{"job_id":"../../etc/passwd","args":["user1"]}'
is "$STATUS" 400 "path-like job id is 400"
post entries_of "{\"job_id\":\"$(printf 'a%.0s' $(seq 1 65))\",\"args\":[\"user1\"]}"
is "$STATUS" 400 "65-character job id is 400"
post entries_of '{"job_id":"caf\u00e9","args":["user1"]}'
is "$STATUS" 400 "non-ASCII job id is 400"
post entries_of '{"job_id":"w1","args":[]}'
is "$STATUS" 400 "too few args is 400"
is "$(jfield .message)" "task 'entries_of' expects 1 args, got 0" "arg count message"
post entries_of '{"job_id":"w2","args":["a","b"]}'
is "$STATUS" 400 "too many args is 400"
post entries_of '{"job_id":"w3","args":[1]}'
is "$STATUS" 400 "a non-string arg is 400"
post entries_of '{"job_id":"w4","args":"user1"}'
is "$STATUS" 400 "args that are not an array are 400"
post entries_of '{"job_id":"w5","args":["user1"],"retries":"3"}'
is "$STATUS" 400 "retries as a string is 400"
post entries_of '{"job_id":"w6","args":["user1"],"retries":-1}'
is "$STATUS" 400 "negative retries is 400"
post entries_of '{"job_id":"w7","args":["user1"],"eta":"tomorrow"}'
is "$STATUS" 400 "bad eta is 400"
like "$(jfield .message)" "error parsing ETA" "bad eta message"
post entries_of '{"job_id":"w8","args":["user1"],"db":"nope"}'
is "$STATUS" 400 "unknown db is 400"
post entries_of '{"job_id":"w9","args":["user1"],"queue":"bad queue!"}'
is "$STATUS" 400 "bad queue name is 400"
post entries_of '{"job_id":"keep2","args":["user1"]}'
is "$STATUS" 409 "duplicate unfinished id is 409"
post entries_of '{"job_id":"w10","args":["user1\u0000x"]}'
is "$STATUS" 400 "an arg with a NUL character is 400"

#  10 MB body: refused before it is read whole.
big=$(mktemp)
head -c 10000000 /dev/zero | tr '\0' 'a' | sed 's/^/{"job_id":"big","args":["/; s/$/"]}/' > "$big"
STATUS=$(curl -s -o "$NODE_DIR/big.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
         --data-binary "@$big" "http://127.0.0.1:$CURRENT_PORT/tasks/entries_of/jobs")
rm -f "$big"
is "$STATUS" 413 "10 MB body is 413"
like "$(cat "$NODE_DIR/big.out")" '"message":"request body too large' "413 message"
#  Chunked body over the limit (no Content-Length).
STATUS=$(head -c 2000000 /dev/zero | tr '\0' 'a' | curl -s -o /dev/null -w '%{http_code}' -X POST \
         -H 'Transfer-Encoding: chunked' --data-binary @- "http://127.0.0.1:$CURRENT_PORT/tasks/entries_of/jobs")
is "$STATUS" 413 "chunked body over the limit is 413"

api POST /groups '{"group_id":"g x","jobs":[]}'
is "$STATUS" 400 "hostile group id is 400"
api POST /groups ''
is "$STATUS" 400 "empty group body is 400"
api POST /groups '{"jobs":[{"task":"entries_of","job_id":"ok1","args":["user1"]},{"task":"nope","job_id":"ok2"}]}'
is "$STATUS" 404 "group with an unknown task is refused"
api GET /jobs/ok1
is "$STATUS" 404 "a refused group queued none of its jobs"
api DELETE '/jobs/x%22%3B%20DROP%20TABLE%20t%3B%20--'
is "$STATUS" 404 "DELETE of a hostile id is 404"
api DELETE /jobs/keep1
is "$STATUS" 409 "DELETE of a finished job without purge is refused"
like "$(jfield .message)" "completed" "refusal says why"
is "$(printf '%s' "$BODY" | jq -s length)" "1" "one JSON body per response"

#  Garbage on the mesh port: truncated and hostile msgpack frames.
/usr/bin/python3 - "$a_MESH" <<'PY'
import sys, zmq, msgpack
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.connect("tcp://127.0.0.1:%s" % sys.argv[1])
frames = [
    [b"DBTC01"],                                        # too few frames
    [b"DBTC01", b"\x01", b"\x92\x01"],                  # truncated array
    [b"DBTC01", b"\x01", b"\xdd\x7f\xff\xff\xff"],       # array claiming 2G items
    [b"DBTC01", b"\x01", msgpack.packb({"rid": 1, "jobs": [{"task": 5}]})],
    [b"DBTC01", b"\x01", msgpack.packb({"rid": 2, "jobs": [{"task": "entries_of", "id": "z\"z", "args": ["a"]}]})],
    [b"DBTC01", b"\x02", msgpack.packb({"rid": 3, "job_id": "keep1", "group_id": "x"})],
    [b"DBTW01", b"\x13", msgpack.packb({"id": "keep2", "attempt": 1, "ok": True})],   # DONE from a stranger
    [b"DBTW01", b"\x10", msgpack.packb({"name": "evil", "queues": "x", "capacity": 10**12})],
    [b"XXXX", b"\x01", b"\x80"],
    [b"DBTC01", b"\x01\x02", b"\x80"],
]
for f in frames:
    s.send_multipart(f)
# The well-formed bad requests get error replies with codes.
codes = []
poller = zmq.Poller(); poller.register(s, zmq.POLLIN)
while dict(poller.poll(2000)):
    msg = s.recv_multipart()
    if len(msg) == 3 and msg[0] == b"DBTC01":
        codes.append(msgpack.unpackb(msg[2]).get("code"))
print("codes", sorted(c for c in codes if c))
PY
api GET /
is "$STATUS" 200 "node still answers after garbage on the mesh"

sleep 0.5
after=$(mdb_dump -a "$NODE_DIR/data" | md5sum)
is "$after" "$before" "stored state is unchanged by all of the above"
api GET /jobs/keep2
is "$(jfield .data.state)" "PENDING" "pending job still pending"

done_testing
