/*  =========================================================================
    dbt_store - job state in LMDB

    See dbt_store.h. Keys of the index databases are binary: sequence
    numbers and times are 8-byte big-endian so LMDB's byte order is their
    numeric order; "wait" keys start with the queue name and a NUL.
    =========================================================================
*/
#include "dbt_classes.h"
#include <sys/stat.h>

struct _dbt_store_t {
    MDB_env *env;               //  the environment
    MDB_dbi jobs;               //  id -> job
    MDB_dbi groups;             //  id -> group
    MDB_dbi wait;               //  queue \0 seq -> id
    MDB_dbi run;                //  seq -> id
    MDB_dbi done;               //  finished_ms id -> ""
    MDB_dbi rexp;               //  results expiry ms, id -> ""
    MDB_dbi drops;              //  seq -> {results, table, id} to drop
    MDB_dbi meta;               //  "seq" -> u64
    int64_t map_size;           //  configured map size
};

struct _dbt_wtxn_t {
    dbt_store_t *store;         //  parent
    MDB_txn *txn;               //  the write transaction
    uint64_t seq;               //  last sequence handed out
    bool seq_dirty;             //  seq must be written at commit
    bool failed;                //  a write failed: only abort is possible
    dbt_mpw_t *writer;          //  scratch encoder
};

static void
s_be64 (unsigned char *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out [i] = (unsigned char) v;
        v >>= 8;
    }
}

static uint64_t
s_get_be64 (const unsigned char *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in [i];
    return v;
}

//  Map an LMDB code to ours with a message.
static int
s_fail (int rc, const char *what, char *err)
{
    dbt_err_set (err, "state store: %s: %s", what, mdb_strerror (rc));
    return rc == MDB_MAP_FULL ? DBT_EFULL : DBT_ERROR;
}

//  --------------------------------------------------------------------------
//  Open

dbt_store_t *
dbt_store_open (const char *dir, int64_t map_size, char *err)
{
    if (dbt_mkdirs (dir, err))
        return NULL;
    dbt_store_t *self = (dbt_store_t *) dbt_malloc (sizeof (dbt_store_t));
    self->map_size = map_size;
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, 12);
    if (rc == 0)
        rc = mdb_env_set_maxreaders (self->env, 1024);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, (size_t) map_size);
    if (rc == 0)
        rc = mdb_env_open (self->env, dir, MDB_NOTLS, 0640);
    if (rc) {
        dbt_err_set (err, "cannot open state store in '%s': %s", dir, mdb_strerror (rc));
        if (self->env)
            mdb_env_close (self->env);
        free (self);
        return NULL;
    }
    //  Readers left behind by a killed process would pin old pages.
    int dead = 0;
    mdb_reader_check (self->env, &dead);
    if (dead)
        dbt_log (DBT_LOG_INFO, "store: cleared %d stale reader slots", dead);

    MDB_txn *txn = NULL;
    rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc == 0) rc = mdb_dbi_open (txn, "jobs", MDB_CREATE, &self->jobs);
    if (rc == 0) rc = mdb_dbi_open (txn, "groups", MDB_CREATE, &self->groups);
    if (rc == 0) rc = mdb_dbi_open (txn, "wait", MDB_CREATE, &self->wait);
    if (rc == 0) rc = mdb_dbi_open (txn, "run", MDB_CREATE, &self->run);
    if (rc == 0) rc = mdb_dbi_open (txn, "done", MDB_CREATE, &self->done);
    if (rc == 0) rc = mdb_dbi_open (txn, "rexp", MDB_CREATE, &self->rexp);
    if (rc == 0) rc = mdb_dbi_open (txn, "drops", MDB_CREATE, &self->drops);
    if (rc == 0) rc = mdb_dbi_open (txn, "meta", MDB_CREATE, &self->meta);
    if (rc == 0)
        rc = mdb_txn_commit (txn);
    else
    if (txn)
        mdb_txn_abort (txn);
    if (rc) {
        dbt_err_set (err, "cannot open state databases in '%s': %s", dir, mdb_strerror (rc));
        mdb_env_close (self->env);
        free (self);
        return NULL;
    }
    return self;
}

void
dbt_store_destroy (dbt_store_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        mdb_env_close ((*self_p)->env);
        free (*self_p);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Decoding helpers

static int
s_decode_job (MDB_val *val, dbt_job_t **job_p, char *err)
{
    char perr [DBT_ERRMSG_LEN];
    dbt_mpr_t *reader = dbt_mpr_new (val->mv_data, val->mv_size, perr);
    if (!reader) {
        dbt_err_set (err, "state store: corrupt job record: %s", perr);
        return DBT_ERROR;
    }
    *job_p = dbt_job_unpack (dbt_mpr_root (reader), perr);
    dbt_mpr_destroy (&reader);
    if (!*job_p) {
        dbt_err_set (err, "state store: corrupt job record: %s", perr);
        return DBT_ERROR;
    }
    return 0;
}

static int
s_get_job (dbt_store_t *self, MDB_txn *txn, const char *id, dbt_job_t **job_p, char *err)
{
    MDB_val key = { strlen (id), (void *) id }, val;
    int rc = mdb_get (txn, self->jobs, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DBT_ENOTFOUND;
    if (rc)
        return s_fail (rc, "read job", err);
    return s_decode_job (&val, job_p, err);
}

static int
s_get_group (dbt_store_t *self, MDB_txn *txn, const char *id, dbt_group_t **group_p, char *err)
{
    MDB_val key = { strlen (id), (void *) id }, val;
    int rc = mdb_get (txn, self->groups, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DBT_ENOTFOUND;
    if (rc)
        return s_fail (rc, "read group", err);
    char perr [DBT_ERRMSG_LEN];
    dbt_mpr_t *reader = dbt_mpr_new (val.mv_data, val.mv_size, perr);
    if (reader)
        *group_p = dbt_group_unpack (dbt_mpr_root (reader), perr);
    dbt_mpr_destroy (&reader);
    if (!*group_p) {
        dbt_err_set (err, "state store: corrupt group record: %s", perr);
        return DBT_ERROR;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Read side

int
dbt_store_job (dbt_store_t *self, const char *id, dbt_job_t **job_p, char *err)
{
    *job_p = NULL;
    if (!id || !*id)
        return DBT_ENOTFOUND;
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_fail (rc, "begin read", err);
    rc = s_get_job (self, txn, id, job_p, err);
    mdb_txn_abort (txn);
    return rc;
}

int
dbt_store_group (dbt_store_t *self, const char *id, dbt_group_t **group_p, char *err)
{
    *group_p = NULL;
    if (!id || !*id)
        return DBT_ENOTFOUND;
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_fail (rc, "begin read", err);
    rc = s_get_group (self, txn, id, group_p, err);
    mdb_txn_abort (txn);
    return rc;
}

//  Walk an index and pass each job it names to fn. Value indexes (wait,
//  run) hold the id as value, limited to keys starting with prefix; timed
//  indexes (done, rexp) hold (time, id) keys, walked up to before_ms.
static int
s_scan (dbt_store_t *self, MDB_dbi dbi, bool timed, const void *prefix, size_t prefix_len,
        int64_t before_ms, dbt_store_each_fn *fn, void *arg, char *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_fail (rc, "begin read", err);
    MDB_cursor *cursor;
    rc = mdb_cursor_open (txn, dbi, &cursor);
    if (rc) {
        mdb_txn_abort (txn);
        return s_fail (rc, "open cursor", err);
    }
    MDB_val key = { prefix_len, (void *) prefix }, val;
    rc = mdb_cursor_get (cursor, &key, &val, prefix_len ? MDB_SET_RANGE : MDB_FIRST);
    int result = 0;
    while (rc == 0) {
        const char *id_data;
        size_t id_len;
        if (timed) {
            if (key.mv_size <= 8
            ||  (int64_t) s_get_be64 ((const unsigned char *) key.mv_data) >= before_ms)
                break;
            id_data = (const char *) key.mv_data + 8;
            id_len = key.mv_size - 8;
        }
        else {
            if (prefix_len && (key.mv_size < prefix_len || memcmp (key.mv_data, prefix, prefix_len)))
                break;
            id_data = (const char *) val.mv_data;
            id_len = val.mv_size;
        }
        char *id = dbt_strndup (id_data, id_len);
        dbt_job_t *job = NULL;
        int grc = s_get_job (self, txn, id, &job, err);
        free (id);
        if (grc == 0) {
            int stop = fn (job, arg);
            dbt_job_destroy (&job);
            if (stop)
                break;
        }
        else
        if (grc != DBT_ENOTFOUND) {
            result = grc;
            break;
        }
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND && result == 0)
        result = s_fail (rc, "scan", err);
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return result;
}

int
dbt_store_each_waiting (dbt_store_t *self, const char *queue,
                        dbt_store_each_fn *fn, void *arg, char *err)
{
    size_t len = queue ? strlen (queue) + 1 : 0;    //  include the NUL separator
    return s_scan (self, self->wait, false, queue, len, 0, fn, arg, err);
}

int
dbt_store_each_running (dbt_store_t *self, dbt_store_each_fn *fn, void *arg, char *err)
{
    return s_scan (self, self->run, false, NULL, 0, 0, fn, arg, err);
}

int
dbt_store_each_finished (dbt_store_t *self, int64_t before_ms,
                         dbt_store_each_fn *fn, void *arg, char *err)
{
    return s_scan (self, self->done, true, NULL, 0, before_ms, fn, arg, err);
}

int
dbt_store_each_expiring (dbt_store_t *self, int64_t before_ms,
                         dbt_store_each_fn *fn, void *arg, char *err)
{
    return s_scan (self, self->rexp, true, NULL, 0, before_ms, fn, arg, err);
}

int
dbt_store_each_drop (dbt_store_t *self, dbt_store_drop_fn *fn, void *arg, char *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return s_fail (rc, "begin read", err);
    MDB_cursor *cursor;
    rc = mdb_cursor_open (txn, self->drops, &cursor);
    if (rc) {
        mdb_txn_abort (txn);
        return s_fail (rc, "open cursor", err);
    }
    MDB_val key, val;
    rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    while (rc == 0) {
        char perr [DBT_ERRMSG_LEN];
        dbt_mpr_t *reader = key.mv_size == 8 ? dbt_mpr_new (val.mv_data, val.mv_size, perr) : NULL;
        char *results = NULL, *table = NULL, *id = NULL;
        if (reader
        &&  dbt_mp_field_str (dbt_mpr_root (reader), "results", true, &results, perr) == 0
        &&  dbt_mp_field_str (dbt_mpr_root (reader), "table", true, &table, perr) == 0
        &&  dbt_mp_field_str (dbt_mpr_root (reader), "id", false, &id, perr) == 0) {
            int stop = fn (s_get_be64 ((const unsigned char *) key.mv_data), results, table, id, arg);
            free (results);
            free (table);
            free (id);
            dbt_mpr_destroy (&reader);
            if (stop)
                break;
        }
        else {
            free (results);
            free (table);
            free (id);
            dbt_mpr_destroy (&reader);
        }
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    mdb_txn_abort (txn);
    return 0;
}

double
dbt_store_usage (dbt_store_t *self)
{
    MDB_envinfo info;
    MDB_stat stat;
    if (mdb_env_info (self->env, &info) || mdb_env_stat (self->env, &stat))
        return 0;
    double used = (double) (info.me_last_pgno + 1) * stat.ms_psize;
    return used / (double) info.me_mapsize;
}

//  --------------------------------------------------------------------------
//  Write side

dbt_wtxn_t *
dbt_store_begin (dbt_store_t *self, char *err)
{
    dbt_wtxn_t *wtxn = (dbt_wtxn_t *) dbt_malloc (sizeof (dbt_wtxn_t));
    wtxn->store = self;
    int rc = mdb_txn_begin (self->env, NULL, 0, &wtxn->txn);
    if (rc) {
        s_fail (rc, "begin write", err);
        free (wtxn);
        return NULL;
    }
    MDB_val key = { 3, (void *) "seq" }, val;
    if (mdb_get (wtxn->txn, self->meta, &key, &val) == 0 && val.mv_size == 8)
        wtxn->seq = s_get_be64 ((const unsigned char *) val.mv_data);
    wtxn->writer = dbt_mpw_new ();
    return wtxn;
}

int
dbt_wtxn_job (dbt_wtxn_t *self, const char *id, dbt_job_t **job_p, char *err)
{
    *job_p = NULL;
    return s_get_job (self->store, self->txn, id, job_p, err);
}

int
dbt_wtxn_group (dbt_wtxn_t *self, const char *id, dbt_group_t **group_p, char *err)
{
    *group_p = NULL;
    return s_get_group (self->store, self->txn, id, group_p, err);
}

//  Index keys of a record: wait (queue \0 seq) or run (seq) while
//  unfinished; done (finished ms, id) and, for results that expire, rexp
//  (expiry ms, id) once finished.
typedef struct {
    unsigned char buf [DBT_ID_MAX + 80 + 8];
    MDB_val key;
    MDB_dbi dbi;
    bool keyed_by_id;           //  the key holds the id, the value is empty
} s_index_t;

//  Fill up to two index entries of job; returns how many.
static int
s_indexes_of (dbt_store_t *store, const dbt_job_t *job, s_index_t *index)
{
    if (job->state == DBT_STATE_PENDING || job->state == DBT_STATE_RETRY) {
        size_t qlen = strlen (job->queue);
        if (qlen > DBT_ID_MAX + 64)
            qlen = DBT_ID_MAX + 64;
        memcpy (index [0].buf, job->queue, qlen);
        index [0].buf [qlen] = 0;
        s_be64 (index [0].buf + qlen + 1, job->seq);
        index [0].key = (MDB_val) { qlen + 9, index [0].buf };
        index [0].dbi = store->wait;
        index [0].keyed_by_id = false;
        return 1;
    }
    if (job->state == DBT_STATE_STARTED) {
        s_be64 (index [0].buf, job->seq);
        index [0].key = (MDB_val) { 8, index [0].buf };
        index [0].dbi = store->run;
        index [0].keyed_by_id = false;
        return 1;
    }
    size_t idlen = strlen (job->id);
    s_be64 (index [0].buf, (uint64_t) job->finished_ms);
    memcpy (index [0].buf + 8, job->id, idlen);
    index [0].key = (MDB_val) { 8 + idlen, index [0].buf };
    index [0].dbi = store->done;
    index [0].keyed_by_id = true;
    int64_t expiry = dbt_job_results_expiry (job);
    if (expiry <= 0)
        return 1;
    s_be64 (index [1].buf, (uint64_t) expiry);
    memcpy (index [1].buf + 8, job->id, idlen);
    index [1].key = (MDB_val) { 8 + idlen, index [1].buf };
    index [1].dbi = store->rexp;
    index [1].keyed_by_id = true;
    return 2;
}

static bool
s_index_same (const s_index_t *a, const s_index_t *b)
{
    return a->dbi == b->dbi && a->key.mv_size == b->key.mv_size
        && memcmp (a->buf, b->buf, a->key.mv_size) == 0;
}

//  Remove index entries of old not in new, add those of new not in old.
static int
s_reindex (dbt_wtxn_t *self, const dbt_job_t *old, const dbt_job_t *job)
{
    s_index_t before [2], after [2];
    int nbefore = old ? s_indexes_of (self->store, old, before) : 0;
    int nafter = job ? s_indexes_of (self->store, job, after) : 0;
    for (int i = 0; i < nbefore; i++) {
        bool kept = false;
        for (int j = 0; j < nafter; j++)
            kept = kept || s_index_same (&before [i], &after [j]);
        if (!kept) {
            int rc = mdb_del (self->txn, before [i].dbi, &before [i].key, NULL);
            if (rc && rc != MDB_NOTFOUND)
                return rc;
        }
    }
    for (int j = 0; j < nafter; j++) {
        MDB_val value = after [j].keyed_by_id ? (MDB_val) { 0, (void *) "" }
                                              : (MDB_val) { strlen (job->id), (void *) job->id };
        int rc = mdb_put (self->txn, after [j].dbi, &after [j].key, &value, 0);
        if (rc)
            return rc;
    }
    return 0;
}

int
dbt_wtxn_put_job (dbt_wtxn_t *self, const dbt_job_t *job, char *err)
{
    assert (!self->failed);
    dbt_store_t *store = self->store;
    dbt_job_t *old = NULL;
    int rc = s_get_job (store, self->txn, job->id, &old, err);
    if (rc != 0 && rc != DBT_ENOTFOUND)
        return rc;
    rc = s_reindex (self, old, job);
    dbt_job_destroy (&old);
    if (rc)
        goto fail;
    dbt_mpw_reset (self->writer);
    dbt_job_pack (job, self->writer);
    size_t len;
    const char *data = dbt_mpw_data (self->writer, &len);
    MDB_val idval = { strlen (job->id), (void *) job->id };
    MDB_val value = { len, (void *) data };
    rc = mdb_put (self->txn, store->jobs, &idval, &value, 0);
    if (rc)
        goto fail;
    return 0;
fail:
    self->failed = true;
    return s_fail (rc, "write job", err);
}

int
dbt_wtxn_del_job (dbt_wtxn_t *self, const char *id, char *err)
{
    assert (!self->failed);
    dbt_job_t *old = NULL;
    int rc = s_get_job (self->store, self->txn, id, &old, err);
    if (rc == DBT_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    rc = s_reindex (self, old, NULL);
    dbt_job_destroy (&old);
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    MDB_val key = { strlen (id), (void *) id };
    rc = mdb_del (self->txn, self->store->jobs, &key, NULL);
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    return 0;
fail:
    self->failed = true;
    return s_fail (rc, "delete job", err);
}

int
dbt_wtxn_put_group (dbt_wtxn_t *self, const dbt_group_t *group, char *err)
{
    assert (!self->failed);
    dbt_mpw_reset (self->writer);
    dbt_group_pack (group, self->writer);
    size_t len;
    const char *data = dbt_mpw_data (self->writer, &len);
    MDB_val key = { strlen (group->id), (void *) group->id }, value = { len, (void *) data };
    int rc = mdb_put (self->txn, self->store->groups, &key, &value, 0);
    if (rc) {
        self->failed = true;
        return s_fail (rc, "write group", err);
    }
    return 0;
}

int
dbt_wtxn_del_group (dbt_wtxn_t *self, const char *id, char *err)
{
    assert (!self->failed);
    MDB_val key = { strlen (id), (void *) id };
    int rc = mdb_del (self->txn, self->store->groups, &key, NULL);
    if (rc && rc != MDB_NOTFOUND) {
        self->failed = true;
        return s_fail (rc, "delete group", err);
    }
    return 0;
}

int
dbt_wtxn_add_drop (dbt_wtxn_t *self, const char *results, const char *table,
                   const char *job_id, uint64_t *key_p, char *err)
{
    assert (!self->failed);
    unsigned char key [8];
    uint64_t seq = dbt_wtxn_next_seq (self);
    s_be64 (key, seq);
    dbt_mpw_reset (self->writer);
    dbt_mpw_map (self->writer);
    dbt_mpw_kstr (self->writer, "results", results);
    dbt_mpw_kstr (self->writer, "table", table);
    dbt_mpw_kstr (self->writer, "id", job_id);
    dbt_mpw_end (self->writer);
    size_t len;
    const char *data = dbt_mpw_data (self->writer, &len);
    MDB_val k = { 8, key }, v = { len, (void *) data };
    int rc = mdb_put (self->txn, self->store->drops, &k, &v, 0);
    if (rc) {
        self->failed = true;
        return s_fail (rc, "write drop", err);
    }
    if (key_p)
        *key_p = seq;
    return 0;
}

int
dbt_wtxn_del_drop (dbt_wtxn_t *self, uint64_t key, char *err)
{
    assert (!self->failed);
    unsigned char buf [8];
    s_be64 (buf, key);
    MDB_val k = { 8, buf };
    int rc = mdb_del (self->txn, self->store->drops, &k, NULL);
    if (rc && rc != MDB_NOTFOUND) {
        self->failed = true;
        return s_fail (rc, "delete drop", err);
    }
    return rc == MDB_NOTFOUND ? DBT_ENOTFOUND : 0;
}

uint64_t
dbt_wtxn_next_seq (dbt_wtxn_t *self)
{
    self->seq_dirty = true;
    return ++self->seq;
}

int
dbt_wtxn_commit (dbt_wtxn_t **self_p, char *err)
{
    assert (self_p && *self_p);
    dbt_wtxn_t *self = *self_p;
    int rc = 0;
    if (self->failed) {
        dbt_err_set (err, "state store: transaction failed earlier");
        dbt_wtxn_abort (self_p);
        return DBT_ERROR;
    }
    if (self->seq_dirty) {
        unsigned char buf [8];
        s_be64 (buf, self->seq);
        MDB_val key = { 3, (void *) "seq" }, val = { 8, buf };
        rc = mdb_put (self->txn, self->store->meta, &key, &val, 0);
        if (rc) {
            mdb_txn_abort (self->txn);
            goto done;
        }
    }
    rc = mdb_txn_commit (self->txn);
done:
    dbt_mpw_destroy (&self->writer);
    free (self);
    *self_p = NULL;
    if (rc)
        return s_fail (rc, "commit", err);
    return 0;
}

void
dbt_wtxn_abort (dbt_wtxn_t **self_p)
{
    assert (self_p);
    dbt_wtxn_t *self = *self_p;
    if (!self)
        return;
    mdb_txn_abort (self->txn);
    dbt_mpw_destroy (&self->writer);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Self test

static int
s_collect (const dbt_job_t *job, void *arg)
{
    zlist_t *ids = (zlist_t *) arg;
    zlist_append (ids, dbt_strdup (job->id));
    return 0;
}

static int
s_collect_drop (uint64_t key, const char *results, const char *table, const char *job_id, void *arg)
{
    assert (streq (results, "res") && streq (table, "results_b") && streq (job_id, "b"));
    *(uint64_t *) arg = key;
    return 0;
}

static dbt_job_t *
s_test_job (const char *id, const char *queue, uint64_t seq, dbt_state_t state)
{
    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->id, id);
    dbt_job_set (&job->task, "t");
    dbt_job_set (&job->queue, queue);
    job->seq = seq;
    job->state = state;
    return job;
}

void
dbt_store_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("store");
    dbt_store_t *store = dbt_store_open (dir, 64 << 20, err);
    assert (store);

    dbt_wtxn_t *txn = dbt_store_begin (store, err);
    assert (txn);
    uint64_t s1 = dbt_wtxn_next_seq (txn);
    uint64_t s2 = dbt_wtxn_next_seq (txn);
    assert (s2 == s1 + 1);
    dbt_job_t *a = s_test_job ("a", "q1", s1, DBT_STATE_PENDING);
    dbt_job_t *b = s_test_job ("b", "q1", s2, DBT_STATE_PENDING);
    dbt_job_t *c = s_test_job ("c", "q10", dbt_wtxn_next_seq (txn), DBT_STATE_PENDING);
    assert (dbt_wtxn_put_job (txn, b, err) == 0);
    assert (dbt_wtxn_put_job (txn, a, err) == 0);
    assert (dbt_wtxn_put_job (txn, c, err) == 0);
    dbt_job_t *seen = NULL;
    assert (dbt_wtxn_job (txn, "a", &seen, err) == 0 && seen->seq == s1);
    dbt_job_destroy (&seen);
    //  Not visible to readers before commit.
    assert (dbt_store_job (store, "a", &seen, err) == DBT_ENOTFOUND);
    assert (dbt_wtxn_commit (&txn, err) == 0 && txn == NULL);
    assert (dbt_store_job (store, "a", &seen, err) == 0 && streq (seen->queue, "q1"));
    dbt_job_destroy (&seen);

    //  Waiting index is per queue, in submission order ("q1" is not "q10").
    zlist_t *ids = zlist_new ();
    zlist_autofree (ids);
    assert (dbt_store_each_waiting (store, "q1", s_collect, ids, err) == 0);
    assert (zlist_size (ids) == 2);
    assert (streq ((char *) zlist_first (ids), "a") && streq ((char *) zlist_next (ids), "b"));
    zlist_purge (ids);
    assert (dbt_store_each_waiting (store, NULL, s_collect, ids, err) == 0 && zlist_size (ids) == 3);
    zlist_purge (ids);

    //  State changes move index entries.
    txn = dbt_store_begin (store, err);
    a->state = DBT_STATE_STARTED;
    assert (dbt_wtxn_put_job (txn, a, err) == 0);
    b->state = DBT_STATE_SUCCESS;
    b->finished_ms = 1000;
    b->results_ttl_ms = 500;
    dbt_job_set (&b->table, "results_b");
    assert (dbt_wtxn_put_job (txn, b, err) == 0);
    assert (dbt_wtxn_commit (&txn, err) == 0);
    assert (dbt_store_each_waiting (store, "q1", s_collect, ids, err) == 0 && zlist_size (ids) == 0);
    assert (dbt_store_each_running (store, s_collect, ids, err) == 0 && zlist_size (ids) == 1);
    zlist_purge (ids);
    assert (dbt_store_each_finished (store, 2000, s_collect, ids, err) == 0 && zlist_size (ids) == 1);
    zlist_purge (ids);
    assert (dbt_store_each_finished (store, 500, s_collect, ids, err) == 0 && zlist_size (ids) == 0);
    assert (dbt_store_each_expiring (store, 1501, s_collect, ids, err) == 0 && zlist_size (ids) == 1);
    zlist_purge (ids);
    assert (dbt_store_each_expiring (store, 1500, s_collect, ids, err) == 0 && zlist_size (ids) == 0);
    //  Expired results leave the expiry index, keep the finished one.
    txn = dbt_store_begin (store, err);
    b->expired = true;
    assert (dbt_wtxn_put_job (txn, b, err) == 0);
    uint64_t drop_key = 0;
    assert (dbt_wtxn_add_drop (txn, "res", "results_b", "b", &drop_key, err) == 0 && drop_key);
    assert (dbt_wtxn_commit (&txn, err) == 0);
    assert (dbt_store_each_expiring (store, 5000, s_collect, ids, err) == 0 && zlist_size (ids) == 0);
    assert (dbt_store_each_finished (store, 5000, s_collect, ids, err) == 0 && zlist_size (ids) == 1);
    zlist_purge (ids);
    uint64_t seen_key = 0;
    assert (dbt_store_each_drop (store, s_collect_drop, &seen_key, err) == 0 && seen_key == drop_key);
    txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_del_drop (txn, drop_key, err) == 0);
    assert (dbt_wtxn_del_drop (txn, drop_key, err) == DBT_ENOTFOUND);
    assert (dbt_wtxn_commit (&txn, err) == 0);
    seen_key = 0;
    assert (dbt_store_each_drop (store, s_collect_drop, &seen_key, err) == 0 && seen_key == 0);

    //  Aborted transactions leave nothing; deletes clean the indexes.
    txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_del_job (txn, "a", err) == 0);
    dbt_wtxn_abort (&txn);
    assert (dbt_store_job (store, "a", &seen, err) == 0);
    dbt_job_destroy (&seen);
    txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_del_job (txn, "a", err) == 0);
    assert (dbt_wtxn_del_job (txn, "nope", err) == 0);
    dbt_group_t *group = dbt_group_new ();
    group->id = dbt_strdup ("g1");
    dbt_group_add (group, "c");
    assert (dbt_wtxn_put_group (txn, group, err) == 0);
    assert (dbt_wtxn_commit (&txn, err) == 0);
    assert (dbt_store_job (store, "a", &seen, err) == DBT_ENOTFOUND);
    assert (dbt_store_each_running (store, s_collect, ids, err) == 0 && zlist_size (ids) == 0);
    dbt_group_t *gseen = NULL;
    assert (dbt_store_group (store, "g1", &gseen, err) == 0 && gseen->njobs == 1);
    dbt_group_destroy (&gseen);
    assert (dbt_store_group (store, "g2", &gseen, err) == DBT_ENOTFOUND);
    assert (dbt_store_usage (store) > 0 && dbt_store_usage (store) < 1);

    //  Sequence survives reopen.
    dbt_store_destroy (&store);
    store = dbt_store_open (dir, 64 << 20, err);
    assert (store);
    txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_next_seq (txn) == s1 + 4);       //  3 jobs and 1 drop
    dbt_wtxn_abort (&txn);
    assert (dbt_store_job (store, "c", &seen, err) == 0);
    dbt_job_destroy (&seen);

    //  A full map is reported as DBT_EFULL and the transaction is dropped.
    dbt_store_destroy (&store);
    dbt_testing_rmtree (&dir);
    char *small = dbt_testing_tmpdir ("store");
    store = dbt_store_open (small, 1 << 20, err);
    assert (store);
    int rc = 0;
    dbt_job_t *big = s_test_job ("x", "q", 1, DBT_STATE_PENDING);
    char *payload = (char *) dbt_malloc (4001);
    memset (payload, 'p', 4000);
    dbt_job_set (&big->error, payload);
    free (payload);
    for (int round = 0; round < 1000 && rc == 0; round++) {
        txn = dbt_store_begin (store, err);
        for (int i = 0; i < 20 && rc == 0; i++) {
            char id [32];
            snprintf (id, sizeof (id), "j%d-%d", round, i);
            dbt_job_set (&big->id, id);
            big->seq = dbt_wtxn_next_seq (txn);
            rc = dbt_wtxn_put_job (txn, big, err);
        }
        if (rc == 0)
            rc = dbt_wtxn_commit (&txn, err);
        else
            dbt_wtxn_abort (&txn);
    }
    assert (rc == DBT_EFULL && strstr (err, "MDB_MAP_FULL"));
    //  Earlier commits are intact and the store still reads.
    assert (dbt_store_job (store, "j0-0", &seen, err) == 0);
    dbt_job_destroy (&seen);
    dbt_job_destroy (&big);
    dbt_store_destroy (&store);
    dbt_testing_rmtree (&small);
    dbt_job_destroy (&a);
    dbt_job_destroy (&b);
    dbt_job_destroy (&c);
    dbt_group_destroy (&group);
    zlist_destroy (&ids);
    if (verbose)
        printf ("store: ok\n");
}
