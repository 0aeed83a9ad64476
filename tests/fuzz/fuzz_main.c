/*  =========================================================================
    fuzz_main - libFuzzer entry point and standalone replay of a fuzz target

    Linked with one fuzz_NAME.c (see fuzz.h). With -DDBT_LIBFUZZER it is
    only LLVMFuzzerTestOneInput, for libFuzzer's own main. Otherwise it is
    a replay program: `fuzz_NAME FILE...` feeds each file to the target and
    prints "FILE: ok" when the target accepted it or "FILE: <error>" when it
    refused it; a broken invariant aborts. tests/fuzz.t runs it over the
    seed corpus (under --enable-sanitizers that is an ASan+UBSan run).
    =========================================================================
*/
#include "../../src/dbt_classes.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv);
int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  --------------------------------------------------------------------------
//  Quiet the process once: no czmq signal handlers, no log lines.

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    setenv ("ZSYS_SIGHANDLER", "false", 1);
    dbt_log_set_level (DBT_LOG_OFF);
    return 0;
}

//  --------------------------------------------------------------------------
//  The configuration and tasks requests are checked against.

void
dbt_fuzz_registry (dbt_config_t **config_p, dbt_tasks_t **tasks_p)
{
    static dbt_config_t *config;
    static dbt_tasks_t *tasks;
    if (!config) {
        char err [DBT_ERRMSG_LEN];
        config = dbt_config_from_string (
            "[db.a]\ntype = sqlite\ndsn = a.db\n"
            "[db.b]\ntype = sqlite\ndsn = b.db\n"
            "[results.r]\ntype = sqlite\ndsn = r.db\n"
            "[results.s]\ntype = sqlite\ndsn = s.db\n", err);
        assert (config);
        tasks = dbt_tasks_new ();
        const char *text = "-- name: t\nSELECT 1;\n"
                           "-- name: two\n-- db: a, b\n-- queue: q\nSELECT ?, ?;\n";
        assert (dbt_tasks_parse (tasks, text, strlen (text), "fuzz.sql", err) == 0);
        assert (dbt_tasks_bind (tasks, config, err) == 0);
        //  Only a connection counts the ? of SQLite; pin it as prepare would.
        dbt_tasks_lookup (tasks, "two")->nparams = 2;
    }
    *config_p = config;
    *tasks_p = tasks;
}

//  --------------------------------------------------------------------------
//  One input from libFuzzer; refusals are normal outcomes.

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [DBT_ERRMSG_LEN];
    dbt_fuzz_one (data, size, err);
    return 0;
}

#ifndef DBT_LIBFUZZER
//  --------------------------------------------------------------------------
//  Replay: each file in turn, from an exact-size heap copy so that ASan
//  sees any read past the end.

int
main (int argc, char **argv)
{
    LLVMFuzzerInitialize (&argc, &argv);
    const char *self = strrchr (argv [0], '/') ? strrchr (argv [0], '/') + 1 : argv [0];
    if (argc < 2) {
        fprintf (stderr, "usage: %s FILE...\n", self);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        FILE *file = fopen (argv [i], "rb");
        if (!file) {
            fprintf (stderr, "%s: cannot open '%s': %s\n", self, argv [i], strerror (errno));
            return 2;
        }
        dbt_buf_t buf = { 0 };
        char chunk [4096];
        size_t n;
        while ((n = fread (chunk, 1, sizeof (chunk), file)) > 0)
            dbt_buf_append (&buf, chunk, n);
        fclose (file);
        uint8_t *data = (uint8_t *) dbt_malloc (buf.len ? buf.len : 1);
        if (buf.len)
            memcpy (data, buf.data, buf.len);
        char err [DBT_ERRMSG_LEN] = "";
        if (dbt_fuzz_one (data, buf.len, err) == 0)
            printf ("%s: ok\n", argv [i]);
        else
            printf ("%s: %s\n", argv [i], err [0] ? err : "refused");
        fflush (stdout);
        free (data);
        dbt_buf_free (&buf);
    }
    return 0;
}
#endif
