#!/bin/bash
#  hardening.sh - what an unlucky operator and a hostile peer can do to a
#  node: a full state store (507, reads go on, recovery without restart),
#  job ids that differ only in case, huge ttls, a second node on the same
#  data directory, a write whose answer is late (504, safe retry), huge and
#  malformed mesh frames, peers posing as workers or as the janitor, and a
#  mesh bind that is not loopback.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "jq" command -v jq
need "python3 with zmq and msgpack" /usr/bin/python3 -c 'import zmq, msgpack'
node_dir

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/t.sql" <<'SQL'
-- name: echo
SELECT ? AS v;

-- name: slow
WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
SELECT x FROM c WHERE x % 1000000000 = 0 LIMIT 10;
SQL
base_ini () {   # base_ini NAME [extra app lines]
    cat <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-$1
worker_concurrency = 2
$2
[mesh]
bind = tcp://127.0.0.1:@MESH@
heartbeat_interval = 200ms
[db.src]
type = sqlite
dsn = @DIR@/data-$1/src.db
sample_data = true
[results.res]
type = sqlite
dsn = @DIR@/data-$1/res.db
INI
}
pid_of () { cat "$NODE_DIR/$1.pid"; }
rss_kb () { ps -o rss= -p "$1" | tr -d ' '; }

#  ---------------------------------------------------------------------
#  1. A full state store: 507, never 503, reads go on, no abort; purges
#  free space and new jobs are accepted again without a restart.
node_config full < <(base_ini full "state_map_size = 1MiB
state_map_max = 1MiB")
node_start full || bail "node full did not start"
pid=$(pid_of full)
arg=$(head -c 600 /dev/zero | tr '\0' 'x')
refused=0; unavailable=0; accepted=0; g=0
while [ $g -lt 200 ] && [ $refused -lt 5 ]; do
    g=$((g + 1))
    jobs=$(for i in $(seq 40); do printf '{"task":"echo","job_id":"f%d_%d","queue":"parked","args":["%s"]},' $g $i "$arg"; done)
    api POST /groups "{\"group_id\":\"fg$g\",\"jobs\":[${jobs%,}]}"
    case "$STATUS" in
        200) accepted=$((accepted + 1)) ;;
        507) refused=$((refused + 1)) ;;
        503) unavailable=$((unavailable + 1)) ;;
    esac
    #  Purges on the way, as in ordinary traffic.
    [ $((g % 7)) = 0 ] && api DELETE "/groups/fg$((g - 1))?purge=true"
done
ok "the node is alive after filling its store" kill -0 "$pid"
is "$refused" 5 "groups are refused once the store is full"
is "$unavailable" 0 "a full store answers 507, never 503"
api GET /health
is "$(jfield .data.state_store.full)" "true" "/health says the store is full"
api GET /metrics
like "$BODY" "dungbeetle_state_store_full 1" "/metrics says the store is full"
like "$BODY" "dungbeetle_jobs_refused_full_total [1-9]" "/metrics counts the refusals"
api GET "/jobs/f1_1"
is "$STATUS" 200 "reads go on while full"
api GET /jobs/queue/parked
is "$STATUS" 200 "the pending list reads while full"
#  Free space: purge the accepted groups (a cancel of a pending job is a
#  write that needs room: the reserve makes it possible).
purged=0
for i in $(seq $g); do
    api DELETE "/groups/fg$i?purge=true"
    [ "$STATUS" = 200 ] && purged=$((purged + 1))
    [ "$STATUS" = 200 ] || [ "$STATUS" = 404 ] || diag "purge of fg$i: $STATUS $BODY"
done
diag "accepted $accepted groups, purged $purged after the store filled"
ok "purges succeed on a full store" test "$purged" -ge "$((accepted - accepted / 7 - 1))"
sleep 1.5                 # the janitor drops the tables, the next check sees room
api POST /tasks/echo/jobs '{"job_id":"after_full","args":["x"]}'
is "$STATUS" 200 "new jobs are accepted again without a restart"
wait_state after_full SUCCESS 10
is "$(grep -c 'Assertion' "$NODE_DIR/full.log")" 0 "no assertion failed"
node_stop full

#  ---------------------------------------------------------------------
node_config main < <(base_ini main "request_timeout = 150ms
max_body_size = 4MB")
node_start main || bail "node main did not start"
pid=$(pid_of main)

#  2. Job ids that differ only in case would share a table on SQLite.
api POST /tasks/echo/jobs '{"job_id":"CaseA","args":["upper"]}'
is "$STATUS" 200 "CaseA is accepted"
wait_state CaseA SUCCESS 10
api POST /tasks/echo/jobs '{"job_id":"casea","args":["lower"]}'
is "$STATUS" 409 "casea is refused while CaseA keeps its table"
like "$(jfield .message)" "letter case" "the refusal says why"
api GET '/jobs/CaseA/results?format=csv'
like "$BODY" "upper" "CaseA's results are its own"
api DELETE '/jobs/CaseA?purge=true'
is "$STATUS" 200 "CaseA is purged"
api POST /tasks/echo/jobs '{"job_id":"casea","args":["lower"]}'
is "$STATUS" 200 "casea is accepted once CaseA is gone"
wait_state casea SUCCESS 10
api GET '/jobs/casea/results?format=csv'
like "$BODY" "lower" "casea's results are its own"

#  3. Huge ttls are refused with the bound, not overflowed.
api POST /tasks/echo/jobs '{"job_id":"t1","args":["x"],"ttl":9223372036854775}'
is "$STATUS" 400 "a ttl past the bound is 400"
like "$(jfield .message)" "315360000" "the refusal names the bound"
api POST /tasks/echo/jobs '{"job_id":"t2","args":["x"],"results_ttl":315360001}'
is "$STATUS" 400 "a results_ttl past the bound is 400"
api POST /tasks/echo/jobs '{"job_id":"t3","args":["x"],"ttl":315360000}'
is "$STATUS" 200 "the bound itself is accepted"
wait_state t3 SUCCESS 10

#  4. A second node on the same data directory refuses to start.
sed -e "s|^server = .*|server = 127.0.0.1:$(free_port)|" -e "s|^bind = .*|bind = tcp://127.0.0.1:$(free_port)|" \
    "$NODE_DIR/main.ini" > "$NODE_DIR/twin.ini"
out=$(timeout 20 "$DBT_BIN" --config "$NODE_DIR/twin.ini" 2>&1); rc=$?
ok "a second node on the same data_dir exits with an error" test "$rc" -ne 0 -a "$rc" -ne 124
like "$out" "in use by another dungbeetle node \\(pid $pid\\)" "it names the holder's pid"

#  5. A write answered too late is 504 (outcome unknown), and retrying it
#  with the same ids is safe: 409 with the kept job's record. Node front
#  sends queue "far" (no worker serves it) to main's dispatcher, which is
#  stopped meanwhile.
node_config front <<INI
[app]
worker_name = front
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-front
request_timeout = 1s
[mesh]
bind = tcp://127.0.0.1:@MESH@
dispatcher = tcp://127.0.0.1:$main_MESH
[db.src]
type = sqlite
dsn = @DIR@/data-front/src.db
sample_data = true
[results.res]
type = sqlite
dsn = @DIR@/data-front/res.db
INI
node_start front || bail "node front did not start"
jobs=$(for i in $(seq 100); do printf '{"task":"echo","job_id":"big%d","queue":"far","args":["x"]},' $i; done)
printf '{"group_id":"biggroup","jobs":[%s]}' "${jobs%,}" > "$NODE_DIR/big.json"
post_big () {
    STATUS=$(curl -s -o "$NODE_DIR/big.out" -w '%{http_code}' -X POST --data-binary @"$NODE_DIR/big.json" \
             "http://127.0.0.1:$front_HTTP/groups")
    BODY=$(cat "$NODE_DIR/big.out")
}
#  A first request through front sets up its pooled connection to main, so
#  the group reaches main's socket while main is stopped.
node_use front
api POST /tasks/echo/jobs '{"job_id":"warm","queue":"far","args":["x"]}'
is "$STATUS" 200 "front reaches main's dispatcher"
kill -STOP "$pid"
post_big
kill -CONT "$pid"
is "$STATUS" 504 "a group whose dispatcher answers too late is 504, not 503"
like "$(jfield .message)" "may or may not" "504 says the outcome is unknown"
node_use main
ok "the group was in fact kept" bash -c "for i in \$(seq 50); do \
    curl -s http://127.0.0.1:$main_HTTP/groups/biggroup | grep -q big100 && exit 0; sleep 0.2; done; exit 1"
post_big
is "$STATUS" 409 "the same group again is 409"
is "$(jfield .data.job_id)" "big1" "the 409 carries the kept job's record"
is "$(jfield .data.state)" "PENDING" "with its state"
node_stop front

#  6. Mesh frames: a 15 MiB frame of nils is refused without ballooning
#  memory, a 60 MiB and a 200 MiB frame are cut off by libzmq.
before=$(rss_kb "$pid")
/usr/bin/python3 - "$main_MESH" <<'PY'
import sys, zmq, time
ctx = zmq.Context()
for size in (15 << 20, 60 << 20, 200 << 20):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 2000)
    s.connect("tcp://127.0.0.1:%s" % sys.argv[1])
    body = b"\xdd" + (size - 5).to_bytes(4, "big") + b"\xc0" * (size - 5)
    s.send_multipart([b"DBTC01", b"\x01", body])
    time.sleep(1.5)
    s.close()
ctx.term()
PY
after=$(rss_kb "$pid")
diag "resident memory before ${before} KiB, after ${after} KiB"
ok "the node is alive after huge frames" kill -0 "$pid"
ok "huge frames did not grow the node by more than 200 MiB" test $((after - before)) -lt 204800
api GET /
is "$STATUS" 200 "the node still answers"

#  7. Peers posing as workers or as the janitor.
api POST /tasks/slow/jobs '{"job_id":"victim"}'
wait_state victim STARTED 10
worker=$(jfield .data.worker)
like "$worker" '^[^/]+/[0-9a-f]{12}$' "records show a display id, not the routing id"
/usr/bin/python3 - "$main_MESH" "$worker" <<'PY' > "$NODE_DIR/poke.out"
import sys, zmq, msgpack, time
ctx = zmq.Context()
endpoint = "tcp://127.0.0.1:%s" % sys.argv[1]
# A DEALER using the worker id the API shows: no takeover, no claims.
s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.IDENTITY, sys.argv[2].encode())
s.setsockopt(zmq.LINGER, 0)
s.connect(endpoint)
ready = {"name": "evil", "queues": ["default"], "capacity": 5, "running": []}
for _ in range(6):
    s.send_multipart([b"DBTW01", b"\x10", msgpack.packb(ready)])
s.send_multipart([b"DBTW01", b"\x13", msgpack.packb({"id": "victim", "attempt": 1, "ok": True, "rows": 999})])
# A DEALER without an identity: no jobs for it either.
a = ctx.socket(zmq.DEALER)
a.setsockopt(zmq.LINGER, 0)
a.connect(endpoint)
for _ in range(6):
    a.send_multipart([b"DBTW01", b"\x10", msgpack.packb(ready)])
got = 0
poller = zmq.Poller(); poller.register(s, zmq.POLLIN); poller.register(a, zmq.POLLIN)
end = time.time() + 1.5
while time.time() < end:
    for sock, _ in poller.poll(200):
        msg = sock.recv_multipart()
        if len(msg) == 3 and msg[1] == b"\x20":
            got += 1
print("jobs", got)
# The janitor's FORGET from outside the node.
c = ctx.socket(zmq.DEALER)
c.setsockopt(zmq.LINGER, 0)
c.connect(endpoint)
c.send_multipart([b"DBTC01", b"\x09", msgpack.packb({"rid": 7, "before": int(time.time() * 1000) + 10**9, "ids": ["t3"]})])
if c.poll(3000):
    print("forget", msgpack.unpackb(c.recv_multipart()[2])["code"])
PY
is "$(grep '^jobs' "$NODE_DIR/poke.out")" "jobs 0" "fake workers get no jobs"
is "$(grep '^forget' "$NODE_DIR/poke.out")" "forget 403" "FORGET from outside the node is refused"
api GET /jobs/victim
is "$(jfield .data.state)" "STARTED" "the real worker still runs its job"
is "$(jfield .data.worker)" "$worker" "on the same worker"
api GET /jobs/t3
is "$STATUS" 200 "the record FORGET named is still there"
api DELETE /jobs/victim
wait_state victim FAILURE 10
is "$(jfield .data.error)" "the job was canceled" "the real worker's query was cancelled on request"

#  8. Malformed messages are counted, and warned about once in a while.
/usr/bin/python3 - "$main_MESH" <<'PY'
import sys, zmq, time
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 2000)
s.connect("tcp://127.0.0.1:%s" % sys.argv[1])
for i in range(300):
    s.send_multipart([b"DBTC01", b"\x01", b"\x92\x01"])
time.sleep(1)
PY
api GET /metrics
malformed=$(printf '%s\n' "$BODY" | sed -n 's/^dungbeetle_mesh_malformed_total //p')
ok "300 malformed frames are counted" test "${malformed:-0}" -ge 300
warned=$(grep -c 'dropped malformed message: msgpack: truncated' "$NODE_DIR/main.log")
ok "but warned about at most twice" test "$warned" -le 2
node_stop main

#  9. A mesh bind reachable from the network needs an explicit choice.
node_config open < <(base_ini open | sed -e 's|^bind = .*|bind = tcp://0.0.0.0:@MESH@|')
out=$(timeout 20 "$DBT_BIN" --config "$NODE_DIR/open.ini" 2>&1); rc=$?
ok "a non-loopback mesh bind without keys stops start-up" test "$rc" -ne 0 -a "$rc" -ne 124
like "$out" "insecure = true" "the message says how to allow it"
node_config open < <(base_ini open | sed -e 's|^bind = .*|bind = tcp://0.0.0.0:@MESH@\ninsecure = true|')
node_start open
is "$?" 0 "with insecure = true it starts"
like "$(grep -i insecure "$NODE_DIR/open.log" | head -1)" "WARN" "and warns about it"
node_stop open

done_testing
