/*  =========================================================================
    dbt_runner - run one job: source query into a fresh results table

    See dbt_runner.h. The staging table gets a random name so concurrent
    attempts (a re-run racing a presumed-dead worker) never share one; the
    final name is only touched by the results driver's atomic swap.
    =========================================================================
*/
#include "dbt_classes.h"

#define PROGRESS_EVERY_MS 500       //  progress callback interval
#define POOL_WAIT_MS      (3600 * 1000)

struct _dbt_cancel_t {
    pthread_mutex_t mutex;      //  guards the fields below
    volatile bool requested;    //  a stop was asked for
    char reason [256];          //  why
    dbt_conn_t *conns [2];      //  connections in use by the attempt
};

dbt_cancel_t *
dbt_cancel_new (void)
{
    dbt_cancel_t *self = (dbt_cancel_t *) dbt_malloc (sizeof (dbt_cancel_t));
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

void
dbt_cancel_destroy (dbt_cancel_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        pthread_mutex_destroy (&(*self_p)->mutex);
        free (*self_p);
        *self_p = NULL;
    }
}

void
dbt_cancel_reset (dbt_cancel_t *self)
{
    pthread_mutex_lock (&self->mutex);
    self->requested = false;
    self->reason [0] = 0;
    pthread_mutex_unlock (&self->mutex);
}

void
dbt_cancel_request (dbt_cancel_t *self, const char *reason)
{
    pthread_mutex_lock (&self->mutex);
    if (!self->requested)
        snprintf (self->reason, sizeof (self->reason), "%s", reason ? reason : "canceled");
    self->requested = true;
    for (int i = 0; i < 2; i++)
        if (self->conns [i])
            dbt_conn_cancel (self->conns [i]);
    pthread_mutex_unlock (&self->mutex);
}

bool
dbt_cancel_requested (dbt_cancel_t *self)
{
    return self->requested;
}

//  Attach a connection (slot 0 source, 1 results) or detach (conn NULL).
static void
s_attach (dbt_cancel_t *self, int slot, dbt_conn_t *conn)
{
    pthread_mutex_lock (&self->mutex);
    self->conns [slot] = conn;
    pthread_mutex_unlock (&self->mutex);
}

static int
s_cancelled (dbt_cancel_t *self, char *err)
{
    pthread_mutex_lock (&self->mutex);
    dbt_err_set (err, "%s", self->reason);
    pthread_mutex_unlock (&self->mutex);
    return DBT_ECANCELED;
}

//  --------------------------------------------------------------------------
//  One attempt

typedef struct {
    const dbt_runner_ctx_t *ctx;
    const dbt_job_t *job;
    dbt_task_t *task;
    dbt_cancel_t *cancel;
    dbt_pool_t *src_pool;
    dbt_pool_t *res_pool;
    dbt_conn_t *src;
    dbt_conn_t *res;
    dbt_column_t *cols;
    size_t ncols;
    char stage [48];
    bool writing;
} s_attempt_t;

//  Pick the source db: the job's, else one of the task's, else any.
static const char *
s_pick_db (const dbt_runner_ctx_t *ctx, const dbt_job_t *job, const dbt_task_t *task)
{
    if (job->db)
        return job->db;
    unsigned int seed = (unsigned int) dbt_clock_ms () ^ (unsigned int) job->seq;
    if (task->ndbs)
        return task->dbs [rand_r (&seed) % task->ndbs];
    return ctx->config->dbs [rand_r (&seed) % ctx->config->ndbs].conf.name;
}

//  Get a connection from pool into *conn, attached to the cancel slot.
static int
s_connect (s_attempt_t *a, dbt_pool_t *pool, dbt_conn_t **conn, int slot, char *err)
{
    char inner [DBT_ERRMSG_LEN];
    *conn = dbt_pool_get (pool, POOL_WAIT_MS, (volatile bool *) &a->cancel->requested, inner);
    if (!*conn) {
        if (dbt_cancel_requested (a->cancel))
            return s_cancelled (a->cancel, err);
        dbt_err_set (err, "cannot connect to '%s': %s", dbt_pool_name (pool), inner);
        return DBT_ECONN;
    }
    s_attach (a->cancel, slot, *conn);
    return 0;
}

static void
s_release (s_attempt_t *a)
{
    if (a->src) {
        s_attach (a->cancel, 0, NULL);
        dbt_conn_query_end (a->src);
        dbt_pool_put (a->src_pool, &a->src);
    }
    if (a->res) {
        s_attach (a->cancel, 1, NULL);
        if (a->writing)
            dbt_conn_write_abort (a->res, a->stage);
        a->writing = false;
        dbt_pool_put (a->res_pool, &a->res);
    }
    dbt_columns_free (&a->cols, a->ncols);
}

//  Start the query; on a connection lost while idle, retry once on a
//  fresh connection (nothing has been read yet, so it is safe).
static int
s_start_query (s_attempt_t *a, char *err)
{
    const char *const *vals = (const char *const *) a->job->args;
    dbt_args_t args = { a->job->nargs, vals };
    char query_id [DBT_ID_MAX + 16];
    snprintf (query_id, sizeof (query_id), "%s-%u", a->job->id, a->job->attempts);
    dbt_query_opts_t opts = { a->job->ttl_ms, query_id, a->task->raw };
    for (int tries = 0; ; tries++) {
        int rc = s_connect (a, a->src_pool, &a->src, 0, err);
        if (rc)
            return rc;
        if (dbt_cancel_requested (a->cancel))
            return s_cancelled (a->cancel, err);
        char inner [DBT_ERRMSG_LEN];
        rc = dbt_conn_query (a->src, a->task->sql, &args, &opts, inner);
        if (rc == 0)
            return 0;
        if (dbt_cancel_requested (a->cancel))
            return s_cancelled (a->cancel, err);
        if (rc == DBT_ECONN && tries == 0) {
            dbt_log (DBT_LOG_INFO, "runner: connection to '%s' was lost, reconnecting",
                     dbt_pool_name (a->src_pool));
            s_attach (a->cancel, 0, NULL);
            dbt_pool_put (a->src_pool, &a->src);
            continue;
        }
        dbt_err_set (err, "task '%s' on db '%s': %s", a->task->name,
                     dbt_pool_name (a->src_pool), inner);
        return rc;
    }
}

//  Create the staging table, retrying once on a lost results connection.
static int
s_start_write (s_attempt_t *a, char *err)
{
    dbt_table_opts_t opts = { false, a->job->table };
    for (size_t i = 0; i < a->ctx->config->nresults; i++)
        if (streq (a->ctx->config->results [i].conf.name, dbt_pool_name (a->res_pool)))
            opts.unlogged = a->ctx->config->results [i].conf.unlogged;
    for (int tries = 0; ; tries++) {
        int rc = s_connect (a, a->res_pool, &a->res, 1, err);
        if (rc)
            return rc;
        char inner [DBT_ERRMSG_LEN];
        rc = dbt_conn_write_begin (a->res, a->stage, a->cols, a->ncols, &opts, inner);
        if (rc == 0) {
            a->writing = true;
            return 0;
        }
        if (rc == DBT_ECONN && tries == 0) {
            s_attach (a->cancel, 1, NULL);
            dbt_pool_put (a->res_pool, &a->res);
            continue;
        }
        dbt_err_set (err, "results backend '%s': %s", dbt_pool_name (a->res_pool), inner);
        return rc;
    }
}

int
dbt_runner_run (const dbt_runner_ctx_t *ctx, const dbt_job_t *job, dbt_cancel_t *cancel,
                dbt_progress_fn *progress, void *arg, uint64_t *rows, char *err)
{
    *rows = 0;
    s_attempt_t a = { .ctx = ctx, .job = job, .cancel = cancel };
    a.task = dbt_tasks_lookup (ctx->tasks, job->task);
    if (!a.task) {
        dbt_err_set (err, "unrecognized task: %s", job->task);
        return DBT_EINVAL;
    }
    const char *db = s_pick_db (ctx, job, a.task);
    a.src_pool = dbt_pools_source (ctx->pools, db);
    a.res_pool = dbt_pools_results (ctx->pools, job->results);
    if (!a.src_pool || !a.res_pool || !job->table) {
        dbt_err_set (err, "unknown %s '%s'", a.src_pool ? "results backend" : "db",
                     a.src_pool ? (job->results ? job->results : "") : db);
        return DBT_EINVAL;
    }
    //  The dispatcher names tables from checked ids; a frame naming
    //  anything else did not come from it.
    if (!dbt_table_name_valid (job->table)) {
        dbt_err_set (err, "refusing results table name '%.80s': not one the dispatcher makes", job->table);
        return DBT_EINVAL;
    }
    char uuid [37];
    dbt_uuid (uuid);
    size_t n = 0;
    n += (size_t) snprintf (a.stage, sizeof (a.stage), "dbt_stage_");
    for (const char *p = uuid; *p && n < 34; p++)
        if (*p != '-')
            a.stage [n++] = *p;
    a.stage [n] = 0;

    int rc = s_start_query (&a, err);
    if (rc == 0) {
        const dbt_column_t *cols;
        rc = dbt_conn_columns (a.src, &cols, &a.ncols);
        if (rc == 0) {
            a.cols = (dbt_column_t *) dbt_malloc ((a.ncols ? a.ncols : 1) * sizeof (dbt_column_t));
            for (size_t i = 0; i < a.ncols; i++) {
                a.cols [i] = cols [i];
                a.cols [i].name = dbt_strdup (cols [i].name);
                a.cols [i].source_type = dbt_strdup (cols [i].source_type);
            }
            dbt_columns_dedupe (a.cols, a.ncols);
        }
        else
            dbt_err_set (err, "cannot read result columns of task '%s'", job->task);
    }
    if (rc == 0)
        rc = s_start_write (&a, err);
    int64_t next_report = dbt_clock_ms () + PROGRESS_EVERY_MS;
    uint64_t count = 0;
    while (rc == 0) {
        if (dbt_cancel_requested (cancel)) {
            rc = s_cancelled (cancel, err);
            break;
        }
        dbt_row_t row;
        char inner [DBT_ERRMSG_LEN];
        int got = dbt_conn_fetch (a.src, &row, inner);
        if (got == 0)
            break;
        if (got < 0) {
            if (dbt_cancel_requested (cancel))
                rc = s_cancelled (cancel, err);
            else {
                rc = got;
                dbt_err_set (err, "task '%s' on db '%s' failed after %" PRIu64 " rows: %s",
                             job->task, dbt_pool_name (a.src_pool), count, inner);
            }
            break;
        }
        rc = dbt_conn_write_row (a.res, &row, inner);
        if (rc) {
            dbt_err_set (err, "results backend '%s' failed after %" PRIu64 " rows: %s",
                         dbt_pool_name (a.res_pool), count, inner);
            break;
        }
        count++;
        if ((count & 1023) == 0 && progress && dbt_clock_ms () >= next_report) {
            progress (count, arg);
            next_report = dbt_clock_ms () + PROGRESS_EVERY_MS;
        }
    }
    if (rc == 0) {
        if (dbt_cancel_requested (cancel))
            rc = s_cancelled (cancel, err);
        else {
            char inner [DBT_ERRMSG_LEN];
            rc = dbt_conn_write_commit (a.res, a.stage, job->table, inner);
            if (rc)
                dbt_err_set (err, "results backend '%s': cannot complete table '%s': %s",
                             dbt_pool_name (a.res_pool), job->table, inner);
            else
                a.writing = false;
        }
    }
    s_release (&a);
    if (rc == 0)
        *rows = count;
    return rc;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test (SQLite source and results; other databases are exercised by
//  the integration tests against real servers)

typedef struct {
    const dbt_runner_ctx_t *ctx;
    dbt_job_t *job;
    dbt_cancel_t *cancel;
    int rc;
    char err [DBT_ERRMSG_LEN];
    uint64_t rows;
} s_bg_t;

static void *
s_bg_run (void *arg)
{
    s_bg_t *bg = (s_bg_t *) arg;
    bg->rc = dbt_runner_run (bg->ctx, bg->job, bg->cancel, NULL, NULL, &bg->rows, bg->err);
    return NULL;
}

//  Run a query on the results database; first cell of the first row.
static char *
s_scalar (dbt_pools_t *pools, const char *sql)
{
    char err [DBT_ERRMSG_LEN];
    dbt_pool_t *pool = dbt_pools_results (pools, "res");
    dbt_conn_t *conn = dbt_pool_get (pool, 1000, NULL, err);
    assert (conn);
    dbt_args_t args = { 0, NULL };
    dbt_query_opts_t opts = { 0, NULL, true };
    char *value = NULL;
    if (dbt_conn_query (conn, sql, &args, &opts, err) == 0) {
        dbt_row_t row;
        if (dbt_conn_fetch (conn, &row, err) == 1 && row.vals [0])
            value = dbt_strndup (row.vals [0], row.lens [0]);
    }
    else
        value = dbt_printf ("error: %s", err);
    dbt_conn_query_end (conn);
    dbt_pool_put (pool, &conn);
    return value;
}

//  The column names of a results table, comma-separated. Caller frees.
static char *
s_column_names (dbt_pools_t *pools, const char *table)
{
    char err [DBT_ERRMSG_LEN];
    dbt_pool_t *pool = dbt_pools_results (pools, "res");
    dbt_conn_t *conn = dbt_pool_get (pool, 1000, NULL, err);
    assert (conn);
    dbt_buf_t names = { 0 };
    dbt_buf_puts (&names, "");
    const dbt_column_t *cols;
    size_t ncols = 0;
    if (dbt_conn_read_table (conn, table, 1, 0, err) == 0 && dbt_conn_columns (conn, &cols, &ncols) == 0)
        for (size_t i = 0; i < ncols; i++)
            dbt_buf_printf (&names, "%s%s", i ? "," : "", cols [i].name);
    dbt_conn_query_end (conn);
    dbt_pool_put (pool, &conn);
    return dbt_buf_take (&names);
}

void
dbt_runner_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("runner");
    char *ini = dbt_printf ("[db.src]\ntype = sqlite\ndsn = %s/src.db\nsample_data = true\n"
                            "[results.res]\ntype = sqlite\ndsn = %s/res.db\n", dir, dir);
    dbt_config_t *config = dbt_config_from_string (ini, err);
    free (ini);
    assert (config);
    dbt_tasks_t *tasks = dbt_tasks_new ();
    const char *text =
        "-- name: of_user\nSELECT * FROM entries WHERE user_id = ? ORDER BY id;\n"
        "-- name: dup\nSELECT id, id, amount AS id FROM entries LIMIT 3;\n"
        "-- name: slow\nWITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)\n"
        "SELECT x FROM c WHERE x % 100000000 = 0 LIMIT 10;\n"
        "-- name: many\nWITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)\n"
        "SELECT x FROM c;\n"
        "-- name: broken\nSELECT * FROM no_such_table;\n";
    assert (dbt_tasks_parse (tasks, text, strlen (text), "t.sql", err) == 0);
    assert (dbt_tasks_bind (tasks, config, err) == 0);
    dbt_pools_t *pools = dbt_pools_new (config);
    dbt_runner_ctx_t ctx = { config, tasks, pools };
    dbt_cancel_t *cancel = dbt_cancel_new ();

    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->id, "r1");
    dbt_job_set (&job->task, "of_user");
    dbt_job_set (&job->queue, "q");
    dbt_job_set (&job->results, "res");
    dbt_job_set (&job->table, "results_r1");
    const char *args [] = { "user2" };
    dbt_job_set_args (job, args, 1);
    uint64_t rows = 0;
    assert (dbt_runner_run (&ctx, job, cancel, NULL, NULL, &rows, err) == 0);
    assert (rows == 200);
    char *value = s_scalar (pools, "SELECT COUNT(*) || '/' || MIN(user_id) FROM results_r1");
    assert (streq (value, "200/user2"));
    free (value);

    //  Duplicate column names are made unique.
    dbt_job_set (&job->task, "dup");
    dbt_job_set (&job->table, "results_dup");
    dbt_job_set_args (job, NULL, 0);
    assert (dbt_runner_run (&ctx, job, cancel, NULL, NULL, &rows, err) == 0 && rows == 3);
    value = s_column_names (pools, "results_dup");
    assert (streq (value, "id,id_2,id_3"));
    free (value);

    //  Large results stream through.
    dbt_job_set (&job->task, "many");
    dbt_job_set (&job->table, "results_many");
    assert (dbt_runner_run (&ctx, job, cancel, NULL, NULL, &rows, err) == 0);
    assert (rows == 300000);
    value = s_scalar (pools, "SELECT SUM(x) FROM results_many");
    assert (streq (value, "45000150000"));
    free (value);

    //  A failing query leaves the previous table of the job untouched.
    dbt_job_set (&job->task, "broken");
    dbt_job_set (&job->table, "results_r1");
    assert (dbt_runner_run (&ctx, job, cancel, NULL, NULL, &rows, err) != 0);
    assert (strstr (err, "no_such_table"));
    value = s_scalar (pools, "SELECT COUNT(*) FROM results_r1");
    assert (streq (value, "200"));
    free (value);

    //  Cancel from another thread stops a long query within a second.
    dbt_job_set (&job->task, "slow");
    s_bg_t bg = { &ctx, job, cancel, 0, "", 0 };
    pthread_t thread;
    pthread_create (&thread, NULL, s_bg_run, &bg);
    zclock_sleep (300);
    int64_t asked = dbt_clock_ms ();
    dbt_cancel_request (cancel, "test cancel");
    assert (dbt_cancel_requested (cancel));
    pthread_join (thread, NULL);
    assert (bg.rc == DBT_ECANCELED && streq (bg.err, "test cancel"));
    assert (dbt_clock_ms () - asked < 1000);
    value = s_scalar (pools, "SELECT COUNT(*) FROM results_r1");
    assert (streq (value, "200"));
    free (value);
    value = s_scalar (pools, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'dbt_stage_%'");
    assert (streq (value, "0"));
    free (value);
    dbt_cancel_reset (cancel);
    assert (!dbt_cancel_requested (cancel));

    //  Unknown task and unknown backend are errors, not crashes.
    dbt_job_set (&job->task, "nope");
    assert (dbt_runner_run (&ctx, job, cancel, NULL, NULL, &rows, err) == DBT_EINVAL);
    dbt_job_set (&job->task, "dup");
    dbt_job_set (&job->results, "nope");
    assert (dbt_runner_run (&ctx, job, cancel, NULL, NULL, &rows, err) == DBT_EINVAL);

    dbt_job_destroy (&job);
    dbt_cancel_destroy (&cancel);
    dbt_pools_destroy (&pools);
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("runner: ok\n");
}
#endif  //  DBT_SELFTEST
