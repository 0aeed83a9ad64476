/*  =========================================================================
    dbt_export - stream a results table as JSON or CSV

    See dbt_export.h. Rows are formatted into a buffer until it holds about
    64 KiB, then handed out; the next read formats more.
    =========================================================================
*/
#include "dbt_classes.h"

#define CHUNK (64 * 1024)

struct _dbt_export_t {
    dbt_pool_t *pool;           //  where the connection goes back
    dbt_conn_t *conn;           //  the running read
    bool csv;                   //  CSV, else JSON
    const dbt_column_t *cols;   //  columns (borrowed from the connection)
    size_t ncols;               //  number of columns
    dbt_buf_t buf;              //  formatted, not yet handed out
    size_t pos;                 //  bytes of buf already handed out
    uint64_t rows;              //  rows formatted
    bool finished;              //  tail written
    bool failed;                //  the database failed mid-stream
};

//  True when text is a JSON number.
static bool
s_json_number (const char *str, size_t len)
{
    size_t i = 0;
    if (i < len && str [i] == '-')
        i++;
    if (i >= len || !isdigit ((unsigned char) str [i]))
        return false;
    if (str [i] == '0' && i + 1 < len && isdigit ((unsigned char) str [i + 1]))
        return false;
    while (i < len && isdigit ((unsigned char) str [i]))
        i++;
    if (i < len && str [i] == '.') {
        i++;
        if (i >= len || !isdigit ((unsigned char) str [i]))
            return false;
        while (i < len && isdigit ((unsigned char) str [i]))
            i++;
    }
    if (i < len && (str [i] == 'e' || str [i] == 'E')) {
        i++;
        if (i < len && (str [i] == '+' || str [i] == '-'))
            i++;
        if (i >= len || !isdigit ((unsigned char) str [i]))
            return false;
        while (i < len && isdigit ((unsigned char) str [i]))
            i++;
    }
    return i == len;
}

//  Length of the valid UTF-8 sequence at str (1-4), or 0 when invalid.
static size_t
s_utf8_char (const char *str, size_t len)
{
    unsigned char c = (unsigned char) str [0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > len)
        return 0;
    if (c == 0)
        return 1;               //  NUL is valid JSON content (\u0000)
    return dbt_utf8_valid (str, n) ? n : 0;
}

//  Append a JSON string; invalid UTF-8 bytes become U+FFFD (as Go does).
static void
s_json_string (dbt_buf_t *out, const char *str, size_t len)
{
    json_t *value = json_stringn (str, len);
    if (!value) {
        dbt_buf_t clean = { 0 };
        for (size_t i = 0; i < len; ) {
            size_t n = s_utf8_char (str + i, len - i);
            if (n)
                dbt_buf_append (&clean, str + i, n);
            else
                dbt_buf_puts (&clean, "\xef\xbf\xbd");
            i += n ? n : 1;
        }
        value = json_stringn (clean.data ? clean.data : "", clean.len);
        dbt_buf_free (&clean);
    }
    char *text = value ? json_dumps (value, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref (value);
    dbt_buf_puts (out, text ? text : "\"\"");
    free (text);
}

//  Append one cell as JSON.
static void
s_json_cell (dbt_buf_t *out, const dbt_column_t *col, const char *val, size_t len)
{
    if (!val) {
        dbt_buf_puts (out, "null");
        return;
    }
    switch (col->type) {
        case DBT_COL_BIGINT:
        case DBT_COL_UBIGINT:
        case DBT_COL_DECIMAL:
        case DBT_COL_DOUBLE:
            if (s_json_number (val, len)) {
                dbt_buf_append (out, val, len);
                return;
            }
            break;
        case DBT_COL_BOOLEAN:
            if (len == 1 && (val [0] == 't' || val [0] == 'f')) {
                dbt_buf_puts (out, val [0] == 't' ? "true" : "false");
                return;
            }
            break;
        default:
            break;
    }
    s_json_string (out, val, len);
}

//  Append one CSV field (RFC 4180).
static void
s_csv_field (dbt_buf_t *out, const char *val, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = val [i] == ',' || val [i] == '"' || val [i] == '\r' || val [i] == '\n';
    if (!quote) {
        dbt_buf_append (out, val, len);
        return;
    }
    dbt_buf_putc (out, '"');
    for (size_t i = 0; i < len; i++) {
        if (val [i] == '"')
            dbt_buf_putc (out, '"');
        dbt_buf_putc (out, val [i]);
    }
    dbt_buf_putc (out, '"');
}

static void
s_csv_cell (dbt_buf_t *out, const dbt_column_t *col, const char *val, size_t len)
{
    if (!val)
        return;
    if (col->type == DBT_COL_BOOLEAN && len == 1 && (val [0] == 't' || val [0] == 'f'))
        dbt_buf_puts (out, val [0] == 't' ? "true" : "false");
    else
        s_csv_field (out, val, len);
}

dbt_export_t *
dbt_export_new (dbt_pool_t *pool, dbt_conn_t **conn_p, const char *job_id, bool csv, char *err)
{
    dbt_export_t *self = (dbt_export_t *) dbt_malloc (sizeof (dbt_export_t));
    self->pool = pool;
    self->conn = *conn_p;
    *conn_p = NULL;
    self->csv = csv;
    if (dbt_conn_columns (self->conn, &self->cols, &self->ncols)) {
        dbt_err_set (err, "cannot read the results table's columns");
        dbt_export_destroy (&self);
        return NULL;
    }
    if (csv) {
        for (size_t i = 0; i < self->ncols; i++) {
            if (i)
                dbt_buf_putc (&self->buf, ',');
            s_csv_field (&self->buf, self->cols [i].name, strlen (self->cols [i].name));
        }
        dbt_buf_puts (&self->buf, "\r\n");
    }
    else {
        dbt_buf_puts (&self->buf, "{\"status\":\"success\",\"data\":{\"job_id\":");
        s_json_string (&self->buf, job_id, strlen (job_id));
        dbt_buf_puts (&self->buf, ",\"columns\":[");
        for (size_t i = 0; i < self->ncols; i++) {
            dbt_buf_puts (&self->buf, i ? ",{\"name\":" : "{\"name\":");
            s_json_string (&self->buf, self->cols [i].name, strlen (self->cols [i].name));
            dbt_buf_printf (&self->buf, ",\"type\":\"%s\"}", dbt_coltype_name (self->cols [i].type));
        }
        dbt_buf_puts (&self->buf, "],\"rows\":[");
    }
    return self;
}

//  Format rows until the buffer holds a chunk or the rows end.
static void
s_fill (dbt_export_t *self)
{
    while (self->buf.len - self->pos < CHUNK && !self->finished && !self->failed) {
        dbt_row_t row;
        char err [DBT_ERRMSG_LEN];
        int rc = dbt_conn_fetch (self->conn, &row, err);
        if (rc < 0) {
            dbt_log (DBT_LOG_WARN, "http: results download failed after %" PRIu64 " rows: %s",
                     self->rows, err);
            self->failed = true;
            return;
        }
        if (rc == 0) {
            if (!self->csv)
                dbt_buf_puts (&self->buf, "]}}");
            self->finished = true;
            return;
        }
        if (self->csv) {
            for (size_t i = 0; i < row.ncols; i++) {
                if (i)
                    dbt_buf_putc (&self->buf, ',');
                s_csv_cell (&self->buf, &self->cols [i], row.vals [i], row.lens [i]);
            }
            dbt_buf_puts (&self->buf, "\r\n");
        }
        else {
            dbt_buf_puts (&self->buf, self->rows ? ",[" : "[");
            for (size_t i = 0; i < row.ncols; i++) {
                if (i)
                    dbt_buf_putc (&self->buf, ',');
                s_json_cell (&self->buf, &self->cols [i], row.vals [i], row.lens [i]);
            }
            dbt_buf_putc (&self->buf, ']');
        }
        self->rows++;
    }
}

ssize_t
dbt_export_read (dbt_export_t *self, char *buf, size_t max)
{
    if (self->pos == self->buf.len) {
        dbt_buf_reset (&self->buf);
        self->pos = 0;
        s_fill (self);
    }
    size_t left = self->buf.len - self->pos;
    if (left == 0)
        return self->failed ? -1 : 0;
    size_t n = left < max ? left : max;
    memcpy (buf, self->buf.data + self->pos, n);
    self->pos += n;
    return (ssize_t) n;
}

void
dbt_export_destroy (dbt_export_t **self_p)
{
    assert (self_p);
    dbt_export_t *self = *self_p;
    if (!self)
        return;
    if (self->conn) {
        dbt_conn_query_end (self->conn);
        dbt_pool_put (self->pool, &self->conn);
    }
    dbt_buf_free (&self->buf);
    free (self);
    *self_p = NULL;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: cell encodings, then a whole export from SQLite.

void
dbt_export_test (bool verbose)
{
    assert (s_json_number ("0", 1) && s_json_number ("-12.50", 6) && s_json_number ("1e-300", 6));
    assert (!s_json_number ("NaN", 3) && !s_json_number ("007", 3) && !s_json_number ("1.", 2));
    assert (!s_json_number ("", 0) && !s_json_number ("-", 1) && !s_json_number ("1e", 2));
    dbt_buf_t out = { 0 };
    s_json_string (&out, "a\"b\\\n\0z", 7);
    assert (streq (out.data, "\"a\\\"b\\\\\\n\\u0000z\""));
    dbt_buf_reset (&out);
    s_json_string (&out, "x\xffy\xe6\x97\xa5", 6);
    assert (streq (out.data, "\"x\xef\xbf\xbdy\xe6\x97\xa5\""));
    dbt_buf_reset (&out);
    dbt_column_t number = { .type = DBT_COL_DECIMAL }, flag = { .type = DBT_COL_BOOLEAN };
    s_json_cell (&out, &number, "-1.50", 5);
    s_json_cell (&out, &number, "NaN", 3);
    s_json_cell (&out, &flag, "t", 1);
    s_json_cell (&out, &flag, NULL, 0);
    assert (streq (out.data, "-1.50\"NaN\"truenull"));
    dbt_buf_reset (&out);
    s_csv_field (&out, "plain", 5);
    dbt_buf_putc (&out, ',');
    s_csv_field (&out, "a,\"b\"\n", 6);
    assert (streq (out.data, "plain,\"a,\"\"b\"\"\n\""));
    dbt_buf_free (&out);

    //  A whole export through a SQLite results table.
    char err [DBT_ERRMSG_LEN];
    char *dir = dbt_testing_tmpdir ("export");
    char *path = dbt_printf ("%s/r.db", dir);
    dbt_dbconf_t conf = { .name = "r", .type = "sqlite", .dsn = path, .results = true };
    dbt_pool_t *pool = dbt_pool_new (&conf);
    dbt_conn_t *conn = dbt_pool_get (pool, 1000, NULL, err);
    dbt_column_t cols [3] = {
        { .name = "id", .type = DBT_COL_BIGINT },
        { .name = "ok", .type = DBT_COL_BOOLEAN },
        { .name = "note", .type = DBT_COL_TEXT }
    };
    dbt_table_opts_t opts = { false };
    assert (dbt_conn_write_begin (conn, "stage", cols, 3, &opts, err) == 0);
    for (int i = 1; i <= 3000; i++) {
        char id [16];
        snprintf (id, sizeof (id), "%d", i);
        const char *vals [3] = { id, i % 2 ? "t" : "f", i == 2 ? NULL : "x, \"y\"" };
        size_t lens [3] = { strlen (id), 1, i == 2 ? 0 : 6 };
        dbt_row_t row = { 3, vals, lens };
        assert (dbt_conn_write_row (conn, &row, err) == 0);
    }
    assert (dbt_conn_write_commit (conn, "stage", "results_e", err) == 0);
    for (int csv = 0; csv <= 1; csv++) {
        assert (dbt_conn_read_table (conn, "results_e", 2, 1, err) == 0);
        dbt_export_t *export = dbt_export_new (pool, &conn, "e", csv, err);
        assert (export && conn == NULL);
        dbt_buf_t all = { 0 };
        char chunk [7];                     //  tiny reads cross every boundary
        ssize_t n;
        while ((n = dbt_export_read (export, chunk, sizeof (chunk))) > 0)
            dbt_buf_append (&all, chunk, (size_t) n);
        assert (n == 0);
        if (csv)
            assert (streq (all.data, "id,ok,note\r\n2,false,\r\n3,true,\"x, \"\"y\"\"\"\r\n"));
        else {
            json_error_t jerr;
            json_t *doc = json_loads (all.data, 0, &jerr);
            assert (doc);
            json_t *rows = json_object_get (json_object_get (doc, "data"), "rows");
            assert (json_array_size (rows) == 2);
            assert (json_integer_value (json_array_get (json_array_get (rows, 0), 0)) == 2);
            assert (json_is_false (json_array_get (json_array_get (rows, 0), 1)));
            assert (json_is_null (json_array_get (json_array_get (rows, 0), 2)));
            const char *type = json_string_value (json_object_get (json_array_get (
                json_object_get (json_object_get (doc, "data"), "columns"), 0), "type"));
            assert (type && streq (type, "BIGINT"));
            json_decref (doc);
        }
        dbt_buf_free (&all);
        dbt_export_destroy (&export);
        conn = dbt_pool_get (pool, 1000, NULL, err);
    }
    dbt_pool_put (pool, &conn);
    dbt_pool_destroy (&pool);
    dbt_testing_rmtree (&dir);
    free (path);
    if (verbose)
        printf ("export: ok\n");
}
#endif  //  DBT_SELFTEST
