/*  =========================================================================
    dbt_node - one dungbeetle node: every actor, wired from the config

    Loads the task files, prepares every non-raw task on each of its
    databases (reporting file, task, database and the database's message on
    failure), opens the state store, and starts the actors this node runs:
    the dispatcher and the HTTP front (unless worker-only) and a worker per
    queue served. Destroying the node stops them in order: HTTP first (no
    new requests), then workers (running jobs finish up to the shutdown
    limit, or are handed back), then the dispatcher (last commit), then the
    store and pools.
    =========================================================================
*/
#ifndef DBT_NODE_H_INCLUDED
#define DBT_NODE_H_INCLUDED

#include "dbt_config.h"

typedef struct _dbt_node_t dbt_node_t;

//  Start a node. config is borrowed and must outlive the node. Returns
//  NULL with err set when anything cannot start.
dbt_node_t *
    dbt_node_new (const dbt_config_t *config, char *err);

//  Stop and destroy; nulls the pointer. With drain, running jobs get up to
//  config->shutdown_timeout_ms to finish first.
void
    dbt_node_destroy (dbt_node_t **self_p, bool drain);

//  Port the HTTP front listens on (0 for worker-only nodes).
int
    dbt_node_http_port (dbt_node_t *self);

//  Self test of this module.
void
    dbt_node_test (bool verbose);

#endif
