/*  =========================================================================
    dbt_keys - CURVE key files and a connecting socket's client keys

    What a node (dbt_curve) and a client of one (libdungbeetle) both need,
    with no dependence on the config or the node: read a czmq zcert file
    (NAME holds the public key, NAME_secret both), take a server key given
    as 40 Z85 characters or as the path of a cert file, and make a socket a
    CURVE client before it connects. Key strings are Z85 (DBT_KEYS_LEN
    characters and a NUL). Stateless; safe from any thread.
    =========================================================================
*/
#ifndef DBT_KEYS_H_INCLUDED
#define DBT_KEYS_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>

//  Length of a Z85 key, without its NUL.
#define DBT_KEYS_LEN 40

//  True when text is a well-formed Z85 key.
bool
    dbt_keys_is_key (const char *text);

//  Load a cert file's keys into public_key / secret_key (DBT_KEYS_LEN+1
//  bytes each; secret_key may be NULL to read a public cert). path is NAME
//  or NAME_secret; with secret_key, NAME_secret is read when it exists.
//  Returns 0, or -1 with err (file missing, not a cert, no secret key when
//  one is asked).
int
    dbt_keys_load (const char *path, char *public_key, char *secret_key, char *err);

//  A server key given as text: 40 Z85 characters (and no file of that
//  name), else the path of a cert file whose public key is taken. Writes
//  DBT_KEYS_LEN+1 bytes to key. Returns 0, or -1 with err.
int
    dbt_keys_server (const char *text, char *key, char *err);

//  Make sock a CURVE client with this key pair, of the server with
//  server_key, before it connects. Returns 0, or -1 when an option did not
//  take (sock must then not be used: it would be open).
int
    dbt_keys_set_client (zsock_t *sock, const char *public_key, const char *secret_key,
                         const char *server_key);

//  The same from files: client_cert is the client's zcert (NAME_secret, or
//  NAME when NAME_secret sits beside it), server_key as dbt_keys_server.
//  Returns 0, or -1 with err (nothing is set on the socket then).
int
    dbt_keys_client (zsock_t *sock, const char *client_cert, const char *server_key, char *err);

#endif
