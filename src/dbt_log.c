/*  =========================================================================
    dbt_log - leveled logging to stderr

    See dbt_log.h. The level is process-wide state set once at start-up.
    =========================================================================
*/
#include "dbt_classes.h"

static volatile int s_level = DBT_LOG_INFO;

static const char *s_names [] = { "DEBUG", "INFO", "WARN", "ERROR", "OFF" };

void
dbt_log_set_level (dbt_log_level_t level)
{
    s_level = (int) level;
}

int
dbt_log_parse_level (const char *name, dbt_log_level_t *level)
{
    if (!name)
        return -1;
    for (int i = 0; i <= DBT_LOG_OFF; i++) {
        if (strcasecmp (name, s_names [i]) == 0) {
            *level = (dbt_log_level_t) i;
            return 0;
        }
    }
    if (strcasecmp (name, "WARNING") == 0) {
        *level = DBT_LOG_WARN;
        return 0;
    }
    return -1;
}

bool
dbt_log_enabled (dbt_log_level_t level)
{
    return (int) level >= s_level;
}

void
dbt_log (dbt_log_level_t level, const char *format, ...)
{
    if (!dbt_log_enabled (level) || level >= DBT_LOG_OFF)
        return;
    char line [2048];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    size_t off = strftime (line, sizeof (line), "%Y-%m-%dT%H:%M:%S", &tm);
    off += (size_t) snprintf (line + off, sizeof (line) - off, ".%03ldZ %-5s ",
                              ts.tv_nsec / 1000000, s_names [level]);
    va_list args;
    va_start (args, format);
    int len = vsnprintf (line + off, sizeof (line) - off - 1, format, args);
    va_end (args);
    if (len < 0)
        len = 0;
    off += (size_t) len;
    if (off > sizeof (line) - 2)
        off = sizeof (line) - 2;
    line [off++] = '\n';
    //  One write(2) per line keeps lines whole across threads.
    ssize_t rc = write (STDERR_FILENO, line, off);
    (void) rc;
}
