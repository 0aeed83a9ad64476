/*  =========================================================================
    dbt_dispatcher - the job dispatcher actor of a node

    One ROUTER socket (ZMQ_ROUTER_MANDATORY, ZMQ_ROUTER_HANDOVER) that
    clients and workers connect to with DEALER sockets, serving every queue
    this node dispatches. It is the single writer of those queues' records
    in LMDB: each loop turn reads all waiting messages, applies them in one
    write transaction, commits once (group commit), and only then sends
    acknowledgements and job frames. It keeps ready jobs in order and
    enforces eta, retries with backoff, group concurrency and job-id
    exclusivity; it hands jobs to workers that announced free capacity,
    watches their heartbeats and re-runs the jobs of a worker that died.
    Protocol: docs/protocol.md.

    Pipe commands: "$TERM" stops the actor; "ENDPOINT" replies with the
    endpoint actually bound (useful with port 0); "LOCAL" with the inproc
    endpoint the same socket also binds for this node's own actors (the
    janitor's commands, which delete state, are only taken from there);
    "INSTANCE" with the id of this run (replicas start over when it changes).
    Counters for /metrics are a client request (STATS), like everything
    else.
    =========================================================================
*/
#ifndef DBT_DISPATCHER_H_INCLUDED
#define DBT_DISPATCHER_H_INCLUDED

#include "dbt_config.h"
#include "dbt_tasks.h"
#include "dbt_store.h"
#include "dbt_routes.h"
#include "dbt_view.h"

//  What the actor needs; everything is borrowed and outlives the actor.
typedef struct {
    const dbt_config_t *config; //  node configuration
    dbt_tasks_t *tasks;         //  task registry (read-only)
    dbt_store_t *store;         //  state store (the actor is its writer)
    dbt_routes_t *routes;       //  mesh routes, for messages naming owners (may be NULL)
    dbt_view_t *view;           //  other dispatchers' records, for id checks (may be NULL)
} dbt_dispatcher_args_t;

//  The actor; start with zactor_new (dbt_dispatcher_actor, &args). It
//  signals 0 when bound and ready, or 1 when it cannot start (the reason
//  is logged).
void
    dbt_dispatcher_actor (zsock_t *pipe, void *args);

//  Self test of this module (in dbt_dispatcher_test.c).
void
    dbt_dispatcher_test (bool verbose);

#endif
