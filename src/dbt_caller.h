/*  =========================================================================
    dbt_caller - the HTTP API's requests to dispatchers

    Sends one request to the dispatcher of an endpoint and waits for its
    reply, from any thread. This node's own dispatcher is asked through a
    dbt_mux while calls to it are under way or frequent (one socket and thread
    for every caller: the dispatcher wakes one thread per commit, not one
    per request); a call to an idle dispatcher, and calls to other dispatchers, go
    through a pool of dbt_clients, one per request at a time, which spares
    a lone request the mux thread's two wake-ups. A
    member of a failover pair is followed to its active member: a passive
    member's refusal sends the request to its partner; a member that has
    not answered within two heartbeats (or the sync timeout and one) makes
    the request go to its partner too, with a vote, while the first
    member's reply is still awaited. The first answer that is not a
    refusal wins.
    =========================================================================
*/
#ifndef DBT_CALLER_H_INCLUDED
#define DBT_CALLER_H_INCLUDED

#include "dbt_client.h"
#include "dbt_routes.h"

typedef struct _dbt_caller_t dbt_caller_t;

//  Fills a request body (the map opened, the rid written) with its fields.
typedef void (dbt_caller_build_fn) (dbt_mpw_t *writer, void *arg);

//  Create. config and routes are borrowed and outlive it; local is this
//  node's dispatcher endpoint, or NULL (copied).
dbt_caller_t *
    dbt_caller_new (const dbt_config_t *config, dbt_routes_t *routes, const char *local);

//  Destroy; nulls the pointer. No call may be under way.
void
    dbt_caller_destroy (dbt_caller_t **self_p);

//  Send command with the body build writes to the dispatcher at endpoint
//  (or its pair's active member) and wait up to timeout_ms for the reply.
//  Returns as dbt_client_call. *again (may be NULL) is set when the
//  request went out more than once: a 409 may then be the request's own
//  earlier copy, kept.
int
    dbt_caller_call (dbt_caller_t *self, const char *endpoint, int command,
                     dbt_caller_build_fn *build, void *arg, int64_t timeout_ms,
                     dbt_reply_t **reply_p, bool *again, char *err);

//  True when this node has a dispatcher of its own that is no failover
//  pair's member: it can be sent requests without waiting.
bool
    dbt_caller_local_direct (dbt_caller_t *self);

//  Send command with the body build writes to this node's dispatcher
//  without waiting: done is called once, on another thread, as
//  dbt_mux_send says. Returns 0; DBT_EINVAL when dbt_caller_local_direct
//  is false; or as dbt_mux_send (then done is not called), with err set.
int
    dbt_caller_send_local (dbt_caller_t *self, int command, dbt_caller_build_fn *build,
                           void *arg, int64_t timeout_ms, dbt_mux_done_fn *done,
                           void *done_arg, char *err);

#endif
