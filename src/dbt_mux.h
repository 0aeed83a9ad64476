/*  =========================================================================
    dbt_mux - many threads' requests to one dispatcher over one socket

    A thread of its own owns a DEALER connected to one dispatcher endpoint.
    Any thread may call dbt_mux_call at any time: its request is queued,
    the mux thread sends it, and the caller sleeps until the mux thread
    hands it the reply that carries its request id (rid), or until its
    timeout. dbt_mux_send does the same without waiting: a function is
    called on the mux thread with the outcome. Requests queued while the mux thread works go out together,
    and all replies come back on one pipe: a dispatcher that answers a
    commit's worth of callers at once writes them into one socket and
    wakes one thread, where a socket per caller costs the dispatcher a
    wake-up per reply. The dispatcher's one thread is what bounds
    acceptances per second, so the wake-ups move to the mux thread.

    Requests and replies are those of dbt_client (the rid first in the
    request's map; the reply's code, message and data), and so are the
    return codes. A reply to a request that timed out is recognised by its
    rid and dropped. The socket does not queue for a peer it is not
    connected to (ZMQ_IMMEDIATE): such a request fails at once.
    =========================================================================
*/
#ifndef DBT_MUX_H_INCLUDED
#define DBT_MUX_H_INCLUDED

#include "dbt_client.h"

typedef struct _dbt_mux_t dbt_mux_t;

//  Start a mux thread whose socket connects to endpoint, setup (when not
//  NULL) applied to the socket first. Returns NULL with err set.
dbt_mux_t *
    dbt_mux_new (const char *endpoint, dbt_client_setup_fn *setup, void *arg, char *err);

//  Stop the thread and destroy; nulls the pointer. Calls still awaiting a
//  reply end with DBT_ETIMEDOUT first; no call may start meanwhile.
void
    dbt_mux_destroy (dbt_mux_t **self_p);

//  The endpoint it talks to. Borrowed.
const char *
    dbt_mux_endpoint (dbt_mux_t *self);

//  True when a call awaits its reply, or one was sent within the last
//  within_us microseconds (a hint: it may change at once).
bool
    dbt_mux_busy (dbt_mux_t *self, int64_t within_us);

//  Start a request body in writer (the caller's own): reset, a map opened,
//  a fresh rid written. Add the request's fields, then call dbt_mux_call.
//  Returns the rid.
uint64_t
    dbt_mux_begin (dbt_mux_t *self, dbt_mpw_t *writer);

//  What an asynchronous request came to, called once on the mux thread:
//  rc 0 with the reply (done owns and destroys it), or DBT_ETIMEDOUT
//  (sent, no answer within the timeout, or none before the mux stopped:
//  the outcome is unknown) or DBT_ERROR (it could not be sent), with err.
//  It must not block: the mux thread hands out every other reply too.
typedef void (dbt_mux_done_fn) (void *arg, int rc, dbt_reply_t *reply, const char *err);

//  Close the body and queue it as command; done is called once the reply
//  comes, or timeout_ms (more than 0) after without one. Returns 0, or
//  DBT_ETOOBIG (over DBT_MSG_MAX_BODY) or DBT_ERROR (the mux is stopping)
//  with err set; then nothing was sent and done is not called.
int
    dbt_mux_send (dbt_mux_t *self, uint64_t rid, int command, dbt_mpw_t *writer,
                  int64_t timeout_ms, dbt_mux_done_fn *done, void *arg, char *err);

//  Close the body, send it as command and wait up to timeout_ms (more than
//  0) for the reply. Returns 0 with *reply_p (caller destroys),
//  DBT_ETIMEDOUT (sent, no answer: the outcome is unknown), DBT_ETOOBIG
//  (over DBT_MSG_MAX_BODY, not sent), or DBT_ERROR (not sent) with err set.
int
    dbt_mux_call (dbt_mux_t *self, uint64_t rid, int command, dbt_mpw_t *writer,
                  int64_t timeout_ms, dbt_reply_t **reply_p, char *err);

//  Self test of this module.
void
    dbt_mux_test (bool verbose);

#endif
