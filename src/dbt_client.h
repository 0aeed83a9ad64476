/*  =========================================================================
    dbt_client - request/reply client of a dispatcher

    A DEALER connected to one dispatcher endpoint. A request is a msgpack
    map that starts with a request id (rid); the reply carries the same rid
    with a status code (HTTP-like: 200, 400, 404, 409, ...), a message and
    data. Replies to requests that timed out earlier are recognised by
    their rid and skipped. Not thread-safe: one client per thread at a
    time (the HTTP front keeps a pool of them).
    =========================================================================
*/
#ifndef DBT_CLIENT_H_INCLUDED
#define DBT_CLIENT_H_INCLUDED

#include <stdint.h>
#include "dbt_msg.h"

typedef struct _dbt_client_t dbt_client_t;

//  One reply.
typedef struct {
    int code;                   //  status code
    char *message;              //  error message, NULL on success
    dbt_mpr_t *doc;             //  whole reply document
    const msgpack_object *data; //  its data value (borrowed from doc)
} dbt_reply_t;

//  Create a client connected to endpoint. Returns NULL with err set.
dbt_client_t *
    dbt_client_new (const char *endpoint, char *err);

//  Applied to a client's socket before it connects (CURVE keys, say):
//  returns 0, or -1 with err set.
typedef int (dbt_client_setup_fn) (zsock_t *sock, void *arg, char *err);

//  The same, setup (when not NULL) applied to the socket first.
dbt_client_t *
    dbt_client_new_with (const char *endpoint, dbt_client_setup_fn *setup, void *arg, char *err);

//  Destroy; nulls the pointer.
void
    dbt_client_destroy (dbt_client_t **self_p);

//  The endpoint it talks to. Borrowed.
const char *
    dbt_client_endpoint (dbt_client_t *self);

//  PROGRESS frames (from a client endpoint, docs/protocol.md) for the
//  request awaited are given to fn (their map, borrowed for the call);
//  NULL drops them, as by default.
typedef void (dbt_client_progress_fn) (const msgpack_object *map, void *arg);
void
    dbt_client_set_progress (dbt_client_t *self, dbt_client_progress_fn *fn, void *arg);

//  Start a request body: returns the client's writer with a map opened and
//  the rid written; add the request's fields, then call dbt_client_call.
dbt_mpw_t *
    dbt_client_begin (dbt_client_t *self);

//  Close the body, send it as command and wait up to timeout_ms for the
//  reply. Returns 0 with *reply_p (caller destroys), DBT_ETIMEDOUT (sent,
//  no answer: the outcome is unknown), DBT_ETOOBIG (over DBT_MSG_MAX_BODY,
//  not sent), or DBT_ERROR (not sent) with err set.
int
    dbt_client_call (dbt_client_t *self, int command, int64_t timeout_ms,
                     dbt_reply_t **reply_p, char *err);

//  Wait up to timeout_ms more for the reply to the last request (after
//  dbt_client_call returned DBT_ETIMEDOUT). Returns as dbt_client_call.
int
    dbt_client_wait (dbt_client_t *self, int64_t timeout_ms, dbt_reply_t **reply_p, char *err);

//  Destroy a reply; nulls the pointer.
void
    dbt_reply_destroy (dbt_reply_t **self_p);

//  Decode a received REPLY message (consumed, *msg_p nulled) into a reply
//  (caller destroys) with its rid in *rid_p; NULL when it is not one.
dbt_reply_t *
    dbt_reply_take (dbt_msg_t **msg_p, uint64_t *rid_p);

//  Self test of this module.
void
    dbt_client_test (bool verbose);

#endif
