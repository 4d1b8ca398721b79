/* qkv serve over real sockets: a server on a free loopback port (in this
 * process, src/serve/), plain HTTP/1.1 requests (tests/serve_client.h):
 * every endpoint, limits, malformed input, the queue, batching, concurrent
 * clients against qkv translate, shutdown. Form bodies and the rest of
 * LibreTranslate's protocol: tests/test_serve_lt.c. */
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

#include "serve_client.h"

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

/* --compute-type: a server made with int8 answers every line as
 * qkv_translate with compute_type int8 does in this process (the same
 * build: an int8 rounding can flip between builds whose float glue is
 * vectorised differently, so not against ./qkv), and the fixture has lines
 * where int8 and float32 differ, so the type did reach the decoder. */
static void test_serve_compute_type(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/marian/sentences.txt", test_golden_dir());
    snprintf(model_dir, sizeof model_dir, "%s/marian/opus_tiny", test_golden_dir());
    FILE *f = fopen(path, "r");
    CHECK(f, "%s: cannot open", path);
    char lines[24][512];
    const char *ptr[24];
    int n = 0;
    while (f && n < 24 && fgets(lines[n], sizeof lines[n], f)) {
        lines[n][strcspn(lines[n], "\n")] = 0;
        ptr[n] = lines[n];
        n++;
    }
    if (f)
        fclose(f);
    qkv_translator *t = NULL;
    qkv_translation *r8 = NULL, *r32 = NULL;
    CHECK(n == 24 && qkv_translator_load(model_dir, &t) == QKV_OK, "%s", qkv_last_error());
    if (t) {
        qkv_translate_options o8 = qkv_translator_default_options(t), o32 = o8;
        o8.compute_type = "int8";
        CHECK(qkv_translate(t, ptr, n, &o8, &r8) == QKV_OK && qkv_translate(t, ptr, n, &o32, &r32) == QKV_OK, "%s",
              qkv_last_error());
    }
    serve_options o = serve_default_options();
    o.compute_type = "int8";
    serve_server *s = r8 && r32 ? start(&o) : NULL;
    int differs = 0, done = 0;
    for (int i = 0; s && i < n; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "q", lines[i]);
        char *txt = cJSON_PrintUnformatted(b);
        reply r = post_json(serve_port(s), "/v1/translate", txt);
        cJSON *j = json_of(&r, "/v1/translate");
        cJSON *tx = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "translations"), 0), "text");
        const char *want = r8[i].n_hyps ? r8[i].hyps[0].text : "";
        CHECK(r.status == 200 && cJSON_IsString(tx) && !strcmp(tx->valuestring, want),
              "line %d: int8 server \"%s\" (%d), qkv_translate int8 \"%s\"", i + 1,
              cJSON_IsString(tx) ? tx->valuestring : "?", r.status, want);
        differs += r32[i].n_hyps && strcmp(want, r32[i].hyps[0].text) != 0;
        done++;
        cJSON_Delete(j);
        free(r.body);
        free(txt);
        cJSON_Delete(b);
    }
    CHECK(done == 24 && differs > 0, "%d lines compared, %d where int8 and float32 differ: expected 24 and some", done,
          differs);
    if (s)
        serve_stop(s);
    qkv_translations_free(r8, n);
    qkv_translations_free(r32, n);
    qkv_translator_free(t);
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
    TEST(test_serve_queue_full_and_batching),
    TEST(test_serve_concurrent_equals_cli),
    TEST(test_serve_compute_type),
    TEST(test_serve_shutdown_finishes_in_flight),
    TEST(test_serve_bad_start),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
