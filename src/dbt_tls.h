/*  =========================================================================
    dbt_tls - HTTPS for the HTTP front (libmicrohttpd with GnuTLS)

    With [app] tls_cert and tls_key set, dbt_tls_new reads both PEM files
    into memory and checks that this libmicrohttpd was built with TLS; the
    HTTP front then starts its daemon with dbt_tls_flags and the options of
    dbt_tls_options, so it speaks only HTTPS on its port. Without them the
    flags are 0 and the options an empty list: plain HTTP, as before. The
    object is owned by the HTTP front's actor and must outlive its daemon
    (libmicrohttpd reads the PEM text in place).
    =========================================================================
*/
#ifndef DBT_TLS_H_INCLUDED
#define DBT_TLS_H_INCLUDED

#include <stdbool.h>
#include <microhttpd.h>
#include "dbt_config.h"

//  Largest PEM file read (a certificate chain or a key).
#define DBT_TLS_PEM_MAX (1024 * 1024)

typedef struct _dbt_tls_t dbt_tls_t;

//  Read the config's certificate and key. Returns 0 with *tls_p = NULL when
//  neither is set (plain HTTP), 0 with *tls_p owned by the caller when both
//  are, or -1 with err when only one is set, a file is missing, empty, too
//  big or not PEM, or libmicrohttpd lacks TLS.
int
    dbt_tls_new (const dbt_config_t *config, dbt_tls_t **tls_p, char *err);

//  Free (wiping the key from memory). Idempotent; nulls *self_p.
void
    dbt_tls_destroy (dbt_tls_t **self_p);

//  Daemon flags to add: MHD_USE_TLS | MHD_USE_ERROR_LOG, or 0 for self NULL.
unsigned int
    dbt_tls_flags (const dbt_tls_t *self);

//  Options for MHD_OPTION_ARRAY: certificate, key and a logger that sends
//  libmicrohttpd's messages (handshake failures) to dbt_log; only the end
//  marker for self NULL. Borrowed from self (or static).
const struct MHD_OptionItem *
    dbt_tls_options (const dbt_tls_t *self);

//  True when self serves HTTPS (self not NULL).
bool
    dbt_tls_enabled (const dbt_tls_t *self);

//  Self test.
void
    dbt_tls_test (bool verbose);

#endif
