#!/bin/bash
#  clients.sh - the client endpoint and its clients: dungbeetle-client (C,
#  libdungbeetle) and tools/dungbeetle_client.py each submit a job, wait
#  for it with progress, read its results, cancel a running job (the
#  query stops on the server), with their exit codes; a job submitted on
#  node alpha's client endpoint whose queue node beta dispatches is
#  answered on both; docs/example.c, built against a DESTDIR install of
#  the header and dungbeetle.pc with pkg-config, runs against a node.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/node.sh"
. "$top_srcdir/tests/lib/servers.sh"
need "psql" command -v psql
need "jq" command -v jq
need "pkg-config" command -v pkg-config
need "script (bsdutils)" command -v script
need "python3-zmq and python3-msgpack" /usr/bin/python3 -c 'import zmq, msgpack'
node_dir
need "a PostgreSQL server (apt-get install postgresql)" start_pg
q () { psql "$PG_DSN" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

CLI="${top_builddir:-.}/tools/dungbeetle-client"
PY="$top_srcdir/tools/dungbeetle_client.py"

mkdir -p "$NODE_DIR/sql"
cat > "$NODE_DIR/sql/clients.sql" <<'SQL'
-- name: one
-- queue: q1
SELECT $1::text AS tag, generate_series(1, $2::int) AS n;

-- name: two
-- queue: q2
SELECT $1::text AS tag, generate_series(1, $2::int) AS n;

-- name: trickle
-- queue: q1
SELECT g AS n, pg_sleep (0.002) AS s FROM generate_series (1, $1::int) g;

-- name: nap
-- queue: q2
SELECT pg_sleep($1::float) AS slept_clients_sh;

-- name: broken
-- queue: q1
SELECT 1 / ($1::int - $1::int) AS boom;
SQL

#  Mesh ports with their +1 (publish) and +2 (client) neighbours free.
a_mesh=$(free_port); b_mesh=$(free_port)
while [ $(( b_mesh > a_mesh ? b_mesh - a_mesh : a_mesh - b_mesh )) -le 2 ]; do b_mesh=$(free_port); done
peers="tcp://127.0.0.1:$a_mesh, tcp://127.0.0.1:$b_mesh"
common="[db.pg]
type = postgres
dsn = $PG_DSN
[results.pg]
type = postgres
dsn = $PG_DSN"
node_config alpha <<INI
[app]
worker_name = alpha
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-alpha
worker_concurrency = 2
[mesh]
bind = tcp://127.0.0.1:$a_mesh
peers = $peers
heartbeat_interval = 300ms
[queue.q1]
dispatcher = tcp://127.0.0.1:$a_mesh
$common
INI
node_config beta <<INI
[app]
worker_name = beta
server = 127.0.0.1:@HTTP@
sql_directory = @DIR@/sql
data_dir = @DIR@/data-beta
worker_concurrency = 2
[mesh]
bind = tcp://127.0.0.1:$b_mesh
dispatcher = tcp://127.0.0.1:$a_mesh
peers = $peers
heartbeat_interval = 300ms
[queue.q2]
dispatcher = tcp://127.0.0.1:$b_mesh
$common
INI
node_start alpha || bail "alpha did not start"
node_start beta || bail "beta did not start"
A="tcp://127.0.0.1:$((a_mesh + 2))"
B="tcp://127.0.0.1:$((b_mesh + 2))"
like "$(grep 'client: endpoint' "$NODE_DIR/alpha.log")" "$A" "alpha's client endpoint is bind's port + 2"

#  Until alpha has heard beta announce q2, a q2 job gets 503 (exit 5).
n=0
until "$CLI" --endpoint "$A" submit two warm 1 --wait >/dev/null 2>&1; do
    sleep 0.2; n=$((n + 1)); [ $n -gt 50 ] && bail "alpha never learned who dispatches q2"
done

#  running TOOL ENDPOINT JOB: wait until the job is STARTED.
running () {
    local n=0
    while [ $n -lt 100 ]; do
        "$1" --endpoint "$2" status "$3" 2>/dev/null | grep -q '^state: STARTED' && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
#  sessions QUERY_TAG: server sessions running the query now.
sessions () {
    q "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%$1%'
       AND query NOT LIKE '%pg_stat_activity%'"
}
#  active / stopped QUERY_TAG: wait until some / no session runs it.
active () {
    local n=0
    while [ $n -lt 50 ]; do [ "$(sessions "$1")" -gt 0 ] && return 0; sleep 0.1; n=$((n + 1)); done
    return 1
}
stopped () {
    local n=0
    while [ $n -lt 50 ]; do [ "$(sessions "$1")" = 0 ] && return 0; sleep 0.1; n=$((n + 1)); done
    return 1
}

for tool in cli py; do
    if [ $tool = cli ]; then T=$CLI; else T=$PY; fi
    out=$("$T" --endpoint "$A" submit trickle 400 --id "t_$tool" --wait 2>"$NODE_DIR/progress_$tool")
    is "$?" 0 "$tool: submit --wait exits 0 for SUCCESS"
    is "$(echo "$out" | head -1)" "t_$tool" "$tool: submit prints the job id"
    like "$(echo "$out" | tail -1)" "^t_$tool SUCCESS rows=400" "$tool: the final line says SUCCESS and 400 rows"
    like "$(cat "$NODE_DIR/progress_$tool")" "t_$tool (PENDING|STARTED) rows=[0-9]+ elapsed_ms=[0-9]+" \
        "$tool: progress lines while it ran (plain, not a terminal)"

    out=$("$T" --endpoint "$A" status "t_$tool")
    is "$?" 0 "$tool: status exits 0"
    like "$out" "state: SUCCESS" "$tool: status says SUCCESS"
    out=$("$T" --endpoint "$A" results "t_$tool")
    is "$(echo "$out" | head -1)" "n,s" "$tool: csv results start with the header"
    is "$(echo "$out" | wc -l)" 401 "$tool: csv results have every row"
    out=$("$T" --endpoint "$A" results "t_$tool" --limit 5 --offset 10)
    is "$(echo "$out" | sed -n 2p | cut -d, -f1)" 11 "$tool: --offset 10 starts at row 11"
    is "$(echo "$out" | wc -l)" 6 "$tool: --limit 5 gives 5 rows"
    out=$("$T" --endpoint "$A" results "t_$tool" --format json --limit 1500)
    is "$(echo "$out" | jq '.rows | length')" 400 "$tool: json results, over several pages"
    is "$(echo "$out" | jq -c '.rows[2]')" '[3,""]' "$tool: json keeps numbers numbers"
    is "$(echo "$out" | jq -r '.columns[0].name')" n "$tool: json names the columns"

    "$T" --endpoint "$A" submit broken 1 --id "b_$tool" --wait >/dev/null 2>&1
    is "$?" 1 "$tool: a job that fails: exit 1"
    "$T" --endpoint "$A" status nope_$tool >/dev/null 2>&1
    is "$?" 3 "$tool: unknown job: exit 3"
    "$T" --endpoint "$A" results "b_$tool" >/dev/null 2>&1
    is "$?" 3 "$tool: results of a failed job: exit 3"
    "$T" --endpoint "tcp://127.0.0.1:$(free_port)" --timeout 500 status x >/dev/null 2>&1
    is "$?" 4 "$tool: nobody at the endpoint: exit 4"
    "$T" --endpoint "$A" frobnicate >/dev/null 2>&1
    is "$?" 2 "$tool: unknown command: exit 2"
    "$T" --endpoint "$A" submit nosuchtask >/dev/null 2>&1
    is "$?" 3 "$tool: unknown task: exit 3"
    "$T" --endpoint "$A" submit one x 1 --id "t_$tool" --wait >/dev/null 2>&1
    is "$?" 0 "$tool: a finished job's id may be used again"

    #  Cancel a running job of queue q2 (beta dispatches it) through alpha.
    "$T" --endpoint "$A" submit nap 30 --id "nap_$tool" >/dev/null
    ok "$tool: the nap job runs" running "$T" "$A" "nap_$tool"
    ok "$tool: its query runs on the server" active slept_clients_sh
    "$T" --endpoint "$A" submit nap 1 --id "nap_$tool" >/dev/null 2>&1
    is "$?" 5 "$tool: a running job's id is refused (conflict: exit 5)"
    "$T" --endpoint "$A" cancel "nap_$tool"
    is "$?" 0 "$tool: cancel exits 0"
    ok "$tool: the query stopped on the server" stopped slept_clients_sh
    "$T" --endpoint "$A" wait "nap_$tool" >/dev/null 2>&1
    is "$?" 1 "$tool: the cancelled job ends FAILURE (wait exits 1)"
    "$T" --endpoint "$A" cancel "nap_$tool" >/dev/null 2>&1
    is "$?" 5 "$tool: cancel of a finished job without --purge is refused"
    "$T" --endpoint "$A" cancel "nap_$tool" --purge
    is "$?" 0 "$tool: cancel --purge exits 0"
    "$T" --endpoint "$B" status "nap_$tool" >/dev/null 2>&1
    is "$?" 3 "$tool: the purged job is gone on beta too"

    like "$("$T" --endpoint "$B" tasks)" "^broken	q1" "$tool: tasks lists the tasks and queues"
done
#  On a terminal, wait shows one live line (redrawn in place).
"$CLI" --endpoint "$A" submit trickle 1000 --id tty1 >/dev/null
out=$(script -qec "$CLI --endpoint $A wait tty1" /dev/null | cat -v)
like "$out" '\^M\^\[\[Ktty1 +(PENDING|STARTED) +rows [0-9]+ +elapsed [0-9.]+s' \
    "cli: on a terminal, wait redraws one progress line in place"
like "$(script -qec "$CLI --endpoint $A status tty1" /dev/null)" "state: SUCCESS" "cli: the tty job succeeded"

#  A job of q2 (beta) submitted on alpha's endpoint is answered on both.
"$CLI" --endpoint "$A" submit two cross 7 --id cross1 --wait >/dev/null 2>&1
is "$?" 0 "a job of beta's queue submitted via alpha's client endpoint succeeds"
is "$("$CLI" --endpoint "$B" status cross1 | sed -n 's/^dispatcher: //p')" beta "beta dispatched it"
is "$("$CLI" --endpoint "$A" results cross1 | wc -l)" 8 "its results read through alpha"
is "$("$PY" --endpoint "$B" results cross1 --format json | jq -r '.rows[6][1]')" 7 "and through beta"

#  The pending list: a job held by an eta.
"$CLI" --endpoint "$A" submit one later 1 --id later1 --eta +600 >/dev/null
like "$("$CLI" --endpoint "$A" pending q1)" "^later1	queued" "pending lists a job waiting for its eta"
"$CLI" --endpoint "$A" cancel later1 >/dev/null
is "$?" 0 "a pending job is cancelled"

#  The Python module, imported.
out=$(PYTHONPATH="$top_srcdir/tools" /usr/bin/python3 - "$A" <<'PY'
import sys
import dungbeetle_client as dc
c = dc.Client(sys.argv[1])
jobs = [c.job("one", ["g", "3"], id="g_a"), c.job("one", ["g", "4"], id="g_b")]
group = c.submit_group(jobs, group_id="grp1", concurrency=1)
a = c.wait("g_a")
b = c.wait("g_b")
g = c.group_status(group)
columns, rows = c.all_results("g_b", page=2)
try:
    c.status("missing")
    missing = "found"
except dc.DungbeetleError as e:
    missing = e.code
print(group, a["state"], b["state"], g["state"], len(list(rows)), missing)
PY
)
is "$out" "grp1 SUCCESS SUCCESS SUCCESS 4 404" "python module: a group, waits, paged results, a 404"

#  Bad frames do not hurt the endpoint.
/usr/bin/python3 - "$A" <<'PY'
import sys, zmq
s = zmq.Context().socket(zmq.DEALER)
s.connect(sys.argv[1])
s.send_multipart([b"junk"])
s.send_multipart([b"DBTC01", b"\x03", b"\xc1\xc1"])
s.send_multipart([b"DBTC01", b"\x03", b"\x81\xa3rid\x01"])    # no job_id: 400
print(s.poll(3000))
PY
"$CLI" --endpoint "$A" status cross1 >/dev/null
is "$?" 0 "the endpoint still answers after malformed frames"

#  --- The example program, built against a DESTDIR install.
DEST="$NODE_DIR/inst"
if make -s -C "${top_builddir:-.}" install DESTDIR="$DEST" >"$NODE_DIR/install.log" 2>&1; then
    _tap_result 0 "make install DESTDIR=... installs"
else
    _tap_result 1 "make install DESTDIR=... installs"; sed 's/^/#   /' "$NODE_DIR/install.log" | tail -20
fi
prefix=$(pkg-config --variable=prefix "${top_builddir:-.}/dungbeetle.pc")
libdir=$(pkg-config --define-variable=prefix="$DEST$prefix" --variable=libdir "${top_builddir:-.}/dungbeetle.pc")
ok "the header is installed" test -f "$DEST$prefix/include/dungbeetle.h"
ok "dungbeetle.pc is installed" test -f "$libdir/pkgconfig/dungbeetle.pc"
flags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --define-variable=prefix="$DEST$prefix" --cflags --libs dungbeetle)
like "$flags" "-ldungbeetle" "pkg-config --cflags --libs dungbeetle"
# shellcheck disable=SC2086
${CC:-cc} -Wall -Wextra -Werror -o "$NODE_DIR/example" "$top_srcdir/docs/example.c" $flags \
    >"$NODE_DIR/cc.log" 2>&1
is "$?" 0 "docs/example.c compiles against the installed header and library"
out=$(LD_LIBRARY_PATH="$libdir" "$NODE_DIR/example" "$A" one ex 3 2>"$NODE_DIR/example.err")
is "$?" 0 "the example runs a job on a node"
like "$out" "state SUCCESS, 3 rows" "the example waited for it"
is "$(echo "$out" | tail -1)" "$(printf 'ex\t3')" "and printed its rows"
#  A job that runs a while (1 s), so that there is progress to report
#  (the one above may be done before the wait begins).
LD_LIBRARY_PATH="$libdir" "$NODE_DIR/example" "$A" trickle 400 >/dev/null 2>"$NODE_DIR/example.err"
like "$(cat "$NODE_DIR/example.err")" "state [0-9], [0-9]+ rows" "its progress callback was called"
LD_LIBRARY_PATH="$libdir" "$NODE_DIR/example" "$A" broken 2 >/dev/null 2>&1
is "$?" 1 "the example exits 1 for a failed job"

done_testing
