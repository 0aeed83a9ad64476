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

//  A request waiting for its reply (on the caller's stack). The mux
//  thread sets the outcome and done under the lock, takes the call out of
//  the table and then posts its semaphore, outside the lock: a caller
//  that finds done set after its wait timed out waits for that post.
typedef struct {
    uint64_t rid;
    dbt_reply_t *reply;         //  set by the mux thread
    int send_errno;             //  set by the mux thread when it could not send
    bool done;                  //  reply or send_errno is set
    sem_t posted;
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

//  Hand a call its outcome (under the lock). Returns the call, whose
//  semaphore the caller posts once the lock is released; NULL when the
//  call timed out (the reply is dropped).
static s_call_t *
s_finish (dbt_mux_t *self, uint64_t rid, dbt_reply_t **reply_p, int send_errno)
{
    s_call_t *call = (s_call_t *) zhashx_lookup (self->calls, &rid);
    if (!call)
        return NULL;
    zhashx_delete (self->calls, &rid);
    if (reply_p) {
        call->reply = *reply_p;
        *reply_p = NULL;
    }
    call->send_errno = send_errno;
    call->done = true;
    return call;
}

static void *
s_thread (void *arg)
{
    dbt_mux_t *self = (dbt_mux_t *) arg;
    dbt_thread_name ("dbt-mux");
    while (true) {
        pthread_mutex_lock (&self->lock);
        s_out_t *out = self->head;
        self->head = self->tail = NULL;
        bool stopping = self->stopping;
        pthread_mutex_unlock (&self->lock);
        if (stopping && !out)
            break;
        while (out) {
            s_out_t *next = out->next;
            if (zmsg_send (&out->msg, self->dealer)) {
                int error = errno;
                zmsg_destroy (&out->msg);
                pthread_mutex_lock (&self->lock);
                s_call_t *call = s_finish (self, out->rid, NULL, error);
                pthread_mutex_unlock (&self->lock);
                if (call)
                    sem_post (&call->posted);
            }
            free (out);
            out = next;
        }
        //  Replies that have come, without waiting, handed out a batch
        //  at a time.
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
                        break;  //  nothing more (or a signal)
                    continue;   //  malformed: dropped
                }
                replies [count] = dbt_reply_take (&msg, &rids [count]);
                if (replies [count])
                    count++;
            }
            more = count == S_BATCH;
            s_call_t *calls [S_BATCH];
            pthread_mutex_lock (&self->lock);
            for (size_t i = 0; i < count; i++)
                calls [i] = s_finish (self, rids [i], &replies [i], 0);
            pthread_mutex_unlock (&self->lock);
            for (size_t i = 0; i < count; i++) {
                if (calls [i])
                    sem_post (&calls [i]->posted);
                dbt_reply_destroy (&replies [i]);
            }
        }
        //  Sleep until a reply or a queued request. A request queued after
        //  the check below finds sleeping set and writes the eventfd.
        pthread_mutex_lock (&self->lock);
        bool idle = !self->head && !self->stopping;
        self->sleeping = idle;
        pthread_mutex_unlock (&self->lock);
        if (!idle)
            continue;
        zmq_pollitem_t items [2] = {
            { zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0 },
            { NULL, self->wakefd, ZMQ_POLLIN, 0 }
        };
        zmq_poll (items, 2, 1000);
        pthread_mutex_lock (&self->lock);
        self->sleeping = false;
        pthread_mutex_unlock (&self->lock);
        if (items [1].revents & ZMQ_POLLIN) {
            uint64_t count;
            if (read (self->wakefd, &count, sizeof (count)) < 0)
                continue;       //  reset by another read: nothing lost
        }
    }
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
    assert (zhashx_size (self->calls) == 0);
    zhashx_destroy (&self->calls);
    pthread_mutex_destroy (&self->lock);
    close (self->wakefd);
    zsock_destroy (&self->dealer);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
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
dbt_mux_call (dbt_mux_t *self, uint64_t rid, int command, dbt_mpw_t *writer,
              int64_t timeout_ms, dbt_reply_t **reply_p, char *err)
{
    assert (timeout_ms > 0);
    *reply_p = NULL;
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
    s_call_t call = { .rid = rid };
    sem_init (&call.posted, 0, 0);
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }

    pthread_mutex_lock (&self->lock);
    bool stopping = self->stopping;
    if (!stopping) {
        zhashx_insert (self->calls, &call.rid, &call);
        if (self->tail)
            self->tail->next = out;
        else
            self->head = out;
        self->tail = out;
        out = NULL;
        if (self->sleeping) {
            self->sleeping = false;
            uint64_t one = 1;
            if (write (self->wakefd, &one, sizeof (one)) < 0)
                dbt_log (DBT_LOG_DEBUG, "mux: cannot wake its thread: %s", strerror (errno));
        }
    }
    pthread_mutex_unlock (&self->lock);
    if (!stopping) {
        int rc;
        while ((rc = sem_clockwait (&call.posted, CLOCK_MONOTONIC, &deadline)) != 0 && errno == EINTR)
            ;
        if (rc) {
            pthread_mutex_lock (&self->lock);
            bool done = call.done;
            if (!done)
                zhashx_delete (self->calls, &call.rid);
            pthread_mutex_unlock (&self->lock);
            if (done)           //  handed out meanwhile: its post is coming
                while (sem_wait (&call.posted) && errno == EINTR)
                    ;
        }
    }
    sem_destroy (&call.posted);
    if (out) {
        zmsg_destroy (&out->msg);
        free (out);
    }
    if (stopping) {
        dbt_err_set (err, "cannot send to dispatcher '%s': shutting down", self->endpoint);
        return DBT_ERROR;
    }
    if (call.done && call.reply) {
        *reply_p = call.reply;
        return 0;
    }
    if (call.done) {
        dbt_err_set (err, "cannot send to dispatcher '%s': %s", self->endpoint,
                     zmq_strerror (call.send_errno));
        return DBT_ERROR;
    }
    dbt_err_set (err, "dispatcher '%s' did not answer within %" PRId64 " ms", self->endpoint,
                 timeout_ms);
    return DBT_ETIMEDOUT;
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
    dbt_mpw_destroy (&writer);
    zactor_destroy (&echo);
}

#endif  //  DBT_SELFTEST
