#!/bin/sh
# The GPTQ-folder quality row of the README: SmolLM2-135M F32 (.cache/bench/smollm2-f32.gguf) as
# GPTQ int4 g128 by smelt (round to nearest and GPTQ) against llama.cpp's Q4_K_M with a
# llama-imatrix matrix, each judged by `smelt drift` on wiki.test.raw.
#   scripts/packed_quality.sh [WORKDIR] [DRIFT_CHUNKS] [GPTQ_CHUNKS] [IMATRIX_CHUNKS]
# Needs a release smelt ($SMELT, default .build/release/smelt) and llama.cpp's tools ($LLAMA_BIN,
# default /work/llama/src/build/bin). Long jobs run with nice -n 10 on 2 threads.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-/tmp/smelt-packed-quality}; DRIFT_CHUNKS=${2:-40}; GPTQ_CHUNKS=${3:-32}; IM_CHUNKS=${4:-64}
S=${SMELT:-$ROOT/.build/release/smelt}; L=${LLAMA_BIN:-/work/llama/src/build/bin}
BASE=$ROOT/.cache/bench/smollm2-f32.gguf; CAL=$ROOT/corpus/groups_merged.txt; TEXT=$ROOT/corpus/wiki.test.raw
mkdir -p "$W"; cd "$W"
N="nice -n 10"
[ -d rtn-gptq-g128 ] || $N "$S" quantize "$BASE" rtn-gptq-g128 --format gptq --threads 2
[ -d gptq-g128 ] || $N "$S" quantize "$BASE" gptq-g128 --format gptq --method gptq --calibration-text "$CAL" --chunks "$GPTQ_CHUNKS" --threads 2
[ -f llama.imatrix.gguf ] || $N "$L/llama-imatrix" -m "$BASE" -f "$CAL" -c 512 --chunks "$IM_CHUNKS" -t 2 -o llama.imatrix.gguf
[ -f lq-q4_k_m-im.gguf ] || $N "$L/llama-quantize" --imatrix llama.imatrix.gguf "$BASE" lq-q4_k_m-im.gguf Q4_K_M 2
for c in rtn-gptq-g128 gptq-g128 lq-q4_k_m-im.gguf; do
  n=$(basename "$c" .gguf)
  [ -f "drift-$n.json" ] || $N "$S" drift --base "$BASE" --candidate "$c" --text "$TEXT" --ctx 512 --chunks "$DRIFT_CHUNKS" --threads 2 --json "drift-$n.json" > "drift-$n.log"
  du -sb "$c" | awk -v n="$n" '{printf "%s: %d bytes\n", n, $1}'
  grep -E "PPL|KLD|top-1" "drift-$n.log" || true
done
