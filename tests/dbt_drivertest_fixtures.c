/*  =========================================================================
    dbt_drivertest_fixtures - the fixtures of dbt_drivertest, the values
    expected back from them, and each database's own client

    See dbt_drivertest_fixtures.h. The fixture tables are const data; the
    functions that talk to a server open a connection of their own and
    close it before they return.
    =========================================================================
*/
#include "dbt_drivertest_fixtures.h"
#include <sqlite3.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <curl/curl.h>

#define LONG_TEXT 100000

//  --------------------------------------------------------------------------
//  The standard fixture: SQLite, PostgreSQL, MariaDB

#define STD_NCOLS 9
#define STD_NROWS 7

static const dbt_dt_col_t s_std_cols [STD_NCOLS] = {
    { "id", DBT_COL_BIGINT, "INTEGER", "bigint", "BIGINT", NULL },
    { "i64", DBT_COL_BIGINT, "BIGINT", "bigint", "BIGINT", NULL },
    { "dec", DBT_COL_DECIMAL, "DECIMAL_TEXT(24,6)", "numeric(24,6)", "DECIMAL(24,6)", NULL },
    { "f", DBT_COL_DOUBLE, "DOUBLE", "double precision", "DOUBLE", NULL },
    { "b", DBT_COL_BOOLEAN, "BOOLEAN", "boolean", "BOOLEAN", NULL },
    { "d", DBT_COL_DATE, "DATE", "date", "DATE", NULL },
    { "ts", DBT_COL_TIMESTAMP, "TIMESTAMP", "timestamp", "DATETIME(6)", NULL },
    { "tz", DBT_COL_TIMESTAMPTZ, "TIMESTAMPTZ", "timestamptz", "TIMESTAMP(6) NULL", NULL },
    { "txt", DBT_COL_TEXT, "TEXT", "text", "LONGTEXT", NULL }
};

static const char *s_std_want [STD_NROWS][STD_NCOLS] = {
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

//  A zone to convert on the way in.
static const dbt_dt_input_t s_std_inputs [] = {
    { 1, 7, "2000-01-01 05:30:00+05:30" },
    { 0, 0, NULL }
};

const dbt_dt_fixture_t dbt_dt_fixture_std = {
    s_std_cols, STD_NCOLS, STD_NROWS, &s_std_want [0][0], s_std_inputs, 2, true, NULL
};

//  MariaDB has no NaN, no infinities and no TIMESTAMP before 1970
const dbt_dt_fixture_t dbt_dt_fixture_mariadb = {
    s_std_cols, STD_NCOLS, STD_NROWS, &s_std_want [0][0], s_std_inputs, 2, false,
    "1970-01-01 00:00:01"
};

//  --------------------------------------------------------------------------
//  The ClickHouse fixture: what ClickHouse 18.16 can hold of the above (b
//  is UInt8: 18.16 has no Bool; tz is DateTime, whole seconds; no years
//  before 1970; no NaN decimals) and types of its own

#define CH_NCOLS 15

static const dbt_dt_col_t s_ch_cols [CH_NCOLS] = {
    { "id", DBT_COL_BIGINT, .ch_type = "Int64" },
    { "i64", DBT_COL_BIGINT, .ch_type = "Nullable(Int64)" },
    { "u64", DBT_COL_UBIGINT, .ch_type = "Nullable(UInt64)" },
    { "dec", DBT_COL_DECIMAL, .ch_type = "Nullable(Decimal(24, 6))" },
    { "f", DBT_COL_DOUBLE, .ch_type = "Nullable(Float64)" },
    { "f32", DBT_COL_DOUBLE, .ch_type = "Nullable(Float32)" },
    { "b", DBT_COL_BIGINT, .ch_type = "Nullable(UInt8)" },
    { "d", DBT_COL_DATE, .ch_type = "Nullable(Date)" },
    { "tz", DBT_COL_TIMESTAMPTZ, .ch_type = "Nullable(DateTime('UTC'))" },
    { "txt", DBT_COL_TEXT, .ch_type = "Nullable(String)" },
    { "fs", DBT_COL_TEXT, .ch_type = "Nullable(FixedString(3))" },
    { "lc", DBT_COL_TEXT, .ch_type = "LowCardinality(Nullable(String))" },
    { "en", DBT_COL_TEXT, .ch_type = "Nullable(Enum8('a' = 1, 'b\\'q' = 2))" },
    { "uu", DBT_COL_TEXT, .ch_type = "Nullable(UUID)" },
    { "arr", DBT_COL_TEXT, .ch_type = "Array(Nullable(String))" }
};

static const char *s_ch_want [STD_NROWS][CH_NCOLS] = {
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

const dbt_dt_fixture_t dbt_dt_fixture_ch = {
    s_ch_cols, CH_NCOLS, STD_NROWS, &s_ch_want [0][0], NULL, 3, true, NULL
};

//  --------------------------------------------------------------------------
//  The 100 KB text. Caller frees.

char *
dbt_dt_long_text (void)
{
    dbt_buf_t buf = { 0 };
    static const char *parts [] = { "abcdefghij", "\xc3\xa9", "\xe2\x82\xac", "\t", "\\", "\n" };
    for (size_t i = 0; buf.len < LONG_TEXT; i++)
        dbt_buf_puts (&buf, parts [i % 6]);
    return dbt_buf_take (&buf);
}

//  True for the values MariaDB has no room for: NaN, infinities.
static bool
s_special (const char *val)
{
    return val && (streq (val, "NaN") || streq (val, "Infinity") || streq (val, "-Infinity")
                || streq (val, "infinity") || streq (val, "-infinity"));
}

//  --------------------------------------------------------------------------
//  True when cell (r, i) is not held by the source or (rules) the results.

bool
dbt_dt_unheld (const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules, size_t r, size_t i)
{
    assert (r < fx->nrows && i < fx->ncols);
    const char *want = fx->want [r * fx->ncols + i];
    if (!want)
        return false;
    if (!fx->specials && s_special (want))
        return true;
    if (fx->tz_min && fx->cols [i].type == DBT_COL_TIMESTAMPTZ && strcmp (want, fx->tz_min) < 0)
        return true;
    return rules && !rules->specials && s_special (want);
}

//  --------------------------------------------------------------------------
//  The type column i reads as from the source or (rules) the results.

dbt_coltype_t
dbt_dt_expected_type (const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules, size_t i)
{
    assert (i < fx->ncols);
    dbt_coltype_t type = fx->cols [i].type;
    if (rules && type == DBT_COL_TIMESTAMPTZ && !rules->zones)
        return DBT_COL_TIMESTAMP;
    if (rules && type == DBT_COL_UBIGINT && !rules->unsigned64)
        return DBT_COL_DECIMAL;
    return type;
}

//  --------------------------------------------------------------------------
//  The text cell (r, i) reads as: a TIMESTAMPTZ read back as TIMESTAMP
//  loses its "+00" (into buf, 64 bytes).

const char *
dbt_dt_expected (const dbt_dt_fixture_t *fx, const dbt_dt_results_t *rules, size_t r,
                 size_t i, const char *longtext, char *buf)
{
    const char *want = fx->want [r * fx->ncols + i];
    if (!want || dbt_dt_unheld (fx, rules, r, i))
        return NULL;
    if (streq (want, "@LONG"))
        return longtext;
    if (fx->cols [i].type == DBT_COL_TIMESTAMPTZ
    &&  dbt_dt_expected_type (fx, rules, i) == DBT_COL_TIMESTAMP) {
        snprintf (buf, 64, "%.*s", (int) strlen (want) - 3, want);
        return buf;
    }
    return want;
}

//  --------------------------------------------------------------------------
//  Fixture setup with each database's own client library

//  The input of cell (r, i): its canonical text or its listed input, the
//  long text for "@LONG", NULL for NULL and where the source has no room.
static const char *
s_input (const dbt_dt_fixture_t *fx, size_t r, size_t i, const char *longtext)
{
    const char *val = fx->want [r * fx->ncols + i];
    for (const dbt_dt_input_t *in = fx->inputs; in && in->text; in++)
        if (in->row == r && in->col == i)
            val = in->text;
    if (dbt_dt_unheld (fx, NULL, r, i))
        return NULL;
    return val && streq (val, "@LONG") ? longtext : val;
}

typedef enum { S_SQLITE, S_PG, S_MARIADB, S_CH } s_dialect_t;

//  The CREATE TABLE of fx in dialect, between head and tail. Caller frees.
static char *
s_create_sql (const dbt_dt_fixture_t *fx, s_dialect_t dialect, const char *head,
              const char *tail)
{
    dbt_buf_t sql = { 0 };
    dbt_buf_printf (&sql, "%sCREATE TABLE dbt_fixture (", head);
    for (size_t i = 0; i < fx->ncols; i++) {
        const dbt_dt_col_t *c = &fx->cols [i];
        const char *type = dialect == S_SQLITE ? c->sqlite_type : dialect == S_PG ? c->pg_type
                         : dialect == S_MARIADB ? c->my_type : c->ch_type;
        assert (type);
        dbt_buf_printf (&sql, dialect == S_MARIADB ? "%s`%s` %s" : "%s%s %s", i ? ", " : "",
                        c->name, type);
    }
    dbt_buf_printf (&sql, ")%s", tail);
    return dbt_buf_take (&sql);
}

//  The INSERT of one fixture row, with markers "?" or "$" (numbered).
//  Caller frees.
static char *
s_insert_sql (const dbt_dt_fixture_t *fx, char marker)
{
    dbt_buf_t sql = { 0 };
    dbt_buf_puts (&sql, "INSERT INTO dbt_fixture VALUES (");
    for (size_t i = 0; i < fx->ncols; i++)
        if (marker == '$')
            dbt_buf_printf (&sql, "%s$%zu", i ? "," : "", i + 1);
        else
            dbt_buf_puts (&sql, i ? ",?" : "?");
    dbt_buf_puts (&sql, ")");
    return dbt_buf_take (&sql);
}

int
dbt_dt_create_sqlite (const dbt_dt_fixture_t *fx, const char *dsn, const char *longtext,
                      char *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (dsn, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                              | SQLITE_OPEN_URI, NULL);
    char *create = s_create_sql (fx, S_SQLITE, "DROP TABLE IF EXISTS dbt_fixture; ", "");
    if (rc == SQLITE_OK)
        rc = sqlite3_exec (db, create, NULL, NULL, NULL);
    free (create);
    char *insert = s_insert_sql (fx, '?');
    sqlite3_stmt *stmt = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2 (db, insert, -1, &stmt, NULL);
    free (insert);
    for (size_t r = 0; rc == SQLITE_OK && r < fx->nrows; r++) {
        for (size_t i = 0; i < fx->ncols; i++) {
            const char *val = s_input (fx, r, i, longtext);
            dbt_coltype_t type = fx->cols [i].type;
            int idx = (int) i + 1;
            if (!val)
                sqlite3_bind_null (stmt, idx);
            else
            if (type == DBT_COL_BIGINT)
                sqlite3_bind_int64 (stmt, idx, strtoll (val, NULL, 10));
            else
            if (type == DBT_COL_DOUBLE && !streq (val, "NaN"))
                sqlite3_bind_double (stmt, idx, strtod (val, NULL));
            else
            if (type == DBT_COL_BOOLEAN)
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

int
dbt_dt_create_pg (const dbt_dt_fixture_t *fx, const char *dsn, const char *longtext,
                  char *err)
{
    PGconn *conn = PQconnectdb (dsn);
    if (PQstatus (conn) != CONNECTION_OK) {
        dbt_err_set (err, "pg fixture: %s", PQerrorMessage (conn));
        PQfinish (conn);
        return -1;
    }
    char *create = s_create_sql (fx, S_PG, "SET client_min_messages = warning; "
                                 "DROP TABLE IF EXISTS dbt_fixture; ", "");
    PGresult *res = PQexec (conn, create);
    free (create);
    int rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        dbt_err_set (err, "pg fixture: %s", PQresultErrorMessage (res));
    PQclear (res);
    char *insert = s_insert_sql (fx, '$');
    const char **vals = (const char **) dbt_malloc (fx->ncols * sizeof (char *));
    for (size_t r = 0; rc == 0 && r < fx->nrows; r++) {
        for (size_t i = 0; i < fx->ncols; i++)
            vals [i] = s_input (fx, r, i, longtext);
        res = PQexecParams (conn, insert, (int) fx->ncols, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_COMMAND_OK) {
            dbt_err_set (err, "pg fixture: %s", PQresultErrorMessage (res));
            rc = -1;
        }
        PQclear (res);
    }
    free (vals);
    free (insert);
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
int
dbt_dt_create_mariadb (const dbt_dt_fixture_t *fx, const char *dsn, const char *longtext,
                       char *err)
{
    err [0] = 0;
    MYSQL *mysql = s_mysql_open (dsn, err);
    if (!mysql)
        return -1;
    char *create = s_create_sql (fx, S_MARIADB, "", " DEFAULT CHARSET=utf8mb4");
    const char *setup [] = {
        "DROP TABLE IF EXISTS dbt_fixture, dbt_fixture_u, dbt_fixture_x, dbt_fixture_z",
        create,
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
    free (create);
    char *insert = s_insert_sql (fx, '?');
    MYSQL_STMT *stmt = rc ? NULL : mysql_stmt_init (mysql);
    if (stmt && mysql_stmt_prepare (stmt, insert, strlen (insert)))
        rc = -1;
    free (insert);
    MYSQL_BIND *binds = (MYSQL_BIND *) dbt_malloc (fx->ncols * sizeof (MYSQL_BIND));
    for (size_t r = 0; stmt && rc == 0 && r < fx->nrows; r++) {
        char tz [64] = "", zone [16] = "+00:00";
        memset (binds, 0, fx->ncols * sizeof (MYSQL_BIND));
        for (size_t i = 0; i < fx->ncols; i++) {
            const char *val = s_input (fx, r, i, longtext);
            if (val && fx->cols [i].type == DBT_COL_BOOLEAN)
                val = streq (val, "t") ? "1" : "0";
            //  A zone suffix becomes the session's zone for the row
            if (val && fx->cols [i].type == DBT_COL_TIMESTAMPTZ && strlen (val) > 19) {
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
    free (binds);
    if (stmt && rc && !*err)
        dbt_err_set (err, "mysql fixture: %s", mysql_stmt_error (stmt));
    if (stmt)
        mysql_stmt_close (stmt);
    mysql_close (mysql);
    return rc;
}

//  Reply callback: collect the body.
static size_t
s_ch_reply (char *data, size_t size, size_t nmemb, void *arg)
{
    dbt_buf_append ((dbt_buf_t *) arg, data, size * nmemb);
    return size * nmemb;
}

//  POST sql (then body, when given) to the ClickHouse server at url with
//  settings (a query string, may be empty); the reply into out. Returns 0,
//  or -1 with err set (HTTP status other than 200 included).
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

//  The fixture over HTTP, its rows as TabSeparated.
int
dbt_dt_create_ch (const dbt_dt_fixture_t *fx, const char *url, const char *longtext,
                  char *err)
{
    dbt_buf_t reply = { 0 }, tsv = { 0 };
    int rc = s_ch_post (url, "", "DROP TABLE IF EXISTS dbt_fixture", NULL, 0, &reply, err);
    char *create = s_create_sql (fx, S_CH, "", " ENGINE = Memory");
    if (rc == 0)
        rc = s_ch_post (url, "allow_experimental_low_cardinality_type=1", create, NULL, 0,
                        &reply, err);
    free (create);
    for (size_t r = 0; r < fx->nrows; r++)
        for (size_t i = 0; i < fx->ncols; i++) {
            const char *val = s_input (fx, r, i, longtext);
            dbt_coltype_t type = fx->cols [i].type;
            if (i)
                dbt_buf_putc (&tsv, '\t');
            if (!val)
                dbt_buf_puts (&tsv, "\\N");
            else
            if (type == DBT_COL_TIMESTAMPTZ)
                dbt_buf_append (&tsv, val, strlen (val) - 3);      //  without +00
            else
            if (strncmp (fx->cols [i].ch_type, "Array", 5) == 0)
                dbt_buf_puts (&tsv, val);   //  arrays are read quoted, not escaped
            else
            if (type == DBT_COL_DOUBLE)
                dbt_buf_puts (&tsv, streq (val, "NaN") ? "nan" : streq (val, "Infinity") ? "inf"
                                  : streq (val, "-Infinity") ? "-inf" : val);
            else
                s_tsv_escape (&tsv, val);
            if (i == fx->ncols - 1)
                dbt_buf_putc (&tsv, '\n');
        }
    if (rc == 0)
        rc = s_ch_post (url, "", "INSERT INTO dbt_fixture FORMAT TabSeparated", tsv.data,
                        tsv.len, &reply, err);
    dbt_buf_free (&reply);
    dbt_buf_free (&tsv);
    return rc;
}

//  --------------------------------------------------------------------------
//  The server seen from outside

bool
dbt_dt_kill_pg (const char *dsn, const char *session)
{
    PGconn *killer = PQconnectdb (dsn);
    char *kill = dbt_printf ("SELECT pg_terminate_backend(%s)", session);
    PGresult *res = PQexec (killer, kill);
    bool killed = PQresultStatus (res) == PGRES_TUPLES_OK && streq (PQgetvalue (res, 0, 0), "t");
    PQclear (res);
    PQfinish (killer);
    free (kill);
    return killed;
}

//  Run sql on a connection of its own to dsn; the first cell of its
//  result, as a number, into value (when not NULL). Returns 0 or -1.
static int
s_mysql_once (const char *dsn, const char *sql, long *value)
{
    char err [DBT_ERRMSG_LEN];
    MYSQL *mysql = s_mysql_open (dsn, err);
    int rc = mysql && mysql_query (mysql, sql) == 0 ? 0 : -1;
    MYSQL_RES *res = rc == 0 ? mysql_store_result (mysql) : NULL;
    MYSQL_ROW row = res ? mysql_fetch_row (res) : NULL;
    if (value)
        *value = row && row [0] ? strtol (row [0], NULL, 10) : -1;
    mysql_free_result (res);
    if (mysql)
        mysql_close (mysql);
    return rc;
}

bool
dbt_dt_kill_mariadb (const char *dsn, const char *session)
{
    char *kill = dbt_printf ("KILL %s", session);
    int rc = s_mysql_once (dsn, kill, NULL);
    free (kill);
    return rc == 0;
}

//  The session's processes whose statement is sql (compared as bytes).
long
dbt_dt_running_mariadb (const char *dsn, const char *session, const char *query_id,
                        const char *sql)
{
    (void) query_id;
    char *hex = (char *) dbt_malloc (2 * strlen (sql) + 1);
    mysql_hex_string (hex, sql, strlen (sql));
    char *count = dbt_printf ("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                              "WHERE ID = %s AND INFO = X'%s'", session, hex);
    long n = -1;
    if (s_mysql_once (dsn, count, &n))
        n = -1;
    free (count);
    free (hex);
    return n;
}

//  The rows of query_id in system.processes.
long
dbt_dt_running_ch (const char *url, const char *session, const char *query_id,
                   const char *sql)
{
    (void) session;
    (void) sql;
    dbt_buf_t reply = { 0 };
    char err [DBT_ERRMSG_LEN];
    char *count = dbt_printf ("SELECT count() FROM system.processes WHERE query_id = '%s'",
                              query_id);
    long n = s_ch_post (url, "", count, NULL, 0, &reply, err) ? -1
           : strtol (reply.data, NULL, 10);
    free (count);
    dbt_buf_free (&reply);
    return n;
}
