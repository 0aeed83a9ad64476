/*  =========================================================================
    dbt_job - job and group records

    See dbt_job.h. Field names on the wire and in LMDB are short and stable;
    unknown fields are ignored so newer nodes can add some.
    =========================================================================
*/
#include "dbt_classes.h"

static const char *s_state_names [] = { "PENDING", "STARTED", "SUCCESS", "FAILURE", "RETRY" };

const char *
dbt_state_name (dbt_state_t state)
{
    if ((int) state < 0 || state > DBT_STATE_RETRY)
        return "UNKNOWN";
    return s_state_names [state];
}

int64_t
dbt_job_results_expiry (const dbt_job_t *self)
{
    if (self->state != DBT_STATE_SUCCESS || !self->table || self->expired || self->results_ttl_ms <= 0)
        return 0;
    return self->finished_ms + self->results_ttl_ms;
}

char *
dbt_job_table_key (const char *results, const char *table)
{
    char *key = dbt_printf ("%s/%s", results ? results : "", table ? table : "");
    for (char *p = key; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
    return key;
}

bool
dbt_state_final (dbt_state_t state)
{
    return state == DBT_STATE_SUCCESS || state == DBT_STATE_FAILURE;
}

dbt_job_t *
dbt_job_new (void)
{
    dbt_job_t *self = (dbt_job_t *) dbt_malloc (sizeof (dbt_job_t));
    self->state = DBT_STATE_PENDING;
    return self;
}

static void
s_free_args (dbt_job_t *self)
{
    for (size_t i = 0; i < self->nargs; i++)
        free (self->args [i]);
    free (self->args);
    self->args = NULL;
    self->nargs = 0;
}

void
dbt_job_destroy (dbt_job_t **self_p)
{
    assert (self_p);
    dbt_job_t *self = *self_p;
    if (!self)
        return;
    free (self->id);
    free (self->task);
    free (self->queue);
    s_free_args (self);
    free (self->db);
    free (self->results);
    free (self->table);
    free (self->group_id);
    free (self->error);
    free (self->worker);
    free (self);
    *self_p = NULL;
}

void
dbt_job_set (char **field, const char *value)
{
    char *copy = dbt_strdup (value);
    free (*field);
    *field = copy;
}

void
dbt_job_set_args (dbt_job_t *self, const char *const *values, size_t count)
{
    s_free_args (self);
    if (count == 0)
        return;
    self->args = (char **) dbt_malloc (count * sizeof (char *));
    for (size_t i = 0; i < count; i++)
        self->args [i] = dbt_strdup (values [i]);
    self->nargs = count;
}

dbt_job_t *
dbt_job_dup (const dbt_job_t *self)
{
    dbt_job_t *copy = dbt_job_new ();
    *copy = *self;
    copy->id = dbt_strdup (self->id);
    copy->task = dbt_strdup (self->task);
    copy->queue = dbt_strdup (self->queue);
    copy->args = NULL;
    copy->nargs = 0;
    dbt_job_set_args (copy, (const char *const *) self->args, self->nargs);
    copy->db = dbt_strdup (self->db);
    copy->results = dbt_strdup (self->results);
    copy->table = dbt_strdup (self->table);
    copy->group_id = dbt_strdup (self->group_id);
    copy->error = dbt_strdup (self->error);
    copy->worker = dbt_strdup (self->worker);
    return copy;
}

//  --------------------------------------------------------------------------
//  Codec

void
dbt_job_pack (const dbt_job_t *self, dbt_mpw_t *w)
{
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", self->id);
    dbt_mpw_kstr (w, "task", self->task);
    dbt_mpw_kstr (w, "queue", self->queue);
    dbt_mpw_str (w, "args");
    dbt_mpw_array (w);
    for (size_t i = 0; i < self->nargs; i++)
        dbt_mpw_str (w, self->args [i]);
    dbt_mpw_end (w);
    if (self->db)
        dbt_mpw_kstr (w, "db", self->db);
    if (self->results)
        dbt_mpw_kstr (w, "results", self->results);
    if (self->table)
        dbt_mpw_kstr (w, "table", self->table);
    if (self->group_id)
        dbt_mpw_kstr (w, "group", self->group_id);
    dbt_mpw_ki64 (w, "eta", self->eta_ms);
    dbt_mpw_ki64 (w, "ttl", self->ttl_ms);
    dbt_mpw_ku64 (w, "retries", self->max_retries);
    dbt_mpw_ki64 (w, "rttl", self->results_ttl_ms);
    dbt_mpw_ku64 (w, "state", (uint64_t) self->state);
    dbt_mpw_ku64 (w, "attempts", self->attempts);
    dbt_mpw_ku64 (w, "lost", self->interruptions);
    dbt_mpw_ku64 (w, "seq", self->seq);
    if (self->frame)
        dbt_mpw_ku64 (w, "frame", self->frame);
    dbt_mpw_ku64 (w, "rows", self->rows);
    if (self->error)
        dbt_mpw_kstr (w, "error", self->error);
    if (self->worker)
        dbt_mpw_kstr (w, "worker", self->worker);
    dbt_mpw_ki64 (w, "created", self->created_ms);
    dbt_mpw_ki64 (w, "started", self->started_ms);
    dbt_mpw_ki64 (w, "finished", self->finished_ms);
    dbt_mpw_kbool (w, "cancelled", self->cancelled);
    dbt_mpw_kbool (w, "expired", self->expired);
    dbt_mpw_end (w);
}

//  Read a u32 field.
static int
s_u32 (const msgpack_object *map, const char *key, uint32_t *value, char *err)
{
    uint64_t v = *value;
    if (dbt_mp_field_u64 (map, key, false, &v, err))
        return -1;
    if (v > UINT32_MAX) {
        dbt_err_set (err, "field '%s' is out of range", key);
        return -1;
    }
    *value = (uint32_t) v;
    return 0;
}

dbt_job_t *
dbt_job_unpack (const msgpack_object *map, char *err)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        dbt_err_set (err, "job record must be a map");
        return NULL;
    }
    dbt_job_t *self = dbt_job_new ();
    uint64_t state = 0;
    if (dbt_mp_field_str (map, "id", true, &self->id, err)
    ||  dbt_mp_field_str (map, "task", true, &self->task, err)
    ||  dbt_mp_field_str (map, "queue", true, &self->queue, err)
    ||  dbt_mp_field_str (map, "db", false, &self->db, err)
    ||  dbt_mp_field_str (map, "results", false, &self->results, err)
    ||  dbt_mp_field_str (map, "table", false, &self->table, err)
    ||  dbt_mp_field_str (map, "group", false, &self->group_id, err)
    ||  dbt_mp_field_i64 (map, "eta", false, &self->eta_ms, err)
    ||  dbt_mp_field_i64 (map, "ttl", false, &self->ttl_ms, err)
    ||  s_u32 (map, "retries", &self->max_retries, err)
    ||  dbt_mp_field_i64 (map, "rttl", false, &self->results_ttl_ms, err)
    ||  dbt_mp_field_u64 (map, "state", false, &state, err)
    ||  s_u32 (map, "attempts", &self->attempts, err)
    ||  s_u32 (map, "lost", &self->interruptions, err)
    ||  dbt_mp_field_u64 (map, "seq", false, &self->seq, err)
    ||  dbt_mp_field_u64 (map, "frame", false, &self->frame, err)
    ||  dbt_mp_field_u64 (map, "rows", false, &self->rows, err)
    ||  dbt_mp_field_str (map, "error", false, &self->error, err)
    ||  dbt_mp_field_str (map, "worker", false, &self->worker, err)
    ||  dbt_mp_field_i64 (map, "created", false, &self->created_ms, err)
    ||  dbt_mp_field_i64 (map, "started", false, &self->started_ms, err)
    ||  dbt_mp_field_i64 (map, "finished", false, &self->finished_ms, err)
    ||  dbt_mp_field_bool (map, "cancelled", false, &self->cancelled, err)
    ||  dbt_mp_field_bool (map, "expired", false, &self->expired, err))
        goto fail;
    if (state > DBT_STATE_RETRY) {
        dbt_err_set (err, "field 'state' is out of range");
        goto fail;
    }
    self->state = (dbt_state_t) state;
    if (!dbt_id_valid (self->id)) {
        dbt_err_set (err, "invalid job id");
        goto fail;
    }
    if (self->ttl_ms < 0 || self->eta_ms < 0 || self->results_ttl_ms < 0) {
        dbt_err_set (err, "negative eta or ttl");
        goto fail;
    }
    const msgpack_object *args = dbt_mp_get (map, "args");
    if (args && args->type != MSGPACK_OBJECT_NIL) {
        if (args->type != MSGPACK_OBJECT_ARRAY) {
            dbt_err_set (err, "field 'args' must be an array");
            goto fail;
        }
        size_t n = args->via.array.size;
        if (n) {
            self->args = (char **) dbt_malloc (n * sizeof (char *));
            self->nargs = n;
        }
        for (size_t i = 0; i < n; i++) {
            const msgpack_object *arg = &args->via.array.ptr [i];
            if (arg->type == MSGPACK_OBJECT_NIL)
                continue;
            const char *str;
            size_t len;
            if (dbt_mp_str (arg, &str, &len) || !dbt_utf8_valid (str, len)) {
                dbt_err_set (err, "arg %zu must be a UTF-8 string or nil", i + 1);
                goto fail;
            }
            self->args [i] = dbt_strndup (str, len);
        }
    }
    return self;
fail:
    dbt_job_destroy (&self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Groups

dbt_group_t *
dbt_group_new (void)
{
    return (dbt_group_t *) dbt_malloc (sizeof (dbt_group_t));
}

void
dbt_group_destroy (dbt_group_t **self_p)
{
    assert (self_p);
    dbt_group_t *self = *self_p;
    if (!self)
        return;
    free (self->id);
    for (size_t i = 0; i < self->njobs; i++)
        free (self->job_ids [i]);
    free (self->job_ids);
    free (self);
    *self_p = NULL;
}

void
dbt_group_add (dbt_group_t *self, const char *job_id)
{
    self->job_ids = (char **) dbt_realloc (self->job_ids, (self->njobs + 1) * sizeof (char *));
    self->job_ids [self->njobs++] = dbt_strdup (job_id);
}

void
dbt_group_pack (const dbt_group_t *self, dbt_mpw_t *w)
{
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", self->id);
    dbt_mpw_ku64 (w, "concurrency", self->concurrency);
    dbt_mpw_ki64 (w, "created", self->created_ms);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_array (w);
    for (size_t i = 0; i < self->njobs; i++)
        dbt_mpw_str (w, self->job_ids [i]);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
}

dbt_group_t *
dbt_group_unpack (const msgpack_object *map, char *err)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        dbt_err_set (err, "group record must be a map");
        return NULL;
    }
    dbt_group_t *self = dbt_group_new ();
    if (dbt_mp_field_str (map, "id", true, &self->id, err)
    ||  s_u32 (map, "concurrency", &self->concurrency, err)
    ||  dbt_mp_field_i64 (map, "created", false, &self->created_ms, err))
        goto fail;
    const msgpack_object *jobs = dbt_mp_get (map, "jobs");
    if (!jobs || jobs->type != MSGPACK_OBJECT_ARRAY) {
        dbt_err_set (err, "field 'jobs' must be an array");
        goto fail;
    }
    for (uint32_t i = 0; i < jobs->via.array.size; i++) {
        const char *str;
        size_t len;
        if (dbt_mp_str (&jobs->via.array.ptr [i], &str, &len)) {
            dbt_err_set (err, "group member %u must be a string", i + 1);
            goto fail;
        }
        char *id = dbt_strndup (str, len);
        bool valid = dbt_id_valid (id);
        if (valid)
            dbt_group_add (self, id);
        free (id);
        if (!valid) {
            dbt_err_set (err, "group member %u has an invalid id", i + 1);
            goto fail;
        }
    }
    return self;
fail:
    dbt_group_destroy (&self);
    return NULL;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

void
dbt_job_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    assert (streq (dbt_state_name (DBT_STATE_RETRY), "RETRY"));
    assert (streq (dbt_state_name ((dbt_state_t) 9), "UNKNOWN"));
    assert (dbt_state_final (DBT_STATE_SUCCESS) && !dbt_state_final (DBT_STATE_RETRY));

    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->id, "job-1");
    dbt_job_set (&job->task, "report");
    dbt_job_set (&job->queue, "q");
    const char *args [] = { "a", NULL, "日本" };
    dbt_job_set_args (job, args, 3);
    dbt_job_set (&job->results, "main");
    dbt_job_set (&job->table, "results_job-1");
    dbt_job_set (&job->group_id, "g");
    job->eta_ms = 1700000000000;
    job->ttl_ms = 5000;
    job->max_retries = 3;
    job->state = DBT_STATE_RETRY;
    job->attempts = 2;
    job->seq = 99;
    job->rows = 1ULL << 40;
    dbt_job_set (&job->error, "boom");
    job->cancelled = true;

    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_job_pack (job, w);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *r = dbt_mpr_new (data, len, err);
    assert (r);
    dbt_job_t *copy = dbt_job_unpack (dbt_mpr_root (r), err);
    assert (copy);
    assert (streq (copy->id, "job-1") && streq (copy->task, "report") && streq (copy->queue, "q"));
    assert (copy->nargs == 3 && streq (copy->args [0], "a") && copy->args [1] == NULL);
    assert (streq (copy->args [2], "日本"));
    assert (copy->db == NULL && streq (copy->results, "main") && streq (copy->group_id, "g"));
    assert (copy->eta_ms == job->eta_ms && copy->ttl_ms == 5000 && copy->max_retries == 3);
    assert (copy->state == DBT_STATE_RETRY && copy->attempts == 2 && copy->seq == 99);
    assert (copy->rows == (1ULL << 40) && streq (copy->error, "boom") && copy->cancelled);
    assert (!copy->expired && dbt_job_results_expiry (copy) == 0);
    copy->state = DBT_STATE_SUCCESS;
    copy->finished_ms = 1000;
    copy->results_ttl_ms = 500;
    assert (dbt_job_results_expiry (copy) == 1500);
    copy->expired = true;
    assert (dbt_job_results_expiry (copy) == 0);
    dbt_job_t *dup = dbt_job_dup (copy);
    assert (streq (dup->args [2], "日本") && dup->args != copy->args);
    dbt_job_destroy (&dup);
    dbt_job_destroy (&copy);
    dbt_mpr_destroy (&r);

    //  Bad records are refused with a message.
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "x\"; DROP TABLE t; --");
    dbt_mpw_kstr (w, "task", "t");
    dbt_mpw_kstr (w, "queue", "q");
    dbt_mpw_end (w);
    data = dbt_mpw_data (w, &len);
    r = dbt_mpr_new (data, len, err);
    assert (dbt_job_unpack (dbt_mpr_root (r), err) == NULL && strstr (err, "id"));
    dbt_mpr_destroy (&r);
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "ok");
    dbt_mpw_kstr (w, "task", "t");
    dbt_mpw_kstr (w, "queue", "q");
    dbt_mpw_ku64 (w, "state", 7);
    dbt_mpw_end (w);
    data = dbt_mpw_data (w, &len);
    r = dbt_mpr_new (data, len, err);
    assert (dbt_job_unpack (dbt_mpr_root (r), err) == NULL && strstr (err, "state"));
    dbt_mpr_destroy (&r);
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "ok");
    dbt_mpw_kstr (w, "task", "t");
    dbt_mpw_kstr (w, "queue", "q");
    dbt_mpw_str (w, "args");
    dbt_mpw_array (w);
    dbt_mpw_u64 (w, 5);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    data = dbt_mpw_data (w, &len);
    r = dbt_mpr_new (data, len, err);
    assert (dbt_job_unpack (dbt_mpr_root (r), err) == NULL && strstr (err, "arg 1"));
    dbt_mpr_destroy (&r);
    assert (dbt_job_unpack (NULL, err) == NULL);

    dbt_group_t *group = dbt_group_new ();
    group->id = dbt_strdup ("grp");
    group->concurrency = 2;
    dbt_group_add (group, "a");
    dbt_group_add (group, "b");
    dbt_mpw_reset (w);
    dbt_group_pack (group, w);
    data = dbt_mpw_data (w, &len);
    r = dbt_mpr_new (data, len, err);
    dbt_group_t *gcopy = dbt_group_unpack (dbt_mpr_root (r), err);
    assert (gcopy && gcopy->njobs == 2 && streq (gcopy->job_ids [1], "b") && gcopy->concurrency == 2);
    dbt_group_destroy (&gcopy);
    dbt_group_destroy (&group);
    dbt_mpr_destroy (&r);

    dbt_job_destroy (&job);
    dbt_job_destroy (&job);
    dbt_mpw_destroy (&w);
    if (verbose)
        printf ("job: ok\n");
}
#endif  //  DBT_SELFTEST
