/* qkv's own API: POST /v1/translate (every decoding option, n-best with
 * scores) and POST /v1/attention (every layer and head of the three kinds
 * of attention, and q, k, v of one). See internal.h. */
#include <cjson/cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "serve/form.h"
#include "serve/internal.h"

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
    int i = srv_find_model_by_name(s, m->valuestring);
    if (i < 0)
        snprintf(err, errn, "unknown model \"%.200s\"", m->valuestring);
    return i;
}

enum MHD_Result srv_v1_translate(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in)
{
    char err[600];
    int m = pick_model(s, in, err, sizeof err);
    if (m < 0)
        return srv_send_error(c, rq, m == -1 && strstr(err, "unknown") ? 404 : 400, "%s", err);
    qlist q;
    if (srv_read_q(s, cJSON_GetObjectItemCaseSensitive(in, "q"), &q, err, sizeof err)) {
        free(q.texts);
        return srv_send_error(c, rq, 400, "%s", err);
    }
    job j = {0};
    int *bad = NULL;
    enum MHD_Result ret;
    j.opt = qkv_translator_default_options(s->models[m].t);
    j.opt.compute_type = s->o.compute_type;
    static const char *const extra[] = {"q", "model"};
    if (read_options(in, &j.opt, &bad, err, sizeof err, extra, 2)) {
        ret = srv_send_error(c, rq, 400, "%s", err);
        goto out;
    }
    j.kind = JOB_TRANSLATE;
    j.model = m;
    j.texts = q.texts;
    j.n = q.n;
    j.est_tokens =
        srv_est_tokens(&q) * (j.opt.sample ? j.opt.num_samples : (j.opt.beam_size > 0 ? j.opt.beam_size : 4));
    if (!srv_run_job(c, rq, s, &j, &ret))
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
    ret = srv_send_json(c, rq, 200, o);
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

enum MHD_Result srv_v1_attention(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in)
{
    char err[600];
    int m = pick_model(s, in, err, sizeof err);
    if (m < 0)
        return srv_send_error(c, rq, strstr(err, "unknown") ? 404 : 400, "%s", err);
    cJSON *src = cJSON_GetObjectItemCaseSensitive(in, "q");
    if (!cJSON_IsString(src) || !src->valuestring[0])
        return srv_send_error(c, rq, 400, "Invalid request: missing q parameter (the source sentence, a string)");
    /* every layer and head of three kinds grows with the square of the length: a tighter limit */
    long att_limit = s->o.max_chars < ATTENTION_MAX_CHARS ? s->o.max_chars : ATTENTION_MAX_CHARS;
    if ((long)srv_utf8_chars(src->valuestring) > att_limit)
        return srv_send_error(c, rq, 400, "Invalid request: request (%zu) exceeds text limit (%ld) of /v1/attention",
                              srv_utf8_chars(src->valuestring), att_limit);
    cJSON *tg = cJSON_GetObjectItemCaseSensitive(in, "target");
    if (tg && !cJSON_IsString(tg) && !cJSON_IsNull(tg))
        return srv_send_error(c, rq, 400, "field target: a string is expected");
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
        ret = srv_send_error(c, rq, 400, "%s", err);
        goto out;
    }
    j.kind = JOB_ATTENTION;
    j.model = m;
    const char *texts[1] = {src->valuestring};
    j.texts = texts;
    j.n = 1;
    j.target = cJSON_IsString(tg) ? tg->valuestring : NULL;
    if (!srv_run_job(c, rq, s, &j, &ret))
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
    ret = srv_send_json(c, rq, 200, o);
out:
    free(bad);
    return ret;
}
