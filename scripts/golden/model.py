"""Golden fixtures for the whole model (tests/test_model.c).

Run from the repository root:

    /usr/bin/python3 scripts/golden/model.py

(PyTorch 1.13, numpy). Writes tests/golden/model/<case>.safetensors, one per
configuration below, each holding:
    __metadata__: config (the JSON the C side parses), label_smoothing
    param.<name>  every parameter, named as in src/model/params.c
    src, src_len, tgt_in, tgt_len, labels   (I32, B = 3, padded)
    logits [B, T, V], loss [1]
    attn.encoder.self.<l> [B, H, S, S], attn.decoder.self.<l> [B, H, T, T],
    attn.decoder.cross.<l> [B, H, T, S]
    grad.<name>  d(loss)/d(parameter)

The reference is written here from the semantics of the model (not from the
C code): a functional Transformer in float64 on float32-rounded parameters,
dropout off. Tied weights are one tensor, so their gradients add up; token
lookups use padding_idx = pad_id (no gradient to the pad row from lookups).
A further case made by transformers' MarianMTModel itself comes from
scripts/golden/model_marian.py.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st import write_safetensors  # noqa: E402

OUT = os.path.join("tests", "golden", "model")

DEFAULTS = dict(
    shared_vocab=False, d_model=512, d_ff=2048, heads=8, encoder_layers=6, decoder_layers=6,
    activation="relu", norm="post", positions="sinusoidal", max_positions=512, scale_embedding=True,
    tie_encoder_decoder_embeddings=False, tie_output_embeddings=True, output_bias=False,
    layer_norm_eps=1e-5, pad_id=0, bos_id=1, eos_id=2,
)

CASES = {
    "post_relu_sin": dict(
        config=dict(src_vocab_size=40, tgt_vocab_size=50, d_model=16, heads=4, d_ff=32, encoder_layers=2,
                    decoder_layers=2, activation="relu", norm="post", positions="sinusoidal", max_positions=32),
        label_smoothing=0.1),
    "pre_gelu_learned_untied_bias": dict(
        config=dict(src_vocab_size=45, tgt_vocab_size=38, d_model=24, encoder_heads=4, decoder_heads=3,
                    encoder_d_ff=32, decoder_d_ff=40, encoder_layers=2, decoder_layers=2, activation="gelu",
                    norm="pre", positions="learned", max_positions=12, tie_output_embeddings=False,
                    output_bias=True, dropout=0.0),
        label_smoothing=0.0),
    "pre_swish_shared_tied": dict(
        config=dict(src_vocab_size=48, shared_vocab=True, d_model=16, heads=2, d_ff=24, encoder_layers=3,
                    decoder_layers=1, activation="swish", norm="pre", final_norm=False,
                    positions="sinusoidal", max_positions=16, tie_encoder_decoder_embeddings=True,
                    scale_embedding=False),
        label_smoothing=0.1),
    "post_silu_final_norm_bias": dict(
        config=dict(src_vocab_size=30, tgt_vocab_size=42, d_model=32, heads=8, d_ff=48, encoder_layers=1,
                    decoder_layers=2, activation="silu", norm="post", final_norm=True, positions="learned",
                    max_positions=10, output_bias=True, layer_norm_eps=1e-6, pad_id=1, bos_id=0, eos_id=2,
                    decoder_start_id=3),
        label_smoothing=0.0),
    "post_gelu_untied": dict(
        config=dict(src_vocab_size=36, tgt_vocab_size=44, d_model=16, encoder_heads=2, decoder_heads=4,
                    d_ff=20, encoder_layers=2, decoder_layers=2, activation="gelu", norm="post",
                    positions="sinusoidal", max_positions=8, tie_output_embeddings=False),
        label_smoothing=0.2),
}


def full_config(cfg):
    c = dict(DEFAULTS)
    c.update(cfg)
    if c.get("shared_vocab") and "tgt_vocab_size" not in cfg:
        c["tgt_vocab_size"] = c["src_vocab_size"]
    c.setdefault("encoder_heads", c["heads"])
    c.setdefault("decoder_heads", c["heads"])
    c.setdefault("encoder_d_ff", c["d_ff"])
    c.setdefault("decoder_d_ff", c["d_ff"])
    c.setdefault("final_norm", c["norm"] == "pre")
    c.setdefault("decoder_start_id", c["bos_id"])
    if c["activation"] == "silu":
        c["activation"] = "swish"
    return c


def param_table(c):
    """(name, shape, kind) in the order of src/model/params.c."""
    C = c["d_model"]
    t = []
    if c["tie_encoder_decoder_embeddings"]:
        t.append(("model.shared.weight", (c["src_vocab_size"], C), "embed"))
    else:
        t.append(("encoder.embed_tokens.weight", (c["src_vocab_size"], C), "embed"))
        t.append(("decoder.embed_tokens.weight", (c["tgt_vocab_size"], C), "embed"))
    if c["positions"] == "learned":
        t.append(("encoder.embed_positions.weight", (c["max_positions"], C), "embed"))
        t.append(("decoder.embed_positions.weight", (c["max_positions"], C), "embed"))

    def attn(p):
        for x in "qkv":
            t.append((f"{p}.{x}_proj.weight", (C, C), "matrix"))
        for x in "qkv":
            t.append((f"{p}.{x}_proj.bias", (C,), "bias"))
        t.append((f"{p}.out_proj.weight", (C, C), "matrix"))
        t.append((f"{p}.out_proj.bias", (C,), "bias"))

    def ln(p):
        t.append((f"{p}.weight", (C,), "ln"))
        t.append((f"{p}.bias", (C,), "bias"))

    for stack in ("encoder", "decoder"):
        Fd = c[f"{stack}_d_ff"]
        for i in range(c[f"{stack}_layers"]):
            p = f"{stack}.layers.{i}"
            attn(p + ".self_attn")
            ln(p + ".self_attn_layer_norm")
            if stack == "decoder":
                attn(p + ".encoder_attn")
                ln(p + ".encoder_attn_layer_norm")
            t.append((p + ".fc1.weight", (Fd, C), "matrix"))
            t.append((p + ".fc1.bias", (Fd,), "bias"))
            t.append((p + ".fc2.weight", (C, Fd), "matrix"))
            t.append((p + ".fc2.bias", (C,), "bias"))
            ln(p + ".final_layer_norm")
    if c["final_norm"]:
        ln("encoder.layer_norm")
        ln("decoder.layer_norm")
    if not c["tie_output_embeddings"]:
        t.append(("lm_head.weight", (c["tgt_vocab_size"], C), "matrix"))
    if c["output_bias"]:
        t.append(("final_logits_bias", (c["tgt_vocab_size"],), "bias"))
    return t


def make_params(c, gen):
    """Random float32 values (non-trivial biases and norm weights so that every
    gradient is exercised), returned as float64 leaves."""
    P = {}
    for name, shape, kind in param_table(c):
        if kind == "matrix":
            bound = math.sqrt(6.0 / (shape[0] + shape[1]))
            x = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        elif kind == "embed":
            x = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5
        elif kind == "ln":
            x = 1.0 + 0.2 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            x = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        P[name] = x.float().double().requires_grad_(True)
    return P


def sinusoidal(P, C):
    pos = torch.arange(P, dtype=torch.float64)[:, None]
    j = torch.arange(C // 2, dtype=torch.float64)[None, :]
    ang = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), 2.0 * j / C)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


def act_fn(name):
    return {"relu": F.relu, "gelu": F.gelu, "swish": F.silu}[name]


def attention(P, p, x, kv, key_len, causal, H):
    B, Tq, C = x.shape
    Tk, D = kv.shape[1], C // H

    def proj(n, inp):
        return F.linear(inp, P[f"{p}.{n}_proj.weight"], P[f"{p}.{n}_proj.bias"])

    q = proj("q", x).view(B, Tq, H, D).transpose(1, 2)
    k = proj("k", kv).view(B, Tk, H, D).transpose(1, 2)
    v = proj("v", kv).view(B, Tk, H, D).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    j = torch.arange(Tk)[None, None, None, :]
    i = torch.arange(Tq)[None, None, :, None]
    mask = j < key_len[:, None, None, None]
    if causal:
        mask = mask & (j <= i + (Tk - Tq))
    scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = (probs @ v).transpose(1, 2).reshape(B, Tq, C)
    return F.linear(out, P[f"{p}.out_proj.weight"], P[f"{p}.out_proj.bias"]), probs


def forward(c, P, src, src_len, tgt_in, tgt_len, labels, eps):
    C = c["d_model"]
    ln_eps = c["layer_norm_eps"]
    act = act_fn(c["activation"])
    pre = c["norm"] == "pre"
    scale = math.sqrt(C) if c["scale_embedding"] else 1.0
    if c["tie_encoder_decoder_embeddings"]:
        enc_emb = dec_emb = P["model.shared.weight"]
    else:
        enc_emb, dec_emb = P["encoder.embed_tokens.weight"], P["decoder.embed_tokens.weight"]
    if c["positions"] == "learned":
        enc_pos, dec_pos = P["encoder.embed_positions.weight"], P["decoder.embed_positions.weight"]
    else:
        enc_pos = dec_pos = sinusoidal(c["max_positions"], C).to(enc_emb.dtype)

    def LN(x, p):
        return F.layer_norm(x, (C,), P[p + ".weight"], P[p + ".bias"], ln_eps)

    def block(x, ln_name, sub):
        if pre:
            return x + sub(LN(x, ln_name))
        return LN(x + sub(x), ln_name)

    def ffn(p):
        return lambda h: F.linear(act(F.linear(h, P[p + ".fc1.weight"], P[p + ".fc1.bias"])),
                                  P[p + ".fc2.weight"], P[p + ".fc2.bias"])

    attn_out = {}
    S, T = src.shape[1], tgt_in.shape[1]
    # padding_idx: lookups of pad give the pad row no gradient (Marian, fairseq)
    x = F.embedding(src, enc_emb, padding_idx=c["pad_id"]) * scale + enc_pos[:S]
    for i in range(c["encoder_layers"]):
        p = f"encoder.layers.{i}"

        def sa(h, p=p, i=i):
            o, pr = attention(P, p + ".self_attn", h, h, src_len, False, c["encoder_heads"])
            attn_out[f"attn.encoder.self.{i}"] = pr
            return o

        x = block(x, p + ".self_attn_layer_norm", sa)
        x = block(x, p + ".final_layer_norm", ffn(p))
    if c["final_norm"]:
        x = LN(x, "encoder.layer_norm")
    enc = x
    y = F.embedding(tgt_in, dec_emb, padding_idx=c["pad_id"]) * scale + dec_pos[:T]
    for i in range(c["decoder_layers"]):
        p = f"decoder.layers.{i}"

        def sa(h, p=p, i=i):
            o, pr = attention(P, p + ".self_attn", h, h, tgt_len, True, c["decoder_heads"])
            attn_out[f"attn.decoder.self.{i}"] = pr
            return o

        def ca(h, p=p, i=i):
            o, pr = attention(P, p + ".encoder_attn", h, enc, src_len, False, c["decoder_heads"])
            attn_out[f"attn.decoder.cross.{i}"] = pr
            return o

        y = block(y, p + ".self_attn_layer_norm", sa)
        y = block(y, p + ".encoder_attn_layer_norm", ca)
        y = block(y, p + ".final_layer_norm", ffn(p))
    if c["final_norm"]:
        y = LN(y, "decoder.layer_norm")
    W = dec_emb if c["tie_output_embeddings"] else P["lm_head.weight"]
    logits = F.linear(y, W, P["final_logits_bias"] if c["output_bias"] else None)
    V = c["tgt_vocab_size"]
    loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1).long(), ignore_index=c["pad_id"],
                           label_smoothing=eps)
    return logits, loss, attn_out


def make_batch(c, gen):
    B, S, T = 3, 7, 6
    src_len = torch.tensor([7, 4, 5])
    tgt_len = torch.tensor([6, 3, 5])
    pad, eos, start = c["pad_id"], c["eos_id"], c["decoder_start_id"]
    special = {c["pad_id"], c["bos_id"], c["eos_id"], c["decoder_start_id"]}

    def tokens(n, V):
        out = []
        while len(out) < n:
            t = int(torch.randint(0, V, (1,), generator=gen))
            if t not in special:
                out.append(t)
        return out

    src = torch.full((B, S), pad, dtype=torch.long)
    tgt_in = torch.full((B, T), pad, dtype=torch.long)
    labels = torch.full((B, T), pad, dtype=torch.long)
    for b in range(B):
        s = tokens(int(src_len[b]) - 1, c["src_vocab_size"]) + [eos]
        src[b, : len(s)] = torch.tensor(s)
        y = tokens(int(tgt_len[b]) - 1, c["tgt_vocab_size"]) + [eos]
        labels[b, : len(y)] = torch.tensor(y)
        tgt_in[b, : len(y)] = torch.tensor([start] + y[:-1])
    return src, src_len, tgt_in, tgt_len, labels


def main():
    torch.manual_seed(1234)
    os.makedirs(OUT, exist_ok=True)
    for k, (name, case) in enumerate(CASES.items()):
        gen = torch.Generator().manual_seed(1000 + k)
        c = full_config(case["config"])
        eps = case["label_smoothing"]
        P = make_params(c, gen)
        src, src_len, tgt_in, tgt_len, labels = make_batch(c, gen)
        logits, loss, attn = forward(c, P, src, src_len, tgt_in, tgt_len, labels, eps)
        loss.backward()
        out = {}
        for pname, _, _ in param_table(c):
            out["param." + pname] = P[pname].detach().float().numpy()
        i32 = lambda t: t.to(torch.int32).numpy()  # noqa: E731
        out.update(src=i32(src), src_len=i32(src_len), tgt_in=i32(tgt_in), tgt_len=i32(tgt_len),
                   labels=i32(labels))
        out["logits"] = logits.detach().float().numpy()
        out["loss"] = np.array([loss.item()], dtype=np.float32)
        for key in sorted(attn):
            out[key] = attn[key].detach().float().numpy()
        for pname, _, _ in param_table(c):
            out["grad." + pname] = P[pname].grad.float().numpy()
        meta = {"config": json.dumps(case["config"]), "label_smoothing": repr(eps),
                "generator": "scripts/golden/model.py"}
        path = os.path.join(OUT, name + ".safetensors")
        write_safetensors(path, out, meta)
        print(f"{path}: loss {loss.item():.6f}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
