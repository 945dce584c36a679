#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""report.py --tsv FILE --manifest FILE --work DIR [...] [--output FILE]

The tables of bench/run-bench.sh, as Markdown: medians of the timed runs,
ours against the reference (ratio of medians, < 1 means ours is faster or
smaller), the physical floor of the destination, and every run.

The TSV has one row per timed command: dataset, operation, tool, run,
wall s, user s, sys s, max RSS KiB, seconds of the sync that followed.
--chart FILE.png also draws the ours/ref wall ratios as bars (matplotlib).
"""
import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

OPS = [("send", "send -f FILE"), ("receive", "receive -f FILE"),
       ("pipe", "send \\| receive"), ("dump", "receive --dump"),
       ("changes", "send --changes (ref: --no-data)")]
DATASETS = ["big", "small", "sparse", "incr"]
FILES_PER_S = {"small", "incr"}


def load(path):
    rows = {}
    raw = []
    with open(path) as f:
        for line in f:
            ds, op, tool, run, wall, user, sys_, rss, sync = \
                line.rstrip("\n").split("\t")
            rec = {"wall": float(wall), "user": float(user),
                   "sys": float(sys_), "rss": int(rss), "sync": float(sync)}
            rows.setdefault((ds, op, tool), []).append(rec)
            raw.append((ds, op, tool, int(run), rec))
    return rows, raw


def med(recs, key):
    if key == "cpu":
        return statistics.median(r["user"] + r["sys"] for r in recs)
    if key == "wallsync":
        return statistics.median(r["wall"] + r["sync"] for r in recs)
    return statistics.median(r[key] for r in recs)


def ratio(a, b):
    if a is None or b is None:
        return "-"
    if b == 0:
        return "-" if a == 0 else "inf"
    return "%.2f" % (a / b)


def secs(v):
    """Seconds, to the millisecond below one (the wall is taken so)."""
    if v is None:
        return "-"
    return "%.3f" % v if v < 1 else "%.2f" % v if v < 100 else "%.0f" % v


def spread(recs, key="wall"):
    """The median, and the range of the runs when there are several."""
    vals = [r[key] for r in recs]
    m = statistics.median(vals)
    if len(vals) < 2:
        return secs(m)
    return "%s (%s-%s)" % (secs(m), secs(min(vals)), secs(max(vals)))


def rate(n, s):
    if n is None or not s:
        return "-"
    v = n / s
    return "%.0f" % v if v >= 100 else "%.1f" % v


def mib(kib):
    return "%.1f" % (kib / 1024)


def table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i < 2 else "---:"
                          for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def mechanisms(paths, runs, scale):
    """Rows per mechanism-NAME.tsv: its target, medians on (ours) and off
    (ref) of wall time, wall + sync and CPU time, their ratio, and whether
    the runs' ranges are apart."""
    rows = []
    for path in sorted(paths):
        name = os.path.basename(path)[len("mechanism-"):-len(".tsv")]
        recs, _ = load(path)
        for (ds, op, tool), on in sorted(recs.items()):
            if tool != "ours" or (ds, op, "ref") not in recs:
                continue
            off = recs[(ds, op, "ref")]
            pick = {"wall": lambda r: r["wall"],
                    "+sync": lambda r: r["wall"] + r["sync"],
                    "cpu": lambda r: r["user"] + r["sys"]}
            for label, value in pick.items():
                v_on = [value(r) for r in on]
                v_off = [value(r) for r in off]
                apart = max(v_on) < min(v_off) or max(v_off) < min(v_on)
                rows.append([name, "%s %s" % (ds, op), label,
                             "%s (%s-%s)" % (secs(statistics.median(v_on)),
                                             secs(min(v_on)), secs(max(v_on))),
                             "%s (%s-%s)" % (secs(statistics.median(v_off)),
                                             secs(min(v_off)),
                                             secs(max(v_off))),
                             ratio(statistics.median(v_on),
                                   statistics.median(v_off)),
                             "yes" if apart else "no"])
    print("# Speed mechanisms, each on against off\n")
    print("Scale %s, %s runs of each, alternated, caches dropped before "
          "every command; ratio = on / off of the medians (below 1: the "
          "mechanism gains).  Load average at the end: %s.\n"
          % (scale, runs, sh(["cut", "-d ", "-f1-3", "/proc/loadavg"])))
    print(table(["mechanism", "target", "time", "on", "off", "on/off",
                 "ranges apart"], rows))


def chart(path, rows):
    """The bold ours/ref column of the Time table as bars, grouped by
    dataset: which operations are ahead is seen at a glance.  matplotlib
    is imported here only: the tables need nothing beyond the standard
    library, and a python3 without it still writes them."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib is missing (apt-get install "
              "python3-matplotlib): no chart", file=sys.stderr)
        return
    bars, groups, pos = [], [], 0
    for ds in DATASETS:
        first = pos
        for op, _ in OPS:
            a, b = rows.get((ds, op, "ours")), rows.get((ds, op, "ref"))
            if a and b and med(b, "wall"):
                bars.append((pos, op.replace("pipe", "send | receive"),
                             med(a, "wall") / med(b, "wall")))
                pos += 1
        if pos > first:
            groups.append(((first + pos - 1) / 2, ds))
            pos += 1
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    for x, op, r in bars:
        ax.bar(x, r, color="#2e8b57" if r < 1 else "#c8402f")
        ax.text(x, r, "%.2f" % r, ha="center", va="bottom", fontsize=9)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_xticks([b[0] for b in bars], [b[1] for b in bars],
                  rotation=45, ha="right")
    for x, ds in groups:
        ax.text(x, -0.3, ds, transform=ax.get_xaxis_transform(),
                ha="center", fontsize=12, fontweight="bold")
    ax.set_ylabel("ours / btrfs-progs, median wall time")
    ax.set_title("Wall time, ours against btrfs-progs "
                 "(below 1, green: ours is faster)")
    ax.grid(True, axis="y", alpha=0.5)
    fig.tight_layout()
    fig.savefig(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mechanisms", nargs="+")
    ap.add_argument("--tsv")
    ap.add_argument("--manifest")
    ap.add_argument("--work")
    ap.add_argument("--scale", default="1")
    ap.add_argument("--runs", default="3")
    ap.add_argument("--dump-repeat", default="1")
    ap.add_argument("--ours", default="./btrfs")
    ap.add_argument("--ref", default="/usr/bin/btrfs")
    ap.add_argument("--total-seconds", default="?")
    ap.add_argument("--failed")
    ap.add_argument("--loadavg", default="?")
    ap.add_argument("--output")
    ap.add_argument("--warm", action="store_true")
    ap.add_argument("--chart", metavar="FILE.png")
    o = ap.parse_args()
    if o.mechanisms:
        mechanisms(o.mechanisms, o.runs, o.scale)
        return 0
    if not (o.tsv and o.manifest and o.work):
        ap.error("--tsv, --manifest and --work are required")

    rows, raw = load(o.tsv)
    with open(o.manifest) as f:
        man = json.load(f)

    def readnum(name):
        try:
            with open(os.path.join(o.work, name)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rev = sh(["git", "-C", top, "describe", "--always", "--dirty"])
    nproc = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    out = []
    w = out.append
    w("# btrfs send / receive benchmark: ours against btrfs-progs")
    w("")
    w("- date: %s, host: %s" % (time.strftime("%Y-%m-%d %H:%M %Z"),
                               socket.gethostname()))
    w("- kernel: %s; CPU: %s x %s; RAM: %.0f GiB" %
      (platform.release(), nproc, cpu_model(), mem))
    w("- ours: `%s` (git %s); reference: `%s` (%s)" %
      (o.ours, rev, o.ref, sh([o.ref, "version"])))
    w("- BENCH_SCALE=%s, BENCH_RUNS=%s (dumps: %s a run); whole run %s s; "
      "load average at start / end: %s" %
      (o.scale, o.runs, o.dump_repeat, o.total_seconds, o.loadavg))
    desc = []
    if "big" in man:
        desc.append("big: 4 files, %.0f MiB" % (man["big"]["bytes"] / 2**20))
    if "small" in man:
        s = man["small"]
        desc.append("small: %d files (%.0f MiB), %d dirs, %d symlinks, "
                    "%d hardlinks, %d xattrs" %
                    (s["files"], s["bytes"] / 2**20, s["dirs"],
                     s["symlinks"], s["hardlinks"], s["xattrs"]))
    if "sparse" in man:
        s = man["sparse"]
        desc.append("sparse: 4 files, %.0f MiB data in %.0f GiB" %
                    (s["bytes"] / 2**20, s["apparent_bytes"] / 2**30))
    if "incr" in man:
        s = man["incr"]
        desc.append("incr (-p small -c big): %d modified, %d deleted, "
                    "%d renamed, %d new, %.0f MiB reflinked from big, "
                    "a directory tree moved; %d changes in all" %
                    (s["modified"], s["deleted"], s["renamed"], s["new"],
                     s["cloned_bytes"] / 2**20, s["entries"]))
    for d in desc:
        w("- " + d)
    if o.failed:
        with open(o.failed) as f:
            bad = [l.strip() for l in f if l.strip()]
        w("- **correctness: %d check(s) FAILED: %s**" %
          (len(bad), "; ".join(bad)))
    else:
        w("- correctness: our streams byte-identical to the reference's; "
          "every received tree (both tools, file and pipe) equal to its "
          "source (tests/tree-compare.py)")
    w("")
    w("Medians of the runs, with the range of the runs in brackets; "
      "ratio = ours / reference of the medians (below 1: ours is "
      "faster or smaller); *fastest* compares the fastest runs, which "
      "other work on the machine disturbs least. " +
      ("Caches are warm: before every command the dataset's source "
       "trees and stream are read (BENCH_WARM=1). " if o.warm else
       "Caches are dropped before every command. ") +
      "*wall* is the command alone; *+sync* adds the `sync` after it, "
      "which writes back what it left dirty. MB/s is stream bytes "
      "(10^6) per wall second; files/s is names in the tree (small) or "
      "names changed (incr) per wall second. Receive and dump read the "
      "reference's stream file.")
    w("")

    trows = []
    rrows = []
    for ds in DATASETS:
        nbytes = readnum(ds + ".stream-bytes")
        entries = man.get(ds, {}).get("entries") if ds in FILES_PER_S \
            else None
        for op, label in OPS:
            a = rows.get((ds, op, "ours"))
            b = rows.get((ds, op, "ref"))
            if not a or not b:
                continue
            wa, wb = med(a, "wall"), med(b, "wall")
            sa, sb = med(a, "wallsync"), med(b, "wallsync")
            trows.append([
                ds, label,
                "-" if nbytes is None else "%.0f" % (nbytes / 2**20),
                spread(a), spread(b), "**%s**" % ratio(wa, wb),
                ratio(min(r["wall"] for r in a), min(r["wall"] for r in b)),
                secs(sa), secs(sb), ratio(sa, sb),
                rate(nbytes and nbytes / 1e6, wa),
                rate(nbytes and nbytes / 1e6, wb),
                rate(entries, wa), rate(entries, wb)])
            ca, cb = med(a, "cpu"), med(b, "cpu")
            ra, rb = med(a, "rss"), med(b, "rss")
            cpu_a, cpu_b = secs(ca), secs(cb)
            rss_a, rss_b = mib(ra), mib(rb)
            if op == "pipe":
                parts = {}
                for tool in ("ours", "ref"):
                    s = rows.get((ds, "pipe.send", tool), [])
                    r = rows.get((ds, "pipe.recv", tool), [])
                    if s and r:
                        parts[tool] = (med(s, "cpu"), med(r, "cpu"),
                                       med(s, "rss"), med(r, "rss"))
                if len(parts) == 2:
                    cpu_a += " (%s+%s)" % (secs(parts["ours"][0]),
                                           secs(parts["ours"][1]))
                    cpu_b += " (%s+%s)" % (secs(parts["ref"][0]),
                                           secs(parts["ref"][1]))
                    rss_a = "%s / %s" % (mib(parts["ours"][2]),
                                         mib(parts["ours"][3]))
                    rss_b = "%s / %s" % (mib(parts["ref"][2]),
                                         mib(parts["ref"][3]))
            rrows.append([ds, label, cpu_a, cpu_b, ratio(ca, cb),
                          rss_a, rss_b, ratio(ra, rb)])

    w("## Time")
    w("")
    w(table(["dataset", "operation", "stream MiB", "ours wall s",
             "ref wall s", "ours/ref", "ours/ref fastest", "ours +sync s", "ref +sync s",
             "ours/ref +sync", "ours MB/s", "ref MB/s", "ours files/s",
             "ref files/s"], trows))
    w("")
    w("## CPU and memory")
    w("")
    w("CPU is user + system seconds (system includes the kernel's work "
      "in the send ioctl); for `send | receive`, the sum, with send + "
      "receive in brackets, and peak RSS as send / receive.")
    w("")
    w(table(["dataset", "operation", "ours CPU s", "ref CPU s",
             "ours/ref", "ours RSS MiB", "ref RSS MiB", "ours/ref"], rrows))
    w("")

    frows = []
    big_bytes = readnum("floor.big-bytes")
    tar_bytes = readnum("floor.tar-bytes")
    small_entries = man.get("small", {}).get("entries")
    for op, label, nb, ne in [
            ("read-big", "cat big files > /dev/null (source, cold cache)",
             big_bytes, None),
            ("write-big", "dd big files (cached) to the destination, "
             "conv=fsync", big_bytes, None),
            ("tar-x-small", "tar -x of the small tree (tar file cold)",
             tar_bytes, small_entries),
            ("tar-x-small-inode-order", "tar -x of the small tree in "
             "inode order, a full stream's order (tar file cold)",
             tar_bytes, small_entries)]:
        r = rows.get(("floor", op, "-"))
        if not r:
            continue
        wa, sa = med(r, "wall"), med(r, "wallsync")
        frows.append([label, "%.0f" % (nb / 2**20) if nb else "-",
                      spread(r), secs(sa), rate(nb and nb / 1e6, wa),
                      rate(nb and nb / 1e6, sa), rate(ne, wa),
                      rate(ne, sa)])
    if frows:
        w("## Physical floor (same images)")
        w("")
        w(table(["plain tool", "MiB", "wall s", "+sync s", "MB/s",
                 "MB/s +sync", "files/s", "files/s +sync"], frows))
        w("")

    erows = []
    for ds in sorted({k[0] for k in rows} - {"floor"}):
        real, est = readnum(ds + ".stream-bytes"), readnum(ds + ".estimate-bytes")
        if real and est is not None:
            erows.append([ds, str(real), str(est),
                          "%+.4f%%" % ((est - real) * 100.0 / real)])
    if erows:
        w("## Size estimate (`send --estimate -q`, same arguments)")
        w("")
        w(table(["dataset", "stream bytes", "estimate bytes", "error"],
                erows))
        w("")

    w("<details><summary>Every run</summary>")
    w("")
    w(table(["dataset", "operation", "tool", "run", "wall s", "user s",
             "sys s", "max RSS KiB", "sync s"],
            [[ds, op, tool, run, "%.3f" % r["wall"], "%.2f" % r["user"],
              "%.2f" % r["sys"], r["rss"], "%.2f" % r["sync"]]
             for ds, op, tool, run, r in raw]))
    w("")
    w("</details>")
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if o.output:
        with open(o.output, "w") as f:
            f.write(text)
    if o.chart:
        chart(o.chart, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
