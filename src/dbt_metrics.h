/*  =========================================================================
    dbt_metrics - Prometheus text exposition of a node's counters

    Renders the dispatcher's STATS reply (jobs by queue and state, finished
    counters, duration histograms, rows written, worker slots), the
    unfinished jobs and freshness of the replicas of other dispatchers,
    the state store's usage and the connection pools' counts in the
    Prometheus text format (version 0.0.4). Safe from any thread.
    =========================================================================
*/
#ifndef DBT_METRICS_H_INCLUDED
#define DBT_METRICS_H_INCLUDED

#include "dbt_msg.h"
#include "dbt_pool.h"
#include "dbt_store.h"
#include "dbt_view.h"

//  Upper bounds (seconds) of the job duration histogram buckets; the
//  dispatcher counts into these and +Inf.
extern const double dbt_metrics_buckets [];
extern const size_t dbt_metrics_nbuckets;

//  Render everything into out. stats is the data map of this node's
//  dispatcher's STATS reply (NULL when it did not answer or there is
//  none); store is that dispatcher's store (NULL: none); view gives the
//  replicas (their unfinished jobs and freshness); any may be NULL.
void
    dbt_metrics_render (const msgpack_object *stats, dbt_store_t *store, dbt_view_t *view,
                        dbt_pools_t *pools, dbt_buf_t *out);

//  Self test of this module.
void
    dbt_metrics_test (bool verbose);

#endif
