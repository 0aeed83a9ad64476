/*  =========================================================================
    dbt_sample - the embedded default: sample config, tasks and dataset

    What `dungbeetle --new-config` writes and what the quick start runs: an
    INI config with a SQLite source holding a small sample dataset (created
    at first start), SQLite results, and a task file with sample tasks.
    =========================================================================
*/
#ifndef DBT_SAMPLE_H_INCLUDED
#define DBT_SAMPLE_H_INCLUDED

#include <stdbool.h>

//  SQLite SQL that creates and fills the sample table `entries`
//  (id, amount, user_id, entry_date, timestamp). Static.
const char *
    dbt_sample_dataset_sql (void);

//  The sample config file text. Static.
const char *
    dbt_sample_config (void);

//  The sample task file text. Static.
const char *
    dbt_sample_tasks (void);

//  Write config_path and sql_dir/sample.sql. Refuses (returns -1 with err)
//  when config_path exists; creates sql_dir when missing.
int
    dbt_sample_write (const char *config_path, const char *sql_dir, char *err);

//  Self test of this module.
void
    dbt_sample_test (bool verbose);

#endif
