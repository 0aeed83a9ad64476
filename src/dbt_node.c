/*  =========================================================================
    dbt_node - one dungbeetle node: every actor, wired from the config

    See dbt_node.h. The node owns the shared read-only objects (tasks,
    pools, store) and the actors that borrow them, so it destroys actors
    before the objects.
    =========================================================================
*/
#include "dbt_classes.h"
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

//  One served queue and its worker actor.
typedef struct {
    char *queue;                //  queue name
    int concurrency;            //  runner threads
    dbt_worker_args_t args;     //  the actor's arguments
    zactor_t *actor;            //  the worker
} s_served_t;

struct _dbt_node_t {
    const dbt_config_t *config; //  borrowed
    dbt_tasks_t *tasks;         //  task registry
    dbt_pools_t *pools;         //  connection pools
    dbt_store_t *store;         //  state (NULL without a dispatcher)
    dbt_routes_t *routes;       //  where each queue's dispatcher is
    dbt_view_t *view;           //  reads over the own store and the replicas
    dbt_replica_args_t replica_args;
    zactor_t *replica;          //  replica actor, or NULL without peers
    dbt_dispatcher_args_t dispatcher_args;
    zactor_t *dispatcher;       //  dispatcher actor, or NULL
    dbt_janitor_args_t janitor_args;
    zactor_t *janitor;          //  janitor actor, or NULL
    dbt_api_t *api;             //  HTTP API, or NULL
    dbt_board_t *board;         //  the dashboard, or NULL
    dbt_http_args_t http_args;
    zactor_t *http;             //  HTTP actor, or NULL
    dbt_front_args_t front_args;
    zactor_t *front;            //  client endpoint actor, or NULL
    s_served_t *served;         //  queues with workers
    size_t nserved;             //  number of served queues
    int http_port;              //  bound HTTP port
    char *local;                //  the dispatcher's inproc endpoint, or NULL
    int lock_fd;                //  data_dir/dungbeetle.lock, held (flock) while running
};

//  --------------------------------------------------------------------------
//  The data directory belongs to one node at a time: a second node on it
//  would load the first one's running jobs and run them again, or wipe
//  its replicas. (Worker-only nodes keep no state there.)

static int
s_lock_data_dir (dbt_node_t *self, char *err)
{
    char *path = dbt_printf ("%s/dungbeetle.lock", self->config->data_dir);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        dbt_err_set (err, "cannot open '%s': %s", path, strerror (errno));
        free (path);
        return -1;
    }
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
        char holder [32] = "";
        ssize_t n = pread (fd, holder, sizeof (holder) - 1, 0);
        holder [n > 0 ? n : 0] = 0;
        holder [strcspn (holder, "\n")] = 0;
        dbt_err_set (err, "data directory '%s' is in use by another dungbeetle node%s%s%s: "
                     "each node needs its own data_dir", self->config->data_dir,
                     *holder ? " (pid " : "", holder, *holder ? ")" : "");
        close (fd);
        free (path);
        return -1;
    }
    char pid [32];
    int len = snprintf (pid, sizeof (pid), "%ld\n", (long) getpid ());
    if (ftruncate (fd, 0) != 0 || pwrite (fd, pid, (size_t) len, 0) != len)
        dbt_log (DBT_LOG_WARN, "node: cannot write the pid to '%s': %s", path, strerror (errno));
    free (path);
    self->lock_fd = fd;
    return 0;
}

//  --------------------------------------------------------------------------
//  Every database section's DSN checked by its driver before any connect

static int
s_check_dsns (const dbt_config_t *config, char *err)
{
    for (size_t i = 0; i < config->ndbs; i++)
        if (dbt_driver_check (&config->dbs [i].conf, err))
            return -1;
    for (size_t i = 0; i < config->nresults; i++)
        if (dbt_driver_check (&config->results [i].conf, err))
            return -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Tasks: load, bind, prepare

static int
s_load_tasks (dbt_node_t *self, char *err)
{
    self->tasks = dbt_tasks_new ();
    for (size_t i = 0; i < self->config->nsql_dirs; i++) {
        if (dbt_tasks_load_dir (self->tasks, self->config->sql_dirs [i], err))
            return -1;
        dbt_log (DBT_LOG_INFO, "node: loaded tasks from %s", self->config->sql_dirs [i]);
    }
    return dbt_tasks_bind (self->tasks, self->config, err);
}

//  Prepare every non-raw task on each database it may run on, recording
//  its parameter count. A task whose count differs between databases is
//  an error: args could not be checked at submission.
static int
s_prepare_tasks (dbt_node_t *self, char *err)
{
    for (size_t i = 0; i < dbt_tasks_size (self->tasks); i++) {
        dbt_task_t *task = dbt_tasks_at (self->tasks, i);
        task->nparams = -1;
        if (task->raw)
            continue;
        size_t ndbs = task->ndbs ? task->ndbs : self->config->ndbs;
        for (size_t d = 0; d < ndbs; d++) {
            const char *db = task->ndbs ? task->dbs [d] : self->config->dbs [d].conf.name;
            dbt_pool_t *pool = dbt_pools_source (self->pools, db);
            char inner [DBT_ERRMSG_LEN];
            const dbt_dbsection_t *section = dbt_config_db (self->config, db);
            dbt_conn_t *conn = dbt_pool_get (pool, section->conf.connect_timeout_ms + 1000, NULL, inner);
            if (!conn) {
                dbt_err_set (err, "cannot connect to db '%s': %s", db, inner);
                return -1;
            }
            int nparams = -1;
            int rc = dbt_conn_prepare (conn, task->sql, &nparams, inner);
            dbt_pool_put (pool, &conn);
            if (rc) {
                dbt_err_set (err, "%s:%d: error preparing task '%s' on db '%s': %s",
                             task->file, task->line, task->name, db, inner);
                return -1;
            }
            if (task->nparams >= 0 && nparams >= 0 && nparams != task->nparams) {
                dbt_err_set (err, "%s:%d: task '%s' takes %d args on one db and %d on db '%s'",
                             task->file, task->line, task->name, task->nparams, nparams, db);
                return -1;
            }
            if (nparams >= 0)
                task->nparams = nparams;
        }
        dbt_log (DBT_LOG_DEBUG, "node: task '%s' prepared (%d args, queue %s)",
                 task->name, task->nparams, task->queue);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Workers: one per queue served (task queues and [queue.*] sections).

static s_served_t *
s_served (dbt_node_t *self, const char *queue)
{
    for (size_t i = 0; i < self->nserved; i++)
        if (streq (self->served [i].queue, queue))
            return &self->served [i];
    return NULL;
}

static int
s_add_served (dbt_node_t *self, const char *queue, int task_conc, char *err)
{
    int concurrency = dbt_config_queue_concurrency (self->config, queue, task_conc);
    s_served_t *served = s_served (self, queue);
    if (served) {
        if (task_conc > 0 && !dbt_config_queue (self->config, queue) && served->concurrency != concurrency) {
            dbt_err_set (err, "queue '%s' is already defined with %d concurrency", queue,
                         served->concurrency);
            return -1;
        }
        return 0;
    }
    self->served = (s_served_t *) dbt_realloc (self->served, (self->nserved + 1) * sizeof (s_served_t));
    served = &self->served [self->nserved++];
    memset (served, 0, sizeof (*served));
    served->queue = dbt_strdup (queue);
    served->concurrency = concurrency;
    return 0;
}

static int
s_start_workers (dbt_node_t *self, char *err)
{
    for (size_t i = 0; i < dbt_tasks_size (self->tasks); i++) {
        dbt_task_t *task = dbt_tasks_at (self->tasks, i);
        if (s_add_served (self, task->queue, task->conc, err))
            return -1;
    }
    for (size_t i = 0; i < self->config->nqueues; i++)
        if (s_add_served (self, self->config->queues [i].name, 0, err))
            return -1;
    for (size_t i = 0; i < self->nserved; i++) {
        s_served_t *served = &self->served [i];
        served->args.runner.config = self->config;
        served->args.runner.tasks = self->tasks;
        served->args.runner.pools = self->pools;
        served->args.endpoint = NULL;
        served->args.routes = self->routes;
        served->args.queues = (const char *const *) &served->queue;
        served->args.nqueues = 1;
        served->args.capacity = served->concurrency;
        served->actor = zactor_new (dbt_worker_actor, &served->args);
        if (!served->actor) {
            dbt_err_set (err, "cannot start the worker of queue '%s'", served->queue);
            return -1;
        }
    }
    return 0;
}

static void
s_any_peer (const dbt_peer_t *peer, void *arg)
{
    if (!peer->self)
        *(bool *) arg = true;
}

//  --------------------------------------------------------------------------
//  Node

dbt_node_t *
dbt_node_new (const dbt_config_t *config, char *err)
{
    dbt_node_t *self = (dbt_node_t *) dbt_malloc (sizeof (dbt_node_t));
    self->config = config;
    self->lock_fd = -1;
    self->pools = dbt_pools_new (config);
    //  The data directory first: the default SQLite files live in it.
    //  A worker-only node keeps no state of its own there (the upstream
    //  example runs one beside a full node in the same directory).
    if (s_check_dsns (config, err)
    ||  dbt_mkdirs (config->data_dir, err) || (!config->worker_only && s_lock_data_dir (self, err))
    ||  s_load_tasks (self, err) || s_prepare_tasks (self, err))
        goto fail;
    //  Keys named but not loaded would leave every socket open.
    if (config->mesh_curve_cert && !config->curve) {
        dbt_err_set (err, "[mesh] curve_cert is set but its keys were not loaded (dbt_curve_new)");
        goto fail;
    }
    if (config->mesh_insecure && !config->curve)
        dbt_log (DBT_LOG_WARN, "node: [mesh] insecure = true: the mesh endpoint %s accepts "
                 "anyone who can reach it (submit, cancel, run jobs as a worker)", config->mesh_bind);
    self->routes = dbt_routes_new (config);
    if (config->mesh_dispatch) {
        self->store = dbt_store_open (config->data_dir, config->state_map_size, config->state_map_max, err);
        if (!self->store)
            goto fail;
    }
    self->view = dbt_view_new (self->store, config->worker_name);
    if (config->mesh_dispatch) {
        self->dispatcher_args = (dbt_dispatcher_args_t) { config, self->tasks, self->store,
                                                          self->routes, self->view };
        self->dispatcher = zactor_new (dbt_dispatcher_actor, &self->dispatcher_args);
        zstr_send (self->dispatcher, "LOCAL");
        self->local = zstr_recv (self->dispatcher);
        zstr_send (self->dispatcher, "INSTANCE");
        char *instance = zstr_recv (self->dispatcher);
        if (!self->local || !*self->local) {
            free (instance);
            dbt_err_set (err, "cannot start the dispatcher on %s (see the log)", config->mesh_bind);
            goto fail;
        }
        dbt_routes_set_own (self->routes, self->local, instance);
        free (instance);
        self->janitor_args = (dbt_janitor_args_t) { config, self->store, self->pools, self->local };
        self->janitor = zactor_new (dbt_janitor_actor, &self->janitor_args);
    }
    //  Every other dispatcher the node knows of is replicated here.
    bool peers = false;
    dbt_routes_each_peer (self->routes, s_any_peer, &peers);
    if (peers) {
        self->replica_args = (dbt_replica_args_t) { config, self->routes, self->view };
        self->replica = zactor_new (dbt_replica_actor, &self->replica_args);
    }
    if (s_start_workers (self, err))
        goto fail;
    if (!config->worker_only) {
        dbt_api_args_t api_args = { config, self->tasks, self->store, self->pools, self->routes,
                                    self->view, self->local };
        self->api = dbt_api_new (&api_args);
        dbt_board_args_t board_args = { config, self->view, self->routes, self->pools, self->local };
        self->board = dbt_board_new (&board_args);
        self->http_args = (dbt_http_args_t) { config, self->api, self->board };
        self->http = zactor_new (dbt_http_actor, &self->http_args);
        zstr_send (self->http, "PORT");
        char *port = zstr_recv (self->http);
        int64_t value = 0;
        if (port && dbt_parse_int64 (port, 1, 65535, &value) == 0)
            self->http_port = (int) value;
        free (port);
        if (!self->http_port) {
            dbt_err_set (err, "cannot listen for HTTP on %s (see the log)", config->server);
            goto fail;
        }
        self->front_args = (dbt_front_args_t) { config, self->api, self->view };
        self->front = zactor_new (dbt_front_actor, &self->front_args);
        zstr_send (self->front, "ENDPOINT");
        char *bound = zstr_recv (self->front);
        bool listening = bound && *bound;
        free (bound);
        if (!listening && !config->mesh_client_derived) {
            dbt_err_set (err, "cannot bind the client endpoint %s (see the log)", config->mesh_client);
            goto fail;
        }
        if (!listening)
            dbt_log (DBT_LOG_WARN, "node: no client endpoint: the default one, %s, is taken; "
                     "set [mesh] client", config->mesh_client);
    }
    dbt_log (DBT_LOG_INFO, "node: '%s' started: %zu tasks, %zu queues served%s",
             config->worker_name, dbt_tasks_size (self->tasks), self->nserved,
             config->worker_only ? " (worker only)" : "");
    return self;
fail:
    dbt_node_destroy (&self, false);
    return NULL;
}

void
dbt_node_destroy (dbt_node_t **self_p, bool drain)
{
    assert (self_p);
    dbt_node_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->front);
    zactor_destroy (&self->http);
    if (drain && self->nserved) {
        //  Stop taking jobs; let running ones finish up to the limit.
        for (size_t i = 0; i < self->nserved; i++)
            if (self->served [i].actor)
                zstr_send (self->served [i].actor, "DRAIN");
        int64_t deadline = dbt_clock_ms () + self->config->shutdown_timeout_ms;
        for (size_t i = 0; i < self->nserved; i++) {
            zactor_t *actor = self->served [i].actor;
            if (!actor)
                continue;
            int64_t left = deadline - dbt_clock_ms ();
            zsock_set_rcvtimeo (actor, (int) (left > 0 ? left : 0));
            char *reply = zstr_recv (actor);
            zsock_set_rcvtimeo (actor, -1);
            if (!reply)
                dbt_log (DBT_LOG_WARN, "node: jobs of queue '%s' still running at shutdown, "
                         "they will run again", self->served [i].queue);
            free (reply);
        }
    }
    for (size_t i = 0; i < self->nserved; i++) {
        zactor_destroy (&self->served [i].actor);
        free (self->served [i].queue);
    }
    free (self->served);
    zactor_destroy (&self->janitor);
    zactor_destroy (&self->dispatcher);
    zactor_destroy (&self->replica);
    dbt_api_destroy (&self->api);
    dbt_board_destroy (&self->board);
    dbt_view_destroy (&self->view);
    dbt_routes_destroy (&self->routes);
    dbt_store_destroy (&self->store);
    dbt_pools_destroy (&self->pools);
    dbt_tasks_destroy (&self->tasks);
    free (self->local);
    if (self->lock_fd >= 0)
        close (self->lock_fd);         //  releases the lock
    free (self);
    *self_p = NULL;
}

int
dbt_node_http_port (dbt_node_t *self)
{
    return self->http_port;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: a whole node in this process (SQLite, ephemeral HTTP port)
//  runs a job end to end; start-up failures come back as errors.

static size_t
s_test_sink (char *data, size_t size, size_t n, void *arg)
{
    dbt_buf_append ((dbt_buf_t *) arg, data, size * n);
    return size * n;
}

//  GET or POST url; returns the HTTP code, body in *body.
static long
s_test_http (const char *url, const char *post, dbt_buf_t *body)
{
    CURL *curl = curl_easy_init ();
    dbt_buf_reset (body);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_test_sink);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, body);
    if (post)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, post);
    long code = 0;
    if (curl_easy_perform (curl) == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup (curl);
    return code;
}

void
dbt_node_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("node");
    char *sql = dbt_printf ("%s/sql", dir);
    assert (mkdir (sql, 0755) == 0);
    char *file = dbt_printf ("%s/t.sql", sql);
    FILE *out = fopen (file, "w");
    fputs ("-- name: count\nSELECT COUNT(*) AS n FROM entries WHERE user_id = ?;\n", out);
    fclose (out);
    char *ini = dbt_printf ("[app]\nserver = 127.0.0.1:0\nsql_directory = %s\ndata_dir = %s/data\n"
                            "[mesh]\nbind = inproc://dbt-node-test\n"
                            "[db.src]\ntype = sqlite\ndsn = %s/data/src.db\nsample_data = true\n"
                            "[results.res]\ntype = sqlite\ndsn = %s/data/res.db\n", sql, dir, dir, dir);
    dbt_config_t *config = dbt_config_from_string (ini, err);
    free (ini);
    assert (config);
    dbt_node_t *node = dbt_node_new (config, err);
    assert (node);
    int port = dbt_node_http_port (node);
    assert (port > 0);
    dbt_buf_t body = { 0 };
    char *url = dbt_printf ("http://127.0.0.1:%d/tasks/count/jobs", port);
    assert (s_test_http (url, "{\"job_id\":\"n1\",\"args\":[\"user3\"]}", &body) == 200);
    assert (s_test_http (url, "{\"job_id\":\"n2\",\"args\":[]}", &body) == 400);
    free (url);
    url = dbt_printf ("http://127.0.0.1:%d/jobs/n1", port);
    bool done = false;
    for (int i = 0; i < 200 && !done; i++) {
        assert (s_test_http (url, NULL, &body) == 200);
        done = strstr (body.data, "\"state\":\"SUCCESS\",\"count\":1,") != NULL;
        if (!done)
            zclock_sleep (10);
    }
    assert (done);
    free (url);
    //  A second node on the same data directory refuses to start.
    dbt_node_t *second = dbt_node_new (config, err);
    assert (second == NULL && strstr (err, "in use by another dungbeetle node (pid "));
    dbt_node_destroy (&node, true);
    assert (node == NULL);

    //  A task that does not prepare stops start-up, naming file and task.
    out = fopen (file, "a");
    fputs ("-- name: broken\nSELECT * FROM no_such_table;\n", out);
    fclose (out);
    assert (dbt_node_new (config, err) == NULL);
    assert (strstr (err, "t.sql:3") && strstr (err, "'broken'") && strstr (err, "no_such_table"));

    dbt_buf_free (&body);
    dbt_config_destroy (&config);
    free (file);
    free (sql);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("node: ok\n");
}
#endif  //  DBT_SELFTEST
