#!/bin/bash
# The MLX rows of the README's quality table: SmolLM2-135M 4-bit g64 by mlx_lm.convert -q (its
# round-to-nearest), by smelt's round-to-nearest, by smelt with an importance matrix, and by smelt
# GPTQ onto the same grid (act order; with NATURAL=1 also in natural column order); with G128=1
# also round-to-nearest and GPTQ at --group-size 128. Each judged by
# `smelt drift --ctx 512 --chunks 40` on corpus/wiki.test.raw against the F32 base.
#
#   MLX_PYTHON=/path/to/venv/bin/python scripts/mlx_table.sh WORKDIR
#
# Needs a Python with `mlx[cpu]` and `mlx-lm` (MLX_PYTHON), the F32 base (.cache/bench/smollm2-f32.gguf,
# `make bench` makes it) and, for the importance-matrix row, IMATRIX (default: made here by
# `smelt calibrate` on corpus/groups_merged.txt, 64 chunks of 512). GPTQ calibrates on
# corpus/groups_merged.txt, GPTQ_CHUNKS chunks of 512 (default 32). Rows already made are kept
# (so folders and drift JSONs from an earlier run can be linked or copied into WORKDIR).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:?give a work folder}
mkdir -p "$W"
SMELT=${SMELT:-$ROOT/.build/release/smelt}
[ -x "$SMELT" ] || SMELT=$ROOT/.build/debug/smelt
PY=${MLX_PYTHON:?set MLX_PYTHON to a Python with mlx[cpu] and mlx-lm}
BASE=$ROOT/.cache/bench/smollm2-f32.gguf
TEXT=$ROOT/corpus/wiki.test.raw
CAL=$ROOT/corpus/groups_merged.txt
T="nice -n 10"
cd "$W"
[ -d f32-hf ] || $SMELT convert "$BASE" f32-hf
[ -d mlxlm-g64 ] || $T "$(dirname "$PY")/mlx_lm.convert" --hf-path f32-hf --mlx-path mlxlm-g64 -q --dtype float16
[ -d rtn-g64 ] || $T $SMELT quantize f32-hf rtn-g64 --format mlx --threads 2
IMATRIX=${IMATRIX:-imatrix.gguf}
[ -f "$IMATRIX" ] || $T $SMELT calibrate "$BASE" --text "$CAL" --chunks 64 --threads 2 --output "$IMATRIX"
[ -d imatrix-g64 ] || $T $SMELT quantize f32-hf imatrix-g64 --format mlx --imatrix "$IMATRIX" --threads 2
GPTQ_CHUNKS=${GPTQ_CHUNKS:-32}
[ -d gptq-g64 ] || $T $SMELT quantize "$BASE" gptq-g64 --format mlx --method gptq --calibration-text "$CAL" --chunks "$GPTQ_CHUNKS" --threads 2
ROWS="mlxlm-g64 rtn-g64 imatrix-g64 gptq-g64"
if [ "${NATURAL:-0}" = 1 ]; then
  [ -d gptq-nat-g64 ] || $T $SMELT quantize "$BASE" gptq-nat-g64 --format mlx --method gptq --gptq-order natural --calibration-text "$CAL" --chunks "$GPTQ_CHUNKS" --threads 2
  ROWS="$ROWS gptq-nat-g64"
fi
if [ "${G128:-0}" = 1 ]; then
  [ -d rtn-g128 ] || $T $SMELT quantize f32-hf rtn-g128 --format mlx --group-size 128 --threads 2
  [ -d gptq-g128 ] || $T $SMELT quantize "$BASE" gptq-g128 --format mlx --method gptq --group-size 128 --calibration-text "$CAL" --chunks "$GPTQ_CHUNKS" --threads 2
  ROWS="$ROWS rtn-g128 gptq-g128"
fi
for m in $ROWS; do
  [ -f "drift-$m.json" ] || $T $SMELT drift --base "$BASE" --candidate "$m" --text "$TEXT" --ctx 512 --chunks 40 --threads 2 --json "drift-$m.json" > "drift-$m.txt"
done
printf '| MLX folder | size MiB | bits/weight | PPL | mean KLD | top-1 agreement |\n|---|---:|---:|---:|---:|---:|\n'
for m in $ROWS; do
  python3 - "$m" <<'EOF'
import json, os, sys
m = sys.argv[1]
d = json.load(open(f"drift-{m}.json"))
size = sum(os.path.getsize(os.path.join(m, f)) for f in os.listdir(m) if f.endswith(".safetensors"))
cfg = json.load(open(os.path.join(m, "config.json")))
q = cfg["quantization"]
params = 134515008  # SmolLM2-135M
print(f"| {m} ({q['bits']}-bit g{q['group_size']}) | {size / 2**20:.1f} | {size * 8 / params:.3f} | {d['candidate']['ppl']:.3f} | {d['kld']['mean']:.4f} ± {d['kld']['stderr']:.4f} | {100 * d['top1_agreement']:.2f} % |")
EOF
done
