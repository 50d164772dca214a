#!/usr/bin/env bash
# Benchmark of av-scan's bookkeeping: 1,000,000 listed files, a no-op
# scanner. Not a test; run by hand:  bench/av-scan.sh
#
# What is measured: one `mirrorer av-scan` run that resumes a prepared
# state/av_state/files_to_scan.txt of N paths (the files need not exist:
# the scanner is a fake kesl-control that exits 0 at once, so nothing is
# read). The time covers loading the list, reading the (empty) journal,
# cutting N/BATCH batches, spawning and reaping one scanner process per
# batch with WORKERS in parallel, every checkpoint (one append + fdatasync
# of the journal per poll, covering the batches that ended since the last
# one), the progress events, the final threat query, the report check, the
# `done` marker and the journal compaction. Building the list (zfs diff or
# a walk of the mirror) is not part of it.
#
# Environment: N [1000000], BATCH [100], WORKERS [4], MIRRORER_BIN (else
# `cargo build --release` in this checkout, honouring CARGO_TARGET_DIR),
# BENCH_DIR (a directory on the disk to measure; default a temp dir under
# the target directory, so the fsyncs hit the same disk as the state would).
set -euo pipefail

N=${N:-1000000}
BATCH=${BATCH:-100}
WORKERS=${WORKERS:-4}
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}

if [ -z "${MIRRORER_BIN:-}" ]; then
  (cd "$here" && cargo build --release --quiet)
  MIRRORER_BIN=$target/release/mirrorer
fi

mkdir -p "${BENCH_DIR:-$target}"
root=$(mktemp -d "${BENCH_DIR:-$target}/av-bench.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/work/state/av_state" "$root/mirror"

cat > "$root/bin/kesl-control" <<'SH'
#!/bin/sh
exit 0
SH
chmod +x "$root/bin/kesl-control"

cat > "$root/config.yaml" <<YAML
log:
  log_level: INFO
mirror:
  workdir: $root/work
  zfs_mirror_dataset: bench/mirror
  zfs_mirror_dir: $root/mirror
  kesl_max_workers: $WORKERS
antivirus:
  batch_size: $BATCH
tools:
  kesl_control: $root/bin/kesl-control
YAML

# Paths of a realistic length (~90 bytes), one per line.
awk -v n="$N" -v m="$root/mirror" 'BEGIN {
  for (i = 0; i < n; i++)
    printf "%s/apt/mirror/deb.debian.org/debian/pool/main/p%03d/package-%07d_1.0-1_amd64.deb\n", m, i % 997, i
}' > "$root/work/state/av_state/files_to_scan.txt"
date '+%Y-%m-%d %H:%M:%S' > "$root/work/state/av_state/scan_start_time.txt"
list_mb=$(du -m "$root/work/state/av_state/files_to_scan.txt" | cut -f1)

log=$root/av-scan.log
start=$(date +%s.%N)
"$MIRRORER_BIN" --config "$root/config.yaml" av-scan 2> "$log"
end=$(date +%s.%N)

finished=$(grep 'av_scan_finished' "$log")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$finished"; }
checkpoints=$(field checkpoints)
checkpoint_s=$(field checkpoint_s)
batches=$(field batches_this_run)
total=$(echo "$end - $start" | bc -l)
printf 'files:                  %d (list %d MiB)\n' "$N" "$list_mb"
printf 'batch size, workers:    %d, %d\n' "$BATCH" "$WORKERS"
printf 'batches:                %d\n' "$batches"
printf 'total time:             %.2f s\n' "$total"
printf 'checkpoints:            %d (append + fdatasync each)\n' "$checkpoints"
printf 'time in checkpoints:    %.3f s\n' "$checkpoint_s"
printf 'time per checkpoint:    %.3f ms\n' "$(echo "$checkpoint_s * 1000 / $checkpoints" | bc -l)"
printf 'wall time per batch:    %.3f ms\n' "$(echo "$total * 1000 / $batches" | bc -l)"
printf 'journal after compaction: %s\n' "$(tail -c +1 "$root/work/state/av_state/journal" | tr '\t\n' ' |')"
grep -c 'av_checkpoint_saved' "$log" | xargs printf 'progress events (INFO):  %s\n'
