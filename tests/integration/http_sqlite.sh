#!/bin/bash
#  http_sqlite.sh - one node on the embedded SQLite default, driven over HTTP:
#  every read and write route, results compared row for row with the source.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "sqlite3 command-line tool" command -v sqlite3
need "jq" command -v jq

node_dir
mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: count_entries
SELECT COUNT(*) AS entries, SUM(amount) AS total FROM entries;

-- name: entries_of
SELECT * FROM entries WHERE user_id = ? ORDER BY id;

-- name: entries_between
-- queue: reports
SELECT id, amount, timestamp FROM entries
WHERE user_id = ?1 AND timestamp > ?2 AND timestamp < ?3 ORDER BY id;
SQL
node_config a <<'INI'
[app]
log_level = DEBUG
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 2
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

api GET /
is "$STATUS" 200 "GET / answers"
is "$(jfield .data)" "dungbeetle 0.1.0" "GET / names the server"

api GET /tasks
is "$STATUS" 200 "GET /tasks answers"
is "$(jfield '.data | keys | join(",")')" "count_entries,entries_between,entries_of" "GET /tasks lists every task"
is "$(jfield '.data.entries_between.queue')" "reports" "task queue tag is reported"
like "$(jfield '.data.entries_of.raw')" "SELECT \\* FROM entries WHERE user_id = \\?" "task SQL is reported"
api GET '/tasks?sql=1'
is "$(jfield '.data | sort | join(",")')" "count_entries,entries_between,entries_of" "GET /tasks?sql=1 lists names"

api POST /tasks/entries_of/jobs '{"job_id":"j1","args":["user1"]}'
is "$STATUS" 200 "POST a job"
is "$(jfield '.data.job_id')" "j1" "response carries the job id"
is "$(jfield '.data.task')" "entries_of" "response carries the task"
is "$(jfield '.data.queue')" "default" "default queue resolved"
is "$(jfield '.data.eta')" "0001-01-01T00:00:00Z" "no eta is Go's zero time"
is "$(jfield '.data.retries')" "0" "retries default to 0"
ok "job j1 reaches SUCCESS" wait_state j1 SUCCESS 20
is "$(jfield '.data.count')" "200" "count is the number of result rows"
is "$(jfield '.data.error')" "" "no error on success"

src=$(sqlite3 -separator '|' "$NODE_DIR/sample.db" "SELECT * FROM entries WHERE user_id = 'user1' ORDER BY id")
dst=$(sqlite3 -separator '|' "$(sqlite_table_file "$NODE_DIR/results.db" results_j1)" 'SELECT * FROM "results_j1" ORDER BY id')
is "$(printf '%s\n' "$dst" | wc -l)" "200" "results table has every row"
ok "results table equals the source query row for row" test "$src" = "$dst"

api POST /tasks/count_entries/jobs '{}'
is "$STATUS" 200 "a job without id or args is accepted"
gen=$(jfield '.data.job_id')
like "$gen" '^job_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "a missing job id is generated"
ok "generated job reaches SUCCESS" wait_state "$gen" SUCCESS 20
is "$(jfield '.data.count')" "1" "no-arg task wrote one row"
is "$(sqlite3 "$(sqlite_table_file "$NODE_DIR/results.db" "results_$gen")" "SELECT entries FROM \"results_$gen\"")" "1000" "aggregate value is right"

api POST /tasks/entries_between/jobs '{"job_id":"j2","args":["user2","2024-01-10 00:00:00","2024-02-01 00:00:00"]}'
is "$(jfield '.data.queue')" "reports" "task queue tag routes the job"
ok "job on the task's queue succeeds" wait_state j2 SUCCESS 20
want=$(sqlite3 "$NODE_DIR/sample.db" "SELECT COUNT(*) FROM entries WHERE user_id='user2' AND timestamp > '2024-01-10 00:00:00' AND timestamp < '2024-02-01 00:00:00'")
is "$(jfield '.data.count')" "$want" "three bound args select the right rows"

#  A queue no worker serves holds its jobs PENDING, oldest first.
api POST /tasks/count_entries/jobs '{"job_id":"p1","queue":"test_pending"}'
is "$STATUS" 200 "job on an unserved queue is accepted"
api POST /tasks/entries_of/jobs '{"job_id":"p2","queue":"test_pending","args":["user3"],"retries":2}'
api GET /jobs/p1
is "$(jfield .data.state)" "PENDING" "job on an unserved queue stays PENDING"
api GET /jobs/queue/test_pending
is "$STATUS" 200 "pending list answers"
is "$(jfield '[.data[].ID] | join(",")')" "p1,p2" "pending list is oldest first"
is "$(jfield '.data[1].MaxRetry')" "2" "pending entry shows retries"
is "$(jfield '.data[1].Job.Task')" "entries_of" "pending entry shows its task"
is "$(jfield '.data[1].Job.Opts.Queue')" "test_pending" "pending entry shows its queue"
api GET /jobs/queue/nothing_here
is "$(jfield '.data | length')" "0" "unknown queue lists nothing"

#  Only one unfinished job per id.
api POST /tasks/count_entries/jobs '{"job_id":"p1"}'
is "$STATUS" 409 "a second submission of an unfinished id is refused"
like "$(jfield .message)" "already queued" "409 says why"
api POST /tasks/entries_of/jobs '{"job_id":"j1","args":["user4"]}'
is "$STATUS" 200 "a finished id may run again"
ok "re-run succeeds" wait_state j1 SUCCESS 20
is "$(sqlite3 "$(sqlite_table_file "$NODE_DIR/results.db" results_j1)" 'SELECT DISTINCT user_id FROM "results_j1"')" "user4" "re-run replaced the table"

api GET /jobs/nope
is "$STATUS" 404 "unknown job is 404"
is "$(jfield .message)" "job not found" "404 message"
is "$(jfield .status)" "error" "error envelope"
is "$(jfield .data)" "null" "error envelope has null data"
api GET /no/such/route
is "$STATUS" 404 "unknown route is 404"
api PUT /jobs/j1
is "$STATUS" 405 "wrong method is 405"

done_testing
