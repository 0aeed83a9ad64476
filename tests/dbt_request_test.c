/*  =========================================================================
    dbt_request_test - self test of dbt_request (public functions only)

    Run by tests/dbt_selftest (-t request); kept out of the libraries.
    =========================================================================
*/
#include "dbt_classes.h"

//  --------------------------------------------------------------------------
//  Self test: what dbt_request_job writes, dbt_request_read reads back.

void
dbt_request_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    const char *args [] = { "a", NULL, "c" };
    dbt_request_t req;
    dbt_request_init (&req);
    assert (req.ttl_ms == -1 && req.results_ttl_ms == -1 && !req.task);
    req.task = "count";
    req.id = "j1";
    req.queue = "q";
    req.args = args;
    req.nargs = 3;
    req.eta_ms = 5;
    req.ttl_ms = 60000;
    req.retries = 2;
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_request_job (w, &req);
    size_t len;
    const char *data = dbt_mpw_data (w, &len);
    dbt_mpr_t *doc = dbt_mpr_new (data, len, err);
    assert (doc);
    dbt_request_t back;
    assert (dbt_request_read (dbt_mpr_root (doc), &back, err) == 0);
    assert (streq (back.task, "count") && streq (back.id, "j1") && streq (back.queue, "q"));
    assert (!back.db && back.nargs == 3 && streq (back.args [0], "a") && !back.args [1]);
    assert (streq (back.args [2], "c") && back.eta_ms == 5 && back.ttl_ms == 60000);
    assert (back.results_ttl_ms == -1 && back.retries == 2);
    dbt_request_free (&back);
    assert (!back.task && back.nargs == 0);
    dbt_mpr_destroy (&doc);

    //  Refusals name the field.
    struct { const char *key; int64_t value; const char *part; } bad [] = {
        { "retries", -1, "retries" }, { "retries", 100000, "retries" },
        { "eta", -5, "eta" }, { "ttl", -2, "ttl" }, { "results_ttl", DBT_MAX_TTL_MS + 1, "ttl" },
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        dbt_mpw_reset (w);
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "task", "t");
        dbt_mpw_ki64 (w, bad [i].key, bad [i].value);
        dbt_mpw_end (w);
        data = dbt_mpw_data (w, &len);
        doc = dbt_mpr_new (data, len, err);
        assert (doc);
        assert (dbt_request_read (dbt_mpr_root (doc), &back, err) == DBT_EINVAL);
        assert (strstr (err, bad [i].part) && !back.task);
        dbt_mpr_destroy (&doc);
    }
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "task", "t");
    dbt_mpw_str (w, "args");
    dbt_mpw_array (w);
    dbt_mpw_str (w, "ok");
    dbt_mpw_u64 (w, 7);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    data = dbt_mpw_data (w, &len);
    doc = dbt_mpr_new (data, len, err);
    assert (dbt_request_read (dbt_mpr_root (doc), &back, err) == DBT_EINVAL && strstr (err, "item 2"));
    dbt_mpr_destroy (&doc);
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "x");
    dbt_mpw_end (w);
    data = dbt_mpw_data (w, &len);
    doc = dbt_mpr_new (data, len, err);
    assert (dbt_request_read (dbt_mpr_root (doc), &back, err) == DBT_EINVAL && strstr (err, "task"));
    dbt_mpr_destroy (&doc);
    dbt_mpw_destroy (&w);
}
