/*  =========================================================================
    dbt_tls - HTTPS for the HTTP front (libmicrohttpd with GnuTLS)

    See dbt_tls.h. The PEM files are checked only for their markers here;
    GnuTLS parses them when the daemon starts, and its complaint reaches
    the log through s_logger, so a bad key stops start-up with a reason.
    =========================================================================
*/
#include "dbt_classes.h"
#include "dbt_tls.h"

struct _dbt_tls_t {
    char *cert;                 //  PEM text of the certificate (chain)
    char *key;                  //  PEM text of the private key
    size_t key_len;             //  its length, for wiping
    struct MHD_OptionItem options [4];  //  cert, key, logger, end
};

static const struct MHD_OptionItem s_no_options [] = { { MHD_OPTION_END, 0, NULL } };

//  Read a whole PEM file that must contain marker. Returns the text (caller
//  frees) or NULL with err.
static char *
s_read_pem (const char *key, const char *path, const char *marker, char *err)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        dbt_err_set (err, "[app] %s: cannot read '%s': %s", key, path, strerror (errno));
        return NULL;
    }
    dbt_buf_t buf = { 0 };
    char chunk [4096];
    size_t n;
    while ((n = fread (chunk, 1, sizeof (chunk), file)) > 0 && buf.len <= DBT_TLS_PEM_MAX)
        dbt_buf_append (&buf, chunk, n);
    bool failed = ferror (file) != 0;
    fclose (file);
    if (failed || buf.len == 0 || buf.len > DBT_TLS_PEM_MAX) {
        dbt_err_set (err, "[app] %s: '%s' is %s", key, path, failed ? "unreadable"
                     : buf.len ? "over 1 MiB" : "empty");
        dbt_buf_free (&buf);
        return NULL;
    }
    dbt_buf_putc (&buf, '\0');
    char *text = dbt_buf_take (&buf);
    if (!strstr (text, "-----BEGIN ") || !strstr (text, marker)) {
        dbt_err_set (err, "[app] %s: '%s' is not a PEM file with a%s%s", key, path,
                     strchr ("AEIOU", marker [0]) ? "n " : " ", marker);
        free (text);
        return NULL;
    }
    return text;
}

//  libmicrohttpd's messages, one log line each.
static void
s_logger (void *arg, const char *format, va_list args)
{
    (void) arg;
    char line [512];
    vsnprintf (line, sizeof (line), format, args);
    size_t len = strlen (line);
    while (len && (line [len - 1] == '\n' || line [len - 1] == '\r'))
        line [--len] = '\0';
    dbt_log (DBT_LOG_WARN, "http: tls: %s", line);
}

int
dbt_tls_new (const dbt_config_t *config, dbt_tls_t **tls_p, char *err)
{
    assert (config);
    assert (tls_p);
    *tls_p = NULL;
    if (!config->tls_cert && !config->tls_key)
        return 0;
    if (!config->tls_cert || !config->tls_key) {
        dbt_err_set (err, "[app] %s is set but %s is not: HTTPS needs both the certificate and "
                     "its private key", config->tls_cert ? "tls_cert" : "tls_key",
                     config->tls_cert ? "tls_key" : "tls_cert");
        return -1;
    }
    if (MHD_is_feature_supported (MHD_FEATURE_TLS) != MHD_YES) {
        dbt_err_set (err, "[app] tls_cert: this libmicrohttpd was built without TLS support");
        return -1;
    }
    dbt_tls_t *self = (dbt_tls_t *) dbt_malloc (sizeof (dbt_tls_t));
    self->cert = s_read_pem ("tls_cert", config->tls_cert, "CERTIFICATE", err);
    if (self->cert)
        self->key = s_read_pem ("tls_key", config->tls_key, "PRIVATE KEY", err);
    if (!self->key) {
        dbt_tls_destroy (&self);
        return -1;
    }
    if (strstr (self->key, "ENCRYPTED")) {
        dbt_err_set (err, "[app] tls_key: '%s' is encrypted; give an unencrypted key "
                     "(openssl pkey -in KEY -out KEY.plain) readable only by the node", config->tls_key);
        dbt_tls_destroy (&self);
        return -1;
    }
    self->key_len = strlen (self->key);
    self->options [0] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_MEM_CERT, 0, self->cert };
    self->options [1] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_MEM_KEY, 0, self->key };
    self->options [2] = (struct MHD_OptionItem) { MHD_OPTION_EXTERNAL_LOGGER,
                                                  (intptr_t) s_logger, NULL };
    self->options [3] = (struct MHD_OptionItem) { MHD_OPTION_END, 0, NULL };
    *tls_p = self;
    return 0;
}

void
dbt_tls_destroy (dbt_tls_t **self_p)
{
    assert (self_p);
    dbt_tls_t *self = *self_p;
    if (!self)
        return;
    if (self->key)
        memset (self->key, 0, self->key_len);
    free (self->key);
    free (self->cert);
    free (self);
    *self_p = NULL;
}

unsigned int
dbt_tls_flags (const dbt_tls_t *self)
{
    return self ? (unsigned int) (MHD_USE_TLS | MHD_USE_ERROR_LOG) : 0;
}

const struct MHD_OptionItem *
dbt_tls_options (const dbt_tls_t *self)
{
    return self ? self->options : s_no_options;
}

bool
dbt_tls_enabled (const dbt_tls_t *self)
{
    return self != NULL;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: the checks before libmicrohttpd sees the files (tls.sh serves
//  HTTPS with a real certificate).

void
dbt_tls_test (bool verbose)
{
    (void) verbose;
    char dir [] = "/tmp/dbt-tls-test-XXXXXX";
    assert (mkdtemp (dir));
    char err [DBT_ERRMSG_LEN];
    char *cert = dbt_printf ("%s/cert.pem", dir);
    char *key = dbt_printf ("%s/key.pem", dir);
    char *junk = dbt_printf ("%s/junk.pem", dir);
    char *empty = dbt_printf ("%s/empty.pem", dir);
    const char *texts [] = {
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
        "not pem\n", "" };
    const char *paths [] = { cert, key, junk, empty };
    for (int i = 0; i < 4; i++) {
        FILE *file = fopen (paths [i], "w");
        assert (file);
        fputs (texts [i], file);
        fclose (file);
    }
    dbt_config_t *config = (dbt_config_t *) dbt_malloc (sizeof (dbt_config_t));
    dbt_tls_t *tls = NULL;
    assert (dbt_tls_new (config, &tls, err) == 0 && tls == NULL);
    assert (dbt_tls_flags (NULL) == 0 && !dbt_tls_enabled (NULL));
    assert (dbt_tls_options (NULL) [0].option == MHD_OPTION_END);
    config->tls_cert = cert;
    assert (dbt_tls_new (config, &tls, err) == -1 && strstr (err, "tls_key is not"));
    config->tls_key = junk;
    assert (dbt_tls_new (config, &tls, err) == -1 && strstr (err, "not a PEM file with a PRIVATE KEY"));
    config->tls_key = empty;
    assert (dbt_tls_new (config, &tls, err) == -1 && strstr (err, "empty"));
    config->tls_key = dir;      //  a directory reads as an error
    assert (dbt_tls_new (config, &tls, err) == -1 && strstr (err, "tls_key"));
    config->tls_key = key;
    config->tls_cert = key;
    assert (dbt_tls_new (config, &tls, err) == -1 && strstr (err, "tls_cert") && strstr (err, "CERTIFICATE"));
    config->tls_cert = cert;
    int rc = dbt_tls_new (config, &tls, err);
    if (MHD_is_feature_supported (MHD_FEATURE_TLS) == MHD_YES) {
        assert (rc == 0 && tls && dbt_tls_enabled (tls));
        assert (dbt_tls_flags (tls) & MHD_USE_TLS);
        const struct MHD_OptionItem *options = dbt_tls_options (tls);
        assert (options [0].option == MHD_OPTION_HTTPS_MEM_CERT && strstr (options [0].ptr_value, "CERTIFICATE"));
        assert (options [1].option == MHD_OPTION_HTTPS_MEM_KEY);
        assert (options [3].option == MHD_OPTION_END);
    }
    else
        assert (rc == -1 && strstr (err, "without TLS"));
    dbt_tls_destroy (&tls);
    dbt_tls_destroy (&tls);
    assert (tls == NULL);
    free (config);
    for (int i = 0; i < 4; i++)
        remove (paths [i]);
    assert (rmdir (dir) == 0);
    free (cert);
    free (key);
    free (junk);
    free (empty);
}
#endif  //  DBT_SELFTEST
