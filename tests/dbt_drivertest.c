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

    MariaDB cannot hold some fixture values (NaN, infinities, TIMESTAMP
    before 1970): a MariaDB source stores NULL there and expects NULL back,
    a MariaDB results database must refuse them clearly (checked) and gets
    them as NULL for the round trip; its TIMESTAMPTZ columns read back as
    TIMESTAMP (UTC). MariaDB sources also check their own types (unsigned,
    BIT, TIME, zero dates, TINYINT(1) beyond 0/1) over both protocols.
    =========================================================================
*/
#include "../src/dbt_classes.h"
#include <sqlite3.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <curl/curl.h>
#include <math.h>
#include <sys/resource.h>

//  Test-program state (this is a test driver, not a library class).
static int s_tests;             //  checks run
static int s_failed;            //  checks failed
static bool s_verbose;          //  --verbose
static bool s_src_my;           //  the source is MariaDB
static bool s_res_my;           //  the results database is MariaDB

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
    const char *my_type;        //  MariaDB column type
} s_fcol_t;

static const s_fcol_t s_fcols [NCOLS] = {
    { "id", DBT_COL_BIGINT, "bigint", "INTEGER", "BIGINT" },
    { "i64", DBT_COL_BIGINT, "bigint", "BIGINT", "BIGINT" },
    { "dec", DBT_COL_DECIMAL, "numeric(24,6)", "DECIMAL_TEXT(24,6)", "DECIMAL(24,6)" },
    { "f", DBT_COL_DOUBLE, "double precision", "DOUBLE", "DOUBLE" },
    { "b", DBT_COL_BOOLEAN, "boolean", "BOOLEAN", "BOOLEAN" },
    { "d", DBT_COL_DATE, "date", "DATE", "DATE" },
    { "ts", DBT_COL_TIMESTAMP, "timestamp", "TIMESTAMP", "DATETIME(6)" },
    { "tz", DBT_COL_TIMESTAMPTZ, "timestamptz", "TIMESTAMPTZ", "TIMESTAMP(6) NULL" },
    { "txt", DBT_COL_TEXT, "text", "TEXT", "LONGTEXT" }
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

//  True for the values MariaDB has no room for: NaN, infinities.
static bool
s_special (const char *val)
{
    return val && (streq (val, "NaN") || streq (val, "Infinity") || streq (val, "-Infinity")
                || streq (val, "infinity") || streq (val, "-infinity"));
}

//  True when cell (r, i) is not held by the databases under test: a
//  MariaDB source has no NaN, infinities or TIMESTAMP before 1970; a
//  MariaDB results table (readback) has no NaN or infinities.
static bool
s_unheld (size_t r, size_t i, bool readback)
{
    const char *want = s_want [r][i];
    if (s_src_my && (s_special (want)
                 || (i == 7 && want && strcmp (want, "1970-01-01 00:00:01") < 0)))
        return true;
    return readback && s_res_my && s_special (want);
}

//  The canonical type a fixture column reads back as: MariaDB results have
//  no zone-aware type, TIMESTAMPTZ comes back as TIMESTAMP (UTC).
static dbt_coltype_t
s_expected_type (size_t i, bool readback)
{
    if (readback && s_res_my && s_fcols [i].type == DBT_COL_TIMESTAMPTZ)
        return DBT_COL_TIMESTAMP;
    return s_fcols [i].type;
}

//  The expected text of cell (r, i), NULL for NULL (see s_unheld); a
//  TIMESTAMPTZ read back from MariaDB loses its "+00" (into buf, 64 bytes).
static const char *
s_expected (size_t r, size_t i, bool readback, const char *longtext, char *buf)
{
    const char *want = s_want [r][i];
    if (s_unheld (r, i, readback))
        return NULL;
    if (want && streq (want, "@LONG"))
        return longtext;
    if (want && s_expected_type (i, readback) != s_fcols [i].type) {
        snprintf (buf, 64, "%.*s", (int) strlen (want) - 3, want);
        return buf;
    }
    return want;
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

//  Connect to a mysql:// DSN with Connector/C itself (host, port, user,
//  password, database, and a query of just socket=PATH: enough for the
//  test servers). NULL with err set.
static MYSQL *
s_mysql_open (const char *dsn, char *err)
{
    CURLU *url = curl_url ();
    char *part [6] = { NULL };
    const CURLUPart parts [6] = {
        CURLUPART_HOST, CURLUPART_PORT, CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_PATH,
        CURLUPART_QUERY
    };
    if (curl_url_set (url, CURLUPART_URL, dsn, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK)
        for (size_t i = 0; i < 6; i++)
            curl_url_get (url, parts [i], &part [i], CURLU_URLDECODE);
    curl_url_cleanup (url);
    const char *socket = part [5] && strncmp (part [5], "socket=", 7) == 0 ? part [5] + 7 : NULL;
    MYSQL *mysql = mysql_init (NULL);
    mysql_optionsv (mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect (mysql, part [0], part [2], part [3],
                             part [4] && part [4][0] ? part [4] + 1 : NULL,
                             part [1] ? (unsigned) strtoul (part [1], NULL, 10) : 0,
                             socket, 0)) {
        dbt_err_set (err, "mysql: %s", mysql_error (mysql));
        mysql_close (mysql);
        mysql = NULL;
    }
    for (size_t i = 0; i < 6; i++)
        curl_free (part [i]);
    return mysql;
}

//  Run statements on a Connector/C connection; -1 with err on failure.
static int
s_mysql_exec (MYSQL *mysql, const char *sql, char *err)
{
    if (mysql_query (mysql, sql)) {
        dbt_err_set (err, "mysql fixture: %s", mysql_error (mysql));
        return -1;
    }
    mysql_free_result (mysql_store_result (mysql));
    return 0;
}

//  The fixture, plus dbt_fixture_u (BIGINT UNSIGNED), dbt_fixture_x (more
//  MariaDB types) and dbt_fixture_z (values the driver must refuse).
static int
s_fixture_mysql (const char *dsn, const char *longtext, char *err)
{
    err [0] = 0;
    MYSQL *mysql = s_mysql_open (dsn, err);
    if (!mysql)
        return -1;
    dbt_buf_t sql = { 0 };
    dbt_buf_puts (&sql, "CREATE TABLE dbt_fixture (");
    for (size_t i = 0; i < NCOLS; i++)
        dbt_buf_printf (&sql, "%s`%s` %s", i ? ", " : "", s_fcols [i].name, s_fcols [i].my_type);
    dbt_buf_puts (&sql, ") DEFAULT CHARSET=utf8mb4");
    const char *setup [] = {
        "DROP TABLE IF EXISTS dbt_fixture, dbt_fixture_u, dbt_fixture_x, dbt_fixture_z",
        sql.data,
        "CREATE TABLE dbt_fixture_u (id INT, u BIGINT UNSIGNED)",
        "INSERT INTO dbt_fixture_u VALUES (1, 18446744073709551615), (2, 0), "
        "(3, 9223372036854775808), (4, NULL)",
        "CREATE TABLE dbt_fixture_x (f FLOAT, bits BIT(10), t TIME(3), y YEAR, "
        "e ENUM('a','b'), j JSON, bin VARBINARY(8), ti TINYINT, tu INT UNSIGNED, "
        "dz DATETIME(6)) DEFAULT CHARSET=utf8mb4",
        "INSERT INTO dbt_fixture_x VALUES (0.1, b'101', '-838:59:59.5', 2024, 'b', "
        "'{\"a\": 1}', x'00ff10', -5, 4294967295, '2024-01-02 03:04:05.000001')",
        "DROP PROCEDURE IF EXISTS dbt_two_sets",
        "CREATE PROCEDURE dbt_two_sets() BEGIN SELECT 1 AS a; SELECT 2 AS b; END",
        "SET SESSION sql_mode = ''",
        "CREATE TABLE dbt_fixture_z (id INT, d DATE, b TINYINT(1))",
        "INSERT INTO dbt_fixture_z VALUES (1, '2024-01-01', 1), (2, '0000-00-00', 0), "
        "(3, '2024-01-02', 2)",
        NULL
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && setup [i]; i++)
        rc = s_mysql_exec (mysql, setup [i], err);
    dbt_buf_free (&sql);
    MYSQL_STMT *stmt = rc ? NULL : mysql_stmt_init (mysql);
    const char *insert = "INSERT INTO dbt_fixture VALUES (?,?,?,?,?,?,?,?,?)";
    if (stmt && mysql_stmt_prepare (stmt, insert, strlen (insert)))
        rc = -1;
    for (size_t r = 0; stmt && rc == 0 && r < NROWS; r++) {
        MYSQL_BIND binds [NCOLS];
        char tz [64] = "", zone [16] = "+00:00";
        memset (binds, 0, sizeof (binds));
        for (size_t i = 0; i < NCOLS; i++) {
            const char *val = s_unheld (r, i, false) ? NULL : s_input (r, i);
            if (val && streq (val, "@LONG"))
                val = longtext;
            if (val && s_fcols [i].type == DBT_COL_BOOLEAN)
                val = streq (val, "t") ? "1" : "0";
            //  A zone suffix becomes the session's zone for the row
            if (val && s_fcols [i].type == DBT_COL_TIMESTAMPTZ && strlen (val) > 19) {
                size_t at = strcspn (val + 19, "+-") + 19;
                snprintf (tz, sizeof (tz), "%.*s", (int) at, val);
                snprintf (zone, sizeof (zone), "%s%s", val + at,
                          strlen (val + at) == 3 ? ":00" : "");
                val = tz;
            }
            binds [i].buffer_type = val ? MYSQL_TYPE_STRING : MYSQL_TYPE_NULL;
            binds [i].buffer = (void *) val;
            binds [i].buffer_length = val ? strlen (val) : 0;
        }
        char *set = dbt_printf ("SET SESSION time_zone = '%s'", zone);
        rc = s_mysql_exec (mysql, set, err);
        free (set);
        if (rc == 0 && (mysql_stmt_bind_param (stmt, binds) || mysql_stmt_execute (stmt)))
            rc = -1;
    }
    if (stmt && rc && !*err)
        dbt_err_set (err, "mysql fixture: %s", mysql_stmt_error (stmt));
    if (stmt)
        mysql_stmt_close (stmt);
    mysql_close (mysql);
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

//  Run sql with opts (NULL: none) and read every row into t. Returns the
//  driver's code.
static int
s_read_opts (dbt_conn_t *conn, const char *sql, const char *const *argv, size_t argc,
             const dbt_query_opts_t *opts, s_table_t *t, char *err)
{
    memset (t, 0, sizeof (*t));
    dbt_args_t args = { argc, argv };
    int rc = dbt_conn_query (conn, sql, &args, opts, err);
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

//  Run sql with args and read every row into t. Returns the driver's code.
static int
s_read_all (dbt_conn_t *conn, const char *sql, const char *const *argv, size_t argc,
            s_table_t *t, char *err)
{
    return s_read_opts (conn, sql, argv, argc, NULL, t, err);
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

//  Compare a read table with the expected rows (readback: as read back
//  from the results database). Returns the mismatches.
static int
s_compare (const s_table_t *t, const char *longtext, const char *what, bool readback)
{
    int bad = 0;
    if (t->nrows != NROWS || t->ncols != NCOLS) {
        s_diag ("%s: got %zu rows x %zu columns, want %d x %d", what, t->nrows, t->ncols,
                NROWS, NCOLS);
        return 1;
    }
    for (size_t r = 0; r < NROWS; r++)
        for (size_t i = 0; i < NCOLS; i++) {
            char buf [64];
            const char *want = s_expected (r, i, readback, longtext, buf);
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
s_types_ok (const s_table_t *t, const char *what, bool readback)
{
    bool ok = t->ncols == NCOLS;
    for (size_t i = 0; ok && i < NCOLS; i++) {
        const dbt_column_t *c = &t->cols [i];
        dbt_coltype_t want = s_expected_type (i, readback);
        if (!streq (c->name, s_fcols [i].name) || c->type != want) {
            s_diag ("%s: column %zu is %s %s (%s), want %s %s", what, i + 1, c->name,
                    dbt_coltype_name (c->type), c->source_type ? c->source_type : "",
                    s_fcols [i].name, dbt_coltype_name (want));
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
//  SQL that differs by source database

typedef struct {
    const char *param1;         //  first parameter marker
    const char *param2;         //  second parameter marker
    const char *nullsql;        //  tests a NULL arg and a text arg
    const char *slow;           //  runs for 30 s or more
    const char *pause;          //  runs a little while (0.5 s where possible)
    const char *midsql;         //  streams rows, then fails before 200,000
    const char *million;        //  1,000,000 rows
    const char *big;            //  2,000,000 rows of ~200 bytes, NULL: skipped
    const char *gen;            //  300,000 rows: n (1..300000), pad (250 bytes)
    const char *whoami;         //  the session's backend id, NULL: no kill test
} s_source_sql_t;

static const s_source_sql_t s_sql_pg = {
    "$1", "$2", "SELECT $1::text IS NULL AS n, $2::text AS x",
    "SELECT pg_sleep(30)", "SELECT pg_sleep(0.5)",
    "SELECT 1/(g-150000) AS v FROM generate_series(1,200000) g",
    "SELECT g FROM generate_series(1,1000000) g",
    "SELECT g, repeat('x', 200) AS pad FROM generate_series(1,2000000) g",
    "SELECT g AS n, repeat('y', 250) AS pad FROM generate_series(1,300000) g",
    "SELECT pg_backend_pid()"
};

static const s_source_sql_t s_sql_sqlite = {
    "?1", "?2", "SELECT ?1 IS NULL AS n, ?2 AS x",
    "WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    "WHERE x < 3000000000) SELECT count(*) FROM c",
    "SELECT 1",
    "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000) "
    "SELECT CASE WHEN x = 150000 THEN abs((149999 - x) - 9223372036854775807) ELSE x END AS v "
    "FROM n",
    "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000) "
    "SELECT x FROM n",
    NULL,
    "WITH RECURSIVE s (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300000) "
    "SELECT n, hex(zeroblob(125)) AS pad FROM s",
    NULL
};

//  The mid-stream error: a scalar subquery that gives two rows from row
//  150,000 on, after MariaDB has sent the rows before it.
static const s_source_sql_t s_sql_mysql = {
    "?", "?", "SELECT ? IS NULL AS n, ? AS x",
    "SELECT SLEEP(30)", "SELECT SLEEP(0.5)",
    "SELECT s.seq AS v, (SELECT 1 UNION ALL SELECT 2 FROM DUAL WHERE s.seq >= 150000) AS x "
    "FROM seq_1_to_200000 s",
    "SELECT seq FROM seq_1_to_1000000",
    "SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_2000000",
    "SELECT seq AS n, REPEAT('y', 250) AS pad FROM seq_1_to_300000",
    "SELECT CONNECTION_ID()"
};

//  Kill the backend of session id from outside; true when it was killed.
static bool
s_kill_backend (bool pg, const char *dsn, const char *id)
{
    char err [DBT_ERRMSG_LEN];
    bool killed = false;
    if (pg) {
        PGconn *killer = PQconnectdb (dsn);
        char *kill = dbt_printf ("SELECT pg_terminate_backend(%s)", id);
        PGresult *res = PQexec (killer, kill);
        killed = PQresultStatus (res) == PGRES_TUPLES_OK && streq (PQgetvalue (res, 0, 0), "t");
        PQclear (res);
        PQfinish (killer);
        free (kill);
    }
    else {
        MYSQL *killer = s_mysql_open (dsn, err);
        char *kill = dbt_printf ("KILL %s", id);
        killed = killer && s_mysql_exec (killer, kill, err) == 0;
        if (killer)
            mysql_close (killer);
        free (kill);
    }
    return killed;
}

//  Count of the server's sessions with this id still running SLEEP.
static long
s_mysql_sleepers (const char *dsn, const char *id)
{
    char err [DBT_ERRMSG_LEN];
    MYSQL *mysql = s_mysql_open (dsn, err);
    if (!mysql)
        return -1;
    char *sql = dbt_printf ("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                            "WHERE ID = %s AND INFO LIKE 'SELECT SLEEP%%'", id);
    long count = -1;
    if (mysql_query (mysql, sql) == 0) {
        MYSQL_RES *res = mysql_store_result (mysql);
        MYSQL_ROW row = res ? mysql_fetch_row (res) : NULL;
        if (row && row [0])
            count = strtol (row [0], NULL, 10);
        mysql_free_result (res);
    }
    free (sql);
    mysql_close (mysql);
    return count;
}

//  Read sql with both protocols (prepared, then raw without args) into
//  the two tables. Returns the first error.
static int
s_read_both (dbt_conn_t *src, const char *sql, s_table_t *prepared, s_table_t *raw, char *err)
{
    memset (raw, 0, sizeof (*raw));
    int rc = s_read_all (src, sql, NULL, 0, prepared, err);
    dbt_query_opts_t opts = { .raw = true };
    return rc ? rc : s_read_opts (src, sql, NULL, 0, &opts, raw, err);
}

//  True when cell (r, i) of t is want (NULL for NULL), else a diagnostic.
static bool
s_cell_is (const s_table_t *t, size_t r, size_t i, const char *want, size_t wlen,
           const char *what)
{
    if (r >= t->nrows || i >= t->ncols) {
        s_diag ("%s: no cell %zu,%zu", what, r + 1, i + 1);
        return false;
    }
    const char *got = t->cells [r * t->ncols + i];
    size_t glen = t->lens [r * t->ncols + i];
    if (!want ? !got : got && glen == wlen && memcmp (got, want, wlen) == 0)
        return true;
    s_diag ("%s: column %s row %zu is '%.*s', want '%.*s'", what, t->cols [i].name, r + 1,
            got ? (int) glen : 4, got ? got : "NULL",
            want ? (int) wlen : 4, want ? want : "NULL");
    return false;
}

//  MariaDB source types beyond the fixture, over both protocols; unsigned
//  values through the results database too.
static void
s_check_mysql_types (dbt_conn_t *src, dbt_conn_t *res, const dbt_driver_t *rdrv)
{
    char err [DBT_ERRMSG_LEN];
    s_table_t bin = { 0 }, raw = { 0 }, back = { 0 };
    //  BIGINT UNSIGNED
    const char *u [] = { "18446744073709551615", "0", "9223372036854775808", NULL };
    int rc = s_read_both (src, "SELECT id, u FROM dbt_fixture_u ORDER BY id", &bin, &raw, err);
    bool ok = rc == 0 && bin.ncols == 2 && bin.cols [1].type == DBT_COL_UBIGINT
           && raw.ncols == 2 && raw.cols [1].type == DBT_COL_UBIGINT;
    for (size_t r = 0; ok && r < 4; r++)
        ok = s_cell_is (&bin, r, 1, u [r], u [r] ? strlen (u [r]) : 0, "unsigned")
          && s_cell_is (&raw, r, 1, u [r], u [r] ? strlen (u [r]) : 0, "unsigned raw");
    if (!s_ok (ok, "BIGINT UNSIGNED reads as UBIGINT up to 18446744073709551615"))
        s_diag ("rc %d: %s", rc, err);
    rc = rc ? rc : s_write_table (res, "dbt_t_stage1", "dbt_t_unsigned", &bin, NULL, err);
    rc = rc ? rc : s_read_all (res, "SELECT id, u FROM dbt_t_unsigned ORDER BY id", NULL, 0,
                               &back, err);
    ok = rc == 0 && back.ncols == 2;
    for (size_t r = 0; ok && r < 4; r++)
        ok = s_cell_is (&back, r, 1, u [r], u [r] ? strlen (u [r]) : 0, "unsigned read-back");
    if (!s_ok (ok, "unsigned values read back exactly from the results"))
        s_diag ("rc %d: %s", rc, err);
    if (ok && rdrv == &dbt_driver_mariadb)
        s_ok (back.cols [1].type == DBT_COL_UBIGINT, "UBIGINT reads back as UBIGINT");
    s_table_free (&bin);
    s_table_free (&raw);
    s_table_free (&back);

    //  More types, both protocols alike
    static const struct {
        const char *name;
        dbt_coltype_t type;
        const char *value;
        size_t len;
    } x [] = {
        { "f", DBT_COL_DOUBLE, "0.1", 3 },
        { "bits", DBT_COL_TEXT, "5", 1 },
        { "t", DBT_COL_TEXT, "-838:59:59.500", 14 },
        { "y", DBT_COL_TEXT, "2024", 4 },
        { "e", DBT_COL_TEXT, "b", 1 },
        { "j", DBT_COL_TEXT, "{\"a\": 1}", 8 },
        { "bin", DBT_COL_TEXT, "\0\xff\x10", 3 },
        { "ti", DBT_COL_BIGINT, "-5", 2 },
        { "tu", DBT_COL_BIGINT, "4294967295", 10 },
        { "dz", DBT_COL_TIMESTAMP, "2024-01-02 03:04:05.000001", 26 }
    };
    rc = s_read_both (src, "SELECT * FROM dbt_fixture_x", &bin, &raw, err);
    ok = rc == 0 && bin.ncols == 10 && raw.ncols == 10 && bin.nrows == 1 && raw.nrows == 1;
    for (size_t i = 0; ok && i < 10; i++) {
        ok = s_cell_is (&bin, 0, i, x [i].value, x [i].len, "prepared")
           & s_cell_is (&raw, 0, i, x [i].value, x [i].len, "raw");
        if (bin.cols [i].type != x [i].type || raw.cols [i].type != x [i].type) {
            s_diag ("column %s is %s (%s), want %s", x [i].name,
                    dbt_coltype_name (bin.cols [i].type), bin.cols [i].source_type,
                    dbt_coltype_name (x [i].type));
            ok = false;
        }
    }
    if (!s_ok (ok, "FLOAT BIT TIME YEAR ENUM JSON VARBINARY TINYINT INT UNSIGNED DATETIME "
               "read alike over both protocols"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&bin);
    s_table_free (&raw);

    //  Zero dates and TINYINT(1) beyond 0/1 fail, naming column and row
    rc = s_read_all (src, "SELECT id, d FROM dbt_fixture_z ORDER BY id", NULL, 0, &bin, err);
    if (!s_ok (rc == DBT_ERROR && bin.nrows == 1 && strstr (err, "column 'd' row 2")
               && strstr (err, "0000-00-00"),
               "a zero date fails the query naming column and row"))
        s_diag ("rc %d: %s", rc, err);
    s_diag ("zero date: %s", err);
    s_table_free (&bin);
    dbt_query_opts_t opts = { .raw = true };
    int64_t ms, rows;
    rc = s_run_timed (src, "SELECT id, d FROM dbt_fixture_z ORDER BY id", &opts, &ms, &rows, err);
    if (!s_ok (rc == DBT_ERROR && rows == 1 && strstr (err, "column 'd' row 2"),
               "a zero date fails the raw query naming column and row"))
        s_diag ("rc %d rows %" PRId64 ": %s", rc, rows, err);
    //  After a failed fetch the query gives no more rows
    dbt_row_t row;
    rc = dbt_conn_query (src, "SELECT id, d FROM dbt_fixture_z ORDER BY id", NULL, NULL, err);
    int got [3] = { rc, rc, rc };
    for (int i = 0; rc == 0 && i < 3; i++)
        got [i] = dbt_conn_fetch (src, &row, err);
    dbt_conn_query_end (src);
    if (!s_ok (got [0] == 1 && got [1] == DBT_ERROR && got [2] == DBT_EINVAL,
               "a fetch after a failed fetch is an error, not the next row"))
        s_diag ("fetches gave %d %d %d: %s", got [0], got [1], got [2], err);
    for (int raw_protocol = 0; raw_protocol < 2; raw_protocol++) {
        rc = s_run_timed (src, "SELECT id, b FROM dbt_fixture_z ORDER BY id",
                          raw_protocol ? &opts : NULL, &ms, &rows, err);
        if (!s_ok (rc == DBT_ERROR && rows == 2 && strstr (err, "column 'b' row 3")
                   && strstr (err, "value 2 is not a boolean"),
                   raw_protocol ? "TINYINT(1) value 2 fails the raw query"
                                : "TINYINT(1) value 2 fails the prepared query"))
            s_diag ("rc %d rows %" PRId64 ": %s", rc, rows, err);
    }
    rc = s_run_timed (src, "SELECT 1; SELECT 2", &opts, &ms, &rows, err);
    if (!s_ok (rc < 0, "two statements in one task are refused"))
        s_diag ("rc %d", rc);
    for (int raw_protocol = 0; raw_protocol < 2; raw_protocol++) {
        rc = s_run_timed (src, "CALL dbt_two_sets()", raw_protocol ? &opts : NULL, &ms, &rows,
                          err);
        if (!s_ok (rc == DBT_EINVAL && strstr (err, "more than one result set"),
                   raw_protocol ? "a second result set is refused (raw)"
                                : "a second result set is refused (prepared)"))
            s_diag ("rc %d: %s", rc, err);
    }
}

//  Write rows of one-column-per-cell into final; returns the driver's code.
static int
s_write_cells (dbt_conn_t *res, const dbt_column_t *cols, size_t ncols, const char **cells,
               const size_t *lens, size_t nrows, const char *final, char *err)
{
    int rc = dbt_conn_write_begin (res, "dbt_t_stage1", cols, ncols, NULL, err);
    for (size_t r = 0; rc == 0 && r < nrows; r++) {
        dbt_row_t row = { ncols, cells + r * ncols, lens + r * ncols };
        rc = dbt_conn_write_row (res, &row, err);
    }
    if (rc == 0)
        rc = dbt_conn_write_commit (res, "dbt_t_stage1", final, err);
    else
        dbt_conn_write_abort (res, "dbt_t_stage1");
    return rc;
}

//  Text a bulk format could misread round trips exactly (the NUL byte
//  only where the database keeps it).
static void
s_check_text_cells (dbt_conn_t *res, bool nul_ok)
{
    char err [DBT_ERRMSG_LEN];
    static const char *const texts [] = {
        "NULL", "\\N", "", "\t", "\\", "\\0", "a\nb\r\nc", "\xf0\x9f\xaa\xb2", "\"'`", "a\0b"
    };
    size_t n = sizeof (texts) / sizeof (texts [0]) - (nul_ok ? 0 : 1);
    dbt_column_t cols [] = {
        { "i", DBT_COL_BIGINT, 0, -1, NULL }, { "v", DBT_COL_TEXT, 0, -1, NULL }
    };
    const char *cells [2 * 10];
    size_t lens [2 * 10];
    char ids [10][4];
    for (size_t r = 0; r < n; r++) {
        snprintf (ids [r], sizeof (ids [r]), "%zu", r);
        cells [2 * r] = ids [r];
        lens [2 * r] = strlen (ids [r]);
        cells [2 * r + 1] = texts [r];
        //  "a\0b" is the one text with a NUL: strlen stops at it
        lens [2 * r + 1] = streq (texts [r], "a") ? 3 : strlen (texts [r]);
    }
    int rc = s_write_cells (res, cols, 2, cells, lens, n, "dbt_t_texts", err);
    s_table_t back = { 0 };
    rc = rc ? rc : s_read_all (res, "SELECT i, v FROM dbt_t_texts ORDER BY i", NULL, 0,
                               &back, err);
    bool ok = rc == 0 && back.nrows == n;
    for (size_t r = 0; ok && r < n; r++)
        ok = s_cell_is (&back, r, 1, texts [r], lens [2 * r + 1], "texts");
    if (!s_ok (ok, "text with NULL, \\N, escapes, emoji round trips exactly"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&back);
}

//  What a MariaDB results table cannot hold is refused clearly; what it
//  holds only as text (huge DECIMALs) comes back exactly.
static void
s_check_mysql_results (dbt_conn_t *res)
{
    char err [DBT_ERRMSG_LEN];
    static const struct {
        dbt_column_t col;
        const char *value;
        int rc;
        const char *says;
    } bad [] = {
        { { "f", DBT_COL_DOUBLE, 0, -1, NULL }, "NaN", DBT_EINVAL, "column 'f' row 2: 'NaN'" },
        { { "f", DBT_COL_DOUBLE, 0, -1, NULL }, "-Infinity", DBT_EINVAL, "MariaDB DOUBLE" },
        { { "n", DBT_COL_DECIMAL, 12, 2, NULL }, "Infinity", DBT_EINVAL, "MariaDB DECIMAL" },
        { { "d", DBT_COL_DATE, 0, -1, NULL }, "infinity", DBT_EINVAL, "column 'd' row 2" },
        { { "b", DBT_COL_BOOLEAN, 0, -1, NULL }, "maybe", DBT_EINVAL, "not a valid BOOLEAN" },
        { { "i", DBT_COL_BIGINT, 0, -1, NULL }, "99999999999999999999", DBT_ERROR,
          "Out of range value for column 'i' at row 2" },
        { { "n", DBT_COL_DECIMAL, 12, 2, NULL }, "1.005", DBT_ERROR, "for column 'n' at row 2" },
        { { "t", DBT_COL_TEXT, 0, -1, NULL }, "\xff\xfe", DBT_ERROR,
          "Incorrect string value" },
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        const char *cells [2] = { "1", bad [i].value };
        const char *okval = bad [i].col.type == DBT_COL_BOOLEAN ? "t"
                          : bad [i].col.type == DBT_COL_DATE ? "2024-01-01" : "1";
        cells [0] = okval;
        size_t lens [2] = { strlen (okval), strlen (bad [i].value) };
        int rc = s_write_cells (res, &bad [i].col, 1, cells, lens, 2, "dbt_t_bad", err);
        char desc [128];
        snprintf (desc, sizeof (desc), "%s '%s' is refused with the column and row named",
                  dbt_coltype_name (bad [i].col.type), bad [i].col.type == DBT_COL_TEXT
                  ? "invalid UTF-8" : bad [i].value);
        if (!s_ok (rc == bad [i].rc && strstr (err, bad [i].says), desc))
            s_diag ("rc %d: %s", rc, err);
    }
    s_table_t left;
    int rc = s_read_all (res, "SELECT * FROM dbt_t_bad", NULL, 0, &left, err);
    s_ok (rc < 0, "refused writes leave no table behind");
    s_table_free (&left);

    //  DECIMALs beyond DECIMAL(65,38) go to a text column, digits unchanged
    dbt_column_t dec [] = {
        { "n", DBT_COL_DECIMAL, 0, -1, NULL }, { "w", DBT_COL_DECIMAL, 65, 38, NULL }
    };
    const char *cells [] = {
        "123456789012345678901234567890123456789012345678901234567890.1234567890123456789"
        "0123456789012345678901234567890",
        "-123456789012345678901234567.12345678901234567890123456789012345678",
        "NaN", NULL, "1.50", "0.00000000000000000000000000000000000001"
    };
    size_t lens [6];
    for (size_t i = 0; i < 6; i++)
        lens [i] = cells [i] ? strlen (cells [i]) : 0;
    rc = s_write_cells (res, dec, 2, cells, lens, 3, "dbt_t_dec", err);
    s_table_t back = { 0 };
    rc = rc ? rc : s_read_all (res, "SELECT * FROM dbt_t_dec", NULL, 0, &back, err);
    bool ok = rc == 0 && back.nrows == 3 && back.cols [0].type == DBT_COL_TEXT
           && back.cols [1].type == DBT_COL_DECIMAL && back.cols [1].precision == 65
           && back.cols [1].scale == 38;
    for (size_t r = 0; ok && r < 3; r++)
        ok = s_cell_is (&back, r, 0, cells [2 * r], lens [2 * r], "decimal as text");
    ok = ok && s_same (DBT_COL_DECIMAL, back.cells [1], back.lens [1], cells [1], lens [1])
            && s_same (DBT_COL_DECIMAL, back.cells [5], back.lens [5], cells [5], lens [5]);
    if (!s_ok (ok, "unconstrained DECIMAL keeps every digit (as text); DECIMAL(65,38) exact"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&back);
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
    s_src_my = sdrv == &dbt_driver_mariadb;
    s_res_my = rdrv == &dbt_driver_mariadb;
    const s_source_sql_t *ssql = src_pg ? &s_sql_pg : s_src_my ? &s_sql_mysql : &s_sql_sqlite;
    char err [DBT_ERRMSG_LEN];
    char *longtext = s_long_text ();
    printf ("# %s -> %s\n", sdrv->name, rdrv->name);

    //  Fixture and connections
    int rc = src_pg ? s_fixture_pg (argv [2], longtext, err)
           : s_src_my ? s_fixture_mysql (argv [2], longtext, err)
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
                              "dbt_t_names", "dbt_t_empty", "dbt_t_nul", "dbt_t_stream",
                              "dbt_t_unsigned", "dbt_t_texts", "dbt_t_bad", "dbt_t_dec" };
    for (size_t i = 0; i < sizeof (tables) / sizeof (tables [0]); i++)
        dbt_conn_drop_table (res, tables [i], err);

    //  Prepare and arg counts
    char *sql = dbt_printf ("SELECT * FROM dbt_fixture WHERE id >= %s AND id <= %s ORDER BY id",
                            ssql->param1, ssql->param2);
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
    s_ok (s_types_ok (&fixture, "source", false), "source column names and types");
    s_ok (s_compare (&fixture, longtext, "source", false) == 0, "source values are canonical");
    if (s_verbose)
        for (size_t i = 0; i < fixture.ncols; i++)
            s_diag ("source column %s: %s (%s)", fixture.cols [i].name,
                    dbt_coltype_name (fixture.cols [i].type), fixture.cols [i].source_type);

    //  A raw task without args reads the same
    s_table_t rawfix, prepfix;
    rc = s_read_both (src, "SELECT * FROM dbt_fixture ORDER BY id", &prepfix, &rawfix, err);
    if (!s_ok (rc == 0 && s_types_ok (&rawfix, "raw", false)
               && s_compare (&rawfix, longtext, "raw", false) == 0,
               "a raw task without args reads the same types and values"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&rawfix);
    s_table_free (&prepfix);

    //  A NULL arg binds SQL NULL
    const char *null_args [] = { NULL, "x" };
    s_table_t nt;
    rc = s_read_all (src, ssql->nullsql, null_args, 2, &nt, err);
    bool null_ok = rc == 0 && nt.nrows == 1 && nt.cells [0] && nt.cells [1]
                && (streq (nt.cells [0], "t") || streq (nt.cells [0], "1"))
                && streq (nt.cells [1], "x");
    if (!s_ok (null_ok, "a NULL arg binds SQL NULL"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&nt);
    if (s_src_my)
        s_check_mysql_types (src, res, rdrv);

    //  MariaDB results refuse NaN and infinities, naming column and row;
    //  the round trip below writes them as NULL
    if (s_res_my && !s_src_my) {
        rc = s_write_table (res, "dbt_t_stage1", "dbt_t_final", &fixture, NULL, err);
        if (!s_ok (rc == DBT_EINVAL && strstr (err, "column 'dec' row 6: 'NaN'"),
                   "NaN and infinities are refused with the column and row named"))
            s_diag ("rc %d: %s", rc, err);
        for (size_t r = 0; r < fixture.nrows; r++)
            for (size_t i = 0; i < NCOLS; i++)
                if (s_unheld (r, i, true)) {
                    free (fixture.cells [r * NCOLS + i]);
                    fixture.cells [r * NCOLS + i] = NULL;
                }
    }

    //  Write through the results driver and read back through its source side
    rc = s_write_table (res, "dbt_t_stage1", "dbt_t_final", &fixture, NULL, err);
    if (!s_ok (rc == 0, "results written (create, rows, commit)"))
        s_diag ("%s", err);
    s_table_t back;
    rc = s_read_all (res, "SELECT * FROM dbt_t_final ORDER BY id", NULL, 0, &back, err);
    if (!s_ok (rc == 0, "results table reads back"))
        s_diag ("%s", err);
    s_ok (s_types_ok (&back, "read-back", true), "read-back column names and types");
    s_ok (s_compare (&back, longtext, "read-back", true) == 0,
          "read-back values equal the source's");
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

    s_check_text_cells (res, !res_pg);
    if (s_res_my)
        s_check_mysql_results (res);

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
    const char *slow = ssql->slow;
    s_table_t whoami = { 0 };
    if (ssql->whoami)
        s_read_all (src, ssql->whoami, NULL, 0, &whoami, err);
    const char *backend = whoami.nrows == 1 && whoami.cells [0] ? whoami.cells [0] : "0";
    s_canceller_t canceller = { src, 300 };
    pthread_t thread;
    int64_t ms, rows;
    pthread_create (&thread, NULL, s_canceller, &canceller);
    rc = s_run_timed (src, slow, NULL, &ms, &rows, err);
    pthread_join (thread, NULL);
    if (!s_ok (rc == DBT_ECANCELED && ms < 2300, "cancel from another thread stops the query"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, ms, err);
    s_diag ("cancelled after %" PRId64 " ms: %s", ms, err);
    if (s_src_my) {
        //  ...and it is gone from the server, not only from us
        long sleepers = -1;
        int64_t start = dbt_clock_ms ();
        while ((sleepers = s_mysql_sleepers (argv [2], backend)) != 0
           &&  dbt_clock_ms () - start < 2000)
            usleep (100 * 1000);
        if (!s_ok (sleepers == 0, "the cancelled query left the server's process list"))
            s_diag ("session %s: %ld sleeping queries after 2 s", backend, sleepers);
    }
    rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the connection works after a cancel");
    dbt_query_opts_t limit = { .timeout_ms = 300 };
    rc = s_run_timed (src, slow, &limit, &ms, &rows, err);
    if (!s_ok (rc == DBT_ETIMEDOUT && ms < 2300, "a time limit stops the query"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, ms, err);
    rc = s_run_timed (src, ssql->pause, NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the next query runs without the limit");
    s_ok (!dbt_conn_broken (src), "source connection still healthy");

    //  An error in mid-stream comes back from fetch, never as a clean end
    rc = s_run_timed (src, ssql->midsql, NULL, &ms, &rows, err);
    if (!s_ok (rc < 0 && rows > 0 && rows < 200000, "an error in mid-stream is an error"))
        s_diag ("rc %d after %" PRId64 " rows", rc, rows);
    s_diag ("mid-stream error after %" PRId64 " rows: %s", rows, err);
    rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the connection works after a mid-stream error");

    //  Abandoning a query half-way leaves the connection usable
    rc = dbt_conn_query (src, ssql->million, NULL, NULL, err);
    dbt_row_t row;
    for (int i = 0; rc == 0 && i < 10; i++)
        rc = dbt_conn_fetch (src, &row, err) == 1 ? 0 : -1;
    int64_t start = dbt_clock_ms ();
    dbt_conn_query_end (src);
    ms = dbt_clock_ms () - start;
    int64_t end_ms = ms;
    rc = rc ? rc : s_run_timed (src, "SELECT 2", NULL, &ms, &rows, err);
    if (!s_ok (rc == 0 && rows == 1 && end_ms < 2000, "a query abandoned half-way ends quickly"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, end_ms, err);

    //  Streaming: memory does not grow with the result
    if (ssql->big) {
        long before = s_maxrss_mb ();
        rc = s_run_timed (src, ssql->big, NULL, &ms, &rows, err);
        long after = s_maxrss_mb ();
        s_diag ("2,000,000 rows (~400 MB) read in %" PRId64 " ms; max RSS %ld MB before, %ld MB after",
                ms, before, after);
        s_ok (rc == 0 && rows == 2000000, "2M rows stream to the end");
        s_ok_rss (true, after - before, "2M rows stream in bounded memory");
    }
    //  ...and through the results writer
    {
        const char *gen = ssql->gen;
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
    if (ssql->whoami) {
        bool killed = s_kill_backend (src_pg, argv [2], backend);
        usleep (100 * 1000);
        rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
        if (!s_ok (killed && rc == DBT_ECONN && dbt_conn_broken (src),
                   "a lost connection is DBT_ECONN and marks it broken"))
            s_diag ("killed %d rc %d: %s", killed, rc, err);
    }
    s_table_free (&whoami);

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
