/*  =========================================================================
    dbt_selftest - runs every module's self test, TAP output

    Usage: dbt_selftest [-v] [-t module]
    Each module test runs in its own child process so one failing assertion
    reports "not ok" for that module and the others still run.
    =========================================================================
*/
#include "../src/dbt_classes.h"
#include "../src/dbt_tls.h"
#include <sys/wait.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} test_item_t;

static test_item_t s_tests [] = {
    { "util", dbt_util_test },
    { "log", dbt_log_test },
    { "sample", dbt_sample_test },
    { "msg", dbt_msg_test },
    { "job", dbt_job_test },
    { "store", dbt_store_test },
    { "queue", dbt_queue_test },
    { "config", dbt_config_test },
    { "tasks", dbt_tasks_test },
    { "driver", dbt_driver_test },
    { "sqlite_dir", dbt_sqlite_dir_test },
    { "driver_sqlite", dbt_driver_sqlite_test },
    { "driver_pg", dbt_driver_pg_test },
    { "driver_mariadb", dbt_driver_mariadb_test },
    { "ch_text", dbt_ch_text_test },
    { "ch_native", dbt_ch_native_test },
    { "driver_clickhouse", dbt_driver_clickhouse_test },
    { "submit", dbt_submit_test },
    { "request", dbt_request_test },
    { "jobreq", dbt_jobreq_test },
    { "routes", dbt_routes_test },
    { "view", dbt_view_test },
    { "pool", dbt_pool_test },
    { "runner", dbt_runner_test },
    { "dispatcher", dbt_dispatcher_test },
    { "worker", dbt_worker_test },
    { "janitor", dbt_janitor_test },
    { "pair", dbt_pair_test },
    { "replica", dbt_replica_test },
    { "export", dbt_export_test },
    { "metrics", dbt_metrics_test },
    { "client", dbt_client_test },
    { "mux", dbt_mux_test },
    { "curve", dbt_curve_test },
    { "jobdoc", dbt_jobdoc_test },
    { "api", dbt_api_test },
    { "board", dbt_board_test },
    { "http", dbt_http_test },
    { "tls", dbt_tls_test },
    { "front", dbt_front_test },
    { "node", dbt_node_test },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "-v"))
            verbose = true;
        else
        if (streq (argv [i], "-t") && i + 1 < argc)
            only = argv [++i];
        else {
            fprintf (stderr, "usage: dbt_selftest [-v] [-t module]\n");
            return 2;
        }
    }
    setenv ("ZSYS_SIGHANDLER", "false", 1);
    size_t count = 0;
    for (test_item_t *t = s_tests; t->name; t++)
        if (!only || streq (only, t->name))
            count++;
    if (count == 0) {
        fprintf (stderr, "dbt_selftest: no module named '%s'\n", only);
        return 2;
    }
    printf ("1..%zu\n", count);
    fflush (stdout);
    int failed = 0;
    size_t n = 0;
    for (test_item_t *t = s_tests; t->name; t++) {
        if (only && !streq (only, t->name))
            continue;
        n++;
        int64_t start = dbt_clock_ms ();
        pid_t pid = fork ();
        if (pid == 0) {
            t->test (verbose);
            zsys_shutdown ();
            fflush (stdout);
            _exit (0);
        }
        int status = 0;
        waitpid (pid, &status, 0);
        bool ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
        if (!ok)
            failed++;
        printf ("%s %zu - %s (%" PRId64 " ms)%s\n", ok ? "ok" : "not ok", n, t->name,
                dbt_clock_ms () - start, ok ? "" : " # test process failed");
        fflush (stdout);
    }
    return failed ? 1 : 0;
}
