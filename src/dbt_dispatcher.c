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

#include "dbt_dispatcher_int.h"

//  What becomes of a DONE message once handled (dbt_disp_t keep).
enum { KEEP_NONE, KEEP_OUTCOME, KEEP_REPLAY };

const char *const dbt_disp__stat_names [] = { "submitted", "started", "succeeded", "failed",
    "retried", "lost", "cancelled", "commits", "refused_full", "malformed",
    "ack_commits", "acks" };

#define SPACE_EVERY_MS   250        //  how often the store's space is read
#define WARN_EVERY_MS    10000      //  malformed messages: one warning per period

//  --------------------------------------------------------------------------
//  Small helpers

//  A worker's busy runner slots are counted per attempt, not per job: two
//  attempts of one job (one stopping, one just given) hold two slots.
static const char *
s_slot_key (char *key, const char *id, uint64_t attempt)
{
    snprintf (key, DBT_DISP_SLOT_KEY_MAX, "%s#%" PRIu64, id, attempt);
    return key;
}

//  A slot of the worker is busy with that attempt since `since`; frame
//  numbers the job frame that gave it (0: none of ours, it said it runs it).
static void
s_slot_busy (dbt_disp_worker_t *worker, const char *id, uint64_t attempt, int64_t since,
             uint64_t frame)
{
    char key [DBT_DISP_SLOT_KEY_MAX];
    s_slot_key (key, id, attempt);
    dbt_disp_slot_t *slot = (dbt_disp_slot_t *) zhashx_lookup (worker->inflight, key);
    if (!slot) {
        slot = (dbt_disp_slot_t *) dbt_malloc (sizeof (dbt_disp_slot_t));
        zhashx_insert (worker->inflight, key, slot);
    }
    slot->since = since;
    slot->frame = frame;
}

static void
s_slot_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  The worker said that attempt no longer holds a slot.
static void
s_slot_free (dbt_disp_worker_t *worker, const char *id, uint64_t attempt)
{
    char key [DBT_DISP_SLOT_KEY_MAX];
    zhashx_delete (worker->inflight, s_slot_key (key, id, attempt));
}

uint64_t
dbt_disp__random (dbt_disp_t *self)
{
    uint64_t x = self->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->rng = x;
    return x;
}

static int64_t
s_liveness_ms (dbt_disp_t *self)
{
    return self->config->heartbeat_ms * self->config->heartbeat_liveness;
}

static void
s_worker_free (void **item_p)
{
    dbt_disp_worker_t *worker = (dbt_disp_worker_t *) *item_p;
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

//  A worker known by its display id; identity is its routing id frame
//  (copied), or NULL for a worker we only expect back after a restart.
static dbt_disp_worker_t *
s_worker_new (const char *key, zframe_t *identity)
{
    dbt_disp_worker_t *worker = (dbt_disp_worker_t *) dbt_malloc (sizeof (dbt_disp_worker_t));
    worker->key = dbt_strdup (key);
    worker->identity = identity ? zframe_dup (identity) : NULL;
    worker->queues = zlist_new ();
    zlist_autofree (worker->queues);
    worker->inflight = zhashx_new ();
    zhashx_set_destructor (worker->inflight, s_slot_destroy);
    return worker;
}

void
dbt_disp__out_free (void **item_p)
{
    dbt_disp_out_t *out = (dbt_disp_out_t *) *item_p;
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
dbt_wtxn_t *
dbt_disp__txn (dbt_disp_t *self, char *err)
{
    if (!self->txn)
        self->txn = dbt_store_begin (self->store, err);
    return self->txn;
}

int
dbt_disp__fail_code (dbt_disp_t *self)
{
    return self->full || (self->txn && dbt_wtxn_failed (self->txn) == DBT_EFULL) ? 507 : 503;
}

//  Read the store's space: full or not, and how many bytes new jobs may
//  still take (what is free beyond the reserve).
static void
s_read_space (dbt_disp_t *self)
{
    char err [DBT_ERRMSG_LEN];
    self->space_due = dbt_clock_ms () + SPACE_EVERY_MS;
    dbt_store_space_t space;
    //  Refusing for want of space until a quarter of the reserve is free
    //  beyond it again (no flapping at the edge).
    if (self->full && dbt_store_space (self->store, &space, err) == 0
    &&  space.free_bytes - space.reserve_bytes >= space.reserve_bytes / 4)
        dbt_store_set_refusing (self->store, false);
    if (dbt_store_space (self->store, &space, err)) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: %s", err);
        return;
    }
    if (space.full != self->full)
        dbt_log (space.full ? DBT_LOG_WARN : DBT_LOG_INFO,
                 space.full ? "dispatcher: state store full (%" PRId64 " of %" PRId64 " bytes used, "
                              "%" PRId64 " kept in reserve): refusing new jobs with 507 until "
                              "expiry or purges free space"
                            : "dispatcher: state store has room again (%" PRId64 " of %" PRId64
                              " bytes used, reserve %" PRId64 "): accepting jobs",
                 space.used_bytes, space.max_bytes, space.reserve_bytes);
    self->full = space.full;
    self->space_budget = space.full ? 0 : space.free_bytes - space.reserve_bytes;
}

//  Between turns: grow the map when it fills up and may grow; every
//  SPACE_EVERY_MS decide whether the store is full (new jobs refused,
//  everything that frees space still accepted).
static void
s_check_space (dbt_disp_t *self)
{
    char err [DBT_ERRMSG_LEN];
    if (self->txn)
        return;
    int grown = dbt_store_grow (self->store, err);
    if (grown < 0)
        dbt_log (DBT_LOG_ERROR, "dispatcher: %s", err);
    if (grown || dbt_clock_ms () >= self->space_due)
        s_read_space (self);
}

int
dbt_disp__take_space (dbt_disp_t *self, int64_t bytes)
{
    //  What a SUBMIT may write is charged against what was free beyond
    //  the reserve at the last reading, so a burst between two readings
    //  cannot eat into the reserve; when the charge runs out, read again.
    if (bytes > self->space_budget)
        s_read_space (self);
    if (self->full || bytes > self->space_budget) {
        if (!self->full)
            dbt_log (DBT_LOG_WARN, "dispatcher: state store nearly full: refusing new jobs with 507 "
                     "until expiry or purges free space");
        self->full = true;
        dbt_store_set_refusing (self->store, true);
        return -1;
    }
    self->space_budget -= bytes;
    return 0;
}

//  One warning per WARN_EVERY_MS for malformed messages; all are counted.
static void
s_warn_malformed (dbt_disp_t *self, const char *what)
{
    self->stats [ST_MALFORMED]++;
    int64_t now = dbt_clock_ms ();
    if (now < self->warn_due) {
        self->warn_skipped++;
        return;
    }
    if (self->warn_skipped)
        dbt_log (DBT_LOG_WARN, "dispatcher: dropped malformed message: %s (and %" PRIu64
                 " more since the last warning)", what, self->warn_skipped);
    else
        dbt_log (DBT_LOG_WARN, "dispatcher: dropped malformed message: %s", what);
    self->warn_skipped = 0;
    self->warn_due = now + WARN_EVERY_MS;
}

//  Queue a message for after the commit.
static dbt_disp_out_t *
s_out (dbt_disp_t *self, dbt_disp_out_kind_t kind, zmsg_t *msg)
{
    dbt_disp_out_t *out = (dbt_disp_out_t *) dbt_malloc (sizeof (dbt_disp_out_t));
    out->kind = kind;
    out->msg = msg;
    zlistx_add_end (self->outbox, out);
    return out;
}

//  Start a reply body in self->writer: {rid, code, message, data: ...}.
//  The caller writes the data value (or nil) then calls dbt_disp__reply_end.
void
dbt_disp__reply_begin (dbt_disp_t *self, uint64_t rid, int code, const char *message)
{
    dbt_mpw_reset (self->writer);
    dbt_mpw_map (self->writer);
    dbt_mpw_ku64 (self->writer, "rid", rid);
    dbt_mpw_ku64 (self->writer, "code", (uint64_t) code);
    if (message)
        dbt_mpw_kstr (self->writer, "message", message);
    dbt_mpw_str (self->writer, "data");
}

void
dbt_disp__reply_end (dbt_disp_t *self, zframe_t *identity, uint64_t rid, bool ack)
{
    dbt_mpw_end (self->writer);
    zmsg_t *msg = dbt_msg_encode (identity, DBT_PROTO_CLIENT, DBT_C_REPLY, self->writer);
    dbt_disp_out_t *out = s_out (self, ack ? OUT_ACK : OUT_PLAIN, msg);
    if (ack) {
        out->identity = zframe_dup (identity);
        out->rid = rid;
    }
}

//  Reply with an error (sent whatever the commit does).
void
dbt_disp__reply_error (dbt_disp_t *self, zframe_t *identity, uint64_t rid, int code, const char *message)
{
    dbt_disp__reply_begin (self, rid, code, message);
    dbt_mpw_nil (self->writer);
    dbt_disp__reply_end (self, identity, rid, false);
}

//  Send a worker command now (not through the outbox).
static void
s_send_worker (dbt_disp_t *self, dbt_disp_worker_t *worker, int command, dbt_mpw_t *body)
{
    if (!worker->identity) {
        dbt_mpw_reset (body);
        return;
    }
    if (dbt_msg_send (self->router, worker->identity, DBT_PROTO_WORKER, command, body)) {
        dbt_log (DBT_LOG_DEBUG, "dispatcher: cannot reach worker '%s': %s",
                 worker->key, zmq_strerror (errno));
        if (errno == EHOSTUNREACH)
            worker->expires = 0;        //  expire it on this turn
    }
}

//  Tell a worker to stop one job.
void
dbt_disp__send_cancel (dbt_disp_t *self, dbt_disp_worker_t *worker, const char *job_id, uint32_t attempt,
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
s_backoff (dbt_disp_t *self, uint32_t failures)
{
    int64_t delay = self->config->retry_base_ms;
    for (uint32_t i = 1; i < failures && delay < self->config->retry_max_ms; i++)
        delay *= 2;
    if (delay > self->config->retry_max_ms)
        delay = self->config->retry_max_ms;
    if (delay <= 1)
        return delay;
    int64_t half = delay / 2;
    return half + (int64_t) (dbt_disp__random (self) % (uint64_t) (delay - half + 1));
}

//  Count an attempt's end for /metrics.
static void
s_observe (dbt_disp_t *self, const dbt_job_t *job, int64_t now)
{
    dbt_disp_qstats_t *stats = (dbt_disp_qstats_t *) zhashx_lookup (self->qstats, job->queue);
    if (!stats) {
        stats = (dbt_disp_qstats_t *) dbt_malloc (sizeof (dbt_disp_qstats_t));
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
int
dbt_disp__add_drop (dbt_disp_t *self, dbt_wtxn_t *txn, const dbt_job_t *job, char *err)
{
    if (!job->results || !job->table)
        return 0;
    if (dbt_wtxn_add_drop (txn, job->results, job->table, job->id, NULL, err))
        return -1;
    char *key = dbt_job_table_key (job->results, job->table);
    uintptr_t pending = (uintptr_t) zhashx_lookup (self->dropping, key);
    zhashx_update (self->dropping, key, (void *) (pending + 1));
    free (key);
    return 0;
}

//  A job must not start while its table has a drop pending.
static bool
s_hold (const dbt_entry_t *entry, void *arg)
{
    dbt_disp_t *self = (dbt_disp_t *) arg;
    return zhashx_size (self->dropping) && zhashx_lookup (self->dropping, entry->table_key);
}

//  --------------------------------------------------------------------------
//  Rebuild the schedule from LMDB (at start, and after a failed commit).

typedef struct {
    dbt_disp_t *self;
    int64_t hold;
    size_t count;
    zhashx_t *groups;           //  groups whose limit is set (read each once)
} s_load_t;

static void
s_apply_group_limit (dbt_disp_t *self, const char *group_id)
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
    dbt_disp_t *self = load->self;
    dbt_queue_put (self->queue, job, 0);
    if (job->group_id && !zhashx_lookup (load->groups, job->group_id)) {
        //  Once per group: a group record lists every member.
        s_apply_group_limit (self, job->group_id);
        zhashx_insert (load->groups, job->group_id, (void *) 1);
    }
    if (job->state == DBT_STATE_STARTED && job->worker) {
        //  Expect its worker back for a while before re-running the job.
        dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_lookup (self->workers, job->worker);
        if (!worker) {
            worker = s_worker_new (job->worker, NULL);
            worker->expires = dbt_clock_ms () + load->hold;
            zhashx_insert (self->workers, job->worker, worker);
        }
        s_slot_busy (worker, job->id, job->attempts, dbt_clock_ms (), 0);
    }
    load->count++;
    return 0;
}

static int
s_load_drop (uint64_t key, const char *results, const char *table, const char *job_id, void *arg)
{
    dbt_disp_t *self = (dbt_disp_t *) arg;
    char *name = dbt_job_table_key (results, table);
    uintptr_t pending = (uintptr_t) zhashx_lookup (self->dropping, name);
    zhashx_update (self->dropping, name, (void *) (pending + 1));
    free (name);
    return 0;
}

int
dbt_disp__rebuild (dbt_disp_t *self)
{
    char err [DBT_ERRMSG_LEN];
    dbt_queue_clear (self->queue);
    zhashx_purge (self->dropping);
    dbt_store_each_drop (self->store, s_load_drop, self, err);
    //  A connected worker's slots stay busy whatever the store says: only
    //  the worker frees them (DONE, or a heartbeat that does not list them).
    for (dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_first (self->workers); worker;
         worker = (dbt_disp_worker_t *) zhashx_next (self->workers))
        if (!worker->connected)
            zhashx_purge (worker->inflight);
    s_load_t load = { self, s_liveness_ms (self), 0, zhashx_new () };
    int rc = 0;
    if (dbt_store_each_waiting (self->store, NULL, s_load_one, &load, err)
    ||  dbt_store_each_running (self->store, s_load_one, &load, err)) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot load state: %s", err);
        rc = -1;
    }
    zhashx_destroy (&load.groups);
    return rc ? rc : (int) load.count;
}

//  --------------------------------------------------------------------------
//  Workers

//  Re-run (or fail) jobs whose run was lost with their worker.
static void
s_lose_jobs (dbt_disp_t *self, zlist_t *ids, const char *worker_key, const char *why)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = zlist_size (ids) ? dbt_disp__txn (self, err) : NULL;
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
            job->rows = 0;                  //  the lost attempt's rows are gone
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
s_lose_worker (dbt_disp_t *self, dbt_disp_worker_t *worker, const char *why)
{
    zlist_t *ids = dbt_queue_running_on (self->queue, worker->key);
    s_lose_jobs (self, ids, worker->key, why);
    zlist_destroy (&ids);
    zhashx_purge (worker->inflight);
}

void
dbt_disp__drop_workers (dbt_disp_t *self, const char *reason)
{
    for (dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_first (self->workers); worker;
         worker = (dbt_disp_worker_t *) zhashx_next (self->workers)) {
        if (!worker->connected)
            continue;
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "reason", reason);
        dbt_mpw_kbool (self->writer, "passive", true);
        dbt_mpw_kstr (self->writer, "active", self->config->mesh_partner);
        dbt_mpw_end (self->writer);
        s_send_worker (self, worker, DBT_W_DISCONNECT, self->writer);
        dbt_mpw_reset (self->writer);
    }
    zhashx_purge (self->workers);
}

//  The job entry a worker message refers to, when it is current.
static dbt_entry_t *
s_current (dbt_disp_t *self, const char *key, const char *id, uint64_t attempt)
{
    dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
    if (entry && entry->state == DBT_STATE_STARTED && entry->worker
    &&  streq (entry->worker, key) && entry->attempt == attempt)
        return entry;
    return NULL;
}

//  A READY or HEARTBEAT the worker numbered ("hb"): echo it ("heard")
//  in our heartbeat, sent at once, so that the worker's fence knows we
//  still hear it (see s_check_workers).
static void
s_heard (dbt_disp_worker_t *worker, dbt_msg_t *msg)
{
    uint64_t hb = 0;
    char err [DBT_ERRMSG_LEN];
    if (dbt_mp_get (msg->map, "hb") && dbt_mp_field_u64 (msg->map, "hb", true, &hb, err) == 0 && hb) {
        worker->heard = hb;
        worker->next_heartbeat = 0;
    }
}

//  A READY or HEARTBEAT: the newest job frame the worker has had ("got",
//  the frame's "frame" number), on the socket it speaks on now.
static void
s_got (dbt_disp_worker_t *worker, dbt_msg_t *msg)
{
    char err [DBT_ERRMSG_LEN];
    uint64_t got = 0;
    worker->got_known = dbt_mp_get (msg->map, "got")
                     && dbt_mp_field_u64 (msg->map, "got", true, &got, err) == 0;
    worker->got = got;
}

//  Whether a slot the worker's READY or HEARTBEAT does not list was lost.
//  Not while its frame may still be on the way: it is lost when the
//  worker has had the frame (its number is at most "got": a DONE or refusal
//  would have come before), or when it gave no "got" (an older worker)
//  and the slot is older than `settle` ms; a frame not had after two
//  liveness periods was lost on the way (a socket the worker replaced).
static bool
s_slot_lost (dbt_disp_t *self, dbt_disp_worker_t *worker, const dbt_disp_slot_t *slot,
             int64_t now, int64_t settle)
{
    if (now - slot->since <= settle)
        return false;
    if (!worker->got_known || slot->frame == 0 || slot->frame <= worker->got)
        return true;
    return now - slot->since > 2 * s_liveness_ms (self);
}

static void
s_handle_ready (dbt_disp_t *self, dbt_msg_t *msg, const char *key)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *name = NULL;
    uint64_t capacity = 0;
    const msgpack_object *queues = dbt_mp_get (msg->map, "queues");
    if (dbt_mp_field_str (msg->map, "name", true, &name, err)
    ||  dbt_mp_field_u64 (msg->map, "capacity", true, &capacity, err)
    ||  !queues || queues->type != MSGPACK_OBJECT_ARRAY || capacity == 0 || capacity > 100000) {
        char what [DBT_ERRMSG_LEN + 128];
        snprintf (what, sizeof (what), "bad READY from '%s': %s", key,
                  err [0] ? err : "queues must be an array and capacity 1..100000");
        s_warn_malformed (self, what);
        free (name);
        return;
    }
    dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_lookup (self->workers, key);
    bool known = worker != NULL;
    if (!worker) {
        worker = s_worker_new (key, msg->identity);
        zhashx_insert (self->workers, key, worker);
    }
    else
    if (!worker->identity)
        worker->identity = zframe_dup (msg->identity);      //  back after our restart
    free (worker->name);
    worker->name = name;
    worker->capacity = (uint32_t) capacity;
    worker->connected = true;
    worker->full = false;
    worker->expires = dbt_clock_ms () + s_liveness_ms (self);
    worker->next_heartbeat = 0;
    s_heard (worker, msg);
    s_got (worker, msg);
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
                s_slot_busy (worker, id, attempt, dbt_clock_ms (), 0);
                if (entry && entry->state == DBT_STATE_STARTED && entry->worker
                &&  streq (entry->worker, key) && entry->attempt == attempt)
                    zhashx_update (claimed, id, (void *) 1);
                else
                    dbt_disp__send_cancel (self, worker, id, (uint32_t) attempt, "no longer assigned");
            }
            free (id);
        }
    }
    //  Jobs it finished and is about to tell again (after a failover or a
    //  reconnect): keep them assigned so that the outcome is accepted.
    const msgpack_object *finished = dbt_mp_get (msg->map, "finished");
    if (finished && finished->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < finished->via.array.size; i++) {
            const msgpack_object *item = &finished->via.array.ptr [i];
            char *id = NULL;
            uint64_t attempt = 0;
            if (dbt_mp_field_str (item, "id", true, &id, err) == 0
            &&  dbt_mp_field_u64 (item, "attempt", true, &attempt, err) == 0 && dbt_id_valid (id)
            &&  s_current (self, key, id, attempt)) {
                //  In flight until its DONE: lost if that never comes.
                s_slot_busy (worker, id, attempt, dbt_clock_ms (), 0);
                zhashx_update (claimed, id, (void *) 1);
            }
            free (id);
        }
    }
    //  Jobs we think it runs that it does not claim were lost, but for
    //  those whose frame it has not had yet.
    zlist_t *ids = dbt_queue_running_on (self->queue, key);
    zlist_t *unclaimed = zlist_new ();
    int64_t now = dbt_clock_ms ();
    for (char *id = (char *) zlist_first (ids); id; id = (char *) zlist_next (ids)) {
        if (zhashx_lookup (claimed, id))
            continue;
        dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
        char slot_key [DBT_DISP_SLOT_KEY_MAX];
        dbt_disp_slot_t *slot = entry ? (dbt_disp_slot_t *) zhashx_lookup (worker->inflight,
                                        s_slot_key (slot_key, id, entry->attempt)) : NULL;
        if (!slot || s_slot_lost (self, worker, slot, now, -1))
            zlist_append (unclaimed, id);
    }
    s_lose_jobs (self, unclaimed, key, "worker restarted");
    zlist_destroy (&unclaimed);
    zlist_destroy (&ids);
    zhashx_destroy (&claimed);
    dbt_log (DBT_LOG_INFO, "dispatcher: worker '%s' (%s) %s with %u slots", key,
             worker->name, known ? "re-registered" : "registered", worker->capacity);
}

static void
s_handle_progress (dbt_disp_t *self, dbt_msg_t *msg, const char *key)
{
    char err [DBT_ERRMSG_LEN];
    char *id = NULL;
    uint64_t attempt = 0, rows = 0;
    if (dbt_mp_field_str (msg->map, "id", true, &id, err) == 0
    &&  dbt_mp_field_u64 (msg->map, "attempt", true, &attempt, err) == 0
    &&  dbt_mp_field_u64 (msg->map, "rows", true, &rows, err) == 0
    &&  s_current (self, key, id, attempt)) {
        dbt_wtxn_t *txn = dbt_disp__txn (self, err);
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

//  The worker handed the job back without starting it (no free runner,
//  or draining): queue it again as if that attempt had never been made.
//  It counts neither as an attempt nor as an interruption. The attempt
//  number may be given again: the worker kept nothing of it (it tells a
//  refusal once, never again after a reconnect), so nothing can still
//  speak for it.
static void
s_give_back (dbt_disp_t *self, dbt_entry_t *entry, const char *worker_key, uint64_t attempt)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = dbt_disp__txn (self, err);
    dbt_job_t *job = NULL;
    if (!txn || dbt_wtxn_job (txn, entry->id, &job, err)) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot requeue job '%s': %s", entry->id, err);
        return;
    }
    char id [DBT_ID_MAX + 1];
    snprintf (id, sizeof (id), "%s", entry->id);
    dbt_job_set (&job->worker, NULL);
    if (job->attempts == attempt && job->attempts > 0)
        job->attempts--;
    if (job->cancelled || entry->cancelling) {
        job->state = DBT_STATE_FAILURE;
        job->finished_ms = dbt_time_ms ();
        dbt_job_set (&job->error, "the job was canceled");
        dbt_queue_remove (self->queue, id);
        self->stats [ST_FAILED]++;
    }
    else {
        job->state = DBT_STATE_PENDING;
        job->rows = 0;
        dbt_queue_requeue (self->queue, entry, DBT_STATE_PENDING, 0);
    }
    if (dbt_wtxn_put_job (txn, job, err))
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot requeue job '%s': %s", id, err);
    dbt_log (DBT_LOG_INFO, "dispatcher: worker '%s' had no free runner for job '%s', %s", worker_key,
             id, job->state == DBT_STATE_PENDING ? "queued again" : "failed");
    dbt_job_destroy (&job);
}

static void
s_handle_done (dbt_disp_t *self, dbt_msg_t *msg, dbt_disp_worker_t *worker)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *id = NULL, *error = NULL;
    uint64_t attempt = 0, rows = 0;
    bool ok = false, cancelled = false, interrupted = false, again = false, refused = false;
    dbt_mp_field_bool (msg->map, "again", false, &again, err);
    if (dbt_mp_field_str (msg->map, "id", true, &id, err)
    ||  dbt_mp_field_u64 (msg->map, "attempt", true, &attempt, err)
    ||  dbt_mp_field_bool (msg->map, "ok", true, &ok, err)
    ||  dbt_mp_field_u64 (msg->map, "rows", false, &rows, err)
    ||  dbt_mp_field_str (msg->map, "error", false, &error, err)
    ||  dbt_mp_field_bool (msg->map, "cancelled", false, &cancelled, err)
    ||  dbt_mp_field_bool (msg->map, "interrupted", false, &interrupted, err)
    ||  dbt_mp_field_bool (msg->map, "refused", false, &refused, err)) {
        char what [DBT_ERRMSG_LEN + 128];
        snprintf (what, sizeof (what), "bad DONE from '%s': %s", worker->key, err);
        s_warn_malformed (self, what);
        goto done;
    }
    //  That attempt's slot is free (one of a job's other attempts may still
    //  hold another). A worker that refused a job is full whatever we count:
    //  give it nothing until it tells us more (DONE, HEARTBEAT, READY).
    s_slot_free (worker, id, attempt);
    worker->full = refused;
    dbt_entry_t *entry = s_current (self, worker->key, id, attempt);
    if (!entry) {
        //  (An outcome told again after a reconnect is usually known already.)
        dbt_log (again ? DBT_LOG_DEBUG : DBT_LOG_INFO, "dispatcher: ignoring the outcome of attempt %" PRIu64
                 " of job '%s' from worker '%s': not the job's current attempt there", attempt, id,
                 worker->key);
        goto done;
    }
    if (refused) {
        s_give_back (self, entry, worker->key, attempt);
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
    dbt_wtxn_t *txn = dbt_disp__txn (self, err);
    dbt_job_t *job = NULL;
    if (!txn || dbt_wtxn_job (txn, id, &job, err)) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot record outcome of '%s' yet: %s", id, err);
        self->keep = KEEP_REPLAY;
        goto done;
    }
    self->keep = KEEP_OUTCOME;          //  until the commit says it is kept
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
            job->rows = 0;              //  nothing of the failed attempt is kept
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

//  A worker's heartbeat lists the jobs it runs: the slots it has busy.
//  A job we gave it that it does not list, when it has had the job's
//  frame ("got", see s_slot_lost) and the job is older than two
//  heartbeats, was lost there: run it again rather than wait for it
//  forever. A listed attempt we did not count holds a slot all the same
//  (we forgot it after a rebuild, or lost it while its frame was on the
//  way): count it until the worker frees it, and stop it if it is not
//  the job's current attempt there.
static void
s_reconcile (dbt_disp_t *self, dbt_disp_worker_t *worker, dbt_msg_t *msg)
{
    const msgpack_object *running = dbt_mp_get (msg->map, "running");
    if (!running || running->type != MSGPACK_OBJECT_ARRAY)
        return;
    s_got (worker, msg);
    char err [DBT_ERRMSG_LEN];
    int64_t now = dbt_clock_ms ();
    zhashx_t *listed = zhashx_new ();
    for (uint32_t i = 0; i < running->via.array.size; i++) {
        const msgpack_object *item = &running->via.array.ptr [i];
        char *id = NULL;
        uint64_t attempt = 0;
        if (dbt_mp_field_str (item, "id", true, &id, err) == 0
        &&  dbt_mp_field_u64 (item, "attempt", true, &attempt, err) == 0 && dbt_id_valid (id)) {
            char key [DBT_DISP_SLOT_KEY_MAX];
            s_slot_key (key, id, attempt);
            zhashx_update (listed, key, (void *) 1);
            if (!zhashx_lookup (worker->inflight, key)) {
                s_slot_busy (worker, id, attempt, now, 0);
                if (!s_current (self, worker->key, id, attempt))
                    dbt_disp__send_cancel (self, worker, id, (uint32_t) attempt, "no longer assigned");
            }
        }
        free (id);
    }
    zlist_t *missing = zlist_new ();
    zlist_autofree (missing);
    for (dbt_disp_slot_t *slot = (dbt_disp_slot_t *) zhashx_first (worker->inflight); slot;
         slot = (dbt_disp_slot_t *) zhashx_next (worker->inflight)) {
        const char *key = (const char *) zhashx_cursor (worker->inflight);
        if (!zhashx_lookup (listed, key)
        &&  s_slot_lost (self, worker, slot, now, 2 * self->config->heartbeat_ms))
            zlist_append (missing, (void *) key);
    }
    zlist_t *lost = zlist_new ();
    zlist_autofree (lost);
    for (char *key = (char *) zlist_first (missing); key; key = (char *) zlist_next (missing)) {
        zhashx_delete (worker->inflight, key);
        char *hash = strrchr (key, '#');
        if (!hash)
            continue;
        *hash = 0;
        uint64_t attempt = strtoull (hash + 1, NULL, 10);
        if (s_current (self, worker->key, key, attempt))
            zlist_append (lost, key);
    }
    s_lose_jobs (self, lost, worker->key, "the worker does not have it");
    zlist_destroy (&lost);
    zlist_destroy (&missing);
    zhashx_destroy (&listed);
}

static void
s_handle_worker (dbt_disp_t *self, dbt_msg_t *msg)
{
    //  Only peers with a worker routing id may speak the worker protocol;
    //  a DEALER without one (libzmq's generated ids start with a 0 byte)
    //  would otherwise become a worker nobody can tell apart.
    const char *id = (const char *) zframe_data (msg->identity);
    size_t id_len = zframe_size (msg->identity);
    if (!dbt_msg_worker_identity_ok (id, id_len)) {
        s_warn_malformed (self, "worker message from a peer without a worker identity");
        return;
    }
    char key [DBT_WORKER_DISPLAY_MAX];
    dbt_msg_worker_display (id, id_len, key);
    dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_lookup (self->workers, key);
    if (worker && worker->identity && !zframe_eq (worker->identity, msg->identity)) {
        s_warn_malformed (self, "worker message from a second peer with the display id of a known worker");
        return;
    }
    if (self->pair) {
        //  The worker's node: its routing id is "<node>/<hex>".
        char node [DBT_WORKER_DISPLAY_MAX];
        const char *slash = memchr (key, '/', strlen (key));
        size_t len = slash ? (size_t) (slash - key) : 0;
        memcpy (node, key, len);
        node [len] = 0;
        dbt_disp__pair_heard (self, node, len);
        if (!dbt_disp__serving (self) && !dbt_disp__pair_admit (self, msg, 0, true, node))
            return;                     //  told to go to the active partner
    }
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
            case DBT_W_HEARTBEAT:
                worker->full = false;       //  its count is ours again now
                s_heard (worker, msg);
                s_reconcile (self, worker, msg);
                break;
            case DBT_W_CREDIT: {
                worker->full = false;
                uint64_t capacity = 0;
                char err [DBT_ERRMSG_LEN];
                if (dbt_mp_field_u64 (msg->map, "capacity", true, &capacity, err) == 0
                &&  capacity <= 100000)
                    worker->capacity = (uint32_t) capacity;
                break;
            }
            default: {
                char what [160];
                snprintf (what, sizeof (what), "unknown command 0x%02x from worker '%s'", msg->command, key);
                s_warn_malformed (self, what);
            }
        }
    }
}

//  A worker we no longer hear may still hear us: before its jobs run
//  again elsewhere, tell it to stop them (best effort; its own fence
//  stops them anyway). As a fence, so that it hands them back interrupted.
static void
s_cancel_lost (dbt_disp_t *self, dbt_disp_worker_t *worker)
{
    zlist_t *ids = dbt_queue_running_on (self->queue, worker->key);
    for (char *id = (char *) zlist_first (ids); id; id = (char *) zlist_next (ids)) {
        dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
        if (!entry)
            continue;
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "id", id);
        dbt_mpw_ku64 (self->writer, "attempt", entry->attempt);
        dbt_mpw_kstr (self->writer, "reason", "the dispatcher stopped hearing this worker");
        dbt_mpw_kbool (self->writer, "fence", true);
        dbt_mpw_end (self->writer);
        s_send_worker (self, worker, DBT_W_CANCEL, self->writer);
        dbt_mpw_reset (self->writer);
    }
    zlist_destroy (&ids);
}

//  Expire silent workers; send heartbeats.
static void
s_check_workers (dbt_disp_t *self)
{
    int64_t now = dbt_clock_ms ();
    zlist_t *dead = zlist_new ();
    //  A pair member that may be cut off keeps silent workers' jobs: its
    //  fence stops them, or someone is heard again and they expire then.
    bool quiet = dbt_disp__pair_quiet (self);
    //  Time we were not listening (a commit's fsync on a busy disk, a
    //  starved thread) is no silence of the workers: their messages wait
    //  in our socket. Nor is a turn that left messages unread the time to
    //  call anyone dead.
    int64_t stalled = self->checked && now - self->checked > self->config->heartbeat_ms
                    ? now - self->checked : 0;
    self->checked = now;
    bool unread = (zsock_events (self->router) & ZMQ_POLLIN) != 0;
    for (dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_first (self->workers); worker;
         worker = (dbt_disp_worker_t *) zhashx_next (self->workers)) {
        if (worker->connected)
            worker->expires += stalled;
        if (worker->expires <= now) {
            if (!quiet && !unread)
                zlist_append (dead, worker);
        }
        else
        if (worker->connected && worker->next_heartbeat <= now) {
            dbt_mpw_map (self->writer);
            dbt_mpw_kstr (self->writer, "instance", self->instance);
            if (worker->heard)
                dbt_mpw_ku64 (self->writer, "heard", worker->heard);
            dbt_mpw_end (self->writer);
            s_send_worker (self, worker, DBT_W_HEARTBEAT, self->writer);
            dbt_mpw_reset (self->writer);
            //  In a pair, twice as often: a worker whose dispatcher fails
            //  finds the partner before it would stop its jobs.
            worker->next_heartbeat = now + (self->pair ? self->config->heartbeat_ms / 2
                                                       : self->config->heartbeat_ms);
        }
    }
    for (dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zlist_first (dead); worker;
         worker = (dbt_disp_worker_t *) zlist_next (dead)) {
        dbt_log (DBT_LOG_WARN, "dispatcher: worker '%s' %s", worker->key,
                 worker->connected ? "missed its heartbeats" : "did not come back after restart");
        if (worker->connected)
            s_cancel_lost (self, worker);
        s_lose_worker (self, worker, worker->connected ? "missed heartbeats" : "dispatcher restarted");
        zhashx_delete (self->workers, worker->key);
    }
    zlist_destroy (&dead);
}

//  --------------------------------------------------------------------------
//  Dispatch: give ready jobs to workers with free slots.

static bool
s_assign (dbt_disp_t *self, dbt_disp_worker_t *worker, dbt_entry_t *entry)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = dbt_disp__txn (self, err);
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
    job->frame = ++self->frame;
    s_slot_busy (worker, job->id, job->attempts, dbt_clock_ms (), job->frame);
    dbt_job_pack (job, self->writer);
    zmsg_t *msg = dbt_msg_encode (worker->identity, DBT_PROTO_WORKER, DBT_W_JOB, self->writer);
    dbt_disp_out_t *out = s_out (self, OUT_JOB, msg);
    out->worker = dbt_strdup (worker->key);
    out->job_id = dbt_strdup (job->id);
    out->attempt = job->attempts;
    self->stats [ST_STARTED]++;
    dbt_log (DBT_LOG_DEBUG, "dispatcher: job '%s' attempt %u to worker '%s'",
             job->id, job->attempts, worker->key);
    dbt_job_destroy (&job);
    return true;
}

void
dbt_disp__fence_workers (dbt_disp_t *self, const char *reason)
{
    for (dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_first (self->workers); worker;
         worker = (dbt_disp_worker_t *) zhashx_next (self->workers)) {
        if (!worker->connected)
            continue;
        zlist_t *ids = dbt_queue_running_on (self->queue, worker->key);
        for (char *id = (char *) zlist_first (ids); id; id = (char *) zlist_next (ids)) {
            dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
            if (!entry)
                continue;
            dbt_mpw_t *w = dbt_mpw_new ();
            dbt_mpw_map (w);
            dbt_mpw_kstr (w, "id", id);
            dbt_mpw_ku64 (w, "attempt", entry->attempt);
            dbt_mpw_kstr (w, "reason", reason);
            dbt_mpw_kbool (w, "fence", true);
            dbt_mpw_end (w);
            s_send_worker (self, worker, DBT_W_CANCEL, w);
            dbt_mpw_destroy (&w);
        }
        zlist_destroy (&ids);
    }
}

static void
s_dispatch (dbt_disp_t *self)
{
    if (self->isolated || dbt_disp__pair_quiet (self))
        return;                         //  cut off: its partner may be running these
    size_t assigned = 0;
    bool progress = true;
    while (progress && assigned < MAX_MSGS_PER_TURN) {
        progress = false;
        for (dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_first (self->workers); worker;
             worker = (dbt_disp_worker_t *) zhashx_next (self->workers)) {
            if (!worker->connected || worker->full
            ||  zhashx_size (worker->inflight) >= worker->capacity)
                continue;
            //  Rotate through the worker's queues so none starves.
            size_t nqueues = zlist_size (worker->queues);
            for (size_t i = 0; i < nqueues; i++) {
                char *queue = (char *) zlist_pop (worker->queues);
                zlist_append (worker->queues, queue);       //  appends a copy (autofree)
                free (queue);
                queue = (char *) zlist_last (worker->queues);
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
//  A worker's message: handled, then kept when it carried an outcome that
//  is not yet committed (consumed).

static void
s_worker_message (dbt_disp_t *self, dbt_msg_t *msg, bool replayed)
{
    self->keep = KEEP_NONE;
    if (!replayed)
        s_handle_worker (self, msg);
    else {
        //  Only the outcome again, for the worker that told it: not a sign
        //  of life (its expiry stays), and nothing for a worker gone since.
        char key [DBT_WORKER_DISPLAY_MAX];
        dbt_msg_worker_display ((const char *) zframe_data (msg->identity),
                                zframe_size (msg->identity), key);
        dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_lookup (self->workers, key);
        if (worker && worker->connected && worker->identity
        &&  zframe_eq (worker->identity, msg->identity))
            s_handle_done (self, msg, worker);
    }
    if (self->keep == KEEP_OUTCOME)
        zlistx_add_end (self->outcomes, msg);
    else
    if (self->keep == KEEP_REPLAY)
        zlistx_add_end (self->replay, msg);
    else
        dbt_msg_destroy (&msg);
    self->keep = KEEP_NONE;
}

//  --------------------------------------------------------------------------
//  End of a turn: commit, then send.

static void
s_flush (dbt_disp_t *self)
{
    char err [DBT_ERRMSG_LEN] = "";
    int rc = 0;
    if (self->txn) {
        dbt_disp__state_prepare (self);
        rc = dbt_wtxn_commit (&self->txn, err);
        self->stats [ST_COMMITS]++;
        //  Group commit: how many client requests this commit made durable.
        uint64_t acks = 0;
        for (dbt_disp_out_t *out = (dbt_disp_out_t *) zlistx_first (self->outbox);
             rc == 0 && out; out = (dbt_disp_out_t *) zlistx_next (self->outbox))
            acks += out->kind == OUT_ACK;
        self->stats [ST_ACKS] += acks;
        self->stats [ST_ACK_COMMITS] += acks > 0;
        dbt_disp__state_publish (self, rc == 0);
    }
    //  The outcomes of the turn: kept, or to be handled again.
    dbt_msg_t *done;
    while ((done = (dbt_msg_t *) zlistx_detach (self->outcomes, NULL))) {
        if (rc)
            zlistx_add_end (self->replay, done);
        else
            dbt_msg_destroy (&done);
    }
    if (rc) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: commit failed, turn undone: %s", err);
        if (rc == DBT_EFULL) {
            self->full = true;
            self->space_due = 0;
        }
        //  Undo the turn's job assignments in worker accounting.
        for (dbt_disp_out_t *out = (dbt_disp_out_t *) zlistx_first (self->outbox); out;
             out = (dbt_disp_out_t *) zlistx_next (self->outbox)) {
            if (out->kind == OUT_JOB) {
                dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_lookup (self->workers, out->worker);
                if (worker)
                    s_slot_free (worker, out->job_id, out->attempt);
            }
        }
        dbt_disp__rebuild (self);
    }
    dbt_disp_out_t *out;
    while ((out = (dbt_disp_out_t *) zlistx_detach (self->outbox, NULL))) {
        if (rc && out->kind == OUT_ACK) {
            dbt_disp__reply_begin (self, out->rid, rc == DBT_EFULL ? 507 : 503,
                           rc == DBT_EFULL ? "state store is full: nothing of the request was kept"
                                           : "state store error: nothing of the request was kept");
            dbt_mpw_nil (self->writer);
            dbt_mpw_end (self->writer);
            zmsg_t *msg = dbt_msg_encode (out->identity, DBT_PROTO_CLIENT, DBT_C_REPLY, self->writer);
            if (zmsg_send (&msg, self->router))
                zmsg_destroy (&msg);
        }
        else
        if (!(rc && out->kind == OUT_JOB)) {
            if (out->kind == OUT_ACK) {
                //  Where the change can be seen: the update sequence that
                //  carries it, and which dispatcher run made it.
                dbt_mpw_ku64 (self->writer, "seq", self->pubseq);
                dbt_mpw_kstr (self->writer, "node", self->config->worker_name);
                dbt_mpw_kstr (self->writer, "instance", self->instance);
                dbt_msg_extend (out->msg, self->writer, 3);
            }
            //  A failover pair with sync replication sends it once the
            //  partner has committed the turn too.
            if (dbt_disp__pair_hold (self, out))
                continue;
            dbt_disp__send_out (self, out);
        }
        dbt_disp__out_free ((void **) &out);
    }
}

void
dbt_disp__send_out (dbt_disp_t *self, dbt_disp_out_t *out)
{
    if (zmsg_send (&out->msg, self->router)) {
        if (out->kind == OUT_JOB) {
            //  The worker vanished between turns: expire it now.
            dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_lookup (self->workers, out->worker);
            if (worker)
                worker->expires = 0;
        }
        dbt_log (DBT_LOG_DEBUG, "dispatcher: cannot send: %s", zmq_strerror (errno));
    }
}

//  --------------------------------------------------------------------------
//  Pipe

static void
s_handle_pipe (dbt_disp_t *self)
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
    if (streq (command, "LOCAL"))
        zstr_send (self->pipe, self->local);
    else
    if (streq (command, "INSTANCE"))
        zstr_send (self->pipe, self->instance);
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
    dbt_thread_name ("dbt-dispatcher");
    dbt_dispatcher_args_t *a = (dbt_dispatcher_args_t *) args;
    dbt_disp_t *self = (dbt_disp_t *) dbt_malloc (sizeof (dbt_disp_t));
    self->pipe = pipe;
    self->config = a->config;
    self->tasks = a->tasks;
    self->store = a->store;
    self->routes = a->routes;
    self->view = a->view;
    self->queue = dbt_queue_new ();
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, s_worker_free);
    self->outbox = zlistx_new ();
    zlistx_set_destructor (self->outbox, dbt_disp__out_free);
    self->outcomes = zlistx_new ();
    self->replay = zlistx_new ();
    self->qstats = zhashx_new ();
    zhashx_set_destructor (self->qstats, (zhashx_destructor_fn *) zstr_free);
    self->dropping = zhashx_new ();
    self->writer = dbt_mpw_new ();
    dbt_uuid (self->instance);
    self->rng = dbt_random64 () | 1;
    self->frame = (uint64_t) dbt_time_ms () * 1000;

    self->router = zsock_new (ZMQ_ROUTER);
    dbt_msg_limit (self->router);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_router_handover (self->router, 1);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_sndtimeo (self->router, 0);       //  never block on a slow peer
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_rcvtimeo (self->router, 0);       //  the turn drains without blocking
    zsock_set_linger (self->router, 1000);
    int status = 0;
    if (dbt_curve_apply (self->config->curve, self->router, DBT_CURVE_SERVER, "dispatcher"))
        status = 1;
    else
    if (zsock_bind (self->router, "%s", self->config->mesh_bind) < 0) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot bind '%s': %s", self->config->mesh_bind,
                 zmq_strerror (errno));
        status = 1;
    }
    else {
        self->endpoint = dbt_strdup (zsock_endpoint (self->router));
        self->local = dbt_printf ("inproc://dbt-dispatcher-%s", self->instance);
        if (zsock_bind (self->router, "%s", self->local) < 0) {
            dbt_log (DBT_LOG_ERROR, "dispatcher: cannot bind '%s': %s", self->local, zmq_strerror (errno));
            status = 1;
        }
        if (!status && dbt_disp__state_start (self))
            status = 1;
        if (!status && dbt_disp__pair_start (self))
            status = 1;
        //  A member of a pair loads its schedule once it is active.
        int loaded = status ? -1 : self->pair ? 0 : dbt_disp__rebuild (self);
        if (loaded < 0)
            status = 1;
        else
            dbt_log (DBT_LOG_INFO, "dispatcher: listening on %s, %d unfinished jobs loaded",
                     self->endpoint, loaded);
    }
    zsock_signal (pipe, (byte) status);
    zmq_pollitem_t items [8];
    while (status == 0 && !self->terminated) {
        //  Sleep until input, the next eta, or the next heartbeat.
        int64_t now = dbt_time_ms ();
        int64_t next_eta = dbt_queue_promote (self->queue, now);
        int64_t timeout = self->config->heartbeat_ms / 2;
        if (next_eta && next_eta - now < timeout)
            timeout = next_eta - now;
        if (self->publisher && self->hugz_due - dbt_clock_ms () < timeout)
            timeout = self->hugz_due - dbt_clock_ms ();
        if (dbt_disp__pair_timeout (self) < timeout)
            timeout = dbt_disp__pair_timeout (self);
        if (timeout < 1)
            timeout = 1;
        size_t nitems = 0;
        items [nitems++] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        items [nitems++] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
        if (self->publisher)
            items [nitems++] = (zmq_pollitem_t) { zsock_resolve (self->publisher), 0, ZMQ_POLLIN, 0 };
        nitems += dbt_disp__pair_items (self, items + nitems);
        if (zmq_poll (items, (int) nitems, (long) timeout) < 0 && errno != EINTR)
            break;                      //  the context is terminating
        if (items [0].revents & ZMQ_POLLIN)
            s_handle_pipe (self);
        if (self->publisher && (zsock_events (self->publisher) & ZMQ_POLLIN))
            dbt_disp__state_subscription (self);
        if (self->terminated)
            break;
        s_check_space (self);
        //  Outcomes a failed commit undid come first, before any heartbeat
        //  that no longer lists their jobs.
        dbt_msg_t *kept;
        zlistx_t *replay = self->replay;
        self->replay = zlistx_new ();
        while ((kept = (dbt_msg_t *) zlistx_detach (replay, NULL)))
            s_worker_message (self, kept, true);
        zlistx_destroy (&replay);
        //  Drain what has arrived (the router never blocks: rcvtimeo 0),
        //  so that one commit covers every request queued meanwhile.
        for (size_t n = 0; n < MAX_MSGS_PER_TURN; n++) {
            char err [DBT_ERRMSG_LEN];
            dbt_msg_t *msg = dbt_msg_recv (self->router, true, err);
            if (!msg) {
                if (!err [0])
                    break;          //  nothing more
                s_warn_malformed (self, err);
                continue;
            }
            if (streq (msg->signature, DBT_PROTO_CLIENT)) {
                dbt_disp__handle_client (self, msg);
                dbt_msg_destroy (&msg);
            }
            else
                s_worker_message (self, msg, false);
        }
        if (dbt_disp__serving (self)) {
            dbt_queue_promote (self->queue, dbt_time_ms ());
            s_check_workers (self);
            s_dispatch (self);
        }
        s_flush (self);
        dbt_disp__pair_tick (self);
        if (dbt_disp__serving (self))
            dbt_disp__state_tick (self);
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
    dbt_disp__pair_stop (self);
    dbt_disp__state_stop (self);
    zsock_destroy (&self->router);
    zlistx_destroy (&self->outbox);
    dbt_msg_t *left;
    while ((left = (dbt_msg_t *) zlistx_detach (self->outcomes, NULL)))
        dbt_msg_destroy (&left);
    while ((left = (dbt_msg_t *) zlistx_detach (self->replay, NULL)))
        dbt_msg_destroy (&left);
    zlistx_destroy (&self->outcomes);
    zlistx_destroy (&self->replay);
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->qstats);
    zhashx_destroy (&self->dropping);
    dbt_queue_destroy (&self->queue);
    dbt_mpw_destroy (&self->writer);
    free (self->endpoint);
    free (self->local);
    free (self);
}
