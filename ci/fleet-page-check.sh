#!/usr/bin/env bash
# The fleet page rendered by a real browser (issue 16): `mirrorer fleet
# collect` against two local shards (python3's http.server serving metadata
# made here: one fresh, one stale, one port where nothing answers), then
# headless Chromium (Debian's `chromium` package) loads the generated
# index.html from disk with networking off, and this script checks
#   - the DOM Chromium built (--dump-dom) has the table, a row per shard, a
#     header per prefix, fresh and stale cells, and no unescaped markup from
#     a shard;
#   - the screenshot (--screenshot) is a PNG of the window size asked for.
# Nothing is compared with a stored picture: the check is the project's own.
#
# Usage: MIRRORER_BIN=target/debug/mirrorer ci/fleet-page-check.sh
# (CHROMIUM overrides the browser program; default: chromium. FLEET_PAGE_KEEP=FILE
# keeps a copy of the screenshot for a person to look at.)
# Run as root (CI): Chromium's sandbox needs user namespaces, so it runs
# with --no-sandbox, on a page this script generated.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${MIRRORER_BIN:-target/debug/mirrorer}
chromium=${CHROMIUM:-chromium}
command -v "$chromium" >/dev/null || { echo "fleet-page-check: $chromium is not installed (Debian package chromium)" >&2; exit 1; }
[ -x "$bin" ] || { echo "fleet-page-check: $bin is not an executable mirrorer" >&2; exit 1; }

work=$(mktemp -d /tmp/mirrorer-fleet-page.XXXXXX)
server_pid=''
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "${FLEET_PAGE_KEEP:-}" ]; then cp "$work/page.png" "$FLEET_PAGE_KEEP" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
old=$(date -u -d '-10 days' +%Y-%m-%dT%H:%M:%SZ)
shard() { # name latest created prefixes-json
  mkdir -p "$work/www/$1/metadata"
  printf '{"schema": "dist-mirror.inventory.v1", "latest": "%s", "prefixes_by_snapshot": {"%s": %s}}\n' \
    "$2" "$2" "$4" > "$work/www/$1/metadata/inventory.json"
  printf '{"schema": "dist-mirror.status.v1", "shard": "%s", "snapshot": {"name": "%s", "created_at": "%s"}, "syncers": {}}\n' \
    "$1" "$2" "$3" > "$work/www/$1/metadata/status.json"
}
shard fresh01 20260603-120000 "$now" '["debian", "epel", "rpm"]'
shard stale02 20260520-120000 "$old" '["debian", "<img src=x onerror=alert(1)>"]'

# A static server on a free port; it writes the port to a file once bound.
python3 - "$work/www" "$work/port" <<'PY' &
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
handler = functools.partial(Quiet, directory=sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
PY
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat > "$work/fleet.yaml" <<YAML
shards:
  - {name: fresh01, metadata_url: "http://127.0.0.1:$port/fresh01/metadata/"}
  - {name: stale02, metadata_url: "http://127.0.0.1:$port/stale02/metadata/"}
  - {name: down03, metadata_url: "http://127.0.0.1:$closed/metadata/"}
fetch: {timeout_seconds: 5, retries: 0}
YAML
"$bin" fleet collect --fleet "$work/fleet.yaml" --output-dir "$work/pages"
page="$work/pages/index.html"

browse() {
  "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d "$work/profile.XXXXXX")" "$@" "file://$page"
}
browse --dump-dom > "$work/dom.html" 2> "$work/chromium-dom.log" \
  || { cat "$work/chromium-dom.log" >&2; echo "fleet-page-check: chromium --dump-dom failed" >&2; exit 1; }
browse --screenshot="$work/page.png" --window-size=1280,800 > "$work/chromium-shot.log" 2>&1 \
  || { cat "$work/chromium-shot.log" >&2; echo "fleet-page-check: chromium --screenshot failed" >&2; exit 1; }

python3 - "$work/dom.html" "$work/page.png" <<'PY'
import struct, sys
from html.parser import HTMLParser

class Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.rows, self.cells, self.imgs = 0, [], [], 0
        self.cur = None
        self.text = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "fleet": self.tables += 1
        if tag == "img": self.imgs += 1
        if tag == "script": raise SystemExit("fleet-page-check: the page has a <script>")
        if tag in ("th", "td"):
            self.cur = (tag, a.get("class", ""))
            self.text = ""
    def handle_data(self, data):
        if self.text is not None: self.text += data
    def handle_endtag(self, tag):
        if tag in ("th", "td") and self.cur:
            self.cells.append((self.cur[0], self.cur[1], self.text.strip()))
            self.cur, self.text = None, None

dom = open(sys.argv[1], encoding="utf-8").read()
p = Cells(); p.feed(dom)
problems = []
if p.tables != 1: problems.append(f"{p.tables} tables with id=fleet, want 1")
shards = [t for (tag, cls, t) in p.cells if tag == "th" and cls == "shard"]
if shards != ["fresh01", "stale02", "down03"]: problems.append(f"shard rows {shards}")
prefixes = [t for (tag, cls, t) in p.cells if tag == "th" and cls == "prefix"]
want = ["<img src=x onerror=alert(1)>", "debian", "epel", "rpm"]
if prefixes != want: problems.append(f"prefix headers {prefixes}, want {want}")
if p.imgs: problems.append("a shard's prefix name became an <img> element")
classes = [cls for (tag, cls, t) in p.cells if tag == "td"]
for cls in ("fresh", "stale", "absent", "down"):
    if cls not in classes: problems.append(f"no cell of class {cls}")
png = open(sys.argv[2], "rb").read()
if len(png) < 1000 or png[:8] != b"\x89PNG\r\n\x1a\n":
    problems.append(f"screenshot is not a PNG ({len(png)} bytes)")
else:
    w, h = struct.unpack(">II", png[16:24])
    if (w, h) != (1280, 800): problems.append(f"screenshot is {w}x{h}, want 1280x800")
if problems:
    sys.exit("fleet-page-check: " + "; ".join(problems))
print(f"fleet-page-check: ok: {len(shards)} shards x {len(prefixes)} prefixes rendered, screenshot {len(png)} bytes")
PY
