/*  =========================================================================
    dbt_routes - which dispatcher serves each queue, across the mesh

    See dbt_routes.h. Peers are kept in config order; their announcements
    (queues, default) replace the previous ones on every answered PING and
    are kept while a peer is down, so a short outage does not reroute its
    queues elsewhere: requests to it fail until it is back.
    =========================================================================
*/
#include "dbt_classes.h"

typedef struct {
    char *endpoint;             //  mesh endpoint, as configured
    char *node;                 //  node name it reported
    char *instance;             //  its run's id
    char *publish;              //  its state updates endpoint
    zlist_t *queues;            //  queues it owns (strings)
    bool is_default;            //  it is the default dispatcher
    dbt_pair_state_t role;      //  its failover role, 0 = not in a pair
    char *partner;              //  its failover partner's endpoint, NULL = none
    char *partner_node;         //  ... and node name, when it knows it
    bool up;                    //  answered the last ping
    bool self;                  //  this node itself
    int64_t last_seen;          //  wall ms of its last answer
    int64_t since;              //  wall ms of its last up/down change
} s_peer_t;

struct _dbt_routes_t {
    const dbt_config_t *config; //  borrowed
    pthread_mutex_t mutex;      //  guards everything below
    s_peer_t *peers;            //  one per [mesh] peers entry
    size_t npeers;              //  number of peers
    char *local;                //  own dispatcher's inproc endpoint, or NULL
    char *instance;             //  own dispatcher's run id, or NULL
    dbt_pair_state_t own_role;  //  own dispatcher's failover role, 0 = no pair
};

//  Add a peer unless it is listed already.
static void
s_add_peer (dbt_routes_t *self, const char *endpoint)
{
    for (size_t i = 0; i < self->npeers; i++)
        if (streq (self->peers [i].endpoint, endpoint))
            return;
    self->peers = (s_peer_t *) dbt_realloc (self->peers, (self->npeers + 1) * sizeof (s_peer_t));
    s_peer_t *peer = &self->peers [self->npeers++];
    memset (peer, 0, sizeof (*peer));
    peer->endpoint = dbt_strdup (endpoint);
    peer->queues = zlist_new ();
    zlist_autofree (peer->queues);
    zlist_comparefn (peer->queues, (zlist_compare_fn *) strcmp);
    //  Listing itself among its peers is fine (one peers line for all hosts).
    peer->self = self->config->mesh_dispatch && streq (endpoint, self->config->mesh_bind);
}

dbt_routes_t *
dbt_routes_new (const dbt_config_t *config)
{
    dbt_routes_t *self = (dbt_routes_t *) dbt_malloc (sizeof (dbt_routes_t));
    self->config = config;
    pthread_mutex_init (&self->mutex, NULL);
    for (size_t i = 0; i < config->nmesh_peers; i++)
        s_add_peer (self, config->mesh_peers [i]);
    //  Dispatchers the config names are peers too: their state is read here.
    if (config->mesh_dispatcher)
        s_add_peer (self, config->mesh_dispatcher);
    if (config->mesh_partner)
        s_add_peer (self, config->mesh_partner);
    for (size_t i = 0; i < config->nqueues; i++)
        if (config->queues [i].dispatcher)
            s_add_peer (self, config->queues [i].dispatcher);
    return self;
}

void
dbt_routes_destroy (dbt_routes_t **self_p)
{
    assert (self_p);
    dbt_routes_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->npeers; i++) {
        s_peer_t *peer = &self->peers [i];
        free (peer->endpoint);
        free (peer->node);
        free (peer->instance);
        free (peer->publish);
        free (peer->partner);
        free (peer->partner_node);
        zlist_destroy (&peer->queues);
    }
    free (self->peers);
    free (self->local);
    free (self->instance);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

void
dbt_routes_set_own (dbt_routes_t *self, const char *local, const char *instance)
{
    pthread_mutex_lock (&self->mutex);
    free (self->local);
    free (self->instance);
    self->local = dbt_strdup (local);
    self->instance = dbt_strdup (instance);
    pthread_mutex_unlock (&self->mutex);
}

//  The peer that owns queue, or the default one, or NULL: of a failover
//  pair, the member that says it is active, else the first. Lock held.
static s_peer_t *
s_peer_for (dbt_routes_t *self, const char *queue, bool want_default)
{
    s_peer_t *first = NULL;
    for (size_t i = 0; i < self->npeers; i++) {
        s_peer_t *peer = &self->peers [i];
        if (peer->self || !peer->node)
            continue;
        if (want_default ? peer->is_default : zlist_exists (peer->queues, (void *) queue)) {
            if (!peer->role || peer->role == DBT_PAIR_ACTIVE)
                return peer;
            if (!first)
                first = peer;
        }
    }
    return first;
}

//  The peer at endpoint, or NULL. Lock held.
static s_peer_t *
s_peer_at (dbt_routes_t *self, const char *endpoint)
{
    for (size_t i = 0; i < self->npeers; i++)
        if (streq (self->peers [i].endpoint, endpoint))
            return &self->peers [i];
    return NULL;
}

//  The peer that is peer's failover partner, by endpoint, else by node
//  name. Lock held.
static s_peer_t *
s_partner_of (dbt_routes_t *self, s_peer_t *peer)
{
    s_peer_t *partner = peer->partner ? s_peer_at (self, peer->partner) : NULL;
    for (size_t i = 0; i < self->npeers && !partner && peer->partner_node; i++)
        if (self->peers [i].node && streq (self->peers [i].node, peer->partner_node))
            partner = &self->peers [i];
    return partner != peer ? partner : NULL;
}

//  The mesh endpoint of queue's dispatcher, and its peer if it is one.
//  Lock held. NULL when unknown.
static const char *
s_resolve (dbt_routes_t *self, const char *queue, s_peer_t **peer_p)
{
    const dbt_config_t *config = self->config;
    *peer_p = NULL;
    const dbt_queueconf_t *conf = dbt_config_queue (config, queue);
    if (conf && conf->dispatcher)
        return conf->dispatcher;
    if (conf && dbt_config_dispatches (config, queue))
        return config->mesh_partner && self->own_role == DBT_PAIR_PASSIVE ? config->mesh_partner
                                                                          : config->mesh_bind;
    s_peer_t *peer = s_peer_for (self, queue, false);
    if (!peer && !config->mesh_dispatcher)
        peer = s_peer_for (self, queue, true);
    if (peer) {
        *peer_p = peer;
        return peer->endpoint;
    }
    if (config->mesh_partner && self->own_role == DBT_PAIR_PASSIVE && config->mesh_dispatcher
    &&  streq (config->mesh_dispatcher, config->mesh_bind))
        return config->mesh_partner;        //  the default is this pair: its active member
    return config->mesh_dispatcher;
}

char *
dbt_routes_dispatcher (dbt_routes_t *self, const char *queue)
{
    pthread_mutex_lock (&self->mutex);
    s_peer_t *peer;
    const char *endpoint = s_resolve (self, queue, &peer);
    char *result = NULL;
    if (endpoint && self->local && self->config->mesh_dispatch && streq (endpoint, self->config->mesh_bind))
        result = dbt_strdup (self->local);
    else
        result = dbt_strdup (endpoint);
    pthread_mutex_unlock (&self->mutex);
    return result;
}

bool
dbt_routes_owns (dbt_routes_t *self, const char *queue)
{
    if (!self->config->mesh_dispatch)
        return false;
    pthread_mutex_lock (&self->mutex);
    s_peer_t *peer;
    const char *endpoint = s_resolve (self, queue, &peer);
    bool owns = endpoint && streq (endpoint, self->config->mesh_bind);
    pthread_mutex_unlock (&self->mutex);
    return owns;
}

char *
dbt_routes_describe (dbt_routes_t *self, const char *queue)
{
    pthread_mutex_lock (&self->mutex);
    s_peer_t *peer;
    const char *endpoint = s_resolve (self, queue, &peer);
    char *result = NULL;
    if (peer && peer->node)
        result = dbt_printf ("node '%s' (%s)", peer->node, endpoint);
    else
    if (endpoint && self->config->mesh_dispatch && streq (endpoint, self->config->mesh_bind))
        result = dbt_printf ("node '%s' (%s)", self->config->worker_name, endpoint);
    else
    if (endpoint) {
        //  A configured endpoint: name its node when a peer has it.
        for (size_t i = 0; i < self->npeers && !result; i++)
            if (self->peers [i].node && streq (self->peers [i].endpoint, endpoint))
                result = dbt_printf ("node '%s' (%s)", self->peers [i].node, endpoint);
        if (!result)
            result = dbt_strdup (endpoint);
    }
    pthread_mutex_unlock (&self->mutex);
    return result;
}

zlist_t *
dbt_routes_dispatchers (dbt_routes_t *self)
{
    zlist_t *list = zlist_new ();
    zlist_autofree (list);
    pthread_mutex_lock (&self->mutex);
    if (self->config->mesh_dispatch)
        zlist_append (list, self->local ? self->local : self->config->mesh_bind);
    for (size_t i = 0; i < self->npeers; i++)
        if (!self->peers [i].self && self->peers [i].node)
            zlist_append (list, self->peers [i].endpoint);
    //  A default dispatcher named by config but not among the peers.
    const char *fallback = self->config->mesh_dispatcher;
    if (fallback && !(self->config->mesh_dispatch && streq (fallback, self->config->mesh_bind))) {
        bool listed = false;
        for (size_t i = 0; i < self->npeers; i++)
            listed = listed || streq (self->peers [i].endpoint, fallback);
        if (!listed)
            zlist_append (list, (void *) fallback);
    }
    pthread_mutex_unlock (&self->mutex);
    return list;
}

bool
dbt_routes_peer_up (dbt_routes_t *self, const char *endpoint, const msgpack_object *reply)
{
    char err [DBT_ERRMSG_LEN];
    char *node = NULL, *instance = NULL, *publish = NULL;
    bool is_default = false;
    dbt_mp_field_str (reply, "node", false, &node, err);
    dbt_mp_field_str (reply, "instance", false, &instance, err);
    dbt_mp_field_str (reply, "publish", false, &publish, err);
    dbt_mp_field_bool (reply, "default", false, &is_default, err);
    char *role = NULL, *partner = NULL, *partner_node = NULL;
    dbt_mp_field_str (reply, "role", false, &role, err);
    dbt_mp_field_str (reply, "partner", false, &partner, err);
    dbt_mp_field_str (reply, "partner_node", false, &partner_node, err);
    const msgpack_object *queues = dbt_mp_get (reply, "queues");
    bool is_self = false;
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->npeers; i++) {
        s_peer_t *peer = &self->peers [i];
        if (!streq (peer->endpoint, endpoint))
            continue;
        if (instance && self->instance && streq (instance, self->instance))
            peer->self = true;
        is_self = peer->self;
        if (!peer->up)
            peer->since = dbt_time_ms ();
        peer->up = true;
        peer->last_seen = dbt_time_ms ();
        peer->is_default = is_default;
        dbt_str_move (&peer->node, &node);
        dbt_str_move (&peer->instance, &instance);
        dbt_str_move (&peer->publish, &publish);
        peer->role = role ? dbt_pair_state_named (role, strlen (role)) : 0;
        dbt_str_move (&peer->partner, &partner);
        dbt_str_move (&peer->partner_node, &partner_node);
        zlist_purge (peer->queues);
        for (uint32_t q = 0; queues && queues->type == MSGPACK_OBJECT_ARRAY && q < queues->via.array.size; q++) {
            const char *str;
            size_t len;
            if (dbt_mp_str (&queues->via.array.ptr [q], &str, &len) == 0 && len <= DBT_ID_MAX) {
                char *name = dbt_strndup (str, len);
                if (dbt_id_valid (name))
                    zlist_append (peer->queues, name);
                free (name);
            }
        }
    }
    pthread_mutex_unlock (&self->mutex);
    free (node);
    free (instance);
    free (publish);
    free (role);
    free (partner);
    free (partner_node);
    return is_self;
}

void
dbt_routes_set_own_role (dbt_routes_t *self, dbt_pair_state_t role)
{
    pthread_mutex_lock (&self->mutex);
    self->own_role = role;
    pthread_mutex_unlock (&self->mutex);
}

//  Is endpoint (as this node connects to it) this node's own dispatcher?
//  Lock held.
static bool
s_is_own (dbt_routes_t *self, const char *endpoint)
{
    return self->config->mesh_dispatch
        && ((self->local && streq (endpoint, self->local)) || streq (endpoint, self->config->mesh_bind));
}

char *
dbt_routes_partner (dbt_routes_t *self, const char *endpoint)
{
    const dbt_config_t *config = self->config;
    char *result = NULL;
    pthread_mutex_lock (&self->mutex);
    if (s_is_own (self, endpoint))
        result = dbt_strdup (config->mesh_partner);
    else
    if (config->mesh_partner && streq (endpoint, config->mesh_partner))
        result = dbt_strdup (self->local ? self->local : config->mesh_bind);
    else {
        s_peer_t *peer = s_peer_at (self, endpoint);
        s_peer_t *partner = peer ? s_partner_of (self, peer) : NULL;
        if (partner)
            result = dbt_strdup (partner->self && self->local ? self->local : partner->endpoint);
    }
    pthread_mutex_unlock (&self->mutex);
    return result;
}

void
dbt_routes_note_active (dbt_routes_t *self, const char *endpoint)
{
    pthread_mutex_lock (&self->mutex);
    s_peer_t *peer = s_peer_at (self, endpoint);
    if (peer && peer->role) {
        peer->role = DBT_PAIR_ACTIVE;
        s_peer_t *partner = s_partner_of (self, peer);
        if (partner && partner->role)
            partner->role = DBT_PAIR_PASSIVE;
    }
    pthread_mutex_unlock (&self->mutex);
}

void
dbt_routes_peer_down (dbt_routes_t *self, const char *endpoint)
{
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->npeers; i++) {
        s_peer_t *peer = &self->peers [i];
        if (streq (peer->endpoint, endpoint) && peer->up) {
            peer->up = false;
            peer->since = dbt_time_ms ();
        }
    }
    pthread_mutex_unlock (&self->mutex);
}

void
dbt_routes_each_peer (dbt_routes_t *self, dbt_routes_peer_fn *fn, void *arg)
{
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->npeers; i++) {
        s_peer_t *peer = &self->peers [i];
        dbt_peer_t view = { peer->endpoint, peer->node, peer->instance, peer->publish,
                            peer->up, peer->self, peer->last_seen, peer->since,
                            peer->role, peer->partner };
        fn (&view, arg);
    }
    pthread_mutex_unlock (&self->mutex);
}

void
dbt_routes_announce (const dbt_config_t *config, dbt_mpw_t *writer)
{
    dbt_mpw_str (writer, "queues");
    dbt_mpw_array (writer);
    for (size_t i = 0; i < config->nqueues; i++)
        if (dbt_config_dispatches (config, config->queues [i].name))
            dbt_mpw_str (writer, config->queues [i].name);
    dbt_mpw_end (writer);
    dbt_mpw_kbool (writer, "default", config->mesh_dispatch && config->mesh_dispatcher
                                      && streq (config->mesh_dispatcher, config->mesh_bind));
    dbt_mpw_kstr (writer, "publish", config->mesh_publish);
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: config routes, what peers announce, the default, self.

static void
s_test_answer (dbt_routes_t *routes, const char *endpoint, const char *node, const char *instance,
               const char *queue, bool is_default, bool expect_self)
{
    char err [DBT_ERRMSG_LEN];
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "node", node);
    dbt_mpw_kstr (w, "instance", instance);
    dbt_mpw_kstr (w, "publish", "tcp://x:2");
    dbt_mpw_str (w, "queues");
    dbt_mpw_array (w);
    if (queue)
        dbt_mpw_str (w, queue);
    dbt_mpw_end (w);
    dbt_mpw_kbool (w, "default", is_default);
    dbt_mpw_end (w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *reader = dbt_mpr_new (data, len, err);
    assert (reader);
    assert (dbt_routes_peer_up (routes, endpoint, dbt_mpr_root (reader)) == expect_self);
    dbt_mpr_destroy (&reader);
    dbt_mpw_destroy (&w);
}

static void
s_test_count (const dbt_peer_t *peer, void *arg)
{
    if (peer->up && !peer->self)
        (*(int *) arg)++;
}

void
dbt_routes_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    //  A node without a dispatcher: everything comes from its peers.
    dbt_config_t *config = dbt_config_from_string (
        "[mesh]\ndispatch = false\npeers = tcp://127.0.0.1:1, tcp://127.0.0.1:3\n"
        "[queue.pinned]\ndispatcher = tcp://127.0.0.1:9\n"
        "[db.s]\ntype = sqlite\ndsn = s.db\n[results.r]\ntype = sqlite\ndsn = r.db\n", err);
    assert (config);
    dbt_routes_t *routes = dbt_routes_new (config);
    char *endpoint = dbt_routes_dispatcher (routes, "q1");
    assert (endpoint == NULL);                  //  nobody answered yet
    endpoint = dbt_routes_dispatcher (routes, "pinned");
    assert (streq (endpoint, "tcp://127.0.0.1:9"));
    free (endpoint);
    s_test_answer (routes, "tcp://127.0.0.1:1", "alpha", "i-a", "q1", true, false);
    s_test_answer (routes, "tcp://127.0.0.1:3", "beta", "i-b", "q2", false, false);
    endpoint = dbt_routes_dispatcher (routes, "q2");
    assert (streq (endpoint, "tcp://127.0.0.1:3"));
    free (endpoint);
    endpoint = dbt_routes_dispatcher (routes, "elsewhere");         //  the default
    assert (streq (endpoint, "tcp://127.0.0.1:1"));
    free (endpoint);
    char *text = dbt_routes_describe (routes, "q2");
    assert (streq (text, "node 'beta' (tcp://127.0.0.1:3)"));
    free (text);
    zlist_t *all = dbt_routes_dispatchers (routes);
    assert (zlist_size (all) == 2);
    zlist_destroy (&all);
    //  A peer that goes down keeps its queues (requests fail until it is back).
    dbt_routes_peer_down (routes, "tcp://127.0.0.1:3");
    endpoint = dbt_routes_dispatcher (routes, "q2");
    assert (streq (endpoint, "tcp://127.0.0.1:3"));
    free (endpoint);
    int up = 0;
    dbt_routes_each_peer (routes, s_test_count, &up);
    assert (up == 1);
    dbt_routes_destroy (&routes);
    dbt_config_destroy (&config);

    //  A dispatcher node: its own queues go to its inproc endpoint; it
    //  recognises itself among its peers by its run's id.
    config = dbt_config_from_string (
        "[mesh]\nbind = tcp://127.0.0.1:5\npeers = tcp://127.0.0.1:5, tcp://127.0.0.1:7\n"
        "[queue.mine]\n[db.s]\ntype = sqlite\ndsn = s.db\n[results.r]\ntype = sqlite\ndsn = r.db\n", err);
    assert (config);
    routes = dbt_routes_new (config);
    dbt_routes_set_own (routes, "inproc://own", "i-own");
    endpoint = dbt_routes_dispatcher (routes, "mine");
    assert (streq (endpoint, "inproc://own"));
    free (endpoint);
    s_test_answer (routes, "tcp://127.0.0.1:7", "gamma", "i-g", "theirs", false, false);
    endpoint = dbt_routes_dispatcher (routes, "theirs");
    assert (streq (endpoint, "tcp://127.0.0.1:7"));
    free (endpoint);
    endpoint = dbt_routes_dispatcher (routes, "unnamed");         //  own default
    assert (streq (endpoint, "inproc://own"));
    free (endpoint);
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_routes_announce (config, w);
    dbt_mpw_end (w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *reader = dbt_mpr_new (data, len, err);
    assert (reader);
    bool is_default = false;
    assert (dbt_mp_field_bool (dbt_mpr_root (reader), "default", true, &is_default, err) == 0 && is_default);
    const msgpack_object *queues = dbt_mp_get (dbt_mpr_root (reader), "queues");
    assert (queues && queues->via.array.size == 1);
    dbt_mpr_destroy (&reader);
    dbt_mpw_destroy (&w);
    all = dbt_routes_dispatchers (routes);
    assert (zlist_size (all) == 2 && streq ((char *) zlist_first (all), "inproc://own"));
    zlist_destroy (&all);
    dbt_routes_destroy (&routes);
    dbt_config_destroy (&config);
    if (verbose)
        printf ("routes: ok\n");
}
#endif  //  DBT_SELFTEST
