#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""check-json-dump.py TEXT JSON: the JSON Lines dump of a stream parses
with a real JSON parser and says what the text dump (TZ=UTC) says: the
same commands in the same order, the same paths byte for byte (after
undoing both escapings), the same numbers.  Exit 1 on the first
difference."""
import json
import sys

ESC = {b"a": 7, b"b": 8, b"e": 27, b"f": 12, b"n": 10, b"r": 13, b"t": 9,
       b"v": 11, b" ": 32, b"\\": 92}


def unescape_token(line, pos):
    """Read an escaped path from line at pos; return (bytes, next pos)."""
    out = bytearray()
    while pos < len(line) and line[pos:pos + 1] != b" ":
        c = line[pos:pos + 1]
        if c == b"\\":
            n = line[pos + 1:pos + 2]
            if n in ESC:
                out.append(ESC[n])
                pos += 2
            else:
                out.append(int(line[pos + 1:pos + 4], 8))
                pos += 4
        else:
            out += c
            pos += 1
    return bytes(out), pos


def b(s):
    return s.encode("utf-8", "surrogateescape")


def fields(rest):
    out = {}
    for word in rest.replace(b",", b" ").split():
        if b"=" in word:
            k, _, v = word.partition(b"=")
            out[k.decode()] = v
    return out


def check(text_line, obj):
    title = text_line[:16].strip().decode()
    if title != obj["cmd"]:
        return "command %s != %s" % (title, obj["cmd"])
    path, pos = unescape_token(text_line, 16)
    rest = text_line[pos:]
    subvol = b"./" + b(obj["subvol"])
    want = subvol if title in ("subvol", "snapshot") else \
        subvol + b"/" + b(obj.get("path", ""))
    if path != want:
        return "path %r != %r" % (path, want)
    f = fields(rest)
    num = {
        "subvol": [("transid", "ctransid", 10)],
        "snapshot": [("transid", "ctransid", 10),
                     ("parent_transid", "parent_ctransid", 10)],
        "mknod": [("mode", "mode", 8), ("dev", "rdev", 16)],
        "write": [("offset", "file_offset", 10), ("len", "len", 10)],
        "clone": [("offset", "file_offset", 10), ("len", "len", 10),
                  ("clone_offset", "clone_offset", 10)],
        "truncate": [("size", "size", 10)],
        "chmod": [("mode", "mode", 8)],
        "chown": [("uid", "uid", 10), ("gid", "gid", 10)],
        "update_extent": [("offset", "file_offset", 10), ("len", "len", 10)],
        "fallocate": [("mode", "mode", 10), ("offset", "file_offset", 10),
                      ("len", "len", 10)],
        "encoded_write": [("offset", "file_offset", 10), ("len", "len", 10),
                          ("unencoded_file_len", "unencoded_file_len", 10),
                          ("unencoded_len", "unencoded_len", 10),
                          ("unencoded_offset", "unencoded_offset", 10),
                          ("compression", "compression", 10),
                          ("encryption", "encryption", 10)],
        "set_xattr": [("len", "data_len", 10)],
    }
    for tkey, jkey, base in num.get(title, []):
        v = f[tkey].decode()
        if base == 16:
            v = v[2:]
        if int(v, base) != obj[jkey]:
            return "%s %s != %s %s" % (tkey, v, jkey, obj[jkey])
    if title in ("subvol", "snapshot") and f["uuid"].decode() != obj["uuid"]:
        return "uuid differs"
    if title == "snapshot" and \
            f["parent_uuid"].decode() != obj["parent_uuid"]:
        return "parent uuid differs"
    if title in ("symlink", "link"):
        dest, _ = unescape_token(rest, rest.index(b"dest=") + 5)
        if dest != b(obj["target"]):
            return "target %r != %r" % (dest, obj["target"])
    if title == "rename":
        dest, _ = unescape_token(rest, rest.index(b"dest=") + 5)
        if dest != subvol + b"/" + b(obj["to"]):
            return "rename target differs"
    if title in ("set_xattr", "remove_xattr"):
        name = rest[rest.index(b"name=") + 5:]
        if not name.startswith(b(obj["name"])):
            return "xattr name differs"
    if title == "utimes":
        for k in ("atime", "mtime", "ctime"):
            if f[k].decode()[:19] != obj[k][:19]:
                return "%s %s != %s" % (k, f[k], obj[k])
            if not obj[k].endswith("%09dZ" % obj[k + "_nsec"]):
                return "%s nanoseconds differ" % k
    return None


TITLES = {b"subvol", b"snapshot", b"mkfile", b"mkdir", b"mknod", b"mkfifo",
          b"mksock", b"symlink", b"rename", b"link", b"unlink", b"rmdir",
          b"set_xattr", b"remove_xattr", b"write", b"clone", b"truncate",
          b"chmod", b"chown", b"utimes", b"update_extent", b"fallocate",
          b"fileattr", b"encoded_write", b"enable_verity"}


def text_records(data):
    """Lines of the text dump; an xattr value with a newline continues."""
    records = []
    for line in data.split(b"\n")[:-1]:
        head = line[:16]
        if head.rstrip() in TITLES and (len(line) < 16 or
                                        head == head.rstrip().ljust(16)):
            records.append(line)
        elif records:
            records[-1] += b"\n" + line
        else:
            sys.exit("text dump starts with a continuation line")
    return records


def main():
    text = text_records(open(sys.argv[1], "rb").read())
    objs = []
    for n, line in enumerate(open(sys.argv[2], "rb"), 1):
        try:
            objs.append(json.loads(line))
        except ValueError as e:
            sys.exit("line %d is not JSON: %s" % (n, e))
    cmds = [o for o in objs if o["cmd"] != "end"]
    if len(cmds) != len(text):
        sys.exit("%d commands in JSON, %d lines of text" %
                 (len(cmds), len(text)))
    for n, (t, o) in enumerate(zip(text, cmds), 1):
        err = check(t, o)
        if err:
            sys.exit("command %d: %s\n  text: %r\n  json: %r" % (n, err, t, o))
    print("%d commands agree" % len(cmds))


if __name__ == "__main__":
    main()
