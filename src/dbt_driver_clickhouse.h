/*  =========================================================================
    dbt_driver_clickhouse - ClickHouse source driver (HTTP interface, libcurl)

    A source only: results cannot be written to ClickHouse.

    DSN: the server's HTTP URL, e.g.
        http://127.0.0.1:8123/?database=default&user=default&password=
    https:// works the same; user and password may also be given as user
    info (http://user:pass@host:8123/) and are sent as HTTP basic auth,
    never in the URL. Other query parameters are ClickHouse settings sent
    with every query (e.g. max_threads=4, max_block_size=8192); query,
    query_id, default_format and max_execution_time are set by the driver
    and refused in the DSN. clickhouse://user:pass@host[:port]/db is
    accepted as a short form of http:// on port 8123 (the HTTP interface,
    not the native TCP port 9000 other clients mean by that scheme).

    Queries: ClickHouse 18.16 has no server-side parameters, so args are
    substituted into the SQL as string literals by dbt_driver_clickhouse_bind
    (below): every arg is a String, cast it in SQL (toInt64(?),
    toDate(?)); ClickHouse does not compare numbers with strings. ? is
    always a placeholder outside literals, identifiers and comments: write
    if(c, a, b) instead of the c ? a : b operator (a raw task without args
    is sent unchanged). A task is one statement without a FORMAT clause.

    Results stream in the Native format, decoded block by block as they
    arrive (dbt_ch_native, which lists the type mapping); an empty result
    takes its columns from DESCRIBE TABLE (sql). A time limit becomes the
    max_execution_time setting, rounded up to whole seconds (a user with
    readonly=1 may change no setting: give report users readonly=2).
    Cancel sends KILL QUERY for the query's id and stops the transfer. See
    dbt_driver_clickhouse.c for the reasons.
    =========================================================================
*/
#ifndef DBT_DRIVER_CLICKHOUSE_H_INCLUDED
#define DBT_DRIVER_CLICKHOUSE_H_INCLUDED

#include "dbt_driver.h"

//  The driver's vtable.
extern const dbt_driver_t dbt_driver_clickhouse;

//  Quote len bytes as a ClickHouse string literal: '...' with backslash,
//  quote, NUL, newline, CR, tab, backspace and form feed escaped, any other
//  control byte as \xHH, every other byte (UTF-8 included) as it is.
//  Caller frees.
char *
    dbt_driver_clickhouse_quote (const char *val, size_t len);

//  Count the ? placeholders of sql outside string literals ('...'),
//  quoted identifiers ("..." and `...`) and comments (-- to the end of the
//  line, /* to */). Returns the count, or -1 with err set when sql is
//  empty, holds more than one statement or ends inside a literal or
//  comment.
int
    dbt_driver_clickhouse_params (const char *sql, char *err);

//  Substitute args for the ? placeholders of sql (as counted above), each
//  quoted by dbt_driver_clickhouse_quote, a NULL arg as NULL, and drop a
//  final semicolon: the one function through which args enter ClickHouse
//  SQL. *out is a new string (caller frees). Returns 0, or DBT_EINVAL with
//  err set when sql is refused or the arg count differs (dbt_args_check).
int
    dbt_driver_clickhouse_bind (const char *sql, const dbt_args_t *args, char **out, char *err);

//  Parse a DSN as connect does (see above), without connecting: *url is
//  the base URL every request starts from (http:// or https://, user info
//  and fragment removed, database then the settings in its query string),
//  *user and *password the basic-auth credentials, NULL when not given.
//  All three are new strings (caller frees). Returns 0, or DBT_EINVAL with
//  err set and the three NULL. For tests and the DSN fuzz target.
int
    dbt_driver_clickhouse_dsn (const char *dsn, char **url, char **user, char **password,
                               char *err);

//  Self test of this module (offline; tests/dbt_drivertest runs the live
//  checks).
void
    dbt_driver_clickhouse_test (bool verbose);

#endif
