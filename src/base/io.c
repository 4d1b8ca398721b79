#include "base/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"

qkv_status qkv_map_file(const char *path, void **data, size_t *len, int *mapped)
{
    *data = NULL;
    *len = 0;
    *mapped = 0;
    struct stat pre; /* before opening: opening a FIFO here would take its writer's bytes */
    if (stat(path, &pre) == 0 && S_ISREG(pre.st_mode) && pre.st_size > 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        void *p = MAP_FAILED;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
            p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (fd >= 0)
            close(fd);
        if (p != MAP_FAILED) {
            *data = p;
            *len = (size_t)st.st_size;
            *mapped = 1;
            return QKV_OK;
        }
    }
    char *buf;
    QKV_TRY(qkv_read_file(path, &buf, len));
    *data = buf;
    return QKV_OK;
}

void qkv_unmap_file(void *data, size_t len, int mapped)
{
    if (mapped)
        munmap(data, len);
    else
        free(data);
}

void qkv_release_pages(const void *p, size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1), b = ((uintptr_t)p + n) & ~(uintptr_t)(pg - 1);
    if (n && b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

qkv_status qkv_read_file(const char *path, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return qkv_fail(QKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(fp);
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (n < cap) {
            if (ferror(fp)) {
                int e = errno;
                free(buf);
                fclose(fp);
                return qkv_fail(QKV_ERR_IO, "%s: read error at byte %zu: %s", path, n, strerror(e));
            }
            break;
        }
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            fclose(fp);
            return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, cap);
        }
        buf = nb;
    }
    fclose(fp);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return QKV_OK;
}

qkv_status qkv_afile_open(qkv_afile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    size_t n = strlen(path) + 32;
    f->path = strdup(path);
    f->tmp_path = malloc(n);
    if (!f->path || !f->tmp_path) {
        free(f->path);
        free(f->tmp_path);
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        qkv_status s = qkv_fail(QKV_ERR_IO, "%s: cannot create: %s", f->tmp_path, strerror(errno));
        free(f->path);
        free(f->tmp_path);
        memset(f, 0, sizeof *f);
        return s;
    }
    return QKV_OK;
}

static void afile_release(qkv_afile *f)
{
    free(f->path);
    free(f->tmp_path);
    memset(f, 0, sizeof *f);
}

void qkv_afile_abort(qkv_afile *f)
{
    if (f->fp)
        fclose(f->fp);
    if (f->tmp_path)
        remove(f->tmp_path);
    afile_release(f);
}

qkv_status qkv_afile_commit(qkv_afile *f)
{
    qkv_status s = QKV_OK;
    int bad = ferror(f->fp) || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0;
    int e = errno;
    if (fclose(f->fp) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    f->fp = NULL;
    if (bad)
        s = qkv_fail(QKV_ERR_IO, "%s: write failed: %s", f->path, strerror(e));
    else if (rename(f->tmp_path, f->path) != 0)
        s = qkv_fail(QKV_ERR_IO, "%s: cannot rename from %s: %s", f->path, f->tmp_path, strerror(errno));
    if (s != QKV_OK)
        remove(f->tmp_path);
    afile_release(f);
    return s;
}

qkv_status qkv_write_file(const char *path, const void *data, size_t len)
{
    qkv_afile f;
    QKV_TRY(qkv_afile_open(&f, path));
    if (len && fwrite(data, 1, len, f.fp) != len) {
        qkv_status s = qkv_fail(QKV_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        qkv_afile_abort(&f);
        return s;
    }
    return qkv_afile_commit(&f);
}

char *qkv_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}
