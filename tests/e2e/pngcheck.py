# Reads an 8-bit RGB or RGBA PNG with zlib and numpy (the five scanline filters undone here) and
# prints a JSON summary: width, height, the share of pixels that are not white, the number of
# distinct colours and how many pixels lie within 40 of each colour given as #rrggbb arguments. The end-to-end tests judge screenshots and --png files with it.
# usage: pngcheck.py FILE [#rrggbb...]
import json
import struct
import sys
import zlib

import numpy as np


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG file")
    at, idat, head = 8, b"", None
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    w, h, depth, colour = head[:4]
    if depth != 8 or colour not in (2, 6):
        raise SystemExit(f"{path}: only 8-bit RGB or RGBA (depth {depth}, colour type {colour})")
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    img = np.zeros((h, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        if f == 1:  # sub: a running sum per channel
            line = line.reshape(-1, bpp).cumsum(axis=0).reshape(-1) % 256
        elif f == 2:
            line = (line + prev) % 256
        elif f in (3, 4):  # average and Paeth depend on the byte just undone: plain lists
            cur, up = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = up[i]
                if f == 3:
                    cur[i] = (cur[i] + (a + b) // 2) & 255
                    continue
                c = up[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            line = np.array(cur, dtype=np.int64)
        img[y] = line
        prev = line
    return w, h, img.reshape(h, w, bpp)[:, :, :3]


def main():
    w, h, px = read_png(sys.argv[1])
    flat = px.reshape(-1, 3)
    targets = [[int(t[i:i + 2], 16) for i in (1, 3, 5)] for t in sys.argv[2:]]
    hits = [int((np.abs(flat - np.array(t)).max(axis=1) <= 40).sum()) for t in targets]
    non_white = float((flat != 255).any(axis=1).mean())
    colours = len(np.unique(flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]))
    print(json.dumps({"width": w, "height": h, "non_white": non_white, "colours": colours,
                      "hits": hits}))


main()
