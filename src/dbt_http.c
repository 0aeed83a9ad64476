/*  =========================================================================
    dbt_http - the HTTP front actor (GNU libmicrohttpd)

    See dbt_http.h. libmicrohttpd runs its own threads: with http_threads
    0, one listens and one serves each connection (poll); with N, N threads
    each accept and serve their share of the connections with epoll, and a
    handler that waits (a dispatcher's answer, a results download's next
    rows) holds up the other connections of its thread meanwhile. The
    actor thread starts and stops the daemon
    and, every S_SWEEP_MS, ends the connections whose request is over its
    deadline (see "Request deadline" below). Each connection keeps an
    s_conn_t in a list that libmicrohttpd's notifications and the sweeper
    share under one mutex; each request keeps an s_request_t (body buffer,
    size flag, start time) between the handler's calls.
    =========================================================================
*/
#include "dbt_classes.h"
#include <microhttpd.h>
#include "dbt_tls.h"
#include <curl/curl.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define S_SWEEP_MS    250       //  how often request deadlines are checked
#define S_FD_RESERVE  256       //  descriptors kept for the rest of the node
#define S_LOG_EVERY_MS 10000    //  at most one deadline log line this often
#define S_DIGEST_SIZE 20        //  bytes of a zdigest (SHA-1)
#define S_WAITERS     128       //  epoll mode: threads for requests that wait
//  Each connection's memory pool (libmicrohttpd's default is 32 KB): it
//  holds the request's headers and the chunks of a streamed answer, and
//  libmicrohttpd zeroes all of it after every request, which was the
//  largest single cost of a job status answer. 16 KB still takes 16 KB of
//  request headers, and streamed chunks of up to about 8 KB.
#define S_CONN_MEMORY 16384

typedef struct _s_conn_t s_conn_t;

//  One open connection, from libmicrohttpd's STARTED notification to its
//  CLOSED one. fd and address are set before it is listed and never
//  change; prev, next and expired are guarded by self_t's mutex. since is
//  atomic, so that starting and stopping a request's clock (twice per
//  request, on libmicrohttpd's threads) takes no lock.
struct _s_conn_t {
    int fd;                     //  its socket; open until CLOSED returns
    char address [INET6_ADDRSTRLEN];  //  client address, for logs
    s_conn_t *prev, *next;      //  in self_t's list
    _Atomic int64_t since;      //  monotonic ms the current request began
                                //  while it is not yet received whole
                                //  (timed), else -1
    bool expired;               //  the sweeper shut its socket down
};

typedef struct {
    dbt_http_args_t *args;      //  borrowed
    struct MHD_Daemon *daemon;  //  the server
    uint16_t port;              //  bound port
    pthread_mutex_t mutex;      //  guards conns and their timed fields
    s_conn_t *conns;            //  open connections, newest first
    size_t expired;             //  connections ended, not yet logged
    char expired_from [INET6_ADDRSTRLEN];  //  address of the last one
    int64_t logged_at;          //  when the last deadline line was logged
    byte token [S_DIGEST_SIZE]; //  SHA-1 of auth_token, when one is set
    //  Epoll mode: waiter threads and their queue, guarded by wait_mutex
    pthread_mutex_t wait_mutex; //  guards the queue and stopping
    pthread_cond_t wait_cond;   //  signalled when the queue grows or stops
    pthread_cond_t sent_cond;   //  signalled when sent falls to 0 while stopping
    struct _s_request_t *queue_head, *queue_tail;  //  requests to run
    bool stopping;              //  no more requests are queued
    pthread_t *waiters;         //  the threads (owned), NULL in thread mode
    size_t nwaiters;            //  number of threads started
    bool pooled;                //  epoll mode: waiting requests go to waiters
    size_t sent;                //  submissions awaiting their dispatcher (under wait_mutex)
} self_t;

typedef struct _s_request_t s_request_t;
struct _s_request_t {
    dbt_buf_t body;             //  request body so far
    bool too_large;             //  body over the limit
    int64_t started;            //  monotonic ms
    //  Epoll mode, a request handed to a waiter thread (see "Waiters")
    struct MHD_Connection *connection;  //  its connection, suspended
    const char *method;         //  borrowed from libmicrohttpd for the request
    const char *url;            //  borrowed likewise
    dbt_response_t *response;   //  the answer, set by the waiter (owned)
    s_request_t *next;          //  in self_t's waiting queue
    self_t *owner;              //  a submission sent without waiting: its front
};

static const char *
s_query (void *arg, const char *key)
{
    return MHD_lookup_connection_value ((struct MHD_Connection *) arg, MHD_GET_ARGUMENT_KIND, key);
}

//  Streamed bodies: libmicrohttpd pulls, dbt_api's reader fills.
static ssize_t
s_stream (void *cls, uint64_t pos, char *buf, size_t max)
{
    dbt_response_t *response = (dbt_response_t *) cls;
    ssize_t n = response->reader (response->reader_cls, buf, max);
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void
s_stream_free (void *cls)
{
    dbt_response_t *response = (dbt_response_t *) cls;
    dbt_response_destroy (&response);
}

//  --------------------------------------------------------------------------
//  Bearer token. Both tokens are reduced to fixed-size digests and the
//  digests compared in full, so the time taken depends neither on where
//  the tokens differ nor on the expected token's length (the given
//  token's length is the client's own knowledge).

static void
s_token_digest (const char *token, byte digest [S_DIGEST_SIZE])
{
    zdigest_t *hash = zdigest_new ();
    assert (hash && zdigest_size (hash) == S_DIGEST_SIZE);
    zdigest_update (hash, (const byte *) token, strlen (token));
    memcpy (digest, zdigest_data (hash), S_DIGEST_SIZE);
    zdigest_destroy (&hash);
}

//  True when header is "Bearer " and a token whose digest is expected.
static bool
s_token_ok (const byte expected [S_DIGEST_SIZE], const char *header)
{
    const char *prefix = "Bearer ";
    if (!header || strncmp (header, prefix, strlen (prefix)) != 0)
        return false;
    byte given [S_DIGEST_SIZE];
    s_token_digest (header + strlen (prefix), given);
    byte diff = 0;
    for (size_t i = 0; i < S_DIGEST_SIZE; i++)
        diff |= (byte) (expected [i] ^ given [i]);
    return diff == 0;
}

//  --------------------------------------------------------------------------
//  Request framing. libmicrohttpd frames the body by the first
//  Content-Length header and ignores any other, and by Transfer-Encoding
//  over Content-Length; a proxy in front may frame the same bytes another
//  way (request smuggling), so both ambiguities are refused.

typedef struct {
    size_t lengths;             //  Content-Length headers seen
    const char *length;         //  the first one's value
    bool encoded;               //  a Transfer-Encoding header was seen
} s_framing_t;

static enum MHD_Result
s_framing_header (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    s_framing_t *framing = (s_framing_t *) cls;
    if (strcasecmp (key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (framing->lengths++ == 0)
            framing->length = value;
    }
    else
    if (strcasecmp (key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        framing->encoded = true;
    return MHD_YES;
}

//  Check a request's framing headers against the body limit. Returns 0, or
//  the status to answer at once (400, 413) with message set.
static int
s_framing_check (const s_framing_t *framing, int64_t max_body, char *message, size_t size)
{
    if (framing->lengths > 1) {
        snprintf (message, size, "more than one Content-Length header");
        return 400;
    }
    if (framing->lengths && framing->encoded) {
        snprintf (message, size, "both Content-Length and Transfer-Encoding headers");
        return 400;
    }
    if (!framing->lengths)
        return 0;
    const char *value = framing->length ? framing->length : "";
    size_t digits = strspn (value, "0123456789");
    if (digits == 0 || value [digits] != 0) {
        snprintf (message, size, "Content-Length is not a decimal number");
        return 400;
    }
    while (digits > 1 && *value == '0') {   //  "007" is 7, as libmicrohttpd reads it
        value++;
        digits--;
    }
    int64_t declared = 0;
    if (digits > 18 || dbt_parse_int64 (value, 0, INT64_MAX, &declared) != 0
    ||  declared > max_body) {
        snprintf (message, size, "request body too large (limit %" PRId64 " bytes)", max_body);
        return 413;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Request deadline. libmicrohttpd's MHD_OPTION_CONNECTION_TIMEOUT is an
//  idle timeout that every byte received resets, so a client sending one
//  byte every few seconds holds its connection, and its thread, for as
//  long as it likes. We bound the whole request instead: a connection's
//  clock starts when it is accepted and again when a response has been
//  sent (keep-alive), and stops once the request has been received whole
//  (the handler's last call) or answered early. The sweeper shuts down the
//  socket of every connection whose clock passed request_timeout; its
//  thread then reads end-of-file and libmicrohttpd closes and frees the
//  connection as it does for a client that went away. A response being
//  sent is not timed (results downloads may be long); the idle timeout
//  still ends one whose client stopped reading.
//
//  Why shutdown() never hits a reused descriptor: in libmicrohttpd 0.9.75
//  (daemon.c: new_connection_process_ and MHD_cleanup_connections) a
//  connection's socket is closed only after its CLOSED notification
//  returned, and that notification comes after the connection's thread was
//  joined. s_notify removes the connection from the list under the mutex
//  the sweeper holds while it calls shutdown(), so every descriptor the
//  sweeper sees is still that connection's open socket. libmicrohttpd
//  itself calls shutdown() on connection sockets from another thread to
//  stop their threads (close_all_connections).

static s_conn_t *
s_conn_of (struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? (s_conn_t *) info->socket_context : NULL;
}

//  Start (receiving = true) or stop the clock of a connection's request.
static void
s_conn_timed (struct MHD_Connection *connection, bool receiving)
{
    s_conn_t *conn = s_conn_of (connection);
    if (!conn)
        return;
    atomic_store (&conn->since, receiving ? dbt_clock_ms () : -1);
}

//  STARTED: track the connection (called before its thread starts).
//  CLOSED: forget it (called before its socket is closed).
static void
s_notify (void *cls, struct MHD_Connection *connection, void **socket_context,
          enum MHD_ConnectionNotificationCode code)
{
    self_t *self = (self_t *) cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!fd)
            return;
        s_conn_t *conn = (s_conn_t *) dbt_malloc (sizeof (s_conn_t));
        conn->fd = fd->connect_fd;
        if (!addr || !addr->client_addr
        ||  getnameinfo (addr->client_addr, addr->client_addr->sa_family == AF_INET6
                         ? sizeof (struct sockaddr_in6) : sizeof (struct sockaddr_in),
                         conn->address, sizeof (conn->address), NULL, 0, NI_NUMERICHOST) != 0)
            snprintf (conn->address, sizeof (conn->address), "?");
        atomic_init (&conn->since, dbt_clock_ms ());
        pthread_mutex_lock (&self->mutex);
        conn->next = self->conns;
        if (self->conns)
            self->conns->prev = conn;
        self->conns = conn;
        pthread_mutex_unlock (&self->mutex);
        *socket_context = conn;
    }
    else
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        s_conn_t *conn = (s_conn_t *) *socket_context;
        pthread_mutex_lock (&self->mutex);
        if (conn->prev)
            conn->prev->next = conn->next;
        else
            self->conns = conn->next;
        if (conn->next)
            conn->next->prev = conn->prev;
        pthread_mutex_unlock (&self->mutex);
        free (conn);
        *socket_context = NULL;
    }
}

//  End every connection whose request is over the deadline; returns how
//  many this call ended. Logs a summary at most every S_LOG_EVERY_MS.
static size_t
s_sweep (self_t *self)
{
    int64_t now = dbt_clock_ms ();
    int64_t limit = self->args->config->request_timeout_ms;
    size_t ended = 0;
    pthread_mutex_lock (&self->mutex);
    for (s_conn_t *conn = self->conns; conn; conn = conn->next) {
        int64_t since = atomic_load (&conn->since);
        if (since < 0 || conn->expired || now - since < limit)
            continue;
        shutdown (conn->fd, SHUT_RDWR);
        conn->expired = true;
        memcpy (self->expired_from, conn->address, sizeof (self->expired_from));
        ended++;
    }
    pthread_mutex_unlock (&self->mutex);
    self->expired += ended;
    if (self->expired && now - self->logged_at >= S_LOG_EVERY_MS) {
        dbt_log (DBT_LOG_WARN, "http: closed %zu connection%s whose request took over %" PRId64
                 " ms to arrive (last from %s)", self->expired, self->expired == 1 ? "" : "s",
                 limit, self->expired_from);
        self->expired = 0;
        self->logged_at = now;
    }
    return ended;
}

//  --------------------------------------------------------------------------
//  Requests

static enum MHD_Result
s_send (struct MHD_Connection *connection, dbt_response_t *response)
{
    struct MHD_Response *reply;
    int status = response->status;
    if (response->reader) {
        reply = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 64 * 1024, s_stream,
                                                   response, s_stream_free);
    }
    else {
        reply = MHD_create_response_from_buffer (response->len, response->body, MHD_RESPMEM_MUST_FREE);
        response->body = NULL;
    }
    MHD_add_response_header (reply, MHD_HTTP_HEADER_CONTENT_TYPE, response->content_type);
    if (response->allow)
        MHD_add_response_header (reply, MHD_HTTP_HEADER_ALLOW, response->allow);
    if (status == 401)
        MHD_add_response_header (reply, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (!response->reader)
        dbt_response_destroy (&response);
    enum MHD_Result rc = MHD_queue_response (connection, (unsigned int) status, reply);
    MHD_destroy_response (reply);
    return rc;
}

//  On the handler's first call (headers received, body not yet read): the
//  answer that needs no body, or NULL to read the body. Answering here
//  means libmicrohttpd sends no "100 Continue", reads no body and closes
//  the connection after the answer.
static dbt_response_t *
s_early (self_t *self, struct MHD_Connection *connection, const char *url)
{
    const dbt_config_t *config = self->args->config;
    if (config->auth_token && !streq (url, "/health") && !dbt_board_public (url)
    &&  !s_token_ok (self->token, MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                               MHD_HTTP_HEADER_AUTHORIZATION)))
        return dbt_api_error (401, "missing or wrong bearer token");
    s_framing_t framing = { 0 };
    MHD_get_connection_values (connection, MHD_HEADER_KIND, s_framing_header, &framing);
    char message [96];
    int status = s_framing_check (&framing, config->max_body_size, message, sizeof (message));
    return status ? dbt_api_error (status, message) : NULL;
}

//  --------------------------------------------------------------------------
//  Waiters. In epoll mode a thread serves many connections, so a request
//  that waits (a job submission for its commit, anything asking a
//  dispatcher, a results query) must not run on it: its connection is
//  suspended and the request queued for one of S_WAITERS threads, which
//  runs it, sets the answer and resumes the connection; libmicrohttpd then
//  calls the handler again, which sends the answer. Reads of a job's or a
//  group's state (LMDB read transactions) run on the epoll thread. A
//  streamed download's later chunks are read on the epoll thread too.

//  True when a request is answered without waiting on anything.
static bool
s_quick (const char *method, const char *url)
{
    if (!streq (method, "GET") && !streq (method, "HEAD"))
        return false;
    if (streq (url, "/") || streq (url, "/health"))
        return true;
    const char *id = strncmp (url, "/jobs/", 6) == 0 ? url + 6
                   : strncmp (url, "/groups/", 8) == 0 ? url + 8 : NULL;
    return id && *id && !strchr (id, '/') && strncmp (url, "/jobs/pending", 13) != 0;
}

//  The dashboard's routes first, then the API's.
static dbt_response_t *
s_answer (self_t *self, const char *method, const char *url, struct MHD_Connection *connection,
          const char *body, size_t len)
{
    dbt_response_t *response = NULL;
    if (self->args->board)
        response = dbt_board_handle (self->args->board, method, url, s_query, connection);
    if (!response)
        response = dbt_api_handle (self->args->api, method, url, s_query, connection, body, len);
    return response;
}

static void *
s_waiter (void *arg)
{
    self_t *self = (self_t *) arg;
    dbt_thread_name ("dbt-http-wait");
    while (true) {
        pthread_mutex_lock (&self->wait_mutex);
        while (!self->queue_head && !self->stopping)
            pthread_cond_wait (&self->wait_cond, &self->wait_mutex);
        s_request_t *request = self->queue_head;
        if (request) {
            self->queue_head = request->next;
            if (!self->queue_head)
                self->queue_tail = NULL;
        }
        pthread_mutex_unlock (&self->wait_mutex);
        if (!request)
            break;              //  stopping and nothing left
        //  Query-string values are read from the suspended connection,
        //  which libmicrohttpd leaves alone until it is resumed.
        request->response = s_answer (self, request->method, request->url, request->connection,
                                      request->body.data ? request->body.data : "",
                                      request->body.len);
        MHD_resume_connection (request->connection);
    }
    return NULL;
}

//  Queue request for a waiter, its connection suspended. Returns false
//  when the waiters are stopping (the caller answers it itself).
static bool
s_offload (self_t *self, struct MHD_Connection *connection, s_request_t *request,
           const char *method, const char *url)
{
    pthread_mutex_lock (&self->wait_mutex);
    bool queued = !self->stopping;
    if (queued) {
        request->connection = connection;
        request->method = method;
        request->url = url;
        request->next = NULL;
        MHD_suspend_connection (connection);
        if (self->queue_tail)
            self->queue_tail->next = request;
        else
            self->queue_head = request;
        self->queue_tail = request;
        pthread_cond_signal (&self->wait_cond);
    }
    pthread_mutex_unlock (&self->wait_mutex);
    return queued;
}

//  A job submission to this node's own dispatcher is sent from the epoll
//  thread without waiting, its connection suspended; the thread that
//  hands out the dispatcher's replies sets the answer and resumes it. No
//  waiter is woken, and none waits for a commit.
static void
s_submitted (void *arg, dbt_response_t *response)
{
    s_request_t *request = (s_request_t *) arg;
    self_t *self = request->owner;      //  request may be gone once resumed
    request->response = response;
    MHD_resume_connection (request->connection);
    pthread_mutex_lock (&self->wait_mutex);
    if (--self->sent == 0 && self->stopping)
        pthread_cond_signal (&self->sent_cond);
    pthread_mutex_unlock (&self->wait_mutex);
}

//  True when request went that way (the caller returns MHD_YES).
static bool
s_submit (self_t *self, struct MHD_Connection *connection, s_request_t *request,
          const char *method, const char *url)
{
    dbt_api_job_t *job = dbt_api_submit_prepare (self->args->api, method, url,
                                                 request->body.data ? request->body.data : "",
                                                 request->body.len);
    if (!job)
        return false;
    pthread_mutex_lock (&self->wait_mutex);
    bool go = !self->stopping;
    if (go) {
        self->sent++;
        request->owner = self;
        request->connection = connection;
        MHD_suspend_connection (connection);
    }
    pthread_mutex_unlock (&self->wait_mutex);
    if (!go) {
        dbt_api_job_destroy (&job);
        return false;
    }
    dbt_api_submit_start (&job, s_submitted, request);
    return true;
}

//  Start the waiters (epoll mode). Returns how many started.
static size_t
s_waiters_start (self_t *self)
{
    self->waiters = (pthread_t *) dbt_malloc (S_WAITERS * sizeof (pthread_t));
    while (self->nwaiters < S_WAITERS
       &&  pthread_create (&self->waiters [self->nwaiters], NULL, s_waiter, self) == 0)
        self->nwaiters++;
    return self->nwaiters;
}

//  Stop the waiters once every queued request is answered (so no
//  connection stays suspended when the daemon stops).
static void
s_waiters_stop (self_t *self)
{
    pthread_mutex_lock (&self->wait_mutex);
    self->stopping = true;
    pthread_cond_broadcast (&self->wait_cond);
    while (self->sent)          //  each ends within its request timeout
        pthread_cond_wait (&self->sent_cond, &self->wait_mutex);
    pthread_mutex_unlock (&self->wait_mutex);
    for (size_t i = 0; i < self->nwaiters; i++)
        pthread_join (self->waiters [i], NULL);
    free (self->waiters);
    self->waiters = NULL;
    self->nwaiters = 0;
}

static enum MHD_Result
s_handler (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    self_t *self = (self_t *) cls;
    const dbt_config_t *config = self->args->config;
    s_request_t *request = (s_request_t *) *con_cls;
    dbt_response_t *response = NULL;
    if (request && request->response) {
        //  Resumed: a waiter (or the dispatcher's reply) has the answer.
        response = request->response;
        request->response = NULL;
        dbt_log (DBT_LOG_DEBUG, "http: %s %s -> %d (%" PRId64 " ms, waited)", method, url,
                 response->status, dbt_clock_ms () - request->started);
        return s_send (connection, response);
    }
    if (!request) {
        request = (s_request_t *) dbt_malloc (sizeof (s_request_t));
        request->started = dbt_clock_ms ();
        *con_cls = request;
        response = s_early (self, connection, url);
        if (!response)
            return MHD_YES;
    }
    else
    if (*upload_data_size) {
        if (!request->too_large) {
            if (request->body.len + *upload_data_size > (size_t) config->max_body_size) {
                request->too_large = true;
                dbt_buf_free (&request->body);
            }
            else
                dbt_buf_append (&request->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    s_conn_timed (connection, false);     //  received whole: no deadline now
    if (!response && request->too_large) {
        char message [96];
        snprintf (message, sizeof (message), "request body too large (limit %" PRId64 " bytes)",
                  config->max_body_size);
        response = dbt_api_error (413, message);
    }
    if (!response && self->pooled && s_submit (self, connection, request, method, url))
        return MHD_YES;
    if (!response && self->pooled && !s_quick (method, url)
    &&  s_offload (self, connection, request, method, url))
        return MHD_YES;
    if (!response)
        response = s_answer (self, method, url, connection,
                             request->body.data ? request->body.data : "", request->body.len);
    dbt_log (DBT_LOG_DEBUG, "http: %s %s -> %d (%" PRId64 " ms)", method, url,
             response->status, dbt_clock_ms () - request->started);
    return s_send (connection, response);
}

//  A request ended (answered, or its connection failed): free it, and time
//  the connection's next request from now.
static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode code)
{
    s_request_t *request = (s_request_t *) *con_cls;
    if (request) {
        dbt_buf_free (&request->body);
        dbt_response_destroy (&request->response);
        free (request);
        *con_cls = NULL;
    }
    s_conn_timed (connection, true);
}

//  --------------------------------------------------------------------------
//  Start-up

//  Parse "host:port" or "[v6]:port" into a socket address.
static int
s_address (const char *server, struct sockaddr_storage *addr, socklen_t *len, char *err)
{
    char *copy = dbt_strdup (server);
    char *host = copy, *port = strrchr (copy, ':');
    int rc = -1;
    if (!port) {
        dbt_err_set (err, "server address '%s' must be host:port", server);
        goto done;
    }
    *port++ = 0;
    if (host [0] == '[' && host [strlen (host) - 1] == ']') {
        host++;
        host [strlen (host) - 1] = 0;
    }
    struct addrinfo hints = { .ai_flags = AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
    struct addrinfo *info = NULL;
    int gai = getaddrinfo (*host ? host : NULL, port, &hints, &info);
    if (gai || !info) {
        dbt_err_set (err, "server address '%s': %s", server, gai_strerror (gai));
        goto done;
    }
    memcpy (addr, info->ai_addr, info->ai_addrlen);
    *len = info->ai_addrlen;
    freeaddrinfo (info);
    rc = 0;
done:
    free (copy);
    return rc;
}

//  Raise the soft open-file limit to the hard one (every connection is a
//  socket) and return the soft limit now in force, or 0 when unknown. The
//  node's libraries wait on descriptors with poll or epoll (libmicrohttpd
//  is started with MHD_USE_POLL or MHD_USE_EPOLL), never select, so descriptors past
//  FD_SETSIZE are safe.
static rlim_t
s_raise_nofile (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) != 0) {
        dbt_log (DBT_LOG_WARN, "http: cannot read the open file limit: %s", strerror (errno));
        return 0;
    }
    rlim_t before = limit.rlim_cur;
    if (limit.rlim_cur >= limit.rlim_max) {
        dbt_log (DBT_LOG_INFO, "http: open file limit is %ju (the hard limit)", (uintmax_t) before);
        return before;
    }
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit (RLIMIT_NOFILE, &limit) != 0) {
        dbt_log (DBT_LOG_WARN, "http: cannot raise the open file limit from %ju to %ju: %s",
                 (uintmax_t) before, (uintmax_t) limit.rlim_max, strerror (errno));
        return before;
    }
    dbt_log (DBT_LOG_INFO, "http: open file limit raised from %ju to %ju",
             (uintmax_t) before, (uintmax_t) limit.rlim_cur);
    return limit.rlim_cur;
}

//  The connection limit: max_connections, lowered when it would not leave
//  S_FD_RESERVE descriptors of the open file limit (0 = unknown) to the
//  rest of the node; never below 16.
static unsigned int
s_connection_limit (int configured, rlim_t nofile)
{
    rlim_t limit = (rlim_t) configured;
    if (nofile > 0 && limit + S_FD_RESERVE > nofile)
        limit = nofile > S_FD_RESERVE + 16 ? nofile - S_FD_RESERVE : 16;
    return (unsigned int) limit;
}

//  After a failed start, answer "" until $TERM so the node can tell.
static void
s_failed (zsock_t *pipe)
{
    zsock_signal (pipe, 1);
    while (true) {
        char *command = zstr_recv (pipe);
        bool stop = !command || streq (command, "$TERM");
        free (command);
        if (stop)
            break;
        zstr_send (pipe, "");
    }
}

void
dbt_http_actor (zsock_t *pipe, void *args)
{
    dbt_thread_name ("dbt-http");
    self_t self = { .args = (dbt_http_args_t *) args };
    const dbt_config_t *config = self.args->config;
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    char err [DBT_ERRMSG_LEN];
    if (s_address (config->server, &addr, &addr_len, err)) {
        dbt_log (DBT_LOG_ERROR, "http: %s", err);
        s_failed (pipe);
        return;
    }
    if (config->auth_token)
        s_token_digest (config->auth_token, self.token);
    dbt_tls_t *tls = NULL;
    if (dbt_tls_new (config, &tls, err)) {
        dbt_log (DBT_LOG_ERROR, "http: %s", err);
        s_failed (pipe);
        return;
    }
    pthread_mutex_init (&self.mutex, NULL);
    rlim_t nofile = s_raise_nofile ();
    unsigned int max_connections = s_connection_limit (config->max_connections, nofile);
    if (max_connections < (unsigned int) config->max_connections)
        dbt_log (DBT_LOG_WARN, "http: max_connections %d lowered to %u to fit the open file "
                 "limit (%ju)", config->max_connections, max_connections, (uintmax_t) nofile);
    //  http_threads 0: a thread per connection (poll); N: epoll, N threads
    //  each serving its share of the connections (see s_threading).
    unsigned int pool = (unsigned int) config->http_threads;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD
                       | (pool ? MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME
                               : MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL)
                       | dbt_tls_flags (tls);
    pthread_mutex_init (&self.wait_mutex, NULL);
    pthread_cond_init (&self.wait_cond, NULL);
    pthread_cond_init (&self.sent_cond, NULL);
    self.pooled = pool > 0;
    if (pool && s_waiters_start (&self) == 0) {
        dbt_log (DBT_LOG_ERROR, "http: cannot start a thread: %s", strerror (errno));
        free (self.waiters);
        self.waiters = NULL;
        dbt_tls_destroy (&tls);
        pthread_cond_destroy (&self.wait_cond);
        pthread_cond_destroy (&self.sent_cond);
        pthread_mutex_destroy (&self.wait_mutex);
        pthread_mutex_destroy (&self.mutex);
        s_failed (pipe);
        return;
    }
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned int timeout = (unsigned int) ((config->request_timeout_ms + 999) / 1000);
    self.daemon = MHD_start_daemon (flags, 0, NULL, NULL, s_handler, &self,
        MHD_OPTION_THREAD_POOL_SIZE, pool > 1 ? pool : 0,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) S_CONN_MEMORY,
        MHD_OPTION_CONNECTION_LIMIT, max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) config->max_connections_per_ip,
        MHD_OPTION_NOTIFY_CONNECTION, s_notify, &self,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, &self,
        MHD_OPTION_ARRAY, dbt_tls_options (tls),
        MHD_OPTION_END);
    if (!self.daemon) {
        dbt_log (DBT_LOG_ERROR, "http: cannot listen on %s: %s%s", config->server, strerror (errno),
                 tls ? " (or GnuTLS refused tls_cert/tls_key: see the tls line above)" : "");
        dbt_tls_destroy (&tls);
        s_waiters_stop (&self);
        pthread_cond_destroy (&self.wait_cond);
        pthread_cond_destroy (&self.sent_cond);
        pthread_mutex_destroy (&self.wait_mutex);
        pthread_mutex_destroy (&self.mutex);
        s_failed (pipe);
        return;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self.daemon, MHD_DAEMON_INFO_BIND_PORT);
    self.port = info ? info->port : 0;
    char per_ip [32] = "unlimited";
    if (config->max_connections_per_ip)
        snprintf (per_ip, sizeof (per_ip), "%d", config->max_connections_per_ip);
    char threads [48] = "a thread per connection";
    if (pool)
        snprintf (threads, sizeof (threads), "epoll, %u thread%s, %zu waiters", pool,
                  pool > 1 ? "s" : "", self.nwaiters);
    dbt_log (DBT_LOG_INFO, "http: listening on %s%s (port %u; %s; at most %u connections, %s "
             "per client address; requests must arrive within %" PRId64 " ms)", config->server,
             tls ? " with HTTPS" : "", self.port, threads, max_connections, per_ip,
             config->request_timeout_ms);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zsock_signal (pipe, 0);
    int64_t next_sweep = dbt_clock_ms () + S_SWEEP_MS;
    while (true) {
        int64_t wait = next_sweep - dbt_clock_ms ();
        if (zpoller_wait (poller, wait > 0 ? (int) wait : 0) == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM")) {
                free (command);
                break;
            }
            if (streq (command, "PORT"))
                zstr_sendf (pipe, "%u", self.port);
            free (command);
        }
        else
        if (zpoller_terminated (poller))
            break;
        if (dbt_clock_ms () >= next_sweep) {
            s_sweep (&self);
            next_sweep = dbt_clock_ms () + S_SWEEP_MS;
        }
    }
    zpoller_destroy (&poller);
    //  No connection may stay suspended when the daemon stops.
    s_waiters_stop (&self);
    MHD_stop_daemon (self.daemon);
    dbt_tls_destroy (&tls);
    while (self.conns) {        //  none: stopping notifies CLOSED for each
        s_conn_t *next = self.conns->next;
        free (self.conns);
        self.conns = next;
    }
    pthread_cond_destroy (&self.wait_cond);
    pthread_cond_destroy (&self.sent_cond);
    pthread_mutex_destroy (&self.wait_mutex);
    pthread_mutex_destroy (&self.mutex);
    dbt_log (DBT_LOG_DEBUG, "http: stopped");
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test: addresses, tokens and framing; then a real daemon on an
//  ephemeral port: auth, body limits, early answers and the deadline.

static size_t
s_test_sink (char *data, size_t size, size_t n, void *arg)
{
    dbt_buf_append ((dbt_buf_t *) arg, data, size * n);
    return size * n;
}

//  Send request to 127.0.0.1:port, then the bytes of drip one every 100 ms
//  (drip may be NULL), collecting what the server sends in answer until it
//  closes. Returns the ms from connecting until the server closed, or -1
//  when it still had not after limit_ms.
static int64_t
s_test_raw (const char *port, const char *request, const char *drip, int64_t limit_ms,
            dbt_buf_t *answer)
{
    int64_t number = 0;
    assert (dbt_parse_int64 (port, 1, 65535, &number) == 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) number) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    assert (connect (fd, (struct sockaddr *) &addr, sizeof (addr)) == 0);
    int64_t start = dbt_clock_ms (), next_drip = start + 100, closed = -1;
    assert (send (fd, request, strlen (request), MSG_NOSIGNAL) == (ssize_t) strlen (request));
    dbt_buf_reset (answer);
    while (closed < 0 && dbt_clock_ms () - start < limit_ms) {
        if (drip && *drip && dbt_clock_ms () >= next_drip) {
            if (send (fd, drip++, 1, MSG_NOSIGNAL) != 1)
                drip = NULL;
            next_drip += 100;
        }
        struct pollfd item = { .fd = fd, .events = POLLIN };
        if (poll (&item, 1, 20) == 1) {
            char data [4096];
            ssize_t n = recv (fd, data, sizeof (data), 0);
            if (n > 0)
                dbt_buf_append (answer, data, (size_t) n);
            else
                closed = dbt_clock_ms () - start;
        }
    }
    close (fd);
    dbt_buf_putc (answer, 0);
    return closed;
}

//  The daemon's part of the self test, with http_threads = threads.
static void
s_test_daemon (int threads)
{
    char err [DBT_ERRMSG_LEN];
    char *ini = dbt_printf (
        "[app]\nserver = 127.0.0.1:0\nauth_token = tok\nmax_body_size = 1KB\n"
        "request_timeout = 500ms\nhttp_threads = %d\n"
        "[db.s]\ntype = sqlite\ndsn = /nonexistent/s.db\n"
        "[results.r]\ntype = sqlite\ndsn = /nonexistent/r.db\n", threads);
    dbt_config_t *config = dbt_config_from_string (ini, err);
    free (ini);
    assert (config);
    dbt_tasks_t *tasks = dbt_tasks_new ();
    dbt_routes_t *routes = dbt_routes_new (config);
    dbt_view_t *view = dbt_view_new (NULL, "test");
    dbt_api_args_t api_args = { config, tasks, NULL, NULL, routes, view, NULL };
    dbt_api_t *api = dbt_api_new (&api_args);
    dbt_board_args_t board_args = { config, view, routes, NULL, NULL };
    dbt_board_t *board = dbt_board_new (&board_args);
    dbt_http_args_t args = { config, api, board };
    zactor_t *http = zactor_new (dbt_http_actor, &args);
    zstr_send (http, "PORT");
    char *port = zstr_recv (http);
    assert (port && !streq (port, "") && !streq (port, "0"));
    CURL *curl = curl_easy_init ();
    dbt_buf_t body = { 0 };
    char *url = dbt_printf ("http://127.0.0.1:%s/", port);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_test_sink);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &body);
    long code = 0;
    assert (curl_easy_perform (curl) == CURLE_OK);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    assert (code == 401 && strstr (body.data, "bearer token"));
    //  The dashboard's files need no token; its data does.
    char *ui = dbt_printf ("http://127.0.0.1:%s/ui/", port);
    curl_easy_setopt (curl, CURLOPT_URL, ui);
    dbt_buf_reset (&body);
    assert (curl_easy_perform (curl) == CURLE_OK);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    assert (code == 200 && strstr (body.data, "<!doctype html>"));
    free (ui);
    ui = dbt_printf ("http://127.0.0.1:%s/queues", port);
    curl_easy_setopt (curl, CURLOPT_URL, ui);
    dbt_buf_reset (&body);
    assert (curl_easy_perform (curl) == CURLE_OK);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    assert (code == 401);
    free (ui);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    struct curl_slist *headers = curl_slist_append (NULL, "Authorization: Bearer tok");
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    dbt_buf_reset (&body);
    assert (curl_easy_perform (curl) == CURLE_OK);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    assert (code == 200 && strstr (body.data, "dungbeetle"));
    size_t get_length = body.len;
    //  HEAD: GET's status and Content-Length, no body
    curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    dbt_buf_reset (&body);
    assert (curl_easy_perform (curl) == CURLE_OK);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    curl_off_t head_length = -1;
    curl_easy_getinfo (curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &head_length);
    assert (code == 200 && body.len == 0 && head_length == (curl_off_t) get_length);
    curl_easy_setopt (curl, CURLOPT_NOBODY, 0L);
    char big [2048];
    memset (big, 'x', sizeof (big) - 1);
    big [sizeof (big) - 1] = 0;
    curl_easy_setopt (curl, CURLOPT_POSTFIELDS, big);
    dbt_buf_reset (&body);
    assert (curl_easy_perform (curl) == CURLE_OK);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    assert (code == 413 && strstr (body.data, "too large"));
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);

    //  A declared body over the limit is refused before it is sent: no
    //  "100 Continue", and the answer comes although no body follows.
    const char *post = "POST /tasks/x/jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer tok\r\n";
    char *request = dbt_printf ("%sContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n", post);
    assert (s_test_raw (port, request, NULL, 2000, &body) >= 0);
    assert (strncmp (body.data, "HTTP/1.1 413 ", 13) == 0 && !strstr (body.data, "100 Continue"));
    assert (strstr (body.data, "request body too large"));
    free (request);
    request = dbt_printf ("%sContent-Length: 5000\r\n\r\n", post);
    assert (s_test_raw (port, request, NULL, 2000, &body) >= 0);
    assert (strncmp (body.data, "HTTP/1.1 413 ", 13) == 0);
    free (request);
    //  So is an unauthenticated one, of any size.
    assert (s_test_raw (port, "POST /tasks/x/jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
                        "Expect: 100-continue\r\n\r\n", NULL, 2000, &body) >= 0);
    assert (strncmp (body.data, "HTTP/1.1 401 ", 13) == 0 && !strstr (body.data, "100 Continue"));
    //  Ambiguous framing is 400.
    request = dbt_printf ("%sContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", post);
    assert (s_test_raw (port, request, NULL, 2000, &body) >= 0);
    assert (strncmp (body.data, "HTTP/1.1 400 ", 13) == 0 && strstr (body.data, "Content-Length"));
    free (request);
    request = dbt_printf ("%sContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", post);
    assert (s_test_raw (port, request, NULL, 2000, &body) >= 0);
    assert (strncmp (body.data, "HTTP/1.1 400 ", 13) == 0 && strstr (body.data, "Transfer-Encoding"));
    free (request);

    //  Deadline: a request trickling in, headers or body, is cut off about
    //  request_timeout (500 ms) after the connection opened, although each
    //  byte resets libmicrohttpd's idle timeout.
    int64_t took = s_test_raw (port, "GET / HTTP/1.1\r\n", "Host: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                               3000, &body);
    assert (took >= 450 && took < 1500 && body.len == 1);
    request = dbt_printf ("%sContent-Length: 40\r\n\r\n", post);
    took = s_test_raw (port, request, "{\"job_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaa\"}", 3000, &body);
    assert (took >= 450 && took < 1500 && body.len == 1);
    free (request);
    //  A keep-alive connection's next request is timed from the last answer.
    took = s_test_raw (port, "GET / HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer tok\r\n\r\n",
                       "GET / HTTP/1.1\r\nHost: t\r\n", 3000, &body);
    assert (took >= 450 && took < 1500 && strncmp (body.data, "HTTP/1.1 200 ", 13) == 0);
    dbt_buf_free (&body);
    free (url);
    free (port);
    zactor_destroy (&http);
    dbt_board_destroy (&board);
    dbt_api_destroy (&api);
    dbt_view_destroy (&view);
    dbt_routes_destroy (&routes);
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);
}

void
dbt_http_test (bool verbose)
{
    char err [DBT_ERRMSG_LEN];
    struct sockaddr_storage addr;
    socklen_t len;
    assert (s_address ("127.0.0.1:6060", &addr, &len, err) == 0 && addr.ss_family == AF_INET);
    assert (s_address ("[::1]:6060", &addr, &len, err) == 0 && addr.ss_family == AF_INET6);
    assert (s_address ("127.0.0.1", &addr, &len, err) == -1 && strstr (err, "host:port"));
    assert (s_address ("127.0.0.1:http", &addr, &len, err) == -1);

    byte token [S_DIGEST_SIZE];
    s_token_digest ("s3cret", token);
    assert (s_token_ok (token, "Bearer s3cret"));
    assert (!s_token_ok (token, "Bearer s3cre"));
    assert (!s_token_ok (token, "Bearer s3cret!"));
    assert (!s_token_ok (token, "Bearer "));
    assert (!s_token_ok (token, "Basic s3cret"));
    assert (!s_token_ok (token, "Bearer s3cret s3cret"));
    assert (!s_token_ok (token, NULL));
    char long_token [300];
    memset (long_token, 'k', sizeof (long_token) - 1);
    long_token [sizeof (long_token) - 1] = 0;
    s_token_digest (long_token, token);
    char *header = dbt_printf ("Bearer %s", long_token);
    assert (s_token_ok (token, header));
    header [strlen (header) - 1] = 'K';         //  differs past any digest's length
    assert (!s_token_ok (token, header));
    header [strlen (header) - 1] = 0;           //  one shorter
    assert (!s_token_ok (token, header));
    free (header);

    struct {
        size_t lengths;
        const char *length;
        bool encoded;
        int status;
    } framing [] = {
        { 0, NULL, false, 0 },
        { 0, NULL, true, 0 },
        { 1, "0", false, 0 },
        { 1, "1000", false, 0 },
        { 1, "0000000000000000000000001000", false, 0 },
        { 1, "1001", false, 413 },
        { 1, "99999999999999999999999999", false, 413 },
        { 2, "10", false, 400 },
        { 3, "10", false, 400 },
        { 1, "10", true, 400 },
        { 1, "", false, 400 },
        { 1, "+10", false, 400 },
        { 1, "-1", false, 400 },
        { 1, "0x10", false, 400 },
        { 1, "10 ", false, 400 },
        { 1, "10, 10", false, 400 },
        { 1, "1e3", false, 400 },
    };
    for (size_t i = 0; i < sizeof (framing) / sizeof (framing [0]); i++) {
        s_framing_t check = { framing [i].lengths, framing [i].length, framing [i].encoded };
        char message [96] = "";
        int status = s_framing_check (&check, 1000, message, sizeof (message));
        if (status != framing [i].status)
            fprintf (stderr, "http framing case %zu: %d %s\n", i, status, message);
        assert (status == framing [i].status);
        assert (status ? *message != 0 : *message == 0);
    }
    assert (s_connection_limit (4096, 0) == 4096);
    assert (s_connection_limit (4096, 1048576) == 4096);
    assert (s_connection_limit (4096, 1024) == 1024 - S_FD_RESERVE);
    assert (s_connection_limit (4096, 100) == 16);

    //  Both threading modes: a thread per connection, an epoll pool.
    s_test_daemon (0);
    s_test_daemon (2);
    if (verbose)
        printf ("http: ok\n");
}
#endif  //  DBT_SELFTEST
