#!/usr/bin/env bash
# `report --html` renders in headless Chromium (Debian's package, installed here on first use):
# a generated folder's report is screenshotted, and the PNG must have the asked size and not
# be blank (more than a handful of distinct colours). Prints the PNG's path for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi ipa; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null
fi
out=target/report-html
rm -rf "$out" && mkdir -p "$out"
cargo run --quiet --example gen_flow -- --out "$out/mail" --messages 1500 --seed 11 --days 2 --gzip
cargo run --quiet -- report --html "$out/report.html" "$out/mail"
# self-contained: no script, no external URL (the SVG namespace is not fetched)
if grep -Eo '(src|href)="[^"]*"|<script|url\(' "$out/report.html" | grep -v '^$' >/dev/null; then
  echo "report.html refers to something outside itself"; exit 1
fi
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2400 \
  --screenshot="$out/report.png" "file://$PWD/$out/report.html" >/dev/null 2>&1
python3 - "$out/report.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1280, 2400), f"size {w}x{h}"
# decode the IDAT stream far enough to count colours (8-bit RGB/RGBA, no interlace)
pos, idat, depth, ctype = 8, b"", data[24], data[25]
while pos < len(data):
    n, = struct.unpack(">I", data[pos:pos+4]); kind = data[pos+4:pos+8]
    if kind == b"IDAT": idat += data[pos+8:pos+8+n]
    pos += 12 + n
raw = zlib.decompress(idat)
bpp = {2: 3, 6: 4}[ctype]
stride = w * bpp + 1
colours = set()
for y in range(0, h, 7):
    row = raw[y*stride+1:(y+1)*stride]   # filter bytes make this approximate; enough for "not blank"
    for x in range(0, w*bpp, bpp*5):
        colours.add(row[x:x+3])
assert len(colours) > 8, f"blank screenshot ({len(colours)} colours)"
print(f"report.png {w}x{h}, {len(colours)} sampled colours")
PY
echo "$out/report.png"
