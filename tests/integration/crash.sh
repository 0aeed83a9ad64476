#!/bin/bash
#  crash.sh - kill -9 of a node at random moments while 8 keep-alive clients
#  (tests/dbt_loadgen) submit to it: 5 rounds with PostgreSQL results, 5
#  with SQLite results, the node restarted each time. After the last
#  restart every job that got a 200 is found and terminal (SUCCESS), its
#  reported count and its results table hold what the task returns, and
#  the node never aborted.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
. "$top_srcdir/tests/lib/load.sh"
need "sqlite3 command-line tool" command -v sqlite3
need "psql" command -v psql
need "the load generator (make check builds tests/dbt_loadgen)" test -x "$LOADGEN"
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg

: "${CRASH_ROUNDS:=5}"
mkdir -p "$NODE_DIR/sql-pg" "$NODE_DIR/sql-sq"
cat > "$NODE_DIR/sql-pg/rows.sql" <<'SQL'
-- name: rows
SELECT g AS n, md5 (g::text) AS h FROM generate_series (1, $1::int) AS g;
SQL
cat > "$NODE_DIR/sql-sq/rows.sql" <<'SQL'
-- name: rows
WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < CAST (? AS INTEGER))
SELECT n, printf ('%08d', n) AS h FROM c;
SQL
node_config pg <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql-pg
data_dir = @DIR@/data-pg
worker_concurrency = 4
max_interruptions = 20
[mesh]
bind = tcp://127.0.0.1:@MESH@
heartbeat_interval = 300ms
[db.pg]
type = postgres
dsn = $PG_DSN
[results.pg]
type = postgres
dsn = $PG_DSN
INI
node_config sq <<'INI'
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql-sq
data_dir = @DIR@/data-sq
worker_concurrency = 4
max_interruptions = 20
[mesh]
bind = tcp://127.0.0.1:@MESH@
heartbeat_interval = 300ms
[db.src]
type = sqlite
dsn = @DIR@/src.db
sample_data = true
[results.res]
type = sqlite
dsn = @DIR@/results.db
INI

#  rounds NODE RATE: CRASH_ROUNDS rounds of load on NODE, each ending
#  in kill -9 at a random moment and a restart; acknowledged ids in
#  $NODE_DIR/NODE.acked.
rounds () {
    local node=$1 rate=$2 round port acked=0
    : > "$NODE_DIR/$node.acked"
    for round in $(seq "$CRASH_ROUNDS"); do
        eval "port=\${${node}_HTTP}"
        load_start "$port" rows "${node}${round}_" 100000 5 "$NODE_DIR/$node.acked" "$rate"
        load_pause 0.5 3
        node_stop "$node" KILL
        node_start "$node" || bail "$node did not restart in round $round"
        load_wait
        acked=$((acked + LOAD_ACKED))
        diag "$node round $round: $LOAD_ACKED acknowledged"
    done
    diag "$node: $acked acknowledged in $CRASH_ROUNDS rounds"
}

#  verify NODE: the final checks on NODE's acknowledged jobs.
verify () {
    local node=$1 port start secs total
    eval "port=\${${node}_HTTP}"
    total=$(load_lines "$NODE_DIR/$node.acked")
    ok "$node: jobs were acknowledged" test "${total:-0}" -gt 0
    ok "$node: jobs were acknowledged in every round" \
       test "$(cut -d_ -f1 "$NODE_DIR/$node.acked" | sort -u | wc -l)" -eq "$CRASH_ROUNDS"
    is "$(sort "$NODE_DIR/$node.acked" | uniq -d | wc -l)" 0 "$node: no id acknowledged twice"
    start=$(date +%s)
    load_check "$port" "$NODE_DIR/$node.acked" 120 > "$NODE_DIR/$node.states"
    secs=$(( $(date +%s) - start ))
    diag "$node: $total acknowledged jobs checked, all terminal $secs s after the last restart"
    is "$(load_lines "$NODE_DIR/$node.states")" "$total" "$node: every acknowledged job was looked up"
    is "$(awk '$2 == "missing" || $2 == "unreachable"' "$NODE_DIR/$node.states" | wc -l)" 0 \
       "$node: every acknowledged job is found after the crashes"
    is "$(awk '$2 != "SUCCESS" && $2 != "FAILURE"' "$NODE_DIR/$node.states" | wc -l)" 0 \
       "$node: every acknowledged job is terminal"
    awk '$2 != "SUCCESS"' "$NODE_DIR/$node.states" | head -5 | sed 's/^/# not done: /'
    is "$(awk '$2 == "FAILURE"' "$NODE_DIR/$node.states" | wc -l)" 0 "$node: none of them failed"
    #  The count each job reports is what the task returns for its arg.
    local bad=0 id state count
    while read -r id state count; do
        [ "$count" = "$(load_rows "$id")" ] || bad=$((bad + 1))
    done < "$NODE_DIR/$node.states"
    is "$bad" 0 "$node: every job reports the task's row count"
}

#  Expected "id rows" lines of NODE's acknowledged jobs, sorted.
expected () {
    local id
    while read -r id; do echo "$id $(load_rows "$id")"; done < "$NODE_DIR/$1.acked" | sort
}

node_start pg || bail "pg node did not start"
rounds pg 500
verify pg
while read -r id; do
    printf "SELECT '%s', COUNT(*) FROM \"results_%s\";\n" "$id" "$id"
done < "$NODE_DIR/pg.acked" > "$NODE_DIR/pg.count.sql"
psql "$PG_DSN" -X -A -t -q -F ' ' -f "$NODE_DIR/pg.count.sql" 2> "$NODE_DIR/pg.count.err" | sort > "$NODE_DIR/pg.rows"
is "$(load_lines "$NODE_DIR/pg.rows")" "$(load_lines "$NODE_DIR/pg.acked")" "pg: every acknowledged job has a results table"
is "$(comm -3 <(expected pg) "$NODE_DIR/pg.rows" | wc -l)" 0 \
   "pg: every acknowledged job's results table is complete"
comm -3 <(expected pg) "$NODE_DIR/pg.rows" | head -5 | sed 's/^/# differs: /'
node_stop pg
ok "pg: the node never aborted" bash -c "! grep -E 'Assertion|AddressSanitizer|runtime error' '$NODE_DIR/pg.log'"

node_start sq || bail "sq node did not start"
rounds sq 150
verify sq
while read -r id; do
    printf ".open --readonly '%s'\nSELECT '%s', COUNT(*) FROM \"results_%s\";\n" \
        "$(sqlite_table_file "$NODE_DIR/results.db" "results_$id")" "$id" "$id"
done < "$NODE_DIR/sq.acked" > "$NODE_DIR/sq.count.sql"
sqlite3 -batch -separator ' ' < "$NODE_DIR/sq.count.sql" 2> "$NODE_DIR/sq.count.err" | sort > "$NODE_DIR/sq.rows"
is "$(load_lines "$NODE_DIR/sq.rows")" "$(load_lines "$NODE_DIR/sq.acked")" "sq: every acknowledged job has a results table"
is "$(comm -3 <(expected sq) "$NODE_DIR/sq.rows" | wc -l)" 0 \
   "sq: every acknowledged job's results table is complete"
comm -3 <(expected sq) "$NODE_DIR/sq.rows" | head -5 | sed 's/^/# differs: /'
is "$(ls -A "$NODE_DIR/results.db.d/.tmp" 2>/dev/null | wc -l)" 0 "sq: no staging file left behind"
node_stop sq
ok "sq: the node never aborted" bash -c "! grep -E 'Assertion|AddressSanitizer|runtime error' '$NODE_DIR/sq.log'"

done_testing
