/*  =========================================================================
    dbt_driver_clickhouse - ClickHouse source driver (HTTP interface, libcurl)

    See dbt_driver_clickhouse.h. A handle owns a curl multi handle and one
    easy handle reused for every query (HTTP keep-alive), used by one thread
    at a time. cancel may run on another thread: it sets an atomic flag,
    wakes the transfer's poll (curl_multi_wakeup is thread-safe) and sends
    KILL QUERY on a short-lived easy handle of its own; it reads only the
    query id (under a mutex) and settings fixed at connect.

    Format: FORMAT Native, measured fastest on ClickHouse 18.16 (5M rows of
    the six-column report shape, bench/ch_bench.c), typed (the block header
    carries column types) and framed: a clean end is provable because the
    stream must end at a block boundary with every block repeating the
    first's columns. 18.16 has no RowBinaryWithNamesAndTypes, and with
    RowBinary or TabSeparated the error text the server appends after HTTP
    200 when a query fails in mid-stream can read as rows. Native costs one
    block of memory (the server's max_block_size rows) and has no header for
    an empty result, whose columns are then read with DESCRIBE TABLE (sql).

    Rows are pulled: fetch decodes from what has arrived and drives the
    transfer (curl_multi_perform / curl_multi_poll) only when it needs more
    bytes, so memory holds the current block plus what one perform call
    receives, whatever the result's size.

    Time limits: max_execution_time (whole seconds, rounded up: ClickHouse
    18.16 reads the setting as an integer) stops the query on the server
    with error 159, which fetch returns as DBT_ETIMEDOUT; a client-side
    deadline a second later is the backstop. Any transfer the driver
    abandons (cancel, deadline, query_end with rows unread, a lost
    connection, a garbled stream) is followed by KILL QUERY for its id: a
    ClickHouse query whose client went away runs on until it next writes.
    =========================================================================
*/
#include "dbt_classes.h"
#include <curl/curl.h>
#include <stdatomic.h>

//  Default connect timeout when the config gives none.
#define S_CONNECT_TIMEOUT_MS 30000

//  Largest Native block accepted (the decoder holds one block).
#define S_MAX_BLOCK (512u * 1024 * 1024)

//  Receive buffer of the easy handle: bytes per write callback.
#define S_RECV_BUFFER (256 * 1024)

//  Most bytes of an error response kept.
#define S_ERRBODY_MAX 65536

//  Client-side deadline past the server's time limit.
#define S_DEADLINE_GRACE_MS 1000

//  Limits of the KILL QUERY request.
#define S_KILL_CONNECT_MS 2000
#define S_KILL_TIMEOUT_MS 3000

//  ClickHouse error codes (dbms/src/Common/ErrorCodes.cpp)
#define S_CH_TIMEOUT_EXCEEDED 159
#define S_CH_QUERY_WAS_CANCELLED 394

//  Longest query id: a job id, an attempt number, or a UUID.
#define S_QUERY_ID_MAX (DBT_ID_MAX + 32)

typedef struct {
    //  Fixed at connect (read by cancel from any thread)
    char *url;                  //  base URL: database and DSN settings
    char *user;                 //  basic auth user, NULL for none (owned)
    char *password;             //  basic auth password (owned)
    int64_t connect_timeout_ms; //  connect limit

    CURLM *multi;               //  drives transfers; owns the connections
    CURL *easy;                 //  the query transfer (reused: keep-alive)
    struct curl_slist *headers; //  request headers (owned)
    char curl_err [CURL_ERROR_SIZE];    //  curl's message for the last error
    bool broken;                //  a connection error happened

    //  Cancel
    pthread_mutex_t mutex;      //  guards query_id against cancel
    char query_id [S_QUERY_ID_MAX];     //  id of the running query
    atomic_bool canceled;       //  cancel was called for it

    //  Transfer
    bool running;               //  easy is in multi
    bool ended;                 //  the server ended the query (clean end,
                                //  error status or text): no KILL needed
    bool eof;                   //  the response ended cleanly (HTTP 200)
    long status;                //  HTTP status, 0 until known
    uint64_t received;          //  bytes received so far
    dbt_buf_t errbody;          //  body of a non-200 response (capped)
    dbt_ch_native_t *dec;       //  decodes the Native response
    int64_t deadline;           //  dbt_clock_ms client-side limit, 0 none

    //  Query
    bool in_query;              //  a query's results are being read
    bool done;                  //  all rows were handed out, or it failed
    int failed;                 //  the error code it failed with, or 0
    int64_t timeout_ms;         //  the query's time limit (for errors)
    dbt_column_t *cols;         //  columns of an empty result (DESCRIBE)
    size_t ncols;               //  number of those
} s_ch_t;

//  --------------------------------------------------------------------------
//  SQL text: placeholders and literals (pure, tested offline)

char *
dbt_driver_clickhouse_quote (const char *val, size_t len)
{
    dbt_buf_t buf = { 0 };
    dbt_buf_reserve (&buf, len + 2);
    dbt_buf_putc (&buf, '\'');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) val [i];
        const char *esc = c == '\\' ? "\\\\" : c == '\'' ? "\\'" : c == 0 ? "\\0"
                        : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
                        : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (esc)
            dbt_buf_append (&buf, esc, 2);
        else
        if (c < 0x20 || c == 0x7f)
            dbt_buf_printf (&buf, "\\x%02x", c);
        else
            dbt_buf_putc (&buf, (char) c);
    }
    dbt_buf_putc (&buf, '\'');
    return dbt_buf_take (&buf);
}

//  Where the placeholders of a statement are.
typedef struct {
    size_t *at;                 //  offsets of the ? placeholders (owned)
    size_t count;               //  number of placeholders
    size_t end;                 //  length of the statement without a final ;
} s_scan_t;

//  Skip a quoted literal or identifier starting at sql [i] (the quote q):
//  backslash escapes and a doubled quote stay inside. Returns the offset
//  after its closing quote, or 0 when it is not closed.
static size_t
s_skip_quoted (const char *sql, size_t i, char q)
{
    for (i++; sql [i]; i++) {
        if (sql [i] == '\\') {
            if (!sql [++i])
                return 0;
        }
        else
        if (sql [i] == q) {
            if (sql [i + 1] != q)
                return i + 1;
            i++;
        }
    }
    return 0;
}

//  Scan sql the way ClickHouse's lexer splits it (18.16: /* */ comments do
//  not nest, no # comments). Returns 0, or -1 with err set.
static int
s_scan (const char *sql, s_scan_t *scan, char *err)
{
    memset (scan, 0, sizeof (*scan));
    size_t semicolon = 0;       //  offset + 1 of a statement-ending ;
    bool tokens = false;        //  anything but blanks and comments seen
    size_t cap = 0;
    size_t i = 0;
    while (sql [i]) {
        char c = sql [i];
        if (c == '-' && sql [i + 1] == '-') {
            while (sql [i] && sql [i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && sql [i + 1] == '*') {
            const char *close = strstr (sql + i + 2, "*/");
            if (!close) {
                dbt_err_set (err, "clickhouse: the SQL ends inside a /* comment");
                goto fail;
            }
            i = (size_t) (close - sql) + 2;
            continue;
        }
        if (isspace ((unsigned char) c)) {
            i++;
            continue;
        }
        if (semicolon) {
            dbt_err_set (err, "clickhouse: a task must be one SQL statement, found more "
                         "after the first");
            goto fail;
        }
        if (c == ';') {
            semicolon = i + 1;
            i++;
            continue;
        }
        tokens = true;
        if (c == '\'' || c == '"' || c == '`') {
            size_t next = s_skip_quoted (sql, i, c);
            if (!next) {
                dbt_err_set (err, "clickhouse: the SQL ends inside a %s",
                             c == '\'' ? "string literal" : "quoted identifier");
                goto fail;
            }
            i = next;
            continue;
        }
        if (c == '?') {
            if (scan->count == cap) {
                cap = cap ? cap * 2 : 8;
                scan->at = (size_t *) dbt_realloc (scan->at, cap * sizeof (size_t));
            }
            scan->at [scan->count++] = i;
        }
        i++;
    }
    if (!tokens) {
        dbt_err_set (err, "clickhouse: the task has no SQL statement");
        goto fail;
    }
    scan->end = semicolon ? semicolon - 1 : i;
    return 0;
fail:
    free (scan->at);
    memset (scan, 0, sizeof (*scan));
    return -1;
}

int
dbt_driver_clickhouse_params (const char *sql, char *err)
{
    s_scan_t scan;
    if (s_scan (sql, &scan, err))
        return -1;
    free (scan.at);
    return (int) scan.count;
}

//  Substitute args (placeholders: false leaves every ? as it is). Returns
//  0 or DBT_EINVAL.
static int
s_bind (const char *sql, const dbt_args_t *args, bool placeholders, char **out, char *err)
{
    s_scan_t scan;
    if (s_scan (sql, &scan, err))
        return DBT_EINVAL;
    if (!placeholders)
        scan.count = 0;
    if (scan.count > INT_MAX || dbt_args_check ((int) scan.count, args, err)) {
        free (scan.at);
        return DBT_EINVAL;
    }
    dbt_buf_t buf = { 0 };
    dbt_buf_reserve (&buf, scan.end + 16);
    size_t from = 0;
    for (size_t k = 0; k < scan.count; k++) {
        dbt_buf_append (&buf, sql + from, scan.at [k] - from);
        const char *arg = args->vals [k];
        if (arg) {
            char *quoted = dbt_driver_clickhouse_quote (arg, strlen (arg));
            dbt_buf_puts (&buf, quoted);
            free (quoted);
        }
        else
            dbt_buf_puts (&buf, "NULL");
        from = scan.at [k] + 1;
    }
    dbt_buf_append (&buf, sql + from, scan.end - from);
    free (scan.at);
    *out = dbt_buf_take (&buf);
    return 0;
}

int
dbt_driver_clickhouse_bind (const char *sql, const dbt_args_t *args, char **out, char *err)
{
    return s_bind (sql, args, true, out, err);
}

//  --------------------------------------------------------------------------
//  DSN

//  URL-decode len bytes of a query parameter (+ is a space). Caller frees.
static char *
s_unescape (CURL *easy, const char *str, size_t len)
{
    char *plus = dbt_strndup (str, len);
    for (char *p = plus; *p; p++)
        if (*p == '+')
            *p = ' ';
    int outlen = 0;
    char *raw = curl_easy_unescape (easy, plus, (int) len, &outlen);
    free (plus);
    char *value = raw ? dbt_strndup (raw, (size_t) outlen) : dbt_strdup ("");
    curl_free (raw);
    return value;
}

//  Parameters the driver sets itself.
static bool
s_reserved (const char *name)
{
    static const char *reserved [] = {
        "query", "query_id", "default_format", "max_execution_time", NULL
    };
    for (size_t i = 0; reserved [i]; i++)
        if (streq (name, reserved [i]))
            return true;
    return false;
}

//  Parse dsn with curl_url into self->url (user info removed, database
//  and settings in the query string), user and password. Returns 0 or
//  DBT_EINVAL with err set.
static int
s_parse_dsn (s_ch_t *self, const char *dsn, char *err)
{
    CURLU *url = curl_url ();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    char *database = NULL;
    int rc = DBT_EINVAL;
    CURLUcode uc = curl_url_set (url, CURLUPART_URL, dsn, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        dbt_err_set (err, "clickhouse: bad dsn '%s': %s (an http:// URL, e.g. "
                     "http://127.0.0.1:8123/?database=default)", dsn, curl_url_strerror (uc));
        goto done;
    }
    curl_url_get (url, CURLUPART_SCHEME, &scheme, 0);
    if (curl_url_get (url, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        dbt_err_set (err, "clickhouse: dsn '%s' names no host", dsn);
        goto done;
    }
    //  Upstream's clickhouse-go DSNs speak the native protocol (tcp://,
    //  port 9000); this driver speaks HTTP, whose port is 8123
    if (curl_url_get (url, CURLUPART_PORT, &port, 0) == CURLUE_OK && streq (port, "9000")) {
        dbt_err_set (err, "clickhouse: dsn names port 9000, ClickHouse's native protocol; "
                     "this driver speaks its HTTP interface, port 8123 by default "
                     "(http://%s:8123/?database=DB)", host);
        goto done;
    }
    curl_free (port);
    port = NULL;
    if (scheme && (strcasecmp (scheme, "tcp") == 0 || strcasecmp (scheme, "native") == 0)) {
        dbt_err_set (err, "clickhouse: dsn is a native-protocol (%s://) DSN; this driver "
                     "speaks ClickHouse's HTTP interface: http://%s:8123/?database=DB "
                     "(user and password as URL user info or user=, password=)", scheme, host);
        goto done;
    }
    curl_url_get (url, CURLUPART_PATH, &path, 0);
    bool short_form = scheme && strcasecmp (scheme, "clickhouse") == 0;
    if (short_form) {
        //  clickhouse://host[:port]/db: the HTTP interface on port 8123
        curl_url_set (url, CURLUPART_SCHEME, "http", 0);
        if (curl_url_get (url, CURLUPART_PORT, &port, 0) != CURLUE_OK)
            curl_url_set (url, CURLUPART_PORT, "8123", 0);
        if (path && path [0] == '/' && path [1]) {
            char *raw = dbt_strdup (path + 1);
            size_t len = strlen (raw);
            if (raw [len - 1] == '/')
                raw [--len] = 0;
            database = s_unescape (self->easy, raw, len);
            free (raw);
        }
        curl_url_set (url, CURLUPART_PATH, "/", 0);
    }
    else
    if (!scheme || (strcasecmp (scheme, "http") != 0 && strcasecmp (scheme, "https") != 0)) {
        dbt_err_set (err, "clickhouse: dsn '%s' must be an http://, https:// or "
                     "clickhouse:// URL", dsn);
        goto done;
    }
    char *part = NULL;
    if (curl_url_get (url, CURLUPART_USER, &part, CURLU_URLDECODE) == CURLUE_OK) {
        self->user = dbt_strdup (part);
        curl_free (part);
        part = NULL;
    }
    if (curl_url_get (url, CURLUPART_PASSWORD, &part, CURLU_URLDECODE) == CURLUE_OK) {
        self->password = dbt_strdup (part);
        curl_free (part);
    }
    curl_url_set (url, CURLUPART_USER, NULL, 0);
    curl_url_set (url, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set (url, CURLUPART_FRAGMENT, NULL, 0);

    //  Query parameters: user, password and database are taken out; the
    //  rest are settings, kept as they were written.
    dbt_buf_t settings = { 0 };
    if (curl_url_get (url, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
        for (const char *p = query; *p; ) {
            size_t len = strcspn (p, "&");
            const char *eq = memchr (p, '=', len);
            size_t nlen = eq ? (size_t) (eq - p) : len;
            char *name = s_unescape (self->easy, p, nlen);
            char *value = eq ? s_unescape (self->easy, eq + 1, len - nlen - 1) : dbt_strdup ("");
            char **slot = streq (name, "user") ? &self->user
                        : streq (name, "password") ? &self->password
                        : streq (name, "database") ? &database : NULL;
            if (slot) {
                free (*slot);
                *slot = value;
                value = NULL;
            }
            else
            if (s_reserved (name)) {
                dbt_err_set (err, "clickhouse: dsn parameter '%s' is set by the driver", name);
                free (name);
                free (value);
                dbt_buf_free (&settings);
                goto done;
            }
            else
            if (*name) {
                dbt_buf_putc (&settings, '&');
                dbt_buf_append (&settings, p, len);
            }
            free (name);
            free (value);
            p += len;
            if (*p == '&')
                p++;
        }
    }
    curl_url_set (url, CURLUPART_QUERY, NULL, 0);
    if (database && *database) {
        char *pair = dbt_printf ("database=%s", database);
        curl_url_set (url, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE);
        free (pair);
    }
    if (settings.len)
        curl_url_set (url, CURLUPART_QUERY, settings.data + 1, CURLU_APPENDQUERY);
    dbt_buf_free (&settings);
    if (curl_url_get (url, CURLUPART_URL, &part, 0) != CURLUE_OK) {
        dbt_err_set (err, "clickhouse: bad dsn '%s'", dsn);
        goto done;
    }
    self->url = dbt_strdup (part);
    curl_free (part);
    rc = 0;
done:
    curl_free (scheme);
    curl_free (host);
    curl_free (port);
    curl_free (path);
    curl_free (query);
    free (database);
    curl_url_cleanup (url);
    return rc;
}

//  The URL of a request: base URL plus query_id and settings. Caller frees.
static char *
s_request_url (const s_ch_t *self, const char *query_id, int64_t timeout_ms)
{
    CURLU *url = curl_url ();
    char *result = NULL;
    if (curl_url_set (url, CURLUPART_URL, self->url, 0) == CURLUE_OK) {
        if (query_id) {
            char *pair = dbt_printf ("query_id=%s", query_id);
            curl_url_set (url, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE);
            free (pair);
        }
        if (timeout_ms > 0) {
            char pair [48];
            snprintf (pair, sizeof (pair), "max_execution_time=%" PRId64,
                      (timeout_ms + 999) / 1000);
            curl_url_set (url, CURLUPART_QUERY, pair, CURLU_APPENDQUERY);
        }
        char *part = NULL;
        if (curl_url_get (url, CURLUPART_URL, &part, 0) == CURLUE_OK) {
            result = dbt_strdup (part);
            curl_free (part);
        }
    }
    curl_url_cleanup (url);
    return result;
}

//  --------------------------------------------------------------------------
//  Errors

//  Set err from a ClickHouse error text and return the matching code.
//  18.16 writes "Code: 47, e.displayText() = DB::Exception: msg, e.what() =
//  DB::Exception"; newer servers "Code: 47. DB::Exception: msg. (NAME)".
static int
s_server_error (s_ch_t *self, const char *text, size_t len, char *err)
{
    while (len > 0 && isspace ((unsigned char) text [len - 1]))
        len--;
    long code = 0;
    if (len > 6 && memcmp (text, "Code: ", 6) == 0)
        code = strtol (text + 6, NULL, 10);
    const char *msg = text;
    const char *end = text + len;
    const char *display = memmem (text, len, "e.displayText() = ", 18);
    if (display) {
        msg = display + 18;
        const char *what = memmem (msg, (size_t) (end - msg), ", e.what() = ", 13);
        if (what)
            end = what;
    }
    else
    if (code) {
        msg = text + 6;
        while (msg < end && (isdigit ((unsigned char) *msg) || *msg == '.' || *msg == ','
                             || *msg == ' '))
            msg++;
    }
    if (code == S_CH_QUERY_WAS_CANCELLED && atomic_load (&self->canceled)) {
        dbt_err_set (err, "query canceled");
        return DBT_ECANCELED;
    }
    if (code == S_CH_TIMEOUT_EXCEEDED) {
        dbt_err_set (err, "query exceeded its time limit of %" PRId64 " ms (%.*s)",
                     self->timeout_ms, (int) (end - msg), msg);
        return DBT_ETIMEDOUT;
    }
    if (!code) {
        //  Not ClickHouse talking: a proxy or something else in between
        dbt_err_set (err, "clickhouse: HTTP %ld: %.*s", self->status,
                     (int) (len > 200 ? 200 : len), text);
        return DBT_ECONN;
    }
    dbt_err_set (err, "clickhouse: code %ld: %.*s", code, (int) (end - msg), msg);
    return DBT_ERROR;
}

//  --------------------------------------------------------------------------
//  Transfers

//  Reply callback of KILL QUERY: kept (capped) for a failure's message.
static size_t
s_on_reply (char *data, size_t size, size_t nmemb, void *arg)
{
    dbt_buf_t *reply = (dbt_buf_t *) arg;
    if (reply->len < 1024)
        dbt_buf_append (reply, data, size * nmemb);
    return size * nmemb;
}

//  Ask the server to stop query id: KILL QUERY on an easy handle of its
//  own (any thread may call this). Failures are logged.
static void
s_kill (const s_ch_t *self, const char *query_id)
{
    CURL *easy = curl_easy_init ();
    if (!easy)
        return;
    char *quoted = dbt_driver_clickhouse_quote (query_id, strlen (query_id));
    char *sql = dbt_printf ("KILL QUERY WHERE query_id = %s FORMAT TabSeparated", quoted);
    free (quoted);
    char *url = s_request_url (self, NULL, 0);
    dbt_buf_t reply = { 0 };
    char curl_err [CURL_ERROR_SIZE] = "";
    long connect_ms = self->connect_timeout_ms < S_KILL_CONNECT_MS
                    ? (long) self->connect_timeout_ms : S_KILL_CONNECT_MS;
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) S_KILL_TIMEOUT_MS);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, sql);
    curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_reply);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, &reply);
    if (self->user) {
        curl_easy_setopt (easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        curl_easy_setopt (easy, CURLOPT_USERNAME, self->user);
        curl_easy_setopt (easy, CURLOPT_PASSWORD, self->password ? self->password : "");
    }
    CURLcode res = url ? curl_easy_perform (easy) : CURLE_URL_MALFORMAT;
    long status = 0;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
    if (res != CURLE_OK)
        dbt_log (DBT_LOG_WARN, "clickhouse: cannot kill query '%s': %s", query_id,
                 *curl_err ? curl_err : curl_easy_strerror (res));
    else
    if (status != 200)
        dbt_log (DBT_LOG_WARN, "clickhouse: cannot kill query '%s': HTTP %ld: %.*s",
                 query_id, status, (int) (reply.len > 200 ? 200 : reply.len),
                 reply.data ? reply.data : "");
    dbt_buf_free (&reply);
    free (url);
    free (sql);
    curl_easy_cleanup (easy);
}

//  Receive callback: bytes go to the decoder, or to errbody when the
//  status is not 200. Returning 0 (on cancel) aborts the transfer.
static size_t
s_on_data (char *data, size_t size, size_t nmemb, void *arg)
{
    s_ch_t *self = (s_ch_t *) arg;
    size_t len = size * nmemb;
    if (atomic_load (&self->canceled))
        return 0;
    if (self->status == 0)
        curl_easy_getinfo (self->easy, CURLINFO_RESPONSE_CODE, &self->status);
    if (self->status == 200)
        dbt_ch_native_feed (self->dec, data, len);
    else
    if (self->errbody.len < S_ERRBODY_MAX)
        dbt_buf_append (&self->errbody, data, len);
    self->received += len;
    return len;
}

//  Stop the transfer; KILL the query unless the server ended it.
static void
s_abort (s_ch_t *self)
{
    if (self->running) {
        curl_multi_remove_handle (self->multi, self->easy);
        self->running = false;
    }
    if (!self->ended && self->query_id [0])
        s_kill (self, self->query_id);
    self->ended = true;
}

//  Abort with an error: err gets msg unless it is NULL (already set).
static int
s_fail (s_ch_t *self, int rc, const char *msg, char *err)
{
    if (msg)
        dbt_err_set (err, "%s", msg);
    s_abort (self);
    if (rc == DBT_ECONN)
        self->broken = true;
    return rc;
}

//  Start POSTing body for query_id: timeout_ms goes to the server as
//  max_execution_time; the client gives up after limit_ms (0: never).
static int
s_start (s_ch_t *self, const char *body, const char *query_id, int64_t timeout_ms,
         int64_t limit_ms, char *err)
{
    char *url = s_request_url (self, query_id, timeout_ms);
    if (!url) {
        dbt_err_set (err, "clickhouse: cannot build the request URL");
        return DBT_EINVAL;
    }
    dbt_ch_native_reset (self->dec);
    dbt_buf_reset (&self->errbody);
    self->status = 0;
    self->received = 0;
    self->eof = false;
    self->ended = false;
    self->curl_err [0] = 0;
    self->deadline = limit_ms > 0 ? dbt_clock_ms () + limit_ms : 0;
    curl_easy_setopt (self->easy, CURLOPT_URL, url);
    curl_easy_setopt (self->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen (body));
    curl_easy_setopt (self->easy, CURLOPT_COPYPOSTFIELDS, body);
    free (url);
    CURLMcode mc = curl_multi_add_handle (self->multi, self->easy);
    if (mc != CURLM_OK) {
        dbt_err_set (err, "clickhouse: cannot start a request: %s", curl_multi_strerror (mc));
        return DBT_ECONN;
    }
    self->running = true;
    return 0;
}

//  The transfer finished: 0 when the response ended cleanly, else the
//  error (the server's, curl's or a cancel).
static int
s_finished (s_ch_t *self, CURLcode res, char *err)
{
    curl_multi_remove_handle (self->multi, self->easy);
    self->running = false;
    if (res == CURLE_WRITE_ERROR && atomic_load (&self->canceled))
        return s_fail (self, DBT_ECANCELED, "query canceled", err);
    if (res != CURLE_OK) {
        dbt_err_set (err, "clickhouse: %s", *self->curl_err ? self->curl_err
                                                            : curl_easy_strerror (res));
        return s_fail (self, DBT_ECONN, NULL, err);
    }
    self->ended = true;
    if (self->status == 0)          //  an empty body: no callback saw it
        curl_easy_getinfo (self->easy, CURLINFO_RESPONSE_CODE, &self->status);
    if (self->status != 200) {
        int rc = s_server_error (self, self->errbody.data ? self->errbody.data : "",
                                 self->errbody.len, err);
        if (rc == DBT_ECONN)
            self->broken = true;
        return rc;
    }
    self->eof = true;
    return 0;
}

//  Drive the transfer until more bytes arrived or it ended. Returns 0 or
//  an error code (the transfer is then stopped).
static int
s_pump (s_ch_t *self, char *err)
{
    uint64_t seen = self->received;
    while (self->running) {
        if (atomic_load (&self->canceled))
            return s_fail (self, DBT_ECANCELED, "query canceled", err);
        int64_t now = dbt_clock_ms ();
        if (self->deadline && now >= self->deadline) {
            dbt_err_set (err, "query exceeded its time limit of %" PRId64 " ms",
                         self->timeout_ms);
            return s_fail (self, DBT_ETIMEDOUT, NULL, err);
        }
        int still = 0;
        CURLMcode mc = curl_multi_perform (self->multi, &still);
        if (mc != CURLM_OK) {
            dbt_err_set (err, "clickhouse: %s", curl_multi_strerror (mc));
            return s_fail (self, DBT_ECONN, NULL, err);
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read (self->multi, &left)))
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == self->easy)
                return s_finished (self, msg->data.result, err);
        if (self->received != seen)
            return 0;
        int wait = 1000;
        if (self->deadline && self->deadline - now < wait)
            wait = (int) (self->deadline - now) + 1;
        mc = curl_multi_poll (self->multi, NULL, 0, wait, NULL);
        if (mc != CURLM_OK) {
            dbt_err_set (err, "clickhouse: %s", curl_multi_strerror (mc));
            return s_fail (self, DBT_ECONN, NULL, err);
        }
    }
    return 0;
}

//  The decoder's answer rc when it is not a row or the header: an error
//  from the stream, or the server's appended exception.
static int
s_stream_error (s_ch_t *self, int rc, char *err)
{
    if (rc == DBT_CH_EXCEPTION) {
        self->ended = true;
        size_t len;
        const char *text = dbt_ch_native_rest (self->dec, &len);
        return s_server_error (self, text, len, err);
    }
    return s_fail (self, rc, NULL, err);
}

//  Start body (see s_start) and read the first block's header: 1 with
//  columns, 0 for an empty response, or an error code.
static int
s_request (s_ch_t *self, const char *body, const char *query_id, int64_t timeout_ms,
           int64_t limit_ms, char *err)
{
    int rc = s_start (self, body, query_id, timeout_ms, limit_ms, err);
    while (rc == 0) {
        rc = dbt_ch_native_header (self->dec, self->eof, err);
        if (rc == 1 || rc == 0)
            return rc;
        if (rc != DBT_CH_NEED)
            return s_stream_error (self, rc, err);
        rc = s_pump (self, err);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Connect

static void s_disconnect (void **handle_p);

//  Once per process: libcurl's global state.
static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;

static void
s_curl_init (void)
{
    curl_global_init (CURL_GLOBAL_ALL);
}

static int
s_connect (const dbt_dbconf_t *conf, void **handle_p, char *err)
{
    if (!conf->dsn || !*conf->dsn) {
        dbt_err_set (err, "clickhouse: empty dsn (an http:// URL, e.g. "
                     "http://127.0.0.1:8123/?database=default)");
        return DBT_EINVAL;
    }
    pthread_once (&s_curl_once, s_curl_init);
    s_ch_t *self = (s_ch_t *) dbt_malloc (sizeof (s_ch_t));
    pthread_mutex_init (&self->mutex, NULL);
    atomic_init (&self->canceled, false);
    self->connect_timeout_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms
                                                            : S_CONNECT_TIMEOUT_MS;
    self->multi = curl_multi_init ();
    self->easy = curl_easy_init ();
    self->dec = dbt_ch_native_new (S_MAX_BLOCK);
    void *handle = self;
    if (!self->multi || !self->easy) {
        dbt_err_set (err, "clickhouse: cannot create a curl handle");
        s_disconnect (&handle);
        return DBT_ECONN;
    }
    int rc = s_parse_dsn (self, conf->dsn, err);
    if (rc) {
        s_disconnect (&handle);
        return rc;
    }
    CURL *easy = self->easy;
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) self->connect_timeout_ms);
    curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (easy, CURLOPT_BUFFERSIZE, (long) S_RECV_BUFFER);
    curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, self->curl_err);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, self);
    curl_easy_setopt (easy, CURLOPT_USERAGENT, "dungbeetle/" DBT_VERSION_STRING);
    //  No "Expect: 100-continue" round trip before a long SQL text
    self->headers = curl_slist_append (NULL, "Expect:");
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, self->headers);
    if (self->user) {
        curl_easy_setopt (easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        curl_easy_setopt (easy, CURLOPT_USERNAME, self->user);
        curl_easy_setopt (easy, CURLOPT_PASSWORD, self->password ? self->password : "");
    }
    //  A cheap request that checks address, user, password and database;
    //  it also leaves a kept-alive connection for the first query.
    self->timeout_ms = self->connect_timeout_ms;
    rc = s_request (self, "SELECT 1 FORMAT Native", NULL, 0, self->connect_timeout_ms, err);
    dbt_row_t row;
    while (rc == 1 || rc == DBT_CH_NEED) {
        rc = dbt_ch_native_next (self->dec, &row, self->eof, err);
        if (rc == DBT_CH_NEED)
            rc = s_pump (self, err) ? -1 : DBT_CH_NEED;
    }
    if (rc == DBT_CH_EXCEPTION)
        rc = s_stream_error (self, rc, err);
    if (rc) {
        char inner [DBT_ERRMSG_LEN];
        snprintf (inner, sizeof (inner), "%s", err);
        dbt_err_set (err, "clickhouse: cannot connect to '%s': %s", self->url, inner);
        s_disconnect (&handle);
        return DBT_ECONN;
    }
    self->timeout_ms = 0;
    *handle_p = self;
    return 0;
}

static void s_query_end (void *handle);

static void
s_disconnect (void **handle_p)
{
    assert (handle_p);
    s_ch_t *self = (s_ch_t *) *handle_p;
    if (!self)
        return;
    if (self->easy)
        s_query_end (self);
    if (self->multi && self->easy)
        curl_multi_remove_handle (self->multi, self->easy);
    curl_easy_cleanup (self->easy);
    curl_multi_cleanup (self->multi);
    curl_slist_free_all (self->headers);
    dbt_ch_native_destroy (&self->dec);
    dbt_buf_free (&self->errbody);
    pthread_mutex_destroy (&self->mutex);
    free (self->url);
    free (self->user);
    free (self->password);
    free (self);
    *handle_p = NULL;
}

static bool
s_alive (void *handle)
{
    s_ch_t *self = (s_ch_t *) handle;
    return self && !self->broken;
}

//  --------------------------------------------------------------------------
//  Source side

static int
s_prepare (void *handle, const char *sql, int *nparams, char *err)
{
    int n = dbt_driver_clickhouse_params (sql, err);
    if (n < 0)
        return DBT_EINVAL;
    if (nparams)
        *nparams = n;
    return 0;
}

//  The client-side limit of the running query: the server's, rounded up to
//  seconds, and a grace period.
static int64_t
s_limit (const s_ch_t *self)
{
    if (self->timeout_ms <= 0)
        return 0;
    return (self->timeout_ms + 999) / 1000 * 1000 + S_DEADLINE_GRACE_MS;
}

//  Columns of an empty result: DESCRIBE TABLE (sql). Returns 0 or an error.
static int
s_describe (s_ch_t *self, const char *sql, char *err)
{
    char *body = dbt_printf ("DESCRIBE TABLE (\n%s\n) FORMAT Native", sql);
    char query_id [37];
    dbt_uuid (query_id);
    char inner [DBT_ERRMSG_LEN];
    pthread_mutex_lock (&self->mutex);
    memcpy (self->query_id, query_id, sizeof (query_id));
    pthread_mutex_unlock (&self->mutex);
    int rc = s_request (self, body, query_id, self->timeout_ms, s_limit (self), inner);
    free (body);
    size_t cap = 0;
    dbt_row_t row;
    while (rc >= 0) {
        rc = dbt_ch_native_next (self->dec, &row, self->eof, inner);
        if (rc == DBT_CH_NEED) {
            rc = s_pump (self, inner);
            continue;
        }
        if (rc != 1)
            break;
        if (row.ncols < 2 || !row.vals [0] || !row.vals [1]) {
            dbt_err_set (inner, "unexpected DESCRIBE result");
            rc = DBT_ERROR;
            break;
        }
        if (self->ncols == cap) {
            cap = cap ? cap * 2 : 8;
            self->cols = (dbt_column_t *) dbt_realloc (self->cols, cap * sizeof (dbt_column_t));
        }
        dbt_column_t *col = &self->cols [self->ncols];
        memset (col, 0, sizeof (*col));
        char *type = dbt_strndup (row.vals [1], row.lens [1]);
        rc = dbt_ch_native_type (type, col, inner);
        free (type);
        if (rc)
            break;
        col->name = dbt_strndup (row.vals [0], row.lens [0]);
        self->ncols++;
    }
    if (rc == DBT_CH_EXCEPTION)
        rc = s_stream_error (self, rc, inner);
    if (rc == 0 && self->ncols == 0) {
        dbt_err_set (inner, "no columns");
        rc = DBT_ERROR;
    }
    if (rc) {
        dbt_columns_free (&self->cols, self->ncols);
        self->ncols = 0;
        if (rc == DBT_ECANCELED || rc == DBT_ETIMEDOUT)
            dbt_err_set (err, "%s", inner);
        else
            dbt_err_set (err, "clickhouse: the result is empty and its columns cannot be "
                         "described: %s", inner);
    }
    return rc;
}

static int
s_query (void *handle, const char *sql, const dbt_args_t *args,
         const dbt_query_opts_t *opts, char *err)
{
    s_ch_t *self = (s_ch_t *) handle;
    s_query_end (self);
    char *bound = NULL;
    //  A raw task without args goes as written (it may use the ?: operator)
    int rc = s_bind (sql, args, !(opts->raw && args->count == 0), &bound, err);
    if (rc)
        return rc;
    char *body = dbt_printf ("%s\nFORMAT Native", bound);
    char query_id [S_QUERY_ID_MAX];
    if (opts->query_id && *opts->query_id)
        snprintf (query_id, sizeof (query_id), "%s", opts->query_id);
    else
        dbt_uuid (query_id);
    pthread_mutex_lock (&self->mutex);
    memcpy (self->query_id, query_id, sizeof (query_id));
    atomic_store (&self->canceled, false);
    pthread_mutex_unlock (&self->mutex);
    self->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 0;
    self->in_query = true;
    rc = s_request (self, body, query_id, self->timeout_ms, s_limit (self), err);
    free (body);
    if (rc == 0) {
        //  An empty result has no block: ask for its columns.
        self->done = true;
        rc = s_describe (self, bound, err);
    }
    free (bound);
    if (rc < 0) {
        s_query_end (self);
        return rc;
    }
    return 0;
}

static int
s_columns (void *handle, const dbt_column_t **cols, size_t *ncols)
{
    s_ch_t *self = (s_ch_t *) handle;
    if (self->in_query && self->cols) {
        *cols = self->cols;
        *ncols = self->ncols;
        return 0;
    }
    if (self->in_query)
        return dbt_ch_native_columns (self->dec, cols, ncols);
    *cols = NULL;
    *ncols = 0;
    return DBT_EINVAL;
}

static int
s_fetch (void *handle, dbt_row_t *row, char *err)
{
    s_ch_t *self = (s_ch_t *) handle;
    if (!self->in_query) {
        dbt_err_set (err, "clickhouse: no query is running");
        return DBT_EINVAL;
    }
    if (self->failed) {
        dbt_err_set (err, "clickhouse: the query already failed");
        return self->failed;
    }
    if (self->done)
        return 0;
    for (;;) {
        int rc = dbt_ch_native_next (self->dec, row, self->eof, err);
        if (rc == 1)
            return 1;
        if (rc == 0) {
            self->done = true;
            return 0;
        }
        if (rc == DBT_CH_NEED)
            rc = s_pump (self, err);
        else
            rc = s_stream_error (self, rc, err);
        if (rc < 0) {
            self->failed = rc;
            return rc;
        }
    }
}

static void
s_query_end (void *handle)
{
    s_ch_t *self = (s_ch_t *) handle;
    //  Rows left unread, or a transfer cut short: stop the query.
    if (self->running || (self->in_query && !self->ended))
        s_abort (self);
    self->running = false;
    self->ended = true;
    self->in_query = false;
    self->done = false;
    self->failed = 0;
    self->eof = false;
    dbt_columns_free (&self->cols, self->ncols);
    self->ncols = 0;
    dbt_ch_native_reset (self->dec);
    dbt_buf_reset (&self->errbody);
    pthread_mutex_lock (&self->mutex);
    self->query_id [0] = 0;
    pthread_mutex_unlock (&self->mutex);
}

static void
s_cancel (void *handle)
{
    s_ch_t *self = (s_ch_t *) handle;
    if (!self)
        return;
    char query_id [S_QUERY_ID_MAX];
    pthread_mutex_lock (&self->mutex);
    atomic_store (&self->canceled, true);
    memcpy (query_id, self->query_id, sizeof (query_id));
    pthread_mutex_unlock (&self->mutex);
    curl_multi_wakeup (self->multi);
    if (query_id [0])
        s_kill (self, query_id);
}

//  A DSN refused at start-up rather than at the first job.
static int
s_check (const dbt_dbconf_t *conf, char *warn, char *err)
{
    char *url = NULL, *user = NULL, *password = NULL;
    warn [0] = 0;
    int rc = dbt_driver_clickhouse_dsn (conf->dsn ? conf->dsn : "", &url, &user, &password, err);
    free (url);
    free (user);
    free (password);
    return rc;
}

const dbt_driver_t dbt_driver_clickhouse = {
    .name = "clickhouse",
    .alias = NULL,
    .check = s_check,
    .connect = s_connect,
    .disconnect = s_disconnect,
    .alive = s_alive,
    .prepare = s_prepare,
    .query = s_query,
    .columns = s_columns,
    .fetch = s_fetch,
    .query_end = s_query_end,
    .cancel = s_cancel,
    .max_identifier = 0
};

//  --------------------------------------------------------------------------
//  The DSN parser on its own

int
dbt_driver_clickhouse_dsn (const char *dsn, char **url, char **user, char **password,
                           char *err)
{
    assert (dsn && url && user && password);
    pthread_once (&s_curl_once, s_curl_init);
    s_ch_t self = { 0 };
    self.easy = curl_easy_init ();
    int rc = self.easy ? s_parse_dsn (&self, dsn, err) : DBT_EINVAL;
    if (!self.easy)
        dbt_err_set (err, "clickhouse: out of memory");
    curl_easy_cleanup (self.easy);
    if (rc) {
        free (self.url);
        free (self.user);
        free (self.password);
        self.url = self.user = self.password = NULL;
    }
    *url = self.url;
    *user = self.user;
    *password = self.password;
    return rc;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test (offline; tests/dbt_drivertest runs the live checks)

//  Read the ClickHouse string literal at sql [*pos] the way the server's
//  lexer and parser do (an independent reading of what quote writes) into
//  out. Returns 0 and advances past it, or -1.
static int
s_test_unquote (const char *sql, size_t *pos, dbt_buf_t *out)
{
    size_t i = *pos;
    if (sql [i++] != '\'')
        return -1;
    dbt_buf_reset (out);
    for (;;) {
        char c = sql [i++];
        if (c == 0)
            return -1;
        if (c == '\'') {
            if (sql [i] != '\'')
                break;
            i++;
        }
        else
        if (c == '\\') {
            c = sql [i++];
            const char *from = "bfnrt0";
            const char *to = "\b\f\n\r\t";
            const char *at = c ? strchr (from, c) : NULL;
            if (c == 0)
                return -1;
            if (at)
                c = at - from < 5 ? to [at - from] : 0;
            else
            if (c == 'x' && isxdigit ((unsigned char) sql [i])
                         && isxdigit ((unsigned char) sql [i + 1])) {
                char hex [3] = { sql [i], sql [i + 1], 0 };
                c = (char) strtol (hex, NULL, 16);
                i += 2;
            }
        }
        dbt_buf_putc (out, c);
    }
    *pos = i;
    return 0;
}

//  Bind one arg into "SELECT ?" and check it became exactly one literal
//  holding the arg's bytes.
static void
s_test_literal (const char *arg)
{
    char err [DBT_ERRMSG_LEN];
    const char *vals [] = { arg };
    dbt_args_t args = { 1, vals };
    char *out = NULL;
    assert (dbt_driver_clickhouse_bind ("SELECT ?", &args, &out, err) == 0);
    assert (strncmp (out, "SELECT '", 8) == 0);
    //  The scanner sees one literal running to the end, no placeholder
    assert (dbt_driver_clickhouse_params (out, err) == 0);
    assert (s_skip_quoted (out, 7, '\'') == strlen (out));
    //  Only printable bytes and UTF-8 go in raw
    for (const char *p = out; *p; p++)
        assert ((unsigned char) *p >= 0x20 && *p != 0x7f);
    dbt_buf_t back = { 0 };
    size_t pos = 7;
    assert (s_test_unquote (out, &pos, &back) == 0 && pos == strlen (out));
    assert (back.len == strlen (arg) && memcmp (back.data ? back.data : "", arg, back.len) == 0);
    dbt_buf_free (&back);
    free (out);
}

//  Bind args into sql and compare with want (NULL: refused with DBT_EINVAL).
static void
s_test_bind (const char *sql, const char **vals, size_t count, const char *want)
{
    char err [DBT_ERRMSG_LEN];
    dbt_args_t args = { count, vals };
    char *out = NULL;
    int rc = dbt_driver_clickhouse_bind (sql, &args, &out, err);
    if (want ? rc != 0 || !streq (out, want) : rc != DBT_EINVAL) {
        fprintf (stderr, "bind '%s': rc %d '%s' (%s), want '%s'\n", sql, rc,
                 out ? out : "", rc ? err : "", want ? want : "refused");
        assert (false);
    }
    free (out);
}

//  Parse a DSN into a fresh handle's url, user and password.
static int
s_test_dsn (const char *dsn, const char *url, const char *user, const char *password)
{
    char err [DBT_ERRMSG_LEN];
    s_ch_t self = { 0 };
    self.easy = curl_easy_init ();
    int rc = s_parse_dsn (&self, dsn, err);
    if (rc == 0 && (!streq (self.url, url) || (user ? !self.user || !streq (self.user, user)
                                                    : self.user != NULL)
                || (password ? !self.password || !streq (self.password, password)
                             : self.password != NULL))) {
        fprintf (stderr, "dsn '%s': url '%s' user '%s' password '%s'\n", dsn, self.url,
                 self.user ? self.user : "(none)", self.password ? self.password : "(none)");
        assert (false);
    }
    free (self.url);
    free (self.user);
    free (self.password);
    curl_easy_cleanup (self.easy);
    return rc;
}

//  Map an error text; the message must contain part.
static void
s_test_error (const char *text, bool canceled, int want, const char *part)
{
    char err [DBT_ERRMSG_LEN];
    s_ch_t self = { .status = 500, .timeout_ms = 2000 };
    atomic_init (&self.canceled, canceled);
    int rc = s_server_error (&self, text, strlen (text), err);
    if (rc != want || !strstr (err, part)) {
        fprintf (stderr, "error '%s': rc %d '%s'\n", text, rc, err);
        assert (false);
    }
}

void
dbt_driver_clickhouse_test (bool verbose)
{
    pthread_once (&s_curl_once, s_curl_init);

    //  Quoting: exact output
    const struct {
        const char *in;         //  bytes
        size_t len;             //  their length
        const char *out;        //  literal
    } quotes [] = {
        { "", 0, "''" },
        { "plain", 5, "'plain'" },
        { "it's", 4, "'it\\'s'" },
        { "\\", 1, "'\\\\'" },
        { "a\0b", 3, "'a\\0b'" },
        { "\n\r\t\b\f", 5, "'\\n\\r\\t\\b\\f'" },
        { "\x01\x1f\x7f\x1b", 4, "'\\x01\\x1f\\x7f\\x1b'" },
        { "\xe6\x97\xa5\xf0\x9f\xaa\xb2", 7, "'\xe6\x97\xa5\xf0\x9f\xaa\xb2'" },
        { "\xff\xfe", 2, "'\xff\xfe'" },
        { "\"`?--/*", 7, "'\"`?--/*'" },
    };
    for (size_t i = 0; i < sizeof (quotes) / sizeof (quotes [0]); i++) {
        char *q = dbt_driver_clickhouse_quote (quotes [i].in, quotes [i].len);
        if (!streq (q, quotes [i].out)) {
            fprintf (stderr, "quote %zu: '%s'\n", i, q);
            assert (false);
        }
        free (q);
    }

    //  Placeholders: only outside literals, identifiers and comments
    char err [DBT_ERRMSG_LEN];
    const struct {
        const char *sql;        //  statement
        int count;              //  placeholders, -1 refused
    } counts [] = {
        { "SELECT ?", 1 },
        { "SELECT ?, ?, ?", 3 },
        { "SELECT '?', \"?\", `?`", 0 },
        { "SELECT 'it''s ?', 'a\\'?', ?", 1 },
        { "SELECT 'a\\\\', ?", 1 },
        { "SELECT \"a\"\"?\", `b``?`, ?", 1 },
        { "SELECT 1 -- ?\n, ?", 1 },
        { "SELECT 1 /* ? */, ? /* ? ", -1 },
        { "SELECT 1 /* /* ? */, ?", 1 },
        { "SELECT 1 /* ? */ -- ?", 0 },
        { "SELECT 1 - -1, ?--?", 1 },
        { "SELECT '?", -1 },
        { "SELECT \"?", -1 },
        { "SELECT `?", -1 },
        { "SELECT 'a\\", -1 },
        { "SELECT ?;", 1 },
        { "SELECT ?; -- done\n  ", 1 },
        { "SELECT 1; SELECT ?", -1 },
        { "SELECT 1;;", -1 },
        { "", -1 },
        { "  -- only a comment\n", -1 },
        { ";", -1 },
        { "SELECT x FROM t WHERE a = ? AND b IN (?, ?) FORMAT_NOT", 3 },
    };
    for (size_t i = 0; i < sizeof (counts) / sizeof (counts [0]); i++) {
        int n = dbt_driver_clickhouse_params (counts [i].sql, err);
        if (n != counts [i].count) {
            fprintf (stderr, "params '%s': %d (%s)\n", counts [i].sql, n, n < 0 ? err : "");
            assert (false);
        }
        int np = -2;
        assert (s_prepare (NULL, counts [i].sql, &np, err) == (n < 0 ? DBT_EINVAL : 0));
        assert (n < 0 ? np == -2 : np == n);
    }
    assert (dbt_driver_clickhouse_params ("SELECT '", err) < 0
            && streq (err, "clickhouse: the SQL ends inside a string literal"));
    assert (dbt_driver_clickhouse_params ("SELECT 1; SELECT 2", err) < 0
            && strstr (err, "one SQL statement"));

    //  Binding
    const char *one [] = { "x" };
    const char *two [] = { "a'b", NULL };
    const char *three [] = { "1", "2", "3" };
    s_test_bind ("SELECT ?", one, 1, "SELECT 'x'");
    s_test_bind ("SELECT ?, ?", two, 2, "SELECT 'a\\'b', NULL");
    s_test_bind ("SELECT toInt64(?) + ?;", three, 2, "SELECT toInt64('1') + '2'");
    s_test_bind ("SELECT '?', ? -- ?\n;  ", one, 1, "SELECT '?', 'x' -- ?\n");
    s_test_bind ("SELECT \"?\", `?`, /* ? */ ?", one, 1, "SELECT \"?\", `?`, /* ? */ 'x'");
    s_test_bind ("SELECT 1 -- ?", NULL, 0, "SELECT 1 -- ?");
    s_test_bind ("SELECT 'it''s', ?", one, 1, "SELECT 'it''s', 'x'");
    s_test_bind ("SELECT ?", NULL, 0, NULL);
    s_test_bind ("SELECT ?", three, 3, NULL);
    s_test_bind ("SELECT 1", one, 1, NULL);
    s_test_bind ("SELECT '?", one, 1, NULL);
    s_test_bind ("SELECT 1; DROP TABLE t", NULL, 0, NULL);
    dbt_args_t args3 = { 3, three };
    char *out = NULL;
    assert (dbt_driver_clickhouse_bind ("SELECT ?, ?", &args3, &out, err) == DBT_EINVAL);
    assert (streq (err, "task expects 2 args, got 3") && out == NULL);
    //  A raw task without args: ? stays (the ?: operator), ; still goes
    dbt_args_t none = { 0, NULL };
    assert (s_bind ("SELECT 1 ? 2 : 3;", &none, false, &out, err) == 0);
    assert (streq (out, "SELECT 1 ? 2 : 3"));
    free (out);

    //  Every arg stays one literal holding its bytes: injection attempts,
    //  quotes, backslashes at the end, controls, UTF-8, random bytes
    const char *tricky [] = {
        "", "x' OR 1=1 --", "\\'; DROP TABLE t; --", "trailing\\", "\\", "'", "''", "\\'",
        "\\\\'", "'\\", "a\nb\rc\td", "?", "'?'", "/* ? */", "-- ?\n?", "`x`", "\"y\"",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\xaa\xb2", "\x01\x02\x1f\x7f",
        "\\x41", "\\0", "\\\\\\", "');SELECT 1;--", "' || '", "\\\n'"
    };
    for (size_t i = 0; i < sizeof (tricky) / sizeof (tricky [0]); i++)
        s_test_literal (tricky [i]);
    uint64_t seed = 7;
    char random [64];
    for (int round = 0; round < 5000; round++) {
        size_t len = (size_t) (round % 63);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            //  Mostly the dangerous bytes
            static const char danger [] = "'\\\"`?-/*;\n\r\t\x01\x7f";
            random [i] = (seed >> 60) < 12 ? danger [(seed >> 33) % (sizeof (danger) - 1)]
                                           : (char) (1 + (seed >> 40) % 255);
        }
        random [len] = 0;
        s_test_literal (random);
    }

    //  DSNs
    assert (s_test_dsn ("http://127.0.0.1:8123/?database=default&user=default&password=",
                        "http://127.0.0.1:8123/?database=default", "default", "") == 0);
    assert (s_test_dsn ("http://u%40x:p%26w@h:8123/", "http://h:8123/", "u@x", "p&w") == 0);
    assert (s_test_dsn ("https://h/ch/?max_threads=4&user=bob&max_block_size=8192",
                        "https://h/ch/?max_threads=4&max_block_size=8192", "bob", NULL) == 0);
    assert (s_test_dsn ("http://h:1/?database=a%20b&password=p+q",
                        "http://h:1/?database=a+b", NULL, "p q") == 0);
    assert (s_test_dsn ("clickhouse://bob:pw@ch.example/reports",
                        "http://ch.example:8123/?database=reports", "bob", "pw") == 0);
    assert (s_test_dsn ("clickhouse://ch:9999/", "http://ch:9999/", NULL, NULL) == 0);
    assert (s_test_dsn ("ClickHouse://ch", "http://ch:8123/", NULL, NULL) == 0);
    assert (s_test_dsn ("http://h/#frag", "http://h/", NULL, NULL) == 0);
    //  The native protocol (upstream's tcp://host:9000) is refused, naming 8123
    assert (s_test_dsn ("tcp://127.0.0.1:9000?username=u&password=p&database=d", NULL, NULL,
                        NULL) == DBT_EINVAL);
    assert (s_test_dsn ("clickhouse://ch:9000/db", NULL, NULL, NULL) == DBT_EINVAL);
    assert (s_test_dsn ("http://ch:9000/", NULL, NULL, NULL) == DBT_EINVAL);
    assert (s_test_dsn ("tcp://ch:9440/", NULL, NULL, NULL) == DBT_EINVAL);
    {
        char *u = NULL, *n = NULL, *pw = NULL;
        char e [DBT_ERRMSG_LEN];
        assert (dbt_driver_clickhouse_dsn ("clickhouse://a:secret@ch:9000/db", &u, &n, &pw, e)
                == DBT_EINVAL);
        assert (strstr (e, "port 9000") && strstr (e, "8123") && !strstr (e, "secret"));
        assert (dbt_driver_clickhouse_dsn ("tcp://ch:9001?password=secret", &u, &n, &pw, e)
                == DBT_EINVAL);
        assert (strstr (e, "native-protocol (tcp://)") && strstr (e, "http://ch:8123/"));
        assert (!strstr (e, "secret"));
        dbt_dbconf_t conf = { .name = "c", .type = "clickhouse", .dsn = "tcp://ch:9000" };
        assert (s_check (&conf, e, e) == DBT_EINVAL);
        conf.dsn = "http://ch:8123/";
        assert (s_check (&conf, e, e) == 0 && e [0] == 0);
    }
    assert (s_test_dsn ("http://h/?query_id=x", NULL, NULL, NULL) == DBT_EINVAL);
    assert (s_test_dsn ("http://h/?max_execution_time=5", NULL, NULL, NULL) == DBT_EINVAL);
    assert (s_test_dsn ("http://h/?query=SELECT+2", NULL, NULL, NULL) == DBT_EINVAL);
    assert (s_test_dsn ("ftp://h/", NULL, NULL, NULL) == DBT_EINVAL);
    assert (s_test_dsn ("postgres://h/db", NULL, NULL, NULL) == DBT_EINVAL);
    assert (s_test_dsn ("not a url", NULL, NULL, NULL) == DBT_EINVAL);
    assert (s_test_dsn ("http://", NULL, NULL, NULL) == DBT_EINVAL);
    char *dsn_url = NULL, *dsn_user = NULL, *dsn_password = NULL;
    assert (dbt_driver_clickhouse_dsn ("clickhouse://bob:pw@ch.example/reports", &dsn_url,
                                       &dsn_user, &dsn_password, err) == 0);
    assert (streq (dsn_url, "http://ch.example:8123/?database=reports"));
    assert (streq (dsn_user, "bob") && streq (dsn_password, "pw"));
    free (dsn_url);
    free (dsn_user);
    free (dsn_password);
    assert (dbt_driver_clickhouse_dsn ("http://u:p@h/?user=x&query_id=1", &dsn_url, &dsn_user,
                                       &dsn_password, err) == DBT_EINVAL);
    assert (!dsn_url && !dsn_user && !dsn_password && strstr (err, "query_id"));

    //  Request URLs: the query id is encoded, limits round up to seconds
    s_ch_t req = { .url = "http://h:8123/?database=d" };
    char *url = s_request_url (&req, "job 1&x=2-3", 1500);
    assert (streq (url, "http://h:8123/?database=d&query_id=job+1%26x%3d2-3"
                   "&max_execution_time=2"));
    free (url);
    url = s_request_url (&req, NULL, 0);
    assert (streq (url, "http://h:8123/?database=d"));
    free (url);

    //  Error texts: 18.16's and newer servers' forms
    s_test_error ("Code: 47, e.displayText() = DB::Exception: Unknown identifier: x, "
                  "e.what() = DB::Exception\n", false, DBT_ERROR,
                  "clickhouse: code 47: DB::Exception: Unknown identifier: x");
    s_test_error ("Code: 47. DB::Exception: Missing columns: 'x'. (UNKNOWN_IDENTIFIER) "
                  "(version 22.8.1.1)\n", false, DBT_ERROR,
                  "clickhouse: code 47: DB::Exception: Missing columns: 'x'. (UNKNOWN_IDENTIFIER)");
    s_test_error ("Code: 159, e.displayText() = DB::Exception: Timeout exceeded: elapsed 2.0 "
                  "seconds, maximum: 2, e.what() = DB::Exception", false, DBT_ETIMEDOUT,
                  "time limit of 2000 ms (DB::Exception: Timeout exceeded");
    s_test_error ("Code: 394, e.displayText() = DB::Exception: Query was cancelled, "
                  "e.what() = DB::Exception", true, DBT_ECANCELED, "query canceled");
    s_test_error ("Code: 394, e.displayText() = DB::Exception: Query was cancelled, "
                  "e.what() = DB::Exception", false, DBT_ERROR, "code 394");
    s_test_error ("<html>Bad Gateway</html>", false, DBT_ECONN, "clickhouse: HTTP 500: <html>");
    s_test_error ("", false, DBT_ECONN, "HTTP 500");

    //  Connect failures are clear and fast
    dbt_dbconf_t conf = { .name = "ch", .type = "clickhouse", .dsn = "",
                          .connect_timeout_ms = 1500 };
    void *handle = NULL;
    assert (s_connect (&conf, &handle, err) == DBT_EINVAL && handle == NULL);
    conf.dsn = "ftp://127.0.0.1/";
    assert (s_connect (&conf, &handle, err) == DBT_EINVAL && strstr (err, "http://"));
    conf.dsn = "http://127.0.0.1:1/";
    int64_t start = dbt_clock_ms ();
    assert (s_connect (&conf, &handle, err) == DBT_ECONN && handle == NULL);
    assert (strstr (err, "clickhouse: cannot connect to 'http://127.0.0.1:1/'"));
    assert (dbt_clock_ms () - start < 3000);
    s_disconnect (&handle);
    s_cancel (NULL);
    if (verbose)
        printf ("driver_clickhouse: ok\n");
}
#endif  //  DBT_SELFTEST
