/*  =========================================================================
    dbt_http - the HTTP front actor (GNU libmicrohttpd)

    Listens on the configured address with a thread per connection (so a
    slow results download never holds up status polling), at most
    max_connections of them and max_connections_per_ip from one client
    address, after raising the open file limit to the hard limit. Closes a
    connection whose request has not arrived whole within request_timeout
    (answers being sent are not timed). Checks the bearer token when one is
    configured (401; /health and the dashboard's files under /ui are
    always open) and the body's framing (400
    for ambiguous Content-Length, 413 over max_body_size) before reading
    the body, reads bodies up to max_body_size, and hands each request to
    dbt_board (the dashboard's paths), else to dbt_api. Pipe commands: "$TERM" stops listening; "PORT" replies with
    the bound port as a string.
    =========================================================================
*/
#ifndef DBT_HTTP_H_INCLUDED
#define DBT_HTTP_H_INCLUDED

#include "dbt_config.h"
#include "dbt_api.h"
#include "dbt_board.h"

//  What the actor needs; borrowed and outlives the actor.
typedef struct {
    const dbt_config_t *config; //  server address, limits, token
    dbt_api_t *api;             //  request handling
    dbt_board_t *board;         //  the dashboard, asked first (NULL: none)
} dbt_http_args_t;

//  The actor; signals 0 when listening, 1 when it cannot listen.
void
    dbt_http_actor (zsock_t *pipe, void *args);

//  Self test of this module.
void
    dbt_http_test (bool verbose);

#endif
