#!/bin/bash
#  drivers.sh - driver conformance for every source -> results pair (TAP)
#
#  Starts a throwaway PostgreSQL, MariaDB and ClickHouse
#  (tests/lib/servers.sh) and runs tests/dbt_drivertest for sqlite->sqlite,
#  postgres->postgres, postgres->sqlite, sqlite->postgres, mysql->mysql,
#  mysql->sqlite (over the Unix socket), sqlite->mysql, mysql->postgres,
#  postgres->mysql, clickhouse->sqlite, clickhouse->postgres and
#  clickhouse->mysql (ClickHouse is a source only): one TAP line per pair,
#  the pair's own checks as comments below it. A pair whose server cannot
#  start is skipped, except under CI=true, where that fails.
#  Environment (set by make check): top_srcdir, top_builddir.

set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
drivertest=$top_builddir/tests/dbt_drivertest

. "$top_srcdir/tests/lib/servers.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/dbt-drivers.XXXXXX") || exit 1
cleanup () {
    stop_all
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
failed=0
echo "1..12"

#  pair DESCRIPTION SOURCE_TYPE SOURCE_DSN RESULTS_TYPE RESULTS_DSN
pair () {
    local desc=$1 out status
    shift
    n=$((n + 1))
    out=$("$drivertest" "$@" 2>&1)
    status=$?
    if [ $status = 0 ]; then
        echo "ok $n - $desc"
    else
        echo "not ok $n - $desc (exit $status)"
        failed=$((failed + 1))
    fi
    printf '%s\n' "$out" | sed 's/^/#   /'
}

#  skip_or_fail DESCRIPTION REASON
skip_or_fail () {
    n=$((n + 1))
    if [ "${CI:-}" = true ]; then
        echo "not ok $n - $1: $2 (a failure under CI=true)"
        failed=$((failed + 1))
    else
        echo "ok $n - $1 # SKIP $2"
    fi
}

if [ ! -x "$drivertest" ]; then
    echo "Bail out! $drivertest is not built (make check builds it)"
    exit 1
fi

pair "sqlite -> sqlite" sqlite "$work/src.db" sqlite "$work/results.db"

pg_reason=
my_reason=
if start_pg 2>"$work/start_pg.log"; then
    pair "postgres -> postgres" postgres "$PG_DSN" postgres "$PG_DSN"
    pair "postgres -> sqlite" postgres "$PG_DSN" sqlite "$work/results2.db"
    pair "sqlite -> postgres" sqlite "$work/src2.db" postgres "$PG_DSN"
else
    pg_reason="cannot start postgresql: $(tail -1 "$work/start_pg.log")"
    sed 's/^/# /' "$work/start_pg.log"
    skip_or_fail "postgres -> postgres" "$pg_reason"
    skip_or_fail "postgres -> sqlite" "$pg_reason"
    skip_or_fail "sqlite -> postgres" "$pg_reason"
fi

if start_mariadb 2>"$work/start_mariadb.log"; then
    my_dsn="mysql://test:testpw@127.0.0.1:$MDB_PORT/testdb"
    #  One pair goes over the Unix socket (a path percent-encoded in the URL)
    my_sock_dsn="mysql://test:testpw@localhost/testdb?socket=$(printf %s "$MDB_SOCK" | sed 's|/|%2F|g')"
    pair "mysql -> mysql" mysql "$my_dsn" mysql "$my_dsn"
    pair "mysql (socket) -> sqlite" mysql "$my_sock_dsn" sqlite "$work/results3.db"
    pair "sqlite -> mysql" sqlite "$work/src3.db" mysql "$my_dsn"
    if [ -z "$pg_reason" ]; then
        pair "mysql -> postgres" mysql "$my_dsn" postgres "$PG_DSN"
        pair "postgres -> mysql" postgres "$PG_DSN" mysql "$my_dsn"
    else
        skip_or_fail "mysql -> postgres" "$pg_reason"
        skip_or_fail "postgres -> mysql" "$pg_reason"
    fi
else
    my_reason="cannot start mariadb: $(tail -1 "$work/start_mariadb.log")"
    sed 's/^/# /' "$work/start_mariadb.log"
    for desc in "mysql -> mysql" "mysql (socket) -> sqlite" "sqlite -> mysql" \
                "mysql -> postgres" "postgres -> mysql"; do
        skip_or_fail "$desc" "$my_reason"
    done
fi

if start_clickhouse 2>"$work/start_ch.log"; then
    pair "clickhouse -> sqlite" clickhouse "$CH_URL" sqlite "$work/results4.db"
    if [ -z "$pg_reason" ]; then
        pair "clickhouse -> postgres" clickhouse "$CH_URL" postgres "$PG_DSN"
    else
        skip_or_fail "clickhouse -> postgres" "$pg_reason"
    fi
    if [ -z "$my_reason" ]; then
        pair "clickhouse -> mysql" clickhouse "$CH_URL" mysql "$my_dsn"
    else
        skip_or_fail "clickhouse -> mysql" "$my_reason"
    fi
else
    ch_reason="cannot start clickhouse: $(tail -1 "$work/start_ch.log")"
    sed 's/^/# /' "$work/start_ch.log"
    for desc in "clickhouse -> sqlite" "clickhouse -> postgres" "clickhouse -> mysql"; do
        skip_or_fail "$desc" "$ch_reason"
    done
fi

[ $failed = 0 ]
