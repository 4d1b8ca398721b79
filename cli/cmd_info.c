/* qkv info FILE: what a checkpoint holds (sections, configuration,
 * vocabularies, parameter count, training state). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "qkv.h"
#include "train/checkpoint.h"
#include "train/model_io.h"

static void print_json_section(const char *title, const ckpt_section *s)
{
    cJSON *j = cJSON_ParseWithLength(s->data, s->nbytes);
    char *txt = j ? cJSON_Print(j) : NULL;
    if (txt)
        printf("%s:\n%s\n", title, txt);
    else
        printf("%s: (not valid JSON)\n", title);
    free(txt);
    cJSON_Delete(j);
}

static void print_vocab(const char *title, const ckpt_section *s)
{
    qkv_vocab *v = NULL;
    if (qkv_vocab_load_memory(s->data, s->nbytes, &v) != QKV_OK) {
        printf("%s: unreadable SentencePiece model: %s\n", title, qkv_last_error());
        return;
    }
    printf("%s: SentencePiece model, %d pieces (unk %d, bos %d, eos %d, pad %d)\n", title, qkv_vocab_size(v),
           qkv_vocab_unk_id(v), qkv_vocab_bos_id(v), qkv_vocab_eos_id(v), qkv_vocab_pad_id(v));
    qkv_vocab_free(v);
}


int cmd_info(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs("usage: qkv info FILE.qkv\n", argc == 2 ? stdout : stderr);
        return argc == 2 ? 0 : 2;
    }
    ckpt_file f;
    if (ckpt_read(argv[1], &f) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    printf("file: %s\nformat: qkv checkpoint version %u, %d sections, checksum ok\n", argv[1], f.version,
           f.n_sections);
    for (int i = 0; i < f.n_sections; i++)
        printf("  %-16s %12zu bytes\n", f.sections[i].tag, f.sections[i].nbytes);
    const ckpt_section *s;
    if ((s = ckpt_find(&f, "config")))
        print_json_section("config", s);
    if ((s = ckpt_find(&f, "params")))
        printf("parameters: %zu (float32)\n", s->nbytes / sizeof(float));
    if ((s = ckpt_find(&f, "quant"))) {
        printf("compute type: %s (qkv quantize: the linear layers stored so; its default type)\n",
               qkv_checkpoint_compute_type(&f));
        print_json_section("quantization", s);
    } else {
        printf("compute type: float32\n");
    }
    if ((s = ckpt_find(&f, "src_vocab")))
        print_vocab(ckpt_find(&f, "tgt_vocab") ? "source vocabulary" : "vocabulary (shared)", s);
    if ((s = ckpt_find(&f, "tgt_vocab")))
        print_vocab("target vocabulary", s);
    if ((s = ckpt_find(&f, "train")))
        print_json_section("training state", s);
    printf("optimizer state: %s\n", ckpt_find(&f, "adam_m") ? "present (resumable)" : "absent (model only)");
    ckpt_free(&f);
    return 0;
}
