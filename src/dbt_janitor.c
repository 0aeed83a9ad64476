/*  =========================================================================
    dbt_janitor - drops expired results tables and forgets old job records

    See dbt_janitor.h. Each pass works in bounded batches so a backlog of
    a million expired jobs is worked off steadily instead of in one stall.
    =========================================================================
*/
#include "dbt_classes.h"

#define BATCH          100      //  tables or records per request
#define DROP_EVERY_MS  1000     //  drop-list pass
#define SCAN_EVERY_MS  5000     //  retention pass

typedef struct {
    dbt_janitor_args_t *args;   //  borrowed
    dbt_client_t *client;       //  to the dispatcher
} self_t;

//  --------------------------------------------------------------------------
//  Drop pass

typedef struct {
    uint64_t key;
    char *results;
    char *table;
} s_drop_t;

typedef struct {
    s_drop_t items [BATCH];
    size_t count;
} s_drops_t;

static int
s_collect_drop (uint64_t key, const char *results, const char *table, const char *job_id, void *arg)
{
    s_drops_t *drops = (s_drops_t *) arg;
    drops->items [drops->count].key = key;
    drops->items [drops->count].results = dbt_strdup (results);
    drops->items [drops->count].table = dbt_strdup (table);
    return ++drops->count == BATCH;
}

//  Send a request built in the client's writer; log a failure.
static bool
s_call (self_t *self, int command, const char *what)
{
    char err [DBT_ERRMSG_LEN];
    dbt_reply_t *reply = NULL;
    int rc = dbt_client_call (self->client, command, 10000, &reply, err);
    bool ok = rc == 0 && reply->code == 200;
    if (!ok)
        dbt_log (DBT_LOG_WARN, "janitor: %s: %s", what,
                 rc ? err : (reply->message ? reply->message : "refused"));
    dbt_reply_destroy (&reply);
    if (rc) {
        //  A fresh socket for the next request.
        char *endpoint = dbt_strdup (self->args->endpoint);
        dbt_client_destroy (&self->client);
        self->client = dbt_curve_client_new (self->args->config->curve, endpoint, err);
        free (endpoint);
    }
    return ok;
}

//  Drop what is on the drop list; returns the number dropped.
static size_t
s_drop_pass (self_t *self)
{
    char err [DBT_ERRMSG_LEN];
    s_drops_t drops = { .count = 0 };
    if (dbt_store_each_drop (self->args->store, s_collect_drop, &drops, err))
        dbt_log (DBT_LOG_ERROR, "janitor: %s", err);
    if (drops.count == 0 || !self->client)
        return 0;
    dbt_mpw_t *w = dbt_client_begin (self->client);
    dbt_mpw_str (w, "drops");
    dbt_mpw_array (w);
    size_t dropped = 0;
    for (size_t i = 0; i < drops.count; i++) {
        s_drop_t *drop = &drops.items [i];
        dbt_pool_t *pool = dbt_pools_results (self->args->pools, drop->results);
        bool gone = false;
        if (!pool) {
            dbt_log (DBT_LOG_WARN, "janitor: results backend '%s' of table '%s' is no longer "
                     "configured, forgetting the table", drop->results, drop->table);
            gone = true;
        }
        else {
            dbt_conn_t *conn = dbt_pool_get (pool, 5000, NULL, err);
            if (conn && dbt_conn_drop_table (conn, drop->table, err) == 0) {
                dbt_log (DBT_LOG_INFO, "janitor: dropped table '%s' on '%s'", drop->table, drop->results);
                gone = true;
            }
            else
                dbt_log (DBT_LOG_WARN, "janitor: cannot drop '%s' on '%s' (will retry): %s",
                         drop->table, drop->results, err);
            dbt_pool_put (pool, &conn);
        }
        if (gone) {
            dbt_mpw_map (w);
            dbt_mpw_ku64 (w, "key", drop->key);
            dbt_mpw_kstr (w, "results", drop->results);
            dbt_mpw_kstr (w, "table", drop->table);
            dbt_mpw_end (w);
            dropped++;
        }
        free (drop->results);
        free (drop->table);
    }
    dbt_mpw_end (w);
    if (dropped)
        s_call (self, DBT_C_DROPPED, "cannot report dropped tables");
    return dropped;
}

//  --------------------------------------------------------------------------
//  Retention pass

typedef struct {
    dbt_mpw_t *writer;
    size_t count;
} s_ids_t;

static int
s_collect_id (const dbt_job_t *job, void *arg)
{
    s_ids_t *ids = (s_ids_t *) arg;
    dbt_mpw_str (ids->writer, job->id);
    return ++ids->count == BATCH;
}

static void
s_retention_pass (self_t *self)
{
    char err [DBT_ERRMSG_LEN];
    if (!self->client)
        return;
    int64_t now = dbt_time_ms ();
    //  Results past their retention.
    dbt_mpw_t *w = dbt_client_begin (self->client);
    dbt_mpw_str (w, "ids");
    dbt_mpw_array (w);
    s_ids_t ids = { w, 0 };
    if (dbt_store_each_expiring (self->args->store, now, s_collect_id, &ids, err))
        dbt_log (DBT_LOG_ERROR, "janitor: %s", err);
    dbt_mpw_end (w);
    if (ids.count)
        s_call (self, DBT_C_EXPIRE, "cannot expire results");
    //  Finished records past state_ttl.
    if (self->args->config->state_ttl_ms <= 0)
        return;
    int64_t before = now - self->args->config->state_ttl_ms;
    w = dbt_client_begin (self->client);
    dbt_mpw_ki64 (w, "before", before);
    dbt_mpw_str (w, "ids");
    dbt_mpw_array (w);
    ids = (s_ids_t) { w, 0 };
    if (dbt_store_each_finished (self->args->store, before, s_collect_id, &ids, err))
        dbt_log (DBT_LOG_ERROR, "janitor: %s", err);
    dbt_mpw_end (w);
    if (ids.count)
        s_call (self, DBT_C_FORGET, "cannot forget old jobs");
}

//  --------------------------------------------------------------------------
//  The actor

void
dbt_janitor_actor (zsock_t *pipe, void *args)
{
    dbt_thread_name ("dbt-janitor");
    self_t self = { (dbt_janitor_args_t *) args, NULL };
    char err [DBT_ERRMSG_LEN];
    self.client = dbt_curve_client_new (self.args->config->curve, self.args->endpoint, err);
    if (!self.client)
        dbt_log (DBT_LOG_ERROR, "janitor: %s", err);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zsock_signal (pipe, 0);
    int64_t next_scan = 0;
    while (true) {
        bool run_now = false;
        if (zpoller_wait (poller, DROP_EVERY_MS) == pipe) {
            char *command = zstr_recv (pipe);
            run_now = command && streq (command, "RUN");
            free (command);
            if (!run_now)
                break;                  //  $TERM
        }
        else
        if (zpoller_terminated (poller))
            break;
        if (run_now || dbt_clock_ms () >= next_scan) {
            s_retention_pass (&self);
            next_scan = dbt_clock_ms () + SCAN_EVERY_MS;
        }
        //  Drop until the list is empty (or nothing more could be dropped).
        while (s_drop_pass (&self) == BATCH)
            ;
        if (run_now)
            zstr_send (pipe, "DONE");
    }
    zpoller_destroy (&poller);
    dbt_client_destroy (&self.client);
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: dispatcher, worker and janitor on SQLite.

static bool
s_table_exists (dbt_pools_t *pools, const char *table)
{
    char err [DBT_ERRMSG_LEN];
    dbt_pool_t *pool = dbt_pools_results (pools, "res");
    dbt_conn_t *conn = dbt_pool_get (pool, 1000, NULL, err);
    assert (conn);
    bool exists = dbt_conn_read_table (conn, table, 1, 0, err) == 0;
    dbt_conn_query_end (conn);
    dbt_pool_put (pool, &conn);
    return exists;
}

static void
s_run (zactor_t *janitor)
{
    zstr_send (janitor, "RUN");
    char *done = zstr_recv (janitor);
    assert (done && streq (done, "DONE"));
    free (done);
}

void
dbt_janitor_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    dbt_testing_rig_t *rig = dbt_testing_rig_new ("janitor", "state_ttl = 1s",
        "-- name: count\nSELECT COUNT(*) AS n FROM entries;\n", 1);
    dbt_store_t *store = rig->store;
    dbt_pools_t *pools = rig->pools;
    dbt_client_t *client = rig->client;
    dbt_janitor_args_t jargs = { rig->config, store, pools, rig->config->mesh_bind };
    zactor_t *janitor = zactor_new (dbt_janitor_actor, &jargs);
    assert (janitor);

    //  Results with a 1 ms retention are dropped; kept ones stay.
    assert (dbt_testing_submit (client, &(dbt_testing_job_t) {
        .task = "count", .id = "short", .results_ttl = 1 }) == 200);
    assert (dbt_testing_submit (client, &(dbt_testing_job_t) { .task = "count", .id = "keep" }) == 200);
    dbt_job_t *job = dbt_testing_wait (store, "short", DBT_STATE_SUCCESS, 5000);
    assert (job);
    dbt_job_destroy (&job);
    job = dbt_testing_wait (store, "keep", DBT_STATE_SUCCESS, 5000);
    assert (job);
    dbt_job_destroy (&job);
    assert (s_table_exists (pools, "results_short"));
    s_run (janitor);
    assert (!s_table_exists (pools, "results_short"));
    assert (s_table_exists (pools, "results_keep"));
    assert (dbt_store_job (store, "short", &job, err) == 0 && job->expired);
    dbt_job_destroy (&job);

    //  Purge drops the table of a finished job and forgets it.
    dbt_mpw_t *w = dbt_client_begin (client);
    dbt_mpw_kstr (w, "job_id", "keep");
    dbt_mpw_kbool (w, "purge", true);
    dbt_reply_t *reply = NULL;
    assert (dbt_client_call (client, DBT_C_CANCEL, 3000, &reply, err) == 0 && reply->code == 200);
    dbt_reply_destroy (&reply);
    s_run (janitor);
    assert (!s_table_exists (pools, "results_keep"));
    assert (dbt_store_job (store, "keep", &job, err) == DBT_ENOTFOUND);

    //  Records past state_ttl (1 s here) are forgotten.
    zclock_sleep (1100);
    s_run (janitor);
    assert (dbt_store_job (store, "short", &job, err) == DBT_ENOTFOUND);

    zactor_destroy (&janitor);
    dbt_testing_rig_destroy (&rig);
    if (verbose)
        printf ("janitor: ok\n");
}
#endif  //  DBT_SELFTEST
