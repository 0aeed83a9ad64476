/*  =========================================================================
    dbt_export - stream a results table as JSON or CSV

    Wraps a connection on which dbt_conn_read_table has started and turns
    its rows into bytes on demand, a chunk at a time, so a download of any
    size uses a bounded buffer. JSON is the API envelope with the columns
    (name and type) and an array of rows; numbers stay numbers, booleans
    booleans, NULL null, invalid UTF-8 is replaced by U+FFFD. CSV is RFC
    4180 with a header row; NULL is an empty field. Used by one HTTP
    connection thread at a time.
    =========================================================================
*/
#ifndef DBT_EXPORT_H_INCLUDED
#define DBT_EXPORT_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>
#include "dbt_pool.h"

typedef struct _dbt_export_t dbt_export_t;

//  Take the connection (a query from dbt_conn_read_table is started on it;
//  it goes back to pool on destroy). Returns NULL with err set when the
//  columns cannot be read (the connection is given back).
dbt_export_t *
    dbt_export_new (dbt_pool_t *pool, dbt_conn_t **conn_p, const char *job_id, bool csv, char *err);

//  Write up to max bytes of output into buf. Returns the count, 0 at the
//  end, or -1 when the database failed mid-stream (logged).
ssize_t
    dbt_export_read (dbt_export_t *self, char *buf, size_t max);

//  Destroy, giving the connection back; nulls the pointer.
void
    dbt_export_destroy (dbt_export_t **self_p);

//  Self test of this module.
void
    dbt_export_test (bool verbose);

#endif
