/*  =========================================================================
    dbt_front - the client endpoint: the job API over ZeroMQ and msgpack

    A ROUTER bound at [mesh] client (default: bind's port + 2) on every
    node with an HTTP front. It speaks the client protocol (DBTC01,
    docs/protocol.md, "Client endpoint"): SUBMIT (a job or a group),
    STATUS, GROUP, CANCEL (and purge), PENDING, PING, TASKS, RESULTS (a
    page of rows) and WAIT (for a final state, with PROGRESS frames). It
    answers through the HTTP API's own code (dbt_api): reads from this
    node's view of the mesh, writes sent to the owning dispatcher, so it
    answers for any job in the mesh exactly as the HTTP front does, and
    its replies' data are the HTTP API's data (docs/api.md) as msgpack.

    One actor thread; requests are handled in turn (a write waits for its
    dispatcher, up to request_timeout), waits are checked every 100 ms.
    Pipe commands: "$TERM"; "ENDPOINT" replies with the bound endpoint,
    "" when it could not bind.
    =========================================================================
*/
#ifndef DBT_FRONT_H_INCLUDED
#define DBT_FRONT_H_INCLUDED

#include <czmq.h>
#include "dbt_config.h"
#include "dbt_api.h"
#include "dbt_view.h"

//  What the actor needs; borrowed and outlives the actor.
typedef struct {
    const dbt_config_t *config; //  the endpoint, limits, token
    dbt_api_t *api;             //  the HTTP API's request handling
    dbt_view_t *view;           //  job reads for WAIT
} dbt_front_args_t;

//  The actor (zactor_new (dbt_front_actor, &args)).
void
    dbt_front_actor (zsock_t *pipe, void *args);

//  Self test of this module.
void
    dbt_front_test (bool verbose);

#endif
