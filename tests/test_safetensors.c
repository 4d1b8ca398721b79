/* formats/safetensors: round trips, reference-written files, conversions and
 * every malformed header we could think of. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "formats/safetensors.h"
#include "test.h"

static char tmp_path[256];

static const char *tmp_file(const char *tag)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/qkv_test_st_%ld_%s.safetensors", (long)getpid(), tag);
    return tmp_path;
}

/* ---- round trip ---------------------------------------------------------- */

#define RT_N 10

static void test_roundtrip_every_dtype(void)
{
    /* one tensor per dtype; odd sizes so offsets are not all multiples of 8 */
    static unsigned char data[RT_N][512];
    for (int i = 0; i < RT_N; i++)
        for (int j = 0; j < 512; j++)
            data[i][j] = (unsigned char)(i * 31 + j * 7 + 1);
    st_write_tensor ts[RT_N + 2];
    const char *names[RT_N] = {"f32", "f16", "bf16", "f64", "i64", "i32", "i16", "i8", "u8", "bool"};
    for (int i = 0; i < RT_N; i++) {
        ts[i] = (st_write_tensor){names[i], (st_dtype)i, 2, {3, 5}, data[i]};
        if (i == ST_BOOL)
            for (int j = 0; j < 15; j++)
                data[i][j] &= 1;
    }
    ts[RT_N] = (st_write_tensor){"scalar \"quoted\" \\ name", ST_F32, 0, {0}, data[0]};
    ts[RT_N + 1] = (st_write_tensor){"empty", ST_I64, 3, {4, 0, 2}, NULL};
    const char *meta[] = {"format", "pt", "note", "multi\nline \"q\" \xe4\xb8\xad"};
    const char *path = tmp_file("rt");
    CHECK(st_write(path, ts, RT_N + 2, meta, 2) == QKV_OK, "write: %s", qkv_last_error());

    st_file *f;
    CHECK(st_open(&f, path) == QKV_OK, "open: %s", qkv_last_error());
    if (!f)
        return;
    CHECK(st_count(f) == RT_N + 2, "count %d, want %d", st_count(f), RT_N + 2);
    for (int i = 0; i < RT_N + 2 && i < st_count(f); i++) {
        const st_tensor *t = st_get(f, i);
        CHECK(!strcmp(t->name, ts[i].name), "tensor %d named '%s', want '%s'", i, t->name, ts[i].name);
        CHECK(t->dtype == ts[i].dtype, "tensor %d dtype %d want %d", i, t->dtype, ts[i].dtype);
        CHECK(t->ndim == ts[i].ndim, "tensor %d ndim %d want %d", i, t->ndim, ts[i].ndim);
        size_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == ts[i].shape[d], "tensor %d shape[%d] %lld want %lld", i, d, (long long)t->shape[d],
                  (long long)ts[i].shape[d]);
            count *= (size_t)ts[i].shape[d];
        }
        CHECK(t->nbytes == count * st_dtype_size(ts[i].dtype), "tensor %d nbytes %zu", i, t->nbytes);
        CHECK(st_find(f, ts[i].name) == t, "st_find('%s') gave another entry", ts[i].name);
        if (t->nbytes)
            CHECK(!memcmp(st_data(f, t), ts[i].data, t->nbytes), "tensor %d data differs", i);
    }
    CHECK(st_find(f, "absent") == NULL, "st_find found an absent name");
    CHECK(st_get(f, -1) == NULL && st_get(f, RT_N + 2) == NULL, "st_get out of range gave a tensor");
    CHECK(st_metadata(f, "format") && !strcmp(st_metadata(f, "format"), "pt"), "metadata format '%s'",
          st_metadata(f, "format") ? st_metadata(f, "format") : "(null)");
    CHECK(st_metadata(f, "note") && !strcmp(st_metadata(f, "note"), meta[3]), "metadata note differs");
    CHECK(st_metadata(f, "absent") == NULL, "absent metadata key found");
    CHECK(st_metadata_count(f) == 2, "metadata count %d", st_metadata_count(f));
    st_close(f);

    /* header is padded with spaces to a multiple of 8, as the reference does */
    char *raw;
    size_t len;
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL, "reopen");
    if (fp) {
        fseek(fp, 0, SEEK_END);
        len = (size_t)ftell(fp);
        fseek(fp, 0, SEEK_SET);
        raw = malloc(len);
        CHECK(fread(raw, 1, len, fp) == len, "short read");
        fclose(fp);
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | (unsigned char)raw[i];
        CHECK(n % 8 == 0, "header size %llu not a multiple of 8", (unsigned long long)n);
        size_t last = 8 + (size_t)n - 1;
        while (raw[last] == ' ')
            last--;
        CHECK(raw[last] == '}', "header ends with '%c' before its padding", raw[last]);
        CHECK(8 + n - 1 - last < 8, "%zu padding spaces", (size_t)(8 + n - 1 - last));
        free(raw);
    }
    remove(path);
}

static void test_empty_file_has_no_tensors(void)
{
    const char *path = tmp_file("empty");
    CHECK(st_write(path, NULL, 0, NULL, 0) == QKV_OK, "write: %s", qkv_last_error());
    st_file *f;
    CHECK(st_open(&f, path) == QKV_OK, "open: %s", qkv_last_error());
    if (f)
        CHECK(st_count(f) == 0 && st_metadata_count(f) == 0, "count %d", st_count(f));
    st_close(f);
    remove(path);
    st_close(NULL);
}

/* ---- conversions ---------------------------------------------------------- */

static void test_f16_every_value(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_f16_to_f32((uint16_t)h);
        int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan) {
            if (!isnan(f) && bad++ < 5)
                CHECK(0, "f16 0x%04x should be NaN, got %g", h, f);
            continue;
        }
        uint16_t back = st_f32_to_f16(f);
        if (back != h && bad++ < 5)
            CHECK(0, "f16 0x%04x -> %.9g -> 0x%04x", h, f, back);
    }
    CHECK(bad == 0, "%d f16 values did not round trip", bad);
    CHECK(st_f16_to_f32(0x0001) == 0x1p-24f, "smallest subnormal %g", st_f16_to_f32(0x0001));
    CHECK(st_f16_to_f32(0x03ff) == 1023 * 0x1p-24f, "largest subnormal %g", st_f16_to_f32(0x03ff));
    CHECK(st_f16_to_f32(0x3c00) == 1.0f, "one %g", st_f16_to_f32(0x3c00));
    CHECK(st_f16_to_f32(0x7bff) == 65504.0f, "max %g", st_f16_to_f32(0x7bff));
    CHECK(isinf(st_f16_to_f32(0x7c00)) && st_f16_to_f32(0x7c00) > 0, "+inf");
    CHECK(isinf(st_f16_to_f32(0xfc00)) && st_f16_to_f32(0xfc00) < 0, "-inf");
    CHECK(signbit(st_f16_to_f32(0x8000)) && st_f16_to_f32(0x8000) == 0, "-0");
    /* rounding: ties to even, overflow to inf, underflow to zero */
    CHECK(st_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie rounds to even: 0x%04x", st_f32_to_f16(1.0f + 0x1p-11f));
    CHECK(st_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01, "above tie rounds up");
    CHECK(st_f32_to_f16(65520.0f) == 0x7c00, "65520 -> 0x%04x, want inf", st_f32_to_f16(65520.0f));
    CHECK(st_f32_to_f16(65519.0f) == 0x7bff, "65519 -> 0x%04x", st_f32_to_f16(65519.0f));
    CHECK(st_f32_to_f16(0x1p-25f) == 0x0000, "2^-25 (tie) -> 0x%04x", st_f32_to_f16(0x1p-25f));
    CHECK(st_f32_to_f16(0x1.0002p-25f) == 0x0001, "just above 2^-25 -> 0x%04x", st_f32_to_f16(0x1.0002p-25f));
    CHECK(st_f32_to_f16(1023.5f * 0x1p-24f) == 0x0400, "subnormal carry into normal -> 0x%04x",
          st_f32_to_f16(1023.5f * 0x1p-24f));
    CHECK((st_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (st_f32_to_f16(NAN) & 0x3ff), "NaN -> 0x%04x",
          st_f32_to_f16(NAN));
}

static void test_bf16_values(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_bf16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        if (st_f32_to_bf16(f) != h && bad++ < 5)
            CHECK(0, "bf16 0x%04x -> %g -> 0x%04x", h, f, st_f32_to_bf16(f));
    }
    CHECK(bad == 0, "%d bf16 values did not round trip", bad);
    CHECK(st_bf16_to_f32(0x3f80) == 1.0f, "bf16 one");
    CHECK(st_bf16_to_f32(0x0001) == 0x1p-133f, "bf16 smallest subnormal %g", st_bf16_to_f32(0x0001));
    CHECK(isnan(st_bf16_to_f32(st_f32_to_bf16(NAN))), "bf16 NaN");
    CHECK(st_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "bf16 tie to even");
    CHECK(st_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "bf16 above tie");
}

static void test_read_f32_and_i32(void)
{
    uint16_t h[4] = {0x3c00, 0x0001, 0x7c00, 0xc000};
    uint16_t b[3] = {0x3f80, 0xc040, 0xff80};
    double d[2] = {0.1, -1e300};
    float fl[3] = {1.5f, -0.0f, 3e38f};
    int64_t i64[3] = {1, -2147483648LL, 2147483647LL};
    int64_t i64_big[2] = {0, 2147483648LL};
    int32_t i32[2] = {-7, 7};
    st_write_tensor ts[] = {
        {"h", ST_F16, 1, {4}, h},       {"b", ST_BF16, 1, {3}, b},    {"d", ST_F64, 1, {2}, d},
        {"f", ST_F32, 2, {1, 3}, fl},   {"q", ST_I64, 1, {3}, i64},   {"big", ST_I64, 1, {2}, i64_big},
        {"i", ST_I32, 1, {2}, i32},     {"u", ST_U8, 1, {2}, i32},
    };
    const char *path = tmp_file("read");
    CHECK(st_write(path, ts, 8, NULL, 0) == QKV_OK, "write: %s", qkv_last_error());
    st_file *f;
    CHECK(st_open(&f, path) == QKV_OK, "open: %s", qkv_last_error());
    remove(path);
    if (!f)
        return;
    float out[4];
    CHECK(st_read_f32(f, "h", out, 4) == QKV_OK, "%s", qkv_last_error());
    CHECK(out[0] == 1 && out[1] == 0x1p-24f && isinf(out[2]) && out[3] == -2, "f16 read %g %g %g %g", out[0], out[1],
          out[2], out[3]);
    CHECK(st_read_f32(f, "b", out, 3) == QKV_OK, "%s", qkv_last_error());
    CHECK(out[0] == 1 && out[1] == -3 && isinf(out[2]) && out[2] < 0, "bf16 read %g %g %g", out[0], out[1], out[2]);
    CHECK(st_read_f32(f, "d", out, 2) == QKV_OK, "%s", qkv_last_error());
    CHECK(out[0] == 0.1f && isinf(out[1]) && out[1] < 0, "f64 read %.9g %g", out[0], out[1]);
    CHECK(st_read_f32(f, "f", out, 3) == QKV_OK, "%s", qkv_last_error());
    CHECK(out[0] == 1.5f && signbit(out[1]) && out[2] == 3e38f, "f32 read %g %g %g", out[0], out[1], out[2]);
    int32_t iv[3];
    CHECK(st_read_i32(f, "q", iv, 3) == QKV_OK, "%s", qkv_last_error());
    CHECK(iv[0] == 1 && iv[1] == INT32_MIN && iv[2] == INT32_MAX, "i64 read %d %d %d", iv[0], iv[1], iv[2]);
    CHECK(st_read_i32(f, "i", iv, 2) == QKV_OK && iv[0] == -7 && iv[1] == 7, "i32 read %d %d", iv[0], iv[1]);

    /* errors name the tensor and what was expected */
    CHECK(st_read_i32(f, "big", iv, 2) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "'big'") &&
              strstr(qkv_last_error(), "element 1"),
          "out-of-range i64: %s", qkv_last_error());
    CHECK(st_read_f32(f, "nope", out, 1) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "'nope'"), "absent: %s",
          qkv_last_error());
    CHECK(st_read_f32(f, "f", out, 4) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "expected 4"),
          "count mismatch: %s", qkv_last_error());
    CHECK(st_read_f32(f, "q", out, 3) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "I64"), "int as float: %s",
          qkv_last_error());
    CHECK(st_read_i32(f, "f", iv, 3) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "F32"), "float as int: %s",
          qkv_last_error());
    CHECK(st_read_i32(f, "u", iv, 2) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "U8"), "u8 as i32: %s",
          qkv_last_error());
    st_close(f);
}

/* ---- files written by the reference (scripts/golden/formats.py) ------------ */

static void test_reads_reference_writer(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/formats/reference.safetensors", test_golden_dir());
    st_file *f;
    CHECK(st_open(&f, path) == QKV_OK, "open: %s", qkv_last_error());
    if (!f)
        return;
    /* the script stores each float tensor next to its float32 upcast made by
     * torch, and each int tensor next to its int32 cast */
    const char *pairs[][2] = {{"x_f16", "x_f16_as_f32"}, {"x_bf16", "x_bf16_as_f32"}, {"x_f64", "x_f64_as_f32"},
                              {"x_f32", "x_f32"}};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        const st_tensor *t = st_find(f, pairs[p][1]);
        CHECK(t != NULL, "reference file lacks '%s'", pairs[p][1]);
        if (!t)
            continue;
        size_t n = t->nbytes / 4;
        float *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
        CHECK(st_read_f32(f, pairs[p][0], got, n) == QKV_OK, "%s", qkv_last_error());
        CHECK(st_read_f32(f, pairs[p][1], want, n) == QKV_OK, "%s", qkv_last_error());
        for (size_t i = 0; i < n; i++)
            if (memcmp(&got[i], &want[i], 4) != 0 && !(isnan(got[i]) && isnan(want[i]))) {
                CHECK(0, "'%s'[%zu] = %.9g, torch says %.9g", pairs[p][0], i, got[i], want[i]);
                break;
            }
        free(got);
        free(want);
    }
    const st_tensor *ids = st_find(f, "ids_i64");
    CHECK(ids && ids->dtype == ST_I64 && ids->ndim == 2, "ids_i64 missing or wrong dtype/rank");
    if (ids) {
        size_t n = ids->nbytes / 8;
        int32_t *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
        CHECK(st_read_i32(f, "ids_i64", got, n) == QKV_OK, "%s", qkv_last_error());
        CHECK(st_read_i32(f, "ids_i32", want, n) == QKV_OK, "%s", qkv_last_error());
        for (size_t i = 0; i < n; i++)
            if (got[i] != want[i]) {
                CHECK(0, "ids[%zu] %d vs %d", i, got[i], want[i]);
                break;
            }
        free(got);
        free(want);
    }
    CHECK(st_metadata(f, "format") && !strcmp(st_metadata(f, "format"), "pt"), "metadata 'format' is %s",
          st_metadata(f, "format") ? st_metadata(f, "format") : "absent");
    CHECK(st_metadata(f, "origin") && !strcmp(st_metadata(f, "origin"), "scripts/golden/formats.py"),
          "metadata 'origin' is %s", st_metadata(f, "origin") ? st_metadata(f, "origin") : "absent");
    st_close(f);
}

/* The file our writer makes for this content is committed as
 * tests/golden/formats/written_by_qkv.safetensors, and the script checks that
 * the reference reads it; here we check the writer still makes those exact
 * bytes. QKV_REGEN_GOLDEN=1 rewrites the committed file instead. */
static void test_writer_output_is_stable(void)
{
    float w[6] = {0.5f, -1.25f, 3.0f, 1e-3f, -0.0f, 65504.0f};
    uint16_t h[6], bf[6];
    for (int i = 0; i < 6; i++) {
        h[i] = st_f32_to_f16(w[i]);
        bf[i] = st_f32_to_bf16(w[i]);
    }
    int64_t ids[4] = {0, 1, -5, 1LL << 40};
    int32_t i32[4] = {3, -3, 2147483647, -2147483647 - 1};
    unsigned char mask[3] = {1, 0, 1};
    st_write_tensor ts[] = {
        {"encoder.weight", ST_F32, 2, {2, 3}, w}, {"half", ST_F16, 1, {6}, h},   {"brain", ST_BF16, 2, {3, 2}, bf},
        {"ids", ST_I64, 1, {4}, ids},             {"i32", ST_I32, 2, {2, 2}, i32}, {"mask", ST_BOOL, 1, {3}, mask},
        {"scalar", ST_F32, 0, {0}, w},
    };
    const char *meta[] = {"format", "pt", "writer", "qkv"};
    char golden[512];
    snprintf(golden, sizeof golden, "%s/formats/written_by_qkv.safetensors", test_golden_dir());
    const char *regen = getenv("QKV_REGEN_GOLDEN");
    const char *path = regen && *regen == '1' ? golden : tmp_file("stable");
    CHECK(st_write(path, ts, 7, meta, 2) == QKV_OK, "write: %s", qkv_last_error());
    if (path == golden)
        return;
    FILE *a = fopen(path, "rb"), *b = fopen(golden, "rb");
    CHECK(a && b, "cannot open %s or %s", path, golden);
    if (a && b) {
        long off = 0;
        int ca, cb;
        do {
            ca = fgetc(a);
            cb = fgetc(b);
            off++;
        } while (ca == cb && ca != EOF);
        CHECK(ca == cb, "writer output differs from %s at byte %ld (%d vs %d)", golden, off - 1, ca, cb);
    }
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    remove(path);
}

/* ---- malformed files ------------------------------------------------------ */

/* Builds "u64 len | header | data_len bytes" with len = strlen(header). */
static unsigned char *make_file(const char *header, size_t data_len, size_t *len)
{
    size_t n = strlen(header);
    *len = 8 + n + data_len;
    unsigned char *buf = calloc(*len + 1, 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    return buf;
}

static void expect_error(const char *what, const unsigned char *buf, size_t len, qkv_status want,
                         const char *needle1, const char *needle2)
{
    st_file *f = (st_file *)1;
    qkv_status s = st_open_memory(&f, buf, len, "bad.safetensors");
    CHECK(s == want, "%s: status %s, want %s (%s)", what, qkv_status_name(s), qkv_status_name(want),
          qkv_last_error());
    CHECK(f == NULL, "%s: *out not NULL on failure", what);
    if (s != QKV_OK) {
        CHECK(!strncmp(qkv_last_error(), "bad.safetensors: ", 17), "%s: message lacks the file name: %s", what,
              qkv_last_error());
        CHECK(!needle1 || strstr(qkv_last_error(), needle1), "%s: message lacks '%s': %s", what, needle1,
              qkv_last_error());
        CHECK(!needle2 || strstr(qkv_last_error(), needle2), "%s: message lacks '%s': %s", what, needle2,
              qkv_last_error());
    }
    st_close(f == (st_file *)1 ? NULL : f);
}

static void expect_header_error(const char *what, const char *header, size_t data_len, qkv_status want,
                                const char *needle1, const char *needle2)
{
    size_t len;
    unsigned char *buf = make_file(header, data_len, &len);
    expect_error(what, buf, len, want, needle1, needle2);
    free(buf);
}

static void test_malformed_sizes(void)
{
    unsigned char small[7] = {2, 0, 0, 0, 0, 0, 0};
    expect_error("empty file", small, 0, QKV_ERR_FORMAT, "0 bytes", NULL);
    expect_error("7-byte file", small, 7, QKV_ERR_FORMAT, "8-byte", NULL);
    unsigned char zero[16] = {0};
    expect_error("header size 0", zero, 16, QKV_ERR_FORMAT, "header size is 0", NULL);
    unsigned char big[16] = {0x01, 0xe1, 0xf5, 0x05}; /* 100,000,001 */
    expect_error("header size above 100 MB", big, 16, QKV_ERR_FORMAT, "100000001", "limit");
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    expect_error("header size 2^63", huge, 16, QKV_ERR_FORMAT, "limit", NULL);
    unsigned char past[12] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    expect_error("header size past the end", past, 12, QKV_ERR_FORMAT, "past the end", NULL);
}

static void test_malformed_json(void)
{
    expect_header_error("truncated JSON", "{\"a\":{\"dtype\":\"F32\"", 0, QKV_ERR_FORMAT, "not valid JSON", NULL);
    expect_header_error("array header", "[1, 2]", 0, QKV_ERR_FORMAT, "JSON object", NULL);
    expect_header_error("string header", "\"x\"", 0, QKV_ERR_FORMAT, "JSON object", NULL);
    expect_header_error("leading junk", "x{}", 0, QKV_ERR_FORMAT, "'{' expected at file offset 8", NULL);
    expect_header_error("only whitespace", "   ", 0, QKV_ERR_FORMAT, "'{' expected at file offset 11", NULL);
    expect_header_error("trailing junk", "{} x", 0, QKV_ERR_FORMAT, "after the header", "file offset 11");
    expect_header_error("two objects", "{}{}", 0, QKV_ERR_FORMAT, "after the header", NULL);
    expect_header_error("invalid UTF-8", "{\"\xff\":1}", 0, QKV_ERR_FORMAT, "UTF-8", "file offset 10");
    expect_header_error("overlong UTF-8", "{\"\xc0\xaf\":1}", 0, QKV_ERR_FORMAT, "UTF-8", NULL);
    expect_header_error("surrogate in UTF-8", "{\"\xed\xa0\x80\":1}", 0, QKV_ERR_FORMAT, "UTF-8", NULL);
    expect_header_error("escaped NUL in a name", "{\"a\\u0000b\":1}", 0, QKV_ERR_UNSUPPORTED, "\\u0000",
                        "file offset 11");
    expect_header_error("escaped backslash before u0000 is text", "{\"a\\\\u0000\":1}", 0, QKV_ERR_FORMAT,
                        "'a\\u0000'", "expected an object");
    expect_header_error("control byte", "{\"a\x01\":1}", 0, QKV_ERR_FORMAT, "control byte", NULL);
    expect_header_error("tensor not an object", "{\"w\": 3}", 0, QKV_ERR_FORMAT, "'w'", "expected an object");
    expect_header_error("metadata not an object", "{\"__metadata__\": [1]}", 0, QKV_ERR_FORMAT, "__metadata__",
                        NULL);
    expect_header_error("metadata value not a string", "{\"__metadata__\": {\"k\": 1}}", 0, QKV_ERR_FORMAT, "'k'",
                        "string");
    expect_header_error("metadata key twice", "{\"__metadata__\": {\"k\": \"a\", \"k\": \"b\"}}", 0, QKV_ERR_FORMAT,
                        "'k'", "twice");
    expect_header_error("metadata twice", "{\"__metadata__\": {}, \"__metadata__\": {}}", 0, QKV_ERR_FORMAT,
                        "twice", NULL);
}

static void test_malformed_fields(void)
{
    expect_header_error("unknown dtype", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "unknown dtype 'F33'");
    expect_header_error("unsupported dtype", "{\"w\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2,
                        QKV_ERR_UNSUPPORTED, "'w'", "U16");
    expect_header_error("lower-case dtype", "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "dtype");
    expect_header_error("dtype missing", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, QKV_ERR_FORMAT, "'w'",
                        "'dtype' is missing");
    expect_header_error("dtype a number", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "'dtype' is not a string");
    expect_header_error("shape missing", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, QKV_ERR_FORMAT,
                        "'w'", "'shape' is missing");
    expect_header_error("shape not array", "{\"w\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "'shape' is not an array");
    expect_header_error("negative shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "shape[1]");
    expect_header_error("fractional shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
                        4, QKV_ERR_FORMAT, "'w'", "shape[0]");
    expect_header_error("string shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "shape[0]");
    expect_header_error("shape overflow",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}",
                        4, QKV_ERR_FORMAT, "'w'", "overflows");
    expect_header_error("nine dimensions",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                        QKV_ERR_UNSUPPORTED, "'w'", "9 dimensions");
    expect_header_error("offsets missing", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, QKV_ERR_FORMAT, "'w'",
                        "'data_offsets' is missing");
    expect_header_error("three offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "data_offsets");
    expect_header_error("negative offset", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "data_offsets");
    expect_header_error("end before begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                        QKV_ERR_FORMAT, "'w'", "end before");
}

static void test_malformed_layout(void)
{
    /* the message the brief gives as the example, verbatim */
    size_t len;
    unsigned char *buf = make_file(
        "{\"encoder.layers.0.fc1.weight\":{\"dtype\":\"F32\",\"shape\":[5,6],\"data_offsets\":[0,100]}}", 100, &len);
    st_file *f;
    CHECK(st_open_memory(&f, buf, len, "model.safetensors") == QKV_ERR_FORMAT, "size mismatch accepted");
    CHECK(!strcmp(qkv_last_error(), "model.safetensors: tensor 'encoder.layers.0.fc1.weight': data_offsets [0, 100] "
                                    "give 100 bytes, shape [5, 6] F32 needs 120"),
          "message: %s", qkv_last_error());
    free(buf);

    expect_header_error("offsets past the data",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, QKV_ERR_FORMAT, "'w'",
                        "past the data section");
    expect_header_error("overlap",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                        12, QKV_ERR_FORMAT, "'b'", "overlap tensor 'a'");
    expect_header_error("same offsets twice",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                        4, QKV_ERR_FORMAT, "overlap", NULL);
    expect_header_error("gap",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                        12, QKV_ERR_FORMAT, "'b'", "gap after tensor 'a'");
    expect_header_error("first tensor not at 0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                        8, QKV_ERR_FORMAT, "'a'", "begin at 4");
    expect_header_error("bytes after the last tensor",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6, QKV_ERR_FORMAT,
                        "cover 4 bytes", "holds 6");
    expect_header_error("data but no tensors", "{}", 3, QKV_ERR_FORMAT, "cover 0 bytes", NULL);
    expect_header_error("duplicate names",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                        8, QKV_ERR_FORMAT, "'a'", "twice");
}

static void test_valid_edge_cases(void)
{
    /* out-of-order entries, zero-size tensors sharing an offset, null
     * metadata, whitespace padding: all valid for the reference */
    const char *h = "{ \"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                    "\"z1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                    "\"z0\":{\"dtype\":\"I8\",\"shape\":[0, 3],\"data_offsets\":[0,0]},"
                    "\"a\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]},"
                    "\"__metadata__\":null}  \n ";
    size_t len;
    unsigned char *buf = make_file(h, 8, &len);
    buf[len - 8] = 7;
    buf[len - 4] = 0;
    buf[len - 3] = 0;
    buf[len - 2] = 0x80;
    buf[len - 1] = 0x3f;
    st_file *f;
    CHECK(st_open_memory(&f, buf, len, "edge") == QKV_OK, "open: %s", qkv_last_error());
    free(buf);
    if (!f)
        return;
    CHECK(st_count(f) == 4, "count %d", st_count(f));
    CHECK(!strcmp(st_get(f, 0)->name, "b") && !strcmp(st_get(f, 3)->name, "a"), "file order lost");
    int32_t a;
    float b;
    CHECK(st_read_i32(f, "a", &a, 1) == QKV_OK && a == 7, "a = %d (%s)", a, qkv_last_error());
    CHECK(st_read_f32(f, "b", &b, 1) == QKV_OK && b == 1.0f, "b = %g (%s)", b, qkv_last_error());
    CHECK(st_read_f32(f, "z1", &b, 0) == QKV_OK, "zero-size read: %s", qkv_last_error());
    CHECK(st_find(f, "z0") && st_find(f, "z0")->nbytes == 0, "z0");
    st_close(f);
}

/* Every prefix of a valid file and every single-byte change of its header
 * must give a clean status, never a crash (the sanitizer build watches). */
static void test_truncations_and_byte_flips(void)
{
    float w[3] = {1, 2, 3};
    int64_t ids[2] = {4, 5};
    st_write_tensor ts[] = {{"w", ST_F32, 1, {3}, w}, {"ids", ST_I64, 2, {1, 2}, ids}};
    const char *meta[] = {"k", "v"};
    const char *path = tmp_file("trunc");
    CHECK(st_write(path, ts, 2, meta, 1) == QKV_OK, "write: %s", qkv_last_error());
    FILE *fp = fopen(path, "rb");
    unsigned char buf[1024];
    size_t len = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp)
        fclose(fp);
    remove(path);
    CHECK(len > 40 && len < sizeof buf, "file of %zu bytes", len);
    for (size_t k = 0; k < len; k++) {
        st_file *f;
        qkv_status s = st_open_memory(&f, buf, k, "t");
        if (s != QKV_ERR_FORMAT) {
            CHECK(0, "prefix of %zu bytes: status %s", k, qkv_status_name(s));
            st_close(f);
            break;
        }
    }
    static const unsigned char subst[] = {0, '"', '{', '}', '[', ']', ',', ':', '-', '9', 0xff, ' '};
    int accepted = 0, rejected = 0;
    for (size_t k = 0; k < len; k++)
        for (size_t j = 0; j < sizeof subst; j++) {
            unsigned char copy[1024];
            memcpy(copy, buf, len);
            copy[k] = subst[j];
            st_file *f = NULL;
            qkv_status s = st_open_memory(&f, copy, len, "t");
            if (s == QKV_OK) {
                accepted++;
                for (int i = 0; i < st_count(f); i++) {
                    const st_tensor *t = st_get(f, i);
                    CHECK(t->offset + t->nbytes <= len, "accepted tensor '%s' runs past the file", t->name);
                }
                st_close(f);
            } else {
                rejected++;
                CHECK(s == QKV_ERR_FORMAT || s == QKV_ERR_UNSUPPORTED, "byte %zu -> 0x%02x: status %s", k, subst[j],
                      qkv_status_name(s));
                CHECK(f == NULL, "failure left *out set");
            }
        }
    CHECK(rejected > 0 && accepted > 0, "%d accepted, %d rejected", accepted, rejected);
}

/* The reference's verdicts on the headers of scripts/golden/formats.py
 * (ST_CASES): what it refuses we refuse as malformed, what it reads we read
 * or call unsupported (dtypes and ranks qkv has no use for). */
static void test_reference_verdicts(void)
{
    char path[512], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/formats/st_cases.json", test_golden_dir());
    CHECK(qkv_read_file(path, &text, &len) == QKV_OK, "%s", qkv_last_error());
    if (!text)
        return;
    cJSON *cases = cJSON_Parse(text);
    free(text);
    CHECK(cJSON_GetArraySize(cases) >= 20, "%d cases", cJSON_GetArraySize(cases));
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *hex = cJSON_GetObjectItemCaseSensitive(c, "header_hex")->valuestring;
        int data_len = cJSON_GetObjectItemCaseSensitive(c, "data_len")->valueint;
        int accepts = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "reference_accepts"));
        size_t hl = strlen(hex) / 2, flen = 8 + hl + (size_t)data_len;
        unsigned char *buf = calloc(flen, 1);
        for (int i = 0; i < 8; i++)
            buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        for (size_t i = 0; i < hl; i++) {
            unsigned v;
            sscanf(hex + 2 * i, "%2x", &v);
            buf[8 + i] = (unsigned char)v;
        }
        st_file *f;
        qkv_status s = st_open_memory(&f, buf, flen, "case.safetensors");
        if (accepts)
            CHECK(s == QKV_OK || s == QKV_ERR_UNSUPPORTED, "'%s': the reference reads it, qkv says %s (%s)", name,
                  qkv_status_name(s), qkv_last_error());
        else
            CHECK(s == QKV_ERR_FORMAT, "'%s': the reference refuses it (%s), qkv says %s", name,
                  cJSON_GetObjectItemCaseSensitive(c, "reference_error")->valuestring, qkv_status_name(s));
        st_close(f);
        free(buf);
    }
    cJSON_Delete(cases);
}

static void test_writer_rejects_bad_arguments(void)
{
    float w[1] = {0};
    const char *path = tmp_file("args");
    st_write_tensor dup[] = {{"a", ST_F32, 1, {1}, w}, {"a", ST_F32, 1, {1}, w}};
    CHECK(st_write(path, dup, 2, NULL, 0) == QKV_ERR_ARG && strstr(qkv_last_error(), "'a'"), "duplicate: %s",
          qkv_last_error());
    st_write_tensor reserved[] = {{"__metadata__", ST_F32, 1, {1}, w}};
    CHECK(st_write(path, reserved, 1, NULL, 0) == QKV_ERR_ARG, "reserved name accepted");
    st_write_tensor neg[] = {{"n", ST_F32, 1, {-1}, w}};
    CHECK(st_write(path, neg, 1, NULL, 0) == QKV_ERR_ARG && strstr(qkv_last_error(), "'n'"), "negative: %s",
          qkv_last_error());
    st_write_tensor dims[] = {{"d", ST_F32, 9, {1}, w}};
    CHECK(st_write(path, dims, 1, NULL, 0) == QKV_ERR_ARG, "ndim 9 accepted");
    st_write_tensor nodata[] = {{"x", ST_F32, 1, {1}, NULL}};
    CHECK(st_write(path, nodata, 1, NULL, 0) == QKV_ERR_ARG, "NULL data accepted");
    const char *kv[] = {"k", "a", "k", "b"};
    CHECK(st_write(path, NULL, 0, kv, 2) == QKV_ERR_ARG && strstr(qkv_last_error(), "'k'"), "dup metadata: %s",
          qkv_last_error());
    CHECK(access(path, F_OK) != 0, "a failed write left %s behind", path);
    CHECK(st_write("/nonexistent-dir/x.safetensors", NULL, 0, NULL, 0) == QKV_ERR_IO, "write into missing dir");
    st_file *f = (st_file *)1;
    CHECK(st_open(&f, "/nonexistent-dir/x.safetensors") == QKV_ERR_IO && f == NULL, "open missing file");
}

static const test_case cases[] = {
    TEST(test_roundtrip_every_dtype),
    TEST(test_empty_file_has_no_tensors),
    TEST(test_f16_every_value),
    TEST(test_bf16_values),
    TEST(test_read_f32_and_i32),
    TEST(test_reads_reference_writer),
    TEST(test_writer_output_is_stable),
    TEST(test_malformed_sizes),
    TEST(test_malformed_json),
    TEST(test_malformed_fields),
    TEST(test_malformed_layout),
    TEST(test_valid_edge_cases),
    TEST(test_truncations_and_byte_flips),
    TEST(test_reference_verdicts),
    TEST(test_writer_rejects_bad_arguments),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
