/*  =========================================================================
    dungbeetle - libdungbeetle, the client library of include/dungbeetle.h

    A dbt_client (DEALER, request ids, late replies skipped) connected to
    a node's client endpoint; job requests are encoded by dbt_request, as
    the HTTP front encodes its own. Replies are copied out of the msgpack
    document into the opaque result types, so nothing returned depends on
    the reply's buffer.
    =========================================================================
*/
#include "dbt_classes.h"

#define DEFAULT_TIMEOUT_MS 30000

struct _dungbeetle_client_t {
    dbt_client_t *client;       //  the connection
    int64_t timeout_ms;         //  answer limit per request
    char *token;                //  bearer token, or NULL
    zsock_t *monitor;           //  the socket's handshake events (CURVE only)
    bool secured;               //  a CURVE handshake has succeeded
    char error [DBT_ERRMSG_LEN];//  last failure's message
};

//  A map's scalar fields as text.
typedef struct {
    size_t count;               //  fields
    char **keys;                //  names
    char **values;              //  texts, NULL for nil
    int *kinds;                 //  dungbeetle_kind_t of each
} s_fields_t;

struct _dungbeetle_status_t {
    s_fields_t fields;          //  every scalar field of the status
    dungbeetle_state_t state;   //  parsed state
};

struct _dungbeetle_group_t {
    char *state;                //  the group's state
    size_t njobs;               //  members
    dungbeetle_status_t **jobs; //  their statuses
};

struct _dungbeetle_results_t {
    size_t ncols;               //  columns
    char **names;               //  column names
    char **types;               //  column types
    size_t nrows;               //  rows in the page
    s_fields_t cells;           //  nrows * ncols values, row by row (no keys)
};

struct _dungbeetle_list_t {
    size_t count;               //  items
    char **names;               //  names
    char **details;             //  details
};

//  --------------------------------------------------------------------------
//  Errors

const char *
dungbeetle_strerror (int code)
{
    switch (code) {
        case DUNGBEETLE_OK:         return "success";
        case DUNGBEETLE_ENOTFOUND:  return "not found";
        case DUNGBEETLE_ECONFLICT:  return "conflict (job id already queued or running)";
        case DUNGBEETLE_EINVAL:     return "invalid request";
        case DUNGBEETLE_ECONN:      return "cannot reach the node";
        case DUNGBEETLE_ETIMEDOUT:  return "timed out";
        case DUNGBEETLE_EFULL:      return "the node's state store is full";
        case DUNGBEETLE_ETOOBIG:    return "over the size limit";
        case DUNGBEETLE_EAUTH:      return "not authorised (token or CURVE key)";
        case DUNGBEETLE_EGONE:      return "results expired";
        case DUNGBEETLE_EPROTO:     return "malformed reply";
        case DUNGBEETLE_ENOTSUP:    return "not supported";
        default:                    return "the node failed";
    }
}

static int
s_code_error (int code)
{
    switch (code) {
        case 200: return DUNGBEETLE_OK;
        case 400: return DUNGBEETLE_EINVAL;
        case 401: return DUNGBEETLE_EAUTH;
        case 404: return DUNGBEETLE_ENOTFOUND;
        case 408: case 504: return DUNGBEETLE_ETIMEDOUT;
        case 409: return DUNGBEETLE_ECONFLICT;
        case 410: return DUNGBEETLE_EGONE;
        case 413: return DUNGBEETLE_ETOOBIG;
        case 507: return DUNGBEETLE_EFULL;
        default:  return DUNGBEETLE_ERROR;
    }
}

//  --------------------------------------------------------------------------
//  Client

//  What the socket set-up needs: the keys, and where the monitor goes.
typedef struct {
    const dungbeetle_options_t *options;
    zsock_t *monitor;           //  out: connected to the socket's monitor
} s_setup_t;

#define HANDSHAKE_EVENTS (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL \
                          | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)

//  dbt_client_setup_fn: CURVE keys on the socket, and a monitor of its
//  handshakes so that a refused key shows as DUNGBEETLE_EAUTH, not as a
//  silent node.
static int
s_setup (zsock_t *sock, void *arg, char *err)
{
    s_setup_t *setup = (s_setup_t *) arg;
    const dungbeetle_options_t *options = setup->options;
    if (options->client_cert) {
        if (dbt_keys_client (sock, options->client_cert, options->server_key, err))
            return -1;
    }
    else {
        char server [DBT_KEYS_LEN + 1], msg [DBT_ERRMSG_LEN];
        if (!dbt_keys_is_key (options->public_key) || !dbt_keys_is_key (options->secret_key)) {
            dbt_err_set (err, "public_key and secret_key must be 40 Z85 characters each");
            return -1;
        }
        if (dbt_keys_server (options->server_key, server, msg)) {
            dbt_err_set (err, "server key: %s", msg);
            return -1;
        }
        if (dbt_keys_set_client (sock, options->public_key, options->secret_key, server)) {
            dbt_err_set (err, "cannot set CURVE options: %s", zmq_strerror (zmq_errno ()));
            return -1;
        }
    }
    static uint64_t monitors = 0;
    uint64_t n = __atomic_fetch_add (&monitors, 1, __ATOMIC_RELAXED);
    char *endpoint = dbt_printf ("inproc://dungbeetle-monitor-%d-%" PRIu64, (int) getpid (), n);
    int rc = zmq_socket_monitor (zsock_resolve (sock), endpoint, HANDSHAKE_EVENTS);
    if (rc == 0) {
        //  Connected before the socket connects: no event is lost.
        setup->monitor = zsock_new (ZMQ_PAIR);
        if (!setup->monitor || zsock_connect (setup->monitor, "%s", endpoint))
            rc = -1;
    }
    if (rc)
        dbt_err_set (err, "cannot monitor the socket: %s", zmq_strerror (zmq_errno ()));
    free (endpoint);
    return rc;
}

int
dungbeetle_client_new (const char *endpoint, const dungbeetle_options_t *options,
                       dungbeetle_client_t **client_p, char *err)
{
    char local [DBT_ERRMSG_LEN];
    if (!err)
        err = local;
    *err = 0;
    if (!endpoint || !*endpoint) {
        snprintf (err, DUNGBEETLE_ERRMSG_LEN, "no endpoint given");
        return DUNGBEETLE_EINVAL;
    }
    bool curve = false;
    if (options && (options->server_key || options->client_cert || options->public_key
                    || options->secret_key)) {
        bool pair = options->public_key || options->secret_key;
        if (!options->server_key || (!options->client_cert && !pair)) {
            snprintf (err, DUNGBEETLE_ERRMSG_LEN, "CURVE needs both the node's server_key and "
                      "this client's keys (client_cert, or public_key and secret_key)");
            return DUNGBEETLE_EINVAL;
        }
        if (options->client_cert && pair) {
            snprintf (err, DUNGBEETLE_ERRMSG_LEN, "give client_cert or public_key and "
                      "secret_key, not both");
            return DUNGBEETLE_EINVAL;
        }
        curve = true;
    }
    //  As a library, quiet czmq's own signal handling and logging.
    zsys_handler_set (NULL);
    s_setup_t setup = { options, NULL };
    dbt_client_t *client = dbt_client_new_with (endpoint, curve ? s_setup : NULL, &setup, err);
    if (!client) {
        zsock_destroy (&setup.monitor);
        return DUNGBEETLE_EINVAL;
    }
    dungbeetle_client_t *self = (dungbeetle_client_t *) dbt_malloc (sizeof (dungbeetle_client_t));
    self->client = client;
    self->monitor = setup.monitor;
    self->timeout_ms = options && options->timeout_ms > 0 ? options->timeout_ms : DEFAULT_TIMEOUT_MS;
    self->token = options && options->token ? dbt_strdup (options->token) : NULL;
    *client_p = self;
    return 0;
}

void
dungbeetle_client_destroy (dungbeetle_client_t **client_p)
{
    if (!client_p || !*client_p)
        return;
    dungbeetle_client_t *self = *client_p;
    dbt_client_destroy (&self->client);
    zsock_destroy (&self->monitor);
    free (self->token);
    free (self);
    *client_p = NULL;
}

//  The next handshake event within timeout_ms (0: only one already
//  there): DUNGBEETLE_OK on success, DUNGBEETLE_EAUTH with self->error on
//  a failure, DUNGBEETLE_ETIMEDOUT when none came.
static int
s_handshake (dungbeetle_client_t *self, int64_t timeout_ms)
{
    zsock_set_rcvtimeo (self->monitor, (int) (timeout_ms > INT_MAX ? INT_MAX : timeout_ms));
    zmsg_t *event = zmsg_recv (self->monitor);
    if (!event)
        return DUNGBEETLE_ETIMEDOUT;
    zframe_t *head = zmsg_first (event);
    uint16_t kind = 0;
    if (head && zframe_size (head) >= 2)
        memcpy (&kind, zframe_data (head), 2);
    zmsg_destroy (&event);
    const char *endpoint = dbt_client_endpoint (self->client);
    if (kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        self->secured = true;
        return DUNGBEETLE_OK;
    }
    if (kind == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf (self->error, sizeof (self->error), "the node at %s refused this client's "
                  "CURVE key (it is not in the node's [mesh] curve_allow)", endpoint);
    else
        snprintf (self->error, sizeof (self->error), "CURVE handshake with %s failed: a wrong "
                  "server key, or the node does not use CURVE", endpoint);
    return DUNGBEETLE_EAUTH;
}

const char *
dungbeetle_client_error (dungbeetle_client_t *client)
{
    return client->error;
}

//  Start a request: the writer with rid (and token) written.
static dbt_mpw_t *
s_begin (dungbeetle_client_t *self)
{
    self->error [0] = 0;
    dbt_mpw_t *w = dbt_client_begin (self->client);
    if (self->token)
        dbt_mpw_kstr (w, "token", self->token);
    return w;
}

//  Send and wait. Returns 0 with *reply_p (caller destroys) or an error
//  code with self->error set (and *reply_p NULL).
static int
s_call (dungbeetle_client_t *self, int command, int64_t timeout_ms, dbt_reply_t **reply_p)
{
    *reply_p = NULL;
    //  With CURVE, the first request waits for the handshake, so that a
    //  refused key is told apart from a node that does not answer.
    if (self->monitor && !self->secured) {
        int hs = s_handshake (self, self->timeout_ms);
        if (hs == DUNGBEETLE_ETIMEDOUT)
            snprintf (self->error, sizeof (self->error), "no CURVE handshake with %s within "
                      "%" PRId64 " ms", dbt_client_endpoint (self->client), self->timeout_ms);
        if (hs)
            return hs;
    }
    int rc = dbt_client_call (self->client, command, timeout_ms, reply_p, self->error);
    if (rc == DBT_ETIMEDOUT) {
        //  A reconnection whose handshake failed since (the key was dropped).
        int hs = DUNGBEETLE_OK;
        char timed_out [DBT_ERRMSG_LEN];
        snprintf (timed_out, sizeof (timed_out), "%s", self->error);
        while (self->monitor && hs == DUNGBEETLE_OK)
            hs = s_handshake (self, 0);
        if (hs == DUNGBEETLE_EAUTH)
            return DUNGBEETLE_EAUTH;
        snprintf (self->error, sizeof (self->error), "%s", timed_out);
        return DUNGBEETLE_ETIMEDOUT;
    }
    if (rc == DBT_ETOOBIG)
        return DUNGBEETLE_ETOOBIG;
    if (rc)
        return DUNGBEETLE_ECONN;
    if ((*reply_p)->code != 200) {
        snprintf (self->error, sizeof (self->error), "%s",
                  (*reply_p)->message ? (*reply_p)->message : dungbeetle_strerror (s_code_error ((*reply_p)->code)));
        rc = s_code_error ((*reply_p)->code);
        dbt_reply_destroy (reply_p);
        return rc ? rc : DUNGBEETLE_EPROTO;
    }
    return 0;
}

static int
s_proto (dungbeetle_client_t *self, dbt_reply_t **reply_p, const char *what)
{
    snprintf (self->error, sizeof (self->error), "malformed reply: %s", what);
    dbt_reply_destroy (reply_p);
    return DUNGBEETLE_EPROTO;
}

//  A string field of map, copied (caller frees), or NULL.
static char *
s_str (const msgpack_object *map, const char *key)
{
    const msgpack_object *value = dbt_mp_get (map, key);
    const char *str;
    size_t len;
    if (value && dbt_mp_str (value, &str, &len) == 0)
        return dbt_strndup (str, len);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Fields

//  Text of a scalar, and its kind; NULL for nil and containers.
static char *
s_text (const msgpack_object *value, int *kind)
{
    char buf [64];
    *kind = DUNGBEETLE_NULL;
    switch (value->type) {
        case MSGPACK_OBJECT_STR:
            *kind = DUNGBEETLE_STRING;
            return dbt_strndup (value->via.str.ptr, value->via.str.size);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            *kind = DUNGBEETLE_NUMBER;
            snprintf (buf, sizeof (buf), "%" PRIu64, value->via.u64);
            return dbt_strdup (buf);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            *kind = DUNGBEETLE_NUMBER;
            snprintf (buf, sizeof (buf), "%" PRId64, value->via.i64);
            return dbt_strdup (buf);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            *kind = DUNGBEETLE_NUMBER;
            snprintf (buf, sizeof (buf), "%.17g", value->via.f64);
            return dbt_strdup (buf);
        case MSGPACK_OBJECT_BOOLEAN:
            *kind = DUNGBEETLE_BOOL;
            return dbt_strdup (value->via.boolean ? "true" : "false");
        default:
            return NULL;
    }
}

static void
s_fields_add (s_fields_t *fields, const char *key, size_t klen, const msgpack_object *value)
{
    fields->keys = (char **) dbt_realloc (fields->keys, (fields->count + 1) * sizeof (char *));
    fields->values = (char **) dbt_realloc (fields->values, (fields->count + 1) * sizeof (char *));
    fields->kinds = (int *) dbt_realloc (fields->kinds, (fields->count + 1) * sizeof (int));
    fields->keys [fields->count] = key ? dbt_strndup (key, klen) : NULL;
    fields->values [fields->count] = s_text (value, &fields->kinds [fields->count]);
    fields->count++;
}

static void
s_fields_free (s_fields_t *fields)
{
    for (size_t i = 0; i < fields->count; i++) {
        free (fields->keys [i]);
        free (fields->values [i]);
    }
    free (fields->keys);
    free (fields->values);
    free (fields->kinds);
    memset (fields, 0, sizeof (*fields));
}

static const char *
s_fields_get (const s_fields_t *fields, const char *key)
{
    for (size_t i = 0; i < fields->count; i++)
        if (fields->keys [i] && streq (fields->keys [i], key))
            return fields->values [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Status

static dungbeetle_status_t *
s_status_of (const msgpack_object *map)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    dungbeetle_status_t *self = (dungbeetle_status_t *) dbt_malloc (sizeof (dungbeetle_status_t));
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr [i];
        if (kv->key.type == MSGPACK_OBJECT_STR)
            s_fields_add (&self->fields, kv->key.via.str.ptr, kv->key.via.str.size, &kv->val);
    }
    const char *state = s_fields_get (&self->fields, "state");
    static const char *names [] = { "PENDING", "STARTED", "SUCCESS", "FAILURE", "RETRY" };
    for (int i = 0; i < 5; i++)
        if (state && streq (state, names [i]))
            self->state = (dungbeetle_state_t) i;
    return self;
}

void
dungbeetle_status_destroy (dungbeetle_status_t **status_p)
{
    if (!status_p || !*status_p)
        return;
    s_fields_free (&(*status_p)->fields);
    free (*status_p);
    *status_p = NULL;
}

static const char *
s_or_empty (const char *str)
{
    return str ? str : "";
}

const char *
dungbeetle_status_field (const dungbeetle_status_t *status, const char *name)
{
    return s_fields_get (&status->fields, name);
}

const char *
dungbeetle_status_id (const dungbeetle_status_t *status)
{
    return s_or_empty (s_fields_get (&status->fields, "job_id"));
}

dungbeetle_state_t
dungbeetle_status_state (const dungbeetle_status_t *status)
{
    return status->state;
}

const char *
dungbeetle_status_state_name (const dungbeetle_status_t *status)
{
    return s_or_empty (s_fields_get (&status->fields, "state"));
}

uint64_t
dungbeetle_status_rows (const dungbeetle_status_t *status)
{
    const char *rows = s_fields_get (&status->fields, "rows");
    return rows ? strtoull (rows, NULL, 10) : 0;
}

const char *
dungbeetle_status_error (const dungbeetle_status_t *status)
{
    return s_or_empty (s_fields_get (&status->fields, "error"));
}

const char *
dungbeetle_status_task (const dungbeetle_status_t *status)
{
    return s_or_empty (s_fields_get (&status->fields, "task"));
}

const char *
dungbeetle_status_queue (const dungbeetle_status_t *status)
{
    return s_or_empty (s_fields_get (&status->fields, "queue"));
}

int
dungbeetle_status_attempts (const dungbeetle_status_t *status)
{
    const char *attempts = s_fields_get (&status->fields, "attempts");
    return attempts ? (int) strtol (attempts, NULL, 10) : 0;
}

const char *
dungbeetle_status_results_table (const dungbeetle_status_t *status)
{
    return s_or_empty (s_fields_get (&status->fields, "results_table"));
}

static int
s_status_call (dungbeetle_client_t *self, dbt_reply_t **reply, dungbeetle_status_t **status_p)
{
    dungbeetle_status_t *status = s_status_of ((*reply)->data);
    if (!status)
        return s_proto (self, reply, "status is not a map");
    dbt_reply_destroy (reply);
    *status_p = status;
    return 0;
}

int
dungbeetle_status (dungbeetle_client_t *client, const char *job_id, dungbeetle_status_t **status_p)
{
    dbt_mpw_kstr (s_begin (client), "job_id", job_id);
    dbt_reply_t *reply = NULL;
    int rc = s_call (client, DBT_C_STATUS, client->timeout_ms, &reply);
    return rc ? rc : s_status_call (client, &reply, status_p);
}

//  --------------------------------------------------------------------------
//  Submit

void
dungbeetle_job_request_init (dungbeetle_job_request_t *req)
{
    memset (req, 0, sizeof (*req));
    req->ttl_ms = -1;
    req->results_ttl_ms = -1;
}

static void
s_job (dbt_mpw_t *w, const dungbeetle_job_request_t *job)
{
    dbt_request_t req;
    dbt_request_init (&req);
    req.task = job->task;
    req.id = job->id;
    req.queue = job->queue;
    req.db = job->db;
    req.args = (const char **) job->args;
    req.nargs = job->nargs;
    req.eta_ms = job->eta_ms;
    req.ttl_ms = job->ttl_ms;
    req.results_ttl_ms = job->results_ttl_ms;
    req.retries = job->retries;
    dbt_request_job (w, &req);
}

static int
s_check_job (dungbeetle_client_t *self, const dungbeetle_job_request_t *job)
{
    if (!job || !job->task || !*job->task || (job->nargs && !job->args) || job->retries < 0) {
        snprintf (self->error, sizeof (self->error),
                  "a job request needs a task, args when nargs > 0, and retries >= 0");
        return DUNGBEETLE_EINVAL;
    }
    return 0;
}

int
dungbeetle_submit (dungbeetle_client_t *client, const dungbeetle_job_request_t *req, char **job_id_p)
{
    int rc = s_check_job (client, req);
    if (rc)
        return rc;
    dbt_mpw_t *w = s_begin (client);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_array (w);
    s_job (w, req);
    dbt_mpw_end (w);
    dbt_reply_t *reply = NULL;
    rc = s_call (client, DBT_C_SUBMIT, client->timeout_ms, &reply);
    if (rc)
        return rc;
    char *id = s_str (reply->data, "job_id");
    if (!id)
        return s_proto (client, &reply, "no job_id");
    dbt_reply_destroy (&reply);
    if (job_id_p)
        *job_id_p = id;
    else
        free (id);
    return 0;
}

int
dungbeetle_submit_group (dungbeetle_client_t *client, const char *group_id, int concurrency,
                         const dungbeetle_job_request_t *jobs, size_t njobs, char **group_id_p)
{
    int rc = 0;
    if (!njobs || !jobs || concurrency < 0) {
        snprintf (client->error, sizeof (client->error),
                  "a group needs one or more jobs and a concurrency >= 0");
        return DUNGBEETLE_EINVAL;
    }
    for (size_t i = 0; i < njobs; i++)
        if ((rc = s_check_job (client, &jobs [i])))
            return rc;
    dbt_mpw_t *w = s_begin (client);
    dbt_mpw_str (w, "group");
    dbt_mpw_map (w);
    if (group_id)
        dbt_mpw_kstr (w, "id", group_id);
    dbt_mpw_ku64 (w, "concurrency", (uint64_t) concurrency);
    dbt_mpw_end (w);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_array (w);
    for (size_t i = 0; i < njobs; i++)
        s_job (w, &jobs [i]);
    dbt_mpw_end (w);
    dbt_reply_t *reply = NULL;
    rc = s_call (client, DBT_C_SUBMIT, client->timeout_ms, &reply);
    if (rc)
        return rc;
    char *id = s_str (reply->data, "group_id");
    if (!id)
        return s_proto (client, &reply, "no group_id");
    dbt_reply_destroy (&reply);
    if (group_id_p)
        *group_id_p = id;
    else
        free (id);
    return 0;
}

//  --------------------------------------------------------------------------
//  Wait, cancel

typedef struct {
    dungbeetle_progress_fn *fn;
    void *arg;
} s_progress_t;

static void
s_progress (const msgpack_object *map, void *arg)
{
    s_progress_t *progress = (s_progress_t *) arg;
    dungbeetle_status_t *status = s_status_of (map);
    if (!status)
        return;
    const char *elapsed = s_fields_get (&status->fields, "elapsed_ms");
    const char *id = s_fields_get (&status->fields, "job_id");
    progress->fn (id ? id : "", status->state, dungbeetle_status_rows (status),
                  elapsed ? strtoll (elapsed, NULL, 10) : 0, progress->arg);
    dungbeetle_status_destroy (&status);
}

int
dungbeetle_wait (dungbeetle_client_t *client, const char *job_id, int64_t timeout_ms,
                 dungbeetle_progress_fn *fn, void *arg, dungbeetle_status_t **status_p)
{
    dbt_mpw_t *w = s_begin (client);
    dbt_mpw_kstr (w, "job_id", job_id);
    dbt_mpw_ki64 (w, "timeout", timeout_ms > 0 ? timeout_ms : 0);
    s_progress_t progress = { fn, arg };
    if (fn)
        dbt_client_set_progress (client->client, s_progress, &progress);
    //  The node answers at the end (or at timeout_ms); allow for the trip.
    int64_t limit = timeout_ms > 0 ? timeout_ms + client->timeout_ms : INT64_MAX / 4;
    dbt_reply_t *reply = NULL;
    int rc = s_call (client, DBT_C_WAIT, limit, &reply);
    dbt_client_set_progress (client->client, NULL, NULL);
    return rc ? rc : s_status_call (client, &reply, status_p);
}

static int
s_cancel (dungbeetle_client_t *client, const char *key, const char *id, bool purge)
{
    dbt_mpw_t *w = s_begin (client);
    dbt_mpw_kstr (w, key, id);
    dbt_mpw_kbool (w, "purge", purge);
    dbt_reply_t *reply = NULL;
    int rc = s_call (client, DBT_C_CANCEL, client->timeout_ms, &reply);
    dbt_reply_destroy (&reply);
    return rc;
}

int
dungbeetle_cancel (dungbeetle_client_t *client, const char *job_id, bool purge)
{
    return s_cancel (client, "job_id", job_id, purge);
}

int
dungbeetle_cancel_group (dungbeetle_client_t *client, const char *group_id, bool purge)
{
    return s_cancel (client, "group_id", group_id, purge);
}

//  --------------------------------------------------------------------------
//  Groups

int
dungbeetle_group_status (dungbeetle_client_t *client, const char *group_id,
                         dungbeetle_group_t **group_p)
{
    dbt_mpw_kstr (s_begin (client), "group_id", group_id);
    dbt_reply_t *reply = NULL;
    int rc = s_call (client, DBT_C_GROUP, client->timeout_ms, &reply);
    if (rc)
        return rc;
    const msgpack_object *jobs = dbt_mp_get (reply->data, "jobs");
    if (!jobs || jobs->type != MSGPACK_OBJECT_ARRAY)
        return s_proto (client, &reply, "no jobs");
    dungbeetle_group_t *self = (dungbeetle_group_t *) dbt_malloc (sizeof (dungbeetle_group_t));
    self->state = s_str (reply->data, "state");
    self->jobs = (dungbeetle_status_t **) dbt_malloc ((jobs->via.array.size + 1) * sizeof (void *));
    for (uint32_t i = 0; i < jobs->via.array.size; i++) {
        dungbeetle_status_t *status = s_status_of (&jobs->via.array.ptr [i]);
        if (status)
            self->jobs [self->njobs++] = status;
    }
    dbt_reply_destroy (&reply);
    *group_p = self;
    return 0;
}

void
dungbeetle_group_destroy (dungbeetle_group_t **group_p)
{
    if (!group_p || !*group_p)
        return;
    dungbeetle_group_t *self = *group_p;
    for (size_t i = 0; i < self->njobs; i++)
        dungbeetle_status_destroy (&self->jobs [i]);
    free (self->jobs);
    free (self->state);
    free (self);
    *group_p = NULL;
}

const char *
dungbeetle_group_state (const dungbeetle_group_t *group)
{
    return s_or_empty (group->state);
}

size_t
dungbeetle_group_size (const dungbeetle_group_t *group)
{
    return group->njobs;
}

const dungbeetle_status_t *
dungbeetle_group_job (const dungbeetle_group_t *group, size_t index)
{
    return index < group->njobs ? group->jobs [index] : NULL;
}

//  --------------------------------------------------------------------------
//  Results

int
dungbeetle_results (dungbeetle_client_t *client, const char *job_id, int64_t offset,
                    int64_t limit, dungbeetle_results_t **results_p)
{
    dbt_mpw_t *w = s_begin (client);
    dbt_mpw_kstr (w, "job_id", job_id);
    dbt_mpw_ki64 (w, "offset", offset);
    dbt_mpw_ki64 (w, "limit", limit ? limit : 1000);
    dbt_reply_t *reply = NULL;
    int rc = s_call (client, DBT_C_RESULTS, client->timeout_ms, &reply);
    if (rc)
        return rc;
    const msgpack_object *cols = dbt_mp_get (reply->data, "columns");
    const msgpack_object *rows = dbt_mp_get (reply->data, "rows");
    if (!cols || cols->type != MSGPACK_OBJECT_ARRAY || !rows || rows->type != MSGPACK_OBJECT_ARRAY)
        return s_proto (client, &reply, "no columns or rows");
    dungbeetle_results_t *self = (dungbeetle_results_t *) dbt_malloc (sizeof (dungbeetle_results_t));
    self->ncols = cols->via.array.size;
    self->names = (char **) dbt_malloc ((self->ncols + 1) * sizeof (char *));
    self->types = (char **) dbt_malloc ((self->ncols + 1) * sizeof (char *));
    for (size_t c = 0; c < self->ncols; c++) {
        self->names [c] = s_str (&cols->via.array.ptr [c], "name");
        self->types [c] = s_str (&cols->via.array.ptr [c], "type");
    }
    msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
    for (uint32_t r = 0; r < rows->via.array.size; r++) {
        const msgpack_object *row = &rows->via.array.ptr [r];
        for (size_t c = 0; c < self->ncols; c++) {
            bool in = row->type == MSGPACK_OBJECT_ARRAY && c < row->via.array.size;
            s_fields_add (&self->cells, NULL, 0, in ? &row->via.array.ptr [c] : &nil);
        }
        self->nrows++;
    }
    dbt_reply_destroy (&reply);
    *results_p = self;
    return 0;
}

void
dungbeetle_results_destroy (dungbeetle_results_t **results_p)
{
    if (!results_p || !*results_p)
        return;
    dungbeetle_results_t *self = *results_p;
    for (size_t c = 0; c < self->ncols; c++) {
        free (self->names [c]);
        free (self->types [c]);
    }
    free (self->names);
    free (self->types);
    s_fields_free (&self->cells);
    free (self);
    *results_p = NULL;
}

size_t
dungbeetle_results_columns (const dungbeetle_results_t *results)
{
    return results->ncols;
}

const char *
dungbeetle_results_column_name (const dungbeetle_results_t *results, size_t column)
{
    return column < results->ncols ? s_or_empty (results->names [column]) : NULL;
}

const char *
dungbeetle_results_column_type (const dungbeetle_results_t *results, size_t column)
{
    return column < results->ncols ? s_or_empty (results->types [column]) : NULL;
}

size_t
dungbeetle_results_rows (const dungbeetle_results_t *results)
{
    return results->nrows;
}

dungbeetle_kind_t
dungbeetle_results_kind (const dungbeetle_results_t *results, size_t row, size_t column)
{
    if (row >= results->nrows || column >= results->ncols)
        return DUNGBEETLE_NULL;
    return (dungbeetle_kind_t) results->cells.kinds [row * results->ncols + column];
}

const char *
dungbeetle_results_value (const dungbeetle_results_t *results, size_t row, size_t column)
{
    if (row >= results->nrows || column >= results->ncols)
        return NULL;
    return results->cells.values [row * results->ncols + column];
}

//  --------------------------------------------------------------------------
//  Lists

static void
s_list_add (dungbeetle_list_t *list, char *name, char *detail)
{
    list->names = (char **) dbt_realloc (list->names, (list->count + 1) * sizeof (char *));
    list->details = (char **) dbt_realloc (list->details, (list->count + 1) * sizeof (char *));
    list->names [list->count] = name ? name : dbt_strdup ("");
    list->details [list->count] = detail ? detail : dbt_strdup ("");
    list->count++;
}

int
dungbeetle_tasks (dungbeetle_client_t *client, dungbeetle_list_t **list_p)
{
    s_begin (client);
    dbt_reply_t *reply = NULL;
    int rc = s_call (client, DBT_C_TASKS, client->timeout_ms, &reply);
    if (rc)
        return rc;
    const msgpack_object *map = reply->data;
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return s_proto (client, &reply, "tasks is not a map");
    dungbeetle_list_t *list = (dungbeetle_list_t *) dbt_malloc (sizeof (dungbeetle_list_t));
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr [i];
        if (kv->key.type == MSGPACK_OBJECT_STR)
            s_list_add (list, dbt_strndup (kv->key.via.str.ptr, kv->key.via.str.size),
                        s_str (&kv->val, "queue"));
    }
    dbt_reply_destroy (&reply);
    *list_p = list;
    return 0;
}

int
dungbeetle_pending (dungbeetle_client_t *client, const char *queue, dungbeetle_list_t **list_p)
{
    dbt_mpw_kstr (s_begin (client), "queue", queue);
    dbt_reply_t *reply = NULL;
    int rc = s_call (client, DBT_C_PENDING, client->timeout_ms, &reply);
    if (rc)
        return rc;
    const msgpack_object *items = reply->data;
    if (!items || items->type != MSGPACK_OBJECT_ARRAY)
        return s_proto (client, &reply, "pending is not an array");
    dungbeetle_list_t *list = (dungbeetle_list_t *) dbt_malloc (sizeof (dungbeetle_list_t));
    for (uint32_t i = 0; i < items->via.array.size; i++)
        s_list_add (list, s_str (&items->via.array.ptr [i], "ID"),
                    s_str (&items->via.array.ptr [i], "Status"));
    dbt_reply_destroy (&reply);
    *list_p = list;
    return 0;
}

void
dungbeetle_list_destroy (dungbeetle_list_t **list_p)
{
    if (!list_p || !*list_p)
        return;
    dungbeetle_list_t *self = *list_p;
    for (size_t i = 0; i < self->count; i++) {
        free (self->names [i]);
        free (self->details [i]);
    }
    free (self->names);
    free (self->details);
    free (self);
    *list_p = NULL;
}

size_t
dungbeetle_list_size (const dungbeetle_list_t *list)
{
    return list->count;
}

const char *
dungbeetle_list_name (const dungbeetle_list_t *list, size_t index)
{
    return index < list->count ? list->names [index] : NULL;
}

const char *
dungbeetle_list_detail (const dungbeetle_list_t *list, size_t index)
{
    return index < list->count ? list->details [index] : NULL;
}
