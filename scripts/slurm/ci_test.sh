#!/usr/bin/env bash
# The sweep on a real scheduler (CI): installs Slurm and munge from Debian's
# packages if needed, starts a one-node cluster (scripts/slurm/local_cluster.sh),
# submits a 4-task job array of a quick online_vs_refit sweep with
# `sbatch --wait`, merges the shards, and compares the files byte for byte
# (and the printed tables, but for the time column) with the unsharded run.
# Stops the daemons it started, by their process ids.
#
# Usage: scripts/slurm/ci_test.sh BINARY (online_vs_refit built with --features serde)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
tmp=$(mktemp -d)
state="$tmp/slurm"
trap '"$here/local_cluster.sh" stop "$state"; rm -rf "$tmp"' EXIT
"$here/local_cluster.sh" start "$state"
export SLURM_CONF="$state/slurm.conf"

args=(--seeds 6 --steps 150 --schedules --quiet)
"$bin" "${args[@]}" --csv "$tmp/whole" --svg "$tmp/whole" >"$tmp/whole.txt"

cd "$tmp"
if ! REFIT_BIN="$bin" sbatch --wait --array=0-3 --cpus-per-task=1 --quiet \
  "$here/online_vs_refit.sbatch" "$tmp/results" "${args[@]}"; then
  echo "the job array failed:" >&2
  cat online_vs_refit-*.out >&2 || true
  exit 1
fi
for i in 0 1 2 3; do
  grep -q "shard $i/4" online_vs_refit-*_"$i".out || { echo "task $i did not play shard $i/4" >&2; cat online_vs_refit-*_"$i".out >&2; exit 1; }
done
"$bin" "${args[@]}" --merge "$tmp/results" --csv "$tmp/merged" --svg "$tmp/merged" >"$tmp/merged.txt"
diff -r "$tmp/whole" "$tmp/merged" || { echo "the merged files differ from the unsharded run's" >&2; exit 1; }
mask() { sed -E 's/[0-9.]+ (ns|µs|ms)/T/g; s/ +/ /g' "$1" | grep -v '^wrote'; }
diff <(mask "$tmp/whole.txt") <(mask "$tmp/merged.txt") || { echo "the merged tables differ" >&2; exit 1; }
echo "slurm: 4-task array merged to the unsharded run's bytes"
