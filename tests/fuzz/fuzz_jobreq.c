/*  =========================================================================
    fuzz_jobreq - fuzz target for the HTTP job and group request decoder

    Input: one flags byte, then a request body. Bit 0 of the flags ('g'
    has it, 'j' has not, so seeds read as text): decode it as a POST
    /groups body (dbt_jobreq_group), else as a POST
    /tasks/t/jobs body (dbt_jobreq_job, task "t" from the URL).

    A body that decodes must give job maps that the mesh's reader accepts
    (dbt_mpr_new), one per job, each with a task, string-or-nil args, a
    non-negative eta, retries within DBT_MAX_RETRIES and non-negative ttls;
    the same bytes again, and after appended whitespace; a refusal after an
    appended "x" (nothing may follow the JSON value); and the route must
    name the first job's task. Each map is then checked by the dispatcher's
    own request check (dbt_submit_job), which accepts it or refuses it with
    a 4xx code. A refused body must give an error and no route.

    Seed corpus: tests/fixtures/jobreq/ (valid_* decode, broken_* are
    refused). Build and run: see tests/README.md.
    =========================================================================
*/
#include "../../src/dbt_classes.h"
#include "fuzz.h"

//  Decode body as a job or a group into a fresh writer (the jobs array
//  closed); returns the code, the writer in *w_p (caller destroys).
//  Two decodes of one body differ at most in the ids made for jobs that
//  came without one (job_<uuid>): every other field is equal.
static bool
s_only_made_ids_differ (const char *a, const char *b, size_t len)
{
    char err [DBT_ERRMSG_LEN];
    dbt_mpr_t *ra = dbt_mpr_new (a, len, err), *rb = dbt_mpr_new (b, len, err);
    bool same = ra && rb;
    const msgpack_object *la = same ? dbt_mpr_root (ra) : NULL, *lb = same ? dbt_mpr_root (rb) : NULL;
    same = same && la->via.array.size == lb->via.array.size;
    for (uint32_t i = 0; same && i < la->via.array.size; i++) {
        const msgpack_object *ma = &la->via.array.ptr [i], *mb = &lb->via.array.ptr [i];
        same = ma->via.map.size == mb->via.map.size;
        for (uint32_t k = 0; same && k < ma->via.map.size; k++) {
            const msgpack_object_kv *ka = &ma->via.map.ptr [k], *kb = &mb->via.map.ptr [k];
            same = msgpack_object_equal (ka->key, kb->key);
            if (same && ka->key.via.str.size == 2 && memcmp (ka->key.via.str.ptr, "id", 2) == 0)
                same = msgpack_object_equal (ka->val, kb->val)
                    || (ka->val.via.str.size == 40 && memcmp (ka->val.via.str.ptr, "job_", 4) == 0
                        && kb->val.via.str.size == 40 && memcmp (kb->val.via.str.ptr, "job_", 4) == 0);
            else
            if (same)
                same = msgpack_object_equal (ka->val, kb->val);
        }
    }
    dbt_mpr_destroy (&ra);
    dbt_mpr_destroy (&rb);
    return same;
}

static int
s_decode (const char *body, size_t len, bool group, dbt_mpw_t **w_p,
          dbt_jobreq_route_t *route, dbt_jobreq_group_t *info, char *err)
{
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_array (w);
    int rc = group ? dbt_jobreq_group (body, len, w, info, err)
                   : dbt_jobreq_job (body, len, "t", w, route, err);
    dbt_mpw_end (w);
    assert (rc == 0 || (rc == DBT_EINVAL && err [0]));
    *w_p = w;
    return rc;
}

//  Check one job map as the dispatcher would receive it.
static void
s_check_map (const msgpack_object *map, const char **task, size_t *task_len)
{
    char err [DBT_ERRMSG_LEN];
    assert (map->type == MSGPACK_OBJECT_MAP);
    const msgpack_object *value = dbt_mp_get (map, "task");
    assert (value && dbt_mp_str (value, task, task_len) == 0 && !memchr (*task, 0, *task_len));
    const msgpack_object *args = dbt_mp_get (map, "args");
    assert (args && args->type == MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < args->via.array.size; i++) {
        const msgpack_object *arg = &args->via.array.ptr [i];
        const char *str;
        size_t len;
        assert (arg->type == MSGPACK_OBJECT_NIL || (dbt_mp_str (arg, &str, &len) == 0
                                                    && !memchr (str, 0, len)));
    }
    int64_t eta = -1, ttl = 0, results_ttl = 0;
    uint64_t retries = 0;
    assert (dbt_mp_field_i64 (map, "eta", true, &eta, err) == 0 && eta >= 0);
    assert (dbt_mp_field_i64 (map, "ttl", false, &ttl, err) == 0 && ttl >= 0);
    assert (dbt_mp_field_i64 (map, "results_ttl", false, &results_ttl, err) == 0
            && results_ttl >= 0);
    assert (dbt_mp_field_u64 (map, "retries", true, &retries, err) == 0
            && retries <= DBT_MAX_RETRIES);
    dbt_config_t *config;
    dbt_tasks_t *tasks;
    dbt_fuzz_registry (&config, &tasks);
    dbt_job_t *job = NULL;
    int code = dbt_submit_job (config, tasks, NULL, map, 3, &job, err);
    assert (code == 0 ? job != NULL : job == NULL && code >= 400 && code < 500);
    if (job)
        assert (job->id && dbt_id_valid (job->id) && job->queue && job->table);
    dbt_job_destroy (&job);
}

int
dbt_fuzz_one (const uint8_t *data, size_t size, char *err)
{
    if (size == 0) {
        dbt_err_set (err, "input needs a flags byte");
        return -1;
    }
    bool group = data [0] & 1;
    const char *body = (const char *) data + 1;
    size_t len = size - 1;
    dbt_jobreq_route_t route = { 0 };
    dbt_jobreq_group_t info = { 0 };
    dbt_mpw_t *w = NULL;
    int rc = s_decode (body, len, group, &w, &route, &info, err);
    if (rc) {
        assert (!route.task && !route.queue && !info.id && !info.first.task && !info.njobs);
        dbt_mpw_destroy (&w);
        return -1;
    }
    //  What the dispatcher gets
    size_t out_len;
    const char *out = dbt_mpw_data (w, &out_len);
    char perr [DBT_ERRMSG_LEN];
    dbt_mpr_t *reader = dbt_mpr_new (out, out_len, perr);
    assert (reader);
    const msgpack_object *root = dbt_mpr_root (reader);
    assert (root->type == MSGPACK_OBJECT_ARRAY);
    assert (root->via.array.size == (group ? info.njobs : 1));
    for (uint32_t i = 0; i < root->via.array.size; i++) {
        const char *task;
        size_t task_len;
        s_check_map (&root->via.array.ptr [i], &task, &task_len);
        if (i == 0) {
            const char *want = group ? info.first.task : route.task;
            assert (want && strlen (want) == task_len && memcmp (want, task, task_len) == 0);
        }
        if (group)
            assert (task_len > 0);
    }
    if (group) {
        assert (info.concurrency >= 0);
        assert (!info.id || *info.id);
        assert (info.njobs ? info.first.task != NULL : info.first.task == NULL);
    }
    else
        assert (route.task && streq (route.task, "t"));
    dbt_mpr_destroy (&reader);

    //  Whitespace after the body changes nothing; anything else is refused
    char *longer = (char *) dbt_malloc (len + 3);
    memcpy (longer, body, len);
    memcpy (longer + len, " \n", 2);
    dbt_jobreq_route_t route2 = { 0 };
    dbt_jobreq_group_t info2 = { 0 };
    dbt_mpw_t *w2 = NULL;
    char err2 [DBT_ERRMSG_LEN];
    assert (s_decode (longer, len + 2, group, &w2, &route2, &info2, err2) == 0);
    size_t again_len;
    const char *again = dbt_mpw_data (w2, &again_len);
    assert (again_len == out_len);
    if (memcmp (again, out, out_len) != 0)
        assert (s_only_made_ids_differ (out, again, out_len));
    dbt_mpw_destroy (&w2);
    dbt_jobreq_route_free (&route2);
    dbt_jobreq_group_free (&info2);
    longer [len] = 'x';
    assert (s_decode (longer, len + 1, group, &w2, &route2, &info2, err2) == DBT_EINVAL);
    assert (streq (err2, group ? "error parsing JSON body" : "error parsing request JSON"));
    dbt_mpw_destroy (&w2);
    free (longer);

    dbt_jobreq_route_free (&route);
    dbt_jobreq_group_free (&info);
    dbt_mpw_destroy (&w);
    return 0;
}
