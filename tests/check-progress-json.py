#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Check the JSON Lines of 'btrfs --format json send|receive --progress'.

  check-progress-json.py STDERR_FILE OPERATION KEY=VALUE...

Every line of STDERR_FILE must parse as one JSON object of OPERATION; the
status objects come first, in the order of time, and the last line is the
summary (phase "done").  Each KEY=VALUE is an integer the summary must
hold (bytes=, commands=, skipped_bytes=, exit_status=, ...); syncing=N
is how many updates of the phase "syncing" (receive closing a subvolume)
there must be.
"""
import json
import sys

UPDATE_KEYS = {"operation", "phase", "bytes", "total", "rate", "eta",
               "elapsed", "commands", "path"}
SUMMARY_KEYS = {"operation", "phase", "bytes", "total", "rate", "elapsed",
                "commands", "skipped_bytes", "skipped_commands",
                "skip_elapsed", "exit_status"}


def fail(msg):
    print("check-progress-json: " + msg, file=sys.stderr)
    sys.exit(1)


def check_update(n, obj, op, last):
    if set(obj) != UPDATE_KEYS:
        fail("line %d: keys %s" % (n, sorted(obj)))
    phases = ("sending", "skipping") if op == "send" else \
        ("receiving", "skipping", "syncing")
    if obj["phase"] not in phases:
        fail("line %d: phase %r" % (n, obj["phase"]))
    for key in ("bytes", "commands", "rate"):
        if not isinstance(obj[key], int) or obj[key] < 0:
            fail("line %d: %s is %r" % (n, key, obj[key]))
    if obj["total"] is None and obj["eta"] is not None:
        fail("line %d: an ETA without a total" % n)
    if obj["path"] is not None and not isinstance(obj["path"], str):
        fail("line %d: path %r" % (n, obj["path"]))
    # Within a phase the figures only grow.
    if last and last["phase"] == obj["phase"]:
        for key in ("bytes", "commands", "elapsed"):
            if obj[key] < last[key]:
                fail("line %d: %s went back" % (n, key))


def main():
    path, op = sys.argv[1], sys.argv[2]
    want = dict(arg.split("=", 1) for arg in sys.argv[3:])
    syncs = want.pop("syncing", None)
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    if not lines:
        fail("no line")
    objs = []
    for n, line in enumerate(lines, 1):
        obj = json.loads(line)
        if obj.get("operation") != op:
            fail("line %d: operation %r" % (n, obj.get("operation")))
        objs.append(obj)
    last = None
    for n, obj in enumerate(objs[:-1], 1):
        check_update(n, obj, op, last)
        last = obj
    summary = objs[-1]
    if summary.get("phase") != "done" or set(summary) != SUMMARY_KEYS:
        fail("the last line is not a summary: %s" % lines[-1])
    for key, value in want.items():
        if summary[key] != int(value):
            fail("summary %s is %r, expected %s" % (key, summary[key], value))
    synced = [o for o in objs if o["phase"] == "syncing"]
    if syncs is not None and len(synced) != int(syncs):
        fail("%d syncing updates, expected %s" % (len(synced), syncs))
    if any(o["bytes"] > summary["bytes"] for o in synced):
        fail("a syncing update counts more bytes than the summary")
    updates = sum(1 for o in objs if o["phase"] != "done")
    print("%d updates, %s" % (updates, lines[-1]))


main()
