/*  =========================================================================
    dbt_queue - a dispatcher's in-memory schedule of unfinished jobs

    See dbt_queue.h. Each entry sits in exactly one place: the ready list
    of its queue (ordered by seq), the timed list (ordered by ready_at,
    then seq), or nowhere while it runs. Lists are czmq zlistx, so an
    entry's handle removes it in constant time.
    =========================================================================
*/
#include "dbt_classes.h"

typedef struct {
    char *name;                 //  queue name
    zlistx_t *ready;            //  dbt_entry_t *, by seq (not owned)
    size_t counts [5];          //  entries per state
} s_queue_t;

typedef struct {
    uint32_t limit;             //  0 = unlimited
    uint32_t started;           //  entries STARTED
    uint32_t refs;              //  entries referring to the group
} s_group_t;

struct _dbt_queue_t {
    zhashx_t *entries;          //  id -> dbt_entry_t (owned)
    zhashx_t *queues;           //  name -> s_queue_t (owned)
    zlistx_t *timed;            //  dbt_entry_t *, by ready_at then seq
    zhashx_t *groups;           //  id -> s_group_t (owned)
    size_t counts [5];          //  entries per state
};

static int
s_by_seq (const void *a, const void *b)
{
    const dbt_entry_t *x = (const dbt_entry_t *) a, *y = (const dbt_entry_t *) b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
s_by_time (const void *a, const void *b)
{
    const dbt_entry_t *x = (const dbt_entry_t *) a, *y = (const dbt_entry_t *) b;
    if (x->ready_at != y->ready_at)
        return x->ready_at < y->ready_at ? -1 : 1;
    return s_by_seq (a, b);
}

static void
s_queue_free (void **item_p)
{
    s_queue_t *queue = (s_queue_t *) *item_p;
    if (queue) {
        zlistx_destroy (&queue->ready);
        free (queue->name);
        free (queue);
        *item_p = NULL;
    }
}

static void
s_entry_free (void **item_p)
{
    dbt_entry_t *entry = (dbt_entry_t *) *item_p;
    if (entry) {
        free (entry->queue);
        free (entry->group);
        free (entry->table_key);
        free (entry->worker);
        free (entry);
        *item_p = NULL;
    }
}

static void
s_group_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

dbt_queue_t *
dbt_queue_new (void)
{
    dbt_queue_t *self = (dbt_queue_t *) dbt_malloc (sizeof (dbt_queue_t));
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_free);
    self->queues = zhashx_new ();
    zhashx_set_destructor (self->queues, s_queue_free);
    self->groups = zhashx_new ();
    zhashx_set_destructor (self->groups, s_group_free);
    self->timed = zlistx_new ();
    zlistx_set_comparator (self->timed, s_by_time);
    return self;
}

void
dbt_queue_destroy (dbt_queue_t **self_p)
{
    assert (self_p);
    dbt_queue_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy (&self->timed);
    zhashx_destroy (&self->queues);
    zhashx_destroy (&self->entries);
    zhashx_destroy (&self->groups);
    free (self);
    *self_p = NULL;
}

void
dbt_queue_clear (dbt_queue_t *self)
{
    zlistx_purge (self->timed);
    zhashx_purge (self->queues);
    zhashx_purge (self->entries);
    zhashx_purge (self->groups);
    memset (self->counts, 0, sizeof (self->counts));
}

static s_queue_t *
s_queue (dbt_queue_t *self, const char *name)
{
    s_queue_t *queue = (s_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue) {
        queue = (s_queue_t *) dbt_malloc (sizeof (s_queue_t));
        queue->name = dbt_strdup (name);
        queue->ready = zlistx_new ();
        zlistx_set_comparator (queue->ready, s_by_seq);
        zhashx_insert (self->queues, name, queue);
    }
    return queue;
}

static s_group_t *
s_group (dbt_queue_t *self, const char *id)
{
    if (!id)
        return NULL;
    s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, id);
    if (!group) {
        group = (s_group_t *) dbt_malloc (sizeof (s_group_t));
        zhashx_insert (self->groups, id, group);
    }
    return group;
}

//  Take an entry out of whatever list holds it.
static void
s_unlink (dbt_entry_t *entry)
{
    if (entry->list) {
        zlistx_delete ((zlistx_t *) entry->list, entry->handle);
        entry->list = NULL;
        entry->handle = NULL;
    }
}

//  Place a waiting entry in the ready or the timed list.
static void
s_place (dbt_queue_t *self, dbt_entry_t *entry, int64_t now)
{
    if (entry->ready_at > now) {
        entry->list = self->timed;
        //  Search from the tail: new entries are usually the latest.
        entry->handle = zlistx_insert (self->timed, entry, false);
    }
    else {
        s_queue_t *queue = s_queue (self, entry->queue);
        entry->list = queue->ready;
        entry->handle = zlistx_insert (queue->ready, entry, false);
    }
}

static void
s_set_state (dbt_queue_t *self, dbt_entry_t *entry, dbt_state_t state)
{
    s_queue_t *queue = s_queue (self, entry->queue);
    self->counts [entry->state]--;
    queue->counts [entry->state]--;
    entry->state = state;
    self->counts [state]++;
    queue->counts [state]++;
}

dbt_entry_t *
dbt_queue_put (dbt_queue_t *self, const dbt_job_t *job, int64_t hold_until)
{
    assert (!dbt_state_final (job->state));
    dbt_queue_remove (self, job->id);
    dbt_entry_t *entry = (dbt_entry_t *) dbt_malloc (sizeof (dbt_entry_t));
    snprintf (entry->id, sizeof (entry->id), "%s", job->id);
    entry->queue = dbt_strdup (job->queue);
    entry->group = dbt_strdup (job->group_id);
    entry->table_key = dbt_job_table_key (job->results, job->table);
    entry->seq = job->seq;
    entry->state = job->state;
    entry->attempt = job->attempts;
    self->counts [entry->state]++;
    s_queue (self, entry->queue)->counts [entry->state]++;
    s_group_t *group = s_group (self, entry->group);
    if (group)
        group->refs++;
    zhashx_insert (self->entries, entry->id, entry);
    if (job->state == DBT_STATE_STARTED) {
        entry->worker = dbt_strdup (job->worker);
        if (group)
            group->started++;
    }
    else {
        entry->ready_at = job->eta_ms > hold_until ? job->eta_ms : hold_until;
        s_place (self, entry, dbt_time_ms ());
    }
    return entry;
}

dbt_entry_t *
dbt_queue_lookup (dbt_queue_t *self, const char *id)
{
    return (dbt_entry_t *) zhashx_lookup (self->entries, id);
}

void
dbt_queue_remove (dbt_queue_t *self, const char *id)
{
    dbt_entry_t *entry = dbt_queue_lookup (self, id);
    if (!entry)
        return;
    s_unlink (entry);
    self->counts [entry->state]--;
    s_queue_t *queue = s_queue (self, entry->queue);
    queue->counts [entry->state]--;
    size_t left = 0;
    for (int i = 0; i < 5; i++)
        left += queue->counts [i];
    if (left == 0)
        zhashx_delete (self->queues, queue->name);     //  names come and go
    if (entry->group) {
        s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, entry->group);
        if (group) {
            if (entry->state == DBT_STATE_STARTED && group->started)
                group->started--;
            if (--group->refs == 0)
                zhashx_delete (self->groups, entry->group);
        }
    }
    zhashx_delete (self->entries, id);
}

int64_t
dbt_queue_promote (dbt_queue_t *self, int64_t now)
{
    dbt_entry_t *entry;
    while ((entry = (dbt_entry_t *) zlistx_first (self->timed))) {
        if (entry->ready_at > now)
            return entry->ready_at;
        s_unlink (entry);
        s_place (self, entry, now);
    }
    return 0;
}

void
dbt_queue_set_group_limit (dbt_queue_t *self, const char *group_id, uint32_t limit)
{
    s_group_t *group = s_group (self, group_id);
    if (group)
        group->limit = limit;
}

dbt_entry_t *
dbt_queue_next (dbt_queue_t *self, const char *name, dbt_queue_hold_fn *hold, void *arg)
{
    s_queue_t *queue = (s_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue)
        return NULL;
    for (dbt_entry_t *entry = (dbt_entry_t *) zlistx_first (queue->ready); entry;
         entry = (dbt_entry_t *) zlistx_next (queue->ready)) {
        if (entry->group) {
            s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, entry->group);
            if (group && group->limit && group->started >= group->limit)
                continue;
        }
        if (hold && hold (entry, arg))
            continue;
        return entry;
    }
    return NULL;
}

void
dbt_queue_start (dbt_queue_t *self, dbt_entry_t *entry, const char *worker, uint32_t attempt)
{
    assert (entry->state != DBT_STATE_STARTED);
    s_unlink (entry);
    s_set_state (self, entry, DBT_STATE_STARTED);
    free (entry->worker);
    entry->worker = dbt_strdup (worker);
    entry->attempt = attempt;
    entry->cancelling = false;
    entry->ready_at = 0;
    if (entry->group) {
        s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, entry->group);
        if (group)
            group->started++;
    }
}

void
dbt_queue_requeue (dbt_queue_t *self, dbt_entry_t *entry, dbt_state_t state, int64_t ready_at)
{
    assert (state == DBT_STATE_PENDING || state == DBT_STATE_RETRY);
    if (entry->state == DBT_STATE_STARTED && entry->group) {
        s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, entry->group);
        if (group && group->started)
            group->started--;
    }
    s_unlink (entry);
    s_set_state (self, entry, state);
    free (entry->worker);
    entry->worker = NULL;
    entry->cancelling = false;
    entry->ready_at = ready_at;
    s_place (self, entry, dbt_time_ms ());
}

zlist_t *
dbt_queue_running_on (dbt_queue_t *self, const char *worker)
{
    zlist_t *ids = zlist_new ();
    zlist_autofree (ids);
    for (dbt_entry_t *entry = (dbt_entry_t *) zhashx_first (self->entries); entry;
         entry = (dbt_entry_t *) zhashx_next (self->entries))
        if (entry->state == DBT_STATE_STARTED && entry->worker && streq (entry->worker, worker))
            zlist_append (ids, entry->id);
    return ids;
}

size_t
dbt_queue_ready_count (dbt_queue_t *self, const char *name)
{
    s_queue_t *queue = (s_queue_t *) zhashx_lookup (self->queues, name);
    return queue ? zlistx_size (queue->ready) : 0;
}

size_t
dbt_queue_queue_count (dbt_queue_t *self, const char *name, dbt_state_t state)
{
    s_queue_t *queue = (s_queue_t *) zhashx_lookup (self->queues, name);
    return queue && (size_t) state < 5 ? queue->counts [state] : 0;
}

size_t
dbt_queue_state_count (dbt_queue_t *self, dbt_state_t state)
{
    return (size_t) state < 5 ? self->counts [state] : 0;
}

size_t
dbt_queue_size (dbt_queue_t *self)
{
    return zhashx_size (self->entries);
}

zlist_t *
dbt_queue_names (dbt_queue_t *self)
{
    zlist_t *names = zlist_new ();
    zlist_autofree (names);
    for (s_queue_t *queue = (s_queue_t *) zhashx_first (self->queues); queue;
         queue = (s_queue_t *) zhashx_next (self->queues)) {
        size_t total = 0;
        for (int i = 0; i < 5; i++)
            total += queue->counts [i];
        if (total)
            zlist_append (names, queue->name);
    }
    return names;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

static dbt_job_t *
s_job (const char *id, const char *queue, uint64_t seq, const char *group, int64_t eta)
{
    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->id, id);
    dbt_job_set (&job->task, "t");
    dbt_job_set (&job->queue, queue);
    dbt_job_set (&job->group_id, group);
    job->seq = seq;
    job->eta_ms = eta;
    return job;
}

static bool
s_hold_a (const dbt_entry_t *entry, void *arg)
{
    return streq (entry->id, "a");
}

void
dbt_queue_test (bool verbose)
{
    dbt_queue_t *self = dbt_queue_new ();
    int64_t now = dbt_time_ms ();
    dbt_job_t *jobs [] = {
        s_job ("c", "q", 3, NULL, 0),
        s_job ("a", "q", 1, NULL, 0),
        s_job ("b", "q", 2, NULL, now + 60000),
        s_job ("g1", "q2", 4, "grp", 0),
        s_job ("g2", "q2", 5, "grp", 0),
        s_job ("g3", "q2", 6, "grp", 0),
    };
    for (size_t i = 0; i < 6; i++)
        dbt_queue_put (self, jobs [i], 0);
    assert (dbt_queue_size (self) == 6);
    assert (dbt_queue_ready_count (self, "q") == 2);
    assert (dbt_queue_state_count (self, DBT_STATE_PENDING) == 6);

    assert (dbt_queue_queue_count (self, "q", DBT_STATE_PENDING) == 3);
    assert (dbt_queue_queue_count (self, "q2", DBT_STATE_PENDING) == 3);
    //  A hold callback skips entries.
    dbt_entry_t *held = dbt_queue_next (self, "q", s_hold_a, NULL);
    assert (held && streq (held->id, "c"));
    //  Ready in submission order, whatever the insertion order.
    dbt_entry_t *next = dbt_queue_next (self, "q", NULL, NULL);
    assert (next && streq (next->id, "a"));
    dbt_queue_start (self, next, "w1", 1);
    assert (dbt_queue_state_count (self, DBT_STATE_STARTED) == 1);
    assert (dbt_queue_queue_count (self, "q", DBT_STATE_STARTED) == 1);
    assert (dbt_queue_queue_count (self, "q", DBT_STATE_PENDING) == 2);
    next = dbt_queue_next (self, "q", NULL, NULL);
    assert (next && streq (next->id, "c"));
    assert (dbt_queue_next (self, "nope", NULL, NULL) == NULL);

    //  Timed entries become ready when due.
    assert (dbt_queue_promote (self, now) == now + 60000);
    assert (dbt_queue_ready_count (self, "q") == 1);
    assert (dbt_queue_promote (self, now + 60000) == 0);
    assert (dbt_queue_ready_count (self, "q") == 2);
    next = dbt_queue_next (self, "q", NULL, NULL);
    assert (streq (next->id, "b"));

    //  Group limits hold back later members.
    dbt_queue_set_group_limit (self, "grp", 2);
    dbt_entry_t *g = dbt_queue_next (self, "q2", NULL, NULL);
    dbt_queue_start (self, g, "w1", 1);
    g = dbt_queue_next (self, "q2", NULL, NULL);
    assert (streq (g->id, "g2"));
    dbt_queue_start (self, g, "w2", 1);
    assert (dbt_queue_next (self, "q2", NULL, NULL) == NULL);
    dbt_queue_remove (self, "g1");
    g = dbt_queue_next (self, "q2", NULL, NULL);
    assert (g && streq (g->id, "g3"));

    //  Requeue with backoff, running lists.
    zlist_t *running = dbt_queue_running_on (self, "w1");
    assert (zlist_size (running) == 1 && streq ((char *) zlist_first (running), "a"));
    zlist_destroy (&running);
    dbt_entry_t *a = dbt_queue_lookup (self, "a");
    dbt_queue_requeue (self, a, DBT_STATE_RETRY, now + 1000);
    assert (dbt_queue_state_count (self, DBT_STATE_RETRY) == 1);
    assert (dbt_queue_promote (self, now) == now + 1000);
    dbt_queue_promote (self, now + 1000);
    next = dbt_queue_next (self, "q", NULL, NULL);
    assert (streq (next->id, "a"));
    zlist_t *names = dbt_queue_names (self);
    assert (zlist_size (names) == 2);
    zlist_destroy (&names);

    //  Re-putting a job replaces its entry.
    dbt_queue_put (self, jobs [0], now + 5000);
    assert (dbt_queue_size (self) == 5);
    dbt_queue_clear (self);
    assert (dbt_queue_size (self) == 0 && dbt_queue_state_count (self, DBT_STATE_PENDING) == 0);
    for (size_t i = 0; i < 6; i++)
        dbt_job_destroy (&jobs [i]);
    dbt_queue_destroy (&self);
    if (verbose)
        printf ("queue: ok\n");
}
#endif  //  DBT_SELFTEST
