/*  =========================================================================
    dbt_sqlite_dir - the SQLite results directory: one database file per table

    SQLite results tables live one per file in a directory next to the
    configured results database (DSN results.db: results.db.d/), so a job's
    write never touches another job's file or a shared schema. A table file
    is built under a temporary name in results.db.d/.tmp/, made durable
    (fsync) and renamed into place (rename(2) is atomic: a reader opens the
    old complete file or the new one), then the directory is fsynced.
    Dropping a table unlinks its file; a reader that has it open keeps
    reading it.

    Table names map to file names one to one and never by case alone:
    a-z 0-9 _ - stay, an upper-case letter X becomes +x and ':' becomes '=',
    then ".db" is added (results_CaseA -> results_+case+a.db). Other bytes
    are refused.

    A temporary file is flock()ed while it is written; files in .tmp/ that
    nobody holds (left by a crash) are removed by dbt_sqlite_dir_sweep. The
    object is used by one thread at a time; any number of objects (threads,
    processes) may share one directory. Plain POSIX calls, no SQLite.
    =========================================================================
*/
#ifndef DBT_SQLITE_DIR_H_INCLUDED
#define DBT_SQLITE_DIR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Longest table name with a file (its file name then fits 255 bytes).
#define DBT_SQLITE_TABLE_MAX 120

typedef struct _dbt_sqlite_dir_t dbt_sqlite_dir_t;

//  A table file being written: a temporary file, open and locked.
typedef struct {
    char *path;                 //  full path (owned), NULL when none
    char name [64];             //  its name in the .tmp directory
    int fd;                     //  open and flock()ed, -1 when none
} dbt_sqlite_stage_t;

//  Write the file name of table (e.g. "results_+case+a.db") into out.
//  Returns its length, or -1 when the table has no file name (empty, over
//  DBT_SQLITE_TABLE_MAX bytes, a byte outside A-Z a-z 0-9 _ : -) or out
//  is too small.
int
    dbt_sqlite_dir_file_name (const char *table, char *out, size_t size);

//  The table directory of a results database file: path + ".d". Caller
//  frees.
char *
    dbt_sqlite_dir_for (const char *dbfile);

//  Open the directory path. With create, make it and its .tmp/ if missing
//  and sweep abandoned temporary files; without, a missing directory is no
//  error and *self_p stays NULL. Returns 0, or DBT_ECONN with err set.
int
    dbt_sqlite_dir_open (const char *path, bool create, dbt_sqlite_dir_t **self_p, char *err);

//  Close; nulls the pointer. Safe on NULL.
void
    dbt_sqlite_dir_destroy (dbt_sqlite_dir_t **self_p);

//  The directory's path. Borrowed for the object's life.
const char *
    dbt_sqlite_dir_path (dbt_sqlite_dir_t *self);

//  A read-only, immutable SQLite URI of table's file ("file:...?mode=ro&
//  immutable=1", path percent-encoded), or NULL when table has no file
//  (now). Caller frees.
char *
    dbt_sqlite_dir_table_uri (dbt_sqlite_dir_t *self, const char *table);

//  Create a new, empty, locked temporary file into *stage (which must be
//  empty: path NULL, fd -1). Returns 0, or DBT_EFULL / DBT_ECONN with err
//  set.
int
    dbt_sqlite_dir_stage (dbt_sqlite_dir_t *self, dbt_sqlite_stage_t *stage, char *err);

//  Make the finished stage durable and the file of table, replacing any
//  older one atomically: fsync the file, rename it into place, fsync the
//  directory. On success the stage is consumed (path NULL, fd -1). Returns
//  0, or DBT_EINVAL (table has no file name), DBT_EFULL, DBT_ECONN with
//  err set; then the stage is unchanged (give it to dbt_sqlite_dir_discard).
int
    dbt_sqlite_dir_publish (dbt_sqlite_dir_t *self, dbt_sqlite_stage_t *stage,
                            const char *table, char *err);

//  Remove a stage's file and close it; leaves the stage empty. Safe on an
//  empty stage.
void
    dbt_sqlite_dir_discard (dbt_sqlite_dir_t *self, dbt_sqlite_stage_t *stage);

//  Remove table's file if there is one, durably (the directory is
//  fsynced). A table without a file name has nothing to remove. Returns 0,
//  or DBT_ECONN with err set.
int
    dbt_sqlite_dir_remove (dbt_sqlite_dir_t *self, const char *table, char *err);

//  Remove temporary files nobody holds (left by a crash). Returns how many.
size_t
    dbt_sqlite_dir_sweep (dbt_sqlite_dir_t *self);

//  Self test of this module.
void
    dbt_sqlite_dir_test (bool verbose);

#endif
