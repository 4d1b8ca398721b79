/* What the files of src/serve/ share: the server, its queued jobs, one
 * HTTP request's state, and the helpers that answer a request. serve.c
 * holds the HTTP front, the queue and its workers; libretranslate.c and
 * api_v1.c the endpoints of LibreTranslate's API and of qkv's own. Internal:
 * nothing here is part of the library's API. */
#ifndef QKV_SERVE_INTERNAL_H
#define QKV_SERVE_INTERNAL_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>

#include "qkv.h"
#include "serve/form.h"
#include "serve/serve.h"

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
    /* translated files waiting for their download (files.c), under mu */
    struct stored_file *files;
    int n_files;
    size_t files_bytes;
};

/* One HTTP request, from its first callback to its completion. */
typedef struct {
    char *body;
    size_t n, cap;
    int too_big;
    double t0;
    int status;
    char method[8];
    char url[128];
    form_file files[4]; /* the first file parts of a multipart body (views into body) */
    int n_files;
} request;

/* q of a request: one string (is_list 0) or a list; texts point into the request's JSON. */
typedef struct {
    const char **texts;
    int n, is_list;
} qlist;

/* Code points of NUL-terminated UTF-8 text (LibreTranslate counts characters). */
size_t srv_utf8_chars(const char *s);

/* Replies (Access-Control-Allow-Origin: *); each records the status in rq
 * and returns what MHD_queue_response did. srv_send_json takes j (may be
 * NULL: 500). srv_send_error sends {"error": message}. */
enum MHD_Result srv_send_text(struct MHD_Connection *c, request *rq, int status, const char *body, const char *ctype);
enum MHD_Result srv_send_json(struct MHD_Connection *c, request *rq, int status, cJSON *j);
enum MHD_Result srv_send_error(struct MHD_Connection *c, request *rq, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* English name of a language code (the code itself when unknown). */
const char *srv_lang_name(const char *code);
/* Index of a model, or -1. */
int srv_find_model_by_name(const serve_server *s, const char *name);
int srv_find_model_by_langs(const serve_server *s, const char *src, const char *tgt);
/* Whether some model has this code as its source or target. */
int srv_lang_known(const serve_server *s, const char *code);

/* Reads q (a string or a list of strings) within the server's limits
 * (items, characters). Returns NULL, or err holding the 400 message; in
 * both cases out->texts is the caller's to free. */
const char *srv_read_q(const serve_server *s, cJSON *q, qlist *out, char *err, size_t errn);
/* A rough count of source tokens for batching (4 bytes a token, 2 more a sentence). */
int srv_est_tokens(const qlist *q);
/* Queues j and waits for it; on failure sends the error (503 when the
 * queue is full, 400 for bad options, 500 otherwise) and returns 0. */
int srv_run_job(struct MHD_Connection *c, request *rq, serve_server *s, job *j, enum MHD_Result *ret);

/* Endpoints (libretranslate.c): in is the request's fields; is_form says
 * they came from a form body (LibreTranslate then normalises q's line breaks). */
enum MHD_Result srv_lt_languages(struct MHD_Connection *c, request *rq, serve_server *s);
enum MHD_Result srv_lt_translate(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in, int is_form);
enum MHD_Result srv_lt_detect(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in);
enum MHD_Result srv_lt_settings(struct MHD_Connection *c, request *rq, serve_server *s);
/* The model for a LibreTranslate source and target (source "auto": the one
 * source language that translates into target, when there is one), or -1
 * with the 400 message in err. *src_out: the source code used. */
int srv_lt_pair(const serve_server *s, const char *src, const char *tgt, const char **src_out, char *err, size_t errn);

/* Endpoints (files.c): POST /translate_file (a .txt file part "file",
 * source, target, api_key) and GET /download_file/NAME; srv_files_free
 * drops every stored file (serve_stop). */
enum MHD_Result srv_lt_translate_file(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in);
enum MHD_Result srv_lt_download(struct MHD_Connection *c, request *rq, serve_server *s, const char *name);
void srv_files_free(serve_server *s);

/* LibreTranslate's api_key rule (libretranslate.c): 0 when accepted, else
 * the status to answer (400 missing, 403 wrong) and its message. */
int srv_lt_check_key(const serve_server *s, const char *key, const char **msg);

/* Endpoints (api_v1.c): in is the JSON body. */
enum MHD_Result srv_v1_translate(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in);
enum MHD_Result srv_v1_attention(struct MHD_Connection *c, request *rq, serve_server *s, cJSON *in);

#endif
