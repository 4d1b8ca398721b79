#!/usr/bin/env python3
"""Fixtures for tests/test_safetensors.c, tests/test_mo.c and
tests/test_corpus.c, and the check that the reference reads what qkv writes.

Run from the repository root. The .mo part needs only msgfmt (Debian package
gettext) and Python's standard library:

    /usr/bin/python3 scripts/golden/formats.py mo

The safetensors part needs the reference `safetensors` package next to
Debian's torch and numpy:

    /usr/bin/python3 -m venv --system-site-packages .venv-formats
    .venv-formats/bin/pip install safetensors
    .venv-formats/bin/python scripts/golden/formats.py safetensors

With no argument it does both (in the venv).

mo: writes tests/golden/formats/mo/{basic,basic-be,basic-fuzzy}.mo with
msgfmt from one .po (plurals, contexts, a fuzzy entry, an untranslated one,
escapes, system-dependent "%<PRIu64>" strings), and expected.json listing the
entries msgfmt keeps (fuzzy ones marked); Python's gettext module must agree
on the static ones. It also writes the small package tree for
tests/test_corpus.c (tests/golden/formats/corpus/).

safetensors does two things:
  1. writes tests/golden/formats/reference.safetensors with the reference
     writer (safetensors.torch.save_file): float tensors in F16/BF16/F64/F32
     next to their float32 upcast made by torch, int64 ids next to their int32
     cast. test_reads_reference_writer compares qkv's conversions with torch's.
  2. loads tests/golden/formats/written_by_qkv.safetensors (made by qkv's
     writer: QKV_REGEN_GOLDEN=1 build/tests/test_safetensors
     test_writer_output_is_stable) with the reference reader and checks every
     value, dtype, shape and the metadata. Exits non-zero on any difference.
"""
import gettext
import json
import os
import shutil
import subprocess
import sys

OUT = "tests/golden/formats"


def f16_patterns():
    import numpy as np

    # every subnormal, zero, inf and NaN pattern of both signs, and a sample of
    # the normal range (every 13th bit pattern)
    pats = set(range(0, 0x400)) | set(range(0x7C00, 0x7C10)) | set(range(0x7E00, 0x7E04)) | {0x7FFF}
    pats |= set(range(0x400, 0x7C00, 13))
    pats |= {p | 0x8000 for p in list(pats)}
    return np.array(sorted(pats), dtype=np.uint16)


def bf16_patterns():
    import numpy as np

    pats = set(range(0, 0x80)) | set(range(0x7F80, 0x7F84)) | {0x7FC0, 0x7FFF, 0x7F7F, 0x3F80, 0x3F81}
    pats |= set(range(0x80, 0x7F80, 29))
    pats |= {p | 0x8000 for p in list(pats)}
    return np.array(sorted(pats), dtype=np.uint16)


def write_reference():
    import numpy as np
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(1234)
    x_f16 = torch.from_numpy(f16_patterns().view(np.float16).copy())
    # torch has no uint16: build bfloat16 from int16 bit patterns
    x_bf16 = torch.from_numpy(bf16_patterns().view(np.int16).copy()).view(torch.bfloat16)
    x_f64 = torch.cat([
        torch.randn(200, generator=g, dtype=torch.float64) * 1e3,
        torch.tensor([0.0, -0.0, 1e-40, -1e-45, 1e-50, 3.4028235e38, 1e39, -1e300,
                      float("inf"), float("-inf"), float("nan"), 1 / 3, 0.1], dtype=torch.float64),
    ])
    x_f32 = torch.cat([torch.randn(52, generator=g),
                       torch.tensor([1e-45, -0.0, float("inf"), 3.4028235e38])]).reshape(7, 8)
    ids = torch.randint(-2**31, 2**31, (5, 7), generator=g, dtype=torch.int64)
    tensors = {
        "x_f16": x_f16, "x_f16_as_f32": x_f16.float(),
        "x_bf16": x_bf16, "x_bf16_as_f32": x_bf16.float(),
        "x_f64": x_f64, "x_f64_as_f32": x_f64.float(),
        "x_f32": x_f32,
        "ids_i64": ids, "ids_i32": ids.to(torch.int32),
    }
    path = os.path.join(OUT, "reference.safetensors")
    save_file(tensors, path, metadata={"format": "pt", "origin": "scripts/golden/formats.py"})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def check_written_by_qkv():
    import numpy as np
    import torch
    from safetensors import safe_open

    path = os.path.join(OUT, "written_by_qkv.safetensors")
    w = np.array([0.5, -1.25, 3.0, 1e-3, -0.0, 65504.0], dtype=np.float32)
    want = {
        "encoder.weight": w.reshape(2, 3),
        "half": torch.from_numpy(w).half(),
        "brain": torch.from_numpy(w).bfloat16().reshape(3, 2),
        "ids": np.array([0, 1, -5, 1 << 40], dtype=np.int64),
        "i32": np.array([[3, -3], [2**31 - 1, -2**31]], dtype=np.int32),
        "mask": np.array([True, False, True]),
        "scalar": np.array(0.5, dtype=np.float32),
    }
    errors = []
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        if meta != {"format": "pt", "writer": "qkv"}:
            errors.append(f"metadata {meta}")
        keys = set(f.keys())
        if keys != set(want):
            errors.append(f"tensor names {sorted(keys)} != {sorted(want)}")
        for name, ref in want.items():
            if name not in keys:
                continue
            got = f.get_tensor(name)
            ref_t = ref if isinstance(ref, torch.Tensor) else torch.from_numpy(ref)
            if got.dtype != ref_t.dtype or tuple(got.shape) != tuple(ref_t.shape):
                errors.append(f"{name}: {got.dtype} {tuple(got.shape)} != {ref_t.dtype} {tuple(ref_t.shape)}")
            elif not torch.equal(got, ref_t):
                errors.append(f"{name}: values {got.tolist()} != {ref_t.tolist()}")
            elif got.dtype.is_floating_point and not torch.equal(torch.signbit(got), torch.signbit(ref_t)):
                errors.append(f"{name}: signs of zero differ")
    if errors:
        print("written_by_qkv.safetensors: the reference reader disagrees:", *errors, sep="\n  ")
        sys.exit(1)
    print(f"{path}: the reference reads all {len(want)} tensors and the metadata as written")


# Headers (with data section lengths) on which qkv's reader must agree with
# the reference: st_cases.json records the reference's verdict for each, and
# test_reference_verdicts in tests/test_safetensors.c checks qkv's.
ST_CASES = {
    "size mismatch": (b'{"w":{"dtype":"F32","shape":[5,6],"data_offsets":[0,100]}}', 100),
    "offsets past data": (b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 4),
    "overlap": (b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12),
    "gap": (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', 12),
    "first not at 0": (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
    "bytes after the last tensor": (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 6),
    "duplicate names": (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                        b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
    "unknown dtype": (b'{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}', 4),
    "negative shape": (b'{"w":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,4]}}', 4),
    "fractional shape": (b'{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', 4),
    "shape overflow": (b'{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}', 4),
    "three offsets": (b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', 4),
    "end before begin": (b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', 4),
    "dtype missing": (b'{"w":{"shape":[1],"data_offsets":[0,4]}}', 4),
    "array header": (b'[1, 2]', 0),
    "truncated JSON": (b'{"a":{"dtype":"F32"', 0),
    "trailing junk": (b'{} x', 0),
    "invalid UTF-8": (b'{"\xff":1}', 0),
    "control byte": (b'{"a\x01":1}', 0),
    "metadata value not a string": (b'{"__metadata__": {"k": 1}}', 0),
    "tensor not an object": (b'{"w": 3}', 0),
    "data but no tensors": (b'{}', 3),
    "valid: empty": (b'{}', 0),
    "valid: leading whitespace": (b' \n{}', 0),
    "valid: metadata null": (b'{"__metadata__": null}', 0),
    "valid: unknown field ignored": (b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', 4),
    "valid: out of order, zero-size, padding": (
        b'{ "b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},'
        b'"z1":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},'
        b'"z0":{"dtype":"I8","shape":[0, 3],"data_offsets":[0,0]},'
        b'"a":{"dtype":"I32","shape":[],"data_offsets":[0,4]},"__metadata__":null}  \n ', 8),
    "valid for the reference, unsupported here: U16": (
        b'{"w":{"dtype":"U16","shape":[1],"data_offsets":[0,2]}}', 2),
    "valid for the reference, unsupported here: 9 dims": (
        b'{"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}', 4),
}


def write_reference_verdicts():
    import struct
    from safetensors.numpy import load
    cases = []
    for name, (header, data_len) in ST_CASES.items():
        blob = struct.pack("<Q", len(header)) + header + bytes(data_len)
        try:
            load(blob)
            ok, why = True, ""
        except Exception as e:  # the reference's SafetensorError
            ok, why = False, str(e)[:120]
        cases.append({"name": name, "header_hex": header.hex(), "data_len": data_len,
                      "reference_accepts": ok, "reference_error": why})
    path = os.path.join(OUT, "st_cases.json")
    with open(path, "w") as f:
        json.dump(cases, f, indent=1)
    print(f"wrote {path} ({len(cases)} cases, {sum(c['reference_accepts'] for c in cases)} accepted by the reference)")


# ---- .mo ------------------------------------------------------------------

# (context, msgid, msgid_plural, msgstr forms, flags); keep in sync with the
# checks in tests/test_mo.c that name entries.
MO_ENTRIES = [
    (None, "_File", None, ["文件(_F)"], ""),
    (None, "Open", None, ["打开"], ""),
    ("menu", "Open", None, ["打开菜单"], ""),
    (None, "%d file", "%d files", ["%d Datei", "%d Dateien"], "c-format"),
    (None, "Line one\nline two\twith tab", None, ["第一行\n第二行\t制表"], ""),
    (None, "Fuzzy one", None, ["模糊"], "fuzzy"),
    (None, "Untranslated", None, [""], ""),
    (None, 'Quote " and backslash \\', None, ['引号 " 反斜杠 \\'], ""),
    (None, "read %<PRIu64> bytes", None, ["读取 %<PRIu64> 字节"], "c-format"),
    ("ctx", "%<PRId64> item", "%<PRId64> items", ["%<PRId64> 项", "%<PRId64> 项目"], "c-format"),
]
MO_HEADER = ("Project-Id-Version: qkv-test 1.0\nContent-Type: text/plain; charset=UTF-8\n"
             "Content-Transfer-Encoding: 8bit\nPlural-Forms: nplurals=2; plural=(n != 1);\n")


def po_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def write_po(path, entries, header=MO_HEADER):
    lines = ['msgid ""', "msgstr " + po_quote(header), ""]
    for ctx, mid, plural, strs, flags in entries:
        if flags:
            lines.append("#, " + flags)
        if ctx is not None:
            lines.append("msgctxt " + po_quote(ctx))
        lines.append("msgid " + po_quote(mid))
        if plural is not None:
            lines.append("msgid_plural " + po_quote(plural))
            lines += [f"msgstr[{i}] " + po_quote(x) for i, x in enumerate(strs)]
        else:
            lines.append("msgstr " + po_quote(strs[0]))
        lines.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def msgfmt(po, mo, *opts):
    subprocess.run(["msgfmt", *opts, "-o", mo, po], check=True)


def write_mo_fixtures():
    out = os.path.join(OUT, "mo")
    os.makedirs(out, exist_ok=True)
    po = os.path.join(out, "basic.po")
    write_po(po, MO_ENTRIES)
    msgfmt(po, os.path.join(out, "basic.mo"))
    msgfmt(po, os.path.join(out, "basic-be.mo"), "--endianness=big")
    msgfmt(po, os.path.join(out, "basic-fuzzy.mo"), "--use-fuzzy")
    expected = []
    for ctx, mid, plural, strs, flags in MO_ENTRIES:
        if all(x == "" for x in strs):
            continue  # msgfmt drops untranslated entries
        expected.append({"context": ctx, "msgid": mid, "msgid_plural": plural, "msgstr": strs,
                         "fuzzy": "fuzzy" in flags, "sysdep": "%<PRI" in mid})
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"header": MO_HEADER, "entries": expected}, f, ensure_ascii=False, indent=1)
    # Python's own reader agrees on the static entries (it skips system-dependent ones)
    with open(os.path.join(out, "basic.mo"), "rb") as f:
        t = gettext.GNUTranslations(f)
    for e in expected:
        if e["fuzzy"] or e["sysdep"]:
            continue
        if e["msgid_plural"]:
            got = [t.npgettext(e["context"], e["msgid"], e["msgid_plural"], n) if e["context"]
                   else t.ngettext(e["msgid"], e["msgid_plural"], n) for n in (1, 2)]
        else:
            got = [t.pgettext(e["context"], e["msgid"]) if e["context"] else t.gettext(e["msgid"])]
        assert got == e["msgstr"], (e, got)
    print(f"wrote {out}/basic*.mo and expected.json ({len(expected)} entries)")


# Package tree for tests/test_corpus.c: two packages, one catalog each under
# the gettext layout and one under LibreOffice's, plus a catalog in another
# language that must be ignored. Keep in sync with tests/test_corpus.c.
CORPUS_CATALOGS = {
    "pkg-a/usr/share/locale/zh_CN/LC_MESSAGES/a.mo": [
        (None, "_File", None, ["文件(_F)"], ""),
        (None, "&Open", None, ["打开(&O)"], ""),
        (None, "Save ~As", None, ["另存为(~A)"], ""),
        ("menu", "Quit", None, ["退出"], ""),
        (None, "%d file", "%d files", ["%d 个文件"], "c-format"),
        (None, "Copy %s to %s", None, ["将 %1$s 复制到 %2$s"], "c-format"),
        (None, "Line one\nline  two\tend", None, ["第一行\n第二行\t结束"], ""),
        (None, "Untranslated", None, [""], ""),
        (None, "Replace %1 with %2", None, ["用 %2 替换 %1"], ""),
        (None, "x" * 250, None, ["长"], ""),
        (None, "Size: %ld bytes", None, ["大小：%ld 字节"], "c-format"),
        (None, "   ", None, ["空"], ""),
        (None, "100% done", None, ["完成 100%"], "no-c-format"),
    ],
    "pkg-b/usr/share/locale/zh_CN/LC_MESSAGES/b.mo": [
        (None, "Open", None, ["打开"], ""),
        (None, "_File", None, ["文件(F)"], ""),
        (None, "Help", None, ["帮助"], ""),
    ],
    "pkg-b/usr/lib/libreoffice/program/resource/zh_CN/LC_MESSAGES/lo.mo": [
        (None, "~Edit", None, ["编辑(~E)"], ""),
        (None, "Fish && Chips", None, ["鱼和薯条"], ""),
    ],
    "pkg-b/usr/share/locale/de/LC_MESSAGES/b.mo": [
        (None, "Help", None, ["Hilfe"], ""),
    ],
}


def write_mo_by_hand(path, pairs):
    """A revision-0 little-endian .mo of (original, translation) byte strings,
    for content msgfmt refuses to write (invalid UTF-8)."""
    import struct
    pairs = sorted(pairs)
    n = len(pairs)
    o_tab, t_tab = 28, 28 + 8 * n
    pos = t_tab + 8 * n
    blob, o_desc, t_desc = b"", [], []
    for orig, _ in pairs:
        o_desc.append((len(orig), pos + len(blob)))
        blob += orig + b"\0"
    for _, trans in pairs:
        t_desc.append((len(trans), pos + len(blob)))
        blob += trans + b"\0"
    head = struct.pack("<7I", 0x950412DE, 0, n, o_tab, t_tab, 0, 0)
    tabs = b"".join(struct.pack("<2I", *d) for d in o_desc + t_desc)
    with open(path, "wb") as f:
        f.write(head + tabs + blob)


def write_corpus_fixtures():
    root = os.path.join(OUT, "corpus")
    shutil.rmtree(root, ignore_errors=True)
    for rel, entries in CORPUS_CATALOGS.items():
        mo = os.path.join(root, rel)
        os.makedirs(os.path.dirname(mo), exist_ok=True)
        po = mo[:-3] + ".po"
        write_po(po, entries)
        msgfmt(po, mo)
        os.remove(po)
    # a Latin-1 catalog (skipped whole) and one with an invalid UTF-8 entry
    latin = os.path.join(root, "pkg-c/usr/share/locale/zh_CN/LC_MESSAGES/latin1.mo")
    os.makedirs(os.path.dirname(latin), exist_ok=True)
    write_mo_by_hand(latin, [(b"", MO_HEADER.replace("UTF-8", "ISO-8859-1").encode()),
                             (b"Caf\xe9", b"Caf\xe9 (zh)")])
    write_mo_by_hand(os.path.join(root, "pkg-c/usr/share/locale/zh_CN/LC_MESSAGES/utf8.mo"),
                     [(b"", MO_HEADER.encode()), (b"Broken", b"\xff\xfe"), (b"Fine", "好".encode())])
    print(f"wrote {root} ({len(CORPUS_CATALOGS) + 2} catalogs)")

    # a .deb holding one catalog, for corpus_fetch's unpacking (no network)
    debs = os.path.join(OUT, "debs")
    shutil.rmtree(debs, ignore_errors=True)
    tree = os.path.join("/tmp", f"qkv-deb-{os.getpid()}")
    shutil.rmtree(tree, ignore_errors=True)
    locale = os.path.join(tree, "usr/share/locale/zh_CN/LC_MESSAGES")
    os.makedirs(locale)
    os.makedirs(os.path.join(tree, "DEBIAN"))
    shutil.copy(os.path.join(root, "pkg-b/usr/share/locale/zh_CN/LC_MESSAGES/b.mo"),
                os.path.join(locale, "qkv-test.mo"))
    with open(os.path.join(tree, "DEBIAN/control"), "w") as f:
        f.write("Package: qkv-test-catalogs\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: qkv <qkv@example.org>\nDescription: catalogs for tests/test_corpus.c\n")
    os.makedirs(debs)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree,
                    os.path.join(debs, "qkv-test-catalogs_1.0_all.deb")], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(tree)
    print(f"wrote {debs}/qkv-test-catalogs_1.0_all.deb")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("mo", "all"):
        write_mo_fixtures()
        write_corpus_fixtures()
    if what in ("safetensors", "all"):
        write_reference()
        write_reference_verdicts()
        check_written_by_qkv()
