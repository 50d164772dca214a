#!/usr/bin/env python3
"""Checks of ci/e2e-gitlab-ci-local.sh on the files the pipelines left.

usage: check.py W published SNAP | inventory LATEST [OTHER...] |
                  catalog SNAP | state-cleaned
W is the scratch directory of the run (mirror/, work/, replica/).
Exits 1 with a message naming what is wrong.
"""
import json
import os
import sys

PREFIXES = {
    "debian": "apt/mirror/debian.mirror.example",
    "centos": "dnf/repos/centos",
    "epel": "rsync/epel",
}


def fail(msg):
    print(f"check.py: {msg}", file=sys.stderr)
    sys.exit(1)


def canonical(path):
    """Reads a JSON document and checks it is written as mirrorer writes
    every document: sorted keys, 2-space indent, UTF-8, one newline."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    doc = json.loads(text)
    want = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if text != want:
        fail(f"{path} is not in the canonical JSON rendering")
    return doc


def published(w, snap):
    for side in ("work", "replica/work"):
        root = os.path.join(w, side, "repo", "snapshots", snap)
        if not os.path.isdir(root):
            fail(f"{root} is missing")
        names = sorted(os.listdir(root))
        if names != sorted(PREFIXES):
            fail(f"{root} holds {names}, expected {sorted(PREFIXES)}")
        for prefix, source in PREFIXES.items():
            link = os.path.join(root, prefix)
            if not os.path.islink(link):
                fail(f"{link} is not a symlink")
            target = os.readlink(link)
            want = os.path.join(w, "mirror", ".zfs", "snapshot", snap, source)
            if target != want:
                fail(f"{link} -> {target}, expected {want}")
            if not os.path.isdir(link):
                fail(f"{link} does not lead to a directory")


def inventory(w, latest, others):
    doc = canonical(os.path.join(w, "work", "metadata", "inventory.json"))
    if doc.get("schema") != "dist-mirror.inventory.v1":
        fail(f"inventory schema is {doc.get('schema')!r}")
    if doc.get("latest") != latest:
        fail(f"inventory latest is {doc.get('latest')!r}, expected {latest!r}")
    snaps = sorted([latest] + others)
    by_snap = doc.get("prefixes_by_snapshot", {})
    if sorted(by_snap) != snaps:
        fail(f"inventory lists {sorted(by_snap)}, expected {snaps}")
    for snap in snaps:
        if by_snap[snap] != sorted(PREFIXES):
            fail(f"inventory prefixes of {snap}: {by_snap[snap]}")


def catalog(w, snap):
    path = os.path.join(w, "work", "metadata", "snapshots", snap, "repo_catalog.json")
    doc = canonical(path)
    if doc.get("schema") != "dist-mirror.repo-catalog.v1":
        fail(f"{path}: schema is {doc.get('schema')!r}")
    if doc.get("formats") != ["apt", "apt-rpm", "rpm"]:
        fail(f"{path}: formats {doc.get('formats')}")
    if not doc.get("scan_root", "").endswith(f"/repo/snapshots/{snap}"):
        fail(f"{path}: scan_root {doc.get('scan_root')!r}")
    repos = doc.get("repositories", [])
    for kind, prefix in (("apt", "debian"), ("rpm", "centos"), ("rpm", "epel")):
        found = [r for r in repos if r.get("type") == kind and r.get("prefix") == prefix]
        if not found:
            fail(f"{path}: no {kind} repository under {prefix}")
        # The fixtures also hold deliberately broken repositories (a tampered
        # or missing primary); at least one per prefix is whole.
        if not any(r.get("status") == "ok" for r in found):
            fail(f"{path}: no {kind} repository under {prefix} has status ok")
    if not any(r.get("prefix") == "debian" for r in doc.get("apt_releases", [])):
        fail(f"{path}: no APT release of debian")


def state_cleaned(w):
    state = os.path.join(w, "work", "state")
    if os.path.exists(os.path.join(state, "current_snapshot.txt")):
        fail("state/current_snapshot.txt is still there after cleanup-state")
    av = os.path.join(state, "av_state")
    if not os.path.isdir(av) or os.listdir(av):
        fail("state/av_state/ is not an empty directory after cleanup-state")


def main(argv):
    if len(argv) < 3:
        fail(__doc__)
    w, what, args = argv[1], argv[2], argv[3:]
    if what == "published" and len(args) == 1:
        published(w, args[0])
    elif what == "inventory" and args:
        inventory(w, args[0], args[1:])
    elif what == "catalog" and len(args) == 1:
        catalog(w, args[0])
    elif what == "state-cleaned" and not args:
        state_cleaned(w)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
