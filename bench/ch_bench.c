/*  =========================================================================
    ch_bench - ClickHouse driver throughput against curl and other formats

    Usage: bench/ch_bench URL [ROWS]          (build: make bench-drivers)

    Reads ROWS (default 5,000,000) rows of the six-column report shape
    (Int64, Decimal(12,2), DateTime, Date, UInt8, String) generated from
    system.numbers with max_threads=1, and measures, best of three runs:

      curl FORMAT x     the curl command writing the response to /dev/null
                        (the raw reference: no parsing), for Native,
                        RowBinary, TabSeparatedWithNamesAndTypes, JSONCompact
      driver (Native)   dbt_conn_query + dbt_conn_fetch over all rows
      reader x          a minimal streaming reader of format x written here
                        (libcurl write callback), producing the same
                        canonical cells as the driver: the cost of the
                        alternatives the driver could have used

    Every reader sums the lengths of the cells it produced; the sums must
    agree (the same canonical text whatever the format). Not part of make
    check: it needs a server (tests/lib/servers.sh start_clickhouse).
    =========================================================================
*/
#include "../src/dbt_classes.h"
#include <curl/curl.h>
#include <sys/wait.h>

#define RUNS 3

static const char s_query [] =
    "SELECT toInt64(number) AS id, toDecimal64(number %% 100000 / 100, 2) AS amount, "
    "toDateTime(toUInt32(1704067200 + intDiv(number * 3, 2))) AS ts, "
    "toDate(17897 + number %% 365) AS day, toUInt8(number %% 2) AS flag, "
    "concat('user', toString(number %% 1000), ' some note text') AS note "
    "FROM system.numbers LIMIT %ld";

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
s_die (const char *what, const char *err)
{
    fprintf (stderr, "ch_bench: %s: %s\n", what, err);
    exit (1);
}

static void
s_report (const char *what, long rows, double secs, uint64_t bytes, double ref)
{
    printf ("%-34s %9ld rows  %7.3f s  %10.0f rows/s", what, rows, secs, rows / secs);
    if (bytes)
        printf ("  cells %" PRIu64 " B", bytes);
    if (ref > 0)
        printf ("  %.2fx curl Native", (rows / secs) / ref);
    printf ("\n");
    fflush (stdout);
}

//  --------------------------------------------------------------------------
//  curl to /dev/null

//  Run the curl command for sql; returns seconds.
static double
s_curl_cli (const char *url, const char *sql)
{
    double start = s_now ();
    pid_t pid = fork ();
    if (pid == 0) {
        execlp ("curl", "curl", "-sS", "-o", "/dev/null", "--data-binary", sql, url,
                (char *) NULL);
        _exit (127);
    }
    int status = 0;
    waitpid (pid, &status, 0);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        s_die ("curl", "the curl command failed");
    return s_now () - start;
}

//  --------------------------------------------------------------------------
//  The driver

static long
s_driver_read (dbt_conn_t *src, const char *sql, uint64_t *bytes)
{
    char err [DBT_ERRMSG_LEN];
    if (dbt_conn_query (src, sql, NULL, NULL, err))
        s_die ("driver read", err);
    long rows = 0;
    dbt_row_t row;
    int rc;
    *bytes = 0;
    while ((rc = dbt_conn_fetch (src, &row, err)) == 1) {
        for (size_t i = 0; i < row.ncols; i++)
            *bytes += row.lens [i];
        rows++;
    }
    if (rc < 0)
        s_die ("driver read", err);
    dbt_conn_query_end (src);
    return rows;
}

//  --------------------------------------------------------------------------
//  Minimal readers of the other formats (push: parsed in the callback)

typedef struct {
    dbt_buf_t carry;            //  bytes of an unfinished row
    long rows;                  //  rows read
    uint64_t bytes;             //  canonical cell bytes produced
    int skip;                   //  header lines still to skip (TSV)
    dbt_buf_t cells [6];        //  cell text
    //  JSONCompact state
    bool in_data;               //  inside "data": [
    int depth;                  //  bracket depth
    bool in_string;             //  inside a string
    bool escape;                //  after a backslash
    size_t cell;                //  cell index in the row
    dbt_buf_t token;            //  current token
    dbt_cell_daycache_t days [2];   //  RowBinary: DateTime and Date
} s_reader_t;

//  Canonical text of the cells of one row (from text formats): a DateTime
//  gets its zone.
static void
s_row_done (s_reader_t *self, size_t ncells)
{
    for (size_t i = 0; i < ncells; i++)
        self->bytes += self->cells [i].len + (i == 2 ? 3 : 0);
    self->rows++;
}

//  TabSeparated: lines of tab-separated, backslash-escaped fields.
static size_t
s_tsv_data (char *data, size_t size, size_t nmemb, void *arg)
{
    s_reader_t *self = (s_reader_t *) arg;
    size_t len = size * nmemb;
    dbt_buf_append (&self->carry, data, len);
    char *p = self->carry.data, *end = p + self->carry.len;
    char *nl;
    while ((nl = memchr (p, '\n', (size_t) (end - p)))) {
        if (self->skip > 0)
            self->skip--;
        else {
            size_t cell = 0;
            dbt_buf_reset (&self->cells [0]);
            for (char *q = p; q < nl; q++) {
                if (*q == '\t') {
                    if (++cell < 6)
                        dbt_buf_reset (&self->cells [cell]);
                    continue;
                }
                char c = *q;
                if (c == '\\' && q + 1 < nl) {
                    c = *++q;
                    c = c == 't' ? '\t' : c == 'n' ? '\n' : c == '0' ? 0 : c == 'r' ? '\r' : c;
                }
                if (cell < 6)
                    dbt_buf_putc (&self->cells [cell], c);
            }
            s_row_done (self, 6);
        }
        p = nl + 1;
    }
    size_t rest = (size_t) (end - p);
    memmove (self->carry.data, p, rest);
    self->carry.len = rest;
    return len;
}

//  JSONCompact: {"meta": [...], "data": [[v, ...], ...], "rows": N, ...}
static size_t
s_json_data (char *data, size_t size, size_t nmemb, void *arg)
{
    s_reader_t *self = (s_reader_t *) arg;
    size_t len = size * nmemb;
    for (size_t i = 0; i < len; i++) {
        char c = data [i];
        if (self->in_string) {
            if (self->escape) {
                self->escape = false;
                c = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 'b' ? '\b'
                  : c == 'f' ? '\f' : c;
                dbt_buf_putc (&self->token, c);
            }
            else
            if (c == '\\')
                self->escape = true;
            else
            if (c == '"')
                self->in_string = false;
            else
                dbt_buf_putc (&self->token, c);
            continue;
        }
        if (c == '"') {
            self->in_string = true;
            continue;
        }
        if (c == '[' || c == '{') {
            self->depth++;
            if (self->depth == 3 && self->in_data) {
                self->cell = 0;
                dbt_buf_reset (&self->token);
            }
            else
            if (self->depth == 2 && self->token.len == 4
            &&  memcmp (self->token.data, "data", 4) == 0)
                self->in_data = true;
            continue;
        }
        if (c == ']' || c == '}' || c == ',') {
            if (self->depth == 3 && self->in_data) {
                dbt_buf_t *cell = &self->cells [self->cell < 6 ? self->cell : 5];
                dbt_buf_reset (cell);
                dbt_buf_append (cell, self->token.data, self->token.len);
                self->cell++;
                if (c == ']')
                    s_row_done (self, 6);
            }
            if (c != ',')
                self->depth--;
            if (self->depth == 1)
                self->in_data = false;
            dbt_buf_reset (&self->token);
            continue;
        }
        if (c == ':') {
            continue;           //  the key stays in token until the value
        }
        if (!isspace ((unsigned char) c)) {
            if (self->depth == 3)
                dbt_buf_putc (&self->token, c);
        }
    }
    return len;
}

//  RowBinary of the bench's six columns: Int64, Decimal64(2), DateTime,
//  Date, UInt8, String (no types in the stream: 18.16 has no
//  RowBinaryWithNamesAndTypes, and no framing either: for speed only).
static size_t
s_rowbinary_data (char *data, size_t size, size_t nmemb, void *arg)
{
    s_reader_t *self = (s_reader_t *) arg;
    size_t len = size * nmemb;
    dbt_buf_append (&self->carry, data, len);
    const unsigned char *p = (const unsigned char *) self->carry.data;
    const unsigned char *end = p + self->carry.len;
    char text [64];
    while (end - p >= 24) {
        const unsigned char *q = p + 23;
        uint64_t slen = 0;
        int shift = 0;
        while (q < end && (*q & 0x80)) {
            slen |= (uint64_t) (*q++ & 0x7f) << shift;
            shift += 7;
        }
        if (q == end)
            break;
        slen |= (uint64_t) *q++ << shift;
        if ((uint64_t) (end - q) < slen)
            break;
        int64_t id, amount;
        uint32_t ts;
        uint16_t day;
        memcpy (&id, p, 8);
        memcpy (&amount, p + 8, 8);
        memcpy (&ts, p + 16, 4);
        memcpy (&day, p + 20, 2);
        self->bytes += dbt_ch_text_i64 (id, text);
        self->bytes += dbt_ch_text_decimal (amount < 0 ? UINT64_MAX : 0, (uint64_t) amount, 2,
                                            text);
        self->bytes += (uint64_t) dbt_cell_unixtime (DBT_COL_TIMESTAMPTZ, ts, 0, &self->days [0],
                                                     text, sizeof (text));
        self->bytes += (uint64_t) dbt_cell_unixtime (DBT_COL_DATE, (int64_t) day * 86400, 0,
                                                     &self->days [1], text, sizeof (text));
        self->bytes += dbt_ch_text_u64 (p [22], text);
        self->bytes += slen;
        self->rows++;
        p = q + slen;
    }
    size_t rest = (size_t) (end - p);
    memmove (self->carry.data, p, rest);
    self->carry.len = rest;
    return len;
}

//  Read sql from url through callback; returns rows, cell bytes in *bytes.
static long
s_reader (const char *url, const char *sql, curl_write_callback callback, int skip,
          uint64_t *bytes)
{
    s_reader_t self = { .skip = skip };
    CURL *easy = curl_easy_init ();
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, sql);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, callback);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, &self);
    curl_easy_setopt (easy, CURLOPT_BUFFERSIZE, 256L * 1024);
    CURLcode res = curl_easy_perform (easy);
    if (res != CURLE_OK)
        s_die ("reader", curl_easy_strerror (res));
    curl_easy_cleanup (easy);
    dbt_buf_free (&self.carry);
    dbt_buf_free (&self.token);
    for (int i = 0; i < 6; i++)
        dbt_buf_free (&self.cells [i]);
    *bytes = self.bytes;
    return self.rows;
}

int
main (int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf (stderr, "usage: ch_bench URL [ROWS]   (URL like http://127.0.0.1:8123/)\n");
        return 2;
    }
    long nrows = 5000000;
    if (argc == 3) {
        int64_t parsed;
        if (dbt_parse_int64 (argv [2], 1, 1000000000, &parsed))
            s_die ("bad row count", argv [2]);
        nrows = (long) parsed;
    }
    curl_global_init (CURL_GLOBAL_ALL);
    char *url = dbt_printf ("%s%smax_threads=1", argv [1], strchr (argv [1], '?') ? "&" : "?");
    char *sql = dbt_printf (s_query, nrows);
    printf ("%ld rows of (Int64, Decimal(12,2), DateTime, Date, UInt8, String), "
            "max_threads=1, best of %d\n", nrows, RUNS);

    static const char *formats [] = {
        "Native", "RowBinary", "TabSeparatedWithNamesAndTypes", "JSONCompact"
    };
    double ref = 0;
    for (size_t f = 0; f < 4; f++) {
        char *full = dbt_printf ("%s FORMAT %s", sql, formats [f]);
        double best = 1e9;
        for (int run = 0; run < RUNS; run++) {
            double secs = s_curl_cli (url, full);
            best = secs < best ? secs : best;
        }
        if (f == 0)
            ref = nrows / best;
        char *what = dbt_printf ("curl FORMAT %s > /dev/null", formats [f]);
        s_report (what, nrows, best, 0, f ? ref : 0);
        free (what);
        free (full);
    }

    char err [DBT_ERRMSG_LEN];
    dbt_dbconf_t conf = { .name = "src", .type = "clickhouse", .dsn = url };
    dbt_conn_t *src = dbt_conn_new (&conf, err);
    if (!src)
        s_die ("connect", err);
    double best = 1e9;
    long rows = 0;
    uint64_t bytes = 0;
    for (int run = 0; run < RUNS; run++) {
        double start = s_now ();
        rows = s_driver_read (src, sql, &bytes);
        double secs = s_now () - start;
        best = secs < best ? secs : best;
    }
    s_report ("driver (Native)", rows, best, bytes, ref);
    dbt_conn_destroy (&src);

    static const struct {
        const char *name;       //  what
        const char *format;     //  FORMAT
        curl_write_callback callback;   //  reader
        int skip;               //  header lines
    } readers [] = {
        { "reader RowBinary (no framing)", "RowBinary", s_rowbinary_data, 0 },
        { "reader TabSeparatedWithNamesAndTypes", "TabSeparatedWithNamesAndTypes", s_tsv_data, 2 },
        { "reader JSONCompact", "JSONCompact", s_json_data, 0 },
    };
    for (size_t k = 0; k < sizeof (readers) / sizeof (readers [0]); k++) {
        char *full = dbt_printf ("%s FORMAT %s", sql, readers [k].format);
        best = 1e9;
        for (int run = 0; run < RUNS; run++) {
            double start = s_now ();
            rows = s_reader (url, full, readers [k].callback, readers [k].skip, &bytes);
            double secs = s_now () - start;
            best = secs < best ? secs : best;
        }
        s_report (readers [k].name, rows, best, bytes, ref);
        free (full);
    }
    free (sql);
    free (url);
    curl_global_cleanup ();
    return 0;
}
