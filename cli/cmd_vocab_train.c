/* qkv vocab train: trains a SentencePiece-compatible vocabulary. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "qkv.h"

static const char usage[] =
    "usage: qkv vocab train --input FILE... --vocab-size N [--type unigram|bpe] --out PREFIX [options]\n"
    "\n"
    "Trains a subword vocabulary on UTF-8 text (one sentence per line) and writes\n"
    "PREFIX.model (SentencePiece ModelProto, loadable by sentencepiece) and\n"
    "PREFIX.vocab (piece TAB score per line).\n"
    "\n"
    "  --input FILE...              training text; several files, or repeat --input\n"
    "  --vocab-size N               exact vocabulary size, special pieces included (8000)\n"
    "  --type unigram|bpe           model type (unigram)\n"
    "  --out PREFIX                 output prefix\n"
    "  --character-coverage F       share of character occurrences the alphabet must\n"
    "                               cover; rarer characters become <unk> (or bytes with\n"
    "                               --byte-fallback). Default: 1.0 when the text has at\n"
    "                               most 1000 distinct characters, else 0.9995 (as\n"
    "                               sentencepiece advises for Chinese/Japanese)\n"
    "  --byte-fallback              add the 256 <0xXX> byte pieces: no character ever\n"
    "                               becomes <unk>\n"
    "  --normalization nmt_nfkc|identity   (nmt_nfkc, sentencepiece's default)\n"
    "  --unk-id N --bos-id N --eos-id N --pad-id N\n"
    "                               special piece ids, -1 for none (0, 1, 2, -1 as\n"
    "                               sentencepiece). Marian / OPUS-MT style: --eos-id 0\n"
    "                               --unk-id 1 --bos-id -1 (what Marian's own training\n"
    "                               passes; <pad> then goes last, in vocab.json)\n"
    "  --user-defined-symbols A,B   pieces always kept whole (ids after the specials)\n"
    "  --max-sentences N            train on a seeded random sample of N lines (0: all)\n"
    "  --max-sentence-bytes N       skip longer lines (4192)\n"
    "  --max-piece-length N         longest piece in characters (16)\n"
    "  --split-digits               every digit a piece of its own\n"
    "  --seed N                     sampling seed (1); same seed, same files (any --threads)\n"
    "  --threads N                  threads (default: all cores)\n"
    "  --quiet                      no progress lines on stderr\n";

static void progress(void *ctx, const char *line)
{
    const struct timespec *t0 = ctx;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double s = (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
    fprintf(stderr, "qkv vocab train [%7.1fs] %s\n", s, line);
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_error("%s: '%s' is not an integer in [%ld, %ld]", flag, s, lo, hi), 0;
    *out = v;
    return 1;
}

int cmd_vocab_train(int argc, char **argv)
{
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    const char **inputs = calloc((size_t)argc + 1, sizeof *inputs);
    const char **symbols = calloc((size_t)argc + 1, sizeof *symbols);
    char *symbol_buf = NULL;
    const char *out = NULL;
    int n_inputs = 0, quiet = 0, rc = 1;
    if (!inputs || !symbols) {
        cli_error("out of memory");
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(a, "--byte-fallback")) {
            o.byte_fallback = 1;
        } else if (!strcmp(a, "--split-digits")) {
            o.split_digits = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--input")) {
            if (!v || !strncmp(v, "--", 2)) {
                cli_error("--input needs at least one file");
                goto done;
            }
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
                inputs[n_inputs++] = argv[++i];
        } else if (!v) {
            cli_error("%s needs a value (see qkv vocab train --help)", a);
            goto done;
        } else if (!strcmp(a, "--out")) {
            out = v, i++;
        } else if (!strcmp(a, "--type")) {
            if (!strcmp(v, "unigram"))
                o.type = QKV_VOCAB_UNIGRAM;
            else if (!strcmp(v, "bpe"))
                o.type = QKV_VOCAB_BPE;
            else {
                cli_error("--type: '%s': expected unigram or bpe", v);
                goto done;
            }
            i++;
        } else if (!strcmp(a, "--normalization")) {
            o.normalization = v, i++;
        } else if (!strcmp(a, "--character-coverage")) {
            char *end;
            double f = strtod(v, &end);
            if (end == v || *end || !(f > 0 && f <= 1)) {
                cli_error("--character-coverage: '%s': expected a number in (0, 1]", v);
                goto done;
            }
            o.character_coverage = (float)f, i++;
        } else if (!strcmp(a, "--user-defined-symbols")) {
            free(symbol_buf);
            symbol_buf = strdup(v);
            if (!symbol_buf) {
                cli_error("out of memory");
                goto done;
            }
            o.n_user_defined_symbols = 0;
            for (char *tok = strtok(symbol_buf, ","); tok; tok = strtok(NULL, ","))
                symbols[o.n_user_defined_symbols++] = tok;
            o.user_defined_symbols = symbols;
            i++;
        } else {
            struct {
                const char *flag;
                long lo, hi;
            } ints[] = {{"--vocab-size", 1, 10000000},      {"--unk-id", 0, 10000000},
                        {"--bos-id", -1, 10000000},        {"--eos-id", -1, 10000000},
                        {"--pad-id", -1, 10000000},        {"--max-sentences", 0, 2000000000},
                        {"--max-sentence-bytes", 10, 1 << 30}, {"--max-piece-length", 1, 512},
                        {"--seed", 0, 0x7fffffffffffffffL}, {"--threads", 0, 1024}};
            int k = 0, nk = (int)(sizeof ints / sizeof ints[0]);
            while (k < nk && strcmp(a, ints[k].flag))
                k++;
            if (k == nk) {
                cli_error("unknown option '%s' (see qkv vocab train --help)", a);
                goto done;
            }
            if (!parse_long(a, v, ints[k].lo, ints[k].hi, &n))
                goto done;
            i++;
            switch (k) {
            case 0: o.vocab_size = (int)n; break;
            case 1: o.unk_id = (int)n; break;
            case 2: o.bos_id = (int)n; break;
            case 3: o.eos_id = (int)n; break;
            case 4: o.pad_id = (int)n; break;
            case 5: o.max_sentences = n; break;
            case 6: o.max_sentence_bytes = (int)n; break;
            case 7: o.max_piece_length = (int)n; break;
            case 8: o.seed = (uint64_t)n; break;
            default: o.threads = (int)n; break;
            }
        }
    }
    if (n_inputs == 0 || !out) {
        cli_error("--input and --out are required (see qkv vocab train --help)");
        goto done;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!quiet) {
        o.progress = progress;
        o.progress_ctx = &t0;
    }
    if (qkv_vocab_train(&o, inputs, n_inputs, out) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    if (!quiet)
        progress(&t0, "wrote model and vocab");
    rc = 0;
done:
    free(inputs);
    free(symbols);
    free(symbol_buf);
    return rc;
}
