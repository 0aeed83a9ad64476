/*  =========================================================================
    dbt_tasks - task files (goyesql) and the task registry

    Parses goyesql .sql files: "-- name: x" starts a task, other "-- tag: v"
    lines attach tags to it, other lines form its SQL. Recognised tags are
    name, db, queue, results, raw and conc; others are kept and ignored. The
    registry holds every task loaded from one or more directories (top-level
    *.sql, lexical order) and rejects duplicate names. After dbt_tasks_bind
    checks tags against the configuration, the registry is read-only and may
    be shared by every actor. No input can crash the parser: every problem
    is an error naming the file and line.
    =========================================================================
*/
#ifndef DBT_TASKS_H_INCLUDED
#define DBT_TASKS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "dbt_config.h"

//  One task. Strings are owned by the registry.
typedef struct {
    char *name;                 //  -- name:
    char *sql;                  //  query lines joined with single spaces
    char *file;                 //  file it came from
    int line;                   //  line of its name tag
    char *queue;                //  -- queue: (trimmed), NULL when absent;
                                //  after bind, the resolved queue
    int conc;                   //  -- conc:, 0 when absent
    bool raw;                   //  -- raw: present (any value)
    char **dbs;                 //  -- db: list, empty = every source db
    size_t ndbs;                //  number of dbs
    char **results;             //  -- results: list, empty = every backend
    size_t nresults;            //  number of results
    char **tag_names;           //  every tag in file order (incl. the above)
    char **tag_values;          //  their values
    size_t ntags;               //  number of tags
    int nparams;                //  parameter count found by prepare, -1 unknown
} dbt_task_t;

typedef struct _dbt_tasks_t dbt_tasks_t;

//  Create an empty registry.
dbt_tasks_t *
    dbt_tasks_new (void);

//  Destroy; nulls the pointer.
void
    dbt_tasks_destroy (dbt_tasks_t **self_p);

//  Parse the text of one file (filename is used in messages and kept).
//  Adds its tasks; on any error adds none and returns -1 with
//  "file:line: message" in err.
int
    dbt_tasks_parse (dbt_tasks_t *self, const char *text, size_t len,
                     const char *filename, char *err);

//  Load every top-level *.sql file of dir, in lexical order. A directory
//  without .sql files, an unreadable file or a duplicate name is an error.
int
    dbt_tasks_load_dir (dbt_tasks_t *self, const char *dir, char *err);

//  Check every task's db and results names against config and resolve its
//  queue (tag, else config->queue). Returns -1 with err on the first bad name.
int
    dbt_tasks_bind (dbt_tasks_t *self, const dbt_config_t *config, char *err);

//  Number of tasks.
size_t
    dbt_tasks_size (dbt_tasks_t *self);

//  Task by index in name order (0 .. size-1); NULL when out of range.
dbt_task_t *
    dbt_tasks_at (dbt_tasks_t *self, size_t index);

//  Task by name; NULL when unknown.
dbt_task_t *
    dbt_tasks_lookup (dbt_tasks_t *self, const char *name);

//  Self test of this module.
void
    dbt_tasks_test (bool verbose);

#endif
