#!/bin/bash
#  multinode.sh - two nodes on one host: a full node (HTTP, dispatcher,
#  one runner) and a worker-only node (two runners) connected to its
#  dispatcher over TCP. Jobs run on both; DELETE through the full node
#  cancels a query running on the worker-only node; kill -9 of the
#  worker-only node re-runs its jobs on the other.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "psql" command -v psql
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg
q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/nap.sql" <<'SQL'
-- name: nap
SELECT $1::text AS tag, pg_sleep ($2::float) AS slept;
SQL
mesh=$(free_port)
common="[mesh]
bind = tcp://127.0.0.1:$mesh
heartbeat_interval = 200ms
[db.pg]
type = postgres
dsn = $PG_DSN
[results.pg]
type = postgres
dsn = $PG_DSN"
node_config a <<INI
[app]
worker_name = alpha
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-a
worker_concurrency = 1
$common
INI
node_config b <<INI
[app]
worker_name = beta
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-b
worker_concurrency = 2
worker_only = true
$common
INI
node_start a || bail "node a did not start"
#  A worker-only node has no HTTP front: start it and wait for its workers.
"$DBT_BIN" --config "$NODE_DIR/b.ini" >> "$NODE_DIR/b.log" 2>&1 &
echo $! > "$NODE_DIR/b.pid"
ok "worker-only node starts" bash -c "for i in \$(seq 50); do grep -q 'registered' '$NODE_DIR/a.log' \
    && [ \$(grep -c 'registered with' '$NODE_DIR/a.log') -ge 2 ] && exit 0; sleep 0.1; done; exit 1"
node_use a

for i in 1 2 3; do
    api POST /tasks/nap/jobs "{\"job_id\":\"n$i\",\"args\":[\"$i\",\"30\"],\"retries\":1}"
done
for i in 1 2 3; do wait_state "n$i" STARTED 10; done
workers=$(for i in 1 2 3; do api GET "/jobs/n$i"; jfield .data.worker; done | sed 's|/.*||' | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
is "$workers" "alpha=1 beta=2 " "jobs run on both nodes, as many as each has runners"
remote=$(for i in 1 2 3; do api GET "/jobs/n$i"; [ "$(jfield .data.worker | sed 's|/.*||')" = beta ] && echo "n$i"; done | head -1)
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT \$1::text%' AND state = 'active'")" "3" \
   "three queries run on the server"

#  DELETE at the full node stops the query running on the other node.
api DELETE "/jobs/$remote"
is "$STATUS" 200 "DELETE of a job running on the worker-only node"
ok "its job fails as cancelled" wait_state "$remote" FAILURE 5
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT \$1::text%' AND state = 'active'")" "2" \
   "its query is gone from the server"

#  kill -9 of the worker-only node: its other job runs again on alpha.
other=$(for i in 1 2 3; do api GET "/jobs/n$i"; [ "$(jfield .data.worker | sed 's|/.*||')" = beta ] && \
        [ "$(jfield .data.state)" = STARTED ] && echo "n$i"; done | head -1)
local_job=$(for i in 1 2 3; do api GET "/jobs/n$i"; [ "$(jfield .data.worker | sed 's|/.*||')" = alpha ] && echo "n$i"; done)
kill -KILL "$(cat "$NODE_DIR/b.pid")"
api DELETE "/jobs/$local_job"
second_attempt () {
    local n=0
    while [ $n -lt 100 ]; do
        api GET "/jobs/$other"
        [ "$(jfield .data.state)" = STARTED ] && [ "$(jfield .data.attempts)" = 2 ] && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
ok "the lost job runs again on the remaining node" second_attempt
like "$(jfield .data.worker)" "^alpha/" "on alpha"
is "$(jfield .data.attempts)" "2" "as a second attempt"

done_testing
