/*  =========================================================================
    dbt_config_env - DUNGBEETLE_* environment overrides of the configuration

    See dbt_config_env.h. Tested from dbt_config_test.c.
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_config_env.h"

//  --------------------------------------------------------------------------
//  Upstream's keys that mean nothing here, as lowercased variable paths:
//  a prefix ending in "__" covers everything under it.

static const struct {
    const char *path;           //  path after DUNGBEETLE_, lowercased
    bool prefix;                //  matches every path starting with it
    const char *why;            //  reason given in the warning
} s_upstream [] = {
    { "job_queue__", true, "there is no broker or state store to configure (job state is kept "
      "in LMDB under data_dir)" },
    { "job_queue", false, "there is no broker or state store to configure (job state is kept "
      "in LMDB under data_dir)" },
    { "config", false, "the config file is named by --config (this variable had no effect "
      "upstream either)" },
    { "new_config", false, "use --new-config (this variable had no effect upstream either)" },
    { "version", false, "use --version (this variable had no effect upstream either)" },
};

bool
dbt_config_env_upstream_only (const char *path, const char **why)
{
    assert (path);
    for (size_t i = 0; i < sizeof (s_upstream) / sizeof (s_upstream [0]); i++) {
        size_t len = strlen (s_upstream [i].path);
        if (s_upstream [i].prefix ? strncmp (path, s_upstream [i].path, len) == 0
                                  : streq (path, s_upstream [i].path)) {
            if (why)
                *why = s_upstream [i].why;
            return true;
        }
    }
    //  upstream read unlogged in [db.NAME] too (and ignored it there)
    const char *suffix = "__unlogged";
    size_t plen = strlen (path), slen = strlen (suffix);
    if (strncmp (path, "db__", 4) == 0 && plen > 4 + slen
    &&  streq (path + plen - slen, suffix) && !strstr (path + 4, "__unlogged__")) {
        if (why)
            *why = "unlogged applies to [results.NAME] sections only (upstream ignored it on "
                   "[db.NAME] too)";
        return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Environment: DUNGBEETLE_<SECTION>__<KEY>, parts separated by "__" and
//  lowercased. One part is a root key, two are [section] key, three are
//  [section.name] key (so names with upper case or "__" cannot be set).

extern char **environ;

static int
s_strcmp_ptr (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

int
dbt_config_env_load (dbt_config_t *config, char *err)
{
    static const char prefix [] = "DUNGBEETLE_";
    size_t count = 0;
    for (char **env = environ; env && *env; env++)
        if (strncmp (*env, prefix, sizeof (prefix) - 1) == 0)
            count++;
    if (count == 0)
        return 0;
    //  Sorted, so that the first error is always the same one.
    char **vars = (char **) dbt_malloc (count * sizeof (char *));
    count = 0;
    for (char **env = environ; env && *env; env++)
        if (strncmp (*env, prefix, sizeof (prefix) - 1) == 0)
            vars [count++] = dbt_strdup (*env);
    qsort (vars, count, sizeof (char *), s_strcmp_ptr);

    dbt_config_pass_t pass = { .config = config, .source = "environment" };
    pass.seen = zhashx_new ();
    pass.section = dbt_strdup ("");
    int rc = 0;
    char msg [DBT_ERRMSG_LEN];
    for (size_t i = 0; i < count && rc == 0; i++) {
        char *var = vars [i];
        char *eq = strchr (var, '=');
        assert (eq);
        *eq = 0;
        const char *value = eq + 1;
        //  Split the lowercased name on "__".
        char *path = dbt_strdup (var + sizeof (prefix) - 1);
        for (char *p = path; *p; p++)
            *p = (char) tolower ((unsigned char) *p);
        const char *why = NULL;
        if (dbt_config_env_upstream_only (path, &why)) {
            dbt_log (DBT_LOG_WARN, "config: ignoring %s: %s", var, why);
            free (path);
            continue;
        }
        char *parts [4] = { NULL };
        size_t nparts = 0;
        char *p = path;
        bool bad = false;
        while (true) {
            char *sep = strstr (p, "__");
            if (sep)
                *sep = 0;
            if (!*p || nparts == 3)
                bad = true;
            else
                parts [nparts++] = p;
            if (!sep || bad)
                break;
            p = sep + 2;
        }
        if (bad) {
            dbt_err_set (err, "%s: cannot map the name to a config key (expected DUNGBEETLE_KEY, "
                         "DUNGBEETLE_SECTION__KEY or DUNGBEETLE_SECTION__NAME__KEY)", var);
            rc = -1;
        }
        else {
            char *section = nparts == 1 ? dbt_strdup ("")
                          : nparts == 2 ? dbt_strdup (parts [0])
                          : dbt_printf ("%s.%s", parts [0], parts [1]);
            if (dbt_config_section_open (&pass, section, 0, msg) != 0
            ||  dbt_config_apply (&pass, parts [nparts - 1], value, false, msg) != 0) {
                dbt_err_set (err, "%s: %s", var, msg);
                rc = -1;
            }
            free (section);
        }
        free (path);
    }
    for (size_t i = 0; i < count; i++)
        free (vars [i]);
    free (vars);
    zhashx_destroy (&pass.seen);
    free (pass.section);
    return rc;
}

