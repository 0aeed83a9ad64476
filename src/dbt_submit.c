/*  =========================================================================
    dbt_submit - checking and resolving job requests

    See dbt_submit.h. Empty strings count as "not given", as upstream
    treats them.
    =========================================================================
*/
#include "dbt_classes.h"

char *
dbt_submit_table_name (const char *format, const char *id)
{
    const char *at = strstr (format, "%s");
    assert (at);
    return dbt_printf ("%.*s%s%s", (int) (at - format), format, id, at + 2);
}

char *
dbt_submit_queue (const dbt_config_t *config, dbt_tasks_t *tasks, const char *task_name,
                  const char *queue)
{
    dbt_task_t *task = task_name ? dbt_tasks_lookup (tasks, task_name) : NULL;
    if (!task)
        return NULL;
    if (queue && *queue)
        return dbt_strdup (queue);
    return dbt_strdup (task->queue ? task->queue : config->queue);
}

//  Copy the args array of a request into the job.
static int
s_args (dbt_job_t *job, const msgpack_object *args, char *err)
{
    if (!args || args->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (args->type != MSGPACK_OBJECT_ARRAY) {
        dbt_err_set (err, "args must be an array of strings");
        return 400;
    }
    size_t n = args->via.array.size;
    char **copies = (char **) dbt_malloc ((n ? n : 1) * sizeof (char *));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const msgpack_object *arg = &args->via.array.ptr [i];
        const char *str;
        size_t len;
        if (arg->type == MSGPACK_OBJECT_NIL)
            continue;
        if (dbt_mp_str (arg, &str, &len) || !dbt_utf8_valid (str, len)) {
            dbt_err_set (err, "arg %zu must be a string without NUL bytes", i + 1);
            rc = 400;
        }
        else
            copies [i] = dbt_strndup (str, len);
    }
    if (rc == 0)
        dbt_job_set_args (job, (const char *const *) copies, n);
    for (size_t i = 0; i < n; i++)
        free (copies [i]);
    free (copies);
    return rc;
}

//  Check the requested source db against the task's (or the config's).
static int
s_db (const dbt_config_t *config, const dbt_task_t *task, const char *db, char *err)
{
    if (!db)
        return 0;
    bool known = false;
    if (task->ndbs) {
        for (size_t i = 0; i < task->ndbs; i++)
            known = known || streq (task->dbs [i], db);
    }
    else
        known = dbt_config_db (config, db) != NULL;
    if (!known) {
        dbt_err_set (err, "unknown db '%s' for task '%s'", db, task->name);
        return 400;
    }
    return 0;
}

//  Pick the results backend and name the table.
static int
s_results (const dbt_config_t *config, const dbt_task_t *task, uint64_t random,
           dbt_job_t *job, char *err)
{
    const char *results = task->nresults
                        ? task->results [random % task->nresults]
                        : config->results [random % config->nresults].conf.name;
    const dbt_dbsection_t *section = dbt_config_results (config, results);
    assert (section);
    job->results = dbt_strdup (results);
    job->table = dbt_submit_table_name (section->results_table, job->id);
    const dbt_driver_t *driver = dbt_driver_find (section->conf.type);
    if (driver && strlen (job->table) > driver->max_identifier) {
        dbt_err_set (err, "job_id too long: results table name '%s' exceeds %zu characters on %s",
                     job->table, driver->max_identifier, driver->name);
        return 400;
    }
    return 0;
}

int
dbt_submit_job (const dbt_config_t *config, dbt_tasks_t *tasks, dbt_routes_t *routes,
                const msgpack_object *spec, uint64_t random, dbt_job_t **job_p, char *err)
{
    *job_p = NULL;
    if (!spec || spec->type != MSGPACK_OBJECT_MAP) {
        dbt_err_set (err, "each job must be a map");
        return 400;
    }
    dbt_job_t *job = dbt_job_new ();
    uint64_t retries = 0;
    int64_t eta = 0, ttl = -1, results_ttl = -1;
    int code = 0;
    if (dbt_mp_field_str (spec, "id", false, &job->id, err)
    ||  dbt_mp_field_str (spec, "task", true, &job->task, err)
    ||  dbt_mp_field_str (spec, "queue", false, &job->queue, err)
    ||  dbt_mp_field_str (spec, "db", false, &job->db, err)
    ||  dbt_mp_field_i64 (spec, "eta", false, &eta, err)
    ||  dbt_mp_field_i64 (spec, "ttl", false, &ttl, err)
    ||  dbt_mp_field_i64 (spec, "results_ttl", false, &results_ttl, err)
    ||  dbt_mp_field_u64 (spec, "retries", false, &retries, err)) {
        code = 400;
        goto done;
    }
    if (job->id && !*job->id)
        dbt_job_set (&job->id, NULL);
    if (job->queue && !*job->queue)
        dbt_job_set (&job->queue, NULL);
    if (job->db && !*job->db)
        dbt_job_set (&job->db, NULL);
    if (job->id && !dbt_id_valid (job->id)) {
        dbt_err_set (err, "invalid characters in the `job_id` (use 1 to 64 of A-Z a-z 0-9 _ : -)");
        code = 400;
        goto done;
    }
    if (eta < 0 || results_ttl < -1 || ttl < -1) {
        dbt_err_set (err, "eta and ttl must not be negative");
        code = 400;
        goto done;
    }
    if (ttl > DBT_MAX_TTL_MS || results_ttl > DBT_MAX_TTL_MS) {
        dbt_err_set (err, "ttl and results_ttl must be at most %" PRId64 " seconds (10 years)",
                     DBT_MAX_TTL_MS / 1000);
        code = 400;
        goto done;
    }
    if (eta > DBT_MAX_ETA_MS) {
        dbt_err_set (err, "eta must be before the year 10000");
        code = 400;
        goto done;
    }
    if (retries > DBT_MAX_RETRIES) {
        dbt_err_set (err, "retries must be between 0 and %d", DBT_MAX_RETRIES);
        code = 400;
        goto done;
    }
    dbt_task_t *task = dbt_tasks_lookup (tasks, job->task);
    if (!task) {
        dbt_err_set (err, "unrecognized task: %s", job->task);
        code = 404;
        goto done;
    }
    code = s_args (job, dbt_mp_get (spec, "args"), err);
    if (code)
        goto done;
    if (task->nparams >= 0 && (size_t) task->nparams != job->nargs) {
        dbt_err_set (err, "task '%s' expects %d args, got %zu", task->name, task->nparams, job->nargs);
        code = 400;
        goto done;
    }
    code = s_db (config, task, job->db, err);
    if (code)
        goto done;
    if (!job->queue)
        job->queue = dbt_strdup (task->queue ? task->queue : config->queue);
    if (!dbt_id_valid (job->queue)) {
        dbt_err_set (err, "invalid queue name (use 1 to 64 of A-Z a-z 0-9 _ : -)");
        code = 400;
        goto done;
    }
    if (routes ? !dbt_routes_owns (routes, job->queue) : !dbt_config_dispatches (config, job->queue)) {
        char *owner = routes ? dbt_routes_describe (routes, job->queue) : NULL;
        const char *configured = dbt_config_queue_dispatcher (config, job->queue);
        dbt_err_set (err, "queue '%s' is dispatched by %s, not by this node ('%s'): send its jobs "
                     "there (any node's HTTP front routes them), and keep a group's jobs on queues "
                     "of one dispatcher", job->queue, owner ? owner : configured ? configured : "another node",
                     config->worker_name);
        free (owner);
        code = 421;
        goto done;
    }
    if (!job->id) {
        char uuid [37];
        dbt_uuid (uuid);
        job->id = dbt_printf ("job_%s", uuid);
    }
    code = s_results (config, task, random, job, err);
    if (code)
        goto done;
    job->eta_ms = eta;
    job->ttl_ms = ttl >= 0 ? ttl : config->default_job_ttl_ms;
    job->results_ttl_ms = results_ttl >= 0 ? results_ttl : config->results_ttl_ms;
    job->max_retries = (uint32_t) retries;
done:
    if (code)
        dbt_job_destroy (&job);
    *job_p = job;
    return code;
}

int
dbt_submit_group (const msgpack_object *spec, dbt_group_t **group_p, char *err)
{
    *group_p = NULL;
    dbt_group_t *group = dbt_group_new ();
    uint64_t concurrency = 0;
    int code = 0;
    if (!spec || spec->type != MSGPACK_OBJECT_MAP) {
        dbt_err_set (err, "group must be a map");
        code = 400;
    }
    else
    if (dbt_mp_field_str (spec, "id", false, &group->id, err)
    ||  dbt_mp_field_u64 (spec, "concurrency", false, &concurrency, err))
        code = 400;
    else
    if (concurrency > 100000) {
        dbt_err_set (err, "group concurrency must be between 0 and 100000");
        code = 400;
    }
    else
    if (group->id && *group->id && !dbt_id_valid (group->id)) {
        dbt_err_set (err, "invalid characters in the `group_id` (use 1 to 64 of A-Z a-z 0-9 _ : -)");
        code = 400;
    }
    if (code) {
        dbt_group_destroy (&group);
        return code;
    }
    if (!group->id || !*group->id) {
        char uuid [37];
        dbt_uuid (uuid);
        dbt_job_set (&group->id, uuid);
    }
    group->concurrency = (uint32_t) concurrency;
    *group_p = group;
    return 0;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

//  Check one request built by the writer; returns the code.
static int
s_try (const dbt_config_t *config, dbt_tasks_t *tasks, dbt_mpw_t *w, dbt_job_t **job_p, char *err)
{
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *reader = dbt_mpr_new (data, len, err);
    assert (reader);
    int code = dbt_submit_job (config, tasks, NULL, dbt_mpr_root (reader), 7, job_p, err);
    dbt_mpr_destroy (&reader);
    dbt_mpw_reset (w);
    return code;
}

void
dbt_submit_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    dbt_config_t *config = dbt_config_from_string (
        "[mesh]\nbind = tcp://127.0.0.1:1\n"
        "[db.a]\ntype = sqlite\ndsn = /tmp/a.db\n"
        "[db.b]\ntype = sqlite\ndsn = /tmp/b.db\n"
        "[results.r]\ntype = postgres\ndsn = host=x\nresults_table = results_%s_x\n"
        "[queue.remote]\ndispatcher = tcp://10.0.0.1:6070\n", err);
    assert (config);
    dbt_tasks_t *tasks = dbt_tasks_new ();
    const char *text = "-- name: t1\n-- db: a\nSELECT ?;\n\n-- name: t2\n-- queue: q2\nSELECT 1;\n";
    assert (dbt_tasks_parse (tasks, text, strlen (text), "t.sql", err) == 0);
    assert (dbt_tasks_bind (tasks, config, err) == 0);
    dbt_tasks_lookup (tasks, "t1")->nparams = 1;
    dbt_tasks_lookup (tasks, "t2")->nparams = 0;
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_job_t *job = NULL;

    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "task", "t1");
    dbt_mpw_kstr (w, "id", "j1");
    dbt_mpw_str (w, "args");
    dbt_mpw_array (w);
    dbt_mpw_str (w, "x");
    dbt_mpw_end (w);
    dbt_mpw_ku64 (w, "retries", 3);
    dbt_mpw_ki64 (w, "eta", 1000);
    dbt_mpw_end (w);
    assert (s_try (config, tasks, w, &job, err) == 0);
    assert (streq (job->id, "j1") && streq (job->queue, "default") && streq (job->results, "r"));
    assert (streq (job->table, "results_j1_x") && job->max_retries == 3 && job->eta_ms == 1000);
    assert (job->nargs == 1 && streq (job->args [0], "x") && job->state == DBT_STATE_PENDING);
    dbt_job_destroy (&job);

    //  Generated id, task queue, any db when the task names none.
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "task", "t2");
    dbt_mpw_kstr (w, "db", "b");
    dbt_mpw_kstr (w, "id", "");
    dbt_mpw_end (w);
    assert (s_try (config, tasks, w, &job, err) == 0);
    assert (strncmp (job->id, "job_", 4) == 0 && strlen (job->id) == 40);
    assert (streq (job->queue, "q2") && streq (job->db, "b"));
    dbt_job_destroy (&job);

    struct {
        const char *task, *id, *queue, *db;
        int nargs;
        uint64_t retries;
        int code;
        const char *message;
    } cases [] = {
        { "nope", "j", NULL, NULL, 0, 0, 404, "unrecognized task: nope" },
        { "t1", "j", NULL, NULL, 0, 0, 400, "expects 1 args, got 0" },
        { "t1", "j", NULL, NULL, 2, 0, 400, "expects 1 args, got 2" },
        { "t1", "x\"; DROP TABLE t; --", NULL, NULL, 1, 0, 400, "invalid characters" },
        { "t1", "j", NULL, "b", 1, 0, 400, "unknown db 'b'" },
        { "t1", "j", "bad queue", NULL, 1, 0, 400, "invalid queue" },
        { "t1", "j", "remote", NULL, 1, 0, 421, "dispatched by tcp://10.0.0.1:6070" },
        { "t1", "j", NULL, NULL, 1, DBT_MAX_RETRIES + 1, 400, "retries" },
        { "t1", "a123456789b123456789c123456789d123456789e123456789f1234", NULL, NULL, 1, 0, 400,
          "exceeds 63 characters" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "task", cases [i].task);
        dbt_mpw_kstr (w, "id", cases [i].id);
        if (cases [i].queue)
            dbt_mpw_kstr (w, "queue", cases [i].queue);
        if (cases [i].db)
            dbt_mpw_kstr (w, "db", cases [i].db);
        dbt_mpw_str (w, "args");
        dbt_mpw_array (w);
        for (int a = 0; a < cases [i].nargs; a++)
            dbt_mpw_str (w, "v");
        dbt_mpw_end (w);
        dbt_mpw_ku64 (w, "retries", cases [i].retries);
        dbt_mpw_end (w);
        int code = s_try (config, tasks, w, &job, err);
        if (code != cases [i].code || !strstr (err, cases [i].message))
            fprintf (stderr, "submit case %zu: got %d '%s'\n", i, code, err);
        assert (code == cases [i].code && strstr (err, cases [i].message) && job == NULL);
    }
    //  Time bounds: a ttl, results_ttl or eta beyond them is refused
    //  with the bound; the bound itself is fine.
    struct {
        const char *key;
        int64_t value;
        int code;
    } bounds [] = {
        { "ttl", DBT_MAX_TTL_MS, 0 }, { "ttl", DBT_MAX_TTL_MS + 1, 400 },
        { "results_ttl", DBT_MAX_TTL_MS + 1, 400 }, { "ttl", INT64_MAX, 400 },
        { "eta", DBT_MAX_ETA_MS, 0 }, { "eta", DBT_MAX_ETA_MS + 1, 400 },
    };
    for (size_t i = 0; i < sizeof (bounds) / sizeof (bounds [0]); i++) {
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "task", "t1");
        dbt_mpw_str (w, "args");
        dbt_mpw_array (w);
        dbt_mpw_str (w, "v");
        dbt_mpw_end (w);
        dbt_mpw_ki64 (w, bounds [i].key, bounds [i].value);
        dbt_mpw_end (w);
        int code = s_try (config, tasks, w, &job, err);
        assert (code == bounds [i].code);
        assert (code == 0 || strstr (err, bounds [i].key [0] == 'e' ? "year 10000" : "315360000 seconds"));
        dbt_job_destroy (&job);
    }
    //  Type errors.
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "task", "t1");
    dbt_mpw_str (w, "args");
    dbt_mpw_array (w);
    dbt_mpw_u64 (w, 5);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    assert (s_try (config, tasks, w, &job, err) == 400 && strstr (err, "arg 1"));
    dbt_mpw_map (w);
    dbt_mpw_ku64 (w, "task", 5);
    dbt_mpw_end (w);
    assert (s_try (config, tasks, w, &job, err) == 400);
    dbt_mpw_array (w);
    dbt_mpw_end (w);
    assert (s_try (config, tasks, w, &job, err) == 400);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "task", "t2");
    dbt_mpw_ki64 (w, "eta", -5);
    dbt_mpw_end (w);
    assert (s_try (config, tasks, w, &job, err) == 400);

    //  Groups.
    dbt_group_t *group = NULL;
    dbt_mpw_map (w);
    dbt_mpw_ku64 (w, "concurrency", 2);
    dbt_mpw_end (w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *reader = dbt_mpr_new (data, len, err);
    assert (dbt_submit_group (dbt_mpr_root (reader), &group, err) == 0);
    assert (group->concurrency == 2 && strlen (group->id) == 36);
    dbt_group_destroy (&group);
    dbt_mpr_destroy (&reader);
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "g x");
    dbt_mpw_end (w);
    data = dbt_mpw_data (w, &len);
    reader = dbt_mpr_new (data, len, err);
    assert (dbt_submit_group (dbt_mpr_root (reader), &group, err) == 400 && !group);
    dbt_mpr_destroy (&reader);

    char *queue = dbt_submit_queue (config, tasks, "t2", NULL);
    assert (streq (queue, "q2"));
    free (queue);
    queue = dbt_submit_queue (config, tasks, "t2", "other");
    assert (streq (queue, "other"));
    free (queue);
    assert (dbt_submit_queue (config, tasks, "nope", NULL) == NULL);
    char *table = dbt_submit_table_name ("r_%s_t", "id");
    assert (streq (table, "r_id_t"));
    free (table);

    dbt_mpw_destroy (&w);
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);
    if (verbose)
        printf ("submit: ok\n");
}
#endif  //  DBT_SELFTEST
