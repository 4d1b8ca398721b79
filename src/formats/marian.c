/* Hugging Face Marian directories: config.json -> qkv_model_config and
 * generation defaults, model.safetensors -> parameters. See marian.h. */
#include "formats/marian.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "formats/safetensors.h"
#include "kernels/kernels.h"

/* ---- small helpers ---------------------------------------------------------- */

static int file_exists(const char *dir, const char *name)
{
    char *p = qkv_path_join(dir, name);
    FILE *f = p ? fopen(p, "rb") : NULL;
    if (f)
        fclose(f);
    free(p);
    return f != NULL;
}

static qkv_status read_json(const char *path, cJSON **out)
{
    char *data;
    size_t len;
    *out = NULL;
    QKV_TRY(qkv_read_file(path, &data, &len));
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    size_t off = end ? (size_t)(end - data) : 0;
    free(data);
    if (!j)
        return qkv_fail(QKV_ERR_FORMAT, "%s: invalid JSON near byte %zu", path, off);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return qkv_fail(QKV_ERR_FORMAT, "%s: expected a JSON object", path);
    }
    *out = j;
    return QKV_OK;
}

static const cJSON *field(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL; /* null means "default" in HF configs */
}

static qkv_status get_int(const cJSON *o, const char *path, const char *key, int *out)
{
    const cJSON *v = field(o, key);
    if (!v)
        return QKV_OK;
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
        return qkv_fail(QKV_ERR_CONFIG, "%s: field '%s': expected an integer", path, key);
    *out = (int)d;
    return QKV_OK;
}

static qkv_status get_float(const cJSON *o, const char *path, const char *key, float *out)
{
    const cJSON *v = field(o, key);
    if (!v)
        return QKV_OK;
    if (!cJSON_IsNumber(v))
        return qkv_fail(QKV_ERR_CONFIG, "%s: field '%s': expected a number", path, key);
    *out = (float)v->valuedouble;
    return QKV_OK;
}

static qkv_status get_bool(const cJSON *o, const char *path, const char *key, int *out)
{
    const cJSON *v = field(o, key);
    if (!v)
        return QKV_OK;
    if (!cJSON_IsBool(v))
        return qkv_fail(QKV_ERR_CONFIG, "%s: field '%s': expected true or false", path, key);
    *out = cJSON_IsTrue(v);
    return QKV_OK;
}

/* ---- config.json ---------------------------------------------------------------- */

/* Bart-era fields that old OPUS-MT config.json files carry and that
 * transformers' MarianMTModel ignores (it always runs post-norm, no
 * embedding layer norm, no final layer norm, static positions). Their
 * usual values are accepted; any other value describes a model that
 * MarianMTModel does not run, so it is refused rather than guessed at. */
static const struct {
    const char *key;
    int usual;
} legacy[] = {
    {"normalize_before", 0}, {"normalize_embedding", 0},        {"add_final_layer_norm", 0},
    {"add_bias_logits", 0},  {"static_position_embeddings", 1},
};

static qkv_status map_activation(const cJSON *o, const char *path, qkv_activation *out)
{
    const cJSON *v = field(o, "activation_function");
    if (!v) {
        *out = QKV_ACT_GELU; /* MarianConfig's default */
        return QKV_OK;
    }
    if (!cJSON_IsString(v))
        return qkv_fail(QKV_ERR_CONFIG, "%s: field 'activation_function': expected a string", path);
    const char *s = v->valuestring;
    /* transformers' ACT2FN: swish and silu are x * sigmoid(x); gelu and
     * gelu_python the exact erf form */
    if (!strcmp(s, "swish") || !strcmp(s, "silu"))
        *out = QKV_ACT_SWISH;
    else if (!strcmp(s, "gelu") || !strcmp(s, "gelu_python"))
        *out = QKV_ACT_GELU;
    else if (!strcmp(s, "relu"))
        *out = QKV_ACT_RELU;
    else
        return qkv_fail(QKV_ERR_UNSUPPORTED,
                        "%s: field 'activation_function': \"%s\" is not supported (expected swish, silu, gelu, "
                        "gelu_python or relu)",
                        path, s);
    return QKV_OK;
}

static qkv_status read_bad_words(const cJSON *o, const char *path, marian_generation *g)
{
    const cJSON *v = field(o, "bad_words_ids");
    if (!v)
        return QKV_OK;
    free(g->bad_words_len);
    free(g->bad_words_ids);
    g->bad_words_len = NULL;
    g->bad_words_ids = NULL;
    g->n_bad_words = 0;
    if (!cJSON_IsArray(v))
        return qkv_fail(QKV_ERR_CONFIG, "%s: field 'bad_words_ids': expected a list of lists of ids", path);
    int n = cJSON_GetArraySize(v), total = 0;
    for (const cJSON *s = v->child; s; s = s->next) {
        if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) == 0)
            return qkv_fail(QKV_ERR_CONFIG, "%s: field 'bad_words_ids': expected a list of non-empty lists of ids",
                            path);
        total += cJSON_GetArraySize(s);
    }
    g->bad_words_len = malloc((size_t)(n ? n : 1) * sizeof *g->bad_words_len);
    g->bad_words_ids = malloc((size_t)(total ? total : 1) * sizeof *g->bad_words_ids);
    if (!g->bad_words_len || !g->bad_words_ids)
        return qkv_fail(QKV_ERR_NOMEM, "marian: out of memory");
    int k = 0, i = 0;
    for (const cJSON *s = v->child; s; s = s->next, i++) {
        g->bad_words_len[i] = cJSON_GetArraySize(s);
        for (const cJSON *e = s->child; e; e = e->next) {
            double d = e->valuedouble;
            if (!cJSON_IsNumber(e) || d != floor(d) || d < 0 || d > 2147483647.0)
                return qkv_fail(QKV_ERR_CONFIG, "%s: field 'bad_words_ids[%d]': expected non-negative integer ids",
                                path, i);
            g->bad_words_ids[k++] = (int)d;
        }
    }
    g->n_bad_words = n;
    return QKV_OK;
}

static void generation_defaults(marian_generation *g)
{
    memset(g, 0, sizeof *g);
    g->max_length = 20;
    g->num_beams = 1;
    g->num_return_sequences = 1;
    g->length_penalty = 1.0f;
    g->repetition_penalty = 1.0f;
    g->forced_bos_token_id = -1;
    g->forced_eos_token_id = 0;
    g->pad_token_id = g->eos_token_id = g->decoder_start_token_id = g->bos_token_id = -1;
}

/* The generation fields of one JSON object (config.json or
 * generation_config.json). */
static qkv_status read_generation(const cJSON *o, const char *path, marian_generation *g)
{
    QKV_TRY(get_int(o, path, "max_length", &g->max_length));
    QKV_TRY(get_int(o, path, "min_length", &g->min_length));
    QKV_TRY(get_int(o, path, "num_beams", &g->num_beams));
    QKV_TRY(get_int(o, path, "num_return_sequences", &g->num_return_sequences));
    QKV_TRY(get_float(o, path, "length_penalty", &g->length_penalty));
    QKV_TRY(get_float(o, path, "repetition_penalty", &g->repetition_penalty));
    QKV_TRY(get_int(o, path, "no_repeat_ngram_size", &g->no_repeat_ngram_size));
    QKV_TRY(get_int(o, path, "forced_bos_token_id", &g->forced_bos_token_id));
    QKV_TRY(get_int(o, path, "forced_eos_token_id", &g->forced_eos_token_id));
    const cJSON *es = field(o, "early_stopping");
    if (es) {
        if (cJSON_IsBool(es))
            g->early_stopping = cJSON_IsTrue(es);
        else if (cJSON_IsString(es) && !strcmp(es->valuestring, "never"))
            g->early_stopping = 2;
        else
            return qkv_fail(QKV_ERR_CONFIG, "%s: field 'early_stopping': expected true, false or \"never\"", path);
    }
    QKV_TRY(read_bad_words(o, path, g));
    if (g->max_length <= 0)
        return qkv_fail(QKV_ERR_CONFIG, "%s: field 'max_length': expected a positive integer, got %d", path,
                        g->max_length);
    if (g->min_length < 0)
        return qkv_fail(QKV_ERR_CONFIG, "%s: field 'min_length': expected a non-negative integer", path);
    if (g->num_beams <= 0)
        return qkv_fail(QKV_ERR_CONFIG, "%s: field 'num_beams': expected a positive integer, got %d", path,
                        g->num_beams);
    if (g->num_return_sequences <= 0 || g->num_return_sequences > g->num_beams)
        return qkv_fail(QKV_ERR_CONFIG, "%s: field 'num_return_sequences': expected 1..num_beams (%d), got %d",
                        path, g->num_beams, g->num_return_sequences);
    if (g->no_repeat_ngram_size < 0)
        return qkv_fail(QKV_ERR_CONFIG, "%s: field 'no_repeat_ngram_size': expected a non-negative integer", path);
    return QKV_OK;
}

void marian_generation_free(marian_generation *g)
{
    if (!g)
        return;
    free(g->bad_words_len);
    free(g->bad_words_ids);
    g->bad_words_len = NULL;
    g->bad_words_ids = NULL;
    g->n_bad_words = 0;
}

static qkv_status map_config(const cJSON *o, const char *path, qkv_model_config *c)
{
    const cJSON *mt = field(o, "model_type");
    if (mt && (!cJSON_IsString(mt) || strcmp(mt->valuestring, "marian")))
        return qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field 'model_type': expected \"marian\", got %s%s%s", path,
                        cJSON_IsString(mt) ? "\"" : "", cJSON_IsString(mt) ? mt->valuestring : "a non-string",
                        cJSON_IsString(mt) ? "\"" : "");
    for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++) {
        int v = legacy[i].usual;
        QKV_TRY(get_bool(o, path, legacy[i].key, &v));
        if (v != legacy[i].usual)
            return qkv_fail(QKV_ERR_UNSUPPORTED,
                            "%s: field '%s': %s is not what transformers' MarianMTModel runs (it ignores the field: "
                            "post-norm, no extra layer norms, static sinusoidal positions); refusing rather than "
                            "guessing",
                            path, legacy[i].key, v ? "true" : "false");
    }
    /* MarianConfig's defaults (configuration_marian.py, 4.39) */
    *c = qkv_model_default_config();
    int vocab = 58101, dec_vocab = -1, share = 1, tie = 1, scale = 0;
    c->d_model = 1024;
    c->encoder_layers = c->decoder_layers = 12;
    c->encoder_d_ff = c->decoder_d_ff = 4096;
    c->encoder_heads = c->decoder_heads = 16;
    c->max_positions = 1024;
    c->dropout = 0.1f;
    c->attention_dropout = c->activation_dropout = 0.0f;
    c->pad_id = c->decoder_start_id = 58100;
    c->eos_id = 0;
    QKV_TRY(get_int(o, path, "vocab_size", &vocab));
    QKV_TRY(get_int(o, path, "decoder_vocab_size", &dec_vocab));
    QKV_TRY(get_int(o, path, "d_model", &c->d_model));
    QKV_TRY(get_int(o, path, "encoder_layers", &c->encoder_layers));
    QKV_TRY(get_int(o, path, "decoder_layers", &c->decoder_layers));
    QKV_TRY(get_int(o, path, "encoder_ffn_dim", &c->encoder_d_ff));
    QKV_TRY(get_int(o, path, "decoder_ffn_dim", &c->decoder_d_ff));
    QKV_TRY(get_int(o, path, "encoder_attention_heads", &c->encoder_heads));
    QKV_TRY(get_int(o, path, "decoder_attention_heads", &c->decoder_heads));
    QKV_TRY(get_int(o, path, "max_position_embeddings", &c->max_positions));
    QKV_TRY(get_float(o, path, "dropout", &c->dropout));
    QKV_TRY(get_float(o, path, "attention_dropout", &c->attention_dropout));
    QKV_TRY(get_float(o, path, "activation_dropout", &c->activation_dropout));
    QKV_TRY(get_bool(o, path, "scale_embedding", &scale));
    QKV_TRY(get_bool(o, path, "share_encoder_decoder_embeddings", &share));
    QKV_TRY(get_bool(o, path, "tie_word_embeddings", &tie));
    QKV_TRY(get_int(o, path, "pad_token_id", &c->pad_id));
    QKV_TRY(get_int(o, path, "eos_token_id", &c->eos_id));
    QKV_TRY(get_int(o, path, "decoder_start_token_id", &c->decoder_start_id));
    c->bos_id = c->decoder_start_id; /* Marian has no bos; qkv's config wants a valid id */
    QKV_TRY(get_int(o, path, "bos_token_id", &c->bos_id));
    QKV_TRY(map_activation(o, path, &c->activation));
    if (dec_vocab < 0)
        dec_vocab = vocab; /* decoder_vocab_size or vocab_size */
    c->src_vocab_size = vocab;
    c->tgt_vocab_size = dec_vocab;
    c->shared_vocab = vocab == dec_vocab;
    if (share && vocab != dec_vocab)
        return qkv_fail(QKV_ERR_CONFIG,
                        "%s: field 'share_encoder_decoder_embeddings': true, but vocab_size %d differs from "
                        "decoder_vocab_size %d",
                        path, vocab, dec_vocab);
    if (tie && vocab != dec_vocab)
        return qkv_fail(QKV_ERR_UNSUPPORTED,
                        "%s: field 'tie_word_embeddings': true with vocab_size %d != decoder_vocab_size %d "
                        "(transformers would tie a [%d, d_model] embedding to a [%d, d_model] output layer)",
                        path, vocab, dec_vocab, vocab, dec_vocab);
    c->tie_encoder_decoder_embeddings = share;
    c->tie_output_embeddings = tie;
    c->scale_embedding = scale;
    c->output_bias = 1; /* final_logits_bias */
    c->norm = QKV_NORM_POST;
    c->final_norm = 0;
    c->positions = QKV_POS_SINUSOIDAL;
    c->layer_norm_eps = 1e-5f; /* nn.LayerNorm's default; MarianConfig has no field for it */
    qkv_status s = qkv_config_validate(c);
    if (s != QKV_OK)
        return qkv_fail_context(s, "%s (mapped from Marian's fields)", path);
    return QKV_OK;
}

/* generate()'s legacy rule (transformers 4.39, GenerationMixin.generate):
 * when generation_config.json says "_from_model_config": true (derived
 * from config.json and not edited since) and config.json holds a
 * generation parameter away from its default (always so for MarianConfig,
 * whose forced_eos_token_id defaults to 0 where PretrainedConfig's is
 * None), generate() rebuilds the generation config from config.json and
 * generation_config.json's values are not used: the directory then reads
 * as if it had no generation_config.json. */
static int legacy_generation_config(const cJSON *gen_json)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(gen_json, "_from_model_config"));
}

/* generate_rule: apply legacy_generation_config (marian_load), or read
 * generation_config.json as from_pretrained does (marian_read_config). */
static qkv_status read_config(const char *dir, qkv_model_config *cfg, marian_generation *gen, int generate_rule)
{
    char *path = qkv_path_join(dir, "config.json"), *gpath = qkv_path_join(dir, "generation_config.json");
    cJSON *o = NULL, *go = NULL;
    qkv_model_config c;
    marian_generation g;
    generation_defaults(&g);
    qkv_status s = QKV_OK;
    if (!path || !gpath) {
        s = qkv_fail(QKV_ERR_NOMEM, "marian: out of memory");
        goto done;
    }
    if (!file_exists(dir, "config.json")) {
        s = qkv_fail(QKV_ERR_IO, "%s: not found (a Hugging Face Marian directory needs config.json)", path);
        goto done;
    }
    if ((s = read_json(path, &o)) != QKV_OK || (s = map_config(o, path, &c)) != QKV_OK)
        goto done;
    /* from_pretrained takes generation_config.json whole when it exists;
     * otherwise GenerationConfig.from_model_config reads config.json */
    const cJSON *src = o;
    const char *src_path = path;
    if (file_exists(dir, "generation_config.json")) {
        if ((s = read_json(gpath, &go)) != QKV_OK)
            goto done;
        if (generate_rule && legacy_generation_config(go)) {
            cJSON_Delete(go);
            go = NULL;
        } else {
            src = go;
            src_path = gpath;
        }
    }
    g.pad_token_id = c.pad_id;
    g.eos_token_id = c.eos_id;
    g.decoder_start_token_id = c.decoder_start_id;
    if ((s = get_int(o, path, "forced_eos_token_id", &g.forced_eos_token_id)) != QKV_OK ||
        (s = get_int(o, path, "bos_token_id", &g.bos_token_id)) != QKV_OK)
        goto done;
    /* ids missing from generation_config.json fall back to config.json's */
    if ((s = get_int(src, src_path, "pad_token_id", &g.pad_token_id)) != QKV_OK ||
        (s = get_int(src, src_path, "eos_token_id", &g.eos_token_id)) != QKV_OK ||
        (s = get_int(src, src_path, "decoder_start_token_id", &g.decoder_start_token_id)) != QKV_OK ||
        (s = get_int(src, src_path, "bos_token_id", &g.bos_token_id)) != QKV_OK)
        goto done;
    if (go)
        g.forced_eos_token_id = -1; /* GenerationConfig's default */
    s = read_generation(src, src_path, &g);
done:
    cJSON_Delete(o);
    cJSON_Delete(go);
    free(path);
    free(gpath);
    if (s != QKV_OK) {
        marian_generation_free(&g);
        return s;
    }
    if (cfg)
        *cfg = c;
    if (gen)
        *gen = g;
    else
        marian_generation_free(&g);
    return QKV_OK;
}

qkv_status marian_read_config(const char *dir, qkv_model_config *cfg, marian_generation *gen)
{
    return read_config(dir, cfg, gen, 0);
}

/* ---- model.safetensors -------------------------------------------------------------- */

#define MAX_ALIASES 4

/* The names a qkv parameter may have in a Marian file, preferred first. */
static int hf_names(const char *name, const qkv_model_config *c, char out[MAX_ALIASES][200])
{
    int n = 0;
    if (!strcmp(name, "model.shared.weight")) {
        snprintf(out[n++], 200, "model.shared.weight");
        snprintf(out[n++], 200, "model.encoder.embed_tokens.weight");
        snprintf(out[n++], 200, "model.decoder.embed_tokens.weight");
        if (c->tie_output_embeddings)
            snprintf(out[n++], 200, "lm_head.weight");
    } else if (!strcmp(name, "decoder.embed_tokens.weight")) {
        snprintf(out[n++], 200, "model.decoder.embed_tokens.weight");
        if (c->tie_output_embeddings)
            snprintf(out[n++], 200, "lm_head.weight");
    } else if (!strcmp(name, "lm_head.weight") || !strcmp(name, "final_logits_bias")) {
        snprintf(out[n++], 200, "%s", name);
    } else {
        snprintf(out[n++], 200, "model.%s", name);
    }
    return n;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
}

/* The file's shape matches qkv's, allowing final_logits_bias's [1, V]. */
static int same_shape(const st_tensor *t, const qkv_tensor_info *info)
{
    if (info->ndim == 1 && t->ndim == 2 && t->shape[0] == 1)
        return t->shape[1] == info->shape[0];
    if (t->ndim != info->ndim)
        return 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != info->shape[i])
            return 0;
    return 1;
}

static qkv_status check_shape(const char *path, const st_tensor *t, const qkv_tensor_info *info)
{
    if (same_shape(t, info))
        return QKV_OK;
    char a[96], b[96];
    int64_t want[2] = {info->shape[0], info->shape[1]};
    shape_str(a, sizeof a, t->ndim, t->shape);
    shape_str(b, sizeof b, info->ndim, want);
    return qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': shape %s in the file, expected %s from config.json", path,
                    t->name, a, b);
}

/* Positions: absent, equal to the sinusoidal table (within float rounding
 * of transformers' float64 computation) or different, in which case the
 * file's table is what transformers runs and qkv loads it as learned. */
static qkv_status check_positions(const st_file *f, const char *path, const qkv_model_config *c, int *learned)
{
    static const char *const names[2] = {"model.encoder.embed_positions.weight",
                                         "model.decoder.embed_positions.weight"};
    size_t n = (size_t)c->max_positions * (size_t)c->d_model;
    float *table = NULL, *got = NULL;
    qkv_status s = QKV_OK;
    *learned = 0;
    for (int i = 0; i < 2 && s == QKV_OK; i++) {
        const st_tensor *t = st_find(f, names[i]);
        if (!t)
            continue;
        if (!(t->ndim == 2 && t->shape[0] == c->max_positions && t->shape[1] == c->d_model)) {
            char a[96], b[96];
            int64_t want[2] = {c->max_positions, c->d_model};
            shape_str(a, sizeof a, t->ndim, t->shape);
            shape_str(b, sizeof b, 2, want);
            s = qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s': shape %s in the file, expected %s from config.json", path,
                         names[i], a, b);
            break;
        }
        if (!table) {
            table = malloc(n * sizeof *table);
            got = malloc(n * sizeof *got);
            if (!table || !got) {
                s = qkv_fail(QKV_ERR_NOMEM, "marian: out of memory");
                break;
            }
            sinusoidal_positions(table, c->max_positions, c->d_model);
        }
        s = st_read_f32(f, names[i], got, n);
        for (size_t j = 0; s == QKV_OK && j < n; j++)
            if (!(fabsf(got[j] - table[j]) <= 1e-5f))
                *learned = 1;
    }
    free(table);
    free(got);
    return s;
}

static qkv_status load_weights(const char *dir, qkv_model_config *c, qkv_model **out)
{
    char *path = qkv_path_join(dir, "model.safetensors");
    st_file *f = NULL;
    qkv_model *m = NULL;
    char *used = NULL;
    qkv_status s = QKV_OK;
    *out = NULL;
    if (!path)
        return qkv_fail(QKV_ERR_NOMEM, "marian: out of memory");
    if (!file_exists(dir, "model.safetensors")) {
        if (file_exists(dir, "pytorch_model.bin") || file_exists(dir, "pytorch_model.bin.index.json"))
            s = qkv_fail(QKV_ERR_UNSUPPORTED,
                         "%s/pytorch_model.bin: pickle checkpoints are not read; convert to model.safetensors with "
                         "transformers' save_pretrained(safe_serialization=True)",
                         dir);
        else if (file_exists(dir, "model.safetensors.index.json"))
            s = qkv_fail(QKV_ERR_UNSUPPORTED,
                         "%s/model.safetensors.index.json: sharded checkpoints are not read; save with a larger "
                         "max_shard_size to get one model.safetensors",
                         dir);
        else if (file_exists(dir, "tf_model.h5") || file_exists(dir, "flax_model.msgpack"))
            s = qkv_fail(QKV_ERR_UNSUPPORTED,
                         "%s: only TensorFlow or Flax weights; convert to model.safetensors with transformers' "
                         "save_pretrained(safe_serialization=True)",
                         dir);
        else
            s = qkv_fail(QKV_ERR_IO, "%s: not found", path);
        free(path);
        return s;
    }
    if ((s = st_open(&f, path)) != QKV_OK)
        goto done;
    int learned = 0;
    if ((s = check_positions(f, path, c, &learned)) != QKV_OK)
        goto done;
    if (learned)
        c->positions = QKV_POS_LEARNED;
    if ((s = qkv_model_new(c, 0, &m)) != QKV_OK)
        goto done;
    used = calloc((size_t)st_count(f) + 1, 1);
    if (!used) {
        s = qkv_fail(QKV_ERR_NOMEM, "marian: out of memory");
        goto done;
    }
    float *params = qkv_model_params(m);
    for (int i = 0; i < qkv_model_num_tensors(m) && s == QKV_OK; i++) {
        qkv_tensor_info info;
        qkv_model_tensor(m, i, &info);
        float *dst = params + info.offset;
        if (!strcmp(info.name, "encoder.embed_positions.weight") || !strcmp(info.name, "decoder.embed_positions.weight")) {
            char hf[200];
            snprintf(hf, sizeof hf, "model.%s", info.name);
            if (st_find(f, hf))
                s = st_read_f32(f, hf, dst, info.size);
            else
                sinusoidal_positions(dst, c->max_positions, c->d_model);
            continue;
        }
        char names[MAX_ALIASES][200];
        int n = hf_names(info.name, c, names), found = -1;
        for (int k = 0; k < n && found < 0; k++)
            if (st_find(f, names[k]))
                found = k;
        if (found < 0) {
            s = qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s' is missing (config.json implies it, shape [%d%s%.0d])",
                         path, names[0], info.shape[0], info.ndim == 2 ? ", " : "",
                         info.ndim == 2 ? info.shape[1] : 0);
            break;
        }
        const st_tensor *t = st_find(f, names[found]);
        if (!strcmp(names[found], "model.decoder.embed_tokens.weight") && t->ndim == 2 &&
            t->shape[1] == info.shape[1] && t->shape[0] > info.shape[0]) {
            /* transformers (4.39) builds the untied decoder embedding as a
             * copy of the encoder's, vocab_size rows; target ids index only
             * the first decoder_vocab_size of them */
            size_t all = (size_t)t->shape[0] * (size_t)t->shape[1];
            float *tmp = malloc(all * sizeof *tmp);
            if (!tmp) {
                s = qkv_fail(QKV_ERR_NOMEM, "marian: out of memory");
                break;
            }
            s = st_read_f32(f, names[found], tmp, all);
            if (s == QKV_OK)
                memcpy(dst, tmp, info.size * sizeof *dst);
            free(tmp);
            continue;
        }
        if ((s = check_shape(path, t, &info)) != QKV_OK)
            break;
        s = st_read_f32(f, names[found], dst, info.size);
    }
    if (s != QKV_OK)
        goto done;
    /* Mark every tensor the model accounts for: loaded ones, their tied
     * aliases and the position tables. */
    for (int i = 0; i < qkv_model_num_tensors(m); i++) {
        qkv_tensor_info info;
        qkv_model_tensor(m, i, &info);
        char names[MAX_ALIASES][200];
        int n = hf_names(info.name, c, names);
        for (int k = 0; k < n; k++)
            for (int j = 0; j < st_count(f); j++)
                if (!strcmp(st_get(f, j)->name, names[k]))
                    used[j] = 1;
    }
    for (int j = 0; j < st_count(f); j++) {
        const char *nm = st_get(f, j)->name;
        if (!strcmp(nm, "model.encoder.embed_positions.weight") || !strcmp(nm, "model.decoder.embed_positions.weight"))
            used[j] = 1;
        /* lm_head.weight beside tied output embeddings: transformers ties it
         * to the decoder embedding and ignores the stored copy */
        if (c->tie_output_embeddings && !strcmp(nm, "lm_head.weight"))
            used[j] = 1;
    }
    int n_unused = 0, first = -1;
    for (int j = 0; j < st_count(f); j++)
        if (!used[j]) {
            if (first < 0)
                first = j;
            n_unused++;
        }
    if (n_unused)
        s = qkv_fail(QKV_ERR_FORMAT,
                     "%s: tensor '%s' (and %d more) is not part of the model config.json describes (check "
                     "encoder_layers, decoder_layers, share_encoder_decoder_embeddings, tie_word_embeddings)",
                     path, st_get(f, first)->name, n_unused - 1);
done:
    st_close(f);
    free(used);
    free(path);
    if (s != QKV_OK) {
        qkv_model_free(m);
        return s;
    }
    *out = m;
    return QKV_OK;
}

qkv_status marian_load(const char *dir, qkv_model **model, qkv_tokenizer **tok, marian_generation *gen)
{
    qkv_model_config c;
    marian_generation g;
    qkv_tokenizer *t = NULL;
    qkv_model *m = NULL;
    if (model)
        *model = NULL;
    if (tok)
        *tok = NULL;
    if (gen)
        memset(gen, 0, sizeof *gen);
    QKV_TRY(read_config(dir, &c, &g, 1));
    qkv_status s = QKV_OK;
    if (tok) {
        s = qkv_tokenizer_load_marian(dir, &t);
        /* ids from vocab.json index the embeddings: they must fit */
        if (s == QKV_OK && qkv_tokenizer_src_vocab_size(t) > c.src_vocab_size)
            s = qkv_fail(QKV_ERR_FORMAT, "%s/vocab.json: ids up to %d, but config.json's vocab_size is %d", dir,
                         qkv_tokenizer_src_vocab_size(t) - 1, c.src_vocab_size);
        if (s == QKV_OK && qkv_tokenizer_tgt_vocab_size(t) > c.tgt_vocab_size)
            s = qkv_fail(QKV_ERR_FORMAT, "%s/%s: ids up to %d, but config.json's decoder_vocab_size is %d", dir,
                         qkv_tokenizer_shared_vocab(t) ? "vocab.json" : "target_vocab.json",
                         qkv_tokenizer_tgt_vocab_size(t) - 1, c.tgt_vocab_size);
    }
    if (s == QKV_OK && model)
        s = load_weights(dir, &c, &m);
    if (s != QKV_OK) {
        qkv_tokenizer_free(t);
        qkv_model_free(m);
        marian_generation_free(&g);
        return s;
    }
    if (model)
        *model = m;
    if (tok)
        *tok = t;
    if (gen)
        *gen = g;
    else
        marian_generation_free(&g);
    return QKV_OK;
}
