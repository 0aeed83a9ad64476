/*  =========================================================================
    dbt_driver_sqlite - SQLite 3 source and results driver

    See dbt_driver_sqlite.h. A handle owns one sqlite3 connection opened with
    SQLITE_OPEN_NOMUTEX: one thread uses it at a time, and the only call from
    another thread is cancel = sqlite3_interrupt, which SQLite documents as
    safe from any thread while the connection is open (it sets a flag and
    takes no mutex).

    Reading: SQLite values are dynamically typed, so a column's canonical
    type comes from its declared type (or, for an expression, the first
    row's storage class), and every cell is checked against it; a value the
    type cannot hold fails the query with the column and row named instead
    of being written as something else.

    Writing: declared types of results tables come from dbt_sqlite_types
    (see its header for the affinity rules that make every value read back
    exactly). TEXT cells are bound as text with their length, so any bytes,
    NUL included, are stored and read back unchanged.

    Results layout: each results table is a database file of its own in the
    directory next to the DSN's file (results.db -> results.db.d/, see
    dbt_sqlite_dir.h), so jobs share no schema and no lock. A write opens a
    second connection on a fresh temporary file (journal off, no locks: no
    one else sees the file), creates the table under its final name when
    the table options give it (else under the staging name, renamed at
    commit), inserts in one transaction, commits, and then
    dbt_sqlite_dir_publish fsyncs the file and renames it into place (the
    atomic swap) and fsyncs the directory.

    Reading: the DSN's own file stays the connection's main database. When
    a statement names a table that is not there ("no such table: T"), the
    file of T, if any, is attached read-only and immutable (its content
    never changes once in place) and the statement prepared again; files
    attached for a statement are detached when it ends. So SQL on a results
    connection reads any job's table by name, a table of the one-file
    layout of earlier versions in the main file included (those are
    dropped when the same name is written or dropped).
    =========================================================================
*/
#include "dbt_classes.h"
#include <sqlite3.h>
#include <dirent.h>
#include <math.h>
#include <strings.h>

//  Default busy timeout when the config gives no connect timeout.
#define S_BUSY_MS 30000

//  Progress handler period (virtual machine instructions) for timeouts.
#define S_PROGRESS_OPS 10000

//  Table files one statement may attach (SQLite's default limit).
#define S_ATTACH_MAX 10

typedef struct {
    sqlite3 *db;                //  the connection (owned)
    bool results;               //  opened read-write as a results database
    dbt_sqlite_dir_t *dir;      //  the table files (owned); NULL for a source
                                //  without a table directory next to it
    char *attached [S_ATTACH_MAX];  //  tables whose files the running
                                //  statement attached (owned)
    int nattached;              //  number of those
    bool legacy;                //  the main file held tables at connect (the
                                //  one-file layout of earlier versions)

    //  Running query
    sqlite3_stmt *stmt;         //  running statement, NULL when none
    bool have_row;              //  stmt holds a stepped row not yet fetched
    bool done;                  //  stmt reached its end
    dbt_column_t *cols;         //  result columns (owned)
    size_t ncols;               //  number of result columns
    const char **vals;          //  cells handed out by fetch
    size_t *lens;               //  cell lengths handed out by fetch
    dbt_buf_t *cells;           //  per-column text for converted values
    int64_t rowno;              //  rows fetched so far (1-based in errors)
    int64_t deadline;           //  dbt_clock_ms deadline, 0 = none
    bool timed_out;             //  the progress handler stopped the query
    int64_t timeout_ms;         //  the running query's limit (for errors)

    //  Results write
    sqlite3 *wdb;               //  connection to the stage file (owned),
                                //  NULL when no write is in progress
    dbt_sqlite_stage_t stage;   //  the stage file
    char *wtable;               //  the table's name in the stage file (owned)
    sqlite3_stmt *insert;       //  prepared INSERT into the staging table
    dbt_column_t *wcols;        //  staging table columns (names, types; owned)
    size_t wncols;              //  number of staging table columns
    int64_t wrows;              //  rows written so far
    dbt_buf_t scratch;          //  NUL-terminated copy of a cell to parse
} s_sqlite_t;

//  --------------------------------------------------------------------------
//  Errors

//  Set err from connection db's last error and return the matching code.
static int
s_error_in (s_sqlite_t *self, sqlite3 *db, int rc, const char *what, char *err)
{
    const char *msg = db ? sqlite3_errmsg (db) : sqlite3_errstr (rc);
    int primary = rc & 0xff;
    if (primary == SQLITE_INTERRUPT) {
        if (self->timed_out) {
            dbt_err_set (err, "query exceeded its time limit of %" PRId64 " ms",
                         self->timeout_ms);
            return DBT_ETIMEDOUT;
        }
        dbt_err_set (err, "query canceled");
        return DBT_ECANCELED;
    }
    dbt_err_set (err, "sqlite: %s: %s", what, msg);
    switch (primary) {
        case SQLITE_IOERR:
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_CANTOPEN:
        case SQLITE_NOMEM:
            return DBT_ECONN;
        case SQLITE_FULL:
            return DBT_EFULL;
        default:
            return DBT_ERROR;
    }
}

//  Set err from the main connection's last error; the matching code.
static int
s_error (s_sqlite_t *self, int rc, const char *what, char *err)
{
    return s_error_in (self, self->db, rc, what, err);
}

//  Run one or more statements with no result rows on connection db.
static int
s_exec_in (s_sqlite_t *self, sqlite3 *db, const char *sql, const char *what, char *err)
{
    int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return s_error_in (self, db, rc, what, err);
    return 0;
}

//  Run statements on the main connection.
static int
s_exec (s_sqlite_t *self, const char *sql, const char *what, char *err)
{
    return s_exec_in (self, self->db, sql, what, err);
}

//  Progress handler: stops the running statement past its deadline.
static int
s_progress (void *arg)
{
    s_sqlite_t *self = (s_sqlite_t *) arg;
    if (self->deadline && dbt_clock_ms () >= self->deadline) {
        self->timed_out = true;
        return 1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Connect

//  Once per process, before SQLite's first use: no memory statistics
//  (nothing reads them; their global mutex around every allocation was
//  contended by the runners).
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_init (void)
{
    sqlite3_config (SQLITE_CONFIG_MEMSTATUS, 0);
}

//  Create the sample dataset in path unless the database already has a
//  schema (two workers may race to create it: the write lock settles it).
static int
s_create_sample (const char *dsn, int busy_ms, char *err)
{
    pthread_once (&s_once, s_init);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (dsn, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                              | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        dbt_err_set (err, "sqlite: cannot create '%s': %s", dsn,
                     db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
        sqlite3_close (db);
        return DBT_ECONN;
    }
    sqlite3_busy_timeout (db, busy_ms);
    sqlite3_stmt *stmt = NULL;
    rc = sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2 (db, "SELECT count(*) FROM sqlite_master", -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step (stmt) == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode (db);
    bool empty = rc == SQLITE_OK && sqlite3_column_int64 (stmt, 0) == 0;
    sqlite3_finalize (stmt);
    if (rc == SQLITE_OK && empty)
        rc = sqlite3_exec (db, dbt_sample_dataset_sql (), NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec (db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        dbt_err_set (err, "sqlite: cannot create the sample dataset in '%s': %s", dsn,
                     sqlite3_errmsg (db));
        sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_close (db);
    return rc == SQLITE_OK ? 0 : DBT_ERROR;
}

static void s_disconnect (void **handle_p);

static int
s_connect (const dbt_dbconf_t *conf, void **handle_p, char *err)
{
    pthread_once (&s_once, s_init);
    const char *dsn = conf->dsn;
    if (!dsn || !*dsn) {
        dbt_err_set (err, "sqlite: empty dsn (a file path or file: URI)");
        return DBT_EINVAL;
    }
    int busy_ms = conf->connect_timeout_ms > 0 && conf->connect_timeout_ms < INT_MAX
                ? (int) conf->connect_timeout_ms : S_BUSY_MS;
    int flags = SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX
              | (conf->results ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                               : SQLITE_OPEN_READONLY);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (dsn, &db, flags, NULL);
    if (rc == SQLITE_CANTOPEN && !conf->results && conf->sample_data) {
        sqlite3_close (db);
        db = NULL;
        rc = s_create_sample (dsn, busy_ms, err);
        if (rc)
            return rc;
        rc = sqlite3_open_v2 (dsn, &db, flags, NULL);
    }
    if (rc != SQLITE_OK) {
        dbt_err_set (err, "sqlite: cannot open '%s'%s: %s", dsn,
                     conf->results ? "" : " read-only",
                     db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
        sqlite3_close (db);
        return DBT_ECONN;
    }
    s_sqlite_t *self = (s_sqlite_t *) dbt_malloc (sizeof (s_sqlite_t));
    self->db = db;
    self->results = conf->results;
    self->stage.fd = -1;
    sqlite3_busy_timeout (db, busy_ms);
    //  Reading the schema now turns "not a database" into a connect error.
    sqlite3_stmt *stmt = NULL;
    int src = sqlite3_prepare_v2 (db, "SELECT count(*) FROM main.sqlite_master WHERE type = 'table'",
                                  -1, &stmt, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step (stmt) == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode (db);
    self->legacy = src == SQLITE_OK && sqlite3_column_int64 (stmt, 0) > 0;
    sqlite3_finalize (stmt);
    rc = src == SQLITE_OK ? 0 : s_error (self, src, "cannot read schema", err);
    if (rc == 0) {
        //  The table files sit next to the main file. A results database
        //  makes the directory; a source reads one if it is there.
        const char *file = sqlite3_db_filename (db, "main");
        if (file && *file) {
            char *path = dbt_sqlite_dir_for (file);
            rc = dbt_sqlite_dir_open (path, conf->results, &self->dir, err);
            free (path);
        }
        else
        if (conf->results) {
            dbt_err_set (err, "sqlite: results need a database file (each table is a file "
                         "next to it), '%s' is in memory", dsn);
            rc = DBT_EINVAL;
        }
    }
    if (rc) {
        void *handle = self;
        s_disconnect (&handle);
        return rc == DBT_ERROR ? DBT_ECONN : rc;
    }
    *handle_p = self;
    return 0;
}

static void s_query_end (void *handle);
static void s_write_abort (void *handle, const char *table);

static void
s_disconnect (void **handle_p)
{
    assert (handle_p);
    s_sqlite_t *self = (s_sqlite_t *) *handle_p;
    if (!self)
        return;
    s_query_end (self);
    s_write_abort (self, NULL);
    dbt_sqlite_dir_destroy (&self->dir);
    sqlite3_close (self->db);
    dbt_buf_free (&self->scratch);
    free (self);
    *handle_p = NULL;
}

static bool
s_alive (void *handle)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    return self && self->db;
}

//  --------------------------------------------------------------------------
//  Source side

//  After a prepare failed with "no such table: T" (T unqualified), attach
//  T's file when it has one. Returns true when it did: prepare again.
static bool
s_attach_missing (s_sqlite_t *self)
{
    static const char prefix [] = "no such table: ";
    const char *msg = sqlite3_errmsg (self->db);
    if (!self->dir || strncmp (msg, prefix, sizeof (prefix) - 1) != 0)
        return false;
    const char *table = msg + sizeof (prefix) - 1;
    if (strchr (table, '.') || self->nattached >= S_ATTACH_MAX
    ||  self->nattached >= sqlite3_limit (self->db, SQLITE_LIMIT_ATTACHED, -1))
        return false;
    for (int i = 0; i < self->nattached; i++)
        if (streq (self->attached [i], table))
            return false;       //  attached, and its file does not hold it
    char *uri = dbt_sqlite_dir_table_uri (self->dir, table);
    if (!uri)
        return false;
    char *name = dbt_strdup (table);    //  msg changes with the next call
    char sql [32];
    snprintf (sql, sizeof (sql), "ATTACH ?1 AS dbt_file_%d", self->nattached);
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2 (self->db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text (stmt, 1, uri, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step (stmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    sqlite3_finalize (stmt);
    free (uri);
    if (rc != SQLITE_OK) {
        //  Dropped meanwhile, or not a database: the table stays missing.
        free (name);
        return false;
    }
    self->attached [self->nattached++] = name;
    return true;
}

//  Detach the files attached for the statement that ended.
static void
s_detach_all (s_sqlite_t *self)
{
    while (self->nattached > 0) {
        self->nattached--;
        char sql [32];
        snprintf (sql, sizeof (sql), "DETACH dbt_file_%d", self->nattached);
        sqlite3_exec (self->db, sql, NULL, NULL, NULL);
        free (self->attached [self->nattached]);
        self->attached [self->nattached] = NULL;
    }
}

//  Prepare exactly one statement; a second statement after it is refused.
//  Tables in files of the table directory are attached as needed.
static int
s_prepare_one (s_sqlite_t *self, const char *sql, sqlite3_stmt **stmt_p, char *err)
{
    const char *tail = NULL;
    sqlite3_stmt *stmt = NULL;
    int rc;
    while ((rc = sqlite3_prepare_v2 (self->db, sql, -1, &stmt, &tail)) != SQLITE_OK) {
        int code = s_error (self, rc, "cannot prepare", err);
        if (!s_attach_missing (self))
            return code;
    }
    if (!stmt) {
        dbt_err_set (err, "sqlite: the task has no SQL statement");
        return DBT_EINVAL;
    }
    //  Only whitespace and comments may follow: preparing them gives no
    //  statement.
    if (tail && *tail) {
        sqlite3_stmt *next = NULL;
        rc = sqlite3_prepare_v2 (self->db, tail, -1, &next, NULL);
        sqlite3_finalize (next);
        if (rc != SQLITE_OK || next) {
            sqlite3_finalize (stmt);
            dbt_err_set (err, "sqlite: a task must be one SQL statement, found more "
                         "after the first");
            return DBT_EINVAL;
        }
    }
    *stmt_p = stmt;
    return 0;
}

static int
s_prepare (void *handle, const char *sql, int *nparams, char *err)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    sqlite3_stmt *stmt = NULL;
    int rc = s_prepare_one (self, sql, &stmt, err);
    if (rc) {
        s_detach_all (self);
        return rc;
    }
    if (nparams)
        *nparams = sqlite3_bind_parameter_count (stmt);
    sqlite3_finalize (stmt);
    s_detach_all (self);
    return 0;
}

//  Build the column list once the first row (if any) is stepped.
static void
s_build_columns (s_sqlite_t *self)
{
    size_t ncols = (size_t) sqlite3_column_count (self->stmt);
    self->ncols = ncols;
    self->cols = (dbt_column_t *) dbt_malloc ((ncols ? ncols : 1) * sizeof (dbt_column_t));
    self->vals = (const char **) dbt_malloc ((ncols ? ncols : 1) * sizeof (char *));
    self->lens = (size_t *) dbt_malloc ((ncols ? ncols : 1) * sizeof (size_t));
    self->cells = (dbt_buf_t *) dbt_malloc ((ncols ? ncols : 1) * sizeof (dbt_buf_t));
    for (size_t i = 0; i < ncols; i++) {
        dbt_column_t *col = &self->cols [i];
        col->name = dbt_strdup (sqlite3_column_name (self->stmt, (int) i));
        const char *decl = sqlite3_column_decltype (self->stmt, (int) i);
        if (decl) {
            col->type = dbt_sqlite_decltype_map (decl, &col->precision, &col->scale);
            col->source_type = dbt_strdup (decl);
            continue;
        }
        //  An expression: the first row's storage class decides.
        int storage = self->have_row ? sqlite3_column_type (self->stmt, (int) i) : SQLITE_NULL;
        col->precision = 0;
        col->scale = -1;
        col->type = storage == SQLITE_INTEGER ? DBT_COL_BIGINT
                  : storage == SQLITE_FLOAT ? DBT_COL_DOUBLE : DBT_COL_TEXT;
        col->source_type = dbt_strdup (storage == SQLITE_INTEGER ? "INTEGER"
                                     : storage == SQLITE_FLOAT ? "REAL"
                                     : storage == SQLITE_BLOB ? "BLOB"
                                     : storage == SQLITE_TEXT ? "TEXT" : "NULL");
    }
}

static int
s_query (void *handle, const char *sql, const dbt_args_t *args,
         const dbt_query_opts_t *opts, char *err)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    s_query_end (self);
    int rc = s_prepare_one (self, sql, &self->stmt, err);
    if (rc) {
        s_detach_all (self);
        return rc;
    }
    rc = dbt_args_check (sqlite3_bind_parameter_count (self->stmt), args, err);
    for (size_t i = 0; rc == 0 && i < args->count; i++) {
        const char *arg = args->vals [i];
        int brc = arg ? sqlite3_bind_text (self->stmt, (int) i + 1, arg, -1, SQLITE_TRANSIENT)
                      : sqlite3_bind_null (self->stmt, (int) i + 1);
        if (brc != SQLITE_OK)
            rc = s_error (self, brc, "cannot bind args", err);
    }
    if (rc) {
        s_query_end (self);
        return rc;
    }
    self->timed_out = false;
    self->timeout_ms = opts->timeout_ms;
    self->deadline = opts->timeout_ms > 0 ? dbt_clock_ms () + opts->timeout_ms : 0;
    sqlite3_progress_handler (self->db, self->deadline ? S_PROGRESS_OPS : 0,
                              self->deadline ? s_progress : NULL, self);
    int step = sqlite3_step (self->stmt);
    if (step == SQLITE_ROW)
        self->have_row = true;
    else
    if (step == SQLITE_DONE)
        self->done = true;
    else {
        rc = s_error (self, step, "query failed", err);
        s_query_end (self);
        return rc;
    }
    s_build_columns (self);
    return 0;
}

static int
s_columns (void *handle, const dbt_column_t **cols, size_t *ncols)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    *cols = self->cols;
    *ncols = self->cols ? self->ncols : 0;
    return self->cols ? 0 : DBT_EINVAL;
}

//  Error for a cell its column's type cannot hold.
static int
s_cell_error (s_sqlite_t *self, size_t i, const char *what, char *err)
{
    const unsigned char *text = sqlite3_column_text (self->stmt, (int) i);
    dbt_err_set (err, "column '%s' row %" PRId64 ": %s value '%.40s' is not a valid %s",
                 self->cols [i].name, self->rowno,
                 what, text ? (const char *) text : "", dbt_coltype_name (self->cols [i].type));
    return DBT_ERROR;
}

//  Convert the current row's cell i to its column's canonical text.
static int
s_cell (s_sqlite_t *self, size_t i, char *err)
{
    sqlite3_stmt *stmt = self->stmt;
    const dbt_column_t *col = &self->cols [i];
    dbt_buf_t *cell = &self->cells [i];
    int storage = sqlite3_column_type (stmt, (int) i);
    if (storage == SQLITE_NULL) {
        self->vals [i] = NULL;
        self->lens [i] = 0;
        return 0;
    }
    dbt_buf_reset (cell);
    dbt_buf_reserve (cell, 48);
    int len = -1;
    switch (col->type) {
        case DBT_COL_TEXT:
            if (storage == SQLITE_INTEGER)
                len = snprintf (cell->data, cell->cap, "%lld",
                                (long long) sqlite3_column_int64 (stmt, (int) i));
            else
            if (storage == SQLITE_FLOAT)
                len = dbt_cell_double (sqlite3_column_double (stmt, (int) i),
                                       cell->data, cell->cap);
            else {
                const void *bytes = storage == SQLITE_BLOB
                                  ? sqlite3_column_blob (stmt, (int) i)
                                  : (const void *) sqlite3_column_text (stmt, (int) i);
                self->vals [i] = bytes ? (const char *) bytes : "";
                self->lens [i] = (size_t) sqlite3_column_bytes (stmt, (int) i);
                return 0;
            }
            break;

        case DBT_COL_BIGINT:
        case DBT_COL_UBIGINT:
            if (storage == SQLITE_INTEGER)
                len = snprintf (cell->data, cell->cap, "%lld",
                                (long long) sqlite3_column_int64 (stmt, (int) i));
            else
            if (storage == SQLITE_FLOAT) {
                double value = sqlite3_column_double (stmt, (int) i);
                if (value != floor (value) || value < -9223372036854775808.0
                ||  value >= 9223372036854775808.0)
                    return s_cell_error (self, i, "real", err);
                len = snprintf (cell->data, cell->cap, "%lld", (long long) value);
            }
            else
            if (storage == SQLITE_TEXT) {
                const char *text = (const char *) sqlite3_column_text (stmt, (int) i);
                int64_t value;
                size_t tlen = (size_t) sqlite3_column_bytes (stmt, (int) i);
                if (dbt_cell_parse_int64 (text, tlen, &value))
                    return s_cell_error (self, i, "text", err);
                len = snprintf (cell->data, cell->cap, "%" PRId64, value);
            }
            else
                return s_cell_error (self, i, "blob", err);
            break;

        case DBT_COL_DOUBLE:
            if (storage == SQLITE_INTEGER || storage == SQLITE_FLOAT)
                len = dbt_cell_double (sqlite3_column_double (stmt, (int) i),
                                       cell->data, cell->cap);
            else
            if (storage == SQLITE_TEXT) {
                const char *text = (const char *) sqlite3_column_text (stmt, (int) i);
                size_t tlen = (size_t) sqlite3_column_bytes (stmt, (int) i);
                char *end = NULL;
                double value = tlen ? strtod (text, &end) : 0;
                if (!tlen || end != text + tlen || isspace ((unsigned char) *text))
                    return s_cell_error (self, i, "text", err);
                len = dbt_cell_double (value, cell->data, cell->cap);
            }
            else
                return s_cell_error (self, i, "blob", err);
            break;

        case DBT_COL_DECIMAL:
            if (storage == SQLITE_INTEGER)
                len = snprintf (cell->data, cell->cap, "%lld",
                                (long long) sqlite3_column_int64 (stmt, (int) i));
            else
            if (storage == SQLITE_FLOAT) {
                dbt_cell_decimal (sqlite3_column_double (stmt, (int) i), col->scale, cell);
                len = (int) cell->len;
            }
            else
            if (storage == SQLITE_TEXT) {
                const char *text = (const char *) sqlite3_column_text (stmt, (int) i);
                size_t tlen = (size_t) sqlite3_column_bytes (stmt, (int) i);
                if (!dbt_cell_is_decimal (text, tlen) && !dbt_cell_word_is (text, tlen, "NaN")
                &&  !dbt_cell_word_is (text, tlen, "Infinity")
                &&  !dbt_cell_word_is (text, tlen, "-Infinity"))
                    return s_cell_error (self, i, "text", err);
                self->vals [i] = text;
                self->lens [i] = tlen;
                return 0;
            }
            else
                return s_cell_error (self, i, "blob", err);
            break;

        case DBT_COL_BOOLEAN: {
            bool value = false;
            if (storage == SQLITE_INTEGER || storage == SQLITE_FLOAT) {
                double number = sqlite3_column_double (stmt, (int) i);
                if (number != 0 && number != 1)
                    return s_cell_error (self, i, "number", err);
                value = number == 1;
            }
            else
            if (storage == SQLITE_TEXT) {
                const char *text = (const char *) sqlite3_column_text (stmt, (int) i);
                size_t tlen = (size_t) sqlite3_column_bytes (stmt, (int) i);
                if (dbt_cell_parse_bool (text, tlen, &value))
                    return s_cell_error (self, i, "text", err);
            }
            else
                return s_cell_error (self, i, "blob", err);
            self->vals [i] = value ? "t" : "f";
            self->lens [i] = 1;
            return 0;
        }
        case DBT_COL_DATE:
        case DBT_COL_TIMESTAMP:
        case DBT_COL_TIMESTAMPTZ:
            if (storage != SQLITE_TEXT)
                return s_cell_error (self, i, storage == SQLITE_BLOB ? "blob" : "number", err);
            len = dbt_cell_time (col->type, (const char *) sqlite3_column_text (stmt, (int) i),
                                (size_t) sqlite3_column_bytes (stmt, (int) i),
                                cell->data, cell->cap);
            if (len < 0)
                return s_cell_error (self, i, "text", err);
            break;
    }
    assert (len >= 0 && (size_t) len < cell->cap);
    cell->len = (size_t) len;
    self->vals [i] = cell->data;
    self->lens [i] = cell->len;
    return 0;
}

//  Convert the current row into *row.
static int
s_row (s_sqlite_t *self, dbt_row_t *row, char *err)
{
    self->rowno++;
    for (size_t i = 0; i < self->ncols; i++) {
        int rc = s_cell (self, i, err);
        if (rc)
            return rc;
    }
    row->ncols = self->ncols;
    row->vals = self->vals;
    row->lens = self->lens;
    return 1;
}

static int
s_fetch (void *handle, dbt_row_t *row, char *err)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    if (!self->stmt) {
        dbt_err_set (err, "sqlite: no query is running");
        return DBT_EINVAL;
    }
    if (self->have_row) {
        self->have_row = false;
        return s_row (self, row, err);
    }
    if (self->done)
        return 0;
    int step = sqlite3_step (self->stmt);
    if (step == SQLITE_ROW)
        return s_row (self, row, err);
    if (step == SQLITE_DONE) {
        self->done = true;
        return 0;
    }
    return s_error (self, step, "query failed", err);
}

static void
s_query_end (void *handle)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    if (self->stmt) {
        sqlite3_finalize (self->stmt);
        self->stmt = NULL;
        sqlite3_progress_handler (self->db, 0, NULL, NULL);
    }
    s_detach_all (self);
    if (self->cells)
        for (size_t i = 0; i < self->ncols; i++)
            dbt_buf_free (&self->cells [i]);
    dbt_columns_free (&self->cols, self->ncols);
    free (self->cells);
    free (self->vals);
    free (self->lens);
    self->cells = NULL;
    self->vals = NULL;
    self->lens = NULL;
    self->ncols = 0;
    self->rowno = 0;
    self->have_row = false;
    self->done = false;
    self->deadline = 0;
}

static void
s_cancel (void *handle)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    if (self && self->db)
        sqlite3_interrupt (self->db);
}

//  --------------------------------------------------------------------------
//  Results side

//  Free the write state (not the stage).
static void
s_write_reset (s_sqlite_t *self)
{
    sqlite3_finalize (self->insert);
    self->insert = NULL;
    dbt_columns_free (&self->wcols, self->wncols);
    self->wncols = 0;
    self->wrows = 0;
    free (self->wtable);
    self->wtable = NULL;
}

static int
s_write_begin (void *handle, const char *table, const dbt_column_t *cols, size_t ncols,
               const dbt_table_opts_t *opts, char *err)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    if (!self->results) {
        dbt_err_set (err, "sqlite: a source database is opened read-only, it cannot "
                     "take results");
        return DBT_EINVAL;
    }
    if (self->wdb) {
        dbt_err_set (err, "sqlite: a results write is already in progress");
        return DBT_EINVAL;
    }
    int rc = dbt_sqlite_dir_stage (self->dir, &self->stage, err);
    if (rc)
        return rc;
    //  The file is private until it is renamed into place, so the table
    //  can have its final name from the start when it is known.
    self->wtable = dbt_strdup (opts->final && *opts->final ? opts->final : table);
    //  Nobody else opens the stage file: no locks ("unix-none"), no
    //  journal (a failed write is thrown away whole), no syncs (publish
    //  syncs once, at the end).
    int orc = sqlite3_open_v2 (self->stage.path, &self->wdb,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, "unix-none");
    if (orc != SQLITE_OK) {
        rc = s_error_in (self, self->wdb, orc, "cannot open the results file", err);
        s_write_abort (self, table);
        return rc == DBT_ERROR ? DBT_ECONN : rc;
    }
    char *qtable = dbt_quote_ident (self->wtable, '"');
    dbt_buf_t sql = { 0 };
    dbt_buf_printf (&sql, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN; "
                    "CREATE TABLE %s (", qtable);
    dbt_buf_t insert = { 0 };
    dbt_buf_printf (&insert, "INSERT INTO %s VALUES (", qtable);
    self->wcols = (dbt_column_t *) dbt_malloc (ncols * sizeof (dbt_column_t));
    self->wncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        char *qname = dbt_quote_ident (cols [i].name ? cols [i].name : "", '"');
        char *decl = dbt_sqlite_decltype_for (&cols [i]);
        dbt_buf_printf (&sql, "%s%s %s%s", i ? ", " : "", qname, decl,
                        cols [i].not_null ? " NOT NULL" : "");
        dbt_buf_puts (&insert, i ? ", ?" : "?");
        free (qname);
        free (decl);
        self->wcols [i].name = dbt_strdup (cols [i].name ? cols [i].name : "");
        self->wcols [i].type = cols [i].type;
    }
    dbt_buf_putc (&sql, ')');
    dbt_buf_putc (&insert, ')');
    rc = s_exec_in (self, self->wdb, sql.data, "cannot create the results table", err);
    if (rc == 0) {
        int prc = sqlite3_prepare_v2 (self->wdb, insert.data, -1, &self->insert, NULL);
        if (prc != SQLITE_OK)
            rc = s_error_in (self, self->wdb, prc, "cannot prepare the results insert", err);
    }
    dbt_buf_free (&sql);
    dbt_buf_free (&insert);
    free (qtable);
    if (rc)
        s_write_abort (self, table);
    return rc;
}

//  Error for a cell the results column cannot take.
static int
s_wcell_error (s_sqlite_t *self, size_t i, const char *val, size_t len, char *err)
{
    dbt_err_set (err, "column '%s' row %" PRId64 ": '%.*s' is not a valid %s",
                 self->wcols [i].name, self->wrows + 1, (int) (len > 40 ? 40 : len), val,
                 dbt_coltype_name (self->wcols [i].type));
    return DBT_EINVAL;
}

//  Bind cell i of a row to the prepared INSERT.
static int
s_bind_cell (s_sqlite_t *self, size_t i, const char *val, size_t len, char *err)
{
    int idx = (int) i + 1;
    if (!val)
        return sqlite3_bind_null (self->insert, idx);
    switch (self->wcols [i].type) {
        case DBT_COL_BIGINT: {
            int64_t value;
            if (dbt_cell_parse_int64 (val, len, &value))
                return s_wcell_error (self, i, val, len, err);
            return sqlite3_bind_int64 (self->insert, idx, value);
        }
        case DBT_COL_DOUBLE: {
            if (dbt_cell_word_is (val, len, "NaN"))
                return sqlite3_bind_text (self->insert, idx, "NaN", 3, SQLITE_STATIC);
            dbt_buf_reset (&self->scratch);
            dbt_buf_append (&self->scratch, val, len);
            char *end = NULL;
            double value = len ? strtod (self->scratch.data, &end) : 0;
            if (!len || end != self->scratch.data + len || isspace ((unsigned char) *val))
                return s_wcell_error (self, i, val, len, err);
            return sqlite3_bind_double (self->insert, idx, value);
        }
        case DBT_COL_BOOLEAN: {
            bool value;
            if (dbt_cell_parse_bool (val, len, &value))
                return s_wcell_error (self, i, val, len, err);
            return sqlite3_bind_int (self->insert, idx, value ? 1 : 0);
        }
        default:
            return sqlite3_bind_text (self->insert, idx, val, (int) len, SQLITE_STATIC);
    }
}

static int
s_write_row (void *handle, const dbt_row_t *row, char *err)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    if (!self->insert) {
        dbt_err_set (err, "sqlite: no results write in progress");
        return DBT_EINVAL;
    }
    if (row->ncols != self->wncols) {
        dbt_err_set (err, "sqlite: row has %zu cells, the results table %zu columns",
                     row->ncols, self->wncols);
        return DBT_EINVAL;
    }
    for (size_t i = 0; i < row->ncols; i++) {
        if (row->vals [i] && row->lens [i] > INT_MAX) {
            dbt_err_set (err, "column '%s' row %" PRId64 ": value of %zu bytes is too big "
                         "for SQLite", self->wcols [i].name, self->wrows + 1, row->lens [i]);
            return DBT_ETOOBIG;
        }
        int rc = s_bind_cell (self, i, row->vals [i], row->lens [i], err);
        if (rc < 0)
            return rc;
        if (rc != SQLITE_OK)
            return s_error_in (self, self->wdb, rc, "cannot bind a results value", err);
    }
    int step = sqlite3_step (self->insert);
    sqlite3_reset (self->insert);
    if (step != SQLITE_DONE)
        return s_error_in (self, self->wdb, step, "cannot insert a results row", err);
    self->wrows++;
    return 0;
}

//  Drop a table of the one-file layout of earlier versions from the main
//  file, if there is one (so it no longer hides the table's file; SQLite
//  matches names ignoring case, as that layout did). Without one this only
//  reads the main file's schema.
static int
s_drop_legacy (s_sqlite_t *self, const char *table, char *err)
{
    char *qtable = dbt_quote_ident (table, '"');
    char *sql = dbt_printf ("DROP TABLE IF EXISTS main.%s", qtable);
    int rc = s_exec (self, sql, "cannot drop the table in the main file", err);
    free (sql);
    free (qtable);
    return rc;
}

static int
s_write_commit (void *handle, const char *table, const char *final, char *err)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    if (!self->wdb) {
        dbt_err_set (err, "sqlite: no results write in progress");
        return DBT_EINVAL;
    }
    sqlite3_finalize (self->insert);
    self->insert = NULL;
    char name [NAME_MAX + 1];
    if (dbt_sqlite_dir_file_name (final, name, sizeof (name)) < 0) {
        dbt_err_set (err, "sqlite: table name '%s' is not 1 to %d of A-Z a-z 0-9 _ : -",
                     final, DBT_SQLITE_TABLE_MAX);
        s_write_abort (self, table);
        return DBT_EINVAL;
    }
    int rc = 0;
    if (strcmp (self->wtable, final) != 0) {
        char *qtable = dbt_quote_ident (self->wtable, '"');
        char *qfinal = dbt_quote_ident (final, '"');
        char *sql = dbt_printf ("ALTER TABLE %s RENAME TO %s", qtable, qfinal);
        rc = s_exec_in (self, self->wdb, sql, "cannot name the results table", err);
        free (sql);
        free (qtable);
        free (qfinal);
    }
    if (rc == 0)
        rc = s_exec_in (self, self->wdb, "COMMIT", "cannot commit the results", err);
    if (rc == 0) {
        int crc = sqlite3_close (self->wdb);
        if (crc != SQLITE_OK)
            rc = s_error_in (self, self->wdb, crc, "cannot close the results file", err);
        else
            self->wdb = NULL;
    }
    //  The swap: a reader opens the old file or this one.
    if (rc == 0)
        rc = dbt_sqlite_dir_publish (self->dir, &self->stage, final, err);
    if (rc) {
        s_write_abort (self, table);
        return rc;
    }
    s_write_reset (self);
    //  Nothing but the job's own files is touched, unless the main file
    //  has tables of the old layout (this version never adds any).
    return self->legacy ? s_drop_legacy (self, final, err) : 0;
}

static void
s_write_abort (void *handle, const char *table)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    s_write_reset (self);
    //  The table lives only in the stage file: removing it is the rollback.
    if (self->wdb) {
        sqlite3_close (self->wdb);
        self->wdb = NULL;
    }
    if (self->dir)
        dbt_sqlite_dir_discard (self->dir, &self->stage);
}

static int
s_drop_table (void *handle, const char *table, char *err)
{
    s_sqlite_t *self = (s_sqlite_t *) handle;
    if (!self->results) {
        dbt_err_set (err, "sqlite: a source database is opened read-only, it cannot "
                     "drop tables");
        return DBT_EINVAL;
    }
    int rc = dbt_sqlite_dir_remove (self->dir, table, err);
    if (rc == 0)
        rc = s_drop_legacy (self, table, err);
    return rc;
}

const dbt_driver_t dbt_driver_sqlite = {
    .name = "sqlite",
    .alias = "sqlite3",
    .connect = s_connect,
    .disconnect = s_disconnect,
    .alive = s_alive,
    .prepare = s_prepare,
    .query = s_query,
    .columns = s_columns,
    .fetch = s_fetch,
    .query_end = s_query_end,
    .cancel = s_cancel,
    .write_begin = s_write_begin,
    .write_row = s_write_row,
    .write_commit = s_write_commit,
    .write_abort = s_write_abort,
    .drop_table = s_drop_table,
    .max_identifier = DBT_SQLITE_TABLE_MAX
};

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    dbt_conn_t *conn;           //  connection to cancel
    int delay_ms;               //  wait before cancelling
} s_canceller_t;

static void *
s_canceller (void *arg)
{
    s_canceller_t *c = (s_canceller_t *) arg;
    usleep ((useconds_t) c->delay_ms * 1000);
    dbt_conn_cancel (c->conn);
    return NULL;
}

//  Number of entries in a directory, . and .. not counted.
static size_t
s_entries (const char *path)
{
    DIR *dir = opendir (path);
    assert (dir);
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
            count++;
    closedir (dir);
    return count;
}

//  Run sql with args on conn; the whole result as one string
//  ("a|b\nc|d\n", NULL as "~") into out, or the error code.
static int
s_run (dbt_conn_t *conn, const char *sql, const char **argv, size_t argc,
       dbt_buf_t *out, char *err)
{
    dbt_args_t args = { argc, argv };
    dbt_buf_reset (out);
    int rc = dbt_conn_query (conn, sql, &args, NULL, err);
    if (rc)
        return rc;
    dbt_row_t row;
    while ((rc = dbt_conn_fetch (conn, &row, err)) == 1) {
        for (size_t i = 0; i < row.ncols; i++) {
            if (i)
                dbt_buf_putc (out, '|');
            if (row.vals [i])
                dbt_buf_append (out, row.vals [i], row.lens [i]);
            else
                dbt_buf_putc (out, '~');
        }
        dbt_buf_putc (out, '\n');
    }
    dbt_conn_query_end (conn);
    return rc;
}

void
dbt_driver_sqlite_test (bool verbose)
{
    int p, s;
    //  Declared types
    assert (dbt_sqlite_decltype_map ("INTEGER", &p, &s) == DBT_COL_BIGINT);
    assert (dbt_sqlite_decltype_map ("unsigned big int", &p, &s) == DBT_COL_BIGINT);
    assert (dbt_sqlite_decltype_map ("DECIMAL(12,2)", &p, &s) == DBT_COL_DECIMAL && p == 12 && s == 2);
    assert (dbt_sqlite_decltype_map ("numeric(7)", &p, &s) == DBT_COL_DECIMAL && p == 7 && s == 0);
    assert (dbt_sqlite_decltype_map ("NUMERIC", &p, &s) == DBT_COL_DECIMAL && p == 0 && s == -1);
    assert (dbt_sqlite_decltype_map ("DECIMAL_TEXT(20,0)", &p, &s) == DBT_COL_DECIMAL && p == 20 && s == 0);
    assert (dbt_sqlite_decltype_map ("DOUBLE PRECISION", &p, &s) == DBT_COL_DOUBLE);
    assert (dbt_sqlite_decltype_map ("float", &p, &s) == DBT_COL_DOUBLE);
    assert (dbt_sqlite_decltype_map ("REAL", &p, &s) == DBT_COL_DOUBLE);
    assert (dbt_sqlite_decltype_map ("BOOLEAN", &p, &s) == DBT_COL_BOOLEAN);
    assert (dbt_sqlite_decltype_map ("date", &p, &s) == DBT_COL_DATE);
    assert (dbt_sqlite_decltype_map ("DATETIME", &p, &s) == DBT_COL_TIMESTAMP);
    assert (dbt_sqlite_decltype_map ("TIMESTAMP", &p, &s) == DBT_COL_TIMESTAMP);
    assert (dbt_sqlite_decltype_map ("timestamp without time zone", &p, &s) == DBT_COL_TIMESTAMP);
    assert (dbt_sqlite_decltype_map ("TIMESTAMPTZ", &p, &s) == DBT_COL_TIMESTAMPTZ);
    assert (dbt_sqlite_decltype_map ("timestamp with time zone", &p, &s) == DBT_COL_TIMESTAMPTZ);
    assert (dbt_sqlite_decltype_map ("VARCHAR(6)", &p, &s) == DBT_COL_TEXT);
    assert (dbt_sqlite_decltype_map ("INTERVAL", &p, &s) == DBT_COL_TEXT);
    assert (dbt_sqlite_decltype_map ("BLOB", &p, &s) == DBT_COL_TEXT);
    assert (dbt_sqlite_decltype_map ("", &p, &s) == DBT_COL_TEXT);
    for (int t = DBT_COL_TEXT; t <= DBT_COL_TIMESTAMPTZ; t++) {
        dbt_column_t col = { .type = (dbt_coltype_t) t, .precision = 24, .scale = 6 };
        char *decl = dbt_sqlite_decltype_for (&col);
        dbt_coltype_t back = dbt_sqlite_decltype_map (decl, &p, &s);
        assert (back == (t == DBT_COL_UBIGINT ? DBT_COL_DECIMAL : (dbt_coltype_t) t));
        //  No INT in a name that must not get INTEGER affinity
        if (t == DBT_COL_UBIGINT || t == DBT_COL_DECIMAL)
            assert (!strcasestr (decl, "INT") && strcasestr (decl, "TEXT"));
        free (decl);
    }
    dbt_buf_t out = { 0 };

    //  Live round trip on a temp file
    char *dir = dbt_testing_tmpdir ("sqlite");
    char *rpath = dbt_printf ("%s/results.db", dir);
    char *spath = dbt_printf ("%s/sample.db", dir);
    char err [DBT_ERRMSG_LEN];

    //  A missing read-only source fails; with sample_data it is created.
    dbt_dbconf_t sconf = { .name = "sample", .type = "sqlite", .dsn = spath };
    assert (dbt_conn_new (&sconf, err) == NULL);
    assert (strstr (err, "cannot open"));
    sconf.sample_data = true;
    dbt_conn_t *src = dbt_conn_new (&sconf, err);
    assert (src);
    assert (s_run (src, "SELECT count(*), min(amount), sum(amount) > 0 FROM entries",
                   NULL, 0, &out, err) == 0);
    assert (strncmp (out.data, "1000|", 5) == 0);
    assert (dbt_conn_query (src, "SELECT * FROM entries WHERE user_id = ? ORDER BY id",
                            (const dbt_args_t *) &(dbt_args_t) { 1, (const char *[]) { "user2" } },
                            NULL, err) == 0);
    const dbt_column_t *cols;
    size_t ncols;
    assert (dbt_conn_columns (src, &cols, &ncols) == 0 && ncols == 5);
    assert (cols [0].type == DBT_COL_BIGINT && streq (cols [0].name, "id"));
    assert (cols [1].type == DBT_COL_DECIMAL && cols [1].precision == 12 && cols [1].scale == 2);
    assert (cols [2].type == DBT_COL_TEXT && streq (cols [2].source_type, "VARCHAR(6)"));
    assert (cols [3].type == DBT_COL_DATE);
    assert (cols [4].type == DBT_COL_TIMESTAMP);
    dbt_row_t row;
    assert (dbt_conn_fetch (src, &row, err) == 1);
    assert (streq (row.vals [0], "1") && streq (row.vals [1], "79.19"));
    assert (streq (row.vals [2], "user2"));
    assert (streq (row.vals [3], "2024-01-02"));
    dbt_conn_query_end (src);
    //  Read-only: writes are refused
    assert (s_run (src, "DELETE FROM entries", NULL, 0, &out, err) < 0);
    assert (strstr (err, "readonly"));
    dbt_column_t rocol = { "a", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false };
    assert (dbt_conn_write_begin (src, "t", &rocol, 1, NULL, err) == DBT_EINVAL);
    assert (strstr (err, "read-only"));
    //  Arg counts and statement checks
    int nparams = -2;
    assert (dbt_conn_prepare (src, "SELECT ?1, ?2, ?1", &nparams, err) == 0 && nparams == 2);
    assert (dbt_conn_prepare (src, "SELECT 1; -- done\n", &nparams, err) == 0 && nparams == 0);
    assert (dbt_conn_prepare (src, "SELECT 1; SELECT 2", &nparams, err) == DBT_EINVAL);
    assert (strstr (err, "one SQL statement"));
    assert (dbt_conn_prepare (src, "SELEC 1", &nparams, err) == DBT_ERROR);
    assert (strstr (err, "syntax error"));
    assert (dbt_conn_prepare (src, "  ", &nparams, err) == DBT_EINVAL);
    assert (s_run (src, "SELECT ?", NULL, 0, &out, err) == DBT_EINVAL);
    assert (streq (err, "task expects 1 arg, got 0"));
    const char *three [] = { "a", NULL, "c" };
    assert (s_run (src, "SELECT ?1, ?2", three, 3, &out, err) == DBT_EINVAL);
    assert (streq (err, "task expects 2 args, got 3"));
    assert (s_run (src, "SELECT ?1, ?2 IS NULL, ?3", three, 3, &out, err) == 0);
    assert (streq (out.data, "a|1|c\n"));
    //  Expression types from the first row; a later misfit names column and row
    assert (dbt_conn_query (src, "SELECT 1 AS i, 1.5 AS d, NULL AS n, 'x' AS t",
                            NULL, NULL, err) == 0);
    assert (dbt_conn_columns (src, &cols, &ncols) == 0 && ncols == 4);
    assert (cols [0].type == DBT_COL_BIGINT && cols [1].type == DBT_COL_DOUBLE);
    assert (cols [2].type == DBT_COL_TEXT && cols [3].type == DBT_COL_TEXT);
    dbt_conn_query_end (src);
    const char *misfit =
        "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5) "
        "SELECT CASE WHEN x < 3 THEN x WHEN x = 3 THEN 4.0 ELSE 'abc' END AS v FROM n";
    assert (s_run (src, misfit, NULL, 0, &out, err) == DBT_ERROR);
    assert (streq (err, "column 'v' row 4: text value 'abc' is not a valid BIGINT"));
    assert (streq (out.data, "1\n2\n4\n"));
    assert (s_run (src, "SELECT CASE WHEN x = 1 THEN 1 ELSE 2.5 END AS v "
                   "FROM (SELECT 1 AS x UNION ALL SELECT 2)", NULL, 0, &out, err) == DBT_ERROR);
    assert (strstr (err, "row 2: real value '2.5'"));
    assert (s_run (src, "SELECT CASE WHEN x = 1 THEN 1.5 ELSE 2 END AS v "
                   "FROM (SELECT 1 AS x UNION ALL SELECT 2)", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "1.5\n2\n"));
    //  An empty result still has columns
    assert (dbt_conn_query (src, "SELECT id, amount FROM entries WHERE 0", NULL, NULL, err) == 0);
    assert (dbt_conn_columns (src, &cols, &ncols) == 0 && ncols == 2);
    assert (dbt_conn_fetch (src, &row, err) == 0);
    assert (dbt_conn_fetch (src, &row, err) == 0);
    dbt_conn_query_end (src);
    assert (dbt_conn_fetch (src, &row, err) == DBT_EINVAL);
    //  Cancel from another thread, and a time limit
    const char *forever =
        "WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
        "WHERE x < 4000000000) SELECT count(*) FROM c";
    s_canceller_t canceller = { src, 200 };
    pthread_t thread;
    int64_t start = dbt_clock_ms ();
    assert (pthread_create (&thread, NULL, s_canceller, &canceller) == 0);
    assert (s_run (src, forever, NULL, 0, &out, err) == DBT_ECANCELED);
    assert (streq (err, "query canceled"));
    pthread_join (thread, NULL);
    assert (dbt_clock_ms () - start < 5000);
    assert (s_run (src, "SELECT 42", NULL, 0, &out, err) == 0 && streq (out.data, "42\n"));
    dbt_query_opts_t opts = { .timeout_ms = 100 };
    start = dbt_clock_ms ();
    assert (dbt_conn_query (src, forever, NULL, &opts, err) == DBT_ETIMEDOUT);
    assert (strstr (err, "time limit of 100 ms"));
    assert (dbt_clock_ms () - start < 5000);
    assert (!dbt_conn_broken (src));
    dbt_conn_destroy (&src);
    //  The sample file is not recreated or refilled on the next start
    src = dbt_conn_new (&sconf, err);
    assert (src);
    assert (s_run (src, "SELECT count(*) FROM entries", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "1000\n"));
    dbt_conn_destroy (&src);

    //  Results: every type round trips exactly, NUL bytes included
    dbt_dbconf_t rconf = { .name = "res", .type = "sqlite", .dsn = rpath, .results = true };
    dbt_conn_t *res = dbt_conn_new (&rconf, err);
    assert (res);
    dbt_column_t wcols [] = {
        { "t", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false },
        { "i", DBT_COL_BIGINT, 0, -1, NULL, 0, 0, 0, false },
        { "u", DBT_COL_UBIGINT, 0, -1, NULL, 0, 0, 0, false },
        { "d", DBT_COL_DECIMAL, 24, 6, NULL, 0, 0, 0, false },
        { "dd", DBT_COL_DECIMAL, 0, -1, NULL, 0, 0, 0, false },
        { "f", DBT_COL_DOUBLE, 0, -1, NULL, 0, 0, 0, false },
        { "b", DBT_COL_BOOLEAN, 0, -1, NULL, 0, 0, 0, false },
        { "day", DBT_COL_DATE, 0, -1, NULL, 0, 0, 0, false },
        { "ts", DBT_COL_TIMESTAMP, 0, -1, NULL, 0, 0, 0, false },
        { "tz", DBT_COL_TIMESTAMPTZ, 0, -1, NULL, 0, 0, 0, false },
        { "q\"x", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false }
    };
    size_t wn = sizeof (wcols) / sizeof (wcols [0]);
    const char *rows [][11] = {
        { "a\tb\nc\\d\0e", "-9223372036854775808", "18446744073709551615",
          "123456789012345678.123456", "1.10", "1e-300", "t", "2024-02-29",
          "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.654321+00",
          "\xe6\x97\xa5\xf0\x9f\xaa\xb2" },
        { "", "9223372036854775807", "0", "-0.500000", "-0.5", "NaN", "f", "1970-01-01",
          "1999-12-31 23:59:59", "2000-01-01 00:00:00+00", "x" },
        { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL },
        { "x", "0", "1", "0", "00012", "-Infinity", "f", "0001-01-01",
          "infinity", "-infinity", "" },
        { "0.1", "1", "2", "1.5", "3", "0.1", "t", "9999-12-31",
          "2024-01-01 00:00:00", "2024-01-01 00:00:00.5+00", "\"" }
    };
    size_t nrows = sizeof (rows) / sizeof (rows [0]);
    size_t lens [11];
    assert (dbt_conn_write_begin (res, "stage1", wcols, wn, NULL, err) == 0);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t i = 0; i < wn; i++)
            lens [i] = rows [r][i] ? strlen (rows [r][i]) : 0;
        if (r == 0)
            lens [0] = 9;       //  "a\tb\nc\\d\0e": includes the NUL
        dbt_row_t wrow = { wn, rows [r], lens };
        assert (dbt_conn_write_row (res, &wrow, err) == 0);
    }
    assert (dbt_conn_write_commit (res, "stage1", "final", err) == 0);
    assert (dbt_conn_query (res, "SELECT * FROM final ORDER BY rowid", NULL, NULL, err) == 0);
    assert (dbt_conn_columns (res, &cols, &ncols) == 0 && ncols == wn);
    for (size_t i = 0; i < wn; i++) {
        assert (streq (cols [i].name, wcols [i].name));
        dbt_coltype_t expect = wcols [i].type == DBT_COL_UBIGINT ? DBT_COL_DECIMAL : wcols [i].type;
        assert (cols [i].type == expect);
    }
    assert (cols [3].precision == 24 && cols [3].scale == 6);
    assert (cols [2].precision == 20 && cols [2].scale == 0);
    for (size_t r = 0; r < nrows; r++) {
        assert (dbt_conn_fetch (res, &row, err) == 1);
        for (size_t i = 0; i < wn; i++) {
            size_t len = rows [r][i] ? strlen (rows [r][i]) : 0;
            if (r == 0 && i == 0)
                len = 9;
            if (!rows [r][i])
                assert (row.vals [i] == NULL);
            else {
                if (row.lens [i] != len || memcmp (row.vals [i], rows [r][i], len) != 0) {
                    fprintf (stderr, "row %zu col %zu: got '%.*s' want '%s'\n", r, i,
                             (int) row.lens [i], row.vals [i], rows [r][i]);
                    assert (false);
                }
            }
        }
    }
    assert (dbt_conn_fetch (res, &row, err) == 0);
    dbt_conn_query_end (res);

    //  Bad values are refused with the column and row named
    assert (dbt_conn_write_begin (res, "stage2", wcols, wn, NULL, err) == 0);
    const char *bad [11] = { "x", "12a" };
    size_t badlens [11] = { 1, 3 };
    dbt_row_t badrow = { wn, bad, badlens };
    assert (dbt_conn_write_row (res, &badrow, err) == DBT_EINVAL);
    assert (streq (err, "column 'i' row 1: '12a' is not a valid BIGINT"));
    badrow.ncols = 2;
    assert (dbt_conn_write_row (res, &badrow, err) == DBT_EINVAL);
    //  Abort keeps the previous final table and leaves no staging file;
    //  the table is a file of its own, and the main file has no tables
    char *tmpdir = dbt_printf ("%s/results.db.d/.tmp", dir);
    assert (s_entries (tmpdir) == 1);
    dbt_conn_write_abort (res, "stage2");
    assert (s_entries (tmpdir) == 0);
    assert (s_run (res, "SELECT count(*) FROM final", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "5\n"));
    assert (s_run (res, "SELECT count(*) FROM main.sqlite_master", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "0\n"));
    char *finalpath = dbt_printf ("%s/results.db.d/final.db", dir);
    assert (access (finalpath, F_OK) == 0);
    //  A second write replaces the first
    dbt_column_t one [] = { { "n", DBT_COL_BIGINT, 0, -1, NULL, 0, 0, 0, false } };
    assert (dbt_conn_write_begin (res, "stage3", one, 1, NULL, err) == 0);
    const char *seven [] = { "7" };
    size_t sevenlen [] = { 1 };
    dbt_row_t srow = { 1, seven, sevenlen };
    assert (dbt_conn_write_row (res, &srow, err) == 0);
    assert (dbt_conn_write_begin (res, "stage4", one, 1, NULL, err) == DBT_EINVAL);
    assert (dbt_conn_write_commit (res, "stage3", "final", err) == 0);
    assert (s_run (res, "SELECT * FROM final", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "7\n"));
    assert (dbt_conn_write_row (res, &srow, err) == DBT_EINVAL);
    assert (dbt_conn_write_commit (res, "stage3", "final", err) == DBT_EINVAL);
    //  Another connection, a source on the results file too, sees it
    dbt_dbconf_t rosconf = { .name = "ro", .type = "sqlite", .dsn = rpath };
    src = dbt_conn_new (&rosconf, err);
    assert (src);
    assert (s_run (src, "SELECT * FROM final", NULL, 0, &out, err) == 0 && streq (out.data, "7\n"));
    assert (dbt_conn_drop_table (src, "final", err) == DBT_EINVAL);
    //  A reader keeps the complete old table while a new one is swapped in
    assert (dbt_conn_read_table (src, "final", 0, 0, err) == 0);
    assert (dbt_conn_write_begin (res, "stage5", one, 1, NULL, err) == 0);
    const char *eight [] = { "8" };
    dbt_row_t erow = { 1, eight, sevenlen };
    assert (dbt_conn_write_row (res, &erow, err) == 0);
    assert (dbt_conn_write_row (res, &erow, err) == 0);
    assert (dbt_conn_write_commit (res, "stage5", "final", err) == 0);
    assert (dbt_conn_fetch (src, &row, err) == 1 && streq (row.vals [0], "7"));
    assert (dbt_conn_fetch (src, &row, err) == 0);
    assert (s_run (src, "SELECT group_concat (n) FROM final", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "8,8\n"));
    dbt_conn_destroy (&src);
    //  Names that differ only in case are separate tables and files; one
    //  statement may read several
    //  (the first created under its final name, the second renamed)
    const char *tcase [] = { "t_CaseA", "t_casea" };
    for (int i = 0; i < 2; i++) {
        dbt_table_opts_t named = { false, i ? NULL : tcase [i] };
        assert (dbt_conn_write_begin (res, "dbt_stage_x", one, 1, &named, err) == 0);
        dbt_row_t crow = { 1, i ? seven : eight, sevenlen };
        assert (dbt_conn_write_row (res, &crow, err) == 0);
        assert (dbt_conn_write_commit (res, "dbt_stage_x", tcase [i], err) == 0);
    }
    assert (s_run (res, "SELECT * FROM t_CaseA", NULL, 0, &out, err) == 0 && streq (out.data, "8\n"));
    assert (s_run (res, "SELECT * FROM \"t_casea\"", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "7\n"));
    assert (s_run (res, "SELECT f.n || t.n FROM final f JOIN t_casea t", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "87\n87\n"));
    char *casepath = dbt_printf ("%s/results.db.d/t_+case+a.db", dir);
    assert (access (casepath, F_OK) == 0);
    assert (dbt_conn_write_begin (res, "dbt_stage_x", one, 1, NULL, err) == 0);
    assert (dbt_conn_write_commit (res, "dbt_stage_x", "t.x", err) == DBT_EINVAL);
    assert (strstr (err, "'t.x'") && s_entries (tmpdir) == 0);
    //  Drop removes the file
    assert (dbt_conn_drop_table (res, "final", err) == 0);
    assert (access (finalpath, F_OK) != 0);
    assert (dbt_conn_drop_table (res, "final", err) == 0);
    assert (s_run (res, "SELECT * FROM final", NULL, 0, &out, err) == DBT_ERROR);
    assert (strstr (err, "no such table: final"));
    assert (dbt_conn_drop_table (res, "t_CaseA", err) == 0);
    assert (access (casepath, F_OK) != 0);
    assert (s_run (res, "SELECT * FROM t_casea", NULL, 0, &out, err) == 0 && streq (out.data, "7\n"));
    dbt_conn_destroy (&res);

    //  The one-file layout of earlier versions: its tables stay readable,
    //  and are dropped when the name is written again or dropped. A crash
    //  left a stage file: the next connection removes it.
    sqlite3 *old = NULL;
    assert (sqlite3_open (rpath, &old) == SQLITE_OK);
    assert (sqlite3_exec (old, "PRAGMA journal_mode=WAL; CREATE TABLE results_old (v); "
                          "INSERT INTO results_old VALUES ('old'); CREATE TABLE results_gone (v)",
                          NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close (old);
    char *orphan = dbt_printf ("%s/1-crashed.db", tmpdir);
    FILE *crashed = fopen (orphan, "w");
    assert (crashed);
    fclose (crashed);
    res = dbt_conn_new (&rconf, err);
    assert (res && access (orphan, F_OK) != 0);
    assert (s_run (res, "SELECT * FROM results_old", NULL, 0, &out, err) == 0);
    assert (streq (out.data, "old\n"));
    assert (dbt_conn_write_begin (res, "dbt_stage_y", one, 1, NULL, err) == 0);
    assert (dbt_conn_write_row (res, &srow, err) == 0);
    assert (dbt_conn_write_commit (res, "dbt_stage_y", "results_old", err) == 0);
    assert (s_run (res, "SELECT * FROM results_old", NULL, 0, &out, err) == 0 && streq (out.data, "7\n"));
    assert (dbt_conn_drop_table (res, "results_gone", err) == 0);
    assert (s_run (res, "SELECT name FROM main.sqlite_master", NULL, 0, &out, err) == 0);
    assert (streq (out.data, ""));
    dbt_conn_destroy (&res);
    //  An in-memory results database has nowhere to put files
    dbt_dbconf_t mconf = { .name = "mem", .type = "sqlite", .dsn = ":memory:", .results = true };
    assert (dbt_conn_new (&mconf, err) == NULL && strstr (err, "in memory"));
    free (orphan);
    free (casepath);
    free (finalpath);
    free (tmpdir);

    //  Not a database: a connect error
    char *junk = dbt_printf ("%s/junk.db", dir);
    FILE *file = fopen (junk, "w");
    assert (file);
    fputs ("this is not a database file, just some text that is long enough........"
           "................................................................", file);
    fclose (file);
    dbt_dbconf_t jconf = { .name = "junk", .type = "sqlite", .dsn = junk };
    assert (dbt_conn_new (&jconf, err) == NULL);
    assert (strstr (err, "not a database"));
    unlink (junk);
    free (junk);

    dbt_testing_rmtree (&dir);
    free (rpath);
    free (spath);
    dbt_buf_free (&out);
    if (verbose)
        printf ("driver_sqlite: ok\n");
}
#endif  //  DBT_SELFTEST
