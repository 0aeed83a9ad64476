/*  =========================================================================
    dbt_store - job state in LMDB

    See dbt_store.h. Keys of the index databases are binary: sequence
    numbers and times are 8-byte big-endian so LMDB's byte order is their
    numeric order; "wait" keys start with the queue name and a NUL.
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_store_int.h"
#include <sys/stat.h>
#include <sys/statvfs.h>

static void
s_change_free (void **item_p)
{
    s_change_t *change = (s_change_t *) *item_p;
    if (change) {
        free (change->id);
        free (change->bytes);
        free (change);
        *item_p = NULL;
    }
}

//  Record a change in the journal (bytes NULL for a delete).
static void
s_journal (dbt_wtxn_t *self, bool group, const char *id, const char *bytes, size_t len)
{
    if (!self->changes)
        return;
    char *key = dbt_printf ("%c%s", group ? 'g' : 'j', id);
    s_change_t *change = (s_change_t *) zhashx_lookup (self->changes, key);
    if (!change) {
        change = (s_change_t *) dbt_malloc (sizeof (s_change_t));
        change->group = group;
        change->id = dbt_strdup (id);
        zhashx_insert (self->changes, key, change);
    }
    free (change->bytes);
    change->bytes = bytes ? dbt_strndup (bytes, len) : NULL;
    change->len = bytes ? len : 0;
    free (key);
}

//  Reserve kept free for work that frees space: an eighth of the largest
//  map, at least 64 KiB, at most 256 MiB.
static int64_t
s_reserve (int64_t map_max)
{
    int64_t reserve = map_max / 8;
    if (reserve < 64 * 1024)
        reserve = 64 * 1024;
    if (reserve > 256 * 1024 * 1024)
        reserve = 256 * 1024 * 1024;
    return reserve;
}

static int s_index_missing (dbt_store_t *self);

//  A write found the map full: the store counts as full (whatever the
//  free page count says, a transaction of that size did not fit) until
//  a reserve's worth of space is freed, or the map grows.
static void
s_latch_full (dbt_store_t *self)
{
    pthread_mutex_lock (&self->latch_lock);
    if (!self->latched) {
        self->latched = true;
        self->latched_used = -1;
    }
    pthread_mutex_unlock (&self->latch_lock);
}

//  A commit found the file system full: the store counts as full until a
//  reserve's worth of disk space or of the store's pages is freed.
static void
s_latch_disk (dbt_store_t *self)
{
    pthread_mutex_lock (&self->latch_lock);
    if (!self->disk_latched) {
        self->disk_latched = true;
        self->disk_latched_free = -1;
        self->disk_latched_used = -1;
    }
    pthread_mutex_unlock (&self->latch_lock);
}

//  --------------------------------------------------------------------------
//  Open

static dbt_store_t *
s_open (const char *dir, int64_t map_size, int64_t map_max, unsigned flags, char *err);

dbt_store_t *
dbt_store_open (const char *dir, int64_t map_size, int64_t map_max, char *err)
{
    return s_open (dir, map_size, map_max, 0, err);
}

dbt_store_t *
dbt_store_open_replica (const char *dir, int64_t map_size, char *err)
{
    if (dbt_mkdirs (dir, err))
        return NULL;
    //  A replica starts empty: it is filled from a snapshot.
    const char *files [] = { "data.mdb", "lock.mdb" };
    for (size_t i = 0; i < 2; i++) {
        char *path = dbt_printf ("%s/%s", dir, files [i]);
        if (unlink (path) && errno != ENOENT) {
            dbt_err_set (err, "cannot remove '%s': %s", path, strerror (errno));
            free (path);
            return NULL;
        }
        free (path);
    }
    dbt_store_t *self = s_open (dir, map_size, map_size, MDB_NOSYNC | MDB_NOMETASYNC, err);
    if (self)
        self->replica = true;
    return self;
}

void
dbt_store_remove_replica (const char *dir)
{
    const char *files [] = { "data.mdb", "lock.mdb" };
    for (size_t i = 0; i < 2; i++) {
        char *path = dbt_printf ("%s/%s", dir, files [i]);
        unlink (path);
        free (path);
    }
    rmdir (dir);
}

static dbt_store_t *
s_open (const char *dir, int64_t map_size, int64_t map_max, unsigned flags, char *err)
{
    if (dbt_mkdirs (dir, err))
        return NULL;
    dbt_store_t *self = (dbt_store_t *) dbt_malloc (sizeof (dbt_store_t));
    self->map_size = map_size;
    self->map_max = map_max > map_size ? map_max : map_size;
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, 12);
    if (rc == 0)
        rc = mdb_env_set_maxreaders (self->env, 1024);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, (size_t) map_size);
    if (rc == 0)
        rc = mdb_env_open (self->env, dir, MDB_NOTLS | flags, 0640);
    if (rc) {
        dbt_err_set (err, "cannot open state store in '%s': %s", dir, mdb_strerror (rc));
        if (self->env)
            mdb_env_close (self->env);
        free (self);
        return NULL;
    }
    //  A file bigger than the configured map (it grew earlier): adopt it.
    MDB_envinfo info;
    if (mdb_env_info (self->env, &info) == 0 && (int64_t) info.me_mapsize > self->map_size) {
        self->map_size = (int64_t) info.me_mapsize;
        if (self->map_max < self->map_size)
            self->map_max = self->map_size;
    }
    //  Writer-preferring, so a stream of readers cannot starve a grow.
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init (&attr);
    pthread_rwlockattr_setkind_np (&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init (&self->lock, &attr);
    pthread_rwlockattr_destroy (&attr);
    pthread_mutex_init (&self->latch_lock, NULL);
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
    if (rc == 0) rc = mdb_dbi_open (txn, "tables", MDB_CREATE, &self->tables);
    if (rc == 0) rc = mdb_dbi_open (txn, "drops", MDB_CREATE, &self->drops);
    if (rc == 0) rc = mdb_dbi_open (txn, "meta", MDB_CREATE, &self->meta);
    if (rc == 0) rc = mdb_dbi_open (txn, "list", MDB_CREATE, &self->list);
    if (rc == 0) rc = mdb_dbi_open (txn, "counts", MDB_CREATE, &self->counts);
    //  The records' lineage: made with the store, copied by a follower.
    MDB_val lkey = { 7, (void *) "lineage" }, lval;
    if (rc == 0 && mdb_get (txn, self->meta, &lkey, &lval) == 0 && lval.mv_size == 36)
        memcpy (self->lineage, lval.mv_data, 36);
    else
    if (rc == 0 && !(flags & MDB_NOSYNC)) {
        dbt_uuid (self->lineage);
        lval = (MDB_val) { 36, self->lineage };
        rc = mdb_put (txn, self->meta, &lkey, &lval, 0);
    }
    MDB_val ekey = { 5, (void *) "epoch" }, eval;
    if (rc == 0 && mdb_get (txn, self->meta, &ekey, &eval) == 0 && eval.mv_size == 8)
        self->epoch = dbt_store__get_be64 ((const unsigned char *) eval.mv_data);
    if (rc == 0)
        rc = mdb_txn_commit (txn);
    else
    if (txn)
        mdb_txn_abort (txn);
    if (rc == 0)
        rc = s_index_missing (self);
    if (rc) {
        dbt_err_set (err, "cannot open state databases in '%s': %s", dir, mdb_strerror (rc));
        mdb_env_close (self->env);
        pthread_rwlock_destroy (&self->lock);
        pthread_mutex_destroy (&self->latch_lock);
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
        pthread_rwlock_destroy (&(*self_p)->lock);
        pthread_mutex_destroy (&(*self_p)->latch_lock);
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

int
dbt_store__get_job (dbt_store_t *self, MDB_txn *txn, const char *id, dbt_job_t **job_p, char *err)
{
    MDB_val key = { strlen (id), (void *) id }, val;
    int rc = mdb_get (txn, self->jobs, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DBT_ENOTFOUND;
    if (rc)
        return dbt_store__fail (rc, "read job", err);
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
        return dbt_store__fail (rc, "read group", err);
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
    int rc = dbt_store__read_begin (self, &txn);
    if (rc)
        return dbt_store__fail (rc, "begin read", err);
    rc = dbt_store__get_job (self, txn, id, job_p, err);
    dbt_store__read_end (self, txn);
    return rc;
}

int
dbt_store_group (dbt_store_t *self, const char *id, dbt_group_t **group_p, char *err)
{
    *group_p = NULL;
    if (!id || !*id)
        return DBT_ENOTFOUND;
    MDB_txn *txn;
    int rc = dbt_store__read_begin (self, &txn);
    if (rc)
        return dbt_store__fail (rc, "begin read", err);
    rc = s_get_group (self, txn, id, group_p, err);
    dbt_store__read_end (self, txn);
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
    MDB_cursor *cursor;
    int rc = dbt_store__read_cursor (self, dbi, &txn, &cursor, err);
    if (rc)
        return rc;
    MDB_val key = { prefix_len, (void *) prefix }, val;
    rc = mdb_cursor_get (cursor, &key, &val, prefix_len ? MDB_SET_RANGE : MDB_FIRST);
    int result = 0;
    while (rc == 0) {
        const char *id_data;
        size_t id_len;
        if (timed) {
            if (key.mv_size <= 8
            ||  (int64_t) dbt_store__get_be64 ((const unsigned char *) key.mv_data) >= before_ms)
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
        int grc = dbt_store__get_job (self, txn, id, &job, err);
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
        result = dbt_store__fail (rc, "scan", err);
    dbt_store__read_close (self, txn, cursor);
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
    MDB_cursor *cursor;
    int rc = dbt_store__read_cursor (self, self->drops, &txn, &cursor, err);
    if (rc)
        return rc;
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
            int stop = fn (dbt_store__get_be64 ((const unsigned char *) key.mv_data), results, table, id, arg);
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
    dbt_store__read_close (self, txn, cursor);
    return 0;
}

//  Less free space than this on the file system makes a failed write
//  count as the disk being full.
#define S_DISK_SHORT (1024 * 1024)

//  Bytes an unprivileged writer may still take on the store's file
//  system, or -1 when that cannot be read.
static int64_t
s_disk_free (dbt_store_t *self)
{
    int fd;
    struct statvfs vfs;
    if (mdb_env_get_fd (self->env, &fd) || fstatvfs (fd, &vfs))
        return -1;
    return (int64_t) vfs.f_bavail * (int64_t) vfs.f_frsize;
}

int
dbt_store_space (dbt_store_t *self, dbt_store_space_t *space, char *err)
{
    memset (space, 0, sizeof (*space));
    MDB_txn *txn;
    int rc = dbt_store__read_begin (self, &txn);
    if (rc)
        return dbt_store__fail (rc, "begin read", err);
    MDB_envinfo info;
    MDB_stat stat;
    rc = mdb_env_info (self->env, &info);
    if (rc == 0)
        rc = mdb_env_stat (self->env, &stat);
    //  Pages on the free list (database 0) are reused before the file grows.
    uint64_t free_pages = 0;
    MDB_cursor *cursor = NULL;
    if (rc == 0 && mdb_cursor_open (txn, 0, &cursor) == 0) {
        MDB_val key, val;
        int crc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
        while (crc == 0) {
            if (val.mv_size >= sizeof (size_t))
                free_pages += *(size_t *) val.mv_data;
            crc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    dbt_store__read_end (self, txn);
    if (rc)
        return dbt_store__fail (rc, "read space", err);
    uint64_t pages = (uint64_t) info.me_last_pgno + 1;
    space->map_bytes = (int64_t) info.me_mapsize;
    space->max_bytes = self->map_max;
    space->used_bytes = (int64_t) ((pages > free_pages ? pages - free_pages : 0) * stat.ms_psize);
    //  The file system may run out before the map does (other files share
    //  it): the store can grow to its file's pages plus the disk's free
    //  space, and keeps its reserve out of that.
    int64_t limit = self->map_max;
    space->disk_free_bytes = s_disk_free (self);
    if (space->disk_free_bytes >= 0) {
        int64_t disk = (int64_t) (pages * stat.ms_psize) + space->disk_free_bytes;
        if (disk < limit)
            limit = disk;
    }
    space->free_bytes = limit > space->used_bytes ? limit - space->used_bytes : 0;
    space->reserve_bytes = s_reserve (limit);
    space->full = space->free_bytes < space->reserve_bytes;
    pthread_mutex_lock (&self->latch_lock);
    if (self->latched && self->latched_used < 0)
        self->latched_used = space->used_bytes;
    if (self->latched && space->used_bytes + space->reserve_bytes <= self->latched_used)
        self->latched = false;
    if (self->disk_latched && self->disk_latched_used < 0) {
        self->disk_latched_free = space->disk_free_bytes;
        self->disk_latched_used = space->used_bytes;
    }
    if (self->disk_latched
    && (space->disk_free_bytes >= self->disk_latched_free + space->reserve_bytes
    ||  space->used_bytes + space->reserve_bytes <= self->disk_latched_used))
        self->disk_latched = false;
    space->full = space->full || self->latched || self->disk_latched || self->refusing;
    pthread_mutex_unlock (&self->latch_lock);
    return 0;
}

void
dbt_store_set_refusing (dbt_store_t *self, bool refusing)
{
    pthread_mutex_lock (&self->latch_lock);
    self->refusing = refusing;
    pthread_mutex_unlock (&self->latch_lock);
}

int
dbt_store_grow (dbt_store_t *self, char *err)
{
    if (self->map_size >= self->map_max)
        return 0;
    MDB_envinfo info;
    MDB_stat stat;
    if (mdb_env_info (self->env, &info) || mdb_env_stat (self->env, &stat))
        return 0;
    int64_t high = ((int64_t) info.me_last_pgno + 1) * (int64_t) stat.ms_psize;
    pthread_mutex_lock (&self->latch_lock);
    bool latched = self->latched;
    pthread_mutex_unlock (&self->latch_lock);
    if (!latched && high * 4 < self->map_size * 3)
        return 0;
    int64_t size = self->map_size * 2;
    if (size > self->map_max)
        size = self->map_max;
    pthread_rwlock_wrlock (&self->lock);
    int rc = mdb_env_set_mapsize (self->env, (size_t) size);
    pthread_rwlock_unlock (&self->lock);
    if (rc)
        return dbt_store__fail (rc, "grow the map", err);
    dbt_log (DBT_LOG_INFO, "store: map grown from %" PRId64 " to %" PRId64 " bytes (limit %" PRId64 ")",
             self->map_size, size, self->map_max);
    self->map_size = size;
    pthread_mutex_lock (&self->latch_lock);
    self->latched = false;
    pthread_mutex_unlock (&self->latch_lock);
    return 1;
}

//  --------------------------------------------------------------------------
//  Write side

dbt_wtxn_t *
dbt_store_begin (dbt_store_t *self, char *err)
{
    dbt_wtxn_t *wtxn = (dbt_wtxn_t *) dbt_malloc (sizeof (dbt_wtxn_t));
    wtxn->store = self;
    pthread_rwlock_rdlock (&self->lock);
    int rc = mdb_txn_begin (self->env, NULL, 0, &wtxn->txn);
    if (rc) {
        pthread_rwlock_unlock (&self->lock);
        dbt_store__fail (rc, "begin write", err);
        free (wtxn);
        return NULL;
    }
    MDB_val key = { 3, (void *) "seq" }, val;
    if (mdb_get (wtxn->txn, self->meta, &key, &val) == 0 && val.mv_size == 8)
        wtxn->seq = dbt_store__get_be64 ((const unsigned char *) val.mv_data);
    key = (MDB_val) { 6, (void *) "pubseq" };
    if (mdb_get (wtxn->txn, self->meta, &key, &val) == 0 && val.mv_size == 8)
        wtxn->pubseq = dbt_store__get_be64 ((const unsigned char *) val.mv_data);
    wtxn->writer = dbt_mpw_new ();
    if (self->journal) {
        wtxn->changes = zhashx_new ();
        zhashx_set_destructor (wtxn->changes, s_change_free);
    }
    return wtxn;
}

int
dbt_wtxn_job (dbt_wtxn_t *self, const char *id, dbt_job_t **job_p, char *err)
{
    *job_p = NULL;
    return dbt_store__get_job (self->store, self->txn, id, job_p, err);
}

int
dbt_wtxn_group (dbt_wtxn_t *self, const char *id, dbt_group_t **group_p, char *err)
{
    *group_p = NULL;
    return s_get_group (self->store, self->txn, id, group_p, err);
}

//  Index keys of a record: wait (queue \0 seq) or run (seq) while
//  unfinished; done (finished ms, id) and, for results that expire, rexp
//  (expiry ms, id) once finished; tables (results \0 folded table) while
//  the record keeps a table that has not been dropped.

typedef struct {
    unsigned char buf [S_KEY_MAX];
    MDB_val key;
    MDB_dbi dbi;
    bool keyed_by_id;           //  the key holds the id, the value is empty
    size_t counted;             //  list: length of its counts key (queue \0 state), else 0
} s_index_t;

#define S_MAX_INDEXES 4

//  The order of a job in its list: finish time once finished, else its
//  submission sequence.
static uint64_t
s_list_order (const dbt_job_t *job)
{
    return dbt_state_final (job->state) ? (uint64_t) job->finished_ms : job->seq;
}

//  The list entry of job: queue \0 state order id.
static void
s_list_key (dbt_store_t *store, const dbt_job_t *job, s_index_t *list)
{
    size_t len = dbt_store__list_prefix (list->buf, job->queue, job->state);
    dbt_store__be64 (list->buf + len, s_list_order (job));
    size_t idlen = dbt_store__put_text (list->buf + len + 8, job->id, S_KEY_MAX - len - 8);
    list->key = (MDB_val) { len + 8 + idlen, list->buf };
    list->dbi = store->list;
    list->keyed_by_id = true;
    list->counted = len;
}

//  Add delta to the count of list entries under key (queue \0 state); a
//  count that reaches 0 is deleted.
static int
s_count_add (dbt_store_t *store, MDB_txn *txn, const unsigned char *key, size_t len, int delta)
{
    MDB_val k = { len, (void *) key }, v;
    uint64_t count = 0;
    int rc = mdb_get (txn, store->counts, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        count = dbt_store__get_be64 ((const unsigned char *) v.mv_data);
    else
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    count = delta < 0 ? (count > 0 ? count - 1 : 0) : count + 1;
    if (count == 0) {
        rc = mdb_del (txn, store->counts, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    unsigned char buf [8];
    dbt_store__be64 (buf, count);
    v = (MDB_val) { 8, buf };
    return mdb_put (txn, store->counts, &k, &v, 0);
}

//  Fill the index entries of job; returns how many (at most S_MAX_INDEXES).
static int
s_indexes_of (dbt_store_t *store, const dbt_job_t *job, s_index_t *index)
{
    int n = 0;
    s_list_key (store, job, &index [n++]);
    if (job->results && job->table && !job->expired) {
        s_index_t *tab = &index [n++];
        size_t len = dbt_store__put_text (tab->buf, job->results, DBT_ID_MAX);
        tab->buf [len++] = 0;
        size_t tlen = dbt_store__put_text (tab->buf + len, job->table, S_KEY_MAX - len);
        for (size_t i = len; i < len + tlen; i++)
            tab->buf [i] = (unsigned char) tolower (tab->buf [i]);
        tab->key = (MDB_val) { len + tlen, tab->buf };
        tab->dbi = store->tables;
        tab->keyed_by_id = false;
        tab->counted = 0;
    }
    if (job->state == DBT_STATE_PENDING || job->state == DBT_STATE_RETRY) {
        s_index_t *wait = &index [n++];
        size_t qlen = dbt_store__put_text (wait->buf, job->queue, DBT_ID_MAX + 64);
        wait->buf [qlen] = 0;
        dbt_store__be64 (wait->buf + qlen + 1, job->seq);
        wait->key = (MDB_val) { qlen + 9, wait->buf };
        wait->dbi = store->wait;
        wait->keyed_by_id = false;
        wait->counted = 0;
        return n;
    }
    if (job->state == DBT_STATE_STARTED) {
        s_index_t *run = &index [n++];
        dbt_store__be64 (run->buf, job->seq);
        run->key = (MDB_val) { 8, run->buf };
        run->dbi = store->run;
        run->keyed_by_id = false;
        run->counted = 0;
        return n;
    }
    size_t idlen = strlen (job->id);
    s_index_t *done = &index [n++];
    dbt_store__be64 (done->buf, (uint64_t) job->finished_ms);
    memcpy (done->buf + 8, job->id, idlen);
    done->key = (MDB_val) { 8 + idlen, done->buf };
    done->dbi = store->done;
    done->keyed_by_id = true;
    done->counted = 0;
    int64_t expiry = dbt_job_results_expiry (job);
    if (expiry <= 0)
        return n;
    s_index_t *rexp = &index [n++];
    dbt_store__be64 (rexp->buf, (uint64_t) expiry);
    memcpy (rexp->buf + 8, job->id, idlen);
    rexp->key = (MDB_val) { 8 + idlen, rexp->buf };
    rexp->dbi = store->rexp;
    rexp->keyed_by_id = true;
    rexp->counted = 0;
    return n;
}

static bool
s_index_same (const s_index_t *a, const s_index_t *b)
{
    return a->dbi == b->dbi && a->key.mv_size == b->key.mv_size
        && memcmp (a->buf, b->buf, a->key.mv_size) == 0;
}

//  Remove index entries of old not in new, add those of new not in old.
static int
s_reindex (dbt_store_t *store, MDB_txn *txn, const dbt_job_t *old, const dbt_job_t *job)
{
    s_index_t before [S_MAX_INDEXES], after [S_MAX_INDEXES];
    int nbefore = old ? s_indexes_of (store, old, before) : 0;
    int nafter = job ? s_indexes_of (store, job, after) : 0;
    for (int i = 0; i < nbefore; i++) {
        bool kept = false;
        for (int j = 0; j < nafter; j++)
            kept = kept || s_index_same (&before [i], &after [j]);
        if (!kept) {
            int rc = mdb_del (txn, before [i].dbi, &before [i].key, NULL);
            if (rc == 0 && before [i].counted)
                rc = s_count_add (store, txn, before [i].buf, before [i].counted, -1);
            if (rc && rc != MDB_NOTFOUND)
                return rc;
        }
    }
    for (int j = 0; j < nafter; j++) {
        MDB_val value = after [j].keyed_by_id ? (MDB_val) { 0, (void *) "" }
                                              : (MDB_val) { strlen (job->id), (void *) job->id };
        //  A counted entry counts once: only when it is new.
        int rc = mdb_put (txn, after [j].dbi, &after [j].key, &value,
                          after [j].counted ? MDB_NOOVERWRITE : 0);
        if (rc == 0 && after [j].counted)
            rc = s_count_add (store, txn, after [j].buf, after [j].counted, 1);
        if (rc && rc != MDB_KEYEXIST)
            return rc;
    }
    return 0;
}

//  Stores written before the tables index, or the list index (and its
//  counts), existed get them on open: one pass over the records fills
//  whichever of the two is empty while records exist.
static int
s_index_missing (dbt_store_t *self)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    if (rc)
        return rc;
    MDB_stat tables, list, jobs;
    rc = mdb_stat (txn, self->tables, &tables);
    if (rc == 0)
        rc = mdb_stat (txn, self->list, &list);
    if (rc == 0)
        rc = mdb_stat (txn, self->jobs, &jobs);
    bool fill_tables = tables.ms_entries == 0, fill_list = list.ms_entries == 0;
    if (rc || (!fill_tables && !fill_list) || jobs.ms_entries == 0) {
        mdb_txn_abort (txn);
        return rc;
    }
    MDB_cursor *cursor;
    rc = mdb_cursor_open (txn, self->jobs, &cursor);
    MDB_val key, val;
    int crc = rc ? MDB_NOTFOUND : mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    size_t ntables = 0, nlisted = 0;
    while (crc == 0 && rc == 0) {
        char perr [DBT_ERRMSG_LEN];
        dbt_job_t *job = NULL;
        s_index_t index [S_MAX_INDEXES];
        int n = s_decode_job (&val, &job, perr) == 0 ? s_indexes_of (self, job, index) : 0;
        for (int i = 0; i < n && rc == 0; i++) {
            if (fill_tables && index [i].dbi == self->tables) {
                MDB_val value = { strlen (job->id), job->id };
                rc = mdb_put (txn, self->tables, &index [i].key, &value, 0);
                ntables++;
            }
            if (fill_list && index [i].dbi == self->list) {
                MDB_val value = { 0, (void *) "" };
                rc = mdb_put (txn, self->list, &index [i].key, &value, MDB_NOOVERWRITE);
                if (rc == 0)
                    rc = s_count_add (self, txn, index [i].buf, index [i].counted, 1);
                rc = rc == MDB_KEYEXIST ? 0 : rc;
                nlisted++;
            }
        }
        dbt_job_destroy (&job);
        crc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    if (!rc)
        mdb_cursor_close (cursor);
    rc = rc ? rc : mdb_txn_commit (txn);
    if (rc)
        mdb_txn_abort (txn);
    else
    if (ntables || nlisted)
        dbt_log (DBT_LOG_INFO, "store: indexed %zu results tables, listed %zu jobs by queue "
                 "and state", ntables, nlisted);
    return rc;
}

//  Every write: nothing once one failed; remember the first failure.
#define S_CHECK_FAILED(self) do { \
    if ((self)->failed) { \
        dbt_err_set (err, "state store: an earlier write of this turn failed"); \
        return (self)->failed; \
    } } while (0)

static int
s_wfail (dbt_wtxn_t *self, int rc, const char *what, char *err)
{
    if (rc == MDB_MAP_FULL)
        s_latch_full (self->store);
    self->failed = dbt_store__fail (rc, what, err);
    return self->failed;
}

int
dbt_wtxn_table_owner (dbt_wtxn_t *self, const char *results, const char *table,
                      char **id_p, char *err)
{
    *id_p = NULL;
    dbt_job_t probe = { .id = (char *) "", .results = (char *) results, .table = (char *) table,
                        .state = DBT_STATE_PENDING, .queue = (char *) "" };
    s_index_t index [S_MAX_INDEXES];
    int n = s_indexes_of (self->store, &probe, index);
    int at = 0;
    while (at < n && index [at].dbi != self->store->tables)
        at++;
    if (at == n)
        return DBT_ENOTFOUND;
    MDB_val val;
    int rc = mdb_get (self->txn, self->store->tables, &index [at].key, &val);
    if (rc == MDB_NOTFOUND)
        return DBT_ENOTFOUND;
    if (rc)
        return dbt_store__fail (rc, "read tables", err);
    *id_p = dbt_strndup ((const char *) val.mv_data, val.mv_size);
    return 0;
}

int
dbt_wtxn_put_job (dbt_wtxn_t *self, const dbt_job_t *job, char *err)
{
    S_CHECK_FAILED (self);
    dbt_store_t *store = self->store;
    dbt_job_t *old = NULL;
    int rc = dbt_store__get_job (store, self->txn, job->id, &old, err);
    if (rc != 0 && rc != DBT_ENOTFOUND)
        return rc;
    rc = s_reindex (store, self->txn, old, job);
    dbt_job_destroy (&old);
    if (rc)
        return s_wfail (self, rc, "write job", err);
    if (job->seq > self->seq) {
        //  A record from elsewhere (a copy): later sequence numbers follow it.
        self->seq = job->seq;
        self->seq_dirty = true;
    }
    dbt_mpw_reset (self->writer);
    dbt_job_pack (job, self->writer);
    size_t len;
    const char *data = dbt_mpw_data (self->writer, &len);
    MDB_val idval = { strlen (job->id), (void *) job->id };
    MDB_val value = { len, (void *) data };
    rc = mdb_put (self->txn, store->jobs, &idval, &value, 0);
    if (rc)
        return s_wfail (self, rc, "write job", err);
    s_journal (self, false, job->id, data, len);
    return 0;
}

int
dbt_wtxn_del_job (dbt_wtxn_t *self, const char *id, char *err)
{
    S_CHECK_FAILED (self);
    dbt_job_t *old = NULL;
    int rc = dbt_store__get_job (self->store, self->txn, id, &old, err);
    if (rc == DBT_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    rc = s_reindex (self->store, self->txn, old, NULL);
    dbt_job_destroy (&old);
    if (rc && rc != MDB_NOTFOUND)
        return s_wfail (self, rc, "delete job", err);
    MDB_val key = { strlen (id), (void *) id };
    rc = mdb_del (self->txn, self->store->jobs, &key, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return s_wfail (self, rc, "delete job", err);
    s_journal (self, false, id, NULL, 0);
    return 0;
}

int
dbt_wtxn_put_group (dbt_wtxn_t *self, const dbt_group_t *group, char *err)
{
    S_CHECK_FAILED (self);
    dbt_mpw_reset (self->writer);
    dbt_group_pack (group, self->writer);
    size_t len;
    const char *data = dbt_mpw_data (self->writer, &len);
    MDB_val key = { strlen (group->id), (void *) group->id }, value = { len, (void *) data };
    int rc = mdb_put (self->txn, self->store->groups, &key, &value, 0);
    if (rc)
        return s_wfail (self, rc, "write group", err);
    s_journal (self, true, group->id, data, len);
    return 0;
}

int
dbt_wtxn_del_group (dbt_wtxn_t *self, const char *id, char *err)
{
    S_CHECK_FAILED (self);
    MDB_val key = { strlen (id), (void *) id };
    int rc = mdb_del (self->txn, self->store->groups, &key, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return s_wfail (self, rc, "delete group", err);
    if (rc == 0)
        s_journal (self, true, id, NULL, 0);
    return 0;
}

int
dbt_wtxn_add_drop (dbt_wtxn_t *self, const char *results, const char *table,
                   const char *job_id, uint64_t *key_p, char *err)
{
    S_CHECK_FAILED (self);
    unsigned char key [8];
    uint64_t seq = dbt_wtxn_next_seq (self);
    dbt_store__be64 (key, seq);
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
    if (rc)
        return s_wfail (self, rc, "write drop", err);
    if (key_p)
        *key_p = seq;
    return 0;
}

int
dbt_wtxn_del_drop (dbt_wtxn_t *self, uint64_t key, char *err)
{
    S_CHECK_FAILED (self);
    unsigned char buf [8];
    dbt_store__be64 (buf, key);
    MDB_val k = { 8, buf };
    int rc = mdb_del (self->txn, self->store->drops, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return s_wfail (self, rc, "delete drop", err);
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
#ifdef DBT_SELFTEST
    if (self->store->fail_commits > 0) {
        self->store->fail_commits--;
        dbt_err_set (err, "state store: a commit failed (self test)");
        dbt_wtxn_abort (self_p);
        return DBT_ERROR;
    }
#endif
    if (self->failed) {
        int code = self->failed;
        dbt_err_set (err, "state store: %s, nothing of the turn was kept",
                     code == DBT_EFULL ? "the map is full (MDB_MAP_FULL)" : "a write failed");
        dbt_wtxn_abort (self_p);
        return code;
    }
    if (self->seq_dirty) {
        unsigned char buf [8];
        dbt_store__be64 (buf, self->seq);
        MDB_val key = { 3, (void *) "seq" }, val = { 8, buf };
        rc = mdb_put (self->txn, self->store->meta, &key, &val, 0);
        if (rc) {
            mdb_txn_abort (self->txn);
            goto done;
        }
    }
    if (self->pubseq_dirty) {
        unsigned char buf [8];
        dbt_store__be64 (buf, self->pubseq);
        MDB_val key = { 6, (void *) "pubseq" }, val = { 8, buf };
        rc = mdb_put (self->txn, self->store->meta, &key, &val, 0);
        if (rc) {
            mdb_txn_abort (self->txn);
            goto done;
        }
    }
    rc = mdb_txn_commit (self->txn);
done:
    //  LMDB reports a write cut short as EIO: on a file system that has
    //  (almost) no room left, that is the disk filling up.
    if (rc == EIO) {
        int64_t disk = s_disk_free (self->store);
        if (disk >= 0 && disk < S_DISK_SHORT)
            rc = ENOSPC;
    }
    if (rc == MDB_MAP_FULL)
        s_latch_full (self->store);
    if (rc == ENOSPC || rc == EDQUOT)
        s_latch_disk (self->store);
    pthread_rwlock_unlock (&self->store->lock);
    dbt_mpw_destroy (&self->writer);
    zhashx_destroy (&self->changes);
    free (self);
    *self_p = NULL;
    if (rc)
        return dbt_store__fail (rc, "commit", err);
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
    pthread_rwlock_unlock (&self->store->lock);
    dbt_mpw_destroy (&self->writer);
    zhashx_destroy (&self->changes);
    free (self);
    *self_p = NULL;
}

int
dbt_wtxn_failed (dbt_wtxn_t *self)
{
    return self->failed;
}

//  --------------------------------------------------------------------------
//  Journal and publication sequence (a dispatcher's store), snapshots

void
dbt_store_set_journal (dbt_store_t *self, bool on)
{
    self->journal = on;
}

size_t
dbt_wtxn_changes (dbt_wtxn_t *self)
{
    return self->changes ? zhashx_size (self->changes) : 0;
}

int
dbt_wtxn_each_change (dbt_wtxn_t *self, dbt_store_record_fn *fn, void *arg)
{
    if (!self->changes)
        return 0;
    for (s_change_t *change = (s_change_t *) zhashx_first (self->changes); change;
         change = (s_change_t *) zhashx_next (self->changes)) {
        int stop = fn (change->group, change->id, change->bytes, change->len, arg);
        if (stop)
            return stop;
    }
    return 0;
}

uint64_t
dbt_wtxn_pubseq (dbt_wtxn_t *self)
{
    return self->pubseq;
}

void
dbt_wtxn_set_pubseq (dbt_wtxn_t *self, uint64_t seq)
{
    self->pubseq = seq;
    self->pubseq_dirty = true;
}

const char *
dbt_store_lineage (dbt_store_t *self)
{
    return self->lineage;
}

int
dbt_wtxn_set_lineage (dbt_wtxn_t *self, const char *lineage)
{
    if (strlen (lineage) != 36)
        return DBT_EINVAL;
    MDB_val key = { 7, (void *) "lineage" }, val = { 36, (void *) lineage };
    int rc = mdb_put (self->txn, self->store->meta, &key, &val, 0);
    if (rc)
        return s_wfail (self, rc, "write lineage", NULL);
    memcpy (self->store->lineage, lineage, 36);     //  single writer: seen at once
    return 0;
}

uint64_t
dbt_store_epoch (dbt_store_t *self)
{
    return self->epoch;
}

int
dbt_wtxn_set_epoch (dbt_wtxn_t *self, uint64_t epoch)
{
    if (self->failed)
        return self->failed;
    unsigned char buf [8];
    dbt_store__be64 (buf, epoch);
    MDB_val key = { 5, (void *) "epoch" }, val = { 8, buf };
    int rc = mdb_put (self->txn, self->store->meta, &key, &val, 0);
    if (rc)
        return s_wfail (self, rc, "write epoch", NULL);
    self->store->epoch = epoch;                     //  single writer: seen at once
    return 0;
}

typedef struct {
    dbt_wtxn_t *txn;
    char *err;
} s_copy_t;

static int
s_copy_record (bool group, const char *id, const char *record, size_t len, void *arg)
{
    s_copy_t *copy = (s_copy_t *) arg;
    dbt_mpr_t *reader = dbt_mpr_new (record, len, copy->err);
    if (!reader)
        return -1;
    int rc = -1;
    if (group) {
        dbt_group_t *g = dbt_group_unpack (dbt_mpr_root (reader), copy->err);
        rc = g ? dbt_wtxn_put_group (copy->txn, g, copy->err) : -1;
        dbt_group_destroy (&g);
    }
    else {
        dbt_job_t *job = dbt_job_unpack (dbt_mpr_root (reader), copy->err);
        rc = job ? dbt_wtxn_put_job (copy->txn, job, copy->err) : -1;
        dbt_job_destroy (&job);
    }
    dbt_mpr_destroy (&reader);
    return rc;
}

int
dbt_wtxn_copy (dbt_wtxn_t *self, dbt_store_t *from, char *err)
{
    int rc = dbt_wtxn_clear (self, err);
    s_copy_t copy = { self, err };
    uint64_t pubseq = 0;
    for (int groups = 0; groups < 2 && rc == 0; groups++) {
        char *after = NULL;
        do {
            char *next = NULL;
            rc = dbt_store_page (from, groups, after, 1000, s_copy_record, &copy, &pubseq, &next, err);
            free (after);
            after = next;
        } while (rc == 0 && after);
        free (after);
    }
    if (rc == 0) {
        dbt_wtxn_set_pubseq (self, pubseq);
        if (strlen (from->lineage) == 36)
            rc = dbt_wtxn_set_lineage (self, from->lineage);
    }
    if (rc == 0)
        rc = dbt_wtxn_set_epoch (self, from->epoch);
    return rc ? (self->failed ? self->failed : DBT_ERROR) : 0;
}

int
dbt_wtxn_clear (dbt_wtxn_t *self, char *err)
{
    S_CHECK_FAILED (self);
    dbt_store_t *store = self->store;
    MDB_dbi all [] = { store->jobs, store->groups, store->wait, store->run, store->done,
                       store->rexp, store->tables, store->drops, store->meta, store->list,
                       store->counts };
    for (size_t i = 0; i < sizeof (all) / sizeof (all [0]); i++) {
        int rc = mdb_drop (self->txn, all [i], 0);
        if (rc)
            return s_wfail (self, rc, "clear", err);
    }
    if (self->changes)
        zhashx_purge (self->changes);
    //  The counters live on in the transaction: write them back.
    self->seq_dirty = true;
    self->pubseq_dirty = true;
    return 0;
}

#ifdef DBT_SELFTEST
void
dbt_store_test_fail_commits (dbt_store_t *self, int count)
{
    self->fail_commits = count;
}
#endif
