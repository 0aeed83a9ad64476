/*  =========================================================================
    dbt_testing - helpers shared by the modules' self tests

    See dbt_testing.h.
    =========================================================================
*/
#include "dbt_classes.h"
#include <ftw.h>

char *
dbt_testing_tmpdir (const char *name)
{
    char *path = dbt_printf ("/tmp/dbt-%s-XXXXXX", name);
    assert (mkdtemp (path));
    return path;
}

static int
s_remove (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove (path);
}

void
dbt_testing_rmtree (char **path_p)
{
    assert (path_p);
    if (*path_p) {
        nftw (*path_p, s_remove, 16, FTW_DEPTH | FTW_PHYS);
        free (*path_p);
        *path_p = NULL;
    }
}

int
dbt_testing_submit (dbt_client_t *client, const dbt_testing_job_t *job)
{
    char err [DBT_ERRMSG_LEN];
    dbt_mpw_t *w = dbt_client_begin (client);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_array (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "task", job->task);
    if (job->id)
        dbt_mpw_kstr (w, "id", job->id);
    if (job->queue)
        dbt_mpw_kstr (w, "queue", job->queue);
    if (job->eta)
        dbt_mpw_ki64 (w, "eta", job->eta);
    if (job->ttl)
        dbt_mpw_ki64 (w, "ttl", job->ttl);
    if (job->results_ttl)
        dbt_mpw_ki64 (w, "results_ttl", job->results_ttl);
    if (job->retries)
        dbt_mpw_ku64 (w, "retries", job->retries);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    if (job->group) {
        dbt_mpw_str (w, "group");
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "id", job->group);
        dbt_mpw_ku64 (w, "concurrency", job->concurrency);
        dbt_mpw_end (w);
    }
    dbt_reply_t *reply = NULL;
    assert (dbt_client_call (client, DBT_C_SUBMIT, 3000, &reply, err) == 0);
    int code = reply->code;
    dbt_reply_destroy (&reply);
    return code;
}

dbt_job_t *
dbt_testing_wait (dbt_store_t *store, const char *id, dbt_state_t state, int ms)
{
    char err [DBT_ERRMSG_LEN];
    int64_t deadline = dbt_clock_ms () + ms;
    while (true) {
        dbt_job_t *job = NULL;
        if (dbt_store_job (store, id, &job, err) == 0 && job->state == state)
            return job;
        dbt_job_destroy (&job);
        if (dbt_clock_ms () >= deadline)
            return NULL;
        zclock_sleep (10);
    }
}

dbt_testing_rig_t *
dbt_testing_rig_new (const char *name, const char *app_ini, const char *tasks, int runners)
{
    char err [DBT_ERRMSG_LEN];
    dbt_testing_rig_t *self = (dbt_testing_rig_t *) dbt_malloc (sizeof (dbt_testing_rig_t));
    self->dir = dbt_testing_tmpdir (name);
    char *ini = dbt_printf (
        "[app]\ndata_dir = %s\n%s\n"
        "[mesh]\nbind = inproc://dbt-rig-%s\nheartbeat_interval = 100ms\n"
        "[db.src]\ntype = sqlite\ndsn = %s/src.db\nsample_data = true\n"
        "[results.res]\ntype = sqlite\ndsn = %s/res.db\n",
        self->dir, app_ini ? app_ini : "", name, self->dir, self->dir);
    self->config = dbt_config_from_string (ini, err);
    free (ini);
    assert (self->config);
    self->tasks = dbt_tasks_new ();
    assert (dbt_tasks_parse (self->tasks, tasks, strlen (tasks), "t.sql", err) == 0);
    assert (dbt_tasks_bind (self->tasks, self->config, err) == 0);
    self->store = dbt_store_open (self->dir, 64 << 20, 0, err);
    assert (self->store);
    self->pools = dbt_pools_new (self->config);
    self->dargs = (dbt_dispatcher_args_t) { self->config, self->tasks, self->store, NULL, NULL };
    self->dispatcher = zactor_new (dbt_dispatcher_actor, &self->dargs);
    self->queues [0] = "default";
    self->wargs = (dbt_worker_args_t) { { self->config, self->tasks, self->pools },
                                        self->config->mesh_bind, NULL, self->queues, 1, runners };
    self->worker = zactor_new (dbt_worker_actor, &self->wargs);
    self->client = dbt_client_new (self->config->mesh_bind, err);
    assert (self->dispatcher && self->worker && self->client);
    return self;
}

void
dbt_testing_rig_destroy (dbt_testing_rig_t **self_p)
{
    assert (self_p);
    dbt_testing_rig_t *self = *self_p;
    if (!self)
        return;
    dbt_client_destroy (&self->client);
    zactor_destroy (&self->worker);
    zactor_destroy (&self->dispatcher);
    dbt_pools_destroy (&self->pools);
    dbt_store_destroy (&self->store);
    dbt_tasks_destroy (&self->tasks);
    dbt_config_destroy (&self->config);
    dbt_testing_rmtree (&self->dir);
    free (self);
    *self_p = NULL;
}
