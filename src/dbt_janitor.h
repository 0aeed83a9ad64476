/*  =========================================================================
    dbt_janitor - drops expired results tables and forgets old job records

    An actor on each node that runs a dispatcher. Every second it drops the
    results tables on the node's durable drop list (purged jobs, expired
    results) through the results pools, in batches of at most 100, and
    tells the dispatcher which ones are gone. Every few seconds it finds
    results past their retention (results_ttl, or the job's own) and
    finished job records past state_ttl, and asks the dispatcher, the only
    writer of job state, to expire or forget them. It reads LMDB directly
    and never blocks the dispatcher on a database. Pipe: "$TERM" stops it;
    "RUN" runs one pass at once and replies "DONE" (for tests).
    =========================================================================
*/
#ifndef DBT_JANITOR_H_INCLUDED
#define DBT_JANITOR_H_INCLUDED

#include "dbt_config.h"
#include "dbt_store.h"
#include "dbt_pool.h"

//  What the actor needs; borrowed and outlives the actor.
typedef struct {
    const dbt_config_t *config; //  retention settings
    dbt_store_t *store;         //  read side
    dbt_pools_t *pools;         //  results connections
    const char *endpoint;       //  this node's dispatcher
} dbt_janitor_args_t;

//  The actor; signals 0 when ready.
void
    dbt_janitor_actor (zsock_t *pipe, void *args);

//  Self test of this module.
void
    dbt_janitor_test (bool verbose);

#endif
