/*  =========================================================================
    dbt_runner - run one job: source query into a fresh results table

    dbt_runner_run does the database work of one attempt: it takes a
    source and a results connection from the pools, runs the task's SQL
    with the job's args bound, streams the rows into a new staging table
    through the results driver's bulk path, and swaps it atomically into
    the job's table. Progress is reported as rows are written. A
    dbt_cancel_t lets another thread stop the attempt: the request is
    passed to every connection the attempt is using (PQcancel, KILL QUERY,
    sqlite3_interrupt...) and checked between rows. Runs on a worker's
    runner thread; blocks until the attempt ends.
    =========================================================================
*/
#ifndef DBT_RUNNER_H_INCLUDED
#define DBT_RUNNER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "dbt_config.h"
#include "dbt_tasks.h"
#include "dbt_pool.h"
#include "dbt_job.h"

typedef struct _dbt_cancel_t dbt_cancel_t;

//  Create a cancel token (not requested).
dbt_cancel_t *
    dbt_cancel_new (void);

//  Destroy; nulls the pointer.
void
    dbt_cancel_destroy (dbt_cancel_t **self_p);

//  Clear a previous request before reusing the token for a new attempt.
void
    dbt_cancel_reset (dbt_cancel_t *self);

//  Ask the attempt to stop, with a reason for its error (the first reason
//  given is kept). Cancels the running query on every attached
//  connection. Thread-safe; may be called again to repeat the cancel.
void
    dbt_cancel_request (dbt_cancel_t *self, const char *reason);

//  True once a cancel was requested. Thread-safe.
bool
    dbt_cancel_requested (dbt_cancel_t *self);

//  What the runner needs; everything borrowed and shared read-only.
typedef struct {
    const dbt_config_t *config; //  node configuration
    dbt_tasks_t *tasks;         //  task registry
    dbt_pools_t *pools;         //  connection pools
} dbt_runner_ctx_t;

//  Called with the number of rows written so far.
typedef void (dbt_progress_fn) (uint64_t rows, void *arg);

//  Run one attempt of job. Returns 0 with *rows when the results table is
//  complete and in place; DBT_ECANCELED when cancelled (err holds the
//  reason); another negative code with err otherwise. The job's previous
//  results table is untouched unless the attempt succeeds.
int
    dbt_runner_run (const dbt_runner_ctx_t *ctx, const dbt_job_t *job, dbt_cancel_t *cancel,
                    dbt_progress_fn *progress, void *arg, uint64_t *rows, char *err);

//  Self test of this module.
void
    dbt_runner_test (bool verbose);

#endif
