/*  =========================================================================
    fuzz_tasks - fuzz target for the task file parser (dbt_tasks_parse)

    Each input is parsed into a fresh registry; on success the registry's
    invariants are checked (name order, lookups), the same input is parsed
    again (every name must now be a duplicate and change nothing), and the
    tasks are bound to a small fixed configuration.

    Seed corpus: tests/fixtures/tasks/ (valid_*.sql parse, broken_*.sql
    fail with a file:line error). Build and run: see tests/README.md.
    =========================================================================
*/
#include "../../src/dbt_classes.h"
#include "fuzz.h"

//  Parse one input and check what can be checked. Aborts on a broken
//  invariant; parse errors are normal. Returns 0 when the input parsed.
int
dbt_fuzz_one (const uint8_t *data, size_t size, char *err)
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
