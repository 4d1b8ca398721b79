/* Downloading and unpacking the Debian packages of the corpus (corpus_fetch in
 * corpus.h). External programs run by fork + execvp with an argument vector:
 * no shell, so no quoting of package or path names can go wrong. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/io.h"
#include "base/status.h"
#include "data/corpus.h"

#define MARKER ".qkv-unpacked"

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static qkv_status mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                qkv_status st = qkv_fail(QKV_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return QKV_OK;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static qkv_status remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return QKV_OK;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return qkv_fail(QKV_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return QKV_OK;
}

/* Last non-empty line of the log, for error messages. */
static void log_tail(const char *log_path, char *buf, size_t cap)
{
    buf[0] = '\0';
    char *text;
    size_t len;
    if (qkv_read_file(log_path, &text, &len) != QKV_OK)
        return;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    char *line = strrchr(text, '\n');
    snprintf(buf, cap, "%s", line ? line + 1 : text);
    free(text);
}

/* Runs argv[0] with cwd as working directory, stdout and stderr appended to
 * log_path, stdin from /dev/null. */
static qkv_status run(char *const argv[], const char *cwd, const char *log_path, const char *pkg)
{
    int log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log_fd < 0)
        return qkv_fail(QKV_ERR_IO, "%s: cannot open: %s", log_path, strerror(errno));
    dprintf(log_fd, "\n$ (cd %s &&", cwd ? cwd : ".");
    for (int i = 0; argv[i]; i++)
        dprintf(log_fd, " %s", argv[i]);
    dprintf(log_fd, ")\n");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(log_fd);
        return qkv_fail(QKV_ERR_IO, "package %s: cannot start %s: %s", pkg, argv[0], strerror(errno));
    }
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0)
            dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        if (cwd && chdir(cwd) != 0)
            _exit(126);
        execvp(argv[0], argv);
        /* only async-signal-safe calls between fork and exec */
        static const char msg[] = "exec failed: program not found or not executable\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    close(log_fd);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return qkv_fail(QKV_ERR_IO, "package %s: waiting for %s: %s", pkg, argv[0], strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return QKV_OK;
    char tail[512];
    log_tail(log_path, tail, sizeof tail);
    if (WIFEXITED(status))
        return qkv_fail(QKV_ERR_IO, "package %s: '%s %s' failed with exit status %d (%s: %s)", pkg, argv[0], argv[1],
                        WEXITSTATUS(status), log_path, tail);
    return qkv_fail(QKV_ERR_IO, "package %s: '%s %s' killed by signal %d", pkg, argv[0], argv[1],
                    WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

/* The .deb of pkg in debs ("<pkg>_<version>_<arch>.deb"), malloc'ed, or NULL. */
static char *find_deb(const char *debs, const char *pkg)
{
    DIR *d = opendir(debs);
    if (!d)
        return NULL;
    size_t n = strlen(pkg);
    char *best = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > n + 5 && !strncmp(e->d_name, pkg, n) && e->d_name[n] == '_' && !strcmp(e->d_name + l - 4, ".deb") &&
            (!best || strcmp(e->d_name, best) > 0)) {
            free(best);
            best = strdup(e->d_name);
        }
    }
    closedir(d);
    return best;
}

static qkv_status fetch_one(const char *debs, const char *root, const char *log_path,
                            const char *pkg, const corpus_options *o, int *fetched)
{
    char *dir = join(root, pkg), *marker = dir ? join(dir, MARKER) : NULL;
    char *tmp = dir ? malloc(strlen(dir) + 8) : NULL;
    char *deb = NULL, *deb_path = NULL;
    qkv_status s = QKV_OK;
    if (!dir || !marker || !tmp) {
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (access(marker, F_OK) == 0)
        goto done;
    *fetched = 1;
    deb = find_deb(debs, pkg);
    if (!deb) {
        if (!o->download) {
            s = qkv_fail(QKV_ERR_IO, "package %s: no %s/%s_*.deb in the cache and downloading is off", pkg, debs, pkg);
            goto done;
        }
        corpus_log(o, "downloading %s", pkg);
        char *argv[] = {"apt-get", "download", (char *)pkg, NULL};
        if ((s = run(argv, debs, log_path, pkg)) != QKV_OK)
            goto done;
        if (!(deb = find_deb(debs, pkg))) {
            s = qkv_fail(QKV_ERR_IO, "package %s: apt-get download left no %s_*.deb in %s", pkg, pkg, debs);
            goto done;
        }
    }
    corpus_log(o, "unpacking %s", deb);
    /* unpack next to the final place, then rename: an interrupted run leaves
     * no half-unpacked tree that looks complete */
    snprintf(tmp, strlen(dir) + 8, "%s.tmp", dir);
    if ((s = remove_tree(tmp)) != QKV_OK || (s = remove_tree(dir)) != QKV_OK || (s = mkdir_p(tmp)) != QKV_OK)
        goto done;
    if (!(deb_path = join(debs, deb))) {
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        goto done;
    }
    char *argv[] = {"dpkg-deb", "-x", deb_path, tmp, NULL};
    if ((s = run(argv, NULL, log_path, pkg)) != QKV_OK)
        goto done;
    char *tmp_marker = join(tmp, MARKER);
    if (!tmp_marker) {
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        goto done;
    }
    s = qkv_write_file(tmp_marker, deb, strlen(deb));
    free(tmp_marker);
    if (s == QKV_OK && rename(tmp, dir) != 0)
        s = qkv_fail(QKV_ERR_IO, "%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
done:
    free(dir);
    free(marker);
    free(tmp);
    free(deb);
    free(deb_path);
    return s;
}

qkv_status corpus_fetch(const char *cache_dir, const char *const *packages, const corpus_options *o,
                        int *n_fetched)
{
    *n_fetched = 0;
    char *debs = join(cache_dir, "debs"), *root = join(cache_dir, "root"), *log_path = join(cache_dir, "fetch.log");
    qkv_status s = QKV_OK;
    if (!debs || !root || !log_path)
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    if (s == QKV_OK)
        s = mkdir_p(debs);
    if (s == QKV_OK)
        s = mkdir_p(root);
    int total = 0;
    for (int i = 0; s == QKV_OK && packages[i]; i++) {
        if (!packages[i][0] || strchr(packages[i], '/') || packages[i][0] == '.' || packages[i][0] == '-') {
            s = qkv_fail(QKV_ERR_ARG, "'%s' is not a package name", packages[i]);
            break;
        }
        int fetched = 0;
        s = fetch_one(debs, root, log_path, packages[i], o, &fetched);
        *n_fetched += fetched;
        total++;
    }
    if (s == QKV_OK && *n_fetched == 0)
        corpus_log(o, "cache complete: %d packages already unpacked in %s, nothing to download", total, root);
    free(debs);
    free(root);
    free(log_path);
    return s;
}
