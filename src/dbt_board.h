/*  =========================================================================
    dbt_board - the web dashboard: its static files and the JSON it reads

    Serves the dashboard's files (src/ui/, embedded in the binary at build
    time by tools/embed_assets.sh) at GET /ui/ and /ui/<file>, without the
    bearer token (they hold no data), and the routes the dashboard reads
    that the job API lacks, documented in docs/api.md with the rest:
    GET /queues (every queue of every dispatcher this node knows: jobs by
    state, failures in the last hour, workers and free slots per node,
    replica lag), GET /queues/{q}/jobs (one page of a queue's jobs in one
    state, paged with a cursor on the store's list index) and GET
    /jobs/{id}/detail (every field of a job and a typed preview of its
    first result rows). Reads come from the view (LMDB read transactions)
    and, for worker figures, the dispatchers' STATS replies. Thread-safe:
    the HTTP front calls it from its connection threads.
    =========================================================================
*/
#ifndef DBT_BOARD_H_INCLUDED
#define DBT_BOARD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "dbt_api.h"

typedef struct _dbt_board_t dbt_board_t;

//  What the dashboard needs; everything borrowed and outlives it.
typedef struct {
    const dbt_config_t *config; //  node configuration
    dbt_view_t *view;           //  reads across the mesh
    dbt_routes_t *routes;       //  peers and their dispatchers
    dbt_pools_t *pools;         //  results read-back connections (may be NULL)
    const char *local;          //  this node's dispatcher (inproc endpoint), or NULL
} dbt_board_args_t;

//  One embedded file (the table ends with a NULL name). Generated into
//  dbt_board_assets.c by tools/embed_assets.sh.
typedef struct {
    const char *name;           //  file name under /ui/, "index.html"
    const char *content_type;   //  its media type
    const unsigned char *data;  //  its bytes
    size_t len;                 //  how many
} dbt_board_asset_t;
extern const dbt_board_asset_t dbt_board_assets [];

//  Create the dashboard.
dbt_board_t *
    dbt_board_new (const dbt_board_args_t *args);

//  Destroy; nulls the pointer.
void
    dbt_board_destroy (dbt_board_t **self_p);

//  True for paths served without the bearer token (/ui and below).
bool
    dbt_board_public (const char *path);

//  Answer a request when path is one of the dashboard's (its files, its
//  routes); NULL when it is not, for dbt_api to answer. path is decoded,
//  without the query string. Caller destroys the response.
dbt_response_t *
    dbt_board_handle (dbt_board_t *self, const char *method, const char *path,
                      dbt_query_fn *query, void *query_arg);

//  Self test of this module.
void
    dbt_board_test (bool verbose);

#endif
