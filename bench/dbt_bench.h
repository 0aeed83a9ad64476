/*  =========================================================================
    dbt_bench - helpers shared by the driver benchmarks (pg_bench, mariadb_bench)

    Timing and reporting, and the three driver measurements every bench
    runs the same way: read a query (optionally keeping its rows in
    memory), write kept rows into bench_dst through a staging table, and
    pipe a query into bench_dst as a job does. Errors end the program.
    =========================================================================
*/
#ifndef DBT_BENCH_H_INCLUDED
#define DBT_BENCH_H_INCLUDED

#include "../src/dbt_classes.h"

//  Runs of each measurement; the best one counts.
#define DBT_BENCH_RUNS 3

//  Time DBT_BENCH_RUNS runs of call, the best into best (seconds) and the
//  rows of the last run (what call returns) into rows.
#define DBT_BENCH_BEST(best, rows, call) do { \
    best = 1e9; \
    for (int run_ = 0; run_ < DBT_BENCH_RUNS; run_++) { \
        double start_ = dbt_bench_now (); \
        rows = (call); \
        double secs_ = dbt_bench_now () - start_; \
        best = secs_ < best ? secs_ : best; \
    } \
} while (0)

//  Rows held in memory: cells back to back in one buffer.
typedef struct {
    dbt_buf_t data;             //  all cell bytes
    size_t *offsets;            //  per cell, SIZE_MAX for NULL
    size_t *lens;               //  per cell
    size_t ncols;               //  columns per row
    size_t nrows;               //  rows held
    dbt_column_t *cols;         //  columns (owned)
} dbt_bench_rows_t;

//  Seconds on a monotonic clock.
double
    dbt_bench_now (void);

//  Print "bench: what: err" and exit 1.
void
    dbt_bench_die (const char *what, const char *err);

//  Print one result line; with ref > 0 also its ratio to ref rows/s,
//  named refname.
void
    dbt_bench_report (const char *what, long rows, double secs, double ref,
                      const char *refname);

//  Read all rows of sql with opts (NULL: none), keeping them in keep when
//  given (free with dbt_bench_rows_free). Returns the rows read.
long
    dbt_bench_read (dbt_conn_t *src, const char *sql, const dbt_query_opts_t *opts,
                    dbt_bench_rows_t *keep);

//  Write the kept rows into bench_dst (via bench_stage). Returns the rows.
long
    dbt_bench_write (dbt_conn_t *res, const dbt_bench_rows_t *rows,
                     const dbt_table_opts_t *opts);

//  Read sql and write it into bench_dst (via bench_stage) row by row, as
//  a job does. Returns the rows.
long
    dbt_bench_pipe (dbt_conn_t *src, dbt_conn_t *res, const char *sql,
                    const dbt_table_opts_t *opts);

//  Row r of kept rows, its cells pointed to from vals (ncols entries).
dbt_row_t
    dbt_bench_row (const dbt_bench_rows_t *rows, size_t r, const char **vals);

//  Free kept rows.
void
    dbt_bench_rows_free (dbt_bench_rows_t *rows);

#endif
