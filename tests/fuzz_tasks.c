/*  =========================================================================
    fuzz_tasks - fuzz target for the task file parser (dbt_tasks_parse)

    Each input is parsed into a fresh registry; on success the registry's
    invariants are checked (name order, lookups), the same input is parsed
    again (every name must now be a duplicate and change nothing), and the
    tasks are bound to a small fixed configuration.

    Standalone (built by `make check`): fuzz_tasks FILE... parses each file
    and prints "FILE: ok" or "FILE: <error>"; tests/fuzz_tasks.t runs it
    over the seed corpus in tests/fixtures/tasks/.

    libFuzzer build, from the source tree after an out-of-tree configure in
    build/ (config.h comes from there); needs libclang-rt-14-dev:

      clang -g -O1 -fsanitize=fuzzer,address,undefined -DDBT_LIBFUZZER \
          -Ibuild -Isrc -Iinclude tests/fuzz_tasks.c src/dbt_tasks.c \
          src/dbt_config.c src/dbt_util.c src/dbt_log.c src/dbt_sample.c \
          $(pkg-config --cflags --libs libczmq inih uuid) -lm -o fuzz_tasks_lf
      mkdir -p corpus && ./fuzz_tasks_lf -max_total_time=120 corpus tests/fixtures/tasks
    =========================================================================
*/
#include "../src/dbt_classes.h"

//  Parse one input and check what can be checked. Aborts on a broken
//  invariant; parse errors are normal. Returns 0 when the input parsed.
static int
s_run (const uint8_t *data, size_t size, char *err)
{
    static dbt_config_t *config = NULL;
    if (!config) {
        config = dbt_config_from_string (
            "[db.a]\ntype = sqlite\ndsn = a.db\n"
            "[db.b]\ntype = sqlite\ndsn = b.db\n"
            "[results.r]\ntype = sqlite\ndsn = r.db\n", err);
        assert (config);
    }
    dbt_tasks_t *tasks = dbt_tasks_new ();
    int rc = dbt_tasks_parse (tasks, (const char *) data, size, "fuzz.sql", err);
    size_t count = dbt_tasks_size (tasks);
    if (rc != 0)
        assert (count == 0);
    else {
        for (size_t i = 0; i < count; i++) {
            dbt_task_t *task = dbt_tasks_at (tasks, i);
            assert (task && task->name && task->sql && *task->sql);
            assert (dbt_tasks_lookup (tasks, task->name) == task);
            if (i > 0)
                assert (strcmp (dbt_tasks_at (tasks, i - 1)->name, task->name) < 0);
            assert (task->ntags >= 1 && streq (task->tag_names [0], "name"));
            assert (task->conc >= 0 && task->conc <= 10000 && task->nparams == -1);
        }
        assert (dbt_tasks_at (tasks, count) == NULL);
        char again [DBT_ERRMSG_LEN];
        int rc2 = dbt_tasks_parse (tasks, (const char *) data, size, "fuzz2.sql", again);
        assert (count == 0 ? rc2 == 0 : rc2 == -1);
        assert (dbt_tasks_size (tasks) == count);
        char bind_err [DBT_ERRMSG_LEN];
        if (dbt_tasks_bind (tasks, config, bind_err) == 0)
            for (size_t i = 0; i < count; i++)
                assert (dbt_tasks_at (tasks, i)->queue);
    }
    dbt_tasks_destroy (&tasks);
    return rc;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [DBT_ERRMSG_LEN];
    s_run (data, size, err);
    return 0;
}

#ifndef DBT_LIBFUZZER
int
main (int argc, char **argv)
{
    setenv ("ZSYS_SIGHANDLER", "false", 1);
    for (int i = 1; i < argc; i++) {
        FILE *file = fopen (argv [i], "rb");
        if (!file) {
            fprintf (stderr, "fuzz_tasks: cannot open '%s': %s\n", argv [i], strerror (errno));
            return 2;
        }
        dbt_buf_t buf = { 0 };
        char chunk [4096];
        size_t n;
        while ((n = fread (chunk, 1, sizeof (chunk), file)) > 0)
            dbt_buf_append (&buf, chunk, n);
        fclose (file);
        //  An exact-size copy, so ASan sees reads past the end.
        uint8_t *data = (uint8_t *) dbt_malloc (buf.len);
        if (buf.len)
            memcpy (data, buf.data, buf.len);
        char err [DBT_ERRMSG_LEN];
        if (s_run (data, buf.len, err) == 0)
            printf ("%s: ok\n", argv [i]);
        else
            printf ("%s: %s\n", argv [i], err);
        free (data);
        dbt_buf_free (&buf);
    }
    return 0;
}
#endif
