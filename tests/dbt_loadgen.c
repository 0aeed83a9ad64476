/*  dbt_loadgen - concurrent HTTP load for crash and disk-full tests

    dbt_loadgen submit -p PORT -t TASK -P PREFIX -n COUNT [-s FIRST] [-m MOD]
                       [-c CONNS] [-d SECONDS] [-r RATE] -o ACKFILE
        POSTs jobs PREFIX<i> for i = FIRST .. FIRST+COUNT-1, with the one
        arg "<i % MOD + 1>" (MOD 50 by default), over CONNS keep-alive
        connections (8), until every id was tried or SECONDS passed, at most RATE
        jobs a second in all when -r is given. Each
        id answered 200 is appended to ACKFILE at once (one line, flushed),
        so the file survives whatever happens to the node. A connection
        that fails is opened again (every 50 ms while the node is down);
        the job it carried counts as unanswered and is not retried. Prints
        "tried N acked N refused N unanswered N" and, with -v, one line per
        refused status code.

    dbt_loadgen check -p PORT -i IDFILE [-c CONNS] [-w SECONDS]
        Polls GET /jobs/<id> for each id of IDFILE until it is SUCCESS or
        FAILURE or SECONDS (60) passed, then prints "id state count" per id
        (state "missing" for 404, "unreachable" when no answer came).

    Exit status 0, or 2 for bad usage or an unwritable ACKFILE. The threads
    share nothing but the id counter and the output files (under a lock).
*/

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define BUF_SIZE 65536

typedef struct {
    int port;                   //  node's HTTP port on 127.0.0.1
    const char *task;           //  submit: task name
    const char *prefix;         //  submit: job id prefix
    long first;                 //  submit: first index
    long count;                 //  submit: how many ids
    long mod;                   //  submit: arg = i % mod + 1
    double seconds;             //  submit: time limit; check: deadline
    char **ids;                 //  check: the ids read from IDFILE
    char **states;              //  check: last state seen per id (owned)
    int64_t *counts;            //  check: last count seen per id
    bool *done;                 //  check: terminal already
    FILE *ack;                  //  submit: acknowledged ids
    pthread_mutex_t lock;       //  guards next, the counters and ack
    long next;                  //  next index to hand out
    long tried, acked, refused, unanswered;
    long codes [600];           //  refusals by status code
    double deadline;            //  absolute time limit
    double rate;                //  submit: jobs per second in all, 0 = no limit
    double start;               //  submit: when it began
} shared_t;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep (&ts, NULL);
}

//  One keep-alive connection: fd -1 when closed.
typedef struct {
    int fd;                     //  socket or -1
    char buf [BUF_SIZE];        //  bytes read past the last response
    size_t len;                 //  how many of them
} conn_t;

static void
s_close (conn_t *conn)
{
    if (conn->fd >= 0)
        close (conn->fd);
    conn->fd = -1;
    conn->len = 0;
}

static int
s_connect (conn_t *conn, int port)
{
    s_close (conn);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    struct timeval tv = { 15, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof (tv));
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    if (connect (fd, (struct sockaddr *) &addr, sizeof (addr))) {
        close (fd);
        return -1;
    }
    conn->fd = fd;
    return 0;
}

static int
s_send_all (int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

//  Read more bytes into conn->buf. Returns 0, or -1 on EOF/error/full.
static int
s_fill (conn_t *conn)
{
    if (conn->len >= sizeof (conn->buf) - 1)
        return -1;
    ssize_t n;
    do
        n = recv (conn->fd, conn->buf + conn->len, sizeof (conn->buf) - 1 - conn->len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    conn->len += (size_t) n;
    conn->buf [conn->len] = 0;
    return 0;
}

//  Find a header's value in the header block [head, end); NULL if absent.
static const char *
s_header (const char *head, const char *end, const char *name)
{
    size_t nlen = strlen (name);
    for (const char *line = strstr (head, "\r\n"); line && line < end; line = strstr (line + 2, "\r\n")) {
        const char *p = line + 2;
        if (p + nlen < end && strncasecmp (p, name, nlen) == 0 && p [nlen] == ':') {
            p += nlen + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
    }
    return NULL;
}

//  One request and its answer on a keep-alive connection. Returns the
//  status code with the body in *body_p (caller frees), or -1 when no
//  complete answer came (the connection is then closed).
static int
s_request (conn_t *conn, int port, const char *method, const char *path, const char *body,
           char **body_p)
{
    *body_p = NULL;
    if (conn->fd < 0 && s_connect (conn, port))
        return -1;
    char req [1024];
    size_t blen = body ? strlen (body) : 0;
    int hlen = snprintf (req, sizeof (req),
                         "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                         method, path, port, blen);
    if (hlen < 0 || (size_t) hlen >= sizeof (req)
    ||  s_send_all (conn->fd, req, (size_t) hlen)
    ||  (blen && s_send_all (conn->fd, body, blen))) {
        s_close (conn);
        return -1;
    }
    char *end;
    while (!(end = strstr (conn->buf, "\r\n\r\n")))
        if (s_fill (conn)) {
            s_close (conn);
            return -1;
        }
    int status = 0;
    if (strncmp (conn->buf, "HTTP/1.", 7) || (status = (int) strtol (conn->buf + 9, NULL, 10)) < 100) {
        s_close (conn);
        return -1;
    }
    const char *cl = s_header (conn->buf, end, "Content-Length");
    const char *te = s_header (conn->buf, end, "Transfer-Encoding");
    const char *cn = s_header (conn->buf, end, "Connection");
    bool keep = !(cn && strncasecmp (cn, "close", 5) == 0);
    size_t head = (size_t) (end + 4 - conn->buf);
    char *out = NULL;
    size_t used = head;
    if (cl) {
        size_t want = (size_t) strtoull (cl, NULL, 10);
        while (conn->len < head + want)
            if (s_fill (conn)) {
                s_close (conn);
                return -1;
            }
        out = strndup (conn->buf + head, want);
        used = head + want;
    }
    else
    if (te && strncasecmp (te, "chunked", 7) == 0) {
        size_t olen = 0;
        out = calloc (1, 1);
        size_t pos = head;
        while (true) {
            char *eol;
            while (!(eol = strstr (conn->buf + pos, "\r\n")))
                if (s_fill (conn)) {
                    free (out);
                    s_close (conn);
                    return -1;
                }
            size_t size = (size_t) strtoull (conn->buf + pos, NULL, 16);
            size_t data = (size_t) (eol + 2 - conn->buf);
            while (conn->len < data + size + 2)
                if (s_fill (conn)) {
                    free (out);
                    s_close (conn);
                    return -1;
                }
            if (size == 0) {
                used = data + 2;
                break;
            }
            out = realloc (out, olen + size + 1);
            memcpy (out + olen, conn->buf + data, size);
            olen += size;
            out [olen] = 0;
            pos = data + size + 2;
        }
    }
    else {
        //  No length: the body runs to the end of the connection.
        while (s_fill (conn) == 0)
            ;
        out = strdup (conn->buf + head);
        used = conn->len;
        keep = false;
    }
    memmove (conn->buf, conn->buf + used, conn->len - used);
    conn->len -= used;
    conn->buf [conn->len] = 0;
    if (!keep)
        s_close (conn);
    *body_p = out;
    return status;
}

//  --------------------------------------------------------------------------
//  submit

static void *
s_submitter (void *arg)
{
    shared_t *sh = (shared_t *) arg;
    conn_t *conn = calloc (1, sizeof (conn_t));
    conn->fd = -1;
    char path [512], body [512], id [256];
    snprintf (path, sizeof (path), "/tasks/%s/jobs", sh->task);
    while (s_now () < sh->deadline) {
        pthread_mutex_lock (&sh->lock);
        long i = sh->next < sh->first + sh->count ? sh->next++ : -1;
        pthread_mutex_unlock (&sh->lock);
        if (i < 0)
            break;
        //  Paced: job number k of the run is not sent before start + k / rate.
        if (sh->rate > 0) {
            double due = sh->start + (double) (i - sh->first) / sh->rate;
            while (s_now () < due)
                s_sleep_ms ((int) ((due - s_now ()) * 1000) + 1);
        }
        //  While the node is down, wait for it rather than burn ids.
        while (conn->fd < 0 && s_connect (conn, sh->port) && s_now () < sh->deadline)
            s_sleep_ms (50);
        snprintf (id, sizeof (id), "%s%ld", sh->prefix, i);
        snprintf (body, sizeof (body), "{\"job_id\":\"%s\",\"args\":[\"%ld\"]}", id, i % sh->mod + 1);
        char *answer = NULL;
        int status = s_request (conn, sh->port, "POST", path, body, &answer);
        free (answer);
        pthread_mutex_lock (&sh->lock);
        sh->tried++;
        if (status == 200) {
            sh->acked++;
            fprintf (sh->ack, "%s\n", id);
            fflush (sh->ack);
        }
        else
        if (status > 0) {
            sh->refused++;
            if (status < 600)
                sh->codes [status]++;
        }
        else
            sh->unanswered++;
        pthread_mutex_unlock (&sh->lock);
    }
    s_close (conn);
    free (conn);
    return NULL;
}

//  --------------------------------------------------------------------------
//  check

static void *
s_checker (void *arg)
{
    shared_t *sh = (shared_t *) arg;
    conn_t *conn = calloc (1, sizeof (conn_t));
    conn->fd = -1;
    char path [512];
    while (true) {
        pthread_mutex_lock (&sh->lock);
        long i = sh->next < sh->count ? sh->next++ : -1;
        pthread_mutex_unlock (&sh->lock);
        if (i < 0)
            break;
        if (sh->done [i])
            continue;
        snprintf (path, sizeof (path), "/jobs/%s", sh->ids [i]);
        char *answer = NULL;
        int status = s_request (conn, sh->port, "GET", path, NULL, &answer);
        if (status < 0) {
            status = s_request (conn, sh->port, "GET", path, NULL, &answer);
            if (status < 0)
                s_sleep_ms (50);
        }
        const char *state = status < 0 ? "unreachable" : status == 404 ? "missing" : "bad-answer";
        int64_t count = -1;
        json_t *root = answer && status == 200 ? json_loads (answer, 0, NULL) : NULL;
        json_t *data = root ? json_object_get (root, "data") : NULL;
        if (json_is_string (json_object_get (data, "state")))
            state = json_string_value (json_object_get (data, "state"));
        if (json_is_integer (json_object_get (data, "count")))
            count = json_integer_value (json_object_get (data, "count"));
        free (sh->states [i]);
        sh->states [i] = strdup (state);
        sh->counts [i] = count;
        sh->done [i] = strcmp (state, "SUCCESS") == 0 || strcmp (state, "FAILURE") == 0;
        json_decref (root);
        free (answer);
    }
    s_close (conn);
    free (conn);
    return NULL;
}

static int
s_read_ids (shared_t *sh, const char *file)
{
    FILE *in = fopen (file, "r");
    if (!in) {
        fprintf (stderr, "dbt_loadgen: cannot open '%s': %s\n", file, strerror (errno));
        return -1;
    }
    size_t cap = 1024, n = 0;
    sh->ids = malloc (cap * sizeof (char *));
    char line [512];
    while (fgets (line, sizeof (line), in)) {
        line [strcspn (line, " \r\n")] = 0;
        if (!*line)
            continue;
        if (n == cap)
            sh->ids = realloc (sh->ids, (cap *= 2) * sizeof (char *));
        sh->ids [n++] = strdup (line);
    }
    fclose (in);
    sh->count = (long) n;
    sh->states = calloc (n + 1, sizeof (char *));
    sh->counts = calloc (n + 1, sizeof (int64_t));
    sh->done = calloc (n + 1, sizeof (bool));
    return 0;
}

static void
s_usage (void)
{
    fprintf (stderr,
             "usage: dbt_loadgen submit -p PORT -t TASK -P PREFIX -n COUNT [-s FIRST] [-m MOD]\n"
             "                          [-c CONNS] [-d SECONDS] [-r RATE] -o ACKFILE [-v]\n"
             "       dbt_loadgen check -p PORT -i IDFILE [-c CONNS] [-w SECONDS]\n");
}

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        s_usage ();
        return 2;
    }
    const char *mode = argv [1];
    shared_t sh = { .mod = 50, .seconds = -1 };
    pthread_mutex_init (&sh.lock, NULL);
    const char *ackfile = NULL, *idfile = NULL;
    int conns = 8;
    bool verbose = false;
    optind = 2;
    int opt;
    while ((opt = getopt (argc, argv, "p:t:P:n:s:m:c:d:r:o:i:w:v")) != -1) {
        char *end = NULL;
        switch (opt) {
            case 'p': sh.port = (int) strtol (optarg, &end, 10); break;
            case 't': sh.task = optarg; break;
            case 'P': sh.prefix = optarg; break;
            case 'n': sh.count = strtol (optarg, &end, 10); break;
            case 's': sh.first = strtol (optarg, &end, 10); break;
            case 'm': sh.mod = strtol (optarg, &end, 10); break;
            case 'c': conns = (int) strtol (optarg, &end, 10); break;
            case 'd': case 'w': sh.seconds = strtod (optarg, &end); break;
            case 'r': sh.rate = strtod (optarg, &end); break;
            case 'o': ackfile = optarg; break;
            case 'i': idfile = optarg; break;
            case 'v': verbose = true; break;
            default: s_usage (); return 2;
        }
        if (end && *end) {
            fprintf (stderr, "dbt_loadgen: -%c wants a number, not '%s'\n", opt, optarg);
            return 2;
        }
    }
    if (sh.port <= 0 || sh.port > 65535 || conns < 1 || conns > MAX_CONNS || sh.mod < 1) {
        s_usage ();
        return 2;
    }
    pthread_t threads [MAX_CONNS];
    if (strcmp (mode, "submit") == 0) {
        if (!sh.task || !sh.prefix || sh.count < 1 || !ackfile) {
            s_usage ();
            return 2;
        }
        sh.ack = fopen (ackfile, "a");
        if (!sh.ack) {
            fprintf (stderr, "dbt_loadgen: cannot open '%s': %s\n", ackfile, strerror (errno));
            return 2;
        }
        sh.next = sh.first;
        sh.start = s_now ();
        sh.deadline = s_now () + (sh.seconds < 0 ? 1e9 : sh.seconds);
        for (int t = 0; t < conns; t++)
            pthread_create (&threads [t], NULL, s_submitter, &sh);
        for (int t = 0; t < conns; t++)
            pthread_join (threads [t], NULL);
        fclose (sh.ack);
        printf ("tried %ld acked %ld refused %ld unanswered %ld\n",
                sh.tried, sh.acked, sh.refused, sh.unanswered);
        if (verbose)
            for (int code = 0; code < 600; code++)
                if (sh.codes [code])
                    printf ("status %d: %ld\n", code, sh.codes [code]);
        fflush (stdout);
        return 0;
    }
    if (strcmp (mode, "check") == 0) {
        if (!idfile) {
            s_usage ();
            return 2;
        }
        if (s_read_ids (&sh, idfile))
            return 2;
        double deadline = s_now () + (sh.seconds < 0 ? 60 : sh.seconds);
        while (true) {
            sh.next = 0;
            for (int t = 0; t < conns; t++)
                pthread_create (&threads [t], NULL, s_checker, &sh);
            for (int t = 0; t < conns; t++)
                pthread_join (threads [t], NULL);
            long left = 0;
            for (long i = 0; i < sh.count; i++)
                left += !sh.done [i];
            if (!left || s_now () >= deadline)
                break;
            s_sleep_ms (250);
        }
        for (long i = 0; i < sh.count; i++) {
            printf ("%s %s %lld\n", sh.ids [i], sh.states [i] ? sh.states [i] : "unknown",
                    (long long) sh.counts [i]);
            free (sh.ids [i]);
            free (sh.states [i]);
        }
        fflush (stdout);
        free (sh.ids);
        free (sh.states);
        free (sh.counts);
        free (sh.done);
        return 0;
    }
    s_usage ();
    return 2;
}
