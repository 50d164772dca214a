#!/bin/bash
# Benchmark of `mirrorer catalog` (release build) against mirrorer 0.1.0 (the
# Python reference) and a bare `find ROOT -type d`, on a large generated tree.
# Not a test: run it by hand.
#
#   bench/catalog.sh                 (from the repository root)
#
# Environment:
#   BENCH_DIR    where the tree is built (default /work/bench-tmp/catalog); it is
#                removed at the end unless KEEP=1
#   MIRRORER_REF the reference binary (default /tmp/pyref/bin/mirrorer; a venv
#                with `pip install mirrorer==0.1.0` is made there if missing)
#   RUNS         timed runs of each command, the best kept (default 3)
#   REUSE=1      time an existing tree in BENCH_DIR (left by KEEP=1) instead of
#                building a new one
#   CARGO_TARGET_DIR as for cargo
#
# The tree: about 1,000,000 files in 200 prefixes: 100 APT prefixes (dists/
# copied from the apt-ftparchive fixture, pool/ of empty files), one of them with
# a real-size (about 60 MB) plain Packages file listed in its Release; 60 RPM
# prefixes (repodata from the createrepo_c fixture, Packages/ of empty files),
# one of them a createrepo_c repository of 20,000 (hard-linked) packages; 40
# ALT apt-rpm prefixes. Needs GNU time (Debian package `time`, installed here
# when missing and running as root) and, for the big RPM repository,
# createrepo_c.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/work/bench-tmp/catalog}
ROOT="$BENCH_DIR/tree"
REF=${MIRRORER_REF:-/tmp/pyref/bin/mirrorer}
RUNS=${RUNS:-3}
FIX="$REPO/tests/fixtures/catalog/trees"
export LC_ALL=C.UTF-8

if [ ! -x /usr/bin/time ] || ! command -v createrepo_c >/dev/null; then
    apt-get update -q >/dev/null && apt-get install -y -q time createrepo-c >/dev/null
fi
if [ ! -x "$REF" ]; then
    python3 -m venv /tmp/pyref && /tmp/pyref/bin/pip install -q mirrorer==0.1.0
    REF=/tmp/pyref/bin/mirrorer
fi
. "$REPO/bench/common.sh"
release_binary

if ! reusing_tree; then
echo "== building the tree in $ROOT"
rm -rf "$BENCH_DIR"
mkdir -p "$ROOT"
python3 - "$ROOT" "$FIX" <<'EOF'
import hashlib, os, shutil, sys

root, fix = sys.argv[1], sys.argv[2]
FILES_PER_PREFIX = 5000
letters = "abcdefghijklmnopqrstuvwxyz"

def empty_files(directory, count, subdirs=True):
    """count empty files, spread over letter/package directories."""
    made = 0
    i = 0
    while made < count:
        if subdirs:
            d = os.path.join(directory, letters[i % 26], "pkg%04d" % (i // 26))
        else:
            d = directory
        os.makedirs(d, exist_ok=True)
        for j in range(min(10, count - made)):
            fd = os.open(os.path.join(d, "file%04d_%d.deb" % (i, j)), os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
            made += 1
        i += 1

for n in range(100):
    p = os.path.join(root, "deb%03d" % n)
    shutil.copytree(os.path.join(fix, "apt/debian/dists"), os.path.join(p, "dists"), symlinks=True)
    empty_files(os.path.join(p, "pool/main"), FILES_PER_PREFIX)
for n in range(60):
    p = os.path.join(root, "rpm%03d" % n)
    repo = os.path.join(p, "9/BaseOS/x86_64/os")
    shutil.copytree(os.path.join(fix, "rpm/other/custom/repodata"), os.path.join(repo, "repodata"))
    empty_files(os.path.join(repo, "Packages"), FILES_PER_PREFIX)
for n in range(40):
    p = os.path.join(root, "alt%03d" % n)
    base = os.path.join(p, "p10/branch/x86_64")
    shutil.copytree(os.path.join(fix, "aptrpm/alt/p10/branch/x86_64/base"), os.path.join(base, "base"))
    empty_files(os.path.join(base, "RPMS.classic"), FILES_PER_PREFIX, subdirs=False)

# A real-size plain Packages file (about 60 MB) in deb000, listed in its Release.
suite = os.path.join(root, "deb000/dists/big")
os.makedirs(os.path.join(suite, "main/binary-amd64"))
packages = os.path.join(suite, "main/binary-amd64/Packages")
with open(packages, "w") as f:
    i = 0
    while f.tell() < 60_000_000:
        f.write(
            f"Package: bench-package-{i}\nVersion: 1.{i}-1\nInstalled-Size: {i % 9000}\n"
            f"Maintainer: Bench Maintainer <bench@example.invalid>\nArchitecture: amd64\n"
            f"Depends: libc6 (>= 2.36), libbench{i % 97} (>= 1.0)\n"
            f"Description: benchmark package number {i}\n"
            f"Description-md5: {hashlib.md5(str(i).encode()).hexdigest()}\n"
            f"Section: misc\nPriority: optional\n"
            f"Filename: pool/main/b/bench-package-{i}/bench-package-{i}_1.{i}-1_amd64.deb\n"
            f"Size: {1000 + i}\nMD5sum: {hashlib.md5(str(i).encode()).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(str(i).encode()).hexdigest()}\n\n"
        )
        i += 1
h = hashlib.sha256()
with open(packages, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
size = os.path.getsize(packages)
with open(os.path.join(suite, "Release"), "w") as f:
    f.write("Origin: Bench\nSuite: big\nCodename: big\nArchitectures: amd64\nComponents: main\n")
    f.write(f"SHA256:\n {h.hexdigest()} {size} main/binary-amd64/Packages\n")
EOF

# A createrepo_c repository of 20,000 packages (hard links of the fixture RPMs).
BIG_RPM="$ROOT/rpm000/big/x86_64/os"
mkdir -p "$BIG_RPM/Packages"
python3 - "$BIG_RPM/Packages" "$FIX/aptrpm/alt/x86_64/RPMS.classic" <<'PY'
import os, sys
dest, src = sys.argv[1], sys.argv[2]
rpms = sorted(f for f in os.listdir(src) if f.endswith(".rpm"))
for i in range(10000):
    for r in rpms:
        os.link(os.path.join(src, r), os.path.join(dest, f"{i}-{r}"))
PY
createrepo_c --quiet --workers 2 "$BIG_RPM" >/dev/null
fi
echo "files: $(find "$ROOT" -type f | wc -l), directories: $(find "$ROOT" -type d | wc -l), prefixes: $(ls "$ROOT" | wc -l)"
du -sh "$ROOT" | sed 's/^/size: /'

echo "== warm-up"
find "$ROOT" >/dev/null
"$BIN" catalog --root-dir "$ROOT" --shard bench --output "$BENCH_DIR/ours.json" 2>/dev/null
"$REF" catalog --root-dir "$ROOT" --shard bench --output "$BENCH_DIR/ref.json" 2>/dev/null

# timed CMD...: prints "wall_seconds peak_rss_kb"
timed() {
    /usr/bin/time -f '%e %M' -o "$BENCH_DIR/time.out" "$@" >/dev/null 2>&1
    cat "$BENCH_DIR/time.out"
}
best() { # best wall time (and the RSS of that run) of RUNS runs
    local best_line="" line
    for _ in $(seq "$RUNS"); do
        line=$(timed "$@")
        if [ -z "$best_line" ] || awk -v a="${line% *}" -v b="${best_line% *}" 'BEGIN{exit !(a<b)}'; then
            best_line=$line
        fi
    done
    echo "$best_line"
}

echo "== timing (best of $RUNS runs each)"
find_res=$(best find "$ROOT" -type d)
ours_res=$(best "$BIN" catalog --root-dir "$ROOT" --shard bench --output "$BENCH_DIR/ours.json")
ref_res=$(best "$REF" catalog --root-dir "$ROOT" --shard bench --output "$BENCH_DIR/ref.json")

norm() { sed -E 's/"generated_at": "[^"]*"/"generated_at": X/' "$1"; }
if cmp -s <(norm "$BENCH_DIR/ours.json") <(norm "$BENCH_DIR/ref.json"); then same=yes; else same=NO; fi

read -r find_s find_kb <<<"$find_res"
read -r ours_s ours_kb <<<"$ours_res"
read -r ref_s ref_kb <<<"$ref_res"
printf '%-28s %10s %14s\n' "" "wall (s)" "peak RSS (MB)"
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
printf '%-28s %10s %14s\n' "find ROOT -type d" "$find_s" "$(mb "$find_kb")"
printf '%-28s %10s %14s\n' "mirrorer catalog (Rust)" "$ours_s" "$(mb "$ours_kb")"
printf '%-28s %10s %14s\n' "mirrorer 0.1.0 (Python)" "$ref_s" "$(mb "$ref_kb")"
echo "speed-up over mirrorer 0.1.0: $(awk -v a="$ref_s" -v b="$ours_s" 'BEGIN { printf "%.1f", a / b }')x"
echo "ours / find time: $(awk -v a="$ours_s" -v b="$find_s" 'BEGIN { printf "%.2f", a / b }')"
echo "same catalog as mirrorer 0.1.0 (except generated_at): $same"
echo "repositories: $(grep -c '"type": "\(apt\|rpm\|apt-rpm\)"' "$BENCH_DIR/ours.json")"
