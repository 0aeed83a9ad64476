/*  =========================================================================
    dbt_sqlite_dir - the SQLite results directory: one database file per table

    See dbt_sqlite_dir.h. The directory and its .tmp/ stay open as file
    descriptors for the object's life: names are resolved with the *at()
    calls, and the directory fd is what fsync makes a rename durable with.

    Directory syncs are grouped: every object open on the same directory
    (one per results connection) shares a sync group, and a rename is
    durable once an fsync of the directory that began after it returned.
    So when several runners publish at once, one fsync covers all the
    renames done before it started, and the others do not repeat it.

    Locks: a stage holds flock (LOCK_EX) on its own descriptor, which
    conflicts with any other open() of the file, in this process or
    another. flock() and SQLite's fcntl() locks are independent on Linux;
    SQLite opens stage files through its "unix-none" VFS and read-only
    table files as immutable, so it takes no locks on them at all.
    =========================================================================
*/
#include "dbt_classes.h"
#include <dirent.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#define S_TMP      ".tmp"       //  temporary files, inside the directory
#define S_SUFFIX   ".db"        //  every table file's suffix
#define S_STAGE_TRIES 5         //  new names to try when a sweep raced us

//  The sync group of one directory (by device and inode), shared by all
//  the objects open on it in this process; never freed (a process has a
//  handful of results directories).
typedef struct s_group_t {
    dev_t dev;
    ino_t ino;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t changed;           //  renames and removals done so far
    uint64_t synced;            //  how many of those a completed fsync covers
    bool syncing;               //  an fsync is under way
    struct s_group_t *next;
} s_group_t;

static pthread_mutex_t s_groups_lock = PTHREAD_MUTEX_INITIALIZER;
static s_group_t *s_groups;

struct _dbt_sqlite_dir_t {
    char *path;                 //  the directory (owned)
    int fd;                     //  the directory, O_DIRECTORY
    int tmpfd;                  //  its .tmp/ directory
    s_group_t *group;           //  its sync group, NULL if fstat failed
};

//  The sync group of the directory open as fd, or NULL.
static s_group_t *
s_group_of (int fd)
{
    struct stat st;
    if (fstat (fd, &st) != 0)
        return NULL;
    pthread_mutex_lock (&s_groups_lock);
    s_group_t *group = s_groups;
    while (group && !(group->dev == st.st_dev && group->ino == st.st_ino))
        group = group->next;
    if (!group) {
        group = (s_group_t *) dbt_malloc (sizeof (s_group_t));
        group->dev = st.st_dev;
        group->ino = st.st_ino;
        pthread_mutex_init (&group->lock, NULL);
        pthread_cond_init (&group->cond, NULL);
        group->next = s_groups;
        s_groups = group;
    }
    pthread_mutex_unlock (&s_groups_lock);
    return group;
}

//  Make a change of the directory (a rename or removal that has returned)
//  durable: wait for an fsync that starts after it, ours or another
//  thread's. 0, or -1 with errno set when our own fsync failed.
static int
s_sync_dir (dbt_sqlite_dir_t *self)
{
    s_group_t *group = self->group;
    if (!group)
        return fsync (self->fd);
    pthread_mutex_lock (&group->lock);
    uint64_t mine = ++group->changed;
    while (group->synced < mine) {
        if (group->syncing) {
            pthread_cond_wait (&group->cond, &group->lock);
            continue;
        }
        //  This fsync covers every change counted so far: each returned
        //  before it starts.
        group->syncing = true;
        uint64_t covers = group->changed;
        pthread_mutex_unlock (&group->lock);
        int rc = fsync (self->fd);
        int error = errno;
        pthread_mutex_lock (&group->lock);
        group->syncing = false;
        if (rc == 0 && covers > group->synced)
            group->synced = covers;
        pthread_cond_broadcast (&group->cond);
        if (rc) {
            //  The others covered by it try again themselves.
            pthread_mutex_unlock (&group->lock);
            errno = error;
            return -1;
        }
    }
    pthread_mutex_unlock (&group->lock);
    return 0;
}

//  The DBT_E* code for a failed system call's errno.
static int
s_errno_code (int error)
{
    return error == ENOSPC || error == EDQUOT ? DBT_EFULL : DBT_ECONN;
}

//  True when two stat results are the same file.
static bool
s_same_file (const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

//  --------------------------------------------------------------------------
//  Write the file name of table into out; its length or -1.

int
dbt_sqlite_dir_file_name (const char *table, char *out, size_t size)
{
    assert (table && out);
    size_t tlen = strlen (table);
    if (tlen == 0 || tlen > DBT_SQLITE_TABLE_MAX)
        return -1;
    size_t n = 0;
    for (const char *p = table; *p; p++) {
        char c = *p;
        char pair [2] = { c, 0 };
        if (c >= 'A' && c <= 'Z') {
            pair [0] = '+';
            pair [1] = (char) (c - 'A' + 'a');
        }
        else
        if (c == ':')
            pair [0] = '=';
        else
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return -1;
        for (int i = 0; i < 2 && pair [i]; i++) {
            if (n + 1 >= size)
                return -1;
            out [n++] = pair [i];
        }
    }
    if (n + sizeof (S_SUFFIX) > size)
        return -1;
    memcpy (out + n, S_SUFFIX, sizeof (S_SUFFIX));
    return (int) (n + sizeof (S_SUFFIX) - 1);
}

//  --------------------------------------------------------------------------
//  The table directory of a results database file. Caller frees.

char *
dbt_sqlite_dir_for (const char *dbfile)
{
    assert (dbfile);
    return dbt_printf ("%s.d", dbfile);
}

//  --------------------------------------------------------------------------
//  Open (and with create, make and sweep) a table directory.

int
dbt_sqlite_dir_open (const char *path, bool create, dbt_sqlite_dir_t **self_p, char *err)
{
    assert (path && self_p);
    *self_p = NULL;
    char *tmp = dbt_printf ("%s/%s", path, S_TMP);
    char inner [DBT_ERRMSG_LEN];
    if (create && dbt_mkdirs (tmp, inner)) {
        dbt_err_set (err, "sqlite: results directory: %s", inner);
        free (tmp);
        return DBT_ECONN;
    }
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && !create && errno == ENOENT) {
        free (tmp);
        return 0;
    }
    int tmpfd = fd < 0 || !create ? -1 : openat (fd, S_TMP, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (create && tmpfd < 0)) {
        dbt_err_set (err, "sqlite: cannot open the results directory '%s': %s",
                     fd < 0 ? path : tmp, strerror (errno));
        if (fd >= 0)
            close (fd);
        free (tmp);
        return DBT_ECONN;
    }
    free (tmp);
    dbt_sqlite_dir_t *self = (dbt_sqlite_dir_t *) dbt_malloc (sizeof (dbt_sqlite_dir_t));
    self->path = dbt_strdup (path);
    self->fd = fd;
    self->tmpfd = tmpfd;
    self->group = s_group_of (fd);
    if (create)
        dbt_sqlite_dir_sweep (self);
    *self_p = self;
    return 0;
}

//  --------------------------------------------------------------------------
//  Close; nulls the pointer.

void
dbt_sqlite_dir_destroy (dbt_sqlite_dir_t **self_p)
{
    assert (self_p);
    dbt_sqlite_dir_t *self = *self_p;
    if (!self)
        return;
    if (self->tmpfd >= 0)
        close (self->tmpfd);
    close (self->fd);
    free (self->path);
    free (self);
    *self_p = NULL;
}

const char *
dbt_sqlite_dir_path (dbt_sqlite_dir_t *self)
{
    assert (self);
    return self->path;
}

//  --------------------------------------------------------------------------
//  Read-only URI of table's file, or NULL when it has none. Caller frees.

char *
dbt_sqlite_dir_table_uri (dbt_sqlite_dir_t *self, const char *table)
{
    assert (self && table);
    char name [NAME_MAX + 1];
    if (dbt_sqlite_dir_file_name (table, name, sizeof (name)) < 0
    ||  faccessat (self->fd, name, F_OK, 0) != 0)
        return NULL;
    //  RFC 3986 path: unreserved characters and '/' as they are, the rest
    //  (including SQLite's own '?', '#', '%') percent-encoded.
    char *path = dbt_printf ("%s/%s", self->path, name);
    dbt_buf_t uri = { 0 };
    dbt_buf_puts (&uri, "file:");
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (isalnum (c) || c == '/' || c == '.' || c == '_' || c == '-' || c == '~')
            dbt_buf_putc (&uri, (char) c);
        else
            dbt_buf_printf (&uri, "%%%02X", c);
    }
    dbt_buf_puts (&uri, "?mode=ro&immutable=1");
    free (path);
    return dbt_buf_take (&uri);
}

//  --------------------------------------------------------------------------
//  Create a new, empty, locked temporary file.

int
dbt_sqlite_dir_stage (dbt_sqlite_dir_t *self, dbt_sqlite_stage_t *stage, char *err)
{
    assert (self && stage && !stage->path && stage->fd < 0);
    if (self->tmpfd < 0) {
        dbt_err_set (err, "sqlite: the results directory '%s' is open read-only", self->path);
        return DBT_EINVAL;
    }
    for (int tries = 0; tries < S_STAGE_TRIES; tries++) {
        snprintf (stage->name, sizeof (stage->name), "%ld-%016" PRIx64 "%s",
                  (long) getpid (), dbt_random64 (), S_SUFFIX);
        int fd = openat (self->tmpfd, stage->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            int error = errno;
            dbt_err_set (err, "sqlite: cannot create a file in '%s/%s': %s", self->path,
                         S_TMP, strerror (error));
            return s_errno_code (error);
        }
        //  A sweep may have taken the lock and removed the name between
        //  open and flock: then the name is gone, and we try another.
        struct stat mine, named;
        if (flock (fd, LOCK_EX) == 0 && fstat (fd, &mine) == 0
        &&  fstatat (self->tmpfd, stage->name, &named, AT_SYMLINK_NOFOLLOW) == 0
        &&  s_same_file (&mine, &named)) {
            stage->fd = fd;
            stage->path = dbt_printf ("%s/%s/%s", self->path, S_TMP, stage->name);
            return 0;
        }
        close (fd);
    }
    dbt_err_set (err, "sqlite: cannot create a file in '%s/%s' that stays", self->path, S_TMP);
    return DBT_ECONN;
}

//  --------------------------------------------------------------------------
//  fsync the stage, rename it to table's file, fsync the directory.

int
dbt_sqlite_dir_publish (dbt_sqlite_dir_t *self, dbt_sqlite_stage_t *stage,
                        const char *table, char *err)
{
    assert (self && stage && stage->path && stage->fd >= 0);
    char name [NAME_MAX + 1];
    if (dbt_sqlite_dir_file_name (table, name, sizeof (name)) < 0) {
        dbt_err_set (err, "sqlite: table name '%s' is not 1 to %d of A-Z a-z 0-9 _ : -",
                     table, DBT_SQLITE_TABLE_MAX);
        return DBT_EINVAL;
    }
    const char *what = "sync";
    int rc = fsync (stage->fd);
    if (rc == 0) {
        what = "rename";
        rc = renameat (self->tmpfd, stage->name, self->fd, name);
    }
    if (rc == 0) {
        //  The file is in place; its directory entry is durable only once
        //  the directory is synced.
        what = "sync the directory of";
        rc = s_sync_dir (self);
        close (stage->fd);
        stage->fd = -1;
        free (stage->path);
        stage->path = NULL;
    }
    if (rc) {
        int error = errno;
        dbt_err_set (err, "sqlite: cannot %s '%s/%s': %s", what, self->path, name,
                     strerror (error));
        return s_errno_code (error);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Remove a stage's file and close it.

void
dbt_sqlite_dir_discard (dbt_sqlite_dir_t *self, dbt_sqlite_stage_t *stage)
{
    assert (self && stage);
    if (stage->path) {
        //  Unlink before closing: the name goes while we hold the lock.
        unlinkat (self->tmpfd, stage->name, 0);
        free (stage->path);
        stage->path = NULL;
    }
    if (stage->fd >= 0)
        close (stage->fd);
    stage->fd = -1;
}

//  --------------------------------------------------------------------------
//  Remove table's file durably.

int
dbt_sqlite_dir_remove (dbt_sqlite_dir_t *self, const char *table, char *err)
{
    assert (self && table);
    char name [NAME_MAX + 1];
    if (dbt_sqlite_dir_file_name (table, name, sizeof (name)) < 0)
        return 0;
    if (unlinkat (self->fd, name, 0) != 0) {
        if (errno == ENOENT)
            return 0;
        dbt_err_set (err, "sqlite: cannot remove '%s/%s': %s", self->path, name, strerror (errno));
        return DBT_ECONN;
    }
    if (s_sync_dir (self) != 0) {
        dbt_err_set (err, "sqlite: cannot sync '%s': %s", self->path, strerror (errno));
        return DBT_ECONN;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Remove temporary files nobody holds.

size_t
dbt_sqlite_dir_sweep (dbt_sqlite_dir_t *self)
{
    assert (self);
    if (self->tmpfd < 0)
        return 0;
    int dirfd = openat (self->fd, S_TMP, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dirfd < 0 ? NULL : fdopendir (dirfd);
    if (!dir) {
        if (dirfd >= 0)
            close (dirfd);
        return 0;
    }
    size_t removed = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
            continue;
        int fd = openat (self->tmpfd, entry->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
            continue;
        //  Held by a writer: LOCK_NB fails. Ours now: remove it, if the
        //  name still is this file.
        struct stat held, named;
        if (flock (fd, LOCK_EX | LOCK_NB) == 0 && fstat (fd, &held) == 0 && S_ISREG (held.st_mode)
        &&  fstatat (self->tmpfd, entry->d_name, &named, AT_SYMLINK_NOFOLLOW) == 0
        &&  s_same_file (&held, &named)
        &&  unlinkat (self->tmpfd, entry->d_name, 0) == 0)
            removed++;
        close (fd);
    }
    closedir (dir);
    return removed;
}

#ifdef DBT_SELFTEST
//  --------------------------------------------------------------------------
//  Self test

//  True when path exists.
static bool
s_exists (const char *path)
{
    return access (path, F_OK) == 0;
}

//  Number of entries in a directory, . and .. not counted.
static size_t
s_entries (const char *path)
{
    DIR *dir = opendir (path);
    assert (dir);
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
            count++;
    closedir (dir);
    return count;
}

void
dbt_sqlite_dir_test (bool verbose)
{
    char name [NAME_MAX + 1];
    assert (dbt_sqlite_dir_file_name ("results_demo2", name, sizeof (name)) == 16);
    assert (streq (name, "results_demo2.db"));
    assert (dbt_sqlite_dir_file_name ("results_CaseA", name, sizeof (name)) > 0);
    assert (streq (name, "results_+case+a.db"));
    assert (dbt_sqlite_dir_file_name ("r_a:b-c_9", name, sizeof (name)) > 0);
    assert (streq (name, "r_a=b-c_9.db"));
    assert (dbt_sqlite_dir_file_name ("", name, sizeof (name)) == -1);
    assert (dbt_sqlite_dir_file_name ("a.b", name, sizeof (name)) == -1);
    assert (dbt_sqlite_dir_file_name ("a/b", name, sizeof (name)) == -1);
    assert (dbt_sqlite_dir_file_name ("a\"b", name, sizeof (name)) == -1);
    assert (dbt_sqlite_dir_file_name ("a+b", name, sizeof (name)) == -1);
    assert (dbt_sqlite_dir_file_name ("abc", name, 7) == 6);
    assert (dbt_sqlite_dir_file_name ("abc", name, 6) == -1);
    assert (dbt_sqlite_dir_file_name ("ABC", name, 9) == -1);
    //  The longest name fits a file name, all capitals included
    char longest [DBT_SQLITE_TABLE_MAX + 2];
    memset (longest, 'Q', sizeof (longest));
    longest [DBT_SQLITE_TABLE_MAX] = 0;
    assert (dbt_sqlite_dir_file_name (longest, name, sizeof (name)) == 2 * DBT_SQLITE_TABLE_MAX + 3);
    longest [DBT_SQLITE_TABLE_MAX] = 'Q';
    longest [DBT_SQLITE_TABLE_MAX + 1] = 0;
    assert (dbt_sqlite_dir_file_name (longest, name, sizeof (name)) == -1);
    //  One to one, and distinct names stay distinct ignoring case: every
    //  pair of a set of names that differ in case or by the escapes.
    const char *names [] = { "casea", "CaseA", "CASEA", "caseA", "+casea", "case:a", "case=a",
                             "case_a", "case-a", "c", "C", "ca", "cA", "Ca", "CA" };
    size_t nnames = sizeof (names) / sizeof (names [0]);
    char files [sizeof (names) / sizeof (names [0])][NAME_MAX + 1];
    for (size_t i = 0; i < nnames; i++)
        if (dbt_sqlite_dir_file_name (names [i], files [i], NAME_MAX + 1) < 0)
            files [i][0] = 0;
    for (size_t i = 0; i < nnames; i++)
        for (size_t j = 0; j < i; j++)
            assert (!files [i][0] || strcasecmp (files [i], files [j]) != 0);
    char *for_path = dbt_sqlite_dir_for ("/x/results.db");
    assert (streq (for_path, "/x/results.db.d"));
    free (for_path);

    char err [DBT_ERRMSG_LEN];
    char *top = dbt_testing_tmpdir ("sqlite-dir");
    char *path = dbt_printf ("%s/r.db.d", top);
    //  Without create, a missing directory is no directory and no error
    dbt_sqlite_dir_t *dir = NULL;
    assert (dbt_sqlite_dir_open (path, false, &dir, err) == 0 && dir == NULL);
    assert (dbt_sqlite_dir_open (path, true, &dir, err) == 0 && dir);
    assert (streq (dbt_sqlite_dir_path (dir), path));
    char *tmp = dbt_printf ("%s/.tmp", path);
    assert (s_exists (tmp));

    //  Stage, publish, find, replace, remove
    dbt_sqlite_stage_t stage = { NULL, "", -1 };
    assert (dbt_sqlite_dir_stage (dir, &stage, err) == 0);
    assert (stage.fd >= 0 && s_exists (stage.path) && strstr (stage.path, "/.tmp/"));
    assert (write (stage.fd, "one", 3) == 3);
    assert (dbt_sqlite_dir_table_uri (dir, "t_A") == NULL);
    assert (dbt_sqlite_dir_publish (dir, &stage, "t_A", err) == 0);
    assert (stage.fd == -1 && stage.path == NULL);
    char *file = dbt_printf ("%s/t_+a.db", path);
    assert (s_exists (file));
    char *uri = dbt_sqlite_dir_table_uri (dir, "t_A");
    assert (uri && strncmp (uri, "file:", 5) == 0);
    assert (strstr (uri, "/t_%2Ba.db?mode=ro&immutable=1"));
    free (uri);
    assert (dbt_sqlite_dir_table_uri (dir, "t_a") == NULL);
    assert (s_entries (tmp) == 0);
    //  A reader holding the old file keeps it after a replace and a remove
    int reader = open (file, O_RDONLY);
    assert (reader >= 0);
    assert (dbt_sqlite_dir_stage (dir, &stage, err) == 0);
    assert (write (stage.fd, "two", 3) == 3);
    assert (dbt_sqlite_dir_publish (dir, &stage, "t_A", err) == 0);
    char got [4] = "";
    assert (read (reader, got, 3) == 3 && memcmp (got, "one", 3) == 0);
    close (reader);
    FILE *check = fopen (file, "r");
    assert (check && fread (got, 1, 3, check) == 3 && memcmp (got, "two", 3) == 0);
    fclose (check);
    assert (dbt_sqlite_dir_remove (dir, "t_A", err) == 0);
    assert (!s_exists (file));
    assert (dbt_sqlite_dir_remove (dir, "t_A", err) == 0);
    assert (dbt_sqlite_dir_remove (dir, "not/a/name", err) == 0);
    //  A bad name is refused and the stage kept for discard
    assert (dbt_sqlite_dir_stage (dir, &stage, err) == 0);
    assert (dbt_sqlite_dir_publish (dir, &stage, "x.y", err) == DBT_EINVAL);
    assert (strstr (err, "'x.y'") && stage.fd >= 0);
    dbt_sqlite_dir_discard (dir, &stage);
    assert (stage.fd == -1 && stage.path == NULL);
    dbt_sqlite_dir_discard (dir, &stage);
    assert (s_entries (tmp) == 0);

    //  A sweep removes abandoned files, never a held stage
    assert (dbt_sqlite_dir_stage (dir, &stage, err) == 0);
    char *orphan = dbt_printf ("%s/123-abandoned.db", tmp);
    FILE *left = fopen (orphan, "w");
    assert (left);
    fclose (left);
    assert (dbt_sqlite_dir_sweep (dir) == 1);
    assert (!s_exists (orphan) && s_exists (stage.path));
    //  ...also from another object (another node or runner), and at open
    dbt_sqlite_dir_t *other = NULL;
    left = fopen (orphan, "w");
    assert (left);
    fclose (left);
    assert (dbt_sqlite_dir_open (path, true, &other, err) == 0 && other);
    assert (!s_exists (orphan) && s_exists (stage.path));
    assert (dbt_sqlite_dir_sweep (other) == 0);
    dbt_sqlite_dir_destroy (&other);
    dbt_sqlite_dir_discard (dir, &stage);
    //  Read-only open of an existing directory: no stages
    assert (dbt_sqlite_dir_open (path, false, &other, err) == 0 && other);
    assert (dbt_sqlite_dir_stage (other, &stage, err) == DBT_EINVAL);
    assert (strstr (err, "read-only") && stage.fd == -1);
    assert (dbt_sqlite_dir_sweep (other) == 0);
    dbt_sqlite_dir_destroy (&other);
    dbt_sqlite_dir_destroy (&dir);
    assert (dir == NULL);
    dbt_sqlite_dir_destroy (&dir);
    //  A path that cannot be a directory
    char *bad = dbt_printf ("%s/t_+a.db", top);
    left = fopen (bad, "w");
    assert (left);
    fclose (left);
    char *under = dbt_printf ("%s/sub", bad);
    assert (dbt_sqlite_dir_open (under, true, &dir, err) == DBT_ECONN && dir == NULL);
    assert (strstr (err, "results directory"));
    assert (dbt_sqlite_dir_open (under, false, &dir, err) == DBT_ECONN);

    free (under);
    free (bad);
    free (orphan);
    free (file);
    free (tmp);
    free (path);
    dbt_testing_rmtree (&top);
    if (verbose)
        printf ("sqlite_dir: ok\n");
}
#endif  //  DBT_SELFTEST
