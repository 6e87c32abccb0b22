#!/usr/bin/env bash
# gpt-oss at scale: HF → GGUF of a gpt-oss-20b-shaped checkpoint with random weights in the MXFP4
# form (about 13.8 GB, made by scripts/gen_gptoss.py; 24 layers, 32 experts, hidden 2880) against
# `cp` of the same bytes. Both read a warm page cache (the source is read once with `cat` before
# each) and both make their output durable before the clock stops (smelt fsyncs before it
# publishes the file; `cp` is followed by `sync FILE`). Reports wall seconds, MB/s of source bytes,
# the ratio smelt/cp and smelt's peak RSS (/usr/bin/time -v). The files are removed at the end.
# Disk: the checkpoint plus one output at a time (about 28 GB).
#
# Usage: scripts/bench_gptoss.sh [SMELT_BINARY]
# Environment: BENCH_DIR (scratch folder; default a new temp folder), GPTOSS_LAYERS (default 24),
# PYTHON (with numpy; default python3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMELT=${1:-${SMELT:-$ROOT/.build/release/smelt}}
[[ -x "$SMELT" ]] || { echo "bench_gptoss: no smelt binary at $SMELT (build with: swift build -c release)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench_gptoss: /usr/bin/time is needed for the peak RSS (apt-get install time)" >&2; exit 1; }
PYTHON=${PYTHON:-python3}
LAYERS=${GPTOSS_LAYERS:-24}
export OPENBLAS_NUM_THREADS=1

if [[ -n "${BENCH_DIR:-}" ]]; then
  WORK=$BENCH_DIR/gptoss-bench.$$
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-gptoss.XXXXXX")
fi
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

# The checkpoint (~13.8 GB at 24 layers) plus one output at a time.
NEED_KB=$(( LAYERS * 960000 + 4800000 ))
FREE_KB=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
if (( FREE_KB < NEED_KB )); then
  echo "bench_gptoss: skipped, $(( FREE_KB / 1000000 )) GB free in $WORK, about $(( NEED_KB / 1000000 )) GB needed (set BENCH_DIR or GPTOSS_LAYERS)" >&2
  exit 0
fi

echo "gpt-oss scale bench: generating a $LAYERS-layer gpt-oss-20b-shaped MXFP4 checkpoint in $WORK" >&2
"$PYTHON" "$ROOT/scripts/gen_gptoss.py" "$WORK/hf" "$LAYERS" >&2
SRC="$WORK/hf/model.safetensors"
BYTES=$(stat -c %s "$SRC")

now() { date +%s.%N; }
warm() { cat "$WORK"/hf/* >/dev/null; }

warm
t0=$(now)
cp "$SRC" "$WORK/copy.safetensors"
sync "$WORK/copy.safetensors"
t1=$(now)
CP=$(echo "$t1 - $t0" | bc -l)
rm -f "$WORK/copy.safetensors"

warm
t0=$(now)
/usr/bin/time -v -o "$WORK/time.txt" "$SMELT" convert "$WORK/hf" "$WORK/out.gguf" >/dev/null
t1=$(now)
SM=$(echo "$t1 - $t0" | bc -l)
RSS_KB=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
OUT=$(stat -c %s "$WORK/out.gguf")
rm -f "$WORK/out.gguf"

printf '\n## gpt-oss-20b-shaped HF (MXFP4 form) → GGUF, %s layers, %.2f GB (%s, %s cores; contended machines vary)\n\n' \
  "$LAYERS" "$(echo "$BYTES / 1000000000" | bc -l)" "$(date -u +%Y-%m-%d)" "$(nproc)"
echo "| | seconds | MB/s | output GB | peak RSS MiB |"
echo "|---|---|---|---|---|"
printf '| cp + sync | %.1f | %.0f | %.2f | |\n' "$CP" "$(echo "$BYTES / $CP / 1000000" | bc -l)" "$(echo "$BYTES / 1000000000" | bc -l)"
printf '| smelt convert | %.1f | %.0f | %.2f | %.0f |\n' "$SM" "$(echo "$BYTES / $SM / 1000000" | bc -l)" \
  "$(echo "$OUT / 1000000000" | bc -l)" "$(echo "$RSS_KB / 1024" | bc -l)"
printf '\nsmelt / cp speed: %.2f× (target ≥ 0.5×); peak RSS %.0f MiB (target < 1024)\n' \
  "$(echo "$CP / $SM" | bc -l)" "$(echo "$RSS_KB / 1024" | bc -l)"
