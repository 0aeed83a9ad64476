/*  =========================================================================
    dbt_request - the one encoder of job requests (SUBMIT's job maps)

    A job request as a typed struct, and the msgpack job map that SUBMIT
    carries (docs/protocol.md, "Job request"). Every producer of SUBMIT
    writes its jobs with dbt_request_job: the HTTP front after decoding
    JSON (dbt_jobreq), the client endpoint after decoding a client's map
    (dbt_front), and libdungbeetle from its typed API. Pure functions,
    safe from any thread.
    =========================================================================
*/
#ifndef DBT_REQUEST_H_INCLUDED
#define DBT_REQUEST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dbt_msg.h"

//  One job request. Strings are borrowed by dbt_request_job; those filled
//  by dbt_request_read are owned by the struct (dbt_request_free).
typedef struct {
    const char *task;           //  task name (required)
    const char *id;             //  job id, NULL = none
    const char *queue;          //  queue, NULL = the task's
    const char *db;             //  results database, NULL = the task's
    const char **args;          //  positional args; a NULL item binds SQL NULL
    size_t nargs;               //  number of args
    int64_t eta_ms;             //  wall ms to start at, 0 = now
    int64_t ttl_ms;             //  run-time limit in ms, -1 = the node's default
    int64_t results_ttl_ms;     //  results retention in ms, -1 = the node's default
    int64_t retries;            //  retries after a failure
} dbt_request_t;

//  A request with every field at its default (no id, ttl -1, ...).
void
    dbt_request_init (dbt_request_t *req);

//  Append req's job map to w: {task, id?, queue?, db?, args, eta, ttl?,
//  results_ttl?, retries}.
void
    dbt_request_job (dbt_mpw_t *w, const dbt_request_t *req);

//  Decode a job map (as dbt_request_job writes it) into req: strings are
//  copied and owned by req. Checks types, UTF-8, retries within
//  0..DBT_MAX_RETRIES, eta >= 0, ttl and results_ttl within
//  -1..DBT_MAX_TTL_MS. Returns 0, or DBT_EINVAL with err (req is then
//  freed and reset).
int
    dbt_request_read (const msgpack_object *map, dbt_request_t *req, char *err);

//  Free what dbt_request_read filled and reset req.
void
    dbt_request_free (dbt_request_t *req);

//  Self test of this module.
void
    dbt_request_test (bool verbose);

#endif
