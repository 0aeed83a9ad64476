/*  =========================================================================
    dbt_keys - CURVE key files and a connecting socket's client keys

    See dbt_keys.h. zcert_load reads NAME_secret when it exists, else NAME;
    a public-only cert loads with an all-zero secret key, which is how a
    missing secret shows.
    =========================================================================
*/
#include "dbt_classes.h"
#include <sys/stat.h>

bool
dbt_keys_is_key (const char *text)
{
    byte bin [32];
    return text && strlen (text) == DBT_KEYS_LEN && zmq_z85_decode (bin, text) != NULL;
}

static bool
s_is_file (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

int
dbt_keys_load (const char *path, char *public_key, char *secret_key, char *err)
{
    assert (path);
    assert (public_key);
    char *secret_path = dbt_printf ("%s_secret", path);
    bool found = s_is_file (path) || (secret_key && s_is_file (secret_path));
    free (secret_path);
    if (!found) {
        dbt_err_set (err, "cannot load '%s': no such file", path);
        return -1;
    }
    zcert_t *cert = zcert_load (path);
    if (!cert || !dbt_keys_is_key (zcert_public_txt (cert))) {
        dbt_err_set (err, "cannot load '%s': not a CURVE certificate (make one with "
                     "dungbeetle --new-keys NAME)", path);
        zcert_destroy (&cert);
        return -1;
    }
    if (secret_key) {
        const char *secret = zcert_secret_txt (cert);
        bool none = true;
        for (const char *c = secret; *c; c++)
            if (*c != '0')
                none = false;
        if (!dbt_keys_is_key (secret) || none) {
            dbt_err_set (err, "cannot load '%s': it holds no secret key (give the NAME_secret "
                         "file)", path);
            zcert_destroy (&cert);
            return -1;
        }
        snprintf (secret_key, DBT_KEYS_LEN + 1, "%s", secret);
    }
    snprintf (public_key, DBT_KEYS_LEN + 1, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
    return 0;
}

int
dbt_keys_server (const char *text, char *key, char *err)
{
    assert (text);
    assert (key);
    if (dbt_keys_is_key (text) && !s_is_file (text)) {
        snprintf (key, DBT_KEYS_LEN + 1, "%s", text);
        return 0;
    }
    char msg [DBT_ERRMSG_LEN];
    if (dbt_keys_load (text, key, NULL, msg)) {
        dbt_err_set (err, "not 40 Z85 characters, and %s", msg);
        return -1;
    }
    return 0;
}

int
dbt_keys_set_client (zsock_t *sock, const char *public_key, const char *secret_key,
                     const char *server_key)
{
    assert (sock);
    zsock_set_curve_server (sock, 0);
    zsock_set_curve_publickey (sock, public_key);
    zsock_set_curve_secretkey (sock, secret_key);
    zsock_set_curve_serverkey (sock, server_key);
    char *set = zsock_curve_serverkey (sock);
    int rc = set && streq (set, server_key) ? 0 : -1;
    zstr_free (&set);
    return rc;
}

int
dbt_keys_client (zsock_t *sock, const char *client_cert, const char *server_key, char *err)
{
    assert (sock);
    if (!client_cert || !server_key) {
        dbt_err_set (err, "CURVE needs both a client certificate and the server's key");
        return -1;
    }
    char public_key [DBT_KEYS_LEN + 1], secret_key [DBT_KEYS_LEN + 1];
    char server [DBT_KEYS_LEN + 1];
    char msg [DBT_ERRMSG_LEN];
    if (dbt_keys_load (client_cert, public_key, secret_key, msg)) {
        dbt_err_set (err, "client certificate: %s", msg);
        return -1;
    }
    if (dbt_keys_server (server_key, server, msg)) {
        dbt_err_set (err, "server key: %s", msg);
        return -1;
    }
    if (dbt_keys_set_client (sock, public_key, secret_key, server)) {
        dbt_err_set (err, "cannot set CURVE options: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}
