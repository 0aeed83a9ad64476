/*  =========================================================================
    dbt_driver_mariadb - MySQL/MariaDB source and results driver (Connector/C)

    See dbt_driver_mariadb.h. This file holds the DSN parser, connections,
    errors, cancel and the vtable; dbt_driver_mariadb_read.c the source side
    and dbt_driver_mariadb_write.c the results side (one module split for
    size; dbt_driver_mariadb_int.h is their shared private header).

    A handle owns one MYSQL connection, used by one thread at a time, and
    the parsed DSN, which cancel uses from any thread to open a second
    connection and KILL QUERY the first one's thread id (the DSN and thread
    id never change after connect; Connector/C's library init is a
    pthread_once, so mysql_init is safe from any thread).
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_driver_mariadb_int.h"
#include <errmsg.h>
#include <mysqld_error.h>
#include <curl/curl.h>

//  Default connect timeout when the config gives none, and the cancel
//  connection's timeout.
#define S_CONNECT_TIMEOUT_S 30
#define S_CANCEL_TIMEOUT_S 5

//  Session setup of every connection: UTC, strict modes on top of the
//  server's, and network timeouts long enough for a slow job on the other
//  side of a stream (a source that stalls between rows, a results writer
//  that stalls a source).
static const char s_session_sql [] =
    "SET time_zone = '+00:00', "
    "sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'STRICT_ALL_TABLES', "
    "'NO_ZERO_DATE', 'NO_ZERO_IN_DATE', 'ERROR_FOR_DIVISION_BY_ZERO'), "
    "net_read_timeout = 86400, net_write_timeout = 86400";

//  TLS modes of the ssl option.
typedef enum {
    S_SSL_OFF,                  //  no TLS
    S_SSL_ON,                   //  TLS required, certificate not checked
    S_SSL_VERIFY                //  TLS required, certificate verified
} s_ssl_t;

//  Parsed DSN. Strings are owned; NULL when not given.
struct _dbt_mariadb_dsn_t {
    char *host;                 //  host name or address
    char *user;                 //  user name
    char *password;             //  password
    char *db;                   //  database name
    char *socket;               //  Unix socket path
    unsigned port;              //  TCP port, 0 = Connector/C's default
    s_ssl_t ssl;                //  TLS mode
    char *ssl_ca;               //  CA certificate file
    char *ssl_capath;           //  CA certificate directory
    char *ssl_cert;             //  client certificate file
    char *ssl_key;              //  client key file
    unsigned timeout_s;         //  connect timeout in seconds
    unsigned dsn_timeout_s;     //  timeout= of the DSN, 0 = not given (the
                                //  section's connect_timeout wins over it)
};

//  --------------------------------------------------------------------------
//  DSN (pure; tested in dbt_driver_mariadb_test)

//  Free a DSN's strings and zero it.
static void
s_dsn_free (dbt_mariadb_dsn_t *dsn)
{
    free (dsn->host);
    free (dsn->user);
    free (dsn->password);
    free (dsn->db);
    free (dsn->socket);
    free (dsn->ssl_ca);
    free (dsn->ssl_capath);
    free (dsn->ssl_cert);
    free (dsn->ssl_key);
    memset (dsn, 0, sizeof (*dsn));
}

//  One URL part into *out (new string, percent-decoded when decode; NULL
//  when the part is absent or empty). Returns 0, or -1 when curl refuses it.
static int
s_url_part (CURLU *url, CURLUPart part, bool decode, char **out)
{
    char *value = NULL;
    CURLUcode uc = curl_url_get (url, part, &value, decode ? CURLU_URLDECODE : 0);
    *out = NULL;
    if (uc == CURLUE_OK) {
        if (*value)
            *out = dbt_strdup (value);
        curl_free (value);
        return 0;
    }
    return uc == CURLUE_NO_USER || uc == CURLUE_NO_PASSWORD || uc == CURLUE_NO_PORT
        || uc == CURLUE_NO_QUERY || uc == CURLUE_NO_HOST ? 0 : -1;
}

//  Percent-decode len bytes into a new string; NULL when the text decodes
//  to a NUL byte or is malformed.
static char *
s_unescape (const char *text, size_t len)
{
    int outlen = 0;
    char *value = curl_easy_unescape (NULL, text, (int) len, &outlen);
    char *copy = value && strlen (value) == (size_t) outlen ? dbt_strdup (value) : NULL;
    curl_free (value);
    return copy;
}

//  go-sql-driver options that change nothing here: each gets a warning
//  (values are read as text, sessions are UTC and utf8mb4, statements are
//  never interpolated or batched).
static const char *s_go_ignored [] = {
    "allowAllFiles", "allowCleartextPasswords", "allowFallbackToPlaintext",
    "allowNativePasswords", "allowOldPasswords", "checkConnLiveness", "clientFoundRows",
    "collation", "columnsWithAlias", "compress", "connectionAttributes", "interpolateParams",
    "loc", "maxAllowedPacket", "multiStatements", "parseTime", "readTimeout",
    "rejectReadOnly", "serverPubKey", "timeTruncate", "writeTimeout", NULL
};

//  Append one warning to warn (NULL: dropped), "; " between them.
static void
s_warn (dbt_buf_t *warn, const char *key, const char *value, const char *what)
{
    if (!warn)
        return;
    if (warn->len)
        dbt_buf_puts (warn, "; ");
    dbt_buf_printf (warn, "option %s=%s %s", key, value, what);
}

//  Apply one query option to dsn (warnings into warn, may be NULL).
//  Returns 0 or DBT_EINVAL.
static int
s_dsn_option (dbt_mariadb_dsn_t *dsn, const char *key, char *value, dbt_buf_t *warn,
              char *err)
{
    char **file = streq (key, "ssl_ca") ? &dsn->ssl_ca
                : streq (key, "ssl_capath") ? &dsn->ssl_capath
                : streq (key, "ssl_cert") ? &dsn->ssl_cert
                : streq (key, "ssl_key") ? &dsn->ssl_key
                : streq (key, "socket") ? &dsn->socket : NULL;
    if (file) {
        free (*file);
        *file = dbt_strdup (value);
        if (!streq (key, "socket") && dsn->ssl == S_SSL_OFF)
            dsn->ssl = S_SSL_ON;
        return 0;
    }
    if (streq (key, "ssl")) {
        bool on;
        if (streq (value, "verify"))
            dsn->ssl = S_SSL_VERIFY;
        else
        if (dbt_parse_bool (value, &on) == 0)
            dsn->ssl = on ? S_SSL_ON : S_SSL_OFF;
        else {
            dbt_err_set (err, "mysql: bad dsn: ssl must be false, true or verify, not '%s'",
                         value);
            return DBT_EINVAL;
        }
        return 0;
    }
    //  go-sql-driver's tls: true verifies, skip-verify does not
    if (streq (key, "tls")) {
        bool on;
        if (streq (value, "skip-verify"))
            dsn->ssl = S_SSL_ON;
        else
        if (streq (value, "preferred")) {
            dsn->ssl = S_SSL_OFF;
            s_warn (warn, key, value, "is not supported: TLS is not tried (tls=skip-verify "
                    "or tls=true requires it)");
        }
        else
        if (dbt_parse_bool (value, &on) == 0)
            dsn->ssl = on ? S_SSL_VERIFY : S_SSL_OFF;
        else {
            dbt_err_set (err, "mysql: bad dsn: tls must be true, false, skip-verify or "
                         "preferred, not '%s' (a registered TLS config: give its files "
                         "as ssl_ca, ssl_cert, ssl_key with ssl=verify)", value);
            return DBT_EINVAL;
        }
        return 0;
    }
    if (streq (key, "timeout")) {
        int64_t ms = 0;
        if (dbt_parse_duration (value, &ms) || ms < 0 || ms > INT64_C (86400000)) {
            dbt_err_set (err, "mysql: bad dsn: timeout must be a duration up to 24h, "
                         "such as 10s, not '%s'", value);
            return DBT_EINVAL;
        }
        dsn->dsn_timeout_s = (unsigned) ((ms + 999) / 1000);
        return 0;
    }
    if (streq (key, "charset")) {
        if (!strstr (value, "utf8mb4"))
            s_warn (warn, key, value, "is ignored: connections use utf8mb4");
        return 0;
    }
    for (size_t i = 0; s_go_ignored [i]; i++)
        if (streq (key, s_go_ignored [i])) {
            s_warn (warn, key, value, "is ignored (it changes nothing here)");
            return 0;
        }
    dbt_err_set (err, "mysql: bad dsn: unknown option '%s' (known: socket ssl ssl_ca "
                 "ssl_capath ssl_cert ssl_key, and go-sql-driver's tls timeout charset "
                 "and others, ignored; session variables in the DSN are not supported: "
                 "set them for the user on the server)", key);
    return DBT_EINVAL;
}

//  Apply the query string (raw, not yet decoded) of a DSN: key=value pairs
//  joined by '&', each side percent-decoded on its own. Returns 0 or
//  DBT_EINVAL.
static int
s_dsn_query (dbt_mariadb_dsn_t *dsn, const char *query, dbt_buf_t *warn, char *err)
{
    int rc = 0;
    const char *p = query;
    while (rc == 0 && *p) {
        size_t len = strcspn (p, "&");
        const char *eq = memchr (p, '=', len);
        if (len > 0) {
            char *key = eq ? s_unescape (p, (size_t) (eq - p)) : NULL;
            char *value = eq ? s_unescape (eq + 1, len - (size_t) (eq - p) - 1) : NULL;
            if (!key || !value) {
                dbt_err_set (err, "mysql: bad dsn: option '%.*s' is not key=value",
                             (int) (eq ? eq - p : (ptrdiff_t) len), p);
                rc = DBT_EINVAL;
            }
            else
                rc = s_dsn_option (dsn, key, value, warn, err);
            free (key);
            free (value);
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return rc;
}

//  host[:port] or [v6]:port of a go-sql-driver tcp address into dsn (port
//  3306 when none is given, as go-sql-driver). Returns 0 or DBT_EINVAL.
static int
s_go_address (dbt_mariadb_dsn_t *dsn, const char *addr, size_t len, char *err)
{
    const char *port = NULL;
    size_t hlen = len;
    if (len && addr [0] == '[') {
        const char *close = memchr (addr, ']', len);
        if (!close || (close + 1 < addr + len && close [1] != ':')) {
            dbt_err_set (err, "mysql: bad dsn: address '%.*s' is not [v6]:port", (int) len, addr);
            return DBT_EINVAL;
        }
        hlen = (size_t) (close - addr) + 1;
        if (close + 1 < addr + len)
            port = close + 2;
        dsn->host = dbt_strndup (addr + 1, hlen - 2);
    }
    else {
        const char *colon = memchr (addr, ':', len);
        if (colon && memchr (colon + 1, ':', len - (size_t) (colon - addr) - 1)) {
            dbt_err_set (err, "mysql: bad dsn: address '%.*s' has too many colons "
                         "(an IPv6 address goes in brackets)", (int) len, addr);
            return DBT_EINVAL;
        }
        if (colon) {
            hlen = (size_t) (colon - addr);
            port = colon + 1;
        }
        dsn->host = hlen ? dbt_strndup (addr, hlen) : dbt_strdup ("127.0.0.1");
    }
    int64_t number = 3306;
    char *text = port ? dbt_strndup (port, len - (size_t) (port - addr)) : NULL;
    int rc = text && dbt_parse_int64 (text, 1, 65535, &number) ? DBT_EINVAL : 0;
    if (rc)
        dbt_err_set (err, "mysql: bad dsn: port '%s' is not 1-65535", text);
    free (text);
    dsn->port = (unsigned) number;
    return rc;
}

//  Parse upstream's go-sql-driver DSN into dsn (zeroed; the caller frees
//  it on failure), as go-sql-driver splits it:
//  [user[:password]@][tcp[(host:port)]|unix(path)]/dbname[?name=value&...]
//  The database name follows the last '/', so a password may hold '/',
//  '@' and ':' (after the first) unescaped. Returns 0 or DBT_EINVAL.
static int
s_dsn_parse_go (const char *text, dbt_mariadb_dsn_t *dsn, dbt_buf_t *warn, char *err)
{
    const char *slash = strrchr (text, '/');
    if (!slash) {
        dbt_err_set (err, "mysql: bad dsn: neither a mysql:// URL nor a go-sql-driver DSN "
                     "(user:password@tcp(host:port)/db): no '/' before the database name");
        return DBT_EINVAL;
    }
    //  [user[:password]@] up to the last '@' before the slash
    const char *at = NULL;
    for (const char *p = text; p < slash; p++)
        if (*p == '@')
            at = p;
    const char *net = text;
    if (at) {
        const char *colon = memchr (text, ':', (size_t) (at - text));
        if (colon) {
            dsn->user = colon > text ? dbt_strndup (text, (size_t) (colon - text)) : NULL;
            dsn->password = colon + 1 < at ? dbt_strndup (colon + 1, (size_t) (at - colon - 1))
                          : NULL;
        }
        else
        if (at > text)
            dsn->user = dbt_strndup (text, (size_t) (at - text));
        net = at + 1;
    }
    //  net[(addr)]
    const char *open = memchr (net, '(', (size_t) (slash - net));
    size_t nlen = open ? (size_t) (open - net) : (size_t) (slash - net);
    const char *addr = open ? open + 1 : slash;
    size_t alen = 0;
    if (open) {
        if (slash [-1] != ')') {
            dbt_err_set (err, "mysql: bad dsn: the address after '%.*s(' does not end with "
                         "')' before the database name", at ? (int) nlen : 0, net);
            return DBT_EINVAL;
        }
        alen = (size_t) (slash - 1 - addr);
    }
    int rc = 0;
    if (nlen == 0 || (nlen == 3 && memcmp (net, "tcp", 3) == 0)
    ||  (nlen == 4 && (memcmp (net, "tcp4", 4) == 0 || memcmp (net, "tcp6", 4) == 0)))
        rc = s_go_address (dsn, addr, alen, err);
    else
    if (nlen == 4 && memcmp (net, "unix", 4) == 0) {
        dsn->host = dbt_strdup ("localhost");
        dsn->socket = alen ? dbt_strndup (addr, alen) : dbt_strdup ("/tmp/mysql.sock");
    }
    else {
        //  (named only when it cannot be a password: an '@' came before)
        if (at)
            dbt_err_set (err, "mysql: bad dsn: network '%.*s' is not tcp or unix",
                         (int) nlen, net);
        else
            dbt_err_set (err, "mysql: bad dsn: not a mysql:// URL nor a go-sql-driver DSN "
                         "([user[:password]@]tcp(host:port)/db or unix(path))");
        return DBT_EINVAL;
    }
    if (rc)
        return rc;
    //  /dbname[?params]
    const char *db = slash + 1;
    size_t dlen = strcspn (db, "?");
    if (dlen) {
        dsn->db = s_unescape (db, dlen);
        if (!dsn->db) {
            dbt_err_set (err, "mysql: bad dsn: the database name does not decode");
            return DBT_EINVAL;
        }
    }
    if (db [dlen] == '?') {
        //  Query-unescaped as go-sql-driver does: '+' is a space
        char *query = dbt_strdup (db + dlen + 1);
        dbt_buf_t spaced = { 0 };
        for (const char *p = query; *p; p++)
            if (*p == '+')
                dbt_buf_puts (&spaced, "%20");
            else
                dbt_buf_putc (&spaced, *p);
        dbt_buf_putc (&spaced, 0);
        rc = s_dsn_query (dsn, spaced.data, warn, err);
        dbt_buf_free (&spaced);
        free (query);
    }
    return rc;
}

//  Parse a mysql:// or mariadb:// URL, or upstream's go-sql-driver DSN,
//  into dsn (zeroed first; freed on failure). Options that are ignored
//  go into warn (may be NULL). Returns 0 or DBT_EINVAL with the reason in
//  err; the password never appears in err.
static int
s_dsn_parse (const char *text, dbt_mariadb_dsn_t *dsn, dbt_buf_t *warn, char *err)
{
    memset (dsn, 0, sizeof (*dsn));
    if (!text || !*text) {
        dbt_err_set (err, "mysql: empty dsn (a mysql://user:password@host:port/db URL)");
        return DBT_EINVAL;
    }
    //  Upstream's configs carry go-sql-driver DSNs: no scheme://
    size_t slen = strspn (text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789+.-");
    if (slen == 0 || strncmp (text + slen, "://", 3) != 0) {
        int rc = s_dsn_parse_go (text, dsn, warn, err);
        if (rc)
            s_dsn_free (dsn);
        return rc;
    }
    CURLU *url = curl_url ();
    if (!url) {
        dbt_err_set (err, "mysql: out of memory");
        return DBT_EINVAL;
    }
    int rc = 0;
    char *scheme = NULL, *port = NULL, *path = NULL, *query = NULL;
    CURLUcode uc = curl_url_set (url, CURLUPART_URL, text, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        dbt_err_set (err, "mysql: bad dsn: %s (want mysql://user:password@host:port/db)",
                     curl_url_strerror (uc));
        rc = DBT_EINVAL;
    }
    if (rc == 0
    && (s_url_part (url, CURLUPART_SCHEME, false, &scheme)
     || s_url_part (url, CURLUPART_USER, true, &dsn->user)
     || s_url_part (url, CURLUPART_PASSWORD, true, &dsn->password)
     || s_url_part (url, CURLUPART_HOST, true, &dsn->host)
     || s_url_part (url, CURLUPART_PORT, false, &port)
     || s_url_part (url, CURLUPART_PATH, true, &path)
     || s_url_part (url, CURLUPART_QUERY, false, &query))) {
        dbt_err_set (err, "mysql: bad dsn: a part does not decode (%%00?)");
        rc = DBT_EINVAL;
    }
    if (rc == 0 && (!scheme || (!streq (scheme, "mysql") && !streq (scheme, "mariadb")))) {
        dbt_err_set (err, "mysql: bad dsn: scheme '%s' is not mysql:// or mariadb://",
                     scheme ? scheme : "");
        rc = DBT_EINVAL;
    }
    //  An IPv6 address comes back in brackets
    size_t hlen = dsn->host ? strlen (dsn->host) : 0;
    if (rc == 0 && hlen > 2 && dsn->host [0] == '[' && dsn->host [hlen - 1] == ']') {
        memmove (dsn->host, dsn->host + 1, hlen - 2);
        dsn->host [hlen - 2] = 0;
    }
    int64_t number = 0;
    if (rc == 0 && port) {
        if (dbt_parse_int64 (port, 1, 65535, &number)) {
            dbt_err_set (err, "mysql: bad dsn: port '%s' is not 1-65535", port);
            rc = DBT_EINVAL;
        }
        dsn->port = (unsigned) number;
    }
    const char *db = path ? path + strspn (path, "/") : NULL;
    if (rc == 0 && db && strchr (db, '/')) {
        dbt_err_set (err, "mysql: bad dsn: the path must be one database name, not '%s'", path);
        rc = DBT_EINVAL;
    }
    if (rc == 0 && db && *db)
        dsn->db = dbt_strdup (db);
    if (rc == 0 && query)
        rc = s_dsn_query (dsn, query, warn, err);
    free (scheme);
    free (port);
    free (path);
    free (query);
    curl_url_cleanup (url);
    if (rc)
        s_dsn_free (dsn);
    return rc;
}

int
dbt_driver_mariadb_dsn (const char *text, char **desc, char *err)
{
    assert (desc);
    dbt_mariadb_dsn_t dsn;
    *desc = NULL;
    dbt_buf_t warn = { 0 };
    int rc = s_dsn_parse (text, &dsn, &warn, err);
    if (rc) {
        dbt_buf_free (&warn);
        return rc;
    }
    static const char *ssl [] = { "off", "on", "verify" };
    *desc = dbt_printf ("host=%s port=%u user=%s password=%s db=%s socket=%s ssl=%s "
                        "ssl_ca=%s ssl_capath=%s ssl_cert=%s ssl_key=%s timeout=%u warn=%.*s",
                        dsn.host ? dsn.host : "", dsn.port, dsn.user ? dsn.user : "",
                        dsn.password ? "set" : "none", dsn.db ? dsn.db : "",
                        dsn.socket ? dsn.socket : "", ssl [dsn.ssl],
                        dsn.ssl_ca ? dsn.ssl_ca : "", dsn.ssl_capath ? dsn.ssl_capath : "",
                        dsn.ssl_cert ? dsn.ssl_cert : "", dsn.ssl_key ? dsn.ssl_key : "",
                        dsn.dsn_timeout_s, (int) warn.len, warn.len ? warn.data : "");
    dbt_buf_free (&warn);
    s_dsn_free (&dsn);
    return 0;
}

//  Check a section's DSN at start-up: refused as connect would refuse it;
//  options that are ignored are described in warn ("" when none).
static int
s_check (const dbt_dbconf_t *conf, char *warn, char *err)
{
    dbt_mariadb_dsn_t dsn;
    dbt_buf_t notes = { 0 };
    warn [0] = 0;
    int rc = s_dsn_parse (conf->dsn, &dsn, &notes, err);
    if (rc == 0)
        s_dsn_free (&dsn);
    if (rc == 0 && notes.len)
        snprintf (warn, DBT_ERRMSG_LEN, "mysql: dsn %.*s", (int) notes.len, notes.data);
    dbt_buf_free (&notes);
    return rc;
}

//  --------------------------------------------------------------------------
//  Errors

//  --------------------------------------------------------------------------
//  Set err from a MariaDB error and return the matching code. Connection
//  errors mark the connection lost (DBT_ECONN, so the pool reconnects).

int
dbt_mariadb_error (dbt_mariadb_t *self, unsigned code, const char *message, const char *what,
                   char *err)
{
    if (code == ER_STATEMENT_TIMEOUT) {
        if (self->timeout_ms > 0)
            dbt_err_set (err, "query exceeded its time limit of %" PRId64 " ms",
                         self->timeout_ms);
        else
            dbt_err_set (err, "query exceeded the server's max_statement_time");
        return DBT_ETIMEDOUT;
    }
    if (code == ER_QUERY_INTERRUPTED && atomic_load (&self->canceled)) {
        dbt_err_set (err, "query canceled");
        return DBT_ECANCELED;
    }
    const char *hint = "";
    if (code == ER_NOT_ALLOWED_COMMAND || code == 4166)
        hint = " (the server refuses LOCAL INFILE: local_infile=0)";
    dbt_err_set (err, "mysql: %s%s (error %u)%s", what, message && *message ? message
                 : "unknown error", code, hint);
    switch (code) {
        case CR_CONNECTION_ERROR:
        case CR_CONN_HOST_ERROR:
        case CR_SERVER_GONE_ERROR:
        case CR_SERVER_LOST:
        case CR_SERVER_LOST_EXTENDED:
        case CR_COMMANDS_OUT_OF_SYNC:
        case ER_CONNECTION_KILLED:
        case ER_SERVER_SHUTDOWN:
        case ER_NET_READ_ERROR:
        case ER_NET_READ_INTERRUPTED:
        case ER_NET_ERROR_ON_WRITE:
        case ER_NET_WRITE_INTERRUPTED:
            self->lost = true;
            return DBT_ECONN;
        case ER_RECORD_FILE_FULL:
        case ER_DISK_FULL:
            return DBT_EFULL;
        default:
            return DBT_ERROR;
    }
}

//  --------------------------------------------------------------------------
//  The connection's last error.

int
dbt_mariadb_last_error (dbt_mariadb_t *self, const char *what, char *err)
{
    return dbt_mariadb_error (self, mysql_errno (self->mysql), mysql_error (self->mysql),
                              what, err);
}

//  --------------------------------------------------------------------------
//  Run sql, dropping any result. Returns 0 or an error code.

int
dbt_mariadb_exec (dbt_mariadb_t *self, const char *sql, const char *what, char *err)
{
    if (mysql_real_query (self->mysql, sql, strlen (sql)))
        return dbt_mariadb_last_error (self, what, err);
    mysql_free_result (mysql_store_result (self->mysql));
    return 0;
}

//  --------------------------------------------------------------------------
//  Set the session's max_statement_time (seconds, to the millisecond).

int
dbt_mariadb_set_timeout (dbt_mariadb_t *self, int64_t timeout_ms, char *err)
{
    //  max_statement_time takes at most a year (31536000 s): a longer
    //  limit is left to the worker, which cancels the query in time.
    if (timeout_ms > INT64_C (31536000000))
        timeout_ms = 0;
    if (timeout_ms == self->stmt_timeout_ms)
        return 0;
    char sql [64];
    snprintf (sql, sizeof (sql), "SET SESSION max_statement_time = %" PRId64 ".%03d",
              timeout_ms / 1000, (int) (timeout_ms % 1000));
    int rc = dbt_mariadb_exec (self, sql, "cannot set max_statement_time: ", err);
    if (rc == 0)
        self->stmt_timeout_ms = timeout_ms;
    return rc;
}

//  --------------------------------------------------------------------------
//  Connections

//  Open a connection with dsn's settings (LOCAL INFILE only when asked).
//  Returns it, or NULL with DBT_ECONN in *rc and the reason in err.
static MYSQL *
s_open (const dbt_mariadb_dsn_t *dsn, unsigned timeout_s, bool local_infile, int *rc,
        char *err)
{
    *rc = DBT_ECONN;
    MYSQL *mysql = mysql_init (NULL);
    if (!mysql) {
        dbt_err_set (err, "mysql: out of memory");
        return NULL;
    }
    unsigned infile = local_infile ? 1 : 0;
    my_bool on = 1, verify = dsn->ssl == S_SSL_VERIFY;
    mysql_optionsv (mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
    mysql_optionsv (mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv (mysql, MYSQL_OPT_LOCAL_INFILE, &infile);
    if (dsn->socket) {
        unsigned protocol = MYSQL_PROTOCOL_SOCKET;
        mysql_optionsv (mysql, MYSQL_OPT_PROTOCOL, &protocol);
    }
    if (dsn->ssl != S_SSL_OFF) {
        mysql_optionsv (mysql, MYSQL_OPT_SSL_ENFORCE, &on);
        mysql_optionsv (mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        mysql_ssl_set (mysql, dsn->ssl_key, dsn->ssl_cert, dsn->ssl_ca, dsn->ssl_capath, NULL);
    }
    if (!mysql_real_connect (mysql, dsn->socket ? NULL : dsn->host, dsn->user, dsn->password,
                             dsn->db, dsn->port, dsn->socket, 0)) {
        dbt_err_set (err, "mysql: cannot connect: %s (error %u)", mysql_error (mysql),
                     mysql_errno (mysql));
        mysql_close (mysql);
        return NULL;
    }
    *rc = 0;
    return mysql;
}

static void s_disconnect (void **handle_p);

static int
s_connect (const dbt_dbconf_t *conf, void **handle_p, char *err)
{
    dbt_mariadb_t *self = (dbt_mariadb_t *) dbt_malloc (sizeof (dbt_mariadb_t));
    atomic_init (&self->canceled, false);
    self->results = conf->results;
    self->dsn = (dbt_mariadb_dsn_t *) dbt_malloc (sizeof (dbt_mariadb_dsn_t));
    int rc = s_dsn_parse (conf->dsn, self->dsn, NULL, err);
    if (rc == 0) {
        self->dsn->timeout_s = conf->connect_timeout_ms > 0
                             ? (unsigned) ((conf->connect_timeout_ms + 999) / 1000)
                             : self->dsn->dsn_timeout_s > 0 ? self->dsn->dsn_timeout_s
                             : S_CONNECT_TIMEOUT_S;
        self->mysql = s_open (self->dsn, self->dsn->timeout_s, conf->results, &rc, err);
    }
    if (rc == 0)
        rc = dbt_mariadb_exec (self, s_session_sql, "cannot set up the session: ", err);
    if (rc) {
        void *handle = self;
        s_disconnect (&handle);
        return rc == DBT_EINVAL ? rc : DBT_ECONN;
    }
    self->thread_id = mysql_thread_id (self->mysql);
    if (conf->results) {
        dbt_mariadb_infile_handler (self);
        rc = dbt_mariadb_write_probe (self, err);
        if (rc) {
            void *handle = self;
            s_disconnect (&handle);
            return rc;
        }
    }
    *handle_p = self;
    return 0;
}

static void
s_disconnect (void **handle_p)
{
    assert (handle_p);
    dbt_mariadb_t *self = (dbt_mariadb_t *) *handle_p;
    if (!self)
        return;
    dbt_mariadb_query_end (self);
    dbt_mariadb_write_abort (self, NULL);
    if (self->mysql)
        mysql_close (self->mysql);
    s_dsn_free (self->dsn);
    free (self->dsn);
    free (self);
    *handle_p = NULL;
}

static bool
s_alive (void *handle)
{
    dbt_mariadb_t *self = (dbt_mariadb_t *) handle;
    return self && self->mysql && !self->lost;
}

//  --------------------------------------------------------------------------
//  Stop the connection's running statement from a second connection.
//  Thread-safe: reads only what never changes after connect.

void
dbt_mariadb_kill (const dbt_mariadb_t *self)
{
    char err [DBT_ERRMSG_LEN];
    int rc;
    MYSQL *killer = s_open (self->dsn, S_CANCEL_TIMEOUT_S, false, &rc, err);
    if (!killer) {
        dbt_log (DBT_LOG_WARN, "mysql: cannot cancel query: %s", err);
        return;
    }
    char sql [48];
    snprintf (sql, sizeof (sql), "KILL QUERY %lu", self->thread_id);
    if (mysql_real_query (killer, sql, strlen (sql)))
        dbt_log (DBT_LOG_WARN, "mysql: cannot cancel query: %s", mysql_error (killer));
    mysql_close (killer);
}

static void
s_cancel (void *handle)
{
    dbt_mariadb_t *self = (dbt_mariadb_t *) handle;
    if (!self || !self->thread_id)
        return;
    atomic_store (&self->canceled, true);
    dbt_mariadb_kill (self);
}

const dbt_driver_t dbt_driver_mariadb = {
    .name = "mysql",
    .alias = "mariadb",
    .check = s_check,
    .connect = s_connect,
    .disconnect = s_disconnect,
    .alive = s_alive,
    .prepare = dbt_mariadb_prepare,
    .query = dbt_mariadb_query,
    .columns = dbt_mariadb_columns,
    .fetch = dbt_mariadb_fetch,
    .query_end = dbt_mariadb_query_end,
    .cancel = s_cancel,
    .write_begin = dbt_mariadb_write_begin,
    .write_row = dbt_mariadb_write_row,
    .write_commit = dbt_mariadb_write_commit,
    .write_abort = dbt_mariadb_write_abort,
    .drop_table = dbt_mariadb_drop_table,
    .max_identifier = 64,
    .ident_quote = '`'
};

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test (offline; tests/dbt_drivertest runs the live checks)

//  Parse text into dsn, expecting rc; on success the caller frees dsn.
static int
s_dsn_check (const char *text, dbt_mariadb_dsn_t *dsn, char *err)
{
    int rc = s_dsn_parse (text, dsn, NULL, err);
    if (rc == 0)
        assert (!dsn->password || !strstr (err, dsn->password));
    return rc;
}

//  Encode one row of cells through s_write_row into a fresh string, or
//  NULL when refused (the message in err).
void
dbt_driver_mariadb_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    dbt_mariadb_dsn_t dsn;

    //  DSNs
    assert (s_dsn_check ("mysql://test:testpw@127.0.0.1:3307/testdb", &dsn, err) == 0);
    assert (streq (dsn.user, "test") && streq (dsn.password, "testpw"));
    assert (streq (dsn.host, "127.0.0.1") && dsn.port == 3307 && streq (dsn.db, "testdb"));
    assert (!dsn.socket && dsn.ssl == S_SSL_OFF);
    s_dsn_free (&dsn);
    assert (s_dsn_check ("mariadb://u%40x:p%3Aw%2F%25@db.example.com/my%20db", &dsn, err) == 0);
    assert (streq (dsn.user, "u@x") && streq (dsn.password, "p:w/%"));
    assert (streq (dsn.host, "db.example.com") && dsn.port == 0 && streq (dsn.db, "my db"));
    s_dsn_free (&dsn);
    assert (s_dsn_check ("MySQL://root@[::1]:3306/", &dsn, err) == 0);
    assert (streq (dsn.host, "::1") && dsn.port == 3306 && !dsn.db && !dsn.password);
    s_dsn_free (&dsn);
    assert (s_dsn_check ("mysql://h", &dsn, err) == 0);
    assert (streq (dsn.host, "h") && !dsn.user && !dsn.db);
    s_dsn_free (&dsn);
    assert (s_dsn_check ("mysql://u:p@localhost/db?socket=%2Frun%2Fmysqld%2Fmysqld.sock"
                         "&ssl=true", &dsn, err) == 0);
    assert (streq (dsn.socket, "/run/mysqld/mysqld.sock") && dsn.ssl == S_SSL_ON);
    s_dsn_free (&dsn);
    assert (s_dsn_check ("mysql://h/db?ssl=verify&ssl_ca=%2Fetc%2Fca.pem&&ssl_cert=c&ssl_key=k"
                         "&ssl_capath=d", &dsn, err) == 0);
    assert (dsn.ssl == S_SSL_VERIFY && streq (dsn.ssl_ca, "/etc/ca.pem"));
    assert (streq (dsn.ssl_cert, "c") && streq (dsn.ssl_key, "k") && streq (dsn.ssl_capath, "d"));
    s_dsn_free (&dsn);
    assert (s_dsn_check ("mysql://h/db?ssl_ca=a.pem", &dsn, err) == 0 && dsn.ssl == S_SSL_ON);
    s_dsn_free (&dsn);
    assert (s_dsn_check ("mysql://h/db?ssl_ca=a.pem&ssl=false", &dsn, err) == 0);
    assert (dsn.ssl == S_SSL_OFF);
    s_dsn_free (&dsn);
    assert (s_dsn_check ("mysql://u:secret@h/db?ssl=maybe", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "ssl must be") && !strstr (err, "secret"));
    char *desc = NULL;
    assert (dbt_driver_mariadb_dsn ("mysql://u:secret@[::1]:3307/db?ssl_ca=%2Fca", &desc, err) == 0);
    assert (streq (desc, "host=::1 port=3307 user=u password=set db=db socket= ssl=on "
                         "ssl_ca=/ca ssl_capath= ssl_cert= ssl_key= timeout=0 warn="));
    free (desc);
    assert (dbt_driver_mariadb_dsn ("mysql://u:secret@h:0/db", &desc, err) == DBT_EINVAL);
    assert (!desc && strstr (err, "port") && !strstr (err, "secret"));
    assert (s_dsn_check ("mysql://u:secret@h/db?bogus=1", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "unknown option 'bogus'") && !strstr (err, "secret"));
    assert (s_dsn_check ("mysql://h/db?socket", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "'socket' is not key=value"));
    assert (s_dsn_check ("mysql://h/db?socket=%00", &dsn, err) == DBT_EINVAL);
    assert (s_dsn_check ("postgres://u@h/db", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "scheme 'postgres'"));
    assert (s_dsn_check ("mysql://h:99999/db", &dsn, err) == DBT_EINVAL);
    assert (s_dsn_check ("mysql://h:0/db", &dsn, err) == DBT_EINVAL);
    assert (s_dsn_check ("mysql://h/a/b", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "one database name"));
    assert (s_dsn_check ("mysql://u:p%00w@h/db", &dsn, err) == DBT_EINVAL);
    assert (s_dsn_check ("", &dsn, err) == DBT_EINVAL && strstr (err, "empty dsn"));
    assert (s_dsn_check (NULL, &dsn, err) == DBT_EINVAL);
    assert (s_dsn_check ("host=127.0.0.1 user=x", &dsn, err) == DBT_EINVAL);

    //  Upstream's go-sql-driver DSNs: the same settings as the URL form
    assert (s_dsn_check ("user:secret@tcp(h:3307)/db", &dsn, err) == 0);
    assert (streq (dsn.user, "user") && streq (dsn.password, "secret"));
    assert (streq (dsn.host, "h") && dsn.port == 3307 && streq (dsn.db, "db"));
    assert (!dsn.socket && dsn.ssl == S_SSL_OFF);
    s_dsn_free (&dsn);
    //  The password runs to the last '@' before the last '/'
    assert (s_dsn_check ("u:p@s:s/w@rd@tcp([::1]:3306)/my%20db?tls=true", &dsn, err) == 0);
    assert (streq (dsn.user, "u") && streq (dsn.password, "p@s:s/w@rd"));
    assert (streq (dsn.host, "::1") && dsn.port == 3306 && streq (dsn.db, "my db"));
    assert (dsn.ssl == S_SSL_VERIFY);
    s_dsn_free (&dsn);
    //  No address: go-sql-driver's 127.0.0.1:3306; a host alone gets 3306
    assert (s_dsn_check ("root@/", &dsn, err) == 0);
    assert (streq (dsn.user, "root") && !dsn.password && streq (dsn.host, "127.0.0.1"));
    assert (dsn.port == 3306 && !dsn.db);
    s_dsn_free (&dsn);
    assert (s_dsn_check ("tcp(db.example)/x?tls=skip-verify&timeout=1500ms", &dsn, err) == 0);
    assert (streq (dsn.host, "db.example") && dsn.port == 3306 && dsn.ssl == S_SSL_ON);
    assert (dsn.dsn_timeout_s == 2 && !dsn.user);
    s_dsn_free (&dsn);
    assert (s_dsn_check ("u:pw@unix(/run/mysqld/mysqld.sock)/db", &dsn, err) == 0);
    assert (streq (dsn.socket, "/run/mysqld/mysqld.sock") && streq (dsn.db, "db"));
    s_dsn_free (&dsn);
    assert (s_dsn_check ("u@unix/db", &dsn, err) == 0 && streq (dsn.socket, "/tmp/mysql.sock"));
    s_dsn_free (&dsn);
    //  Options that change nothing are accepted with a warning
    assert (dbt_driver_mariadb_dsn ("u:secret@tcp(h:3306)/db?parseTime=true&loc=Local"
                                    "&charset=utf8mb4,utf8&tls=false", &desc, err) == 0);
    assert (strstr (desc, "warn=option parseTime=true is ignored"));
    assert (strstr (desc, "; option loc=Local is ignored") && !strstr (desc, "charset"));
    assert (!strstr (desc, "secret") && strstr (desc, " ssl=off "));
    free (desc);
    assert (dbt_driver_mariadb_dsn ("u@tcp(h)/db?charset=latin1&tls=preferred", &desc, err) == 0);
    assert (strstr (desc, "charset=latin1 is ignored") && strstr (desc, "TLS is not tried"));
    free (desc);
    dbt_dbconf_t goconf = { .name = "m", .type = "mysql", .dsn = "u:p@tcp(h)/db?parseTime=true" };
    char warn [DBT_ERRMSG_LEN];
    assert (s_check (&goconf, warn, err) == 0 && strstr (warn, "mysql: dsn option parseTime"));
    goconf.dsn = "u:p@tcp(h)/db";
    assert (s_check (&goconf, warn, err) == 0 && warn [0] == 0);
    goconf.dsn = "u:p@tcp(h)/db?tls=custom";
    assert (s_check (&goconf, warn, err) == DBT_EINVAL && strstr (err, "registered TLS config"));
    //  Refusals never show the password
    assert (s_dsn_check ("u:secret@tcp(h:3306)/db?sql_mode=ANSI", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "unknown option 'sql_mode'") && strstr (err, "session variables"));
    assert (s_dsn_check ("u:secret@tcp(h:3306/db", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "does not end with ')'") && !strstr (err, "secret"));
    assert (s_dsn_check ("u:secret@tcp(h:70000)/db", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "port '70000'") && !strstr (err, "secret"));
    assert (s_dsn_check ("u:secret@tcp(a:b:c)/db", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "too many colons"));
    assert (s_dsn_check ("u:secret@udp(h)/db", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "network 'udp'") && !strstr (err, "secret"));
    assert (s_dsn_check ("u:secret(x/db", &dsn, err) == DBT_EINVAL && !strstr (err, "secret"));
    assert (s_dsn_check ("u:secretvalue/db", &dsn, err) == DBT_EINVAL && !strstr (err, "secret"));
    assert (s_dsn_check ("u:secret@tcp(h)", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "no '/'") && !strstr (err, "secret"));
    assert (s_dsn_check ("u@tcp(h)/db?timeout=soon", &dsn, err) == DBT_EINVAL);
    assert (strstr (err, "timeout must be a duration"));

    //  Errors and their codes
    dbt_mariadb_t *self = (dbt_mariadb_t *) dbt_malloc (sizeof (dbt_mariadb_t));
    atomic_init (&self->canceled, false);
    assert (dbt_mariadb_error (self, ER_NO_SUCH_TABLE, "Table 'x' doesn't exist", "", err)
            == DBT_ERROR);
    assert (streq (err, "mysql: Table 'x' doesn't exist (error 1146)"));
    assert (dbt_mariadb_error (self, ER_QUERY_INTERRUPTED, "interrupted", "", err) == DBT_ERROR);
    atomic_store (&self->canceled, true);
    assert (dbt_mariadb_error (self, ER_QUERY_INTERRUPTED, "interrupted", "", err)
            == DBT_ECANCELED);
    assert (streq (err, "query canceled"));
    assert (dbt_mariadb_error (self, ER_STATEMENT_TIMEOUT, "", "", err) == DBT_ETIMEDOUT);
    assert (strstr (err, "max_statement_time"));
    self->timeout_ms = 300;
    assert (dbt_mariadb_error (self, ER_STATEMENT_TIMEOUT, "", "", err) == DBT_ETIMEDOUT);
    assert (streq (err, "query exceeded its time limit of 300 ms"));
    assert (dbt_mariadb_error (self, ER_RECORD_FILE_FULL, "full", "", err) == DBT_EFULL);
    assert (dbt_mariadb_error (self, 4166, "disabled", "x: ", err) == DBT_ERROR);
    assert (strstr (err, "local_infile=0"));
    assert (!self->lost);
    assert (dbt_mariadb_error (self, CR_SERVER_LOST, NULL, "", err) == DBT_ECONN);
    assert (self->lost && strstr (err, "unknown error"));

    free (self);

    //  Connecting fails cleanly: nobody listens, or a bad DSN
    dbt_dbconf_t conf = {
        .name = "nope", .type = "mysql", .connect_timeout_ms = 1500,
        .dsn = "mysql://nobody:pw@127.0.0.1:1/nothing"
    };
    void *handle = NULL;
    assert (s_connect (&conf, &handle, err) == DBT_ECONN && handle == NULL);
    assert (strstr (err, "mysql: cannot connect: "));
    conf.dsn = "mysql://nobody@127.0.0.1:1/nothing?socket=%2Fnonexistent%2Fsock";
    assert (s_connect (&conf, &handle, err) == DBT_ECONN && handle == NULL);
    conf.dsn = "mysql://nobody@127.0.0.1/x?nope=1";
    assert (s_connect (&conf, &handle, err) == DBT_EINVAL && handle == NULL);
    s_disconnect (&handle);

    dbt_mariadb_read_test (verbose);
    dbt_mariadb_write_test (verbose);
    if (verbose)
        printf ("driver_mariadb: ok\n");
}
#endif  //  DBT_SELFTEST
