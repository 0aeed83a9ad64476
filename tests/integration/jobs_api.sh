#!/bin/bash
#  jobs_api.sh - job semantics over HTTP: groups and their concurrency,
#  cancel and purge, eta, retries, results read-back, result expiry,
#  metrics and health, against a node on PostgreSQL.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "psql" command -v psql
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg
q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/jobs.sql" <<'SQL'
-- name: sleep_then
-- Sleeps, then returns one row with the time it finished.
SELECT $1::text AS tag, pg_sleep ($2::float) AS slept, clock_timestamp () AS done_at;

-- name: rows
SELECT g AS n, g % 2 = 0 AS even, 'r' || g AS label, (g / 4.0)::numeric (10, 2) AS quarter
FROM generate_series (1, $1::int) g;

-- name: flaky
-- raw: 1
SELECT * FROM flaky;

-- name: trickle
SELECT g, pg_sleep (0.0015) AS s FROM generate_series (1, $1::int) g;
SQL
node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 4
retry_backoff = 300ms
retry_backoff_max = 600ms
[mesh]
bind = tcp://127.0.0.1:@MESH@
heartbeat_interval = 200ms
[db.pg]
type = postgres
dsn = $PG_DSN
[results.pg]
type = postgres
dsn = $PG_DSN
INI
node_start a || bail "node did not start"

api GET /health
is "$STATUS" 200 "health answers"
is "$(jfield .data.status)" "ok" "health is ok"

#  --- Groups: concurrency 2 over 5 jobs, observed from start and end times.
api POST /groups '{"group_id":"g1","concurrency":2,"jobs":[
  {"task":"sleep_then","job_id":"g1a","args":["a","0.6"]},
  {"task":"sleep_then","job_id":"g1b","args":["b","0.6"]},
  {"task":"sleep_then","job_id":"g1c","args":["c","0.6"]},
  {"task":"sleep_then","job_id":"g1d","args":["d","0.6"]},
  {"task":"sleep_then","job_id":"g1e","args":["e","0.6"]}]}'
is "$STATUS" 200 "group accepted"
is "$(jfield .data.group_id)" "g1" "group id returned"
is "$(jfield '[.data.jobs[].job_id] | join(",")')" "g1a,g1b,g1c,g1d,g1e" "group jobs in request order"
api GET /groups/g1
is "$(jfield .data.state)" "STARTED" "group is STARTED while jobs run"
wait_group () {    # wait_group ID STATE
    local n=0
    while [ $n -lt 300 ]; do
        api GET "/groups/$1"
        [ "$(jfield .data.state)" = "$2" ] && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
ok "group finishes" wait_group g1 SUCCESS
api GET /groups/g1
is "$(jfield .data.state)" "SUCCESS" "group is SUCCESS when all jobs succeed"
is "$(jfield '.data.jobs | length')" "5" "group status lists its jobs"
#  Maximum overlap of [started_at, finished_at) intervals.
overlap=$(for j in g1a g1b g1c g1d g1e; do
    api GET "/jobs/$j"; jfield '"\(.data.started_at) 1\n\(.data.finished_at) -1"'
done | sort -s -k1,1 | awk '{ n += $2; if (n > m) m = n } END { print m }')
is "$overlap" "2" "never more than 2 of the group ran at once (4 slots free)"
api POST /groups '{"group_id":"g1","jobs":[{"task":"rows","args":["1"]}]}'
is "$STATUS" 200 "a finished group id can be reused"
api POST /groups '{"jobs":[]}'
is "$STATUS" 200 "an empty group is accepted"
gid=$(jfield .data.group_id)
api GET "/groups/$gid"
is "$(jfield .data.state)" "SUCCESS" "an empty group is SUCCESS (as upstream)"

#  --- Cancel: a pending job deleted never runs; purge forgets and drops.
api POST /tasks/sleep_then/jobs '{"job_id":"hold1","args":["h","1.5"],"queue":"one"}'
api POST /tasks/rows/jobs '{"job_id":"never","args":["5"],"queue":"parked"}'
api DELETE /jobs/never
is "$STATUS" 200 "DELETE of a pending job"
is "$(jfield .data)" "true" "DELETE answers true"
api GET /jobs/never
is "$(jfield .data.state)" "FAILURE" "deleted pending job is FAILURE"
is "$(jfield .data.error)" "the job was canceled" "with upstream's cancel message"
is "$(jfield .data.attempts)" "0" "and it never ran"
api GET /jobs/queue/parked
is "$(jfield '.data | length')" "0" "and it left the queue"
is "$(q "SELECT count(*) FROM pg_class WHERE relname = 'results_never'")" "0" "no results table for it"

api POST /tasks/rows/jobs '{"job_id":"gone","args":["10"]}'
ok "job to purge succeeds" wait_state gone SUCCESS 20
api DELETE /jobs/gone
is "$STATUS" 409 "DELETE of a finished job without purge is refused"
api DELETE '/jobs/gone?purge=true'
is "$STATUS" 200 "DELETE with purge of a finished job"
api GET /jobs/gone
is "$STATUS" 404 "purged job is forgotten"
dropped=no
for i in $(seq 1 30); do
    [ "$(q "SELECT count(*) FROM pg_class WHERE relname = 'results_gone'")" = 0 ] && { dropped=yes; break; }
    sleep 0.1
done
is "$dropped" "yes" "purged job's results table is dropped"

api POST /groups '{"group_id":"g2","jobs":[
  {"task":"rows","job_id":"g2a","args":["1"],"queue":"parked"},
  {"task":"rows","job_id":"g2b","args":["1"],"queue":"parked"}]}'
api DELETE /groups/g2
is "$STATUS" 200 "DELETE of a group"
api GET /groups/g2
is "$(jfield '[.data.jobs[].state] | join(",")')" "FAILURE,FAILURE" "its pending jobs are cancelled"
api DELETE /groups/g2
is "$STATUS" 409 "DELETE of a finished group without purge is refused"
api DELETE '/groups/g2?purge=1'
is "$STATUS" 200 "DELETE of a group with purge"
api GET /groups/g2
is "$STATUS" 404 "purged group is forgotten"
api GET /jobs/g2a
is "$STATUS" 404 "with its jobs"

#  --- ETA: in both formats, listed with its eta, started on time.
eta=$(date -u -d '+2 seconds' '+%Y-%m-%d %H:%M:%S')
api POST /tasks/rows/jobs "{\"job_id\":\"at1\",\"args\":[\"3\"],\"eta\":\"$eta\"}"
is "$STATUS" 200 "eta job accepted"
is "$(jfield .data.eta)" "$(echo "$eta" | tr ' ' 'T')Z" "eta echoed as RFC 3339"
api GET /jobs/queue/default
is "$(jfield '[.data[] | select(.ID == "at1") | .Job.Opts.ETA] | first')" "$(echo "$eta" | tr ' ' 'T')Z" \
   "pending list shows the eta"
api GET /jobs/at1
is "$(jfield .data.state)" "PENDING" "eta job waits"
ok "eta job runs" wait_state at1 SUCCESS 10
late=$(jfield '(.data.started_at | sub("\\.[0-9]+Z$"; "Z") | fromdate) as $s | .data.started_at' )
started_ms=$(date -u -d "$(jfield .data.started_at)" +%s%3N)
eta_ms=$(date -u -d "$eta" +%s%3N)
delay=$((started_ms - eta_ms))
ok "eta job started within 100 ms of its time (${delay} ms)" test "$delay" -ge 0 -a "$delay" -le 100
eta3339=$(date -u -d '+1 second' '+%Y-%m-%dT%H:%M:%S+00:00')
api POST /tasks/rows/jobs "{\"job_id\":\"at2\",\"args\":[\"3\"],\"eta\":\"$eta3339\"}"
is "$STATUS" 200 "RFC 3339 eta accepted"
ok "RFC 3339 eta job runs" wait_state at2 SUCCESS 10

#  --- Retries: RETRY between attempts, error of the last attempt, cleared on success.
api POST /tasks/flaky/jobs '{"job_id":"fl1","retries":5}'
ok "failing job goes to RETRY" wait_state fl1 RETRY 10
like "$(jfield .data.error)" 'relation "flaky" does not exist' "RETRY carries the attempt's error"
q "CREATE TABLE flaky AS SELECT 1 AS x"
ok "retried job succeeds once it can" wait_state fl1 SUCCESS 10
is "$(jfield .data.error)" "" "error cleared on success"
ok "it took more than one attempt" test "$(jfield .data.attempts)" -ge 2
q "DROP TABLE flaky"
api POST /tasks/flaky/jobs '{"job_id":"fl2","retries":2}'
ok "job out of retries fails" wait_state fl2 FAILURE 15
is "$(jfield .data.attempts)" "3" "retries + 1 attempts"
like "$(jfield .data.error)" 'relation "flaky" does not exist' "FAILURE keeps the last error"

#  --- Results read-back.
api POST /tasks/rows/jobs '{"job_id":"rb","args":["2500"]}'
api GET /jobs/rb/results
ok "results of an unfinished job are 404" test "$STATUS" = 404 -o "$STATUS" = 200
wait_state rb SUCCESS 20
api GET /jobs/rb/results
is "$STATUS" 200 "results as JSON"
is "$(jfield '[.data.columns[] | "\(.name):\(.type)"] | join(",")')" "n:BIGINT,even:BOOLEAN,label:TEXT,quarter:DECIMAL" \
   "columns with their types"
is "$(jfield '.data.rows | length')" "2500" "every row"
like "$BODY" '"rows":\[\[1,false,"r1",0.25\],\[2,true,"r2",0.50\],' "values keep their JSON types and digits"
api GET '/jobs/rb/results?limit=2&offset=10'
is "$(jfield '[.data.rows[][0]] | join(",")')" "11,12" "limit and offset page the rows"
STATUS=$(curl -s -o "$NODE_DIR/rb.csv" -w '%{http_code}' "http://127.0.0.1:$CURRENT_PORT/jobs/rb/results?format=csv&limit=3")
is "$STATUS" 200 "results as CSV"
is "$(tr -d '\r' < "$NODE_DIR/rb.csv" | tr '\n' ';')" "n,even,label,quarter;1,false,r1,0.25;2,true,r2,0.50;3,false,r3,0.75;" "CSV rows"
api GET '/jobs/rb/results?format=xml'
is "$STATUS" 400 "unknown format is 400"
api GET '/jobs/rb/results?limit=-1'
is "$STATUS" 400 "negative limit is 400"
api GET /jobs/nope/results
is "$STATUS" 404 "results of an unknown job are 404"

#  --- Result expiry: a per-job retention of 1 s.
api POST /tasks/rows/jobs '{"job_id":"ex1","args":["5"],"results_ttl":1}'
ok "expiring job succeeds" wait_state ex1 SUCCESS 20
expired=no
for i in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM pg_class WHERE relname = 'results_ex1'")" = 0 ] && { expired=yes; break; }
    sleep 0.1
done
is "$expired" "yes" "expired results table is dropped by the janitor"
api GET /jobs/ex1/results
is "$STATUS" 410 "expired results are 410 Gone"

#  --- Progress: rows written so far while the job runs.
api POST /tasks/trickle/jobs '{"job_id":"tr","args":["4000"]}'
ok "trickling job starts" wait_state tr STARTED 10
seen=0
for i in $(seq 1 100); do
    api GET /jobs/tr
    rows=$(jfield .data.rows)
    [ "$(jfield .data.state)" = STARTED ] && [ "$rows" -gt 0 ] && [ "$rows" -lt 4000 ] && { seen=$rows; break; }
    sleep 0.1
done
ok "a running job reports rows written so far ($seen)" test "$seen" -gt 0
is "$(jfield .data.count)" "0" "count stays 0 until the job succeeds (as upstream)"
ok "trickling job succeeds" wait_state tr SUCCESS 30
is "$(jfield .data.rows)" "4000" "rows is the final count at the end"

#  --- Metrics move as jobs run.
metric () { curl -s "http://127.0.0.1:$CURRENT_PORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
before=$(metric 'dungbeetle_jobs_finished_total{queue="default",state="SUCCESS"}')
rows_before=$(metric 'dungbeetle_rows_written_total{queue="default"}')
api POST /tasks/rows/jobs '{"job_id":"m1","args":["7"]}'
wait_state m1 SUCCESS 20
after=$(metric 'dungbeetle_jobs_finished_total{queue="default",state="SUCCESS"}')
rows_after=$(metric 'dungbeetle_rows_written_total{queue="default"}')
is "$((after - before))" "1" "finished-jobs counter moved by one"
is "$((rows_after - rows_before))" "7" "rows-written counter moved by the job's rows"
body=$(curl -s "http://127.0.0.1:$CURRENT_PORT/metrics")
like "$body" 'dungbeetle_job_duration_seconds_bucket\{queue="default",le="\+Inf"\} [0-9]+' "duration histogram exported"
like "$body" 'dungbeetle_worker_slots\{state="idle"\} [0-9]+' "worker slots exported"
like "$body" 'dungbeetle_db_connections\{db="pg",kind="source",state="open"\} [0-9]+' "pool connections exported"

done_testing
