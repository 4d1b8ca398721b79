#!/usr/bin/python3
"""Fixtures for the SentencePiece-compatible tokenizer (tests/test_spm.c).

Run from the repository root (Debian's python3 with sentencepiece 0.1.97):

    /usr/bin/python3 scripts/golden/spm.py            # regenerate fixtures
    /usr/bin/python3 scripts/golden/spm.py --check-cli [TEXT...]
        # run ./qkv vocab encode/decode and spm_encode/spm_decode on the test
        # lines (or the given text files) with every fixture model, both
        # formats, and compare the outputs byte for byte
    /usr/bin/python3 scripts/golden/spm.py --check-written DIR
        # load every DIR/*.model written by qkv's C writer (tests/test_spm
        # writes them when $QKV_SPM_WRITE_DIR is set) in sentencepiece and
        # compare its encodings of the test set with the fixtures

Training text: English msgids and Chinese (zh_CN) msgstrs from the gettext
catalogs installed under /usr/share/locale (parsed with Python's gettext),
deterministic order, a few thousand lines. Nothing of it is committed.

Writes tests/golden/spm/:
  test.txt              the test lines (raw bytes, one per line; includes
                        invalid UTF-8, empty lines, tabs, very long lines)
  short.txt             those under 300 bytes (for the char, word and
                        custom-rule models, to keep their fixtures small)
  NAME.model            models trained by sentencepiece (<= 1000 pieces)
  NAME.ids / .pieces    sentencepiece's encoding of every test line: ids or
                        pieces separated by single spaces, one line per line
  NAME.decoded          decode(ids) for every line (the normalized text)
  NAME.meta             size and special ids (unk, bos, eos, pad)
  NAME.cases            decoding of chosen id and piece sequences (leading
                        U+2581, control pieces, <unk>, byte pieces, unknown
                        pieces): "id|piece<TAB>tokens<TAB>hex of the text"
  c_written/NAME.model  uni_1000_bytes and bpe_200_suffix as qkv's C writer
                        writes them (read, then written). The C test checks
                        that the writer still produces these bytes; this
                        script (--check-written) that sentencepiece loads
                        them. After regenerating the fixtures, refresh them:
                          QKV_SPM_WRITE_DIR=/tmp/w build/tests/test_spm \
                              test_model_roundtrip   # writes every model
                          /usr/bin/python3 scripts/golden/spm.py --check-written /tmp/w
                          cp /tmp/w/{uni_1000_bytes,bpe_200_suffix}.model \
                              tests/golden/spm/c_written/
"""
import glob
import gettext
import os
import subprocess
import sys

import sentencepiece as spm

OUT = "tests/golden/spm"

MODELS = [
    # name, options
    ("uni_1000", dict(model_type="unigram", vocab_size=1000)),
    ("bpe_1000", dict(model_type="bpe", vocab_size=1000)),
    ("uni_1000_bytes", dict(model_type="unigram", vocab_size=1000, byte_fallback=True,
                           normalization_rule_name="identity", character_coverage=0.98)),
    ("bpe_1000_user", dict(model_type="bpe", vocab_size=1000, byte_fallback=True,
                          normalization_rule_name="identity", character_coverage=0.98,
                          user_defined_symbols=["<sep>", "[MASK]", "qkv", "\u2581the"])),
    ("uni_100_cf", dict(model_type="unigram", vocab_size=100, normalization_rule_name="nfkc_cf",
                        user_defined_symbols=["<sep>", "http", "ing"], english_only=True)),
    ("uni_200_raw", dict(model_type="unigram", vocab_size=200, normalization_rule_name="identity",
                         add_dummy_prefix=False, remove_extra_whitespaces=False, english_only=True)),
    ("bpe_200_suffix", dict(model_type="bpe", vocab_size=200, normalization_rule_name="identity",
                            treat_whitespace_as_suffix=True, english_only=True)),
    # every 7th piece from id 40 on is then marked UNUSED (as spm_encode
    # --vocabulary does): BPE re-splits merges that produce them
    ("bpe_300_unused", dict(model_type="bpe", vocab_size=300, normalization_rule_name="identity",
                            english_only=True, unused=True)),
    ("uni_300_unused", dict(model_type="unigram", vocab_size=300, normalization_rule_name="identity",
                            english_only=True, unused=True)),
    # char and word models: checked on the short lines only (short.txt)
    ("char_bytes", dict(model_type="char", vocab_size=300, byte_fallback=True, hard_vocab_limit=False,
                        normalization_rule_name="identity", user_defined_symbols=["qkv", "<sep>"],
                        english_only=True, short=True)),
    # custom rules: a small precompiled charsmap, and a denormalizer applied
    # after decoding (A->a etc. on the way in; a->A, xx->X on the way out)
    ("uni_rules", dict(model_type="unigram", vocab_size=100, hard_vocab_limit=False, english_only=True,
                       short=True, rules=("41\t61\n42\t62\n66 69\t46 49\n3000\t20\n2460\t31\n",
                                          "61\t41\n78 78\t58\n"))),
    ("word_500", dict(model_type="word", vocab_size=500, hard_vocab_limit=False,
                      normalization_rule_name="identity", english_only=True, short=True)),
]


def varint(b, p):
    x = s = 0
    while True:
        c = b[p]
        p += 1
        x |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return x, p


def put_varint(x):
    out = bytearray()
    while True:
        out.append((x & 0x7F) | (0x80 if x > 0x7F else 0))
        x >>= 7
        if not x:
            return bytes(out)


def mark_unused(data):
    """Rewrites a ModelProto with every 7th piece from id 40 on typed UNUSED
    (5); the protobuf package is not installed, so by hand."""
    out, p, index = bytearray(), 0, 0
    while p < len(data):
        start = p
        tag, p = varint(data, p)
        assert tag & 7 == 2, "ModelProto fields are all length-delimited"
        n, p = varint(data, p)
        body = data[p:p + n]
        p += n
        if tag >> 3 == 1 and index >= 40 and index % 7 == 0:
            q, fields = 0, bytearray()
            while q < len(body):  # copy piece and score, drop any type
                t, v = varint(body, q)
                if t & 7 == 2:
                    n2, v = varint(body, v)
                    end = v + n2
                elif t & 7 == 5:
                    end = v + 4
                else:
                    end = varint(body, v)[1]
                if t >> 3 != 3:
                    fields += body[q:end]
                q = end
            fields += b"\x18\x05"
            out += put_varint(tag) + put_varint(len(fields)) + fields
        else:
            out += data[start:p]
        index += tag >> 3 == 1
    return bytes(out)


def corpus():
    en, zh = [], []
    for path in sorted(glob.glob("/usr/share/locale/zh_CN/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as f:
                cat = gettext.GNUTranslations(f)._catalog
        except Exception:
            continue
        for k, v in cat.items():
            if isinstance(k, tuple) or not k or not isinstance(v, str):
                continue
            for line in k.splitlines():
                if 3 < len(line) < 200:
                    en.append(line)
            for line in v.splitlines():
                if 1 < len(line) < 200:
                    zh.append(line)
    return en[:6000], zh[:4000]


def test_lines(en, zh):
    L = [
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "  leading and trailing spaces   ",
        "multiple     spaces\tand\ttabs\t\there",
        "",
        "digits 0123456789 and 3.14159, 1,000,000; 2024-11-25",
        "punctuation: !?.,;:'\"()[]{}<>/\\|@#$%^&*-_=+~`",
        "mixed scripts: English 中文 日本語 한국어 Русский العربية",
        "emoji 😀🎉👍🏽 and 🇫🇷 flags",
        "full-width ＡＢＣ１２３！？ and half-width ｶﾀｶﾅ",
        "NFKC: ﬁ ﬂ ① ② ㎏ ㎞ ™ ½ Ⅻ ㍻ ﹏ ＿",
        "compatibility spaces:\u00a0nbsp\u2002en\u3000ideographic\u2009thin",
        "zero width\u200bjoiner\u200dand soft\u00adhyphen",
        "Case Folding: ÀÉÎÕÜ ß ẞ Σίσυφος ΣΑΣ İstanbul",
        "combining: e\u0301 a\u0308 n\u0303 vs é ä ñ",
        "user symbols: <sep> [MASK] qkv the httping",
        "<s> </s> <unk> <pad> look like control pieces",
        "你好，世界！这是一个测试。",
        "打开文件失败：权限不够（错误代码 13）",
        "   ",
        "\t",
        "a",
        "▁ already escaped ▁▁ symbol",
        "replacement char \ufffd literal",
        "rare chars: ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ᚠᚢᚦ 𓀀",
    ]
    L += en[:40:3] + zh[:40:3]
    L.append(" ".join(en[100:700])[:4000])          # very long line, English
    L.append("".join(zh[100:400])[:1000])           # very long line, no spaces
    L.append("x" * 1500)                            # long single-character run
    return L


INVALID = [
    b"invalid \xff byte",
    b"truncated \xe4\xb8 sequence",
    b"overlong \xc0\xaf slash and surrogate \xed\xa0\x80",
    b"\x80\x80 stray continuation at start",
    b"mixed \xe4\xbd\xa0\xe5\xa5\xbd \xf4\x90\x80\x80 beyond U+10FFFF",
]


def encode_all(sp, lines):
    ids = [sp.encode(l, out_type=int) for l in lines]
    pieces = [sp.encode(l, out_type=str) for l in lines]
    dec = [sp.decode(i) for i in ids]
    return ids, pieces, dec


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-written":
        return check_written(sys.argv[2])
    if len(sys.argv) >= 2 and sys.argv[1] == "--check-cli":
        return check_cli(sys.argv[2:])
    os.makedirs(OUT, exist_ok=True)
    en, zh = corpus()
    print(f"corpus: {len(en)} English, {len(zh)} Chinese lines")
    lines = [l.encode() for l in test_lines(en, zh)] + INVALID
    assert all(b"\n" not in l and b"\r" not in l for l in lines)
    with open(f"{OUT}/test.txt", "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines))
    with open(f"{OUT}/short.txt", "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines if len(l) < 300))
    # a fixed directory: its name is recorded in each model's model_prefix,
    # and the committed C-written copies must match byte for byte
    tmp = "build/spm-golden"
    os.makedirs(tmp, exist_ok=True)
    if True:
        both, eng = f"{tmp}/both.txt", f"{tmp}/en.txt"
        with open(both, "w") as f:
            f.write("\n".join(en + zh) + "\n")
        with open(eng, "w") as f:
            f.write("\n".join(en) + "\n")
        for name, opts in MODELS:
            opts = dict(opts)
            inp = eng if opts.pop("english_only", False) else both
            unused = opts.pop("unused", False)
            short = opts.pop("short", False)
            rules = opts.pop("rules", None)
            if rules:
                for kind, text in zip(("normalization", "denormalization"), rules):
                    with open(f"{tmp}/{name}.{kind}.tsv", "w") as f:
                        f.write(text)
                    opts[f"{kind}_rule_tsv"] = f"{tmp}/{name}.{kind}.tsv"
            spm.SentencePieceTrainer.train(input=inp, model_prefix=f"{tmp}/{name}", num_threads=2,
                                           minloglevel=2, **opts)
            data = open(f"{tmp}/{name}.model", "rb").read()
            if unused:
                data = mark_unused(data)
            with open(f"{OUT}/{name}.model", "wb") as f:
                f.write(data)
            write_expectations(name, [l for l in lines if len(l) < 300] if short else lines)
    total = sum(os.path.getsize(p) for p in glob.glob(f"{OUT}/*"))
    print(f"{OUT}: {total} bytes")


def decode_lines(lines):
    # sentencepiece's Python API takes str; invalid bytes must reach it as
    # bytes so it applies its own replacement rule.
    return [l if not is_valid(l) else l.decode() for l in lines]


def is_valid(b):
    try:
        b.decode()
        return True
    except UnicodeDecodeError:
        return False


def write_expectations(name, lines):
    sp = spm.SentencePieceProcessor(model_file=f"{OUT}/{name}.model")
    ids, pieces, dec = encode_all(sp, decode_lines(lines))
    # spm_encode must agree with the library (the CLI is compared to it)
    cli = subprocess.run(["spm_encode", f"--model={OUT}/{name}.model", "--output_format=id"],
                         input=b"".join(l + b"\n" for l in lines), capture_output=True, check=True).stdout
    want = "".join(" ".join(map(str, i)) + "\n" for i in ids).encode()
    assert cli == want, f"{name}: spm_encode differs from the Python library"
    write_cases(name, sp)
    with open(f"{OUT}/{name}.ids", "w") as f:
        f.write("".join(" ".join(map(str, i)) + "\n" for i in ids))
    with open(f"{OUT}/{name}.pieces", "wb") as f:
        f.write(b"".join(b" ".join(x if isinstance(x, bytes) else x.encode() for x in p) + b"\n"
                         for p in pieces))
    with open(f"{OUT}/{name}.decoded", "wb") as f:
        f.write(b"".join((d if isinstance(d, bytes) else d.encode()) + b"\n" for d in dec))


CASES = [
    ["<s>", "\u2581a"], ["\u2581", "\u2581", "\u2581a"], ["<s>", "\u2581", "</s>", "\u2581a"],
    ["<unk>", "\u2581a"], ["\u2581", "<unk>", "\u2581a"], ["\u2581a", "\u2581a"], ["a", "\u2581"],
    ["<0x41>", "\u2581a"], ["\u2581", "<0x41>", "\u2581a"], ["<0xE2>", "<0x96>", "<0x81>", "\u2581a"],
    ["<0x20>", "\u2581a"], ["<0xFF>", "<0xE4>", "<0xB8>", "a", "<0xE4>"], ["<0xE4>", "<0xBD>", "<0xA0>"],
    ["\u2581xyzzy", "\u2581a"], ["xyzzy\u2581q", "<unk>"], [], ["</s>"], ["\u2581\u2581a"],
    ["<sep>", "\u2581a"], ["\u2581the", "\u2581the"],
]


def write_cases(name, sp):
    rows = []
    for ps in CASES:
        ids = [sp.piece_to_id(p) for p in ps]
        rows.append("id\t%s\t%s" % (" ".join(map(str, ids)), sp.decode(ids).encode().hex()))
        rows.append("piece\t%s\t%s" % (" ".join(ps), sp.decode_pieces(ps).encode().hex()))
    with open(f"{OUT}/{name}.cases", "w") as f:
        f.write("\n".join(rows) + "\n")
    with open(f"{OUT}/{name}.meta", "w") as f:
        f.write(f"size {sp.get_piece_size()}\nunk {sp.unk_id()}\nbos {sp.bos_id()}\n"
                f"eos {sp.eos_id()}\npad {sp.pad_id()}\n")


def check_cli(texts):
    def run(cmd, data):
        return subprocess.run(cmd, input=data, capture_output=True).stdout

    bad = 0
    for p in sorted(glob.glob(f"{OUT}/*.model")):
        name = os.path.basename(p)[:-6]
        for t in texts or [f"{OUT}/test.txt", f"{OUT}/short.txt"]:
            data = open(t, "rb").read()
            checks = 0
            for fmt in ("id", "piece"):
                for extra in ([], ["bos:eos"], ["reverse:eos"]):
                    want = run(["spm_encode", f"--model={p}", f"--output_format={fmt}"] +
                               [f"--extra_options={e}" for e in extra], data)
                    got = run(["./qkv", "vocab", "encode", "--model", p, "--output-format", fmt] +
                              sum((["--extra-options", e] for e in extra), []), data)
                    checks += 1
                    if got != want:
                        bad += 1
                        print(f"DIFF {name} {t} encode {fmt} {extra}")
                    if extra:
                        continue
                    want_d = run(["spm_decode", f"--model={p}", f"--input_format={fmt}"], want)
                    got_d = run(["./qkv", "vocab", "decode", "--model", p, "--input-format", fmt], want)
                    checks += 1
                    if got_d != want_d:
                        bad += 1
                        print(f"DIFF {name} {t} decode {fmt}")
            print(f"{name} {t}: {checks} comparisons")
    print("all identical" if not bad else f"{bad} differences")
    return 1 if bad else 0


def check_written(d):
    all_lines = open(f"{OUT}/test.txt", "rb").read().split(b"\n")[:-1]
    paths = sorted(glob.glob(f"{d}/*.model"))
    assert paths, f"no .model files in {d}"
    for p in paths:
        name = os.path.basename(p)[:-6]
        sp = spm.SentencePieceProcessor(model_file=p)
        lines = all_lines
        if sp.get_piece_size() and len(open(f"{OUT}/{name}.ids").read().split("\n")) - 1 != len(lines):
            lines = [l for l in all_lines if len(l) < 300]
        ids, _, _ = encode_all(sp, decode_lines(lines))
        want = [list(map(int, l.split())) for l in open(f"{OUT}/{name}.ids").read().split("\n")[:-1]]
        bad = [i for i in range(len(want)) if ids[i] != want[i]]
        assert not bad, f"{p}: lines {bad[:5]} differ"
        print(f"ok {p}: sentencepiece loads it and encodes {len(lines)} lines as the original")


if __name__ == "__main__":
    sys.exit(main())
