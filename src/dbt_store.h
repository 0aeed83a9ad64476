/*  =========================================================================
    dbt_store - job state in LMDB

    One LMDB environment per node under data_dir. Databases: "jobs" (id ->
    job record), "groups" (id -> group record), "wait" (queue, seq -> id of
    PENDING/RETRY jobs, in submission order), "run" (seq -> id of STARTED
    jobs), "done" (finished time, id -> nothing; oldest first for expiry)
    and "meta" (the sequence counter). dbt_wtxn_put_job keeps the indexes in
    step with each record, so callers only write records.

    Threads: reads (dbt_store_job, ...) are short read-only transactions,
    safe from any thread at any time (MDB_NOTLS). Writes go through one
    dbt_wtxn_t at a time, owned by the single writer (the dispatcher), which
    commits once per loop turn.
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

//  Open (creating dir when missing) with the given map size in bytes.
//  Returns NULL with err set on failure.
dbt_store_t *
    dbt_store_open (const char *dir, int64_t map_size, char *err);

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

//  Callback for dropped-table entries: key, results backend, table, job.
typedef int (dbt_store_drop_fn) (uint64_t key, const char *results, const char *table,
                                 const char *job_id, void *arg);

//  Call fn for each results table waiting to be dropped, oldest first.
int
    dbt_store_each_drop (dbt_store_t *self, dbt_store_drop_fn *fn, void *arg, char *err);

//  Fraction of the map in use (0.0 .. 1.0), for metrics and alarms.
double
    dbt_store_usage (dbt_store_t *self);

//  Begin the write transaction. Returns NULL with err on failure.
dbt_wtxn_t *
    dbt_store_begin (dbt_store_t *self, char *err);

//  Read a job inside the write transaction (sees its own writes).
int
    dbt_wtxn_job (dbt_wtxn_t *self, const char *id, dbt_job_t **job_p, char *err);

//  Read a group inside the write transaction.
int
    dbt_wtxn_group (dbt_wtxn_t *self, const char *id, dbt_group_t **group_p, char *err);

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

//  Commit and free; nulls the pointer. Returns 0, DBT_EFULL or DBT_ERROR;
//  on failure nothing of the transaction is kept.
int
    dbt_wtxn_commit (dbt_wtxn_t **self_p, char *err);

//  Abort and free; nulls the pointer. Safe on NULL.
void
    dbt_wtxn_abort (dbt_wtxn_t **self_p);

//  Self test of this module.
void
    dbt_store_test (bool verbose);

#endif
