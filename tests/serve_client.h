/* A plain HTTP/1.1 client over real sockets and a server on a free
 * loopback port, for the tests of qkv serve (tests/test_serve*.c): each
 * includes this once, after test.h. Model: the Marian fixture
 * tests/golden/marian/opus_tiny. */
#ifndef QKV_TESTS_SERVE_CLIENT_H
#define QKV_TESTS_SERVE_CLIENT_H

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "qkv.h"
#include "serve/serve.h"
#include "test.h"

static char model_dir[512];

static inline serve_server *start(serve_options *o)
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
static inline reply http_raw(int port, const char *raw, size_t raw_len)
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

static inline reply http(int port, const char *method, const char *path, const char *ctype, const char *body,
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

static inline reply get(int port, const char *path) { return http(port, "GET", path, NULL, "", 0); }
static inline reply post_json(int port, const char *path, const char *json)
{
    return http(port, "POST", path, "application/json", json, strlen(json));
}

/* The reply's JSON (NULL with a failure recorded when it is not JSON). */
static inline cJSON *json_of(const reply *r, const char *what)
{
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    CHECK(j, "%s: the reply is not JSON: %.200s", what, r->body ? r->body : "(none)");
    return j;
}

/* An error reply: the status and {"error": "..."} containing want. */
static inline void check_error(reply r, int status, const char *want, const char *what)
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

#endif
