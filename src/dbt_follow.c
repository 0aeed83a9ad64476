/*  =========================================================================
    dbt_follow - follows one dispatcher's records (the Clone client)

    See dbt_follow.h. States: IDLE (no target) -> SUBSCRIBING (SUB
    connected, waiting for its first message) -> PAGING (pages into the
    fresh store, updates buffered) -> LIVE.
    =========================================================================
*/
#include "dbt_classes.h"

#define PAGE_RECORDS      1000      //  records asked for per snapshot page
#define REQUEST_TIMEOUT   5000      //  ms before a page is given up
#define MAX_MSGS          2000      //  SUB messages handled per call
#define MAX_BUFFERED      200000    //  updates buffered during a snapshot

typedef enum { S_IDLE, S_SUBSCRIBING, S_PAGING, S_LIVE } s_state_t;

struct _dbt_follow_t {
    char *name;                 //  for logs
    int64_t heartbeat_ms;       //  the mesh's heartbeat period
    const dbt_follow_fns_t *fns;
    void *arg;
    char *endpoint;             //  the dispatcher's ROUTER
    char *publish;              //  its PUB
    char *instance;             //  its run, as the target said
    zsock_t *sub;               //  updates
    zsock_t *dealer;            //  snapshot pages
    uint64_t rid;               //  last page request id
    bool pending;               //  a page request awaits its reply
    int64_t sent_at;            //  monotonic ms it was sent
    int64_t heard;              //  monotonic ms of the last SUB message
    s_state_t state;
    //  Snapshot being taken
    dbt_store_t *fresh;         //  store being filled
    char *after;                //  last id of the previous page, NULL = start
    bool groups;                //  paging groups (the jobs are done)
    bool first_page;            //  the next page is the first
    uint64_t snap_seq;          //  sequence of the first page
    char *snap_instance;        //  run of the first page
    zlist_t *buffered;          //  dbt_msg_t of updates that arrived meanwhile
    //  Live
    dbt_store_t *live;          //  store updates go to
    char *live_instance;        //  run whose updates it follows
    dbt_wtxn_t *txn;            //  this call's transaction
    uint64_t applied;           //  last update applied
    int64_t delay;              //  age of the last update applied, -1 = none
    //  What the dispatcher says
    char *node;                 //  its node name
    char *lineage;              //  lineage of its records
    dbt_msg_t *last;            //  its last message
    dbt_mpw_t *writer;          //  scratch
    const dbt_curve_t *curve;   //  keys of its sockets, NULL = none
};

dbt_follow_t *
dbt_follow_new (const char *name, int64_t heartbeat_ms, const dbt_follow_fns_t *fns, void *arg)
{
    dbt_follow_t *self = (dbt_follow_t *) dbt_malloc (sizeof (dbt_follow_t));
    self->name = dbt_strdup (name);
    self->heartbeat_ms = heartbeat_ms;
    self->fns = fns;
    self->arg = arg;
    self->buffered = zlist_new ();
    self->writer = dbt_mpw_new ();
    self->delay = -1;
    return self;
}

static void
s_buffer_clear (dbt_follow_t *self)
{
    dbt_msg_t *msg;
    while ((msg = (dbt_msg_t *) zlist_pop (self->buffered)))
        dbt_msg_destroy (&msg);
}

static void
s_drop_fresh (dbt_follow_t *self)
{
    if (self->fresh && self->fresh != self->live)
        self->fns->drop (self->arg, self->fresh);
    self->fresh = NULL;
    zstr_free (&self->after);
    zstr_free (&self->snap_instance);
    s_buffer_clear (self);
}

void
dbt_follow_stop (dbt_follow_t *self)
{
    dbt_wtxn_abort (&self->txn);
    s_drop_fresh (self);
    zsock_destroy (&self->sub);
    zsock_destroy (&self->dealer);
    self->pending = false;
    self->state = S_IDLE;
    zstr_free (&self->endpoint);
    zstr_free (&self->publish);
    zstr_free (&self->instance);
}

void
dbt_follow_destroy (dbt_follow_t **self_p)
{
    assert (self_p);
    dbt_follow_t *self = *self_p;
    if (!self)
        return;
    dbt_follow_stop (self);
    zlist_destroy (&self->buffered);
    dbt_msg_destroy (&self->last);
    dbt_mpw_destroy (&self->writer);
    free (self->live_instance);
    free (self->node);
    free (self->lineage);
    free (self->name);
    free (self);
    *self_p = NULL;
}

//  Subscribe (again) to the target's PUB; the first message starts a snapshot.
static void
s_subscribe (dbt_follow_t *self)
{
    zsock_destroy (&self->sub);
    self->sub = zsock_new (ZMQ_SUB);
    dbt_msg_limit (self->sub);
    zsock_set_rcvhwm (self->sub, 100000);
    zsock_set_subscribe (self->sub, DBT_PROTO_STATE);
    if (dbt_curve_apply (self->curve, self->sub, DBT_CURVE_CLIENT, NULL)
    ||  zsock_connect (self->sub, "%s", self->publish))
        dbt_log (DBT_LOG_ERROR, "follow: '%s': cannot subscribe to '%s'", self->name, self->publish);
    zsock_destroy (&self->dealer);
    self->dealer = zsock_new (ZMQ_DEALER);
    dbt_msg_limit (self->dealer);
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, 0);
    if (dbt_curve_apply (self->curve, self->dealer, DBT_CURVE_CLIENT, NULL) == 0)
        zsock_connect (self->dealer, "%s", self->endpoint);
    self->pending = false;
    self->state = S_SUBSCRIBING;
    self->heard = dbt_clock_ms ();
    s_drop_fresh (self);
}

void
dbt_follow_set_curve (dbt_follow_t *self, const dbt_curve_t *curve)
{
    assert (self);
    self->curve = curve;
}

void
dbt_follow_target (dbt_follow_t *self, const char *endpoint, const char *publish, const char *instance)
{
    if (self->state != S_IDLE && self->endpoint && streq (self->endpoint, endpoint)
    &&  self->publish && streq (self->publish, publish)
    &&  self->instance && instance && streq (self->instance, instance))
        return;
    if (self->instance && instance && !streq (self->instance, instance))
        dbt_log (DBT_LOG_INFO, "follow: '%s' restarted, subscribing again", self->name);
    char *e = dbt_strdup (endpoint), *p = dbt_strdup (publish), *i = dbt_strdup (instance);
    free (self->endpoint);
    free (self->publish);
    free (self->instance);
    self->endpoint = e;
    self->publish = p;
    self->instance = i;
    s_subscribe (self);
}

size_t
dbt_follow_items (dbt_follow_t *self, zmq_pollitem_t *items)
{
    size_t n = 0;
    if (self->sub)
        items [n++] = (zmq_pollitem_t) { zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0 };
    if (self->dealer)
        items [n++] = (zmq_pollitem_t) { zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0 };
    return n;
}

bool
dbt_follow_live (dbt_follow_t *self)
{
    return self->state == S_LIVE;
}

uint64_t
dbt_follow_seq (dbt_follow_t *self)
{
    return self->applied;
}

const char *
dbt_follow_node (dbt_follow_t *self)
{
    return self->node;
}

const char *
dbt_follow_lineage (dbt_follow_t *self)
{
    return self->lineage;
}

int64_t
dbt_follow_heard (dbt_follow_t *self)
{
    return self->heard;
}

const msgpack_object *
dbt_follow_last (dbt_follow_t *self)
{
    return self->last ? self->last->map : NULL;
}

//  --------------------------------------------------------------------------
//  Snapshot

static void
s_ask_page (dbt_follow_t *self)
{
    dbt_mpw_map (self->writer);
    dbt_mpw_ku64 (self->writer, "rid", ++self->rid);
    dbt_mpw_kstr (self->writer, "after", self->after);
    dbt_mpw_kbool (self->writer, "groups", self->groups);
    dbt_mpw_ku64 (self->writer, "limit", PAGE_RECORDS);
    dbt_mpw_end (self->writer);
    bool sent = dbt_msg_send (self->dealer, NULL, DBT_PROTO_CLIENT, DBT_C_SNAPSHOT, self->writer) == 0;
    self->pending = true;
    //  One that cannot even be queued counts as unanswered at once.
    self->sent_at = sent ? dbt_clock_ms () : dbt_clock_ms () - REQUEST_TIMEOUT - 1;
}

static void
s_start_snapshot (dbt_follow_t *self, const char *why)
{
    char err [DBT_ERRMSG_LEN] = "";
    dbt_wtxn_abort (&self->txn);
    s_drop_fresh (self);
    self->fresh = self->fns->fresh (self->arg, err);
    if (!self->fresh) {
        dbt_log (DBT_LOG_ERROR, "follow: '%s': no store for a snapshot: %s", self->name, err);
        self->state = S_SUBSCRIBING;            //  try again on the next message
        return;
    }
    dbt_log (DBT_LOG_INFO, "follow: '%s' (%s): taking a snapshot (%s)", self->name,
             self->endpoint, why);
    self->groups = false;
    self->first_page = true;
    self->state = S_PAGING;
    s_ask_page (self);
}

//  Apply one UPDATE's records and deletions in txn. Returns 0 or -1.
static int
s_apply (dbt_wtxn_t *txn, const msgpack_object *map, char *err)
{
    const char *names [] = { "jobs", "groups", "gone_jobs", "gone_groups" };
    for (int part = 0; part < 4; part++) {
        const msgpack_object *list = dbt_mp_get (map, names [part]);
        if (!list || list->type != MSGPACK_OBJECT_ARRAY)
            continue;
        for (uint32_t i = 0; i < list->via.array.size; i++) {
            const msgpack_object *item = &list->via.array.ptr [i];
            int rc = 0;
            if (part == 0) {
                dbt_job_t *job = dbt_job_unpack (item, err);
                rc = job ? dbt_wtxn_put_job (txn, job, err) : -1;
                dbt_job_destroy (&job);
            }
            else
            if (part == 1) {
                dbt_group_t *group = dbt_group_unpack (item, err);
                rc = group ? dbt_wtxn_put_group (txn, group, err) : -1;
                dbt_group_destroy (&group);
            }
            else {
                const char *str;
                size_t len;
                if (dbt_mp_str (item, &str, &len) == 0 && len <= DBT_ID_MAX) {
                    char *id = dbt_strndup (str, len);
                    rc = part == 2 ? dbt_wtxn_del_job (txn, id, err) : dbt_wtxn_del_group (txn, id, err);
                    free (id);
                }
            }
            if (rc)
                return -1;
        }
    }
    return 0;
}

static uint64_t
s_seq_of (const dbt_msg_t *msg)
{
    char err [DBT_ERRMSG_LEN];
    uint64_t seq = 0;
    dbt_mp_field_u64 (msg->map, "seq", true, &seq, err);
    return seq;
}

static bool
s_instance_is (const dbt_msg_t *msg, const char *instance)
{
    const char *str;
    size_t len;
    return instance && dbt_mp_str (dbt_mp_get (msg->map, "instance"), &str, &len) == 0
        && len == strlen (instance) && memcmp (str, instance, len) == 0;
}

//  Note what a message says of its sender: node and lineage.
static void
s_note_sender (dbt_follow_t *self, const msgpack_object *map)
{
    char err [DBT_ERRMSG_LEN];
    char *node = NULL, *lineage = NULL;
    if (dbt_mp_field_str (map, "node", false, &node, err) == 0 && node) {
        free (self->node);
        self->node = node;
    }
    if (dbt_mp_field_str (map, "lineage", false, &lineage, err) == 0 && lineage) {
        free (self->lineage);
        self->lineage = lineage;
    }
}

//  The snapshot is complete: apply what was buffered after its first
//  page, commit with the sequence reached, and hand the store over.
static void
s_finish_snapshot (dbt_follow_t *self)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = dbt_store_begin (self->fresh, err);
    uint64_t applied = self->snap_seq;
    int rc = txn ? 0 : -1;
    dbt_msg_t *msg;
    while (rc == 0 && (msg = (dbt_msg_t *) zlist_pop (self->buffered))) {
        uint64_t seq = s_seq_of (msg);
        if (!s_instance_is (msg, self->snap_instance) || seq <= applied) {
            dbt_msg_destroy (&msg);
            continue;
        }
        if (seq != applied + 1) {
            dbt_log (DBT_LOG_INFO, "follow: '%s': update %" PRIu64 " follows %" PRIu64
                     " during the snapshot, taking another", self->name, seq, applied);
            rc = 1;
        }
        else
        if (s_apply (txn, msg->map, err)) {
            dbt_log (DBT_LOG_ERROR, "follow: '%s': %s", self->name, err);
            rc = -1;
        }
        else
            applied = seq;
        dbt_msg_destroy (&msg);
    }
    if (rc == 0) {
        dbt_wtxn_set_pubseq (txn, applied);
        if (self->lineage)
            dbt_wtxn_set_lineage (txn, self->lineage);
        rc = dbt_wtxn_commit (&txn, err);
    }
    dbt_wtxn_abort (&txn);
    if (rc) {
        if (rc < 0)
            dbt_log (DBT_LOG_ERROR, "follow: '%s': cannot complete the snapshot: %s", self->name, err);
        s_start_snapshot (self, "the last one could not be completed");
        return;
    }
    dbt_store_t *filled = self->fresh;
    self->fresh = NULL;
    dbt_store_t *next = self->fns->live (self->arg, filled, applied);
    if (next != filled)
        self->fns->drop (self->arg, filled);
    if (self->live && self->live != next)
        self->fns->drop (self->arg, self->live);
    self->live = next;
    free (self->live_instance);
    self->live_instance = dbt_strdup (self->snap_instance);
    s_drop_fresh (self);
    if (!next) {
        dbt_log (DBT_LOG_INFO, "follow: '%s': its records are not wanted here, not following",
                 self->name);
        dbt_follow_stop (self);
        return;
    }
    self->applied = applied;
    self->state = S_LIVE;
    dbt_log (DBT_LOG_INFO, "follow: '%s' is live at update %" PRIu64, self->name, applied);
}

static void
s_handle_page (dbt_follow_t *self, dbt_reply_t *reply)
{
    char err [DBT_ERRMSG_LEN];
    const msgpack_object *data = reply->data;
    char *instance = NULL, *next = NULL;
    uint64_t seq = 0;
    if (reply->code != 200
    ||  dbt_mp_field_str (data, "instance", true, &instance, err)
    ||  dbt_mp_field_u64 (data, "seq", true, &seq, err)
    ||  dbt_mp_field_str (data, "next", false, &next, err)) {
        dbt_log (DBT_LOG_WARN, "follow: '%s': snapshot page refused: %s", self->name,
                 reply->message ? reply->message : err);
        free (instance);
        free (next);
        self->state = S_SUBSCRIBING;            //  the next message starts over
        return;
    }
    s_note_sender (self, data);
    if (self->first_page) {
        self->snap_seq = seq;
        self->snap_instance = dbt_strdup (instance);
        self->first_page = false;
    }
    else
    if (!streq (instance, self->snap_instance)) {
        free (instance);
        free (next);
        s_start_snapshot (self, "the dispatcher restarted during the snapshot");
        return;
    }
    free (instance);
    //  Each page in one transaction of the fresh store.
    const msgpack_object *records = dbt_mp_get (data, "records");
    dbt_wtxn_t *txn = dbt_store_begin (self->fresh, err);
    int rc = txn ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && records && records->type == MSGPACK_OBJECT_ARRAY
                         && i < records->via.array.size; i++) {
        const msgpack_object *item = &records->via.array.ptr [i];
        if (self->groups) {
            dbt_group_t *group = dbt_group_unpack (item, err);
            rc = group ? dbt_wtxn_put_group (txn, group, err) : -1;
            dbt_group_destroy (&group);
        }
        else {
            dbt_job_t *job = dbt_job_unpack (item, err);
            rc = job ? dbt_wtxn_put_job (txn, job, err) : -1;
            dbt_job_destroy (&job);
        }
    }
    if (rc == 0)
        rc = dbt_wtxn_commit (&txn, err);
    dbt_wtxn_abort (&txn);
    if (rc) {
        dbt_log (DBT_LOG_ERROR, "follow: '%s': cannot store a snapshot page: %s", self->name, err);
        free (next);
        s_start_snapshot (self, "a page could not be stored");
        return;
    }
    free (self->after);
    self->after = next;
    if (!next && !self->groups) {
        self->groups = true;                    //  the jobs are done: now the groups
        s_ask_page (self);
    }
    else
    if (next)
        s_ask_page (self);
    else
        s_finish_snapshot (self);
}

//  --------------------------------------------------------------------------
//  Updates

static void
s_handle_state (dbt_follow_t *self, dbt_msg_t **msg_p)
{
    dbt_msg_t *msg = *msg_p;
    char err [DBT_ERRMSG_LEN];
    if (!streq (msg->signature, DBT_PROTO_STATE))
        return;
    s_note_sender (self, msg->map);
    uint64_t seq = s_seq_of (msg);
    if (self->state == S_SUBSCRIBING)
        s_start_snapshot (self, self->live ? "resubscribed" : "first sync");
    if (self->state == S_PAGING) {
        if (msg->command == DBT_S_UPDATE && zlist_size (self->buffered) < MAX_BUFFERED) {
            zlist_append (self->buffered, msg);
            *msg_p = NULL;
        }
        return;
    }
    if (self->state != S_LIVE)
        return;
    if (!s_instance_is (msg, self->live_instance)) {
        s_start_snapshot (self, "the dispatcher restarted");
        return;
    }
    if (msg->command == DBT_S_HUGZ) {
        if (seq > self->applied)
            s_start_snapshot (self, "updates were missed");
        else
            self->fns->applied (self->arg, self->applied, -1);
        return;
    }
    if (msg->command != DBT_S_UPDATE || seq <= self->applied)
        return;
    if (seq != self->applied + 1) {
        if (self->txn)
            dbt_wtxn_commit (&self->txn, err);
        s_start_snapshot (self, "updates were missed");
        return;
    }
    if (!self->txn)
        self->txn = dbt_store_begin (self->live, err);
    if (!self->txn || s_apply (self->txn, msg->map, err)) {
        dbt_log (DBT_LOG_ERROR, "follow: '%s': cannot apply update %" PRIu64 ": %s",
                 self->name, seq, err);
        dbt_wtxn_abort (&self->txn);
        s_start_snapshot (self, "an update could not be applied");
        return;
    }
    self->applied = seq;
    dbt_wtxn_set_pubseq (self->txn, seq);       //  the store says how far it reaches
    int64_t at = 0;
    if (dbt_mp_field_i64 (msg->map, "at", false, &at, err) == 0 && at > 0)
        self->delay = dbt_time_ms () - at;
}

void
dbt_follow_handle (dbt_follow_t *self)
{
    char err [DBT_ERRMSG_LEN];
    if (self->state == S_IDLE)
        return;
    //  Snapshot pages.
    while (self->dealer && (zsock_events (self->dealer) & ZMQ_POLLIN)) {
        dbt_msg_t *msg = dbt_msg_recv (self->dealer, false, err);
        if (!msg)
            continue;
        uint64_t rid = 0, code = 0;
        if (msg->command == DBT_C_REPLY && self->pending
        &&  dbt_mp_field_u64 (msg->map, "rid", true, &rid, err) == 0 && rid == self->rid
        &&  dbt_mp_field_u64 (msg->map, "code", true, &code, err) == 0) {
            self->pending = false;
            dbt_reply_t reply = { (int) code, NULL, NULL, dbt_mp_get (msg->map, "data") };
            dbt_mp_field_str (msg->map, "message", false, &reply.message, err);
            if (self->state == S_PAGING)
                s_handle_page (self, &reply);
            free (reply.message);
        }
        dbt_msg_destroy (&msg);
    }
    //  Updates and heartbeats.
    self->delay = -1;
    for (int n = 0; n < MAX_MSGS && self->sub && (zsock_events (self->sub) & ZMQ_POLLIN); n++) {
        dbt_msg_t *msg = dbt_msg_recv (self->sub, false, err);
        if (!msg)
            continue;
        self->heard = dbt_clock_ms ();
        s_handle_state (self, &msg);
        if (msg) {
            dbt_msg_destroy (&self->last);
            self->last = msg;
        }
    }
    if (self->txn) {
        if (dbt_wtxn_commit (&self->txn, err)) {
            dbt_log (DBT_LOG_ERROR, "follow: '%s': commit failed: %s", self->name, err);
            s_start_snapshot (self, "a commit failed");
        }
        else
            self->fns->applied (self->arg, self->applied, self->delay);
    }
    //  Timers: a page that got no answer; a subscription gone silent.
    int64_t now = dbt_clock_ms ();
    if (self->state == S_PAGING && self->pending && now - self->sent_at > REQUEST_TIMEOUT) {
        dbt_log (DBT_LOG_WARN, "follow: '%s': no snapshot page in %d ms, subscribing again",
                 self->name, REQUEST_TIMEOUT);
        s_subscribe (self);
    }
    else
    if (self->state != S_PAGING && now - self->heard > 3 * self->heartbeat_ms) {
        dbt_log (DBT_LOG_INFO, "follow: nothing from '%s' for %" PRId64 " ms, subscribing again",
                 self->name, now - self->heard);
        s_subscribe (self);
    }
}
