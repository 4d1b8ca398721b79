#!/bin/sh
# Translation throughput of qkv: greedy and beam 4, batch 1 and 32, 1 and 2
# threads, each configuration in its own process (peak RSS is per process).
#
#   bench/translate.sh [MODEL [INPUT]]
#
# MODEL defaults to a random-weight model written by build/bench/translate
# --make-model (d_model 256, 3+3 layers, 1000-piece vocabulary); INPUT to
# tests/golden/spm/test.txt repeated 4 times. Run from the repository root
# after `make bench`. Timings depend on whatever else runs on the machine:
# report them with its load (printed below).
set -e
BIN=build/bench/translate
[ -x $BIN ] || make --no-print-directory $BIN >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MODEL=${1:-}
if [ -z "$MODEL" ]; then
    MODEL=$TMP/random.qkv
    $BIN --make-model "$MODEL"
fi
INPUT=${2:-}
if [ -z "$INPUT" ]; then
    INPUT=$TMP/input.txt
    for i in 1 2 3 4; do grep -av '^[[:space:]]*$' tests/golden/spm/test.txt; done > "$INPUT"
fi
echo "model: $MODEL   input: $INPUT ($(wc -l < "$INPUT") lines)   $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "beam batch threads sentences tgt_tokens  seconds   sent/s     tok/s peak_RSS_MB"
for beam in 1 4; do
    for batch in 1 32; do
        for threads in 1 2; do
            OMP_NUM_THREADS=$threads $BIN -m "$MODEL" --input "$INPUT" --beam $beam --batch $batch --threads $threads
        done
    done
done
