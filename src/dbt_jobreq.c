/*  =========================================================================
    dbt_jobreq - job and group requests decoded from JSON

    See dbt_jobreq.h. The body is parsed whole by jansson (trailing bytes
    other than whitespace are an error; JSON_ALLOW_NUL so that a \u0000 in
    a string is reported as such rather than as bad JSON), then each field
    is looked up the way Go's encoding/json matches struct fields. A job's
    map is written only once all of its fields are known to be good.
    =========================================================================
*/
#include "dbt_classes.h"

//  --------------------------------------------------------------------------
//  Fields (Go encoding/json rules for upstream's structs)

//  Member of obj by key: exact match first, then case-insensitive.
static json_t *
s_member (json_t *obj, const char *key)
{
    json_t *value = json_object_get (obj, key);
    if (value)
        return value;
    const char *k;
    json_object_foreach (obj, k, value) {
        if (strcasecmp (k, key) == 0)
            return value;
    }
    return NULL;
}

//  A string member (null or absent leaves *out NULL). -1 on a wrong type.
//  *out is borrowed from obj.
static int
s_str (json_t *obj, const char *key, const char **out, char *err)
{
    json_t *value = s_member (obj, key);
    *out = NULL;
    if (!value || json_is_null (value))
        return 0;
    if (!json_is_string (value)) {
        dbt_err_set (err, "field '%s' must be a string", key);
        return -1;
    }
    *out = json_string_value (value);
    if (strlen (*out) != json_string_length (value)) {
        dbt_err_set (err, "field '%s' must not contain NUL characters", key);
        return -1;
    }
    return 0;
}

//  An integer member (null or absent leaves *out). -1 on a wrong type.
static int
s_int (json_t *obj, const char *key, json_int_t *out, char *err)
{
    json_t *value = s_member (obj, key);
    if (!value || json_is_null (value))
        return 0;
    if (!json_is_integer (value)) {
        dbt_err_set (err, "field '%s' must be an integer", key);
        return -1;
    }
    *out = json_integer_value (value);
    return 0;
}

//  Parse the whole body as one JSON object. Returns a new reference, or
//  NULL when it is not one (bytes after it included).
static json_t *
s_load (const char *body, size_t len)
{
    json_error_t jerr;
    json_t *doc = len ? json_loadb (body, len, JSON_ALLOW_NUL, &jerr) : NULL;
    if (doc && !json_is_object (doc)) {
        json_decref (doc);
        doc = NULL;
    }
    return doc;
}

//  --------------------------------------------------------------------------
//  One job (JSON JobReq) appended to w as the dispatcher's map. task_name
//  overrides the object's "task". Writes nothing on failure.

static int
s_job_spec (json_t *req, const char *task_name, dbt_mpw_t *w, char **id_p, char *err)
{
    if (!json_is_object (req)) {
        dbt_err_set (err, "each job must be a JSON object");
        return DBT_EINVAL;
    }
    const char *task = NULL, *id = NULL, *queue = NULL, *eta = NULL, *db = NULL;
    json_int_t retries = 0, ttl = 0, results_ttl = -1;
    if (s_str (req, "task", &task, err) || s_str (req, "job_id", &id, err)
    ||  s_str (req, "queue", &queue, err) || s_str (req, "eta", &eta, err)
    ||  s_str (req, "db", &db, err) || s_int (req, "retries", &retries, err)
    ||  s_int (req, "ttl", &ttl, err) || s_int (req, "results_ttl", &results_ttl, err))
        return DBT_EINVAL;
    json_t *args = s_member (req, "args");
    if (args && !json_is_null (args) && !json_is_array (args)) {
        dbt_err_set (err, "field 'args' must be an array of strings");
        return DBT_EINVAL;
    }
    size_t index;
    json_t *arg;
    json_array_foreach (args, index, arg) {
        if (!json_is_string (arg) && !json_is_null (arg)) {
            dbt_err_set (err, "field 'args' must be an array of strings (item %zu is not)", index + 1);
            return DBT_EINVAL;
        }
        if (json_is_string (arg) && strlen (json_string_value (arg)) != json_string_length (arg)) {
            dbt_err_set (err, "arg %zu contains a NUL character", index + 1);
            return DBT_EINVAL;
        }
    }
    if (retries < 0 || retries > DBT_MAX_RETRIES) {
        dbt_err_set (err, "retries must be between 0 and %d", DBT_MAX_RETRIES);
        return DBT_EINVAL;
    }
    //  ttl as upstream: absent or 0 = default_job_ttl; -1 = no limit
    if (ttl < -1 || ttl > DBT_MAX_TTL_MS / 1000) {
        dbt_err_set (err, "ttl must be whole seconds up to %" PRId64 " (10 years), "
                     "0 for default_job_ttl or -1 for no limit", DBT_MAX_TTL_MS / 1000);
        return DBT_EINVAL;
    }
    if (results_ttl < -1 || results_ttl > DBT_MAX_TTL_MS / 1000) {
        dbt_err_set (err, "results_ttl must be whole seconds from 0 to %" PRId64 " (10 years)",
                     DBT_MAX_TTL_MS / 1000);
        return DBT_EINVAL;
    }
    int64_t eta_ms = 0;
    if (eta && *eta && dbt_parse_time (eta, &eta_ms)) {
        dbt_err_set (err, "error parsing ETA: '%s' is not 'YYYY-MM-DD HH:MM:SS' (UTC) or RFC 3339", eta);
        return DBT_EINVAL;
    }
    if (eta_ms < 0) {
        dbt_err_set (err, "error parsing ETA: '%s' is before 1970", eta);
        return DBT_EINVAL;
    }
    //  A job without an id gets one here, so that a client told "outcome
    //  unknown" (504) knows which job to look for.
    char uuid [37] = "";
    if (!id || !*id)
        dbt_uuid (uuid);
    char *named = *uuid ? dbt_printf ("job_%s", uuid) : dbt_strdup (id);
    dbt_request_t spec;
    dbt_request_init (&spec);
    spec.task = task_name ? task_name : task;
    spec.id = named;
    spec.queue = queue;
    spec.db = db;
    spec.nargs = json_array_size (args);
    spec.args = spec.nargs ? (const char **) dbt_malloc (spec.nargs * sizeof (char *)) : NULL;
    json_array_foreach (args, index, arg)
        spec.args [index] = json_is_string (arg) ? json_string_value (arg) : NULL;
    spec.eta_ms = eta_ms;
    //  In the dispatcher's map an absent ttl is the default and 0 no limit
    spec.ttl_ms = ttl == -1 ? 0 : ttl > 0 ? (int64_t) ttl * 1000 : -1;
    spec.results_ttl_ms = results_ttl >= 0 ? (int64_t) results_ttl * 1000 : -1;
    spec.retries = (int64_t) retries;
    dbt_request_job (w, &spec);
    free (spec.args);
    if (id_p)
        *id_p = named;
    else
        free (named);
    return 0;
}

//  --------------------------------------------------------------------------
//  A job request body: one map appended, the route given back.

int
dbt_jobreq_job (const char *body, size_t len, const char *task, dbt_mpw_t *jobs,
                dbt_jobreq_route_t *route, char *err)
{
    assert (jobs);
    if (route)
        memset (route, 0, sizeof (*route));
    if (len == 0) {
        dbt_err_set (err, "request body is empty");
        return DBT_EINVAL;
    }
    json_t *doc = s_load (body, len);
    if (!doc) {
        dbt_err_set (err, "error parsing request JSON");
        return DBT_EINVAL;
    }
    char *id = NULL;
    int rc = s_job_spec (doc, task, jobs, &id, err);
    if (rc == 0 && route) {
        route->id = id;
        id = NULL;
        const char *queue = NULL;
        s_str (doc, "queue", &queue, NULL);
        route->queue = dbt_strdup (queue);
        const char *given = NULL;
        s_str (doc, "job_id", &given, NULL);
        route->named_here = !given || !*given;
        if (task)
            route->task = dbt_strdup (task);
        else {
            const char *own = NULL;
            s_str (doc, "task", &own, NULL);
            route->task = dbt_strdup (own);
        }
    }
    free (id);
    json_decref (doc);
    return rc;
}

//  --------------------------------------------------------------------------
//  A group request body: one map per member, the group's fields given back.

int
dbt_jobreq_group (const char *body, size_t len, dbt_mpw_t *jobs,
                  dbt_jobreq_group_t *group, char *err)
{
    assert (jobs && group);
    memset (group, 0, sizeof (*group));
    json_t *doc = s_load (body, len);
    if (!doc) {
        dbt_err_set (err, "error parsing JSON body");
        return DBT_EINVAL;
    }
    const char *id = NULL;
    json_int_t concurrency = 0;
    json_t *members = s_member (doc, "jobs");
    int rc = 0;
    if (s_str (doc, "group_id", &id, err) || s_int (doc, "concurrency", &concurrency, err))
        rc = DBT_EINVAL;
    else
    if (members && !json_is_null (members) && !json_is_array (members)) {
        dbt_err_set (err, "field 'jobs' must be an array");
        rc = DBT_EINVAL;
    }
    else
    if (concurrency < 0) {
        dbt_err_set (err, "concurrency must not be negative");
        rc = DBT_EINVAL;
    }
    size_t index;
    json_t *job;
    json_array_foreach (members, index, job) {
        if (rc)
            break;
        const char *task = NULL;
        if (json_is_object (job) && s_str (job, "task", &task, err) == 0 && (!task || !*task)) {
            dbt_err_set (err, "job %zu: missing task", index + 1);
            rc = DBT_EINVAL;
            break;
        }
        char inner [DBT_ERRMSG_LEN];
        char *member_id = NULL;
        if (s_job_spec (job, NULL, jobs, index == 0 ? &member_id : NULL, inner)) {
            dbt_err_set (err, "job %zu: %s", index + 1, inner);
            rc = DBT_EINVAL;
            break;
        }
        if (index == 0) {
            const char *queue = NULL;
            s_str (job, "queue", &queue, NULL);
            group->first.task = dbt_strdup (task);
            group->first.queue = dbt_strdup (queue);
            group->first.id = member_id;
        }
        group->njobs++;
    }
    if (rc == 0) {
        //  Named here when absent, like jobs, so a 504 can say which.
        char uuid [37];
        dbt_uuid (uuid);
        group->id = dbt_strdup (id && *id ? id : uuid);
        group->named_here = !(id && *id);
        group->concurrency = (int64_t) concurrency;
    }
    else
        dbt_jobreq_group_free (group);
    json_decref (doc);
    return rc;
}

//  --------------------------------------------------------------------------
//  Free what a decode gave back.

void
dbt_jobreq_route_free (dbt_jobreq_route_t *route)
{
    assert (route);
    free (route->task);
    free (route->queue);
    free (route->id);
    memset (route, 0, sizeof (*route));
}

void
dbt_jobreq_group_free (dbt_jobreq_group_t *group)
{
    assert (group);
    free (group->id);
    dbt_jobreq_route_free (&group->first);
    memset (group, 0, sizeof (*group));
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

//  Decode a job body (task "t"); on success the map is returned as a
//  reader (caller destroys), on failure NULL with err set.
static dbt_mpr_t *
s_test_job (const char *body, dbt_jobreq_route_t *route, char *err)
{
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_array (w);
    int rc = dbt_jobreq_job (body, strlen (body), "t", w, route, err);
    dbt_mpw_end (w);
    dbt_mpr_t *reader = NULL;
    if (rc == 0) {
        size_t len;
        const char *data = dbt_mpw_data (w, &len);
        char perr [DBT_ERRMSG_LEN];
        reader = dbt_mpr_new (data, len, perr);
        assert (reader);
        const msgpack_object *root = dbt_mpr_root (reader);
        assert (root->type == MSGPACK_OBJECT_ARRAY && root->via.array.size == 1);
    }
    else
        assert (rc == DBT_EINVAL && err [0]);
    dbt_mpw_destroy (&w);
    return reader;
}

//  The body must be refused with a message containing part.
static void
s_test_job_refused (const char *body, const char *part)
{
    char err [DBT_ERRMSG_LEN] = "";
    dbt_jobreq_route_t route = { 0 };
    dbt_mpr_t *reader = s_test_job (body, &route, err);
    if (reader || !strstr (err, part))
        fprintf (stderr, "jobreq: '%s' gave '%s'\n", body, reader ? "ok" : err);
    assert (!reader && strstr (err, part));
    assert (!route.task && !route.queue);
}

static void
s_test_group_refused (const char *body, const char *part)
{
    char err [DBT_ERRMSG_LEN] = "";
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_jobreq_group_t group;
    dbt_mpw_array (w);
    int rc = dbt_jobreq_group (body, strlen (body), w, &group, err);
    dbt_mpw_end (w);
    if (rc == 0 || !strstr (err, part))
        fprintf (stderr, "jobreq: group '%s' gave '%s'\n", body, rc ? err : "ok");
    assert (rc == DBT_EINVAL && strstr (err, part));
    assert (!group.id && !group.first.task && group.njobs == 0);
    dbt_mpw_destroy (&w);
}

void
dbt_jobreq_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    dbt_jobreq_route_t route;

    //  Every field, keys in any case, unknown keys ignored
    dbt_mpr_t *reader = s_test_job (
        "{\"TASK\":\"ignored\",\"Job_ID\":\"j1\",\"queue\":\"q\",\"db\":\"d\","
        "\"args\":[\"a\",null],\"eta\":\"2024-01-02 03:04:05\",\"ttl\":5,"
        "\"results_ttl\":60,\"retries\":2,\"other\":{\"x\":[1]}} \r\n\t", &route, err);
    assert (reader);
    const msgpack_object *map = &dbt_mpr_root (reader)->via.array.ptr [0];
    char *text = NULL;
    assert (dbt_mp_field_str (map, "task", true, &text, err) == 0 && streq (text, "t"));
    free (text);
    text = NULL;
    assert (dbt_mp_field_str (map, "id", true, &text, err) == 0 && streq (text, "j1"));
    free (text);
    text = NULL;
    assert (dbt_mp_field_str (map, "queue", true, &text, err) == 0 && streq (text, "q"));
    free (text);
    text = NULL;
    assert (dbt_mp_field_str (map, "db", true, &text, err) == 0 && streq (text, "d"));
    free (text);
    text = NULL;
    int64_t value = 0;
    assert (dbt_mp_field_i64 (map, "eta", true, &value, err) == 0 && value == 1704164645000);
    assert (dbt_mp_field_i64 (map, "ttl", true, &value, err) == 0 && value == 5000);
    assert (dbt_mp_field_i64 (map, "results_ttl", true, &value, err) == 0 && value == 60000);
    uint64_t retries = 0;
    assert (dbt_mp_field_u64 (map, "retries", true, &retries, err) == 0 && retries == 2);
    const msgpack_object *args = dbt_mp_get (map, "args");
    assert (args && args->type == MSGPACK_OBJECT_ARRAY && args->via.array.size == 2);
    assert (args->via.array.ptr [1].type == MSGPACK_OBJECT_NIL);
    assert (streq (route.task, "t") && streq (route.queue, "q"));
    dbt_jobreq_route_free (&route);
    assert (!route.task && !route.queue);
    dbt_mpr_destroy (&reader);

    //  The minimum: no id, queue, db or ttl; eta 0, no args
    reader = s_test_job ("{}", &route, err);
    map = &dbt_mpr_root (reader)->via.array.ptr [0];
    text = NULL;
    assert (dbt_mp_field_str (map, "id", true, &text, err) == 0 && strncmp (text, "job_", 4) == 0);
    assert (route.id && streq (route.id, text));
    free (text);
    text = NULL;
    assert (!dbt_mp_get (map, "queue") && !dbt_mp_get (map, "ttl"));
    assert (dbt_mp_field_i64 (map, "eta", true, &value, err) == 0 && value == 0);
    assert (dbt_mp_get (map, "args")->via.array.size == 0);
    assert (streq (route.task, "t") && route.queue == NULL);
    dbt_jobreq_route_free (&route);
    dbt_mpr_destroy (&reader);
    reader = s_test_job ("{\"queue\":null,\"args\":null,\"ttl\":null}", NULL, err);
    assert (reader);
    dbt_mpr_destroy (&reader);
    //  ttl 0 (the Go client always sends it) is the default, as upstream;
    //  -1 is no limit (0 in the dispatcher's map)
    reader = s_test_job ("{\"ttl\":0}", NULL, err);
    map = &dbt_mpr_root (reader)->via.array.ptr [0];
    assert (!dbt_mp_get (map, "ttl"));
    dbt_mpr_destroy (&reader);
    reader = s_test_job ("{\"ttl\":-1}", NULL, err);
    map = &dbt_mpr_root (reader)->via.array.ptr [0];
    assert (dbt_mp_field_i64 (map, "ttl", true, &value, err) == 0 && value == 0);
    dbt_mpr_destroy (&reader);

    //  Refusals
    s_test_job_refused ("", "request body is empty");
    s_test_job_refused ("{\"job_id\":", "error parsing request JSON");
    s_test_job_refused ("[]", "error parsing request JSON");
    s_test_job_refused ("\"x\"", "error parsing request JSON");
    s_test_job_refused ("{\"job_id\":\"x\"}garbage", "error parsing request JSON");
    s_test_job_refused ("{\"job_id\":\"x\"} {}", "error parsing request JSON");
    s_test_job_refused ("{\"retries\":\"3\"}", "field 'retries' must be an integer");
    s_test_job_refused ("{\"retries\":1.5}", "must be an integer");
    s_test_job_refused ("{\"retries\":1001}", "retries must be between 0 and 1000");
    s_test_job_refused ("{\"retries\":-1}", "retries must be between");
    s_test_job_refused ("{\"ttl\":-2}", "-1 for no limit");
    s_test_job_refused ("{\"ttl\":315360001}", "up to 315360000");
    s_test_job_refused ("{\"results_ttl\":-2}", "results_ttl must be whole seconds");
    s_test_job_refused ("{\"results_ttl\":9223372036854775807}", "whole seconds");
    s_test_job_refused ("{\"job_id\":7}", "field 'job_id' must be a string");
    s_test_job_refused ("{\"queue\":\"a\\u0000b\"}", "must not contain NUL");
    s_test_job_refused ("{\"args\":\"a\"}", "array of strings");
    s_test_job_refused ("{\"args\":[1]}", "item 1 is not");
    s_test_job_refused ("{\"args\":[\"a\",\"b\\u0000\"]}", "arg 2 contains a NUL");
    s_test_job_refused ("{\"eta\":\"soon\"}", "error parsing ETA");
    s_test_job_refused ("{\"eta\":\"1969-12-31 23:59:59\"}", "before 1970");
    //  A body that is given a length is not read past it
    dbt_mpw_t *one = dbt_mpw_new ();
    assert (dbt_jobreq_job ("{}garbage", 2, "t", one, NULL, err) == 0);
    //  ... and a NUL after the object is not whitespace
    dbt_mpw_reset (one);
    assert (dbt_jobreq_job ("{}\0", 3, "t", one, NULL, err) == DBT_EINVAL);
    assert (streq (err, "error parsing request JSON"));
    dbt_mpw_destroy (&one);

    //  Groups
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_jobreq_group_t group;
    const char *body = "{\"Group_ID\":\"g1\",\"concurrency\":2,\"jobs\":["
                       "{\"task\":\"a\",\"queue\":\"q1\",\"job_id\":\"x\"},"
                       "{\"task\":\"b\",\"args\":[\"1\"]}]}\n";
    dbt_mpw_array (w);
    assert (dbt_jobreq_group (body, strlen (body), w, &group, err) == 0);
    dbt_mpw_end (w);
    assert (streq (group.id, "g1") && group.concurrency == 2 && group.njobs == 2);
    assert (streq (group.first.task, "a") && streq (group.first.queue, "q1"));
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    reader = dbt_mpr_new (data, len, err);
    assert (reader && dbt_mpr_root (reader)->via.array.size == 2);
    map = &dbt_mpr_root (reader)->via.array.ptr [1];
    assert (dbt_mp_field_str (map, "task", true, &text, err) == 0 && streq (text, "b"));
    free (text);
    text = NULL;
    dbt_mpr_destroy (&reader);
    dbt_jobreq_group_free (&group);
    assert (!group.id && !group.first.task);
    dbt_mpw_reset (w);

    //  No jobs, empty id: nothing to route by, an id made here
    body = "{\"group_id\":\"\",\"jobs\":null}";
    dbt_mpw_array (w);
    assert (dbt_jobreq_group (body, strlen (body), w, &group, err) == 0);
    dbt_mpw_end (w);
    assert (group.id && strlen (group.id) == 36 && dbt_id_valid (group.id));
    assert (group.njobs == 0 && !group.first.task && group.concurrency == 0);
    dbt_jobreq_group_free (&group);
    dbt_mpw_destroy (&w);

    s_test_group_refused ("", "error parsing JSON body");
    s_test_group_refused ("[]", "error parsing JSON body");
    s_test_group_refused ("{\"jobs\":[]}x", "error parsing JSON body");
    s_test_group_refused ("{\"group_id\":1}", "field 'group_id' must be a string");
    s_test_group_refused ("{\"concurrency\":\"2\"}", "field 'concurrency' must be an integer");
    s_test_group_refused ("{\"concurrency\":-1}", "concurrency must not be negative");
    s_test_group_refused ("{\"jobs\":{}}", "field 'jobs' must be an array");
    s_test_group_refused ("{\"jobs\":[{\"job_id\":\"x\"}]}", "job 1: missing task");
    s_test_group_refused ("{\"jobs\":[{\"task\":\"\"}]}", "job 1: missing task");
    s_test_group_refused ("{\"jobs\":[{\"task\":\"a\"},1]}", "job 2: each job must be a JSON object");
    s_test_group_refused ("{\"jobs\":[{\"task\":5}]}", "job 1: field 'task' must be a string");
    s_test_group_refused ("{\"jobs\":[{\"task\":\"a\"},{\"task\":\"b\",\"retries\":-1}]}",
                          "job 2: retries must be between");
    if (verbose)
        printf ("jobreq: ok\n");
}
#endif  //  DBT_SELFTEST
