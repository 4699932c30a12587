#!/usr/bin/env python3
"""Draws Kopilka's sample sticker packs (CC0) with the standard library only.

Each pack is a folder in exactly the layout an archive upload takes: `pack.toml` and the
images it names. Run from anywhere: `python3 sticker-packs/generate.py`; the output is
deterministic, so the committed files are what it draws.
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 320  # drawn on a transparent canvas with a margin; Kopilka normalises to 512


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def raw_rows(pixels):
    return b"".join(b"\x00" + bytes(row) for row in pixels)


def ihdr(w, h):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))


def png(pixels):
    h, w = len(pixels), len(pixels[0]) // 4
    return (b"\x89PNG\r\n\x1a\n" + ihdr(w, h)
            + chunk(b"IDAT", zlib.compress(raw_rows(pixels), 9)) + chunk(b"IEND", b""))


def apng(frames, delay_ms):
    h, w = len(frames[0]), len(frames[0][0]) // 4
    out = [b"\x89PNG\r\n\x1a\n", ihdr(w, h), chunk(b"acTL", struct.pack(">II", len(frames), 0))]
    seq = 0
    for i, pixels in enumerate(frames):
        out.append(chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, delay_ms, 1000, 0, 0)))
        seq += 1
        data = zlib.compress(raw_rows(pixels), 9)
        if i == 0:
            out.append(chunk(b"IDAT", data))
        else:
            out.append(chunk(b"fdAT", struct.pack(">I", seq) + data))
            seq += 1
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


def canvas():
    return [[0] * (SIZE * 4) for _ in range(SIZE)]


def disc(px, cx, cy, r, rgba):
    for y in range(max(0, int(cy - r) - 1), min(SIZE, int(cy + r) + 2)):
        row = px[y]
        for x in range(max(0, int(cx - r) - 1), min(SIZE, int(cx + r) + 2)):
            # Anti-aliased edge: coverage from the distance to the circle.
            cover = max(0.0, min(1.0, r - math.hypot(x + 0.5 - cx, y + 0.5 - cy) + 0.5))
            if cover > 0:
                a = int(rgba[3] * cover)
                base = row[x * 4 + 3]
                if a >= base:
                    row[x * 4:x * 4 + 4] = [rgba[0], rgba[1], rgba[2], a]


def face(hue, mood, blink=0.0):
    px = canvas()
    c = SIZE / 2
    disc(px, c, c, SIZE * 0.4, hue + (255,))
    eye = max(2.0, SIZE * 0.04 * (1 - blink))
    for dx in (-1, 1):
        disc(px, c + dx * SIZE * 0.14, c - SIZE * 0.08, eye, (30, 30, 40, 255))
    for i in range(21):  # the mouth: a row of dots along a smile or a frown
        t = (i - 10) / 10
        disc(px, c + t * SIZE * 0.16, c + SIZE * 0.14 + mood * (1 - t * t) * SIZE * 0.08,
             SIZE * 0.015, (30, 30, 40, 255))
    return px


def weather(kind):
    px = canvas()
    c = SIZE / 2
    if kind == "sun":
        for i in range(12):
            a = i * math.pi / 6
            disc(px, c + math.cos(a) * SIZE * 0.33, c + math.sin(a) * SIZE * 0.33, SIZE * 0.04, (255, 190, 0, 255))
        disc(px, c, c, SIZE * 0.22, (255, 210, 40, 255))
    else:
        for dx, dy, r in ((-0.12, 0.02, 0.15), (0.1, -0.04, 0.19), (0.25, 0.05, 0.12), (-0.27, 0.07, 0.1)):
            disc(px, c + dx * SIZE, c + dy * SIZE, r * SIZE, (200, 210, 225, 255))
        if kind == "rain":
            for i in range(5):
                disc(px, c + (i - 2) * SIZE * 0.1, c + SIZE * 0.3, SIZE * 0.025, (40, 120, 255, 255))
        if kind == "snow":
            for i in range(5):
                disc(px, c + (i - 2) * SIZE * 0.1, c + SIZE * 0.3 + (i % 2) * 10, SIZE * 0.03, (250, 250, 255, 255))
    return px


def write(folder, files, manifest):
    path = os.path.join(HERE, folder)
    os.makedirs(path, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    with open(os.path.join(path, "pack.toml"), "w", encoding="utf-8") as f:
        f.write(manifest)


def main():
    moods = [("😊", 1.0), ("😐", 0.0), ("😢", -1.0), ("😄", 1.6)]
    files = {f"{i + 1:02}.png": png(face((255, 200, 90), m)) for i, (_, m) in enumerate(moods)}
    write("faces", files, """title = "Kopilka Faces"
description = "Four moods, free for everyone."
kind = "static"
tags = ["faces", "free"]
# No price_tier: a free pack.
cover = "01.png"

[locales.ja]
title = "コピルカの顔"
description = "四つの気分、だれでも無料。"
keywords = ["かお", "きもち"]

[locales.de]
title = "Kopilka-Gesichter"
keywords = ["Gesicht", "Laune"]
""" + "".join(f'\n[[stickers]]\nfile = "{i + 1:02}.png"\nemoji = "{e}"\n' for i, (e, _) in enumerate(moods)))

    kinds = [("sun", "☀️"), ("cloud", "☁️"), ("rain", "🌧️"), ("snow", "🌨️")]
    files = {f"{k}.png": png(weather(k)) for k, _ in kinds}
    write("weather", files, """title = "Weather Report"
description = "Sun, clouds, rain and snow."
kind = "static"
tags = ["weather"]
price_tier = "t1"
cover = "sun.png"

[locales.ja]
title = "お天気"
description = "晴れ、くもり、雨、雪。"
keywords = ["てんき", "あめ", "ゆき"]

[locales.th]
title = "พยากรณ์อากาศ"
keywords = ["ฝนตก"]
""" + "".join(f'\n[[stickers]]\nfile = "{k}.png"\nemoji = "{e}"\n' for k, e in kinds))

    blink = [0.0, 0.0, 0.5, 1.0, 0.5, 0.0]
    hues = [((120, 200, 255), "😉"), ((180, 255, 140), "😌"), ((255, 160, 200), "🥰")]
    files = {f"{i + 1:02}.png": apng([face(h, 1.0, b) for b in blink], 150) for i, (h, _) in enumerate(hues)}
    write("blink", files, """title = "Blink"
description = "Faces that blink (animated)."
kind = "animated"
tags = ["faces", "animated"]
price_tier = "t2"
cover = "01.png"

[locales.ja]
title = "まばたき"
keywords = ["ウインク"]
""" + "".join(f'\n[[stickers]]\nfile = "{i + 1:02}.png"\nemoji = "{e}"\n' for i, (_, e) in enumerate(hues)))


if __name__ == "__main__":
    main()
