#!/usr/bin/env bash
# The budget table of the README: SmolLM2-135M-Instruct (F32) quantized by `smelt quantize` with a
# budget (`--target-size` = the bytes of llama-quantize's Q3_K_M / Q4_K_M / Q6_K file made with the
# same importance matrix, and a few --target-bpw points for the curve) against those llama.cpp
# files, each judged by `smelt drift --ctx 512 --chunks 40` on WikiText-2 (text calibration never
# saw). Calibration: corpus/groups_merged.txt; one importance matrix for every file.
#
#   scripts/budget_table.sh [SMELT]      (resumable: finished steps are kept)
#
# WORK (default /tmp/smelt-budget-table), LLAMA_CPP_BIN (default /work/llama/src/build/bin),
# BASE (default .cache/bench/smollm2-f32.gguf), THREADS (2), EVAL_CHUNKS (40), BPWS (the curve's
# extra budgets), NICE (10), GPTQ (1; 0 skips the GPTQ-rounded rows), GPTQ_CHUNKS (32 chunks of
# 512 tokens of the calibration text for GPTQ), GPTQ_BPWS (4.75: --target-bpw budgets also
# rounded by GPTQ; empty for none), CURVE_TITLE. Prints a markdown table at the end
# and writes WORK/curve.csv and WORK/curve.svg (scripts/budget_curve.py) from the results so far.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=$(realpath "${1:-$ROOT/.build/release/smelt}")
W=${WORK:-/tmp/smelt-budget-table}
L=${LLAMA_CPP_BIN:-/work/llama/src/build/bin}
BASE=$(realpath "${BASE:-$ROOT/.cache/bench/smollm2-f32.gguf}")
CAL=$(realpath "$ROOT/corpus/groups_merged.txt")
WIKI=$(realpath "$ROOT/corpus/wiki.test.raw")
TH=${THREADS:-2} EVAL_CHUNKS=${EVAL_CHUNKS:-40} NICE=${NICE:-10}
BPWS=${BPWS:-"4.75 5.25 6.5 7.5"}
mkdir -p "$W/results"; cd "$W"
R=results
T="/usr/bin/time -f %e"
N="nice -n $NICE"
step() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[ -f base.gguf ] || ln -s "$BASE" base.gguf
# The importance matrix: smelt's, collected by the sensitivity run on CAL_CHUNKS chunks (it
# matches llama-imatrix's, see the quantization table), and given to llama-quantize too;
# IMATRIX=llama uses llama-imatrix (64 chunks) for both instead.
if [ "${IMATRIX:-smelt}" = llama ]; then
  IM=llama.imatrix.gguf
  [ -f $IM ] || { step "llama-imatrix"; $T -o $R/time-llama-imatrix.txt $N "$L/llama-imatrix" -m base.gguf -f "$CAL" -c 512 --chunks 64 -t $TH -o $IM > $R/llama-imatrix.log 2>&1; }
  [ -f sens.json ] || { step "smelt sensitivity"; $T -o $R/time-sensitivity.txt $N "$S" sensitivity base.gguf --text "$CAL" --imatrix $IM --threads $TH --output sens.json > $R/sensitivity.txt 2>&1; }
else
  IM=smelt.imatrix.gguf
  [ -f sens.json ] || { step "smelt sensitivity"; $T -o $R/time-sensitivity.txt $N "$S" sensitivity base.gguf --text "$CAL" --chunks ${CAL_CHUNKS:-32} --write-imatrix $IM --threads $TH --output sens.json --force > $R/sensitivity.txt 2>&1; }
fi
for t in Q4_K_M Q3_K_M Q6_K; do
  [ -f lq-$t.gguf ] || { step "llama-quantize $t"; $N "$L/llama-quantize" --imatrix $IM base.gguf lq-$t.gguf $t $TH > $R/lq-$t.log 2>&1; }
done
# Budgeted files: every candidate (budget-*), and without Q4_1/Q5_1 (ng-*: the F32 base is the
# PyPI Q4_1 file dequantized, so those two round it back exactly); smelt's rendition of
# llama.cpp's mix with the same rounding (mix-*) separates allocation from rounding.
TYPES=${TYPES:-q4_0,q5_0,q8_0,q2_k,q3_k,q4_k,q5_k,q6_k,iq4_nl,iq4_xs,f16}
ROWS=""
for t in Q4_K_M Q3_K_M Q6_K; do
  size=$(stat -L -c %s lq-$t.gguf)
  [ -f budget-$t.gguf ] || { step "smelt quantize at $t's size ($size bytes)"; $N "$S" quantize base.gguf budget-$t.gguf --sensitivity sens.json --target-size $size --imatrix $IM --threads $TH --write-recipe budget-$t.recipe.json --json > $R/quant-budget-$t.json; }
  [ -f ng-$t.gguf ] || { step "smelt quantize at $t's size, --types $TYPES"; $N "$S" quantize base.gguf ng-$t.gguf --sensitivity sens.json --target-size $size --types $TYPES --imatrix $IM --threads $TH --write-recipe ng-$t.recipe.json --json > $R/quant-ng-$t.json; }
  [ -f mix-$t.gguf ] || { step "smelt quantize --type $t"; $N "$S" quantize base.gguf mix-$t.gguf --type $t --imatrix $IM --threads $TH --json > $R/quant-mix-$t.json; }
  ROWS="$ROWS lq-$t ng-$t mix-$t budget-$t"
done
for b in $BPWS; do
  [ -f ngbpw-$b.gguf ] || { step "smelt quantize at $b bits per weight"; $N "$S" quantize base.gguf ngbpw-$b.gguf --sensitivity sens.json --target-bpw $b --types $TYPES --imatrix $IM --threads $TH --json > $R/quant-ngbpw-$b.json; }
  ROWS="$ROWS ngbpw-$b"
done
for c in $ROWS; do
  [ -f $c.gguf ] || continue
  [ -f $R/drift-$c.json ] || { step "drift $c"; $N "$S" drift --base base.gguf --candidate $c.gguf --text "$WIKI" --ctx 512 --chunks "$EVAL_CHUNKS" --threads $TH --json $R/drift-$c.json > $R/drift-$c.txt 2>&1; }
done
# The same budgets and --types rounded by GPTQ (gq-*): the allocation from the same sensitivity
# file (priced with importance-weighted rounding), every chosen block type rounded by sequential
# GPTQ on GPTQ_CHUNKS chunks of the calibration text. Last, being the slowest steps.
if [ "${GPTQ:-1}" != 0 ]; then
  for t in Q4_K_M Q3_K_M Q6_K; do
    size=$(stat -L -c %s lq-$t.gguf)
    [ -f gq-$t.gguf ] || { step "smelt quantize --method gptq at $t's size ($size bytes)"; $T -o $R/time-gq-$t.txt $N "$S" quantize base.gguf gq-$t.gguf --sensitivity sens.json --target-size $size --types $TYPES --method gptq --calibration-text "$CAL" --chunks ${GPTQ_CHUNKS:-32} --threads $TH --write-recipe gq-$t.recipe.json --json > $R/quant-gq-$t.json; }
    [ -f gq-$t.gguf ] && { [ -f $R/drift-gq-$t.json ] || { step "drift gq-$t"; $N "$S" drift --base base.gguf --candidate gq-$t.gguf --text "$WIKI" --ctx 512 --chunks "$EVAL_CHUNKS" --threads $TH --json $R/drift-gq-$t.json > $R/drift-gq-$t.txt 2>&1; }; }
    ROWS="$ROWS gq-$t"
  done
  for b in ${GPTQ_BPWS-4.75}; do
    [ -f gqbpw-$b.gguf ] || { step "smelt quantize --method gptq at $b bits per weight"; $T -o $R/time-gqbpw-$b.txt $N "$S" quantize base.gguf gqbpw-$b.gguf --sensitivity sens.json --target-bpw $b --types $TYPES --method gptq --calibration-text "$CAL" --chunks ${GPTQ_CHUNKS:-32} --threads $TH --json > $R/quant-gqbpw-$b.json; }
    [ -f gqbpw-$b.gguf ] && { [ -f $R/drift-gqbpw-$b.json ] || { step "drift gqbpw-$b"; $N "$S" drift --base base.gguf --candidate gqbpw-$b.gguf --text "$WIKI" --ctx 512 --chunks "$EVAL_CHUNKS" --threads $TH --json $R/drift-gqbpw-$b.json > $R/drift-gqbpw-$b.txt 2>&1; }; }
    ROWS="$ROWS gqbpw-$b"
  done
fi
step "done"
# The curve (KLD vs bits per weight) and its data, from the results so far.
python3 "$ROOT/scripts/budget_curve.py" "$W" --csv "$W/curve.csv" --svg "$W/curve.svg" --title "${CURVE_TITLE:-$(basename "$BASE")}" || true
python3 - "$ROOT/scripts" "$W" $ROWS <<'EOF2'
import json, os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
from budget_curve import gguf_tensor_sizes
w = sys.argv[2]; rows = sys.argv[3:]
sens = json.load(open(os.path.join(w, 'sens.json')))
pred = {p['name']: p['predicted_kld'] for p in sens['file_types']}
def kld(x): return f'{x:.4f}' if x >= 0.01 or x == 0 else f'{x:.5f}'
print('| file | bytes | bits/weight | predicted KLD | mean KLD | PPL ratio | top-1 agreement |')
print('|---|---:|---:|---:|---:|---:|---:|')
for c in rows:
    kind, t = c.split('-', 1)
    gguf = os.path.join(w, c + '.gguf')
    if not os.path.exists(gguf):
        print(f"| {c} | | | | not made | | |")
        continue
    size = os.path.getsize(gguf)
    tb, params = gguf_tensor_sizes(gguf)
    bpw = 8 * tb / params
    p = pred.get(t)
    qj = os.path.join(w, 'results', f'quant-{c}.json')
    if kind != 'lq' and os.path.exists(qj) and os.path.getsize(qj) > 0:
        q = json.load(open(qj))
        if q.get('allocation'):
            p = q['allocation']['predicted_kld']
    if not os.path.exists(os.path.join(w, 'results', f'drift-{c}.json')):
        print(f"| {c} | {size:,} | {bpw:.3f} | {'' if p is None else kld(p)} | not measured | | |")
        continue
    d = json.load(open(os.path.join(w, 'results', f'drift-{c}.json')))
    k = d['kld']
    print(f"| {c} | {size:,} | {bpw:.3f} | {'' if p is None else kld(p)} | "
          f"{kld(k['mean'])} ± {kld(k['stderr'])} | {d['ppl_ratio']:.4f} | {100 * d['top1_agreement']:.2f} % |")
EOF2
