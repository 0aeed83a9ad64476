/*  =========================================================================
    dbt_routes - which dispatcher serves each queue, across the mesh

    Answers "where do jobs of queue Q go?" for the HTTP front, the workers
    and the replica, from three sources in this order: this node's config
    ([queue.NAME] dispatcher, and the queues its own dispatcher owns), what
    the peers announce (each dispatcher names the queues it owns and
    whether it is the default one), and the default dispatcher ([mesh]
    dispatcher, else a peer announcing itself the default, else this
    node's own dispatcher). The peers are [mesh] peers plus every other
    dispatcher endpoint the config names ([mesh] dispatcher, [queue.NAME]
    dispatcher). The replica actor keeps their entries current: it pings
    them and reports who answered. This node's own dispatcher is reached
    over its inproc endpoint.

    Thread-safe: one mutex guards the table; every answer is a copy.
    =========================================================================
*/
#ifndef DBT_ROUTES_H_INCLUDED
#define DBT_ROUTES_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "dbt_config.h"
#include "dbt_msg.h"
#include "dbt_pair.h"

typedef struct _dbt_routes_t dbt_routes_t;

//  What is known of one peer dispatcher (for /health), copied out.
typedef struct {
    const char *endpoint;       //  its mesh endpoint (as in [mesh] peers)
    const char *node;           //  its node name, NULL until it answered
    const char *instance;       //  id of its current run, NULL until it answered
    const char *publish;        //  its state updates endpoint, NULL until it answered
    bool up;                    //  it answered the last ping
    bool self;                  //  it is this node (listed among its own peers)
    int64_t last_seen;          //  wall ms of its last answer, 0 = never
    int64_t since;              //  wall ms of its last change between up and down
    dbt_pair_state_t role;      //  its failover role as last heard, 0 = not in a pair
    const char *partner;        //  its failover partner's endpoint, NULL = none
} dbt_peer_t;

//  Create the table for config (borrowed, outlives the table).
dbt_routes_t *
    dbt_routes_new (const dbt_config_t *config);

//  Destroy; nulls the pointer.
void
    dbt_routes_destroy (dbt_routes_t **self_p);

//  This node's own dispatcher: the inproc endpoint its actors use and the
//  id of its run (to recognise itself among the peers).
void
    dbt_routes_set_own (dbt_routes_t *self, const char *local, const char *instance);

//  The endpoint this node connects to for queue's dispatcher (the inproc
//  one for its own), or NULL when no dispatcher is known for it yet.
//  Caller frees.
char *
    dbt_routes_dispatcher (dbt_routes_t *self, const char *queue);

//  True when this node's own dispatcher is queue's, as far as the mesh
//  says (its config, then what peers claim, then the default).
bool
    dbt_routes_owns (dbt_routes_t *self, const char *queue);

//  The mesh endpoint and node name of queue's dispatcher as the mesh
//  knows it, for messages ("node 'b' (tcp://...)"); NULL when unknown.
//  Caller frees the string.
char *
    dbt_routes_describe (dbt_routes_t *self, const char *queue);

//  Every dispatcher known, as endpoints to connect to (own first, then
//  the peers that answered), e.g. to find a job nobody here knows of.
//  Caller destroys the list (its strings with it).
zlist_t *
    dbt_routes_dispatchers (dbt_routes_t *self);

//  A peer answered a PING: reply is the PING reply's data map. Returns
//  true when the peer is this node itself.
bool
    dbt_routes_peer_up (dbt_routes_t *self, const char *endpoint, const msgpack_object *reply);

//  A peer did not answer.
void
    dbt_routes_peer_down (dbt_routes_t *self, const char *endpoint);

//  Failover pairs (dbt_pair.h). The own dispatcher's role, as it changes
//  (a passive one sends this node's requests to its partner).
void
    dbt_routes_set_own_role (dbt_routes_t *self, dbt_pair_state_t role);

//  The failover partner of the dispatcher at endpoint (as this node
//  connects to it, inproc for its own), as this node connects to it;
//  NULL when it is not in a pair or its partner is unknown. Caller frees.
char *
    dbt_routes_partner (dbt_routes_t *self, const char *endpoint);

//  The dispatcher at endpoint answered as the active member of its pair:
//  route its queues there (and not to its partner) until told otherwise.
void
    dbt_routes_note_active (dbt_routes_t *self, const char *endpoint);

//  Call fn for each peer, in config order. The peer is valid during the
//  call only.
typedef void (dbt_routes_peer_fn) (const dbt_peer_t *peer, void *arg);
void
    dbt_routes_each_peer (dbt_routes_t *self, dbt_routes_peer_fn *fn, void *arg);

//  Write what a PING reply announces about this node's dispatcher (its
//  queues and whether it is the default) into writer, as map entries.
void
    dbt_routes_announce (const dbt_config_t *config, dbt_mpw_t *writer);

//  Self test of this module.
void
    dbt_routes_test (bool verbose);

#endif
