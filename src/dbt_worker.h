/*  =========================================================================
    dbt_worker - the worker actor: runs jobs of some queues

    One worker actor serves a set of queues for one dispatcher with a fixed
    number of runner threads (its capacity). It connects a DEALER to the
    dispatcher's ROUTER with a stable routing id, announces its queues and
    free capacity (READY), receives job frames, hands each to an idle
    runner thread, forwards progress and outcomes, enforces each job's
    run-time limit, and passes cancel requests to the running query. It
    heartbeats the dispatcher and, when the dispatcher goes silent or
    restarts, reconnects with a new socket and re-announces the jobs it is
    still running. Without a fixed endpoint it asks the mesh's routes where
    its queue's dispatcher is at every (re)connect, and waits while nobody
    knows yet. Runner threads are czmq actors owned by the worker.

    Pipe commands: "$TERM" cancels running jobs and stops; "DRAIN" stops
    taking jobs and replies "DRAINED" once no job runs.
    =========================================================================
*/
#ifndef DBT_WORKER_H_INCLUDED
#define DBT_WORKER_H_INCLUDED

#include "dbt_runner.h"
#include "dbt_routes.h"

//  What the actor needs; everything borrowed and outlives the actor.
typedef struct {
    dbt_runner_ctx_t runner;    //  config, tasks, pools
    const char *endpoint;       //  dispatcher endpoint, or NULL: ask routes
    dbt_routes_t *routes;       //  where the first queue's dispatcher is (when no endpoint)
    const char *const *queues;  //  queue names served
    size_t nqueues;             //  number of queues
    int capacity;               //  runner threads
} dbt_worker_args_t;

//  The actor; start with zactor_new (dbt_worker_actor, &args). Signals 0
//  when its runners are up.
void
    dbt_worker_actor (zsock_t *pipe, void *args);

//  Self test of this module.
void
    dbt_worker_test (bool verbose);

#endif
