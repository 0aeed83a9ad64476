/*  =========================================================================
    dbt_driver_pg - PostgreSQL source and results driver (libpq)

    See dbt_driver_pg.h. A handle owns one PGconn, used by one thread at a
    time, and a PGcancel that cancel uses from any thread (PQcancel is
    thread-safe). Sessions are set up so that text output is already in the
    canonical form (DateStyle ISO, TimeZone UTC, extra_float_digits 3).

    Reading streams in single-row mode (PQsetSingleRowMode): one PGresult per
    row, freed at the next fetch, so memory does not grow with the result.
    It measured 1.5x faster than a cursor with FETCH FORWARD 10000 (3.0M vs
    2.0M rows/s, bench/pg_bench.c: the server produces rows while we consume
    them, where a cursor alternates), needs no transaction, and keeps
    parallel plans, which a cursor never gets.

    Writing sends nothing at write_begin: rows are collected as the
    literal tuples of an INSERT (quoted by PQescapeStringConn). A result
    that stays under S_INLINE_MAX bytes is written by write_commit in one
    round trip, one simple-query string: BEGIN; DROP TABLE IF EXISTS final;
    CREATE [UNLOGGED] TABLE final (...); INSERT INTO final VALUES ...;
    COMMIT (the old table stays readable until the DROP, which runs in the
    same message as the COMMIT, so readers see the old complete table or
    the new one). A larger result switches to COPY: BEGIN; CREATE TABLE
    stage; INSERT INTO stage VALUES <collected rows>; COPY stage FROM STDIN;
    DROP TABLE IF EXISTS final; ALTER TABLE stage RENAME TO final; COMMIT
    as one string: the server runs the statements after the COPY once the
    copy data ends, so the whole write is two round trips (the swap is a
    third one only when the final name was not known at write_begin). An
    error (or a COPY ended with an error by write_abort) skips the rest of
    the string, so the swap and the COMMIT never run after a failure.
    =========================================================================
*/
#include "dbt_classes.h"
#include <libpq-fe.h>
#include <stdatomic.h>

//  Bytes of COPY data collected before one PQputCopyData call.
#define S_COPY_CHUNK (512 * 1024)

//  Bytes of INSERT tuples collected before a write switches to COPY.
#define S_INLINE_MAX (64 * 1024)

//  Default connect timeout when the config gives none.
#define S_CONNECT_TIMEOUT_S 30

typedef struct {
    PGconn *conn;               //  the connection (owned)
    PGcancel *cancel;           //  cancel request object (owned)
    atomic_bool canceled;       //  cancel was called for the running query
    bool unlogged;              //  results: always create UNLOGGED tables
    int64_t stmt_timeout_ms;    //  the session's statement_timeout, 0 none

    //  Running query
    bool in_query;              //  results of a query are being read
    bool done;                  //  the query's results are all read
    PGresult *res;              //  current row (single-row mode) (owned)
    bool have_row;              //  res holds a row not yet fetched
    dbt_column_t *cols;         //  result columns (owned)
    size_t ncols;               //  number of result columns
    const char **vals;          //  cells handed out by fetch
    size_t *lens;               //  cell lengths handed out by fetch
    int64_t timeout_ms;         //  the running query's limit (for errors)

    //  Results write
    bool in_txn;                //  the write transaction is open
    bool in_copy;               //  COPY FROM STDIN is in progress
    bool tail_swap;             //  the COPY's query string goes on with the
                                //  swap into wfinal and the COMMIT
    dbt_buf_t copy;             //  rows not yet sent: INSERT tuples before
                                //  the COPY starts, COPY text after
    char *wdefs;                //  the column definitions "(a bigint, ...)"
                                //  (owned), NULL when no write is open
    char *wtable;               //  the staging table's name (owned)
    char *wfinal;               //  the final name known at begin (owned)
    bool wunlogged;             //  create the table UNLOGGED
    bool wsettimeout;           //  reset statement_timeout first
    char **wnames;              //  staging table column names (owned)
    size_t wncols;              //  number of staging table columns
    int64_t wrows;              //  rows written so far
} s_pg_t;

//  --------------------------------------------------------------------------
//  Pure helpers (tested in dbt_driver_pg_test)

//  Well-known type OIDs (pg_type.dat), for column types and source_type.
static const struct {
    unsigned oid;               //  type oid
    const char *name;           //  format_type name
    dbt_coltype_t type;         //  canonical type
} s_types [] = {
    { 16, "boolean", DBT_COL_BOOLEAN },
    { 17, "bytea", DBT_COL_TEXT },
    { 18, "\"char\"", DBT_COL_TEXT },
    { 19, "name", DBT_COL_TEXT },
    { 20, "bigint", DBT_COL_BIGINT },
    { 21, "smallint", DBT_COL_BIGINT },
    { 23, "integer", DBT_COL_BIGINT },
    { 25, "text", DBT_COL_TEXT },
    { 26, "oid", DBT_COL_BIGINT },
    { 114, "json", DBT_COL_TEXT },
    { 142, "xml", DBT_COL_TEXT },
    { 199, "json[]", DBT_COL_TEXT },
    { 650, "cidr", DBT_COL_TEXT },
    { 700, "real", DBT_COL_DOUBLE },
    { 701, "double precision", DBT_COL_DOUBLE },
    { 790, "money", DBT_COL_TEXT },
    { 829, "macaddr", DBT_COL_TEXT },
    { 869, "inet", DBT_COL_TEXT },
    { 1000, "boolean[]", DBT_COL_TEXT },
    { 1005, "smallint[]", DBT_COL_TEXT },
    { 1007, "integer[]", DBT_COL_TEXT },
    { 1009, "text[]", DBT_COL_TEXT },
    { 1015, "character varying[]", DBT_COL_TEXT },
    { 1016, "bigint[]", DBT_COL_TEXT },
    { 1021, "real[]", DBT_COL_TEXT },
    { 1022, "double precision[]", DBT_COL_TEXT },
    { 1042, "character", DBT_COL_TEXT },
    { 1043, "character varying", DBT_COL_TEXT },
    { 1082, "date", DBT_COL_DATE },
    { 1083, "time without time zone", DBT_COL_TEXT },
    { 1114, "timestamp without time zone", DBT_COL_TIMESTAMP },
    { 1115, "timestamp without time zone[]", DBT_COL_TEXT },
    { 1182, "date[]", DBT_COL_TEXT },
    { 1184, "timestamp with time zone", DBT_COL_TIMESTAMPTZ },
    { 1185, "timestamp with time zone[]", DBT_COL_TEXT },
    { 1186, "interval", DBT_COL_TEXT },
    { 1231, "numeric[]", DBT_COL_TEXT },
    { 1266, "time with time zone", DBT_COL_TEXT },
    { 1560, "bit", DBT_COL_TEXT },
    { 1562, "bit varying", DBT_COL_TEXT },
    { 1700, "numeric", DBT_COL_DECIMAL },
    { 2278, "void", DBT_COL_TEXT },
    { 2950, "uuid", DBT_COL_TEXT },
    { 2951, "uuid[]", DBT_COL_TEXT },
    { 3802, "jsonb", DBT_COL_TEXT },
    { 3807, "jsonb[]", DBT_COL_TEXT },
    { 1041, "inet[]", DBT_COL_TEXT },
    { 651, "cidr[]", DBT_COL_TEXT },
    { 1187, "interval[]", DBT_COL_TEXT },
};

//  TEXT types a PostgreSQL results table keeps exactly (docs/types.md):
//  their kind, or for arrays the canonical type or kind of the elements.
//  real[] is not among them (a real read as its shortest text is not the
//  same value in double precision[]).
static const struct {
    unsigned oid;               //  type oid
    dbt_colkind_t kind;         //  kind of the column
    dbt_coltype_t elem_type;    //  arrays: canonical type of the elements
    dbt_colkind_t elem_kind;    //  arrays of TEXT: kind of the elements
} s_kinds [] = {
    { 114, DBT_KIND_JSON, 0, 0 },
    { 3802, DBT_KIND_JSONB, 0, 0 },
    { 2950, DBT_KIND_UUID, 0, 0 },
    { 869, DBT_KIND_INET, 0, 0 },
    { 650, DBT_KIND_CIDR, 0, 0 },
    { 1186, DBT_KIND_INTERVAL, 0, 0 },
    { 1000, DBT_KIND_ARRAY, DBT_COL_BOOLEAN, 0 },
    { 1005, DBT_KIND_ARRAY, DBT_COL_BIGINT, 0 },
    { 1007, DBT_KIND_ARRAY, DBT_COL_BIGINT, 0 },
    { 1016, DBT_KIND_ARRAY, DBT_COL_BIGINT, 0 },
    { 1022, DBT_KIND_ARRAY, DBT_COL_DOUBLE, 0 },
    { 1231, DBT_KIND_ARRAY, DBT_COL_DECIMAL, 0 },
    { 1009, DBT_KIND_ARRAY, DBT_COL_TEXT, 0 },
    { 1015, DBT_KIND_ARRAY, DBT_COL_TEXT, 0 },
    { 1182, DBT_KIND_ARRAY, DBT_COL_DATE, 0 },
    { 1115, DBT_KIND_ARRAY, DBT_COL_TIMESTAMP, 0 },
    { 1185, DBT_KIND_ARRAY, DBT_COL_TIMESTAMPTZ, 0 },
    { 199, DBT_KIND_ARRAY, DBT_COL_TEXT, DBT_KIND_JSON },
    { 3807, DBT_KIND_ARRAY, DBT_COL_TEXT, DBT_KIND_JSONB },
    { 2951, DBT_KIND_ARRAY, DBT_COL_TEXT, DBT_KIND_UUID },
    { 1041, DBT_KIND_ARRAY, DBT_COL_TEXT, DBT_KIND_INET },
    { 651, DBT_KIND_ARRAY, DBT_COL_TEXT, DBT_KIND_CIDR },
    { 1187, DBT_KIND_ARRAY, DBT_COL_TEXT, DBT_KIND_INTERVAL },
};

#define S_OID_NUMERIC 1700
#define S_OID_NUMERIC_ARRAY 1231
#define S_OID_BPCHAR 1042
#define S_OID_VARCHAR 1043

//  Decode a numeric typmod (PostgreSQL 15 numeric.c: precision in the high
//  16 bits, an 11-bit signed scale in the low bits, offset by VARHDRSZ).
//  Unconstrained (-1) or a negative scale gives precision 0, scale -1.
static void
s_numeric_typmod (int typmod, int *precision, int *scale)
{
    *precision = 0;
    *scale = -1;
    if (typmod < 4)
        return;
    int p = ((typmod - 4) >> 16) & 0xffff;
    int s = (((typmod - 4) & 0x7ff) ^ 1024) - 1024;
    if (p < 1 || s < 0)
        return;
    *precision = p;
    *scale = s;
}

//  Fill a column's type from a type oid and typmod. source_type is new.
static void
s_column_type (unsigned oid, int typmod, dbt_column_t *col)
{
    col->type = DBT_COL_TEXT;
    col->precision = 0;
    col->scale = -1;
    const char *name = NULL;
    for (size_t i = 0; i < sizeof (s_types) / sizeof (s_types [0]); i++)
        if (s_types [i].oid == oid) {
            col->type = s_types [i].type;
            name = s_types [i].name;
            break;
        }
    col->kind = DBT_KIND_NONE;
    for (size_t i = 0; i < sizeof (s_kinds) / sizeof (s_kinds [0]); i++)
        if (s_kinds [i].oid == oid) {
            col->kind = s_kinds [i].kind;
            col->elem_type = s_kinds [i].elem_type;
            col->elem_kind = s_kinds [i].elem_kind;
            break;
        }
    if (oid == S_OID_NUMERIC_ARRAY) {
        s_numeric_typmod (typmod, &col->precision, &col->scale);
        col->source_type = col->precision
                         ? dbt_printf ("numeric(%d,%d)[]", col->precision, col->scale)
                         : dbt_strdup ("numeric[]");
    }
    else
    if (oid == S_OID_NUMERIC) {
        s_numeric_typmod (typmod, &col->precision, &col->scale);
        col->source_type = col->precision
                         ? dbt_printf ("numeric(%d,%d)", col->precision, col->scale)
                         : dbt_strdup ("numeric");
    }
    else
    if ((oid == S_OID_VARCHAR || oid == S_OID_BPCHAR) && typmod >= 4)
        col->source_type = dbt_printf ("%s(%d)", name, typmod - 4);
    else
    if (name)
        col->source_type = dbt_strdup (name);
    else
        col->source_type = dbt_printf ("oid:%u", oid);
}

//  PostgreSQL type of a TEXT kind; NULL for plain text. Static.
static const char *
s_kind_type (dbt_colkind_t kind)
{
    switch (kind) {
        case DBT_KIND_JSON:     return "json";
        case DBT_KIND_JSONB:    return "jsonb";
        case DBT_KIND_UUID:     return "uuid";
        case DBT_KIND_INET:     return "inet";
        case DBT_KIND_CIDR:     return "cidr";
        case DBT_KIND_INTERVAL: return "interval";
        default:                return NULL;
    }
}

static const char *s_scalar_type (const dbt_column_t *col, char *buf, size_t size);

//  PostgreSQL type of a results column (into buf when it needs formatting).
static const char *
s_sql_type (const dbt_column_t *col, char *buf, size_t size)
{
    if (col->type == DBT_COL_TEXT && col->kind == DBT_KIND_ARRAY) {
        //  Elements as a scalar column of their own, then []
        dbt_column_t elem = *col;
        elem.type = col->elem_type;
        elem.kind = col->elem_type == DBT_COL_TEXT ? col->elem_kind : DBT_KIND_NONE;
        if (elem.kind == DBT_KIND_ARRAY || elem.type == DBT_COL_UBIGINT)
            return "text";
        char inner [48];
        snprintf (buf, size, "%s[]", s_scalar_type (&elem, inner, sizeof (inner)));
        return buf;
    }
    return s_scalar_type (col, buf, size);
}

//  PostgreSQL type of a results column that is not an array. Static or buf.
static const char *
s_scalar_type (const dbt_column_t *col, char *buf, size_t size)
{
    if (col->type == DBT_COL_TEXT && s_kind_type (col->kind))
        return s_kind_type (col->kind);
    switch (col->type) {
        case DBT_COL_BIGINT:      return "bigint";
        case DBT_COL_UBIGINT:     return "numeric(20,0)";
        case DBT_COL_DOUBLE:      return "double precision";
        case DBT_COL_BOOLEAN:     return "boolean";
        case DBT_COL_DATE:        return "date";
        case DBT_COL_TIMESTAMP:   return "timestamp";
        case DBT_COL_TIMESTAMPTZ: return "timestamptz";
        case DBT_COL_DECIMAL:
            if (col->precision > 0 && col->precision <= 1000 && col->scale >= 0
            &&  col->scale <= col->precision) {
                snprintf (buf, size, "numeric(%d,%d)", col->precision, col->scale);
                return buf;
            }
            return "numeric";
        case DBT_COL_TEXT:
            break;
    }
    return "text";
}

//  Append one cell in COPY text format to buf (NULL as \N). Returns 0, or
//  -1 when the value holds a NUL byte (PostgreSQL text cannot store it).
static int
s_copy_cell (dbt_buf_t *buf, const char *val, size_t len)
{
    return dbt_cell_tsv (buf, val, len, false);
}

//  Copy text into a NUL-terminated error message without trailing newlines.
static void
s_trim_copy (char *err, const char *prefix, const char *msg)
{
    if (!msg || !*msg)
        msg = "unknown error";
    size_t len = strlen (msg);
    while (len > 0 && (msg [len - 1] == '\n' || msg [len - 1] == ' '))
        len--;
    dbt_err_set (err, "%s%.*s", prefix, (int) len, msg);
}

//  --------------------------------------------------------------------------
//  Errors

//  Set err from a failed result and return the matching code.
static int
s_result_error (s_pg_t *self, const PGresult *res, const char *what, char *err)
{
    if (!res || PQstatus (self->conn) == CONNECTION_BAD) {
        s_trim_copy (err, "postgres: connection lost: ", PQerrorMessage (self->conn));
        return DBT_ECONN;
    }
    const char *state = PQresultErrorField (res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);
    if (state && streq (state, "57014")) {
        if (atomic_load (&self->canceled)) {
            dbt_err_set (err, "query canceled");
            return DBT_ECANCELED;
        }
        if (self->timeout_ms > 0) {
            dbt_err_set (err, "query exceeded its time limit of %" PRId64 " ms",
                         self->timeout_ms);
            return DBT_ETIMEDOUT;
        }
    }
    if (!primary) {
        s_trim_copy (err, what, PQresultErrorMessage (res));
        return DBT_ERROR;
    }
    const char *detail = PQresultErrorField (res, PG_DIAG_MESSAGE_DETAIL);
    const char *context = PQresultErrorField (res, PG_DIAG_CONTEXT);
    dbt_err_set (err, "%s%s%s%s%s%s (SQLSTATE %s)", what, primary,
                 detail ? "; " : "", detail ? detail : "",
                 context ? "; " : "", context ? context : "", state ? state : "?");
    if (state && (strncmp (state, "08", 2) == 0 || streq (state, "57P01")
               || streq (state, "57P02") || streq (state, "57P03")))
        return DBT_ECONN;
    if (state && streq (state, "53100"))
        return DBT_EFULL;
    return DBT_ERROR;
}

//  Run sql expecting no rows. Returns 0 or an error code.
static int
s_exec (s_pg_t *self, const char *sql, const char *what, char *err)
{
    PGresult *res = PQexec (self->conn, sql);
    int rc = 0;
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        rc = s_result_error (self, res, what, err);
    PQclear (res);
    return rc;
}

//  Read and drop results until the connection is idle.
static void
s_drain (s_pg_t *self)
{
    PGresult *res;
    while ((res = PQgetResult (self->conn))) {
        ExecStatusType status = PQresultStatus (res);
        PQclear (res);
        if (status == PGRES_COPY_IN)
            PQputCopyEnd (self->conn, "abandoned");
        else
        if (status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH)
            break;              //  never started by this driver
        if (PQstatus (self->conn) == CONNECTION_BAD)
            break;
    }
}

//  Notices (e.g. "table does not exist, skipping") go to the debug log.
static void
s_notice (void *arg, const char *message)
{
    if (dbt_log_enabled (DBT_LOG_DEBUG)) {
        size_t len = strlen (message);
        while (len > 0 && message [len - 1] == '\n')
            len--;
        dbt_log (DBT_LOG_DEBUG, "postgres: %.*s", (int) len, message);
    }
}

//  --------------------------------------------------------------------------
//  Connect

static void s_disconnect (void **handle_p);

//  Set up a new (or reset) session: its settings and cancel handle.
static int
s_session (s_pg_t *self, char *err)
{
    PQfreeCancel (self->cancel);
    self->cancel = PQgetCancel (self->conn);
    self->stmt_timeout_ms = 0;
    int rc = s_exec (self, "SET DateStyle = 'ISO'; SET TimeZone = 'UTC'; "
                     "SET extra_float_digits = 3; SET IntervalStyle = 'postgres'; "
                     "SET client_encoding = 'UTF8'; SET statement_timeout = 0",
                     "postgres: cannot set up the session: ", err);
    if (rc == 0 && !self->cancel) {
        dbt_err_set (err, "postgres: cannot create a cancel handle");
        rc = DBT_ECONN;
    }
    return rc;
}

static int
s_connect (const dbt_dbconf_t *conf, void **handle_p, char *err)
{
    if (!conf->dsn || !*conf->dsn) {
        dbt_err_set (err, "postgres: empty dsn (a conninfo string or postgres:// URI)");
        return DBT_EINVAL;
    }
    int64_t timeout_s = conf->connect_timeout_ms > 0
                      ? (conf->connect_timeout_ms + 999) / 1000 : S_CONNECT_TIMEOUT_S;
    char timeout [24];
    snprintf (timeout, sizeof (timeout), "%" PRId64, timeout_s);
    //  The DSN comes last so that its own settings win over these defaults.
    const char *keys [] = {
        "connect_timeout", "application_name", "client_encoding", "dbname", NULL
    };
    const char *values [] = { timeout, "dungbeetle", "UTF8", conf->dsn, NULL };
    PGconn *conn = PQconnectdbParams (keys, values, 1);
    if (!conn) {
        dbt_err_set (err, "postgres: out of memory");
        return DBT_ECONN;
    }
    if (PQstatus (conn) != CONNECTION_OK) {
        s_trim_copy (err, "postgres: cannot connect: ", PQerrorMessage (conn));
        PQfinish (conn);
        return DBT_ECONN;
    }
    s_pg_t *self = (s_pg_t *) dbt_malloc (sizeof (s_pg_t));
    self->conn = conn;
    self->cancel = NULL;
    self->unlogged = conf->unlogged;
    atomic_init (&self->canceled, false);
    PQsetNoticeProcessor (conn, s_notice, NULL);
    int rc = s_session (self, err);
    if (rc) {
        void *handle = self;
        s_disconnect (&handle);
        return rc;
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
    s_pg_t *self = (s_pg_t *) *handle_p;
    if (!self)
        return;
    //  Both only talk to the server while the connection is good.
    s_query_end (self);
    s_write_abort (self, NULL);
    PQfreeCancel (self->cancel);
    PQfinish (self->conn);
    dbt_buf_free (&self->copy);
    free (self);
    *handle_p = NULL;
}

static bool
s_alive (void *handle)
{
    s_pg_t *self = (s_pg_t *) handle;
    return self && PQstatus (self->conn) == CONNECTION_OK;
}

//  --------------------------------------------------------------------------
//  Source side

static int
s_prepare (void *handle, const char *sql, int *nparams, char *err)
{
    s_pg_t *self = (s_pg_t *) handle;
    s_query_end (self);
    if (self->in_txn) {
        dbt_err_set (err, "postgres: cannot prepare during a results write");
        return DBT_EINVAL;
    }
    PGresult *res = PQprepare (self->conn, "", sql, 0, NULL);
    int rc = 0;
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        rc = s_result_error (self, res, "postgres: ", err);
    PQclear (res);
    if (rc)
        return rc;
    res = PQdescribePrepared (self->conn, "");
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        rc = s_result_error (self, res, "postgres: ", err);
    else
    if (nparams)
        *nparams = PQnparams (res);
    PQclear (res);
    return rc;
}

//  Build the columns from the first result of a query.
static void
s_build_columns (s_pg_t *self, const PGresult *res)
{
    size_t ncols = (size_t) PQnfields (res);
    self->ncols = ncols;
    self->cols = (dbt_column_t *) dbt_malloc ((ncols ? ncols : 1) * sizeof (dbt_column_t));
    self->vals = (const char **) dbt_malloc ((ncols ? ncols : 1) * sizeof (char *));
    self->lens = (size_t *) dbt_malloc ((ncols ? ncols : 1) * sizeof (size_t));
    for (size_t i = 0; i < ncols; i++) {
        self->cols [i].name = dbt_strdup (PQfname (res, (int) i));
        s_column_type ((unsigned) PQftype (res, (int) i), PQfmod (res, (int) i),
                       &self->cols [i]);
    }
}

//  Take the next result of the running query: 1 with a row in self->res,
//  0 at the clean end, or an error code.
static int
s_next (s_pg_t *self, char *err)
{
    PQclear (self->res);
    self->res = PQgetResult (self->conn);
    if (!self->res) {
        //  Without a final TUPLES_OK or error the stream did not end cleanly.
        if (PQstatus (self->conn) != CONNECTION_OK) {
            s_trim_copy (err, "postgres: connection lost: ", PQerrorMessage (self->conn));
            return DBT_ECONN;
        }
        self->done = true;
        return 0;
    }
    ExecStatusType status = PQresultStatus (self->res);
    if (status == PGRES_SINGLE_TUPLE)
        return 1;
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        s_drain (self);
        self->done = true;
        return 0;
    }
    int rc = s_result_error (self, self->res, "postgres: ", err);
    PQclear (self->res);
    self->res = NULL;
    s_drain (self);
    self->done = true;
    return rc;
}

static int
s_query (void *handle, const char *sql, const dbt_args_t *args,
         const dbt_query_opts_t *opts, char *err)
{
    s_pg_t *self = (s_pg_t *) handle;
    s_query_end (self);
    if (self->in_txn) {
        dbt_err_set (err, "postgres: cannot query during a results write");
        return DBT_EINVAL;
    }
    atomic_store (&self->canceled, false);
    self->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 0;
    //  statement_timeout is an int of milliseconds (at most about 24.8
    //  days): a longer limit is left to the worker, which cancels the
    //  query when the job's time is up.
    int64_t server_ms = self->timeout_ms <= INT_MAX ? self->timeout_ms : 0;
    int rc = 0;
    if (server_ms != self->stmt_timeout_ms) {
        char set [64];
        snprintf (set, sizeof (set), "SET statement_timeout = %" PRId64, server_ms);
        rc = s_exec (self, set, "postgres: cannot set statement_timeout: ", err);
        if (rc)
            return rc;
        self->stmt_timeout_ms = server_ms;
    }
    int sent;
    if (opts->raw)
        //  Raw tasks are not prepared; the server checks the arg count.
        sent = PQsendQueryParams (self->conn, sql, (int) args->count, NULL, args->vals,
                                  NULL, NULL, 0);
    else {
        int nparams = -1;
        rc = s_prepare (self, sql, &nparams, err);
        if (rc == 0)
            rc = dbt_args_check (nparams, args, err);
        if (rc)
            return rc;
        sent = PQsendQueryPrepared (self->conn, "", (int) args->count, args->vals,
                                    NULL, NULL, 0);
    }
    if (!sent) {
        s_trim_copy (err, "postgres: cannot send the query: ", PQerrorMessage (self->conn));
        return PQstatus (self->conn) == CONNECTION_OK ? DBT_ERROR : DBT_ECONN;
    }
    self->in_query = true;
    if (!PQsetSingleRowMode (self->conn)) {
        s_query_end (self);
        dbt_err_set (err, "postgres: cannot stream the query (single-row mode refused)");
        return DBT_ERROR;
    }
    rc = s_next (self, err);
    if (rc < 0) {
        s_query_end (self);
        return rc;
    }
    s_build_columns (self, self->res ? self->res : NULL);
    self->have_row = rc == 1;
    return 0;
}

static int
s_columns (void *handle, const dbt_column_t **cols, size_t *ncols)
{
    s_pg_t *self = (s_pg_t *) handle;
    *cols = self->cols;
    *ncols = self->cols ? self->ncols : 0;
    return self->cols ? 0 : DBT_EINVAL;
}

static int
s_fetch (void *handle, dbt_row_t *row, char *err)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (!self->in_query) {
        dbt_err_set (err, "postgres: no query is running");
        return DBT_EINVAL;
    }
    if (self->have_row)
        self->have_row = false;
    else {
        if (self->done)
            return 0;
        int rc = s_next (self, err);
        if (rc <= 0)
            return rc;
    }
    PGresult *res = self->res;
    for (size_t i = 0; i < self->ncols; i++) {
        if (PQgetisnull (res, 0, (int) i)) {
            self->vals [i] = NULL;
            self->lens [i] = 0;
        }
        else {
            self->vals [i] = PQgetvalue (res, 0, (int) i);
            self->lens [i] = (size_t) PQgetlength (res, 0, (int) i);
        }
    }
    row->ncols = self->ncols;
    row->vals = self->vals;
    row->lens = self->lens;
    return 1;
}

static void
s_query_end (void *handle)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (self->in_query && !self->done && PQstatus (self->conn) == CONNECTION_OK) {
        //  Rows are left: stop the query rather than read them all.
        char buf [256];
        PQcancel (self->cancel, buf, sizeof (buf));
        PQclear (self->res);
        self->res = NULL;
        s_drain (self);
    }
    PQclear (self->res);
    self->res = NULL;
    dbt_columns_free (&self->cols, self->ncols);
    free (self->vals);
    free (self->lens);
    self->vals = NULL;
    self->lens = NULL;
    self->ncols = 0;
    self->in_query = false;
    self->done = false;
    self->have_row = false;
}

static void
s_cancel (void *handle)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (!self || !self->cancel)
        return;
    atomic_store (&self->canceled, true);
    char buf [256];
    if (!PQcancel (self->cancel, buf, sizeof (buf)))
        dbt_log (DBT_LOG_WARN, "postgres: cancel request failed: %s", buf);
}

//  --------------------------------------------------------------------------
//  Results side

//  Forget the write state (not the transaction).
static void
s_write_reset (s_pg_t *self)
{
    for (size_t i = 0; i < self->wncols; i++)
        free (self->wnames [i]);
    free (self->wnames);
    self->wnames = NULL;
    self->wncols = 0;
    self->wrows = 0;
    free (self->wdefs);
    self->wdefs = NULL;
    free (self->wtable);
    self->wtable = NULL;
    free (self->wfinal);
    self->wfinal = NULL;
    self->tail_swap = false;
    dbt_buf_reset (&self->copy);
    //  A very large row grew the buffer: give the memory back.
    if (self->copy.cap > 4 * S_COPY_CHUNK)
        dbt_buf_free (&self->copy);
}

//  Append the start of a write's query string to sql: the timeout reset,
//  BEGIN, and the creation of table (dropping an older one first).
static void
s_write_head (s_pg_t *self, dbt_buf_t *sql, const char *qtable)
{
    if (self->wsettimeout)
        dbt_buf_puts (sql, "SET statement_timeout = 0; ");
    dbt_buf_printf (sql, "BEGIN; DROP TABLE IF EXISTS %s; CREATE %sTABLE %s %s; ", qtable,
                    self->wunlogged ? "UNLOGGED " : "", qtable, self->wdefs);
}

//  Append the collected INSERT tuples, if any, as an INSERT into qtable.
static void
s_write_inserts (s_pg_t *self, dbt_buf_t *sql, const char *qtable)
{
    if (self->copy.len == 0)
        return;
    dbt_buf_printf (sql, "INSERT INTO %s VALUES ", qtable);
    dbt_buf_append (sql, self->copy.data, self->copy.len);
    dbt_buf_puts (sql, "; ");
    dbt_buf_reset (&self->copy);
}

//  Append the swap of table into final and the COMMIT.
static void
s_write_swap (dbt_buf_t *sql, const char *table, const char *final)
{
    char *qtable = dbt_quote_ident (table, '"');
    char *qfinal = dbt_quote_ident (final, '"');
    if (strcmp (table, final) != 0)
        dbt_buf_printf (sql, "DROP TABLE IF EXISTS %s; ALTER TABLE %s RENAME TO %s; ",
                        qfinal, qtable, qfinal);
    dbt_buf_puts (sql, "COMMIT");
    free (qtable);
    free (qfinal);
}

//  Read every result of the query string sent last; the first failure sets
//  err (prefixed with what). Returns 0 or an error code.
static int
s_results (s_pg_t *self, const char *what, char *err)
{
    int rc = 0;
    PGresult *res;
    while ((res = PQgetResult (self->conn))) {
        ExecStatusType status = PQresultStatus (res);
        if (rc == 0 && status == PGRES_COPY_IN) {
            dbt_err_set (err, "%sunexpected COPY", what);
            rc = DBT_ERROR;
        }
        else
        if (rc == 0 && status != PGRES_COMMAND_OK)
            rc = s_result_error (self, res, what, err);
        PQclear (res);
        if (status == PGRES_COPY_IN)
            PQputCopyEnd (self->conn, "unexpected");
        else
        if (status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH)
            break;
        if (PQstatus (self->conn) == CONNECTION_BAD) {
            if (rc == 0)
                rc = s_result_error (self, NULL, what, err);
            break;
        }
    }
    return rc;
}

//  Switch a write that has collected too much for one message to COPY:
//  create the staging table, insert what was collected, start the COPY,
//  and when the final name is known, let the same string swap and commit.
static int
s_write_start_copy (s_pg_t *self, const char *table, char *err)
{
    char *qtable = dbt_quote_ident (table, '"');
    dbt_buf_t sql = { 0 };
    s_write_head (self, &sql, qtable);
    s_write_inserts (self, &sql, qtable);
    dbt_buf_printf (&sql, "COPY %s FROM STDIN", qtable);
    free (qtable);
    if (self->wfinal) {
        dbt_buf_puts (&sql, "; ");
        s_write_swap (&sql, table, self->wfinal);
        self->tail_swap = true;
    }
    self->wsettimeout = false;
    int rc = 0;
    if (!PQsendQuery (self->conn, sql.data)) {
        s_trim_copy (err, "postgres: cannot create the results table: ",
                     PQerrorMessage (self->conn));
        rc = DBT_ECONN;
    }
    dbt_buf_free (&sql);
    //  The statements before the COPY report first; the COPY stops there.
    PGresult *res;
    while (rc == 0 && (res = PQgetResult (self->conn))) {
        ExecStatusType status = PQresultStatus (res);
        if (status == PGRES_COPY_IN)
            self->in_copy = true;
        else
        if (status != PGRES_COMMAND_OK)
            rc = s_result_error (self, res, "postgres: cannot create the results table: ", err);
        PQclear (res);
        if (self->in_copy)
            break;
    }
    if (rc == 0 && !self->in_copy) {
        dbt_err_set (err, "postgres: cannot create the results table: the COPY did not start");
        rc = DBT_ERROR;
    }
    return rc;
}

static int
s_write_begin (void *handle, const char *table, const dbt_column_t *cols, size_t ncols,
               const dbt_table_opts_t *opts, char *err)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (self->in_txn) {
        dbt_err_set (err, "postgres: a results write is already in progress");
        return DBT_EINVAL;
    }
    s_query_end (self);
    atomic_store (&self->canceled, false);
    self->timeout_ms = 0;
    //  A results write has no time limit, whatever the last query had.
    self->wsettimeout = self->stmt_timeout_ms != 0;
    self->stmt_timeout_ms = 0;
    self->wunlogged = opts->unlogged || self->unlogged;
    dbt_buf_t defs = { 0 };
    dbt_buf_putc (&defs, '(');
    self->wnames = (char **) dbt_malloc ((ncols ? ncols : 1) * sizeof (char *));
    self->wncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        const char *name = cols [i].name ? cols [i].name : "";
        char *qname = dbt_quote_ident (name, '"');
        char type [48];
        dbt_buf_printf (&defs, "%s%s %s%s", i ? ", " : "", qname,
                        s_sql_type (&cols [i], type, sizeof (type)),
                        cols [i].not_null ? " NOT NULL" : "");
        free (qname);
        self->wnames [i] = dbt_strdup (name);
    }
    dbt_buf_putc (&defs, ')');
    self->wdefs = dbt_strdup (defs.data);
    dbt_buf_free (&defs);
    self->wtable = dbt_strdup (table);
    self->wfinal = opts->final ? dbt_strdup (opts->final) : NULL;
    dbt_buf_reset (&self->copy);
    self->in_txn = true;
    //  A table without columns has no INSERT tuples: start the COPY now.
    int rc = ncols == 0 ? s_write_start_copy (self, table, err) : 0;
    if (rc)
        s_write_abort (self, table);
    return rc;
}

//  Send the collected COPY data.
static int
s_flush (s_pg_t *self, char *err)
{
    if (self->copy.len == 0)
        return 0;
    if (PQputCopyData (self->conn, self->copy.data, (int) self->copy.len) != 1) {
        s_trim_copy (err, "postgres: cannot send results rows: ", PQerrorMessage (self->conn));
        return PQstatus (self->conn) == CONNECTION_OK ? DBT_ERROR : DBT_ECONN;
    }
    dbt_buf_reset (&self->copy);
    return 0;
}

//  Append one row as an INSERT tuple. Returns 0, or -1 (column i) for a
//  value PostgreSQL cannot store (a NUL byte, or bytes that are not valid
//  in the connection's encoding).
static int
s_tuple (s_pg_t *self, const dbt_row_t *row, size_t *bad)
{
    if (self->copy.len)
        dbt_buf_putc (&self->copy, ',');
    dbt_buf_putc (&self->copy, '(');
    for (size_t i = 0; i < row->ncols; i++) {
        if (i)
            dbt_buf_putc (&self->copy, ',');
        if (!row->vals [i]) {
            dbt_buf_puts (&self->copy, "NULL");
            continue;
        }
        if (memchr (row->vals [i], 0, row->lens [i])) {
            *bad = i;
            return -1;
        }
        dbt_buf_putc (&self->copy, '\'');
        dbt_buf_reserve (&self->copy, 2 * row->lens [i] + 3);
        int error = 0;
        size_t n = PQescapeStringConn (self->conn, self->copy.data + self->copy.len,
                                       row->vals [i], row->lens [i], &error);
        if (error) {
            *bad = i;
            return -1;
        }
        self->copy.len += n;
        dbt_buf_putc (&self->copy, '\'');
    }
    dbt_buf_putc (&self->copy, ')');
    return 0;
}

static int
s_write_row (void *handle, const dbt_row_t *row, char *err)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (!self->in_txn) {
        dbt_err_set (err, "postgres: no results write in progress");
        return DBT_EINVAL;
    }
    if (row->ncols != self->wncols) {
        dbt_err_set (err, "postgres: row has %zu cells, the results table %zu columns",
                     row->ncols, self->wncols);
        return DBT_EINVAL;
    }
    size_t mark = self->copy.len;
    if (!self->in_copy) {
        size_t bad = 0;
        if (s_tuple (self, row, &bad)) {
            self->copy.len = mark;
            dbt_err_set (err, "column '%s' row %" PRId64 ": the value contains a NUL byte "
                         "or bytes invalid in the connection's encoding, which PostgreSQL "
                         "text cannot store", self->wnames [bad], self->wrows + 1);
            return DBT_EINVAL;
        }
        self->wrows++;
        //  Too much for one message: go on with COPY.
        if (self->copy.len >= S_INLINE_MAX)
            return s_write_start_copy (self, self->wtable, err);
        return 0;
    }
    for (size_t i = 0; i < row->ncols; i++) {
        if (i)
            dbt_buf_putc (&self->copy, '\t');
        if (s_copy_cell (&self->copy, row->vals [i], row->lens [i])) {
            self->copy.len = mark;
            dbt_err_set (err, "column '%s' row %" PRId64 ": the value contains a NUL byte, "
                         "which PostgreSQL text cannot store", self->wnames [i],
                         self->wrows + 1);
            return DBT_EINVAL;
        }
    }
    dbt_buf_putc (&self->copy, '\n');
    self->wrows++;
    if (self->copy.len >= S_COPY_CHUNK)
        return s_flush (self, err);
    return 0;
}

static int
s_write_commit (void *handle, const char *table, const char *final, char *err)
{
    s_pg_t *self = (s_pg_t *) handle;
    if (!self->in_txn) {
        dbt_err_set (err, "postgres: no results write in progress");
        return DBT_EINVAL;
    }
    int rc = 0;
    if (!self->in_copy) {
        //  Everything fits one message: create under the final name, insert,
        //  commit.
        char *qfinal = dbt_quote_ident (final, '"');
        dbt_buf_t sql = { 0 };
        s_write_head (self, &sql, qfinal);
        s_write_inserts (self, &sql, qfinal);
        dbt_buf_puts (&sql, "COMMIT");
        free (qfinal);
        self->wsettimeout = false;
        //  The server first hears of this write here: a connection found
        //  dead now (a restarted server) is reset and the whole write sent
        //  again (it drops and creates the table itself, so twice is once).
        for (int tries = 0; tries < 2; tries++) {
            rc = 0;
            if (!PQsendQuery (self->conn, sql.data)) {
                s_trim_copy (err, "postgres: cannot write the results: ",
                             PQerrorMessage (self->conn));
                rc = DBT_ECONN;
            }
            if (rc == 0)
                rc = s_results (self, "postgres: cannot write the results: ", err);
            if (rc != DBT_ECONN || tries > 0)
                break;
            PQreset (self->conn);
            char inner [DBT_ERRMSG_LEN];
            if (PQstatus (self->conn) != CONNECTION_OK || s_session (self, inner))
                break;
            dbt_log (DBT_LOG_INFO, "postgres: results connection was lost (%s); reconnected, "
                     "writing again", err);
        }
        dbt_buf_free (&sql);
    }
    else {
        if (self->tail_swap && strcmp (final, self->wfinal) != 0) {
            dbt_err_set (err, "postgres: the write was begun for table '%s', not '%s'",
                         self->wfinal, final);
            rc = DBT_EINVAL;
        }
        if (rc == 0)
            rc = s_flush (self, err);
        if (rc == 0 && PQputCopyEnd (self->conn, NULL) != 1) {
            s_trim_copy (err, "postgres: cannot end the results COPY: ",
                         PQerrorMessage (self->conn));
            rc = DBT_ECONN;
        }
        if (rc == 0) {
            self->in_copy = false;
            rc = s_results (self, "postgres: cannot write the results: ", err);
        }
        if (rc == 0 && !self->tail_swap) {
            dbt_buf_t sql = { 0 };
            s_write_swap (&sql, table, final);
            rc = s_exec (self, sql.data, "postgres: cannot swap in the results table: ", err);
            dbt_buf_free (&sql);
        }
    }
    if (rc) {
        s_write_abort (self, table);
        return rc;
    }
    self->in_txn = false;
    s_write_reset (self);
    return 0;
}

static void
s_write_abort (void *handle, const char *table)
{
    s_pg_t *self = (s_pg_t *) handle;
    (void) table;
    if (self->in_copy && PQstatus (self->conn) == CONNECTION_OK) {
        //  Ending the COPY with an error skips the rest of its string: the
        //  swap and the COMMIT never run.
        PQputCopyEnd (self->conn, "results write aborted");
        s_drain (self);
    }
    self->in_copy = false;
    //  The staging table was created inside the transaction: rolling back
    //  removes it.
    if (PQstatus (self->conn) == CONNECTION_OK
    &&  PQtransactionStatus (self->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec (self->conn, "ROLLBACK");
        PQclear (res);
        //  A statement_timeout reset sent with the write was rolled back
        //  too: the next query sets its own again.
        self->stmt_timeout_ms = -1;
    }
    self->in_txn = false;
    s_write_reset (self);
}

static int
s_drop_table (void *handle, const char *table, char *err)
{
    s_pg_t *self = (s_pg_t *) handle;
    s_query_end (self);
    char *qtable = dbt_quote_ident (table, '"');
    char *sql = dbt_printf ("DROP TABLE IF EXISTS %s", qtable);
    int rc = s_exec (self, sql, "postgres: cannot drop table: ", err);
    free (sql);
    free (qtable);
    return rc;
}

const dbt_driver_t dbt_driver_pg = {
    .name = "postgres",
    .alias = "postgresql",
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
    .max_identifier = 63
};

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test (offline; tests/dbt_drivertest runs the live checks)

//  COPY-encode cells into a fresh string; NULL when refused.
static char *
s_copy_of (const char *val, size_t len)
{
    dbt_buf_t buf = { 0 };
    dbt_buf_puts (&buf, "<");
    if (s_copy_cell (&buf, val, len)) {
        dbt_buf_free (&buf);
        return NULL;
    }
    dbt_buf_puts (&buf, ">");
    return dbt_buf_take (&buf);
}

void
dbt_driver_pg_test (bool verbose)
{
    //  Numeric typmods: numeric(12,2), numeric(1000,0), numeric(3,-2)
    //  (PostgreSQL 15), unconstrained.
    int p, s;
    s_numeric_typmod (((12 << 16) | 2) + 4, &p, &s);
    assert (p == 12 && s == 2);
    s_numeric_typmod (((1000 << 16) | 0) + 4, &p, &s);
    assert (p == 1000 && s == 0);
    s_numeric_typmod (((3 << 16) | (-2 & 0x7ff)) + 4, &p, &s);
    assert (p == 0 && s == -1);
    s_numeric_typmod (((5 << 16) | 7) + 4, &p, &s);
    assert (p == 5 && s == 7);
    s_numeric_typmod (-1, &p, &s);
    assert (p == 0 && s == -1);

    //  Column types and source types
    dbt_column_t col = { 0 };
    s_column_type (1700, ((24 << 16) | 6) + 4, &col);
    assert (col.type == DBT_COL_DECIMAL && col.precision == 24 && col.scale == 6);
    assert (streq (col.source_type, "numeric(24,6)"));
    free (col.source_type);
    s_column_type (1700, -1, &col);
    assert (col.type == DBT_COL_DECIMAL && col.precision == 0 && col.scale == -1);
    assert (streq (col.source_type, "numeric"));
    free (col.source_type);
    const struct {
        unsigned oid;
        int typmod;
        dbt_coltype_t type;
        const char *name;
    } cases [] = {
        { 20, -1, DBT_COL_BIGINT, "bigint" },
        { 21, -1, DBT_COL_BIGINT, "smallint" },
        { 23, -1, DBT_COL_BIGINT, "integer" },
        { 26, -1, DBT_COL_BIGINT, "oid" },
        { 700, -1, DBT_COL_DOUBLE, "real" },
        { 701, -1, DBT_COL_DOUBLE, "double precision" },
        { 16, -1, DBT_COL_BOOLEAN, "boolean" },
        { 1082, -1, DBT_COL_DATE, "date" },
        { 1114, 6, DBT_COL_TIMESTAMP, "timestamp without time zone" },
        { 1184, -1, DBT_COL_TIMESTAMPTZ, "timestamp with time zone" },
        { 1043, 14, DBT_COL_TEXT, "character varying(10)" },
        { 1042, 5, DBT_COL_TEXT, "character(1)" },
        { 25, -1, DBT_COL_TEXT, "text" },
        { 2950, -1, DBT_COL_TEXT, "uuid" },
        { 3802, -1, DBT_COL_TEXT, "jsonb" },
        { 1186, -1, DBT_COL_TEXT, "interval" },
        { 1016, -1, DBT_COL_TEXT, "bigint[]" },
        { 424242, -1, DBT_COL_TEXT, "oid:424242" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        s_column_type (cases [i].oid, cases [i].typmod, &col);
        assert (col.type == cases [i].type);
        assert (streq (col.source_type, cases [i].name));
        free (col.source_type);
    }

    //  Results column types
    char buf [48];
    dbt_column_t dec = { .type = DBT_COL_DECIMAL, .precision = 12, .scale = 2 };
    assert (streq (s_sql_type (&dec, buf, sizeof (buf)), "numeric(12,2)"));
    dec.precision = 0;
    dec.scale = -1;
    assert (streq (s_sql_type (&dec, buf, sizeof (buf)), "numeric"));
    dec.precision = 5;
    dec.scale = 7;
    assert (streq (s_sql_type (&dec, buf, sizeof (buf)), "numeric"));
    dbt_column_t ub = { .type = DBT_COL_UBIGINT };
    assert (streq (s_sql_type (&ub, buf, sizeof (buf)), "numeric(20,0)"));
    dbt_column_t tz = { .type = DBT_COL_TIMESTAMPTZ };
    assert (streq (s_sql_type (&tz, buf, sizeof (buf)), "timestamptz"));
    dbt_column_t txt = { .type = DBT_COL_TEXT };
    assert (streq (s_sql_type (&txt, buf, sizeof (buf)), "text"));

    //  Kept types: a source column's kind gives the same results type
    const struct {
        unsigned oid;
        int typmod;
        const char *sql;
    } kept [] = {
        { 114, -1, "json" }, { 3802, -1, "jsonb" }, { 2950, -1, "uuid" },
        { 869, -1, "inet" }, { 650, -1, "cidr" }, { 1186, -1, "interval" },
        { 1000, -1, "boolean[]" }, { 1005, -1, "bigint[]" }, { 1007, -1, "bigint[]" },
        { 1016, -1, "bigint[]" }, { 1022, -1, "double precision[]" },
        { 1231, ((10 << 16) | 3) + 4, "numeric(10,3)[]" }, { 1231, -1, "numeric[]" },
        { 1009, -1, "text[]" }, { 1015, -1, "text[]" }, { 1182, -1, "date[]" },
        { 1115, -1, "timestamp[]" }, { 1185, -1, "timestamptz[]" }, { 199, -1, "json[]" },
        { 3807, -1, "jsonb[]" }, { 2951, -1, "uuid[]" }, { 1041, -1, "inet[]" },
        { 651, -1, "cidr[]" }, { 1187, -1, "interval[]" },
        //  not kept: real[] (a real's shortest text is another double),
        //  xml, money, time
        { 1021, -1, "text" }, { 142, -1, "text" }, { 790, -1, "text" }, { 1083, -1, "text" },
    };
    for (size_t i = 0; i < sizeof (kept) / sizeof (kept [0]); i++) {
        memset (&col, 0, sizeof (col));
        s_column_type (kept [i].oid, kept [i].typmod, &col);
        if (!streq (s_sql_type (&col, buf, sizeof (buf)), kept [i].sql))
            fprintf (stderr, "pg: oid %u gave %s\n", kept [i].oid, s_sql_type (&col, buf, sizeof (buf)));
        assert (col.type == DBT_COL_TEXT || kept [i].oid == 0);
        assert (streq (s_sql_type (&col, buf, sizeof (buf)), kept [i].sql));
        free (col.source_type);
    }
    assert (streq (s_sql_type (&(dbt_column_t) { .type = DBT_COL_TEXT, .kind = DBT_KIND_ARRAY,
                                                 .elem_type = DBT_COL_UBIGINT }, buf, sizeof (buf)),
                   "text"));
    //  MariaDB JSON (kind jsonb on TEXT) becomes jsonb
    assert (streq (s_sql_type (&(dbt_column_t) { .type = DBT_COL_TEXT, .kind = DBT_KIND_JSONB },
                               buf, sizeof (buf)), "jsonb"));

    //  COPY text escaping
    char *copy = s_copy_of ("plain", 5);
    assert (streq (copy, "<plain>"));
    free (copy);
    copy = s_copy_of ("a\tb\nc\rd\\e", 9);
    assert (streq (copy, "<a\\tb\\nc\\rd\\\\e>"));
    free (copy);
    copy = s_copy_of ("\\.", 2);
    assert (streq (copy, "<\\\\.>"));
    free (copy);
    copy = s_copy_of ("", 0);
    assert (streq (copy, "<>"));
    free (copy);
    copy = s_copy_of (NULL, 0);
    assert (streq (copy, "<\\N>"));
    free (copy);
    copy = s_copy_of ("\\N", 2);
    assert (streq (copy, "<\\\\N>"));
    free (copy);
    copy = s_copy_of ("\xe6\x97\xa5\xf0\x9f\xaa\xb2", 7);
    assert (streq (copy, "<\xe6\x97\xa5\xf0\x9f\xaa\xb2>"));
    free (copy);
    assert (s_copy_of ("a\0b", 3) == NULL);
    //  A long value with escapes at both ends
    char longval [10000];
    memset (longval, 'x', sizeof (longval));
    longval [0] = '\t';
    longval [sizeof (longval) - 1] = '\n';
    copy = s_copy_of (longval, sizeof (longval));
    assert (copy && strlen (copy) == sizeof (longval) + 4);
    assert (strncmp (copy, "<\\tx", 4) == 0 && streq (copy + strlen (copy) - 4, "x\\n>"));
    free (copy);

    //  Error trimming
    char err [DBT_ERRMSG_LEN];
    s_trim_copy (err, "p: ", "bad thing\n");
    assert (streq (err, "p: bad thing"));
    s_trim_copy (err, "p: ", NULL);
    assert (streq (err, "p: unknown error"));

    //  Connecting to a port nobody listens on fails cleanly, as ECONN.
    dbt_dbconf_t conf = {
        .name = "nope", .type = "postgres", .connect_timeout_ms = 1500,
        .dsn = "host=127.0.0.1 port=1 user=nobody dbname=nothing"
    };
    void *handle = NULL;
    assert (s_connect (&conf, &handle, err) == DBT_ECONN && handle == NULL);
    assert (strstr (err, "postgres: cannot connect: "));
    conf.dsn = "postgres://nobody@127.0.0.1:1/nothing?sslmode=disable";
    assert (s_connect (&conf, &handle, err) == DBT_ECONN);
    conf.dsn = "";
    assert (s_connect (&conf, &handle, err) == DBT_EINVAL);
    conf.dsn = "host=127.0.0.1 port=1 bogus_keyword=1";
    assert (s_connect (&conf, &handle, err) == DBT_ECONN);
    assert (strstr (err, "bogus_keyword"));
    s_disconnect (&handle);
    if (verbose)
        printf ("driver_pg: ok\n");
}
#endif  //  DBT_SELFTEST
