"""A qkv checkpoint read in Python and built as a CTranslate2 TransformerSpec,
for bench/vs_ctranslate2.py (convert-qkv, and the ct2 runner and token count
on such a conversion). No qkv code runs here: the container, the config JSON
and the parameter layout are read as the C code writes them.

The container (keep in sync with src/train/checkpoint.h): "QKVCKPT\\0", u32
version 1, u32 n_sections, then per section a 16-byte NUL-padded tag, u64
nbytes and the payload; a u64 FNV-1a checksum ends the file (checked by
`qkv info`, not here: byte by byte in Python it would take seconds).

The parameter layout (keep in sync with build_table in src/model/params.c):
one float32 buffer of named views in the order listed by param_table below.

A conversion directory holds CTranslate2's model.bin, config.json and
vocabularies, and beside them source.spm / target.spm (the checkpoint's
SentencePiece models, which the runner tokenizes with) and qkv.json (the ids
the runner needs: eos, pad, decoder start, the pieces each side has, the
checkpoint it came from).
"""
import json
import math
import os
import struct

import numpy as np

MAGIC = b"QKVCKPT\0"


def read_checkpoint(path):
    """{tag: bytes} of a qkv checkpoint (version 1)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise ValueError("%s: not a qkv checkpoint (magic %r)" % (path, data[:8]))
    version, n = struct.unpack_from("<II", data, 8)
    if version != 1:
        raise ValueError("%s: checkpoint version %d, this reader knows 1" % (path, version))
    off, sections = 16, {}
    for i in range(n):
        if off + 24 > len(data):
            raise ValueError("%s: section %d header past the end of the file" % (path, i))
        tag = data[off:off + 16].rstrip(b"\0").decode("ascii")
        (nbytes,) = struct.unpack_from("<Q", data, off + 16)
        off += 24
        if off + nbytes + 8 > len(data):
            raise ValueError("%s: section '%s' (%d bytes) past the end of the file" % (path, tag, nbytes))
        sections[tag] = data[off:off + nbytes]
        off += nbytes
    if off + 8 != len(data):
        raise ValueError("%s: %d bytes after the last section, expected the 8-byte checksum" % (path, len(data) - off))
    return sections


def param_table(c):
    """[(name, shape)] in buffer order, as build_table (src/model/params.c)
    lists them; a tied tensor appears once."""
    C = c["d_model"]
    t = []

    def ln(prefix):
        t.append((prefix + ".weight", (C,)))
        t.append((prefix + ".bias", (C,)))

    def attn(prefix):
        for p in ("q", "k", "v"):
            t.append(("%s.%s_proj.weight" % (prefix, p), (C, C)))
        for p in ("q", "k", "v"):
            t.append(("%s.%s_proj.bias" % (prefix, p), (C,)))
        t.append((prefix + ".out_proj.weight", (C, C)))
        t.append((prefix + ".out_proj.bias", (C,)))

    def layer(stack, i, F):
        p = "%s.layers.%d" % (stack, i)
        attn(p + ".self_attn")
        ln(p + ".self_attn_layer_norm")
        if stack == "decoder":
            attn(p + ".encoder_attn")
            ln(p + ".encoder_attn_layer_norm")
        t.append((p + ".fc1.weight", (F, C)))
        t.append((p + ".fc1.bias", (F,)))
        t.append((p + ".fc2.weight", (C, F)))
        t.append((p + ".fc2.bias", (C,)))
        ln(p + ".final_layer_norm")

    if c["tie_encoder_decoder_embeddings"]:
        t.append(("model.shared.weight", (c["src_vocab_size"], C)))
    else:
        t.append(("encoder.embed_tokens.weight", (c["src_vocab_size"], C)))
        t.append(("decoder.embed_tokens.weight", (c["tgt_vocab_size"], C)))
    if c["positions"] == "learned":
        t.append(("encoder.embed_positions.weight", (c["max_positions"], C)))
        t.append(("decoder.embed_positions.weight", (c["max_positions"], C)))
    for i in range(c["encoder_layers"]):
        layer("encoder", i, c["encoder_d_ff"])
    for i in range(c["decoder_layers"]):
        layer("decoder", i, c["decoder_d_ff"])
    if c["final_norm"]:
        ln("encoder.layer_norm")
        ln("decoder.layer_norm")
    if not c["tie_output_embeddings"]:
        t.append(("lm_head.weight", (c["tgt_vocab_size"], C)))
    if c.get("output_bias"):
        t.append(("final_logits_bias", (c["tgt_vocab_size"],)))
    return t


def load_qkv(path):
    """(config dict, {name: float32 array}, source spm bytes, target spm bytes)."""
    s = read_checkpoint(path)
    for tag in ("config", "src_vocab", "params"):
        if tag not in s:
            kind = " (a quantized file: convert the float32 checkpoint it came from)" if "quant" in s else ""
            raise ValueError("%s: no '%s' section%s" % (path, tag, kind))
    c = json.loads(s["config"].decode("utf-8"))
    buf = np.frombuffer(s["params"], dtype="<f4").copy()  # writable: CTranslate2 quantizes in place
    w, off = {}, 0
    for name, shape in param_table(c):
        n = int(np.prod(shape))
        w[name] = buf[off:off + n].reshape(shape)
        off += n
    if off != buf.size:
        raise ValueError("%s: the config lays out %d parameters, section 'params' holds %d" % (path, off, buf.size))
    if c["tie_encoder_decoder_embeddings"]:
        w["encoder.embed_tokens.weight"] = w["decoder.embed_tokens.weight"] = w["model.shared.weight"]
    return c, w, s["src_vocab"], s.get("tgt_vocab", s["src_vocab"])


def sinusoidal_positions(P, C):
    """[P, C]: sin in the first half, cos in the second, angle p / 10000^(2j/C),
    in double and rounded once, as qkv (src/kernels/linear.c) and Hugging
    Face Marian build it. CTranslate2's own table (when none is stored) is
    the tensor2tensor one, with another frequency spacing, so it is stored."""
    half = C // 2
    p = np.arange(P, dtype=np.float64)[:, None]
    j = np.arange(half, dtype=np.float64)[None, :]
    angle = p / np.power(10000.0, 2.0 * j / C)
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1).astype(np.float32)


def spm_pieces(model_bytes, n):
    """The pieces of a SentencePiece model in id order, padded to n tokens
    with names no piece has (ids the model has and the vocabulary not: the
    extra pad qkv train appends; never generated, see suppressed())."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    if len(pieces) > n:
        raise ValueError("SentencePiece model has %d pieces, the model %d ids" % (len(pieces), n))
    have = set(pieces)
    for i in range(len(pieces), n):
        name = "<qkv_id_%d>" % i
        while name in have:
            name += "_"
        pieces.append(name)
    return pieces, sp.get_piece_size()


def convert_qkv(model_path, out_dir, quantization=None):
    from ctranslate2.specs import common_spec, transformer_spec

    c, w, src_spm, tgt_spm = load_qkv(model_path)
    if c["norm"] == "post" and c["final_norm"]:
        raise ValueError("%s: post-norm with final norms, which CTranslate2's TransformerSpec cannot express"
                         % model_path)
    act = {"relu": common_spec.Activation.RELU, "gelu": common_spec.Activation.GELU,
           "swish": common_spec.Activation.SWISH}[c["activation"]]
    pre = c["norm"] == "pre"
    enc = transformer_spec.TransformerEncoderSpec(c["encoder_layers"], c["encoder_heads"], pre_norm=pre,
                                                  no_final_norm=pre and not c["final_norm"], activation=act)
    dec = transformer_spec.TransformerDecoderSpec(c["decoder_layers"], c["decoder_heads"], pre_norm=pre,
                                                  no_final_norm=pre and not c["final_norm"], activation=act)
    spec = transformer_spec.TransformerSpec(enc, dec)
    scale = math.sqrt(c["d_model"]) if c["scale_embedding"] else 1.0
    P = c["max_positions"]
    table = sinusoidal_positions(P, c["d_model"]) if c["positions"] == "sinusoidal" else None

    def lin(s, prefix, bias=True):
        s.weight = w[prefix + ".weight"]
        if bias:
            s.bias = w[prefix + ".bias"]

    def ln(s, prefix):
        s.gamma = w[prefix + ".weight"]
        s.beta = w[prefix + ".bias"]

    def attention(s, prefix, self_attn):
        q, k, v = (w["%s.%s_proj.weight" % (prefix, x)] for x in "qkv")
        qb, kb, vb = (w["%s.%s_proj.bias" % (prefix, x)] for x in "qkv")
        if self_attn:  # one fused [3C, C] projection
            s.linear[0].weight = np.concatenate([q, k, v])
            s.linear[0].bias = np.concatenate([qb, kb, vb])
        else:  # query, then keys and values of the encoder output fused
            s.linear[0].weight, s.linear[0].bias = q, qb
            s.linear[1].weight = np.concatenate([k, v])
            s.linear[1].bias = np.concatenate([kb, vb])
        lin(s.linear[-1], prefix + ".out_proj")

    for side, s in (("encoder", spec.encoder), ("decoder", spec.decoder)):
        emb = s.embeddings[0] if isinstance(s.embeddings, list) else s.embeddings
        emb.weight = w[side + ".embed_tokens.weight"]
        s.scale_embeddings = scale
        s.position_encodings.encodings = table if table is not None else w[side + ".embed_positions.weight"]
        if pre and c["final_norm"]:
            ln(s.layer_norm, side + ".layer_norm")
        n = c[side + "_layers"]
        for i in range(n):
            p, L = "%s.layers.%d" % (side, i), s.layer[i]
            attention(L.self_attention, p + ".self_attn", True)
            ln(L.self_attention.layer_norm, p + ".self_attn_layer_norm")
            if side == "decoder":
                attention(L.attention, p + ".encoder_attn", False)
                ln(L.attention.layer_norm, p + ".encoder_attn_layer_norm")
            lin(L.ffn.linear_0, p + ".fc1")
            lin(L.ffn.linear_1, p + ".fc2")
            ln(L.ffn.layer_norm, p + ".final_layer_norm")
    out_w = w["decoder.embed_tokens.weight"] if c["tie_output_embeddings"] else w["lm_head.weight"]
    spec.decoder.projection.weight = out_w
    if c.get("output_bias"):
        spec.decoder.projection.bias = w["final_logits_bias"]

    src_tokens, src_n = spm_pieces(src_spm, c["src_vocab_size"])
    tgt_tokens, tgt_n = spm_pieces(tgt_spm, c["tgt_vocab_size"])
    spec.register_source_vocabulary(src_tokens)
    spec.register_target_vocabulary(tgt_tokens)
    cfg = spec.config
    cfg.unk_token = tgt_tokens[_unk_id(tgt_spm)]
    cfg.bos_token = tgt_tokens[c["bos_id"]]
    cfg.eos_token = tgt_tokens[c["eos_id"]]
    cfg.decoder_start_token = tgt_tokens[c["decoder_start_id"]]
    cfg.add_source_bos = False
    cfg.add_source_eos = False  # the runner appends EOS itself, as qkv does
    cfg.layer_norm_epsilon = c["layer_norm_eps"]

    spec.validate()
    spec.optimize(quantization=quantization)
    if os.path.exists(out_dir):
        for name in os.listdir(out_dir):
            os.remove(os.path.join(out_dir, name))
    else:
        os.makedirs(out_dir)
    spec.save(out_dir)
    with open(os.path.join(out_dir, "source.spm"), "wb") as f:
        f.write(src_spm)
    with open(os.path.join(out_dir, "target.spm"), "wb") as f:
        f.write(tgt_spm)
    meta = {"checkpoint": os.path.realpath(model_path), "quantization": quantization or "float32",
            "eos_id": c["eos_id"], "pad_id": c["pad_id"], "decoder_start_id": c["decoder_start_id"],
            "max_positions": P, "src_pieces": src_n, "tgt_pieces": tgt_n, "tgt_vocab_size": c["tgt_vocab_size"]}
    with open(os.path.join(out_dir, "qkv.json"), "w") as f:
        json.dump(meta, f, indent=1)


def _unk_id(model_bytes):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=model_bytes).unk_id()


class QkvTokenizer:
    """The tokenization `qkv translate` does around a checkpoint
    (src/decode/translator.c): source = SentencePiece ids of the line, cut
    to max_positions - 1, then EOS; target ids past the target pieces are
    dropped before decoding."""

    def __init__(self, ct2_dir):
        import sentencepiece as spm

        with open(os.path.join(ct2_dir, "qkv.json")) as f:
            self.meta = json.load(f)
        self.src = spm.SentencePieceProcessor(model_file=os.path.join(ct2_dir, "source.spm"))
        self.tgt = spm.SentencePieceProcessor(model_file=os.path.join(ct2_dir, "target.spm"))
        vocab = {}
        for name in ("shared_vocabulary.json", "target_vocabulary.json"):
            p = os.path.join(ct2_dir, name)
            if os.path.exists(p) and not vocab:
                with open(p, encoding="utf-8") as f:
                    vocab["tgt"] = json.load(f)
        for name in ("shared_vocabulary.json", "source_vocabulary.json"):
            p = os.path.join(ct2_dir, name)
            if os.path.exists(p) and "src" not in vocab:
                with open(p, encoding="utf-8") as f:
                    vocab["src"] = json.load(f)
        self.src_tokens, self.tgt_tokens = vocab["src"], vocab["tgt"]
        self.tgt_id = {p: i for i, p in enumerate(self.tgt_tokens)}

    def source_tokens(self, line):
        ids = self.src.encode(line, out_type=int)
        ids = ids[:self.meta["max_positions"] - 1] + [self.meta["eos_id"]]
        return [self.src_tokens[i] for i in ids]

    def target_tokens(self, line):
        """The reference's pieces, cut as qkv score cuts them (CTranslate2
        appends EOS itself)."""
        ids = self.tgt.encode(line, out_type=int)[:self.meta["max_positions"] - 1]
        return [self.tgt_tokens[i] for i in ids]

    def suppressed(self):
        """Tokens qkv never generates: pad (unless it is EOS) and the ids
        without a target piece (src/decode/options.c, translator.c)."""
        m = self.meta
        ids = [i for i in range(m["tgt_pieces"], m["tgt_vocab_size"]) if i != m["eos_id"]]
        if m["pad_id"] != m["eos_id"] and m["pad_id"] not in ids:
            ids.insert(0, m["pad_id"])
        return [[self.tgt_tokens[i]] for i in ids]

    def detokenize(self, tokens):
        n = self.meta["tgt_pieces"]
        ids = [self.tgt_id[t] for t in tokens]
        return self.tgt.decode([i for i in ids if 0 <= i < n])

    def count(self, lines):
        """Target pieces + EOS of each line, summed."""
        return sum(len(ids) + 1 for ids in self.tgt.encode(lines, out_type=int))
