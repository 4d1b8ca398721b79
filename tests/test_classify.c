/* embed/classify: the head learns a separable task on the small BERT
 * fixture, is repeatable for a seed, survives a save/load round trip, and
 * the scores follow scikit-learn's accuracy and macro-F1; damaged files are
 * refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "qkv.h"
#include "test.h"

static const char *const texts[] = {"open the file",   "open a file now", "file open",     "open file dialog",
                                    "print the page",  "print now",       "page print",    "print dialog page",
                                    "save the file",   "open the page",   "print the file", "open print"};
static const char *const labels[] = {"open", "open", "open", "open", "print", "print",
                                     "print", "print", "open", "open", "print", "open"};
#define N 12

static char model[512];

static qkv_classifier *train(uint64_t seed)
{
    snprintf(model, sizeof model, "%s/bert/tiny", test_golden_dir());
    qkv_classify_options o = qkv_classify_default_options();
    o.epochs = 400;
    o.weight_decay = 0;
    o.batch_size = 4;
    o.lr = 0.1f;
    o.seed = seed;
    qkv_classifier *c = NULL;
    CHECK(qkv_classifier_train(model, texts, labels, 8, NULL, NULL, 0, &o, &c) == QKV_OK, "%s",
          qkv_last_error());
    return c;
}

static void test_learns_and_round_trips(void)
{
    qkv_classifier *c = train(3), *c2 = train(3);
    if (!c || !c2)
        return;
    CHECK(qkv_classifier_num_labels(c) == 2 && !strcmp(qkv_classifier_label(c, 0), "open") &&
              !strcmp(qkv_classifier_label(c, 1), "print"),
          "labels");
    int lab[N], lab2[N];
    float prob[N], prob2[N], probs[2 * N];
    CHECK(qkv_classifier_predict(c, texts, 8, lab, prob, probs) == QKV_OK, "%s", qkv_last_error());
    int right = 0;
    for (int i = 0; i < 8; i++) {
        right += !strcmp(qkv_classifier_label(c, lab[i]), labels[i]);
        CHECK(fabsf(probs[2 * i] + probs[2 * i + 1] - 1) < 1e-5, "probabilities of %d sum to %g", i,
              probs[2 * i] + probs[2 * i + 1]);
        CHECK(prob[i] >= 0.5f, "best probability %g < 0.5", prob[i]);
    }
    CHECK(right == 8, "%d of 8 training texts right", right);
    CHECK(qkv_classifier_predict(c2, texts, 8, lab2, prob2, NULL) == QKV_OK, "%s", qkv_last_error());
    CHECK(!memcmp(prob, prob2, sizeof(float) * 8), "the same seed gave another classifier");

    char path[128];
    snprintf(path, sizeof path, "/tmp/qkv_test_clf_%ld.qkv", (long)getpid());
    CHECK(qkv_classifier_save(c, path) == QKV_OK, "%s", qkv_last_error());
    qkv_classifier *d = NULL;
    CHECK(qkv_classifier_load(path, &d) == QKV_OK, "%s", qkv_last_error());
    if (d) {
        CHECK(qkv_classifier_predict(d, texts, 8, lab2, prob2, NULL) == QKV_OK, "%s", qkv_last_error());
        CHECK(!memcmp(prob, prob2, sizeof(float) * 8) && !memcmp(lab, lab2, sizeof(int) * 8),
              "a loaded classifier predicts otherwise");
        qkv_classifier_free(d);
    }
    char *data;
    size_t len;
    if (qkv_read_file(path, &data, &len) == QKV_OK) {
        data[len / 2] ^= 4;
        CHECK(qkv_write_file(path, data, len) == QKV_OK, "rewrite");
        d = NULL;
        CHECK(qkv_classifier_load(path, &d) == QKV_ERR_FORMAT && !d, "a damaged classifier loaded");
        CHECK(strstr(qkv_last_error(), "checksum") != NULL, "message '%s'", qkv_last_error());
        CHECK(qkv_write_file(path, data, 20) == QKV_OK, "rewrite");
        CHECK(qkv_classifier_load(path, &d) == QKV_ERR_FORMAT && !d, "a truncated classifier loaded");
        free(data);
    }
    unlink(path);
    qkv_classifier_free(c);
    qkv_classifier_free(c2);
}

static void test_scores_as_sklearn(void)
{
    /* scikit-learn: accuracy_score 0.5; f1_score(average="macro") over the labels {a, b, c}:
     * a: tp 1 fp 1 fn 1 -> 0.5; b: tp 1 fp 0 fn 1 -> 2/3; c: tp 0 fp 1 fn 0 -> 0; mean 0.3889 */
    const char *gold[] = {"a", "a", "b", "b"}, *pred[] = {"a", "c", "b", "a"};
    double acc, f1;
    qkv_classify_scores(gold, pred, 4, &acc, &f1);
    CHECK(fabs(acc - 0.5) < 1e-12, "accuracy %g", acc);
    CHECK(fabs(f1 - (0.5 + 2.0 / 3 + 0) / 3) < 1e-12, "macro-F1 %.6f, want %.6f", f1, (0.5 + 2.0 / 3) / 3);
}

static void test_bad_training_input(void)
{
    snprintf(model, sizeof model, "%s/bert/tiny", test_golden_dir());
    qkv_classifier *c = NULL;
    const char *one[] = {"x", "x"};
    CHECK(qkv_classifier_train(model, texts, one, 2, NULL, NULL, 0, NULL, &c) == QKV_ERR_ARG && !c,
          "a single label was accepted");
    qkv_classify_options o = qkv_classify_default_options();
    o.epochs = 0;
    CHECK(qkv_classifier_train(model, texts, labels, 4, NULL, NULL, 0, &o, &c) == QKV_ERR_CONFIG && !c,
          "0 epochs accepted");
    CHECK(qkv_classifier_train("/nonexistent", texts, labels, 4, NULL, NULL, 0, NULL, &c) != QKV_OK && !c,
          "a missing encoder was accepted");
}

static const test_case cases[] = {
    TEST(test_learns_and_round_trips),
    TEST(test_scores_as_sklearn),
    TEST(test_bad_training_input),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
