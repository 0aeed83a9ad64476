/*  =========================================================================
    dbt_main - the dungbeetle daemon: argv, config, start actors, wait

    Signals are blocked in every thread and taken here with sigwait, so no
    handler races the actors. SIGINT/SIGTERM drain and stop the node.
    =========================================================================
*/
#include "dbt_classes.h"

//  dungbeetle --new-keys NAME: write a key pair and exit. It takes no other
//  flag, so it never reads a config. Returns the exit status, or -1 when
//  argv is not a --new-keys command.
static int
s_new_keys (int argc, char **argv)
{
    const char *name = NULL;
    bool asked = false;
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--new-keys")) {
            asked = true;
            name = i + 1 < argc ? argv [i + 1] : NULL;
        }
        else
        if (strncmp (argv [i], "--new-keys=", 11) == 0) {
            asked = true;
            name = argv [i] + 11;
        }
    }
    if (!asked)
        return -1;
    bool alone = (argc == 3 && name == argv [2]) || (argc == 2 && name);
    if (!name || !*name || !alone) {
        fprintf (stderr, "dungbeetle: --new-keys takes one NAME and no other flag: "
                 "dungbeetle --new-keys NAME (writes NAME and NAME_secret)\n");
        return 1;
    }
    char err [DBT_ERRMSG_LEN];
    if (dbt_curve_new_keys (name, err)) {
        fprintf (stderr, "dungbeetle: %s\n", err);
        return 1;
    }
    printf ("%s (public key, share it) and %s_secret (keep it private) written.\n", name, name);
    return 0;
}

int
main (int argc, char **argv)
{
    //  Before any thread exists: we take the signals, not czmq.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    signal (SIGPIPE, SIG_IGN);
    setenv ("ZSYS_SIGHANDLER", "false", 1);

    int keys = s_new_keys (argc, argv);
    if (keys >= 0)
        return keys;
    char err [DBT_ERRMSG_LEN];
    dbt_config_t *config = NULL;
    dbt_action_t action = DBT_ACTION_RUN;
    if (dbt_config_load (argc, argv, &config, &action, err)) {
        fprintf (stderr, "dungbeetle: %s\n", err);
        return 1;
    }
    if (action == DBT_ACTION_VERSION) {
        printf ("dungbeetle %s\n", DBT_VERSION_STRING);
        return 0;
    }
    if (action == DBT_ACTION_HELP) {
        fputs (dbt_config_usage (), stdout);
        return 0;
    }
    if (action == DBT_ACTION_NEW_CONFIG) {
        if (dbt_sample_write ("config.ini", "sql", err)) {
            fprintf (stderr, "dungbeetle: %s\n", err);
            return 1;
        }
        printf ("config.ini and sql/sample.sql generated. Edit them and run dungbeetle.\n");
        return 0;
    }
    dbt_log_set_level (config->log_level);
    dbt_log (DBT_LOG_INFO, "main: dungbeetle %s starting (config %s)", DBT_VERSION_STRING,
             config->config_file ? config->config_file : "none");
    //  The keys and their ZAP handler exist before any socket does.
    dbt_curve_t *curve = NULL;
    dbt_node_t *node = NULL;
    if (dbt_curve_new (config, &curve, err) == 0) {
        config->curve = curve;
        node = dbt_node_new (config, err);
    }
    if (!node) {
        dbt_log (DBT_LOG_ERROR, "main: %s", err);
        fprintf (stderr, "dungbeetle: %s\n", err);
        dbt_curve_destroy (&curve);
        dbt_config_destroy (&config);
        return 1;
    }
    int received = 0;
    sigwait (&signals, &received);
    dbt_log (DBT_LOG_INFO, "main: %s received, shutting down", received == SIGINT ? "SIGINT" : "SIGTERM");
    dbt_node_destroy (&node, true);
    dbt_curve_destroy (&curve);
    dbt_config_destroy (&config);
    zsys_shutdown ();
    dbt_log (DBT_LOG_INFO, "main: stopped");
    return 0;
}
