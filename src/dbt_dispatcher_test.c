/*  =========================================================================
    dbt_dispatcher_test - self test of the dispatcher actor

    Drives a real dispatcher actor over TCP with a dbt_client and with raw
    DEALER sockets speaking the worker protocol: credit, retries with
    backoff, stale-attempt fencing, lost workers, cancel, eta precision,
    group limits, janitor commands, heartbeat echoes and the fencing
    CANCEL of a lost worker, job frames still on their way ("got"), and
    the hand-back of running jobs after a dispatcher restart.
    =========================================================================
*/
#include "dbt_classes.h"

#ifdef DBT_SELFTEST
//  A worker socket with a routing id for node name; its display id (what
//  records name) goes to display when not NULL.
static zsock_t *
s_test_worker_as (const char *endpoint, const char *id, const char *queue, int capacity,
                  char *display)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    char *identity = dbt_msg_worker_identity (id);
    zsock_set_identity (sock, identity);
    if (display)
        dbt_msg_worker_display (identity, strlen (identity), display);
    free (identity);
    zsock_set_rcvtimeo (sock, 3000);
    zsock_set_sndtimeo (sock, 100);
    assert (zsock_connect (sock, "%s", endpoint) == 0);
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "name", id);
    dbt_mpw_str (w, "queues");
    dbt_mpw_array (w);
    dbt_mpw_str (w, queue);
    dbt_mpw_end (w);
    dbt_mpw_ku64 (w, "capacity", (uint64_t) capacity);
    dbt_mpw_end (w);
    assert (dbt_msg_send (sock, NULL, DBT_PROTO_WORKER, DBT_W_READY, w) == 0);
    dbt_mpw_destroy (&w);
    return sock;
}

static zsock_t *
s_test_worker (const char *endpoint, const char *id, const char *queue, int capacity)
{
    return s_test_worker_as (endpoint, id, queue, capacity, NULL);
}

//  Next message of a command (heartbeats skipped), or NULL after timeout
//  ms. Heartbeats the dispatcher while waiting, like a live worker.
static void s_test_heartbeat (zsock_t *sock);

static dbt_msg_t *
s_test_expect (zsock_t *sock, int command, int timeout)
{
    int64_t deadline = dbt_clock_ms () + timeout;
    char err [DBT_ERRMSG_LEN];
    while (dbt_clock_ms () < deadline) {
        int64_t left = deadline - dbt_clock_ms ();
        zsock_set_rcvtimeo (sock, (int) (left < 50 ? left : 50) + 1);
        dbt_msg_t *msg = dbt_msg_recv (sock, false, err);
        if (!msg) {
            s_test_heartbeat (sock);
            continue;
        }
        if (msg->command == command)
            return msg;
        dbt_msg_destroy (&msg);
    }
    return NULL;
}

//  Receive a JOB; returns its id (caller frees) and attempt.
static char *
s_test_job (zsock_t *sock, uint64_t *attempt, int timeout)
{
    dbt_msg_t *msg = s_test_expect (sock, DBT_W_JOB, timeout);
    if (!msg)
        return NULL;
    char err [DBT_ERRMSG_LEN];
    char *id = NULL;
    assert (dbt_mp_field_str (msg->map, "id", true, &id, err) == 0);
    assert (dbt_mp_field_u64 (msg->map, "attempts", true, attempt, err) == 0);
    dbt_msg_destroy (&msg);
    return id;
}

static void
s_test_done (zsock_t *sock, const char *id, uint64_t attempt, bool ok, uint64_t rows,
             const char *error, bool cancelled)
{
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", id);
    dbt_mpw_ku64 (w, "attempt", attempt);
    dbt_mpw_kbool (w, "ok", ok);
    dbt_mpw_ku64 (w, "rows", rows);
    if (error)
        dbt_mpw_kstr (w, "error", error);
    dbt_mpw_kbool (w, "cancelled", cancelled);
    dbt_mpw_end (w);
    assert (dbt_msg_send (sock, NULL, DBT_PROTO_WORKER, DBT_W_DONE, w) == 0);
    dbt_mpw_destroy (&w);
}

static void
s_test_heartbeat (zsock_t *sock)
{
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_end (w);
    dbt_msg_send (sock, NULL, DBT_PROTO_WORKER, DBT_W_HEARTBEAT, w);
    dbt_mpw_destroy (&w);
}

//  Hand a job back unstarted, as a worker with no free runner does.
static void
s_test_refuse (zsock_t *sock, const char *id, uint64_t attempt)
{
    dbt_mpw_t *w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", id);
    dbt_mpw_ku64 (w, "attempt", attempt);
    dbt_mpw_kbool (w, "ok", false);
    dbt_mpw_kstr (w, "error", "worker had no free runner");
    dbt_mpw_kbool (w, "interrupted", true);
    dbt_mpw_kbool (w, "refused", true);
    dbt_mpw_end (w);
    assert (dbt_msg_send (sock, NULL, DBT_PROTO_WORKER, DBT_W_DONE, w) == 0);
    dbt_mpw_destroy (&w);
}

//  Whether a JOB comes within ms while the worker itself stays silent.
static bool
s_test_job_unasked (zsock_t *sock, int ms)
{
    char err [DBT_ERRMSG_LEN];
    int64_t deadline = dbt_clock_ms () + ms;
    bool got = false;
    while (!got && dbt_clock_ms () < deadline) {
        zsock_set_rcvtimeo (sock, (int) (deadline - dbt_clock_ms ()) + 1);
        dbt_msg_t *msg = dbt_msg_recv (sock, false, err);
        got = msg && msg->command == DBT_W_JOB;
        dbt_msg_destroy (&msg);
    }
    return got;
}

//  Submit one job of task t0; returns the reply code.
static int
s_test_submit (dbt_client_t *client, const char *id, const char *queue, int64_t eta,
               uint64_t retries, const char *group, uint64_t concurrency)
{
    return dbt_testing_submit (client, &(dbt_testing_job_t) {
        .task = "t0", .id = id, .queue = queue, .eta = eta, .retries = retries,
        .group = group, .concurrency = concurrency });
}

static int
s_test_cancel (dbt_client_t *client, const char *id, bool purge)
{
    dbt_mpw_t *w = dbt_client_begin (client);
    dbt_mpw_kstr (w, "job_id", id);
    dbt_mpw_kbool (w, "purge", purge);
    dbt_reply_t *reply = NULL;
    char err [DBT_ERRMSG_LEN];
    assert (dbt_client_call (client, DBT_C_CANCEL, 3000, &reply, err) == 0);
    int code = reply->code;
    dbt_reply_destroy (&reply);
    return code;
}

//  A job's stored state (or -1 when absent), waiting up to ms for want.
static int
s_test_state (dbt_store_t *store, const char *id, int want, int ms, dbt_job_t **job_p)
{
    char err [DBT_ERRMSG_LEN];
    int64_t deadline = dbt_clock_ms () + ms;
    int state = -1;
    do {
        dbt_job_t *job = NULL;
        state = dbt_store_job (store, id, &job, err) == 0 ? (int) job->state : -1;
        if (state == want || dbt_clock_ms () >= deadline) {
            if (job_p)
                *job_p = job;
            else
                dbt_job_destroy (&job);
            return state;
        }
        dbt_job_destroy (&job);
        zclock_sleep (10);
    } while (true);
}

static int
s_test_drop (uint64_t key, const char *results, const char *table, const char *job_id, void *arg)
{
    if (streq (table, "results_x1"))
        *(uint64_t *) arg = key;
    return 0;
}

void
dbt_dispatcher_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("dispatcher");
    //  TCP, not inproc: workers must reconnect to a restarted dispatcher.
    //  A port below the ephemeral range, so that no outgoing connection
    //  takes it between the two binds.
    int port = 0;
    for (int tries = 0; tries < 100 && !port; tries++) {
        int candidate = 20000 + (int) (dbt_random64 () % 10000);
        zsock_t *probe = zsock_new (ZMQ_ROUTER);
        if (zsock_bind (probe, "tcp://127.0.0.1:%d", candidate) == candidate)
            port = candidate;
        zsock_destroy (&probe);
    }
    assert (port > 0);
    char *ini = dbt_printf (
        "[app]\nretry_backoff = 50ms\nretry_backoff_max = 100ms\n"
        "[mesh]\nbind = tcp://127.0.0.1:%d\nheartbeat_interval = 100ms\nheartbeat_liveness = 3\n"
        "[db.a]\ntype = sqlite\ndsn = %s/a.db\n[results.r]\ntype = sqlite\ndsn = %s/r.db\n",
        port, dir, dir);
    dbt_config_t *config = dbt_config_from_string (ini, err);
    free (ini);
    assert (config);
    const char *endpoint = config->mesh_bind;
    dbt_tasks_t *tasks = dbt_tasks_new ();
    const char *text = "-- name: t0\nSELECT 1;\n";
    assert (dbt_tasks_parse (tasks, text, strlen (text), "t.sql", err) == 0);
    assert (dbt_tasks_bind (tasks, config, err) == 0);
    dbt_tasks_lookup (tasks, "t0")->nparams = 0;
    dbt_store_t *store = dbt_store_open (dir, 64 << 20, 0, err);
    assert (store);
    dbt_dispatcher_args_t args = { config, tasks, store, NULL, NULL };
    zactor_t *dispatcher = zactor_new (dbt_dispatcher_actor, &args);
    assert (dispatcher);
    dbt_client_t *client = dbt_client_new (endpoint, err);
    assert (client);
    zstr_send (dispatcher, "LOCAL");
    char *local_endpoint = zstr_recv (dispatcher);
    assert (local_endpoint && strncmp (local_endpoint, "inproc://", 9) == 0);
    dbt_client_t *local = dbt_client_new (local_endpoint, err);
    assert (local);

    //  Accepted only when committed; one unfinished job per id.
    assert (s_test_submit (client, "j1", NULL, 0, 0, NULL, 0) == 200);
    assert (s_test_state (store, "j1", DBT_STATE_PENDING, 0, NULL) == DBT_STATE_PENDING);
    assert (s_test_submit (client, "j1", NULL, 0, 0, NULL, 0) == 409);

    //  A worker with one slot gets the job, then the next after DONE.
    zsock_t *w1 = s_test_worker (endpoint, "w1", "default", 1);
    uint64_t attempt = 0;
    char *id = s_test_job (w1, &attempt, 2000);
    assert (id && streq (id, "j1") && attempt == 1);
    free (id);
    assert (s_test_state (store, "j1", DBT_STATE_STARTED, 1000, NULL) == DBT_STATE_STARTED);
    assert (s_test_submit (client, "j2", NULL, 0, 1, NULL, 0) == 200);
    assert (s_test_expect (w1, DBT_W_JOB, 200) == NULL);           //  credit respected
    s_test_done (w1, "j1", 1, true, 5, NULL, false);
    dbt_job_t *job = NULL;
    assert (s_test_state (store, "j1", DBT_STATE_SUCCESS, 1000, &job) == DBT_STATE_SUCCESS);
    assert (job->rows == 5 && job->error == NULL && job->finished_ms > 0);
    dbt_job_destroy (&job);

    //  A failure with retries left goes to RETRY, runs again, error cleared.
    id = s_test_job (w1, &attempt, 2000);
    assert (id && streq (id, "j2") && attempt == 1);
    free (id);
    s_test_done (w1, "j2", 1, false, 0, "boom", false);
    assert (s_test_state (store, "j2", DBT_STATE_RETRY, 1000, &job) == DBT_STATE_RETRY);
    assert (streq (job->error, "boom"));
    dbt_job_destroy (&job);
    id = s_test_job (w1, &attempt, 2000);
    assert (id && streq (id, "j2") && attempt == 2);
    free (id);
    s_test_done (w1, "j2", 1, true, 1, NULL, false);               //  stale attempt: ignored
    s_test_done (w1, "j2", 2, true, 9, NULL, false);
    assert (s_test_state (store, "j2", DBT_STATE_SUCCESS, 1000, &job) == DBT_STATE_SUCCESS);
    assert (job->rows == 9 && job->error == NULL && job->attempts == 2);
    dbt_job_destroy (&job);

    //  A worker that goes silent loses its job to the queue.
    assert (s_test_submit (client, "j3", NULL, 0, 0, NULL, 0) == 200);
    id = s_test_job (w1, &attempt, 2000);
    assert (id && streq (id, "j3"));
    free (id);
    zsock_destroy (&w1);
    assert (s_test_state (store, "j3", DBT_STATE_PENDING, 2000, &job) == DBT_STATE_PENDING);
    assert (job->interruptions == 1 && job->worker == NULL);
    dbt_job_destroy (&job);
    zsock_t *w2 = s_test_worker (endpoint, "w2", "default", 1);
    id = s_test_job (w2, &attempt, 2000);
    assert (id && streq (id, "j3") && attempt == 2);
    free (id);
    s_test_done (w2, "j3", 2, true, 1, NULL, false);

    //  Cancel: pending, finished, purge, running.
    assert (s_test_submit (client, "j4", "parked", 0, 0, NULL, 0) == 200);
    assert (s_test_cancel (client, "j4", false) == 200);
    assert (s_test_state (store, "j4", DBT_STATE_FAILURE, 1000, &job) == DBT_STATE_FAILURE);
    assert (job->cancelled && streq (job->error, "the job was canceled"));
    dbt_job_destroy (&job);
    assert (s_test_cancel (client, "j4", false) == 409);
    assert (s_test_cancel (client, "j4", true) == 200);
    assert (s_test_state (store, "j4", -1, 0, NULL) == -1);
    assert (s_test_cancel (client, "nope", false) == 404);
    assert (s_test_submit (client, "j5", NULL, 0, 3, NULL, 0) == 200);
    id = s_test_job (w2, &attempt, 2000);
    assert (id && streq (id, "j5"));
    free (id);
    assert (s_test_cancel (client, "j5", false) == 200);
    dbt_msg_t *cancel = s_test_expect (w2, DBT_W_CANCEL, 2000);
    assert (cancel);
    dbt_msg_destroy (&cancel);
    s_test_done (w2, "j5", attempt, false, 0, NULL, true);
    assert (s_test_state (store, "j5", DBT_STATE_FAILURE, 1000, &job) == DBT_STATE_FAILURE);
    assert (streq (job->error, "the job was canceled"));       //  no retry after a cancel
    dbt_job_destroy (&job);

    //  ETA: not before its time, soon after.
    int64_t eta = dbt_time_ms () + 400;
    assert (s_test_submit (client, "j6", NULL, eta, 0, NULL, 0) == 200);
    assert (s_test_expect (w2, DBT_W_JOB, 250) == NULL);
    id = s_test_job (w2, &attempt, 1000);
    int64_t late = dbt_time_ms () - eta;
    assert (id && streq (id, "j6") && late >= 0 && late < 150);
    free (id);
    s_test_done (w2, "j6", attempt, true, 0, NULL, false);

    //  Group concurrency: never more than 2 of the group at once.
    char w3_display [DBT_WORKER_DISPLAY_MAX];
    zsock_t *w3 = s_test_worker_as (endpoint, "w3", "grouped", 3, w3_display);
    dbt_mpw_t *w = dbt_client_begin (client);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_array (w);
    for (int i = 1; i <= 3; i++) {
        char gid [8];
        snprintf (gid, sizeof (gid), "g%d", i);
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "task", "t0");
        dbt_mpw_kstr (w, "id", gid);
        dbt_mpw_kstr (w, "queue", "grouped");
        dbt_mpw_end (w);
    }
    dbt_mpw_end (w);
    dbt_mpw_str (w, "group");
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "grp");
    dbt_mpw_ku64 (w, "concurrency", 2);
    dbt_mpw_end (w);
    dbt_reply_t *reply = NULL;
    assert (dbt_client_call (client, DBT_C_SUBMIT, 3000, &reply, err) == 0 && reply->code == 200);
    dbt_reply_destroy (&reply);
    uint64_t a1, a2, a3;
    char *first = s_test_job (w3, &a1, 2000);
    char *second = s_test_job (w3, &a2, 2000);
    assert (first && second && streq (first, "g1") && streq (second, "g2"));
    assert (s_test_expect (w3, DBT_W_JOB, 300) == NULL);       //  limit 2 holds
    assert (s_test_submit (client, "g9", "grouped", 0, 0, "grp", 0) == 409);  //  group unfinished
    s_test_done (w3, "g1", 1, true, 0, NULL, false);
    char *third = s_test_job (w3, &a3, 2000);
    assert (third && streq (third, "g3"));
    s_test_done (w3, "g3", 1, true, 0, NULL, false);
    assert (s_test_state (store, "g3", DBT_STATE_SUCCESS, 1000, NULL) == DBT_STATE_SUCCESS);
    free (first);
    free (second);
    free (third);

    //  Restart: the worker keeps its running job by claiming it.
    zactor_destroy (&dispatcher);
    dbt_client_destroy (&local);
    zstr_free (&local_endpoint);
    //  The old sockets let go of their ports once they are closed.
    for (int tries = 0; tries < 50 && !(local_endpoint && *local_endpoint); tries++) {
        if (tries) {
            zactor_destroy (&dispatcher);
            zstr_free (&local_endpoint);
            zclock_sleep (100);
        }
        dispatcher = zactor_new (dbt_dispatcher_actor, &args);
        zstr_send (dispatcher, "LOCAL");
        local_endpoint = zstr_recv (dispatcher);
    }
    assert (dispatcher && local_endpoint && *local_endpoint);
    local = dbt_client_new (local_endpoint, err);
    assert (local);
    s_test_heartbeat (w3);
    dbt_msg_t *disconnect = s_test_expect (w3, DBT_W_DISCONNECT, 5000);
    assert (disconnect);
    dbt_msg_destroy (&disconnect);
    w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "name", "w3");
    dbt_mpw_str (w, "queues");
    dbt_mpw_array (w);
    dbt_mpw_str (w, "grouped");
    dbt_mpw_end (w);
    dbt_mpw_ku64 (w, "capacity", 3);
    dbt_mpw_str (w, "running");
    dbt_mpw_array (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "g2");
    dbt_mpw_ku64 (w, "attempt", 1);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    assert (dbt_msg_send (w3, NULL, DBT_PROTO_WORKER, DBT_W_READY, w) == 0);
    dbt_mpw_destroy (&w);
    assert (s_test_expect (w3, DBT_W_JOB, 500) == NULL);       //  not dispatched twice
    s_test_done (w3, "g2", 1, true, 3, NULL, false);
    assert (s_test_state (store, "g2", DBT_STATE_SUCCESS, 1000, &job) == DBT_STATE_SUCCESS);
    assert (job->attempts == 1 && job->interruptions == 0);
    dbt_job_destroy (&job);

    //  Garbage does not hurt; PING still answers.
    zsock_t *evil = zsock_new_dealer (endpoint);
    zstr_sendx (evil, DBT_PROTO_CLIENT, "\x01", "\xdd\x7f\xff\xff\xff", NULL);
    zstr_sendx (evil, DBT_PROTO_WORKER, "\x13", "\x81\xa2id\xa2g1", NULL);
    zstr_sendx (evil, "junk", NULL);
    w = dbt_client_begin (client);
    assert (dbt_client_call (client, DBT_C_PING, 3000, &reply, err) == 0 && reply->code == 200);
    dbt_reply_destroy (&reply);
    zsock_destroy (&evil);

    //  A peer without a worker identity is no worker: its READYs are
    //  dropped, it gets no job, and queued jobs stay as they are.
    zsock_t *anon = zsock_new_dealer (endpoint);
    zsock_set_rcvtimeo (anon, 300);
    assert (s_test_submit (client, "sec1", "secure", 0, 0, NULL, 0) == 200);
    for (int i = 0; i < 6; i++) {
        w = dbt_mpw_new ();
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "name", "anon");
        dbt_mpw_str (w, "queues");
        dbt_mpw_array (w);
        dbt_mpw_str (w, "secure");
        dbt_mpw_end (w);
        dbt_mpw_ku64 (w, "capacity", 5);
        dbt_mpw_end (w);
        assert (dbt_msg_send (anon, NULL, DBT_PROTO_WORKER, DBT_W_READY, w) == 0);
        dbt_mpw_destroy (&w);
    }
    assert (s_test_expect (anon, DBT_W_JOB, 300) == NULL);
    assert (s_test_state (store, "sec1", DBT_STATE_PENDING, 0, &job) == DBT_STATE_PENDING);
    assert (job->attempts == 0 && job->interruptions == 0);
    dbt_job_destroy (&job);
    zsock_destroy (&anon);
    zsock_t *w6 = s_test_worker (endpoint, "w6", "secure", 1);
    id = s_test_job (w6, &attempt, 2000);
    assert (id && streq (id, "sec1") && attempt == 1);
    free (id);
    //  Records name the worker by a display id, not its routing id.
    assert (s_test_state (store, "sec1", DBT_STATE_STARTED, 1000, &job) == DBT_STATE_STARTED);
    assert (job->worker && strlen (job->worker) == strlen ("w6/") + 12);
    dbt_job_destroy (&job);
    s_test_done (w6, "sec1", 1, true, 1, NULL, false);
    assert (s_test_state (store, "sec1", DBT_STATE_SUCCESS, 1000, NULL) == DBT_STATE_SUCCESS);
    zsock_destroy (&w6);

    //  Counters for /metrics.
    w = dbt_client_begin (client);
    assert (dbt_client_call (client, DBT_C_STATS, 3000, &reply, err) == 0 && reply->code == 200);
    uint64_t succeeded = 0;
    assert (dbt_mp_field_u64 (reply->data, "succeeded", true, &succeeded, err) == 0);
    assert (succeeded == 2);                    //  this run of the actor saw g2 and sec1 succeed
    const msgpack_object *queues = dbt_mp_get (reply->data, "queues");
    assert (queues && queues->type == MSGPACK_OBJECT_ARRAY && queues->via.array.size >= 1);
    dbt_reply_destroy (&reply);

    //  Janitor: expired results are marked and their table queued for a
    //  drop; a new run of that id waits until the drop is done.
    zsock_t *w4 = s_test_worker (endpoint, "w4", "expiring", 1);
    w = dbt_client_begin (client);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_array (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "task", "t0");
    dbt_mpw_kstr (w, "id", "x1");
    dbt_mpw_kstr (w, "queue", "expiring");
    dbt_mpw_ki64 (w, "results_ttl", 1);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    assert (dbt_client_call (client, DBT_C_SUBMIT, 3000, &reply, err) == 0 && reply->code == 200);
    dbt_reply_destroy (&reply);
    id = s_test_job (w4, &attempt, 2000);
    assert (id && streq (id, "x1"));
    free (id);
    s_test_done (w4, "x1", attempt, true, 4, NULL, false);
    assert (s_test_state (store, "x1", DBT_STATE_SUCCESS, 1000, NULL) == DBT_STATE_SUCCESS);
    zclock_sleep (5);
    w = dbt_client_begin (local);
    dbt_mpw_str (w, "ids");
    dbt_mpw_array (w);
    dbt_mpw_str (w, "x1");
    dbt_mpw_str (w, "g2");                      //  no retention: not expired
    dbt_mpw_end (w);
    assert (dbt_client_call (local, DBT_C_EXPIRE, 3000, &reply, err) == 0 && reply->code == 200);
    assert (reply->data->type == MSGPACK_OBJECT_POSITIVE_INTEGER && reply->data->via.u64 == 1);
    dbt_reply_destroy (&reply);
    assert (s_test_state (store, "x1", DBT_STATE_SUCCESS, 0, &job) == DBT_STATE_SUCCESS);
    assert (job->expired);
    dbt_job_destroy (&job);
    uint64_t drop_key = 0;
    assert (dbt_store_each_drop (store, s_test_drop, &drop_key, err) == 0 && drop_key);
    assert (s_test_submit (client, "x1", "expiring", 0, 0, NULL, 0) == 200);
    assert (s_test_expect (w4, DBT_W_JOB, 300) == NULL);       //  held while the drop is pending
    w = dbt_client_begin (local);
    dbt_mpw_str (w, "drops");
    dbt_mpw_array (w);
    dbt_mpw_map (w);
    dbt_mpw_ku64 (w, "key", drop_key);
    dbt_mpw_kstr (w, "results", "r");
    dbt_mpw_kstr (w, "table", "results_x1");
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    assert (dbt_client_call (local, DBT_C_DROPPED, 3000, &reply, err) == 0 && reply->code == 200);
    dbt_reply_destroy (&reply);
    id = s_test_job (w4, &attempt, 2000);
    assert (id && streq (id, "x1"));
    free (id);
    s_test_done (w4, "x1", attempt, true, 4, NULL, false);
    drop_key = 0;
    assert (dbt_store_each_drop (store, s_test_drop, &drop_key, err) == 0 && drop_key == 0);

    //  A worker whose heartbeat does not list a job it was given long ago
    //  never got it: the job runs again.
    zsock_t *w5 = s_test_worker (endpoint, "w5", "recon", 1);
    assert (s_test_submit (client, "r1", "recon", 0, 0, NULL, 0) == 200);
    id = s_test_job (w5, &attempt, 2000);
    assert (id && streq (id, "r1") && attempt == 1);
    free (id);
    //  Heartbeats listing it keep the worker alive past the reconciliation
    //  window (two heartbeats), then one leaves it out.
    for (int beat = 0; beat <= 6; beat++) {
        if (beat < 6)
            zclock_sleep (50);
        w = dbt_mpw_new ();
        dbt_mpw_map (w);
        dbt_mpw_str (w, "running");
        dbt_mpw_array (w);
        if (beat < 6) {
            dbt_mpw_map (w);
            dbt_mpw_kstr (w, "id", "r1");
            dbt_mpw_ku64 (w, "attempt", 1);
            dbt_mpw_end (w);
        }
        dbt_mpw_end (w);
        dbt_mpw_end (w);
        assert (dbt_msg_send (w5, NULL, DBT_PROTO_WORKER, DBT_W_HEARTBEAT, w) == 0);
        dbt_mpw_destroy (&w);
    }
    id = s_test_job (w5, &attempt, 2000);
    assert (id && streq (id, "r1") && attempt == 2);
    free (id);
    assert (s_test_state (store, "r1", DBT_STATE_STARTED, 0, &job) == DBT_STATE_STARTED);
    assert (job->interruptions == 1);
    dbt_job_destroy (&job);
    s_test_done (w5, "r1", 2, true, 1, NULL, false);
    zsock_destroy (&w5);

    //  Heartbeats echo the last number a worker gave its READY or
    //  HEARTBEAT ("hb" as "heard"), at once; none before it numbers one.
    //  A worker we stop hearing is told to stop its jobs (a fencing
    //  CANCEL) as they go back to the queue.
    zsock_t *we = s_test_worker (endpoint, "we1", "echoed", 1);
    dbt_msg_t *beat = s_test_expect (we, DBT_W_HEARTBEAT, 2000);
    assert (beat && !dbt_mp_get (beat->map, "heard"));
    dbt_msg_destroy (&beat);
    w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_ku64 (w, "hb", 7);
    dbt_mpw_end (w);
    int64_t numbered = dbt_clock_ms ();
    assert (dbt_msg_send (we, NULL, DBT_PROTO_WORKER, DBT_W_HEARTBEAT, w) == 0);
    dbt_mpw_destroy (&w);
    uint64_t heard = 0;
    zsock_set_rcvtimeo (we, 1000);
    while (heard != 7 && dbt_clock_ms () - numbered < 1000) {
        beat = dbt_msg_recv (we, false, err);
        if (beat && beat->command == DBT_W_HEARTBEAT)
            dbt_mp_field_u64 (beat->map, "heard", false, &heard, err);
        dbt_msg_destroy (&beat);
    }
    assert (heard == 7);
    assert (s_test_submit (client, "e1", "echoed", 0, 0, NULL, 0) == 200);
    id = s_test_job (we, &attempt, 2000);
    assert (id && streq (id, "e1") && attempt == 1);
    free (id);
    //  Silent from now on (s_test_expect would heartbeat).
    bool fenced = false;
    int64_t silent = dbt_clock_ms ();
    while (!fenced && dbt_clock_ms () - silent < 2000) {
        dbt_msg_t *next = dbt_msg_recv (we, false, err);
        bool fence = false;
        uint64_t which = 0;
        if (next && next->command == DBT_W_CANCEL
        &&  dbt_mp_field_bool (next->map, "fence", true, &fence, err) == 0 && fence
        &&  dbt_mp_field_u64 (next->map, "attempt", true, &which, err) == 0 && which == 1)
            fenced = true;
        dbt_msg_destroy (&next);
    }
    assert (fenced);
    assert (s_test_state (store, "e1", DBT_STATE_PENDING, 2000, &job) == DBT_STATE_PENDING);
    assert (job->interruptions == 1);
    dbt_job_destroy (&job);
    assert (s_test_cancel (client, "e1", false) == 200);
    zsock_destroy (&we);

    //  A worker that is momentarily full hands a job back unstarted: it is
    //  queued again with neither an attempt nor an interruption counted,
    //  however often that happens, and not sent to that worker again
    //  before it speaks.
    zsock_t *f1 = s_test_worker (endpoint, "f1", "full", 1);
    assert (s_test_submit (client, "f1job", "full", 0, 0, NULL, 0) == 200);
    for (int round = 0; round < 6; round++) {
        id = s_test_job (f1, &attempt, 2000);
        assert (id && streq (id, "f1job") && attempt == 1);
        free (id);
        s_test_refuse (f1, "f1job", 1);
        assert (!s_test_job_unasked (f1, 60));                  //  no tight loop
        assert (s_test_state (store, "f1job", DBT_STATE_PENDING, 0, &job) == DBT_STATE_PENDING);
        assert (job->attempts == 0 && job->interruptions == 0 && job->worker == NULL);
        dbt_job_destroy (&job);
    }
    id = s_test_job (f1, &attempt, 2000);                       //  its heartbeat: room again
    assert (id && streq (id, "f1job") && attempt == 1);
    free (id);
    s_test_done (f1, "f1job", 1, true, 2, NULL, false);
    assert (s_test_state (store, "f1job", DBT_STATE_SUCCESS, 1000, &job) == DBT_STATE_SUCCESS);
    assert (job->attempts == 1 && job->interruptions == 0);
    dbt_job_destroy (&job);
    //  A worker with room takes at once what a full one handed back.
    assert (s_test_submit (client, "f2job", "full", 0, 0, NULL, 0) == 200);
    id = s_test_job (f1, &attempt, 2000);
    assert (id && streq (id, "f2job") && attempt == 1);
    free (id);
    zsock_t *f2 = s_test_worker (endpoint, "f2", "full", 1);
    s_test_refuse (f1, "f2job", 1);
    id = s_test_job (f2, &attempt, 2000);
    assert (id && streq (id, "f2job") && attempt == 1);
    free (id);
    s_test_done (f2, "f2job", 1, true, 0, NULL, false);
    assert (s_test_state (store, "f2job", DBT_STATE_SUCCESS, 1000, &job) == DBT_STATE_SUCCESS);
    assert (job->attempts == 1 && job->interruptions == 0);
    dbt_job_destroy (&job);
    zsock_destroy (&f2);
    zsock_destroy (&f1);

    //  A slot is busy until the worker frees it, per attempt: a job lost by
    //  a READY built before its frame arrived runs there anyway, and its
    //  next attempt on the same worker takes a second slot. Counting both as
    //  one slot sent a third job to a full worker, which handed it back.
    zsock_t *h1 = s_test_worker (endpoint, "h1", "slots", 2);
    assert (s_test_submit (client, "hA", "slots", 0, 0, NULL, 0) == 200);
    id = s_test_job (h1, &attempt, 2000);
    assert (id && streq (id, "hA") && attempt == 1);
    free (id);
    w = dbt_mpw_new ();                                         //  READY without hA
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "name", "h1");
    dbt_mpw_str (w, "queues");
    dbt_mpw_array (w);
    dbt_mpw_str (w, "slots");
    dbt_mpw_end (w);
    dbt_mpw_ku64 (w, "capacity", 2);
    dbt_mpw_end (w);
    assert (dbt_msg_send (h1, NULL, DBT_PROTO_WORKER, DBT_W_READY, w) == 0);
    dbt_mpw_destroy (&w);
    id = s_test_job (h1, &attempt, 2000);
    assert (id && streq (id, "hA") && attempt == 2);             //  both attempts run here
    free (id);
    assert (s_test_submit (client, "hB", "slots", 0, 0, NULL, 0) == 200);
    assert (s_test_expect (h1, DBT_W_JOB, 300) == NULL);       //  both slots busy
    s_test_done (h1, "hA", 1, false, 0, "stopped", true);       //  the stale attempt ends
    id = s_test_job (h1, &attempt, 2000);
    assert (id && streq (id, "hB") && attempt == 1);
    free (id);
    s_test_done (h1, "hB", 1, true, 0, NULL, false);
    s_test_done (h1, "hA", 2, true, 0, NULL, false);
    assert (s_test_state (store, "hA", DBT_STATE_SUCCESS, 1000, &job) == DBT_STATE_SUCCESS);
    assert (job->attempts == 2 && job->interruptions == 1);
    dbt_job_destroy (&job);
    assert (s_test_state (store, "hB", DBT_STATE_SUCCESS, 1000, &job) == DBT_STATE_SUCCESS);
    assert (job->attempts == 1 && job->interruptions == 0);
    dbt_job_destroy (&job);
    //  A heartbeat listing an attempt we did not count (forgotten) makes
    //  that slot busy again, and stops an attempt that is not current.
    w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_str (w, "running");
    dbt_mpw_array (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "id", "hA");
    dbt_mpw_ku64 (w, "attempt", 2);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    assert (dbt_msg_send (h1, NULL, DBT_PROTO_WORKER, DBT_W_HEARTBEAT, w) == 0);
    dbt_mpw_destroy (&w);
    cancel = s_test_expect (h1, DBT_W_CANCEL, 2000);
    assert (cancel);
    dbt_msg_destroy (&cancel);
    zsock_destroy (&h1);

    //  A job whose frame the worker has not had yet ("got" below the
    //  frame's number) is not lost when its READY or heartbeats do not
    //  list it, however late they are; once it has had the frame, it is.
    zsock_t *fw = s_test_worker (endpoint, "fr1", "frames", 1);
    assert (s_test_submit (client, "fA", "frames", 0, 0, NULL, 0) == 200);
    dbt_msg_t *frame_msg = s_test_expect (fw, DBT_W_JOB, 2000);
    assert (frame_msg);
    uint64_t frame = 0;
    assert (dbt_mp_field_u64 (frame_msg->map, "frame", true, &frame, err) == 0 && frame > 1);
    dbt_msg_destroy (&frame_msg);
    for (int round = 0; round < 3; round++) {
        w = dbt_mpw_new ();
        dbt_mpw_map (w);
        if (round == 0) {                                       //  a READY, then heartbeats
            dbt_mpw_kstr (w, "name", "fr1");
            dbt_mpw_str (w, "queues");
            dbt_mpw_array (w);
            dbt_mpw_str (w, "frames");
            dbt_mpw_end (w);
            dbt_mpw_ku64 (w, "capacity", 1);
        }
        dbt_mpw_str (w, "running");
        dbt_mpw_array (w);
        dbt_mpw_end (w);
        dbt_mpw_ku64 (w, "got", frame - 1);
        dbt_mpw_end (w);
        assert (dbt_msg_send (fw, NULL, DBT_PROTO_WORKER,
                              round ? DBT_W_HEARTBEAT : DBT_W_READY, w) == 0);
        dbt_mpw_destroy (&w);
        zclock_sleep (150);                                     //  past two heartbeats in all
    }
    assert (s_test_state (store, "fA", DBT_STATE_STARTED, 0, &job) == DBT_STATE_STARTED);
    assert (job->attempts == 1 && job->interruptions == 0);
    dbt_job_destroy (&job);
    w = dbt_mpw_new ();
    dbt_mpw_map (w);
    dbt_mpw_str (w, "running");
    dbt_mpw_array (w);
    dbt_mpw_end (w);
    dbt_mpw_ku64 (w, "got", frame);
    dbt_mpw_end (w);
    assert (dbt_msg_send (fw, NULL, DBT_PROTO_WORKER, DBT_W_HEARTBEAT, w) == 0);
    dbt_mpw_destroy (&w);
    id = s_test_job (fw, &attempt, 2000);                       //  had it, lost it: again
    assert (id && streq (id, "fA") && attempt == 2);
    free (id);
    s_test_done (fw, "fA", 2, true, 0, NULL, false);
    assert (s_test_state (store, "fA", DBT_STATE_SUCCESS, 1000, &job) == DBT_STATE_SUCCESS);
    assert (job->interruptions == 1);
    dbt_job_destroy (&job);
    zsock_destroy (&fw);

    //  An outcome whose commit fails is not lost: the worker has forgotten
    //  the job once it told it, so its heartbeats no longer list it; the
    //  dispatcher handles the DONE again at the next turns until a commit
    //  keeps it (without that, the job was "lost" and ran again).
    zsock_t *rw = s_test_worker (endpoint, "rp1", "replay", 1);
    assert (s_test_submit (client, "rpA", "replay", 0, 0, NULL, 0) == 200);
    frame_msg = s_test_expect (rw, DBT_W_JOB, 2000);
    assert (frame_msg);
    assert (dbt_mp_field_u64 (frame_msg->map, "frame", true, &frame, err) == 0);
    dbt_msg_destroy (&frame_msg);
    dbt_store_test_fail_commits (store, 3);
    s_test_done (rw, "rpA", 1, true, 5, NULL, false);
    for (int round = 0; round < 4; round++) {
        w = dbt_mpw_new ();
        dbt_mpw_map (w);
        dbt_mpw_str (w, "running");
        dbt_mpw_array (w);
        dbt_mpw_end (w);
        dbt_mpw_ku64 (w, "got", frame);
        dbt_mpw_end (w);
        assert (dbt_msg_send (rw, NULL, DBT_PROTO_WORKER, DBT_W_HEARTBEAT, w) == 0);
        dbt_mpw_destroy (&w);
        zclock_sleep (60);
    }
    assert (s_test_state (store, "rpA", DBT_STATE_SUCCESS, 2000, &job) == DBT_STATE_SUCCESS);
    assert (job->attempts == 1 && job->interruptions == 0 && job->rows == 5);
    dbt_job_destroy (&job);
    assert (!s_test_job_unasked (rw, 300));                     //  and it never ran again
    zsock_destroy (&rw);

    //  Ids that differ only in case cannot keep one results table twice.
    assert (s_test_submit (client, "CaseA", "parked", 0, 0, NULL, 0) == 200);
    assert (s_test_submit (client, "casea", "parked", 0, 0, NULL, 0) == 409);
    assert (s_test_submit (client, "CASEA", "parked", 0, 0, NULL, 0) == 409);
    assert (s_test_cancel (client, "CaseA", false) == 200);
    assert (s_test_submit (client, "casea", "parked", 0, 0, NULL, 0) == 409);   //  still kept
    assert (s_test_submit (client, "CaseA", "parked", 0, 0, NULL, 0) == 200);   //  its own id: fine
    assert (s_test_cancel (client, "CaseA", true) == 200);
    assert (s_test_submit (client, "casea", "parked", 0, 0, NULL, 0) == 200);   //  purged: free
    w = dbt_client_begin (client);
    dbt_mpw_str (w, "jobs");
    dbt_mpw_array (w);
    for (int i = 0; i < 2; i++) {
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "task", "t0");
        dbt_mpw_kstr (w, "id", i ? "MixB" : "mixb");
        dbt_mpw_kstr (w, "queue", "parked");
        dbt_mpw_end (w);
    }
    dbt_mpw_end (w);
    assert (dbt_client_call (client, DBT_C_SUBMIT, 3000, &reply, err) == 0 && reply->code == 400);
    assert (strstr (reply->message, "letter case"));
    dbt_reply_destroy (&reply);
    assert (s_test_state (store, "mixb", -1, 0, NULL) == -1);

    //  The janitor's commands come only from this process.
    w = dbt_client_begin (client);
    dbt_mpw_ki64 (w, "before", dbt_time_ms () + 1000);
    dbt_mpw_str (w, "ids");
    dbt_mpw_array (w);
    dbt_mpw_str (w, "g2");
    dbt_mpw_end (w);
    assert (dbt_client_call (client, DBT_C_FORGET, 3000, &reply, err) == 0 && reply->code == 403);
    dbt_reply_destroy (&reply);
    assert (s_test_state (store, "g2", DBT_STATE_SUCCESS, 0, NULL) == DBT_STATE_SUCCESS);

    //  Janitor: old finished records are forgotten, unfinished ones kept.
    assert (s_test_submit (client, "parked1", "parked", 0, 0, NULL, 0) == 200);
    w = dbt_client_begin (local);
    dbt_mpw_ki64 (w, "before", dbt_time_ms () + 1000);
    dbt_mpw_str (w, "ids");
    dbt_mpw_array (w);
    dbt_mpw_str (w, "g2");
    dbt_mpw_str (w, "parked1");
    dbt_mpw_str (w, "nope");
    dbt_mpw_end (w);
    assert (dbt_client_call (local, DBT_C_FORGET, 3000, &reply, err) == 0 && reply->code == 200);
    assert (reply->data->via.u64 == 1);
    dbt_reply_destroy (&reply);
    assert (s_test_state (store, "g2", -1, 0, NULL) == -1);
    assert (s_test_state (store, "parked1", DBT_STATE_PENDING, 0, NULL) == DBT_STATE_PENDING);
    zsock_destroy (&w4);

    zsock_destroy (&w2);
    zsock_destroy (&w3);
    dbt_client_destroy (&client);
    dbt_client_destroy (&local);
    zstr_free (&local_endpoint);
    zactor_destroy (&dispatcher);
    dbt_store_destroy (&store);
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("dispatcher: ok\n");
}
#endif  //  DBT_SELFTEST
