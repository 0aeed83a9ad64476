/*  =========================================================================
    dbt_config_test - self test of dbt_config

    Kept apart from dbt_config.c only for size (docs/style: split files over
    ~1,500 lines); it uses the public API alone. Runs in the selftest's
    child process: it changes the environment and the working directory,
    and removes every temp file it writes.
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_config_env.h"

#ifdef DBT_SELFTEST
extern char **environ;

//  Minimal sections every configuration needs.
#define S_TEST_BASE \
    "[db.src]\ntype = sqlite\ndsn = src.db\n" \
    "[results.res]\ntype = sqlite\ndsn = res.db\n"

//  Parse prefix + base; expect success (expect NULL) or an error containing
//  expect. Returns the config on success (caller destroys), else NULL.
static dbt_config_t *
s_test_ini (const char *prefix, const char *expect)
{
    char *ini = dbt_printf ("%s\n" S_TEST_BASE, prefix);
    char err [DBT_ERRMSG_LEN] = "";
    dbt_config_t *config = dbt_config_from_string (ini, err);
    free (ini);
    if (expect) {
        if (config || !strstr (err, expect)) {
            fprintf (stderr, "config test: '%s': expected error '%s', got '%s'\n",
                     prefix, expect, config ? "(success)" : err);
            assert (false);
        }
        return NULL;
    }
    if (!config) {
        fprintf (stderr, "config test: '%s': unexpected error '%s'\n", prefix, err);
        assert (false);
    }
    return config;
}

//  Write text to path.
static void
s_test_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert (file);
    assert (fwrite (text, 1, strlen (text), file) == strlen (text));
    assert (fclose (file) == 0);
}

//  Run dbt_config_load over a NULL-terminated argument list.
static int
s_test_load (dbt_config_t **config_p, dbt_action_t *action, char *err, ...)
{
    char *argv [32];
    int argc = 0;
    argv [argc++] = (char *) "dungbeetle";
    va_list args;
    va_start (args, err);
    const char *arg;
    while ((arg = va_arg (args, const char *)) != NULL) {
        assert (argc < 31);
        argv [argc++] = (char *) arg;
    }
    va_end (args);
    argv [argc] = NULL;
    return dbt_config_load (argc, argv, config_p, action, err);
}

void
dbt_config_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    //  Make sure no variable of the caller's environment changes results.
    for (char **env = environ; env && *env; ) {
        if (strncmp (*env, "DUNGBEETLE_", 11) == 0) {
            char *name = dbt_strndup (*env, strcspn (*env, "="));
            unsetenv (name);
            free (name);
            env = environ;
        }
        else
            env++;
    }

    //  Defaults
    dbt_config_t *config = s_test_ini ("", NULL);
    assert (config->config_file == NULL);
    assert (config->log_level == DBT_LOG_INFO);
    assert (config->default_job_ttl_ms == 0);
    assert (streq (config->server, "127.0.0.1:6060"));
    assert (streq (config->queue, "default"));
    char host [256] = "";
    assert (gethostname (host, sizeof (host) - 1) == 0);
    assert (streq (config->worker_name, *host ? host : "localhost"));
    assert (config->worker_concurrency == 10);
    assert (!config->worker_only);
    assert (config->nsql_dirs == 1 && streq (config->sql_dirs [0], "./sql"));
    assert (streq (config->data_dir, "./data"));
    assert (config->max_body_size == 1000000);
    assert (config->request_timeout_ms == 30000);
    assert (config->max_connections == 4096);
    assert (config->max_connections_per_ip == 256);
    assert (config->http_threads == 0);
    assert (config->auth_token == NULL);
    assert (config->state_map_size == 1073741824);
    assert (config->retry_base_ms == 1000);
    assert (config->retry_max_ms == 300000);
    assert (config->results_ttl_ms == 0);
    assert (config->state_ttl_ms == 24 * 3600000);
    assert (config->shutdown_timeout_ms == 30000);
    assert (config->max_interruptions == 3);
    assert (streq (config->mesh_bind, "tcp://127.0.0.1:6070"));
    assert (streq (config->mesh_dispatcher, "tcp://127.0.0.1:6070"));
    assert (config->heartbeat_ms == 1000);
    assert (config->heartbeat_liveness == 3);
    assert (config->ndbs == 1 && config->nresults == 1 && config->nqueues == 0);
    const dbt_dbsection_t *db = dbt_config_db (config, "src");
    assert (db && db == &config->dbs [0]);
    assert (streq (db->conf.name, "src") && streq (db->conf.type, "sqlite"));
    assert (streq (db->conf.dsn, "src.db"));
    assert (db->conf.max_active == 0 && db->conf.max_idle == -1);
    assert (db->conf.connect_timeout_ms == 10000);
    assert (!db->conf.results && !db->conf.sample_data && !db->conf.unlogged);
    assert (db->results_table == NULL);
    assert (db->line == 2);
    const dbt_dbsection_t *res = dbt_config_results (config, "res");
    assert (res && streq (res->conf.name, "res") && res->conf.results);
    assert (streq (res->results_table, "results_%s") && res->line == 5);
    assert (dbt_config_db (config, "res") == NULL);
    assert (dbt_config_results (config, "src") == NULL);
    assert (dbt_config_db (config, NULL) == NULL);
    assert (dbt_config_queue (config, "default") == NULL);
    assert (dbt_config_queue_concurrency (config, "default", 0) == 10);
    assert (dbt_config_queue_concurrency (config, "default", 3) == 3);
    assert (streq (dbt_config_queue_dispatcher (config, "default"), "tcp://127.0.0.1:6070"));
    assert (dbt_config_dispatches (config, "default"));
    dbt_config_destroy (&config);
    assert (config == NULL);
    dbt_config_destroy (&config);

    //  Every key, good values
    config = s_test_ini (
        "log_level = debug\n"
        "default_job_ttl = 90s\n"
        "server = :8080\n"
        "queue = reports:daily\n"
        "worker_name = node-1\n"
        "worker_concurrency = 1000\n"
        "worker_only = false\n"
        "sql_directory = a, b ,,c\n"
        "data_dir = /var/lib/dbt\n"
        "[app]\n"
        "max_body_size = 1KB\n"
        "request_timeout = 1m\n"
        "max_connections = 1000000\n"
        "max_connections_per_ip = 0\n"
        "http_threads = 4\n"
        "auth_token = s3cret#not-a-comment ; this is a comment\n"
        "state_map_size = 64GiB\n"
        "retry_backoff = 250ms\n"
        "retry_backoff_max = 1h\n"
        "results_ttl = 168h\n"
        "state_ttl = 0\n"
        "shutdown_timeout = 0\n"
        "max_interruptions = 0\n"
        "[mesh]\n"
        "bind = ipc:///tmp/dbt.ipc\n"
        "dispatcher = tcp://10.0.0.1:6070\n"
        "heartbeat_interval = 100ms\n"
        "heartbeat_liveness = 20\n"
        "peers = tcp://a:1 , tcp://b:2,\n"
        "dispatch = true\n"
        "[queue.fast]\n"
        "concurrency = 4\n"
        "dispatcher = ipc:///tmp/dbt.ipc\n"
        "[queue.slow]\n"
        "[db.pg]\n"
        "type = postgres\n"
        "dsn = postgres://u:p@h/db?sslmode=disable\n"
        "max_active = 10000\n"
        "max_idle = 0\n"
        "connect_timeout = 0\n"
        "[db.sample-2]\n"
        "type = sqlite\n"
        "dsn = sample.db\n"
        "sample_data = 1\n"
        "[results.pg]\n"
        "type = mariadb\n"
        "dsn = user:pw@tcp(h:3306)/db\n"
        "results_table = job_%s_out\n"
        "unlogged = True\n", NULL);
    assert (config->log_level == DBT_LOG_DEBUG);
    assert (config->default_job_ttl_ms == 90000);
    assert (streq (config->server, ":8080"));
    assert (streq (config->queue, "reports:daily"));
    assert (streq (config->worker_name, "node-1"));
    assert (config->worker_concurrency == 1000 && !config->worker_only);
    assert (config->nsql_dirs == 3);
    assert (streq (config->sql_dirs [0], "a") && streq (config->sql_dirs [1], "b"));
    assert (streq (config->sql_dirs [2], "c"));
    assert (streq (config->data_dir, "/var/lib/dbt"));
    assert (config->max_body_size == 1000 && config->request_timeout_ms == 60000);
    assert (config->max_connections == 1000000 && config->max_connections_per_ip == 0);
    assert (config->http_threads == 4);
    assert (streq (config->auth_token, "s3cret#not-a-comment"));
    assert (config->state_map_size == INT64_C (64) * 1024 * 1024 * 1024);
    assert (config->retry_base_ms == 250 && config->retry_max_ms == 3600000);
    assert (config->results_ttl_ms == 168 * 3600000 && config->state_ttl_ms == 0);
    assert (config->shutdown_timeout_ms == 0 && config->max_interruptions == 0);
    assert (streq (config->mesh_bind, "ipc:///tmp/dbt.ipc"));
    assert (streq (config->mesh_dispatcher, "tcp://10.0.0.1:6070"));
    assert (config->heartbeat_ms == 100 && config->heartbeat_liveness == 20);
    assert (config->nmesh_peers == 2 && streq (config->mesh_peers [1], "tcp://b:2"));
    assert (config->mesh_dispatch && streq (config->mesh_publish, "ipc:///tmp/dbt.ipc.pub"));
    assert (streq (config->mesh_client, "ipc:///tmp/dbt.ipc.client"));
    assert (config->nqueues == 2);
    const dbt_queueconf_t *queue = dbt_config_queue (config, "fast");
    assert (queue && queue->concurrency == 4 && streq (queue->dispatcher, "ipc:///tmp/dbt.ipc"));
    queue = dbt_config_queue (config, "slow");
    assert (queue && queue->concurrency == 0 && queue->dispatcher == NULL);
    assert (dbt_config_queue_concurrency (config, "fast", 7) == 4);
    assert (dbt_config_queue_concurrency (config, "slow", 7) == 7);
    assert (dbt_config_queue_concurrency (config, "slow", 0) == 1000);
    assert (dbt_config_queue_concurrency (config, "other", 0) == 1000);
    assert (dbt_config_dispatches (config, "fast"));
    assert (!dbt_config_dispatches (config, "slow"));
    assert (streq (dbt_config_queue_dispatcher (config, "slow"), "tcp://10.0.0.1:6070"));
    assert (config->ndbs == 3 && config->nresults == 2);
    db = dbt_config_db (config, "pg");
    assert (db && streq (db->conf.type, "postgres"));
    assert (streq (db->conf.dsn, "postgres://u:p@h/db?sslmode=disable"));
    assert (db->conf.max_active == 10000 && db->conf.max_idle == 0);
    assert (db->conf.connect_timeout_ms == 0);
    db = dbt_config_db (config, "sample-2");
    assert (db && db->conf.sample_data);
    res = dbt_config_results (config, "pg");
    assert (res && streq (res->conf.type, "mariadb") && res->conf.unlogged);
    assert (streq (res->results_table, "job_%s_out"));
    dbt_config_destroy (&config);

    //  Every key, bad values (with the line of the bad key)
    static const struct {
        const char *ini;
        const char *expect;
    } bad [] = {
        { "log_level = loud", "<string>:1: log_level: expected DEBUG, INFO, WARN or ERROR, got 'loud'" },
        { "log_level = OFF", "expected DEBUG, INFO, WARN or ERROR" },
        { "default_job_ttl = soon", "<string>:1: default_job_ttl: expected a duration" },
        { "default_job_ttl = -1s", "expected a duration" },
        { "server = localhost", "server: expected host:port, got 'localhost'" },
        { "server = h:99999", "expected host:port" },
        { "server = [::1:80", "expected host:port" },
        { "queue = a b", "queue: expected a queue name" },
        { "worker_name =", "worker_name: must not be empty" },
        { "worker_concurrency = 0", "worker_concurrency: expected an integer from 1 to 1000, got '0'" },
        { "worker_concurrency = 1001", "expected an integer from 1 to 1000" },
        { "worker_concurrency = 5x", "expected an integer from 1 to 1000" },
        { "worker_only = yes", "worker_only: expected true or false, got 'yes'" },
        { "sql_directory = , ,", "sql_directory: expected a comma-separated list" },
        { "data_dir = ", "data_dir: must not be empty" },
        { "max_body_size = 999", "max_body_size: must be from 1KB to 1GB, got '999'" },
        { "max_body_size = 2GB", "must be from 1KB to 1GB" },
        { "max_body_size = lots", "expected a size" },
        { "request_timeout = 10ms", "request_timeout: must be from 100ms to 24h, got '10ms'" },
        { "max_connections = 0", "max_connections: expected an integer from 1 to 1000000, got '0'" },
        { "max_connections = 1000001", "expected an integer from 1 to 1000000" },
        { "max_connections_per_ip = -1", "max_connections_per_ip: expected an integer from 0 to 1000000" },
        { "max_connections_per_ip = many", "expected an integer from 0 to 1000000" },
        { "http_threads = 1025", "http_threads: expected an integer from 0 to 1024, got '1025'" },
        { "http_threads = -1", "expected an integer from 0 to 1024" },
        { "state_map_size = 1000", "state_map_size: must be from 1MiB to 64GiB" },
        { "state_map_size = 65GiB", "must be from 1MiB to 64GiB" },
        { "retry_backoff = 2d", "retry_backoff: expected a duration" },
        { "retry_backoff_max = 8000h", "retry_backoff_max: must be from 0ms to 168h" },
        { "retry_backoff = 10m", "retry_backoff_max (300000ms) is less than retry_backoff (600000ms)" },
        { "results_ttl = x", "results_ttl: expected a duration" },
        { "state_ttl = 1y", "state_ttl: expected a duration" },
        { "shutdown_timeout = 2h", "shutdown_timeout: must be from 0ms to 1h" },
        { "max_interruptions = 101", "max_interruptions: expected an integer from 0 to 100" },
        { "[app]\nlog_level = x", "<string>:2: [app] log_level: expected DEBUG" },
        { "[mesh]\nbind = 127.0.0.1:6070", "<string>:2: [mesh] bind: expected an endpoint" },
        { "[mesh]\nbind = tcp://", "expected an endpoint" },
        { "[mesh]\ndispatcher = udp://x", "[mesh] dispatcher: expected an endpoint" },
        { "[mesh]\nheartbeat_interval = 50ms", "heartbeat_interval: must be from 100ms to 1m" },
        { "[mesh]\nheartbeat_interval = 61s", "must be from 100ms to 1m" },
        { "[mesh]\nheartbeat_liveness = 1", "heartbeat_liveness: expected an integer from 2 to 20" },
        { "[queue.q]\nconcurrency = -1", "[queue.q] concurrency: expected an integer from 0 to 1000" },
        { "[queue.q]\ndispatcher = x", "[queue.q] dispatcher: expected an endpoint" },
        { "[db.x]\ntype = oracle", "<string>:2: [db.x] type: unknown database type 'oracle'" },
        { "[db.x]\ntype = sqlite\ndsn =", "<string>:3: [db.x] dsn: must not be empty" },
        { "[db.x]\nmax_active = -1", "[db.x] max_active: expected an integer from 0 to 10000" },
        { "[db.x]\nmax_idle = -2", "[db.x] max_idle: expected an integer from -1 to 10000" },
        { "[db.x]\nconnect_timeout = 2h", "[db.x] connect_timeout: must be from 0ms to 1h" },
        { "[db.x]\nsample_data = maybe", "[db.x] sample_data: expected true or false" },
        { "[results.x]\ntype = clickhouse", "[results.x] type: database type 'clickhouse' cannot hold results" },
        { "[results.x]\nresults_table = r_%d", "[results.x] results_table: expected a table name" },
        { "[results.x]\nresults_table = results", "expected a table name" },
        { "[results.x]\nresults_table = r_%s_%s", "expected a table name" },
        { "[results.x]\nresults_table = r-%s", "expected a table name" },
        { "[results.x]\nresults_table = r_%s%", "expected a table name" },
        { "[results.x]\nunlogged = 2", "[results.x] unlogged: expected true or false" },
        //  required keys and sections
        { "\n[db.x]\ntype = sqlite", "<string>:2: [db.x] is missing 'dsn'" },
        { "[results.y]\ndsn = y", "<string>:1: [results.y] is missing 'type'" },
        { "[db.empty]", "<string>:1: [db.empty] is missing 'type'" },
        //  unknown keys and sections
        { "colour = red", "<string>:1: unknown key 'colour' at the top level" },
        { "\n\n[app]\ncolour = red", "<string>:4: unknown key 'colour' in [app]" },
        { "bind = tcp://x:1", "unknown key 'bind' at the top level (it belongs in [mesh])" },
        { "[mesh]\nqueue = x", "unknown key 'queue' in [mesh] (it belongs in [app])" },
        { "[db.x]\nunlogged = true", "<string>:2: unknown key 'unlogged' in [db.x] (only valid in [results.NAME])" },
        { "[results.x]\nsample_data = true", "unknown key 'sample_data' in [results.x] (only valid in [db.NAME])" },
        { "[queue.x]\ntype = sqlite", "unknown key 'type' in [queue.x]" },
        { "[db.x]\nconcurrency = 1", "unknown key 'concurrency' in [db.x] (only valid in [queue.NAME])" },
        { "; comment\n[colours]\nred = 1", "<string>:2: unknown section [colours]" },
        { "[APP]", "unknown section [APP]" },
        //  a mesh others can reach, without keys, needs an explicit choice
        { "[mesh]\nbind = tcp://0.0.0.0:6070", "not a loopback address and no CURVE keys" },
        { "[mesh]\npublish = tcp://0.0.0.0:6071", "'tcp://0.0.0.0:6071' is not a loopback address" },
        { "[mesh]\nclient = tcp://0.0.0.0:6072", "'tcp://0.0.0.0:6072' is not a loopback address" },
        { "[mesh]\ndispatch = false\nclient = tcp://10.0.0.1:6072", "not a loopback address" },
        { "[mesh]\npeers = tcp://a:1, udp://b:2", "expected endpoints starting with tcp://" },
        { "[mesh]\nbind = tcp://10.1.2.3:6070", "set [mesh] insecure = true" },
        { "state_map_size = 2GiB\nstate_map_max = 1GiB", "state_map_max (1073741824 bytes) is less than" },
        { "default_job_ttl = 87600h1s", "default_job_ttl" },
        { "[colours]", "<string>:1: unknown section [colours]" },
        { "[db]", "<string>:1: bad section name [db]: expected [db.NAME]" },
        { "[db.]", "bad section name [db.]" },
        { "[db.a.b]", "bad section name [db.a.b]" },
        { "[db.a:b]", "bad section name [db.a:b]" },
        { "[results.a b]", "bad section name [results.a b]: expected [results.NAME]" },
        { "[queue.a b]", "bad section name [queue.a b]: expected [queue.NAME]" },
        { "[db.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]", "bad section name" },
        { "[job_queue.broker]\ntype = redis", "<string>:1: section [job_queue.broker] is not supported: "
          "job state is kept in LMDB under data_dir and no broker is needed" },
        { "[job_queue.state]", "section [job_queue.state] is not supported" },
        { "[]", "<string>:1: empty section name []" },
        //  duplicates
        { "queue = a\nqueue = b", "<string>:2: duplicate key 'queue' in [app]" },
        { "queue = a\n[app]\nqueue = b", "<string>:3: duplicate key 'queue' in [app]" },
        { "[db.x]\ntype = sqlite\n[mesh]\n[db.x]\ntype = sqlite", "<string>:5: duplicate key 'type' in [db.x]" },
        { "[db.x]\ntype = sqlite\ndsn = a\n  b", "<string>:4: duplicate key 'dsn' in [db.x]: indented lines" },
        { "server = 127.0.0.1:1\n\n\t[mesh]", "<string>:3: duplicate key 'server' in [app]" },
        //  syntax
        { "\n\njust words", "<string>:3: syntax error" },
        { "[db.x", "<string>:1: section header without ']'" },
        { "[db.x] junk", "<string>:1: unexpected text after section header" },
        { "found\n[db.x]\ncolour = 1", "<string>:1: syntax error" },
        { NULL, NULL }
    };
    for (size_t i = 0; bad [i].ini; i++)
        s_test_ini (bad [i].ini, bad [i].expect);

    //  Accepted syntax: BOM, CRLF, comments, key: value, [section] ; comment,
    //  indented first key of a section, re-opened sections.
    config = s_test_ini ("\xEF\xBB\xBF; comment\r\n# comment\r\nqueue: q1\r\n"
                         "[mesh] ; the mesh\n  bind = tcp://h:1\n[db.src]\nmax_active = 3\n"
                         "[mesh]\nheartbeat_liveness = 4\ninsecure = true\n", NULL);
    assert (streq (config->queue, "q1") && streq (config->mesh_bind, "tcp://h:1"));
    assert (streq (config->mesh_publish, "tcp://h:2") && streq (config->mesh_client, "tcp://h:3"));
    assert (config->heartbeat_liveness == 4);
    assert (dbt_config_db (config, "src")->conf.max_active == 3);
    assert (dbt_config_db (config, "src")->line == 6);
    dbt_config_destroy (&config);

    //  Lines inih cannot hold are reported, not split
    char *longline = dbt_printf ("dsn = %0*d", 300, 0);
    char *ini = dbt_printf ("[db.x]\ntype = sqlite\n%s\n", longline);
    s_test_ini (ini, "<string>:3: line too long (306 bytes; the INI parser takes at most");
    free (ini);
    free (longline);

    //  Missing sections
    config = dbt_config_from_string ("queue = x\n", err);
    assert (!config && strstr (err, "<string>: found 0 source databases in config"));
    config = dbt_config_from_string ("[db.x]\ntype = sqlite\ndsn = x\n", err);
    assert (!config && strstr (err, "<string>: found 0 results backends in config"));
    config = dbt_config_from_string ("", err);
    assert (!config && strstr (err, "found 0 source databases"));

    //  The sample config
    config = dbt_config_from_string (dbt_sample_config (), err);
    assert (config);
    assert (config->worker_concurrency == 4);
    assert (config->default_job_ttl_ms == 600000);
    assert (config->nsql_dirs == 1 && streq (config->sql_dirs [0], "sql"));
    db = dbt_config_db (config, "sample");
    assert (db && db->conf.sample_data && streq (db->conf.type, "sqlite"));
    res = dbt_config_results (config, "default");
    assert (res && streq (res->results_table, "results_%s"));
    dbt_config_destroy (&config);

    //  Files, environment and flags
    char dir [] = "/tmp/dbt-config-XXXXXX";
    assert (mkdtemp (dir));
    char *path = dbt_printf ("%s/test.ini", dir);
    char *bad_path = dbt_printf ("%s/bad.ini", dir);
    char *missing = dbt_printf ("%s/missing.ini", dir);
    char *config_flag = dbt_printf ("--config=%s", path);
    s_test_write (path,
        "server = 127.0.0.1:1001\n"
        "queue = file_q\n"
        "worker_concurrency = 5\n"
        "sql_directory = file_a,file_b\n"
        "[db.my_db]\ntype = sqlite\ndsn = file.db\n"
        "[results.res]\ntype = sqlite\ndsn = res.db\n");
    s_test_write (bad_path, "[db.x]\ntype = sqlite\n\nwhat = ever\n");
    dbt_action_t action;

    //  file only
    assert (s_test_load (&config, &action, err, "--config", path, NULL) == 0);
    assert (action == DBT_ACTION_RUN && config);
    assert (streq (config->config_file, path));
    assert (streq (config->server, "127.0.0.1:1001") && streq (config->queue, "file_q"));
    assert (config->worker_concurrency == 5 && config->nsql_dirs == 2);
    assert (streq (config->sql_dirs [1], "file_b"));
    assert (streq (dbt_config_db (config, "my_db")->conf.dsn, "file.db"));
    dbt_config_destroy (&config);

    //  errors in files carry the path and line
    assert (s_test_load (&config, &action, err, "--config", bad_path, NULL) == -1);
    assert (!config);
    char *expect = dbt_printf ("%s:4: unknown key 'what' in [db.x]", bad_path);
    assert (streq (err, expect));
    free (expect);
    assert (s_test_load (&config, &action, err, "--config", missing, NULL) == -1);
    expect = dbt_printf ("cannot open config file '%s': No such file or directory "
                         "(create one with --new-config)", missing);
    assert (streq (err, expect));
    free (expect);
    assert (s_test_load (&config, &action, err, "--config", dir, NULL) == -1);
    assert (strstr (err, "Is a directory"));
    char *nul_path = dbt_printf ("%s/nul.ini", dir);
    FILE *file = fopen (nul_path, "w");
    assert (file);
    assert (fwrite ("queue = a\nqueue\0= b\n", 1, 20, file) == 20);
    assert (fclose (file) == 0);
    assert (s_test_load (&config, &action, err, "--config", nul_path, NULL) == -1);
    assert (strstr (err, "nul.ini:2: NUL byte in config file"));

    //  quoted values, as upstream's TOML writes strings
    config = s_test_ini ("log_level = \"DEBUG\"\nqueue = 'q1' # a TOML comment\n"
                         "[app]\nserver = \"127.0.0.1:7000\"   \nauth_token = \"a#b;c\"\n"
                         "worker_name = \"it's\"\n"
                         "[db.q]\ntype = \"postgres\"\ndsn = 'host=h user=\"u\"'\n", NULL);
    assert (config->log_level == DBT_LOG_DEBUG && streq (config->queue, "q1"));
    assert (streq (config->server, "127.0.0.1:7000") && streq (config->auth_token, "a#b;c"));
    assert (streq (config->worker_name, "it's"));
    assert (streq (dbt_config_db (config, "q")->conf.dsn, "host=h user=\"u\""));
    dbt_config_destroy (&config);
    s_test_ini ("data_dir = ''", "data_dir: must not be empty");
    s_test_ini ("queue = \"abc", "queue: unterminated quoted value \"abc");
    s_test_ini ("queue = \"a ;b\"", "unterminated quoted value");
    s_test_ini ("queue = \"a\"b", "queue: unexpected text after the quoted value: 'b'");
    s_test_ini ("queue = \"a\"#b", "unexpected text after the quoted value: '#b'");
    s_test_ini ("[app]\nqueue = \"a\\\\b\"", "[app] queue: a backslash inside");
    config = s_test_ini ("auth_token = a\"b\"", NULL);
    assert (streq (config->auth_token, "a\"b\""));
    dbt_config_destroy (&config);

    //  environment over file
    setenv ("DUNGBEETLE_QUEUE", "env_q", 1);
    setenv ("DUNGBEETLE_APP__LOG_LEVEL", "error", 1);
    setenv ("DUNGBEETLE_DB__MY_DB__DSN", "env.db", 1);
    setenv ("DUNGBEETLE_DB__NEW__TYPE", "postgres", 1);
    setenv ("DUNGBEETLE_DB__NEW__DSN", "postgres://x", 1);
    setenv ("DUNGBEETLE_MESH__HEARTBEAT_LIVENESS", "7", 1);
    setenv ("DUNGBEETLE_QUEUE__HOT__CONCURRENCY", "2", 1);
    setenv ("DUNGBEETLE_SQL_DIRECTORY", "env_a", 1);
    assert (s_test_load (&config, &action, err, config_flag, NULL) == 0);
    assert (streq (config->queue, "env_q") && config->log_level == DBT_LOG_ERROR);
    assert (streq (config->server, "127.0.0.1:1001"));
    assert (streq (dbt_config_db (config, "my_db")->conf.dsn, "env.db"));
    db = dbt_config_db (config, "new");
    assert (db && db->line == 0 && streq (db->conf.type, "postgres"));
    assert (config->heartbeat_liveness == 7);
    assert (dbt_config_queue_concurrency (config, "hot", 0) == 2);
    assert (config->nsql_dirs == 1 && streq (config->sql_dirs [0], "env_a"));
    dbt_config_destroy (&config);

    //  flags over environment over file
    assert (s_test_load (&config, &action, err, config_flag,
                         "--queue", "flag_q", "--server=127.0.0.1:3003",
                         "--worker-concurrency", "9", "--worker-name=w9",
                         "--sql-directory", "f1,f2", "--sql-directory=f3",
                         "--worker-only", NULL) == 0);
    assert (streq (config->queue, "flag_q") && streq (config->server, "127.0.0.1:3003"));
    assert (config->worker_concurrency == 9 && streq (config->worker_name, "w9"));
    assert (config->worker_only);
    assert (config->nsql_dirs == 3 && streq (config->sql_dirs [0], "f1"));
    assert (streq (config->sql_dirs [2], "f3"));
    assert (config->log_level == DBT_LOG_ERROR);
    dbt_config_destroy (&config);
    assert (s_test_load (&config, &action, err, config_flag, "--worker-only=false",
                         "--queue=a", "--queue=b", NULL) == 0);
    assert (!config->worker_only && streq (config->queue, "b"));
    dbt_config_destroy (&config);

    //  environment errors name the variable
    setenv ("DUNGBEETLE_DB__NEW__TYPE", "oracle", 1);
    assert (s_test_load (&config, &action, err, config_flag, NULL) == -1);
    assert (strstr (err, "DUNGBEETLE_DB__NEW__TYPE: unknown database type 'oracle'"));
    unsetenv ("DUNGBEETLE_DB__NEW__TYPE");
    assert (s_test_load (&config, &action, err, config_flag, NULL) == -1);
    assert (streq (err, "environment: [db.new] is missing 'type'"));
    unsetenv ("DUNGBEETLE_DB__NEW__DSN");
    setenv ("DUNGBEETLE_APP__QUEUE", "again", 1);
    assert (s_test_load (&config, &action, err, config_flag, NULL) == -1);
    assert (strstr (err, "DUNGBEETLE_QUEUE: duplicate key 'queue' in [app]"));
    unsetenv ("DUNGBEETLE_APP__QUEUE");
    setenv ("DUNGBEETLE_COLOUR", "red", 1);
    assert (s_test_load (&config, &action, err, config_flag, NULL) == -1);
    assert (strstr (err, "DUNGBEETLE_COLOUR: unknown key 'colour' at the top level"));
    unsetenv ("DUNGBEETLE_COLOUR");
    setenv ("DUNGBEETLE_A__B__C__D", "x", 1);
    assert (s_test_load (&config, &action, err, config_flag, NULL) == -1);
    assert (strstr (err, "DUNGBEETLE_A__B__C__D: cannot map the name"));
    unsetenv ("DUNGBEETLE_A__B__C__D");
    //  upstream's keys without a meaning here are warned about and ignored
    setenv ("DUNGBEETLE_JOB_QUEUE__STATE__EXPIRY", "30s", 1);
    setenv ("DUNGBEETLE_JOB_QUEUE__BROKER__ADDRESSES", "[\"localhost:6379\"]", 1);
    setenv ("DUNGBEETLE_CONFIG", "other.toml", 1);
    setenv ("DUNGBEETLE_DB__MY_DB__UNLOGGED", "true", 1);
    assert (s_test_load (&config, &action, err, config_flag, NULL) == 0);
    assert (streq (config->queue, "env_q"));
    assert (dbt_config_db (config, "my_db") && !dbt_config_db (config, "my_db")->conf.unlogged);
    dbt_config_destroy (&config);
    unsetenv ("DUNGBEETLE_JOB_QUEUE__STATE__EXPIRY");
    unsetenv ("DUNGBEETLE_JOB_QUEUE__BROKER__ADDRESSES");
    unsetenv ("DUNGBEETLE_CONFIG");
    unsetenv ("DUNGBEETLE_DB__MY_DB__UNLOGGED");
    const char *why = NULL;
    assert (dbt_config_env_upstream_only ("job_queue__broker__type", &why) && strstr (why, "LMDB"));
    assert (dbt_config_env_upstream_only ("job_queue", NULL));
    assert (dbt_config_env_upstream_only ("db__a__unlogged", &why) && strstr (why, "results"));
    assert (!dbt_config_env_upstream_only ("results__a__unlogged", NULL));
    assert (!dbt_config_env_upstream_only ("db__unlogged", NULL));
    assert (!dbt_config_env_upstream_only ("job_queues", NULL));
    assert (!dbt_config_env_upstream_only ("app__log_level", NULL));
    //  but a typo in one of them is still an error
    setenv ("DUNGBEETLE_DB__MY_DB__UNLOGGD", "true", 1);
    assert (s_test_load (&config, &action, err, config_flag, NULL) == -1);
    assert (strstr (err, "DUNGBEETLE_DB__MY_DB__UNLOGGD: unknown key 'unloggd' in [db.my_db]"));
    unsetenv ("DUNGBEETLE_DB__MY_DB__UNLOGGD");
    setenv ("DUNGBEETLE_MESH__HEARTBEAT_LIVENESS", "99", 1);
    assert (s_test_load (&config, &action, err, config_flag, NULL) == -1);
    assert (streq (err, "DUNGBEETLE_MESH__HEARTBEAT_LIVENESS: expected an integer from 2 to 20, got '99'"));
    unsetenv ("DUNGBEETLE_MESH__HEARTBEAT_LIVENESS");
    unsetenv ("DUNGBEETLE_QUEUE");
    unsetenv ("DUNGBEETLE_APP__LOG_LEVEL");
    unsetenv ("DUNGBEETLE_DB__MY_DB__DSN");
    unsetenv ("DUNGBEETLE_QUEUE__HOT__CONCURRENCY");
    unsetenv ("DUNGBEETLE_SQL_DIRECTORY");

    //  flag errors
    static const struct {
        const char *arg1;
        const char *arg2;
        const char *expect;
    } bad_flags [] = {
        { "--worker-concurrency", "x", "--worker-concurrency: expected an integer from 1 to 1000, got 'x'" },
        { "--worker-concurrency=0", NULL, "--worker-concurrency: expected an integer from 1 to 1000, got '0'" },
        { "--foo", NULL, "unknown flag '--foo'" },
        { "--foo=bar", NULL, "unknown flag '--foo'" },
        { "--serv", "127.0.0.1:1", "unknown flag '--serv'" },
        { "--worker", NULL, "unknown flag '--worker'" },
        { "-x", NULL, "unknown flag '-x'" },
        { "--config", NULL, "--config: missing value" },
        { "--config=", NULL, "--config: must not be empty" },
        { "--worker-only=maybe", NULL, "--worker-only: expected true or false, got 'maybe'" },
        { "--worker-only", "true", "unexpected argument 'true'" },
        { "extra", NULL, "unexpected argument 'extra'" },
        { "--", "extra", "unexpected argument 'extra'" },
        { "--server", "nowhere", "--server: expected host:port, got 'nowhere'" },
        { "--queue=", NULL, "--queue: expected a queue name" },
        { "--worker-name=", NULL, "--worker-name: must not be empty" },
        { "--sql-directory", ",", "--sql-directory: expected a comma-separated list" },
        { "--version=2", NULL, "--version: expected true or false" },
        { NULL, NULL, NULL }
    };
    for (size_t i = 0; bad_flags [i].arg1; i++) {
        config = (dbt_config_t *) &config;     //  must be reset to NULL
        int rc = s_test_load (&config, &action, err, config_flag, bad_flags [i].arg1,
                              bad_flags [i].arg2, NULL);
        if (rc != -1 || config || !strstr (err, bad_flags [i].expect)) {
            fprintf (stderr, "config test: %s: expected '%s', got '%s'\n",
                     bad_flags [i].arg1, bad_flags [i].expect, rc ? err : "(success)");
            assert (false);
        }
    }

    //  actions read no file
    assert (s_test_load (&config, &action, err, "--version", "--config", missing, NULL) == 0);
    assert (action == DBT_ACTION_VERSION && config == NULL);
    assert (s_test_load (&config, &action, err, "-h", NULL) == 0);
    assert (action == DBT_ACTION_HELP && config == NULL);
    assert (s_test_load (&config, &action, err, "--help", "--version", NULL) == 0);
    assert (action == DBT_ACTION_HELP);
    assert (s_test_load (&config, &action, err, "--new-config", NULL) == 0);
    assert (action == DBT_ACTION_NEW_CONFIG && config == NULL);
    assert (s_test_load (&config, &action, err, "--new-config=false", config_flag, NULL) == 0);
    assert (action == DBT_ACTION_RUN && config);
    dbt_config_destroy (&config);
    assert (s_test_load (&config, &action, err, "--version", "--worker-concurrency=x", NULL) == -1);

    //  default file name: config.ini in the working directory
    char cwd [4096];
    assert (getcwd (cwd, sizeof (cwd)));
    assert (chdir (dir) == 0);
    assert (s_test_load (&config, &action, err, NULL) == -1);
    assert (streq (err, "cannot open config file 'config.ini': No such file or directory "
                        "(create one with --new-config)"));
    assert (chdir (cwd) == 0);

    //  usage names every flag
    static const char *flags [] = {
        "--config", "--new-config", "--server", "--sql-directory", "--queue", "--worker-name",
        "--worker-concurrency", "--worker-only", "--version", "-h, --help", NULL
    };
    for (size_t i = 0; flags [i]; i++)
        assert (strstr (dbt_config_usage (), flags [i]));

    unlink (path);
    unlink (bad_path);
    unlink (nul_path);
    assert (rmdir (dir) == 0);
    free (path);
    free (bad_path);
    free (nul_path);
    free (missing);
    free (config_flag);
    if (verbose)
        printf ("config: ok\n");
}
#endif  //  DBT_SELFTEST
