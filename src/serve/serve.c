/* qkv serve: HTTP front (libmicrohttpd, a thread per connection), the job
 * queue and its batching workers, the endpoints. See serve.h. */
#include "base/strbuf.h"
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
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* ---- jobs and the queue ----------------------------------------------------- */

typedef enum { JOB_TRANSLATE = 0, JOB_ATTENTION = 1 } job_kind;

typedef struct job {
    job_kind kind;
    int model;
    qkv_translate_options opt; /* target_prefix owned by the request */
    const char *const *texts;
    int n;
    const char *target; /* attention: given target or NULL */
    int est_tokens;
    /* results */
    qkv_translation *res;
    qkv_attention_map *map;
    qkv_status st;
    char err[512];
    int done;
    pthread_cond_t cond;
    struct job *next;
} job;

typedef struct {
    char *name, *source, *target;
    qkv_context *ctx; /* --threads: one pool per model, shared by the workers */
    qkv_translator *t;
} served_model;

#define N_BUCKETS 12
static const double bucket_le[N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

struct serve_server {
    serve_options o;
    served_model *models;
    int n_models;
    struct MHD_Daemon *d;
    int port;
    pthread_t *workers;
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t qcond, idle;
    job *head, *tail;
    int queued, stopping, in_flight, paused;
    /* metrics (under mu) */
    long status_count[600];
    long buckets[N_BUCKETS + 1];
    double latency_sum;
    long latency_n;
    long tgt_tokens, src_tokens, sentences, batches;
    double busy_s;
};

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

typedef struct {
    char *body;
    size_t n, cap;
    int too_big;
    double t0;
    int status;
    char method[8];
    char url[128];
} request;

static struct MHD_Response *text_response(const char *body, const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r)
        MHD_add_response_header(r, "Content-Type", ctype);
    return r;
}

static enum MHD_Result send_text(struct MHD_Connection *c, request *rq, int status, const char *body,
                                 const char *ctype)
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

static enum MHD_Result send_json(struct MHD_Connection *c, request *rq, int status, cJSON *j)
{
    char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!txt)
        return send_text(c, rq, 500, "{\"error\":\"out of memory\"}", "application/json");
    enum MHD_Result r = send_text(c, rq, status, txt, "application/json");
    free(txt);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, request *rq, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", msg);
    return send_json(c, rq, status, j);
}

/* ---- form and JSON bodies -------------------------------------------------- */

static int hexv(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* application/x-www-form-urlencoded -> a JSON object of strings (the last
 * value of a repeated key wins, as Flask's request.values.get). NULL on a
 * malformed escape. */
static cJSON *parse_form(const char *s, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    size_t i = 0;
    while (o && i < n) {
        size_t e = i;
        while (e < n && s[e] != '&')
            e++;
        char *key = malloc(e - i + 1), *val = malloc(e - i + 1);
        size_t kn = 0, vn = 0;
        int in_val = 0, bad = !key || !val;
        for (size_t k = i; !bad && k < e; k++) {
            int ch = (unsigned char)s[k];
            if (ch == '=' && !in_val) {
                in_val = 1;
                continue;
            }
            if (ch == '+')
                ch = ' ';
            else if (ch == '%') {
                if (k + 2 >= e) {
                    bad = 1;
                    break;
                }
                int a = hexv(s[k + 1]), b = hexv(s[k + 2]);
                if (a < 0 || b < 0) {
                    bad = 1;
                    break;
                }
                ch = a * 16 + b;
                k += 2;
            }
            if (in_val)
                val[vn++] = (char)ch;
            else
                key[kn++] = (char)ch;
        }
        if (!bad && kn > 0) {
            key[kn] = 0;
            val[vn] = 0;
            if (strlen(val) != vn || strlen(key) != kn)
                bad = 1; /* NUL bytes */
            else {
                cJSON_DeleteItemFromObjectCaseSensitive(o, key);
                cJSON_AddStringToObject(o, key, val);
            }
        }
        free(key);
        free(val);
        if (bad) {
            cJSON_Delete(o);
            return NULL;
        }
        i = e + 1;
    }
    return o;
}

typedef enum { BODY_JSON, BODY_FORM, BODY_OTHER } body_kind;

static body_kind content_kind(struct MHD_Connection *c)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (!ct)
        return BODY_OTHER;
    if (!strncasecmp(ct, "application/json", 16))
        return BODY_JSON;
    if (!strncasecmp(ct, "application/x-www-form-urlencoded", 33))
        return BODY_FORM;
    return BODY_OTHER;
}

/* ---- models and languages -------------------------------------------------- */

static const char *lang_name(const char *code)
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

static int find_model_by_name(const serve_server *s, const char *name)
{
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i].name, name))
            return i;
    return -1;
}

static int find_model_by_langs(const serve_server *s, const char *src, const char *tgt)
{
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i].source, src) && !strcmp(s->models[i].target, tgt))
            return i;
    return -1;
}

static int lang_known(const serve_server *s, const char *code)
{
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i].source, code) || !strcmp(s->models[i].target, code))
            return 1;
    return 0;
}

static enum MHD_Result handle_languages(struct MHD_Connection *c, request *rq, serve_server *s)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < s->n_models; i++) {
        const char *codes[2] = {s->models[i].source, s->models[i].target};
        for (int k = 0; k < 2; k++) {
            int seen = 0;
            cJSON *it;
            cJSON_ArrayForEach(it, arr) seen |= !strcmp(cJSON_GetObjectItem(it, "code")->valuestring, codes[k]);
            if (seen)
                continue;
            cJSON *o = cJSON_CreateObject(), *targets = cJSON_CreateArray();
            cJSON_AddStringToObject(o, "code", codes[k]);
            cJSON_AddStringToObject(o, "name", lang_name(codes[k]));
            for (int m = 0; m < s->n_models; m++)
                if (!strcmp(s->models[m].source, codes[k])) {
                    int dup = 0;
                    cJSON *tt;
                    cJSON_ArrayForEach(tt, targets) dup |= !strcmp(tt->valuestring, s->models[m].target);
                    if (!dup)
                        cJSON_AddItemToArray(targets, cJSON_CreateString(s->models[m].target));
                }
            cJSON_AddItemToObject(o, "targets", targets);
            cJSON_AddItemToArray(arr, o);
        }
    }
    return send_json(c, rq, 200, arr);
}

/* ---- q: a string or a list of strings --------------------------------------- */

typedef struct {
    const char **texts;
    int n, is_list;
} qlist;

/* Returns NULL or an error message (400). */
static const char *read_q(const serve_server *s, cJSON *q, qlist *out, char *err, size_t errn)
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
        chars += utf8_chars(it->valuestring);
    }
    if ((long)chars > s->o.max_chars) {
        snprintf(err, errn, "Invalid request: request (%zu) exceeds text limit (%d)", chars, s->o.max_chars);
        return err;
    }
    return NULL;
}

static int est_tokens(const qlist *q)
{
    long t = 0;
    for (int i = 0; i < q->n; i++)
        t += (long)strlen(q->texts[i]) / 4 + 2;
    return t > 1000000 ? 1000000 : (int)t;
}

/* Runs a translation job; on failure sends the error and returns 0. */
static int run_job(struct MHD_Connection *c, request *rq, serve_server *s, job *j, enum MHD_Result *ret)
{
    if (!submit(s, j)) {
        *ret = send_error(c, rq, 503, "server busy: the queue holds %d requests; try again later", s->o.queue_size);
        return 0;
    }
    if (j->st != QKV_OK) {
        int code = j->st == QKV_ERR_ARG || j->st == QKV_ERR_CONFIG ? 400 : 500;
        *ret = send_error(c, rq, code, "%s%s", code == 500 ? "Cannot translate text: " : "", j->err);
        return 0;
    }
    return 1;
}

/* ---- LibreTranslate: POST /translate ----------------------------------------- */

static int key_ok(const serve_server *s, const char *key)
{
    if (!s->o.api_keys)
        return 1;
    if (!key || !*key)
        return 0;
    size_t n = strlen(key);
    for (const char *p = s->o.api_keys; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, key, n))
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static const char *jstr(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static enum MHD_Result handle_lt_translate(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in)
{
    char err[600];
    const char *key = jstr(in, "api_key");
    if (!key_ok(s, key))
        return send_error(c, rq, 403, "Invalid API key");
    qlist q;
    if (read_q(s, cJSON_GetObjectItemCaseSensitive(in, "q"), &q, err, sizeof err)) {
        free(q.texts);
        return send_error(c, rq, 400, "%s", err);
    }
    const char *src = jstr(in, "source"), *tgt = jstr(in, "target"), *fmt = jstr(in, "format");
    enum MHD_Result ret;
    if (!src || !*src) {
        ret = send_error(c, rq, 400, "Invalid request: missing source parameter");
        goto out;
    }
    if (!tgt || !*tgt) {
        ret = send_error(c, rq, 400, "Invalid request: missing target parameter");
        goto out;
    }
    if (!strcmp(src, "auto")) {
        /* no language detection: auto means the source of the one model with this target */
        int found = -1, count = 0;
        for (int i = 0; i < s->n_models; i++)
            if (!strcmp(s->models[i].target, tgt)) {
                found = i;
                count++;
            }
        if (count == 1)
            src = s->models[found].source;
    }
    if (!lang_known(s, src)) {
        ret = send_error(c, rq, 400, "%s is not supported", src);
        goto out;
    }
    if (!lang_known(s, tgt)) {
        ret = send_error(c, rq, 400, "%s is not supported", tgt);
        goto out;
    }
    if (fmt && *fmt && strcmp(fmt, "text")) {
        ret = send_error(c, rq, 400, "%s format is not supported", fmt);
        goto out;
    }
    int alts = 0;
    cJSON *a = cJSON_GetObjectItemCaseSensitive(in, "alternatives");
    if (cJSON_IsNumber(a))
        alts = (int)a->valuedouble;
    else if (cJSON_IsString(a) && *a->valuestring) {
        char *end;
        long v = strtol(a->valuestring, &end, 10);
        if (*end) {
            ret = send_error(c, rq, 400, "Invalid request: alternatives must be an integer");
            goto out;
        }
        alts = (int)v;
    }
    if (alts < 0 || alts > s->o.max_alternatives) {
        ret = send_error(c, rq, 400, "Invalid request: alternatives (%d) must be between 0 and %d", alts,
                         s->o.max_alternatives);
        goto out;
    }
    int m = find_model_by_langs(s, src, tgt);
    if (m < 0) {
        ret = send_error(c, rq, 400, "%s (%s) is not available as a target language from %s (%s)", lang_name(tgt),
                         tgt, lang_name(src), src);
        goto out;
    }
    job j = {0};
    j.kind = JOB_TRANSLATE;
    j.model = m;
    j.opt = qkv_translator_default_options(s->models[m].t);
    j.opt.compute_type = s->o.compute_type;
    if (alts > 0) {
        if (j.opt.beam_size < alts + 1)
            j.opt.beam_size = alts + 1;
        j.opt.n_best = alts + 1;
    }
    j.texts = q.texts;
    j.n = q.n;
    j.est_tokens = est_tokens(&q);
    if (!run_job(c, rq, s, &j, &ret))
        goto out;
    cJSON *o = cJSON_CreateObject(), *tt = q.is_list ? cJSON_CreateArray() : NULL,
          *al = alts > 0 ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < q.n; i++) {
        qkv_translation *r = &j.res[i];
        const char *best = r->n_hyps > 0 ? r->hyps[0].text : "";
        cJSON *alist = alts > 0 ? cJSON_CreateArray() : NULL;
        for (int h = 1; alist && h < r->n_hyps && h <= alts; h++)
            cJSON_AddItemToArray(alist, cJSON_CreateString(r->hyps[h].text));
        if (q.is_list) {
            cJSON_AddItemToArray(tt, cJSON_CreateString(best));
            if (al)
                cJSON_AddItemToArray(al, alist);
        } else {
            cJSON_AddStringToObject(o, "translatedText", best);
            if (al) {
                cJSON_Delete(al);
                al = alist;
            }
        }
    }
    if (tt)
        cJSON_AddItemToObject(o, "translatedText", tt);
    if (al)
        cJSON_AddItemToObject(o, "alternatives", al);
    qkv_translations_free(j.res, j.n);
    ret = send_json(c, rq, 200, o);
out:
    free(q.texts);
    return ret;
}

/* ---- qkv: POST /v1/translate --------------------------------------------------- */

/* Reads the decoding options of a /v1 request into o; NULL or an error. */
static const char *read_options(cJSON *in, qkv_translate_options *o, int **bad, char *err, size_t errn,
                                const char *const *extra, int n_extra)
{
    static const char *const ints[] = {"beam_size", "n_best", "max_length", "max_length_offset", "min_length",
                                       "no_repeat_ngram_size", "forced_eos", "top_k", "num_samples", "batch_size"};
    int *int_dst[] = {&o->beam_size, &o->n_best, &o->max_length, &o->max_length_offset, &o->min_length,
                      &o->no_repeat_ngram_size, &o->forced_eos, &o->top_k, &o->num_samples, &o->batch_size};
    static const char *const floats[] = {"length_penalty", "max_length_ratio", "repetition_penalty", "temperature",
                                         "top_p"};
    float *f_dst[] = {&o->length_penalty, &o->max_length_ratio, &o->repetition_penalty, &o->temperature, &o->top_p};
    cJSON *it;
    cJSON_ArrayForEach(it, in)
    {
        const char *k = it->string;
        int known = 0;
        for (int i = 0; i < n_extra; i++)
            known |= !strcmp(k, extra[i]);
        if (known)
            continue;
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            if (!strcmp(k, ints[i])) {
                if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || fabs(it->valuedouble) > 1e9) {
                    snprintf(err, errn, "field %s: an integer is expected", k);
                    return err;
                }
                *int_dst[i] = (int)it->valuedouble;
                known = 1;
            }
        for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
            if (!strcmp(k, floats[i])) {
                if (!cJSON_IsNumber(it)) {
                    snprintf(err, errn, "field %s: a number is expected", k);
                    return err;
                }
                *f_dst[i] = (float)it->valuedouble;
                known = 1;
            }
        if (known)
            continue;
        if (!strcmp(k, "sample")) {
            if (!cJSON_IsBool(it)) {
                snprintf(err, errn, "field sample: true or false is expected");
                return err;
            }
            o->sample = cJSON_IsTrue(it);
        } else if (!strcmp(k, "seed")) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0) {
                snprintf(err, errn, "field seed: a non-negative integer is expected");
                return err;
            }
            o->seed = (uint64_t)it->valuedouble;
        } else if (!strcmp(k, "prefix")) {
            if (!cJSON_IsString(it)) {
                snprintf(err, errn, "field prefix: a string is expected");
                return err;
            }
            o->target_prefix = it->valuestring;
        } else if (!strcmp(k, "length_penalty_kind")) {
            const char *v = cJSON_IsString(it) ? it->valuestring : "";
            if (!strcmp(v, "power"))
                o->length_penalty_kind = QKV_LENGTH_PENALTY_POWER;
            else if (!strcmp(v, "gnmt"))
                o->length_penalty_kind = QKV_LENGTH_PENALTY_GNMT;
            else {
                snprintf(err, errn, "field length_penalty_kind: \"power\" or \"gnmt\" is expected");
                return err;
            }
        } else if (!strcmp(k, "early_stopping")) {
            const char *v = cJSON_IsString(it) ? it->valuestring : "";
            if (cJSON_IsBool(it))
                o->early_stopping = cJSON_IsTrue(it) ? QKV_EARLY_STOPPING_TRUE : QKV_EARLY_STOPPING_HEURISTIC;
            else if (!strcmp(v, "heuristic"))
                o->early_stopping = QKV_EARLY_STOPPING_HEURISTIC;
            else if (!strcmp(v, "true"))
                o->early_stopping = QKV_EARLY_STOPPING_TRUE;
            else if (!strcmp(v, "never"))
                o->early_stopping = QKV_EARLY_STOPPING_NEVER;
            else {
                snprintf(err, errn, "field early_stopping: \"heuristic\", \"true\" or \"never\" is expected");
                return err;
            }
        } else if (!strcmp(k, "bad_word_ids")) {
            int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : -1;
            if (n < 0 || n > 4096) {
                snprintf(err, errn, "field bad_word_ids: a list of at most 4096 integers is expected");
                return err;
            }
            free(*bad);
            *bad = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
            if (!*bad) {
                snprintf(err, errn, "out of memory");
                return err;
            }
            for (int i = 0; i < n; i++) {
                cJSON *v = cJSON_GetArrayItem(it, i);
                if (!cJSON_IsNumber(v)) {
                    snprintf(err, errn, "field bad_word_ids[%d]: an integer is expected", i);
                    return err;
                }
                (*bad)[i] = (int)v->valuedouble;
            }
            o->bad_word_ids = *bad;
            o->n_bad_word_ids = n;
        } else {
            snprintf(err, errn, "unknown field \"%s\"", k);
            return err;
        }
    }
    if (o->batch_size > 256)
        o->batch_size = 256;
    if (o->num_samples > 64 || o->beam_size > 64) {
        snprintf(err, errn, "field %s: at most 64", o->num_samples > 64 ? "num_samples" : "beam_size");
        return err;
    }
    if (qkv_translate_validate_options(o) != QKV_OK) {
        snprintf(err, errn, "%s", qkv_last_error());
        return err;
    }
    return NULL;
}

static int pick_model(serve_server *s, cJSON *in, char *err, size_t errn)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(in, "model");
    if (!m)
        return 0;
    if (!cJSON_IsString(m)) {
        snprintf(err, errn, "field model: a string is expected");
        return -1;
    }
    int i = find_model_by_name(s, m->valuestring);
    if (i < 0)
        snprintf(err, errn, "unknown model \"%.200s\"", m->valuestring);
    return i;
}

static enum MHD_Result handle_v1_translate(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in)
{
    char err[600];
    int m = pick_model(s, in, err, sizeof err);
    if (m < 0)
        return send_error(c, rq, m == -1 && strstr(err, "unknown") ? 404 : 400, "%s", err);
    qlist q;
    if (read_q(s, cJSON_GetObjectItemCaseSensitive(in, "q"), &q, err, sizeof err)) {
        free(q.texts);
        return send_error(c, rq, 400, "%s", err);
    }
    job j = {0};
    int *bad = NULL;
    enum MHD_Result ret;
    j.opt = qkv_translator_default_options(s->models[m].t);
    j.opt.compute_type = s->o.compute_type;
    static const char *const extra[] = {"q", "model"};
    if (read_options(in, &j.opt, &bad, err, sizeof err, extra, 2)) {
        ret = send_error(c, rq, 400, "%s", err);
        goto out;
    }
    j.kind = JOB_TRANSLATE;
    j.model = m;
    j.texts = q.texts;
    j.n = q.n;
    j.est_tokens = est_tokens(&q) * (j.opt.sample ? j.opt.num_samples : (j.opt.beam_size > 0 ? j.opt.beam_size : 4));
    if (!run_job(c, rq, s, &j, &ret))
        goto out;
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "model", s->models[m].name);
    for (int i = 0; i < q.n; i++) {
        qkv_translation *r = &j.res[i];
        cJSON *t = cJSON_CreateObject(), *hy = cJSON_CreateArray();
        cJSON_AddStringToObject(t, "text", r->n_hyps > 0 ? r->hyps[0].text : "");
        for (int h = 0; h < r->n_hyps; h++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "text", r->hyps[h].text);
            cJSON_AddNumberToObject(x, "score", r->hyps[h].score);
            cJSON_AddNumberToObject(x, "logprob", r->hyps[h].logprob);
            cJSON_AddNumberToObject(x, "tokens", r->hyps[h].n_ids + r->hyps[h].ended);
            cJSON_AddBoolToObject(x, "ended", r->hyps[h].ended);
            cJSON_AddItemToArray(hy, x);
        }
        cJSON_AddItemToObject(t, "hypotheses", hy);
        cJSON_AddNumberToObject(t, "truncated", r->truncated);
        cJSON_AddItemToArray(arr, t);
    }
    cJSON_AddItemToObject(o, "translations", arr);
    qkv_translations_free(j.res, j.n);
    ret = send_json(c, rq, 200, o);
out:
    free(bad);
    free(q.texts);
    return ret;
}

/* ---- qkv: POST /v1/attention ----------------------------------------------------- */

#define ATTENTION_MAX_CHARS 1000

static cJSON *raw_floats(const float *x, size_t n)
{
    sbuf b = {0};
    sb_add(&b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            v = 0;
        sb_printf(&b, i ? ",%.6g" : "%.6g", v);
    }
    sb_add(&b, "]", 1);
    cJSON *r = b.oom ? NULL : cJSON_CreateRaw(b.p);
    free(b.p);
    return r;
}

static cJSON *str_array(char **v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

/* One kind of attention: probabilities per layer and head, and q, k, v of
 * the requested layer/head (-1: none). */
static cJSON *attn_block(const float *p, const float *q, const float *k, const float *v, int L, int H, int nq,
                         int nk, int D, int vl, int vh)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layers", L);
    cJSON_AddNumberToObject(o, "heads", H);
    cJSON_AddNumberToObject(o, "queries", nq);
    cJSON_AddNumberToObject(o, "keys", nk);
    cJSON_AddNumberToObject(o, "head_dim", D);
    cJSON_AddItemToObject(o, "weights", raw_floats(p, (size_t)L * H * nq * nk));
    if (vl >= 0 && vl < L && vh >= 0 && vh < H) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "layer", vl);
        cJSON_AddNumberToObject(x, "head", vh);
        cJSON_AddItemToObject(x, "q", raw_floats(q + ((size_t)vl * H + vh) * nq * D, (size_t)nq * D));
        cJSON_AddItemToObject(x, "k", raw_floats(k + ((size_t)vl * H + vh) * nk * D, (size_t)nk * D));
        cJSON_AddItemToObject(x, "v", raw_floats(v + ((size_t)vl * H + vh) * nk * D, (size_t)nk * D));
        cJSON_AddItemToObject(o, "vectors", x);
    }
    return o;
}

static enum MHD_Result handle_v1_attention(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in)
{
    char err[600];
    int m = pick_model(s, in, err, sizeof err);
    if (m < 0)
        return send_error(c, rq, strstr(err, "unknown") ? 404 : 400, "%s", err);
    cJSON *src = cJSON_GetObjectItemCaseSensitive(in, "q");
    if (!cJSON_IsString(src) || !src->valuestring[0])
        return send_error(c, rq, 400, "Invalid request: missing q parameter (the source sentence, a string)");
    /* every layer and head of three kinds grows with the square of the length: a tighter limit */
    long att_limit = s->o.max_chars < ATTENTION_MAX_CHARS ? s->o.max_chars : ATTENTION_MAX_CHARS;
    if ((long)utf8_chars(src->valuestring) > att_limit)
        return send_error(c, rq, 400, "Invalid request: request (%zu) exceeds text limit (%ld) of /v1/attention",
                          utf8_chars(src->valuestring), att_limit);
    cJSON *tg = cJSON_GetObjectItemCaseSensitive(in, "target");
    if (tg && !cJSON_IsString(tg) && !cJSON_IsNull(tg))
        return send_error(c, rq, 400, "field target: a string is expected");
    int vl = 0, vh = 0;
    cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(in, "layer")) && cJSON_IsNumber(x))
        vl = (int)x->valuedouble;
    if ((x = cJSON_GetObjectItemCaseSensitive(in, "head")) && cJSON_IsNumber(x))
        vh = (int)x->valuedouble;
    job j = {0};
    int *bad = NULL;
    enum MHD_Result ret;
    j.opt = qkv_translator_default_options(s->models[m].t);
    j.opt.compute_type = s->o.compute_type;
    static const char *const extra[] = {"q", "model", "target", "layer", "head"};
    if (read_options(in, &j.opt, &bad, err, sizeof err, extra, 5)) {
        ret = send_error(c, rq, 400, "%s", err);
        goto out;
    }
    j.kind = JOB_ATTENTION;
    j.model = m;
    const char *texts[1] = {src->valuestring};
    j.texts = texts;
    j.n = 1;
    j.target = cJSON_IsString(tg) ? tg->valuestring : NULL;
    if (!run_job(c, rq, s, &j, &ret))
        goto out;
    qkv_attention_map *a = j.map;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", s->models[m].name);
    cJSON_AddStringToObject(o, "translation", a->text);
    cJSON_AddItemToObject(o, "src_tokens", str_array(a->src_tokens, a->n_src));
    cJSON_AddItemToObject(o, "dec_tokens", str_array(a->dec_tokens, a->n_tgt));
    cJSON_AddItemToObject(o, "tgt_tokens", str_array(a->tgt_tokens, a->n_tgt));
    cJSON_AddItemToObject(o, "encoder_self", attn_block(a->enc_self, a->enc_q, a->enc_k, a->enc_v, a->enc_layers,
                                                        a->enc_heads, a->n_src, a->n_src, a->enc_head_dim, vl, vh));
    cJSON_AddItemToObject(o, "decoder_self", attn_block(a->dec_self, a->dec_q, a->dec_k, a->dec_v, a->dec_layers,
                                                        a->dec_heads, a->n_tgt, a->n_tgt, a->dec_head_dim, vl, vh));
    cJSON_AddItemToObject(o, "cross", attn_block(a->cross, a->cross_q, a->cross_k, a->cross_v, a->dec_layers,
                                                 a->dec_heads, a->n_tgt, a->n_src, a->dec_head_dim, vl, vh));
    qkv_attention_map_free(a);
    ret = send_json(c, rq, 200, o);
out:
    free(bad);
    return ret;
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
    return send_json(c, rq, 200, o);
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
    enum MHD_Result r = b.oom ? send_error(c, rq, 500, "out of memory")
                              : send_text(c, rq, 200, b.p, "text/plain; version=0.0.4; charset=utf-8");
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
            return send_error(c, rq, 404, "the explorer is not installed (no web directory)");
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", s->o.web_dir, files[i][1]);
        FILE *f = fopen(path, "rb");
        if (!f)
            return send_error(c, rq, 404, "%s: %s", path, strerror(errno));
        sbuf b = {0};
        char tmp[8192];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
            sb_add(&b, tmp, n);
        fclose(f);
        enum MHD_Result r = b.oom || !b.p ? send_error(c, rq, 500, "%s: could not be read", path)
                                          : send_text(c, rq, 200, b.p, files[i][2]);
        free(b.p);
        return r;
    }
    return send_error(c, rq, 404, "Not Found: %s", url);
}

/* ---- dispatch ----------------------------------------------------------------------- */

static enum MHD_Result dispatch_post(struct MHD_Connection *c, request *rq, serve_server *s, const char *url)
{
    int lt = !strcmp(url, "/translate");
    int v1t = !strcmp(url, "/v1/translate"), v1a = !strcmp(url, "/v1/attention");
    if (!lt && !v1t && !v1a)
        return !strcmp(url, "/languages") || !strcmp(url, "/health") || !strcmp(url, "/metrics")
                   ? send_error(c, rq, 405, "Method Not Allowed: use GET for %s", url)
                   : send_error(c, rq, 404, "Not Found: %s", url);
    if (rq->too_big)
        return send_error(c, rq, 413, "Request body too large: more than %d bytes", s->o.max_body);
    const char *body = rq->body ? rq->body : "";
    if (utf8_count_invalid(body, rq->n) || strlen(body) != rq->n)
        return send_error(c, rq, 400, "Invalid request: the body is not valid UTF-8 text");
    body_kind k = content_kind(c);
    cJSON *in = NULL;
    if (k == BODY_JSON) {
        const char *end = NULL;
        in = cJSON_ParseWithLengthOpts(body, rq->n, &end, 0);
        if (!in)
            return send_error(c, rq, 400, "Invalid request: malformed JSON near byte %ld",
                              end ? (long)(end - body) : 0L);
        if (!cJSON_IsObject(in)) {
            cJSON_Delete(in);
            return send_error(c, rq, 400, "Invalid request: the JSON body must be an object");
        }
    } else if (k == BODY_FORM && lt) {
        in = parse_form(body, rq->n);
        if (!in)
            return send_error(c, rq, 400, "Invalid request: malformed form encoding");
    } else {
        return send_error(c, rq, 415,
                          lt ? "Unsupported Media Type: send application/json or application/x-www-form-urlencoded"
                             : "Unsupported Media Type: send application/json");
    }
    enum MHD_Result r = lt    ? handle_lt_translate(c, rq, s, in)
                        : v1t ? handle_v1_translate(c, rq, s, in)
                              : handle_v1_attention(c, rq, s, in);
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
            return send_error(c, rq, 413, "Request body too large: %s bytes, the limit is %d", cl, s->o.max_body);
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
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type");
        rq->status = 204;
        enum MHD_Result ret = MHD_queue_response(c, 204, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strcmp(method, "POST"))
        return dispatch_post(c, rq, s, url);
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return send_error(c, rq, 405, "Method Not Allowed: %s", method);
    if (!strcmp(url, "/languages"))
        return handle_languages(c, rq, s);
    if (!strcmp(url, "/health"))
        return handle_health(c, rq, s);
    if (!strcmp(url, "/metrics"))
        return handle_metrics(c, rq, s);
    if (!strcmp(url, "/translate") || !strcmp(url, "/v1/translate") || !strcmp(url, "/v1/attention"))
        return send_error(c, rq, 405, "Method Not Allowed: use POST for %s", url);
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
