#!/usr/bin/env bash
# End-to-end run of the real pipelines on a GitLab CI runner emulator
# (README.md, "Running the pipelines locally").
#
# gitlab-ci-local runs, with its shell executor, a scratch project whose
# .gitlab-ci.yml includes ci/mirrorer.gitlab-ci.yml with its inputs:
# mirrorer:generate:e2e writes the child pipeline, mirrorer:run:e2e triggers it, and
# every child job runs the real binary against a temp workdir. ZFS is real:
# the mirror dataset and the replica's dataset live on two file-backed
# zfs-fuse pools (a zfs-fuse daemon must be running: ci/test.sh starts one),
# and `replicate` runs the real syncoid, which reaches the "replica" through
# the ssh stand-in (tests/fakes/ssh, with tests/fakes/replica's sudo and zfs
# adapter on the remote PATH). What zfs-fuse lacks comes from the fake zfs
# (ci/e2e/zfs: the snapshot directory `.zfs/snapshot/<name>` as a copy, and
# `zfs diff`). kesl-control and docker are fakes (tests/fakes/,
# ci/e2e/fake-docker: the syncers copy fixture repositories into the
# mirror); rsync is real. After each run the script
# checks every child job's result itself (gitlab-ci-local reports a bridge
# job as passed even when its child failed) and the files: the published
# tree, its replica, inventory.json and repo_catalog.json, and that the
# replica's ZFS snapshots are the source's (the second run sends only the
# increment).
#
# Runs: the nightly full chain, one syncer only, republish one snapshot,
# publish all, rebuild catalogs, a nightly run stopped by verify (a lost
# package), two shards in one parent pipeline, and a nightly run with
# retention that prunes.
#
# Environment: MIRRORER_BIN (default: cargo build, target/debug/mirrorer),
# MIRRORER_E2E_TOOLS (where gitlab-ci-local is installed, default
# target/e2e-tools), MIRRORER_E2E_KEEP=1 keeps the scratch directory.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
gcl_version=4.73.0
tools=${MIRRORER_E2E_TOOLS:-$repo/target/e2e-tools}
gcl="$tools/node_modules/.bin/gitlab-ci-local"

say() { printf 'e2e: %s\n' "$*" >&2; }
fail() { printf 'e2e: FAILED: %s\n' "$*" >&2; exit 1; }

if [ ! -x "$gcl" ] || [ "$("$gcl" --version 2>/dev/null)" != "$gcl_version" ]; then
  say "installing gitlab-ci-local $gcl_version into $tools"
  command -v npm >/dev/null || fail "npm is needed to install gitlab-ci-local (Debian: apt-get install npm)"
  npm install --prefix "$tools" --no-audit --no-fund --loglevel=error "gitlab-ci-local@$gcl_version" >&2
fi

if [ -z "${MIRRORER_BIN:-}" ]; then
  (cd "$repo" && cargo build --locked --quiet)
  MIRRORER_BIN="$repo/target/debug/mirrorer"
fi
bin=$MIRRORER_BIN
[ -x "$bin" ] || fail "no mirrorer binary at $bin"

zpool list >/dev/null 2>&1 \
  || fail "the zfs-fuse daemon does not answer \`zpool list\` (install zfs-fuse and sanoid; start it as ci/test.sh does: zfs-fuse --no-kstat-mount -p <pidfile>)"
real_zfs=$(command -v zfs) || fail "no zfs on PATH (Debian: apt-get install zfs-fuse)"
real_syncoid=$(command -v syncoid) || fail "no syncoid on PATH (Debian: apt-get install sanoid)"

W=$(mktemp -d /tmp/mirrorer-e2e.XXXXXX)
# Pool names as tests/zfs_pool/mod.rs makes them, so that ci/test.sh also
# destroys them should this script be killed.
src_pool="mrrtest$$-0"
rep_pool="mrrtest$$-1"
pools=()
cleanup() {
  local pool
  for pool in "${pools[@]}"; do
    # zfs-fuse answers "pool is busy" for a moment after a pool was used.
    for _ in $(seq 20); do zpool destroy -f "$pool" 2>/dev/null && break; sleep 0.5; done
  done
  rm -rf "$W"
}
if [ "${MIRRORER_E2E_KEEP:-}" != 1 ]; then
  trap cleanup EXIT
else
  say "keeping $W and the pools $src_pool $rep_pool"
fi
mkdir -p "$W"/{bin,path,etc,work,replica,project/ci,log,docker-state,pools,snapdir}
truncate -s 128M "$W/pools/src.img" "$W/pools/rep.img"
zpool create -m "$W/pools/src" "$src_pool" "$W/pools/src.img"
pools+=("$src_pool")
zpool create -m "$W/pools/rep" "$rep_pool" "$W/pools/rep.img"
pools+=("$rep_pool")
dataset="$src_pool/mirror"
replica_dataset="$rep_pool/mirror"
zfs create -o mountpoint="$W/mirror" "$dataset"
# The snapshot directory zfs-fuse lacks: ci/e2e/zfs copies each snapshot
# to $W/mirror/.zfs/snapshot/<name>, that is into $W/snapdir.
ln -s "$W/snapdir" "$W/mirror/.zfs"
: > "$W/etc/syncer.yaml"
: > "$W/etc/syncer_repos.yaml"
: > "$W/id_rsa"

# Fakes, with their settings baked in: the child jobs' environment comes
# from the emulator, not from this script.
fake() { # name target [VAR=value...]
  local name=$1 target=$2; shift 2
  {
    echo '#!/bin/sh'
    for kv in "$@"; do printf 'export %q\n' "$kv"; done
    printf 'export FAKE_LOG=%q\n' "$W/fake.log"
    printf 'exec %q "$@"\n' "$target"
  } > "$W/bin/$name"
  chmod +x "$W/bin/$name"
}
fake zfs "$repo/ci/e2e/zfs" "E2E_REAL_ZFS=$real_zfs" "E2E_FAKE_ZFS=$repo/tests/fakes/zfs" \
  "FAKE_ZFS_DATASET=$dataset" "FAKE_ZFS_MOUNT=$W/mirror"
fake ssh "$repo/tests/fakes/ssh" "FAKE_SSH_REMAP_FROM=$W/work" "FAKE_SSH_REMAP_TO=$W/replica/work" \
  "FAKE_SSH_REMOTE_PATH=$repo/tests/fakes/replica"
# syncoid runs `ssh` from PATH: $W/path (only ssh) goes first on the jobs'
# PATH.
ln -s "$W/bin/ssh" "$W/path/ssh"
fake kesl-control "$repo/tests/fakes/kesl-control"
fake docker "$repo/ci/e2e/fake-docker" "E2E_FIXTURES=$repo/tests/fixtures/catalog/trees" "E2E_DOCKER_STATE=$W/docker-state"

cat > "$W/dist-mirror.yaml" <<YAML
log:
  log_level: INFO
mirror:
  workdir: $W/work
  syncer_dir: $W/etc
  zfs_mirror_dataset: $dataset
  zfs_mirror_dir: $W/mirror
  kesl_max_workers: 2
replication:
  replica_host: replica.example.org
  ssh_user: tech_dist-mirror
  ssh_key: $W/id_rsa
  skip_remote: false
  replica_dataset: $replica_dataset
antivirus:
  fail_on_threats: true
  batch_size: 7
repo:
  paths:
    apt/mirror:
      debian.mirror.example: debian
    dnf/repos:
      centos: centos
    rsync:
      epel: epel
syncer:
  - {type: apt, name: debian, prefix: debian, config: syncer.yaml, image: e2e/apt, log_file: $W/log/debian.log}
  - {type: rsync, name: epel, prefix: epel, repos: syncer_repos.yaml, image: e2e/rsync, log_file: $W/log/epel.log}
  - {type: dnf, name: rpm, prefix: rpm, config: syncer.yaml, repos: syncer_repos.yaml, dest: dnf/repos, image: e2e/dnf, log_file: $W/log/rpm.log}
pipeline:
  runner_tags: [dist-mirror-e2e]
  command: [$bin]
  config_path: $W/dist-mirror.yaml
tools:
  zfs: $W/bin/zfs
  syncoid: $real_syncoid
  ssh: $W/bin/ssh
  kesl_control: $W/bin/kesl-control
  docker: $W/bin/docker
YAML

proj=$W/project
cp "$repo/ci/mirrorer.gitlab-ci.yml" "$proj/ci/"
git -C "$proj" init -q -b main
git -C "$proj" remote add origin https://gitlab.example.org/infra/dist-mirror-e2e.git
# gitlab-ci-local 4.73.0 looks for `trigger: include: artifact` of job
# `mirrorer:generate:e2e` under artifacts/mirrorer:generate:e2e, but stores
# it under a name with each `:` encoded; this link lets the child pipeline
# start.
mkdir -p "$proj/.gitlab-ci-local/artifacts"
ln -s mirrorerOggenerateOge2e "$proj/.gitlab-ci-local/artifacts/mirrorer:generate:e2e"

run_pipeline() { # label [input: value]...
  local label=$1; shift
  {
    echo "include:"
    echo "  - local: ci/mirrorer.gitlab-ci.yml"
    echo "    inputs:"
    echo "      shard: e2e"
    echo "      runner_tag: dist-mirror-e2e"
    echo "      config: $W/dist-mirror.yaml"
    echo "      mirrorer: $bin"
    for kv in "$@"; do echo "      $kv"; done
  } > "$proj/.gitlab-ci.yml"
  git -C "$proj" add -A >/dev/null
  git -C "$proj" -c user.email=e2e@example.org -c user.name=e2e commit -q -m "$label" --allow-empty
  say "run: $label"
  local out="$W/log/gcl-$label.txt"
  # The emulator sets CI_PIPELINE_SOURCE for child pipelines itself and
  # then warns about it.
  if ! (cd "$proj" && PATH="$W/path:$PATH" GCL_IGNORE_PREDEFINED_VARS=CI_PIPELINE_SOURCE \
        "$gcl" --shell-executor-no-image --color=false >"$out" 2>&1); then
    cat "$out" >&2
    fail "$label: gitlab-ci-local failed"
  fi
  sed -i 's/\x1b\[[0-9;]*m//g' "$out"
}

# The same for a run in which a child job must fail. gitlab-ci-local 4.73.0
# does not carry a failed child job up to the trigger job (`strategy: depend`
# passes there), so its exit status is not looked at: the callers check the
# child jobs' FAIL/PASS lines.
run_failing_pipeline() { # label [input: value]...
  local label=$1; shift
  local out="$W/log/gcl-$label.txt"
  (run_pipeline "$label" "$@") 2>/dev/null || true
  [ -s "$out" ] || fail "$label: gitlab-ci-local wrote no output"
  sed -i 's/\x1b\[[0-9;]*m//g' "$out"
}

# Every child job of the run must have passed, and exactly these ran.
expect_jobs() { # label job...
  local label=$1; shift
  local out="$W/log/gcl-$label.txt"
  grep -q '^ PASS  mirrorer:generate:e2e' "$out" || { cat "$out" >&2; fail "$label: mirrorer:generate:e2e did not pass"; }
  if grep -q '^ FAIL ' "$out"; then
    cat "$out" >&2
    fail "$label: failed jobs: $(grep '^ FAIL ' "$out" | tr -s ' ' | tr '\n' ';')"
  fi
  local ran
  ran=$(grep -oE '^	\[mirrorer:run:e2e\] -> [^ ]+ +starting' "$out" | awk '{print $3}' | sort | tr '\n' ' ')
  local want
  want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
  [ "$ran" = "$want" ] || { cat "$out" >&2; fail "$label: child jobs were [$ran], expected [$want]"; }
  for job in "$@"; do
    grep -qE "^ PASS  (\[mirrorer:run:e2e\] -> )?$job( |$)" "$out" || { cat "$out" >&2; fail "$label: $job did not pass"; }
  done
}

# The snapshots of a dataset, from the real zfs, in creation order.
snapshots_of() { "$real_zfs" list -t snapshot -o name -H | sed -n "s|^$1@||p"; }
snapshots() { snapshots_of "$dataset" | sort; }
# The replica holds exactly the source's snapshots.
check_replica() { # label
  [ "$(snapshots_of "$replica_dataset")" = "$(snapshots_of "$dataset")" ] \
    || fail "$1: replica snapshots [$(snapshots_of "$replica_dataset" | tr '\n' ' ')] != source [$(snapshots_of "$dataset" | tr '\n' ' ')]"
}

check() { python3 "$repo/ci/e2e/check.py" "$W" "$@" || fail "check $*"; }

nightly_jobs=(sync:debian sync:epel sync:rpm av-scan snapshot verify replicate publish-snapshot publish-inventory publish-catalog promote cleanup-state)

# 1. The nightly run: the full chain.
run_pipeline nightly
expect_jobs nightly "${nightly_jobs[@]}"
snap1=$(snapshots | tail -n 1)
[ -n "$snap1" ] || fail "nightly: no snapshot taken"
check published "$snap1"
check inventory "$snap1"
check catalog "$snap1"
check state-cleaned
check_replica nightly
grep -q "Sending oldest full snapshot $dataset@$snap1" "$W/log/gcl-nightly.txt" \
  || fail "nightly: syncoid did not send $dataset@$snap1 in full"
grep -q "^kesl-control --scan-file" "$W/fake.log" || fail "nightly: nothing was scanned"
sleep 1

# 2. One syncer only.
run_pipeline sync-one 'syncers: epel'
expect_jobs sync-one sync:epel av-scan snapshot verify replicate publish-snapshot publish-inventory publish-catalog promote cleanup-state
snap2=$(snapshots | tail -n 1)
[ "$snap2" != "$snap1" ] || fail "sync-one: no new snapshot"
check published "$snap2"
check inventory "$snap2" "$snap1"
check catalog "$snap2"
check_replica sync-one
grep -q "Sending incremental $dataset@$snap1 \.\.\. $snap2" "$W/log/gcl-sync-one.txt" \
  || fail "sync-one: syncoid did not send only the increment $snap1 ... $snap2"

# 3. Republish one snapshot after its published tree and catalog were lost.
rm -rf "$W/work/repo/snapshots/$snap1" "$W/replica/work/repo/snapshots/$snap1" "$W/work/metadata/snapshots/$snap1"
run_pipeline republish "snapshot: $snap1"
expect_jobs republish verify publish-snapshot publish-inventory publish-catalog
check published "$snap1"
check catalog "$snap1"
check inventory "$snap2" "$snap1"

# 4. Publish all: the whole public tree is rebuilt from the ZFS snapshots
# (their verify reports stay: publish-snapshot --all publishes verified ones).
rm -rf "$W/work/repo" "$W/work/metadata/inventory.json"
find "$W/work/metadata" -name repo_catalog.json -delete
run_pipeline publish-all 'publish_all: true'
expect_jobs publish-all publish-snapshot publish-inventory publish-catalog
check published "$snap1"
check published "$snap2"
check inventory "$snap2" "$snap1"
check catalog "$snap1"
check catalog "$snap2"

# 5. Rebuild catalogs: inventory and every catalog from what is published
# (after they were deleted; the verify reports stay, as in run 4).
rm -f "$W/work/metadata/inventory.json"
find "$W/work/metadata" -name repo_catalog.json -delete
run_pipeline catalog-rebuild 'catalog_rebuild: true'
expect_jobs catalog-rebuild publish-inventory publish-catalog
check inventory "$snap2" "$snap1"
check catalog "$snap1"
check catalog "$snap2"

# 6. A nightly run whose syncer loses a package after writing its index: the
# pipeline stops at verify, nothing new is published or replicated, and the
# JUnit report names the file.
published_before=$(ls "$W/work/repo/snapshots" | sort | tr '\n' ' ')
find "$proj" -name mirrorer-verify.xml -delete
echo "e2e/apt pool/main/hello_2.10-3_amd64.deb" > "$W/docker-state/delete-after-sync"
run_failing_pipeline broken-sync
rm -f "$W/docker-state/delete-after-sync"
out="$W/log/gcl-broken-sync.txt"
grep -qE '^ FAIL  (\[mirrorer:run:e2e\] -> )?verify( |$)' "$out" || { cat "$out" >&2; fail "broken-sync: verify did not fail"; }
for job in replicate publish-snapshot publish-inventory publish-catalog promote cleanup-state; do
  if grep -qE "^	\[mirrorer:run:e2e\] -> $job +starting" "$out"; then fail "broken-sync: $job ran after a failed verify"; fi
done
snap3=$(snapshots | tail -n 1)
[ "$snap3" != "$snap2" ] || fail "broken-sync: no new snapshot"
[ "$(ls "$W/work/repo/snapshots" | sort | tr '\n' ' ')" = "$published_before" ] || fail "broken-sync: the published tree changed"
[ -z "$(snapshots_of "$replica_dataset" | grep -x "$snap3")" ] || fail "broken-sync: $snap3 was replicated"
grep -q '"status": "failed"' "$W/work/metadata/snapshots/$snap3/verify.json" || fail "broken-sync: verify.json is not failed"
junit=$(find "$proj" -name mirrorer-verify.xml -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
[ -n "$junit" ] || fail "broken-sync: no mirrorer-verify.xml kept"
grep -q 'missing debian/pool/main/hello_2.10-3_amd64.deb' "$junit" || { cat "$junit" >&2; fail "broken-sync: the JUnit report does not name the lost file"; }

# 7. Two shards in one parent pipeline (issue 16): the include twice, once
# per shard, each with its own config and workdir; both children run
# (publish all, without the replica: publish-snapshot --all,
# publish-inventory, publish-catalog --rebuild) and finish. Both shards
# publish the snapshots of the same dataset, so their inventories match.
# --shell-isolation gives each job its own build directory, as GitLab does:
# without it the two generate jobs would write the same mirrorer-child.yml.
# gitlab-ci-local still names a child job's build directory after the job
# alone, so the two children's `publish-catalog` jobs would copy into the
# same directory at once (rsync exit 23 in rsyncTrackedFiles);
# --concurrency 1 runs one job at a time. GitLab runs the children in
# parallel on their own runners.
mkdir -p "$W/work-b"
# The second shard publishes the same dataset's snapshots; it needs their
# verify reports for publish-snapshot's gate (the first shard's, copied:
# the same snapshots; the failed report of the broken-sync run keeps that
# snapshot unpublished on both).
for report in "$W"/work/metadata/snapshots/*/verify.json; do
  rel=${report#"$W/work/"}
  mkdir -p "$W/work-b/$(dirname "$rel")"
  cp "$report" "$W/work-b/$rel"
done
sed -e "s|workdir: $W/work\$|workdir: $W/work-b|" -e "s|config_path: $W/dist-mirror.yaml|config_path: $W/dist-mirror-b.yaml|" \
  "$W/dist-mirror.yaml" > "$W/dist-mirror-b.yaml"
grep -q "workdir: $W/work-b" "$W/dist-mirror-b.yaml" || fail "two-shards: could not write the second shard's config"
ln -s mirrorerOggenerateOge2eb "$proj/.gitlab-ci-local/artifacts/mirrorer:generate:e2eb"
{
  echo "include:"
  for shard in e2e e2eb; do
    config="$W/dist-mirror.yaml"; [ "$shard" = e2e ] || config="$W/dist-mirror-b.yaml"
    echo "  - local: ci/mirrorer.gitlab-ci.yml"
    echo "    inputs:"
    echo "      shard: $shard"
    echo "      runner_tag: dist-mirror-e2e"
    echo "      config: $config"
    echo "      mirrorer: $bin"
    echo "      publish_all: true"
    echo "      skip_remote: true"
  done
} > "$proj/.gitlab-ci.yml"
git -C "$proj" add -A >/dev/null
git -C "$proj" -c user.email=e2e@example.org -c user.name=e2e commit -q -m two-shards --allow-empty
say "run: two-shards"
out="$W/log/gcl-two-shards.txt"
if ! (cd "$proj" && PATH="$W/path:$PATH" GCL_IGNORE_PREDEFINED_VARS=CI_PIPELINE_SOURCE \
      "$gcl" --shell-executor-no-image --shell-isolation --concurrency 1 --color=false >"$out" 2>&1); then
  cat "$out" >&2
  fail "two-shards: gitlab-ci-local failed"
fi
sed -i 's/\x1b\[[0-9;]*m//g' "$out"
if grep -q '^ FAIL ' "$out"; then
  cat "$out" >&2
  fail "two-shards: failed jobs: $(grep '^ FAIL ' "$out" | tr -s ' ' | tr '\n' ';')"
fi
for shard in e2e e2eb; do
  grep -qE "^ PASS  mirrorer:generate:$shard( |$)" "$out" || { cat "$out" >&2; fail "two-shards: mirrorer:generate:$shard did not pass"; }
  for job in publish-snapshot publish-inventory publish-catalog; do
    grep -qE "^	\[mirrorer:run:$shard\] -> $job +starting" "$out" \
      || { cat "$out" >&2; fail "two-shards: $job of shard $shard did not run"; }
  done
done
cmp -s "$W/work/metadata/inventory.json" "$W/work-b/metadata/inventory.json" \
  || fail "two-shards: the second shard's inventory.json differs from the first's (same tree)"
for snap in "$snap1" "$snap2"; do
  [ -f "$W/work-b/metadata/snapshots/$snap/repo_catalog.json" ] \
    || fail "two-shards: the second shard has no catalog of $snap"
done

# 8. Retention (issue 13): after the nightly runs above (snap1, snap2, and
# snap3 whose verify failed), a nightly run with `retention: {keep_last: 2}`
# and a GitLab environment: it promotes its new snapshot snap4, then prune
# keeps snap4 (promoted, served by current, newest verified) and snap3
# (keep_last) and destroys snap1 and snap2: their published trees (local and
# replica), their metadata and the ZFS snapshots on both pools. `current`
# still resolves.
cat >> "$W/dist-mirror.yaml" <<YAML
retention:
  keep_last: 2
YAML
sed -i "s|^pipeline:|pipeline:\n  environment: {name: mirror/e2e, url: \"https://e2e.example/repo/current/\"}|" "$W/dist-mirror.yaml"
grep -q "name: mirror/e2e" "$W/dist-mirror.yaml" || fail "retention: could not add the environment to the config"
sleep 1
run_pipeline retention
expect_jobs retention "${nightly_jobs[@]}" prune
snap4=$(snapshots | tail -n 1)
[ "$snap4" != "$snap3" ] || fail "retention: no new snapshot"
[ "$(snapshots | tr '\n' ' ')" = "$snap3 $snap4 " ] \
  || fail "retention: ZFS snapshots [$(snapshots | tr '\n' ' ')], expected [$snap3 $snap4]"
check_replica retention
[ "$(readlink "$W/work/repo/current")" = "snapshots/$snap4" ] || fail "retention: current does not point at $snap4"
[ -d "$W/work/repo/current/" ] || fail "retention: current does not resolve"
[ -d "$W/replica/work/repo/current/" ] || fail "retention: the replica's current does not resolve"
for snap in "$snap1" "$snap2"; do
  for dir in "$W/work/repo/snapshots/$snap" "$W/replica/work/repo/snapshots/$snap" "$W/work/metadata/snapshots/$snap"; do
    [ ! -e "$dir" ] || fail "retention: $dir was not pruned"
  done
  grep -q "prune_destroy snapshot=$snap" "$W/log/gcl-retention.txt" || fail "retention: no prune_destroy of $snap"
done
grep -q "prune_keep snapshot=$snap4 why=promoted" "$W/log/gcl-retention.txt" || fail "retention: $snap4 not kept as promoted"
check inventory "$snap4"
grep -q '"snapshot": "'"$snap4"'"' "$W/work/metadata/promotions.json" || fail "retention: promotions.json does not list $snap4"

say "all runs passed: nightly, sync-one, republish, publish-all, catalog-rebuild, broken-sync, two-shards, retention"
echo "e2e: 8 passed, 0 failed"
