"""A golden case for tests/test_model.c made by Hugging Face transformers'
own MarianMTModel (not by our reference), so that the C model is shown to
compute what Marian computes when given Marian's weights.

Needs transformers (4.39 used) beside PyTorch; from the repository root:

    /usr/bin/python3 -m venv --system-site-packages .venv-model
    .venv-model/bin/pip install transformers==4.39.3
    .venv-model/bin/python scripts/golden/model_marian.py

(any virtual environment with transformers will do). Writes
tests/golden/model/marian_hf.safetensors in the layout of
scripts/golden/model.py: our parameter names are Marian's without the
"model." prefix (model.shared.weight keeps it); Marian's sinusoidal
position table is a buffer, not a parameter, and is left out; its
final_logits_bias buffer is made a parameter with random values so its
gradient is checked too. Marian conventions: post-norm, no final norm,
sqrt(d_model) embedding scale, shared and tied embeddings, pad id =
decoder start id = V - 1, eos 0. The model runs in float64; the loss is
F.cross_entropy(ignore_index=pad, label_smoothing=0.1) of Marian's logits.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from transformers import MarianConfig, MarianMTModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st import write_safetensors  # noqa: E402

OUT = os.path.join("tests", "golden", "model", "marian_hf.safetensors")


def main():
    torch.manual_seed(4321)
    V, C, eps = 40, 16, 0.1
    pad, eos = V - 1, 0
    hf_cfg = MarianConfig(
        vocab_size=V, decoder_vocab_size=V, d_model=C, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=24,
        activation_function="swish", max_position_embeddings=16, scale_embedding=True,
        pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=pad, dropout=0.0,
        attention_dropout=0.0, activation_dropout=0.0, share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
    )
    model = MarianMTModel(hf_cfg)
    model.final_logits_bias = torch.nn.Parameter(0.1 * torch.randn(1, V))
    with torch.no_grad():  # non-trivial norms and biases, so every gradient is exercised
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif name == "model.shared.weight":
                p.copy_(0.3 * torch.randn_like(p))
    model = model.double().eval()
    # pin the values to float32, which is what the C model holds
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.float().double())

    config = dict(
        src_vocab_size=V, shared_vocab=True, d_model=C, encoder_heads=2, decoder_heads=4, encoder_d_ff=32,
        decoder_d_ff=24, encoder_layers=2, decoder_layers=2, activation="swish", norm="post",
        final_norm=False, positions="sinusoidal", max_positions=16, scale_embedding=True,
        tie_encoder_decoder_embeddings=True, tie_output_embeddings=True, output_bias=True,
        layer_norm_eps=1e-5, pad_id=pad, bos_id=1, eos_id=eos, decoder_start_id=pad,
    )

    B, S, T = 3, 7, 6
    src_len, tgt_len = [7, 5, 3], [6, 4, 5]
    src = torch.full((B, S), pad, dtype=torch.long)
    tgt_in = torch.full((B, T), pad, dtype=torch.long)
    labels = torch.full((B, T), pad, dtype=torch.long)
    g = torch.Generator().manual_seed(7)
    for b in range(B):
        s = torch.randint(1, V - 1, (src_len[b] - 1,), generator=g).tolist() + [eos]
        y = torch.randint(1, V - 1, (tgt_len[b] - 1,), generator=g).tolist() + [eos]
        src[b, : len(s)] = torch.tensor(s)
        labels[b, : len(y)] = torch.tensor(y)
        tgt_in[b, : len(y)] = torch.tensor([pad] + y[:-1])
    src_mask = (torch.arange(S)[None, :] < torch.tensor(src_len)[:, None]).long()
    tgt_mask = (torch.arange(T)[None, :] < torch.tensor(tgt_len)[:, None]).long()

    # transformers builds its float64 masks with the default dtype
    torch.set_default_dtype(torch.float64)
    out = model(input_ids=src, attention_mask=src_mask, decoder_input_ids=tgt_in,
                decoder_attention_mask=tgt_mask, output_attentions=True, return_dict=True)
    logits = out.logits
    loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=pad, label_smoothing=eps)
    loss.backward()

    params = {}
    for name, p in model.named_parameters():
        ours = name[len("model."):] if name.startswith("model.") and name != "model.shared.weight" else name
        if "embed_positions" in ours or ours in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
            continue  # sinusoidal buffer / tied to model.shared.weight
        params[ours] = p
    tensors = {}
    for k, p in params.items():
        tensors["param." + k] = p.detach().float().numpy().reshape(-1 if k == "final_logits_bias" else p.shape)
    i32 = lambda t: t.to(torch.int32).numpy()  # noqa: E731
    tensors.update(src=i32(src), src_len=np.array(src_len, np.int32), tgt_in=i32(tgt_in),
                   tgt_len=np.array(tgt_len, np.int32), labels=i32(labels))
    tensors["logits"] = logits.detach().float().numpy()
    tensors["loss"] = np.array([loss.item()], dtype=np.float32)
    for kind, seq in (("encoder.self", out.encoder_attentions), ("decoder.self", out.decoder_attentions),
                      ("decoder.cross", out.cross_attentions)):
        for l, a in enumerate(seq):
            tensors[f"attn.{kind}.{l}"] = a.detach().float().numpy()
    for k, p in params.items():
        tensors["grad." + k] = p.grad.float().numpy().reshape(-1 if k == "final_logits_bias" else p.shape)
    meta = {"config": json.dumps(config), "label_smoothing": repr(eps),
            "generator": "scripts/golden/model_marian.py (transformers MarianMTModel)"}
    write_safetensors(OUT, tensors, meta)
    print(f"{OUT}: loss {loss.item():.6f}, {len(params)} parameters, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
