/*  =========================================================================
    dungbeetle-client - command-line client of a dungbeetle node

    Drives a node's client endpoint through libdungbeetle: submit, status,
    wait (a live progress line on a terminal), cancel, results (CSV or
    JSON to stdout), tasks, pending; CURVE keys with --client-cert and
    --server-key. Exit status: 0 success (a job that ended SUCCESS), 1 the
    job ended FAILURE, 2 usage, a refused request or a refused CURVE key,
    3 not found, 4 the node could not be reached or did not answer, 5 any
    other error. See docs/dungbeetle-client.1.
    =========================================================================
*/
#define _GNU_SOURCE
#include <dungbeetle.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAILED    1        //  the job ended FAILURE
#define EXIT_USAGE     2        //  bad usage, or the node refused the request
#define EXIT_NOTFOUND  3        //  no such job, group, task or results
#define EXIT_CONN      4        //  no answer from the node
#define EXIT_ERROR     5        //  any other error

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:6072"

typedef struct {
    const char *endpoint;       //  --endpoint
    const char *token;          //  --token
    const char *client_cert;    //  --client-cert
    const char *server_key;     //  --server-key
    int64_t timeout_ms;         //  --timeout
    const char *id;             //  --id
    const char *queue;          //  --queue
    const char *eta;            //  --eta
    int retries;                //  --retries
    int64_t ttl_ms;             //  --ttl, -1 = default
    int wait;                   //  --wait
    int purge;                  //  --purge
    const char *format;         //  --format
    int64_t limit;              //  --limit, 0 = all
    int64_t offset;             //  --offset
} s_opts_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: dungbeetle-client [--endpoint E] [--token T] [--timeout MS]\n"
        "                         [--client-cert FILE --server-key KEY|FILE] COMMAND ...\n"
        "  submit TASK [ARGS...] [--id ID] [--queue Q] [--eta TIME] [--retries N]\n"
        "                        [--ttl SECONDS] [--wait]\n"
        "  status ID\n"
        "  wait ID\n"
        "  cancel ID [--purge]\n"
        "  results ID [--format csv|json] [--limit N] [--offset N]\n"
        "  tasks\n"
        "  pending QUEUE\n"
        "endpoint: --endpoint, else $DUNGBEETLE_ENDPOINT, else " DEFAULT_ENDPOINT "\n"
        "CURVE: --client-cert (else $DUNGBEETLE_CLIENT_CERT) is this client's NAME_secret\n"
        "       file; --server-key (else $DUNGBEETLE_SERVER_KEY) the node's public key,\n"
        "       40 Z85 characters or its public cert file\n"
        "exit: 0 success, 1 job FAILURE, 2 usage, refused, or key refused, 3 not found,\n"
        "      4 node unreachable or silent, 5 other error\n");
}

static int
s_exit_code (int rc)
{
    switch (rc) {
        case DUNGBEETLE_OK:         return 0;
        case DUNGBEETLE_EINVAL:
        case DUNGBEETLE_EAUTH:
        case DUNGBEETLE_ETOOBIG:    return EXIT_USAGE;
        case DUNGBEETLE_ENOTFOUND:
        case DUNGBEETLE_EGONE:      return EXIT_NOTFOUND;
        case DUNGBEETLE_ECONN:
        case DUNGBEETLE_ETIMEDOUT:  return EXIT_CONN;
        default:                    return EXIT_ERROR;
    }
}

static int
s_fail (dungbeetle_client_t *client, int rc, const char *what)
{
    const char *message = dungbeetle_client_error (client);
    fprintf (stderr, "dungbeetle-client: %s: %s\n", what,
             message && *message ? message : dungbeetle_strerror (rc));
    return s_exit_code (rc);
}

static int
s_number (const char *text, int64_t min, int64_t max, int64_t *value)
{
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll (text, &end, 10);
    if (errno || end == text || *end || parsed < min || parsed > max)
        return -1;
    *value = parsed;
    return 0;
}

//  "+SECONDS" from now, "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SSZ"
//  (UTC) into Unix ms.
static int
s_eta (const char *text, int64_t *ms)
{
    int64_t secs = 0;
    if (text [0] == '+' && s_number (text + 1, 0, INT64_C (315360000), &secs) == 0) {
        *ms = ((int64_t) time (NULL) + secs) * 1000;
        return 0;
    }
    struct tm tm;
    const char *formats [] = { "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", NULL };
    for (int i = 0; formats [i]; i++) {
        memset (&tm, 0, sizeof (tm));
        const char *end = strptime (text, formats [i], &tm);
        if (end && !*end) {
            *ms = (int64_t) timegm (&tm) * 1000;
            return 0;
        }
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  Output

static void
s_print_status (const dungbeetle_status_t *status)
{
    const char *fields [] = { "job_id", "state", "rows", "count", "error", "task", "queue",
                              "attempts", "worker", "results_table", "eta", "created_at",
                              "started_at", "finished_at", "dispatcher", NULL };
    for (int i = 0; fields [i]; i++) {
        const char *value = dungbeetle_status_field (status, fields [i]);
        if (value)
            printf ("%s: %s\n", fields [i], value);
    }
}

typedef struct {
    int tty;                    //  stderr is a terminal
    int shown;                  //  a progress line is on screen
} s_progress_t;

static void
s_on_progress (const char *job_id, dungbeetle_state_t state, uint64_t rows, int64_t elapsed_ms,
               void *arg)
{
    s_progress_t *progress = (s_progress_t *) arg;
    static const char *names [] = { "PENDING", "STARTED", "SUCCESS", "FAILURE", "RETRY" };
    const char *name = (int) state >= 0 && state <= 4 ? names [state] : "?";
    if (progress->tty) {
        fprintf (stderr, "\r\033[K%s  %-8s  rows %" PRIu64 "  elapsed %.1fs", job_id, name, rows,
                 (double) elapsed_ms / 1000.0);
        progress->shown = 1;
    }
    else
        fprintf (stderr, "%s %s rows=%" PRIu64 " elapsed_ms=%" PRId64 "\n", job_id, name, rows,
                 elapsed_ms);
    fflush (stderr);
}

static int
s_wait (dungbeetle_client_t *client, const char *id)
{
    s_progress_t progress = { isatty (2), 0 };
    dungbeetle_status_t *status = NULL;
    int rc = dungbeetle_wait (client, id, 0, s_on_progress, &progress, &status);
    if (progress.shown)
        fprintf (stderr, "\n");
    if (rc)
        return s_fail (client, rc, "wait");
    dungbeetle_state_t state = dungbeetle_status_state (status);
    printf ("%s %s rows=%" PRIu64 "%s%s\n", dungbeetle_status_id (status),
            dungbeetle_status_state_name (status), dungbeetle_status_rows (status),
            *dungbeetle_status_error (status) ? " error=" : "", dungbeetle_status_error (status));
    dungbeetle_status_destroy (&status);
    return state == DUNGBEETLE_SUCCESS ? 0 : EXIT_FAILED;
}

static void
s_csv (const char *value)
{
    if (!value)
        return;
    if (!strpbrk (value, ",\"\r\n")) {
        fputs (value, stdout);
        return;
    }
    putchar ('"');
    for (const char *p = value; *p; p++) {
        if (*p == '"')
            putchar ('"');
        putchar (*p);
    }
    putchar ('"');
}

static void
s_json_string (const char *value)
{
    putchar ('"');
    for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf ("\\%c", *p);
        else
        if (*p == '\n')
            fputs ("\\n", stdout);
        else
        if (*p < 0x20)
            printf ("\\u%04x", *p);
        else
            putchar (*p);
    }
    putchar ('"');
}

static int
s_results (dungbeetle_client_t *client, const char *id, const s_opts_t *opts)
{
    int csv = !opts->format || strcmp (opts->format, "csv") == 0;
    if (!csv && strcmp (opts->format, "json") != 0) {
        fprintf (stderr, "dungbeetle-client: --format is csv or json\n");
        return EXIT_USAGE;
    }
    int64_t offset = opts->offset, left = opts->limit, written = 0;
    int first_page = 1;
    while (1) {
        int64_t page = left && left < 1000 ? left : 1000;
        dungbeetle_results_t *results = NULL;
        int rc = dungbeetle_results (client, id, offset, page, &results);
        if (rc) {
            if (!first_page && !csv)
                printf ("]}\n");
            return s_fail (client, rc, "results");
        }
        size_t ncols = dungbeetle_results_columns (results), nrows = dungbeetle_results_rows (results);
        if (first_page) {
            if (csv)
                for (size_t c = 0; c < ncols; c++) {
                    s_csv (dungbeetle_results_column_name (results, c));
                    putchar (c + 1 < ncols ? ',' : '\n');
                }
            else {
                printf ("{\"job_id\":");
                s_json_string (id);
                printf (",\"columns\":[");
                for (size_t c = 0; c < ncols; c++) {
                    printf ("%s{\"name\":", c ? "," : "");
                    s_json_string (dungbeetle_results_column_name (results, c));
                    printf (",\"type\":");
                    s_json_string (dungbeetle_results_column_type (results, c));
                    putchar ('}');
                }
                printf ("],\"rows\":[");
            }
            first_page = 0;
        }
        for (size_t r = 0; r < nrows; r++) {
            if (!csv)
                printf ("%s[", written ? "," : "");
            for (size_t c = 0; c < ncols; c++) {
                const char *value = dungbeetle_results_value (results, r, c);
                if (csv) {
                    s_csv (value);
                    putchar (c + 1 < ncols ? ',' : '\n');
                    continue;
                }
                if (c)
                    putchar (',');
                dungbeetle_kind_t kind = dungbeetle_results_kind (results, r, c);
                if (kind == DUNGBEETLE_NULL)
                    fputs ("null", stdout);
                else
                if (kind == DUNGBEETLE_STRING)
                    s_json_string (value);
                else
                    fputs (value, stdout);
            }
            if (!csv)
                putchar (']');
            written++;
        }
        dungbeetle_results_destroy (&results);
        offset += (int64_t) nrows;
        if (left)
            left -= (int64_t) nrows;
        if ((int64_t) nrows < page || (opts->limit && left <= 0))
            break;
    }
    if (!csv)
        printf ("]}\n");
    return 0;
}

//  --------------------------------------------------------------------------

int
main (int argc, char **argv)
{
    s_opts_t opts = { .retries = 0, .ttl_ms = -1, .timeout_ms = 0 };
    opts.endpoint = getenv ("DUNGBEETLE_ENDPOINT");
    if (!opts.endpoint || !*opts.endpoint)
        opts.endpoint = DEFAULT_ENDPOINT;
    opts.client_cert = getenv ("DUNGBEETLE_CLIENT_CERT");
    opts.server_key = getenv ("DUNGBEETLE_SERVER_KEY");
    if (opts.client_cert && !*opts.client_cert)
        opts.client_cert = NULL;
    if (opts.server_key && !*opts.server_key)
        opts.server_key = NULL;
    static const struct option longs [] = {
        { "endpoint", required_argument, NULL, 'e' }, { "token", required_argument, NULL, 'T' },
        { "timeout", required_argument, NULL, 'o' }, { "id", required_argument, NULL, 'i' },
        { "queue", required_argument, NULL, 'q' }, { "eta", required_argument, NULL, 'a' },
        { "retries", required_argument, NULL, 'r' }, { "ttl", required_argument, NULL, 't' },
        { "wait", no_argument, NULL, 'w' }, { "purge", no_argument, NULL, 'p' },
        { "format", required_argument, NULL, 'f' }, { "limit", required_argument, NULL, 'l' },
        { "offset", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
        { "client-cert", required_argument, NULL, 'C' },
        { "server-key", required_argument, NULL, 'K' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    int64_t number = 0;
    //  GNU getopt permutes: options may follow operands; "--" ends them
    //  (args that start with '-' go after it).
    while ((c = getopt_long (argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
            case 'e': opts.endpoint = optarg; break;
            case 'T': opts.token = optarg; break;
            case 'C': opts.client_cert = optarg; break;
            case 'K': opts.server_key = optarg; break;
            case 'o':
                if (s_number (optarg, 1, INT64_C (86400000), &opts.timeout_ms))
                    goto bad_number;
                break;
            case 'i': opts.id = optarg; break;
            case 'q': opts.queue = optarg; break;
            case 'a': opts.eta = optarg; break;
            case 'r':
                if (s_number (optarg, 0, 1000, &number))
                    goto bad_number;
                opts.retries = (int) number;
                break;
            case 't':
                if (s_number (optarg, 0, INT64_C (315360000), &number))
                    goto bad_number;
                opts.ttl_ms = number * 1000;
                break;
            case 'w': opts.wait = 1; break;
            case 'p': opts.purge = 1; break;
            case 'f': opts.format = optarg; break;
            case 'l':
                if (s_number (optarg, 0, INT64_MAX, &opts.limit))
                    goto bad_number;
                break;
            case 's':
                if (s_number (optarg, 0, INT64_MAX, &opts.offset))
                    goto bad_number;
                break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return EXIT_USAGE;
        }
    }
    char **operands = argv + optind;
    int noperands = argc - optind;
    if (noperands == 0) {
        s_usage (stderr);
        return EXIT_USAGE;
    }
    const char *command = operands [0];
    struct { const char *name; int min, max; } commands [] = {
        { "submit", 2, 1 << 20 }, { "status", 2, 2 }, { "wait", 2, 2 }, { "cancel", 2, 2 },
        { "results", 2, 2 }, { "tasks", 1, 1 }, { "pending", 2, 2 }, { NULL, 0, 0 }
    };
    int known = 0;
    for (int i = 0; commands [i].name; i++)
        if (strcmp (commands [i].name, command) == 0) {
            known = 1;
            if (noperands < commands [i].min || noperands > commands [i].max) {
                fprintf (stderr, "dungbeetle-client: wrong number of operands for %s\n", command);
                        s_usage (stderr);
                return EXIT_USAGE;
            }
        }
    if (!known) {
        fprintf (stderr, "dungbeetle-client: unknown command '%s'\n", command);
        s_usage (stderr);
        return EXIT_USAGE;
    }
    if (!opts.client_cert != !opts.server_key) {
        fprintf (stderr, "dungbeetle-client: CURVE needs both --client-cert and --server-key\n");
        return EXIT_USAGE;
    }
    dungbeetle_options_t options = { .timeout_ms = opts.timeout_ms, .token = opts.token,
                                     .client_cert = opts.client_cert,
                                     .server_key = opts.server_key };
    dungbeetle_client_t *client = NULL;
    char err [DUNGBEETLE_ERRMSG_LEN];
    int rc = dungbeetle_client_new (opts.endpoint, &options, &client, err);
    if (rc) {
        fprintf (stderr, "dungbeetle-client: %s\n", err);
        //  With keys given, an unusable key file is the likelier cause.
        if (rc == DUNGBEETLE_EINVAL)
            return opts.client_cert ? EXIT_USAGE : EXIT_CONN;
        return s_exit_code (rc);
    }
    int code = 0;
    if (strcmp (command, "submit") == 0) {
        dungbeetle_job_request_t req;
        dungbeetle_job_request_init (&req);
        req.task = operands [1];
        req.id = opts.id;
        req.queue = opts.queue;
        req.args = (const char *const *) operands + 2;
        req.nargs = (size_t) noperands - 2;
        req.retries = opts.retries;
        req.ttl_ms = opts.ttl_ms;
        if (opts.eta && s_eta (opts.eta, &req.eta_ms)) {
            fprintf (stderr, "dungbeetle-client: --eta is +SECONDS, 'YYYY-MM-DD HH:MM:SS' or "
                     "YYYY-MM-DDTHH:MM:SSZ (UTC)\n");
            code = EXIT_USAGE;
        }
        char *id = NULL;
        if (!code && (rc = dungbeetle_submit (client, &req, &id)))
            code = s_fail (client, rc, "submit");
        if (!code) {
            printf ("%s\n", id);
            fflush (stdout);
            if (opts.wait)
                code = s_wait (client, id);
        }
        free (id);
    }
    else
    if (strcmp (command, "status") == 0) {
        dungbeetle_status_t *status = NULL;
        if ((rc = dungbeetle_status (client, operands [1], &status)))
            code = s_fail (client, rc, "status");
        else {
            s_print_status (status);
            code = dungbeetle_status_state (status) == DUNGBEETLE_FAILURE ? EXIT_FAILED : 0;
            dungbeetle_status_destroy (&status);
        }
    }
    else
    if (strcmp (command, "wait") == 0)
        code = s_wait (client, operands [1]);
    else
    if (strcmp (command, "cancel") == 0) {
        if ((rc = dungbeetle_cancel (client, operands [1], opts.purge)))
            code = s_fail (client, rc, "cancel");
    }
    else
    if (strcmp (command, "results") == 0)
        code = s_results (client, operands [1], &opts);
    else {
        dungbeetle_list_t *list = NULL;
        int tasks = strcmp (command, "tasks") == 0;
        rc = tasks ? dungbeetle_tasks (client, &list) : dungbeetle_pending (client, operands [1], &list);
        if (rc)
            code = s_fail (client, rc, command);
        else {
            for (size_t i = 0; i < dungbeetle_list_size (list); i++)
                printf ("%s\t%s\n", dungbeetle_list_name (list, i), dungbeetle_list_detail (list, i));
            dungbeetle_list_destroy (&list);
        }
    }
    dungbeetle_client_destroy (&client);
    return code;
bad_number:
    fprintf (stderr, "dungbeetle-client: bad number '%s' for an option\n", optarg);
    return EXIT_USAGE;
}
