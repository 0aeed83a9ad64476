/*  =========================================================================
    dbt_mux - many threads' requests to one dispatcher over one socket

    See dbt_mux.h. One mutex guards the send queue and the table of calls
    awaiting a reply; each caller waits on its own condition variable, on
    its own stack. The mux thread never touches a call outside the mutex:
    a caller that times out takes its call out of the table and is gone.
    =========================================================================
*/
#include "dbt_classes.h"
#include <sys/eventfd.h>
#include <semaphore.h>

#define S_BATCH 256             //  replies handed out under one lock
#define S_EXPIRY_MS 10          //  how often calls are checked for their timeout

//  A request awaiting its reply (owned by the table of calls).
typedef struct {
    uint64_t rid;
    int64_t deadline;           //  monotonic ms
    int64_t timeout;            //  ms it was given
    dbt_mux_done_fn *done;
    void *arg;
} s_call_t;

//  A request to send.
typedef struct s_out_t {
    uint64_t rid;
    zmsg_t *msg;
    struct s_out_t *next;
} s_out_t;

struct _dbt_mux_t {
    char *endpoint;
    zsock_t *dealer;            //  the mux thread's alone once started
    int wakefd;                 //  eventfd: a queued request for a sleeping thread
    pthread_t thread;
    pthread_mutex_t lock;       //  guards what follows
    s_out_t *head, *tail;       //  requests to send
    zhashx_t *calls;            //  rid -> s_call_t awaiting a reply
    bool sleeping;              //  the thread waits in zmq_poll
    bool stopping;
    _Atomic uint64_t rid;       //  last rid given
    _Atomic size_t pending;     //  calls awaiting a reply (read without the lock)
    _Atomic int64_t sent_us;    //  monotonic µs of the last call queued
};

static size_t
s_rid_hash (const void *key)
{
    uint64_t rid = *(const uint64_t *) key;
    return (size_t) (rid ^ (rid >> 29));
}

static int
s_rid_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  Take the call of rid out of the table (under the lock): it is then
//  finished with s_done, outside the lock.
//  NULL when there is none (it timed out: a reply is dropped).
static s_call_t *
s_take (dbt_mux_t *self, uint64_t rid)
{
    s_call_t *call = (s_call_t *) zhashx_lookup (self->calls, &rid);
    if (call) {
        zhashx_delete (self->calls, &rid);
        self->pending--;
    }
    return call;
}

//  Finish a taken call: its done, then free it.
static void
s_done (s_call_t *call, int rc, dbt_reply_t *reply, const char *err)
{
    call->done (call->arg, rc, reply, err);
    free (call);
}

//  Send what is queued; a request that cannot be sent fails now.
static void
s_send_queued (dbt_mux_t *self, s_out_t *out)
{
    while (out) {
        s_out_t *next = out->next;
        if (zmsg_send (&out->msg, self->dealer)) {
            char err [DBT_ERRMSG_LEN];
            dbt_err_set (err, "cannot send to dispatcher '%s': %s", self->endpoint,
                         zmq_strerror (errno));
            zmsg_destroy (&out->msg);
            pthread_mutex_lock (&self->lock);
            s_call_t *call = s_take (self, out->rid);
            pthread_mutex_unlock (&self->lock);
            if (call)
                s_done (call, DBT_ERROR, NULL, err);
        }
        free (out);
        out = next;
    }
}

//  Hand out the replies that have come, a batch under one lock.
static void
s_receive (dbt_mux_t *self)
{
    bool more = true;
    while (more) {
        dbt_reply_t *replies [S_BATCH];
        uint64_t rids [S_BATCH];
        size_t count = 0;
        while (count < S_BATCH) {
            char err [DBT_ERRMSG_LEN];
            dbt_msg_t *msg = dbt_msg_recv (self->dealer, false, err);
            if (!msg) {
                if (!err [0])
                    break;      //  nothing more (or a signal)
                continue;       //  malformed: dropped
            }
            replies [count] = dbt_reply_take (&msg, &rids [count]);
            if (replies [count])
                count++;
        }
        more = count == S_BATCH;
        s_call_t *calls [S_BATCH];
        pthread_mutex_lock (&self->lock);
        for (size_t i = 0; i < count; i++)
            calls [i] = s_take (self, rids [i]);
        pthread_mutex_unlock (&self->lock);
        for (size_t i = 0; i < count; i++) {
            if (calls [i]) {
                s_done (calls [i], 0, replies [i], NULL);
                replies [i] = NULL;
            }
            dbt_reply_destroy (&replies [i]);
        }
    }
}

//  Fail the calls whose time is up (all of them when stopping).
static void
s_expire (dbt_mux_t *self, int64_t now, bool all)
{
    zlistx_t *expired = zlistx_new ();
    pthread_mutex_lock (&self->lock);
    for (s_call_t *call = (s_call_t *) zhashx_first (self->calls); call;
         call = (s_call_t *) zhashx_next (self->calls))
        if (all || call->deadline <= now)
            zlistx_add_end (expired, call);
    for (s_call_t *call = (s_call_t *) zlistx_first (expired); call;
         call = (s_call_t *) zlistx_next (expired))
        s_take (self, call->rid);
    pthread_mutex_unlock (&self->lock);
    s_call_t *call;
    while ((call = (s_call_t *) zlistx_detach (expired, NULL))) {
        char err [DBT_ERRMSG_LEN];
        if (all)
            dbt_err_set (err, "dispatcher '%s' did not answer before the node stopped",
                         self->endpoint);
        else
            dbt_err_set (err, "dispatcher '%s' did not answer within %" PRId64 " ms",
                         self->endpoint, call->timeout);
        s_done (call, DBT_ETIMEDOUT, NULL, err);
    }
    zlistx_destroy (&expired);
}

static void *
s_thread (void *arg)
{
    dbt_mux_t *self = (dbt_mux_t *) arg;
    dbt_thread_name ("dbt-mux");
    int64_t next_expiry = 0;
    while (true) {
        pthread_mutex_lock (&self->lock);
        s_out_t *out = self->head;
        self->head = self->tail = NULL;
        bool stopping = self->stopping;
        pthread_mutex_unlock (&self->lock);
        s_send_queued (self, out);
        if (stopping)
            break;
        s_receive (self);
        int64_t now = dbt_clock_ms ();
        if (now >= next_expiry) {
            s_expire (self, now, false);
            next_expiry = now + S_EXPIRY_MS;
        }
        //  Sleep until a reply, a queued request or the next expiry check.
        //  A request queued after the check below finds sleeping set and
        //  writes the eventfd.
        pthread_mutex_lock (&self->lock);
        bool idle = !self->head && !self->stopping;
        self->sleeping = idle;
        long timeout = zhashx_size (self->calls) ? S_EXPIRY_MS : 1000;
        pthread_mutex_unlock (&self->lock);
        if (!idle)
            continue;
        zmq_pollitem_t items [2] = {
            { zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0 },
            { NULL, self->wakefd, ZMQ_POLLIN, 0 }
        };
        zmq_poll (items, 2, timeout);
        pthread_mutex_lock (&self->lock);
        self->sleeping = false;
        pthread_mutex_unlock (&self->lock);
        if (items [1].revents & ZMQ_POLLIN) {
            uint64_t count;
            if (read (self->wakefd, &count, sizeof (count)) < 0)
                continue;       //  reset by another read: nothing lost
        }
    }
    s_expire (self, dbt_clock_ms (), true);
    return NULL;
}

dbt_mux_t *
dbt_mux_new (const char *endpoint, dbt_client_setup_fn *setup, void *arg, char *err)
{
    assert (endpoint);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (dealer) {
        zsock_set_linger (dealer, 0);
        dbt_msg_limit (dealer);
        zsock_set_immediate (dealer, 1);
        zsock_set_sndhwm (dealer, 100000);
        zsock_set_rcvhwm (dealer, 100000);
        zsock_set_sndtimeo (dealer, 0);
        zsock_set_rcvtimeo (dealer, 0);
    }
    if (dealer && setup && setup (dealer, arg, err)) {
        zsock_destroy (&dealer);
        return NULL;
    }
    if (!dealer || zsock_connect (dealer, "%s", endpoint)) {
        dbt_err_set (err, "cannot connect to dispatcher '%s'", endpoint);
        zsock_destroy (&dealer);
        return NULL;
    }
    int wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakefd < 0) {
        dbt_err_set (err, "cannot make an eventfd: %s", strerror (errno));
        zsock_destroy (&dealer);
        return NULL;
    }
    dbt_mux_t *self = (dbt_mux_t *) dbt_malloc (sizeof (dbt_mux_t));
    self->endpoint = dbt_strdup (endpoint);
    self->dealer = dealer;
    self->wakefd = wakefd;
    pthread_mutex_init (&self->lock, NULL);
    self->calls = zhashx_new ();
    zhashx_set_key_hasher (self->calls, s_rid_hash);
    zhashx_set_key_comparator (self->calls, s_rid_compare);
    zhashx_set_key_duplicator (self->calls, NULL);
    zhashx_set_key_destructor (self->calls, NULL);
    //  As dbt_client: a late reply to another mux's request is never ours.
    self->rid = dbt_random64 () >> 1;
    if (pthread_create (&self->thread, NULL, s_thread, self)) {
        dbt_err_set (err, "cannot start a thread: %s", strerror (errno));
        zhashx_destroy (&self->calls);
        pthread_mutex_destroy (&self->lock);
        close (self->wakefd);
        zsock_destroy (&self->dealer);
        free (self->endpoint);
        free (self);
        return NULL;
    }
    return self;
}

void
dbt_mux_destroy (dbt_mux_t **self_p)
{
    assert (self_p);
    dbt_mux_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_mutex_unlock (&self->lock);
    uint64_t one = 1;
    if (write (self->wakefd, &one, sizeof (one)) < 0)
        dbt_log (DBT_LOG_DEBUG, "mux: cannot wake its thread: %s", strerror (errno));
    pthread_join (self->thread, NULL);
    zhashx_destroy (&self->calls);
    pthread_mutex_destroy (&self->lock);
    close (self->wakefd);
    zsock_destroy (&self->dealer);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

bool
dbt_mux_busy (dbt_mux_t *self, int64_t within_us)
{
    return self->pending > 0 || zclock_usecs () - self->sent_us < within_us;
}

const char *
dbt_mux_endpoint (dbt_mux_t *self)
{
    return self->endpoint;
}

uint64_t
dbt_mux_begin (dbt_mux_t *self, dbt_mpw_t *writer)
{
    uint64_t rid = ++self->rid;
    dbt_mpw_reset (writer);
    dbt_mpw_map (writer);
    dbt_mpw_ku64 (writer, "rid", rid);
    return rid;
}

int
dbt_mux_send (dbt_mux_t *self, uint64_t rid, int command, dbt_mpw_t *writer,
              int64_t timeout_ms, dbt_mux_done_fn *done, void *arg, char *err)
{
    assert (timeout_ms > 0 && done);
    dbt_mpw_end (writer);
    size_t size;
    dbt_mpw_data (writer, &size);
    if (size > DBT_MSG_MAX_BODY) {
        dbt_err_set (err, "request of %zu bytes is over the mesh's limit of %d bytes", size,
                     DBT_MSG_MAX_BODY);
        dbt_mpw_reset (writer);
        return DBT_ETOOBIG;
    }
    s_out_t *out = (s_out_t *) dbt_malloc (sizeof (s_out_t));
    out->rid = rid;
    out->msg = dbt_msg_encode (NULL, DBT_PROTO_CLIENT, command, writer);
    s_call_t *call = (s_call_t *) dbt_malloc (sizeof (s_call_t));
    *call = (s_call_t) { rid, dbt_clock_ms () + timeout_ms, timeout_ms, done, arg };
    pthread_mutex_lock (&self->lock);
    bool stopping = self->stopping;
    if (!stopping) {
        zhashx_insert (self->calls, &call->rid, call);
        self->pending++;
        self->sent_us = zclock_usecs ();
        if (self->tail)
            self->tail->next = out;
        else
            self->head = out;
        self->tail = out;
        if (self->sleeping) {
            self->sleeping = false;
            uint64_t one = 1;
            if (write (self->wakefd, &one, sizeof (one)) < 0)
                dbt_log (DBT_LOG_DEBUG, "mux: cannot wake its thread: %s", strerror (errno));
        }
    }
    pthread_mutex_unlock (&self->lock);
    if (stopping) {
        zmsg_destroy (&out->msg);
        free (out);
        free (call);
        dbt_err_set (err, "cannot send to dispatcher '%s': the node is stopping", self->endpoint);
        return DBT_ERROR;
    }
    return 0;
}

//  A blocking call: dbt_mux_send, then a wait on a semaphore that its done
//  posts.
typedef struct {
    sem_t posted;
    int rc;
    dbt_reply_t *reply;
    char err [DBT_ERRMSG_LEN];
} s_sync_t;

static void
s_sync_done (void *arg, int rc, dbt_reply_t *reply, const char *err)
{
    s_sync_t *sync = (s_sync_t *) arg;
    sync->rc = rc;
    sync->reply = reply;
    if (err)
        snprintf (sync->err, sizeof (sync->err), "%s", err);
    sem_post (&sync->posted);
}

int
dbt_mux_call (dbt_mux_t *self, uint64_t rid, int command, dbt_mpw_t *writer,
              int64_t timeout_ms, dbt_reply_t **reply_p, char *err)
{
    *reply_p = NULL;
    s_sync_t sync = { .rc = 0 };
    sem_init (&sync.posted, 0, 0);
    int rc = dbt_mux_send (self, rid, command, writer, timeout_ms, s_sync_done, &sync, err);
    if (rc == 0) {
        while (sem_wait (&sync.posted) && errno == EINTR)
            ;
        rc = sync.rc;
        *reply_p = sync.reply;
        if (rc)
            snprintf (err, DBT_ERRMSG_LEN, "%s", sync.err);
    }
    sem_destroy (&sync.posted);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self test

#ifdef DBT_SELFTEST

#define S_CALLERS 8
#define S_CALLS 200

typedef struct {
    dbt_mux_t *mux;
    int index;
    int answered;               //  replies that carried this caller's own value
} s_caller_t;

static void *
s_caller (void *arg)
{
    s_caller_t *caller = (s_caller_t *) arg;
    dbt_mpw_t *writer = dbt_mpw_new ();
    char err [DBT_ERRMSG_LEN];
    for (int i = 0; i < S_CALLS; i++) {
        uint64_t rid = dbt_mux_begin (caller->mux, writer);
        uint64_t value = (uint64_t) caller->index * 100000 + (uint64_t) i;
        dbt_mpw_ku64 (writer, "value", value);
        dbt_reply_t *reply = NULL;
        if (dbt_mux_call (caller->mux, rid, DBT_C_PING, writer, 5000, &reply, err) == 0) {
            uint64_t echoed = 0;
            if (reply->code == 200 && reply->data
            &&  dbt_mp_field_u64 (reply->data, "value", true, &echoed, err) == 0 && echoed == value)
                caller->answered++;
            dbt_reply_destroy (&reply);
        }
    }
    dbt_mpw_destroy (&writer);
    return NULL;
}

//  A dispatcher stand-in: answers PING with its value after collecting a
//  few requests (so replies cross), says nothing to a value of 7, and
//  answers a value of 8 twice (the second answer must be dropped).
static void
s_echo_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router ((const char *) args);
    zsock_set_rcvtimeo (router, 20);
    zsock_signal (pipe, 0);
    dbt_mpw_t *writer = dbt_mpw_new ();
    dbt_msg_t *held [4];
    size_t nheld = 0;
    while (!zsys_interrupted) {
        char err [DBT_ERRMSG_LEN];
        zmq_pollitem_t items [] = { { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 } };
        if (zmq_poll (items, 1, 0) > 0)
            break;
        dbt_msg_t *msg = dbt_msg_recv (router, true, err);
        if (msg)
            held [nheld++] = msg;
        if (nheld < 4 && (msg || nheld == 0))
            continue;
        for (size_t i = nheld; i-- > 0; ) {     //  in reverse order
            uint64_t rid = 0, value = 0;
            dbt_mp_field_u64 (held [i]->map, "rid", true, &rid, err);
            dbt_mp_field_u64 (held [i]->map, "value", true, &value, err);
            for (int times = value == 8 ? 2 : value == 7 ? 0 : 1; times > 0; times--) {
                dbt_mpw_reset (writer);
                dbt_mpw_map (writer);
                dbt_mpw_ku64 (writer, "rid", rid);
                dbt_mpw_ku64 (writer, "code", 200);
                dbt_mpw_str (writer, "data");
                dbt_mpw_map (writer);
                dbt_mpw_ku64 (writer, "value", value);
                dbt_mpw_end (writer);
                dbt_mpw_end (writer);
                dbt_msg_send (router, held [i]->identity, DBT_PROTO_CLIENT, DBT_C_REPLY, writer);
            }
            dbt_msg_destroy (&held [i]);
        }
        nheld = 0;
    }
    for (size_t i = 0; i < nheld; i++)
        dbt_msg_destroy (&held [i]);
    dbt_mpw_destroy (&writer);
    zsock_destroy (&router);
}

//  An asynchronous call's outcome.
typedef struct {
    sem_t posted;
    int rc;
    uint64_t value;             //  the reply's
    bool other_thread;          //  done ran on another thread than the test's
    pthread_t test_thread;
    char err [DBT_ERRMSG_LEN];
} s_async_t;

static void
s_async_done (void *arg, int rc, dbt_reply_t *reply, const char *err)
{
    s_async_t *async = (s_async_t *) arg;
    char perr [DBT_ERRMSG_LEN];
    async->rc = rc;
    async->value = 0;
    if (reply)
        dbt_mp_field_u64 (reply->data, "value", true, &async->value, perr);
    dbt_reply_destroy (&reply);
    snprintf (async->err, sizeof (async->err), "%s", err ? err : "");
    async->other_thread = !pthread_equal (pthread_self (), async->test_thread);
    sem_post (&async->posted);
}

void
dbt_mux_test (bool verbose)
{
    (void) verbose;
    char err [DBT_ERRMSG_LEN];
    const char *endpoint = "inproc://dbt-mux-test";
    zactor_t *echo = zactor_new (s_echo_actor, (void *) endpoint);
    dbt_mux_t *mux = dbt_mux_new (endpoint, NULL, NULL, err);
    assert (mux);
    assert (streq (dbt_mux_endpoint (mux), endpoint));

    //  Many callers at once: each gets the reply to its own request.
    pthread_t threads [S_CALLERS];
    s_caller_t callers [S_CALLERS];
    for (int i = 0; i < S_CALLERS; i++) {
        callers [i] = (s_caller_t) { mux, i + 1, 0 };
        assert (pthread_create (&threads [i], NULL, s_caller, &callers [i]) == 0);
    }
    for (int i = 0; i < S_CALLERS; i++) {
        pthread_join (threads [i], NULL);
        assert (callers [i].answered == S_CALLS);
    }

    //  No answer: a timeout; the answer given twice reaches its caller once.
    dbt_mpw_t *writer = dbt_mpw_new ();
    dbt_reply_t *reply = NULL;
    uint64_t rid = dbt_mux_begin (mux, writer);
    dbt_mpw_ku64 (writer, "value", 7);
    int64_t t0 = dbt_clock_ms ();
    assert (dbt_mux_call (mux, rid, DBT_C_PING, writer, 150, &reply, err) == DBT_ETIMEDOUT);
    assert (dbt_clock_ms () - t0 >= 140 && !reply && strstr (err, "did not answer"));
    rid = dbt_mux_begin (mux, writer);
    dbt_mpw_ku64 (writer, "value", 8);
    assert (dbt_mux_call (mux, rid, DBT_C_PING, writer, 2000, &reply, err) == 0);
    dbt_reply_destroy (&reply);
    rid = dbt_mux_begin (mux, writer);
    dbt_mpw_ku64 (writer, "value", 9);
    assert (dbt_mux_call (mux, rid, DBT_C_PING, writer, 2000, &reply, err) == 0);
    uint64_t value = 0;
    assert (dbt_mp_field_u64 (reply->data, "value", true, &value, err) == 0 && value == 9);
    dbt_reply_destroy (&reply);

    //  Without waiting: done is called on the mux thread, with the reply,
    //  or with a timeout; a mux destroyed with a call pending ends it.
    s_async_t async = { .rc = -1, .test_thread = pthread_self () };
    sem_init (&async.posted, 0, 0);
    rid = dbt_mux_begin (mux, writer);
    dbt_mpw_ku64 (writer, "value", 11);
    assert (dbt_mux_send (mux, rid, DBT_C_PING, writer, 2000, s_async_done, &async, err) == 0);
    sem_wait (&async.posted);
    assert (async.rc == 0 && async.value == 11 && async.other_thread);
    rid = dbt_mux_begin (mux, writer);
    dbt_mpw_ku64 (writer, "value", 7);
    assert (dbt_mux_send (mux, rid, DBT_C_PING, writer, 60, s_async_done, &async, err) == 0);
    sem_wait (&async.posted);
    assert (async.rc == DBT_ETIMEDOUT && strstr (async.err, "within 60 ms"));

    //  Too big: refused before sending.
    rid = dbt_mux_begin (mux, writer);
    char *big = (char *) dbt_malloc (DBT_MSG_MAX_BODY + 1);
    memset (big, 'x', DBT_MSG_MAX_BODY);
    big [DBT_MSG_MAX_BODY] = 0;
    dbt_mpw_kstr (writer, "big", big);
    free (big);
    assert (dbt_mux_call (mux, rid, DBT_C_PING, writer, 100, &reply, err) == DBT_ETOOBIG);
    dbt_mux_destroy (&mux);
    assert (!mux);

    //  Nobody at the endpoint: the request is not queued for later.
    mux = dbt_mux_new ("tcp://127.0.0.1:1", NULL, NULL, err);
    assert (mux);
    rid = dbt_mux_begin (mux, writer);
    assert (dbt_mux_call (mux, rid, DBT_C_PING, writer, 2000, &reply, err) == DBT_ERROR);
    assert (strstr (err, "cannot send"));
    dbt_mux_destroy (&mux);

    //  A call pending when the mux is destroyed ends then.
    mux = dbt_mux_new (endpoint, NULL, NULL, err);
    rid = dbt_mux_begin (mux, writer);
    dbt_mpw_ku64 (writer, "value", 7);
    assert (dbt_mux_send (mux, rid, DBT_C_PING, writer, 60000, s_async_done, &async, err) == 0);
    zclock_sleep (50);
    dbt_mux_destroy (&mux);
    sem_wait (&async.posted);
    assert (async.rc == DBT_ETIMEDOUT && strstr (async.err, "before the node stopped"));
    sem_destroy (&async.posted);
    dbt_mpw_destroy (&writer);
    zactor_destroy (&echo);
}

#endif  //  DBT_SELFTEST
