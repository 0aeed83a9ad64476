/*  =========================================================================
    fuzz_dsn - fuzz target for the ClickHouse and MariaDB DSN parsers

    Input: one selector byte, then the DSN (up to its first NUL, as a
    config value is). Bit 2 of the selector ('m' has it, 'c' has not, so
    seeds read as text) picks the MariaDB parser (dbt_driver_mariadb_dsn),
    else the ClickHouse one (dbt_driver_clickhouse_dsn).

    ClickHouse: a DSN that parses gives an http:// or https:// URL with a
    host and no user info, which curl accepts and which parses again as a
    DSN to the same URL (as curl spells it) and no credentials: the
    driver's URL is stable.
    MariaDB: a DSN that parses is described with its port in range and no
    password; and whether it parses or not, the password of the URL (as
    curl reads it, when it is long enough to be told from the rest) never
    appears in the error message. The same holds for upstream's
    go-sql-driver form (no scheme): its password, the text between the
    first ':' and the last '@' before the last '/', is never in the error.

    PostgreSQL DSNs are not parsed by project code: libpq reads them whole
    (PQconnectdbParams with expand_dbname), so there is no target for them.

    Seed corpus: tests/fixtures/dsn/ (valid_* parse, broken_* are refused).
    Build and run: see tests/README.md.
    =========================================================================
*/
#include "../../src/dbt_classes.h"
#include "fuzz.h"
#include <curl/curl.h>

//  The URL as curl writes it back after reading it (curl normalises a
//  host such as "5" to "0.0.0.5" only when it is not percent-encoded, so
//  the driver's URL and the same URL read again may differ in spelling
//  only). Caller frees; NULL when curl refuses it.
static char *
s_canonical (const char *url)
{
    CURLU *parsed = curl_url ();
    char *text = NULL, *copy = NULL;
    if (curl_url_set (parsed, CURLUPART_URL, url, 0) == CURLUE_OK
    &&  curl_url_get (parsed, CURLUPART_URL, &text, 0) == CURLUE_OK)
        copy = dbt_strdup (text);
    curl_free (text);
    curl_url_cleanup (parsed);
    return copy;
}

static int
s_clickhouse (const char *dsn, char *err)
{
    char *url = NULL, *user = NULL, *password = NULL;
    int rc = dbt_driver_clickhouse_dsn (dsn, &url, &user, &password, err);
    if (rc) {
        assert (rc == DBT_EINVAL && err [0] && !url && !user && !password);
        return -1;
    }
    assert (url && (strncmp (url, "http://", 7) == 0 || strncmp (url, "https://", 8) == 0));
    CURLU *parsed = curl_url ();
    assert (curl_url_set (parsed, CURLUPART_URL, url, 0) == CURLUE_OK);
    char *part = NULL;
    assert (curl_url_get (parsed, CURLUPART_HOST, &part, 0) == CURLUE_OK && *part);
    curl_free (part);
    part = NULL;
    assert (curl_url_get (parsed, CURLUPART_USER, &part, 0) != CURLUE_OK);
    assert (curl_url_get (parsed, CURLUPART_PASSWORD, &part, 0) != CURLUE_OK);
    assert (curl_url_get (parsed, CURLUPART_FRAGMENT, &part, 0) != CURLUE_OK);
    curl_url_cleanup (parsed);
    char again_err [DBT_ERRMSG_LEN];
    char *url2 = NULL, *user2 = NULL, *password2 = NULL;
    int rc2 = dbt_driver_clickhouse_dsn (url, &url2, &user2, &password2, again_err);
    char *canon = s_canonical (url), *canon2 = rc2 ? NULL : s_canonical (url2);
    if (rc2 || !canon || !canon2 || !streq (canon2, canon) || user2 || password2) {
        fprintf (stderr, "fuzz_dsn: '%s' gave '%s', which gave %d '%s' user %s password %s\n",
                 dsn, url, rc2, rc2 ? again_err : url2, user2 ? user2 : "(none)",
                 password2 ? password2 : "(none)");
        assert (false);
    }
    free (canon);
    free (canon2);
    free (url2);
    free (url);
    free (user);
    free (password);
    return 0;
}

//  The password curl sees in dsn (decoded and raw), when it is at least
//  six bytes and its raw text occurs once in dsn; else NULLs.
static void
s_password (const char *dsn, char **decoded, char **raw)
{
    *decoded = *raw = NULL;
    CURLU *url = curl_url ();
    if (curl_url_set (url, CURLUPART_URL, dsn, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
        char *part = NULL;
        if (curl_url_get (url, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
            const char *first = strstr (dsn, part);
            if (strlen (part) >= 6 && first && !strstr (first + 1, part))
                *raw = dbt_strdup (part);
            curl_free (part);
            part = NULL;
        }
        if (*raw && curl_url_get (url, CURLUPART_PASSWORD, &part, CURLU_URLDECODE) == CURLUE_OK) {
            if (strlen (part) >= 6)
                *decoded = dbt_strdup (part);
            curl_free (part);
        }
    }
    curl_url_cleanup (url);
}

//  The password of a go-sql-driver DSN as that driver splits it (the
//  text after the first ':' up to the last '@' before the last '/'), when
//  the DSN has no scheme, the password is at least six bytes and occurs
//  once in dsn; else NULL. Caller frees.
static char *
s_go_password (const char *dsn)
{
    const char *colon3 = strstr (dsn, "://");
    const char *slash = strrchr (dsn, '/');
    if ((colon3 && strspn (dsn, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789+.-") == (size_t) (colon3 - dsn)) || !slash)
        return NULL;
    const char *at = NULL;
    for (const char *p = dsn; p < slash; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr (dsn, ':', (size_t) (at - dsn)) : NULL;
    if (!colon || at - colon - 1 < 6)
        return NULL;
    char *pw = dbt_strndup (colon + 1, (size_t) (at - colon - 1));
    const char *first = strstr (dsn, pw);
    if (!first || strstr (first + 1, pw)) {
        free (pw);
        return NULL;
    }
    return pw;
}

//  True when the error for dsn holds text of its password: it holds pw,
//  and the error for the same DSN with the password's raw text replaced by
//  as many 'Q's does not (so pw did not come from the message's own words,
//  e.g. a password "ariadb:" and "... mysql:// or mariadb://").
static bool
s_leaks (const char *dsn, const char *raw, const char *pw, const char *err)
{
    if (!strstr (err, pw))
        return false;
    char *other = dbt_strdup (dsn);
    char *at = strstr (other, raw);
    memset (at, 'Q', strlen (raw));
    char other_err [DBT_ERRMSG_LEN] = "";
    char *desc = NULL;
    dbt_driver_mariadb_dsn (other, &desc, other_err);
    free (desc);
    free (other);
    return !strstr (other_err, pw);
}

static int
s_mariadb (const char *dsn, char *err)
{
    char *desc = NULL;
    err [0] = 0;
    int rc = dbt_driver_mariadb_dsn (dsn, &desc, err);
    char *decoded, *raw;
    s_password (dsn, &decoded, &raw);
    const char *leaked = decoded && s_leaks (dsn, raw, decoded, err) ? decoded
                       : raw && s_leaks (dsn, raw, raw, err) ? raw : NULL;
    if (leaked) {
        fprintf (stderr, "fuzz_dsn: password '%s' of '%s' is in the error: %s\n", leaked, dsn, err);
        assert (false);
    }
    free (decoded);
    free (raw);
    char *go = s_go_password (dsn);
    if (go && s_leaks (dsn, go, go, err)) {
        fprintf (stderr, "fuzz_dsn: password '%s' of '%s' is in the error: %s\n", go, dsn, err);
        assert (false);
    }
    free (go);
    if (rc) {
        assert (rc == DBT_EINVAL && err [0] && !desc);
        return -1;
    }
    assert (desc && strncmp (desc, "host=", 5) == 0);
    const char *port = strstr (desc, " port=");
    assert (port);
    int64_t value = -1;
    char *end = NULL;
    value = strtoll (port + 6, &end, 10);
    assert (end && *end == ' ' && value >= 0 && value <= 65535);
    assert (strstr (desc, " password=set ") || strstr (desc, " password=none "));
    free (desc);
    return 0;
}

int
dbt_fuzz_one (const uint8_t *data, size_t size, char *err)
{
    if (size == 0) {
        dbt_err_set (err, "input needs a selector byte");
        return -1;
    }
    char *dsn = dbt_strndup ((const char *) data + 1, size - 1);
    int rc = (data [0] & 4) ? s_mariadb (dsn, err) : s_clickhouse (dsn, err);
    free (dsn);
    return rc;
}
