#!/usr/bin/env python3
# Benchmark driver: our qemu-img bench against Debian's qemu-img bench and
# fio, in the same invocation, interleaved, with per-pair ratios.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Usage:
  bench.py throughput [--build DIR] [--pairs N] [--where disk,tmpfs]
                      [--aio io_uring,native,threads] [--fmt raw] [--quick]
                      [--workloads w1,w2]
  bench.py callgrind  [--build DIR] [--fmt raw] [--n 20000]

throughput: for every (place, aio, workload) it runs ours, QEMU's and fio
interleaved (ours, qemu, fio, ours, qemu, fio, ...) --pairs times and
prints each run's rate, the per-pair ratios ours/qemu and ours/fio, and
their medians.  Images are preallocated raw files (fully written), opened
with cache=none (O_DIRECT); fio uses the same file, block size, depth
and access pattern (sequential: qemu-img bench has no random mode) with
ioengine=libaio (native) or io_uring, or psync with numjobs for threads.

callgrind: counts instructions of `qemu-img bench` with N and 2N
requests (4k, depth 1, cache=none, aio=native, on tmpfs) for ours and
QEMU's and prints the marginal instructions per request, (I(2N)-I(N))/N,
which is deterministic on this machine.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

QEMU_IMG_REF = "/usr/bin/qemu-img"

# name -> (block size, depth, write?, random?)
WORKLOADS = {
    "seq-write-64k-d32": ("64k", 32, True, False),
    "seq-read-64k-d32": ("64k", 32, False, False),
    "read-4k-d1": ("4k", 1, False, False),
    "read-4k-d32": ("4k", 32, False, False),
    "write-4k-d1": ("4k", 1, True, False),
    # "Random" 4k: qemu-img bench has no random mode, so both qemu-img
    # benches step through the image with a stride of an odd number of
    # blocks, which visits every block once in a scattered order (the
    # block count is a power of two); fio uses its own random offsets.
    "randread-4k-d1": ("4k", 1, False, True),
    "randread-4k-d32": ("4k", 32, False, True),
    "randwrite-4k-d1": ("4k", 1, True, True),
    "randwrite-4k-d32": ("4k", 32, True, True),
    # qcow2 only: sequential 64k writes into a freshly created image, so
    # every request allocates (the image is recreated before each run).
    "alloc-write-64k-d32": ("64k", 32, True, False),
    "alloc-write-64k-d1": ("64k", 1, True, False),
}
FRESH = ("alloc-write-64k-d32", "alloc-write-64k-d1")
SIZES = {"4k": 4096, "64k": 65536}
# Requests per run for 4k workloads (a whole 1 GiB image at depth 1 would
# take half a minute per run on the disk).
COUNT_4K = {1: 30000, 32: 120000}


def stride_blocks(nblocks):
    # An odd stride near the golden section of the image: coprime with a
    # power-of-two block count, and far from sequential.
    k = int(nblocks * 0.6180339887)
    return k | 1


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


def make_qcow2(raw, path, fresh, size):
    # Created by Debian's qemu-img so both tools start from the same bytes.
    tool = QEMU_IMG_REF if os.access(QEMU_IMG_REF, os.X_OK) else "qemu-img"
    if os.path.exists(path):
        os.unlink(path)
    if fresh:
        run([tool, "create", "-f", "qcow2", path, str(size)])
    else:
        run([tool, "convert", "-f", "raw", "-O", "qcow2", raw, path])


def make_image(path, size):
    # Fully written so no run measures file growth or holes.
    with open(path, "wb") as f:
        chunk = b"\xa5" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def qemu_img_bench(tool, img, fmt, bs, depth, write, aio, count, step=0):
    cmd = [tool, "bench", "-f", fmt, "-t", "none", "-i", aio,
           "-c", str(count), "-d", str(depth), "-s", bs]
    if step:
        cmd += ["-S", str(step)]
    if write:
        cmd += ["-w", "--pattern=0x5a"]
    cmd.append(img)
    out = run(cmd).stdout
    # The tool's own timing excludes process start-up and image open.
    m = re.search(r"Run completed in ([0-9.]+) seconds", out)
    if not m:
        raise RuntimeError("no timing in output of %s: %s" % (cmd, out))
    return float(m.group(1))


def fio_run(img, bs, depth, write, aio, count, rand=False):
    engine = {"native": "libaio", "io_uring": "io_uring",
              "threads": "psync"}[aio]
    nbytes = SIZES[bs] * count
    rw = ("write" if write else "read")
    if rand:
        rw = "rand" + rw
    cmd = ["fio", "--name=b", "--filename=" + img, "--direct=1",
           "--rw=" + rw, "--bs=" + bs,
           "--ioengine=" + engine, "--io_size=%d" % nbytes,
           "--output-format=json", "--allow_file_create=0"]
    if engine == "psync":
        cmd += ["--numjobs=%d" % min(depth, 8), "--group_reporting",
                "--io_size=%d" % (nbytes // min(depth, 8))]
    else:
        cmd += ["--iodepth=%d" % depth]
    out = json.loads(run(cmd).stdout)
    job = out["jobs"][0]
    part = job["write" if write else "read"]
    return part["iops"]


def rate_line(name, vals):
    return "%-8s %s" % (name, " ".join("%9.0f" % v for v in vals))


def ratio_line(label, num, den):
    ratios = [a / b for a, b in zip(num, den)]
    med = statistics.median(ratios)
    print("%-10s" % label + " ".join("%.2f" % x for x in ratios)
          + "  median %.2f" % med)
    return med


def fresh_raw(path, size):
    # A new sparse raw file: what a fresh qcow2 image's data area is to the
    # host filesystem, so fio on it is the floor for allocating writes.
    if os.path.exists(path):
        os.unlink(path)
    with open(path, "wb") as f:
        f.truncate(size)


def throughput(args):
    ours = os.path.join(args.build, "qemu-img")
    have_ref = os.access(QEMU_IMG_REF, os.X_OK)
    have_fio = shutil.which("fio") is not None
    places = {"disk": args.disk_dir, "tmpfs": "/dev/shm"}
    workloads = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    img_size = (256 << 20) if args.quick else (1 << 30)
    print("# throughput in requests/s; ratios are per interleaved pair")
    print("# images: preallocated raw, %d MiB, cache=none (O_DIRECT)" %
          (img_size >> 20))
    print("# fio runs on the preallocated raw file; for fresh-image workloads"
          " fio-new also runs on a new sparse raw file")
    summary = []
    for place in args.where.split(","):
        d = tempfile.mkdtemp(prefix="zq-bench-", dir=places[place])
        raw = os.path.join(d, "bench.raw")
        sparse = os.path.join(d, "new.raw")
        img = raw if args.fmt == "raw" else os.path.join(d, "bench.qcow2")
        try:
            make_image(raw, img_size)
            if args.fmt == "qcow2":
                make_qcow2(raw, img, False, img_size)
            for aio in args.aio.split(","):
                for w in workloads:
                    bs, depth, write, rand = WORKLOADS[w]
                    nblocks = img_size // SIZES[bs]
                    count = nblocks
                    if bs == "4k":
                        count = min(count, COUNT_4K[depth])
                    if args.quick:
                        count = min(count, 20000)
                    step = SIZES[bs] * stride_blocks(nblocks) if rand else 0
                    fresh = w in FRESH
                    if fresh and args.fmt != "qcow2":
                        continue
                    r_ours, r_ref, r_fio, r_new = [], [], [], []
                    for _ in range(args.pairs):
                        if fresh:
                            make_qcow2(raw, img, True, img_size)
                        t = qemu_img_bench(ours, img, args.fmt, bs, depth,
                                           write, aio, count, step)
                        r_ours.append(count / t)
                        if have_ref:
                            if fresh:
                                make_qcow2(raw, img, True, img_size)
                            t = qemu_img_bench(QEMU_IMG_REF, img, args.fmt,
                                               bs, depth, write, aio, count,
                                               step)
                            r_ref.append(count / t)
                        if have_fio:
                            # fio always runs on the preallocated raw file:
                            # the hardware limit.
                            r_fio.append(fio_run(raw, bs, depth, write, aio,
                                                 count, rand))
                            if fresh:
                                fresh_raw(sparse, img_size)
                                r_new.append(fio_run(sparse, bs, depth, write,
                                                     aio, count, rand))
                                os.unlink(sparse)
                    print("\n## %s %s aio=%s (%d requests%s)" %
                          (place, w, aio, count,
                           ", stride %d" % step if step else ""))
                    print(rate_line("ours", r_ours))
                    line = "%s %s %s" % (place, w, aio)
                    if r_ref:
                        print(rate_line("qemu", r_ref))
                        line += "  ours/qemu %.2f" % ratio_line(
                            "ours/qemu", r_ours, r_ref)
                    if r_fio:
                        print(rate_line("fio", r_fio))
                        line += "  ours/fio %.2f" % ratio_line(
                            "ours/fio", r_ours, r_fio)
                        if r_ref:
                            line += "  qemu/fio %.2f" % statistics.median(
                                [a / b for a, b in zip(r_ref, r_fio)])
                    if r_new:
                        print(rate_line("fio-new", r_new))
                        line += "  ours/fio-new %.2f" % ratio_line(
                            "ours/new", r_ours, r_new)
                    summary.append(line)
                    sys.stdout.flush()
        finally:
            shutil.rmtree(d)
    print("\n# summary (medians)")
    for s in summary:
        print(s)


def callgrind_count(tool, img, fmt, n, write, aio):
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           tool, "bench", "-f", fmt, "-t", "none", "-i", aio, "-c", str(n),
           "-d", "1", "-s", "4k"]
    if write:
        cmd += ["-w"]
    cmd.append(img)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        raise RuntimeError("callgrind run failed: %s" % p.stderr[-2000:])
    return int(m.group(1))


def callgrind(args):
    ours = os.path.join(args.build, "qemu-img")
    tools = [("ours", ours)]
    if os.access(QEMU_IMG_REF, os.X_OK):
        tools.append(("qemu", QEMU_IMG_REF))
    d = tempfile.mkdtemp(prefix="zq-cg-", dir="/dev/shm")
    raw = os.path.join(d, "cg.raw")
    img = raw if args.fmt == "raw" else os.path.join(d, "cg.qcow2")
    n = args.n
    try:
        make_image(raw, 64 << 20)
        print("# marginal instructions per 4k request, depth 1, cache=none,"
              " aio=%s, tmpfs, preallocated %s image" % (args.aio, args.fmt))
        res = {}
        kinds = [("read", False, False), ("rewrite", True, False)]
        if args.fmt == "qcow2":
            kinds.append(("alloc-write", True, True))
        for what, write, fresh in kinds:
            for name, tool in tools:
                counts = []
                for k in (n, 2 * n):
                    if args.fmt == "qcow2":
                        make_qcow2(raw, img, fresh, 64 << 20)
                    counts.append(callgrind_count(tool, img, args.fmt, k,
                                                  write, args.aio))
                a, b = counts
                res[(what, name)] = (b - a) / n
                print("%-8s %-5s %8.0f Ir/request" % (what, name,
                                                      res[(what, name)]))
            if ("%s" % what, "qemu") in res:
                print("%-8s ours/qemu %.2f" %
                      (what, res[(what, "ours")] / res[(what, "qemu")]))
    finally:
        shutil.rmtree(d)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["throughput", "callgrind"])
    ap.add_argument("--build", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
    ap.add_argument("--fmt", default="raw")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--where", default="disk,tmpfs")
    ap.add_argument("--disk-dir", default=os.environ.get("BENCH_DISK_DIR", "/var/tmp"))
    ap.add_argument("--aio", default="io_uring,native,threads")
    ap.add_argument("--workloads", default="")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=4000)
    args = ap.parse_args()
    if args.mode == "throughput":
        throughput(args)
    else:
        if "," in args.aio:
            args.aio = "native"
        callgrind(args)


if __name__ == "__main__":
    main()
