/* qkv attn -m MODEL "source" ["target"]: an SVG heatmap of the decoder's
 * cross-attention, source tokens against target tokens, one panel per head
 * and the mean, one row per layer. With a target the model is forced to
 * decode it; without, the model's translation is shown (and printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "qkv.h"
#include "translate_args.h"


static const char usage[] =
    "usage: qkv attn -m MODEL \"SOURCE\" [\"TARGET\"] [-o FILE.svg] [--layer N] [translate options]\n"
    "  writes the cross-attention heatmaps (default attention.svg): every layer, or only layer N\n"
    "  (from 0); rows are target tokens (EOS included), columns source tokens (EOS included).\n"
    "  Without TARGET the sentence is translated first (qkv translate's search options apply).\n";

int cmd_attn(int argc, char **argv);
int cmd_attn(int argc, char **argv)
{
    int rc = 1, *bad_ids = NULL, layer = -1;
    const char *model, *src = NULL, *tgt = NULL, *out = "attention.svg";
    int done = translate_model_arg(argc, argv, usage, &model);
    if (done >= 0)
        return done;
    qkv_translator *tr = NULL;
    if (translate_load(model, argc, argv, &tr))
        return 1;
    qkv_translate_options o = qkv_translator_default_options(tr);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = translate_parse_option(&o, argc, argv, &i, &bad_ids);
        if (r < 0)
            goto fail;
        if (r > 0)
            continue;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc)
            i++;
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(a, "--layer") && i + 1 < argc)
            layer = atoi(argv[++i]);
        else if (a[0] != '-' && !src)
            src = a;
        else if (a[0] != '-' && !tgt)
            tgt = a;
        else {
            fputs(usage, stderr);
            cli_error("unexpected argument '%s'", a);
            goto fail;
        }
    }
    if (!src) {
        fputs(usage, stderr);
        cli_error("a SOURCE sentence is needed");
        goto fail;
    }
    o.attention = 1;
    o.n_best = 1;
    qkv_translation *res = NULL;
    qkv_status s;
    double lp = 0;
    if (tgt)
        s = qkv_translate_score(tr, &src, &tgt, 1, &o, &lp, NULL, &res);
    else
        s = qkv_translate(tr, &src, 1, &o, &res);
    if (s != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto fail;
    }
    const qkv_translation *r = &res[0];
    if (!r->attention) {
        cli_error("nothing to draw: the source is empty");
        qkv_translations_free(res, 1);
        goto fail;
    }
    if (layer >= r->n_layers) {
        cli_error("--layer %d: the decoder has %d layers", layer, r->n_layers);
        qkv_translations_free(res, 1);
        goto fail;
    }
    char title[256];
    if (layer >= 0) {
        snprintf(title, sizeof title, "cross-attention, decoder layer %d", layer);
        s = qkv_viz_attention_svg(out, (const char *const *)r->src_tokens, r->n_src,
                                  (const char *const *)r->tgt_tokens, r->n_tgt,
                                  r->attention + (size_t)layer * r->n_heads * r->n_tgt * r->n_src, r->n_heads, title);
    } else {
        snprintf(title, sizeof title, "cross-attention, %d decoder layers", r->n_layers);
        s = qkv_viz_attention_layers_svg(out, (const char *const *)r->src_tokens, r->n_src,
                                         (const char *const *)r->tgt_tokens, r->n_tgt, r->attention, r->n_layers,
                                         r->n_heads, title);
    }
    if (s != QKV_OK) {
        cli_error("%s", qkv_last_error());
        qkv_translations_free(res, 1);
        goto fail;
    }
    if (tgt)
        printf("%s\t%.6f\n", tgt, lp);
    else
        printf("%s\n", r->n_hyps ? r->hyps[0].text : "");
    fprintf(stderr, "qkv attn: wrote %s\n", out);
    qkv_translations_free(res, 1);
    rc = 0;
fail:
    translate_unload(tr);
    free(bad_ids);
    return rc;
}
