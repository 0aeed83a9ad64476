/*  =========================================================================
    pg_bench - PostgreSQL driver throughput against the raw COPY pipe

    Usage: bench/pg_bench DSN [ROWS]          (build: make bench)

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
#include "../src/dbt_classes.h"
#include <libpq-fe.h>

#define RUNS 3

static const char s_columns_sql [] =
    "(id bigint, amount numeric(12,2), ts timestamp, day date, flag boolean, note text)";

//  Rows held in memory: cells back to back in one buffer.
typedef struct {
    dbt_buf_t data;             //  all cell bytes
    size_t *offsets;            //  per cell, SIZE_MAX for NULL
    size_t *lens;               //  per cell
    size_t ncols;               //  columns per row
    size_t nrows;               //  rows held
    dbt_column_t *cols;         //  columns (owned)
} s_rows_t;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
s_die (const char *what, const char *err)
{
    fprintf (stderr, "pg_bench: %s: %s\n", what, err);
    exit (1);
}

static void
s_report (const char *what, long rows, double secs, double ref)
{
    printf ("%-28s %9ld rows  %7.3f s  %10.0f rows/s", what, rows, secs, rows / secs);
    if (ref > 0)
        printf ("  %.2fx psql pipe", (rows / secs) / ref);
    printf ("\n");
    fflush (stdout);
}

//  Create and fill bench_src unless it already holds rows rows.
static void
s_setup (const char *dsn, long rows)
{
    PGconn *conn = PQconnectdb (dsn);
    if (PQstatus (conn) != CONNECTION_OK)
        s_die ("connect", PQerrorMessage (conn));
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
                s_die ("setup", PQresultErrorMessage (res));
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
        s_die ("single-row", PQerrorMessage (conn));
    PGresult *res;
    while ((res = PQgetResult (conn))) {
        if (PQresultStatus (res) == PGRES_SINGLE_TUPLE) {
            rows++;
            for (int i = 0; i < PQnfields (res); i++)
                bytes += (size_t) PQgetlength (res, 0, i) + (size_t) *PQgetvalue (res, 0, i);
        }
        else
        if (PQresultStatus (res) != PGRES_TUPLES_OK)
            s_die ("single-row", PQresultErrorMessage (res));
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
        s_die ("cursor", PQresultErrorMessage (res));
    PQclear (res);
    while (true) {
        res = PQexec (conn, "FETCH FORWARD 10000 FROM c");
        if (PQresultStatus (res) != PGRES_TUPLES_OK)
            s_die ("cursor", PQresultErrorMessage (res));
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

//  Driver: read all rows, keeping them in memory when keep is given.
static long
s_driver_read (dbt_conn_t *src, s_rows_t *keep)
{
    char err [DBT_ERRMSG_LEN];
    if (dbt_conn_query (src, "SELECT * FROM bench_src", NULL, NULL, err))
        s_die ("driver read", err);
    const dbt_column_t *cols;
    size_t ncols;
    dbt_conn_columns (src, &cols, &ncols);
    if (keep) {
        keep->ncols = ncols;
        keep->cols = (dbt_column_t *) dbt_malloc (ncols * sizeof (dbt_column_t));
        for (size_t i = 0; i < ncols; i++) {
            keep->cols [i] = cols [i];
            keep->cols [i].name = dbt_strdup (cols [i].name);
            keep->cols [i].source_type = dbt_strdup (cols [i].source_type);
        }
    }
    long rows = 0;
    size_t cap = 0;
    dbt_row_t row;
    int rc;
    while ((rc = dbt_conn_fetch (src, &row, err)) == 1) {
        if (keep) {
            if (keep->nrows == cap) {
                cap = cap ? cap * 2 : 65536;
                keep->offsets = (size_t *) dbt_realloc (keep->offsets, cap * ncols * sizeof (size_t));
                keep->lens = (size_t *) dbt_realloc (keep->lens, cap * ncols * sizeof (size_t));
            }
            for (size_t i = 0; i < ncols; i++) {
                size_t at = keep->nrows * ncols + i;
                keep->offsets [at] = row.vals [i] ? keep->data.len : SIZE_MAX;
                keep->lens [at] = row.lens [i];
                if (row.vals [i])
                    dbt_buf_append (&keep->data, row.vals [i], row.lens [i]);
            }
            keep->nrows++;
        }
        rows++;
    }
    if (rc < 0)
        s_die ("driver read", err);
    dbt_conn_query_end (src);
    return rows;
}

//  Driver: write the kept rows into bench_dst.
static long
s_driver_write (dbt_conn_t *res, const s_rows_t *rows, bool unlogged)
{
    char err [DBT_ERRMSG_LEN];
    dbt_table_opts_t opts = { unlogged };
    if (dbt_conn_write_begin (res, "bench_stage", rows->cols, rows->ncols, &opts, err))
        s_die ("driver write", err);
    const char *vals [16];
    for (size_t r = 0; r < rows->nrows; r++) {
        for (size_t i = 0; i < rows->ncols; i++) {
            size_t off = rows->offsets [r * rows->ncols + i];
            vals [i] = off == SIZE_MAX ? NULL : rows->data.data + off;
        }
        dbt_row_t row = { rows->ncols, vals, rows->lens + r * rows->ncols };
        if (dbt_conn_write_row (res, &row, err))
            s_die ("driver write", err);
    }
    if (dbt_conn_write_commit (res, "bench_stage", "bench_dst", err))
        s_die ("driver commit", err);
    return (long) rows->nrows;
}

//  Driver: read and write together, as a job does.
static long
s_driver_pipe (dbt_conn_t *src, dbt_conn_t *res, bool unlogged)
{
    char err [DBT_ERRMSG_LEN];
    if (dbt_conn_query (src, "SELECT * FROM bench_src", NULL, NULL, err))
        s_die ("pipe read", err);
    const dbt_column_t *cols;
    size_t ncols;
    dbt_conn_columns (src, &cols, &ncols);
    dbt_table_opts_t opts = { unlogged };
    if (dbt_conn_write_begin (res, "bench_stage", cols, ncols, &opts, err))
        s_die ("pipe write", err);
    long rows = 0;
    dbt_row_t row;
    int rc;
    while ((rc = dbt_conn_fetch (src, &row, err)) == 1) {
        if (dbt_conn_write_row (res, &row, err))
            s_die ("pipe write", err);
        rows++;
    }
    if (rc < 0)
        s_die ("pipe read", err);
    dbt_conn_query_end (src);
    if (dbt_conn_write_commit (res, "bench_stage", "bench_dst", err))
        s_die ("pipe commit", err);
    return rows;
}

//  psql COPY TO STDOUT piped into psql COPY FROM STDIN (new table, one
//  transaction, like the driver). Returns seconds.
static double
s_psql_pipe (const char *dsn, bool unlogged)
{
    char *cmd = dbt_printf (
        "psql -X -q -d '%s' -c 'COPY (SELECT * FROM bench_src) TO STDOUT' | "
        "psql -X -q -d '%s' -1 -c 'SET client_min_messages = warning' "
        "-c 'DROP TABLE IF EXISTS bench_pipe' -c 'CREATE %sTABLE bench_pipe %s' "
        "-c 'COPY bench_pipe FROM STDIN'", dsn, dsn, unlogged ? "UNLOGGED " : "", s_columns_sql);
    double start = s_now ();
    if (system (cmd) != 0)
        s_die ("psql pipe", cmd);
    double secs = s_now () - start;
    free (cmd);
    return secs;
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
            s_die ("bad row count", argv [2]);
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
        s_die ("connect", err);
    PGconn *raw = PQconnectdb (dsn);
    if (PQstatus (raw) != CONNECTION_OK)
        s_die ("connect", PQerrorMessage (raw));

    //  The reference first: the best of RUNS psql pipes per table kind.
    double pipe [2] = { 1e9, 1e9 };
    for (int unlogged = 0; unlogged < 2; unlogged++)
        for (int run = 0; run < RUNS; run++) {
            double secs = s_psql_pipe (dsn, unlogged);
            if (secs < pipe [unlogged])
                pipe [unlogged] = secs;
        }
    double ref [2] = { nrows / pipe [0], nrows / pipe [1] };
    printf ("%ld rows of %s\n", nrows, s_columns_sql);
    s_report ("psql pipe (logged)", nrows, pipe [0], 0);
    s_report ("psql pipe (unlogged)", nrows, pipe [1], 0);

    double best = 1e9;
    long rows = 0;
    for (int run = 0; run < RUNS; run++) {
        double start = s_now ();
        rows = s_raw_single (raw);
        double secs = s_now () - start;
        best = secs < best ? secs : best;
    }
    s_report ("raw single-row read", rows, best, 0);
    best = 1e9;
    for (int run = 0; run < RUNS; run++) {
        double start = s_now ();
        rows = s_raw_cursor (raw);
        double secs = s_now () - start;
        best = secs < best ? secs : best;
    }
    s_report ("raw cursor read (10000)", rows, best, 0);
    best = 1e9;
    for (int run = 0; run < RUNS; run++) {
        double start = s_now ();
        rows = s_driver_read (src, NULL);
        double secs = s_now () - start;
        best = secs < best ? secs : best;
    }
    s_report ("driver read", rows, best, 0);

    s_rows_t kept = { 0 };
    s_driver_read (src, &kept);
    for (int unlogged = 0; unlogged < 2; unlogged++) {
        best = 1e9;
        for (int run = 0; run < RUNS; run++) {
            double start = s_now ();
            rows = s_driver_write (res, &kept, unlogged);
            double secs = s_now () - start;
            best = secs < best ? secs : best;
        }
        s_report (unlogged ? "driver write (unlogged)" : "driver write (logged)", rows, best,
                  ref [unlogged]);
    }
    for (int unlogged = 0; unlogged < 2; unlogged++) {
        best = 1e9;
        for (int run = 0; run < RUNS; run++) {
            double start = s_now ();
            rows = s_driver_pipe (src, res, unlogged);
            double secs = s_now () - start;
            best = secs < best ? secs : best;
        }
        s_report (unlogged ? "driver pipe (unlogged)" : "driver pipe (logged)", rows, best,
                  ref [unlogged]);
    }
    dbt_conn_drop_table (res, "bench_dst", err);
    dbt_conn_drop_table (res, "bench_pipe", err);
    dbt_buf_free (&kept.data);
    free (kept.offsets);
    free (kept.lens);
    dbt_columns_free (&kept.cols, kept.ncols);
    PQfinish (raw);
    dbt_conn_destroy (&src);
    dbt_conn_destroy (&res);
    return 0;
}
