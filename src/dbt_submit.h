/*  =========================================================================
    dbt_submit - checking and resolving job requests

    Turns one job request (a msgpack map with id, task, queue, args, db,
    eta, ttl, results_ttl, retries) into a job record ready to store: the
    task must exist, args must match its parameter count and be strings or
    nil, the db must be one the task may use, the id is validated or
    generated, the queue and the results backend are resolved and the
    results table named. Every refusal comes with an HTTP-like status code
    and a message. Pure functions over read-only config and tasks; safe
    from any thread.
    =========================================================================
*/
#ifndef DBT_SUBMIT_H_INCLUDED
#define DBT_SUBMIT_H_INCLUDED

#include <stdint.h>
#include "dbt_config.h"
#include "dbt_tasks.h"
#include "dbt_job.h"
#include "dbt_routes.h"

//  Most retries a job may ask for.
#define DBT_MAX_RETRIES 1000

//  Check and resolve one job request. random picks among several results
//  backends; routes (may be NULL) names the node that owns a queue this
//  node does not dispatch. Returns 0 with *job_p (state PENDING, seq and
//  times unset; caller destroys), or a status code (400, 404, 421) with
//  err set and *job_p NULL.
int
    dbt_submit_job (const dbt_config_t *config, dbt_tasks_t *tasks, dbt_routes_t *routes,
                    const msgpack_object *spec, uint64_t random, dbt_job_t **job_p, char *err);

//  Check a group request map ({id, concurrency}); generates the id when
//  absent. Returns 0 with *group_p (no members yet) or 400 with err.
int
    dbt_submit_group (const msgpack_object *spec, dbt_group_t **group_p, char *err);

//  The queue a request will run on (its queue field, else the task's,
//  else the default), for routing before submission. Returns a new string
//  (caller frees), or NULL when the task is unknown.
char *
    dbt_submit_queue (const dbt_config_t *config, dbt_tasks_t *tasks, const char *task,
                      const char *queue);

//  A results table name: format with its one %s replaced by id. Caller frees.
char *
    dbt_submit_table_name (const char *format, const char *id);

//  Self test of this module.
void
    dbt_submit_test (bool verbose);

#endif
