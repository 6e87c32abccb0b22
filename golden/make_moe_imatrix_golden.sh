#!/bin/sh
# Makes golden/imatrix-moe/: llama.cpp's llama-imatrix (per-expert layout for *_exps tensors) on
# the tiny Qwen3-MoE of golden/tiny/qwen3moe, converted by llama.cpp's own converter to F32 GGUF,
# over golden/imatrix-moe/text.txt (the first 4000 bytes of corpus/wiki.test.raw): 6 chunks of
# 64 tokens, output head included. `smelt calibrate --kv f16` on the same model and text must
# give the same counts per expert and the same sums (ExpertCalibrationTests).
# Also the tiny gpt-oss (golden/gptoss/bf16, F32 GGUF by the converter): llama-imatrix's matrix
# for it (gptoss.imatrix.gguf) and what `llama-quantize --imatrix` makes of it with Q4_0
# (gptoss-q4_0-imatrix.json: each tensor's type, shape and sha256), which `smelt quantize
# --exact-ggml --imatrix` must reproduce, each expert weighted by its own importances.
#
#     sh golden/make_moe_imatrix_golden.sh /work/llama/src /work/venv/bin/python
set -e
LLAMA=${1:-/work/llama/src}
PY=${2:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/imatrix-moe"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
convert() {  # folder, pre-tokenizer name, output
"$PY" - "$LLAMA" "$1" "$2" "$3" <<'PYEOF'
import sys
llama, folder, pre, out = sys.argv[1:5]
sys.path[:0] = [llama, llama + '/gguf-py']
import convert_hf_to_gguf as conv
from conversion import base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
sys.argv = ['convert_hf_to_gguf.py', folder, '--outtype', 'f32', '--outfile', out]
conv.main()
PYEOF
}
convert "$HERE/tiny/qwen3moe" qwen2 "$TMP/q3m.gguf" >/dev/null 2>&1
convert "$HERE/gptoss/bf16" gpt-4o "$TMP/gptoss.gguf" >/dev/null 2>&1
"$LLAMA/build/bin/llama-imatrix" -m "$TMP/q3m.gguf" -f "$OUT/text.txt" -c 64 --chunks 6 -t 2 -b 64 \
    --process-output -o "$OUT/qwen3moe.imatrix.gguf" >/dev/null 2>&1
"$LLAMA/build/bin/llama-imatrix" -m "$TMP/gptoss.gguf" -f "$OUT/text.txt" -c 64 --chunks 6 -t 2 -b 64 \
    -o "$OUT/gptoss.imatrix.gguf" >/dev/null 2>&1
"$LLAMA/build/bin/llama-quantize" --imatrix "$OUT/gptoss.imatrix.gguf" "$TMP/gptoss.gguf" "$TMP/gptoss-q4_0.gguf" Q4_0 >/dev/null 2>&1
"$PY" - "$HERE" "$TMP/gptoss-q4_0.gguf" "$OUT/gptoss-q4_0-imatrix.json" <<'PYEOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import check_llamacpp_reference
d = check_llamacpp_reference.describe(sys.argv[2])
with open(sys.argv[3], 'w') as f:
    json.dump({'tensors': d['tensors']}, f, indent=1, sort_keys=True)
    f.write('\n')
PYEOF
COMMIT=$(git -C "$LLAMA" rev-parse --short HEAD 2>/dev/null || echo unknown)
cat > "$OUT/SOURCE.json" <<JSON
{
 "script": "golden/make_moe_imatrix_golden.sh",
 "tool": "llama.cpp llama-imatrix",
 "version": "$COMMIT",
 "model": "golden/tiny/qwen3moe and golden/gptoss/bf16 via convert_hf_to_gguf.py --outtype f32",
 "flags": "llama-imatrix -c 64 --chunks 6 -b 64 (--process-output for qwen3moe); llama-quantize --imatrix Q4_0"
}
JSON
