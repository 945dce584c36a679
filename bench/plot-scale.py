#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""plot-scale.py SCALE.tsv OUTDIR [--title-suffix S] [--cores N]

The pictures and the Markdown report of `make bench-scale`: how time and
memory grow with the files of a tree, the subvolumes on the target and
the length of a chain of incrementals, ours against btrfs-progs.  Writes
OUTDIR/scale-*.png and prints the report.  Needs matplotlib: run it with
Debian's /usr/bin/python3 (python3-matplotlib).

The TSV of bench/run-scale.sh: a header, then one row per timed command,
curve x op tool run wall user sys rss_kib cpu_all (cpu_all: busy CPU
seconds of the whole machine, or "-").  Runs of one (curve, x, op, tool)
give their median.
"""
import argparse
import math
import os
import statistics
import sys

COLUMNS = ["curve", "x", "op", "tool", "run", "wall", "user", "sys",
           "rss_kib", "cpu_all"]
NUMBERS = [("x", int), ("wall", float), ("user", float), ("sys", float),
           ("rss_kib", int), ("cpu_all", float)]
CURVES = {"files": ["send", "receive", "pipe", "pipe.send", "pipe.recv",
                    "dump", "tar-x"],
          "subvols": ["startup", "total"], "chain": ["receive"]}
PNGS = {"files": ["scale-files.png", "scale-files-rss.png"],
        "subvols": ["scale-subvols.png"], "chain": ["scale-chain.png"]}
TOOLS = ["ours", "ref"]
NAME = {"ours": "ours", "ref": "btrfs-progs", "floor": "floor"}
COLOUR = {"ours": "#1764ab", "ref": "#e6730f"}
SUPERLINEAR = 1.15


def die(msg):
    print("plot-scale: " + msg, file=sys.stderr)
    sys.exit(1)


def parse_row(where, f):
    """One run, checked: a row out of place in run-scale.sh's output
    stops the report with its line number, not in a wrong picture."""
    if f["curve"] not in CURVES:
        die(where + ("unknown curve '%s'" % f["curve"] if f["curve"]
                     else "empty curve"))
    if f["op"] not in CURVES[f["curve"]] or f["tool"] not in \
            (["floor"] if f["op"] == "tar-x" else TOOLS):
        die(where + "unknown op or tool '%s %s' in curve %s"
            % (f["op"], f["tool"], f["curve"]))
    r = {"cpu_all": None}
    for c, conv in NUMBERS:
        try:
            if c != "cpu_all" or f[c] != "-":
                r[c] = conv(f[c])
        except ValueError:
            die(where + "%s is not a number: '%s'" % (c, f[c]))
    r["rss"] = r["rss_kib"] / 1024
    return r


def load(path):
    """Runs by curve, then by (x, op, tool)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        die("%s: %s" % (path, e.strerror))
    head = lines[0].split("\t") if lines else []
    missing = [c for c in COLUMNS if c not in head]
    if missing:
        die("%s: missing column(s) in the header: %s"
            % (path, ", ".join(missing)))
    curves = {}
    for n, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) != len(head):
            die("%s:%d: %d fields, the header has %d"
                % (path, n, len(fields), len(head)))
        f = dict(zip(head, fields))
        r = parse_row("%s:%d: " % (path, n), f)
        curves.setdefault(f["curve"], {}).setdefault(
            (r["x"], f["op"], f["tool"]), []).append(r)
    if not curves:
        die("%s: no runs" % path)
    for name, runs in curves.items():
        if not all(any(k[2] == t for k in runs) for t in TOOLS):
            die("%s: curve %s is empty: it needs runs of both ours and "
                "ref" % (path, name))
    return curves


def med(runs, key):
    """Median of the runs; None when none measured it."""
    vals = [r["user"] + r["sys"] if key == "cpu" else r[key]
            for r in runs or [] if key == "cpu" or r[key] is not None]
    return statistics.median(vals) if vals else None


def series(runs, op, tool, key="wall"):
    pts = sorted((x, med(rs, key)) for (x, o, t), rs in runs.items()
                 if o == op and t == tool and med(rs, key) is not None)
    return [p[0] for p in pts], [p[1] for p in pts]


def paper_floor(files, x, cores):
    """What send | receive cannot go below at x files, whatever its user
    space does: the kernel's send ioctl and receive's system calls each
    run in one thread, and with btrfs' worker threads they share the
    cores.  Each part is the smaller of the two tools'."""
    parts = []
    for t in TOOLS:
        s, r, p = (files.get((x, op, t))
                   for op in ("pipe.send", "pipe.recv", "pipe"))
        if s and r and p:
            w = [max(0.0, q["cpu_all"] - q["user"] - q["sys"])
                 for q in p if q["cpu_all"] is not None]
            parts.append((med(s, "sys"), med(r, "sys"),
                          statistics.median(w) if w else None))
    if not parts:
        return None
    ioctl, recv = min(p[0] for p in parts), min(p[1] for p in parts)
    workers = min((p[2] for p in parts if p[2] is not None), default=None)
    return {"ioctl": ioctl, "recv_sys": recv, "workers": workers,
            "floor": max(ioctl, recv,
                         (ioctl + recv + (workers or 0)) / cores)}


def num(v, form="%.2f"):
    return "-" if v is None else form % v


def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)


def count(x):
    return "%gM" % (x / 1e6) if x >= 1e6 and x % 100000 == 0 else \
        "%gk" % (x / 1e3) if x >= 1e3 and x % 100 == 0 else str(x)


def opname(op):
    return "send \\| receive" if op == "pipe" else op


def table(head, rows, left=2):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" if i < left else "---:"
                          for i in range(len(head))) + "|"]
    return "\n".join(out + ["| " + " | ".join(map(str, r)) + " |"
                            for r in rows])


def tool_lines(ax, runs, op, key="wall", style="-", mark="o", tag=""):
    for t in TOOLS:
        xs, ys = series(runs, op, t, key)
        if xs:
            ax.plot(xs, ys, style, marker=mark, color=COLOUR[t],
                    label=NAME[t] + tag, lw=2, ms=6)


def from_zero(ax):
    """A linear y from 0, with room above the highest point: memory that
    stays flat must look flat, not fill the panel."""
    if ax.has_data():
        ax.set_ylim(0, ax.dataLim.y1 * 1.15)


def finish(fig, axes, path, title):
    """Grid, one legend for the figure, title, and the PNG (1000x700)."""
    handles = {}
    for ax in axes:
        ax.grid(True, alpha=0.5)
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.suptitle(title, fontsize=13)
    fig.legend(handles.values(), handles.keys(), loc="lower center",
               ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(path)


def files_axes(ax, xs, log_y):
    from matplotlib import ticker
    if not ax.has_data():
        ax.text(0.5, 0.5, "not measured", transform=ax.transAxes,
                ha="center", color="0.4")
    ax.set_xscale("log")
    ax.set_xticks(xs, [count(x) for x in xs])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_xlim(min(xs) / 1.4, max(xs) * 1.4)
    ax.set_xlabel("files in the tree")
    if not log_y:
        return from_zero(ax)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(
        lambda v, _: "%g" % v))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def plot_files(plt, files, floors, out, suffix):
    xs = sorted({k[0] for k in files})
    tx, ty = series(files, "tar-x", "floor")
    px = [x for x in xs if floors[x]]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=100)
    for ax, op in zip(axes.flat, ("send", "receive", "pipe", "dump")):
        tool_lines(ax, files, op)
        if op in ("receive", "pipe") and tx:
            ax.plot(tx, ty, "--", color="0.4", label="tar -x (floor)")
        if op == "pipe" and px:
            ax.plot(px, [floors[x]["floor"] for x in px], ":", lw=2.5,
                    color="black", label="floor on paper")
        files_axes(ax, xs, True)
        ax.set_title(opname(op).replace("\\", ""))
        ax.set_ylabel("wall seconds")
    finish(fig, axes.flat, os.path.join(out, PNGS["files"][0]),
           "Wall time against files, log-log" + suffix)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=100)
    for ax, op in zip(axes.flat, ("receive", "pipe.recv", "send", "dump")):
        tool_lines(ax, files, op, "rss")
        files_axes(ax, xs, False)
        ax.set_title(op.replace("pipe.recv", "receive in send | receive"))
        ax.set_ylabel("peak RSS MiB")
    finish(fig, axes.flat, os.path.join(out, PNGS["files"][1]),
           "Peak memory against files (should be flat)" + suffix)


def plot_subvols(plt, runs, out, suffix):
    xs = sorted({k[0] for k in runs})
    fig, ax = plt.subplots(figsize=(10, 7), dpi=100)
    tool_lines(ax, runs, "startup", tag=": startup")
    tool_lines(ax, runs, "total", style="--", mark="s", tag=": total")
    # symlog puts 0 at the left, the counts on a log scale after it.
    nonzero = [x for x in xs if x]
    ax.set_xscale("symlog", linthresh=min(nonzero) / 10 if nonzero else 1)
    ax.set_xticks(xs, [count(x) for x in xs])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    from_zero(ax)
    ax.set_xlabel("subvolumes already on the target (0, then log scale)")
    ax.set_ylabel("wall seconds of the receive")
    finish(fig, [ax], os.path.join(out, PNGS["subvols"][0]),
           "Receive of an incremental against subvolumes on the target"
           + suffix)


def plot_chain(plt, runs, out, suffix):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), dpi=100,
                                      sharex=True)
    tool_lines(top, runs, "receive", mark=".")
    tool_lines(bottom, runs, "receive", "rss", mark=".")
    top.set_ylabel("wall seconds")
    bottom.set_ylabel("peak RSS MiB")
    bottom.set_xlabel("position in the chain of nightly incrementals")
    from_zero(top)
    from_zero(bottom)
    finish(fig, [top, bottom], os.path.join(out, PNGS["chain"][0]),
           "Each receive along a chain of incrementals" + suffix)


def curve_table(name, runs, floors):
    """Medians per x and op; for files also its two floors."""
    rows = []
    for x, op in sorted({k[:2] for k in runs if k[1] != "tar-x"},
                        key=lambda k: (k[0], CURVES[name].index(k[1]))):
        a, b = runs.get((x, op, "ours")), runs.get((x, op, "ref"))
        wa, wb = med(a, "wall"), med(b, "wall")
        rows.append([count(x), opname(op), num(wa), num(wb),
                     "**%s**" % ratio(wa, wb), num(med(a, "cpu")),
                     num(med(b, "cpu")), num(med(a, "rss"), "%.1f"),
                     num(med(b, "rss"), "%.1f")])
        if name == "files":
            tar = med(runs.get((x, "tar-x", "floor")), "wall")
            fl = floors[x] if op == "pipe" else None
            rows[-1] += [num(tar) if op in ("receive", "pipe") else "-",
                         num(fl and fl["floor"])]
    head = ["x", "op", "ours wall s", "ref wall s", "ours/ref",
            "ours CPU s", "ref CPU s", "ours RSS MiB", "ref RSS MiB"]
    return table(head + ["tar -x s", "floor on paper s"] * (name == "files"),
                 rows)


def growth_files(files):
    xs = sorted({k[0] for k in files})
    if len(xs) < 2:
        return "One size only: no growth."
    print("Exponent between consecutive sizes, log(t2/t1) / log(x2/x1): "
          "1.0 is linear; above %.2f superlinear.\n" % SUPERLINEAR)
    rows = []
    for op, t in sorted({k[1:] for k in files}, key=lambda k:
                        (CURVES["files"].index(k[0]), k[1])):
        rows.append([opname(op), NAME[t]])
        for x1, x2 in zip(xs, xs[1:]):
            t1 = med(files.get((x1, op, t)), "wall")
            t2 = med(files.get((x2, op, t)), "wall")
            e = math.log(t2 / t1) / math.log(x2 / x1) if t1 and t2 \
                else None
            rows[-1].append("**%.2f superlinear**" % e
                            if e and e > SUPERLINEAR else num(e))
    return table(["op", "tool"] + ["%s to %s" % (count(a), count(b))
                                   for a, b in zip(xs, xs[1:])], rows)


def growth_subvols(runs):
    last = max(k[0] for k in runs)
    rows = [[op, NAME[t]] + [num(a), num(b), ratio(b, a)]
            for op in CURVES["subvols"] for t in TOOLS
            for a, b in [(med(runs.get((0, op, t)), "wall"),
                          med(runs.get((last, op, t)), "wall"))]]
    return table(["op", "tool", "at 0 s", "at %s s" % count(last),
                  "ratio"], rows)


def growth_chain(runs):
    rows = []
    for t in TOOLS:
        for key, form in (("wall", "%.2f"), ("rss", "%.1f")):
            ys = series(runs, "receive", t, key)[1]
            a, b = (statistics.median(v) if v else None
                    for v in (ys[:10], ys[-10:]))
            rows.append([NAME[t], "wall s" if key == "wall" else "RSS MiB",
                         num(a, form), num(b, form), ratio(b, a)])
    return table(["tool", "value", "first 10", "last 10", "last/first"],
                 rows)


def floor_table(files, floors, cores):
    print("ioctl, recv_sys: system time of the send and of the receive "
          "side; workers: the machine's busy CPU minus both sides' user "
          "and system time (btrfs' threads, writeback, the loop device; "
          "\"-\": not measured, counted as 0); each the smaller of the "
          "two tools'.  floor = max(ioctl, recv_sys, (ioctl + recv_sys + "
          "workers) / %d cores): user time left out.\n" % cores)
    rows = [[count(x)] + [num(f[k]) for k in ("ioctl", "recv_sys",
                                              "workers", "floor")] +
            [ratio(med(files.get((x, "pipe", t)), "wall"), f["floor"])
             for t in TOOLS] for x, f in sorted(floors.items()) if f]
    return table(["x", "ioctl s", "recv_sys s", "workers s", "floor s",
                  "ours / floor", "ref / floor"], rows, 1)


def report(curves, floors, cores):
    print("# btrfs receive at scale: ours against btrfs-progs\n\n"
          "Medians of the runs; ours/ref below 1: ours is faster or "
          "smaller.  CPU is user + system seconds; RSS is the peak.\n")
    for name in CURVES:
        runs = curves.get(name)
        print("## Curve: %s\n" % name)
        if not runs:
            print("not measured.\n")
            continue
        fold = name == "chain"
        if fold:
            print("<details><summary>Every receive</summary>\n")
        print(curve_table(name, runs, floors) + "\n")
        if fold:
            print("</details>\n")
        print("### Growth\n")
        if name == "files":
            print(growth_files(runs) + "\n")
            print("### Floor on paper of send \\| receive\n")
            print(floor_table(runs, floors, cores) + "\n")
        else:
            print((growth_subvols if name == "subvols" else
                   growth_chain)(runs) + "\n")
        for png in PNGS[name]:
            print("![%s](%s)\n" % (png[6:-4].replace("-", " "), png))


def main():
    ap = argparse.ArgumentParser(
        description="The pictures and report of make bench-scale.")
    ap.add_argument("tsv")
    ap.add_argument("outdir")
    ap.add_argument("--title-suffix", default="")
    ap.add_argument("--cores", type=int, default=2)
    o = ap.parse_args()
    if o.cores < 1:
        ap.error("--cores must be at least 1")
    curves = load(o.tsv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        die("matplotlib is missing: run with /usr/bin/python3 "
            "(apt-get install python3-matplotlib)")
    os.makedirs(o.outdir, exist_ok=True)
    suffix = " - " + o.title_suffix if o.title_suffix else ""
    floors = None
    if "files" in curves:
        floors = {x: paper_floor(curves["files"], x, o.cores)
                  for x in {k[0] for k in curves["files"]}}
        plot_files(plt, curves["files"], floors, o.outdir, suffix)
    if "subvols" in curves:
        plot_subvols(plt, curves["subvols"], o.outdir, suffix)
    if "chain" in curves:
        plot_chain(plt, curves["chain"], o.outdir, suffix)
    report(curves, floors, o.cores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
