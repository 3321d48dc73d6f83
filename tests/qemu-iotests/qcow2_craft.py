#!/usr/bin/env python3
# Read and patch qcow2 images in place, for tests that need damaged
# metadata.  Standard library only.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: qcow2_craft.py IMAGE COMMAND [ARGS...]
#   header                      print every header field as NAME=VALUE
#   header NAME [NAME...]       print the values of the named fields
#   header NAME=VALUE ...       set header fields
#   poke OFFSET FMT VALUE...    struct.pack(">" + FMT, VALUES) at OFFSET
#   peek OFFSET FMT             print struct.unpack(">" + FMT) at OFFSET
#   poke-str OFFSET STRING      write STRING's bytes (no NUL) at OFFSET
#   fill OFFSET LEN BYTE        write LEN copies of BYTE at OFFSET
#   l1 INDEX [VALUE]            print or set a raw L1 entry
#   l2 GUEST_OFFSET [VALUE]     print or set the raw L2 entry mapping
#                               GUEST_OFFSET (its L2 table must exist)
#   l2-offset GUEST_OFFSET      host offset of the L2 table for GUEST_OFFSET
#   data-offset GUEST_OFFSET    host offset of a normal cluster's data
#   refcount HOST_OFFSET [VALUE]  print or set the refcount of the cluster
#                               holding HOST_OFFSET (its block must exist)
#   describe GUEST_OFFSET       print how the L2 entry maps GUEST_OFFSET:
#                               "normal HOST", "compressed HOST SECTORS",
#                               "zero", "unallocated"
#   compressed GUEST_OFFSET HOST_OFFSET NB_SECTORS
#                               make the L2 entry a compressed descriptor
#   snapshot OFFSET L1_OFFSET L1_SIZE EXTRA_SIZE ID NAME
#                               write a one-entry snapshot table at OFFSET
#                               (EXTRA_SIZE bytes of zeros as extra data)
#                               and point the header at it
#   ext                         list header extensions: TYPE LENGTH OFFSET
#   ext-clear                   remove every header extension
#   ext-add TYPE HEXDATA [LENGTH]
#                               append an extension; LENGTH, if given, is
#                               written instead of the real data length
#   ext-raw HEXBYTES            write raw bytes where the extension area
#                               starts (after header_length)
#   feature-name TYPE BIT NAME  add an entry to the feature name table
#                               (creating the table extension if needed)
# Numbers may be decimal or 0x-prefixed hex, with an optional k, M or G
# suffix; values print as hex.

import struct
import sys

HEADER_FIELDS = [
    # name, offset, struct format
    ("magic", 0, "I"),
    ("version", 4, "I"),
    ("backing_file_offset", 8, "Q"),
    ("backing_file_size", 16, "I"),
    ("cluster_bits", 20, "I"),
    ("size", 24, "Q"),
    ("crypt_method", 32, "I"),
    ("l1_size", 36, "I"),
    ("l1_table_offset", 40, "Q"),
    ("refcount_table_offset", 48, "Q"),
    ("refcount_table_clusters", 56, "I"),
    ("nb_snapshots", 60, "I"),
    ("snapshots_offset", 64, "Q"),
    ("incompatible_features", 72, "Q"),
    ("compatible_features", 80, "Q"),
    ("autoclear_features", 88, "Q"),
    ("refcount_order", 96, "I"),
    ("header_length", 100, "I"),
    ("compression_type", 104, "B"),
]
FIELD = {name: (off, fmt) for name, off, fmt in HEADER_FIELDS}

EXT_END = 0
EXT_FEATURE_NAMES = 0x6803f857
OFFSET_MASK = 0x00fffffffffffe00
COMPRESSED_BIT = 1 << 62
COPIED_BIT = 1 << 63


def num(s):
    """Decimal or 0x hex, with an optional k/M/G (binary) suffix."""
    mult = {"k": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    if mult != 1:
        s = s[:-1]
    return int(s, 0) * mult


class Image:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "r+b")

    def read(self, off, n):
        self.f.seek(off)
        data = self.f.read(n)
        if len(data) != n:
            raise SystemExit("qcow2_craft: short read at %#x" % off)
        return data

    def write(self, off, data):
        self.f.seek(off)
        self.f.write(data)

    def get(self, off, fmt):
        fmt = ">" + fmt
        return struct.unpack(fmt, self.read(off, struct.calcsize(fmt)))

    def put(self, off, fmt, *vals):
        # Shell arithmetic hands over bit 63 as a negative number.
        vals = [v & ((1 << 64) - 1) if isinstance(v, int) and v < 0 else v
                for v in vals]
        self.write(off, struct.pack(">" + fmt, *vals))

    def field(self, name):
        off, fmt = FIELD[name]
        return self.get(off, fmt)[0]

    @property
    def cluster_bits(self):
        return self.field("cluster_bits")

    @property
    def cluster_size(self):
        return 1 << self.cluster_bits

    def header_length(self):
        return self.field("header_length") if self.field("version") >= 3 else 72

    # ---- mapping ---------------------------------------------------------

    def l2_entries(self):
        return self.cluster_size // 8

    def l1_index(self, guest):
        return guest // (self.cluster_size * self.l2_entries())

    def l2_offset(self, guest):
        idx = self.l1_index(guest)
        if idx >= self.field("l1_size"):
            raise SystemExit("qcow2_craft: guest offset beyond the L1 table")
        entry = self.get(self.field("l1_table_offset") + 8 * idx, "Q")[0]
        off = entry & OFFSET_MASK
        if not off:
            raise SystemExit("qcow2_craft: no L2 table for guest offset %#x"
                             % guest)
        return off

    def l2_entry_offset(self, guest):
        idx = (guest // self.cluster_size) % self.l2_entries()
        return self.l2_offset(guest) + 8 * idx

    def refcount_entry(self, host):
        """Byte offset and bit shift of the refcount of HOST's cluster."""
        order = self.field("refcount_order")
        bits = 1 << order
        per_block = self.cluster_size * 8 // bits
        cluster = host // self.cluster_size
        rt_index = cluster // per_block
        rb = self.get(self.field("refcount_table_offset") + 8 * rt_index,
                      "Q")[0] & OFFSET_MASK
        if not rb:
            raise SystemExit("qcow2_craft: no refcount block for %#x" % host)
        bit = (cluster % per_block) * bits
        return rb, bit, bits

    def refcount(self, host, value=None):
        rb, bit, bits = self.refcount_entry(host)
        if bits >= 8:
            fmt = {8: "B", 16: "H", 32: "I", 64: "Q"}[bits]
            off = rb + bit // 8
            if value is None:
                return self.get(off, fmt)[0]
            self.put(off, fmt, value)
            return None
        # Sub-byte widths: entries fill each byte from its least
        # significant bit up.
        off = rb + bit // 8
        shift = bit % 8
        mask = ((1 << bits) - 1) << shift
        byte = self.get(off, "B")[0]
        if value is None:
            return (byte & mask) >> shift
        self.put(off, "B", (byte & ~mask) | ((value << shift) & mask))
        return None

    # ---- header extensions -----------------------------------------------

    def extensions(self):
        """(type, length, offset of data) up to the end marker."""
        exts = []
        off = self.header_length()
        end = self.cluster_size
        bfo = self.field("backing_file_offset")
        if bfo:
            end = min(end, bfo)
        while off + 8 <= end:
            etype, elen = self.get(off, "II")
            if etype == EXT_END:
                break
            exts.append((etype, elen, off + 8))
            off += 8 + ((elen + 7) & ~7)
        return exts

    def write_extensions(self, exts):
        """Rewrite the area from (type, bytes, declared length) items."""
        area = b""
        for etype, data, declared in exts:
            pad = (-len(data)) % 8
            area += struct.pack(">II", etype, declared) + data + b"\0" * pad
        area += struct.pack(">II", EXT_END, 0)
        start = self.header_length()
        limit = self.cluster_size
        bfo = self.field("backing_file_offset")
        if bfo:
            limit = min(limit, bfo)
        if start + len(area) > limit:
            raise SystemExit("qcow2_craft: header extensions do not fit")
        self.write(start, area)

    def current_extensions(self):
        return [(t, self.read(o, n), n) for t, n, o in self.extensions()]


def cmd_header(img, args):
    if not args:
        for name, _, _ in HEADER_FIELDS:
            print("%s=%#x" % (name, img.field(name)))
        return
    for a in args:
        if "=" in a:
            name, val = a.split("=", 1)
            if name not in FIELD:
                raise SystemExit("qcow2_craft: unknown field " + name)
            off, fmt = FIELD[name]
            img.put(off, fmt, num(val))
        else:
            print("%#x" % img.field(a))


def cmd_feature_name(img, ftype, bit, name):
    entry = struct.pack(">BB46s", ftype, bit, name.encode())
    exts = img.current_extensions()
    for i, (t, data, _) in enumerate(exts):
        if t == EXT_FEATURE_NAMES:
            data += entry
            exts[i] = (t, data, len(data))
            break
    else:
        exts.append((EXT_FEATURE_NAMES, entry, len(entry)))
    img.write_extensions(exts)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write("usage: qcow2_craft.py IMAGE COMMAND [ARGS...]\n")
        return 2
    img = Image(argv[1])
    cmd, args = argv[2], argv[3:]

    if cmd == "header":
        cmd_header(img, args)
    elif cmd == "poke":
        img.put(num(args[0]), args[1], *[num(v) for v in args[2:]])
    elif cmd == "fill":
        img.write(num(args[0]), bytes([num(args[2])]) * num(args[1]))
    elif cmd == "poke-str":
        img.write(num(args[0]), args[1].encode())
    elif cmd == "peek":
        print(" ".join("%#x" % v for v in img.get(num(args[0]), args[1])))
    elif cmd == "l1":
        off = img.field("l1_table_offset") + 8 * num(args[0])
        if len(args) > 1:
            img.put(off, "Q", num(args[1]))
        else:
            print("%#x" % img.get(off, "Q")[0])
    elif cmd == "l2":
        off = img.l2_entry_offset(num(args[0]))
        if len(args) > 1:
            img.put(off, "Q", num(args[1]))
        else:
            print("%#x" % img.get(off, "Q")[0])
    elif cmd == "l2-offset":
        print("%#x" % img.l2_offset(num(args[0])))
    elif cmd == "data-offset":
        entry = img.get(img.l2_entry_offset(num(args[0])), "Q")[0]
        if entry & COMPRESSED_BIT:
            raise SystemExit("qcow2_craft: cluster is compressed")
        print("%#x" % (entry & OFFSET_MASK))
    elif cmd == "refcount":
        if len(args) > 1:
            img.refcount(num(args[0]), num(args[1]))
        else:
            print("%#x" % img.refcount(num(args[0])))
    elif cmd == "describe":
        entry = img.get(img.l2_entry_offset(num(args[0])), "Q")[0]
        if entry & COMPRESSED_BIT:
            shift = 62 - (img.cluster_bits - 8)
            host = entry & ((1 << shift) - 1)
            sectors = ((entry & ~COMPRESSED_BIT & ~COPIED_BIT) >> shift) + 1
            print("compressed %#x %d" % (host, sectors))
        elif entry & OFFSET_MASK:
            print("normal %#x" % (entry & OFFSET_MASK))
        elif entry & 1:
            print("zero")
        else:
            print("unallocated")
    elif cmd == "compressed":
        guest, host, sectors = (num(a) for a in args[:3])
        # Host offset in the low bits, (sectors - 1) above them.
        shift = 62 - (img.cluster_bits - 8)
        entry = COMPRESSED_BIT | ((sectors - 1) << shift) | host
        img.put(img.l2_entry_offset(guest), "Q", entry)
    elif cmd == "snapshot":
        off, l1off, l1size, extra = (num(a) for a in args[:4])
        sid, name = args[4].encode(), args[5].encode()
        entry = struct.pack(">QIHHIIQII", l1off, l1size, len(sid), len(name),
                            0, 0, 0, 0, extra)
        entry += b"\0" * extra + sid + name
        entry += b"\0" * ((-len(entry)) % 8)
        img.write(off, entry)
        off_nb, fmt_nb = FIELD["nb_snapshots"]
        img.put(off_nb, fmt_nb, 1)
        off_so, fmt_so = FIELD["snapshots_offset"]
        img.put(off_so, fmt_so, off)
    elif cmd == "ext":
        for t, n, o in img.extensions():
            print("%#010x %d %#x" % (t, n, o))
    elif cmd == "ext-clear":
        img.write_extensions([])
    elif cmd == "ext-add":
        data = bytes.fromhex(args[1])
        declared = num(args[2]) if len(args) > 2 else len(data)
        exts = img.current_extensions()
        exts.append((num(args[0]), data, declared))
        img.write_extensions(exts)
    elif cmd == "ext-raw":
        img.write(img.header_length(), bytes.fromhex(args[0]))
    elif cmd == "feature-name":
        cmd_feature_name(img, num(args[0]), num(args[1]), args[2])
    else:
        sys.stderr.write("qcow2_craft: unknown command %s\n" % cmd)
        return 2
    img.f.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
