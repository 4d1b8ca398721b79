/* qkv translate -m MODEL: one translation per input line, in input order.
 * Lines are read in chunks (so a large file is never held whole) and each
 * chunk is translated by qkv_translate, which sorts it by length into
 * batches and restores the order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/io.h"
#include "commands.h"
#include "qkv.h"
#include "translate_args.h"

static const char usage[] =
    "usage: qkv translate -m MODEL [OPTIONS] < input > output\n"
    "  MODEL is a qkv checkpoint (.qkv) or a Hugging Face Marian directory; without options a Marian\n"
    "  directory's own generation defaults apply (num_beams, max_length, bad_words_ids), as generate().\n"
    "  One output line per input line, in order; empty lines stay empty; invalid UTF-8 is read as U+FFFD;\n"
    "  a source longer than the model's max_positions is cut (its first max_positions - 1 tokens and EOS)\n"
    "  and counted in a warning.\n"
    "\n"
    "input and output:\n"
    "  --input F, -i F          read F instead of stdin\n"
    "  --output F, -o F         write F (atomically) instead of stdout\n"
    "  --n-best                 every hypothesis, in Marian's format:\n"
    "                           LINE ||| TRANSLATION ||| F0= LOGPROB ||| SCORE\n"
    "                           (LINE from 0, LOGPROB the sum of token log-probabilities, SCORE with\n"
    "                           the length penalty)\n"
    "  --scores                 prefix each line with its score: SCORE ||| TRANSLATION\n"
    "  --attention FILE         the cross-attention of each best translation as JSON (an array, one object\n"
    "                           per line: index, source and target pieces, layers, heads, attention\n"
    "                           [layer][head][target][source]; empty lines give null)\n"
    "  --batch-size N           sentences decoded together (default 32)\n"
    "  --threads N              kernel threads (default: $QKV_THREADS or all cores)\n"
    "  --compute-type T         default (float32) | auto | float32 | int8 | int8_float32 | int8_bfloat16 |\n"
    "                           bfloat16: the linear layers (see `qkv version` for auto)\n"
    "  --timing                 print one JSON line to stderr at the end: {\"load_s\", \"translate_s\",\n"
    "                           \"sentences\"}; translate_s is the time inside qkv_translate (tokenizing,\n"
    "                           search, detokenizing), without loading the model or reading and writing\n"
    "                           files (bench/vs_ctranslate2 compares it with the peers' translate loops)\n"
    "  --no-protect             translate placeholders and tags as text (protection is on for models\n"
    "                           trained on protected text: each %s, %1, {name}, <b>, &amp; of a line\n"
    "                           comes out exactly once; counts on stderr)\n"
    "\n"
    "search:\n"
    "  --beam-size N            1 is greedy (default: model's num_beams, else 4)\n"
    "  --max-length N           as generate(): counts the decoder start token, so at most N-1 tokens are\n"
    "                           generated, EOS included (default: a Marian directory's max_length, as\n"
    "                           generate(); a qkv checkpoint: max_positions + 1 with the ratio below;\n"
    "                           given alone, it is the whole cap: the checkpoint's ratio is off)\n"
    "  --max-length-ratio R     also cap at R * source tokens + offset + 1 (default: a qkv checkpoint 2,\n"
    "                           with offset 10, so at most 2 * source + 10 tokens; a Marian directory off)\n"
    "  --max-length-offset N    (default: a qkv checkpoint 10, a Marian directory 0)\n"
    "  --min-length N           EOS not allowed before length N (generate()'s min_length)\n"
    "  --length-penalty A       alpha (default 1.0)\n"
    "  --length-penalty-kind K  power: logprob / len^A (transformers), gnmt: logprob / ((5+len)/6)^A\n"
    "  --early-stopping E       heuristic (transformers' False, default), true, never\n"
    "  --no-repeat-ngram-size N no n-gram of that size twice\n"
    "  --repetition-penalty P   transformers' definition (1.0 = off)\n"
    "  --prefix TEXT            every translation starts with TEXT (a decoder prompt, not scored)\n"
    "  --bad-word-ids LIST      model ids never generated, comma-separated (pad never is)\n"
    "  --forced-eos 0|1         EOS forced at the last position (default: model's forced_eos_token_id; 1)\n"
    "\n"
    "sampling:\n"
    "  --sample                 sample instead of searching\n"
    "  --temperature T --top-k K --top-p P --seed S --num-samples N\n";

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -2147483647L || v > 2147483647L)
        return 0;
    *out = (int)v;
    return 1;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end)
        return 0;
    *out = v;
    return 1;
}

int translate_parse_option(qkv_translate_options *o, int argc, char **argv, int *i, int **bad_ids)
{
    const char *a = argv[*i];
    static const char *const takes_value[] = {
        "--beam-size", "--max-length", "--max-length-ratio", "--max-length-offset", "--min-length",
        "--length-penalty", "--length-penalty-kind", "--early-stopping", "--no-repeat-ngram-size",
        "--repetition-penalty", "--prefix", "--bad-word-ids", "--forced-eos", "--temperature", "--top-k",
        "--top-p", "--seed", "--num-samples", "--batch-size", "--threads", "--compute-type"};
    int known = 0;
    for (size_t k = 0; k < sizeof takes_value / sizeof takes_value[0]; k++)
        known |= !strcmp(a, takes_value[k]);
    if (!strcmp(a, "--sample")) {
        o->sample = 1;
        return 1;
    }
    if (!known)
        return 0;
    if (*i + 1 >= argc) {
        cli_error("%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    int ok = 1;
    if (!strcmp(a, "--beam-size"))
        ok = parse_int(v, &o->beam_size) && o->beam_size >= 1;
    else if (!strcmp(a, "--max-length"))
        ok = parse_int(v, &o->max_length) && o->max_length >= 2;
    else if (!strcmp(a, "--max-length-ratio"))
        ok = parse_float(v, &o->max_length_ratio);
    else if (!strcmp(a, "--max-length-offset"))
        ok = parse_int(v, &o->max_length_offset);
    else if (!strcmp(a, "--min-length"))
        ok = parse_int(v, &o->min_length);
    else if (!strcmp(a, "--length-penalty"))
        ok = parse_float(v, &o->length_penalty);
    else if (!strcmp(a, "--length-penalty-kind")) {
        if (!strcmp(v, "power"))
            o->length_penalty_kind = QKV_LENGTH_PENALTY_POWER;
        else if (!strcmp(v, "gnmt"))
            o->length_penalty_kind = QKV_LENGTH_PENALTY_GNMT;
        else
            ok = 0;
    } else if (!strcmp(a, "--early-stopping")) {
        if (!strcmp(v, "heuristic") || !strcmp(v, "false"))
            o->early_stopping = QKV_EARLY_STOPPING_HEURISTIC;
        else if (!strcmp(v, "true"))
            o->early_stopping = QKV_EARLY_STOPPING_TRUE;
        else if (!strcmp(v, "never"))
            o->early_stopping = QKV_EARLY_STOPPING_NEVER;
        else
            ok = 0;
    } else if (!strcmp(a, "--no-repeat-ngram-size"))
        ok = parse_int(v, &o->no_repeat_ngram_size);
    else if (!strcmp(a, "--repetition-penalty"))
        ok = parse_float(v, &o->repetition_penalty);
    else if (!strcmp(a, "--prefix"))
        o->target_prefix = v;
    else if (!strcmp(a, "--bad-word-ids")) {
        /* "3,17,5" -> 3 -1 17 -1 5 -1: each id banned on its own */
        size_t n = 1;
        for (const char *p = v; *p; p++)
            n += *p == ',';
        int *ids = realloc(*bad_ids, 2 * n * sizeof(int));
        if (!ids) {
            cli_error("out of memory");
            return -1;
        }
        *bad_ids = ids;
        int k = 0;
        char *copy = strdup(v), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
            ok = parse_int(tok, &ids[k]) && ids[k] >= 0;
            ids[k + 1] = -1;
            k += 2;
        }
        free(copy);
        o->bad_word_ids = ids;
        o->n_bad_word_ids = k;
    } else if (!strcmp(a, "--forced-eos"))
        ok = parse_int(v, &o->forced_eos) && (o->forced_eos == 0 || o->forced_eos == 1);
    else if (!strcmp(a, "--temperature"))
        ok = parse_float(v, &o->temperature);
    else if (!strcmp(a, "--top-k"))
        ok = parse_int(v, &o->top_k);
    else if (!strcmp(a, "--top-p"))
        ok = parse_float(v, &o->top_p);
    else if (!strcmp(a, "--seed")) {
        char *end;
        errno = 0;
        o->seed = strtoull(v, &end, 10);
        ok = !errno && end != v && !*end;
    } else if (!strcmp(a, "--num-samples"))
        ok = parse_int(v, &o->num_samples);
    else if (!strcmp(a, "--batch-size"))
        ok = parse_int(v, &o->batch_size) && o->batch_size >= 1;
    else if (!strcmp(a, "--threads")) {
        int n; /* taken by translate_load, before the options */
        ok = parse_int(v, &n) && n >= 1 && n <= 1024;
    } else if (!strcmp(a, "--compute-type")) {
        const char *r;
        ok = qkv_compute_type_resolve(v, &r) == QKV_OK;
        o->compute_type = v;
        if (!ok) {
            cli_error("--compute-type: %s", qkv_last_error());
            return -1;
        }
    }
    if (!ok) {
        cli_error("%s: invalid value '%s'", a, v);
        return -1;
    }
    return 1;
}

/* JSON string literal of s (UTF-8 passed through; controls escaped). */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void write_attention(FILE *f, const qkv_translation *r, long index, int first)
{
    fputs(first ? "[\n" : ",\n", f);
    if (!r->attention) {
        fputs("null", f);
        return;
    }
    fprintf(f, "{\"index\": %ld, \"source\": [", index);
    for (int s = 0; s < r->n_src; s++) {
        if (s)
            fputs(", ", f);
        json_string(f, r->src_tokens[s]);
    }
    fputs("], \"target\": [", f);
    for (int t = 0; t < r->n_tgt; t++) {
        if (t)
            fputs(", ", f);
        json_string(f, r->tgt_tokens[t]);
    }
    fprintf(f, "], \"layers\": %d, \"heads\": %d, \"attention\": [", r->n_layers, r->n_heads);
    const float *a = r->attention;
    for (int l = 0; l < r->n_layers; l++) {
        fputs(l ? ", [" : "[", f);
        for (int h = 0; h < r->n_heads; h++) {
            fputs(h ? ", [" : "[", f);
            for (int t = 0; t < r->n_tgt; t++) {
                fputs(t ? ", [" : "[", f);
                for (int s = 0; s < r->n_src; s++)
                    fprintf(f, s ? ", %.6g" : "%.6g", *a++);
                fputc(']', f);
            }
            fputc(']', f);
        }
        fputc(']', f);
    }
    fputs("]}", f);
}

/* Reads one line (without its "\n" or "\r\n") into *buf; returns its length,
 * or -1 at the end of the input. NUL bytes inside a line are kept out. */
static long read_line(FILE *in, char **buf, size_t *cap)
{
    ssize_t n = getline(buf, cap, in);
    if (n < 0)
        return -1;
    if (n > 0 && (*buf)[n - 1] == '\n')
        (*buf)[--n] = '\0';
    if (n > 0 && (*buf)[n - 1] == '\r')
        (*buf)[--n] = '\0';
    return (long)strlen(*buf);
}

void translate_print_protect_stats(const qkv_protect_stats *p)
{
    fprintf(stderr,
            "qkv: protected spans: %ld in %ld lines; hypotheses exact as generated %ld, repeats dropped %ld, "
            "strays dropped %ld, missing inserted by attention %ld, written as text dropped %ld, reordered "
            "arguments made positional %ld, crossed tags nested %ld, text run into spans scrubbed %ld%s; "
            "malformed left as text %ld, over 32 left as text %ld\n",
            p->spans, p->lines, p->exact, p->duplicates, p->strays, p->inserted, p->literals, p->reordered,
            p->nested, p->scrubbed, p->unverified ? " (and some still wrong: a bug)" : "", p->malformed,
            p->overflow);
}

int cmd_translate(int argc, char **argv);
int translate_model_arg(int argc, char **argv, const char *usage, const char **model)
{
    int help = 0;
    *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            help = 1;
        else if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc)
            *model = argv[++i];
    }
    if (help) {
        fputs(usage, stdout);
        return 0;
    }
    if (!*model) {
        fputs(usage, stderr);
        return cli_error("-m MODEL is needed");
    }
    return -1;
}

/* The context of the command's translator (one translator per process). */
static qkv_context *cli_ctx;

int translate_load(const char *model, int argc, char **argv, qkv_translator **tr)
{
    *tr = NULL;
    qkv_context_options co = qkv_context_default_options();
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--threads")) {
            char *end;
            long n = strtol(argv[i + 1], &end, 10);
            if (end == argv[i + 1] || *end || n < 1 || n > 1024)
                return cli_error("--threads: invalid value '%s' (expected 1 to 1024)", argv[i + 1]);
            co.threads = (int)n;
        }
    if (qkv_context_new(&co, &cli_ctx) != QKV_OK || qkv_translator_load_ctx(model, cli_ctx, tr) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        qkv_context_free(cli_ctx);
        cli_ctx = NULL;
        return 1;
    }
    return 0;
}

void translate_unload(qkv_translator *tr)
{
    qkv_translator_free(tr);
    qkv_context_free(cli_ctx);
    cli_ctx = NULL;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_translate(int argc, char **argv)
{
    int nbest = 0, scores = 0, rc = 1, *bad_ids = NULL;
    const char *model, *input = NULL, *output = NULL, *attn_path = NULL;
    int done = translate_model_arg(argc, argv, usage, &model);
    if (done >= 0)
        return done;
    qkv_translator *tr = NULL;
    double t_start = wall_seconds(), t_load = 0, t_translate = 0;
    long sentences = 0;
    int timing = 0, protect = 1;
    qkv_protect_stats pstats = {0};
    if (translate_load(model, argc, argv, &tr))
        return 1;
    t_load = wall_seconds() - t_start;
    qkv_translate_options o = qkv_translator_default_options(tr);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = translate_parse_option(&o, argc, argv, &i, &bad_ids);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            i++;
        } else if ((!strcmp(a, "--input") || !strcmp(a, "-i")) && i + 1 < argc) {
            input = argv[++i];
        } else if ((!strcmp(a, "--output") || !strcmp(a, "-o")) && i + 1 < argc) {
            output = argv[++i];
        } else if (!strcmp(a, "--attention") && i + 1 < argc) {
            attn_path = argv[++i];
        } else if (!strcmp(a, "--n-best")) {
            nbest = 1;
        } else if (!strcmp(a, "--scores")) {
            scores = 1;
        } else if (!strcmp(a, "--timing")) {
            timing = 1;
        } else if (!strcmp(a, "--no-protect")) {
            protect = 0;
        } else {
            fputs(usage, stderr);
            cli_error("unexpected argument '%s'", a);
            goto out;
        }
    }
    /* an explicit --max-length without a ratio is the whole cap: the
     * checkpoint's default ratio and offset give way */
    int given_max = 0, given_ratio = 0;
    for (int i = 1; i < argc; i++) {
        given_max |= !strcmp(argv[i], "--max-length");
        given_ratio |= !strcmp(argv[i], "--max-length-ratio") || !strcmp(argv[i], "--max-length-offset");
    }
    if (given_max && !given_ratio) {
        o.max_length_ratio = 0;
        o.max_length_offset = 0;
    }
    o.attention = attn_path != NULL;
    if (nbest)
        o.n_best = 0; /* every hypothesis of the beam (or every sample) */
    if (qkv_translate_validate_options(&o) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto out;
    }
    protect = protect && qkv_translator_protects(tr);
    FILE *in = stdin;
    if (input && !(in = fopen(input, "rb"))) {
        cli_error("%s: %s", input, strerror(errno));
        goto out;
    }
    qkv_afile out_f = {0}, attn_f = {0};
    FILE *out = stdout;
    int have_out = 0, have_attn = 0;
    if (output) {
        if (qkv_afile_open(&out_f, output) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto close;
        }
        have_out = 1;
        out = out_f.fp;
    }
    if (attn_path) {
        if (qkv_afile_open(&attn_f, attn_path) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto close;
        }
        have_attn = 1;
    }
    enum { CHUNK = 4096 };
    char **lines = calloc(CHUNK, sizeof(char *));
    char *buf = NULL;
    size_t cap = 0;
    long line_no = 0, truncated = 0;
    int eof = 0, failed = !lines;
    while (!eof && !failed) {
        int n = 0;
        while (n < CHUNK) {
            if (read_line(in, &buf, &cap) < 0) {
                eof = 1;
                break;
            }
            if (!(lines[n] = strdup(buf))) {
                failed = 1;
                break;
            }
            n++;
        }
        if (failed || n == 0) {
            for (int k = 0; k < n; k++)
                free(lines[k]);
            break;
        }
        qkv_translation *res = NULL;
        double t0 = wall_seconds();
        qkv_status ts = protect ? qkv_translate_protected(tr, (const char *const *)lines, n, &o, &pstats, &res)
                                : qkv_translate(tr, (const char *const *)lines, n, &o, &res);
        if (ts != QKV_OK) {
            cli_error("%s", qkv_last_error());
            failed = 1;
        }
        t_translate += wall_seconds() - t0;
        for (int k = 0; k < n; k++)
            sentences += lines[k][strspn(lines[k], " \t\r\v\f")] != 0;
        for (int k = 0; k < n && !failed; k++) {
            const qkv_translation *r = &res[k];
            truncated += r->truncated > 0;
            if (nbest) {
                if (r->n_hyps == 0)
                    fprintf(out, "%ld |||  ||| F0= 0 ||| 0\n", line_no + k);
                for (int h = 0; h < r->n_hyps; h++)
                    fprintf(out, "%ld ||| %s ||| F0= %.6f ||| %.6f\n", line_no + k, r->hyps[h].text,
                            r->hyps[h].logprob, r->hyps[h].score);
            } else if (scores) {
                fprintf(out, "%.6f ||| %s\n", r->n_hyps ? r->hyps[0].score : 0.0f, r->n_hyps ? r->hyps[0].text : "");
            } else {
                fprintf(out, "%s\n", r->n_hyps ? r->hyps[0].text : "");
            }
            if (have_attn)
                write_attention(attn_f.fp, r, line_no + k, line_no + k == 0);
        }
        qkv_translations_free(res, n);
        for (int k = 0; k < n; k++)
            free(lines[k]);
        line_no += n;
        if (ferror(out)) {
            cli_error("%s: write failed", output ? output : "stdout");
            failed = 1;
        }
    }
    free(lines);
    free(buf);
    if (ferror(in)) {
        cli_error("%s: read failed", input ? input : "stdin");
        failed = 1;
    }
    if (truncated)
        fprintf(stderr, "qkv: warning: %ld line%s longer than the model's max_positions %s truncated\n", truncated,
                truncated == 1 ? "" : "s", truncated == 1 ? "was" : "were");
    if (protect && !failed)
        translate_print_protect_stats(&pstats);
    if (have_attn) {
        fputs(line_no ? "\n]\n" : "[]\n", attn_f.fp);
        have_attn = 0;
        if (failed)
            qkv_afile_abort(&attn_f);
        else if (qkv_afile_commit(&attn_f) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            failed = 1;
        }
    }
    if (have_out) {
        have_out = 0;
        if (failed)
            qkv_afile_abort(&out_f);
        else if (qkv_afile_commit(&out_f) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            failed = 1;
        }
    } else {
        fflush(stdout);
    }
    rc = failed;
    if (timing && !failed)
        fprintf(stderr, "{\"engine\": \"qkv\", \"load_s\": %.6f, \"translate_s\": %.6f, \"sentences\": %ld}\n", t_load,
                t_translate, sentences);
close:
    if (have_out)
        qkv_afile_abort(&out_f);
    if (have_attn)
        qkv_afile_abort(&attn_f);
    if (in != stdin)
        fclose(in);
out:
    translate_unload(tr);
    free(bad_ids);
    return rc;
}
