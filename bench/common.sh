# Shared by bench/catalog.sh and bench/verify.sh: sourced (not run) once
# REPO, BENCH_DIR and ROOT are set.

# BENCH_DIR is removed at the end unless KEEP=1.
cleanup() { if [ "${KEEP:-0}" != 1 ]; then rm -rf "$BENCH_DIR"; fi; }
trap cleanup EXIT

# Sets BIN to the binary $1 when one is given, else to a release build made here.
release_binary() {
    if [ -n "${1:-}" ]; then
        BIN=$1
    else
        echo "== building the release binary"
        (cd "$REPO" && cargo build --release --quiet)
        BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/mirrorer"
    fi
}

# True, after saying so, when REUSE=1 and the tree ROOT exists.
reusing_tree() {
    if [ "${REUSE:-0}" = 1 ] && [ -d "$ROOT" ]; then
        echo "== reusing the tree in $ROOT"
    else
        return 1
    fi
}
