/* qkv: the command-line program. Dispatches to one cli/cmd_*.c per subcommand. */
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "qkv.h"

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("qkv: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char info[1024];
    qkv_system_info(info, sizeof info);
    printf("qkv %s\n%s", QKV_VERSION_STRING, info);
    return 0;
}

static int cmd_help(int argc, char **argv);
int cmd_vocab_train(int argc, char **argv); /* cli/cmd_vocab_train.c */
int cmd_vocab_encode(int argc, char **argv); /* cli/cmd_vocab.c */
int cmd_vocab_decode(int argc, char **argv); /* cli/cmd_vocab.c */

int cmd_score_bleu(int argc, char **argv); /* cli/cmd_eval.c */
int cmd_eval(int argc, char **argv);       /* cli/cmd_eval.c */
int cmd_plot(int argc, char **argv);       /* cli/cmd_plot.c */
int cmd_corpus(int argc, char **argv);     /* cli/cmd_corpus.c */
int cmd_export(int argc, char **argv);     /* cli/cmd_export.c */
int cmd_train(int argc, char **argv);      /* cli/cmd_train.c */
int cmd_info(int argc, char **argv);       /* cli/cmd_info.c */
int cmd_average(int argc, char **argv);    /* cli/cmd_average.c */
int cmd_quantize(int argc, char **argv);   /* cli/cmd_quantize.c */
int cmd_translate(int argc, char **argv);  /* cli/cmd_translate.c */
int cmd_score(int argc, char **argv);      /* cli/cmd_score.c */
int cmd_attn(int argc, char **argv);       /* cli/cmd_attn.c */
int cmd_protect(int argc, char **argv);    /* cli/cmd_protect.c */
int cmd_translate_po(int argc, char **argv); /* cli/cmd_translate_po.c */
int cmd_serve(int argc, char **argv);      /* cli/cmd_serve.c */
int cmd_embed(int argc, char **argv);      /* cli/cmd_embed.c */
int cmd_similarity(int argc, char **argv); /* cli/cmd_search.c */
int cmd_search(int argc, char **argv);     /* cli/cmd_search.c */
int cmd_classify(int argc, char **argv);   /* cli/cmd_classify.c */

/* One line per subcommand; keep the help texts short, each command has --help.
 * A name may be two words ("vocab encode"): it then matches argv[1] argv[2]
 * and the command receives argv from the second word on. */
static const struct {
    const char *name;
    qkv_command_fn fn;
    const char *help;
} commands[] = {
    {"help", cmd_help, "list the commands"},
    {"version", cmd_version, "print the version"},
    {"vocab encode", cmd_vocab_encode, "text to SentencePiece pieces or ids, line by line (as spm_encode)"},
    {"vocab decode", cmd_vocab_decode, "SentencePiece pieces or ids back to text, line by line (as spm_decode)"},
    {"vocab train", cmd_vocab_train, "train a SentencePiece-compatible vocabulary (unigram or BPE)"},
    {"score-bleu", cmd_score_bleu, "corpus BLEU of a hypothesis file, as sacreBLEU computes it"},
    {"eval", cmd_eval, "BLEU, chrF and chrF++ of a hypothesis file against references"},
    {"plot", cmd_plot, "training curves (SVG) from a JSONL training log"},
    {"train", cmd_train, "train a translation model on parallel text"},
    {"info", cmd_info, "describe a qkv checkpoint"},
    {"average", cmd_average, "average the parameters of several checkpoints"},
    {"quantize", cmd_quantize, "write a checkpoint with int8 or bfloat16 decoder weights (smaller, same as --compute-type)"},
    {"corpus", cmd_corpus, "build a parallel corpus from Debian's translation catalogs"},
    {"export", cmd_export, "write a model as a Hugging Face Marian directory (--format hf)"},
    {"translate", cmd_translate, "translate text: greedy, beam search or sampling (qkv or Marian models)"},
    {"score", cmd_score, "log-probability of given translations under a model"},
    {"attn", cmd_attn, "cross-attention heatmap (SVG) of one sentence"},
    {"translate-po", cmd_translate_po, "machine-translate a gettext .po/.pot catalog, everything else kept byte for byte"},
    {"protect", cmd_protect, "placeholders and tags: sentinels for training data, kept rate of translations"},
    {"serve", cmd_serve, "HTTP translation server (LibreTranslate API) and the attention explorer"},
    {"embed", cmd_embed, "sentence embeddings (BERT-family encoders or a translation encoder)"},
    {"similarity", cmd_similarity, "cosine similarity of each pair of lines of two files"},
    {"search", cmd_search, "nearest corpus lines of each query, by cosine of embeddings"},
    {"classify", cmd_classify, "train, apply and evaluate a classifier on sentence embeddings"},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("usage: qkv COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-12s %s\n", commands[i].name, commands[i].help);
    return 0;
}

int main(int argc, char **argv)
{
    if (qkv_kernels_check() != QKV_OK)
        return cli_error("%s", qkv_last_error()), 2;
    if (argc < 2)
        return cmd_help(argc, argv), 2;
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h"))
        return cmd_help(argc, argv);
    if (!strcmp(name, "--version"))
        return cmd_version(argc, argv);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const char *cn = commands[i].name, *space = strchr(cn, ' ');
        if (!space && !strcmp(cn, name))
            return commands[i].fn(argc - 1, argv + 1);
        if (space && argc > 2 && strlen(name) == (size_t)(space - cn) && !strncmp(cn, name, space - cn) &&
            !strcmp(space + 1, argv[2]))
            return commands[i].fn(argc - 2, argv + 2);
    }
    int group = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const char *cn = commands[i].name, *space = strchr(cn, ' ');
        group |= space && strlen(name) == (size_t)(space - cn) && !strncmp(cn, name, space - cn);
    }
    if (group)
        return cli_error("'%s' needs a subcommand (try 'qkv help')", name);
    return cli_error("unknown command '%s' (try 'qkv help')", name);
}
