#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""corrupt.py STREAM OUTDIR [MAX]: write variants of STREAM, each with one
byte of one command flipped (every byte of the first commands, then a
spread over the rest), or cut short at command boundaries and inside
commands.  Prints the file names, one per line."""
import os
import struct
import sys

MAGIC = b"btrfs-stream\0"


def command_spans(data):
    pos = 0
    spans = []
    while pos < len(data):
        if data.startswith(MAGIC, pos):
            pos += 17
            continue
        length, = struct.unpack_from("<I", data, pos)
        spans.append((pos, pos + 10 + length))
        pos += 10 + length
    return spans


def main():
    data = open(sys.argv[1], "rb").read()
    out = sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    spans = command_spans(data)
    positions = []
    for start, end in spans[:4]:
        positions += range(start, end)
    rest = [p for s, e in spans[4:] for p in (s, s + 4, s + 6, s + 10, e - 1)
            if p < e]
    positions += rest[::max(1, len(rest) // limit)]
    for p in positions[:limit * 2]:
        name = os.path.join(out, "flip-%d" % p)
        buf = bytearray(data)
        buf[p] ^= 0x55
        open(name, "wb").write(buf)
        print(name)
    cuts = sorted({s for s, _ in spans[1:]} | {(s + e) // 2 for s, e in spans}
                  | {s + 5 for s, _ in spans} | {5, 16})
    for c in cuts[::max(1, len(cuts) // limit)]:
        name = os.path.join(out, "cut-%d" % c)
        open(name, "wb").write(data[:c])
        print(name)


if __name__ == "__main__":
    main()
