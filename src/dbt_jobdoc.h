/*  =========================================================================
    dbt_jobdoc - GET /jobs/{id}'s answer written straight to bytes

    The job status answer is the hottest read of the HTTP API (clients
    poll it). dbt_api builds it with jansson; this module writes the same
    bytes without building a JSON tree: the envelope, dbt_api_job_status's
    fields in their order, then the freshness fields (dispatcher,
    replica_lag_ms). It only takes the cases whose bytes it can be sure
    of: every string present and plain printable ASCII with nothing JSON
    escapes (no '"', no '\\', no control byte); for any other job it
    declines and the caller renders with jansson, so the answer is
    byte-identical either way (the self test compares both on many jobs).
    Timestamps are written as dbt_time_rfc3339 writes them.
    =========================================================================
*/
#ifndef DBT_JOBDOC_H_INCLUDED
#define DBT_JOBDOC_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "dbt_util.h"
#include "dbt_job.h"
#include "dbt_view.h"

//  Append {"status":"success","data":{...}} for job as read from origin
//  to out. Returns 0, or -1 (out unchanged) when job has a string this
//  module does not write; the caller then renders it with jansson.
int
    dbt_jobdoc_render (const dbt_job_t *job, const dbt_origin_t *origin, dbt_buf_t *out);

//  Write the RFC 3339 text of wall time ms (dbt_time_rfc3339's text) at
//  out, which has room for at least 32 bytes. Returns its length.
size_t
    dbt_jobdoc_time (int64_t ms, char *out);

//  Self test of this module.
void
    dbt_jobdoc_test (bool verbose);

#endif
