/*  =========================================================================
    dbt_view - job and group reads across the mesh, on any node

    See dbt_view.h. Sources are a short array (one per dispatcher in the
    mesh), so a read simply asks each. Recorded writes live in a hash by
    job id, pruned as replicas catch up or after WROTE_KEEP_MS.
    =========================================================================
*/
#include "dbt_classes.h"

#define WROTE_KEEP_MS  60000    //  a recorded write is dropped after this anyway

typedef struct {
    char *node;                 //  dispatcher's node name
    dbt_store_t *store;         //  its records (owned unless own)
    bool own;                   //  this node's dispatcher store (borrowed)
    uint64_t seq;               //  updates applied (replicas)
    int64_t current_at;         //  monotonic ms it was last known current, 0 = never
    dbt_view_delay_t delay;     //  update delays (replicas)
} s_source_t;

const double dbt_view_delay_bounds [DBT_VIEW_DELAY_BUCKETS] = {
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
    0.25, 0.5, 1, 2.5 };

typedef struct {
    char *node;                 //  dispatcher that acknowledged it
    uint64_t seq;               //  update that carries it
    dbt_job_t *job;             //  the job as acknowledged, NULL when purged
    int64_t expires;            //  monotonic ms after which it is dropped
} s_wrote_t;

struct _dbt_view_t {
    pthread_rwlock_t lock;      //  sources: shared for reads, exclusive to change
    s_source_t *sources;        //  own first when there is one
    size_t nsources;            //  number of sources
    pthread_mutex_t wrote_lock; //  guards wrote
    zhashx_t *wrote;            //  job id -> s_wrote_t
};

static void
s_wrote_free (void **item_p)
{
    s_wrote_t *wrote = (s_wrote_t *) *item_p;
    if (wrote) {
        free (wrote->node);
        dbt_job_destroy (&wrote->job);
        free (wrote);
        *item_p = NULL;
    }
}

dbt_view_t *
dbt_view_new (dbt_store_t *own, const char *own_node)
{
    dbt_view_t *self = (dbt_view_t *) dbt_malloc (sizeof (dbt_view_t));
    pthread_rwlock_init (&self->lock, NULL);
    pthread_mutex_init (&self->wrote_lock, NULL);
    self->wrote = zhashx_new ();
    zhashx_set_destructor (self->wrote, s_wrote_free);
    if (own) {
        self->sources = (s_source_t *) dbt_malloc (sizeof (s_source_t));
        self->sources [0] = (s_source_t) { .node = dbt_strdup (own_node), .store = own, .own = true };
        self->nsources = 1;
    }
    return self;
}

void
dbt_view_destroy (dbt_view_t **self_p)
{
    assert (self_p);
    dbt_view_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nsources; i++) {
        if (!self->sources [i].own)
            dbt_store_destroy (&self->sources [i].store);
        free (self->sources [i].node);
    }
    free (self->sources);
    zhashx_destroy (&self->wrote);
    pthread_mutex_destroy (&self->wrote_lock);
    pthread_rwlock_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

//  Source of node, or NULL. Lock held.
static s_source_t *
s_source (dbt_view_t *self, const char *node)
{
    for (size_t i = 0; i < self->nsources; i++)
        if (streq (self->sources [i].node, node))
            return &self->sources [i];
    return NULL;
}

dbt_store_t *
dbt_view_swap (dbt_view_t *self, const char *node, dbt_store_t *store)
{
    pthread_rwlock_wrlock (&self->lock);
    s_source_t *source = s_source (self, node);
    dbt_store_t *old = NULL;
    if (source && !source->own && !store) {
        //  Removed: the source goes (the own one stays first).
        old = source->store;
        free (source->node);
        size_t at = (size_t) (source - self->sources);
        memmove (source, source + 1, (self->nsources - at - 1) * sizeof (s_source_t));
        self->nsources--;
    }
    else
    if (source && !source->own) {
        old = source->store;
        source->store = store;
    }
    else
    if (!source && store) {
        self->sources = (s_source_t *) dbt_realloc (self->sources,
                                                    (self->nsources + 1) * sizeof (s_source_t));
        self->sources [self->nsources++] = (s_source_t) { .node = dbt_strdup (node), .store = store };
    }
    else
    if (source)
        old = store;            //  never replace the own store
    pthread_rwlock_unlock (&self->lock);
    return old;
}

void
dbt_view_set_own_node (dbt_view_t *self, const char *node)
{
    pthread_rwlock_wrlock (&self->lock);
    if (self->nsources && self->sources [0].own && node && !streq (self->sources [0].node, node)) {
        free (self->sources [0].node);
        self->sources [0].node = dbt_strdup (node);
    }
    pthread_rwlock_unlock (&self->lock);
}

void
dbt_view_progress (dbt_view_t *self, const char *node, uint64_t seq, int64_t current_at)
{
    pthread_rwlock_wrlock (&self->lock);
    s_source_t *source = s_source (self, node);
    if (source) {
        source->seq = seq;
        source->current_at = current_at;
    }
    pthread_rwlock_unlock (&self->lock);
}

void
dbt_view_delay (dbt_view_t *self, const char *node, int64_t delay_ms)
{
    double seconds = delay_ms > 0 ? (double) delay_ms / 1000.0 : 0;
    pthread_rwlock_wrlock (&self->lock);
    s_source_t *source = s_source (self, node);
    if (source) {
        size_t bucket = 0;
        while (bucket < DBT_VIEW_DELAY_BUCKETS && seconds > dbt_view_delay_bounds [bucket])
            bucket++;
        source->delay.buckets [bucket]++;
        source->delay.count++;
        source->delay.sum += seconds;
    }
    pthread_rwlock_unlock (&self->lock);
}

//  Lag of a source as dbt_origin_t says. Lock held.
static int64_t
s_lag (const s_source_t *source)
{
    if (source->own)
        return 0;
    if (!source->current_at)
        return -1;
    int64_t lag = dbt_clock_ms () - source->current_at;
    return lag > 0 ? lag : 0;
}

static void
s_origin (const s_source_t *source, dbt_origin_t *origin)
{
    if (!origin)
        return;
    snprintf (origin->node, sizeof (origin->node), "%s", source->node);
    origin->own = source->own;
    origin->lag_ms = s_lag (source);
}

//  A recorded write of id newer than its source's replica, copied into
//  *job_p (NULL when it was a purge). Returns true when there is one.
//  The view lock is held (shared).
static bool
s_wrote_get (dbt_view_t *self, const char *id, dbt_job_t **job_p, dbt_origin_t *origin)
{
    bool found = false;
    pthread_mutex_lock (&self->wrote_lock);
    if (zhashx_size (self->wrote)) {
        s_wrote_t *wrote = (s_wrote_t *) zhashx_lookup (self->wrote, id);
        if (wrote) {
            s_source_t *source = s_source (self, wrote->node);
            if (dbt_clock_ms () > wrote->expires || (source && source->seq >= wrote->seq))
                zhashx_delete (self->wrote, id);            //  the replica has it now
            else {
                *job_p = wrote->job ? dbt_job_dup (wrote->job) : NULL;
                if (origin) {
                    snprintf (origin->node, sizeof (origin->node), "%s", wrote->node);
                    origin->own = false;
                    origin->lag_ms = 0;
                }
                found = true;
            }
        }
    }
    pthread_mutex_unlock (&self->wrote_lock);
    return found;
}

int
dbt_view_job (dbt_view_t *self, const char *id, dbt_job_t **job_p, dbt_origin_t *origin, char *err)
{
    *job_p = NULL;
    pthread_rwlock_rdlock (&self->lock);
    if (s_wrote_get (self, id, job_p, origin)) {
        pthread_rwlock_unlock (&self->lock);
        return *job_p ? 0 : DBT_ENOTFOUND;
    }
    int result = DBT_ENOTFOUND;
    for (size_t i = 0; i < self->nsources; i++) {
        dbt_job_t *job = NULL;
        int rc = dbt_store_job (self->sources [i].store, id, &job, err);
        if (rc == 0 && (!*job_p || job->created_ms > (*job_p)->created_ms)) {
            dbt_job_destroy (job_p);
            *job_p = job;
            s_origin (&self->sources [i], origin);
            result = 0;
        }
        else
            dbt_job_destroy (&job);
        if (rc != 0 && rc != DBT_ENOTFOUND && result == DBT_ENOTFOUND)
            result = rc;
    }
    pthread_rwlock_unlock (&self->lock);
    if (result != 0)
        dbt_job_destroy (job_p);
    return result;
}

int
dbt_view_job_at (dbt_view_t *self, const char *node, const char *id, dbt_job_t **job_p, char *err)
{
    *job_p = NULL;
    pthread_rwlock_rdlock (&self->lock);
    dbt_origin_t origin;
    int rc = DBT_ENOTFOUND;
    if (s_wrote_get (self, id, job_p, &origin) && streq (origin.node, node))
        rc = *job_p ? 0 : DBT_ENOTFOUND;
    else {
        dbt_job_destroy (job_p);
        s_source_t *source = s_source (self, node);
        if (source)
            rc = dbt_store_job (source->store, id, job_p, err);
    }
    pthread_rwlock_unlock (&self->lock);
    return rc;
}

int
dbt_view_group (dbt_view_t *self, const char *id, dbt_group_t **group_p, dbt_origin_t *origin,
                char *err)
{
    *group_p = NULL;
    pthread_rwlock_rdlock (&self->lock);
    int result = DBT_ENOTFOUND;
    for (size_t i = 0; i < self->nsources; i++) {
        dbt_group_t *group = NULL;
        int rc = dbt_store_group (self->sources [i].store, id, &group, err);
        if (rc == 0 && (!*group_p || group->created_ms > (*group_p)->created_ms)) {
            dbt_group_destroy (group_p);
            *group_p = group;
            s_origin (&self->sources [i], origin);
            result = 0;
        }
        else
            dbt_group_destroy (&group);
        if (rc != 0 && rc != DBT_ENOTFOUND && result == DBT_ENOTFOUND)
            result = rc;
    }
    pthread_rwlock_unlock (&self->lock);
    if (result != 0)
        dbt_group_destroy (group_p);
    return result;
}

int
dbt_view_each_waiting (dbt_view_t *self, const char *queue, dbt_store_each_fn *fn, void *arg, char *err)
{
    pthread_rwlock_rdlock (&self->lock);
    int rc = 0;
    for (size_t i = 0; i < self->nsources && rc == 0; i++)
        rc = dbt_store_each_waiting (self->sources [i].store, queue, fn, arg, err);
    pthread_rwlock_unlock (&self->lock);
    return rc;
}

void
dbt_view_each_source (dbt_view_t *self, dbt_view_source_fn *fn, void *arg)
{
    pthread_rwlock_rdlock (&self->lock);
    for (size_t i = 0; i < self->nsources; i++) {
        s_source_t *source = &self->sources [i];
        fn (source->node, source->own, source->store, s_lag (source), source->seq, &source->delay, arg);
    }
    pthread_rwlock_unlock (&self->lock);
}

void
dbt_view_wrote (dbt_view_t *self, const char *node, uint64_t seq, const char *id, const dbt_job_t *job)
{
    pthread_rwlock_rdlock (&self->lock);
    s_source_t *source = s_source (self, node);
    bool needed = !source || (!source->own && source->seq < seq);
    pthread_rwlock_unlock (&self->lock);
    if (!needed)
        return;
    s_wrote_t *wrote = (s_wrote_t *) dbt_malloc (sizeof (s_wrote_t));
    wrote->node = dbt_strdup (node);
    wrote->seq = seq;
    wrote->job = job ? dbt_job_dup (job) : NULL;
    int64_t now = dbt_clock_ms ();
    wrote->expires = now + WROTE_KEEP_MS;
    pthread_mutex_lock (&self->wrote_lock);
    //  Now and then, drop what expired.
    if (zhashx_size (self->wrote) > 1000) {
        zlist_t *old = zlist_new ();
        for (s_wrote_t *item = (s_wrote_t *) zhashx_first (self->wrote); item;
             item = (s_wrote_t *) zhashx_next (self->wrote))
            if (item->expires < now)
                zlist_append (old, (void *) zhashx_cursor (self->wrote));
        for (char *key = (char *) zlist_first (old); key; key = (char *) zlist_next (old))
            zhashx_delete (self->wrote, key);
        zlist_destroy (&old);
    }
    zhashx_update (self->wrote, id, wrote);
    pthread_mutex_unlock (&self->wrote_lock);
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: own store and a replica, newest wins, recorded writes until
//  the replica catches up, swaps.

static dbt_job_t *
s_test_job (const char *id, int64_t created, dbt_state_t state)
{
    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->id, id);
    dbt_job_set (&job->task, "t");
    dbt_job_set (&job->queue, "q");
    job->created_ms = created;
    job->state = state;
    return job;
}

static void
s_test_put (dbt_store_t *store, dbt_job_t *job)
{
    char err [DBT_ERRMSG_LEN];
    dbt_wtxn_t *txn = dbt_store_begin (store, err);
    assert (txn && dbt_wtxn_put_job (txn, job, err) == 0 && dbt_wtxn_commit (&txn, err) == 0);
}

static int
s_test_count (const dbt_job_t *job, void *arg)
{
    (*(int *) arg)++;
    return 0;
}

void
dbt_view_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("view");
    dbt_store_t *own = dbt_store_open (dir, 16 << 20, 0, err);
    char *rdir = dbt_printf ("%s/replica/b", dir);
    dbt_store_t *replica = dbt_store_open_replica (rdir, 16 << 20, err);
    assert (own && replica);
    dbt_view_t *view = dbt_view_new (own, "a");
    assert (dbt_view_swap (view, "b", replica) == NULL);

    dbt_job_t *job = s_test_job ("j1", 100, DBT_STATE_PENDING);
    s_test_put (own, job);
    dbt_job_destroy (&job);
    job = s_test_job ("j2", 100, DBT_STATE_SUCCESS);
    s_test_put (replica, job);
    dbt_job_destroy (&job);
    dbt_origin_t origin;
    dbt_job_t *seen = NULL;
    assert (dbt_view_job (view, "j1", &seen, &origin, err) == 0 && origin.own && origin.lag_ms == 0);
    dbt_job_destroy (&seen);
    assert (dbt_view_job (view, "j2", &seen, &origin, err) == 0);
    assert (!origin.own && streq (origin.node, "b") && origin.lag_ms == -1);
    dbt_job_destroy (&seen);
    dbt_view_progress (view, "b", 5, dbt_clock_ms ());
    assert (dbt_view_job (view, "j2", &seen, &origin, err) == 0 && origin.lag_ms >= 0 && origin.lag_ms < 1000);
    dbt_job_destroy (&seen);
    assert (dbt_view_job (view, "nope", &seen, &origin, err) == DBT_ENOTFOUND && seen == NULL);

    //  One id on two dispatchers: the newer record wins.
    job = s_test_job ("dup", 100, DBT_STATE_SUCCESS);
    s_test_put (own, job);
    dbt_job_destroy (&job);
    job = s_test_job ("dup", 200, DBT_STATE_PENDING);
    s_test_put (replica, job);
    dbt_job_destroy (&job);
    assert (dbt_view_job (view, "dup", &seen, &origin, err) == 0 && streq (origin.node, "b"));
    dbt_job_destroy (&seen);
    int waiting = 0;
    assert (dbt_view_each_waiting (view, "q", s_test_count, &waiting, err) == 0 && waiting == 2);

    //  A write acknowledged by b shows before b's replica has it, and
    //  gives way once the replica has applied its update.
    job = s_test_job ("new", 300, DBT_STATE_PENDING);
    dbt_view_wrote (view, "b", 7, "new", job);
    assert (dbt_view_job (view, "new", &seen, &origin, err) == 0 && streq (origin.node, "b"));
    assert (dbt_view_job_at (view, "b", "new", &seen, err) == 0);
    dbt_job_destroy (&seen);
    dbt_view_wrote (view, "b", 8, "j2", NULL);              //  purged through us
    assert (dbt_view_job (view, "j2", &seen, &origin, err) == DBT_ENOTFOUND);
    dbt_view_progress (view, "b", 8, dbt_clock_ms ());
    assert (dbt_view_job (view, "new", &seen, &origin, err) == DBT_ENOTFOUND);  //  replica says so now
    assert (dbt_view_job (view, "j2", &seen, &origin, err) == 0);
    dbt_job_destroy (&seen);
    dbt_view_wrote (view, "a", 9, "own", job);              //  own writes need no record
    assert (dbt_view_job (view, "own", &seen, &origin, err) == DBT_ENOTFOUND);
    dbt_job_destroy (&job);

    //  A swap replaces b's replica whole; the old one comes back.
    char *rdir2 = dbt_printf ("%s/replica/b2", dir);
    dbt_store_t *fresh = dbt_store_open_replica (rdir2, 16 << 20, err);
    assert (dbt_view_swap (view, "b", fresh) == replica);
    dbt_store_destroy (&replica);
    assert (dbt_view_job (view, "j2", &seen, &origin, err) == DBT_ENOTFOUND);
    //  A NULL store removes the replica; the own store stays.
    assert (dbt_view_swap (view, "b", NULL) == fresh);
    dbt_store_destroy (&fresh);
    assert (dbt_view_swap (view, "b", NULL) == NULL);
    assert (dbt_view_swap (view, "a", NULL) == NULL);
    assert (dbt_view_job (view, "j1", &seen, &origin, err) == 0 && origin.own);
    dbt_job_destroy (&seen);
    dbt_view_destroy (&view);
    dbt_store_destroy (&own);
    free (rdir);
    free (rdir2);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("view: ok\n");
}
#endif  //  DBT_SELFTEST
