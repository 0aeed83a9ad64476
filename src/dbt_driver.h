/*  =========================================================================
    dbt_driver - database driver and results-writer interface

    Every database the server talks to sits behind one vtable, dbt_driver_t:
    a source side (connect, prepare, query with bound args, stream rows with
    column types, cancel) and a results side (create a staging table from
    column types, bulk-append rows, swap it atomically into its final name,
    drop). Drivers live one per file (dbt_driver_pg.c, ...); nothing outside
    them branches on the database type. dbt_conn_t wraps a driver handle so
    the rest of the server calls dbt_conn_* and never the vtable directly.

    Rows travel as text cells in one canonical form per column type (below),
    so any source can feed any results backend. Row memory is borrowed from
    the driver and valid until the next fetch: nothing grows with result size.

    Threads: a connection is used by one thread at a time, except
    dbt_conn_cancel, which any thread may call while another runs a query.
    =========================================================================
*/
#ifndef DBT_DRIVER_H_INCLUDED
#define DBT_DRIVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Column types of result tables. Canonical text of each cell:
//    TEXT         any bytes (length-delimited, may be empty)
//    BIGINT       -?[0-9]+ within int64
//    UBIGINT      [0-9]+ within uint64 (values past int64 need wider types)
//    DECIMAL      -?[0-9]+(.[0-9]+)?   exact; precision/scale in dbt_column_t
//    DOUBLE       shortest round-trip decimal, or NaN, Infinity, -Infinity
//    BOOLEAN      t or f
//    DATE         YYYY-MM-DD
//    TIMESTAMP    YYYY-MM-DD HH:MM:SS[.ffffff]        (no time zone)
//    TIMESTAMPTZ  YYYY-MM-DD HH:MM:SS[.ffffff]+00     (always UTC)
typedef enum {
    DBT_COL_TEXT = 0,
    DBT_COL_BIGINT,
    DBT_COL_UBIGINT,
    DBT_COL_DECIMAL,
    DBT_COL_DOUBLE,
    DBT_COL_BOOLEAN,
    DBT_COL_DATE,
    DBT_COL_TIMESTAMP,
    DBT_COL_TIMESTAMPTZ
} dbt_coltype_t;

//  What a TEXT column holds when the source knows it exactly: a results
//  backend with that type keeps it (PostgreSQL: json, jsonb, uuid, ...),
//  the others store TEXT. Cells are the source's text output of the type.
typedef enum {
    DBT_KIND_NONE = 0,          //  plain text
    DBT_KIND_JSON,              //  JSON, kept byte for byte (PostgreSQL json)
    DBT_KIND_JSONB,             //  JSON, kept as a value (PostgreSQL jsonb)
    DBT_KIND_UUID,              //  UUID
    DBT_KIND_INET,              //  IP address, optionally with a mask
    DBT_KIND_CIDR,              //  IP network
    DBT_KIND_INTERVAL,          //  PostgreSQL interval
    DBT_KIND_ARRAY              //  PostgreSQL array literal; elements of
                                //  elem_type/elem_kind (precision and scale
                                //  apply to DECIMAL elements)
} dbt_colkind_t;

//  One result column. Zero-initialised fields beyond type mean "nothing
//  more known" (kind none, nullable).
typedef struct {
    char *name;                 //  column name (owned by whoever built it)
    dbt_coltype_t type;         //  canonical type
    int precision;              //  DECIMAL total digits, 0 when unconstrained
    int scale;                  //  DECIMAL digits after the point, -1 unknown
    char *source_type;          //  source database's own type name (owned)
    dbt_colkind_t kind;         //  TEXT: what the text is, when known
    dbt_coltype_t elem_type;    //  ARRAY: canonical type of the elements
    dbt_colkind_t elem_kind;    //  ARRAY: kind of TEXT elements
    bool not_null;              //  the source says it never holds NULL
} dbt_column_t;

//  One row of cells; vals [i] is NULL for SQL NULL. Borrowed.
typedef struct {
    size_t ncols;               //  number of cells
    const char **vals;          //  cell text, NULL for NULL
    const size_t *lens;         //  cell lengths in bytes
} dbt_row_t;

//  Positional query arguments; a NULL entry binds SQL NULL. Borrowed.
typedef struct {
    size_t count;               //  number of args
    const char *const *vals;    //  arg text
} dbt_args_t;

//  Connection settings of one [db.NAME] or [results.NAME] section.
typedef struct {
    const char *name;           //  section name, e.g. "my_db"
    const char *type;           //  driver name, e.g. "postgres"
    const char *dsn;            //  driver-specific DSN
    int max_active;             //  pool limit, 0 = unlimited
    int max_idle;               //  idle connections kept, -1 = max_active
    int64_t connect_timeout_ms; //  connect limit, 0 = driver default
    bool results;               //  true for a [results.NAME] section
    bool unlogged;              //  results: PostgreSQL UNLOGGED tables
    bool sample_data;           //  sqlite source: create the sample dataset
                                //  (dbt_sample_dataset_sql) when the file
                                //  does not exist yet
} dbt_dbconf_t;

//  Options of one query.
typedef struct {
    int64_t timeout_ms;         //  server-side execution limit, 0 = none
    const char *query_id;       //  id for server-side cancel (ClickHouse)
    bool raw;                   //  task marked raw: no prepare was done
} dbt_query_opts_t;

//  Options of one results table.
typedef struct {
    bool unlogged;              //  PostgreSQL: CREATE UNLOGGED TABLE
    const char *final;          //  the name write_commit will swap the table
                                //  into, when known (NULL: not known). A
                                //  driver that stages where no reader looks
                                //  (SQLite: a private file) may create the
                                //  table under it and skip a rename.
} dbt_table_opts_t;

//  The driver vtable. Handles are driver-private. Every function that can
//  fail returns 0 or a negative DBT_E* code with a message in err
//  (DBT_ERRMSG_LEN); DBT_ECONN means the connection is unusable. NULL
//  entries mean "not supported" (a source-only driver has no results side).
typedef struct {
    const char *name;           //  config type name
    const char *alias;          //  second accepted name, or NULL

    //  Check conf's DSN without connecting (at start-up): 0 or DBT_EINVAL
    //  with err; what is accepted but ignored is described in warn
    //  (DBT_ERRMSG_LEN, "" when nothing). NULL: checked at connect only.
    int (*check) (const dbt_dbconf_t *conf, char *warn, char *err);
    //  Connect; on success *handle_p owns a connection.
    int (*connect) (const dbt_dbconf_t *conf, void **handle_p, char *err);
    //  Close and free; nulls the pointer. Safe on NULL.
    void (*disconnect) (void **handle_p);
    //  Cheap local check that the connection still looks usable.
    bool (*alive) (void *handle);

    //  Source: validate sql; report its parameter count (-1 unknown).
    int (*prepare) (void *handle, const char *sql, int *nparams, char *err);
    //  Source: start sql with args bound as parameters; after success the
    //  columns are known and rows can be fetched.
    int (*query) (void *handle, const char *sql, const dbt_args_t *args,
                  const dbt_query_opts_t *opts, char *err);
    //  Source: the running query's columns (borrowed until query_end).
    int (*columns) (void *handle, const dbt_column_t **cols, size_t *ncols);
    //  Source: next row into *row (borrowed until the next call).
    //  Returns 1 for a row, 0 at the clean end of the result, or an error.
    int (*fetch) (void *handle, dbt_row_t *row, char *err);
    //  Source: finish the query (consumes unread rows or abandons them).
    void (*query_end) (void *handle);
    //  Source: stop the running query on its server. Thread-safe.
    void (*cancel) (void *handle);

    //  Results: create table (a fresh staging table), start the bulk write.
    int (*write_begin) (void *handle, const char *table, const dbt_column_t *cols,
                        size_t ncols, const dbt_table_opts_t *opts, char *err);
    //  Results: append one row.
    int (*write_row) (void *handle, const dbt_row_t *row, char *err);
    //  Results: end the bulk write and atomically replace final with table
    //  (a reader sees the old complete table or the new one, never a part).
    int (*write_commit) (void *handle, const char *table, const char *final, char *err);
    //  Results: abandon the write and remove the staging table.
    void (*write_abort) (void *handle, const char *table);
    //  Results: drop a table if it exists.
    int (*drop_table) (void *handle, const char *table, char *err);
    //  Results: longest identifier the database accepts.
    size_t max_identifier;
    //  Character that quotes identifiers in its SQL ('"' when 0).
    char ident_quote;
} dbt_driver_t;

//  Find a driver by type name; NULL when unknown.
const dbt_driver_t *
    dbt_driver_find (const char *type);

//  Check a section's DSN at start-up with its driver's check (unknown
//  types are left to connect), logging what is accepted but ignored as a
//  warning naming the section. Returns 0 or DBT_EINVAL with err set.
int
    dbt_driver_check (const dbt_dbconf_t *conf, char *err);

//  Space-separated list of known type names (for error messages). Static.
const char *
    dbt_driver_names (void);

//  Static name of a column type ("BIGINT", ...).
const char *
    dbt_coltype_name (dbt_coltype_t type);

//  Free the strings of ncols columns and the array; nulls the pointer.
void
    dbt_columns_free (dbt_column_t **cols_p, size_t ncols);

//  Give each column a unique, non-empty name (a, a_2, a_3, ...), in place:
//  empty or NULL names become "column"; names are compared ignoring case
//  (databases fold or compare them that way) and a suffixed name never
//  takes a name another column already has.
void
    dbt_columns_dedupe (dbt_column_t *cols, size_t ncols);

//  Quote an identifier with quote character q (doubling embedded quotes)
//  into a new string. Caller frees.
char *
    dbt_quote_ident (const char *ident, char q);

//  -------------------------------------------------------------------------
//  Canonical cell text: checks and conversions shared by the drivers (row
//  encoding lives once, here). Cells are length-delimited, not NUL-ended.

//  Buffer size for dbt_cell_double (sign, 17 digits, point, exponent).
#define DBT_CELL_DOUBLE_LEN 32

//  Buffer size for dbt_cell_time.
#define DBT_CELL_TIME_LEN 40

//  Write the canonical DOUBLE text of value into out (at least
//  DBT_CELL_DOUBLE_LEN bytes): the shortest of %.15g/%.16g/%.17g that reads
//  back to the same double, or NaN, Infinity, -Infinity. Returns the length.
int
    dbt_cell_double (double value, char *out, size_t size);

//  Write the canonical DOUBLE text of a single-precision value into out
//  (at least DBT_CELL_DOUBLE_LEN bytes): the shortest of %.6g..%.9g that
//  reads back to the same float (so 0.1f gives 0.1), or NaN, Infinity,
//  -Infinity. Returns the length.
int
    dbt_cell_float (float value, char *out, size_t size);

//  The date text of the last day dbt_cell_unixtime wrote for one column:
//  consecutive values of a column often fall on the same day. Zero it to
//  start.
typedef struct {
    bool valid;                 //  day and text are set
    int64_t day;                //  days since 1970-01-01
    char text [10];             //  its YYYY-MM-DD
} dbt_cell_daycache_t;

//  Write the canonical text of a Unix time (secs since 1970-01-01 00:00:00
//  UTC, plus usec microseconds, 0 to 999999) as DATE, TIMESTAMP or
//  TIMESTAMPTZ into out (at least DBT_CELL_TIME_LEN bytes); fraction zeros
//  at the end are dropped. cache may be NULL. Returns the length, or -1
//  outside the years 0001 to 9999.
int
    dbt_cell_unixtime (dbt_coltype_t type, int64_t secs, uint32_t usec,
                       dbt_cell_daycache_t *cache, char *out, size_t size);

//  Write a double as a canonical DECIMAL into out (reset first): its
//  shortest round-trip digits without an exponent, rounded to scale digits
//  only when it has more (scale < 0: never rounded). NaN and infinities
//  give NaN, Infinity, -Infinity.
void
    dbt_cell_decimal (double value, int scale, dbt_buf_t *out);

//  Parse len bytes of canonical BIGINT text (-?[0-9]+ within int64).
//  Returns 0 or -1.
int
    dbt_cell_parse_int64 (const char *str, size_t len, int64_t *value);

//  Parse a boolean spelling: t f true false 1 0, any case. Returns 0 or -1.
int
    dbt_cell_parse_bool (const char *str, size_t len, bool *value);

//  True when len bytes are a canonical decimal: -?[0-9]+(\.[0-9]+)?
bool
    dbt_cell_is_decimal (const char *str, size_t len);

//  True when len bytes equal word, ignoring ASCII case.
bool
    dbt_cell_word_is (const char *str, size_t len, const char *word);

//  Normalise date/time text into canonical DATE, TIMESTAMP or TIMESTAMPTZ
//  text in out (at least DBT_CELL_TIME_LEN bytes). Accepts
//    DATE         YYYY-MM-DD only
//    TIMESTAMP*   YYYY-MM-DD[( |T)HH:MM[:SS[.f{1,6}]]][Z|(+|-)HH[[:]MM]]
//  A zone is applied (the value is converted to UTC), no zone means UTC;
//  fraction zeros at the end are dropped, as PostgreSQL prints them;
//  "infinity" and "-infinity" pass. Returns the length written, or -1 when
//  the text is not a valid value of the type.
int
    dbt_cell_time (dbt_coltype_t type, const char *str, size_t len, char *out, size_t size);

//  Append one cell to buf in the tab-separated text form that PostgreSQL
//  COPY and MariaDB LOAD DATA read: val NULL as \N; backslash, tab, newline
//  and carriage return as \\ \t \n \r; a NUL byte as \0 when nul_ok, else
//  the cell is refused. Returns 0, or -1 for a refused NUL (buf keeps its
//  old length).
int
    dbt_cell_tsv (dbt_buf_t *buf, const char *val, size_t len, bool nul_ok);

//  -------------------------------------------------------------------------

//  Check that args fit a statement with nparams parameters (-1 unknown:
//  anything fits). Returns 0, or DBT_EINVAL with "task expects N args, got
//  M" in err. Shared by the drivers so the message is the same everywhere.
int
    dbt_args_check (int nparams, const dbt_args_t *args, char *err);

//  -------------------------------------------------------------------------
//  dbt_conn_t: one open connection with its driver.

typedef struct _dbt_conn_t dbt_conn_t;

//  Open a connection for conf. Returns NULL with err set on failure.
dbt_conn_t *
    dbt_conn_new (const dbt_dbconf_t *conf, char *err);

//  Close and free; nulls the pointer.
void
    dbt_conn_destroy (dbt_conn_t **self_p);

//  The connection's driver.
const dbt_driver_t *
    dbt_conn_driver (dbt_conn_t *self);

//  The config section name this connection belongs to. Borrowed.
const char *
    dbt_conn_name (dbt_conn_t *self);

//  True when the last error showed the connection is unusable, or the
//  driver's alive check fails.
bool
    dbt_conn_broken (dbt_conn_t *self);

//  The rest mirror the vtable; errors mark the connection broken when the
//  driver returns DBT_ECONN. A side the driver lacks gives DBT_EINVAL. The
//  write functions refuse (DBT_EINVAL) an empty table name, one longer than
//  the driver's max_identifier (which the database would truncate) and a
//  table without columns. cancel must not race with dbt_conn_destroy.
int
    dbt_conn_prepare (dbt_conn_t *self, const char *sql, int *nparams, char *err);
int
    dbt_conn_query (dbt_conn_t *self, const char *sql, const dbt_args_t *args,
                    const dbt_query_opts_t *opts, char *err);
int
    dbt_conn_columns (dbt_conn_t *self, const dbt_column_t **cols, size_t *ncols);
int
    dbt_conn_fetch (dbt_conn_t *self, dbt_row_t *row, char *err);
void
    dbt_conn_query_end (dbt_conn_t *self);
//  Thread-safe.
void
    dbt_conn_cancel (dbt_conn_t *self);
int
    dbt_conn_write_begin (dbt_conn_t *self, const char *table, const dbt_column_t *cols,
                          size_t ncols, const dbt_table_opts_t *opts, char *err);
int
    dbt_conn_write_row (dbt_conn_t *self, const dbt_row_t *row, char *err);
int
    dbt_conn_write_commit (dbt_conn_t *self, const char *table, const char *final, char *err);
void
    dbt_conn_write_abort (dbt_conn_t *self, const char *table);
int
    dbt_conn_drop_table (dbt_conn_t *self, const char *table, char *err);

//  Start reading a results table as a query (SELECT * ... LIMIT/OFFSET;
//  limit 0 = all rows); then use columns/fetch/query_end as for a query.
int
    dbt_conn_read_table (dbt_conn_t *self, const char *table, int64_t limit, int64_t offset,
                         char *err);

//  Self test of this module.
void
    dbt_driver_test (bool verbose);

#endif
