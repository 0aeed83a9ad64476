/*  =========================================================================
    dbt_tasks - task files (goyesql) and the task registry

    See dbt_tasks.h. The line grammar reproduces goyesql v2.2.0 exactly,
    including the quirks of its regular expressions (tag = everything up to
    the last ':' followed by a character), with a hand-written matcher. The
    registry is a name-sorted array of owned tasks: lookups use bsearch.
    Parsing builds new tasks aside and adds them only when the whole input
    is good, so a failed parse or load leaves the registry unchanged.
    =========================================================================
*/
#include "dbt_classes.h"
#include <dirent.h>
#include <sys/stat.h>

//  Longest line: bufio.Scanner's 64 KiB buffer holds the line and its \n.
#define S_MAX_LINE      65535
//  Largest task file read by dbt_tasks_load_dir.
#define S_MAX_FILE      (64 * 1024 * 1024)
//  conc tag range.
#define S_CONC_MAX      10000

struct _dbt_tasks_t {
    dbt_task_t **tasks;         //  owned tasks, sorted by name
    size_t size;                //  number of tasks
    size_t cap;                 //  allocated slots
};

//  Kinds of lines, in goyesql's order of classification.
typedef enum {
    S_LINE_BLANK,               //  empty after trimming spaces
    S_LINE_TAG,                 //  -- tag: value
    S_LINE_COMMENT,             //  -- anything else
    S_LINE_QUERY                //  SQL
} s_line_t;

//  State of one dbt_tasks_parse.
typedef struct {
    dbt_tasks_t *self;          //  registry the tasks go to (duplicates)
    dbt_tasks_t *other;         //  second registry checked, or NULL
    const char *filename;       //  file name for messages
    dbt_task_t **tasks;         //  new tasks in file order (owned)
    size_t ntasks;              //  number of new tasks
    size_t cap;                 //  allocated slots
    dbt_task_t *task;           //  task being read, or NULL
    dbt_buf_t sql;              //  its query text
    zhashx_t *names;            //  names of new tasks -> task
    zhashx_t *tags;             //  tags of the current task
    int line;                   //  current line number
    char *err;                  //  caller's error buffer
} s_parser_t;

//  --------------------------------------------------------------------------
//  Task objects

//  Free a NULL-terminated or counted string list.
static void
s_strings_free (char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free (list [i]);
    free (list);
}

//  Append an owned string to a list.
static void
s_strings_add (char ***list, size_t *count, char *item)
{
    *list = (char **) dbt_realloc (*list, (*count + 1) * sizeof (char *));
    (*list) [(*count)++] = item;
}

//  Destroy a task; nulls the pointer.
static void
s_task_destroy (dbt_task_t **task_p)
{
    dbt_task_t *task = *task_p;
    if (!task)
        return;
    free (task->name);
    free (task->sql);
    free (task->file);
    free (task->queue);
    s_strings_free (task->dbs, task->ndbs);
    s_strings_free (task->results, task->nresults);
    s_strings_free (task->tag_names, task->ntags);
    s_strings_free (task->tag_values, task->ntags);
    free (task);
    *task_p = NULL;
}

//  --------------------------------------------------------------------------
//  Create an empty registry.

dbt_tasks_t *
dbt_tasks_new (void)
{
    return (dbt_tasks_t *) dbt_malloc (sizeof (dbt_tasks_t));
}

//  --------------------------------------------------------------------------
//  Destroy; nulls the pointer.

void
dbt_tasks_destroy (dbt_tasks_t **self_p)
{
    assert (self_p);
    dbt_tasks_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        s_task_destroy (&self->tasks [i]);
    free (self->tasks);
    free (self);
    *self_p = NULL;
}

//  Order tasks by name.
static int
s_task_cmp (const void *a, const void *b)
{
    const dbt_task_t *ta = *(const dbt_task_t *const *) a;
    const dbt_task_t *tb = *(const dbt_task_t *const *) b;
    return strcmp (ta->name, tb->name);
}

//  Move tasks into self (which must not hold their names) and re-sort.
//  Takes the tasks; the array itself stays with the caller.
static void
s_tasks_take (dbt_tasks_t *self, dbt_task_t **tasks, size_t count)
{
    if (count == 0)
        return;
    if (self->size + count > self->cap) {
        self->cap = (self->size + count) * 2;
        self->tasks = (dbt_task_t **) dbt_realloc (self->tasks, self->cap * sizeof (dbt_task_t *));
    }
    memcpy (self->tasks + self->size, tasks, count * sizeof (dbt_task_t *));
    self->size += count;
    qsort (self->tasks, self->size, sizeof (dbt_task_t *), s_task_cmp);
}

//  --------------------------------------------------------------------------
//  Task by name; NULL when unknown.

dbt_task_t *
dbt_tasks_lookup (dbt_tasks_t *self, const char *name)
{
    assert (self);
    if (!name || self->size == 0)
        return NULL;
    dbt_task_t key = { .name = (char *) name };
    dbt_task_t *keyp = &key;
    dbt_task_t **found = (dbt_task_t **) bsearch (&keyp, self->tasks, self->size,
                                                  sizeof (dbt_task_t *), s_task_cmp);
    return found ? *found : NULL;
}

//  --------------------------------------------------------------------------
//  Number of tasks.

size_t
dbt_tasks_size (dbt_tasks_t *self)
{
    assert (self);
    return self->size;
}

//  --------------------------------------------------------------------------
//  Task by index in name order; NULL when out of range.

dbt_task_t *
dbt_tasks_at (dbt_tasks_t *self, size_t index)
{
    assert (self);
    return index < self->size ? self->tasks [index] : NULL;
}

//  --------------------------------------------------------------------------
//  Line grammar

//  RE2's \s: [\t\n\f\r ] (no \v).
static bool
s_re2_space (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

//  Go's strings.TrimSpace for ASCII (the only whitespace in our tags).
static void
s_trim (const char **start, size_t *len)
{
    while (*len && isspace ((unsigned char) (*start) [0])) {
        (*start)++;
        (*len)--;
    }
    while (*len && isspace ((unsigned char) (*start) [*len - 1]))
        (*len)--;
}

//  Classify a line (CR already stripped, spaces trimmed) the way goyesql
//  does: blank; tag when it matches ^\s*--\s*(.+)\s*:\s*(.+); comment when
//  it matches ^\s*--; else query. For tags, sets the tag and value spans.
//
//  Under RE2's leftmost-first, greedy rules the first (.+) ends at the last
//  ':' that has at least one character after it (so the tag keeps spaces
//  before that ':'), and starts after every \s following "--", except when
//  that would leave it empty: then \s* gives back one character, so
//  "-- :x" is tag " ". The value skips \s but keeps at least one character.
static s_line_t
s_classify (const char *line, size_t len, const char **tag, size_t *tag_len,
            const char **value, size_t *value_len)
{
    if (len == 0)
        return S_LINE_BLANK;
    size_t p = 0;
    while (p < len && s_re2_space (line [p]))
        p++;
    if (len - p < 2 || line [p] != '-' || line [p + 1] != '-')
        return S_LINE_QUERY;
    size_t start = p + 2;       //  after "--"
    size_t space = 0;           //  \s characters after "--"
    while (start + space < len && s_re2_space (line [start + space]))
        space++;
    //  The last ':' with at least one character after it.
    size_t colon = 0;
    bool found = false;
    for (size_t i = len - 1; i > start; i--) {
        if (line [i - 1] == ':') {
            colon = i - 1;
            found = true;
            break;
        }
    }
    if (!found || colon < start)
        return S_LINE_COMMENT;
    size_t tag_start;
    if (colon > start + space)
        tag_start = start + space;
    else
    if (space > 0)              //  colon == start + space: give one back
        tag_start = start + space - 1;
    else
        return S_LINE_COMMENT;  //  "--:x": (.+) would be empty
    size_t v = colon + 1;
    while (v < len - 1 && s_re2_space (line [v]))
        v++;
    *tag = line + tag_start;
    *tag_len = colon - tag_start;
    *value = line + v;
    *value_len = len - v;
    return S_LINE_TAG;
}

//  --------------------------------------------------------------------------
//  Parser

//  Set "file:line: message" in the parser's error buffer; returns -1.
static int
s_fail (s_parser_t *parser, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_fail (s_parser_t *parser, const char *format, ...)
{
    char msg [DBT_ERRMSG_LEN];
    va_list args;
    va_start (args, format);
    vsnprintf (msg, sizeof (msg), format, args);
    va_end (args);
    dbt_err_set (parser->err, "%s:%d: %s", parser->filename, parser->line, msg);
    return -1;
}

//  Finish the current task: it must have a query.
static int
s_task_end (s_parser_t *parser)
{
    dbt_task_t *task = parser->task;
    if (!task)
        return 0;
    parser->task = NULL;
    if (parser->sql.len == 0) {
        dbt_err_set (parser->err, "%s:%d: '%s' is missing query", parser->filename, task->line,
                     task->name);
        return -1;
    }
    task->sql = dbt_buf_take (&parser->sql);
    return 0;
}

//  Split a db/results list on ',', trimming and skipping empties, dropping
//  repeats. Returns -1 when no name is left.
static int
s_split_list (const char *value, size_t len, char ***list, size_t *count)
{
    zhashx_t *seen = zhashx_new ();
    const char *p = value;
    const char *end = value + len;
    while (p <= end) {
        const char *comma = (const char *) memchr (p, ',', (size_t) (end - p));
        const char *stop = comma ? comma : end;
        const char *item = p;
        size_t item_len = (size_t) (stop - p);
        s_trim (&item, &item_len);
        if (item_len) {
            char *name = dbt_strndup (item, item_len);
            if (zhashx_insert (seen, name, name) == 0)
                s_strings_add (list, count, name);
            else
                free (name);
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    zhashx_destroy (&seen);
    return *count ? 0 : -1;
}

//  Start a task at a name tag.
static int
s_name_tag (s_parser_t *parser, const char *value, size_t value_len)
{
    if (s_task_end (parser))
        return -1;
    char *name = dbt_strndup (value, value_len);
    dbt_task_t *first = (dbt_task_t *) zhashx_lookup (parser->names, name);
    if (!first)
        first = dbt_tasks_lookup (parser->self, name);
    if (!first && parser->other)
        first = dbt_tasks_lookup (parser->other, name);
    if (first) {
        s_fail (parser, "duplicate task '%s' (first defined in %s:%d)", name, first->file,
                first->line);
        free (name);
        return -1;
    }
    dbt_task_t *task = (dbt_task_t *) dbt_malloc (sizeof (dbt_task_t));
    task->name = name;
    task->file = dbt_strdup (parser->filename);
    task->line = parser->line;
    task->nparams = -1;
    if (parser->ntasks == parser->cap) {
        parser->cap = parser->cap ? parser->cap * 2 : 16;
        parser->tasks = (dbt_task_t **) dbt_realloc (parser->tasks,
                                                     parser->cap * sizeof (dbt_task_t *));
    }
    parser->tasks [parser->ntasks++] = task;
    zhashx_insert (parser->names, name, task);
    zhashx_purge (parser->tags);
    parser->task = task;
    return 0;
}

//  Attach a tag (other than name) to the current task.
static int
s_other_tag (s_parser_t *parser, const char *tag, const char *value, size_t value_len)
{
    dbt_task_t *task = parser->task;
    if (!task)
        return s_fail (parser, "'name' should be the first tag");
    if (zhashx_insert (parser->tags, tag, task) != 0)
        return s_fail (parser, "duplicate tag '%s' in task '%s'", tag, task->name);
    if (streq (tag, "db") || streq (tag, "results")) {
        bool db = streq (tag, "db");
        if (s_split_list (value, value_len, db ? &task->dbs : &task->results,
                          db ? &task->ndbs : &task->nresults) != 0)
            return s_fail (parser, "task '%s': '%s' tag names no %s", task->name, tag,
                           db ? "database" : "results backend");
    }
    else
    if (streq (tag, "queue")) {
        const char *queue = value;
        size_t len = value_len;
        s_trim (&queue, &len);
        if (len == 0)
            return s_fail (parser, "task '%s': empty queue tag", task->name);
        task->queue = dbt_strndup (queue, len);
    }
    else
    if (streq (tag, "conc")) {
        const char *conc = value;
        size_t len = value_len;
        s_trim (&conc, &len);
        char *text = dbt_strndup (conc, len);
        int64_t number;
        int rc = dbt_parse_int64 (text, 1, S_CONC_MAX, &number);
        if (rc == 0)
            task->conc = (int) number;
        else
            s_fail (parser, "task '%s': conc: expected an integer from 1 to %d, got '%.*s'",
                    task->name, S_CONC_MAX, (int) value_len, value);
        free (text);
        if (rc != 0)
            return -1;
    }
    else
    if (streq (tag, "raw"))
        task->raw = true;
    return 0;
}

//  Handle one tag line.
static int
s_tag (s_parser_t *parser, const char *tag, size_t tag_len, const char *value, size_t value_len)
{
    char *name = dbt_strndup (tag, tag_len);
    int rc;
    if (streq (name, "name"))
        rc = s_name_tag (parser, value, value_len);
    else
        rc = s_other_tag (parser, name, value, value_len);
    if (rc == 0) {
        //  Keep every tag, recognised or not, in file order.
        dbt_task_t *task = parser->task;
        size_t count = task->ntags;
        s_strings_add (&task->tag_names, &count, name);
        s_strings_add (&task->tag_values, &task->ntags, dbt_strndup (value, value_len));
    }
    else
        free (name);
    return rc;
}

//  Handle one line (CR stripped, not trimmed).
static int
s_line (s_parser_t *parser, const char *line, size_t len)
{
    while (len && line [0] == ' ') {
        line++;
        len--;
    }
    while (len && line [len - 1] == ' ')
        len--;
    const char *tag = NULL, *value = NULL;
    size_t tag_len = 0, value_len = 0;
    switch (s_classify (line, len, &tag, &tag_len, &value, &value_len)) {
        case S_LINE_BLANK:
        case S_LINE_COMMENT:
            return 0;
        case S_LINE_TAG:
            return s_tag (parser, tag, tag_len, value, value_len);
        case S_LINE_QUERY:
            if (!parser->task)
                return s_fail (parser, "query is missing the 'name' tag: %.*s",
                               (int) (len > 80 ? 80 : len), line);
            if (parser->sql.len)
                dbt_buf_putc (&parser->sql, ' ');
            dbt_buf_append (&parser->sql, line, len);
            return 0;
    }
    return 0;
}

//  Parse text into new tasks, checking names against self and other too.
//  On success moves the tasks into self.
static int
s_parse (dbt_tasks_t *self, dbt_tasks_t *other, const char *text, size_t len,
         const char *filename, char *err)
{
    s_parser_t parser = {
        .self = self, .other = other, .filename = filename ? filename : "<input>", .err = err
    };
    parser.names = zhashx_new ();
    parser.tags = zhashx_new ();
    int rc = 0;
    size_t pos = 0;
    while (rc == 0 && pos < len) {
        parser.line++;
        const char *line = text + pos;
        const char *nl = (const char *) memchr (line, '\n', len - pos);
        size_t line_len = nl ? (size_t) (nl - line) : len - pos;
        pos += line_len + (nl ? 1 : 0);
        if (line_len > S_MAX_LINE)
            rc = s_fail (&parser, "line too long (more than %d bytes)", S_MAX_LINE);
        else
        if (memchr (line, 0, line_len))
            rc = s_fail (&parser, "NUL byte in task file (not a text file?)");
        else {
            if (line_len && line [line_len - 1] == '\r')
                line_len--;
            rc = s_line (&parser, line, line_len);
        }
    }
    if (rc == 0)
        rc = s_task_end (&parser);
    if (rc == 0)
        s_tasks_take (self, parser.tasks, parser.ntasks);
    else
        for (size_t i = 0; i < parser.ntasks; i++)
            s_task_destroy (&parser.tasks [i]);
    free (parser.tasks);
    dbt_buf_free (&parser.sql);
    zhashx_destroy (&parser.names);
    zhashx_destroy (&parser.tags);
    return rc;
}

//  --------------------------------------------------------------------------
//  Parse the text of one file; all or nothing.

int
dbt_tasks_parse (dbt_tasks_t *self, const char *text, size_t len, const char *filename, char *err)
{
    assert (self);
    assert (text || len == 0);
    return s_parse (self, NULL, text, len, filename, err);
}

//  Read a whole file into a new buffer. Caller frees.
static char *
s_read_file (const char *path, size_t *len, char *err)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        dbt_err_set (err, "cannot open task file '%s': %s", path, strerror (errno));
        return NULL;
    }
    dbt_buf_t buf = { 0 };
    char chunk [65536];
    size_t n;
    while ((n = fread (chunk, 1, sizeof (chunk), file)) > 0) {
        if (buf.len + n > S_MAX_FILE)
            break;
        dbt_buf_append (&buf, chunk, n);
    }
    bool too_big = n > 0;
    bool failed = ferror (file);
    int saved = errno;
    fclose (file);
    if (too_big || failed) {
        if (too_big)
            dbt_err_set (err, "task file '%s' is larger than %d MiB", path, S_MAX_FILE >> 20);
        else
            dbt_err_set (err, "cannot read task file '%s': %s", path, strerror (saved));
        dbt_buf_free (&buf);
        return NULL;
    }
    *len = buf.len;
    return dbt_buf_take (&buf);
}

static int
s_strcmp_ptr (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

//  --------------------------------------------------------------------------
//  Load every top-level *.sql file of dir, in lexical order. Names starting
//  with '.' are skipped, as glob(3) does; so is anything not a regular file.
//  All or nothing.

int
dbt_tasks_load_dir (dbt_tasks_t *self, const char *dir, char *err)
{
    assert (self);
    assert (dir);
    DIR *handle = opendir (dir);
    if (!handle) {
        dbt_err_set (err, "cannot read SQL directory '%s': %s", dir, strerror (errno));
        return -1;
    }
    //  Paths as dir/name without doubled slashes.
    size_t dirlen = strlen (dir);
    while (dirlen > 1 && dir [dirlen - 1] == '/')
        dirlen--;
    const char *sep = dir [dirlen - 1] == '/' ? "" : "/";
    char **paths = NULL;
    size_t npaths = 0;
    int rc = 0;
    while (true) {
        errno = 0;              //  readdir reports errors only through errno
        struct dirent *entry = readdir (handle);
        if (!entry)
            break;
        size_t len = strlen (entry->d_name);
        if (entry->d_name [0] == '.' || len < 5 || strcmp (entry->d_name + len - 4, ".sql") != 0)
            continue;
        char *path = dbt_printf ("%.*s%s%s", (int) dirlen, dir, sep, entry->d_name);
        struct stat st;
        if (stat (path, &st) != 0) {
            dbt_err_set (err, "cannot read task file '%s': %s", path, strerror (errno));
            free (path);
            rc = -1;
            break;
        }
        if (!S_ISREG (st.st_mode)) {
            free (path);
            continue;
        }
        s_strings_add (&paths, &npaths, path);
    }
    if (rc == 0 && errno != 0) {
        dbt_err_set (err, "cannot read SQL directory '%s': %s", dir, strerror (errno));
        rc = -1;
    }
    closedir (handle);
    if (rc == 0 && npaths == 0) {
        dbt_err_set (err, "no SQL files found in %s", dir);
        rc = -1;
    }
    if (npaths)
        qsort (paths, npaths, sizeof (char *), s_strcmp_ptr);
    //  Parse into a scratch registry, then move everything at once.
    dbt_tasks_t *loaded = dbt_tasks_new ();
    for (size_t i = 0; rc == 0 && i < npaths; i++) {
        size_t len = 0;
        char *text = s_read_file (paths [i], &len, err);
        if (!text)
            rc = -1;
        else
            rc = s_parse (loaded, self, text, len, paths [i], err);
        free (text);
    }
    if (rc == 0) {
        s_tasks_take (self, loaded->tasks, loaded->size);
        loaded->size = 0;
    }
    dbt_tasks_destroy (&loaded);
    s_strings_free (paths, npaths);
    return rc;
}

//  --------------------------------------------------------------------------
//  Check db and results names against config and resolve queues.

int
dbt_tasks_bind (dbt_tasks_t *self, const dbt_config_t *config, char *err)
{
    assert (self);
    assert (config);
    for (size_t i = 0; i < self->size; i++) {
        dbt_task_t *task = self->tasks [i];
        for (size_t j = 0; j < task->ndbs; j++) {
            if (!dbt_config_db (config, task->dbs [j])) {
                dbt_err_set (err, "%s:%d: task '%s': unknown db '%s'", task->file, task->line,
                             task->name, task->dbs [j]);
                return -1;
            }
        }
        for (size_t j = 0; j < task->nresults; j++) {
            if (!dbt_config_results (config, task->results [j])) {
                dbt_err_set (err, "%s:%d: task '%s': unknown results backend '%s'", task->file,
                             task->line, task->name, task->results [j]);
                return -1;
            }
        }
        if (task->queue && !dbt_id_valid (task->queue)) {
            dbt_err_set (err, "%s:%d: task '%s': bad queue name '%s' (expected 1 to 64 "
                         "characters A-Z a-z 0-9 _ : -)", task->file, task->line, task->name,
                         task->queue);
            return -1;
        }
    }
    for (size_t i = 0; i < self->size; i++)
        if (!self->tasks [i]->queue)
            self->tasks [i]->queue = dbt_strdup (config->queue);
    return 0;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

//  Parse text into a fresh registry; expect an error containing expect, or
//  success when expect is NULL (then the caller destroys the registry).
static dbt_tasks_t *
s_test_parse (const char *text, const char *expect)
{
    dbt_tasks_t *tasks = dbt_tasks_new ();
    char err [DBT_ERRMSG_LEN] = "";
    int rc = dbt_tasks_parse (tasks, text, strlen (text), "t.sql", err);
    if (expect) {
        if (rc != -1 || !strstr (err, expect) || dbt_tasks_size (tasks) != 0) {
            fprintf (stderr, "tasks test: expected error '%s', got '%s'\n", expect,
                     rc ? err : "(success)");
            assert (false);
        }
        dbt_tasks_destroy (&tasks);
        return NULL;
    }
    if (rc != 0) {
        fprintf (stderr, "tasks test: unexpected error '%s'\n", err);
        assert (false);
    }
    return tasks;
}

//  Write text to dir/name.
static void
s_test_write (const char *dir, const char *name, const char *text)
{
    char *path = dbt_printf ("%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert (file);
    assert (fwrite (text, 1, strlen (text), file) == strlen (text));
    assert (fclose (file) == 0);
    free (path);
}

//  Remove dir/name.
static void
s_test_unlink (const char *dir, const char *name)
{
    char *path = dbt_printf ("%s/%s", dir, name);
    assert (unlink (path) == 0);
    free (path);
}

void
dbt_tasks_test (bool verbose)
{
    //  The line matcher against goyesql's regular expressions
    static const struct {
        const char *line;       //  line after CR strip and space trim
        s_line_t type;          //  expected class
        const char *tag;        //  expected tag, for S_LINE_TAG
        const char *value;      //  expected value
    } lines [] = {
        { "", S_LINE_BLANK, NULL, NULL },
        { "-- name: get", S_LINE_TAG, "name", "get" },
        { "--name:get", S_LINE_TAG, "name", "get" },
        { "-- name: get:x", S_LINE_TAG, "name: get", "x" },
        { "-- name : foo", S_LINE_TAG, "name ", "foo" },
        { "-- name:\tfoo\t", S_LINE_TAG, "name", "foo\t" },
        { "--\tname:\t\tfoo", S_LINE_TAG, "name", "foo" },
        { "\t-- db: a", S_LINE_TAG, "db", "a" },
        { "\t \t--\f\rdb:x", S_LINE_TAG, "db", "x" },
        { "-- name:\t\t", S_LINE_TAG, "name", "\t" },
        { "-- a::b", S_LINE_TAG, "a:", "b" },
        { "-- a: b:", S_LINE_TAG, "a", "b:" },
        { "-- Note: see ticket 12", S_LINE_TAG, "Note", "see ticket 12" },
        { "-- :x", S_LINE_TAG, " ", "x" },
        { "--  :x", S_LINE_TAG, " ", "x" },
        { "--\t\t:x", S_LINE_TAG, "\t", "x" },
        { "-- \vname: x", S_LINE_TAG, "\vname", "x" },
        { "-- caf\xc3\xa9: cr\xe8me", S_LINE_TAG, "caf\xc3\xa9", "cr\xe8me" },
        { "--:x", S_LINE_COMMENT, NULL, NULL },
        { "-- name:", S_LINE_COMMENT, NULL, NULL },
        { "-- plain comment", S_LINE_COMMENT, NULL, NULL },
        { "--", S_LINE_COMMENT, NULL, NULL },
        { "---", S_LINE_COMMENT, NULL, NULL },
        { "\t--", S_LINE_COMMENT, NULL, NULL },
        { "-", S_LINE_QUERY, NULL, NULL },
        { "- - name: x", S_LINE_QUERY, NULL, NULL },
        { "\v-- name: x", S_LINE_QUERY, NULL, NULL },
        { "SELECT 1 -- name: x", S_LINE_QUERY, NULL, NULL },
        { NULL, S_LINE_BLANK, NULL, NULL }
    };
    for (size_t i = 0; lines [i].line; i++) {
        const char *tag = NULL, *value = NULL;
        size_t tag_len = 0, value_len = 0;
        s_line_t type = s_classify (lines [i].line, strlen (lines [i].line), &tag, &tag_len,
                                    &value, &value_len);
        bool ok = type == lines [i].type;
        if (ok && type == S_LINE_TAG)
            ok = tag_len == strlen (lines [i].tag) && memcmp (tag, lines [i].tag, tag_len) == 0
              && value_len == strlen (lines [i].value)
              && memcmp (value, lines [i].value, value_len) == 0;
        if (!ok) {
            fprintf (stderr, "tasks test: line '%s' classified %d '%.*s' '%.*s'\n",
                     lines [i].line, (int) type, (int) tag_len, tag ? tag : "",
                     (int) value_len, value ? value : "");
            assert (false);
        }
    }

    //  A file with every tag, multi-line queries, comments and CRLF
    dbt_tasks_t *tasks = s_test_parse (
        "-- Tasks for tests (a comment without a colon)\n"
        "\n"
        "-- name: b_task\r\n"
        "-- db:  src , other,,src \r\n"
        "-- results: res\n"
        "-- queue:  \tfast \n"
        "-- conc: 5\n"
        "-- raw: 0\n"
        "-- concurrency: 9\n"
        "   SELECT a,  b\t\r\n"
        "-- a comment inside the query\n"
        "\n"
        "  FROM t -- inline: kept\n"
        "WHERE x = $1;  \n"
        "-- name: a_task\n"
        "-- Note: the colon makes this a tag\n"
        "SELECT 1", NULL);
    assert (dbt_tasks_size (tasks) == 2);
    dbt_task_t *task = dbt_tasks_at (tasks, 0);
    assert (task && streq (task->name, "a_task") && dbt_tasks_lookup (tasks, "a_task") == task);
    assert (streq (task->sql, "SELECT 1") && task->line == 15 && streq (task->file, "t.sql"));
    assert (task->queue == NULL && task->conc == 0 && !task->raw && task->nparams == -1);
    assert (task->ndbs == 0 && task->nresults == 0 && task->ntags == 2);
    assert (streq (task->tag_names [1], "Note"));
    assert (streq (task->tag_values [1], "the colon makes this a tag"));
    task = dbt_tasks_at (tasks, 1);
    assert (task && streq (task->name, "b_task") && dbt_tasks_lookup (tasks, "b_task") == task);
    assert (streq (task->sql, "SELECT a,  b\t FROM t -- inline: kept WHERE x = $1;"));
    assert (task->line == 3);
    assert (task->ndbs == 2 && streq (task->dbs [0], "src") && streq (task->dbs [1], "other"));
    assert (task->nresults == 1 && streq (task->results [0], "res"));
    assert (streq (task->queue, "fast") && task->conc == 5 && task->raw);
    assert (task->ntags == 7);
    static const char *names [] = { "name", "db", "results", "queue", "conc", "raw", "concurrency" };
    for (size_t i = 0; i < 7; i++)
        assert (streq (task->tag_names [i], names [i]));
    assert (streq (task->tag_values [0], "b_task"));
    assert (streq (task->tag_values [1], "src , other,,src"));
    assert (streq (task->tag_values [3], "fast"));
    assert (streq (task->tag_values [6], "9"));
    assert (dbt_tasks_at (tasks, 2) == NULL);
    assert (dbt_tasks_lookup (tasks, "c_task") == NULL);
    assert (dbt_tasks_lookup (tasks, NULL) == NULL);

    //  A failed parse leaves the registry as it was
    char err [DBT_ERRMSG_LEN];
    const char *broken = "-- name: c_task\nSELECT 1;\n-- name: b_task\nSELECT 2;\n";
    assert (dbt_tasks_parse (tasks, broken, strlen (broken), "u.sql", err) == -1);
    assert (streq (err, "u.sql:3: duplicate task 'b_task' (first defined in t.sql:3)"));
    assert (dbt_tasks_size (tasks) == 2 && dbt_tasks_lookup (tasks, "c_task") == NULL);
    const char *more = "-- name: c_task\nSELECT 3;\n-- name: 0_task\nSELECT 0;\n";
    assert (dbt_tasks_parse (tasks, more, strlen (more), "v.sql", err) == 0);
    assert (dbt_tasks_size (tasks) == 4);
    assert (streq (dbt_tasks_at (tasks, 0)->name, "0_task"));
    assert (streq (dbt_tasks_at (tasks, 3)->name, "c_task"));
    assert (streq (dbt_tasks_lookup (tasks, "c_task")->file, "v.sql"));
    dbt_tasks_destroy (&tasks);
    assert (tasks == NULL);
    dbt_tasks_destroy (&tasks);

    //  Odd but valid input
    tasks = s_test_parse ("", NULL);
    assert (dbt_tasks_size (tasks) == 0 && dbt_tasks_at (tasks, 0) == NULL);
    dbt_tasks_destroy (&tasks);
    tasks = s_test_parse ("-- comment\n\n   \n", NULL);
    assert (dbt_tasks_size (tasks) == 0);
    dbt_tasks_destroy (&tasks);
    tasks = s_test_parse ("-- name: x\t\n-- db : y\n-- name : z\nSELECT\n1\r\r\n", NULL);
    task = dbt_tasks_lookup (tasks, "x\t");
    assert (task && streq (task->sql, "SELECT 1\r") && task->ndbs == 0);
    assert (task->ntags == 3 && streq (task->tag_names [1], "db "));
    assert (streq (task->tag_names [2], "name "));
    dbt_tasks_destroy (&tasks);

    //  Errors, with the line
    static const struct {
        const char *text;
        const char *expect;
    } bad [] = {
        { "SELECT 1;\n", "t.sql:1: query is missing the 'name' tag: SELECT 1;" },
        { "-- note: before the name\n-- name: a\nSELECT 1;", "t.sql:1: 'name' should be the first tag" },
        { "\n-- db: x\n", "t.sql:2: 'name' should be the first tag" },
        { "-- name: a\n-- db: x\n-- db: y\nSELECT 1;", "t.sql:3: duplicate tag 'db' in task 'a'" },
        { "-- name: a\n-- TODO: x\n-- TODO: y\nSELECT 1;", "t.sql:3: duplicate tag 'TODO' in task 'a'" },
        { "-- name: a\n-- name: b\nSELECT 1;", "t.sql:1: 'a' is missing query" },
        { "-- name: a\nSELECT 1;\n-- name: b\n-- db: x\n", "t.sql:3: 'b' is missing query" },
        { "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;",
          "t.sql:3: duplicate task 'a' (first defined in t.sql:1)" },
        { "-- name: a\n-- db: ,\nSELECT 1;", "t.sql:2: task 'a': 'db' tag names no database" },
        { "-- name: a\n-- results:\t, ,\nSELECT 1;", "t.sql:2: task 'a': 'results' tag names no results backend" },
        { "-- name: a\n-- queue:\t\nSELECT 1;", "t.sql:2: task 'a': empty queue tag" },
        { "-- name: a\n-- conc: x\nSELECT 1;", "t.sql:2: task 'a': conc: expected an integer from 1 to 10000, got 'x'" },
        { "-- name: a\n-- conc: 0\nSELECT 1;", "got '0'" },
        { "-- name: a\n-- conc: 10001\nSELECT 1;", "got '10001'" },
        { "-- name: a\n-- conc: 5 5\nSELECT 1;", "got '5 5'" },
        { "-- name: a\n-- conc: -5\nSELECT 1;", "got '-5'" },
        { NULL, NULL }
    };
    for (size_t i = 0; bad [i].text; i++)
        s_test_parse (bad [i].text, bad [i].expect);
    tasks = s_test_parse ("-- name: a\n-- conc:  10000 \nSELECT 1;", NULL);
    assert (dbt_tasks_at (tasks, 0)->conc == 10000);
    dbt_tasks_destroy (&tasks);

    //  NUL bytes and long lines
    tasks = dbt_tasks_new ();
    assert (dbt_tasks_parse (tasks, "-- name: a\nSELECT\0 1;\n", 22, "t.sql", err) == -1);
    assert (streq (err, "t.sql:2: NUL byte in task file (not a text file?)"));
    dbt_buf_t buf = { 0 };
    dbt_buf_puts (&buf, "-- name: long\nSELECT '");
    for (size_t i = 0; i < S_MAX_LINE - 11; i++)
        dbt_buf_putc (&buf, 'x');
    dbt_buf_puts (&buf, "';\r\n");        //  65535 bytes with the \r
    assert (dbt_tasks_parse (tasks, buf.data, buf.len, "t.sql", err) == 0);
    assert (strlen (dbt_tasks_lookup (tasks, "long")->sql) == S_MAX_LINE - 1);
    dbt_buf_reset (&buf);
    dbt_buf_puts (&buf, "-- name: longer\n\nSELECT '");
    for (size_t i = 0; i < S_MAX_LINE - 9; i++)
        dbt_buf_putc (&buf, 'x');
    dbt_buf_puts (&buf, "';");
    assert (dbt_tasks_parse (tasks, buf.data, buf.len, "t.sql", err) == -1);
    assert (streq (err, "t.sql:3: line too long (more than 65535 bytes)"));
    dbt_buf_free (&buf);
    assert (dbt_tasks_size (tasks) == 1);
    dbt_tasks_destroy (&tasks);

    //  The sample tasks bind to the sample config
    dbt_config_t *config = dbt_config_from_string (dbt_sample_config (), err);
    assert (config);
    tasks = s_test_parse (dbt_sample_tasks (), NULL);
    assert (dbt_tasks_size (tasks) == 4);
    task = dbt_tasks_lookup (tasks, "get_profit_summary");
    assert (task && task->ndbs == 1 && streq (task->dbs [0], "sample"));
    assert (streq (task->sql, "SELECT entry_date, ROUND(SUM(amount), 2) AS total FROM entries WHERE user_id = ? "
                              "GROUP BY entry_date ORDER BY entry_date;"));
    assert (dbt_tasks_bind (tasks, config, err) == 0);
    for (size_t i = 0; i < dbt_tasks_size (tasks); i++)
        assert (streq (dbt_tasks_at (tasks, i)->queue, "default"));
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);

    //  Bind errors
    config = dbt_config_from_string (
        "queue = main\n"
        "[db.src]\ntype = sqlite\ndsn = a.db\n"
        "[db.other]\ntype = sqlite\ndsn = b.db\n"
        "[results.res]\ntype = sqlite\ndsn = r.db\n", err);
    assert (config);
    tasks = s_test_parse ("-- name: a\n-- db: src, other\n-- results: res\n-- queue: q1\nSELECT 1;\n"
                          "-- name: b\nSELECT 2;\n", NULL);
    assert (dbt_tasks_bind (tasks, config, err) == 0);
    assert (streq (dbt_tasks_lookup (tasks, "a")->queue, "q1"));
    assert (streq (dbt_tasks_lookup (tasks, "b")->queue, "main"));
    dbt_tasks_destroy (&tasks);
    tasks = s_test_parse ("-- name: b\nSELECT 2;\n\n-- name: c\n-- db: src, nope\nSELECT 1;\n", NULL);
    assert (dbt_tasks_bind (tasks, config, err) == -1);
    assert (streq (err, "t.sql:4: task 'c': unknown db 'nope'"));
    assert (dbt_tasks_lookup (tasks, "b")->queue == NULL);
    dbt_tasks_destroy (&tasks);
    tasks = s_test_parse ("-- name: c\n-- results: src\nSELECT 1;\n", NULL);
    assert (dbt_tasks_bind (tasks, config, err) == -1);
    assert (streq (err, "t.sql:1: task 'c': unknown results backend 'src'"));
    dbt_tasks_destroy (&tasks);
    tasks = s_test_parse ("-- name: c\n-- queue: a b\nSELECT 1;\n", NULL);
    assert (dbt_tasks_bind (tasks, config, err) == -1);
    assert (strstr (err, "t.sql:1: task 'c': bad queue name 'a b'"));
    dbt_tasks_destroy (&tasks);
    dbt_config_destroy (&config);

    //  Directories
    char dir [] = "/tmp/dbt-tasks-XXXXXX";
    assert (mkdtemp (dir));
    char *sub = dbt_printf ("%s/sub", dir);
    char *fake = dbt_printf ("%s/dir.sql", dir);
    char *dir2 = dbt_printf ("%s/second", dir);
    assert (mkdir (sub, 0700) == 0 && mkdir (fake, 0700) == 0 && mkdir (dir2, 0700) == 0);
    tasks = dbt_tasks_new ();
    assert (dbt_tasks_load_dir (tasks, dir, err) == -1);
    char *expect = dbt_printf ("no SQL files found in %s", dir);
    assert (streq (err, expect));
    free (expect);
    char *missing = dbt_printf ("%s/missing", dir);
    assert (dbt_tasks_load_dir (tasks, missing, err) == -1);
    expect = dbt_printf ("cannot read SQL directory '%s': No such file or directory", missing);
    assert (streq (err, expect));
    free (expect);
    free (missing);
    s_test_write (dir, "b.sql", "-- name: from_b\nSELECT 'b';\n");
    s_test_write (dir, "a.sql", "-- name: from_a\nSELECT 'a';\n-- name: z\nSELECT 'z';\n");
    s_test_write (dir, ".hidden.sql", "not a task file");
    s_test_write (dir, "notes.txt", "not a task file");
    s_test_write (dir, ".sql", "not a task file");
    s_test_write (sub, "deep.sql", "not a task file");
    char *slashed = dbt_printf ("%s//", dir);
    assert (dbt_tasks_load_dir (tasks, slashed, err) == 0);
    free (slashed);
    assert (dbt_tasks_size (tasks) == 3);
    expect = dbt_printf ("%s/a.sql", dir);
    assert (streq (dbt_tasks_lookup (tasks, "from_a")->file, expect));
    free (expect);
    assert (streq (dbt_tasks_at (tasks, 2)->name, "z"));
    //  a duplicate across directories changes nothing
    s_test_write (dir2, "c.sql", "-- name: from_c\nSELECT 'c';\n");
    s_test_write (dir2, "d.sql", "-- a comment\n-- name: from_b\nSELECT 'b2';\n");
    assert (dbt_tasks_load_dir (tasks, dir2, err) == -1);
    expect = dbt_printf ("%s/d.sql:2: duplicate task 'from_b' (first defined in %s/b.sql:1)",
                         dir2, dir);
    assert (streq (err, expect));
    free (expect);
    assert (dbt_tasks_size (tasks) == 3 && !dbt_tasks_lookup (tasks, "from_c"));
    //  a broken file in a directory changes nothing
    s_test_write (dir2, "d.sql", "-- name: from_d\n");
    assert (dbt_tasks_load_dir (tasks, dir2, err) == -1);
    expect = dbt_printf ("%s/d.sql:1: 'from_d' is missing query", dir2);
    assert (streq (err, expect));
    free (expect);
    assert (dbt_tasks_size (tasks) == 3);
    s_test_write (dir2, "d.sql", "-- name: from_d\nSELECT 'd';");
    assert (dbt_tasks_load_dir (tasks, dir2, err) == 0);
    assert (dbt_tasks_size (tasks) == 5 && dbt_tasks_lookup (tasks, "from_c"));
    dbt_tasks_destroy (&tasks);
    //  duplicates between files of one directory
    tasks = dbt_tasks_new ();
    s_test_write (dir, "c.sql", "\n-- name: z\nSELECT 'z2';\n");
    assert (dbt_tasks_load_dir (tasks, dir, err) == -1);
    expect = dbt_printf ("%s/c.sql:2: duplicate task 'z' (first defined in %s/a.sql:3)", dir, dir);
    assert (streq (err, expect));
    free (expect);
    assert (dbt_tasks_size (tasks) == 0);
    dbt_tasks_destroy (&tasks);

    s_test_unlink (dir, "a.sql");
    s_test_unlink (dir, "b.sql");
    s_test_unlink (dir, "c.sql");
    s_test_unlink (dir, ".hidden.sql");
    s_test_unlink (dir, ".sql");
    s_test_unlink (dir, "notes.txt");
    s_test_unlink (sub, "deep.sql");
    s_test_unlink (dir2, "c.sql");
    s_test_unlink (dir2, "d.sql");
    assert (rmdir (sub) == 0 && rmdir (fake) == 0 && rmdir (dir2) == 0 && rmdir (dir) == 0);
    free (sub);
    free (fake);
    free (dir2);
    if (verbose)
        printf ("tasks: ok\n");
}
#endif  //  DBT_SELFTEST
