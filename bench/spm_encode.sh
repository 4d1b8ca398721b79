#!/usr/bin/env bash
# Encode throughput, side by side: `qkv vocab encode` against sentencepiece
# 0.1.97 (the spm_encode program and the Python library), on the same corpus
# and models, ids out. Prints sentences/s for each and the ratio qkv/peer,
# and checks that the outputs are identical.
#
#   bench/spm_encode.sh [LINES]     (default 50000; run from anywhere; needs
#                                    ./qkv built: make qkv)
#
# Corpus: lines of the gettext catalogs installed under /usr/share/locale (all
# languages, shuffled with a fixed seed). Models: unigram and BPE with 8000
# pieces trained on that corpus by spm_train (cached in build/bench/), and the
# 1000-piece fixture models. Best of 3 runs, CPU time (user + sys); one
# thread everywhere. The Python figure includes the interpreter's loop.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50000}
dir=build/bench/spm
mkdir -p $dir
corpus=$dir/corpus_$n.txt
if [ ! -s $corpus ]; then
  /usr/bin/python3 - "$corpus" "$n" <<'PY'
import glob, gettext, random, sys
out = []
for path in sorted(glob.glob("/usr/share/locale/*/LC_MESSAGES/*.mo")):
    try:
        cat = gettext.GNUTranslations(open(path, "rb"))._catalog
    except Exception:
        continue
    for v in cat.values():
        if isinstance(v, str):
            out += [l for l in v.replace("\r", "").split("\n") if l.strip()]
random.Random(7).shuffle(out)
with open(sys.argv[1], "w") as f:
    f.write("\n".join(out[: int(sys.argv[2])]) + "\n")
PY
fi
for t in unigram bpe; do
  if [ ! -s $dir/${t}_8000.model ]; then
    spm_train --input=$corpus --model_prefix=$dir/${t}_8000 --vocab_size=8000 --model_type=$t \
      --character_coverage=0.9995 --num_threads=2 --minloglevel=2 >/dev/null 2>&1
  fi
done
lines=$(wc -l < $corpus)
bytes=$(wc -c < $corpus)
echo "corpus: $lines lines, $bytes bytes ($corpus)"

# Seconds of CPU (user + system) of the best of 3 runs of "$@" on the corpus,
# stdout to $out. CPU time rather than wall time: the machine may be shared,
# and every contender runs on one thread.
best() {
  local b=999999 t
  for _ in 1 2 3; do
    t=$( { TIMEFORMAT='%U %S'; time "$@" < "$corpus" > "$out"; } 2>&1 | tail -1 | awk '{print $1 + $2}')
    (( $(echo "$t < $b" | bc -l) )) && b=$t
  done
  echo "$b"
}
py_encode() {
  /usr/bin/python3 - "$1" "$corpus" <<'PY'
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
lines = open(sys.argv[2], "rb").read().split(b"\n")[:-1]
lines = [l.decode("utf-8", "surrogateescape") for l in lines]
out = sys.stdout
for l in lines:
    out.write(" ".join(map(str, sp.encode(l))) + "\n")
PY
}

printf "%-28s %14s %14s %14s %10s %10s\n" model "qkv sent/s" "spm_encode" "python spm" "ratio cli" "ratio py"
for m in $dir/unigram_8000.model $dir/bpe_8000.model tests/golden/spm/uni_1000.model tests/golden/spm/bpe_1000.model; do
  out=$dir/out_qkv.txt;  tq=$(best ./qkv vocab encode --model "$m" --output-format id < $corpus)
  out=$dir/out_spm.txt;  ts=$(best spm_encode --model="$m" --output_format=id < $corpus)
  out=$dir/out_py.txt;   tp=$(best py_encode "$m")
  cmp -s $dir/out_qkv.txt $dir/out_spm.txt || { echo "$m: qkv and spm_encode outputs DIFFER"; exit 1; }
  cmp -s $dir/out_qkv.txt $dir/out_py.txt || echo "$m: note: python output differs (invalid UTF-8 lines?)"
  printf "%-28s %14.0f %14.0f %14.0f %9.2fx %9.2fx\n" "$(basename $m)" \
    "$(echo "$lines / $tq" | bc -l)" "$(echo "$lines / $ts" | bc -l)" "$(echo "$lines / $tp" | bc -l)" \
    "$(echo "$ts / $tq" | bc -l)" "$(echo "$tp / $tq" | bc -l)"
done
echo "ratio = peer time / qkv time (> 1: qkv is faster); outputs of qkv and spm_encode identical"
