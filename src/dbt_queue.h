/*  =========================================================================
    dbt_queue - a dispatcher's in-memory schedule of unfinished jobs

    Mirrors the unfinished jobs of LMDB for fast decisions: per queue a list
    of ready jobs in submission order, one time-ordered list of jobs waiting
    for their eta or retry backoff, the jobs running on each worker, and the
    number of STARTED jobs per group (for group concurrency). It holds no
    job data beyond what scheduling needs; LMDB stays the truth and the
    dispatcher rebuilds this from it at start and after a failed commit.
    Owned by the dispatcher thread.
    =========================================================================
*/
#ifndef DBT_QUEUE_H_INCLUDED
#define DBT_QUEUE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "dbt_job.h"

//  Scheduling view of one unfinished job.
typedef struct {
    char id [DBT_ID_MAX + 1];   //  job id
    char *queue;                //  queue name (owned)
    char *group;                //  group id or NULL (owned)
    char *table_key;            //  "results/table" of its results (owned)
    uint64_t seq;               //  submission order
    dbt_state_t state;          //  PENDING, RETRY or STARTED
    int64_t ready_at;           //  wall ms when it may start, 0 = now
    char *worker;               //  worker id while STARTED (owned)
    uint32_t attempt;           //  attempt number while STARTED
    bool cancelling;            //  a cancel was sent to its worker
    void *list;                 //  private: list holding it (NULL if running)
    void *handle;               //  private: its handle in that list
} dbt_entry_t;

typedef struct _dbt_queue_t dbt_queue_t;

//  Create an empty schedule.
dbt_queue_t *
    dbt_queue_new (void);

//  Destroy; nulls the pointer.
void
    dbt_queue_destroy (dbt_queue_t **self_p);

//  Forget everything (before a rebuild).
void
    dbt_queue_clear (dbt_queue_t *self);

//  Add or replace the entry of an unfinished job from its record; a
//  waiting job goes to its queue's ready list or to the timed list by
//  ready_at (max of eta and the given hold time). Returns the entry.
dbt_entry_t *
    dbt_queue_put (dbt_queue_t *self, const dbt_job_t *job, int64_t hold_until);

//  Entry of a job, or NULL.
dbt_entry_t *
    dbt_queue_lookup (dbt_queue_t *self, const char *id);

//  Remove a job's entry (no-op when absent).
void
    dbt_queue_remove (dbt_queue_t *self, const char *id);

//  Move timed entries whose ready_at <= now to their ready lists.
//  Returns the ready_at of the earliest entry still timed, or 0.
int64_t
    dbt_queue_promote (dbt_queue_t *self, int64_t now);

//  Set a group's concurrency limit (0 = unlimited); kept while the group
//  has entries.
void
    dbt_queue_set_group_limit (dbt_queue_t *self, const char *group, uint32_t limit);

//  Returns true when an entry must not start now (beyond group limits).
typedef bool (dbt_queue_hold_fn) (const dbt_entry_t *entry, void *arg);

//  First ready entry of queue that its group allows to start and hold
//  (may be NULL) does not hold back, or NULL.
dbt_entry_t *
    dbt_queue_next (dbt_queue_t *self, const char *queue, dbt_queue_hold_fn *hold, void *arg);

//  Mark a ready entry STARTED on worker with attempt number.
void
    dbt_queue_start (dbt_queue_t *self, dbt_entry_t *entry, const char *worker, uint32_t attempt);

//  Put a STARTED entry back to waiting (state PENDING or RETRY) until
//  ready_at (0 = now).
void
    dbt_queue_requeue (dbt_queue_t *self, dbt_entry_t *entry, dbt_state_t state, int64_t ready_at);

//  Ids of the jobs STARTED on worker, in a new list of strings (caller
//  destroys the list; strings are owned by it).
zlist_t *
    dbt_queue_running_on (dbt_queue_t *self, const char *worker);

//  Number of ready entries of a queue, of a queue's entries in a state, of
//  entries in a state (all queues), and of all entries.
size_t
    dbt_queue_ready_count (dbt_queue_t *self, const char *queue);
size_t
    dbt_queue_queue_count (dbt_queue_t *self, const char *queue, dbt_state_t state);
size_t
    dbt_queue_state_count (dbt_queue_t *self, dbt_state_t state);
size_t
    dbt_queue_size (dbt_queue_t *self);

//  Names of queues that have entries (new list; caller destroys).
zlist_t *
    dbt_queue_names (dbt_queue_t *self);

//  Self test of this module.
void
    dbt_queue_test (bool verbose);

#endif
