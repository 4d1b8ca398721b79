/* viz/: SVG heatmaps and curves. The SVG is parsed back with a minimal XML
 * checker (balanced tags, quoted attributes, known entities only), then
 * cells, labels and colours are checked against the input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "qkv.h"
#include "test.h"

static char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 256, "/tmp/qkv_test_viz_%d_%s", (int)getpid(), name);
    return p;
}

static char *slurp(const char *path)
{
    char *s = NULL;
    size_t n;
    if (qkv_read_file(path, &s, &n) != QKV_OK) {
        CHECK(0, "cannot read %s: %s", path, qkv_last_error());
        return NULL;
    }
    return s;
}

/* Minimal well-formedness: every tag closes in order, attribute values are
 * quoted, '&' starts a known entity, no raw '<' in text. Returns 1 if fine,
 * else reports where. */
static int xml_well_formed(const char *s)
{
    const char *stack[64];
    size_t stack_len[64];
    int depth = 0, root_seen = 0;
    const char *p = s;
    if (!strncmp(p, "<?xml", 5)) {
        p = strstr(p, "?>");
        if (!p) {
            CHECK(0, "unterminated XML declaration");
            return 0;
        }
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
            int ok = 0;
            for (int k = 0; k < 5; k++)
                ok |= !strncmp(p, ent[k], strlen(ent[k]));
            if (!ok) {
                CHECK(0, "bad entity at offset %td: %.12s", p - s, p);
                return 0;
            }
            p++;
            continue;
        }
        if (*p != '<') {
            if (!depth && !(*p == ' ' || *p == '\n')) {
                CHECK(0, "text outside the root at offset %td", p - s);
                return 0;
            }
            p++;
            continue;
        }
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t nl = strcspn(name, " \t\n/>");
        const char *q = name + nl;
        /* attributes: name="value" pairs */
        while (*q && *q != '>' && !(q[0] == '/' && q[1] == '>')) {
            if (*q == '"') {
                const char *e = strchr(q + 1, '"');
                if (!e || memchr(q + 1, '<', e - q - 1)) {
                    CHECK(0, "bad attribute value at offset %td", q - s);
                    return 0;
                }
                q = e + 1;
            } else if (*q == '\'' || *q == '<') {
                CHECK(0, "unexpected %c in a tag at offset %td", *q, q - s);
                return 0;
            } else {
                q++;
            }
        }
        if (!*q) {
            CHECK(0, "unterminated tag at offset %td", p - s);
            return 0;
        }
        int self = *q == '/';
        if (closing) {
            if (!depth || stack_len[depth - 1] != nl || strncmp(stack[depth - 1], name, nl)) {
                CHECK(0, "closing </%.*s> at offset %td does not match <%.*s>", (int)nl, name, p - s,
                      depth ? (int)stack_len[depth - 1] : 0, depth ? stack[depth - 1] : "");
                return 0;
            }
            depth--;
        } else if (!self) {
            if (depth == 64) {
                CHECK(0, "nesting too deep");
                return 0;
            }
            if (!depth && root_seen) {
                CHECK(0, "second root element at offset %td", p - s);
                return 0;
            }
            root_seen = 1;
            stack[depth] = name, stack_len[depth++] = nl;
        }
        p = q + (self ? 2 : 1);
    }
    CHECK(depth == 0, "%d elements left open", depth);
    return depth == 0 && root_seen;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_attention_svg(void)
{
    const char *src[] = {"\xe2\x96\x81The", "\xe2\x96\x81" "cat", "<s>", "a&b", "\"q\"", "</s>"};
    const char *tgt[] = {"\xe7\x8c\xab", "\xe5\x9d\x90", "\xe3\x80\x82", "</s>"};
    int n_src = 6, n_tgt = 4, n_heads = 3;
    float w[3 * 4 * 6];
    for (int h = 0; h < n_heads; h++)
        for (int t = 0; t < n_tgt; t++)
            for (int s = 0; s < n_src; s++)
                w[(h * n_tgt + t) * n_src + s] = (float)((h * 7 + t * 5 + s * 3) % 11) / 10.0f;
    const char *path = tmp_path("attn.svg");
    qkv_status st = qkv_viz_attention_svg(path, src, n_src, tgt, n_tgt, w, n_heads, "attention <test> & more");
    CHECK(st == QKV_OK, "%s", qkv_last_error());
    char *svg = slurp(path);
    if (!svg)
        return;
    CHECK(xml_well_formed(svg), "SVG is not well-formed");
    /* one panel per head plus the mean */
    int cells = count(svg, "<rect class=\"cell\"");
    CHECK(cells == (n_heads + 1) * n_tgt * n_src, "%d cells, want %d", cells, (n_heads + 1) * n_tgt * n_src);
    CHECK(count(svg, "class=\"panel\"") == n_heads + 1, "%d panels", count(svg, "class=\"panel\""));
    CHECK(strstr(svg, ">&lt;s&gt;</text>") && strstr(svg, ">a&amp;b</text>") && strstr(svg, ">&quot;q&quot;</text>"),
          "source tokens not escaped");
    CHECK(strstr(svg, ">\xe7\x8c\xab</text>") && strstr(svg, ">\xe2\x96\x81The</text>"), "UTF-8 tokens missing");
    CHECK(strstr(svg, "attention &lt;test&gt; &amp; more"), "title not escaped");
    CHECK(count(svg, "class=\"src\"") == (n_heads + 1) * n_src, "source labels %d", count(svg, "class=\"src\""));
    CHECK(count(svg, "class=\"tgt\"") == (n_heads + 1) * n_tgt, "target labels %d", count(svg, "class=\"tgt\""));
    CHECK(strstr(svg, "linearGradient") && strstr(svg, "class=\"legend\""), "no colour legend");

    /* colours: darker (lower luminance) exactly when the weight is larger */
    const char *p = svg;
    double lum[256], val[256];
    int n = 0;
    while (n < 256 && (p = strstr(p, "<rect class=\"cell\""))) {
        const char *f = strstr(p, "fill=\"#"), *t = strstr(p, "<title>");
        unsigned r, g, b;
        CHECK(f && t && sscanf(f, "fill=\"#%2x%2x%2x", &r, &g, &b) == 3, "cell %d has no colour or title", n);
        lum[n] = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        val[n] = atof(t + 7);
        n++;
        p++;
    }
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (val[i] < val[j] - 1e-4 && !(lum[i] > lum[j]) && bad++ < 3)
                CHECK(0, "weight %g has luminance %g but larger weight %g has %g", val[i], lum[i], val[j], lum[j]);
    CHECK(n == cells, "parsed %d of %d cells", n, cells);
    /* the mean panel's first cell is the mean of the heads' first cells */
    double want = (w[0] + w[n_tgt * n_src] + w[2 * n_tgt * n_src]) / 3;
    CHECK(fabs(val[n_heads * n_tgt * n_src] - want) < 1e-4, "mean cell %g want %g", val[n_heads * n_tgt * n_src], want);
    free(svg);
    unlink(path);
}

static void test_attention_layers_and_errors(void)
{
    const char *src[] = {"a", "b\x01", "\xff"}, *tgt[] = {"x", "y"};
    float w[2 * 2 * 2 * 3];
    for (int i = 0; i < 24; i++)
        w[i] = i == 5 ? NAN : (float)i / 24;
    const char *path = tmp_path("layers.svg");
    CHECK(qkv_viz_attention_layers_svg(path, src, 3, tgt, 2, w, 2, 2, NULL) == QKV_OK, "%s", qkv_last_error());
    char *svg = slurp(path);
    if (svg) {
        CHECK(xml_well_formed(svg), "layer grid SVG is not well-formed");
        CHECK(count(svg, "<rect class=\"cell\"") == 2 * 3 * 2 * 3, "%d cells", count(svg, "<rect class=\"cell\""));
        CHECK(count(svg, ">layer ") == 2, "layer labels %d", count(svg, ">layer "));
        /* control characters and invalid UTF-8 become U+FFFD */
        CHECK(strstr(svg, ">b\xef\xbf\xbd</text>") && strstr(svg, ">\xef\xbf\xbd</text>"), "bad bytes not replaced");
        CHECK(strstr(svg, "fill=\"#d62728\""), "non-finite weight not marked");
        free(svg);
    }
    unlink(path);
    CHECK(qkv_viz_attention_svg(path, src, 0, tgt, 2, w, 1, NULL) == QKV_ERR_ARG, "zero source tokens accepted");
    CHECK(access(path, F_OK) != 0, "file written despite the error");
    CHECK(qkv_viz_attention_svg("/nonexistent-dir/a.svg", src, 3, tgt, 2, w, 1, NULL) == QKV_ERR_IO,
          "unwritable path: %s", qkv_last_error());
}

static void test_curves_svg(void)
{
    double x[50], y1[50], y2[50];
    for (int i = 0; i < 50; i++)
        x[i] = i * 100, y1[i] = 8 * exp(-i / 15.0) + 1, y2[i] = i == 20 ? NAN : i * 0.5;
    qkv_viz_series s[] = {{"loss", x, y1, 50}, {"dev_bleu", x, y2, 50}, {"empty", x, y1, 0}};
    const char *path = tmp_path("curves.svg");
    CHECK(qkv_viz_curves_svg(path, s, 3, "step", "run <1>") == QKV_OK, "%s", qkv_last_error());
    char *svg = slurp(path);
    if (!svg)
        return;
    CHECK(xml_well_formed(svg), "curves SVG is not well-formed");
    CHECK(count(svg, "class=\"panel\"") == 3, "%d panels", count(svg, "class=\"panel\""));
    CHECK(count(svg, "<polyline") == 3, "%d polylines (want 1 + 2 around the NaN gap)", count(svg, "<polyline"));
    CHECK(strstr(svg, ">loss</text>") && strstr(svg, ">dev_bleu</text>") && strstr(svg, "no data"), "panel titles");
    CHECK(strstr(svg, ">4000</text>") || strstr(svg, ">5000</text>"), "x ticks missing");
    CHECK(strstr(svg, "run &lt;1&gt;"), "title not escaped");
    free(svg);
    /* degenerate and extreme ranges still draw */
    double xs[3] = {5, 5, 5}, flat[3] = {2, 2, 2}, huge[3] = {-1.7e308, 0, 1.7e308};
    qkv_viz_series odd[] = {{"flat", xs, flat, 3}, {"huge", huge, huge, 3}};
    CHECK(qkv_viz_curves_svg(path, odd, 2, NULL, NULL) == QKV_OK, "%s", qkv_last_error());
    svg = slurp(path);
    if (svg) {
        CHECK(xml_well_formed(svg), "odd-range SVG is not well-formed");
        CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"), "non-finite coordinates written");
        free(svg);
    }
    unlink(path);
}

static void write_text(const char *path, const char *text)
{
    CHECK(qkv_write_file(path, text, strlen(text)) == QKV_OK, "%s", qkv_last_error());
}

static void test_plot_log(void)
{
    const char *log = tmp_path("log.jsonl"), *svg_path = tmp_path("plot.svg");
    char *text = malloc(1 << 16);
    size_t at = 0;
    for (int s = 1; s <= 100; s++) {
        at += snprintf(text + at, (1 << 16) - at,
                       "{\"step\": %d, \"loss\": %.4f, \"lr\": %.6g, \"tgt_tokens_per_s\": %d, \"elapsed_s\": %.1f, "
                       "\"phase\": \"train\"}\n",
                       s, 9.0 / (1 + s * 0.05), 1e-3 * (s < 40 ? s / 40.0 : sqrt(40.0 / s)), 12000 + s % 7 * 50,
                       s * 0.4);
        if (s % 25 == 0)
            at += snprintf(text + at, (1 << 16) - at,
                           "{\"step\": %d, \"valid\": true, \"dev_loss\": %.3f, \"dev_bleu\": %.2f, \"dev_chrf\": %.2f}\n",
                           s, 6.0 / (1 + s * 0.04), s * 0.2, 20 + s * 0.3);
    }
    at += snprintf(text + at, (1 << 16) - at, "\n{\"done\": true, \"best_bleu\": 20.0}\n");
    write_text(log, text);
    int skipped = -1;
    CHECK(qkv_viz_plot_log(log, svg_path, "training", &skipped) == QKV_OK, "%s", qkv_last_error());
    CHECK(skipped == 1, "skipped %d lines, want 1 (the summary without step)", skipped);
    char *svg = slurp(svg_path);
    if (svg) {
        CHECK(xml_well_formed(svg), "plot SVG is not well-formed");
        const char *keys[] = {"loss", "lr", "tgt_tokens_per_s", "elapsed_s", "dev_loss", "dev_bleu", "dev_chrf"};
        for (int k = 0; k < 7; k++) {
            char needle[64];
            snprintf(needle, sizeof needle, ">%s</text>", keys[k]);
            CHECK(strstr(svg, needle), "no panel for %s", keys[k]);
        }
        CHECK(count(svg, "class=\"panel\"") == 7, "%d panels, want 7 (step, booleans, strings excluded)",
              count(svg, "class=\"panel\""));
        /* dev series have 4 points each, drawn as markers */
        CHECK(count(svg, "<circle") == 4 * 3, "%d markers, want 12", count(svg, "<circle"));
        free(svg);
    }
    /* malformed line: the error names the line number */
    write_text(log, "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": 1.5}\n{\"step\": 3, \"lo\n");
    unlink(svg_path);
    qkv_status st = qkv_viz_plot_log(log, svg_path, NULL, NULL);
    CHECK(st == QKV_ERR_FORMAT, "malformed log gave %d", st);
    char want[300];
    snprintf(want, sizeof want, "%s:3:", log);
    CHECK(strstr(qkv_last_error(), want) != NULL, "message '%s' does not name line 3", qkv_last_error());
    CHECK(access(svg_path, F_OK) != 0, "picture written despite the error");
    write_text(log, "[1, 2]\n");
    CHECK(qkv_viz_plot_log(log, svg_path, NULL, NULL) == QKV_ERR_FORMAT && strstr(qkv_last_error(), ":1:"),
          "array line: %s", qkv_last_error());
    write_text(log, "{\"note\": \"hi\"}\n");
    CHECK(qkv_viz_plot_log(log, svg_path, NULL, NULL) == QKV_ERR_FORMAT, "log without data accepted");
    CHECK(qkv_viz_plot_log(tmp_path("missing.jsonl"), svg_path, NULL, NULL) == QKV_ERR_IO, "missing log: %s",
          qkv_last_error());
    unlink(log);
    free(text);
}

/* qkv plot end to end (needs ./qkv, built by `make`). */
static void test_cli_plot(void)
{
    if (access("./qkv", X_OK) != 0) {
        CHECK(0, "./qkv not built (run make from the repository root)");
        return;
    }
    const char *log = tmp_path("cli.jsonl"), *svg_path = tmp_path("cli.svg");
    write_text(log, "{\"step\": 1, \"loss\": 9.5, \"lr\": 0.0001}\n{\"step\": 2, \"loss\": 8.0, \"lr\": 0.0002}\n"
                    "{\"step\": 2, \"valid\": true, \"dev_bleu\": 1.5}\n");
    char cmd[600], out[2048];
    snprintf(cmd, sizeof cmd, "./qkv plot %s -o %s 2>&1", log, svg_path);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int rc = p ? pclose(p) : -1;
    CHECK(rc == 0 && access(svg_path, F_OK) == 0, "%s: status %d, output %s", cmd, rc, out);
    char *svg = slurp(svg_path);
    if (svg) {
        CHECK(count(svg, "class=\"panel\"") == 3, "%d panels, want 3", count(svg, "class=\"panel\""));
        free(svg);
    }
    write_text(log, "{\"step\": 1, \"loss\": 9.5}\n\nnot json\n");
    p = popen(cmd, "r");
    n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    rc = p ? pclose(p) : -1;
    char want[300];
    snprintf(want, sizeof want, "qkv: error: %s:3:", log);
    CHECK(rc != 0 && strstr(out, want), "malformed log: status %d, output %s", rc, out);
    unlink(log);
    unlink(svg_path);
}

static const test_case cases[] = {
    TEST(test_attention_svg),
    TEST(test_attention_layers_and_errors),
    TEST(test_curves_svg),
    TEST(test_plot_log),
    TEST(test_cli_plot),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
