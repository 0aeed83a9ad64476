/*  =========================================================================
    dungbeetle - public header: version and the client library

    libdungbeetle talks to a dungbeetle node's client endpoint ([mesh]
    client, default tcp://127.0.0.1:6072) over ZeroMQ with msgpack frames
    (docs/protocol.md). Any node answers for any job of its mesh. Build
    with `pkg-config --cflags --libs dungbeetle`; see docs/client.md and
    docs/example.c.

    Conventions, as in LMDB's header:
    - Functions return 0 (DUNGBEETLE_OK) or a negative DUNGBEETLE_E* code;
      dungbeetle_strerror() names a code, dungbeetle_client_error() gives
      the last call's message (the node's own, when it answered).
    - Results come back through out-parameters, which are set only on
      success. Each says who owns it: "caller frees with free()", "caller
      destroys with dungbeetle_X_destroy()", or "borrowed: valid until ...".
    - A client, and everything it returned, belongs to one thread at a
      time. A call that fails never invokes its callback.
    =========================================================================
*/
#ifndef DUNGBEETLE_H_INCLUDED
#define DUNGBEETLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DBT_VERSION_MAJOR 0
#define DBT_VERSION_MINOR 1
#define DBT_VERSION_PATCH 0
#define DBT_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

//  --------------------------------------------------------------------------
//  Errors

#define DUNGBEETLE_OK          0
#define DUNGBEETLE_ERROR     (-1)   //  the node failed (HTTP-like 500, 503)
#define DUNGBEETLE_ENOTFOUND (-2)   //  no such job, group, task or results (404)
#define DUNGBEETLE_ECONFLICT (-3)   //  job id already queued or running, ... (409)
#define DUNGBEETLE_EINVAL    (-4)   //  bad request or argument (400)
#define DUNGBEETLE_ECONN     (-5)   //  cannot reach the endpoint
#define DUNGBEETLE_ETIMEDOUT (-7)   //  no answer in time (a write's outcome is then
                                    //  unknown: status the job), or a wait timed out
#define DUNGBEETLE_EFULL     (-8)   //  the node's state store is full (507)
#define DUNGBEETLE_ETOOBIG   (-9)   //  request or reply over the size limit (413)
#define DUNGBEETLE_EAUTH     (-10)  //  the node wants a token, or another one (401),
                                    //  or refused this client's CURVE key
#define DUNGBEETLE_EGONE     (-11)  //  results expired and were dropped (410)
#define DUNGBEETLE_EPROTO    (-12)  //  the reply was not what the protocol says
#define DUNGBEETLE_ENOTSUP   (-13)  //  an option this build does not support

//  The name of an error code ("job or group not found", ...). Static string.
const char *
    dungbeetle_strerror (int code);

//  --------------------------------------------------------------------------
//  Client

typedef struct _dungbeetle_client_t dungbeetle_client_t;

//  Options for dungbeetle_client_new; zero (or NULL) means the default.
typedef struct {
    int64_t timeout_ms;         //  answer limit per request (default 30000)
    const char *token;          //  the node's [app] auth_token, NULL = none
    //  CURVE, for a node with [mesh] curve_cert (docs/client.md): the
    //  node's server_key and this client's key pair, either as the
    //  client_cert file or as public_key and secret_key. Read once by
    //  dungbeetle_client_new; a node that refuses the key (not in its
    //  curve_allow) makes requests fail with DUNGBEETLE_EAUTH.
    const char *server_key;     //  the node's public key: 40 Z85 characters,
                                //  or the path of its public cert file
    const char *public_key;     //  this client's public key (40 Z85 chars)
    const char *secret_key;     //  this client's secret key (40 Z85 chars)
    const char *client_cert;    //  or: this client's cert file, NAME_secret
                                //  (from dungbeetle --new-keys NAME)
} dungbeetle_options_t;

//  Length of the err buffer of dungbeetle_client_new.
#define DUNGBEETLE_ERRMSG_LEN 512

//  Create a client of the node at endpoint (e.g. "tcp://127.0.0.1:6072").
//  @param[in] options  NULL for defaults; copied
//  @param[out] client_p the client: caller destroys with dungbeetle_client_destroy()
//  @param[out] err     NULL, or DUNGBEETLE_ERRMSG_LEN bytes for the reason
//  @return 0, or DUNGBEETLE_EINVAL (bad endpoint; keys missing, unreadable
//          or malformed, or both client_cert and a key pair given).
//  Connecting is asynchronous: an unreachable node shows as
//  DUNGBEETLE_ETIMEDOUT on the first request. With CURVE keys the first
//  request first waits (up to timeout_ms) for the handshake, and fails
//  with DUNGBEETLE_EAUTH when the node refuses the key.
int
    dungbeetle_client_new (const char *endpoint, const dungbeetle_options_t *options,
                           dungbeetle_client_t **client_p, char *err);

//  Destroy a client; *client_p becomes NULL. Safe on NULL.
void
    dungbeetle_client_destroy (dungbeetle_client_t **client_p);

//  The last failed call's message. Borrowed: valid until the next call on
//  this client. "" after a success.
const char *
    dungbeetle_client_error (dungbeetle_client_t *client);

//  --------------------------------------------------------------------------
//  Submitting

//  One job request. Strings are borrowed for the call only.
typedef struct {
    const char *task;           //  task name (required)
    const char *id;             //  job id, NULL = the node names it
    const char *queue;          //  NULL = the task's queue
    const char *db;             //  source database, NULL = the task's
    const char *const *args;    //  positional args; a NULL item binds SQL NULL
    size_t nargs;               //  number of args
    int64_t eta_ms;             //  Unix ms to start at, 0 = now
    int64_t ttl_ms;             //  run-time limit, -1 = the node's default
    int64_t results_ttl_ms;     //  results retention, -1 = the node's default
    int retries;                //  retries after a failure
} dungbeetle_job_request_t;

//  Fill req with the defaults (no id, ttl -1, ...).
void
    dungbeetle_job_request_init (dungbeetle_job_request_t *req);

//  Submit one job. Accepted means committed by its dispatcher.
//  @param[out] job_id_p NULL, or the job's id: caller frees with free()
//  @return 0, DUNGBEETLE_EINVAL, ENOTFOUND (unknown task), ECONFLICT (the
//          id is queued or running), EFULL, ETIMEDOUT (outcome unknown), ...
int
    dungbeetle_submit (dungbeetle_client_t *client, const dungbeetle_job_request_t *req,
                       char **job_id_p);

//  Submit jobs as one group (accepted whole or not at all).
//  @param[in] group_id NULL = the node names it
//  @param[in] concurrency jobs of the group running at once, 0 = no limit
//  @param[out] group_id_p NULL, or the group's id: caller frees with free()
int
    dungbeetle_submit_group (dungbeetle_client_t *client, const char *group_id, int concurrency,
                             const dungbeetle_job_request_t *jobs, size_t njobs,
                             char **group_id_p);

//  --------------------------------------------------------------------------
//  Job status

typedef enum {
    DUNGBEETLE_PENDING = 0,     //  waiting (queued, or until its eta)
    DUNGBEETLE_STARTED = 1,     //  running
    DUNGBEETLE_SUCCESS = 2,     //  done, results table complete
    DUNGBEETLE_FAILURE = 3,     //  done without results
    DUNGBEETLE_RETRY = 4        //  failed, waiting for another attempt
} dungbeetle_state_t;

typedef struct _dungbeetle_status_t dungbeetle_status_t;

//  A job's status, as GET /jobs/{id} answers it.
//  @param[out] status_p caller destroys with dungbeetle_status_destroy()
//  @return 0, DUNGBEETLE_ENOTFOUND, ...
int
    dungbeetle_status (dungbeetle_client_t *client, const char *job_id,
                       dungbeetle_status_t **status_p);

//  Destroy a status; *status_p becomes NULL. Safe on NULL.
void
    dungbeetle_status_destroy (dungbeetle_status_t **status_p);

//  Fields of a status. Strings are borrowed: valid until the status is
//  destroyed; "" when the node sent none.
const char *
    dungbeetle_status_id (const dungbeetle_status_t *status);
dungbeetle_state_t
    dungbeetle_status_state (const dungbeetle_status_t *status);
const char *
    dungbeetle_status_state_name (const dungbeetle_status_t *status);
uint64_t
    dungbeetle_status_rows (const dungbeetle_status_t *status);     //  rows written (so far)
const char *
    dungbeetle_status_error (const dungbeetle_status_t *status);    //  last attempt's error
const char *
    dungbeetle_status_task (const dungbeetle_status_t *status);
const char *
    dungbeetle_status_queue (const dungbeetle_status_t *status);
int
    dungbeetle_status_attempts (const dungbeetle_status_t *status);
const char *
    dungbeetle_status_results_table (const dungbeetle_status_t *status);
//  created_at, started_at, finished_at (RFC 3339), worker, dispatcher, ...:
//  any string field of the reply by name; NULL when absent.
const char *
    dungbeetle_status_field (const dungbeetle_status_t *status, const char *name);

//  Called by dungbeetle_wait whenever the job's state or row count
//  changes, and about every second while it runs. status is borrowed for
//  the call; elapsed_ms counts from the start of the wait.
typedef void (dungbeetle_progress_fn) (const char *job_id, dungbeetle_state_t state,
                                       uint64_t rows, int64_t elapsed_ms, void *arg);

//  Wait until the job is SUCCESS or FAILURE.
//  @param[in] timeout_ms 0 = no limit
//  @param[in] progress NULL, or called with progress (see above)
//  @param[out] status_p the final status: caller destroys it
//  @return 0 (whatever the final state: look at it), ENOTFOUND,
//          ETIMEDOUT (still running at timeout_ms), ...
int
    dungbeetle_wait (dungbeetle_client_t *client, const char *job_id, int64_t timeout_ms,
                     dungbeetle_progress_fn *progress, void *arg,
                     dungbeetle_status_t **status_p);

//  Cancel a job (a queued one is removed, a running query stopped); with
//  purge, also forget a finished job and drop its results.
//  @return 0, ENOTFOUND, ECONFLICT (a finished job, without purge), ...
int
    dungbeetle_cancel (dungbeetle_client_t *client, const char *job_id, bool purge);

//  The same for every job of a group.
int
    dungbeetle_cancel_group (dungbeetle_client_t *client, const char *group_id, bool purge);

//  --------------------------------------------------------------------------
//  Groups

typedef struct _dungbeetle_group_t dungbeetle_group_t;

//  A group's status. @param[out] group_p caller destroys with
//  dungbeetle_group_destroy().
int
    dungbeetle_group_status (dungbeetle_client_t *client, const char *group_id,
                             dungbeetle_group_t **group_p);
void
    dungbeetle_group_destroy (dungbeetle_group_t **group_p);
//  Its state ("STARTED" until every job is final, then
//  "SUCCESS" or "FAILURE"), borrowed until destroy.
const char *
    dungbeetle_group_state (const dungbeetle_group_t *group);
size_t
    dungbeetle_group_size (const dungbeetle_group_t *group);
//  Member index's status: borrowed, valid until the group is destroyed.
const dungbeetle_status_t *
    dungbeetle_group_job (const dungbeetle_group_t *group, size_t index);

//  --------------------------------------------------------------------------
//  Results

typedef struct _dungbeetle_results_t dungbeetle_results_t;

//  A page of a finished job's results table: rows offset .. offset+limit-1.
//  @param[in] limit  1 to 100000 rows, 0 = 1000
//  @param[out] results_p caller destroys with dungbeetle_results_destroy()
//  @return 0, ENOTFOUND (no such job, not SUCCESS, no table), EGONE, ...
int
    dungbeetle_results (dungbeetle_client_t *client, const char *job_id, int64_t offset,
                        int64_t limit, dungbeetle_results_t **results_p);
void
    dungbeetle_results_destroy (dungbeetle_results_t **results_p);

//  Columns: name and type ("int", "float", "text", ... as docs/types.md).
//  Borrowed until destroy.
size_t
    dungbeetle_results_columns (const dungbeetle_results_t *results);
const char *
    dungbeetle_results_column_name (const dungbeetle_results_t *results, size_t column);
const char *
    dungbeetle_results_column_type (const dungbeetle_results_t *results, size_t column);

//  Rows in this page; fewer than the limit means the table ends here.
size_t
    dungbeetle_results_rows (const dungbeetle_results_t *results);

//  Kind of a cell's value.
typedef enum {
    DUNGBEETLE_NULL = 0,        //  SQL NULL
    DUNGBEETLE_STRING = 1,
    DUNGBEETLE_NUMBER = 2,
    DUNGBEETLE_BOOL = 3
} dungbeetle_kind_t;

dungbeetle_kind_t
    dungbeetle_results_kind (const dungbeetle_results_t *results, size_t row, size_t column);

//  A cell as text (numbers in decimal, booleans "true"/"false"); NULL for
//  SQL NULL or outside the page. Borrowed until destroy.
const char *
    dungbeetle_results_value (const dungbeetle_results_t *results, size_t row, size_t column);

//  --------------------------------------------------------------------------
//  Tasks and pending jobs

typedef struct _dungbeetle_list_t dungbeetle_list_t;

//  The node's tasks: names and queues.
//  @param[out] list_p caller destroys with dungbeetle_list_destroy()
int
    dungbeetle_tasks (dungbeetle_client_t *client, dungbeetle_list_t **list_p);

//  The jobs waiting in queue (queued or to be retried), oldest first:
//  ids and statuses ("queued", "retrying").
int
    dungbeetle_pending (dungbeetle_client_t *client, const char *queue,
                        dungbeetle_list_t **list_p);

void
    dungbeetle_list_destroy (dungbeetle_list_t **list_p);
size_t
    dungbeetle_list_size (const dungbeetle_list_t *list);
//  Item index's name (task name, job id) and detail (task's queue, job's
//  status). Borrowed until destroy; NULL outside the list.
const char *
    dungbeetle_list_name (const dungbeetle_list_t *list, size_t index);
const char *
    dungbeetle_list_detail (const dungbeetle_list_t *list, size_t index);

#ifdef __cplusplus
}
#endif

#endif
