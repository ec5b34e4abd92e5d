/**
 * @file outputs.c
 * @brief A step program's output files, written all or none.
 *
 * The promise (notes/faults.md): an output is written completely or not at
 * all, and a file already at an output's path stays as it was unless the
 * whole set is written. So every output is first written to a fresh
 * temporary beside its path (mkstemp: created with O_EXCL, never through a
 * symlink planted at its name), and only when all are written are they
 * renamed into place. Before the run, each path is probed the same way,
 * and two outputs that are one file under two names (`o.npy` and
 * `./o.npy`, or a hard link), or an output that is one of the inputs, are
 * refused. SIGINT and SIGTERM remove the temporaries before the program
 * dies; a kill that cannot be caught (SIGKILL) can leave one `.attn-*`
 * file in the output's directory, never a half-written output.
 */
#define _XOPEN_SOURCE 700
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/** The temporaries that exist now, for the signal handler. */
static char live_tmp[ATTN_MAX_OUTPUTS][4096];
/** Which of live_tmp hold a file (written by the program, read by the handler). */
static volatile sig_atomic_t live_used[ATTN_MAX_OUTPUTS];
/** 1 once the handlers are installed. */
static int handlers_set;

/** SIGINT/SIGTERM: remove the temporaries, then die of the signal as before. */
static void on_signal(int sig)
{
    for (int i = 0; i < ATTN_MAX_OUTPUTS; i++)
        if (live_used[i])
            unlink(live_tmp[i]); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

/** Install on_signal() for SIGINT and SIGTERM once. */
static void set_handlers(void)
{
    if (handlers_set)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    handlers_set = 1;
}

/** The directory part of @p path into @p dir ("." when none). */
static void dir_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

/**
 * One name for the file @p path is or would be: the real path of its
 * directory, then its last component. Two paths with the same canonical
 * name are the same file. 0, or -1 when the directory does not resolve.
 */
static int canonical(const char *path, char *out, size_t n)
{
    char dir[4096], real[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    if (!realpath(dir, real))
        return -1;
    const char *slash = strrchr(path, '/');
    snprintf(out, n, "%s/%s", real, slash ? slash + 1 : path);
    return 0;
}

/** 1 when @p a and @p b are one file: the same canonical name, or (both
 *  existing) the same device and inode (a hard link). */
static int same_file(const char *a, const char *b)
{
    char ca[4096 + PATH_MAX], cb[4096 + PATH_MAX];
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
        return 1;
    return canonical(a, ca, sizeof ca) == 0 && canonical(b, cb, sizeof cb) == 0 && !strcmp(ca, cb);
}

/** A fresh temporary in the directory of @p path (mkstemp: O_EXCL, so a
 *  planted file or symlink is never followed), its name in @p tmp: an open
 *  descriptor, or -1 with errno. */
static int make_tmp(const char *path, char *tmp, size_t n)
{
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    if (snprintf(tmp, n, "%s/.attn-XXXXXX", dir) >= (int)n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkstemp(tmp);
}

int attn_sticky_blocks(unsigned dir_mode, unsigned dir_uid, unsigned file_uid, unsigned euid)
{
    /* a sticky directory (S_ISVTX, e.g. /tmp): only the file's owner, the
     * directory's owner or a privileged process may rename over the file */
    return (dir_mode & S_ISVTX) && euid != 0 && file_uid != euid && dir_uid != euid;
}

void attn_outputs_init(attn_outputs *s)
{
    memset(s, 0, sizeof *s);
}

int attn_outputs_add(attn_outputs *s, const char *flag, const char *path, char *msg, size_t n)
{
    if (!path)
        return 0;
    if (s->n == ATTN_MAX_OUTPUTS) {
        snprintf(msg, n, "%s: too many outputs", flag);
        return ATTN_EXIT_BAD_INPUT;
    }
    for (int i = 0; i < s->n; i++)
        if (same_file(s->f[i].path, path)) {
            snprintf(msg, n, "%s and %s name the same file (%s)", s->f[i].flag, flag, path);
            return ATTN_EXIT_BAD_INPUT;
        }
    struct stat st;
    const int exists = stat(path, &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) {
        snprintf(msg, n, "%s %s: exists and is not a regular file", flag, path);
        return ATTN_EXIT_BAD_INPUT;
    }
    /* an existing file another user owns in a sticky directory cannot be
     * replaced by a rename: say so now, not after the whole run */
    char dir[4096];
    struct stat dst;
    dir_of(path, dir, sizeof dir);
    if (exists && stat(dir, &dst) == 0 &&
        attn_sticky_blocks((unsigned)dst.st_mode, (unsigned)dst.st_uid, (unsigned)st.st_uid,
                           (unsigned)geteuid())) {
        snprintf(msg, n, "%s %s: belongs to another user in a sticky directory (%s): it cannot "
                 "be replaced; remove it or choose another path", flag, path, dir);
        return ATTN_EXIT_BAD_INPUT;
    }
    /* the probe: can a file be created beside it (and later renamed)? */
    char tmp[4096];
    int fd = make_tmp(path, tmp, sizeof tmp);
    if (fd < 0) {
        snprintf(msg, n, "%s %s: cannot write there: %s", flag, path, strerror(errno));
        return ATTN_EXIT_BAD_INPUT;
    }
    close(fd);
    unlink(tmp);
    s->f[s->n].flag = flag;
    s->f[s->n].path = path;
    s->f[s->n].tmp[0] = '\0';
    s->n++;
    return 0;
}

int attn_outputs_not_inputs(const attn_outputs *s, const char *const *in_flags,
                            const char *const *in_paths, int n_in, char *msg, size_t n)
{
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < n_in; j++)
            if (in_paths[j] && same_file(s->f[i].path, in_paths[j])) {
                snprintf(msg, n, "%s %s is the input %s: an output must not overwrite an input",
                         s->f[i].flag, s->f[i].path, in_flags[j]);
                return ATTN_EXIT_BAD_INPUT;
            }
    return 0;
}

int attn_outputs_write(attn_outputs *s, const char *path, const float *data, int rank,
                       const int64_t *shape, int as_fp16, char *msg, size_t n)
{
    int i = 0;
    while (i < s->n && s->f[i].path != path)
        i++;
    if (!path || i == s->n)
        return 0; /* not asked for */
    set_handlers();
    int fd = make_tmp(path, s->f[i].tmp, sizeof s->f[i].tmp);
    if (fd < 0) {
        s->f[i].tmp[0] = '\0';
        snprintf(msg, n, "%s %s: cannot write: %s", s->f[i].flag, path, strerror(errno));
        return errno == ENOSPC ? ATTN_EXIT_RESOURCE : ATTN_EXIT_BAD_INPUT;
    }
    memcpy(live_tmp[i], s->f[i].tmp, sizeof live_tmp[i]);
    live_used[i] = 1;
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        close(fd);
        snprintf(msg, n, "%s %s: cannot write: %s", s->f[i].flag, path, strerror(errno));
        return ATTN_EXIT_BAD_INPUT;
    }
    /* a fresh temporary is 0600: give it the permissions a new file gets */
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    int rc = attn_npy_write_stream(fp, path, data, rank, shape, as_fp16, msg, n);
    if (fclose(fp) != 0 && !rc) {
        snprintf(msg, n, "%s %s: cannot write: %s", s->f[i].flag, path, strerror(errno));
        rc = errno == ENOSPC ? ATTN_EXIT_RESOURCE : ATTN_EXIT_BAD_INPUT;
    }
    return rc;
}

int attn_outputs_commit(attn_outputs *s, char *msg, size_t n)
{
    for (int i = 0; i < s->n; i++)
        if (s->f[i].tmp[0] && rename(s->f[i].tmp, s->f[i].path) != 0) {
            snprintf(msg, n, "%s %s: cannot write: %s", s->f[i].flag, s->f[i].path,
                     strerror(errno));
            attn_outputs_discard(s);
            return ATTN_EXIT_BAD_INPUT;
        } else if (s->f[i].tmp[0]) {
            live_used[i] = 0;
            s->f[i].tmp[0] = '\0';
        }
    return 0;
}

void attn_outputs_discard(attn_outputs *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->f[i].tmp[0]) {
            unlink(s->f[i].tmp);
            live_used[i] = 0;
            s->f[i].tmp[0] = '\0';
        }
}
