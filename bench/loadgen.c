/*  =========================================================================
    loadgen - the HTTP load generator of the benchmark suite (bench/run)

    Keep-alive HTTP/1.1 over many connections driven by one epoll loop, so
    that the client is not what bounds a figure. It speaks only what the
    benchmarks need: requests with a Content-Length body, answers framed by
    Content-Length. Every mode prints one line of key=value figures.

      loadgen post PORT PATH BODY N CONNS
          POST N requests, BODY with every "{i}" replaced by the request's
          number (0 .. N-1), over CONNS connections, each sending its next
          request when the previous answer arrived. Prints requests, ok
          (2xx), errors, seconds, rate (answers/s), p50_ms, p99_ms.

      loadgen hold PORT PATH CONNS SECONDS INTERVAL_MS
          Open CONNS connections (at most 256 connecting at once) and on
          each GET PATH every INTERVAL_MS for SECONDS. Prints connected (the
          most open at once), requests, ok, errors (non-2xx answers, refused
          or closed connections), p50_ms, p99_ms.

      loadgen latency PORT TASK N PREFIX
          On an otherwise idle node, N times: POST /tasks/TASK/jobs with
          job_id PREFIX_i, then GET /jobs/PREFIX_i over the same connection
          until the state is SUCCESS or FAILURE, pausing POLL_US (200 us)
          between GETs: a poll loop with no pause would keep a core of the
          client and one of the node's HTTP front busy, taking them from
          the job it waits for (BullMQ's side blocks on its events stream
          instead). The pause adds at most POLL_US to a figure. Prints p50_ms and p99_ms of
          submit to SUCCESS seen by the client, failures, and the p50/p99 of
          the job's own started_at - created_at (ms, server clock). With
          LOADGEN_TRACE=FILE set, also writes one line per job to FILE:
          i, submit_ms (POST round trip), total_ms, polls (GETs sent),
          and started - created, finished - started, seen - finished (ms;
          seen is the client's wall clock when SUCCESS was read).

    Latencies are kept in memory (8 bytes per request). Errors in the
    arguments print usage and exit 2; a run with errors still prints its
    line and exits 0, the caller judges.
    =========================================================================
*/
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_MAX (1 << 16)
#define POLL_US 200             //  latency mode: pause between GETs

typedef struct {
    int fd;
    bool connecting;            //  connect() in progress
    bool busy;                  //  a request is out, its answer awaited
    double due;                 //  hold mode: when to send the next request
    double sent_at;             //  when the request went out
    char *out;                  //  request bytes still to send
    size_t outlen, outoff;
    char in [IN_MAX];           //  answer bytes so far
    size_t inlen;
} conn_t;

typedef struct {
    double *v;
    size_t n, cap;
} samples_t;

static uint16_t s_port;
static int s_epoll;
static samples_t s_lat;
static long s_ok, s_errors;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
s_die (const char *what)
{
    fprintf (stderr, "loadgen: %s: %s\n", what, strerror (errno));
    exit (1);
}

static void *
s_alloc (size_t size)
{
    void *p = calloc (1, size ? size : 1);
    if (!p)
        s_die ("out of memory");
    return p;
}

static void
s_sample (samples_t *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = (double *) realloc (s->v, s->cap * sizeof (double));
        if (!s->v)
            s_die ("out of memory");
    }
    s->v [s->n++] = v;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  The p-quantile (0..1) of the samples, sorting them; 0 when none.
static double
s_quantile (samples_t *s, double p)
{
    if (s->n == 0)
        return 0;
    qsort (s->v, s->n, sizeof (double), s_cmp);
    size_t at = (size_t) (p * (double) s->n);
    return s->v [at < s->n ? at : s->n - 1];
}

//  Parse a whole decimal number; false when text is not one or out of range.
static bool
s_number (const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol (text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static void
s_raise_nofile (void)
{
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit (RLIMIT_NOFILE, &rl);
    }
}

//  A socket to 127.0.0.1:s_port, non-blocking when asked; -1 on failure.
static int
s_socket (bool nonblocking, bool *in_progress)
{
    int fd = socket (AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof (one));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (s_port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    *in_progress = false;
    if (connect (fd, (struct sockaddr *) &sa, sizeof (sa)) == 0)
        return fd;
    if (nonblocking && errno == EINPROGRESS) {
        *in_progress = true;
        return fd;
    }
    close (fd);
    return -1;
}

//  A request text (malloc'd) and its length.
static char *
s_request (const char *method, const char *path, const char *body, size_t *len)
{
    size_t blen = body ? strlen (body) : 0;
    size_t cap = strlen (path) + blen + 200;
    char *req = (char *) s_alloc (cap);
    int n;
    if (body)
        n = snprintf (req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s", method, path, blen, body);
    else
        n = snprintf (req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    *len = (size_t) n;
    return req;
}

//  Body text with every "{i}" replaced by i (malloc'd).
static char *
s_fill (const char *fmt, long i)
{
    char num [24];
    snprintf (num, sizeof (num), "%ld", i);
    size_t cap = strlen (fmt) * 2 + 64, at = 0;
    char *out = (char *) s_alloc (cap);
    for (const char *p = fmt; *p; ) {
        if (at + sizeof (num) + 2 >= cap) {
            cap *= 2;
            out = (char *) realloc (out, cap);
            if (!out)
                s_die ("out of memory");
        }
        if (strncmp (p, "{i}", 3) == 0) {
            memcpy (out + at, num, strlen (num));
            at += strlen (num);
            p += 3;
        }
        else
            out [at++] = *p++;
    }
    out [at] = 0;
    return out;
}

//  Whether in holds a whole answer: its status, the offset and length of
//  its body. 0 = not yet, 1 = whole, -1 = not an answer we can frame.
static int
s_answer (const char *in, size_t len, int *status, size_t *body, size_t *blen)
{
    const char *end = memmem (in, len, "\r\n\r\n", 4);
    if (!end)
        return len >= IN_MAX ? -1 : 0;
    if (len < 12 || strncmp (in, "HTTP/1.", 7))
        return -1;
    *status = (in [9] - '0') * 100 + (in [10] - '0') * 10 + (in [11] - '0');
    size_t clen = 0;
    bool have = false;
    for (const char *p = in; p && p < end; ) {
        const char *eol = memmem (p, (size_t) (end + 2 - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t) (eol - p) > 15 && strncasecmp (p, "Content-Length:", 15) == 0) {
            clen = (size_t) strtoul (p + 15, NULL, 10);
            have = true;
        }
        p = eol + 2;
    }
    if (!have)
        return -1;
    *body = (size_t) (end + 4 - in);
    *blen = clen;
    if (*body + clen > IN_MAX)
        return -1;
    return len >= *body + clen ? 1 : 0;
}

//  ------------------------------------------------------------ the loop

typedef struct {
    conn_t *conns;
    long nconns;
    //  post mode
    const char *path, *body;
    long total, next, done;
    //  hold mode
    bool hold;
    double interval, until;
    long open, most_open, connecting, to_open;
} run_t;

static void
s_watch (conn_t *c, bool want_out, int op)
{
    struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0) };
    ev.data.ptr = c;
    if (epoll_ctl (s_epoll, op, c->fd, &ev))
        s_die ("epoll_ctl");
}

static void
s_close (run_t *run, conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl (s_epoll, EPOLL_CTL_DEL, c->fd, NULL);
        close (c->fd);
        if (!c->connecting)
            run->open--;
        else
            run->connecting--;
    }
    c->fd = -1;
    c->busy = c->connecting = false;
    free (c->out);
    c->out = NULL;
    c->inlen = 0;
}

//  Send what is left of c's request; false when the connection broke.
static bool
s_flush (conn_t *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send (c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            s_watch (c, true, EPOLL_CTL_MOD);
            return true;
        }
        if (n <= 0)
            return false;
        c->outoff += (size_t) n;
    }
    s_watch (c, false, EPOLL_CTL_MOD);
    return true;
}

//  Start c's next request, if any; false when the connection broke.
static bool
s_next (run_t *run, conn_t *c)
{
    free (c->out);
    c->out = NULL;
    if (run->hold) {
        c->out = s_request ("GET", run->path, NULL, &c->outlen);
    }
    else {
        if (run->next >= run->total)
            return true;
        char *body = s_fill (run->body, run->next++);
        c->out = s_request ("POST", run->path, body, &c->outlen);
        free (body);
    }
    c->outoff = 0;
    c->busy = true;
    c->sent_at = s_now ();
    return s_flush (c);
}

//  Open connections until run->to_open are open or connecting, at most
//  256 connecting at once.
static void
s_open (run_t *run)
{
    for (long i = 0; i < run->nconns && run->connecting < 256; i++) {
        conn_t *c = &run->conns [i];
        if (c->fd >= 0 || run->open + run->connecting >= run->to_open)
            continue;
        bool pending;
        c->fd = s_socket (true, &pending);
        if (c->fd < 0) {
            s_errors++;
            continue;
        }
        c->connecting = pending;
        if (pending) {
            run->connecting++;
            s_watch (c, true, EPOLL_CTL_ADD);
        }
        else {
            run->open++;
            s_watch (c, false, EPOLL_CTL_ADD);
            c->due = s_now ();
        }
    }
    if (run->open > run->most_open)
        run->most_open = run->open;
}

static void
s_event (run_t *run, conn_t *c, uint32_t events)
{
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof (err);
        getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            s_errors++;
            s_close (run, c);
            return;
        }
        c->connecting = false;
        run->connecting--;
        run->open++;
        if (run->open > run->most_open)
            run->most_open = run->open;
        s_watch (c, false, EPOLL_CTL_MOD);
        c->due = s_now ();
        return;
    }
    if ((events & EPOLLOUT) && !s_flush (c)) {
        s_errors++;
        s_close (run, c);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    ssize_t n = recv (c->fd, c->in + c->inlen, IN_MAX - c->inlen, 0);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        //  closed: an error if an answer was awaited or in hold mode
        if (c->busy || run->hold)
            s_errors++;
        if (c->busy && !run->hold)
            run->done++;
        s_close (run, c);
        return;
    }
    c->inlen += (size_t) n;
    int status;
    size_t body, blen;
    int rc = s_answer (c->in, c->inlen, &status, &body, &blen);
    if (rc == 0)
        return;
    if (rc < 0 || !c->busy) {
        s_errors++;
        if (!run->hold && c->busy)
            run->done++;
        s_close (run, c);
        return;
    }
    double now = s_now ();
    s_sample (&s_lat, (now - c->sent_at) * 1000);
    if (status >= 200 && status < 300)
        s_ok++;
    else
        s_errors++;
    size_t used = body + blen;
    memmove (c->in, c->in + used, c->inlen - used);
    c->inlen -= used;
    c->busy = false;
    if (run->hold) {
        c->due = c->sent_at + run->interval;
        return;
    }
    run->done++;
    if (!s_next (run, c)) {
        s_errors++;
        s_close (run, c);
    }
}

//  Run the loop until post mode's requests are all answered or hold
//  mode's time is up.
static void
s_loop (run_t *run)
{
    struct epoll_event evs [512];
    while (true) {
        double now = s_now ();
        if (run->hold ? now >= run->until
                      : run->done >= run->total || s_errors > run->total)
            break;
        if (run->hold || run->next < run->total)
            s_open (run);
        for (long i = 0; i < run->nconns; i++) {
            conn_t *c = &run->conns [i];
            if (c->fd < 0 || c->connecting || c->busy)
                continue;
            if ((run->hold ? c->due <= now : run->next < run->total) && !s_next (run, c)) {
                s_errors++;
                s_close (run, c);
            }
        }
        int n = epoll_wait (s_epoll, evs, 512, run->hold ? 5 : 100);
        if (n < 0 && errno != EINTR)
            s_die ("epoll_wait");
        for (int i = 0; i < n; i++)
            s_event (run, (conn_t *) evs [i].data.ptr, evs [i].events);
    }
}

static run_t *
s_run_new (long nconns)
{
    run_t *run = (run_t *) s_alloc (sizeof (run_t));
    run->conns = (conn_t *) s_alloc ((size_t) nconns * sizeof (conn_t));
    run->nconns = run->to_open = nconns;
    for (long i = 0; i < nconns; i++)
        run->conns [i].fd = -1;
    s_epoll = epoll_create1 (0);
    if (s_epoll < 0)
        s_die ("epoll_create1");
    return run;
}

static int
s_post (const char *path, const char *body, long total, long nconns)
{
    run_t *run = s_run_new (nconns < total ? nconns : total);
    run->path = path;
    run->body = body;
    run->total = total;
    double start = s_now ();
    s_open (run);
    s_loop (run);
    double secs = s_now () - start;
    printf ("requests=%ld ok=%ld errors=%ld seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f\n",
            total, s_ok, s_errors + (total - run->done), secs, (double) s_ok / secs,
            s_quantile (&s_lat, 0.5), s_quantile (&s_lat, 0.99));
    return 0;
}

static int
s_hold (const char *path, long nconns, long seconds, long interval_ms)
{
    run_t *run = s_run_new (nconns);
    run->path = path;
    run->hold = true;
    run->interval = (double) interval_ms / 1000;
    double start = s_now ();
    run->until = start + (double) seconds;
    s_loop (run);
    printf ("connected=%ld requests=%zu ok=%ld errors=%ld seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n",
            run->most_open, s_lat.n, s_ok, s_errors, s_now () - start,
            s_quantile (&s_lat, 0.5), s_quantile (&s_lat, 0.99));
    return 0;
}

//  ------------------------------------------------------------ latency

//  One request and its whole answer over the blocking socket fd; the
//  status, and the body copied into body (NUL-terminated, truncated to
//  cap). False when the connection failed.
static bool
s_roundtrip (int fd, const char *req, size_t reqlen, int *status, char *body, size_t cap)
{
    size_t off = 0;
    while (off < reqlen) {
        ssize_t n = send (fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        off += (size_t) n;
    }
    static char in [IN_MAX];
    size_t len = 0, at, blen;
    int rc;
    while ((rc = s_answer (in, len, status, &at, &blen)) == 0) {
        ssize_t n = recv (fd, in + len, IN_MAX - len, 0);
        if (n <= 0)
            return false;
        len += (size_t) n;
    }
    if (rc < 0)
        return false;
    size_t copy = blen < cap - 1 ? blen : cap - 1;
    memcpy (body, in + at, copy);
    body [copy] = 0;
    return true;
}

//  Milliseconds since the epoch of the "field":"...Z" timestamp in json;
//  -1 when missing.
static double
s_stamp (const char *json, const char *field)
{
    char key [64];
    snprintf (key, sizeof (key), "\"%s\":\"", field);
    const char *p = strstr (json, key);
    if (!p)
        return -1;
    p += strlen (key);
    struct tm tm = { 0 };
    const char *rest = strptime (p, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    double frac = 0;
    if (*rest == '.') {
        double scale = 0.1;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            frac += (*rest - '0') * scale;
    }
    return ((double) timegm (&tm) + frac) * 1000;
}

static int
s_latency (const char *task, long total, const char *prefix)
{
    bool pending;
    int fd = s_socket (false, &pending);
    if (fd < 0)
        s_die ("connect");
    samples_t started = { 0 };
    long failed = 0;
    static char body [IN_MAX];
    char path [256], post [256];
    snprintf (post, sizeof (post), "/tasks/%s/jobs", task);
    const char *trace_path = getenv ("LOADGEN_TRACE");
    FILE *trace = trace_path && *trace_path ? fopen (trace_path, "w") : NULL;
    if (trace_path && *trace_path && !trace)
        s_die (trace_path);
    for (long i = 0; i < total; i++) {
        char job [160];
        snprintf (job, sizeof (job), "{\"job_id\":\"%s_%ld\"}", prefix, i);
        size_t len;
        char *req = s_request ("POST", post, job, &len);
        int status;
        double t0 = s_now ();
        bool ok = s_roundtrip (fd, req, len, &status, body, sizeof (body));
        free (req);
        if (!ok)
            s_die ("submit: connection lost");
        double t1 = s_now ();
        long polls = 0;
        if (status != 200) {
            failed++;
            continue;
        }
        snprintf (path, sizeof (path), "/jobs/%s_%ld", prefix, i);
        req = s_request ("GET", path, NULL, &len);
        while (true) {
            if (polls > 0) {
                struct timespec pause = { 0, POLL_US * 1000L };
                nanosleep (&pause, NULL);
            }
            if (!s_roundtrip (fd, req, len, &status, body, sizeof (body)))
                s_die ("poll: connection lost");
            polls++;
            if (strstr (body, "\"state\":\"SUCCESS\"")) {
                double t2 = s_now ();
                s_sample (&s_lat, (t2 - t0) * 1000);
                double c = s_stamp (body, "created_at"), s = s_stamp (body, "started_at");
                if (c >= 0 && s >= 0)
                    s_sample (&started, s - c);
                if (trace) {
                    struct timespec wall;
                    clock_gettime (CLOCK_REALTIME, &wall);
                    double seen = (double) wall.tv_sec * 1000 + (double) wall.tv_nsec / 1e6;
                    double f = s_stamp (body, "finished_at");
                    fprintf (trace, "%ld %.3f %.3f %ld %.0f %.0f %.1f\n", i, (t1 - t0) * 1000,
                             (t2 - t0) * 1000, polls, s - c, f - s, seen - f);
                }
                break;
            }
            if (strstr (body, "\"state\":\"FAILURE\"") || status != 200) {
                failed++;
                break;
            }
        }
        free (req);
    }
    close (fd);
    if (trace)
        fclose (trace);
    printf ("jobs=%ld failed=%ld p50_ms=%.3f p99_ms=%.3f started_p50_ms=%.3f started_p99_ms=%.3f\n",
            total, failed, s_quantile (&s_lat, 0.5), s_quantile (&s_lat, 0.99),
            s_quantile (&started, 0.5), s_quantile (&started, 0.99));
    return 0;
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: loadgen post PORT PATH BODY N CONNS\n"
        "       loadgen hold PORT PATH CONNS SECONDS INTERVAL_MS\n"
        "       loadgen latency PORT TASK N PREFIX\n");
    exit (2);
}

int
main (int argc, char **argv)
{
    long port, a, b, c;
    if (argc < 3 || !s_number (argv [2], 1, 65535, &port))
        s_usage ();
    s_port = (uint16_t) port;
    s_raise_nofile ();
    if (strcmp (argv [1], "post") == 0 && argc == 7
    &&  s_number (argv [5], 1, 100000000, &a) && s_number (argv [6], 1, 100000, &b))
        return s_post (argv [3], argv [4], a, b);
    if (strcmp (argv [1], "hold") == 0 && argc == 7 && s_number (argv [4], 1, 1000000, &a)
    &&  s_number (argv [5], 1, 86400, &b) && s_number (argv [6], 1, 3600000, &c))
        return s_hold (argv [3], a, b, c);
    if (strcmp (argv [1], "latency") == 0 && argc == 6 && s_number (argv [4], 1, 10000000, &a))
        return s_latency (argv [3], a, argv [5]);
    s_usage ();
    return 2;
}
