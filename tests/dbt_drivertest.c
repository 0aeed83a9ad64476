/*  =========================================================================
    dbt_drivertest - driver conformance test against live databases (TAP)

    Usage: dbt_drivertest SOURCE_TYPE SOURCE_DSN RESULTS_TYPE RESULTS_DSN [--verbose]

    Builds a fixture table on the source with that database's own client
    library (NULLs, int64 limits, exact decimals, doubles, booleans, dates,
    timestamps with microseconds, timestamptz, 100 KB and non-ASCII text,
    text with tabs, newlines and backslashes), then checks through the
    drivers: bound args, column types, every value, a write to the results
    database and its read-back, the atomic swap and abort, cancel and time
    limits from another thread, errors in mid-stream, arg count errors,
    streaming memory, identifier quoting. Output is TAP; the exit status is
    non-zero when a check failed.
    =========================================================================
*/
#include "../src/dbt_classes.h"
#include <sqlite3.h>
#include <libpq-fe.h>
#include <math.h>
#include <sys/resource.h>

//  Test-program state (this is a test driver, not a library class).
static int s_tests;             //  checks run
static int s_failed;            //  checks failed
static bool s_verbose;          //  --verbose

#define NCOLS 9
#define NROWS 7
#define LONG_TEXT 100000

static void
s_diag (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static void
s_diag (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char line [2048];
    vsnprintf (line, sizeof (line), format, args);
    va_end (args);
    for (char *p = line; *p; p++)
        if (*p == '\n')
            *p = ' ';
    printf ("# %s\n", line);
    fflush (stdout);
}

//  Report one check; returns cond.
static bool
s_ok (bool cond, const char *desc)
{
    s_tests++;
    if (!cond)
        s_failed++;
    printf ("%s %d - %s\n", cond ? "ok" : "not ok", s_tests, desc);
    fflush (stdout);
    return cond;
}

//  --------------------------------------------------------------------------
//  Expected values (canonical text) and the fixture's input where it differs

typedef struct {
    const char *name;           //  column name
    dbt_coltype_t type;         //  canonical type
    const char *pg_type;        //  PostgreSQL column type
    const char *sqlite_type;    //  SQLite declared type
} s_fcol_t;

static const s_fcol_t s_fcols [NCOLS] = {
    { "id", DBT_COL_BIGINT, "bigint", "INTEGER" },
    { "i64", DBT_COL_BIGINT, "bigint", "BIGINT" },
    { "dec", DBT_COL_DECIMAL, "numeric(24,6)", "DECIMAL_TEXT(24,6)" },
    { "f", DBT_COL_DOUBLE, "double precision", "DOUBLE" },
    { "b", DBT_COL_BOOLEAN, "boolean", "BOOLEAN" },
    { "d", DBT_COL_DATE, "date", "DATE" },
    { "ts", DBT_COL_TIMESTAMP, "timestamp", "TIMESTAMP" },
    { "tz", DBT_COL_TIMESTAMPTZ, "timestamptz", "TIMESTAMPTZ" },
    { "txt", DBT_COL_TEXT, "text", "TEXT" }
};

//  Canonical values; "@LONG" stands for the 100 KB text.
static const char *s_want [NROWS][NCOLS] = {
    { "1", "-9223372036854775808", "123456789012345678.123456", "1.5", "t", "2024-02-29",
      "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.654321+00",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xaa\xb2 caf\xc3\xa9" },
    { "2", "9223372036854775807", "-0.500000", "1e-300", "f", "1970-01-01",
      "1999-12-31 23:59:59", "2000-01-01 00:00:00+00",
      "tab\there\nnewline\\backslash\r\n\\N end" },
    { "3", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL },
    { "4", "0", "0.000000", "0.1", "t", "0001-01-01", "2024-06-30 12:00:00.5",
      "2024-06-30 12:00:00+00", "@LONG" },
    { "5", "42", "1.100000", "-1.7976931348623157e+308", "f", "9999-12-31",
      "2038-01-19 03:14:08", "1969-12-31 23:59:59.999999+00", "" },
    { "6", "-1", "NaN", "NaN", "t", "infinity", "-infinity", "infinity", "\\." },
    { "7", "1", "-0.000001", "Infinity", "f", "2000-02-29", "2024-02-29 23:59:59.999999",
      "2024-01-01 00:00:00.000001+00", "a\\b\\N\\t\\" }
};

//  Fixture input where it is not the canonical text: a zone to convert.
static const char *
s_input (size_t r, size_t i)
{
    if (r == 1 && i == 7)
        return "2000-01-01 05:30:00+05:30";
    return s_want [r][i];
}

//  The 100 KB text: ASCII, multi-byte characters and specials mixed.
static char *
s_long_text (void)
{
    dbt_buf_t buf = { 0 };
    static const char *parts [] = { "abcdefghij", "\xc3\xa9", "\xe2\x82\xac", "\t", "\\", "\n" };
    for (size_t i = 0; buf.len < LONG_TEXT; i++)
        dbt_buf_puts (&buf, parts [i % 6]);
    return dbt_buf_take (&buf);
}

//  --------------------------------------------------------------------------
//  Fixture setup with each database's own client library

static int
s_fixture_sqlite (const char *dsn, const char *longtext, char *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (dsn, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                              | SQLITE_OPEN_URI, NULL);
    dbt_buf_t sql = { 0 };
    dbt_buf_puts (&sql, "DROP TABLE IF EXISTS dbt_fixture; CREATE TABLE dbt_fixture (");
    for (size_t i = 0; i < NCOLS; i++)
        dbt_buf_printf (&sql, "%s%s %s", i ? ", " : "", s_fcols [i].name, s_fcols [i].sqlite_type);
    dbt_buf_puts (&sql, ")");
    if (rc == SQLITE_OK)
        rc = sqlite3_exec (db, sql.data, NULL, NULL, NULL);
    dbt_buf_free (&sql);
    sqlite3_stmt *stmt = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2 (db, "INSERT INTO dbt_fixture VALUES (?,?,?,?,?,?,?,?,?)",
                                 -1, &stmt, NULL);
    for (size_t r = 0; rc == SQLITE_OK && r < NROWS; r++) {
        for (size_t i = 0; i < NCOLS; i++) {
            const char *val = s_input (r, i);
            int idx = (int) i + 1;
            if (val && streq (val, "@LONG"))
                val = longtext;
            if (!val)
                sqlite3_bind_null (stmt, idx);
            else
            if (s_fcols [i].type == DBT_COL_BIGINT)
                sqlite3_bind_int64 (stmt, idx, strtoll (val, NULL, 10));
            else
            if (s_fcols [i].type == DBT_COL_DOUBLE && !streq (val, "NaN"))
                sqlite3_bind_double (stmt, idx, strtod (val, NULL));
            else
            if (s_fcols [i].type == DBT_COL_BOOLEAN)
                sqlite3_bind_int (stmt, idx, streq (val, "t"));
            else
                sqlite3_bind_text (stmt, idx, val, -1, SQLITE_STATIC);
        }
        rc = sqlite3_step (stmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset (stmt);
    }
    sqlite3_finalize (stmt);
    if (rc != SQLITE_OK)
        dbt_err_set (err, "sqlite fixture: %s", db ? sqlite3_errmsg (db) : "cannot open");
    sqlite3_close (db);
    return rc == SQLITE_OK ? 0 : -1;
}

static int
s_fixture_pg (const char *dsn, const char *longtext, char *err)
{
    PGconn *conn = PQconnectdb (dsn);
    if (PQstatus (conn) != CONNECTION_OK) {
        dbt_err_set (err, "pg fixture: %s", PQerrorMessage (conn));
        PQfinish (conn);
        return -1;
    }
    dbt_buf_t sql = { 0 };
    dbt_buf_puts (&sql, "SET client_min_messages = warning; "
                  "DROP TABLE IF EXISTS dbt_fixture; CREATE TABLE dbt_fixture (");
    for (size_t i = 0; i < NCOLS; i++)
        dbt_buf_printf (&sql, "%s%s %s", i ? ", " : "", s_fcols [i].name, s_fcols [i].pg_type);
    dbt_buf_puts (&sql, ")");
    PGresult *res = PQexec (conn, sql.data);
    dbt_buf_free (&sql);
    int rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        dbt_err_set (err, "pg fixture: %s", PQresultErrorMessage (res));
    PQclear (res);
    for (size_t r = 0; rc == 0 && r < NROWS; r++) {
        const char *vals [NCOLS];
        for (size_t i = 0; i < NCOLS; i++) {
            vals [i] = s_input (r, i);
            if (vals [i] && streq (vals [i], "@LONG"))
                vals [i] = longtext;
        }
        res = PQexecParams (conn, "INSERT INTO dbt_fixture VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
                            NCOLS, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_COMMAND_OK) {
            dbt_err_set (err, "pg fixture: %s", PQresultErrorMessage (res));
            rc = -1;
        }
        PQclear (res);
    }
    PQfinish (conn);
    return rc;
}

//  --------------------------------------------------------------------------
//  Reading whole (small) results

typedef struct {
    dbt_column_t *cols;         //  columns (owned copies)
    size_t ncols;               //  number of columns
    size_t nrows;               //  number of rows
    char **cells;               //  nrows * ncols cells, NULL for NULL (owned)
    size_t *lens;               //  cell lengths
} s_table_t;

static void
s_table_free (s_table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free (t->cells [i]);
    free (t->cells);
    free (t->lens);
    dbt_columns_free (&t->cols, t->ncols);
    memset (t, 0, sizeof (*t));
}

//  Copy a column list. Caller frees with dbt_columns_free.
static dbt_column_t *
s_columns_copy (const dbt_column_t *cols, size_t ncols)
{
    dbt_column_t *copy = (dbt_column_t *) dbt_malloc ((ncols ? ncols : 1) * sizeof (dbt_column_t));
    for (size_t i = 0; i < ncols; i++) {
        copy [i] = cols [i];
        copy [i].name = dbt_strdup (cols [i].name);
        copy [i].source_type = dbt_strdup (cols [i].source_type);
    }
    return copy;
}

//  Run sql and read every row into t. Returns the driver's code.
static int
s_read_all (dbt_conn_t *conn, const char *sql, const char *const *argv, size_t argc,
            s_table_t *t, char *err)
{
    memset (t, 0, sizeof (*t));
    dbt_args_t args = { argc, argv };
    int rc = dbt_conn_query (conn, sql, &args, NULL, err);
    if (rc)
        return rc;
    const dbt_column_t *cols;
    dbt_conn_columns (conn, &cols, &t->ncols);
    t->cols = s_columns_copy (cols, t->ncols);
    dbt_row_t row;
    size_t cap = 0;
    while ((rc = dbt_conn_fetch (conn, &row, err)) == 1) {
        if (t->nrows == cap) {
            cap = cap ? cap * 2 : 8;
            t->cells = (char **) dbt_realloc (t->cells, cap * t->ncols * sizeof (char *));
            t->lens = (size_t *) dbt_realloc (t->lens, cap * t->ncols * sizeof (size_t));
        }
        for (size_t i = 0; i < t->ncols; i++) {
            size_t at = t->nrows * t->ncols + i;
            t->cells [at] = row.vals [i] ? dbt_strndup (row.vals [i], row.lens [i]) : NULL;
            t->lens [at] = row.vals [i] ? row.lens [i] : 0;
        }
        t->nrows++;
    }
    dbt_conn_query_end (conn);
    return rc;
}

//  Strip a decimal's trailing fraction zeros (and a bare point).
static size_t
s_decimal_norm (const char *val, size_t len)
{
    if (!memchr (val, '.', len))
        return len;
    while (len > 0 && val [len - 1] == '0')
        len--;
    if (len > 0 && val [len - 1] == '.')
        len--;
    return len;
}

//  Compare a cell with its expected canonical text, by type.
static bool
s_same (dbt_coltype_t type, const char *got, size_t glen, const char *want, size_t wlen)
{
    if (!got || !want)
        return !got && !want;
    if (type == DBT_COL_DOUBLE) {
        char a [64], b [64];
        if (glen >= sizeof (a) || wlen >= sizeof (b))
            return false;
        memcpy (a, got, glen);
        a [glen] = 0;
        memcpy (b, want, wlen);
        b [wlen] = 0;
        double x = strtod (a, NULL), y = strtod (b, NULL);
        return x == y || (isnan (x) && isnan (y));
    }
    if (type == DBT_COL_DECIMAL) {
        glen = s_decimal_norm (got, glen);
        wlen = s_decimal_norm (want, wlen);
    }
    return glen == wlen && memcmp (got, want, glen) == 0;
}

//  Compare a read table with the expected rows. Returns the mismatches.
static int
s_compare (const s_table_t *t, const char *longtext, const char *what)
{
    int bad = 0;
    if (t->nrows != NROWS || t->ncols != NCOLS) {
        s_diag ("%s: got %zu rows x %zu columns, want %d x %d", what, t->nrows, t->ncols,
                NROWS, NCOLS);
        return 1;
    }
    for (size_t r = 0; r < NROWS; r++)
        for (size_t i = 0; i < NCOLS; i++) {
            const char *want = s_want [r][i];
            if (want && streq (want, "@LONG"))
                want = longtext;
            size_t at = r * NCOLS + i;
            if (!s_same (s_fcols [i].type, t->cells [at], t->lens [at], want,
                         want ? strlen (want) : 0)) {
                s_diag ("%s: row %zu column %s: got '%.60s'%s, want '%.60s'", what, r + 1,
                        s_fcols [i].name, t->cells [at] ? t->cells [at] : "NULL",
                        t->lens [at] > 60 ? "..." : "", want ? want : "NULL");
                bad++;
            }
        }
    return bad;
}

//  Check a table's column names and types against the fixture's.
static bool
s_types_ok (const s_table_t *t, const char *what)
{
    bool ok = t->ncols == NCOLS;
    for (size_t i = 0; ok && i < NCOLS; i++) {
        const dbt_column_t *c = &t->cols [i];
        if (!streq (c->name, s_fcols [i].name) || c->type != s_fcols [i].type) {
            s_diag ("%s: column %zu is %s %s (%s), want %s %s", what, i + 1, c->name,
                    dbt_coltype_name (c->type), c->source_type ? c->source_type : "",
                    s_fcols [i].name, dbt_coltype_name (s_fcols [i].type));
            ok = false;
        }
    }
    if (ok && (t->cols [2].precision != 24 || t->cols [2].scale != 6)) {
        s_diag ("%s: dec is DECIMAL(%d,%d), want (24,6)", what, t->cols [2].precision,
                t->cols [2].scale);
        ok = false;
    }
    return ok;
}

//  --------------------------------------------------------------------------
//  Writing

//  Write rows of t (or n generated rows when t is NULL) into final through
//  a staging table. Returns the driver's code.
static int
s_write_table (dbt_conn_t *res, const char *stage, const char *final, const s_table_t *t,
               const dbt_table_opts_t *opts, char *err)
{
    dbt_column_t *cols = s_columns_copy (t->cols, t->ncols);
    dbt_columns_dedupe (cols, t->ncols);
    int rc = dbt_conn_write_begin (res, stage, cols, t->ncols, opts, err);
    dbt_columns_free (&cols, t->ncols);
    for (size_t r = 0; rc == 0 && r < t->nrows; r++) {
        dbt_row_t row = {
            t->ncols, (const char **) t->cells + r * t->ncols, t->lens + r * t->ncols
        };
        rc = dbt_conn_write_row (res, &row, err);
    }
    if (rc == 0)
        rc = dbt_conn_write_commit (res, stage, final, err);
    else
        dbt_conn_write_abort (res, stage);
    return rc;
}

//  --------------------------------------------------------------------------
//  Cancel from another thread

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

//  Run sql to its end; returns the first error (or 0) and the time taken.
static int
s_run_timed (dbt_conn_t *conn, const char *sql, const dbt_query_opts_t *opts,
             int64_t *ms, int64_t *rows, char *err)
{
    int64_t start = dbt_clock_ms ();
    *rows = 0;
    int rc = dbt_conn_query (conn, sql, NULL, opts, err);
    dbt_row_t row;
    while (rc == 0 && (rc = dbt_conn_fetch (conn, &row, err)) == 1) {
        (*rows)++;
        rc = 0;
    }
    dbt_conn_query_end (conn);
    *ms = dbt_clock_ms () - start;
    return rc;
}

//  AddressSanitizer keeps freed memory in quarantine (256 MB by default):
//  under it, peak RSS says nothing about streaming.
#if defined (__SANITIZE_ADDRESS__)
#   define S_RSS_CHECKED false
#else
#   define S_RSS_CHECKED true
#endif

//  Report a memory check; skipped where RSS means nothing.
static bool
s_ok_rss (bool cond, long growth_mb, const char *desc)
{
    if (!S_RSS_CHECKED) {
        s_tests++;
        printf ("ok %d - %s # SKIP peak RSS is meaningless under AddressSanitizer\n",
                s_tests, desc);
        fflush (stdout);
        return true;
    }
    return s_ok (cond && growth_mb < 50, desc);
}

//  Peak resident set size in MB.
static long
s_maxrss_mb (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024;
}

//  --------------------------------------------------------------------------

int
main (int argc, char **argv)
{
    if (argc < 5 || (argc == 6 && !streq (argv [5], "--verbose")) || argc > 6) {
        fprintf (stderr, "usage: dbt_drivertest SOURCE_TYPE SOURCE_DSN RESULTS_TYPE "
                 "RESULTS_DSN [--verbose]\n");
        return 2;
    }
    s_verbose = argc == 6;
    if (s_verbose)
        dbt_log_set_level (DBT_LOG_DEBUG);
    alarm (600);                //  a hung check must not hang the suite
    const dbt_driver_t *sdrv = dbt_driver_find (argv [1]);
    const dbt_driver_t *rdrv = dbt_driver_find (argv [3]);
    if (!sdrv || !rdrv) {
        fprintf (stderr, "dbt_drivertest: unknown type (known: %s)\n", dbt_driver_names ());
        return 2;
    }
    bool src_pg = sdrv == &dbt_driver_pg;
    bool res_pg = rdrv == &dbt_driver_pg;
    const char *param1 = src_pg ? "$1" : "?1";
    const char *param2 = src_pg ? "$2" : "?2";
    char err [DBT_ERRMSG_LEN];
    char *longtext = s_long_text ();
    printf ("# %s -> %s\n", sdrv->name, rdrv->name);

    //  Fixture and connections
    int rc = src_pg ? s_fixture_pg (argv [2], longtext, err)
                    : s_fixture_sqlite (argv [2], longtext, err);
    if (!s_ok (rc == 0, "fixture table created on the source"))
        s_diag ("%s", err);
    dbt_dbconf_t sconf = { .name = "src", .type = argv [1], .dsn = argv [2],
                           .connect_timeout_ms = 5000 };
    dbt_dbconf_t rconf = { .name = "res", .type = argv [3], .dsn = argv [4],
                           .connect_timeout_ms = 5000, .results = true };
    dbt_conn_t *src = dbt_conn_new (&sconf, err);
    if (!s_ok (src != NULL, "source connects"))
        s_diag ("%s", err);
    dbt_conn_t *res = dbt_conn_new (&rconf, err);
    if (!s_ok (res != NULL, "results connects"))
        s_diag ("%s", err);
    if (!src || !res) {
        printf ("1..%d\n", s_tests);
        return 1;
    }
    //  Clean leftovers of an earlier run
    const char *tables [] = { "dbt_t_final", "dbt_t_stage1", "dbt_t_stage2", "dbt_t_stage3",
                              "dbt_t_names", "dbt_t_empty", "dbt_t_nul", "dbt_t_stream" };
    for (size_t i = 0; i < sizeof (tables) / sizeof (tables [0]); i++)
        dbt_conn_drop_table (res, tables [i], err);

    //  Prepare and arg counts
    char *sql = dbt_printf ("SELECT * FROM dbt_fixture WHERE id >= %s AND id <= %s ORDER BY id",
                            param1, param2);
    int nparams = -1;
    rc = dbt_conn_prepare (src, sql, &nparams, err);
    if (!s_ok (rc == 0 && nparams == 2, "prepare reports 2 parameters"))
        s_diag ("rc %d nparams %d: %s", rc, nparams, err);
    const char *one_arg [] = { "1" };
    dbt_args_t args1 = { 1, one_arg };
    rc = dbt_conn_query (src, sql, &args1, NULL, err);
    if (!s_ok (rc == DBT_EINVAL && streq (err, "task expects 2 args, got 1"),
               "too few args: a clear error"))
        s_diag ("rc %d: %s", rc, err);
    const char *three_args [] = { "1", "2", "3" };
    dbt_args_t args3 = { 3, three_args };
    rc = dbt_conn_query (src, sql, &args3, NULL, err);
    if (!s_ok (rc == DBT_EINVAL && streq (err, "task expects 2 args, got 3"),
               "too many args: a clear error"))
        s_diag ("rc %d: %s", rc, err);
    dbt_conn_query_end (src);

    //  Read the fixture with bound args
    const char *range [] = { "1", "7" };
    s_table_t fixture;
    rc = s_read_all (src, sql, range, 2, &fixture, err);
    if (!s_ok (rc == 0, "fixture query with bound args runs"))
        s_diag ("%s", err);
    s_ok (s_types_ok (&fixture, "source"), "source column names and types");
    s_ok (s_compare (&fixture, longtext, "source") == 0, "source values are canonical");
    if (s_verbose)
        for (size_t i = 0; i < fixture.ncols; i++)
            s_diag ("source column %s: %s (%s)", fixture.cols [i].name,
                    dbt_coltype_name (fixture.cols [i].type), fixture.cols [i].source_type);

    //  A NULL arg binds SQL NULL
    char *nullsql = src_pg ? dbt_strdup ("SELECT $1::text IS NULL AS n, $2::text AS x")
                           : dbt_strdup ("SELECT ?1 IS NULL AS n, ?2 AS x");
    const char *null_args [] = { NULL, "x" };
    s_table_t nt;
    rc = s_read_all (src, nullsql, null_args, 2, &nt, err);
    bool null_ok = rc == 0 && nt.nrows == 1 && nt.cells [0] && nt.cells [1]
                && (streq (nt.cells [0], "t") || streq (nt.cells [0], "1"))
                && streq (nt.cells [1], "x");
    if (!s_ok (null_ok, "a NULL arg binds SQL NULL"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&nt);
    free (nullsql);

    //  Write through the results driver and read back through its source side
    rc = s_write_table (res, "dbt_t_stage1", "dbt_t_final", &fixture, NULL, err);
    if (!s_ok (rc == 0, "results written (create, rows, commit)"))
        s_diag ("%s", err);
    s_table_t back;
    rc = s_read_all (res, "SELECT * FROM dbt_t_final ORDER BY id", NULL, 0, &back, err);
    if (!s_ok (rc == 0, "results table reads back"))
        s_diag ("%s", err);
    s_ok (s_types_ok (&back, "read-back"), "read-back column names and types");
    s_ok (s_compare (&back, longtext, "read-back") == 0, "read-back values equal the source's");
    s_table_free (&back);
    s_table_t stage;
    rc = s_read_all (res, "SELECT * FROM dbt_t_stage1", NULL, 0, &stage, err);
    s_ok (rc < 0, "the staging table was renamed away");
    s_table_free (&stage);

    //  Atomic swap: a second write replaces the first; an abort keeps it
    s_table_t two;
    rc = s_read_all (src, "SELECT id, txt AS \"second\" FROM dbt_fixture WHERE id <= 2 ORDER BY id",
                     NULL, 0, &two, err);
    rc = rc ? rc : s_write_table (res, "dbt_t_stage2", "dbt_t_final", &two, NULL, err);
    s_ok (rc == 0, "second write of the same final table commits");
    rc = s_read_all (res, "SELECT * FROM dbt_t_final ORDER BY id", NULL, 0, &back, err);
    if (!s_ok (rc == 0 && back.nrows == 2 && back.ncols == 2 && streq (back.cols [1].name, "second"),
               "the second write replaced the first"))
        s_diag ("rc %d rows %zu cols %zu: %s", rc, back.nrows, back.ncols, err);
    s_table_free (&back);
    rc = dbt_conn_write_begin (res, "dbt_t_stage3", fixture.cols, fixture.ncols, NULL, err);
    for (size_t r = 0; rc == 0 && r < 2; r++) {
        dbt_row_t row = { NCOLS, (const char **) fixture.cells + r * NCOLS, fixture.lens + r * NCOLS };
        rc = dbt_conn_write_row (res, &row, err);
    }
    s_ok (rc == 0, "third write started");
    dbt_conn_write_abort (res, "dbt_t_stage3");
    rc = s_read_all (res, "SELECT * FROM dbt_t_final ORDER BY id", NULL, 0, &back, err);
    s_ok (rc == 0 && back.nrows == 2 && back.ncols == 2, "abort left the previous table untouched");
    s_table_free (&back);
    rc = s_read_all (res, "SELECT * FROM dbt_t_stage3", NULL, 0, &stage, err);
    s_ok (rc < 0, "abort left no staging table behind");
    s_table_free (&stage);
    s_table_free (&two);
    s_ok (!dbt_conn_broken (res), "results connection still healthy");

    //  Duplicate and awkward column names: deduped, quoted
    s_table_t names;
    rc = s_read_all (src, "SELECT 1 AS a, 2 AS \"A\", 3 AS \"we\"\"ird name\", 4 AS a", NULL, 0,
                     &names, err);
    rc = rc ? rc : s_write_table (res, "dbt_t_stage1", "dbt_t_names", &names, NULL, err);
    s_table_free (&names);
    rc = rc ? rc : s_read_all (res, "SELECT * FROM dbt_t_names", NULL, 0, &names, err);
    bool names_ok = rc == 0 && names.ncols == 4 && streq (names.cols [0].name, "a")
                 && streq (names.cols [1].name, "A_2") && streq (names.cols [2].name, "we\"ird name")
                 && streq (names.cols [3].name, "a_3") && names.nrows == 1
                 && streq (names.cells [3], "4");
    if (!s_ok (names_ok, "duplicate and quoted column names survive"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&names);

    //  An empty result still makes a table
    s_table_t empty;
    rc = s_read_all (src, "SELECT * FROM dbt_fixture WHERE id < 0", NULL, 0, &empty, err);
    rc = rc ? rc : s_write_table (res, "dbt_t_stage1", "dbt_t_empty", &empty, NULL, err);
    s_table_free (&empty);
    rc = rc ? rc : s_read_all (res, "SELECT * FROM dbt_t_empty", NULL, 0, &empty, err);
    if (!s_ok (rc == 0 && empty.nrows == 0 && empty.ncols == NCOLS, "an empty result makes an empty table"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&empty);

    //  A NUL byte in text: SQLite keeps it, PostgreSQL refuses it clearly
    dbt_column_t ncol [] = { { "v", DBT_COL_TEXT, 0, -1, NULL } };
    const char *nulval [] = { "a\0b" };
    size_t nullen [] = { 3 };
    dbt_row_t nulrow = { 1, nulval, nullen };
    rc = dbt_conn_write_begin (res, "dbt_t_stage1", ncol, 1, NULL, err);
    rc = rc ? rc : dbt_conn_write_row (res, &nulrow, err);
    rc = rc ? rc : dbt_conn_write_commit (res, "dbt_t_stage1", "dbt_t_nul", err);
    if (res_pg) {
        if (!s_ok (rc == DBT_EINVAL && strstr (err, "NUL byte") && strstr (err, "'v' row 1"),
                   "a NUL byte is refused with the column and row named"))
            s_diag ("rc %d: %s", rc, err);
        dbt_conn_write_abort (res, "dbt_t_stage1");
    }
    else {
        s_table_t nul;
        rc = rc ? rc : s_read_all (res, "SELECT v FROM dbt_t_nul", NULL, 0, &nul, err);
        if (!s_ok (rc == 0 && nul.nrows == 1 && nul.lens [0] == 3
                   && memcmp (nul.cells [0], "a\0b", 3) == 0, "a NUL byte round trips"))
            s_diag ("rc %d: %s", rc, err);
        s_table_free (&nul);
    }

    //  Names the database would truncate are refused
    char longname [80];
    memset (longname, 'x', sizeof (longname) - 1);
    longname [sizeof (longname) - 1] = 0;
    rc = dbt_conn_write_begin (res, longname, ncol, 1, NULL, err);
    if (rdrv->max_identifier < strlen (longname))
        s_ok (rc == DBT_EINVAL && strstr (err, "longer than"), "an over-long table name is refused");
    else {
        s_ok (rc == 0, "a long table name is accepted");
        dbt_conn_write_abort (res, longname);
    }

    //  UNLOGGED tables on PostgreSQL
    if (res_pg) {
        dbt_table_opts_t unlogged = { true };
        s_table_t tiny;
        rc = s_read_all (src, "SELECT id FROM dbt_fixture ORDER BY id", NULL, 0, &tiny, err);
        rc = rc ? rc : s_write_table (res, "dbt_t_stage1", "dbt_t_empty", &tiny, &unlogged, err);
        s_table_free (&tiny);
        rc = rc ? rc : s_read_all (res, "SELECT relpersistence FROM pg_class "
                                   "WHERE relname = 'dbt_t_empty'", NULL, 0, &tiny, err);
        s_ok (rc == 0 && tiny.nrows == 1 && streq (tiny.cells [0], "u"),
              "unlogged results table on request");
        s_table_free (&tiny);
    }

    //  Cancel from another thread, then a time limit
    const char *slow = src_pg ? "SELECT pg_sleep(30)"
        : "WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
          "WHERE x < 3000000000) SELECT count(*) FROM c";
    s_canceller_t canceller = { src, 300 };
    pthread_t thread;
    int64_t ms, rows;
    pthread_create (&thread, NULL, s_canceller, &canceller);
    rc = s_run_timed (src, slow, NULL, &ms, &rows, err);
    pthread_join (thread, NULL);
    if (!s_ok (rc == DBT_ECANCELED && ms < 2300, "cancel from another thread stops the query"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, ms, err);
    s_diag ("cancelled after %" PRId64 " ms: %s", ms, err);
    rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the connection works after a cancel");
    dbt_query_opts_t limit = { .timeout_ms = 300 };
    rc = s_run_timed (src, slow, &limit, &ms, &rows, err);
    if (!s_ok (rc == DBT_ETIMEDOUT && ms < 2300, "a time limit stops the query"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, ms, err);
    rc = s_run_timed (src, src_pg ? "SELECT pg_sleep(0.5)" : "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the next query runs without the limit");
    s_ok (!dbt_conn_broken (src), "source connection still healthy");

    //  An error in mid-stream comes back from fetch, never as a clean end
    const char *midsql = src_pg
        ? "SELECT 1/(g-150000) AS v FROM generate_series(1,200000) g"
        : "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000) "
          "SELECT CASE WHEN x = 150000 THEN abs((149999 - x) - 9223372036854775807) ELSE x END AS v "
          "FROM n";
    rc = s_run_timed (src, midsql, NULL, &ms, &rows, err);
    if (!s_ok (rc < 0 && rows > 0 && rows < 200000, "an error in mid-stream is an error"))
        s_diag ("rc %d after %" PRId64 " rows", rc, rows);
    s_diag ("mid-stream error after %" PRId64 " rows: %s", rows, err);
    rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the connection works after a mid-stream error");

    //  Abandoning a query half-way leaves the connection usable
    rc = dbt_conn_query (src, src_pg ? "SELECT g FROM generate_series(1,1000000) g"
        : "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000) "
          "SELECT x FROM n", NULL, NULL, err);
    dbt_row_t row;
    for (int i = 0; rc == 0 && i < 10; i++)
        rc = dbt_conn_fetch (src, &row, err) == 1 ? 0 : -1;
    int64_t start = dbt_clock_ms ();
    dbt_conn_query_end (src);
    ms = dbt_clock_ms () - start;
    rc = rc ? rc : s_run_timed (src, "SELECT 2", NULL, &ms, &rows, err);
    if (!s_ok (rc == 0 && rows == 1, "a query abandoned half-way ends quickly"))
        s_diag ("rc %d: %s", rc, err);

    //  Streaming: memory does not grow with the result
    if (src_pg) {
        long before = s_maxrss_mb ();
        rc = s_run_timed (src, "SELECT g, repeat('x', 200) AS pad FROM generate_series(1,2000000) g",
                          NULL, &ms, &rows, err);
        long after = s_maxrss_mb ();
        s_diag ("2,000,000 rows (~400 MB) read in %" PRId64 " ms; max RSS %ld MB before, %ld MB after",
                ms, before, after);
        s_ok (rc == 0 && rows == 2000000, "2M rows stream to the end");
        s_ok_rss (true, after - before, "2M rows stream in bounded memory");
    }
    //  ...and through the results writer
    {
        const char *gen = src_pg
            ? "SELECT g AS n, repeat('y', 100) AS pad FROM generate_series(1,300000) g"
            : "WITH RECURSIVE s (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300000) "
              "SELECT n, hex(zeroblob(50)) AS pad FROM s";
        long before = s_maxrss_mb ();
        start = dbt_clock_ms ();
        rc = dbt_conn_query (src, gen, NULL, NULL, err);
        const dbt_column_t *cols;
        size_t ncols = 0;
        if (rc == 0)
            dbt_conn_columns (src, &cols, &ncols);
        dbt_column_t *copy = rc == 0 ? s_columns_copy (cols, ncols) : NULL;
        rc = rc ? rc : dbt_conn_write_begin (res, "dbt_t_stage1", copy, ncols, NULL, err);
        rows = 0;
        while (rc == 0) {
            int got = dbt_conn_fetch (src, &row, err);
            if (got <= 0) {
                rc = got;
                break;
            }
            rc = dbt_conn_write_row (res, &row, err);
            rows++;
        }
        dbt_conn_query_end (src);
        rc = rc ? rc : dbt_conn_write_commit (res, "dbt_t_stage1", "dbt_t_stream", err);
        if (rc)
            dbt_conn_write_abort (res, "dbt_t_stage1");
        dbt_columns_free (&copy, ncols);
        long after = s_maxrss_mb ();
        s_diag ("300,000 rows piped to results in %" PRId64 " ms; max RSS %ld MB before, %ld MB after",
                dbt_clock_ms () - start, before, after);
        if (!s_ok (rc == 0 && rows == 300000, "300k rows pipe to results"))
            s_diag ("rc %d: %s", rc, err);
        s_ok_rss (true, after - before, "300k rows pipe to results in bounded memory");
        s_table_t count;
        rc = s_read_all (res, "SELECT count(*), sum(n) FROM dbt_t_stream", NULL, 0, &count, err);
        s_ok (rc == 0 && count.nrows == 1 && streq (count.cells [0], "300000")
              && streq (count.cells [1], "45000150000"), "all piped rows arrived");
        s_table_free (&count);
    }

    //  A backend killed under the connection: DBT_ECONN, marked broken
    if (src_pg) {
        s_table_t pid;
        rc = s_read_all (src, "SELECT pg_backend_pid()", NULL, 0, &pid, err);
        PGconn *killer = PQconnectdb (argv [2]);
        char *kill = dbt_printf ("SELECT pg_terminate_backend(%s)",
                                 rc == 0 && pid.nrows == 1 ? pid.cells [0] : "0");
        PGresult *killed = PQexec (killer, kill);
        bool terminated = PQresultStatus (killed) == PGRES_TUPLES_OK
                       && streq (PQgetvalue (killed, 0, 0), "t");
        PQclear (killed);
        PQfinish (killer);
        free (kill);
        s_table_free (&pid);
        usleep (100 * 1000);
        rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
        if (!s_ok (terminated && rc == DBT_ECONN && dbt_conn_broken (src),
                   "a lost connection is DBT_ECONN and marks it broken"))
            s_diag ("terminated %d rc %d: %s", terminated, rc, err);
    }

    //  Clean up
    for (size_t i = 0; i < sizeof (tables) / sizeof (tables [0]); i++)
        dbt_conn_drop_table (res, tables [i], err);
    s_table_free (&fixture);
    free (sql);
    free (longtext);
    dbt_conn_destroy (&src);
    dbt_conn_destroy (&res);
    printf ("1..%d\n", s_tests);
    if (s_failed)
        s_diag ("%d of %d checks failed", s_failed, s_tests);
    return s_failed ? 1 : 0;
}
