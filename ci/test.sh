#!/usr/bin/env bash
# The project's test command (README.md, "Tests"). On a fresh machine it
# first installs what the tests run for real, then checks formatting, lints
# and docs, runs every test, and runs the real pipelines on gitlab-ci-local.
# CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# /dev/null must be the null device before anything writes to it. In a
# container where it is missing or a regular file, every `>/dev/null` (ours,
# and build scripts' rustc probes sending their errors there) appends to a
# file, and cargo's target probe (`rustc - --print=cfg`, whose standard input
# is /dev/null) then compiles that text and fails with "failed to run `rustc`
# to learn about target-specific information" (seen in CI). ensure_null
# recreates the device, or where that is refused, empties the file; it runs
# now and again before each cargo step.
ensure_null() {
  [ ! -c /dev/null ] || return 0
  echo "ci/test.sh: /dev/null is not the null device ($(stat -c %F /dev/null 2>&1)); recreating it" >&2
  if { rm -f /dev/null && mknod -m 666 /dev/null c 1 3; } 2>/dev/null && [ -c /dev/null ]; then
    return 0
  fi
  echo "ci/test.sh: cannot create the device; emptying the file /dev/null instead" >&2
  : >/dev/null 2>&1 || true
}
ensure_null
# Nothing in the tests reads the caller's standard input.
exec </dev/null

# Debian packages the tests run for real (not faked):
# rsync (publication), podman + runc + netavark + busybox-static (real syncer
# containers, tests/it/sync_podman.rs), clamav + clamav-daemon + clamdscan (the
# ClamAV engine, tests/it/av_scan_clamav.rs), zfs-fuse + sanoid (ZFS in user
# space and the real syncoid, tests/it/zfs_real.rs; zfs-fuse is named first so
# that it, not zfsutils-linux, satisfies sanoid's dependency on a zfs).
# prometheus (promtool) + prometheus-node-exporter: the metrics textfile is
# checked and served by the real tools (tests/it/health_metrics.rs); their
# daemons are not started by the installation (policy-rc.d below);
# chromium renders the fleet page (ci/fleet-page-check.sh).
packages=(bash rsync podman runc netavark busybox-static clamav clamav-daemon clamdscan zfs-fuse sanoid prometheus prometheus-node-exporter chromium)
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
  # Packages start their services on installation (prometheus on 9090,
  # node_exporter on 9100); the tests start their own on free ports, so
  # forbid service starts while installing (Debian's policy-rc.d, exit 101).
  policy_rc=''
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_rc=/usr/sbin/policy-rc.d
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$policy_rc" ] || rm -f "$policy_rc"
fi
# Should a service have started anyway (an existing policy-rc.d allowing it),
# stop it through its init script: nothing must keep 9100/9090 busy.
for service in prometheus-node-exporter prometheus; do
  if pgrep -x "$service" >/dev/null 2>&1 && [ -x "/etc/init.d/$service" ]; then
    echo "ci/test.sh: stopping the $service service the package started" >&2
    "/etc/init.d/$service" stop >/dev/null 2>&1 || true
  fi
done

# The zfs-fuse daemon for tests/it/zfs_real.rs (its test pools live on files
# in temp directories). One already answering (started by the package or by
# hand) is used as it is; otherwise this script starts one and stops it on
# exit, whatever happens. Either way, test pools left behind by test
# processes that are gone (`mrrtest<pid>-<n>`, tests/zfs_pool/mod.rs) are
# destroyed on exit.
zfs_fuse_pid=''
zfs_fuse_dir=''
cleanup_zfs() {
  local pool pid
  for pool in $(zpool list -H -o name 2>/dev/null | grep -E '^mrrtest[0-9]+-[0-9]+$' || true); do
    pid=${pool#mrrtest}; pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null && continue
    # zfs-fuse answers "pool is busy" for a moment after a pool was used.
    for _ in $(seq 20); do zpool destroy -f "$pool" 2>/dev/null && break; sleep 0.5; done
  done
  if [ -n "$zfs_fuse_pid" ]; then
    kill -TERM "$zfs_fuse_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$zfs_fuse_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$zfs_fuse_pid" 2>/dev/null || true
    wait "$zfs_fuse_pid" 2>/dev/null || true
  fi
  [ -z "$zfs_fuse_dir" ] || rm -rf "$zfs_fuse_dir"
}
trap cleanup_zfs EXIT
if zpool list >/dev/null 2>&1; then
  echo "ci/test.sh: using the zfs-fuse daemon that is already running" >&2
else
  if [ ! -c /dev/fuse ]; then
    echo "ci/test.sh: /dev/fuse is missing: zfs-fuse (tests/it/zfs_real.rs) needs the FUSE device; give the job's container /dev/fuse (e.g. podman/docker --device /dev/fuse) and run as root" >&2
    exit 1
  fi
  zfs_fuse_dir=$(mktemp -d /tmp/mirrorer-zfs-fuse.XXXXXX)
  zfs-fuse --no-daemon --no-kstat-mount -p "$zfs_fuse_dir/zfs-fuse.pid" >"$zfs_fuse_dir/zfs-fuse.log" 2>&1 &
  zfs_fuse_pid=$!
  for _ in $(seq 100); do
    zpool list >/dev/null 2>&1 && break
    if ! kill -0 "$zfs_fuse_pid" 2>/dev/null; then
      status=0; wait "$zfs_fuse_pid" || status=$?
      zfs_fuse_pid=''
      echo "ci/test.sh: zfs-fuse exited (status $status) before answering: $(cat "$zfs_fuse_dir/zfs-fuse.log") (it logs to syslog; is another zfs-fuse running, is /dev/fuse usable by root?)" >&2
      exit 1
    fi
    sleep 0.2
  done
  if ! zpool list >/dev/null; then
    echo "ci/test.sh: zfs-fuse (pid $zfs_fuse_pid) did not answer \`zpool list\` within 20 s" >&2
    exit 1
  fi
  echo "ci/test.sh: started zfs-fuse (pid $zfs_fuse_pid)" >&2
fi

ensure_null
cargo fmt --all -- --check
ensure_null
cargo clippy --locked --all-targets -- -D warnings
ensure_null
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
ensure_null
cargo test --locked --all-targets
ensure_null
cargo test --locked --doc
ensure_null
MIRRORER_BIN="$PWD/target/debug/mirrorer" ci/e2e-gitlab-ci-local.sh
MIRRORER_BIN="$PWD/target/debug/mirrorer" ci/fleet-page-check.sh
