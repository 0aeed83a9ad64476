/*  =========================================================================
    dbt_driver_mariadb - MySQL/MariaDB source and results driver (Connector/C)

    Config type "mysql" (alias "mariadb"). The DSN is a URL, parsed with
    libcurl's curl_url():

        mysql://USER:PASSWORD@HOST:PORT/DBNAME?OPTION=VALUE&...
        mariadb://...                          (the same)

    Upstream's go-sql-driver form, user:password@tcp(host:port)/db, is
    refused with a hint to rewrite it. USER, PASSWORD and DBNAME are
    percent-decoded (write '@' as %40, ':' as %3A, '/' as %2F). PORT
    defaults to 3306. HOST follows Connector/C: a name or address is
    reached over TCP, except "localhost", which means the default Unix
    socket (as for the mariadb client); write 127.0.0.1 for TCP on the
    local machine. Options (values percent-decoded; any other option is
    refused):

        socket=PATH     connect over this Unix socket (HOST is then ignored)
        ssl=false       no TLS (the default)
        ssl=true        TLS required, the server certificate not verified
        ssl=verify      TLS required and the server certificate verified
                        against ssl_ca / ssl_capath
        ssl_ca=PATH, ssl_capath=DIR, ssl_cert=PATH, ssl_key=PATH
                        TLS files; giving any of them implies ssl=true

    Sessions run with time_zone '+00:00', utf8mb4 and strict SQL modes added
    to the server's (STRICT_ALL_TABLES, NO_ZERO_DATE, NO_ZERO_IN_DATE,
    ERROR_FOR_DIVISION_BY_ZERO), so bad data fails instead of being mangled.

    Source: tasks run as prepared statements with args bound as strings
    (NULL binds SQL NULL) and rows are fetched unbuffered, one at a time, so
    memory does not grow with the result; a raw task without args runs over
    the text protocol (mysql_use_result). A task must be one statement that
    gives at most one result set. Column types:

        TINYINT(1) / BOOLEAN (signed)     BOOLEAN    a value other than 0/1
                                                     fails the query
        TINYINT SMALLINT MEDIUMINT INT,
        BIGINT signed, smaller UNSIGNED   BIGINT
        BIGINT UNSIGNED                   UBIGINT
        DECIMAL(p,s)                      DECIMAL(p,s)
        FLOAT, DOUBLE                     DOUBLE     shortest round-trip text
                                                     (FLOAT of its float value;
                                                     text-protocol raw tasks get
                                                     the server's 6 digits)
        DATE                              DATE
        DATETIME(n)                       TIMESTAMP
        TIMESTAMP(n)                      TIMESTAMPTZ  (UTC: the session zone)
        BIT(n)                            TEXT       its value in decimal
        TIME YEAR ENUM SET JSON CHAR
        VARCHAR TEXT, anything else       TEXT
        BINARY VARBINARY BLOB (binary)    TEXT       raw bytes

    Zero dates ('0000-00-00', or a zero month or day) have no canonical
    value: the query fails naming the column and row; NULLIF(col,
    '0000-00-00') in the task reads them as NULL.

    Cancel opens a second connection with the same settings and runs KILL
    QUERY on the first one's thread id; a query time limit is the session's
    max_statement_time (MariaDB only).

    Results: a fresh staging table (ENGINE=InnoDB, utf8mb4) with

        TEXT                LONGTEXT          any UTF-8, NUL bytes included
        BIGINT              BIGINT
        UBIGINT             BIGINT UNSIGNED
        DECIMAL(p,s)        DECIMAL(p,s)      when 1 <= p <= 65, s <= 38
        DECIMAL otherwise   LONGTEXT          the digits exactly, as text:
                                              MariaDB's DECIMAL(65,38) would
                                              round longer values
        DOUBLE              DOUBLE
        BOOLEAN             BOOLEAN           (TINYINT(1), 1 or 0)
        DATE                DATE
        TIMESTAMP           DATETIME(6)
        TIMESTAMPTZ         DATETIME(6)       holding UTC (MariaDB has no
                                              zone-aware type wide enough);
                                              reads back as TIMESTAMP

    Values a column cannot hold (NaN and infinities, infinite dates) are
    refused with the column and row named. Rows stream into the table with
    LOAD DATA LOCAL INFILE fed from memory (the server needs local_infile=1;
    only results connections enable LOCAL INFILE, and their handler serves
    nothing but the driver's own stream): a loader thread runs the
    statement while write_row fills a bounded queue of chunks, so memory
    stays bounded. Any warning the load raises fails the write, so a value
    the server would mangle (out of range, more fraction digits than the
    scale, invalid UTF-8) is an error naming the column and row. The commit
    swaps the table in with one RENAME TABLE (final to dbt_old_<16 hex
    digits>, staging to final) and then drops the old table. MariaDB DDL is
    not transactional: a crash can leave a staging or dbt_old_ table
    behind, never a partial table under the final name.
    =========================================================================
*/
#ifndef DBT_DRIVER_MARIADB_H_INCLUDED
#define DBT_DRIVER_MARIADB_H_INCLUDED

#include "dbt_driver.h"

//  The driver's vtable.
extern const dbt_driver_t dbt_driver_mariadb;

//  Parse a DSN as connect does (see above), without connecting, and
//  describe what it sets as one line of "name=value" words: host, port
//  (0 = Connector/C's default), user, password ("set" or "none", never
//  the password), db, socket, ssl (off, on or verify), ssl_ca, ssl_capath,
//  ssl_cert, ssl_key; an absent value is empty. *desc is a new string
//  (caller frees). Returns 0, or DBT_EINVAL with err set (never holding
//  the password) and *desc NULL. For tests and the DSN fuzz target.
int
    dbt_driver_mariadb_dsn (const char *dsn, char **desc, char *err);

//  Self test of this module (offline checks; the live checks run from
//  tests/dbt_drivertest against a real server).
void
    dbt_driver_mariadb_test (bool verbose);

#endif
