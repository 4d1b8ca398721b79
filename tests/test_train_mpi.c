/* qkv train under mpirun (Open MPI, ranks oversubscribed on this machine):
 * -np 2 and -np 3 give the parameters of one process with --accum 2 and 3
 * bit for bit, with and without overlapping the reduction and the backward; a resumed distributed run equals an uninterrupted one; a
 * killed rank ends the job with a message naming it, the last checkpoint
 * stays loadable and --resume finishes; bad launches (other options, other
 * data, an unreachable host) end with a clear message instead of a hang;
 * three ranks on three hosts (network namespaces) equal --accum 3; in bf16
 * (native bf16 only) -np 2 equals --accum 2 too.
 * Needs ./qkv and mpirun (scripts/install-deps installs openmpi-bin). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "qkv.h"
#include "test.h"
#include "train/model_io.h"

static char dir[256], vocab[512];

/* every mpirun is bounded: a hang fails the test instead of the suite */
#define MPIRUN "timeout -s KILL 120 mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo "
#define TRAIN                                                                                                   \
    "./qkv train --src %s/a.txt --tgt %s/b.txt --preset tiny --src-vocab %s --tgt-vocab %s --threads 1 "      \
    "--batch-tokens 300 "
#define CMD(buf, ...) snprintf(buf, sizeof buf, __VA_ARGS__)

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/qkv_test_train_mpi_%ld", (long)getpid());
    mkdir(dir, 0777);
    snprintf(vocab, sizeof vocab, "tests/golden/vocab_train/unigram.model");
    /* mpirun refuses root without these (the test machines run as root) */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    FILE *in = fopen("tests/golden/vocab_train/train.txt", "r");
    char p[600], line[4096];
    const char *names[] = {"a.txt", "b.txt", "dev_a.txt", "dev_b.txt", "c.txt"};
    FILE *f[5];
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[k]);
        f[k] = fopen(p, "w");
    }
    int i = 0;
    while (in && fgets(line, sizeof line, in) && i < 440) {
        int k = i < 400 ? i % 2 : 2 + i % 2;
        fputs(line, f[k]);
        /* c.txt: a.txt with its first line changed */
        if (k == 0)
            fputs(i == 0 ? "another first line\n" : line, f[4]);
        i++;
    }
    if (in)
        fclose(in);
    for (int k = 0; k < 5; k++)
        if (f[k])
            fclose(f[k]);
}

/* Runs cmd; on a non-zero exit records a failure with its output. */
static int run_ok(const char *what, const char *cmd)
{
    char *out = NULL;
    int rc = test_run(cmd, &out);
    CHECK(rc == 0, "%s: exit %d: %s\ncommand: %s", what, rc, out ? out : "", cmd);
    free(out);
    return rc == 0;
}

/* The parameters of two model files are the same bits. */
static void check_same_params(const char *a, const char *b)
{
    qkv_model *ma = NULL, *mb = NULL;
    qkv_vocab_blobs va, vb;
    void *ha = NULL, *hb = NULL;
    if (qkv_checkpoint_load_model(a, &ma, &va, &ha) != QKV_OK || qkv_checkpoint_load_model(b, &mb, &vb, &hb) != QKV_OK) {
        CHECK(0, "cannot load %s or %s: %s", a, b, qkv_last_error());
    } else if (ma->num_params != mb->num_params) {
        CHECK(0, "%s has %zu parameters, %s %zu", a, ma->num_params, b, mb->num_params);
    } else {
        for (size_t i = 0; i < ma->num_params; i++)
            if (memcmp(&ma->params[i], &mb->params[i], sizeof(float)) != 0) {
                CHECK(0, "parameter %zu of %zu: %s has %.9g, %s %.9g (not bit-identical)", i, ma->num_params, a,
                      ma->params[i], b, mb->params[i]);
                break;
            }
    }
    qkv_model_free(ma);
    qkv_model_free(mb);
    qkv_checkpoint_release(ha);
    qkv_checkpoint_release(hb);
}

static void test_ranks_equal_accum(void)
{
    char cmd[4096], a[600], b[600];
    for (int np = 2; np <= 3; np++) {
        CMD(cmd, TRAIN "--out %s/one%d --accum %d --max-steps 4 2>&1", dir, dir, vocab, vocab, dir, np, np);
        if (!run_ok("one process", cmd))
            return;
        CMD(cmd, MPIRUN "-np %d " TRAIN "--out %s/np%d --max-steps 4 2>&1", np, dir, dir, vocab, vocab, dir, np);
        if (!run_ok("mpirun", cmd))
            return;
        snprintf(a, sizeof a, "%s/one%d/model.qkv", dir, np);
        snprintf(b, sizeof b, "%s/np%d/model.qkv", dir, np);
        check_same_params(a, b);
        snprintf(a, sizeof a, "%s/one%d/checkpoint.qkv", dir, np);
        snprintf(b, sizeof b, "%s/np%d/checkpoint.qkv", dir, np);
        check_same_params(a, b);        /* the reduction without overlapping the backward: the same sum */
        CMD(cmd, MPIRUN "-np %d " TRAIN "--out %s/np%d_seq --overlap 0 --max-steps 4 2>&1", np, dir, dir, vocab,
            vocab, dir, np);
        if (!run_ok("mpirun --overlap 0", cmd))
            return;
        snprintf(b, sizeof b, "%s/np%d_seq/checkpoint.qkv", dir, np);
        check_same_params(a, b);
    }
    /* rank 0 alone writes the log: the precision line and 4 step lines, not 4 per rank */
    snprintf(a, sizeof a, "%s/np3/log.jsonl", dir);
    FILE *f = fopen(a, "r");
    int lines = 0, c;
    while (f && (c = fgetc(f)) != EOF)
        lines += c == '\n';
    if (f)
        fclose(f);
    CHECK(lines == 5, "%s: %d lines, want 5 (the precision, one per step; from rank 0 only)", a, lines);
}

/* bf16 (where the CPU has native bf16 products): -np 2 equals --accum 2 bit
 * for bit as in fp32; under auto the ranks take rank 0's choice. */
static void test_bf16_ranks(void)
{
    const char *why;
    if (!qkv_bf16_native(&why)) {
        printf("skip test_train_mpi bf16 ranks: no native bf16 products here (%s)\n", why);
        return;
    }
    char cmd[4096], a[600], b[600];
    CMD(cmd, TRAIN "--out %s/one2_bf16 --accum 2 --max-steps 3 --precision bf16 2>&1", dir, dir, vocab, vocab, dir);
    if (!run_ok("one process bf16", cmd))
        return;
    CMD(cmd, MPIRUN "-np 2 " TRAIN "--out %s/np2_bf16 --max-steps 3 --precision bf16 2>&1", dir, dir, vocab, vocab,
        dir);
    if (!run_ok("mpirun bf16", cmd))
        return;
    snprintf(a, sizeof a, "%s/one2_bf16/checkpoint.qkv", dir);
    snprintf(b, sizeof b, "%s/np2_bf16/checkpoint.qkv", dir);
    check_same_params(a, b);
    CMD(cmd, MPIRUN "-np 2 " TRAIN "--out %s/np2_auto --max-steps 2 --precision auto 2>&1", dir, dir, vocab, vocab,
        dir);
    run_ok("mpirun auto", cmd);
}

static void test_resume_is_exact(void)
{
    char cmd[4096], a[600], b[600];
    CMD(cmd, MPIRUN "-np 2 " TRAIN "--out %s/full --max-steps 4 2>&1", dir, dir, vocab, vocab, dir);
    if (!run_ok("uninterrupted", cmd))
        return;
    CMD(cmd, MPIRUN "-np 2 " TRAIN "--out %s/part --max-steps 2 2>&1", dir, dir, vocab, vocab, dir);
    if (!run_ok("first half", cmd))
        return;
    CMD(cmd, MPIRUN "-np 2 " TRAIN "--out %s/part --max-steps 4 --resume 2>&1", dir, dir, vocab, vocab, dir);
    if (!run_ok("resumed", cmd))
        return;
    snprintf(a, sizeof a, "%s/full/checkpoint.qkv", dir);
    snprintf(b, sizeof b, "%s/part/checkpoint.qkv", dir);
    check_same_params(a, b);
    /* another number of ranks is refused with the reason */
    char *out = NULL;
    CMD(cmd, MPIRUN "-np 3 " TRAIN "--out %s/part --max-steps 6 --resume 2>&1", dir, dir, vocab, vocab, dir);
    int rc = test_run(cmd, &out);
    CHECK(rc != 0 && out && strstr(out, "same number of ranks"), "resume on 3 ranks of a 2-rank run: exit %d: %s",
          rc, out ? out : "");
    free(out);
}

static void test_killed_rank(void)
{
    char cmd[4096], path[600], *out = NULL;
    /* each rank leaves its pid; validation every step keeps a fresh checkpoint */
    CMD(cmd,
        MPIRUN "-np 2 sh -c 'echo $$ > %s/rank$OMPI_COMM_WORLD_RANK.pid; exec " TRAIN
               "--out %s/kill --valid-src %s/dev_a.txt --valid-tgt %s/dev_b.txt --valid-every 1 --max-steps 300' "
               "> %s/kill.out 2>&1 &",
        dir, dir, dir, vocab, vocab, dir, dir, dir, dir);
    CHECK(system(cmd) == 0, "cannot start %s", cmd);
    snprintf(path, sizeof path, "%s/kill/checkpoint.qkv", dir);
    char pidfile[600];
    snprintf(pidfile, sizeof pidfile, "%s/rank1.pid", dir);
    for (int i = 0; i < 600 && !(exists(path) && exists(pidfile)); i++)
        usleep(100000);
    CHECK(exists(path), "no checkpoint after 60 s: %s", path);
    long pid = 0;
    FILE *f = fopen(pidfile, "r");
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    CHECK(pid > 0, "%s: no pid", pidfile);
    if (pid <= 0)
        return;
    usleep(300000);
    kill((pid_t)pid, SIGKILL);
    /* the job must end by itself: wait for mpirun's output file to be closed */
    CMD(cmd, "timeout 60 sh -c 'while fuser %s/kill.out >/dev/null 2>&1; do sleep 0.2; done'; echo $?", dir);
    test_run(cmd, &out);
    CHECK(out && atoi(out) == 0, "the job did not end within 60 s of killing rank 1");
    free(out);
    CMD(cmd, "cat %s/kill.out", dir);
    test_run(cmd, &out);
    CHECK(out && strstr(out, "rank 1"), "the job's output does not name rank 1: %s", out ? out : "");
    free(out);
    /* the last checkpoint is whole (written to a temporary name, renamed) */
    check_same_params(path, path);
    CMD(cmd,
        MPIRUN "-np 2 " TRAIN "--out %s/kill --valid-src %s/dev_a.txt --valid-tgt %s/dev_b.txt --valid-every 1000 "
               "--max-steps 300 --resume 2>&1",
        dir, dir, vocab, vocab, dir, dir, dir);
    run_ok("resume after the kill", cmd);
}

static void test_bad_launches(void)
{
    char cmd[8192], *out = NULL;
    struct {
        const char *what, *second, *want;
    } cases[] = {
        {"another --seed", "--seed 5", "rank 1 of 2 was started with other options"},
        {"another corpus", "--src %s/c.txt", "rank 1 of 2 read another training corpus"},
    };
    for (int k = 0; k < 2; k++) {
        char second[400], seconds[100];
        snprintf(seconds, sizeof seconds, "%s", cases[k].second);
        snprintf(second, sizeof second, seconds, dir);
        /* the later --src wins over the first */
        CMD(cmd, MPIRUN "-np 1 " TRAIN "--out %s/bad%d --max-steps 2 : -np 1 " TRAIN "--out %s/bad%d --max-steps 2 %s 2>&1",
            dir, dir, vocab, vocab, dir, k, dir, dir, vocab, vocab, dir, k, second);
        int rc = test_run(cmd, &out);
        CHECK(rc != 0 && rc != 137 && out && strstr(out, cases[k].want), "%s: exit %d, want a message with '%s': %s",
              cases[k].what, rc, cases[k].want, out ? out : "");
        free(out);
    }
}

/* Three hosts made on this machine (scripts/netns-hosts: network
 * namespaces on a bridge of their own), one rank each, Open MPI over TCP
 * between them, ranks started by the launcher agent (scripts/netns-agent)
 * as ssh would start them on a cluster; mpirun itself runs on host 1. */
#define NETNS_MPIRUN                                                                                            \
    "timeout -s KILL 120 ip netns exec %sh1 mpirun --mca plm_rsh_agent scripts/netns-agent "                    \
    "--mca oob_tcp_if_include 10.231.0.0/24 --mca btl self,tcp --mca btl_tcp_if_include 10.231.0.0/24 "        \
    "--host %s -np %d "

static void test_across_namespaces(void)
{
    char cmd[8192], prefix[64], *out = NULL, a[600], b[600];
    snprintf(prefix, sizeof prefix, "qkvt%ld-", (long)getpid());
    setenv("QKV_NETNS_PREFIX", prefix, 1);
    CMD(cmd, "scripts/netns-hosts up 3 2>&1");
    int rc = test_run(cmd, &out);
    CHECK(rc == 0, "scripts/netns-hosts up 3 (needs root and ip netns): exit %d: %s", rc, out ? out : "");
    free(out);
    if (rc != 0)
        return;
    CMD(cmd, NETNS_MPIRUN TRAIN "--out %s/hosts3 --max-steps 4 2>&1", prefix,
        "10.231.0.1:1,10.231.0.2:1,10.231.0.3:1", 3, dir, dir, vocab, vocab, dir);
    if (run_ok("3 ranks on 3 namespace hosts", cmd)) {
        snprintf(a, sizeof a, "%s/one3/checkpoint.qkv", dir);
        snprintf(b, sizeof b, "%s/hosts3/checkpoint.qkv", dir);
        check_same_params(a, b);
    }
    /* a host that cannot be reached (no such namespace: the agent fails as
     * ssh does): mpirun must say so and exit, not hang */
    CMD(cmd, NETNS_MPIRUN TRAIN "--out %s/host --max-steps 2 2>&1", prefix, "10.231.0.1:1,10.231.0.9:1", 2, dir,
        dir, vocab, vocab, dir);
    rc = test_run(cmd, &out);
    CHECK(rc != 0 && rc != 137 && out && strstr(out, "10.231.0.9"),
          "unreachable host: exit %d (137: killed by the timeout, a hang), want a message naming it: %s", rc,
          out ? out : "");
    free(out);
    CMD(cmd, "scripts/netns-hosts down 3 2>&1");
    CHECK(test_run(cmd, NULL) == 0, "scripts/netns-hosts down 3 failed");
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void test_all(void)
{
    setup();
    test_ranks_equal_accum();
    test_bf16_ranks();
    test_resume_is_exact();
    test_killed_rank();
    test_bad_launches();
    test_across_namespaces();
    if (!test_failures())
        teardown();
    else
        fprintf(stderr, "left %s for inspection\n", dir);
}

static const test_case cases[] = {TEST(test_all)};
int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
