#!/bin/bash
#  http_mysql.sh - a node with MariaDB source and results: results compared
#  row for row, unsigned 64-bit values, read-back, DELETE cancelling the
#  query on the server (SHOW PROCESSLIST), the time limit, and an error in
#  mid-stream keeping the previous table.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "mariadb client" command -v mariadb
node_dir
need "a MariaDB server (apt-get install mariadb-server)" start_mariadb
m () { mariadb --no-defaults --default-character-set=utf8mb4 -h 127.0.0.1 -P "$MDB_PORT" -utest -ptestpw \
              testdb -N -B -e "$1"; }

m "CREATE TABLE entries (id BIGINT PRIMARY KEY, amount DECIMAL(12,2), user_id VARCHAR(6),
                         entry_date DATE, ts DATETIME(6), big BIGINT UNSIGNED, note TEXT)
                 DEFAULT CHARSET = utf8mb4;
   INSERT INTO entries
   SELECT n, (n * 7919 % 100000) / 100.0, CONCAT('user', n % 5 + 1), DATE '2024-01-01' + INTERVAL (n % 90) DAY,
          TIMESTAMP '2024-01-01 09:00:00.123456' + INTERVAL (n * 37) SECOND,
          18446744073709551615 - n, IF(n % 7 = 0, NULL, CONCAT('note ', n, ' \\t é 😀'))
   FROM (SELECT seq AS n FROM seq_1_to_20000) g"

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/my.sql" <<'SQL'
-- name: entries_of
SELECT * FROM entries WHERE user_id = ? ORDER BY id;

-- name: nap
SELECT ? AS tag, SLEEP(?) AS slept;

-- name: breaks_at
SELECT n, (SELECT 1 FROM entries WHERE id <= 2 AND n >= ?) AS x
FROM (SELECT id AS n FROM entries) t ORDER BY n;
SQL
node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 2
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.my]
type = mysql
dsn = mysql://test:testpw@127.0.0.1:$MDB_PORT/testdb
[results.my]
type = mariadb
dsn = mysql://test:testpw@127.0.0.1:$MDB_PORT/testdb
INI
node_start a || bail "node did not start"

api POST /tasks/entries_of/jobs '{"job_id":"e1","args":["user2"]}'
ok "job succeeds" wait_state e1 SUCCESS 30
is "$(jfield .data.count)" "4000" "count is right"
src=$(m "SELECT * FROM entries WHERE user_id = 'user2' ORDER BY id")
dst=$(m 'SELECT * FROM `results_e1` ORDER BY id')
ok "results table equals the source query row for row" test "$src" = "$dst"
is "$(m "SELECT GROUP_CONCAT(CONCAT(column_name, ':', column_type) ORDER BY ordinal_position)
         FROM information_schema.columns WHERE table_name = 'results_e1'")" \
   "id:bigint(20),amount:decimal(12,2),user_id:longtext,entry_date:date,ts:datetime(6),big:bigint(20) unsigned,note:longtext" \
   "result columns keep the source types"
api GET '/jobs/e1/results?limit=1'
like "$BODY" '"rows":\[\[1,79\.19,"user2","2024-01-02","2024-01-01 09:00:37\.123456",18446744073709551614,' \
     "read back through the API: exact decimal, microseconds, unsigned 64-bit"

api POST /tasks/nap/jobs '{"job_id":"slow1","args":["s","30"]}'
ok "slow job starts" wait_state slow1 STARTED 10
sleep 0.5
running () { m "SELECT COUNT(*) FROM information_schema.processlist
               WHERE id <> CONNECTION_ID () AND info LIKE '%AS tag, SLEEP%'"; }
is "$(running)" "1" "the slow query runs on the server"
api DELETE /jobs/slow1
is "$STATUS" 200 "DELETE of the running job"
gone=no
for i in $(seq 1 20); do [ "$(running)" = 0 ] && { gone=yes; break; }; sleep 0.1; done
is "$gone" "yes" "the query is gone from the process list within 2 s"
ok "the job is FAILURE" wait_state slow1 FAILURE 5
is "$(jfield .data.error)" "the job was canceled" "as cancelled"

api POST /tasks/nap/jobs '{"job_id":"slow2","args":["s","30"],"ttl":1}'
ok "a job over its time limit fails" wait_state slow2 FAILURE 10
like "$(jfield .data.error)" "time limit|max_statement_time|timed out" "with a time-limit error"
is "$(running)" "0" "and nothing is left running"

api POST /tasks/breaks_at/jobs '{"job_id":"mid","args":["1000000"]}'
ok "a run without the error succeeds" wait_state mid SUCCESS 30
is "$(m 'SELECT COUNT(*) FROM `results_mid`')" "20000" "its table is complete"
api POST /tasks/breaks_at/jobs '{"job_id":"mid","args":["15000"]}'
ok "a run that fails mid-stream is FAILURE" wait_state mid FAILURE 30
like "$(jfield .data.error)" "more than 1 row" "with MariaDB's message"
is "$(m 'SELECT COUNT(*) FROM `results_mid`')" "20000" "the previous complete table is untouched"
is "$(m "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'dbt_stage_%'")" "0" \
   "no staging table left after the failure"

done_testing
