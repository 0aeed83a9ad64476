/*  =========================================================================
    dbt_dispatcher_state - the dispatcher's state publication (Clone)

    Part of the dispatcher module (see dbt_dispatcher.h and
    dbt_dispatcher_int.h). Every committed turn's changes (the store's
    journal) go out on an XPUB socket as UPDATE messages with consecutive
    sequence numbers; the last number is stored in the same commit, so a
    snapshot read from LMDB always knows how far it reaches. HUGZ says the
    instance and sequence when idle, and at once to each new subscriber,
    which tells it that its subscription works. SNAPSHOT serves the records
    a page at a time. Protocol: docs/protocol.md ("State replication").
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_dispatcher_int.h"

#define UPDATE_MAX_RECORDS  1000            //  records in one UPDATE
#define UPDATE_MAX_BYTES    (4 << 20)       //  bytes of records in one UPDATE
#define PAGE_MAX_RECORDS    1000            //  records in one SNAPSHOT page

int
dbt_disp__state_start (dbt_disp_t *self)
{
    self->updates = zlist_new ();
    self->publisher = zsock_new (ZMQ_XPUB);
    dbt_msg_limit (self->publisher);
    zsock_set_xpub_verbose (self->publisher, 1);   //  every subscription, not only the first
    zsock_set_sndhwm (self->publisher, 10000);     //  a slower replica loses updates and resyncs
    zsock_set_linger (self->publisher, 0);
    if (dbt_curve_apply (self->config->curve, self->publisher, DBT_CURVE_SERVER, "publisher"))
        return -1;
    if (zsock_bind (self->publisher, "%s", self->config->mesh_publish) < 0) {
        dbt_log (DBT_LOG_ERROR, "dispatcher: cannot bind '%s' for state updates: %s",
                 self->config->mesh_publish, zmq_strerror (errno));
        return -1;
    }
    self->hugz_ms = self->config->heartbeat_ms / 4;
    if (self->hugz_ms < 100)
        self->hugz_ms = 100;
    dbt_store_set_journal (self->store, true);
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = dbt_store_begin (self->store, err);
    if (txn) {
        self->pubseq = dbt_wtxn_pubseq (txn);
        dbt_wtxn_abort (&txn);
    }
    return 0;
}

void
dbt_disp__state_stop (dbt_disp_t *self)
{
    zmsg_t *msg;
    while (self->updates && (msg = (zmsg_t *) zlist_pop (self->updates)))
        zmsg_destroy (&msg);
    zlist_destroy (&self->updates);
    zsock_destroy (&self->publisher);
}

//  --------------------------------------------------------------------------
//  Updates

typedef struct {
    dbt_disp_t *self;
    dbt_mpw_t *jobs;            //  records of the message being built
    dbt_mpw_t *groups;
    dbt_mpw_t *gone_jobs;       //  ids deleted
    dbt_mpw_t *gone_groups;
    size_t count;               //  records in it
    size_t bytes;               //  their bytes
    zlist_t *bodies;            //  finished bodies (dbt_mpw_t), in order
} s_build_t;

static void
s_build_open (s_build_t *build)
{
    build->jobs = dbt_mpw_new ();
    build->groups = dbt_mpw_new ();
    build->gone_jobs = dbt_mpw_new ();
    build->gone_groups = dbt_mpw_new ();
    dbt_mpw_array (build->jobs);
    dbt_mpw_array (build->groups);
    dbt_mpw_array (build->gone_jobs);
    dbt_mpw_array (build->gone_groups);
    build->count = build->bytes = 0;
}

//  Close the message being built into a body without its sequence (that
//  is added once the count of messages is known).
static void
s_build_close (s_build_t *build)
{
    dbt_mpw_t *parts [] = { build->jobs, build->groups, build->gone_jobs, build->gone_groups };
    const char *names [] = { "jobs", "groups", "gone_jobs", "gone_groups" };
    dbt_mpw_t *body = dbt_mpw_new ();
    dbt_mpw_map (body);
    for (size_t i = 0; i < 4; i++) {
        dbt_mpw_end (parts [i]);
        size_t len;
        const char *data = dbt_mpw_data (parts [i], &len);
        dbt_mpw_str (body, names [i]);
        dbt_mpw_raw (body, data, len);
        dbt_mpw_destroy (&parts [i]);
    }
    zlist_append (build->bodies, body);
}

static int
s_build_add (bool group, const char *id, const char *record, size_t len, void *arg)
{
    s_build_t *build = (s_build_t *) arg;
    if (build->count && (build->count >= UPDATE_MAX_RECORDS || build->bytes + len > UPDATE_MAX_BYTES)) {
        s_build_close (build);
        s_build_open (build);
    }
    if (record)
        dbt_mpw_raw (group ? build->groups : build->jobs, record, len);
    else
        dbt_mpw_str (group ? build->gone_groups : build->gone_jobs, id);
    build->count++;
    build->bytes += len + strlen (id);
    return 0;
}

void
dbt_disp__state_prepare (dbt_disp_t *self)
{
    if (!self->txn || !self->publisher || dbt_wtxn_failed (self->txn) || !dbt_wtxn_changes (self->txn))
        return;
    s_build_t build = { self, NULL, NULL, NULL, NULL, 0, 0, zlist_new () };
    s_build_open (&build);
    dbt_wtxn_each_change (self->txn, s_build_add, &build);
    s_build_close (&build);
    //  Number the messages and seal them; the last number goes into the
    //  commit with the changes themselves.
    uint64_t seq = self->pubseq;
    int64_t now = dbt_time_ms ();
    dbt_mpw_t *body;
    while ((body = (dbt_mpw_t *) zlist_pop (build.bodies))) {
        dbt_mpw_kstr (body, "instance", self->instance);
        dbt_mpw_kstr (body, "node", self->config->worker_name);
        dbt_mpw_kstr (body, "lineage", dbt_store_lineage (self->store));
        dbt_mpw_ku64 (body, "seq", ++seq);
        dbt_mpw_ki64 (body, "at", now);
        dbt_mpw_end (body);
        zmsg_t *msg = dbt_msg_encode (NULL, DBT_PROTO_STATE, DBT_S_UPDATE, body);
        zlist_append (self->updates, msg);
        dbt_mpw_destroy (&body);
    }
    zlist_destroy (&build.bodies);
    dbt_wtxn_set_pubseq (self->txn, seq);
    self->pubseq_next = seq;
}

void
dbt_disp__state_publish (dbt_disp_t *self, bool committed)
{
    if (!self->updates)
        return;
    if (committed && self->pubseq_next > self->pubseq)
        self->pubseq = self->pubseq_next;
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlist_pop (self->updates))) {
        if (!committed || zmsg_send (&msg, self->publisher))
            zmsg_destroy (&msg);
    }
    if (committed)
        self->hugz_due = dbt_clock_ms () + self->hugz_ms;
}

//  --------------------------------------------------------------------------
//  Heartbeats and subscriptions

static void
s_send_hugz (dbt_disp_t *self)
{
    dbt_mpw_map (self->writer);
    dbt_mpw_kstr (self->writer, "instance", self->instance);
    dbt_mpw_kstr (self->writer, "node", self->config->worker_name);
    dbt_mpw_kstr (self->writer, "lineage", dbt_store_lineage (self->store));
    dbt_mpw_ku64 (self->writer, "seq", self->pubseq);
    dbt_mpw_ki64 (self->writer, "at", dbt_time_ms ());
    dbt_mpw_end (self->writer);
    dbt_msg_send (self->publisher, NULL, DBT_PROTO_STATE, DBT_S_HUGZ, self->writer);
    self->hugz_due = dbt_clock_ms () + self->hugz_ms;
}

void
dbt_disp__state_tick (dbt_disp_t *self)
{
    if (self->publisher && dbt_clock_ms () >= self->hugz_due)
        s_send_hugz (self);
}

void
dbt_disp__state_subscription (dbt_disp_t *self)
{
    bool subscribed = false;
    for (int n = 0; n < 100 && (zsock_events (self->publisher) & ZMQ_POLLIN); n++) {
        zframe_t *frame = zframe_recv (self->publisher);
        if (frame && zframe_size (frame) > 0 && zframe_data (frame) [0] == 1)
            subscribed = true;
        zframe_destroy (&frame);
    }
    //  A new subscriber learns at once that its subscription works.
    if (subscribed)
        s_send_hugz (self);
}

//  --------------------------------------------------------------------------
//  SNAPSHOT: {after, groups, limit} -> {instance, node, seq, records, next}

static int
s_page_add (bool group, const char *id, const char *record, size_t len, void *arg)
{
    dbt_mpw_raw ((dbt_mpw_t *) arg, record, len);
    return 0;
}

void
dbt_disp__handle_snapshot (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *after = NULL;
    bool groups = false;
    uint64_t limit = PAGE_MAX_RECORDS;
    if (dbt_mp_field_str (msg->map, "after", false, &after, err)
    ||  dbt_mp_field_bool (msg->map, "groups", false, &groups, err)
    ||  dbt_mp_field_u64 (msg->map, "limit", false, &limit, err)) {
        dbt_disp__reply_error (self, msg->identity, rid, 400, err);
        free (after);
        return;
    }
    if (limit == 0 || limit > PAGE_MAX_RECORDS)
        limit = PAGE_MAX_RECORDS;
    dbt_mpw_t *records = dbt_mpw_new ();
    dbt_mpw_array (records);
    uint64_t pubseq = 0;
    char *next = NULL;
    int rc = dbt_store_page (self->store, groups, after, (size_t) limit, s_page_add, records,
                             &pubseq, &next, err);
    dbt_mpw_end (records);
    if (rc)
        dbt_disp__reply_error (self, msg->identity, rid, 500, err);
    else {
        size_t len;
        const char *data = dbt_mpw_data (records, &len);
        dbt_disp__reply_begin (self, rid, 200, NULL);
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "instance", self->instance);
        dbt_mpw_kstr (self->writer, "node", self->config->worker_name);
        dbt_mpw_kstr (self->writer, "lineage", dbt_store_lineage (self->store));
        dbt_mpw_ku64 (self->writer, "seq", pubseq);
        dbt_mpw_kbool (self->writer, "groups", groups);
        dbt_mpw_str (self->writer, "records");
        dbt_mpw_raw (self->writer, data, len);
        dbt_mpw_kstr (self->writer, "next", next);
        dbt_mpw_end (self->writer);
        dbt_disp__reply_end (self, msg->identity, rid, false);
    }
    dbt_mpw_destroy (&records);
    free (next);
    free (after);
}
