/* Writes a qkv model and its tokenizer as a Hugging Face Marian directory
 * that transformers' MarianMTModel / MarianTokenizer load (see marian.h for
 * the layout). Keep in sync with the reader in marian.c: a directory
 * written here must load back there with the same parameters. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/io.h"
#include "base/status.h"
#include "formats/marian.h"
#include "formats/safetensors.h"
#include "text/spm.h"

static qkv_status write_json(const char *dir, const char *name, cJSON *j)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text)
        return qkv_fail(QKV_ERR_NOMEM, "marian export: out of memory");
    size_t n = strlen(text);
    text[n] = 0;
    qkv_status s = qkv_write_file(path, text, n);
    free(text);
    return s;
}

static const char *activation_name(qkv_activation a)
{
    return a == QKV_ACT_SWISH ? "swish" : a == QKV_ACT_GELU ? "gelu" : "relu";
}

/* What MarianMTModel runs: refuse what it cannot express. */
static qkv_status check_exportable(const qkv_model_config *c)
{
    if (c->norm != QKV_NORM_POST || c->final_norm)
        return qkv_fail(QKV_ERR_UNSUPPORTED, "marian export: MarianMTModel is post-norm without final layer norms; "
                                             "this model is %s%s",
                        c->norm == QKV_NORM_PRE ? "pre-norm" : "post-norm", c->final_norm ? " with final norms" : "");
    if (fabsf(c->layer_norm_eps - 1e-5f) > 1e-12f)
        return qkv_fail(QKV_ERR_UNSUPPORTED, "marian export: MarianMTModel's layer norms use eps 1e-5, this model %g",
                        (double)c->layer_norm_eps);
    if (c->tie_output_embeddings && c->src_vocab_size != c->tgt_vocab_size)
        return qkv_fail(QKV_ERR_UNSUPPORTED,
                        "marian export: tied output embeddings need equal vocabularies in transformers (%d vs %d)",
                        c->src_vocab_size, c->tgt_vocab_size);
    if (!c->tie_encoder_decoder_embeddings && c->src_vocab_size < c->tgt_vocab_size)
        return qkv_fail(QKV_ERR_UNSUPPORTED,
                        "marian export: transformers gives the decoder embedding vocab_size rows, so the target "
                        "vocabulary (%d) cannot exceed the source one (%d)",
                        c->tgt_vocab_size, c->src_vocab_size);
    return QKV_OK;
}

/* Marian puts <pad> last (a converted OPUS-MT vocabulary is Marian's plus
 * "<pad>" appended), and ct2-transformers-converter relies on it: it drops
 * the last row of every vocabulary matrix and starts decoding from a zero
 * vector. A model with a dedicated pad id elsewhere (qkv train's vocabularies
 * put it at 3) is written with pad moved to the end and the ids after it
 * moved down by one; vocab.json carries the new ids, so MarianTokenizer,
 * transformers and qkv's reader see the same model. Only where both
 * vocabularies have one size (transformers has one pad_token_id) and pad is
 * nothing else (not eos, unk or an id the tokenizer lacks). */
typedef struct {
    int pad; /* the pad id to move to the end; -1: ids are kept */
    int n;   /* vocabulary size */
} id_map;

static int hf_id(const id_map *map, int id)
{
    if (map->pad < 0 || id < map->pad)
        return id;
    return id == map->pad ? map->n - 1 : id - 1;
}

static id_map pad_last_map(const qkv_model_config *c, const qkv_tokenizer *t)
{
    id_map map = {-1, c->tgt_vocab_size};
    int V = c->src_vocab_size, pad = c->pad_id;
    if (c->tgt_vocab_size != V || pad >= V - 1 || pad == c->eos_id)
        return map;
    if (qkv_tokenizer_is_marian(t)) {
        if (pad == qkv_tokenizer_unk_id(t))
            return map;
    } else {
        const qkv_vocab *sv = qkv_tokenizer_source_spm(t), *tv = qkv_tokenizer_target_spm(t);
        if (pad == qkv_vocab_unk_id(sv) || pad == qkv_vocab_unk_id(tv) || pad >= qkv_vocab_size(sv) ||
            pad >= qkv_vocab_size(tv))
            return map;
    }
    map.pad = pad;
    return map;
}

/* rows [n, C] of src written in hf_id order into dst */
static void permute_rows(float *dst, const float *src, const id_map *map, int n, size_t C)
{
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)hf_id(map, i) * C, src + (size_t)i * C, C * sizeof *dst);
}

static cJSON *config_json(const qkv_model_config *c, const id_map *map)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("MarianMTModel"));
    cJSON_AddStringToObject(j, "model_type", "marian");
    cJSON_AddNumberToObject(j, "vocab_size", c->src_vocab_size);
    cJSON_AddNumberToObject(j, "decoder_vocab_size", c->tgt_vocab_size);
    cJSON_AddNumberToObject(j, "d_model", c->d_model);
    cJSON_AddNumberToObject(j, "encoder_layers", c->encoder_layers);
    cJSON_AddNumberToObject(j, "decoder_layers", c->decoder_layers);
    cJSON_AddNumberToObject(j, "encoder_attention_heads", c->encoder_heads);
    cJSON_AddNumberToObject(j, "decoder_attention_heads", c->decoder_heads);
    cJSON_AddNumberToObject(j, "encoder_ffn_dim", c->encoder_d_ff);
    cJSON_AddNumberToObject(j, "decoder_ffn_dim", c->decoder_d_ff);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_positions);
    cJSON_AddStringToObject(j, "activation_function", activation_name(c->activation));
    cJSON_AddBoolToObject(j, "scale_embedding", c->scale_embedding);
    cJSON_AddBoolToObject(j, "share_encoder_decoder_embeddings", c->tie_encoder_decoder_embeddings);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_output_embeddings);
    cJSON_AddNumberToObject(j, "pad_token_id", hf_id(map, c->pad_id));
    cJSON_AddNumberToObject(j, "eos_token_id", hf_id(map, c->eos_id));
    cJSON_AddNumberToObject(j, "decoder_start_token_id", hf_id(map, c->decoder_start_id));
    cJSON_AddNumberToObject(j, "forced_eos_token_id", hf_id(map, c->eos_id));
    cJSON_AddNumberToObject(j, "dropout", c->dropout);
    cJSON_AddNumberToObject(j, "attention_dropout", c->attention_dropout);
    cJSON_AddNumberToObject(j, "activation_dropout", c->activation_dropout);
    cJSON_AddBoolToObject(j, "is_encoder_decoder", 1);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    return j;
}

static cJSON *generation_json(const qkv_model_config *c, const marian_generation *g, const id_map *map)
{
    cJSON *j = cJSON_CreateObject();
    int max_length = g ? g->max_length : (c->max_positions < 512 ? c->max_positions : 512);
    cJSON_AddNumberToObject(j, "max_length", max_length);
    cJSON_AddNumberToObject(j, "num_beams", g ? g->num_beams : 4);
    if (g && g->min_length)
        cJSON_AddNumberToObject(j, "min_length", g->min_length);
    if (g && g->length_penalty != 1.0f)
        cJSON_AddNumberToObject(j, "length_penalty", g->length_penalty);
    if (g && g->no_repeat_ngram_size)
        cJSON_AddNumberToObject(j, "no_repeat_ngram_size", g->no_repeat_ngram_size);
    if (g && g->early_stopping)
        cJSON_AddItemToObject(j, "early_stopping",
                              g->early_stopping == 2 ? cJSON_CreateString("never") : cJSON_CreateTrue());
    cJSON *bad = cJSON_AddArrayToObject(j, "bad_words_ids");
    if (g) {
        for (int i = 0, k = 0; i < g->n_bad_words; k += g->bad_words_len[i], i++) {
            cJSON *seq = cJSON_CreateArray();
            for (int w = 0; w < g->bad_words_len[i]; w++)
                cJSON_AddItemToArray(seq, cJSON_CreateNumber(hf_id(map, g->bad_words_ids[k + w])));
            cJSON_AddItemToArray(bad, seq);
        }
    } else {
        int pad = hf_id(map, c->pad_id);
        cJSON_AddItemToArray(bad, cJSON_CreateIntArray(&pad, 1)); /* pad is never generated */
    }
    cJSON_AddNumberToObject(j, "pad_token_id", hf_id(map, c->pad_id));
    cJSON_AddNumberToObject(j, "eos_token_id", hf_id(map, c->eos_id));
    cJSON_AddNumberToObject(j, "decoder_start_token_id", hf_id(map, c->decoder_start_id));
    int forced = g ? g->forced_eos_token_id : c->eos_id;
    cJSON_AddNumberToObject(j, "forced_eos_token_id", forced >= 0 ? hf_id(map, forced) : forced);
    return j;
}

/* vocab.json: id order, every id that has a piece. A pad id without a
 * piece is the one qkv train appends after a vocabulary that has none (as
 * Marian does): it becomes "<pad>", which MarianTokenizer requires. */
static cJSON *vocab_json(const qkv_tokenizer *t, int target, int n, int pad_id, const id_map *map)
{
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < n; i++) {
        const char *p = target ? qkv_tokenizer_target_piece(t, i) : qkv_tokenizer_source_piece(t, i);
        if (!p && i == pad_id)
            p = "<pad>";
        if (p && !cJSON_GetObjectItemCaseSensitive(j, p))
            cJSON_AddNumberToObject(j, p, hf_id(map, i));
    }
    return j;
}

static int is_vocab_matrix(const char *name)
{
    return !strcmp(name, "model.shared.weight") || !strcmp(name, "encoder.embed_tokens.weight") ||
           !strcmp(name, "decoder.embed_tokens.weight") || !strcmp(name, "lm_head.weight") ||
           !strcmp(name, "final_logits_bias");
}

static qkv_status write_weights(qkv_model *m, const char *dir, const id_map *map)
{
    const qkv_model_config *c = qkv_model_get_config(m);
    int n = qkv_model_num_tensors(m);
    st_write_tensor *w = calloc((size_t)n + 2, sizeof *w);
    char (*names)[200] = calloc((size_t)n + 2, sizeof *names);
    float **moved = calloc((size_t)n, sizeof *moved); /* the tensors written in hf_id order */
    float *bias = NULL, *dec_embed = NULL;
    qkv_status s = QKV_OK;
    if (!w || !names || !moved) {
        s = qkv_fail(QKV_ERR_NOMEM, "marian export: out of memory");
        goto done;
    }
    const float *P = qkv_model_params(m);
    int k = 0, has_bias = 0;
    for (int i = 0; i < n; i++) {
        qkv_tensor_info info;
        qkv_model_tensor(m, i, &info);
        const char *nm = info.name;
        /* keep in sync with hf_names() in marian.c */
        if (!strcmp(nm, "model.shared.weight") || !strcmp(nm, "lm_head.weight") || !strcmp(nm, "final_logits_bias"))
            snprintf(names[k], 200, "%s", nm);
        else
            snprintf(names[k], 200, "model.%s", nm);
        w[k].name = names[k];
        w[k].dtype = ST_F32;
        w[k].ndim = info.ndim;
        w[k].shape[0] = info.shape[0];
        w[k].shape[1] = info.shape[1];
        w[k].data = P + info.offset;
        if (map->pad >= 0 && is_vocab_matrix(nm)) {
            size_t C = info.ndim == 2 ? (size_t)info.shape[1] : 1;
            moved[i] = malloc(info.size * sizeof **moved);
            if (!moved[i]) {
                s = qkv_fail(QKV_ERR_NOMEM, "marian export: out of memory");
                goto done;
            }
            permute_rows(moved[i], P + info.offset, map, (int)info.shape[0], C);
            w[k].data = moved[i];
        }
        if (!strcmp(nm, "final_logits_bias")) {
            w[k].ndim = 2; /* a [1, V] buffer in transformers */
            w[k].shape[0] = 1;
            w[k].shape[1] = info.shape[0];
            has_bias = 1;
        }
        if (!strcmp(nm, "decoder.embed_tokens.weight") && c->src_vocab_size > c->tgt_vocab_size) {
            /* vocab_size rows in transformers; the rows past the target
             * vocabulary are never looked up */
            size_t rows = (size_t)c->src_vocab_size, C = (size_t)c->d_model;
            dec_embed = calloc(rows * C, sizeof *dec_embed);
            if (!dec_embed) {
                s = qkv_fail(QKV_ERR_NOMEM, "marian export: out of memory");
                goto done;
            }
            memcpy(dec_embed, P + info.offset, info.size * sizeof *dec_embed);
            w[k].shape[0] = (int64_t)rows;
            w[k].data = dec_embed;
        }
        k++;
    }
    if (!has_bias) {
        bias = calloc((size_t)c->tgt_vocab_size, sizeof *bias);
        if (!bias) {
            s = qkv_fail(QKV_ERR_NOMEM, "marian export: out of memory");
            goto done;
        }
        w[k] = (st_write_tensor){.name = "final_logits_bias", .dtype = ST_F32, .ndim = 2,
                                 .shape = {1, c->tgt_vocab_size}, .data = bias};
        k++;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const char *meta[] = {"format", "pt"};
    s = st_write(path, w, k, meta, 1);
done:
    for (int i = 0; moved && i < n; i++)
        free(moved[i]);
    free(moved);
    free(w);
    free(names);
    free(bias);
    free(dec_embed);
    return s;
}

qkv_status marian_export(qkv_model *m, const qkv_tokenizer *tok, const marian_generation *gen, const char *dir)
{
    const qkv_model_config *c = qkv_model_get_config(m);
    QKV_TRY(check_exportable(c));
    int shared = qkv_tokenizer_shared_vocab(tok);
    if (qkv_tokenizer_src_vocab_size(tok) > c->src_vocab_size || qkv_tokenizer_tgt_vocab_size(tok) > c->tgt_vocab_size)
        return qkv_fail(QKV_ERR_ARG, "marian export: the tokenizer's ids (%d, %d) exceed the model's vocabularies "
                                     "(%d, %d)",
                        qkv_tokenizer_src_vocab_size(tok), qkv_tokenizer_tgt_vocab_size(tok), c->src_vocab_size,
                        c->tgt_vocab_size);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return qkv_fail(QKV_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
    id_map map = pad_last_map(c, tok);
    QKV_TRY(write_json(dir, "config.json", config_json(c, &map)));
    QKV_TRY(write_json(dir, "generation_config.json", generation_json(c, gen, &map)));
    QKV_TRY(write_weights(m, dir, &map));
    char path[4096];
    snprintf(path, sizeof path, "%s/source.spm", dir);
    QKV_TRY(spm_model_write(&qkv_tokenizer_source_spm(tok)->m, path));
    snprintf(path, sizeof path, "%s/target.spm", dir);
    QKV_TRY(spm_model_write(&qkv_tokenizer_target_spm(tok)->m, path));
    QKV_TRY(write_json(dir, "vocab.json", vocab_json(tok, 0, c->src_vocab_size, c->pad_id, &map)));
    if (!shared)
        QKV_TRY(write_json(dir, "target_vocab.json", vocab_json(tok, 1, c->tgt_vocab_size, c->pad_id, &map)));
    const char *eos, *unk, *pad;
    int cleanup;
    qkv_tokenizer_special_names(tok, &eos, &unk, &pad, &cleanup);
    if (!eos) {
        /* spm ids: the special tokens are the pieces at the model's ids */
        const qkv_vocab *v = qkv_tokenizer_source_spm(tok);
        eos = qkv_vocab_piece(v, c->eos_id);
        pad = qkv_vocab_piece(v, c->pad_id);
        if (!pad && c->pad_id >= qkv_vocab_size(v))
            pad = "<pad>"; /* appended after the vocabulary: vocab_json's name */
        unk = qkv_vocab_piece(v, qkv_vocab_unk_id(v));
        cleanup = 0; /* spm decode alone, as qkv does for its own models */
    }
    if (!eos || !pad || !unk)
        return qkv_fail(QKV_ERR_ARG, "marian export: the model's eos / pad ids have no piece in the vocabulary");
    cJSON *tc = cJSON_CreateObject();
    cJSON_AddStringToObject(tc, "tokenizer_class", "MarianTokenizer");
    cJSON_AddStringToObject(tc, "eos_token", eos);
    cJSON_AddStringToObject(tc, "unk_token", unk);
    cJSON_AddStringToObject(tc, "pad_token", pad);
    cJSON_AddBoolToObject(tc, "separate_vocabs", !shared);
    cJSON_AddBoolToObject(tc, "clean_up_tokenization_spaces", cleanup);
    cJSON_AddNumberToObject(tc, "model_max_length", c->max_positions);
    return write_json(dir, "tokenizer_config.json", tc);
}
