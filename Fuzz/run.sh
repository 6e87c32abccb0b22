#!/usr/bin/env bash
# Builds the libFuzzer targets (release, -sanitize=fuzzer,address), makes their seed corpora from
# golden/, and runs each target for a budget: FUZZ_RUNS executions if set, else FUZZ_SECONDS
# seconds (default 60). FUZZ_TARGETS picks targets (default: all). One job at a time.
# New corpus entries go to Fuzz/.build/corpus/TARGET (kept between runs), crashing inputs to
# Fuzz/.build/artifacts/. Exits non-zero when a target crashes (or a property check fails).
set -euo pipefail
cd "$(dirname "$0")"
ALL="gguf safetensors ingot hf-config tokenizer-json tokenizer"
TARGETS=${FUZZ_TARGETS:-$ALL}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
SWIFT=${SWIFT:-swift}

for t in $TARGETS; do
    "$SWIFT" build -c release -j 2 -Xswiftc -sanitize=fuzzer,address --product "fuzz-$t" 2>&1 |
        grep -v "Cannot export local symbol" | grep -E "error|warning: |Compiling|Build" | grep -v "^\[" || true
    test -x ".build/release/fuzz-$t" || { echo "fuzz: fuzz-$t did not build"; exit 1; }
done
rm -rf .build/seeds
python3 make_seeds.py .build/seeds
mkdir -p .build/artifacts

if [ -n "${FUZZ_RUNS:-}" ]; then budget="-runs=$FUZZ_RUNS"; else budget="-max_total_time=$SECONDS_PER_TARGET"; fi
status=0
for t in $TARGETS; do
    mkdir -p ".build/corpus/$t"
    log=".build/fuzz-$t.log"
    echo "fuzz-$t: $budget"
    # Leak detection stays on. -timeout: one input taking longer than 20 s is a failure.
    # SWIFT_BACKTRACE: the Swift runtime's crash handler would race libFuzzer's. lsan.supp says
    # which one-time allocations LeakSanitizer mistakes for leaks.
    if ! SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/lsan.supp:print_suppressions=0" ".build/release/fuzz-$t" "$budget" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix=".build/artifacts/$t-" ".build/corpus/$t" ".build/seeds/$t" >"$log" 2>&1; then
        echo "fuzz-$t: FAILED (log $PWD/$log):"
        grep -E "ERROR|SUMMARY|fuzz property failed|Test unit written" "$log" | head -20
        status=1
    fi
    runs=$(awk '/stat::number_of_executed_units:/ {n = $2} END {print n}' "$log")
    speed=$(awk '/stat::average_exec_per_sec:/ {n = $2} END {print n}' "$log")
    corpus=$(grep -o "corp: [0-9]*/[0-9a-zA-Z]*" "$log" | tail -1 | cut -d' ' -f2)
    echo "fuzz-$t: $runs executions, $speed/s, corpus $corpus (inputs/bytes)"
done
exit $status
