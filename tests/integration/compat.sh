#!/bin/bash
#  compat.sh - coming from the Go original: upstream's config.toml imported
#  by tools/dungbeetle-import-config (its sample and a config using every
#  upstream key) and real nodes started on the result; each DSN form
#  (go-sql-driver tcp and unix, libpq URL and conninfo, ClickHouse
#  native-protocol DSNs rewritten, port 9000 refused naming 8123); ttl 0
#  meaning default_job_ttl and -1 no limit; MariaDB results with
#  local_infile=0 giving the same tables as with it; every kept type
#  round-tripping PostgreSQL -> PostgreSQL, MariaDB JSON -> jsonb, NOT NULL.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "jq" command -v jq
need "psql" command -v psql
need "mariadb client" command -v mariadb
need "python 3.11 (tomllib)" /usr/bin/python3 -c 'import tomllib'
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg
need "a MariaDB server (apt-get install mariadb-server)" start_mariadb
need "a ClickHouse server (apt-get install clickhouse-server)" start_clickhouse

IMPORT=$top_srcdir/tools/dungbeetle-import-config
FIX=$top_srcdir/tests/fixtures/import
q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
m () { mariadb --no-defaults --default-character-set=utf8mb4 -h 127.0.0.1 -P "$MDB_PORT" -utest -ptestpw \
              testdb -N -B -e "$1"; }
CH_HTTP_PORT=${CH_URL#http://127.0.0.1:}; CH_HTTP_PORT=${CH_HTTP_PORT%/}

#  start_imported NAME: start a node on $NODE_DIR/NAME.ini (written by the
#  importer), its HTTP port given by --server unless the file sets it, and
#  its mesh port and data directory by environment (upstream has neither).
start_imported () {
    local name=$1; shift
    local mesh
    mesh=$(free_port)
    DUNGBEETLE_MESH__BIND=tcp://127.0.0.1:$mesh DUNGBEETLE_APP__DATA_DIR=$NODE_DIR/data_$name \
        node_start "$name" "$@"
}

#  count_keys FILE: how many keys (leaves) a TOML file has
count_keys () {
    /usr/bin/python3 -c '
import sys, tomllib
def walk(d):
    for v in d.values():
        yield from walk(v) if isinstance(v, dict) else [1]
print(sum(walk(tomllib.load(open(sys.argv[1], "rb")))))' "$1"
}

q "CREATE TABLE entries (id BIGSERIAL PRIMARY KEY, amount NUMERIC(12,2), user_id VARCHAR(6),
                         entry_date DATE, timestamp TIMESTAMP)"
q "INSERT INTO entries (amount, user_id, entry_date, timestamp)
   SELECT g / 100.0, 'user' || (g % 3 + 1), DATE '2024-01-01' + g % 30,
          TIMESTAMP '2024-01-01 09:00:00' + g * INTERVAL '1 minute' FROM generate_series (1, 3000) g"
m "CREATE TABLE entries (id BIGINT PRIMARY KEY, amount DECIMAL(12,2), user_id VARCHAR(6));
   INSERT INTO entries SELECT seq, seq / 100.0, CONCAT('user', seq % 3 + 1) FROM seq_1_to_3000"

# ----------------------------------------------------------------------
#  1. Upstream's sample config, its addresses pointed at the test servers

mkdir -p "$NODE_DIR/sql_sample"
cat > "$NODE_DIR/sql_sample/sample.sql" <<'SQL'
-- name: get_profit_summary
-- db: my_db
SELECT SUM(amount) AS total, entry_date FROM entries WHERE user_id = $1 GROUP BY entry_date;

-- name: ch_numbers
-- db: ch_db
SELECT number, toString(number) AS s FROM system.numbers LIMIT 5
SQL
sed -e "s|postgres://testUser:testPass@127.0.0.1:5432/testDB|postgres://postgres@127.0.0.1:$PG_PORT/testdb|" \
    -e "s|127.0.0.1:9000|127.0.0.1:$CH_TCP_PORT|" "$FIX/upstream_sample.toml" > "$NODE_DIR/sample.toml"
( cd "$NODE_DIR" && "$IMPORT" --clickhouse-port "$CH_TCP_PORT=$CH_HTTP_PORT" -o sample.ini sample.toml ) \
    > "$NODE_DIR/sample.report" 2>&1
is "$?" 0 "the importer converts upstream's sample config"
report=$(cat "$NODE_DIR/sample.report")
keys=$(count_keys "$NODE_DIR/sample.toml")
is "$(grep -cE '^(kept|changed|ignored) ' "$NODE_DIR/sample.report")" "$keys" \
   "one report line for each of the sample's $keys keys"
like "$report" "ignored  job_queue.broker.addresses: no Redis" "broker keys are reported as ignored"
like "$report" "changed  job_queue.state.expiry: '3000s' -> 3000s as \[app\] state_ttl" \
     "the state expiry becomes state_ttl"
like "$report" "changed  db.ch_db.dsn: native protocol \(clickhouse://, port $CH_TCP_PORT\) -> HTTP interface, port $CH_HTTP_PORT; sslmode=disable dropped" \
     "the ClickHouse native DSN is rewritten, and says so"
ini=$(cat "$NODE_DIR/sample.ini")
like "$ini" "dsn = http://default@127.0.0.1:$CH_HTTP_PORT/\?database=default" "to the HTTP interface's URL"
like "$ini" "log_level = DEBUG" "log_level without TOML's quotes"
like "$ini" "state_ttl = 3000s" "state_ttl in the INI"
is "$(stat -c %a "$NODE_DIR/sample.ini")" 600 "the INI (it holds passwords) is private"
( cd "$NODE_DIR" && "$IMPORT" -o sample.ini sample.toml ) >/dev/null 2>&1
is "$?" 1 "an existing output file is not overwritten without --force"

sample_HTTP=$(free_port)
start_imported sample --server "127.0.0.1:$sample_HTTP" --sql-directory "$NODE_DIR/sql_sample" \
    || bail "no node on the imported sample config"
api POST /tasks/get_profit_summary/jobs '{"job_id":"s1","args":["user1"],"ttl":0}'
is "$STATUS" 200 "a job is accepted by the node on the imported sample"
ok "it succeeds" wait_state s1 SUCCESS 30
is "$(q 'SELECT COUNT(*), SUM(total) FROM results_s1')" \
   "$(q "SELECT COUNT(DISTINCT entry_date), SUM(amount) FROM entries WHERE user_id = 'user1'")" \
   "its results are in the sample's results database"
api POST /tasks/ch_numbers/jobs '{"job_id":"s2"}'
ok "a job on the sample's ClickHouse database (DSN rewritten) succeeds" wait_state s2 SUCCESS 30
is "$(q 'SELECT string_agg(s, $$,$$ ORDER BY number) FROM results_s2')" "0,1,2,3,4" "with its rows"
node_stop sample

# ----------------------------------------------------------------------
#  2. A config using every upstream key; a node on it

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/every.sql" <<'SQL'
-- name: nap
-- db: pg
-- results: pg
SELECT pg_sleep($1::float8) AS slept, $1 AS secs;

-- name: my_rows
-- db: my
-- results: my
SELECT id, amount, user_id FROM entries WHERE user_id = ? ORDER BY id;

-- name: sock_rows
-- db: mysock
-- results: pg
SELECT id, amount FROM entries WHERE id <= ? ORDER BY id;

-- name: ch_rows
-- db: ch
-- results: my
SELECT number AS n FROM system.numbers LIMIT 7
SQL
every_HTTP=$(free_port)
sed -e "s|@HTTP@|$every_HTTP|" -e "s|@DIR@|$NODE_DIR|" -e "s|@PG_DSN@|$PG_DSN|" -e "s|@PG_PORT@|$PG_PORT|" \
    -e "s|@MDB_PORT@|$MDB_PORT|g" -e "s|@MDB_SOCK@|$MDB_SOCK|" -e "s|@CH_TCP_PORT@|$CH_TCP_PORT|" \
    "$FIX/every_key.toml" > "$NODE_DIR/every.toml"
"$IMPORT" --clickhouse-port "$CH_TCP_PORT=$CH_HTTP_PORT" -o "$NODE_DIR/every.ini" "$NODE_DIR/every.toml" \
    > "$NODE_DIR/every.report" 2>&1
is "$?" 0 "the importer converts a config with every upstream key"
report=$(cat "$NODE_DIR/every.report")
keys=$(count_keys "$NODE_DIR/every.toml")
is "$(grep -cE '^(kept|changed|ignored) ' "$NODE_DIR/every.report")" "$keys" \
   "one report line per key ($keys keys)"
for key in server queue sql-directory worker-name worker-concurrency worker-only config \
           app.log_level app.default_job_ttl job_queue.broker.write_timeout job_queue.state.meta_expiry \
           results.pg.unlogged results.my.connect_timeout db.pg.unlogged db.ch.host db.ch.port; do
    like "$report" "^(kept|changed|ignored) +$key:" "the report has a line for $key"
done
like "$report" "results.my.dsn: go-sql-driver DSN kept; parseTime=true dropped" \
     "go-sql-driver options that change nothing are dropped, one by one"
like "$report" "results.my.connect_timeout: 5000000000 \(a bare integer is nanoseconds upstream" \
     "an integer duration is read as upstream's nanoseconds"
ini=$(cat "$NODE_DIR/every.ini")
like "$ini" "sql_directory = $NODE_DIR/sql" "sql-directory becomes sql_directory"
like "$ini" "dsn = test:testpw@tcp\(127.0.0.1:$MDB_PORT\)/testdb\?timeout=5s" "go-sql-driver DSN, options kept"
start_imported every || bail "no node on the imported every-key config"
api GET /
is "$STATUS" 200 "the node answers on upstream's server key"

#  ttl: 0 (as the Go client sends) is default_job_ttl (2s here)
api POST /tasks/nap/jobs '{"job_id":"t0","args":["30"],"ttl":0}'
is "$STATUS" 200 "a job with ttl 0 is accepted"
ok "it fails at default_job_ttl" wait_state t0 FAILURE 15
like "$(jfield .data.error)" "time limit" "with the time limit error"
is "$(jfield .data.queue)" "imported" "on upstream's root queue key"
api POST /tasks/nap/jobs '{"job_id":"tn","args":["30"]}'
ok "a job without ttl fails at default_job_ttl too" wait_state tn FAILURE 15
api POST /tasks/nap/jobs '{"job_id":"t_1","args":["3"],"ttl":-1}'
is "$STATUS" 200 "ttl -1 is accepted"
ok "and runs past default_job_ttl: no limit" wait_state t_1 SUCCESS 20
api POST /tasks/nap/jobs '{"job_id":"t_2","args":["1"],"ttl":-2}'
is "$STATUS" 400 "ttl -2 is refused"
like "$(jfield .message)" "-1 for no limit" "naming -1"
api POST /tasks/nap/jobs '{"job_id":"t_3","args":["1"],"ttl":315360001}'
is "$STATUS" 400 "a ttl past the bound is refused"
like "$(jfield .message)" "315360000" "naming the bound"
is "$(q "SELECT relpersistence FROM pg_class WHERE relname = 'res_t_1'")" "u" \
   "results.pg.unlogged and results_table carried over (res_t_1 is UNLOGGED)"

#  Each DSN form the import kept or rewrote
api POST /tasks/my_rows/jobs '{"job_id":"d1","args":["user2"]}'
ok "go-sql-driver tcp DSN, source and results" wait_state d1 SUCCESS 30
is "$(m 'SELECT COUNT(*), SUM(amount) FROM results_d1')" \
   "$(m "SELECT COUNT(*), SUM(amount) FROM entries WHERE user_id = 'user2'")" "rows as in the source"
api POST /tasks/sock_rows/jobs '{"job_id":"d2","args":["10"]}'
ok "go-sql-driver unix(socket) DSN" wait_state d2 SUCCESS 30
is "$(q 'SELECT COUNT(*) FROM res_d2')" 10 "rows through the socket"
api POST /tasks/ch_rows/jobs '{"job_id":"d3"}'
ok "ClickHouse tcp:// DSN rewritten to HTTP" wait_state d3 SUCCESS 30
is "$(m 'SELECT GROUP_CONCAT(n ORDER BY n) FROM results_d3')" "0,1,2,3,4,5,6" "rows from ClickHouse"
node_stop every

# ----------------------------------------------------------------------
#  3. DSNs given by hand: warnings once at start-up, refusals naming the fix

node_config w <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql_w
data_dir = @DIR@/data_w
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.my]
type = mysql
dsn = test:testpw@tcp(127.0.0.1:$MDB_PORT)/testdb?parseTime=true&readTimeout=30s
max_active = 3
[results.my]
type = mysql
dsn = test:testpw@tcp(127.0.0.1:$MDB_PORT)/testdb
INI
mkdir -p "$NODE_DIR/sql_w"
printf -- '-- name: one\nSELECT 1 AS one, ? AS x;\n' > "$NODE_DIR/sql_w/w.sql"
node_start w || bail "node w did not start"
for i in 1 2 3; do api POST /tasks/one/jobs "{\"job_id\":\"w$i\",\"args\":[\"$i\"]}"; done
ok "jobs on a DSN with ignored options succeed" wait_state w3 SUCCESS 20
wait_state w1 SUCCESS 5 >/dev/null; wait_state w2 SUCCESS 5 >/dev/null
is "$(grep -c 'option parseTime=true is ignored' "$NODE_DIR/w.log")" 1 \
   "the ignored option is logged once, at start-up"
like "$(grep 'parseTime' "$NODE_DIR/w.log")" "\[db.my\] mysql: dsn option parseTime=true is ignored.*; option readTimeout=30s is ignored" \
     "naming the section and every ignored option"
node_stop w

refused () {    # refused DSN TYPE PATTERN DESC: a node with DSN exits 1 naming PATTERN
    local dsn=$1 type=$2 pattern=$3 desc=$4 rc
    cat > "$NODE_DIR/r.ini" <<INI
[app]
server = 127.0.0.1:$(free_port)
sql_directory = $NODE_DIR/sql_w
data_dir = $NODE_DIR/data_r
[mesh]
bind = tcp://127.0.0.1:$(free_port)
[db.x]
type = $type
dsn = $dsn
[results.my]
type = mysql
dsn = mysql://test:testpw@127.0.0.1:$MDB_PORT/testdb
INI
    timeout 20 "$DBT_BIN" --config "$NODE_DIR/r.ini" > "$NODE_DIR/r.log" 2>&1
    rc=$?
    is "$rc" 1 "$desc: start-up refused"
    like "$(cat "$NODE_DIR/r.log")" "$pattern" "$desc: the message says why"
    ok "$desc: the message holds no password" sh -c "! grep -q testpw '$NODE_DIR/r.log'"
}
refused "http://127.0.0.1:9000/" clickhouse "\[db.x\] clickhouse: dsn names port 9000, ClickHouse's native protocol.*8123" \
        "a ClickHouse DSN on port 9000"
refused "tcp://default:testpw@127.0.0.1:$CH_TCP_PORT?database=default" clickhouse \
        "native-protocol \(tcp://\) DSN.*http://127.0.0.1:8123/" "a ClickHouse tcp:// DSN"
refused "test:testpw@tcp(127.0.0.1:$MDB_PORT)/testdb?sql_mode=ANSI" mysql \
        "unknown option 'sql_mode'.*session variables" "a go-sql-driver session variable"
refused "test:testpw@tcp(127.0.0.1:$MDB_PORT)/testdb?tls=custom" mysql \
        "registered TLS config" "a go-sql-driver named TLS config"
refused "test:testpw@tcp(127.0.0.1:$MDB_PORT/testdb" mysql \
        "does not end with '\)'" "a go-sql-driver DSN without its ')'"

# ----------------------------------------------------------------------
#  4. MariaDB results without local_infile: the same tables with INSERTs

mroot () { mariadb --no-defaults --socket="$MDB_SOCK" -uroot testdb -N -B -e "$1"; }
#  Rows that need every escape, NULLs in each type, and enough bytes for
#  several INSERT statements (over 4 MB)
m "CREATE TABLE wide (id BIGINT PRIMARY KEY, d DECIMAL(14,4), f DOUBLE, b BOOLEAN, day DATE,
                      ts DATETIME(6), u BIGINT UNSIGNED, t TEXT, pad TEXT) DEFAULT CHARSET = utf8mb4;
   INSERT INTO wide
   SELECT seq, IF(seq % 11 = 0, NULL, seq * 1.0001 - 5000), IF(seq % 13 = 0, NULL, seq / 7e3),
          IF(seq % 17 = 0, NULL, seq % 2), IF(seq % 19 = 0, NULL, DATE '2024-01-01' + INTERVAL seq % 400 DAY),
          IF(seq % 23 = 0, NULL, TIMESTAMP '2024-01-01 00:00:00.000001' + INTERVAL seq SECOND),
          IF(seq % 29 = 0, NULL, 18446744073709551615 - seq),
          IF(seq % 31 = 0, NULL, CONCAT('q''uote \\\\ back\ttab\nnl \"dq\" é😀 ', seq, CHAR(0), 'z')),
          REPEAT('x', 200)
   FROM seq_1_to_30000"
mkdir -p "$NODE_DIR/sql_li"
printf -- '-- name: wide
SELECT * FROM wide WHERE id >= ? ORDER BY id;
' > "$NODE_DIR/sql_li/li.sql"
node_config li <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql_li
data_dir = @DIR@/data_li
retry_backoff = 100ms
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.my]
type = mysql
dsn = test:testpw@tcp(127.0.0.1:$MDB_PORT)/testdb
[results.my]
type = mysql
dsn = test:testpw@tcp(127.0.0.1:$MDB_PORT)/testdb
INI
node_start li || bail "node li did not start"
api POST /tasks/wide/jobs '{"job_id":"infile","args":["1"]}'
ok "with local_infile=1: the job succeeds (LOAD DATA)" wait_state infile SUCCESS 60
#  The server's setting changed under open connections: the first LOAD
#  DATA refused fails its attempt, the retry writes with INSERTs
mroot "SET GLOBAL local_infile = 0"
api POST /tasks/wide/jobs '{"job_id":"refused","args":["1"],"retries":1}'
ok "after SET GLOBAL local_infile=0, the job succeeds on its retry" wait_state refused SUCCESS 60
is "$(jfield .data.attempts)" 2 "in two attempts"
like "$(grep 'refused LOAD DATA' "$NODE_DIR/li.log")" "multi-row INSERTs from the next attempt on"      "the refused LOAD DATA is logged"
node_stop li
MDB_LOCAL_INFILE=0 restart_mariadb || bail "MariaDB did not restart with local_infile=0"
is "$(mroot 'SELECT @@GLOBAL.local_infile')" 0 "MariaDB runs with local_infile=0"
: > "$NODE_DIR/li.log"
node_start li || bail "node li did not start on local_infile=0"
api POST /tasks/wide/jobs '{"job_id":"inserts","args":["1"]}'
ok "with local_infile=0: the job succeeds" wait_state inserts SUCCESS 60
is "$(jfield .data.count)" 30000 "every row"
is "$(grep -c 'local_infile=0: this connection writes results with multi-row INSERTs' "$NODE_DIR/li.log")" 1    "the fallback is logged once (one results connection)"
cols () { m "SELECT GROUP_CONCAT(CONCAT(column_name, ':', column_type, ':', is_nullable) ORDER BY ordinal_position)
             FROM information_schema.columns WHERE table_schema = 'testdb' AND table_name = '$1'"; }
is "$(cols results_inserts)" "$(cols results_infile)" "the same columns as with LOAD DATA"
sums () { m "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, d, f, b, day, ts, u, HEX(t), pad, ISNULL(d),
                   ISNULL(f), ISNULL(b), ISNULL(day), ISNULL(ts), ISNULL(u), ISNULL(t)))) FROM \`$1\`"; }
is "$(sums results_inserts)" "$(sums results_infile)" "the same rows as with LOAD DATA (CRC of every row)"
is "$(sums results_refused)" "$(sums results_infile)" "the same rows after a refused LOAD DATA"
is "$(sums results_inserts)" "$(sums wide)" "the same rows as the source"
is "$(m "SELECT COUNT(*) FROM results_inserts r JOIN wide w USING (id) WHERE NOT (r.t <=> w.t) OR NOT (r.ts <=> w.ts)")" 0 \
   "text with quotes, backslashes, tabs, NUL and emoji, and microseconds, kept exactly"
api POST /tasks/wide/jobs '{"job_id":"inserts","args":["29990"]}'
ok "a re-run with INSERTs swaps in the new table" wait_state inserts SUCCESS 30
is "$(m 'SELECT COUNT(*) FROM results_inserts')" 11 "with the new rows only"
ok "no staging table is left" test "$(m "SELECT COUNT(*) FROM information_schema.tables
                                       WHERE table_schema = 'testdb' AND table_name LIKE '%stag%'")" = 0
node_stop li

# ----------------------------------------------------------------------
#  5. Types kept: PostgreSQL -> PostgreSQL, MariaDB JSON -> jsonb, NOT NULL

q "CREATE TABLE kinds (id int PRIMARY KEY, j json, jb jsonb, u uuid, ip inet, net cidr, iv interval,
                       a_bool boolean[], a_i2 smallint[], a_i4 integer[], a_i8 bigint[],
                       a_f8 double precision[], a_num numeric(10,3)[], a_txt text[], a_vc varchar(5)[],
                       a_date date[], a_ts timestamp[], a_tz timestamptz[], a_json json[], a_jsonb jsonb[],
                       a_uuid uuid[], a_inet inet[], a_cidr cidr[], a_iv interval[])"
q "INSERT INTO kinds VALUES
   (1, '{\"b\": 1,  \"a\": [1, 2.50, null], \"a\": \"dup\"}', '{\"z\": {\"y\": [true, false]}, \"k\": 1.10}',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8', '1 year 2 mons 3 days 04:05:06.789',
    '{t,f,NULL}', '{1,-32768}', '{{1,2},{3,4}}', '{9223372036854775807,NULL}', '{0.1,1e-300,Infinity,NaN}',
    '{1.500,-2.125}', '{\"a,b\",\"q\\\"uote\",\"back\\\\slash\",NULL,\"\",\"é😀\"}', '{abc,de}',
    '{2024-02-29,infinity}', '{\"2024-01-01 00:00:00.000001\"}', '{\"2024-06-01 12:00:00+02\"}',
    ARRAY['{\"x\": 1}'::json, '[ ]'], ARRAY['{\"b\":2,\"a\":1}'::jsonb], '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
    '{::1,10.1.2.3/16}', '{2001:db8::/32}', '{\"-1 days +02:00:00\",\"1 mon\"}'),
   (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL),
   (3, '[]', '\"s\"', '00000000-0000-0000-0000-000000000000', '::ffff:1.2.3.4', '::/0', '-00:00:01',
    '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')"
m "CREATE TABLE mj (id BIGINT NOT NULL PRIMARY KEY, doc JSON, n INT NOT NULL, maybe INT, label VARCHAR(10) NOT NULL);
   INSERT INTO mj VALUES (1, '{\"k\": \"v\", \"n\": [1, 2]}', 5, NULL, 'one'), (2, NULL, 6, 7, 'two')"
mkdir -p "$NODE_DIR/sql_ty"
cat > "$NODE_DIR/sql_ty/ty.sql" <<'SQL'
-- name: kinds
-- db: pg
SELECT * FROM kinds WHERE id >= $1 ORDER BY id;

-- name: mj
-- db: my
SELECT * FROM mj WHERE id >= ? ORDER BY id;

-- name: mj_outer
-- db: my
SELECT a.id, b.n AS b_n FROM mj a LEFT JOIN mj b ON b.id = a.id + 1 WHERE a.id >= ? ORDER BY a.id;
SQL
node_config ty <<INI
[app]
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql_ty
data_dir = @DIR@/data_ty
[mesh]
bind = tcp://127.0.0.1:@MESH@
[db.pg]
type = postgres
dsn = $PG_DSN
[db.my]
type = mysql
dsn = test:testpw@tcp(127.0.0.1:$MDB_PORT)/testdb
[results.pg]
type = postgres
dsn = $PG_DSN
INI
node_start ty || bail "node ty did not start"
api POST /tasks/kinds/jobs '{"job_id":"k1","args":["1"]}'
ok "PostgreSQL -> PostgreSQL job with every kept type" wait_state k1 SUCCESS 30
pgtype () { q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
               WHERE attrelid = '$1'::regclass AND attname = '$2'"; }
for pair in j:json jb:jsonb u:uuid ip:inet net:cidr iv:interval a_bool:'boolean[]' a_i2:'bigint[]' \
            a_i4:'bigint[]' a_i8:'bigint[]' a_f8:'double precision[]' a_num:'numeric(10,3)[]' a_txt:'text[]' \
            a_vc:'text[]' a_date:'date[]' a_ts:'timestamp without time zone[]' \
            a_tz:'timestamp with time zone[]' a_json:'json[]' a_jsonb:'jsonb[]' a_uuid:'uuid[]' \
            a_inet:'inet[]' a_cidr:'cidr[]' a_iv:'interval[]'; do
    col=${pair%%:*}; want=${pair#*:}
    is "$(pgtype results_k1 "$col")" "$want" "kept type: $col is $want"
done
#  Values, compared with the source by SQL (json, which has no equality,
#  by its text: it is kept byte for byte)
for cmp in "s.j::text, r.j::text" "s.jb, r.jb" "s.u, r.u" "s.ip, r.ip" "s.net, r.net" "s.iv, r.iv" \
           "s.a_bool, r.a_bool" "s.a_i2::bigint[], r.a_i2" "s.a_i4::bigint[], r.a_i4" "s.a_i8, r.a_i8" \
           "s.a_f8, r.a_f8" "s.a_num, r.a_num" "s.a_txt, r.a_txt" "s.a_vc::text[], r.a_vc" \
           "s.a_date, r.a_date" "s.a_ts, r.a_ts" "s.a_tz, r.a_tz" "s.a_json::text, r.a_json::text" \
           "s.a_jsonb, r.a_jsonb" "s.a_uuid, r.a_uuid" "s.a_inet, r.a_inet" "s.a_cidr, r.a_cidr" \
           "s.a_iv, r.a_iv"; do
    a=${cmp%%, *}; b=${cmp#*, }
    is "$(q "SELECT COUNT(*) FROM kinds s JOIN results_k1 r USING (id) WHERE $a IS NOT DISTINCT FROM $b")" 3 \
       "values equal the source's: $a"
done
is "$(q "SELECT r.jb -> 'z' -> 'y' ->> 0 FROM results_k1 r WHERE id = 1")" "true" "JSON operators work on the results"
is "$(q "SELECT COUNT(*) FROM results_k1 WHERE a_i4[2][1] = 3")" 1 "and array subscripts"

api POST /tasks/mj/jobs '{"job_id":"mj1","args":["1"]}'
ok "MariaDB -> PostgreSQL job with JSON and NOT NULL columns" wait_state mj1 SUCCESS 30
is "$(pgtype results_mj1 doc)" "jsonb" "MariaDB JSON becomes jsonb"
is "$(q "SELECT doc -> 'n' ->> 1 FROM results_mj1 WHERE id = 1")" 2 "a JSON value, by operator"
is "$(q "SELECT COUNT(*) FROM results_mj1 WHERE doc IS NULL")" 1 "a NULL JSON stays NULL"
nn () { q "SELECT string_agg(attname || ':' || attnotnull, ',' ORDER BY attnum) FROM pg_attribute
           WHERE attrelid = '$1'::regclass AND attnum > 0"; }
is "$(nn results_mj1)" "id:true,doc:false,n:true,maybe:false,label:true" "NOT NULL kept where MariaDB reports it"
api POST /tasks/mj_outer/jobs '{"job_id":"mj2","args":["1"]}'
ok "an outer join's NOT NULL column that yields NULL still succeeds" wait_state mj2 SUCCESS 30
is "$(nn results_mj2)" "id:true,b_n:false" "the outer join's column is nullable"
is "$(nn results_k1 | cut -d, -f1)" "id:false" "PostgreSQL does not report result nullability: no NOT NULL"
node_stop ty

#  What the importer cannot convert, it refuses whole
printf '[app]\nlog_level = "INFO"\n[db.a]\ntype = "mysql"\ndsn = "u:p@tcp(h)/d?sql_mode=ANSI"\n[results.r]\ntype = "postgres"\ndsn = "x"\n' \
    > "$NODE_DIR/bad.toml"
out=$("$IMPORT" -o "$NODE_DIR/bad.ini" "$NODE_DIR/bad.toml" 2>&1)
is "$?" 1 "a DSN with a session variable is not converted"
like "$out" "db.a.dsn: option 'sql_mode' would be SET as a session variable.*nothing written" "and says why"
ok "nothing is written" test ! -e "$NODE_DIR/bad.ini"
printf 'log_level = INFO\n' > "$NODE_DIR/broken.toml"
out=$("$IMPORT" -o - "$NODE_DIR/broken.toml" 2>&1)
is "$?" 1 "a file that is not TOML is refused"
printf '[app]\nlog_level = "INFO"\n[db.a]\ntype = "postgres"\ndsn = "host=h dbname=d"\n[results.r]\ntype = "postgres"\ndsn = "postgres://u@h/d"\n' \
    > "$NODE_DIR/pq.toml"
out=$("$IMPORT" -o - "$NODE_DIR/pq.toml" 2>/dev/null)
like "$out" "dsn = host=h dbname=d sslmode=require" "lib/pq's default sslmode (require) is made explicit"
like "$out" "dsn = postgres://u@h/d\?sslmode=require" "also in a URL"
out=$("$IMPORT" --help)
like "$out" "job_queue.state.expiry becomes state_ttl" "--help explains the conversion"

done_testing
