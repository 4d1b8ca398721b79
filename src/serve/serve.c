/* qkv serve: the HTTP front (libmicrohttpd, a thread per connection), the
 * job queue and its batching workers, request bodies, /health, /metrics,
 * the explorer's files, start and stop; the endpoints of the two APIs are in
 * libretranslate.c and api_v1.c (internal.h). See serve.h. */
#include "base/strbuf.h"
#include "serve/form.h"
#include "serve/internal.h"
#include "serve/serve.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <strings.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/status.h"
#include "text/utf8.h"

/* ---- small utilities ----------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Code points of valid UTF-8 text (LibreTranslate counts characters). */
size_t srv_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* ---- jobs and the queue ----------------------------------------------------- */

static const double bucket_le[N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

/* Whether b may share a's batch: same model and the same options, field by
 * field (a new field of qkv_translate_options must be added here; until
 * then such jobs are still correct only if it does not matter). Sampling
 * jobs are never shared: a sample must not depend on its batch. */
static int can_share(const job *a, const job *b)
{
    if (a->kind != JOB_TRANSLATE || b->kind != JOB_TRANSLATE || a->model != b->model)
        return 0;
    const qkv_translate_options *x = &a->opt, *y = &b->opt;
    if (x->sample || y->sample)
        return 0;
    const char *px = x->target_prefix ? x->target_prefix : "", *py = y->target_prefix ? y->target_prefix : "";
    if (strcmp(px, py))
        return 0;
    if (x->n_bad_word_ids != y->n_bad_word_ids ||
        (x->n_bad_word_ids && memcmp(x->bad_word_ids, y->bad_word_ids, sizeof(int) * (size_t)x->n_bad_word_ids)))
        return 0;
    return x->beam_size == y->beam_size && x->n_best == y->n_best && x->length_penalty_kind == y->length_penalty_kind &&
           x->length_penalty == y->length_penalty && x->early_stopping == y->early_stopping &&
           x->max_length == y->max_length && x->max_length_ratio == y->max_length_ratio &&
           x->max_length_offset == y->max_length_offset && x->min_length == y->min_length &&
           x->no_repeat_ngram_size == y->no_repeat_ngram_size && x->repetition_penalty == y->repetition_penalty &&
           x->forced_eos == y->forced_eos && x->temperature == y->temperature && x->top_k == y->top_k &&
           x->top_p == y->top_p && x->seed == y->seed && x->num_samples == y->num_samples &&
           x->batch_size == y->batch_size && x->attention == y->attention &&
           !strcmp(x->compute_type ? x->compute_type : "", y->compute_type ? y->compute_type : "");
}

static void job_finish(serve_server *s, job *j, qkv_status st)
{
    j->st = st;
    if (st != QKV_OK)
        snprintf(j->err, sizeof j->err, "%s", qkv_last_error());
    j->done = 1;
    pthread_cond_signal(&j->cond);
}

static void run_translate(serve_server *s, job **jobs, int nj)
{
    int total = 0;
    for (int i = 0; i < nj; i++)
        total += jobs[i]->n;
    const char **texts = malloc((size_t)(total > 0 ? total : 1) * sizeof(char *));
    qkv_translation *res = NULL;
    qkv_status st = QKV_OK;
    if (!texts)
        st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    int k = 0;
    for (int i = 0; texts && i < nj; i++)
        for (int j = 0; j < jobs[i]->n; j++)
            texts[k++] = jobs[i]->texts[j];
    double t0 = now_s();
    if (st == QKV_OK)
        st = qkv_translate(s->models[jobs[0]->model].t, texts, total, &jobs[0]->opt, &res);
    double dt = now_s() - t0;
    long ntok = 0;
    for (int i = 0; st == QKV_OK && i < total; i++)
        for (int h = 0; h < res[i].n_hyps && h < 1; h++)
            ntok += res[i].hyps[h].n_ids + res[i].hyps[h].ended;
    pthread_mutex_lock(&s->mu);
    s->busy_s += dt;
    s->batches++;
    s->sentences += total;
    s->tgt_tokens += ntok;
    k = 0;
    for (int i = 0; i < nj; i++) {
        job *j = jobs[i];
        if (st == QKV_OK) {
            j->res = calloc((size_t)(j->n > 0 ? j->n : 1), sizeof(qkv_translation));
            if (j->res) {
                memcpy(j->res, res + k, (size_t)j->n * sizeof(qkv_translation));
                memset(res + k, 0, (size_t)j->n * sizeof(qkv_translation));
            }
            job_finish(s, j, j->res ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "out of memory"));
        } else {
            j->st = st;
            snprintf(j->err, sizeof j->err, "%s", qkv_last_error());
            j->done = 1;
            pthread_cond_signal(&j->cond);
        }
        k += j->n;
    }
    pthread_mutex_unlock(&s->mu);
    if (res)
        qkv_translations_free(res, total);
    free(texts);
}

static void *worker_main(void *arg)
{
    serve_server *s = arg;
    job **batch = NULL;
    int cap = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while ((!s->head || s->paused) && !s->stopping)
            pthread_cond_wait(&s->qcond, &s->mu);
        if (!s->head)
            break;
        job *first = s->head;
        s->head = first->next;
        if (!s->head)
            s->tail = NULL;
        s->queued--;
        if (first->kind == JOB_ATTENTION) {
            pthread_mutex_unlock(&s->mu);
            qkv_attention_map *m = NULL;
            qkv_status st = qkv_translator_attention(s->models[first->model].t, first->texts[0], first->target,
                                                     &first->opt, &m);
            pthread_mutex_lock(&s->mu);
            first->map = m;
            job_finish(s, first, st);
            continue;
        }
        /* gather the queued jobs of the same model and options */
        int n = 0, tokens = first->est_tokens;
        if (cap < 1) {
            job **nb = realloc(batch, 16 * sizeof(job *));
            if (!nb) {
                job_finish(s, first, qkv_fail(QKV_ERR_NOMEM, "out of memory"));
                continue;
            }
            batch = nb;
            cap = 16;
        }
        batch[n++] = first;
        job **pp = &s->head, *prev = NULL;
        while (*pp && tokens < s->o.max_batch_tokens) {
            job *j = *pp;
            if (can_share(first, j) && tokens + j->est_tokens <= s->o.max_batch_tokens) {
                if (n == cap) {
                    job **nb = realloc(batch, (size_t)cap * 2 * sizeof(job *));
                    if (!nb)
                        break;
                    batch = nb;
                    cap *= 2;
                }
                *pp = j->next;
                if (s->tail == j)
                    s->tail = prev;
                s->queued--;
                batch[n++] = j;
                tokens += j->est_tokens;
                continue;
            }
            prev = j;
            pp = &j->next;
        }
        pthread_mutex_unlock(&s->mu);
        run_translate(s, batch, n);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    free(batch);
    return NULL;
}

/* Queues j and waits for its result. Returns 0 when the queue is full. */
static int submit(serve_server *s, job *j)
{
    pthread_cond_init(&j->cond, NULL);
    pthread_mutex_lock(&s->mu);
    if (s->queued >= s->o.queue_size || s->stopping) {
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&j->cond);
        return 0;
    }
    j->next = NULL;
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->queued++;
    pthread_cond_signal(&s->qcond);
    while (!j->done)
        pthread_cond_wait(&j->cond, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&j->cond);
    return 1;
}

/* ---- requests ------------------------------------------------------------------ */


static struct MHD_Response *text_response(const char *body, const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r)
        MHD_add_response_header(r, "Content-Type", ctype);
    return r;
}

enum MHD_Result srv_send_text(struct MHD_Connection *c, request *rq, int status, const char *body, const char *ctype)
{
    struct MHD_Response *r = text_response(body, ctype);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    rq->status = status;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result srv_send_json(struct MHD_Connection *c, request *rq, int status, cJSON *j)
{
    char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!txt)
        return srv_send_text(c, rq, 500, "{\"error\":\"out of memory\"}", "application/json");
    enum MHD_Result r = srv_send_text(c, rq, status, txt, "application/json");
    free(txt);
    return r;
}

enum MHD_Result srv_send_error(struct MHD_Connection *c, request *rq, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    return srv_send_json(c, rq, status, j);
}

/* ---- models and languages -------------------------------------------------- */

const char *srv_lang_name(const char *code)
{
    static const char *const t[][2] = {
        {"en", "English"}, {"zh", "Chinese"},  {"de", "German"},     {"fr", "French"},  {"es", "Spanish"},
        {"it", "Italian"}, {"pt", "Portuguese"}, {"ru", "Russian"}, {"ja", "Japanese"}, {"ko", "Korean"},
        {"ar", "Arabic"},  {"nl", "Dutch"},    {"pl", "Polish"},     {"tr", "Turkish"}, {"uk", "Ukrainian"},
        {"sv", "Swedish"}, {"cs", "Czech"},    {"fi", "Finnish"},    {"hi", "Hindi"},   {"vi", "Vietnamese"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i][0], code))
            return t[i][1];
    return code;
}

int srv_find_model_by_name(const serve_server *s, const char *name)
{
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i].name, name))
            return i;
    return -1;
}

int srv_find_model_by_langs(const serve_server *s, const char *src, const char *tgt)
{
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i].source, src) && !strcmp(s->models[i].target, tgt))
            return i;
    return -1;
}

int srv_lang_known(const serve_server *s, const char *code)
{
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i].source, code) || !strcmp(s->models[i].target, code))
            return 1;
    return 0;
}

/* ---- q: a string or a list of strings --------------------------------------- */


/* Returns NULL or an error message (400). */
const char *srv_read_q(const serve_server *s, cJSON *q, qlist *out, char *err, size_t errn)
{
    memset(out, 0, sizeof *out);
    if (!q || cJSON_IsNull(q) || (cJSON_IsString(q) && !q->valuestring[0]) ||
        (cJSON_IsArray(q) && cJSON_GetArraySize(q) == 0)) {
        snprintf(err, errn, "Invalid request: missing q parameter");
        return err;
    }
    int n = cJSON_IsArray(q) ? cJSON_GetArraySize(q) : 1;
    if (!cJSON_IsArray(q) && !cJSON_IsString(q)) {
        snprintf(err, errn, "Invalid request: q must be a string or a list of strings");
        return err;
    }
    if (cJSON_IsArray(q) && n > s->o.max_items) {
        snprintf(err, errn, "Invalid request: request (%d) exceeds text limit (%d)", n, s->o.max_items);
        return err;
    }
    out->texts = calloc((size_t)n, sizeof(char *));
    if (!out->texts) {
        snprintf(err, errn, "out of memory");
        return err;
    }
    out->n = n;
    out->is_list = cJSON_IsArray(q);
    size_t chars = 0;
    for (int i = 0; i < n; i++) {
        cJSON *it = out->is_list ? cJSON_GetArrayItem(q, i) : q;
        if (!cJSON_IsString(it)) {
            snprintf(err, errn, "Invalid request: q[%d] is not a string", i);
            return err;
        }
        out->texts[i] = it->valuestring;
        chars += srv_utf8_chars(it->valuestring);
    }
    if ((long)chars > s->o.max_chars) {
        snprintf(err, errn, "Invalid request: request (%zu) exceeds text limit (%d)", chars, s->o.max_chars);
        return err;
    }
    return NULL;
}

int srv_est_tokens(const qlist *q)
{
    long t = 0;
    for (int i = 0; i < q->n; i++)
        t += (long)strlen(q->texts[i]) / 4 + 2;
    return t > 1000000 ? 1000000 : (int)t;
}

/* Runs a translation job; on failure sends the error and returns 0. */
int srv_run_job(struct MHD_Connection *c, request *rq, serve_server *s, job *j, enum MHD_Result *ret)
{
    if (!submit(s, j)) {
        *ret = srv_send_error(c, rq, 503, "server busy: the queue holds %d requests; try again later", s->o.queue_size);
        return 0;
    }
    if (j->st != QKV_OK) {
        int code = j->st == QKV_ERR_ARG || j->st == QKV_ERR_CONFIG ? 400 : 500;
        *ret = srv_send_error(c, rq, code, "%s%s", code == 500 ? "Cannot translate text: " : "", j->err);
        return 0;
    }
    return 1;
}

/* ---- GET /health, /metrics, static files ----------------------------------------- */

static enum MHD_Result handle_health(struct MHD_Connection *c, request *rq, serve_server *s)
{
    cJSON *o = cJSON_CreateObject(), *ms = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "version", QKV_VERSION_STRING);
    for (int i = 0; i < s->n_models; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", s->models[i].name);
        cJSON_AddStringToObject(m, "source", s->models[i].source);
        cJSON_AddStringToObject(m, "target", s->models[i].target);
        cJSON_AddItemToArray(ms, m);
    }
    cJSON_AddItemToObject(o, "models", ms);
    pthread_mutex_lock(&s->mu);
    cJSON_AddNumberToObject(o, "queue", s->queued);
    pthread_mutex_unlock(&s->mu);
    return srv_send_json(c, rq, 200, o);
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c, request *rq, serve_server *s)
{
    sbuf b = {0};
    pthread_mutex_lock(&s->mu);
    sb_printf(&b, "# HELP qkv_requests_total HTTP requests answered, by status code.\n"
                  "# TYPE qkv_requests_total counter\n");
    for (int i = 100; i < 600; i++)
        if (s->status_count[i])
            sb_printf(&b, "qkv_requests_total{code=\"%d\"} %ld\n", i, s->status_count[i]);
    sb_printf(&b, "# HELP qkv_request_duration_seconds Time from the request's first byte to its answer.\n"
                  "# TYPE qkv_request_duration_seconds histogram\n");
    long cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += s->buckets[i];
        sb_printf(&b, "qkv_request_duration_seconds_bucket{le=\"%g\"} %ld\n", bucket_le[i], cum);
    }
    cum += s->buckets[N_BUCKETS];
    sb_printf(&b, "qkv_request_duration_seconds_bucket{le=\"+Inf\"} %ld\n", cum);
    sb_printf(&b, "qkv_request_duration_seconds_sum %.6f\nqkv_request_duration_seconds_count %ld\n", s->latency_sum,
              s->latency_n);
    sb_printf(&b, "# HELP qkv_queue_length Jobs waiting for a worker.\n# TYPE qkv_queue_length gauge\n"
                  "qkv_queue_length %d\n",
              s->queued);
    sb_printf(&b, "# HELP qkv_target_tokens_total Target tokens generated (best hypotheses, EOS included).\n"
                  "# TYPE qkv_target_tokens_total counter\nqkv_target_tokens_total %ld\n",
              s->tgt_tokens);
    sb_printf(&b, "# HELP qkv_sentences_total Sentences translated.\n# TYPE qkv_sentences_total counter\n"
                  "qkv_sentences_total %ld\n",
              s->sentences);
    sb_printf(&b, "# HELP qkv_batches_total Translation calls (each one shared batch).\n"
                  "# TYPE qkv_batches_total counter\nqkv_batches_total %ld\n",
              s->batches);
    sb_printf(&b, "# HELP qkv_translate_seconds_total Worker time inside qkv_translate.\n"
                  "# TYPE qkv_translate_seconds_total counter\nqkv_translate_seconds_total %.6f\n",
              s->busy_s);
    sb_printf(&b, "# HELP qkv_target_tokens_per_second Target tokens per second of worker time.\n"
                  "# TYPE qkv_target_tokens_per_second gauge\nqkv_target_tokens_per_second %.3f\n",
              s->busy_s > 0 ? s->tgt_tokens / s->busy_s : 0.0);
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result r = b.oom ? srv_send_error(c, rq, 500, "out of memory")
                              : srv_send_text(c, rq, 200, b.p, "text/plain; version=0.0.4; charset=utf-8");
    free(b.p);
    return r;
}

static enum MHD_Result handle_static(struct MHD_Connection *c, request *rq, serve_server *s, const char *url)
{
    static const char *const files[][3] = {
        {"/", "index.html", "text/html; charset=utf-8"},
        {"/index.html", "index.html", "text/html; charset=utf-8"},
        {"/app.js", "app.js", "text/javascript; charset=utf-8"},
        {"/style.css", "style.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (strcmp(url, files[i][0]))
            continue;
        if (!s->o.web_dir)
            return srv_send_error(c, rq, 404, "the explorer is not installed (no web directory)");
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", s->o.web_dir, files[i][1]);
        FILE *f = fopen(path, "rb");
        if (!f)
            return srv_send_error(c, rq, 404, "%s: %s", path, strerror(errno));
        sbuf b = {0};
        char tmp[8192];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
            sb_add(&b, tmp, n);
        fclose(f);
        enum MHD_Result r = b.oom || !b.p ? srv_send_error(c, rq, 500, "%s: could not be read", path)
                                          : srv_send_text(c, rq, 200, b.p, files[i][2]);
        free(b.p);
        return r;
    }
    return srv_send_error(c, rq, 404, "Not Found: %s", url);
}

/* ---- dispatch ----------------------------------------------------------------------- */

typedef struct {
    cJSON *o;
    int bad;
} arg_sink;

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    arg_sink *a = cls;
    const char *v = value ? value : "";
    if (utf8_count_invalid(key, strlen(key)) || utf8_count_invalid(v, strlen(v)))
        a->bad = 1;
    else if (*key && !cJSON_GetObjectItemCaseSensitive(a->o, key))
        cJSON_AddStringToObject(a->o, key, v);
    return MHD_YES;
}

/* The fields of a POST: the JSON body's object, or where forms are
 * accepted (forms) the query string's fields and then the form body's
 * (urlencoded or multipart; as werkzeug's request.values, the query string
 * wins). An empty body without a Content-Type gives the query string's
 * alone. NULL when an error was sent (*ret); *is_form tells which kind. */
static cJSON *read_fields(struct MHD_Connection *c, request *rq, serve_server *s, int forms, int *is_form,
                          enum MHD_Result *ret)
{
    char err[600], boundary[FORM_BOUNDARY_MAX + 1];
    form_kind k;
    int http = 400;
    const char *msg = form_content_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"), &k,
                                        boundary, &http, err, sizeof err);
    const char *body = rq->body ? rq->body : "";
    *is_form = 0;
    if (rq->too_big) {
        *ret = srv_send_error(c, rq, 413, "Request body too large: more than %d bytes", s->o.max_body);
        return NULL;
    }
    if (k != FORM_JSON && (!forms || (rq->n > 0 && (k == FORM_NONE || k == FORM_OTHER)))) {
        *ret = srv_send_error(c, rq, 415,
                          forms ? "Unsupported Media Type: send application/json, application/x-www-form-urlencoded "
                                  "or multipart/form-data"
                                : "Unsupported Media Type: send application/json");
        return NULL;
    }
    if (msg) {
        *ret = srv_send_error(c, rq, http, "%s", msg);
        return NULL;
    }
    if (k == FORM_JSON) {
        if (utf8_count_invalid(body, rq->n) || strlen(body) != rq->n) {
            *ret = srv_send_error(c, rq, 400, "Invalid request: the body is not valid UTF-8 text");
            return NULL;
        }
        const char *end = NULL;
        cJSON *in = cJSON_ParseWithLengthOpts(body, rq->n, &end, 0);
        if (!in) {
            *ret = srv_send_error(c, rq, 400, "Invalid request: malformed JSON near byte %ld",
                                  end ? (long)(end - body) : 0L);
            return NULL;
        }
        if (!cJSON_IsObject(in)) {
            cJSON_Delete(in);
            *ret = srv_send_error(c, rq, 400, "Invalid request: the JSON body must be an object");
            return NULL;
        }
        return in;
    }
    arg_sink a = {cJSON_CreateObject(), 0};
    if (!a.o) {
        *ret = srv_send_error(c, rq, 500, "out of memory");
        return NULL;
    }
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_query_arg, &a);
    const char *e = a.bad ? "Invalid request: a query string field is not UTF-8 text" : NULL;
    if (!e && k == FORM_URLENCODED)
        e = form_parse_urlencoded(a.o, body, rq->n, err, sizeof err);
    else if (!e && k == FORM_MULTIPART)
        e = form_parse_multipart(a.o, rq->files, 4, &rq->n_files, body, rq->n, boundary, err, sizeof err);
    if (e) {
        cJSON_Delete(a.o);
        *ret = srv_send_error(c, rq, 400, "%s", e);
        return NULL;
    }
    *is_form = 1;
    return a.o;
}

static enum MHD_Result dispatch_post(struct MHD_Connection *c, request *rq, serve_server *s, const char *url)
{
    int lt = !strcmp(url, "/translate"), det = !strcmp(url, "/detect"), tf = !strcmp(url, "/translate_file");
    int v1t = !strcmp(url, "/v1/translate"), v1a = !strcmp(url, "/v1/attention");
    if (!strcmp(url, "/suggest"))
        return srv_send_error(c, rq, 403, "Suggestions are disabled on this server.");
    if (!lt && !det && !tf && !v1t && !v1a)
        return !strcmp(url, "/languages") || !strcmp(url, "/health") || !strcmp(url, "/metrics") ||
                       !strcmp(url, "/frontend/settings")
                   ? srv_send_error(c, rq, 405, "Method Not Allowed: use GET for %s", url)
                   : srv_send_error(c, rq, 404, "Not Found: %s", url);
    enum MHD_Result r;
    int is_form;
    cJSON *in = read_fields(c, rq, s, lt || det || tf, &is_form, &r);
    if (!in)
        return r;
    r = lt    ? srv_lt_translate(c, rq, s, in, is_form)
        : det ? srv_lt_detect(c, rq, s, in)
        : tf  ? srv_lt_translate_file(c, rq, s, in)
        : v1t ? srv_v1_translate(c, rq, s, in)
              : srv_v1_attention(c, rq, s, in);
    cJSON_Delete(in);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    serve_server *s = cls;
    request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        rq->t0 = now_s();
        snprintf(rq->method, sizeof rq->method, "%s", method);
        snprintf(rq->url, sizeof rq->url, "%s", url);
        *con_cls = rq;
        pthread_mutex_lock(&s->mu);
        s->in_flight++;
        pthread_mutex_unlock(&s->mu);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoll(cl, NULL, 10) > s->o.max_body) {
            rq->too_big = 1;
            return srv_send_error(c, rq, 413, "Request body too large: %s bytes, the limit is %d", cl, s->o.max_body);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rq->too_big) {
            if (rq->n + *upload_size > (size_t)s->o.max_body)
                rq->too_big = 1;
            else {
                if (rq->n + *upload_size + 1 > rq->cap) {
                    size_t cap = rq->cap ? rq->cap : 4096;
                    while (cap < rq->n + *upload_size + 1)
                        cap *= 2;
                    char *nb = realloc(rq->body, cap);
                    if (!nb)
                        return MHD_NO;
                    rq->body = nb;
                    rq->cap = cap;
                }
                memcpy(rq->body + rq->n, upload, *upload_size);
                rq->n += *upload_size;
                rq->body[rq->n] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->status) /* answered already (413 at the headers) */
        return MHD_YES;
    if (!strcmp(method, "OPTIONS")) {
        struct MHD_Response *r = text_response("", "text/plain");
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type"); /* as LibreTranslate */
        rq->status = 204;
        enum MHD_Result ret = MHD_queue_response(c, 204, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strcmp(method, "POST"))
        return dispatch_post(c, rq, s, url);
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return srv_send_error(c, rq, 405, "Method Not Allowed: %s", method);
    if (!strcmp(url, "/languages"))
        return srv_lt_languages(c, rq, s);
    if (!strcmp(url, "/health"))
        return handle_health(c, rq, s);
    if (!strcmp(url, "/metrics"))
        return handle_metrics(c, rq, s);
    if (!strcmp(url, "/frontend/settings"))
        return srv_lt_settings(c, rq, s);
    if (!strncmp(url, "/download_file/", 15))
        return srv_lt_download(c, rq, s, url + 15);
    if (!strcmp(url, "/translate") || !strcmp(url, "/v1/translate") || !strcmp(url, "/v1/attention") ||
        !strcmp(url, "/detect") || !strcmp(url, "/translate_file") || !strcmp(url, "/suggest"))
        return srv_send_error(c, rq, 405, "Method Not Allowed: use POST for %s", url);
    return handle_static(c, rq, s, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    serve_server *s = cls;
    request *rq = *con_cls;
    if (!rq)
        return;
    double dt = now_s() - rq->t0;
    pthread_mutex_lock(&s->mu);
    int st = rq->status;
    if (st >= 100 && st < 600)
        s->status_count[st]++;
    int b = 0;
    while (b < N_BUCKETS && dt > bucket_le[b])
        b++;
    s->buckets[b]++;
    s->latency_sum += dt;
    s->latency_n++;
    s->in_flight--;
    if (s->o.log) {
        time_t now = time(NULL);
        struct tm tm;
        char ts[32];
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(s->o.log, "%s %s %s %d %zu %.1fms%s\n", ts, rq->method, rq->url, st, rq->n, dt * 1e3,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
        fflush(s->o.log);
    }
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* ---- start and stop ------------------------------------------------------------------ */

serve_options serve_default_options(void)
{
    return (serve_options){.host = "127.0.0.1",
                           .port = 8080,
                           .threads = 0,
                           .workers = 1,
                           .max_batch_tokens = 2048,
                           .max_body = 1 << 20,
                           .max_chars = 5000,
                           .max_items = 64,
                           .max_alternatives = 8,
                           .queue_size = 256,
                           .timeout_s = 30,
                           .max_connections = 512,
                           .web_dir = NULL,
                           .api_keys = NULL,
                           .log = NULL};
}

/* "en-zh" (or a name ending in "-en-zh", as opus-mt-en-zh) -> codes. */
static int langs_from_name(const char *name, char *src, char *tgt)
{
    size_t n = strlen(name);
    const char *dash = NULL;
    for (size_t i = n; i > 0; i--)
        if (name[i - 1] == '-') {
            dash = name + i - 1;
            break;
        }
    if (!dash || dash == name)
        return 0;
    const char *t = dash + 1, *sb = dash;
    while (sb > name && sb[-1] != '-' && sb[-1] != '/' && sb[-1] != '_')
        sb--;
    size_t sl = (size_t)(dash - sb), tl = strlen(t);
    if (sl < 2 || sl > 3 || tl < 2 || tl > 3)
        return 0;
    for (size_t i = 0; i < sl; i++)
        if (!islower((unsigned char)sb[i]))
            return 0;
    for (size_t i = 0; i < tl; i++)
        if (!islower((unsigned char)t[i]))
            return 0;
    memcpy(src, sb, sl);
    src[sl] = 0;
    memcpy(tgt, t, tl + 1);
    return 1;
}

void serve_stop(serve_server *s)
{
    if (!s)
        return;
    if (s->d) {
        MHD_socket ls = MHD_quiesce_daemon(s->d); /* no new connections: the socket is ours to close */
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
        /* in-flight requests finish (bounded wait) */
        pthread_mutex_lock(&s->mu);
        double t_end = now_s() + 60;
        while (s->in_flight > 0 && now_s() < t_end) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->idle, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
        MHD_stop_daemon(s->d);
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    for (int i = 0; i < s->n_models; i++) {
        qkv_translator_free(s->models[i].t);
        qkv_context_free(s->models[i].ctx);
        free(s->models[i].name);
        free(s->models[i].source);
        free(s->models[i].target);
    }
    srv_files_free(s);
    free(s->models);
    free(s->workers);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->qcond);
    pthread_cond_destroy(&s->idle);
    free(s);
}

qkv_status serve_start(const serve_options *o, const serve_model_spec *models, int n_models, serve_server **out)
{
    *out = NULL;
    if (n_models < 1)
        return qkv_fail(QKV_ERR_ARG, "serve: no model (-m MODEL)");
    if (o->workers < 1 || o->workers > 64)
        return qkv_fail(QKV_ERR_CONFIG, "serve: --workers %d: 1 to 64 expected", o->workers);
    if (o->port < 0 || o->port > 65535)
        return qkv_fail(QKV_ERR_CONFIG, "serve: --port %d: 0 to 65535 expected", o->port);
    if (o->max_batch_tokens < 1 || o->queue_size < 1 || o->max_body < 1 || o->max_chars < 1 || o->max_items < 1 ||
        o->timeout_s < 1 || o->max_connections < 1)
        return qkv_fail(QKV_ERR_CONFIG, "serve: limits must be positive");
    serve_server *s = calloc(1, sizeof *s);
    if (!s)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->paused = o->start_paused;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->models = calloc((size_t)n_models, sizeof *s->models);
    if (!s->models) {
        serve_stop(s);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n_models; i++) {
        const serve_model_spec *m = &models[i];
        char src[8] = "en", tgt[8] = "zh";
        const char *name = m->name;
        if (!langs_from_name(m->name ? m->name : "", src, tgt) && !langs_from_name(m->path, src, tgt)) {
            strcpy(src, "en");
            strcpy(tgt, "zh");
        }
        if (!name) {
            name = strrchr(m->path, '/') && strrchr(m->path, '/')[1] ? strrchr(m->path, '/') + 1 : m->path;
        }
        for (int k = 0; k < i; k++)
            if (!strcmp(s->models[k].name, name)) {
                serve_stop(s);
                return qkv_fail(QKV_ERR_CONFIG, "serve: two models named \"%s\"", name);
            }
        qkv_translator *t = NULL;
        qkv_context_options co = qkv_context_default_options();
        co.threads = o->threads;
        qkv_status st = qkv_context_new(&co, &s->models[i].ctx);
        if (st == QKV_OK)
            st = qkv_translator_load_ctx(m->path, s->models[i].ctx, &t);
        if (st != QKV_OK) {
            s->n_models = i + 1; /* frees this one's context */
            serve_stop(s);
            return qkv_fail_context(st, "serve: model %s", m->path);
        }
        s->models[i].t = t;
        s->models[i].name = strdup(name);
        s->models[i].source = strdup(m->source ? m->source : src);
        s->models[i].target = strdup(m->target ? m->target : tgt);
        s->n_models = i + 1;
        if (!s->models[i].name || !s->models[i].source || !s->models[i].target) {
            serve_stop(s);
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        }
        if (s->o.log)
            fprintf(s->o.log, "qkv serve: model \"%s\" (%s -> %s) from %s\n", s->models[i].name,
                    s->models[i].source, s->models[i].target, m->path);
    }
    s->workers = calloc((size_t)o->workers, sizeof(pthread_t));
    if (!s->workers) {
        serve_stop(s);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < o->workers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s)) {
            serve_stop(s);
            return qkv_fail(QKV_ERR_NOMEM, "serve: could not start worker %d", i);
        }
        s->n_workers = i + 1;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &addr.sin_addr) != 1) {
        serve_stop(s);
        return qkv_fail(QKV_ERR_CONFIG, "serve: --host %s: an IPv4 address is expected (e.g. 127.0.0.1)", o->host);
    }
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                                MHD_USE_ERROR_LOG,
                            (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)o->timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                            MHD_OPTION_END);
    if (!s->d) {
        serve_stop(s);
        return qkv_fail(QKV_ERR_IO, "serve: could not listen on %s:%d (in use, or not an address of this machine)",
                        o->host, o->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    *out = s;
    return QKV_OK;
}

int serve_port(const serve_server *s) { return s->port; }

void serve_resume(serve_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->paused = 0;
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->mu);
}
