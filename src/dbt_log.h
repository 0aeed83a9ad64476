/*  =========================================================================
    dbt_log - leveled logging to stderr

    One process-wide sink, set before actors start (one of the three allowed
    kinds of global state). Lines are written whole, so threads may log
    concurrently. Messages are lowercase and start with their component:
    "dispatcher: job 'x' failed: ...".
    =========================================================================
*/
#ifndef DBT_LOG_H_INCLUDED
#define DBT_LOG_H_INCLUDED

#include <stdbool.h>

typedef enum {
    DBT_LOG_DEBUG = 0,
    DBT_LOG_INFO = 1,
    DBT_LOG_WARN = 2,
    DBT_LOG_ERROR = 3,
    DBT_LOG_OFF = 4
} dbt_log_level_t;

//  Set the lowest level written (default INFO).
void
    dbt_log_set_level (dbt_log_level_t level);

//  Parse "DEBUG", "INFO", "WARN", "ERROR" (case-insensitive). Returns 0 or -1.
int
    dbt_log_parse_level (const char *name, dbt_log_level_t *level);

//  True when messages at this level are written.
bool
    dbt_log_enabled (dbt_log_level_t level);

//  Write one log line.
void
    dbt_log (dbt_log_level_t level, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  Self test of this module.
void
    dbt_log_test (bool verbose);

#endif
