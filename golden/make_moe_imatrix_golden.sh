#!/bin/sh
# Makes golden/imatrix-moe/: llama.cpp's llama-imatrix (per-expert layout for *_exps tensors) on
# the tiny Qwen3-MoE of golden/tiny/qwen3moe, converted by llama.cpp's own converter to F32 GGUF,
# over golden/imatrix-moe/text.txt (the first 4000 bytes of corpus/wiki.test.raw): 6 chunks of
# 64 tokens, output head included. `smelt calibrate --kv f16` on the same model and text must
# give the same counts per expert and the same sums (ImportanceMatrixTests).
#
#     sh golden/make_moe_imatrix_golden.sh /work/llama/src /work/venv/bin/python
set -e
LLAMA=${1:-/work/llama/src}
PY=${2:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/imatrix-moe"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PY" - "$LLAMA" "$HERE/tiny/qwen3moe" "$TMP/q3m.gguf" <<'PYEOF'
import sys
llama, folder, out = sys.argv[1:4]
sys.path[:0] = [llama, llama + '/gguf-py']
import convert_hf_to_gguf as conv
from conversion import base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'qwen2'
sys.argv = ['convert_hf_to_gguf.py', folder, '--outtype', 'f32', '--outfile', out]
conv.main()
PYEOF
"$LLAMA/build/bin/llama-imatrix" -m "$TMP/q3m.gguf" -f "$OUT/text.txt" -c 64 --chunks 6 -t 2 -b 64 \
    --process-output -o "$OUT/qwen3moe.imatrix.gguf" >/dev/null 2>&1
COMMIT=$(git -C "$LLAMA" rev-parse --short HEAD 2>/dev/null || echo unknown)
cat > "$OUT/SOURCE.json" <<JSON
{
 "script": "golden/make_moe_imatrix_golden.sh",
 "tool": "llama.cpp llama-imatrix",
 "version": "$COMMIT",
 "model": "golden/tiny/qwen3moe via convert_hf_to_gguf.py --outtype f32",
 "flags": "-c 64 --chunks 6 -b 64 --process-output"
}
JSON
