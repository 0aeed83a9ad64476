/*  =========================================================================
    dbt_client - request/reply client of a dispatcher

    See dbt_client.h.
    =========================================================================
*/
#include "dbt_classes.h"

struct _dbt_client_t {
    zsock_t *dealer;            //  to the dispatcher
    char *endpoint;             //  its endpoint
    dbt_mpw_t *writer;          //  request body
    uint64_t rid;               //  last request id
    dbt_client_progress_fn *progress;  //  called with PROGRESS frames, or NULL
    void *progress_arg;         //  its argument
};

dbt_client_t *
dbt_client_new (const char *endpoint, char *err)
{
    return dbt_client_new_with (endpoint, NULL, NULL, err);
}

dbt_client_t *
dbt_client_new_with (const char *endpoint, dbt_client_setup_fn *setup, void *arg, char *err)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (dealer) {
        zsock_set_linger (dealer, 0);
        dbt_msg_limit (dealer);
        zsock_set_sndtimeo (dealer, 1000);
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
    dbt_client_t *self = (dbt_client_t *) dbt_malloc (sizeof (dbt_client_t));
    self->dealer = dealer;
    self->endpoint = dbt_strdup (endpoint);
    self->writer = dbt_mpw_new ();
    //  Start request ids at a random point so a late reply to another
    //  client's request can never be mistaken for ours.
    self->rid = dbt_random64 () >> 1;
    return self;
}

void
dbt_client_destroy (dbt_client_t **self_p)
{
    assert (self_p);
    dbt_client_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->dealer);
    dbt_mpw_destroy (&self->writer);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

const char *
dbt_client_endpoint (dbt_client_t *self)
{
    return self->endpoint;
}

void
dbt_client_set_progress (dbt_client_t *self, dbt_client_progress_fn *fn, void *arg)
{
    self->progress = fn;
    self->progress_arg = arg;
}

dbt_mpw_t *
dbt_client_begin (dbt_client_t *self)
{
    dbt_mpw_reset (self->writer);
    dbt_mpw_map (self->writer);
    dbt_mpw_ku64 (self->writer, "rid", ++self->rid);
    return self->writer;
}

void
dbt_reply_destroy (dbt_reply_t **self_p)
{
    assert (self_p);
    dbt_reply_t *self = *self_p;
    if (!self)
        return;
    free (self->message);
    dbt_mpr_destroy (&self->doc);
    free (self);
    *self_p = NULL;
}

int
dbt_client_call (dbt_client_t *self, int command, int64_t timeout_ms,
                 dbt_reply_t **reply_p, char *err)
{
    *reply_p = NULL;
    dbt_mpw_end (self->writer);
    size_t size;
    dbt_mpw_data (self->writer, &size);
    if (size > DBT_MSG_MAX_BODY) {
        dbt_err_set (err, "request of %zu bytes is over the mesh's limit of %d bytes", size,
                     DBT_MSG_MAX_BODY);
        dbt_mpw_reset (self->writer);
        return DBT_ETOOBIG;
    }
    if (dbt_msg_send (self->dealer, NULL, DBT_PROTO_CLIENT, command, self->writer)) {
        dbt_err_set (err, "cannot send to dispatcher '%s': %s", self->endpoint, zmq_strerror (errno));
        return DBT_ERROR;
    }
    return dbt_client_wait (self, timeout_ms, reply_p, err);
}

int
dbt_client_wait (dbt_client_t *self, int64_t timeout_ms, dbt_reply_t **reply_p, char *err)
{
    *reply_p = NULL;
    uint64_t rid = self->rid;
    int64_t deadline = dbt_clock_ms () + timeout_ms;
    while (true) {
        int64_t left = deadline - dbt_clock_ms ();
        if (left <= 0) {
            dbt_err_set (err, "dispatcher '%s' did not answer within %" PRId64 " ms",
                         self->endpoint, timeout_ms);
            return DBT_ETIMEDOUT;
        }
        //  A receive that blocks up to what is left: one wait in the
        //  kernel, where zmq_poll then a receive takes several calls.
        zsock_set_rcvtimeo (self->dealer, left < INT_MAX ? (int) left : INT_MAX);
        char perr [DBT_ERRMSG_LEN];
        dbt_msg_t *msg = dbt_msg_recv (self->dealer, false, perr);
        if (!msg) {
            if (!perr [0] && errno != EAGAIN && errno != EINTR) {
                dbt_err_set (err, "cannot receive from dispatcher '%s': %s", self->endpoint,
                             zmq_strerror (errno));
                return DBT_ERROR;
            }
            continue;
        }
        uint64_t got = 0;
        if (msg->command == DBT_C_PROGRESS && self->progress
        &&  dbt_mp_field_u64 (msg->map, "rid", true, &got, perr) == 0 && got == rid) {
            self->progress (msg->map, self->progress_arg);
            dbt_msg_destroy (&msg);
            continue;
        }
        dbt_reply_t *reply = dbt_reply_take (&msg, &got);
        if (!reply || got != rid) {
            dbt_reply_destroy (&reply);     //  a late reply to an old request
            continue;
        }
        *reply_p = reply;
        return 0;
    }
}

dbt_reply_t *
dbt_reply_take (dbt_msg_t **msg_p, uint64_t *rid_p)
{
    dbt_msg_t *msg = *msg_p;
    char err [DBT_ERRMSG_LEN];
    uint64_t rid = 0, code = 0;
    dbt_reply_t *reply = NULL;
    if (msg->command == DBT_C_REPLY
    &&  dbt_mp_field_u64 (msg->map, "rid", true, &rid, err) == 0
    &&  dbt_mp_field_u64 (msg->map, "code", true, &code, err) == 0) {
        reply = (dbt_reply_t *) dbt_malloc (sizeof (dbt_reply_t));
        reply->code = (int) code;
        dbt_mp_field_str (msg->map, "message", false, &reply->message, err);
        reply->doc = msg->body;
        msg->body = NULL;
        reply->data = dbt_mp_get (dbt_mpr_root (reply->doc), "data");
        *rid_p = rid;
    }
    dbt_msg_destroy (msg_p);
    return reply;
}
