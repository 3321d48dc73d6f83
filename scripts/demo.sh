#!/bin/sh
# The README's main job: create a zoned qcow2 image, write and append to
# zones, close it, reopen it, and show that the zone state survived.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
set -e
build=${1:-build}
img_dir=$(mktemp -d "${TMPDIR:-/tmp}/zq-demo.XXXXXX")
trap 'rm -rf "$img_dir"' EXIT
QEMU_IMG="$build/qemu-img"
QEMU_IO="$build/qemu-io"
img="$img_dir/zoned.qcow2"

step() { printf '\n$ %s\n' "$*"; "$@"; }

# 8 zones of 64 MiB with 48 MiB writable each; the first is conventional;
# at most 2 zones open and 3 active, as on a small SMR/ZNS device.
step "$QEMU_IMG" create -f qcow2 -o zone.mode=host-managed,zone.size=64M,zone.capacity=48M,zone.conventional_zones=1,zone.max_open_zones=2,zone.max_active_zones=3 "$img" 512M

# Random writes to the conventional zone, sequential writes at the write
# pointers of zones 1 and 2, appends to zone 3 (each prints where it
# went; opening zone 3 implicitly closes zone 1, the open limit being 2).
# Then an explicit open of zone 4 fails: three zones are active, the
# limit (EOVERFLOW).  Finishing zone 2 releases its slot and the open
# succeeds.
step "$QEMU_IO" -f qcow2 \
    -c 'write -P 0x11 4M 64k' \
    -c 'write -P 0x22 64M 1M' -c 'write -P 0x23 65M 1M' \
    -c 'write -P 0x33 128M 4k' \
    -c 'zap -p 192M 32k 32k' -c 'zap -p 192M 64k' \
    -c 'zo 256M 64M' -c 'zf 128M 64M' -c 'zo 256M 64M' \
    -c 'zrp 0 8' "$img" || true   # qemu-io exits 1: one command failed on purpose

echo
echo "# A write that is not at the write pointer is refused (EINVAL):"
step "$QEMU_IO" -f qcow2 -c 'write 64M 4k' "$img" || true

echo
echo "# Reopened: the write pointers persisted, open zones are now CLOSED (4)."
step "$QEMU_IO" -f qcow2 -r -c 'zrp 0 8' -c 'read -P 0x23 65M 1M' \
    -c 'read -P 0 66M 4k' "$img"
step "$QEMU_IMG" info "$img"
step "$QEMU_IMG" check "$img"

echo
echo "# Reset every zone: the space is given back."
step "$QEMU_IO" -f qcow2 -c 'zrs 0 512M' -c 'zrp 0 8' "$img"
step "$QEMU_IMG" check "$img"
