/*  =========================================================================
    dbt_store_query - read-only queries of the store

    Lists of jobs by queue and state, their counts, and pages of records
    for snapshots (see dbt_store.h). Read transactions only; the indexes
    they read are written by dbt_store.c.
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_store_int.h"

//  --------------------------------------------------------------------------
//  Lists by queue and state (the "list" and "counts" databases)

int
dbt_store_each_count (dbt_store_t *self, dbt_store_count_fn *fn, void *arg, char *err)
{
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = dbt_store__read_cursor (self, self->counts, &txn, &cursor, err);
    if (rc)
        return rc;
    MDB_val key, val;
    rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    char queue [DBT_ID_MAX + 65] = "";
    uint64_t counts [DBT_STORE_NSTATES] = { 0 };
    bool have = false;
    while (rc == 0) {
        const unsigned char *k = (const unsigned char *) key.mv_data;
        size_t qlen = key.mv_size - 2;
        if (key.mv_size >= 2 && qlen < sizeof (queue) && k [qlen] == 0
        &&  k [qlen + 1] < DBT_STORE_NSTATES && val.mv_size == 8) {
            if (have && (strlen (queue) != qlen || memcmp (queue, k, qlen))) {
                if (fn (queue, counts, arg))
                    break;
                memset (counts, 0, sizeof (counts));
            }
            memcpy (queue, k, qlen);
            queue [qlen] = 0;
            counts [k [qlen + 1]] = dbt_store__get_be64 ((const unsigned char *) val.mv_data);
            have = true;
        }
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND && have)
        fn (queue, counts, arg);
    int result = rc && rc != MDB_NOTFOUND ? dbt_store__fail (rc, "read counts", err) : 0;
    dbt_store__read_close (self, txn, cursor);
    return result;
}

int
dbt_store_count_since (dbt_store_t *self, const char *queue, dbt_state_t state, int64_t since_ms,
                       uint64_t *count, char *err)
{
    *count = 0;
    if (!dbt_state_final (state))
        return DBT_EINVAL;
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = dbt_store__read_cursor (self, self->list, &txn, &cursor, err);
    if (rc)
        return rc;
    unsigned char buf [S_KEY_MAX];
    size_t plen = dbt_store__list_prefix (buf, queue, state);
    dbt_store__be64 (buf + plen, since_ms > 0 ? (uint64_t) since_ms : 0);
    MDB_val key = { plen + 8, buf }, val;
    rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size > plen && memcmp (key.mv_data, buf, plen) == 0) {
        (*count)++;
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    int result = rc && rc != MDB_NOTFOUND ? dbt_store__fail (rc, "count", err) : 0;
    dbt_store__read_close (self, txn, cursor);
    return result;
}

//  A list cursor is the entry's order (16 hex digits) then its job id.
static char *
s_list_cursor (const unsigned char *entry, size_t len, size_t plen)
{
    return dbt_printf ("%016" PRIx64 "%.*s", dbt_store__get_be64 (entry + plen),
                       (int) (len - plen - 8), (const char *) entry + plen + 8);
}

int
dbt_store_list (dbt_store_t *self, const char *queue, dbt_state_t state, const char *after,
                size_t limit, dbt_store_each_fn *fn, void *arg, char **next_p, char *err)
{
    *next_p = NULL;
    unsigned char buf [S_KEY_MAX];
    size_t plen = dbt_store__list_prefix (buf, queue, state);
    size_t klen;
    if (after) {
        size_t alen = strlen (after);
        char hex [17];
        if (alen < 17 || alen - 16 > DBT_ID_MAX || strspn (after, "0123456789abcdef") < 16) {
            dbt_err_set (err, "after: not a cursor this list returned");
            return DBT_EINVAL;
        }
        memcpy (hex, after, 16);
        hex [16] = 0;
        dbt_store__be64 (buf + plen, (uint64_t) strtoull (hex, NULL, 16));
        memcpy (buf + plen + 8, after + 16, alen - 16);
        klen = plen + 8 + alen - 16;
    }
    else {
        //  Past every entry of the prefix: ids never hold byte 0xff.
        memset (buf + plen, 0xff, 9);
        klen = plen + 9;
    }
    MDB_txn *txn;
    MDB_cursor *cursor;
    int rc = dbt_store__read_cursor (self, self->list, &txn, &cursor, err);
    if (rc)
        return rc;
    //  Newest first: the last entry before the start key.
    MDB_val key = { klen, buf }, val;
    rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
    rc = rc == MDB_NOTFOUND ? mdb_cursor_get (cursor, &key, &val, MDB_LAST)
                            : rc == 0 ? mdb_cursor_get (cursor, &key, &val, MDB_PREV) : rc;
    size_t count = 0;
    int result = 0;
    char *last = NULL;
    while (rc == 0 && count < limit && key.mv_size > plen + 8
    &&     memcmp (key.mv_data, buf, plen) == 0) {
        const char *id_data = (const char *) key.mv_data + plen + 8;
        char *id = dbt_strndup (id_data, key.mv_size - plen - 8);
        dbt_job_t *job = NULL;
        int grc = dbt_store__get_job (self, txn, id, &job, err);
        free (id);
        if (grc == 0) {
            free (last);
            last = s_list_cursor ((const unsigned char *) key.mv_data, key.mv_size, plen);
            int stop = fn (job, arg);
            dbt_job_destroy (&job);
            count++;
            if (stop)
                break;
        }
        else
        if (grc != DBT_ENOTFOUND) {
            result = grc;
            break;
        }
        rc = mdb_cursor_get (cursor, &key, &val, MDB_PREV);
    }
    if (result == 0 && rc && rc != MDB_NOTFOUND)
        result = dbt_store__fail (rc, "list", err);
    //  More may follow when the page is full and the next entry is the list's.
    bool more = result == 0 && count == limit && rc == 0 && key.mv_size > plen + 8
             && memcmp (key.mv_data, buf, plen) == 0;
    dbt_store__read_close (self, txn, cursor);
    if (more)
        *next_p = last;
    else
        free (last);
    return result;
}

int
dbt_store_page (dbt_store_t *self, bool groups, const char *after, size_t limit,
                dbt_store_record_fn *fn, void *arg, uint64_t *pubseq, char **next_p, char *err)
{
    *next_p = NULL;
    *pubseq = 0;
    MDB_txn *txn;
    int rc = dbt_store__read_begin (self, &txn);
    if (rc)
        return dbt_store__fail (rc, "begin read", err);
    MDB_val key = { 6, (void *) "pubseq" }, val;
    if (mdb_get (txn, self->meta, &key, &val) == 0 && val.mv_size == 8)
        *pubseq = dbt_store__get_be64 ((const unsigned char *) val.mv_data);
    MDB_cursor *cursor;
    rc = mdb_cursor_open (txn, groups ? self->groups : self->jobs, &cursor);
    if (rc) {
        dbt_store__read_end (self, txn);
        return dbt_store__fail (rc, "open cursor", err);
    }
    if (after) {
        key = (MDB_val) { strlen (after), (void *) after };
        rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
        if (rc == 0 && key.mv_size == strlen (after) && memcmp (key.mv_data, after, key.mv_size) == 0)
            rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    else
        rc = mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
    size_t count = 0;
    char *last = NULL;
    while (rc == 0 && count < limit) {
        free (last);
        last = dbt_strndup ((const char *) key.mv_data, key.mv_size);
        fn (groups, last, (const char *) val.mv_data, val.mv_size, arg);
        count++;
        rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
    }
    int result = 0;
    if (rc && rc != MDB_NOTFOUND)
        result = dbt_store__fail (rc, "snapshot", err);
    dbt_store__read_close (self, txn, cursor);
    //  More to come only when the page is full and something follows.
    if (result == 0 && rc == 0)
        *next_p = last;
    else
        free (last);
    return result;
}
