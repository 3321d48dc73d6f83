#!/usr/bin/env python3
# Differential harness: runs a table of qemu-img / qemu-io command lines
# with our tools and with a reference QEMU (Debian's 7.2) on identical
# inputs in separate scratch directories, and reports every difference
# in stdout, stderr, exit code and resulting image.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: qemu-diff.py [--ours-img P] [--ours-io P] [--ref-img P]
#                     [--ref-io P] [-k FILTER] [-v] [--list] [--timing]
#                     [--summary]
# Our tools default to $QEMU_IMG / $QEMU_IO, else $BUILD_DIR/qemu-img ...
# (BUILD_DIR defaults to ../build).  Output is normalised before the
# comparison: scratch paths become $DIR, tool paths their base name, and
# the timing part of qemu-io statistics lines a placeholder.  A unified
# diff (reference -> ours) is printed per mismatch.  -v also shows the
# allowed ones.  Exit status 0 when every mismatch is in ALLOWED, 1
# otherwise, 77 when a tool is missing.  Not covered here: qemu-img
# resize and snapshot, image locking, qemu-io zone commands and sleep
# (they have their own tests).

import argparse
import concurrent.futures
import difflib
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

# Cases where we deliberately differ, with the reason.
ALLOWED = {
    'img-version': 'version string names our project, not QEMU 7.2',
    'io-version': 'version string names our project, not QEMU 7.2',
    # Help texts are written in our own words (no QEMU text is copied);
    # the synopsis lines and option letters match.
    'io-badopt': 'qemu-io --help body is our own wording',
    'io-raw-help-read': 'help text body is our own wording',
    'io-qcow2-help-read': 'help text body is our own wording',
    'io-help': 'qemu-io --help body is our own wording',
    'io-two-files-args': 'usage text printed is our own wording',
    'img-help': 'help body is our own wording; lists only the commands we have',
    'img-h': 'help body is our own wording; lists only the commands we have',
    'io-s-args': 'qemu-io -s (temporary snapshot overlay) not implemented',
    'io-object-args': '--object (secrets, encryption) not implemented',
    # Zoned qcow2 is our addition: its commands and options are listed.
    'io-raw-help': 'lists the zone_* commands (zoned qcow2 emulation)',
    'io-qcow2-help': 'lists the zone_* commands (zoned qcow2 emulation)',
    'img-raw-convert-o-help': 'lists the zone.* qcow2 options',
    'img-qcow2-convert-o-help': 'lists the zone.* qcow2 options',
    'img-create-qcow2-o-help': 'lists the zone.* qcow2 options',
    # qcow2 features this implementation does not provide.
    'io-qcow2-read-b': 'qcow2 VM state area (read/write -b) not implemented',
    'io-qcow2-write-b': 'qcow2 VM state area (read/write -b) not implemented',
    'img-create-qcow2-extl2': 'extended L2 entries not implemented',
    'img-create-qcow2-enc': 'qcow2 encryption not implemented',
    'img-create-qcow2-data-file': 'external data files not implemented',
    'img-raw-convert-l': 'convert -l (internal snapshot as source) not implemented',
    'img-qcow2-convert-l': 'convert -l (internal snapshot as source) not implemented',
}

CASES = []
# amend cases compared by check/info/content instead of md5 (see below)
AMEND_LAYOUT = ('amend-rb',)


def case(name, cmd, setup=(), files=(), content=(), stdin=None, post=()):
    """cmd / setup entries: 'img ARGS' or 'io ARGS' (shell-quoted).
    setup always runs the reference tool so inputs are identical; cmd
    runs each side's own tool.  files: compared by md5; content: compared
    by the reference 'qemu-img compare' (NAME:FMT); post: reference tool
    commands run afterwards, their output compared too."""
    CASES.append(dict(name=name, cmd=cmd, setup=list(setup),
                      files=list(files), content=list(content),
                      stdin=stdin, post=list(post)))


def build_cases():
    # ---- top level ----
    case('img-nocmd', 'img')
    case('img-unknown', 'img frobnicate')
    case('img-version', 'img --version')
    case('img-badopt', 'img --bogus')
    case('io-version', 'io --version')
    case('io-nofile-cmd', 'io -c "read 0 1"')
    case('io-missing', 'io -c "read 0 1" missing.img')
    case('io-badopt', 'io --bogus x')
    case('io-bad-t', 'io -t bogus -c "read 0 1" x')
    case('io-bad-i', 'io -i bogus -c "read 0 1" x')
    case('io-help', 'io --help')
    case('img-help', 'img --help')
    case('img-h', 'img -h')
    t1 = ['img create -q -f raw t.img 1M']
    for n, a in [('io-two-files', 'io -f raw -c "read 0 1" t.img t.img'),
                 ('io-no-c', 'io -f raw t.img'),
                 ('io-empty-c', 'io -f raw -c "" t.img'),
                 ('io-d-bad', 'io -d bogus -f raw -c "read 0 1" t.img'),
                 ('io-d-unmap', 'io -d unmap -f raw -c "discard 0 64k" t.img'),
                 ('io-k', 'io -k -f raw -c "read 0 1" t.img'),
                 ('io-s', 'io -s -f raw -c "read 0 1" t.img'),
                 ('io-m', 'io -m -f raw -c "read 0 512" t.img'),
                 ('io-C', 'io -C -f raw -c "read 0 512" t.img'),
                 ('io-object', 'io --object secret,id=s0,data=x -f raw -c "read 0 1" t.img'),
                 ('img-check-badout', 'img check --output=bogus t.img'),
                 ('img-map-badout', 'img map --output=bogus t.img'),
                 ('img-measure-badout', 'img measure --output=bogus -O raw t.img'),
                 ('img-compare-badfmt', 'img compare -f bogus t.img t.img'),
                 ('img-compare-badF', 'img compare -F bogus t.img t.img'),
                 ('img-convert-bad-t', 'img convert -t bogus -O raw t.img o.raw'),
                 ('img-convert-bad-T', 'img convert -T bogus -O raw t.img o.raw'),
                 ('img-convert-bad-f', 'img convert -f bogus -O raw t.img o.raw'),
                 ('img-convert-same', 'img convert -O raw t.img t.img'),
                 ('img-dd-badfmt', 'img dd -f bogus if=t.img of=o.raw'),
                 ('img-dd-badO', 'img dd -O bogus if=t.img of=o.raw'),
                 ('img-dd-exists', 'img dd if=t.img of=t.img'),
                 ('img-info-badfmt', 'img info -f bogus t.img'),
                 ('img-info-two', 'img info t.img t.img'),
                 ('img-map-two', 'img map t.img t.img'),
                 ('img-check-two', 'img check t.img t.img'),
                 ('img-check-raw', 'img check -f raw t.img'),
                 ('img-commit-raw', 'img commit -f raw t.img'),
                 ('img-amend-raw', 'img amend -f raw -o size=2M t.img'),
                 ('img-rebase-raw', 'img rebase -u -b "" -f raw t.img'),
                 ('img-create-size-backing', 'img create -f raw -b t.img n.img')]:
        case(n + '-args', a, setup=t1, content=['t.img:raw'])

    for fmt in ('raw', 'qcow2'):
        mk = 'img create -q -f %s t.img 1M' % fmt
        pat = 'io -f %s -c "write -P 0x5a 0 64k" -c "write -P 0x11 256k 4k" t.img' % fmt
        base = [mk, pat]

        def io(n, cmds, extra='', setup=base, files=(), content=(),
               stdin=None, f=fmt):
            c = ' '.join('-c %s' % shlex.quote(x) for x in cmds)
            case('io-%s-%s' % (f, n), 'io %s -f %s %s t.img' % (extra, f, c),
                 setup=setup, files=files, content=content, stdin=stdin)

        chk = ['t.img:' + fmt]
        # reads
        for n, cmds in [
            ('read', ['read 0 4k']),
            ('read-v', ['read -v 0 48']),
            ('read-P-ok', ['read -P 0x5a 0 64k']),
            ('read-P-bad', ['read -P 0x5b 0 512']),
            ('read-P-s-l', ['read -P 0x5a -s 512 -l 512 0 4k']),
            ('read-q', ['read -q 0 4k']),
            ('read-C', ['read -C 0 4k']),
            ('read-b', ['read -b 0 512']),
            ('read-p', ['read -p 0 512']),
            ('read-noargs', ['read']),
            ('read-1arg', ['read 0']),
            ('read-3args', ['read 0 1 2']),
            ('read-badopt', ['read -Z 0 1']),
            ('read-badoff', ['read abc 512']),
            ('read-badlen', ['read 0 abc']),
            ('read-neg', ['read -512 512']),
            ('read-neglen', ['read 0 -512']),
            ('read-eof', ['read 1M 512']),
            ('read-cross-eof', ['read 1020k 8k']),
            ('read-unaligned', ['read 1 3']),
            ('read-suffix', ['read 1k 1k', 'read 0 1M', 'read 0.5k 1']),
            ('read-badsuffix', ['read 1x 1']),
            ('read-huge', ['read 0 4G']),
            ('read-huge2', ['read 0 1T']),
            ('read-P-noarg', ['read -P']),
            ('read-P-bad-pat', ['read -P xyz 0 512']),
            ('read-l-nos', ['read -l 512 0 4k']),
            ('read-s-beyond', ['read -P 0 -s 8k -l 512 0 4k']),
            ('read-v-unaligned', ['read -v 3 21']),
            ('readv', ['readv 0 512 1k']),
            ('readv-P', ['readv -P 0x5a 0 512 512']),
            ('readv-noargs', ['readv']),
            ('readv-1', ['readv 0']),
            ('readv-bad', ['readv 0 abc']),
            ('readv-v', ['readv -v 0 16 16']),
            ('aio-read', ['aio_read 0 4k', 'aio_flush']),
            ('aio-read-P', ['aio_read -P 0x5a 0 4k', 'aio_flush']),
            ('aio-read-noargs', ['aio_read']),
            ('aio-read-bad', ['aio_read 0 x']),
            ('length', ['length']),
            ('length-arg', ['length 1']),
            ('info', ['info']),
            ('map', ['map']),
            ('alloc', ['alloc 0 64k', 'alloc 64k 64k', 'alloc 0', 'alloc 0 1M']),
            ('alloc-noargs', ['alloc']),
            ('alloc-bad', ['alloc x']),
            ('alloc-eof', ['alloc 1M 512']),
            ('flush', ['flush']),
            ('help', ['help']),
            ('help-read', ['help read']),
            ('help-bogus', ['help bogus']),
            ('unknown', ['bogus']),
            ('close-open', ['close', 'open -f %s t.img' % fmt, 'read 0 512']),
            ('close-read', ['close', 'read 0 512']),
            ('close-close', ['close', 'close']),
            ('open-twice', ['open -f %s t.img' % fmt]),
            ('open-missing', ['close', 'open nope.img']),
            ('open-r', ['close', 'open -r -f %s t.img' % fmt, 'write 0 512']),
            ('open-badopt', ['close', 'open -Z t.img']),
            ('open-noargs', ['close', 'open']),
            ('open-o', ['close', 'open -o driver=%s t.img' % fmt, 'info']),
        ]:
            io(n, cmds)
        # writes (image compared)
        for n, cmds in [
            ('write', ['write 0 4k']),
            ('write-P', ['write -P 0xab 512 1k', 'read -P 0xab 512 1k']),
            ('write-unaligned', ['write -P 7 3 1000']),
            ('write-z', ['write -z 0 64k']),
            ('write-zu', ['write -z -u 0 64k']),
            ('write-u-noz', ['write -u 0 64k']),
            ('write-c', ['write -c 0 64k']),
            ('write-c-unaligned', ['write -c 0 512']),
            ('write-f', ['write -f 0 4k']),
            ('write-n', ['write -n 0 4k']),
            ('write-b', ['write -b 0 512']),
            ('write-p', ['write -p 0 512']),
            ('write-C', ['write -C 0 512']),
            ('write-q', ['write -q 0 512']),
            ('write-s', ['write -s pat.bin 0 512']),
            ('write-s-missing', ['write -s nope.bin 0 512']),
            ('write-zP', ['write -z -P 1 0 512']),
            ('write-zc', ['write -z -c 0 64k']),
            ('write-eof', ['write 1M 512']),
            ('write-cross-eof', ['write 1020k 8k']),
            ('write-neg', ['write -512 512']),
            ('write-noargs', ['write']),
            ('write-badopt', ['write -Z 0 1']),
            ('write-huge', ['write 0 4G']),
            ('writev', ['writev -P 3 0 512 1k 3', 'read -P 3 0 1539']),
            ('writev-noargs', ['writev']),
            ('writev-bad', ['writev 0 x']),
            ('aio-write', ['aio_write -P 9 0 4k', 'aio_flush', 'read -P 9 0 4k']),
            ('aio-write-z', ['aio_write -z 0 4k', 'aio_flush']),
            ('aio-write-noargs', ['aio_write']),
            ('discard', ['discard 0 64k', 'read -P 0 0 64k']),
            ('discard-unaligned', ['discard 512 1k']),
            ('discard-noargs', ['discard']),
            ('discard-q', ['discard -q 0 64k']),
            ('discard-eof', ['discard 1M 64k']),
            ('truncate-grow', ['truncate 2M', 'length']),
            ('truncate-shrink', ['truncate 512k', 'length']),
            ('truncate-noargs', ['truncate']),
            ('truncate-bad', ['truncate x']),
            ('multi', ['write -P 1 0 512', 'write -P 2 512 512', 'read -P 1 0 512', 'read -P 2 512 512']),
        ]:
            setup = base + ['sh printf "ABCDEFGH%.0s" $(seq 64) > pat.bin']
            io(n, cmds, setup=setup, content=chk)
        io('readonly-write', ['write 0 512'], extra='-r', content=chk)
        io('readonly-read', ['read 0 512'], extra='-r')
        io('U-read', ['read 0 512'], extra='-r -U')
        io('U-rw', ['read 0 512'], extra='-U')
        io('n-write', ['write -P 4 0 512', 'read -P 4 0 512'], extra='-n', content=chk)
        for t in ('none', 'writeback', 'writethrough', 'directsync', 'unsafe'):
            io('t-' + t, ['read 0 512'], extra='-t ' + t)
        for i in ('threads', 'native', 'io_uring'):
            io('i-' + i, ['read 0 512'], extra='-t none -i ' + i)
        io('i-native-nodirect', ['read 0 512'], extra='-i native')
        io('stdin', [], stdin='read 0 512\nbogus\nwrite -P 1 0 512\nquit\n',
           content=chk)
        case('io-%s-image-opts' % fmt,
             'io --image-opts -c "read -P 0x5a 0 512" driver=%s,file.filename=t.img' % fmt,
             setup=base)
        case('io-%s-image-opts-f' % fmt,
             'io --image-opts -f %s -c "read 0 512" driver=%s,file.filename=t.img' % (fmt, fmt),
             setup=base)
        other = 'qcow2' if fmt == 'raw' else 'raw'
        case('io-%s-wrongfmt' % fmt, 'io -f %s -c "read 0 512" t.img' % other,
             setup=base)
        case('io-%s-badfmt' % fmt, 'io -f bogus -c "read 0 512" t.img', setup=base)
        case('io-%s-nofmt-write' % fmt, 'io -c "write 0 512" t.img', setup=base)

        # ---- qemu-img per format ----
        def img(n, args, setup=base, files=(), content=()):
            case('img-%s-%s' % (fmt, n), 'img ' + args, setup=setup,
                 files=files, content=content)

        img('info', 'info t.img')
        img('info-f', 'info -f %s t.img' % fmt)
        img('info-json', 'info --output=json t.img')
        img('info-badout', 'info --output=xml t.img')
        img('info-U', 'info -U t.img')
        img('info-missing', 'info nope.img')
        img('info-noargs', 'info')
        img('info-wrongfmt', 'info -f %s t.img' % other)
        img('map', 'map -f %s t.img' % fmt)
        img('map-json', 'map -f %s --output=json t.img' % fmt)
        img('map-range', 'map -f %s --start-offset=4k --max-length=300k t.img' % fmt)
        img('map-range-json', 'map -f %s --output=json --start-offset=256k --max-length=1k t.img' % fmt)
        img('map-badstart', 'map --start-offset=x t.img')
        img('map-negstart', 'map --start-offset=-1 t.img')
        img('map-badlen', 'map --max-length=x t.img')
        img('check', 'check -f %s t.img' % fmt)
        img('check-json', 'check -f %s --output=json t.img' % fmt)
        img('check-q', 'check -q -f %s t.img' % fmt)
        img('check-r', 'check -r all -f %s t.img' % fmt)
        img('check-badr', 'check -r bogus t.img')
        img('compare-same', 'compare t.img t.img')
        img('compare-s', 'compare -s -f {0} -F {0} t.img t.img'.format(fmt))
        cp = base + ['img convert -f %s -O %s t.img u.img' % (fmt, fmt),
                     'io -f %s -c "write -P 0x77 300k 1" u.img' % fmt]
        img('compare-diff', 'compare t.img u.img', setup=cp)
        img('compare-diff-s', 'compare -s t.img u.img', setup=cp)
        img('compare-diff-q', 'compare -q t.img u.img', setup=cp)
        sz = base + ['img create -q -f %s big.img 2M' % fmt]
        img('compare-size', 'compare t.img big.img', setup=sz)
        img('compare-size-s', 'compare -s t.img big.img', setup=sz)
        img('compare-missing', 'compare t.img nope.img')
        img('compare-1arg', 'compare t.img')
        for ofmt in ('raw', 'qcow2'):
            o = 'o.' + ofmt
            img('convert-%s' % ofmt, 'convert -f %s -O %s t.img %s' % (fmt, ofmt, o),
                files=[o] if ofmt == 'qcow2' else [], content=[o + ':' + ofmt])
            img('convert-%s-S0' % ofmt, 'convert -S 0 -O %s t.img %s' % (ofmt, o),
                content=[o + ':' + ofmt], files=[o] if ofmt == 'qcow2' else [])
        img('convert-c', 'convert -c -O qcow2 t.img o.qcow2', content=['o.qcow2:qcow2'],
            files=['o.qcow2'])
        img('convert-c-o', 'convert -c -O qcow2 -o cluster_size=4k t.img o.qcow2',
            files=['o.qcow2'])
        img('convert-c-raw', 'convert -c -O raw t.img o.raw')
        img('convert-o', 'convert -O qcow2 -o cluster_size=4k,compat=0.10 t.img o.qcow2',
            files=['o.qcow2'])
        img('convert-o-bad', 'convert -O qcow2 -o cluster_size=3k t.img o.qcow2')
        img('convert-o-unknown', 'convert -O qcow2 -o bogus=1 t.img o.qcow2')
        img('convert-o-help', 'convert -O qcow2 -o help t.img o.qcow2')
        nz = base + ['img create -q -f qcow2 o.qcow2 1M']
        img('convert-n', 'convert -n -O qcow2 t.img o.qcow2', setup=nz,
            files=['o.qcow2'])
        img('convert-n-missing', 'convert -n -O qcow2 t.img nope.qcow2')
        img('convert-n-o', 'convert -n -O qcow2 -o cluster_size=4k t.img o.qcow2', setup=nz)
        img('convert-S-bad', 'convert -S x -O raw t.img o.raw')
        img('convert-S-unaligned', 'convert -S 100 -O raw t.img o.raw')
        # -W writes out of order: the layout is not deterministic
        img('convert-W', 'convert -W -O qcow2 t.img o.qcow2', content=['o.qcow2:qcow2'])
        img('convert-m', 'convert -m 4 -O qcow2 t.img o.qcow2', files=['o.qcow2'])
        img('convert-m-bad', 'convert -m 0 -O qcow2 t.img o.qcow2')
        img('convert-m-big', 'convert -m 17 -O qcow2 t.img o.qcow2')
        img('convert-tiz', 'convert --target-is-zero -O qcow2 t.img o.qcow2')
        img('convert-tiz-n', 'convert -n --target-is-zero -O qcow2 t.img o.qcow2',
            setup=nz, files=['o.qcow2'])
        bk = base + ['img create -q -f qcow2 b.qcow2 1M',
                     'io -f qcow2 -c "write -P 0x5a 0 64k" b.qcow2']
        img('convert-B', 'convert -O qcow2 -B b.qcow2 -F qcow2 t.img o.qcow2',
            setup=bk, files=['o.qcow2'])
        img('convert-B-raw', 'convert -O raw -B b.qcow2 t.img o.raw', setup=bk)
        img('convert-missing', 'convert t.img')
        img('convert-nosrc', 'convert -O raw nope.img o.raw')
        img('convert-badfmt', 'convert -O bogus t.img o.x')
        img('convert-p', 'convert -q -O raw t.img o.raw', content=['o.raw:raw'])
        img('convert-l', 'convert -l snap -O raw t.img o.raw')
        img('convert-multi', 'convert -O raw t.img t.img o.raw', content=['o.raw:raw'])
        img('measure', 'measure -O qcow2 t.img')
        img('measure-json', 'measure --output=json -O qcow2 t.img')
        img('measure-raw', 'measure -O raw t.img')
        img('measure-o', 'measure -O qcow2 -o cluster_size=4k t.img')
        img('dd', 'dd if=t.img of=d.raw bs=4k count=3 skip=1 -O raw',
            content=['d.raw:raw'])
        img('dd-qcow2', 'dd -f %s -O qcow2 if=t.img of=d.qcow2 bs=64k' % fmt,
            content=['d.qcow2:qcow2'])
        img('dd-noif', 'dd of=d.raw')
        img('dd-noof', 'dd if=t.img')
        img('dd-badbs', 'dd if=t.img of=d.raw bs=0')
        img('dd-badbs2', 'dd if=t.img of=d.raw bs=x')
        img('dd-badcount', 'dd if=t.img of=d.raw count=x')
        img('dd-unknown', 'dd if=t.img of=d.raw foo=1')
        img('dd-noeq', 'dd if')
        img('dd-skip-eof', 'dd if=t.img of=d.raw bs=1M skip=2', content=['d.raw:raw'])
        img('bench-badc', 'bench -c x t.img')
        img('bench-badd', 'bench -d x t.img')
        img('bench-bad-pattern', 'bench --pattern=x t.img')
        img('bench-bad-t', 'bench -t bogus t.img')
        img('bench-noargs', 'bench')
        img('amend-noopt', 'amend t.img')
        img('amend-o-comma', 'amend -o compat=1.1, t.img')
        img('convert-o-comma', 'convert -O raw -o , t.img o.raw')
        img('measure-o-comma', 'measure -O qcow2 -o compat=1.1, t.img')
        img('amend-badfmt', 'amend -o foo=1 t.img')

    # ---- a raw file whose size is not a multiple of 512 ----
    un = ['sh head -c 1000 /dev/zero | tr "\\0" A > u.raw']
    for n, a in [('info', 'img info -f raw u.raw'),
                 ('info-json', 'img info -f raw --output=json u.raw'),
                 ('map', 'img map -f raw --output=json u.raw'),
                 ('read', 'io -f raw -c "read -v 990 34" -c length u.raw'),
                 ('write', 'io -f raw -c "write -P 1 1020 4" u.raw'),
                 ('convert', 'img convert -f raw -O qcow2 u.raw o.qcow2'),
                 ('measure', 'img measure -O qcow2 u.raw'),
                 ('qcow2-backing', 'img create -f qcow2 -b u.raw -F raw o.qcow2')]:
        case('unaligned-raw-' + n, a, setup=un, files=['u.raw'],
             content=['o.qcow2:qcow2'] if 'o.qcow2' in a else [])

    # ---- qcow2 only ----
    q = ['img create -q -f qcow2 t.img 1M',
         'io -f qcow2 -c "write -P 0x5a 0 64k" t.img']
    qc = 'img-qcow2-'
    for n, a in [('amend-compat010', 'amend -o compat=0.10 t.img'),
                 ('amend-compat11', 'amend -o compat=1.1 t.img'),
                 ('amend-rb', 'amend -o refcount_bits=1 t.img'),
                 ('amend-rb-bad', 'amend -o refcount_bits=3 t.img'),
                 ('amend-cs', 'amend -o cluster_size=4k t.img'),
                 ('amend-lazy', 'amend -o lazy_refcounts=on t.img'),
                 ('amend-unknown', 'amend -o bogus=1 t.img'),
                 ('amend-help', 'amend -o help t.img'),
                 ('amend-f', 'amend -f qcow2 -o compat=0.10 t.img'),
                 ('amend-size', 'amend -o size=2M t.img')]:
        if n in AMEND_LAYOUT:
            # QEMU leaves stale counts in the freed old refcount block;
            # only the live metadata and the contents must agree.
            case(qc + n, 'img ' + a, setup=q, content=['t.img:qcow2'],
                 post=['img check t.img', 'img info t.img'])
        else:
            case(qc + n, 'img ' + a, setup=q, files=['t.img'])
    # leaks: QEMU leaves leaked clusters when it aborts mid-way
    leak = q + ['io -f qcow2 -c "write 128k 64k" -c "discard 128k 64k" t.img',
                'img amend -o lazy_refcounts=on t.img',
                'sh ' + shlex.quote('REFIO -f qcow2 -c "write 192k 64k" -c abort t.img 2>/dev/null; true')]
    for n, a in [('check-leaks', 'check t.img'),
                 ('check-leaks-json', 'check --output=json t.img'),
                 ('check-leaks-q', 'check -q t.img'),
                 ('check-leaks-rl', 'check -r leaks t.img'),
                 ('check-leaks-ra', 'check -r all t.img')]:
        case(qc + n, 'img ' + a, setup=leak,
             files=['t.img'] if '-r' in a else [],
             post=['img check t.img'] if '-r' in a else [])
    # a real leak: the L2 entry of the first data cluster is cleared
    leak2 = q + ['io -f qcow2 -c "write -P 7 64k 64k" t.img',
                 'sh dd if=/dev/zero of=t.img bs=8 count=1 seek=%d conv=notrunc 2>/dev/null'
                 % (0x40000 // 8)]
    for n, a in [('check-leak2', 'check t.img'),
                 ('check-leak2-json', 'check --output=json t.img'),
                 ('check-leak2-rl', 'check -r leaks t.img'),
                 ('check-leak2-rl-json', 'check -r leaks --output=json t.img'),
                 ('check-leak2-ra', 'check -r all t.img')]:
        case(qc + n, 'img ' + a, setup=leak2,
             files=['t.img'] if '-r' in a else [],
             post=['img check t.img'] if '-r' in a else [])
    case(qc + 'info-dirty', 'img info t.img', setup=leak)
    case(qc + 'info-dirty-json', 'img info --output=json t.img', setup=leak)
    bq = ['img create -q -f qcow2 b.qcow2 1M',
          'io -f qcow2 -c "write -P 0x5a 0 128k" b.qcow2',
          'img create -q -f qcow2 -b b.qcow2 -F qcow2 t.img',
          'io -f qcow2 -c "write -P 0x33 64k 64k" t.img']
    for n, a, f in [
            ('info-chain', 'info --backing-chain t.img', []),
            ('info-chain-json', 'info --backing-chain --output=json t.img', []),
            ('map-chain', 'map t.img', []),
            ('map-chain-json', 'map --output=json t.img', []),
            ('compare-chain', 'compare t.img b.qcow2', []),
            ('convert-chain', 'convert -O qcow2 t.img o.qcow2', ['o.qcow2']),
            ('rebase-u', 'rebase -u -b "" t.img', ['t.img']),
            ('rebase-u-F', 'rebase -u -b b.qcow2 -F qcow2 t.img', ['t.img']),
            ('rebase-u-noF', 'rebase -u -b b.qcow2 t.img', ['t.img']),
            ('rebase-safe-none', 'rebase -b "" t.img', ['t.img']),
            ('rebase-missing', 'rebase -b nope.qcow2 -F qcow2 t.img', ['t.img']),
            ('rebase-noargs', 'rebase', []),
            ('rebase-nob', 'rebase t.img', []),
            ('commit', 'commit t.img', ['b.qcow2']),
            ('commit-d', 'commit -d t.img', ['b.qcow2', 't.img']),
            ('commit-b', 'commit -b b.qcow2 t.img', ['b.qcow2']),
            ('commit-b-bad', 'commit -b nope.qcow2 t.img', []),
            ('commit-nobacking', 'commit b.qcow2', []),
            ('commit-noargs', 'commit', []),
            ('check-chain', 'check t.img', []),
            ('info-chain-U', 'info -U --backing-chain t.img', []),
            ('compare-chain-fF', 'compare -f qcow2 -F qcow2 t.img b.qcow2', []),
            ('compare-chain-wrongF', 'compare -f qcow2 -F raw t.img b.qcow2', []),
            ('convert-chain-B', 'convert -O qcow2 -B b.qcow2 -F qcow2 t.img o.qcow2', ['o.qcow2']),
            ('convert-chain-B-noF', 'convert -O qcow2 -B b.qcow2 t.img o.qcow2', []),
            ('map-chain-range', 'map --start-offset=32k --max-length=64k t.img', []),
            ('commit-q', 'commit -q t.img', ['b.qcow2']),
            ('commit-f', 'commit -f qcow2 t.img', ['b.qcow2']),
            ('commit-bad-t', 'commit -t bogus t.img', []),
            ('rebase-u-b-missing', 'rebase -u -b nope.qcow2 -F qcow2 t.img', ['t.img']),
            ('rebase-F-only', 'rebase -F qcow2 -b "" t.img', ['t.img'])]:
        case(qc + n, 'img ' + a, setup=bq, files=f)
    other = bq + ['img create -q -f qcow2 c.qcow2 1M',
                  'io -f qcow2 -c "write -P 0x44 0 1M" c.qcow2']
    for n, a in [('convert-B-other', 'convert -O qcow2 -B c.qcow2 -F qcow2 t.img o.qcow2'),
                 ('convert-B-other-S0', 'convert -S 0 -O qcow2 -B c.qcow2 -F qcow2 t.img o.qcow2'),
                 ('convert-B-other-c', 'convert -c -O qcow2 -B c.qcow2 -F qcow2 t.img o.qcow2'),
                 ('convert-B-other-raw-src', 'convert -f raw -O qcow2 -B c.qcow2 -F qcow2 b.qcow2 o.qcow2')]:
        case(qc + n, 'img ' + a, setup=other, files=['o.qcow2'],
             content=['o.qcow2:qcow2'], post=['img map --output=json o.qcow2'])
    # compressed data at the end of the file: where the file ends
    for n, cmds in [('write-c-last', ['write -c -P 3 960k 64k']),
                    ('write-c-first', ['write -c -P 3 0 64k']),
                    ('write-c-two', ['write -c -P 3 0 64k', 'write -c -P 4 64k 64k']),
                    ('write-c-then-plain', ['write -c -P 3 0 64k', 'write -P 4 128k 4k']),
                    ('write-c-reuse', ['write -c -P 3 64k 64k', 'discard 64k 64k',
                                       'write -P 5 0 128k']),
                    ('write-c-partial-reuse', ['write -c -P 3 64k 64k', 'discard 64k 64k',
                                               'write -P 5 0 4k'])]:
        case('io-qcow2-' + n, 'io -f qcow2 %s t.img' %
             ' '.join('-c %s' % shlex.quote(x) for x in cmds),
             setup=['img create -q -f qcow2 t.img 1M'], files=['t.img'])
    big = ['img create -q -f qcow2 s.qcow2 8M',
           'io -f qcow2 -c "write -P 1 0 3M" -c "write -P 2 5M 1M" -c "write -z 1M 512k" s.qcow2']
    for n, a in [('convert-c-big', 'convert -c -O qcow2 s.qcow2 o.qcow2'),
                 ('convert-c-big-W', 'convert -c -W -O qcow2 s.qcow2 o.qcow2'),
                 ('convert-big', 'convert -O qcow2 s.qcow2 o.qcow2'),
                 ('convert-big-raw', 'convert -O raw s.qcow2 o.raw')]:
        case(qc + n, 'img ' + a, setup=big,
             files=['o.qcow2'] if 'qcow2 o' in a and '-W' not in a else [],
             content=['o.qcow2:qcow2'] if 'qcow2 o' in a else ['o.raw:raw'])
    case(qc + 'rebase-safe', 'img rebase -b c.qcow2 -F qcow2 t.img',
         setup=bq + ['img create -q -f qcow2 c.qcow2 1M'],
         content=['t.img:qcow2'])
    case(qc + 'rebase-safe-raw', 'img rebase -b c.raw -F raw t.img',
         setup=bq + ['img create -q -f raw c.raw 1M'], content=['t.img:qcow2'])

    # ---- create ----
    for fmt in ('raw', 'qcow2'):
        cr = 'img-create-%s-' % fmt
        for n, a in [('plain', '1M'), ('k', '64k'), ('G', '1G'), ('T', '1T'),
                     ('b', '1b'), ('frac', '1.5M'), ('zero', '0'),
                     ('unaligned', '1000'), ('neg', '-1'), ('bad', '1x'),
                     ('huge', '9E'), ('nosize', ''), ('q', '-q 1M'),
                     ('o-size', '-o size=1M'), ('o-help', '-o help'),
                     ('o-unknown', '-o bogus=1 1M'),
                     ('o-bad-prealloc', '-o preallocation=bogus 1M'),
                     ('prealloc-full', '-o preallocation=full 128k'),
                     ('prealloc-falloc', '-o preallocation=falloc 128k'),
                     ('prealloc-meta', '-o preallocation=metadata 128k')]:
            case(cr + n, 'img create -f %s n.img %s' % (fmt, a),
                 files=['n.img'] if fmt == 'qcow2' and 'prealloc' not in n else [],
                 content=['n.img:' + fmt] if n in ('plain', 'q') else [])
        case(cr + 'exists', 'img create -f %s t.img 2M' % fmt,
             setup=['img create -q -f raw t.img 1M'], content=['t.img:' + fmt])
    case('img-create-nofmt', 'img create n.img 1M', content=['n.img:raw'])
    case('img-create-badfmt', 'img create -f bogus n.img 1M')
    case('img-create-noargs', 'img create')
    case('img-create-nofile', 'img create -f qcow2')
    for n, a in [('cs-4k', '-o cluster_size=4k 1M'),
                 ('cs-bad', '-o cluster_size=3000 1M'),
                 ('cs-big', '-o cluster_size=4M 1M'),
                 ('compat010', '-o compat=0.10 1M'),
                 ('compat-bad', '-o compat=2 1M'),
                 ('rb1', '-o refcount_bits=1 1M'),
                 ('rb-bad', '-o refcount_bits=5 1M'),
                 ('lazy', '-o lazy_refcounts=on 1M'),
                 ('lazy010', '-o compat=0.10,lazy_refcounts=on 1M'),
                 ('extl2', '-o extended_l2=on 1M'),
                 ('zstd', '-o compression_type=zstd 1M'),
                 ('comp-bad', '-o compression_type=lz4 1M'),
                 ('enc', '-o encryption=on 1M'),
                 ('b-noF', '-b b.qcow2 1M'),
                 ('b-F', '-b b.qcow2 -F qcow2'),
                 ('b-F-size', '-b b.qcow2 -F qcow2 2M'),
                 ('b-F-wrong', '-b b.qcow2 -F raw'),
                 ('b-missing', '-b nope.qcow2 -F qcow2 1M'),
                 ('b-missing-nosize', '-b nope.qcow2 -F qcow2'),
                 ('b-u', '-u -b nope.qcow2 -F qcow2 1M'),
                 ('b-u-nosize', '-u -b nope.qcow2 -F qcow2'),
                 ('F-nob', '-F qcow2 1M'),
                 ('o-backing', '-o backing_file=b.qcow2,backing_fmt=qcow2'),
                 ('data-file', '-o data_file=d.raw 1M'),
                 ('o-comma', '-o cluster_size=4k, 1M'),
                 ('o-comma2', '-o cluster_size=4k,, 1M'),
                 ('o-comma3', '-o cluster_size=4k,,, 1M'),
                 ('o-lead-comma', '-o ,cluster_size=4k 1M'),
                 ('o-empty', '-o "" 1M'),
                 ('o-twice', '-o cluster_size=4k -o compat=0.10 1M')]:
        case('img-create-qcow2-' + n, 'img create -f qcow2 %s n.qcow2 %s' %
             (a.rsplit(' ', 1)[0] if a.endswith('M') else a,
              a.rsplit(' ', 1)[1] if a.endswith('M') else ''),
             setup=['img create -q -f qcow2 b.qcow2 1M'],
             files=['n.qcow2'] if 'data' not in n else [])
    # measure without an image
    for n, a in [('size', '--size 1G -O qcow2'),
                 ('size-json', '--size 1G -O qcow2 --output=json'),
                 ('size-raw', '--size 1G -O raw'),
                 ('size-o', '--size 1G -O qcow2 -o cluster_size=2M'),
                 ('size-prealloc', '--size 1G -O qcow2 -o preallocation=metadata'),
                 ('size-noO', '--size 1G'),
                 ('size-bad', '--size x -O qcow2'),
                 ('size-neg', '--size -1 -O qcow2'),
                 ('nothing', '-O qcow2'),
                 ('both', '--size 1G -O qcow2 x.img'),
                 ('badO', '--size 1G -O bogus'),
                 ('badout', '--size 1G -O qcow2 --output=x')]:
        case('img-measure-' + n, 'img measure ' + a)


def normalise(text, tdir, tools):
    for t in tools:
        text = text.replace(t, os.path.basename(t))
    text = text.replace(tdir, '$DIR')
    # statistics lines depend on timing (QEMU 7.2 even prints a bogus
    # hours-long time for some aio requests)
    text = re.sub(r'; [0-9:.]+ (sec )?\([^)]*\)', '; X sec (X)', text)
    text = re.sub(r'(?m)^(\d+,\d+),[0-9:.]+,[0-9.]+,[0-9.]+$', r'\1,TIME', text)
    return text


def run(argv, cwd, stdin=None):
    try:
        p = subprocess.run(argv, cwd=cwd, input=stdin or '',
                           capture_output=True, text=True, errors='replace',
                           timeout=20, env=dict(os.environ, LC_ALL='C', TZ='UTC'))
    except subprocess.TimeoutExpired:
        return -999, '', 'TIMEOUT'
    return p.returncode, p.stdout, p.stderr


def expand(spec, img, io_):
    toks = shlex.split(spec)
    return [img if toks[0] == 'img' else io_] + toks[1:]


def md5(path):
    if not os.path.exists(path):
        return 'missing'
    with open(path, 'rb') as f:
        return hashlib.md5(f.read()).hexdigest()


SETUPS = {}
SETUPS_LOCK = threading.Lock()


def setup_dir(setup, args, root):
    """Inputs are built once per distinct setup by the reference tools
    and copied for each side, which keeps the run short."""
    key = tuple(setup)
    with SETUPS_LOCK:
        ent = SETUPS.setdefault(key, [threading.Lock(), None])
    with ent[0]:
        if ent[1] is None:
            d = os.path.join(root, 'setup-%d' % len(SETUPS), 'in')
            os.makedirs(d)
            for s in setup:
                if s.startswith('sh '):
                    cmd = s[3:].replace('REFIO', shlex.quote(args.ref_io))
                    subprocess.run(['sh', '-c', cmd], cwd=d, capture_output=True)
                else:
                    run(expand(s, args.ref_img, args.ref_io), d)
            ent[1] = d
        return ent[1]


def run_case(c, args, root):
    t0 = time.monotonic()
    try:
        return run_case1(c, args, root)
    finally:
        c['secs'] = time.monotonic() - t0


def run_case1(c, args, root):
    res = {}
    sides = {'ours': (args.ours_img, args.ours_io),
             'ref': (args.ref_img, args.ref_io)}
    for side, (img, io_) in sides.items():
        d = os.path.join(root, c['name'], side)
        shutil.copytree(setup_dir(c['setup'], args, root), d)
        rc, out, err = run(expand(c['cmd'], img, io_), d, c['stdin'])
        tools = [img, io_]
        r = ['exit %d' % rc, '--- stdout']
        r += normalise(out, d, tools).splitlines()
        r += ['--- stderr'] + normalise(err, d, tools).splitlines()
        for p in c['post']:
            prc, pout, perr = run(expand(p, args.ref_img, args.ref_io), d)
            r += ['--- reference %s: exit %d' % (p, prc)]
            r += normalise(pout + perr, d, [args.ref_img, args.ref_io]).splitlines()
        res[side] = (d, r)
    ours, ref = res['ours'][1], res['ref'][1]
    for f in c['files']:
        ours.append('md5 %s %s' % (f, md5(os.path.join(res['ours'][0], f))))
        ref.append('md5 %s %s' % (f, md5(os.path.join(res['ref'][0], f))))
    for f in c['content']:
        name, fmt = f.split(':')
        a = os.path.join(res['ours'][0], name)
        b = os.path.join(res['ref'][0], name)
        if not os.path.exists(a) or not os.path.exists(b):
            ours.append('content %s exists=%s' % (name, os.path.exists(a)))
            ref.append('content %s exists=%s' % (name, os.path.exists(b)))
            continue
        rc, out, err = run([args.ref_img, 'compare', '-U', '-f', fmt, '-F',
                            fmt, a, b], root)
        ours.append('content %s %s' % (name, 'same' if rc == 0 else
                                       'DIFFERS: ' + (out + err).strip()))
        ref.append('content %s same' % name)
    return ours, ref


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.environ.get('BUILD_DIR', os.path.join(here, '..', 'build'))
    ap = argparse.ArgumentParser()
    ap.add_argument('--ours-img', default=os.environ.get('QEMU_IMG', os.path.join(build, 'qemu-img')))
    ap.add_argument('--ours-io', default=os.environ.get('QEMU_IO', os.path.join(build, 'qemu-io')))
    ap.add_argument('--ref-img', default='/usr/bin/qemu-img')
    ap.add_argument('--ref-io', default='/usr/bin/qemu-io')
    ap.add_argument('-k', dest='filter', help='only cases whose name contains this')
    ap.add_argument('-v', action='store_true', help='show allowed mismatches too')
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--timing', action='store_true', help='show the slowest cases')
    ap.add_argument('--summary', action='store_true',
                    help='print only a stable summary (for iotests)')
    args = ap.parse_args()
    for k in ('ours_img', 'ours_io', 'ref_img', 'ref_io'):
        setattr(args, k, os.path.abspath(getattr(args, k)))
        if not os.access(getattr(args, k), os.X_OK):
            print('qemu-diff: %s not executable' % getattr(args, k), file=sys.stderr)
            return 77
    build_cases()
    names = [c['name'] for c in CASES]
    assert len(names) == len(set(names)), 'duplicate case names'
    cases = [c for c in CASES if not args.filter or args.filter in c['name']]
    if args.list:
        for c in cases:
            print(c['name'], c['cmd'])
        return 0
    root = tempfile.mkdtemp(prefix='qemu-diff.')
    bad, allowed = [], []
    try:
        with concurrent.futures.ThreadPoolExecutor(4 * (os.cpu_count() or 2)) as ex:
            futs = [(c, ex.submit(run_case, c, args, root)) for c in cases]
            for c, f in futs:
                ours, ref = f.result()
                if ours == ref:
                    continue
                (allowed if c['name'] in ALLOWED else bad).append((c, ours, ref))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.timing:
        for c in sorted(cases, key=lambda c: -c['secs'])[:15]:
            print('%6.2fs %s' % (c['secs'], c['name']))
    if args.summary:
        # Stable across added cases and fixes: only failures are named.
        print('cases run: %s' % ('enough' if len(cases) >= 500 else len(cases)))
        print('unexpected mismatches: %d' % len(bad))
        for c, ours, ref in bad:
            print('MISMATCH %s: %s' % (c['name'], c['cmd']))
            for line in difflib.unified_diff(ref, ours, 'reference', 'ours',
                                             lineterm='', n=1):
                print('    ' + line)
        return 1 if bad else 0
    for c, ours, ref in bad + (allowed if args.v else []):
        tag = 'ALLOWED (%s)' % ALLOWED[c['name']] if c['name'] in ALLOWED else 'MISMATCH'
        print('=== %s %s: %s' % (tag, c['name'], c['cmd']))
        for line in difflib.unified_diff(ref, ours, 'reference', 'ours', lineterm='', n=2):
            print(line)
    names = {c['name'] for c in cases}
    hit = {c['name'] for c, _, _ in allowed}
    for n in sorted(n for n in ALLOWED if n in names and n not in hit):
        print('note: allowed case %s now matches; drop it from ALLOWED' % n)
    print('%d cases, %d mismatches (%d allowed, %d unexpected)' %
          (len(cases), len(bad) + len(allowed), len(allowed), len(bad)))
    for c, _, _ in bad:
        print('  MISMATCH', c['name'])
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
