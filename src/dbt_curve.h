/*  =========================================================================
    dbt_curve - CURVE keys, the mesh's allow-list and every socket's set-up

    One place decides how a mesh socket is secured. With [mesh] curve_cert
    set, dbt_curve_new loads this node's key pair (a czmq zcert file), the
    mesh's server key (curve_server, default: the node's own public key)
    and the allow-list (curve_allow, a zcertstore directory), and starts a
    ZAP handler actor that admits a connecting peer only if its public key
    is the node's own, the mesh's, or one of the allow-list's; a refusal is
    logged with the peer's address and key. Every socket the node creates
    then goes through dbt_curve_apply: a bound socket becomes a CURVE
    server with this node's keys, a connecting one a CURVE client of the
    mesh's server key. Without keys dbt_curve_apply changes nothing.

    The object is created once (dbt_main) before any actor starts, is read-
    only afterwards and may be shared by every thread; only its ZAP actor
    has a thread of its own. Key strings are Z85 (40 characters); key files
    and client-side keys are dbt_keys's.
    =========================================================================
*/
#ifndef DBT_CURVE_H_INCLUDED
#define DBT_CURVE_H_INCLUDED

#include <stdbool.h>
#include <czmq.h>
#include "dbt_config.h"
#include "dbt_client.h"
#include "dbt_keys.h"

//  Length of a Z85 key, without its NUL.
#define DBT_CURVE_KEYLEN DBT_KEYS_LEN

//  Roles of a socket.
typedef enum {
    DBT_CURVE_CLIENT,           //  connects to a mesh endpoint
    DBT_CURVE_SERVER            //  binds a mesh endpoint
} dbt_curve_role_t;

typedef struct _dbt_curve_t dbt_curve_t;

//  Load the keys the config names and start the ZAP handler. Returns NULL
//  with *curve_p = NULL and no error when no keys are configured (an open
//  mesh); returns 0 with *curve_p owned by the caller when they are; -1
//  with err ("[mesh] curve_cert: cannot load '...'") when a file is
//  missing or unusable, a dispatching node's own key is not the mesh's
//  server key, or the allow-list directory does not exist. At most one
//  object with a ZAP handler may exist per process (one per ZeroMQ context).
int
    dbt_curve_new (const dbt_config_t *config, dbt_curve_t **curve_p, char *err);

//  Stop the ZAP handler and free. Idempotent; nulls *self_p.
void
    dbt_curve_destroy (dbt_curve_t **self_p);

//  Secure sock for its role before it binds or connects. domain names the
//  socket in ZAP requests and refusal logs ("dispatcher", "publisher");
//  clients pass NULL. self NULL (no keys): nothing changes, returns 0.
//  Returns 0, or -1 when an option could not be set (sock must then not be
//  used: it would be open).
int
    dbt_curve_apply (const dbt_curve_t *self, zsock_t *sock, dbt_curve_role_t role,
                     const char *domain);

//  This node's public key (Z85, borrowed for the object's lifetime).
const char *
    dbt_curve_public (const dbt_curve_t *self);

//  Apply the client keys of arg (a dbt_curve_t) to sock, as a
//  dbt_client_setup_fn for dbt_client_new_with or dbt_mux_new. Returns 0,
//  or -1 with err set.
int
    dbt_curve_client_setup (zsock_t *sock, void *arg, char *err);

//  A dispatcher client (dbt_client) whose socket is secured by self
//  (NULL: none). Returns NULL with err set.
dbt_client_t *
    dbt_curve_client_new (const dbt_curve_t *self, const char *endpoint, char *err);

//  Write a new key pair: NAME (public) and NAME_secret (mode 0600), with
//  metadata name = NAME's last path component. Refuses to overwrite either
//  file. Returns 0, or -1 with err.
int
    dbt_curve_new_keys (const char *name, char *err);

//  Self test.
void
    dbt_curve_test (bool verbose);

#endif
