#!/bin/bash
#  drivers.sh - driver conformance for every source -> results pair (TAP)
#
#  Starts a throwaway PostgreSQL and ClickHouse (tests/lib/servers.sh) and
#  runs tests/dbt_drivertest for sqlite->sqlite, postgres->postgres,
#  postgres->sqlite, sqlite->postgres, clickhouse->sqlite and
#  clickhouse->postgres (ClickHouse is a source only): one TAP line per
#  pair, the pair's own checks as comments below it. A pair whose server
#  cannot start is skipped, except under CI=true, where that fails.
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
echo "1..6"

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

if start_pg 2>"$work/start_pg.log"; then
    pair "postgres -> postgres" postgres "$PG_DSN" postgres "$PG_DSN"
    pair "postgres -> sqlite" postgres "$PG_DSN" sqlite "$work/results2.db"
    pair "sqlite -> postgres" sqlite "$work/src2.db" postgres "$PG_DSN"
else
    reason="cannot start postgresql: $(tail -1 "$work/start_pg.log")"
    sed 's/^/# /' "$work/start_pg.log"
    skip_or_fail "postgres -> postgres" "$reason"
    skip_or_fail "postgres -> sqlite" "$reason"
    skip_or_fail "sqlite -> postgres" "$reason"
    pg_reason=$reason
fi

if start_clickhouse 2>"$work/start_ch.log"; then
    pair "clickhouse -> sqlite" clickhouse "$CH_URL" sqlite "$work/results3.db"
    if [ -n "${PG_DSN:-}" ]; then
        pair "clickhouse -> postgres" clickhouse "$CH_URL" postgres "$PG_DSN"
    else
        skip_or_fail "clickhouse -> postgres" "$pg_reason"
    fi
else
    reason="cannot start clickhouse: $(tail -1 "$work/start_ch.log")"
    sed 's/^/# /' "$work/start_ch.log"
    skip_or_fail "clickhouse -> sqlite" "$reason"
    skip_or_fail "clickhouse -> postgres" "$reason"
fi

[ $failed = 0 ]
