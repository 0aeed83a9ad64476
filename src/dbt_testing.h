/*  =========================================================================
    dbt_testing - helpers shared by the modules' self tests

    Temporary directories, submitting a job to a dispatcher and waiting for
    a job to reach a state in the store. Only the self tests use these.
    =========================================================================
*/
#ifndef DBT_TESTING_H_INCLUDED
#define DBT_TESTING_H_INCLUDED

#include <stdint.h>
#include "dbt_client.h"
#include "dbt_store.h"

//  A job request for dbt_testing_submit; unset fields are not sent.
typedef struct {
    const char *task;           //  required
    const char *id;             //  job id
    const char *queue;          //  queue
    int64_t eta;                //  wall ms, 0 = unset
    int64_t ttl;                //  ms, 0 = unset
    int64_t results_ttl;        //  ms, 0 = unset
    uint64_t retries;           //  0 = unset
    const char *group;          //  group id, NULL = no group
    uint64_t concurrency;       //  group concurrency
} dbt_testing_job_t;

//  Create a fresh directory /tmp/dbt-<name>-XXXXXX. Caller removes it with
//  dbt_testing_rmtree.
char *
    dbt_testing_tmpdir (const char *name);

//  Remove a directory tree and free the path; nulls the pointer.
void
    dbt_testing_rmtree (char **path_p);

//  Submit one job; returns the reply code (asserts the call itself works).
int
    dbt_testing_submit (dbt_client_t *client, const dbt_testing_job_t *job);

//  Wait up to ms for a job to reach state; returns the record (caller
//  destroys) when it did, else NULL.
dbt_job_t *
    dbt_testing_wait (dbt_store_t *store, const char *id, dbt_state_t state, int ms);

#endif
