/*  =========================================================================
    dbt_config - command line and INI configuration

    See dbt_config.h. One table (s_keys) names every key with its sections,
    type, default, range and help text; the file, the environment and the
    flags all go through the same setter, so a value means the same thing
    wherever it comes from. inih reads the file through our own line reader
    (ini_parse_stream), which is how we know line numbers, section header
    lines, over-long lines and indented continuation lines: inih itself
    reports none of these to a handler. No state outside the objects built.

    File syntax (inih): "key = value" or "key: value", whitespace around
    both trimmed; whole-line comments start with ';' or '#'; an inline
    comment starts with ';' after whitespace ("a ;b" is "a", "a;b" is
    "a;b"). '#' is NOT an inline comment: "token = ab#c" keeps "ab#c".
    Lines are limited to inih's build limit (200 bytes on Debian, less 3).
    Indented lines after a key are rejected (inih would glue them to the
    previous value). A value in double or single quotes (upstream's TOML
    strings) is taken without them, see s_unquote. The self test lives in dbt_config_test.c.
    =========================================================================
*/
#include "dbt_classes.h"
#include <getopt.h>
#include <ini.h>
#include "dbt_config_env.h"

//  Where a key may appear (bit set).
#define S_APP       1           //  root level (before any section) and [app]
#define S_MESH      2           //  [mesh]
#define S_DB        4           //  [db.NAME]
#define S_RESULTS   8           //  [results.NAME]
#define S_QUEUE     16          //  [queue.NAME]

//  Longest section name after its "db." / "results." / "queue." prefix.
#define S_NAME_MAX  64

//  Value types of keys.
typedef enum {
    S_STRING,                   //  char *, must not be empty
    S_OPTSTRING,                //  char *, empty means NULL
    S_INT,                      //  int within [min, max]
    S_BOOL,                     //  bool, Go strconv.ParseBool spelling
    S_DURATION,                 //  int64_t ms within [min, max]
    S_SIZE,                     //  int64_t bytes within [min, max]
    S_LEVEL,                    //  dbt_log_level_t, DEBUG INFO WARN ERROR
    S_DIRS,                     //  sql_directory: comma-separated list
    S_ENDPOINT,                 //  char *, tcp:// ipc:// or inproc://
    S_PEERS,                    //  [mesh] peers: comma-separated endpoints
    S_ADDRESS,                  //  char *, host:port
    S_QUEUENAME,                //  char *, [A-Za-z0-9_:-]{1,64}
    S_DBTYPE,                   //  char *, a known database type
    S_TABLE                     //  char *, results table name format
} s_type_t;

//  One configuration key.
typedef struct {
    int scopes;                 //  S_APP ... bits where the key is valid
    const char *name;           //  key name as written in the file
    s_type_t type;              //  value type
    const char *fallback;       //  default as text, NULL = none/computed
    int64_t min;                //  smallest value (ints, durations, sizes)
    int64_t max;                //  largest value
    size_t offset;              //  field offset in the scope's struct
    const char *help;           //  one line for docs and messages
} s_key_t;

#define S_CFG(field) offsetof (dbt_config_t, field)
#define S_SEC(field) offsetof (dbt_dbsection_t, field)
#define S_QUE(field) offsetof (dbt_queueconf_t, field)
#define S_MS_HOUR    INT64_C (3600000)
#define S_MS_DAY     (24 * S_MS_HOUR)
#define S_KIB        INT64_C (1024)
#define S_GIB        (S_KIB * S_KIB * S_KIB)

//  Every key. Ranges are inclusive; INT64_MAX means "no upper limit".
static const s_key_t s_keys [] = {
    //  [app], also accepted at the root level as upstream does
    { S_APP, "log_level", S_LEVEL, "INFO", 0, 0, S_CFG (log_level),
      "lowest level logged: DEBUG, INFO, WARN or ERROR (any case)" },
    { S_APP, "default_job_ttl", S_DURATION, "0", 0, DBT_MAX_TTL_MS, S_CFG (default_job_ttl_ms),
      "run-time limit of a job that sets no ttl, 0 = none" },
    { S_APP, "server", S_ADDRESS, "127.0.0.1:6060", 0, 0, S_CFG (server),
      "HTTP API listen address, host:port" },
    { S_APP, "queue", S_QUEUENAME, "default", 0, 0, S_CFG (queue),
      "queue of tasks that have no -- queue tag" },
    { S_APP, "worker_name", S_STRING, NULL, 0, 0, S_CFG (worker_name),
      "name of this node in logs and job records (default: the host name)" },
    { S_APP, "worker_concurrency", S_INT, "10", 1, 1000, S_CFG (worker_concurrency),
      "worker threads per queue when neither [queue.NAME] nor -- conc sets it" },
    { S_APP, "worker_only", S_BOOL, "false", 0, 0, S_CFG (worker_only),
      "run jobs only: no HTTP API and no dispatcher" },
    { S_APP, "sql_directory", S_DIRS, "./sql", 0, 0, S_CFG (sql_dirs),
      "task file directories, comma-separated" },
    { S_APP, "data_dir", S_STRING, "./data", 0, 0, S_CFG (data_dir),
      "directory of the job state database (LMDB)" },
    { S_APP, "max_body_size", S_SIZE, "1MB", 1000, 1000000000, S_CFG (max_body_size),
      "largest HTTP request body, 1KB to 1GB" },
    { S_APP, "request_timeout", S_DURATION, "30s", 100, S_MS_DAY, S_CFG (request_timeout_ms),
      "time limit of one HTTP request" },
    { S_APP, "max_connections", S_INT, "4096", 1, 1000000, S_CFG (max_connections),
      "most open HTTP connections (lowered to fit the open file limit)" },
    { S_APP, "max_connections_per_ip", S_INT, "256", 0, 1000000, S_CFG (max_connections_per_ip),
      "most open HTTP connections from one client address, 0 = unlimited" },
    { S_APP, "http_threads", S_INT, "0", 0, 1024, S_CFG (http_threads),
      "HTTP threads: 0 = one per connection, N = an epoll pool of N threads" },
    { S_APP, "auth_token", S_OPTSTRING, NULL, 0, 0, S_CFG (auth_token),
      "bearer token HTTP clients must send; empty or absent = no auth" },
    { S_APP, "tls_cert", S_OPTSTRING, NULL, 0, 0, S_CFG (tls_cert),
      "PEM certificate (chain) of the HTTP front: it then serves HTTPS only" },
    { S_APP, "tls_key", S_OPTSTRING, NULL, 0, 0, S_CFG (tls_key),
      "PEM private key (unencrypted) of tls_cert" },
    { S_APP, "state_map_size", S_SIZE, "1GiB", 1024 * 1024, 64 * S_GIB, S_CFG (state_map_size),
      "largest size of the job state database, 1MiB to 64GiB" },
    { S_APP, "state_map_max", S_SIZE, NULL, 1024 * 1024, 1024 * S_GIB, S_CFG (state_map_max),
      "largest the job state database may grow to, default the larger of 8GiB and state_map_size" },
    { S_APP, "retry_backoff", S_DURATION, "1s", 0, S_MS_DAY, S_CFG (retry_base_ms),
      "delay before the first retry of a failed job; doubles each retry" },
    { S_APP, "retry_backoff_max", S_DURATION, "5m", 0, 7 * S_MS_DAY, S_CFG (retry_max_ms),
      "longest delay between retries, at least retry_backoff" },
    { S_APP, "results_ttl", S_DURATION, "0", 0, DBT_MAX_TTL_MS, S_CFG (results_ttl_ms),
      "age at which results tables are dropped, 0 = keep forever" },
    { S_APP, "state_ttl", S_DURATION, "24h", 0, DBT_MAX_TTL_MS, S_CFG (state_ttl_ms),
      "age at which finished job records are removed, 0 = keep forever" },
    { S_APP, "shutdown_timeout", S_DURATION, "30s", 0, S_MS_HOUR, S_CFG (shutdown_timeout_ms),
      "how long a stopping node waits for running jobs" },
    { S_APP, "max_interruptions", S_INT, "3", 0, 100, S_CFG (max_interruptions),
      "times a job lost with its worker is re-run before it fails" },
    //  [mesh]
    { S_MESH, "bind", S_ENDPOINT, "tcp://127.0.0.1:6070", 0, 0, S_CFG (mesh_bind),
      "this node's dispatcher endpoint (tcp://, ipc:// or inproc://)" },
    { S_MESH, "publish", S_ENDPOINT, NULL, 0, 0, S_CFG (mesh_publish),
      "where this node's dispatcher publishes state updates, default: bind's port + 1" },
    { S_MESH, "client", S_ENDPOINT, NULL, 0, 0, S_CFG (mesh_client),
      "the client endpoint (the job API over ZeroMQ), default: bind's port + 2" },
    { S_MESH, "peers", S_PEERS, NULL, 0, 0, 0,
      "other nodes' dispatcher endpoints (their bind), comma-separated" },
    { S_MESH, "dispatch", S_BOOL, "true", 0, 0, S_CFG (mesh_dispatch),
      "run a dispatcher on this node (false: HTTP front and workers only)" },
    { S_MESH, "dispatcher", S_ENDPOINT, NULL, 0, 0, S_CFG (mesh_dispatcher),
      "dispatcher of queues without their own, default: bind" },
    { S_MESH, "insecure", S_BOOL, "false", 0, 0, S_CFG (mesh_insecure),
      "allow a mesh endpoint that is not loopback without CURVE keys (anyone reaching it can "
      "submit, cancel and take jobs as a worker)" },
    { S_MESH, "curve_cert", S_OPTSTRING, NULL, 0, 0, S_CFG (mesh_curve_cert),
      "this node's CURVE certificate (its NAME_secret file from dungbeetle --new-keys): every "
      "mesh socket uses CURVE" },
    { S_MESH, "curve_server", S_OPTSTRING, NULL, 0, 0, S_CFG (mesh_curve_server),
      "public certificate or Z85 key of the mesh's dispatchers, default: curve_cert's own" },
    { S_MESH, "curve_allow", S_OPTSTRING, NULL, 0, 0, S_CFG (mesh_curve_allow),
      "directory of public certificates allowed to connect (workers, clients, peers)" },
    { S_MESH, "backup", S_ENDPOINT, NULL, 0, 0, S_CFG (mesh_backup),
      "on a primary dispatcher: its failover partner's endpoint (the backup's bind)" },
    { S_MESH, "primary", S_ENDPOINT, NULL, 0, 0, S_CFG (mesh_primary),
      "on a backup dispatcher: its failover partner's endpoint (the primary's bind)" },
    { S_MESH, "replication", S_OPTSTRING, "sync", 0, 0, S_CFG (mesh_replication),
      "failover pair: sync (acknowledge once both members committed) or async" },
    { S_MESH, "sync_timeout", S_DURATION, "2s", 100, 60000, S_CFG (sync_timeout_ms),
      "failover pair: wait this long for the partner before carrying on alone" },
    { S_MESH, "heartbeat_interval", S_DURATION, "1s", 100, 60000, S_CFG (heartbeat_ms),
      "time between heartbeats, 100ms to 60s" },
    { S_MESH, "heartbeat_liveness", S_INT, "3", 2, 20, S_CFG (heartbeat_liveness),
      "missed heartbeats before a peer counts as lost, 2 to 20" },
    //  [db.NAME] and [results.NAME]
    { S_DB | S_RESULTS, "type", S_DBTYPE, NULL, 0, 0, S_SEC (conf.type),
      "database type (required)" },
    { S_DB | S_RESULTS, "dsn", S_STRING, NULL, 0, 0, S_SEC (conf.dsn),
      "driver connection string (required)" },
    { S_DB | S_RESULTS, "max_active", S_INT, "0", 0, 10000, S_SEC (conf.max_active),
      "most open connections, 0 = unlimited" },
    { S_DB | S_RESULTS, "max_idle", S_INT, "-1", -1, 10000, S_SEC (conf.max_idle),
      "idle connections kept open, -1 = same as max_active" },
    { S_DB | S_RESULTS, "connect_timeout", S_DURATION, "10s", 0, S_MS_HOUR,
      S_SEC (conf.connect_timeout_ms), "time limit of a connection attempt, 0 = driver default" },
    { S_DB, "sample_data", S_BOOL, "false", 0, 0, S_SEC (conf.sample_data),
      "sqlite: create the sample entries table when the file is new" },
    { S_RESULTS, "results_table", S_TABLE, "results_%s", 0, 0, S_SEC (results_table),
      "results table name, %s is replaced by the job id" },
    { S_RESULTS, "unlogged", S_BOOL, "false", 0, 0, S_SEC (conf.unlogged),
      "postgres: create UNLOGGED results tables" },
    //  [queue.NAME]
    { S_QUEUE, "concurrency", S_INT, "0", 0, 1000, S_QUE (concurrency),
      "worker threads per node serving the queue, 0 = default" },
    { S_QUEUE, "dispatcher", S_ENDPOINT, NULL, 0, 0, S_QUE (dispatcher),
      "endpoint of the node dispatching the queue, default: [mesh] dispatcher" },
    { 0, NULL, S_STRING, NULL, 0, 0, 0, NULL }
};



//  --------------------------------------------------------------------------
//  Field access. Strings go through memcpy because some fields are
//  `const char *` (dbt_dbconf_t) and some `char *`.

static void *
s_field (void *obj, size_t offset)
{
    return (char *) obj + offset;
}

static char *
s_get_string (void *obj, size_t offset)
{
    char *value;
    memcpy (&value, s_field (obj, offset), sizeof (value));
    return value;
}

//  Replace a string field, taking ownership of value and freeing the old one.
static void
s_set_string (void *obj, size_t offset, char *value)
{
    free (s_get_string (obj, offset));
    memcpy (s_field (obj, offset), &value, sizeof (value));
}

//  Format a millisecond duration compactly ("100ms", "30s", "5m", "24h").
static void
s_format_ms (int64_t ms, char *out, size_t size)
{
    if (ms != 0 && ms % S_MS_HOUR == 0)
        snprintf (out, size, "%" PRId64 "h", ms / S_MS_HOUR);
    else
    if (ms != 0 && ms % 60000 == 0)
        snprintf (out, size, "%" PRId64 "m", ms / 60000);
    else
    if (ms != 0 && ms % 1000 == 0)
        snprintf (out, size, "%" PRId64 "s", ms / 1000);
    else
        snprintf (out, size, "%" PRId64 "ms", ms);
}

//  Format a byte size compactly ("1KB", "1GiB", "512").
static void
s_format_size (int64_t bytes, char *out, size_t size)
{
    static const struct {
        const char *suffix;
        int64_t factor;
    } units [] = {
        { "GiB", S_GIB }, { "GB", 1000000000 }, { "MiB", S_KIB * S_KIB },
        { "MB", 1000000 }, { "KiB", S_KIB }, { "KB", 1000 }
    };
    for (size_t i = 0; i < sizeof (units) / sizeof (units [0]); i++) {
        if (bytes != 0 && bytes % units [i].factor == 0) {
            snprintf (out, size, "%" PRId64 "%s", bytes / units [i].factor, units [i].suffix);
            return;
        }
    }
    snprintf (out, size, "%" PRId64, bytes);
}

//  True when name matches [A-Za-z0-9_-]{1,64} (db and results names).
static bool
s_db_name_valid (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > S_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum ((unsigned char) *p) && *p != '_' && *p != '-')
            return false;
    return true;
}

//  True when value is a results table format: exactly one %s, no other %,
//  and otherwise only [A-Za-z0-9_].
static bool
s_table_valid (const char *value)
{
    size_t placeholders = 0;
    for (const char *p = value; *p; p++) {
        if (*p == '%') {
            if (p [1] != 's')
                return false;
            placeholders++;
            p++;
        }
        else
        if (!isalnum ((unsigned char) *p) && *p != '_')
            return false;
    }
    return placeholders == 1;
}

//  True when value looks like host:port (host may be empty or [v6]).
static bool
s_address_valid (const char *value)
{
    const char *colon = strrchr (value, ':');
    if (!colon)
        return false;
    int64_t port;
    if (dbt_parse_int64 (colon + 1, 0, 65535, &port) != 0)
        return false;
    size_t hostlen = (size_t) (colon - value);
    if (hostlen > 0 && value [0] == '[')
        return value [hostlen - 1] == ']' && hostlen > 2;
    for (size_t i = 0; i < hostlen; i++)
        if (value [i] == ':' || isspace ((unsigned char) value [i]))
            return false;
    return true;
}

//  Set sql_dirs from a comma-separated list; returns -1 when it names none.
static size_t s_split_list (const char *value, char ***items_p);

static int
s_set_dirs (dbt_config_t *config, const char *value)
{
    char **dirs = NULL;
    size_t ndirs = s_split_list (value, &dirs);
    if (ndirs == 0)
        return -1;
    for (size_t i = 0; i < config->nsql_dirs; i++)
        free (config->sql_dirs [i]);
    free (config->sql_dirs);
    config->sql_dirs = dirs;
    config->nsql_dirs = ndirs;
    return 0;
}

//  Split a comma-separated list (spaces around items trimmed, empty items
//  dropped) into a new array. Returns the count.
static size_t
s_split_list (const char *value, char ***items_p)
{
    char **items = NULL;
    size_t count = 0;
    const char *p = value;
    while (true) {
        const char *comma = strchr (p, ',');
        const char *end = comma ? comma : p + strlen (p);
        const char *start = p;
        while (start < end && isspace ((unsigned char) *start))
            start++;
        while (end > start && isspace ((unsigned char) end [-1]))
            end--;
        if (end > start) {
            items = (char **) dbt_realloc (items, (count + 1) * sizeof (char *));
            items [count++] = dbt_strndup (start, (size_t) (end - start));
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *items_p = items;
    return count;
}

static bool
s_endpoint_valid (const char *value)
{
    return (strncmp (value, "tcp://", 6) == 0 && value [6])
        || (strncmp (value, "ipc://", 6) == 0 && value [6])
        || (strncmp (value, "inproc://", 9) == 0 && value [9]);
}

//  Set the mesh peers from a comma-separated list of endpoints.
static int
s_set_peers (dbt_config_t *config, const char *value, char *msg)
{
    char **peers = NULL;
    size_t count = s_split_list (value, &peers);
    for (size_t i = 0; i < count; i++) {
        if (!s_endpoint_valid (peers [i])) {
            dbt_err_set (msg, "expected endpoints starting with tcp://, ipc:// or inproc://, got '%s'",
                         peers [i]);
            for (size_t j = 0; j < count; j++)
                free (peers [j]);
            free (peers);
            return -1;
        }
    }
    for (size_t i = 0; i < config->nmesh_peers; i++)
        free (config->mesh_peers [i]);
    free (config->mesh_peers);
    config->mesh_peers = peers;
    config->nmesh_peers = count;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse value as key's type and store it in obj (the struct of the key's
//  scope). On error returns -1 with a message (no location) in msg.

static int
s_set (void *obj, const s_key_t *key, int scope, const char *value, char *msg)
{
    char lo [32], hi [32];
    int64_t number;
    switch (key->type) {
        case S_STRING:
            if (!*value) {
                dbt_err_set (msg, "must not be empty");
                return -1;
            }
            s_set_string (obj, key->offset, dbt_strdup (value));
            return 0;
        case S_OPTSTRING:
            s_set_string (obj, key->offset, *value ? dbt_strdup (value) : NULL);
            return 0;
        case S_INT:
            if (dbt_parse_int64 (value, key->min, key->max, &number) != 0) {
                dbt_err_set (msg, "expected an integer from %" PRId64 " to %" PRId64 ", got '%s'",
                             key->min, key->max, value);
                return -1;
            }
            *(int *) s_field (obj, key->offset) = (int) number;
            return 0;
        case S_BOOL: {
            bool flag;
            if (dbt_parse_bool (value, &flag) != 0) {
                dbt_err_set (msg, "expected true or false, got '%s'", value);
                return -1;
            }
            *(bool *) s_field (obj, key->offset) = flag;
            return 0;
        }
        case S_DURATION:
            if (dbt_parse_duration (value, &number) != 0) {
                dbt_err_set (msg, "expected a duration such as 30s, 5m or 1h30m, got '%s'", value);
                return -1;
            }
            if (number < key->min || number > key->max) {
                s_format_ms (key->min, lo, sizeof (lo));
                s_format_ms (key->max, hi, sizeof (hi));
                if (key->max == INT64_MAX)
                    dbt_err_set (msg, "must be at least %s, got '%s'", lo, value);
                else
                    dbt_err_set (msg, "must be from %s to %s, got '%s'", lo, hi, value);
                return -1;
            }
            *(int64_t *) s_field (obj, key->offset) = number;
            return 0;
        case S_SIZE:
            if (dbt_parse_size (value, &number) != 0) {
                dbt_err_set (msg, "expected a size such as 512KB, 10MB or 1GiB, got '%s'", value);
                return -1;
            }
            if (number < key->min || number > key->max) {
                s_format_size (key->min, lo, sizeof (lo));
                s_format_size (key->max, hi, sizeof (hi));
                dbt_err_set (msg, "must be from %s to %s, got '%s'", lo, hi, value);
                return -1;
            }
            *(int64_t *) s_field (obj, key->offset) = number;
            return 0;
        case S_LEVEL: {
            dbt_log_level_t level;
            if (dbt_log_parse_level (value, &level) != 0 || level == DBT_LOG_OFF) {
                dbt_err_set (msg, "expected DEBUG, INFO, WARN or ERROR, got '%s'", value);
                return -1;
            }
            *(dbt_log_level_t *) s_field (obj, key->offset) = level;
            return 0;
        }
        case S_DIRS:
            if (s_set_dirs ((dbt_config_t *) obj, value) != 0) {
                dbt_err_set (msg, "expected a comma-separated list of directories, got '%s'", value);
                return -1;
            }
            return 0;
        case S_PEERS:
            return s_set_peers ((dbt_config_t *) obj, value, msg);
        case S_ENDPOINT:
            if (!s_endpoint_valid (value)) {
                dbt_err_set (msg, "expected an endpoint starting with tcp://, ipc:// or inproc://, got '%s'",
                             value);
                return -1;
            }
            s_set_string (obj, key->offset, dbt_strdup (value));
            return 0;
        case S_ADDRESS:
            if (!s_address_valid (value)) {
                dbt_err_set (msg, "expected host:port, got '%s'", value);
                return -1;
            }
            s_set_string (obj, key->offset, dbt_strdup (value));
            return 0;
        case S_QUEUENAME:
            if (!dbt_id_valid (value)) {
                dbt_err_set (msg, "expected a queue name of 1 to 64 characters A-Z a-z 0-9 _ : -, got '%s'",
                             value);
                return -1;
            }
            s_set_string (obj, key->offset, dbt_strdup (value));
            return 0;
        case S_DBTYPE: {
            const dbt_driver_t *driver = dbt_driver_find (value);
            if (!driver) {
                dbt_err_set (msg, "unknown database type '%s' (known: %s)", value, dbt_driver_names ());
                return -1;
            }
            if (scope == S_RESULTS && !driver->write_begin) {
                dbt_err_set (msg, "database type '%s' cannot hold results", value);
                return -1;
            }
            s_set_string (obj, key->offset, dbt_strdup (value));
            return 0;
        }
        case S_TABLE:
            if (!s_table_valid (value)) {
                dbt_err_set (msg, "expected a table name with exactly one %%s and otherwise only "
                             "A-Z a-z 0-9 _, got '%s'", value);
                return -1;
            }
            s_set_string (obj, key->offset, dbt_strdup (value));
            return 0;
    }
    assert (false);
    return -1;
}

//  Find a key valid in scope; NULL when unknown.
static const s_key_t *
s_key_find (int scope, const char *name)
{
    for (const s_key_t *key = s_keys; key->name; key++)
        if ((key->scopes & scope) && streq (key->name, name))
            return key;
    return NULL;
}

//  Apply the defaults of every key of scope to obj.
static void
s_defaults (void *obj, int scope)
{
    char msg [DBT_ERRMSG_LEN];
    for (const s_key_t *key = s_keys; key->name; key++) {
        if ((key->scopes & scope) && key->fallback) {
            int rc = s_set (obj, key, scope, key->fallback, msg);
            assert (rc == 0);
            (void) rc;
        }
    }
}

//  Free one db/results section's strings.
static void
s_dbsection_free (dbt_dbsection_t *section)
{
    free ((char *) section->conf.name);
    free ((char *) section->conf.type);
    free ((char *) section->conf.dsn);
    free (section->results_table);
}

//  --------------------------------------------------------------------------
//  Destroy; nulls the pointer.

void
dbt_config_destroy (dbt_config_t **self_p)
{
    assert (self_p);
    dbt_config_t *self = *self_p;
    if (!self)
        return;
    free (self->config_file);
    free (self->server);
    free (self->queue);
    free (self->worker_name);
    for (size_t i = 0; i < self->nsql_dirs; i++)
        free (self->sql_dirs [i]);
    free (self->sql_dirs);
    for (size_t i = 0; i < self->nmesh_peers; i++)
        free (self->mesh_peers [i]);
    free (self->mesh_peers);
    free (self->mesh_publish);
    free (self->mesh_client);
    free (self->data_dir);
    free (self->auth_token);
    free (self->tls_cert);
    free (self->tls_key);
    free (self->mesh_bind);
    free (self->mesh_dispatcher);
    free (self->mesh_backup);
    free (self->mesh_primary);
    free (self->mesh_replication);
    free (self->mesh_curve_cert);
    free (self->mesh_curve_server);
    free (self->mesh_curve_allow);
    for (size_t i = 0; i < self->ndbs; i++)
        s_dbsection_free (&self->dbs [i]);
    free (self->dbs);
    for (size_t i = 0; i < self->nresults; i++)
        s_dbsection_free (&self->results [i]);
    free (self->results);
    for (size_t i = 0; i < self->nqueues; i++) {
        free (self->queues [i].name);
        free (self->queues [i].dispatcher);
    }
    free (self->queues);
    free (self);
    *self_p = NULL;
}

//  New configuration holding the built-in defaults.
static dbt_config_t *
s_config_new (void)
{
    dbt_config_t *self = (dbt_config_t *) dbt_malloc (sizeof (dbt_config_t));
    s_defaults (self, S_APP | S_MESH);
    return self;
}

//  --------------------------------------------------------------------------
//  Sections

//  Find or add a db/results section; returns its index.
static size_t
s_dbsection (dbt_config_t *config, bool results, const char *name, int line)
{
    dbt_dbsection_t **list = results ? &config->results : &config->dbs;
    size_t *count = results ? &config->nresults : &config->ndbs;
    for (size_t i = 0; i < *count; i++)
        if (streq ((*list) [i].conf.name, name))
            return i;
    *list = (dbt_dbsection_t *) dbt_realloc (*list, (*count + 1) * sizeof (dbt_dbsection_t));
    dbt_dbsection_t *section = &(*list) [*count];
    memset (section, 0, sizeof (*section));
    section->conf.name = dbt_strdup (name);
    section->conf.results = results;
    section->line = line;
    s_defaults (section, results ? S_RESULTS : S_DB);
    return (*count)++;
}

//  Find or add a queue section; returns its index.
static size_t
s_queuesection (dbt_config_t *config, const char *name)
{
    for (size_t i = 0; i < config->nqueues; i++)
        if (streq (config->queues [i].name, name))
            return i;
    config->queues = (dbt_queueconf_t *) dbt_realloc (
        config->queues, (config->nqueues + 1) * sizeof (dbt_queueconf_t));
    dbt_queueconf_t *queue = &config->queues [config->nqueues];
    memset (queue, 0, sizeof (*queue));
    queue->name = dbt_strdup (name);
    s_defaults (queue, S_QUEUE);
    return config->nqueues++;
}

//  Make section name current (adding it to config when new). Returns -1
//  with msg when the name is not a section we know.
int
dbt_config_section_open (dbt_config_pass_t *pass, const char *name, int line, char *msg)
{
    static const struct {
        const char *prefix;     //  section prefix including the dot
        int scope;              //  its scope
    } named [] = {
        { "db.", S_DB }, { "results.", S_RESULTS }, { "queue.", S_QUEUE }
    };
    int scope = 0;
    size_t index = 0;
    if (streq (name, "") || streq (name, "app"))
        scope = S_APP;
    else
    if (streq (name, "mesh"))
        scope = S_MESH;
    else
    if (streq (name, "job_queue") || strncmp (name, "job_queue.", 10) == 0) {
        dbt_err_set (msg, "section [%s] is not supported: job state is kept in LMDB under "
                     "data_dir and no broker is needed (remove the section)", name);
        return -1;
    }
    else {
        for (size_t i = 0; i < sizeof (named) / sizeof (named [0]); i++) {
            size_t plen = strlen (named [i].prefix);
            if (strncmp (name, named [i].prefix, plen - 1) != 0
            ||  (name [plen - 1] != '.' && name [plen - 1] != 0))
                continue;
            const char *sub = name [plen - 1] ? name + plen : "";
            bool ok = named [i].scope == S_QUEUE ? dbt_id_valid (sub) : s_db_name_valid (sub);
            if (!ok) {
                dbt_err_set (msg, "bad section name [%s]: expected [%.*sNAME] with NAME of 1 to 64 "
                             "characters A-Z a-z 0-9 _ -%s", name, (int) plen, named [i].prefix,
                             named [i].scope == S_QUEUE ? " :" : "");
                return -1;
            }
            scope = named [i].scope;
            if (scope == S_QUEUE)
                index = s_queuesection (pass->config, sub);
            else
                index = s_dbsection (pass->config, scope == S_RESULTS, sub, line);
            break;
        }
        if (!scope) {
            dbt_err_set (msg, "unknown section [%s] (expected [app], [mesh], [db.NAME], "
                         "[results.NAME] or [queue.NAME])", name);
            return -1;
        }
    }
    pass->scope = scope;
    pass->index = index;
    free (pass->section);
    pass->section = dbt_strdup (name);
    return 0;
}

//  Set key name to value in the current section. qualify puts "[section]
//  key: " before value errors (file); the environment names its variable.
int
dbt_config_apply (dbt_config_pass_t *pass, const char *name, const char *value, bool qualify, char *msg)
{
    const char *label = *pass->section ? pass->section : "app";
    const s_key_t *key = s_key_find (pass->scope, name);
    if (!key) {
        const char *hint = "";
        const s_key_t *other = NULL;
        for (const s_key_t *k = s_keys; k->name && !other; k++)
            if (streq (k->name, name))
                other = k;
        if (other && (other->scopes & S_APP))
            hint = " (it belongs in [app])";
        else
        if (other && (other->scopes & S_MESH))
            hint = " (it belongs in [mesh])";
        else
        if (other && other->scopes == S_RESULTS)
            hint = " (only valid in [results.NAME])";
        else
        if (other && other->scopes == S_DB)
            hint = " (only valid in [db.NAME])";
        else
        if (other && (other->scopes & S_QUEUE))
            hint = " (only valid in [queue.NAME])";
        if (*pass->section)
            dbt_err_set (msg, "unknown key '%s' in [%s]%s", name, pass->section, hint);
        else
            dbt_err_set (msg, "unknown key '%s' at the top level%s", name, hint);
        return -1;
    }
    char *seen_key = dbt_printf ("%s\n%s", label, name);
    int rc = zhashx_insert (pass->seen, seen_key, (void *) key);
    free (seen_key);
    if (rc != 0) {
        dbt_err_set (msg, "duplicate key '%s' in [%s]", name, label);
        return -1;
    }
    void *obj = pass->config;
    if (pass->scope == S_DB)
        obj = &pass->config->dbs [pass->index];
    else
    if (pass->scope == S_RESULTS)
        obj = &pass->config->results [pass->index];
    else
    if (pass->scope == S_QUEUE)
        obj = &pass->config->queues [pass->index];
    char detail [DBT_ERRMSG_LEN];
    if (s_set (obj, key, pass->scope, value, detail) != 0) {
        if (!qualify)
            dbt_err_set (msg, "%s", detail);
        else
        if (*pass->section)
            dbt_err_set (msg, "[%s] %s: %s", pass->section, name, detail);
        else
            dbt_err_set (msg, "%s: %s", name, detail);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  INI reading. inih calls s_reader for each line and s_handler for each
//  key; both run on the same dbt_config_pass_t, so the handler knows the line.

//  Record the first error of a pass at the current line.
static void
s_pass_fail (dbt_config_pass_t *pass, const char *msg)
{
    if (pass->err_line == 0) {
        pass->err_line = pass->line > 0 ? pass->line : 1;
        snprintf (pass->err, sizeof (pass->err), "%s", msg);
    }
}

//  Read the next raw line into pass->raw without its newline; returns its
//  length or -1 at the end.
static ssize_t
s_next_line (dbt_config_pass_t *pass)
{
    ssize_t len;
    if (pass->file) {
        len = getline (&pass->raw, &pass->rawcap, pass->file);
        if (len < 0)
            return -1;
    }
    else {
        if (!pass->text [pass->pos])
            return -1;
        const char *start = pass->text + pass->pos;
        const char *nl = strchr (start, '\n');
        size_t n = nl ? (size_t) (nl - start) + 1 : strlen (start);
        if (pass->rawcap < n + 1) {
            pass->raw = (char *) dbt_realloc (pass->raw, n + 1);
            pass->rawcap = n + 1;
        }
        memcpy (pass->raw, start, n);
        pass->raw [n] = 0;
        pass->pos += n;
        len = (ssize_t) n;
    }
    if (len > 0 && pass->raw [len - 1] == '\n')
        len--;
    return len;
}

//  inih line reader: hands inih one line at a time after checking it, and
//  opens section headers itself (inih tells handlers neither the header
//  line nor empty sections, and truncates names longer than 49 bytes).
static char *
s_reader (char *str, int num, void *stream)
{
    dbt_config_pass_t *pass = (dbt_config_pass_t *) stream;
    if (pass->err_line)
        return NULL;            //  stop at the first error
    ssize_t len = s_next_line (pass);
    if (len < 0)
        return NULL;
    pass->line++;
    char *raw = pass->raw;
    if (memchr (raw, 0, (size_t) len)) {
        s_pass_fail (pass, "NUL byte in config file");
        return NULL;
    }
    raw [len] = 0;
    if (len > 0 && raw [len - 1] == '\r')
        raw [--len] = 0;
    //  inih needs room for "\r\n\0" after the longest line.
    if (len + 3 > num) {
        char msg [DBT_ERRMSG_LEN];
        dbt_err_set (msg, "line too long (%zd bytes; the INI parser takes at most %d)",
                     len, num - 3);
        s_pass_fail (pass, msg);
        return NULL;
    }
    const char *start = raw;
    if (pass->line == 1 && strncmp (start, "\xEF\xBB\xBF", 3) == 0)
        start += 3;
    pass->indented = isspace ((unsigned char) *start);
    while (isspace ((unsigned char) *start))
        start++;
    //  inih takes an indented line after a key as a continuation, not a header.
    if (*start == '[' && !(pass->indented && pass->prev_key)) {
        char msg [DBT_ERRMSG_LEN];
        const char *close = strchr (start, ']');
        if (!close) {
            s_pass_fail (pass, "section header without ']'");
            return NULL;
        }
        const char *rest = close + 1;
        while (isspace ((unsigned char) *rest))
            rest++;
        if (*rest && *rest != ';' && *rest != '#') {
            dbt_err_set (msg, "unexpected text after section header: '%s'", rest);
            s_pass_fail (pass, msg);
            return NULL;
        }
        char *name = dbt_strndup (start + 1, (size_t) (close - start - 1));
        int rc = -1;
        if (*name)
            rc = dbt_config_section_open (pass, name, pass->line, msg);
        else
            dbt_err_set (msg, "empty section name []");
        free (name);
        if (rc != 0) {
            s_pass_fail (pass, msg);
            return NULL;
        }
        pass->prev_key = false;
    }
    memcpy (str, raw, (size_t) len);
    str [len] = '\n';
    str [len + 1] = 0;
    return str;
}

//  A value written in quotes, as upstream's TOML wrote strings: "text" (no
//  backslash inside: TOML would read it as an escape) or 'text' (literal),
//  optionally followed by whitespace and a # comment. Sets *out to a new
//  string without the quotes, or NULL when value is not quoted. Returns 0,
//  or -1 with msg when a quoted value is malformed.
static int
s_unquote (const char *value, char **out, char *msg)
{
    *out = NULL;
    char quote = *value;
    if (quote != '"' && quote != '\'')
        return 0;
    const char *close = strchr (value + 1, quote);
    if (!close) {
        dbt_err_set (msg, "unterminated quoted value %s (note that ' ;' starts a comment)",
                     value);
        return -1;
    }
    const char *rest = close + 1;
    while (isspace ((unsigned char) *rest))
        rest++;
    if (*rest && !(*rest == '#' && rest > close + 1)) {
        dbt_err_set (msg, "unexpected text after the quoted value: '%s'", rest);
        return -1;
    }
    if (quote == '"' && memchr (value + 1, '\\', (size_t) (close - value - 1))) {
        dbt_err_set (msg, "a backslash inside \"...\" is a TOML escape, which is not read "
                     "here: write the value without quotes, or in '...'");
        return -1;
    }
    *out = dbt_strndup (value + 1, (size_t) (close - value - 1));
    return 0;
}

//  inih handler: one key of the current section. Returns 1, or 0 on error.
static int
s_handler (void *user, const char *section, const char *name, const char *value)
{
    dbt_config_pass_t *pass = (dbt_config_pass_t *) user;
    if (pass->err_line)
        return 1;
    char msg [DBT_ERRMSG_LEN];
    if (pass->indented && pass->prev_key) {
        //  inih's multi-line values: the indented line repeats the last key.
        dbt_err_set (msg, "duplicate key '%s' in [%s]: indented lines continue the previous "
                     "value, and multi-line values are not supported (remove the indentation)",
                     name, *pass->section ? pass->section : "app");
        s_pass_fail (pass, msg);
        return 0;
    }
    if (strncmp (section, pass->section, strlen (section)) != 0) {
        s_pass_fail (pass, "cannot parse section header");
        return 0;
    }
    pass->prev_key = true;
    char *unquoted = NULL;
    if (s_unquote (value, &unquoted, msg) != 0) {
        char full [DBT_ERRMSG_LEN];
        if (*pass->section)
            dbt_err_set (full, "[%s] %s: %s", pass->section, name, msg);
        else
            dbt_err_set (full, "%s: %s", name, msg);
        s_pass_fail (pass, full);
        return 0;
    }
    int rc = dbt_config_apply (pass, name, unquoted ? unquoted : value, true, msg);
    free (unquoted);
    if (rc != 0) {
        s_pass_fail (pass, msg);
        return 0;
    }
    return 1;
}

//  Run inih over the pass's file or text. Returns 0, or -1 with err.
static int
s_parse_ini (dbt_config_pass_t *pass, char *err)
{
    pass->scope = S_APP;
    pass->section = dbt_strdup ("");
    pass->seen = zhashx_new ();
    int rc = ini_parse_stream (s_reader, pass, s_handler, pass);
    int result = 0;
    if (rc == -2) {
        dbt_err_set (err, "%s: out of memory parsing the INI file", pass->source);
        result = -1;
    }
    else
    if (pass->err_line && (rc <= 0 || rc >= pass->err_line)) {
        dbt_err_set (err, "%s:%d: %s", pass->source, pass->err_line, pass->err);
        result = -1;
    }
    else
    if (rc > 0) {
        dbt_err_set (err, "%s:%d: syntax error: expected [section], key = value, or a ; comment",
                     pass->source, rc);
        result = -1;
    }
    else
    if (pass->file && ferror (pass->file)) {
        dbt_err_set (err, "cannot read config file '%s': %s", pass->source, strerror (errno));
        result = -1;
    }
    zhashx_destroy (&pass->seen);
    free (pass->section);
    pass->section = NULL;
    free (pass->raw);
    pass->raw = NULL;
    return result;
}

//  Read the INI file at path into config.
static int
s_load_file (dbt_config_t *config, const char *path, char *err)
{
    dbt_config_pass_t pass = { .config = config, .source = path };
    pass.file = fopen (path, "r");
    if (!pass.file) {
        dbt_err_set (err, "cannot open config file '%s': %s%s", path, strerror (errno),
                     errno == ENOENT ? " (create one with --new-config)" : "");
        return -1;
    }
    int rc = s_parse_ini (&pass, err);
    fclose (pass.file);
    return rc;
}

//  --------------------------------------------------------------------------
//  Checks across keys, and computed defaults, once every source is read.

//  An endpoint next to a bind: tcp port + offset (or any port when the
//  bind takes any), ipc and inproc names with a suffix.
static char *
s_derive_endpoint (const char *bind, int offset, const char *suffix)
{
    if (strncmp (bind, "tcp://", 6) == 0) {
        const char *colon = strrchr (bind, ':');
        int64_t port = 0;
        if (colon && colon > bind + 5 && dbt_parse_int64 (colon + 1, 1, 65535 - offset, &port) == 0)
            return dbt_printf ("%.*s:%" PRId64, (int) (colon - bind), bind, port + offset);
        if (colon && streq (colon + 1, "*"))
            return dbt_strdup (bind);
    }
    return dbt_printf ("%s%s", bind, suffix);
}

//  True for endpoints only this host can reach: inproc, ipc, and tcp on a
//  loopback address.
static bool
s_endpoint_local (const char *endpoint)
{
    if (strncmp (endpoint, "inproc://", 9) == 0 || strncmp (endpoint, "ipc://", 6) == 0)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    return strncmp (host, "127.", 4) == 0 || strncmp (host, "localhost:", 10) == 0
        || strncmp (host, "[::1]:", 6) == 0;
}

static int
s_finish (dbt_config_t *config, const char *source, char *err)
{
    if (!config->worker_name) {
        char host [256] = "";
        if (gethostname (host, sizeof (host) - 1) != 0 || !*host)
            snprintf (host, sizeof (host), "localhost");
        config->worker_name = dbt_strdup (host);
    }
    if (config->worker_only)
        config->mesh_dispatch = false;
    //  The default dispatcher: this node's own; for a node without one,
    //  the dispatcher at [mesh] bind (one config for a full node and its
    //  worker-only helpers, as upstream's example runs them) unless it has
    //  peers, which say who the default is.
    if (!config->mesh_dispatcher && (config->mesh_dispatch || config->nmesh_peers == 0))
        config->mesh_dispatcher = dbt_strdup (config->mesh_bind);
    if (!config->mesh_publish)
        config->mesh_publish = s_derive_endpoint (config->mesh_bind, 1, ".pub");
    if (!config->mesh_client) {
        config->mesh_client = s_derive_endpoint (config->mesh_bind, 2, ".client");
        config->mesh_client_derived = true;
    }
    if (config->state_map_max == 0)
        config->state_map_max = config->state_map_size > 8 * S_GIB ? config->state_map_size : 8 * S_GIB;
    if (config->state_map_max < config->state_map_size) {
        dbt_err_set (err, "%s: state_map_max (%" PRId64 " bytes) is less than state_map_size (%"
                     PRId64 " bytes)", source, config->state_map_max, config->state_map_size);
        return -1;
    }
    const char *open_endpoint = !config->mesh_dispatch ? NULL
                              : !s_endpoint_local (config->mesh_bind) ? config->mesh_bind
                              : !s_endpoint_local (config->mesh_publish) ? config->mesh_publish : NULL;
    if (!open_endpoint && !config->worker_only && !s_endpoint_local (config->mesh_client))
        open_endpoint = config->mesh_client;
    if (!config->mesh_insecure && !config->mesh_curve_cert && open_endpoint) {
        dbt_err_set (err, "%s: [mesh] endpoint '%s' is not a loopback address and no CURVE keys are "
                     "configured: anyone who can reach it could submit and cancel jobs, read job "
                     "state and take jobs as a worker; bind to 127.0.0.1, or set [mesh] insecure = "
                     "true to accept that (see docs/config.md)", source, open_endpoint);
        return -1;
    }
    //  A failover pair: one partner, named on the side that is not it.
    if (config->mesh_backup && config->mesh_primary) {
        dbt_err_set (err, "%s: [mesh] backup and primary are both set: set backup on the primary "
                     "(naming the backup) and primary on the backup (naming the primary)", source);
        return -1;
    }
    config->mesh_partner = config->mesh_backup ? config->mesh_backup : config->mesh_primary;
    config->mesh_is_primary = config->mesh_backup != NULL;
    if (config->mesh_partner && !config->mesh_dispatch) {
        dbt_err_set (err, "%s: [mesh] %s is set on a node without a dispatcher (dispatch = false "
                     "or worker_only)", source, config->mesh_backup ? "backup" : "primary");
        return -1;
    }
    if (config->mesh_partner && streq (config->mesh_partner, config->mesh_bind)) {
        dbt_err_set (err, "%s: [mesh] %s names this node's own bind '%s'", source,
                     config->mesh_backup ? "backup" : "primary", config->mesh_bind);
        return -1;
    }
    if (!config->mesh_replication || !(streq (config->mesh_replication, "sync")
                                       || streq (config->mesh_replication, "async"))) {
        dbt_err_set (err, "%s: [mesh] replication must be sync or async, not '%s'", source,
                     config->mesh_replication ? config->mesh_replication : "");
        return -1;
    }
    config->pair_sync = streq (config->mesh_replication, "sync");
    if (config->retry_max_ms < config->retry_base_ms) {
        dbt_err_set (err, "%s: retry_backoff_max (%" PRId64 "ms) is less than retry_backoff (%"
                     PRId64 "ms)", source, config->retry_max_ms, config->retry_base_ms);
        return -1;
    }
    for (int pass = 0; pass < 2; pass++) {
        dbt_dbsection_t *list = pass ? config->results : config->dbs;
        size_t count = pass ? config->nresults : config->ndbs;
        const char *kind = pass ? "results" : "db";
        for (size_t i = 0; i < count; i++) {
            const char *missing = !list [i].conf.type ? "type" : !list [i].conf.dsn ? "dsn" : NULL;
            if (!missing)
                continue;
            if (list [i].line > 0)
                dbt_err_set (err, "%s:%d: [%s.%s] is missing '%s'", source, list [i].line,
                             kind, list [i].conf.name, missing);
            else
                dbt_err_set (err, "environment: [%s.%s] is missing '%s'", kind,
                             list [i].conf.name, missing);
            return -1;
        }
    }
    if (config->ndbs == 0) {
        dbt_err_set (err, "%s: found 0 source databases in config (add a [db.NAME] section)", source);
        return -1;
    }
    if (config->nresults == 0) {
        dbt_err_set (err, "%s: found 0 results backends in config (add a [results.NAME] section)",
                     source);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Build a configuration from INI text with defaults only.

dbt_config_t *
dbt_config_from_string (const char *ini, char *err)
{
    assert (ini);
    dbt_config_t *self = s_config_new ();
    dbt_config_pass_t pass = { .config = self, .source = "<string>", .text = ini };
    if (s_parse_ini (&pass, err) != 0 || s_finish (self, "<string>", err) != 0)
        dbt_config_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Command line

//  Flag values collected from argv, applied after file and environment.
typedef struct {
    dbt_action_t action;        //  what to do besides running
    char *config;               //  --config, NULL = config.ini
    dbt_buf_t sql_dirs;         //  every --sql-directory, comma-joined
    const char *names [8];      //  keys set by flags, in order
    const char *values [8];     //  their values (borrowed from argv)
    const char *flags [8];      //  the flag names, for messages
    size_t count;               //  number of names
} s_flags_t;

enum {
    S_OPT_CONFIG = 256, S_OPT_SQLDIR, S_OPT_SERVER, S_OPT_QUEUE, S_OPT_WORKER_NAME,
    S_OPT_WORKER_CONC, S_OPT_WORKER_ONLY, S_OPT_VERSION, S_OPT_NEW_CONFIG, S_OPT_HELP = 'h'
};

static const struct option s_options [] = {
    { "config", required_argument, NULL, S_OPT_CONFIG },
    { "sql-directory", required_argument, NULL, S_OPT_SQLDIR },
    { "server", required_argument, NULL, S_OPT_SERVER },
    { "queue", required_argument, NULL, S_OPT_QUEUE },
    { "worker-name", required_argument, NULL, S_OPT_WORKER_NAME },
    { "worker-concurrency", required_argument, NULL, S_OPT_WORKER_CONC },
    { "worker-only", optional_argument, NULL, S_OPT_WORKER_ONLY },
    { "version", optional_argument, NULL, S_OPT_VERSION },
    { "new-config", optional_argument, NULL, S_OPT_NEW_CONFIG },
    { "help", optional_argument, NULL, S_OPT_HELP },
    { NULL, 0, NULL, 0 }
};

//  The option with value val (S_OPT_*), or NULL.
static const struct option *
s_option (int val)
{
    for (const struct option *opt = s_options; opt->name; opt++)
        if (opt->val == val)
            return opt;
    return NULL;
}

//  Long name of the option with value val, for messages.
static const char *
s_option_name (int val)
{
    const struct option *opt = s_option (val);
    return opt ? opt->name : "?";
}

//  Record a flag that sets a [app] key, checking its value now.
static int
s_flag_key (s_flags_t *flags, const char *flag, const char *key_name, const char *value, char *err)
{
    const s_key_t *key = s_key_find (S_APP, key_name);
    assert (key);
    dbt_config_t *scratch = s_config_new ();
    char msg [DBT_ERRMSG_LEN];
    int rc = s_set (scratch, key, S_APP, value, msg);
    dbt_config_destroy (&scratch);
    if (rc != 0) {
        dbt_err_set (err, "--%s: %s", flag, msg);
        return -1;
    }
    assert (flags->count < sizeof (flags->names) / sizeof (flags->names [0]));
    //  A repeated flag replaces its earlier value.
    size_t i = 0;
    while (i < flags->count && !streq (flags->names [i], key_name))
        i++;
    flags->names [i] = key_name;
    flags->values [i] = value;
    flags->flags [i] = flag;
    if (i == flags->count)
        flags->count++;
    return 0;
}

//  Parse argv into flags. Returns 0, or -1 with err.
static int
s_parse_flags (int argc, char **argv, s_flags_t *flags, char *err)
{
    optind = 0;                 //  full re-initialisation (glibc)
    opterr = 0;                 //  we write our own messages
    while (true) {
        int index = -1;
        int c = getopt_long (argc, argv, "+:h", s_options, &index);
        if (c == -1)
            break;
        if (c == '?') {
            const char *arg = optind > 0 && optind <= argc ? argv [optind - 1] : "";
            if (optopt && optopt < 256)
                dbt_err_set (err, "unknown flag '-%c'", optopt);
            else
            if (optopt)
                dbt_err_set (err, "--%s: unexpected value", s_option_name (optopt));
            else {
                size_t len = strcspn (arg, "=");
                dbt_err_set (err, "unknown flag '%.*s'", (int) len, arg);
            }
            return -1;
        }
        if (c == ':') {
            dbt_err_set (err, "--%s: missing value", s_option_name (optopt));
            return -1;
        }
        const struct option *option = s_option (c);
        assert (option);
        const char *name = option->name;
        if (index >= 0) {
            //  getopt_long takes unambiguous prefixes ("--serv"); we don't.
            const char *arg = argv [optind - 1];
            if (optarg && optarg == arg && optind >= 2)
                arg = argv [optind - 2];
            size_t len = strcspn (arg, "=");
            if (len != strlen (name) + 2 || strncmp (arg + 2, name, len - 2) != 0) {
                dbt_err_set (err, "unknown flag '%.*s'", (int) len, arg);
                return -1;
            }
        }
        //  Booleans: bare, or =true / =false.
        bool on = true;
        if (option->has_arg == optional_argument && optarg
        &&  dbt_parse_bool (optarg, &on) != 0) {
            dbt_err_set (err, "--%s: expected true or false, got '%s'", name, optarg);
            return -1;
        }
        int rc = 0;
        switch (c) {
            case S_OPT_CONFIG:
                if (!*optarg) {
                    dbt_err_set (err, "--config: must not be empty");
                    return -1;
                }
                free (flags->config);
                flags->config = dbt_strdup (optarg);
                break;
            case S_OPT_SQLDIR:
                if (flags->sql_dirs.len)
                    dbt_buf_putc (&flags->sql_dirs, ',');
                dbt_buf_puts (&flags->sql_dirs, optarg);
                break;
            case S_OPT_SERVER:
                rc = s_flag_key (flags, name, "server", optarg, err);
                break;
            case S_OPT_QUEUE:
                rc = s_flag_key (flags, name, "queue", optarg, err);
                break;
            case S_OPT_WORKER_NAME:
                rc = s_flag_key (flags, name, "worker_name", optarg, err);
                break;
            case S_OPT_WORKER_CONC:
                rc = s_flag_key (flags, name, "worker_concurrency", optarg, err);
                break;
            case S_OPT_WORKER_ONLY:
                rc = s_flag_key (flags, name, "worker_only", on ? "true" : "false", err);
                break;
            case S_OPT_VERSION:
                if (on && flags->action != DBT_ACTION_HELP)
                    flags->action = DBT_ACTION_VERSION;
                break;
            case S_OPT_NEW_CONFIG:
                if (on && flags->action == DBT_ACTION_RUN)
                    flags->action = DBT_ACTION_NEW_CONFIG;
                break;
            case S_OPT_HELP:
                if (on)
                    flags->action = DBT_ACTION_HELP;
                break;
            default:
                assert (false);
        }
        if (rc != 0)
            return -1;
    }
    if (optind < argc) {
        dbt_err_set (err, "unexpected argument '%s' (flags with values take --flag value or "
                     "--flag=value; booleans take --flag=true or --flag=false)", argv [optind]);
        return -1;
    }
    if (flags->sql_dirs.len)
        return s_flag_key (flags, "sql-directory", "sql_directory", flags->sql_dirs.data, err);
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse argv, then the config file, environment and flags.

int
dbt_config_load (int argc, char **argv, dbt_config_t **config_p, dbt_action_t *action, char *err)
{
    assert (config_p);
    assert (action);
    *config_p = NULL;
    *action = DBT_ACTION_RUN;
    s_flags_t flags = { .action = DBT_ACTION_RUN };
    int rc = s_parse_flags (argc, argv, &flags, err);
    if (rc == 0 && flags.action != DBT_ACTION_RUN)
        *action = flags.action;
    else
    if (rc == 0) {
        dbt_config_t *self = s_config_new ();
        self->config_file = dbt_strdup (flags.config ? flags.config : "config.ini");
        rc = s_load_file (self, self->config_file, err);
        if (rc == 0)
            rc = dbt_config_env_load (self, err);
        for (size_t i = 0; rc == 0 && i < flags.count; i++) {
            char msg [DBT_ERRMSG_LEN];
            const s_key_t *key = s_key_find (S_APP, flags.names [i]);
            if (s_set (self, key, S_APP, flags.values [i], msg) != 0) {
                dbt_err_set (err, "--%s: %s", flags.flags [i], msg);
                rc = -1;
            }
        }
        if (rc == 0)
            rc = s_finish (self, self->config_file, err);
        if (rc == 0)
            *config_p = self;
        else
            dbt_config_destroy (&self);
    }
    free (flags.config);
    dbt_buf_free (&flags.sql_dirs);
    return rc;
}

//  --------------------------------------------------------------------------
//  Section lookups. Borrowed.

static const dbt_dbsection_t *
s_dbsection_find (const dbt_dbsection_t *list, size_t count, const char *name)
{
    for (size_t i = 0; name && i < count; i++)
        if (streq (list [i].conf.name, name))
            return &list [i];
    return NULL;
}

const dbt_dbsection_t *
dbt_config_db (const dbt_config_t *self, const char *name)
{
    assert (self);
    return s_dbsection_find (self->dbs, self->ndbs, name);
}

const dbt_dbsection_t *
dbt_config_results (const dbt_config_t *self, const char *name)
{
    assert (self);
    return s_dbsection_find (self->results, self->nresults, name);
}

const dbt_queueconf_t *
dbt_config_queue (const dbt_config_t *self, const char *name)
{
    assert (self);
    for (size_t i = 0; name && i < self->nqueues; i++)
        if (streq (self->queues [i].name, name))
            return &self->queues [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Concurrency of a queue on this node.

int
dbt_config_queue_concurrency (const dbt_config_t *self, const char *queue, int task_conc)
{
    assert (self);
    const dbt_queueconf_t *conf = dbt_config_queue (self, queue);
    if (conf && conf->concurrency > 0)
        return conf->concurrency;
    if (task_conc > 0)
        return task_conc;
    return self->worker_concurrency;
}

//  --------------------------------------------------------------------------
//  Dispatcher endpoint of a queue. Borrowed.

const char *
dbt_config_queue_dispatcher (const dbt_config_t *self, const char *queue)
{
    assert (self);
    const dbt_queueconf_t *conf = dbt_config_queue (self, queue);
    if (conf && conf->dispatcher)
        return conf->dispatcher;
    return self->mesh_dispatcher;
}

//  --------------------------------------------------------------------------
//  True when this node dispatches queue.

bool
dbt_config_dispatches (const dbt_config_t *self, const char *queue)
{
    assert (self);
    const char *endpoint = dbt_config_queue_dispatcher (self, queue);
    return self->mesh_dispatch && endpoint && self->mesh_bind && streq (endpoint, self->mesh_bind);
}

//  --------------------------------------------------------------------------
//  Usage text for --help. Static.

const char *
dbt_config_usage (void)
{
    return
        "DungBeetle: a distributed SQL report job server\n"
        "\n"
        "Usage: dungbeetle [flags]\n"
        "\n"
        "      --config string             path to the INI configuration file (default \"config.ini\")\n"
        "      --new-config                generate a new sample config.ini file.\n"
        "      --new-keys NAME             write a CURVE key pair NAME and NAME_secret, and exit\n"
        "      --server string             web server address to bind on (default \"127.0.0.1:6060\")\n"
        "      --sql-directory strings     path to directory with .sql scripts. Can be specified multiple\n"
        "                                  times, or comma-separated (default [./sql])\n"
        "      --queue string              name of the default queue of tasks without a -- queue tag\n"
        "                                  (default \"default\")\n"
        "      --worker-name string        name of this worker instance (default: the host name)\n"
        "      --worker-concurrency int    number of concurrent worker threads to run per queue (1-1000,\n"
        "                                  default 10)\n"
        "      --worker-only               don't start the web server and run in worker-only mode\n"
        "      --version                   show current version and build\n"
        "  -h, --help                      show this help\n"
        "\n"
        "Precedence: built-in defaults < config file < environment < flags.\n"
        "Environment: DUNGBEETLE_KEY, DUNGBEETLE_SECTION__KEY or DUNGBEETLE_SECTION__NAME__KEY,\n"
        "e.g. DUNGBEETLE_APP__LOG_LEVEL=DEBUG, DUNGBEETLE_DB__MY_DB__DSN=...\n";
}
