/* qkv serve: an HTTP translation server (libmicrohttpd) with LibreTranslate's
 * API, qkv's own /v1 API, metrics and the attention explorer (web/).
 *
 * Requests are parsed on the connection threads and queued; worker threads
 * take the first queued job and gather the queued jobs of the same model
 * and options behind it into one qkv_translate call (up to
 * max_batch_tokens estimated source tokens), so concurrent clients share
 * batches. The queue is bounded (503 when full). Logs go to opt->log, one
 * line per request; nothing is printed to stdout. */
#ifndef QKV_SERVE_SERVE_H
#define QKV_SERVE_SERVE_H

#include <stdio.h>

#include "qkv.h"

typedef struct {
    const char *name;   /* "en-zh" style names give the languages */
    const char *path;   /* qkv checkpoint or Marian directory */
    const char *source; /* language codes; NULL: from the name, else "en" */
    const char *target; /* NULL: from the name, else "zh" */
} serve_model_spec;

typedef struct {
    const char *host;      /* "127.0.0.1" */
    int port;              /* 8080; 0 picks a free port (serve_port tells it) */
    int threads;           /* threads of each model's qkv_context (0: $QKV_THREADS, else all cores); workers
                              share it (a second parallel region at once runs on its caller alone) */
    int workers;           /* 1: threads running translations */
    int max_batch_tokens;  /* 2048: estimated source tokens gathered into one call */
    int max_body;          /* 1 MiB: bytes of a request body (413 past it) */
    int max_chars;         /* 5000: characters of q per request (400 past it) */
    int max_items;         /* 64: items of a q list (400 past it) */
    int max_alternatives;  /* 8 */
    int queue_size;        /* 256: queued jobs before 503 */
    int timeout_s;         /* 30: idle connection timeout (slow clients) */
    int max_connections;   /* 512 */
    const char *web_dir;   /* directory of index.html, app.js, style.css; NULL: no explorer */
    const char *api_keys;  /* NULL: api_key ignored; else comma-separated accepted keys */
    FILE *log;             /* NULL: silent */
    const char *compute_type; /* NULL: each model's own; else as qkv_translate_options.compute_type */
    int start_paused;      /* 0; 1: workers take no job until serve_resume (tests fill the queue) */
} serve_options;

serve_options serve_default_options(void);

typedef struct serve_server serve_server;

/* Loads the models, starts the workers and the HTTP daemon. */
qkv_status serve_start(const serve_options *o, const serve_model_spec *models, int n_models, serve_server **out);
int serve_port(const serve_server *s);
/* Lets paused workers run (start_paused). */
void serve_resume(serve_server *s);
/* Stops accepting, lets in-flight requests finish (at most 60 s), stops the
 * workers and frees everything. */
void serve_stop(serve_server *s);

#endif
