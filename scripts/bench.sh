#!/usr/bin/env bash
# make bench: throughput and peak memory of Smelt's streaming paths, each next to a peer tool run
# in the same session (these machines are noisy: compare ratios, not absolute numbers).
set -euo pipefail
SMELT=${1:-.build/release/smelt}
WORK=${BENCH_DIR:-/tmp/smelt-bench}
SIZE_MB=${BENCH_SIZE_MB:-2048}
RUNS=${BENCH_RUNS:-3}
mkdir -p "$WORK"

# peak_rss_and_seconds CMD... → "SECONDS RSS_KB" using GNU time.
measure() {
    local log
    log=$(mktemp)
    /usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log" >&2; rm -f "$log"; return 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
    rm -f "$log"
    # wall is [h:]m:ss.ss
    python3 -c "import sys; p=[float(x) for x in sys.argv[1].split(':')]; s=sum(v*60**i for i,v in enumerate(reversed(p))); print(f'{s:.3f} {sys.argv[2]}')" "$wall" "$rss"
}

median() { python3 -c "import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

echo "== safetensors re-shard: ${SIZE_MB} MB f32 model, $RUNS runs each, median =="
SRC="$WORK/model-${SIZE_MB}.safetensors"
[[ -f $SRC ]] || python3 scripts/gen_safetensors.py "$SRC" "$SIZE_MB"
BYTES=$(stat -c %s "$SRC")
cat "$SRC" >/dev/null  # warm the page cache for both tools alike

smelt_t=(); smelt_rss=(); cp_t=(); cp_rss=()
for i in $(seq "$RUNS"); do
    rm -rf "$WORK/out" "$WORK/copy.safetensors"
    read -r t r < <(measure "$SMELT" convert "$SRC" "$WORK/out" --max-shard-size 500MB --force)
    smelt_t+=("$t"); smelt_rss+=("$r")
    rm -rf "$WORK/out"
    read -r t r < <(measure cp "$SRC" "$WORK/copy.safetensors")
    cp_t+=("$t"); cp_rss+=("$r")
    rm -f "$WORK/copy.safetensors"
done
st=$(median "${smelt_t[@]}"); ct=$(median "${cp_t[@]}")
sr=$(median "${smelt_rss[@]}"); cr=$(median "${cp_rss[@]}")
python3 - "$BYTES" "$st" "$ct" "$sr" "$cr" <<'PY'
import sys
b, st, ct, sr, cr = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"smelt convert (re-shard 500MB): {b/st/1e6:8.0f} MB/s  peak RSS {sr/1024:7.1f} MB")
print(f"cp (same bytes):                {b/ct/1e6:8.0f} MB/s  peak RSS {cr/1024:7.1f} MB")
print(f"throughput ratio smelt/cp: {ct/st:.2f}   (target >= 0.5; peak RSS target < 300 MB)")
PY

echo
echo "== safetensors cast f32 -> bf16 (same model) =="
rm -rf "$WORK/out"
read -r t r < <(measure "$SMELT" convert "$SRC" "$WORK/out.safetensors" --dtype bf16 --force)
python3 -c "import sys; b=int(sys.argv[1]); t=float(sys.argv[2]); r=float(sys.argv[3]); print(f'smelt convert --dtype bf16: {b/t/1e6:8.0f} MB/s read  peak RSS {r/1024:7.1f} MB')" "$BYTES" "$t" "$r"
rm -f "$WORK/out.safetensors"

echo
echo "== Hugging Face f32 folder -> GGUF f16 (${SIZE_MB} MB Llama-named model), median of $RUNS =="
HF="$WORK/hf-${SIZE_MB}"
[[ -f $HF/config.json ]] || python3 scripts/gen_safetensors.py --hf-folder "$HF" "$SIZE_MB"
HFBYTES=$(stat -c %s "$HF/model.safetensors")
cat "$HF/model.safetensors" >/dev/null
g_t=(); g_rss=(); c_t=()
for i in $(seq "$RUNS"); do
    read -r t r < <(measure "$SMELT" convert "$HF" "$WORK/out.gguf" --dtype f16 --force)
    g_t+=("$t"); g_rss+=("$r")
    rm -f "$WORK/out.gguf"
    read -r t r < <(measure cp "$HF/model.safetensors" "$WORK/copy.safetensors")
    c_t+=("$t")
    rm -f "$WORK/copy.safetensors"
done
python3 - "$HFBYTES" "$(median "${g_t[@]}")" "$(median "${c_t[@]}")" "$(median "${g_rss[@]}")" <<'PY'
import sys
b, gt, ct, gr = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"smelt convert HF f32 -> GGUF f16: {b/gt/1e6:8.0f} MB/s read  peak RSS {gr/1024:7.1f} MB")
print(f"cp (same input bytes):            {b/ct/1e6:8.0f} MB/s")
print(f"throughput ratio smelt/cp: {ct/gt:.2f}   (target >= 0.5; peak RSS target < 300 MB)")
PY
