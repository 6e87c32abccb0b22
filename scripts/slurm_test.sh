#!/usr/bin/env bash
# `make slurm-test`: a sharded drift on a real Slurm scheduler equals one `smelt drift` run.
# Installs slurm-wlm and munge from Debian when missing, starts a one-node cluster on this machine
# (deploy/slurm/cluster.sh, loopback only), makes SmolLM2's F32 base and a Q4_0 of it, runs one
# drift for reference, submits the same drift as 4 shards (a job array) plus a merge job
# (--dependency=afterok), waits, and compares the merged report with the reference: every field
# but the elapsed seconds must be equal. Stops the cluster at the end.
#   scripts/slurm_test.sh SMELT SMOLLM_GGUF TEXT
set -euo pipefail
SMELT=$(realpath "$1"); SOURCE=$(realpath "$2"); TEXT_SRC=$(realpath "$3")
HERE=$(cd "$(dirname "$0")/.." && pwd)
export SLURM_RUN=${SLURM_RUN:-/tmp/smelt-slurm}
WORK=$SLURM_RUN/work
SHARDS=${SLURM_TEST_SHARDS:-4}
export CTX=${SLURM_TEST_CTX:-128} CHUNKS=${SLURM_TEST_CHUNKS:-8} THREADS=1

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm-wlm munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null
fi
echo "slurm: $(slurmctld -V)"

mkdir -p "$WORK"
BASE=$WORK/smollm2-f32.gguf CANDIDATE=$WORK/smollm2-q4_0.gguf TEXT=$WORK/text.txt
[[ -f $BASE ]] || "$SMELT" convert "$SOURCE" "$BASE" --dtype f32 >/dev/null
[[ -f $CANDIDATE ]] || "$SMELT" quantize "$BASE" "$CANDIDATE" --type q4_0 >/dev/null
head -c 40000 "$TEXT_SRC" > "$TEXT"
export SMELT BASE CANDIDATE TEXT

"$HERE/deploy/slurm/cluster.sh" start
trap '"$HERE/deploy/slurm/cluster.sh" stop' EXIT
export SLURM_CONF=$SLURM_RUN/slurm.conf

echo "reference: one smelt drift run (ctx $CTX, $CHUNKS chunks, $THREADS thread)"
t0=$(date +%s.%N)
"$SMELT" drift --base "$BASE" --candidate "$CANDIDATE" --text "$TEXT" --ctx "$CTX" --chunks "$CHUNKS" \
    --threads "$THREADS" --json "$WORK/single.json" --force | sed 's/^/  /'
t1=$(date +%s.%N)

export OUT=$WORK/sharded
read -r shards merge < <("$HERE/deploy/slurm/submit-drift.sh" "$SHARDS")
echo "submitted: shard array job $shards (--array=0-$((SHARDS - 1))), merge job $merge (--dependency=afterok:$shards)"
for _ in $(seq 600); do
    [[ -z $(squeue -h -j "$shards,$merge" 2>/dev/null) ]] && break
    sleep 1
done
t2=$(date +%s.%N)
for k in $(seq 0 $((SHARDS - 1))); do
    echo "  shard $k: $(scontrol show job "${shards}_$k" | grep -o 'JobState=[A-Z]*') $(tail -1 "$OUT/shard-$k.log")"
done
state=$(scontrol show job "$merge" | grep -o 'JobState=[A-Z]*')
echo "  merge: $state"
sed 's/^/    /' "$OUT/merge.log"
[[ $state == JobState=COMPLETED ]] || { echo "slurm-test: the merge job did not complete"; exit 1; }
python3 -c "import sys; t0, t1, t2 = map(float, sys.argv[1:4]); print(f'one run: {t1 - t0:.1f} s wall; $SHARDS shards on the one-node cluster + merge: {t2 - t1:.1f} s wall')" "$t0" "$t1" "$t2"

python3 - "$WORK/single.json" "$OUT/drift.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
timing = {"seconds"}
diff = [k for k in a if k not in timing and a[k] != b.get(k)] + [k for k in b if k not in a]
if diff:
    for k in diff:
        print(f"  differs: {k}: {a.get(k)!r} vs {b.get(k)!r}"[:300])
    sys.exit("slurm-test: FAILED: the merged report differs from one run's")
print(f"slurm-test: PASSED: the merged report equals one run's in all {len(a) - 1} fields but seconds "
      f"(ppl ratio {a['ppl_ratio']!r}, mean KLD {a['kld']['mean']!r}, {a['positions']} positions)")
PY
