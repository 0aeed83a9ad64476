/*  =========================================================================
    dbt_store_test - self test of the state store

    Part of the dbt_store module (see dbt_store.h): records and indexes,
    the tables index, a full map and its growth, the journal, snapshot
    pages and replica stores, lists by queue and state, through the
    public API only (but for emptying the list index, to test its rebuild).
    =========================================================================
*/
#include "dbt_classes.h"

#ifdef DBT_SELFTEST
//  Journal and page callbacks: collect "j:id" / "g:id" (deleted: "-j:id").
static int
s_collect_record (bool group, const char *id, const char *record, size_t len, void *arg)
{
    char *item = dbt_printf ("%s%c:%s", record ? "" : "-", group ? 'g' : 'j', id);
    zlist_append ((zlist_t *) arg, item);
    free (item);
    return 0;
}

//  Replication: the journal of a turn, the publication sequence stored
//  with its commit, consistent snapshot pages, and a replica store.
static void
s_test_replication (void)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("store");
    dbt_store_t *store = dbt_store_open (dir, 16 << 20, 0, err);
    assert (store);
    dbt_store_set_journal (store, true);
    dbt_wtxn_t *txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_pubseq (txn) == 0);
    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->task, "t");
    dbt_job_set (&job->queue, "q");
    for (int i = 0; i < 25; i++) {
        char id [16];
        snprintf (id, sizeof (id), "p%02d", i);
        dbt_job_set (&job->id, id);
        job->seq = dbt_wtxn_next_seq (txn);
        assert (dbt_wtxn_put_job (txn, job, err) == 0);
    }
    assert (dbt_wtxn_put_job (txn, job, err) == 0);     //  same record twice: one change
    dbt_group_t *group = dbt_group_new ();
    group->id = dbt_strdup ("pg");
    dbt_group_add (group, "p00");
    assert (dbt_wtxn_put_group (txn, group, err) == 0);
    assert (dbt_wtxn_changes (txn) == 26);
    dbt_wtxn_set_pubseq (txn, 7);
    assert (dbt_wtxn_commit (&txn, err) == 0);
    //  Deletes are journalled as such.
    txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_pubseq (txn) == 7);
    assert (dbt_wtxn_del_job (txn, "p03", err) == 0);
    assert (dbt_wtxn_del_group (txn, "pg", err) == 0);
    zlist_t *seen = zlist_new ();
    zlist_autofree (seen);
    assert (dbt_wtxn_each_change (txn, s_collect_record, seen) == 0 && zlist_size (seen) == 2);
    zlist_sort (seen, (zlist_compare_fn *) strcmp);
    assert (streq ((char *) zlist_first (seen), "-g:pg") && streq ((char *) zlist_next (seen), "-j:p03"));
    zlist_purge (seen);
    dbt_wtxn_set_pubseq (txn, 8);
    assert (dbt_wtxn_commit (&txn, err) == 0);

    //  Pages: 24 jobs in pages of 10, each with the sequence of its read.
    char *after = NULL, *next = NULL;
    uint64_t pubseq = 0;
    int pages = 0;
    do {
        assert (dbt_store_page (store, false, after, 10, s_collect_record, seen, &pubseq, &next, err) == 0);
        assert (pubseq == 8);
        free (after);
        after = next;
        pages++;
    } while (after);
    assert (pages == 3 && zlist_size (seen) == 24);
    assert (streq ((char *) zlist_first (seen), "j:p00"));
    zlist_purge (seen);
    assert (dbt_store_page (store, true, NULL, 10, s_collect_record, seen, &pubseq, &next, err) == 0);
    assert (zlist_size (seen) == 0 && next == NULL);

    //  A replica store starts empty, takes records and can be cleared.
    char *rdir = dbt_printf ("%s/replica", dir);
    dbt_store_t *replica = dbt_store_open_replica (rdir, 16 << 20, err);
    assert (replica);
    txn = dbt_store_begin (replica, err);
    dbt_job_set (&job->id, "r1");
    assert (dbt_wtxn_put_job (txn, job, err) == 0 && dbt_wtxn_changes (txn) == 0);
    assert (dbt_wtxn_commit (&txn, err) == 0);
    dbt_job_t *found = NULL;
    assert (dbt_store_job (replica, "r1", &found, err) == 0);
    dbt_job_destroy (&found);
    dbt_store_destroy (&replica);
    replica = dbt_store_open_replica (rdir, 16 << 20, err);
    assert (replica && dbt_store_job (replica, "r1", &found, err) == DBT_ENOTFOUND);
    txn = dbt_store_begin (replica, err);
    assert (dbt_wtxn_put_job (txn, job, err) == 0 && dbt_wtxn_clear (txn, err) == 0);
    assert (dbt_wtxn_commit (&txn, err) == 0);
    assert (dbt_store_job (replica, "r1", &found, err) == DBT_ENOTFOUND);
    dbt_store_destroy (&replica);
    free (rdir);

    zlist_destroy (&seen);
    dbt_group_destroy (&group);
    dbt_job_destroy (&job);
    dbt_store_destroy (&store);
    dbt_testing_rmtree (&dir);
}

static int
s_collect (const dbt_job_t *job, void *arg)
{
    zlist_t *ids = (zlist_t *) arg;
    zlist_append (ids, dbt_strdup (job->id));
    return 0;
}

//  Lists: collect ids into a zlist (autofree).
static int
s_collect_id (const dbt_job_t *job, void *arg)
{
    zlist_append ((zlist_t *) arg, job->id);
    return 0;
}

static int
s_collect_counts (const char *queue, const uint64_t counts [DBT_STORE_NSTATES], void *arg)
{
    char *line = dbt_printf ("%s:%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64, queue,
                             counts [0], counts [1], counts [2], counts [3], counts [4]);
    zlist_append ((zlist_t *) arg, line);
    free (line);
    return 0;
}

//  Lists by queue and state: counts follow every change, pages are newest
//  first and their cursors resume exactly, bad cursors are refused.
static void
s_test_lists (void)
{
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("store");
    dbt_store_t *store = dbt_store_open (dir, 16 << 20, 0, err);
    assert (store);
    dbt_wtxn_t *txn = dbt_store_begin (store, err);
    dbt_job_t *job = dbt_job_new ();
    dbt_job_set (&job->task, "t");
    for (int i = 0; i < 250; i++) {
        char id [16];
        snprintf (id, sizeof (id), "l%03d", i);
        dbt_job_set (&job->id, id);
        dbt_job_set (&job->queue, i < 240 ? "lq" : "lq2");
        job->seq = dbt_wtxn_next_seq (txn);
        job->state = i < 100 ? DBT_STATE_PENDING : i < 110 ? DBT_STATE_STARTED
                   : i < 200 ? DBT_STATE_SUCCESS : i < 240 ? DBT_STATE_FAILURE : DBT_STATE_RETRY;
        job->finished_ms = dbt_state_final (job->state) ? 1000 + i : 0;
        assert (dbt_wtxn_put_job (txn, job, err) == 0);
        assert (dbt_wtxn_put_job (txn, job, err) == 0);     //  rewritten: counted once
    }
    assert (dbt_wtxn_commit (&txn, err) == 0);
    zlist_t *lines = zlist_new ();
    zlist_autofree (lines);
    assert (dbt_store_each_count (store, s_collect_counts, lines, err) == 0);
    assert (zlist_size (lines) == 2);
    assert (streq ((char *) zlist_first (lines), "lq:100,10,90,40,0"));
    assert (streq ((char *) zlist_next (lines), "lq2:0,0,0,0,10"));
    zlist_purge (lines);
    uint64_t count = 0;
    assert (dbt_store_count_since (store, "lq", DBT_STATE_FAILURE, 1230, &count, err) == 0 && count == 10);
    assert (dbt_store_count_since (store, "lq", DBT_STATE_FAILURE, 0, &count, err) == 0 && count == 40);
    assert (dbt_store_count_since (store, "lq", DBT_STATE_PENDING, 0, &count, err) == DBT_EINVAL);
    //  Pages of 30 through 100 PENDING jobs: newest first, no overlap.
    zlist_t *ids = zlist_new ();
    zlist_autofree (ids);
    char *after = NULL;
    int pages = 0;
    do {
        char *next = NULL;
        size_t before = zlist_size (ids);
        assert (dbt_store_list (store, "lq", DBT_STATE_PENDING, after, 30, s_collect_id, ids,
                                &next, err) == 0);
        assert (zlist_size (ids) - before == (pages < 3 ? 30 : 10));
        free (after);
        after = next;
        pages++;
    } while (after);
    assert (pages == 4 && zlist_size (ids) == 100);
    assert (streq ((char *) zlist_first (ids), "l099") && streq ((char *) zlist_last (ids), "l000"));
    zlist_purge (ids);
    //  Exactly a page: no cursor after it.
    char *next = NULL;
    assert (dbt_store_list (store, "lq", DBT_STATE_STARTED, NULL, 10, s_collect_id, ids, &next, err) == 0);
    assert (zlist_size (ids) == 10 && next == NULL);
    zlist_purge (ids);
    //  Finished jobs: latest finish first; another queue's are not listed.
    assert (dbt_store_list (store, "lq", DBT_STATE_FAILURE, NULL, 5, s_collect_id, ids, &next, err) == 0);
    assert (streq ((char *) zlist_first (ids), "l239") && next);
    free (next);
    zlist_purge (ids);
    assert (dbt_store_list (store, "nosuch", DBT_STATE_PENDING, NULL, 5, s_collect_id, ids, &next, err) == 0);
    assert (zlist_size (ids) == 0 && next == NULL);
    assert (dbt_store_list (store, "lq", DBT_STATE_PENDING, "zz", 5, s_collect_id, ids, &next, err) == DBT_EINVAL);
    assert (dbt_store_list (store, "lq", DBT_STATE_PENDING, "000000000000000gl001", 5, s_collect_id, ids,
                            &next, err) == DBT_EINVAL);
    //  State changes and deletes move entries and counts.
    txn = dbt_store_begin (store, err);
    dbt_job_destroy (&job);
    assert (dbt_wtxn_job (txn, "l000", &job, err) == 0);
    job->state = DBT_STATE_STARTED;
    assert (dbt_wtxn_put_job (txn, job, err) == 0);
    assert (dbt_wtxn_del_job (txn, "l001", err) == 0);
    for (int i = 240; i < 250; i++) {
        char id [16];
        snprintf (id, sizeof (id), "l%03d", i);
        assert (dbt_wtxn_del_job (txn, id, err) == 0);
    }
    assert (dbt_wtxn_commit (&txn, err) == 0);
    assert (dbt_store_each_count (store, s_collect_counts, lines, err) == 0);
    assert (zlist_size (lines) == 1 && streq ((char *) zlist_first (lines), "lq:98,11,90,40,0"));
    zlist_purge (lines);
    //  A store written before the list index (its "list" and "counts"
    //  emptied behind its back) gets both again on open.
    dbt_store_destroy (&store);
    MDB_env *env = NULL;
    MDB_txn *raw = NULL;
    MDB_dbi dbi;
    assert (mdb_env_create (&env) == 0 && mdb_env_set_maxdbs (env, 12) == 0);
    assert (mdb_env_set_mapsize (env, 16 << 20) == 0 && mdb_env_open (env, dir, 0, 0640) == 0);
    assert (mdb_txn_begin (env, NULL, 0, &raw) == 0);
    assert (mdb_dbi_open (raw, "list", 0, &dbi) == 0 && mdb_drop (raw, dbi, 0) == 0);
    assert (mdb_dbi_open (raw, "counts", 0, &dbi) == 0 && mdb_drop (raw, dbi, 0) == 0);
    assert (mdb_txn_commit (raw) == 0);
    mdb_env_close (env);
    store = dbt_store_open (dir, 16 << 20, 0, err);
    assert (store);
    assert (dbt_store_each_count (store, s_collect_counts, lines, err) == 0);
    assert (zlist_size (lines) == 1 && streq ((char *) zlist_first (lines), "lq:98,11,90,40,0"));
    zlist_purge (lines);
    assert (dbt_store_list (store, "lq", DBT_STATE_STARTED, NULL, 50, s_collect_id, ids, &next, err) == 0);
    assert (zlist_size (ids) == 11 && next == NULL);
    zlist_purge (ids);
    //  A cleared store has no counts left.
    txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_clear (txn, err) == 0 && dbt_wtxn_commit (&txn, err) == 0);
    assert (dbt_store_each_count (store, s_collect_counts, lines, err) == 0 && zlist_size (lines) == 0);
    dbt_job_destroy (&job);
    zlist_destroy (&ids);
    zlist_destroy (&lines);
    dbt_store_destroy (&store);
    dbt_testing_rmtree (&dir);
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
    dbt_store_t *store = dbt_store_open (dir, 64 << 20, 0, err);
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
    dbt_store_space_t space;
    assert (dbt_store_space (store, &space, err) == 0);
    assert (space.used_bytes > 0 && space.used_bytes < space.max_bytes && !space.full);
    assert (space.map_bytes == 64 << 20 && space.max_bytes == 64 << 20);

    //  The tables index: owner by folded name, gone with the record or
    //  once the results expired.
    txn = dbt_store_begin (store, err);
    dbt_job_t *t1 = s_test_job ("CaseA", "q", dbt_wtxn_next_seq (txn), DBT_STATE_PENDING);
    dbt_job_set (&t1->results, "res");
    dbt_job_set (&t1->table, "results_CaseA");
    assert (dbt_wtxn_put_job (txn, t1, err) == 0);
    char *owner = NULL;
    assert (dbt_wtxn_table_owner (txn, "res", "RESULTS_casea", &owner, err) == 0 && streq (owner, "CaseA"));
    free (owner);
    assert (dbt_wtxn_table_owner (txn, "other", "results_casea", &owner, err) == DBT_ENOTFOUND);
    t1->state = DBT_STATE_SUCCESS;
    t1->finished_ms = 10;
    assert (dbt_wtxn_put_job (txn, t1, err) == 0);
    assert (dbt_wtxn_table_owner (txn, "res", "results_casea", &owner, err) == 0);
    free (owner);
    t1->expired = true;
    assert (dbt_wtxn_put_job (txn, t1, err) == 0);
    assert (dbt_wtxn_table_owner (txn, "res", "results_casea", &owner, err) == DBT_ENOTFOUND);
    t1->expired = false;
    assert (dbt_wtxn_put_job (txn, t1, err) == 0);
    assert (dbt_wtxn_del_job (txn, "CaseA", err) == 0);
    assert (dbt_wtxn_table_owner (txn, "res", "results_casea", &owner, err) == DBT_ENOTFOUND);
    assert (owner == NULL);
    dbt_wtxn_abort (&txn);
    dbt_job_destroy (&t1);

    //  Sequence survives reopen.
    dbt_store_destroy (&store);
    store = dbt_store_open (dir, 64 << 20, 0, err);
    assert (store);
    txn = dbt_store_begin (store, err);
    assert (dbt_wtxn_next_seq (txn) == s1 + 4);       //  3 jobs and 1 drop
    dbt_wtxn_abort (&txn);
    assert (dbt_store_job (store, "c", &seen, err) == 0);
    dbt_job_destroy (&seen);

    //  A full map is reported as DBT_EFULL and the transaction is dropped;
    //  later writes of that transaction do nothing and say so.
    dbt_store_destroy (&store);
    dbt_testing_rmtree (&dir);
    char *small = dbt_testing_tmpdir ("store");
    store = dbt_store_open (small, 1 << 20, 0, err);
    assert (store);
    int rc = 0;
    dbt_job_t *big = s_test_job ("x", "q", 1, DBT_STATE_PENDING);
    char *payload = (char *) dbt_malloc (4001);
    memset (payload, 'p', 4000);
    dbt_job_set (&big->error, payload);
    free (payload);
    int rounds = 0;
    for (int round = 0; round < 1000 && rc == 0; round++, rounds++) {
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
        else {
            assert (dbt_wtxn_failed (txn));
            assert (dbt_wtxn_put_job (txn, big, err) == DBT_EFULL);
            assert (dbt_wtxn_del_job (txn, "j0-0", err) == DBT_EFULL);
            assert (dbt_wtxn_put_group (txn, group, err) == DBT_EFULL);
            assert (dbt_wtxn_add_drop (txn, "r", "t", "x", NULL, err) == DBT_EFULL);
            assert (dbt_wtxn_commit (&txn, err) == DBT_EFULL && txn == NULL);
            assert (strstr (err, "MDB_MAP_FULL"));
        }
    }
    assert (rc == DBT_EFULL);
    assert (dbt_store_space (store, &space, err) == 0 && space.full);
    //  Earlier commits are intact and the store still reads.
    assert (dbt_store_job (store, "j0-0", &seen, err) == 0);
    dbt_job_destroy (&seen);
    assert (dbt_store_grow (store, err) == 0);          //  no room to grow
    dbt_store_destroy (&store);
    dbt_testing_rmtree (&small);

    //  A store allowed to grow takes the same load without filling up.
    small = dbt_testing_tmpdir ("store");
    store = dbt_store_open (small, 1 << 20, 16 << 20, err);
    assert (store);
    rc = 0;
    int grown = 0;
    for (int round = 0; round < rounds + 5 && rc == 0; round++) {
        int g = dbt_store_grow (store, err);
        assert (g >= 0);
        grown += g;
        txn = dbt_store_begin (store, err);
        for (int i = 0; i < 20 && rc == 0; i++) {
            char id [32];
            snprintf (id, sizeof (id), "j%d-%d", round, i);
            dbt_job_set (&big->id, id);
            rc = dbt_wtxn_put_job (txn, big, err);
        }
        rc = rc ? rc : dbt_wtxn_commit (&txn, err);
        dbt_wtxn_abort (&txn);
    }
    assert (rc == 0 && grown >= 1);
    assert (dbt_store_space (store, &space, err) == 0 && space.map_bytes > 1 << 20 && !space.full);
    dbt_store_destroy (&store);
    //  Reopened with the old configured size, it keeps the grown map.
    store = dbt_store_open (small, 1 << 20, 16 << 20, err);
    assert (store && dbt_store_space (store, &space, err) == 0 && space.map_bytes > 1 << 20);
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
    s_test_replication ();
    s_test_lists ();
    if (verbose)
        printf ("store: ok\n");
}
#endif  //  DBT_SELFTEST
