/*  =========================================================================
    dbt_replica - the replica actor: other dispatchers' state, kept here

    See dbt_replica.h. One loop: poll the pipe and every peer's DEALER and
    SUB; handle what arrived; run each peer's timers (ping, request
    timeout); commit each live replica's transaction of this turn. A
    peer's life: WAITING (no publish endpoint known yet) -> SUBSCRIBING
    (SUB connected, waiting for its first message) -> PAGING (snapshot
    pages into a fresh store, updates buffered) -> LIVE.
    =========================================================================
*/
#include "dbt_classes.h"
#include <dirent.h>

#define PAGE_RECORDS      1000      //  records asked for per snapshot page
#define REQUEST_TIMEOUT   5000      //  ms before a PING or page is given up
#define BACKOFF_MIN       1000      //  ms between pings of a peer that is down
#define BACKOFF_MAX       30000
#define MAX_MSGS          2000      //  SUB messages handled per peer and turn
#define MAX_BUFFERED      200000    //  updates buffered during a snapshot

typedef enum { S_WAITING, S_SUBSCRIBING, S_PAGING, S_LIVE } s_state_t;
typedef enum { R_NONE, R_PING, R_PAGE } s_request_t;

typedef struct {
    char *endpoint;             //  its mesh endpoint
    zsock_t *dealer;            //  requests to it (PING, SNAPSHOT)
    uint64_t rid;               //  last request id
    s_request_t pending;        //  request awaiting its reply
    int64_t sent_at;            //  monotonic ms it was sent
    int64_t ping_due;           //  monotonic ms of the next PING
    int64_t backoff;            //  ms between pings while down
    bool up;                    //  answered the last PING
    bool self;                  //  this node itself: nothing to replicate
    char *node;                 //  its node name (the replica's name)
    char *instance;             //  its current run
    char *publish;              //  its publish endpoint, subscribed to
    zsock_t *sub;               //  updates
    int64_t sub_heard;          //  monotonic ms of its last message (or subscription)
    s_state_t state;            //  see the file header
    //  Snapshot being taken
    dbt_store_t *fresh;         //  store being filled
    char *fresh_dir;            //  its directory
    char *after;                //  last id of the previous page, NULL = start
    bool groups;                //  paging groups (jobs are done)
    uint64_t snap_seq;          //  sequence of the first page
    char *snap_instance;        //  run of the first page
    bool first_page;            //  the next page is the first
    zlist_t *buffered;          //  dbt_msg_t of updates that arrived meanwhile
    //  Live replica
    dbt_store_t *live;          //  the store in the view (the view owns it)
    char *live_dir;             //  its directory
    dbt_wtxn_t *txn;            //  this turn's transaction on it
    uint64_t applied;           //  last update applied
    unsigned generation;        //  numbers the replica directories
} s_origin_t;

typedef struct {
    zsock_t *pipe;
    dbt_replica_args_t *args;
    s_origin_t *origins;        //  one per peer
    size_t norigins;
    char *dir;                  //  data_dir/replica
    dbt_mpw_t *writer;
    bool terminated;
} self_t;

//  --------------------------------------------------------------------------
//  Helpers

static void
s_buffer_clear (s_origin_t *origin)
{
    dbt_msg_t *msg;
    while (origin->buffered && (msg = (dbt_msg_t *) zlist_pop (origin->buffered)))
        dbt_msg_destroy (&msg);
}

static void
s_drop_fresh (s_origin_t *origin)
{
    if (origin->fresh) {
        dbt_store_destroy (&origin->fresh);
        dbt_store_remove_replica (origin->fresh_dir);
    }
    zstr_free (&origin->fresh_dir);
    zstr_free (&origin->after);
    zstr_free (&origin->snap_instance);
}

static void
s_new_dealer (s_origin_t *origin)
{
    zsock_destroy (&origin->dealer);
    origin->dealer = zsock_new (ZMQ_DEALER);
    dbt_msg_limit (origin->dealer);
    zsock_set_linger (origin->dealer, 0);
    zsock_set_sndtimeo (origin->dealer, 0);
    zsock_set_rcvhwm (origin->dealer, 1000);
    zsock_connect (origin->dealer, "%s", origin->endpoint);
    origin->pending = R_NONE;
}

//  Send a request built in self->writer (rid added here).
static void
s_request (self_t *self, s_origin_t *origin, int command, s_request_t kind)
{
    origin->rid++;
    dbt_mpw_ku64 (self->writer, "rid", origin->rid);
    dbt_mpw_end (self->writer);
    //  A request that cannot even be queued (an inproc peer that went
    //  away) counts as unanswered at once.
    bool sent = dbt_msg_send (origin->dealer, NULL, DBT_PROTO_CLIENT, command, self->writer) == 0;
    origin->pending = kind;
    origin->sent_at = sent ? dbt_clock_ms () : dbt_clock_ms () - REQUEST_TIMEOUT - 1;
}

static void
s_ask_page (self_t *self, s_origin_t *origin)
{
    dbt_mpw_map (self->writer);
    dbt_mpw_kstr (self->writer, "after", origin->after);
    dbt_mpw_kbool (self->writer, "groups", origin->groups);
    dbt_mpw_ku64 (self->writer, "limit", PAGE_RECORDS);
    s_request (self, origin, DBT_C_SNAPSHOT, R_PAGE);
}

//  Start (or start again) a snapshot: a fresh store, first page asked.
static void
s_start_snapshot (self_t *self, s_origin_t *origin, const char *why)
{
    char err [DBT_ERRMSG_LEN];
    s_drop_fresh (origin);
    origin->fresh_dir = dbt_printf ("%s/%s.%u", self->dir, origin->node, ++origin->generation);
    origin->fresh = dbt_store_open_replica (origin->fresh_dir, self->args->config->state_map_max, err);
    if (!origin->fresh) {
        dbt_log (DBT_LOG_ERROR, "replica: %s", err);
        zstr_free (&origin->fresh_dir);
        origin->state = S_SUBSCRIBING;          //  try again on the next message
        return;
    }
    dbt_log (DBT_LOG_INFO, "replica: '%s' (%s): taking a snapshot (%s)", origin->node,
             origin->endpoint, why);
    origin->groups = false;
    origin->first_page = true;
    origin->state = S_PAGING;
    if (origin->pending == R_NONE)
        s_ask_page (self, origin);
    //  else: the page is asked once the pending PING is answered
}

//  Forget what the peer was: a new publish endpoint, or a new peer.
static void
s_subscribe (s_origin_t *origin, const char *publish)
{
    zsock_destroy (&origin->sub);
    char *copy = dbt_strdup (publish);        //  publish may be origin->publish
    free (origin->publish);
    origin->publish = copy;
    origin->sub = zsock_new (ZMQ_SUB);
    dbt_msg_limit (origin->sub);
    zsock_set_rcvhwm (origin->sub, 100000);
    zsock_set_subscribe (origin->sub, DBT_PROTO_STATE);
    if (zsock_connect (origin->sub, "%s", origin->publish))
        dbt_log (DBT_LOG_ERROR, "replica: cannot subscribe to '%s'", origin->publish);
    origin->state = S_SUBSCRIBING;
    origin->sub_heard = dbt_clock_ms ();
    s_buffer_clear (origin);
}

//  --------------------------------------------------------------------------
//  Applying records

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

//  The snapshot is complete: apply what was buffered after its first
//  page, then put the new store in the view.
static void
s_finish_snapshot (self_t *self, s_origin_t *origin)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = dbt_store_begin (origin->fresh, err);
    uint64_t applied = origin->snap_seq;
    int rc = txn ? 0 : -1;
    dbt_msg_t *msg;
    while (rc == 0 && (msg = (dbt_msg_t *) zlist_pop (origin->buffered))) {
        uint64_t seq = s_seq_of (msg);
        if (!s_instance_is (msg, origin->snap_instance) || seq <= applied) {
            dbt_msg_destroy (&msg);
            continue;
        }
        if (seq != applied + 1) {
            dbt_log (DBT_LOG_INFO, "replica: '%s': update %" PRIu64 " follows %" PRIu64
                     " during the snapshot, taking another", origin->node, seq, applied);
            rc = 1;
        }
        else
        if (s_apply (txn, msg->map, err)) {
            dbt_log (DBT_LOG_ERROR, "replica: '%s': %s", origin->node, err);
            rc = -1;
        }
        else
            applied = seq;
        dbt_msg_destroy (&msg);
    }
    if (rc == 0)
        rc = dbt_wtxn_commit (&txn, err);
    dbt_wtxn_abort (&txn);
    if (rc) {
        if (rc < 0)
            dbt_log (DBT_LOG_ERROR, "replica: '%s': cannot complete the snapshot: %s", origin->node, err);
        s_start_snapshot (self, origin, "the first one could not be completed");
        return;
    }
    dbt_store_t *old = dbt_view_swap (self->args->view, origin->node, origin->fresh);
    if (old == origin->fresh) {
        //  The view refused it (the name is this node's own source).
        s_drop_fresh (origin);
        origin->state = S_WAITING;
        return;
    }
    if (old) {
        dbt_store_destroy (&old);
        dbt_store_remove_replica (origin->live_dir);
    }
    zstr_free (&origin->live_dir);
    origin->live = origin->fresh;
    origin->live_dir = origin->fresh_dir;
    origin->fresh = NULL;
    origin->fresh_dir = NULL;
    free (origin->instance);
    origin->instance = dbt_strdup (origin->snap_instance);
    s_drop_fresh (origin);
    origin->applied = applied;
    origin->state = S_LIVE;
    dbt_view_progress (self->args->view, origin->node, applied, dbt_clock_ms ());
    dbt_log (DBT_LOG_INFO, "replica: '%s' is live at update %" PRIu64, origin->node, applied);
}

static void
s_handle_page (self_t *self, s_origin_t *origin, dbt_reply_t *reply)
{
    char err [DBT_ERRMSG_LEN];
    const msgpack_object *data = reply->data;
    char *instance = NULL, *next = NULL;
    uint64_t seq = 0;
    if (reply->code != 200
    ||  dbt_mp_field_str (data, "instance", true, &instance, err)
    ||  dbt_mp_field_u64 (data, "seq", true, &seq, err)
    ||  dbt_mp_field_str (data, "next", false, &next, err)) {
        dbt_log (DBT_LOG_WARN, "replica: '%s': snapshot page refused: %s", origin->node,
                 reply->message ? reply->message : err);
        free (instance);
        free (next);
        s_start_snapshot (self, origin, "a page was refused");
        return;
    }
    if (origin->first_page) {
        origin->snap_seq = seq;
        origin->snap_instance = dbt_strdup (instance);
        origin->first_page = false;
    }
    else
    if (!streq (instance, origin->snap_instance)) {
        free (instance);
        free (next);
        s_start_snapshot (self, origin, "the peer restarted during the snapshot");
        return;
    }
    free (instance);
    //  Each page in one transaction of the fresh store.
    const msgpack_object *records = dbt_mp_get (data, "records");
    dbt_wtxn_t *txn = dbt_store_begin (origin->fresh, err);
    int rc = txn ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && records && records->type == MSGPACK_OBJECT_ARRAY
                         && i < records->via.array.size; i++) {
        const msgpack_object *item = &records->via.array.ptr [i];
        if (origin->groups) {
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
        dbt_log (DBT_LOG_ERROR, "replica: '%s': cannot store a snapshot page: %s", origin->node, err);
        free (next);
        s_start_snapshot (self, origin, "a page could not be stored");
        return;
    }
    free (origin->after);
    origin->after = next;
    if (!next && !origin->groups) {
        origin->groups = true;              //  the jobs are done: now the groups
        s_ask_page (self, origin);
    }
    else
    if (next)
        s_ask_page (self, origin);
    else
        s_finish_snapshot (self, origin);
}

//  --------------------------------------------------------------------------
//  PING

static void
s_ping (self_t *self, s_origin_t *origin)
{
    dbt_mpw_map (self->writer);
    s_request (self, origin, DBT_C_PING, R_PING);
    origin->ping_due = dbt_clock_ms () + (origin->up ? 2 * self->args->config->heartbeat_ms
                                                     : origin->backoff);
}

static void
s_handle_ping (self_t *self, s_origin_t *origin, dbt_reply_t *reply)
{
    char err [DBT_ERRMSG_LEN];
    char *node = NULL, *publish = NULL, *instance = NULL;
    if (reply->code != 200
    ||  dbt_mp_field_str (reply->data, "node", true, &node, err)
    ||  dbt_mp_field_str (reply->data, "instance", true, &instance, err)
    ||  dbt_mp_field_str (reply->data, "publish", false, &publish, err)
    ||  !dbt_id_valid (node)) {
        dbt_log (DBT_LOG_WARN, "replica: peer %s gave a bad PING reply", origin->endpoint);
        goto done;
    }
    if (!origin->up)
        dbt_log (DBT_LOG_INFO, "replica: peer %s is up (node '%s')", origin->endpoint, node);
    origin->up = true;
    origin->backoff = BACKOFF_MIN;
    origin->self = dbt_routes_peer_up (self->args->routes, origin->endpoint, reply->data);
    if (origin->self)
        goto done;
    //  Node names name the replicas: no peer may share this node's, and
    //  two peers may not share one.
    if (streq (node, self->args->config->worker_name)) {
        dbt_log (DBT_LOG_ERROR, "replica: peer %s says it is node '%s', as this node does; "
                 "not replicating it (give each node its own worker_name)", origin->endpoint, node);
        goto done;
    }
    for (size_t i = 0; i < self->norigins; i++) {
        s_origin_t *other = &self->origins [i];
        if (other != origin && other->node && streq (other->node, node)) {
            dbt_log (DBT_LOG_ERROR, "replica: peers %s and %s both say they are node '%s'; "
                     "ignoring %s (give each node its own worker_name)", other->endpoint,
                     origin->endpoint, node, origin->endpoint);
            goto done;
        }
    }
    if (!origin->node)
        origin->node = dbt_strdup (node);
    else
    if (!streq (origin->node, node)) {
        dbt_log (DBT_LOG_WARN, "replica: peer %s is now node '%s' (was '%s')", origin->endpoint,
                 node, origin->node);
        free (origin->node);
        origin->node = dbt_strdup (node);
        origin->state = S_WAITING;
    }
    //  A new peer, a new publish endpoint or a new run of the peer: subscribe
    //  (again), then the first message starts the snapshot.
    if (publish && (!origin->publish || !streq (publish, origin->publish) || origin->state == S_WAITING
                    || (origin->instance && !streq (origin->instance, instance)))) {
        if (origin->instance && !streq (origin->instance, instance))
            dbt_log (DBT_LOG_INFO, "replica: '%s' restarted, subscribing again", node);
        free (origin->instance);
        origin->instance = dbt_strdup (instance);
        s_subscribe (origin, publish);
    }
done:
    free (node);
    free (publish);
    free (instance);
}

//  --------------------------------------------------------------------------
//  Updates from the peer's PUB

static void
s_handle_state (self_t *self, s_origin_t *origin, dbt_msg_t **msg_p)
{
    dbt_msg_t *msg = *msg_p;
    char err [DBT_ERRMSG_LEN];
    if (!streq (msg->signature, DBT_PROTO_STATE))
        return;
    uint64_t seq = s_seq_of (msg);
    if (origin->state == S_SUBSCRIBING)
        s_start_snapshot (self, origin, origin->live ? "resubscribed" : "first sync");
    if (origin->state == S_PAGING) {
        if (msg->command == DBT_S_UPDATE && zlist_size (origin->buffered) < MAX_BUFFERED) {
            zlist_append (origin->buffered, msg);
            *msg_p = NULL;
        }
        return;
    }
    if (origin->state != S_LIVE)
        return;
    if (!s_instance_is (msg, origin->instance)) {
        s_start_snapshot (self, origin, "the peer restarted");
        return;
    }
    if (msg->command == DBT_S_HUGZ) {
        if (seq > origin->applied)
            s_start_snapshot (self, origin, "updates were missed");
        else
            dbt_view_progress (self->args->view, origin->node, origin->applied, dbt_clock_ms ());
        return;
    }
    if (msg->command != DBT_S_UPDATE || seq <= origin->applied)
        return;
    if (seq != origin->applied + 1) {
        if (origin->txn)
            dbt_wtxn_commit (&origin->txn, err);
        s_start_snapshot (self, origin, "updates were missed");
        return;
    }
    if (!origin->txn)
        origin->txn = dbt_store_begin (origin->live, err);
    if (!origin->txn || s_apply (origin->txn, msg->map, err)) {
        dbt_log (DBT_LOG_ERROR, "replica: '%s': cannot apply update %" PRIu64 ": %s",
                 origin->node, seq, err);
        dbt_wtxn_abort (&origin->txn);
        s_start_snapshot (self, origin, "an update could not be applied");
        return;
    }
    origin->applied = seq;
    int64_t at = 0;
    if (dbt_mp_field_i64 (msg->map, "at", false, &at, err) == 0 && at > 0)
        dbt_view_delay (self->args->view, origin->node, dbt_time_ms () - at);
}

//  End of a turn: commit each live replica's transaction.
static void
s_commit (self_t *self, s_origin_t *origin)
{
    char err [DBT_ERRMSG_LEN];
    if (!origin->txn)
        return;
    if (dbt_wtxn_commit (&origin->txn, err)) {
        dbt_log (DBT_LOG_ERROR, "replica: '%s': commit failed: %s", origin->node, err);
        s_start_snapshot (self, origin, "a commit failed");
        return;
    }
    dbt_view_progress (self->args->view, origin->node, origin->applied, dbt_clock_ms ());
}

//  --------------------------------------------------------------------------
//  Per peer, every turn

static void
s_drain (self_t *self, s_origin_t *origin)
{
    char err [DBT_ERRMSG_LEN];
    //  Replies to our requests.
    while (origin->dealer && (zsock_events (origin->dealer) & ZMQ_POLLIN)) {
        dbt_msg_t *msg = dbt_msg_recv (origin->dealer, false, err);
        if (!msg)
            continue;
        uint64_t rid = 0, code = 0;
        if (msg->command == DBT_C_REPLY
        &&  dbt_mp_field_u64 (msg->map, "rid", true, &rid, err) == 0 && rid == origin->rid
        &&  dbt_mp_field_u64 (msg->map, "code", true, &code, err) == 0 && origin->pending != R_NONE) {
            dbt_reply_t reply = { (int) code, NULL, NULL, dbt_mp_get (msg->map, "data") };
            dbt_mp_field_str (msg->map, "message", false, &reply.message, err);
            s_request_t kind = origin->pending;
            origin->pending = R_NONE;
            if (kind == R_PING)
                s_handle_ping (self, origin, &reply);
            else
            if (origin->state == S_PAGING)
                s_handle_page (self, origin, &reply);
            free (reply.message);
        }
        dbt_msg_destroy (&msg);
    }
    //  Updates.
    for (int n = 0; n < MAX_MSGS && origin->sub && (zsock_events (origin->sub) & ZMQ_POLLIN); n++) {
        dbt_msg_t *msg = dbt_msg_recv (origin->sub, false, err);
        origin->sub_heard = dbt_clock_ms ();
        if (msg)
            s_handle_state (self, origin, &msg);
        dbt_msg_destroy (&msg);
    }
    s_commit (self, origin);
    //  Timers.
    int64_t now = dbt_clock_ms ();
    //  A peer that answers but whose updates (or heartbeats) stopped: the
    //  subscription is broken (an inproc peer restarted); make a new one.
    int64_t silence = 3 * self->args->config->heartbeat_ms;
    if (origin->up && origin->sub && origin->state != S_PAGING && now - origin->sub_heard > silence) {
        dbt_log (DBT_LOG_INFO, "replica: nothing from '%s' for %" PRId64 " ms, subscribing again",
                 origin->node, now - origin->sub_heard);
        s_subscribe (origin, origin->publish);
    }
    if (origin->pending != R_NONE && now - origin->sent_at > REQUEST_TIMEOUT) {
        if (origin->up || origin->pending == R_PAGE)
            dbt_log (DBT_LOG_WARN, "replica: peer %s did not answer in %d ms", origin->endpoint,
                     REQUEST_TIMEOUT);
        if (origin->up) {
            origin->up = false;
            dbt_routes_peer_down (self->args->routes, origin->endpoint);
        }
        origin->backoff = origin->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : origin->backoff * 2;
        s_new_dealer (origin);              //  drop what is queued for it
        if (origin->state == S_PAGING)
            origin->state = S_SUBSCRIBING;  //  the next message starts over
        origin->ping_due = now + origin->backoff;
    }
    //  Paging with nothing asked (a PING was in flight, or a send failed).
    if (origin->pending == R_NONE && origin->state == S_PAGING && origin->fresh)
        s_ask_page (self, origin);
    if (origin->pending == R_NONE && now >= origin->ping_due)
        s_ping (self, origin);
}

//  --------------------------------------------------------------------------
//  The actor

static void
s_clear_dir (const char *dir)
{
    DIR *d = opendir (dir);
    if (!d)
        return;
    struct dirent *entry;
    while ((entry = readdir (d))) {
        if (entry->d_name [0] == '.')
            continue;
        char *path = dbt_printf ("%s/%s", dir, entry->d_name);
        dbt_store_remove_replica (path);
        free (path);
    }
    closedir (d);
}

static void
s_collect_peer (const dbt_peer_t *peer, void *arg)
{
    self_t *self = (self_t *) arg;
    self->origins = (s_origin_t *) dbt_realloc (self->origins, (self->norigins + 1) * sizeof (s_origin_t));
    s_origin_t *origin = &self->origins [self->norigins++];
    memset (origin, 0, sizeof (*origin));
    origin->endpoint = dbt_strdup (peer->endpoint);
    origin->self = peer->self;
    origin->backoff = BACKOFF_MIN;
    origin->buffered = zlist_new ();
}

void
dbt_replica_actor (zsock_t *pipe, void *args)
{
    self_t *self = (self_t *) dbt_malloc (sizeof (self_t));
    self->pipe = pipe;
    self->args = (dbt_replica_args_t *) args;
    self->writer = dbt_mpw_new ();
    self->dir = dbt_printf ("%s/replica", self->args->config->data_dir);
    char err [DBT_ERRMSG_LEN];
    if (dbt_mkdirs (self->dir, err))
        dbt_log (DBT_LOG_ERROR, "replica: %s", err);
    s_clear_dir (self->dir);                //  replicas are rebuilt at every start
    dbt_routes_each_peer (self->args->routes, s_collect_peer, self);
    for (size_t i = 0; i < self->norigins; i++)
        if (!self->origins [i].self)
            s_new_dealer (&self->origins [i]);
    zsock_signal (pipe, 0);
    zmq_pollitem_t *items = (zmq_pollitem_t *) dbt_malloc ((1 + 2 * self->norigins) * sizeof (zmq_pollitem_t));
    while (!self->terminated) {
        size_t n = 0;
        items [n++] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        for (size_t i = 0; i < self->norigins; i++) {
            if (self->origins [i].dealer)
                items [n++] = (zmq_pollitem_t) { zsock_resolve (self->origins [i].dealer), 0, ZMQ_POLLIN, 0 };
            if (self->origins [i].sub)
                items [n++] = (zmq_pollitem_t) { zsock_resolve (self->origins [i].sub), 0, ZMQ_POLLIN, 0 };
        }
        if (zmq_poll (items, (int) n, 100) < 0 && errno != EINTR)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM"))
                self->terminated = true;
            free (command);
        }
        for (size_t i = 0; i < self->norigins && !self->terminated; i++)
            if (!self->origins [i].self)
                s_drain (self, &self->origins [i]);
    }
    free (items);
    for (size_t i = 0; i < self->norigins; i++) {
        s_origin_t *origin = &self->origins [i];
        dbt_wtxn_abort (&origin->txn);
        s_drop_fresh (origin);
        s_buffer_clear (origin);
        zlist_destroy (&origin->buffered);
        zsock_destroy (&origin->dealer);
        zsock_destroy (&origin->sub);
        free (origin->endpoint);
        free (origin->node);
        free (origin->instance);
        free (origin->publish);
        free (origin->live_dir);            //  the view closes the store
    }
    free (self->origins);
    free (self->dir);
    dbt_mpw_destroy (&self->writer);
    free (self);
}

//  --------------------------------------------------------------------------
//  Self test: a dispatcher with jobs, a replica of it that catches up
//  from a snapshot, follows updates, and starts over after a restart.

static int
s_test_wait_job (dbt_view_t *view, const char *id, dbt_state_t state, int ms)
{
    char err [DBT_ERRMSG_LEN];
    int64_t deadline = dbt_clock_ms () + ms;
    while (dbt_clock_ms () < deadline) {
        dbt_job_t *job = NULL;
        dbt_origin_t origin;
        if (dbt_view_job (view, id, &job, &origin, err) == 0 && job->state == state && !origin.own) {
            dbt_job_destroy (&job);
            return 0;
        }
        dbt_job_destroy (&job);
        zclock_sleep (10);
    }
    return -1;
}

void
dbt_replica_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("replica");
    char *ini = dbt_printf ("[app]\nworker_name = origin\ndata_dir = %s/a\n"
                            "[mesh]\nbind = inproc://dbt-replica-test\nheartbeat_interval = 200ms\n"
                            "[db.s]\ntype = sqlite\ndsn = %s/s.db\n[results.r]\ntype = sqlite\n"
                            "dsn = %s/r.db\n", dir, dir, dir);
    dbt_config_t *config = dbt_config_from_string (ini, err);
    free (ini);
    assert (config);
    dbt_tasks_t *tasks = dbt_tasks_new ();
    const char *text = "-- name: t0\nSELECT 1;\n";
    assert (dbt_tasks_parse (tasks, text, strlen (text), "t.sql", err) == 0);
    assert (dbt_tasks_bind (tasks, config, err) == 0);
    dbt_tasks_lookup (tasks, "t0")->nparams = 0;
    char *adir = dbt_printf ("%s/a", dir);
    dbt_store_t *store = dbt_store_open (adir, 64 << 20, 0, err);
    assert (store);
    dbt_dispatcher_args_t dargs = { config, tasks, store, NULL, NULL };
    zactor_t *dispatcher = zactor_new (dbt_dispatcher_actor, &dargs);
    dbt_client_t *client = dbt_client_new (config->mesh_bind, err);
    //  1,500 jobs before the replica starts: more than one snapshot page.
    dbt_mpw_t *w = dbt_client_begin (client);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_array (w);
    for (int i = 0; i < 1500; i++) {
        char id [16];
        snprintf (id, sizeof (id), "pre%d", i);
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "task", "t0");
        dbt_mpw_kstr (w, "id", id);
        dbt_mpw_kstr (w, "queue", "parked");
        dbt_mpw_end (w);
    }
    dbt_mpw_end (w);
    dbt_reply_t *reply = NULL;
    assert (dbt_client_call (client, DBT_C_SUBMIT, 5000, &reply, err) == 0 && reply->code == 200);
    dbt_reply_destroy (&reply);
    //  The replica's node: another config, peers = the dispatcher.
    ini = dbt_printf ("[app]\nworker_name = reader\ndata_dir = %s/b\n"
                      "[mesh]\ndispatch = false\npeers = inproc://dbt-replica-test\n"
                      "heartbeat_interval = 200ms\n"
                      "[db.s]\ntype = sqlite\ndsn = %s/s.db\n[results.r]\ntype = sqlite\n"
                      "dsn = %s/r.db\n", dir, dir, dir);
    dbt_config_t *rconfig = dbt_config_from_string (ini, err);
    free (ini);
    assert (rconfig);
    dbt_routes_t *routes = dbt_routes_new (rconfig);
    dbt_view_t *view = dbt_view_new (NULL, "reader");
    dbt_replica_args_t rargs = { rconfig, routes, view };
    zactor_t *replica = zactor_new (dbt_replica_actor, &rargs);
    assert (s_test_wait_job (view, "pre1499", DBT_STATE_PENDING, 5000) == 0);
    assert (s_test_wait_job (view, "pre0", DBT_STATE_PENDING, 100) == 0);
    //  Updates follow.
    assert (dbt_testing_submit (client, &(dbt_testing_job_t) { .task = "t0", .id = "live1",
                                .queue = "parked" }) == 200);
    assert (s_test_wait_job (view, "live1", DBT_STATE_PENDING, 2000) == 0);
    w = dbt_client_begin (client);
    dbt_mpw_kstr (w, "job_id", "live1");
    assert (dbt_client_call (client, DBT_C_CANCEL, 3000, &reply, err) == 0 && reply->code == 200);
    dbt_reply_destroy (&reply);
    assert (s_test_wait_job (view, "live1", DBT_STATE_FAILURE, 2000) == 0);
    //  The routes learnt the peer.
    char *endpoint = dbt_routes_dispatcher (routes, "anything");
    assert (endpoint && streq (endpoint, "inproc://dbt-replica-test"));
    free (endpoint);
    //  A restart of the dispatcher (a new run) makes the replica start over.
    dbt_client_destroy (&client);
    zactor_destroy (&dispatcher);
    //  The old socket lets go of its inproc name once its linger is over.
    for (int tries = 0; tries < 50; tries++) {
        dispatcher = zactor_new (dbt_dispatcher_actor, &dargs);
        zstr_send (dispatcher, "LOCAL");
        char *local = zstr_recv (dispatcher);
        bool up = local && *local;
        free (local);
        if (up)
            break;
        zactor_destroy (&dispatcher);
        zclock_sleep (100);
    }
    assert (dispatcher);
    client = dbt_client_new (config->mesh_bind, err);
    assert (dbt_testing_submit (client, &(dbt_testing_job_t) { .task = "t0", .id = "after",
                                .queue = "parked" }) == 200);
    assert (s_test_wait_job (view, "after", DBT_STATE_PENDING, 8000) == 0);
    assert (s_test_wait_job (view, "pre7", DBT_STATE_PENDING, 100) == 0);

    zactor_destroy (&replica);
    dbt_client_destroy (&client);
    zactor_destroy (&dispatcher);
    dbt_view_destroy (&view);
    dbt_routes_destroy (&routes);
    dbt_config_destroy (&rconfig);
    dbt_store_destroy (&store);
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);
    free (adir);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("replica: ok\n");
}
