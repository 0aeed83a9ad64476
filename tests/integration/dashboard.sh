#!/bin/bash
#  dashboard.sh - the web dashboard (/ui/) in headless Chromium against a
#  node with real jobs (SQLite source and results, PostgreSQL for a long
#  query): the overview's counts, a job page following its job to SUCCESS
#  and showing its rows, a group page, the Cancel button stopping a
#  running query on the PostgreSQL server, the token prompt; the JSON
#  routes it reads; pages over 100,000 jobs answered fast with a bounded
#  size; a second node without a dispatcher showing the first's queues,
#  workers of both nodes and its replica lag. Screenshots of the overview
#  and a job page go next to this test's log.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "psql" command -v psql
need "chromium (apt-get install chromium)" test -x /usr/bin/chromium
need "chromedriver (apt-get install chromium-driver)" test -x /usr/bin/chromedriver
need "python3-selenium" /usr/bin/python3 -c 'import selenium'
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg

SHOTS=${top_builddir:-.}/tests/integration
mkdir -p "$SHOTS"
DRIVER="$top_srcdir/tests/integration/dashboard.py"

#  browser DESC CHECK ARGS...: one check of dashboard.py, its notes as diagnostics.
browser () {
    local desc=$1 out rc; shift
    out=$(/usr/bin/python3 "$DRIVER" "$@" 2>&1); rc=$?
    printf '%s\n' "$out" | grep '^# ' | head -40
    [ $rc = 0 ] || printf '%s\n' "$out" | grep -v '^# ' | tail -15 | sed 's/^/#   /'
    _tap_result $rc "$desc"
}

pgq () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
sleeping () { pgq "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT %pg_sleep%' AND state = 'active' AND pid <> pg_backend_pid()"; }

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: numbers
-- db: lite
-- results: lres
WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < CAST (?1 AS INTEGER))
SELECT n, 'row ' || n AS label, n * 1.5 AS half FROM c;

-- name: broken
-- db: lite
-- results: lres
SELECT abs (-9223372036854775808) AS overflows;

-- name: parked
-- db: lite
-- results: lres
-- queue: parked
SELECT 1 AS one;

-- name: pg_slow
-- db: pg
-- results: pres
SELECT $1::int AS n FROM pg_sleep($1);
SQL

config () {     # config [TOKEN LINE]
    cat <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 3
max_body_size = 16MB
worker_name = a
$1
[mesh]
bind = tcp://127.0.0.1:@MESH@
heartbeat_interval = 200ms
[db.lite]
type = sqlite
dsn = @DIR@/source.db
sample_data = true
[db.pg]
type = postgres
dsn = $PG_DSN
[results.lres]
type = sqlite
dsn = @DIR@/results.db
[results.pres]
type = postgres
dsn = $PG_DSN
INI
}
node_config a < <(config)
node_start a || bail "node did not start"
UI="http://127.0.0.1:$a_HTTP/ui/"

#  -- the files ------------------------------------------------------------
api GET /ui/
is "$STATUS" 200 "GET /ui/ serves the page"
like "$BODY" "<script src=\"app.js\">" "the page loads its script from /ui/"
api GET /ui/app.js
is "$STATUS" 200 "GET /ui/app.js"
ok "the page makes no request outside the node" bash -c \
    "! curl -s '$UI' '${UI}app.js' '${UI}style.css' | grep -Eo '(https?:)?//[A-Za-z0-9.-]+' | grep -v '^//\$'"
api GET /ui/nosuch.css
is "$STATUS" 404 "an unknown file is 404"
api POST /queues '{}'
is "$STATUS" 405 "POST /queues is 405"

#  -- real jobs: 3 SUCCESS, 2 FAILURE, 2 PENDING (parked by eta), 1 STARTED
for i in 1 2 3; do
    api POST /tasks/numbers/jobs "{\"job_id\":\"ok$i\",\"args\":[\"$((i * 10))\"]}"
done
api POST /tasks/broken/jobs '{"job_id":"bad1"}'
api POST /tasks/broken/jobs '{"job_id":"bad2"}'
eta=$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M:%S')
api POST /tasks/numbers/jobs "{\"job_id\":\"later1\",\"args\":[\"5\"],\"eta\":\"$eta\"}"
api POST /tasks/numbers/jobs "{\"job_id\":\"later2\",\"args\":[\"5\"],\"eta\":\"$eta\"}"
api POST /tasks/pg_slow/jobs '{"job_id":"sleep1","args":["60"]}'
ok "ok3 succeeds" wait_state ok3 SUCCESS 20
ok "bad2 fails" wait_state bad2 FAILURE 20
ok "sleep1 is running" wait_state sleep1 STARTED 20

api GET /queues
is "$STATUS" 200 "GET /queues"
row () { jfield ".data.queues[] | select(.name == \"default\") | $1"; }
is "$(row '[.depth, .pending, .running, .retrying, .succeeded, .failed, .failed_last_hour] | @csv')" \
   "2,2,1,0,3,2,2" "GET /queues counts the default queue's jobs by state"
is "$(row '.workers[0] | [.node, .workers, .slots, .busy, .free] | @csv')" '"a",1,3,1,2' \
   "GET /queues: the node's worker, its slots and the free ones"
is "$(jfield '.data.dispatchers[0] | [.node, .answered] | @csv')" '"a",true' "the own dispatcher answered"

browser "the overview shows the right counts" overview "$UI" "$SHOTS/dashboard-overview.png" default \
    depth=2 running=1 retrying=0 succeeded=3 failed=2 failed_last_hour=2
ok "overview screenshot written" test -s "$SHOTS/dashboard-overview.png"

api GET '/queues/default/jobs?state=SUCCESS&limit=2'
is "$(jfield '[.data.total, (.data.jobs | length), .data.jobs[0].state] | @csv')" '3,2,"SUCCESS"' \
   "a page of 2 of the 3 SUCCESS jobs"
page1=$(jfield '[.data.jobs[] | .job_id + "=" + .finished_at] | join(" ")')
next=$(jfield .data.next)
api GET "/queues/default/jobs?state=SUCCESS&limit=2&after=$next"
is "$(jfield '[(.data.jobs | length), .data.next == null] | @csv')" '1,true' \
   "the cursor gives the rest, and no further cursor"
page2=$(jfield '[.data.jobs[] | .job_id + "=" + .finished_at] | join(" ")')
is "$(printf '%s\n' $page1 $page2 | cut -d= -f1 | sort | tr '\n' ' ')" "ok1 ok2 ok3 " "the pages hold each job once"
is "$(printf '%s\n' $page1 $page2 | cut -d= -f2 | sort -r | tr '\n' ' ')" \
   "$(printf '%s\n' $page1 $page2 | cut -d= -f2 | tr '\n' ' ')" "latest finish first"
api GET '/queues/default/jobs?state=WAITING'
is "$STATUS" 400 "an unknown state is 400"
api GET '/queues/default/jobs?after=nonsense'
is "$STATUS" 400 "a cursor the node did not make is 400"

api GET /jobs/ok2/detail
is "$(jfield '[.data.state, .data.rows, .data.args[0], (.data.preview.rows | length), .data.preview.rows[0][1], .data.downloads.csv] | @csv')" \
   '"SUCCESS",20,"20",20,"row 1","/jobs/ok2/results?format=csv"' "job detail: fields, preview rows, download link"
is "$(jfield '[.data.preview.columns[] | .name + ":" + .type] | join(",")')" "n:BIGINT,label:TEXT,half:DOUBLE" \
   "job detail: the preview's column types"
api GET '/jobs/ok2/detail?rows=5'
is "$(jfield '[(.data.preview.rows | length), .data.preview.more] | @csv')" "5,true" "a shorter preview says more rows follow"
api GET /jobs/bad1/detail
like "$(jfield .data.error)" "overflow" "job detail of a failed job has its error"
api GET /jobs/nosuch/detail
is "$STATUS" 404 "detail of an unknown job is 404"

#  -- a job page follows its job from PENDING to SUCCESS ---------------------
soon=$(date -u -d '+6 seconds' '+%Y-%m-%d %H:%M:%S')
api POST /tasks/numbers/jobs "{\"job_id\":\"watch1\",\"args\":[\"25\"],\"eta\":\"$soon\"}"
is "$STATUS" 200 "a job due in a few seconds"
browser "the job page shows its state change to SUCCESS and its rows" job "$UI" \
    "$SHOTS/dashboard-job.png" watch1 25 1
ok "job page screenshot written" test -s "$SHOTS/dashboard-job.png"

#  -- a group page --------------------------------------------------------
api POST /groups '{"group_id":"grp1","jobs":[{"task":"numbers","job_id":"gj1","args":["3"]},{"task":"numbers","job_id":"gj2","args":["4"]}]}'
is "$STATUS" 200 "a group of two jobs"
both_done () { wait_state gj1 SUCCESS 20 && wait_state gj2 SUCCESS 20; }
ok "its jobs succeed" both_done
browser "the group page shows the group and its jobs" group "$UI" grp1 gj1 gj2

#  -- the Cancel button stops the running query on PostgreSQL ---------------
is "$(sleeping)" 1 "the long query runs on the PostgreSQL server"
browser "the Cancel button cancels the running job" cancel "$UI" sleep1
gone=no
for _ in $(seq 1 40); do
    [ "$(sleeping)" = 0 ] && { gone=yes; break; }
    sleep 0.1
done
is "$gone" yes "pg_stat_activity has no such query left"
api GET /jobs/sleep1
is "$(jfield '[.data.state, .data.error] | @csv')" '"FAILURE","the job was canceled"' \
   "the job is FAILURE, as the API documents a cancel"

#  -- 100,000 jobs: pages and counts stay fast and bounded -------------------
bulk_eta=$(date -u -d '+1 day' '+%Y-%m-%d %H:%M:%S')
for g in $(seq 0 9); do
    /usr/bin/python3 - "$g" "$bulk_eta" > "$NODE_DIR/group.json" <<'PY'
import json, sys
g, eta = int(sys.argv[1]), sys.argv[2]
print(json.dumps({"group_id": "bulk%d" % g, "jobs": [
    {"task": "parked", "job_id": "b%d-%05d" % (g, i), "eta": eta} for i in range(10000)]}))
PY
    status=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$NODE_DIR/group.json" \
             "http://127.0.0.1:$a_HTTP/groups")
    [ "$status" = 200 ] || diag "group $g: HTTP $status"
done
api GET '/queues/parked/jobs?limit=1'
is "$(jfield .data.total)" 100000 "100,000 jobs in the parked queue"
read -r code size took < <(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
    "http://127.0.0.1:$a_HTTP/queues/parked/jobs?state=PENDING&limit=50")
diag "a page of 50 of 100,000 jobs: $size bytes in $took s"
is "$code" 200 "a page of the 100,000 jobs"
ok "it is answered within 1 s" awk -v t="$took" 'BEGIN { exit !(t < 1.0) }'
ok "its size is bounded (50 jobs, under 30 kB)" test "$size" -lt 30000
read -r code size took < <(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
    "http://127.0.0.1:$a_HTTP/queues/parked/jobs?state=PENDING&limit=50000")
is "$code" 400 "a page over 500 jobs is refused"
read -r code size took < <(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
    "http://127.0.0.1:$a_HTTP/queues")
diag "the overview with 100,000 jobs: $size bytes in $took s"
ok "GET /queues with 100,000 jobs answers within 1 s" awk -v t="$took" 'BEGIN { exit !(t < 1.0) }'
browser "the queue page lists one page of the 100,000 jobs" list "$UI" parked PENDING 50

#  -- any node shows the whole mesh: a second node without a dispatcher -----
node_config b <<INI
[app]
worker_name = b
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-b
worker_concurrency = 2
[mesh]
dispatch = false
bind = tcp://127.0.0.1:@MESH@
peers = tcp://127.0.0.1:$a_MESH
heartbeat_interval = 200ms
[db.lite]
type = sqlite
dsn = @DIR@/source.db
[db.pg]
type = postgres
dsn = $PG_DSN
[results.lres]
type = sqlite
dsn = @DIR@/results.db
[results.pres]
type = postgres
dsn = $PG_DSN
INI
node_start b || bail "node b did not start"
counts='.data.queues[] | select(.name == "default") | [.dispatcher, .depth, .running, .retrying, .succeeded, .failed, .failed_last_hour] | @csv'
node_use a
api GET /queues
want=$(jfield "$counts")
node_use b
caught_up=no
for _ in $(seq 1 100); do
    api GET '/queues/parked/jobs?limit=1'
    if [ "$(jfield .data.total 2>/dev/null)" = 100000 ]; then
        api GET /queues
        [ "$(jfield '[.data.queues[] | select(.name == "default") | .workers[].node] | sort | join(",")')" = "a,b" ] \
            && { caught_up=yes; break; }
    fi
    sleep 0.2
done
is "$caught_up" yes "node b reads a's 100,000 jobs and sees both nodes' workers"
is "$(jfield "$counts")" "$want" "node b's overview counts a's queue as a does"
is "$(jfield '.data.peers[0] | [.node, .up, .replica_lag_ms >= 0] | @csv')" '"a",true,true' \
   "node b lists a as a peer with its replica lag"
is "$(jfield '[.data.dispatchers[] | .node + "=" + (.answered | tostring)] | join(",")')" "a=true" \
   "node b asked a's dispatcher for its workers"
browser "node b's page shows a's queue with a's counts" overview "http://127.0.0.1:$b_HTTP/ui/" \
    "$NODE_DIR/b-overview.png" default depth=2 running=0 succeeded=6 failed=3
api GET /jobs/ok2/detail
is "$(jfield '[.data.state, .data.dispatcher, (.data.preview.rows | length)] | @csv')" '"SUCCESS","a",20' \
   "node b shows a's job with its results preview"
node_stop b
node_use a

#  -- with a token: the page asks for it once and works ----------------------
node_stop a
node_config a < <(config "auth_token = dash-s3cret")
node_start a || bail "node did not restart with a token"
UI="http://127.0.0.1:$a_HTTP/ui/"
api GET /ui/
is "$STATUS" 200 "the page itself needs no token"
api GET /queues
is "$STATUS" 401 "its data does"
browser "with a token configured the page asks for it and works" token "$UI" dash-s3cret default

done_testing
