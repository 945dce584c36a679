#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""make-datasets.py PHASE ROOT [--scale S] [--big DIR] [--night N]
                   [--manifest FILE]

Fill the benchmark datasets, deterministically (fixed seeds), in one
process.  The subvolumes themselves are made by bench/run-bench.sh and
bench/run-scale.sh.

  big ROOT      4 incompressible files of 512 MiB * S
  small ROOT    100,000 * S files of 0-8 KiB in about 1,000 directories,
                with symlinks, hardlinks and user.* xattrs
  sparse ROOT   4 sparse files of 4 GiB * S, 1,024 * S scattered 64 KiB
                extents each
  incr ROOT     turn a copy (snapshot) of `small` into its incremental:
                10% of the files modified, 5% deleted, 5% renamed across
                directories, 2,000 * S new files, a directory tree renamed,
                xattrs and symlinks changed, and reflinks (FICLONE /
                FICLONERANGE, as cp --reflink=always) from the files of
                `big` (--big DIR, on the same filesystem)
  night ROOT    night N (--night N) of a chain of nightly backups of a
                `small` tree: about 1% of its files changed, half of them
                modified, the rest deleted, renamed across directories or
                new

--manifest FILE merges {"PHASE": {"entries": N, "bytes": B, ...}} into
the JSON FILE: `entries` is what files/s is counted in (every name in the
tree for `small`, every name changed for `incr`).
"""
import argparse
import fcntl
import json
import os
import random
import struct
import sys

MiB = 1 << 20
KiB = 1 << 10
FICLONE = 0x40049409
FICLONERANGE = 0x4020940D
SEEDS = {"big": 1001, "small": 2002, "sparse": 3003, "incr": 4004,
         "night": 5005}


class Blocks:
    """Incompressible data, fast: a pool of PRNG bytes, from which each
    block is a window at a pseudo-random offset, stamped with a counter so
    that no two blocks are equal (no dedup, no compression)."""

    def __init__(self, rng, pool=16 * MiB):
        self.rng = rng
        self.pool = rng.randbytes(pool)
        self.n = 0

    def get(self, size):
        if size == 0:
            return b""
        self.n += 1
        stamp = struct.pack("<QQ", self.n, self.rng.getrandbits(64))
        if size <= len(stamp):
            return stamp[:size]
        off = self.rng.randrange(0, len(self.pool) - size + 1)
        return stamp + self.pool[off + len(stamp):off + size]


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    os.chmod(path, mode)


def make_big(root, scale):
    rng = random.Random(SEEDS["big"])
    blocks = Blocks(rng, pool=64 * MiB)
    size = max(1, round(512 * scale)) * MiB
    for i in range(4):
        fd = os.open(os.path.join(root, "f%d" % i),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for _ in range(size // MiB):
                buf = memoryview(blocks.get(MiB))
                while buf:
                    buf = buf[os.write(fd, buf):]
        finally:
            os.close(fd)
    return {"entries": 5, "files": 4, "bytes": 4 * size}


def leaf_dirs(scale):
    """10 top directories, about 1,000 * S leaves below them."""
    leaves = max(10, round(1000 * scale))
    return ["d%d/s%03d" % (i % 10, i // 10) for i in range(leaves)]


def make_small(root, scale):
    rng = random.Random(SEEDS["small"])
    blocks = Blocks(rng)
    nfiles = max(100, round(100000 * scale))
    leaves = leaf_dirs(scale)
    for top in sorted({leaf.split("/")[0] for leaf in leaves}):
        os.mkdir(os.path.join(root, top))
    for leaf in leaves:
        os.mkdir(os.path.join(root, leaf))
    files = []
    nbytes = 0
    nxattr = 0
    for k in range(nfiles):
        rel = "%s/f%06d" % (rng.choice(leaves), k)
        size = rng.randrange(0, 8 * KiB + 1)
        r = rng.random()
        mode = 0o755 if r < 0.10 else 0o600 if r < 0.15 else 0o644
        path = os.path.join(root, rel)
        write_file(path, blocks.get(size), mode)
        nbytes += size
        if rng.random() < 0.10:
            os.setxattr(path, "user.bench", rng.randbytes(
                rng.randrange(16, 65)).hex().encode())
            nxattr += 1
            if rng.random() < 0.3:
                os.setxattr(path, "user.tag", b"tag-%d" % k)
                nxattr += 1
        files.append(rel)
    nlinks = max(2, nfiles // 50)
    for k in range(nlinks):
        # Symlinks: relative, to a file of the tree; one in 10 dangles.
        leaf = rng.choice(leaves)
        target = rng.choice(files)
        if k % 10 == 0:
            target += ".missing"
        os.symlink("../../" + target,
                   os.path.join(root, leaf, "l%06d" % k))
    for k in range(nlinks):
        src = rng.choice(files)
        os.link(os.path.join(root, src),
                os.path.join(root, rng.choice(leaves), "h%06d" % k))
    for top in ("d1", "d5"):
        os.setxattr(os.path.join(root, top), "user.dir", b"directory xattr")
    ndirs = len(leaves) + 10
    return {"entries": nfiles + 2 * nlinks + ndirs + 1, "files": nfiles,
            "symlinks": nlinks, "hardlinks": nlinks, "dirs": ndirs,
            "xattrs": nxattr, "bytes": nbytes}


def make_sparse(root, scale):
    rng = random.Random(SEEDS["sparse"])
    blocks = Blocks(rng)
    ext = 64 * KiB
    size = max(64, round(4096 * scale)) * MiB
    count = max(16, round(1024 * scale))
    for i in range(4):
        fd = os.open(os.path.join(root, "sparse%d" % i),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, size)
            for slot in sorted(rng.sample(range(size // ext), count)):
                os.pwrite(fd, blocks.get(ext), slot * ext)
        finally:
            os.close(fd)
    return {"entries": 5, "files": 4, "bytes": 4 * count * ext,
            "apparent_bytes": 4 * size}


def regular_files(root):
    """Every regular file name of the tree (hardlinks included), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                out.append(os.path.relpath(path, root))
    return out


def make_incr(root, scale, big):
    rng = random.Random(SEEDS["incr"])
    blocks = Blocks(rng)
    leaves = leaf_dirs(scale)
    files = [f for f in regular_files(root) if f.startswith("d")]
    n = len(files)
    picked = rng.sample(files, n * 20 // 100)
    modified = picked[:n // 10]
    deleted = picked[n // 10:n // 10 + n // 20]
    renamed = picked[n // 10 + n // 20:]
    changed = 0
    for rel in modified:
        path = os.path.join(root, rel)
        size = os.path.getsize(path)
        fd = os.open(path, os.O_WRONLY)
        try:
            if size and rng.random() < 0.5:
                # Overwrite a block-sized piece in place.
                length = rng.randrange(1, min(size, 4 * KiB) + 1)
                off = rng.randrange(0, size - length + 1)
                os.pwrite(fd, blocks.get(length), off)
            else:
                os.pwrite(fd, blocks.get(rng.randrange(1, 2 * KiB)), size)
        finally:
            os.close(fd)
        changed += 1
    for rel in deleted:
        os.unlink(os.path.join(root, rel))
        changed += 1
    for rel in renamed:
        leaf = rng.choice([d for d in leaves if not rel.startswith(d + "/")])
        os.rename(os.path.join(root, rel),
                  os.path.join(root, leaf, "r-" + os.path.basename(rel)))
        changed += 1
    nnew = max(20, round(2000 * scale))
    for k in range(nnew):
        path = os.path.join(root, rng.choice(leaves), "n%06d" % k)
        write_file(path, blocks.get(rng.randrange(0, 8 * KiB + 1)))
        if rng.random() < 0.1:
            os.setxattr(path, "user.bench", b"new")
        changed += 1
    # xattrs changed and removed, symlinks replaced.
    for rel in rng.sample(files, max(1, n // 100)):
        path = os.path.join(root, rel)
        if not os.path.exists(path):
            continue
        if b"user.bench" in [x.encode() for x in os.listxattr(path)]:
            os.removexattr(path, "user.bench")
        else:
            os.setxattr(path, "user.bench", b"changed")
        changed += 1
    links = []
    for dirpath, _, filenames in os.walk(root):
        links += sorted(os.path.join(dirpath, f) for f in filenames
                        if f.startswith("l"))
    links.sort()
    for path in rng.sample(links, max(1, len(links) // 20)):
        os.unlink(path)
        os.symlink("../../elsewhere/" + os.path.basename(path), path)
        changed += 1
    # Reflinks from big: whole files and ranges.
    os.mkdir(os.path.join(root, "reflinked"))
    bigs = sorted(os.listdir(big))
    bigsize = os.path.getsize(os.path.join(big, bigs[0]))
    cloned = 0
    src = os.open(os.path.join(big, bigs[0]), os.O_RDONLY)
    dst = os.open(os.path.join(root, "reflinked", "whole"),
                  os.O_WRONLY | os.O_CREAT, 0o644)
    fcntl.ioctl(dst, FICLONE, src)
    os.close(dst)
    os.close(src)
    cloned += bigsize
    changed += 1
    for k in range(max(4, round(64 * scale))):
        name = rng.choice(bigs)
        length = rng.randrange(1, 9) * MiB
        length = min(length, bigsize)
        off = rng.randrange(0, (bigsize - length) // MiB + 1) * MiB
        src = os.open(os.path.join(big, name), os.O_RDONLY)
        dst = os.open(os.path.join(root, "reflinked", "range%03d" % k),
                      os.O_WRONLY | os.O_CREAT, 0o644)
        # A small header of its own, then the cloned range at 64 KiB.
        os.write(dst, blocks.get(64 * KiB))
        fcntl.ioctl(dst, FICLONERANGE,
                    struct.pack("=qQQQ", src, off, length, 64 * KiB))
        os.close(dst)
        os.close(src)
        cloned += length
        changed += 1
    # A directory tree renamed and moved, and a leaf renamed.
    os.rename(os.path.join(root, "d3"), os.path.join(root, "d7", "moved-d3"))
    leaf = leaf_dirs(scale)[1]
    os.rename(os.path.join(root, leaf), os.path.join(root, "d2", "renamed-s"))
    changed += 2
    return {"entries": changed, "modified": len(modified),
            "deleted": len(deleted), "renamed": len(renamed), "new": nnew,
            "cloned_bytes": cloned}


def make_night(root, night):
    rng = random.Random(SEEDS["night"] * 1000 + night)
    blocks = Blocks(rng, pool=MiB)
    files = regular_files(root)
    n = max(4, len(files) // 400)
    picked = rng.sample(files, 4 * n)
    for rel in picked[:2 * n]:
        path = os.path.join(root, rel)
        size = os.path.getsize(path)
        fd = os.open(path, os.O_WRONLY)
        try:
            at = rng.randrange(0, size + 1)
            os.pwrite(fd, blocks.get(rng.randrange(1, 2 * KiB)), at)
        finally:
            os.close(fd)
    for rel in picked[2 * n:3 * n]:
        os.unlink(os.path.join(root, rel))
    dirs = sorted({os.path.dirname(f) for f in files})
    for k, rel in enumerate(picked[3 * n:]):
        os.rename(os.path.join(root, rel), os.path.join(
            root, rng.choice(dirs), "n%03d-r%d" % (night, k)))
    for k in range(n):
        write_file(os.path.join(root, rng.choice(dirs), "n%03d-f%d" % (
            night, k)), blocks.get(rng.randrange(0, 8 * KiB + 1)))
    return {"entries": 5 * n, "modified": 2 * n, "deleted": n,
            "renamed": n, "new": n}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase",
                    choices=["big", "small", "sparse", "incr", "night"])
    ap.add_argument("root")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--big", help="the big snapshot, for incr's reflinks")
    ap.add_argument("--night", type=int, default=1)
    ap.add_argument("--manifest")
    opts = ap.parse_args()
    os.umask(0)
    if opts.phase == "big":
        info = make_big(opts.root, opts.scale)
    elif opts.phase == "small":
        info = make_small(opts.root, opts.scale)
    elif opts.phase == "sparse":
        info = make_sparse(opts.root, opts.scale)
    elif opts.phase == "night":
        info = make_night(opts.root, opts.night)
    else:
        if not opts.big:
            ap.error("incr needs --big")
        info = make_incr(opts.root, opts.scale, opts.big)
    if opts.manifest:
        data = {}
        if os.path.exists(opts.manifest):
            with open(opts.manifest) as f:
                data = json.load(f)
        data[opts.phase] = info
        with open(opts.manifest, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
    print("%s: %s" % (opts.phase, json.dumps(info, sort_keys=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
