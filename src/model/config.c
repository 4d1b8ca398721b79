/* Model configuration: defaults, JSON reader and writer, validation.
 *
 * The JSON keys are the field names of qkv_model_config plus two shorthands,
 * "heads" and "d_ff", which set both sides unless the side-specific key is
 * also given. Keep the key list, the reader, the writer and the struct in
 * include/qkv.h in sync. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "qkv.h"

qkv_model_config qkv_model_default_config(void)
{
    qkv_model_config c;
    memset(&c, 0, sizeof c);
    c.d_model = 512;
    c.encoder_heads = c.decoder_heads = 8;
    c.encoder_d_ff = c.decoder_d_ff = 2048;
    c.encoder_layers = c.decoder_layers = 6;
    c.dropout = 0.1f;
    c.activation = QKV_ACT_RELU;
    c.norm = QKV_NORM_POST;
    c.final_norm = 0;
    c.positions = QKV_POS_SINUSOIDAL;
    c.max_positions = 512;
    c.scale_embedding = 1;
    c.tie_output_embeddings = 1;
    c.layer_norm_eps = 1e-5f;
    c.pad_id = 0;
    c.bos_id = 1;
    c.eos_id = 2;
    c.decoder_start_id = 1;
    return c;
}

/* keep in sync with the parser below and with qkv_config_to_json */
static const char *const known_keys[] = {
    "src_vocab_size", "tgt_vocab_size", "shared_vocab", "d_model", "heads", "encoder_heads",
    "decoder_heads", "d_ff", "encoder_d_ff", "decoder_d_ff", "encoder_layers", "decoder_layers",
    "dropout", "attention_dropout", "activation_dropout", "activation", "norm", "final_norm",
    "positions", "max_positions", "scale_embedding", "tie_encoder_decoder_embeddings",
    "tie_output_embeddings", "output_bias", "layer_norm_eps", "pad_id", "bos_id", "eos_id",
    "decoder_start_id",
};

static const char *activation_name(qkv_activation a)
{
    return a == QKV_ACT_GELU ? "gelu" : a == QKV_ACT_SWISH ? "swish" : "relu";
}

static qkv_status positive(const char *field, int v)
{
    if (v <= 0)
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': expected a positive integer, got %d", field, v);
    return QKV_OK;
}

static qkv_status probability(const char *field, float v)
{
    if (!(v >= 0.0f && v < 1.0f))
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': expected a probability in [0, 1), got %g", field,
                        (double)v);
    return QKV_OK;
}

static qkv_status token_id(const char *field, int v, const qkv_model_config *c)
{
    int lim = c->src_vocab_size < c->tgt_vocab_size ? c->src_vocab_size : c->tgt_vocab_size;
    if (v < 0 || v >= lim)
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': id %d must be in [0, %d) (both vocabularies)", field, v,
                        lim);
    return QKV_OK;
}

static qkv_status divides(const char *field, int heads, int d_model)
{
    if (d_model % heads != 0)
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': %d does not divide d_model %d", field, heads, d_model);
    return QKV_OK;
}

qkv_status qkv_config_validate(const qkv_model_config *c)
{
    QKV_TRY(positive("src_vocab_size", c->src_vocab_size));
    QKV_TRY(positive("tgt_vocab_size", c->tgt_vocab_size));
    if (c->shared_vocab && c->tgt_vocab_size != c->src_vocab_size)
        return qkv_fail(QKV_ERR_CONFIG,
                        "config: field 'tgt_vocab_size': %d differs from src_vocab_size %d with shared_vocab",
                        c->tgt_vocab_size, c->src_vocab_size);
    QKV_TRY(positive("d_model", c->d_model));
    if (c->positions == QKV_POS_SINUSOIDAL && c->d_model % 2 != 0)
        return qkv_fail(QKV_ERR_CONFIG, "config: field 'd_model': %d is odd; sinusoidal positions need it even",
                        c->d_model);
    QKV_TRY(positive("encoder_heads", c->encoder_heads));
    QKV_TRY(positive("decoder_heads", c->decoder_heads));
    QKV_TRY(divides("encoder_heads", c->encoder_heads, c->d_model));
    QKV_TRY(divides("decoder_heads", c->decoder_heads, c->d_model));
    QKV_TRY(positive("encoder_d_ff", c->encoder_d_ff));
    QKV_TRY(positive("decoder_d_ff", c->decoder_d_ff));
    QKV_TRY(positive("encoder_layers", c->encoder_layers));
    QKV_TRY(positive("decoder_layers", c->decoder_layers));
    QKV_TRY(probability("dropout", c->dropout));
    QKV_TRY(probability("attention_dropout", c->attention_dropout));
    QKV_TRY(probability("activation_dropout", c->activation_dropout));
    if ((unsigned)c->activation > QKV_ACT_SWISH)
        return qkv_fail(QKV_ERR_CONFIG, "config: field 'activation': unknown value %d", (int)c->activation);
    if ((unsigned)c->norm > QKV_NORM_POST)
        return qkv_fail(QKV_ERR_CONFIG, "config: field 'norm': unknown value %d", (int)c->norm);
    if ((unsigned)c->positions > QKV_POS_LEARNED)
        return qkv_fail(QKV_ERR_CONFIG, "config: field 'positions': unknown value %d", (int)c->positions);
    QKV_TRY(positive("max_positions", c->max_positions));
    if (c->tie_encoder_decoder_embeddings && !c->shared_vocab)
        return qkv_fail(QKV_ERR_CONFIG,
                        "config: field 'tie_encoder_decoder_embeddings': requires shared_vocab to be true");
    if (!(c->layer_norm_eps > 0.0f) || !isfinite(c->layer_norm_eps))
        return qkv_fail(QKV_ERR_CONFIG, "config: field 'layer_norm_eps': expected a positive number, got %g",
                        (double)c->layer_norm_eps);
    QKV_TRY(token_id("pad_id", c->pad_id, c));
    QKV_TRY(token_id("bos_id", c->bos_id, c));
    QKV_TRY(token_id("eos_id", c->eos_id, c));
    QKV_TRY(token_id("decoder_start_id", c->decoder_start_id, c));
    return QKV_OK;
}

/* ---- reader --------------------------------------------------------------- */

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    return "an object";
}

static qkv_status get_int(const cJSON *root, const char *key, int *out, int *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return QKV_OK;
    if (!cJSON_IsNumber(v))
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': expected an integer, got %s", key, type_name(v));
    double d = v->valuedouble;
    if (d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': expected an integer, got %g", key, d);
    *out = (int)d;
    return QKV_OK;
}

static qkv_status get_float(const cJSON *root, const char *key, float *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return QKV_OK;
    if (!cJSON_IsNumber(v))
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': expected a number, got %s", key, type_name(v));
    *out = (float)v->valuedouble;
    return QKV_OK;
}

static qkv_status get_bool(const cJSON *root, const char *key, int *out, int *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return QKV_OK;
    if (!cJSON_IsBool(v))
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': expected true or false, got %s", key, type_name(v));
    *out = cJSON_IsTrue(v);
    return QKV_OK;
}

/* Matches a string field against names[i] -> values[i]; expected is the list
 * for the message. */
static qkv_status get_enum(const cJSON *root, const char *key, const char *const *names, const int *values, int n,
                           const char *expected, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return QKV_OK;
    if (!cJSON_IsString(v))
        return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': expected %s, got %s", key, expected, type_name(v));
    for (int i = 0; i < n; i++)
        if (!strcmp(v->valuestring, names[i])) {
            *out = values[i];
            return QKV_OK;
        }
    return qkv_fail(QKV_ERR_CONFIG, "config: field '%s': expected %s, got \"%.64s\"", key, expected, v->valuestring);
}

/* Line and column (1-based) of byte offset pos in text. */
static void position_of(const char *text, size_t pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos && text[i]; i++) {
        if (text[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

static qkv_status parse_object(const cJSON *root, qkv_model_config *c)
{
    for (const cJSON *it = root->child; it; it = it->next) {
        int known = 0;
        for (size_t k = 0; k < sizeof known_keys / sizeof known_keys[0]; k++)
            known |= !strcmp(it->string, known_keys[k]);
        if (!known)
            return qkv_fail(QKV_ERR_CONFIG, "config: field '%.64s': unknown key", it->string);
        for (const cJSON *jt = it->next; jt; jt = jt->next)
            if (!strcmp(it->string, jt->string))
                return qkv_fail(QKV_ERR_CONFIG, "config: field '%.64s': given twice", it->string);
    }
    int has_tgt = 0, has_start = 0, has_final = 0, v = 0;
    QKV_TRY(get_int(root, "src_vocab_size", &c->src_vocab_size, NULL));
    QKV_TRY(get_int(root, "tgt_vocab_size", &c->tgt_vocab_size, &has_tgt));
    QKV_TRY(get_bool(root, "shared_vocab", &c->shared_vocab, NULL));
    if (!cJSON_GetObjectItemCaseSensitive(root, "src_vocab_size"))
        return qkv_fail(QKV_ERR_CONFIG, "config: field 'src_vocab_size': missing (it has no default)");
    if (!has_tgt) {
        if (!c->shared_vocab)
            return qkv_fail(QKV_ERR_CONFIG,
                            "config: field 'tgt_vocab_size': missing (it has no default unless shared_vocab)");
        c->tgt_vocab_size = c->src_vocab_size;
    }
    QKV_TRY(get_int(root, "d_model", &c->d_model, NULL));
    int heads = c->encoder_heads, d_ff = c->encoder_d_ff, has_heads = 0, has_d_ff = 0;
    QKV_TRY(get_int(root, "heads", &heads, &has_heads));
    if (has_heads) { /* so the message names the key the user wrote */
        QKV_TRY(positive("heads", heads));
        if (c->d_model > 0)
            QKV_TRY(divides("heads", heads, c->d_model));
    }
    c->encoder_heads = c->decoder_heads = heads;
    QKV_TRY(get_int(root, "encoder_heads", &c->encoder_heads, NULL));
    QKV_TRY(get_int(root, "decoder_heads", &c->decoder_heads, NULL));
    QKV_TRY(get_int(root, "d_ff", &d_ff, &has_d_ff));
    if (has_d_ff)
        QKV_TRY(positive("d_ff", d_ff));
    c->encoder_d_ff = c->decoder_d_ff = d_ff;
    QKV_TRY(get_int(root, "encoder_d_ff", &c->encoder_d_ff, NULL));
    QKV_TRY(get_int(root, "decoder_d_ff", &c->decoder_d_ff, NULL));
    QKV_TRY(get_int(root, "encoder_layers", &c->encoder_layers, NULL));
    QKV_TRY(get_int(root, "decoder_layers", &c->decoder_layers, NULL));
    QKV_TRY(get_float(root, "dropout", &c->dropout));
    QKV_TRY(get_float(root, "attention_dropout", &c->attention_dropout));
    QKV_TRY(get_float(root, "activation_dropout", &c->activation_dropout));
    static const char *const act_names[] = {"relu", "gelu", "swish", "silu"};
    static const int act_values[] = {QKV_ACT_RELU, QKV_ACT_GELU, QKV_ACT_SWISH, QKV_ACT_SWISH};
    v = (int)c->activation;
    QKV_TRY(get_enum(root, "activation", act_names, act_values, 4, "\"relu\", \"gelu\", \"swish\" or \"silu\"", &v));
    c->activation = (qkv_activation)v;
    static const char *const norm_names[] = {"pre", "post"};
    static const int norm_values[] = {QKV_NORM_PRE, QKV_NORM_POST};
    v = (int)c->norm;
    QKV_TRY(get_enum(root, "norm", norm_names, norm_values, 2, "\"pre\" or \"post\"", &v));
    c->norm = (qkv_norm_placement)v;
    QKV_TRY(get_bool(root, "final_norm", &c->final_norm, &has_final));
    if (!has_final)
        c->final_norm = c->norm == QKV_NORM_PRE;
    static const char *const pos_names[] = {"sinusoidal", "learned"};
    static const int pos_values[] = {QKV_POS_SINUSOIDAL, QKV_POS_LEARNED};
    v = (int)c->positions;
    QKV_TRY(get_enum(root, "positions", pos_names, pos_values, 2, "\"sinusoidal\" or \"learned\"", &v));
    c->positions = (qkv_position_kind)v;
    QKV_TRY(get_int(root, "max_positions", &c->max_positions, NULL));
    QKV_TRY(get_bool(root, "scale_embedding", &c->scale_embedding, NULL));
    QKV_TRY(get_bool(root, "tie_encoder_decoder_embeddings", &c->tie_encoder_decoder_embeddings, NULL));
    QKV_TRY(get_bool(root, "tie_output_embeddings", &c->tie_output_embeddings, NULL));
    QKV_TRY(get_bool(root, "output_bias", &c->output_bias, NULL));
    QKV_TRY(get_float(root, "layer_norm_eps", &c->layer_norm_eps));
    QKV_TRY(get_int(root, "pad_id", &c->pad_id, NULL));
    QKV_TRY(get_int(root, "bos_id", &c->bos_id, NULL));
    QKV_TRY(get_int(root, "eos_id", &c->eos_id, NULL));
    QKV_TRY(get_int(root, "decoder_start_id", &c->decoder_start_id, &has_start));
    if (!has_start)
        c->decoder_start_id = c->bos_id;
    return qkv_config_validate(c);
}

qkv_status qkv_config_from_json(const char *json, qkv_model_config *out)
{
    if (!json || !out)
        return qkv_fail(QKV_ERR_ARG, "qkv_config_from_json: NULL argument");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        int line, col;
        size_t pos = end ? (size_t)(end - json) : 0;
        position_of(json, pos, &line, &col);
        return qkv_fail(QKV_ERR_CONFIG, "config: malformed JSON at line %d, column %d (byte %zu)", line, col, pos);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return qkv_fail(QKV_ERR_CONFIG, "config: expected a JSON object at the top level");
    }
    qkv_model_config c = qkv_model_default_config();
    qkv_status s = parse_object(root, &c);
    cJSON_Delete(root);
    if (s == QKV_OK)
        *out = c;
    return s;
}

qkv_status qkv_config_from_file(const char *path, qkv_model_config *out)
{
    char *text = NULL;
    size_t len = 0;
    QKV_TRY(qkv_read_file(path, &text, &len));
    if (strlen(text) != len) {
        free(text);
        return qkv_fail(QKV_ERR_CONFIG, "%s: config: contains a NUL byte", path);
    }
    qkv_status s = qkv_config_from_json(text, out);
    free(text);
    if (s != QKV_OK)
        return qkv_fail_context(s, "%s", path);
    return QKV_OK;
}

/* ---- writer --------------------------------------------------------------- */

/* The shortest decimal that reads back as the same float, so 0.1f is written
 * "0.1" and not "0.10000000149011612". */
static double short_float(float f)
{
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f)
            return d;
    }
    return (double)f;
}

qkv_status qkv_config_to_json(const qkv_model_config *c, char **json)
{
    *json = NULL;
    QKV_TRY(qkv_config_validate(c));
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return qkv_fail(QKV_ERR_NOMEM, "config: out of memory writing JSON");
    /* keep in sync with known_keys and parse_object */
    cJSON_AddNumberToObject(o, "src_vocab_size", c->src_vocab_size);
    cJSON_AddNumberToObject(o, "tgt_vocab_size", c->tgt_vocab_size);
    cJSON_AddBoolToObject(o, "shared_vocab", c->shared_vocab);
    cJSON_AddNumberToObject(o, "d_model", c->d_model);
    cJSON_AddNumberToObject(o, "encoder_heads", c->encoder_heads);
    cJSON_AddNumberToObject(o, "decoder_heads", c->decoder_heads);
    cJSON_AddNumberToObject(o, "encoder_d_ff", c->encoder_d_ff);
    cJSON_AddNumberToObject(o, "decoder_d_ff", c->decoder_d_ff);
    cJSON_AddNumberToObject(o, "encoder_layers", c->encoder_layers);
    cJSON_AddNumberToObject(o, "decoder_layers", c->decoder_layers);
    cJSON_AddNumberToObject(o, "dropout", short_float(c->dropout));
    cJSON_AddNumberToObject(o, "attention_dropout", short_float(c->attention_dropout));
    cJSON_AddNumberToObject(o, "activation_dropout", short_float(c->activation_dropout));
    cJSON_AddStringToObject(o, "activation", activation_name(c->activation));
    cJSON_AddStringToObject(o, "norm", c->norm == QKV_NORM_PRE ? "pre" : "post");
    cJSON_AddBoolToObject(o, "final_norm", c->final_norm);
    cJSON_AddStringToObject(o, "positions", c->positions == QKV_POS_LEARNED ? "learned" : "sinusoidal");
    cJSON_AddNumberToObject(o, "max_positions", c->max_positions);
    cJSON_AddBoolToObject(o, "scale_embedding", c->scale_embedding);
    cJSON_AddBoolToObject(o, "tie_encoder_decoder_embeddings", c->tie_encoder_decoder_embeddings);
    cJSON_AddBoolToObject(o, "tie_output_embeddings", c->tie_output_embeddings);
    cJSON_AddBoolToObject(o, "output_bias", c->output_bias);
    cJSON_AddNumberToObject(o, "layer_norm_eps", short_float(c->layer_norm_eps));
    cJSON_AddNumberToObject(o, "pad_id", c->pad_id);
    cJSON_AddNumberToObject(o, "bos_id", c->bos_id);
    cJSON_AddNumberToObject(o, "eos_id", c->eos_id);
    cJSON_AddNumberToObject(o, "decoder_start_id", c->decoder_start_id);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        return qkv_fail(QKV_ERR_NOMEM, "config: out of memory writing JSON");
    /* cJSON allocates with malloc by default; copy so the caller's free() is
     * right even if hooks are installed elsewhere. */
    *json = strdup(text);
    cJSON_free(text);
    if (!*json)
        return qkv_fail(QKV_ERR_NOMEM, "config: out of memory writing JSON");
    return QKV_OK;
}
