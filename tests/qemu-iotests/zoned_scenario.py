#!/usr/bin/env python3
"""Zone scenarios run on our qemu-io and on Linux null_blk, one transcript.

A scenario file (zoned-nullblk.scenario) names device configurations and
the zone operations to run on each.  This tool expands it into plans
(absolute byte offsets), and either

  run      runs every plan on a fresh zoned qcow2 image with our qemu-io
           and prints the transcript, or
  guest    prints a shell script for the test guest that runs the same
           plans on null_blk (configfs) with scripts/guest/zone-scenario,
           whose output is the same transcript format.

Transcript: per configuration a "== config" line, the geometry, then per
step "N OP ARGS: RESULT" (OK, an errno name or MISMATCH) and one line of
zone states: nw (conventional), em+WP, io+WP, eo+WP, cl+WP (WP: bytes
past the zone start, hex) or fu (the wp of a FULL zone is undefined).

Copyright (c) 2026 The zoned-qcow2 project authors
SPDX-License-Identifier: GPL-2.0-or-later
"""

import errno
import os
import random
import re
import subprocess
import sys

MIB = 1 << 20
CONFIG_KEYS = ('size', 'zone_size', 'capacity', 'conv', 'max_open',
               'max_active', 'bs')
COND = {0: 'nw', 1: 'em', 2: 'io', 3: 'eo', 4: 'cl', 14: 'fu', 13: 'ro',
        15: 'of'}
MGMT = {'open': 'zo', 'close': 'zc', 'finish': 'zf', 'reset': 'zrs'}
PATTERN = '0xa5'


class ScenarioError(Exception):
    pass


class Config:
    def __init__(self, name, params, lineno):
        self.name = name
        self.p = {'capacity': None, 'conv': 0, 'max_open': 0,
                  'max_active': 0, 'bs': 4096}
        for kv in params:
            k, _, v = kv.partition('=')
            if k not in CONFIG_KEYS or not v.isdigit():
                raise ScenarioError('line %d: bad config item %r' % (lineno, kv))
            self.p[k] = int(v)
        if 'size' not in self.p or 'zone_size' not in self.p:
            raise ScenarioError('line %d: config needs size and zone_size' % lineno)
        if self.p['capacity'] is None:
            self.p['capacity'] = self.p['zone_size']
        self.size = self.p['size'] * MIB
        self.zsize = self.p['zone_size'] * MIB
        self.cap = self.p['capacity'] * MIB
        self.nr_zones = -(-self.size // self.zsize)
        self.conv = self.p['conv']
        self.ops = []

    def header(self):
        return '== config %s: %s ==' % (self.name, ' '.join(
            '%s=%d' % (k, self.p[k]) for k in CONFIG_KEYS))

    def zone_len(self, z):
        return min(self.zsize, self.size - z * self.zsize)

    def zone_cap(self, z):
        return self.zone_len(z) if z < self.conv else min(self.cap,
                                                          self.zone_len(z))

    def geometry(self):
        for z in range(self.nr_zones):
            yield 'zone %d: %s start 0x%x len 0x%x cap 0x%x' % (
                z, 'conv' if z < self.conv else 'seq', z * self.zsize,
                self.zone_len(z), self.zone_cap(z))


def parse_zone(cfg, tok, lineno):
    m = re.fullmatch(r'([cs]?)(\d+)|last', tok)
    if not m:
        raise ScenarioError('line %d: bad zone %r' % (lineno, tok))
    if tok == 'last':
        z = cfg.nr_zones - 1
    else:
        z = int(m.group(2)) + (cfg.conv if m.group(1) == 's' else 0)
    if z >= cfg.nr_zones:
        raise ScenarioError('line %d: no zone %r in config %s' %
                            (lineno, tok, cfg.name))
    return z


def parse_expr(cfg, z, tok, lineno, wp_ok=False):
    """Terms joined by + or -: numbers (k/M suffix), cap, len, zsize, and
    for an offset wp (then the result is a WpOffset)."""
    total = 0
    rel_wp = False
    for sign, term in re.findall(r'([+-]?)([^+-]+)', tok):
        if term == 'wp' and wp_ok and sign != '-' and not rel_wp:
            rel_wp = True
            continue
        if term == 'cap':
            v = cfg.zone_cap(z)
        elif term == 'len':
            v = cfg.zone_len(z)
        elif term == 'zsize':
            v = cfg.zsize
        else:
            m = re.fullmatch(r'(\d+)([kKM]?)', term)
            if not m:
                raise ScenarioError('line %d: bad number %r' % (lineno, term))
            v = int(m.group(1)) * {'': 1, 'k': 1024, 'K': 1024,
                                   'M': MIB}[m.group(2)]
        total += -v if sign == '-' else v
    return WpOffset(z, total) if rel_wp else total


class WpOffset:
    """An offset relative to a zone's write pointer, resolved when the step
    runs from the report before it (a FULL zone's wp is undefined, so
    there it means the zone start).  In a plan: wp:ZONE:DELTA."""

    def __init__(self, zone, delta):
        self.zone = zone
        self.delta = delta

    def __str__(self):
        return 'wp:%d:%d' % (self.zone, self.delta)

    def resolve(self, zones):
        start, _, _, wp, cond, _ = zones[self.zone]
        return start if cond == 14 else wp + self.delta


def expand(cfg, words, lineno):
    """One scenario op -> (op, offset, length) in bytes."""
    op = words[0]
    if op in ('write', 'read', 'readp'):
        if len(words) != 4:
            raise ScenarioError('line %d: %s ZONE OFFSET LENGTH' % (lineno, op))
        z = parse_zone(cfg, words[1], lineno)
        off = parse_expr(cfg, z, words[2], lineno, wp_ok=True)
        if not isinstance(off, WpOffset):
            off += z * cfg.zsize
        return (op, off, parse_expr(cfg, z, words[3], lineno))
    if op == 'zrange':
        # Any byte range, for the argument checks of zone operations.
        if len(words) != 5 or words[1] not in MGMT:
            raise ScenarioError('line %d: zrange OP ZONE OFFSET LENGTH' % lineno)
        z = parse_zone(cfg, words[2], lineno)
        return (words[1], z * cfg.zsize + parse_expr(cfg, z, words[3], lineno),
                parse_expr(cfg, z, words[4], lineno))
    if op in MGMT:
        if words[1:] == ['all']:
            return (op, 0, cfg.size)
        if len(words) not in (2, 3):
            raise ScenarioError('line %d: %s ZONE [COUNT|rest]|all' % (lineno, op))
        z = parse_zone(cfg, words[1], lineno)
        start = z * cfg.zsize
        n = words[2] if len(words) == 3 else '1'
        if n == 'rest':
            return (op, start, cfg.size - start)
        end = min(cfg.size, start + int(n) * cfg.zsize)
        return (op, start, end - start)
    raise ScenarioError('line %d: unknown operation %r' % (lineno, op))


def parse(path):
    blocks = {}
    configs = []
    cur_block = None
    cfg = None
    with open(path) as f:
        lines = f.read().splitlines()
    for lineno, line in enumerate(lines, 1):
        words = line.split('#', 1)[0].split()
        if not words:
            continue
        if words[0] == 'block':
            cur_block = blocks.setdefault(words[1], [])
        elif words[0] == 'end':
            cur_block = None
        elif cur_block is not None:
            cur_block.append((lineno, words))
        elif words[0] == 'config':
            cfg = Config(words[1], words[2:], lineno)
            configs.append(cfg)
        elif cfg is None:
            raise ScenarioError('line %d: operation before any config' % lineno)
        elif words[0] == 'random':
            if len(words) != 3 or not (words[1] + words[2]).isdigit():
                raise ScenarioError('line %d: random SEED STEPS' % lineno)
            for w in random_ops(cfg, int(words[1]), int(words[2])):
                cfg.ops.append((' '.join(w),) + expand(cfg, w, lineno))
        elif words[0] == 'use':
            if words[1] not in blocks:
                raise ScenarioError('line %d: no block %r' % (lineno, words[1]))
            for ln, w in blocks[words[1]]:
                cfg.ops.append((' '.join(w),) + expand(cfg, w, ln))
        else:
            cfg.ops.append((' '.join(words),) + expand(cfg, words, lineno))
    return configs


def random_ops(cfg, seed, steps):
    """A seeded random walk over the zone operations, mostly writes at the
    write pointer, no larger than null_blk's request size limit
    (124 KiB with 4 KiB blocks), so that Linux never splits them by size."""
    rnd = random.Random(seed)
    seq = ['s%d' % i for i in range(cfg.nr_zones - cfg.conv)]
    sizes = ['4k', '8k', '16k', '32k', '64k', '120k']
    ops = []
    for _ in range(steps):
        z = rnd.choice(seq)
        r = rnd.random()
        if r < 0.55:
            ops.append(['write', z, 'wp', rnd.choice(sizes)])
        elif r < 0.60:
            ops.append(['write', z, 'wp+' + rnd.choice(['4k', '64k']), '4k'])
        elif r < 0.63:
            # Not past the device end: Linux says ENOSPC, QEMU EIO.
            ops.append(['write', rnd.choice(seq[:-1]), 'zsize-4k', '8k'])
        elif r < 0.65:
            ops.append(['write', 'c0', rnd.choice(['0', '64k']), '4k'])
        elif r < 0.67:
            ops.append(['readp', z, '0', '4k'])
        elif r < 0.90:
            op = rnd.choice(['open', 'open', 'close', 'finish', 'reset'])
            n = rnd.random()
            if n < 0.85:
                ops.append([op, z])
            elif n < 0.95:
                ops.append([op, z, str(rnd.randint(2, 3))])
            else:
                ops.append([op, 'all'])
        else:
            ops.append(['reset', z] if r < 0.98 else ['reset', 'all'])
        if ops[-1][0] in MGMT and len(ops[-1]) == 3 and ops[-1][2] != 'all':
            # Keep ranges inside the device.
            first = int(ops[-1][1][1:]) + cfg.conv
            ops[-1][2] = str(min(int(ops[-1][2]), cfg.nr_zones - first))
    return ops


def plan_lines(cfg):
    for i, (text, op, off, length) in enumerate(cfg.ops, 1):
        yield '%s %s %d|%d %s' % (op, off, length, i, text)


# ---- our qemu-io -------------------------------------------------------------

ERRNAMES = {os.strerror(v): n for n, v in errno.__dict__.items()
            if n.startswith('E') and isinstance(v, int)}
# Prefer the names the kernel helper prints for aliased values.
for _n in ('EIO', 'EINVAL', 'ETOOMANYREFS', 'EOVERFLOW', 'ENOSPC', 'EBUSY',
           'EAGAIN', 'EOPNOTSUPP', 'ENXIO'):
    ERRNAMES[os.strerror(getattr(errno, _n))] = _n


def off_wp(zones, off, length):
    """Does a part of the write (split per zone) miss its zone's wp?"""
    for start, zlen, _, wp, _, ztype in zones:
        if ztype != 2 or start + zlen <= off or start >= off + length:
            continue
        if max(off, start) != wp:
            return True
    return False


class QemuIo:
    """Our qemu-io, interactive: each step runs when the report before it
    is known, so wp-relative offsets resolve as in the guest helper."""

    PROMPT = 'qemu-io> '

    def __init__(self, qemu_io, img):
        self.p = subprocess.Popen([qemu_io, '-f', 'qcow2', img],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.buf = ''
        self.wait_prompts(1)

    def wait_prompts(self, n):
        while self.buf.count(self.PROMPT) < n:
            data = os.read(self.p.stdout.fileno(), 65536)
            if not data:
                raise ScenarioError('qemu-io ended: ' + self.buf)
            self.buf += data.decode(errors='replace')
        out = self.buf.replace(self.PROMPT, '')
        self.buf = ''
        return out.splitlines()

    def run(self, *cmds):
        self.p.stdin.write(''.join(c + '\n' for c in cmds).encode())
        self.p.stdin.flush()
        return self.wait_prompts(len(cmds))

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def parse_report(lines):
    ops, zones = [], []
    for line in lines:
        m = re.match(r'start: 0x([0-9a-f]+), len 0x([0-9a-f]+), '
                     r'cap 0x([0-9a-f]+), wptr 0x([0-9a-f]+), '
                     r'zcond:(\d+), \[type: (\d+)\]$', line)
        if m:
            zones.append([int(x, 16) * 512 for x in m.groups()[:4]] +
                         [int(m.group(5)), int(m.group(6))])
        else:
            ops.append(line)
    return ops, zones


def off_wp(zones, off, length):
    """Does a part of the write (split per zone) miss its zone's wp?"""
    for start, zlen, _, wp, _, ztype in zones:
        if ztype != 2 or start + zlen <= off or start >= off + length:
            continue
        if max(off, start) != wp:
            return True
    return False


def run_config(cfg, qemu_img, qemu_io, img):
    opts = ('zone.mode=host-managed,zone.size=%d,zone.capacity=%d,'
            'zone.conventional_zones=%d,zone.max_open_zones=%d,'
            'zone.max_active_zones=%d' % (cfg.zsize, cfg.cap, cfg.conv,
                                          cfg.p['max_open'],
                                          cfg.p['max_active']))
    r = subprocess.run([qemu_img, 'create', '-q', '-f', 'qcow2', '-o', opts,
                        img, str(cfg.size)], capture_output=True, text=True)
    if r.returncode:
        yield 'qemu-img create failed: ' + (r.stdout + r.stderr).strip()
        return
    report = 'zrp 0 %d' % cfg.nr_zones
    io = QemuIo(qemu_io, img)
    _, zones = parse_report(io.run(report))
    for z, (start, zlen, cap, _, _, ztype) in enumerate(zones):
        yield 'zone %d: %s start 0x%x len 0x%x cap 0x%x' % (
            z, 'conv' if ztype == 1 else 'seq', start, zlen, cap)
    for i, (text, op, off, length) in enumerate(cfg.ops, 1):
        if isinstance(off, WpOffset):
            off = off.resolve(zones)
        if op == 'write':
            cmd = 'write -P %s %d %d' % (PATTERN, off, length)
        elif op == 'read':
            cmd = 'read %d %d' % (off, length)
        elif op == 'readp':
            cmd = 'read -P %s %d %d' % (PATTERN, off, length)
        else:
            cmd = '%s %d %d' % (MGMT[op], off, length)
        ops, new_zones = parse_report(io.run(cmd, report))
        result = 'OK'
        for line in ops:
            m = re.search(r' failed: (.*)$', line)
            if line.startswith('Pattern verification failed'):
                result = 'MISMATCH'
            elif m:
                result = ERRNAMES.get(m.group(1), m.group(1))
        if op == 'write' and result == 'EINVAL' and off_wp(zones, off, length):
            # Deliberate: we fail a write off the write pointer with
            # EINVAL (virtio's UNALIGNED_WP), Linux with EIO.
            result = 'EIO'
        if op in MGMT and result == 'EIO' and off + length > cfg.size:
            # Layers: QEMU's block backend refuses a request past the end
            # with EIO before the driver sees it; Linux's ioctl, EINVAL.
            result = 'EINVAL'
        yield '%d %s: %s' % (i, text, result)
        if len(new_zones) != cfg.nr_zones:
            yield '  report failed: ' + ' / '.join(ops)
            continue
        zones = new_zones
        states = []
        for start, _, _, wp, cond, _ in zones:
            name = COND.get(cond, '??')
            if name in ('nw', 'fu', 'of'):
                states.append(name)
            else:
                states.append('%s+0x%x' % (name, wp - start))
        yield '  ' + ' '.join(states)
    io.close()


# ---- the guest script for null_blk ---------------------------------------------

def guest_script(configs):
    """Shell for scripts/guest/run.sh: each config on a configfs null_blk."""
    out = ['#!/bin/sh', '# Generated by zoned_scenario.py guest',
           'set -u', 'modprobe null_blk nr_devices=0 || exit 1',
           'mount -t configfs none /sys/kernel/config',
           'echo "== kernel $(uname -r)" >&2']
    attrs = (('size', 'size'), ('zone_size', 'zone_size'),
             ('zone_capacity', 'capacity'), ('zone_nr_conv', 'conv'),
             ('zone_max_open', 'max_open'), ('zone_max_active', 'max_active'))
    for cfg in configs:
        out.append('d=/sys/kernel/config/nullb/nullb0')
        out.append('mkdir $d || exit 1')
        out.append('echo %d > $d/blocksize; echo 1 > $d/memory_backed; '
                   'echo 1 > $d/zoned' % cfg.p['bs'])
        for attr, key in attrs:
            out.append('echo %d > $d/%s || exit 1' % (cfg.p[key], attr))
        out.append('echo 1 > $d/power || exit 1')
        out.append('echo %s' % shquote(cfg.header()))
        out.append('zone-scenario /dev/nullb0 <<"EOF_PLAN" || exit 1')
        out.extend(plan_lines(cfg))
        out.append('EOF_PLAN')
        out.append('echo 0 > $d/power; rmdir $d')
    out.append('exit 0')
    return '\n'.join(out) + '\n'


def shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main(argv):
    if len(argv) < 3 or argv[1] not in ('run', 'guest', 'plan'):
        sys.stderr.write('usage: zoned_scenario.py run SCENARIO QEMU_IMG '
                         'QEMU_IO IMAGE [CONFIG...]\n'
                         '       zoned_scenario.py guest SCENARIO [CONFIG...]\n'
                         '       zoned_scenario.py plan SCENARIO [CONFIG...]\n')
        return 2
    try:
        configs = parse(argv[2])
    except (ScenarioError, OSError) as e:
        sys.stderr.write('zoned_scenario.py: %s\n' % e)
        return 1
    want = argv[6:] if argv[1] == 'run' else argv[3:]
    if want:
        configs = [c for c in configs if c.name in want]
    if argv[1] == 'guest':
        sys.stdout.write(guest_script(configs))
        return 0
    for cfg in configs:
        print(cfg.header())
        if argv[1] == 'plan':
            print('\n'.join(cfg.geometry()))
            print('\n'.join(plan_lines(cfg)))
            continue
        for line in run_config(cfg, argv[3], argv[4], argv[5]):
            print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
