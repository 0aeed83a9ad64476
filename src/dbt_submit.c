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
dbt_submit_job (const dbt_config_t *config, dbt_tasks_t *tasks, const msgpack_object *spec,
                uint64_t random, dbt_job_t **job_p, char *err)
{
    *job_p = NULL;
    if (!spec || spec->type != MSGPACK_OBJECT_MAP) {
        dbt_err_set (err, "each job must be a map");
        return 400;
    }
    dbt_job_t *job = dbt_job_new ();
    uint64_t retries = 0;
    int64_t eta = 0, ttl = -1, results_ttl = 0;
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
    if (eta < 0 || results_ttl < 0 || ttl < -1) {
        dbt_err_set (err, "eta and ttl must not be negative");
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
    if (!dbt_config_dispatches (config, job->queue)) {
        dbt_err_set (err, "queue '%s' is dispatched by %s, not by this node", job->queue,
                     dbt_config_queue_dispatcher (config, job->queue));
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
    job->results_ttl_ms = results_ttl;
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
