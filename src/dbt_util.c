/*  =========================================================================
    dbt_util - memory, error buffers, clocks and small parsers

    See dbt_util.h. No state; every function is safe from any thread.
    =========================================================================
*/
#include "dbt_classes.h"
#include <uuid/uuid.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <math.h>

//  --------------------------------------------------------------------------
//  Return a static name for an error code.

const char *
dbt_strerror (int code)
{
    switch (code) {
        case DBT_OK:        return "success";
        case DBT_ERROR:     return "error";
        case DBT_ENOTFOUND: return "not found";
        case DBT_EEXIST:    return "already exists";
        case DBT_EINVAL:    return "invalid input";
        case DBT_ECONN:     return "connection lost";
        case DBT_ECANCELED: return "canceled";
        case DBT_ETIMEDOUT: return "timed out";
        case DBT_EFULL:     return "storage full";
        case DBT_ETOOBIG:   return "too big";
        default:            return "unknown error";
    }
}

static void
s_oom (size_t size)
{
    fprintf (stderr, "dungbeetle: out of memory allocating %zu bytes\n", size);
    abort ();
}

//  --------------------------------------------------------------------------
//  Allocate zeroed memory; aborts when memory is exhausted.

void *
dbt_malloc (size_t size)
{
    void *ptr = calloc (1, size ? size : 1);
    if (!ptr)
        s_oom (size);
    return ptr;
}

//  --------------------------------------------------------------------------
//  Resize memory; aborts when memory is exhausted.

void *
dbt_realloc (void *ptr, size_t size)
{
    void *res = realloc (ptr, size ? size : 1);
    if (!res)
        s_oom (size);
    return res;
}

//  --------------------------------------------------------------------------
//  Duplicate a string. Caller frees.

char *
dbt_strdup (const char *str)
{
    if (!str)
        return NULL;
    return dbt_strndup (str, strlen (str));
}

void
dbt_str_move (char **dest, char **src)
{
    free (*dest);
    *dest = *src;
    *src = NULL;
}

//  --------------------------------------------------------------------------
//  Duplicate len bytes and terminate. Caller frees.

char *
dbt_strndup (const char *str, size_t len)
{
    char *copy = (char *) dbt_malloc (len + 1);
    if (len)
        memcpy (copy, str, len);
    copy [len] = 0;
    return copy;
}

//  --------------------------------------------------------------------------
//  Format into a new string. Caller frees.

char *
dbt_printf (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    va_list copy;
    va_copy (copy, args);
    int len = vsnprintf (NULL, 0, format, copy);
    va_end (copy);
    assert (len >= 0);
    char *str = (char *) dbt_malloc ((size_t) len + 1);
    vsnprintf (str, (size_t) len + 1, format, args);
    va_end (args);
    return str;
}

//  --------------------------------------------------------------------------
//  Format a message into a caller's error buffer.

void
dbt_err_set (char *err, const char *format, ...)
{
    if (!err)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (err, DBT_ERRMSG_LEN, format, args);
    va_end (args);
}

//  --------------------------------------------------------------------------
//  Monotonic milliseconds.

int64_t
dbt_clock_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  --------------------------------------------------------------------------
//  Wall-clock milliseconds since the epoch.

int64_t
dbt_time_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  --------------------------------------------------------------------------
//  Name the calling thread.

void
dbt_thread_name (const char *name)
{
    char kept [16];
    snprintf (kept, sizeof (kept), "%s", name);
    pthread_setname_np (pthread_self (), kept);
}

//  --------------------------------------------------------------------------
//  Parse a whole decimal integer within [min, max].

int
dbt_parse_int64 (const char *str, int64_t min, int64_t max, int64_t *value)
{
    if (!str || !*str || isspace ((unsigned char) *str))
        return -1;
    errno = 0;
    char *end = NULL;
    long long parsed = strtoll (str, &end, 10);
    if (errno || end == str || *end)
        return -1;
    if (parsed < min || parsed > max)
        return -1;
    *value = (int64_t) parsed;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse a Go-style duration into milliseconds.

int
dbt_parse_duration (const char *str, int64_t *ms)
{
    if (!str || !*str)
        return -1;
    int64_t whole;
    if (dbt_parse_int64 (str, 0, INT64_MAX / 1000, &whole) == 0) {
        *ms = whole * 1000;
        return 0;
    }
    static const struct {
        const char *unit;
        double ms;
    } units [] = {
        { "ns", 1e-6 }, { "us", 1e-3 }, { "µs", 1e-3 }, { "ms", 1 },
        { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }
    };
    const char *p = str;
    double total = 0;
    while (*p) {
        if (!isdigit ((unsigned char) *p) && *p != '.')
            return -1;
        errno = 0;
        char *end = NULL;
        double number = strtod (p, &end);
        if (errno || end == p || number < 0)
            return -1;
        p = end;
        size_t best = 0;
        int found = -1;
        for (size_t i = 0; i < sizeof (units) / sizeof (units [0]); i++) {
            size_t len = strlen (units [i].unit);
            if (strncmp (p, units [i].unit, len) == 0 && len > best) {
                best = len;
                found = (int) i;
            }
        }
        if (found < 0)
            return -1;
        p += best;
        total += number * units [found].ms;
        if (total > (double) INT64_MAX / 2)
            return -1;
    }
    *ms = (int64_t) llround (total);
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse a byte size.

int
dbt_parse_size (const char *str, int64_t *bytes)
{
    if (!str || !isdigit ((unsigned char) *str))
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long number = strtoull (str, &end, 10);
    if (errno)
        return -1;
    static const struct {
        const char *suffix;
        unsigned long long factor;
    } suffixes [] = {
        { "", 1 }, { "B", 1 },
        { "K", 1000ULL }, { "KB", 1000ULL }, { "KiB", 1024ULL },
        { "M", 1000000ULL }, { "MB", 1000000ULL }, { "MiB", 1048576ULL },
        { "G", 1000000000ULL }, { "GB", 1000000000ULL }, { "GiB", 1073741824ULL }
    };
    for (size_t i = 0; i < sizeof (suffixes) / sizeof (suffixes [0]); i++) {
        if (strcmp (end, suffixes [i].suffix) == 0) {
            if (number > (unsigned long long) INT64_MAX / suffixes [i].factor)
                return -1;
            *bytes = (int64_t) (number * suffixes [i].factor);
            return 0;
        }
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  Parse a boolean like Go's strconv.ParseBool.

int
dbt_parse_bool (const char *str, bool *value)
{
    static const char *yes [] = { "1", "t", "T", "TRUE", "true", "True" };
    static const char *no [] = { "0", "f", "F", "FALSE", "false", "False" };
    if (!str)
        return -1;
    for (size_t i = 0; i < 6; i++) {
        if (strcmp (str, yes [i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcmp (str, no [i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  True when id matches [A-Za-z0-9_:-]{1,64}.

bool
dbt_id_valid (const char *id)
{
    if (!id)
        return false;
    size_t len = 0;
    for (const char *p = id; *p; p++, len++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
               || (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '-';
        if (!ok || len >= DBT_ID_MAX)
            return false;
    }
    return len > 0;
}

//  --------------------------------------------------------------------------
//  mkdir -p.

bool
dbt_table_name_valid (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) name [i]) && name [i] != '_' && name [i] != ':' && name [i] != '-')
            return false;
    return true;
}

int
dbt_mkdirs (const char *path, char *err)
{
    char *copy = dbt_strdup (path);
    int rc = 0;
    for (char *p = copy + 1; rc == 0; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir (copy, 0750) != 0 && errno != EEXIST) {
                dbt_err_set (err, "cannot create directory '%s': %s", copy, strerror (errno));
                rc = -1;
            }
            *p = saved;
            if (!saved)
                break;
        }
    }
    struct stat st;
    if (rc == 0 && (stat (path, &st) != 0 || !S_ISDIR (st.st_mode))) {
        dbt_err_set (err, "'%s' is not a directory", path);
        rc = -1;
    }
    free (copy);
    return rc;
}

//  --------------------------------------------------------------------------
//  A random 64-bit number.

uint64_t
dbt_random64 (void)
{
    uint64_t value = 0;
    if (getrandom (&value, sizeof (value), 0) != (ssize_t) sizeof (value)) {
        uuid_t uuid;
        uuid_generate (uuid);
        memcpy (&value, uuid, sizeof (value));
    }
    return value;
}

//  --------------------------------------------------------------------------
//  Write a new random UUIDv4.

void
dbt_uuid (char out [37])
{
    uuid_t uuid;
    uuid_generate_random (uuid);
    uuid_unparse_lower (uuid, out);
}

//  --------------------------------------------------------------------------
//  Format ms since epoch as RFC 3339 UTC.

void
dbt_time_rfc3339 (int64_t ms, char *out, size_t size)
{
    if (ms == 0) {
        snprintf (out, size, "0001-01-01T00:00:00Z");
        return;
    }
    time_t secs = (time_t) (ms / 1000);
    int frac = (int) (ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r (&secs, &tm);
    char base [24];
    strftime (base, sizeof (base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf (out, size, "%s.%03dZ", base, frac);
    else
        snprintf (out, size, "%sZ", base);
}

//  Parse exactly n digits at *p; advance. Returns -1 on failure.
static int
s_digits (const char **p, int n)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit ((unsigned char) (*p) [i]))
            return -1;
        value = value * 10 + ((*p) [i] - '0');
    }
    *p += n;
    return value;
}

//  Days since 1970-01-01 of a proleptic Gregorian date.
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

//  --------------------------------------------------------------------------
//  Parse "YYYY-MM-DD HH:MM:SS[.frac]" (UTC) or RFC 3339.

int
dbt_parse_time (const char *str, int64_t *ms)
{
    if (!str)
        return -1;
    const char *p = str;
    int year = s_digits (&p, 4);
    if (year < 0 || *p++ != '-')
        return -1;
    int month = s_digits (&p, 2);
    if (month < 1 || month > 12 || *p++ != '-')
        return -1;
    int day = s_digits (&p, 2);
    static const int mdays [] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (day < 1 || day > mdays [month - 1])
        return -1;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap)
        return -1;
    bool rfc = false;
    if (*p == 'T' || *p == 't')
        rfc = true;
    else
    if (*p != ' ')
        return -1;
    p++;
    int hour = s_digits (&p, 2);
    if (hour < 0 || hour > 23 || *p++ != ':')
        return -1;
    int minute = s_digits (&p, 2);
    if (minute < 0 || minute > 59 || *p++ != ':')
        return -1;
    int second = s_digits (&p, 2);
    if (second < 0 || second > 60)
        return -1;
    int millis = 0;
    if (*p == '.') {
        p++;
        if (!isdigit ((unsigned char) *p))
            return -1;
        int scale = 100;
        while (isdigit ((unsigned char) *p)) {
            millis += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    int64_t offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    }
    else
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh = s_digits (&p, 2);
        if (oh < 0 || oh > 23 || *p++ != ':')
            return -1;
        int om = s_digits (&p, 2);
        if (om < 0 || om > 59)
            return -1;
        offset_min = sign * (oh * 60 + om);
    }
    else
    if (rfc)
        return -1;              //  RFC 3339 requires a zone
    if (*p)
        return -1;
    int64_t days = s_days_from_civil (year, month, day);
    int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    *ms = secs * 1000 + millis;
    return 0;
}

//  --------------------------------------------------------------------------
//  Growable byte buffer.

void
dbt_buf_reserve (dbt_buf_t *self, size_t extra)
{
    if (self->len + extra + 1 <= self->cap)
        return;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < self->len + extra + 1)
        cap *= 2;
    self->data = (char *) dbt_realloc (self->data, cap);
    self->cap = cap;
    self->data [self->len] = 0;     //  always a string, even before a write
}

void
dbt_buf_append (dbt_buf_t *self, const void *data, size_t len)
{
    dbt_buf_reserve (self, len);
    if (len)
        memcpy (self->data + self->len, data, len);
    self->len += len;
    self->data [self->len] = 0;
}

void
dbt_buf_puts (dbt_buf_t *self, const char *str)
{
    dbt_buf_append (self, str, strlen (str));
}

void
dbt_buf_putc (dbt_buf_t *self, char c)
{
    dbt_buf_reserve (self, 1);
    self->data [self->len++] = c;
    self->data [self->len] = 0;
}

void
dbt_buf_printf (dbt_buf_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    va_list copy;
    va_copy (copy, args);
    int len = vsnprintf (NULL, 0, format, copy);
    va_end (copy);
    assert (len >= 0);
    dbt_buf_reserve (self, (size_t) len);
    vsnprintf (self->data + self->len, (size_t) len + 1, format, args);
    self->len += (size_t) len;
    va_end (args);
}

void
dbt_buf_reset (dbt_buf_t *self)
{
    self->len = 0;
    if (self->data)
        self->data [0] = 0;
}

void
dbt_buf_free (dbt_buf_t *self)
{
    free (self->data);
    self->data = NULL;
    self->len = self->cap = 0;
}

char *
dbt_buf_take (dbt_buf_t *self)
{
    char *data = self->data ? self->data : dbt_strdup ("");
    self->data = NULL;
    self->len = self->cap = 0;
    return data;
}
