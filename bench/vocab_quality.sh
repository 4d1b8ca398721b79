#!/usr/bin/env bash
# Trainer quality and speed, qkv vs sentencepiece, side by side.
#
#   bench/vocab_quality.sh [VOCAB_SIZE] [TYPE] [THREADS]     (8000 unigram 2)
#
# Trains `qkv vocab train` and `spm_train` (Debian's sentencepiece) with the
# same size, type and options on the same English and Chinese text, encodes a
# held-out part with the sentencepiece library for both models (so only the
# vocabularies differ) and prints the average pieces per sentence of each,
# their ratio, and the training times.
#
# Text: out/corpus/zh_CN/train.{en,zh} (made by `qkv corpus`) when the
# project's corpus exists, its test.{en,zh} held out; else English msgids and
# Chinese msgstrs of the zh_CN gettext catalogs of a few Debian packages
# (downloaded with apt-get download into $WORK/debian, unpacked with dpkg-deb;
# 2000 random lines held out).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-8000}
TYPE=${2:-unigram}
THREADS=${3:-2}
WORK=${WORK:-/tmp/qkv-vocab-bench}
PY=/usr/bin/python3
[ -x ./qkv ] || make qkv >/dev/null

src=""
for d in out/corpus/zh_CN out/corpus/zh; do
  [ -z "$src" ] && [ -f "$d/train.en" ] && [ -f "$d/train.zh" ] && src=$d
done
if [ -n "$src" ]; then
  DATA=$WORK/project
  mkdir -p "$DATA"
  for l in en zh; do
    if [ -f "$src/test.$l" ]; then
      cp "$src/train.$l" "$DATA/train.$l"
      cp "$src/test.$l" "$DATA/test.$l"
    else
      n=$(wc -l <"$src/train.$l")
      head -n $((n - 2000)) "$src/train.$l" >"$DATA/train.$l"
      tail -n 2000 "$src/train.$l" >"$DATA/test.$l"
    fi
  done
  echo "text: the project's corpus, $src/train.{en,zh} (held out: $src/test.* or the last 2000 lines)"
else
  DATA=$WORK/debian
  mkdir -p "$DATA"
  if [ ! -f "$DATA/train.en" ]; then
    (cd "$DATA" && apt-get download libgtk-3-common libglib2.0-data gnupg-l10n libc-l10n util-linux-locales \
      coreutils tar gettext wget grep sed diffutils findutils e2fsprogs-l10n gnome-desktop3-data \
      libgtk2.0-common apt dpkg gdb nano gnupg-utils iso-codes >/dev/null 2>&1 &&
      for d in *.deb; do dpkg-deb -x "$d" root; done)
    (cd "$DATA" && $PY - <<'PYEOF'
import glob, random, struct
def read_mo(path):
    d = open(path, 'rb').read()
    e = '<' if struct.unpack('<I', d[:4])[0] == 0x950412de else '>'
    _, n, oo, to = struct.unpack(e + '4I', d[4:20])
    for i in range(n):
        ol, of = struct.unpack(e + '2I', d[oo + 8 * i:oo + 8 * i + 8])
        tl, tf = struct.unpack(e + '2I', d[to + 8 * i:to + 8 * i + 8])
        s, t = d[of:of + ol], d[tf:tf + tl]
        if s:
            yield s.split(b'\0')[0].split(b'\x04')[-1], t.split(b'\0')[0]
en, zh = [], []
for p in sorted(glob.glob('root/usr/share/locale/zh_CN/LC_MESSAGES/*.mo')):
    for s, t in read_mo(p):
        try:
            s, t = s.decode(), t.decode()
        except UnicodeDecodeError:
            continue
        for a, b in zip(s.split('\n'), t.split('\n')):
            if a.strip() and b.strip():
                en.append(a.strip()); zh.append(b.strip())
idx = list(range(len(en))); random.Random(1).shuffle(idx)
for name, lines in (('en', en), ('zh', zh)):
    open('test.' + name, 'w').write('\n'.join(lines[i] for i in idx[:2000]) + '\n')
    open('train.' + name, 'w').write('\n'.join(lines[i] for i in idx[2000:]) + '\n')
PYEOF
    )
  fi
  echo "text: zh_CN gettext catalogs of Debian packages ($DATA)"
fi

printf '%-4s %8s %10s %10s %8s %9s %9s %8s\n' lang lines qkv spm ratio qkv_s spm_s spm/qkv
for l in en zh; do
  # the same coverage for both, by qkv's default rule: 1.0 for small alphabets, else 0.9995
  cov=$($PY -c "import sys; print('1.0' if len(set(open(sys.argv[1]).read()) - set(' \n')) <= 1000 else '0.9995')" "$DATA/train.$l")
  t0=$(date +%s.%N)
  ./qkv vocab train --input "$DATA/train.$l" --vocab-size "$SIZE" --type "$TYPE" --threads "$THREADS" \
    --character-coverage "$cov" --out "$DATA/qkv_$l" --quiet
  t1=$(date +%s.%N)
  spm_train --input "$DATA/train.$l" --vocab_size "$SIZE" --model_type "$TYPE" --num_threads "$THREADS" \
    --model_prefix "$DATA/spm_$l" --character_coverage "$cov" --minloglevel 2 >/dev/null 2>&1
  t2=$(date +%s.%N)
  $PY - "$DATA/test.$l" "$DATA/qkv_$l.model" "$DATA/spm_$l.model" "$l" "$(wc -l <"$DATA/train.$l")" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" <<'PYEOF'
import sys, sentencepiece as spm
test = [l.rstrip('\n') for l in open(sys.argv[1])]
avg = []
for m in sys.argv[2:4]:
    sp = spm.SentencePieceProcessor(model_file=m)
    avg.append(sum(len(sp.encode(l)) for l in test) / len(test))
tq, ts = float(sys.argv[6]), float(sys.argv[7])
print('%-4s %8s %10.4f %10.4f %8.4f %9.2f %9.2f %8.2f' % (sys.argv[4], sys.argv[5], avg[0], avg[1], avg[0] / avg[1], tq, ts, ts / tq))
PYEOF
done
echo "(pieces per held-out sentence; ratio = qkv/spm, within 0.97..1.03 is the goal; times in seconds, $THREADS threads)"
