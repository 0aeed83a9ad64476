/*  =========================================================================
    dbt_dispatcher - the job dispatcher actor of a node

    See dbt_dispatcher.h. One loop turn: wait for input or the next timer,
    drain the ROUTER, promote due jobs, expire silent workers, hand ready
    jobs to workers with free capacity, then commit the turn's write
    transaction once and only after that send what the turn produced
    (acknowledgements, job frames). If the commit fails nothing that
    depended on it is sent: clients get an error, job frames are dropped,
    and the in-memory schedule is rebuilt from LMDB.
    =========================================================================
*/
#include "dbt_classes.h"

#define MAX_MSGS_PER_TURN   1024    //  bound a turn's latency
#define MAX_JOBS_PER_SUBMIT 10000   //  jobs in one group

//  A worker connected to us (or, after a restart, one we still expect).
typedef struct {
    char *key;                  //  routing id as text
    zframe_t *identity;         //  routing id frame
    char *name;                 //  node name the worker reported
    zlist_t *queues;            //  queue names it serves (owned strings)
    uint32_t capacity;          //  jobs it runs at once
    zhashx_t *inflight;         //  job id -> monotonic ms it was given (or claimed)
    int64_t expires;            //  monotonic ms of presumed death
    int64_t next_heartbeat;     //  monotonic ms of our next heartbeat
    bool connected;             //  false for a placeholder after restart
} s_worker_t;

//  What a turn will send once its transaction is committed.
typedef enum {
    OUT_PLAIN,                  //  send whatever happens
    OUT_ACK,                    //  acknowledgement of a committed change
    OUT_JOB                     //  job frame to a worker
} s_out_kind_t;

typedef struct {
    s_out_kind_t kind;          //  what it is
    zmsg_t *msg;                //  the message, identity first
    zframe_t *identity;         //  OUT_ACK: client to tell on failure
    uint64_t rid;               //  OUT_ACK: request id
    char *worker;               //  OUT_JOB: worker key
    char *job_id;               //  OUT_JOB: job id
} s_out_t;

typedef struct {
    zsock_t *pipe;              //  actor pipe
    zsock_t *router;            //  clients and workers
    zpoller_t *poller;          //  pipe + router
    const dbt_config_t *config; //  borrowed
    dbt_tasks_t *tasks;         //  borrowed
    dbt_store_t *store;         //  borrowed
    dbt_queue_t *queue;         //  schedule of unfinished jobs
    zhashx_t *workers;          //  key -> s_worker_t
    dbt_wtxn_t *txn;            //  this turn's transaction, if any
    zlistx_t *outbox;           //  s_out_t for after the commit
    dbt_mpw_t *writer;          //  scratch encoder
    char instance [37];         //  this run's id, sent in heartbeats
    char *endpoint;             //  endpoint bound
    uint64_t rng;               //  xorshift state
    uint64_t stats [8];         //  counters (see s_stat_names)
    zhashx_t *qstats;           //  queue -> s_qstats_t (since start)
    zhashx_t *dropping;         //  "results/table" -> drop count pending
    bool terminated;            //  $TERM received
} self_t;

//  Job duration histogram: dbt_metrics_buckets bounds, and +Inf.
#define NBUCKETS 10

//  Counters of one queue since the dispatcher started.
typedef struct {
    uint64_t finished [5];      //  jobs reaching SUCCESS, FAILURE, RETRY (by state)
    uint64_t rows;              //  rows written by successful jobs
    uint64_t buckets [NBUCKETS + 1];  //  durations (last = +Inf)
    double seconds;             //  sum of durations
    uint64_t count;             //  durations observed
} s_qstats_t;

enum { ST_SUBMITTED, ST_STARTED, ST_SUCCEEDED, ST_FAILED, ST_RETRIED,
       ST_LOST, ST_CANCELLED, ST_COMMITS };
static const char *s_stat_names [] = { "submitted", "started", "succeeded", "failed",
    "retried", "lost", "cancelled", "commits" };

//  --------------------------------------------------------------------------
//  Small helpers

static uint64_t
s_random (self_t *self)
{
    uint64_t x = self->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->rng = x;
    return x;
}

static int64_t
s_liveness_ms (self_t *self)
{
    return self->config->heartbeat_ms * self->config->heartbeat_liveness;
}

static void
s_worker_free (void **item_p)
{
    s_worker_t *worker = (s_worker_t *) *item_p;
    if (!worker)
        return;
    free (worker->key);
    zframe_destroy (&worker->identity);
    free (worker->name);
    zlist_destroy (&worker->queues);
    zhashx_destroy (&worker->inflight);
    free (worker);
    *item_p = NULL;
}

static s_worker_t *
s_worker_new (const char *key)
{
    s_worker_t *worker = (s_worker_t *) dbt_malloc (sizeof (s_worker_t));
    worker->key = dbt_strdup (key);
    worker->identity = zframe_new (key, strlen (key));
    worker->queues = zlist_new ();
    zlist_autofree (worker->queues);
    worker->inflight = zhashx_new ();
    return worker;
}

static void
s_out_free (void **item_p)
{
    s_out_t *out = (s_out_t *) *item_p;
    if (!out)
        return;
    zmsg_destroy (&out->msg);
    zframe_destroy (&out->identity);
    free (out->worker);
    free (out->job_id);
    free (out);
    *item_p = NULL;
}

//  The turn's write transaction, begun on first use. NULL on failure.
static dbt_wtxn_t *
s_txn (self_t *self, char *err)
{
    if (!self->txn)
        self->txn = dbt_store_begin (self->store, err);
    return self->txn;
}

//  Queue a message for after the commit.
static s_out_t *
s_out (self_t *self, s_out_kind_t kind, zmsg_t *msg)
{
    s_out_t *out = (s_out_t *) dbt_malloc (sizeof (s_out_t));
    out->kind = kind;
    out->msg = msg;
    zlistx_add_end (self->outbox, out);
    return out;
}

//  Start a reply body in self->writer: {rid, code, message, data: ...}.
//  The caller writes the data value (or nil) then calls s_reply_end.
static void
s_reply_begin (self_t *self, uint64_t rid, int code, const char *message)
{
    dbt_mpw_reset (self->writer);
    dbt_mpw_map (self->writer);
    dbt_mpw_ku64 (self->writer, "rid", rid);
    dbt_mpw_ku64 (self->writer, "code", (uint64_t) code);
    if (message)
        dbt_mpw_kstr (self->writer, "message", message);
    dbt_mpw_str (self->writer, "data");
}

static void
s_reply_end (self_t *self, zframe_t *identity, uint64_t rid, bool ack)
{
    dbt_mpw_end (self->writer);
    zmsg_t *msg = dbt_msg_encode (identity, DBT_PROTO_CLIENT, DBT_C_REPLY, self->writer);
    s_out_t *out = s_out (self, ack ? OUT_ACK : OUT_PLAIN, msg);
    if (ack) {
        out->identity = zframe_dup (identity);
        out->rid = rid;
    }
}

//  Reply with an error (sent whatever the commit does).
static void
s_reply_error (self_t *self, zframe_t *identity, uint64_t rid, int code, const char *message)
{
    s_reply_begin (self, rid, code, message);
    dbt_mpw_nil (self->writer);
    s_reply_end (self, identity, rid, false);
}

//  Send a worker command now (not through the outbox).
static void
s_send_worker (self_t *self, s_worker_t *worker, int command, dbt_mpw_t *body)
{
    if (dbt_msg_send (self->router, worker->identity, DBT_PROTO_WORKER, command, body)) {
        dbt_log (DBT_LOG_DEBUG, "dispatcher: cannot reach worker '%s': %s",
                 worker->key, zmq_strerror (errno));
        if (errno == EHOSTUNREACH)
            worker->expires = 0;        //  expire it on this turn
    }
}

//  Tell a worker to stop one job.
static void
s_send_cancel (self_t *self, s_worker_t *worker, const char *job_id, uint32_t attempt,
               const char *reason)
{
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", job_id);
    dbt_mpw_ku64 (w, "attempt", attempt);
    dbt_mpw_kstr (w, "reason", reason);
    dbt_mpw_end (w);
    s_send_worker (self, worker, DBT_W_CANCEL, w);
    dbt_mpw_destroy (&w);
}

//  Retry delay after `failures` failed attempts: exponential with equal
//  jitter, capped.
static int64_t
s_backoff (self_t *self, uint32_t failures)
{
    int64_t delay = self->config->retry_base_ms;
    for (uint32_t i = 1; i < failures && delay < self->config->retry_max_ms; i++)
        delay *= 2;
    if (delay > self->config->retry_max_ms)
        delay = self->config->retry_max_ms;
    if (delay <= 1)
        return delay;
    int64_t half = delay / 2;
    return half + (int64_t) (s_random (self) % (uint64_t) (delay - half + 1));
}

//  Count an attempt's end for /metrics.
static void
s_observe (self_t *self, const dbt_job_t *job, int64_t now)
{
    s_qstats_t *stats = (s_qstats_t *) zhashx_lookup (self->qstats, job->queue);
    if (!stats) {
        stats = (s_qstats_t *) dbt_malloc (sizeof (s_qstats_t));
        zhashx_insert (self->qstats, job->queue, stats);
    }
    stats->finished [job->state]++;
    if (job->state == DBT_STATE_SUCCESS)
        stats->rows += job->rows;
    double seconds = job->started_ms ? (double) (now - job->started_ms) / 1000.0 : 0;
    size_t bucket = 0;
    assert (dbt_metrics_nbuckets == NBUCKETS);
    while (bucket < NBUCKETS && seconds > dbt_metrics_buckets [bucket])
        bucket++;
    stats->buckets [bucket]++;
    stats->seconds += seconds;
    stats->count++;
}

//  Record that a results table must go; jobs writing to it wait until the
//  janitor reports it dropped.
static int
s_add_drop (self_t *self, dbt_wtxn_t *txn, const dbt_job_t *job, char *err)
{
    if (!job->results || !job->table)
        return 0;
    if (dbt_wtxn_add_drop (txn, job->results, job->table, job->id, NULL, err))
        return -1;
    char *key = dbt_printf ("%s/%s", job->results, job->table);
    uintptr_t pending = (uintptr_t) zhashx_lookup (self->dropping, key);
    zhashx_update (self->dropping, key, (void *) (pending + 1));
    free (key);
    return 0;
}

//  A job must not start while its table has a drop pending.
static bool
s_hold (const dbt_entry_t *entry, void *arg)
{
    self_t *self = (self_t *) arg;
    return zhashx_size (self->dropping) && zhashx_lookup (self->dropping, entry->table_key);
}

//  --------------------------------------------------------------------------
//  Rebuild the schedule from LMDB (at start, and after a failed commit).

typedef struct {
    self_t *self;
    int64_t hold;
    size_t count;
} s_load_t;

static void
s_apply_group_limit (self_t *self, const char *group_id)
{
    dbt_group_t *group = NULL;
    char err [DBT_ERRMSG_LEN];
    if (dbt_store_group (self->store, group_id, &group, err) == 0) {
        dbt_queue_set_group_limit (self->queue, group_id, group->concurrency);
        dbt_group_destroy (&group);
    }
}

static int
s_load_one (const dbt_job_t *job, void *arg)
{
    s_load_t *load = (s_load_t *) arg;
    self_t *self = load->self;
    dbt_queue_put (self->queue, job, 0);
    if (job->group_id)
        s_apply_group_limit (self, job->group_id);
    if (job->state == DBT_STATE_STARTED && job->worker) {
        //  Expect its worker back for a while before re-running the job.
        s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, job->worker);
        if (!worker) {
            worker = s_worker_new (job->worker);
            worker->expires = dbt_clock_ms () + load->hold;
            zhashx_insert (self->workers, job->worker, worker);
        }
        zhashx_update (worker->inflight, job->id, (void *) (uintptr_t) dbt_clock_ms ());
    }
    load->count++;
    return 0;
}

static int
s_load_drop (uint64_t key, const char *results, const char *table, const char *job_id, void *arg)
{
    self_t *self = (self_t *) arg;
    char *name = dbt_printf ("%s/%s", results, table);
    uintptr_t pending = (uintptr_t) zhashx_lookup (self->dropping, name);
    zhashx_update (self->dropping, name, (void *) (pending + 1));
    free (name);
    return 0;
}

static int
s_rebuild (self_t *self)
{
    char err [DBT_ERRMSG_LEN];
    dbt_queue_clear (self->queue);
    zhashx_purge (self->dropping);
    dbt_store_each_drop (self->store, s_load_drop, self, err);
    for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker;
         worker = (s_worker_t *) zhashx_next (self->workers))
        zhashx_purge (worker->inflight);
    s_load_t load = { self, s_liveness_ms (self), 0 };
    if (dbt_store_each_waiting (self->store, NULL, s_load_one, &load, err)
    ||  dbt_store_each_running (self->store, s_load_one, &load, err)) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot load state: %s", err);
        return -1;
    }
    return (int) load.count;
}

//  --------------------------------------------------------------------------
//  Client: SUBMIT

static void
s_handle_submit (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    int code = 0;
    const msgpack_object *jobs = dbt_mp_get (msg->map, "jobs");
    const msgpack_object *group_spec = dbt_mp_get (msg->map, "group");
    bool is_group = group_spec && group_spec->type != MSGPACK_OBJECT_NIL;
    size_t count = jobs && jobs->type == MSGPACK_OBJECT_ARRAY ? jobs->via.array.size : 0;
    if (!jobs || jobs->type != MSGPACK_OBJECT_ARRAY || (count == 0 && !is_group)) {
        s_reply_error (self, msg->identity, rid, 400, "jobs must be a non-empty array");
        return;
    }
    if (count > MAX_JOBS_PER_SUBMIT) {
        s_reply_error (self, msg->identity, rid, 413, "too many jobs in one request");
        return;
    }
    dbt_group_t *group = NULL;
    if (is_group)
        code = dbt_submit_group (group_spec, &group, err);
    dbt_job_t **subs = (dbt_job_t **) dbt_malloc ((count ? count : 1) * sizeof (dbt_job_t *));
    for (size_t i = 0; i < count && !code; i++) {
        code = dbt_submit_job (self->config, self->tasks, &jobs->via.array.ptr [i],
                               s_random (self), &subs [i], err);
        if (code && count > 1) {
            char inner [DBT_ERRMSG_LEN];
            snprintf (inner, sizeof (inner), "%s", err);
            dbt_err_set (err, "job %zu: %s", i + 1, inner);
        }
    }
    //  Duplicates within the request, then against stored records.
    for (size_t i = 0; i < count && !code; i++)
        for (size_t j = i + 1; j < count && !code; j++)
            if (streq (subs [i]->id, subs [j]->id)) {
                dbt_err_set (err, "job id '%s' appears twice in the request", subs [i]->id);
                code = 400;
            }
    dbt_wtxn_t *txn = NULL;
    if (!code) {
        txn = s_txn (self, err);
        if (!txn)
            code = 503;
    }
    for (size_t i = 0; i < count && !code; i++) {
        dbt_job_t *old = NULL;
        int rc = dbt_wtxn_job (txn, subs [i]->id, &old, err);
        if (rc == 0 && !dbt_state_final (old->state)) {
            dbt_err_set (err, "job '%s' is already %s", subs [i]->id,
                         old->state == DBT_STATE_STARTED ? "running" : "queued");
            code = 409;
        }
        else
        if (rc != 0 && rc != DBT_ENOTFOUND)
            code = 503;
        dbt_job_destroy (&old);
    }
    if (!code && group) {
        dbt_group_t *old = NULL;
        int rc = dbt_wtxn_group (txn, group->id, &old, err);
        if (rc == 0) {
            for (size_t i = 0; i < old->njobs && !code; i++) {
                dbt_job_t *member = NULL;
                if (dbt_wtxn_job (txn, old->job_ids [i], &member, err) == 0
                &&  !dbt_state_final (member->state)) {
                    dbt_err_set (err, "group '%s' still has unfinished jobs", group->id);
                    code = 409;
                }
                dbt_job_destroy (&member);
            }
        }
        else
        if (rc != DBT_ENOTFOUND)
            code = 503;
        dbt_group_destroy (&old);
    }
    //  Everything checked: write all or, on a store error, fail the turn.
    int64_t now = dbt_time_ms ();
    for (size_t i = 0; i < count && !code; i++) {
        dbt_job_t *job = subs [i];
        job->seq = dbt_wtxn_next_seq (txn);
        job->created_ms = now;
        job->state = DBT_STATE_PENDING;
        if (group) {
            dbt_job_set (&job->group_id, group->id);
            dbt_group_add (group, job->id);
        }
        if (dbt_wtxn_put_job (txn, job, err))
            code = 503;
    }
    if (!code && group) {
        group->created_ms = now;
        if (dbt_wtxn_put_group (txn, group, err))
            code = 503;
    }
    if (code) {
        s_reply_error (self, msg->identity, rid, code, err);
        if (code == 503)
            dbt_log (DBT_LOG_ERROR, "dispatcher: submit failed: %s", err);
    }
    else {
        for (size_t i = 0; i < count; i++)
            dbt_queue_put (self->queue, subs [i], 0);
        if (group)
            dbt_queue_set_group_limit (self->queue, group->id, group->concurrency);
        self->stats [ST_SUBMITTED] += count;
        s_reply_begin (self, rid, 200, NULL);
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "group_id", group ? group->id : NULL);
        dbt_mpw_str (self->writer, "jobs");
        dbt_mpw_array (self->writer);
        for (size_t i = 0; i < count; i++) {
            dbt_job_t *job = subs [i];
            dbt_mpw_map (self->writer);
            dbt_mpw_kstr (self->writer, "job_id", job->id);
            dbt_mpw_kstr (self->writer, "task", job->task);
            dbt_mpw_kstr (self->writer, "queue", job->queue);
            dbt_mpw_ki64 (self->writer, "eta", job->eta_ms);
            dbt_mpw_ku64 (self->writer, "retries", job->max_retries);
            dbt_mpw_kstr (self->writer, "results", job->results);
            dbt_mpw_kstr (self->writer, "table", job->table);
            dbt_mpw_end (self->writer);
        }
        dbt_mpw_end (self->writer);
        dbt_mpw_end (self->writer);
        s_reply_end (self, msg->identity, rid, true);
    }
    for (size_t i = 0; i < count; i++)
        dbt_job_destroy (&subs [i]);
    free (subs);
    dbt_group_destroy (&group);
}

//  --------------------------------------------------------------------------
//  Client: CANCEL

//  Cancel (and with purge, forget) one job. Returns 0 or a code with err.
//  Sets *touched when something changed.
static int
s_cancel_job (self_t *self, dbt_wtxn_t *txn, const char *id, bool purge, bool in_group, char *err)
{
    dbt_job_t *job = NULL;
    int rc = dbt_wtxn_job (txn, id, &job, err);
    if (rc == DBT_ENOTFOUND) {
        dbt_err_set (err, "job not found");
        return 404;
    }
    if (rc)
        return 503;
    int code = 0;
    dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
    if (dbt_state_final (job->state)) {
        if (!purge) {
            if (!in_group) {
                dbt_err_set (err, "can't cancel completed job");
                code = 409;
            }
        }
        else
        if ((!job->expired && s_add_drop (self, txn, job, err)) || dbt_wtxn_del_job (txn, id, err))
            code = 503;
    }
    else
    if (job->state == DBT_STATE_STARTED && entry) {
        s_worker_t *worker = entry->worker
                           ? (s_worker_t *) zhashx_lookup (self->workers, entry->worker) : NULL;
        if (worker && worker->connected)
            s_send_cancel (self, worker, id, entry->attempt, "canceled");
        entry->cancelling = true;
        if (purge) {
            //  The worker's capacity stays taken until its DONE arrives;
            //  an attempt that still swaps its table in loses it to the drop.
            dbt_queue_remove (self->queue, id);
            if (s_add_drop (self, txn, job, err) || dbt_wtxn_del_job (txn, id, err))
                code = 503;
        }
        else {
            job->cancelled = true;
            if (dbt_wtxn_put_job (txn, job, err))
                code = 503;
        }
        self->stats [ST_CANCELLED]++;
    }
    else {
        dbt_queue_remove (self->queue, id);
        if (purge) {
            //  A queued job may still have the table of an earlier run.
            if (s_add_drop (self, txn, job, err) || dbt_wtxn_del_job (txn, id, err))
                code = 503;
        }
        else {
            job->state = DBT_STATE_FAILURE;
            job->cancelled = true;
            job->finished_ms = dbt_time_ms ();
            dbt_job_set (&job->error, "the job was canceled");
            if (dbt_wtxn_put_job (txn, job, err))
                code = 503;
        }
        self->stats [ST_CANCELLED]++;
    }
    dbt_job_destroy (&job);
    return code;
}

static void
s_handle_cancel (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *job_id = NULL, *group_id = NULL;
    bool purge = false;
    int code = 0;
    if (dbt_mp_field_str (msg->map, "job_id", false, &job_id, err)
    ||  dbt_mp_field_str (msg->map, "group_id", false, &group_id, err)
    ||  dbt_mp_field_bool (msg->map, "purge", false, &purge, err))
        code = 400;
    else
    if (!job_id == !group_id) {
        dbt_err_set (err, "give exactly one of job_id and group_id");
        code = 400;
    }
    dbt_wtxn_t *txn = code ? NULL : s_txn (self, err);
    if (!code && !txn)
        code = 503;
    if (!code && job_id) {
        if (!dbt_id_valid (job_id)) {
            dbt_err_set (err, "job not found");
            code = 404;
        }
        else
            code = s_cancel_job (self, txn, job_id, purge, false, err);
    }
    if (!code && group_id) {
        dbt_group_t *group = NULL;
        int rc = dbt_id_valid (group_id) ? dbt_wtxn_group (txn, group_id, &group, err) : DBT_ENOTFOUND;
        if (rc == DBT_ENOTFOUND) {
            dbt_err_set (err, "group not found");
            code = 404;
        }
        else
        if (rc)
            code = 503;
        if (!code && !purge) {
            bool complete = true;
            for (size_t i = 0; i < group->njobs; i++) {
                dbt_job_t *member = NULL;
                if (dbt_wtxn_job (txn, group->job_ids [i], &member, err) == 0
                &&  !dbt_state_final (member->state))
                    complete = false;
                dbt_job_destroy (&member);
            }
            if (complete) {
                dbt_err_set (err, "can't delete group as it's already complete");
                code = 409;
            }
        }
        for (size_t i = 0; !code && group && i < group->njobs; i++) {
            int rc2 = s_cancel_job (self, txn, group->job_ids [i], purge, true, err);
            if (rc2 && rc2 != 404)
                code = rc2;
        }
        if (!code && purge && dbt_wtxn_del_group (txn, group_id, err))
            code = 503;
        dbt_group_destroy (&group);
    }
    if (code)
        s_reply_error (self, msg->identity, rid, code, err);
    else {
        s_reply_begin (self, rid, 200, NULL);
        dbt_mpw_bool (self->writer, true);
        s_reply_end (self, msg->identity, rid, true);
    }
    free (job_id);
    free (group_id);
}

//  --------------------------------------------------------------------------
//  Client: reads (answered from LMDB like the HTTP front does)

static void
s_handle_status (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *id = NULL;
    if (dbt_mp_field_str (msg->map, "job_id", true, &id, err)) {
        s_reply_error (self, msg->identity, rid, 400, err);
        return;
    }
    dbt_job_t *job = NULL;
    int rc = dbt_id_valid (id) ? dbt_store_job (self->store, id, &job, err) : DBT_ENOTFOUND;
    if (rc == 0) {
        s_reply_begin (self, rid, 200, NULL);
        dbt_job_pack (job, self->writer);
        s_reply_end (self, msg->identity, rid, false);
    }
    else
        s_reply_error (self, msg->identity, rid, rc == DBT_ENOTFOUND ? 404 : 500,
                       rc == DBT_ENOTFOUND ? "job not found" : err);
    dbt_job_destroy (&job);
    free (id);
}

static void
s_handle_group (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *id = NULL;
    if (dbt_mp_field_str (msg->map, "group_id", true, &id, err)) {
        s_reply_error (self, msg->identity, rid, 400, err);
        return;
    }
    dbt_group_t *group = NULL;
    int rc = dbt_id_valid (id) ? dbt_store_group (self->store, id, &group, err) : DBT_ENOTFOUND;
    if (rc == 0) {
        s_reply_begin (self, rid, 200, NULL);
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "group_id", group->id);
        dbt_mpw_ku64 (self->writer, "concurrency", group->concurrency);
        dbt_mpw_str (self->writer, "jobs");
        dbt_mpw_array (self->writer);
        for (size_t i = 0; i < group->njobs; i++) {
            dbt_job_t *job = NULL;
            if (dbt_store_job (self->store, group->job_ids [i], &job, err) == 0)
                dbt_job_pack (job, self->writer);
            else
                dbt_mpw_nil (self->writer);
            dbt_job_destroy (&job);
        }
        dbt_mpw_end (self->writer);
        dbt_mpw_end (self->writer);
        s_reply_end (self, msg->identity, rid, false);
    }
    else
        s_reply_error (self, msg->identity, rid, rc == DBT_ENOTFOUND ? 404 : 500,
                       rc == DBT_ENOTFOUND ? "group not found" : err);
    dbt_group_destroy (&group);
    free (id);
}

static int
s_pack_waiting (const dbt_job_t *job, void *arg)
{
    dbt_job_pack (job, (dbt_mpw_t *) arg);
    return 0;
}

static void
s_handle_pending (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *queue = NULL;
    if (dbt_mp_field_str (msg->map, "queue", true, &queue, err)) {
        s_reply_error (self, msg->identity, rid, 400, err);
        return;
    }
    s_reply_begin (self, rid, 200, NULL);
    dbt_mpw_array (self->writer);
    if (dbt_id_valid (queue)
    &&  dbt_store_each_waiting (self->store, queue, s_pack_waiting, self->writer, err)) {
        free (queue);
        dbt_mpw_reset (self->writer);
        s_reply_error (self, msg->identity, rid, 500, err);
        return;
    }
    dbt_mpw_end (self->writer);
    s_reply_end (self, msg->identity, rid, false);
    free (queue);
}

static void
s_handle_ping (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    s_reply_begin (self, rid, 200, NULL);
    dbt_mpw_map (self->writer);
    dbt_mpw_kstr (self->writer, "instance", self->instance);
    dbt_mpw_kstr (self->writer, "node", self->config->worker_name);
    dbt_mpw_kstr (self->writer, "version", DBT_VERSION_STRING);
    dbt_mpw_end (self->writer);
    s_reply_end (self, msg->identity, rid, false);
}

//  Read an array of job ids from field key; NULL with a reply on error.
static zlist_t *
s_ids (self_t *self, dbt_msg_t *msg, uint64_t rid, const char *key)
{
    const msgpack_object *ids = dbt_mp_get (msg->map, key);
    if (!ids || ids->type != MSGPACK_OBJECT_ARRAY) {
        s_reply_error (self, msg->identity, rid, 400, "ids must be an array");
        return NULL;
    }
    zlist_t *list = zlist_new ();
    zlist_autofree (list);
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        const char *str;
        size_t len;
        if (dbt_mp_str (&ids->via.array.ptr [i], &str, &len) == 0 && len <= DBT_ID_MAX) {
            char *id = dbt_strndup (str, len);
            if (dbt_id_valid (id))
                zlist_append (list, id);
            free (id);
        }
    }
    return list;
}

//  Janitor: these jobs' results passed their retention; mark them expired
//  and queue their tables for dropping.
static void
s_handle_expire (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    zlist_t *ids = s_ids (self, msg, rid, "ids");
    if (!ids)
        return;
    dbt_wtxn_t *txn = s_txn (self, err);
    int64_t now = dbt_time_ms ();
    uint64_t count = 0;
    int code = txn ? 0 : 503;
    for (char *id = (char *) zlist_first (ids); id && !code; id = (char *) zlist_next (ids)) {
        dbt_job_t *job = NULL;
        if (dbt_wtxn_job (txn, id, &job, err) == 0) {
            int64_t expiry = dbt_job_results_expiry (job);
            if (expiry > 0 && expiry <= now) {
                job->expired = true;
                if (s_add_drop (self, txn, job, err) || dbt_wtxn_put_job (txn, job, err))
                    code = 503;
                else
                    count++;
            }
        }
        dbt_job_destroy (&job);
    }
    zlist_destroy (&ids);
    if (code) {
        s_reply_error (self, msg->identity, rid, code, err);
        return;
    }
    s_reply_begin (self, rid, 200, NULL);
    dbt_mpw_u64 (self->writer, count);
    s_reply_end (self, msg->identity, rid, true);
}

//  Janitor: these tables are gone; forget their drop entries.
static void
s_handle_dropped (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    const msgpack_object *drops = dbt_mp_get (msg->map, "drops");
    if (!drops || drops->type != MSGPACK_OBJECT_ARRAY) {
        s_reply_error (self, msg->identity, rid, 400, "drops must be an array");
        return;
    }
    dbt_wtxn_t *txn = s_txn (self, err);
    int code = txn ? 0 : 503;
    for (uint32_t i = 0; i < drops->via.array.size && !code; i++) {
        const msgpack_object *drop = &drops->via.array.ptr [i];
        uint64_t key = 0;
        char *results = NULL, *table = NULL;
        if (dbt_mp_field_u64 (drop, "key", true, &key, err) == 0
        &&  dbt_mp_field_str (drop, "results", true, &results, err) == 0
        &&  dbt_mp_field_str (drop, "table", true, &table, err) == 0) {
            int rc = dbt_wtxn_del_drop (txn, key, err);
            if (rc == 0) {
                char *name = dbt_printf ("%s/%s", results, table);
                uintptr_t pending = (uintptr_t) zhashx_lookup (self->dropping, name);
                if (pending > 1)
                    zhashx_update (self->dropping, name, (void *) (pending - 1));
                else
                    zhashx_delete (self->dropping, name);
                free (name);
            }
            else
            if (rc != DBT_ENOTFOUND)
                code = 503;
        }
        free (results);
        free (table);
    }
    if (code)
        s_reply_error (self, msg->identity, rid, code, err);
    else {
        s_reply_begin (self, rid, 200, NULL);
        dbt_mpw_bool (self->writer, true);
        s_reply_end (self, msg->identity, rid, true);
    }
}

//  Janitor: forget finished records older than `before` whose results are
//  not waiting to expire, with their groups once those are that old too.
static void
s_handle_forget (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    int64_t before = 0;
    if (dbt_mp_field_i64 (msg->map, "before", true, &before, err)) {
        s_reply_error (self, msg->identity, rid, 400, err);
        return;
    }
    zlist_t *ids = s_ids (self, msg, rid, "ids");
    if (!ids)
        return;
    dbt_wtxn_t *txn = s_txn (self, err);
    int code = txn ? 0 : 503;
    uint64_t count = 0;
    for (char *id = (char *) zlist_first (ids); id && !code; id = (char *) zlist_next (ids)) {
        dbt_job_t *job = NULL;
        if (dbt_wtxn_job (txn, id, &job, err) == 0 && dbt_state_final (job->state)
        &&  job->finished_ms < before && dbt_job_results_expiry (job) == 0) {
            if (dbt_wtxn_del_job (txn, id, err))
                code = 503;
            else
                count++;
            dbt_group_t *group = NULL;
            if (!code && job->group_id && dbt_wtxn_group (txn, job->group_id, &group, err) == 0
            &&  group->created_ms < before && dbt_wtxn_del_group (txn, group->id, err))
                code = 503;
            dbt_group_destroy (&group);
        }
        dbt_job_destroy (&job);
    }
    zlist_destroy (&ids);
    if (code) {
        s_reply_error (self, msg->identity, rid, code, err);
        return;
    }
    s_reply_begin (self, rid, 200, NULL);
    dbt_mpw_u64 (self->writer, count);
    s_reply_end (self, msg->identity, rid, true);
}

//  Counters for /metrics.
static void
s_handle_stats (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    dbt_mpw_t *w = self->writer;
    s_reply_begin (self, rid, 200, NULL);
    dbt_mpw_map (w);
    for (size_t i = 0; i < sizeof (s_stat_names) / sizeof (s_stat_names [0]); i++)
        dbt_mpw_ku64 (w, s_stat_names [i], self->stats [i]);
    uint64_t slots = 0, busy = 0, workers = 0;
    for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker;
         worker = (s_worker_t *) zhashx_next (self->workers)) {
        if (worker->connected) {
            workers++;
            slots += worker->capacity;
            busy += zhashx_size (worker->inflight);
        }
    }
    dbt_mpw_ku64 (w, "workers", workers);
    dbt_mpw_ku64 (w, "slots", slots);
    dbt_mpw_ku64 (w, "busy", busy);
    dbt_mpw_ku64 (w, "drops_pending", zhashx_size (self->dropping));
    //  Queues: those with unfinished jobs and those with counters.
    zlist_t *names = dbt_queue_names (self->queue);
    zlist_comparefn (names, (zlist_compare_fn *) strcmp);
    for (void *item = zhashx_first (self->qstats); item; item = zhashx_next (self->qstats)) {
        const char *name = (const char *) zhashx_cursor (self->qstats);
        if (!zlist_exists (names, (void *) name))
            zlist_append (names, (void *) name);
    }
    dbt_mpw_str (w, "queues");
    dbt_mpw_array (w);
    for (char *name = (char *) zlist_first (names); name; name = (char *) zlist_next (names)) {
        s_qstats_t *stats = (s_qstats_t *) zhashx_lookup (self->qstats, name);
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "name", name);
        dbt_mpw_ku64 (w, "ready", dbt_queue_ready_count (self->queue, name));
        for (int state = DBT_STATE_PENDING; state <= DBT_STATE_RETRY; state++) {
            if (!dbt_state_final ((dbt_state_t) state))
                dbt_mpw_ku64 (w, dbt_state_name ((dbt_state_t) state),
                              dbt_queue_queue_count (self->queue, name, (dbt_state_t) state));
        }
        dbt_mpw_ku64 (w, "succeeded", stats ? stats->finished [DBT_STATE_SUCCESS] : 0);
        dbt_mpw_ku64 (w, "failed", stats ? stats->finished [DBT_STATE_FAILURE] : 0);
        dbt_mpw_ku64 (w, "retried", stats ? stats->finished [DBT_STATE_RETRY] : 0);
        dbt_mpw_ku64 (w, "rows", stats ? stats->rows : 0);
        dbt_mpw_str (w, "buckets");
        dbt_mpw_array (w);
        for (size_t i = 0; i <= NBUCKETS; i++)
            dbt_mpw_u64 (w, stats ? stats->buckets [i] : 0);
        dbt_mpw_end (w);
        dbt_mpw_ku64 (w, "count", stats ? stats->count : 0);
        dbt_mpw_ku64 (w, "millis", stats ? (uint64_t) (stats->seconds * 1000) : 0);
        dbt_mpw_end (w);
    }
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    zlist_destroy (&names);
    s_reply_end (self, msg->identity, rid, false);
}

static void
s_handle_client (self_t *self, dbt_msg_t *msg)
{
    uint64_t rid = 0;
    char err [DBT_ERRMSG_LEN];
    if (dbt_mp_field_u64 (msg->map, "rid", false, &rid, err)) {
        s_reply_error (self, msg->identity, 0, 400, err);
        return;
    }
    switch (msg->command) {
        case DBT_C_SUBMIT:  s_handle_submit (self, msg, rid); break;
        case DBT_C_CANCEL:  s_handle_cancel (self, msg, rid); break;
        case DBT_C_STATUS:  s_handle_status (self, msg, rid); break;
        case DBT_C_GROUP:   s_handle_group (self, msg, rid); break;
        case DBT_C_PENDING: s_handle_pending (self, msg, rid); break;
        case DBT_C_PING:    s_handle_ping (self, msg, rid); break;
        case DBT_C_EXPIRE:  s_handle_expire (self, msg, rid); break;
        case DBT_C_DROPPED: s_handle_dropped (self, msg, rid); break;
        case DBT_C_FORGET:  s_handle_forget (self, msg, rid); break;
        case DBT_C_STATS:   s_handle_stats (self, msg, rid); break;
        default:
            s_reply_error (self, msg->identity, rid, 400, "unknown command");
    }
}

//  --------------------------------------------------------------------------
//  Workers

//  Re-run (or fail) jobs whose run was lost with their worker.
static void
s_lose_jobs (self_t *self, zlist_t *ids, const char *worker_key, const char *why)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = zlist_size (ids) ? s_txn (self, err) : NULL;
    for (char *id = (char *) zlist_first (ids); id && txn; id = (char *) zlist_next (ids)) {
        dbt_job_t *job = NULL;
        dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
        if (!entry || dbt_wtxn_job (txn, id, &job, err))
            continue;
        job->interruptions++;
        self->stats [ST_LOST]++;
        dbt_job_set (&job->worker, NULL);
        if (job->cancelled || entry->cancelling) {
            job->state = DBT_STATE_FAILURE;
            job->finished_ms = dbt_time_ms ();
            dbt_job_set (&job->error, "the job was canceled");
            dbt_queue_remove (self->queue, id);
        }
        else
        if ((int) job->interruptions > self->config->max_interruptions) {
            job->state = DBT_STATE_FAILURE;
            job->finished_ms = dbt_time_ms ();
            char *error = dbt_printf ("job lost its worker %u times (last: %s)",
                                      job->interruptions, why);
            dbt_job_set (&job->error, error);
            free (error);
            dbt_queue_remove (self->queue, id);
            self->stats [ST_FAILED]++;
        }
        else {
            job->state = DBT_STATE_PENDING;
            dbt_queue_requeue (self->queue, entry, DBT_STATE_PENDING, 0);
        }
        if (dbt_wtxn_put_job (txn, job, err))
            dbt_log (DBT_LOG_ERROR, "dispatcher: cannot requeue job '%s': %s", id, err);
        dbt_log (DBT_LOG_WARN, "dispatcher: job '%s' lost with worker '%s' (%s), %s", id,
                 worker_key, why, job->state == DBT_STATE_PENDING ? "queued again" : "failed");
        dbt_job_destroy (&job);
    }
}

//  Re-run the jobs a worker held, after it died or did not come back.
static void
s_lose_worker (self_t *self, s_worker_t *worker, const char *why)
{
    zlist_t *ids = dbt_queue_running_on (self->queue, worker->key);
    s_lose_jobs (self, ids, worker->key, why);
    zlist_destroy (&ids);
    zhashx_purge (worker->inflight);
}

static void
s_handle_ready (self_t *self, dbt_msg_t *msg, const char *key)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *name = NULL;
    uint64_t capacity = 0;
    const msgpack_object *queues = dbt_mp_get (msg->map, "queues");
    if (dbt_mp_field_str (msg->map, "name", true, &name, err)
    ||  dbt_mp_field_u64 (msg->map, "capacity", true, &capacity, err)
    ||  !queues || queues->type != MSGPACK_OBJECT_ARRAY || capacity == 0 || capacity > 100000) {
        dbt_log (DBT_LOG_WARN, "dispatcher: bad READY from '%s': %s", key,
                 err [0] ? err : "queues must be an array and capacity 1..100000");
        free (name);
        return;
    }
    s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, key);
    bool known = worker != NULL;
    if (!worker) {
        worker = s_worker_new (key);
        zhashx_insert (self->workers, key, worker);
    }
    free (worker->name);
    worker->name = name;
    worker->capacity = (uint32_t) capacity;
    worker->connected = true;
    worker->expires = dbt_clock_ms () + s_liveness_ms (self);
    worker->next_heartbeat = 0;
    zlist_purge (worker->queues);
    for (uint32_t i = 0; i < queues->via.array.size; i++) {
        const char *str;
        size_t len;
        if (dbt_mp_str (&queues->via.array.ptr [i], &str, &len) == 0 && len <= DBT_ID_MAX) {
            char *queue = dbt_strndup (str, len);
            if (dbt_id_valid (queue))
                zlist_append (worker->queues, queue);
            free (queue);
        }
    }
    //  Jobs the worker says it runs: keep those we agree on, stop the rest.
    zhashx_t *claimed = zhashx_new ();
    const msgpack_object *running = dbt_mp_get (msg->map, "running");
    if (running && running->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < running->via.array.size; i++) {
            const msgpack_object *item = &running->via.array.ptr [i];
            char *id = NULL;
            uint64_t attempt = 0;
            if (dbt_mp_field_str (item, "id", true, &id, err) == 0
            &&  dbt_mp_field_u64 (item, "attempt", true, &attempt, err) == 0 && dbt_id_valid (id)) {
                dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
                zhashx_update (worker->inflight, id, (void *) (uintptr_t) dbt_clock_ms ());
                if (entry && entry->state == DBT_STATE_STARTED && entry->worker
                &&  streq (entry->worker, key) && entry->attempt == attempt)
                    zhashx_update (claimed, id, (void *) 1);
                else
                    s_send_cancel (self, worker, id, (uint32_t) attempt, "no longer assigned");
            }
            free (id);
        }
    }
    //  Jobs we think it runs that it does not claim were lost.
    zlist_t *ids = dbt_queue_running_on (self->queue, key);
    zlist_t *unclaimed = zlist_new ();
    for (char *id = (char *) zlist_first (ids); id; id = (char *) zlist_next (ids))
        if (!zhashx_lookup (claimed, id))
            zlist_append (unclaimed, id);
    s_lose_jobs (self, unclaimed, key, "worker restarted");
    zlist_destroy (&unclaimed);
    zlist_destroy (&ids);
    zhashx_destroy (&claimed);
    dbt_log (DBT_LOG_INFO, "dispatcher: worker '%s' (%s) %s with %u slots", key,
             worker->name, known ? "re-registered" : "registered", worker->capacity);
}

//  The job entry a worker message refers to, when it is current.
static dbt_entry_t *
s_current (self_t *self, const char *key, const char *id, uint64_t attempt)
{
    dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
    if (entry && entry->state == DBT_STATE_STARTED && entry->worker
    &&  streq (entry->worker, key) && entry->attempt == attempt)
        return entry;
    return NULL;
}

static void
s_handle_progress (self_t *self, dbt_msg_t *msg, const char *key)
{
    char err [DBT_ERRMSG_LEN];
    char *id = NULL;
    uint64_t attempt = 0, rows = 0;
    if (dbt_mp_field_str (msg->map, "id", true, &id, err) == 0
    &&  dbt_mp_field_u64 (msg->map, "attempt", true, &attempt, err) == 0
    &&  dbt_mp_field_u64 (msg->map, "rows", true, &rows, err) == 0
    &&  s_current (self, key, id, attempt)) {
        dbt_wtxn_t *txn = s_txn (self, err);
        dbt_job_t *job = NULL;
        if (txn && dbt_wtxn_job (txn, id, &job, err) == 0) {
            job->rows = rows;
            if (dbt_wtxn_put_job (txn, job, err))
                dbt_log (DBT_LOG_ERROR, "dispatcher: cannot record progress: %s", err);
        }
        dbt_job_destroy (&job);
    }
    free (id);
}

static void
s_handle_done (self_t *self, dbt_msg_t *msg, s_worker_t *worker)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *id = NULL, *error = NULL;
    uint64_t attempt = 0, rows = 0;
    bool ok = false, cancelled = false, interrupted = false;
    if (dbt_mp_field_str (msg->map, "id", true, &id, err)
    ||  dbt_mp_field_u64 (msg->map, "attempt", true, &attempt, err)
    ||  dbt_mp_field_bool (msg->map, "ok", true, &ok, err)
    ||  dbt_mp_field_u64 (msg->map, "rows", false, &rows, err)
    ||  dbt_mp_field_str (msg->map, "error", false, &error, err)
    ||  dbt_mp_field_bool (msg->map, "cancelled", false, &cancelled, err)
    ||  dbt_mp_field_bool (msg->map, "interrupted", false, &interrupted, err)) {
        dbt_log (DBT_LOG_WARN, "dispatcher: bad DONE from '%s': %s", worker->key, err);
        goto done;
    }
    zhashx_delete (worker->inflight, id);
    dbt_entry_t *entry = s_current (self, worker->key, id, attempt);
    if (!entry) {
        dbt_log (DBT_LOG_DEBUG, "dispatcher: ignoring outcome of stale attempt %" PRIu64
                 " of job '%s'", attempt, id);
        goto done;
    }
    if (interrupted) {
        //  The worker gave the job back unfinished (shutting down).
        zlist_t *ids = zlist_new ();
        zlist_append (ids, id);
        s_lose_jobs (self, ids, worker->key, error ? error : "worker gave it back");
        zlist_destroy (&ids);
        goto done;
    }
    dbt_wtxn_t *txn = s_txn (self, err);
    dbt_job_t *job = NULL;
    if (!txn || dbt_wtxn_job (txn, id, &job, err)) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot record outcome of '%s': %s", id, err);
        goto done;
    }
    int64_t now = dbt_time_ms ();
    dbt_job_set (&job->worker, NULL);
    job->rows = rows;
    if (ok && !job->cancelled && !entry->cancelling) {
        job->state = DBT_STATE_SUCCESS;
        job->finished_ms = now;
        dbt_job_set (&job->error, NULL);
        dbt_queue_remove (self->queue, id);
        self->stats [ST_SUCCEEDED]++;
    }
    else
    if (job->cancelled || entry->cancelling || cancelled) {
        job->state = DBT_STATE_FAILURE;
        job->finished_ms = now;
        dbt_job_set (&job->error, error && *error ? error : "the job was canceled");
        dbt_queue_remove (self->queue, id);
        self->stats [ST_FAILED]++;
    }
    else {
        dbt_job_set (&job->error, error && *error ? error : "job failed");
        uint32_t failures = job->attempts - job->interruptions;
        if (failures <= job->max_retries) {
            job->state = DBT_STATE_RETRY;
            int64_t at = now + s_backoff (self, failures);
            dbt_queue_requeue (self->queue, entry, DBT_STATE_RETRY, at);
            job->eta_ms = 0;
            entry->ready_at = at;
            self->stats [ST_RETRIED]++;
            dbt_log (DBT_LOG_INFO, "dispatcher: job '%s' attempt %u failed, retry in %" PRId64
                     " ms: %s", id, job->attempts, at - now, job->error);
        }
        else {
            job->state = DBT_STATE_FAILURE;
            job->finished_ms = now;
            dbt_queue_remove (self->queue, id);
            self->stats [ST_FAILED]++;
        }
    }
    s_observe (self, job, now);
    if (dbt_wtxn_put_job (txn, job, err))
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot record outcome of '%s': %s", id, err);
    dbt_job_destroy (&job);
done:
    free (id);
    free (error);
}

//  A worker's heartbeat lists the jobs it runs. A job we gave it more than
//  two heartbeats ago that it does not list never reached it or was lost
//  there: run it again rather than wait for it forever.
static void
s_reconcile (self_t *self, s_worker_t *worker, dbt_msg_t *msg)
{
    const msgpack_object *running = dbt_mp_get (msg->map, "running");
    if (!running || running->type != MSGPACK_OBJECT_ARRAY)
        return;
    zhashx_t *listed = zhashx_new ();
    for (uint32_t i = 0; i < running->via.array.size; i++) {
        const char *str;
        size_t len;
        const msgpack_object *id = dbt_mp_get (&running->via.array.ptr [i], "id");
        if (dbt_mp_str (id, &str, &len) == 0 && len <= DBT_ID_MAX) {
            char *key = dbt_strndup (str, len);
            zhashx_update (listed, key, (void *) 1);
            free (key);
        }
    }
    int64_t cutoff = dbt_clock_ms () - 2 * self->config->heartbeat_ms;
    zlist_t *missing = zlist_new ();
    zlist_autofree (missing);
    for (void *given = zhashx_first (worker->inflight); given; given = zhashx_next (worker->inflight)) {
        const char *id = (const char *) zhashx_cursor (worker->inflight);
        if (!zhashx_lookup (listed, id) && (int64_t) (uintptr_t) given < cutoff)
            zlist_append (missing, (void *) id);
    }
    zlist_t *lost = zlist_new ();
    zlist_autofree (lost);
    for (char *id = (char *) zlist_first (missing); id; id = (char *) zlist_next (missing)) {
        zhashx_delete (worker->inflight, id);
        dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
        if (entry && entry->state == DBT_STATE_STARTED && entry->worker && streq (entry->worker, worker->key))
            zlist_append (lost, id);
    }
    s_lose_jobs (self, lost, worker->key, "the worker does not have it");
    zlist_destroy (&lost);
    zlist_destroy (&missing);
    zhashx_destroy (&listed);
}

static void
s_handle_worker (self_t *self, dbt_msg_t *msg)
{
    char *key = zframe_strdup (msg->identity);
    s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, key);
    if (msg->command == DBT_W_READY)
        s_handle_ready (self, msg, key);
    else
    if (!worker || !worker->connected) {
        //  We do not know it (we restarted, or it expired): re-register.
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "reason", "unknown worker, send READY");
        dbt_mpw_end (self->writer);
        dbt_msg_send (self->router, msg->identity, DBT_PROTO_WORKER, DBT_W_DISCONNECT, self->writer);
    }
    else {
        worker->expires = dbt_clock_ms () + s_liveness_ms (self);
        switch (msg->command) {
            case DBT_W_PROGRESS:  s_handle_progress (self, msg, key); break;
            case DBT_W_DONE:      s_handle_done (self, msg, worker); break;
            case DBT_W_HEARTBEAT: s_reconcile (self, worker, msg); break;
            case DBT_W_CREDIT: {
                uint64_t capacity = 0;
                char err [DBT_ERRMSG_LEN];
                if (dbt_mp_field_u64 (msg->map, "capacity", true, &capacity, err) == 0
                &&  capacity <= 100000)
                    worker->capacity = (uint32_t) capacity;
                break;
            }
            default:
                dbt_log (DBT_LOG_WARN, "dispatcher: unknown command 0x%02x from worker '%s'",
                         msg->command, key);
        }
    }
    free (key);
}

//  Expire silent workers; send heartbeats.
static void
s_check_workers (self_t *self)
{
    int64_t now = dbt_clock_ms ();
    zlist_t *dead = zlist_new ();
    for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker;
         worker = (s_worker_t *) zhashx_next (self->workers)) {
        if (worker->expires <= now)
            zlist_append (dead, worker);
        else
        if (worker->connected && worker->next_heartbeat <= now) {
            dbt_mpw_map (self->writer);
            dbt_mpw_kstr (self->writer, "instance", self->instance);
            dbt_mpw_end (self->writer);
            s_send_worker (self, worker, DBT_W_HEARTBEAT, self->writer);
            dbt_mpw_reset (self->writer);
            worker->next_heartbeat = now + self->config->heartbeat_ms;
        }
    }
    for (s_worker_t *worker = (s_worker_t *) zlist_first (dead); worker;
         worker = (s_worker_t *) zlist_next (dead)) {
        dbt_log (DBT_LOG_WARN, "dispatcher: worker '%s' %s", worker->key,
                 worker->connected ? "missed its heartbeats" : "did not come back after restart");
        s_lose_worker (self, worker, worker->connected ? "missed heartbeats" : "dispatcher restarted");
        zhashx_delete (self->workers, worker->key);
    }
    zlist_destroy (&dead);
}

//  --------------------------------------------------------------------------
//  Dispatch: give ready jobs to workers with free slots.

static bool
s_assign (self_t *self, s_worker_t *worker, dbt_entry_t *entry)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = s_txn (self, err);
    dbt_job_t *job = NULL;
    if (!txn || dbt_wtxn_job (txn, entry->id, &job, err)) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot start job '%s': %s", entry->id, err);
        dbt_queue_remove (self->queue, entry->id);
        return false;
    }
    job->state = DBT_STATE_STARTED;
    job->attempts++;
    job->started_ms = dbt_time_ms ();
    job->rows = 0;
    dbt_job_set (&job->worker, worker->key);
    if (dbt_wtxn_put_job (txn, job, err)) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot start job '%s': %s", entry->id, err);
        dbt_job_destroy (&job);
        return false;
    }
    dbt_queue_start (self->queue, entry, worker->key, job->attempts);
    zhashx_update (worker->inflight, job->id, (void *) (uintptr_t) dbt_clock_ms ());
    dbt_job_pack (job, self->writer);
    zmsg_t *msg = dbt_msg_encode (worker->identity, DBT_PROTO_WORKER, DBT_W_JOB, self->writer);
    s_out_t *out = s_out (self, OUT_JOB, msg);
    out->worker = dbt_strdup (worker->key);
    out->job_id = dbt_strdup (job->id);
    self->stats [ST_STARTED]++;
    dbt_log (DBT_LOG_DEBUG, "dispatcher: job '%s' attempt %u to worker '%s'",
             job->id, job->attempts, worker->key);
    dbt_job_destroy (&job);
    return true;
}

static void
s_dispatch (self_t *self)
{
    size_t assigned = 0;
    bool progress = true;
    while (progress && assigned < MAX_MSGS_PER_TURN) {
        progress = false;
        for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker;
             worker = (s_worker_t *) zhashx_next (self->workers)) {
            if (!worker->connected || zhashx_size (worker->inflight) >= worker->capacity)
                continue;
            //  Rotate through the worker's queues so none starves.
            size_t nqueues = zlist_size (worker->queues);
            for (size_t i = 0; i < nqueues; i++) {
                char *queue = (char *) zlist_pop (worker->queues);
                zlist_append (worker->queues, queue);
                dbt_entry_t *entry = dbt_queue_next (self->queue, queue, s_hold, self);
                if (entry && s_assign (self, worker, entry)) {
                    assigned++;
                    progress = true;
                    break;
                }
            }
        }
    }
}

//  --------------------------------------------------------------------------
//  End of a turn: commit, then send.

static void
s_flush (self_t *self)
{
    char err [DBT_ERRMSG_LEN] = "";
    int rc = 0;
    if (self->txn) {
        rc = dbt_wtxn_commit (&self->txn, err);
        self->stats [ST_COMMITS]++;
    }
    if (rc) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: commit failed, turn undone: %s", err);
        //  Undo the turn's job assignments in worker accounting.
        for (s_out_t *out = (s_out_t *) zlistx_first (self->outbox); out;
             out = (s_out_t *) zlistx_next (self->outbox)) {
            if (out->kind == OUT_JOB) {
                s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, out->worker);
                if (worker)
                    zhashx_delete (worker->inflight, out->job_id);
            }
        }
        s_rebuild (self);
    }
    s_out_t *out;
    while ((out = (s_out_t *) zlistx_detach (self->outbox, NULL))) {
        if (rc && out->kind == OUT_ACK) {
            s_reply_begin (self, out->rid, rc == DBT_EFULL ? 507 : 503,
                           rc == DBT_EFULL ? "state store is full, job not accepted"
                                           : "state store error, job not accepted");
            dbt_mpw_nil (self->writer);
            dbt_mpw_end (self->writer);
            zmsg_t *msg = dbt_msg_encode (out->identity, DBT_PROTO_CLIENT, DBT_C_REPLY, self->writer);
            if (zmsg_send (&msg, self->router))
                zmsg_destroy (&msg);
        }
        else
        if (!(rc && out->kind == OUT_JOB)) {
            if (zmsg_send (&out->msg, self->router)) {
                if (out->kind == OUT_JOB) {
                    //  The worker vanished between turns: expire it now.
                    s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, out->worker);
                    if (worker)
                        worker->expires = 0;
                }
                dbt_log (DBT_LOG_DEBUG, "dispatcher: cannot send: %s", zmq_strerror (errno));
            }
        }
        s_out_free ((void **) &out);
    }
}

//  --------------------------------------------------------------------------
//  Pipe

static void
s_handle_pipe (self_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *command = zmsg_popstr (msg);
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "ENDPOINT"))
        zstr_send (self->pipe, self->endpoint);
    else
        dbt_log (DBT_LOG_WARN, "dispatcher: unknown pipe command '%s'", command);
    free (command);
    zmsg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  The actor

void
dbt_dispatcher_actor (zsock_t *pipe, void *args)
{
    dbt_dispatcher_args_t *a = (dbt_dispatcher_args_t *) args;
    self_t *self = (self_t *) dbt_malloc (sizeof (self_t));
    self->pipe = pipe;
    self->config = a->config;
    self->tasks = a->tasks;
    self->store = a->store;
    self->queue = dbt_queue_new ();
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, s_worker_free);
    self->outbox = zlistx_new ();
    zlistx_set_destructor (self->outbox, s_out_free);
    self->qstats = zhashx_new ();
    zhashx_set_destructor (self->qstats, (zhashx_destructor_fn *) zstr_free);
    self->dropping = zhashx_new ();
    self->writer = dbt_mpw_new ();
    dbt_uuid (self->instance);
    self->rng = dbt_random64 () | 1;

    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_router_handover (self->router, 1);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_sndtimeo (self->router, 0);       //  never block on a slow peer
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_linger (self->router, 1000);
    int status = 0;
    if (zsock_bind (self->router, "%s", self->config->mesh_bind) < 0) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot bind '%s': %s", self->config->mesh_bind,
                 zmq_strerror (errno));
        status = 1;
    }
    else {
        self->endpoint = dbt_strdup (zsock_endpoint (self->router));
        int loaded = s_rebuild (self);
        if (loaded < 0)
            status = 1;
        else
            dbt_log (DBT_LOG_INFO, "dispatcher: listening on %s, %d unfinished jobs loaded",
                     self->endpoint, loaded);
    }
    self->poller = zpoller_new (pipe, self->router, NULL);
    zsock_signal (pipe, (byte) status);
    while (status == 0 && !self->terminated) {
        //  Sleep until input, the next eta, or the next heartbeat.
        int64_t now = dbt_time_ms ();
        int64_t next_eta = dbt_queue_promote (self->queue, now);
        int64_t timeout = self->config->heartbeat_ms / 2;
        if (next_eta && next_eta - now < timeout)
            timeout = next_eta - now;
        if (timeout < 1)
            timeout = 1;
        void *which = zpoller_wait (self->poller, (int) timeout);
        if (which == pipe)
            s_handle_pipe (self);
        if (self->terminated || zpoller_terminated (self->poller))
            break;
        for (size_t n = 0; n < MAX_MSGS_PER_TURN; n++) {
            if (!(zsock_events (self->router) & ZMQ_POLLIN))
                break;
            char err [DBT_ERRMSG_LEN];
            dbt_msg_t *msg = dbt_msg_recv (self->router, true, err);
            if (!msg) {
                if (err [0])
                    dbt_log (DBT_LOG_WARN, "dispatcher: dropped malformed message: %s", err);
                continue;
            }
            if (streq (msg->signature, DBT_PROTO_CLIENT))
                s_handle_client (self, msg);
            else
                s_handle_worker (self, msg);
            dbt_msg_destroy (&msg);
        }
        dbt_queue_promote (self->queue, dbt_time_ms ());
        s_check_workers (self);
        s_dispatch (self);
        s_flush (self);
    }
    if (self->txn)
        s_flush (self);
    //  After a failed start, stay until $TERM so the node can ask us.
    while (status && !self->terminated) {
        char *command = zstr_recv (pipe);
        if (!command || streq (command, "$TERM"))
            self->terminated = true;
        else
            zstr_send (pipe, "");
        free (command);
    }
    dbt_log (DBT_LOG_DEBUG, "dispatcher: stopped");
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->router);
    zlistx_destroy (&self->outbox);
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->qstats);
    zhashx_destroy (&self->dropping);
    dbt_queue_destroy (&self->queue);
    dbt_mpw_destroy (&self->writer);
    free (self->endpoint);
    free (self);
}
