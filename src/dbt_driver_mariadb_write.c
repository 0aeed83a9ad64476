/*  =========================================================================
    dbt_driver_mariadb_write - the MariaDB driver's results side

    Part of dbt_driver_mariadb (see its header for the type mapping). A
    write's state lives in a dbt_mariadb_write_t from write_begin to the
    commit or abort.

    write_begin creates the staging table. Rows then stream into it with
    one LOAD DATA LOCAL INFILE statement, which a loader thread runs on the
    connection (Connector/C pulls the data through the local infile read
    callback while the statement runs, on that thread): write_row encodes
    rows in LOAD DATA's tab-separated form into S_CHUNK-byte chunks and
    queues them, at most S_QUEUE, blocking while the queue is full. Memory
    is bounded by the queue whatever the row count. The loader starts with
    the first full chunk (or at commit), so a source that is slow to give
    its first rows holds no statement open meanwhile; the session's
    net_read_timeout is long enough for a slow source between chunks. The
    connection is not touched by the writer's thread while the loader runs.

    LOAD DATA LOCAL turns bad values into warnings (the server cannot stop
    the client's stream), so any warning fails the write, and so does a row
    count that differs. The commit swaps the table in with one RENAME TABLE
    and drops the old one.

    A server with local_infile=0 refuses LOAD DATA LOCAL: the connection
    learns so when it opens (or from the first refused LOAD DATA, which
    fails that write) and then writes rows as multi-row INSERTs into the
    same staging table, each statement below S_INSERT_MAX bytes and the
    server's max_allowed_packet, run on the writer's thread (logged once
    per connection). Values are quoted string literals
    (mysql_real_escape_string), converted by the server under the strict
    sql_mode, so a bad value fails the write as in LOAD DATA.

    Why LOAD DATA (bench/mariadb_bench.c, 1M rows of six columns, MariaDB
    10.11 on loopback): 481k rows/s, where ~1 MB multi-row INSERTs gave
    294k (319k with the next statement encoded while the server ran the
    last); reading and writing together ran at 1.03x the mariadb client
    piped into its own LOAD DATA LOCAL INFILE, the server's LOAD DATA being
    the limit (a file loaded on its own took as long).
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_driver_mariadb_int.h"
#include <errmsg.h>
#include <mysqld_error.h>

//  LOAD DATA stream: bytes per chunk and chunks queued for the loader.
#define S_CHUNK (256 * 1024)
#define S_QUEUE 4

//  Multi-row INSERT statements: flushed when this long (and kept below
//  the server's max_allowed_packet, less room for one more row's start).
#define S_INSERT_MAX (4 * 1024 * 1024)

//  The file name LOAD DATA asks the local infile handler for; the handler
//  refuses any other name and any request outside a write.
#define S_STREAM "dbt-results-stream"

//  A results write and its LOAD DATA stream.
struct _dbt_mariadb_write_t {
    dbt_mariadb_t *conn;        //  its connection
    char *table;                //  staging table (owned)
    dbt_column_t *cols;         //  its columns (names, types; owned)
    size_t ncols;               //  number of its columns
    int64_t rows;               //  rows encoded so far
    dbt_buf_t buf;              //  encoded rows not yet queued
    char *sql;                  //  the LOAD DATA statement, or the INSERT
                                //  statements' head (owned)
    bool insert;                //  rows go in multi-row INSERTs
    size_t insert_max;          //  flush an INSERT at this many bytes
    size_t insert_rows;         //  rows in the INSERT being built
    uint64_t inserted;          //  rows the server took in INSERTs

    //  The stream, shared with the loader thread
    pthread_mutex_t lock;       //  guards the fields down to finished
    pthread_cond_t cond;        //  signals any change of them
    dbt_buf_t queue [S_QUEUE];  //  chunks, queued ones from head on
    size_t head;                //  the oldest queued chunk
    size_t count;               //  chunks queued
    size_t offset;              //  bytes of the head chunk already sent
    bool eof;                   //  the writer queued its last chunk
    bool abort;                 //  the writer gave up: fail the stream
    bool finished;              //  the LOAD DATA statement returned
    bool running;               //  the loader thread must be joined
    pthread_t thread;           //  the loader thread
    unsigned error;             //  after join: the statement's error, 0 none
    char message [DBT_ERRMSG_LEN];  //  after join: its error text
    uint64_t affected;          //  after join: rows loaded
    unsigned warnings;          //  after join: warnings raised
};

//  --------------------------------------------------------------------------
//  Column types (pure; tested in dbt_mariadb_write_test)

//  True when a DECIMAL column fits MariaDB's DECIMAL(p,s) (else it is
//  written to a text column, digits unchanged).
static bool
s_decimal_fits (const dbt_column_t *col)
{
    return col->precision >= 1 && col->precision <= 65 && col->scale >= 0
        && col->scale <= 38 && col->scale <= col->precision;
}

//  MariaDB type of a results column (into buf when it needs formatting).
static const char *
s_sql_type (const dbt_column_t *col, char *buf, size_t size)
{
    switch (col->type) {
        case DBT_COL_BIGINT:      return "BIGINT";
        case DBT_COL_UBIGINT:     return "BIGINT UNSIGNED";
        case DBT_COL_DOUBLE:      return "DOUBLE";
        case DBT_COL_BOOLEAN:     return "BOOLEAN";
        case DBT_COL_DATE:        return "DATE";
        case DBT_COL_TIMESTAMP:   return "DATETIME(6)";
        case DBT_COL_TIMESTAMPTZ: return "DATETIME(6)";
        case DBT_COL_DECIMAL:
            if (s_decimal_fits (col)) {
                snprintf (buf, size, "DECIMAL(%d,%d)", col->precision, col->scale);
                return buf;
            }
            break;
        case DBT_COL_TEXT:
            break;
    }
    return "LONGTEXT";
}

//  --------------------------------------------------------------------------
//  The LOAD DATA stream

//  Local infile handler: start of a LOAD DATA LOCAL. Only our own stream,
//  while a write runs, is served.
static int
s_infile_init (void **info, const char *filename, void *userdata)
{
    dbt_mariadb_t *conn = (dbt_mariadb_t *) userdata;
    *info = conn->write;
    return conn->write && streq (filename, S_STREAM) ? 0 : 1;
}

//  Local infile handler: copy queued bytes into buf; 0 at the end of the
//  stream, -1 when the writer gave up. Runs on the loader thread.
static int
s_infile_read (void *info, char *buf, unsigned int size)
{
    dbt_mariadb_write_t *self = (dbt_mariadb_write_t *) info;
    pthread_mutex_lock (&self->lock);
    while (self->count == 0 && !self->eof && !self->abort)
        pthread_cond_wait (&self->cond, &self->lock);
    if (self->abort || self->count == 0) {
        int end = self->abort ? -1 : 0;
        pthread_mutex_unlock (&self->lock);
        return end;
    }
    //  The writer never touches a queued chunk: copy it unlocked.
    dbt_buf_t *chunk = &self->queue [self->head];
    size_t offset = self->offset;
    pthread_mutex_unlock (&self->lock);
    size_t n = chunk->len - offset < size ? chunk->len - offset : size;
    memcpy (buf, chunk->data + offset, n);
    pthread_mutex_lock (&self->lock);
    self->offset += n;
    if (self->offset == chunk->len) {
        self->head = (self->head + 1) % S_QUEUE;
        self->count--;
        self->offset = 0;
        pthread_cond_broadcast (&self->cond);
    }
    pthread_mutex_unlock (&self->lock);
    return (int) n;
}

static void
s_infile_end (void *info)
{
}

//  Local infile handler: the message of a refused or abandoned stream.
static int
s_infile_error (void *info, char *message, unsigned int size)
{
    snprintf (message, size, "%s", info ? "results write abandoned"
              : "the server asked for a local file, refused");
    return CR_UNKNOWN_ERROR;
}

//  --------------------------------------------------------------------------
//  Route the connection's LOCAL INFILE requests to the handler above.

void
dbt_mariadb_infile_handler (dbt_mariadb_t *conn)
{
    mysql_set_local_infile_handler (conn->mysql, s_infile_init, s_infile_read,
                                    s_infile_end, s_infile_error, conn);
}

//  --------------------------------------------------------------------------
//  Results connection: whether the server takes LOAD DATA LOCAL, and its
//  max_allowed_packet.

int
dbt_mariadb_write_probe (dbt_mariadb_t *conn, char *err)
{
    static const char sql [] = "SELECT @@local_infile, @@max_allowed_packet";
    if (mysql_real_query (conn->mysql, sql, sizeof (sql) - 1))
        return dbt_mariadb_last_error (conn, "cannot read local_infile: ", err);
    MYSQL_RES *res = mysql_store_result (conn->mysql);
    MYSQL_ROW row = res ? mysql_fetch_row (res) : NULL;
    int64_t infile = 1, packet = 0;
    if (row && row [0])
        dbt_parse_int64 (row [0], 0, 1, &infile);
    if (row && row [1])
        dbt_parse_int64 (row [1], 0, INT64_C (1) << 32, &packet);
    mysql_free_result (res);
    conn->max_packet = (unsigned long) packet;
    conn->no_infile = infile == 0;
    if (conn->no_infile)
        dbt_log (DBT_LOG_WARN, "mysql: the results server has local_infile=0: this connection "
                 "writes results with multi-row INSERTs of up to %zu bytes (slower than "
                 "LOAD DATA LOCAL INFILE; SET GLOBAL local_infile=1 for it)",
                 packet > 2048 && (size_t) packet - 1024 < S_INSERT_MAX ? (size_t) packet - 1024
                 : (size_t) S_INSERT_MAX);
    return 0;
}

//  Loader thread: run the LOAD DATA statement, record its outcome.
static void *
s_loader (void *arg)
{
    dbt_mariadb_write_t *self = (dbt_mariadb_write_t *) arg;
    MYSQL *mysql = self->conn->mysql;
    int failed = mysql_real_query (mysql, self->sql, strlen (self->sql));
    pthread_mutex_lock (&self->lock);
    if (failed) {
        self->error = mysql_errno (mysql);
        snprintf (self->message, sizeof (self->message), "%s", mysql_error (mysql));
    }
    else {
        self->affected = mysql_affected_rows (mysql);
        self->warnings = mysql_warning_count (mysql);
    }
    self->finished = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

//  Queue the encoded rows for the loader (starting it first), waiting
//  while the queue is full. Returns 0, or 1 when the load already ended
//  (s_load_finish reports why), or an error code.
static int
s_load_push (dbt_mariadb_write_t *self, char *err)
{
    if (self->buf.len == 0)
        return 0;
    if (!self->running) {
        if (pthread_create (&self->thread, NULL, s_loader, self)) {
            dbt_err_set (err, "mysql: cannot start the results loader thread");
            return DBT_ERROR;
        }
        self->running = true;
    }
    pthread_mutex_lock (&self->lock);
    while (self->count == S_QUEUE && !self->finished)
        pthread_cond_wait (&self->cond, &self->lock);
    if (self->finished) {
        pthread_mutex_unlock (&self->lock);
        return 1;
    }
    //  Swap buffers: the queue takes the rows, the writer a spare.
    size_t slot = (self->head + self->count) % S_QUEUE;
    dbt_buf_t spare = self->queue [slot];
    self->queue [slot] = self->buf;
    self->buf = spare;
    dbt_buf_reset (&self->buf);
    self->count++;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    return 0;
}

//  End the stream (abort: fail it) and wait for the loader thread.
static void
s_load_stop (dbt_mariadb_write_t *self, bool abort)
{
    if (!self->running)
        return;
    pthread_mutex_lock (&self->lock);
    if (abort)
        self->abort = true;
    self->eof = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->thread, NULL);
    self->running = false;
}

static int s_warnings_error (dbt_mariadb_write_t *self, char *err);

//  Finish the stream and check the load: no error, no warning, every row.
//  Returns 0 or an error code.
static int
s_load_finish (dbt_mariadb_write_t *self, char *err)
{
    bool started = self->running;
    s_load_stop (self, false);
    if (!started)
        return 0;               //  no rows at all
    dbt_mariadb_t *conn = self->conn;
    if (self->error == ER_NOT_ALLOWED_COMMAND || self->error == ER_LOAD_INFILE_CAPABILITY_DISABLED) {
        conn->no_infile = true;
        dbt_log (DBT_LOG_WARN, "mysql: the results server refused LOAD DATA LOCAL INFILE "
                 "(local_infile=0?): this connection writes results with multi-row INSERTs "
                 "from the next attempt on");
        dbt_err_set (err, "mysql: the results server refused LOAD DATA LOCAL INFILE: %s "
                     "(error %u); the next attempt writes with INSERTs", self->message,
                     self->error);
        return DBT_ERROR;
    }
    if (self->error)
        return dbt_mariadb_error (conn, self->error, self->message,
                                  "cannot write the results: ", err);
    if (self->warnings)
        return s_warnings_error (self, err);
    if (self->affected != (uint64_t) self->rows) {
        dbt_err_set (err, "mysql: %" PRIu64 " of %" PRId64 " results rows were loaded",
                     self->affected, self->rows);
        return DBT_ERROR;
    }
    return 0;
}

//  The error of a load or INSERT that raised warnings: the first names the
//  column and row.
static int
s_warnings_error (dbt_mariadb_write_t *self, char *err)
{
    dbt_mariadb_t *conn = self->conn;
    char message [DBT_ERRMSG_LEN] = "";
    if (mysql_real_query (conn->mysql, "SHOW WARNINGS LIMIT 1", 21) == 0) {
        MYSQL_RES *res = mysql_store_result (conn->mysql);
        MYSQL_ROW row = res ? mysql_fetch_row (res) : NULL;
        if (row && mysql_num_fields (res) >= 3)
            snprintf (message, sizeof (message), "%s", row [2] ? row [2] : "");
        mysql_free_result (res);
    }
    dbt_err_set (err, "mysql: the results table refused a value: %s (%u warning%s)",
                 message, self->warnings, self->warnings == 1 ? "" : "s");
    return DBT_ERROR;
}

//  --------------------------------------------------------------------------
//  Rows

//  Error for a cell the results column cannot take.
static int
s_cell_error (dbt_mariadb_write_t *self, size_t i, const char *val, size_t len,
              const char *why, char *err)
{
    dbt_err_set (err, "column '%s' row %" PRId64 ": '%.*s' %s", self->cols [i].name,
                 self->rows + 1, (int) (len > 40 ? 40 : len), val, why);
    return DBT_EINVAL;
}

//  The text MariaDB takes for cell i (*val, *len, maybe pointing into
//  text, DBT_CELL_TIME_LEN bytes), checked for its column. Returns 0 or
//  DBT_EINVAL. NULL cells are the caller's.
static int
s_cell_value (dbt_mariadb_write_t *self, size_t i, const char **val_p, size_t *len_p,
              char *text, char *err)
{
    const dbt_column_t *col = &self->cols [i];
    const char *val = *val_p;
    size_t len = *len_p;
    switch (col->type) {
        case DBT_COL_BOOLEAN: {
            bool value;
            if (dbt_cell_parse_bool (val, len, &value))
                return s_cell_error (self, i, val, len, "is not a valid BOOLEAN", err);
            *val_p = value ? "1" : "0";
            *len_p = 1;
            return 0;
        }
        case DBT_COL_DECIMAL:
            if (!s_decimal_fits (col))
                break;          //  a text column takes anything
            //  fall through
        case DBT_COL_DOUBLE:
            if (dbt_cell_word_is (val, len, "NaN") || dbt_cell_word_is (val, len, "Infinity")
            ||  dbt_cell_word_is (val, len, "-Infinity"))
                return s_cell_error (self, i, val, len, col->type == DBT_COL_DOUBLE
                                     ? "cannot be stored in a MariaDB DOUBLE"
                                     : "cannot be stored in a MariaDB DECIMAL", err);
            break;
        case DBT_COL_DATE:
        case DBT_COL_TIMESTAMP:
        case DBT_COL_TIMESTAMPTZ: {
            if (dbt_cell_word_is (val, len, "infinity")
            ||  dbt_cell_word_is (val, len, "-infinity"))
                return s_cell_error (self, i, val, len, "cannot be stored in a MariaDB "
                                     "DATE or DATETIME", err);
            if (col->type != DBT_COL_TIMESTAMPTZ)
                break;
            //  DATETIME(6) holds the UTC time without the zone
            if (len > 3 && memcmp (val + len - 3, "+00", 3) == 0) {
                len -= 3;
                break;
            }
            int n = dbt_cell_time (DBT_COL_TIMESTAMPTZ, val, len, text, DBT_CELL_TIME_LEN);
            if (n < 3)
                return s_cell_error (self, i, val, len, "is not a valid TIMESTAMPTZ", err);
            val = text;
            len = (size_t) n - 3;
            break;
        }
        default:
            break;
    }
    *val_p = val;
    *len_p = len;
    return 0;
}

//  Append cell i of a row to the stream in LOAD DATA form, or as a quoted
//  literal of an INSERT.
static int
s_encode_cell (dbt_mariadb_write_t *self, size_t i, const char *val, size_t len, char *err)
{
    char text [DBT_CELL_TIME_LEN];
    if (!val) {
        if (self->insert) {
            dbt_buf_puts (&self->buf, "NULL");
            return 0;
        }
        return dbt_cell_tsv (&self->buf, NULL, 0, true);
    }
    int rc = s_cell_value (self, i, &val, &len, text, err);
    if (rc)
        return rc;
    if (!self->insert)
        return dbt_cell_tsv (&self->buf, val, len, true);
    //  mysql_real_escape_string writes at most 2 * len + 1 bytes, and
    //  follows the session (utf8mb4, NO_BACKSLASH_ESCAPES)
    dbt_buf_reserve (&self->buf, 2 * len + 3);
    self->buf.data [self->buf.len++] = '\'';
    self->buf.len += mysql_real_escape_string (self->conn->mysql, self->buf.data + self->buf.len,
                                               val, (unsigned long) len);
    self->buf.data [self->buf.len++] = '\'';
    return 0;
}

//  Append one row to the stream (queued once a chunk is full).
static int
s_encode_row (dbt_mariadb_write_t *self, const dbt_row_t *row, char *err)
{
    if (row->ncols != self->ncols) {
        dbt_err_set (err, "mysql: row has %zu cells, the results table %zu columns",
                     row->ncols, self->ncols);
        return DBT_EINVAL;
    }
    size_t mark = self->buf.len;
    if (self->insert) {
        if (self->insert_rows == 0)
            dbt_buf_puts (&self->buf, self->sql);
        dbt_buf_puts (&self->buf, self->insert_rows ? ",(" : "(");
    }
    for (size_t i = 0; i < row->ncols; i++) {
        int rc = s_encode_cell (self, i, row->vals [i], row->lens [i], err);
        if (rc) {
            self->buf.len = mark;
            return rc;
        }
        if (self->insert)
            dbt_buf_putc (&self->buf, i + 1 < row->ncols ? ',' : ')');
        else
            dbt_buf_putc (&self->buf, i + 1 < row->ncols ? '\t' : '\n');
    }
    if (self->insert)
        self->insert_rows++;
    self->rows++;
    return 0;
}

//  --------------------------------------------------------------------------
//  Multi-row INSERTs (a server with local_infile=0)

//  Run the INSERT built so far. Returns 0 or an error code; a warning (a
//  value the table changed) fails it as in LOAD DATA.
static int
s_insert_flush (dbt_mariadb_write_t *self, char *err)
{
    if (self->insert_rows == 0)
        return 0;
    dbt_mariadb_t *conn = self->conn;
    size_t rows = self->insert_rows;
    self->insert_rows = 0;
    int failed = mysql_real_query (conn->mysql, self->buf.data, self->buf.len);
    dbt_buf_reset (&self->buf);
    if (failed) {
        if (mysql_errno (conn->mysql) == ER_NET_PACKET_TOO_LARGE)
            return dbt_mariadb_error (conn, mysql_errno (conn->mysql), "a results row is "
                                      "larger than the server's max_allowed_packet",
                                      "cannot write the results: ", err);
        return dbt_mariadb_last_error (conn, "cannot write the results: ", err);
    }
    uint64_t affected = mysql_affected_rows (conn->mysql);
    unsigned warnings = mysql_warning_count (conn->mysql);
    if (warnings) {
        self->warnings = warnings;
        self->affected = affected;
        return 1;
    }
    if (affected != rows) {
        dbt_err_set (err, "mysql: %" PRIu64 " of %zu results rows were inserted", affected, rows);
        return DBT_ERROR;
    }
    self->inserted += affected;
    return 0;
}

//  --------------------------------------------------------------------------
//  Write state

//  A new write of table with cols (copied).
static dbt_mariadb_write_t *
s_write_new (dbt_mariadb_t *conn, const char *table, const dbt_column_t *cols, size_t ncols)
{
    dbt_mariadb_write_t *self = (dbt_mariadb_write_t *) dbt_malloc (sizeof (dbt_mariadb_write_t));
    self->conn = conn;
    self->table = dbt_strdup (table);
    self->cols = (dbt_column_t *) dbt_malloc ((ncols ? ncols : 1) * sizeof (dbt_column_t));
    self->ncols = ncols;
    for (size_t i = 0; i < ncols; i++) {
        self->cols [i] = cols [i];
        self->cols [i].name = dbt_strdup (cols [i].name ? cols [i].name : "");
        self->cols [i].source_type = NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->cond, NULL);
    return self;
}

//  Free a write (its loader already stopped); nulls the pointer.
static void
s_write_destroy (dbt_mariadb_write_t **self_p)
{
    dbt_mariadb_write_t *self = *self_p;
    if (!self)
        return;
    assert (!self->running);
    free (self->table);
    dbt_columns_free (&self->cols, self->ncols);
    free (self->sql);
    dbt_buf_free (&self->buf);
    for (size_t i = 0; i < S_QUEUE; i++)
        dbt_buf_free (&self->queue [i]);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->cond);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Create the staging table and prepare its LOAD DATA statement.

int
dbt_mariadb_write_begin (void *handle, const char *table, const dbt_column_t *cols,
                         size_t ncols, const dbt_table_opts_t *opts, char *err)
{
    dbt_mariadb_t *conn = (dbt_mariadb_t *) handle;
    if (!conn->results) {
        dbt_err_set (err, "mysql: a source connection cannot take results");
        return DBT_EINVAL;
    }
    if (conn->write) {
        dbt_err_set (err, "mysql: a results write is already in progress");
        return DBT_EINVAL;
    }
    dbt_mariadb_query_end (conn);
    atomic_store (&conn->canceled, false);
    conn->timeout_ms = 0;
    //  A results write has no time limit, whatever the last query had.
    int rc = dbt_mariadb_set_timeout (conn, 0, err);
    if (rc)
        return rc;
    dbt_mariadb_write_t *self = s_write_new (conn, table, cols, ncols);
    conn->write = self;
    char *qtable = dbt_quote_ident (table, '`');
    char *drop = dbt_printf ("DROP TABLE IF EXISTS %s", qtable);
    rc = dbt_mariadb_exec (conn, drop, "cannot create the results table: ", err);
    free (drop);
    dbt_buf_t create = { 0 };
    dbt_buf_t load = { 0 };
    dbt_buf_printf (&create, "CREATE TABLE %s (", qtable);
    //  Hex literals: the same bytes whatever the server's sql_mode says
    //  about backslashes in strings
    dbt_buf_printf (&load, "LOAD DATA LOCAL INFILE '" S_STREAM "' INTO TABLE %s "
                    "CHARACTER SET utf8mb4 FIELDS TERMINATED BY 0x09 ESCAPED BY 0x5c "
                    "LINES TERMINATED BY 0x0a (", qtable);
    for (size_t i = 0; i < ncols; i++) {
        char *qname = dbt_quote_ident (self->cols [i].name, '`');
        char type [48];
        dbt_buf_printf (&create, "%s%s %s%s", i ? ", " : "", qname,
                        s_sql_type (&cols [i], type, sizeof (type)),
                        cols [i].not_null ? " NOT NULL" : "");
        dbt_buf_printf (&load, "%s%s", i ? ", " : "", qname);
        free (qname);
    }
    dbt_buf_puts (&create, ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    dbt_buf_putc (&load, ')');
    if (conn->no_infile) {
        //  INSERT INTO t (cols) VALUES: the column list of the LOAD DATA
        char *cols_list = strrchr (load.data, '(');
        char *head = dbt_printf ("INSERT INTO %s %s VALUES ", qtable, cols_list);
        dbt_buf_reset (&load);
        dbt_buf_puts (&load, head);
        free (head);
        self->insert = true;
        size_t limit = conn->max_packet > 2048 ? conn->max_packet - 1024 : 1024;
        self->insert_max = limit < S_INSERT_MAX ? limit : S_INSERT_MAX;
    }
    if (rc == 0)
        rc = dbt_mariadb_exec (conn, create.data, "cannot create the results table: ", err);
    dbt_buf_free (&create);
    free (qtable);
    self->sql = dbt_buf_take (&load);
    if (rc)
        dbt_mariadb_write_abort (conn, table);
    return rc;
}

int
dbt_mariadb_write_row (void *handle, const dbt_row_t *row, char *err)
{
    dbt_mariadb_write_t *self = ((dbt_mariadb_t *) handle)->write;
    if (!self) {
        dbt_err_set (err, "mysql: no results write in progress");
        return DBT_EINVAL;
    }
    int rc = s_encode_row (self, row, err);
    if (rc == 0 && self->insert && self->buf.len >= self->insert_max) {
        rc = s_insert_flush (self, err);
        return rc == 1 ? s_warnings_error (self, err) : rc;
    }
    if (rc || self->insert || self->buf.len < S_CHUNK)
        return rc;
    rc = s_load_push (self, err);
    if (rc == 1) {
        //  The statement ended before the stream did: it failed
        rc = s_load_finish (self, err);
        if (rc == 0) {
            dbt_err_set (err, "mysql: the results load ended early");
            rc = DBT_ERROR;
        }
    }
    return rc;
}

//  Swap the staging table in under the final name with one RENAME TABLE,
//  then drop the old table.
static int
s_swap (dbt_mariadb_t *conn, const char *table, const char *final, char *err)
{
    char *qtable = dbt_quote_ident (table, '`');
    char *qfinal = dbt_quote_ident (final, '`');
    char old [32];
    snprintf (old, sizeof (old), "dbt_old_%016" PRIx64, dbt_random64 ());
    char *sql = dbt_printf ("RENAME TABLE %s TO `%s`, %s TO %s", qfinal, old, qtable, qfinal);
    int rc = 0;
    bool replaced = true;
    if (mysql_real_query (conn->mysql, sql, strlen (sql))) {
        if (mysql_errno (conn->mysql) == ER_NO_SUCH_TABLE) {
            //  No final table yet (or no staging table: this rename says so)
            free (sql);
            sql = dbt_printf ("RENAME TABLE %s TO %s", qtable, qfinal);
            rc = dbt_mariadb_exec (conn, sql, "cannot swap in the results table: ", err);
            replaced = false;
        }
        else
            rc = dbt_mariadb_last_error (conn, "cannot swap in the results table: ", err);
    }
    free (sql);
    if (rc == 0 && replaced) {
        char drop [64];
        snprintf (drop, sizeof (drop), "DROP TABLE `%s`", old);
        char derr [DBT_ERRMSG_LEN];
        if (dbt_mariadb_exec (conn, drop, "cannot drop the replaced results table: ", derr))
            dbt_log (DBT_LOG_WARN, "%s", derr);
    }
    free (qtable);
    free (qfinal);
    return rc;
}

//  --------------------------------------------------------------------------
//  End the stream, check the load, swap the table in.

int
dbt_mariadb_write_commit (void *handle, const char *table, const char *final, char *err)
{
    dbt_mariadb_t *conn = (dbt_mariadb_t *) handle;
    dbt_mariadb_write_t *self = conn->write;
    if (!self) {
        dbt_err_set (err, "mysql: no results write in progress");
        return DBT_EINVAL;
    }
    int rc;
    if (self->insert) {
        rc = s_insert_flush (self, err);
        if (rc == 1)
            rc = s_warnings_error (self, err);
        if (rc == 0 && self->inserted != (uint64_t) self->rows) {
            dbt_err_set (err, "mysql: %" PRIu64 " of %" PRId64 " results rows were inserted",
                         self->inserted, self->rows);
            rc = DBT_ERROR;
        }
    }
    else {
        rc = s_load_push (self, err);
        if (rc >= 0)
            rc = s_load_finish (self, err);
    }
    if (rc == 0 && strcmp (table, final) != 0)
        rc = s_swap (conn, table, final, err);
    if (rc) {
        dbt_mariadb_write_abort (conn, table);
        return rc;
    }
    s_write_destroy (&conn->write);
    return 0;
}

//  --------------------------------------------------------------------------
//  Stop the stream and drop the staging table (DDL is not transactional).

void
dbt_mariadb_write_abort (void *handle, const char *table)
{
    dbt_mariadb_t *conn = (dbt_mariadb_t *) handle;
    dbt_mariadb_write_t *self = conn->write;
    if (!self)
        return;
    s_load_stop (self, true);
    if (conn->mysql && !conn->lost) {
        char *qtable = dbt_quote_ident (self->table, '`');
        char *sql = dbt_printf ("DROP TABLE IF EXISTS %s", qtable);
        char err [DBT_ERRMSG_LEN];
        if (dbt_mariadb_exec (conn, sql, "cannot drop the staging table: ", err))
            dbt_log (DBT_LOG_WARN, "%s", err);
        free (sql);
        free (qtable);
    }
    s_write_destroy (&conn->write);
}

int
dbt_mariadb_drop_table (void *handle, const char *table, char *err)
{
    dbt_mariadb_t *conn = (dbt_mariadb_t *) handle;
    dbt_mariadb_query_end (conn);
    if (conn->write) {
        dbt_err_set (err, "mysql: cannot drop a table during a results write");
        return DBT_EINVAL;
    }
    char *qtable = dbt_quote_ident (table, '`');
    char *sql = dbt_printf ("DROP TABLE IF EXISTS %s", qtable);
    int rc = dbt_mariadb_exec (conn, sql, "cannot drop table: ", err);
    free (sql);
    free (qtable);
    return rc;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test (offline: column types, row encoding and refusals)

//  Encode one row into a fresh string (the write's buffer emptied first),
//  or NULL when refused (the message in err).
static char *
s_encoded (dbt_mariadb_write_t *self, const char **vals, const size_t *lens, char *err)
{
    dbt_row_t row = { self->ncols, vals, lens };
    dbt_buf_reset (&self->buf);
    if (s_encode_row (self, &row, err))
        return NULL;
    return dbt_strndup (self->buf.data, self->buf.len);
}

void
dbt_mariadb_write_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    //  Results column types
    char buf [48];
    const struct {
        dbt_column_t col;
        const char *sql;
    } types [] = {
        { { "a", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false }, "LONGTEXT" },
        { { "a", DBT_COL_BIGINT, 0, -1, NULL, 0, 0, 0, false }, "BIGINT" },
        { { "a", DBT_COL_UBIGINT, 0, -1, NULL, 0, 0, 0, false }, "BIGINT UNSIGNED" },
        { { "a", DBT_COL_DECIMAL, 24, 6, NULL, 0, 0, 0, false }, "DECIMAL(24,6)" },
        { { "a", DBT_COL_DECIMAL, 65, 38, NULL, 0, 0, 0, false }, "DECIMAL(65,38)" },
        { { "a", DBT_COL_DECIMAL, 3, 3, NULL, 0, 0, 0, false }, "DECIMAL(3,3)" },
        { { "a", DBT_COL_DECIMAL, 0, -1, NULL, 0, 0, 0, false }, "LONGTEXT" },
        { { "a", DBT_COL_DECIMAL, 66, 2, NULL, 0, 0, 0, false }, "LONGTEXT" },
        { { "a", DBT_COL_DECIMAL, 60, 39, NULL, 0, 0, 0, false }, "LONGTEXT" },
        { { "a", DBT_COL_DECIMAL, 5, 7, NULL, 0, 0, 0, false }, "LONGTEXT" },
        { { "a", DBT_COL_DOUBLE, 0, -1, NULL, 0, 0, 0, false }, "DOUBLE" },
        { { "a", DBT_COL_BOOLEAN, 0, -1, NULL, 0, 0, 0, false }, "BOOLEAN" },
        { { "a", DBT_COL_DATE, 0, -1, NULL, 0, 0, 0, false }, "DATE" },
        { { "a", DBT_COL_TIMESTAMP, 0, -1, NULL, 0, 0, 0, false }, "DATETIME(6)" },
        { { "a", DBT_COL_TIMESTAMPTZ, 0, -1, NULL, 0, 0, 0, false }, "DATETIME(6)" },
    };
    for (size_t i = 0; i < sizeof (types) / sizeof (types [0]); i++)
        assert (streq (s_sql_type (&types [i].col, buf, sizeof (buf)), types [i].sql));


    //  Row encoding for LOAD DATA, and refusals
    dbt_column_t wcols [] = {
        { "t", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false },
        { "b", DBT_COL_BOOLEAN, 0, -1, NULL, 0, 0, 0, false },
        { "f", DBT_COL_DOUBLE, 0, -1, NULL, 0, 0, 0, false },
        { "d", DBT_COL_DECIMAL, 12, 2, NULL, 0, 0, 0, false },
        { "dt", DBT_COL_DECIMAL, 0, -1, NULL, 0, 0, 0, false },
        { "day", DBT_COL_DATE, 0, -1, NULL, 0, 0, 0, false },
        { "tz", DBT_COL_TIMESTAMPTZ, 0, -1, NULL, 0, 0, 0, false },
    };
    dbt_mariadb_write_t *self = s_write_new (NULL, "stage", wcols, 7);
    const char *row1 [] = { "a\tb\nc\\d\0e\r", "t", "1e-300", "-0.50", "NaN", "2024-02-29",
                            "2024-01-02 03:04:05.5+00" };
    size_t lens1 [] = { 10, 1, 6, 5, 3, 10, 24 };
    char *line = s_encoded (self, row1, lens1, err);
    assert (line && streq (line, "a\\tb\\nc\\\\d\\0e\\r\t1\t1e-300\t-0.50\tNaN\t2024-02-29\t"
                                 "2024-01-02 03:04:05.5\n"));
    free (line);
    const char *row2 [] = { NULL, "false", NULL, NULL, NULL, NULL, "2000-01-01 05:30:00+05:30" };
    size_t lens2 [] = { 0, 5, 0, 0, 0, 0, 25 };
    line = s_encoded (self, row2, lens2, err);
    assert (line && streq (line, "\\N\t0\t\\N\t\\N\t\\N\t\\N\t2000-01-01 00:00:00\n"));
    free (line);
    const char *row3 [] = { "NULL", "f", "-Infinity", "1", "1", "2024-01-01", NULL };
    size_t lens3 [] = { 4, 1, 9, 1, 1, 10, 0 };
    assert (s_encoded (self, row3, lens3, err) == NULL);
    assert (streq (err, "column 'f' row 3: '-Infinity' cannot be stored in a MariaDB DOUBLE"));
    assert (self->buf.len == 0);
    row3 [2] = "2";
    lens3 [2] = 1;
    row3 [3] = "NaN";
    lens3 [3] = 3;
    assert (s_encoded (self, row3, lens3, err) == NULL && strstr (err, "MariaDB DECIMAL"));
    row3 [3] = "1";
    lens3 [3] = 1;
    row3 [5] = "-infinity";
    lens3 [5] = 9;
    assert (s_encoded (self, row3, lens3, err) == NULL && strstr (err, "column 'day' row 3"));
    row3 [5] = "2024-01-01";
    lens3 [5] = 10;
    row3 [1] = "yes";
    assert (s_encoded (self, row3, lens3, err) == NULL && strstr (err, "not a valid BOOLEAN"));
    row3 [1] = "1";
    row3 [6] = "2024-01-01 00:00:00 UTC";
    lens3 [6] = 23;
    assert (s_encoded (self, row3, lens3, err) == NULL
            && strstr (err, "not a valid TIMESTAMPTZ"));
    row3 [6] = NULL;
    line = s_encoded (self, row3, lens3, err);
    assert (line && streq (line, "NULL\t1\t2\t1\t1\t2024-01-01\t\\N\n"));
    free (line);
    dbt_row_t short_row = { 2, row3, lens3 };
    assert (s_encode_row (self, &short_row, err) == DBT_EINVAL && strstr (err, "2 cells"));
    s_write_destroy (&self);
    assert (self == NULL);

    //  No write in progress
    dbt_mariadb_t conn = { .results = true };
    assert (dbt_mariadb_write_row (&conn, &short_row, err) == DBT_EINVAL);
    assert (strstr (err, "no results write"));
    dbt_mariadb_write_abort (&conn, "stage");
    assert (dbt_mariadb_write_commit (&conn, "stage", "final", err) == DBT_EINVAL);
    conn.results = false;
    assert (dbt_mariadb_write_begin (&conn, "stage", wcols, 7, NULL, err) == DBT_EINVAL);
    assert (strstr (err, "source connection"));

}
#endif  //  DBT_SELFTEST
