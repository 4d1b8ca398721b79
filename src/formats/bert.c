/* BERT-family directories (contract in bert.h). */
#include "formats/bert.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"
#include "formats/safetensors.h"

static qkv_status read_json(const char *path, cJSON **out)
{
    char *text;
    size_t len;
    *out = NULL;
    QKV_TRY(qkv_read_file(path, &text, &len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        free(text);
        return qkv_fail(QKV_ERR_FORMAT, "%s: malformed JSON near byte %zu", path, at);
    }
    free(text);
    *out = root;
    return QKV_OK;
}

static int file_exists(const char *dir, const char *name)
{
    char *p = qkv_path_join(dir, name);
    FILE *fp = p ? fopen(p, "rb") : NULL;
    free(p);
    if (fp)
        fclose(fp);
    return fp != NULL;
}

int bert_is_dir(const char *dir)
{
    char *p = qkv_path_join(dir, "config.json");
    cJSON *root = NULL;
    int yes = 0;
    if (p && file_exists(dir, "config.json") && read_json(p, &root) == QKV_OK) {
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
        yes = cJSON_IsString(mt) && !strcmp(mt->valuestring, "bert");
    }
    cJSON_Delete(root);
    free(p);
    return yes;
}

static qkv_status get_int(const cJSON *root, const char *key, const char *path, int *dst, int lo)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return qkv_fail(QKV_ERR_CONFIG, "%s: field '%s' is missing", path, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble || (int)v->valuedouble < lo)
        return qkv_fail(QKV_ERR_CONFIG, "%s: field '%s': expected an integer >= %d", path, key, lo);
    *dst = (int)v->valuedouble;
    return QKV_OK;
}

static qkv_status expect_string(const cJSON *root, const char *key, const char *path, const char *want,
                                const char *alt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return QKV_OK;
    if (!cJSON_IsString(v))
        return qkv_fail(QKV_ERR_CONFIG, "%s: field '%s': expected a string", path, key);
    if (strcmp(v->valuestring, want) && (!alt || strcmp(v->valuestring, alt)))
        return qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field '%s': '%s' is not supported (qkv reads '%s')", path, key,
                        v->valuestring, want);
    return QKV_OK;
}

static qkv_status expect_false(const cJSON *root, const char *key, const char *path)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (v && cJSON_IsTrue(v))
        return qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field '%s': true is not supported (an encoder only)", path, key);
    return QKV_OK;
}

static qkv_status parse_config(const char *path, bert_config *c)
{
    cJSON *root;
    QKV_TRY(read_json(path, &root));
    qkv_status s = cJSON_IsObject(root) ? QKV_OK : qkv_fail(QKV_ERR_FORMAT, "%s: not a JSON object", path);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (s == QKV_OK && (!cJSON_IsString(mt) || strcmp(mt->valuestring, "bert")))
        s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field 'model_type': '%s' is not a BERT model ('bert')", path,
                     cJSON_IsString(mt) ? mt->valuestring : "(missing)");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (s == QKV_OK && arch) {
        const cJSON *a0 = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
        if (!cJSON_IsString(a0) || strncmp(a0->valuestring, "Bert", 4))
            s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field 'architectures': '%s' is not a BERT encoder", path,
                         cJSON_IsString(a0) ? a0->valuestring : "(not a list of strings)");
    }
    if (s == QKV_OK)
        s = expect_string(root, "hidden_act", path, "gelu", NULL);
    if (s == QKV_OK)
        s = expect_string(root, "position_embedding_type", path, "absolute", NULL);
    if (s == QKV_OK)
        s = expect_false(root, "is_decoder", path);
    if (s == QKV_OK)
        s = expect_false(root, "add_cross_attention", path);
    if (s == QKV_OK)
        s = get_int(root, "vocab_size", path, &c->vocab_size, 1);
    if (s == QKV_OK)
        s = get_int(root, "hidden_size", path, &c->hidden, 1);
    if (s == QKV_OK)
        s = get_int(root, "num_hidden_layers", path, &c->layers, 1);
    if (s == QKV_OK)
        s = get_int(root, "num_attention_heads", path, &c->heads, 1);
    if (s == QKV_OK)
        s = get_int(root, "intermediate_size", path, &c->intermediate, 1);
    if (s == QKV_OK)
        s = get_int(root, "max_position_embeddings", path, &c->max_positions, 2);
    c->type_vocab_size = 2;
    if (s == QKV_OK && cJSON_GetObjectItemCaseSensitive(root, "type_vocab_size"))
        s = get_int(root, "type_vocab_size", path, &c->type_vocab_size, 1);
    c->layer_norm_eps = 1e-12f;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    if (s == QKV_OK && eps) {
        if (!cJSON_IsNumber(eps) || eps->valuedouble <= 0 || eps->valuedouble > 1)
            s = qkv_fail(QKV_ERR_CONFIG, "%s: field 'layer_norm_eps': expected a number in (0, 1]", path);
        else
            c->layer_norm_eps = (float)eps->valuedouble;
    }
    if (s == QKV_OK && c->hidden % c->heads)
        s = qkv_fail(QKV_ERR_CONFIG, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                     c->hidden, c->heads);
    cJSON_Delete(root);
    return s;
}

/* sentence-transformers' modules: pooling mode, Normalize, max_seq_length */
static qkv_status parse_modules(const char *dir, bert_model *m)
{
    char *path = qkv_path_join(dir, "modules.json");
    cJSON *root = NULL;
    qkv_status s = read_json(path, &root);
    char pooling_dir[256] = "";
    int n = 0;
    if (s == QKV_OK && !cJSON_IsArray(root))
        s = qkv_fail(QKV_ERR_FORMAT, "%s: expected a JSON list of modules", path);
    const cJSON *mod, *list = s == QKV_OK ? root : NULL;
    cJSON_ArrayForEach(mod, list)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(mod, "type");
        const cJSON *mpath = cJSON_GetObjectItemCaseSensitive(mod, "path");
        if (!cJSON_IsString(type)) {
            s = qkv_fail(QKV_ERR_FORMAT, "%s: module %d: field 'type' is missing", path, n);
            break;
        }
        const char *t = type->valuestring;
        if (!strcmp(t, "sentence_transformers.models.Transformer")) {
            if (n != 0 || (cJSON_IsString(mpath) && mpath->valuestring[0])) {
                s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: module %d: the Transformer must be the first module, at path \"\"",
                             path, n);
                break;
            }
        } else if (!strcmp(t, "sentence_transformers.models.Pooling")) {
            if (!cJSON_IsString(mpath) || strlen(mpath->valuestring) >= sizeof pooling_dir ||
                strstr(mpath->valuestring, "..")) {
                s = qkv_fail(QKV_ERR_FORMAT, "%s: module %d: field 'path' is not a directory name", path, n);
                break;
            }
            strcpy(pooling_dir, mpath->valuestring);
        } else if (!strcmp(t, "sentence_transformers.models.Normalize")) {
            m->normalize = 1;
        } else {
            s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: module %d: type '%s' is not supported (Transformer, Pooling, "
                         "Normalize)", path, n, t);
            break;
        }
        n++;
    }
    cJSON_Delete(root);
    free(path);
    if (s == QKV_OK && pooling_dir[0]) {
        char *pd = qkv_path_join(dir, pooling_dir);
        path = pd ? qkv_path_join(pd, "config.json") : NULL;
        free(pd);
        s = read_json(path, &root);
        if (s == QKV_OK) {
            static const char *const keys[] = {"pooling_mode_mean_tokens", "pooling_mode_cls_token",
                                               "pooling_mode_max_tokens"};
            static const char *const other[] = {"pooling_mode_mean_sqrt_len_tokens",
                                                "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"};
            int modes = 0;
            for (int k = 0; k < 3; k++)
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, keys[k]))) {
                    modes++;
                    m->pooling = k + 1;
                }
            for (int k = 0; k < 3 && s == QKV_OK; k++)
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, other[k])))
                    s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field '%s' is not supported (mean, cls or max)", path,
                                 other[k]);
            if (s == QKV_OK && modes != 1)
                s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: %d pooling modes are set; qkv needs exactly one of mean, "
                             "cls and max", path, modes);
            const cJSON *dim = cJSON_GetObjectItemCaseSensitive(root, "word_embedding_dimension");
            if (s == QKV_OK && dim && (!cJSON_IsNumber(dim) || (int)dim->valuedouble != m->cfg.hidden))
                s = qkv_fail(QKV_ERR_CONFIG, "%s: field 'word_embedding_dimension' is not hidden_size %d", path,
                             m->cfg.hidden);
        }
        cJSON_Delete(root);
        free(path);
    }
    if (s == QKV_OK && file_exists(dir, "sentence_bert_config.json")) {
        path = qkv_path_join(dir, "sentence_bert_config.json");
        s = read_json(path, &root);
        const cJSON *ml = s == QKV_OK ? cJSON_GetObjectItemCaseSensitive(root, "max_seq_length") : NULL;
        if (ml && !cJSON_IsNull(ml)) {
            if (!cJSON_IsNumber(ml) || ml->valuedouble < 2)
                s = qkv_fail(QKV_ERR_CONFIG, "%s: field 'max_seq_length': expected an integer >= 2", path);
            else
                m->max_seq_length = (int)ml->valuedouble;
        }
        const cJSON *lc = s == QKV_OK ? cJSON_GetObjectItemCaseSensitive(root, "do_lower_case") : NULL;
        if (lc && cJSON_IsTrue(lc))
            s = qkv_fail(QKV_ERR_UNSUPPORTED, "%s: field 'do_lower_case': true is not supported (set it in "
                         "tokenizer_config.json)", path);
        cJSON_Delete(root);
        free(path);
    }
    return s;
}

void bert_free(bert_model *m)
{
    if (!m)
        return;
    free(m->params);
    free(m->layer);
    wp_free(m->tok);
    free(m);
}

typedef struct {
    char name[96];
    size_t *off;
    int rows, cols; /* cols 0: a vector of rows */
} tensor_slot;

qkv_status bert_load(const char *dir, bert_model **out)
{
    *out = NULL;
    bert_model *m = calloc(1, sizeof *m);
    if (!m)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    char *cfg_path = qkv_path_join(dir, "config.json");
    qkv_status s = parse_config(cfg_path, &m->cfg);
    free(cfg_path);
    if (s != QKV_OK)
        return bert_free(m), s;
    const bert_config *c = &m->cfg;
    m->pooling = 1;
    if ((s = wp_load_dir(dir, &m->tok)) != QKV_OK)
        return bert_free(m), s;
    if (wp_vocab_size(m->tok) > c->vocab_size) {
        s = qkv_fail(QKV_ERR_CONFIG, "%s/vocab.txt: %d tokens, more than config.json's vocab_size %d", dir,
                     wp_vocab_size(m->tok), c->vocab_size);
        return bert_free(m), s;
    }
    if (file_exists(dir, "modules.json") && (s = parse_modules(dir, m)) != QKV_OK)
        return bert_free(m), s;
    if (!m->max_seq_length)
        m->max_seq_length = wp_model_max_length(m->tok);
    if (!m->max_seq_length || m->max_seq_length > c->max_positions)
        m->max_seq_length = c->max_positions;

    /* the tensor list: name, offset slot, shape (keep in sync with bert.h) */
    int nt = 5 + 16 * c->layers;
    tensor_slot *ts = calloc((size_t)nt, sizeof *ts);
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    if (!ts || !m->layer)
        return free(ts), bert_free(m), qkv_fail(QKV_ERR_NOMEM, "out of memory");
    int H = c->hidden, I = c->intermediate, k = 0;
#define SLOT(nm, o, r, cc) (snprintf(ts[k].name, sizeof ts[k].name, "%s", nm), ts[k].off = (o), ts[k].rows = (r), ts[k].cols = (cc), k++)
    SLOT("embeddings.word_embeddings.weight", &m->word, c->vocab_size, H);
    SLOT("embeddings.position_embeddings.weight", &m->pos, c->max_positions, H);
    SLOT("embeddings.token_type_embeddings.weight", &m->type, c->type_vocab_size, H);
    SLOT("embeddings.LayerNorm.weight", &m->ln_w, H, 0);
    SLOT("embeddings.LayerNorm.bias", &m->ln_b, H, 0);
    for (int l = 0; l < c->layers; l++) {
        bert_layer_offsets *L = &m->layer[l];
        char p[64];
        snprintf(p, sizeof p, "encoder.layer.%d.", l);
        struct {
            const char *suffix;
            size_t *off;
            int r, cc;
        } list[16] = {{"attention.self.query.weight", &L->q_w, H, H},
                      {"attention.self.query.bias", &L->q_b, H, 0},
                      {"attention.self.key.weight", &L->k_w, H, H},
                      {"attention.self.key.bias", &L->k_b, H, 0},
                      {"attention.self.value.weight", &L->v_w, H, H},
                      {"attention.self.value.bias", &L->v_b, H, 0},
                      {"attention.output.dense.weight", &L->o_w, H, H},
                      {"attention.output.dense.bias", &L->o_b, H, 0},
                      {"attention.output.LayerNorm.weight", &L->ln1_w, H, 0},
                      {"attention.output.LayerNorm.bias", &L->ln1_b, H, 0},
                      {"intermediate.dense.weight", &L->i_w, I, H},
                      {"intermediate.dense.bias", &L->i_b, I, 0},
                      {"output.dense.weight", &L->f_w, H, I},
                      {"output.dense.bias", &L->f_b, H, 0},
                      {"output.LayerNorm.weight", &L->ln2_w, H, 0},
                      {"output.LayerNorm.bias", &L->ln2_b, H, 0}};
        for (int j = 0; j < 16; j++) {
            char nm[96];
            snprintf(nm, sizeof nm, "%s%s", p, list[j].suffix);
            SLOT(nm, list[j].off, list[j].r, list[j].cc);
        }
    }
#undef SLOT
    size_t total = 0;
    for (int i = 0; i < nt; i++) {
        *ts[i].off = total;
        total += (size_t)ts[i].rows * (ts[i].cols ? (size_t)ts[i].cols : 1);
    }
    m->n_params = total;
    m->params = malloc(total * sizeof *m->params);
    char *st_path = qkv_path_join(dir, "model.safetensors");
    st_file *f = NULL;
    if (!m->params || !st_path)
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    else
        s = st_open(&f, st_path);
    const char *prefix = "";
    if (s == QKV_OK && !st_find(f, ts[0].name))
        prefix = "bert.";
    for (int i = 0; i < nt && s == QKV_OK; i++) {
        char nm[128];
        snprintf(nm, sizeof nm, "%s%s", prefix, ts[i].name);
        const st_tensor *t = st_find(f, nm);
        int want_nd = ts[i].cols ? 2 : 1;
        if (!t)
            s = qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s' is missing", st_path, nm);
        else if (t->ndim != want_nd || t->shape[0] != ts[i].rows || (want_nd == 2 && t->shape[1] != ts[i].cols))
            s = qkv_fail(QKV_ERR_FORMAT, "%s: tensor '%s' has shape [%lld%s%lld], config.json implies [%d%s%d]",
                         st_path, nm, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                         t->ndim > 1 ? (long long)t->shape[1] : 0LL, ts[i].rows, want_nd == 2 ? ", " : "",
                         want_nd == 2 ? ts[i].cols : 0);
        else
            s = st_read_f32(f, nm, m->params + *ts[i].off,
                            (size_t)ts[i].rows * (ts[i].cols ? (size_t)ts[i].cols : 1));
    }
    st_close(f);
    free(st_path);
    free(ts);
    if (s != QKV_OK)
        return bert_free(m), s;
    *out = m;
    return QKV_OK;
}
