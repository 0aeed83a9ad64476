/*  =========================================================================
    dbt_driver_mariadb_read - the MariaDB driver's source side

    Part of dbt_driver_mariadb (see its header for the type mapping). A
    query's state lives in a dbt_mariadb_query_t from query to query_end.

    Prepared statements run unbuffered (mysql_stmt_execute, then
    mysql_stmt_fetch without mysql_stmt_store_result): one row packet is held
    at a time, so memory does not grow with the result. Integers, doubles
    and dates are bound typed and printed here; everything else is bound as
    a string buffer that grows when a value comes back truncated
    (mysql_stmt_fetch_column fetches it whole, and the buffer is rebound so
    later rows fit). Raw tasks without args use the text protocol
    (mysql_use_result), whose text is checked and made canonical the same
    way. A query abandoned with rows left is stopped with KILL QUERY before
    the rest is drained.
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_driver_mariadb_int.h"
#include <math.h>

//  Initial string buffer of a result column, at most (grows on demand).
#define S_BIND_START 8192

//  How a result column is bound and turned into canonical text.
typedef enum {
    S_READ_TEXT,                //  bytes as they come (string buffer)
    S_READ_INT,                 //  signed integer (int64)
    S_READ_UINT,                //  BIGINT UNSIGNED (uint64)
    S_READ_BOOL,                //  TINYINT(1): 0 or 1 (int64)
    S_READ_DOUBLE,              //  DOUBLE (double)
    S_READ_FLOAT,               //  FLOAT (float)
    S_READ_DATE,                //  DATE (MYSQL_TIME)
    S_READ_DATETIME,            //  DATETIME, TIMESTAMP (MYSQL_TIME)
    S_READ_BIT                  //  BIT: big-endian bytes, printed in decimal
} s_read_t;

//  Fetch state of one result column.
typedef struct {
    s_read_t read;              //  how the column is read
    union {
        int64_t i;              //  S_READ_INT, S_READ_BOOL
        uint64_t u;             //  S_READ_UINT
        double d;               //  S_READ_DOUBLE
        float f;                //  S_READ_FLOAT
        MYSQL_TIME t;           //  S_READ_DATE, S_READ_DATETIME
    } value;                    //  typed value of the current row
    char *buf;                  //  string value of the current row (owned)
    size_t cap;                 //  bytes allocated at buf
    unsigned long len;          //  length of the value
    my_bool is_null;            //  the value is NULL
    my_bool error;              //  the value did not fit buf
    char text [DBT_CELL_TIME_LEN];  //  canonical text of a converted value
} s_cell_t;

//  A running query.
struct _dbt_mariadb_query_t {
    dbt_mariadb_t *conn;        //  its connection
    bool done;                  //  the server sends no more (end or error)
    bool failed;                //  fetch returned an error: no more rows
    MYSQL_STMT *stmt;           //  prepared statement (owned), or NULL
    MYSQL_RES *res;             //  text protocol result (owned), or NULL
    dbt_column_t *cols;         //  result columns (owned)
    size_t ncols;               //  number of result columns
    s_cell_t *cells;            //  per-column fetch state (owned)
    MYSQL_BIND *binds;          //  result binds of stmt (owned)
    const char **vals;          //  cells handed out by fetch
    size_t *lens;               //  cell lengths handed out by fetch
    int64_t rowno;              //  rows fetched so far (1-based in errors)
};

//  --------------------------------------------------------------------------
//  Column types (pure; tested in dbt_mariadb_read_test)

//  Fill col's type, precision, scale and source_type (new) from a result
//  field's metadata; returns how the column is read.
static s_read_t
s_field_map (enum enum_field_types ftype, unsigned flags, unsigned long length,
             unsigned decimals, unsigned charsetnr, dbt_column_t *col)
{
    bool is_unsigned = flags & UNSIGNED_FLAG;
    bool binary = charsetnr == 63;
    const char *sign = is_unsigned ? " unsigned" : "";
    col->type = DBT_COL_TEXT;
    col->precision = 0;
    col->scale = -1;
    switch (ftype) {
        case MYSQL_TYPE_TINY:
            if (length == 1 && !is_unsigned) {
                col->type = DBT_COL_BOOLEAN;
                col->source_type = dbt_strdup ("tinyint(1)");
                return S_READ_BOOL;
            }
            col->type = DBT_COL_BIGINT;
            col->source_type = dbt_printf ("tinyint%s", sign);
            return S_READ_INT;
        case MYSQL_TYPE_SHORT:
        case MYSQL_TYPE_INT24:
        case MYSQL_TYPE_LONG:
            col->type = DBT_COL_BIGINT;
            col->source_type = dbt_printf ("%s%s", ftype == MYSQL_TYPE_SHORT ? "smallint"
                                           : ftype == MYSQL_TYPE_INT24 ? "mediumint" : "int",
                                           sign);
            return S_READ_INT;
        case MYSQL_TYPE_LONGLONG:
            col->type = is_unsigned ? DBT_COL_UBIGINT : DBT_COL_BIGINT;
            col->source_type = dbt_printf ("bigint%s", sign);
            return is_unsigned ? S_READ_UINT : S_READ_INT;
        case MYSQL_TYPE_DECIMAL:
        case MYSQL_TYPE_NEWDECIMAL: {
            //  length counts the digits, a point when there is a scale and
            //  a sign unless unsigned
            long p = (long) length - (decimals > 0) - !is_unsigned;
            col->type = DBT_COL_DECIMAL;
            if (decimals <= 38 && p >= 1 && p <= 65 && (long) decimals <= p) {
                col->precision = (int) p;
                col->scale = (int) decimals;
                col->source_type = dbt_printf ("decimal(%d,%d)%s", col->precision, col->scale,
                                               sign);
            }
            else
                col->source_type = dbt_printf ("decimal%s", sign);
            return S_READ_TEXT;
        }
        case MYSQL_TYPE_FLOAT:
            col->type = DBT_COL_DOUBLE;
            col->source_type = dbt_strdup ("float");
            return S_READ_FLOAT;
        case MYSQL_TYPE_DOUBLE:
            col->type = DBT_COL_DOUBLE;
            col->source_type = dbt_strdup ("double");
            return S_READ_DOUBLE;
        case MYSQL_TYPE_DATE:
        case MYSQL_TYPE_NEWDATE:
            col->type = DBT_COL_DATE;
            col->source_type = dbt_strdup ("date");
            return S_READ_DATE;
        case MYSQL_TYPE_DATETIME:
        case MYSQL_TYPE_DATETIME2:
        case MYSQL_TYPE_TIMESTAMP:
        case MYSQL_TYPE_TIMESTAMP2: {
            bool stamp = ftype == MYSQL_TYPE_TIMESTAMP || ftype == MYSQL_TYPE_TIMESTAMP2;
            col->type = stamp ? DBT_COL_TIMESTAMPTZ : DBT_COL_TIMESTAMP;
            col->source_type = decimals > 0 && decimals <= 6
                             ? dbt_printf ("%s(%u)", stamp ? "timestamp" : "datetime", decimals)
                             : dbt_strdup (stamp ? "timestamp" : "datetime");
            return S_READ_DATETIME;
        }
        case MYSQL_TYPE_BIT:
            col->source_type = dbt_printf ("bit(%lu)", length);
            return S_READ_BIT;
        case MYSQL_TYPE_TIME:
        case MYSQL_TYPE_TIME2:
            col->source_type = dbt_strdup ("time");
            return S_READ_TEXT;
        case MYSQL_TYPE_YEAR:
            col->source_type = dbt_strdup ("year");
            return S_READ_TEXT;
        case MYSQL_TYPE_NULL:
            col->source_type = dbt_strdup ("null");
            return S_READ_TEXT;
        case MYSQL_TYPE_JSON:
            col->source_type = dbt_strdup ("json");
            return S_READ_TEXT;
        case MYSQL_TYPE_GEOMETRY:
            col->source_type = dbt_strdup ("geometry");
            return S_READ_TEXT;
        case MYSQL_TYPE_TINY_BLOB:
        case MYSQL_TYPE_MEDIUM_BLOB:
        case MYSQL_TYPE_LONG_BLOB:
        case MYSQL_TYPE_BLOB:
            col->source_type = dbt_strdup (binary ? "blob" : "text");
            return S_READ_TEXT;
        default:
            break;
    }
    //  Strings: ENUM and SET come as strings with a flag
    const char *name = flags & ENUM_FLAG ? "enum"
                     : flags & SET_FLAG ? "set"
                     : ftype == MYSQL_TYPE_STRING ? (binary ? "binary" : "char")
                     : ftype == MYSQL_TYPE_VAR_STRING || ftype == MYSQL_TYPE_VARCHAR
                       ? (binary ? "varbinary" : "varchar") : NULL;
    col->source_type = name ? dbt_strdup (name) : dbt_printf ("type:%d", (int) ftype);
    return S_READ_TEXT;
}

//  Decimal text of a magnitude, with a sign when neg, into out (at least
//  21 bytes and NUL). Returns the length.
static int
s_int_text (uint64_t magnitude, bool neg, char *out)
{
    char digits [24];
    int n = 0;
    do {
        digits [n++] = (char) ('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    int len = 0;
    if (neg)
        out [len++] = '-';
    while (n > 0)
        out [len++] = digits [--n];
    out [len] = 0;
    return len;
}

//  Canonical text of a signed integer into out. Returns the length.
static int
s_int64_text (int64_t value, char *out)
{
    return s_int_text (value < 0 ? 0 - (uint64_t) value : (uint64_t) value, value < 0, out);
}

//  Shortest text that reads back as the same float (6 to 9 digits) into
//  out (at least DBT_CELL_DOUBLE_LEN bytes). Returns the length.
static int
s_float_text (float value, char *out, size_t size)
{
    if (!isfinite (value))
        return dbt_cell_double (value, out, size);
    int len = 0;
    for (int digits = 6; digits <= 9; digits++) {
        len = snprintf (out, size, "%.*g", digits, (double) value);
        if (strtof (out, NULL) == value)
            break;
    }
    return len;
}

//  Write n digits of value at out.
static void
s_put_digits (char *out, unsigned value, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out [i] = (char) ('0' + value % 10);
        value /= 10;
    }
}

//  Canonical DATE, TIMESTAMP or TIMESTAMPTZ text of a MYSQL_TIME into out
//  (at least DBT_CELL_TIME_LEN bytes). Returns the length, or -1 for a date
//  that does not exist (zero dates, zero months or days, Feb 30).
static int
s_time_text (const MYSQL_TIME *t, dbt_coltype_t type, char *out)
{
    static const unsigned mdays [] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (t->year % 4 == 0 && t->year % 100 != 0) || t->year % 400 == 0;
    if (t->year > 9999 || t->month < 1 || t->month > 12 || t->day < 1
    ||  t->day > mdays [t->month - 1] || (t->month == 2 && t->day == 29 && !leap))
        return -1;
    s_put_digits (out, t->year, 4);
    out [4] = '-';
    s_put_digits (out + 5, t->month, 2);
    out [7] = '-';
    s_put_digits (out + 8, t->day, 2);
    int len = 10;
    if (type != DBT_COL_DATE) {
        out [10] = ' ';
        s_put_digits (out + 11, t->hour % 100, 2);
        out [13] = ':';
        s_put_digits (out + 14, t->minute % 100, 2);
        out [16] = ':';
        s_put_digits (out + 17, t->second % 100, 2);
        len = 19;
        unsigned long frac = t->second_part % 1000000;
        if (frac) {
            out [len++] = '.';
            s_put_digits (out + len, (unsigned) frac, 6);
            len += 6;
            while (out [len - 1] == '0')
                len--;
        }
        if (type == DBT_COL_TIMESTAMPTZ) {
            memcpy (out + len, "+00", 3);
            len += 3;
        }
    }
    out [len] = 0;
    return len;
}

//  Decimal text of a BIT value (big-endian bytes, at most 8) into out.
//  Returns the length, or -1 when it has more than 8 bytes.
static int
s_bit_text (const char *bytes, size_t len, char *out)
{
    if (len > 8)
        return -1;
    uint64_t value = 0;
    for (size_t i = 0; i < len; i++)
        value = value << 8 | (unsigned char) bytes [i];
    return s_int_text (value, false, out);
}

//  --------------------------------------------------------------------------
//  Source side

//  The running statement's last error (a fetch may leave it on the
//  connection instead).
static int
s_stmt_error (dbt_mariadb_query_t *self, const char *what, char *err)
{
    if (mysql_stmt_errno (self->stmt))
        return dbt_mariadb_error (self->conn, mysql_stmt_errno (self->stmt),
                                  mysql_stmt_error (self->stmt), what, err);
    return dbt_mariadb_last_error (self->conn, what, err);
}

//  Build the columns and fetch state from result metadata; with binary,
//  bind the result buffers of the prepared statement.
static void
s_build_columns (dbt_mariadb_query_t *self, const MYSQL_FIELD *fields, size_t ncols, bool binary)
{
    size_t alloc = ncols ? ncols : 1;
    self->ncols = ncols;
    self->cols = (dbt_column_t *) dbt_malloc (alloc * sizeof (dbt_column_t));
    self->cells = (s_cell_t *) dbt_malloc (alloc * sizeof (s_cell_t));
    self->vals = (const char **) dbt_malloc (alloc * sizeof (char *));
    self->lens = (size_t *) dbt_malloc (alloc * sizeof (size_t));
    if (binary)
        self->binds = (MYSQL_BIND *) dbt_malloc (alloc * sizeof (MYSQL_BIND));
    for (size_t i = 0; i < ncols; i++) {
        const MYSQL_FIELD *f = &fields [i];
        s_cell_t *cell = &self->cells [i];
        self->cols [i].name = dbt_strndup (f->name, f->name_length);
        cell->read = s_field_map (f->type, f->flags, f->length, f->decimals, f->charsetnr,
                                  &self->cols [i]);
        //  What the server reports: NOT NULL, and JSON (extended metadata,
        //  MariaDB 10.5+), kept as JSONB where the results can
        self->cols [i].not_null = (f->flags & NOT_NULL_FLAG) != 0;
        MARIADB_CONST_STRING format = { NULL, 0 };
        if (self->cols [i].type == DBT_COL_TEXT
        &&  mariadb_field_attr (&format, f, MARIADB_FIELD_ATTR_FORMAT_NAME) == 0
        &&  format.length == 4 && strncasecmp (format.str, "json", 4) == 0)
            self->cols [i].kind = DBT_KIND_JSONB;
        if (!binary)
            continue;
        MYSQL_BIND *b = &self->binds [i];
        b->length = &cell->len;
        b->is_null = &cell->is_null;
        b->error = &cell->error;
        switch (cell->read) {
            case S_READ_INT:
            case S_READ_BOOL:
            case S_READ_UINT:
                b->buffer_type = MYSQL_TYPE_LONGLONG;
                b->buffer = &cell->value.i;
                b->is_unsigned = cell->read == S_READ_UINT;
                break;
            case S_READ_DOUBLE:
                b->buffer_type = MYSQL_TYPE_DOUBLE;
                b->buffer = &cell->value.d;
                break;
            case S_READ_FLOAT:
                b->buffer_type = MYSQL_TYPE_FLOAT;
                b->buffer = &cell->value.f;
                break;
            case S_READ_DATE:
            case S_READ_DATETIME:
                b->buffer_type = cell->read == S_READ_DATE ? MYSQL_TYPE_DATE
                                                           : MYSQL_TYPE_DATETIME;
                b->buffer = &cell->value.t;
                break;
            case S_READ_TEXT:
            case S_READ_BIT:
                cell->cap = f->length < 64 ? 64
                          : f->length < S_BIND_START ? f->length + 1 : S_BIND_START;
                cell->buf = (char *) dbt_malloc (cell->cap);
                b->buffer_type = MYSQL_TYPE_STRING;
                b->buffer = cell->buf;
                b->buffer_length = cell->cap;
                break;
        }
    }
}

//  Run a raw task without args over the text protocol.
static int
s_query_text (dbt_mariadb_query_t *self, const char *sql, char *err)
{
    if (mysql_real_query (self->conn->mysql, sql, strlen (sql)))
        return dbt_mariadb_last_error (self->conn, "", err);
    self->res = mysql_use_result (self->conn->mysql);
    if (!self->res) {
        if (mysql_errno (self->conn->mysql))
            return dbt_mariadb_last_error (self->conn, "", err);
        //  A statement without a result set: no columns, no rows
        s_build_columns (self, NULL, 0, false);
        self->done = true;
        return 0;
    }
    s_build_columns (self, mysql_fetch_fields (self->res), mysql_num_fields (self->res), false);
    return 0;
}

//  Prepare, bind args as strings and execute a task.
static int
s_query_binary (dbt_mariadb_query_t *self, const char *sql, const dbt_args_t *args, char *err)
{
    self->stmt = mysql_stmt_init (self->conn->mysql);
    if (!self->stmt)
        return dbt_mariadb_last_error (self->conn, "", err);
    if (mysql_stmt_prepare (self->stmt, sql, strlen (sql)))
        return s_stmt_error (self, "", err);
    int rc = dbt_args_check ((int) mysql_stmt_param_count (self->stmt), args, err);
    if (rc)
        return rc;
    MYSQL_BIND *params = (MYSQL_BIND *) dbt_malloc ((args->count ? args->count : 1)
                                                    * sizeof (MYSQL_BIND));
    for (size_t i = 0; i < args->count; i++) {
        const char *arg = args->vals [i];
        params [i].buffer_type = arg ? MYSQL_TYPE_STRING : MYSQL_TYPE_NULL;
        params [i].buffer = (void *) arg;
        params [i].buffer_length = arg ? strlen (arg) : 0;
    }
    if (args->count && mysql_stmt_bind_param (self->stmt, params))
        rc = s_stmt_error (self, "cannot bind args: ", err);
    if (rc == 0 && mysql_stmt_execute (self->stmt))
        rc = s_stmt_error (self, "", err);
    free (params);
    if (rc)
        return rc;
    MYSQL_RES *meta = mysql_stmt_result_metadata (self->stmt);
    if (!meta) {
        s_build_columns (self, NULL, 0, true);
        self->done = true;
        return 0;
    }
    s_build_columns (self, mysql_fetch_fields (meta), mysql_num_fields (meta), true);
    mysql_free_result (meta);
    if (self->ncols && mysql_stmt_bind_result (self->stmt, self->binds))
        return s_stmt_error (self, "cannot bind the result: ", err);
    return 0;
}

//  Error for a value its column's canonical type cannot hold.
static int
s_cell_error (dbt_mariadb_query_t *self, size_t i, const char *what, const char *val, size_t len,
              char *err)
{
    const char *name = self->cols [i].name;
    if (self->cells [i].read == S_READ_BOOL)
        dbt_err_set (err, "column '%s' row %" PRId64 ": TINYINT(1) value %.*s is not a "
                     "boolean (0 or 1); CAST(%s AS SIGNED) in the task reads it as a number",
                     name, self->rowno, (int) len, val, name);
    else
        dbt_err_set (err, "column '%s' row %" PRId64 ": %s '%.*s'; NULLIF(%s, '0000-00-00') "
                     "in the task reads MariaDB zero dates as NULL", name, self->rowno, what,
                     (int) (len > 40 ? 40 : len), val, name);
    return DBT_ERROR;
}

//  Canonical text of a text-protocol value of column i into vals/lens.
static int
s_cell_text (dbt_mariadb_query_t *self, size_t i, const char *val, size_t len, char *err)
{
    s_cell_t *cell = &self->cells [i];
    const dbt_column_t *col = &self->cols [i];
    int out = -1;
    switch (cell->read) {
        case S_READ_INT:
        case S_READ_UINT:
            //  ZEROFILL columns come zero-padded
            while (len > 1 && val [0] == '0') {
                val++;
                len--;
            }
            break;
        case S_READ_BOOL:
            if (len != 1 || (val [0] != '0' && val [0] != '1'))
                return s_cell_error (self, i, "", val, len, err);
            val = val [0] == '1' ? "t" : "f";
            break;
        case S_READ_DOUBLE:
        case S_READ_FLOAT:
            if (len >= sizeof (cell->text))
                return s_cell_error (self, i, "unreadable number", val, len, err);
            memcpy (cell->text, val, len);
            cell->text [len] = 0;
            out = cell->read == S_READ_FLOAT
                ? s_float_text (strtof (cell->text, NULL), cell->text, sizeof (cell->text))
                : dbt_cell_double (strtod (cell->text, NULL), cell->text, sizeof (cell->text));
            break;
        case S_READ_DATE:
        case S_READ_DATETIME:
            out = dbt_cell_time (col->type, val, len, cell->text, sizeof (cell->text));
            if (out < 0)
                return s_cell_error (self, i, "invalid date", val, len, err);
            break;
        case S_READ_BIT:
            out = s_bit_text (val, len, cell->text);
            break;
        case S_READ_TEXT:
            break;
    }
    if (out >= 0) {
        val = cell->text;
        len = (size_t) out;
    }
    self->vals [i] = val;
    self->lens [i] = len;
    return 0;
}

//  Canonical text of the bound value of column i into vals/lens.
static int
s_cell_binary (dbt_mariadb_query_t *self, size_t i, char *err)
{
    s_cell_t *cell = &self->cells [i];
    if (cell->is_null) {
        self->vals [i] = NULL;
        self->lens [i] = 0;
        return 0;
    }
    int out = -1;
    switch (cell->read) {
        case S_READ_TEXT:
            self->vals [i] = cell->buf;
            self->lens [i] = cell->len;
            return 0;
        case S_READ_INT:
            out = s_int64_text (cell->value.i, cell->text);
            break;
        case S_READ_UINT:
            out = s_int_text (cell->value.u, false, cell->text);
            break;
        case S_READ_BOOL:
            if (cell->value.i != 0 && cell->value.i != 1) {
                int n = s_int64_text (cell->value.i, cell->text);
                return s_cell_error (self, i, "", cell->text, (size_t) n, err);
            }
            self->vals [i] = cell->value.i ? "t" : "f";
            self->lens [i] = 1;
            return 0;
        case S_READ_DOUBLE:
            out = dbt_cell_double (cell->value.d, cell->text, sizeof (cell->text));
            break;
        case S_READ_FLOAT:
            out = s_float_text (cell->value.f, cell->text, sizeof (cell->text));
            break;
        case S_READ_DATE:
        case S_READ_DATETIME:
            out = s_time_text (&cell->value.t, self->cols [i].type, cell->text);
            if (out < 0) {
                const MYSQL_TIME *t = &cell->value.t;
                int n = snprintf (cell->text, sizeof (cell->text), "%04u-%02u-%02u",
                                  t->year % 10000, t->month % 100, t->day % 100);
                return s_cell_error (self, i, "invalid date", cell->text, (size_t) n, err);
            }
            break;
        case S_READ_BIT:
            out = s_bit_text (cell->buf, cell->len, cell->text);
            break;
    }
    self->vals [i] = cell->text;
    self->lens [i] = (size_t) (out < 0 ? 0 : out);
    return 0;
}

//  Fetch the string values that did not fit their buffers, growing the
//  buffers (and rebinding, so the next rows fit too).
static int
s_refetch (dbt_mariadb_query_t *self, char *err)
{
    bool grown = false;
    for (size_t i = 0; i < self->ncols; i++) {
        s_cell_t *cell = &self->cells [i];
        if (!cell->error || cell->is_null)
            continue;
        if (cell->read != S_READ_TEXT && cell->read != S_READ_BIT) {
            dbt_err_set (err, "mysql: column '%s' row %" PRId64 ": value truncated",
                         self->cols [i].name, self->rowno);
            return DBT_ERROR;
        }
        size_t need = (size_t) cell->len + 1;
        size_t cap = cell->cap;
        while (cap < need)
            cap *= 2;
        cell->buf = (char *) dbt_realloc (cell->buf, cap);
        cell->cap = cap;
        self->binds [i].buffer = cell->buf;
        self->binds [i].buffer_length = cap;
        grown = true;
        if (mysql_stmt_fetch_column (self->stmt, &self->binds [i], (unsigned) i, 0))
            return s_stmt_error (self, "cannot fetch a long value: ", err);
    }
    if (grown && mysql_stmt_bind_result (self->stmt, self->binds))
        return s_stmt_error (self, "cannot bind the result: ", err);
    return 0;
}

//  The end of the first result: a second result set is refused. Returns 0
//  or an error code.
static int
s_result_end (dbt_mariadb_query_t *self, char *err)
{
    self->done = true;
    bool more_sets = false;
    if (self->stmt) {
        while (mysql_stmt_more_results (self->stmt)) {
            int next = mysql_stmt_next_result (self->stmt);
            if (next > 0)
                return s_stmt_error (self, "", err);
            if (next < 0)
                break;
            if (mysql_stmt_field_count (self->stmt) > 0)
                more_sets = true;
        }
    }
    else {
        mysql_free_result (self->res);
        self->res = NULL;
        while (mysql_more_results (self->conn->mysql)) {
            int next = mysql_next_result (self->conn->mysql);
            if (next > 0)
                return dbt_mariadb_last_error (self->conn, "", err);
            if (next < 0)
                break;
            MYSQL_RES *res = mysql_use_result (self->conn->mysql);
            if (res)
                more_sets = true;
            mysql_free_result (res);
        }
    }
    if (more_sets) {
        dbt_err_set (err, "mysql: the task returned more than one result set; "
                     "a task must give one");
        return DBT_EINVAL;
    }
    return 0;
}

//  Read the next row into vals/lens: 1 for a row, 0 at the clean end, or
//  an error code.
static int
s_next (dbt_mariadb_query_t *self, char *err)
{
    if (self->stmt) {
        int got = mysql_stmt_fetch (self->stmt);
        if (got == MYSQL_NO_DATA)
            return s_result_end (self, err);
        if (got == 1) {
            self->done = true;
            return s_stmt_error (self, "", err);
        }
        self->rowno++;
        int rc = got == MYSQL_DATA_TRUNCATED ? s_refetch (self, err) : 0;
        for (size_t i = 0; rc == 0 && i < self->ncols; i++)
            rc = s_cell_binary (self, i, err);
        return rc ? rc : 1;
    }
    MYSQL_ROW values = mysql_fetch_row (self->res);
    if (!values) {
        if (mysql_errno (self->conn->mysql)) {
            self->done = true;
            return dbt_mariadb_last_error (self->conn, "", err);
        }
        return s_result_end (self, err);
    }
    self->rowno++;
    unsigned long *lengths = mysql_fetch_lengths (self->res);
    for (size_t i = 0; i < self->ncols; i++) {
        if (!values [i]) {
            self->vals [i] = NULL;
            self->lens [i] = 0;
            continue;
        }
        int rc = s_cell_text (self, i, values [i], lengths [i], err);
        if (rc)
            return rc;
    }
    return 1;
}

//  --------------------------------------------------------------------------
//  Check sql and report its parameter count.

int
dbt_mariadb_prepare (void *handle, const char *sql, int *nparams, char *err)
{
    dbt_mariadb_t *conn = (dbt_mariadb_t *) handle;
    dbt_mariadb_query_end (conn);
    if (conn->write) {
        dbt_err_set (err, "mysql: cannot prepare during a results write");
        return DBT_EINVAL;
    }
    MYSQL_STMT *stmt = mysql_stmt_init (conn->mysql);
    if (!stmt)
        return dbt_mariadb_last_error (conn, "", err);
    int rc = 0;
    if (mysql_stmt_prepare (stmt, sql, strlen (sql)))
        rc = dbt_mariadb_error (conn, mysql_stmt_errno (stmt), mysql_stmt_error (stmt), "", err);
    else
    if (nparams)
        *nparams = (int) mysql_stmt_param_count (stmt);
    mysql_stmt_close (stmt);
    return rc;
}

//  --------------------------------------------------------------------------
//  Start sql with args; raw tasks without args use the text protocol.

int
dbt_mariadb_query (void *handle, const char *sql, const dbt_args_t *args,
                   const dbt_query_opts_t *opts, char *err)
{
    dbt_mariadb_t *conn = (dbt_mariadb_t *) handle;
    dbt_mariadb_query_end (conn);
    if (conn->write) {
        dbt_err_set (err, "mysql: cannot query during a results write");
        return DBT_EINVAL;
    }
    atomic_store (&conn->canceled, false);
    conn->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 0;
    int rc = dbt_mariadb_set_timeout (conn, conn->timeout_ms, err);
    if (rc)
        return rc;
    dbt_mariadb_query_t *self = (dbt_mariadb_query_t *) dbt_malloc (sizeof (dbt_mariadb_query_t));
    self->conn = conn;
    conn->query = self;
    rc = opts->raw && args->count == 0 ? s_query_text (self, sql, err)
                                       : s_query_binary (self, sql, args, err);
    if (rc) {
        self->done = true;          //  nothing to stop on the server
        dbt_mariadb_query_end (conn);
    }
    return rc;
}

int
dbt_mariadb_columns (void *handle, const dbt_column_t **cols, size_t *ncols)
{
    dbt_mariadb_query_t *self = ((dbt_mariadb_t *) handle)->query;
    *cols = self ? self->cols : NULL;
    *ncols = self ? self->ncols : 0;
    return self ? 0 : DBT_EINVAL;
}

int
dbt_mariadb_fetch (void *handle, dbt_row_t *row, char *err)
{
    dbt_mariadb_query_t *self = ((dbt_mariadb_t *) handle)->query;
    if (!self) {
        dbt_err_set (err, "mysql: no query is running");
        return DBT_EINVAL;
    }
    if (self->failed) {
        dbt_err_set (err, "mysql: the query already failed");
        return DBT_EINVAL;
    }
    if (self->done)
        return 0;
    int rc = s_next (self, err);
    if (rc < 0)
        self->failed = true;    //  never a clean end after an error
    if (rc <= 0)
        return rc;
    row->ncols = self->ncols;
    row->vals = self->vals;
    row->lens = self->lens;
    return 1;
}

//  --------------------------------------------------------------------------
//  Finish the running query: stop it on the server when rows are left,
//  drain what it still sends, free its state.

void
dbt_mariadb_query_end (void *handle)
{
    dbt_mariadb_t *conn = (dbt_mariadb_t *) handle;
    dbt_mariadb_query_t *self = conn->query;
    if (!self)
        return;
    if (!self->done && !conn->lost)
        dbt_mariadb_kill (conn);
    //  Both read and drop what the server still sends.
    if (self->stmt)
        mysql_stmt_close (self->stmt);
    if (self->res) {
        mysql_free_result (self->res);
        while (!conn->lost && mysql_more_results (conn->mysql)
           &&  mysql_next_result (conn->mysql) == 0)
            mysql_free_result (mysql_use_result (conn->mysql));
    }
    if (self->cells)
        for (size_t i = 0; i < self->ncols; i++)
            free (self->cells [i].buf);
    dbt_columns_free (&self->cols, self->ncols);
    free (self->cells);
    free (self->binds);
    free (self->vals);
    free (self->lens);
    free (self);
    conn->query = NULL;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test (offline checks of the pure helpers)

void
dbt_mariadb_read_test (bool verbose)
{
    //  Source column types
    const struct {
        enum enum_field_types ftype;
        unsigned flags;
        unsigned long length;
        unsigned decimals;
        unsigned charsetnr;
        s_read_t read;
        dbt_coltype_t type;
        int precision, scale;
        const char *name;
    } fields [] = {
        { MYSQL_TYPE_TINY, 0, 1, 0, 63, S_READ_BOOL, DBT_COL_BOOLEAN, 0, -1, "tinyint(1)" },
        { MYSQL_TYPE_TINY, 0, 4, 0, 63, S_READ_INT, DBT_COL_BIGINT, 0, -1, "tinyint" },
        { MYSQL_TYPE_TINY, UNSIGNED_FLAG, 1, 0, 63, S_READ_INT, DBT_COL_BIGINT, 0, -1,
          "tinyint unsigned" },
        { MYSQL_TYPE_SHORT, 0, 6, 0, 63, S_READ_INT, DBT_COL_BIGINT, 0, -1, "smallint" },
        { MYSQL_TYPE_INT24, 0, 9, 0, 63, S_READ_INT, DBT_COL_BIGINT, 0, -1, "mediumint" },
        { MYSQL_TYPE_LONG, UNSIGNED_FLAG, 10, 0, 63, S_READ_INT, DBT_COL_BIGINT, 0, -1,
          "int unsigned" },
        { MYSQL_TYPE_LONG, 0, 1, 0, 63, S_READ_INT, DBT_COL_BIGINT, 0, -1, "int" },
        { MYSQL_TYPE_LONGLONG, 0, 20, 0, 63, S_READ_INT, DBT_COL_BIGINT, 0, -1, "bigint" },
        { MYSQL_TYPE_LONGLONG, UNSIGNED_FLAG, 20, 0, 63, S_READ_UINT, DBT_COL_UBIGINT, 0, -1,
          "bigint unsigned" },
        { MYSQL_TYPE_NEWDECIMAL, 0, 26, 6, 63, S_READ_TEXT, DBT_COL_DECIMAL, 24, 6,
          "decimal(24,6)" },
        { MYSQL_TYPE_NEWDECIMAL, 0, 5, 3, 63, S_READ_TEXT, DBT_COL_DECIMAL, 3, 3,
          "decimal(3,3)" },
        { MYSQL_TYPE_NEWDECIMAL, UNSIGNED_FLAG, 10, 0, 63, S_READ_TEXT, DBT_COL_DECIMAL, 10, 0,
          "decimal(10,0) unsigned" },
        { MYSQL_TYPE_NEWDECIMAL, 0, 67, 38, 63, S_READ_TEXT, DBT_COL_DECIMAL, 65, 38,
          "decimal(65,38)" },
        { MYSQL_TYPE_NEWDECIMAL, 0, 90, 39, 63, S_READ_TEXT, DBT_COL_DECIMAL, 0, -1, "decimal" },
        { MYSQL_TYPE_FLOAT, 0, 12, 31, 63, S_READ_FLOAT, DBT_COL_DOUBLE, 0, -1, "float" },
        { MYSQL_TYPE_DOUBLE, 0, 22, 31, 63, S_READ_DOUBLE, DBT_COL_DOUBLE, 0, -1, "double" },
        { MYSQL_TYPE_DATE, 0, 10, 0, 63, S_READ_DATE, DBT_COL_DATE, 0, -1, "date" },
        { MYSQL_TYPE_DATETIME, 0, 26, 6, 63, S_READ_DATETIME, DBT_COL_TIMESTAMP, 0, -1,
          "datetime(6)" },
        { MYSQL_TYPE_DATETIME, 0, 19, 0, 63, S_READ_DATETIME, DBT_COL_TIMESTAMP, 0, -1,
          "datetime" },
        { MYSQL_TYPE_TIMESTAMP, UNSIGNED_FLAG, 26, 6, 63, S_READ_DATETIME, DBT_COL_TIMESTAMPTZ,
          0, -1, "timestamp(6)" },
        { MYSQL_TYPE_BIT, UNSIGNED_FLAG, 10, 0, 63, S_READ_BIT, DBT_COL_TEXT, 0, -1, "bit(10)" },
        { MYSQL_TYPE_TIME, 0, 14, 3, 63, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "time" },
        { MYSQL_TYPE_YEAR, UNSIGNED_FLAG, 4, 0, 63, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "year" },
        { MYSQL_TYPE_BLOB, 0, 4294967295UL, 0, 45, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "text" },
        { MYSQL_TYPE_BLOB, 0, 65535, 0, 63, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "blob" },
        { MYSQL_TYPE_STRING, ENUM_FLAG, 4, 0, 45, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "enum" },
        { MYSQL_TYPE_STRING, SET_FLAG, 4, 0, 45, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "set" },
        { MYSQL_TYPE_STRING, 0, 4, 0, 63, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "binary" },
        { MYSQL_TYPE_STRING, 0, 4, 0, 45, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "char" },
        { MYSQL_TYPE_VAR_STRING, 0, 8, 0, 63, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "varbinary" },
        { MYSQL_TYPE_VAR_STRING, 0, 1020, 0, 45, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "varchar" },
        { MYSQL_TYPE_NULL, 0, 0, 0, 63, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "null" },
        { MYSQL_TYPE_JSON, 0, 0, 0, 45, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "json" },
        { MYSQL_TYPE_GEOMETRY, 0, 0, 0, 63, S_READ_TEXT, DBT_COL_TEXT, 0, -1, "geometry" },
    };
    for (size_t i = 0; i < sizeof (fields) / sizeof (fields [0]); i++) {
        dbt_column_t col = { 0 };
        s_read_t read = s_field_map (fields [i].ftype, fields [i].flags, fields [i].length,
                                     fields [i].decimals, fields [i].charsetnr, &col);
        if (read != fields [i].read || col.type != fields [i].type
        ||  col.precision != fields [i].precision || col.scale != fields [i].scale
        ||  !streq (col.source_type, fields [i].name)) {
            fprintf (stderr, "field %zu: %d %s (%d,%d) %s\n", i, (int) read,
                     dbt_coltype_name (col.type), col.precision, col.scale, col.source_type);
            assert (false);
        }
        free (col.source_type);
    }


    //  Cell text
    char text [DBT_CELL_TIME_LEN];
    assert (s_int64_text (INT64_MIN, text) == 20 && streq (text, "-9223372036854775808"));
    assert (s_int64_text (INT64_MAX, text) == 19 && streq (text, "9223372036854775807"));
    assert (s_int64_text (0, text) == 1 && streq (text, "0"));
    assert (s_int64_text (-7, text) == 2 && streq (text, "-7"));
    assert (s_int_text (UINT64_MAX, false, text) == 20 && streq (text, "18446744073709551615"));
    s_float_text (0.1f, text, sizeof (text));
    assert (streq (text, "0.1"));
    s_float_text (1.2345678f, text, sizeof (text));
    assert (streq (text, "1.2345678"));
    s_float_text (3.4028235e38f, text, sizeof (text));
    assert (strtof (text, NULL) == 3.4028235e38f);
    s_float_text (1e-45f, text, sizeof (text));
    assert (strtof (text, NULL) == 1e-45f);
    s_float_text (-2.0f, text, sizeof (text));
    assert (streq (text, "-2"));
    MYSQL_TIME t = { .year = 2024, .month = 2, .day = 29, .hour = 3, .minute = 4,
                     .second = 5, .second_part = 120000 };
    assert (s_time_text (&t, DBT_COL_DATE, text) == 10 && streq (text, "2024-02-29"));
    assert (s_time_text (&t, DBT_COL_TIMESTAMP, text) > 0
            && streq (text, "2024-02-29 03:04:05.12"));
    assert (s_time_text (&t, DBT_COL_TIMESTAMPTZ, text) > 0
            && streq (text, "2024-02-29 03:04:05.12+00"));
    t.second_part = 1;
    assert (s_time_text (&t, DBT_COL_TIMESTAMP, text) > 0
            && streq (text, "2024-02-29 03:04:05.000001"));
    t.second_part = 0;
    t.year = 1;
    t.month = 1;
    assert (s_time_text (&t, DBT_COL_TIMESTAMP, text) == 19
            && streq (text, "0001-01-29 03:04:05"));
    t.year = 2023;
    t.month = 2;
    assert (s_time_text (&t, DBT_COL_DATE, text) == -1);        //  no Feb 29 in 2023
    t.year = 2000;
    assert (s_time_text (&t, DBT_COL_DATE, text) == 10);
    t.year = 1900;
    assert (s_time_text (&t, DBT_COL_DATE, text) == -1);
    MYSQL_TIME zero = { 0 };
    assert (s_time_text (&zero, DBT_COL_DATE, text) == -1);
    zero.year = 2024;
    zero.month = 3;
    assert (s_time_text (&zero, DBT_COL_TIMESTAMP, text) == -1);    //  day 0
    assert (s_bit_text ("\x01\x05", 2, text) == 3 && streq (text, "261"));
    assert (s_bit_text ("", 0, text) == 1 && streq (text, "0"));
    assert (s_bit_text ("\xff\xff\xff\xff\xff\xff\xff\xff", 8, text) == 20
            && streq (text, "18446744073709551615"));
    assert (s_bit_text ("123456789", 9, text) == -1);

}
#endif  //  DBT_SELFTEST
