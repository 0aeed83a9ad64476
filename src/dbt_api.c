/*  =========================================================================
    dbt_api - the HTTP API's routes, JSON in and JSON out

    See dbt_api.h. Routes are a const table of method, pattern and handler;
    ":name" segments capture one path segment. Job and group request bodies
    are decoded by dbt_jobreq (Go encoding/json rules, as upstream).
    =========================================================================
*/
#include "dbt_classes.h"

#define MAX_SEGMENTS 8

struct _dbt_api_t {
    dbt_api_args_t args;        //  borrowed resources
    dbt_caller_t *caller;       //  requests to dispatchers
};

typedef struct {
    dbt_api_t *api;             //  the API
    const char *segs [MAX_SEGMENTS];  //  captured segments by position
    size_t nsegs;               //  number of path segments
    dbt_query_fn *query;        //  query-string lookup
    void *query_arg;            //  its argument
    const char *body;           //  request body
    size_t len;                 //  its length
} s_req_t;

typedef dbt_response_t *(s_handler_fn) (s_req_t *req);

//  --------------------------------------------------------------------------
//  Responses

static dbt_response_t *
s_response (int status, json_t *doc)
{
    dbt_response_t *self = (dbt_response_t *) dbt_malloc (sizeof (dbt_response_t));
    self->status = status;
    self->content_type = "application/json; charset=utf-8";
    self->body = json_dumps (doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!self->body) {
        self->status = 500;
        self->body = dbt_strdup ("{\"status\":\"error\",\"message\":\"Internal Server Error\",\"data\":null}");
    }
    self->len = strlen (self->body);
    json_decref (doc);
    return self;
}

dbt_response_t *
dbt_api_error (int status, const char *message)
{
    json_t *doc = json_object ();
    json_object_set_new (doc, "status", json_string ("error"));
    json_object_set_new (doc, "message", json_string (message));
    if (!json_object_get (doc, "message"))         //  not UTF-8: keep the envelope valid
        json_object_set_new (doc, "message", json_string ("error"));
    json_object_set_new (doc, "data", json_null ());
    return s_response (status, doc);
}

//  Success envelope around data (reference stolen).
static dbt_response_t *
s_success (json_t *data)
{
    json_t *doc = json_object ();
    json_object_set_new (doc, "status", json_string ("success"));
    json_object_set_new (doc, "data", data ? data : json_null ());
    return s_response (200, doc);
}

void
dbt_response_destroy (dbt_response_t **self_p)
{
    assert (self_p);
    dbt_response_t *self = *self_p;
    if (!self)
        return;
    free (self->body);
    free (self->allow);
    if (self->reader_free && self->reader_cls)
        self->reader_free (self->reader_cls);
    free (self);
    *self_p = NULL;
}

//  RFC 3339 text of a wall time, Go's zero time for 0.
static json_t *
s_time (int64_t ms)
{
    char text [40];
    dbt_time_rfc3339 (ms, text, sizeof (text));
    return json_string (text);
}

//  --------------------------------------------------------------------------
//  Dispatcher requests (dbt_caller)

typedef dbt_caller_build_fn s_build_fn;

//  The answer to a request that failed (rc, err), or to a reply that is
//  not a 200 (destroyed); NULL when *reply_p is a 200.
static dbt_response_t *
s_outcome (int command, int rc, const char *err, dbt_reply_t **reply_p)
{
    if (rc) {
        dbt_log (DBT_LOG_WARN, "http: %s", err);
        if (rc == DBT_ETOOBIG)
            return dbt_api_error (413, err);
        if (rc == DBT_ETIMEDOUT && (command == DBT_C_SUBMIT || command == DBT_C_CANCEL)) {
            //  Sent, but no answer: it may have been kept. Never 503 here,
            //  which says nothing was kept.
            char *message = dbt_printf ("%s: the request may or may not have been carried out; "
                "poll its job or group, or send the same request again (a job already kept "
                "answers 409 with its record)", err);
            dbt_response_t *response = dbt_api_error (504, message);
            free (message);
            return response;
        }
        return dbt_api_error (503, err);
    }
    if ((*reply_p)->code != 200) {
        dbt_response_t *response = NULL;
        const char *message = (*reply_p)->message ? (*reply_p)->message : "request failed";
        const msgpack_object *data = (*reply_p)->data;
        char jerr [DBT_ERRMSG_LEN];
        dbt_job_t *job = data && data->type == MSGPACK_OBJECT_MAP ? dbt_job_unpack (data, jerr) : NULL;
        if (job) {
            //  409 for a job already kept: its status, as GET /jobs/{id}.
            json_t *doc = json_object ();
            json_object_set_new (doc, "status", json_string ("error"));
            json_object_set_new (doc, "message", json_string (message));
            json_object_set_new (doc, "data", dbt_api_job_status (job));
            response = s_response ((*reply_p)->code, doc);
            dbt_job_destroy (&job);
        }
        else
            response = dbt_api_error ((*reply_p)->code, message);
        dbt_reply_destroy (reply_p);
        return response;
    }
    return NULL;
}

static dbt_response_t *
s_call_within (dbt_api_t *self, const char *endpoint, int command, s_build_fn *build, void *arg,
               int64_t timeout_ms, dbt_reply_t **reply_p, bool *again)
{
    char err [DBT_ERRMSG_LEN];
    int rc = dbt_caller_call (self->caller, endpoint, command, build, arg, timeout_ms, reply_p,
                              again, err);
    return s_outcome (command, rc, err, reply_p);
}

static dbt_response_t *
s_call (dbt_api_t *self, const char *endpoint, int command, s_build_fn *build, void *arg,
        dbt_reply_t **reply_p)
{
    return s_call_within (self, endpoint, command, build, arg, self->args.config->request_timeout_ms,
                          reply_p, NULL);
}

//  --------------------------------------------------------------------------
//  Replies

//  The upstream JobResp of one submitted job from the dispatcher's reply.
static json_t *
s_job_resp (const msgpack_object *item)
{
    char err [DBT_ERRMSG_LEN];
    char *id = NULL, *task = NULL, *queue = NULL;
    int64_t eta = 0;
    uint64_t retries = 0;
    dbt_mp_field_str (item, "job_id", false, &id, err);
    dbt_mp_field_str (item, "task", false, &task, err);
    dbt_mp_field_str (item, "queue", false, &queue, err);
    dbt_mp_field_i64 (item, "eta", false, &eta, err);
    dbt_mp_field_u64 (item, "retries", false, &retries, err);
    json_t *resp = json_object ();
    json_object_set_new (resp, "job_id", json_string (id ? id : ""));
    json_object_set_new (resp, "task", json_string (task ? task : ""));
    json_object_set_new (resp, "queue", json_string (queue ? queue : ""));
    json_object_set_new (resp, "eta", s_time (eta));
    json_object_set_new (resp, "retries", json_integer ((json_int_t) retries));
    free (id);
    free (task);
    free (queue);
    return resp;
}

//  The same from a job record.
static json_t *
s_job_resp_of (const dbt_job_t *job)
{
    json_t *resp = json_object ();
    json_object_set_new (resp, "job_id", json_string (job->id));
    json_object_set_new (resp, "task", json_string (job->task ? job->task : ""));
    json_object_set_new (resp, "queue", json_string (job->queue ? job->queue : ""));
    json_object_set_new (resp, "eta", s_time (job->eta_ms));
    json_object_set_new (resp, "retries", json_integer ((json_int_t) job->max_retries));
    return resp;
}

//  --------------------------------------------------------------------------
//  Routes: reads

static dbt_response_t *
s_root (s_req_t *req)
{
    return s_success (json_string ("dungbeetle " DBT_VERSION_STRING));
}

static dbt_response_t *
s_get_tasks (s_req_t *req)
{
    dbt_tasks_t *tasks = req->api->args.tasks;
    const char *sql = req->query (req->query_arg, "sql");
    //  As upstream's code does: names with ?sql=..., the full map without.
    if (sql && *sql) {
        json_t *names = json_array ();
        for (size_t i = 0; i < dbt_tasks_size (tasks); i++)
            json_array_append_new (names, json_string (dbt_tasks_at (tasks, i)->name));
        return s_success (names);
    }
    json_t *map = json_object ();
    for (size_t i = 0; i < dbt_tasks_size (tasks); i++) {
        dbt_task_t *task = dbt_tasks_at (tasks, i);
        json_t *item = json_object ();
        json_object_set_new (item, "name", json_string (task->name));
        json_object_set_new (item, "queue", json_string (task->queue ? task->queue : ""));
        json_object_set_new (item, "concurrency", json_integer (
            dbt_config_queue_concurrency (req->api->args.config, task->queue, task->conc)));
        json_object_set_new (item, "raw", json_string (task->sql));
        json_object_set (map, task->name, item);
        json_decref (item);
    }
    return s_success (map);
}

//  Where an answer came from: the dispatcher's node, and how stale it may
//  be (0 when this node's own dispatcher answered).
static void
s_freshness (json_t *doc, const dbt_origin_t *origin)
{
    json_object_set_new (doc, "dispatcher", json_string (origin->node));
    json_object_set_new (doc, "replica_lag_ms", json_integer (origin->lag_ms));
}

//  A string that may not be UTF-8 (cells, errors): kept when it is, else
//  with every byte outside ASCII replaced by '?'.
json_t *
dbt_api_text (const char *data, size_t len)
{
    json_t *value = json_stringn (data, len);
    if (value)
        return value;
    char *copy = dbt_strndup (data, len);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) copy [i] >= 0x80 || copy [i] == 0)
            copy [i] = '?';
    value = json_stringn (copy, len);
    free (copy);
    return value ? value : json_string ("");
}

//  Upstream JobStatusResp, plus fields of our own after them.
json_t *
dbt_api_job_status (const dbt_job_t *job)
{
    json_t *status = json_object ();
    json_object_set_new (status, "job_id", json_string (job->id));
    json_object_set_new (status, "state", json_string (dbt_state_name (job->state)));
    json_object_set_new (status, "count", json_integer (
        job->state == DBT_STATE_SUCCESS ? (json_int_t) job->rows : 0));
    const char *error = job->error ? job->error : "";
    json_object_set_new (status, "error", dbt_api_text (error, strlen (error)));
    json_object_set_new (status, "rows", json_integer ((json_int_t) job->rows));
    json_object_set_new (status, "task", json_string (job->task));
    json_object_set_new (status, "queue", json_string (job->queue));
    json_object_set_new (status, "attempts", json_integer (job->attempts));
    json_object_set_new (status, "worker", json_string (job->worker ? job->worker : ""));
    json_object_set_new (status, "results_table", json_string (job->table ? job->table : ""));
    json_object_set_new (status, "eta", s_time (job->eta_ms));
    json_object_set_new (status, "created_at", s_time (job->created_ms));
    json_object_set_new (status, "started_at", s_time (job->started_ms));
    json_object_set_new (status, "finished_at", s_time (job->finished_ms));
    return status;
}

static dbt_response_t *
s_get_job (s_req_t *req)
{
    const char *id = req->segs [1];
    dbt_job_t *job = NULL;
    char err [DBT_ERRMSG_LEN];
    dbt_origin_t origin;
    int rc = dbt_id_valid (id) ? dbt_view_job (req->api->args.view, id, &job, &origin, err) : DBT_ENOTFOUND;
    if (rc == DBT_ENOTFOUND)
        return dbt_api_error (404, "job not found");
    if (rc) {
        dbt_log (DBT_LOG_ERROR, "http: %s", err);
        return dbt_api_error (500, "could not read job status");
    }
    //  Written straight to bytes when it can be, else the same bytes by jansson.
    dbt_buf_t text = { 0 };
    if (dbt_jobdoc_render (job, &origin, &text) == 0) {
        dbt_job_destroy (&job);
        dbt_response_t *response = (dbt_response_t *) dbt_malloc (sizeof (dbt_response_t));
        response->status = 200;
        response->content_type = "application/json; charset=utf-8";
        response->len = text.len;
        response->body = dbt_buf_take (&text);
        return response;
    }
    json_t *status = dbt_api_job_status (job);
    s_freshness (status, &origin);
    dbt_job_destroy (&job);
    return s_success (status);
}

//  Upstream's pending-job shape (tasqueue JobMessage).
static int
s_pending_one (const dbt_job_t *job, void *arg)
{
    json_t *list = (json_t *) arg;
    //  Payload: msgpack {"Args": [...], "DB": "", "TTL": ns}, base64.
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_str (w, "Args");
    dbt_mpw_array (w);
    for (size_t i = 0; i < job->nargs; i++)
        dbt_mpw_str (w, job->args [i]);
    dbt_mpw_end (w);
    dbt_mpw_kstr (w, "DB", job->db ? job->db : "");
    dbt_mpw_ki64 (w, "TTL", job->ttl_ms * 1000000);
    dbt_mpw_end (w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    zarmour_t *armour = zarmour_new ();
    zarmour_set_line_breaks (armour, false);
    char *payload = zarmour_encode (armour, (const byte *) data, len);
    zarmour_destroy (&armour);
    dbt_mpw_destroy (&w);

    json_t *opts = json_object ();
    json_object_set_new (opts, "ID", json_string (job->id));
    json_object_set_new (opts, "ETA", s_time (job->eta_ms));
    json_object_set_new (opts, "Queue", json_string (job->queue));
    json_object_set_new (opts, "MaxRetries", json_integer (job->max_retries));
    json_object_set_new (opts, "Schedule", json_string (""));
    json_object_set_new (opts, "Timeout", json_integer ((json_int_t) job->ttl_ms * 1000000));
    json_t *inner = json_object ();
    json_object_set_new (inner, "OnSuccess", json_null ());
    json_object_set_new (inner, "Task", json_string (job->task));
    json_object_set_new (inner, "Payload", json_string (payload ? payload : ""));
    json_object_set_new (inner, "OnError", json_null ());
    json_object_set_new (inner, "Opts", opts);
    free (payload);
    json_t *item = json_object ();
    json_object_set_new (item, "ID", json_string (job->id));
    json_object_set_new (item, "OnSuccessIDs", json_null ());
    json_object_set_new (item, "Status", json_string (job->state == DBT_STATE_RETRY ? "retrying" : "queued"));
    json_object_set_new (item, "Queue", json_string (job->queue));
    json_object_set_new (item, "Schedule", json_string (""));
    json_object_set_new (item, "MaxRetry", json_integer (job->max_retries));
    json_object_set_new (item, "Retried", json_integer (job->attempts - job->interruptions));
    json_object_set_new (item, "PrevErr", json_string (job->error ? job->error : ""));
    json_object_set_new (item, "ProcessedAt", s_time (0));
    json_object_set_new (item, "PrevJobResult", json_null ());
    json_object_set_new (item, "Job", inner);
    json_array_append_new (list, item);
    return 0;
}

static dbt_response_t *
s_get_pending (s_req_t *req)
{
    const char *queue = req->segs [2];
    json_t *list = json_array ();
    char err [DBT_ERRMSG_LEN];
    if (dbt_id_valid (queue)
    &&  dbt_view_each_waiting (req->api->args.view, queue, s_pending_one, list, err)) {
        json_decref (list);
        dbt_log (DBT_LOG_ERROR, "http: %s", err);
        return dbt_api_error (500, "error fetching pending tasks");
    }
    return s_success (list);
}

static dbt_response_t *
s_get_group (s_req_t *req)
{
    const char *id = req->segs [1];
    dbt_group_t *group = NULL;
    char err [DBT_ERRMSG_LEN];
    dbt_origin_t origin;
    int rc = dbt_id_valid (id) ? dbt_view_group (req->api->args.view, id, &group, &origin, err) : DBT_ENOTFOUND;
    if (rc == DBT_ENOTFOUND)
        return dbt_api_error (404, "group not found");
    if (rc) {
        dbt_log (DBT_LOG_ERROR, "http: %s", err);
        return dbt_api_error (500, "could not read group status");
    }
    json_t *jobs = json_array ();
    bool done = true, failed = false;
    for (size_t i = 0; i < group->njobs; i++) {
        dbt_job_t *job = NULL;
        if (dbt_view_job_at (req->api->args.view, origin.node, group->job_ids [i], &job, err) == 0) {
            done = done && dbt_state_final (job->state);
            failed = failed || job->state == DBT_STATE_FAILURE;
            json_array_append_new (jobs, dbt_api_job_status (job));
            dbt_job_destroy (&job);
        }
    }
    json_t *data = json_object ();
    json_object_set_new (data, "group_id", json_string (group->id));
    json_object_set_new (data, "state", json_string (!done ? "STARTED" : failed ? "FAILURE" : "SUCCESS"));
    json_object_set_new (data, "concurrency", json_integer (group->concurrency));
    json_object_set_new (data, "jobs", jobs);
    s_freshness (data, &origin);
    dbt_group_destroy (&group);
    return s_success (data);
}

//  --------------------------------------------------------------------------
//  Routes: writes

typedef struct {
    dbt_mpw_t *jobs;            //  encoded "jobs" array
    const char *group_id;       //  group id or NULL
    int64_t concurrency;        //  group concurrency
    bool is_group;              //  send a group
    bool records;               //  ask for the records written (a remote dispatcher)
} s_submit_t;

static void
s_build_submit (dbt_mpw_t *w, void *arg)
{
    s_submit_t *submit = (s_submit_t *) arg;
    size_t len;
    const char *data = dbt_mpw_data (submit->jobs, &len);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_raw (w, data, len);
    if (submit->records)
        dbt_mpw_kbool (w, "records", true);
    if (submit->is_group) {
        dbt_mpw_str (w, "group");
        dbt_mpw_map (w);
        if (submit->group_id && *submit->group_id)
            dbt_mpw_kstr (w, "id", submit->group_id);
        dbt_mpw_ku64 (w, "concurrency", (uint64_t) submit->concurrency);
        dbt_mpw_end (w);
    }
}

//  The dispatcher of a submission's (first) job's queue: its endpoint
//  (caller frees), or NULL with *response set when none is known yet.
static char *
s_route (dbt_api_t *self, const char *task, const char *queue, dbt_response_t **response)
{
    char *resolved = task ? dbt_submit_queue (self->args.config, self->args.tasks, task, queue) : NULL;
    const char *name = resolved ? resolved : queue ? queue : self->args.config->queue;
    char *endpoint = dbt_routes_dispatcher (self->args.routes, name);
    if (!endpoint) {
        char *message = dbt_printf ("no dispatcher is known for queue '%s' (yet): none of this "
                                    "node's peers answered as its owner", name);
        *response = dbt_api_error (503, message);
        free (message);
    }
    free (resolved);
    return endpoint;
}

//  True when endpoint is not this node's own dispatcher: its records
//  reach this node's view only through the replica.
static bool
s_remote (dbt_api_t *self, const char *endpoint)
{
    return !self->args.local || !streq (endpoint, self->args.local);
}

//  Read-your-writes: record what a remote dispatcher's acknowledgement
//  says it wrote, until this node's replica of it has caught up.
static void
s_remember (dbt_api_t *self, dbt_reply_t *reply)
{
    char err [DBT_ERRMSG_LEN];
    const msgpack_object *root = dbt_mpr_root (reply->doc);
    char *node = NULL;
    uint64_t seq = 0;
    if (dbt_mp_field_str (root, "node", true, &node, err) || dbt_mp_field_u64 (root, "seq", true, &seq, err)) {
        free (node);
        return;
    }
    const msgpack_object *records = dbt_mp_get (root, "records");
    for (uint32_t i = 0; records && records->type == MSGPACK_OBJECT_ARRAY && i < records->via.array.size; i++) {
        dbt_job_t *job = dbt_job_unpack (&records->via.array.ptr [i], err);
        if (job)
            dbt_view_wrote (self->args.view, node, seq, job->id, job);
        dbt_job_destroy (&job);
    }
    const msgpack_object *gone = dbt_mp_get (root, "gone");
    for (uint32_t i = 0; gone && gone->type == MSGPACK_OBJECT_ARRAY && i < gone->via.array.size; i++) {
        const char *str;
        size_t len;
        if (dbt_mp_str (&gone->via.array.ptr [i], &str, &len) == 0 && len <= DBT_ID_MAX) {
            char *id = dbt_strndup (str, len);
            dbt_view_wrote (self->args.view, node, seq, id, NULL);
            free (id);
        }
    }
    free (node);
}

//  A 504 for a submission also says which job or group to look for.
static dbt_response_t *
s_unknown_outcome (dbt_response_t *response, const char *key, const char *id)
{
    if (!response || response->status != 504 || !id)
        return response;
    json_t *doc = json_loads (response->body, 0, NULL);
    dbt_response_destroy (&response);
    json_t *data = json_object ();
    json_object_set_new (data, key, json_string (id));
    json_object_set (doc, "data", data);
    json_decref (data);
    return s_response (504, doc);
}

//  The answer to a job submission that its first copy carried out: the
//  job as its dispatcher has it.
typedef struct {
    const char *key;            //  "job_id" or "group_id"
    const char *id;
} s_status_t;

static void
s_build_status (dbt_mpw_t *w, void *arg)
{
    s_status_t *status = (s_status_t *) arg;
    dbt_mpw_kstr (w, status->key, status->id);
}

//  Whether the job record is the one the submission (a writer holding an
//  array of one job map) asks for: same task, queue and args.
static bool
s_same_job (const dbt_job_t *job, dbt_mpw_t *jobs)
{
    size_t len = 0;
    const char *data = dbt_mpw_data (jobs, &len);
    char err [DBT_ERRMSG_LEN];
    dbt_mpr_t *reader = dbt_mpr_new (data, len, err);
    if (!reader)
        return false;
    const msgpack_object *root = dbt_mpr_root (reader);
    const msgpack_object *map = root->type == MSGPACK_OBJECT_ARRAY && root->via.array.size == 1
                              ? &root->via.array.ptr [0] : NULL;
    char *task = NULL, *queue = NULL;
    bool same = map && dbt_mp_field_str (map, "task", true, &task, err) == 0
             && dbt_mp_field_str (map, "queue", false, &queue, err) == 0
             && streq (task, job->task) && (!queue || streq (queue, job->queue));
    const msgpack_object *args = map ? dbt_mp_get (map, "args") : NULL;
    size_t nargs = args && args->type == MSGPACK_OBJECT_ARRAY ? args->via.array.size : 0;
    same = same && nargs == job->nargs;
    for (size_t i = 0; same && i < nargs; i++) {
        const char *str = NULL;
        size_t slen = 0;
        if (args->via.array.ptr [i].type == MSGPACK_OBJECT_NIL)
            same = job->args [i] == NULL;
        else
            same = dbt_mp_str (&args->via.array.ptr [i], &str, &slen) == 0 && job->args [i]
                && strlen (job->args [i]) == slen && memcmp (job->args [i], str, slen) == 0;
    }
    free (task);
    free (queue);
    dbt_mpr_destroy (&reader);
    return same;
}

//  The record of a job a retried submission found already there (409):
//  the first copy's, when this node named the job (jobs NULL) or the
//  record is what the submission asks for; NULL otherwise (a real
//  conflict: keep the 409).
static dbt_response_t *
s_kept_job (dbt_api_t *self, const char *endpoint, const char *id, dbt_mpw_t *jobs)
{
    s_status_t status = { "job_id", id };
    dbt_reply_t *reply = NULL;
    dbt_response_t *response = endpoint
        ? s_call (self, endpoint, DBT_C_STATUS, s_build_status, &status, &reply)
        : dbt_api_error (503, "the job was kept but its dispatcher is not known here");
    if (!response) {
        char err [DBT_ERRMSG_LEN];
        dbt_job_t *job = dbt_job_unpack (reply->data, err);
        response = !job ? dbt_api_error (500, "malformed reply from dispatcher")
                 : !jobs || s_same_job (job, jobs) ? s_success (s_job_resp_of (job)) : NULL;
        dbt_job_destroy (&job);
        dbt_reply_destroy (&reply);
    }
    return response;
}

//  The same for a group: NULL when its dispatcher does not have it (the
//  409 was about something else).
static dbt_response_t *
s_kept_group (dbt_api_t *self, const char *endpoint, const char *id)
{
    s_status_t status = { "group_id", id };
    dbt_reply_t *reply = NULL;
    dbt_response_t *response = endpoint
        ? s_call (self, endpoint, DBT_C_GROUP, s_build_status, &status, &reply) : NULL;
    if (response || !endpoint) {
        dbt_response_destroy (&response);
        return NULL;
    }
    char err [DBT_ERRMSG_LEN];
    const msgpack_object *list = dbt_mp_get (reply->data, "jobs");
    json_t *resps = json_array ();
    for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size; i++) {
        dbt_job_t *job = dbt_job_unpack (&list->via.array.ptr [i], err);
        if (job)
            json_array_append_new (resps, s_job_resp_of (job));
        dbt_job_destroy (&job);
    }
    json_t *data = json_object ();
    json_object_set_new (data, "group_id", json_string (id));
    json_object_set_new (data, "jobs", resps);
    dbt_reply_destroy (&reply);
    return s_success (data);
}

//  The answer to a one-job submission from its dispatcher's reply
//  (destroyed).
static dbt_response_t *
s_one_job (dbt_reply_t **reply_p)
{
    const msgpack_object *list = dbt_mp_get ((*reply_p)->data, "jobs");
    dbt_response_t *response;
    if (list && list->type == MSGPACK_OBJECT_ARRAY && list->via.array.size == 1)
        response = s_success (s_job_resp (&list->via.array.ptr [0]));
    else
        response = dbt_api_error (500, "malformed reply from dispatcher");
    dbt_reply_destroy (reply_p);
    return response;
}

dbt_response_t *
dbt_api_submit (dbt_api_t *self, dbt_mpw_t *jobs, const dbt_jobreq_route_t *route,
                const dbt_jobreq_group_t *group)
{
    dbt_response_t *response = NULL;
    if (!group && !dbt_tasks_lookup (self->args.tasks, route->task)) {
        char *message = dbt_printf ("unrecognized task: %s", route->task);
        response = dbt_api_error (404, message);
        free (message);
        return response;
    }
    if (group)
        route = &group->first;
    s_submit_t submit = { jobs, group ? group->id : NULL, group ? group->concurrency : 0,
                          group != NULL, false };
    dbt_reply_t *reply = NULL;
    char *endpoint = s_route (self, route->task, route->queue, &response);
    bool again = false;
    if (endpoint) {
        submit.records = s_remote (self, endpoint);
        response = s_call_within (self, endpoint, DBT_C_SUBMIT, s_build_submit, &submit,
                                  self->args.config->request_timeout_ms, &reply, &again);
        response = s_unknown_outcome (response, group ? "group_id" : "job_id",
                                      group ? group->id : route->id);
    }
    if (response && response->status == 409 && again && (!group || group->named_here)) {
        //  Sent twice (a failover): the job is the one its first copy made
        //  when this node named it (nobody else can have that id) or when
        //  the record is what this request asks for; the group is the first
        //  copy's if its dispatcher has the id this node made.
        dbt_response_t *kept = group ? s_kept_group (self, endpoint, group->id)
                             : s_kept_job (self, endpoint, route->id, route->named_here ? NULL : jobs);
        if (kept) {
            dbt_response_destroy (&response);
            response = kept;
        }
    }
    free (endpoint);
    if (response)
        return response;
    if (submit.records)
        s_remember (self, reply);
    if (!group)
        return s_one_job (&reply);
    const msgpack_object *list = dbt_mp_get (reply->data, "jobs");
    char err [DBT_ERRMSG_LEN];
    char *group_id = NULL;
    dbt_mp_field_str (reply->data, "group_id", false, &group_id, err);
    json_t *resps = json_array ();
    for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size; i++)
        json_array_append_new (resps, s_job_resp (&list->via.array.ptr [i]));
    json_t *data = json_object ();
    json_object_set_new (data, "group_id", json_string (group_id ? group_id : ""));
    json_object_set_new (data, "jobs", resps);
    free (group_id);
    dbt_reply_destroy (&reply);
    return s_success (data);
}

static dbt_response_t *
s_post_job (s_req_t *req)
{
    char err [DBT_ERRMSG_LEN];
    dbt_mpw_t *jobs = dbt_mpw_new ();
    dbt_jobreq_route_t route;
    dbt_mpw_array (jobs);
    int rc = dbt_jobreq_job (req->body, req->len, req->segs [1], jobs, &route, err);
    dbt_mpw_end (jobs);
    dbt_response_t *response = rc ? dbt_api_error (400, err)
                             : dbt_api_submit (req->api, jobs, &route, NULL);
    dbt_jobreq_route_free (&route);
    dbt_mpw_destroy (&jobs);
    return response;
}

static dbt_response_t *
s_post_group (s_req_t *req)
{
    char err [DBT_ERRMSG_LEN] = "";
    dbt_mpw_t *jobs = dbt_mpw_new ();
    dbt_jobreq_group_t group;
    dbt_mpw_array (jobs);
    int rc = dbt_jobreq_group (req->body, req->len, jobs, &group, err);
    dbt_mpw_end (jobs);
    dbt_response_t *response = rc ? dbt_api_error (400, err)
                             : dbt_api_submit (req->api, jobs, NULL, &group);
    dbt_jobreq_group_free (&group);
    dbt_mpw_destroy (&jobs);
    return response;
}

//  --------------------------------------------------------------------------
//  A one-job submission to this node's own dispatcher, without waiting

struct _dbt_api_job_t {
    dbt_api_t *api;
    dbt_mpw_t *jobs;            //  the jobs array sent
    char *id;                   //  the job's id (for an unknown outcome)
    dbt_api_done_fn *done;
    void *arg;
};

dbt_api_job_t *
dbt_api_submit_prepare (dbt_api_t *self, const char *method, const char *path,
                        const char *body, size_t len)
{
    //  POST /tasks/{task}/jobs, and nothing that the route table would
    //  see otherwise; anything that fails here is answered by the
    //  blocking path (dbt_api_handle), with its error.
    if (!streq (method, "POST") || strncmp (path, "/tasks/", 7) != 0
    ||  !dbt_caller_local_direct (self->caller))
        return NULL;
    const char *task = path + 7, *slash = strchr (task, '/');
    if (!slash || slash == task || !streq (slash, "/jobs"))
        return NULL;
    char err [DBT_ERRMSG_LEN];
    char *name = dbt_strndup (task, (size_t) (slash - task));
    dbt_mpw_t *jobs = dbt_mpw_new ();
    dbt_jobreq_route_t route;
    dbt_mpw_array (jobs);
    int rc = dbt_jobreq_job (body, len, name, jobs, &route, err);
    dbt_mpw_end (jobs);
    free (name);
    dbt_api_job_t *job = NULL;
    if (rc == 0 && dbt_tasks_lookup (self->args.tasks, route.task)) {
        dbt_response_t *response = NULL;
        char *endpoint = s_route (self, route.task, route.queue, &response);
        if (endpoint && !s_remote (self, endpoint)) {
            job = (dbt_api_job_t *) dbt_malloc (sizeof (dbt_api_job_t));
            job->api = self;
            job->jobs = jobs;
            jobs = NULL;
            job->id = route.id ? dbt_strdup (route.id) : NULL;
        }
        free (endpoint);
        dbt_response_destroy (&response);
    }
    dbt_jobreq_route_free (&route);
    dbt_mpw_destroy (&jobs);
    return job;
}

void
dbt_api_job_destroy (dbt_api_job_t **self_p)
{
    assert (self_p);
    dbt_api_job_t *self = *self_p;
    if (!self)
        return;
    dbt_mpw_destroy (&self->jobs);
    free (self->id);
    free (self);
    *self_p = NULL;
}

static void
s_job_done (void *arg, int rc, dbt_reply_t *reply, const char *err)
{
    dbt_api_job_t *job = (dbt_api_job_t *) arg;
    dbt_response_t *response = s_unknown_outcome (s_outcome (DBT_C_SUBMIT, rc, err, &reply),
                                                  "job_id", job->id);
    if (!response)
        response = s_one_job (&reply);
    dbt_api_done_fn *done = job->done;
    void *done_arg = job->arg;
    dbt_api_job_destroy (&job);
    done (done_arg, response);
}

void
dbt_api_submit_start (dbt_api_job_t **job_p, dbt_api_done_fn *done, void *arg)
{
    assert (job_p && *job_p && done);
    dbt_api_job_t *job = *job_p;
    *job_p = NULL;
    job->done = done;
    job->arg = arg;
    s_submit_t submit = { job->jobs, NULL, 0, false, false };
    char err [DBT_ERRMSG_LEN];
    int rc = dbt_caller_send_local (job->api->caller, DBT_C_SUBMIT, s_build_submit, &submit,
                                    job->api->args.config->request_timeout_ms, s_job_done, job,
                                    err);
    if (rc)
        s_job_done (job, rc, NULL, err);
}

typedef struct {
    const char *key;            //  "job_id" or "group_id"
    const char *id;             //  the id
    bool purge;                 //  purge flag
    bool records;               //  ask for the records written (a remote dispatcher)
} s_cancel_t;

static void
s_build_cancel (dbt_mpw_t *w, void *arg)
{
    s_cancel_t *cancel = (s_cancel_t *) arg;
    dbt_mpw_kstr (w, cancel->key, cancel->id);
    dbt_mpw_kbool (w, "purge", cancel->purge);
    if (cancel->records)
        dbt_mpw_kbool (w, "records", true);
}

//  The dispatcher of a job this node knows of (its queue's); NULL when
//  the job is unknown here or its dispatcher is. Caller frees.
static char *
s_owner (dbt_api_t *self, const char *job_id)
{
    dbt_job_t *job = NULL;
    char err [DBT_ERRMSG_LEN];
    char *endpoint = NULL;
    if (dbt_view_job (self->args.view, job_id, &job, NULL, err) == 0)
        endpoint = dbt_routes_dispatcher (self->args.routes, job->queue);
    dbt_job_destroy (&job);
    return endpoint;
}

static dbt_response_t *
s_delete (s_req_t *req, bool group)
{
    dbt_api_t *self = req->api;
    s_cancel_t cancel = { group ? "group_id" : "job_id", req->segs [1], false, false };
    const char *purge = req->query (req->query_arg, "purge");
    if (purge && dbt_parse_bool (purge, &cancel.purge))
        cancel.purge = false;               //  as upstream: anything else is false
    if (!dbt_id_valid (cancel.id))
        return dbt_api_error (404, group ? "group not found" : "job not found");
    char *endpoint = NULL;
    if (!group)
        endpoint = s_owner (self, cancel.id);
    else {
        dbt_group_t *stored = NULL;
        char err [DBT_ERRMSG_LEN];
        if (dbt_view_group (self->args.view, cancel.id, &stored, NULL, err) == 0 && stored->njobs)
            endpoint = s_owner (self, stored->job_ids [0]);
        dbt_group_destroy (&stored);
    }
    //  Known here: ask its dispatcher. Not known (a replica behind, or a
    //  job of a dispatcher this node does not replicate): ask them all,
    //  the first that has it answers.
    zlist_t *candidates = NULL;
    if (endpoint) {
        candidates = zlist_new ();
        zlist_autofree (candidates);
        zlist_append (candidates, endpoint);
        free (endpoint);
    }
    else
        candidates = dbt_routes_dispatchers (self->args.routes);
    dbt_response_t *response = NULL;
    for (char *candidate = (char *) zlist_first (candidates); candidate;
         candidate = (char *) zlist_next (candidates)) {
        dbt_response_destroy (&response);
        dbt_reply_t *reply = NULL;
        cancel.records = s_remote (self, candidate);
        response = s_call (self, candidate, DBT_C_CANCEL, s_build_cancel, &cancel, &reply);
        if (!response) {
            if (cancel.records)
                s_remember (self, reply);
            response = s_success (json_true ());
            dbt_reply_destroy (&reply);
        }
        if (response->status != 404)
            break;
    }
    zlist_destroy (&candidates);
    if (!response)
        response = dbt_api_error (404, group ? "group not found" : "job not found");
    return response;
}

static dbt_response_t *
s_delete_job (s_req_t *req)
{
    return s_delete (req, false);
}

static dbt_response_t *
s_delete_group (s_req_t *req)
{
    return s_delete (req, true);
}

//  --------------------------------------------------------------------------
//  Routes: results, health, metrics

static ssize_t
s_export_read (void *cls, char *buf, size_t max)
{
    return dbt_export_read ((dbt_export_t *) cls, buf, max);
}

static void
s_export_free (void *cls)
{
    dbt_export_t *export = (dbt_export_t *) cls;
    dbt_export_destroy (&export);
}

//  Parse a non-negative integer query argument (absent = 0).
static int
s_query_count (s_req_t *req, const char *key, int64_t *value, char *err)
{
    const char *text = req->query (req->query_arg, key);
    *value = 0;
    if (text && dbt_parse_int64 (text, 0, INT64_MAX, value)) {
        dbt_err_set (err, "%s must be a whole number, not negative", key);
        return -1;
    }
    return 0;
}

static dbt_response_t *
s_get_results (s_req_t *req)
{
    const char *id = req->segs [1];
    char err [DBT_ERRMSG_LEN];
    const char *format = req->query (req->query_arg, "format");
    bool csv = format && streq (format, "csv");
    if (format && !csv && !streq (format, "json"))
        return dbt_api_error (400, "format must be json or csv");
    int64_t limit = 0, offset = 0;
    if (s_query_count (req, "limit", &limit, err) || s_query_count (req, "offset", &offset, err))
        return dbt_api_error (400, err);
    dbt_job_t *job = NULL;
    dbt_origin_t origin;
    int rc = dbt_id_valid (id) ? dbt_view_job (req->api->args.view, id, &job, &origin, err) : DBT_ENOTFOUND;
    if (rc == DBT_ENOTFOUND)
        return dbt_api_error (404, "job not found");
    if (rc)
        return dbt_api_error (500, "could not read job status");
    dbt_response_t *response = NULL;
    if (job->state != DBT_STATE_SUCCESS) {
        char *message = dbt_printf ("results not available: job is %s", dbt_state_name (job->state));
        response = dbt_api_error (404, message);
        free (message);
    }
    else
    if (job->expired)
        response = dbt_api_error (410, "results expired and were dropped");
    dbt_pool_t *pool = response ? NULL : dbt_pools_results (req->api->args.pools, job->results);
    if (!response && !pool)
        response = dbt_api_error (500, "the job's results backend is not configured on this node");
    dbt_conn_t *conn = NULL;
    if (!response) {
        conn = dbt_pool_get (pool, req->api->args.config->request_timeout_ms, NULL, err);
        if (!conn)
            response = dbt_api_error (503, err);
    }
    if (!response && dbt_conn_read_table (conn, job->table, limit, offset, err)) {
        dbt_log (DBT_LOG_WARN, "http: cannot read results of '%s': %s", id, err);
        response = dbt_api_error (404, "results table not found");
    }
    if (!response) {
        dbt_export_t *export = dbt_export_new (pool, &conn, id, csv, err);
        if (!export)
            response = dbt_api_error (500, err);
        else {
            response = (dbt_response_t *) dbt_malloc (sizeof (dbt_response_t));
            response->status = 200;
            response->content_type = csv ? "text/csv; charset=utf-8" : "application/json; charset=utf-8";
            response->reader = s_export_read;
            response->reader_cls = export;
            response->reader_free = s_export_free;
        }
    }
    if (conn) {
        dbt_conn_query_end (conn);
        dbt_pool_put (pool, &conn);
    }
    dbt_job_destroy (&job);
    return response;
}

static void
s_build_empty (dbt_mpw_t *w, void *arg)
{
}

//  /health: each peer as the routes know it, with its replica's freshness.
typedef struct {
    json_t *list;               //  peers
    dbt_view_t *view;           //  for the replicas
} s_peers_t;

static void
s_replica_of (const char *node, bool own, dbt_store_t *store, int64_t lag_ms, uint64_t seq,
              const dbt_view_delay_t *delay, void *arg)
{
    json_t *peer = (json_t *) arg;
    const char *name = json_string_value (json_object_get (peer, "node"));
    if (!own && name && streq (name, node)) {
        json_object_set_new (peer, "replica_seq", json_integer ((json_int_t) seq));
        json_object_set_new (peer, "replica_lag_ms", json_integer (lag_ms));
    }
}

static void
s_peer_json (const dbt_peer_t *peer, void *arg)
{
    s_peers_t *peers = (s_peers_t *) arg;
    if (peer->self)
        return;
    json_t *item = json_object ();
    json_object_set_new (item, "endpoint", json_string (peer->endpoint));
    json_object_set_new (item, "node", peer->node ? json_string (peer->node) : json_null ());
    json_object_set_new (item, "up", json_boolean (peer->up));
    if (peer->role)
        json_object_set_new (item, "role", json_string (dbt_pair_state_name (peer->role)));
    json_object_set_new (item, "last_seen", s_time (peer->last_seen));
    json_object_set_new (item, "replica_seq", json_integer (0));
    json_object_set_new (item, "replica_lag_ms", json_integer (-1));
    dbt_view_each_source (peers->view, s_replica_of, item);
    json_array_append_new (peers->list, item);
}

//  /health "failover": the own dispatcher's pair, from its PING reply.
static json_t *
s_failover_json (const msgpack_object *ping)
{
    json_t *doc = json_object ();
    const char *strings [] = { "role", "partner", "partner_node", "replication" };
    const char *bools [] = { "partner_up", "alone", "primary", "isolated" };
    const char *counts [] = { "epoch", "confirmed", "failovers" };
    char err [DBT_ERRMSG_LEN];
    for (size_t i = 0; i < sizeof (strings) / sizeof (strings [0]); i++) {
        char *value = NULL;
        dbt_mp_field_str (ping, strings [i], false, &value, err);
        json_object_set_new (doc, strings [i], value ? json_string (value) : json_null ());
        free (value);
    }
    for (size_t i = 0; i < sizeof (bools) / sizeof (bools [0]); i++) {
        bool value = false;
        dbt_mp_field_bool (ping, bools [i], false, &value, err);
        json_object_set_new (doc, bools [i], json_boolean (value));
    }
    for (size_t i = 0; i < sizeof (counts) / sizeof (counts [0]); i++) {
        uint64_t value = 0;
        dbt_mp_field_u64 (ping, counts [i], false, &value, err);
        json_object_set_new (doc, counts [i], json_integer ((json_int_t) value));
    }
    return doc;
}

static dbt_response_t *
s_get_health (s_req_t *req)
{
    dbt_api_t *self = req->api;
    dbt_reply_t *reply = NULL;
    if (self->args.local) {
        dbt_response_t *response = s_call_within (self, self->args.local, DBT_C_PING,
                                                  s_build_empty, NULL, 2000, &reply, NULL);
        if (response) {
            dbt_response_destroy (&response);
            return dbt_api_error (503, "dispatcher is not answering");
        }
    }
    json_t *data = json_object ();
    if (reply && dbt_mp_get (reply->data, "role"))
        json_object_set_new (data, "failover", s_failover_json (reply->data));
    dbt_reply_destroy (&reply);
    json_object_set_new (data, "status", json_string ("ok"));
    json_object_set_new (data, "node", json_string (self->args.config->worker_name));
    json_object_set_new (data, "version", json_string (DBT_VERSION_STRING));
    dbt_store_space_t space;
    char err [DBT_ERRMSG_LEN];
    if (self->args.store && dbt_store_space (self->args.store, &space, err) == 0) {
        json_object_set_new (data, "state_store_usage",
                             json_real ((double) space.used_bytes / (double) space.max_bytes));
        json_t *store = json_object ();
        json_object_set_new (store, "used_bytes", json_integer (space.used_bytes));
        json_object_set_new (store, "map_bytes", json_integer (space.map_bytes));
        json_object_set_new (store, "max_bytes", json_integer (space.max_bytes));
        json_object_set_new (store, "reserve_bytes", json_integer (space.reserve_bytes));
        json_object_set_new (store, "disk_free_bytes", json_integer (space.disk_free_bytes));
        json_object_set_new (store, "full", json_boolean (space.full));
        json_object_set_new (data, "state_store", store);
    }
    s_peers_t peers = { json_array (), self->args.view };
    dbt_routes_each_peer (self->args.routes, s_peer_json, &peers);
    if (json_array_size (peers.list))
        json_object_set_new (data, "peers", peers.list);
    else
        json_decref (peers.list);
    return s_success (data);
}

static dbt_response_t *
s_get_metrics (s_req_t *req)
{
    dbt_reply_t *reply = NULL;
    if (req->api->args.local) {
        dbt_response_t *failed = s_call_within (req->api, req->api->args.local, DBT_C_STATS,
                                                s_build_empty, NULL, 5000, &reply, NULL);
        dbt_response_destroy (&failed);
    }
    dbt_buf_t text = { 0 };
    dbt_metrics_render (reply ? reply->data : NULL, req->api->args.store, req->api->args.view,
                        req->api->args.pools, &text);
    dbt_reply_destroy (&reply);
    dbt_response_t *response = (dbt_response_t *) dbt_malloc (sizeof (dbt_response_t));
    response->status = 200;
    response->content_type = "text/plain; version=0.0.4; charset=utf-8";
    response->len = text.len;
    response->body = dbt_buf_take (&text);
    return response;
}

//  --------------------------------------------------------------------------
//  Routing

typedef struct {
    const char *method;
    const char *pattern;        //  "/jobs/:id"; segments after '/'
    s_handler_fn *handler;
} s_route_t;

static const s_route_t s_routes [] = {
    { "GET",    "/",                   s_root },
    { "GET",    "/tasks",              s_get_tasks },
    { "POST",   "/tasks/:task/jobs",   s_post_job },
    { "GET",    "/jobs/queue/:queue",  s_get_pending },
    { "GET",    "/jobs/:id",           s_get_job },
    { "GET",    "/jobs/:id/results",   s_get_results },
    { "DELETE", "/jobs/:id",           s_delete_job },
    { "POST",   "/groups",             s_post_group },
    { "GET",    "/groups/:id",         s_get_group },
    { "DELETE", "/groups/:id",         s_delete_group },
    { "GET",    "/health",             s_get_health },
    { "GET",    "/metrics",            s_get_metrics },
    { NULL, NULL, NULL }
};

//  Split "/a/b/c" into segments (in buf). Returns the count, or -1 when
//  there are too many or an empty one (a trailing or double slash).
static int
s_split (char *path, const char **segs)
{
    if (path [0] != '/')
        return -1;
    if (path [1] == 0)
        return 0;
    int n = 0;
    char *p = path + 1;
    while (true) {
        if (n == MAX_SEGMENTS)
            return -1;
        char *slash = strchr (p, '/');
        if (slash)
            *slash = 0;
        if (!*p)
            return -1;
        segs [n++] = p;
        if (!slash)
            return n;
        p = slash + 1;
    }
}

static bool
s_match (const char *pattern, const char **segs, int nsegs)
{
    char copy [64];
    snprintf (copy, sizeof (copy), "%s", pattern);
    const char *psegs [MAX_SEGMENTS];
    int n = s_split (copy, psegs);
    if (n != nsegs)
        return false;
    for (int i = 0; i < n; i++)
        if (psegs [i][0] != ':' && !streq (psegs [i], segs [i]))
            return false;
    return true;
}

dbt_response_t *
dbt_api_handle (dbt_api_t *self, const char *method, const char *path,
                dbt_query_fn *query, void *query_arg, const char *body, size_t len)
{
    s_req_t req = { .api = self, .query = query, .query_arg = query_arg, .body = body, .len = len };
    //  Job status polling, the hottest route: "/jobs/{id}" (two segments)
    //  is matched by "GET /jobs/:id" before any other route, so it goes
    //  there without the table walk.
    if ((streq (method, "GET") || streq (method, "HEAD")) && strncmp (path, "/jobs/", 6) == 0
    &&  path [6] && !strchr (path + 6, '/')) {
        req.segs [0] = "jobs";
        req.segs [1] = path + 6;
        req.nsegs = 2;
        return s_get_job (&req);
    }
    char *copy = dbt_strdup (path);
    int nsegs = s_split (copy, req.segs);
    dbt_response_t *response = NULL;
    bool path_known = false;
    char allowed [64] = "";
    for (const s_route_t *route = s_routes; nsegs >= 0 && route->method; route++) {
        if (!s_match (route->pattern, req.segs, nsegs))
            continue;
        path_known = true;
        //  HEAD is GET without the body, which libmicrohttpd leaves out.
        bool get = streq (route->method, "GET");
        if (streq (route->method, method) || (get && streq (method, "HEAD"))) {
            req.nsegs = (size_t) nsegs;
            response = route->handler (&req);
            break;
        }
        size_t used = strlen (allowed);
        snprintf (allowed + used, sizeof (allowed) - used, "%s%s%s", used ? ", " : "",
                  route->method, get ? ", HEAD" : "");
    }
    if (!response && path_known) {
        response = dbt_api_error (405, "method not allowed");
        response->allow = dbt_strdup (allowed);
    }
    if (!response)
        response = dbt_api_error (404, "not found");
    free (copy);
    return response;
}

//  --------------------------------------------------------------------------
//  Construction

dbt_api_t *
dbt_api_new (const dbt_api_args_t *args)
{
    dbt_api_t *self = (dbt_api_t *) dbt_malloc (sizeof (dbt_api_t));
    self->args = *args;
    self->caller = dbt_caller_new (args->config, args->routes, args->local);
    return self;
}

void
dbt_api_destroy (dbt_api_t **self_p)
{
    assert (self_p);
    dbt_api_t *self = *self_p;
    if (!self)
        return;
    dbt_caller_destroy (&self->caller);
    free (self);
    *self_p = NULL;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: routing, envelopes, request checks and reads from LMDB, with
//  no dispatcher (writes are covered by the integration tests).

static const char *
s_test_query (void *arg, const char *key)
{
    return arg && streq (key, "sql") ? (const char *) arg : NULL;
}

//  Handle a request; return the status, and the body in *body (caller frees).
static int
s_test_call (dbt_api_t *api, const char *method, const char *path, const char *query,
             const char *body, char **out, char **allow)
{
    dbt_response_t *response = dbt_api_handle (api, method, path, s_test_query, (void *) query,
                                               body, strlen (body));
    int status = response->status;
    *out = response->body;
    response->body = NULL;
    if (allow) {
        *allow = response->allow;
        response->allow = NULL;
    }
    dbt_response_destroy (&response);
    return status;
}

void
dbt_api_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("api");
    char *ini = dbt_printf ("[app]\nrequest_timeout = 200ms\n[mesh]\nbind = inproc://dbt-api-test\n"
                            "[db.src]\ntype = sqlite\ndsn = %s/s.db\n[results.res]\ntype = sqlite\n"
                            "dsn = %s/r.db\n", dir, dir);
    dbt_config_t *config = dbt_config_from_string (ini, err);
    free (ini);
    assert (config);
    dbt_tasks_t *tasks = dbt_tasks_new ();
    const char *text = "-- name: b_task\n-- queue: q\nSELECT 1;\n-- name: a_task\nSELECT 2;\n";
    assert (dbt_tasks_parse (tasks, text, strlen (text), "t.sql", err) == 0);
    assert (dbt_tasks_bind (tasks, config, err) == 0);
    dbt_store_t *store = dbt_store_open (dir, 16 << 20, 0, err);
    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->id, "j1");
    dbt_job_set (&job->task, "a_task");
    dbt_job_set (&job->queue, "default");
    job->state = DBT_STATE_SUCCESS;
    job->rows = 7;
    job->finished_ms = 1000;
    dbt_wtxn_t *txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_put_job (txn, job, err) == 0 && dbt_wtxn_commit (&txn, err) == 0);
    dbt_job_destroy (&job);
    dbt_routes_t *routes = dbt_routes_new (config);
    dbt_view_t *view = dbt_view_new (store, "test");
    dbt_api_args_t args = { config, tasks, store, NULL, routes, view, NULL };
    dbt_api_t *api = dbt_api_new (&args);
    char *body = NULL, *allow = NULL;

    assert (s_test_call (api, "GET", "/", NULL, "", &body, NULL) == 200);
    assert (streq (body, "{\"status\":\"success\",\"data\":\"dungbeetle " DBT_VERSION_STRING "\"}"));
    free (body);
    assert (s_test_call (api, "GET", "/tasks", "1", "", &body, NULL) == 200);
    assert (streq (body, "{\"status\":\"success\",\"data\":[\"a_task\",\"b_task\"]}"));
    free (body);
    assert (s_test_call (api, "GET", "/tasks", NULL, "", &body, NULL) == 200);
    assert (strstr (body, "\"b_task\":{\"name\":\"b_task\",\"queue\":\"q\",\"concurrency\":10,\"raw\":\"SELECT 1;\"}"));
    free (body);
    assert (s_test_call (api, "GET", "/jobs/j1", NULL, "", &body, NULL) == 200);
    assert (strstr (body, "{\"job_id\":\"j1\",\"state\":\"SUCCESS\",\"count\":7,\"error\":\"\""));
    free (body);

    //  Errors: one envelope each, with the right code.
    struct {
        const char *method, *path, *body;
        int status;
        const char *message;
    } cases [] = {
        { "GET", "/jobs/nope", "", 404, "job not found" },
        { "GET", "/jobs/x%22;", "", 404, "job not found" },
        { "GET", "/jobs/j1/", "", 404, "not found" },
        { "GET", "//", "", 404, "not found" },
        { "GET", "/no/such/route", "", 404, "not found" },
        { "GET", "/groups/none", "", 404, "group not found" },
        { "GET", "/jobs/none/results", "", 404, "job not found" },
        { "POST", "/tasks/a_task/jobs", "", 400, "request body is empty" },
        { "POST", "/tasks/a_task/jobs", "{\"job_id\":", 400, "error parsing request JSON" },
        { "POST", "/tasks/a_task/jobs", "[]", 400, "error parsing request JSON" },
        { "POST", "/tasks/a_task/jobs", "{\"job_id\":\"x\"}garbage", 400, "error parsing request JSON" },
        { "POST", "/tasks/nope/jobs", "{}garbage", 400, "error parsing request JSON" },
        { "POST", "/tasks/a_task/jobs", "{\"retries\":\"3\"}", 400, "must be an integer" },
        { "POST", "/tasks/a_task/jobs", "{\"args\":[1]}", 400, "array of strings" },
        { "POST", "/tasks/a_task/jobs", "{\"eta\":\"soon\"}", 400, "error parsing ETA" },
        { "POST", "/tasks/nope/jobs", "{}", 404, "unrecognized task: nope" },
        { "POST", "/groups", "", 400, "error parsing JSON body" },
        { "POST", "/groups", "{\"jobs\":[{\"job_id\":\"x\"}]}", 400, "missing task" },
        { "POST", "/groups", "{\"jobs\":[]} trailing", 400, "error parsing JSON body" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        int status = s_test_call (api, cases [i].method, cases [i].path, NULL, cases [i].body, &body, NULL);
        json_t *doc = json_loads (body, 0, NULL);
        const char *message = json_string_value (json_object_get (doc, "message"));
        if (status != cases [i].status || !message || !strstr (message, cases [i].message))
            fprintf (stderr, "api case %zu: %d %s\n", i, status, body);
        assert (status == cases [i].status && message && strstr (message, cases [i].message));
        assert (streq (json_string_value (json_object_get (doc, "status")), "error"));
        assert (json_is_null (json_object_get (doc, "data")));
        json_decref (doc);
        free (body);
    }
    assert (s_test_call (api, "PUT", "/jobs/j1", NULL, "", &body, &allow) == 405);
    assert (allow && streq (allow, "GET, HEAD, DELETE"));
    free (allow);
    free (body);
    assert (s_test_call (api, "HEAD", "/tasks/a_task/jobs", NULL, "", &body, &allow) == 405);
    assert (allow && streq (allow, "POST"));
    free (allow);
    free (body);
    assert (s_test_call (api, "POST", "/groups/g1", NULL, "", &body, &allow) == 405);
    assert (allow && streq (allow, "GET, HEAD, DELETE"));
    free (allow);
    free (body);
    //  HEAD answers as GET does (libmicrohttpd drops the body).
    assert (s_test_call (api, "HEAD", "/jobs/j1", NULL, "", &body, NULL) == 200);
    assert (strstr (body, "{\"job_id\":\"j1\",\"state\":\"SUCCESS\""));
    free (body);
    assert (s_test_call (api, "HEAD", "/jobs/nope", NULL, "", &body, NULL) == 404);
    free (body);
    assert (s_test_call (api, "HEAD", "/no/such/route", NULL, "", &body, NULL) == 404);
    free (body);
    //  A write no dispatcher answers is 504 (outcome unknown), not a hang.
    assert (s_test_call (api, "POST", "/tasks/a_task/jobs", NULL, "{}", &body, NULL) == 504);
    free (body);
    //  Trailing whitespace is part of a good body.
    assert (s_test_call (api, "POST", "/tasks/a_task/jobs", NULL, "{\"job_id\":\"x\"} \r\n", &body,
                         NULL) == 504);
    free (body);
    assert (s_test_call (api, "GET", "/jobs/queue/default", NULL, "", &body, NULL) == 200);
    assert (streq (body, "{\"status\":\"success\",\"data\":[]}"));
    free (body);

    dbt_api_destroy (&api);
    dbt_view_destroy (&view);
    dbt_routes_destroy (&routes);
    dbt_store_destroy (&store);
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("api: ok\n");
}
#endif  //  DBT_SELFTEST
