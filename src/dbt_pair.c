/*  =========================================================================
    dbt_pair - the failover pair's state machine (Binary Star)

    See dbt_pair.h. The machine keeps the partner's last heartbeat (state,
    claim, time) and this member's claim; every decision compares claims
    the same way on both members, so the two reach opposite states from
    the same facts.
    =========================================================================
*/
#include "dbt_classes.h"

struct _dbt_pair_t {
    bool primary;               //  configured as the primary
    int64_t expiry;             //  ms without a heartbeat before the partner is lost
    dbt_pair_state_t state;
    dbt_pair_claim_t claim;     //  this member's
    dbt_pair_state_t peer;      //  partner's state as last heard, 0 = never
    dbt_pair_claim_t peer_claim;
    int64_t peer_expires;       //  monotonic ms the partner counts as lost
};

static const char *const s_names [] = { NULL, "primary", "backup", "active", "passive" };

dbt_pair_t *
dbt_pair_new (bool primary, int64_t expiry_ms, int64_t now)
{
    dbt_pair_t *self = (dbt_pair_t *) dbt_malloc (sizeof (dbt_pair_t));
    self->primary = primary;
    self->expiry = expiry_ms;
    self->state = primary ? DBT_PAIR_PRIMARY : DBT_PAIR_BACKUP;
    self->peer_expires = now + expiry_ms;
    return self;
}

void
dbt_pair_destroy (dbt_pair_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

dbt_pair_state_t
dbt_pair_state (dbt_pair_t *self)
{
    return self->state;
}

const char *
dbt_pair_state_name (dbt_pair_state_t state)
{
    return state >= DBT_PAIR_PRIMARY && state <= DBT_PAIR_PASSIVE ? s_names [state] : NULL;
}

dbt_pair_state_t
dbt_pair_state_named (const char *name, size_t len)
{
    for (int state = DBT_PAIR_PRIMARY; state <= DBT_PAIR_PASSIVE; state++)
        if (strlen (s_names [state]) == len && memcmp (s_names [state], name, len) == 0)
            return (dbt_pair_state_t) state;
    return (dbt_pair_state_t) 0;
}

void
dbt_pair_set_claim (dbt_pair_t *self, dbt_pair_claim_t claim)
{
    self->claim = claim;
}

//  True when this member's claim beats the partner's.
static bool
s_better (dbt_pair_t *self)
{
    if (self->claim.epoch != self->peer_claim.epoch)
        return self->claim.epoch > self->peer_claim.epoch;
    if (self->claim.seq != self->peer_claim.seq)
        return self->claim.seq > self->peer_claim.seq;
    return self->primary;
}

dbt_pair_state_t
dbt_pair_heard (dbt_pair_t *self, dbt_pair_state_t peer, dbt_pair_claim_t claim, int64_t now,
                const char **why)
{
    const char *reason = NULL;
    self->peer = peer;
    self->peer_claim = claim;
    self->peer_expires = now + self->expiry;
    dbt_pair_state_t next = self->state;
    if (peer == DBT_PAIR_ACTIVE) {
        if (self->state != DBT_PAIR_ACTIVE) {
            next = DBT_PAIR_PASSIVE;
            reason = "the partner is active";
        }
        else
        if (!s_better (self)) {
            next = DBT_PAIR_PASSIVE;
            reason = "both members were active; the partner took over later, this one steps down";
        }
    }
    else
    if (peer >= DBT_PAIR_PRIMARY && self->state != DBT_PAIR_ACTIVE) {
        //  Neither is active: the better claim takes the queues.
        if (s_better (self)) {
            next = DBT_PAIR_ACTIVE;
            reason = "neither member was active and this one holds the newer records";
        }
        else
        if (self->state != DBT_PAIR_PASSIVE) {
            next = DBT_PAIR_PASSIVE;
            reason = "the partner holds the newer records";
        }
    }
    if (next != self->state && why)
        *why = reason;
    self->state = next;
    return next;
}

bool
dbt_pair_request (dbt_pair_t *self, bool vote, int64_t now, const char **why)
{
    if (self->state == DBT_PAIR_ACTIVE)
        return true;
    if (now < self->peer_expires)
        return false;                   //  the partner is alive: it serves
    if (self->state == DBT_PAIR_PRIMARY || vote) {
        self->state = DBT_PAIR_ACTIVE;
        if (why)
            *why = self->peer ? "the partner went silent and a caller could not reach it"
                              : "the partner has not been heard since this member started";
        return true;
    }
    return false;
}

bool
dbt_pair_partner_alive (dbt_pair_t *self, int64_t now)
{
    return self->peer && now < self->peer_expires;
}

dbt_pair_state_t
dbt_pair_partner_state (dbt_pair_t *self)
{
    return self->peer;
}

dbt_pair_claim_t
dbt_pair_partner_claim (dbt_pair_t *self)
{
    return self->peer_claim;
}

void
dbt_pair_step_down (dbt_pair_t *self)
{
    self->state = DBT_PAIR_PASSIVE;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: a table of situations, each run on both members, which must
//  end in opposite states whenever both hear each other.

typedef struct {
    const char *what;
    dbt_pair_state_t a, b;      //  states before (a is the primary)
    dbt_pair_claim_t ca, cb;    //  claims
    dbt_pair_state_t want_a, want_b;
} s_case_t;

void
dbt_pair_test (bool verbose)
{
    const s_case_t cases [] = {
        { "fresh pair", DBT_PAIR_PRIMARY, DBT_PAIR_BACKUP, { 0, 0 }, { 0, 0 },
          DBT_PAIR_ACTIVE, DBT_PAIR_PASSIVE },
        { "primary restarts, backup took over", DBT_PAIR_PRIMARY, DBT_PAIR_ACTIVE, { 1, 90 }, { 2, 80 },
          DBT_PAIR_PASSIVE, DBT_PAIR_ACTIVE },
        { "backup restarts", DBT_PAIR_ACTIVE, DBT_PAIR_BACKUP, { 3, 9 }, { 3, 7 },
          DBT_PAIR_ACTIVE, DBT_PAIR_PASSIVE },
        { "primary's store lost", DBT_PAIR_PRIMARY, DBT_PAIR_PASSIVE, { 0, 0 }, { 0, 500 },
          DBT_PAIR_PASSIVE, DBT_PAIR_ACTIVE },
        { "primary back, no takeover", DBT_PAIR_PRIMARY, DBT_PAIR_PASSIVE, { 0, 500 }, { 0, 500 },
          DBT_PAIR_ACTIVE, DBT_PAIR_PASSIVE },
        { "both passive", DBT_PAIR_PASSIVE, DBT_PAIR_PASSIVE, { 4, 10 }, { 4, 12 },
          DBT_PAIR_PASSIVE, DBT_PAIR_ACTIVE },
        { "dual active after a partition", DBT_PAIR_ACTIVE, DBT_PAIR_ACTIVE, { 5, 100 }, { 6, 60 },
          DBT_PAIR_PASSIVE, DBT_PAIR_ACTIVE },
        { "dual active, same epoch", DBT_PAIR_ACTIVE, DBT_PAIR_ACTIVE, { 6, 100 }, { 6, 100 },
          DBT_PAIR_ACTIVE, DBT_PAIR_PASSIVE },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        const s_case_t *c = &cases [i];
        dbt_pair_t *a = dbt_pair_new (true, 1000, 0);
        dbt_pair_t *b = dbt_pair_new (false, 1000, 0);
        a->state = c->a;
        b->state = c->b;
        dbt_pair_set_claim (a, c->ca);
        dbt_pair_set_claim (b, c->cb);
        //  Each hears the other's state before either moved, then once more.
        dbt_pair_state_t sa = a->state, sb = b->state;
        dbt_pair_heard (a, sb, c->cb, 10, NULL);
        dbt_pair_heard (b, sa, c->ca, 10, NULL);
        dbt_pair_heard (a, b->state, c->cb, 20, NULL);
        dbt_pair_heard (b, a->state, c->ca, 20, NULL);
        if (a->state != c->want_a || b->state != c->want_b) {
            fprintf (stderr, "pair: case '%s': %s/%s, wanted %s/%s\n", c->what,
                     dbt_pair_state_name (a->state), dbt_pair_state_name (b->state),
                     dbt_pair_state_name (c->want_a), dbt_pair_state_name (c->want_b));
            assert (false);
        }
        dbt_pair_destroy (&a);
        dbt_pair_destroy (&b);
    }
    //  Requests. A starting primary serves once the expiry passed without a
    //  word from its partner; a passive backup only on a vote, and only when
    //  the partner is silent.
    const char *why = NULL;
    dbt_pair_t *a = dbt_pair_new (true, 1000, 0);
    assert (!dbt_pair_request (a, false, 500, &why));
    assert (dbt_pair_request (a, false, 1000, &why) && why);
    assert (dbt_pair_state (a) == DBT_PAIR_ACTIVE);
    dbt_pair_destroy (&a);
    dbt_pair_t *b = dbt_pair_new (false, 1000, 0);
    dbt_pair_heard (b, DBT_PAIR_ACTIVE, (dbt_pair_claim_t) { 0, 5 }, 100, NULL);
    assert (dbt_pair_state (b) == DBT_PAIR_PASSIVE);
    assert (dbt_pair_partner_alive (b, 1000));
    assert (!dbt_pair_request (b, true, 1000, NULL));       //  partner alive: no takeover
    assert (!dbt_pair_request (b, false, 1200, NULL));      //  silent, but no vote
    assert (!dbt_pair_partner_alive (b, 1200));
    why = NULL;
    assert (dbt_pair_request (b, true, 1200, &why) && why); //  silent and a vote
    assert (dbt_pair_state (b) == DBT_PAIR_ACTIVE);
    assert (dbt_pair_partner_state (b) == DBT_PAIR_ACTIVE);
    assert (dbt_pair_partner_claim (b).seq == 5);
    //  The old primary comes back and steps aside.
    dbt_pair_set_claim (b, (dbt_pair_claim_t) { 1, 5 });
    assert (dbt_pair_heard (b, DBT_PAIR_PRIMARY, (dbt_pair_claim_t) { 0, 7 }, 5000, NULL) == DBT_PAIR_ACTIVE);
    dbt_pair_step_down (b);
    assert (dbt_pair_state (b) == DBT_PAIR_PASSIVE);
    dbt_pair_destroy (&b);
    //  Names both ways.
    for (int state = DBT_PAIR_PRIMARY; state <= DBT_PAIR_PASSIVE; state++) {
        const char *name = dbt_pair_state_name ((dbt_pair_state_t) state);
        assert (dbt_pair_state_named (name, strlen (name)) == (dbt_pair_state_t) state);
    }
    assert (dbt_pair_state_named ("act", 3) == 0);
    assert (dbt_pair_state_name ((dbt_pair_state_t) 9) == NULL);
    if (verbose)
        printf ("pair: ok\n");
}
#endif  //  DBT_SELFTEST
