/*  =========================================================================
    dbt_log_test - self test of dbt_log (public functions only)

    Run by tests/dbt_selftest (-t log); kept out of the libraries.
    =========================================================================
*/
#include "dbt_classes.h"

void
dbt_log_test (bool verbose)
{
    dbt_log_level_t level;
    assert (dbt_log_parse_level ("debug", &level) == 0 && level == DBT_LOG_DEBUG);
    assert (dbt_log_parse_level ("ERROR", &level) == 0 && level == DBT_LOG_ERROR);
    assert (dbt_log_parse_level ("warning", &level) == 0 && level == DBT_LOG_WARN);
    assert (dbt_log_parse_level ("loud", &level) == -1);
    //  The level in force: the lowest one enabled.
    dbt_log_level_t saved = DBT_LOG_ERROR;
    for (int l = DBT_LOG_ERROR; l >= DBT_LOG_DEBUG; l--)
        if (dbt_log_enabled ((dbt_log_level_t) l))
            saved = (dbt_log_level_t) l;
    dbt_log_set_level (DBT_LOG_ERROR);
    assert (!dbt_log_enabled (DBT_LOG_INFO));
    assert (dbt_log_enabled (DBT_LOG_ERROR));
    dbt_log (DBT_LOG_INFO, "test: not shown");
    dbt_log_set_level (saved);
    if (verbose)
        dbt_log (DBT_LOG_INFO, "log: ok");
}
