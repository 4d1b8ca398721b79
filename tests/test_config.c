/* Model configuration: defaults, JSON parsing, field-naming errors, writer
 * round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkv.h"
#include "test.h"

/* Field-by-field equality; returns the first differing field or NULL. */
static const char *config_diff(const qkv_model_config *a, const qkv_model_config *b)
{
#define F(x)              \
    if (a->x != b->x)     \
        return #x;
    F(src_vocab_size) F(tgt_vocab_size) F(shared_vocab) F(d_model) F(encoder_heads) F(decoder_heads)
    F(encoder_d_ff) F(decoder_d_ff) F(encoder_layers) F(decoder_layers) F(dropout) F(attention_dropout)
    F(activation_dropout) F(activation) F(norm) F(final_norm) F(positions) F(max_positions) F(scale_embedding)
    F(tie_encoder_decoder_embeddings) F(tie_output_embeddings) F(output_bias) F(layer_norm_eps) F(pad_id)
    F(bos_id) F(eos_id) F(decoder_start_id)
#undef F
    return NULL;
}

static void test_defaults(void)
{
    qkv_model_config c;
    qkv_status s = qkv_config_from_json("{\"src_vocab_size\": 100, \"tgt_vocab_size\": 120}", &c);
    CHECK(s == QKV_OK, "minimal config: %s", qkv_last_error());
    CHECK(c.src_vocab_size == 100 && c.tgt_vocab_size == 120, "vocab sizes %d %d", c.src_vocab_size,
          c.tgt_vocab_size);
    CHECK(c.d_model == 512 && c.encoder_heads == 8 && c.decoder_heads == 8, "d_model %d heads %d/%d", c.d_model,
          c.encoder_heads, c.decoder_heads);
    CHECK(c.encoder_d_ff == 2048 && c.decoder_d_ff == 2048, "d_ff %d/%d", c.encoder_d_ff, c.decoder_d_ff);
    CHECK(c.encoder_layers == 6 && c.decoder_layers == 6, "layers %d/%d", c.encoder_layers, c.decoder_layers);
    CHECK(c.dropout == 0.1f && c.attention_dropout == 0 && c.activation_dropout == 0, "dropouts %g %g %g",
          (double)c.dropout, (double)c.attention_dropout, (double)c.activation_dropout);
    CHECK(c.activation == QKV_ACT_RELU && c.norm == QKV_NORM_POST && c.final_norm == 0, "act %d norm %d final %d",
          c.activation, c.norm, c.final_norm);
    CHECK(c.positions == QKV_POS_SINUSOIDAL && c.max_positions == 512, "positions %d max %d", c.positions,
          c.max_positions);
    CHECK(c.scale_embedding == 1 && c.tie_output_embeddings == 1 && c.tie_encoder_decoder_embeddings == 0 &&
              c.output_bias == 0 && c.shared_vocab == 0,
          "embedding flags");
    CHECK(c.layer_norm_eps == 1e-5f, "layer_norm_eps %g", (double)c.layer_norm_eps);
    CHECK(c.pad_id == 0 && c.bos_id == 1 && c.eos_id == 2 && c.decoder_start_id == 1, "ids %d %d %d %d", c.pad_id,
          c.bos_id, c.eos_id, c.decoder_start_id);
    qkv_model_config d = qkv_model_default_config();
    d.src_vocab_size = 100;
    d.tgt_vocab_size = 120;
    const char *f = config_diff(&c, &d);
    CHECK(f == NULL, "parsed defaults differ from qkv_model_default_config in '%s'", f ? f : "");
}

static void test_shorthands_and_dependent_defaults(void)
{
    qkv_model_config c;
    qkv_status s = qkv_config_from_json("{\"src_vocab_size\": 64, \"shared_vocab\": true, \"d_model\": 96,"
                                        " \"heads\": 4, \"decoder_heads\": 6, \"d_ff\": 200, \"encoder_d_ff\": 100,"
                                        " \"norm\": \"pre\", \"activation\": \"silu\", \"bos_id\": 5,"
                                        " \"positions\": \"learned\", \"tie_encoder_decoder_embeddings\": true}",
                                        &c);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    CHECK(c.tgt_vocab_size == 64, "shared vocabulary: tgt_vocab_size %d", c.tgt_vocab_size);
    CHECK(c.encoder_heads == 4 && c.decoder_heads == 6, "heads %d/%d", c.encoder_heads, c.decoder_heads);
    CHECK(c.encoder_d_ff == 100 && c.decoder_d_ff == 200, "d_ff %d/%d", c.encoder_d_ff, c.decoder_d_ff);
    CHECK(c.final_norm == 1, "pre-norm should default final_norm to true");
    CHECK(c.activation == QKV_ACT_SWISH, "silu should be swish, got %d", c.activation);
    CHECK(c.decoder_start_id == 5, "decoder_start_id should default to bos_id 5, got %d", c.decoder_start_id);
    CHECK(c.positions == QKV_POS_LEARNED, "positions %d", c.positions);
    s = qkv_config_from_json("{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"norm\": \"pre\","
                             " \"final_norm\": false, \"decoder_start_id\": 0}",
                             &c);
    CHECK(s == QKV_OK && c.final_norm == 0 && c.decoder_start_id == 0, "explicit final_norm/decoder_start: %s",
          qkv_last_error());
}

static void test_round_trip(void)
{
    const char *inputs[] = {
        "{\"src_vocab_size\": 100, \"tgt_vocab_size\": 120}",
        "{\"src_vocab_size\": 8000, \"shared_vocab\": true, \"d_model\": 256, \"encoder_heads\": 4,"
        " \"decoder_heads\": 8, \"encoder_d_ff\": 1024, \"decoder_d_ff\": 512, \"encoder_layers\": 3,"
        " \"decoder_layers\": 2, \"dropout\": 0.3, \"attention_dropout\": 0.1, \"activation_dropout\": 0.05,"
        " \"activation\": \"gelu\", \"norm\": \"pre\", \"final_norm\": false, \"positions\": \"learned\","
        " \"max_positions\": 1024, \"scale_embedding\": false, \"tie_encoder_decoder_embeddings\": true,"
        " \"tie_output_embeddings\": false, \"output_bias\": true, \"layer_norm_eps\": 1e-6, \"pad_id\": 3,"
        " \"bos_id\": 0, \"eos_id\": 1, \"decoder_start_id\": 3}",
        "{\"src_vocab_size\": 7, \"tgt_vocab_size\": 9, \"d_model\": 6, \"heads\": 3, \"activation\": \"swish\","
        " \"dropout\": 0.123456789}",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        qkv_model_config a, b;
        char *json = NULL;
        CHECK(qkv_config_from_json(inputs[i], &a) == QKV_OK, "input %zu: %s", i, qkv_last_error());
        CHECK(qkv_config_to_json(&a, &json) == QKV_OK, "writing %zu: %s", i, qkv_last_error());
        if (!json)
            continue;
        CHECK(qkv_config_from_json(json, &b) == QKV_OK, "re-reading %zu: %s\n%s", i, qkv_last_error(), json);
        const char *f = config_diff(&a, &b);
        CHECK(f == NULL, "input %zu: field '%s' changed in the round trip:\n%s", i, f ? f : "", json);
        if (i == 1)
            CHECK(strstr(json, "\"dropout\":\t0.3") || strstr(json, "\"dropout\": 0.3"),
                  "dropout 0.3 not written as the short decimal:\n%s", json);
        free(json);
    }
    qkv_model_config bad = qkv_model_default_config(); /* vocab sizes unset */
    char *json = (char *)1;
    CHECK(qkv_config_to_json(&bad, &json) == QKV_ERR_CONFIG && json == NULL,
          "writing an invalid config should fail and leave NULL");
}

typedef struct {
    const char *json;
    const char *expect; /* substring of the message */
} bad_case;

static void test_errors_name_the_field(void)
{
    static const bad_case bad[] = {
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"heads\": 6}",
         "config: field 'heads': 6 does not divide d_model 512"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"decoder_heads\": 7}",
         "field 'decoder_heads': 7 does not divide d_model 512"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"d_model\": 0}", "field 'd_model'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"d_model\": -512}", "field 'd_model'"},
        {"{\"src_vocab_size\": -3, \"tgt_vocab_size\": 10}", "field 'src_vocab_size'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 0}", "field 'tgt_vocab_size'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"encoder_layers\": 0}", "field 'encoder_layers'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"decoder_d_ff\": -1}", "field 'decoder_d_ff'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"d_ff\": 0}", "field 'd_ff'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"heads\": 0}", "field 'heads'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"activation\": \"tanh\"}",
         "config: field 'activation': expected \"relu\", \"gelu\", \"swish\" or \"silu\", got \"tanh\""},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"activation\": 3}", "field 'activation': expected"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"norm\": \"middle\"}", "field 'norm'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"positions\": \"rotary\"}", "field 'positions'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"dmodel\": 256}", "field 'dmodel': unknown key"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"d_model\": \"512\"}",
         "field 'd_model': expected an integer, got a string"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"d_model\": 512.5}", "field 'd_model': expected an integer"},
        {"{\"src_vocab_size\": 1e12, \"tgt_vocab_size\": 10}", "field 'src_vocab_size': expected an integer"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"shared_vocab\": 1}",
         "field 'shared_vocab': expected true or false, got a number"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"dropout\": \"0.1\"}", "field 'dropout': expected a number"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"dropout\": 1.0}", "field 'dropout'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"attention_dropout\": -0.1}", "field 'attention_dropout'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"layer_norm_eps\": 0}", "field 'layer_norm_eps'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"max_positions\": 0}", "field 'max_positions'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"tie_encoder_decoder_embeddings\": true}",
         "field 'tie_encoder_decoder_embeddings': requires shared_vocab"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 12, \"shared_vocab\": true}", "field 'tgt_vocab_size'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"pad_id\": 10}", "field 'pad_id'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"bos_id\": -1}", "field 'bos_id'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"decoder_start_id\": 99}", "field 'decoder_start_id'"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"d_model\": 15, \"heads\": 3}",
         "field 'd_model': 15 is odd"},
        {"{\"tgt_vocab_size\": 10}", "field 'src_vocab_size': missing"},
        {"{\"src_vocab_size\": 10}", "field 'tgt_vocab_size': missing"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"d_model\": 64, \"d_model\": 32}",
         "field 'd_model': given twice"},
        {"{\"src_vocab_size\": 10,\n \"tgt_vocab_size\": 10,\n \"d_model\": }", "malformed JSON at line 3"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10", "malformed JSON"},
        {"", "malformed JSON"},
        {"{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10} trailing", "malformed JSON"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"src_vocab_size\": null, \"tgt_vocab_size\": 10}", "field 'src_vocab_size': expected an integer, got null"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qkv_model_config c;
        qkv_status s = qkv_config_from_json(bad[i].json, &c);
        CHECK(s == QKV_ERR_CONFIG, "case %zu (%s): status %s, want config", i, bad[i].json, qkv_status_name(s));
        CHECK(strstr(qkv_last_error(), bad[i].expect) != NULL, "case %zu: message '%s' lacks '%s'", i,
              qkv_last_error(), bad[i].expect);
    }
}

/* No prefix of a valid document crashes the parser or is accepted wrongly. */
static void test_truncations(void)
{
    const char *full = "{\"src_vocab_size\": 100, \"tgt_vocab_size\": 120, \"activation\": \"gelu\","
                       " \"norm\": \"pre\", \"dropout\": 0.25}";
    size_t n = strlen(full);
    char *buf = malloc(n + 1);
    for (size_t len = 0; len < n; len++) {
        memcpy(buf, full, len);
        buf[len] = '\0';
        qkv_model_config c;
        qkv_status s = qkv_config_from_json(buf, &c);
        CHECK(s == QKV_ERR_CONFIG, "prefix of %zu bytes gave %s", len, qkv_status_name(s));
    }
    free(buf);
}

static void test_from_file(void)
{
    char path[] = "/tmp/qkv_test_config_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp failed");
    if (fd < 0)
        return;
    const char *text = "{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"heads\": 5}";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write failed");
    close(fd);
    qkv_model_config c;
    qkv_status s = qkv_config_from_file(path, &c);
    CHECK(s == QKV_ERR_CONFIG, "status %s", qkv_status_name(s));
    CHECK(strstr(qkv_last_error(), path) && strstr(qkv_last_error(), "field 'heads'"),
          "message should name the file and the field: '%s'", qkv_last_error());
    unlink(path);
    s = qkv_config_from_file("/nonexistent/qkv/config.json", &c);
    CHECK(s == QKV_ERR_IO, "missing file gave %s", qkv_status_name(s));
}

static void test_validate_built_in_code(void)
{
    qkv_model_config c = qkv_model_default_config();
    CHECK(qkv_config_validate(&c) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "src_vocab_size"),
          "unset vocabulary: '%s'", qkv_last_error());
    c.src_vocab_size = c.tgt_vocab_size = 1000;
    CHECK(qkv_config_validate(&c) == QKV_OK, "%s", qkv_last_error());
    c.activation = (qkv_activation)9;
    CHECK(qkv_config_validate(&c) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "field 'activation'"),
          "'%s'", qkv_last_error());
    qkv_model *m = (qkv_model *)1;
    CHECK(qkv_model_new(&c, 0, &m) == QKV_ERR_CONFIG && m == NULL, "qkv_model_new accepted an invalid config");
}

static const test_case tests[] = {
    TEST(test_defaults),
    TEST(test_shorthands_and_dependent_defaults),
    TEST(test_round_trip),
    TEST(test_errors_name_the_field),
    TEST(test_truncations),
    TEST(test_from_file),
    TEST(test_validate_built_in_code),
};

int main(int argc, char **argv) { return test_main(argc, argv, tests, TEST_COUNT(tests)); }
