/*  =========================================================================
    dbt_view - job and group reads across the mesh, on any node

    Answers reads from the sources this node has: its own dispatcher's
    store (always current) and one replica per other dispatcher, kept by
    the replica actor (as fresh as its subscription; each answer says how
    stale it may be). A job is looked for in every source; job ids are
    unique per dispatcher, so when two dispatchers hold one id (which the
    mesh cannot prevent for queues of different dispatchers), the most
    recently created record wins.

    Read-your-writes: the HTTP front records what a remote dispatcher's
    acknowledgement returned (dbt_view_wrote). Until that dispatcher's
    replica here has applied the update that carries the change, the
    recorded version is what reads return.

    Threads: every function is safe from any thread. Replica stores
    belong to the view once attached; a store is only closed after a swap
    or at destroy, while no reader uses it (a reader/writer lock).
    =========================================================================
*/
#ifndef DBT_VIEW_H_INCLUDED
#define DBT_VIEW_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "dbt_util.h"
#include "dbt_store.h"

typedef struct _dbt_view_t dbt_view_t;

//  Where an answer came from and how fresh it is.
typedef struct {
    char node [DBT_ID_MAX + 1]; //  the dispatcher's node name
    bool own;                   //  this node's own dispatcher
    int64_t lag_ms;             //  0 when answered by the own store, else ms
                                //  since the replica was last known to be
                                //  current (-1: never synchronised yet)
} dbt_origin_t;

//  Create a view over own (may be NULL: no dispatcher here; borrowed)
//  of node own_node.
dbt_view_t *
    dbt_view_new (dbt_store_t *own, const char *own_node);

//  Destroy, closing the replica stores; nulls the pointer.
void
    dbt_view_destroy (dbt_view_t **self_p);

//  Replica side: make store (taken) the replica of node's records,
//  returning the store it replaces (caller destroys it) or NULL. A NULL
//  store removes node's replica. The own store is never replaced: store
//  itself comes back.
dbt_store_t *
    dbt_view_swap (dbt_view_t *self, const char *node, dbt_store_t *store);

//  The node whose records the own store holds: this node's, or (a
//  passive failover member) its active partner's, for dbt_origin_t.
void
    dbt_view_set_own_node (dbt_view_t *self, const char *node);

//  Replica side: node's replica has applied every update up to seq and
//  was known to be current at monotonic ms current_at.
void
    dbt_view_progress (dbt_view_t *self, const char *node, uint64_t seq, int64_t current_at);

//  Read a job from any source. Returns 0 with *job_p (caller destroys)
//  and *origin, DBT_ENOTFOUND, or DBT_ERROR with err.
int
    dbt_view_job (dbt_view_t *self, const char *id, dbt_job_t **job_p, dbt_origin_t *origin,
                  char *err);

//  Read a job from node's source only (a group's members). As dbt_view_job.
int
    dbt_view_job_at (dbt_view_t *self, const char *node, const char *id, dbt_job_t **job_p,
                     char *err);

//  Read a group from any source, as dbt_view_job.
int
    dbt_view_group (dbt_view_t *self, const char *id, dbt_group_t **group_p, dbt_origin_t *origin,
                    char *err);

//  Call fn for each waiting job of queue in every source (each source in
//  submission order). Returns 0 or DBT_ERROR with err.
int
    dbt_view_each_waiting (dbt_view_t *self, const char *queue, dbt_store_each_fn *fn, void *arg,
                           char *err);

//  How long updates took from a dispatcher's commit to this replica
//  (wall clocks of both hosts): a histogram over dbt_view_delay_bounds.
#define DBT_VIEW_DELAY_BUCKETS 17
extern const double dbt_view_delay_bounds [DBT_VIEW_DELAY_BUCKETS];  //  seconds
typedef struct {
    uint64_t buckets [DBT_VIEW_DELAY_BUCKETS + 1];  //  last = +Inf
    uint64_t count;             //  updates measured
    double sum;                 //  seconds
} dbt_view_delay_t;

//  Replica side: an update committed delay_ms ago has been applied.
void
    dbt_view_delay (dbt_view_t *self, const char *node, int64_t delay_ms);

//  Each source: its node, whether it is the own one, its store (valid
//  during the call), its lag (as in dbt_origin_t), applied sequence and
//  update delays.
typedef void (dbt_view_source_fn) (const char *node, bool own, dbt_store_t *store,
                                   int64_t lag_ms, uint64_t seq, const dbt_view_delay_t *delay,
                                   void *arg);
void
    dbt_view_each_source (dbt_view_t *self, dbt_view_source_fn *fn, void *arg);

//  Read-your-writes: node's dispatcher acknowledged job (a copy is kept)
//  as of update seq; job NULL records that id was purged.
void
    dbt_view_wrote (dbt_view_t *self, const char *node, uint64_t seq, const char *id,
                    const dbt_job_t *job);

//  Self test of this module.
void
    dbt_view_test (bool verbose);

#endif
