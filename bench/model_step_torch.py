"""The PyTorch peer of bench/model_step.c: forward + backward time of one
training step of the same base-sized model (the reference Transformer of
scripts/golden/model.py, float32, same batch shape, label smoothing 0.1;
dropout is off here, which only favours PyTorch slightly).

    /usr/bin/python3 bench/model_step_torch.py [B S T steps]   (default 64 64 64 3)

Threads: $QKV_THREADS or every core (torch.set_num_threads). Run it right
after build/bench/model_step with the same arguments and compare the lines
"best step".
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "golden"))
import model as ref  # noqa: E402


def main():
    args = [int(a) for a in sys.argv[1:5]]
    B, S, T, steps = (args + [64, 64, 64, 3][len(args):])[:4]
    threads = int(os.environ.get("QKV_THREADS", "0")) or os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = ref.full_config(dict(src_vocab_size=8000, tgt_vocab_size=8000))
    P = {}
    for name, shape, kind in ref.param_table(c):
        x = torch.randn(shape) * (0.02 if kind in ("matrix", "embed") else 0.0)
        if kind == "ln":
            x += 1.0
        P[name] = x.requires_grad_(True)
    nparams = sum(p.numel() for p in P.values())
    src = torch.randint(3, 8000, (B, S))
    tgt = torch.randint(3, 8000, (B, T))
    lab = torch.randint(3, 8000, (B, T))
    sl = torch.full((B,), S)
    tl = torch.full((B,), T)
    print(f"model_step_torch: torch {torch.__version__}, {nparams} parameters, B={B} S={S} T={T}, "
          f"{threads} threads")
    best_f = best_b = float("inf")
    for i in range(steps + 1):
        for p in P.values():
            p.grad = None
        c0, t0 = time.process_time(), time.perf_counter()
        _, loss, _ = ref.forward(c, P, src, sl, tgt, tl, lab, 0.1)
        t1 = time.perf_counter()
        loss.backward()
        t2, c2 = time.perf_counter(), time.process_time()
        if i > 0:
            best_f, best_b = min(best_f, t1 - t0), min(best_b, t2 - t1)
        print(f"  step {i}: loss {loss.item():.4f}  forward {t1 - t0:.3f} s  backward {t2 - t1:.3f} s  (cpu {c2 - c0:.3f} s over {threads} threads)"
              + (" (warm-up)" if i == 0 else ""))
    step = best_f + best_b
    print(f"best step: {step:.3f} s (forward {best_f:.3f} s, backward {best_b:.3f} s), "
          f"{B * T / step:.0f} target tokens/s")


if __name__ == "__main__":
    main()
