#!/usr/bin/env python3
"""Fixtures for the Hugging Face Marian (OPUS-MT) loader, the tokenizer layer
and decoding parity (tests/test_marian.c, tests/test_tokenizer.c, and the
decoding tests of issue 6).

Run from the repository root, in a venv that has transformers (4.39 works
with Debian's torch 1.13 and Python 3.11):

    /usr/bin/python3 -m venv --system-site-packages .venv-marian
    .venv-marian/bin/pip install 'transformers<4.40' safetensors
    .venv-marian/bin/python scripts/golden/marian.py [opus_tiny] [sep_f16]

    # export check: directories written by qkv's marian_export load in
    # transformers and give the fixtures' ids, logits and translations
    QKV_MARIAN_EXPORT_DIR=/tmp/qkv_export build/tests/test_marian
    .venv-marian/bin/python scripts/golden/marian.py --check-export /tmp/qkv_export

Training text: English msgids and Chinese (zh_CN) msgstrs of the gettext
catalogs under /usr/share/locale (as scripts/golden/spm.py). Nothing of it is
committed except the test sentences.

Writes tests/golden/marian/:
  opus_tiny/        a MarianMTModel directory laid out as OPUS-MT's en-zh:
                    unigram source.spm (nmt_nfkc) / target.spm, one joint
                    vocab.json ("</s>" 0, "<unk>" 1, pieces by corpus
                    frequency, some rare pieces left out, "<pad>" last),
                    shared and tied embeddings, swish, scale_embedding,
                    BF16 model.safetensors, generation defaults in config.json
  sep_f16/          another shape: encoder and decoder differ in heads, FFN
                    size and layers; separate vocabularies (vocab.json +
                    target_vocab.json, decoder_vocab_size), untied
                    embeddings and lm_head, gelu, no embedding scale,
                    identity-normalised spm (BPE with byte fallback on the
                    target side), "<pad>" at id 2, F16 weights,
                    generation_config.json overriding config.json
  NAME.tokens.jsonl one object per test sentence:
                    {"text", "ids"}               MarianTokenizer(text).input_ids
                    {"target_text", "ids"}        tokenizer(text_target=...)
                    {"decode_ids", "text"}        decode(ids, skip_special_tokens=True)
  NAME.forward.safetensors   teacher forcing: src.I, tgt_in.I (I32) and
                    logits.I (F32, [T, V]) of model(input_ids, decoder_input_ids)
  NAME.generate.jsonl   one object per (setting, sentence):
                    {"setting": name, "args": {generate() kwargs}, "src": ids,
                     "out": generate()'s sequences[0] (starts with the decoder
                     start id), "score": sequences_scores[0] for beams, the sum
                     of the log-softmaxed processed scores for greedy;
                     "text": the decoded output, greedy and beam4 only}
                    generate() gets the tokenizer's attention mask (all ones):
                    a "<pad>" written in a sentence is a real token.
  sentences.txt     the English test sentences given to generate()

Random weights decode into one token repeated to max_length, so each model
is trained for a few hundred Adam steps on the parallel text (single thread,
seeded), then gets a random final_logits_bias and, if greedy outputs still
rarely stop, a raised EOS bias (tune_eos): outputs of different lengths, most
ending with EOS before max_length (still repetitive: the models are tiny).
"""
import gettext
import glob
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import sentencepiece as spm
import torch
from safetensors.torch import save_file
from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

OUT = os.environ.get("QKV_MARIAN_OUT", "tests/golden/marian")
STEPS = 150


def corpus():
    en, zh = [], []
    for path in sorted(glob.glob("/usr/share/locale/zh_CN/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as f:
                cat = gettext.GNUTranslations(f)._catalog
        except Exception:
            continue
        for k, v in sorted((k, v) for k, v in cat.items() if isinstance(k, str) and isinstance(v, str)):
            if not k or "\n" in k or "\n" in v:
                continue
            if 3 < len(k) < 120 and 1 < len(v) < 120:
                en.append(k)
                zh.append(v)
    return en, zh


def train_spm(lines, prefix, **opts):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        name = f.name
    spm.SentencePieceTrainer.train(input=name, model_prefix=prefix, bos_id=-1, eos_id=0, unk_id=1,
                                   minloglevel=2, **opts)
    os.unlink(name)


def marian_vocab(sps, lines_per_sp, drop_rare, pad_at=None):
    """OPUS-MT style vocab.json: "</s>" 0, "<unk>" 1, then pieces by corpus
    frequency (Marian's vocab is built from the encoded training data), the
    rarest few left out, "<pad>" last (or at pad_at)."""
    freq = {}
    for sp, lines in zip(sps, lines_per_sp):
        for l in lines:
            for p in sp.encode(l, out_type=str):
                freq[p] = freq.get(p, 0) + 1
        for i in range(sp.get_piece_size()):
            p = sp.id_to_piece(i)
            if not (sp.is_control(i) or sp.is_unknown(i)):
                freq.setdefault(p, 0)
    pieces = sorted(freq, key=lambda p: (-freq[p], p))
    if drop_rare:
        pieces = pieces[:len(pieces) - drop_rare]
    vocab = ["</s>", "<unk>"]
    if pad_at is not None:
        vocab.insert(pad_at, "<pad>")
    vocab += [p for p in pieces if p not in ("</s>", "<unk>", "<pad>")]
    if pad_at is None:
        vocab.append("<pad>")
    return {p: i for i, p in enumerate(vocab)}


TEST_EXTRA = [
    "",
    "   ",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  leading and trailing spaces   ",
    "multiple     spaces\tand\ttabs",
    "digits 0123456789 and 3.14159, 1,000,000",
    "NFKC: \ufb01le \u2460 \u338f \uff21\uff22\uff23\uff11\uff12",
    "mixed scripts: English \u4e2d\u6587 \u0420\u0443\u0441\u0441\u043a\u0438\u0439",
    "rare chars: \ua66e \U0001d518 \u16a0 and emoji \U0001f600",
    ">>zho<< Open the file",
    "Open >>fr<< the file",
    "<s> </s> <unk> <pad> look like special tokens",
    "\u2581 already escaped \u2581\u2581 symbol",
    "Don't stop: it's here , isn't it ?",
]


def tokens_jsonl(path, tok, sentences, targets, decode_cases):
    with open(path, "w", encoding="utf-8") as f:
        for s in sentences:
            ids = tok(s).input_ids
            f.write(json.dumps({"text": s, "ids": ids}, ensure_ascii=False, separators=(",", ":")) + "\n")
        for t in targets:
            ids = tok(text_target=t).input_ids
            f.write(json.dumps({"target_text": t, "ids": ids}, ensure_ascii=False, separators=(",", ":")) + "\n")
        for ids in decode_cases:
            text = tok.decode(ids, skip_special_tokens=True)
            f.write(json.dumps({"decode_ids": ids, "text": text}, ensure_ascii=False, separators=(",", ":")) + "\n")


SETTINGS = [
    ("greedy", dict(num_beams=1)),
    ("beam4", dict(num_beams=4)),
    ("beam5", dict(num_beams=5)),
    ("beam4_lp0.6", dict(num_beams=4, length_penalty=0.6)),
    ("beam4_lp1.0", dict(num_beams=4, length_penalty=1.0)),
    ("beam5_lp0.6_early", dict(num_beams=5, length_penalty=0.6, early_stopping=True)),
    ("greedy_norepeat3", dict(num_beams=1, no_repeat_ngram_size=3)),
    ("beam4_norepeat3", dict(num_beams=4, no_repeat_ngram_size=3)),
    ("greedy_min8", dict(num_beams=1, min_length=8)),
    ("beam4_min8", dict(num_beams=4, min_length=8)),
    ("greedy_max6", dict(num_beams=1, max_length=6)),
    ("beam4_max6", dict(num_beams=4, max_length=6)),
]


@torch.no_grad()
def generate_jsonl(path, model, tok, sentences):
    n_lens = {}
    with open(path, "w", encoding="utf-8") as f:
        for name, args in SETTINGS:
            lens = []
            for s in sentences:
                enc = tok(s, return_tensors="pt")
                out = model.generate(**enc, **args, output_scores=True, return_dict_in_generate=True)
                seq = out.sequences[0].tolist()
                if args["num_beams"] > 1:
                    score = float(out.sequences_scores[0])
                else:
                    # compute_transition_scores(normalize_logits=True) by hand:
                    # it assumes config.vocab_size logits, wrong with
                    # separate vocabularies
                    score = float(sum(torch.log_softmax(sc[0].float(), -1)[seq[t + 1]]
                                      for t, sc in enumerate(out.scores)))
                rec = {"setting": name, "args": args, "src": enc.input_ids[0].tolist(), "out": seq,
                       "score": score}
                if name in ("greedy", "beam4"):
                    rec["text"] = tok.decode(seq, skip_special_tokens=True)
                f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
                lens.append(len(seq))
            n_lens[name] = (min(lens), max(lens), len(set(lens)))
    return n_lens


@torch.no_grad()
def forward_fixture(path, model, tok, pairs):
    t = {}
    for i, (s, z) in enumerate(pairs):
        src = tok(s, return_tensors="pt").input_ids
        labels = tok(text_target=z, return_tensors="pt").input_ids
        tgt_in = torch.cat([torch.tensor([[model.config.decoder_start_token_id]]), labels[:, :-1]], dim=1)
        logits = model(input_ids=src, decoder_input_ids=tgt_in).logits[0]
        t[f"src.{i}"] = src[0].to(torch.int32).contiguous()
        t[f"tgt_in.{i}"] = tgt_in[0].to(torch.int32).contiguous()
        t[f"logits.{i}"] = logits.float().contiguous()
    save_file(t, path, metadata={"pairs": str(len(pairs))})


def train(model, tok, pairs, steps):
    """A few hundred Adam steps on the parallel text: random weights decode
    into one token repeated to max_length; a little training gives varied
    outputs that stop with EOS at different lengths."""
    torch.set_num_threads(1)
    pad = model.config.pad_token_id
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    model.train()
    for step in range(steps):
        b = [pairs[i] for i in rng.integers(0, len(pairs), 32)]
        enc = tok([x for x, _ in b], text_target=[y for _, y in b], return_tensors="pt", padding=True,
                  truncation=True, max_length=40)
        lab = enc["labels"]
        lab[lab == pad] = -100
        loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=lab).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"  step {step} loss {float(loss):.3f}", flush=True)


@torch.no_grad()
def tune_eos(model, tok, probe):
    """A barely trained model tends to loop to max_length: raise the EOS
    logit bias by the smallest step that lets about half of the greedy
    outputs end with EOS, without most of them ending at once."""
    eos = model.config.eos_token_id
    base = model.final_logits_bias[0, eos].item()
    for boost in [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]:
        model.final_logits_bias[0, eos] = base + boost
        lens = [model.generate(**tok(s, return_tensors="pt"), num_beams=1, max_length=40).shape[1] for s in probe]
        early = sum(1 for l in lens if l < 40)
        tiny = sum(1 for l in lens if l <= 3)
        print(f"  eos boost {boost}: lengths {sorted(lens)}", flush=True)
        if early >= len(probe) // 2 and tiny < len(probe) // 2:
            return
    model.final_logits_bias[0, eos] = base + 1.0


def build(name, cfg_kwargs, gen_in_config, gen_file, vocab, tgt_vocab, src_spm, tgt_spm, dtype, seed,
          steps, bias_std, sentences, targets, pairs, train_pairs):
    """Builds, trains a little, saves and runs one fixture directory."""
    d = f"{OUT}/{name}"
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(src_spm, f"{d}/source.spm")
    shutil.copy(tgt_spm, f"{d}/target.spm")
    with open(f"{d}/vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=2)
    tk = {}
    if tgt_vocab is not None:
        with open(f"{d}/target_vocab.json", "w", encoding="utf-8") as f:
            json.dump(tgt_vocab, f, ensure_ascii=False, indent=2)
        tk["separate_vocabs"] = True
        tk["target_vocab_file"] = f"{d}/target_vocab.json"
    tok = MarianTokenizer(f"{d}/source.spm", f"{d}/target.spm", f"{d}/vocab.json", source_lang="en",
                          target_lang="zh", **tk)
    torch.manual_seed(seed)
    cfg = MarianConfig(**cfg_kwargs, **gen_in_config)
    model = MarianMTModel(cfg)
    train(model, tok, train_pairs, steps)
    with torch.no_grad():
        # final_logits_bias is a buffer that training leaves at zero
        model.final_logits_bias.normal_(0.0, bias_std)
    model.eval()
    tune_eos(model, tok, sentences[15:31])
    if gen_file:
        model.generation_config = GenerationConfig.from_model_config(model.config)
        for k, v in gen_file.items():
            setattr(model.generation_config, k, v)
    if dtype != torch.float32:
        model = model.to(dtype)
    model.save_pretrained(d, safe_serialization=True)
    tok.save_pretrained(d)
    # Everything below runs the model as reloaded from the directory, in
    # float32 (the F16 weights widened exactly, as qkv does).
    model = MarianMTModel.from_pretrained(d).float().eval()
    tok = MarianTokenizer.from_pretrained(d)
    decode_cases = []
    V = model.config.decoder_vocab_size
    rng = np.random.default_rng(seed)
    for k in range(20):
        ids = [int(x) for x in rng.integers(0, V, size=int(rng.integers(0, 12)))]
        decode_cases.append(ids)
    decode_cases += [[cfg.pad_token_id, 5, 6, 7, cfg.eos_token_id], [cfg.eos_token_id], [],
                     [tok.unk_token_id, 8, tok.unk_token_id, 9]]
    tokens_jsonl(f"{OUT}/{name}.tokens.jsonl", tok, sentences, targets, decode_cases)
    forward_fixture(f"{OUT}/{name}.forward.safetensors", model, tok, pairs)
    gen_sentences = [s for s in sentences if s.strip()][:56]
    lens = generate_jsonl(f"{OUT}/{name}.generate.jsonl", model, tok, gen_sentences)
    print(name, "output lengths (min, max, distinct) per setting:", lens)
    return gen_sentences


@torch.no_grad()
def check_export(root):
    """Loads the directories qkv's marian_export wrote (tests/test_marian with
    QKV_MARIAN_EXPORT_DIR=root) in transformers and compares them with the
    fixtures they came from: tokenizer ids and decodes, teacher-forced
    logits, greedy and beam-4 generate() outputs. Exits non-zero on a
    difference."""
    from safetensors import safe_open
    bad = 0
    for name in ("opus_tiny", "sep_f16", "spm_uni_1000"):
        d = f"{root}/{name}"
        if not os.path.isdir(d):
            print(f"{name}: not exported, skipped")
            continue
        model = MarianMTModel.from_pretrained(d).eval()
        tok = MarianTokenizer.from_pretrained(d)
        if name == "spm_uni_1000":
            sp = spm.SentencePieceProcessor(model_file="tests/golden/spm/uni_1000.model")
            lines = [l.rstrip("\n") for l in open(f"{OUT}/sentences.txt", encoding="utf-8")]
            # MarianTokenizer also splits out language codes and special
            # tokens written in the text: those lines differ on purpose
            plain = [l for l in lines if ">>" not in l and not any(t in l for t in ("</s>", "<unk>", "<pad>"))]
            n = sum(tok(l).input_ids != sp.encode(l) + [sp.eos_id()] for l in plain)
            lines = plain
            out = model.generate(**tok(["Hello, world!", "Open the file"], return_tensors="pt", padding=True),
                                 max_length=8)
            print(f"{name}: {n} of {len(lines)} sentences tokenized differently from sentencepiece; "
                  f"generate() gives {list(out.shape)}")
            bad += n
            continue
        n_tok = 0
        for line in open(f"{OUT}/{name}.tokens.jsonl", encoding="utf-8"):
            r = json.loads(line)
            if "decode_ids" in r:
                n_tok += tok.decode(r["decode_ids"], skip_special_tokens=True) != r["text"]
            elif "target_text" in r:
                n_tok += tok(text_target=r["target_text"]).input_ids != r["ids"]
            else:
                n_tok += tok(r["text"]).input_ids != r["ids"]
        f = safe_open(f"{OUT}/{name}.forward.safetensors", "pt")
        worst = 0.0
        for i in range(int(f.metadata()["pairs"])):
            src = f.get_tensor(f"src.{i}").long()[None]
            tgt = f.get_tensor(f"tgt_in.{i}").long()[None]
            want = f.get_tensor(f"logits.{i}")
            got = model(input_ids=src, decoder_input_ids=tgt).logits[0]
            worst = max(worst, float((got - want).abs().max() / want.abs().max()))
        n_gen = n_cmp = 0
        for line in open(f"{OUT}/{name}.generate.jsonl", encoding="utf-8"):
            r = json.loads(line)
            if r["setting"] not in ("greedy", "beam4") or n_cmp >= 40:
                continue
            src = torch.tensor([r["src"]])
            # an explicit mask: a "<pad>" written in the text is a real token
            out = model.generate(src, attention_mask=torch.ones_like(src), **r["args"])
            n_gen += out[0].tolist() != r["out"]
            n_cmp += 1
        print(f"{name}: tokenizer cases differing {n_tok}; logits max rel diff {worst:.2e}; "
              f"generate() outputs differing {n_gen} of {n_cmp}")
        bad += n_tok + n_gen + (worst > 1e-5)
    sys.exit(1 if bad else 0)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-export":
        return check_export(sys.argv[2])
    which = sys.argv[1:] or ["opus_tiny", "sep_f16"]
    os.makedirs(OUT, exist_ok=True)
    en, zh = corpus()
    print(f"corpus: {len(en)} pairs")
    rng = np.random.default_rng(7)
    idx = rng.permutation(len(en))
    test_idx, train_idx = idx[:60], idx[60:4000]
    en_train = [en[i] for i in train_idx]
    zh_train = [zh[i] for i in train_idx]
    sentences = TEST_EXTRA + [en[i] for i in test_idx]
    targets = [zh[i] for i in test_idx[:20]] + ["", "\u4f60\u597d\uff0c\u4e16\u754c\uff01 ok"]
    short = [i for i in test_idx if len(en[i]) < 30 and len(zh[i]) < 12]
    pairs = [(en[i], zh[i]) for i in short[:3]] + [("Hello, world!", "")]
    train_pairs = [(a, b) for a, b in zip(en_train, zh_train) if len(a) < 60]

    tmp = tempfile.mkdtemp()
    # opus_tiny: OPUS-MT en-zh in small: unigram, nmt_nfkc, joint vocab.json
    train_spm(en_train, f"{tmp}/en", model_type="unigram", vocab_size=300)
    # the target side without nmt_nfkc's 240 kB character map, to keep the
    # fixtures small (the source side keeps it, as OPUS-MT has)
    train_spm(zh_train[:400], f"{tmp}/zh", model_type="unigram", vocab_size=700, character_coverage=0.98,
              normalization_rule_name="identity")
    sp_en = spm.SentencePieceProcessor(model_file=f"{tmp}/en.model")
    sp_zh = spm.SentencePieceProcessor(model_file=f"{tmp}/zh.model")
    vocab = marian_vocab([sp_en, sp_zh], [en_train, zh_train], drop_rare=12)
    V = len(vocab)
    pad = vocab["<pad>"]
    cfg = dict(vocab_size=V, decoder_vocab_size=V, d_model=32, encoder_layers=2, decoder_layers=2,
               encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
               activation_function="swish", scale_embedding=True, max_position_embeddings=64,
               pad_token_id=pad, eos_token_id=0, decoder_start_token_id=pad, forced_eos_token_id=0,
               share_encoder_decoder_embeddings=True, dropout=0.1, attention_dropout=0.0,
               activation_dropout=0.0, init_std=0.02)
    gen = dict(max_length=40, num_beams=4, bad_words_ids=[[pad]])
    if "opus_tiny" in which:
        sents = build("opus_tiny", cfg, gen, None, vocab, None, f"{tmp}/en.model", f"{tmp}/zh.model",
                  torch.bfloat16, 1, steps=2 * STEPS + 100, bias_std=0.5, sentences=sentences, targets=targets,
                      pairs=pairs, train_pairs=train_pairs)
        with open(f"{OUT}/sentences.txt", "w", encoding="utf-8") as f:
            f.write("".join(s + "\n" for s in sents))

    # sep_f16: separate vocabularies, untied, F16, other shapes everywhere
    # larger than the target side: transformers 4.39 gives the decoder embedding
    # vocab_size rows (a copy of the encoder's), so target ids must fit in it
    train_spm(en_train, f"{tmp}/en2", model_type="unigram", vocab_size=800, normalization_rule_name="identity")
    train_spm(zh_train[:100], f"{tmp}/zh2", model_type="bpe", vocab_size=700, normalization_rule_name="identity",
              byte_fallback=True, character_coverage=0.98)
    sp_en2 = spm.SentencePieceProcessor(model_file=f"{tmp}/en2.model")
    sp_zh2 = spm.SentencePieceProcessor(model_file=f"{tmp}/zh2.model")
    sv = marian_vocab([sp_en2], [en_train], drop_rare=5, pad_at=2)
    tv = marian_vocab([sp_zh2], [zh_train], drop_rare=5, pad_at=2)
    cfg2 = dict(vocab_size=len(sv), decoder_vocab_size=len(tv), d_model=24, encoder_layers=3, decoder_layers=2,
                encoder_attention_heads=4, decoder_attention_heads=6, encoder_ffn_dim=40, decoder_ffn_dim=56,
                activation_function="gelu", scale_embedding=False, max_position_embeddings=48,
                pad_token_id=2, eos_token_id=0, decoder_start_token_id=2, forced_eos_token_id=0,
                share_encoder_decoder_embeddings=False, tie_word_embeddings=False, dropout=0.0)
    gen_cfg = dict(max_length=30, num_beams=2, bad_words_ids=[[2]])
    gen_file = dict(max_length=32, num_beams=3, length_penalty=0.8, bad_words_ids=[[2], [1]])
    if "sep_f16" in which:
        # generation_config.json (written here) replaces config.json's fields
        build("sep_f16", cfg2, gen_cfg, gen_file, sv, tv, f"{tmp}/en2.model", f"{tmp}/zh2.model", torch.float16, 2,
          steps=STEPS, bias_std=0.5, sentences=sentences, targets=targets, pairs=pairs, train_pairs=train_pairs)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
