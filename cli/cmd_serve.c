/* qkv serve: the translation server (src/serve/) from the command line.
 * Stops on SIGINT or SIGTERM after the requests in flight are answered. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "qkv.h"
#include "serve/serve.h"

static const char usage[] =
    "usage: qkv serve -m MODEL [-m NAME=MODEL ...] [OPTIONS]\n"
    "  An HTTP server: LibreTranslate's API (POST /translate and /detect with JSON, urlencoded or\n"
    "  multipart bodies, GET /languages, GET /frontend/settings), qkv's own\n"
    "  (POST /v1/translate, POST /v1/attention), GET /health, GET /metrics (Prometheus) and the\n"
    "  attention explorer at /. MODEL is a qkv checkpoint or a Marian directory; a NAME such as\n"
    "  en-zh (or a path ending in -en-zh, as opus-mt-en-zh) gives the languages, else en -> zh.\n"
    "\n"
    "  --host ADDR              IPv4 address to listen on (default 127.0.0.1)\n"
    "  --port N                 (default 8080; 0: any free port, printed at start)\n"
    "  --threads N              kernel threads of each translation (default: all cores)\n"
    "  --workers N              translations run at once (default 1)\n"
    "  --max-batch-tokens N     source tokens (estimated) gathered from queued requests into one\n"
    "                           batch (default 2048)\n"
    "  --compute-type T         the linear layers: default (each model's own) | auto | float32 |\n"
    "                           int8 | int8_float32 | int8_bfloat16 | bfloat16 (as qkv translate)\n"
    "  --queue N                queued requests before 503 (default 256)\n"
    "  --max-body N             bytes of a request body before 413 (default 1048576)\n"
    "  --max-chars N            characters of q per request before 400 (default 5000)\n"
    "  --max-items N            strings in a q list (default 64)\n"
    "  --max-alternatives N     (default 8)\n"
    "  --timeout S              seconds an idle or slow connection is kept (default 30)\n"
    "  --api-keys K1,K2         require one of these api_key values (default: api_key ignored)\n"
    "  --web DIR                the explorer's files (default: web/ beside the program)\n";

static int parse_pos(const char *flag, const char *s, int lo, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > INT_MAX)
        return cli_error("%s %s: an integer >= %d is expected", flag, s, lo), 0;
    *out = (int)v;
    return 1;
}

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (!stop_signal)
        stop_signal = sig;
}

int cmd_serve(int argc, char **argv)
{
    serve_options o = serve_default_options();
    serve_model_spec specs[16];
    int n_models = 0;
    char web[PATH_MAX + 8] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return cli_error("%s: unknown option or missing value (see qkv serve --help)", a);
        const char *v = argv[++i];
        int ok = 1;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (n_models == 16)
                return cli_error("at most 16 models");
            const char *eq = strchr(v, '=');
            serve_model_spec m = {0};
            if (eq) {
                char *name = strndup(v, (size_t)(eq - v));
                m.name = name;
                m.path = eq + 1;
            } else {
                m.path = v;
            }
            specs[n_models++] = m;
        } else if (!strcmp(a, "--host"))
            o.host = v;
        else if (!strcmp(a, "--port"))
            ok = parse_pos(a, v, 0, &o.port);
        else if (!strcmp(a, "--threads"))
            ok = parse_pos(a, v, 0, &o.threads);
        else if (!strcmp(a, "--workers"))
            ok = parse_pos(a, v, 1, &o.workers);
        else if (!strcmp(a, "--max-batch-tokens"))
            ok = parse_pos(a, v, 1, &o.max_batch_tokens);
        else if (!strcmp(a, "--queue"))
            ok = parse_pos(a, v, 1, &o.queue_size);
        else if (!strcmp(a, "--max-body"))
            ok = parse_pos(a, v, 1, &o.max_body);
        else if (!strcmp(a, "--max-chars"))
            ok = parse_pos(a, v, 1, &o.max_chars);
        else if (!strcmp(a, "--max-items"))
            ok = parse_pos(a, v, 1, &o.max_items);
        else if (!strcmp(a, "--max-alternatives"))
            ok = parse_pos(a, v, 0, &o.max_alternatives);
        else if (!strcmp(a, "--timeout"))
            ok = parse_pos(a, v, 1, &o.timeout_s);
        else if (!strcmp(a, "--api-keys"))
            o.api_keys = v;
        else if (!strcmp(a, "--web"))
            snprintf(web, sizeof web, "%s", v);
        else if (!strcmp(a, "--compute-type")) {
            const char *r;
            if (qkv_compute_type_resolve(v, &r) != QKV_OK)
                return cli_error("--compute-type: %s", qkv_last_error());
            o.compute_type = v;
        } else
            return cli_error("%s: unknown option (see qkv serve --help)", a);
        if (!ok)
            return 1;
    }
    if (n_models == 0)
        return cli_error("no model: qkv serve -m MODEL (see qkv serve --help)");
    if (!web[0]) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = 0;
            char *slash = strrchr(exe, '/');
            if (slash)
                *slash = 0;
            snprintf(web, sizeof web, "%s/web", exe);
        }
    }
    o.web_dir = web[0] && access(web, R_OK) == 0 ? web : NULL;
    o.log = stderr;
    /* SIGINT / SIGTERM set a flag, whichever thread (ours, the server's, the BLAS's) they reach;
     * a second one while stopping changes nothing */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    serve_server *s = NULL;
    qkv_status st = serve_start(&o, specs, n_models, &s);
    for (int i = 0; i < n_models; i++)
        free((char *)specs[i].name);
    if (st != QKV_OK)
        return cli_error("%s", qkv_last_error());
    fprintf(stderr, "qkv serve: listening on http://%s:%d/ (%s)\n", o.host, serve_port(s),
            o.web_dir ? "explorer at /" : "no explorer: web/ not found, see --web");
    while (!stop_signal) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "qkv serve: %s: finishing the requests in flight\n", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
    serve_stop(s);
    fprintf(stderr, "qkv serve: stopped\n");
    return 0;
}
