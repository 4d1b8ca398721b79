/* qkv classify train|predict|eval: a linear softmax head on frozen sentence
 * embeddings (the library's qkv_classifier_*). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "commands.h"
#include "data/labels.h"
#include "embed_args.h"
#include "qkv.h"

static const char usage[] =
    "usage: qkv classify train -m ENCODER --train F.tsv [--dev F.tsv] --out CLF.qkv [OPTIONS]\n"
    "       qkv classify predict -m CLF.qkv [--input F] < texts\n"
    "       qkv classify eval -m CLF.qkv [--test F.tsv] [--split NAME]\n"
    "  ENCODER is any model qkv embed reads. A labelled file is either a labels.tsv, as qkv corpus writes\n"
    "  it (the package of each English message): a header line split<TAB>label<TAB>text, then\n"
    "  train|dev|test<TAB>LABEL<TAB>TEXT rows, of which --train reads the train rows, --dev the dev rows\n"
    "  and --test the test rows; or, without that header, LABEL<TAB>TEXT lines, all of them read (the\n"
    "  per-split {train,dev,test}.labels.tsv that qkv corpus also writes). train embeds the texts once,\n"
    "  fits W e + b with AdamW on cross-entropy (seeded) and keeps the epoch of best dev accuracy (the\n"
    "  last without --dev). predict prints LABEL<TAB>PROBABILITY per line; eval prints accuracy and\n"
    "  macro-F1 (scikit-learn's definition) of a labelled file (stdin without --test).\n"
    "\n"
    "  --epochs N          passes over the training set (default 30)\n"
    "  --lr X              AdamW learning rate (default 0.01)\n"
    "  --weight-decay X    (default 1e-4)\n"
    "  --head-batch N      examples per update (default 64)\n"
    "  --seed S            initialisation and shuffling (default 1)\n"
    "  --split NAME        read NAME's rows (train, dev or test) of a labels.tsv instead: the --train\n"
    "                      file's for train, the --test file's for eval (--dev always reads dev)\n"
    "  -q, --quiet         no per-epoch lines on stderr\n"
    "  Embedding options as qkv embed (train only; stored in the classifier): --pooling, --normalize,\n"
    "  --no-normalize, --max-length, --batch-size, --threads.\n";

/* The whole of stdin, NUL-terminated, malloc'ed; NULL after printing an error. */
static char *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap)
            break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb)
            free(buf);
        buf = nb;
        cap *= 2;
    }
    if (!buf)
        return cli_error("stdin: out of memory"), NULL;
    if (ferror(stdin)) {
        free(buf);
        return cli_error("stdin: read error"), NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Reads the labelled file at path ("-": stdin): the rows of split from a
 * labels.tsv, every row of a LABEL<TAB>TEXT file (data/labels.h).
 * split_given: --split named it, which a file without splits refuses. */
static int read_labelled(const char *path, const char *split, int split_given, labels_set *out)
{
    memset(out, 0, sizeof *out);
    const char *name = strcmp(path, "-") ? path : "stdin";
    char *text;
    size_t len;
    if (!strcmp(path, "-")) {
        if (!(text = read_stdin(&len)))
            return 0;
    } else if (qkv_read_file(path, &text, &len) != QKV_OK) {
        return cli_error("%s", qkv_last_error()), 0;
    }
    if (labels_parse(out, text, len, name, split) != QKV_OK)
        return cli_error("%s", qkv_last_error()), 0;
    if (split_given && !out->has_splits) {
        labels_free(out);
        return cli_error("%s: --split %s, but the file has no splits (its first line is not the labels.tsv header "
                         "'split<TAB>label<TAB>text')", name, split), 0;
    }
    return 1;
}

static void progress(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "qkv classify: %s\n", line);
}

static int parse_num(const char *a, const char *v, double lo, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo))
        return cli_error("%s: invalid value '%s'", a, v), 0;
    *out = x;
    return 1;
}

int cmd_classify(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    const char *mode = argv[1];
    int m_train = !strcmp(mode, "train"), m_pred = !strcmp(mode, "predict"), m_eval = !strcmp(mode, "eval");
    if (!m_train && !m_pred && !m_eval)
        return cli_error("classify: unknown mode '%s' (train, predict or eval)", mode);
    const char *model = NULL, *train = NULL, *dev = NULL, *outp = NULL, *input = NULL, *test = NULL, *split = NULL;
    int quiet = 0;
    qkv_classify_options o = qkv_classify_default_options();
    o.progress = progress;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        int r = m_train ? cli_embed_option(&o.embed, argc, argv, &i) : 0;
        if (r < 0)
            return 1;
        if (r)
            continue;
        if (i + 1 >= argc)
            return cli_error("%s needs a value (see qkv classify --help)", a);
        const char *v = argv[i + 1];
        double x;
        if (m_train && (!strcmp(a, "--epochs") || !strcmp(a, "--head-batch") || !strcmp(a, "--seed") ||
                        !strcmp(a, "--lr") || !strcmp(a, "--weight-decay"))) {
            if (!parse_num(a, v, !strcmp(a, "--weight-decay") || !strcmp(a, "--seed") ? 0 : 1e-12, &x))
                return 1;
            if (!strcmp(a, "--epochs"))
                o.epochs = (int)x;
            else if (!strcmp(a, "--head-batch"))
                o.batch_size = (int)x;
            else if (!strcmp(a, "--seed"))
                o.seed = (uint64_t)x;
            else if (!strcmp(a, "--lr"))
                o.lr = (float)x;
            else
                o.weight_decay = (float)x;
            i++;
            continue;
        }
        const char **dst = !strcmp(a, "-m") || !strcmp(a, "--model")              ? &model
                           : m_train && !strcmp(a, "--train")                      ? &train
                           : m_train && !strcmp(a, "--dev")                        ? &dev
                           : m_train && (!strcmp(a, "--out") || !strcmp(a, "-o")) ? &outp
                           : m_pred && (!strcmp(a, "--input") || !strcmp(a, "-i")) ? &input
                           : m_eval && !strcmp(a, "--test")                        ? &test
                           : (m_train || m_eval) && !strcmp(a, "--split")          ? &split
                                                                                   : NULL;
        if (!dst)
            return cli_error("classify %s: unknown option '%s' (see qkv classify --help)", mode, a);
        *dst = v;
        i++;
    }
    if (quiet)
        o.progress = NULL;
    if (!model)
        return cli_error("classify %s: -m is required", mode);
    if (split && !labels_split_valid(split))
        return cli_error("classify %s: --split wants train, dev or test, got '%s'", mode, split);
    if (m_train) {
        if (!train || !outp)
            return cli_error("classify train: --train F.tsv and --out CLF.qkv are required");
        labels_set tr, dv = {0};
        int ok = read_labelled(train, split ? split : "train", split != NULL, &tr) &&
                 (!dev || read_labelled(dev, "dev", 0, &dv));
        qkv_classifier *c = NULL;
        if (ok && qkv_classifier_train(model, (const char *const *)tr.texts, (const char *const *)tr.labels, tr.n,
                                       (const char *const *)dv.texts, (const char *const *)dv.labels, dv.n, &o,
                                       &c) != QKV_OK)
            ok = cli_error("%s", qkv_last_error()) == 0;
        if (ok && qkv_classifier_save(c, outp) != QKV_OK)
            ok = cli_error("%s", qkv_last_error()) == 0;
        if (ok && !quiet)
            fprintf(stderr, "qkv classify: %d labels, wrote %s\n", qkv_classifier_num_labels(c), outp);
        qkv_classifier_free(c);
        labels_free(&tr);
        labels_free(&dv);
        return ok ? 0 : 1;
    }
    qkv_classifier *c;
    if (qkv_classifier_load(model, &c) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    int rc = 1;
    labels_set ev = {0};
    cli_lines in = {0};
    char **texts = NULL;
    int n = 0;
    if (m_pred && cli_read_lines_path(input ? input : "-", &in)) {
        texts = in.lines;
        n = in.n;
    } else if (m_eval && read_labelled(test ? test : "-", split ? split : "test", split != NULL, &ev)) {
        texts = ev.texts;
        n = ev.n;
    }
    int *lab = malloc(((size_t)n + 1) * sizeof *lab);
    float *prob = malloc(((size_t)n + 1) * sizeof *prob);
    if (texts && lab && prob) {
        if (qkv_classifier_predict(c, (const char *const *)texts, n, lab, prob, NULL) != QKV_OK) {
            cli_error("%s", qkv_last_error());
        } else if (m_pred) {
            for (int i = 0; i < n; i++)
                printf("%s\t%.6f\n", qkv_classifier_label(c, lab[i]), (double)prob[i]);
            rc = 0;
        } else {
            const char **pred = malloc(((size_t)n + 1) * sizeof *pred);
            if (pred) {
                for (int i = 0; i < n; i++)
                    pred[i] = qkv_classifier_label(c, lab[i]);
                double acc, f1;
                qkv_classify_scores((const char *const *)ev.labels, pred, n, &acc, &f1);
                printf("examples\t%d\naccuracy\t%.4f\nmacro_f1\t%.4f\n", n, acc, f1);
                rc = 0;
                free(pred);
            }
        }
        if (!rc && (fflush(stdout) || ferror(stdout)))
            rc = cli_error("stdout: write error");
    }
    free(lab), free(prob);
    labels_free(&ev);
    cli_lines_free(&in);
    qkv_classifier_free(c);
    return rc;
}
