#!/bin/sh
# Translation speed of each kernel path on this machine, in one run: the
# generic, AVX2 and AVX-512 paths of the portable build (QKV_ISA caps the
# path; paths the CPU lacks are reported as skipped), then the same
# configurations with everything compiled -march=native (a copy of the
# tree built in a temporary folder), for greedy batch 1 and beam 4 batch
# 32 at 1 and 2 threads.
#
#   bench/isa_paths.sh [MODEL [INPUT]]
#
# MODEL and INPUT as in bench/translate.sh (default: a random-weight small
# model, d_model 256, 3+3 layers, and the spm test text repeated 4 times).
# Prints one table: path, beam, batch, threads, target tokens/s (the best
# of ROUNDS runs, default 3, against other load on the machine), and for
# the native build its ratio to the portable build's best path.
set -e
cd "$(dirname "$0")/.."
make --no-print-directory qkv build/bench/translate >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MODEL=${1:-}
if [ -z "$MODEL" ]; then
    MODEL=$TMP/random.qkv
    build/bench/translate --make-model "$MODEL"
fi
INPUT=${2:-}
if [ -z "$INPUT" ]; then
    INPUT=$TMP/input.txt
    for i in 1 2 3 4; do grep -av '^[[:space:]]*$' tests/golden/spm/test.txt; done > "$INPUT"
fi
echo "building a -march=native copy in $TMP/native ..." >&2
mkdir -p "$TMP/native"
cp -r Makefile src include cli bench tests "$TMP/native/"
(cd "$TMP/native" && make --no-print-directory -j"$(nproc)" ARCH=-march=native build/bench/translate >/dev/null 2>&1)
NATIVE=$TMP/native/build/bench/translate
best=$(./qkv version | sed -n 's/.*in use: \([a-z0-9]*\).*/\1/p')
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')   $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $MODEL   input: $INPUT ($(wc -l < "$INPUT") lines)   best path: $best"
printf "%-14s %4s %5s %7s %10s %8s\n" build/path beam batch threads tok/s vs_best
ROUNDS=${ROUNDS:-3}
row() { # label bin isa beam batch threads -> prints tok/s, the best of ROUNDS runs
    for r in $(seq "$ROUNDS"); do
        QKV_ISA=$3 "$2" -m "$MODEL" --input "$INPUT" --beam "$4" --batch "$5" --threads "$6" --repeat 2
    done | awk '$8 > best {best = $8} END {print best}'
}
for cfg in "1 1" "4 32"; do
    set -- $cfg
    beam=$1 batch=$2
    for threads in 1 2; do
        ref=""
        for isa in generic avx2 avx512; do
            if ! QKV_ISA=$isa ./qkv version >/dev/null 2>&1; then
                printf "%-14s %4s %5s %7s %10s\n" "$isa" "$beam" "$batch" "$threads" "skipped (CPU lacks it)"
                continue
            fi
            t=$(row "$isa" build/bench/translate "$isa" "$beam" "$batch" "$threads")
            [ "$isa" = "$best" ] && ref=$t
            printf "%-14s %4s %5s %7s %10s\n" "$isa" "$beam" "$batch" "$threads" "$t"
        done
        t=$(row native "$NATIVE" "$best" "$beam" "$batch" "$threads")
        printf "%-14s %4s %5s %7s %10s %8s\n" "native/$best" "$beam" "$batch" "$threads" "$t" \
            "$(awk -v a="$t" -v b="$ref" 'BEGIN { printf "%.3f", a / b }')"
    done
done
