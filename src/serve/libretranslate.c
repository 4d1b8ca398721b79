/* LibreTranslate's API: POST /translate, POST /detect, GET /languages,
 * GET /frontend/settings, with its fields, answers, status codes and
 * messages (its server's libretranslate/app.py is the reference). See
 * internal.h. */
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

enum MHD_Result srv_lt_languages(struct MHD_Connection *c, request *rq, serve_server *s)
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
            cJSON_AddStringToObject(o, "name", srv_lang_name(codes[k]));
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
    return srv_send_json(c, rq, 200, arr);
}

/* ---- LibreTranslate: POST /translate ----------------------------------------- */

/* LibreTranslate's answer to the api_key field: 0 when accepted (or keys
 * are not checked), else the status (and msg): 400 when the key is missing
 * (its "contact the operator" answer of a server that requires keys), 403
 * when it is not one of --api-keys. */
int srv_lt_check_key(const serve_server *s, const char *key, const char **msg)
{
    if (!s->o.api_keys)
        return 0;
    if (!key || !*key) {
        *msg = "Please contact the server operator to get an API key";
        return 400;
    }
    *msg = "Invalid API key";
    size_t n = strlen(key);
    for (const char *p = s->o.api_keys; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, key, n))
            return 0;
        if (!e)
            break;
        p = e + 1;
    }
    return 403;
}

static const char *jstr(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The distinct source languages of the loaded models that translate into
 * tgt (NULL: any target), in load order; returns how many (at most max). */
static int sources_of(const serve_server *s, const char *tgt, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < s->n_models; i++) {
        if (tgt && strcmp(s->models[i].target, tgt))
            continue;
        int dup = 0;
        for (int k = 0; k < n; k++)
            dup |= !strcmp(out[k], s->models[i].source);
        if (!dup && n < max)
            out[n++] = s->models[i].source;
    }
    return n;
}

/* LibreTranslate's detectedLanguage object. qkv does no language
 * detection: it answers for source "auto" only when one source language
 * translates into the target, and then says so with confidence 100 (the
 * text cannot be translated from anything else here). */
static cJSON *detected(const char *lang, double confidence)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "confidence", confidence);
    cJSON_AddStringToObject(d, "language", lang);
    return d;
}

/* alternatives as LibreTranslate reads it: an integer (a JSON number or a
 * string of digits), negative meaning 0. Returns -1 when it is not one. */
static int read_alternatives(cJSON *a)
{
    if (!a || cJSON_IsNull(a))
        return 0;
    double v;
    if (cJSON_IsNumber(a))
        v = a->valuedouble;
    else if (cJSON_IsString(a)) {
        char *end;
        const char *p = a->valuestring;
        while (*p == ' ')
            p++;
        if (!*p)
            return 0;
        long l = strtol(p, &end, 10);
        while (*end == ' ')
            end++;
        if (*end)
            return -1;
        v = (double)l;
    } else
        return -1;
    if (!isfinite(v))
        return -1;
    return v < 0 ? 0 : v > 1e6 ? 1000000 : (int)v;
}

/* Alternatives of one translation as LibreTranslate lists them: the other
 * hypotheses, without empty ones and without repeats of the best or of an
 * earlier one (filter_unique), at most alts. */
static cJSON *alternatives_of(const qkv_translation *r, int alts)
{
    cJSON *a = cJSON_CreateArray();
    const char *best = r->n_hyps > 0 ? r->hyps[0].text : "";
    for (int h = 1; h < r->n_hyps && cJSON_GetArraySize(a) < alts; h++) {
        const char *t = r->hyps[h].text;
        int dup = !*t || !strcmp(t, best);
        for (int k = 1; !dup && k < h; k++)
            dup = !strcmp(t, r->hyps[k].text);
        if (!dup)
            cJSON_AddItemToArray(a, cJSON_CreateString(t));
    }
    return a;
}

int srv_lt_pair(const serve_server *s, const char *src, const char *tgt, const char **src_out, char *err, size_t errn)
{
    if (!strcmp(src, "auto")) {
        const char *cand[16];
        int nc = sources_of(s, tgt, cand, 16);
        if (!srv_lang_known(s, tgt)) {
            snprintf(err, errn, "%s is not supported", tgt);
            return -1;
        }
        if (nc == 0) {
            snprintf(err, errn, "Invalid request: source auto: no loaded model translates into %s", tgt);
            return -1;
        }
        if (nc > 1) {
            snprintf(err, errn,
                     "Invalid request: source auto: qkv serve does no language detection, and %d source "
                     "languages (%s, %s%s) translate into %s; name the source",
                     nc, cand[0], cand[1], nc > 2 ? ", ..." : "", tgt);
            return -1;
        }
        src = cand[0];
    }
    *src_out = src;
    if (!srv_lang_known(s, src)) {
        snprintf(err, errn, "%s is not supported", src);
        return -1;
    }
    if (!srv_lang_known(s, tgt)) {
        snprintf(err, errn, "%s is not supported", tgt);
        return -1;
    }
    int m = srv_find_model_by_langs(s, src, tgt);
    if (m < 0)
        snprintf(err, errn, "%s (%s) is not available as a target language from %s (%s)", srv_lang_name(tgt), tgt,
                 srv_lang_name(src), src);
    return m;
}

enum MHD_Result srv_lt_translate(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in, int is_form)
{
    char err[600];
    const char *kmsg;
    int kst = srv_lt_check_key(s, jstr(in, "api_key"), &kmsg);
    if (kst)
        return srv_send_error(c, rq, kst, "%s", kmsg);
    cJSON *qj = cJSON_GetObjectItemCaseSensitive(in, "q");
    if (is_form && cJSON_IsString(qj))
        form_normalize_newlines(qj->valuestring); /* as LibreTranslate does for form input */
    qlist q;
    if (srv_read_q(s, qj, &q, err, sizeof err)) {
        free(q.texts);
        return srv_send_error(c, rq, 400, "%s", err);
    }
    const char *src = jstr(in, "source"), *tgt = jstr(in, "target"), *fmt = jstr(in, "format");
    enum MHD_Result ret;
    if (!src || !*src) {
        ret = srv_send_error(c, rq, 400, "Invalid request: missing source parameter");
        goto out;
    }
    if (!tgt || !*tgt) {
        ret = srv_send_error(c, rq, 400, "Invalid request: missing target parameter");
        goto out;
    }
    int alts = read_alternatives(cJSON_GetObjectItemCaseSensitive(in, "alternatives"));
    if (alts < 0) {
        ret = srv_send_error(c, rq, 400, "Invalid request: alternatives parameter is not a number");
        goto out;
    }
    if (alts > s->o.max_alternatives) {
        ret =
            srv_send_error(c, rq, 400, "Invalid request: alternatives parameter must be <= %d", s->o.max_alternatives);
        goto out;
    }
    if (fmt && *fmt && strcmp(fmt, "text")) {
        ret = srv_send_error(c, rq, 400, "%s format is not supported", fmt);
        goto out;
    }
    int is_auto = !strcmp(src, "auto");
    int m = srv_lt_pair(s, src, tgt, &src, err, sizeof err);
    if (m < 0) {
        ret = srv_send_error(c, rq, 400, "%s", err);
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
    j.est_tokens = srv_est_tokens(&q);
    if (!srv_run_job(c, rq, s, &j, &ret))
        goto out;
    cJSON *o = cJSON_CreateObject();
    if (q.is_list) {
        cJSON *tt = cJSON_AddArrayToObject(o, "translatedText"), *al = NULL, *dl = NULL;
        if (is_auto)
            dl = cJSON_AddArrayToObject(o, "detectedLanguage");
        if (alts > 0)
            al = cJSON_AddArrayToObject(o, "alternatives");
        for (int i = 0; i < q.n; i++) {
            qkv_translation *r = &j.res[i];
            cJSON_AddItemToArray(tt, cJSON_CreateString(r->n_hyps > 0 ? r->hyps[0].text : ""));
            if (dl)
                cJSON_AddItemToArray(dl, detected(src, 100));
            if (al)
                cJSON_AddItemToArray(al, alternatives_of(r, alts));
        }
    } else {
        qkv_translation *r = &j.res[0];
        cJSON_AddStringToObject(o, "translatedText", r->n_hyps > 0 ? r->hyps[0].text : "");
        if (is_auto)
            cJSON_AddItemToObject(o, "detectedLanguage", detected(src, 100));
        if (alts > 0)
            cJSON_AddItemToObject(o, "alternatives", alternatives_of(r, alts));
    }
    qkv_translations_free(j.res, j.n);
    ret = srv_send_json(c, rq, 200, o);
out:
    free(q.texts);
    return ret;
}

/* ---- LibreTranslate: POST /detect, GET /frontend/settings ------------------------ */

/* No language detection: the answer lists the loaded source languages, with
 * confidence 100 when there is one (nothing else could be translated) and
 * 0 each when there are several (LibreTranslate's "not detected"). */
enum MHD_Result srv_lt_detect(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in)
{
    char err[600];
    const char *kmsg;
    int kst = srv_lt_check_key(s, jstr(in, "api_key"), &kmsg);
    if (kst)
        return srv_send_error(c, rq, kst, "%s", kmsg);
    qlist q;
    const char *e = srv_read_q(s, cJSON_GetObjectItemCaseSensitive(in, "q"), &q, err, sizeof err);
    free(q.texts);
    if (e)
        return srv_send_error(c, rq, 400, "%s", err);
    const char *cand[64];
    int nc = sources_of(s, NULL, cand, 64);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < nc; i++)
        cJSON_AddItemToArray(arr, detected(cand[i], nc == 1 ? 100 : 0));
    return srv_send_json(c, rq, 200, arr);
}

static cJSON *lang_object(const char *code)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "name", srv_lang_name(code));
    return o;
}

/* The fields LibreTranslate's web page and clients read before they
 * translate; the defaults are the first model's languages. */
enum MHD_Result srv_lt_settings(struct MHD_Connection *c, request *rq, serve_server *s)
{
    cJSON *o = cJSON_CreateObject(), *lang = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "charLimit", s->o.max_chars);
    cJSON_AddNumberToObject(o, "frontendTimeout", 500); /* ms of typing pause before the page translates */
    cJSON_AddBoolToObject(o, "apiKeys", s->o.api_keys != NULL);
    cJSON_AddBoolToObject(o, "keyRequired", s->o.api_keys != NULL);
    cJSON_AddBoolToObject(o, "suggestions", 0);
    cJSON_AddBoolToObject(o, "filesTranslation", 1);
    cJSON *formats = cJSON_AddArrayToObject(o, "supportedFilesFormat");
    cJSON_AddItemToArray(formats, cJSON_CreateString(".txt")); /* keep in sync with files.c */
    cJSON_AddItemToObject(lang, "source", lang_object(s->models[0].source));
    cJSON_AddItemToObject(lang, "target", lang_object(s->models[0].target));
    cJSON_AddItemToObject(o, "language", lang);
    return srv_send_json(c, rq, 200, o);
}
