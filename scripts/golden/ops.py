#!/usr/bin/python3
"""PyTorch fixtures for the kernels (tests/test_ops_golden.c).

Run from the repository root with Debian's Python (torch 1.13):

    /usr/bin/python3 scripts/golden/ops.py

Writes tests/golden/ops/<op>.safetensors: each op's inputs, its output as
PyTorch computes it in float32, a fixed random upstream gradient `dout`, and
the input gradients from autograd. The safetensors files are written by hand
(8-byte little-endian header length, JSON header {name: {dtype, shape,
data_offsets}}, raw little-endian data) so no extra package is needed.
Deterministic: the same torch version writes the same bytes.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join("tests", "golden", "ops")


def write_safetensors(path, tensors):
    """tensors: dict name -> numpy array (float32 -> F32, int32 -> I32, int64 -> I64)."""
    dtypes = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("int64"): "I64"}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # keep the data 8-byte aligned, as the reference writer does
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_(True)


def np32(t):
    return t.detach().numpy().astype(np.float32)


def with_grads(out, inputs, names, extra):
    """Backpropagates a random upstream gradient; returns the fixture dict."""
    dout = torch.randn_like(out)
    out.backward(dout)
    d = dict(extra)
    d["out"] = np32(out)
    d["dout"] = np32(dout)
    for t, n in zip(inputs, names):
        d[n] = np32(t)
        d["d" + n] = np32(t.grad)
    return d


def marian_sinusoidal(n_pos, dim):
    """transformers' MarianSinusoidalPositionalEmbedding._init_weight (4.x)."""
    position_enc = np.array(
        [[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)]
    )
    out = np.empty((n_pos, dim), dtype=np.float32)
    sentinel = dim // 2 if dim % 2 == 0 else (dim // 2) + 1
    out[:, 0:sentinel] = np.sin(position_enc[:, 0::2])
    out[:, sentinel:] = np.cos(position_enc[:, 1::2])
    return out


def attention_fixture(B, H, Tq, Tk, D, key_len, causal):
    q, k, v = leaf(B, H, Tq, D), leaf(B, H, Tk, D), leaf(B, H, Tk, D)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    j = torch.arange(Tk).view(1, 1, 1, Tk)
    i = torch.arange(Tq).view(1, 1, Tq, 1)
    masked = j >= torch.tensor(key_len).view(B, 1, 1, 1)
    if causal:
        masked = masked | (j > i + (Tk - Tq))
    probs = torch.softmax(scores.masked_fill(masked, float("-inf")), dim=-1)
    probs.retain_grad()
    out = probs @ v
    d = with_grads(out, [q, k, v], ["q", "k", "v"], {"key_len": np.array(key_len, dtype=np.int32)})
    d["probs"] = np32(probs)
    d["shape"] = np.array([B, H, Tq, Tk, D, causal], dtype=np.int32)
    return d


def main():
    torch.manual_seed(1234)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    fx = {}

    N, C, OC = 7, 24, 13
    x, w, b = leaf(N, C), leaf(OC, C, scale=0.3), leaf(OC)
    fx["linear"] = with_grads(F.linear(x, w, b), [x, w, b], ["inp", "weight", "bias"], {})

    N, C = 6, 40
    x = leaf(N, C, scale=2.0)
    with torch.no_grad():
        x[0] += 50.0  # a row whose mean dwarfs its spread
    w, b = leaf(C), leaf(C)
    fx["layernorm"] = with_grads(F.layer_norm(x, (C,), w, b, 1e-5), [x, w, b], ["inp", "weight", "bias"], {})

    # Marian/HF embedding: tokens * sqrt(d_model) + sinusoidal positions,
    # positions starting at past_key_values_length (here 3).
    B, T, C, V, P, off = 2, 5, 16, 11, 12, 3
    ids = torch.tensor([[1, 4, 4, 10, 0], [7, 1, 1, 1, 3]], dtype=torch.int64)
    table = leaf(V, C)
    pos = torch.from_numpy(marian_sinusoidal(P, C))
    emb = F.embedding(ids, table) * math.sqrt(C) + pos[off:off + T].unsqueeze(0)
    fx["embedding"] = with_grads(emb, [table], ["table"], {
        "ids": ids.numpy(), "positions": pos.numpy(),
        "shape": np.array([B, T, C, V, P, off], dtype=np.int32), "scale": np.array([math.sqrt(C)], np.float32)})

    fx["attention_pad"] = attention_fixture(2, 3, 6, 6, 8, [6, 4], causal=0)
    fx["attention_causal"] = attention_fixture(2, 3, 6, 6, 8, [6, 5], causal=1)
    fx["attention_decode"] = attention_fixture(2, 2, 2, 7, 4, [7, 6], causal=1)  # queries at the end of the keys
    fx["attention_cross"] = attention_fixture(2, 2, 3, 9, 8, [9, 2], causal=0)

    B, T, H, D = 2, 5, 3, 4
    x = leaf(B, T, H * D)
    fx["heads_split"] = with_grads(x.view(B, T, H, D).transpose(1, 2).contiguous(), [x], ["inp"],
                                   {"shape": np.array([B, T, H, D], np.int32)})
    x = leaf(B, H, T, D)
    fx["heads_merge"] = with_grads(x.transpose(1, 2).contiguous().view(B, T, H * D), [x], ["inp"],
                                   {"shape": np.array([B, T, H, D], np.int32)})

    for name, fn in [("relu", F.relu), ("gelu", lambda t: F.gelu(t)), ("swish", F.silu)]:
        x = leaf(301, scale=3.0)
        fx["act_" + name] = with_grads(fn(x), [x], ["inp"], {})

    x = leaf(5, 33, scale=4.0)
    fx["softmax"] = {"inp": np32(x), "out": np32(torch.softmax(x, -1)), "log_out": np32(torch.log_softmax(x, -1))}

    N, V = 9, 1000
    logits = leaf(N, V, scale=3.0)
    targets = torch.randint(0, V, (N,))
    targets[2] = -100
    targets[7] = -100
    loss = F.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.1, reduction="none")
    d = with_grads(loss, [logits], ["logits"], {"targets": targets.numpy()})
    d["loss"] = d.pop("out")
    d["dloss"] = d.pop("dout")
    # The training loss as PyTorch users write it: the mean over the kept tokens.
    logits.grad = None
    mean_loss = F.cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.1)
    mean_loss.backward()
    d["mean_loss"] = np.array([mean_loss.item()], np.float32)
    d["dlogits_mean"] = np32(logits.grad)
    fx["crossentropy"] = d

    # AdamW: three steps on one parameter vector with given gradients.
    n = 257
    p = torch.randn(n).requires_grad_(True)
    d = {"param0": np32(p)}
    opt = torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    for s in range(3):
        g = torch.randn(n) * (0.1 if s else 10.0)
        d["grad%d" % s] = g.numpy().copy()
        p.grad = g
        opt.step()
    st = opt.state[p]
    d["param3"] = np32(p)
    d["m3"] = np32(st["exp_avg"])
    d["v3"] = np32(st["exp_avg_sq"])
    d["hyper"] = np.array([0.01, 0.9, 0.98, 1e-9, 0.01], np.float32)
    fx["adamw"] = d

    for name, tensors in fx.items():
        write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors)
    print("wrote %d fixtures to %s (torch %s)" % (len(fx), OUT, torch.__version__))


if __name__ == "__main__":
    main()
