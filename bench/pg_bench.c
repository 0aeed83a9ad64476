/*  =========================================================================
    pg_bench - PostgreSQL driver throughput against the raw COPY pipe

    Usage: bench/pg_bench DSN [ROWS]          (build: make bench-drivers)

    Fills bench_src with ROWS (default 1,000,000) rows of the six-column
    report shape (bigint, numeric(12,2), timestamp, date, boolean, text) and
    measures, best of three runs each:

      raw single-row    libpq PQsetSingleRowMode loop (the driver's choice)
      raw cursor        libpq DECLARE CURSOR + FETCH FORWARD 10000 loop
      driver read       dbt_conn_query + dbt_conn_fetch over all rows
      driver write      dbt_conn_write_begin/row/commit of the same rows,
                        held in memory beforehand (COPY into a new table)
      driver pipe       read and write together, as a job runs them
      psql pipe         psql -c "COPY (...) TO STDOUT" | psql -1 -c "CREATE
                        TABLE ..." -c "COPY ... FROM STDIN", the reference

    Writes are measured into LOGGED and UNLOGGED tables. Not part of make
    check: it needs a server (tests/lib/servers.sh start_pg gives one) and
    takes a minute.
    =========================================================================
*/
#include "dbt_bench.h"
#include <libpq-fe.h>

static const char s_columns_sql [] =
    "(id bigint, amount numeric(12,2), ts timestamp, day date, flag boolean, note text)";

//  The reference for the ratios.
static const char s_ref [] = "psql pipe";

//  Create and fill bench_src unless it already holds rows rows.
static void
s_setup (const char *dsn, long rows)
{
    PGconn *conn = PQconnectdb (dsn);
    if (PQstatus (conn) != CONNECTION_OK)
        dbt_bench_die ("connect", PQerrorMessage (conn));
    PGresult *res = PQexec (conn, "SELECT count(*) FROM bench_src");
    bool ready = PQresultStatus (res) == PGRES_TUPLES_OK
              && strtol (PQgetvalue (res, 0, 0), NULL, 10) == rows;
    PQclear (res);
    if (!ready) {
        char *sql = dbt_printf (
            "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_src; "
            "CREATE TABLE bench_src %s; "
            "INSERT INTO bench_src SELECT g, (g %% 100000) / 100.0, "
            "timestamp '2024-01-01' + g * interval '1.5 second', date '2024-01-01' + g %% 365, "
            "g %% 2 = 0, 'user' || (g %% 1000) || ' some note text' "
            "FROM generate_series(1, %ld) g", s_columns_sql, rows);
        //  VACUUM on its own: several statements in one PQexec run as one
        //  transaction, which VACUUM refuses
        const char *steps [] = { sql, "VACUUM ANALYZE bench_src" };
        for (size_t i = 0; i < 2; i++) {
            res = PQexec (conn, steps [i]);
            if (PQresultStatus (res) != PGRES_COMMAND_OK)
                dbt_bench_die ("setup", PQresultErrorMessage (res));
            PQclear (res);
        }
        free (sql);
    }
    PQfinish (conn);
}

//  Raw libpq: single-row mode over all rows. Returns rows read.
static long
s_raw_single (PGconn *conn)
{
    long rows = 0;
    size_t bytes = 0;
    if (!PQsendQueryParams (conn, "SELECT * FROM bench_src", 0, NULL, NULL, NULL, NULL, 0)
    ||  !PQsetSingleRowMode (conn))
        dbt_bench_die ("single-row", PQerrorMessage (conn));
    PGresult *res;
    while ((res = PQgetResult (conn))) {
        if (PQresultStatus (res) == PGRES_SINGLE_TUPLE) {
            rows++;
            for (int i = 0; i < PQnfields (res); i++)
                bytes += (size_t) PQgetlength (res, 0, i) + (size_t) *PQgetvalue (res, 0, i);
        }
        else
        if (PQresultStatus (res) != PGRES_TUPLES_OK)
            dbt_bench_die ("single-row", PQresultErrorMessage (res));
        PQclear (res);
    }
    return bytes ? rows : 0;
}

//  Raw libpq: a cursor fetched 10,000 rows at a time. Returns rows read.
static long
s_raw_cursor (PGconn *conn)
{
    long rows = 0;
    size_t bytes = 0;
    PQclear (PQexec (conn, "BEGIN"));
    PGresult *res = PQexec (conn, "DECLARE c NO SCROLL CURSOR FOR SELECT * FROM bench_src");
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        dbt_bench_die ("cursor", PQresultErrorMessage (res));
    PQclear (res);
    while (true) {
        res = PQexec (conn, "FETCH FORWARD 10000 FROM c");
        if (PQresultStatus (res) != PGRES_TUPLES_OK)
            dbt_bench_die ("cursor", PQresultErrorMessage (res));
        int n = PQntuples (res);
        for (int r = 0; r < n; r++) {
            rows++;
            for (int i = 0; i < PQnfields (res); i++)
                bytes += (size_t) PQgetlength (res, r, i) + (size_t) *PQgetvalue (res, r, i);
        }
        PQclear (res);
        if (n == 0)
            break;
    }
    PQclear (PQexec (conn, "COMMIT"));
    return bytes ? rows : 0;
}

//  psql COPY TO STDOUT piped into psql COPY FROM STDIN (new table, one
//  transaction, like the driver). Returns rows, the rows piped.
static long
s_psql_pipe (const char *dsn, bool unlogged, long rows)
{
    char *cmd = dbt_printf (
        "psql -X -q -d '%s' -c 'COPY (SELECT * FROM bench_src) TO STDOUT' | "
        "psql -X -q -d '%s' -1 -c 'SET client_min_messages = warning' "
        "-c 'DROP TABLE IF EXISTS bench_pipe' -c 'CREATE %sTABLE bench_pipe %s' "
        "-c 'COPY bench_pipe FROM STDIN'", dsn, dsn, unlogged ? "UNLOGGED " : "", s_columns_sql);
    if (system (cmd) != 0)
        dbt_bench_die ("psql pipe", cmd);
    free (cmd);
    return rows;
}

int
main (int argc, char **argv)
{
    if (argc < 2 || argc > 3 || strchr (argv [1], '\'')) {
        fprintf (stderr, "usage: pg_bench DSN [ROWS]   (DSN without single quotes)\n");
        return 2;
    }
    long nrows = 1000000;
    if (argc == 3) {
        int64_t parsed;
        if (dbt_parse_int64 (argv [2], 1, 100000000, &parsed))
            dbt_bench_die ("bad row count", argv [2]);
        nrows = (long) parsed;
    }
    const char *dsn = argv [1];
    s_setup (dsn, nrows);
    char err [DBT_ERRMSG_LEN];
    dbt_dbconf_t sconf = { .name = "src", .type = "postgres", .dsn = dsn };
    dbt_dbconf_t rconf = { .name = "res", .type = "postgres", .dsn = dsn, .results = true };
    dbt_conn_t *src = dbt_conn_new (&sconf, err);
    dbt_conn_t *res = src ? dbt_conn_new (&rconf, err) : NULL;
    if (!res)
        dbt_bench_die ("connect", err);
    PGconn *raw = PQconnectdb (dsn);
    if (PQstatus (raw) != CONNECTION_OK)
        dbt_bench_die ("connect", PQerrorMessage (raw));

    //  The reference first: the best psql pipe per table kind.
    printf ("%ld rows of %s\n", nrows, s_columns_sql);
    double pipe [2], best;
    long rows = 0;
    for (int unlogged = 0; unlogged < 2; unlogged++) {
        DBT_BENCH_BEST (pipe [unlogged], rows, s_psql_pipe (dsn, unlogged, nrows));
        dbt_bench_report (unlogged ? "psql pipe (unlogged)" : "psql pipe (logged)", rows,
                          pipe [unlogged], 0, NULL);
    }
    double ref [2] = { nrows / pipe [0], nrows / pipe [1] };
    DBT_BENCH_BEST (best, rows, s_raw_single (raw));
    dbt_bench_report ("raw single-row read", rows, best, 0, NULL);
    DBT_BENCH_BEST (best, rows, s_raw_cursor (raw));
    dbt_bench_report ("raw cursor read (10000)", rows, best, 0, NULL);
    const char *select = "SELECT * FROM bench_src";
    DBT_BENCH_BEST (best, rows, dbt_bench_read (src, select, NULL, NULL));
    dbt_bench_report ("driver read", rows, best, 0, NULL);

    dbt_bench_rows_t kept = { 0 };
    dbt_bench_read (src, select, NULL, &kept);
    for (int unlogged = 0; unlogged < 2; unlogged++) {
        dbt_table_opts_t opts = { unlogged, NULL };
        DBT_BENCH_BEST (best, rows, dbt_bench_write (res, &kept, &opts));
        dbt_bench_report (unlogged ? "driver write (unlogged)" : "driver write (logged)", rows,
                          best, ref [unlogged], s_ref);
    }
    for (int unlogged = 0; unlogged < 2; unlogged++) {
        dbt_table_opts_t opts = { unlogged, NULL };
        DBT_BENCH_BEST (best, rows, dbt_bench_pipe (src, res, select, &opts));
        dbt_bench_report (unlogged ? "driver pipe (unlogged)" : "driver pipe (logged)", rows,
                          best, ref [unlogged], s_ref);
    }
    dbt_conn_drop_table (res, "bench_dst", err);
    dbt_conn_drop_table (res, "bench_pipe", err);
    dbt_bench_rows_free (&kept);
    PQfinish (raw);
    dbt_conn_destroy (&src);
    dbt_conn_destroy (&res);
    return 0;
}
