/*  =========================================================================
    dbt_store_int - what the store's source files share (not installed)

    The store and write transaction objects and the small helpers that
    both dbt_store.c (records, indexes, writes) and dbt_store_query.c
    (lists and counts by queue and state, pages of records) use.
    =========================================================================
*/
#ifndef DBT_STORE_INT_H_INCLUDED
#define DBT_STORE_INT_H_INCLUDED

#include "dbt_classes.h"

#define S_KEY_MAX 480           //  LMDB's default key limit is 511 bytes

struct _dbt_store_t {
    MDB_env *env;               //  the environment
    _Atomic int fail_commits;   //  self tests: commits still to fail
    MDB_dbi jobs;               //  id -> job
    MDB_dbi groups;             //  id -> group
    MDB_dbi wait;               //  queue \0 seq -> id
    MDB_dbi run;                //  seq -> id
    MDB_dbi done;               //  finished_ms id -> ""
    MDB_dbi rexp;               //  results expiry ms, id -> ""
    MDB_dbi tables;             //  results \0 folded table -> id
    MDB_dbi drops;              //  seq -> {results, table, id} to drop
    MDB_dbi meta;               //  "seq" -> u64
    MDB_dbi list;               //  queue \0 state order id -> "" (every job)
    MDB_dbi counts;             //  queue \0 state -> u64 entries of list
    int64_t map_size;           //  current map size
    int64_t map_max;            //  largest map size
    pthread_rwlock_t lock;      //  shared by transactions, exclusive to grow
    pthread_mutex_t latch_lock; //  guards the two fields below
    bool latched;               //  a write found the map full (MDB_MAP_FULL)
    bool refusing;              //  the writer refuses new work for want of space
    int64_t latched_used;       //  used bytes when it did, -1 = not read yet
    bool disk_latched;          //  a commit found the file system full (ENOSPC)
    int64_t disk_latched_free;  //  disk free bytes when it did, -1 = not read yet
    int64_t disk_latched_used;  //  used bytes when it did, -1 = not read yet
    bool journal;               //  write transactions record their changes
    bool replica;               //  a copy of another dispatcher's records
    char lineage [37];          //  id of the records' history (meta "lineage"), "" = none
    uint64_t epoch;             //  takeovers in that history (meta "epoch")
};

//  One changed record of a write transaction (the journal).
typedef struct {
    bool group;                 //  a group record, else a job record
    char *id;                   //  its id
    char *bytes;                //  its final packed record, NULL when deleted
    size_t len;                 //  bytes of it
} s_change_t;

struct _dbt_wtxn_t {
    dbt_store_t *store;         //  parent
    MDB_txn *txn;               //  the write transaction
    uint64_t seq;               //  last sequence handed out
    bool seq_dirty;             //  seq must be written at commit
    int failed;                 //  code of the first failed write, 0 = none
    dbt_mpw_t *writer;          //  scratch encoder
    zhashx_t *changes;          //  "j"/"g" + id -> s_change_t, when journaling
    uint64_t pubseq;            //  publication sequence (meta "pubseq")
    bool pubseq_dirty;          //  pubseq must be written at commit
};

static inline void
dbt_store__be64 (unsigned char *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out [i] = (unsigned char) v;
        v >>= 8;
    }
}

static inline uint64_t
dbt_store__get_be64 (const unsigned char *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in [i];
    return v;
}

//  Map an LMDB code to ours with a message.
static inline int
dbt_store__fail (int rc, const char *what, char *err)
{
    dbt_err_set (err, "state store: %s: %s", what, mdb_strerror (rc));
    //  The map full, or the file system under it (a commit's write failed).
    return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT ? DBT_EFULL : DBT_ERROR;
}

//  Read transactions hold the lock shared so the map never moves under them.
static inline int
dbt_store__read_begin (dbt_store_t *self, MDB_txn **txn)
{
    pthread_rwlock_rdlock (&self->lock);
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, txn);
    if (rc)
        pthread_rwlock_unlock (&self->lock);
    return rc;
}

static inline void
dbt_store__read_end (dbt_store_t *self, MDB_txn *txn)
{
    mdb_txn_abort (txn);
    pthread_rwlock_unlock (&self->lock);
}

//  A read transaction and a cursor on dbi in it: 0, or an error code
//  with err set (nothing left open). Close both with read_close.
static inline int
dbt_store__read_cursor (dbt_store_t *self, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cursor,
                        char *err)
{
    int rc = dbt_store__read_begin (self, txn);
    if (rc)
        return dbt_store__fail (rc, "begin read", err);
    rc = mdb_cursor_open (*txn, dbi, cursor);
    if (rc) {
        dbt_store__read_end (self, *txn);
        return dbt_store__fail (rc, "open cursor", err);
    }
    return 0;
}

static inline void
dbt_store__read_close (dbt_store_t *self, MDB_txn *txn, MDB_cursor *cursor)
{
    mdb_cursor_close (cursor);
    dbt_store__read_end (self, txn);
}

//  Copy at most max bytes of str to out; returns the count.
static inline size_t
dbt_store__put_text (unsigned char *out, const char *str, size_t max)
{
    size_t len = strlen (str);
    if (len > max)
        len = max;
    memcpy (out, str, len);
    return len;
}

//  Write the list prefix (queue \0 state) into buf; returns its length.
static inline size_t
dbt_store__list_prefix (unsigned char *buf, const char *queue, dbt_state_t state)
{
    size_t qlen = dbt_store__put_text (buf, queue ? queue : "", DBT_ID_MAX + 64);
    buf [qlen] = 0;
    buf [qlen + 1] = (unsigned char) state;
    return qlen + 2;
}

//  The job record id in txn: 0 and *job_p (caller destroys), DBT_ENOTFOUND,
//  or another code with err set (in dbt_store.c).
int
    dbt_store__get_job (dbt_store_t *self, MDB_txn *txn, const char *id, dbt_job_t **job_p,
                        char *err);

#endif
