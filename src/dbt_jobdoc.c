/*  =========================================================================
    dbt_jobdoc - GET /jobs/{id}'s answer written straight to bytes

    See dbt_jobdoc.h. The document is the concatenation of constant key
    text and the values: strings copied as they are (only plain ones are
    taken, so none needs escaping), integers in decimal as jansson prints
    json_int_t, and timestamps from the day count by the civil calendar
    (proleptic Gregorian, as gmtime).
    =========================================================================
*/
#include "dbt_classes.h"

//  Wall ms from which dbt_jobdoc_time falls back to dbt_time_rfc3339:
//  year 10000, past any four-digit year.
#define S_TIME_FAST_LIMIT 253402300800000LL

//  Length of text when it is present and JSON writes it as it is:
//  printable ASCII, no quote, no backslash; else -1. jansson checks UTF-8
//  and escapes only '"', '\\' and bytes below 0x20, so for such text both
//  agree.
static ssize_t
s_plain (const char *text)
{
    if (!text)
        return -1;
    const unsigned char *p = (const unsigned char *) text;
    for (; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            return -1;
    return (ssize_t) (p - (const unsigned char *) text);
}

//  Write n's decimal digits at out; returns the count.
static size_t
s_int (int64_t n, char *out)
{
    char digits [24];
    size_t len = 0;
    uint64_t magnitude = n < 0 ? (uint64_t) 0 - (uint64_t) n : (uint64_t) n;
    do {
        digits [len++] = (char) ('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    size_t at = 0;
    if (n < 0)
        out [at++] = '-';
    while (len)
        out [at++] = digits [--len];
    return at;
}

//  Write value in width digits, zero-padded, at out.
static void
s_digits (unsigned int value, int width, char *out)
{
    for (int i = width - 1; i >= 0; i--) {
        out [i] = (char) ('0' + value % 10);
        value /= 10;
    }
}

size_t
dbt_jobdoc_time (int64_t ms, char *out)
{
    if (ms <= 0 || ms >= S_TIME_FAST_LIMIT) {
        dbt_time_rfc3339 (ms, out, 32);
        return strlen (out);
    }
    int64_t secs = ms / 1000;
    unsigned int frac = (unsigned int) (ms % 1000);
    int64_t days = secs / 86400;
    unsigned int of_day = (unsigned int) (secs % 86400);
    //  Days since 1970-01-01 to a civil date, with years starting in March
    //  so that the leap day comes last: eras of 400 years (146097 days).
    int64_t shifted = days + 719468;            //  days since 0000-03-01
    int64_t era = shifted / 146097;
    unsigned int of_era = (unsigned int) (shifted - era * 146097);
    unsigned int year_of_era = (of_era - of_era / 1460 + of_era / 36524 - of_era / 146096) / 365;
    unsigned int day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    unsigned int month_index = (5 * day_of_year + 2) / 153;     //  0 = March
    unsigned int day = day_of_year - (153 * month_index + 2) / 5 + 1;
    unsigned int month = month_index < 10 ? month_index + 3 : month_index - 9;
    unsigned int year = (unsigned int) (era * 400) + year_of_era + (month <= 2 ? 1 : 0);
    //  YYYY-MM-DDTHH:MM:SS[.mmm]Z
    s_digits (year, 4, out);
    out [4] = '-';
    s_digits (month, 2, out + 5);
    out [7] = '-';
    s_digits (day, 2, out + 8);
    out [10] = 'T';
    s_digits (of_day / 3600, 2, out + 11);
    out [13] = ':';
    s_digits (of_day / 60 % 60, 2, out + 14);
    out [16] = ':';
    s_digits (of_day % 60, 2, out + 17);
    size_t len = 19;
    if (frac) {
        out [len++] = '.';
        s_digits (frac, 3, out + len);
        len += 3;
    }
    out [len++] = 'Z';
    out [len] = 0;
    return len;
}

//  The document is written at a cursor into room reserved beforehand.
typedef struct {
    char *at;                   //  next byte to write
} s_out_t;

//  Key text: a literal with its punctuation, its length known at compile time.
#define S_KEY(out, literal) s_put ((out), (literal), sizeof (literal) - 1)

static void
s_put (s_out_t *out, const char *data, size_t len)
{
    memcpy (out->at, data, len);
    out->at += len;
}

static void
s_put_string (s_out_t *out, const char *value, size_t len)
{
    *out->at++ = '"';
    s_put (out, value, len);
    *out->at++ = '"';
}

static void
s_put_time (s_out_t *out, int64_t ms)
{
    *out->at++ = '"';
    out->at += dbt_jobdoc_time (ms, out->at);
    *out->at++ = '"';
}

int
dbt_jobdoc_render (const dbt_job_t *job, const dbt_origin_t *origin, dbt_buf_t *out)
{
    assert (job && origin && out);
    const char *error = job->error ? job->error : "";
    const char *worker = job->worker ? job->worker : "";
    const char *table = job->table ? job->table : "";
    const char *state = dbt_state_name (job->state);
    ssize_t id_len = s_plain (job->id), task_len = s_plain (job->task);
    ssize_t queue_len = s_plain (job->queue), error_len = s_plain (error);
    ssize_t worker_len = s_plain (worker), table_len = s_plain (table);
    ssize_t node_len = s_plain (origin->node), state_len = s_plain (state);
    if (id_len < 0 || task_len < 0 || queue_len < 0 || error_len < 0 || worker_len < 0
    ||  table_len < 0 || node_len < 0 || state_len < 0)
        return -1;
    //  Room: the key text (under 256 bytes), the strings with their
    //  quotes, four times and three integers (under 40 bytes each).
    size_t room = 256 + 8 * 2 + (size_t) (id_len + task_len + queue_len + error_len + worker_len
                                          + table_len + node_len + state_len) + 4 * 40 + 3 * 24;
    dbt_buf_reserve (out, room + 1);
    s_out_t cursor = { out->data + out->len };
    s_out_t *w = &cursor;
    //  The same fields, in the same order, as dbt_api_job_status and
    //  dbt_api's freshness fields; json_int_t is int64_t.
    S_KEY (w, "{\"status\":\"success\",\"data\":{\"job_id\":");
    s_put_string (w, job->id, (size_t) id_len);
    S_KEY (w, ",\"state\":");
    s_put_string (w, state, (size_t) state_len);
    S_KEY (w, ",\"count\":");
    w->at += s_int (job->state == DBT_STATE_SUCCESS ? (int64_t) job->rows : 0, w->at);
    S_KEY (w, ",\"error\":");
    s_put_string (w, error, (size_t) error_len);
    S_KEY (w, ",\"rows\":");
    w->at += s_int ((int64_t) job->rows, w->at);
    S_KEY (w, ",\"task\":");
    s_put_string (w, job->task, (size_t) task_len);
    S_KEY (w, ",\"queue\":");
    s_put_string (w, job->queue, (size_t) queue_len);
    S_KEY (w, ",\"attempts\":");
    w->at += s_int (job->attempts, w->at);
    S_KEY (w, ",\"worker\":");
    s_put_string (w, worker, (size_t) worker_len);
    S_KEY (w, ",\"results_table\":");
    s_put_string (w, table, (size_t) table_len);
    S_KEY (w, ",\"eta\":");
    s_put_time (w, job->eta_ms);
    S_KEY (w, ",\"created_at\":");
    s_put_time (w, job->created_ms);
    S_KEY (w, ",\"started_at\":");
    s_put_time (w, job->started_ms);
    S_KEY (w, ",\"finished_at\":");
    s_put_time (w, job->finished_ms);
    S_KEY (w, ",\"dispatcher\":");
    s_put_string (w, origin->node, (size_t) node_len);
    S_KEY (w, ",\"replica_lag_ms\":");
    w->at += s_int (origin->lag_ms, w->at);
    S_KEY (w, "}}");
    out->len = (size_t) (w->at - out->data);
    assert (out->len < out->cap);
    *w->at = 0;
    return 0;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: the bytes are jansson's, for many jobs and times.

//  The answer as dbt_api builds it with jansson (caller frees).
static char *
s_test_jansson (const dbt_job_t *job, const dbt_origin_t *origin)
{
    json_t *data = dbt_api_job_status (job);
    json_object_set_new (data, "dispatcher", json_string (origin->node));
    json_object_set_new (data, "replica_lag_ms", json_integer (origin->lag_ms));
    json_t *doc = json_object ();
    json_object_set_new (doc, "status", json_string ("success"));
    json_object_set_new (doc, "data", data);
    char *text = json_dumps (doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref (doc);
    return text;
}

//  Render job both ways; returns whether the direct way took it, and
//  asserts that it wrote jansson's bytes when it did.
static bool
s_test_same (const dbt_job_t *job, const dbt_origin_t *origin)
{
    dbt_buf_t out = { 0 };
    dbt_buf_puts (&out, "");
    int rc = dbt_jobdoc_render (job, origin, &out);
    char *expected = s_test_jansson (job, origin);
    assert (expected);
    if (rc == 0 && !streq (out.data, expected)) {
        fprintf (stderr, "jobdoc:\n  got  %s\n  want %s\n", out.data, expected);
        assert (false);
    }
    if (rc != 0)
        assert (out.len == 0);
    free (expected);
    dbt_buf_free (&out);
    return rc == 0;
}

//  Write job to store in its own commit.
static void
s_test_put (dbt_store_t *store, const dbt_job_t *job)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = dbt_store_begin (store, err);
    assert (txn && dbt_wtxn_put_job (txn, job, err) == 0 && dbt_wtxn_commit (&txn, err) == 0);
}

//  GET (or HEAD) path through api; returns the status, *body the answer.
static int
s_test_get (dbt_api_t *api, const char *method, const char *path, char **body)
{
    dbt_response_t *response = dbt_api_handle (api, method, path, NULL, NULL, "", 0);
    int status = response->status;
    *body = response->body;
    response->body = NULL;
    dbt_response_destroy (&response);
    return status;
}

//  GET /jobs/{id} through dbt_api from a real store: jansson's bytes, and
//  every change committed to the record shows in the next answer.
static void
s_test_api (void)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("jobdoc");
    char *ini = dbt_printf ("[db.src]\ntype = sqlite\ndsn = %s/s.db\n[results.res]\n"
                            "type = sqlite\ndsn = %s/r.db\n", dir, dir);
    dbt_config_t *config = dbt_config_from_string (ini, err);
    free (ini);
    assert (config);
    dbt_tasks_t *tasks = dbt_tasks_new ();
    dbt_store_t *store = dbt_store_open (dir, 16 << 20, 0, err);
    assert (store);
    dbt_routes_t *routes = dbt_routes_new (config);
    dbt_view_t *view = dbt_view_new (store, "node-a");
    dbt_api_args_t args = { config, tasks, store, NULL, routes, view, NULL };
    dbt_api_t *api = dbt_api_new (&args);
    dbt_origin_t origin = { .own = true, .lag_ms = 0 };
    snprintf (origin.node, sizeof (origin.node), "node-a");

    dbt_job_t *job = dbt_job_new ();
    job->id = dbt_strdup ("poll1");
    job->task = dbt_strdup ("report");
    job->queue = dbt_strdup ("default");
    job->created_ms = 1780000000123LL;
    const char *errors [] = { NULL, NULL, "say \"no\"", "plain error", NULL };
    char *body = NULL;
    for (int step = 0; step < 5; step++) {
        job->state = step == 4 ? DBT_STATE_SUCCESS : (dbt_state_t) step;
        job->attempts = (uint32_t) step;
        job->rows = (uint64_t) step * 10;
        free (job->error);
        job->error = errors [step] ? dbt_strdup (errors [step]) : NULL;
        s_test_put (store, job);
        char *expected = s_test_jansson (job, &origin);
        assert (s_test_get (api, "GET", "/jobs/poll1", &body) == 200);
        if (!streq (body, expected))
            fprintf (stderr, "jobdoc step %d:\n  got  %s\n  want %s\n", step, body, expected);
        assert (streq (body, expected));
        free (body);
        assert (s_test_get (api, "HEAD", "/jobs/poll1", &body) == 200 && streq (body, expected));
        free (body);
        free (expected);
    }
    //  Paths the shortcut must leave to the route table.
    assert (s_test_get (api, "GET", "/jobs/poll1/", &body) == 404 && strstr (body, "\"not found\""));
    free (body);
    assert (s_test_get (api, "GET", "/jobs/", &body) == 404);
    free (body);
    assert (s_test_get (api, "GET", "/jobs/bad%20id", &body) == 404 && strstr (body, "job not found"));
    free (body);
    assert (s_test_get (api, "POST", "/jobs/poll1", &body) == 405);
    free (body);
    dbt_wtxn_t *txn = dbt_store_begin (store, err);
    assert (txn && dbt_wtxn_del_job (txn, "poll1", err) == 0 && dbt_wtxn_commit (&txn, err) == 0);
    assert (s_test_get (api, "GET", "/jobs/poll1", &body) == 404 && strstr (body, "job not found"));
    free (body);
    dbt_job_destroy (&job);
    dbt_api_destroy (&api);
    dbt_view_destroy (&view);
    dbt_routes_destroy (&routes);
    dbt_store_destroy (&store);
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);
    dbt_testing_rmtree (&dir);
}

void
dbt_jobdoc_test (bool verbose)
{
    //  Times: the fast path against dbt_time_rfc3339, across leap years,
    //  month ends, the epoch and the fallback's edges.
    int64_t fixed [] = { 0, 1, 999, 1000, 86399999, 86400000, 951782400000LL, 951868799999LL,
                         951868800000LL, 4107542399999LL, 4107542400000LL, 1780000000123LL,
                         S_TIME_FAST_LIMIT - 1, S_TIME_FAST_LIMIT, -1, -86400001,
                         -62135596800000LL };
    char fast [40], slow [40];
    for (size_t i = 0; i < sizeof (fixed) / sizeof (fixed [0]); i++) {
        size_t len = dbt_jobdoc_time (fixed [i], fast);
        dbt_time_rfc3339 (fixed [i], slow, sizeof (slow));
        if (!streq (fast, slow))
            fprintf (stderr, "jobdoc time %" PRId64 ": %s, want %s\n", fixed [i], fast, slow);
        assert (streq (fast, slow) && len == strlen (slow));
    }
    uint64_t state = 88172645463325252ULL;      //  xorshift, a fixed sequence
    for (int i = 0; i < 200000; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        int64_t ms = (int64_t) (state % (uint64_t) (S_TIME_FAST_LIMIT + 1000));
        if (i % 4 == 0)
            ms -= ms % 1000;                    //  whole seconds too
        dbt_jobdoc_time (ms, fast);
        dbt_time_rfc3339 (ms, slow, sizeof (slow));
        if (!streq (fast, slow))
            fprintf (stderr, "jobdoc time %" PRId64 ": %s, want %s\n", ms, fast, slow);
        assert (streq (fast, slow));
    }

    //  Documents: each state, present and missing strings, odd numbers.
    dbt_origin_t origin = { .own = true, .lag_ms = 0 };
    snprintf (origin.node, sizeof (origin.node), "node-a");
    dbt_job_t *job = dbt_job_new ();
    job->id = dbt_strdup ("job:1_a-B");
    job->task = dbt_strdup ("report");
    job->queue = dbt_strdup ("default");
    job->created_ms = 1780000000123LL;
    assert (s_test_same (job, &origin));
    for (int s = DBT_STATE_PENDING; s <= DBT_STATE_RETRY; s++) {
        job->state = (dbt_state_t) s;
        job->rows = (uint64_t) s * 1000;
        job->attempts = (uint32_t) s;
        assert (s_test_same (job, &origin));
    }
    job->state = DBT_STATE_SUCCESS;
    job->worker = dbt_strdup ("worker 1 / east");
    job->table = dbt_strdup ("results_job:1_a-B");
    job->error = dbt_strdup ("timeout after 5s (attempt 2/3)");
    job->eta_ms = 1;
    job->started_ms = 1780000000999LL;
    job->finished_ms = 1780000001000LL;
    job->rows = UINT64_MAX;                     //  json_int_t wraps, both ways
    job->attempts = UINT32_MAX;
    assert (s_test_same (job, &origin));
    job->rows = 0;
    origin.own = false;
    origin.lag_ms = -1;
    snprintf (origin.node, sizeof (origin.node), "b");
    assert (s_test_same (job, &origin));
    origin.lag_ms = INT64_MAX;
    assert (s_test_same (job, &origin));
    origin.lag_ms = 1234;
    //  Strings JSON escapes, or that are not ASCII: declined, jansson's.
    const char *odd [] = { "say \"hi\"", "back\\slash", "tab\there", "line\nbreak", "caf\xc3\xa9",
                           "bad \xff utf8", "\x7f" };
    for (size_t i = 0; i < sizeof (odd) / sizeof (odd [0]); i++) {
        free (job->error);
        job->error = dbt_strdup (odd [i]);
        assert (!s_test_same (job, &origin));
    }
    free (job->error);
    job->error = NULL;
    assert (s_test_same (job, &origin));
    free (job->worker);
    job->worker = dbt_strdup ("w\"1");
    assert (!s_test_same (job, &origin));
    free (job->worker);
    job->worker = NULL;
    free (job->task);
    job->task = NULL;                           //  jansson would drop the key
    assert (!s_test_same (job, &origin));
    job->task = dbt_strdup ("report");
    snprintf (origin.node, sizeof (origin.node), "n\xc3\xa9");
    assert (!s_test_same (job, &origin));
    dbt_job_destroy (&job);
    s_test_api ();
    if (verbose)
        printf ("jobdoc: ok\n");
}
#endif  //  DBT_SELFTEST
