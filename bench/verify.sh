#!/bin/bash
# Figures for `mirrorer verify` (release build) on a large generated tree whose
# Packages and primary files reference real files with true sizes and hashes.
# Not a test: run it by hand; it prints figures, it asserts nothing.
#
#   bench/verify.sh                  (from the repository root)
#
# Environment:
#   BENCH_DIR  where the tree is built (default /work/bench-tmp/verify); removed
#              at the end unless KEEP=1
#   FILES      package files in all (default 1000000)
#   SIZE       bytes per package file (default 512)
#   REUSE=1    time an existing tree in BENCH_DIR (left by KEEP=1)
#   MIRRORER_BIN  the binary to time (default: a release build made here)
#   CARGO_TARGET_DIR as for cargo
#
# The tree: 100 APT prefixes (dists/<suite>/main/binary-amd64/Packages with a
# Release listing its SHA256 and size; pool/ files) and 100 RPM prefixes
# (repodata/repomd.xml and a gzip primary.xml listing Packages/*.rpm), the
# files split evenly. Printed, warm cache, best of 3:
#   find ROOT -type f                           vs  verify --deep none  (goal: within 1.5x)
#   find ROOT -type f | xargs -P nproc sha256sum vs  verify --deep all   (goal: >= 80 % of its throughput)
#   peak RSS of each verify run (goal: under 100 MB), from GNU time.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/work/bench-tmp/verify}
ROOT="$BENCH_DIR/tree"
FILES=${FILES:-1000000}
SIZE=${SIZE:-512}
export LC_ALL=C.UTF-8

[ -x /usr/bin/time ] || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }
. "$REPO/bench/common.sh"
release_binary "${MIRRORER_BIN:-}"

if ! reusing_tree; then
    echo "== building the tree in $ROOT ($FILES files of $SIZE bytes)"
    rm -rf "$BENCH_DIR"
    mkdir -p "$ROOT"
    python3 - "$ROOT" "$FILES" "$SIZE" <<'EOF'
import gzip, hashlib, os, sys

root, files, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
prefixes = 200
per = files // prefixes

def content(i):
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]

def write_packages(directory, first, file_name):
    """Writes `per` package files, content(first) on, into the new
    `directory`; returns (i, file name, content) of each."""
    os.makedirs(directory)
    written = []
    for i in range(per):
        data, name = content(first + i), file_name(i)
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
        written.append((i, name, data))
    return written

for p in range(prefixes // 2):
    base = os.path.join(root, f"apt{p:03d}")
    stanzas = []
    for i, name, data in write_packages(os.path.join(base, "pool/main"), p * per,
                                        lambda i: f"pkg{i:06d}_1.0_amd64.deb"):
        stanzas.append(f"Package: pkg{i}\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/main/{name}\n"
                       f"Size: {len(data)}\nMD5sum: {hashlib.md5(data).hexdigest()}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    idx_dir = os.path.join(base, "dists/stable/main/binary-amd64")
    os.makedirs(idx_dir)
    packages = "\n".join(stanzas).encode()
    with open(os.path.join(idx_dir, "Packages"), "wb") as f:
        f.write(packages)
    with open(os.path.join(base, "dists/stable/Release"), "w") as f:
        f.write("Suite: stable\nCodename: stable\nArchitectures: amd64\nComponents: main\nSHA256:\n"
                f" {hashlib.sha256(packages).hexdigest()} {len(packages)} main/binary-amd64/Packages\n")
for p in range(prefixes // 2):
    base = os.path.join(root, f"rpm{p:03d}")
    items = []
    for i, name, data in write_packages(os.path.join(base, "Packages"), (prefixes // 2 + p) * per,
                                        lambda i: f"pkg{i:06d}-1.0-1.x86_64.rpm"):
        items.append(f'<package type="rpm"><name>pkg{i}</name><checksum type="sha256" pkgid="YES">'
                     f'{hashlib.sha256(data).hexdigest()}</checksum><size package="{len(data)}" installed="1" archive="1"/>'
                     f'<location href="Packages/{name}"/></package>')
    primary = gzip.compress(('<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" packages="%d">\n' % per
                             + "\n".join(items) + "\n</metadata>\n").encode(), mtime=0)
    os.makedirs(os.path.join(base, "repodata"))
    with open(os.path.join(base, "repodata/primary.xml.gz"), "wb") as f:
        f.write(primary)
    with open(os.path.join(base, "repodata/repomd.xml"), "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary">'
                f'<checksum type="sha256">{hashlib.sha256(primary).hexdigest()}</checksum><location href="repodata/primary.xml.gz"/>'
                f'<size>{len(primary)}</size></data></repomd>\n')
EOF
fi

best() { # command... -> best wall seconds of 3 runs (after one warm-up)
    "$@" >/dev/null 2>&1 || true
    local b=''
    for _ in 1 2 3; do
        local s e t
        s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
    done
    echo "$b"
}
rss() { # command... -> peak RSS in MB (GNU time)
    /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1 | awk '{printf "%.1f", $1/1024}'
}

bytes=$(du -sb "$ROOT" | cut -f1)
find_s=$(best find "$ROOT" -type f)
# find -type f reads only directory entries (d_type); verify must stat every
# package for its size, as `find -printf %s` does: the floor for --deep none.
stat_s=$(best find "$ROOT" -type f -printf '%s\n')
none_s=$(best "$BIN" --log-level ERROR verify --root-dir "$ROOT" --deep none --output /dev/null)
sha_s=$(best sh -c "find '$ROOT' -type f -print0 | xargs -0 -P $(nproc) -n 256 sha256sum")
all_s=$(best "$BIN" --log-level ERROR verify --root-dir "$ROOT" --deep all --output /dev/null)
none_rss=$(rss "$BIN" --log-level ERROR verify --root-dir "$ROOT" --deep none --output /dev/null)
all_rss=$(rss "$BIN" --log-level ERROR verify --root-dir "$ROOT" --deep all --output /dev/null)

echo "tree: $FILES package files, $bytes bytes"
printf 'find -type f:           %8.2f s\n' "$find_s"
printf 'find -type f -printf %%s: %7.2f s  (stats every file, as verify must)\n' "$stat_s"
printf 'verify --deep none:     %8.2f s  (%.2fx find, %.2fx find -printf %%s; goal <= 1.5x)  peak RSS %s MB\n' "$none_s" "$(echo "$none_s / $find_s" | bc -l)" "$(echo "$none_s / $stat_s" | bc -l)" "$none_rss"
printf 'xargs sha256sum:        %8.2f s  (%.1f MB/s)\n' "$sha_s" "$(echo "$bytes / $sha_s / 1048576" | bc -l)"
printf 'verify --deep all:      %8.2f s  (%.1f MB/s, %.0f %% of sha256sum; goal >= 80 %%)  peak RSS %s MB\n' \
    "$all_s" "$(echo "$bytes / $all_s / 1048576" | bc -l)" "$(echo "100 * $sha_s / $all_s" | bc -l)" "$all_rss"
