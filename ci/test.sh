#!/usr/bin/env bash
# The project's test command (README.md, "Tests"). On a fresh machine it
# first installs what the tests run for real, then checks formatting, lints
# and docs, runs every test, and runs the real pipelines on gitlab-ci-local.
# CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run for real (not faked):
# rsync (publication), podman + runc + netavark + busybox-static (real syncer
# containers, tests/sync_podman.rs), clamav + clamav-daemon + clamdscan (the
# ClamAV engine, tests/av_scan_clamav.rs).
packages=(bash rsync podman runc netavark busybox-static clamav clamav-daemon clamdscan)
# npm installs gitlab-ci-local for the end-to-end run; Node and npm come with
# the machine, Debian's packages stand in where they do not.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci/test.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
cargo test --locked --all-targets
cargo test --locked --doc
MIRRORER_BIN="$PWD/target/debug/mirrorer" ci/e2e-gitlab-ci-local.sh
