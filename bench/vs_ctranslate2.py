#!/usr/bin/env python3
"""Python side of bench/vs_ctranslate2 and scripts/check-export: translate a
file with transformers or CTranslate2 the way `qkv translate` does, and
convert an exported Marian directory for CTranslate2.

Run in the venv the driver makes (.venv-ct2: transformers<4.40, ctranslate2 4.5.0,
sentencepiece over Debian's torch 1.13):

    PY=.venv-ct2/bin/python
    $PY bench/vs_ctranslate2.py hf  --model HF_DIR  --input F --output F [--beam N --batch N --threads N --max-length N]
    $PY bench/vs_ctranslate2.py ct2 --model CT2_DIR --hf HF_DIR --input F --output F [same options]
    $PY bench/vs_ctranslate2.py ct2 --model QKV_CT2_DIR --input F --output F [same options]
    $PY bench/vs_ctranslate2.py convert-qkv MODEL.qkv OUT_DIR [--quantization int8|int8_float32|...]
    $PY bench/vs_ctranslate2.py score --model QKV_CT2_DIR --src F --tgt F   (as qkv score prints it)
    $PY bench/vs_ctranslate2.py convert-faithful HF_DIR OUT_DIR [--quantization int8]
    $PY bench/vs_ctranslate2.py count --hf HF_DIR FILE...  |  count --ct2 QKV_CT2_DIR FILE...

Each translation run writes one line of JSON to stderr (last line):
{"engine", "load_s", "translate_s", "sentences"}; translate_s excludes
imports and model loading.

Settings (kept identical across engines; see scripts/check-export):
  max_length L   as generate(): counts the decoder start token, so at most
                 L-1 tokens are generated; CTranslate2 gets
                 max_decoding_length L-1 (it does not count the start token)
  no forced EOS  generate() gets forced_eos_token_id=None, qkv --forced-eos 0:
                 CTranslate2 has no such rule, so a translation cut at the
                 cap would otherwise differ in its last token
  pad never generated (bad_words_ids / suppress_sequences)
  length_penalty 1.0, early_stopping False (transformers' defaults);
  CTranslate2: length_penalty 1, beam_size, num_hypotheses 1,
  return_end_token False
"""
import argparse
import json
import os
import sys
import time


def read_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n") for line in f]


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def batches(items, n):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def run_hf(a):
    t0 = time.perf_counter()
    import torch
    from transformers import MarianMTModel, MarianTokenizer

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    tok = MarianTokenizer.from_pretrained(a.model)
    model = MarianMTModel.from_pretrained(a.model).eval()
    lines = read_lines(a.input)
    load_s = time.perf_counter() - t0
    out = [""] * len(lines)
    # empty lines stay empty (as qkv translate); the rest keep their order
    idx = [i for i, l in enumerate(lines) if l.strip()]
    t1 = time.perf_counter()
    with torch.inference_mode():
        for chunk in batches(idx, a.batch):
            enc = tok([lines[i] for i in chunk], return_tensors="pt", padding=True)
            gen = model.generate(
                **enc,
                num_beams=a.beam,
                do_sample=False,
                max_length=a.max_length,
                forced_eos_token_id=None,
                length_penalty=1.0,
                early_stopping=False,
                bad_words_ids=[[model.config.pad_token_id]],
            )
            for i, text in zip(chunk, tok.batch_decode(gen, skip_special_tokens=True)):
                out[i] = text
    translate_s = time.perf_counter() - t1
    write_lines(a.output, out)
    print(json.dumps({"engine": "transformers", "load_s": load_s, "translate_s": translate_s, "sentences": len(idx)}),
          file=sys.stderr)


def run_ct2(a):
    t0 = time.perf_counter()
    import ctranslate2

    qkv_dir = os.path.exists(os.path.join(a.model, "qkv.json"))
    if not qkv_dir and not a.hf:
        sys.exit("vs_ctranslate2 ct2: %s is no convert-qkv directory; give --hf (the Marian tokenizer)" % a.model)
    try:
        tr = ctranslate2.Translator(a.model, device="cpu", compute_type=a.compute_type, inter_threads=1,
                                    intra_threads=a.threads)
    except ValueError as e:  # a compute type this CPU build does not run (int8_bfloat16, bfloat16)
        print(json.dumps({"engine": "ctranslate2-" + a.compute_type, "refused": str(e)}), file=sys.stderr)
        return
    lines = read_lines(a.input)
    idx = [i for i, l in enumerate(lines) if l.strip()]
    if qkv_dir:
        # a convert-qkv directory: the checkpoint's own SentencePiece
        # models, source ids + EOS and the suppressed ids as qkv translate
        from vs_ctranslate2_qkv import QkvTokenizer

        tok = QkvTokenizer(a.model)
        encode = tok.source_tokens
        suppress = tok.suppressed() or None
        detok = tok.detokenize
        min_len = 0  # qkv's min_length 0: EOS may come first
    else:
        from transformers import MarianTokenizer

        tok = MarianTokenizer.from_pretrained(a.hf)
        # the stock converter drops <pad> from the vocabulary, the faithful one keeps it
        ct2_vocab = set()
        for name in ("shared_vocabulary.json", "target_vocabulary.json"):
            if os.path.exists(os.path.join(a.model, name)):
                with open(os.path.join(a.model, name), encoding="utf-8") as f:
                    ct2_vocab = set(json.load(f))
                break
        # the same source pieces transformers feeds (pieces outside vocab.json
        # as <unk>, </s> appended); with separate vocabularies the tokenizer's
        # id -> piece maps are the target side's, so both directions go through
        # the right table explicitly
        src_piece = {v: k for k, v in tok.encoder.items()}
        tgt_id = tok.target_encoder if getattr(tok, "separate_vocabs", False) else tok.encoder
        unk_id = tgt_id.get(tok.unk_token)

        def encode(line):
            return [src_piece[t] for t in tok(line).input_ids]

        suppress = [["<pad>"]] if "<pad>" in ct2_vocab else None
        min_len = 1  # CTranslate2's default, as scripts/check-export verified it

        def detok(tokens):
            return tok.decode([tgt_id.get(p, unk_id) for p in tokens], skip_special_tokens=True)
    load_s = time.perf_counter() - t0
    out = [""] * len(lines)
    t1 = time.perf_counter()
    # tokenizing inside the timed loop, as qkv's --timing counts it
    for chunk in batches(idx, a.batch):
        res = tr.translate_batch(
            [encode(lines[i]) for i in chunk],
            beam_size=a.beam,
            num_hypotheses=1,
            length_penalty=1.0,
            max_decoding_length=a.max_length - 1,
            max_input_length=0,
            min_decoding_length=min_len,
            return_end_token=False,
            suppress_sequences=suppress,
            max_batch_size=0,
        )
        for i, r in zip(chunk, res):
            out[i] = detok(r.hypotheses[0])
    translate_s = time.perf_counter() - t1
    write_lines(a.output, out)
    # the type CTranslate2 runs in (on CPU it reports int8 as int8_float32)
    print(json.dumps({"engine": "ctranslate2-" + a.compute_type, "compute_type": tr.compute_type, "load_s": load_s,
                      "translate_s": translate_s, "sentences": len(idx)}), file=sys.stderr)


def score_ct2(a):
    """log P(target + EOS | source) of each line pair under a convert-qkv
    directory, one number a line, as `qkv score` prints them: a check of the
    conversion that does not depend on the search or the model's quality."""
    import ctranslate2
    from vs_ctranslate2_qkv import QkvTokenizer

    tok = QkvTokenizer(a.model)
    tr = ctranslate2.Translator(a.model, device="cpu", compute_type=a.compute_type, intra_threads=a.threads)
    src, tgt = read_lines(a.src), read_lines(a.tgt)
    idx = [i for i, l in enumerate(src) if l.strip()]
    out = [0.0] * len(src)
    for chunk in batches(idx, 32):
        res = tr.score_batch([tok.source_tokens(src[i]) for i in chunk],
                             [tok.target_tokens(tgt[i]) for i in chunk], max_input_length=0)
        for i, r in zip(chunk, res):
            out[i] = sum(r.log_probs)
    print("\n".join("%.6f" % x for x in out))


def convert_faithful(a):
    """CTranslate2's Marian loader assumes OPUS-MT's convention that the
    decoder starts from a zero vector (Marian C++ does; the converted
    checkpoints have an all-zero <pad> row) and drops the last vocabulary
    row. A model trained elsewhere (qkv, or transformers itself: the tied
    output projection trains the <pad> row) starts from its real start-token
    embedding. This loader keeps the whole vocabulary and that embedding."""
    import ctranslate2
    from ctranslate2.converters import transformers as ct2t

    class FaithfulMarianLoader(ct2t.BartLoader):
        @property
        def architecture_name(self):
            return "MarianMTModel"

        def get_model_spec(self, model):
            model.config.normalize_before = False
            model.config.normalize_embedding = False
            return super().get_model_spec(model)

        def get_vocabulary(self, model, tokenizer):
            # (source, target) pieces in id order: MarianTokenizer.get_vocab()
            # is the source side only, which BartLoader registers for both
            def pieces(enc, n):
                return [p for p, _ in sorted(enc.items(), key=lambda item: item[1])][:n]

            src = pieces(tokenizer.encoder, model.config.vocab_size)
            tgt = src
            if getattr(tokenizer, "separate_vocabs", False):
                tgt = pieces(tokenizer.target_encoder, model.config.decoder_vocab_size or model.config.vocab_size)
            return src, tgt

        def set_vocabulary(self, spec, tokens):
            spec.register_source_vocabulary(tokens[0])
            spec.register_target_vocabulary(tokens[1])

        def set_config(self, config, model, tokenizer):
            config.eos_token = tokenizer.eos_token
            config.unk_token = tokenizer.unk_token
            config.decoder_start_token = tokenizer.convert_ids_to_tokens(model.config.decoder_start_token_id)

    ct2t._MODEL_LOADERS["MarianConfig"] = FaithfulMarianLoader()
    conv = ctranslate2.converters.TransformersConverter(a.hf)
    conv.convert(a.out, quantization=a.quantization, force=True)


def convert_qkv(a):
    """A qkv checkpoint as a CTranslate2 TransformerSpec (bench/vs_ctranslate2_qkv.py)."""
    from vs_ctranslate2_qkv import convert_qkv as convert

    convert(a.model, a.out, a.quantization)


def count(a):
    """Target tokens of translation files: target spm pieces (+ EOS) of each
    non-empty line, as the target tokenizer encodes the text; one number per
    file, the same measure for every engine."""
    res = {}
    if a.ct2:  # a convert-qkv directory: the checkpoint's target SentencePiece model
        from vs_ctranslate2_qkv import QkvTokenizer

        tok = QkvTokenizer(a.ct2)
        for path in a.files:
            res[path] = tok.count([l for l in read_lines(path) if l.strip()])
        print(json.dumps(res))
        return
    from transformers import MarianTokenizer

    tok = MarianTokenizer.from_pretrained(a.hf)
    for path in a.files:
        lines = [l for l in read_lines(path) if l.strip()]
        n = 0
        for chunk in batches(lines, 256):
            n += sum(len(ids) for ids in tok(text_target=chunk).input_ids)
        res[path] = n
    print(json.dumps(res))


# ---- the benchmark driver (one process per engine and setting) -------------

def run_measured(cmd, env=None):
    """Runs cmd in its own process: (wall seconds, peak RSS MiB, stderr)."""
    import subprocess

    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read().decode("utf-8", "replace")
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit("vs_ctranslate2: %s failed (%d):\n%s" % (" ".join(cmd), p.returncode, err[-3000:]))
    return wall, ru.ru_maxrss / 1024.0, err


def qkv_eval(ref, hyp):
    import subprocess

    j = json.loads(subprocess.run(["./qkv", "eval", "--ref", ref, "--hyp", hyp, "--tokenize", "zh", "--json"],
                                  check=True, capture_output=True, text=True).stdout)
    return j["bleu"]["score"], j["chrf"]["score"]


def describe_model(path):
    """What the bench ran: the checkpoint's shape and how long it trained."""
    import re
    import subprocess

    info = subprocess.run(["./qkv", "info", path], capture_output=True, text=True).stdout
    cfg = json.loads(info[info.index("{"):info.rindex("}") + 1]) if "{" in info else {}
    desc = "%s: %s-norm d_model %s, %s+%s layers, vocab %s/%s%s" % (
        path, cfg.get("norm"), cfg.get("d_model"), cfg.get("encoder_layers"), cfg.get("decoder_layers"),
        cfg.get("src_vocab_size"), cfg.get("tgt_vocab_size"), " shared" if cfg.get("shared_vocab") else " separate")
    log = os.path.join(os.path.dirname(path), "log.jsonl")
    if os.path.exists(log):
        steps = [json.loads(l) for l in open(log) if '"loss"' in l and '"elapsed_s"' in l]
        if steps:
            desc += "; trained %d steps, %.1f min, last loss %.2f" % (steps[-1]["step"], steps[-1]["elapsed_s"] / 60,
                                                                       steps[-1]["loss"])
    return re.sub(r"\s+", " ", desc)


QKV_TYPES = ("int8", "int8_bfloat16", "bfloat16", "auto")
QKV_FILES = {"qkv-q8": "int8", "qkv-qbf16": "bfloat16"}
CT2_TYPES = ("float32", "int8", "int8_float32", "int8_bfloat16", "bfloat16")


def engine_cmd(a, e, py, me, inp, out, beam, batch, t):
    """(command, model file or directory whose size the table shows)."""
    if e == "qkv" or e.startswith("qkv-"):
        # qkv: float32; qkv-TYPE: --compute-type TYPE on the float32 file;
        # qkv-q8 / qkv-qbf16: the `qkv quantize` file in its own type.
        # Protection off: it masks placeholders and repairs the output by
        # forced decoding, which no peer does (the search is the same)
        model = a.qkv_model
        if e in QKV_FILES:
            model = getattr(a, "qkv_" + e[4:])
            if not model:
                sys.exit("vs_ctranslate2: %s needs --qkv-%s (qkv quantize output)" % (e, e[4:]))
        elif e != "qkv" and e[4:] not in QKV_TYPES:
            sys.exit("vs_ctranslate2: unknown engine " + e)
        cmd = ["./qkv", "translate", "-m", model, "--input", inp, "--output", out, "--beam-size", str(beam),
               "--batch-size", str(batch), "--threads", str(t), "--max-length", str(a.max_length),
               "--forced-eos", "0", "--timing"]
        if a.ct2_dir:
            # CTranslate2's beam search (patience 1) ends a sentence once
            # beam_size hypotheses have finished: transformers'
            # early_stopping=True, qkv --early-stopping true
            cmd += ["--no-protect", "--early-stopping", "true"]
        if e == "qkv":
            cmd += ["--compute-type", "float32"]
        elif e not in QKV_FILES:
            cmd += ["--compute-type", e[4:]]
        return cmd, model
    common = ["--input", inp, "--output", out, "--beam", str(beam), "--batch", str(batch), "--threads", str(t),
              "--max-length", str(a.max_length)]
    if e == "transformers":
        if not a.hf:
            sys.exit("vs_ctranslate2: the transformers engine needs --hf (a Marian export)")
        return [py, me, "hf", "--model", a.hf] + common, a.hf
    if e.startswith("ct2-"):
        ctype = {"fp32": "float32"}.get(e[4:], e[4:])
        if ctype not in CT2_TYPES:
            sys.exit("vs_ctranslate2: unknown engine " + e)
        if a.ct2_dir:  # convert-qkv directories: DIR/ct2_TYPE, else the int8 or float32 one
            model = os.path.join(a.ct2_dir, "ct2_" + ctype)
            if not os.path.exists(os.path.join(model, "model.bin")):
                model = os.path.join(a.ct2_dir, "ct2_int8" if ctype.startswith("int8") else "ct2_float32")
            return [py, me, "ct2", "--model", model, "--compute-type", ctype] + common, model
        model = a.ct2_fp32 if ctype == "float32" else a.ct2_int8
        return [py, me, "ct2", "--model", model, "--hf", a.hf, "--compute-type", ctype] + common, model
    sys.exit("vs_ctranslate2: unknown engine " + e)


def size_mib(path):
    """A file's size, or a CTranslate2 directory's (model.bin, config,
    vocabularies; not the SentencePiece models the runner reads)."""
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
               if f == "model.bin" or f.endswith(".json") and f != "qkv.json") / 2**20


def bench(a):
    py = sys.executable
    me = os.path.abspath(__file__)
    os.makedirs(a.work, exist_ok=True)
    src_all, ref_all = read_lines(a.input), read_lines(a.ref)
    n = min(a.sentences, len(src_all)) if a.sentences else len(src_all)
    inp, ref = os.path.join(a.work, "input.en"), os.path.join(a.work, "ref.zh")
    write_lines(inp, src_all[:n])
    write_lines(ref, ref_all[:n])
    # transformers is one to two orders of magnitude slower: the first
    # hf_n sentences only (same order, so its lines compare with qkv's)
    hf_n = min(a.hf_sentences, n) if a.hf_sentences else n
    hf_inp, hf_ref = os.path.join(a.work, "input.hf.en"), os.path.join(a.work, "ref.hf.zh")
    write_lines(hf_inp, src_all[:hf_n])
    write_lines(hf_ref, ref_all[:hf_n])
    engines = [e for e in a.engines.split(",") if e]
    settings = [(4, 32), (1, 1)]
    threads = [int(t) for t in a.threads.split(",")]
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][:1]
    flags = set(next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), []))
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    print("vs_ctranslate2: %d sentences of %s, max_length %d, %d cores (%s; %s), load before: %s"
          % (n, a.input, a.max_length, os.cpu_count(), cpu[0] if cpu else "?", " ".join(isa), load))
    if a.qkv_model:
        print("model:", describe_model(a.qkv_model))
    print("uptime:", os.popen("uptime").read().strip())
    rows, refused = [], []
    for beam, batch in settings:
        for t in threads:
            # --rounds N: every engine N times, round after round (so that a
            # slow spell of the machine falls on all of them), the fastest
            # translation loop of each kept, with the largest peak RSS
            best = {}
            for r in range(a.rounds):
                for e in engines:
                    if e in best and best[e] is None:
                        continue  # refused
                    out = os.path.join(a.work, "%s.beam%d.batch%d.t%d.zh" % (e, beam, batch, t))
                    env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS="1",
                               MKL_NUM_THREADS=str(t))
                    hf = e == "transformers"
                    cmd, model = engine_cmd(a, e, py, me, hf_inp if hf else inp, out, beam, batch, t)
                    wall, rss, err = run_measured(cmd, env)
                    # every engine's own figure: its translation loop, without
                    # loading the model (qkv: --timing; Python: also imports)
                    rep = json.loads(err.strip().splitlines()[-1])
                    if "refused" in rep:
                        refused.append("| %s | %d | %d | %d | %s |" % (e, beam, batch, t, rep["refused"]))
                        print("  ran %-18s beam %d batch %2d threads %d: refused: %s" % (e, beam, batch, t,
                                                                                       rep["refused"]), flush=True)
                        best[e] = None
                        continue
                    row = dict(engine=e, beam=beam, batch=batch, threads=t, wall=wall, secs=rep["translate_s"],
                               rss=rss, out=out, n=hf_n if hf else n, size=size_mib(model),
                               ran_as=rep.get("compute_type", ""))
                    print("  ran %-18s beam %d batch %2d threads %d: %.1f s (process %.1f s), peak RSS %.0f MiB%s%s"
                          % (e, beam, batch, t, rep["translate_s"], wall, rss,
                             ", CTranslate2 ran it as " + rep["compute_type"] if "compute_type" in rep else "",
                             " (round %d)" % (r + 1) if a.rounds > 1 else ""), flush=True)
                    if e in best:
                        row["rss"] = max(row["rss"], best[e]["rss"])
                        if best[e]["secs"] <= row["secs"]:
                            best[e]["rss"] = row["rss"]
                            continue
                    best[e] = row
            rows.extend(best[e] for e in engines if best.get(e))
    # target tokens of each output, one tokenizer for all
    import subprocess

    tok = ["--ct2", os.path.join(a.ct2_dir, "ct2_float32")] if a.ct2_dir else ["--hf", a.hf]
    counts = json.loads(subprocess.run([py, me, "count"] + tok + [r["out"] for r in rows], check=True,
                                       capture_output=True, text=True).stdout)
    by_key = {}
    for r in rows:
        r["tokens"] = counts[r["out"]]
        r["tps"] = r["tokens"] / r["secs"]
        r["bleu"], r["chrf"] = qkv_eval(ref if r["n"] == n else hf_ref, r["out"])
        by_key[(r["engine"], r["beam"], r["batch"], r["threads"])] = r
    qkv_lines = {}
    print()
    print("| engine | beam | batch | threads | sentences | tgt tok/s | ms/sentence | peak RSS MiB | model MiB | BLEU | "
          "chrF | same as qkv | qkv/this tok/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        q = by_key.get(("qkv", r["beam"], r["batch"], r["threads"]))
        same = ratio = "-"
        if q:
            ql = qkv_lines.setdefault(q["out"], read_lines(q["out"]))
            rl = read_lines(r["out"])
            same = "%d/%d" % (sum(x == y for x, y in zip(ql, rl)), r["n"])
            ratio = "%.2f" % (q["tps"] / r["tps"])
        name = r["engine"] + (" (ran as %s)" % r["ran_as"] if r["ran_as"] and r["ran_as"] != r["engine"][4:] else "")
        print("| %s | %d | %d | %d | %d | %.0f | %.1f | %.0f | %.1f | %.2f | %.2f | %s | %s |"
              % (name, r["beam"], r["batch"], r["threads"], r["n"], r["tps"], 1000 * r["secs"] / r["n"], r["rss"],
                 r["size"], r["bleu"], r["chrf"], same, ratio))
    # qkv's automatic type against CTranslate2's fastest type, per setting
    best = []
    for beam, batch in settings:
        for t in threads:
            mine = by_key.get(("qkv-auto", beam, batch, t))
            peers = [r for r in rows if r["engine"].startswith("ct2-") and (r["beam"], r["batch"], r["threads"]) ==
                     (beam, batch, t)]
            if mine and peers:
                p = max(peers, key=lambda r: r["tps"])
                best.append("| %d | %d | %d | %.0f | %s %.0f | %.2f |" % (beam, batch, t, mine["tps"], p["engine"],
                                                                         p["tps"], mine["tps"] / p["tps"]))
    if best:
        print("\n| beam | batch | threads | qkv-auto tok/s | fastest CTranslate2 type, tok/s | qkv-auto/that |")
        print("|---|---|---|---|---|---|")
        print("\n".join(best))
    if refused:
        print("\n| engine | beam | batch | threads | refused |")
        print("|---|---|---|---|---|")
        print("\n".join(refused))
    with open("/proc/loadavg") as f:
        print("\nload after: %s; uptime: %s" % (" ".join(f.read().split()[:3]), os.popen("uptime").read().strip()))
    print("tok/s: target spm pieces + EOS of the output (the same tokenizer for every engine: %s) over each"
          " engine's translation loop (tokenizing, search, detokenizing; model loading and imports excluded: qkv"
          " reports it with --timing, the Python engines time their loop; process = the whole process)."
          " ms/sentence: those seconds over the sentences. model MiB: the file qkv loads (.qkv: weights, config,"
          " both SentencePiece models) or CTranslate2's directory (model.bin, config, vocabularies). BLEU, chrF:"
          " qkv eval --tokenize zh against the first `sentences` references. same as qkv: lines identical to qkv"
          " float32's output for the same beam, batch and threads."
          % ("the checkpoint's target SentencePiece model" if a.ct2_dir else "target.spm via MarianTokenizer"))
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("hf", "ct2"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--hf", help="the Marian directory (tokenizer) for ct2")
        s.add_argument("--input", required=True)
        s.add_argument("--output", required=True)
        s.add_argument("--beam", type=int, default=4)
        s.add_argument("--batch", type=int, default=32)
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--max-length", type=int, default=128)
        s.add_argument("--compute-type", default="float32")
    s = sub.add_parser("score")
    s.add_argument("--model", required=True, help="a convert-qkv directory")
    s.add_argument("--src", required=True)
    s.add_argument("--tgt", required=True)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--compute-type", default="float32")
    s = sub.add_parser("convert-faithful")
    s.add_argument("hf")
    s.add_argument("out")
    s.add_argument("--quantization", default=None)
    s = sub.add_parser("convert-qkv")
    s.add_argument("model", help="a float32 qkv checkpoint (MODEL.qkv)")
    s.add_argument("out")
    s.add_argument("--quantization", default=None,
                   help="CTranslate2's weight type: int8, int8_float32, int8_bfloat16, bfloat16, float16, ...")
    s = sub.add_parser("bench")
    s.add_argument("--qkv-model", required=True, help="the float32 qkv checkpoint")
    s.add_argument("--qkv-q8", help="qkv quantize --compute-type int8 output (engine qkv-q8)")
    s.add_argument("--qkv-qbf16", help="qkv quantize --compute-type bfloat16 output (engine qkv-qbf16)")
    s.add_argument("--ct2-dir", help="where convert-qkv wrote ct2_TYPE directories (the pre-norm path)")
    s.add_argument("--hf", help="a Marian export of the model (transformers engine; the Marian path)")
    s.add_argument("--ct2-fp32", help="convert-faithful output, float32 (the Marian path)")
    s.add_argument("--ct2-int8", help="convert-faithful output, int8 (the Marian path)")
    s.add_argument("--input", required=True)
    s.add_argument("--ref", required=True)
    s.add_argument("--work", required=True)
    s.add_argument("--sentences", type=int, default=0)
    s.add_argument("--hf-sentences", type=int, default=100)
    s.add_argument("--max-length", type=int, default=64)
    s.add_argument("--threads", default="1,2")
    s.add_argument("--rounds", type=int, default=1,
                   help="runs of every engine and setting, the fastest kept (against a machine's slow spells)")
    s.add_argument("--engines", default="qkv,qkv-int8,qkv-int8_bfloat16,qkv-bfloat16,qkv-auto,qkv-q8,qkv-qbf16,"
                   "ct2-float32,ct2-int8,ct2-int8_bfloat16",
                   help="qkv (float32), qkv-COMPUTE_TYPE (int8, int8_bfloat16, bfloat16, auto), qkv-q8, qkv-qbf16, "
                        "ct2-TYPE (float32 or fp32, int8, int8_float32, int8_bfloat16, bfloat16), transformers")
    s = sub.add_parser("count")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--hf")
    g.add_argument("--ct2", help="a convert-qkv directory (its target.spm)")
    s.add_argument("files", nargs="+")
    a = p.parse_args()
    if a.cmd == "hf":
        run_hf(a)
    elif a.cmd == "ct2":
        run_ct2(a)
    elif a.cmd == "convert-qkv":
        convert_qkv(a)
    elif a.cmd == "score":
        score_ct2(a)
    elif a.cmd == "convert-faithful":
        convert_faithful(a)
    elif a.cmd == "bench":
        bench(a)
    else:
        count(a)


if __name__ == "__main__":
    main()
