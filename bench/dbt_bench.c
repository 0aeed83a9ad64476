/*  =========================================================================
    dbt_bench - helpers shared by the driver benchmarks

    See dbt_bench.h. Single-threaded benchmark code: errors print and exit.
    =========================================================================
*/
#include "dbt_bench.h"

double
dbt_bench_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

void
dbt_bench_die (const char *what, const char *err)
{
    fprintf (stderr, "bench: %s: %s\n", what, err);
    exit (1);
}

void
dbt_bench_report (const char *what, long rows, double secs, double ref, const char *refname)
{
    printf ("%-30s %9ld rows  %7.3f s  %10.0f rows/s", what, rows, secs, rows / secs);
    if (ref > 0)
        printf ("  %.2fx %s", (rows / secs) / ref, refname);
    printf ("\n");
    fflush (stdout);
}

//  Keep one row at the end of keep.
static void
s_keep (dbt_bench_rows_t *keep, const dbt_row_t *row, size_t *cap)
{
    size_t ncols = keep->ncols;
    if (keep->nrows == *cap) {
        *cap = *cap ? *cap * 2 : 65536;
        keep->offsets = (size_t *) dbt_realloc (keep->offsets, *cap * ncols * sizeof (size_t));
        keep->lens = (size_t *) dbt_realloc (keep->lens, *cap * ncols * sizeof (size_t));
    }
    for (size_t i = 0; i < ncols; i++) {
        size_t at = keep->nrows * ncols + i;
        keep->offsets [at] = row->vals [i] ? keep->data.len : SIZE_MAX;
        keep->lens [at] = row->lens [i];
        if (row->vals [i])
            dbt_buf_append (&keep->data, row->vals [i], row->lens [i]);
    }
    keep->nrows++;
}

long
dbt_bench_read (dbt_conn_t *src, const char *sql, const dbt_query_opts_t *opts,
                dbt_bench_rows_t *keep)
{
    char err [DBT_ERRMSG_LEN];
    if (dbt_conn_query (src, sql, NULL, opts, err))
        dbt_bench_die ("driver read", err);
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
        if (keep)
            s_keep (keep, &row, &cap);
        rows++;
    }
    if (rc < 0)
        dbt_bench_die ("driver read", err);
    dbt_conn_query_end (src);
    return rows;
}

dbt_row_t
dbt_bench_row (const dbt_bench_rows_t *rows, size_t r, const char **vals)
{
    for (size_t i = 0; i < rows->ncols; i++) {
        size_t off = rows->offsets [r * rows->ncols + i];
        vals [i] = off == SIZE_MAX ? NULL : rows->data.data + off;
    }
    dbt_row_t row = { rows->ncols, vals, rows->lens + r * rows->ncols };
    return row;
}

long
dbt_bench_write (dbt_conn_t *res, const dbt_bench_rows_t *rows, const dbt_table_opts_t *opts)
{
    char err [DBT_ERRMSG_LEN];
    if (dbt_conn_write_begin (res, "bench_stage", rows->cols, rows->ncols, opts, err))
        dbt_bench_die ("driver write", err);
    const char **vals = (const char **) dbt_malloc (rows->ncols * sizeof (char *));
    for (size_t r = 0; r < rows->nrows; r++) {
        dbt_row_t row = dbt_bench_row (rows, r, vals);
        if (dbt_conn_write_row (res, &row, err))
            dbt_bench_die ("driver write", err);
    }
    free (vals);
    if (dbt_conn_write_commit (res, "bench_stage", "bench_dst", err))
        dbt_bench_die ("driver commit", err);
    return (long) rows->nrows;
}

long
dbt_bench_pipe (dbt_conn_t *src, dbt_conn_t *res, const char *sql,
                const dbt_table_opts_t *opts)
{
    char err [DBT_ERRMSG_LEN];
    if (dbt_conn_query (src, sql, NULL, NULL, err))
        dbt_bench_die ("pipe read", err);
    const dbt_column_t *cols;
    size_t ncols;
    dbt_conn_columns (src, &cols, &ncols);
    if (dbt_conn_write_begin (res, "bench_stage", cols, ncols, opts, err))
        dbt_bench_die ("pipe write", err);
    long rows = 0;
    dbt_row_t row;
    int rc;
    while ((rc = dbt_conn_fetch (src, &row, err)) == 1) {
        if (dbt_conn_write_row (res, &row, err))
            dbt_bench_die ("pipe write", err);
        rows++;
    }
    if (rc < 0)
        dbt_bench_die ("pipe read", err);
    dbt_conn_query_end (src);
    if (dbt_conn_write_commit (res, "bench_stage", "bench_dst", err))
        dbt_bench_die ("pipe commit", err);
    return rows;
}

void
dbt_bench_rows_free (dbt_bench_rows_t *rows)
{
    dbt_buf_free (&rows->data);
    free (rows->offsets);
    free (rows->lens);
    dbt_columns_free (&rows->cols, rows->ncols);
    memset (rows, 0, sizeof (*rows));
}
