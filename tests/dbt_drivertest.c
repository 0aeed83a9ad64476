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

    Each source (s_sources) brings its fixture, its SQL dialect and what the
    test can ask its server from outside; each results database (s_results)
    says what it holds. The fixtures and the expected values are in
    dbt_drivertest_fixtures.c. MariaDB cannot hold some fixture values
    (NaN, infinities, TIMESTAMP before 1970): a MariaDB source stores NULL
    there and expects NULL back, a MariaDB results database must refuse
    them clearly (checked) and gets them as NULL for the round trip; its
    TIMESTAMPTZ columns read back as TIMESTAMP (UTC), its UBIGINT as UBIGINT
    (DECIMAL(20,0) elsewhere). MariaDB sources also check their own types
    (unsigned, BIT, TIME, zero dates, TINYINT(1) beyond 0/1) over both
    protocols. A ClickHouse source (an HTTP URL, source only) gets a fixture
    of what ClickHouse 18.16 can hold plus its own types (UInt64, Float32,
    FixedString, LowCardinality, Enum, UUID, Array), and extra checks: args
    substituted as literals read back byte for byte (injection attempts
    included), composite values against the server's own toString(), DSN
    settings and errors. Where the server can tell (MariaDB, ClickHouse), a
    cancelled, timed-out or abandoned query must be gone from it.
    =========================================================================
*/
#include "dbt_drivertest_fixtures.h"
#include <curl/curl.h>
#include <math.h>
#include <sys/resource.h>

//  Test-program state (this is a test driver, not a library class).
static int s_tests;             //  checks run
static int s_failed;            //  checks failed
static bool s_verbose;          //  --verbose

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

//  Compare a read table with the fixture's rows as read from the source
//  (rules NULL) or back from the results database of rules. Returns the
//  mismatches.
static int
s_compare (const s_table_t *t, const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules,
           const char *longtext, const char *what)
{
    int bad = 0;
    if (t->nrows != fx->nrows || t->ncols != fx->ncols) {
        s_diag ("%s: got %zu rows x %zu columns, want %zu x %zu", what, t->nrows, t->ncols,
                fx->nrows, fx->ncols);
        return 1;
    }
    for (size_t r = 0; r < fx->nrows; r++)
        for (size_t i = 0; i < fx->ncols; i++) {
            char buf [64];
            const char *want = dbt_dt_expected (fx, rules, r, i, longtext, buf);
            size_t at = r * fx->ncols + i;
            if (!s_same (fx->cols [i].type, t->cells [at], t->lens [at], want,
                         want ? strlen (want) : 0)) {
                s_diag ("%s: row %zu column %s: got '%.60s'%s, want '%.60s'", what, r + 1,
                        fx->cols [i].name, t->cells [at] ? t->cells [at] : "NULL",
                        t->lens [at] > 60 ? "..." : "", want ? want : "NULL");
                bad++;
            }
        }
    return bad;
}

//  Check a table's column names and types against the fixture's (rules as
//  for s_compare).
static bool
s_types_ok (const s_table_t *t, const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules,
            const char *what)
{
    bool ok = t->ncols == fx->ncols;
    for (size_t i = 0; ok && i < fx->ncols; i++) {
        const dbt_column_t *c = &t->cols [i];
        dbt_coltype_t want = dbt_dt_expected_type (fx, rules, i);
        if (!streq (c->name, fx->cols [i].name) || c->type != want) {
            s_diag ("%s: column %zu is %s %s (%s), want %s %s", what, i + 1, c->name,
                    dbt_coltype_name (c->type), c->source_type ? c->source_type : "",
                    fx->cols [i].name, dbt_coltype_name (want));
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
//  Writing

//  Write the rows of t into final through a staging table (its columns
//  deduped). Returns the driver's code.
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

//  Write nrows rows of ncols cells into final; returns the driver's code.
static int
s_write_cells (dbt_conn_t *res, const dbt_column_t *cols, size_t ncols, const char **cells,
               const size_t *lens, size_t nrows, const char *final, char *err)
{
    const s_table_t t = {
        (dbt_column_t *) cols, ncols, nrows, (char **) cells, (size_t *) lens
    };
    return s_write_table (res, "dbt_t_stage1", final, &t, NULL, err);
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
        //  Under CI nothing skips: there a sanitizer build must leave this
        //  test out (SANITIZER_TESTS does).
        const char *ci = getenv ("CI");
        if (ci && streq (ci, "true")) {
            char *what = dbt_printf ("%s: not measurable under AddressSanitizer (CI=true: run "
                                     "drivers.sh in a build without sanitizers)", desc);
            bool ok = s_ok (false, what);
            free (what);
            return ok;
        }
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
//  Sources and results databases

typedef struct _s_pair_t s_pair_t;

//  A source database: its fixture, the SQL of the checks in its dialect,
//  and what the test can do to its server from outside.
typedef struct {
    const dbt_driver_t *driver;         //  the source driver
    const dbt_dt_fixture_t *fixture;    //  the fixture it gets
    int (*create) (const dbt_dt_fixture_t *fx, const char *dsn, const char *longtext,
                   char *err);          //  makes the fixture table
    void (*checks) (const s_pair_t *pair);      //  its own checks, NULL: none
    bool (*kill) (const char *dsn, const char *session);
                                        //  kills a session, NULL: cannot
    long (*running) (const char *dsn, const char *session, const char *query_id,
                     const char *sql);  //  counts a running query, NULL: cannot
    const char *param1;         //  first parameter marker
    const char *param2;         //  second parameter marker
    const char *nullsql;        //  tests a NULL arg and a text arg
    const char *names;          //  columns a, A, we"ird name and a (4)
    const char *slow;           //  runs for 30 s or more
    const char *pause;          //  runs a little while (0.5 s where possible)
    const char *midsql;         //  streams rows, then fails before 200,000
    const char *midsays;        //  what that error says, NULL: anything
    const char *million;        //  1,000,000 rows or more
    const char *big;            //  2,000,000 rows of ~200 bytes, NULL: skipped
    const char *gen;            //  300,000 rows: n (1..300000), pad (~250 bytes)
    const char *whoami;         //  the session's backend id, NULL: none
} s_source_t;

//  The pair under test.
struct _s_pair_t {
    dbt_conn_t *src;            //  source connection
    dbt_conn_t *res;            //  results connection
    const char *dsn;            //  the source's DSN
    const s_source_t *source;   //  the source
    const dbt_dt_results_t *rules;      //  the results database
};

//  Poll for up to 2 s until the server runs no more of the query (session
//  running sql, or query_id) and report it; nothing where it cannot tell.
static void
s_check_gone (const s_pair_t *pair, const char *session, const char *query_id,
              const char *sql, const char *what)
{
    if (!pair->source->running)
        return;
    long running = -1;
    int64_t start = dbt_clock_ms ();
    while ((running = pair->source->running (pair->dsn, session, query_id, sql)) != 0
       &&  dbt_clock_ms () - start < 2000)
        usleep (50 * 1000);
    char desc [128];
    snprintf (desc, sizeof (desc), "the %s query is gone from the server within 2 s", what);
    if (!s_ok (running == 0, desc))
        s_diag ("session %s query %s: %ld still running after 2 s", session, query_id, running);
}

//  --------------------------------------------------------------------------
//  Results databases: text round trips, MariaDB's refusals

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
        { "i", DBT_COL_BIGINT, 0, -1, NULL, 0, 0, 0, false }, { "v", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false }
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
        { { "f", DBT_COL_DOUBLE, 0, -1, NULL, 0, 0, 0, false }, "NaN", DBT_EINVAL, "column 'f' row 2: 'NaN'" },
        { { "f", DBT_COL_DOUBLE, 0, -1, NULL, 0, 0, 0, false }, "-Infinity", DBT_EINVAL, "MariaDB DOUBLE" },
        { { "n", DBT_COL_DECIMAL, 12, 2, NULL, 0, 0, 0, false }, "Infinity", DBT_EINVAL, "MariaDB DECIMAL" },
        { { "d", DBT_COL_DATE, 0, -1, NULL, 0, 0, 0, false }, "infinity", DBT_EINVAL, "column 'd' row 2" },
        { { "b", DBT_COL_BOOLEAN, 0, -1, NULL, 0, 0, 0, false }, "maybe", DBT_EINVAL, "not a valid BOOLEAN" },
        { { "i", DBT_COL_BIGINT, 0, -1, NULL, 0, 0, 0, false }, "99999999999999999999", DBT_ERROR,
          "Out of range value for column 'i' at row 2" },
        { { "n", DBT_COL_DECIMAL, 12, 2, NULL, 0, 0, 0, false }, "1.005", DBT_ERROR, "for column 'n' at row 2" },
        { { "t", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false }, "\xff\xfe", DBT_ERROR,
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
        { "n", DBT_COL_DECIMAL, 0, -1, NULL, 0, 0, 0, false }, { "w", DBT_COL_DECIMAL, 65, 38, NULL, 0, 0, 0, false }
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
//  MariaDB sources: their own types

//  MariaDB source types beyond the fixture, over both protocols; unsigned
//  values through the results database too.
static void
s_check_mysql_types (const s_pair_t *pair)
{
    dbt_conn_t *src = pair->src, *res = pair->res;
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
    if (ok && pair->rules->unsigned64)
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

//  ClickHouse's own checks.
static void
s_ch_checks (const s_pair_t *pair)
{
    dbt_conn_t *src = pair->src;
    const char *url = pair->dsn;
    const dbt_dt_fixture_t *fx = pair->source->fixture;
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
    s_ok (rc == 0 && t.nrows == 0 && s_types_ok (&t, fx, NULL, "empty"),
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
//  The sources and results databases under test

//  Four columns named a, A, we"ird name and a
#define S_NAMES "SELECT 1 AS a, 2 AS \"A\", 3 AS \"we\"\"ird name\", 4 AS a"
//  50 bytes of padding (ClickHouse 18.16 has no repeat())
#define S_PAD50 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const s_source_t s_sources [] = {
    {
        .driver = &dbt_driver_sqlite, .fixture = &dbt_dt_fixture_std,
        .create = dbt_dt_create_sqlite,
        .param1 = "?1", .param2 = "?2", .nullsql = "SELECT ?1 IS NULL AS n, ?2 AS x",
        .names = S_NAMES,
        .slow = "WITH RECURSIVE c (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                "WHERE x < 3000000000) SELECT count(*) FROM c",
        .pause = "SELECT 1",
        .midsql = "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
                  "WHERE x < 200000) SELECT CASE WHEN x = 150000 "
                  "THEN abs((149999 - x) - 9223372036854775807) ELSE x END AS v FROM n",
        .million = "WITH RECURSIVE n (x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
                   "WHERE x < 1000000) SELECT x FROM n",
        .gen = "WITH RECURSIVE s (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
               "WHERE n < 300000) SELECT n, hex(zeroblob(125)) AS pad FROM s"
    },
    {
        .driver = &dbt_driver_pg, .fixture = &dbt_dt_fixture_std,
        .create = dbt_dt_create_pg, .kill = dbt_dt_kill_pg,
        .param1 = "$1", .param2 = "$2",
        .nullsql = "SELECT $1::text IS NULL AS n, $2::text AS x", .names = S_NAMES,
        .slow = "SELECT pg_sleep(30)", .pause = "SELECT pg_sleep(0.5)",
        .midsql = "SELECT 1/(g-150000) AS v FROM generate_series(1,200000) g",
        .million = "SELECT g FROM generate_series(1,1000000) g",
        .big = "SELECT g, repeat('x', 200) AS pad FROM generate_series(1,2000000) g",
        .gen = "SELECT g AS n, repeat('y', 250) AS pad FROM generate_series(1,300000) g",
        .whoami = "SELECT pg_backend_pid()"
    },
    //  The mid-stream error: a scalar subquery that gives two rows from row
    //  150,000 on, after MariaDB has sent the rows before it.
    {
        .driver = &dbt_driver_mariadb, .fixture = &dbt_dt_fixture_mariadb,
        .create = dbt_dt_create_mariadb, .checks = s_check_mysql_types,
        .kill = dbt_dt_kill_mariadb, .running = dbt_dt_running_mariadb,
        .param1 = "?", .param2 = "?", .nullsql = "SELECT ? IS NULL AS n, ? AS x",
        .names = S_NAMES, .slow = "SELECT SLEEP(30)", .pause = "SELECT SLEEP(0.5)",
        .midsql = "SELECT s.seq AS v, (SELECT 1 UNION ALL SELECT 2 FROM DUAL "
                  "WHERE s.seq >= 150000) AS x FROM seq_1_to_200000 s",
        .million = "SELECT seq FROM seq_1_to_1000000",
        .big = "SELECT seq, REPEAT('x', 200) AS pad FROM seq_1_to_2000000",
        .gen = "SELECT seq AS n, REPEAT('y', 250) AS pad FROM seq_1_to_300000",
        .whoami = "SELECT CONNECTION_ID()"
    },
    //  ClickHouse refuses an alias given twice: the column is repeated.
    //  The slow query is about 4 minutes of hashing on one core; the
    //  mid-stream error comes after HTTP 200 and 150,000 rows, as text.
    {
        .driver = &dbt_driver_clickhouse, .fixture = &dbt_dt_fixture_ch,
        .create = dbt_dt_create_ch, .checks = s_ch_checks, .running = dbt_dt_running_ch,
        .param1 = "toInt64(?)", .param2 = "toInt64(?)",
        .nullsql = "SELECT isNull(?) AS n, ? AS x",
        .names = "SELECT 4 AS a, 2 AS \"A\", 3 AS \"we\"\"ird name\", a",
        .slow = "SELECT sum(cityHash64(number)) FROM numbers(100000000000)",
        .pause = "SELECT sleep(0.5)",
        .midsql = "SELECT number, throwIf(number = 150000) FROM system.numbers LIMIT 200000",
        .midsays = "code 395: ",
        .million = "SELECT number FROM system.numbers",
        .big = "SELECT number AS g, concat('" S_PAD50 S_PAD50 S_PAD50 S_PAD50 "', "
               "toString(number)) AS pad FROM system.numbers LIMIT 2000000",
        .gen = "SELECT toInt64(number + 1) AS n, concat('" S_PAD50 S_PAD50 S_PAD50 S_PAD50
               S_PAD50 "', toString(number)) AS pad FROM system.numbers LIMIT 300000"
    }
};

//  ClickHouse is a source only.
static const dbt_dt_results_t s_results [] = {
    { &dbt_driver_sqlite, true, true, false, true, NULL, NULL },
    { &dbt_driver_pg, true, true, false, false,
      "SELECT relpersistence FROM pg_class WHERE relname = 'dbt_t_empty'", NULL },
    { &dbt_driver_mariadb, false, false, true, true, NULL, s_check_mysql_results }
};

//  --------------------------------------------------------------------------

//  The first cell (row-major) the source holds and the results database
//  of rules does not; false when there is none.
static bool
s_first_refused (const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules, size_t *r_p,
                 size_t *i_p)
{
    for (size_t r = 0; r < fx->nrows; r++)
        for (size_t i = 0; i < fx->ncols; i++)
            if (dbt_dt_unheld (fx, rules, r, i) && !dbt_dt_unheld (fx, NULL, r, i)) {
                *r_p = r;
                *i_p = i;
                return true;
            }
    return false;
}

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
    const s_source_t *so = NULL;
    for (size_t i = 0; i < sizeof (s_sources) / sizeof (s_sources [0]); i++)
        so = s_sources [i].driver == sdrv ? &s_sources [i] : so;
    const dbt_dt_results_t *rules = NULL;
    for (size_t i = 0; i < sizeof (s_results) / sizeof (s_results [0]); i++)
        rules = s_results [i].driver == rdrv ? &s_results [i] : rules;
    if (!sdrv || !rdrv || !so || !rules) {
        fprintf (stderr, "dbt_drivertest: unknown type or not a %s (known: %s)\n",
                 so ? "results database" : "source", dbt_driver_names ());
        return 2;
    }
    const dbt_dt_fixture_t *fx = so->fixture;
    char err [DBT_ERRMSG_LEN];
    char *longtext = dbt_dt_long_text ();
    printf ("# %s -> %s\n", sdrv->name, rdrv->name);
    curl_global_init (CURL_GLOBAL_ALL);

    //  Fixture and connections
    int rc = so->create (fx, argv [2], longtext, err);
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
    const s_pair_t pair = { src, res, argv [2], so, rules };
    //  Clean leftovers of an earlier run
    const char *tables [] = { "dbt_t_final", "dbt_t_stage1", "dbt_t_stage2", "dbt_t_stage3",
                              "dbt_t_names", "dbt_t_empty", "dbt_t_nul", "dbt_t_stream",
                              "dbt_t_unsigned", "dbt_t_texts", "dbt_t_bad", "dbt_t_dec" };
    for (size_t i = 0; i < sizeof (tables) / sizeof (tables [0]); i++)
        dbt_conn_drop_table (res, tables [i], err);

    //  Prepare and arg counts
    char *sql = dbt_printf ("SELECT * FROM dbt_fixture WHERE id >= %s AND id <= %s ORDER BY id",
                            so->param1, so->param2);
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
    s_ok (s_types_ok (&fixture, fx, NULL, "source"), "source column names and types");
    s_ok (s_compare (&fixture, fx, NULL, longtext, "source") == 0, "source values are canonical");
    if (s_verbose)
        for (size_t i = 0; i < fixture.ncols; i++)
            s_diag ("source column %s: %s (%s)", fixture.cols [i].name,
                    dbt_coltype_name (fixture.cols [i].type), fixture.cols [i].source_type);

    //  A raw task without args reads the same
    s_table_t rawfix, prepfix;
    rc = s_read_both (src, "SELECT * FROM dbt_fixture ORDER BY id", &prepfix, &rawfix, err);
    if (!s_ok (rc == 0 && s_types_ok (&rawfix, fx, NULL, "raw")
               && s_compare (&rawfix, fx, NULL, longtext, "raw") == 0,
               "a raw task without args reads the same types and values"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&rawfix);
    s_table_free (&prepfix);

    //  A NULL arg binds SQL NULL
    const char *null_args [] = { NULL, "x" };
    s_table_t nt;
    rc = s_read_all (src, so->nullsql, null_args, 2, &nt, err);
    bool null_ok = rc == 0 && nt.nrows == 1 && nt.cells [0] && nt.cells [1]
                && (streq (nt.cells [0], "t") || streq (nt.cells [0], "1"))
                && streq (nt.cells [1], "x");
    if (!s_ok (null_ok, "a NULL arg binds SQL NULL"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&nt);
    if (so->checks)
        so->checks (&pair);

    //  Values the results database cannot hold (MariaDB: NaN, infinities)
    //  are refused, naming column and row; the round trip below writes
    //  them as NULL
    size_t bad_r, bad_i;
    if (s_first_refused (fx, rules, &bad_r, &bad_i)) {
        char says [128];
        snprintf (says, sizeof (says), "column '%s' row %zu: '%s'", fx->cols [bad_i].name,
                  bad_r + 1, fx->want [bad_r * fx->ncols + bad_i]);
        rc = s_write_table (res, "dbt_t_stage1", "dbt_t_final", &fixture, NULL, err);
        if (!s_ok (rc == DBT_EINVAL && strstr (err, says),
                   "NaN and infinities are refused with the column and row named"))
            s_diag ("rc %d: %s (want %s)", rc, err, says);
        for (size_t r = 0; r < fixture.nrows && r < fx->nrows; r++)
            for (size_t i = 0; i < fx->ncols && fixture.ncols == fx->ncols; i++)
                if (dbt_dt_unheld (fx, rules, r, i)) {
                    free (fixture.cells [r * fx->ncols + i]);
                    fixture.cells [r * fx->ncols + i] = NULL;
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
    s_ok (s_types_ok (&back, fx, rules, "read-back"), "read-back column names and types");
    s_ok (s_compare (&back, fx, rules, longtext, "read-back") == 0,
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
    for (size_t r = 0; rc == 0 && r < 2 && r < fixture.nrows; r++) {
        dbt_row_t row = { fixture.ncols, (const char **) fixture.cells + r * fixture.ncols,
                          fixture.lens + r * fixture.ncols };
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
    rc = s_read_all (src, so->names, NULL, 0, &names, err);
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
    if (!s_ok (rc == 0 && empty.nrows == 0 && empty.ncols == fx->ncols,
               "an empty result makes an empty table"))
        s_diag ("rc %d: %s", rc, err);
    s_table_free (&empty);

    //  A NUL byte in text: SQLite and MariaDB keep it, PostgreSQL refuses
    //  it clearly
    dbt_column_t ncol [] = { { "v", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false } };
    const char *nulval [] = { "a\0b" };
    size_t nullen [] = { 3 };
    dbt_row_t nulrow = { 1, nulval, nullen };
    rc = dbt_conn_write_begin (res, "dbt_t_stage1", ncol, 1, NULL, err);
    rc = rc ? rc : dbt_conn_write_row (res, &nulrow, err);
    rc = rc ? rc : dbt_conn_write_commit (res, "dbt_t_stage1", "dbt_t_nul", err);
    if (!rules->nul) {
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

    s_check_text_cells (res, rules->nul);
    if (rules->checks)
        rules->checks (res);

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

    //  UNLOGGED tables where the database has them
    if (rules->unlogged_sql) {
        dbt_table_opts_t unlogged = { true, NULL };
        s_table_t tiny;
        rc = s_read_all (src, "SELECT id FROM dbt_fixture ORDER BY id", NULL, 0, &tiny, err);
        rc = rc ? rc : s_write_table (res, "dbt_t_stage1", "dbt_t_empty", &tiny, &unlogged, err);
        s_table_free (&tiny);
        rc = rc ? rc : s_read_all (res, rules->unlogged_sql, NULL, 0, &tiny, err);
        s_ok (rc == 0 && tiny.nrows == 1 && streq (tiny.cells [0], "u"),
              "unlogged results table on request");
        s_table_free (&tiny);
    }

    //  Cancel from another thread, then a time limit; each query has an id
    //  of ours, and the session is known, to look for it on the server
    s_table_t whoami = { 0 };
    if (so->whoami)
        s_read_all (src, so->whoami, NULL, 0, &whoami, err);
    const char *session = whoami.nrows == 1 && whoami.cells [0] ? whoami.cells [0] : "0";
    char query_id [64];
    snprintf (query_id, sizeof (query_id), "dbt-drivertest-%d-cancel", (int) getpid ());
    dbt_query_opts_t named = { .query_id = query_id };
    s_canceller_t canceller = { src, 300 };
    pthread_t thread;
    int64_t ms, rows;
    pthread_create (&thread, NULL, s_canceller, &canceller);
    rc = s_run_timed (src, so->slow, &named, &ms, &rows, err);
    pthread_join (thread, NULL);
    if (!s_ok (rc == DBT_ECANCELED && ms < 2300, "cancel from another thread stops the query"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, ms, err);
    s_diag ("cancelled after %" PRId64 " ms: %s", ms, err);
    s_check_gone (&pair, session, query_id, so->slow, "cancelled");
    rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the connection works after a cancel");
    snprintf (query_id, sizeof (query_id), "dbt-drivertest-%d-limit", (int) getpid ());
    dbt_query_opts_t limit = { .timeout_ms = 300, .query_id = query_id };
    rc = s_run_timed (src, so->slow, &limit, &ms, &rows, err);
    if (!s_ok (rc == DBT_ETIMEDOUT && ms < 2300, "a time limit stops the query"))
        s_diag ("rc %d after %" PRId64 " ms: %s", rc, ms, err);
    s_diag ("stopped by its time limit after %" PRId64 " ms: %s", ms, err);
    s_check_gone (&pair, session, query_id, so->slow, "timed-out");
    rc = s_run_timed (src, so->pause, NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the next query runs without the limit");
    s_ok (!dbt_conn_broken (src), "source connection still healthy");

    //  An error in mid-stream comes back from fetch, never as a clean end
    rc = s_run_timed (src, so->midsql, NULL, &ms, &rows, err);
    if (!s_ok (rc < 0 && rows > 0 && rows < 200000 && (!so->midsays || strstr (err, so->midsays)),
               "an error in mid-stream is an error"))
        s_diag ("rc %d after %" PRId64 " rows", rc, rows);
    s_diag ("mid-stream error after %" PRId64 " rows: %s", rows, err);
    rc = s_run_timed (src, "SELECT 1", NULL, &ms, &rows, err);
    s_ok (rc == 0 && rows == 1, "the connection works after a mid-stream error");

    //  Abandoning a query half-way leaves the connection usable
    snprintf (query_id, sizeof (query_id), "dbt-drivertest-%d-abandon", (int) getpid ());
    rc = dbt_conn_query (src, so->million, NULL, &named, err);
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
    s_check_gone (&pair, session, query_id, so->million, "abandoned");

    //  Streaming: memory does not grow with the result
    if (so->big) {
        long before = s_maxrss_mb ();
        rc = s_run_timed (src, so->big, NULL, &ms, &rows, err);
        long after = s_maxrss_mb ();
        s_diag ("2,000,000 rows (~400 MB) read in %" PRId64 " ms; max RSS %ld MB before, %ld MB after",
                ms, before, after);
        s_ok (rc == 0 && rows == 2000000, "2M rows stream to the end");
        s_ok_rss (true, after - before, "2M rows stream in bounded memory");
    }
    //  ...and through the results writer
    {
        const char *gen = so->gen;
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
    if (so->kill) {
        bool killed = so->kill (argv [2], session);
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
