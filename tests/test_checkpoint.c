/* train/checkpoint: the container format (round trip, corruption, truncation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/io.h"
#include "train/checkpoint.h"
#include "test.h"

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "/tmp/qkv_test_ckpt_%ld_%s", (long)getpid(), name);
}

static void test_round_trip(void)
{
    float params[5] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-8f};
    const char *cfg = "{\"d_model\": 16}";
    ckpt_section in[3] = {
        {"config", (void *)cfg, strlen(cfg)},
        {"params", params, sizeof params},
        {"empty", NULL, 0},
    };
    char path[256];
    tmp_path(path, sizeof path, "rt");
    CHECK(ckpt_write(path, in, 3) == QKV_OK, "write: %s", qkv_last_error());
    ckpt_file f;
    CHECK(ckpt_read(path, &f) == QKV_OK, "read: %s", qkv_last_error());
    /* and a "pad" before params, whose payload starts on a page */
    CHECK(f.n_sections == 4 && !strcmp(f.sections[1].tag, "pad") && !strcmp(f.sections[2].tag, "params"),
          "%d sections", f.n_sections);
    const ckpt_section *p = ckpt_find(&f, "params");
    CHECK(p && p->nbytes == sizeof params && memcmp(p->data, params, sizeof params) == 0, "params differ");
    CHECK(p && ((const char *)p->data - (const char *)f.file_data) % CKPT_PARAMS_ALIGN == 0,
          "params at file offset %td", p ? (const char *)p->data - (const char *)f.file_data : 0);
    const ckpt_section *c = ckpt_find(&f, "config");
    CHECK(c && c->nbytes == strlen(cfg) && memcmp(c->data, cfg, c->nbytes) == 0, "config differs");
    CHECK(ckpt_find(&f, "empty") && ckpt_find(&f, "empty")->nbytes == 0, "empty section");
    CHECK(ckpt_find(&f, "adam_m") == NULL, "absent section found");
    ckpt_free(&f);
    remove(path);
}

static void test_corruption_detected(void)
{
    float params[64];
    for (int i = 0; i < 64; i++)
        params[i] = (float)i;
    ckpt_section in[2] = {{"config", "{}", 2}, {"params", params, sizeof params}};
    char path[256];
    tmp_path(path, sizeof path, "bad");
    CHECK(ckpt_write(path, in, 2) == QKV_OK, "write: %s", qkv_last_error());
    char *data;
    size_t len;
    CHECK(qkv_read_file(path, &data, &len) == QKV_OK, "read back");
    remove(path);
    ckpt_file f;
    /* Every truncation fails cleanly. */
    for (size_t cut = 0; cut < len; cut++) {
        qkv_status s = ckpt_parse(data, cut, "cut.qkv", &f);
        CHECK(s == QKV_ERR_FORMAT, "truncated at %zu of %zu: status %d", cut, len, s);
        if (s == QKV_OK)
            ckpt_free(&f);
    }
    /* Every flipped byte is caught (by the magic, version or checksum). */
    for (size_t i = 0; i < len; i += 7) {
        data[i] ^= 0x5a;
        qkv_status s = ckpt_parse(data, len, "flip.qkv", &f);
        CHECK(s == QKV_ERR_FORMAT, "flipped byte %zu accepted", i);
        if (s == QKV_OK)
            ckpt_free(&f);
        data[i] ^= 0x5a;
    }
    CHECK(ckpt_parse(data, len, "ok.qkv", &f) == QKV_OK, "intact: %s", qkv_last_error());
    ckpt_free(&f);
    data[len - 20] ^= 1;
    CHECK(ckpt_parse(data, len, "x.qkv", &f) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "checksum"),
          "message: %s", qkv_last_error());
    free(data);
    CHECK(ckpt_read("/nonexistent/x.qkv", &f) == QKV_ERR_IO, "missing file");
}

/* A file read from disk (mapped) with sections larger than the chunk its
 * pages are released by: the copy is the data, and a damaged or truncated
 * file on disk, an empty file and a FIFO's bytes are handled as in memory. */
static void test_mapped_file(void)
{
    size_t n = (9u << 20) / sizeof(float) + 3; /* past two 4 MiB chunks, not a page multiple */
    float *big = malloc(n * sizeof *big), *back = malloc(n * sizeof *back);
    for (size_t i = 0; i < n; i++)
        big[i] = (float)i * 0.5f;
    ckpt_section in[2] = {{"config", "{}", 2}, {"params", big, n * sizeof(float)}};
    char path[256];
    tmp_path(path, sizeof path, "map");
    CHECK(ckpt_write(path, in, 2) == QKV_OK, "write: %s", qkv_last_error());
    ckpt_file f;
    CHECK(ckpt_read(path, &f) == QKV_OK, "read: %s", qkv_last_error());
    const ckpt_section *ps = ckpt_find(&f, "params");
    CHECK(ps && ps->nbytes == n * sizeof(float), "params section");
    if (ps) {
        ckpt_section_copy(&f, back, ps);
        CHECK(memcmp(back, big, n * sizeof(float)) == 0, "copied params differ");
        /* the section stays readable after its pages were released */
        CHECK(memcmp(ps->data, big, n * sizeof(float)) == 0, "params after the copy differ");
    }
    ckpt_free(&f);
    FILE *fp = fopen(path, "r+b"); /* one byte in the middle flipped on disk */
    fseek(fp, (long)(n * 2), SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, (long)(n * 2), SEEK_SET);
    fputc(c ^ 0x10, fp);
    fclose(fp);
    CHECK(ckpt_read(path, &f) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "checksum"), "flipped on disk: %s",
          qkv_last_error());
    CHECK(truncate(path, (off_t)(n * 3)) == 0, "truncate");
    CHECK(ckpt_read(path, &f) == QKV_ERR_FORMAT, "truncated on disk: %s", qkv_last_error());
    CHECK(truncate(path, 0) == 0, "truncate to 0");
    CHECK(ckpt_read(path, &f) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "magic"), "empty file: %s",
          qkv_last_error());
    remove(path);
    /* a FIFO is read, not mapped */
    ckpt_section small[1] = {{"params", big, 64 * sizeof(float)}};
    char src[300], fifo[300];
    snprintf(src, sizeof src, "%s.src", path);
    snprintf(fifo, sizeof fifo, "%s.fifo", path);
    CHECK(ckpt_write(src, small, 1) == QKV_OK, "write: %s", qkv_last_error());
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    pid_t pid = fork();
    if (pid == 0) {
        char *d;
        size_t len;
        FILE *w = fopen(fifo, "wb");
        if (w && qkv_read_file(src, &d, &len) == QKV_OK)
            fwrite(d, 1, len, w);
        if (w)
            fclose(w); /* _exit does not flush */
        _exit(0);
    }
    qkv_status st = ckpt_read(fifo, &f);
    CHECK(st == QKV_OK, "fifo: %s", qkv_last_error());
    if (st == QKV_OK) {
        ps = ckpt_find(&f, "params");
        CHECK(ps && ps->nbytes == 64 * sizeof(float) && memcmp(ps->data, big, ps->nbytes) == 0, "fifo content");
        ckpt_free(&f);
    }
    waitpid(pid, NULL, 0);
    remove(src), remove(fifo);
    free(big), free(back);
}

static void test_bad_tag(void)
{
    ckpt_section in[1] = {{"", "x", 1}};
    CHECK(ckpt_write("/tmp/qkv_never_written", in, 1) == QKV_ERR_ARG, "empty tag accepted");
    FILE *fp = fopen("/tmp/qkv_never_written", "rb");
    CHECK(fp == NULL, "a file was written despite the error");
    if (fp)
        fclose(fp);
}

/* A writer killed (SIGKILL) in the middle of rewriting a checkpoint leaves
 * the previous one intact: the new bytes go to a temporary name. */
static void test_killed_writer_keeps_previous(void)
{
    char path[256];
    tmp_path(path, sizeof path, "kill");
    size_t n = 16 << 20; /* 64 MB: the write takes long enough to be interrupted */
    float *big = malloc(n * sizeof *big);
    for (size_t i = 0; i < n; i++)
        big[i] = (float)i;
    ckpt_section first[1] = {{"params", big, 1024 * sizeof(float)}};
    CHECK(ckpt_write(path, first, 1) == QKV_OK, "first write: %s", qkv_last_error());
    for (int attempt = 0; attempt < 3; attempt++) {
        pid_t pid = fork();
        if (pid == 0) {
            ckpt_section second[1] = {{"params", big, n * sizeof(float)}};
            for (;;)
                ckpt_write(path, second, 1);
        }
        usleep(30000 + 40000 * attempt);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        ckpt_file f;
        qkv_status s = ckpt_read(path, &f);
        CHECK(s == QKV_OK, "after kill %d: %s", attempt, qkv_last_error());
        if (s == QKV_OK) {
            const ckpt_section *p = ckpt_find(&f, "params");
            CHECK(p && (p->nbytes == 1024 * sizeof(float) || p->nbytes == n * sizeof(float)),
                  "after kill %d: params of %zu bytes", attempt, p ? p->nbytes : 0);
            CHECK(p && memcmp(p->data, big, 1024 * sizeof(float)) == 0, "after kill %d: content", attempt);
            ckpt_free(&f);
        }
        char tmp[300];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)pid);
        remove(tmp);
    }
    remove(path);
    free(big);
}

static const test_case cases[] = {
    TEST(test_killed_writer_keeps_previous),
    TEST(test_round_trip),
    TEST(test_corruption_detected),
    TEST(test_bad_tag),
    TEST(test_mapped_file),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
