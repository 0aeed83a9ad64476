/*  =========================================================================
    dbt_replica - the replica actor: other dispatchers' state, kept here

    For every peer dispatcher (dbt_routes' peers) this actor keeps a
    replica store that follows the peer's job and group records, in the
    manner of Clone (rfc.zeromq.org spec 12):

    - it pings the peer (DEALER to its mesh endpoint) to learn its node
      name, run id, queues and publish endpoint, and reports the answers
      to the routes; a peer that does not answer is retried with backoff
      (1 s doubling to 30 s) and reported down;
    - it subscribes (SUB) to the peer's updates first; once the
      subscription is live (the first message, a HUGZ the peer sends to
      every new subscriber), it fetches a snapshot a page at a time into a
      new store while buffering updates, applies the buffered updates
      newer than the snapshot's first page, and swaps the new store into
      the view, so readers see the old replica or the new one whole;
    - from then on it applies updates as they arrive, one write
      transaction per peer and loop turn;
    - a gap in the sequence, a new run (instance) of the peer, or a failed
      snapshot starts a new snapshot.

    Replica stores live under data_dir/replica/ and are rebuilt at every
    start. Pipe commands: "$TERM".
    =========================================================================
*/
#ifndef DBT_REPLICA_H_INCLUDED
#define DBT_REPLICA_H_INCLUDED

#include "dbt_config.h"
#include "dbt_routes.h"
#include "dbt_view.h"

//  What the actor needs; everything borrowed and outlives the actor.
typedef struct {
    const dbt_config_t *config; //  node configuration
    dbt_routes_t *routes;       //  the peers, and where their answers go
    dbt_view_t *view;           //  where the replicas are read
} dbt_replica_args_t;

//  The actor; start with zactor_new (dbt_replica_actor, &args).
void
    dbt_replica_actor (zsock_t *pipe, void *args);

//  Self test of this module.
void
    dbt_replica_test (bool verbose);

#endif
