/*  =========================================================================
    dbt_drivertest_fixtures - the fixtures of dbt_drivertest, the values
    expected back from them, and each database's own client

    A fixture is a table of columns and canonical values a source database
    is given before the drivers read it: the standard one (nine columns, on
    SQLite and PostgreSQL), the same as MariaDB holds it (no NaN, no
    infinities, no TIMESTAMPTZ before 1970: NULL there), and ClickHouse's
    (fifteen columns of what ClickHouse 18.16 holds). What a cell should
    read as comes from the fixture and, for a read-back, from the results
    database's rules (dbt_dt_results_t). The create, kill and running
    functions talk to a database with its own client library (sqlite3,
    libpq, Connector/C, libcurl over HTTP), never through the drivers.
    Nothing here keeps state; any thread may call any function.
    =========================================================================
*/
#ifndef DBT_DRIVERTEST_FIXTURES_H_INCLUDED
#define DBT_DRIVERTEST_FIXTURES_H_INCLUDED

#include "../src/dbt_classes.h"

//  One fixture column; a column type is NULL on databases it is not made on.
typedef struct {
    const char *name;           //  column name
    dbt_coltype_t type;         //  canonical type, as read from the source
    const char *sqlite_type;    //  SQLite declared type
    const char *pg_type;        //  PostgreSQL column type
    const char *my_type;        //  MariaDB column type
    const char *ch_type;        //  ClickHouse column type
} dbt_dt_col_t;

//  A cell whose fixture input is not its canonical text.
typedef struct {
    size_t row;                 //  row (from 0)
    size_t col;                 //  column (from 0)
    const char *text;           //  input; NULL ends a list
} dbt_dt_input_t;

//  A fixture table and what its source holds of it.
typedef struct {
    const dbt_dt_col_t *cols;   //  columns
    size_t ncols;               //  number of columns
    size_t nrows;               //  number of rows
    const char *const *want;    //  nrows x ncols canonical values, NULL for
                                //  NULL, "@LONG" for the 100 KB text
    const dbt_dt_input_t *inputs;       //  inputs that differ, NULL: none
    size_t dec;                 //  the DECIMAL(24,6) column
    bool specials;              //  the source holds NaN and infinities
    const char *tz_min;         //  earliest TIMESTAMPTZ it holds, NULL: any
} dbt_dt_fixture_t;

//  What a results database holds of what it is given, and its own checks.
typedef struct {
    const dbt_driver_t *driver;         //  the results driver
    bool specials;              //  holds NaN and infinities, else refuses them
    bool zones;                 //  TIMESTAMPTZ reads back as such, else as
                                //  TIMESTAMP (UTC)
    bool unsigned64;            //  UBIGINT reads back as such, else as
                                //  DECIMAL(20,0)
    bool nul;                   //  text keeps NUL bytes, else refuses them
    const char *unlogged_sql;   //  reads 'u' when dbt_t_empty is UNLOGGED,
                                //  NULL: no UNLOGGED tables
    void (*checks) (dbt_conn_t *res);   //  its own checks, NULL: none
} dbt_dt_results_t;

//  The fixtures: standard, standard as MariaDB holds it, ClickHouse's.
extern const dbt_dt_fixture_t dbt_dt_fixture_std;
extern const dbt_dt_fixture_t dbt_dt_fixture_mariadb;
extern const dbt_dt_fixture_t dbt_dt_fixture_ch;

//  The 100 KB text: ASCII, multi-byte characters and specials mixed.
//  Caller frees.
char *
    dbt_dt_long_text (void);

//  True when cell (r, i) of fx is not held: by the source (rules NULL), or
//  by the source or the results database of rules (a read-back).
bool
    dbt_dt_unheld (const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules, size_t r,
                   size_t i);

//  The canonical type column i reads as from the source (rules NULL) or
//  back from the results database of rules.
dbt_coltype_t
    dbt_dt_expected_type (const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules,
                          size_t i);

//  The text cell (r, i) reads as, NULL for NULL (rules as above). Returns
//  longtext, a fixture string, or buf (64 bytes), all borrowed.
const char *
    dbt_dt_expected (const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules, size_t r,
                     size_t i, const char *longtext, char *buf);

//  Make table dbt_fixture of fx at dsn with the database's own client:
//  SQLite, PostgreSQL, MariaDB (also dbt_fixture_u, dbt_fixture_x and
//  dbt_fixture_z and procedure dbt_two_sets for its own checks),
//  ClickHouse (an HTTP URL). Return 0, or -1 with err set.
int
    dbt_dt_create_sqlite (const dbt_dt_fixture_t *fx, const char *dsn, const char *longtext,
                          char *err);
int
    dbt_dt_create_pg (const dbt_dt_fixture_t *fx, const char *dsn, const char *longtext,
                      char *err);
int
    dbt_dt_create_mariadb (const dbt_dt_fixture_t *fx, const char *dsn, const char *longtext,
                           char *err);
int
    dbt_dt_create_ch (const dbt_dt_fixture_t *fx, const char *dsn, const char *longtext,
                      char *err);

//  Kill session id (the driver connection's backend) from a connection
//  of its own; true when the server says it was killed.
bool
    dbt_dt_kill_pg (const char *dsn, const char *session);
bool
    dbt_dt_kill_mariadb (const char *dsn, const char *session);

//  How many queries the server still runs of session (running sql) or of
//  query_id, as the server tells them apart; -1 when it cannot say.
long
    dbt_dt_running_mariadb (const char *dsn, const char *session, const char *query_id,
                            const char *sql);
long
    dbt_dt_running_ch (const char *dsn, const char *session, const char *query_id,
                       const char *sql);

#endif
