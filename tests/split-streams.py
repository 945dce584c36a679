#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Split concatenated send streams (as 'btrfs send a b' writes them) into
one file per stream: OUTPREFIX.0, OUTPREFIX.1, ...  Prints the count.
Only framing is read; nothing is validated."""
import struct
import sys

MAGIC = b"btrfs-stream\0"


def main():
    data = open(sys.argv[1], "rb").read()
    prefix = sys.argv[2]
    starts = []
    pos = 0
    while pos < len(data):
        if data.startswith(MAGIC, pos):
            starts.append(pos)
            pos += 17
            continue
        length, = struct.unpack_from("<I", data, pos)
        pos += 10 + length
    starts.append(len(data))
    for i in range(len(starts) - 1):
        with open("%s.%d" % (prefix, i), "wb") as f:
            f.write(data[starts[i]:starts[i + 1]])
    print(len(starts) - 1)


if __name__ == "__main__":
    main()
