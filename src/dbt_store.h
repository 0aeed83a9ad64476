/*  =========================================================================
    dbt_store - job state in LMDB

    One LMDB environment per node under data_dir. Databases: "jobs" (id ->
    job record), "groups" (id -> group record), "wait" (queue, seq -> id of
    PENDING/RETRY jobs, in submission order), "run" (seq -> id of STARTED
    jobs), "done" (finished time, id -> nothing; oldest first for expiry),
    "rexp" (results expiry time, id), "tables" (results backend and case-
    folded table name -> id of the job whose record keeps that table),
    "drops" (tables to drop), "meta" (the sequence counter), "list"
    (queue, state, order, id -> nothing: every job, for paged lists by
    queue and state; the order is the finish time of a finished job, else
    its submission sequence) and "counts" (queue, state -> number of
    "list" entries, kept in the same transactions; zero counts are
    deleted). A store written before "list" existed gets it on open.
    dbt_wtxn_put_job keeps the indexes in step with each record, so callers
    only write records.

    Space: the map starts at map_size and grows (doubling) up to map_max.
    The store keeps a reserve free for what frees space (expiry, purge,
    outcomes): dbt_store_space says `full` once less than the reserve is
    left, and the writer then refuses new work. Only the writer thread
    grows the map, between its transactions; readers never see it move
    (a reader/writer lock, taken shared by every transaction).

    Threads: reads (dbt_store_job, ...) are short read-only transactions,
    safe from any thread at any time (MDB_NOTLS). Writes go through one
    dbt_wtxn_t at a time, owned by the single writer (the dispatcher), which
    commits once per loop turn. After a write fails (full map, I/O error),
    later writes in the same transaction do nothing and return the same
    code; only commit (which then aborts) or abort remain.
    =========================================================================
*/
#ifndef DBT_STORE_H_INCLUDED
#define DBT_STORE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "dbt_job.h"

typedef struct _dbt_store_t dbt_store_t;
typedef struct _dbt_wtxn_t dbt_wtxn_t;

//  Callback for scans: return 0 to continue, non-zero to stop.
typedef int (dbt_store_each_fn) (const dbt_job_t *job, void *arg);

//  Open (creating dir when missing) with a map of map_size bytes that may
//  grow to map_max (0 or less than map_size: map_size). Returns NULL with
//  err set on failure.
dbt_store_t *
    dbt_store_open (const char *dir, int64_t map_size, int64_t map_max, char *err);

//  Close; nulls the pointer. No transaction may be open.
void
    dbt_store_destroy (dbt_store_t **self_p);

//  Read one job. Returns 0 with *job_p (caller destroys), DBT_ENOTFOUND,
//  or DBT_ERROR with err set.
int
    dbt_store_job (dbt_store_t *self, const char *id, dbt_job_t **job_p, char *err);

//  Read one group, as dbt_store_job.
int
    dbt_store_group (dbt_store_t *self, const char *id, dbt_group_t **group_p, char *err);

//  Call fn for each waiting (PENDING or RETRY) job of queue in submission
//  order, or of every queue when queue is NULL. Returns 0 or DBT_ERROR.
int
    dbt_store_each_waiting (dbt_store_t *self, const char *queue,
                            dbt_store_each_fn *fn, void *arg, char *err);

//  Call fn for each STARTED job in submission order.
int
    dbt_store_each_running (dbt_store_t *self, dbt_store_each_fn *fn, void *arg, char *err);

//  Call fn for each finished job that finished before ms, oldest first.
int
    dbt_store_each_finished (dbt_store_t *self, int64_t before_ms,
                             dbt_store_each_fn *fn, void *arg, char *err);

//  Call fn for each SUCCESS job whose results table expires before ms,
//  soonest first.
int
    dbt_store_each_expiring (dbt_store_t *self, int64_t before_ms,
                             dbt_store_each_fn *fn, void *arg, char *err);

//  Lists by queue and state. Number of states (dbt_state_t values).
#define DBT_STORE_NSTATES 5

//  Callback over queues: its name and its jobs by state (indexed by
//  dbt_state_t), valid during the call. Return 0 to go on.
typedef int (dbt_store_count_fn) (const char *queue, const uint64_t counts [DBT_STORE_NSTATES],
                                  void *arg);

//  Call fn for each queue that has jobs in the store, in name order, with
//  its counts (one read of the "counts" database: no job is read).
//  Returns 0 or DBT_ERROR with err.
int
    dbt_store_each_count (dbt_store_t *self, dbt_store_count_fn *fn, void *arg, char *err);

//  How many jobs of queue are in final state (SUCCESS or FAILURE) and
//  finished at or after since_ms. Walks those entries only. Returns 0,
//  DBT_EINVAL (state not final) or DBT_ERROR with err.
int
    dbt_store_count_since (dbt_store_t *self, const char *queue, dbt_state_t state,
                           int64_t since_ms, uint64_t *count, char *err);

//  One page of queue's jobs in state, newest first (latest finish for
//  finished jobs, latest submission otherwise), from one read transaction:
//  up to limit jobs after the cursor `after` (NULL: from the newest),
//  passed to fn. *next_p gets the cursor of the last job passed when more
//  follow (caller frees), NULL at the end. Costs limit reads whatever the
//  list's length. Returns 0, DBT_EINVAL for a cursor this function did not
//  make, or DBT_ERROR, with err.
int
    dbt_store_list (dbt_store_t *self, const char *queue, dbt_state_t state, const char *after,
                    size_t limit, dbt_store_each_fn *fn, void *arg, char **next_p, char *err);

//  Callback for dropped-table entries: key, results backend, table, job.
typedef int (dbt_store_drop_fn) (uint64_t key, const char *results, const char *table,
                                 const char *job_id, void *arg);

//  Call fn for each results table waiting to be dropped, oldest first.
int
    dbt_store_each_drop (dbt_store_t *self, dbt_store_drop_fn *fn, void *arg, char *err);

//  How much of the store is used, for admission, /health and /metrics.
typedef struct {
    int64_t map_bytes;          //  current map size
    int64_t max_bytes;          //  largest map size it may grow to
    int64_t used_bytes;         //  pages in use (file high-water mark minus free pages)
    int64_t free_bytes;         //  max_bytes - used_bytes, or less when the file
                                //  system has less room left (disk_free_bytes)
    int64_t reserve_bytes;      //  kept for work that frees space (an eighth of
                                //  what the store can reach, 64KiB to 256MiB)
    int64_t disk_free_bytes;    //  free space of the file system, -1 = unknown
    bool full;                  //  free_bytes < reserve_bytes, or a write found the
                                //  map full and a reserve's worth was not freed since,
                                //  or the writer refuses new work: refuse new work
} dbt_store_space_t;

//  Fill *space (safe from any thread). Returns 0 or DBT_ERROR with err.
int
    dbt_store_space (dbt_store_t *self, dbt_store_space_t *space, char *err);

//  Writer: it refuses new work for want of space (or no longer does);
//  dbt_store_space reports the store full meanwhile, for every reader.
void
    dbt_store_set_refusing (dbt_store_t *self, bool refusing);

//  Writer only, with no write transaction open: grow the map when it is
//  more than three quarters used, or a write found it full, and it may
//  grow. Returns 1 when it grew, 0
//  when it did not need to or cannot, DBT_ERROR with err on failure.
int
    dbt_store_grow (dbt_store_t *self, char *err);

//  Begin the write transaction. Returns NULL with err on failure.
dbt_wtxn_t *
    dbt_store_begin (dbt_store_t *self, char *err);

//  Read a job inside the write transaction (sees its own writes).
int
    dbt_wtxn_job (dbt_wtxn_t *self, const char *id, dbt_job_t **job_p, char *err);

//  Read a group inside the write transaction.
int
    dbt_wtxn_group (dbt_wtxn_t *self, const char *id, dbt_group_t **group_p, char *err);

//  The id of the job whose record keeps table on backend results, compared
//  without regard to letter case (caller frees *id_p), or DBT_ENOTFOUND.
int
    dbt_wtxn_table_owner (dbt_wtxn_t *self, const char *results, const char *table,
                          char **id_p, char *err);

//  Write a job record and update the indexes from its previous record.
//  Returns 0, DBT_EFULL when the map is full, or DBT_ERROR.
int
    dbt_wtxn_put_job (dbt_wtxn_t *self, const dbt_job_t *job, char *err);

//  Delete a job record and its index entries (no-op when absent).
int
    dbt_wtxn_del_job (dbt_wtxn_t *self, const char *id, char *err);

//  Write or delete a group record.
int
    dbt_wtxn_put_group (dbt_wtxn_t *self, const dbt_group_t *group, char *err);
int
    dbt_wtxn_del_group (dbt_wtxn_t *self, const char *id, char *err);

//  Record that a results table must be dropped (durable until
//  dbt_wtxn_del_drop); *key_p receives its key (may be NULL).
int
    dbt_wtxn_add_drop (dbt_wtxn_t *self, const char *results, const char *table,
                       const char *job_id, uint64_t *key_p, char *err);

//  Forget a drop entry once the table is gone. DBT_ENOTFOUND when absent.
int
    dbt_wtxn_del_drop (dbt_wtxn_t *self, uint64_t key, char *err);

//  Next submission sequence number (persisted with the transaction).
uint64_t
    dbt_wtxn_next_seq (dbt_wtxn_t *self);

//  The code of the transaction's first failed write (DBT_EFULL or
//  DBT_ERROR; it can then only be undone), 0 while none failed.
int
    dbt_wtxn_failed (dbt_wtxn_t *self);

//  Commit and free; nulls the pointer. Returns 0, DBT_EFULL or DBT_ERROR
//  (the code of the first failed write, if one failed); on failure nothing
//  of the transaction is kept.
int
    dbt_wtxn_commit (dbt_wtxn_t **self_p, char *err);

#ifdef DBT_SELFTEST
//  Self tests only: make the next count commits fail (DBT_ERROR, nothing
//  kept), as a full disk would. Set before the writer's next commit.
void
    dbt_store_test_fail_commits (dbt_store_t *self, int count);
#endif

//  Abort and free; nulls the pointer. Safe on NULL.
void
    dbt_wtxn_abort (dbt_wtxn_t **self_p);

//  --------------------------------------------------------------------------
//  Replication. A dispatcher's store keeps a journal: each write
//  transaction remembers the final bytes of every job and group record it
//  wrote or deleted, so the dispatcher can publish them once committed,
//  with a publication sequence number stored in the same commit. A
//  replica store holds a copy of another dispatcher's records.

//  Open a replica store in dir, emptied first (a replica is filled from a
//  snapshot), with a map of map_size bytes. Writes are not synced: after
//  a crash it is rebuilt anyway. Returns NULL with err on failure.
dbt_store_t *
    dbt_store_open_replica (const char *dir, int64_t map_size, char *err);

//  Remove a replica store's files and directory (the store is closed).
void
    dbt_store_remove_replica (const char *dir);

//  Make write transactions begun from now on keep a journal.
void
    dbt_store_set_journal (dbt_store_t *self, bool on);

//  Callback over raw records: group or job, its id, its packed record
//  (NULL when deleted) and length. Return 0 to go on.
typedef int (dbt_store_record_fn) (bool group, const char *id, const char *record,
                                   size_t len, void *arg);

//  Number of records the transaction changed (0 without a journal).
size_t
    dbt_wtxn_changes (dbt_wtxn_t *self);

//  Call fn for each changed record, in no particular order. Records are
//  borrowed until the transaction ends. Returns 0 or what fn returned.
int
    dbt_wtxn_each_change (dbt_wtxn_t *self, dbt_store_record_fn *fn, void *arg);

//  The publication sequence as of this transaction (the last update
//  published), and a new value to store with the commit.
uint64_t
    dbt_wtxn_pubseq (dbt_wtxn_t *self);
void
    dbt_wtxn_set_pubseq (dbt_wtxn_t *self, uint64_t seq);

//  One page of a snapshot, from one read transaction: up to limit job (or
//  group) records with ids after `after` (NULL: from the first), in id
//  order, passed to fn; *pubseq gets the publication sequence of the same
//  read; *next_p the last id passed when more may follow (caller frees),
//  NULL at the end. Returns 0 or DBT_ERROR with err.
int
    dbt_store_page (dbt_store_t *self, bool groups, const char *after, size_t limit,
                    dbt_store_record_fn *fn, void *arg, uint64_t *pubseq, char **next_p,
                    char *err);

//  The lineage of the store's records: a uuid made with a dispatcher's
//  store, and copied into the stores that follow it (a replica, a
//  failover partner), so every copy of one dispatcher's history is known
//  as one. "" for a replica not filled yet. Borrowed, lives with the store.
const char *
    dbt_store_lineage (dbt_store_t *self);

//  Set the lineage (36 characters) with the transaction.
int
    dbt_wtxn_set_lineage (dbt_wtxn_t *self, const char *lineage);

//  Takeovers in the records' history (a failover pair's epoch, see
//  dbt_pair.h); 0 for a store that never had one. And set it with the
//  transaction.
uint64_t
    dbt_store_epoch (dbt_store_t *self);
int
    dbt_wtxn_set_epoch (dbt_wtxn_t *self, uint64_t epoch);

//  Replace everything the store holds by the records of from (another
//  store, not written meanwhile), with its publication sequence, lineage
//  and epoch: the transaction's store becomes a copy, atomically with the
//  commit (a passive dispatcher taking its partner's snapshot). Returns 0
//  or a DBT_E* code with err.
int
    dbt_wtxn_copy (dbt_wtxn_t *self, dbt_store_t *from, char *err);

//  Empty every database of the store (a replica starting over).
int
    dbt_wtxn_clear (dbt_wtxn_t *self, char *err);

//  Self test of this module.
void
    dbt_store_test (bool verbose);

#endif
