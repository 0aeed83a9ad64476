/*  =========================================================================
    dbt_util_test - self test of dbt_util (public functions only)

    Run by tests/dbt_selftest (-t util); kept out of the libraries.
    =========================================================================
*/
#include "dbt_classes.h"

//  --------------------------------------------------------------------------
//  Self test

//  A thread that names itself (a long name is cut to 15 bytes) and reads
//  the name back.
static void *
s_named (void *arg)
{
    dbt_thread_name ("dbt-a-name-longer-than-fifteen");
    pthread_getname_np (pthread_self (), (char *) arg, 32);
    return NULL;
}

void
dbt_util_test (bool verbose)
{
    char named [32] = "";
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_named, named) == 0);
    pthread_join (thread, NULL);
    assert (streq (named, "dbt-a-name-long"));

    int64_t v;
    assert (dbt_parse_int64 ("42", 0, 100, &v) == 0 && v == 42);
    assert (dbt_parse_int64 ("-5", -10, 10, &v) == 0 && v == -5);
    assert (dbt_parse_int64 ("101", 0, 100, &v) == -1);
    assert (dbt_parse_int64 ("4x", 0, 100, &v) == -1);
    assert (dbt_parse_int64 ("", 0, 100, &v) == -1);
    assert (dbt_parse_int64 (" 4", 0, 100, &v) == -1);
    assert (dbt_parse_int64 ("99999999999999999999", 0, INT64_MAX, &v) == -1);

    assert (dbt_parse_duration ("60s", &v) == 0 && v == 60000);
    assert (dbt_parse_duration ("1h30m", &v) == 0 && v == 5400000);
    assert (dbt_parse_duration ("250ms", &v) == 0 && v == 250);
    assert (dbt_parse_duration ("1.5s", &v) == 0 && v == 1500);
    assert (dbt_parse_duration ("10", &v) == 0 && v == 10000);
    assert (dbt_parse_duration ("0", &v) == 0 && v == 0);
    assert (dbt_parse_duration ("10x", &v) == -1);
    assert (dbt_parse_duration ("-1s", &v) == -1);
    assert (dbt_parse_duration ("s", &v) == -1);
    assert (dbt_parse_duration ("", &v) == -1);

    assert (dbt_parse_size ("512", &v) == 0 && v == 512);
    assert (dbt_parse_size ("10MB", &v) == 0 && v == 10000000);
    assert (dbt_parse_size ("1GiB", &v) == 0 && v == 1073741824);
    assert (dbt_parse_size ("1TB", &v) == -1);
    assert (dbt_parse_size ("-1", &v) == -1);

    bool b;
    assert (dbt_parse_bool ("true", &b) == 0 && b);
    assert (dbt_parse_bool ("F", &b) == 0 && !b);
    assert (dbt_parse_bool ("yes", &b) == -1);

    assert (dbt_id_valid ("job-1_a:b"));
    assert (!dbt_id_valid (""));
    assert (!dbt_id_valid (NULL));
    assert (dbt_table_name_valid ("results_job-1:a"));
    assert (!dbt_table_name_valid ("results_x\"; DROP TABLE t; --"));
    assert (!dbt_table_name_valid ("a.b") && !dbt_table_name_valid ("") && !dbt_table_name_valid (NULL));
    assert (!dbt_id_valid ("x\"; DROP TABLE t; --"));
    assert (!dbt_id_valid ("a b"));
    assert (!dbt_id_valid ("caf\xc3\xa9"));
    char longid [DBT_ID_MAX + 2];
    memset (longid, 'a', sizeof (longid));
    longid [DBT_ID_MAX] = 0;
    assert (dbt_id_valid (longid));
    longid [DBT_ID_MAX] = 'a';
    longid [DBT_ID_MAX + 1] = 0;
    assert (!dbt_id_valid (longid));

    char uuid [37];
    dbt_uuid (uuid);
    assert (strlen (uuid) == 36 && uuid [14] == '4');
    assert (dbt_random64 () != dbt_random64 ());
    char dirs [] = "/tmp/dbt-util-XXXXXX";
    assert (mkdtemp (dirs));
    char *deep = dbt_printf ("%s/a/b/c", dirs);
    assert (dbt_mkdirs (deep, NULL) == 0 && dbt_mkdirs (deep, NULL) == 0);
    char *file = dbt_printf ("%s/a/f", dirs);
    FILE *f = fopen (file, "w");
    fclose (f);
    char err2 [DBT_ERRMSG_LEN];
    assert (dbt_mkdirs (file, err2) == -1 && strstr (err2, "not a directory"));
    unlink (file);
    rmdir (deep);
    char *mid = dbt_printf ("%s/a/b", dirs);
    rmdir (mid);
    free (mid);
    mid = dbt_printf ("%s/a", dirs);
    rmdir (mid);
    free (mid);
    rmdir (dirs);
    free (deep);
    free (file);

    char out [40];
    dbt_time_rfc3339 (0, out, sizeof (out));
    assert (streq (out, "0001-01-01T00:00:00Z"));
    assert (dbt_parse_time ("2024-01-02 15:04:05", &v) == 0);
    dbt_time_rfc3339 (v, out, sizeof (out));
    assert (streq (out, "2024-01-02T15:04:05Z"));
    assert (dbt_parse_time ("2024-01-02T15:04:05.250+01:00", &v) == 0);
    dbt_time_rfc3339 (v, out, sizeof (out));
    assert (streq (out, "2024-01-02T14:04:05.250Z"));
    assert (dbt_parse_time ("2024-02-30 00:00:00", &v) == -1);
    assert (dbt_parse_time ("2023-02-29 00:00:00", &v) == -1);
    assert (dbt_parse_time ("2024-02-29 00:00:00", &v) == 0);
    assert (dbt_parse_time ("2024-01-02T15:04:05", &v) == -1);
    assert (dbt_parse_time ("x", &v) == -1);
    assert (dbt_parse_time ("1970-01-01 00:00:00", &v) == 0 && v == 0);

    dbt_buf_t buf = { 0 };
    dbt_buf_puts (&buf, "abc");
    dbt_buf_printf (&buf, "%d", 12);
    dbt_buf_putc (&buf, '!');
    assert (buf.len == 6 && streq (buf.data, "abc12!"));
    for (int i = 0; i < 1000; i++)
        dbt_buf_append (&buf, "0123456789", 10);
    assert (buf.len == 10006);
    dbt_buf_reset (&buf);
    assert (buf.len == 0);
    dbt_buf_puts (&buf, "x");
    char *taken = dbt_buf_take (&buf);
    assert (streq (taken, "x") && buf.data == NULL);
    free (taken);
    dbt_buf_free (&buf);
    //  Reserved but never written: still an empty string (a quoted ''
    //  enum name in a ClickHouse type once read past it).
    dbt_buf_reserve (&buf, 16);
    assert (buf.data && buf.data [0] == 0);
    dbt_buf_free (&buf);

    char *s = dbt_printf ("%s-%d", "a", 1);
    assert (streq (s, "a-1"));
    free (s);
    char err [DBT_ERRMSG_LEN];
    dbt_err_set (err, "cannot open '%s'", "x");
    assert (streq (err, "cannot open 'x'"));
    dbt_err_set (NULL, "ignored");
    assert (streq (dbt_strerror (DBT_ENOTFOUND), "not found"));
    if (verbose)
        printf ("util: ok\n");
}
