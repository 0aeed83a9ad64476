#!/bin/bash
#  ops.sh - operations: bearer-token auth, graceful shutdown that lets a
#  running job finish, and an eta job and a retrying job that survive
#  kill -9 and a restart.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "psql" command -v psql
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg
q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/ops.sql" <<'SQL'
-- name: nap
SELECT $1::text AS tag, pg_sleep ($2::float) AS slept;

-- name: flaky
-- raw: 1
SELECT * FROM flaky;
SQL
node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
auth_token = s3cret-token
retry_backoff = 1500ms
retry_backoff_max = 1500ms
shutdown_timeout = 20s
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

#  --- Auth: every route but /health needs the token.
auth () {   # auth TOKEN METHOD PATH -> status
    curl -s -o /dev/null -w '%{http_code}' ${1:+-H "Authorization: Bearer $1"} -X "$2" \
         "http://127.0.0.1:$CURRENT_PORT$3"
}
is "$(auth '' GET /)" 401 "no token: 401"
is "$(auth wrong GET /tasks)" 401 "wrong token: 401"
is "$(auth s3cret-token-x GET /tasks)" 401 "longer token: 401"
is "$(auth s3cret-token GET /tasks)" 200 "right token: 200"
is "$(auth '' GET /health)" 200 "/health needs no token"
is "$(auth '' POST /tasks/nap/jobs)" 401 "writes need the token too"
is "$(auth '' GET /metrics)" 401 "/metrics needs the token"
STATUS=$(curl -s -o "$NODE_DIR/401.json" -w '%{http_code}' http://127.0.0.1:$CURRENT_PORT/jobs/x)
is "$(jq -r .status "$NODE_DIR/401.json")" "error" "401 uses the error envelope"

#  From here on, authenticated calls.
api () {
    local method=$1 path=$2 out; out=$(mktemp)
    STATUS=$(curl -s -o "$out" -w '%{http_code}' -H 'Authorization: Bearer s3cret-token' -X "$method" \
             ${3+--data-binary "$3"} "http://127.0.0.1:$CURRENT_PORT$path")
    BODY=$(cat "$out"); rm -f "$out"
}

#  --- Graceful shutdown: SIGTERM lets the running job finish.
api POST /tasks/nap/jobs '{"job_id":"drain1","args":["d","2"]}'
ok "job running before SIGTERM" wait_state drain1 STARTED 10
start=$(date +%s%N)
node_stop a TERM
took=$(( ($(date +%s%N) - start) / 1000000 ))
ok "node waited for the running job (${took} ms)" test "$took" -ge 1000
node_start a || bail "node did not restart"
api GET /jobs/drain1
is "$(jfield .data.state)" "SUCCESS" "the drained job finished before shutdown"
is "$(jfield .data.attempts)" "1" "in one attempt"

#  --- kill -9 with an eta job and a retrying job.
eta=$(date -u -d '+6 seconds' '+%Y-%m-%d %H:%M:%S')
api POST /tasks/nap/jobs "{\"job_id\":\"later\",\"args\":[\"l\",\"0\"],\"eta\":\"$eta\"}"
is "$STATUS" 200 "eta job accepted"
api POST /tasks/flaky/jobs '{"job_id":"retrying","retries":10}'
ok "retrying job is in RETRY" wait_state retrying RETRY 10
node_stop a KILL
node_start a || bail "node did not restart after kill -9"
api GET /jobs/later
is "$(jfield .data.state)" "PENDING" "eta job survived kill -9"
api GET /jobs/retrying
like "$(jfield .data.state)" "RETRY|STARTED" "retrying job survived kill -9"
q "CREATE TABLE flaky AS SELECT 42 AS answer"
ok "retrying job succeeds after the restart" wait_state retrying SUCCESS 20
is "$(q 'SELECT answer FROM "results_retrying"')" "42" "with its results"
ok "eta job runs at its time after the restart" wait_state later SUCCESS 20
started_ms=$(date -u -d "$(jfield .data.started_at)" +%s%3N)
eta_ms=$(date -u -d "$eta" +%s%3N)
delay=$((started_ms - eta_ms))
ok "and not before it (${delay} ms late)" test "$delay" -ge 0 -a "$delay" -le 1000

done_testing
