/*  =========================================================================
    dbt_dispatcher_pair - the dispatcher's failover pair (Binary Star)

    Part of the dispatcher module (see dbt_dispatcher.h and
    dbt_dispatcher_int.h). With [mesh] backup (on the primary) or primary
    (on the backup) set, two dispatchers serve the same queues: dbt_pair
    decides which one is active; this file does the rest.

    - Heartbeats: each member sends a PAIR message (its state, claim,
      publish endpoint, run, and the last update of the partner it has
      committed) to the partner's ROUTER every quarter heartbeat, and at
      once after committing the partner's updates.
    - Passive: refuses work (clients and workers are told to go to the
      partner; a request that votes may make it take over), follows the
      active partner's records with dbt_follow into its own store: a
      snapshot goes to a side store, then replaces the own store's records
      in one transaction; updates follow.
    - Active, replication = sync: the acknowledgements and job frames of
      a committed turn are held until the partner confirms the turn's last
      update; after sync_timeout without that, the member carries on alone
      (logged, /health) until the partner has caught up.
    - Becoming active: the schedule is rebuilt from the own store (workers
      of STARTED jobs are expected back, as after a restart); becoming
      passive: the schedule and workers are dropped, held messages too
      (their clients time out and ask again, at the active member).
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_dispatcher_int.h"

//  --------------------------------------------------------------------------
//  Helpers

static int64_t
s_heartbeat_ms (dbt_disp_t *self)
{
    int64_t ms = self->config->heartbeat_ms / 4;
    return ms < 25 ? 25 : ms;
}

static dbt_pair_claim_t
s_claim (dbt_disp_t *self)
{
    dbt_pair_claim_t claim = { dbt_store_epoch (self->store), self->pubseq };
    if (self->follow && dbt_follow_live (self->follow))
        claim.seq = dbt_follow_seq (self->follow);
    return claim;
}

static void
s_send_heartbeat (dbt_disp_t *self)
{
    dbt_pair_claim_t claim = s_claim (self);
    dbt_pair_set_claim (self->pair, claim);
    dbt_mpw_t *w = self->writer;
    dbt_mpw_reset (w);
    dbt_mpw_map (w);
    dbt_mpw_kstr (w, "state", dbt_pair_state_name (dbt_pair_state (self->pair)));
    dbt_mpw_kstr (w, "node", self->config->worker_name);
    dbt_mpw_kstr (w, "endpoint", self->config->mesh_bind);
    dbt_mpw_kbool (w, "primary", self->config->mesh_is_primary);
    dbt_mpw_kstr (w, "publish", self->config->mesh_publish);
    dbt_mpw_kstr (w, "instance", self->instance);
    dbt_mpw_ku64 (w, "epoch", claim.epoch);
    dbt_mpw_ku64 (w, "seq", claim.seq);
    //  What of the partner's records this member has committed: the run it
    //  follows and the last update of it.
    bool following = self->follow && dbt_follow_live (self->follow) && self->partner_instance;
    dbt_mpw_kstr (w, "follows", following ? self->partner_instance : NULL);
    dbt_mpw_ku64 (w, "confirmed", following ? dbt_follow_seq (self->follow) : 0);
    dbt_mpw_end (w);
    dbt_msg_send (self->pair_dealer, NULL, DBT_PROTO_CLIENT, DBT_C_PAIR, w);
    dbt_mpw_reset (w);
    self->pair_due = dbt_clock_ms () + s_heartbeat_ms (self);
}

//  --------------------------------------------------------------------------
//  Following the partner (passive)

static dbt_store_t *
s_fresh (void *arg, char *err)
{
    dbt_disp_t *self = (dbt_disp_t *) arg;
    self->copy_dir = dbt_printf ("%s/pair-copy.%u", self->config->data_dir, ++self->copies);
    self->copy = dbt_store_open_replica (self->copy_dir, self->config->state_map_max, err);
    if (!self->copy)
        zstr_free (&self->copy_dir);
    return self->copy;
}

static void
s_drop (void *arg, dbt_store_t *store)
{
    dbt_disp_t *self = (dbt_disp_t *) arg;
    if (store && store == self->copy) {
        dbt_store_destroy (&self->copy);
        dbt_store_remove_replica (self->copy_dir);
        zstr_free (&self->copy_dir);
    }
}

//  The partner's snapshot is complete: it replaces the own store's
//  records in one transaction; updates go to the own store from now on.
static dbt_store_t *
s_live (void *arg, dbt_store_t *store, uint64_t seq)
{
    dbt_disp_t *self = (dbt_disp_t *) arg;
    char err [DBT_ERRMSG_LEN] = "";
    dbt_pair_claim_t mine = s_claim (self), theirs = dbt_pair_partner_claim (self->pair);
    if (mine.epoch > theirs.epoch || (mine.epoch == theirs.epoch && mine.seq > seq))
        dbt_log (DBT_LOG_WARN, "pair: replacing this node's records (epoch %" PRIu64 ", update %"
                 PRIu64 ") with the active partner's (epoch %" PRIu64 ", update %" PRIu64 "), "
                 "which are older", mine.epoch, mine.seq, theirs.epoch, seq);
    int64_t started = dbt_clock_ms ();
    dbt_wtxn_t *txn = dbt_store_begin (self->store, err);
    int rc = txn ? dbt_wtxn_copy (txn, store, err) : -1;
    if (rc == 0)
        rc = dbt_wtxn_set_epoch (txn, theirs.epoch);
    if (rc == 0)
        rc = dbt_wtxn_commit (&txn, err);
    if (txn)
        dbt_wtxn_abort (&txn);
    if (rc) {
        dbt_log (DBT_LOG_ERROR, "pair: cannot take the partner's records: %s", err);
        return NULL;                //  stops; the next heartbeat follows again
    }
    self->pubseq = seq;
    dbt_log (DBT_LOG_INFO, "pair: this node holds a copy of '%s' at update %" PRIu64 " (%" PRId64 " ms)",
             self->partner_node ? self->partner_node : "partner", seq, dbt_clock_ms () - started);
    return self->store;
}

static void
s_applied (void *arg, uint64_t seq, int64_t delay_ms)
{
    dbt_disp_t *self = (dbt_disp_t *) arg;
    self->pubseq = seq;
    s_send_heartbeat (self);        //  the partner waits for this confirmation
}

static const dbt_follow_fns_t s_fns = { s_fresh, s_live, s_drop, s_applied };

//  Follow the partner as its last heartbeat describes it.
static void
s_follow (dbt_disp_t *self)
{
    if (!self->partner_publish || !self->partner_instance)
        return;
    if (!self->follow) {
        self->follow = dbt_follow_new (self->partner_node ? self->partner_node : "partner",
                                       self->config->heartbeat_ms, &s_fns, self);
        dbt_follow_set_curve (self->follow, self->config->curve);
    }
    dbt_follow_target (self->follow, self->config->mesh_partner, self->partner_publish,
                       self->partner_instance);
}

//  --------------------------------------------------------------------------
//  Changes of state

static void
s_drop_held (dbt_disp_t *self)
{
    dbt_disp_out_t *out;
    while ((out = (dbt_disp_out_t *) zlistx_detach (self->held, NULL)))
        dbt_disp__out_free ((void **) &out);
}

//  takeover: by a request while the partner is silent (a new epoch), not
//  by comparing claims with a partner heard.
static void
s_become_active (dbt_disp_t *self, dbt_pair_state_t was, bool takeover, const char *why)
{
    char err [DBT_ERRMSG_LEN] = "";
    if (self->follow)
        dbt_follow_stop (self->follow);
    s_drop (self, self->copy);
    dbt_store_set_journal (self->store, true);
    //  A takeover starts a new epoch of the records' history, written
    //  with this turn's commit: it outranks the partner's if both ever
    //  claim to be active.
    dbt_pair_claim_t mine = s_claim (self), theirs = dbt_pair_partner_claim (self->pair);
    uint64_t epoch = (mine.epoch > theirs.epoch ? mine.epoch : theirs.epoch) + (takeover ? 1 : 0);
    dbt_wtxn_t *txn = dbt_disp__txn (self, err);
    if (txn) {
        if (mine.seq > dbt_wtxn_pubseq (txn))
            dbt_wtxn_set_pubseq (txn, mine.seq);
        if (epoch != mine.epoch)
            dbt_wtxn_set_epoch (txn, epoch);
    }
    self->pubseq = mine.seq;
    int loaded = dbt_disp__rebuild (self);
    self->alone = !dbt_pair_partner_alive (self->pair, dbt_clock_ms ());
    self->confirmed = 0;
    if (takeover && was != DBT_PAIR_PRIMARY)
        self->failovers++;
    dbt_log (takeover ? DBT_LOG_WARN : DBT_LOG_INFO,
             "pair: this node's dispatcher is now ACTIVE (%s); epoch %" PRIu64 ", update %" PRIu64
             ", %d unfinished jobs loaded%s", why, epoch, mine.seq, loaded,
             self->alone ? "; carrying on alone until the partner follows" : "");
    dbt_routes_set_own_role (self->routes, DBT_PAIR_ACTIVE);
    if (self->view)
        dbt_view_set_own_node (self->view, self->config->worker_name);
    s_send_heartbeat (self);
    self->hugz_due = 0;             //  replicas hear of it at once
}

static void
s_become_passive (dbt_disp_t *self, const char *why)
{
    s_drop_held (self);
    dbt_disp__drop_workers (self, "passive");
    dbt_queue_clear (self->queue);
    dbt_store_set_journal (self->store, false);
    self->alone = false;
    dbt_log (DBT_LOG_WARN, "pair: this node's dispatcher is now PASSIVE (%s); it follows '%s' and "
             "refuses work", why, self->partner_node ? self->partner_node : self->config->mesh_partner);
    dbt_routes_set_own_role (self->routes, DBT_PAIR_PASSIVE);
    if (self->view && self->partner_node)
        dbt_view_set_own_node (self->view, self->partner_node);
    s_follow (self);
    s_send_heartbeat (self);
}

//  --------------------------------------------------------------------------
//  The module's entry points

int
dbt_disp__pair_start (dbt_disp_t *self)
{
    if (!self->config->mesh_partner)
        return 0;
    self->pair = dbt_pair_new (self->config->mesh_is_primary, self->config->heartbeat_ms,
                               dbt_clock_ms ());
    self->held = zlistx_new ();
    zlistx_set_destructor (self->held, dbt_disp__out_free);
    self->pair_dealer = zsock_new (ZMQ_DEALER);
    dbt_msg_limit (self->pair_dealer);
    zsock_set_linger (self->pair_dealer, 0);
    zsock_set_sndtimeo (self->pair_dealer, 0);
    zsock_set_sndhwm (self->pair_dealer, 100);
    zsock_set_immediate (self->pair_dealer, 1);     //  no stale heartbeats queued for later
    if (dbt_curve_apply (self->config->curve, self->pair_dealer, DBT_CURVE_CLIENT, NULL)
    ||  zsock_connect (self->pair_dealer, "%s", self->config->mesh_partner)) {
        dbt_log (DBT_LOG_ERROR, "pair: cannot connect to partner '%s'", self->config->mesh_partner);
        return -1;
    }
    //  Nothing is dispatched until the pair has decided.
    dbt_store_set_journal (self->store, false);
    dbt_pair_set_claim (self->pair, s_claim (self));
    dbt_routes_set_own_role (self->routes, dbt_pair_state (self->pair));
    dbt_log (DBT_LOG_INFO, "pair: %s of a failover pair with %s (replication %s); waiting for it",
             self->config->mesh_is_primary ? "primary" : "backup", self->config->mesh_partner,
             self->config->pair_sync ? "sync" : "async");
    s_send_heartbeat (self);
    return 0;
}

void
dbt_disp__pair_stop (dbt_disp_t *self)
{
    if (!self->pair)
        return;
    dbt_follow_destroy (&self->follow);
    s_drop (self, self->copy);
    zlistx_destroy (&self->held);
    zsock_destroy (&self->pair_dealer);
    dbt_pair_destroy (&self->pair);
    free (self->partner_node);
    free (self->partner_publish);
    free (self->partner_instance);
}

bool
dbt_disp__serving (dbt_disp_t *self)
{
    return !self->pair || dbt_pair_state (self->pair) == DBT_PAIR_ACTIVE;
}

size_t
dbt_disp__pair_items (dbt_disp_t *self, zmq_pollitem_t *items)
{
    return self->follow ? dbt_follow_items (self->follow, items) : 0;
}

int64_t
dbt_disp__pair_timeout (dbt_disp_t *self)
{
    if (!self->pair)
        return INT64_MAX;
    int64_t wait = self->pair_due - dbt_clock_ms ();
    if (zlistx_size (self->held) && wait > 10)
        wait = 10;
    return wait;
}

//  Send what the partner has confirmed; carry on alone after the timeout.
static void
s_release (dbt_disp_t *self)
{
    int64_t now = dbt_clock_ms ();
    //  Cut off, maybe: what the partner has not confirmed waits (a
    //  partner that takes over knows nothing of it).
    if (self->isolated || dbt_disp__pair_quiet (self))
        return;
    dbt_disp_out_t *out = (dbt_disp_out_t *) zlistx_first (self->held);
    if (out && now - out->held_at > self->config->sync_timeout_ms) {
        self->alone = true;
        dbt_log (DBT_LOG_WARN, "pair: partner '%s' has not confirmed update %" PRIu64 " within %"
                 PRId64 " ms; carrying on alone: acknowledged changes are on this node only until "
                 "it catches up", self->partner_node ? self->partner_node : self->config->mesh_partner,
                 out->seq, self->config->sync_timeout_ms);
    }
    while ((out = (dbt_disp_out_t *) zlistx_first (self->held))
       &&  (self->alone || out->seq <= self->confirmed)) {
        out = (dbt_disp_out_t *) zlistx_detach (self->held, NULL);
        dbt_disp__send_out (self, out);
        dbt_disp__out_free ((void **) &out);
    }
}

//  An active member that has heard other nodes but now hears neither its
//  partner nor any of them for the liveness period is most likely cut
//  off from the rest: the partner may take over (on the others' votes)
//  and run its jobs again. It stops its own node's workers' jobs before
//  the partner's liveness period would give them to other workers, and
//  dispatches and accepts no writes until it hears someone again (then
//  it carries on, or steps down if the partner has taken over). A member
//  that never heard another node (two hosts) is never isolated. Until it
//  is, workers that fall silent are not taken as lost (their jobs would
//  go to this node's own workers while the partner gives them to others):
//  see dbt_disp__pair_quiet.
static void
s_isolation (dbt_disp_t *self)
{
    int64_t now = dbt_clock_ms ();
    int64_t liveness = self->config->heartbeat_ms * self->config->heartbeat_liveness;
    bool cut = dbt_disp__serving (self) && self->remote_heard
            && !dbt_pair_partner_alive (self->pair, now) && now - self->remote_heard > liveness;
    if (cut && !self->isolated) {
        self->isolated = true;
        dbt_log (DBT_LOG_WARN, "pair: this node has heard neither its partner nor any other node "
                 "for %" PRId64 " ms: it is cut off; stopping its jobs on the workers it still "
                 "reaches, dispatching nothing and refusing writes until it hears one",
                 now - self->remote_heard);
        dbt_disp__fence_workers (self, "the dispatcher is cut off from its failover partner");
    }
    else
    if (cut)
        self->rejoin_at = 0;
    else
    if (self->isolated) {
        //  Other nodes are back but the partner is still silent: wait one
        //  partner expiry, so that a partner that took over meanwhile is
        //  heard (and this member steps down) before it dispatches again.
        bool partner = dbt_pair_partner_alive (self->pair, now);
        if (!partner && !self->rejoin_at)
            self->rejoin_at = now + self->config->heartbeat_ms;
        if (partner || now >= self->rejoin_at) {
            self->isolated = false;
            self->rejoin_at = 0;
            dbt_log (DBT_LOG_INFO, "pair: this node hears %s again", partner ? "its partner" : "other nodes");
        }
    }
}

void
dbt_disp__pair_tick (dbt_disp_t *self)
{
    if (!self->pair)
        return;
    if (self->pair_next) {
        dbt_pair_state_t next = self->pair_next;
        self->pair_next = 0;
        if (next == DBT_PAIR_PASSIVE)
            s_become_passive (self, self->pair_why);
        else
        if (next == DBT_PAIR_ACTIVE)
            s_become_active (self, DBT_PAIR_PRIMARY, false, self->pair_why);
    }
    if (self->follow && dbt_pair_state (self->pair) == DBT_PAIR_PASSIVE)
        dbt_follow_handle (self->follow);
    if (dbt_pair_state (self->pair) == DBT_PAIR_ACTIVE && self->config->pair_sync)
        s_release (self);
    s_isolation (self);
    if (dbt_clock_ms () >= self->pair_due)
        s_send_heartbeat (self);
}

void
dbt_disp__handle_pair (dbt_disp_t *self, dbt_msg_t *msg)
{
    char err [DBT_ERRMSG_LEN];
    char *state = NULL, *endpoint = NULL, *node = NULL, *publish = NULL, *instance = NULL,
         *follows = NULL;
    uint64_t epoch = 0, seq = 0, confirmed = 0;
    bool primary = false;
    if (!self->pair
    ||  dbt_mp_field_str (msg->map, "state", true, &state, err)
    ||  dbt_mp_field_str (msg->map, "endpoint", true, &endpoint, err)
    ||  dbt_mp_field_str (msg->map, "node", true, &node, err)
    ||  dbt_mp_field_str (msg->map, "publish", true, &publish, err)
    ||  dbt_mp_field_str (msg->map, "instance", true, &instance, err)
    ||  dbt_mp_field_str (msg->map, "follows", false, &follows, err)
    ||  dbt_mp_field_u64 (msg->map, "epoch", true, &epoch, err)
    ||  dbt_mp_field_u64 (msg->map, "seq", true, &seq, err)
    ||  dbt_mp_field_u64 (msg->map, "confirmed", false, &confirmed, err)
    ||  dbt_mp_field_bool (msg->map, "primary", true, &primary, err)
    ||  !dbt_pair_state_named (state, strlen (state))) {
        self->stats [ST_MALFORMED]++;
        dbt_log (DBT_LOG_DEBUG, "pair: ignoring a PAIR message: %s", self->pair
                 ? err : "this dispatcher is not in a pair");
        goto done;
    }
    if (primary == self->config->mesh_is_primary) {
        //  Both say primary (or backup): the configs disagree.
        self->stats [ST_MALFORMED]++;
        int64_t now = dbt_clock_ms ();
        if (now >= self->warn_due) {
            dbt_log (DBT_LOG_ERROR, "pair: '%s' (%s) says it is the %s too: set [mesh] backup on "
                     "the primary and [mesh] primary on the backup", node, endpoint,
                     primary ? "primary" : "backup");
            self->warn_due = now + 10000;
        }
        goto done;
    }
    if (!self->partner_instance || !streq (self->partner_instance, instance)) {
        dbt_log (DBT_LOG_INFO, "pair: partner '%s' (%s) heard, run %s, %s", node, endpoint, instance, state);
        dbt_str_move (&self->partner_instance, &instance);
    }
    dbt_str_move (&self->partner_node, &node);
    dbt_str_move (&self->partner_publish, &publish);
    dbt_pair_state_t was = dbt_pair_state (self->pair);
    dbt_pair_state_t peer = dbt_pair_state_named (state, strlen (state));
    dbt_pair_set_claim (self->pair, s_claim (self));
    const char *why = NULL;
    dbt_pair_state_t next = dbt_pair_heard (self->pair, peer, (dbt_pair_claim_t) { epoch, seq },
                                            dbt_clock_ms (), &why);
    if (next != was) {
        //  Applied after this turn's commit, never in the middle of it.
        self->pair_next = next;
        self->pair_why = why;
    }
    if (next == DBT_PAIR_ACTIVE && follows && streq (follows, self->instance)) {
        if (confirmed > self->confirmed)
            self->confirmed = confirmed;
        if (self->alone && self->confirmed >= self->pubseq) {
            self->alone = false;
            dbt_log (DBT_LOG_INFO, "pair: partner '%s' has caught up (update %" PRIu64 "); "
                     "acknowledging only what both members committed again", self->partner_node,
                     self->confirmed);
        }
    }
    if (next == DBT_PAIR_PASSIVE && was == DBT_PAIR_PASSIVE && peer == DBT_PAIR_ACTIVE)
        s_follow (self);            //  a new run of the partner is followed anew
done:
    free (state);
    free (endpoint);
    free (node);
    free (publish);
    free (instance);
    free (follows);
}

void
dbt_disp__pair_heard (dbt_disp_t *self, const char *node, size_t len)
{
    const char *own = self->config->worker_name;
    if (self->pair && node && len && !(strlen (own) == len && memcmp (own, node, len) == 0))
        self->remote_heard = dbt_clock_ms ();
}

bool
dbt_disp__pair_quiet (dbt_disp_t *self)
{
    int64_t now = dbt_clock_ms ();
    if (!self->pair || !self->remote_heard || !dbt_disp__serving (self)
    ||  dbt_pair_partner_alive (self->pair, now)) {
        self->was_quiet = false;
        self->quiet_until = 0;
        return false;
    }
    if (now - self->remote_heard > self->config->heartbeat_ms * 3 / 2) {
        self->was_quiet = true;
        self->quiet_until = 0;
        return true;
    }
    //  Others heard again after the quiet, but not the partner: it may
    //  have taken over meanwhile, and if so its heartbeat (a quarter of an
    //  interval) makes this one step down as soon as a reconnect lets it
    //  through. Stay quiet two intervals for it rather than dispatch from
    //  records the partner may have moved past.
    if (self->was_quiet) {
        if (!self->quiet_until)
            self->quiet_until = now + 2 * self->config->heartbeat_ms;
        if (now < self->quiet_until)
            return true;
        self->was_quiet = false;
        self->quiet_until = 0;
    }
    return false;
}

//  A vote from this member's own node (its workers, its HTTP front)
//  cannot tell a lost partner from a cut between the two hosts; it
//  counts only while no other node talks to this member (a deployment
//  of two hosts). Callers on other hosts that still reach this member
//  and do not vote say the partner is alive.
static bool
s_vote_counts (dbt_disp_t *self, const char *voter)
{
    if (!voter || !streq (voter, self->config->worker_name))
        return true;
    int64_t liveness = self->config->heartbeat_ms * self->config->heartbeat_liveness;
    if (self->remote_heard && dbt_clock_ms () - self->remote_heard < liveness) {
        dbt_log (DBT_LOG_DEBUG, "pair: not counting a vote from this node: other nodes reach it "
                 "and do not vote");
        return false;
    }
    return true;
}

bool
dbt_disp__pair_admit (dbt_disp_t *self, dbt_msg_t *msg, uint64_t rid, bool worker,
                      const char *voter)
{
    if (dbt_disp__serving (self))
        return true;
    char err [DBT_ERRMSG_LEN];
    bool vote = false;
    char *named = NULL;
    dbt_mp_field_bool (msg->map, "vote", false, &vote, err);
    if (vote && !voter)
        dbt_mp_field_str (msg->map, "voter", false, &named, err);
    vote = vote && s_vote_counts (self, voter ? voter : named);
    free (named);
    dbt_pair_state_t was = dbt_pair_state (self->pair);
    const char *why = NULL;
    //  (Not while stepping down: that waits for the end of the turn.)
    if (self->pair_next != DBT_PAIR_PASSIVE && dbt_pair_request (self->pair, vote, dbt_clock_ms (), &why)) {
        self->pair_next = 0;
        s_become_active (self, was, true, why ? why : "a request arrived");
        return true;
    }
    const char *partner = self->config->mesh_partner;
    char *message = dbt_printf ("this dispatcher is the %s member of a failover pair%s; its "
                                "partner %s serves the queues", dbt_pair_state_name (was),
                                was == DBT_PAIR_PASSIVE ? "" : " and is still starting", partner);
    if (worker) {
        dbt_mpw_map (self->writer);
        dbt_mpw_kstr (self->writer, "reason", message);
        dbt_mpw_kbool (self->writer, "passive", true);
        dbt_mpw_kstr (self->writer, "active", partner);
        dbt_mpw_end (self->writer);
        dbt_msg_send (self->router, msg->identity, DBT_PROTO_WORKER, DBT_W_DISCONNECT, self->writer);
    }
    else {
        dbt_disp__reply_begin (self, rid, 503, message);
        dbt_mpw_map (self->writer);
        dbt_mpw_kbool (self->writer, "passive", true);
        dbt_mpw_kstr (self->writer, "active", partner);
        dbt_mpw_end (self->writer);
        dbt_disp__reply_end (self, msg->identity, rid, false);
    }
    free (message);
    return false;
}

bool
dbt_disp__pair_hold (dbt_disp_t *self, dbt_disp_out_t *out)
{
    if (!self->pair || !self->config->pair_sync || self->alone
    ||  (out->kind != OUT_ACK && out->kind != OUT_JOB))
        return false;
    out->seq = self->pubseq;
    out->held_at = dbt_clock_ms ();
    zlistx_add_end (self->held, out);
    return true;
}

void
dbt_disp__pair_write (dbt_disp_t *self, dbt_mpw_t *writer)
{
    if (!self->pair)
        return;
    dbt_mpw_kstr (writer, "role", dbt_pair_state_name (dbt_pair_state (self->pair)));
    dbt_mpw_kstr (writer, "partner", self->config->mesh_partner);
    dbt_mpw_kstr (writer, "partner_node", self->partner_node);
    dbt_mpw_kbool (writer, "partner_up", dbt_pair_partner_alive (self->pair, dbt_clock_ms ()));
    dbt_mpw_kstr (writer, "replication", self->config->pair_sync ? "sync" : "async");
    dbt_mpw_kbool (writer, "alone", dbt_disp__serving (self) && self->alone);
    dbt_mpw_kbool (writer, "isolated", self->isolated);
    dbt_mpw_ku64 (writer, "confirmed", self->confirmed);
    dbt_mpw_ku64 (writer, "epoch", dbt_store_epoch (self->store));
    dbt_mpw_ku64 (writer, "failovers", self->failovers);
    dbt_mpw_kbool (writer, "primary", self->config->mesh_is_primary);
}
