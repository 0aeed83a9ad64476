#!/bin/bash
#  http_clickhouse.sh - a node with a ClickHouse source and PostgreSQL
#  results: exact types through the node, DELETE cancelling the query on
#  the server (system.processes), the time limit, an error in mid-stream,
#  and args that try to break out of their literal.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "psql" command -v psql
node_dir
need "a ClickHouse server (apt-get install clickhouse-server)" start_clickhouse
need "a PostgreSQL server (apt-get install postgresql)" start_pg
q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
ch () { curl -s --data-binary "$1" "$CH_URL"; }

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/ch.sql" <<'SQL'
-- name: typed
SELECT number AS n, toUInt64(number) * 1000000000000 AS big, toDecimal64(number, 3) / 8 AS dec,
       toDate('2024-01-01') + number AS day, toDateTime('2024-01-01 00:00:00', 'UTC') + number AS ts,
       toNullable(if(number % 3 = 0, NULL, toString(number))) AS maybe, toLowCardinality('lc') AS lc
FROM numbers (1000) WHERE number >= toUInt64(?);

-- name: forever
SELECT count() FROM system.numbers WHERE NOT ignore(number) AND number < toUInt64(?);

-- name: breaks_at
SELECT number, throwIf(number = toUInt64(?)) AS t FROM system.numbers LIMIT 200000;

-- name: echo
SELECT ? AS v;
SQL
node_config a <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 2
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.ch]
type = clickhouse
dsn = $CH_URL
[results.pg]
type = postgres
dsn = $PG_DSN
INI
node_start a || bail "node did not start"

api POST /tasks/typed/jobs '{"job_id":"t1","args":["0"]}'
is "$STATUS" 200 "job accepted"
ok "ClickHouse job succeeds" wait_state t1 SUCCESS 30
is "$(jfield .data.count)" "1000" "count is right"
is "$(q "SELECT string_agg (attname || ' ' || format_type (atttypid, atttypmod), ', ' ORDER BY attnum)
         FROM pg_attribute WHERE attrelid = 'results_t1'::regclass AND attnum > 0")" \
   "n numeric(20,0), big numeric(20,0), dec numeric(18,3), day date, ts timestamp with time zone, maybe text, lc text" \
   "ClickHouse types arrive exact (UInt64, Decimal, Date, DateTime, Nullable, LowCardinality)"
is "$(q 'SELECT big, dec, day, ts, maybe FROM "results_t1" WHERE n = 998')" \
   "998000000000000|124.750|2026-09-25|2024-01-01 00:16:38+00|998" "values are exact"
is "$(q 'SELECT count(*) FROM "results_t1" WHERE maybe IS NULL')" "334" "NULLs stay NULL"

#  Args are one literal, whatever they contain.
for arg in "x' OR 1=1 --" "\\'; DROP TABLE t; --" 'trailing\' "tab	nl
end"; do
    body=$(jq -cn --arg a "$arg" '{args: [$a]}')
    api POST /tasks/echo/jobs "$(echo "$body" | jq -c '. + {job_id: "echo"}')"
    wait_state echo SUCCESS 20 >/dev/null
    is "$(q 'SELECT v FROM "results_echo"')" "$arg" "arg $(printf '%q' "$arg") comes back as itself"
done

running () { ch "SELECT count() FROM system.processes WHERE query LIKE '%NOT ignore(number)%' AND query NOT LIKE '%system.processes%'"; }
api POST /tasks/forever/jobs '{"job_id":"f1","args":["1000000000000000"]}'
ok "long query starts" wait_state f1 STARTED 10
sleep 0.5
is "$(running)" "1" "the query runs on the server"
api DELETE /jobs/f1
is "$STATUS" 200 "DELETE of the running job"
gone=no
for i in $(seq 1 20); do [ "$(running)" = 0 ] && { gone=yes; break; }; sleep 0.1; done
is "$gone" "yes" "the query is gone from system.processes within 2 s"
ok "the job is FAILURE" wait_state f1 FAILURE 5
is "$(jfield .data.error)" "the job was canceled" "as cancelled"

api POST /tasks/forever/jobs '{"job_id":"f2","args":["1000000000000000"],"ttl":1}'
ok "a job over its time limit fails" wait_state f2 FAILURE 10
like "$(jfield .data.error)" "time limit|TIMEOUT_EXCEEDED|timed out|159" "with a time-limit error"
sleep 0.5
is "$(running)" "0" "nothing is left running"

api POST /tasks/breaks_at/jobs '{"job_id":"mid","args":["1000000"]}'
ok "a run without the error succeeds" wait_state mid SUCCESS 30
api POST /tasks/breaks_at/jobs '{"job_id":"mid","args":["150000"]}'
ok "a run that fails mid-stream is FAILURE" wait_state mid FAILURE 30
like "$(jfield .data.error)" "395|throwIf|Value passed" "with ClickHouse's message"
is "$(q 'SELECT count(*) FROM "results_mid"')" "200000" "the previous complete table is untouched"

done_testing
