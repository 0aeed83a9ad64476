/*  =========================================================================
    dbt_dispatcher_client - the dispatcher's client requests

    Part of the dispatcher module (see dbt_dispatcher.h and
    dbt_dispatcher_int.h): SUBMIT, CANCEL, the reads, the janitor's
    requests (EXPIRE, DROPPED, FORGET) and STATS. Each handler works in the
    turn's write transaction and queues its reply for after the commit.
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_dispatcher_int.h"

static void
s_handle_submit (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    int code = 0;
    const msgpack_object *jobs = dbt_mp_get (msg->map, "jobs");
    const msgpack_object *group_spec = dbt_mp_get (msg->map, "group");
    bool is_group = group_spec && group_spec->type != MSGPACK_OBJECT_NIL;
    size_t count = jobs && jobs->type == MSGPACK_OBJECT_ARRAY ? jobs->via.array.size : 0;
    if (!jobs || jobs->type != MSGPACK_OBJECT_ARRAY || (count == 0 && !is_group)) {
        dbt_disp__reply_error (self, msg->identity, rid, 400, "jobs must be a non-empty array");
        return;
    }
    if (count > MAX_JOBS_PER_SUBMIT) {
        dbt_disp__reply_error (self, msg->identity, rid, 413, "too many jobs in one request");
        return;
    }
    //  A record and its index entries, with LMDB's copy-on-write of the
    //  pages they touch: about four times the request, and a page's share.
    int64_t cost = (int64_t) dbt_mpr_size (msg->body) * 4 + (int64_t) count * 256;
    if (dbt_disp__take_space (self, cost)) {
        self->stats [ST_REFUSED_FULL]++;
        dbt_disp__reply_error (self, msg->identity, rid, 507, "state store is full: new jobs are "
                               "refused until expiry or purges free space");
        return;
    }
    dbt_group_t *group = NULL;
    if (is_group)
        code = dbt_submit_group (group_spec, &group, err);
    dbt_job_t **subs = (dbt_job_t **) dbt_malloc ((count ? count : 1) * sizeof (dbt_job_t *));
    for (size_t i = 0; i < count && !code; i++) {
        code = dbt_submit_job (self->config, self->tasks, self->routes, &jobs->via.array.ptr [i],
                               dbt_disp__random (self), &subs [i], err);
        if (code && count > 1) {
            char inner [DBT_ERRMSG_LEN];
            snprintf (inner, sizeof (inner), "%s", err);
            dbt_err_set (err, "job %zu: %s", i + 1, inner);
        }
    }
    //  Duplicates within the request (ids, and results tables that a
    //  database comparing names without case would take for one), then
    //  against stored records. A single job (the usual POST) has none.
    zhashx_t *ids = count > 1 ? zhashx_new () : NULL;
    zhashx_t *tables = count > 1 ? zhashx_new () : NULL;
    for (size_t i = 0; i < count && count > 1 && !code; i++) {
        if (zhashx_insert (ids, subs [i]->id, subs [i]) != 0) {
            dbt_err_set (err, "job id '%s' appears twice in the request", subs [i]->id);
            code = 400;
            break;
        }
        if (!subs [i]->table)
            continue;
        char *key = dbt_job_table_key (subs [i]->results, subs [i]->table);
        const dbt_job_t *other = (const dbt_job_t *) zhashx_lookup (tables, key);
        if (other) {
            dbt_err_set (err, "jobs '%s' and '%s' differ only in letter case: their results tables "
                         "would be one ('%s')", other->id, subs [i]->id, subs [i]->table);
            code = 400;
        }
        else
            zhashx_insert (tables, key, subs [i]);
        free (key);
    }
    zhashx_destroy (&ids);
    zhashx_destroy (&tables);
    dbt_wtxn_t *txn = NULL;
    if (!code) {
        txn = dbt_disp__txn (self, err);
        if (!txn)
            code = dbt_disp__fail_code (self);
    }
    dbt_job_t *conflict = NULL;         //  the unfinished job of a 409, sent back with it
    for (size_t i = 0; i < count && !code; i++) {
        dbt_job_t *old = NULL;
        int rc = dbt_wtxn_job (txn, subs [i]->id, &old, err);
        if (rc == 0 && !dbt_state_final (old->state)) {
            dbt_err_set (err, "job '%s' is already %s", subs [i]->id,
                         old->state == DBT_STATE_STARTED ? "running" : "queued");
            code = 409;
            conflict = old;
            old = NULL;
        }
        else
        if (rc != 0 && rc != DBT_ENOTFOUND)
            code = dbt_disp__fail_code (self);
        dbt_job_destroy (&old);
        //  The same id unfinished on another dispatcher (as far as its
        //  replica here knows: the mesh cannot make this check atomic).
        dbt_job_t *elsewhere = NULL;
        dbt_origin_t origin;
        if (!code && self->view
        &&  dbt_view_job (self->view, subs [i]->id, &elsewhere, &origin, err) == 0
        &&  !origin.own && !dbt_state_final (elsewhere->state)) {
            dbt_err_set (err, "job '%s' is already %s on node '%s'", subs [i]->id,
                         elsewhere->state == DBT_STATE_STARTED ? "running" : "queued", origin.node);
            code = 409;
        }
        dbt_job_destroy (&elsewhere);
        //  A table another job keeps (same name but for letter case).
        char *owner = NULL;
        if (!code && subs [i]->table
        &&  dbt_wtxn_table_owner (txn, subs [i]->results, subs [i]->table, &owner, err) == 0
        &&  !streq (owner, subs [i]->id)) {
            dbt_err_set (err, "results table '%s' is kept for job '%s' (job ids that differ only "
                         "in letter case share a table name; purge that job or use another id)",
                         subs [i]->table, owner);
            code = 409;
        }
        free (owner);
    }
    if (!code && group) {
        dbt_group_t *old = NULL;
        int rc = dbt_wtxn_group (txn, group->id, &old, err);
        if (rc == 0) {
            for (size_t i = 0; i < old->njobs && !code; i++) {
                dbt_job_t *member = NULL;
                if (dbt_wtxn_job (txn, old->job_ids [i], &member, err) == 0
                &&  !dbt_state_final (member->state)) {
                    dbt_err_set (err, "group '%s' still has unfinished jobs", group->id);
                    code = 409;
                }
                dbt_job_destroy (&member);
            }
        }
        else
        if (rc != DBT_ENOTFOUND)
            code = dbt_disp__fail_code (self);
        dbt_group_destroy (&old);
    }
    //  Everything checked: write all or, on a store error, fail the turn.
    int64_t now = dbt_time_ms ();
    for (size_t i = 0; i < count && !code; i++) {
        dbt_job_t *job = subs [i];
        job->seq = dbt_wtxn_next_seq (txn);
        job->created_ms = now;
        job->state = DBT_STATE_PENDING;
        if (group) {
            dbt_job_set (&job->group_id, group->id);
            dbt_group_add (group, job->id);
        }
        if (dbt_wtxn_put_job (txn, job, err))
            code = dbt_disp__fail_code (self);
    }
    if (!code && group) {
        group->created_ms = now;
        if (dbt_wtxn_put_group (txn, group, err))
            code = dbt_disp__fail_code (self);
    }
    if (code && conflict) {
        //  A retry of a request that was kept (its reply lost) learns so.
        dbt_disp__reply_begin (self, rid, code, err);
        dbt_job_pack (conflict, self->writer);
        dbt_disp__reply_end (self, msg->identity, rid, false);
    }
    else
    if (code) {
        dbt_disp__reply_error (self, msg->identity, rid, code, err);
        if (code == 503 || code == 507)
            dbt_log (DBT_LOG_ERROR, "dispatcher: submit failed: %s", err);
    }
    else {
        for (size_t i = 0; i < count; i++)
            dbt_queue_put (self->queue, subs [i], 0);
        if (group)
            dbt_queue_set_group_limit (self->queue, group->id, group->concurrency);
        self->stats [ST_SUBMITTED] += count;
        dbt_disp__reply_begin (self, rid, 200, NULL);
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "group_id", group ? group->id : NULL);
        dbt_mpw_str (self->writer, "jobs");
        dbt_mpw_array (self->writer);
        for (size_t i = 0; i < count; i++) {
            dbt_job_t *job = subs [i];
            dbt_mpw_map (self->writer);
            dbt_mpw_kstr (self->writer, "job_id", job->id);
            dbt_mpw_kstr (self->writer, "task", job->task);
            dbt_mpw_kstr (self->writer, "queue", job->queue);
            dbt_mpw_ki64 (self->writer, "eta", job->eta_ms);
            dbt_mpw_ku64 (self->writer, "retries", job->max_retries);
            dbt_mpw_kstr (self->writer, "results", job->results);
            dbt_mpw_kstr (self->writer, "table", job->table);
            dbt_mpw_end (self->writer);
        }
        dbt_mpw_end (self->writer);
        dbt_mpw_end (self->writer);
        bool records = false;
        if (dbt_mp_field_bool (msg->map, "records", false, &records, err) == 0 && records) {
            //  A front on another node shows these until its replica has them.
            dbt_mpw_str (self->writer, "records");
            dbt_mpw_array (self->writer);
            for (size_t i = 0; i < count; i++)
                dbt_job_pack (subs [i], self->writer);
            dbt_mpw_end (self->writer);
        }
        dbt_disp__reply_end (self, msg->identity, rid, true);
    }
    for (size_t i = 0; i < count; i++)
        dbt_job_destroy (&subs [i]);
    free (subs);
    dbt_job_destroy (&conflict);
    dbt_group_destroy (&group);
}

//  --------------------------------------------------------------------------
//  Client: CANCEL

//  What a CANCEL that asked for "records" changed: a job's new record, or
//  (job NULL) its id when it was purged.
static void
s_captured (dbt_disp_t *self, const dbt_job_t *job, const char *id)
{
    if (!self->captured)
        return;
    if (job)
        dbt_job_pack (job, self->captured);
    else
        dbt_mpw_str (self->captured_gone, id);
}

//  Cancel (and with purge, forget) one job. Returns 0 or a code with err.
static int
s_cancel_job (dbt_disp_t *self, dbt_wtxn_t *txn, const char *id, bool purge, bool in_group, char *err)
{
    dbt_job_t *job = NULL;
    int rc = dbt_wtxn_job (txn, id, &job, err);
    if (rc == DBT_ENOTFOUND) {
        dbt_err_set (err, "job not found");
        return 404;
    }
    if (rc)
        return dbt_disp__fail_code (self);
    int code = 0;
    dbt_entry_t *entry = dbt_queue_lookup (self->queue, id);
    if (dbt_state_final (job->state)) {
        if (!purge) {
            if (!in_group) {
                dbt_err_set (err, "can't cancel completed job");
                code = 409;
            }
        }
        else
        if ((!job->expired && dbt_disp__add_drop (self, txn, job, err)) || dbt_wtxn_del_job (txn, id, err))
            code = dbt_disp__fail_code (self);
        else
            s_captured (self, NULL, id);
    }
    else
    if (job->state == DBT_STATE_STARTED && entry) {
        dbt_disp_worker_t *worker = entry->worker
                           ? (dbt_disp_worker_t *) zhashx_lookup (self->workers, entry->worker) : NULL;
        if (worker && worker->connected)
            dbt_disp__send_cancel (self, worker, id, entry->attempt, "canceled");
        entry->cancelling = true;
        if (purge) {
            //  The worker's capacity stays taken until its DONE arrives;
            //  an attempt that still swaps its table in loses it to the drop.
            dbt_queue_remove (self->queue, id);
            if (dbt_disp__add_drop (self, txn, job, err) || dbt_wtxn_del_job (txn, id, err))
                code = dbt_disp__fail_code (self);
            else
                s_captured (self, NULL, id);
        }
        else {
            job->cancelled = true;
            if (dbt_wtxn_put_job (txn, job, err))
                code = dbt_disp__fail_code (self);
            else
                s_captured (self, job, id);
        }
        self->stats [ST_CANCELLED]++;
    }
    else {
        dbt_queue_remove (self->queue, id);
        if (purge) {
            //  A queued job may still have the table of an earlier run.
            if (dbt_disp__add_drop (self, txn, job, err) || dbt_wtxn_del_job (txn, id, err))
                code = dbt_disp__fail_code (self);
            else
                s_captured (self, NULL, id);
        }
        else {
            job->state = DBT_STATE_FAILURE;
            job->cancelled = true;
            job->finished_ms = dbt_time_ms ();
            dbt_job_set (&job->error, "the job was canceled");
            if (dbt_wtxn_put_job (txn, job, err))
                code = dbt_disp__fail_code (self);
            else
                s_captured (self, job, id);
        }
        self->stats [ST_CANCELLED]++;
    }
    dbt_job_destroy (&job);
    return code;
}

static void
s_handle_cancel (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *job_id = NULL, *group_id = NULL;
    bool purge = false;
    int code = 0;
    if (dbt_mp_field_str (msg->map, "job_id", false, &job_id, err)
    ||  dbt_mp_field_str (msg->map, "group_id", false, &group_id, err)
    ||  dbt_mp_field_bool (msg->map, "purge", false, &purge, err))
        code = 400;
    else
    if (!job_id == !group_id) {
        dbt_err_set (err, "give exactly one of job_id and group_id");
        code = 400;
    }
    bool records = false;
    if (!code && dbt_mp_field_bool (msg->map, "records", false, &records, err))
        code = 400;
    if (records) {
        self->captured = dbt_mpw_new ();
        self->captured_gone = dbt_mpw_new ();
        dbt_mpw_array (self->captured);
        dbt_mpw_array (self->captured_gone);
    }
    dbt_wtxn_t *txn = code ? NULL : dbt_disp__txn (self, err);
    if (!code && !txn)
        code = dbt_disp__fail_code (self);
    if (!code && job_id) {
        if (!dbt_id_valid (job_id)) {
            dbt_err_set (err, "job not found");
            code = 404;
        }
        else
            code = s_cancel_job (self, txn, job_id, purge, false, err);
    }
    if (!code && group_id) {
        dbt_group_t *group = NULL;
        int rc = dbt_id_valid (group_id) ? dbt_wtxn_group (txn, group_id, &group, err) : DBT_ENOTFOUND;
        if (rc == DBT_ENOTFOUND) {
            dbt_err_set (err, "group not found");
            code = 404;
        }
        else
        if (rc)
            code = dbt_disp__fail_code (self);
        if (!code && !purge) {
            bool complete = true;
            for (size_t i = 0; i < group->njobs; i++) {
                dbt_job_t *member = NULL;
                if (dbt_wtxn_job (txn, group->job_ids [i], &member, err) == 0
                &&  !dbt_state_final (member->state))
                    complete = false;
                dbt_job_destroy (&member);
            }
            if (complete) {
                dbt_err_set (err, "can't delete group as it's already complete");
                code = 409;
            }
        }
        for (size_t i = 0; !code && group && i < group->njobs; i++) {
            int rc2 = s_cancel_job (self, txn, group->job_ids [i], purge, true, err);
            if (rc2 && rc2 != 404)
                code = rc2;
        }
        if (!code && purge && dbt_wtxn_del_group (txn, group_id, err))
            code = dbt_disp__fail_code (self);
        dbt_group_destroy (&group);
    }
    if (code)
        dbt_disp__reply_error (self, msg->identity, rid, code, err);
    else {
        dbt_disp__reply_begin (self, rid, 200, NULL);
        dbt_mpw_bool (self->writer, true);
        if (self->captured) {
            dbt_mpw_end (self->captured);
            dbt_mpw_end (self->captured_gone);
            size_t len;
            const char *data = dbt_mpw_data (self->captured, &len);
            dbt_mpw_str (self->writer, "records");
            dbt_mpw_raw (self->writer, data, len);
            data = dbt_mpw_data (self->captured_gone, &len);
            dbt_mpw_str (self->writer, "gone");
            dbt_mpw_raw (self->writer, data, len);
        }
        dbt_disp__reply_end (self, msg->identity, rid, true);
    }
    dbt_mpw_destroy (&self->captured);
    dbt_mpw_destroy (&self->captured_gone);
    free (job_id);
    free (group_id);
}

//  --------------------------------------------------------------------------
//  Client: reads (answered from LMDB like the HTTP front does)

static void
s_handle_status (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *id = NULL;
    if (dbt_mp_field_str (msg->map, "job_id", true, &id, err)) {
        dbt_disp__reply_error (self, msg->identity, rid, 400, err);
        return;
    }
    dbt_job_t *job = NULL;
    int rc = dbt_id_valid (id) ? dbt_store_job (self->store, id, &job, err) : DBT_ENOTFOUND;
    if (rc == 0) {
        dbt_disp__reply_begin (self, rid, 200, NULL);
        dbt_job_pack (job, self->writer);
        dbt_disp__reply_end (self, msg->identity, rid, false);
    }
    else
        dbt_disp__reply_error (self, msg->identity, rid, rc == DBT_ENOTFOUND ? 404 : 500,
                       rc == DBT_ENOTFOUND ? "job not found" : err);
    dbt_job_destroy (&job);
    free (id);
}

static void
s_handle_group (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *id = NULL;
    if (dbt_mp_field_str (msg->map, "group_id", true, &id, err)) {
        dbt_disp__reply_error (self, msg->identity, rid, 400, err);
        return;
    }
    dbt_group_t *group = NULL;
    int rc = dbt_id_valid (id) ? dbt_store_group (self->store, id, &group, err) : DBT_ENOTFOUND;
    if (rc == 0) {
        dbt_disp__reply_begin (self, rid, 200, NULL);
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "group_id", group->id);
        dbt_mpw_ku64 (self->writer, "concurrency", group->concurrency);
        dbt_mpw_str (self->writer, "jobs");
        dbt_mpw_array (self->writer);
        for (size_t i = 0; i < group->njobs; i++) {
            dbt_job_t *job = NULL;
            if (dbt_store_job (self->store, group->job_ids [i], &job, err) == 0)
                dbt_job_pack (job, self->writer);
            else
                dbt_mpw_nil (self->writer);
            dbt_job_destroy (&job);
        }
        dbt_mpw_end (self->writer);
        dbt_mpw_end (self->writer);
        dbt_disp__reply_end (self, msg->identity, rid, false);
    }
    else
        dbt_disp__reply_error (self, msg->identity, rid, rc == DBT_ENOTFOUND ? 404 : 500,
                       rc == DBT_ENOTFOUND ? "group not found" : err);
    dbt_group_destroy (&group);
    free (id);
}

static int
s_pack_waiting (const dbt_job_t *job, void *arg)
{
    dbt_job_pack (job, (dbt_mpw_t *) arg);
    return 0;
}

static void
s_handle_pending (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN] = "";
    char *queue = NULL;
    if (dbt_mp_field_str (msg->map, "queue", true, &queue, err)) {
        dbt_disp__reply_error (self, msg->identity, rid, 400, err);
        return;
    }
    dbt_disp__reply_begin (self, rid, 200, NULL);
    dbt_mpw_array (self->writer);
    if (dbt_id_valid (queue)
    &&  dbt_store_each_waiting (self->store, queue, s_pack_waiting, self->writer, err)) {
        free (queue);
        dbt_mpw_reset (self->writer);
        dbt_disp__reply_error (self, msg->identity, rid, 500, err);
        return;
    }
    dbt_mpw_end (self->writer);
    dbt_disp__reply_end (self, msg->identity, rid, false);
    free (queue);
}

static void
s_handle_ping (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    dbt_disp__reply_begin (self, rid, 200, NULL);
    dbt_mpw_map (self->writer);
    dbt_mpw_kstr (self->writer, "instance", self->instance);
    dbt_mpw_kstr (self->writer, "node", self->config->worker_name);
    dbt_mpw_kstr (self->writer, "version", DBT_VERSION_STRING);
    dbt_mpw_ku64 (self->writer, "seq", self->pubseq);
    dbt_mpw_kstr (self->writer, "lineage", dbt_store_lineage (self->store));
    dbt_routes_announce (self->config, self->writer);
    dbt_disp__pair_write (self, self->writer);
    dbt_mpw_end (self->writer);
    dbt_disp__reply_end (self, msg->identity, rid, false);
}

//  Read an array of job ids from field key; NULL with a reply on error.
static zlist_t *
s_ids (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid, const char *key)
{
    const msgpack_object *ids = dbt_mp_get (msg->map, key);
    if (!ids || ids->type != MSGPACK_OBJECT_ARRAY) {
        dbt_disp__reply_error (self, msg->identity, rid, 400, "ids must be an array");
        return NULL;
    }
    zlist_t *list = zlist_new ();
    zlist_autofree (list);
    for (uint32_t i = 0; i < ids->via.array.size; i++) {
        const char *str;
        size_t len;
        if (dbt_mp_str (&ids->via.array.ptr [i], &str, &len) == 0 && len <= DBT_ID_MAX) {
            char *id = dbt_strndup (str, len);
            if (dbt_id_valid (id))
                zlist_append (list, id);
            free (id);
        }
    }
    return list;
}

//  Janitor: these jobs' results passed their retention; mark them expired
//  and queue their tables for dropping.
static void
s_handle_expire (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    zlist_t *ids = s_ids (self, msg, rid, "ids");
    if (!ids)
        return;
    dbt_wtxn_t *txn = dbt_disp__txn (self, err);
    int64_t now = dbt_time_ms ();
    uint64_t count = 0;
    int code = txn ? 0 : 503;
    for (char *id = (char *) zlist_first (ids); id && !code; id = (char *) zlist_next (ids)) {
        dbt_job_t *job = NULL;
        if (dbt_wtxn_job (txn, id, &job, err) == 0) {
            int64_t expiry = dbt_job_results_expiry (job);
            if (expiry > 0 && expiry <= now) {
                job->expired = true;
                if (dbt_disp__add_drop (self, txn, job, err) || dbt_wtxn_put_job (txn, job, err))
                    code = dbt_disp__fail_code (self);
                else
                    count++;
            }
        }
        dbt_job_destroy (&job);
    }
    zlist_destroy (&ids);
    if (code) {
        dbt_disp__reply_error (self, msg->identity, rid, code, err);
        return;
    }
    dbt_disp__reply_begin (self, rid, 200, NULL);
    dbt_mpw_u64 (self->writer, count);
    dbt_disp__reply_end (self, msg->identity, rid, true);
}

//  Janitor: these tables are gone; forget their drop entries.
static void
s_handle_dropped (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    const msgpack_object *drops = dbt_mp_get (msg->map, "drops");
    if (!drops || drops->type != MSGPACK_OBJECT_ARRAY) {
        dbt_disp__reply_error (self, msg->identity, rid, 400, "drops must be an array");
        return;
    }
    dbt_wtxn_t *txn = dbt_disp__txn (self, err);
    int code = txn ? 0 : 503;
    for (uint32_t i = 0; i < drops->via.array.size && !code; i++) {
        const msgpack_object *drop = &drops->via.array.ptr [i];
        uint64_t key = 0;
        char *results = NULL, *table = NULL;
        if (dbt_mp_field_u64 (drop, "key", true, &key, err) == 0
        &&  dbt_mp_field_str (drop, "results", true, &results, err) == 0
        &&  dbt_mp_field_str (drop, "table", true, &table, err) == 0) {
            int rc = dbt_wtxn_del_drop (txn, key, err);
            if (rc == 0) {
                char *name = dbt_job_table_key (results, table);
                uintptr_t pending = (uintptr_t) zhashx_lookup (self->dropping, name);
                if (pending > 1)
                    zhashx_update (self->dropping, name, (void *) (pending - 1));
                else
                    zhashx_delete (self->dropping, name);
                free (name);
            }
            else
            if (rc != DBT_ENOTFOUND)
                code = dbt_disp__fail_code (self);
        }
        free (results);
        free (table);
    }
    if (code)
        dbt_disp__reply_error (self, msg->identity, rid, code, err);
    else {
        dbt_disp__reply_begin (self, rid, 200, NULL);
        dbt_mpw_bool (self->writer, true);
        dbt_disp__reply_end (self, msg->identity, rid, true);
    }
}

//  Janitor: forget finished records older than `before` whose results are
//  not waiting to expire, with their groups once those are that old too.
static void
s_handle_forget (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    char err [DBT_ERRMSG_LEN];
    int64_t before = 0;
    if (dbt_mp_field_i64 (msg->map, "before", true, &before, err)) {
        dbt_disp__reply_error (self, msg->identity, rid, 400, err);
        return;
    }
    zlist_t *ids = s_ids (self, msg, rid, "ids");
    if (!ids)
        return;
    dbt_wtxn_t *txn = dbt_disp__txn (self, err);
    int code = txn ? 0 : 503;
    uint64_t count = 0;
    for (char *id = (char *) zlist_first (ids); id && !code; id = (char *) zlist_next (ids)) {
        dbt_job_t *job = NULL;
        if (dbt_wtxn_job (txn, id, &job, err) == 0 && dbt_state_final (job->state)
        &&  job->finished_ms < before && dbt_job_results_expiry (job) == 0) {
            if (dbt_wtxn_del_job (txn, id, err))
                code = dbt_disp__fail_code (self);
            else
                count++;
            dbt_group_t *group = NULL;
            if (!code && job->group_id && dbt_wtxn_group (txn, job->group_id, &group, err) == 0
            &&  group->created_ms < before && dbt_wtxn_del_group (txn, group->id, err))
                code = dbt_disp__fail_code (self);
            dbt_group_destroy (&group);
        }
        dbt_job_destroy (&job);
    }
    zlist_destroy (&ids);
    if (code) {
        dbt_disp__reply_error (self, msg->identity, rid, code, err);
        return;
    }
    dbt_disp__reply_begin (self, rid, 200, NULL);
    dbt_mpw_u64 (self->writer, count);
    dbt_disp__reply_end (self, msg->identity, rid, true);
}

//  Counters for /metrics.
static void
s_handle_stats (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid)
{
    dbt_mpw_t *w = self->writer;
    dbt_disp__reply_begin (self, rid, 200, NULL);
    dbt_mpw_map (w);
    for (size_t i = 0; i < DBT_DISP_NSTATS; i++)
        dbt_mpw_ku64 (w, dbt_disp__stat_names [i], self->stats [i]);
    uint64_t slots = 0, busy = 0, workers = 0;
    for (dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_first (self->workers); worker;
         worker = (dbt_disp_worker_t *) zhashx_next (self->workers)) {
        if (worker->connected) {
            workers++;
            slots += worker->capacity;
            busy += zhashx_size (worker->inflight);
        }
    }
    dbt_mpw_ku64 (w, "workers", workers);
    dbt_mpw_ku64 (w, "slots", slots);
    dbt_mpw_ku64 (w, "busy", busy);
    //  Each connected worker, for the dashboard's per-node figures.
    dbt_mpw_str (w, "worker_list");
    dbt_mpw_array (w);
    for (dbt_disp_worker_t *worker = (dbt_disp_worker_t *) zhashx_first (self->workers); worker;
         worker = (dbt_disp_worker_t *) zhashx_next (self->workers)) {
        if (!worker->connected)
            continue;
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "node", worker->name ? worker->name : "");
        dbt_mpw_ku64 (w, "capacity", worker->capacity);
        dbt_mpw_ku64 (w, "busy", zhashx_size (worker->inflight));
        dbt_mpw_str (w, "queues");
        dbt_mpw_array (w);
        for (char *q = (char *) zlist_first (worker->queues); q; q = (char *) zlist_next (worker->queues))
            dbt_mpw_str (w, q);
        dbt_mpw_end (w);
        dbt_mpw_end (w);
    }
    dbt_mpw_end (w);
    dbt_mpw_ku64 (w, "drops_pending", zhashx_size (self->dropping));
    if (self->pair) {
        dbt_mpw_str (w, "pair");
        dbt_mpw_map (w);
        dbt_disp__pair_write (self, w);
        dbt_mpw_end (w);
    }
    //  Queues: those with unfinished jobs and those with counters.
    zlist_t *names = dbt_queue_names (self->queue);
    zlist_comparefn (names, (zlist_compare_fn *) strcmp);
    for (void *item = zhashx_first (self->qstats); item; item = zhashx_next (self->qstats)) {
        const char *name = (const char *) zhashx_cursor (self->qstats);
        if (!zlist_exists (names, (void *) name))
            zlist_append (names, (void *) name);
    }
    dbt_mpw_str (w, "queues");
    dbt_mpw_array (w);
    for (char *name = (char *) zlist_first (names); name; name = (char *) zlist_next (names)) {
        dbt_disp_qstats_t *stats = (dbt_disp_qstats_t *) zhashx_lookup (self->qstats, name);
        dbt_mpw_map (w);
        dbt_mpw_kstr (w, "name", name);
        dbt_mpw_ku64 (w, "ready", dbt_queue_ready_count (self->queue, name));
        for (int state = DBT_STATE_PENDING; state <= DBT_STATE_RETRY; state++) {
            if (!dbt_state_final ((dbt_state_t) state))
                dbt_mpw_ku64 (w, dbt_state_name ((dbt_state_t) state),
                              dbt_queue_queue_count (self->queue, name, (dbt_state_t) state));
        }
        dbt_mpw_ku64 (w, "succeeded", stats ? stats->finished [DBT_STATE_SUCCESS] : 0);
        dbt_mpw_ku64 (w, "failed", stats ? stats->finished [DBT_STATE_FAILURE] : 0);
        dbt_mpw_ku64 (w, "retried", stats ? stats->finished [DBT_STATE_RETRY] : 0);
        dbt_mpw_ku64 (w, "rows", stats ? stats->rows : 0);
        dbt_mpw_str (w, "buckets");
        dbt_mpw_array (w);
        for (size_t i = 0; i <= NBUCKETS; i++)
            dbt_mpw_u64 (w, stats ? stats->buckets [i] : 0);
        dbt_mpw_end (w);
        dbt_mpw_ku64 (w, "count", stats ? stats->count : 0);
        dbt_mpw_ku64 (w, "millis", stats ? (uint64_t) (stats->seconds * 1000) : 0);
        dbt_mpw_end (w);
    }
    dbt_mpw_end (w);
    dbt_mpw_end (w);
    zlist_destroy (&names);
    dbt_disp__reply_end (self, msg->identity, rid, false);
}

void
dbt_disp__handle_client (dbt_disp_t *self, dbt_msg_t *msg)
{
    uint64_t rid = 0;
    char err [DBT_ERRMSG_LEN];
    if (dbt_mp_field_u64 (msg->map, "rid", false, &rid, err)) {
        dbt_disp__reply_error (self, msg->identity, 0, 400, err);
        return;
    }
    //  The janitor's commands delete state: only this node's own janitor
    //  (in this process) may send them.
    if ((msg->command == DBT_C_EXPIRE || msg->command == DBT_C_DROPPED || msg->command == DBT_C_FORGET)
    &&  !msg->local) {
        dbt_disp__reply_error (self, msg->identity, rid, 403,
                               "this command is only accepted from the node's own janitor");
        return;
    }
    //  A dispatcher that is not its pair's active member answers only
    //  what needs no schedule; the rest may make it active (or is refused).
    if (self->pair && msg->command != DBT_C_PAIR) {
        const msgpack_object *from = dbt_mp_get (msg->map, "node");
        const char *node;
        size_t len;
        if (from && dbt_mp_str (from, &node, &len) == 0)
            dbt_disp__pair_heard (self, node, len);
    }
    if (self->isolated && (msg->command == DBT_C_SUBMIT || msg->command == DBT_C_CANCEL)) {
        //  Cut off (dbt_dispatcher_pair.c): the partner may be active.
        dbt_disp__reply_begin (self, rid, 503, "this dispatcher hears neither its failover partner "
                               "nor any other node; it takes no writes until it does");
        dbt_mpw_map (self->writer);
        dbt_mpw_kbool (self->writer, "passive", true);
        dbt_mpw_kstr (self->writer, "active", self->config->mesh_partner);
        dbt_mpw_end (self->writer);
        dbt_disp__reply_end (self, msg->identity, rid, false);
        return;
    }
    if (msg->command != DBT_C_PING && msg->command != DBT_C_STATS && msg->command != DBT_C_SNAPSHOT
    &&  msg->command != DBT_C_PAIR && !dbt_disp__serving (self)
    &&  !dbt_disp__pair_admit (self, msg, rid, false, NULL))
        return;
    switch (msg->command) {
        case DBT_C_PAIR:    dbt_disp__handle_pair (self, msg); break;
        case DBT_C_SUBMIT:  s_handle_submit (self, msg, rid); break;
        case DBT_C_CANCEL:  s_handle_cancel (self, msg, rid); break;
        case DBT_C_STATUS:  s_handle_status (self, msg, rid); break;
        case DBT_C_GROUP:   s_handle_group (self, msg, rid); break;
        case DBT_C_PENDING: s_handle_pending (self, msg, rid); break;
        case DBT_C_PING:    s_handle_ping (self, msg, rid); break;
        case DBT_C_EXPIRE:  s_handle_expire (self, msg, rid); break;
        case DBT_C_DROPPED: s_handle_dropped (self, msg, rid); break;
        case DBT_C_FORGET:  s_handle_forget (self, msg, rid); break;
        case DBT_C_STATS:   s_handle_stats (self, msg, rid); break;
        case DBT_C_SNAPSHOT: dbt_disp__handle_snapshot (self, msg, rid); break;
        default:
            dbt_disp__reply_error (self, msg->identity, rid, 400, "unknown command");
    }
}

