/*  =========================================================================
    fuzz_config - fuzz target for the INI config loader (dbt_config_from_string)

    Each input is loaded as a config file's text (it ends at its first NUL
    byte, as a C string does). A config that loads must keep what the
    loader promises: every section is found by its name, names are unique
    per kind, queue concurrency and dispatcher answers are defined for
    every queue, results table formats name a table for a job id, and the
    limits are in range. An error names "<string>:LINE" or what is wrong.

    Seed corpus: tests/fixtures/config/ (valid_*.ini load, broken_*.ini
    are refused). Build and run: see tests/README.md.
    =========================================================================
*/
#include "../../src/dbt_classes.h"
#include "fuzz.h"

static void
s_check_sections (const dbt_dbsection_t *list, size_t count, bool results,
                  const dbt_config_t *config)
{
    for (size_t i = 0; i < count; i++) {
        const dbt_dbsection_t *section = &list [i];
        assert (section->conf.name && section->conf.type);
        assert (section->conf.results == results);
        const dbt_dbsection_t *found = results ? dbt_config_results (config, section->conf.name)
                                               : dbt_config_db (config, section->conf.name);
        assert (found == section);
        if (results && section->results_table) {
            char *table = dbt_submit_table_name (section->results_table, "job_1");
            assert (table && strstr (table, "job_1"));
            free (table);
        }
    }
}

int
dbt_fuzz_one (const uint8_t *data, size_t size, char *err)
{
    char *text = dbt_strndup ((const char *) data, size);
    dbt_config_t *config = dbt_config_from_string (text, err);
    free (text);
    if (!config) {
        assert (err [0]);
        return -1;
    }
    assert (config->queue && config->server && config->mesh_bind && config->mesh_dispatcher);
    assert (config->worker_concurrency > 0);
    assert (config->request_timeout_ms > 0 && config->max_body_size > 0);
    assert (config->log_level <= DBT_LOG_OFF);
    assert (config->retry_max_ms >= config->retry_base_ms);
    assert (config->heartbeat_liveness >= 2 && config->heartbeat_ms >= 100);
    s_check_sections (config->dbs, config->ndbs, false, config);
    s_check_sections (config->results, config->nresults, true, config);
    for (size_t i = 0; i < config->nqueues; i++) {
        const dbt_queueconf_t *queue = &config->queues [i];
        assert (queue->name && dbt_config_queue (config, queue->name) == queue);
        assert (queue->concurrency >= 0);
        assert (dbt_config_queue_concurrency (config, queue->name, 0) > 0);
        assert (dbt_config_queue_dispatcher (config, queue->name));
    }
    assert (dbt_config_queue_concurrency (config, "no such queue", 0) == config->worker_concurrency);
    assert (dbt_config_queue_dispatcher (config, "no such queue") == config->mesh_dispatcher);
    dbt_config_destroy (&config);
    return 0;
}
