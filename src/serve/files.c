/* LibreTranslate's file translation for plain text: POST /translate_file
 * takes a multipart part "file" (a .txt file), translates it line by line
 * (empty lines stay empty, line breaks are kept) and answers
 * {"translatedFileUrl": "http://HOST/download_file/ID.NAME"}; the result
 * waits in memory for GET /download_file/ID.NAME (at most MAX_FILES files
 * and MAX_BYTES bytes, each for KEEP_S seconds; the oldest go first). ID
 * is 128 random bits, so one client cannot guess another's file. Other
 * formats (.docx, .odt, .html, ...) are refused as LibreTranslate refuses
 * a format it lacks. See internal.h. */
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/strbuf.h"
#include "serve/internal.h"
#include "text/utf8.h"

#define MAX_FILES 64
#define MAX_BYTES (64u << 20)
#define KEEP_S 1800

typedef struct stored_file {
    char name[300]; /* ID.NAME: the last segment of the download URL */
    char *data;
    size_t n;
    time_t t;
    struct stored_file *next; /* newest first */
} stored_file;

/* Drops expired files, then the oldest while over the bounds (with room
 * for `incoming` more bytes and one more file). Under s->mu. */
static void files_trim(serve_server *s, size_t incoming)
{
    time_t now = time(NULL);
    for (;;) {
        stored_file **pp = &s->files, *last = NULL, **last_pp = NULL;
        for (; *pp; pp = &(*pp)->next) {
            last = *pp;
            last_pp = pp;
        }
        if (!last)
            return;
        int expired = now - last->t > KEEP_S;
        if (!expired && s->n_files < MAX_FILES && s->files_bytes + incoming <= MAX_BYTES)
            return;
        *last_pp = NULL;
        s->n_files--;
        s->files_bytes -= last->n;
        free(last->data);
        free(last);
    }
}

void srv_files_free(serve_server *s)
{
    while (s->files) {
        stored_file *f = s->files;
        s->files = f->next;
        free(f->data);
        free(f);
    }
    s->n_files = 0;
    s->files_bytes = 0;
}

/* werkzeug's secure_filename, roughly: ASCII letters, digits, '.', '-' and
 * '_' kept, every other character '_', no leading dots. */
static void safe_name(char *out, size_t outn, const char *in)
{
    size_t k = 0;
    for (const char *p = in; *p && k + 1 < outn; p++) {
        unsigned char ch = (unsigned char)*p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                 ch == '_' || ch == '.';
        if ((k == 0 && (ch == '.' || ch == '_')) || (ch & 0xC0) == 0x80)
            continue; /* one '_' for a character of several bytes */
        out[k++] = ok ? (char)ch : '_';
    }
    out[k] = 0;
}

/* Translates the lines of text[0, n) (UTF-8 without NUL) into *out. On
 * failure sends the error and returns 0. */
static int translate_lines(struct MHD_Connection *c, request *rq, serve_server *s, int m, const char *text, size_t n,
                           sbuf *out, enum MHD_Result *ret)
{
    char *copy = malloc(n + 1);
    size_t n_lines = 1;
    for (size_t i = 0; i < n; i++)
        n_lines += text[i] == '\n';
    const char **texts = malloc(n_lines * sizeof *texts);
    size_t *line_at = malloc(n_lines * sizeof *line_at); /* the line of each text */
    int ok = 0;
    if (!copy || !texts || !line_at) {
        *ret = srv_send_error(c, rq, 500, "out of memory");
        goto out;
    }
    memcpy(copy, text, n);
    copy[n] = 0;
    /* lines end at LF (a CR before it is kept aside and written back) */
    int n_texts = 0;
    char *p = copy;
    for (size_t l = 0; l < n_lines; l++) {
        char *e = strchr(p, '\n');
        if (e)
            *e = 0;
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r')
            p[len - 1] = 0;
        if (*p) {
            texts[n_texts] = p;
            line_at[n_texts++] = l;
        }
        p = e ? e + 1 : p + len;
    }
    job j = {0};
    j.kind = JOB_TRANSLATE;
    j.model = m;
    j.opt = qkv_translator_default_options(s->models[m].t);
    j.opt.compute_type = s->o.compute_type;
    j.texts = texts;
    j.n = n_texts;
    qlist q = {texts, n_texts, 1};
    j.est_tokens = srv_est_tokens(&q);
    if (n_texts > 0 && !srv_run_job(c, rq, s, &j, ret))
        goto out;
    /* write back: translated lines in place of the source lines, breaks as they were */
    const char *src = text, *end = text + n;
    int t = 0;
    for (size_t l = 0; l < n_lines; l++) {
        const char *e = memchr(src, '\n', (size_t)(end - src));
        int crlf = e && e > src && e[-1] == '\r';
        if (t < n_texts && line_at[t] == l) {
            const qkv_translation *r = &j.res[t++];
            sb_str(out, r->n_hyps > 0 ? r->hyps[0].text : "");
        }
        if (e)
            sb_str(out, crlf ? "\r\n" : "\n");
        src = e ? e + 1 : end;
    }
    if (j.res)
        qkv_translations_free(j.res, j.n);
    if (out->oom) {
        *ret = srv_send_error(c, rq, 500, "out of memory");
        goto out;
    }
    ok = 1;
out:
    free(copy);
    free(texts);
    free(line_at);
    return ok;
}

enum MHD_Result srv_lt_translate_file(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in)
{
    const char *kmsg;
    cJSON *k = cJSON_GetObjectItemCaseSensitive(in, "api_key");
    int kst = srv_lt_check_key(s, cJSON_IsString(k) ? k->valuestring : NULL, &kmsg);
    if (kst)
        return srv_send_error(c, rq, kst, "%s", kmsg);
    cJSON *sj = cJSON_GetObjectItemCaseSensitive(in, "source"), *tj = cJSON_GetObjectItemCaseSensitive(in, "target");
    const char *src = cJSON_IsString(sj) ? sj->valuestring : NULL, *tgt = cJSON_IsString(tj) ? tj->valuestring : NULL;
    const form_file *f = NULL;
    for (int i = 0; i < rq->n_files && i < 4 && !f; i++)
        if (!strcmp(rq->files[i].name, "file"))
            f = &rq->files[i];
    if (!f)
        return srv_send_error(c, rq, 400, "Invalid request: missing file parameter");
    if (!src || !*src)
        return srv_send_error(c, rq, 400, "Invalid request: missing source parameter");
    if (!tgt || !*tgt)
        return srv_send_error(c, rq, 400, "Invalid request: missing target parameter");
    if (!f->filename[0])
        return srv_send_error(c, rq, 400, "Invalid request: empty file");
    const char *ext = strrchr(f->filename, '.');
    if (!ext || strcasecmp(ext, ".txt"))
        return srv_send_error(c, rq, 400, "Invalid request: file format not supported");
    char err[600];
    int m = srv_lt_pair(s, src, tgt, &src, err, sizeof err);
    if (m < 0)
        return srv_send_error(c, rq, 400, "%s", err);
    if (memchr(f->data, 0, f->n) || utf8_count_invalid(f->data, f->n))
        return srv_send_error(c, rq, 400, "Invalid request: the file is not UTF-8 text");
    size_t chars = 0;
    for (size_t i = 0; i < f->n; i++)
        chars += ((unsigned char)f->data[i] & 0xC0) != 0x80;
    if ((long)chars > s->o.max_chars)
        return srv_send_error(c, rq, 400, "Invalid request: request (%zu) exceeds text limit (%d)", chars,
                              s->o.max_chars);
    sbuf out = {0};
    enum MHD_Result ret;
    if (!translate_lines(c, rq, s, m, f->data, f->n, &out, &ret)) {
        free(out.p);
        return ret;
    }
    unsigned char rnd[16];
    char safe[200];
    safe_name(safe, sizeof safe, f->filename);
    stored_file *sf = calloc(1, sizeof *sf);
    if (!sf || getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        free(sf);
        free(out.p);
        return srv_send_error(c, rq, 500, "Cannot translate file: no random file name");
    }
    int w = 0;
    for (int i = 0; i < 16; i++)
        w += snprintf(sf->name + w, sizeof sf->name - (size_t)w, "%02x", rnd[i]);
    snprintf(sf->name + w, sizeof sf->name - (size_t)w, ".%s", safe[0] ? safe : "file.txt");
    sf->n = out.n;
    sf->data = out.p ? out.p : calloc(1, 1);
    sf->t = time(NULL);
    pthread_mutex_lock(&s->mu);
    files_trim(s, sf->n);
    sf->next = s->files;
    s->files = sf;
    s->n_files++;
    s->files_bytes += sf->n;
    pthread_mutex_unlock(&s->mu);
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    char url[700];
    if (host && *host && !strpbrk(host, " /\"\\"))
        snprintf(url, sizeof url, "http://%.200s/download_file/%s", host, sf->name);
    else
        snprintf(url, sizeof url, "http://%s:%d/download_file/%s", s->o.host, s->port, sf->name);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "translatedFileUrl", url);
    return srv_send_json(c, rq, 200, o);
}

enum MHD_Result srv_lt_download(struct MHD_Connection *c, request *rq, serve_server *s, const char *name)
{
    struct MHD_Response *r = NULL;
    char disp[300];
    pthread_mutex_lock(&s->mu);
    files_trim(s, 0);
    for (stored_file *f = s->files; f; f = f->next)
        if (!strcmp(f->name, name)) {
            r = MHD_create_response_from_buffer(f->n, f->data, MHD_RESPMEM_MUST_COPY);
            break;
        }
    pthread_mutex_unlock(&s->mu);
    if (!r)
        return srv_send_error(c, rq, 404, "Invalid filename: no translated file %.200s (they are kept %d minutes)",
                              name, KEEP_S / 60);
    const char *dot = strchr(name, '.');
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", dot ? dot + 1 : name);
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Content-Disposition", disp);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    rq->status = 200;
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}
