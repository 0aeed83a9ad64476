/*  =========================================================================
    dbt_request - the one encoder of job requests (SUBMIT's job maps)

    See dbt_request.h.
    =========================================================================
*/
#include "dbt_classes.h"

void
dbt_request_init (dbt_request_t *req)
{
    memset (req, 0, sizeof (*req));
    req->ttl_ms = -1;
    req->results_ttl_ms = -1;
}

void
dbt_request_job (dbt_mpw_t *w, const dbt_request_t *req)
{
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "task", req->task);
    if (req->id)
        dbt_mpw_kstr (w, "id", req->id);
    if (req->queue)
        dbt_mpw_kstr (w, "queue", req->queue);
    if (req->db)
        dbt_mpw_kstr (w, "db", req->db);
    dbt_mpw_str (w, "args");
    dbt_mpw_array (w);
    for (size_t i = 0; i < req->nargs; i++)
        dbt_mpw_str (w, req->args [i]);
    dbt_mpw_end (w);
    dbt_mpw_ki64 (w, "eta", req->eta_ms);
    if (req->ttl_ms >= 0)
        dbt_mpw_ki64 (w, "ttl", req->ttl_ms);
    if (req->results_ttl_ms >= 0)
        dbt_mpw_ki64 (w, "results_ttl", req->results_ttl_ms);
    dbt_mpw_ku64 (w, "retries", (uint64_t) req->retries);
    dbt_mpw_end (w);
}

void
dbt_request_free (dbt_request_t *req)
{
    free ((char *) req->task);
    free ((char *) req->id);
    free ((char *) req->queue);
    free ((char *) req->db);
    for (size_t i = 0; i < req->nargs; i++)
        free ((char *) req->args [i]);
    free (req->args);
    dbt_request_init (req);
}

//  A string field into *out (owned), NULL when absent or nil.
static int
s_str (const msgpack_object *map, const char *key, bool required, const char **out, char *err)
{
    char *value = NULL;
    int rc = dbt_mp_field_str (map, key, required, &value, err);
    *out = value;
    return rc ? DBT_EINVAL : 0;
}

int
dbt_request_read (const msgpack_object *map, dbt_request_t *req, char *err)
{
    dbt_request_init (req);
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        dbt_err_set (err, "each job must be a map");
        return DBT_EINVAL;
    }
    int64_t retries = 0;
    bool ttl = dbt_mp_get (map, "ttl") && dbt_mp_get (map, "ttl")->type != MSGPACK_OBJECT_NIL;
    bool rttl = dbt_mp_get (map, "results_ttl")
             && dbt_mp_get (map, "results_ttl")->type != MSGPACK_OBJECT_NIL;
    if (s_str (map, "task", true, &req->task, err) || s_str (map, "id", false, &req->id, err)
    ||  s_str (map, "queue", false, &req->queue, err) || s_str (map, "db", false, &req->db, err)
    ||  dbt_mp_field_i64 (map, "eta", false, &req->eta_ms, err)
    ||  (ttl && dbt_mp_field_i64 (map, "ttl", false, &req->ttl_ms, err))
    ||  (rttl && dbt_mp_field_i64 (map, "results_ttl", false, &req->results_ttl_ms, err))
    ||  dbt_mp_field_i64 (map, "retries", false, &retries, err))
        goto fail;
    req->retries = retries;
    if (!*req->task) {
        dbt_err_set (err, "field 'task' must not be empty");
        goto fail;
    }
    if (retries < 0 || retries > DBT_MAX_RETRIES) {
        dbt_err_set (err, "retries must be between 0 and %d", DBT_MAX_RETRIES);
        goto fail;
    }
    if (req->eta_ms < 0) {
        dbt_err_set (err, "eta must not be before 1970");
        goto fail;
    }
    if ((ttl && (req->ttl_ms < 0 || req->ttl_ms > DBT_MAX_TTL_MS))
    ||  (rttl && (req->results_ttl_ms < 0 || req->results_ttl_ms > DBT_MAX_TTL_MS))) {
        dbt_err_set (err, "ttl and results_ttl must be milliseconds from 0 to %" PRId64 " (10 years)",
                     DBT_MAX_TTL_MS);
        goto fail;
    }
    const msgpack_object *args = dbt_mp_get (map, "args");
    if (args && args->type != MSGPACK_OBJECT_NIL && args->type != MSGPACK_OBJECT_ARRAY) {
        dbt_err_set (err, "field 'args' must be an array of strings");
        goto fail;
    }
    if (args && args->type == MSGPACK_OBJECT_ARRAY && args->via.array.size) {
        req->args = (const char **) dbt_malloc (args->via.array.size * sizeof (char *));
        for (uint32_t i = 0; i < args->via.array.size; i++) {
            const msgpack_object *arg = &args->via.array.ptr [i];
            const char *str = NULL;
            size_t len = 0;
            if (arg->type == MSGPACK_OBJECT_NIL)
                req->args [req->nargs++] = NULL;
            else
            if (dbt_mp_str (arg, &str, &len) == 0 && dbt_utf8_valid (str, len))
                req->args [req->nargs++] = dbt_strndup (str, len);
            else {
                dbt_err_set (err, "field 'args' must be an array of strings (item %u is not, "
                             "or not UTF-8 without NUL)", i + 1);
                goto fail;
            }
        }
    }
    return 0;
fail:
    dbt_request_free (req);
    return DBT_EINVAL;
}
