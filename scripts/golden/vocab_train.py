#!/usr/bin/python3
"""Fixtures for tests/test_vocab_train.c: models trained by qkv, checked in sentencepiece.

Run from the repository root after `make qkv`:
    /usr/bin/python3 scripts/golden/vocab_train.py

1. Trains the committed models with `./qkv vocab train` on
   tests/golden/vocab_train/train.txt (options below; keep in sync with
   the MODELS table of tests/test_vocab_train.c, which retrains them in memory and
   expects the same bytes).
2. Loads each model in the sentencepiece library (0.1.97), checks its size and
   special ids, encodes every line of tests/golden/vocab_train/test.txt and writes
   the ids, one line per test line, to tests/golden/vocab_train/<name>.ids. The C
   test encodes the same lines with qkv's encoder and compares id for id.
3. Trains sentencepiece itself with the same options on the same text and
   writes its pieces, one per line, to tests/golden/vocab_train/<name>.spm_pieces:
   the C test measures how many of qkv's pieces sentencepiece also chose.
"""
import os
import subprocess
import sys

import tempfile

import sentencepiece as spm

G = "tests/golden/vocab_train"
# the same options for sentencepiece's trainer
SPM_OPTIONS = {
    "unigram": dict(vocab_size=1200, byte_fallback=True, character_coverage=0.995,
                    user_defined_symbols=["<sep>", "[MASK]"]),
    "bpe": dict(model_type="bpe", vocab_size=1200, normalization_rule_name="identity", unk_id=1, eos_id=0,
                bos_id=-1, pad_id=2, character_coverage=0.995),
}
MODELS = {
    # name: qkv vocab train options
    "unigram": ["--vocab-size", "1200", "--byte-fallback", "--character-coverage", "0.995",
                "--user-defined-symbols", "<sep>,[MASK]"],
    "bpe": ["--type", "bpe", "--vocab-size", "1200", "--normalization", "identity", "--unk-id", "1",
            "--eos-id", "0", "--bos-id", "-1", "--pad-id", "2", "--character-coverage", "0.995"],
}


def main():
    if not os.path.exists("qkv"):
        sys.exit("run from the repository root after `make qkv`")
    tests = open(os.path.join(G, "test.txt"), encoding="utf-8").read().split("\n")
    if tests and tests[-1] == "":
        tests.pop()
    for name, args in MODELS.items():
        prefix = os.path.join(G, name)
        subprocess.run(["./qkv", "vocab", "train", "--input", os.path.join(G, "train.txt"), "--out", prefix,
                        "--threads", "1", "--quiet"] + args, check=True)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        size = int(args[args.index("--vocab-size") + 1])
        assert sp.get_piece_size() == size, (name, sp.get_piece_size())
        if "--unk-id" in args:
            assert sp.unk_id() == 1 and sp.eos_id() == 0 and sp.bos_id() == -1 and sp.pad_id() == 2
        else:
            assert sp.unk_id() == 0 and sp.bos_id() == 1 and sp.eos_id() == 2 and sp.pad_id() == -1
        with open(prefix + ".ids", "w") as f:
            n_unk = 0
            for line in tests:
                ids = sp.encode(line)
                n_unk += ids.count(sp.unk_id())
                f.write(" ".join(map(str, ids)) + "\n")
        with tempfile.TemporaryDirectory() as d:
            spm.SentencePieceTrainer.train(input=os.path.join(G, "train.txt"), model_prefix=os.path.join(d, "m"),
                                           num_threads=1, minloglevel=2, **SPM_OPTIONS[name])
            ref = spm.SentencePieceProcessor(model_file=os.path.join(d, "m.model"))
            ref_pieces = [ref.id_to_piece(i) for i in range(ref.get_piece_size())]
        with open(prefix + ".spm_pieces", "w") as f:
            f.write("".join(p + "\n" for p in ref_pieces))
        ours = set(sp.id_to_piece(i) for i in range(sp.get_piece_size()))
        print("%s: %d pieces, %d test lines, %d unk; %d pieces shared with sentencepiece's own"
              % (name, size, len(tests), n_unk, len(ours & set(ref_pieces))), file=sys.stderr)


if __name__ == "__main__":
    main()
