#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/seeds/<target>/ (stdlib only, deterministic).

usage: python3 fuzz/seeds.py
The seeds are committed; bench/fuzz.sh hands them to libFuzzer read-only (what it finds goes to
fuzz/corpus/<target>/, ignored by git). Each seed is small and *valid*, so the fuzzer starts deep
in the code under test instead of at the magic bytes: the default rules want a longest side of
at least 64 px, a transparent 1-px border, and 5-20 frames for an animation.
"""
import io
import json
import os
import struct
import zipfile
import zlib

import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import make_upload_attacks as _corpus  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))
SIDE = 64


def save(target, name, data):
    folder = os.path.join(ROOT, "seeds", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def inside(x, y, side=SIDE):
    c, r = side / 2, side * 0.4
    return (x + 0.5 - c) ** 2 + (y + 0.5 - c) ** 2 < r * r


# ---------------------------------------------------------------- PNG / APNG

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def ihdr(w, h, depth=8, colour=6, interlace=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))


def rgba(x, y, colour):
    return bytes(colour) if inside(x, y) else bytes(4)


def rows(w, h, pixel, xs=None, ys=None):
    """Scanlines (filter byte 0) of the pixels at columns `xs` and rows `ys`."""
    xs = list(range(w)) if xs is None else xs
    ys = list(range(h)) if ys is None else ys
    out = bytearray()
    for y in ys:
        out.append(0)
        for x in xs:
            out += pixel(x, y)
    return bytes(out)


def png_rgba(colour=(200, 80, 40, 255)):
    data = rows(SIDE, SIDE, lambda x, y: rgba(x, y, colour))
    return SIGNATURE + ihdr(SIDE, SIDE) + chunk(b"IDAT", zlib.compress(data, 9)) + chunk(b"IEND", b"")


def png_palette():
    """Colour type 3, 2 bits a pixel, with a tRNS making entry 0 transparent."""
    out = bytearray()
    for y in range(SIDE):
        out.append(0)
        for x in range(0, SIDE, 4):
            byte = 0
            for i in range(4):
                byte = byte << 2 | ((1 + (x + i + y) % 3) if inside(x + i, y) else 0)
            out.append(byte)
    plte = bytes((0, 0, 0, 230, 60, 60, 60, 200, 60, 60, 60, 230))
    return (
        SIGNATURE
        + ihdr(SIDE, SIDE, depth=2, colour=3)
        + chunk(b"PLTE", plte)
        + chunk(b"tRNS", b"\x00")
        + chunk(b"IDAT", zlib.compress(bytes(out), 9))
        + chunk(b"IEND", b"")
    )


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_interlaced():
    """Adam7, RGBA8: seven reduced images one after another in the IDAT stream."""
    data = bytearray()
    for x0, y0, dx, dy in ADAM7:
        xs, ys = list(range(x0, SIDE, dx)), list(range(y0, SIDE, dy))
        if xs and ys:
            data += rows(SIDE, SIDE, lambda x, y: rgba(x, y, (40, 90, 220, 255)), xs, ys)
    return (
        SIGNATURE
        + ihdr(SIDE, SIDE, interlace=1)
        + chunk(b"tEXt", b"Comment\x00fuzz seed")
        + chunk(b"IDAT", zlib.compress(bytes(data), 9))
        + chunk(b"IEND", b"")
    )


def fctl(seq, w, h, x, y, num, den, dispose=0, blend=0):
    return chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, x, y, num, den, dispose, blend))


def apng(frames=5):
    """`frames` frames of 100 ms: the full first, then 16x16 patches blended over it."""
    out = [SIGNATURE, ihdr(SIDE, SIDE), chunk(b"acTL", struct.pack(">II", frames, 0))]
    out.append(fctl(0, SIDE, SIDE, 0, 0, 1, 10))
    out.append(chunk(b"IDAT", zlib.compress(rows(SIDE, SIDE, lambda x, y: rgba(x, y, (200, 80, 40, 255))), 9)))
    seq = 1
    for i in range(1, frames):
        patch = rows(16, 16, lambda x, y: bytes((40 * i, 200, 40, 255)))
        out.append(fctl(seq, 16, 16, 24, 24, 1, 10, dispose=i % 3, blend=i % 2))
        out.append(chunk(b"fdAT", struct.pack(">I", seq + 1) + zlib.compress(patch, 9)))
        seq += 2
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


# ---------------------------------------------------------------- WebP (lossless VP8L)


# The VP8L bit writer the attack corpus uses (one copy of it).
Bits = _corpus.Bits


def simple_code(bits, symbols):
    """A 'simple' prefix code of one or two (8-bit) symbols."""
    bits.put(1, 1)
    bits.put(len(symbols) - 1, 1)
    bits.put(1, 1)
    bits.put(symbols[0], 8)
    if len(symbols) == 2:
        bits.put(symbols[1], 8)


def vp8l(w, h, on=lambda x, y: inside(x, y), green=255):
    """Opaque green where `on`, transparent elsewhere: one bit for green, one for alpha."""
    bits = Bits()
    bits.put(0x2F, 8)
    bits.put(w - 1, 14)
    bits.put(h - 1, 14)
    bits.put(1, 1)  # alpha used
    bits.put(0, 3)  # version
    bits.put(0, 1)  # no transform
    bits.put(0, 1)  # no colour cache
    bits.put(0, 1)  # no meta prefix codes
    simple_code(bits, [0, green])  # green (and length prefixes)
    simple_code(bits, [0])  # red
    simple_code(bits, [0])  # blue
    simple_code(bits, [0, 255])  # alpha
    simple_code(bits, [0])  # distance
    for y in range(h):
        for x in range(w):
            b = 1 if on(x, y) else 0
            bits.put(b, 1)
            bits.put(b, 1)
    return bits.bytes()


riff_chunk, webp = _corpus.riff_chunk, _corpus.webp


def le24(v):
    return v.to_bytes(3, "little")


def webp_static():
    return webp(riff_chunk(b"VP8L", vp8l(SIDE, SIDE)))


def webp_animated(frames=5):
    """VP8X (animation + alpha) canvas, ANIM, and `frames` ANMF frames of 100 ms."""
    out = [
        riff_chunk(b"VP8X", bytes((0x12, 0, 0, 0)) + le24(SIDE - 1) + le24(SIDE - 1)),
        riff_chunk(b"ANIM", struct.pack("<IH", 0, 0)),
    ]
    for i in range(frames):
        side = SIDE if i == 0 else 16
        at = 0 if i == 0 else 24
        bitstream = riff_chunk(b"VP8L", vp8l(side, side, (lambda x, y: inside(x, y)) if i == 0 else (lambda x, y: (x + y + i) % 2 == 0), 255 - 30 * i))
        flags = 0 if i % 2 else 0x02  # alternate blending, no disposal
        header = le24(at // 2) + le24(at // 2) + le24(side - 1) + le24(side - 1) + le24(100) + bytes((flags,))
        out.append(riff_chunk(b"ANMF", header + bitstream))
    return webp(*out)


# ---------------------------------------------------------------- archives

STAMP = (2024, 1, 1, 0, 0, 0)


def archive(entries):
    """A ZIP of (name, bytes, method) entries with fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data, method in entries:
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = method
            info.external_attr = (0o40755 << 16 | 0x10) if name.endswith("/") else 0o100644 << 16
            z.writestr(info, data)
    return buffer.getvalue()


D, S = zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED

TOML = """title = "Seed"
description = "A pack for the fuzzer"
kind = "static"
tags = ["cats", "seed"]
cover = "02.webp"

[[stickers]]
file = "01.png"
emoji = "\U0001F600"

[[stickers]]
file = "02.webp"
emoji = "\U0001F431"
""".encode()

JSON = json.dumps(
    {
        "title": "Seed animated",
        "kind": "animated",
        "price_tier": "tier1",
        "stickers": [{"file": "a.png", "emoji": "\U0001F389"}],
    }
).encode()


def main():
    t = "sticker_image"
    save(t, "static.png", png_rgba())
    save(t, "palette.png", png_palette())
    save(t, "interlaced.png", png_interlaced())
    save(t, "animated.png", apng())
    save(t, "static.webp", webp_static())
    save(t, "animated.webp", webp_animated())

    a = "pack_archive"
    save(a, "toml.zip", archive([("pack.toml", TOML, D), ("01.png", png_rgba(), D), ("02.webp", webp_static(), S)]))
    save(a, "json.zip", archive([("pack.json", JSON, S), ("a.png", apng(), D)]))
    save(
        a,
        "extras.zip",
        archive(
            [
                ("__MACOSX/", b"", S),
                ("__MACOSX/._01.png", b"\x00\x05\x16\x07", S),
                (".DS_Store", b"\x00\x00\x00\x01Bud1", S),
                ("pack.toml", TOML.replace(b'cover = "02.webp"\n', b""), D),
                ("01.png", png_palette(), D),
                ("02.webp", webp_static(), D),
            ]
        ),
    )


if __name__ == "__main__":
    main()
