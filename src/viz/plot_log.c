/* qkv_viz_plot_log: training log (JSON Lines) to curves. Every numeric key
 * becomes a series over "step", in the order keys first appear, so new
 * metrics the trainer starts logging show up without a change here. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "qkv.h"

#define MAX_KEYS 64

typedef struct {
    char *name;
    double *x, *y;
    int n, cap;
} key_series;

static int push(key_series *k, double x, double y)
{
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 256;
        double *nx = realloc(k->x, cap * sizeof *nx);
        if (!nx)
            return 0;
        k->x = nx;
        double *ny = realloc(k->y, cap * sizeof *ny);
        if (!ny)
            return 0;
        k->y = ny;
        k->cap = cap;
    }
    k->x[k->n] = x;
    k->y[k->n++] = y;
    return 1;
}

qkv_status qkv_viz_plot_log(const char *log_path, const char *svg_path, const char *title, int *skipped)
{
    char *text = NULL;
    size_t len = 0;
    QKV_TRY(qkv_read_file(log_path, &text, &len));
    key_series keys[MAX_KEYS];
    int n_keys = 0, n_skipped = 0, n_points = 0;
    qkv_status s = QKV_OK;
    int lineno = 0;
    for (size_t i = 0; i < len && s == QKV_OK;) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        lineno++;
        size_t a = i;
        while (a < j && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
            a++;
        if (a < j) {
            cJSON *obj = cJSON_ParseWithLength(text + a, j - a);
            if (!obj || !cJSON_IsObject(obj)) {
                s = qkv_fail(QKV_ERR_FORMAT, "%s:%d: expected one JSON object per line, got '%.40s%s'", log_path,
                             lineno, text + a, j - a > 40 ? "..." : "");
                /* a line cut short by a crash mid-write is still an error:
                 * the picture would silently lose the end of the run */
                cJSON_Delete(obj);
                break;
            }
            const cJSON *step = cJSON_GetObjectItemCaseSensitive(obj, "step");
            if (!cJSON_IsNumber(step)) {
                n_skipped++;
            } else {
                const cJSON *it;
                cJSON_ArrayForEach(it, obj)
                {
                    if (!cJSON_IsNumber(it) || !it->string || !strcmp(it->string, "step"))
                        continue;
                    int k = 0;
                    while (k < n_keys && strcmp(keys[k].name, it->string))
                        k++;
                    if (k == n_keys) {
                        if (n_keys == MAX_KEYS)
                            continue; /* a picture of more than 64 panels is unreadable anyway */
                        memset(&keys[k], 0, sizeof keys[k]);
                        keys[k].name = strdup(it->string);
                        if (!keys[k].name) {
                            s = qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", log_path);
                            break;
                        }
                        n_keys++;
                    }
                    if (!push(&keys[k], step->valuedouble, it->valuedouble)) {
                        s = qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", log_path);
                        break;
                    }
                    n_points++;
                }
            }
            cJSON_Delete(obj);
        }
        i = j + 1;
    }
    free(text);
    if (s == QKV_OK && !n_points)
        s = qkv_fail(QKV_ERR_FORMAT, "%s: no numeric values with a numeric \"step\" in %d lines", log_path, lineno);
    if (s == QKV_OK) {
        qkv_viz_series series[MAX_KEYS];
        for (int k = 0; k < n_keys; k++)
            series[k] = (qkv_viz_series){keys[k].name, keys[k].x, keys[k].y, keys[k].n};
        s = qkv_viz_curves_svg(svg_path, series, n_keys, "step", title);
    }
    for (int k = 0; k < n_keys; k++) {
        free(keys[k].name);
        free(keys[k].x);
        free(keys[k].y);
    }
    if (skipped)
        *skipped = n_skipped;
    return s;
}
