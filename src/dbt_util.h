/*  =========================================================================
    dbt_util - memory, error buffers, clocks and small parsers

    Shared helpers every module uses: allocation that aborts on out-of-memory,
    caller-supplied error buffers, monotonic and wall clocks, a growable byte
    buffer, and the few small formats no library covers (Go-style durations,
    sizes, booleans, job ids). Pure functions; safe from any thread.
    =========================================================================
*/
#ifndef DBT_UTIL_H_INCLUDED
#define DBT_UTIL_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Size of every caller-supplied error buffer (`char err [DBT_ERRMSG_LEN]`).
#define DBT_ERRMSG_LEN 512

//  Longest job or group id; ids match [A-Za-z0-9_:-]{1,64}.
#define DBT_ID_MAX 64

//  Error codes (negative, like libuv); dbt_strerror() names them.
#define DBT_OK          0
#define DBT_ERROR      -1       //  generic failure, detail in err buffer
#define DBT_ENOTFOUND  -2       //  no such record
#define DBT_EEXIST     -3       //  conflicting record exists
#define DBT_EINVAL     -4       //  bad input
#define DBT_ECONN      -5       //  connection to a database or peer lost
#define DBT_ECANCELED  -6       //  operation cancelled on request
#define DBT_ETIMEDOUT  -7       //  time limit reached
#define DBT_EFULL      -8       //  storage full
#define DBT_ETOOBIG    -9       //  input over a size limit

//  Return a static name for an error code.
const char *
    dbt_strerror (int code);

//  Allocate zeroed memory; logs and aborts when memory is exhausted.
void *
    dbt_malloc (size_t size);

//  Resize memory; logs and aborts when memory is exhausted.
void *
    dbt_realloc (void *ptr, size_t size);

//  Duplicate a string (NULL gives NULL). Caller frees.
char *
    dbt_strdup (const char *str);

//  Replace the string *dest with *src, which it takes over: frees the old
//  *dest and nulls *src.
void
    dbt_str_move (char **dest, char **src);

//  Duplicate the first len bytes of str and add a NUL. Caller frees.
char *
    dbt_strndup (const char *str, size_t len);

//  Format into a new string. Caller frees.
char *
    dbt_printf (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

//  Format a message into err (DBT_ERRMSG_LEN bytes); err may be NULL.
void
    dbt_err_set (char *err, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  Milliseconds on a monotonic clock (for timeouts and intervals).
int64_t
    dbt_clock_ms (void);

//  Milliseconds since the Unix epoch (for stored timestamps).
int64_t
    dbt_time_ms (void);

//  Name the calling thread (as top -H and perf show it); at most 15
//  bytes are kept. Best effort: a failure changes nothing.
void
    dbt_thread_name (const char *name);

//  Parse a whole decimal integer within [min, max]. Returns 0 or -1.
int
    dbt_parse_int64 (const char *str, int64_t min, int64_t max, int64_t *value);

//  Parse a Go-style duration ("1h30m", "250ms", "1.5s"); a bare integer is
//  taken as seconds. Returns 0 or -1; result in milliseconds, >= 0.
int
    dbt_parse_duration (const char *str, int64_t *ms);

//  Parse a byte size ("512", "64KB", "10MB", "1GiB"). Returns 0 or -1.
int
    dbt_parse_size (const char *str, int64_t *bytes);

//  Parse a boolean the way Go's strconv.ParseBool does
//  (1 t T TRUE true True 0 f F FALSE false False). Returns 0 or -1.
int
    dbt_parse_bool (const char *str, bool *value);

//  True when id matches [A-Za-z0-9_:-]{1,64}.
bool
    dbt_id_valid (const char *id);

//  True when name is a results table name the server could have made:
//  1 to 128 of [A-Za-z0-9_:-] (a results_table format's letters, digits
//  and underscores around a job id).
bool
    dbt_table_name_valid (const char *name);

//  Create a directory and its missing parents (like mkdir -p), mode 0750.
//  Returns 0 or -1 with err set.
int
    dbt_mkdirs (const char *path, char *err);

//  A random 64-bit number from the kernel's generator.
uint64_t
    dbt_random64 (void);

//  Write a new random UUIDv4 in canonical lowercase form (37 bytes with NUL).
void
    dbt_uuid (char out [37]);

//  Format a wall-clock time (ms since epoch) as RFC 3339 UTC with
//  milliseconds when non-zero, e.g. "2024-01-02T15:04:05Z". out >= 32 bytes.
void
    dbt_time_rfc3339 (int64_t ms, char *out, size_t size);

//  Parse "YYYY-MM-DD HH:MM:SS[.frac]" (UTC) or an RFC 3339 timestamp.
//  Returns 0 and ms since epoch, or -1.
int
    dbt_parse_time (const char *str, int64_t *ms);

//  -------------------------------------------------------------------------
//  Growable byte buffer. Zero-initialise (dbt_buf_t b = {0}) to start.

typedef struct {
    char *data;                 //  bytes, NUL-terminated when len < cap
    size_t len;                 //  bytes used
    size_t cap;                 //  bytes allocated
} dbt_buf_t;

//  Make room for at least extra more bytes.
void
    dbt_buf_reserve (dbt_buf_t *self, size_t extra);

//  Append bytes.
void
    dbt_buf_append (dbt_buf_t *self, const void *data, size_t len);

//  Append a string.
void
    dbt_buf_puts (dbt_buf_t *self, const char *str);

//  Append one byte.
void
    dbt_buf_putc (dbt_buf_t *self, char c);

//  Append formatted text.
void
    dbt_buf_printf (dbt_buf_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  Forget the contents, keep the allocation.
void
    dbt_buf_reset (dbt_buf_t *self);

//  Free the allocation.
void
    dbt_buf_free (dbt_buf_t *self);

//  Take the contents as a NUL-terminated string; the buffer is left empty.
//  Caller frees.
char *
    dbt_buf_take (dbt_buf_t *self);

//  Self test of this module.
void
    dbt_util_test (bool verbose);

#endif
