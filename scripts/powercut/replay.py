#!/usr/bin/env python3
# Power-cut replay for qcow2 images (plain and zoned).
#
# A seeded workload runs through our qemu-io with the blklogwrites filter
# below the qcow2 driver, which logs every write, write-zeroes, discard,
# truncate and flush that reaches the image file (block/blklogwrites.c
# has the log format).  Then, for every flush in the log and for random
# points between flushes, the file is rebuilt as a power cut could leave
# it: everything a completed flush covered, plus a random subset of the
# later writes (a volatile cache may have kept any of them).  Each state
# must open, check without corruption (leaks allowed), read back every
# guest write a completed guest flush covered (unflushed ones may read
# old or new), take a write and check clean again.  Zoned images must
# also have every write pointer at least where the last completed flush
# or zone operation left it, only data written since the zone's last
# reset below it, zeroes above it, and no zone open.
#
# Standard library only.  docs/powercut.rst describes the model.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

SECTOR = 512
PROMPT = b'qemu-io> '

# Log record types (block/blklogwrites.c).
WRITE, ZERO, DISCARD, FLUSH, TRUNCATE, OPENED = 1, 2, 3, 4, 5, 6
HEAD = struct.Struct('<IIQQ')

# Value of a sector never written since its zone's last reset (reads 0).
NONE = -1


class Violation(Exception):
    pass


# ---- log ---------------------------------------------------------------

def parse_log(path):
    """Records as (type, a, b, data_offset) and their end offsets."""
    with open(path, 'rb') as f:
        buf = f.read()
    if buf[:8] != b'BLKLOGW1':
        raise ValueError('%s: not a blklogwrites log' % path)
    pos, recs, ends = 16, [], []
    while pos + HEAD.size <= len(buf):
        t, _, a, b = HEAD.unpack_from(buf, pos)
        pos += HEAD.size
        d = pos
        if t == WRITE:
            pos += b
        if pos > len(buf):
            break
        recs.append((t, a, b, d))
        ends.append(pos)
    return buf, recs, ends


class FileState:
    """The image file's bytes, as records are applied."""

    def __init__(self, data=b''):
        self.data = bytearray(data)

    def copy(self):
        return FileState(self.data)

    def apply(self, log, rec):
        t, a, b, d = rec
        data = self.data
        if t == WRITE:
            if a + b > len(data):
                data.extend(bytes(a + b - len(data)))
            data[a:a + b] = log[d:d + b]
        elif t == ZERO:
            if a + b > len(data):
                data.extend(bytes(a + b - len(data)))
            data[a:a + b] = bytes(b)
        elif t == DISCARD:
            end = min(a + b, len(data))
            if end > a:
                data[a:end] = bytes(end - a)
        elif t == TRUNCATE:
            if a < len(data):
                del data[a:]
            else:
                data.extend(bytes(a - len(data)))


# ---- workloads ------------------------------------------------------------

class Workload:
    """The image's geometry and the commands run on it."""

    def __init__(self, rng, zoned):
        self.rng = rng
        self.zoned = zoned
        self.cmds = []       # (text, effect), as run
        self.pat = 0

    def pattern(self):
        # 0xcd is what zone appends write; 0 is zeroes.
        self.pat = self.pat % 250 + 1
        if self.pat == 0xcd:
            self.pat += 1
        return self.pat


def plain_workload(rng):
    w = Workload(rng, False)
    cs = rng.choice([512, 4096, 4096, 65536])
    size = rng.choice([2, 4, 8]) * 1024 * 1024 if cs != 512 else 1024 * 1024
    w.create_opts = 'cluster_size=%d' % cs
    if rng.random() < 0.3:
        w.create_opts += ',lazy_refcounts=on'
    if rng.random() < 0.2:
        w.create_opts += ',refcount_bits=%d' % rng.choice([1, 4, 64])
    w.size = size
    w.cluster = cs
    w.gen = plain_commands(w, rng)
    return w


def plain_commands(w, rng):
    cs, size = w.cluster, w.size
    for _ in range(rng.randint(30, 80)):
        r = rng.random()
        if r < 0.12:
            yield 'flush', ('flush',)
        elif r < 0.45:
            # Partial and multi-cluster writes, unaligned to clusters.
            ln = rng.randint(1, max(1, 3 * cs // SECTOR)) * SECTOR
            ln = min(ln, 256 * 1024)
            off = rng.randrange(0, (size - ln) // SECTOR + 1) * SECTOR
            p = w.pattern()
            yield 'write -P %d %d %d' % (p, off, ln), ('write', off, ln, p)
        elif r < 0.6:
            k = rng.randint(1, 3)
            off = rng.randrange(0, size // cs - k + 1) * cs
            p = w.pattern()
            yield ('write -c -P %d %d %d' % (p, off, k * cs),
                   ('write', off, k * cs, p))
        elif r < 0.72:
            k = rng.randint(1, 4)
            off = rng.randrange(0, size // cs - k + 1) * cs
            yield 'discard %d %d' % (off, k * cs), ('write', off, k * cs, 0)
        elif r < 0.84:
            ln = rng.randint(1, max(1, 2 * cs // SECTOR)) * SECTOR
            off = rng.randrange(0, (size - ln) // SECTOR + 1) * SECTOR
            u = ' -u' if rng.random() < 0.5 else ''
            yield 'write -z%s %d %d' % (u, off, ln), ('write', off, ln, 0)
        else:
            # Whole-cluster rewrites: COW of compressed clusters, freed
            # clusters reused.
            off = rng.randrange(0, size // cs) * cs
            p = w.pattern()
            yield 'write -P %d %d %d' % (p, off, cs), ('write', off, cs, p)
    yield 'flush', ('flush',)


def zoned_workload(rng):
    w = Workload(rng, True)
    cs = rng.choice([4096, 65536])
    zs = max(rng.choice([64, 128, 256]) * 1024, cs)
    nz = rng.randint(4, 8)
    conv = rng.choice([0, 1, 1])
    maxopen = rng.choice([0, 2, 3])
    w.create_opts = ('cluster_size=%d,zone.mode=host-managed,zone.size=%d,'
                     'zone.conventional_zones=%d,zone.max_open_zones=%d'
                     % (cs, zs, conv, maxopen))
    w.size = nz * zs
    w.cluster = cs
    w.zone_size = zs
    w.nr_zones = nz
    w.conv = conv
    w.gen = zoned_commands(w, rng)
    return w


def zoned_commands(w, rng):
    """Commands chosen knowing how the previous ones went (a refused
    write, e.g. at the open limit, leaves the write pointer alone)."""
    zs, nz, conv = w.zone_size, w.nr_zones, w.conv
    wp = [z * zs for z in range(nz)]
    for _ in range(rng.randint(30, 80)):
        r = rng.random()
        z = rng.randrange(conv, nz)
        start, end = z * zs, (z + 1) * zs
        room = (end - wp[z]) // SECTOR
        if r < 0.12:
            yield 'flush', ('flush',)
        elif r < 0.5 and room:
            ln = rng.randint(1, min(room, 64)) * SECTOR
            p = w.pattern()
            if (yield ('write -P %d %d %d' % (p, wp[z], ln),
                       ('zwrite', z, wp[z], ln, p))):
                wp[z] += ln
        elif r < 0.7 and room:
            ln = rng.randint(1, min(room, 32)) * SECTOR
            if (yield ('zap -p %d %d' % (start, ln),
                       ('zwrite', z, wp[z], ln, 0xcd))):
                wp[z] += ln
        elif r < 0.76:
            if (yield 'zf %d %d' % (start, zs), ('finish', z)):
                wp[z] = end
        elif r < 0.84:
            if (yield 'zrs %d %d' % (start, zs), ('reset', z)):
                wp[z] = start
        elif r < 0.88:
            yield 'zo %d %d' % (start, zs), ('nop',)
        elif r < 0.92:
            yield 'zc %d %d' % (start, zs), ('nop',)
        elif conv:
            ln = rng.randint(1, 16) * SECTOR
            off = rng.randrange(0, (zs - ln) // SECTOR + 1) * SECTOR
            if rng.random() < 0.3:
                yield 'write -z %d %d' % (off, ln), ('write', off, ln, 0)
            else:
                p = w.pattern()
                yield 'write -P %d %d %d' % (p, off, ln), ('write', off, ln, p)
    yield 'flush', ('flush',)


APPENDED = re.compile(rb'append sector is 0x([0-9a-f]+)')


def run_workload(args, w, img, log):
    """Run the commands in one qemu-io, one at a time; returns the log
    size before and after each, and whether each succeeded."""
    opts = ('driver=qcow2,file.driver=blklogwrites,file.file.driver=file,'
            'file.file.filename=%s,file.log-file=%s,discard=unmap'
            % (img, log))
    p = subprocess.Popen([args.qemu_io, '--image-opts', opts],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    fd = p.stdout.fileno()

    def until_prompt():
        out = b''
        while not out.endswith(PROMPT):
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError('qemu-io exited: %r' % out)
            out += chunk
        return out[:-len(PROMPT)]

    until_prompt()
    spans, ok = [], []
    prev = os.path.getsize(log)
    res = None
    while True:
        try:
            text, eff = w.gen.send(res)
        except StopIteration:
            break
        p.stdin.write(text.encode() + b'\n')
        p.stdin.flush()
        out = until_prompt()
        size = os.path.getsize(log)
        spans.append((prev, size))
        prev = size
        res = not (b'failed' in out or b'rror' in out or b'not found' in out)
        m = APPENDED.search(out)
        if res and eff[0] == 'zwrite' and text.startswith('zap') and \
                (not m or int(m.group(1), 16) * SECTOR != eff[2]):
            raise RuntimeError('%s: appended at %r, expected %#x'
                               % (text, out, eff[2]))
        w.cmds.append((text, eff))
        ok.append(res)
    p.stdin.write(b'quit\n')
    p.stdin.close()
    p.stdout.read()
    p.wait()
    return spans, ok


# ---- the guest model ------------------------------------------------------

class Model:
    """What the guest may read after a cut, per 512-byte sector.

    durable[s]: the value a completed guest flush (or, in zones, a
    completed zone operation) guarantees; pending[s]: values written
    since, any of which may be found instead.  Values are the pattern
    byte of a write (0 for zeroes); NONE is "not written since the
    zone's last reset" and reads as 0.
    """

    def __init__(self, w):
        self.w = w
        self.durable = {}
        self.pending = {}
        self.last = {}
        if w.zoned:
            self.wp = [z * w.zone_size for z in range(w.nr_zones)]
            self.floor = list(self.wp)

    def is_seq(self, s):
        w = self.w
        return w.zoned and s * SECTOR // w.zone_size >= w.conv

    def default(self, s):
        return NONE if self.is_seq(s) else 0

    def write(self, off, ln, v, pending, failed=False):
        for s in range(off // SECTOR, (off + ln) // SECTOR):
            pending.setdefault(s, set()).add(v)
            if pending is not self.pending:
                continue
            if failed:
                # A failed write may have changed any part of its range.
                old = self.last.get(s) or self.durable.get(s) or \
                    {self.default(s)}
                self.last[s] = old | {v}
            else:
                self.last[s] = {v}

    def flush(self):
        self.durable.update(self.last)
        self.last.clear()
        self.pending.clear()
        if self.w.zoned:
            self.floor = list(self.wp)

    def zone_durable(self, z, lo, hi, v):
        """A completed zone operation made [lo, hi) durably v."""
        for s in range(lo // SECTOR, hi // SECTOR):
            self.durable[s] = {v}
            self.pending.pop(s, None)
            self.last.pop(s, None)

    def apply(self, eff, ok=True):
        """A command that completed before the cut (@ok: successfully)."""
        k = eff[0]
        if k == 'write':
            self.write(eff[1], eff[2], eff[3], self.pending, not ok)
        if not ok:
            # Refused zone commands change nothing.
            return
        if k == 'zwrite':
            _, z, off, ln, v = eff
            self.write(off, ln, v, self.pending)
            self.wp[z] = off + ln
        elif k == 'flush':
            self.flush()
        elif k == 'finish':
            z = eff[1]
            end = (z + 1) * self.w.zone_size
            # Finish persists the zone: what was written in it must be
            # durable already, and the rest reads as zeroes.
            self.zone_durable(z, self.wp[z], end, 0)
            self.wp[z] = end
            self.floor[z] = end
        elif k == 'reset':
            z = eff[1]
            start = z * self.w.zone_size
            self.zone_durable(z, start, start + self.w.zone_size, NONE)
            self.wp[z] = start
            self.floor[z] = start

    def extra(self, eff, extra, floor):
        """A command in progress at the cut: its effect may be there."""
        k = eff[0]
        if k == 'write':
            self.write(eff[1], eff[2], eff[3], extra)
        elif k == 'zwrite':
            self.write(eff[2], eff[3], eff[4], extra)
        elif k == 'finish':
            z = eff[1]
            self.write(self.wp[z], (z + 1) * self.w.zone_size - self.wp[z],
                       0, extra)
        elif k == 'reset':
            floor[eff[1]] = eff[1] * self.w.zone_size

    def allowed(self, s, extra):
        a = set(self.pending.get(s, ()))
        a |= self.durable.get(s) or {self.default(s)}
        a |= extra.get(s, set())
        return a


# ---- checks ----------------------------------------------------------------

def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, **kw)


ZRP = re.compile(r'start: 0x([0-9a-f]+), len 0x([0-9a-f]+), cap 0x([0-9a-f]+), '
                 r'wptr 0x([0-9a-f]+), zcond:(\d+), \[type: (\d+)\]')


def dirty(img):
    """The dirty bit (lazy refcounts): refcounts may lag until the next
    read-write open rebuilds them, so check only after that."""
    with open(img, 'rb') as f:
        head = f.read(80)
    if len(head) < 80:
        return False
    return struct.unpack_from('>I', head, 4)[0] >= 3 and \
        struct.unpack_from('>Q', head, 72)[0] & 1


def check_data(args, w, model, extra, img, raw, clean=False):
    """Check and read the image, without zone checks."""
    r = run([args.qemu_img, 'check', '-f', 'qcow2', img])
    if r.returncode not in ((0,) if clean else (0, 3)) and \
            (clean or not dirty(img)):
        raise Violation('check after the cut exits %d:\n%s'
                        % (r.returncode, r.stdout.decode(errors='replace')))
    data = read_image(args, w, img, raw)
    if not w.zoned or clean:
        compare(w, model, extra, data, None)
    return data


def read_image(args, w, img, raw):
    r = run([args.qemu_img, 'convert', '-f', 'qcow2', '-O', 'raw', img, raw])
    if r.returncode != 0:
        raise Violation('convert (read) fails:\n%s'
                        % r.stdout.decode(errors='replace'))
    with open(raw, 'rb') as f:
        data = f.read()
    if len(data) != w.size:
        raise Violation('virtual size %d, expected %d' % (len(data), w.size))
    return data


def check_image(args, w, model, extra, floor, img, raw, rng):
    data = check_data(args, w, model, extra, img, raw)

    # Write after reopening; zoned images also report their zones first.
    cmds = []
    if w.zoned:
        cmds += ['-c', 'zrp 0 %d' % w.nr_zones]
        zs = w.zone_size
        last = (w.nr_zones - 1) * zs
        if w.conv:
            cmds += ['-c', 'write -P 254 0 4k']
        cmds += ['-c', 'zrs %d %d' % (last, zs), '-c', 'zap -p %d 4k' % last]
    else:
        off = rng.randrange(0, w.size // SECTOR - 16) * SECTOR
        cmds += ['-c', 'write -P 254 %d 8k' % off]
    cmds += ['-c', 'flush']
    r = run([args.qemu_io, '-f', 'qcow2'] + cmds + [img])
    out = r.stdout.decode(errors='replace')
    if r.returncode != 0 or 'failed' in out or 'rror' in out:
        raise Violation('write after reopening fails (%d):\n%s'
                        % (r.returncode, out))

    # Data.
    wps = None
    if w.zoned:
        zones = ZRP.findall(out)
        if len(zones) != w.nr_zones:
            raise Violation('zone report:\n%s' % out)
        wps = []
        for z, (st, ln, cap, wptr, cond, typ) in enumerate(zones):
            st, ln, cap, wptr = (int(x, 16) * SECTOR
                                 for x in (st, ln, cap, wptr))
            cond = int(cond)
            wps.append(wptr)
            if z < w.conv:
                continue
            if wptr < floor[z]:
                raise Violation('zone %d: write pointer %#x below %#x, '
                                'its value at the last completed flush or '
                                'zone operation' % (z, wptr, floor[z]))
            if cond in (2, 3):
                raise Violation('zone %d came back open (zcond %d)'
                                % (z, cond))
            want = 1 if wptr == st else 14 if wptr >= st + cap else 4
            if cond != want:
                raise Violation('zone %d: condition %d, expected %d for '
                                'wp %#x' % (z, cond, want, wptr))
    if w.zoned:
        compare(w, model, extra, data, wps)

    r = run([args.qemu_img, 'check', '-f', 'qcow2', img])
    if r.returncode not in (0, 3):
        raise Violation('check after the write exits %d:\n%s'
                        % (r.returncode, r.stdout.decode(errors='replace')))


def compare(w, model, extra, data, wps):
    for s in range(w.size // SECTOR):
        chunk = data[s * SECTOR:(s + 1) * SECTOR]
        b = chunk[0]
        if chunk.count(b) != SECTOR:
            raise Violation('sector %d (offset %#x) is not one pattern'
                            % (s, s * SECTOR))
        allowed = model.allowed(s, extra)
        if wps is not None and model.is_seq(s):
            z = s * SECTOR // w.zone_size
            if s * SECTOR >= wps[z]:
                allowed = {0}
            else:
                allowed.discard(NONE)
                if not allowed:
                    raise Violation('zone %d: sector %d (offset %#x) below '
                                    'the write pointer %#x was never written'
                                    % (z, s, s * SECTOR, wps[z]))
        vals = {0 if v == NONE else v for v in allowed}
        if b not in vals:
            raise Violation('offset %#x reads %#x, expected one of %s'
                            % (s * SECTOR, b,
                               sorted('%#x' % v for v in vals)))


# ---- driver -------------------------------------------------------------------

def exhaustive_cuts(recs, opened, args):
    """Every record boundary; at each, every volatile record kept alone
    and dropped alone, and all of them kept."""
    cuts, cover = [], 0
    for P in range(opened, len(recs) + 1):
        if P > opened and recs[P - 1][0] == FLUSH:
            cover = max(cover, recs[P - 1][1])
        vol = [i for i in range(cover, P) if recs[i][0] not in (FLUSH, OPENED)]
        cuts.append((P, ('all', None)))
        for i in vol:
            cuts.append((P, ('only', i)))
            if len(vol) > 1:
                cuts.append((P, ('all-but', i)))
    return cuts


def num(word):
    """A qemu-io number: plain, or with a k/m suffix."""
    mult = {'k': 1024, 'm': 1024 * 1024}.get(word[-1].lower(), 1)
    return int(word[:-1] if mult > 1 else word) * mult


def parse_command(text):
    """The guest effect of a qemu-io command given in a --commands file."""
    words = text.split()
    if words[0] == 'flush':
        return ('flush',)
    if words[0] == 'discard':
        return ('write', num(words[-2]), num(words[-1]), 0)
    if words[0] == 'write':
        p = int(words[words.index('-P') + 1]) if '-P' in words else 0xcd
        if '-z' in words or '-zu' in words:
            p = 0
        return ('write', num(words[-2]), num(words[-1]), p)
    raise ValueError('--commands: cannot model %r' % text)


def file_workload(args):
    w = Workload(None, False)
    w.create_opts = args.create_opts
    w.size = args.size
    cmds = [l.strip() for l in open(args.commands) if l.strip() and
            not l.startswith('#')]

    def gen():
        for c in cmds:
            yield c, parse_command(c)
    w.gen = gen()
    return w


def one_workload(args, seed, zoned, ncuts, tmp, stats):
    stats['workloads'] += 1
    rng = random.Random(seed)
    if args.commands:
        w = file_workload(args)
    else:
        w = zoned_workload(rng) if zoned else plain_workload(rng)
    img = os.path.join(tmp, 'work.qcow2')
    log = os.path.join(tmp, 'work.log')
    cut = os.path.join(tmp, 'cut.qcow2')
    raw = os.path.join(tmp, 'cut.raw')
    r = run([args.qemu_img, 'create', '-f', 'qcow2', '-o', w.create_opts,
             img, str(w.size)])
    if r.returncode != 0:
        raise RuntimeError('create: %s' % r.stdout.decode())
    spans, ok = run_workload(args, w, img, log)
    buf, recs, ends = parse_log(log)

    # Byte offsets in the log -> record counts.
    def count_at(pos):
        lo, hi = 0, len(ends)
        while lo < hi:
            mid = (lo + hi) // 2
            if ends[mid] <= pos:
                lo = mid + 1
            else:
                hi = mid
        return lo
    spans = [(count_at(a), count_at(b)) for a, b in spans]
    # The log must rebuild the file exactly as the workload left it.
    whole = FileState()
    for rec in recs:
        whole.apply(buf, rec)
    with open(img, 'rb') as f:
        if f.read() != whole.data:
            raise RuntimeError('seed %d: the log does not rebuild the image'
                               % seed)
    # The workload alone, closed cleanly: a clean check and exact data.
    final = Model(w)
    for (_, eff), o in zip(w.cmds, ok):
        final.apply(eff, o)
    final.flush()
    try:
        check_data(args, w, final, {}, img, raw, clean=True)
    except Violation as e:
        stats['violations'] += 1
        print('VIOLATION (%s workload seed %d, no cut: the image as the '
              'workload left it):\n%s' % ('zoned' if zoned else 'plain',
                                          seed, e), flush=True)
        if args.keep_failures:
            os.makedirs(args.keep_failures, exist_ok=True)
            with open(os.path.join(args.keep_failures,
                                   'fail-%d-final.cmds' % seed), 'w') as f:
                f.write(w.create_opts + '\n')
                for (t, _), o in zip(w.cmds, ok):
                    f.write('%s%s\n' % (t, '' if o else '\tFAILED'))
        if args.stop:
            return False

    opened = next(i for i, r in enumerate(recs) if r[0] == OPENED) + 1

    # Cut points: just before and just after every flush, and random ones.
    cuts = set()
    for i in range(opened, len(recs)):
        if recs[i][0] == FLUSH:
            cuts.add(i)
            cuts.add(i + 1)
    cuts = sorted(cuts)
    rng.shuffle(cuts)
    cuts = cuts[:ncuts // 2]
    while len(cuts) < ncuts:
        cuts.append(rng.randint(opened, len(recs)))
    if args.cut is not None:
        cuts = [args.cut]
    cuts = [(P, None) for P in sorted(cuts)]
    if args.exhaustive:
        cuts = exhaustive_cuts(recs, opened, args)

    durable = FileState()
    durable_upto = 0
    flush_cover = 0
    scan = 0
    model = Model(w)
    done_cmds = 0
    for P, variant in cuts:
        # Flushes in the cut: the durable prefix of the file.
        while scan < P:
            if recs[scan][0] == FLUSH and \
                    not (args.lose_flushes and scan >= opened):
                flush_cover = max(flush_cover, recs[scan][1])
            scan += 1
        while durable_upto < flush_cover:
            durable.apply(buf, recs[durable_upto])
            durable_upto += 1
        state = durable.copy()
        # Per cut, so that --workload/--cut reproduce one cut alone.
        crng = random.Random(seed * 1000003 + P)
        mode = crng.random()
        kept = dropped = 0
        for i in range(durable_upto, P):
            if recs[i][0] in (FLUSH, OPENED):
                continue
            if variant is None:
                keep = mode < 0.15 or (mode >= 0.3 and crng.random() < 0.5)
            else:
                keep = variant[0] == 'all' or \
                    (variant[0] == 'only') == (variant[1] == i)
            if args.verbose:
                print('  record %d %s' % (i, recs[i][:3]), 'kept' if keep
                      else 'dropped')
            if keep:
                state.apply(buf, recs[i])
                kept += 1
            else:
                dropped += 1
        with open(cut, 'wb') as f:
            f.write(state.data)

        # The guest's view: commands completed by P, and those under way.
        while done_cmds < len(w.cmds) and spans[done_cmds][1] <= P:
            model.apply(w.cmds[done_cmds][1], ok[done_cmds])
            done_cmds += 1
        extra = {}
        floor = list(model.floor) if w.zoned else None
        j = done_cmds
        if j < len(w.cmds) and spans[j][0] < P and \
                (ok[j] or w.cmds[j][1][0] == 'write'):
            model.extra(w.cmds[j][1], extra, floor)
        try:
            check_image(args, w, model, extra, floor, cut, raw, crng)
        except Violation as e:
            stats['violations'] += 1
            msg = ('VIOLATION (%s workload seed %d, cut at record %d of %d, '
                   '%d unflushed records kept, %d dropped%s):\n%s\n'
                   % ('zoned' if zoned else 'plain', seed, P, len(recs),
                      kept, dropped, ', %s %s' % variant if variant else '',
                      e))
            sys.stdout.write(msg)
            sys.stdout.flush()
            if args.keep_failures:
                base = os.path.join(args.keep_failures,
                                    'fail-%d-%d' % (seed, P))
                os.makedirs(args.keep_failures, exist_ok=True)
                shutil.copy(cut, base + '.qcow2')
                shutil.copy(log, os.path.join(args.keep_failures,
                                              'fail-%d.log' % seed))
                with open(base + '.cmds', 'w') as f:
                    f.write(w.create_opts + '\n')
                    for (t, _), (a, b), o in zip(w.cmds, spans, ok):
                        f.write('%s\t[%d,%d)%s\n' % (t, a, b,
                                                    '' if o else ' FAILED'))
            if args.stop:
                return False
        stats['zoned' if zoned else 'plain'] += 1
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.environ.get('BUILD_DIR',
                           os.path.join(here, '..', '..', 'build'))
    ap.add_argument('--qemu-img', default=os.environ.get(
        'QEMU_IMG', os.path.join(build, 'qemu-img')))
    ap.add_argument('--qemu-io', default=os.environ.get(
        'QEMU_IO', os.path.join(build, 'qemu-io')))
    ap.add_argument('--mode', choices=['plain', 'zoned', 'both'],
                    default='both')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--cuts', type=int, default=200,
                    help='cut points in all (per mode with --mode both)')
    ap.add_argument('--cuts-per-workload', type=int, default=40)
    ap.add_argument('--stop', action='store_true',
                    help='stop at the first violation')
    ap.add_argument('--keep-failures', metavar='DIR',
                    help='keep the image and commands of each violation')
    ap.add_argument('--dir', help='scratch directory (default: a new one)')
    ap.add_argument('--quiet', action='store_true')
    ap.add_argument('--verbose', action='store_true')
    ap.add_argument('--commands', metavar='FILE',
                    help='run these qemu-io commands (write, discard, '
                    'flush) on a plain image instead of a random workload')
    ap.add_argument('--create-opts', default='cluster_size=65536',
                    help='with --commands')
    ap.add_argument('--size', type=int, default=1024 * 1024,
                    help='with --commands: virtual size in bytes')
    ap.add_argument('--exhaustive', action='store_true',
                    help='every record boundary, each unflushed record '
                    'kept alone and dropped alone (small workloads)')
    ap.add_argument('--lose-flushes', action='store_true',
                    help='self-test: treat flushes after open as lost, '
                    'which must give violations')
    ap.add_argument('--workload', type=int, metavar='SEED',
                    help='run only the workload with this seed (as printed)')
    ap.add_argument('--cut', type=int, metavar='N',
                    help='with --workload: only the cut after N records')
    args = ap.parse_args()

    modes = ['plain', 'zoned'] if args.mode == 'both' else [args.mode]
    stats = {'plain': 0, 'zoned': 0, 'violations': 0, 'workloads': 0}
    tmp = tempfile.mkdtemp(prefix='powercut.', dir=args.dir)
    t0 = time.time()
    try:
        if args.commands:
            one_workload(args, 0, False, 0, tmp, stats)
            modes = []
        elif args.workload is not None:
            zoned = bool(args.workload % 2)
            one_workload(args, args.workload, zoned, args.cuts_per_workload,
                         tmp, stats)
            modes = []
        for mode in modes:
            zoned = mode == 'zoned'
            k = 0
            while stats[mode] < args.cuts:
                seed = (args.seed * 100003 + k) * 2 + zoned
                k += 1
                n = min(args.cuts_per_workload, args.cuts - stats[mode])
                if not one_workload(args, seed, zoned, n, tmp, stats):
                    break
                if not args.quiet:
                    print('%s: %d cut points, %d violations, %.0f s'
                          % (mode, stats[mode], stats['violations'],
                             time.time() - t0), flush=True)
            if args.stop and stats['violations']:
                break
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('cut points: %d plain, %d zoned in %d workloads; violations: %d'
          % (stats['plain'], stats['zoned'], stats['workloads'],
             stats['violations']))
    print('%.0f s' % (time.time() - t0))
    return 1 if stats['violations'] else 0


if __name__ == '__main__':
    sys.exit(main())
