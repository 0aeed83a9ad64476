/*  =========================================================================
    dbt_dispatcher_int - private declarations shared by the dispatcher's files

    The dispatcher actor is one module in four files: dbt_dispatcher.c
    (the loop, workers, dispatch, the commit), dbt_dispatcher_client.c
    (client requests), dbt_dispatcher_state.c (state publication) and
    dbt_dispatcher_pair.c (the failover pair). This header is theirs alone; nothing else includes it.
    Functions named dbt_disp__* are internal to the module.
    =========================================================================
*/
#ifndef DBT_DISPATCHER_INT_H_INCLUDED
#define DBT_DISPATCHER_INT_H_INCLUDED

#define MAX_MSGS_PER_TURN   1024    //  bound a turn's latency
#define DBT_DISP_NSTATS     12      //  counters, see dbt_disp__stat_names
#define MAX_JOBS_PER_SUBMIT 10000   //  jobs in one group

//  A worker connected to us (or, after a restart, one we still expect).
typedef struct {
    char *key;                  //  routing id as text
    zframe_t *identity;         //  routing id frame
    char *name;                 //  node name the worker reported
    zlist_t *queues;            //  queue names it serves (owned strings)
    uint32_t capacity;          //  jobs it runs at once
    zhashx_t *inflight;         //  "<job id>#<attempt>" -> dbt_disp_slot_t: one per busy
                                //  runner slot, until the worker says the slot is free
                                //  (DONE, or not listed when it has had the job's frame)
    int64_t expires;            //  monotonic ms of presumed death
    int64_t next_heartbeat;     //  monotonic ms of our next heartbeat
    uint64_t heard;             //  the last "hb" it numbered a message with, 0 = none (echoed)
    uint64_t got;               //  the newest job frame number it says it has had ("got")
    bool got_known;             //  it says so (older workers do not)
    bool connected;             //  false for a placeholder after restart
    bool full;                  //  handed a job back unstarted: no more until it speaks again
} dbt_disp_worker_t;

//  A busy slot of a worker (see dbt_disp_worker_t).
typedef struct {
    int64_t since;              //  monotonic ms it was given, claimed or listed
    uint64_t frame;             //  number of the job frame that gave it, 0 = none of ours
} dbt_disp_slot_t;

//  The inflight key of a job's attempt (see dbt_disp_worker_t).
#define DBT_DISP_SLOT_KEY_MAX   (DBT_ID_MAX + 16)

//  What a turn will send once its transaction is committed.
typedef enum {
    OUT_PLAIN,                  //  send whatever happens
    OUT_ACK,                    //  acknowledgement of a committed change
    OUT_JOB                     //  job frame to a worker
} dbt_disp_out_kind_t;

typedef struct {
    dbt_disp_out_kind_t kind;   //  what it is
    zmsg_t *msg;                //  the message, identity first
    zframe_t *identity;         //  OUT_ACK: client to tell on failure
    uint64_t rid;               //  OUT_ACK: request id
    char *worker;               //  OUT_JOB: worker key
    char *job_id;               //  OUT_JOB: job id
    uint32_t attempt;           //  OUT_JOB: its attempt
    uint64_t seq;               //  held: the update the partner must confirm first
    int64_t held_at;            //  held: monotonic ms it was held
} dbt_disp_out_t;

typedef struct {
    zsock_t *pipe;              //  actor pipe
    zsock_t *router;            //  clients and workers
    const dbt_config_t *config; //  borrowed
    dbt_tasks_t *tasks;         //  borrowed
    dbt_store_t *store;         //  borrowed
    dbt_queue_t *queue;         //  schedule of unfinished jobs
    zhashx_t *workers;          //  key -> dbt_disp_worker_t
    dbt_wtxn_t *txn;            //  this turn's transaction, if any
    zlistx_t *outbox;           //  dbt_disp_out_t for after the commit
    //  Workers' DONE messages whose outcome this turn's transaction holds,
    //  and those to handle again at the next turn's start (their commit
    //  failed, or no transaction could be had): a worker forgets a job
    //  once it has told its outcome, so a failed commit must not lose it.
    zlistx_t *outcomes;         //  dbt_msg_t, until the commit
    zlistx_t *replay;           //  dbt_msg_t, for the next turn
    int keep;                   //  what s_handle_done asks of its message (KEEP_*)
    dbt_mpw_t *writer;          //  scratch encoder
    char instance [37];         //  this run's id, sent in heartbeats
    char *endpoint;             //  endpoint bound
    char *local;                //  inproc endpoint also bound, for this node's actors
    uint64_t rng;               //  xorshift state
    uint64_t frame;             //  the last job frame's number ("frame"): from the wall clock
                                //  in us at start, so that a restart never numbers below
                                //  the frames of the last run
    uint64_t stats [DBT_DISP_NSTATS];  //  counters (see dbt_disp__stat_names)
    zhashx_t *qstats;           //  queue -> dbt_disp_qstats_t (since start)
    zhashx_t *dropping;         //  "results/table" -> drop count pending
    dbt_routes_t *routes;       //  borrowed: who dispatches other queues
    dbt_view_t *view;           //  borrowed: other dispatchers' records
    zsock_t *publisher;         //  XPUB of state updates
    zlist_t *updates;           //  this turn's UPDATE messages, sent after the commit
    uint64_t pubseq;            //  sequence of the last update published
    uint64_t pubseq_next;       //  ... once this turn commits
    int64_t hugz_ms;            //  HUGZ period when idle
    int64_t hugz_due;           //  monotonic ms of the next HUGZ
    int64_t checked;            //  monotonic ms workers were last checked, 0 = never
    dbt_mpw_t *captured;        //  CANCEL with "records": the records it wrote
    dbt_mpw_t *captured_gone;   //  ... and the ids it purged
    bool full;                  //  the state store is full: refuse new jobs
    int64_t space_budget;       //  bytes new jobs may still take until the next reading
    int64_t space_due;          //  monotonic ms of the next space check
    int64_t warn_due;           //  monotonic ms before which malformed messages are not logged
    uint64_t warn_skipped;      //  malformed messages not logged since the last warning
    //  Failover pair (dbt_dispatcher_pair.c); pair is NULL when not in one
    dbt_pair_t *pair;           //  the state machine
    zsock_t *pair_dealer;       //  heartbeats to the partner's ROUTER
    int64_t pair_due;           //  monotonic ms of the next heartbeat
    dbt_pair_state_t pair_next; //  a state the partner's heartbeat decided, applied after the turn
    const char *pair_why;       //  ... and why
    dbt_follow_t *follow;       //  passive: follows the partner's records
    dbt_store_t *copy;          //  passive: the partner's snapshot being taken
    char *copy_dir;             //  ... its directory
    unsigned copies;            //  numbers those directories
    char *partner_node;         //  what the partner's heartbeats say
    char *partner_publish;
    char *partner_instance;
    uint64_t confirmed;         //  active: last update the partner committed
    zlistx_t *held;             //  active, sync: dbt_disp_out_t waiting for `confirmed`
    bool alone;                 //  active: carrying on without the partner
    uint64_t failovers;         //  takeovers by this member since it started
    int64_t remote_heard;       //  monotonic ms of the last message from another node (0 = never)
    bool was_quiet;             //  it was quiet (see dbt_disp__pair_quiet) and has not heard
                                //  its partner since
    int64_t quiet_until;        //  monotonic ms the quiet lasts after others are heard again
    bool isolated;              //  active, but neither the partner nor another node heard lately
    int64_t rejoin_at;          //  isolated, others heard again: resume at this monotonic ms
    bool terminated;            //  $TERM received
} dbt_disp_t;

//  Job duration histogram: dbt_metrics_buckets bounds, and +Inf.
#define NBUCKETS 10

//  Counters of one queue since the dispatcher started.
typedef struct {
    uint64_t finished [5];      //  jobs reaching SUCCESS, FAILURE, RETRY (by state)
    uint64_t rows;              //  rows written by successful jobs
    uint64_t buckets [NBUCKETS + 1];  //  durations (last = +Inf)
    double seconds;             //  sum of durations
    uint64_t count;             //  durations observed
} dbt_disp_qstats_t;

enum { ST_SUBMITTED, ST_STARTED, ST_SUCCEEDED, ST_FAILED, ST_RETRIED,
       ST_LOST, ST_CANCELLED, ST_COMMITS, ST_REFUSED_FULL, ST_MALFORMED,
       ST_ACK_COMMITS, ST_ACKS };
extern const char *const dbt_disp__stat_names [];

//  Next pseudo-random number (xorshift).
uint64_t
    dbt_disp__random (dbt_disp_t *self);

//  The turn's write transaction, begun on first use. NULL on failure.
dbt_wtxn_t *
    dbt_disp__txn (dbt_disp_t *self, char *err);

//  Reply code for a failed store operation of this turn: 507 when the
//  state store is full, else 503.
int
    dbt_disp__fail_code (dbt_disp_t *self);

//  Charge bytes a SUBMIT may write against the space left beyond the
//  store's reserve; -1 when they do not fit (refuse with 507).
int
    dbt_disp__take_space (dbt_disp_t *self, int64_t bytes);

//  Start a reply body in self->writer: {rid, code, message, data: ...};
//  the caller writes the data value, then calls dbt_disp__reply_end, which
//  queues the reply for after the commit (ack: only if it succeeds).
void
    dbt_disp__reply_begin (dbt_disp_t *self, uint64_t rid, int code, const char *message);
void
    dbt_disp__reply_end (dbt_disp_t *self, zframe_t *identity, uint64_t rid, bool ack);

//  Reply with an error (sent whatever the commit does).
void
    dbt_disp__reply_error (dbt_disp_t *self, zframe_t *identity, uint64_t rid, int code,
                           const char *message);

//  Tell a worker to stop one job.
void
    dbt_disp__send_cancel (dbt_disp_t *self, dbt_disp_worker_t *worker, const char *job_id,
                           uint32_t attempt, const char *reason);

//  Record that a job's results table must go (durable drop list).
int
    dbt_disp__add_drop (dbt_disp_t *self, dbt_wtxn_t *txn, const dbt_job_t *job, char *err);

//  Send one outbox message now (after its commit, or once released).
void
    dbt_disp__send_out (dbt_disp_t *self, dbt_disp_out_t *out);

//  Free an outbox item (a zlistx destructor).
void
    dbt_disp__out_free (void **item_p);

//  Rebuild the schedule from the store (jobs waiting and running, drops).
//  Returns the number of jobs loaded, or -1.
int
    dbt_disp__rebuild (dbt_disp_t *self);

//  Tell every connected worker to stop the jobs it runs for us without
//  writing results (they come back interrupted and run again).
void
    dbt_disp__fence_workers (dbt_disp_t *self, const char *reason);

//  Forget every worker, telling those connected to go (reason).
void
    dbt_disp__drop_workers (dbt_disp_t *self, const char *reason);

//  Failover pair (in dbt_dispatcher_pair.c). Start (a no-op without a
//  partner configured; -1 on failure) and stop. serving: dispatching
//  (not in a pair, or its active member). items: sockets to poll (the
//  follower's). tick: after each turn's commit: heartbeats, the follower,
//  held messages, a state change the partner's heartbeat decided.
//  handle: the partner's PAIR heartbeat. admit: a request that needs the
//  active member; false when it was refused (the reply is sent). hold:
//  an outbox item of a committed turn, kept until the partner confirms it
//  (true: taken). write: the pair's fields of PING and STATS replies.
//  heard: a message from the node named node (len bytes) arrived; admit's
//  voter is the requester's node (a worker's; a client's "voter" field
//  when voter is NULL).
int
    dbt_disp__pair_start (dbt_disp_t *self);
void
    dbt_disp__pair_stop (dbt_disp_t *self);
bool
    dbt_disp__serving (dbt_disp_t *self);
size_t
    dbt_disp__pair_items (dbt_disp_t *self, zmq_pollitem_t *items);
void
    dbt_disp__pair_tick (dbt_disp_t *self);
void
    dbt_disp__handle_pair (dbt_disp_t *self, dbt_msg_t *msg);
void
    dbt_disp__pair_heard (dbt_disp_t *self, const char *node, size_t len);
//  True while an active member hears neither its partner nor, for one
//  and a half heartbeats, any other node: it may be cut off, and its
//  partner may take over a heartbeat later. Until it hears its partner,
//  or has heard other nodes again for two heartbeats, it dispatches
//  nothing, sends nothing unconfirmed, and takes no silent worker as lost
//  (see s_isolation).
bool
    dbt_disp__pair_quiet (dbt_disp_t *self);
bool
    dbt_disp__pair_admit (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid, bool worker,
                          const char *voter);
bool
    dbt_disp__pair_hold (dbt_disp_t *self, dbt_disp_out_t *out);
void
    dbt_disp__pair_write (dbt_disp_t *self, dbt_mpw_t *writer);
int64_t
    dbt_disp__pair_timeout (dbt_disp_t *self);

//  Handle one client request (in dbt_dispatcher_client.c).
void
    dbt_disp__handle_client (dbt_disp_t *self, dbt_msg_t *msg);

//  State publication (in dbt_dispatcher_state.c): bind the XPUB and read
//  the stored sequence (-1 on failure); turn the turn's journal into
//  numbered UPDATEs before the commit; send them (or drop them when the
//  commit failed) after it; HUGZ when due; read subscriptions (HUGZ to
//  newcomers); answer SNAPSHOT; close.
int
    dbt_disp__state_start (dbt_disp_t *self);
void
    dbt_disp__state_prepare (dbt_disp_t *self);
void
    dbt_disp__state_publish (dbt_disp_t *self, bool committed);
void
    dbt_disp__state_tick (dbt_disp_t *self);
void
    dbt_disp__state_subscription (dbt_disp_t *self);
void
    dbt_disp__handle_snapshot (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid);
void
    dbt_disp__state_stop (dbt_disp_t *self);

#endif
