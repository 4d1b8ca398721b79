#!/usr/bin/env python3
"""Fixtures for qkv's BERT encoder and sentence embeddings (tests/test_embed.c):

  tests/golden/bert/tiny/    a small random BertModel (hidden 32, 2 layers,
                             4 heads, FFN 48, 40 positions, 3 token types)
                             saved as sentence-transformers saves one:
                             config.json, model.safetensors, vocab.txt,
                             tokenizer_config.json, modules.json (Transformer,
                             Pooling, Normalize), sentence_bert_config.json
                             (max_seq_length 24: some test lines are cut),
                             1_Pooling/config.json (mean)
  tests/golden/bert/tiny.embeddings.safetensors
                             sentence-transformers' encode() of
                             sentences.txt with the directory's own modules
                             ("default": mean + Normalize) and with Pooling
                             in cls / max / mean mode without Normalize
  tests/golden/bert/marian.embeddings.safetensors
                             the masked mean of MarianMTModel's encoder output
                             (tests/golden/marian/opus_tiny) over the same
                             sentences, EOS included

Run from the repository root, in the venv of scripts/golden/wordpiece.py:

    .venv-embed/bin/python scripts/golden/bert.py
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer, models
from transformers import BertConfig, BertModel, MarianMTModel, MarianTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st import write_safetensors  # noqa: E402

OUT = "tests/golden/bert"
TINY = os.path.join(OUT, "tiny")

SENTENCES = [
    "Hello, world!",
    "The file could not be opened.",
    "Open File",
    "Cancel",
    "I love you",
    "Save the document before closing?",
    "我爱你",
    "Café crème brûlée",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g",
    "Print",
    "unbelievable unaffable",
    "x",
    "The quick brown fox jumps over the lazy dog and keeps running until the end of the line",
    "emoji 😀 and control\x07chars",
]


def make_vocab():
    src = "tests/golden/wordpiece/minilm/vocab.txt"
    toks = [t.rstrip("\n") for t in open(src, encoding="utf-8")]
    keep = toks[:5] + [t for t in toks[1000:1700]]
    keep = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [t for t in keep if not t.startswith("[")]
    for c in "abcdefghijklmnopqrstuvwxyz":
        for t in (c, "##" + c):
            if t not in keep:
                keep.append(t)
    for t in ["我", "爱", "你", "cafe", "creme", "file", "open", "##able"]:
        if t not in keep:
            keep.append(t)
    return keep


def main():
    torch.manual_seed(15)
    shutil.rmtree(TINY, ignore_errors=True)
    os.makedirs(os.path.join(TINY, "1_Pooling"))
    vocab = make_vocab()
    with open(os.path.join(TINY, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(TINY, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer", "model_max_length": 40}, f)
    cfg = BertConfig(vocab_size=len(vocab) + 3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=40, type_vocab_size=3, hidden_act="gelu",
                     layer_norm_eps=1e-12)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    with torch.no_grad():  # larger than init's 0.02 so that the layers matter
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(TINY, safe_serialization=True)
    with open(os.path.join(TINY, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
                  f, indent=1)
    with open(os.path.join(TINY, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 24, "do_lower_case": False}, f)
    with open(os.path.join(TINY, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
                   "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, f)
    with open(os.path.join(OUT, "sentences.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(SENTENCES) + "\n")

    st = SentenceTransformer(TINY, device="cpu")
    out = {"default": st.encode(SENTENCES, batch_size=4, convert_to_numpy=True)}
    ids = [st.tokenize([s])["input_ids"][0].tolist() for s in SENTENCES]
    assert max(len(i) for i in ids) == 24, "some line must reach max_seq_length"
    word = models.Transformer(TINY, max_seq_length=24)
    for mode in ["cls", "max", "mean"]:
        m = SentenceTransformer(modules=[word, models.Pooling(32, pooling_mode=mode)], device="cpu")
        out[mode] = m.encode(SENTENCES, batch_size=5, convert_to_numpy=True)
    write_safetensors(os.path.join(OUT, "tiny.embeddings.safetensors"),
                      {k: v.astype(np.float32) for k, v in out.items()})

    mdir = "tests/golden/marian/opus_tiny"
    tok = MarianTokenizer.from_pretrained(mdir)
    mm = MarianMTModel.from_pretrained(mdir).eval()
    enc = tok(SENTENCES, return_tensors="pt", padding=True)
    with torch.no_grad():
        h = mm.get_encoder()(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (h * mask).sum(1) / mask.sum(1)
    write_safetensors(os.path.join(OUT, "marian.embeddings.safetensors"),
                      {"mean": mean.numpy().astype(np.float32)})
    print("wrote", OUT)


main()
