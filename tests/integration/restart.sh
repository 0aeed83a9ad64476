#!/bin/bash
#  restart.sh - kill -9 a node with jobs running and queued; after a restart
#  every accepted job runs to SUCCESS and its results table is complete.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
need "jq" command -v jq
need "sqlite3 command-line tool" command -v sqlite3

node_dir
mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/tasks.sql" <<'SQL'
-- name: numbers
WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < CAST (? AS INTEGER))
SELECT x, x * 2 AS y, printf ('%08d', x) AS s FROM c;
SQL
node_config a <<'INI'
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 1
[mesh]
bind = tcp://127.0.0.1:@MESH@
heartbeat_interval = 200ms
[db.sample]
type = sqlite
dsn = @DIR@/sample.db
sample_data = true
[results.res]
type = sqlite
dsn = @DIR@/results.db
INI
node_start a || bail "node did not start"

api POST /tasks/numbers/jobs '{"job_id":"big","args":["3000000"]}'
is "$STATUS" 200 "big job accepted"
for i in 1 2 3; do
    api POST /tasks/numbers/jobs "{\"job_id\":\"small$i\",\"args\":[\"100$i\"]}"
done
is "$STATUS" 200 "queued jobs accepted"
api POST /tasks/numbers/jobs '{"job_id":"later","args":["10"],"eta":"2099-01-01 00:00:00"}'
is "$STATUS" 200 "eta job accepted"
ok "big job is running" wait_state big STARTED 20
sleep 0.5
api GET /jobs/small3
is "$(jfield .data.state)" "PENDING" "small jobs wait behind it"

node_stop a KILL
ok "node is gone" test ! -e "$NODE_DIR/a.pid"
node_start a || bail "node did not restart"

ok "big job ran again to SUCCESS" wait_state big SUCCESS 120
is "$(jfield .data.count)" "3000000" "big job reports every row"
is "$(jfield .data.attempts)" "2" "big job took a second attempt"
for i in 1 2 3; do
    ok "queued job small$i ran" wait_state "small$i" SUCCESS 30
    is "$(sqlite3 "$(sqlite_table_file "$NODE_DIR/results.db" "results_small$i")" "SELECT COUNT(*), MAX(x) FROM \"results_small$i\"")" "100$i|100$i" \
       "results table of small$i is complete"
done
is "$(sqlite3 "$(sqlite_table_file "$NODE_DIR/results.db" results_big)" 'SELECT COUNT(*), SUM(x), MAX(s) FROM "results_big"')" \
   "3000000|4500001500000|03000000" "results table of the big job is complete"
is "$(ls -A "$NODE_DIR/results.db.d/.tmp" | wc -l)" "0" "no staging file left behind"
api GET /jobs/later
is "$(jfield .data.state)" "PENDING" "eta job survived the restart"
is "$(jfield .data.eta)" "2099-01-01T00:00:00Z" "with its eta"

done_testing
