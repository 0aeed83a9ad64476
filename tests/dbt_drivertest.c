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

    A ClickHouse source (an HTTP URL) gets a fixture of what ClickHouse
    18.16 can hold (no BOOLEAN: UInt8; DateTime in seconds, no TIMESTAMP;
    no years before 1970; no NaN decimals) plus its own types (UInt64,
    Float32, FixedString, LowCardinality, Enum, UUID, Array), made over HTTP
    with libcurl, and extra checks: args substituted as literals read back
    byte for byte (injection attempts included), composite values against
    the server's own toString(), a cancelled or abandoned query gone from
    system.processes.
    =========================================================================
*/
#include "../src/dbt_classes.h"
#include <sqlite3.h>
#include <libpq-fe.h>
#include <curl/curl.h>
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

//  The ClickHouse fixture: what ClickHouse 18.16 can hold of the above
//  (b is UInt8: 18.16 has no Bool; tz is DateTime, whole seconds) and
//  types of its own.
#define CH_NCOLS 15

typedef struct {
    const char *name;           //  column name
    dbt_coltype_t type;         //  canonical type
    const char *ch_type;        //  ClickHouse column type
} s_chcol_t;

static const s_chcol_t s_ch_fcols [CH_NCOLS] = {
    { "id", DBT_COL_BIGINT, "Int64" },
    { "i64", DBT_COL_BIGINT, "Nullable(Int64)" },
    { "u64", DBT_COL_UBIGINT, "Nullable(UInt64)" },
    { "dec", DBT_COL_DECIMAL, "Nullable(Decimal(24, 6))" },
    { "f", DBT_COL_DOUBLE, "Nullable(Float64)" },
    { "f32", DBT_COL_DOUBLE, "Nullable(Float32)" },
    { "b", DBT_COL_BIGINT, "Nullable(UInt8)" },
    { "d", DBT_COL_DATE, "Nullable(Date)" },
    { "tz", DBT_COL_TIMESTAMPTZ, "Nullable(DateTime('UTC'))" },
    { "txt", DBT_COL_TEXT, "Nullable(String)" },
    { "fs", DBT_COL_TEXT, "Nullable(FixedString(3))" },
    { "lc", DBT_COL_TEXT, "LowCardinality(Nullable(String))" },
    { "en", DBT_COL_TEXT, "Nullable(Enum8('a' = 1, 'b\\'q' = 2))" },
    { "uu", DBT_COL_TEXT, "Nullable(UUID)" },
    { "arr", DBT_COL_TEXT, "Array(Nullable(String))" }
};

static const char *s_ch_want [NROWS][CH_NCOLS] = {
    { "1", "-9223372036854775808", "18446744073709551615", "123456789012345678.123456",
      "1.5", "0.1", "1", "2024-02-29", "2024-01-02 03:04:05+00",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xaa\xb2 caf\xc3\xa9", "abc", "x", "a",
      "01234567-89ab-cdef-0123-456789abcdef", "['a',NULL,'b\\'c']" },
    { "2", "9223372036854775807", "0", "-0.500000", "1e-300", "-Infinity", "0", "1970-01-01",
      "2000-01-01 00:00:00+00", "tab\there\nnewline\\backslash\r\n\\N end", "\xc3\xa9!", "",
      "b'q", "00000000-0000-0000-0000-000000000000", "[]" },
    { "3", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "[]" },
    { "4", "0", "1", "0.000000", "0.1", "NaN", "1", "2105-12-31", "2105-12-31 23:59:59+00",
      "@LONG", "\t\n\\", "\xe6\x97\xa5\xe6\x9c\xac", "a", "ffffffff-ffff-ffff-ffff-ffffffffffff",
      "[NULL]" },
    { "5", "42", "9223372036854775808", "1.100000", "-1.7976931348623157e+308",
      "3.4028235e+38", "0", "2038-01-19", "2038-01-19 03:14:08+00", "", "   ", "", "b'q",
      "01234567-89ab-cdef-0123-456789abcdef", "['\\\\',' ','']" },
    { "6", "-1", "42", "-999999999999999999.999999", "NaN", "1.4013e-45", "1", "2000-02-29",
      "1970-01-01 00:00:00+00", "\\.", "a\\b", "\\N", "a", NULL, "['NULL']" },
    { "7", "1", "7", "-0.000001", "Infinity", "1.5", "0", "1970-01-02",
      "2024-02-29 23:59:59+00", "a\\b\\N\\t\\", "'\"`", "'", "b'q", NULL, "['a\\tb']" }
};

//  A fixture: its columns and expected values.
typedef struct {
    size_t ncols;               //  columns
    size_t nrows;               //  rows
    const char *names [CH_NCOLS];       //  column names
    dbt_coltype_t types [CH_NCOLS];     //  canonical types
    const char *const *want;    //  nrows x ncols canonical values
    size_t dec;                 //  the DECIMAL(24,6) column
} s_fixture_t;

//  The fixture of a source type.
static void
s_fixture_of (bool ch, s_fixture_t *fx)
{
    memset (fx, 0, sizeof (*fx));
    fx->nrows = NROWS;
    fx->ncols = ch ? CH_NCOLS : NCOLS;
    fx->want = ch ? &s_ch_want [0][0] : &s_want [0][0];
    fx->dec = ch ? 3 : 2;
    for (size_t i = 0; i < fx->ncols; i++) {
        fx->names [i] = ch ? s_ch_fcols [i].name : s_fcols [i].name;
        fx->types [i] = ch ? s_ch_fcols [i].type : s_fcols [i].type;
    }
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
s_compare (const s_table_t *t, const s_fixture_t *fx, const char *longtext, const char *what)
{
    int bad = 0;
    if (t->nrows != fx->nrows || t->ncols != fx->ncols) {
        s_diag ("%s: got %zu rows x %zu columns, want %zu x %zu", what, t->nrows, t->ncols,
                fx->nrows, fx->ncols);
        return 1;
    }
    for (size_t r = 0; r < fx->nrows; r++)
        for (size_t i = 0; i < fx->ncols; i++) {
            const char *want = fx->want [r * fx->ncols + i];
            if (want && streq (want, "@LONG"))
                want = longtext;
            size_t at = r * fx->ncols + i;
            if (!s_same (fx->types [i], t->cells [at], t->lens [at], want,
                         want ? strlen (want) : 0)) {
                s_diag ("%s: row %zu column %s: got '%.60s'%s, want '%.60s'", what, r + 1,
                        fx->names [i], t->cells [at] ? t->cells [at] : "NULL",
                        t->lens [at] > 60 ? "..." : "", want ? want : "NULL");
                bad++;
            }
        }
    return bad;
}

//  Check a table's column names and types against the fixture's; a
//  read-back UBIGINT is a DECIMAL(20,0) (the results column's type).
static bool
s_types_ok (const s_table_t *t, const s_fixture_t *fx, bool readback, const char *what)
{
    bool ok = t->ncols == fx->ncols;
    for (size_t i = 0; ok && i < fx->ncols; i++) {
        const dbt_column_t *c = &t->cols [i];
        dbt_coltype_t want = fx->types [i];
        if (readback && want == DBT_COL_UBIGINT)
            want = DBT_COL_DECIMAL;
        if (!streq (c->name, fx->names [i]) || c->type != want) {
            s_diag ("%s: column %zu is %s %s (%s), want %s %s", what, i + 1, c->name,
                    dbt_coltype_name (c->type), c->source_type ? c->source_type : "",
                    fx->names [i], dbt_coltype_name (want));
            ok = false;
        }
    }
    const dbt_column_t *dec = ok ? &t->cols [fx->dec] : NULL;
    if (dec && (dec->precision != 24 || dec->scale != 6)) {
        s_diag ("%s: dec is DECIMAL(%d,%d), want (24,6)", what, dec->precision, dec->scale);
        ok = false;
    }
    return ok;
}

//  --------------------------------------------------------------------------
//  ClickHouse over HTTP (the test's own client: libcurl)

//  Reply callback: collect the body.
static size_t
s_ch_reply (char *data, size_t size, size_t nmemb, void *arg)
{
    dbt_buf_append ((dbt_buf_t *) arg, data, size * nmemb);
    return size * nmemb;
}

//  POST sql (then body, when given) to the server at url with settings
//  (a query string, may be empty); the reply into out. Returns 0, or -1
//  with err set (HTTP status other than 200 included).
static int
s_ch_post (const char *url, const char *settings, const char *sql, const char *body,
           size_t len, dbt_buf_t *out, char *err)
{
    CURL *easy = curl_easy_init ();
    char *escaped = curl_easy_escape (easy, sql, 0);
    char *full = dbt_printf ("%s%squery=%s%s%s", url, strchr (url, '?') ? "&" : "?", escaped,
                             *settings ? "&" : "", settings);
    curl_free (escaped);
    dbt_buf_reset (out);
    curl_easy_setopt (easy, CURLOPT_URL, full);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (body ? len : 0));
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_ch_reply);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, out);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT, 60L);
    CURLcode res = curl_easy_perform (easy);
    long status = 0;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (easy);
    free (full);
    if (res != CURLE_OK || status != 200) {
        dbt_err_set (err, "clickhouse fixture: %s %.300s", curl_easy_strerror (res),
                     out->data ? out->data : "");
        return -1;
    }
    return 0;
}

//  Append text escaped for ClickHouse TabSeparated input.
static void
s_tsv_escape (dbt_buf_t *buf, const char *val)
{
    for (const char *p = val; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '\t' ? "\\t" : *p == '\n' ? "\\n"
                        : *p == '\r' ? "\\r" : NULL;
        if (esc)
            dbt_buf_puts (buf, esc);
        else
            dbt_buf_putc (buf, *p);
    }
}

static int
s_fixture_ch (const char *url, const char *longtext, char *err)
{
    dbt_buf_t sql = { 0 }, reply = { 0 }, tsv = { 0 };
    int rc = s_ch_post (url, "", "DROP TABLE IF EXISTS dbt_fixture", NULL, 0, &reply, err);
    dbt_buf_puts (&sql, "CREATE TABLE dbt_fixture (");
    for (size_t i = 0; i < CH_NCOLS; i++)
        dbt_buf_printf (&sql, "%s%s %s", i ? ", " : "", s_ch_fcols [i].name,
                        s_ch_fcols [i].ch_type);
    dbt_buf_puts (&sql, ") ENGINE = Memory");
    if (rc == 0)
        rc = s_ch_post (url, "allow_experimental_low_cardinality_type=1", sql.data, NULL, 0,
                        &reply, err);
    for (size_t r = 0; r < NROWS; r++)
        for (size_t i = 0; i < CH_NCOLS; i++) {
            const char *val = s_ch_want [r][i];
            if (i)
                dbt_buf_putc (&tsv, '\t');
            if (!val) {
                dbt_buf_puts (&tsv, "\\N");
                continue;
            }
            if (streq (val, "@LONG"))
                val = longtext;
            else
            if (s_ch_fcols [i].type == DBT_COL_DOUBLE)
                val = streq (val, "NaN") ? "nan" : streq (val, "Infinity") ? "inf"
                    : streq (val, "-Infinity") ? "-inf" : val;
            if (s_ch_fcols [i].type == DBT_COL_TIMESTAMPTZ)
                dbt_buf_append (&tsv, val, strlen (val) - 3);      //  without +00
            else
            if (strncmp (s_ch_fcols [i].ch_type, "Array", 5) == 0)
                dbt_buf_puts (&tsv, val);   //  arrays are read quoted, not escaped
            else
                s_tsv_escape (&tsv, val);
            if (i == CH_NCOLS - 1)
                dbt_buf_putc (&tsv, '\n');
        }
    if (rc == 0)
        rc = s_ch_post (url, "", "INSERT INTO dbt_fixture FORMAT TabSeparated", tsv.data,
                        tsv.len, &reply, err);
    dbt_buf_free (&sql);
    dbt_buf_free (&reply);
    dbt_buf_free (&tsv);
    return rc;
}

//  Rows in system.processes of query id (-1 when the server cannot say).
static int
s_ch_running (const char *url, const char *query_id)
{
    dbt_buf_t reply = { 0 };
    char err [DBT_ERRMSG_LEN];
    char *sql = dbt_printf ("SELECT count() FROM system.processes WHERE query_id = '%s'",
                            query_id);
    int n = s_ch_post (url, "", sql, NULL, 0, &reply, err) ? -1
          : (int) strtol (reply.data, NULL, 10);
    free (sql);
    dbt_buf_free (&reply);
    return n;
}

//  Wait up to ms for query id to leave system.processes; true when gone.
static bool
s_ch_gone (const char *url, const char *query_id, int ms)
{
    int64_t until = dbt_clock_ms () + ms;
    do {
        if (s_ch_running (url, query_id) == 0)
            return true;
        usleep (50 * 1000);
    } while (dbt_clock_ms () < until);
    return false;
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
//  ClickHouse only: literals, composite values, server errors, DSNs

//  Args that must come back unchanged from SELECT ?: quotes, backslashes,
//  comment and placeholder look-alikes, injection attempts, control and
//  non-UTF-8 bytes.
static const char *s_tricky [] = {
    "plain", "", "it's", "x' OR 1=1 --", "\\'; DROP TABLE dbt_fixture; --", "trailing\\",
    "\\", "\\\\'", "'", "''", "\\'", "a\nb\rc\td\be\ff", "?", "'?'", "/* ? */", "-- ?\n?",
    "`x` \"y\"", "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\xaa\xb2", "\x01\x02\x1b\x1f\x7f",
    "\xff\xfe not UTF-8", "%s %n {0} $1", "\\x41\\0", "');KILL QUERY WHERE 1; --"
};

//  One (value, ClickHouse's own toString of it) pair a row: the driver's
//  text of composite values must equal the server's.
static const char *s_composites [] = {
    "[1.5, 1e21, 1e-7, 100, -0., nan, inf, -inf, 0.1, 1e-300]",
    "[toFloat32(0.1), toFloat32(1e-7), toFloat32(16777217)]",
    "['a\\tb\\0c\\\\d\\'e\\nf\\rg\\bh\\fi', '\xc3\xa9', '', '?']",
    "[[1, 2], [], [-3]]",
    "(1, 'x', NULL, toDate('2024-02-29'), toDecimal32('-1.5', 2))",
    "[toUUID('01234567-89ab-cdef-0123-456789abcdef')]",
    "[CAST('b\\'q' AS Enum8('a' = 1, 'b\\'q' = 2))]",
    "[toDateTime('2024-01-02 03:04:05', 'UTC')]",
    "[NULL, 1]",
    "[toFixedString('ab', 3)]",
    "[toInt8(-128), 127]",
    "[toUInt64(18446744073709551615)]",
    "[(1, [toNullable('x'), NULL])]",
    "[toDecimal128('-12345678901234567890.5', 3)]"
};

//  A scalar expression, its canonical type and text (NULL: SQL NULL;
//  len: bytes, for values with NULs).
static const struct {
    const char *expr;           //  ClickHouse expression
    dbt_coltype_t type;         //  canonical type
    const char *want;           //  canonical text
    size_t len;                 //  length of want
} s_scalars [] = {
    { "toDateTime('2000-01-01 05:30:00', 'Asia/Kolkata')", DBT_COL_TIMESTAMPTZ,
      "2000-01-01 00:00:00+00", 22 },
    { "toDateTime(0)", DBT_COL_TIMESTAMPTZ, "1970-01-01 00:00:00+00", 22 },
    { "toDate(0)", DBT_COL_DATE, "1970-01-01", 10 },
    { "toDecimal32('-1.5', 2)", DBT_COL_DECIMAL, "-1.50", 5 },
    { "toDecimal64('0.01', 4)", DBT_COL_DECIMAL, "0.0100", 6 },
    { "toDecimal128('-12345678901234567890123456789.123456789', 9)", DBT_COL_DECIMAL,
      "-12345678901234567890123456789.123456789", 40 },
    { "toNullable(toDecimal32(1, 1))", DBT_COL_DECIMAL, "1.0", 3 },
    { "toUInt8(255)", DBT_COL_BIGINT, "255", 3 },
    { "toInt8(-128)", DBT_COL_BIGINT, "-128", 4 },
    { "toUInt32(4294967295)", DBT_COL_BIGINT, "4294967295", 10 },
    { "toUInt64(18446744073709551615)", DBT_COL_UBIGINT, "18446744073709551615", 20 },
    { "toFloat32(16777217)", DBT_COL_DOUBLE, "16777216", 8 },
    { "toLowCardinality('lc')", DBT_COL_TEXT, "lc", 2 },
    { "toLowCardinality(toNullable('n'))", DBT_COL_TEXT, "n", 1 },
    { "toFixedString('ab', 4)", DBT_COL_TEXT, "ab\0\0", 4 },
    { "'a\\0b'", DBT_COL_TEXT, "a\0b", 3 },
    { "NULL", DBT_COL_TEXT, NULL, 0 },
    { "CAST(NULL AS Nullable(DateTime))", DBT_COL_TIMESTAMPTZ, NULL, 0 },
    { "CAST('b' AS Enum16('a' = -1000, 'b' = 1000))", DBT_COL_TEXT, "b", 1 },
    { "toUUID('01234567-89ab-cdef-0123-456789abcdef')", DBT_COL_TEXT,
      "01234567-89ab-cdef-0123-456789abcdef", 36 }
};

//  Connect to dsn and run sql; the first cell into out. Returns the code
//  of the first failure (connect included), err set.
static int
s_ch_one (const char *dsn, const char *sql, s_table_t *out, char *err)
{
    memset (out, 0, sizeof (*out));
    dbt_dbconf_t conf = { .name = "ch2", .type = "clickhouse", .dsn = dsn,
                          .connect_timeout_ms = 3000 };
    dbt_conn_t *conn = dbt_conn_new (&conf, err);
    if (!conn)
        return DBT_ECONN;
    int rc = s_read_all (conn, sql, NULL, 0, out, err);
    dbt_conn_destroy (&conn);
    return rc;
}

static void
s_ch_checks (dbt_conn_t *src, const char *url, const s_fixture_t *fx)
{
    char err [DBT_ERRMSG_LEN];
    s_table_t t;

    //  Args are one string literal each, whatever they hold
    int bad = 0;
    size_t ntricky = sizeof (s_tricky) / sizeof (s_tricky [0]);
    char every [256];
    for (int i = 1; i < 256; i++)
        every [i - 1] = (char) i;
    every [255] = 0;
    for (size_t k = 0; k <= ntricky; k++) {
        const char *val = k < ntricky ? s_tricky [k] : every;
        const char *argv [] = { val, val };
        int rc = s_read_all (src, "SELECT ? AS v, length(?) AS n", argv, 2, &t, err);
        char len [24];
        snprintf (len, sizeof (len), "%zu", strlen (val));
        if (rc || t.nrows != 1 || t.lens [0] != strlen (val)
        ||  memcmp (t.cells [0], val, strlen (val)) || !streq (t.cells [1], len)) {
            s_diag ("arg %zu came back as '%.60s' (rc %d: %s)", k,
                    rc == 0 && t.nrows ? t.cells [0] : "", rc, rc ? err : "");
            bad++;
        }
        s_table_free (&t);
    }
    s_ok (bad == 0, "args read back byte for byte (injection attempts stay literals)");
    int rc = s_read_all (src, "SELECT count() FROM dbt_fixture", NULL, 0, &t, err);
    s_ok (rc == 0 && t.nrows == 1 && streq (t.cells [0], "7"), "the fixture survived them");
    s_table_free (&t);
    const char *z [] = { "z" };
    rc = s_read_all (src, "SELECT '?' AS \"q?\", `?`, ? AS b /* ? */ -- ?\n"
                     "FROM (SELECT 1 AS `?`)", z, 1, &t, err);
    if (!s_ok (rc == 0 && t.nrows == 1 && t.ncols == 3 && streq (t.cols [0].name, "q?")
               && streq (t.cells [0], "?") && streq (t.cells [1], "1") && streq (t.cells [2], "z"),
               "? in literals, identifiers and comments is not a placeholder"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&t);

    //  Scalar types and exact text
    dbt_buf_t sql = { 0 };
    size_t nscalars = sizeof (s_scalars) / sizeof (s_scalars [0]);
    dbt_buf_puts (&sql, "SELECT ");
    for (size_t k = 0; k < nscalars; k++)
        dbt_buf_printf (&sql, "%s%s AS c%zu", k ? ", " : "", s_scalars [k].expr, k);
    rc = s_read_all (src, sql.data, NULL, 0, &t, err);
    bad = rc != 0 || t.nrows != 1 || t.ncols != nscalars;
    for (size_t k = 0; !bad && k < nscalars; k++) {
        const char *want = s_scalars [k].want;
        bool same = want ? t.cells [k] && t.lens [k] == s_scalars [k].len
                           && memcmp (t.cells [k], want, t.lens [k]) == 0 : !t.cells [k];
        if (!same || t.cols [k].type != s_scalars [k].type) {
            s_diag ("%s: got %s '%.60s', want %s '%s'", s_scalars [k].expr,
                    dbt_coltype_name (t.cols [k].type), t.cells [k] ? t.cells [k] : "NULL",
                    dbt_coltype_name (s_scalars [k].type), want ? want : "NULL");
            bad++;
        }
    }
    if (!s_ok (bad == 0, "ClickHouse types map to canonical types and text"))
        s_diag ("rc %d: %s", rc, err);
    s_ok (rc == 0 && t.ncols > 5 && t.cols [3].precision == 9 && t.cols [3].scale == 2,
          "Decimal32 is DECIMAL(9,2)");
    s_table_free (&t);

    //  Composite values read as the server prints them
    size_t ncomp = sizeof (s_composites) / sizeof (s_composites [0]);
    dbt_buf_reset (&sql);
    dbt_buf_puts (&sql, "SELECT ");
    for (size_t k = 0; k < ncomp; k++)
        dbt_buf_printf (&sql, "%s%s AS v%zu, toString(v%zu) AS s%zu", k ? ", " : "",
                        s_composites [k], k, k, k);
    rc = s_read_all (src, sql.data, NULL, 0, &t, err);
    bad = rc != 0 || t.nrows != 1 || t.ncols != 2 * ncomp;
    for (size_t k = 0; !bad && k < ncomp; k++)
        if (!t.cells [2 * k] || t.lens [2 * k] != t.lens [2 * k + 1]
        ||  memcmp (t.cells [2 * k], t.cells [2 * k + 1], t.lens [2 * k]) != 0) {
            s_diag ("%s: got '%s', the server says '%s'", s_composites [k],
                    t.cells [2 * k] ? t.cells [2 * k] : "NULL", t.cells [2 * k + 1]);
            bad++;
        }
    if (!s_ok (bad == 0, "arrays and tuples read as ClickHouse's own text"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&t);
    dbt_buf_free (&sql);

    //  An empty result gets its columns from DESCRIBE
    rc = s_read_all (src, "SELECT * FROM dbt_fixture WHERE id < 0 ORDER BY id", NULL, 0, &t, err);
    s_ok (rc == 0 && t.nrows == 0 && s_types_ok (&t, fx, false, "empty"),
          "an empty result has the columns and types of a full one");
    s_table_free (&t);

    //  Errors: a type that cannot be read names its column; a syntax error
    rc = s_read_all (src, "SELECT 1 AS x, sumState(1) AS s", NULL, 0, &t, err);
    if (!s_ok (rc == DBT_ERROR && strstr (err, "'s'") && strstr (err, "AggregateFunction"),
               "an unreadable type is an error naming the column"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&t);
    rc = s_read_all (src, "SELEC 1", NULL, 0, &t, err);
    if (!s_ok (rc == DBT_ERROR && strstr (err, "code 62: ") && strstr (err, "Syntax error"),
               "a syntax error is the server's message"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&t);
    rc = s_read_all (src, "SELECT 1; SELECT 2", NULL, 0, &t, err);
    s_ok (rc == DBT_EINVAL && strstr (err, "one SQL statement"), "two statements are refused");
    s_table_free (&t);
    rc = s_read_all (src, "SELECT 3;  -- done", NULL, 0, &t, err);
    s_ok (rc == 0 && t.nrows == 1 && streq (t.cells [0], "3"), "a final semicolon is dropped");
    s_table_free (&t);
    s_ok (!dbt_conn_broken (src), "source connection still healthy after errors");

    //  DSNs: settings pass through (small blocks: many block boundaries),
    //  the clickhouse:// short form, clear connect errors
    char *dsn = dbt_printf ("%s?max_block_size=1000&max_threads=1", url);
    rc = s_ch_one (dsn, "SELECT count(), sum(number), max(number) FROM "
                   "(SELECT number FROM system.numbers LIMIT 100000)", &t, err);
    s_table_free (&t);
    rc = rc ? rc : s_ch_one (dsn, "SELECT number, toString(number) AS s FROM system.numbers "
                             "LIMIT 100000", &t, err);
    bool blocks_ok = rc == 0 && t.nrows == 100000;
    for (size_t r = 0; blocks_ok && r < t.nrows; r++) {
        char want [24];
        snprintf (want, sizeof (want), "%zu", r);
        blocks_ok = streq (t.cells [2 * r], want) && streq (t.cells [2 * r + 1], want);
    }
    if (!s_ok (blocks_ok, "100,000 rows in blocks of 1,000 read in order"))
        s_diag ("rc %d rows %zu: %s", rc, t.nrows, err);
    s_table_free (&t);
    rc = s_ch_one (dsn, "SELECT value FROM system.settings WHERE name = 'max_block_size'",
                   &t, err);
    s_ok (rc == 0 && t.nrows == 1 && streq (t.cells [0], "1000"), "dsn settings reach the server");
    s_table_free (&t);
    free (dsn);
    dsn = dbt_printf ("clickhouse://default@%s", url + strlen ("http://"));
    char *slash = strrchr (dsn, '/');
    if (slash && !slash [1]) {
        char *full = dbt_printf ("%sdefault", dsn);
        free (dsn);
        dsn = full;
    }
    rc = s_ch_one (dsn, "SELECT currentDatabase()", &t, err);
    if (!s_ok (rc == 0 && t.nrows == 1 && streq (t.cells [0], "default"),
               "the clickhouse:// short form connects"))
        s_diag ("%s: rc %d: %s", dsn, rc, err);
    s_table_free (&t);
    free (dsn);
    dsn = dbt_printf ("%s?database=dbt_nosuch", url);
    rc = s_ch_one (dsn, "SELECT 1", &t, err);
    s_ok (rc == DBT_ECONN && strstr (err, "dbt_nosuch"), "an unknown database fails to connect");
    free (dsn);
    dsn = dbt_printf ("%s?user=dbt_nobody&password=x", url);
    rc = s_ch_one (dsn, "SELECT 1", &t, err);
    s_ok (rc == DBT_ECONN && strstr (err, "dbt_nobody"), "an unknown user fails to connect");
    free (dsn);
    dsn = dbt_printf ("%s?query_id=x", url);
    rc = s_ch_one (dsn, "SELECT 1", &t, err);
    s_ok (rc == DBT_ECONN && strstr (err, "set by the driver"), "a reserved dsn setting is refused");
    free (dsn);
    int64_t start = dbt_clock_ms ();
    rc = s_ch_one ("http://127.0.0.1:1/", "SELECT 1", &t, err);
    s_ok (rc == DBT_ECONN && dbt_clock_ms () - start < 3500, "a closed port fails to connect");
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
    bool src_ch = sdrv == &dbt_driver_clickhouse;
    bool res_pg = rdrv == &dbt_driver_pg;
    //  The SQL of a check in each source's dialect
#define S_SQL(sqlite, pg, ch) (src_ch ? (ch) : src_pg ? (pg) : (sqlite))
    const char *param1 = S_SQL ("?1", "$1", "toInt64(?)");
    const char *param2 = S_SQL ("?2", "$2", "toInt64(?)");
    char err [DBT_ERRMSG_LEN];
    char *longtext = s_long_text ();
    s_fixture_t fx;
    s_fixture_of (src_ch, &fx);
    printf ("# %s -> %s\n", sdrv->name, rdrv->name);
    curl_global_init (CURL_GLOBAL_ALL);

    //  Fixture and connections
    int rc = src_ch ? s_fixture_ch (argv [2], longtext, err)
           : src_pg ? s_fixture_pg (argv [2], longtext, err)
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
    s_ok (s_types_ok (&fixture, &fx, false, "source"), "source column names and types");
    s_ok (s_compare (&fixture, &fx, longtext, "source") == 0, "source values are canonical");
    if (s_verbose)
        for (size_t i = 0; i < fixture.ncols; i++)
            s_diag ("source column %s: %s (%s)", fixture.cols [i].name,
                    dbt_coltype_name (fixture.cols [i].type), fixture.cols [i].source_type);

    //  A NULL arg binds SQL NULL
    char *nullsql = dbt_strdup (S_SQL ("SELECT ?1 IS NULL AS n, ?2 AS x",
                                       "SELECT $1::text IS NULL AS n, $2::text AS x",
                                       "SELECT isNull(?) AS n, ? AS x"));
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
    s_ok (s_types_ok (&back, &fx, true, "read-back"), "read-back column names and types");
    s_ok (s_compare (&back, &fx, longtext, "read-back") == 0,
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
        dbt_row_t row = { fx.ncols, (const char **) fixture.cells + r * fx.ncols,
                          fixture.lens + r * fx.ncols };
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
    //  (ClickHouse refuses an alias given twice: the column is repeated.)
    rc = s_read_all (src, S_SQL ("SELECT 1 AS a, 2 AS \"A\", 3 AS \"we\"\"ird name\", 4 AS a",
                                 "SELECT 1 AS a, 2 AS \"A\", 3 AS \"we\"\"ird name\", 4 AS a",
                                 "SELECT 4 AS a, 2 AS \"A\", 3 AS \"we\"\"ird name\", a"),
                     NULL, 0, &names, err);
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
    if (!s_ok (rc == 0 && empty.nrows == 0 && empty.ncols == fx.ncols,
               "an empty result makes an empty table"))
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
    //  (ClickHouse: about 4 minutes of hashing on one core; its query id
    //  is ours, to look for it in system.processes.)
    const char *slow = S_SQL ("WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                              "WHERE x < 3000000000) SELECT count(*) FROM c",
                              "SELECT pg_sleep(30)",
                              "SELECT sum(cityHash64(number)) FROM numbers(100000000000)");
    char query_id [64];
    snprintf (query_id, sizeof (query_id), "dbt-drivertest-%d-cancel", (int) getpid ());
    dbt_query_opts_t named = { .query_id = query_id };
    s_canceller_t canceller = { src, 300 };
    pthread_t thread;
    int64_t ms, rows;
    pthread_create (&thread, NULL, s_canceller, &canceller);
    rc = s_run_timed (src, slow, &named, &ms, &rows, err);
    pthread_join (thread, NULL);
    if (!s_ok (rc == DBT_ECANCELED && ms < 2300, "cancel from another thread stops the query"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, ms, err);
    s_diag ("cancelled after %" PRId64 " ms: %s", ms, err);
    if (src_ch)
        s_ok (s_ch_gone (argv [2], query_id, 2000),
              "the cancelled query is gone from system.processes within 2 s");
    rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the connection works after a cancel");
    snprintf (query_id, sizeof (query_id), "dbt-drivertest-%d-limit", (int) getpid ());
    dbt_query_opts_t limit = { .timeout_ms = 300, .query_id = query_id };
    rc = s_run_timed (src, slow, &limit, &ms, &rows, err);
    if (!s_ok (rc == DBT_ETIMEDOUT && ms < 2300, "a time limit stops the query"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, ms, err);
    s_diag ("stopped by its time limit after %" PRId64 " ms: %s", ms, err);
    if (src_ch)
        s_ok (s_ch_gone (argv [2], query_id, 2000),
              "the timed-out query is gone from system.processes within 2 s");
    rc = s_run_timed (src, S_SQL ("SELECT 1", "SELECT pg_sleep(0.5)", "SELECT sleep(0.5)"),
                      NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the next query runs without the limit");
    s_ok (!dbt_conn_broken (src), "source connection still healthy");

    //  An error in mid-stream comes back from fetch, never as a clean end
    //  (ClickHouse answers HTTP 200, 150,000 rows, then the error as text.)
    const char *midsql = S_SQL (
        "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000) "
        "SELECT CASE WHEN x = 150000 THEN abs((149999 - x) - 9223372036854775807) ELSE x END AS v "
        "FROM n",
        "SELECT 1/(g-150000) AS v FROM generate_series(1,200000) g",
        "SELECT number, throwIf(number = 150000) FROM system.numbers LIMIT 200000");
    rc = s_run_timed (src, midsql, NULL, &ms, &rows, err);
    if (!s_ok (rc < 0 && rows > 0 && rows < 200000 && (!src_ch || strstr (err, "code 395: ")),
               "an error in mid-stream is an error"))
        s_diag ("rc %d after %" PRId64 " rows", rc, rows);
    s_diag ("mid-stream error after %" PRId64 " rows: %s", rows, err);
    rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the connection works after a mid-stream error");

    //  Abandoning a query half-way leaves the connection usable
    snprintf (query_id, sizeof (query_id), "dbt-drivertest-%d-abandon", (int) getpid ());
    rc = dbt_conn_query (src, S_SQL (
        "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000) "
        "SELECT x FROM n", "SELECT g FROM generate_series(1,1000000) g",
        "SELECT number FROM system.numbers"), NULL, &named, err);
    dbt_row_t row;
    for (int i = 0; rc == 0 && i < 10; i++)
        rc = dbt_conn_fetch (src, &row, err) == 1 ? 0 : -1;
    int64_t start = dbt_clock_ms ();
    dbt_conn_query_end (src);
    ms = dbt_clock_ms () - start;
    rc = rc ? rc : s_run_timed (src, "SELECT 2", NULL, &ms, &rows, err);
    if (!s_ok (rc == 0 && rows == 1, "a query abandoned half-way ends quickly"))
        s_diag ("rc %d: %s", rc, err);
    if (src_ch)
        s_ok (s_ch_gone (argv [2], query_id, 2000),
              "the abandoned query is gone from system.processes within 2 s");

    //  Streaming: memory does not grow with the result
    char pad [201];
    memset (pad, 'x', 200);
    pad [200] = 0;
    if (src_pg || src_ch) {
        char *bigsql = src_pg
            ? dbt_strdup ("SELECT g, repeat('x', 200) AS pad FROM generate_series(1,2000000) g")
            : dbt_printf ("SELECT number AS g, concat('%s', toString(number)) AS pad "
                          "FROM system.numbers LIMIT 2000000", pad);
        long before = s_maxrss_mb ();
        rc = s_run_timed (src, bigsql, NULL, &ms, &rows, err);
        free (bigsql);
        long after = s_maxrss_mb ();
        s_diag ("2,000,000 rows (~400 MB) read in %" PRId64 " ms; max RSS %ld MB before, %ld MB after",
                ms, before, after);
        s_ok (rc == 0 && rows == 2000000, "2M rows stream to the end");
        s_ok_rss (true, after - before, "2M rows stream in bounded memory");
    }
    //  ...and through the results writer
    {
        pad [100] = 0;
        char *gen = src_ch
            ? dbt_printf ("SELECT toInt64(number + 1) AS n, concat('%s', toString(number)) AS pad "
                          "FROM system.numbers LIMIT 300000", pad)
            : dbt_strdup (S_SQL (
                "WITH RECURSIVE s (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300000) "
                "SELECT n, hex(zeroblob(50)) AS pad FROM s",
                "SELECT g AS n, repeat('y', 100) AS pad FROM generate_series(1,300000) g", ""));
        long before = s_maxrss_mb ();
        start = dbt_clock_ms ();
        rc = dbt_conn_query (src, gen, NULL, NULL, err);
        free (gen);
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

    if (src_ch)
        s_ch_checks (src, argv [2], &fx);

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
