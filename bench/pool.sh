#!/usr/bin/env bash
# Waiting policies of qkv's thread pool against libgomp's (bench/pool.c), on
# the machine as it is and then beside two busy-loop processes (a loaded
# machine). libgomp reads OMP_WAIT_POLICY once at start-up, so its passive
# policy is a second run of the program.
#   bench/pool.sh [THREADS] [extra build/bench/pool options]
set -eu
cd "$(dirname "$0")/.."
threads=${1:-2}
shift || true
make --no-print-directory build/bench/pool >/dev/null
bin=build/bench/pool
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)
echo "CPU:$cpu, $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
pass() {
  env -u OMP_WAIT_POLICY "$bin" --threads "$threads" "$@"
  OMP_WAIT_POLICY=passive "$bin" --threads "$threads" --modes serial,omp "$@" | grep '| omp |' |
    sed 's/| omp |/| omp (OMP_WAIT_POLICY=passive) |/'
}
echo; echo "## machine as it is"; pass "$@"
echo; echo "## beside 2 busy loops"
pids=()
for i in 1 2; do ( while :; do :; done ) & pids+=($!); done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
pass "$@"
kill "${pids[@]}"; trap - EXIT
echo; echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
