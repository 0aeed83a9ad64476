/*  =========================================================================
    dbt_follow - follows one dispatcher's records (the Clone client)

    Subscribes (SUB) to a dispatcher's state updates; at the first message,
    which proves the subscription works, asks SNAPSHOT pages (DEALER to the
    dispatcher's ROUTER) into a store its owner gives it, buffering the
    updates that arrive meanwhile; applies the buffered updates newer than
    the first page, then every update in sequence, one transaction per
    call of dbt_follow_handle. A gap in the sequence, a new run of the
    dispatcher, a failed page or a silent subscription starts a new
    snapshot. docs/protocol.md, "State replication", says why this is
    exact.

    Where the records go is the owner's business, through callbacks: the
    replica actor gives a fresh replica store for each snapshot and swaps
    it into the view when it is live; a passive dispatcher gives its own
    (emptied) store. Not an actor: the owner adds the follower's sockets to
    its poll set and calls dbt_follow_handle every turn, in one thread.
    =========================================================================
*/
#ifndef DBT_FOLLOW_H_INCLUDED
#define DBT_FOLLOW_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include "dbt_store.h"

typedef struct _dbt_follow_t dbt_follow_t;

//  The owner's side.
typedef struct {
    //  A snapshot starts: return an empty store to fill, or NULL (the
    //  follower tries again at the next message).
    dbt_store_t *(*fresh) (void *arg, char *err);
    //  The snapshot in store (from fresh) is complete at update seq.
    //  Return the store later updates go to: store itself, another one
    //  the owner copied it into (store is then dropped), or NULL to stop
    //  following (store is dropped).
    dbt_store_t *(*live) (void *arg, dbt_store_t *store, uint64_t seq);
    //  A store from fresh that is no longer used (a snapshot given up, or
    //  a live store replaced by a new snapshot's).
    void (*drop) (void *arg, dbt_store_t *store);
    //  Updates up to seq are committed; delay_ms is the age of the last
    //  one (wall clocks of both hosts), -1 when only a heartbeat came.
    void (*applied) (void *arg, uint64_t seq, int64_t delay_ms);
} dbt_follow_fns_t;

//  Create a follower named name (for logs) with the mesh's heartbeat
//  period. fns and arg are borrowed and outlive it.
dbt_follow_t *
    dbt_follow_new (const char *name, int64_t heartbeat_ms, const dbt_follow_fns_t *fns, void *arg);

//  Destroy; nulls the pointer. Stores given by fresh are dropped except
//  the live one, which stays the owner's.
void
    dbt_follow_destroy (dbt_follow_t **self_p);

//  Follow the dispatcher whose ROUTER is endpoint and whose PUB is
//  publish, in its run instance. A new publish endpoint or instance
//  subscribes again and takes a new snapshot; the same target changes
//  nothing.
void
    dbt_follow_target (dbt_follow_t *self, const char *endpoint, const char *publish,
                       const char *instance);

//  Secure the sockets it opens from now on (dbt_curve_apply; NULL = none).
//  curve is borrowed and must outlive the follower.
void
    dbt_follow_set_curve (dbt_follow_t *self, const dbt_curve_t *curve);

//  Stop following: close the sockets, give up a snapshot in progress.
//  The live store (if any) stays as it is, the owner's.
void
    dbt_follow_stop (dbt_follow_t *self);

//  Add the follower's sockets (at most 2) to items for polling; returns
//  how many were added.
size_t
    dbt_follow_items (dbt_follow_t *self, zmq_pollitem_t *items);

//  Handle what arrived, commit, run timers. Call every loop turn.
void
    dbt_follow_handle (dbt_follow_t *self);

//  True once a snapshot is complete and updates are being applied.
bool
    dbt_follow_live (dbt_follow_t *self);

//  The last update applied.
uint64_t
    dbt_follow_seq (dbt_follow_t *self);

//  What the dispatcher's messages said: its node name and the lineage of
//  its records (NULL until heard). Borrowed until the next handle.
const char *
    dbt_follow_node (dbt_follow_t *self);
const char *
    dbt_follow_lineage (dbt_follow_t *self);

//  Monotonic ms of the last message from the dispatcher (0 = none yet).
int64_t
    dbt_follow_heard (dbt_follow_t *self);

//  Fields of the dispatcher's last message: a map (borrowed until the next
//  handle), NULL when none yet. Owners read what the follower does not
//  (e.g. a failover partner's role).
const msgpack_object *
    dbt_follow_last (dbt_follow_t *self);

//  The module is tested through its owners (dbt_replica's self test,
//  the failover tests).
#endif
