/*  =========================================================================
    dbt_client_test - self test of dbt_client (public functions only)

    Run by tests/dbt_selftest (-t client); kept out of the libraries.
    =========================================================================
*/
#include "dbt_classes.h"

//  --------------------------------------------------------------------------
//  Self test: a ROUTER standing in for a dispatcher answers late, early
//  and with a stale rid; the client keeps only the reply to its request.

static void
s_test_progress (const msgpack_object *map, void *arg)
{
    char err [DBT_ERRMSG_LEN];
    uint64_t rows = 0;
    assert (dbt_mp_field_u64 (map, "rows", true, &rows, err) == 0);
    *(int *) arg += (int) rows;
}

void
dbt_client_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    zsock_t *router = zsock_new_router ("inproc://dbt-client-test");
    assert (router);
    dbt_client_t *client = dbt_client_new ("inproc://dbt-client-test", err);
    assert (client && streq (dbt_client_endpoint (client), "inproc://dbt-client-test"));
    assert (dbt_client_new ("nonsense://x", err) == NULL && strstr (err, "nonsense"));

    //  No answer: a timeout, not a hang.
    dbt_mpw_t *w = dbt_client_begin (client);
    dbt_mpw_kstr (w, "job_id", "a");
    dbt_reply_t *reply = NULL;
    int64_t start = dbt_clock_ms ();
    assert (dbt_client_call (client, DBT_C_STATUS, 100, &reply, err) == DBT_ETIMEDOUT);
    assert (reply == NULL && dbt_clock_ms () - start >= 100 && strstr (err, "did not answer"));
    dbt_msg_t *first = dbt_msg_recv (router, true, err);
    assert (first && first->command == DBT_C_STATUS);
    uint64_t old_rid = 0;
    assert (dbt_mp_field_u64 (first->map, "rid", true, &old_rid, err) == 0);

    //  The next request gets the late reply to the first one, then its own.
    w = dbt_client_begin (client);
    dbt_mpw_kstr (w, "job_id", "b");
    dbt_mpw_t *answer = dbt_mpw_new ();
    dbt_mpw_map (answer);
    dbt_mpw_ku64 (answer, "rid", old_rid);
    dbt_mpw_ku64 (answer, "code", 500);
    dbt_mpw_end (answer);
    assert (dbt_msg_send (router, first->identity, DBT_PROTO_CLIENT, DBT_C_REPLY, answer) == 0);
    dbt_mpw_map (answer);
    dbt_mpw_ku64 (answer, "rid", old_rid + 1);
    dbt_mpw_ku64 (answer, "code", 404);
    dbt_mpw_kstr (answer, "message", "job not found");
    dbt_mpw_kstr (answer, "data", "x");
    dbt_mpw_end (answer);
    assert (dbt_msg_send (router, first->identity, DBT_PROTO_CLIENT, DBT_C_REPLY, answer) == 0);
    assert (dbt_client_call (client, DBT_C_STATUS, 2000, &reply, err) == 0);
    assert (reply->code == 404 && streq (reply->message, "job not found"));
    assert (reply->data && reply->data->type == MSGPACK_OBJECT_STR);
    dbt_reply_destroy (&reply);
    dbt_msg_t *second = dbt_msg_recv (router, true, err);
    char *job = NULL;
    assert (second && dbt_mp_field_str (second->map, "job_id", true, &job, err) == 0 && streq (job, "b"));
    free (job);

    //  PROGRESS frames of the request awaited go to the callback, others
    //  (another rid) are dropped; the REPLY ends the call.
    int progressed = 0;
    dbt_client_set_progress (client, s_test_progress, &progressed);
    dbt_mpw_kstr (dbt_client_begin (client), "job_id", "c");
    assert (dbt_client_call (client, DBT_C_WAIT, 0, &reply, err) == DBT_ETIMEDOUT);
    dbt_msg_t *third = dbt_msg_recv (router, true, err);
    uint64_t rid = 0;
    assert (third && dbt_mp_field_u64 (third->map, "rid", true, &rid, err) == 0);
    for (uint64_t r = rid - 1; r <= rid; r++) {
        dbt_mpw_map (answer);
        dbt_mpw_ku64 (answer, "rid", r);
        dbt_mpw_ku64 (answer, "rows", 7);
        dbt_mpw_end (answer);
        assert (dbt_msg_send (router, third->identity, DBT_PROTO_CLIENT, DBT_C_PROGRESS, answer) == 0);
    }
    dbt_mpw_map (answer);
    dbt_mpw_ku64 (answer, "rid", rid);
    dbt_mpw_ku64 (answer, "code", 200);
    dbt_mpw_end (answer);
    assert (dbt_msg_send (router, third->identity, DBT_PROTO_CLIENT, DBT_C_REPLY, answer) == 0);
    assert (dbt_client_wait (client, 2000, &reply, err) == 0 && reply->code == 200);
    assert (progressed == 7);
    dbt_reply_destroy (&reply);
    dbt_client_set_progress (client, NULL, NULL);
    dbt_msg_destroy (&third);

    dbt_msg_destroy (&first);
    dbt_msg_destroy (&second);
    dbt_mpw_destroy (&answer);
    dbt_client_destroy (&client);
    zsock_destroy (&router);
    if (verbose)
        printf ("client: ok\n");
}
