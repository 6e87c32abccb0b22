#!/usr/bin/env bash
# Gemma 3 270M speed (262,144-token vocabulary: the output head dominates each pass): `smelt
# perplexity` against llama.cpp's `llama-perplexity` on the same Q4_K_M file, text, context and
# threads, run alternately (A B A B …) so both see the same machine. Reports tokens per CPU-second
# (scored + context tokens ÷ user+sys CPU time of the whole process, load and tokenization
# included), wall tokens/s, peak RSS and the PPL each printed.
#
#   scripts/bench_gemma.sh [SMELT] [MODEL.gguf]
#   LLAMA_BIN=/path/to/llama-perplexity   (else on PATH; without it only smelt is measured)
#   BENCH_CHUNKS (4) BENCH_CTX (512) BENCH_THREADS (2) BENCH_RUNS (2) BENCH_TEXT (corpus/wiki.test.raw)
set -euo pipefail
SMELT=${1:-.build/release/smelt}
MODEL=${2:-.cache/gemma3/gemma-3-270m-q4_k_m.gguf}
TEXT=${BENCH_TEXT:-corpus/wiki.test.raw}
CHUNKS=${BENCH_CHUNKS:-4}
CTX=${BENCH_CTX:-512}
THREADS=${BENCH_THREADS:-2}
RUNS=${BENCH_RUNS:-2}
LLAMA_BIN=${LLAMA_BIN:-$(command -v llama-perplexity || true)}
[[ -f $MODEL ]] || { echo "bench_gemma: $MODEL is missing (make models)"; exit 1; }
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# run LABEL CMD…: wall, user, sys, peak RSS (KiB) and PPL of one run, appended to LOG.
run() {
    local label=$1; shift
    local t; t=$(mktemp)
    /usr/bin/time -f "%e %U %S %M" -o "$t" "$@" >"$t.out" 2>"$t.err" || { echo "$label failed:"; tail -5 "$t.err"; rm -f "$t" "$t.out" "$t.err"; return 1; }
    local ppl
    ppl=$(grep -ho 'PPL = [0-9.]*' "$t.out" "$t.err" | tail -1 | awk '{print $3}' || true)
    echo "$label $(cat "$t") ${ppl:-nan}" >>"$LOG"
    rm -f "$t" "$t.out" "$t.err"
}

echo "== Gemma 3 270M Q4_K_M perplexity: $CHUNKS chunks of $CTX tokens, $THREADS threads, $RUNS runs each, alternating =="
for ((r = 0; r < RUNS; r++)); do
    run smelt "$SMELT" perplexity "$MODEL" --text "$TEXT" --ctx "$CTX" --chunks "$CHUNKS" --threads "$THREADS"
    if [[ -n $LLAMA_BIN ]]; then
        run llama "$LLAMA_BIN" -m "$MODEL" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" -t "$THREADS"
    fi
done

python3 - "$LOG" "$CHUNKS" "$CTX" <<'PY'
import statistics, sys
log, chunks, ctx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = {}
for line in open(log):
    label, wall, user, sys_, rss, ppl = line.split()
    runs.setdefault(label, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024, ppl))
tokens = chunks * ctx
med = statistics.median
print("\n| Gemma 3 270M Q4_K_M | tokens per CPU-second | tokens/s (wall) | CPU s | peak RSS MB | PPL |")
print("|---|---:|---:|---:|---:|---:|")
for label, name in (("smelt", "smelt perplexity"), ("llama", "llama-perplexity")):
    r = runs.get(label)
    if not r:
        continue
    cpu = med([x[1] for x in r]); wall = med([x[0] for x in r])
    print(f"| {name} | {tokens / cpu:.0f} | {tokens / wall:.0f} | {cpu:.1f} | {max(x[2] for x in r):.0f} | {r[0][3]} |")
if "smelt" in runs and "llama" in runs:
    s = med([x[1] for x in runs["smelt"]]); l = med([x[1] for x in runs["llama"]])
    print(f"(medians of {len(runs['smelt'])} runs; whole process, load and tokenization included; "
          f"smelt ÷ llama.cpp tokens per CPU-second: {l / s:.2f}×)")
PY
