/*  example.c - submit a job to a dungbeetle node, wait for it, print its rows

    Build against the installed library:

        cc -o example example.c $(pkg-config --cflags --libs dungbeetle)

    Run:  ./example tcp://127.0.0.1:6072 TASK [ARGS...]

    Exit status: 0 when the job succeeded, 1 when it failed, 2 on usage,
    3 on any other error.
*/
#include <dungbeetle.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

//  Called while the job runs (state changes, rows written so far).
static void
on_progress (const char *job_id, dungbeetle_state_t state, uint64_t rows, int64_t elapsed_ms,
             void *arg)
{
    (void) arg;
    fprintf (stderr, "%s: state %d, %" PRIu64 " rows, %" PRId64 " ms\n", job_id, (int) state, rows,
             elapsed_ms);
}

int
main (int argc, char **argv)
{
    if (argc < 3) {
        fprintf (stderr, "usage: %s ENDPOINT TASK [ARGS...]\n", argv [0]);
        return 2;
    }
    char err [DUNGBEETLE_ERRMSG_LEN];
    dungbeetle_client_t *client = NULL;
    int rc = dungbeetle_client_new (argv [1], NULL, &client, err);
    if (rc) {
        fprintf (stderr, "cannot connect: %s\n", err);
        return 3;
    }
    //  The request: task and positional args; everything else default.
    dungbeetle_job_request_t req;
    dungbeetle_job_request_init (&req);
    req.task = argv [2];
    req.args = (const char *const *) argv + 3;
    req.nargs = (size_t) (argc - 3);

    char *job_id = NULL;                //  ours to free
    dungbeetle_status_t *status = NULL; //  ours to destroy
    dungbeetle_results_t *page = NULL;  //  ours to destroy
    int code = 3;
    rc = dungbeetle_submit (client, &req, &job_id);
    if (rc) {
        fprintf (stderr, "submit: %s\n", dungbeetle_client_error (client));
        goto done;
    }
    printf ("job %s\n", job_id);
    rc = dungbeetle_wait (client, job_id, 0, on_progress, NULL, &status);
    if (rc) {
        fprintf (stderr, "wait: %s\n", dungbeetle_client_error (client));
        goto done;
    }
    printf ("state %s, %" PRIu64 " rows\n", dungbeetle_status_state_name (status),
            dungbeetle_status_rows (status));
    if (dungbeetle_status_state (status) != DUNGBEETLE_SUCCESS) {
        printf ("error: %s\n", dungbeetle_status_error (status));
        code = 1;
        goto done;
    }
    //  The first page of rows (up to 100).
    rc = dungbeetle_results (client, job_id, 0, 100, &page);
    if (rc) {
        fprintf (stderr, "results: %s\n", dungbeetle_client_error (client));
        goto done;
    }
    size_t ncols = dungbeetle_results_columns (page);
    for (size_t c = 0; c < ncols; c++)
        printf ("%s%s", c ? "\t" : "", dungbeetle_results_column_name (page, c));
    printf ("\n");
    for (size_t r = 0; r < dungbeetle_results_rows (page); r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *value = dungbeetle_results_value (page, r, c);
            printf ("%s%s", c ? "\t" : "", value ? value : "NULL");
        }
        printf ("\n");
    }
    code = 0;
done:
    dungbeetle_results_destroy (&page);
    dungbeetle_status_destroy (&status);
    free (job_id);
    dungbeetle_client_destroy (&client);
    return code;
}
