#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Run a shell command on a pseudo-terminal and read the screen.

  pty-screen.py run COLS RAW -- COMMAND...
      Run COMMAND (with bash -c) with stdin, stdout and stderr on a new
      pty of COLS columns and 24 rows; write all it printed to RAW, as it
      comes; exit with its status.  After DEADLINE seconds, show its
      processes and kill them.
  pty-screen.py screen COLS RAW [STOP]
      The screen RAW leaves, through a minimal terminal (below), or the
      screen just before the first match of the regular expression STOP:
      its non-empty lines, then "wrapped N": how often a character went
      past the last column (the terminal would have wrapped the line).
  pty-screen.py both COLS RAW WORD1 WORD2
      Succeed if at some point the screen shows two status lines at
      once, one starting with WORD1, one with WORD2 (not the summaries),
      and print that screen.
  pty-screen.py draws RAW WORD
      Each status line drawn in place (CR ... ESC[K) that holds WORD.
  pty-screen.py wait RAW N WORD TEXT
  pty-screen.py wait-times RAW N WORD TEXT
      From within COMMAND: wait until RAW holds N draws with WORD and
      TEXT (wait-times: N different elapsed times H:MM:SS among them),
      so that a stall lasts until the redraws it is for have happened,
      however slow the machine.  Exit 1 after WAIT_DEADLINE seconds.
"""
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import fcntl
import termios
import time

ROWS = 24
# No command of the tests takes near this long; one that does hangs.
DEADLINE = 300
# What a loaded machine may delay a redraw by, at the very most.
WAIT_DEADLINE = 120
DRAW = re.compile(rb"\r([^\r\x1b]*)\x1b\[K")
ELAPSED = re.compile(r", [0-9]+:[0-9]{2}:[0-9]{2}")
SEQ = re.compile(rb"\x1b\[([0-9]*)([A-Za-z])|\x1b[78]|[\r\n\b]|[^\x1b\r\n\b]+")


class Screen:
    """\\r, \\n (line feed), \\b, ESC[nA/B/G/K/L: what progress draws."""

    def __init__(self, cols, rows=ROWS):
        self.cols, self.rows = cols, rows
        self.lines = [[" "] * cols for _ in range(rows)]
        self.r = self.c = 0
        self.wrapped = 0

    def blank(self):
        return [" "] * self.cols

    def line_feed(self):
        if self.r == self.rows - 1:
            self.lines = self.lines[1:] + [self.blank()]
        else:
            self.r += 1

    def put(self, text):
        for ch in text.decode("utf-8", "replace"):
            if self.c >= self.cols:
                self.wrapped += 1
                self.c = 0
                self.line_feed()
            self.lines[self.r][self.c] = ch
            self.c += 1

    def csi(self, arg, op):
        n = int(arg) if arg else 1
        if op == "A":
            self.r = max(0, self.r - n)
        elif op == "B":
            self.r = min(self.rows - 1, self.r + n)
        elif op == "G":
            self.c = min(self.cols - 1, n - 1)
        elif op == "K":
            self.lines[self.r][self.c:] = [" "] * (self.cols - self.c)
        elif op == "L":
            for _ in range(n):
                self.lines.insert(self.r, self.blank())
                del self.lines[self.rows]
            self.c = 0
        else:
            raise ValueError("unexpected escape sequence ESC[%s%s" % (arg, op))

    def feed(self, data):
        for m in SEQ.finditer(data):
            tok = m.group(0)
            if m.group(2):
                self.csi(m.group(1).decode(), m.group(2).decode())
            elif tok == b"\r":
                self.c = 0
            elif tok == b"\n":
                self.line_feed()
            elif tok == b"\b":
                self.c = max(0, self.c - 1)
            elif not tok.startswith(b"\x1b"):
                self.put(tok)

    def status_lines(self, word):
        return [l for l in self.text()
                if l.startswith(word + " ") and " bytes (" not in l]

    def text(self):
        return ["".join(l).rstrip() for l in self.lines if "".join(l).strip()]


def give_up(proc):
    """A command that hangs: show its processes on stderr, then kill them."""
    sys.stderr.write("pty-screen.py: no end after %d s; its processes:\n"
                     % DEADLINE)
    sys.stderr.flush()
    subprocess.run(["ps", "-s", str(proc.pid), "-o",
                    "pid,ppid,stat,wchan:24,args"], stdout=sys.stderr)
    os.killpg(proc.pid, signal.SIGKILL)


def run(cols, raw, command):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, cols, 0, 0))
    proc = subprocess.Popen(["bash", "-c", command], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    # Written as it comes: a waiter in COMMAND reads it (wait, below).
    out = open(raw, "wb", buffering=0)
    deadline = time.monotonic() + DEADLINE
    while True:
        if time.monotonic() > deadline:
            give_up(proc)
            deadline = float("inf")
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out.write(chunk)
        elif proc.poll() is not None:
            break
    status = proc.wait()
    out.close()
    return status


def draws(data, word):
    for m in DRAW.finditer(data):
        line = m.group(1).decode("utf-8", "replace")
        if word in line:
            yield line


def wait(raw, n, word, text, times):
    """Until RAW shows n draws with word and text (times: n elapsed times)."""
    deadline = time.monotonic() + WAIT_DEADLINE
    while time.monotonic() < deadline:
        with open(raw, "rb") as f:
            seen = [l for l in draws(f.read(), word) if text in l]
        if times:
            seen = set(m.group(0) for l in seen for m in ELAPSED.finditer(l))
        if len(seen) >= n:
            return 0
        time.sleep(0.05)
    sys.stderr.write("pty-screen.py: no %d %s with %r and %r in %d s\n"
                     % (n, "times" if times else "draws", word, text,
                        WAIT_DEADLINE))
    return 1


def main():
    # A reader that has seen enough (grep -q) ends the output quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    mode = sys.argv[1]
    if mode == "run":
        sys.exit(run(int(sys.argv[2]), sys.argv[3], " ".join(sys.argv[5:])))
    if mode == "screen":
        s = Screen(int(sys.argv[2]))
        with open(sys.argv[3], "rb") as f:
            data = f.read()
        if len(sys.argv) > 4:
            m = re.search(sys.argv[4].encode(), data)
            data = data[:m.start()] if m else data
        s.feed(data)
        for line in s.text():
            print(line)
        print("wrapped %d" % s.wrapped)
        return
    if mode == "both":
        s = Screen(int(sys.argv[2]))
        with open(sys.argv[3], "rb") as f:
            data = f.read()
        for m in SEQ.finditer(data):
            s.feed(m.group(0))
            if m.group(2) != b"K":
                continue
            if s.status_lines(sys.argv[4]) and s.status_lines(sys.argv[5]):
                print("\n".join(s.text()))
                return
        sys.exit(1)
    if mode == "draws":
        with open(sys.argv[2], "rb") as f:
            data = f.read()
        for line in draws(data, sys.argv[3]):
            print(line)
        return
    if mode in ("wait", "wait-times"):
        sys.exit(wait(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                      sys.argv[5], mode == "wait-times"))
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
