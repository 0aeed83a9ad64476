/*  =========================================================================
    dbt_caller - the HTTP API's requests to dispatchers

    See dbt_caller.h.
    =========================================================================
*/
#include "dbt_classes.h"

struct _dbt_caller_t {
    const dbt_config_t *config;
    dbt_routes_t *routes;
    char *local;                //  this node's dispatcher, or NULL
    pthread_mutex_t mutex;      //  guards what follows
    zhashx_t *clients;          //  endpoint -> zlist_t of idle dbt_client_t
    dbt_mux_t *mux;             //  to local, made at its first call
};

//  --------------------------------------------------------------------------
//  Dispatcher clients

static dbt_client_t *
s_client_get (dbt_caller_t *self, const char *endpoint, char *err)
{
    pthread_mutex_lock (&self->mutex);
    zlist_t *idle = (zlist_t *) zhashx_lookup (self->clients, endpoint);
    dbt_client_t *client = idle ? (dbt_client_t *) zlist_pop (idle) : NULL;
    pthread_mutex_unlock (&self->mutex);
    return client ? client : dbt_curve_client_new (self->config->curve, endpoint, err);
}

static void
s_client_put (dbt_caller_t *self, dbt_client_t **client_p)
{
    dbt_client_t *client = *client_p;
    *client_p = NULL;
    pthread_mutex_lock (&self->mutex);
    zlist_t *idle = (zlist_t *) zhashx_lookup (self->clients, dbt_client_endpoint (client));
    if (!idle) {
        idle = zlist_new ();
        zhashx_insert (self->clients, dbt_client_endpoint (client), idle);
    }
    zlist_push (idle, client);
    pthread_mutex_unlock (&self->mutex);
}

static void
s_clients_free (void **item_p)
{
    zlist_t *idle = (zlist_t *) *item_p;
    if (!idle)
        return;
    dbt_client_t *client;
    while ((client = (dbt_client_t *) zlist_pop (idle)))
        dbt_client_destroy (&client);
    zlist_destroy (&idle);
    *item_p = NULL;
}

//  --------------------------------------------------------------------------
//  This node's dispatcher, through the mux

//  Each calling thread's own request writer, freed when the thread ends.
static pthread_key_t s_writer_key;
static pthread_once_t s_writer_once = PTHREAD_ONCE_INIT;

static void
s_writer_free (void *writer)
{
    dbt_mpw_destroy ((dbt_mpw_t **) &writer);
}

static void
s_writer_key_make (void)
{
    pthread_key_create (&s_writer_key, s_writer_free);
}

//  The mux to this node's dispatcher (made at its first use), and the
//  calling thread's writer with a request begun; NULL with err set.
static dbt_mux_t *
s_mux_begin (dbt_caller_t *self, dbt_mpw_t **writer_p, uint64_t *rid_p, char *err)
{
    pthread_mutex_lock (&self->mutex);
    if (!self->mux)
        self->mux = dbt_mux_new (self->local, self->config->curve ? dbt_curve_client_setup : NULL,
                                 (void *) self->config->curve, err);
    dbt_mux_t *mux = self->mux;
    pthread_mutex_unlock (&self->mutex);
    if (!mux)
        return NULL;
    pthread_once (&s_writer_once, s_writer_key_make);
    dbt_mpw_t *writer = (dbt_mpw_t *) pthread_getspecific (s_writer_key);
    if (!writer) {
        writer = dbt_mpw_new ();
        pthread_setspecific (s_writer_key, writer);
    }
    *rid_p = dbt_mux_begin (mux, writer);
    *writer_p = writer;
    return mux;
}

//  True when calls to this node's dispatcher are under way or came within
//  the last millisecond (over 1,000 a second), or the mux does not exist
//  yet (it is made by the first call).
static bool
s_mux_busy (dbt_caller_t *self)
{
    pthread_mutex_lock (&self->mutex);
    bool busy = !self->mux || dbt_mux_busy (self->mux, 1000);
    pthread_mutex_unlock (&self->mutex);
    return busy;
}

static int
s_call_local (dbt_caller_t *self, int command, dbt_caller_build_fn *build, void *arg,
              int64_t timeout_ms, dbt_reply_t **reply_p, char *err)
{
    dbt_mpw_t *writer;
    uint64_t rid;
    dbt_mux_t *mux = s_mux_begin (self, &writer, &rid, err);
    if (!mux)
        return DBT_ERROR;
    build (writer, arg);
    return dbt_mux_call (mux, rid, command, writer, timeout_ms, reply_p, err);
}

//  --------------------------------------------------------------------------
//  Any dispatcher

//  A passive failover member's refusal (dbt_pair.h): ask its partner.
static bool
s_passive (const dbt_reply_t *reply)
{
    char err [DBT_ERRMSG_LEN];
    bool passive = false;
    return reply->code == 503 && reply->data && reply->data->type == MSGPACK_OBJECT_MAP
        && dbt_mp_field_bool (reply->data, "passive", false, &passive, err) == 0 && passive;
}

//  Send the request to the dispatcher at endpoint and wait for its reply,
//  as dbt_client_call. A member of a failover pair is followed to its
//  active member: a passive member's refusal sends the request to its
//  partner; a member that has not answered within two heartbeats makes
//  the request go to its partner too, with a vote (the caller cannot
//  reach the first), while the first member's reply is still awaited.
//  The first answer that is not a refusal wins. *again (may be NULL) is
//  set when the request went out more than once: a 409 may then be the
//  request's own earlier copy, kept.
static int
s_call_raw (dbt_caller_t *self, const char *endpoint, int command, dbt_caller_build_fn *build, void *arg,
            int64_t timeout_ms, dbt_reply_t **reply_p, bool *again, char *err)
{
    *reply_p = NULL;
    if (again)
        *again = false;
    //  (PING and STATS ask one dispatcher about itself.)
    char *partner = command == DBT_C_PING || command == DBT_C_STATS
                  ? NULL : dbt_routes_partner (self->routes, endpoint);
    //  This node's dispatcher through the mux, unless it is idle: a lone
    //  request then skips the mux thread's two wake-ups (about 0.3 ms of
    //  an idle node's submit-to-SUCCESS time on a 2-core VM).
    if (!partner && self->local && streq (endpoint, self->local) && timeout_ms > 0
    &&  s_mux_busy (self))
        return s_call_local (self, command, build, arg, timeout_ms, reply_p, err);
    if (!partner) {
        dbt_client_t *client = s_client_get (self, endpoint, err);
        if (!client)
            return DBT_ERROR;
        build (dbt_client_begin (client), arg);
        int rc = dbt_client_call (client, command, timeout_ms, reply_p, err);
        if (rc)
            dbt_client_destroy (&client);
        else
            s_client_put (self, &client);
        return rc;
    }
    const char *members [2] = { endpoint, partner };
    dbt_client_t *clients [2] = { NULL, NULL };
    int64_t sent_at [2] = { 0, 0 };         //  monotonic ms of the request awaiting an answer
    //  A sync member holds its answer up to sync_timeout while its partner
    //  does not confirm: a vote sooner would elect the partner of a member
    //  that is alive and merely waiting.
    int64_t patience = 2 * self->config->heartbeat_ms;
    if (patience < self->config->sync_timeout_ms + self->config->heartbeat_ms)
        patience = self->config->sync_timeout_ms + self->config->heartbeat_ms;
    int64_t deadline = dbt_clock_ms () + timeout_ms, next_send = 0;
    int next = 0, winner = -1, sends = 0, rc = DBT_ETIMEDOUT;
    while (winner < 0 && rc != DBT_ETOOBIG && dbt_clock_ms () < deadline) {
        int64_t now = dbt_clock_ms ();
        if (!sent_at [next] && now >= next_send) {
            bool vote = sent_at [1 - next] && now - sent_at [1 - next] >= patience;
            if (!clients [next])
                clients [next] = s_client_get (self, members [next], err);
            if (clients [next]) {
                dbt_mpw_t *w = dbt_client_begin (clients [next]);
                build (w, arg);
                if (vote) {
                    dbt_mpw_kbool (w, "vote", true);
                    dbt_mpw_kstr (w, "voter", self->config->worker_name);
                }
                //  Sent now, answered below (no wait here).
                rc = dbt_client_call (clients [next], command, 0, reply_p, err);
                if (rc == DBT_ETIMEDOUT) {
                    sent_at [next] = now;
                    sends++;
                }
                else
                    dbt_client_destroy (&clients [next]);
            }
            if (!sent_at [next] && rc != DBT_ETOOBIG) {
                //  Not even sent: try the partner, and this one again later.
                dbt_log (DBT_LOG_DEBUG, "http: %s", err);
                next = 1 - next;
                next_send = now + 100;
            }
        }
        for (int i = 0; i < 2 && winner < 0; i++) {
            if (!sent_at [i])
                continue;
            if (dbt_client_wait (clients [i], 20, reply_p, err) != 0)
                continue;
            if (!s_passive (*reply_p)) {
                winner = i;
                break;
            }
            dbt_reply_destroy (reply_p);
            sent_at [i] = 0;
            //  Refused: the partner next; when both refuse (the pair is
            //  still deciding), not more often than every 100 ms.
            next = 1 - i;
            next_send = sent_at [next] ? 0 : dbt_clock_ms () + (sends > 1 ? 100 : 0);
        }
        //  A member silent for too long: ask its partner as well.
        for (int i = 0; i < 2 && winner < 0; i++)
            if (sent_at [i] && !sent_at [1 - i] && dbt_clock_ms () - sent_at [i] >= patience) {
                next = 1 - i;
                next_send = 0;
            }
    }
    for (int i = 0; i < 2; i++) {
        if (i == winner)
            s_client_put (self, &clients [i]);
        else
            dbt_client_destroy (&clients [i]);      //  a late answer goes with it
    }
    if (winner >= 0) {
        dbt_routes_note_active (self->routes, members [winner]);
        rc = 0;
    }
    else
    if (rc != DBT_ETOOBIG) {
        dbt_err_set (err, "neither member of the failover pair %s, %s answered within %" PRId64 " ms",
                     members [0], members [1], timeout_ms);
        rc = DBT_ETIMEDOUT;
    }
    if (again)
        *again = sends > 1;
    free (partner);
    return rc;
}

//  --------------------------------------------------------------------------
//  Object

dbt_caller_t *
dbt_caller_new (const dbt_config_t *config, dbt_routes_t *routes, const char *local)
{
    assert (config);
    dbt_caller_t *self = (dbt_caller_t *) dbt_malloc (sizeof (dbt_caller_t));
    self->config = config;
    self->routes = routes;
    self->local = local ? dbt_strdup (local) : NULL;
    pthread_mutex_init (&self->mutex, NULL);
    self->clients = zhashx_new ();
    zhashx_set_destructor (self->clients, s_clients_free);
    return self;
}

void
dbt_caller_destroy (dbt_caller_t **self_p)
{
    assert (self_p);
    dbt_caller_t *self = *self_p;
    if (!self)
        return;
    dbt_mux_destroy (&self->mux);
    zhashx_destroy (&self->clients);
    pthread_mutex_destroy (&self->mutex);
    free (self->local);
    free (self);
    *self_p = NULL;
}

int
dbt_caller_call (dbt_caller_t *self, const char *endpoint, int command,
                 dbt_caller_build_fn *build, void *arg, int64_t timeout_ms,
                 dbt_reply_t **reply_p, bool *again, char *err)
{
    return s_call_raw (self, endpoint, command, build, arg, timeout_ms, reply_p, again, err);
}

bool
dbt_caller_local_direct (dbt_caller_t *self)
{
    if (!self->local)
        return false;
    char *partner = dbt_routes_partner (self->routes, self->local);
    free (partner);
    return partner == NULL;
}

int
dbt_caller_send_local (dbt_caller_t *self, int command, dbt_caller_build_fn *build, void *arg,
                       int64_t timeout_ms, dbt_mux_done_fn *done, void *done_arg, char *err)
{
    if (!dbt_caller_local_direct (self)) {
        dbt_err_set (err, "this node's dispatcher is not asked directly");
        return DBT_EINVAL;
    }
    dbt_mpw_t *writer;
    uint64_t rid;
    dbt_mux_t *mux = s_mux_begin (self, &writer, &rid, err);
    if (!mux)
        return DBT_ERROR;
    build (writer, arg);
    return dbt_mux_send (mux, rid, command, writer, timeout_ms, done, done_arg, err);
}
