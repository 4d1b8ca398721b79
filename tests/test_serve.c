/* qkv serve over real sockets: a server on a free loopback port (in this
 * process, src/serve/), plain HTTP/1.1 requests from socket code below.
 * Model: the Marian fixture tests/golden/marian/opus_tiny. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "qkv.h"
#include "serve/serve.h"
#include "test.h"

static char model_dir[512];

static serve_server *start(serve_options *o)
{
    snprintf(model_dir, sizeof model_dir, "%s/marian/opus_tiny", test_golden_dir());
    serve_model_spec m = {.name = "en-zh", .path = model_dir};
    o->host = "127.0.0.1";
    o->port = 0;
    o->threads = 1;
    o->web_dir = "web";
    serve_server *s = NULL;
    qkv_status st = serve_start(o, &m, 1, &s);
    CHECK(st == QKV_OK, "serve_start: %s", qkv_last_error());
    return s;
}

typedef struct {
    int status;
    char *body;
    size_t len;
} reply;

/* One request on a new connection (Connection: close); status -1 when the
 * connection failed. raw: send these bytes as they are instead. */
static reply http_raw(int port, const char *raw, size_t raw_len)
{
    reply r = {-1, NULL, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return r;
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return r;
    }
    for (size_t off = 0; off < raw_len;) {
        ssize_t n = send(fd, raw + off, raw_len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer (413) and close before the body is sent */
        off += (size_t)n;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (int guard = 0; buf && guard < 1000000; guard++) {
        if (n + 4096 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    if (!buf)
        return r;
    buf[n] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) || !sep) {
        free(buf);
        return r;
    }
    r.status = atoi(buf + 9);
    r.len = n - (size_t)(sep + 4 - buf);
    r.body = malloc(r.len + 1);
    memcpy(r.body, sep + 4, r.len);
    r.body[r.len] = 0;
    free(buf);
    return r;
}

static reply http(int port, const char *method, const char *path, const char *ctype, const char *body,
                  size_t body_len)
{
    size_t cap = body_len + 512;
    char *req = malloc(cap);
    int h = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                     method, path, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", body_len);
    memcpy(req + h, body, body_len);
    reply r = http_raw(port, req, (size_t)h + body_len);
    free(req);
    return r;
}

static reply get(int port, const char *path) { return http(port, "GET", path, NULL, "", 0); }
static reply post_json(int port, const char *path, const char *json)
{
    return http(port, "POST", path, "application/json", json, strlen(json));
}

/* The reply's JSON (NULL with a failure recorded when it is not JSON). */
static cJSON *json_of(const reply *r, const char *what)
{
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    CHECK(j, "%s: the reply is not JSON: %.200s", what, r->body ? r->body : "(none)");
    return j;
}

/* An error reply: the status and {"error": "..."} containing want. */
static void check_error(reply r, int status, const char *want, const char *what)
{
    CHECK(r.status == status, "%s: status %d, expected %d (%.200s)", what, r.status, status, r.body ? r.body : "");
    cJSON *j = r.body ? cJSON_Parse(r.body) : NULL;
    cJSON *e = cJSON_GetObjectItem(j, "error");
    CHECK(cJSON_IsString(e), "%s: no {\"error\": string} in %.200s", what, r.body ? r.body : "");
    if (cJSON_IsString(e) && want)
        CHECK(strstr(e->valuestring, want), "%s: error \"%s\" does not say \"%s\"", what, e->valuestring, want);
    CHECK(cJSON_GetArraySize(j) == 1, "%s: the error object has other fields: %.200s", what, r.body);
    cJSON_Delete(j);
    free(r.body);
}

/* ---- endpoints ------------------------------------------------------------------- */

static void test_serve_endpoints(void)
{
    serve_options o = serve_default_options();
    serve_server *s = start(&o);
    if (!s)
        return;
    int port = serve_port(s);
    CHECK(port > 0, "port %d", port);

    reply r = get(port, "/health");
    CHECK(r.status == 200 && r.body && strstr(r.body, "\"status\":\"ok\""), "/health: %d %s", r.status, r.body);
    free(r.body);

    r = get(port, "/languages");
    cJSON *j = json_of(&r, "/languages");
    CHECK(r.status == 200 && cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2, "/languages: %d %s", r.status, r.body);
    cJSON *en = cJSON_GetArrayItem(j, 0);
    CHECK(en && !strcmp(cJSON_GetObjectItem(en, "code")->valuestring, "en") &&
              !strcmp(cJSON_GetObjectItem(en, "name")->valuestring, "English") &&
              cJSON_GetArraySize(cJSON_GetObjectItem(en, "targets")) == 1,
          "/languages[0]: %s", r.body);
    cJSON_Delete(j);
    free(r.body);

    /* LibreTranslate JSON, string q */
    r = post_json(port, "/translate", "{\"q\":\"Hello, world!\",\"source\":\"en\",\"target\":\"zh\"}");
    j = json_of(&r, "/translate");
    cJSON *tt = cJSON_GetObjectItem(j, "translatedText");
    CHECK(r.status == 200 && cJSON_IsString(tt) && tt->valuestring[0], "/translate: %d %s", r.status, r.body);
    CHECK(!cJSON_GetObjectItem(j, "alternatives"), "alternatives without asking: %s", r.body);
    char *single = cJSON_IsString(tt) ? strdup(tt->valuestring) : NULL;
    cJSON_Delete(j);
    free(r.body);

    /* the same through qkv_translate directly */
    qkv_translator *t = NULL;
    CHECK(qkv_translator_load(model_dir, &t) == QKV_OK, "load: %s", qkv_last_error());
    qkv_translate_options to = qkv_translator_default_options(t);
    const char *hello = "Hello, world!";
    qkv_translation *tr = NULL;
    CHECK(qkv_translate(t, &hello, 1, &to, &tr) == QKV_OK, "translate: %s", qkv_last_error());
    CHECK(single && tr && !strcmp(single, tr[0].hyps[0].text), "server \"%s\" != qkv_translate \"%s\"",
          single ? single : "", tr ? tr[0].hyps[0].text : "");
    qkv_translations_free(tr, 1);
    qkv_translator_free(t);

    /* form fields, list q, alternatives */
    const char *form = "q=Hello%2C+world%21&source=en&target=zh&format=text&api_key=ignored";
    r = http(port, "POST", "/translate", "application/x-www-form-urlencoded", form, strlen(form));
    j = json_of(&r, "/translate form");
    tt = cJSON_GetObjectItem(j, "translatedText");
    CHECK(r.status == 200 && cJSON_IsString(tt) && single && !strcmp(tt->valuestring, single),
          "/translate form: %d %s (JSON gave %s)", r.status, r.body, single ? single : "");
    cJSON_Delete(j);
    free(r.body);
    free(single);

    r = post_json(port, "/translate",
                  "{\"q\":[\"Hello, world!\",\"Open the file\"],\"source\":\"en\",\"target\":\"zh\",\"alternatives\":2}");
    j = json_of(&r, "/translate list");
    tt = cJSON_GetObjectItem(j, "translatedText");
    cJSON *al = cJSON_GetObjectItem(j, "alternatives");
    CHECK(r.status == 200 && cJSON_IsArray(tt) && cJSON_GetArraySize(tt) == 2, "list q: %d %s", r.status, r.body);
    CHECK(cJSON_IsArray(al) && cJSON_GetArraySize(al) == 2 && cJSON_GetArraySize(cJSON_GetArrayItem(al, 0)) == 2,
          "alternatives: 2 lists of 2 expected: %s", r.body);
    cJSON_Delete(j);
    free(r.body);

    r = post_json(port, "/translate", "{\"q\":\"Open the file\",\"source\":\"en\",\"target\":\"zh\",\"alternatives\":3}");
    j = json_of(&r, "/translate alternatives");
    al = cJSON_GetObjectItem(j, "alternatives");
    CHECK(r.status == 200 && cJSON_IsArray(al) && cJSON_GetArraySize(al) == 3 &&
              cJSON_IsString(cJSON_GetArrayItem(al, 0)),
          "alternatives 3 for a string q: %s", r.body);
    cJSON_Delete(j);
    free(r.body);

    /* /v1/translate: n-best with scores, sampling, prefix */
    r = post_json(port, "/v1/translate", "{\"q\":[\"Open the file\"],\"beam_size\":4,\"n_best\":3,\"max_length\":20}");
    j = json_of(&r, "/v1/translate");
    cJSON *hy = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "translations"), 0), "hypotheses");
    CHECK(r.status == 200 && cJSON_GetArraySize(hy) == 3, "n_best 3: %d %s", r.status, r.body);
    double prev = INFINITY;
    cJSON *h;
    cJSON_ArrayForEach(h, hy)
    {
        cJSON *sc = cJSON_GetObjectItem(h, "score");
        CHECK(cJSON_IsNumber(sc) && sc->valuedouble <= prev + 1e-6 && cJSON_IsNumber(cJSON_GetObjectItem(h, "logprob")),
              "hypotheses not sorted by score or without scores: %s", r.body);
        prev = cJSON_IsNumber(sc) ? sc->valuedouble : prev;
    }
    cJSON_Delete(j);
    free(r.body);

    r = post_json(port, "/v1/translate",
                  "{\"q\":\"Open the file\",\"sample\":true,\"num_samples\":2,\"n_best\":2,\"seed\":7,\"top_k\":5}");
    j = json_of(&r, "/v1/translate sample");
    hy = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "translations"), 0), "hypotheses");
    CHECK(r.status == 200 && cJSON_GetArraySize(hy) == 2, "sampling 2: %d %s", r.status, r.body);
    cJSON_Delete(j);
    free(r.body);

    /* /v1/attention: every kind, rows summing to 1, q/k/v of layer 1 head 2 */
    r = post_json(port, "/v1/attention", "{\"q\":\"I love you\",\"layer\":1,\"head\":2}");
    j = json_of(&r, "/v1/attention");
    CHECK(r.status == 200, "/v1/attention: %d %.300s", r.status, r.body);
    int ns = cJSON_GetArraySize(cJSON_GetObjectItem(j, "src_tokens"));
    int nt = cJSON_GetArraySize(cJSON_GetObjectItem(j, "tgt_tokens"));
    CHECK(ns > 1 && nt > 0 && cJSON_GetArraySize(cJSON_GetObjectItem(j, "dec_tokens")) == nt, "tokens %d %d", ns, nt);
    const char *kinds[] = {"encoder_self", "decoder_self", "cross"};
    for (int k = 0; k < 3; k++) {
        cJSON *b = cJSON_GetObjectItem(j, kinds[k]);
        int L = cJSON_GetObjectItem(b, "layers") ? cJSON_GetObjectItem(b, "layers")->valueint : 0;
        int H = cJSON_GetObjectItem(b, "heads") ? cJSON_GetObjectItem(b, "heads")->valueint : 0;
        int nq = k == 0 ? ns : nt, nk = k == 1 ? nt : ns;
        cJSON *w = cJSON_GetObjectItem(b, "weights");
        CHECK(L == 2 && H == 4 && cJSON_GetArraySize(w) == L * H * nq * nk, "%s: %d layers %d heads %d weights",
              kinds[k], L, H, cJSON_GetArraySize(w));
        if (cJSON_GetArraySize(w) != L * H * nq * nk)
            continue;
        double worst = 0;
        cJSON *it = w->child;
        for (int row = 0; row < L * H * nq; row++) {
            double sum = 0;
            for (int c = 0; c < nk; c++, it = it->next) {
                sum += it->valuedouble;
                if (k == 1 && c > row % nq)
                    CHECK(it->valuedouble == 0, "decoder self-attention is not causal at row %d col %d", row, c);
            }
            worst = fmax(worst, fabs(sum - 1));
        }
        CHECK(worst < 1e-4, "%s: a row sums to 1 +- %g", kinds[k], worst);
        /* softmax(q.k / sqrt(D)) of the returned vectors is the returned row */
        cJSON *v = cJSON_GetObjectItem(b, "vectors");
        int D = cJSON_GetObjectItem(b, "head_dim")->valueint;
        cJSON *q = cJSON_GetObjectItem(v, "q"), *kk = cJSON_GetObjectItem(v, "k");
        CHECK(cJSON_GetArraySize(q) == nq * D && cJSON_GetArraySize(kk) == nk * D &&
                  cJSON_GetArraySize(cJSON_GetObjectItem(v, "v")) == nk * D,
              "%s vectors: q %d k %d (D %d)", kinds[k], cJSON_GetArraySize(q), cJSON_GetArraySize(kk), D);
        if (cJSON_GetArraySize(q) != nq * D || cJSON_GetArraySize(kk) != nk * D)
            continue;
        int qi = nq - 1, upto = k == 1 ? qi + 1 : nk;
        double sc[512], mx = -INFINITY, z = 0;
        for (int c = 0; c < upto && c < 512; c++) {
            double d = 0;
            for (int e = 0; e < D; e++)
                d += cJSON_GetArrayItem(q, qi * D + e)->valuedouble * cJSON_GetArrayItem(kk, c * D + e)->valuedouble;
            sc[c] = d / sqrt((double)D);
            mx = fmax(mx, sc[c]);
        }
        for (int c = 0; c < upto; c++)
            z += exp(sc[c] - mx);
        for (int c = 0; c < upto; c++) {
            double want = cJSON_GetArrayItem(w, ((1 * H + 2) * nq + qi) * nk + c)->valuedouble;
            double got = exp(sc[c] - mx) / z;
            CHECK(fabs(got - want) < 1e-3, "%s: softmax(q.k/sqrt(D))[%d] = %g, the model's %g", kinds[k], c, got, want);
        }
    }
    cJSON_Delete(j);
    free(r.body);

    r = post_json(port, "/v1/attention", "{\"q\":\"I love you\",\"target\":\"我爱你\"}");
    j = json_of(&r, "/v1/attention target");
    CHECK(r.status == 200 && cJSON_GetObjectItem(j, "translation") &&
              !strcmp(cJSON_GetObjectItem(j, "translation")->valuestring, "我爱你"),
          "given target: %d %.200s", r.status, r.body);
    cJSON_Delete(j);
    free(r.body);

    r = get(port, "/");
    CHECK(r.status == 200 && r.body && strstr(r.body, "<html"), "/: %d %.100s", r.status, r.body);
    free(r.body);
    r = get(port, "/app.js");
    CHECK(r.status == 200, "/app.js: %d", r.status);
    free(r.body);

    r = get(port, "/metrics");
    CHECK(r.status == 200 && r.body && strstr(r.body, "qkv_requests_total{code=\"200\"}") &&
              strstr(r.body, "qkv_request_duration_seconds_bucket{le=\"+Inf\"}") &&
              strstr(r.body, "qkv_queue_length 0") && strstr(r.body, "qkv_target_tokens_per_second"),
          "/metrics: %d %.400s", r.status, r.body);
    free(r.body);
    serve_stop(s);
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_serve_errors(void)
{
    serve_options o = serve_default_options();
    o.max_body = 4096;
    o.max_chars = 100;
    o.max_items = 3;
    o.max_alternatives = 2;
    o.timeout_s = 2; /* slow clients are dropped after 2 s idle */
    serve_server *s = start(&o);
    if (!s)
        return;
    int p = serve_port(s);
    check_error(post_json(p, "/translate", "{\"source\":\"en\",\"target\":\"zh\"}"), 400, "missing q", "no q");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"target\":\"zh\"}"), 400, "missing source", "no source");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\"}"), 400, "missing target", "no target");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\",\"target\":\"xx\"}"), 400,
                "xx is not supported", "unknown target");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"zh\",\"target\":\"en\"}"), 400,
                "not available as a target language", "no such pair");
    check_error(post_json(p, "/translate", "{\"q\":\"<b>x</b>\",\"source\":\"en\",\"target\":\"zh\",\"format\":\"html\"}"),
                400, "html format is not supported", "html");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\",\"target\":\"zh\",\"alternatives\":5}"), 400,
                "alternatives", "too many alternatives");
    check_error(post_json(p, "/translate", "{\"q\":[\"a\",\"b\",\"c\",\"d\"],\"source\":\"en\",\"target\":\"zh\"}"), 400,
                "exceeds text limit (3)", "too many items");
    char big[300];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = 0;
    char body[600];
    snprintf(body, sizeof body, "{\"q\":\"%s\",\"source\":\"en\",\"target\":\"zh\"}", big);
    check_error(post_json(p, "/translate", body), 400, "exceeds text limit (100)", "too many characters");
    char *huge = malloc(100000);
    memset(huge, ' ', 100000);
    huge[0] = '{';
    huge[99999] = '}';
    check_error(http(p, "POST", "/translate", "application/json", huge, 100000), 413, "too large", "huge body");
    free(huge);
    check_error(post_json(p, "/translate", "{\"q\":\"x\",,}"), 400, "malformed JSON", "bad JSON");
    check_error(post_json(p, "/translate", "[1,2]"), 400, "must be an object", "JSON array");
    const char bad_utf8[] = "{\"q\":\"\xff\xfe\",\"source\":\"en\",\"target\":\"zh\"}";
    check_error(post_json(p, "/translate", bad_utf8), 400, "UTF-8", "invalid UTF-8");
    check_error(http(p, "POST", "/translate", "text/plain", "q=x", 3), 415, "Unsupported Media Type", "text/plain");
    check_error(http(p, "POST", "/v1/translate", "application/x-www-form-urlencoded", "q=x", 3), 415,
                "application/json", "form to /v1");
    check_error(post_json(p, "/v1/translate", "{\"q\":\"x\",\"model\":\"nope\"}"), 404, "unknown model", "unknown model");
    check_error(post_json(p, "/v1/translate", "{\"q\":\"x\",\"beam\":3}"), 400, "unknown field \"beam\"", "unknown field");
    check_error(post_json(p, "/v1/translate", "{\"q\":\"x\",\"beam_size\":\"3\"}"), 400, "beam_size", "string beam");
    check_error(post_json(p, "/v1/translate", "{\"q\":\"x\",\"top_p\":7}"), 400, "top_p", "top_p out of range");
    check_error(post_json(p, "/v1/attention", "{\"target\":\"x\"}"), 400, "missing q", "attention without q");
    check_error(get(p, "/translate"), 405, "POST", "GET /translate");
    check_error(get(p, "/nothing"), 404, "Not Found", "404");
    const char *form_bad = "q=%zz&source=en&target=zh";
    check_error(http(p, "POST", "/translate", "application/x-www-form-urlencoded", form_bad, strlen(form_bad)), 400,
                "form", "bad form escape");
    /* the server still answers after all that */
    reply r = post_json(p, "/translate", "{\"q\":\"Hello\",\"source\":\"en\",\"target\":\"zh\"}");
    CHECK(r.status == 200, "after bad requests: %d %s", r.status, r.body);
    free(r.body);
    /* a slow client that stops halfway through its body is dropped (no answer), then garbage:
     * neither takes the server down */
    const char *cut = "POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"q\":";
    r = http_raw(p, cut, strlen(cut));
    CHECK(r.status == -1, "a request cut short was answered: %d", r.status);
    free(r.body);
    r = http_raw(p, "\x01\x02garbage\r\n\r\n", 13);
    free(r.body);
    r = get(p, "/health");
    CHECK(r.status == 200, "after garbage: %d", r.status);
    free(r.body);
    serve_stop(s);

    /* api keys configured */
    o = serve_default_options();
    o.api_keys = "k1,k2";
    s = start(&o);
    if (!s)
        return;
    p = serve_port(s);
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\",\"target\":\"zh\"}"), 400,
                "contact the server operator", "no key");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\",\"target\":\"zh\",\"api_key\":\"k3\"}"), 403,
                "Invalid API key", "wrong key");
    r = post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\",\"target\":\"zh\",\"api_key\":\"k2\"}");
    CHECK(r.status == 200, "with key k2: %d %s", r.status, r.body);
    free(r.body);
    serve_stop(s);
}

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
                              "\"suggestions\":false,\"filesTranslation\":false,\"supportedFilesFormat\":[],"
                              "\"language\":{\"source\":{\"code\":\"en\",\"name\":\"English\"},"
                              "\"target\":{\"code\":\"zh\",\"name\":\"Chinese\"}}}"),
          "/frontend/settings: %d %s", r.status, r.body);
    free(r.body);
    check_error(post_json(p, "/frontend/settings", "{}"), 405, "GET", "POST /frontend/settings");

    /* what this server does not do, said as LibreTranslate says it */
    const char *tf = "--" BND "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nHello\r\n"
        PART("source", "en") PART("target", "zh") MP_END;
    check_error(post_multipart(p, "/translate_file", tf, strlen(tf)), 403, "Files translation are disabled",
                "/translate_file");
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

/* ---- queue, batching, concurrency, shutdown -------------------------------------- */

typedef struct {
    int port;
    const char *path, *body;
    reply r;
} client_arg;

static void *client_main(void *p)
{
    client_arg *a = p;
    a->r = post_json(a->port, a->path, a->body);
    return NULL;
}

static int queue_length(int port)
{
    reply r = get(port, "/health");
    cJSON *j = r.body ? cJSON_Parse(r.body) : NULL;
    cJSON *q = cJSON_GetObjectItem(j, "queue");
    int n = cJSON_IsNumber(q) ? q->valueint : -1;
    cJSON_Delete(j);
    free(r.body);
    return n;
}

static int wait_queue(int port, int n)
{
    for (int i = 0; i < 400; i++) { /* at most 20 s */
        if (queue_length(port) == n)
            return 1;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_serve_queue_full_and_batching(void)
{
    serve_options o = serve_default_options();
    o.queue_size = 2;
    o.start_paused = 1;
    serve_server *s = start(&o);
    if (!s)
        return;
    int p = serve_port(s);
    client_arg a[2] = {{p, "/translate", "{\"q\":\"Hello, world!\",\"source\":\"en\",\"target\":\"zh\"}", {0}},
                       {p, "/translate", "{\"q\":\"Open the file\",\"source\":\"en\",\"target\":\"zh\"}", {0}}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, client_main, &a[i]);
    CHECK(wait_queue(p, 2), "the queue never held 2 requests");
    check_error(post_json(p, "/translate", "{\"q\":\"x\",\"source\":\"en\",\"target\":\"zh\"}"), 503, "busy", "queue full");
    serve_resume(s);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(a[i].r.status == 200, "queued request %d: %d %s", i, a[i].r.status, a[i].r.body);
        free(a[i].r.body);
    }
    reply r = get(p, "/metrics");
    CHECK(r.body && strstr(r.body, "qkv_batches_total 1\n") && strstr(r.body, "qkv_sentences_total 2\n") &&
              strstr(r.body, "qkv_requests_total{code=\"503\"} 1"),
          "two queued requests should share one batch: %.1200s", r.body);
    free(r.body);
    serve_stop(s);
}

static void test_serve_concurrent_equals_cli(void)
{
    char path[600], cmd[1400];
    snprintf(path, sizeof path, "%s/marian/sentences.txt", test_golden_dir());
    snprintf(model_dir, sizeof model_dir, "%s/marian/opus_tiny", test_golden_dir());
    snprintf(cmd, sizeof cmd, "./qkv translate -m %s --threads 1 < %s", model_dir, path);
    char *cli = NULL;
    CHECK(test_run(cmd, &cli) == 0 && cli, "'%s' failed", cmd);
    FILE *f = fopen(path, "r");
    CHECK(f, "%s: cannot open", path);
    if (!f || !cli) {
        free(cli);
        if (f)
            fclose(f);
        return;
    }
    char lines[16][512];
    int n = 0;
    while (n < 16 && fgets(lines[n], sizeof lines[n], f)) {
        lines[n][strcspn(lines[n], "\n")] = 0;
        n++;
    }
    fclose(f);
    serve_options o = serve_default_options();
    o.workers = 2;
    serve_server *s = start(&o);
    if (!s) {
        free(cli);
        return;
    }
    client_arg a[16];
    char bodies[16][1200];
    pthread_t th[16];
    for (int i = 0; i < n; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "q", lines[i]);
        char *txt = cJSON_PrintUnformatted(b);
        snprintf(bodies[i], sizeof bodies[i], "%s", txt);
        free(txt);
        cJSON_Delete(b);
        a[i] = (client_arg){serve_port(s), "/v1/translate", bodies[i], {0}};
        pthread_create(&th[i], NULL, client_main, &a[i]);
    }
    char *line = cli;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        cJSON *j = a[i].r.body ? cJSON_Parse(a[i].r.body) : NULL;
        cJSON *t = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "translations"), 0), "text");
        CHECK(a[i].r.status == 200 && cJSON_IsString(t) && !strcmp(t->valuestring, line),
              "line %d: server \"%s\" (%d), qkv translate \"%s\"", i + 1, cJSON_IsString(t) ? t->valuestring : "?",
              a[i].r.status, line);
        cJSON_Delete(j);
        free(a[i].r.body);
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(cli);
    serve_stop(s);
}

static void *stop_main(void *p)
{
    serve_stop(p);
    return NULL;
}

static void test_serve_shutdown_finishes_in_flight(void)
{
    serve_options o = serve_default_options();
    o.start_paused = 1;
    serve_server *s = start(&o);
    if (!s)
        return;
    int p = serve_port(s);
    client_arg a = {p, "/translate", "{\"q\":\"Hello, world!\",\"source\":\"en\",\"target\":\"zh\"}", {0}};
    pthread_t cl, st;
    pthread_create(&cl, NULL, client_main, &a);
    CHECK(wait_queue(p, 1), "the request never reached the queue");
    pthread_create(&st, NULL, stop_main, s); /* stops accepting, waits for the request */
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    reply late = get(p, "/health");
    CHECK(late.status == -1, "a new connection was answered (%d) while stopping", late.status);
    free(late.body);
    serve_resume(s);
    pthread_join(cl, NULL);
    pthread_join(st, NULL);
    CHECK(a.r.status == 200 && a.r.body && strstr(a.r.body, "translatedText"),
          "the in-flight request got %d %s", a.r.status, a.r.body);
    free(a.r.body);
}

static void test_serve_bad_start(void)
{
    serve_options o = serve_default_options();
    serve_model_spec m = {.name = "x", .path = "/nonexistent/model"};
    serve_server *s = NULL;
    CHECK(serve_start(&o, &m, 1, &s) != QKV_OK && !s, "a missing model was accepted");
    CHECK(strstr(qkv_last_error(), "/nonexistent/model"), "the error does not name the model: %s", qkv_last_error());
    o.host = "10.1.2.3.4";
    snprintf(model_dir, sizeof model_dir, "%s/marian/opus_tiny", test_golden_dir());
    m.path = model_dir;
    CHECK(serve_start(&o, &m, 1, &s) != QKV_OK && strstr(qkv_last_error(), "--host"), "bad host: %s",
          qkv_last_error());
    CHECK(test_run("./qkv serve -m x --compute-type int8 2>&1", NULL) != 0, "--compute-type int8 was accepted");
    /* the program: SIGINT after start gives a clean stop, exit 0 */
    char cmd[800];
    snprintf(cmd, sizeof cmd, "timeout --preserve-status -s INT 3 ./qkv serve -m en-zh=%s --port 0 --threads 1 2>&1",
             model_dir);
    char *out = NULL;
    int rc = test_run(cmd, &out);
    CHECK(rc == 0 && out && strstr(out, "listening on http://127.0.0.1:") && strstr(out, "stopped"),
          "qkv serve and SIGINT: exit %d, output %s", rc, out ? out : "");
    free(out);
}

static const test_case cases[] = {
    TEST(test_serve_endpoints),
    TEST(test_serve_errors),
    TEST(test_serve_multipart),
    TEST(test_serve_libretranslate_extras),
    TEST(test_serve_queue_full_and_batching),
    TEST(test_serve_concurrent_equals_cli),
    TEST(test_serve_shutdown_finishes_in_flight),
    TEST(test_serve_bad_start),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
