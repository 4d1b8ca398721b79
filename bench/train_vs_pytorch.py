"""The PyTorch half of bench/train_vs_pytorch (run that driver, not this).

    /usr/bin/python3 bench/train_vs_pytorch.py train --batches FILE --init FILE
        --model small|base --threads T --warmup W --steps N [--seed 1] [--dropout 0.1]
        [--precision fp32|bf16]
    /usr/bin/python3 bench/train_vs_pytorch.py table RESULTS.jsonl
    /usr/bin/python3 bench/train_vs_pytorch.py check RESULTS.jsonl

`train` trains the model of scripts/golden/model.py (the reference written
from our model's semantics, parameter names = qkv's) in PyTorch eager fp32 on
the batch file written by `build/bench/train_vs_pytorch batches`, starting
from the parameters qkv initialised (--init, written by
`build/bench/train_vs_pytorch train --init-out`), with the recipe of the C
side: dropout 0.1 on the embeddings and on every sublayer output, label
smoothing 0.1, Adam (0.9, 0.98, 1e-9), inverse-sqrt schedule (peak 1e-3,
400 warmup steps from 0), global-norm clipping at 1.0. It prints one JSON
object (the same keys as the C side's). `table` prints the comparison table
from the JSON lines of both. `check` compares the per-step losses of runs
made with --dropout 0 (then both sides compute the same function on the same
batches from the same parameters, so the losses must agree to float32
rounding: a check that the comparison is of like with like); it exits 1 when
a step differs by more than its tolerance.

--precision bf16: the forward (and so the backward) under
torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's bf16 mixed precision:
its linear layers and matmuls take bf16 operands, the parameters, gradients
and Adam state stay fp32; the logits are cast to fp32 for the loss, as qkv's
loss is fp32. Any python with torch and numpy runs this file (Debian's
/usr/bin/python3 with python3-torch 1.13, or a venv with PyPI's torch).
"""
import json
import math
import os
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts", "golden"))

SIZES = {"small": dict(d_model=256, heads=4, d_ff=1024, encoder_layers=3, decoder_layers=3),
         "base": dict(d_model=512, heads=8, d_ff=2048, encoder_layers=6, decoder_layers=6)}


def read_batches(path):
    raw = open(path, "rb").read()
    if raw[:8] != b"QKVTB001":
        sys.exit(f"{path}: not a batch file (magic QKVTB001)")
    x = np.frombuffer(raw, dtype="<i4", offset=8)
    n, src_v, tgt_v, pad, bos, eos, start = (int(v) for v in x[:7])
    at, batches = 7, []
    for _ in range(n):
        B, S, T = (int(v) for v in x[at:at + 3])
        at += 3
        parts = []
        for size in (B * S, B, B * T, B, B * T):
            if at + size > len(x):
                sys.exit(f"{path}: truncated batch file")
            parts.append(x[at:at + size])
            at += size
        src, src_len, tgt_in, tgt_len, labels = parts
        batches.append(dict(src=src.reshape(B, S), src_len=src_len, tgt_in=tgt_in.reshape(B, T), tgt_len=tgt_len,
                            labels=labels.reshape(B, T)))
    head = dict(src_vocab_size=src_v, tgt_vocab_size=tgt_v, pad_id=pad, bos_id=bos if bos >= 0 else pad,
                eos_id=eos, decoder_start_id=start)
    return head, batches


def read_params(path, torch):
    raw = open(path, "rb").read()
    if raw[:8] != b"QKVTP001":
        sys.exit(f"{path}: not a parameter file (magic QKVTP001)")
    at = 8
    (n,) = np.frombuffer(raw, "<i4", 1, at)
    at += 4
    P = {}
    for _ in range(int(n)):
        (ln,) = np.frombuffer(raw, "<i4", 1, at)
        at += 4
        name = raw[at:at + ln].decode()
        at += int(ln)
        ndim, d0, d1 = (int(v) for v in np.frombuffer(raw, "<i4", 3, at))
        at += 12
        shape = (d0, d1) if ndim == 2 else (d0,)
        count = d0 * (d1 if ndim == 2 else 1)
        P[name] = torch.from_numpy(np.frombuffer(raw, "<f4", count, at).reshape(shape).copy()).requires_grad_(True)
        at += 4 * count
    return P


class Layers:
    """The sublayers of scripts/golden/model.py's reference, with qkv's
    training dropout (probability p, none when p == 0) on the embedding sums
    and on each sublayer output before the residual."""

    def __init__(self, ref, F, c, P, pos, p):
        self.ref, self.F, self.c, self.P, self.pos = ref, F, c, P, pos
        self.C = c["d_model"]
        self.act = ref.act_fn(c["activation"])
        self.pre = c["norm"] == "pre"
        self.scale = math.sqrt(self.C) if c["scale_embedding"] else 1.0
        self.drop = (lambda x: F.dropout(x, p, training=True)) if p > 0 else (lambda x: x)

    def ln(self, x, n):
        return self.F.layer_norm(x, (self.C,), self.P[n + ".weight"], self.P[n + ".bias"], self.c["layer_norm_eps"])

    def block(self, x, ln_name, sub):
        if self.pre:
            return x + self.drop(sub(self.ln(x, ln_name)))
        return self.ln(x + self.drop(sub(x)), ln_name)

    def ffn(self, n):
        F, P = self.F, self.P
        return lambda h: F.linear(self.act(F.linear(h, P[n + ".fc1.weight"], P[n + ".fc1.bias"])),
                                  P[n + ".fc2.weight"], P[n + ".fc2.bias"])

    def embed(self, ids, table):
        return self.drop(self.F.embedding(ids, self.P[table], padding_idx=self.c["pad_id"]) * self.scale
                         + self.pos[:ids.shape[1]])

    def encode(self, src, src_len):
        """Encoder output [B, S, C]."""
        c, ref, P = self.c, self.ref, self.P
        x = self.embed(src, "encoder.embed_tokens.weight")
        for i in range(c["encoder_layers"]):
            n = f"encoder.layers.{i}"
            x = self.block(x, n + ".self_attn_layer_norm",
                           lambda h, n=n: ref.attention(P, n + ".self_attn", h, h, src_len, False,
                                                        c["encoder_heads"])[0])
            x = self.block(x, n + ".final_layer_norm", self.ffn(n))
        return self.ln(x, "encoder.layer_norm") if c["final_norm"] else x

    def decode(self, enc, src_len, tgt_in, tgt_len, last_only=False):
        """Logits [B, T, V] (last_only: of the last position, [B, V])."""
        c, ref, P = self.c, self.ref, self.P
        y = self.embed(tgt_in, "decoder.embed_tokens.weight")
        for i in range(c["decoder_layers"]):
            n = f"decoder.layers.{i}"
            y = self.block(y, n + ".self_attn_layer_norm",
                           lambda h, n=n: ref.attention(P, n + ".self_attn", h, h, tgt_len, True,
                                                        c["decoder_heads"])[0])
            y = self.block(y, n + ".encoder_attn_layer_norm",
                           lambda h, n=n: ref.attention(P, n + ".encoder_attn", h, enc, src_len, False,
                                                        c["decoder_heads"])[0])
            y = self.block(y, n + ".final_layer_norm", self.ffn(n))
        if last_only:
            y = y[:, -1]
        if c["final_norm"]:
            y = self.ln(y, "decoder.layer_norm")
        return self.F.linear(y, P["decoder.embed_tokens.weight"])


def forward_train(ref, F, c, P, pos, b, eps, p):
    """ref.forward (scripts/golden/model.py) with qkv's training dropout;
    the label-smoothed loss, mean over the target tokens."""
    src, src_len, tgt_in, tgt_len, labels = b
    L = Layers(ref, F, c, P, pos, p)
    logits = L.decode(L.encode(src, src_len), src_len, tgt_in, tgt_len)
    V = c["tgt_vocab_size"]
    return F.cross_entropy(logits.float().reshape(-1, V), labels.reshape(-1), ignore_index=c["pad_id"],
                           label_smoothing=eps)


def lr_at(step, peak=1e-3, warmup=400):
    """src/train/schedule.h's inverse-sqrt, warming up from 0."""
    return peak * step / warmup if step <= warmup else peak * math.sqrt(warmup / step)


def freeze_pad_rows(c, P):
    """qkv's trainer keeps the pad row of each token table as it is
    (model_zero_pad_rows in src/model/model.h: zero from initialisation, so a
    decoder that starts from pad starts from a zero vector, as Marian's):
    zero those rows' gradients after backward, before clipping."""
    for n in ("model.shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        if n in P and P[n].grad is not None:
            P[n].grad[c["pad_id"]].zero_()


def cmd_train(argv):
    a = dict(zip(argv[::2], argv[1::2]))
    known = {"--batches", "--init", "--model", "--threads", "--warmup", "--steps", "--seed", "--dropout",
             "--precision"}
    if len(argv) % 2 or set(a) - known or not {"--batches", "--init"} <= set(a):
        sys.exit(f"train: expected pairs of {sorted(known)} with --batches and --init, got {argv}")
    if a.get("--model", "small") not in SIZES:
        sys.exit(f"train: --model: expected small or base, got {a['--model']!r}")
    threads, warmup, steps = int(a.get("--threads", 1)), int(a.get("--warmup", 2)), int(a.get("--steps", 10))
    model, seed = a.get("--model", "small"), int(a.get("--seed", 1))
    dropout = float(a.get("--dropout", 0.1))
    precision = a.get("--precision", "fp32")
    if precision not in ("fp32", "bf16"):
        sys.exit(f"train: --precision: expected fp32 or bf16, got {precision!r}")
    import contextlib
    import torch
    import torch.nn.functional as F
    import model as ref

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    head, batches = read_batches(a["--batches"])
    if len(batches) < warmup + steps:
        sys.exit(f"{a['--batches']} holds {len(batches)} batches, {warmup + steps} needed")
    cfg = dict(SIZES[model], norm="pre", final_norm=True, activation="relu", positions="sinusoidal",
               max_positions=512, scale_embedding=True, tie_output_embeddings=True, **head)
    c = ref.full_config(cfg)
    P = read_params(a["--init"], torch)
    want = [n for n, _, _ in ref.param_table(c)]
    if sorted(want) != sorted(P):
        sys.exit(f"parameter names differ: only in qkv {sorted(set(P) - set(want))}, "
                 f"only in the reference {sorted(set(want) - set(P))}")
    params = [P[n] for n in want]
    pos = ref.sinusoidal(c["max_positions"], c["d_model"]).float()
    opt = torch.optim.Adam(params, lr=0.0, betas=(0.9, 0.98), eps=1e-9)
    tensors = [tuple(torch.from_numpy(x[k].astype(np.int64)) for k in ("src", "src_len", "tgt_in", "tgt_len",
                                                                        "labels")) for x in batches]
    losses, t_timed, cpu_timed, tok_timed, rss_warm = [], 0.0, 0.0, 0, 0.0
    for i in range(warmup + steps):
        b = tensors[i]
        t0, c0 = time.perf_counter(), time.process_time()
        for g in opt.param_groups:
            g["lr"] = lr_at(i + 1)
        opt.zero_grad(set_to_none=True)
        amp = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext())
        with amp:
            loss = forward_train(ref, F, c, P, pos, b, 0.1, dropout)
        loss.backward()
        freeze_pad_rows(c, P)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lv = loss.item()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        losses.append(lv)
        if i == max(warmup - 1, 0):
            rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        if i >= warmup:
            t_timed += dt
            cpu_timed += dc
            tok_timed += int(b[3].sum())
        B, S = b[0].shape
        print(f"  torch {torch.__version__} {model} {precision} t={threads} step {i + 1}: B={B} S={S} T={b[2].shape[1]} loss {lv:.4f} {dt:.3f} s"
              + (" (warm-up)" if i < warmup else ""), file=sys.stderr)
    out = dict(impl="torch", torch_version=torch.__version__, model=model, precision=precision,
               threads=torch.get_num_threads(),
               params=sum(p.numel() for p in params), warmup=warmup, steps=steps, dropout=dropout, seconds=t_timed,
               cpu_seconds=cpu_timed, tgt_tokens=tok_timed, tok_per_s=tok_timed / t_timed,
               rss_after_warmup_mb=rss_warm,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, last_loss=losses[-1],
               losses=losses)
    print(json.dumps(out))


def load(path):
    """qkv rows by (model, threads, precision); torch rows by the same key
    and the torch version (several torches may have run)."""
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    key = lambda r: (r["model"], r["threads"], r.get("precision", "fp32"))  # noqa: E731
    q = {key(r): r for r in rows if r["impl"] == "qkv"}
    t = {}
    for r in rows:
        if r["impl"] == "torch":
            t.setdefault(key(r), {})[r.get("torch_version", "?")] = r
    return q, t


def cmd_table(path):
    q, t = load(path)
    print("tok/s: target tokens per second of the timed steps (wall time). GFLOP/step: 3 x model_forward_flops of")
    print("the padded batches. MFU: model FLOP/s over the 2048^3 sgemm rate at the same threads in the same qkv")
    print("process, on wall time and (MFU/cpu) per CPU-second, which a shared machine disturbs less. Both")
    print("implementations run the same model on the same batches, so torch's MFU uses qkv's count and peak.")
    print("qkv skips the output layer and loss at padded target positions (torch computes them), so it does")
    print("fewer FLOPs than this count: 'done' below is qkv's MFU/cpu on the FLOPs it performs.")
    print("cpu/wall: CPU-seconds per second of the timed steps (the threads asked for, when the cores are free);")
    print("ratio/cpu: the tokens per CPU-second of qkv over torch's (steadier on a shared machine; at 2 threads")
    print("it counts the CPU time threads spend waiting, if they spin).")
    print("prec: fp32, or bf16 (qkv --precision bf16 beside torch.autocast bf16); the peak is the 2048^3 product")
    print("of that precision (gemm, or gemm_bf16 on oneDNN), both measured in every qkv process (peaks line below).")
    print()
    print("model prec thr steps torch   |  tok/s qkv  torch  ratio ratio/cpu | GFLOP/step peak GF/s |  MFU qkv  torch "
          "| MFU/cpu qkv  torch | peak RSS MB qkv torch | last loss qkv   torch | cpu/wall qkv torch")
    order = lambda k: (k[0] != "small", k[2] != "fp32", k[1])  # noqa: E731
    for key in sorted(q, key=order):
        a = q[key]
        if not t.get(key):
            print(f"{key[0]:5} {key[2]:4} {key[1]:3} {a['steps']:5} {'-':7} | {a['tok_per_s']:10.0f}  (torch run missing)")
            continue
        for ver, b in sorted(t[key].items()):
            table_row(key, a, ver, b)
    for key in sorted(q, key=order):
        a = q[key]
        if "gemm_peak_gflops_fp32" in a:
            print(f"{key[0]:5} {key[2]:4} {key[1]}: peaks fp32 {a['gemm_peak_gflops_fp32']:.1f}, bf16 "
                  f"{a['gemm_peak_gflops_bf16']:.1f} GFLOP/s (2048^3, same process)")
    for key in sorted(q, key=order):
        if "mfu_cpu_done" in q[key]:
            print(f"{key[0]:5} {key[2]:4} {key[1]}: qkv MFU/cpu on the FLOPs done {100 * q[key]['mfu_cpu_done']:.1f}% "
                  f"({q[key]['flops_done'] / q[key]['flops_timed']:.3f} of the count)")


def table_row(key, a, ver, b):
    """One line of the table: qkv run a beside torch run b (version ver)."""
    mfu_t = a["flops_timed"] / b["seconds"] / 1e9 / a["gemm_peak_gflops"]
    mfu_tc = a["flops_timed"] / b["cpu_seconds"] / 1e9 / a["gemm_peak_gflops_per_cpu_s"]
    print(f"{key[0]:5} {key[2]:4} {key[1]:3} {a['steps']:5} {ver[:7]:7} | {a['tok_per_s']:10.0f} {b['tok_per_s']:6.0f} "
          f"{a['tok_per_s'] / b['tok_per_s']:5.2f}x "
          f"{(a['tgt_tokens'] / a['cpu_seconds']) / (b['tgt_tokens'] / b['cpu_seconds']):8.2f}x | "
          f"{a['flops_per_step'] / 1e9:10.1f} "
          f"{a['gemm_peak_gflops']:10.1f} | {100 * a['mfu']:7.1f}% {100 * mfu_t:5.1f}% "
          f"| {100 * a['mfu_cpu']:10.1f}% {100 * mfu_tc:5.1f}% "
          f"| {a['peak_rss_mb']:15.0f} {b['peak_rss_mb']:5.0f} | {a['last_loss']:13.4f} {b['last_loss']:7.4f}"
          f" | {a['cpu_seconds'] / a['seconds']:12.2f} {b['cpu_seconds'] / b['seconds']:5.2f}")


def cmd_check(path):
    q, t = load(path)
    bad = 0
    for key in sorted(q):
        a, b = q[key], next(iter(t.get(key, {}).values()), None)
        if b is None or a["dropout"] != 0 or b["dropout"] != 0:
            print(f"check {key}: needs a qkv and a torch run with --dropout 0")
            bad += 1
            continue
        for i, (x, y) in enumerate(zip(a["losses"], b["losses"])):
            tol = 1e-4 * (i + 1)  # rounding differences compound over updates
            ok = abs(x - y) <= tol
            bad += not ok
            print(f"check {key[0]} t={key[1]} step {i + 1}: loss qkv {x:.6f} torch {y:.6f} "
                  f"|diff| {abs(x - y):.2e} (tolerance {tol:.0e}) {'ok' if ok else 'DIFFERS'}")
    sys.exit(1 if bad else 0)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "train":
        cmd_train(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        cmd_table(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        cmd_check(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
