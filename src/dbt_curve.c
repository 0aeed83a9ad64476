/*  =========================================================================
    dbt_curve - CURVE keys, the mesh's allow-list and every socket's set-up

    See dbt_curve.h. The ZAP handler is an actor with a REP socket on
    inproc://zeromq.zap.01 (ZeroMQ RFC 27): libzmq asks it about every
    connection a CURVE server socket of this process accepts, before any
    message passes. It answers 200 for a known key and 400 otherwise, and
    logs each refused (socket, address, key) at most once a minute so a
    peer that keeps reconnecting does not flood the log. The allow-list is
    a zcertstore on the curve_allow directory, which czmq re-reads when the
    directory changes; only the actor's thread touches it.
    =========================================================================
*/
#include "dbt_classes.h"
#include <sys/stat.h>

#define ZAP_ENDPOINT     "inproc://zeromq.zap.01"
#define REFUSAL_LOG_MS   60000      //  one log line per refused peer and minute
#define REFUSALS_MAX     10000      //  remembered refusals before forgetting all

struct _dbt_curve_t {
    char public_key [DBT_CURVE_KEYLEN + 1];     //  this node's
    char secret_key [DBT_CURVE_KEYLEN + 1];     //  this node's
    char server_key [DBT_CURVE_KEYLEN + 1];     //  the mesh's dispatchers'
    char *allow_dir;            //  curve_allow, NULL = only the two keys above
    zcertstore_t *store;        //  allow-list; owned by the ZAP actor once started
    zactor_t *zap;              //  ZAP handler
};

//  --------------------------------------------------------------------------
//  Keys and files

int
dbt_curve_new_keys (const char *name, char *err)
{
    assert (name);
    if (!*name) {
        dbt_err_set (err, "--new-keys: a name is required (writes NAME and NAME_secret)");
        return -1;
    }
    char *secret_path = dbt_printf ("%s_secret", name);
    int rc = -1;
    struct stat st;
    if (stat (name, &st) == 0 || stat (secret_path, &st) == 0)
        dbt_err_set (err, "--new-keys: '%s' or '%s' exists already; not overwriting keys",
                     name, secret_path);
    else {
        zcert_t *cert = zcert_new ();
        const char *base = strrchr (name, '/');
        zcert_set_meta (cert, "name", "%s", base ? base + 1 : name);
        zcert_set_meta (cert, "created-by", "dungbeetle %s", DBT_VERSION_STRING);
        //  Private from the start: no moment when the secret is readable.
        mode_t old = umask (077);
        if (zcert_save (cert, name) != 0)
            dbt_err_set (err, "--new-keys: cannot write '%s': %s", name, strerror (errno));
        else
        if (chmod (name, 0644) != 0 || chmod (secret_path, 0600) != 0)
            dbt_err_set (err, "--new-keys: cannot set the mode of '%s': %s", name, strerror (errno));
        else
            rc = 0;
        umask (old);
        zcert_destroy (&cert);
    }
    free (secret_path);
    return rc;
}

//  --------------------------------------------------------------------------
//  Socket set-up

int
dbt_curve_apply (const dbt_curve_t *self, zsock_t *sock, dbt_curve_role_t role, const char *domain)
{
    if (!self)
        return 0;
    assert (sock);
    int rc;
    if (role == DBT_CURVE_SERVER) {
        zsock_set_zap_domain (sock, domain ? domain : "mesh");
        zsock_set_curve_server (sock, 1);
        zsock_set_curve_publickey (sock, self->public_key);
        zsock_set_curve_secretkey (sock, self->secret_key);
        rc = zsock_curve_server (sock) == 1 ? 0 : -1;
    }
    else
        rc = dbt_keys_set_client (sock, self->public_key, self->secret_key, self->server_key);
    if (rc != 0)
        dbt_log (DBT_LOG_ERROR, "curve: cannot set CURVE options on a %s socket: %s",
                 zsock_type_str (sock), zmq_strerror (zmq_errno ()));
    return rc;
}

const char *
dbt_curve_public (const dbt_curve_t *self)
{
    assert (self);
    return self->public_key;
}

//  --------------------------------------------------------------------------
//  ZAP handler

typedef struct {
    dbt_curve_t *curve;         //  keys (read-only) and the allow-list (ours)
    zhashx_t *refused;          //  "domain address key" -> last log time (ms)
} s_zap_t;

static bool
s_allowed (s_zap_t *self, const char *key)
{
    dbt_curve_t *curve = self->curve;
    return streq (key, curve->public_key) || streq (key, curve->server_key)
        || (curve->store && zcertstore_lookup (curve->store, key));
}

static void
s_log_refusal (s_zap_t *self, const char *domain, const char *address, const char *key,
               const char *why)
{
    char *tag = dbt_printf ("%s %s %s", domain, address, key);
    int64_t now = dbt_clock_ms ();
    int64_t *last = (int64_t *) zhashx_lookup (self->refused, tag);
    if (!last || now - *last >= REFUSAL_LOG_MS) {
        dbt_log (DBT_LOG_WARN, "curve: refused a connection to the %s socket from %s: %s (key %s)",
                 domain, address, why, key);
        if (zhashx_size (self->refused) >= REFUSALS_MAX)
            zhashx_purge (self->refused);
        int64_t *stamp = (int64_t *) dbt_malloc (sizeof (int64_t));
        *stamp = now;
        zhashx_update (self->refused, tag, stamp);
    }
    free (tag);
}

//  Answer one ZAP request (RFC 27) on handler.
static void
s_zap_answer (s_zap_t *self, zsock_t *handler)
{
    zmsg_t *request = zmsg_recv (handler);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    zframe_t *rid = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *identity = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credential = zmsg_pop (request);
    const char *status = "400";
    const char *text = "not allowed";
    char key [DBT_CURVE_KEYLEN + 1] = "";
    if (!version || !streq (version, "1.0") || !rid || !mechanism) {
        status = "500";
        text = "malformed ZAP request";
        dbt_log (DBT_LOG_ERROR, "curve: malformed ZAP request");
    }
    else
    if (!streq (mechanism, "CURVE"))
        s_log_refusal (self, domain ? domain : "?", address ? address : "?", "-",
                       "it does not use CURVE");
    else
    if (!credential || zframe_size (credential) != 32)
        s_log_refusal (self, domain ? domain : "?", address ? address : "?", "-",
                       "malformed CURVE credentials");
    else {
        zmq_z85_encode (key, zframe_data (credential), 32);
        if (s_allowed (self, key)) {
            status = "200";
            text = "OK";
            dbt_log (DBT_LOG_DEBUG, "curve: %s socket admits %s (key %s)", domain, address, key);
        }
        else
            s_log_refusal (self, domain ? domain : "?", address ? address : "?", key,
                           "its key is not in [mesh] curve_allow");
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (rid)
        zmsg_append (reply, &rid);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, streq (status, "200") ? key : "");
    zmsg_addmem (reply, NULL, 0);       //  no metadata
    zmsg_send (&reply, handler);
    zstr_free (&version);
    zframe_destroy (&rid);
    zstr_free (&domain);
    zstr_free (&address);
    zframe_destroy (&identity);
    zstr_free (&mechanism);
    zframe_destroy (&credential);
    zmsg_destroy (&request);
}

static void
s_zap_actor (zsock_t *pipe, void *args)
{
    s_zap_t self = { (dbt_curve_t *) args, zhashx_new () };
    zhashx_set_destructor (self.refused, (zhashx_destructor_fn *) zstr_free);
    zsock_t *handler = zsock_new (ZMQ_REP);
    if (!handler || zsock_bind (handler, ZAP_ENDPOINT) != 0) {
        dbt_log (DBT_LOG_ERROR, "curve: cannot bind the ZAP handler at %s: %s", ZAP_ENDPOINT,
                 zmq_strerror (zmq_errno ()));
        zsock_destroy (&handler);
        zhashx_destroy (&self.refused);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, handler, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == handler)
            s_zap_answer (&self, handler);
        else
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
        else
        if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&handler);
    zhashx_destroy (&self.refused);
}

//  --------------------------------------------------------------------------
//  Object

int
dbt_curve_client_setup (zsock_t *sock, void *arg, char *err)
{
    if (dbt_curve_apply ((const dbt_curve_t *) arg, sock, DBT_CURVE_CLIENT, NULL) == 0)
        return 0;
    dbt_err_set (err, "cannot set CURVE keys on a client socket");
    return -1;
}

dbt_client_t *
dbt_curve_client_new (const dbt_curve_t *self, const char *endpoint, char *err)
{
    return dbt_client_new_with (endpoint, self ? dbt_curve_client_setup : NULL, (void *) self, err);
}

int
dbt_curve_new (const dbt_config_t *config, dbt_curve_t **curve_p, char *err)
{
    assert (config);
    assert (curve_p);
    *curve_p = NULL;
    if (!config->mesh_curve_cert) {
        if (config->mesh_curve_server || config->mesh_curve_allow) {
            dbt_err_set (err, "[mesh] %s is set but curve_cert is not: a node needs its own "
                         "certificate to use CURVE", config->mesh_curve_server ? "curve_server"
                         : "curve_allow");
            return -1;
        }
        return 0;
    }
    dbt_curve_t *self = (dbt_curve_t *) dbt_malloc (sizeof (dbt_curve_t));
    char msg [DBT_ERRMSG_LEN];
    if (dbt_keys_load (config->mesh_curve_cert, self->public_key, self->secret_key, msg)) {
        dbt_err_set (err, "[mesh] curve_cert: %s", msg);
        goto fail;
    }
    snprintf (self->server_key, sizeof (self->server_key), "%s", self->public_key);
    if (config->mesh_curve_server) {
        if (dbt_keys_server (config->mesh_curve_server, self->server_key, msg)) {
            dbt_err_set (err, "[mesh] curve_server: %s", msg);
            goto fail;
        }
    }
    //  A dispatcher serves its own key: it must be the one others expect.
    if (config->mesh_dispatch && !streq (self->server_key, self->public_key)) {
        dbt_err_set (err, "[mesh] curve_server: this node runs a dispatcher, which serves with "
                     "curve_cert's key %s, but curve_server names %s; dispatching nodes share "
                     "the mesh's certificate (docs/deployment.md)", self->public_key,
                     self->server_key);
        goto fail;
    }
    if (config->mesh_curve_allow) {
        struct stat st;
        if (stat (config->mesh_curve_allow, &st) != 0 || !S_ISDIR (st.st_mode)) {
            dbt_err_set (err, "[mesh] curve_allow: '%s' is not a directory", config->mesh_curve_allow);
            goto fail;
        }
        self->allow_dir = dbt_strdup (config->mesh_curve_allow);
        self->store = zcertstore_new (self->allow_dir);
        if (!self->store) {
            dbt_err_set (err, "[mesh] curve_allow: cannot read '%s'", self->allow_dir);
            goto fail;
        }
    }
    self->zap = zactor_new (s_zap_actor, self);
    if (!self->zap) {
        dbt_err_set (err, "cannot start the CURVE authentication handler (is another running "
                     "in this process?)");
        goto fail;
    }
    dbt_log (DBT_LOG_INFO, "curve: mesh sockets use CURVE; this node's key %s, mesh server key "
             "%s, allow-list %s", self->public_key, self->server_key,
             self->allow_dir ? self->allow_dir : "(none: only those two keys)");
    *curve_p = self;
    return 0;
fail:
    dbt_curve_destroy (&self);
    return -1;
}

void
dbt_curve_destroy (dbt_curve_t **self_p)
{
    assert (self_p);
    dbt_curve_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->zap);
    zcertstore_destroy (&self->store);
    free (self->allow_dir);
    //  Secret key material does not linger in freed memory.
    memset (self->secret_key, 0, sizeof (self->secret_key));
    free (self);
    *self_p = NULL;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

void
dbt_curve_test (bool verbose)
{
    (void) verbose;
    char dir [] = "/tmp/dbt-curve-test-XXXXXX";
    assert (mkdtemp (dir));
    char err [DBT_ERRMSG_LEN];
    char *node = dbt_printf ("%s/node", dir);
    char *client = dbt_printf ("%s/client", dir);
    char *stranger = dbt_printf ("%s/stranger", dir);
    char *allow = dbt_printf ("%s/allow", dir);
    assert (dbt_curve_new_keys (node, err) == 0);
    assert (dbt_curve_new_keys (client, err) == 0);
    assert (dbt_curve_new_keys (stranger, err) == 0);
    assert (dbt_curve_new_keys (node, err) == -1 && strstr (err, "exists already"));
    assert (dbt_curve_new_keys ("", err) == -1);
    struct stat st;
    char *node_secret = dbt_printf ("%s_secret", node);
    assert (stat (node_secret, &st) == 0 && (st.st_mode & 0777) == 0600);

    //  Loading: public only, secret, missing, not a cert.
    char pub [DBT_CURVE_KEYLEN + 1], sec [DBT_CURVE_KEYLEN + 1], pub2 [DBT_CURVE_KEYLEN + 1];
    assert (dbt_keys_load (node, pub, sec, err) == 0);
    assert (dbt_keys_load (node_secret, pub2, NULL, err) == 0 && streq (pub, pub2));
    char *missing = dbt_printf ("%s/none", dir);
    assert (dbt_keys_load (missing, pub, sec, err) == -1 && strstr (err, "no such file"));
    char *junk = dbt_printf ("%s/junk", dir);
    FILE *file = fopen (junk, "w");
    assert (file);
    fputs ("hello\n", file);
    fclose (file);
    assert (dbt_keys_load (junk, pub, NULL, err) == -1 && strstr (err, "not a CURVE"));
    //  A public file alone gives no secret.
    char *lone = dbt_printf ("%s/lone", dir);
    zcert_t *cert = zcert_load (client);
    assert (cert);
    assert (zcert_save_public (cert, lone) == 0);
    zcert_destroy (&cert);
    assert (dbt_keys_load (lone, pub, sec, err) == -1 && strstr (err, "no secret"));

    //  The allow-list holds the client's public cert, not the stranger's.
    assert (mkdir (allow, 0700) == 0);
    char *allowed = dbt_printf ("%s/client", allow);
    cert = zcert_load (client);
    assert (zcert_save_public (cert, allowed) == 0);
    zcert_destroy (&cert);

    dbt_config_t *config = (dbt_config_t *) dbt_malloc (sizeof (dbt_config_t));
    dbt_curve_t *curve = NULL;
    assert (dbt_curve_new (config, &curve, err) == 0 && curve == NULL);
    config->mesh_curve_allow = allow;
    assert (dbt_curve_new (config, &curve, err) == -1 && strstr (err, "curve_cert is not"));
    config->mesh_curve_cert = node;
    config->mesh_curve_allow = missing;
    assert (dbt_curve_new (config, &curve, err) == -1 && strstr (err, "not a directory"));
    config->mesh_curve_allow = allow;
    config->mesh_dispatch = true;
    config->mesh_curve_server = client;
    assert (dbt_curve_new (config, &curve, err) == -1 && strstr (err, "runs a dispatcher"));
    config->mesh_curve_server = NULL;
    int rc = dbt_curve_new (config, &curve, err);
    assert (rc == 0 && curve);
    char node_pub [DBT_CURVE_KEYLEN + 1];
    assert (dbt_keys_load (node, node_pub, NULL, err) == 0);
    assert (streq (dbt_curve_public (curve), node_pub));
    assert (dbt_curve_apply (NULL, NULL, DBT_CURVE_SERVER, NULL) == 0);

    //  A server socket admits the node's own key and the allowed client,
    //  and refuses the stranger.
    zsock_t *server = zsock_new (ZMQ_ROUTER);
    assert (dbt_curve_apply (curve, server, DBT_CURVE_SERVER, "test") == 0);
    int port = zsock_bind (server, "tcp://127.0.0.1:*");
    assert (port > 0);
    const char *who [] = { NULL, client, stranger };
    bool admitted [] = { true, true, false };
    for (int i = 0; i < 3; i++) {
        zsock_t *dealer = zsock_new (ZMQ_DEALER);
        if (who [i])
            assert (dbt_keys_client (dealer, who [i], node, err) == 0);
        else
            assert (dbt_curve_apply (curve, dealer, DBT_CURVE_CLIENT, NULL) == 0);
        assert (zsock_connect (dealer, "tcp://127.0.0.1:%d", port) == 0);
        zstr_send (dealer, "hello");
        zsock_set_rcvtimeo (server, admitted [i] ? 5000 : 500);
        zmsg_t *msg = zmsg_recv (server);
        assert ((msg != NULL) == admitted [i]);
        zmsg_destroy (&msg);
        zsock_destroy (&dealer);
    }
    //  The server key as Z85 text; bad keys are refused.
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dbt_keys_client (dealer, client, node_pub, err) == 0);
    assert (dbt_keys_client (dealer, client, "short", err) == -1 && strstr (err, "server key"));
    assert (dbt_keys_client (dealer, lone, node_pub, err) == -1 && strstr (err, "client"));
    assert (dbt_keys_client (dealer, NULL, node_pub, err) == -1);
    zsock_destroy (&dealer);
    zsock_destroy (&server);
    dbt_curve_destroy (&curve);
    dbt_curve_destroy (&curve);
    assert (curve == NULL);
    free (config);

    remove (allowed);
    rmdir (allow);
    const char *names [] = { node, client, stranger };
    for (int i = 0; i < 3; i++) {
        char *secret = dbt_printf ("%s_secret", names [i]);
        remove (secret);
        remove (names [i]);
        free (secret);
    }
    remove (junk);
    remove (lone);
    assert (rmdir (dir) == 0);
    free (node);
    free (client);
    free (stranger);
    free (allow);
    free (allowed);
    free (node_secret);
    free (missing);
    free (junk);
    free (lone);
}
#endif  //  DBT_SELFTEST
