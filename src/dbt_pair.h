/*  =========================================================================
    dbt_pair - the failover pair's state machine (Binary Star)

    Two dispatchers, a primary and a backup, serve the same queues; one is
    active (dispatches, answers clients), the other passive (follows the
    active's records into its own store and refuses work). This class is
    the decision only, without sockets or clocks of its own: the
    dispatcher feeds it what it hears from its partner (a PAIR heartbeat
    with the partner's state and claim) and each request that arrives, and
    reads the state back.

    States: PRIMARY and BACKUP while starting (nothing heard yet), ACTIVE,
    PASSIVE. The rules (zguide chapter 4, Binary Star, with two changes):

    - hearing the partner ACTIVE makes a starting or passive member
      PASSIVE;
    - when neither is active (both starting, one starting and one passive,
      or both passive), the better claim becomes ACTIVE and the other
      PASSIVE. A claim is what a member's store holds: (epoch, seq), the
      number of takeovers in its history and the last update of it; the
      primary wins a tie. Binary Star lets the primary win always; here a
      primary whose store was lost (claim 0, 0) does not wipe out the
      copy its backup holds: the backup becomes active instead;
    - two ACTIVE members (after a partition heals) resolve the same way:
      the later takeover (higher epoch) stays, the other steps down;
    - a starting primary whose partner has been silent for the expiry
      becomes ACTIVE on the first request (a backup may be down for good);
    - a passive or starting backup whose partner has been silent for the
      expiry becomes ACTIVE on a request that votes for it: the caller
      could not reach the partner itself. A request that merely went to
      the wrong member (a stale route) is not a vote, so a partition
      between the two members alone, with callers reaching both, never
      makes a second active member.
    =========================================================================
*/
#ifndef DBT_PAIR_H_INCLUDED
#define DBT_PAIR_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    DBT_PAIR_PRIMARY = 1,       //  starting as the primary
    DBT_PAIR_BACKUP,            //  starting as the backup
    DBT_PAIR_ACTIVE,
    DBT_PAIR_PASSIVE
} dbt_pair_state_t;

//  What a member's store holds: takeovers in its history, last update.
typedef struct {
    uint64_t epoch;
    uint64_t seq;
} dbt_pair_claim_t;

typedef struct _dbt_pair_t dbt_pair_t;

//  Create the machine of the primary (primary true) or the backup; the
//  partner counts as lost after expiry_ms without a heartbeat. now is
//  monotonic ms: the partner is first considered lost at now + expiry.
dbt_pair_t *
    dbt_pair_new (bool primary, int64_t expiry_ms, int64_t now);

//  Destroy; nulls the pointer.
void
    dbt_pair_destroy (dbt_pair_t **self_p);

//  Current state.
dbt_pair_state_t
    dbt_pair_state (dbt_pair_t *self);

//  The state's name: "primary", "backup", "active", "passive"; NULL for
//  anything else. And the state named so, 0 for an unknown name.
const char *
    dbt_pair_state_name (dbt_pair_state_t state);
dbt_pair_state_t
    dbt_pair_state_named (const char *name, size_t len);

//  This member's claim, kept current by the owner.
void
    dbt_pair_set_claim (dbt_pair_t *self, dbt_pair_claim_t claim);

//  The partner's heartbeat arrived at now, saying its state and claim.
//  Returns the new state (maybe unchanged). why (if not NULL) is set to a
//  sentence for the log when the state changed.
dbt_pair_state_t
    dbt_pair_heard (dbt_pair_t *self, dbt_pair_state_t peer, dbt_pair_claim_t claim,
                    int64_t now, const char **why);

//  A request that needs the active member arrived at now; vote says the
//  caller failed to reach the partner. Returns true when this member is
//  (now) active and serves it. why as above.
bool
    dbt_pair_request (dbt_pair_t *self, bool vote, int64_t now, const char **why);

//  True while the partner's heartbeats arrive (within the expiry).
bool
    dbt_pair_partner_alive (dbt_pair_t *self, int64_t now);

//  The partner's state and claim as last heard (state 0: never heard).
dbt_pair_state_t
    dbt_pair_partner_state (dbt_pair_t *self);
dbt_pair_claim_t
    dbt_pair_partner_claim (dbt_pair_t *self);

//  Step down to PASSIVE (the owner found its partner active by another
//  path, e.g. a refused takeover).
void
    dbt_pair_step_down (dbt_pair_t *self);

//  Self test of this module.
void
    dbt_pair_test (bool verbose);

#endif
