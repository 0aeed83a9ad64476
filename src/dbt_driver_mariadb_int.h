/*  =========================================================================
    dbt_driver_mariadb_int - internals shared by the MariaDB driver's files

    Private to the driver: dbt_driver_mariadb.c (DSN, connection, errors,
    cancel, the vtable), dbt_driver_mariadb_read.c (source side) and
    dbt_driver_mariadb_write.c (results side) include it after
    dbt_classes.h; nothing else does, so MYSQL never leaves the driver.
    The files are one module split for size (docs/style: ~1,500 lines).
    =========================================================================
*/
#ifndef DBT_DRIVER_MARIADB_INT_H_INCLUDED
#define DBT_DRIVER_MARIADB_INT_H_INCLUDED

#include <mysql.h>
#include <stdatomic.h>

//  Parsed DSN (dbt_driver_mariadb.c), a running query's state
//  (dbt_driver_mariadb_read.c) and a results write's state
//  (dbt_driver_mariadb_write.c).
typedef struct _dbt_mariadb_dsn_t dbt_mariadb_dsn_t;
typedef struct _dbt_mariadb_query_t dbt_mariadb_query_t;
typedef struct _dbt_mariadb_write_t dbt_mariadb_write_t;

//  The driver handle: one connection. Used by one thread at a time, except
//  for cancel, which reads only dsn and thread_id (never changed after
//  connect) and sets canceled.
typedef struct {
    MYSQL *mysql;               //  the connection (owned)
    dbt_mariadb_dsn_t *dsn;     //  its settings, for cancel's connection (owned)
    unsigned long thread_id;    //  server thread id of the connection
    atomic_bool canceled;       //  cancel was called for the running query
    bool results;               //  opened for results (LOCAL INFILE on)
    bool no_infile;             //  results: the server refuses LOAD DATA
                                //  LOCAL (local_infile=0), so rows go in
                                //  multi-row INSERTs
    unsigned long max_packet;   //  results: the server's max_allowed_packet
    bool lost;                  //  a connection error made it unusable
    int64_t stmt_timeout_ms;    //  the session's max_statement_time, 0 none
    int64_t timeout_ms;         //  the running query's limit (for errors)
    dbt_mariadb_query_t *query; //  the running query (owned), NULL when none
    dbt_mariadb_write_t *write; //  the results write (owned), NULL when none
} dbt_mariadb_t;

//  --------------------------------------------------------------------------
//  dbt_driver_mariadb.c

//  Set err from a MariaDB error and return the matching DBT_E* code;
//  connection errors mark the connection lost (DBT_ECONN).
int
    dbt_mariadb_error (dbt_mariadb_t *self, unsigned code, const char *message,
                       const char *what, char *err);

//  The connection's last error, as dbt_mariadb_error.
int
    dbt_mariadb_last_error (dbt_mariadb_t *self, const char *what, char *err);

//  Run sql, dropping any result. Returns 0 or an error code.
int
    dbt_mariadb_exec (dbt_mariadb_t *self, const char *sql, const char *what, char *err);

//  Set the session's max_statement_time to timeout_ms (0: none) unless it
//  is set so already. Returns 0 or an error code.
int
    dbt_mariadb_set_timeout (dbt_mariadb_t *self, int64_t timeout_ms, char *err);

//  Stop the connection's running statement with KILL QUERY from a second
//  connection. Thread-safe.
void
    dbt_mariadb_kill (const dbt_mariadb_t *self);

//  --------------------------------------------------------------------------
//  dbt_driver_mariadb_read.c: the source side of the vtable

int
    dbt_mariadb_prepare (void *handle, const char *sql, int *nparams, char *err);
int
    dbt_mariadb_query (void *handle, const char *sql, const dbt_args_t *args,
                       const dbt_query_opts_t *opts, char *err);
int
    dbt_mariadb_columns (void *handle, const dbt_column_t **cols, size_t *ncols);
int
    dbt_mariadb_fetch (void *handle, dbt_row_t *row, char *err);
void
    dbt_mariadb_query_end (void *handle);

//  Offline checks of the source side.
void
    dbt_mariadb_read_test (bool verbose);

//  --------------------------------------------------------------------------
//  dbt_driver_mariadb_write.c: the results side of the vtable

//  Route every LOCAL INFILE request of the connection to the driver's
//  handler, which serves only its own results stream.
void
    dbt_mariadb_infile_handler (dbt_mariadb_t *self);

//  Results connection: learn whether the server takes LOAD DATA LOCAL
//  (else writes use multi-row INSERTs, logged) and its packet limit.
//  Returns 0 or an error code.
int
    dbt_mariadb_write_probe (dbt_mariadb_t *self, char *err);

int
    dbt_mariadb_write_begin (void *handle, const char *table, const dbt_column_t *cols,
                             size_t ncols, const dbt_table_opts_t *opts, char *err);
int
    dbt_mariadb_write_row (void *handle, const dbt_row_t *row, char *err);
int
    dbt_mariadb_write_commit (void *handle, const char *table, const char *final, char *err);
void
    dbt_mariadb_write_abort (void *handle, const char *table);
int
    dbt_mariadb_drop_table (void *handle, const char *table, char *err);

//  Offline checks of the results side.
void
    dbt_mariadb_write_test (bool verbose);

#endif
