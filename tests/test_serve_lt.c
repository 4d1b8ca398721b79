/* qkv serve and what LibreTranslate's clients send: multipart/form-data
 * and urlencoded bodies (fields, repeats, files, malformed and too-large
 * bodies, chunked uploads, charsets, the query string), source "auto",
 * POST /detect, GET /frontend/settings, alternatives and API keys as
 * LibreTranslate answers them. Real sockets (tests/serve_client.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_client.h"
#include "test.h"

/* ---- form bodies: multipart/form-data, as LibreTranslate's page and curl -F send ---- */

#define BND "qkvTestBoundary7MA4YWxkTrZu0gW"
#define MP_CTYPE "multipart/form-data; boundary=" BND
#define PART(name, val) "--" BND "\r\nContent-Disposition: form-data; name=\"" name "\"\r\n\r\n" val "\r\n"
#define MP_END "--" BND "--\r\n"

static reply post_multipart(int port, const char *path, const char *body, size_t n)
{
    return http(port, "POST", path, MP_CTYPE, body, n);
}

/* translatedText of a 200 reply (a copy), NULL with a failure recorded otherwise. */
static char *translated(reply r, const char *what)
{
    cJSON *j = r.body ? cJSON_Parse(r.body) : NULL;
    cJSON *tt = cJSON_GetObjectItem(j, "translatedText");
    CHECK(r.status == 200 && cJSON_IsString(tt) && tt->valuestring[0], "%s: %d %.300s", what, r.status,
          r.body ? r.body : "");
    char *t = r.status == 200 && cJSON_IsString(tt) ? strdup(tt->valuestring) : NULL;
    cJSON_Delete(j);
    free(r.body);
    return t;
}

static void check_same(char *got, const char *want, const char *what)
{
    CHECK(got && want && !strcmp(got, want), "%s: \"%s\", the JSON request gave \"%s\"", what, got ? got : "(none)",
          want ? want : "(none)");
    free(got);
}

static void test_serve_multipart(void)
{
    serve_options o = serve_default_options();
    o.max_body = 4096;
    o.max_chars = 100;
    o.max_alternatives = 2;
    serve_server *s = start(&o);
    if (!s)
        return;
    int p = serve_port(s);
    char *hello = translated(
        post_json(p, "/translate", "{\"q\":\"Hello, world!\",\"source\":\"en\",\"target\":\"zh\"}"), "JSON hello");
    char *file = translated(post_json(p, "/translate", "{\"q\":\"Open the file\",\"source\":\"en\",\"target\":\"zh\"}"),
                            "JSON file");

    /* one field: q is read, the next missing field is named */
    const char *one = PART("q", "Hello, world!") MP_END;
    check_error(post_multipart(p, "/translate", one, strlen(one)), 400, "missing source parameter", "multipart q only");

    /* several fields, as the LibreTranslate page's FormData */
    const char *several = PART("q", "Hello, world!") PART("source", "en") PART("target", "zh") PART("format", "text")
        PART("alternatives", "0") PART("api_key", "") PART("secret", "ignored") MP_END;
    check_same(translated(post_multipart(p, "/translate", several, strlen(several)), "multipart several"), hello,
               "multipart several");

    /* alternatives as a form string */
    const char *alts = PART("q", "Open the file") PART("source", "en") PART("target", "zh") PART("alternatives", "2")
        MP_END;
    reply r = post_multipart(p, "/translate", alts, strlen(alts));
    cJSON *j = json_of(&r, "multipart alternatives");
    cJSON *al = cJSON_GetObjectItem(j, "alternatives"), *tt = cJSON_GetObjectItem(j, "translatedText");
    CHECK(r.status == 200 && cJSON_IsString(tt) && file && !strcmp(tt->valuestring, file) && cJSON_IsArray(al) &&
              cJSON_GetArraySize(al) >= 1 && cJSON_GetArraySize(al) <= 2,
          "multipart alternatives=2: %d %s", r.status, r.body);
    for (int i = 0; cJSON_IsArray(al) && i < cJSON_GetArraySize(al); i++) {
        cJSON *x = cJSON_GetArrayItem(al, i);
        CHECK(cJSON_IsString(x) && x->valuestring[0] && cJSON_IsString(tt) && strcmp(x->valuestring, tt->valuestring),
              "alternative %d is empty or the best again: %s", i, r.body);
    }
    cJSON_Delete(j);
    free(r.body);

    /* a repeated q: the first value, a string (werkzeug's MultiDict.get) */
    const char *rep = PART("q", "Hello, world!") PART("q", "Open the file") PART("source", "en") PART("target", "zh")
        MP_END;
    check_same(translated(post_multipart(p, "/translate", rep, strlen(rep)), "repeated q"), hello, "repeated q");

    /* a file part with binary content (NUL, invalid UTF-8, a line that starts like the boundary)
     * is skipped; a file part named q is not q */
    static const char file_head[] = PART("q", "Open the file") "--" BND
        "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n";
    static const char binary[] = "\x00\xff\xfe\r\n--" BND "X not a delimiter\r\n\x00";
    static const char file_tail[] = "\r\n" PART("source", "en") PART("target", "zh") MP_END;
    char buf[2048];
    size_t n = 0;
    memcpy(buf + n, file_head, sizeof file_head - 1), n += sizeof file_head - 1;
    memcpy(buf + n, binary, sizeof binary - 1), n += sizeof binary - 1;
    memcpy(buf + n, file_tail, sizeof file_tail - 1), n += sizeof file_tail - 1;
    check_same(translated(post_multipart(p, "/translate", buf, n), "file part"), file, "binary file part skipped");
    const char *fileq = "--" BND "\r\nContent-Disposition: form-data; name=\"q\"; filename=\"q.txt\"\r\n"
                        "Content-Type: text/plain\r\n\r\nHello\r\n" PART("source", "en") PART("target", "zh") MP_END;
    check_error(post_multipart(p, "/translate", fileq, strlen(fileq)), 400, "missing q", "a file named q");

    /* bare LF line breaks, a preamble, an epilogue, a quoted boundary, transport padding */
    const char *lf = "preamble\n--" BND "  \nContent-Disposition: form-data; name=\"q\"\n\nHello, world!\n--" BND
                     "\ncontent-disposition: FORM-DATA; name=source\n\nen\n--" BND
                     "\nContent-Disposition: form-data; name=\"target\"\n\nzh\n--" BND "--\nepilogue";
    check_same(translated(http(p, "POST", "/translate", "Multipart/Form-Data; charset=UTF-8; boundary=\"" BND "\"", lf,
                               strlen(lf)),
                          "LF multipart"),
               hello, "bare LF, preamble, quoted boundary");

    /* LibreTranslate's line-ending normalisation of form q, seen in the character count:
     * 40 x "ab\r\n" is 160 characters as JSON, 40 x "ab" + 39 "\n" = 119 as a form */
    char q160[200] = "", body[1200];
    for (int i = 0; i < 40; i++)
        strcat(q160, "ab\r\n");
    snprintf(body, sizeof body, PART("q", "%s") PART("source", "en") PART("target", "zh") MP_END, q160);
    check_error(post_multipart(p, "/translate", body, strlen(body)), 400, "request (119) exceeds text limit (100)",
                "normalised form q");

    /* malformed: no boundary parameter, a boundary not in the body, truncated part, headers cut off,
     * no Content-Disposition, a too-large body; then the server still answers */
    check_error(http(p, "POST", "/translate", "multipart/form-data", several, strlen(several)), 400,
                "without a boundary", "no boundary");
    check_error(http(p, "POST", "/translate", "multipart/form-data; boundary=other", several, strlen(several)), 400,
                "no line \"--other\"", "wrong boundary");
    size_t cut = strlen(several) - strlen(MP_END) - 6;
    check_error(post_multipart(p, "/translate", several, cut), 400, "truncated", "truncated body");
    const char *cut_head = "--" BND "\r\nContent-Disposition: form-data; name=\"q\"\r\n";
    check_error(post_multipart(p, "/translate", cut_head, strlen(cut_head)), 400, "cut off", "headers cut off");
    const char *no_end = PART("q", "Hello") PART("source", "en");
    check_error(post_multipart(p, "/translate", no_end, strlen(no_end)), 400, "part 2 (\"source\") is not closed",
                "no closing boundary");
    const char *no_disp = "--" BND "\r\nContent-Type: text/plain\r\n\r\nx\r\n" MP_END;
    check_error(post_multipart(p, "/translate", no_disp, strlen(no_disp)), 400, "Content-Disposition",
                "no Content-Disposition");
    const char *b64 = "--" BND "\r\nContent-Disposition: form-data; name=\"q\"\r\nContent-Transfer-Encoding: "
                      "base64\r\n\r\nSGk=\r\n" MP_END;
    check_error(post_multipart(p, "/translate", b64, strlen(b64)), 400, "base64", "base64 part");
    const char *latin = "--" BND "\r\nContent-Disposition: form-data; name=\"q\"\r\nContent-Type: text/plain; "
                        "charset=iso-8859-1\r\n\r\n\xe9t\xe9\r\n" MP_END;
    check_error(post_multipart(p, "/translate", latin, strlen(latin)), 400, "iso-8859-1", "latin-1 part");
    const char *bad_utf8 = PART("q", "\xff\xfe") PART("source", "en") PART("target", "zh") MP_END;
    check_error(post_multipart(p, "/translate", bad_utf8, strlen(bad_utf8)), 400, "UTF-8", "invalid UTF-8 field");
    char *big = malloc(8000);
    memset(big, 'a', 8000);
    memcpy(big, PART("q", ""), strlen(PART("q", "")) - 2);
    check_error(post_multipart(p, "/translate", big, 8000), 413, "too large", "too-large multipart");
    free(big);
    r = get(p, "/health");
    CHECK(r.status == 200, "after malformed multipart: %d", r.status);
    free(r.body);

    /* the same body sent chunked (Transfer-Encoding: chunked, libmicrohttpd joins the chunks) */
    char raw[4096];
    size_t half = strlen(several) / 2;
    int h = snprintf(raw, sizeof raw,
                     "POST /translate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: " MP_CTYPE
                     "\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
                     half, (int)half, several, strlen(several) - half, several + half);
    check_same(translated(http_raw(p, raw, (size_t)h), "chunked multipart"), hello, "chunked multipart");
    /* chunked past the body limit: no Content-Length to refuse at the headers, 413 all the same */
    char *chunk = malloc(3000);
    memset(chunk, 'a', 3000);
    size_t rn = 0;
    char *big_raw = malloc(8192);
    rn += (size_t)snprintf(big_raw, 8192,
                           "POST /translate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: " MP_CTYPE
                           "\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 2; i++) {
        rn += (size_t)snprintf(big_raw + rn, 8192 - rn, "%x\r\n", 3000);
        memcpy(big_raw + rn, chunk, 3000), rn += 3000;
        memcpy(big_raw + rn, "\r\n", 2), rn += 2;
    }
    memcpy(big_raw + rn, "0\r\n\r\n", 5), rn += 5;
    check_error(http_raw(p, big_raw, rn), 413, "too large", "chunked past the limit");
    free(big_raw);
    free(chunk);

    /* charset parameters; the query string (werkzeug's request.values) */
    const char *jhello = "{\"q\":\"Hello, world!\",\"source\":\"en\",\"target\":\"zh\"}";
    check_same(translated(http(p, "POST", "/translate", "application/json; charset=utf-8", jhello, strlen(jhello)),
                          "JSON charset"),
               hello, "JSON with charset=utf-8");
    check_error(http(p, "POST", "/translate", "application/json; charset=iso-8859-1", "{}", 2), 415,
                "charset iso-8859-1", "JSON latin-1");
    const char *uform = "q=Hello%2C+world%21&source=en";
    check_same(translated(http(p, "POST", "/translate?target=zh", "application/x-www-form-urlencoded; charset=UTF-8",
                               uform, strlen(uform)),
                          "form + query"),
               hello, "urlencoded with charset, target in the query string");
    check_same(translated(http(p, "POST", "/translate?q=Hello%2C%20world%21&source=en&target=zh", NULL, "", 0),
                          "query only"),
               hello, "fields in the query string alone");
    const char *dup = "q=Hello%2C+world%21&q=Open+the+file&source=en&target=zh";
    check_same(translated(http(p, "POST", "/translate", "application/x-www-form-urlencoded", dup, strlen(dup)),
                          "urlencoded repeated q"),
               hello, "urlencoded repeated q: the first");
    check_error(http(p, "POST", "/translate", "application/x-www-form-urlencoded", "q=%FF&source=en&target=zh", 25),
                400, "UTF-8", "urlencoded invalid UTF-8");
    free(hello);
    free(file);
    serve_stop(s);
}

/* ---- LibreTranslate's other endpoints and source "auto" ------------------------------ */

static serve_server *start_models(serve_options *o, const char *const *names, int n)
{
    snprintf(model_dir, sizeof model_dir, "%s/marian/opus_tiny", test_golden_dir());
    serve_model_spec m[4];
    for (int i = 0; i < n; i++)
        m[i] = (serve_model_spec){.name = names[i], .path = model_dir};
    o->port = 0;
    o->threads = 1;
    serve_server *s = NULL;
    CHECK(serve_start(o, m, n, &s) == QKV_OK, "serve_start: %s", qkv_last_error());
    return s;
}

static void test_serve_libretranslate_extras(void)
{
    serve_options o = serve_default_options();
    o.max_alternatives = 2;
    serve_server *s = start(&o);
    if (!s)
        return;
    int p = serve_port(s);
    char *hello = translated(
        post_json(p, "/translate", "{\"q\":\"Hello, world!\",\"source\":\"en\",\"target\":\"zh\"}"), "JSON hello");

    /* source auto with one source language for the target */
    reply r = post_json(p, "/translate", "{\"q\":\"Hello, world!\",\"source\":\"auto\",\"target\":\"zh\"}");
    cJSON *j = json_of(&r, "auto");
    cJSON *tt = cJSON_GetObjectItem(j, "translatedText"), *dl = cJSON_GetObjectItem(j, "detectedLanguage");
    CHECK(r.status == 200 && cJSON_IsString(tt) && hello && !strcmp(tt->valuestring, hello) &&
              cJSON_IsNumber(cJSON_GetObjectItem(dl, "confidence")) &&
              cJSON_GetObjectItem(dl, "confidence")->valuedouble == 100 &&
              cJSON_IsString(cJSON_GetObjectItem(dl, "language")) &&
              !strcmp(cJSON_GetObjectItem(dl, "language")->valuestring, "en") && cJSON_GetArraySize(j) == 2,
          "auto: %d %s", r.status, r.body);
    cJSON_Delete(j);
    free(r.body);
    r = post_json(p, "/translate",
                  "{\"q\":[\"Hello, world!\",\"Open the file\"],\"source\":\"auto\",\"target\":\"zh\"}");
    j = json_of(&r, "auto list");
    dl = cJSON_GetObjectItem(j, "detectedLanguage");
    CHECK(r.status == 200 && cJSON_GetArraySize(dl) == 2 &&
              !strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(dl, 1), "language")->valuestring, "en"),
          "auto list: %d %s", r.status, r.body);
    cJSON_Delete(j);
    free(r.body);
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"auto\",\"target\":\"xx\"}"), 400,
                "xx is not supported", "auto, unknown target");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"auto\",\"target\":\"en\"}"), 400,
                "no loaded model translates into en", "auto into a source language");

    /* alternatives as LibreTranslate reads them */
    r = post_json(p, "/translate",
                  "{\"q\":\"Open the file\",\"source\":\"en\",\"target\":\"zh\",\"alternatives\":\"-1\"}");
    j = json_of(&r, "alternatives -1");
    CHECK(r.status == 200 && !cJSON_GetObjectItem(j, "alternatives"), "alternatives -1 (means 0): %d %s", r.status,
          r.body);
    cJSON_Delete(j);
    free(r.body);
    check_error(
        post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\",\"target\":\"zh\",\"alternatives\":\"two\"}"), 400,
        "alternatives parameter is not a number", "alternatives two");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\",\"target\":\"zh\",\"alternatives\":3}"), 400,
                "alternatives parameter must be <= 2", "alternatives 3 > 2");

    /* /detect: the loaded source language, in LibreTranslate's shape, JSON or form */
    const char *dform = "q=Hello+world";
    r = http(p, "POST", "/detect", "application/x-www-form-urlencoded", dform, strlen(dform));
    CHECK(r.status == 200 && r.body && !strcmp(r.body, "[{\"confidence\":100,\"language\":\"en\"}]"), "/detect: %d %s",
          r.status, r.body);
    free(r.body);
    const char *dmp = PART("q", "Hello world") MP_END;
    r = post_multipart(p, "/detect", dmp, strlen(dmp));
    CHECK(r.status == 200 && r.body && !strcmp(r.body, "[{\"confidence\":100,\"language\":\"en\"}]"),
          "/detect multipart: %d %s", r.status, r.body);
    free(r.body);
    check_error(post_json(p, "/detect", "{}"), 400, "missing q parameter", "/detect without q");
    check_error(get(p, "/detect"), 405, "POST", "GET /detect");

    /* /frontend/settings: every field LibreTranslate's page reads */
    r = get(p, "/frontend/settings");
    CHECK(r.status == 200 && r.body &&
              !strcmp(r.body, "{\"charLimit\":5000,\"frontendTimeout\":500,\"apiKeys\":false,\"keyRequired\":false,"
                              "\"suggestions\":false,\"filesTranslation\":true,\"supportedFilesFormat\":[\".txt\"],"
                              "\"language\":{\"source\":{\"code\":\"en\",\"name\":\"English\"},"
                              "\"target\":{\"code\":\"zh\",\"name\":\"Chinese\"}}}"),
          "/frontend/settings: %d %s", r.status, r.body);
    free(r.body);
    check_error(post_json(p, "/frontend/settings", "{}"), 405, "GET", "POST /frontend/settings");

    /* /translate_file with a .txt file, then its download: lines translated, empty lines and breaks kept */
    char *file = translated(post_json(p, "/translate", "{\"q\":\"Open the file\",\"source\":\"en\",\"target\":\"zh\"}"),
                            "JSON file");
#define FILE_PART(fname, content)                                                                                  \
    "--" BND "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" fname "\"\r\nContent-Type: "           \
    "text/plain\r\n\r\n" content "\r\n"
    const char *tf = FILE_PART("notes ä.txt", "Hello, world!\n\nOpen the file\r\n") PART("source", "auto")
        PART("target", "zh") MP_END;
    r = post_multipart(p, "/translate_file", tf, strlen(tf));
    j = json_of(&r, "/translate_file");
    cJSON *u = cJSON_GetObjectItem(j, "translatedFileUrl");
    const char *path = cJSON_IsString(u) ? strstr(u->valuestring, "/download_file/") : NULL;
    CHECK(r.status == 200 && cJSON_GetArraySize(j) == 1 && path && !strncmp(u->valuestring, "http://127.0.0.1", 16) &&
              strlen(path) == 15 + 32 + 1 + strlen("notes__.txt") && !strcmp(path + 15 + 32, ".notes__.txt"),
          "/translate_file: %d %s", r.status, r.body);
    if (path) {
        reply d = get(p, path);
        char want[512];
        snprintf(want, sizeof want, "%s\n\n%s\r\n", hello ? hello : "", file ? file : "");
        CHECK(d.status == 200 && d.body && !strcmp(d.body, want), "download %s: %d \"%s\", expected \"%s\"", path,
              d.status, d.body, want);
        free(d.body);
    }
    cJSON_Delete(j);
    free(r.body);
    free(file);
    check_error(get(p, "/download_file/00000000000000000000000000000000.a.txt"), 404, "no translated file",
                "download of an unknown file");
    const char *tf_none = PART("source", "en") PART("target", "zh") MP_END;
    check_error(post_multipart(p, "/translate_file", tf_none, strlen(tf_none)), 400, "missing file parameter",
                "/translate_file without a file");
    const char *tf_docx = FILE_PART("a.docx", "PK") PART("source", "en") PART("target", "zh") MP_END;
    check_error(post_multipart(p, "/translate_file", tf_docx, strlen(tf_docx)), 400, "file format not supported",
                "/translate_file .docx");
    const char *tf_empty = FILE_PART("", "Hello") PART("source", "en") PART("target", "zh") MP_END;
    check_error(post_multipart(p, "/translate_file", tf_empty, strlen(tf_empty)), 400, "empty file",
                "/translate_file without a filename");
    const char *tf_bin = FILE_PART("b.txt", "\xff\xfe") PART("source", "en") PART("target", "zh") MP_END;
    check_error(post_multipart(p, "/translate_file", tf_bin, strlen(tf_bin)), 400, "not UTF-8",
                "/translate_file binary");
    const char *tf_nosrc = FILE_PART("c.txt", "Hello") PART("target", "zh") MP_END;
    check_error(post_multipart(p, "/translate_file", tf_nosrc, strlen(tf_nosrc)), 400, "missing source",
                "/translate_file without source");
    char big_file[7000];
    size_t bf = (size_t)snprintf(big_file, sizeof big_file, "--" BND "\r\nContent-Disposition: form-data; "
                                                            "name=\"file\"; filename=\"big.txt\"\r\n\r\n");
    memset(big_file + bf, 'a', 5001);
    bf += 5001;
    bf += (size_t)snprintf(big_file + bf, sizeof big_file - bf, "\r\n" PART("source", "en") PART("target", "zh") MP_END);
    check_error(post_multipart(p, "/translate_file", big_file, bf), 400, "request (5001) exceeds text limit (5000)",
                "/translate_file past the character limit");

    /* what this server does not do, said as LibreTranslate says it */
    check_error(post_json(p, "/suggest", "{\"q\":\"a\",\"s\":\"b\",\"source\":\"en\",\"target\":\"zh\"}"), 403,
                "Suggestions are disabled", "/suggest");
    free(hello);
    serve_stop(s);

    /* two source languages into zh: auto is refused, /detect lists both at confidence 0 */
    const char *names[2] = {"en-zh", "de-zh"};
    o = serve_default_options();
    s = start_models(&o, names, 2);
    if (!s)
        return;
    p = serve_port(s);
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"auto\",\"target\":\"zh\"}"), 400,
                "does no language detection, and 2 source languages (en, de)", "auto with two sources");
    r = post_json(p, "/detect", "{\"q\":\"Hallo\"}");
    CHECK(r.status == 200 && r.body &&
              !strcmp(r.body, "[{\"confidence\":0,\"language\":\"en\"},{\"confidence\":0,\"language\":\"de\"}]"),
          "/detect with two sources: %d %s", r.status, r.body);
    free(r.body);
    r = post_json(p, "/translate", "{\"q\":\"Hallo\",\"source\":\"de\",\"target\":\"zh\"}");
    CHECK(r.status == 200, "de-zh: %d %s", r.status, r.body);
    free(r.body);
    serve_stop(s);

    /* keys: missing is 400 (LibreTranslate's "contact the operator"), wrong is 403 */
    o = serve_default_options();
    o.api_keys = "k1,k2";
    s = start(&o);
    if (!s)
        return;
    p = serve_port(s);
    r = get(p, "/frontend/settings");
    CHECK(r.body && strstr(r.body, "\"apiKeys\":true,\"keyRequired\":true"), "settings with keys: %s", r.body);
    free(r.body);
    check_error(post_json(p, "/detect", "{\"q\":\"x\"}"), 400, "contact the server operator", "/detect without key");
    check_error(post_json(p, "/detect", "{\"q\":\"x\",\"api_key\":\"k3\"}"), 403, "Invalid API key", "/detect k3");
    const char *kmp = PART("q", "Hello") PART("source", "en") PART("target", "zh") PART("api_key", "k1") MP_END;
    r = post_multipart(p, "/translate", kmp, strlen(kmp));
    CHECK(r.status == 200, "multipart with key k1: %d %s", r.status, r.body);
    free(r.body);
    serve_stop(s);
}

static const test_case cases[] = {
    TEST(test_serve_multipart),
    TEST(test_serve_libretranslate_extras),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
