/*  =========================================================================
    dbt_job - job and group records

    The record of one job: what to run (task, args, queue, db, results
    backend, table), when (eta, ttl, retries) and how it went (state,
    attempts, rows, error, times). Records are stored in LMDB and sent over
    the mesh as msgpack maps; dbt_job_pack and dbt_job_unpack are the only
    codec. A group record lists its jobs and its concurrency limit.
    Plain data: the struct is public, strings are owned by the record.
    =========================================================================
*/
#ifndef DBT_JOB_H_INCLUDED
#define DBT_JOB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dbt_msg.h"

//  Longest ttl and results_ttl a job may ask for (10 years), and the
//  latest eta (9999-12-31): bounds that keep every time sum in range.
#define DBT_MAX_TTL_MS  (INT64_C (10) * 365 * 24 * 3600 * 1000)
#define DBT_MAX_ETA_MS  INT64_C (253402300799000)

//  Job states, as upstream names them.
typedef enum {
    DBT_STATE_PENDING = 0,      //  waiting (queued or scheduled by eta)
    DBT_STATE_STARTED = 1,      //  running on a worker
    DBT_STATE_SUCCESS = 2,      //  finished, results table complete
    DBT_STATE_FAILURE = 3,      //  finished without results
    DBT_STATE_RETRY = 4         //  failed, waiting for its next attempt
} dbt_state_t;

//  One job.
typedef struct {
    char *id;                   //  job id, [A-Za-z0-9_:-]{1,64}
    char *task;                 //  task name
    char *queue;                //  queue it runs on
    char **args;                //  positional args; NULL entries bind NULL
    size_t nargs;               //  number of args
    char *db;                   //  source db requested, NULL = task's choice
    char *results;              //  results backend chosen at submit
    char *table;                //  final results table name
    char *group_id;             //  group, NULL when none
    int64_t eta_ms;             //  earliest start (wall ms), 0 = now
    int64_t ttl_ms;             //  run-time limit, 0 = none
    uint32_t max_retries;       //  further attempts after a failure
    int64_t results_ttl_ms;     //  results retention for this job, 0 = default
    dbt_state_t state;          //  current state
    uint32_t attempts;          //  attempts started
    uint32_t interruptions;     //  runs lost to a dead worker or dispatcher
    uint64_t seq;               //  submission order within the dispatcher
    uint64_t frame;             //  number of the job frame that gave it to a worker,
                                //  0 = none (not stored: set on the frame only)
    uint64_t rows;              //  rows written (so far, while running)
    char *error;                //  last attempt's error, NULL when none
    char *worker;               //  worker running it (while STARTED)
    int64_t created_ms;         //  submitted (wall ms)
    int64_t started_ms;         //  last attempt started, 0 = never
    int64_t finished_ms;        //  finished, 0 = not yet
    bool cancelled;             //  stopped by DELETE
    bool expired;               //  results table dropped (retention)
} dbt_job_t;

//  One group.
typedef struct {
    char *id;                   //  group id
    uint32_t concurrency;       //  jobs STARTED at once, 0 = unlimited
    char **job_ids;             //  member jobs in request order
    size_t njobs;               //  number of members
    int64_t created_ms;         //  submitted (wall ms)
} dbt_group_t;

//  Upstream's name of a state ("PENDING", ...). Static.
const char *
    dbt_state_name (dbt_state_t state);

//  When the job's results table expires (wall ms), 0 when it never does:
//  only SUCCESS jobs with a table, a retention and not yet expired.
int64_t
    dbt_job_results_expiry (const dbt_job_t *self);

//  Key of a results table for collision checks: "results/table" with the
//  table folded to lower case, since several databases (SQLite, MariaDB
//  with lower_case_table_names) compare table names without regard to
//  case. NULLs count as "". Caller frees.
char *
    dbt_job_table_key (const char *results, const char *table);

//  True for SUCCESS and FAILURE.
bool
    dbt_state_final (dbt_state_t state);

//  Create an empty job (state PENDING). Caller destroys.
dbt_job_t *
    dbt_job_new (void);

//  Destroy; nulls the pointer.
void
    dbt_job_destroy (dbt_job_t **self_p);

//  Deep copy. Caller destroys.
dbt_job_t *
    dbt_job_dup (const dbt_job_t *self);

//  Replace a string field (copying value; NULL clears it).
void
    dbt_job_set (char **field, const char *value);

//  Replace the args with a copy of count values (NULL entries allowed).
void
    dbt_job_set_args (dbt_job_t *self, const char *const *values, size_t count);

//  Append the job as one msgpack map.
void
    dbt_job_pack (const dbt_job_t *self, dbt_mpw_t *writer);

//  Build a job from a msgpack map. Returns NULL with err set when a field
//  is missing, mistyped or out of range. Caller destroys.
dbt_job_t *
    dbt_job_unpack (const msgpack_object *map, char *err);

//  Create an empty group. Caller destroys.
dbt_group_t *
    dbt_group_new (void);

//  Destroy; nulls the pointer.
void
    dbt_group_destroy (dbt_group_t **self_p);

//  Add a member job id.
void
    dbt_group_add (dbt_group_t *self, const char *job_id);

//  Append the group as one msgpack map.
void
    dbt_group_pack (const dbt_group_t *self, dbt_mpw_t *writer);

//  Build a group from a msgpack map; NULL with err on bad input.
dbt_group_t *
    dbt_group_unpack (const msgpack_object *map, char *err);

//  Self test of this module.
void
    dbt_job_test (bool verbose);

#endif
