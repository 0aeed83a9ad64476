/*  =========================================================================
    dbt_jobreq - job and group requests decoded from JSON

    Decodes the bodies of POST /tasks/{task}/jobs (upstream's JobReq) and
    POST /groups (GroupReq: group_id, concurrency, jobs) into the msgpack
    job maps the dispatcher's SUBMIT takes (dbt_submit_job reads them).
    Keys follow Go's encoding/json for upstream's structs: an exact match
    first, else one that differs only in case; unknown keys are ignored;
    null is the same as absent; a wrong type is an error. Unlike Go's
    decoder, the body must be one JSON value with nothing but whitespace
    after it. Checks done here: types, no NUL in strings, retries within
    DBT_MAX_RETRIES, ttl and results_ttl whole seconds within DBT_MAX_TTL_MS, the
    eta's format; the task, args count, queue and db are checked by the
    dispatcher (dbt_submit).

    Pure functions: no state, safe from any thread. Every function that
    fails returns DBT_EINVAL with the reason in err (DBT_ERRMSG_LEN bytes),
    which is meant for the client (HTTP 400).
    =========================================================================
*/
#ifndef DBT_JOBREQ_H_INCLUDED
#define DBT_JOBREQ_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dbt_msg.h"

//  Where a request is routed: the task and queue of its (first) job.
//  Strings are owned by the struct (dbt_jobreq_route_free); NULL when
//  the request gave none.
typedef struct {
    char *task;                 //  task name
    char *queue;                //  queue field of the request, NULL = task's
    char *id;                   //  the job's id (given, or made here: job_<uuid>)
    bool named_here;            //  id was made here (no other request can have it)
} dbt_jobreq_route_t;

//  What a group request says besides its jobs. Strings owned by the
//  struct (dbt_jobreq_group_free).
typedef struct {
    char *id;                   //  group_id, a new uuid when absent, null or ""
    bool named_here;            //  id was made here
    int64_t concurrency;        //  jobs running at once, 0 = unlimited
    size_t njobs;               //  job maps appended
    dbt_jobreq_route_t first;   //  the first job's task and queue (NULL
                                //  task when the group has no jobs)
} dbt_jobreq_group_t;

//  Decode one job request body (JSON object) and append its job map to
//  jobs: {task, id, queue?, db?, args: [str|nil...], eta, ttl?,
//  results_ttl?, retries} with eta, ttl and results_ttl in ms. A job
//  without an id is given one (job_<uuid>), so that a client told the
//  outcome is unknown can be told which job to look for.
//  @param[in] body     the request body, len bytes, need not end in NUL
//  @param[in] task     the task name from the URL; it overrides the
//                      body's "task", as upstream does
//  @param[in,out] jobs the writer to append one map to; the caller opens
//                      and closes the array around it. Untouched on failure.
//  @param[out] route   the task and the body's queue, for routing (caller
//                      frees with dbt_jobreq_route_free); zeroed on failure.
//                      May be NULL.
//  @param[out] err     the reason on failure
//  @return 0, or DBT_EINVAL: an empty body ("request body is empty"), not
//          one JSON object ("error parsing request JSON", also for bytes
//          after it), or a field that is wrong.
int
    dbt_jobreq_job (const char *body, size_t len, const char *task, dbt_mpw_t *jobs,
                    dbt_jobreq_route_t *route, char *err);

//  Decode one group request body (JSON object) and append one job map
//  per member to jobs, as dbt_jobreq_job does (each member's own "task",
//  which must be a non-empty string).
//  @param[in] body     the request body, len bytes
//  @param[in,out] jobs the writer; the caller opens and closes the array
//                      around the maps. On failure it may hold the maps of
//                      the members before the bad one: discard it.
//  @param[out] group   the group's id, concurrency, member count and the
//                      first member's route (caller frees with
//                      dbt_jobreq_group_free); zeroed on failure
//  @param[out] err     the reason on failure
//  @return 0, or DBT_EINVAL: not one JSON object, empty body included
//          ("error parsing JSON body"), a wrong group field, or a member
//          that is wrong ("job N: ...", N counting from 1).
int
    dbt_jobreq_group (const char *body, size_t len, dbt_mpw_t *jobs,
                      dbt_jobreq_group_t *group, char *err);

//  Free a route's strings and zero it. Safe on a zeroed route.
void
    dbt_jobreq_route_free (dbt_jobreq_route_t *route);

//  Free a group's strings and zero it. Safe on a zeroed group.
void
    dbt_jobreq_group_free (dbt_jobreq_group_t *group);

//  Self test of this module.
void
    dbt_jobreq_test (bool verbose);

#endif
