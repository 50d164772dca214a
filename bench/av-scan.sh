#!/usr/bin/env bash
# Benchmark of av-scan at mirror scale (issue 17): a full first scan (no ZFS
# snapshot yet, so the whole mirror is walked and listed) of a generated tree
# with a no-op scanner, against `find ROOT -type f` on the same tree in the
# same run. Not a test; run by hand:  bench/av-scan.sh
#
# Printed per tree size (median of RUNS runs, warm cache; peak RSS is the
# largest of the runs, from GNU time's "maximum resident set size"):
#   find          `find ROOT -type f > FILE` (the list written to the same disk)
#   list only     `mirrorer --dry-run av-scan`: the walk writes the whole list
#                 (to a temp file under TMPDIR, on the same disk) and stops
#   full scan     `mirrorer av-scan` from an empty av_state/: the walk, the
#                 list installed atomically, then every batch through the no-op
#                 scanner (`true`, one process per batch of BATCH files,
#                 WORKERS at a time) with its journal checkpoints, the threat
#                 query, `done` and the journal compaction
#   floor         `xargs -n BATCH -P WORKERS true` over find's list: what
#                 starting the scanner once per batch costs by itself, the
#                 floor of any batched scan on this machine
# and the ratios to find (and, for the full scan, to find + floor). The tree
# grows from the first size to the next
# (the second size adds directories to the first tree), so memory should stay
# flat and time grow linearly.
#
# Environment: SIZES ["1000000 3000000"], RUNS [3], BATCH [100], WORKERS [4],
# MIRRORER_BIN (else `cargo build --release` in this checkout, honouring
# CARGO_TARGET_DIR), COMPARE_BIN (another build measured the same way in the
# same run, e.g. the previous release), BENCH_DIR [/tmp] (the tree, about
# 100 bytes of directory entry and one inode per file, is removed at the end
# unless KEEP=1), BENCH_ROOT (reuse the tree a KEEP=1 run left there),
# COMPARE_FULL [1] (0: only the list-only runs of COMPARE_BIN, whose full scan
# can take minutes).
# Needs GNU time (/usr/bin/time) and python3.
set -euo pipefail

SIZES=${SIZES:-"1000000 3000000"}
RUNS=${RUNS:-3}
BATCH=${BATCH:-100}
WORKERS=${WORKERS:-4}
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
export LC_ALL=C

if [ -z "${MIRRORER_BIN:-}" ]; then
  (cd "$here" && cargo build --release --quiet)
  MIRRORER_BIN=$target/release/mirrorer
fi
bins=("$MIRRORER_BIN")
names=("mirrorer")
if [ -n "${COMPARE_BIN:-}" ]; then
  bins+=("$COMPARE_BIN")
  names+=("compare")
fi

mkdir -p "${BENCH_DIR:-/tmp}"
root=${BENCH_ROOT:-$(mktemp -d "${BENCH_DIR:-/tmp}/av-bench.XXXXXX")}
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$root"' EXIT; fi
mkdir -p "$root/work" "$root/mirror" "$root/tmp"
true_bin=$(command -v true)

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
  kesl_control: $true_bin
  zfs: $true_bin
YAML

# Grows the tree to $1 files: 100 top-level prefixes, each with directories
# of 100 empty files (names of a realistic length).
grow() {
  python3 - "$root/mirror" "$1" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per_top = n // 10000
for t in range(100):
    for d in range(per_top):
        path = os.path.join(root, "p%03d" % t, "pool/main/d%05d" % d)
        if os.path.isdir(path):
            continue
        os.makedirs(path)
        for f in range(100):
            os.close(os.open(os.path.join(path, "package-%03d-%05d-%03d_1.0-1_amd64.deb" % (t, d, f)),
                             os.O_CREAT | os.O_WRONLY, 0o644))
EOF
}

# Runs "$@" under GNU time; appends "<seconds> <peak RSS KiB>" to the file $TIMES.
timed() {
  /usr/bin/time -f '%e %M' -o "$root/time.txt" "$@"
  cat "$root/time.txt" >> "$TIMES"
}

# The median of the first fields and the largest second field of its input lines.
summary() {
  sort -n | awk '{ t[NR] = $1; if ($2 > m) m = $2 } END { printf "%s %d\n", t[int((NR + 1) / 2)], m }'
}

fresh_state() { rm -rf "$root/work/state/av_state" "$root/work/state/av_results" "$root/tmp"/*; }

for size in $SIZES; do
  echo "== tree of $size files in $root/mirror"
  grow "$size"
  files=$(find "$root/mirror" -type f | wc -l)
  find "$root/mirror" -type f > /dev/null # warm the cache
  : > "$root/find.times"
  for _ in $(seq "$RUNS"); do
    TIMES=$root/find.times timed find "$root/mirror" -type f > "$root/find.out"
  done
  read -r find_s find_kb < <(summary < "$root/find.times")
  printf '%-10s files %d, batch %d, workers %d, runs %d\n' "" "$files" "$BATCH" "$WORKERS" "$RUNS"
  printf '%-10s %-12s %8.2f s  %8d KiB\n' find "" "$find_s" "$find_kb"
  # The floor of any batched scan: the no-op scanner started once per batch
  # of find's list, WORKERS at a time, by xargs (no walk, no journal).
  : > "$root/floor.times"
  for _ in $(seq "$RUNS"); do
    TIMES=$root/floor.times timed xargs -d '\n' -n "$BATCH" -P "$WORKERS" "$true_bin" < "$root/find.out"
  done
  read -r floor_s _ < <(summary < "$root/floor.times")
  printf '%-10s %-12s %8.2f s  (xargs -n %d -P %d true: the scanner starts alone)\n' floor "" "$floor_s" "$BATCH" "$WORKERS"
  for i in "${!bins[@]}"; do
    bin=${bins[$i]}
    : > "$root/list.times"
    : > "$root/scan.times"
    for _ in $(seq "$RUNS"); do
      fresh_state
      TIMES=$root/list.times timed env TMPDIR="$root/tmp" "$bin" --config "$root/config.yaml" --dry-run av-scan 2> "$root/dry.log"
      if [ "$i" -gt 0 ] && [ "${COMPARE_FULL:-1}" = 0 ]; then continue; fi
      fresh_state
      TIMES=$root/scan.times timed "$bin" --config "$root/config.yaml" av-scan 2> "$root/scan.log"
      listed=$(wc -l < "$root/work/state/av_state/files_to_scan.txt")
      if [ "$listed" != "$files" ]; then
        echo "${names[$i]}: listed $listed files, find $files" >&2
        exit 1
      fi
      grep -q av_scan_finished "$root/scan.log" || { cat "$root/scan.log" >&2; exit 1; }
    done
    read -r list_s list_kb < <(summary < "$root/list.times")
    printf '%-10s %-12s %8.2f s  %8d KiB  %.2fx find\n' "${names[$i]}" "list only" "$list_s" "$list_kb" "$(echo "$list_s / $find_s" | bc -l)"
    if [ ! -s "$root/scan.times" ]; then continue; fi
    read -r scan_s scan_kb < <(summary < "$root/scan.times")
    printf '%-10s %-12s %8.2f s  %8d KiB  %.2fx find, %.2fx find + floor\n' "${names[$i]}" "full scan" "$scan_s" "$scan_kb" \
      "$(echo "$scan_s / $find_s" | bc -l)" "$(echo "$scan_s / ($find_s + $floor_s)" | bc -l)"
  done
done
