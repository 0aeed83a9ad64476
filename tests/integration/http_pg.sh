#!/bin/bash
#  http_pg.sh - a node with PostgreSQL source and results: jobs compared row
#  for row with the source query, unlogged COPY results, a bad task refused
#  at start-up, cancel and time limit stopping the query on the server, an
#  error in mid-stream, and kill -9 with jobs running.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "psql" command -v psql
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg

q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

q "CREATE TABLE entries (id BIGSERIAL PRIMARY KEY, amount NUMERIC(12,2), user_id VARCHAR(6),
                         entry_date DATE, timestamp TIMESTAMP, note TEXT)"
q "INSERT INTO entries (amount, user_id, entry_date, timestamp, note)
   SELECT (g * 7919 % 100000) / 100.0, 'user' || (g % 5 + 1), DATE '2024-01-01' + g % 90,
          TIMESTAMP '2024-01-01 09:00:00' + (g * 37 % 28800) * INTERVAL '1 second' + (g % 90) * INTERVAL '1 day',
          CASE WHEN g % 7 = 0 THEN NULL ELSE 'note ' || g || E' \t\\\\ é' END
   FROM generate_series (1, 50000) g"

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/pg.sql" <<'SQL'
-- name: get_profit_summary
-- db: my_db
SELECT SUM(amount) AS total, entry_date FROM entries WHERE user_id = $1 GROUP BY entry_date;

-- name: get_profit_entries
-- db: my_db
SELECT * FROM entries WHERE user_id = $1;

-- name: slow_query
-- db: my_db
SELECT pg_sleep($1);

-- name: numbers
-- db: my_db
SELECT g, md5 (g::text) AS h FROM generate_series (1, $1::int) g;

-- name: breaks_at
-- db: my_db
SELECT g, 1 / (g - $1::int) AS x FROM generate_series (1, 200000) g;
SQL
node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 3
[mesh]
bind = tcp://127.0.0.1:@MESH@
heartbeat_interval = 200ms
[db.my_db]
type = postgres
dsn = $PG_DSN
[results.my_results]
type = postgres
dsn = $PG_DSN
unlogged = true
INI
node_start a || bail "node did not start"

api POST /tasks/get_profit_entries/jobs '{"job_id":"e1","args":["user2"]}'
is "$STATUS" 200 "job accepted"
ok "job reaches SUCCESS" wait_state e1 SUCCESS 30
is "$(jfield .data.count)" "10000" "count is right"
src=$(q "SELECT * FROM entries WHERE user_id = 'user2' ORDER BY id")
dst=$(q 'SELECT * FROM "results_e1" ORDER BY id')
ok "results table equals the source query row for row" test "$src" = "$dst"
is "$(q "SELECT string_agg (attname || ' ' || format_type (atttypid, atttypmod), ', ' ORDER BY attnum)
         FROM pg_attribute WHERE attrelid = 'results_e1'::regclass AND attnum > 0")" \
   "id bigint, amount numeric(12,2), user_id text, entry_date date, timestamp timestamp without time zone, note text" \
   "result columns keep the source types"
is "$(q "SELECT relpersistence FROM pg_class WHERE relname = 'results_e1'")" "u" "unlogged results table"
is "$(q "SELECT count(*) FROM pg_class WHERE relname LIKE 'dbt_stage_%'")" "0" "no staging table left"

api POST /tasks/get_profit_summary/jobs '{"job_id":"s1","args":["user3"]}'
ok "aggregate job succeeds" wait_state s1 SUCCESS 30
src=$(q "SELECT SUM(amount), entry_date FROM entries WHERE user_id = 'user3' GROUP BY entry_date ORDER BY 2")
dst=$(q 'SELECT total, entry_date FROM "results_s1" ORDER BY 2')
ok "aggregate results equal the source" test "$src" = "$dst"

#  Cancel stops the query on the server.
api POST /tasks/slow_query/jobs '{"job_id":"slow1","args":["30"],"retries":2}'
ok "slow job starts" wait_state slow1 STARTED 10
sleep 0.5
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'")" "1" \
   "the slow query runs on the server"
api DELETE /jobs/slow1
is "$STATUS" 200 "DELETE of a running job is accepted"
gone=no
for i in $(seq 1 20); do
    if [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'")" = 0 ]; then
        gone=yes; break
    fi
    sleep 0.1
done
is "$gone" "yes" "the query is gone from pg_stat_activity within 2 s"
ok "cancelled job is FAILURE" wait_state slow1 FAILURE 5
is "$(jfield .data.error)" "the job was canceled" "cancel reason recorded"
is "$(jfield .data.attempts)" "1" "a cancelled job is not retried"

#  Time limit (ttl) stops the query on the server too.
api POST /tasks/slow_query/jobs '{"job_id":"slow2","args":["30"],"ttl":1}'
ok "job over its time limit fails" wait_state slow2 FAILURE 10
like "$(jfield .data.error)" "time limit" "time limit reason recorded"
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'")" "0" \
   "no query left running after the time limit"

#  An error in mid-stream fails the job and keeps the previous table.
api POST /tasks/breaks_at/jobs '{"job_id":"mid","args":["0"]}'
ok "first run (no error) succeeds" wait_state mid SUCCESS 30
is "$(q 'SELECT count(*) FROM "results_mid"')" "200000" "first run table complete"
api POST /tasks/breaks_at/jobs '{"job_id":"mid","args":["150000"]}'
ok "run that breaks in mid-stream fails" wait_state mid FAILURE 30
like "$(jfield .data.error)" "division by zero" "the database's message is kept"
is "$(jfield .data.count)" "0" "no count is reported for a failed run"
is "$(q 'SELECT count(*) FROM "results_mid"')" "200000" "previous complete table untouched"

#  kill -9 with jobs running and queued; all finish after a restart.
for i in 1 2 3; do
    api POST /tasks/slow_query/jobs "{\"job_id\":\"k$i\",\"args\":[\"1\"]}"
done
api POST /tasks/numbers/jobs '{"job_id":"k4","args":["300000"]}'
api POST /tasks/numbers/jobs '{"job_id":"k5","args":["1000"]}'
ok "jobs are running at kill time" wait_state k1 STARTED 10
node_stop a KILL
node_start a || bail "node did not restart"
for i in 1 2 3 4 5; do
    ok "job k$i succeeds after the restart" wait_state "k$i" SUCCESS 60
done
is "$(q 'SELECT count(*), max(g) FROM "results_k4"')" "300000|300000" "results of k4 complete"
is "$(q 'SELECT count(*) FROM "results_k5"')" "1000" "results of k5 complete"
node_stop a

#  A task that does not prepare stops start-up with file, task and message.
cat > "$NODE_DIR/sql/zz_broken.sql" <<'SQL'
-- name: broken_task
-- db: my_db
SELECT * FROM no_such_table WHERE x = $1;
SQL
"$DBT_BIN" --config "$NODE_DIR/a.ini" > "$NODE_DIR/broken.out" 2>&1
status=$?
ok "a node with a broken task exits non-zero" test "$status" != 0
out=$(cat "$NODE_DIR/broken.out")
like "$out" "zz_broken.sql:1" "error names the file and line"
like "$out" "broken_task" "error names the task"
like "$out" 'relation "no_such_table" does not exist' "error carries the database's message"

done_testing
