/*  =========================================================================
    dbt_msg - msgpack encoding and the mesh's wire frames

    A writer (dbt_mpw_t) builds msgpack documents where map and array sizes
    are patched when they are closed, so callers need not count first. A
    reader (dbt_mpr_t) parses untrusted bytes safely: sizes are checked
    against the bytes present before anything is allocated, nesting is
    bounded, and trailing or missing bytes are errors. dbt_msg_t is one
    mesh message: [identity] signature, command byte, msgpack body, as laid
    out in docs/protocol.md. Objects belong to the thread that made them.
    =========================================================================
*/
#ifndef DBT_MSG_H_INCLUDED
#define DBT_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>
#include <msgpack.h>

//  Protocol signatures (first frame after the ROUTER identity).
#define DBT_PROTO_CLIENT "DBTC01"       //  client <-> dispatcher
#define DBT_PROTO_WORKER "DBTW01"       //  worker <-> dispatcher
#define DBT_PROTO_STATE  "DBTS01"       //  dispatcher -> replicas (PUB/SUB)

//  Largest body accepted on the mesh, and the largest frame libzmq takes
//  from a TCP peer (ZMQ_MAXMSGSIZE on every mesh socket: a bigger frame
//  closes that connection before it is buffered). A body parses only when
//  it holds at most one item per two bytes (plus a few), which bounds the
//  decoder's memory to about 13 times the body (msgpack-c spends 24 bytes
//  per item).
#define DBT_MSG_MAX_BODY (16 * 1024 * 1024)
#define DBT_MSG_MAX_FRAME (DBT_MSG_MAX_BODY + 1024)

//  Apply the mesh's limits (ZMQ_MAXMSGSIZE) to a socket.
void
    dbt_msg_limit (zsock_t *sock);

//  Client commands (client -> dispatcher), replies carry DBT_C_REPLY.
#define DBT_C_SUBMIT     0x01           //  queue one job or one group
#define DBT_C_CANCEL     0x02           //  cancel/purge a job or group
#define DBT_C_STATUS     0x03           //  job status
#define DBT_C_GROUP      0x04           //  group status
#define DBT_C_PENDING    0x05           //  waiting jobs of a queue
#define DBT_C_PING       0x06           //  liveness and dispatcher info
#define DBT_C_EXPIRE     0x07           //  janitor: results of these jobs expired
#define DBT_C_DROPPED    0x08           //  janitor: these tables are gone
#define DBT_C_FORGET     0x09           //  janitor: forget these old records
#define DBT_C_STATS      0x0a           //  counters for /metrics
#define DBT_C_SNAPSHOT   0x0b           //  a page of the dispatcher's records
#define DBT_C_PAIR       0x0c           //  failover partner -> partner: heartbeat
#define DBT_C_TASKS      0x40           //  client endpoint: the task list
#define DBT_C_RESULTS    0x41           //  client endpoint: a page of results rows
#define DBT_C_WAIT       0x42           //  client endpoint: wait for a final state
#define DBT_C_REPLY      0x80           //  dispatcher -> client
#define DBT_C_PROGRESS   0x81           //  client endpoint -> client: a waited job's progress

//  Worker commands.
#define DBT_W_READY      0x10           //  worker -> dispatcher: register
#define DBT_W_CREDIT     0x11           //  worker -> dispatcher: capacity back
#define DBT_W_PROGRESS   0x12           //  worker -> dispatcher: rows so far
#define DBT_W_DONE       0x13           //  worker -> dispatcher: outcome
#define DBT_W_HEARTBEAT  0x14           //  both ways
#define DBT_W_JOB        0x20           //  dispatcher -> worker: run this
#define DBT_W_CANCEL     0x21           //  dispatcher -> worker: stop this
#define DBT_W_DISCONNECT 0x23           //  dispatcher -> worker: re-register

//  State commands (dispatcher PUB -> replica SUB).
#define DBT_S_UPDATE     0x30           //  records changed by one commit
#define DBT_S_HUGZ       0x31           //  heartbeat: instance and sequence

//  -------------------------------------------------------------------------
//  Writer

typedef struct _dbt_mpw_t dbt_mpw_t;

//  Create an empty writer.
dbt_mpw_t *
    dbt_mpw_new (void);

//  Destroy; nulls the pointer.
void
    dbt_mpw_destroy (dbt_mpw_t **self_p);

//  Forget what was written.
void
    dbt_mpw_reset (dbt_mpw_t *self);

//  Open a map or an array; its size is the number of items (for maps,
//  key + value pairs) written before the matching dbt_mpw_end.
void
    dbt_mpw_map (dbt_mpw_t *self);
void
    dbt_mpw_array (dbt_mpw_t *self);
void
    dbt_mpw_end (dbt_mpw_t *self);

//  Scalars. dbt_mpw_str writes nil for NULL.
void
    dbt_mpw_str (dbt_mpw_t *self, const char *str);
void
    dbt_mpw_strn (dbt_mpw_t *self, const char *str, size_t len);
void
    dbt_mpw_u64 (dbt_mpw_t *self, uint64_t value);
void
    dbt_mpw_i64 (dbt_mpw_t *self, int64_t value);
void
    dbt_mpw_f64 (dbt_mpw_t *self, double value);
void
    dbt_mpw_bool (dbt_mpw_t *self, bool value);
void
    dbt_mpw_nil (dbt_mpw_t *self);

//  Append one complete, already-encoded msgpack item (len bytes).
void
    dbt_mpw_raw (dbt_mpw_t *self, const char *data, size_t len);

//  Key + value conveniences for maps.
void
    dbt_mpw_kstr (dbt_mpw_t *self, const char *key, const char *value);
void
    dbt_mpw_ku64 (dbt_mpw_t *self, const char *key, uint64_t value);
void
    dbt_mpw_ki64 (dbt_mpw_t *self, const char *key, int64_t value);
void
    dbt_mpw_kbool (dbt_mpw_t *self, const char *key, bool value);

//  The bytes written so far (all containers must be closed). Borrowed
//  until the next write or reset.
const char *
    dbt_mpw_data (dbt_mpw_t *self, size_t *len);

//  -------------------------------------------------------------------------
//  Reader

typedef struct _dbt_mpr_t dbt_mpr_t;

//  Parse exactly one msgpack document from data. Returns NULL with err set
//  when the bytes are malformed, truncated, too deep or have extra bytes.
dbt_mpr_t *
    dbt_mpr_new (const void *data, size_t len, char *err);

//  Destroy; nulls the pointer.
void
    dbt_mpr_destroy (dbt_mpr_t **self_p);

//  Bytes of the document.
size_t
    dbt_mpr_size (dbt_mpr_t *self);

//  The document's root object. Borrowed until destroy.
const msgpack_object *
    dbt_mpr_root (dbt_mpr_t *self);

//  Value of key in a map; NULL when absent or when map is not a map.
const msgpack_object *
    dbt_mp_get (const msgpack_object *map, const char *key);

//  Typed views of an object; return 0, or -1 when the type differs.
int
    dbt_mp_str (const msgpack_object *obj, const char **str, size_t *len);
int
    dbt_mp_u64 (const msgpack_object *obj, uint64_t *value);
int
    dbt_mp_i64 (const msgpack_object *obj, int64_t *value);
int
    dbt_mp_bool (const msgpack_object *obj, bool *value);

//  Field getters for maps with error messages naming the field. An absent
//  or nil field leaves the default (returns 0) unless required. Strings are
//  copied (caller frees) and must be valid UTF-8 without NUL bytes.
int
    dbt_mp_field_str (const msgpack_object *map, const char *key, bool required,
                      char **value, char *err);
int
    dbt_mp_field_u64 (const msgpack_object *map, const char *key, bool required,
                      uint64_t *value, char *err);
int
    dbt_mp_field_i64 (const msgpack_object *map, const char *key, bool required,
                      int64_t *value, char *err);
int
    dbt_mp_field_bool (const msgpack_object *map, const char *key, bool required,
                       bool *value, char *err);

//  True when len bytes at str are valid UTF-8 with no NUL byte.
bool
    dbt_utf8_valid (const char *str, size_t len);

//  -------------------------------------------------------------------------
//  Worker identities. A worker's routing id is "<name>/<32 hex>", random
//  per process and never shown: whoever knows it could take the worker's
//  place (ZMQ_ROUTER_HANDOVER). Records, logs and the API name a worker by
//  its display id "<name>/<12 hex>", the first 12 hex digits of the SHA-1
//  of its routing id, from which the routing id cannot be found.

//  Length of a display id buffer.
#define DBT_WORKER_DISPLAY_MAX (64 + 1 + 12 + 1)

//  Write a new random routing id for a worker of node name (characters
//  other than [A-Za-z0-9_.:-] in name become '_'). Caller frees.
char *
    dbt_msg_worker_identity (const char *name);

//  True when len bytes at id are a well-formed worker routing id.
bool
    dbt_msg_worker_identity_ok (const char *id, size_t len);

//  The display id of a well-formed routing id, in out.
void
    dbt_msg_worker_display (const char *id, size_t len, char out [DBT_WORKER_DISPLAY_MAX]);

//  -------------------------------------------------------------------------
//  Mesh messages

typedef struct {
    zframe_t *identity;         //  sender, on ROUTER sockets; else NULL
    bool local;                 //  sent from this process (inproc: no peer address)
    char signature [8];         //  DBT_PROTO_CLIENT, _WORKER or _STATE
    int command;                //  DBT_C_* or DBT_W_*
    dbt_mpr_t *body;            //  parsed body
    const msgpack_object *map;  //  body root, always a map
} dbt_msg_t;

//  Build [identity] signature, command, body as a message (the writer is
//  reset; identity is copied). Caller sends or destroys it.
zmsg_t *
    dbt_msg_encode (zframe_t *identity, const char *signature, int command,
                    dbt_mpw_t *body);

//  Send [identity] signature, command, body (the writer's bytes; the
//  writer is reset). identity may be NULL (DEALER side); it is not
//  consumed. Returns 0 or -1 (errno from libzmq, e.g. EHOSTUNREACH).
int
    dbt_msg_send (zsock_t *sock, zframe_t *identity, const char *signature,
                  int command, dbt_mpw_t *body);

//  Add npairs key/value pairs, written to extra at its top level (no
//  enclosing map), to the map in the last frame of msg (a body written by
//  dbt_mpw, whose maps have 32-bit headers); extra is reset. Returns 0,
//  or -1 when the last frame is not such a map.
int
    dbt_msg_extend (zmsg_t *msg, dbt_mpw_t *extra, uint32_t npairs);

//  Receive one message. With router set the first frame is the identity.
//  Returns NULL with err set when the message is malformed (it is read
//  whole and dropped) or on interrupt (err empty).
dbt_msg_t *
    dbt_msg_recv (zsock_t *sock, bool router, char *err);

//  Check and decode a received message (the frame checks of dbt_msg_recv:
//  frame count, signature, one-byte command, body size, a msgpack map as
//  body). Consumes *msg_p and nulls it. Returns the message (caller
//  destroys), or NULL with err set when it is malformed.
dbt_msg_t *
    dbt_msg_parse (zmsg_t **msg_p, bool router, char *err);

//  Destroy; nulls the pointer.
void
    dbt_msg_destroy (dbt_msg_t **self_p);

//  Self test of this module.
void
    dbt_msg_test (bool verbose);

#endif
