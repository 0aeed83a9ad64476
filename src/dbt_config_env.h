/*  =========================================================================
    dbt_config_env - DUNGBEETLE_* environment overrides of the configuration

    Part of dbt_config (split out for size): reads DUNGBEETLE_<KEY>,
    DUNGBEETLE_<SECTION>__<KEY> and DUNGBEETLE_<SECTION>__<NAME>__<KEY>
    into a configuration being loaded, through the same setter as the file
    (dbt_config_apply), so a value means the same wherever it comes from.
    Parts are separated by "__" and lowercased, as upstream's koanf env
    provider does. A variable naming one of upstream's keys that has no
    meaning here (job_queue.*, config, new_config, ...) is logged as a
    warning and ignored, so an old deployment's environment does not stop
    start-up; any other unknown variable is an error (a typo is caught).

    This header also declares the parts of dbt_config.c the reader shares
    (the pass state, opening a section, applying a key): private to
    dbt_config*.c.
    =========================================================================
*/
#ifndef DBT_CONFIG_ENV_H_INCLUDED
#define DBT_CONFIG_ENV_H_INCLUDED

//  State of one pass over one source (file, string or environment).
typedef struct {
    dbt_config_t *config;       //  configuration being filled
    const char *source;         //  file name or "<string>" for messages
    //  line reader
    FILE *file;                 //  file being read, or NULL
    const char *text;           //  string being read, or NULL
    size_t pos;                 //  read position in text
    char *raw;                  //  current line (getline buffer)
    size_t rawcap;              //  its allocation
    int line;                   //  number of the current line
    bool indented;              //  current line starts with whitespace
    bool prev_key;              //  a key was read since the last section
                                //  header (inih's multi-line state)
    //  current section
    int scope;                  //  S_APP ... of the current section
    size_t index;               //  index in dbs / results / queues
    char *section;              //  section name as written ("" = root)
    zhashx_t *seen;             //  "section\nkey" set for duplicate checks
    //  first error
    int err_line;               //  its line, 0 = none
    char err [DBT_ERRMSG_LEN];  //  its message without the location
} dbt_config_pass_t;

//  Make section name current in pass (adding it to the configuration when
//  new); line is its header's line, 0 for the environment. Returns 0, or -1
//  with msg when the name is not a section we know. (dbt_config.c)
int
    dbt_config_section_open (dbt_config_pass_t *pass, const char *name, int line, char *msg);

//  Set key name to value in pass's current section. qualify puts
//  "[section] key: " before value errors. Returns 0, or -1 with msg.
//  (dbt_config.c)
int
    dbt_config_apply (dbt_config_pass_t *pass, const char *name, const char *value, bool qualify,
                      char *msg);

//  Apply every DUNGBEETLE_* variable of the environment to config, in name
//  order. Returns 0, or -1 with err naming the first bad variable.
int
    dbt_config_env_load (dbt_config_t *config, char *err);

//  True when the lowercased variable path (after DUNGBEETLE_, e.g.
//  "job_queue__broker__addresses") names an upstream key that has no
//  meaning here; *why is a static reason for the warning.
bool
    dbt_config_env_upstream_only (const char *path, const char **why);

#endif
