#!/usr/bin/env bash
# Submits a sharded drift: an array of N shard jobs and a merge job that runs when all of them
# succeeded. Prints "<array job id> <merge job id>".
#   SMELT=... BASE=... CANDIDATE=... TEXT=... OUT=/shared/run [CTX=512 CHUNKS= THREADS= GATES=] \
#       deploy/slurm/submit-drift.sh N [extra sbatch options for the shards, e.g. --partition=cpu]
# A shard that failed is rerun alone with `sbatch --array=K ... drift-shard.sbatch`; then submit
# drift-merge.sbatch again (with --dependency=afterok:<rerun id>).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${1:?usage: submit-drift.sh N [sbatch options]}
shift
: "${SMELT:?}" "${BASE:?}" "${CANDIDATE:?}" "${TEXT:?}" "${OUT:?}"
mkdir -p "$OUT"
rm -f "$OUT"/drift-*.partial "$OUT/drift.json"
export SMELT BASE CANDIDATE TEXT OUT CTX CHUNKS THREADS GATES
shards=$(sbatch --parsable --export=ALL --array=0-$((N - 1)) --output="$OUT/shard-%a.log" "$@" "$HERE/drift-shard.sbatch")
shards=${shards%%;*}
merge=$(sbatch --parsable --export=ALL --dependency=afterok:"$shards" --kill-on-invalid-dep=yes \
    --output="$OUT/merge.log" "$HERE/drift-merge.sbatch")
echo "$shards ${merge%%;*}"
