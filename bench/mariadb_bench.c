/*  =========================================================================
    mariadb_bench - MariaDB driver throughput against the raw client pipe

    Usage: bench/mariadb_bench HOST PORT USER PASSWORD DB [ROWS]   (make bench-drivers)

    Fills bench_src with ROWS (default 1,000,000) rows of the six-column
    report shape (bigint, decimal(12,2), datetime(6), date, boolean,
    varchar of ~25 chars) and measures, best of three runs each:

      raw text read     Connector/C mysql_use_result loop (reference)
      driver read       dbt_conn_query + dbt_conn_fetch (prepared statement,
                        unbuffered binary protocol: the driver's path)
      driver read raw   the same as a raw task (text protocol)
      driver write      dbt_conn_write_begin/row/commit of the same rows,
                        held in memory beforehand: LOAD DATA LOCAL INFILE
                        streamed from memory (the driver's path), and,
                        when the user may SET GLOBAL local_infile (root),
                        again on a server with local_infile=0 (the
                        driver's multi-row INSERT fallback, up to 4 MB)
      INSERT write      the rejected path, written here against Connector/C
                        with the same rows: multi-row INSERTs of ~1 MB,
                        values escaped with mysql_real_escape_string (
                        Connector/C has no mysql_real_escape_string_quote),
                        one at a time, and pipelined (the next statement
                        encoded while the server runs the last one)
      driver pipe       read and write together, as a job runs them
      client pipe       mariadb --batch --raw --quick -e "SELECT ..." | mariadb
                        --local-infile=1 -e "LOAD DATA LOCAL INFILE
                        '/dev/stdin' ...", the reference for the pipe
                        (--quick streams the SELECT; without it the client
                        reads the whole result before printing a row and
                        the pipe measured 2.65 s instead of 2.24 s)

    All writes go to a new table of the types the driver creates (LONGTEXT
    for the text column). Not part of make check: it needs a server
    (tests/lib/servers.sh start_mariadb gives one) and takes a few minutes.
    =========================================================================
*/
#include "dbt_bench.h"
#include <mysql.h>

//  Bytes per INSERT statement of the INSERT path.
#define INSERT_BYTES (1024 * 1024)

static const char s_src_columns [] =
    "(id BIGINT, amount DECIMAL(12,2), ts DATETIME(6), day DATE, flag BOOLEAN, "
    "note VARCHAR(40))";
static const char s_dst_columns [] =
    "(id BIGINT, amount DECIMAL(12,2), ts DATETIME(6), day DATE, flag BOOLEAN, "
    "note LONGTEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

//  Connection settings from the command line.
typedef struct {
    const char *host;           //  server host
    unsigned port;              //  server port
    const char *user;           //  user name
    const char *password;       //  password
    const char *db;             //  database
} s_server_t;

//  The reference for the ratios.
static const char s_ref [] = "client pipe";

//  A Connector/C connection to the server.
static MYSQL *
s_connect (const s_server_t *server)
{
    MYSQL *mysql = mysql_init (NULL);
    mysql_optionsv (mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect (mysql, server->host, server->user, server->password, server->db,
                             server->port, NULL, 0))
        dbt_bench_die ("connect", mysql_error (mysql));
    return mysql;
}

static void
s_exec (MYSQL *mysql, const char *sql)
{
    if (mysql_query (mysql, sql))
        dbt_bench_die (sql, mysql_error (mysql));
    mysql_free_result (mysql_store_result (mysql));
}

//  Create and fill bench_src unless it already holds rows rows.
static void
s_setup (const s_server_t *server, long rows)
{
    MYSQL *mysql = s_connect (server);
    bool ready = false;
    if (mysql_query (mysql, "SELECT count(*) FROM bench_src") == 0) {
        MYSQL_RES *res = mysql_store_result (mysql);
        MYSQL_ROW row = res ? mysql_fetch_row (res) : NULL;
        ready = row && row [0] && strtol (row [0], NULL, 10) == rows;
        mysql_free_result (res);
    }
    if (!ready) {
        s_exec (mysql, "DROP TABLE IF EXISTS bench_src");
        char *sql = dbt_printf ("CREATE TABLE bench_src %s ENGINE=InnoDB", s_src_columns);
        s_exec (mysql, sql);
        free (sql);
        sql = dbt_printf (
            "INSERT INTO bench_src SELECT seq, (seq %% 100000) / 100.0, "
            "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq * 1500000 MICROSECOND, "
            "DATE '2024-01-01' + INTERVAL seq %% 365 DAY, seq %% 2 = 0, "
            "CONCAT('user', seq %% 1000, ' some note text') FROM seq_1_to_%ld", rows);
        s_exec (mysql, sql);
        free (sql);
        s_exec (mysql, "ANALYZE TABLE bench_src");
    }
    mysql_close (mysql);
}

//  Raw Connector/C: text protocol over all rows. Returns rows read.
static long
s_raw_text (MYSQL *mysql)
{
    long rows = 0;
    size_t bytes = 0;
    if (mysql_query (mysql, "SELECT * FROM bench_src"))
        dbt_bench_die ("raw read", mysql_error (mysql));
    MYSQL_RES *res = mysql_use_result (mysql);
    MYSQL_ROW row;
    unsigned ncols = mysql_num_fields (res);
    while ((row = mysql_fetch_row (res))) {
        unsigned long *lens = mysql_fetch_lengths (res);
        for (unsigned i = 0; i < ncols; i++)
            bytes += lens [i] + (row [i] ? (size_t) *row [i] : 0);
        rows++;
    }
    if (mysql_errno (mysql))
        dbt_bench_die ("raw read", mysql_error (mysql));
    mysql_free_result (res);
    return bytes ? rows : 0;
}

//  Append one row to a multi-row INSERT: ('v', NULL, ...), booleans as
//  1/0, everything else a quoted, escaped string the server converts.
static void
s_insert_row (MYSQL *mysql, dbt_buf_t *sql, const dbt_row_t *row, const dbt_column_t *cols)
{
    dbt_buf_puts (sql, sql->data [sql->len - 1] == ')' ? ",(" : "(");
    for (size_t i = 0; i < row->ncols; i++) {
        if (i)
            dbt_buf_putc (sql, ',');
        if (!row->vals [i])
            dbt_buf_puts (sql, "NULL");
        else
        if (cols [i].type == DBT_COL_BOOLEAN)
            dbt_buf_putc (sql, row->vals [i][0] == 't' ? '1' : '0');
        else {
            dbt_buf_reserve (sql, 2 * row->lens [i] + 2);
            sql->data [sql->len++] = '\'';
            sql->len += mysql_real_escape_string (mysql, sql->data + sql->len,
                                                  row->vals [i], row->lens [i]);
            sql->data [sql->len++] = '\'';
            sql->data [sql->len] = 0;
        }
    }
    dbt_buf_putc (sql, ')');
}

//  The rejected path: the kept rows as ~1 MB multi-row INSERTs into a new
//  table in one transaction, then the same RENAME swap as the driver.
//  Pipelined: each statement is sent, the next one encoded while the
//  server runs it, and only then is its result read.
static long
s_insert_write (MYSQL *mysql, const dbt_bench_rows_t *rows, bool pipelined)
{
    s_exec (mysql, "DROP TABLE IF EXISTS bench_ins_stage");
    char *create = dbt_printf ("CREATE TABLE bench_ins_stage %s", s_dst_columns);
    s_exec (mysql, create);
    free (create);
    s_exec (mysql, "BEGIN");
    static const char head [] = "INSERT INTO bench_ins_stage VALUES ";
    dbt_buf_t sql [2] = { { 0 }, { 0 } };
    int cur = 0;
    bool in_flight = false;
    const char *vals [16];
    dbt_buf_puts (&sql [cur], head);
    for (size_t r = 0; r <= rows->nrows; r++) {
        if (r < rows->nrows) {
            dbt_row_t row = dbt_bench_row (rows, r, vals);
            s_insert_row (mysql, &sql [cur], &row, rows->cols);
            if (sql [cur].len < INSERT_BYTES)
                continue;
        }
        else
        if (sql [cur].len == sizeof (head) - 1)
            break;
        if (in_flight && mysql_read_query_result (mysql))
            dbt_bench_die ("insert", mysql_error (mysql));
        if (mysql_send_query (mysql, sql [cur].data, sql [cur].len))
            dbt_bench_die ("insert", mysql_error (mysql));
        in_flight = true;
        if (!pipelined) {
            if (mysql_read_query_result (mysql))
                dbt_bench_die ("insert", mysql_error (mysql));
            in_flight = false;
        }
        cur = 1 - cur;
        dbt_buf_reset (&sql [cur]);
        dbt_buf_puts (&sql [cur], head);
    }
    if (in_flight && mysql_read_query_result (mysql))
        dbt_bench_die ("insert", mysql_error (mysql));
    s_exec (mysql, "COMMIT");
    s_exec (mysql, "DROP TABLE IF EXISTS bench_ins");
    s_exec (mysql, "RENAME TABLE bench_ins_stage TO bench_ins");
    dbt_buf_free (&sql [0]);
    dbt_buf_free (&sql [1]);
    return (long) rows->nrows;
}

//  The mariadb client's SELECT piped into its LOAD DATA LOCAL INFILE from
//  /dev/stdin (new table, like the driver). The password goes through
//  MYSQL_PWD. Returns the rows piped.
static long
s_client_pipe (const s_server_t *server, long rows)
{
    char *client = dbt_printf ("mariadb --no-defaults -h '%s' -P %u -u '%s' '%s'",
                               server->host, server->port, server->user, server->db);
    char *cmd = dbt_printf (
        "%s --batch --raw --quick --skip-column-names -e 'SELECT * FROM bench_src' | "
        "%s --local-infile=1 -e 'DROP TABLE IF EXISTS bench_pipe; CREATE TABLE bench_pipe %s; "
        "LOAD DATA LOCAL INFILE \"/dev/stdin\" INTO TABLE bench_pipe CHARACTER SET utf8mb4'",
        client, client, s_dst_columns);
    if (system (cmd) != 0)
        dbt_bench_die ("client pipe", cmd);
    free (cmd);
    free (client);
    return rows;
}

int
main (int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf (stderr, "usage: mariadb_bench HOST PORT USER PASSWORD DB [ROWS]\n"
                 "  (names without single quotes, or ' in the client pipe breaks)\n");
        return 2;
    }
    int64_t port, parsed = 1000000;
    if (dbt_parse_int64 (argv [2], 1, 65535, &port))
        dbt_bench_die ("bad port", argv [2]);
    if (argc == 7 && dbt_parse_int64 (argv [6], 1, 100000000, &parsed))
        dbt_bench_die ("bad row count", argv [6]);
    for (int i = 1; i < 6; i++)
        if (strchr (argv [i], '\'') || strchr (argv [i], '@') || strchr (argv [i], '/'))
            dbt_bench_die ("unsupported character in", argv [i]);
    long nrows = (long) parsed;
    s_server_t server = { argv [1], (unsigned) port, argv [3], argv [4], argv [5] };
    setenv ("MYSQL_PWD", server.password, 1);
    s_setup (&server, nrows);
    char *dsn = dbt_printf ("mysql://%s:%s@%s:%u/%s", server.user, server.password,
                            server.host, server.port, server.db);
    char err [DBT_ERRMSG_LEN];
    dbt_dbconf_t sconf = { .name = "src", .type = "mysql", .dsn = dsn };
    dbt_dbconf_t rconf = { .name = "res", .type = "mysql", .dsn = dsn, .results = true };
    dbt_conn_t *src = dbt_conn_new (&sconf, err);
    dbt_conn_t *res = src ? dbt_conn_new (&rconf, err) : NULL;
    if (!res)
        dbt_bench_die ("connect", err);
    MYSQL *raw = s_connect (&server);

    printf ("%ld rows of %s\n", nrows, s_src_columns);
    double best, ref;
    long rows = 0;
    DBT_BENCH_BEST (best, rows, s_client_pipe (&server, nrows));
    ref = nrows / best;
    dbt_bench_report ("client pipe", rows, best, 0, NULL);
    DBT_BENCH_BEST (best, rows, s_raw_text (raw));
    dbt_bench_report ("raw text read", rows, best, 0, NULL);
    const char *select = "SELECT * FROM bench_src";
    DBT_BENCH_BEST (best, rows, dbt_bench_read (src, select, NULL, NULL));
    dbt_bench_report ("driver read", rows, best, 0, NULL);
    dbt_query_opts_t raw_task = { .raw = true };
    DBT_BENCH_BEST (best, rows, dbt_bench_read (src, select, &raw_task, NULL));
    dbt_bench_report ("driver read raw", rows, best, 0, NULL);

    dbt_bench_rows_t kept = { 0 };
    dbt_bench_read (src, select, NULL, &kept);
    DBT_BENCH_BEST (best, rows, dbt_bench_write (res, &kept, NULL));
    dbt_bench_report ("driver write (LOAD DATA)", rows, best, ref, s_ref);
    //  The driver's fallback for a server with local_infile=0: a new
    //  results connection sees the setting and writes multi-row INSERTs
    if (mysql_query (raw, "SET GLOBAL local_infile = 0") == 0) {
        dbt_conn_t *ins = dbt_conn_new (&rconf, err);
        if (!ins)
            dbt_bench_die ("connect", err);
        DBT_BENCH_BEST (best, rows, dbt_bench_write (ins, &kept, NULL));
        dbt_bench_report ("driver write (INSERTs, local_infile=0)", rows, best, ref, s_ref);
        dbt_conn_destroy (&ins);
        s_exec (raw, "SET GLOBAL local_infile = 1");
    }
    else
        printf ("driver write (INSERTs, local_infile=0): skipped, SET GLOBAL local_infile "
                "refused: %s\n", mysql_error (raw));
    DBT_BENCH_BEST (best, rows, s_insert_write (raw, &kept, false));
    dbt_bench_report ("INSERT write (1 MB)", rows, best, ref, s_ref);
    DBT_BENCH_BEST (best, rows, s_insert_write (raw, &kept, true));
    dbt_bench_report ("INSERT write (1 MB, pipelined)", rows, best, ref, s_ref);
    DBT_BENCH_BEST (best, rows, dbt_bench_pipe (src, res, select, NULL));
    dbt_bench_report ("driver pipe", rows, best, ref, s_ref);

    dbt_conn_drop_table (res, "bench_dst", err);
    dbt_conn_drop_table (res, "bench_ins", err);
    dbt_conn_drop_table (res, "bench_pipe", err);
    dbt_bench_rows_free (&kept);
    mysql_close (raw);
    dbt_conn_destroy (&src);
    dbt_conn_destroy (&res);
    free (dsn);
    return 0;
}
