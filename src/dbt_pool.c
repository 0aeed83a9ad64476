/*  =========================================================================
    dbt_pool - connection pools per configured database

    See dbt_pool.h. A mutex and a condition variable guard each pool;
    connecting happens outside the lock so a slow database does not block
    takers of idle connections.
    =========================================================================
*/
#include "dbt_classes.h"

struct _dbt_pool_t {
    const dbt_dbconf_t *conf;   //  connection settings (borrowed)
    pthread_mutex_t mutex;      //  guards the fields below
    pthread_cond_t returned;    //  signalled when a slot frees up
    zlist_t *idle;              //  dbt_conn_t * ready for reuse
    size_t open;                //  taken + idle + being opened
    size_t taken;               //  handed out
};

struct _dbt_pools_t {
    zhashx_t *sources;          //  name -> dbt_pool_t
    zhashx_t *results;          //  name -> dbt_pool_t
};

dbt_pool_t *
dbt_pool_new (const dbt_dbconf_t *conf)
{
    dbt_pool_t *self = (dbt_pool_t *) dbt_malloc (sizeof (dbt_pool_t));
    self->conf = conf;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->returned, &attr);
    pthread_condattr_destroy (&attr);
    self->idle = zlist_new ();
    return self;
}

void
dbt_pool_destroy (dbt_pool_t **self_p)
{
    assert (self_p);
    dbt_pool_t *self = *self_p;
    if (!self)
        return;
    dbt_conn_t *conn;
    while ((conn = (dbt_conn_t *) zlist_pop (self->idle)))
        dbt_conn_destroy (&conn);
    zlist_destroy (&self->idle);
    pthread_cond_destroy (&self->returned);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

const char *
dbt_pool_name (dbt_pool_t *self)
{
    return self->conf->name;
}

void
dbt_pool_counts (dbt_pool_t *self, size_t *open, size_t *taken)
{
    pthread_mutex_lock (&self->mutex);
    *open = self->open;
    *taken = self->taken;
    pthread_mutex_unlock (&self->mutex);
}

dbt_conn_t *
dbt_pool_get (dbt_pool_t *self, int64_t timeout_ms, volatile bool *stop, char *err)
{
    int64_t deadline = dbt_clock_ms () + timeout_ms;
    size_t limit = self->conf->max_active > 0 ? (size_t) self->conf->max_active : SIZE_MAX;
    pthread_mutex_lock (&self->mutex);
    while (true) {
        dbt_conn_t *conn = (dbt_conn_t *) zlist_pop (self->idle);
        if (conn) {
            self->taken++;
            pthread_mutex_unlock (&self->mutex);
            if (!dbt_conn_broken (conn))
                return conn;
            //  Dead while idle (server restarted): replace it.
            dbt_conn_destroy (&conn);
            pthread_mutex_lock (&self->mutex);
            self->taken--;
            self->open--;
            continue;
        }
        if (self->open < limit) {
            self->open++;
            self->taken++;
            pthread_mutex_unlock (&self->mutex);
            conn = dbt_conn_new (self->conf, err);
            if (conn)
                return conn;
            pthread_mutex_lock (&self->mutex);
            self->open--;
            self->taken--;
            pthread_cond_signal (&self->returned);
            pthread_mutex_unlock (&self->mutex);
            return NULL;
        }
        int64_t now = dbt_clock_ms ();
        if (now >= deadline || (stop && *stop)) {
            pthread_mutex_unlock (&self->mutex);
            dbt_err_set (err, "no free connection to '%s' (max_active %d) within %" PRId64 " ms",
                         self->conf->name, self->conf->max_active, timeout_ms);
            return NULL;
        }
        //  Wake at least every 100 ms to notice *stop.
        int64_t wait = deadline - now < 100 ? deadline - now : 100;
        struct timespec ts;
        clock_gettime (CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait (&self->returned, &self->mutex, &ts);
    }
}

void
dbt_pool_put (dbt_pool_t *self, dbt_conn_t **conn_p)
{
    assert (conn_p);
    dbt_conn_t *conn = *conn_p;
    if (!conn)
        return;
    *conn_p = NULL;
    bool broken = dbt_conn_broken (conn);
    pthread_mutex_lock (&self->mutex);
    self->taken--;
    size_t max_idle = self->conf->max_idle >= 0 ? (size_t) self->conf->max_idle
                    : self->conf->max_active > 0 ? (size_t) self->conf->max_active : SIZE_MAX;
    bool keep = !broken && zlist_size (self->idle) < max_idle;
    if (keep)
        zlist_push (self->idle, conn);
    else
        self->open--;
    pthread_cond_signal (&self->returned);
    pthread_mutex_unlock (&self->mutex);
    if (!keep)
        dbt_conn_destroy (&conn);
}

//  --------------------------------------------------------------------------
//  Pool sets

static void
s_pool_free (void **item_p)
{
    dbt_pool_destroy ((dbt_pool_t **) item_p);
}

dbt_pools_t *
dbt_pools_new (const dbt_config_t *config)
{
    dbt_pools_t *self = (dbt_pools_t *) dbt_malloc (sizeof (dbt_pools_t));
    self->sources = zhashx_new ();
    zhashx_set_destructor (self->sources, s_pool_free);
    self->results = zhashx_new ();
    zhashx_set_destructor (self->results, s_pool_free);
    for (size_t i = 0; i < config->ndbs; i++)
        zhashx_insert (self->sources, config->dbs [i].conf.name, dbt_pool_new (&config->dbs [i].conf));
    for (size_t i = 0; i < config->nresults; i++)
        zhashx_insert (self->results, config->results [i].conf.name,
                       dbt_pool_new (&config->results [i].conf));
    return self;
}

void
dbt_pools_destroy (dbt_pools_t **self_p)
{
    assert (self_p);
    dbt_pools_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->sources);
    zhashx_destroy (&self->results);
    free (self);
    *self_p = NULL;
}

dbt_pool_t *
dbt_pools_source (dbt_pools_t *self, const char *name)
{
    return name ? (dbt_pool_t *) zhashx_lookup (self->sources, name) : NULL;
}

dbt_pool_t *
dbt_pools_results (dbt_pools_t *self, const char *name)
{
    return name ? (dbt_pool_t *) zhashx_lookup (self->results, name) : NULL;
}

void
dbt_pools_counts (dbt_pools_t *self, dbt_pools_count_fn *fn, void *arg)
{
    zhashx_t *sets [2] = { self->sources, self->results };
    for (int i = 0; i < 2; i++) {
        zlistx_t *names = zhashx_keys (sets [i]);
        zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
        zlistx_sort (names);
        for (const char *name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names)) {
            size_t open, taken;
            dbt_pool_counts ((dbt_pool_t *) zhashx_lookup (sets [i], name), &open, &taken);
            fn (name, i == 1, open, taken, arg);
        }
        zlistx_destroy (&names);
    }
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    dbt_pool_t *pool;
    int64_t got_at;
} s_waiter_t;

static void *
s_waiter (void *arg)
{
    s_waiter_t *waiter = (s_waiter_t *) arg;
    char err [DBT_ERRMSG_LEN];
    dbt_conn_t *conn = dbt_pool_get (waiter->pool, 5000, NULL, err);
    assert (conn);
    waiter->got_at = dbt_clock_ms ();
    dbt_pool_put (waiter->pool, &conn);
    return NULL;
}

void
dbt_pool_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("pool");
    char *path = dbt_printf ("%s/results.db", dir);
    dbt_dbconf_t conf = {
        .name = "res", .type = "sqlite", .dsn = path, .max_active = 2, .max_idle = 1,
        .connect_timeout_ms = 1000, .results = true
    };
    dbt_pool_t *pool = dbt_pool_new (&conf);
    assert (streq (dbt_pool_name (pool), "res"));
    dbt_conn_t *a = dbt_pool_get (pool, 100, NULL, err);
    dbt_conn_t *b = dbt_pool_get (pool, 100, NULL, err);
    assert (a && b);
    size_t open, taken;
    dbt_pool_counts (pool, &open, &taken);
    assert (open == 2 && taken == 2);
    //  At max_active a taker times out...
    int64_t start = dbt_clock_ms ();
    assert (dbt_pool_get (pool, 150, NULL, err) == NULL && strstr (err, "max_active"));
    assert (dbt_clock_ms () - start >= 140);
    //  ...or stops when asked...
    volatile bool stop = true;
    assert (dbt_pool_get (pool, 5000, &stop, err) == NULL);
    //  ...or gets the first connection put back.
    s_waiter_t waiter = { pool, 0 };
    pthread_t thread;
    pthread_create (&thread, NULL, s_waiter, &waiter);
    usleep (100 * 1000);
    int64_t put_at = dbt_clock_ms ();
    dbt_pool_put (pool, &a);
    assert (a == NULL);
    pthread_join (thread, NULL);
    assert (waiter.got_at >= put_at && waiter.got_at - put_at < 1000);
    dbt_pool_put (pool, &b);
    dbt_pool_counts (pool, &open, &taken);
    assert (taken == 0 && open == 1);           //  max_idle 1
    //  Idle connections are reused.
    a = dbt_pool_get (pool, 100, NULL, err);
    dbt_pool_counts (pool, &open, &taken);
    assert (a && open == 1 && taken == 1);
    dbt_pool_put (pool, &a);
    //  Connect failures come back as errors and free the slot.
    dbt_dbconf_t bad = conf;
    bad.dsn = "/nonexistent-dir/x.db";
    dbt_pool_t *bad_pool = dbt_pool_new (&bad);
    assert (dbt_pool_get (bad_pool, 100, NULL, err) == NULL);
    dbt_pool_counts (bad_pool, &open, &taken);
    assert (open == 0 && taken == 0);
    dbt_pool_destroy (&bad_pool);
    dbt_pool_destroy (&pool);
    assert (pool == NULL);
    free (path);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("pool: ok\n");
}
#endif  //  DBT_SELFTEST
