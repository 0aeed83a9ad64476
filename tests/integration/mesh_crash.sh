#!/bin/bash
#  mesh_crash.sh - kill -9 of a dispatcher node at random moments while
#  jobs are submitted through another node's HTTP front: 5 rounds of 2,000
#  jobs (10,000 in all), the killed node restarted each time. Afterwards
#  every job that got a 200 is found, terminal, on both nodes (the front's
#  answer comes from its replica), and the replica equals the dispatcher's
#  records.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "python3 at /usr/bin/python3" test -x /usr/bin/python3
need "mdb_dump (apt-get install lmdb-utils)" command -v mdb_dump
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/crash.sql" <<'SQL'
-- name: quick
SELECT $1::int AS n;
SQL
d_mesh=$(free_port)
common="[db.pg]
type = postgres
dsn = $PG_DSN
[results.pg]
type = postgres
dsn = $PG_DSN
unlogged = true"
node_config disp <<INI
[app]
worker_name = disp
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-disp
worker_concurrency = 4
max_interruptions = 20
[mesh]
bind = tcp://127.0.0.1:$d_mesh
heartbeat_interval = 300ms
$common
INI
node_config front <<INI
[app]
worker_name = front
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-front
worker_concurrency = 4
request_timeout = 5s
[mesh]
dispatch = false
peers = tcp://127.0.0.1:$d_mesh
heartbeat_interval = 300ms
$common
INI
node_start disp || bail "disp did not start"
node_start front || bail "front did not start"

post () {       # post ROUND: 2,000 jobs through front, 8 clients; "id status" lines
    /usr/bin/python3 - "$front_HTTP" "$1" <<'PY'
import sys, json, http.client, threading
port, rnd = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
todo = list(range(2000))
def client():
    conn = None
    while True:
        with lock:
            if not todo:
                return
            n = todo.pop()
        job = "c%s_%d" % (rnd, n)
        status = "err"
        try:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/tasks/quick/jobs", json.dumps({"job_id": job, "args": [str(n)]}),
                         {"Content-Type": "application/json"})
            r = conn.getresponse(); r.read(); status = r.status
        except Exception:
            conn = None
        with lock:
            print(job, status, flush=True)
threads = [threading.Thread(target=client) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
PY
}

: > "$NODE_DIR/posted.txt"
for round in 1 2 3 4 5; do
    post "$round" >> "$NODE_DIR/posted.txt" &
    poster=$!
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + (r % 250) / 100 }')"
    node_stop disp KILL
    node_start disp || bail "disp did not restart in round $round"
    wait $poster
    diag "round $round: $(grep -c "^c${round}_.* 200$" "$NODE_DIR/posted.txt") of 2000 accepted"
done
accepted=$(awk '$2 == 200' "$NODE_DIR/posted.txt" | wc -l)
diag "accepted $accepted of 10000; the rest were refused (503) or unanswered (504) while disp was down"
ok "most jobs were accepted" test "$accepted" -ge 5000

check () {      # check PORT: the states of every accepted job, as that node says
    /usr/bin/python3 - "$NODE_DIR/posted.txt" "$1" <<'PY'
import sys, json, http.client, time
ids = [l.split()[0] for l in open(sys.argv[1]) if l.split()[1:2] == ["200"]]
left, states, errors, conn = set(ids), {}, {}, None
deadline = time.time() + 180
while left and time.time() < deadline:
    for job in sorted(left):
        try:
            conn = conn or http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]), timeout=5)
            conn.request("GET", "/jobs/" + job)
            r = conn.getresponse(); body = r.read()
            data = json.loads(body)["data"] if r.status == 200 else {}
            state = data.get("state", "missing")
            if state == "FAILURE":
                errors[job] = data.get("error") or ""
        except Exception:
            conn, state = None, "unreachable"
        states[job] = state
        if state in ("SUCCESS", "FAILURE"):
            left.discard(job)
    if left:
        time.sleep(0.5)
for job in ids:
    print(job, states.get(job, "unknown"), errors.get(job, ""))
PY
}
check "$disp_HTTP" > "$NODE_DIR/states-disp.txt"
check "$front_HTTP" > "$NODE_DIR/states-front.txt"
for node in disp front; do
    is "$(awk '$2 == "missing"' "$NODE_DIR/states-$node.txt" | wc -l)" 0 "every accepted job is found on $node"
    is "$(awk '$2 != "SUCCESS" && $2 != "FAILURE"' "$NODE_DIR/states-$node.txt" | wc -l)" 0 \
       "every accepted job is terminal on $node"
done
is "$(awk '$2 == "FAILURE"' "$NODE_DIR/states-disp.txt" | wc -l)" 0 "none of them failed"
awk '$2 == "FAILURE"' "$NODE_DIR/states-disp.txt" | head -5 | while read -r line; do diag "failed: $line"; done
table_rows () { psql "$PG_DSN" -X -A -t -q -c "SELECT n FROM results_$1"; }
sample=$(awk '$2 == 200 { print $1 }' "$NODE_DIR/posted.txt" | shuf -n 20 --random-source=/dev/zero)
bad=0
for id in $sample; do
    [ "$(table_rows "$id")" = "${id##*_}" ] || { diag "results of $id: '$(table_rows "$id")'"; bad=$((bad + 1)); }
done
is "$bad" 0 "a sample of results tables holds what the task returns"
dump () { mdb_dump -s "$2" "$1" | sed '1,/^HEADER=END/d'; }
same () {
    local rdir
    rdir=$(ls -d "$NODE_DIR/data-front/replica/disp".* 2>/dev/null | head -1)
    [ -n "$rdir" ] && cmp -s <(dump "$NODE_DIR/data-disp" jobs) <(dump "$rdir" jobs)
}
ok "the front's replica equals the dispatcher's records" bash -c "$(declare -f dump same); \
    NODE_DIR='$NODE_DIR'; for i in \$(seq 60); do same && exit 0; sleep 0.5; done; exit 1"

done_testing
