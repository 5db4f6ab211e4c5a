#!/usr/bin/env bash
# Kill tests of a resumable run (CI): a run of online_vs_refit with --out is
# stopped — by `kill -9` part way, and by an abort at a chosen point
# (REFIT_SWEEP_ABORT: between seeds, inside a seed after an autosave, in the
# middle of a file write) — and started again with the same flags until it
# finishes; its CSV files must equal an uninterrupted run's byte for byte. A
# torn result file and one copied from another run must make the merge fail
# with an error naming the file.
#
# Usage: scripts/kill_test.sh BINARY (online_vs_refit built with --features serde)
set -euo pipefail
bin=${1:?the online_vs_refit binary, built with --features serde}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(--seeds 3 --steps 300 --quiet)

"$bin" "${args[@]}" --csv "$tmp/whole" >/dev/null

# Runs with --out, restarted after every stop until one finishes.
resume() {
  local dir=$1; shift
  local tries=0
  until "$bin" "${args[@]}" --out "$dir" --checkpoint-every 40 "$@" >/dev/null 2>"$tmp/err"; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || { echo "no progress after 50 restarts" >&2; cat "$tmp/err" >&2; exit 1; }
  done
}

for point in finished:7 autosaved:5 writing:11 started:20; do
  dir="$tmp/run-${point%%:*}"
  # The first start aborts at the chosen event; the restart goes on.
  if REFIT_SWEEP_ABORT=$point "$bin" "${args[@]}" --out "$dir" --checkpoint-every 40 >/dev/null 2>"$tmp/err"; then
    echo "REFIT_SWEEP_ABORT=$point did not stop the run" >&2
    exit 1
  fi
  grep -q "aborting at" "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  resume "$dir" --csv "$tmp/out-${point%%:*}"
  diff -r "$tmp/whole" "$tmp/out-${point%%:*}" >/dev/null \
    || { echo "resumed after $point: the files differ" >&2; exit 1; }
  echo "stopped at $point, resumed: same bytes"
done

# kill -9 at a moment of the clock, twice, then resume.
dir="$tmp/run-kill"
for delay in 0.7 1.3; do
  "$bin" "${args[@]}" --out "$dir" --checkpoint-every 40 >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
resume "$dir" --csv "$tmp/out-kill"
diff -r "$tmp/whole" "$tmp/out-kill" >/dev/null || { echo "killed and resumed: the files differ" >&2; exit 1; }
echo "killed with kill -9 twice, resumed: same bytes"

# A torn file, and a file of another run, are errors naming the file.
victim="$dir/bernoulli.refit/seed-1.json"
cp "$victim" "$tmp/keep"
head -c 100 "$tmp/keep" > "$victim"
if "$bin" "${args[@]}" --merge "$dir" >/dev/null 2>"$tmp/err"; then
  echo "a torn file was merged" >&2
  exit 1
fi
grep -q "$victim" "$tmp/err" || { echo "the error does not name the torn file:" >&2; cat "$tmp/err" >&2; exit 1; }
other="$tmp/other"
"$bin" --seeds 3 --steps 300 --schedules --quiet --out "$other" >/dev/null 2>&1 || true
cp "$other/bernoulli.refit/seed-1.json" "$victim"
if "$bin" "${args[@]}" --merge "$dir" >/dev/null 2>"$tmp/err"; then
  echo "another run's file was merged" >&2
  exit 1
fi
grep -q "$victim" "$tmp/err" || { echo "the error does not name the foreign file:" >&2; cat "$tmp/err" >&2; exit 1; }
echo "torn and foreign files refused, naming the file"
echo "kill tests passed"
