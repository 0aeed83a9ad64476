/*  =========================================================================
    dbt_front - the client endpoint: the job API over ZeroMQ and msgpack

    See dbt_front.h. Each request becomes the HTTP API's request (method,
    path, query) or, for SUBMIT, its decoded form (dbt_api_submit); the
    JSON response's status, message and data come back as the reply's
    code, message and data, converted value for value to msgpack.
    =========================================================================
*/
#include "dbt_classes.h"

#define WAIT_TICK_MS 100        //  how often waits are checked
#define RESULTS_LIMIT 1000      //  rows per RESULTS page by default
#define RESULTS_MAX 100000      //  and at most
#define WAITERS_MAX 10000       //  waits open at once

//  One client waiting for a job to finish.
typedef struct {
    zframe_t *identity;         //  the client
    uint64_t rid;               //  its request
    char *job_id;               //  the job
    int64_t started;            //  monotonic ms the wait began
    int64_t deadline;           //  monotonic ms to give up, 0 = never
    int64_t every;              //  ms between progress frames
    int64_t last_sent;          //  monotonic ms of the last progress frame
    int state;                  //  last state told, -1 = none
    uint64_t rows;              //  last rows told
} s_waiter_t;

typedef struct {
    dbt_front_args_t *args;     //  borrowed resources
    zsock_t *pipe;              //  actor pipe
    zsock_t *router;            //  the client endpoint
    char *endpoint;             //  where it is bound, NULL when not
    dbt_mpw_t *writer;          //  reply body
    zlist_t *waiters;           //  s_waiter_t, oldest first
    bool terminated;            //  $TERM received
} self_t;

//  --------------------------------------------------------------------------
//  JSON to msgpack, value for value

static void
s_json_mp (dbt_mpw_t *w, json_t *value)
{
    switch (json_typeof (value)) {
        case JSON_OBJECT: {
            const char *key;
            json_t *item;
            dbt_mpw_map (w);
            json_object_foreach (value, key, item) {
                dbt_mpw_str (w, key);
                s_json_mp (w, item);
            }
            dbt_mpw_end (w);
            break;
        }
        case JSON_ARRAY: {
            size_t index;
            json_t *item;
            dbt_mpw_array (w);
            json_array_foreach (value, index, item)
                s_json_mp (w, item);
            dbt_mpw_end (w);
            break;
        }
        case JSON_STRING:
            dbt_mpw_strn (w, json_string_value (value), json_string_length (value));
            break;
        case JSON_INTEGER:
            dbt_mpw_i64 (w, (int64_t) json_integer_value (value));
            break;
        case JSON_REAL:
            dbt_mpw_f64 (w, json_real_value (value));
            break;
        case JSON_TRUE:
            dbt_mpw_bool (w, true);
            break;
        case JSON_FALSE:
            dbt_mpw_bool (w, false);
            break;
        default:
            dbt_mpw_nil (w);
    }
}

//  --------------------------------------------------------------------------
//  Replies

//  Send {rid, code, message?, data} with data from doc (may be NULL: nil)
//  and extra (map entries, may be NULL).
static void
s_reply (self_t *self, zframe_t *identity, uint64_t rid, int code, const char *message,
         json_t *data)
{
    dbt_mpw_t *w = self->writer;
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_ku64 (w, "rid", rid);
    dbt_mpw_ku64 (w, "code", (uint64_t) code);
    if (message)
        dbt_mpw_kstr (w, "message", message);
    dbt_mpw_str (w, "data");
    if (data)
        s_json_mp (w, data);
    else
        dbt_mpw_nil (w);
    dbt_mpw_end (w);
    size_t len;
    dbt_mpw_data (w, &len);
    if (len > DBT_MSG_MAX_BODY) {
        s_reply (self, identity, rid, 413, "the reply is over the mesh's limit: ask for fewer rows",
                 NULL);
        return;
    }
    if (dbt_msg_send (self->router, identity, DBT_PROTO_CLIENT, DBT_C_REPLY, w))
        dbt_log (DBT_LOG_DEBUG, "client: cannot answer a client: %s", zmq_strerror (errno));
}

static void
s_error (self_t *self, zframe_t *identity, uint64_t rid, int code, const char *message)
{
    s_reply (self, identity, rid, code, message, NULL);
}

//  Answer with what the HTTP API answered (its body, or its stream read
//  whole). extra (may be NULL) is merged into an object's data.
static void
s_answer (self_t *self, zframe_t *identity, uint64_t rid, dbt_response_t **response_p,
          json_t *extra)
{
    dbt_response_t *response = *response_p;
    dbt_buf_t body = { 0 };
    bool too_big = false;
    if (response->reader) {
        char chunk [16384];
        ssize_t got;
        while ((got = response->reader (response->reader_cls, chunk, sizeof (chunk))) > 0) {
            dbt_buf_append (&body, chunk, (size_t) got);
            if (body.len > DBT_MSG_MAX_BODY / 2) {
                too_big = true;
                break;
            }
        }
        if (got < 0) {
            dbt_buf_free (&body);
            dbt_response_destroy (response_p);
            s_error (self, identity, rid, 500, "the results could not be read to the end");
            return;
        }
    }
    else
    if (response->body)
        dbt_buf_append (&body, response->body, response->len);
    int status = response->status;
    dbt_response_destroy (response_p);
    if (too_big) {
        dbt_buf_free (&body);
        s_error (self, identity, rid, 413, "the page is over the mesh's limit: ask for fewer rows");
        return;
    }
    json_t *doc = body.len ? json_loadb (body.data, body.len, 0, NULL) : NULL;
    dbt_buf_free (&body);
    if (!doc) {
        s_error (self, identity, rid, 500, "malformed answer from the API");
        return;
    }
    json_t *data = json_object_get (doc, "data");
    if (extra && json_is_object (data))
        json_object_update (data, extra);
    const char *message = status == 200 ? NULL : json_string_value (json_object_get (doc, "message"));
    s_reply (self, identity, rid, status, message ? message : status == 200 ? NULL : "request failed",
             json_is_null (data) ? NULL : data);
    json_decref (doc);
}

//  --------------------------------------------------------------------------
//  Requests

//  Query-string arguments for the HTTP API's handlers.
typedef struct {
    const char *keys [4];
    const char *values [4];
} s_query_t;

static const char *
s_query (void *arg, const char *key)
{
    s_query_t *query = (s_query_t *) arg;
    for (int i = 0; i < 4 && query->keys [i]; i++)
        if (streq (query->keys [i], key))
            return query->values [i];
    return NULL;
}

//  A GET, DELETE through the HTTP API's routes, answered as it answers.
static void
s_route (self_t *self, zframe_t *identity, uint64_t rid, const char *method, const char *path,
         s_query_t *query, json_t *extra)
{
    s_query_t none = { { NULL }, { NULL } };
    dbt_response_t *response = dbt_api_handle (self->args->api, method, path, s_query,
                                               query ? query : &none, NULL, 0);
    s_answer (self, identity, rid, &response, extra);
}

//  A required id field, valid as a job or group id; NULL after answering
//  404 (not valid: nothing can have it) or 400 (absent). Caller frees.
static char *
s_id (self_t *self, const dbt_msg_t *msg, uint64_t rid, const char *key, const char *what)
{
    char err [DBT_ERRMSG_LEN];
    char *id = NULL;
    if (dbt_mp_field_str (msg->map, key, true, &id, err)) {
        s_error (self, msg->identity, rid, 400, err);
        return NULL;
    }
    if (!dbt_id_valid (id)) {
        char *message = dbt_printf ("%s not found", what);
        s_error (self, msg->identity, rid, 404, message);
        free (message);
        free (id);
        return NULL;
    }
    return id;
}

static void
s_submit (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    const msgpack_object *list = dbt_mp_get (msg->map, "jobs");
    const msgpack_object *group = dbt_mp_get (msg->map, "group");
    if (group && group->type == MSGPACK_OBJECT_NIL)
        group = NULL;
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size == 0) {
        s_error (self, msg->identity, rid, 400, "field 'jobs' must be an array of one or more job maps");
        return;
    }
    if (!group && list->via.array.size != 1) {
        s_error (self, msg->identity, rid, 400, "several jobs are submitted as a group (field 'group')");
        return;
    }
    if (group && group->type != MSGPACK_OBJECT_MAP) {
        s_error (self, msg->identity, rid, 400, "field 'group' must be a map {id, concurrency}");
        return;
    }
    dbt_jobreq_group_t info;
    memset (&info, 0, sizeof (info));
    int64_t concurrency = 0;
    if (group && (dbt_mp_field_str (group, "id", false, &info.id, err)
              ||  dbt_mp_field_i64 (group, "concurrency", false, &concurrency, err))) {
        s_error (self, msg->identity, rid, 400, err);
        dbt_jobreq_group_free (&info);
        return;
    }
    if (concurrency < 0 || concurrency > UINT32_MAX) {
        s_error (self, msg->identity, rid, 400, "group concurrency must be 0 (no limit) or more");
        dbt_jobreq_group_free (&info);
        return;
    }
    if (group && (!info.id || !*info.id)) {
        char uuid [37];
        dbt_uuid (uuid);
        free (info.id);
        info.id = dbt_strdup (uuid);
        info.named_here = true;
    }
    info.concurrency = concurrency;
    dbt_mpw_t *jobs = dbt_mpw_new ();
    dbt_mpw_array (jobs);
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        dbt_request_t req;
        if (dbt_request_read (&list->via.array.ptr [i], &req, err)) {
            char *message = group ? dbt_printf ("job %u: %s", i + 1, err) : dbt_strdup (err);
            s_error (self, msg->identity, rid, 400, message);
            free (message);
            dbt_mpw_destroy (&jobs);
            dbt_jobreq_group_free (&info);
            return;
        }
        //  A job without an id gets one here, as over HTTP, so that a
        //  client told the outcome is unknown knows what to look for.
        bool named_here = !req.id || !*req.id;
        if (named_here) {
            char uuid [37];
            dbt_uuid (uuid);
            free ((char *) req.id);
            req.id = dbt_printf ("job_%s", uuid);
        }
        dbt_request_job (jobs, &req);
        if (i == 0) {
            info.first.task = dbt_strdup (req.task);
            info.first.queue = req.queue ? dbt_strdup (req.queue) : NULL;
            info.first.id = dbt_strdup (req.id);
            info.first.named_here = named_here;
        }
        info.njobs++;
        dbt_request_free (&req);
    }
    dbt_mpw_end (jobs);
    dbt_response_t *response = dbt_api_submit (self->args->api, jobs, group ? NULL : &info.first,
                                               group ? &info : NULL);
    s_answer (self, msg->identity, rid, &response, NULL);
    dbt_mpw_destroy (&jobs);
    dbt_jobreq_group_free (&info);
}

static void
s_cancel (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    bool group = dbt_mp_get (msg->map, "group_id") != NULL;
    bool purge = false;
    if (dbt_mp_field_bool (msg->map, "purge", false, &purge, err)) {
        s_error (self, msg->identity, rid, 400, err);
        return;
    }
    char *id = s_id (self, msg, rid, group ? "group_id" : "job_id", group ? "group" : "job");
    if (!id)
        return;
    char *path = dbt_printf ("/%s/%s", group ? "groups" : "jobs", id);
    s_query_t query = { { "purge" }, { purge ? "true" : "false" } };
    s_route (self, msg->identity, rid, "DELETE", path, &query, NULL);
    free (path);
    free (id);
}

static void
s_results (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    int64_t limit = RESULTS_LIMIT, offset = 0;
    if (dbt_mp_field_i64 (msg->map, "limit", false, &limit, err)
    ||  dbt_mp_field_i64 (msg->map, "offset", false, &offset, err)) {
        s_error (self, msg->identity, rid, 400, err);
        return;
    }
    if (limit < 1 || limit > RESULTS_MAX || offset < 0) {
        char *message = dbt_printf ("limit must be 1 to %d rows and offset not negative", RESULTS_MAX);
        s_error (self, msg->identity, rid, 400, message);
        free (message);
        return;
    }
    char *id = s_id (self, msg, rid, "job_id", "job");
    if (!id)
        return;
    char *path = dbt_printf ("/jobs/%s/results", id);
    char slimit [24], soffset [24];
    snprintf (slimit, sizeof (slimit), "%" PRId64, limit);
    snprintf (soffset, sizeof (soffset), "%" PRId64, offset);
    s_query_t query = { { "format", "limit", "offset" }, { "json", slimit, soffset } };
    dbt_response_t *response = dbt_api_handle (self->args->api, "GET", path, s_query, &query,
                                               NULL, 0);
    json_t *extra = json_object ();
    json_object_set_new (extra, "offset", json_integer (offset));
    json_object_set_new (extra, "limit", json_integer (limit));
    s_answer (self, msg->identity, rid, &response, extra);
    json_decref (extra);
    free (path);
    free (id);
}

//  --------------------------------------------------------------------------
//  Waits

static void
s_waiter_destroy (s_waiter_t **self_p)
{
    s_waiter_t *self = *self_p;
    if (!self)
        return;
    zframe_destroy (&self->identity);
    free (self->job_id);
    free (self);
    *self_p = NULL;
}

//  Check one wait: send progress when there is news (or every so often),
//  the final answer when the job is done. Returns true when it is over.
static bool
s_wait_check (self_t *self, s_waiter_t *waiter)
{
    char err [DBT_ERRMSG_LEN];
    dbt_job_t *job = NULL;
    int rc = dbt_view_job (self->args->view, waiter->job_id, &job, NULL, err);
    int64_t now = dbt_clock_ms ();
    if (rc == DBT_ENOTFOUND) {
        s_error (self, waiter->identity, waiter->rid, 404, "job not found");
        return true;
    }
    if (rc) {
        dbt_log (DBT_LOG_ERROR, "client: %s", err);
        s_error (self, waiter->identity, waiter->rid, 500, "could not read job status");
        return true;
    }
    bool final = dbt_state_final (job->state);
    if (!final && ((int) job->state != waiter->state || job->rows != waiter->rows
                   || now - waiter->last_sent >= waiter->every)) {
        dbt_mpw_t *w = self->writer;
        dbt_mpw_reset (w);
        dbt_mpw_map (w);
        dbt_mpw_ku64 (w, "rid", waiter->rid);
        dbt_mpw_kstr (w, "job_id", job->id);
        dbt_mpw_kstr (w, "state", dbt_state_name (job->state));
        dbt_mpw_ku64 (w, "rows", job->rows);
        dbt_mpw_ku64 (w, "attempts", job->attempts);
        dbt_mpw_ki64 (w, "elapsed_ms", now - waiter->started);
        dbt_mpw_end (w);
        dbt_msg_send (self->router, waiter->identity, DBT_PROTO_CLIENT, DBT_C_PROGRESS, w);
        waiter->state = (int) job->state;
        waiter->rows = job->rows;
        waiter->last_sent = now;
    }
    dbt_job_destroy (&job);
    if (final) {
        char *path = dbt_printf ("/jobs/%s", waiter->job_id);
        s_route (self, waiter->identity, waiter->rid, "GET", path, NULL, NULL);
        free (path);
        return true;
    }
    if (waiter->deadline && now >= waiter->deadline) {
        s_error (self, waiter->identity, waiter->rid, 408,
                 "the job did not finish within the wait's timeout (it goes on)");
        return true;
    }
    return false;
}

static void
s_wait (self_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    int64_t timeout = 0, every = 1000;
    if (dbt_mp_field_i64 (msg->map, "timeout", false, &timeout, err)
    ||  dbt_mp_field_i64 (msg->map, "interval", false, &every, err)) {
        s_error (self, msg->identity, rid, 400, err);
        return;
    }
    if (timeout < 0 || every < WAIT_TICK_MS) {
        s_error (self, msg->identity, rid, 400,
                 "timeout must be 0 (none) or more ms and interval at least 100 ms");
        return;
    }
    if (zlist_size (self->waiters) >= WAITERS_MAX) {
        s_error (self, msg->identity, rid, 503, "too many waits open on this node: poll STATUS");
        return;
    }
    char *id = s_id (self, msg, rid, "job_id", "job");
    if (!id)
        return;
    s_waiter_t *waiter = (s_waiter_t *) dbt_malloc (sizeof (s_waiter_t));
    waiter->identity = zframe_dup (msg->identity);
    waiter->rid = rid;
    waiter->job_id = id;
    waiter->started = dbt_clock_ms ();
    waiter->deadline = timeout ? waiter->started + timeout : 0;
    waiter->every = every;
    waiter->state = -1;
    if (s_wait_check (self, waiter))
        s_waiter_destroy (&waiter);
    else
        zlist_append (self->waiters, waiter);
}

static void
s_waits (self_t *self)
{
    s_waiter_t *waiter = (s_waiter_t *) zlist_first (self->waiters);
    while (waiter) {
        s_waiter_t *next = (s_waiter_t *) zlist_next (self->waiters);
        if (s_wait_check (self, waiter)) {
            zlist_remove (self->waiters, waiter);
            s_waiter_destroy (&waiter);
        }
        waiter = next;
    }
}

//  --------------------------------------------------------------------------
//  Dispatch

static void
s_request (self_t *self, dbt_msg_t *msg)
{
    char err [DBT_ERRMSG_LEN];
    uint64_t rid = 0;
    if (dbt_mp_field_u64 (msg->map, "rid", true, &rid, err)) {
        dbt_log (DBT_LOG_DEBUG, "client: request without rid dropped: %s", err);
        return;
    }
    const char *token = self->args->config->auth_token;
    if (token && *token) {
        char *given = NULL;
        dbt_mp_field_str (msg->map, "token", false, &given, err);
        bool ok = given && strlen (given) == strlen (token);
        unsigned char diff = 0;
        for (size_t i = 0; ok && token [i]; i++)
            diff |= (unsigned char) (given [i] ^ token [i]);
        free (given);
        if (!ok || diff) {
            s_error (self, msg->identity, rid, 401, "this node needs a token (field 'token')");
            return;
        }
    }
    char *id = NULL, *path = NULL;
    switch (msg->command) {
        case DBT_C_SUBMIT:
            s_submit (self, msg, rid);
            break;
        case DBT_C_CANCEL:
            s_cancel (self, msg, rid);
            break;
        case DBT_C_STATUS:
        case DBT_C_GROUP: {
            bool group = msg->command == DBT_C_GROUP;
            id = s_id (self, msg, rid, group ? "group_id" : "job_id", group ? "group" : "job");
            if (id) {
                path = dbt_printf ("/%s/%s", group ? "groups" : "jobs", id);
                s_route (self, msg->identity, rid, "GET", path, NULL, NULL);
            }
            break;
        }
        case DBT_C_PENDING:
            if (dbt_mp_field_str (msg->map, "queue", true, &id, err))
                s_error (self, msg->identity, rid, 400, err);
            else
            if (!dbt_id_valid (id))
                s_error (self, msg->identity, rid, 400, "not a valid queue name");
            else {
                path = dbt_printf ("/jobs/queue/%s", id);
                s_route (self, msg->identity, rid, "GET", path, NULL, NULL);
            }
            break;
        case DBT_C_TASKS:
            s_route (self, msg->identity, rid, "GET", "/tasks", NULL, NULL);
            break;
        case DBT_C_RESULTS:
            s_results (self, msg, rid);
            break;
        case DBT_C_WAIT:
            s_wait (self, msg, rid);
            break;
        case DBT_C_PING: {
            json_t *data = json_object ();
            json_object_set_new (data, "node", json_string (self->args->config->worker_name));
            json_object_set_new (data, "version", json_string (DBT_VERSION_STRING));
            s_reply (self, msg->identity, rid, 200, NULL, data);
            json_decref (data);
            break;
        }
        default: {
            char *message = dbt_printf ("command 0x%02x is not one of the client endpoint's",
                                        msg->command);
            s_error (self, msg->identity, rid, 400, message);
            free (message);
        }
    }
    free (id);
    free (path);
}

static void
s_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "ENDPOINT"))
        zstr_send (self->pipe, self->endpoint ? self->endpoint : "");
    free (command);
}

void
dbt_front_actor (zsock_t *pipe, void *args)
{
    dbt_thread_name ("dbt-front");
    self_t self = { (dbt_front_args_t *) args, pipe, NULL, NULL, dbt_mpw_new (), zlist_new (), false };
    const char *endpoint = self.args->config->mesh_client;
    self.router = zsock_new (ZMQ_ROUTER);
    if (self.router) {
        zsock_set_linger (self.router, 0);
        zsock_set_router_mandatory (self.router, 1);
        zsock_set_sndtimeo (self.router, 0);
        dbt_msg_limit (self.router);
        if (dbt_curve_apply (self.args->config->curve, self.router, DBT_CURVE_SERVER, "client"))
            dbt_log (DBT_LOG_ERROR, "client: cannot secure the client endpoint %s", endpoint);
        else
        if (zsock_bind (self.router, "%s", endpoint) < 0)
            dbt_log (DBT_LOG_ERROR, "client: cannot bind the client endpoint %s: %s", endpoint,
                     zmq_strerror (errno));
        else {
            self.endpoint = dbt_strdup (zsock_endpoint (self.router));
            dbt_log (DBT_LOG_INFO, "client: endpoint %s", self.endpoint);
        }
    }
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, self.endpoint ? self.router : NULL, NULL);
    while (!self.terminated) {
        void *which = zpoller_wait (poller, WAIT_TICK_MS);
        if (which == pipe)
            s_pipe (&self);
        else
        if (which == self.router) {
            char err [DBT_ERRMSG_LEN] = "";
            dbt_msg_t *msg = dbt_msg_recv (self.router, true, err);
            if (msg)
                s_request (&self, msg);
            else
            if (*err)
                dbt_log (DBT_LOG_DEBUG, "client: malformed message dropped: %s", err);
            dbt_msg_destroy (&msg);
        }
        else
        if (zpoller_terminated (poller))
            break;
        if (zlist_size (self.waiters))
            s_waits (&self);
    }
    s_waiter_t *waiter;
    while ((waiter = (s_waiter_t *) zlist_pop (self.waiters)))
        s_waiter_destroy (&waiter);
    zlist_destroy (&self.waiters);
    zpoller_destroy (&poller);
    zsock_destroy (&self.router);
    dbt_mpw_destroy (&self.writer);
    free (self.endpoint);
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: the JSON to msgpack conversion keeps every type. (The
//  endpoint itself is driven by tests/integration/clients.sh.)

void
dbt_front_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    json_t *doc = json_loads ("{\"s\":\"x\",\"i\":-3,\"f\":1.5,\"t\":true,\"n\":null,"
                              "\"a\":[1,\"b\",false]}", 0, NULL);
    assert (doc);
    dbt_mpw_t *w = dbt_mpw_new ();
    s_json_mp (w, doc);
    json_decref (doc);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *reader = dbt_mpr_new (data, len, err);
    assert (reader);
    const msgpack_object *root = dbt_mpr_root (reader);
    char *s = NULL;
    int64_t i = 0;
    bool t = false;
    assert (dbt_mp_field_str (root, "s", true, &s, err) == 0 && streq (s, "x"));
    assert (dbt_mp_field_i64 (root, "i", true, &i, err) == 0 && i == -3);
    assert (dbt_mp_field_bool (root, "t", true, &t, err) == 0 && t);
    const msgpack_object *f = dbt_mp_get (root, "f");
    assert (f && f->type == MSGPACK_OBJECT_FLOAT64 && f->via.f64 == 1.5);
    assert (dbt_mp_get (root, "n")->type == MSGPACK_OBJECT_NIL);
    const msgpack_object *a = dbt_mp_get (root, "a");
    assert (a && a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 3);
    assert (a->via.array.ptr [2].type == MSGPACK_OBJECT_BOOLEAN);
    free (s);
    dbt_mpr_destroy (&reader);
    dbt_mpw_destroy (&w);
}
#endif  //  DBT_SELFTEST
