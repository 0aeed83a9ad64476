/*  =========================================================================
    dbt_board - the web dashboard: its static files and the JSON it reads

    See dbt_board.h. Counts come from each source's "counts" database and
    pages from its "list" index (dbt_store.h), so neither reads more job
    records than a page holds. Worker figures are asked of every known
    dispatcher at once (STATS), each answer awaited until one shared
    deadline, so a peer that is down costs the overview S_STATS_MS at most.
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_board.h"

#define S_STATS_MS      1500    //  wait for dispatchers' STATS at most this long
#define S_PAGE_DEFAULT  50      //  jobs in a list page unless asked
#define S_PAGE_MAX      500     //  jobs in a list page at most
#define S_PREVIEW_ROWS  20      //  result rows in a job's preview unless asked
#define S_PREVIEW_MAX   100     //  ... at most
#define S_CELL_MAX      200     //  bytes of a preview cell (longer ones are cut)
#define S_HOUR_MS       (INT64_C (3600) * 1000)

struct _dbt_board_t {
    dbt_board_args_t args;      //  borrowed resources
};

//  --------------------------------------------------------------------------
//  Responses

static dbt_response_t *
s_response (int status, const char *content_type, char *body, size_t len)
{
    dbt_response_t *self = (dbt_response_t *) dbt_malloc (sizeof (dbt_response_t));
    self->status = status;
    self->content_type = content_type;
    self->body = body;
    self->len = len;
    return self;
}

//  Success envelope around data (reference stolen), as dbt_api's.
static dbt_response_t *
s_success (json_t *data)
{
    json_t *doc = json_object ();
    json_object_set_new (doc, "status", json_string ("success"));
    json_object_set_new (doc, "data", data ? data : json_null ());
    char *body = json_dumps (doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref (doc);
    if (!body)
        return dbt_api_error (500, "Internal Server Error");
    return s_response (200, "application/json; charset=utf-8", body, strlen (body));
}

//  RFC 3339 text of a wall time, Go's zero time for 0 (as the job API).
static json_t *
s_time (int64_t ms)
{
    char text [40];
    dbt_time_rfc3339 (ms, text, sizeof (text));
    return json_string (text);
}


//  Parse a whole-number query argument in [min, max] (absent: fallback).
static int
s_query_int (dbt_query_fn *query, void *query_arg, const char *key, int64_t min, int64_t max,
             int64_t fallback, int64_t *value, char *err)
{
    const char *text = query (query_arg, key);
    *value = fallback;
    if (text && dbt_parse_int64 (text, min, max, value)) {
        dbt_err_set (err, "%s must be a whole number from %" PRId64 " to %" PRId64, key, min, max);
        return -1;
    }
    return 0;
}

//  The state named text (upstream's names, any case), or -1.
static int
s_state_named (const char *text)
{
    for (int state = 0; state < DBT_STORE_NSTATES; state++)
        if (strcasecmp (text, dbt_state_name ((dbt_state_t) state)) == 0)
            return state;
    return -1;
}

//  --------------------------------------------------------------------------
//  GET /queues

//  One dispatcher asked for STATS.
typedef struct {
    char *endpoint;             //  as this node connects to it
    char *node;                 //  its node name
    dbt_client_t *client;       //  NULL once answered or failed
    dbt_reply_t *reply;         //  its answer, NULL when none
} s_asked_t;

typedef struct {
    s_asked_t *items;           //  dispatchers asked
    size_t count;               //  how many
} s_askers_t;

static void
s_ask_add (s_askers_t *askers, const char *endpoint, const char *node)
{
    askers->items = (s_asked_t *) dbt_realloc (askers->items, (askers->count + 1) * sizeof (s_asked_t));
    s_asked_t *asked = &askers->items [askers->count++];
    asked->endpoint = dbt_strdup (endpoint);
    asked->node = dbt_strdup (node);
    asked->client = NULL;
    asked->reply = NULL;
}

static void
s_ask_peer (const dbt_peer_t *peer, void *arg)
{
    if (!peer->self && peer->up && peer->node)
        s_ask_add ((s_askers_t *) arg, peer->endpoint, peer->node);
}

//  Ask every dispatcher at once; wait for the answers until one deadline.
static void
s_ask_all (dbt_board_t *self, s_askers_t *askers)
{
    if (self->args.local)
        s_ask_add (askers, self->args.local, self->args.config->worker_name);
    dbt_routes_each_peer (self->args.routes, s_ask_peer, askers);
    char err [DBT_ERRMSG_LEN];
    for (size_t i = 0; i < askers->count; i++) {
        s_asked_t *asked = &askers->items [i];
        asked->client = dbt_client_new (asked->endpoint, err);
        if (!asked->client)
            continue;
        dbt_client_begin (asked->client);       //  STATS has no fields
        int rc = dbt_client_call (asked->client, DBT_C_STATS, 0, &asked->reply, err);
        if (rc != DBT_ETIMEDOUT)
            dbt_client_destroy (&asked->client);    //  answered at once, or not sent
    }
    int64_t deadline = dbt_clock_ms () + S_STATS_MS;
    bool waiting = true;
    while (waiting && dbt_clock_ms () < deadline) {
        waiting = false;
        for (size_t i = 0; i < askers->count; i++) {
            s_asked_t *asked = &askers->items [i];
            if (!asked->client)
                continue;
            int rc = dbt_client_wait (asked->client, 10, &asked->reply, err);
            if (rc == DBT_ETIMEDOUT)
                waiting = true;
            else
                dbt_client_destroy (&asked->client);
        }
    }
    for (size_t i = 0; i < askers->count; i++) {
        dbt_client_destroy (&askers->items [i].client);
        if (askers->items [i].reply && askers->items [i].reply->code != 200)
            dbt_reply_destroy (&askers->items [i].reply);
    }
}

static void
s_askers_free (s_askers_t *askers)
{
    for (size_t i = 0; i < askers->count; i++) {
        free (askers->items [i].endpoint);
        free (askers->items [i].node);
        dbt_reply_destroy (&askers->items [i].reply);
    }
    free (askers->items);
}

//  True when the msgpack array list holds the string name.
static bool
s_mp_has (const msgpack_object *list, const char *name)
{
    for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size; i++) {
        const char *str;
        size_t len;
        if (dbt_mp_str (&list->via.array.ptr [i], &str, &len) == 0
        &&  len == strlen (name) && memcmp (str, name, len) == 0)
            return true;
    }
    return false;
}

//  The workers of queue that its dispatcher (node dispatcher) counts,
//  summed per node: [{node, dispatcher, workers, slots, busy, free}].
static json_t *
s_queue_workers (s_askers_t *askers, const char *queue, const char *dispatcher)
{
    json_t *list = json_array ();
    char err [DBT_ERRMSG_LEN];
    for (size_t i = 0; i < askers->count; i++) {
        if (!streq (askers->items [i].node, dispatcher))
            continue;
        const dbt_reply_t *reply = askers->items [i].reply;
        const msgpack_object *workers = reply ? dbt_mp_get (reply->data, "worker_list") : NULL;
        for (uint32_t w = 0; workers && workers->type == MSGPACK_OBJECT_ARRAY
                             && w < workers->via.array.size; w++) {
            const msgpack_object *worker = &workers->via.array.ptr [w];
            if (!s_mp_has (dbt_mp_get (worker, "queues"), queue))
                continue;
            char *node = NULL;
            uint64_t capacity = 0, busy = 0;
            dbt_mp_field_str (worker, "node", false, &node, err);
            dbt_mp_field_u64 (worker, "capacity", false, &capacity, err);
            dbt_mp_field_u64 (worker, "busy", false, &busy, err);
            json_t *entry = NULL;
            for (size_t e = 0; e < json_array_size (list) && !entry; e++) {
                json_t *item = json_array_get (list, e);
                if (streq (json_string_value (json_object_get (item, "node")), node ? node : "")
                &&  streq (json_string_value (json_object_get (item, "dispatcher")), askers->items [i].node))
                    entry = item;
            }
            if (!entry) {
                entry = json_object ();
                json_object_set_new (entry, "node", json_string (node ? node : ""));
                json_object_set_new (entry, "dispatcher", json_string (askers->items [i].node));
                json_object_set_new (entry, "workers", json_integer (0));
                json_object_set_new (entry, "slots", json_integer (0));
                json_object_set_new (entry, "busy", json_integer (0));
                json_array_append_new (list, entry);
            }
            json_int_t slots = json_integer_value (json_object_get (entry, "slots")) + (json_int_t) capacity;
            json_int_t used = json_integer_value (json_object_get (entry, "busy")) + (json_int_t) busy;
            json_object_set_new (entry, "workers", json_integer (
                json_integer_value (json_object_get (entry, "workers")) + 1));
            json_object_set_new (entry, "slots", json_integer (slots));
            json_object_set_new (entry, "busy", json_integer (used));
            json_object_set_new (entry, "free", json_integer (slots > used ? slots - used : 0));
            free (node);
        }
    }
    return list;
}

//  One source's queues, as /queues lists them.
typedef struct {
    json_t *queues;             //  the list being built
    const char *node;           //  the source's dispatcher
    int64_t lag_ms;             //  its lag
    dbt_store_t *store;         //  its store (for the last hour's failures)
    s_askers_t *askers;         //  STATS answers
    int64_t now;                //  wall ms
} s_counting_t;

static json_t *
s_queue_entry (s_counting_t *counting, const char *queue, const uint64_t *counts)
{
    json_t *item = json_object ();
    json_object_set_new (item, "name", json_string (queue));
    json_object_set_new (item, "dispatcher", json_string (counting->node));
    json_object_set_new (item, "replica_lag_ms", json_integer (counting->lag_ms));
    uint64_t pending = counts ? counts [DBT_STATE_PENDING] : 0;
    uint64_t retrying = counts ? counts [DBT_STATE_RETRY] : 0;
    json_object_set_new (item, "depth", json_integer ((json_int_t) (pending + retrying)));
    json_object_set_new (item, "pending", json_integer ((json_int_t) pending));
    json_object_set_new (item, "running", json_integer ((json_int_t) (counts ? counts [DBT_STATE_STARTED] : 0)));
    json_object_set_new (item, "retrying", json_integer ((json_int_t) retrying));
    json_object_set_new (item, "succeeded", json_integer ((json_int_t) (counts ? counts [DBT_STATE_SUCCESS] : 0)));
    json_object_set_new (item, "failed", json_integer ((json_int_t) (counts ? counts [DBT_STATE_FAILURE] : 0)));
    uint64_t recent = 0;
    char err [DBT_ERRMSG_LEN];
    if (counts && counts [DBT_STATE_FAILURE] && counting->store
    &&  dbt_store_count_since (counting->store, queue, DBT_STATE_FAILURE,
                               counting->now - S_HOUR_MS, &recent, err))
        dbt_log (DBT_LOG_WARN, "http: %s", err);
    json_object_set_new (item, "failed_last_hour", json_integer ((json_int_t) recent));
    json_object_set_new (item, "workers", s_queue_workers (counting->askers, queue, counting->node));
    return item;
}

static int
s_count_one (const char *queue, const uint64_t counts [DBT_STORE_NSTATES], void *arg)
{
    s_counting_t *counting = (s_counting_t *) arg;
    json_array_append_new (counting->queues, s_queue_entry (counting, queue, counts));
    return 0;
}

typedef struct {
    json_t *queues;             //  queue list
    json_t *sources;            //  node -> {own, replica_lag_ms, replica_seq}
    json_t *peers;              //  peer list
    s_askers_t *askers;         //  STATS answers
} s_overview_t;

static void
s_source_queues (const char *node, bool own, dbt_store_t *store, int64_t lag_ms, uint64_t seq,
                 const dbt_view_delay_t *delay, void *arg)
{
    s_overview_t *overview = (s_overview_t *) arg;
    s_counting_t counting = { overview->queues, node, lag_ms, store, overview->askers, dbt_time_ms () };
    char err [DBT_ERRMSG_LEN];
    if (dbt_store_each_count (store, s_count_one, &counting, err))
        dbt_log (DBT_LOG_WARN, "http: %s", err);
    json_t *source = json_object ();
    json_object_set_new (source, "own", json_boolean (own));
    json_object_set_new (source, "replica_lag_ms", json_integer (lag_ms));
    json_object_set_new (source, "replica_seq", json_integer ((json_int_t) seq));
    json_object_set (overview->sources, node, source);
    json_decref (source);
}

//  True when queues lists name.
static bool
s_listed (json_t *queues, const char *name)
{
    for (size_t i = 0; i < json_array_size (queues); i++)
        if (streq (json_string_value (json_object_get (json_array_get (queues, i), "name")), name))
            return true;
    return false;
}

//  Queues with no job yet that workers serve or the config names.
static void
s_idle_queues (dbt_board_t *self, s_overview_t *overview)
{
    s_counting_t counting = { overview->queues, "", -1, NULL, overview->askers, 0 };
    for (size_t i = 0; i < overview->askers->count; i++) {
        const dbt_reply_t *reply = overview->askers->items [i].reply;
        const msgpack_object *workers = reply ? dbt_mp_get (reply->data, "worker_list") : NULL;
        counting.node = overview->askers->items [i].node;
        counting.lag_ms = i == 0 && self->args.local ? 0 : -1;
        for (uint32_t w = 0; workers && workers->type == MSGPACK_OBJECT_ARRAY
                             && w < workers->via.array.size; w++) {
            const msgpack_object *queues = dbt_mp_get (&workers->via.array.ptr [w], "queues");
            for (uint32_t q = 0; queues && queues->type == MSGPACK_OBJECT_ARRAY
                                 && q < queues->via.array.size; q++) {
                const char *str;
                size_t len;
                if (dbt_mp_str (&queues->via.array.ptr [q], &str, &len) || len > DBT_ID_MAX)
                    continue;
                char *name = dbt_strndup (str, len);
                if (dbt_id_valid (name) && !s_listed (overview->queues, name))
                    json_array_append_new (overview->queues, s_queue_entry (&counting, name, NULL));
                free (name);
            }
        }
    }
    const dbt_config_t *config = self->args.config;
    counting.node = config->worker_name;
    for (size_t i = 0; i < config->nqueues; i++)
        if (!s_listed (overview->queues, config->queues [i].name))
            json_array_append_new (overview->queues, s_queue_entry (&counting, config->queues [i].name, NULL));
}

static void
s_peer_json (const dbt_peer_t *peer, void *arg)
{
    s_overview_t *overview = (s_overview_t *) arg;
    if (peer->self)
        return;
    json_t *item = json_object ();
    json_object_set_new (item, "endpoint", json_string (peer->endpoint));
    json_object_set_new (item, "node", peer->node ? json_string (peer->node) : json_null ());
    json_object_set_new (item, "up", json_boolean (peer->up));
    json_object_set_new (item, "last_seen", s_time (peer->last_seen));
    json_t *source = peer->node ? json_object_get (overview->sources, peer->node) : NULL;
    json_object_set_new (item, "replica_seq", source ? json_incref (json_object_get (source, "replica_seq"))
                                                     : json_integer (0));
    json_object_set_new (item, "replica_lag_ms", source ? json_incref (json_object_get (source, "replica_lag_ms"))
                                                        : json_integer (-1));
    json_array_append_new (overview->peers, item);
}

static dbt_response_t *
s_get_queues (dbt_board_t *self)
{
    s_askers_t askers = { NULL, 0 };
    s_ask_all (self, &askers);
    s_overview_t overview = { json_array (), json_object (), json_array (), &askers };
    dbt_view_each_source (self->args.view, s_source_queues, &overview);
    s_idle_queues (self, &overview);
    dbt_routes_each_peer (self->args.routes, s_peer_json, &overview);
    json_t *dispatchers = json_array ();
    char err [DBT_ERRMSG_LEN];
    for (size_t i = 0; i < askers.count; i++) {
        json_t *item = json_object ();
        const dbt_reply_t *reply = askers.items [i].reply;
        json_object_set_new (item, "node", json_string (askers.items [i].node));
        json_object_set_new (item, "answered", json_boolean (reply != NULL));
        const char *counts [] = { "workers", "slots", "busy" };
        for (size_t c = 0; c < 3; c++) {
            uint64_t value = 0;
            if (reply)
                dbt_mp_field_u64 (reply->data, counts [c], false, &value, err);
            json_object_set_new (item, counts [c], json_integer ((json_int_t) value));
        }
        json_array_append_new (dispatchers, item);
    }
    json_t *data = json_object ();
    json_object_set_new (data, "node", json_string (self->args.config->worker_name));
    json_object_set_new (data, "queues", overview.queues);
    json_object_set_new (data, "dispatchers", dispatchers);
    json_object_set_new (data, "peers", overview.peers);
    json_decref (overview.sources);
    s_askers_free (&askers);
    return s_success (data);
}

//  --------------------------------------------------------------------------
//  GET /queues/{q}/jobs?state=&limit=&after=&dispatcher=

typedef struct {
    const char *queue;          //  the queue
    dbt_state_t state;          //  the state listed
    const char *after;          //  cursor, or NULL
    size_t limit;               //  page size
    const char *dispatcher;     //  only this source, or NULL: the first that has the queue
    json_t *data;               //  the answer, once a source gave it
    int rc;                     //  0, or the list's error
    char err [DBT_ERRMSG_LEN];  //  its message
} s_listing_t;

static int
s_list_one (const dbt_job_t *job, void *arg)
{
    json_array_append_new ((json_t *) arg, dbt_api_job_status (job));
    return 0;
}

static int
s_has_queue (const char *queue, const uint64_t counts [DBT_STORE_NSTATES], void *arg)
{
    s_listing_t *listing = (s_listing_t *) arg;
    if (!streq (queue, listing->queue))
        return 0;
    listing->rc = 1;
    json_object_set_new (listing->data, "total", json_integer ((json_int_t) counts [listing->state]));
    json_t *by_state = json_object ();
    for (int state = 0; state < DBT_STORE_NSTATES; state++)
        json_object_set_new (by_state, dbt_state_name ((dbt_state_t) state),
                             json_integer ((json_int_t) counts [state]));
    json_object_set_new (listing->data, "counts", by_state);
    return 1;
}

static void
s_list_source (const char *node, bool own, dbt_store_t *store, int64_t lag_ms, uint64_t seq,
               const dbt_view_delay_t *delay, void *arg)
{
    s_listing_t *listing = (s_listing_t *) arg;
    if (listing->data || (listing->dispatcher && !streq (listing->dispatcher, node)))
        return;
    json_t *data = json_object ();
    json_object_set_new (data, "queue", json_string (listing->queue));
    json_object_set_new (data, "state", json_string (dbt_state_name (listing->state)));
    json_object_set_new (data, "dispatcher", json_string (node));
    json_object_set_new (data, "replica_lag_ms", json_integer (lag_ms));
    listing->data = data;
    listing->rc = 0;
    if (dbt_store_each_count (store, s_has_queue, listing, listing->err) == 0 && listing->rc == 0
    &&  !listing->dispatcher) {
        listing->data = NULL;               //  not this source's queue: try the next
        json_decref (data);
        return;
    }
    if (!json_object_get (data, "total")) {
        json_object_set_new (data, "total", json_integer (0));
        json_object_set_new (data, "counts", json_object ());
    }
    json_t *jobs = json_array ();
    char *next = NULL;
    listing->rc = dbt_store_list (store, listing->queue, listing->state, listing->after, listing->limit,
                                  s_list_one, jobs, &next, listing->err);
    json_object_set_new (data, "jobs", jobs);
    json_object_set_new (data, "next", next ? json_string (next) : json_null ());
    free (next);
}

static dbt_response_t *
s_get_queue_jobs (dbt_board_t *self, const char *queue, dbt_query_fn *query, void *query_arg)
{
    char err [DBT_ERRMSG_LEN];
    if (!dbt_id_valid (queue))
        return dbt_api_error (404, "queue not found");
    s_listing_t listing = { .queue = queue, .state = DBT_STATE_PENDING };
    const char *state = query (query_arg, "state");
    if (state) {
        int named = s_state_named (state);
        if (named < 0)
            return dbt_api_error (400, "state must be one of PENDING, STARTED, SUCCESS, FAILURE, RETRY");
        listing.state = (dbt_state_t) named;
    }
    int64_t limit = 0;
    if (s_query_int (query, query_arg, "limit", 1, S_PAGE_MAX, S_PAGE_DEFAULT, &limit, err))
        return dbt_api_error (400, err);
    listing.limit = (size_t) limit;
    listing.after = query (query_arg, "after");
    if (listing.after && !*listing.after)
        listing.after = NULL;
    listing.dispatcher = query (query_arg, "dispatcher");
    if (listing.dispatcher && !*listing.dispatcher)
        listing.dispatcher = NULL;
    dbt_view_each_source (self->args.view, s_list_source, &listing);
    if (!listing.data) {
        if (listing.dispatcher)
            return dbt_api_error (404, "no such dispatcher on this node");
        //  No job of the queue anywhere: an empty page.
        listing.data = json_object ();
        json_object_set_new (listing.data, "queue", json_string (queue));
        json_object_set_new (listing.data, "state", json_string (dbt_state_name (listing.state)));
        json_object_set_new (listing.data, "dispatcher", json_null ());
        json_object_set_new (listing.data, "replica_lag_ms", json_integer (-1));
        json_object_set_new (listing.data, "total", json_integer (0));
        json_object_set_new (listing.data, "counts", json_object ());
        json_object_set_new (listing.data, "jobs", json_array ());
        json_object_set_new (listing.data, "next", json_null ());
    }
    if (listing.rc == DBT_EINVAL) {
        json_decref (listing.data);
        return dbt_api_error (400, listing.err);
    }
    if (listing.rc) {
        json_decref (listing.data);
        dbt_log (DBT_LOG_ERROR, "http: %s", listing.err);
        return dbt_api_error (500, "could not read the queue's jobs");
    }
    return s_success (listing.data);
}

//  --------------------------------------------------------------------------
//  GET /jobs/{id}/detail?rows=

//  The first rows of a SUCCESS job's results: {columns, rows, more} or
//  {error}.
static json_t *
s_preview (dbt_board_t *self, const dbt_job_t *job, int64_t rows)
{
    json_t *preview = json_object ();
    char err [DBT_ERRMSG_LEN];
    dbt_pool_t *pool = dbt_pools_results (self->args.pools, job->results);
    if (!pool) {
        json_object_set_new (preview, "error", json_string ("the job's results backend is not configured on this node"));
        return preview;
    }
    dbt_conn_t *conn = dbt_pool_get (pool, self->args.config->request_timeout_ms, NULL, err);
    if (!conn) {
        json_object_set_new (preview, "error", dbt_api_text (err, strlen (err)));
        return preview;
    }
    //  One row more than shown says whether more follow.
    if (dbt_conn_read_table (conn, job->table, rows + 1, 0, err)) {
        dbt_log (DBT_LOG_WARN, "http: cannot read results of '%s': %s", job->id, err);
        json_object_set_new (preview, "error", json_string ("results table not found"));
        dbt_conn_query_end (conn);
        dbt_pool_put (pool, &conn);
        return preview;
    }
    const dbt_column_t *cols = NULL;
    size_t ncols = 0;
    dbt_conn_columns (conn, &cols, &ncols);
    json_t *columns = json_array ();
    for (size_t i = 0; i < ncols; i++) {
        json_t *col = json_object ();
        json_object_set_new (col, "name", dbt_api_text (cols [i].name, strlen (cols [i].name)));
        json_object_set_new (col, "type", json_string (dbt_coltype_name (cols [i].type)));
        if (cols [i].source_type)
            json_object_set_new (col, "source_type", json_string (cols [i].source_type));
        json_array_append_new (columns, col);
    }
    json_t *list = json_array ();
    bool more = false;
    while (true) {
        dbt_row_t row;
        int rc = dbt_conn_fetch (conn, &row, err);
        if (rc < 0) {
            json_object_set_new (preview, "error", dbt_api_text (err, strlen (err)));
            break;
        }
        if (rc == 0)
            break;
        if ((int64_t) json_array_size (list) == rows) {
            more = true;
            break;
        }
        json_t *cells = json_array ();
        for (size_t i = 0; i < row.ncols; i++) {
            size_t len = row.vals [i] ? row.lens [i] : 0;
            if (len > S_CELL_MAX) {
                len = S_CELL_MAX;           //  cut, but not inside a UTF-8 sequence
                while (len > 0 && ((unsigned char) row.vals [i][len] & 0xC0) == 0x80)
                    len--;
            }
            json_array_append_new (cells, row.vals [i] ? dbt_api_text (row.vals [i], len) : json_null ());
        }
        json_array_append_new (list, cells);
    }
    dbt_conn_query_end (conn);
    dbt_pool_put (pool, &conn);
    json_object_set_new (preview, "columns", columns);
    json_object_set_new (preview, "rows", list);
    json_object_set_new (preview, "more", json_boolean (more));
    return preview;
}

static dbt_response_t *
s_get_detail (dbt_board_t *self, const char *id, dbt_query_fn *query, void *query_arg)
{
    char err [DBT_ERRMSG_LEN];
    int64_t rows = 0;
    if (s_query_int (query, query_arg, "rows", 0, S_PREVIEW_MAX, S_PREVIEW_ROWS, &rows, err))
        return dbt_api_error (400, err);
    dbt_job_t *job = NULL;
    dbt_origin_t origin;
    int rc = dbt_id_valid (id) ? dbt_view_job (self->args.view, id, &job, &origin, err) : DBT_ENOTFOUND;
    if (rc == DBT_ENOTFOUND)
        return dbt_api_error (404, "job not found");
    if (rc) {
        dbt_log (DBT_LOG_ERROR, "http: %s", err);
        return dbt_api_error (500, "could not read job status");
    }
    json_t *data = dbt_api_job_status (job);
    json_t *args = json_array ();
    for (size_t i = 0; i < job->nargs; i++)
        json_array_append_new (args, job->args [i] ? dbt_api_text (job->args [i], strlen (job->args [i]))
                                                   : json_null ());
    json_object_set_new (data, "args", args);
    json_object_set_new (data, "db", job->db ? json_string (job->db) : json_null ());
    json_object_set_new (data, "results", json_string (job->results ? job->results : ""));
    json_object_set_new (data, "group_id", job->group_id ? json_string (job->group_id) : json_null ());
    json_object_set_new (data, "max_retries", json_integer (job->max_retries));
    json_object_set_new (data, "interruptions", json_integer (job->interruptions));
    json_object_set_new (data, "ttl_ms", json_integer (job->ttl_ms));
    json_object_set_new (data, "results_ttl_ms", json_integer (job->results_ttl_ms));
    int64_t expiry = dbt_job_results_expiry (job);
    json_object_set_new (data, "results_expire_at", expiry ? s_time (expiry) : json_null ());
    json_object_set_new (data, "seq", json_integer ((json_int_t) job->seq));
    json_object_set_new (data, "cancelled", json_boolean (job->cancelled));
    json_object_set_new (data, "expired", json_boolean (job->expired));
    json_object_set_new (data, "dispatcher", json_string (origin.node));
    json_object_set_new (data, "replica_lag_ms", json_integer (origin.lag_ms));
    bool readable = job->state == DBT_STATE_SUCCESS && !job->expired && job->table;
    json_t *links = json_object ();
    if (readable) {
        char *csv = dbt_printf ("/jobs/%s/results?format=csv", job->id);
        char *json = dbt_printf ("/jobs/%s/results?format=json", job->id);
        json_object_set_new (links, "csv", json_string (csv));
        json_object_set_new (links, "json", json_string (json));
        free (csv);
        free (json);
    }
    json_object_set_new (data, "downloads", links);
    json_object_set_new (data, "preview", readable && rows > 0 ? s_preview (self, job, rows) : json_null ());
    dbt_job_destroy (&job);
    return s_success (data);
}

//  --------------------------------------------------------------------------
//  Static files

bool
dbt_board_public (const char *path)
{
    return streq (path, "/ui") || strncmp (path, "/ui/", 4) == 0;
}

static dbt_response_t *
s_get_file (const char *path)
{
    if (streq (path, "/ui")) {
        //  Relative links need the slash: send the browser there.
        const char *page = "<!doctype html><meta http-equiv=\"refresh\" content=\"0; url=ui/\">"
                           "<a href=\"ui/\">dashboard</a>\n";
        return s_response (200, "text/html; charset=utf-8", dbt_strdup (page), strlen (page));
    }
    const char *name = path + 4;
    if (!*name)
        name = "index.html";
    for (const dbt_board_asset_t *asset = dbt_board_assets; asset->name; asset++)
        if (streq (asset->name, name)) {
            char *body = (char *) dbt_malloc (asset->len + 1);
            memcpy (body, asset->data, asset->len);
            return s_response (200, asset->content_type, body, asset->len);
        }
    return dbt_api_error (404, "not found");
}

//  --------------------------------------------------------------------------
//  Routing

dbt_board_t *
dbt_board_new (const dbt_board_args_t *args)
{
    dbt_board_t *self = (dbt_board_t *) dbt_malloc (sizeof (dbt_board_t));
    self->args = *args;
    return self;
}

void
dbt_board_destroy (dbt_board_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

//  Which of the dashboard's paths path is: 1 /queues, 2 /queues/{q}/jobs,
//  3 /jobs/{id}/detail, 4 a file; 0 none. *arg_p gets {q} or {id}.
static int
s_which (const char *path, char **arg_p)
{
    *arg_p = NULL;
    if (dbt_board_public (path))
        return 4;
    if (streq (path, "/queues"))
        return 1;
    const char *prefixes [] = { "/queues/", "/jobs/" };
    const char *suffixes [] = { "/jobs", "/detail" };
    for (int i = 0; i < 2; i++) {
        size_t plen = strlen (prefixes [i]), slen = strlen (suffixes [i]), len = strlen (path);
        if (len <= plen + slen || strncmp (path, prefixes [i], plen)
        ||  !streq (path + len - slen, suffixes [i]))
            continue;
        char *arg = dbt_strndup (path + plen, len - plen - slen);
        //  /jobs/queue/{q} is the API's list of pending jobs.
        if (strchr (arg, '/') || !*arg || (i == 1 && streq (arg, "queue"))) {
            free (arg);
            return 0;
        }
        *arg_p = arg;
        return i + 2;
    }
    return 0;
}

dbt_response_t *
dbt_board_handle (dbt_board_t *self, const char *method, const char *path,
                  dbt_query_fn *query, void *query_arg)
{
    char *arg = NULL;
    int which = s_which (path, &arg);
    if (!which)
        return NULL;
    dbt_response_t *response = NULL;
    if (!streq (method, "GET") && !streq (method, "HEAD")) {
        response = dbt_api_error (405, "method not allowed");
        response->allow = dbt_strdup ("GET, HEAD");
    }
    else
    if (which == 1)
        response = s_get_queues (self);
    else
    if (which == 2)
        response = s_get_queue_jobs (self, arg, query, query_arg);
    else
    if (which == 3)
        response = s_get_detail (self, arg, query, query_arg);
    else
        response = s_get_file (path);
    free (arg);
    return response;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: paths, files, and the routes over a store with no
//  dispatcher (the integration test dashboard.sh drives a real node).

//  arg: NULL, or key, value, key, value, ..., NULL.
static const char *
s_test_query (void *arg, const char *key)
{
    const char **pairs = (const char **) arg;
    for (size_t i = 0; pairs && pairs [i]; i += 2)
        if (streq (pairs [i], key))
            return pairs [i + 1];
    return NULL;
}

static json_t *
s_test_get (dbt_board_t *board, const char *path, const char **query, int status)
{
    dbt_response_t *response = dbt_board_handle (board, "GET", path, s_test_query, (void *) query);
    assert (response);
    if (response->status != status)
        fprintf (stderr, "board: %s: %d %.*s\n", path, response->status,
                 (int) response->len, response->body);
    assert (response->status == status);
    json_t *doc = json_loadb (response->body, response->len, 0, NULL);
    dbt_response_destroy (&response);
    return doc;
}

void
dbt_board_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *path = NULL;
    assert (s_which ("/queues", &path) == 1 && !path);
    assert (s_which ("/queues/q1/jobs", &path) == 2 && streq (path, "q1"));
    free (path);
    assert (s_which ("/jobs/j1/detail", &path) == 3 && streq (path, "j1"));
    free (path);
    assert (s_which ("/jobs/queue/detail", &path) == 0 && !path);
    assert (s_which ("/jobs/a/b/detail", &path) == 0 && !path);
    assert (s_which ("/jobs//detail", &path) == 0);
    assert (s_which ("/jobs/j1", &path) == 0);
    assert (s_which ("/ui/", &path) == 4 && s_which ("/uix", &path) == 0);
    assert (dbt_board_public ("/ui") && dbt_board_public ("/ui/app.js") && !dbt_board_public ("/uiapp.js"));
    assert (!dbt_board_public ("/queues"));

    char *dir = dbt_testing_tmpdir ("board");
    dbt_store_t *store = dbt_store_open (dir, 16 << 20, 0, err);
    assert (store);
    dbt_wtxn_t *txn = dbt_store_begin (store, err);
    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->task, "t");
    dbt_job_set (&job->queue, "bq");
    for (int i = 0; i < 120; i++) {
        char id [16];
        snprintf (id, sizeof (id), "b%03d", i);
        dbt_job_set (&job->id, id);
        job->seq = dbt_wtxn_next_seq (txn);
        job->state = i < 100 ? DBT_STATE_PENDING : DBT_STATE_FAILURE;
        job->finished_ms = i < 100 ? 0 : dbt_time_ms () - (i < 110 ? 1000 : 2 * S_HOUR_MS);
        dbt_job_set (&job->error, i < 100 ? NULL : "boom");
        assert (dbt_wtxn_put_job (txn, job, err) == 0);
    }
    assert (dbt_wtxn_commit (&txn, err) == 0);
    dbt_job_destroy (&job);
    dbt_config_t *config = dbt_config_from_string (
        "[queue.idle]\n[db.s]\ntype = sqlite\ndsn = /nonexistent/s.db\n"
        "[results.r]\ntype = sqlite\ndsn = /nonexistent/r.db\n", err);
    assert (config);
    dbt_routes_t *routes = dbt_routes_new (config);
    dbt_view_t *view = dbt_view_new (store, config->worker_name);
    dbt_board_args_t args = { config, view, routes, NULL, NULL };
    dbt_board_t *board = dbt_board_new (&args);

    assert (dbt_board_handle (board, "GET", "/jobs/b001", s_test_query, NULL) == NULL);
    dbt_response_t *response = dbt_board_handle (board, "POST", "/queues", s_test_query, NULL);
    assert (response->status == 405 && streq (response->allow, "GET, HEAD"));
    dbt_response_destroy (&response);

    json_t *doc = s_test_get (board, "/queues", NULL, 200);
    json_t *queues = json_object_get (json_object_get (doc, "data"), "queues");
    assert (json_array_size (queues) == 2);
    json_t *bq = json_array_get (queues, 0);
    assert (streq (json_string_value (json_object_get (bq, "name")), "bq"));
    assert (json_integer_value (json_object_get (bq, "depth")) == 100);
    assert (json_integer_value (json_object_get (bq, "failed")) == 20);
    assert (json_integer_value (json_object_get (bq, "failed_last_hour")) == 10);
    json_t *idle = json_array_get (queues, 1);
    assert (streq (json_string_value (json_object_get (idle, "name")), "idle"));
    assert (json_integer_value (json_object_get (idle, "depth")) == 0);
    json_decref (doc);

    //  Pages: bounded, newest first, resumed by cursor.
    doc = s_test_get (board, "/queues/bq/jobs", (const char *[]) { "limit", "40", NULL }, 200);
    json_t *data = json_object_get (doc, "data");
    assert (json_array_size (json_object_get (data, "jobs")) == 40);
    assert (json_integer_value (json_object_get (data, "total")) == 100);
    assert (streq (json_string_value (json_object_get (json_array_get (json_object_get (data, "jobs"), 0), "job_id")), "b099"));
    char *cursor = dbt_strdup (json_string_value (json_object_get (data, "next")));
    json_decref (doc);
    doc = s_test_get (board, "/queues/bq/jobs", (const char *[]) { "limit", "40", "after", cursor, NULL }, 200);
    data = json_object_get (doc, "data");
    assert (streq (json_string_value (json_object_get (json_array_get (json_object_get (data, "jobs"), 0), "job_id")), "b059"));
    free (cursor);
    json_decref (doc);
    doc = s_test_get (board, "/queues/bq/jobs", (const char *[]) { "state", "failure", NULL }, 200);
    data = json_object_get (doc, "data");
    assert (json_array_size (json_object_get (data, "jobs")) == 20 && json_is_null (json_object_get (data, "next")));
    json_decref (doc);
    doc = s_test_get (board, "/queues/none/jobs", NULL, 200);
    assert (json_array_size (json_object_get (json_object_get (doc, "data"), "jobs")) == 0);
    json_decref (doc);
    json_decref (s_test_get (board, "/queues/bq/jobs", (const char *[]) { "state", "DONE", NULL }, 400));
    json_decref (s_test_get (board, "/queues/bq/jobs", (const char *[]) { "limit", "0", NULL }, 400));
    json_decref (s_test_get (board, "/queues/bq/jobs", (const char *[]) { "limit", "501", NULL }, 400));
    json_decref (s_test_get (board, "/queues/bq/jobs", (const char *[]) { "after", "xyz", NULL }, 400));
    json_decref (s_test_get (board, "/queues/bad%20name/jobs", NULL, 404));

    doc = s_test_get (board, "/jobs/b105/detail", NULL, 200);
    data = json_object_get (doc, "data");
    assert (streq (json_string_value (json_object_get (data, "state")), "FAILURE"));
    assert (streq (json_string_value (json_object_get (data, "error")), "boom"));
    assert (json_is_null (json_object_get (data, "preview")));
    json_decref (doc);
    json_decref (s_test_get (board, "/jobs/nosuch/detail", NULL, 404));
    json_decref (s_test_get (board, "/jobs/b105/detail", (const char *[]) { "rows", "101", NULL }, 400));

    //  Files: the page, its script, the redirect; unknown ones are 404.
    response = dbt_board_handle (board, "GET", "/ui/", s_test_query, NULL);
    assert (response->status == 200 && strstr (response->content_type, "text/html"));
    assert (response->len > 0 && memmem (response->body, response->len, "app.js", 6));
    dbt_response_destroy (&response);
    response = dbt_board_handle (board, "GET", "/ui/app.js", s_test_query, NULL);
    assert (response->status == 200 && strstr (response->content_type, "javascript"));
    dbt_response_destroy (&response);
    response = dbt_board_handle (board, "GET", "/ui", s_test_query, NULL);
    assert (response->status == 200 && strstr (response->body, "url=ui/"));
    dbt_response_destroy (&response);
    json_decref (s_test_get (board, "/ui/nosuch.js", NULL, 404));
    json_decref (s_test_get (board, "/ui/../etc/passwd", NULL, 404));

    dbt_board_destroy (&board);
    dbt_view_destroy (&view);
    dbt_routes_destroy (&routes);
    dbt_config_destroy (&config);
    dbt_store_destroy (&store);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("board: ok\n");
}
#endif  //  DBT_SELFTEST
