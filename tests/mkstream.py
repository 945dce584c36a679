#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Test-only send stream writer: builds streams command by command, valid or
deliberately wrong, from a small text spec on stdin (or a file), to stdout.

Spec lines (blank lines and '#' comments ignored):
  header [VERSION] [magic=TEXT]       a stream header (default version 1)
  CMD [ATTR=VALUE ...] [!crc=0xN] [!len=N] [!type=N]
                                      a command; CMD is a name (subvol, write,
                                      ...) or a number
  raw HEX                             literal bytes
Attribute names are those of the protocol, lowercase (path, uuid, ...), or
a number.  Values:
  s:TEXT    bytes of TEXT, with Python escapes (\\n, \\x00, \\xff, ...)
  u8:N u16:N u32:N u64:N              little-endian integers
  uuid:HEX  16 bytes (dashes allowed)
  ts:SEC.NSEC                         a timespec
  hex:HEX   raw bytes
  fill:N:B  N bytes of value B
A value may be followed by !len=N to lie about its TLV length.  In a
version >= 2 stream, data= is written without a length, as the kernel does
(data!tlv forces a v1-style header).
"""
import struct
import sys
import zlib  # noqa: F401  (kept for callers that build compressed payloads)

CMDS = ["unspec", "subvol", "snapshot", "mkfile", "mkdir", "mknod", "mkfifo",
        "mksock", "symlink", "rename", "link", "unlink", "rmdir", "set_xattr",
        "remove_xattr", "write", "clone", "truncate", "chmod", "chown",
        "utimes", "end", "update_extent", "fallocate", "fileattr",
        "encoded_write", "enable_verity"]
ATTRS = ["unspec", "uuid", "ctransid", "ino", "size", "mode", "uid", "gid",
         "rdev", "ctime", "mtime", "atime", "otime", "xattr_name",
         "xattr_data", "path", "path_to", "path_link", "file_offset", "data",
         "clone_uuid", "clone_ctransid", "clone_path", "clone_offset",
         "clone_len", "fallocate_mode", "fileattr", "unencoded_file_len",
         "unencoded_len", "unencoded_offset", "compression", "encryption",
         "verity_algorithm", "verity_block_size", "verity_salt_data",
         "verity_sig_data"]
DATA = 19


def crc32c(data, crc=0):
    table = crc32c.table
    if table is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
            table.append(c)
        crc32c.table = table
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xff]
    return crc


crc32c.table = None


def value(v):
    kind, _, rest = v.partition(":")
    if kind == "s":
        return rest.encode("latin-1").decode("unicode_escape").encode(
            "latin-1")
    if kind in ("u8", "u16", "u32", "u64"):
        fmt = {"u8": "<B", "u16": "<H", "u32": "<I", "u64": "<Q"}[kind]
        return struct.pack(fmt, int(rest, 0))
    if kind == "uuid":
        b = bytes.fromhex(rest.replace("-", ""))
        assert len(b) == 16
        return b
    if kind == "ts":
        sec, _, nsec = rest.partition(".")
        return struct.pack("<QI", int(sec), int(nsec or 0))
    if kind == "hex":
        return bytes.fromhex(rest)
    if kind == "fill":
        n, _, b = rest.partition(":")
        return bytes([int(b or "0", 0)]) * int(n)
    raise SystemExit("mkstream: bad value %r" % v)


def lookup(name, table):
    try:
        return int(name, 0)
    except ValueError:
        return table.index(name)


def command(words, version):
    cmd = lookup(words[0], CMDS)
    payload = b""
    overrides = {}
    for w in words[1:]:
        if w.startswith("!"):
            k, _, v = w[1:].partition("=")
            overrides[k] = int(v, 0)
            continue
        name, _, v = w.partition("=")
        opts = {}
        if "!" in v:
            v, *extra = v.split("!")
            for e in extra:
                k, _, x = e.partition("=")
                opts[k] = x
        tlv_hdr_forced = name.endswith("!tlv")
        name = name.replace("!tlv", "")
        t = lookup(name, ATTRS)
        val = value(v)
        if t == DATA and version >= 2 and not tlv_hdr_forced:
            payload += struct.pack("<H", t) + val
        else:
            ln = int(opts["len"], 0) if "len" in opts else len(val)
            payload += struct.pack("<HH", t, ln) + val
    ln = overrides.get("len", len(payload))
    ctype = overrides.get("type", cmd)
    hdr = struct.pack("<IHI", ln, ctype, 0)
    crc = overrides.get("crc", crc32c(payload, crc32c(hdr)))
    return struct.pack("<IHI", ln, ctype, crc) + payload


def build(lines):
    out = bytearray()
    version = 1
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] == "header":
            version = 1
            magic = b"btrfs-stream\0"
            for w in words[1:]:
                if w.startswith("magic="):
                    magic = value("s:" + w[6:])
                else:
                    version = int(w, 0)
            out += magic + struct.pack("<I", version)
        elif words[0] == "raw":
            out += bytes.fromhex("".join(words[1:]))
        else:
            out += command(words, version)
    return bytes(out)


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    sys.stdout.buffer.write(build(src.read().splitlines()))


if __name__ == "__main__":
    main()
