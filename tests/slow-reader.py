#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""slow-reader.py RATE_MB OUT: copy stdin to OUT at most RATE_MB MB/s, in
reads of 64 KiB, so that a writer into the pipe finds it full most of the
time (the case in which a stopped sender's send ioctl restarts)."""
import os
import sys
import time

rate = float(sys.argv[1]) * 1e6
out = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
start, total = time.monotonic(), 0
while True:
    b = os.read(0, 65536)
    if not b:
        break
    os.write(out, b)
    total += len(b)
    ahead = total / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
