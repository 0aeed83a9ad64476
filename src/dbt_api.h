/*  =========================================================================
    dbt_api - the HTTP API's routes, JSON in and JSON out

    Maps a request (method, path, query, body) to a response, independent
    of the HTTP library: reads (job and group status, pending jobs, tasks)
    come straight from LMDB read transactions and the task registry;
    writes (submit, cancel) go to the queue's dispatcher over ZeroMQ and are
    answered once it has committed them. JSON shapes, field names, states
    and the envelope {"status":"success","data":...} /
    {"status":"error","message":...,"data":null} follow the Go original
    (docs/api.md, docs/compatibility.md). Thread-safe: the HTTP front calls
    it from many connection threads; dispatcher clients are pooled.
    =========================================================================
*/
#ifndef DBT_API_H_INCLUDED
#define DBT_API_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "dbt_config.h"
#include "dbt_tasks.h"
#include "dbt_store.h"
#include "dbt_pool.h"
#include "dbt_routes.h"
#include "dbt_view.h"
#include "dbt_jobreq.h"

typedef struct _dbt_api_t dbt_api_t;

//  What the API needs; everything borrowed and outlives it.
typedef struct {
    const dbt_config_t *config; //  node configuration
    dbt_tasks_t *tasks;         //  task registry
    dbt_store_t *store;         //  this node's dispatcher store, or NULL (for /health)
    dbt_pools_t *pools;         //  results read-back connections (may be NULL)
    dbt_routes_t *routes;       //  where each queue's dispatcher is
    dbt_view_t *view;           //  reads across the mesh
    const char *local;          //  this node's dispatcher (inproc endpoint), or NULL
} dbt_api_args_t;

//  A response. Either body/len, or a streamed body produced by reader.
typedef struct {
    int status;                 //  HTTP status
    const char *content_type;   //  static string
    char *body;                 //  owned body, or NULL when streamed
    size_t len;                 //  body length
    //  Streamed body: fill up to max bytes at buf; return the count,
    //  0 at the end, or -1 on error (the connection is closed).
    ssize_t (*reader) (void *cls, char *buf, size_t max);
    void *reader_cls;           //  reader state
    void (*reader_free) (void *cls);  //  frees reader_cls
    char *allow;                //  Allow header (405), owned, or NULL
} dbt_response_t;

//  Looks up a query-string argument; NULL when absent.
typedef const char *(dbt_query_fn) (void *arg, const char *key);

//  Create the API.
dbt_api_t *
    dbt_api_new (const dbt_api_args_t *args);

//  Destroy; nulls the pointer.
void
    dbt_api_destroy (dbt_api_t **self_p);

//  Handle one request. path is the decoded path without the query
//  string. Returns a response (caller destroys).
dbt_response_t *
    dbt_api_handle (dbt_api_t *self, const char *method, const char *path,
                    dbt_query_fn *query, void *query_arg, const char *body, size_t len);

//  Submit jobs (an array of job maps written by dbt_request_job) to the
//  dispatcher of route's queue (a group's: group->first), as POST
//  /tasks/{task}/jobs (group NULL) or POST /groups do after decoding
//  their bodies; the other front ends call it with the same maps. route
//  is NULL for a group. Returns the response (caller destroys).
dbt_response_t *
    dbt_api_submit (dbt_api_t *self, dbt_mpw_t *jobs, const dbt_jobreq_route_t *route,
                    const dbt_jobreq_group_t *group);

//  An error response in the envelope (for the HTTP front's own errors).
dbt_response_t *
    dbt_api_error (int status, const char *message);

//  Destroy a response; nulls the pointer.
void
    dbt_response_destroy (dbt_response_t **self_p);

//  Self test of this module.
void
    dbt_api_test (bool verbose);

//  A job's status document (upstream's JobStatusResp plus our fields), as
//  GET /jobs/{id} answers it. Caller owns it.
json_t *
    dbt_api_job_status (const dbt_job_t *job);

//  A JSON string of bytes that may not be UTF-8 (cells, errors): kept when
//  they are, else with every byte outside ASCII replaced by '?'. Caller owns it.
json_t *
    dbt_api_text (const char *data, size_t len);
//  A one-job submission prepared to go to this node's own dispatcher
//  without waiting (the HTTP front's epoll mode).
typedef struct _dbt_api_job_t dbt_api_job_t;

//  Called once with the answer (the callee owns it), on another thread.
typedef void (dbt_api_done_fn) (void *arg, dbt_response_t *response);

//  When method and path are POST /tasks/{task}/jobs with a valid body for
//  a known task whose queue is this node's own dispatcher, and that
//  dispatcher is no failover pair's member: the prepared submission
//  (nothing is sent yet). Otherwise NULL: dbt_api_handle answers it.
dbt_api_job_t *
    dbt_api_submit_prepare (dbt_api_t *self, const char *method, const char *path,
                            const char *body, size_t len);

//  Send a prepared submission; *job_p is consumed. done is called once
//  with the answer dbt_api_handle would give: on the thread that hands
//  out the dispatcher's replies, or on this one before this returns when
//  the request could not be sent.
void
    dbt_api_submit_start (dbt_api_job_t **job_p, dbt_api_done_fn *done, void *arg);

//  Destroy a prepared submission that is not sent; nulls the pointer.
void
    dbt_api_job_destroy (dbt_api_job_t **self_p);

#endif
