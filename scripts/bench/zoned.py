#!/usr/bin/env python3
# Zoned write-path benchmarks: zoned qcow2 against non-zoned qcow2 (the
# same workload, fresh images, interleaved) and fio on a preallocated raw
# file, plus zone report and open times of images with many zones.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Usage: zoned.py [--build DIR] [--pairs N] [--dir DIR]
       zoned.py --callgrind [--build DIR] [--n N] [--cluster-size SIZE]

seq-write: sequential 64k writes filling zones (zone.size=64M, no limits)
of a fresh 1 GiB image at depth 1 and 32, cache=none, aio=io_uring; the
ratio zoned/non-zoned is the cost of the zoned write path.
zrp: wall time of `qemu-io -c 'zrp 0 65536'` on a 65,536-zone image.
open: wall time of opening a 1,048,576-zone image (qemu-io -c 'zrp 0 1'),
and the same for a non-zoned image of the same size (the difference is
the zoned open cost).
append: zone appends (our `qemu-img bench --zone-append`) at depth 32,
64k each, into one zone at a time (filling a 1 GiB image zone by zone)
and spread round robin over 8 zones (-S 64M on a 512 MiB image), against
sequential writes of the same bytes at depth 32 to a fresh zoned image.

--callgrind: the CPU cost of the zoned write path, deterministic.  It
counts the instructions (callgrind Ir) of `qemu-img bench -w -s 4k -d 1
-t none -i native` writing sequentially from offset 0 of a 256 MiB image
on tmpfs, with N and 2N requests, and prints the marginal count per
request, (I(2N) - I(N)) / N, so open, close and the final flush cancel
out.  (a) a plain qcow2 image, (b) a zoned one (zone.size=64M, no limits,
no conventional zones: every write lands at the write pointer of the
first sequential zone), same cluster size, both made by our qemu-img
before every run; once fresh (a cluster allocated every cluster_size/4k
writes) and once with preallocation=metadata (no allocation).  The
ratio b/a is the cost of the zoned emulation per 4k write.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

from bench import fio_run, make_image, run


def bench_write(qimg, img, depth, count, extra=("-w",)):
    out = run([qimg, "bench", "-f", "qcow2", "-t", "none", "-i", "io_uring",
               "-c", str(count), "-d", str(depth), "-s", "64k"]
              + list(extra) + [img]).stdout
    return float(re.search(r"Run completed in ([0-9.]+) seconds", out).group(1))


def callgrind_ir(qimg, img, n):
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           qimg, "bench", "-f", "qcow2", "-t", "none", "-i", "native",
           "-c", str(n), "-d", "1", "-s", "4k", "-w", img]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        raise RuntimeError("callgrind run failed: %s" % p.stderr[-2000:])
    return int(m.group(1))


def callgrind(args):
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind not found (scripts/install-deps.sh --bench)")
    qimg = os.path.join(args.build, "qemu-img")
    n = args.n
    # 2N 4k writes must stay inside the first zone.
    if 2 * n * 4096 > (64 << 20):
        raise SystemExit("--n at most %d" % ((64 << 20) // 8192))
    d = tempfile.mkdtemp(prefix="zq-zcg-", dir="/dev/shm")
    img = os.path.join(d, "cg.qcow2")
    print("# marginal Ir per 4k sequential write, depth 1, cache=none, "
          "aio=native, tmpfs, cluster_size=%s, N=%d" % (args.cluster_size, n))
    try:
        for prealloc in ("off", "metadata"):
            res = {}
            for name, zoned in (("plain", False), ("zoned", True)):
                opts = "cluster_size=%s,preallocation=%s" % (args.cluster_size,
                                                             prealloc)
                if zoned:
                    opts += ",zone.mode=host-managed,zone.size=64M"
                counts = []
                for k in (n, 2 * n):
                    if os.path.exists(img):
                        os.unlink(img)
                    run([qimg, "create", "-q", "-f", "qcow2", "-o", opts,
                         img, "256M"])
                    counts.append(callgrind_ir(qimg, img, k))
                res[name] = (counts[1] - counts[0]) / n
                print("preallocation=%-8s %-5s %8.1f Ir/request" %
                      (prealloc, name, res[name]))
            print("preallocation=%-8s zoned/plain %.3f (%+.1f Ir/request)" %
                  (prealloc, res["zoned"] / res["plain"],
                   res["zoned"] - res["plain"]))
    finally:
        shutil.rmtree(d)


def wall(cmd):
    t0 = time.perf_counter()
    run(cmd)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--dir", default=os.environ.get("BENCH_DISK_DIR", "/var/tmp"))
    ap.add_argument("--callgrind", action="store_true",
                    help="only the callgrind cost of a zoned 4k write")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--cluster-size", default="64k")
    args = ap.parse_args()
    if args.callgrind:
        callgrind(args)
        return
    qimg = os.path.join(args.build, "qemu-img")
    qio = os.path.join(args.build, "qemu-io")
    d = tempfile.mkdtemp(prefix="zq-zbench-", dir=args.dir)
    try:
        img = os.path.join(d, "b.qcow2")
        raw = os.path.join(d, "b.raw")
        make_image(raw, 1 << 30)
        count = (1 << 30) // 65536
        zoned_opts = "zone.mode=host-managed,zone.size=64M"
        for depth in (1, 32):
            rz, rn, rf = [], [], []
            for _ in range(args.pairs):
                for opts, res in ((zoned_opts, rz), (None, rn)):
                    if os.path.exists(img):
                        os.unlink(img)
                    cmd = [qimg, "create", "-q", "-f", "qcow2"]
                    if opts:
                        cmd += ["-o", opts]
                    run(cmd + [img, "1G"])
                    res.append(count / bench_write(qimg, img, depth, count))
                rf.append(fio_run(raw, "64k", depth, True, "io_uring", count))
            ratios = [a / b for a, b in zip(rz, rn)]
            fr = [a / b for a, b in zip(rz, rf)]
            print("seq-write-64k-d%d zoned  %s" % (depth, " ".join("%.0f" % x for x in rz)))
            print("seq-write-64k-d%d plain  %s" % (depth, " ".join("%.0f" % x for x in rn)))
            print("seq-write-64k-d%d zoned/plain %s median %.3f (cost %+.1f%%)" % (
                depth, " ".join("%.2f" % x for x in ratios),
                statistics.median(ratios), (1 / statistics.median(ratios) - 1) * 100))
            print("seq-write-64k-d%d zoned/fio   median %.2f" % (depth, statistics.median(fr)))
        os.unlink(raw)

        def fresh(size):
            if os.path.exists(img):
                os.unlink(img)
            run([qimg, "create", "-q", "-f", "qcow2", "-o", zoned_opts, img, size])

        for label, size, extra in (("one zone", "1G", ["--zone-append"]),
                                   ("8 zones", "512M",
                                    ["--zone-append", "-S", "64M"])):
            n = (int(size[:-1]) << (30 if size.endswith("G") else 20)) // 65536
            ra, rw = [], []
            for _ in range(args.pairs):
                fresh(size)
                ra.append(n / bench_write(qimg, img, 32, n, extra))
                fresh(size)
                rw.append(n / bench_write(qimg, img, 32, n))
            ratios = [a / b for a, b in zip(ra, rw)]
            print("zone-append-64k-d32 (%s) append/write %s median %.2f" % (
                label, " ".join("%.2f" % x for x in ratios),
                statistics.median(ratios)))

        for nz, zsize, label in ((65536, "64k", "zrp"), (1048576, "4k", "open")):
            size = "%d" % (nz * (65536 if zsize == "64k" else 4096))
            zimg = os.path.join(d, "many.qcow2")
            pimg = os.path.join(d, "plain.qcow2")
            run([qimg, "create", "-q", "-f", "qcow2", "-o",
                 "zone.mode=host-managed,zone.size=%s" % zsize, zimg, size])
            run([qimg, "create", "-q", "-f", "qcow2", pimg, size])
            if label == "zrp":
                t = [wall([qio, "-r", "-f", "qcow2", "-c", "zrp 0 %d" % nz, zimg])
                     for _ in range(args.pairs)]
                print("zrp of %d zones (qemu-io, output included): median %.3f s" %
                      (nz, statistics.median(t)))
            tz = [wall([qio, "-r", "-f", "qcow2", "-c", "zrp 0 1", zimg])
                  for _ in range(args.pairs)]
            tp = [wall([qio, "-r", "-f", "qcow2", "-c", "length", pimg])
                  for _ in range(args.pairs)]
            print("open+close of %d-zone image: median %.3f s (non-zoned: %.3f s)" %
                  (nz, statistics.median(tz), statistics.median(tp)))
            os.unlink(zimg)
            os.unlink(pimg)
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
