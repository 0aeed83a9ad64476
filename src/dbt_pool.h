/*  =========================================================================
    dbt_pool - connection pools per configured database

    A pool per [db.NAME] and [results.NAME] section, honouring max_active
    (a caller waits for a free slot) and max_idle (idle connections kept).
    A connection taken from a pool belongs to the taker until it is put
    back; broken ones are closed on return so the next taker reconnects.
    dbt_pools_t holds every pool of a node. Pools are shared by worker
    threads and the HTTP front; all functions are thread-safe.
    =========================================================================
*/
#ifndef DBT_POOL_H_INCLUDED
#define DBT_POOL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "dbt_driver.h"
#include "dbt_config.h"

typedef struct _dbt_pool_t dbt_pool_t;
typedef struct _dbt_pools_t dbt_pools_t;

//  Create a pool for conf (borrowed; must outlive the pool).
dbt_pool_t *
    dbt_pool_new (const dbt_dbconf_t *conf);

//  Destroy, closing idle connections; nulls the pointer. Every taken
//  connection must have been put back.
void
    dbt_pool_destroy (dbt_pool_t **self_p);

//  Take a connection: an idle one, else a new one when under max_active,
//  else wait up to timeout_ms for one to come back. Waiting stops early
//  when *stop becomes true (stop may be NULL). Returns NULL with err set.
dbt_conn_t *
    dbt_pool_get (dbt_pool_t *self, int64_t timeout_ms, volatile bool *stop, char *err);

//  Give a connection back; nulls the pointer. Broken connections, and
//  idle ones over max_idle, are closed.
void
    dbt_pool_put (dbt_pool_t *self, dbt_conn_t **conn_p);

//  Section name of the pool. Borrowed.
const char *
    dbt_pool_name (dbt_pool_t *self);

//  Connections now open (taken + idle) and taken.
void
    dbt_pool_counts (dbt_pool_t *self, size_t *open, size_t *taken);

//  Create a pool for every db and results section of config (borrowed).
dbt_pools_t *
    dbt_pools_new (const dbt_config_t *config);

//  Destroy every pool; nulls the pointer.
void
    dbt_pools_destroy (dbt_pools_t **self_p);

//  Pool of a source db or of a results backend by section name; NULL
//  when unknown.
dbt_pool_t *
    dbt_pools_source (dbt_pools_t *self, const char *name);
dbt_pool_t *
    dbt_pools_results (dbt_pools_t *self, const char *name);

//  Called with each pool's counts.
typedef void (dbt_pools_count_fn) (const char *name, bool results, size_t open, size_t taken,
                                   void *arg);

//  Report the counts of every pool (sources first, then results).
void
    dbt_pools_counts (dbt_pools_t *self, dbt_pools_count_fn *fn, void *arg);

//  Self test of this module.
void
    dbt_pool_test (bool verbose);

#endif
