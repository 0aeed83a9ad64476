/*  =========================================================================
    dbt_metrics - Prometheus text exposition of a node's counters

    See dbt_metrics.h. Metric and label names are fixed; label values are
    queue and database names, which config and requests restrict to
    [A-Za-z0-9_:-], so they need no escaping.
    =========================================================================
*/
#include "dbt_classes.h"

const double dbt_metrics_buckets [] = { 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600 };
const size_t dbt_metrics_nbuckets = sizeof (dbt_metrics_buckets) / sizeof (dbt_metrics_buckets [0]);

static uint64_t
s_u64 (const msgpack_object *map, const char *key)
{
    uint64_t value = 0;
    dbt_mp_u64 (dbt_mp_get (map, key), &value);
    return value;
}

static void
s_head (dbt_buf_t *out, const char *name, const char *type, const char *help)
{
    dbt_buf_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

//  One line per queue of a numeric field of the queue maps.
static void
s_per_queue (dbt_buf_t *out, const msgpack_object *queues, const char *metric,
             const char *label, const char *field)
{
    for (uint32_t i = 0; queues && i < queues->via.array.size; i++) {
        const msgpack_object *queue = &queues->via.array.ptr [i];
        const char *name;
        size_t len;
        if (dbt_mp_str (dbt_mp_get (queue, "name"), &name, &len))
            continue;
        dbt_buf_printf (out, "%s{queue=\"%.*s\"%s} %" PRIu64 "\n", metric, (int) len, name,
                        label ? label : "", s_u64 (queue, field));
    }
}

typedef struct {
    dbt_buf_t *out;
    bool taken;
} s_pool_arg_t;

static void
s_pool_line (const char *name, bool results, size_t open, size_t taken, void *arg)
{
    s_pool_arg_t *a = (s_pool_arg_t *) arg;
    dbt_buf_printf (a->out, "dungbeetle_db_connections{db=\"%s\",kind=\"%s\",state=\"%s\"} %zu\n",
                    name, results ? "results" : "source", a->taken ? "taken" : "open",
                    a->taken ? taken : open);
}

//  Unfinished jobs of a replica, by queue and state.
typedef struct {
    zhashx_t *counts;           //  "queue\tSTATE" -> count
} s_tally_t;

static int
s_tally_one (const dbt_job_t *job, void *arg)
{
    s_tally_t *tally = (s_tally_t *) arg;
    char *key = dbt_printf ("%s\t%s", job->queue, dbt_state_name (job->state));
    uintptr_t count = (uintptr_t) zhashx_lookup (tally->counts, key);
    zhashx_update (tally->counts, key, (void *) (count + 1));
    free (key);
    return 0;
}

static void
s_replica_jobs (const char *node, bool own, dbt_store_t *store, int64_t lag_ms, uint64_t seq,
                const dbt_view_delay_t *delay, void *arg)
{
    if (own)
        return;
    char err [DBT_ERRMSG_LEN];
    s_tally_t tally = { zhashx_new () };
    dbt_store_each_waiting (store, NULL, s_tally_one, &tally, err);
    dbt_store_each_running (store, s_tally_one, &tally, err);
    zlist_t *keys = zlist_new ();
    for (void *item = zhashx_first (tally.counts); item; item = zhashx_next (tally.counts))
        zlist_append (keys, (void *) zhashx_cursor (tally.counts));
    zlist_sort (keys, (zlist_compare_fn *) strcmp);
    for (char *key = (char *) zlist_first (keys); key; key = (char *) zlist_next (keys)) {
        const char *tab = strchr (key, '\t');
        dbt_buf_printf ((dbt_buf_t *) arg, "dungbeetle_jobs{queue=\"%.*s\",state=\"%s\"} %" PRIuPTR "\n",
                        (int) (tab - key), key, tab + 1, (uintptr_t) zhashx_lookup (tally.counts, key));
    }
    zlist_destroy (&keys);
    zhashx_destroy (&tally.counts);
}

static void
s_replica_lines (const char *node, bool own, dbt_store_t *store, int64_t lag_ms, uint64_t seq,
                 const dbt_view_delay_t *delay, void *arg)
{
    dbt_buf_t *out = (dbt_buf_t *) arg;
    if (own)
        return;
    dbt_buf_printf (out, "dungbeetle_replica_lag_seconds{node=\"%s\"} %.3f\n", node,
                    lag_ms < 0 ? -1.0 : (double) lag_ms / 1000.0);
    dbt_buf_printf (out, "dungbeetle_replica_seq{node=\"%s\"} %" PRIu64 "\n", node, seq);
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= DBT_VIEW_DELAY_BUCKETS; b++) {
        cumulative += delay->buckets [b];
        if (b < DBT_VIEW_DELAY_BUCKETS)
            dbt_buf_printf (out, "dungbeetle_replica_delay_seconds_bucket{node=\"%s\",le=\"%g\"} %"
                            PRIu64 "\n", node, dbt_view_delay_bounds [b], cumulative);
        else
            dbt_buf_printf (out, "dungbeetle_replica_delay_seconds_bucket{node=\"%s\",le=\"+Inf\"} %"
                            PRIu64 "\n", node, cumulative);
    }
    dbt_buf_printf (out, "dungbeetle_replica_delay_seconds_sum{node=\"%s\"} %.6f\n", node, delay->sum);
    dbt_buf_printf (out, "dungbeetle_replica_delay_seconds_count{node=\"%s\"} %" PRIu64 "\n", node,
                    delay->count);
}

void
dbt_metrics_render (const msgpack_object *stats, dbt_store_t *store, dbt_view_t *view,
                    dbt_pools_t *pools, dbt_buf_t *out)
{
    s_head (out, "dungbeetle_up", "gauge",
            "1 when this node's dispatcher answered this scrape (or it has none).");
    dbt_buf_printf (out, "dungbeetle_up %d\n", stats || !store ? 1 : 0);
    s_head (out, "dungbeetle_jobs", "gauge",
            "Unfinished jobs by queue and state (other dispatchers' from their replicas here).");
    if (view)
        dbt_view_each_source (view, s_replica_jobs, out);
    if (view) {
        s_head (out, "dungbeetle_replica_lag_seconds", "gauge",
                "How stale each replica may be: seconds since it was last known current (-1 never).");
        s_head (out, "dungbeetle_replica_seq", "gauge", "Last update applied to each replica.");
        s_head (out, "dungbeetle_replica_delay_seconds", "histogram",
                "From a dispatcher's commit to the update applied here (both hosts' clocks).");
        dbt_view_each_source (view, s_replica_lines, out);
    }
    if (stats) {
        const msgpack_object *queues = dbt_mp_get (stats, "queues");
        if (queues && queues->type != MSGPACK_OBJECT_ARRAY)
            queues = NULL;
        s_per_queue (out, queues, "dungbeetle_jobs", ",state=\"PENDING\"", "PENDING");
        s_per_queue (out, queues, "dungbeetle_jobs", ",state=\"RETRY\"", "RETRY");
        s_per_queue (out, queues, "dungbeetle_jobs", ",state=\"STARTED\"", "STARTED");
        s_head (out, "dungbeetle_queue_depth", "gauge", "Jobs ready to start now, by queue.");
        s_per_queue (out, queues, "dungbeetle_queue_depth", NULL, "ready");
        s_head (out, "dungbeetle_jobs_finished_total", "counter",
                "Attempts that ended, by queue and resulting state, since the dispatcher started.");
        s_per_queue (out, queues, "dungbeetle_jobs_finished_total", ",state=\"SUCCESS\"", "succeeded");
        s_per_queue (out, queues, "dungbeetle_jobs_finished_total", ",state=\"FAILURE\"", "failed");
        s_per_queue (out, queues, "dungbeetle_jobs_finished_total", ",state=\"RETRY\"", "retried");
        s_head (out, "dungbeetle_rows_written_total", "counter", "Result rows written by successful jobs.");
        s_per_queue (out, queues, "dungbeetle_rows_written_total", NULL, "rows");
        s_head (out, "dungbeetle_job_duration_seconds", "histogram", "Run time of job attempts.");
        for (uint32_t i = 0; queues && i < queues->via.array.size; i++) {
            const msgpack_object *queue = &queues->via.array.ptr [i];
            const msgpack_object *buckets = dbt_mp_get (queue, "buckets");
            const char *name;
            size_t len;
            if (dbt_mp_str (dbt_mp_get (queue, "name"), &name, &len)
            ||  !buckets || buckets->type != MSGPACK_OBJECT_ARRAY
            ||  buckets->via.array.size != dbt_metrics_nbuckets + 1)
                continue;
            uint64_t cumulative = 0;
            for (size_t b = 0; b <= dbt_metrics_nbuckets; b++) {
                uint64_t count = 0;
                dbt_mp_u64 (&buckets->via.array.ptr [b], &count);
                cumulative += count;
                if (b < dbt_metrics_nbuckets)
                    dbt_buf_printf (out, "dungbeetle_job_duration_seconds_bucket{queue=\"%.*s\",le=\"%g\"} %"
                                    PRIu64 "\n", (int) len, name, dbt_metrics_buckets [b], cumulative);
                else
                    dbt_buf_printf (out, "dungbeetle_job_duration_seconds_bucket{queue=\"%.*s\",le=\"+Inf\"} %"
                                    PRIu64 "\n", (int) len, name, cumulative);
            }
            dbt_buf_printf (out, "dungbeetle_job_duration_seconds_sum{queue=\"%.*s\"} %.3f\n", (int) len, name,
                            (double) s_u64 (queue, "millis") / 1000.0);
            dbt_buf_printf (out, "dungbeetle_job_duration_seconds_count{queue=\"%.*s\"} %" PRIu64 "\n",
                            (int) len, name, s_u64 (queue, "count"));
        }
        static const struct { const char *field, *metric, *help; } totals [] = {
            { "submitted", "dungbeetle_jobs_submitted_total", "Jobs accepted." },
            { "started", "dungbeetle_jobs_started_total", "Attempts handed to workers." },
            { "lost", "dungbeetle_jobs_lost_total", "Attempts lost with a worker or a dispatcher restart." },
            { "cancelled", "dungbeetle_jobs_cancelled_total", "Jobs cancelled by DELETE." },
            { "commits", "dungbeetle_state_commits_total", "State store write transactions committed." },
            { "ack_commits", "dungbeetle_state_ack_commits_total",
              "Commits that acknowledged at least one client request (group commit)." },
            { "acks", "dungbeetle_state_commit_acks_total",
              "Client requests acknowledged after a commit; per ack commit: requests per fsync." },
            { "refused_full", "dungbeetle_jobs_refused_full_total",
              "Jobs refused with 507 because the state store was full." },
            { "malformed", "dungbeetle_mesh_malformed_total",
              "Mesh messages dropped as malformed (or from a peer that may not send them)." },
        };
        for (size_t i = 0; i < sizeof (totals) / sizeof (totals [0]); i++) {
            s_head (out, totals [i].metric, "counter", totals [i].help);
            dbt_buf_printf (out, "%s %" PRIu64 "\n", totals [i].metric, s_u64 (stats, totals [i].field));
        }
        s_head (out, "dungbeetle_workers", "gauge", "Workers connected to the dispatcher.");
        dbt_buf_printf (out, "dungbeetle_workers %" PRIu64 "\n", s_u64 (stats, "workers"));
        uint64_t slots = s_u64 (stats, "slots"), busy = s_u64 (stats, "busy");
        s_head (out, "dungbeetle_worker_slots", "gauge", "Worker runner slots, busy and idle.");
        dbt_buf_printf (out, "dungbeetle_worker_slots{state=\"busy\"} %" PRIu64 "\n", busy);
        dbt_buf_printf (out, "dungbeetle_worker_slots{state=\"idle\"} %" PRIu64 "\n",
                        slots > busy ? slots - busy : 0);
        s_head (out, "dungbeetle_results_drops_pending", "gauge", "Results tables waiting to be dropped.");
        dbt_buf_printf (out, "dungbeetle_results_drops_pending %" PRIu64 "\n", s_u64 (stats, "drops_pending"));
        const msgpack_object *pair = dbt_mp_get (stats, "pair");
        if (pair && pair->type == MSGPACK_OBJECT_MAP) {
            const char *role = "";
            size_t len = 0;
            dbt_mp_str (dbt_mp_get (pair, "role"), &role, &len);
            bool active = len == 6 && memcmp (role, "active", 6) == 0;
            bool up = false, alone = false;
            dbt_mp_bool (dbt_mp_get (pair, "partner_up"), &up);
            dbt_mp_bool (dbt_mp_get (pair, "alone"), &alone);
            s_head (out, "dungbeetle_failovers_total", "counter",
                    "Times this node's dispatcher took over from its failover partner since it started.");
            dbt_buf_printf (out, "dungbeetle_failovers_total %" PRIu64 "\n", s_u64 (pair, "failovers"));
            s_head (out, "dungbeetle_pair_active", "gauge",
                    "1 while this node's dispatcher is its failover pair's active member.");
            dbt_buf_printf (out, "dungbeetle_pair_active %d\n", active ? 1 : 0);
            s_head (out, "dungbeetle_pair_partner_up", "gauge",
                    "1 while the failover partner's heartbeats arrive.");
            dbt_buf_printf (out, "dungbeetle_pair_partner_up %d\n", up ? 1 : 0);
            s_head (out, "dungbeetle_pair_alone", "gauge",
                    "1 while an active member acknowledges without its partner's confirmation.");
            dbt_buf_printf (out, "dungbeetle_pair_alone %d\n", alone ? 1 : 0);
            s_head (out, "dungbeetle_pair_epoch", "gauge", "Takeovers in the pair's history.");
            dbt_buf_printf (out, "dungbeetle_pair_epoch %" PRIu64 "\n", s_u64 (pair, "epoch"));
        }
    }
    dbt_store_space_t space;
    char err [DBT_ERRMSG_LEN];
    if (store && dbt_store_space (store, &space, err) == 0) {
        s_head (out, "dungbeetle_state_store_usage_ratio", "gauge",
                "Fraction of the largest LMDB map (state_map_max) in use.");
        dbt_buf_printf (out, "dungbeetle_state_store_usage_ratio %.6f\n",
                        (double) space.used_bytes / (double) space.max_bytes);
        s_head (out, "dungbeetle_state_store_bytes", "gauge",
                "State store sizes: used, map (current), max (limit), reserve (kept for expiry and purges), "
                "disk_free (free space of its file system).");
        dbt_buf_printf (out, "dungbeetle_state_store_bytes{kind=\"used\"} %" PRId64 "\n", space.used_bytes);
        dbt_buf_printf (out, "dungbeetle_state_store_bytes{kind=\"map\"} %" PRId64 "\n", space.map_bytes);
        dbt_buf_printf (out, "dungbeetle_state_store_bytes{kind=\"max\"} %" PRId64 "\n", space.max_bytes);
        dbt_buf_printf (out, "dungbeetle_state_store_bytes{kind=\"reserve\"} %" PRId64 "\n", space.reserve_bytes);
        if (space.disk_free_bytes >= 0)
            dbt_buf_printf (out, "dungbeetle_state_store_bytes{kind=\"disk_free\"} %" PRId64 "\n",
                            space.disk_free_bytes);
        s_head (out, "dungbeetle_state_store_full", "gauge",
                "1 while the state store is full and new jobs are refused with 507.");
        dbt_buf_printf (out, "dungbeetle_state_store_full %d\n", space.full ? 1 : 0);
    }
    if (pools) {
        s_head (out, "dungbeetle_db_connections", "gauge", "Database connections of this node's pools.");
        s_pool_arg_t arg = { out, false };
        dbt_pools_counts (pools, s_pool_line, &arg);
        arg.taken = true;
        dbt_pools_counts (pools, s_pool_line, &arg);
    }
}

#ifdef DBT_SELFTEST
void
dbt_metrics_test (bool verbose)
{
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_ku64 (w, "submitted", 7);
    dbt_mpw_ku64 (w, "slots", 4);
    dbt_mpw_ku64 (w, "busy", 1);
    dbt_mpw_str (w, "queues");
    dbt_mpw_array (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "name", "q1");
    dbt_mpw_ku64 (w, "PENDING", 2);
    dbt_mpw_ku64 (w, "ready", 1);
    dbt_mpw_ku64 (w, "succeeded", 3);
    dbt_mpw_ku64 (w, "count", 3);
    dbt_mpw_ku64 (w, "millis", 1500);
    dbt_mpw_str (w, "buckets");
    dbt_mpw_array (w);
    for (size_t i = 0; i <= dbt_metrics_nbuckets; i++)
        dbt_mpw_u64 (w, i == 0 ? 1 : i == 3 ? 2 : 0);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    char err [DBT_ERRMSG_LEN];
    dbt_mpr_t *doc = dbt_mpr_new (data, len, err);
    dbt_buf_t out = { 0 };
    dbt_metrics_render (dbt_mpr_root (doc), NULL, NULL, NULL, &out);
    assert (strstr (out.data, "dungbeetle_up 1\n"));
    assert (strstr (out.data, "dungbeetle_jobs{queue=\"q1\",state=\"PENDING\"} 2\n"));
    assert (strstr (out.data, "dungbeetle_jobs_finished_total{queue=\"q1\",state=\"SUCCESS\"} 3\n"));
    assert (strstr (out.data, "dungbeetle_job_duration_seconds_bucket{queue=\"q1\",le=\"0.1\"} 1\n"));
    assert (strstr (out.data, "dungbeetle_job_duration_seconds_bucket{queue=\"q1\",le=\"5\"} 3\n"));
    assert (strstr (out.data, "dungbeetle_job_duration_seconds_bucket{queue=\"q1\",le=\"+Inf\"} 3\n"));
    assert (strstr (out.data, "dungbeetle_job_duration_seconds_sum{queue=\"q1\"} 1.500\n"));
    assert (strstr (out.data, "dungbeetle_worker_slots{state=\"idle\"} 3\n"));
    assert (strstr (out.data, "dungbeetle_jobs_submitted_total 7\n"));
    dbt_buf_reset (&out);
    //  A node without a dispatcher has nothing to be down.
    dbt_metrics_render (NULL, NULL, NULL, NULL, &out);
    assert (strstr (out.data, "# TYPE dungbeetle_up gauge\ndungbeetle_up 1\n"));
    assert (!strstr (out.data, "dungbeetle_jobs{"));
    dbt_buf_free (&out);
    dbt_mpr_destroy (&doc);
    dbt_mpw_destroy (&w);
    if (verbose)
        printf ("metrics: ok\n");
}
#endif  //  DBT_SELFTEST
