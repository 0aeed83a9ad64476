/*  =========================================================================
    dbt_driver - database driver registry, column helpers, connection wrapper

    See dbt_driver.h. The registry is a const table (one of the allowed kinds
    of global state); everything else works on caller-owned memory. A
    dbt_conn_t is used by one thread at a time, except dbt_conn_cancel.
    =========================================================================
*/
#include "dbt_classes.h"
#include <math.h>
#include <strings.h>

//  Every driver the server knows.
static const dbt_driver_t *const s_drivers [] = {
    &dbt_driver_pg,
    &dbt_driver_sqlite,
    &dbt_driver_mariadb,
    &dbt_driver_clickhouse,
    NULL
};

//  Kept in step with s_drivers (the self test checks it).
static const char s_driver_names [] = "postgres postgresql sqlite sqlite3 mysql mariadb clickhouse";

struct _dbt_conn_t {
    const dbt_driver_t *driver; //  the connection's driver
    void *handle;               //  driver handle (owned)
    char *name;                 //  config section name (owned)
    bool results;               //  opened as a results database
    bool broken;                //  a call returned DBT_ECONN
};

//  --------------------------------------------------------------------------
//  Find a driver by type name (case-insensitive); NULL when unknown.

const dbt_driver_t *
dbt_driver_find (const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; s_drivers [i]; i++) {
        const dbt_driver_t *driver = s_drivers [i];
        if (strcasecmp (type, driver->name) == 0
        || (driver->alias && strcasecmp (type, driver->alias) == 0))
            return driver;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Check a section's DSN at start-up, logging what is ignored.

int
dbt_driver_check (const dbt_dbconf_t *conf, char *err)
{
    assert (conf);
    const dbt_driver_t *driver = dbt_driver_find (conf->type);
    if (!driver || !driver->check)
        return 0;
    char warn [DBT_ERRMSG_LEN] = "";
    char inner [DBT_ERRMSG_LEN] = "";
    const char *name = conf->name ? conf->name : "?";
    const char *kind = conf->results ? "results" : "db";
    if (driver->check (conf, warn, inner)) {
        dbt_err_set (err, "[%s.%s] %s", kind, name, inner);
        return DBT_EINVAL;
    }
    if (*warn)
        dbt_log (DBT_LOG_WARN, "node: [%s.%s] %s", kind, name, warn);
    return 0;
}

//  --------------------------------------------------------------------------
//  Space-separated list of known type names. Static.

const char *
dbt_driver_names (void)
{
    return s_driver_names;
}

//  --------------------------------------------------------------------------
//  Static name of a column type.

const char *
dbt_coltype_name (dbt_coltype_t type)
{
    switch (type) {
        case DBT_COL_TEXT:        return "TEXT";
        case DBT_COL_BIGINT:      return "BIGINT";
        case DBT_COL_UBIGINT:     return "UBIGINT";
        case DBT_COL_DECIMAL:     return "DECIMAL";
        case DBT_COL_DOUBLE:      return "DOUBLE";
        case DBT_COL_BOOLEAN:     return "BOOLEAN";
        case DBT_COL_DATE:        return "DATE";
        case DBT_COL_TIMESTAMP:   return "TIMESTAMP";
        case DBT_COL_TIMESTAMPTZ: return "TIMESTAMPTZ";
    }
    return "UNKNOWN";
}

//  --------------------------------------------------------------------------
//  Free the strings of ncols columns and the array; nulls the pointer.

void
dbt_columns_free (dbt_column_t **cols_p, size_t ncols)
{
    assert (cols_p);
    dbt_column_t *cols = *cols_p;
    if (!cols)
        return;
    for (size_t i = 0; i < ncols; i++) {
        free (cols [i].name);
        free (cols [i].source_type);
    }
    free (cols);
    *cols_p = NULL;
}

//  True when name equals (case-insensitively) a name in cols [from, to),
//  skipping index skip.
static bool
s_name_taken (const dbt_column_t *cols, size_t from, size_t to, size_t skip,
              const char *name)
{
    for (size_t i = from; i < to; i++)
        if (i != skip && cols [i].name && strcasecmp (cols [i].name, name) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Give each column a unique, non-empty name, in place. Empty names become
//  "column"; a repeated name gets "_2", "_3", ... (case-insensitively
//  unique, and never taking a name a later column already has).

void
dbt_columns_dedupe (dbt_column_t *cols, size_t ncols)
{
    for (size_t i = 0; i < ncols; i++) {
        if (!cols [i].name || !*cols [i].name) {
            free (cols [i].name);
            cols [i].name = dbt_strdup ("column");
        }
        if (!s_name_taken (cols, 0, i, i, cols [i].name))
            continue;
        //  Start the suffix at the number of earlier columns with the same
        //  base name, so n copies of one name cost O(n^2), not O(n^3).
        size_t same = 0;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp (cols [j].name, cols [i].name) == 0)
                same++;
        char *base = cols [i].name;
        char *name = NULL;
        for (size_t n = same + 1; ; n++) {
            name = dbt_printf ("%s_%zu", base, n);
            if (!s_name_taken (cols, 0, ncols, i, name))
                break;
            free (name);
        }
        free (base);
        cols [i].name = name;
    }
}

//  --------------------------------------------------------------------------
//  Quote an identifier with q, doubling embedded q. Caller frees.

char *
dbt_quote_ident (const char *ident, char q)
{
    assert (ident);
    dbt_buf_t buf = { 0 };
    dbt_buf_reserve (&buf, strlen (ident) + 2);
    dbt_buf_putc (&buf, q);
    for (const char *p = ident; *p; p++) {
        if (*p == q)
            dbt_buf_putc (&buf, q);
        dbt_buf_putc (&buf, *p);
    }
    dbt_buf_putc (&buf, q);
    return dbt_buf_take (&buf);
}

//  --------------------------------------------------------------------------
//  Write the canonical text of a double into out; returns its length.

int
dbt_cell_double (double value, char *out, size_t size)
{
    assert (size >= DBT_CELL_DOUBLE_LEN);
    if (isnan (value))
        return snprintf (out, size, "NaN");
    if (isinf (value))
        return snprintf (out, size, value > 0 ? "Infinity" : "-Infinity");
    //  The shortest of 15, 16, 17 significant digits that reads back exactly.
    int len = 0;
    for (int digits = 15; digits <= 17; digits++) {
        len = snprintf (out, size, "%.*g", digits, value);
        if (strtod (out, NULL) == value)
            break;
    }
    return len;
}

//  --------------------------------------------------------------------------
//  Write the canonical text of a float into out; returns its length.

int
dbt_cell_float (float value, char *out, size_t size)
{
    assert (size >= DBT_CELL_DOUBLE_LEN);
    if (isnan (value) || isinf (value))
        return dbt_cell_double (value, out, size);
    //  The shortest of 6 to 9 significant digits that reads back exactly
    //  (FLT_DIG is 6; 9 digits always round-trip a float).
    int len = 0;
    for (int digits = 6; digits <= 9; digits++) {
        len = snprintf (out, size, "%.*g", digits, (double) value);
        if (strtof (out, NULL) == value)
            break;
    }
    return len;
}

//  --------------------------------------------------------------------------
//  Parse a whole decimal int64 from len bytes: -?[0-9]+. Returns 0 or -1.

int
dbt_cell_parse_int64 (const char *str, size_t len, int64_t *value)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && str [0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len)
        return -1;
    uint64_t limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    uint64_t acc = 0;
    for (; i < len; i++) {
        unsigned digit = (unsigned char) str [i] - '0';
        if (digit > 9)
            return -1;
        if (acc > (limit - digit) / 10)
            return -1;
        acc = acc * 10 + digit;
    }
    *value = neg ? (int64_t) (0 - acc) : (int64_t) acc;
    return 0;
}

//  --------------------------------------------------------------------------
//  True when len bytes are a canonical decimal: -?[0-9]+(\.[0-9]+)?

bool
dbt_cell_is_decimal (const char *str, size_t len)
{
    size_t i = 0;
    if (i < len && str [i] == '-')
        i++;
    size_t digits = 0;
    while (i < len && isdigit ((unsigned char) str [i])) {
        i++;
        digits++;
    }
    if (digits == 0)
        return false;
    if (i == len)
        return true;
    if (str [i++] != '.')
        return false;
    digits = 0;
    while (i < len && isdigit ((unsigned char) str [i])) {
        i++;
        digits++;
    }
    return digits > 0 && i == len;
}

//  --------------------------------------------------------------------------
//  True when len bytes equal word, case-insensitively.

bool
dbt_cell_word_is (const char *str, size_t len, const char *word)
{
    return strlen (word) == len && strncasecmp (str, word, len) == 0;
}

//  --------------------------------------------------------------------------
//  Parse a boolean spelling (t f true false 1 0, any case). Returns 0 or -1.

int
dbt_cell_parse_bool (const char *str, size_t len, bool *value)
{
    if (dbt_cell_word_is (str, len, "t") || dbt_cell_word_is (str, len, "true")
    ||  dbt_cell_word_is (str, len, "1")) {
        *value = true;
        return 0;
    }
    if (dbt_cell_word_is (str, len, "f") || dbt_cell_word_is (str, len, "false")
    ||  dbt_cell_word_is (str, len, "0")) {
        *value = false;
        return 0;
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  Write a double as a plain decimal (no exponent) into out: its shortest
//  round-trip digits, or rounded to scale digits when it has more than that
//  (scale < 0: never rounded).

void
dbt_cell_decimal (double value, int scale, dbt_buf_t *out)
{
    dbt_buf_reset (out);
    char text [DBT_CELL_DOUBLE_LEN];
    dbt_cell_double (value, text, sizeof (text));
    if (isnan (value) || isinf (value)) {
        dbt_buf_puts (out, text);
        return;
    }
    //  Split "-d.dddde-XX" into sign, digits and a decimal exponent.
    const char *p = text;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits [DBT_CELL_DOUBLE_LEN];
    size_t ndigits = 0;
    int point = -1;             //  digits before the decimal point
    for (; *p && *p != 'e'; p++) {
        if (*p == '.')
            point = (int) ndigits;
        else
            digits [ndigits++] = *p;
    }
    if (point < 0)
        point = (int) ndigits;
    if (*p == 'e')
        point += (int) strtol (p + 1, NULL, 10);
    int frac = (int) ndigits - point;       //  digits after the point
    if (scale >= 0 && frac > scale) {
        dbt_buf_printf (out, "%.*f", scale, value);
        //  Rounded to zero: no "-0.00"
        if (out->data [0] == '-' && strspn (out->data + 1, "0.") == out->len - 1) {
            memmove (out->data, out->data + 1, out->len);
            out->len--;
        }
        return;
    }
    if (neg)
        dbt_buf_putc (out, '-');
    if (point <= 0) {
        dbt_buf_puts (out, "0.");
        for (int i = 0; i < -point; i++)
            dbt_buf_putc (out, '0');
        dbt_buf_append (out, digits, ndigits);
    }
    else
    if ((size_t) point >= ndigits) {
        dbt_buf_append (out, digits, ndigits);
        for (size_t i = ndigits; i < (size_t) point; i++)
            dbt_buf_putc (out, '0');
    }
    else {
        dbt_buf_append (out, digits, (size_t) point);
        dbt_buf_putc (out, '.');
        dbt_buf_append (out, digits + point, ndigits - (size_t) point);
    }
}

//  Read n digits at str [*pos]; advance. Returns the value or -1.
static int
s_digits (const char *str, size_t len, size_t *pos, int n)
{
    if (*pos + (size_t) n > len)
        return -1;
    int value = 0;
    for (int i = 0; i < n; i++) {
        char c = str [*pos + (size_t) i];
        if (c < '0' || c > '9')
            return -1;
        value = value * 10 + (c - '0');
    }
    *pos += (size_t) n;
    return value;
}

//  Days since 1970-01-01 of a proleptic Gregorian date, and back.
static int64_t
s_days_from_civil (int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
s_civil_from_days (int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

//  Write n digits of value at out (zero-padded).
static void
s_put_digits (char *out, unsigned value, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out [i] = (char) ('0' + value % 10);
        value /= 10;
    }
}

//  --------------------------------------------------------------------------
//  Write the canonical text of a Unix time. Digits are written by hand:
//  drivers that read binary times (ClickHouse) call this for every cell.

int
dbt_cell_unixtime (dbt_coltype_t type, int64_t secs, uint32_t usec,
                   dbt_cell_daycache_t *cache, char *out, size_t size)
{
    assert (size >= DBT_CELL_TIME_LEN);
    if (usec > 999999)
        return -1;
    //  0001-01-01 to 9999-12-31 in days since 1970-01-01
    if (secs < -62135596800LL || secs >= 253402300800LL)
        return -1;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rest = secs - days * 86400;
    char *p = out;
    if (cache && cache->valid && cache->day == days)
        memcpy (p, cache->text, 10);
    else {
        //  s_civil_from_days in unsigned 32-bit arithmetic: in this range
        //  the day count from 0000-03-01 is positive and small, and the
        //  divisions by constants become cheap multiplications.
        uint32_t z = (uint32_t) (days + 719468);
        uint32_t era = z / 146097;
        uint32_t doe = z - era * 146097;
        uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        uint32_t mp = (5 * doy + 2) / 153;
        unsigned day = doy - (153 * mp + 2) / 5 + 1;
        unsigned month = mp < 10 ? mp + 3 : mp - 9;
        unsigned year = yoe + era * 400 + (month <= 2);
        s_put_digits (p, year, 4);
        p [4] = '-';
        s_put_digits (p + 5, month, 2);
        p [7] = '-';
        s_put_digits (p + 8, day, 2);
        if (cache) {
            cache->valid = true;
            cache->day = days;
            memcpy (cache->text, p, 10);
        }
    }
    p += 10;
    if (type == DBT_COL_TIMESTAMP || type == DBT_COL_TIMESTAMPTZ) {
        *p++ = ' ';
        s_put_digits (p, (unsigned) (rest / 3600), 2);
        p [2] = ':';
        s_put_digits (p + 3, (unsigned) (rest / 60 % 60), 2);
        p [5] = ':';
        s_put_digits (p + 6, (unsigned) (rest % 60), 2);
        p += 8;
        if (usec) {
            int n = 6;
            while (usec % 10 == 0) {
                usec /= 10;
                n--;
            }
            *p++ = '.';
            s_put_digits (p, usec, n);
            p += n;
        }
        if (type == DBT_COL_TIMESTAMPTZ) {
            memcpy (p, "+00", 3);
            p += 3;
        }
    }
    *p = 0;
    return (int) (p - out);
}

//  --------------------------------------------------------------------------
//  Normalise date/time text into canonical DATE, TIMESTAMP or TIMESTAMPTZ
//  text (the forms SQLite's date functions accept; times are UTC unless a
//  zone says otherwise, as in SQLite). Returns the length or -1.

int
dbt_cell_time (dbt_coltype_t type, const char *str, size_t len, char *out, size_t size)
{
    assert (size >= DBT_CELL_TIME_LEN);
    if (dbt_cell_word_is (str, len, "infinity") || dbt_cell_word_is (str, len, "-infinity"))
        return snprintf (out, size, "%.*s", (int) len, str);
    size_t pos = 0;
    int year = s_digits (str, len, &pos, 4);
    if (year < 0 || pos >= len || str [pos++] != '-')
        return -1;
    int month = s_digits (str, len, &pos, 2);
    if (month < 1 || month > 12 || pos >= len || str [pos++] != '-')
        return -1;
    int day = s_digits (str, len, &pos, 2);
    static const int mdays [] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day < 1 || day > mdays [month - 1] || (month == 2 && day == 29 && !leap))
        return -1;
    if (type == DBT_COL_DATE)
        return pos == len ? snprintf (out, size, "%04d-%02d-%02d", year, month, day) : -1;

    int hour = 0, minute = 0, second = 0;
    char frac [8] = "";
    int offset_min = 0;
    if (pos < len) {
        if (str [pos] != ' ' && str [pos] != 'T')
            return -1;
        pos++;
        hour = s_digits (str, len, &pos, 2);
        if (hour < 0 || hour > 23 || pos >= len || str [pos++] != ':')
            return -1;
        minute = s_digits (str, len, &pos, 2);
        if (minute < 0 || minute > 59)
            return -1;
        if (pos < len && str [pos] == ':') {
            pos++;
            second = s_digits (str, len, &pos, 2);
            if (second < 0 || second > 59)
                return -1;
            if (pos < len && str [pos] == '.') {
                pos++;
                size_t n = 0;
                while (pos < len && isdigit ((unsigned char) str [pos])) {
                    if (n == 6)
                        return -1;      //  finer than microseconds
                    frac [n++] = str [pos++];
                }
                if (n == 0)
                    return -1;
                while (n > 0 && frac [n - 1] == '0')
                    n--;
                frac [n] = 0;
            }
        }
        if (pos < len && (str [pos] == 'Z' || str [pos] == 'z'))
            pos++;
        else
        if (pos < len && (str [pos] == '+' || str [pos] == '-')) {
            int sign = str [pos++] == '-' ? -1 : 1;
            int oh = s_digits (str, len, &pos, 2);
            int om = 0;
            if (oh < 0 || oh > 15)
                return -1;
            if (pos < len && str [pos] == ':')
                pos++;
            if (pos < len) {
                om = s_digits (str, len, &pos, 2);
                if (om < 0 || om > 59)
                    return -1;
            }
            offset_min = sign * (oh * 60 + om);
        }
        if (pos != len)
            return -1;
    }
    if (offset_min) {
        int64_t secs = s_days_from_civil (year, month, day) * 86400
                     + hour * 3600 + minute * 60 + second - (int64_t) offset_min * 60;
        int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
        int64_t rest = secs - days * 86400;
        int64_t y;
        s_civil_from_days (days, &y, &month, &day);
        if (y < 0 || y > 9999)
            return -1;
        year = (int) y;
        hour = (int) (rest / 3600);
        minute = (int) (rest / 60 % 60);
        second = (int) (rest % 60);
    }
    return snprintf (out, size, "%04d-%02d-%02d %02d:%02d:%02d%s%s%s", year, month, day,
                     hour, minute, second, *frac ? "." : "", frac,
                     type == DBT_COL_TIMESTAMPTZ ? "+00" : "");
}

//  Escape letter of each byte that dbt_cell_tsv escapes, 0 for the rest.
static const char s_tsv_escape [256] = {
    [0] = '0', ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'
};

//  --------------------------------------------------------------------------
//  Append one cell in tab-separated text form (NULL as \N). Returns 0, or
//  -1 for a NUL byte that is not allowed.

int
dbt_cell_tsv (dbt_buf_t *buf, const char *val, size_t len, bool nul_ok)
{
    if (!val) {
        dbt_buf_append (buf, "\\N", 2);
        return 0;
    }
    dbt_buf_reserve (buf, 2 * len);
    char *out = buf->data + buf->len;
    const char *run = val;
    const char *end = val + len;
    for (const char *p = val; p < end; p++) {
        char letter = s_tsv_escape [(unsigned char) *p];
        if (!letter)
            continue;
        if (*p == 0 && !nul_ok)
            return -1;
        memcpy (out, run, (size_t) (p - run));
        out += p - run;
        *out++ = '\\';
        *out++ = letter;
        run = p + 1;
    }
    memcpy (out, run, (size_t) (end - run));
    out += end - run;
    buf->len = (size_t) (out - buf->data);
    buf->data [buf->len] = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Check the arg count against a statement's parameter count.

int
dbt_args_check (int nparams, const dbt_args_t *args, char *err)
{
    size_t count = args ? args->count : 0;
    if (nparams >= 0 && count != (size_t) nparams) {
        dbt_err_set (err, "task expects %d arg%s, got %zu", nparams,
                     nparams == 1 ? "" : "s", count);
        return DBT_EINVAL;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Open a connection for conf. Returns NULL with err set on failure.

dbt_conn_t *
dbt_conn_new (const dbt_dbconf_t *conf, char *err)
{
    assert (conf);
    const char *name = conf->name ? conf->name : "?";
    const dbt_driver_t *driver = dbt_driver_find (conf->type);
    if (!driver) {
        dbt_err_set (err, "database '%s': unknown type '%s' (known: %s)", name,
                     conf->type ? conf->type : "", dbt_driver_names ());
        return NULL;
    }
    if (conf->results && !driver->write_begin) {
        dbt_err_set (err, "database '%s': type '%s' cannot hold results", name,
                     driver->name);
        return NULL;
    }
    if (!conf->results && !driver->query) {
        dbt_err_set (err, "database '%s': type '%s' cannot be a source", name,
                     driver->name);
        return NULL;
    }
    void *handle = NULL;
    int rc = driver->connect (conf, &handle, err);
    if (rc != 0)
        return NULL;
    dbt_conn_t *self = (dbt_conn_t *) dbt_malloc (sizeof (dbt_conn_t));
    self->driver = driver;
    self->handle = handle;
    self->name = dbt_strdup (name);
    self->results = conf->results;
    return self;
}

//  --------------------------------------------------------------------------
//  Close and free; nulls the pointer.

void
dbt_conn_destroy (dbt_conn_t **self_p)
{
    assert (self_p);
    dbt_conn_t *self = *self_p;
    if (!self)
        return;
    self->driver->disconnect (&self->handle);
    free (self->name);
    free (self);
    *self_p = NULL;
}

const dbt_driver_t *
dbt_conn_driver (dbt_conn_t *self)
{
    assert (self);
    return self->driver;
}

const char *
dbt_conn_name (dbt_conn_t *self)
{
    assert (self);
    return self->name;
}

//  --------------------------------------------------------------------------
//  True when the last error showed the connection is unusable.

bool
dbt_conn_broken (dbt_conn_t *self)
{
    assert (self);
    if (!self->broken && self->driver->alive && !self->driver->alive (self->handle))
        self->broken = true;
    return self->broken;
}

//  Record a driver result: DBT_ECONN marks the connection broken.
static int
s_result (dbt_conn_t *self, int rc)
{
    if (rc == DBT_ECONN)
        self->broken = true;
    return rc;
}

//  Error for a missing vtable entry.
static int
s_unsupported (dbt_conn_t *self, const char *what, char *err)
{
    dbt_err_set (err, "database '%s': type '%s' does not support %s", self->name,
                 self->driver->name, what);
    return DBT_EINVAL;
}

//  Error for a table name the database would truncate or refuse.
static int
s_check_table (dbt_conn_t *self, const char *table, char *err)
{
    if (!table || !*table) {
        dbt_err_set (err, "database '%s': empty results table name", self->name);
        return DBT_EINVAL;
    }
    if (self->driver->max_identifier && strlen (table) > self->driver->max_identifier) {
        dbt_err_set (err, "database '%s': table name '%s' is longer than %zu bytes",
                     self->name, table, self->driver->max_identifier);
        return DBT_EINVAL;
    }
    return 0;
}

int
dbt_conn_prepare (dbt_conn_t *self, const char *sql, int *nparams, char *err)
{
    assert (self);
    if (!self->driver->prepare)
        return s_unsupported (self, "queries", err);
    return s_result (self, self->driver->prepare (self->handle, sql, nparams, err));
}

int
dbt_conn_query (dbt_conn_t *self, const char *sql, const dbt_args_t *args,
                const dbt_query_opts_t *opts, char *err)
{
    assert (self);
    if (!self->driver->query)
        return s_unsupported (self, "queries", err);
    static const dbt_args_t no_args = { 0, NULL };
    static const dbt_query_opts_t no_opts = { 0, NULL, false };
    return s_result (self, self->driver->query (self->handle, sql, args ? args : &no_args,
                                                opts ? opts : &no_opts, err));
}

int
dbt_conn_columns (dbt_conn_t *self, const dbt_column_t **cols, size_t *ncols)
{
    assert (self);
    if (!self->driver->columns) {
        *cols = NULL;
        *ncols = 0;
        return DBT_EINVAL;
    }
    return self->driver->columns (self->handle, cols, ncols);
}

int
dbt_conn_fetch (dbt_conn_t *self, dbt_row_t *row, char *err)
{
    assert (self);
    if (!self->driver->fetch)
        return s_unsupported (self, "queries", err);
    return s_result (self, self->driver->fetch (self->handle, row, err));
}

void
dbt_conn_query_end (dbt_conn_t *self)
{
    assert (self);
    if (self->driver->query_end)
        self->driver->query_end (self->handle);
}

//  --------------------------------------------------------------------------
//  Stop the running query on its server. Thread-safe: reads only fields
//  that never change after dbt_conn_new.

void
dbt_conn_cancel (dbt_conn_t *self)
{
    assert (self);
    if (self->driver->cancel)
        self->driver->cancel (self->handle);
}

int
dbt_conn_write_begin (dbt_conn_t *self, const char *table, const dbt_column_t *cols,
                      size_t ncols, const dbt_table_opts_t *opts, char *err)
{
    assert (self);
    if (!self->driver->write_begin)
        return s_unsupported (self, "results", err);
    int rc = s_check_table (self, table, err);
    if (rc)
        return rc;
    if (ncols == 0) {
        dbt_err_set (err, "database '%s': a results table needs at least one column",
                     self->name);
        return DBT_EINVAL;
    }
    static const dbt_table_opts_t no_opts = { false, NULL };
    return s_result (self, self->driver->write_begin (self->handle, table, cols, ncols,
                                                      opts ? opts : &no_opts, err));
}

int
dbt_conn_write_row (dbt_conn_t *self, const dbt_row_t *row, char *err)
{
    assert (self);
    if (!self->driver->write_row)
        return s_unsupported (self, "results", err);
    return s_result (self, self->driver->write_row (self->handle, row, err));
}

int
dbt_conn_write_commit (dbt_conn_t *self, const char *table, const char *final, char *err)
{
    assert (self);
    if (!self->driver->write_commit)
        return s_unsupported (self, "results", err);
    int rc = s_check_table (self, table, err);
    if (rc == 0)
        rc = s_check_table (self, final, err);
    if (rc) {
        if (self->driver->write_abort)
            self->driver->write_abort (self->handle, table);
        return rc;
    }
    return s_result (self, self->driver->write_commit (self->handle, table, final, err));
}

void
dbt_conn_write_abort (dbt_conn_t *self, const char *table)
{
    assert (self);
    if (self->driver->write_abort)
        self->driver->write_abort (self->handle, table);
}

int
dbt_conn_drop_table (dbt_conn_t *self, const char *table, char *err)
{
    assert (self);
    if (!self->driver->drop_table)
        return s_unsupported (self, "results", err);
    int rc = s_check_table (self, table, err);
    if (rc)
        return rc;
    return s_result (self, self->driver->drop_table (self->handle, table, err));
}

int
dbt_conn_read_table (dbt_conn_t *self, const char *table, int64_t limit, int64_t offset,
                     char *err)
{
    assert (self);
    int rc = s_check_table (self, table, err);
    if (rc)
        return rc;
    if (limit < 0 || offset < 0) {
        dbt_err_set (err, "limit and offset must not be negative");
        return DBT_EINVAL;
    }
    char *quoted = dbt_quote_ident (table, self->driver->ident_quote ? self->driver->ident_quote : '"');
    //  LIMIT n OFFSET m is common to every results database we support;
    //  MySQL needs a LIMIT to take an OFFSET, so "all" is its largest value.
    char *sql = limit || offset
              ? dbt_printf ("SELECT * FROM %s LIMIT %" PRId64 " OFFSET %" PRId64, quoted,
                            limit ? limit : INT64_MAX, offset)
              : dbt_printf ("SELECT * FROM %s", quoted);
    dbt_query_opts_t opts = { 0, NULL, true };
    rc = dbt_conn_query (self, sql, NULL, &opts, err);
    free (sql);
    free (quoted);
    return rc;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: registry, names, dedupe, quoting, cell helpers, the wrapper's
//  refusals. The drivers' own tests cover their live paths.

//  Canonical text of a time value into out, or "" when invalid.
static const char *
s_tc (char *out, dbt_coltype_t type, const char *text)
{
    if (dbt_cell_time (type, text, strlen (text), out, DBT_CELL_TIME_LEN) < 0)
        out [0] = 0;
    return out;
}

//  Decimal text of a double into buf.
static const char *
s_dec (dbt_buf_t *buf, double value, int scale)
{
    dbt_cell_decimal (value, scale, buf);
    return buf->data;
}

//  A driver with a source side only, to test the wrapper's refusals.
static int
s_fake_connect (const dbt_dbconf_t *conf, void **handle_p, char *err)
{
    *handle_p = dbt_strdup ("fake");
    return 0;
}

static void
s_fake_disconnect (void **handle_p)
{
    free (*handle_p);
    *handle_p = NULL;
}

static int
s_fake_fetch (void *handle, dbt_row_t *row, char *err)
{
    dbt_err_set (err, "gone");
    return DBT_ECONN;
}

static void
s_dedupe_check (const char **in, const char **out, size_t n)
{
    dbt_column_t *cols = (dbt_column_t *) dbt_malloc (n * sizeof (dbt_column_t));
    for (size_t i = 0; i < n; i++)
        cols [i].name = dbt_strdup (in [i]);
    dbt_columns_dedupe (cols, n);
    for (size_t i = 0; i < n; i++)
        assert (streq (cols [i].name, out [i]));
    dbt_columns_free (&cols, n);
    assert (cols == NULL);
}

void
dbt_driver_test (bool verbose)
{
    //  Registry
    assert (dbt_driver_find ("postgres") == &dbt_driver_pg);
    assert (dbt_driver_find ("postgresql") == &dbt_driver_pg);
    assert (dbt_driver_find ("PostgreSQL") == &dbt_driver_pg);
    assert (dbt_driver_find ("sqlite") == &dbt_driver_sqlite);
    assert (dbt_driver_find ("SQLite") == &dbt_driver_sqlite);
    assert (dbt_driver_find ("sqlite3") == &dbt_driver_sqlite);
    assert (dbt_driver_find ("mysql") == &dbt_driver_mariadb);
    assert (dbt_driver_find ("MariaDB") == &dbt_driver_mariadb);
    assert (dbt_driver_find ("clickhouse") == &dbt_driver_clickhouse);
    assert (dbt_driver_find ("ClickHouse") == &dbt_driver_clickhouse);
    assert (dbt_driver_find ("oracle") == NULL);
    assert (dbt_driver_find ("") == NULL);
    assert (dbt_driver_find (NULL) == NULL);
    for (size_t i = 0; s_drivers [i]; i++) {
        assert (strstr (dbt_driver_names (), s_drivers [i]->name));
        if (s_drivers [i]->alias)
            assert (strstr (dbt_driver_names (), s_drivers [i]->alias));
        assert (s_drivers [i]->connect && s_drivers [i]->disconnect);
    }
    assert (streq (dbt_coltype_name (DBT_COL_TIMESTAMPTZ), "TIMESTAMPTZ"));
    assert (streq (dbt_coltype_name (DBT_COL_TEXT), "TEXT"));
    assert (streq (dbt_coltype_name ((dbt_coltype_t) 99), "UNKNOWN"));

    //  Dedupe
    {
        const char *in [] = { "a", "A", "", NULL, "col", "col", "col_2", "a" };
        const char *out [] = { "a", "A_2", "column", "column_2", "col", "col_3", "col_2", "a_3" };
        s_dedupe_check (in, out, 8);
        const char *in2 [] = { "x", "y" };
        s_dedupe_check (in2, in2, 2);
        const char *in3 [] = { "?column?", "?column?", "?column?", "?column?_2" };
        const char *out3 [] = { "?column?", "?column?_3", "?column?_4", "?column?_2" };
        s_dedupe_check (in3, out3, 4);
        dbt_column_t *none = NULL;
        dbt_columns_dedupe (none, 0);
        dbt_columns_free (&none, 0);
    }
    //  Quoting
    char *q = dbt_quote_ident ("results_job-1", '"');
    assert (streq (q, "\"results_job-1\""));
    free (q);
    q = dbt_quote_ident ("a\"b\"\"", '"');
    assert (streq (q, "\"a\"\"b\"\"\"\"\""));
    free (q);
    q = dbt_quote_ident ("x`y", '`');
    assert (streq (q, "`x``y`"));
    free (q);
    q = dbt_quote_ident ("", '"');
    assert (streq (q, "\"\""));
    free (q);

    //  Canonical doubles
    char text [DBT_CELL_DOUBLE_LEN];
    assert (dbt_cell_double (1.5, text, sizeof (text)) == 3 && streq (text, "1.5"));
    dbt_cell_double (0.1, text, sizeof (text));
    assert (streq (text, "0.1"));
    dbt_cell_double (1e-300, text, sizeof (text));
    assert (streq (text, "1e-300"));
    dbt_cell_double (0.1 + 0.2, text, sizeof (text));
    assert (streq (text, "0.30000000000000004"));
    dbt_cell_double (-2.0, text, sizeof (text));
    assert (streq (text, "-2"));
    dbt_cell_double (1.0 / 3.0, text, sizeof (text));
    assert (strtod (text, NULL) == 1.0 / 3.0);
    dbt_cell_double (NAN, text, sizeof (text));
    assert (streq (text, "NaN"));
    dbt_cell_double (-INFINITY, text, sizeof (text));
    assert (streq (text, "-Infinity"));
    dbt_cell_double (-1.7976931348623157e308, text, sizeof (text));
    assert (strtod (text, NULL) == -1.7976931348623157e308);
    assert (dbt_cell_float (0.1f, text, sizeof (text)) == 3 && streq (text, "0.1"));
    dbt_cell_float (16777217.0f, text, sizeof (text));
    assert (streq (text, "16777216"));
    dbt_cell_float (3.4028234663852886e38f, text, sizeof (text));
    assert (strtof (text, NULL) == 3.4028234663852886e38f);
    dbt_cell_float (1.17549435e-38f, text, sizeof (text));
    assert (strtof (text, NULL) == 1.17549435e-38f && strlen (text) <= 15);
    dbt_cell_float (-NAN, text, sizeof (text));
    assert (streq (text, "NaN"));
    dbt_cell_float (-INFINITY, text, sizeof (text));
    assert (streq (text, "-Infinity"));
    dbt_cell_float (1.0f / 3.0f, text, sizeof (text));
    assert (strtof (text, NULL) == 1.0f / 3.0f && strlen (text) <= 11);

    //  Cell helpers
    dbt_buf_t out = { 0 };
    char tc [DBT_CELL_TIME_LEN];
    int64_t v;
    assert (dbt_cell_parse_int64 ("-9223372036854775808", 20, &v) == 0 && v == INT64_MIN);
    assert (dbt_cell_parse_int64 ("9223372036854775807", 19, &v) == 0 && v == INT64_MAX);
    assert (dbt_cell_parse_int64 ("9223372036854775808", 19, &v) == -1);
    assert (dbt_cell_parse_int64 ("12x", 3, &v) == -1);
    assert (dbt_cell_parse_int64 ("-", 1, &v) == -1);
    assert (dbt_cell_parse_int64 ("", 0, &v) == -1);
    assert (dbt_cell_parse_int64 ("12", 1, &v) == 0 && v == 1);
    assert (dbt_cell_is_decimal ("-0.5", 4) && dbt_cell_is_decimal ("12", 2));
    assert (!dbt_cell_is_decimal ("1.", 2) && !dbt_cell_is_decimal (".5", 2));
    assert (!dbt_cell_is_decimal ("1e5", 3) && !dbt_cell_is_decimal ("-", 1));
    bool b;
    assert (dbt_cell_parse_bool ("TRUE", 4, &b) == 0 && b);
    assert (dbt_cell_parse_bool ("f", 1, &b) == 0 && !b);
    assert (dbt_cell_parse_bool ("0", 1, &b) == 0 && !b);
    assert (dbt_cell_parse_bool ("yes", 3, &b) == -1);
    assert (dbt_cell_word_is ("NaNx", 3, "nan") && !dbt_cell_word_is ("NaN", 3, "na"));
    assert (streq (s_dec (&out, 123.45, 2), "123.45"));
    assert (streq (s_dec (&out, 123.456, 2), "123.46"));
    assert (streq (s_dec (&out, 1.5, 6), "1.5"));
    assert (streq (s_dec (&out, 1e-7, -1), "0.0000001"));
    assert (streq (s_dec (&out, 1.25e20, -1), "125000000000000000000"));
    assert (streq (s_dec (&out, -0.001, 2), "0.00"));
    assert (streq (s_dec (&out, -2.5e-3, 4), "-0.0025"));
    assert (streq (s_dec (&out, -2.5e-3, 3), "-0.003"));     //  binary value is below -0.0025
    assert (streq (s_dec (&out, NAN, 2), "NaN"));
    assert (streq (s_dec (&out, -12.5, -1), "-12.5"));
    assert (streq (s_dec (&out, 100, 2), "100"));
    //  Times
    assert (streq (s_tc (tc, DBT_COL_DATE, "2024-02-29"), "2024-02-29"));
    assert (streq (s_tc (tc, DBT_COL_DATE, "2023-02-29"), ""));
    assert (streq (s_tc (tc, DBT_COL_DATE, "2024-01-01 00:00:00"), ""));
    assert (streq (s_tc (tc, DBT_COL_DATE, "20240101"), ""));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02 03:04:05"), "2024-01-02 03:04:05"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02T03:04"), "2024-01-02 03:04:00"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02"), "2024-01-02 00:00:00"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02 03:04:05.120000"),
                   "2024-01-02 03:04:05.12"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02 03:04:05.000"),
                   "2024-01-02 03:04:05"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02 03:04:05.1234567"), ""));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02 03:04:05Z"), "2024-01-02 03:04:05"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02 24:04:05"), ""));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMP, "2024-01-02 03:04:05 x"), ""));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMPTZ, "2024-01-02 03:04:05.654321+00"),
                   "2024-01-02 03:04:05.654321+00"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMPTZ, "2000-01-01 05:30:00+05:30"),
                   "2000-01-01 00:00:00+00"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMPTZ, "1999-12-31T22:00:00.5-0300"),
                   "2000-01-01 01:00:00.5+00"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMPTZ, "2024-03-01 01:00:00+02"),
                   "2024-02-29 23:00:00+00"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMPTZ, "2024-01-02"), "2024-01-02 00:00:00+00"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMPTZ, "infinity"), "infinity"));
    assert (streq (s_tc (tc, DBT_COL_TIMESTAMPTZ, "0000-01-01 00:00:00+01"), ""));
    //  Unix times
    assert (dbt_cell_unixtime (DBT_COL_DATE, 0, 0, NULL, tc, sizeof (tc)) == 10);
    assert (streq (tc, "1970-01-01"));
    dbt_cell_unixtime (DBT_COL_TIMESTAMPTZ, 1704164645, 0, NULL, tc, sizeof (tc));
    assert (streq (tc, "2024-01-02 03:04:05+00"));
    dbt_cell_unixtime (DBT_COL_TIMESTAMP, 1704164645, 120000, NULL, tc, sizeof (tc));
    assert (streq (tc, "2024-01-02 03:04:05.12"));
    dbt_cell_unixtime (DBT_COL_TIMESTAMPTZ, -1, 999999, NULL, tc, sizeof (tc));
    assert (streq (tc, "1969-12-31 23:59:59.999999+00"));
    dbt_cell_unixtime (DBT_COL_DATE, 1709164800, 0, NULL, tc, sizeof (tc));
    assert (streq (tc, "2024-02-29"));
    dbt_cell_unixtime (DBT_COL_TIMESTAMPTZ, 4294967295LL, 1, NULL, tc, sizeof (tc));
    assert (streq (tc, "2106-02-07 06:28:15.000001+00"));
    dbt_cell_unixtime (DBT_COL_TIMESTAMP, -62135596800LL, 0, NULL, tc, sizeof (tc));
    assert (streq (tc, "0001-01-01 00:00:00"));
    assert (dbt_cell_unixtime (DBT_COL_TIMESTAMP, -62135596801LL, 0, NULL, tc, sizeof (tc)) == -1);
    assert (dbt_cell_unixtime (DBT_COL_DATE, 253402300800LL, 0, NULL, tc, sizeof (tc)) == -1);
    assert (dbt_cell_unixtime (DBT_COL_DATE, 0, 1000000, NULL, tc, sizeof (tc)) == -1);
    //  Every 13th day of 1900..2200 agrees with gmtime_r and reads back
    dbt_cell_daycache_t cache = { 0 };
    for (int64_t d = -25567; d < 84000; d += 13) {
        time_t t = (time_t) (d * 86400 + 3723);
        struct tm tm;
        gmtime_r (&t, &tm);
        char want [DBT_CELL_TIME_LEN], back [DBT_CELL_TIME_LEN];
        strftime (want, sizeof (want), "%Y-%m-%d %H:%M:%S+00", &tm);
        int len = dbt_cell_unixtime (DBT_COL_TIMESTAMPTZ, (int64_t) t, 0, NULL, tc, sizeof (tc));
        assert (len == 22 && streq (tc, want));
        //  The same through a day cache, the day seen before or not
        char cached [DBT_CELL_TIME_LEN];
        assert (dbt_cell_unixtime (DBT_COL_TIMESTAMPTZ, (int64_t) t, 0, &cache, cached,
                                   sizeof (cached)) == 22 && streq (cached, want));
        assert (dbt_cell_unixtime (DBT_COL_DATE, (int64_t) t + 3600, 0, &cache, cached,
                                   sizeof (cached)) == 10 && strncmp (cached, want, 10) == 0);
        assert (dbt_cell_time (DBT_COL_TIMESTAMPTZ, tc, (size_t) len, back, sizeof (back)) == len);
        assert (streq (back, tc));
    }

    //  Tab-separated cells
    dbt_buf_reset (&out);
    assert (dbt_cell_tsv (&out, "a\tb\nc\rd\\e", 9, false) == 0);
    assert (streq (out.data, "a\\tb\\nc\\rd\\\\e"));
    dbt_buf_reset (&out);
    assert (dbt_cell_tsv (&out, NULL, 0, false) == 0 && streq (out.data, "\\N"));
    assert (dbt_cell_tsv (&out, "\\N", 2, false) == 0 && streq (out.data, "\\N\\\\N"));
    assert (dbt_cell_tsv (&out, "x\0y", 3, false) == -1 && out.len == 5);
    assert (dbt_cell_tsv (&out, "x\0y", 3, true) == 0 && streq (out.data + 5, "x\\0y"));
    assert (dbt_cell_tsv (&out, "", 0, true) == 0 && out.len == 9);
    dbt_buf_free (&out);

    //  Args
    char err [DBT_ERRMSG_LEN];
    const char *two [] = { "1", NULL };
    dbt_args_t args = { 2, two };
    assert (dbt_args_check (2, &args, err) == 0);
    assert (dbt_args_check (-1, &args, err) == 0);
    assert (dbt_args_check (1, &args, err) == DBT_EINVAL);
    assert (streq (err, "task expects 1 arg, got 2"));
    assert (dbt_args_check (3, NULL, err) == DBT_EINVAL);
    assert (streq (err, "task expects 3 args, got 0"));

    //  Wrapper refusals
    dbt_dbconf_t conf = { .name = "x", .type = "nosuch", .dsn = "" };
    assert (dbt_conn_new (&conf, err) == NULL);
    assert (strstr (err, "unknown type 'nosuch'") && strstr (err, "sqlite"));
    dbt_driver_t fake = {
        .name = "fake", .connect = s_fake_connect, .disconnect = s_fake_disconnect,
        .fetch = s_fake_fetch, .max_identifier = 8
    };
    dbt_conn_t *conn = (dbt_conn_t *) dbt_malloc (sizeof (dbt_conn_t));
    conn->driver = &fake;
    conn->name = dbt_strdup ("src");
    assert (fake.connect (&conf, &conn->handle, err) == 0);
    assert (dbt_conn_driver (conn) == &fake);
    assert (streq (dbt_conn_name (conn), "src"));
    assert (!dbt_conn_broken (conn));
    dbt_column_t col = { .name = "a", .type = DBT_COL_TEXT };
    assert (dbt_conn_write_begin (conn, "t", &col, 1, NULL, err) == DBT_EINVAL);
    assert (strstr (err, "does not support results"));
    assert (dbt_conn_write_row (conn, NULL, err) == DBT_EINVAL);
    assert (dbt_conn_drop_table (conn, "t", err) == DBT_EINVAL);
    assert (dbt_conn_query (conn, "SELECT 1", NULL, NULL, err) == DBT_EINVAL);
    assert (strstr (err, "does not support queries"));
    dbt_conn_cancel (conn);
    dbt_conn_query_end (conn);
    dbt_conn_write_abort (conn, "t");
    const dbt_column_t *cols;
    size_t ncols;
    assert (dbt_conn_columns (conn, &cols, &ncols) == DBT_EINVAL && ncols == 0);
    assert (!dbt_conn_broken (conn));
    dbt_row_t row;
    assert (dbt_conn_fetch (conn, &row, err) == DBT_ECONN);
    assert (dbt_conn_broken (conn));
    dbt_conn_destroy (&conn);
    assert (conn == NULL);
    dbt_conn_destroy (&conn);

    //  A real driver through the wrapper: table-name checks
    char *dir = dbt_testing_tmpdir ("driver");
    char *path = dbt_printf ("%s/r.db", dir);
    dbt_dbconf_t rconf = { .name = "res", .type = "sqlite3", .dsn = path, .results = true };
    conn = dbt_conn_new (&rconf, err);
    assert (conn);
    assert (dbt_conn_write_begin (conn, "", &col, 1, NULL, err) == DBT_EINVAL);
    assert (dbt_conn_write_begin (conn, "t", &col, 0, NULL, err) == DBT_EINVAL);
    assert (dbt_conn_write_begin (conn, "t_stage", &col, 1, NULL, err) == 0);
    const char *vals [] = { "v" };
    size_t lens [] = { 1 };
    dbt_row_t one = { 1, vals, lens };
    assert (dbt_conn_write_row (conn, &one, err) == 0);
    assert (dbt_conn_write_commit (conn, "t_stage", "t", err) == 0);
    assert (dbt_conn_query (conn, "SELECT a FROM t", NULL, NULL, err) == 0);
    assert (dbt_conn_fetch (conn, &row, err) == 1 && streq (row.vals [0], "v"));
    assert (dbt_conn_fetch (conn, &row, err) == 0);
    dbt_conn_query_end (conn);
    assert (dbt_conn_drop_table (conn, "t", err) == 0);
    assert (!dbt_conn_broken (conn));
    dbt_conn_destroy (&conn);
    free (path);
    dbt_testing_rmtree (&dir);
    if (verbose)
        printf ("driver: ok\n");
}
#endif  //  DBT_SELFTEST
