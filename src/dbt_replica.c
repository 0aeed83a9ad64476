/*  =========================================================================
    dbt_replica - the replica actor: other dispatchers' state, kept here

    See dbt_replica.h. One loop: poll the pipe, every peer's DEALER (PING)
    and every follower's sockets; handle what arrived; run each peer's
    timers. Following a peer's records (subscription, snapshot, updates)
    is dbt_follow's; this file decides whom to follow and keeps the
    replica stores: their directories, the view, a failover pair's
    passive member left alone.
    =========================================================================
*/
#include "dbt_classes.h"
#include <dirent.h>

#define REQUEST_TIMEOUT   5000      //  ms before a PING is given up
#define BACKOFF_MIN       1000      //  ms between pings of a peer that is down
#define BACKOFF_MAX       30000

typedef struct _self_t self_t;

typedef struct {
    self_t *owner;              //  the actor
    char *endpoint;             //  its mesh endpoint
    zsock_t *dealer;            //  PING requests to it
    uint64_t rid;               //  last request id
    bool pending;               //  a PING awaits its reply
    int64_t sent_at;            //  monotonic ms it was sent
    int64_t ping_due;           //  monotonic ms of the next PING
    int64_t backoff;            //  ms between pings while down
    bool up;                    //  answered the last PING
    bool self;                  //  this node itself: nothing to replicate
    bool partner;               //  this node's failover partner: in the own store
    char *node;                 //  its node name (the replica's name)
    dbt_pair_state_t role;      //  its failover role, 0 = not in a pair
    char *pair_partner;         //  its failover partner's endpoint
    dbt_follow_t *follow;       //  following its records, NULL = not
    dbt_store_t *fresh;         //  store of a snapshot being taken
    char *fresh_dir;            //  ... its directory
    dbt_store_t *live;          //  the replica in the view, NULL = none
    char *live_dir;             //  ... its directory
    dbt_store_t *retired;       //  the replica a new snapshot replaced
    char *retired_dir;
    unsigned generation;        //  numbers the replica directories
} s_origin_t;

struct _self_t {
    zsock_t *pipe;
    dbt_replica_args_t *args;
    s_origin_t *origins;        //  one per peer
    size_t norigins;
    char *dir;                  //  data_dir/replica
    dbt_mpw_t *writer;
    bool terminated;
};

//  --------------------------------------------------------------------------
//  The follower's side: stores for it, the view

static dbt_store_t *
s_fresh (void *arg, char *err)
{
    s_origin_t *origin = (s_origin_t *) arg;
    char *dir = dbt_printf ("%s/%s.%u", origin->owner->dir, origin->node, ++origin->generation);
    dbt_store_t *store = dbt_store_open_replica (dir, origin->owner->args->config->state_map_max, err);
    if (!store) {
        free (dir);
        return NULL;
    }
    origin->fresh = store;
    origin->fresh_dir = dir;
    return store;
}

static void
s_remove (dbt_store_t **store_p, char **dir_p)
{
    dbt_store_destroy (store_p);
    if (*dir_p)
        dbt_store_remove_replica (*dir_p);
    zstr_free (dir_p);
}

static void
s_drop (void *arg, dbt_store_t *store)
{
    s_origin_t *origin = (s_origin_t *) arg;
    if (store == origin->fresh)
        s_remove (&origin->fresh, &origin->fresh_dir);
    else
    if (store == origin->retired)
        s_remove (&origin->retired, &origin->retired_dir);
}

static void s_unfollow (s_origin_t *origin, bool keep_replica);

static dbt_store_t *
s_live (void *arg, dbt_store_t *store, uint64_t seq)
{
    s_origin_t *origin = (s_origin_t *) arg;
    self_t *self = origin->owner;
    dbt_store_t *old = dbt_view_swap (self->args->view, origin->node, store);
    if (old == store)
        return NULL;                //  the view refused it: the name is this node's own
    //  The replica it replaced goes when the follower drops it.
    s_remove (&origin->retired, &origin->retired_dir);
    origin->retired = origin->live;
    origin->retired_dir = origin->live_dir;
    origin->live = store;
    origin->live_dir = origin->fresh_dir;
    origin->fresh = NULL;
    origin->fresh_dir = NULL;
    dbt_view_progress (self->args->view, origin->node, seq, dbt_clock_ms ());
    //  The active member of a pair is live here: its partner's replica
    //  (the records before a failover) is out of date for good.
    for (size_t i = 0; origin->role == DBT_PAIR_ACTIVE && origin->pair_partner && i < self->norigins; i++) {
        s_origin_t *other = &self->origins [i];
        if (other != origin && other->live && streq (other->endpoint, origin->pair_partner)) {
            dbt_log (DBT_LOG_INFO, "replica: '%s' is active and live here; dropping the replica "
                     "of its partner '%s'", origin->node, other->node);
            s_unfollow (other, false);
        }
    }
    return store;
}

static void
s_applied (void *arg, uint64_t seq, int64_t delay_ms)
{
    s_origin_t *origin = (s_origin_t *) arg;
    dbt_view_progress (origin->owner->args->view, origin->node, seq, dbt_clock_ms ());
    if (delay_ms >= 0)
        dbt_view_delay (origin->owner->args->view, origin->node, delay_ms);
}

static const dbt_follow_fns_t s_fns = { s_fresh, s_live, s_drop, s_applied };

//  Stop following; keep the replica in the view (stale) or remove it.
static void
s_unfollow (s_origin_t *origin, bool keep_replica)
{
    dbt_follow_destroy (&origin->follow);   //  drops a snapshot being taken
    s_remove (&origin->fresh, &origin->fresh_dir);
    s_remove (&origin->retired, &origin->retired_dir);
    if (!keep_replica && origin->live) {
        dbt_store_t *old = dbt_view_swap (origin->owner->args->view, origin->node, NULL);
        assert (old == origin->live);
        s_remove (&origin->live, &origin->live_dir);
    }
}

//  --------------------------------------------------------------------------
//  PING

static void
s_new_dealer (s_origin_t *origin)
{
    zsock_destroy (&origin->dealer);
    origin->dealer = zsock_new (ZMQ_DEALER);
    dbt_msg_limit (origin->dealer);
    zsock_set_linger (origin->dealer, 0);
    zsock_set_sndtimeo (origin->dealer, 0);
    zsock_set_rcvhwm (origin->dealer, 1000);
    if (dbt_curve_apply (origin->owner->args->config->curve, origin->dealer, DBT_CURVE_CLIENT, NULL) == 0)
        zsock_connect (origin->dealer, "%s", origin->endpoint);
    origin->pending = false;
}

static void
s_ping (self_t *self, s_origin_t *origin)
{
    dbt_mpw_map (self->writer);
    dbt_mpw_ku64 (self->writer, "rid", ++origin->rid);
    dbt_mpw_kstr (self->writer, "node", self->args->config->worker_name);
    dbt_mpw_end (self->writer);
    //  A request that cannot even be queued (an inproc peer that went
    //  away) counts as unanswered at once.
    bool sent = dbt_msg_send (origin->dealer, NULL, DBT_PROTO_CLIENT, DBT_C_PING, self->writer) == 0;
    origin->pending = true;
    origin->sent_at = sent ? dbt_clock_ms () : dbt_clock_ms () - REQUEST_TIMEOUT - 1;
    origin->ping_due = dbt_clock_ms () + (origin->up ? 2 * self->args->config->heartbeat_ms
                                                     : origin->backoff);
}

//  Is node taken by another peer?
static bool
s_name_taken (self_t *self, s_origin_t *origin, const char *node)
{
    for (size_t i = 0; i < self->norigins; i++) {
        s_origin_t *other = &self->origins [i];
        if (other != origin && other->node && streq (other->node, node)) {
            dbt_log (DBT_LOG_ERROR, "replica: peers %s and %s both say they are node '%s'; "
                     "ignoring %s (give each node its own worker_name)", other->endpoint,
                     origin->endpoint, node, origin->endpoint);
            return true;
        }
    }
    return false;
}

static void
s_handle_ping (self_t *self, s_origin_t *origin, dbt_reply_t *reply)
{
    char err [DBT_ERRMSG_LEN];
    char *node = NULL, *publish = NULL, *instance = NULL, *role = NULL, *partner = NULL;
    if (reply->code != 200
    ||  dbt_mp_field_str (reply->data, "node", true, &node, err)
    ||  dbt_mp_field_str (reply->data, "instance", true, &instance, err)
    ||  dbt_mp_field_str (reply->data, "publish", false, &publish, err)
    ||  dbt_mp_field_str (reply->data, "role", false, &role, err)
    ||  dbt_mp_field_str (reply->data, "partner", false, &partner, err)
    ||  !dbt_id_valid (node)) {
        dbt_log (DBT_LOG_WARN, "replica: peer %s gave a bad PING reply", origin->endpoint);
        goto done;
    }
    if (!origin->up)
        dbt_log (DBT_LOG_INFO, "replica: peer %s is up (node '%s')", origin->endpoint, node);
    origin->up = true;
    origin->backoff = BACKOFF_MIN;
    origin->self = dbt_routes_peer_up (self->args->routes, origin->endpoint, reply->data);
    if (origin->self || origin->partner)
        goto done;
    //  Node names name the replicas: no peer may share this node's, and
    //  two peers may not share one.
    if (streq (node, self->args->config->worker_name)) {
        dbt_log (DBT_LOG_ERROR, "replica: peer %s says it is node '%s', as this node does; "
                 "not replicating it (give each node its own worker_name)", origin->endpoint, node);
        goto done;
    }
    if (s_name_taken (self, origin, node))
        goto done;
    if (origin->node && !streq (origin->node, node)) {
        dbt_log (DBT_LOG_WARN, "replica: peer %s is now node '%s' (was '%s')", origin->endpoint,
                 node, origin->node);
        s_unfollow (origin, false);
        zstr_free (&origin->node);
    }
    if (!origin->node)
        origin->node = dbt_strdup (node);
    origin->role = role ? dbt_pair_state_named (role, strlen (role)) : 0;
    free (origin->pair_partner);
    origin->pair_partner = partner;
    partner = NULL;
    //  Follow a dispatcher that is not in a pair, or the active member of
    //  one; a passive (or starting) member's records are its partner's.
    if (publish && (!origin->role || origin->role == DBT_PAIR_ACTIVE)) {
        if (!origin->follow) {
            origin->follow = dbt_follow_new (origin->node, self->args->config->heartbeat_ms, &s_fns, origin);
            dbt_follow_set_curve (origin->follow, self->args->config->curve);
        }
        dbt_follow_target (origin->follow, origin->endpoint, publish, instance);
    }
    else
    if (origin->follow) {
        dbt_log (DBT_LOG_INFO, "replica: '%s' is %s: no longer following it", origin->node,
                 dbt_pair_state_name (origin->role));
        s_unfollow (origin, true);
    }
done:
    free (node);
    free (publish);
    free (instance);
    free (role);
    free (partner);
}

//  Per peer, every turn: the PING's reply, the follower, the timers.
static void
s_drain (self_t *self, s_origin_t *origin)
{
    char err [DBT_ERRMSG_LEN];
    while (origin->dealer && (zsock_events (origin->dealer) & ZMQ_POLLIN)) {
        dbt_msg_t *msg = dbt_msg_recv (origin->dealer, false, err);
        if (!msg)
            continue;
        uint64_t rid = 0, code = 0;
        if (msg->command == DBT_C_REPLY && origin->pending
        &&  dbt_mp_field_u64 (msg->map, "rid", true, &rid, err) == 0 && rid == origin->rid
        &&  dbt_mp_field_u64 (msg->map, "code", true, &code, err) == 0) {
            dbt_reply_t reply = { (int) code, NULL, NULL, dbt_mp_get (msg->map, "data") };
            dbt_mp_field_str (msg->map, "message", false, &reply.message, err);
            origin->pending = false;
            s_handle_ping (self, origin, &reply);
            free (reply.message);
        }
        dbt_msg_destroy (&msg);
    }
    if (origin->follow)
        dbt_follow_handle (origin->follow);
    int64_t now = dbt_clock_ms ();
    if (origin->pending && now - origin->sent_at > REQUEST_TIMEOUT) {
        if (origin->up) {
            dbt_log (DBT_LOG_WARN, "replica: peer %s did not answer in %d ms", origin->endpoint,
                     REQUEST_TIMEOUT);
            origin->up = false;
            dbt_routes_peer_down (self->args->routes, origin->endpoint);
        }
        origin->backoff = origin->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : origin->backoff * 2;
        s_new_dealer (origin);              //  drop what is queued for it
        origin->ping_due = now + origin->backoff;
    }
    if (!origin->pending && now >= origin->ping_due)
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
    const char *partner = self->args->config->mesh_partner;
    origin->partner = partner && streq (partner, peer->endpoint);
    origin->backoff = BACKOFF_MIN;
}

void
dbt_replica_actor (zsock_t *pipe, void *args)
{
    dbt_thread_name ("dbt-replica");
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
    //  Origins are in place: their addresses are the followers' arguments.
    for (size_t i = 0; i < self->norigins; i++) {
        self->origins [i].owner = self;
        if (!self->origins [i].self)
            s_new_dealer (&self->origins [i]);
    }
    zsock_signal (pipe, 0);
    zmq_pollitem_t *items = (zmq_pollitem_t *) dbt_malloc ((1 + 3 * self->norigins) * sizeof (zmq_pollitem_t));
    while (!self->terminated) {
        size_t n = 0;
        items [n++] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        for (size_t i = 0; i < self->norigins; i++) {
            s_origin_t *origin = &self->origins [i];
            if (origin->dealer)
                items [n++] = (zmq_pollitem_t) { zsock_resolve (origin->dealer), 0, ZMQ_POLLIN, 0 };
            if (origin->follow)
                n += dbt_follow_items (origin->follow, items + n);
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
        dbt_follow_destroy (&origin->follow);
        s_remove (&origin->fresh, &origin->fresh_dir);
        s_remove (&origin->retired, &origin->retired_dir);
        zsock_destroy (&origin->dealer);
        free (origin->endpoint);
        free (origin->node);
        free (origin->pair_partner);
        free (origin->live_dir);            //  the view closes the store
    }
    free (self->origins);
    free (self->dir);
    dbt_mpw_destroy (&self->writer);
    free (self);
}

#ifdef DBT_SELFTEST
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
#endif  //  DBT_SELFTEST
