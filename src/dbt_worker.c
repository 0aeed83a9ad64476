/*  =========================================================================
    dbt_worker - the worker actor: runs jobs of some queues

    See dbt_worker.h. Threads: the worker actor owns the DEALER and one
    slot per runner thread. A runner thread only runs dbt_runner_run and
    talks to the worker over its actor pipe: "RUN" + job (worker to
    runner), "PROGRESS" + rows and "DONE" + code, rows, error (runner to
    worker). The cancel token of a slot is the one piece of memory both
    threads touch, and it has its own lock.
    =========================================================================
*/
#include "dbt_classes.h"

#define CANCEL_REPEAT_MS   1000     //  repeat a cancel until the job stops
#define PROGRESS_EVERY_MS  1000     //  progress forwarded per job
#define OUTCOMES_MAX       1024     //  recent outcomes kept for a new dispatcher
#define SENT_MAX           64       //  numbered heartbeats remembered for echoes

//  An outcome sent lately: told again to a dispatcher we register with
//  anew, which may not have it (its partner took it, then failed).
typedef struct {
    char *id;
    uint32_t attempt;
    bool ok, cancelled, interrupted;
    bool refused;               //  handed back unstarted (never kept, never told again)
    uint64_t rows;
    char *error;
    int64_t at;                 //  monotonic ms it was sent
} s_outcome_t;

//  What a runner thread is given.
typedef struct {
    const dbt_runner_ctx_t *ctx;    //  shared, read-only
    dbt_cancel_t *cancel;           //  its slot's token
} s_runner_args_t;

//  One runner thread and the job it runs.
typedef struct {
    zactor_t *actor;            //  the runner thread
    s_runner_args_t args;       //  its arguments
    dbt_job_t *job;             //  running job, NULL when idle
    int64_t deadline;           //  monotonic ms of the job's time limit, 0 = none
    int64_t cancel_again;       //  monotonic ms to repeat a cancel, 0 = none
    bool by_request;            //  cancelled by the dispatcher (DELETE)
    bool fenced;                //  stopped because the dispatcher went silent
    uint64_t rows;              //  rows written so far
    int64_t next_progress;      //  monotonic ms of the next forward
    bool progress_pending;      //  rows changed since last forward
} s_slot_t;

typedef struct {
    zsock_t *pipe;              //  actor pipe
    zsock_t *dealer;            //  to the dispatcher
    zpoller_t *poller;          //  pipe, dealer, runners
    dbt_worker_args_t *args;    //  borrowed
    char *endpoint;             //  dispatcher endpoint connected to, or NULL
    zlist_t *outcomes;          //  s_outcome_t, oldest first
    int64_t switch_due;         //  monotonic ms before which no other pair member is tried
    char *identity;             //  stable routing id (secret: never logged)
    char display [DBT_WORKER_DISPLAY_MAX];  //  the id shown in records and logs
    s_slot_t *slots;            //  one per runner
    int nslots;                 //  capacity
    int64_t last_heard;         //  monotonic ms of the dispatcher's last message
    int64_t next_heartbeat;     //  monotonic ms of our next heartbeat
    uint64_t hb;                //  sequence of our last numbered message (READY, HEARTBEAT)
    uint64_t got;               //  the newest job frame number had on this socket ("got")
    struct { uint64_t hb; int64_t at; } sent [SENT_MAX];   //  when each was sent, by hb % SENT_MAX
    bool echoes;                //  this dispatcher echoes what it heard from us ("heard")
    int64_t confirmed;          //  monotonic ms we sent the newest message it echoed
    dbt_mpw_t *writer;          //  scratch encoder
    bool waiting;               //  no dispatcher known for the queue yet
    bool draining;              //  take no more jobs
    bool drain_reply;           //  owe "DRAINED" on the pipe
    bool terminated;            //  $TERM received
} self_t;

//  --------------------------------------------------------------------------
//  Runner thread

static void
s_progress (uint64_t rows, void *arg)
{
    zsock_send ((zsock_t *) arg, "s8is", "PROGRESS", rows, 0, "");
}

static void
s_runner_actor (zsock_t *pipe, void *args)
{
    dbt_thread_name ("dbt-runner");
    s_runner_args_t *a = (s_runner_args_t *) args;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = NULL;
        zchunk_t *body = NULL;
        if (zsock_recv (pipe, "sc", &command, &body) || !command || streq (command, "$TERM")) {
            free (command);
            zchunk_destroy (&body);
            break;
        }
        char err [DBT_ERRMSG_LEN] = "";
        uint64_t rows = 0;
        int rc = DBT_EINVAL;
        dbt_mpr_t *reader = body ? dbt_mpr_new (zchunk_data (body), zchunk_size (body), err) : NULL;
        dbt_job_t *job = reader ? dbt_job_unpack (dbt_mpr_root (reader), err) : NULL;
        if (job)
            rc = dbt_runner_run (a->ctx, job, a->cancel, s_progress, pipe, &rows, err);
        zsock_send (pipe, "s8is", "DONE", rows, rc, err);
        dbt_job_destroy (&job);
        dbt_mpr_destroy (&reader);
        zchunk_destroy (&body);
        free (command);
    }
}

//  --------------------------------------------------------------------------
//  Talking to the dispatcher

static void
s_send (self_t *self, int command)
{
    if (self->waiting) {
        dbt_mpw_reset (self->writer);       //  connected to nobody yet
        return;
    }
    if (dbt_msg_send (self->dealer, NULL, DBT_PROTO_WORKER, command, self->writer))
        dbt_log (DBT_LOG_DEBUG, "worker: send failed: %s", zmq_strerror (errno));
}

//  Number a READY or HEARTBEAT (field "hb") and remember when it left:
//  the dispatcher's heartbeat echoes the last number it got ("heard").
//  Say which job frames we have had ("got"): a job we do not list whose
//  frame is newer is still on its way to us, not lost.
static void
s_write_hb (self_t *self, dbt_mpw_t *w)
{
    dbt_mpw_ku64 (w, "got", self->got);
    self->hb++;
    dbt_mpw_ku64 (w, "hb", self->hb);
    self->sent [self->hb % SENT_MAX].hb = self->hb;
    self->sent [self->hb % SENT_MAX].at = dbt_clock_ms ();
}

//  A dispatcher heartbeat: what it echoes is the newest of our messages
//  we know it received; ours sent since may be late or lost.
static void
s_handle_heartbeat (self_t *self, dbt_msg_t *msg)
{
    uint64_t heard = 0;
    char err [DBT_ERRMSG_LEN];
    if (!dbt_mp_get (msg->map, "heard")
    ||  dbt_mp_field_u64 (msg->map, "heard", true, &heard, err))
        return;                     //  an older dispatcher: no echoes
    //  A number we never sent or no longer remember confirms nothing.
    if (heard == 0 || heard > self->hb || self->sent [heard % SENT_MAX].hb != heard)
        return;
    self->echoes = true;
    if (self->sent [heard % SENT_MAX].at > self->confirmed)
        self->confirmed = self->sent [heard % SENT_MAX].at;
}

//  While draining, tell the dispatcher our capacity is what still runs.
static void
s_send_credit (self_t *self)
{
    int busy = 0;
    for (int i = 0; i < self->nslots; i++)
        busy += self->slots [i].job != NULL;
    dbt_mpw_map (self->writer);
    dbt_mpw_ku64 (self->writer, "capacity", (uint64_t) busy);
    dbt_mpw_end (self->writer);
    s_send (self, DBT_W_CREDIT);
}

//  Write the "running" field: the jobs our runners hold.
static void
s_write_running (self_t *self, dbt_mpw_t *w)
{
    dbt_mpw_str (w, "running");
    dbt_mpw_array (w);
    for (int i = 0; i < self->nslots; i++) {
        dbt_job_t *job = self->slots [i].job;
        if (job) {
            dbt_mpw_map (w);
            dbt_mpw_kstr (w, "id", job->id);
            dbt_mpw_ku64 (w, "attempt", job->attempts);
            dbt_mpw_end (w);
        }
    }
    dbt_mpw_end (w);
}

static void
s_outcome_free (s_outcome_t **outcome_p)
{
    s_outcome_t *outcome = *outcome_p;
    if (outcome) {
        free (outcome->id);
        free (outcome->error);
        free (outcome);
        *outcome_p = NULL;
    }
}

static void
s_write_done (dbt_mpw_t *w, const s_outcome_t *o, bool again)
{
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", o->id);
    dbt_mpw_ku64 (w, "attempt", o->attempt);
    dbt_mpw_kbool (w, "ok", o->ok);
    dbt_mpw_ku64 (w, "rows", o->rows);
    if (o->error && *o->error)
        dbt_mpw_kstr (w, "error", o->error);
    dbt_mpw_kbool (w, "cancelled", o->cancelled);
    dbt_mpw_kbool (w, "interrupted", o->interrupted);
    if (o->refused)
        dbt_mpw_kbool (w, "refused", true);
    if (again)
        dbt_mpw_kbool (w, "again", true);
    dbt_mpw_end (w);
}

//  Forget outcomes older than the liveness period: a dispatcher has them
//  (a failover partner takes over well within it).
static void
s_prune_outcomes (self_t *self)
{
    int64_t keep = dbt_clock_ms () - self->args->runner.config->heartbeat_ms
                                   * self->args->runner.config->heartbeat_liveness;
    s_outcome_t *outcome;
    while ((outcome = (s_outcome_t *) zlist_first (self->outcomes)) && outcome->at < keep) {
        zlist_pop (self->outcomes);
        s_outcome_free (&outcome);
    }
}

//  Write the "finished" field of READY: the recent outcomes we are about
//  to tell again, so that a new dispatcher keeps those jobs assigned to
//  us (same attempt) instead of running them again.
static void
s_write_finished (self_t *self, dbt_mpw_t *w)
{
    dbt_mpw_str (w, "finished");
    dbt_mpw_array (w);
    for (s_outcome_t *outcome = (s_outcome_t *) zlist_first (self->outcomes); outcome;
         outcome = (s_outcome_t *) zlist_next (self->outcomes)) {
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "id", outcome->id);
        dbt_mpw_ku64 (w, "attempt", outcome->attempt);
        dbt_mpw_end (w);
    }
    dbt_mpw_end (w);
}

//  Tell the recent outcomes again (after READY).
static void
s_resend_outcomes (self_t *self)
{
    s_outcome_t *outcome;
    for (outcome = (s_outcome_t *) zlist_first (self->outcomes); outcome;
         outcome = (s_outcome_t *) zlist_next (self->outcomes)) {
        s_write_done (self->writer, outcome, true);
        s_send (self, DBT_W_DONE);
    }
}

static void
s_send_ready (self_t *self, bool vote)
{
    dbt_mpw_t *w = self->writer;
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "name", self->args->runner.config->worker_name);
    dbt_mpw_str (w, "queues");
    dbt_mpw_array (w);
    for (size_t i = 0; i < self->args->nqueues; i++)
        dbt_mpw_str (w, self->args->queues [i]);
    dbt_mpw_end (w);
    dbt_mpw_ku64 (w, "capacity", (uint64_t) self->nslots);
    s_write_running (self, w);
    s_prune_outcomes (self);
    s_write_finished (self, w);
    if (vote)
        dbt_mpw_kbool (w, "vote", true);    //  we could not reach its failover partner
    s_write_hb (self, w);
    dbt_mpw_end (w);
    s_send (self, DBT_W_READY);
    if (self->draining)
        s_send_credit (self);       //  re-registering reset our capacity
}

//  New socket to the dispatcher: at start, when it went silent, or when
//  it sent us to its failover partner. to: that endpoint, NULL = ask the
//  routes; vote: we failed to reach to's partner. A worker that
//  registered before tells its recent outcomes again.
static void
s_connect (self_t *self, const char *to, bool vote)
{
    bool again = self->endpoint != NULL;
    if (self->dealer) {
        zpoller_remove (self->poller, self->dealer);
        zsock_destroy (&self->dealer);
    }
    self->dealer = zsock_new (ZMQ_DEALER);
    dbt_msg_limit (self->dealer);
    zsock_set_identity (self->dealer, self->identity);
    zsock_set_linger (self->dealer, 500);
    zsock_set_sndhwm (self->dealer, 100000);
    zsock_set_sndtimeo (self->dealer, 1000);    //  never hang on a vanished peer
    char *endpoint = to ? dbt_strdup (to)
                   : self->args->endpoint ? dbt_strdup (self->args->endpoint)
                   : dbt_routes_dispatcher (self->args->routes, self->args->queues [0]);
    if (!endpoint) {
        if (self->endpoint || !self->waiting)
            dbt_log (DBT_LOG_INFO, "worker: no dispatcher known yet for queue '%s', waiting",
                     self->args->queues [0]);
        self->waiting = true;
    }
    else
    if (!self->endpoint || !streq (endpoint, self->endpoint))
        dbt_log (DBT_LOG_INFO, "worker: '%s' connecting to %s for queue '%s'", self->display,
                 endpoint, self->args->queues [0]);
    free (self->endpoint);
    self->endpoint = endpoint;
    if (endpoint) {
        self->waiting = false;
        if (dbt_curve_apply (self->args->runner.config->curve, self->dealer, DBT_CURVE_CLIENT, NULL)
        ||  zsock_connect (self->dealer, "%s", endpoint))
            dbt_log (DBT_LOG_ERROR, "worker: cannot connect to '%s'", endpoint);
    }
    zpoller_add (self->poller, self->dealer);
    self->echoes = false;           //  the new one may be an older version
    self->confirmed = 0;
    self->got = 0;                  //  what was on its way to the old socket is gone
    if (!to)
        self->last_heard = dbt_clock_ms ();     //  a pair's silence clock runs on
    s_send_ready (self, vote);
    if (again)
        s_resend_outcomes (self);
}

static void
s_send_done (self_t *self, const dbt_job_t *job, bool ok, uint64_t rows, const char *error,
             bool cancelled, bool interrupted)
{
    s_outcome_t *outcome = (s_outcome_t *) dbt_malloc (sizeof (s_outcome_t));
    *outcome = (s_outcome_t) { dbt_strdup (job->id), job->attempts, ok, cancelled, interrupted,
                               false, rows, dbt_strdup (error), dbt_clock_ms () };
    s_write_done (self->writer, outcome, false);
    s_send (self, DBT_W_DONE);
    zlist_append (self->outcomes, outcome);
    if (zlist_size (self->outcomes) > OUTCOMES_MAX) {
        outcome = (s_outcome_t *) zlist_pop (self->outcomes);
        s_outcome_free (&outcome);
    }
}

//  Hand a job back that we did not start (no free runner, or draining).
//  The dispatcher queues it again without counting the attempt, and may
//  give the same attempt number again: so this is told once and not kept
//  among the outcomes told again after a reconnect.
static void
s_send_refused (self_t *self, const dbt_job_t *job)
{
    s_outcome_t outcome = { job->id, job->attempts, false, false, true, true, 0,
                            (char *) "worker had no free runner", 0 };
    s_write_done (self->writer, &outcome, false);
    s_send (self, DBT_W_DONE);
}

static void
s_forward_progress (self_t *self, s_slot_t *slot)
{
    dbt_mpw_t *w = self->writer;
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", slot->job->id);
    dbt_mpw_ku64 (w, "attempt", slot->job->attempts);
    dbt_mpw_ku64 (w, "rows", slot->rows);
    dbt_mpw_end (w);
    s_send (self, DBT_W_PROGRESS);
    slot->progress_pending = false;
    slot->next_progress = dbt_clock_ms () + PROGRESS_EVERY_MS;
}

//  --------------------------------------------------------------------------
//  Dispatcher messages

static void
s_handle_job (self_t *self, dbt_msg_t *msg)
{
    char err [DBT_ERRMSG_LEN];
    uint64_t frame = 0;
    char ferr [DBT_ERRMSG_LEN];
    if (dbt_mp_field_u64 (msg->map, "frame", false, &frame, ferr) == 0 && frame > self->got)
        self->got = frame;
    dbt_job_t *job = dbt_job_unpack (msg->map, err);
    if (!job) {
        //  Hand it back if we can tell which job it was; the dispatcher's
        //  reconciliation catches the rest.
        dbt_log (DBT_LOG_WARN, "worker: bad job frame: %s", err);
        char perr [DBT_ERRMSG_LEN];
        dbt_job_t *stub = dbt_job_new ();
        uint64_t attempt = 0;
        if (dbt_mp_field_str (msg->map, "id", true, &stub->id, perr) == 0
        &&  dbt_mp_field_u64 (msg->map, "attempts", true, &attempt, perr) == 0 && attempt <= UINT32_MAX) {
            stub->attempts = (uint32_t) attempt;
            s_send_done (self, stub, false, 0, "bad job frame", false, true);
        }
        dbt_job_destroy (&stub);
        return;
    }
    s_slot_t *slot = NULL;
    for (int i = 0; i < self->nslots && !slot; i++)
        if (!self->slots [i].job)
            slot = &self->slots [i];
    if (!slot || self->draining) {
        //  More jobs than we announced: hand it back untouched.
        dbt_log (DBT_LOG_WARN, "worker: no free runner for job '%s', returning it", job->id);
        s_send_refused (self, job);
        dbt_job_destroy (&job);
        return;
    }
    int64_t now = dbt_clock_ms ();
    slot->job = job;
    slot->deadline = job->ttl_ms > 0 ? now + job->ttl_ms : 0;
    slot->cancel_again = 0;
    slot->by_request = false;
    slot->fenced = false;
    slot->rows = 0;
    slot->progress_pending = false;
    slot->next_progress = now + PROGRESS_EVERY_MS;
    dbt_cancel_reset (slot->args.cancel);
    dbt_job_pack (job, self->writer);
    size_t len;
    const char *data = dbt_mpw_data (self->writer, &len);
    zchunk_t *chunk = zchunk_new (data, len);
    dbt_mpw_reset (self->writer);
    zsock_send (slot->actor, "sc", "RUN", chunk);
    zchunk_destroy (&chunk);
    dbt_log (DBT_LOG_DEBUG, "worker: running job '%s' attempt %u", job->id, job->attempts);
}

static void
s_handle_cancel (self_t *self, dbt_msg_t *msg)
{
    char err [DBT_ERRMSG_LEN];
    char *id = NULL;
    uint64_t attempt = 0;
    bool fence = false;
    char *reason = NULL;
    dbt_mp_field_bool (msg->map, "fence", false, &fence, err);
    dbt_mp_field_str (msg->map, "reason", false, &reason, err);
    if (dbt_mp_field_str (msg->map, "id", true, &id, err) == 0
    &&  dbt_mp_field_u64 (msg->map, "attempt", true, &attempt, err) == 0) {
        for (int i = 0; i < self->nslots; i++) {
            s_slot_t *slot = &self->slots [i];
            if (slot->job && streq (slot->job->id, id) && slot->job->attempts == attempt && fence) {
                //  The dispatcher is cut off from its failover partner, or
                //  stopped hearing us: the job runs again elsewhere.
                if (!slot->fenced)
                    dbt_log (DBT_LOG_WARN, "worker: %s, stopping job '%s' attempt %u "
                             "(it will run again; it writes no results now)",
                             reason ? reason : "the dispatcher is cut off", id, slot->job->attempts);
                slot->fenced = true;
                dbt_cancel_request (slot->args.cancel, reason ? reason : "the dispatcher is cut off");
                slot->cancel_again = dbt_clock_ms () + CANCEL_REPEAT_MS;
            }
            else
            if (slot->job && streq (slot->job->id, id) && slot->job->attempts == attempt) {
                dbt_log (DBT_LOG_INFO, "worker: cancelling job '%s'", id);
                slot->by_request = true;
                dbt_cancel_request (slot->args.cancel, "the job was canceled");
                slot->cancel_again = dbt_clock_ms () + CANCEL_REPEAT_MS;
            }
        }
    }
    free (reason);
    free (id);
}

//  The failover partner of the dispatcher we talk to, or NULL.
static char *
s_partner (self_t *self)
{
    return self->args->routes && self->endpoint
         ? dbt_routes_partner (self->args->routes, self->endpoint) : NULL;
}

static void
s_handle_dealer (self_t *self)
{
    char err [DBT_ERRMSG_LEN];
    dbt_msg_t *msg = dbt_msg_recv (self->dealer, false, err);
    if (!msg) {
        if (err [0])
            dbt_log (DBT_LOG_WARN, "worker: dropped malformed message: %s", err);
        return;
    }
    bool passive = false;
    if (msg->command == DBT_W_DISCONNECT)
        dbt_mp_field_bool (msg->map, "passive", false, &passive, err);
    if (!passive)
        self->last_heard = dbt_clock_ms ();     //  a passive member is no dispatcher to us
    switch (msg->command) {
        case DBT_W_JOB:         s_handle_job (self, msg); break;
        case DBT_W_CANCEL:      s_handle_cancel (self, msg); break;
        case DBT_W_HEARTBEAT:   s_handle_heartbeat (self, msg); break;
        case DBT_W_DISCONNECT: {
            char *partner = passive ? s_partner (self) : NULL;
            if (partner && dbt_clock_ms () >= self->switch_due) {
                dbt_log (DBT_LOG_INFO, "worker: %s is a passive failover member; going to %s",
                         self->endpoint, partner);
                self->switch_due = dbt_clock_ms () + self->args->runner.config->heartbeat_ms / 4;
                s_connect (self, partner, false);
            }
            else
            if (!passive) {
                dbt_log (DBT_LOG_INFO, "worker: dispatcher asked us to register again");
                s_send_ready (self, false);
                s_resend_outcomes (self);
            }
            free (partner);
            break;
        }
        default:
            dbt_log (DBT_LOG_WARN, "worker: unknown command 0x%02x", msg->command);
    }
    dbt_msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  Runner messages

static void
s_drained_check (self_t *self)
{
    if (!self->drain_reply)
        return;
    for (int i = 0; i < self->nslots; i++)
        if (self->slots [i].job)
            return;
    zstr_send (self->pipe, "DRAINED");
    self->drain_reply = false;
}

static void
s_handle_runner (self_t *self, s_slot_t *slot)
{
    char *command = NULL, *error = NULL;
    int rc = 0;
    uint64_t rows = 0;
    if (zsock_recv (slot->actor, "s8is", &command, &rows, &rc, &error) || !command || !slot->job)
        goto done;
    if (streq (command, "PROGRESS")) {
        slot->rows = rows;
        slot->progress_pending = true;
        if (dbt_clock_ms () >= slot->next_progress)
            s_forward_progress (self, slot);
    }
    else
    if (streq (command, "DONE")) {
        dbt_job_t *job = slot->job;
        bool cancelled = rc == DBT_ECANCELED && slot->by_request;
        bool fenced = rc == DBT_ECANCELED && slot->fenced;
        if (rc == 0)
            dbt_log (DBT_LOG_INFO, "worker: job '%s' attempt %u wrote %" PRIu64 " rows", job->id,
                     job->attempts, rows);
        else
            dbt_log (DBT_LOG_INFO, "worker: job '%s' attempt %u failed: %s", job->id,
                     job->attempts, error);
        s_send_done (self, job, rc == 0 && !fenced, rows, error, cancelled, fenced);
        slot->job = NULL;
        dbt_job_destroy (&job);
        if (self->draining)
            s_send_credit (self);
        s_drained_check (self);
    }
done:
    free (command);
    free (error);
}

//  Time limits, repeated cancels, pending progress, heartbeats, liveness.
static void
s_timers (self_t *self)
{
    int64_t now = dbt_clock_ms ();
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *slot = &self->slots [i];
        if (!slot->job)
            continue;
        if (slot->deadline && now >= slot->deadline && !dbt_cancel_requested (slot->args.cancel)) {
            char reason [128];
            snprintf (reason, sizeof (reason), "job exceeded its time limit of %.3gs",
                      (double) slot->job->ttl_ms / 1000.0);
            dbt_log (DBT_LOG_INFO, "worker: job '%s': %s", slot->job->id, reason);
            dbt_cancel_request (slot->args.cancel, reason);
            slot->cancel_again = now + CANCEL_REPEAT_MS;
        }
        else
        if (slot->cancel_again && now >= slot->cancel_again) {
            dbt_cancel_request (slot->args.cancel, NULL);
            slot->cancel_again = now + CANCEL_REPEAT_MS;
        }
        if (slot->progress_pending && now >= slot->next_progress)
            s_forward_progress (self, slot);
    }
    if (now >= self->next_heartbeat) {
        dbt_mpw_map (self->writer);
        s_write_running (self, self->writer);
        s_write_hb (self, self->writer);
        dbt_mpw_end (self->writer);
        s_send (self, DBT_W_HEARTBEAT);
        //  To a dispatcher that echoes them, twice as often: the fence
        //  below then has a heartbeat and a half for the round trip.
        self->next_heartbeat = now + (self->echoes ? self->args->runner.config->heartbeat_ms / 2
                                                   : self->args->runner.config->heartbeat_ms);
    }
    int64_t liveness = self->args->runner.config->heartbeat_ms
                     * self->args->runner.config->heartbeat_liveness;
    //  Fencing: a dispatcher that has not heard us for the liveness period
    //  takes our jobs for lost and runs them elsewhere; stop them first, a
    //  heartbeat before, so that no job runs on two workers at once. They
    //  are handed back (interrupted) and run again without counting a
    //  failure. What it has heard is what it echoes: the fence runs from
    //  the send time of the newest message it echoed (it heard that one
    //  later still), so it holds when only our messages are late or lost.
    //  A dispatcher that echoes nothing (older): from its own last message.
    int64_t fence = liveness - self->args->runner.config->heartbeat_ms;
    if (fence < self->args->runner.config->heartbeat_ms * 3 / 2)
        fence = self->args->runner.config->heartbeat_ms * 3 / 2;
    //  A dispatcher in this process with no failover partner loses none of
    //  our messages and does not count the time it stalls (see its
    //  s_check_workers): its silence is no reason to stop anything.
    int64_t silent = now - self->last_heard;
    bool unheard = self->echoes && now - self->confirmed > silent;
    if (unheard)
        silent = now - self->confirmed;
    char *partner = self->waiting ? NULL : s_partner (self);
    bool local = self->endpoint && !partner && strncmp (self->endpoint, "inproc://", 9) == 0;
    if (!self->waiting && !local && silent > fence) {
        for (int i = 0; i < self->nslots; i++) {
            s_slot_t *slot = &self->slots [i];
            if (slot->job && !slot->fenced) {
                dbt_log (DBT_LOG_WARN, "worker: dispatcher silent for %" PRId64 " ms, stopping job '%s' "
                         "attempt %u (it will run again; it writes no results now)%s",
                         silent, slot->job->id, slot->job->attempts,
                         unheard ? ": it echoes none of our recent heartbeats" : "");
                slot->fenced = true;
                dbt_cancel_request (slot->args.cancel, "lost contact with the dispatcher");
                slot->cancel_again = now + CANCEL_REPEAT_MS;
            }
        }
    }
    //  A dispatcher in a failover pair that goes silent: try its partner
    //  after three quarters of a heartbeat, with a vote (we cannot reach
    //  the one we had), and then each member in turn until one answers.
    int64_t heartbeat = self->args->runner.config->heartbeat_ms;
    if (self->waiting && now - self->last_heard > 1000)
        s_connect (self, NULL, false);      //  ask the routes again
    else
    if (partner && now - self->last_heard > heartbeat * 3 / 4 && now >= self->switch_due) {
        dbt_log (DBT_LOG_WARN, "worker: dispatcher %s silent for %" PRId64 " ms, trying its failover "
                 "partner %s", self->endpoint, now - self->last_heard, partner);
        self->switch_due = now + heartbeat / 2;
        s_connect (self, partner, true);
    }
    else
    if (!partner && now - self->last_heard > liveness) {
        dbt_log (DBT_LOG_WARN, "worker: dispatcher %s silent for %" PRId64 " ms, reconnecting",
                 self->endpoint ? self->endpoint : "(none known)", now - self->last_heard);
        s_connect (self, NULL, false);
    }
    free (partner);
}

//  --------------------------------------------------------------------------
//  The actor

static void
s_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "DRAIN")) {
        self->draining = true;
        self->drain_reply = true;
        s_send_credit (self);
        s_drained_check (self);
    }
    free (command);
}

void
dbt_worker_actor (zsock_t *pipe, void *args)
{
    dbt_thread_name ("dbt-worker");
    self_t *self = (self_t *) dbt_malloc (sizeof (self_t));
    self->pipe = pipe;
    self->args = (dbt_worker_args_t *) args;
    self->writer = dbt_mpw_new ();
    self->identity = dbt_msg_worker_identity (self->args->runner.config->worker_name);
    dbt_msg_worker_display (self->identity, strlen (self->identity), self->display);
    self->nslots = self->args->capacity > 0 ? self->args->capacity : 1;
    self->slots = (s_slot_t *) dbt_malloc ((size_t) self->nslots * sizeof (s_slot_t));
    self->poller = zpoller_new (pipe, NULL);
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *slot = &self->slots [i];
        slot->args.ctx = &self->args->runner;
        slot->args.cancel = dbt_cancel_new ();
        slot->actor = zactor_new (s_runner_actor, &slot->args);
        zpoller_add (self->poller, slot->actor);
    }
    self->outcomes = zlist_new ();
    s_connect (self, NULL, false);
    dbt_log (DBT_LOG_INFO, "worker: '%s' serving %zu queue(s) with %d runners from %s",
             self->display, self->args->nqueues, self->nslots,
             self->endpoint ? self->endpoint : "(waiting for the mesh)");
    zsock_signal (pipe, 0);

    while (!self->terminated) {
        int timeout = (int) (self->args->runner.config->heartbeat_ms / 4);
        void *which = zpoller_wait (self->poller, timeout > 10 ? timeout : 10);
        if (zpoller_terminated (self->poller))
            break;
        if (which == pipe)
            s_handle_pipe (self);
        else
        if (which == self->dealer) {
            for (int n = 0; n < 256 && (zsock_events (self->dealer) & ZMQ_POLLIN); n++)
                s_handle_dealer (self);
        }
        else
        if (which) {
            for (int i = 0; i < self->nslots; i++)
                if (which == self->slots [i].actor)
                    s_handle_runner (self, &self->slots [i]);
        }
        s_timers (self);
    }
    //  Stop running jobs; tell the dispatcher they were interrupted so it
    //  can run them elsewhere at once.
    for (int i = 0; i < self->nslots; i++)
        if (self->slots [i].job)
            dbt_cancel_request (self->slots [i].args.cancel, "worker shutting down");
    for (int i = 0; i < self->nslots; i++) {
        s_slot_t *slot = &self->slots [i];
        zactor_destroy (&slot->actor);
        if (slot->job)
            s_send_done (self, slot->job, false, 0, "worker shut down", false, true);
        dbt_job_destroy (&slot->job);
        dbt_cancel_destroy (&slot->args.cancel);
    }
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->dealer);
    s_outcome_t *outcome;
    while ((outcome = (s_outcome_t *) zlist_pop (self->outcomes)))
        s_outcome_free (&outcome);
    zlist_destroy (&self->outcomes);
    dbt_mpw_destroy (&self->writer);
    free (self->slots);
    free (self->identity);
    free (self->endpoint);
    free (self);
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: a dispatcher and a worker actor on SQLite, end to end.

//  A fake dispatcher at endpoint gives a fresh worker a slow job and keeps
//  sending it heartbeats for up to ms: echoing what it heard (echo), or
//  echoing only the READY (it hears none of the worker's heartbeats), or,
//  with old, no echo at all (an older dispatcher). Returns how long after
//  the job the worker handed it back fenced, or -1 if it kept running.
static int64_t
s_fence_case (dbt_worker_args_t *wargs, const char *endpoint, bool echo, bool old, int64_t ms)
{
    char err [DBT_ERRMSG_LEN];
    zsock_t *fake = zsock_new (ZMQ_ROUTER);
    assert (zsock_bind (fake, "%s", endpoint) == 0);
    dbt_worker_args_t fargs = *wargs;
    fargs.endpoint = endpoint;
    zactor_t *worker = zactor_new (dbt_worker_actor, &fargs);
    zsock_set_rcvtimeo (fake, 2000);
    dbt_msg_t *ready = dbt_msg_recv (fake, true, err);
    assert (ready && ready->command == DBT_W_READY);
    uint64_t heard = 0;
    assert (dbt_mp_field_u64 (ready->map, "hb", true, &heard, err) == 0 && heard > 0);
    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->id, "fence2");
    dbt_job_set (&job->task, "slow");
    dbt_job_set (&job->queue, "default");
    dbt_job_set (&job->results, "res");
    dbt_job_set (&job->table, "results_fence2");
    job->state = DBT_STATE_STARTED;
    job->attempts = 1;
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_job_pack (job, w);
    assert (dbt_msg_send (fake, ready->identity, DBT_PROTO_WORKER, DBT_W_JOB, w) == 0);
    dbt_job_destroy (&job);
    int64_t sent = dbt_clock_ms (), next_beat = 0, fenced = -1;
    zsock_set_rcvtimeo (fake, 10);
    while (fenced < 0 && dbt_clock_ms () - sent < ms) {
        bool beat = dbt_clock_ms () >= next_beat;
        dbt_msg_t *next = dbt_msg_recv (fake, true, err);
        bool interrupted = false;
        uint64_t hb = 0;
        if (next && next->command == DBT_W_DONE
        &&  dbt_mp_field_bool (next->map, "interrupted", true, &interrupted, err) == 0 && interrupted)
            fenced = dbt_clock_ms () - sent;
        if (next && next->command == DBT_W_HEARTBEAT && echo
        &&  dbt_mp_field_u64 (next->map, "hb", true, &hb, err) == 0) {
            heard = hb;
            beat = true;            //  echo at once, as the dispatcher does
        }
        dbt_msg_destroy (&next);
        if (beat) {
            dbt_mpw_map (w);
            dbt_mpw_kstr (w, "instance", "fake");
            if (!old)
                dbt_mpw_ku64 (w, "heard", heard);
            dbt_mpw_end (w);
            assert (dbt_msg_send (fake, ready->identity, DBT_PROTO_WORKER, DBT_W_HEARTBEAT, w) == 0);
            next_beat = dbt_clock_ms () + 50;
        }
    }
    if (fenced < 0) {
        //  Still running: stop it as a DELETE would.
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "id", "fence2");
        dbt_mpw_ku64 (w, "attempt", 1);
        dbt_mpw_end (w);
        assert (dbt_msg_send (fake, ready->identity, DBT_PROTO_WORKER, DBT_W_CANCEL, w) == 0);
        bool done = false;
        int64_t asked = dbt_clock_ms ();
        while (!done && dbt_clock_ms () - asked < 3000) {
            dbt_msg_t *next = dbt_msg_recv (fake, true, err);
            bool cancelled = false;
            if (next && next->command == DBT_W_DONE
            &&  dbt_mp_field_bool (next->map, "cancelled", true, &cancelled, err) == 0 && cancelled)
                done = true;
            dbt_msg_destroy (&next);
        }
        assert (done);
    }
    dbt_mpw_destroy (&w);
    dbt_msg_destroy (&ready);
    zactor_destroy (&worker);
    zsock_destroy (&fake);
    return fenced;
}

void
dbt_worker_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    dbt_testing_rig_t *rig = dbt_testing_rig_new ("worker", NULL,
        "-- name: count\nSELECT COUNT(*) AS n FROM entries;\n"
        "-- name: slow\nWITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)\n"
        "SELECT x FROM c WHERE x % 1000000000 = 0 LIMIT 10;\n", 2);
    dbt_store_t *store = rig->store;
    dbt_client_t *client = rig->client;
    zactor_t *worker = rig->worker;

    assert (dbt_testing_submit (client, &(dbt_testing_job_t) { .task = "count", .id = "c1", .ttl = 0 }) == 200);
    dbt_job_t *job = dbt_testing_wait (store, "c1", DBT_STATE_SUCCESS, 5000);
    assert (job && job->state == DBT_STATE_SUCCESS && job->rows == 1);
    dbt_job_destroy (&job);

    //  Cancel of a running job stops it on the database.
    assert (dbt_testing_submit (client, &(dbt_testing_job_t) { .task = "slow", .id = "s1", .ttl = 0 }) == 200);
    job = dbt_testing_wait (store, "s1", DBT_STATE_STARTED, 5000);
    assert (job && job->state == DBT_STATE_STARTED);
    dbt_job_destroy (&job);
    zclock_sleep (200);
    dbt_mpw_t *w = dbt_client_begin (client);
    dbt_mpw_kstr (w, "job_id", "s1");
    dbt_reply_t *reply = NULL;
    assert (dbt_client_call (client, DBT_C_CANCEL, 3000, &reply, err) == 0 && reply->code == 200);
    dbt_reply_destroy (&reply);
    int64_t asked = dbt_clock_ms ();
    job = dbt_testing_wait (store, "s1", DBT_STATE_FAILURE, 3000);
    assert (job && job->state == DBT_STATE_FAILURE && streq (job->error, "the job was canceled"));
    assert (dbt_clock_ms () - asked < 2000);
    dbt_job_destroy (&job);

    //  The run-time limit cancels the query and fails the job.
    assert (dbt_testing_submit (client, &(dbt_testing_job_t) { .task = "slow", .id = "s2", .ttl = 300 }) == 200);
    job = dbt_testing_wait (store, "s2", DBT_STATE_FAILURE, 5000);
    assert (job && job->state == DBT_STATE_FAILURE && strstr (job->error, "time limit"));
    assert (job->finished_ms - job->started_ms < 2000);
    dbt_job_destroy (&job);

    //  Fencing: a worker whose dispatcher goes silent stops its job before
    //  the dispatcher would give it to another worker, and hands it back.
    //  Over IPC, as from another process (an inproc dispatcher without a
    //  partner loses nothing and needs no fence; that case comes after).
    char fence_ep [4][64];
    const char *fence_name [4] = { "silent", "deaf", "echo", "old" };
    for (int i = 0; i < 4; i++)
        snprintf (fence_ep [i], sizeof (fence_ep [i]), "ipc://@dbt-worker-fence-%s-%d",
                  fence_name [i], (int) getpid ());
    zsock_t *fake = zsock_new (ZMQ_ROUTER);
    assert (zsock_bind (fake, "%s", fence_ep [0]) == 0);
    dbt_worker_args_t fargs = rig->wargs;
    fargs.endpoint = fence_ep [0];
    zactor_t *fenced = zactor_new (dbt_worker_actor, &fargs);
    zsock_set_rcvtimeo (fake, 2000);
    dbt_msg_t *msg = dbt_msg_recv (fake, true, err);
    assert (msg && msg->command == DBT_W_READY);
    job = dbt_job_new ();
    dbt_job_set (&job->id, "fence1");
    dbt_job_set (&job->task, "slow");
    dbt_job_set (&job->queue, "default");
    dbt_job_set (&job->results, "res");
    dbt_job_set (&job->table, "results_fence1");
    job->state = DBT_STATE_STARTED;
    job->attempts = 1;
    w = dbt_mpw_new ();
    dbt_job_pack (job, w);
    assert (dbt_msg_send (fake, msg->identity, DBT_PROTO_WORKER, DBT_W_JOB, w) == 0);
    dbt_mpw_destroy (&w);
    dbt_job_destroy (&job);
    int64_t sent = dbt_clock_ms ();
    bool handed_back = false;
    while (!handed_back && dbt_clock_ms () - sent < 3000) {
        dbt_msg_t *next = dbt_msg_recv (fake, true, err);
        bool interrupted = false;
        if (next && next->command == DBT_W_DONE
        &&  dbt_mp_field_bool (next->map, "interrupted", true, &interrupted, err) == 0 && interrupted)
            handed_back = true;
        dbt_msg_destroy (&next);
    }
    //  heartbeat 100 ms, liveness 3: stopped after 200 ms of silence,
    //  before the dispatcher's 300 ms.
    assert (handed_back && dbt_clock_ms () - sent < 1500);
    dbt_msg_destroy (&msg);
    zactor_destroy (&fenced);
    zsock_destroy (&fake);

    //  Delivery one way only: the dispatcher's heartbeats arrive but ours
    //  do not (it echoes the READY, nothing since). The worker stops its
    //  job as if the dispatcher were silent, before it would expire us.
    int64_t after = s_fence_case (&rig->wargs, fence_ep [1], false, false, 3000);
    assert (after >= 0 && after < 1500);
    //  It echoes each heartbeat: the job runs on, well past the liveness
    //  period (300 ms); and so with a dispatcher that echoes nothing.
    assert (s_fence_case (&rig->wargs, fence_ep [2], true, false, 1000) < 0);
    assert (s_fence_case (&rig->wargs, fence_ep [3], false, true, 1000) < 0);
    //  A dispatcher in this process without a partner: its silence (a
    //  stall) stops nothing; it does not count the stall against us.
    assert (s_fence_case (&rig->wargs, "inproc://dbt-worker-fence-local", false, false, 1000) < 0);

    //  Draining with nothing running answers at once.
    zstr_send (worker, "DRAIN");
    char *drained = zstr_recv (worker);
    assert (drained && streq (drained, "DRAINED"));
    free (drained);

    dbt_testing_rig_destroy (&rig);
    if (verbose)
        printf ("worker: ok\n");
}
#endif  //  DBT_SELFTEST
