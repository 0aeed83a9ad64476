/*  =========================================================================
    dbt_config - command line and INI configuration

    Reads the command line (upstream's flags), the INI file it names (inih),
    and DUNGBEETLE_SECTION__KEY environment overrides, into one immutable
    dbt_config_t. Precedence: built-in defaults < file < environment < flags.
    Every key is checked against a table of name, type, default and range; a
    bad or unknown key stops start-up with "file:line: message", a bad flag
    with "--flag: message". After load the object is read-only and may be
    shared by every actor.
    =========================================================================
*/
#ifndef DBT_CONFIG_H_INCLUDED
#define DBT_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "dbt_log.h"
#include "dbt_driver.h"

//  One [db.NAME] or [results.NAME] section.
typedef struct {
    dbt_dbconf_t conf;          //  connection settings (strings owned here)
    char *results_table;        //  results only: table name format, one %s
    int line;                   //  line of the section header (0 = env)
} dbt_dbsection_t;

//  One [queue.NAME] section.
typedef struct {
    char *name;                 //  queue name
    int concurrency;            //  worker threads per node serving it, 0 = default
    char *dispatcher;           //  endpoint of the node dispatching it, NULL = default
} dbt_queueconf_t;

//  The whole configuration. Immutable after dbt_config_load.
typedef struct {
    char *config_file;          //  path read, NULL when none
    //  [app] (also accepted as root-level keys, as upstream)
    dbt_log_level_t log_level;  //  log_level: DEBUG INFO WARN ERROR (INFO)
    int64_t default_job_ttl_ms; //  default_job_ttl: run-time limit, 0 = none
    char *server;               //  server: HTTP listen address (127.0.0.1:6060)
    char *queue;                //  queue: default queue name (default)
    char *worker_name;          //  worker_name: this node's name (hostname)
    int worker_concurrency;     //  worker_concurrency: per-queue default (10)
    bool worker_only;           //  worker_only: no HTTP front, no dispatcher
    char **sql_dirs;            //  sql_directory: task file directories (./sql)
    size_t nsql_dirs;           //  number of sql_dirs
    char *data_dir;             //  data_dir: LMDB state directory (./data)
    int64_t max_body_size;      //  max_body_size: HTTP body limit (1MB)
    int64_t request_timeout_ms; //  request_timeout: HTTP request limit (30s)
    int max_connections;        //  max_connections: open HTTP connections (4096)
    int max_connections_per_ip; //  max_connections_per_ip: per client
                                //  address (256), 0 = unlimited
    int http_threads;           //  http_threads: 0 = a thread per HTTP
                                //  connection, N = epoll with N threads (0)
    char *auth_token;           //  auth_token: bearer token, NULL = no auth
    char *tls_cert;             //  tls_cert: PEM certificate (chain) for HTTPS, NULL = HTTP
    char *tls_key;              //  tls_key: its PEM private key
    int64_t state_map_size;     //  state_map_size: LMDB map size at start (1GiB)
    int64_t state_map_max;      //  state_map_max: largest map (max of 8GiB and size)
    int64_t retry_base_ms;      //  retry_backoff: first retry delay (1s)
    int64_t retry_max_ms;       //  retry_backoff_max: delay cap (5m)
    int64_t results_ttl_ms;     //  results_ttl: results table retention, 0 = keep
    int64_t state_ttl_ms;       //  state_ttl: finished job record retention (24h)
    int64_t shutdown_timeout_ms;//  shutdown_timeout: drain limit on SIGTERM (30s)
    int max_interruptions;      //  max_interruptions: lost-worker re-runs (3)
    //  [mesh]
    char *mesh_bind;            //  bind: this node's dispatcher endpoint
                                //  (tcp://127.0.0.1:6070)
    char *mesh_dispatcher;      //  dispatcher: default dispatcher endpoint for
                                //  queues not configured (= bind; NULL on a node
                                //  without a dispatcher: learned from peers)
    char *mesh_publish;         //  publish: state updates endpoint (bind's port + 1)
    char *mesh_client;          //  client: the client endpoint (bind's port + 2)
    bool mesh_client_derived;   //  derived: client not configured (a failed bind warns)
    char **mesh_peers;          //  peers: other nodes' dispatcher endpoints
    size_t nmesh_peers;         //  number of peers
    bool mesh_dispatch;         //  dispatch: run a dispatcher (false when worker_only)
    bool mesh_insecure;         //  insecure: allow a non-loopback bind without keys
    char *mesh_curve_cert;      //  curve_cert: this node's secret zcert, NULL = no CURVE
    char *mesh_curve_server;    //  curve_server: the dispatchers' public key or cert
                                //  (default: curve_cert's public key)
    char *mesh_curve_allow;     //  curve_allow: zcertstore directory of allowed keys
    struct _dbt_curve_t *curve; //  derived: the loaded keys (dbt_curve), set by
                                //  dbt_main before the node starts; NULL = open mesh
    char *mesh_backup;          //  backup: the failover partner, on a primary
    char *mesh_primary;         //  primary: the failover partner, on a backup
    char *mesh_replication;     //  replication: "sync" (default) or "async"
    int64_t sync_timeout_ms;    //  sync_timeout: partner's confirmation limit (2s)
    const char *mesh_partner;   //  derived: backup or primary, NULL = no pair
    bool mesh_is_primary;       //  derived: this node is the pair's primary
    bool pair_sync;             //  derived: replication = sync
    int64_t heartbeat_ms;       //  heartbeat_interval (1s)
    int heartbeat_liveness;     //  heartbeat_liveness (3)
    //  sections
    dbt_dbsection_t *dbs;       //  [db.NAME], in file order
    size_t ndbs;                //  number of dbs
    dbt_dbsection_t *results;   //  [results.NAME], in file order
    size_t nresults;            //  number of results
    dbt_queueconf_t *queues;    //  [queue.NAME], in file order
    size_t nqueues;             //  number of queues
} dbt_config_t;

//  What the command line asked for besides running.
typedef enum {
    DBT_ACTION_RUN = 0,         //  start a node
    DBT_ACTION_VERSION,         //  --version
    DBT_ACTION_HELP,            //  --help
    DBT_ACTION_NEW_CONFIG       //  --new-config
} dbt_action_t;

//  Parse argv, then the config file, environment and flags. On success
//  returns 0, *config_p (caller destroys; NULL for VERSION/HELP/NEW_CONFIG)
//  and *action. On failure returns -1 with err set.
int
    dbt_config_load (int argc, char **argv, dbt_config_t **config_p,
                     dbt_action_t *action, char *err);

//  Build a configuration from INI text with defaults, no flags, no
//  environment (for tests and embedded samples). Returns NULL with err set.
dbt_config_t *
    dbt_config_from_string (const char *ini, char *err);

//  Destroy; nulls the pointer.
void
    dbt_config_destroy (dbt_config_t **self_p);

//  Find a section by name; NULL when absent. Borrowed.
const dbt_dbsection_t *
    dbt_config_db (const dbt_config_t *self, const char *name);
const dbt_dbsection_t *
    dbt_config_results (const dbt_config_t *self, const char *name);
const dbt_queueconf_t *
    dbt_config_queue (const dbt_config_t *self, const char *name);

//  Concurrency of a queue on this node: [queue.NAME] concurrency, else
//  task_conc when > 0, else worker_concurrency.
int
    dbt_config_queue_concurrency (const dbt_config_t *self, const char *queue, int task_conc);

//  Endpoint of the dispatcher of a queue by this node's config alone:
//  [queue.NAME] dispatcher, else the default dispatcher (NULL when the
//  node has neither: peers tell, see dbt_routes). Borrowed.
const char *
    dbt_config_queue_dispatcher (const dbt_config_t *self, const char *queue);

//  True when this node dispatches queue (its dispatcher endpoint is ours).
bool
    dbt_config_dispatches (const dbt_config_t *self, const char *queue);

//  Usage text for --help. Static.
const char *
    dbt_config_usage (void);

//  Self test of this module.
void
    dbt_config_test (bool verbose);

#endif
