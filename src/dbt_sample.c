/*  =========================================================================
    dbt_sample - the embedded default: sample config, tasks and dataset

    See dbt_sample.h. Static text plus one function that writes it out.
    =========================================================================
*/
#include "dbt_classes.h"
#include <sys/stat.h>

static const char s_dataset [] =
    "CREATE TABLE entries (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    amount DECIMAL(12,2) NOT NULL,\n"
    "    user_id VARCHAR(6) NOT NULL,\n"
    "    entry_date DATE NOT NULL,\n"
    "    timestamp TIMESTAMP NOT NULL\n"
    ");\n"
    "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)\n"
    "INSERT INTO entries\n"
    "SELECT i,\n"
    "       ((i * 7919) % 100000) / 100.0,\n"
    "       'user' || (i % 5 + 1),\n"
    "       date ('2024-01-01', '+' || (i % 90) || ' days'),\n"
    "       datetime ('2024-01-01 09:00:00', '+' || (i % 90) || ' days',\n"
    "                 '+' || (i * 37 % 28800) || ' seconds')\n"
    "FROM n;\n";

static const char s_config [] =
    "; dungbeetle configuration (INI), written by `dungbeetle --new-config`.\n"
    "; Every key is described in docs/config.md. Relative paths are relative to\n"
    "; the directory the node is started from.\n"
    "\n"
    "[app]\n"
    "log_level = INFO\n"
    "; HTTP API address\n"
    "server = 127.0.0.1:6060\n"
    "; queue of tasks without a -- queue tag\n"
    "queue = default\n"
    "; worker threads per queue served by this node\n"
    "worker_concurrency = 4\n"
    "; task files, comma-separated directories\n"
    "sql_directory = sql\n"
    "; job state (LMDB)\n"
    "data_dir = data\n"
    "; run-time limit of a job without its own ttl, 0 = none\n"
    "default_job_ttl = 10m\n"
    "\n"
    "[mesh]\n"
    "; this node's dispatcher endpoint (workers and clients connect here)\n"
    "bind = tcp://127.0.0.1:6070\n"
    "\n"
    "; Source databases. Types: sqlite, postgres, mysql, clickhouse.\n"
    "[db.sample]\n"
    "type = sqlite\n"
    "dsn = data/sample.db\n"
    "; create the sample `entries` table when the file does not exist\n"
    "sample_data = true\n"
    "\n"
    "; Results databases. Types: sqlite, postgres, mysql.\n"
    "[results.default]\n"
    "type = sqlite\n"
    "dsn = data/results.db\n"
    "; %s is replaced by the job id\n"
    "results_table = results_%s\n";

static const char s_tasks [] =
    "-- Sample tasks over the sample `entries` table (SQLite).\n"
    "-- SQLite takes ? (or ?1, ?2) placeholders, PostgreSQL $1, $2.\n"
    "\n"
    "-- name: count_entries\n"
    "-- db: sample\n"
    "SELECT COUNT(*) AS entries, ROUND(SUM(amount), 2) AS total FROM entries;\n"
    "\n"
    "-- name: get_profit_summary\n"
    "-- db: sample\n"
    "SELECT entry_date, ROUND(SUM(amount), 2) AS total\n"
    "FROM entries WHERE user_id = ?\n"
    "GROUP BY entry_date ORDER BY entry_date;\n"
    "\n"
    "-- name: get_profit_entries\n"
    "-- db: sample\n"
    "SELECT * FROM entries WHERE user_id = ? ORDER BY id;\n"
    "\n"
    "-- name: get_profit_entries_by_date\n"
    "-- db: sample\n"
    "SELECT * FROM entries\n"
    "WHERE user_id = ?1 AND timestamp > ?2 AND timestamp < ?3 ORDER BY id;\n";

const char *
dbt_sample_dataset_sql (void)
{
    return s_dataset;
}

const char *
dbt_sample_config (void)
{
    return s_config;
}

const char *
dbt_sample_tasks (void)
{
    return s_tasks;
}

//  Write text to path, failing if it exists.
static int
s_write_new (const char *path, const char *text, char *err)
{
    FILE *file = fopen (path, "wx");
    if (!file) {
        dbt_err_set (err, "cannot create '%s': %s", path, strerror (errno));
        return -1;
    }
    size_t len = strlen (text);
    bool ok = fwrite (text, 1, len, file) == len;
    ok = (fclose (file) == 0) && ok;
    if (!ok) {
        dbt_err_set (err, "cannot write '%s': %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Write the sample config and task file.

int
dbt_sample_write (const char *config_path, const char *sql_dir, char *err)
{
    struct stat st;
    if (stat (config_path, &st) == 0) {
        dbt_err_set (err, "%s exists. Remove it to generate a new one", config_path);
        return -1;
    }
    if (mkdir (sql_dir, 0755) != 0 && errno != EEXIST) {
        dbt_err_set (err, "cannot create directory '%s': %s", sql_dir, strerror (errno));
        return -1;
    }
    char *tasks_path = dbt_printf ("%s/sample.sql", sql_dir);
    int rc = 0;
    if (stat (tasks_path, &st) != 0)
        rc = s_write_new (tasks_path, s_tasks, err);
    free (tasks_path);
    if (rc == 0)
        rc = s_write_new (config_path, s_config, err);
    return rc;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

void
dbt_sample_test (bool verbose)
{
    char dir [] = "/tmp/dbt-sample-XXXXXX";
    assert (mkdtemp (dir));
    char *config = dbt_printf ("%s/config.ini", dir);
    char *sql = dbt_printf ("%s/sql", dir);
    char err [DBT_ERRMSG_LEN];
    assert (dbt_sample_write (config, sql, err) == 0);
    assert (dbt_sample_write (config, sql, err) == -1);
    assert (strstr (err, "exists"));
    char *tasks = dbt_printf ("%s/sample.sql", sql);
    struct stat st;
    assert (stat (tasks, &st) == 0 && st.st_size == (off_t) strlen (s_tasks));
    assert (strstr (dbt_sample_dataset_sql (), "CREATE TABLE entries"));
    assert (strstr (dbt_sample_config (), "[db.sample]"));
    unlink (tasks);
    unlink (config);
    rmdir (sql);
    rmdir (dir);
    free (tasks);
    free (config);
    free (sql);
    if (verbose)
        printf ("sample: ok\n");
}
#endif  //  DBT_SELFTEST
