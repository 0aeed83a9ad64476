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
#include "dbt_dispatcher.h"
#include "dbt_worker.h"

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

//  A dispatcher and one worker on SQLite (sample source "src", results
//  "res") in a temp dir, with a client: what the actor tests share.
typedef struct {
    char *dir;                  //  temp dir (data, databases)
    dbt_config_t *config;       //  configuration
    dbt_tasks_t *tasks;         //  tasks
    dbt_store_t *store;         //  state
    dbt_pools_t *pools;         //  connection pools
    dbt_dispatcher_args_t dargs;//  dispatcher arguments
    zactor_t *dispatcher;       //  dispatcher actor
    const char *queues [1];     //  the worker's queue ("default")
    dbt_worker_args_t wargs;    //  worker arguments
    zactor_t *worker;           //  worker actor
    dbt_client_t *client;       //  client of the dispatcher
} dbt_testing_rig_t;

//  Start a rig; app_ini adds [app] keys, tasks is task-file text,
//  runners is the worker's capacity. Asserts that everything starts.
dbt_testing_rig_t *
    dbt_testing_rig_new (const char *name, const char *app_ini, const char *tasks, int runners);

//  Stop the rig and remove its files; nulls the pointer.
void
    dbt_testing_rig_destroy (dbt_testing_rig_t **self_p);

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
