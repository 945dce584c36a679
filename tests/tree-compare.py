#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""tree-compare.py [--no-atime] [--no-times] [--no-data] [--no-flags]
                   [--no-extents] [--encoded-layout] [--no-dir-size]
                   [--data-since NS] [--ignore PATH:FIELD]...
                   [--max N] A B...

Compare directory trees as `btrfs receive` leaves them, A with each B, and
print every difference, one per line as `path: field: A=... B=...` (at
most --max, 50 by default, for each B), then a summary for each B.  A is
read once however many B there are.  Exit 0 if every B equals A, 1 if
one does not, 2 on a usage error.

Nothing is followed: every entry is lstat()ed, xattrs are read with
follow_symlinks=False.  Compared per path: file type, mode (all 12 bits),
uid, gid, mtime and atime in ns (every type, directories and symlinks
too), size, nlink (not for directories), symlink target, rdev of device
nodes, all xattrs (any namespace: user, trusted, security.capability,
system.posix_acl_*), inode flags (FS_IOC_GETFLAGS, regular files and
directories) and, for regular files, the content and the sparse layout
(SEEK_DATA/SEEK_HOLE data ranges, adjacent ranges merged) and the
shared extents (FIEMAP, ranges merged: they tell a clone from a copy;
both trees must live on filesystems with the same history).  The set of
paths must be equal, and paths grouped by inode must form the same
partition (hardlinks).  ctime, inode numbers and st_dev are ignored.

--no-atime skips atime; --no-data skips content, sparse layout and extents
(for streams sent with --no-data); --no-flags skips inode flags;
--no-extents skips the FIEMAP comparison; --encoded-layout also compares
the ranges of encoded (compressed) and inline extents, for trees written
by encoded writes: of a buffered write, writeback decides them, and a
sync() landing mid-write moves them; --no-dir-size skips the size
of directories (each filesystem counts it its own way); --no-times skips atime and
mtime (a receive that failed half way leaves wall-clock times); --ignore
PATH:FIELD skips one field of one path (e.g. `.:mtime`), for a stream
that leaves it to the wall clock.  --data-since NS reads the content (and
layout) only of the files whose ctime in A is NS (ns since the epoch) or
later: for a chain of snapshots whose older files were checked already.
"""
import argparse
import errno
import fcntl
import hashlib
import os
import stat
import struct
import sys

BLOCK = 64 * 1024
ZERO = bytes(BLOCK)
FS_IOC_GETFLAGS = 0x80086601
SEEK_DATA = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)
O_NOATIME = getattr(os, "O_NOATIME", 0o1000000)

TYPES = [(stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
         (stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "fifo"),
         (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chardev"),
         (stat.S_ISBLK, "blockdev")]


def ftype(mode):
    for test, name in TYPES:
        if test(mode):
            return name
    return "unknown(0o%o)" % stat.S_IFMT(mode)


def esc(b):
    """Printable form of a byte string (names may be any bytes)."""
    out = []
    for ch in b.decode("utf-8", "backslashreplace"):
        if ch == "\\" or (ch.isprintable() and ch not in "\t\n\r"):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def walk(root):
    """Yield (relative path, lstat) of root and everything below it."""
    st = os.lstat(root)
    yield b".", st
    stack = [b""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(full))
        except OSError as e:
            yield rel or b".", e
            continue
        for name in names:
            r = os.path.join(rel, name) if rel else name
            try:
                st = os.lstat(os.path.join(root, r))
            except OSError as e:
                yield r, e
                continue
            yield r, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(r)


def data_ranges(fd, size):
    """The data ranges of a file, adjacent or overlapping ones merged."""
    ranges = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            raise
        end = os.lseek(fd, start, SEEK_HOLE)
        end = min(end, size)
        if start >= end:
            break
        if ranges and ranges[-1][1] >= start:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], end))
        else:
            ranges.append((start, end))
        pos = end
    return ranges


def content_digest(fd, size, ranges):
    """A digest of the bytes of the file that does not depend on its
    layout: fixed aligned blocks, all-zero ones skipped (holes read as
    zeros), so only the data ranges need reading."""
    h = hashlib.sha256(struct.pack("<Q", size))
    done = -1
    for start, end in ranges:
        blk = max(start // BLOCK, done + 1)
        while blk * BLOCK < end:
            buf = os.pread(fd, BLOCK, blk * BLOCK)
            if buf.strip(b"\0"):
                h.update(struct.pack("<Q", blk * BLOCK))
                h.update(buf)
            done = blk
            blk += 1
    return h.hexdigest()


FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_ENCODED = 0x8
FIEMAP_EXTENT_DATA_INLINE = 0x200
FIEMAP_EXTENT_SHARED = 0x2000
SHARED_CLASS = [("shared", FIEMAP_EXTENT_SHARED)]
LAYOUT_CLASSES = SHARED_CLASS + [("encoded", FIEMAP_EXTENT_ENCODED),
                                 ("inline", FIEMAP_EXTENT_DATA_INLINE)]


def extent_classes(fd, classes):
    """The merged ranges of each of classes: shared (reflinked or
    snapshotted), encoded (compressed), inline extents.  They tell how the
    data was written, beyond what it reads as."""
    found = {name: [] for name, _ in classes}
    start = 0
    count = 128
    while True:
        hdr = struct.pack("=QQIIII", start, 2**64 - 1 - start,
                          FIEMAP_FLAG_SYNC, 0, count, 0)
        buf = bytearray(hdr + bytes(56 * count))
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
        mapped = struct.unpack_from("=I", buf, 20)[0]
        last = False
        for i in range(mapped):
            logical, _, length = struct.unpack_from("=QQQ", buf, 32 + 56 * i)
            flags = struct.unpack_from("=I", buf, 32 + 56 * i + 40)[0]
            for name, bit in classes:
                if flags & bit:
                    r = found[name]
                    if r and r[-1][1] >= logical:
                        r[-1] = (r[-1][0], max(r[-1][1], logical + length))
                    else:
                        r.append((logical, logical + length))
            start = logical + length
            last = bool(flags & FIEMAP_EXTENT_LAST)
        if last or mapped < count:
            break
    return " ".join("%s=%s" % (n, fmt_ranges(found[n]))
                    for n, _ in classes)


def fmt_ranges(ranges):
    if len(ranges) > 8:
        head = ",".join("%d-%d" % r for r in ranges[:8])
        return "[%s,... %d ranges]" % (head, len(ranges))
    return "[" + ",".join("%d-%d" % r for r in ranges) + "]"


def read_xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    out = {}
    for n in sorted(names):
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError as e:
            out[n] = "<error %s>" % os.strerror(e.errno)
    return out


def inode_flags(path, st):
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | O_NOATIME |
                 os.O_NONBLOCK)
    try:
        buf = fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("l", 0))
        return struct.unpack("l", buf)[0] & 0xffffffff
    except OSError:
        return None
    finally:
        os.close(fd)


def describe(root, rel, st, opts, with_data):
    """Everything compared about one entry, as a dict of printable values.
    stat() was taken before anything was read, so reading cannot move
    atime before it is recorded."""
    path = os.path.join(root, rel) if rel != b"." else root
    mode = st.st_mode
    d = {
        "type": ftype(mode),
        "mode": "0o%04o" % stat.S_IMODE(mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime": st.st_mtime_ns,
        "size": st.st_size,
    }
    if opts.no_dir_size and stat.S_ISDIR(mode):
        del d["size"]
    if opts.no_times:
        del d["mtime"]
    elif not opts.no_atime:
        d["atime"] = st.st_atime_ns
    if not stat.S_ISDIR(mode):
        d["nlink"] = st.st_nlink
    if stat.S_ISLNK(mode):
        d["target"] = esc(os.readlink(path))
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        d["rdev"] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    try:
        for name, val in read_xattrs(path).items():
            d["xattr " + name] = (esc(val) if isinstance(val, bytes)
                                  else val)
    except OSError as e:
        d["xattrs"] = "<error %s>" % os.strerror(e.errno)
    if not opts.no_flags:
        try:
            flags = inode_flags(path, st)
        except OSError as e:
            flags = "<error %s>" % os.strerror(e.errno)
        if flags is not None:
            d["flags"] = flags if isinstance(flags, str) else "0x%x" % flags
    if stat.S_ISREG(mode) and with_data:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | O_NOATIME)
        except OSError as e:
            d["content"] = "<error %s>" % os.strerror(e.errno)
            return d
        try:
            ranges = data_ranges(fd, st.st_size)
            d["sparse"] = fmt_ranges(ranges)
            d["content"] = content_digest(fd, st.st_size, ranges)
            if not opts.no_extents:
                d["extents"] = extent_classes(
                    fd, LAYOUT_CLASSES if opts.encoded_layout
                    else SHARED_CLASS)
        except OSError as e:
            d["content"] = "<error %s>" % os.strerror(e.errno)
        finally:
            os.close(fd)
    return d


def scan(root, opts, wants_data):
    """The description of every entry of root, with the content of the
    regular files for which wants_data(rel, st) is true."""
    entries = {}
    errors = {}
    inodes = {}
    for rel, st in walk(root):
        if isinstance(st, OSError):
            errors[rel] = os.strerror(st.errno)
            continue
        entries[rel] = st
        if not stat.S_ISDIR(st.st_mode):
            inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
    desc = {rel: describe(root, rel, st, opts,
                          not opts.no_data and wants_data(rel, st))
            for rel, st in entries.items()}
    # The hardlink group of every path: the other paths of its inode.
    groups = {}
    for paths in inodes.values():
        for p in paths:
            groups[p] = tuple(sorted(paths))
    return desc, groups, errors


def main():
    ap = argparse.ArgumentParser(
        description="Compare two received trees (see the docstring).")
    ap.add_argument("--no-atime", action="store_true")
    ap.add_argument("--no-data", action="store_true")
    ap.add_argument("--no-flags", action="store_true")
    ap.add_argument("--no-extents", action="store_true")
    ap.add_argument("--encoded-layout", action="store_true")
    ap.add_argument("--no-times", action="store_true")
    ap.add_argument("--no-dir-size", action="store_true")
    ap.add_argument("--data-since", type=int, metavar="NS")
    ap.add_argument("--ignore", action="append", default=[],
                    metavar="PATH:FIELD")
    ap.add_argument("--max", type=int, default=50)
    ap.add_argument("a")
    ap.add_argument("b", nargs="+")
    opts = ap.parse_args()

    roots = [os.fsencode(r) for r in [opts.a] + opts.b]
    for r in roots:
        if not os.path.isdir(r) or os.path.islink(r):
            print("tree-compare: %s: not a directory" % esc(r),
                  file=sys.stderr)
            return 2
    since = opts.data_since
    a = scan(roots[0], opts,
             lambda rel, st: since is None or st.st_ctime_ns >= since)
    a_read = set(rel for rel, d in a[0].items() if "content" in d)
    ret = 0
    for name, root in zip(opts.b, roots[1:]):
        b = scan(root, opts, lambda rel, st: rel in a_read)
        ret |= report(compare(a, b, set(opts.ignore)),
                      len(a[0]), opts.a, name, opts.max)
    return ret


def compare(a_scan, b_scan, ignored):
    """The differences of B's scan from A's, as lines."""
    (da, ga, ea), (db, gb, eb) = a_scan, b_scan
    diffs = []

    def diff(path, field, va, vb):
        if "%s:%s" % (esc(path), field) in ignored:
            return
        diffs.append("%s: %s: A=%s B=%s" % (esc(path), field, va, vb))

    for p in sorted(set(ea) | set(eb)):
        diff(p, "read error", ea.get(p, "-"), eb.get(p, "-"))
    for p in sorted(set(da) | set(db)):
        if p not in db:
            diff(p, "exists", "yes(%s)" % da[p]["type"], "no")
            continue
        if p not in da:
            diff(p, "exists", "no", "yes(%s)" % db[p]["type"])
            continue
        a, b = da[p], db[p]
        if a["type"] != b["type"]:
            diff(p, "type", a["type"], b["type"])
            continue
        for k in sorted(set(a) | set(b)):
            va, vb = a.get(k, "<none>"), b.get(k, "<none>")
            if va != vb:
                diff(p, k, va, vb)
        if p in ga and p in gb:
            la = [esc(x) for x in ga[p]]
            lb = [esc(x) for x in gb[p]]
            if la != lb:
                diff(p, "hardlinks", "{%s}" % ", ".join(la),
                     "{%s}" % ", ".join(lb))
    return diffs


def report(diffs, entries, a, b, limit):
    """Print the differences of b from a: 0 if none, else 1."""
    for line in diffs[:limit]:
        print(line)
    if diffs:
        more = (" (%d not shown)" % (len(diffs) - limit)
                if len(diffs) > limit else "")
        print("tree-compare: %d differences between %s and %s%s" %
              (len(diffs), a, b, more))
        return 1
    print("tree-compare: %d entries equal" % entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
