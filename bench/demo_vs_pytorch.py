"""The PyTorch half of bench/demo_vs_pytorch (run that driver, not this).

    /usr/bin/python3 bench/demo_vs_pytorch.py train --init INIT.qkv --batches FILE --minutes 10,20,30
        --threads T --out DIR [--seed 1]
    /usr/bin/python3 bench/demo_vs_pytorch.py translate --model M.qkv [--params FILE] --input F --output F
        --threads T [--batch-size 64] [--max-length-ratio 2] [--max-length-offset 10]
    /usr/bin/python3 bench/demo_vs_pytorch.py report --dir DIR

`train` trains qkv's demo recipe in PyTorch eager fp32 for the longest mark
of training time, with the model of scripts/golden/model.py (through
bench/train_vs_pytorch.py's Layers): the configuration, vocabularies and
initial parameters are read from INIT.qkv (qkv's own initial model,
`qkv train --snapshot-minutes 0`), the batches from the batch file written
by `build/bench/train_vs_pytorch batches` (qkv's reader and batcher, epoch
after epoch, the trainer's seed), the recipe is --preset demo's: Adam (0.9,
0.98, 1e-9), inverse-sqrt schedule (peak 2e-3, 150 warmup steps from 0),
global-norm clipping at 1.0, label smoothing 0.1, dropout 0. Training time
is the time of the steps, snapshots excluded, as in qkv's trainer; at the
first step boundary where it reaches each mark, the parameters go to
DIR/minute-<M>.params (float32 in qkv's parameter order) and a line to
DIR/log.jsonl, which also gets one line per step (qkv's keys).

`translate` decodes greedily as `qkv translate --beam-size 1
--max-length-ratio R --max-length-offset O` does for a qkv checkpoint: the
source as sentencepiece encodes it (at most max_positions - 1 pieces) plus
</s>; the decoder starts from decoder_start_id; at most
floor(R * source length) + O tokens are generated, </s> included (qkv
forces </s> at the last one); argmax, lowest id on ties; the pieces
decoded by sentencepiece. The decoder is recomputed over the whole prefix at
each step (no cache): slower, the same function. --params replaces the
checkpoint's parameters (a `train` snapshot).

`report` reads what the driver left in DIR and prints the comparison: per
mark, steps, target tokens, chrF and BLEU of each side and the ratios, a
markdown table (DIR/report.md), DIR/results.json and DIR/chrf.svg (chrF
against minutes).
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "scripts", "golden"))

import train_vs_pytorch as tvp  # noqa: E402


def fail(msg):
    sys.exit(f"demo_vs_pytorch.py: {msg}")


def parse_opts(argv, known, required):
    a = dict(zip(argv[::2], argv[1::2]))
    if len(argv) % 2 or set(a) - set(known) or not set(required) <= set(a):
        fail(f"expected pairs of {sorted(known)} with {sorted(required)}, got {argv}")
    return a


def parse_marks(text):
    try:
        marks = [float(x) for x in text.split(",")]
    except ValueError:
        fail(f"--minutes: expected numbers separated by commas, got {text!r}")
    if not marks or any(not (m > 0) for m in marks) or any(b <= a for a, b in zip(marks, marks[1:])):
        fail(f"--minutes: expected increasing numbers > 0, got {text!r}")
    return marks


def mark_name(m):
    """qkv's "%g" of a mark, so both sides name files alike."""
    return "%g" % m


# ---- qkv checkpoints (src/train/checkpoint.h) ----------------------------------

def read_qkv(path):
    """Sections of a qkv checkpoint: {tag: bytes}; checks magic, version, bounds
    (the checksum is left to qkv, which wrote the file)."""
    raw = open(path, "rb").read()
    if raw[:8] != b"QKVCKPT\0":
        fail(f"{path}: not a qkv checkpoint (magic QKVCKPT)")
    version, n = struct.unpack_from("<II", raw, 8)
    if version != 1:
        fail(f"{path}: checkpoint version {version}, expected 1")
    at, sec = 16, {}
    for _ in range(n):
        if at + 24 > len(raw) - 8:
            fail(f"{path}: truncated section table")
        tag = raw[at:at + 16].rstrip(b"\0").decode()
        (size,) = struct.unpack_from("<Q", raw, at + 16)
        at += 24
        if at + size > len(raw) - 8:
            fail(f"{path}: section {tag!r} runs past the end")
        sec[tag] = raw[at:at + size]
        at += size
    return sec


def model_from_qkv(path, torch, ref, params_path=None):
    """(reference config, {name: float32 tensor}, src vocab bytes, tgt vocab bytes)."""
    sec = read_qkv(path)
    for tag in ("config", "src_vocab", "params"):
        if tag not in sec:
            fail(f"{path}: no section {tag!r}")
    js = json.loads(sec["config"])
    if js.get("positions") != "sinusoidal" or js.get("tie_encoder_decoder_embeddings") or js.get("output_bias") \
            or not js.get("tie_output_embeddings"):
        fail(f"{path}: the bench handles sinusoidal positions, tied output embeddings, no output bias")
    heads = js["encoder_heads"]
    c = ref.full_config(dict(js, heads=heads, d_ff=js["encoder_d_ff"]))
    table = ref.param_table(c)
    flat = np.frombuffer(sec["params"], "<f4") if params_path is None else np.fromfile(params_path, "<f4")
    need = sum(int(np.prod(shape)) for _, shape, _ in table)
    if flat.size != need:
        fail(f"{params_path or path}: {flat.size} parameters, the configuration has {need}")
    P, at = {}, 0
    for name, shape, _ in table:  # the order of src/model/params.c, no gaps
        size = int(np.prod(shape))
        P[name] = torch.from_numpy(flat[at:at + size].reshape(shape).copy())
        at += size
    return c, P, sec["src_vocab"], sec.get("tgt_vocab", sec["src_vocab"])


def flat_params(c, ref, P):
    return np.concatenate([P[name].detach().numpy().astype("<f4").ravel() for name, _, _ in ref.param_table(c)])


# ---- train ---------------------------------------------------------------------

def cmd_train(argv):
    a = parse_opts(argv, ["--init", "--batches", "--minutes", "--threads", "--out", "--seed"],
                   ["--init", "--batches", "--minutes", "--out"])
    marks = parse_marks(a["--minutes"])
    threads = int(a.get("--threads", 1))
    import torch
    import torch.nn.functional as F
    import model as ref

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(int(a.get("--seed", 1)))
    c, P, _, _ = model_from_qkv(a["--init"], torch, ref)
    head, batches = tvp.read_batches(a["--batches"])
    for k in ("src_vocab_size", "tgt_vocab_size", "pad_id", "eos_id", "decoder_start_id"):
        if head[k] != c[k]:
            fail(f"{a['--batches']}: {k} {head[k]}, the model's is {c[k]} (other vocabularies?)")
    names = [n for n, _, _ in ref.param_table(c)]
    params = [P[n].requires_grad_(True) for n in names]
    pos = ref.sinusoidal(c["max_positions"], c["d_model"]).float()
    opt = torch.optim.Adam(params, lr=0.0, betas=(0.9, 0.98), eps=1e-9)
    out = a["--out"]
    os.makedirs(out, exist_ok=True)
    log = open(os.path.join(out, "log.jsonl"), "w")
    budget = 60.0 * marks[-1]
    step, tokens, nxt, excluded = 0, 0, 0, 0.0
    cpu0 = time.process_time()
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start - excluded
        t0 = time.perf_counter()
        while nxt < len(marks) and elapsed >= 60.0 * marks[nxt]:
            name = f"minute-{mark_name(marks[nxt])}.params"
            flat_params(c, ref, P).tofile(os.path.join(out, name + ".tmp"))
            os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
            log.write(json.dumps(dict(step=step, snapshot=name, tgt_tokens=tokens, elapsed_s=round(elapsed, 3),
                                      cpu_s=round(time.process_time() - cpu0, 3))) + "\n")
            log.flush()
            print(f"torch: snapshot {name}: step {step}, {tokens} target tokens, {elapsed:.1f} s", file=sys.stderr)
            nxt += 1
        excluded += time.perf_counter() - t0  # snapshots are not training time (as in qkv's trainer)
        if elapsed >= budget:
            break
        if step >= len(batches):
            fail(f"{a['--batches']}: all {len(batches)} batches used after {elapsed:.0f} s of {budget:.0f}: "
                 "the driver must write more")
        x = batches[step]
        b = tuple(torch.from_numpy(x[k].astype(np.int64)) for k in ("src", "src_len", "tgt_in", "tgt_len", "labels"))
        step += 1
        lr = tvp.lr_at(step, peak=2e-3, warmup=150)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = tvp.forward_train(ref, F, c, P, pos, b, 0.1, 0.0)
        loss.backward()
        tvp.freeze_pad_rows(c, P)
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        tokens += int(x["tgt_len"].sum())
        el = time.perf_counter() - start - excluded
        log.write(json.dumps(dict(step=step, loss=round(loss.item(), 6), lr=lr, grad_norm=round(float(norm), 6),
                                  tgt_tokens=tokens, tgt_tokens_per_s=round(tokens / el, 1),
                                  elapsed_s=round(el, 3))) + "\n")
        log.flush()
    log.close()
    print(f"torch: {step} steps, {tokens} target tokens in {elapsed:.1f} s "
          f"({time.process_time() - cpu0:.1f} CPU s, {torch.get_num_threads()} threads)", file=sys.stderr)


# ---- translate -----------------------------------------------------------------

def greedy_batch(L, c, torch, src_ids, max_lens):
    """Greedy search of one batch of sources (lists of ids, </s> included)."""
    B = len(src_ids)
    S = max(len(s) for s in src_ids)
    src = torch.full((B, S), c["pad_id"], dtype=torch.int64)
    for i, s in enumerate(src_ids):
        src[i, :len(s)] = torch.tensor(s)
    src_len = torch.tensor([len(s) for s in src_ids])
    enc = L.encode(src, src_len)
    seqs = [[c["decoder_start_id"]] for _ in range(B)]
    live = list(range(B))
    while live:
        rows = torch.tensor(live)
        tgt = torch.tensor([seqs[i] for i in live])
        T = tgt.shape[1]
        logits = L.decode(enc[rows], src_len[rows], tgt, torch.full((len(live),), T), last_only=True)
        best = torch.argmax(logits, dim=-1).tolist()  # the first maximum: the lowest id on ties
        still = []
        for i, tok in zip(live, best):
            if T == max_lens[i] - 1:  # qkv's forced </s> at the last position
                tok = c["eos_id"]
            if tok == c["eos_id"]:
                continue
            seqs[i].append(tok)
            if len(seqs[i]) < max_lens[i]:
                still.append(i)
        live = still
    return [s[1:] for s in seqs]


def cmd_translate(argv):
    a = parse_opts(argv, ["--model", "--params", "--input", "--output", "--threads", "--batch-size",
                          "--max-length-ratio", "--max-length-offset"], ["--model", "--input", "--output"])
    import sentencepiece as spm
    import torch
    import torch.nn.functional as F
    import model as ref

    torch.set_num_threads(int(a.get("--threads", 1)))
    torch.set_num_interop_threads(1)
    ratio, offset = float(a.get("--max-length-ratio", 2)), int(a.get("--max-length-offset", 10))
    bs = int(a.get("--batch-size", 64))
    c, P, src_blob, tgt_blob = model_from_qkv(a["--model"], torch, ref, a.get("--params"))
    sp_src = spm.SentencePieceProcessor(model_proto=src_blob)
    sp_tgt = spm.SentencePieceProcessor(model_proto=tgt_blob)
    pos = ref.sinusoidal(c["max_positions"], c["d_model"]).float()
    L = tvp.Layers(ref, F, c, P, pos, 0.0)
    lines = open(a["--input"], encoding="utf-8").read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    maxp = c["max_positions"]
    srcs, max_lens = [], []
    for line in lines:
        ids = sp_src.encode(line) if line.strip() else None
        if ids is not None:
            ids = ids[:maxp - 1] + [c["eos_id"]]
            # src/decode/search.c search_max_length: the start token counts
            ml = min(maxp + 1, math.floor(np.float32(ratio) * np.float32(len(ids))) + offset + 1)
            max_lens.append(max(ml, 2))
        else:
            max_lens.append(0)
        srcs.append(ids)
    order = sorted((i for i in range(len(srcs)) if srcs[i] is not None), key=lambda i: (len(srcs[i]), i))
    hyps = [""] * len(srcs)
    t0 = time.perf_counter()
    with torch.no_grad():
        for k in range(0, len(order), bs):
            idx = order[k:k + bs]
            outs = greedy_batch(L, c, torch, [srcs[i] for i in idx], [max_lens[i] for i in idx])
            V = sp_tgt.get_piece_size()
            for i, ids in zip(idx, outs):
                hyps[i] = sp_tgt.decode([t for t in ids if t < V])  # an appended pad id decodes to nothing
    with open(a["--output"], "w", encoding="utf-8") as f:
        f.write("".join(h + "\n" for h in hyps))
    print(f"torch: translated {len(lines)} lines in {time.perf_counter() - t0:.1f} s -> {a['--output']}",
          file=sys.stderr)


# ---- report --------------------------------------------------------------------

def read_jsonl(path):
    return [json.loads(x) for x in open(path) if x.strip()]


def side_marks(log_path, marks):
    """{mark: snapshot line} and the step lines of a training log."""
    rows = read_jsonl(log_path)
    snaps = {r["snapshot"]: r for r in rows if "snapshot" in r}
    steps = [r for r in rows if "loss" in r]
    return snaps, steps


def svg_curve(path, series, title):
    """chrF against minutes: one polyline with dots per series."""
    W, H, l, r, t, b = 640, 400, 60, 20, 40, 50
    xs = [x for _, pts, _ in series for x, _ in pts] + [0]
    ys = [y for _, pts, _ in series for _, y in pts] + [0]
    xmax = max(xs) or 1
    ymax = max(ys) * 1.1 or 1
    base = 10 ** (math.floor(math.log10(ymax)) - 1)
    step = next(base * f for f in (1, 2, 5, 10) if ymax / (base * f) <= 8)  # 4 to 8 grid lines
    X = lambda x: l + (W - l - r) * x / xmax  # noqa: E731
    Y = lambda y: H - b - (H - t - b) * y / ymax  # noqa: E731
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
         f'<line x1="{l}" y1="{H - b}" x2="{W - r}" y2="{H - b}" stroke="black"/>',
         f'<line x1="{l}" y1="{t}" x2="{l}" y2="{H - b}" stroke="black"/>',
         f'<text x="{(l + W - r) / 2}" y="{H - 12}" text-anchor="middle">minutes of training</text>',
         f'<text x="15" y="{(t + H - b) / 2}" text-anchor="middle" transform="rotate(-90 15 {(t + H - b) / 2})">'
         'test chrF</text>']
    v = 0.0
    while v <= ymax + 1e-9:
        o.append(f'<line x1="{l - 4}" y1="{Y(v):.1f}" x2="{W - r}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{l - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += step
    for x in sorted(set([0] + [x for _, pts, _ in series for x, _ in pts])):
        o.append(f'<text x="{X(x):.1f}" y="{H - b + 16}" text-anchor="middle">{x:g}</text>')
    for k, (name, pts, color) in enumerate(series):
        pts = sorted(pts)
        o.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                 + " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts) + '"/>')
        for x, y in pts:
            o.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3.5" fill="{color}"/>')
        o.append(f'<line x1="{l + 15}" y1="{t + 10 + 18 * k}" x2="{l + 40}" y2="{t + 10 + 18 * k}" '
                 f'stroke="{color}" stroke-width="2"/>')
        o.append(f'<text x="{l + 46}" y="{t + 14 + 18 * k}">{name}</text>')
    o.append("</svg>")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(o) + "\n")
    os.replace(path + ".tmp", path)


def cmd_report(argv):
    a = parse_opts(argv, ["--dir"], ["--dir"])
    d = a["--dir"]
    run = json.load(open(os.path.join(d, "run.json")))
    marks = run["minutes"]
    q_snaps, q_steps = side_marks(os.path.join(d, "qkv", "log.jsonl"), marks)
    t_snaps, t_steps = side_marks(os.path.join(d, "torch", "log.jsonl"), marks)
    rows = []
    for m in marks:
        name = mark_name(m)
        q = q_snaps.get(f"minute-{name}.qkv")
        t = t_snaps.get(f"minute-{name}.params")
        sq = json.load(open(os.path.join(d, "eval", f"qkv-{name}.json")))
        st = json.load(open(os.path.join(d, "eval", f"torch-{name}.json")))
        rows.append(dict(minutes=m, qkv_steps=q["step"], qkv_tokens=q["tgt_tokens"], qkv_elapsed_s=q["elapsed_s"],
                         qkv_chrf=sq["chrf"]["score"], qkv_bleu=sq["bleu"]["score"],
                         torch_steps=t["step"], torch_tokens=t["tgt_tokens"], torch_elapsed_s=t["elapsed_s"],
                         torch_chrf=st["chrf"]["score"], torch_bleu=st["bleu"]["score"]))
    # same batches: the cumulative target tokens of the steps both made
    n = min(len(q_steps), len(t_steps))
    same = sum(q_steps[i]["tgt_tokens"] == t_steps[i]["tgt_tokens"] for i in range(n))
    k = min(3, n)
    loss_diff = max((abs(q_steps[i]["loss"] - t_steps[i]["loss"]) for i in range(k)), default=float("nan"))
    res = dict(run=run, marks=rows, steps_compared=n, steps_same_tokens=same,
               first_losses=dict(qkv=[q_steps[i]["loss"] for i in range(k)],
                                 torch=[t_steps[i]["loss"] for i in range(k)]), first_loss_max_diff=loss_diff)
    out = []
    p = out.append
    p(f"demo_vs_pytorch: {run['mode']} ({run['threads']} thread(s) each), marks {run['minutes_text']} min, "
      f"{run['sentences']} test sentences, greedy (max length 2 x source + 10), chrF/BLEU by "
      "`qkv eval --tokenize zh`")
    p(f"machine: {run['machine']}; torch {run['torch']}")
    p(f"load before: {run['load_before']}")
    p(f"load after training: {run['load_after_train']}")
    p(f"load after evaluation: {run.get('load_after_eval', '?')}")
    for side in ("qkv", "torch"):
        tm = run["time"][side]
        p(f"{side} training process: {tm['wall']:.0f} s wall, {tm['user'] + tm['sys']:.0f} CPU s "
          f"(cpu/wall {(tm['user'] + tm['sys']) / max(tm['wall'], 1e-9):.2f})")
    last = rows[-1]
    qs, ts = last["qkv_tokens"] / last["qkv_elapsed_s"], last["torch_tokens"] / last["torch_elapsed_s"]
    p(f"training speed to the last mark: qkv {qs:.0f} target tokens/s, PyTorch {ts:.0f} ({qs / ts:.2f}x)")
    p(f"same batches: cumulative target tokens equal at {same} of the {n} steps both made; same init: "
      f"{run['same_init']}; first {k} losses qkv {res['first_losses']['qkv']} torch {res['first_losses']['torch']} "
      f"(max |diff| {loss_diff:.2e})")
    if run.get("decoder_check"):
        p(f"decoder check: PyTorch's greedy search on qkv's {run['decoder_check']['model']} gives "
          f"{run['decoder_check']['same']} of {run['decoder_check']['lines']} lines identical to `qkv translate`")
    p("")
    p("| minutes | qkv steps | qkv tgt tokens | qkv chrF | qkv BLEU | PyTorch steps | PyTorch tgt tokens "
      "| PyTorch chrF | PyTorch BLEU | tokens qkv/PyTorch | chrF qkv - PyTorch |")
    p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p(f"| {r['minutes']:g} | {r['qkv_steps']} | {r['qkv_tokens']:,} | {r['qkv_chrf']:.2f} | {r['qkv_bleu']:.2f} "
          f"| {r['torch_steps']} | {r['torch_tokens']:,} | {r['torch_chrf']:.2f} | {r['torch_bleu']:.2f} "
          f"| {r['qkv_tokens'] / max(r['torch_tokens'], 1):.2f}x | {r['qkv_chrf'] - r['torch_chrf']:+.2f} |")
    p("")
    ok1 = all(r["qkv_chrf"] >= r["torch_chrf"] for r in rows)
    reach = [r for r in rows if r["qkv_chrf"] >= last["torch_chrf"]]
    third = last["minutes"] / 3
    ok2 = bool(reach) and reach[0]["minutes"] <= third + 1e-9
    p(f"issue 8: qkv's chrF >= PyTorch's at every mark: {'yes' if ok1 else 'NO'}; qkv reaches PyTorch's "
      f"{last['minutes']:g}-minute chrF ({last['torch_chrf']:.2f}) by minute {third:.3g}: {'yes' if ok2 else 'NO'}"
      + (f" (first at the {reach[0]['minutes']:g}-minute mark)" if reach else " (at no mark)"))
    res["issue8"] = dict(chrf_at_every_mark=ok1, reaches_last_within_third=ok2)
    text = "\n".join(out) + "\n"
    print(text, end="")
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    svg_curve(os.path.join(d, "chrf.svg"),
              [("qkv", [(r["minutes"], r["qkv_chrf"]) for r in rows], "#1f77b4"),
               ("PyTorch", [(r["minutes"], r["torch_chrf"]) for r in rows], "#d62728")],
              f"test chrF against training time ({run['mode']}, {run['threads']} thread(s) each)")
    print(f"-> {d}/report.md, {d}/results.json, {d}/chrf.svg")


def main():
    cmds = {"train": cmd_train, "translate": cmd_translate, "report": cmd_report}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
