#!/bin/bash
#  copy_bench.sh - copy a 1M-row, 6-column table through a dungbeetle node
#  and through the raw client pipe, in the same run, and report the ratio.
#
#    bench/copy_bench.sh [pg|mysql|all] [ROWS]      (default: all 1000000)
#
#  Needs a built tree (src/dungbeetle) and the Debian server packages; it
#  starts throwaway servers with tests/lib/servers.sh. For each database it
#  runs, three times each and alternating:
#    node   POST a job whose task selects the table; time = the job's
#           finished_at - created_at (server clock, no polling error)
#    raw    PostgreSQL: psql "COPY (SELECT ...) TO STDOUT" | psql "COPY t FROM STDIN"
#           MariaDB:    mariadb --batch --raw "SELECT ..." > fifo | LOAD DATA LOCAL INFILE fifo
#  and prints rows/s of the best run of each and node/raw.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
which=${1:-all}
rows=${2:-1000000}
export top_srcdir=$top top_builddir=$top DBT_BIN=$top/src/dungbeetle
. "$top/tests/lib/tap.sh"
. "$top/tests/lib/node.sh"
. "$top/tests/lib/servers.sh"
node_dir
RUNS=3

now_ms () { date +%s%3N; }
best () { sort -n | head -1; }

#  node_time ID TASK: post a job, wait for it, print its run time in ms.
node_time () {
    api POST "/tasks/$2/jobs" "{\"job_id\":\"$1\"}"
    [ "$STATUS" = 200 ] || { echo "post failed: $BODY" >&2; return 1; }
    wait_state "$1" SUCCESS 600 || return 1
    local c f
    c=$(date -u -d "$(jfield .data.created_at)" +%s%3N)
    f=$(date -u -d "$(jfield .data.finished_at)" +%s%3N)
    [ "$(jfield .data.count)" = "$rows" ] || { echo "wrong count $(jfield .data.count)" >&2; return 1; }
    echo $((f - c))
}

report () {     # report NAME NODE_MS RAW_MS
    awk -v n="$1" -v r="$rows" -v a="$2" -v b="$3" 'BEGIN {
        printf "%-8s node %9.0f rows/s (%d ms)   raw pipe %9.0f rows/s (%d ms)   ratio %.2f\n",
               n, r / (a / 1000), a, r / (b / 1000), b, b / a }'
}

start_node () {     # start_node DBTYPE DSN
    mkdir -p "$NODE_DIR/sql"
    printf -- '-- name: copy_src\nSELECT * FROM bench_src;\n' > "$NODE_DIR/sql/bench.sql"
    node_config n <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data
worker_concurrency = 1
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.src]
type = $1
dsn = $2
[results.dst]
type = $1
dsn = $2
INI
    node_start n
}

if [ "$which" = pg ] || [ "$which" = all ]; then
    start_pg || exit 1
    q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
    q "CREATE TABLE bench_src (id bigint, amount numeric(12,2), ts timestamp, day date, flag boolean, note text);
       INSERT INTO bench_src SELECT g, (g % 100000) / 100.0, TIMESTAMP '2024-01-01' + g * INTERVAL '1 second',
              DATE '2024-01-01' + g % 365, g % 2 = 0, 'note number ' || g FROM generate_series (1, $rows) g"
    q "VACUUM ANALYZE bench_src"
    start_node postgres "$PG_DSN" || exit 1
    node_runs=() raw_runs=()
    for i in $(seq 1 $RUNS); do
        node_runs+=("$(node_time "pg$i" copy_src)")
        q "DROP TABLE IF EXISTS raw_dst; CREATE TABLE raw_dst (LIKE bench_src)"
        t0=$(now_ms)
        psql "$PG_DSN" -X -q -c "COPY (SELECT * FROM bench_src) TO STDOUT" \
            | psql "$PG_DSN" -X -q -c "COPY raw_dst FROM STDIN"
        raw_runs+=($(( $(now_ms) - t0 )))
    done
    [ "$(q 'SELECT count(*) FROM raw_dst')" = "$rows" ] || echo "raw pipe copied the wrong number of rows" >&2
    report postgres "$(printf '%s\n' "${node_runs[@]}" | best)" "$(printf '%s\n' "${raw_runs[@]}" | best)"
    node_stop n
fi

if [ "$which" = mysql ] || [ "$which" = all ]; then
    start_mariadb || exit 1
    m () { mariadb --no-defaults -h 127.0.0.1 -P "$MDB_PORT" -utest -ptestpw testdb --local-infile=1 "$@"; }
    m -e "CREATE TABLE bench_src (id BIGINT, amount DECIMAL(12,2), ts DATETIME(6), day DATE, flag BOOLEAN, note TEXT);
          INSERT INTO bench_src WITH RECURSIVE g (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $rows)
          SELECT n, (n % 100000) / 100.0, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL n SECOND,
                 DATE '2024-01-01' + INTERVAL (n % 365) DAY, n % 2 = 0, CONCAT('note number ', n) FROM g;" \
      --cte-max-recursion-depth=100000000 2>/dev/null \
    || m -e "SET SESSION max_recursive_iterations = 100000000;
          CREATE TABLE bench_src (id BIGINT, amount DECIMAL(12,2), ts DATETIME(6), day DATE, flag BOOLEAN, note TEXT);
          INSERT INTO bench_src WITH RECURSIVE g (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $rows)
          SELECT n, (n % 100000) / 100.0, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL n SECOND,
                 DATE '2024-01-01' + INTERVAL (n % 365) DAY, n % 2 = 0, CONCAT('note number ', n) FROM g;"
    node_stop n 2>/dev/null
    rm -rf "$NODE_DIR/data"
    start_node mysql "mysql://test:testpw@127.0.0.1:$MDB_PORT/testdb" || exit 1
    fifo=$NODE_DIR/rows.fifo
    node_runs=() raw_runs=()
    for i in $(seq 1 $RUNS); do
        node_runs+=("$(node_time "my$i" copy_src)")
        m -e "DROP TABLE IF EXISTS raw_dst; CREATE TABLE raw_dst LIKE bench_src"
        rm -f "$fifo"; mkfifo "$fifo"
        t0=$(now_ms)
        m --batch --raw --quick --skip-column-names -e "SELECT * FROM bench_src" > "$fifo" &
        reader=$!
        m -e "LOAD DATA LOCAL INFILE '$fifo' INTO TABLE raw_dst FIELDS TERMINATED BY '\t' ESCAPED BY '\\\\'"
        wait "$reader"
        raw_runs+=($(( $(now_ms) - t0 )))
    done
    [ "$(m -N -e 'SELECT count(*) FROM raw_dst')" = "$rows" ] || echo "raw pipe copied the wrong number of rows" >&2
    report mariadb "$(printf '%s\n' "${node_runs[@]}" | best)" "$(printf '%s\n' "${raw_runs[@]}" | best)"
    node_stop n
fi
