/*  =========================================================================
    sqlite_results_bench - SQLite results write path: jobs/s as tables pile up

    Usage: bench/sqlite_results_bench [-n JOBS] [-t THREADS] [-r RUNS]
                                      [-w WINDOW] [-m MODE,...] [-d DIR]
           (build: make bench-drivers; defaults 20000 jobs, 4 threads, 5 runs,
           windows of 1000 jobs, modes driver,rawfile, DIR $TMPDIR or /tmp)

    Each job writes one row (BIGINT, TEXT, DOUBLE) into a results table of
    its own, as a runner does, with THREADS threads taking jobs from one
    counter; tables are never dropped, so they pile up as in a node that
    keeps results. Modes, run alternately (driver, rawfile, ..., driver,
    rawfile, ...) so that a slower machine moment hits every mode alike:

      driver   the driver's write path: dbt_conn_write_begin (staging
               name), dbt_conn_write_row, dbt_conn_write_commit (final
               name) on one dbt_conn_t per thread, as the runners do
      rawfile  the reference: plain sqlite3 calls doing the same work, one
               file per table, as durable (temporary file, no journal,
               CREATE + INSERT + COMMIT, fsync, rename into place, fsync
               the directory)
      nosync   rawfile without the two fsyncs (what they cost)
      onefile  the one-file layout of earlier versions: every table in one
               WAL database (synchronous=NORMAL), BEGIN IMMEDIATE, staging
               table, INSERT, DROP final, ALTER TABLE RENAME, COMMIT. Its
               per-job cost grows with the schema: use a few thousand jobs.

    Prints each run's jobs/s per window of WINDOW finished jobs, then per
    mode the min/median/max over the runs of the first window, the last
    window and the whole run, and the failed jobs. Every run writes into
    a fresh directory under DIR; all are removed at the end, not between
    runs: on an ext4 without a journal, new inodes are placed past recently
    deleted ones (find_inode_bit, recently_deleted), so removing 20,000
    files would slow the next run's first seconds.
    =========================================================================
*/
#include "dbt_bench.h"
#include <sqlite3.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <sys/stat.h>

typedef enum { S_DRIVER, S_RAWFILE, S_NOSYNC, S_ONEFILE, S_MODES } s_mode_t;

static const char *const s_mode_names [S_MODES] = { "driver", "rawfile", "nosync", "onefile" };

//  Columns of every table (the driver's declared types for them).
static const char s_columns_sql [] = "(\"id\" BIGINT, \"v\" TEXT, \"x\" DOUBLE)";

//  One run of one mode.
typedef struct {
    s_mode_t mode;              //  what to run
    char *dir;                  //  the run's directory (owned)
    long jobs;                  //  jobs to run
    atomic_long next;           //  next job to take
    atomic_long done;           //  jobs finished, failed included
    atomic_long failed;         //  jobs that failed
    double *times;              //  times [i]: when the i-th job finished
    pthread_mutex_t mutex;      //  guards firsterr
    char firsterr [DBT_ERRMSG_LEN];     //  first failure, "" if none
} s_run_t;

//  Results of one run.
typedef struct {
    double first;               //  jobs/s of the first window
    double last;                //  jobs/s of the last window
    double all;                 //  jobs/s of the whole run
    long failed;                //  failed jobs
} s_result_t;

//  Note a failed job (the first error is kept for the report).
static void
s_fail (s_run_t *run, const char *what, const char *msg)
{
    atomic_fetch_add (&run->failed, 1);
    pthread_mutex_lock (&run->mutex);
    if (!run->firsterr [0])
        snprintf (run->firsterr, sizeof (run->firsterr), "%s: %.400s", what, msg);
    pthread_mutex_unlock (&run->mutex);
}

//  Note a finished job.
static void
s_finish (s_run_t *run)
{
    long i = atomic_fetch_add (&run->done, 1);
    run->times [i] = dbt_bench_now ();
}

//  The cells of job k's row.
typedef struct {
    char id [24];               //  BIGINT text
    char v [40];                //  TEXT
    char x [32];                //  DOUBLE text
    const char *vals [3];       //  the three, for dbt_row_t
    size_t lens [3];            //  their lengths
} s_cells_t;

static void
s_cells (long k, s_cells_t *c)
{
    snprintf (c->id, sizeof (c->id), "%ld", k);
    snprintf (c->v, sizeof (c->v), "value %ld", k);
    snprintf (c->x, sizeof (c->x), "%ld.5", k);
    const char *cells [3] = { c->id, c->v, c->x };
    for (int i = 0; i < 3; i++) {
        c->vals [i] = cells [i];
        c->lens [i] = strlen (cells [i]);
    }
}

//  --------------------------------------------------------------------------
//  driver: the driver's write path

static void
s_run_driver (s_run_t *run)
{
    char err [DBT_ERRMSG_LEN];
    char *dsn = dbt_printf ("%s/results.db", run->dir);
    dbt_dbconf_t conf = { .name = "bench", .type = "sqlite", .dsn = dsn, .results = true };
    dbt_conn_t *conn = dbt_conn_new (&conf, err);
    if (!conn)
        dbt_bench_die ("driver connect", err);
    dbt_column_t cols [] = {
        { "id", DBT_COL_BIGINT, 0, -1, NULL, 0, 0, 0, false },
        { "v", DBT_COL_TEXT, 0, -1, NULL, 0, 0, 0, false },
        { "x", DBT_COL_DOUBLE, 0, -1, NULL, 0, 0, 0, false }
    };
    long k;
    while ((k = atomic_fetch_add (&run->next, 1)) < run->jobs) {
        char stage [48], final [48];
        snprintf (stage, sizeof (stage), "dbt_stage_%ld", k);
        snprintf (final, sizeof (final), "results_job%ld", k);
        s_cells_t cells;
        s_cells (k, &cells);
        dbt_row_t row = { 3, cells.vals, cells.lens };
        dbt_table_opts_t opts = { false, final };     //  as the runner gives them
        int rc = dbt_conn_write_begin (conn, stage, cols, 3, &opts, err);
        rc = rc ? rc : dbt_conn_write_row (conn, &row, err);
        rc = rc ? rc : dbt_conn_write_commit (conn, stage, final, err);
        if (rc) {
            dbt_conn_write_abort (conn, stage);
            s_fail (run, "driver", err);
        }
        s_finish (run);
    }
    dbt_conn_destroy (&conn);
    free (dsn);
}

//  --------------------------------------------------------------------------
//  rawfile and nosync: plain sqlite3 calls, one file per table

//  Run sql on db; returns the SQLite code.
static int
s_exec (sqlite3 *db, const char *sql)
{
    return sqlite3_exec (db, sql, NULL, NULL, NULL);
}

//  Bind job k's row to insert and step it; returns the SQLite code.
static int
s_insert (sqlite3_stmt *insert, long k)
{
    s_cells_t cells;
    s_cells (k, &cells);
    sqlite3_bind_int64 (insert, 1, k);
    sqlite3_bind_text (insert, 2, cells.v, (int) cells.lens [1], SQLITE_STATIC);
    sqlite3_bind_double (insert, 3, strtod (cells.x, NULL));
    int rc = sqlite3_step (insert);
    sqlite3_reset (insert);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void
s_run_rawfile (s_run_t *run)
{
    bool sync = run->mode == S_RAWFILE;
    char *tables = dbt_printf ("%s/raw.d", run->dir);
    char *tmp = dbt_printf ("%s/.tmp", tables);
    int dirfd = open (tables, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int tmpfd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0 || tmpfd < 0)
        dbt_bench_die ("rawfile directory", strerror (errno));
    long k;
    while ((k = atomic_fetch_add (&run->next, 1)) < run->jobs) {
        char name [48], final [48];
        snprintf (name, sizeof (name), "%ld.db", k);
        snprintf (final, sizeof (final), "results_job%ld.db", k);
        char *path = dbt_printf ("%s/%s", tmp, name);
        int fd = openat (tmpfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        sqlite3 *db = NULL;
        sqlite3_stmt *insert = NULL;
        int rc = fd < 0 ? SQLITE_CANTOPEN
               : sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, "unix-none");
        char *sql = dbt_printf ("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN; "
                                "CREATE TABLE \"results_job%ld\" %s", k, s_columns_sql);
        rc = rc ? rc : s_exec (db, sql);
        free (sql);
        sql = dbt_printf ("INSERT INTO \"results_job%ld\" VALUES (?, ?, ?)", k);
        rc = rc ? rc : sqlite3_prepare_v2 (db, sql, -1, &insert, NULL);
        free (sql);
        rc = rc ? rc : s_insert (insert, k);
        sqlite3_finalize (insert);
        rc = rc ? rc : s_exec (db, "COMMIT");
        const char *msg = db ? sqlite3_errmsg (db) : "cannot open";
        if (rc)
            s_fail (run, "rawfile", msg);
        sqlite3_close (db);
        if (rc == 0 && ((sync && fsync (fd) != 0) || renameat (tmpfd, name, dirfd, final) != 0
                        || (sync && fsync (dirfd) != 0)))
            s_fail (run, "rawfile", strerror (errno));
        if (fd >= 0)
            close (fd);
        free (path);
        s_finish (run);
    }
    close (tmpfd);
    close (dirfd);
    free (tmp);
    free (tables);
}

//  --------------------------------------------------------------------------
//  onefile: the one-file layout of earlier versions

static void
s_run_onefile (s_run_t *run)
{
    char *path = dbt_printf ("%s/onefile.db", run->dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                         | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        dbt_bench_die ("onefile open", sqlite3_errmsg (db));
    sqlite3_busy_timeout (db, 30000);
    if (s_exec (db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL") != SQLITE_OK)
        dbt_bench_die ("onefile WAL", sqlite3_errmsg (db));
    long k;
    while ((k = atomic_fetch_add (&run->next, 1)) < run->jobs) {
        sqlite3_stmt *insert = NULL;
        int rc = s_exec (db, "BEGIN IMMEDIATE");
        char *sql = dbt_printf ("DROP TABLE IF EXISTS \"dbt_stage_%ld\"; "
                                "CREATE TABLE \"dbt_stage_%ld\" %s", k, k, s_columns_sql);
        rc = rc ? rc : s_exec (db, sql);
        free (sql);
        sql = dbt_printf ("INSERT INTO \"dbt_stage_%ld\" VALUES (?, ?, ?)", k);
        rc = rc ? rc : sqlite3_prepare_v2 (db, sql, -1, &insert, NULL);
        free (sql);
        rc = rc ? rc : s_insert (insert, k);
        sqlite3_finalize (insert);
        sql = dbt_printf ("DROP TABLE IF EXISTS \"results_job%ld\"; "
                          "ALTER TABLE \"dbt_stage_%ld\" RENAME TO \"results_job%ld\"", k, k, k);
        rc = rc ? rc : s_exec (db, sql);
        free (sql);
        rc = rc ? rc : s_exec (db, "COMMIT");
        if (rc) {
            s_fail (run, "onefile", sqlite3_errmsg (db));
            s_exec (db, "ROLLBACK");
        }
        s_finish (run);
    }
    sqlite3_close (db);
    free (path);
}

//  --------------------------------------------------------------------------
//  Runs and report

static void *
s_thread (void *arg)
{
    s_run_t *run = (s_run_t *) arg;
    if (run->mode == S_DRIVER)
        s_run_driver (run);
    else
    if (run->mode == S_ONEFILE)
        s_run_onefile (run);
    else
        s_run_rawfile (run);
    return NULL;
}

static int
s_remove (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove (path);
}

//  Run mode once in a fresh directory under top with threads threads;
//  prints the windows, returns the summary.
static s_result_t
s_run (s_mode_t mode, const char *top, long jobs, int threads, long window, int runno)
{
    s_run_t run = { .mode = mode, .jobs = jobs };
    run.dir = dbt_printf ("%s/run-XXXXXX", top);
    if (!mkdtemp (run.dir))
        dbt_bench_die ("mkdtemp", strerror (errno));
    char err [DBT_ERRMSG_LEN];
    char *rawtmp = dbt_printf ("%s/raw.d/.tmp", run.dir);
    if (dbt_mkdirs (rawtmp, err))
        dbt_bench_die ("mkdir", err);
    free (rawtmp);
    atomic_init (&run.next, 0);
    atomic_init (&run.done, 0);
    atomic_init (&run.failed, 0);
    run.times = (double *) dbt_malloc ((size_t) jobs * sizeof (double));
    pthread_mutex_init (&run.mutex, NULL);
    pthread_t *ids = (pthread_t *) dbt_malloc ((size_t) threads * sizeof (pthread_t));
    double start = dbt_bench_now ();
    for (int i = 0; i < threads; i++)
        pthread_create (&ids [i], NULL, s_thread, &run);
    for (int i = 0; i < threads; i++)
        pthread_join (ids [i], NULL);
    s_result_t result = { 0, 0, jobs / (run.times [jobs - 1] - start), atomic_load (&run.failed) };
    printf ("%-8s run %d: jobs/s per %ld:", s_mode_names [mode], runno, window);
    for (long end = window; end <= jobs; end += window) {
        double from = end == window ? start : run.times [end - window - 1];
        double rate = window / (run.times [end - 1] - from);
        printf (" %.0f", rate);
        if (end == window)
            result.first = rate;
        result.last = rate;
    }
    printf (" | all %.0f, failed %ld%s%s\n", result.all, result.failed,
            run.firsterr [0] ? ", first: " : "", run.firsterr);
    fflush (stdout);
    pthread_mutex_destroy (&run.mutex);
    free (ids);
    free (run.times);
    free (run.dir);
    return result;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  "min/median/max" of n values (sorted in place) into out.
static void
s_stats (double *values, int n, char *out, size_t size)
{
    qsort (values, (size_t) n, sizeof (double), s_cmp_double);
    double median = n % 2 ? values [n / 2] : (values [n / 2 - 1] + values [n / 2]) / 2;
    snprintf (out, size, "%.0f/%.0f/%.0f", values [0], median, values [n - 1]);
}

//  Parse a positive number option; exits on a bad one.
static long
s_number (const char *text, const char *what)
{
    int64_t value = 0;
    if (dbt_parse_int64 (text, 1, 100000000, &value)) {
        fprintf (stderr, "sqlite_results_bench: %s must be a positive number, got '%s'\n",
                 what, text);
        exit (2);
    }
    return (long) value;
}

int
main (int argc, char *argv [])
{
    long jobs = 20000, window = 1000;
    int threads = 4, runs = 5;
    const char *modes = "driver,rawfile";
    const char *top = getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp";
    int opt;
    while ((opt = getopt (argc, argv, "n:t:r:w:m:d:")) != -1) {
        switch (opt) {
            case 'n': jobs = s_number (optarg, "-n"); break;
            case 't': threads = (int) s_number (optarg, "-t"); break;
            case 'r': runs = (int) s_number (optarg, "-r"); break;
            case 'w': window = s_number (optarg, "-w"); break;
            case 'm': modes = optarg; break;
            case 'd': top = optarg; break;
            default:
                fprintf (stderr, "usage: sqlite_results_bench [-n JOBS] [-t THREADS] [-r RUNS] "
                         "[-w WINDOW] [-m driver,rawfile,nosync,onefile] [-d DIR]\n");
                return 2;
        }
    }
    if (window > jobs)
        window = jobs;
    s_mode_t chosen [S_MODES];
    int nchosen = 0;
    char *list = dbt_strdup (modes);
    for (char *name = list, *next; name && *name; name = next) {
        next = strchr (name, ',');
        if (next)
            *next++ = 0;
        int m = 0;
        while (m < S_MODES && !streq (s_mode_names [m], name))
            m++;
        if (m == S_MODES || nchosen == S_MODES) {
            fprintf (stderr, "sqlite_results_bench: unknown or repeated mode '%s'\n", name);
            return 2;
        }
        chosen [nchosen++] = (s_mode_t) m;
    }
    free (list);
    char *dir = dbt_printf ("%s/dbt-sqlite-bench-XXXXXX", top);
    if (!mkdtemp (dir))
        dbt_bench_die ("mkdtemp", strerror (errno));
    printf ("sqlite_results_bench: %ld one-row jobs, %d threads, %d runs per mode, "
            "SQLite %s, in %s\n", jobs, threads, runs, sqlite3_libversion (), dir);
    s_result_t *results = (s_result_t *) dbt_malloc ((size_t) (runs * nchosen) * sizeof (s_result_t));
    for (int r = 0; r < runs; r++)
        for (int m = 0; m < nchosen; m++)
            results [r * nchosen + m] = s_run (chosen [m], dir, jobs, threads, window, r + 1);
    printf ("\njobs/s, min/median/max of %d runs (%ld jobs, %d threads, windows of %ld):\n",
            runs, jobs, threads, window);
    printf ("%-8s  %-20s %-20s %-20s %s\n", "mode", "first window", "last window", "whole run",
            "failed jobs");
    double *values = (double *) dbt_malloc ((size_t) runs * sizeof (double));
    for (int m = 0; m < nchosen; m++) {
        char first [64], last [64], all [64];
        long failed = 0;
        for (int r = 0; r < runs; r++) {
            values [r] = results [r * nchosen + m].first;
            failed += results [r * nchosen + m].failed;
        }
        s_stats (values, runs, first, sizeof (first));
        for (int r = 0; r < runs; r++)
            values [r] = results [r * nchosen + m].last;
        s_stats (values, runs, last, sizeof (last));
        for (int r = 0; r < runs; r++)
            values [r] = results [r * nchosen + m].all;
        s_stats (values, runs, all, sizeof (all));
        printf ("%-8s  %-20s %-20s %-20s %ld\n", s_mode_names [chosen [m]], first, last, all, failed);
    }
    free (values);
    free (results);
    nftw (dir, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    free (dir);
    return 0;
}
