#!/usr/bin/env python3
# Random differential stress for the qcow2 driver.
#
# Each case creates a qcow2 image with random parameters (cluster size,
# refcount width, compat level, compression type, lazy refcounts, virtual
# size) and a raw mirror of the same size, then runs random batches on
# the image with our tools: qemu-io invocations of many commands (plain
# writes at unaligned offsets, compressed writes, partial overwrites of
# compressed clusters, zero writes with and without unmap, discards),
# internal snapshots (create, apply, delete) and resizes.  Every batch is
# a separate process, so the image is closed and reopened in between.
# The mirror gets the same data changes through Python file I/O; the
# mirror's copy is saved at snapshot creation and restored on apply.
#
# After every batch the reference qemu-img (Debian's QEMU 7.2) must find
# the image clean (no corruption, no leak) and equal to the mirror, and
# our qemu-img check and compare must give the same answers.
#
# A failing case is reported with its seed and kept (image, mirror,
# replay.sh with our tools' command lines, log) under the work directory.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: qcow2_stress.py [--cases N] [--seed S] [--jobs J] [--budget SECS]
#                        [--workdir DIR] [--keep] [--quiet]
#                        [--ours-img P] [--ours-io P] [--ref-img P]
# Case i uses the seed S + i, so "--seed S+i --cases 1" reruns it alone.
# Exit status: 0 all cases passed, 1 a case failed, 77 a tool is missing.

import argparse
import concurrent.futures
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

KiB = 1024
MiB = 1024 * 1024

# Live snapshots per image; keeps 16-bit and wider refcounts far from
# overflow, so only narrower widths may refuse a snapshot.
MAX_SNAPSHOTS = 4
# Largest request of one command, and the size of the random source files
# that "write -s" reads from.
MAX_REQ = 2 * MiB


class CaseFailure(Exception):
    pass


class Tools:
    def __init__(self, ours_img, ours_io, ref_img):
        self.ours_img = ours_img
        self.ours_io = ours_io
        self.ref_img = ref_img


def run(argv, log, replay=None):
    """Run argv; log it (and to the replay script if given)."""
    line = ' '.join(shlex.quote(a) for a in argv)
    log.write('$ ' + line + '\n')
    if replay is not None:
        replay.write(line + '\n')
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=600)
    out = p.stdout.decode('utf-8', 'replace')
    # Successful qemu-io commands print a statistics line per request;
    # leave them out of the log.
    log.write(''.join(l + '\n' for l in out.splitlines()
                      if 'ops/sec' not in l))
    log.write('[exit %d]\n' % p.returncode)
    # Crashes and sanitizer reports (ASan/UBSan builds) fail the case
    # whatever the command's output otherwise says.
    if p.returncode < 0:
        raise CaseFailure('%s killed by signal %d'
                          % (os.path.basename(argv[0]), -p.returncode))
    m = re.search(r'.*(Sanitizer|runtime error:).*', out)
    if m:
        raise CaseFailure('%s: %s' % (os.path.basename(argv[0]), m.group(0)))
    return p.returncode, out


class Mirror:
    """The raw reference: a file written with plain file I/O."""

    def __init__(self, path, size):
        self.path = path
        with open(path, 'wb') as f:
            f.truncate(size)
        self.size = size

    def write(self, off, data):
        with open(self.path, 'r+b') as f:
            f.seek(off)
            f.write(data)

    def zero(self, off, length):
        buf = bytes(min(length, MiB))
        with open(self.path, 'r+b') as f:
            f.seek(off)
            while length > 0:
                n = min(length, len(buf))
                f.write(buf[:n])
                length -= n

    def truncate(self, size):
        with open(self.path, 'r+b') as f:
            f.truncate(size)
        self.size = size

    def save(self, dest):
        sparse_copy(self.path, dest)

    def restore(self, src):
        sparse_copy(src, self.path)
        self.size = os.path.getsize(self.path)


def sparse_copy(src, dest):
    """Copy only the data extents, keeping holes (mirrors are sparse)."""
    size = os.path.getsize(src)
    with open(src, 'rb') as fi, open(dest, 'wb') as fo:
        fo.truncate(size)
        fd = fi.fileno()
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            fi.seek(data)
            fo.seek(data)
            left = hole - data
            while left > 0:
                chunk = fi.read(min(left, 4 * MiB))
                fo.write(chunk)
                left -= len(chunk)
            pos = hole


def pick_params(rng):
    p = {}
    p['cluster_size'] = 1 << rng.randint(9, 21)
    v3 = rng.random() < 0.75
    p['compat'] = '1.1' if v3 else '0.10'
    # compat=0.10 only has 16-bit refcounts, no compression type field and
    # no lazy refcounts.
    p['refcount_bits'] = (1 << rng.randint(0, 6)) if v3 else 16
    if v3:
        p['compression_type'] = rng.choice(['zlib', 'zstd'])
        p['lazy_refcounts'] = rng.choice(['on', 'off'])
    r = rng.random()
    if r < 0.55:
        size = rng.randint(1, 8) * MiB
    elif r < 0.8:
        size = rng.randint(9, 64) * MiB
    elif r < 0.95:
        # not a multiple of the cluster size
        size = rng.randint(1, 16 * MiB // 512) * 512
    else:
        # not even a multiple of 512: qemu-img rounds it up
        size = rng.randint(1, 4 * MiB)
    p['size'] = size
    return p


def create_opts(p):
    keys = ['cluster_size', 'refcount_bits', 'compat', 'compression_type',
            'lazy_refcounts']
    return ','.join('%s=%s' % (k, p[k]) for k in keys if k in p)


class Case:
    def __init__(self, tools, seed, workdir, log_all=False):
        self.t = tools
        self.seed = seed
        self.rng = random.Random(seed)
        self.dir = workdir
        self.img = os.path.join(workdir, 'img.qcow2')
        self.log = open(os.path.join(workdir, 'log'), 'w')
        self.replay = open(os.path.join(workdir, 'replay.sh'), 'w')
        self.replay.write('#!/bin/sh -e\n# case seed %d: our tools\' command '
                          'lines (set QEMU_IMG and QEMU_IO)\n' % seed)
        self.snapshots = {}       # name -> saved mirror path
        self.snap_serial = 0
        self.batches = 0
        self.ops = 0

    def close(self):
        self.log.close()
        self.replay.close()

    def fail(self, msg):
        raise CaseFailure('batch %d: %s' % (self.batches, msg))

    def run_ours(self, argv):
        """Run one of our tools; the replay line uses $QEMU_IMG / $QEMU_IO
        and paths relative to the case directory."""
        line = ' '.join(shlex.quote(a) for a in argv)
        line = line.replace(shlex.quote(self.t.ours_img), '"$QEMU_IMG"', 1)
        line = line.replace(shlex.quote(self.t.ours_io), '"$QEMU_IO"', 1)
        line = line.replace(self.dir + '/', '')
        self.replay.write(line + '\n')
        return run(argv, self.log)

    # ---- setup ----------------------------------------------------------

    def setup(self):
        rng = self.rng
        self.p = pick_params(rng)
        cs = self.p['cluster_size']
        self.cs = cs
        self.log.write('# seed %d params %s size %d\n'
                       % (self.seed, create_opts(self.p), self.p['size']))
        rc, out = self.run_ours([self.t.ours_img, 'create', '-q', '-f',
                                 'qcow2', '-o', create_opts(self.p), self.img,
                                 str(self.p['size'])])
        if rc != 0:
            self.fail('create failed: ' + out.strip())
        size = (self.p['size'] + 511) // 512 * 512
        self.mirror = Mirror(os.path.join(self.dir, 'mirror.raw'), size)
        # Random data for "write -s": incompressible, and half compressible.
        self.sources = []
        for i in range(2):
            path = os.path.join(self.dir, 'src%d' % i)
            if i == 0:
                data = rng.randbytes(MAX_REQ)
            else:
                data = b''.join(rng.randbytes(256) + bytes([rng.randrange(256)]) * 768
                                for _ in range(MAX_REQ // 1024))
            with open(path, 'wb') as f:
                f.write(data)
            self.sources.append((path, data))

    # ---- cluster state from the reference's map -------------------------

    def cluster_state(self):
        """Sets of clusters with no host cluster (free for a compressed
        write) and of compressed clusters, from the reference's map."""
        rc, out = run([self.t.ref_img, 'map', '--output=json', '-f', 'qcow2',
                       self.img], self.log)
        if rc != 0:
            self.fail('reference map failed: ' + out.strip()[:300])
        try:
            entries = json.loads(out)
        except ValueError:
            self.fail('reference map printed no JSON')
        cs = self.cs
        nclusters = (self.mirror.size + cs - 1) // cs
        free = set(range(nclusters))
        compressed = set()
        for e in entries:
            first = e['start'] // cs
            last = (e['start'] + e['length'] - 1) // cs
            hosted = e.get('data') or 'offset' in e
            for c in range(first, last + 1):
                if hosted:
                    free.discard(c)
                if e.get('data') and 'offset' not in e:
                    compressed.add(c)
        return free, compressed

    # ---- qemu-io batch --------------------------------------------------

    def rand_range(self, max_len=None):
        """A random (offset, length) inside the image, often unaligned."""
        rng, cs, size = self.rng, self.cs, self.mirror.size
        max_len = min(max_len or MAX_REQ, size)
        r = rng.random()
        if r < 0.35:
            length = rng.randint(1, min(max_len, max(2 * cs, 64 * KiB)))
            off = rng.randrange(0, size - length + 1)
        elif r < 0.6:
            # whole clusters
            n = rng.randint(1, max(1, min(4, max_len // cs)))
            length = min(n * cs, size)
            off = rng.randrange(0, (size - length) // cs + 1) * cs
        elif r < 0.8:
            # sectors, crossing cluster boundaries
            length = 512 * rng.randint(1, max(1, min(max_len, 4 * cs) // 512))
            length = min(length, size // 512 * 512)
            off = 512 * rng.randrange(0, (size - length) // 512 + 1)
        else:
            # straddling a cluster boundary by a few bytes
            length = rng.randint(1, min(max_len, 4096))
            c = rng.randrange(0, (size + cs - 1) // cs)
            off = max(0, min(c * cs - rng.randint(0, length), size - length))
        return off, length

    def data_for(self, off, length):
        """qemu-io write flags and the bytes they write."""
        rng = self.rng
        if rng.random() < 0.75:
            pat = rng.randrange(256)
            return ['-P', str(pat)], bytes([pat]) * length, pat
        path, data = rng.choice(self.sources)
        # qemu-io repeats a source file shorter than the request
        reps = (length + len(data) - 1) // len(data)
        return ['-s', path], (data * reps)[:length], None

    def io_batch(self):
        rng, cs = self.rng, self.cs
        size = self.mirror.size
        free, compressed = self.cluster_state()
        nclusters = (size + cs - 1) // cs
        cmds = []
        mirror_ops = []
        ncmd = rng.randint(3, 40)

        def touch(off, length):
            for c in range(off // cs, (off + length - 1) // cs + 1):
                free.discard(c)
                compressed.discard(c)

        for _ in range(ncmd):
            r = rng.random()
            if r < 0.25 and free:
                # compressed write to clusters without a host cluster
                c = rng.choice(sorted(free))
                n = 1
                while rng.random() < 0.3 and c + n in free and n < 4:
                    n += 1
                off = c * cs
                length = min(n * cs, size - off)
                flags, data, _ = self.data_for(off, length)
                cmds.append('write -c %s %d %d' % (' '.join(flags), off, length))
                mirror_ops.append(('w', off, data))
                for k in range(c, c + n):
                    free.discard(k)
                    compressed.add(k)
                continue
            if r < 0.45 and compressed:
                # partial overwrite of a compressed cluster
                c = rng.choice(sorted(compressed))
                cend = min((c + 1) * cs, size)
                off = rng.randrange(c * cs, cend)
                length = rng.randint(1, cend - off)
                if rng.random() < 0.2:
                    length = min(length + rng.randint(1, cs), size - off)
                if rng.random() < 0.8:
                    flags, data, pat = self.data_for(off, length)
                    cmds.append('write %s %d %d' % (' '.join(flags), off, length))
                    mirror_ops.append(('w', off, data))
                    if pat is not None and rng.random() < 0.3:
                        cmds.append('read -q -P %d %d %d' % (pat, off, length))
                else:
                    u = ' -u' if rng.random() < 0.5 else ''
                    cmds.append('write -z%s %d %d' % (u, off, length))
                    mirror_ops.append(('z', off, length))
                touch(off, length)
                continue
            if r < 0.75:
                off, length = self.rand_range()
                flags, data, pat = self.data_for(off, length)
                cmds.append('write %s %d %d' % (' '.join(flags), off, length))
                mirror_ops.append(('w', off, data))
                if pat is not None and rng.random() < 0.2:
                    cmds.append('read -q -P %d %d %d' % (pat, off, length))
                touch(off, length)
            elif r < 0.87:
                off, length = self.rand_range()
                u = ' -u' if rng.random() < 0.5 else ''
                cmds.append('write -z%s %d %d' % (u, off, length))
                mirror_ops.append(('z', off, length))
                if rng.random() < 0.2:
                    cmds.append('read -q -P 0 %d %d' % (off, length))
                touch(off, length)
            elif r < 0.97:
                off, length = self.rand_range(max_len=8 * MiB)
                cmds.append('discard %d %d' % (off, length))
                # Only whole clusters are discarded (and the partial last
                # cluster when the request reaches the end of the image);
                # partial ones keep their data.
                first = (off + cs - 1) // cs
                end = off + length
                last = end // cs if end != size else nclusters
                for c in range(first, last):
                    zoff = c * cs
                    mirror_ops.append(('z', zoff, min(cs, size - zoff)))
                    free.add(c)
                    compressed.discard(c)
            elif r < 0.985:
                cmds.append('flush')
            else:
                # reopen inside the invocation: caches start cold
                cmds += ['close', 'open -o driver=qcow2 ' + self.img]

        argv = [self.t.ours_io, '-f', 'qcow2']
        if rng.random() < 0.2:
            argv += ['-t', rng.choice(['writethrough', 'none', 'unsafe',
                                       'directsync'])]
        for c in cmds:
            argv += ['-c', c]
        argv.append(self.img)
        rc, out = self.run_ours(argv)
        bad = [l for l in out.splitlines()
               if re.search(r'fail|error|Error|verification|No such', l)]
        if rc != 0 or bad:
            self.fail('qemu-io (exit %d): %s' % (rc, '; '.join(bad[:3])))
        for op in mirror_ops:
            if op[0] == 'w':
                self.mirror.write(op[1], op[2])
            else:
                self.mirror.zero(op[1], op[2])
        self.ops += len(cmds)
        return 'io(%d)' % len(cmds)

    # ---- snapshots and resize -------------------------------------------

    def snapshot_batch(self):
        rng = self.rng
        names = sorted(self.snapshots)
        r = rng.random()
        if not names or (r < 0.45 and len(names) < MAX_SNAPSHOTS):
            name = 's%d' % self.snap_serial
            self.snap_serial += 1
            rc, out = self.run_ours([self.t.ours_img, 'snapshot', '-c', name,
                                     self.img])
            if rc == 0:
                saved = os.path.join(self.dir, 'snap-%s.raw' % name)
                self.mirror.save(saved)
                self.snapshots[name] = saved
            elif self.p['refcount_bits'] >= 16:
                self.fail('snapshot -c failed: ' + out.strip())
            # Narrow refcounts may refuse the snapshot (the refcount of a
            # shared cluster would overflow); the image must stay as it was.
            self.check_snapshot_list()
            return 'snapshot-c' if rc == 0 else 'snapshot-c(refused)'
        name = rng.choice(names)
        if r < 0.8:
            rc, out = self.run_ours([self.t.ours_img, 'snapshot', '-a', name,
                                     self.img])
            if rc == 0:
                self.mirror.restore(self.snapshots[name])
                return 'snapshot-a'
            # Applying takes a reference to the snapshot's clusters before
            # it drops the active ones: narrow refcounts may overflow, and
            # then the active image must stay as it was (as in QEMU).
            if self.p['refcount_bits'] >= 16:
                self.fail('snapshot -a failed: ' + out.strip())
            return 'snapshot-a(refused)'
        rc, out = self.run_ours([self.t.ours_img, 'snapshot', '-d', name,
                                 self.img])
        if rc != 0:
            self.fail('snapshot -d failed: ' + out.strip())
        os.unlink(self.snapshots.pop(name))
        self.check_snapshot_list()
        return 'snapshot-d'

    def check_snapshot_list(self):
        rc, out = run([self.t.ref_img, 'snapshot', '-l', self.img],
                       self.log)
        if rc != 0:
            self.fail('reference snapshot -l failed: ' + out.strip())
        names = set()
        for line in out.splitlines()[2:]:
            f = line.split()
            if len(f) > 1:
                names.add(f[1])
        if names != set(self.snapshots):
            self.fail('snapshots listed %s, expected %s'
                      % (sorted(names), sorted(self.snapshots)))

    def resize_batch(self):
        rng = self.rng
        old = self.mirror.size
        if rng.random() < 0.6:
            new = old + 512 * rng.randint(1, max(1, min(old, 16 * MiB) // 512))
            argv = [self.t.ours_img, 'resize', '-f', 'qcow2', self.img, str(new)]
        else:
            new = 512 * rng.randint(1, old // 512)
            argv = [self.t.ours_img, 'resize', '-f', 'qcow2', '--shrink',
                    self.img, str(new)]
        rc, out = self.run_ours(argv)
        if self.p['compat'] == '0.10' and self.snapshots:
            # v2 snapshot tables have no size field: refused, as QEMU does
            if rc == 0:
                self.fail('resize of a v2 image with snapshots succeeded')
            return 'resize(refused)'
        if rc != 0:
            self.fail('resize %d -> %d failed: %s' % (old, new, out.strip()))
        self.mirror.truncate(new)
        return 'resize(%d->%d)' % (old, new)

    # ---- verification ---------------------------------------------------

    def check_json(self, tool, who):
        rc, out = run([tool, 'check', '--output=json', '-f', 'qcow2',
                       self.img], self.log)
        try:
            start = out.index('{')
            res = json.loads(out[start:out.rindex('}') + 1])
        except ValueError:
            self.fail('%s check (exit %d) printed no JSON: %s'
                      % (who, rc, out.strip()[:300]))
        res.pop('filename', None)
        return rc, res

    def verify(self):
        rc, ref = self.check_json(self.t.ref_img, 'reference')
        problems = [k for k in ('corruptions', 'leaks', 'check-errors',
                                'corruptions-fixed', 'leaks-fixed')
                    if ref.get(k)]
        if rc != 0 or problems:
            self.fail('reference check (exit %d): %s'
                      % (rc, ', '.join('%s=%s' % (k, ref[k]) for k in problems)))
        orc, ours = self.check_json(self.t.ours_img, 'our')
        if orc != rc or ours != ref:
            diff = sorted(k for k in set(ours) | set(ref)
                          if ours.get(k) != ref.get(k))
            self.fail('our check (exit %d) disagrees with the reference on %s:'
                      ' ours %s, reference %s'
                      % (orc, diff, {k: ours.get(k) for k in diff},
                         {k: ref.get(k) for k in diff}))
        for tool, who in ((self.t.ref_img, 'reference'),
                          (self.t.ours_img, 'our')):
            rc, out = run([tool, 'compare', '-f', 'qcow2', '-F', 'raw',
                           self.img, self.mirror.path], self.log)
            if rc != 0 or out.strip() != 'Images are identical.':
                self.fail('%s compare (exit %d): %s'
                          % (who, rc, ' '.join(out.split())[:300]))

    # ---- the case -------------------------------------------------------

    def run(self, nbatches):
        self.setup()
        self.verify()
        trail = []
        for i in range(nbatches):
            self.batches = i + 1
            r = self.rng.random()
            if i == 0 or r < 0.65:
                what = self.io_batch()
            elif r < 0.85:
                what = self.snapshot_batch()
            else:
                what = self.resize_batch()
            trail.append(what)
            self.log.write('# batch %d: %s\n' % (i + 1, what))
            self.verify()
        return trail


def describe(p):
    return '%s size=%d' % (create_opts(p), p['size'])


def run_case(tools, seed, base, keep, nbatches):
    d = tempfile.mkdtemp(prefix='case-%d-' % seed, dir=base)
    case = Case(tools, seed, d)
    t0 = time.monotonic()
    try:
        trail = case.run(nbatches)
        ok, msg = True, ' '.join(trail)
    except CaseFailure as e:
        ok, msg = False, str(e)
    except subprocess.TimeoutExpired as e:
        ok, msg = False, 'timeout: %s' % e
    finally:
        case.close()
    params = describe(case.p) if hasattr(case, 'p') else '?'
    if ok and not keep:
        shutil.rmtree(d)
    return ok, seed, params, msg, d, time.monotonic() - t0, case.ops


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--cases', type=int, default=100)
    ap.add_argument('--seed', type=int, default=None,
                    help='first case seed (default: from the clock)')
    ap.add_argument('--jobs', type=int, default=1)
    ap.add_argument('--batches', type=int, default=None,
                    help='batches per case (default: random 3..10)')
    ap.add_argument('--budget', type=float, default=None,
                    help='start no new case after this many seconds')
    ap.add_argument('--workdir', default=None)
    ap.add_argument('--keep', action='store_true',
                    help='keep passing cases too')
    ap.add_argument('--quiet', action='store_true',
                    help='print only failures and the summary')
    build = os.environ.get('BUILD_DIR',
                           os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        '..', '..', 'build'))
    ap.add_argument('--ours-img', default=os.environ.get(
        'QEMU_IMG', os.path.join(build, 'qemu-img')))
    ap.add_argument('--ours-io', default=os.environ.get(
        'QEMU_IO', os.path.join(build, 'qemu-io')))
    ap.add_argument('--ref-img', default=os.environ.get(
        'QEMU_IMG_REF', '/usr/bin/qemu-img'))
    args = ap.parse_args()

    for t in (args.ours_img, args.ours_io, args.ref_img):
        if not (t and os.access(t, os.X_OK)):
            print('qcow2_stress: %s is not executable' % t, file=sys.stderr)
            return 77
    tools = Tools(os.path.abspath(args.ours_img), os.path.abspath(args.ours_io),
                  os.path.abspath(args.ref_img))
    seed0 = args.seed if args.seed is not None else int(time.time()) % 1000000 * 1000
    base = args.workdir or tempfile.mkdtemp(prefix='qcow2-stress-')
    os.makedirs(base, exist_ok=True)
    print('seed %d, %d cases, work directory %s' % (seed0, args.cases, base),
          file=sys.stderr)

    start = time.monotonic()
    passed = failed = ops = 0
    failures = []

    def batches_for(seed):
        if args.batches:
            return args.batches
        return random.Random(seed * 7919 + 1).randint(3, 10)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        pending = set()
        next_case = 0
        while next_case < args.cases or pending:
            while (next_case < args.cases and len(pending) < args.jobs and
                   (args.budget is None or
                    time.monotonic() - start < args.budget)):
                seed = seed0 + next_case
                pending.add(ex.submit(run_case, tools, seed, base, args.keep,
                                      batches_for(seed)))
                next_case += 1
            if not pending:
                break
            done, pending = concurrent.futures.wait(
                pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for f in done:
                ok, seed, params, msg, d, secs, n = f.result()
                ops += n
                if ok:
                    passed += 1
                    if not args.quiet:
                        print('case seed %d ok (%.1fs) %s: %s'
                              % (seed, secs, params, msg), flush=True)
                else:
                    failed += 1
                    failures.append(seed)
                    print('FAIL case seed %d %s: %s\n  kept in %s (replay.sh, log)'
                          % (seed, params, msg, d), flush=True)
    secs = time.monotonic() - start
    print('%d passed, %d failed (%d qemu-io commands, %.0fs)'
          % (passed, failed, ops, secs), file=sys.stderr)
    if failures:
        print('failing seeds: %s' % ' '.join(map(str, failures)), file=sys.stderr)
    elif not args.workdir:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
