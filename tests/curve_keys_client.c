/*  =========================================================================
    curve_keys_client - libdungbeetle with CURVE keys as Z85 text
    (tests/integration/curve.sh)

        curve_keys_client ENDPOINT PUBLIC SECRET SERVER_KEY JOB_ID

    First checks that dungbeetle_client_new refuses unusable key options
    (malformed keys, a server key alone, client_cert with a key pair) with
    DUNGBEETLE_EINVAL; then asks ENDPOINT for JOB_ID's status with the key
    pair PUBLIC/SECRET and SERVER_KEY (each 40 Z85 characters, or the
    server key as a cert file). Prints the state. Exit: 0 answered, 2
    DUNGBEETLE_EAUTH (key refused or handshake failed), 4 timed out, 5
    another error, 64 a check of the options failed.
    =========================================================================
*/
#include <dungbeetle.h>
#include <stdio.h>
#include <string.h>

static int
s_refused (const char *what, const dungbeetle_options_t *options)
{
    dungbeetle_client_t *client = NULL;
    char err [DUNGBEETLE_ERRMSG_LEN];
    int rc = dungbeetle_client_new ("tcp://127.0.0.1:9", options, &client, err);
    if (rc != DUNGBEETLE_EINVAL || client) {
        fprintf (stderr, "curve_keys_client: %s: expected DUNGBEETLE_EINVAL, got %d\n", what, rc);
        dungbeetle_client_destroy (&client);
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc != 6) {
        fprintf (stderr, "usage: curve_keys_client ENDPOINT PUBLIC SECRET SERVER_KEY JOB_ID\n");
        return 64;
    }
    dungbeetle_options_t bad = { .timeout_ms = 3000 };
    bad.public_key = "short";
    bad.secret_key = argv [3];
    bad.server_key = argv [4];
    if (s_refused ("a malformed public key", &bad))
        return 64;
    bad.public_key = argv [2];
    bad.server_key = "0123456789";
    if (s_refused ("a malformed server key", &bad))
        return 64;
    dungbeetle_options_t alone = { .server_key = argv [4] };
    if (s_refused ("a server key without client keys", &alone))
        return 64;
    dungbeetle_options_t both = { .server_key = argv [4], .public_key = argv [2],
                                  .secret_key = argv [3], .client_cert = "/nonexistent" };
    if (s_refused ("client_cert and a key pair", &both))
        return 64;

    dungbeetle_options_t options = { .timeout_ms = 5000, .public_key = argv [2],
                                     .secret_key = argv [3], .server_key = argv [4] };
    dungbeetle_client_t *client = NULL;
    char err [DUNGBEETLE_ERRMSG_LEN];
    int rc = dungbeetle_client_new (argv [1], &options, &client, err);
    if (rc) {
        fprintf (stderr, "curve_keys_client: %s\n", err);
        return 5;
    }
    dungbeetle_status_t *status = NULL;
    rc = dungbeetle_status (client, argv [5], &status);
    if (rc == 0)
        printf ("%s\n", dungbeetle_status_field (status, "state"));
    else
        fprintf (stderr, "curve_keys_client: %s: %s\n", dungbeetle_strerror (rc),
                 dungbeetle_client_error (client));
    dungbeetle_status_destroy (&status);
    dungbeetle_client_destroy (&client);
    return rc == 0 ? 0 : rc == DUNGBEETLE_EAUTH ? 2 : rc == DUNGBEETLE_ETIMEDOUT ? 4 : 5;
}
