#!/bin/bash
#  db_restart.sh - a database server restarted between two jobs: the next
#  job succeeds without restarting the node (pools drop dead connections
#  and reconnect), for PostgreSQL and MariaDB, as source and results.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg
need "a MariaDB server (apt-get install mariadb-server)" start_mariadb

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/r.sql" <<'SQL'
-- name: pg_rows
-- db: pg
-- results: pg
SELECT g, md5 (g::text) AS h FROM generate_series (1, $1::int) g;

-- name: my_rows
-- db: my
-- results: my
SELECT seq AS g, MD5(seq) AS h FROM seq_1_to_100000 WHERE seq <= ?;
SQL
node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 2
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.pg]
type = postgres
dsn = $PG_DSN
max_active = 2
[results.pg]
type = postgres
dsn = $PG_DSN
[db.my]
type = mysql
dsn = mysql://test:testpw@127.0.0.1:$MDB_PORT/testdb
[results.my]
type = mysql
dsn = mysql://test:testpw@127.0.0.1:$MDB_PORT/testdb
INI
node_start a || bail "node did not start"

for round in 1 2 3; do
    api POST /tasks/pg_rows/jobs "{\"job_id\":\"p$round\",\"args\":[\"1000\"]}"
    api POST /tasks/my_rows/jobs "{\"job_id\":\"m$round\",\"args\":[\"1000\"]}"
    ok "PostgreSQL job of round $round succeeds" wait_state "p$round" SUCCESS 30
    is "$(jfield .data.count)" "1000" "with all its rows"
    ok "MariaDB job of round $round succeeds" wait_state "m$round" SUCCESS 30
    is "$(jfield .data.count)" "1000" "with all its rows"
    [ $round = 3 ] && break
    ok "PostgreSQL restarted" restart_pg
    ok "MariaDB restarted" restart_mariadb
done

done_testing
