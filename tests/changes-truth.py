#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""changes-truth.py: what changed between two snapshots, derived from the
snapshots themselves, and the check of what `btrfs send --changes` and
`btrfs receive --changes` printed.

usage:
  changes-truth.py expect [--prefix P] [--file-type] [--format text|json]
                   PARENT SNAP
  changes-truth.py compare --mode snap|stream [--prefix P] [--file-type]
                   [--format text|json] [--whats JSON] PARENT SNAP OUTPUT
  changes-truth.py --self-test

PARENT and SNAP are two mounted snapshots of one subvolume (SNAP made
from PARENT's subvolume later).  Both are walked by inode number (a
snapshot keeps its parent's inode numbers); a link is a (parent directory
inode, name) pair.  Per inode:

  only in PARENT      '-' for each of its links, at its path in PARENT;
  only in SNAP        '+' for each of its links, at its path in SNAP;
  in both, links differ
                      'R OLD NEW' if it has exactly one link before and
                      one after, else '-' for each link gone and '+' for
                      each link new;
  in both, changed    'M' on one of its paths in SNAP, with what changed:
                      size, mode, owner, group, mtime (ns), xattr (names
                      or values), entries (a directory's set of (name,
                      child inode)), data (a file's new bytes against the
                      old ones zero-extended or cut to the new size; a
                      symlink's target).  ctime and atime never count.

An inode number that changes its file type between the two is a reused
number: a new inode, so '-' and '+' lines, as send treats it.

Paths are P + '/' + the path in the subvolume (the root is P + '/'); P
is empty for receive --changes and SNAP's realpath for send --changes.

expect prints the truth in the text format, sorted (one of an inode's
names for M), or as JSON Lines with --format json.

compare reads OUTPUT (a file, '-' for stdin) in the text format (each
path unescaped: only \\\\, \\t, \\n and \\ooo, and each must be written
exactly as the escaping writes it) or as JSON Lines (invalid UTF-8 as
\\udcXX), and checks it against the truth:

  -, +, R     exactly the truth's, in both modes;
  M           --mode snap: exactly the truth's inodes, on any of each
              one's names in SNAP, with exactly its 'what';
              --mode stream: every truth M is there, on any name; an
              extra M must name a path of SNAP and have 'times' in its
              'what' (in the text format, 'what' comes from --whats,
              the JSON output of the same stream); 'what' is not
              compared otherwise.
  type        (JSON, or --file-type) the truth's: PARENT's type on '-',
              SNAP's on the others; in stream mode 'unknown' ('?') is
              accepted too, since a stream does not always say it.
  links       (JSON) +1 on '+', -1 on '-', 0 on R and M.

Line order is not compared.  Exit 0 if OUTPUT agrees, 1 if not (each
missing, extra or wrong line printed), 2 on a usage error.
"""
import collections
import json
import os
import stat
import sys

ROOT_INO = 256
WHATS = ("data", "size", "mode", "owner", "group", "xattr", "mtime",
         "entries", "times")
TYPE_CHARS = {"file": "F", "dir": "/", "symlink": "@", "blockdev": "B",
              "chardev": "C", "fifo": "|", "socket": "=", "unknown": "?"}
CHAR_TYPES = {v: k for k, v in TYPE_CHARS.items()}
LINKS = {"-": -1, "+": 1, "R": 0, "M": 0}


class UsageError(Exception):
    pass


# ------------------------------------------------------------ the trees

def kind_of(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
                       (stat.S_ISLNK, "symlink"), (stat.S_ISBLK, "blockdev"),
                       (stat.S_ISCHR, "chardev"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "unknown"


class Inode:
    """One inode of a snapshot: what the truth compares, and its links."""

    def __init__(self, ino, mode, uid=0, gid=0, size=0, mtime_ns=0,
                 xattrs=None, data=None, path=None):
        self.ino = ino
        self.kind = kind_of(mode)
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.mtime_ns = mtime_ns
        self.xattrs = xattrs or {}
        self.links = set()
        self.entries = set()
        # A file's bytes or a symlink's target; a file's is read from
        # path only when it is compared.
        self._data = data
        self._path = path

    def data(self):
        if self._data is None and self._path is not None:
            with open(self._path, "rb") as f:
                self._data = f.read()
        return self._data or b""


class Tree:
    """A snapshot: its inodes by number, and each directory's path."""

    def __init__(self):
        self.inodes = {}
        self.dir_rel = {ROOT_INO: b""}

    def rel(self, link):
        parent, name = link
        up = self.dir_rel[parent]
        return up + b"/" + name if up else name

    def names(self, ino):
        """The inode's paths, sorted; the root's is b''."""
        if ino == ROOT_INO:
            return [b""]
        return sorted(self.rel(l) for l in self.inodes[ino].links)


def xattrs_of(path):
    out = {}
    for name in os.listxattr(path, follow_symlinks=False):
        out[name] = os.getxattr(path, name, follow_symlinks=False)
    return out


def inode_of(path, st):
    data = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return Inode(st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_size,
                 st.st_mtime_ns, xattrs_of(path), data,
                 path if stat.S_ISREG(st.st_mode) else None)


def read_tree(top):
    """The tree of a mounted snapshot, nothing followed, not crossing into
    another subvolume or filesystem."""
    top = os.fsencode(top)
    st = os.lstat(top)
    if not stat.S_ISDIR(st.st_mode) or st.st_ino != ROOT_INO:
        raise UsageError("%s is not the top of a subvolume" % os.fsdecode(top))
    tree = Tree()
    tree.inodes[ROOT_INO] = inode_of(top, st)
    stack = [ROOT_INO]
    while stack:
        dino = stack.pop()
        rel = tree.dir_rel[dino]
        dpath = top + b"/" + rel if rel else top
        for name in sorted(os.listdir(dpath)):
            path = dpath + b"/" + name
            cst = os.lstat(path)
            if cst.st_dev != st.st_dev:
                raise UsageError("%s: another subvolume inside" %
                                 os.fsdecode(path))
            ino = cst.st_ino
            if ino not in tree.inodes:
                tree.inodes[ino] = inode_of(path, cst)
                if stat.S_ISDIR(cst.st_mode):
                    tree.dir_rel[ino] = tree.rel((dino, name))
                    stack.append(ino)
            tree.inodes[ino].links.add((dino, name))
            tree.inodes[dino].entries.add((name, ino))
    return tree


# ------------------------------------------------------------ the truth

class Change:
    """One line of the truth or of an output.  rel and new_rel are paths
    in the subvolume (b'' for the root); names are all the rels an M may
    be printed on."""

    def __init__(self, change, rel, new_rel=None, kind=None, links=None,
                 what=None, names=None, text=None, ino=None):
        self.change = change
        # The inode of a - or + line of an inode in both snapshots.
        self.ino = ino
        self.rel = rel
        self.new_rel = new_rel
        self.kind = kind
        self.links = links
        self.what = what
        self.names = names or [rel]
        self.text = text

    def key(self):
        return (self.change, self.rel, self.new_rel)


def sized(data, size):
    """data zero-extended or cut to size."""
    return data[:size] + bytes(max(0, size - len(data)))


def what_changed(old, new):
    what = set()
    if old.size != new.size:
        what.add("size")
    if old.mode != new.mode:
        what.add("mode")
    if old.uid != new.uid:
        what.add("owner")
    if old.gid != new.gid:
        what.add("group")
    if old.mtime_ns != new.mtime_ns:
        what.add("mtime")
    if old.xattrs != new.xattrs:
        what.add("xattr")
    if new.kind == "dir" and old.entries != new.entries:
        what.add("entries")
    if new.kind == "file" and sized(new.data(), new.size) != \
            sized(old.data(), new.size):
        what.add("data")
    elif new.kind == "symlink" and old.data() != new.data():
        what.add("data")
    return what


def truth(ptree, stree):
    """The list of Changes from ptree to stree."""
    out = []

    def gone(tree, ino, links, same=None):
        for l in sorted(links):
            out.append(Change("-", tree.rel(l), kind=tree.inodes[ino].kind,
                              links=-1, ino=same))

    def new(tree, ino, links, same=None):
        for l in sorted(links):
            out.append(Change("+", tree.rel(l), kind=tree.inodes[ino].kind,
                              links=1, ino=same))

    for ino in sorted(set(ptree.inodes) | set(stree.inodes)):
        old = ptree.inodes.get(ino)
        cur = stree.inodes.get(ino)
        renewed = old is not None and cur is not None and \
            old.kind != cur.kind
        if old is not None and (cur is None or renewed):
            gone(ptree, ino, old.links)
        if cur is not None and (old is None or renewed):
            new(stree, ino, cur.links)
        if old is None or cur is None or renewed:
            continue
        if old.links != cur.links:
            if len(old.links) == 1 and len(cur.links) == 1:
                out.append(Change("R", ptree.rel(next(iter(old.links))),
                                  stree.rel(next(iter(cur.links))),
                                  kind=cur.kind, links=0))
            else:
                gone(ptree, ino, old.links - cur.links, ino)
                new(stree, ino, cur.links - old.links, ino)
        what = what_changed(old, cur)
        if what:
            names = stree.names(ino)
            out.append(Change("M", names[0], kind=cur.kind, links=0,
                              what=what, names=names))
    return out


# ------------------------------------------------------------ the formats

def escape(b):
    out = bytearray()
    for c in b:
        if c == 0x5c:
            out += b"\\\\"
        elif c == 0x09:
            out += b"\\t"
        elif c == 0x0a:
            out += b"\\n"
        elif c < 0x20 or c >= 0x7f:
            out += b"\\%03o" % c
        else:
            out.append(c)
    return bytes(out)


def unescape(field):
    """The bytes of an escaped field; ValueError if it is not exactly as
    escape() writes it."""
    out = bytearray()
    i = 0
    while i < len(field):
        c = field[i]
        if c != 0x5c:
            out.append(c)
            i += 1
            continue
        n = field[i + 1:i + 2]
        if n == b"\\":
            out.append(0x5c)
            i += 2
        elif n == b"t":
            out.append(9)
            i += 2
        elif n == b"n":
            out.append(10)
            i += 2
        elif len(field) >= i + 4 and all(0x30 <= d <= 0x37
                                         for d in field[i + 1:i + 4]):
            v = int(field[i + 1:i + 4], 8)
            if v > 0xff:
                raise ValueError("escape out of range")
            out.append(v)
            i += 4
        else:
            raise ValueError("unknown escape")
    out = bytes(out)
    if escape(out) != field:
        raise ValueError("not escaped as specified (want %s)" %
                         escape(out).decode("ascii"))
    return out


def full_path(prefix, rel):
    return prefix + b"/" + rel


def text_line(ch, prefix, file_type):
    fields = [ch.change.encode()]
    if file_type:
        fields.append(TYPE_CHARS[ch.kind].encode())
    fields.append(escape(full_path(prefix, ch.rel)))
    if ch.new_rel is not None:
        fields.append(escape(full_path(prefix, ch.new_rel)))
    return b"\t".join(fields)


def json_str(b):
    return b.decode("utf-8", "surrogateescape")


def json_line(ch, prefix):
    obj = {"change": ch.change, "path": json_str(full_path(prefix, ch.rel))}
    if ch.new_rel is not None:
        obj["new_path"] = json_str(full_path(prefix, ch.new_rel))
    obj["type"] = ch.kind
    obj["links"] = LINKS[ch.change]
    obj["what"] = [w for w in WHATS if w in (ch.what or ())]
    return json.dumps(obj).encode()


def describe(ch):
    """A readable form of a Change for messages: its text line, and its
    'what' if known."""
    s = text_line(ch, b"", False).decode("ascii")
    if ch.what:
        s += "  (%s)" % " ".join(w for w in WHATS if w in ch.what)
    return s


def strip_prefix(path, prefix):
    head = prefix + b"/"
    if not path.startswith(head):
        raise ValueError("path %s does not begin with %s" %
                         (escape(path).decode(), escape(head).decode()))
    return path[len(head):]


def output_lines(data, problems):
    """The lines of an output; one without its newline is a problem."""
    lines = data.split(b"\n")
    if lines[-1]:
        problems.append("no newline at the end of the output")
    else:
        lines.pop()
    return lines


def parse_text(data, prefix, file_type):
    """(Changes, problems) of a text output."""
    out, problems = [], []
    for n, line in enumerate(output_lines(data, problems), 1):
        shown = line.decode("ascii", "backslashreplace")
        fields = line.split(b"\t")
        try:
            change = fields.pop(0).decode("ascii")
            if change not in LINKS:
                raise ValueError("unknown change letter")
            kind = None
            if file_type:
                t = fields.pop(0).decode("ascii") if fields else ""
                if t not in CHAR_TYPES:
                    raise ValueError("unknown file type %r" % t)
                kind = CHAR_TYPES[t]
            want = 2 if change == "R" else 1
            if len(fields) != want:
                raise ValueError("%d paths, want %d" % (len(fields), want))
            rels = [strip_prefix(unescape(f), prefix) for f in fields]
        except (ValueError, UnicodeDecodeError) as e:
            problems.append("line %d malformed (%s): %r" % (n, e, line))
            continue
        out.append(Change(change, rels[0], rels[1] if want == 2 else None,
                          kind=kind, text=shown))
    return out, problems


JSON_KEYS = {"change", "path", "type", "links", "what"}


def json_bytes(s):
    if not isinstance(s, str):
        raise ValueError("not a string")
    return s.encode("utf-8", "surrogateescape")


def parse_json(data, prefix):
    out, problems = [], []
    for n, line in enumerate(output_lines(data, problems), 1):
        shown = line.decode("utf-8", "backslashreplace")
        try:
            obj = json.loads(line.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            change = obj.get("change")
            if change not in LINKS:
                raise ValueError("unknown change %r" % change)
            keys = JSON_KEYS | ({"new_path"} if change == "R" else set())
            if set(obj) != keys:
                raise ValueError("keys %s, want %s" %
                                 (sorted(obj), sorted(keys)))
            if obj["type"] not in TYPE_CHARS:
                raise ValueError("unknown type %r" % obj["type"])
            what = obj["what"]
            if not isinstance(what, list) or \
                    any(w not in WHATS for w in what) or \
                    len(set(what)) != len(what):
                raise ValueError("bad what %r" % (what,))
            if not isinstance(obj["links"], int) or \
                    isinstance(obj["links"], bool):
                raise ValueError("links not an integer")
            rel = strip_prefix(json_bytes(obj["path"]), prefix)
            new_rel = None
            if change == "R":
                new_rel = strip_prefix(json_bytes(obj["new_path"]), prefix)
        except (ValueError, UnicodeError) as e:
            problems.append("line %d malformed (%s): %r" % (n, e, line))
            continue
        out.append(Change(change, rel, new_rel, kind=obj["type"],
                          links=obj["links"], what=set(what), text=shown))
    return out, problems


# ------------------------------------------------------------ the check

def moved_link(pending, g):
    """Whether the R line g stands for a '-' and a '+' of one inode of
    several links in the truth; if so they are taken from pending."""
    if g.change != "R":
        return False
    gone = pending[("-", g.rel, None)]
    new = pending[("+", g.new_rel, None)]
    for t in gone:
        for u in new:
            if t.ino is not None and t.ino == u.ino:
                gone.remove(t)
                new.remove(u)
                return True
    return False


def compare(want, got, mode, stree_names, whats=None):
    """Problems of the output got (Changes) against the truth want.
    stree_names: every path of SNAP (for the extra M of a stream);
    whats: rel -> 'what' of M lines from the JSON of the same stream."""
    problems = []
    stream = mode == "stream"

    def check_fields(t, g):
        if g.kind is not None and g.kind != t.kind and \
                not (stream and g.kind == "unknown"):
            problems.append("wrong type %s, want %s: %s" %
                            (g.kind, t.kind, g.text))
        if g.links is not None and g.links != LINKS[g.change]:
            problems.append("wrong links %d, want %d: %s" %
                            (g.links, LINKS[g.change], g.text))
        if g.what is not None and g.change != "M" and g.what:
            problems.append("what must be empty on a %s line: %s" %
                            (g.change, g.text))

    # -, + and R: the same multiset.
    pending = collections.defaultdict(list)
    for t in want:
        if t.change != "M":
            pending[t.key()].append(t)
    extra = []
    for g in got:
        if g.change == "M":
            continue
        if pending[g.key()]:
            check_fields(pending[g.key()].pop(), g)
        else:
            extra.append(g)
    if stream:
        # A stream has no link counts: one name of a file with other hard
        # links, moved, looks like a rename (see btrfs-receive(8)).
        extra = [g for g in extra if not moved_link(pending, g)]
    for ts in pending.values():
        for t in ts:
            problems.append("missing: " + describe(t))
    for g in extra:
        problems.append("extra: " + g.text)

    # M: one per inode, on any of its names in SNAP.
    by_name = {}
    for t in want:
        if t.change == "M":
            for name in t.names:
                by_name[name] = t
    matched = set()
    for g in got:
        if g.change != "M":
            continue
        t = by_name.get(g.rel)
        if t is not None and id(t) not in matched:
            matched.add(id(t))
            check_fields(t, g)
            if not stream and g.what is not None and g.what != t.what:
                problems.append("wrong what [%s], want [%s]: %s" % (
                    " ".join(w for w in WHATS if w in g.what),
                    " ".join(w for w in WHATS if w in t.what), g.text))
            continue
        what = g.what
        if what is None and whats is not None:
            what = whats.get(g.rel)
        if not stream:
            problems.append("extra: " + g.text)
        elif g.rel not in stree_names:
            problems.append("extra M on a path not in SNAP: " + g.text)
        elif what is None:
            problems.append("extra M, and no 'what' to show 'times': " +
                            g.text)
        elif "times" not in what:
            problems.append("extra M without 'times' in its what [%s]: %s"
                            % (" ".join(sorted(what)), g.text))
    for t in want:
        if t.change == "M" and id(t) not in matched:
            problems.append("missing: " + describe(t))
    return problems


def whats_of(data, prefix):
    """rel -> what of the M lines of a JSON output."""
    got, problems = parse_json(data, prefix)
    out = {}
    for g in got:
        if g.change == "M":
            out.setdefault(g.rel, set()).update(g.what)
    return out, problems


def all_names(tree):
    names = set()
    for ino in tree.inodes:
        names.update(tree.names(ino))
    return names


def run_compare(ptree, stree, data, mode, prefix, fmt, file_type,
                whats_data=None):
    """The problems of one output (bytes) against the truth."""
    if fmt == "json":
        got, problems = parse_json(data, prefix)
    else:
        got, problems = parse_text(data, prefix, file_type)
    whats = None
    if whats_data is not None:
        whats, more = whats_of(whats_data, prefix)
        problems += ["--whats: " + p for p in more]
    return problems + compare(truth(ptree, stree), got, mode,
                              all_names(stree), whats)


def render(changes, prefix, fmt, file_type):
    if fmt == "json":
        lines = [json_line(c, prefix) for c in changes]
    else:
        lines = [text_line(c, prefix, file_type) for c in changes]
    return b"".join(l + b"\n" for l in sorted(lines))


# ------------------------------------------------------------ self-test

def mem_tree(spec):
    """A Tree from {path: (ino, type letter, attributes)}: the root is
    path '' (inode 256, added if missing), a hard link is a second path
    with the same inode (its attributes are the first path's)."""
    tree = Tree()
    modes = {"f": stat.S_IFREG | 0o644, "d": stat.S_IFDIR | 0o755,
             "l": stat.S_IFLNK | 0o777, "p": stat.S_IFIFO | 0o644}
    spec = dict(spec)
    spec.setdefault("", (ROOT_INO, "d", {}))
    for path in sorted(spec, key=lambda p: (p.count("/"), p)):
        ino, t, attrs = spec[path]
        bpath = path.encode("utf-8", "surrogateescape")
        if ino not in tree.inodes:
            attrs = dict(attrs)
            data = attrs.pop("data", b"" if t in "fl" else None)
            if "mode" in attrs:
                attrs["mode"] = stat.S_IFMT(modes[t]) | attrs["mode"]
            else:
                attrs["mode"] = modes[t]
            attrs.setdefault("size", len(data) if data is not None else 0)
            tree.inodes[ino] = Inode(ino, data=data, **attrs)
            if t == "d":
                tree.dir_rel[ino] = bpath
        if path:
            up, _, name = bpath.rpartition(b"/")
            parent = spec[up.decode("utf-8", "surrogateescape")][0]
            tree.inodes[ino].links.add((parent, name))
            tree.inodes[parent].entries.add((name, ino))
    return tree


# Each: (name, PARENT spec, SNAP spec, the expected text lines with
# each M's what after two spaces, sorted).
TRUTH_CASES = [
    ("renamed directory, one child changed",
     {"a": (257, "d", {}), "a/f": (258, "f", {"data": b"x"}),
      "a/g": (259, "f", {"data": b"y"})},
     {"": (256, "d", {"mtime_ns": 1}), "d": (257, "d", {}),
      "d/f": (258, "f", {"data": b"z"}), "d/g": (259, "f", {"data": b"y"})},
     ["M\t/  (mtime entries)", "M\t/d/f  (data)", "R\t/a\t/d"]),
    ("a file in a renamed directory is not renamed",
     {"a": (257, "d", {}), "a/f": (258, "f", {})},
     {"b": (257, "d", {}), "b/f": (258, "f", {})},
     ["M\t/  (entries)", "R\t/a\t/b"]),
    ("swap of two names",
     {"a": (257, "f", {}), "b": (258, "f", {})},
     {"a": (258, "f", {}), "b": (257, "f", {})},
     ["M\t/  (entries)", "R\t/a\t/b", "R\t/b\t/a"]),
    ("a hard link added, another removed, a linked file renamed",
     {"f": (257, "f", {}), "g": (258, "f", {}), "h": (258, "f", {}),
      "k": (259, "f", {}), "k2": (259, "f", {})},
     {"f": (257, "f", {}), "f2": (257, "f", {}), "g": (258, "f", {}),
      "k": (259, "f", {}), "k3": (259, "f", {})},
     ["+\t/f2", "+\t/k3", "-\t/h", "-\t/k2", "M\t/  (entries)"]),
    ("a file that becomes a directory, a name deleted and re-created",
     {"f": (257, "f", {}), "g": (258, "f", {"data": b"1"})},
     {"f": (259, "d", {}), "g": (260, "f", {"data": b"1"})},
     ["+\t/f", "+\t/g", "-\t/f", "-\t/g", "M\t/  (entries)"]),
    ("a reused inode number of another type is a new inode",
     {"f": (257, "f", {})}, {"f": (257, "p", {})},
     ["+\t/f", "-\t/f"]),
    ("truncates, appends, rewrites",
     {"shrink": (257, "f", {"data": b"abc"}),
      "grow": (258, "f", {"data": b"abc"}),
      "append": (259, "f", {"data": b"abc"}),
      "zeros": (260, "f", {"data": b"abc"}),
      "same": (261, "f", {"data": b"abc"}),
      "edit": (262, "f", {"data": b"abc"})},
     {"shrink": (257, "f", {"data": b"ab"}),
      "grow": (258, "f", {"data": b"abc", "size": 5}),
      "append": (259, "f", {"data": b"abcd"}),
      "zeros": (260, "f", {"data": b"abc\0\0"}),
      "same": (261, "f", {"data": b"abc"}),
      "edit": (262, "f", {"data": b"abd"})},
     ["M\t/append  (data size)", "M\t/edit  (data)", "M\t/grow  (size)",
      "M\t/shrink  (size)", "M\t/zeros  (size)"]),
    ("attributes",
     {"m": (257, "f", {}), "o": (258, "f", {}), "x": (259, "f", {}),
      "x2": (260, "f", {"xattrs": {"user.a": b"1"}}),
      "t": (261, "f", {"mtime_ns": 5}), "l": (262, "l", {"data": b"a"})},
     {"m": (257, "f", {"mode": 0o600}), "o": (258, "f", {"uid": 1}),
      "x": (259, "f", {"xattrs": {"user.a": b"1"}}),
      "x2": (260, "f", {"xattrs": {"user.a": b"2"}}),
      "t": (261, "f", {"mtime_ns": 6}), "l": (262, "l", {"data": b"b"})},
     ["M\t/l  (data)", "M\t/m  (mode)", "M\t/o  (owner)",
      "M\t/t  (mtime)", "M\t/x  (xattr)", "M\t/x2  (xattr)"]),
    ("escaped names",
     {}, {"t\tn\nb\\\udcff \x01\x7f\u00e9": (257, "f", {})},
     ["+\t/t\\tn\\nb\\\\\\377 \\001\\177\\303\\251", "M\t/  (entries)"]),
]


def expect_lines(ptree, stree):
    out = []
    for c in truth(ptree, stree):
        s = text_line(c, b"", False).decode("ascii")
        if c.what:
            s += "  (%s)" % " ".join(w for w in WHATS if w in c.what)
        out.append(s)
    return sorted(out)


# The base of the compare cases: a renamed directory with a changed
# child, a hard-linked file changed, an escaped name.
CMP_P = {"a": (257, "d", {}), "a/f": (258, "f", {"data": b"x"}),
         "h1": (259, "f", {"data": b"1"}), "h2": (259, "f", {}),
         "keep": (260, "f", {})}
CMP_S = {"": (256, "d", {"mtime_ns": 1}), "d": (257, "d", {}),
         "d/f": (258, "f", {"data": b"xy"}),
         "h1": (259, "f", {"data": b"2"}), "h2": (259, "f", {}),
         "keep": (260, "f", {}), "n\tb\udcff": (261, "f", {})}
CMP_TEXT = (b"M\t/\n"
            b"R\t/a\t/d\n"
            b"M\t/d/f\n"
            b"M\t/h2\n"
            b"+\t/n\\tb\\377\n")
CMP_JSON = (b'{"change": "M", "path": "/", "type": "dir", "links": 0, '
            b'"what": ["mtime", "entries"]}\n'
            b'{"change": "R", "path": "/a", "new_path": "/d", '
            b'"type": "dir", "links": 0, "what": []}\n'
            b'{"change": "M", "path": "/d/f", "type": "file", "links": 0, '
            b'"what": ["data", "size"]}\n'
            b'{"change": "M", "path": "/h1", "type": "file", "links": 0, '
            b'"what": ["data"]}\n'
            b'{"change": "+", "path": "/n\\tb\\udcff", "type": "file", '
            b'"links": 1, "what": []}\n')


def edit(data, old, new):
    assert old in data, old
    return data.replace(old, new, 1)


# Each: (name, mode, format, file_type, prefix, output, whats, ok).
COMPARE_CASES = [
    ("exact text, snap", "snap", "text", False, b"", CMP_TEXT, None, True),
    ("exact text, stream", "stream", "text", False, b"", CMP_TEXT, None,
     True),
    ("exact json, snap", "snap", "json", False, b"", CMP_JSON, None, True),
    ("lines in another order", "snap", "text", False, b"",
     b"".join(sorted(CMP_TEXT.splitlines(True))), None, True),
    ("with a prefix", "snap", "text", False, b"/mnt/s2",
     CMP_TEXT.replace(b"\t/", b"\t/mnt/s2/"), None, True),
    ("without the prefix wanted", "snap", "text", False, b"/mnt/s2",
     CMP_TEXT, None, False),
    ("with --file-type", "snap", "text", True, b"",
     b"M\t/\t/\nR\t/\t/a\t/d\nM\tF\t/d/f\nM\tF\t/h2\n+\tF\t/n\\tb\\377\n",
     None, True),
    ("a wrong type", "snap", "text", True, b"",
     b"M\t/\t/\nR\tF\t/a\t/d\nM\tF\t/d/f\nM\tF\t/h2\n+\tF\t/n\\tb\\377\n",
     None, False),
    ("an unknown type, stream", "stream", "text", True, b"",
     b"M\t/\t/\nR\t?\t/a\t/d\nM\tF\t/d/f\nM\tF\t/h2\n+\t?\t/n\\tb\\377\n",
     None, True),
    ("an unknown type, snap", "snap", "json", False, b"",
     edit(CMP_JSON, b'"type": "dir", "links": 0, "what": []',
          b'"type": "unknown", "links": 0, "what": []'), None, False),
    ("a missing line", "snap", "text", False, b"",
     edit(CMP_TEXT, b"R\t/a\t/d\n", b""), None, False),
    ("a missing M, stream", "stream", "json", False, b"",
     edit(CMP_JSON, CMP_JSON.splitlines(True)[2], b""), None, False),
    ("a duplicate line", "stream", "text", False, b"",
     CMP_TEXT + b"R\t/a\t/d\n", None, False),
    ("two Ms of one inode, snap", "snap", "text", False, b"",
     CMP_TEXT + b"M\t/h1\n", None, False),
    ("an extra M with times, stream", "stream", "json", False, b"",
     CMP_JSON + b'{"change": "M", "path": "/keep", "type": "file", '
     b'"links": 0, "what": ["times"]}\n', None, True),
    ("an extra M without times, stream", "stream", "json", False, b"",
     CMP_JSON + b'{"change": "M", "path": "/keep", "type": "file", '
     b'"links": 0, "what": ["data"]}\n', None, False),
    ("an extra M with times, snap", "snap", "json", False, b"",
     CMP_JSON + b'{"change": "M", "path": "/keep", "type": "file", '
     b'"links": 0, "what": ["times"]}\n', None, False),
    ("an extra M with times on a path not in SNAP, stream", "stream",
     "json", False, b"",
     CMP_JSON + b'{"change": "M", "path": "/a", "type": "dir", '
     b'"links": 0, "what": ["times"]}\n', None, False),
    ("an extra text M, no --whats, stream", "stream", "text", False, b"",
     CMP_TEXT + b"M\t/keep\n", None, False),
    ("an extra text M, times in --whats, stream", "stream", "text", False,
     b"", CMP_TEXT + b"M\t/keep\n",
     b'{"change": "M", "path": "/keep", "type": "file", "links": 0, '
     b'"what": ["times"]}\n', True),
    ("an extra text M, no times in --whats, stream", "stream", "text",
     False, b"", CMP_TEXT + b"M\t/keep\n",
     b'{"change": "M", "path": "/keep", "type": "file", "links": 0, '
     b'"what": ["mtime"]}\n', False),
    ("a wrong what, snap", "snap", "json", False, b"",
     edit(CMP_JSON, b'"what": ["data", "size"]', b'"what": ["data"]'),
     None, False),
    ("times in a what, snap", "snap", "json", False, b"",
     edit(CMP_JSON, b'"what": ["data", "size"]',
          b'"what": ["data", "size", "times"]'), None, False),
    ("a wrong what, stream", "stream", "json", False, b"",
     edit(CMP_JSON, b'"what": ["data", "size"]', b'"what": ["times"]'),
     None, True),
    ("an unknown what", "stream", "json", False, b"",
     edit(CMP_JSON, b'"what": ["data", "size"]', b'"what": ["ctime"]'),
     None, False),
    ("a what on an R line", "stream", "json", False, b"",
     edit(CMP_JSON, b'"links": 0, "what": []', b'"links": 0, '
          b'"what": ["times"]'), None, False),
    ("wrong links", "snap", "json", False, b"",
     edit(CMP_JSON, b'"links": 1', b'"links": 0'), None, False),
    ("new_path on an M line", "snap", "json", False, b"",
     edit(CMP_JSON, b'"path": "/h1",', b'"path": "/h1", "new_path": "/x",'),
     None, False),
    ("a tab escaped as octal", "snap", "text", False, b"",
     edit(CMP_TEXT, b"\\tb", b"\\011b"), None, False),
    ("a byte above 0x7f not escaped", "snap", "text", False, b"",
     edit(CMP_TEXT, b"\\377", b"\xff"), None, False),
    ("a space escaped", "snap", "text", False, b"",
     edit(CMP_TEXT, b"/h2", b"/h\\0402"), None, False),
    ("an unknown escape", "snap", "text", False, b"",
     edit(CMP_TEXT, b"\\377", b"\\xff"), None, False),
    ("a name with the wrong byte", "snap", "text", False, b"",
     edit(CMP_TEXT, b"\\377", b"\\376"), None, False),
    ("a json name with the wrong byte", "snap", "json", False, b"",
     edit(CMP_JSON, b"\\udcff", b"\\udcfe"), None, False),
    ("a json name as a code point, not a byte", "snap", "json", False, b"",
     edit(CMP_JSON, b"\\udcff", b"\\u00ff"), None, False),
    ("no newline at the end", "snap", "text", False, b"", CMP_TEXT[:-1],
     None, False),
    ("an empty line", "snap", "text", False, b"", CMP_TEXT + b"\n", None,
     False),
]


def self_test():
    bad = 0
    for name, pspec, sspec, want in TRUTH_CASES:
        got = expect_lines(mem_tree(pspec), mem_tree(sspec))
        if got != want:
            bad += 1
            print("changes-truth self-test: %s: truth\n  %s\nwant\n  %s"
                  % (name, "\n  ".join(got), "\n  ".join(want)),
                  file=sys.stderr)
    ptree, stree = mem_tree(CMP_P), mem_tree(CMP_S)
    for name, mode, fmt, ftype, prefix, data, whats, ok in COMPARE_CASES:
        problems = run_compare(ptree, stree, data, mode, prefix, fmt, ftype,
                               whats)
        if (not problems) != ok:
            bad += 1
            print("changes-truth self-test: %s: %s, want %s%s" % (
                name, "agrees" if not problems else "disagrees",
                "agreement" if ok else "a disagreement",
                "".join("\n  " + p for p in problems)), file=sys.stderr)
    # A moved name of a file of two links: R from a stream alone only.
    lp = mem_tree({"x": (270, "f", {}), "y": (270, "f", {})})
    ls = mem_tree({"": (256, "d", {"mtime_ns": 1}), "x": (270, "f", {}),
                   "z": (270, "f", {})})
    for mode, ok in (("stream", True), ("snap", False)):
        problems = run_compare(lp, ls, b"M\t/\nR\t/y\t/z\n", mode, b"",
                               "text", False)
        if (not problems) != ok:
            bad += 1
            print("changes-truth self-test: a moved hard link as R, %s: %s"
                  % (mode, "agrees" if not problems else "disagrees"),
                  file=sys.stderr)
    # What expect writes is what compare accepts, in every form.
    for fmt in ("text", "json"):
        for ftype in (False, True):
            data = render(truth(ptree, stree), b"/p", fmt, ftype)
            for mode in ("snap", "stream"):
                problems = run_compare(ptree, stree, data, mode, b"/p", fmt,
                                       ftype)
                if problems:
                    bad += 1
                    print("changes-truth self-test: expect's own %s output "
                          "(file type %s) refused in %s mode:%s" %
                          (fmt, ftype, mode,
                           "".join("\n  " + p for p in problems)),
                          file=sys.stderr)
    if bad:
        print("changes-truth self-test: %d failed" % bad, file=sys.stderr)
        return 1
    print("changes-truth self-test: %d truth and %d compare cases passed"
          % (len(TRUTH_CASES), len(COMPARE_CASES)))
    return 0


# ------------------------------------------------------------ main

def parse_args(argv):
    opts = {"prefix": b"", "format": "text", "file_type": False,
            "mode": None, "whats": None}
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--prefix", "--format", "--mode", "--whats"):
            if i + 1 >= len(argv):
                raise UsageError("%s needs a value" % a)
            v = argv[i + 1]
            i += 2
            if a == "--prefix":
                opts["prefix"] = os.fsencode(v).rstrip(b"/")
            elif a == "--format":
                if v not in ("text", "json"):
                    raise UsageError("--format text or json")
                opts["format"] = v
            elif a == "--mode":
                if v not in ("snap", "stream"):
                    raise UsageError("--mode snap or stream")
                opts["mode"] = v
            else:
                opts["whats"] = v
            continue
        if a == "--file-type":
            opts["file_type"] = True
        elif a.startswith("--"):
            raise UsageError("unknown option " + a)
        else:
            args.append(a)
        i += 1
    return opts, args


def read_input(name):
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as f:
        return f.read()


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    try:
        if len(argv) < 2 or argv[1] not in ("expect", "compare"):
            raise UsageError("expect or compare, or --self-test")
        opts, args = parse_args(argv[2:])
        if argv[1] == "expect":
            if len(args) != 2 or opts["mode"] or opts["whats"]:
                raise UsageError("expect [--prefix P] [--file-type] "
                                 "[--format text|json] PARENT SNAP")
            changes = truth(read_tree(args[0]), read_tree(args[1]))
            sys.stdout.buffer.write(render(changes, opts["prefix"],
                                           opts["format"],
                                           opts["file_type"]))
            return 0
        if len(args) != 3 or not opts["mode"]:
            raise UsageError("compare --mode snap|stream [--prefix P] "
                             "[--file-type] [--format text|json] "
                             "[--whats JSON] PARENT SNAP OUTPUT")
        whats = read_input(opts["whats"]) if opts["whats"] else None
        problems = run_compare(read_tree(args[0]), read_tree(args[1]),
                               read_input(args[2]), opts["mode"],
                               opts["prefix"], opts["format"],
                               opts["file_type"], whats)
    except (UsageError, OSError) as e:
        print("changes-truth: %s" % e, file=sys.stderr)
        return 2
    for p in problems:
        print("changes-truth: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
