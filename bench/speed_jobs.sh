#!/bin/bash
#  speed_jobs.sh - no-op job throughput of one node, measured end to end
#  over HTTP: POST N jobs (count_entries, one row) with C keep-alive
#  clients, wait until all are finished, then read every job's record and
#  report states, overall jobs/s, the first and last 1,000 finishes' rates
#  and created->started / created->finished percentiles.
#
#    bench/speed_jobs.sh [JOBS] [RUNNERS] [CLIENTS] [RESULTS]
#      JOBS 20000, RUNNERS 4, CLIENTS 16, RESULTS sqlite | postgres DSN
#  Environment: DBT=path/to/dungbeetle (default the build's), KEEP=1 keeps
#  the node directory, PARKED=1 posts to a queue no worker serves (only
#  acceptance is measured), LAT=1 runs JOBS jobs one at a time on an idle
#  node (POST, then GET until SUCCESS; 20 ms apart) and reports
#  submit->SUCCESS as the client sees it, HTTP_THREADS=N sets http_threads.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=${1:-20000}
runners=${2:-4}
clients=${3:-16}
results=${4:-sqlite}
dbt=${DBT:-$top/src/dungbeetle}
dir=$(mktemp -d /tmp/dbt-speed.XXXXXX)
tool=$dir/speed_load
sed -n '/^#LOAD-C$/,$p' "$0" | tail -n +2 > "$dir/load.c"
gcc -O2 -o "$tool" "$dir/load.c" -lpthread || exit 1
pid=
cleanup () {
    [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
    [ "${KEEP:-0}" = 1 ] && echo "kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1
"$dbt" --new-config > /dev/null
port=$((10000 + RANDOM % 22000))
sed -i -e "s|^server = .*|server = 127.0.0.1:$port|" \
       -e "s|^bind = .*|bind = tcp://127.0.0.1:$((port + 1))|" \
       -e "s|^worker_concurrency = .*|worker_concurrency = $runners|" \
       -e "s|^log_level = .*|log_level = WARN|" config.ini
[ -n "${HTTP_THREADS:-}" ] && sed -i -e "/^\[app\]/a http_threads = $HTTP_THREADS" config.ini
if [ "$results" != sqlite ]; then
    sed -i -e '/^\[results.default\]/,$d' config.ini
    printf '[results.default]\ntype = postgres\ndsn = %s\nresults_table = results_%%s\n' "$results" >> config.ini
fi
"$dbt" --config config.ini > node.log 2>&1 &
pid=$!
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
queue=
[ "${PARKED:-0}" = 1 ] && queue=parked
if [ "${LAT:-0}" = 1 ]; then
    "$tool" lat 127.0.0.1 "$port" "$jobs" 1 count_entries "" l
    exit 0
fi
"$tool" post 127.0.0.1 "$port" "$jobs" "$clients" count_entries "$queue" j
if [ -z "$queue" ]; then
    for i in $(seq 1 6000); do
        done_=$(curl -s "http://127.0.0.1:$port/metrics" \
            | awk '/^dungbeetle_jobs_finished_total.*state="(SUCCESS|FAILURE)"/ { s += $2 } END { print s + 0 }')
        [ "$done_" -ge "$jobs" ] && break
        sleep 0.1
    done
    "$tool" stat 127.0.0.1 "$port" "$jobs" "$clients" j
fi
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^dungbeetle_(jobs_submitted_total|state_commits_total|state_ack_commits_total|state_commit_acks_total|jobs_finished_total.*RETRY)'
grep -c -i 'locked' node.log | sed 's/^/log lines with "locked": /'
exit 0
#LOAD-C
/*  speed_load - HTTP/1.1 keep-alive load generator for dungbeetle job benches.
    post HOST PORT N CONNS TASK QUEUE PREFIX  : POST N jobs (ids PREFIX0..N-1), print rate
    stat HOST PORT N CONNS PREFIX             : GET every job, print state counts, window rates,
                                                created->started and created->finished percentiles */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *task, *queue, *prefix, *mode;
static int port, njobs, nconns;
static atomic_int next_job, bad;
static double *created, *started, *finished;
static char *states;    /* S F P R T(started) ? */

static double now (void) { struct timespec t; clock_gettime (CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static int dial (void) {
    int fd = socket (AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (port) };
    inet_pton (AF_INET, host, &a.sin_addr);
    if (connect (fd, (struct sockaddr *) &a, sizeof a)) { perror ("connect"); exit (1); }
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Send req, read one response into buf (body at *body). Returns status. */
static int roundtrip (int *fd, const char *req, size_t len, char *buf, size_t cap, char **body) {
    for (int tries = 0; tries < 2; tries++) {
        if (write (*fd, req, len) != (ssize_t) len) goto redial;
        size_t got = 0; char *hend = NULL; long clen = -1;
        for (;;) {
            ssize_t r = read (*fd, buf + got, cap - 1 - got);
            if (r <= 0) goto redial;
            got += r; buf [got] = 0;
            if (!hend && (hend = strstr (buf, "\r\n\r\n"))) {
                char *cl = strcasestr (buf, "content-length:");
                clen = cl ? strtol (cl + 15, NULL, 10) : 0;
            }
            if (hend && got >= (size_t) (hend + 4 - buf) + clen) break;
        }
        *body = hend + 4;
        return (int) strtol (buf + 9, NULL, 10);
    redial:
        close (*fd); *fd = dial ();
    }
    return -1;
}

static double ts_of (const char *body, const char *key) {
    const char *p = strstr (body, key);
    if (!p) return 0;
    p += strlen (key) + 3;   /* ":"  */
    struct tm tm = {0}; int ms = 0;
    if (sscanf (p, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6) return 0;
    if (tm.tm_year < 1000) return 0;
    tm.tm_year -= 1900; tm.tm_mon -= 1;
    return (double) timegm (&tm) + ms / 1000.0;
}

static void *worker (void *arg) {
    (void) arg;
    int fd = dial ();
    char req [1024], body [512], *buf = malloc (65536), *rb;
    for (;;) {
        int i = atomic_fetch_add (&next_job, 1);
        if (i >= njobs) break;
        int len;
        if (*mode == 'p') {
            int bl = snprintf (body, sizeof body, "{\"job_id\":\"%s%d\"%s%s%s}", prefix, i,
                               *queue ? ",\"queue\":\"" : "", queue, *queue ? "\"" : "");
            len = snprintf (req, sizeof req, "POST /tasks/%s/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", task, bl, body);
        } else
            len = snprintf (req, sizeof req, "GET /jobs/%s%d HTTP/1.1\r\nHost: x\r\n\r\n", prefix, i);
        int st = roundtrip (&fd, req, len, buf, 65536, &rb);
        if (st != 200) { if (atomic_fetch_add (&bad, 1) < 5) fprintf (stderr, "job %d: status %d %.200s\n", i, st, st > 0 ? rb : ""); continue; }
        if (*mode == 's') {
            char *s = strstr (rb, "\"state\":\"");
            states [i] = s ? (s [9] == 'S' && s [10] == 'T' ? 'T' : s [9]) : '?';
            created [i] = ts_of (rb, "created_at"); started [i] = ts_of (rb, "started_at"); finished [i] = ts_of (rb, "finished_at");
        }
    }
    close (fd); free (buf);
    return NULL;
}

static int cmpd (const void *a, const void *b) { double x = *(double *) a, y = *(double *) b; return x < y ? -1 : x > y; }
static double pct (double *v, int n, double p) { int k = (int) (p * (n - 1) + 0.5); return n ? v [k] : 0; }

static int lat_main (void) {
    int fd = dial ();
    char req [1024], body [512], *buf = malloc (65536), *rb;
    double *e2e = calloc (njobs, 8), *q = calloc (njobs, 8);
    int n = 0;
    for (int i = 0; i < njobs; i++) {
        int bl = snprintf (body, sizeof body, "{\"job_id\":\"%s%d\"}", prefix, i);
        int len = snprintf (req, sizeof req, "POST /tasks/%s/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", task, bl, body);
        double t0 = now ();
        if (roundtrip (&fd, req, len, buf, 65536, &rb) != 200) { bad++; continue; }
        len = snprintf (req, sizeof req, "GET /jobs/%s%d HTTP/1.1\r\nHost: x\r\n\r\n", prefix, i);
        for (;;) {
            if (roundtrip (&fd, req, len, buf, 65536, &rb) != 200) { bad++; break; }
            char *s = strstr (rb, "\"state\":\"");
            if (s && (strncmp (s + 9, "SUCCESS", 7) == 0 || strncmp (s + 9, "FAILURE", 7) == 0)) {
                e2e [n] = (now () - t0) * 1000;
                q [n] = (ts_of (rb, "started_at") - ts_of (rb, "created_at")) * 1000;
                n++;
                break;
            }
        }
        usleep (20000);     /* idle node between jobs */
    }
    qsort (e2e, n, 8, cmpd); qsort (q, n, 8, cmpd);
    printf ("%d jobs one at a time: submit->SUCCESS seen ms p50 %.2f p99 %.2f max %.2f; created->started ms (record, 1 ms resolution) p50 %.0f p99 %.0f; errors %d\n",
            n, pct (e2e, n, .5), pct (e2e, n, .99), n ? e2e [n > 0 ? n - 1 : 0] : 0, pct (q, n, .5), pct (q, n, .99), bad);
    return 0;
}

int main (int argc, char **argv) {
    if (argc < 6) { fprintf (stderr, "usage: see header\n"); return 2; }
    mode = argv [1]; host = argv [2]; port = atoi (argv [3]); njobs = atoi (argv [4]); nconns = atoi (argv [5]);
    if (*mode == 'l') { task = argv [6]; queue = argv [7]; prefix = argv [8]; return lat_main (); }
    if (*mode == 'p') { task = argv [6]; queue = argv [7]; prefix = argv [8]; }
    else { prefix = argv [6]; created = calloc (njobs, 8); started = calloc (njobs, 8); finished = calloc (njobs, 8); states = calloc (njobs, 1); }
    pthread_t *t = calloc (nconns, sizeof *t);
    double t0 = now ();
    for (int i = 0; i < nconns; i++) pthread_create (&t [i], NULL, worker, NULL);
    for (int i = 0; i < nconns; i++) pthread_join (t [i], NULL);
    double took = now () - t0;
    if (*mode == 'p') {
        printf ("posted %d jobs in %.3f s: %.0f jobs/s, %d refused, %d connections\n", njobs, took, njobs / took, bad, nconns);
        return bad != 0;
    }
    int cnt [128] = {0};
    for (int i = 0; i < njobs; i++) cnt [(unsigned char) states [i]]++;
    printf ("states: SUCCESS %d FAILURE %d PENDING %d STARTED %d RETRY %d other %d (http errors %d)\n",
            cnt ['S'], cnt ['F'], cnt ['P'], cnt ['T'], cnt ['R'], njobs - cnt ['S'] - cnt ['F'] - cnt ['P'] - cnt ['R'] - cnt ['T'], bad);
    double *fin = malloc (njobs * 8), *q = malloc (njobs * 8), *e = malloc (njobs * 8);
    int nf = 0;
    for (int i = 0; i < njobs; i++) if (finished [i] > 0 && started [i] > 0) { fin [nf] = finished [i]; q [nf] = (started [i] - created [i]) * 1000; e [nf] = (finished [i] - created [i]) * 1000; nf++; }
    qsort (fin, nf, 8, cmpd); qsort (q, nf, 8, cmpd); qsort (e, nf, 8, cmpd);
    if (nf > 2) printf ("finished %d over %.3f s: %.0f jobs/s overall\n", nf, fin [nf - 1] - fin [0], nf / (fin [nf - 1] - fin [0] + 1e-9));
    int w = nf >= 4000 ? 1000 : nf / 4;
    if (w > 1) {
        double first = (w - 1) / (fin [w - 1] - fin [0] + 1e-9), last = (w - 1) / (fin [nf - 1] - fin [nf - w] + 1e-9);
        printf ("window %d: first %.0f jobs/s, last %.0f jobs/s, last/first %.3f\n", w, first, last, last / first);
    }
    if (nf) printf ("created->started ms p50 %.1f p99 %.1f; created->finished ms p50 %.1f p99 %.1f\n", pct (q, nf, .5), pct (q, nf, .99), pct (e, nf, .5), pct (e, nf, .99));
    return 0;
}
