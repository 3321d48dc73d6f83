#!/usr/bin/env bash
# Where the cost of allocating writes comes from on this machine.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A fresh qcow2 image writes its data into blocks the host filesystem has
# never written.  This script separates the layers that make that slower
# than rewriting a preallocated file:
#
#   1. fio, 64k sequential O_DIRECT writes at depth 32, on the disk
#      filesystem: into a fully written file, a new sparse file and a new
#      fallocated file;
#   2. the same inside an ext4 filesystem on a loop device (direct I/O)
#      whose backing file is fully written first, so every block below
#      that filesystem already exists; and
#   3. with --ours, our qcow2 allocating-write benchmark
#      (bench.py alloc-write-64k-d32) in that loop filesystem too.
#
# If (2) shows new and written files at the same speed while (1) does
# not, the extra cost of first writes lies below the guest filesystem
# (a thin-provisioned virtual disk), and no image format can avoid it.
#
# Usage: alloc-floor.sh [--ours] [--build DIR] [--dir DISK_DIR] [--runs N]
# Needs root (losetup, mount), fio, mkfs.ext4.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build"
dir=${BENCH_DISK_DIR:-/var/tmp}
runs=3
ours=0
while [ $# -gt 0 ]; do
    case "$1" in
    --ours) ours=1 ;;
    --build) build=$2; shift ;;
    --dir) dir=$2; shift ;;
    --runs) runs=$2; shift ;;
    *) echo "usage: $0 [--ours] [--build DIR] [--dir DIR] [--runs N]" >&2
       exit 2 ;;
    esac
    shift
done

work=$(mktemp -d "$dir/zq-floor-XXXXXX")
mnt="$work/mnt"
loopdev=""
cleanup()
{
    if mountpoint -q "$mnt" 2>/dev/null; then
        umount "$mnt"
    fi
    if [ -n "$loopdev" ]; then
        losetup -d "$loopdev"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# fio_mibs FILE: MiB/s of 1 GiB of 64k sequential direct writes, depth 32.
fio_mibs()
{
    fio --name=floor --filename="$1" --direct=1 --rw=write --bs=64k \
        --ioengine=io_uring --iodepth=32 --size=1G --output-format=json |
        python3 -c 'import json, sys
print(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"] >> 20)'
}

# prepare FILE KIND: written, sparse or fallocated 1 GiB file.
prepare()
{
    rm -f "$1"
    case "$2" in
    written) dd if=/dev/zero of="$1" bs=1M count=1024 oflag=direct status=none ;;
    sparse) truncate -s 1G "$1" ;;
    falloc) fallocate -l 1G "$1" ;;
    esac
    sync
}

# series WHERE: fio on written, sparse and fallocated files in WHERE.
series()
{
    local where=$1 kind i line
    for kind in written sparse falloc; do
        line=""
        for i in $(seq "$runs"); do
            prepare "$where/f.raw" "$kind"
            line="$line $(fio_mibs "$where/f.raw")"
        done
        rm -f "$where/f.raw"
        printf '  %-8s MiB/s:%s\n' "$kind" "$line"
    done
}

echo "# 64k sequential O_DIRECT writes, depth 32, io_uring, 1 GiB"
echo "## disk filesystem ($dir)"
series "$work"

echo "## ext4 on a loop device over a fully written 4 GiB file"
dd if=/dev/zero of="$work/back.img" bs=1M count=4096 oflag=direct status=none
loopdev=$(losetup --direct-io=on -f --show "$work/back.img")
mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$loopdev"
mkdir -p "$mnt"
mount -o nodiscard "$loopdev" "$mnt"
series "$mnt"

if [ "$ours" = 1 ]; then
    echo "## our qcow2 allocating writes in the loop filesystem"
    python3 "$here/bench.py" throughput --build "$build" --fmt qcow2 \
        --where disk --disk-dir "$mnt" --aio io_uring,native \
        --workloads alloc-write-64k-d32 --pairs "$runs" | sed -n '/^## /,$p'
fi
