#!/bin/sh
# Re-record the null_blk golden transcript of the iotest zoned-nullblk:
# boot the test guest once, run every configuration of
# tests/qemu-iotests/zoned-nullblk.scenario on null_blk, and write
# tests/qemu-iotests/tests/zoned-nullblk.out and, beside the scenario,
# zoned-nullblk.recorded (kernel version).  Not run by "make check".
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/guest/record-nullblk.sh [OUT]
#   OUT  where to write the transcript (default: the iotest's .out file;
#        with OUT, zoned-nullblk.recorded is left alone)
# Needs scripts/install-deps.sh --guest.  GUEST_CACHE, GUEST_KERNEL as in
# scripts/guest/kernel.sh.
set -e
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
iot="$src/tests/qemu-iotests"
out=${1:-$iot/tests/zoned-nullblk.out}
cache=${GUEST_CACHE:-/var/cache/zoned-qcow2/guest}

work=$(mktemp -d "${TMPDIR:-/tmp}/record-nullblk.XXXXXX")
trap 'rm -rf "$work"' EXIT

gcc -static -O2 -Wall -o "$work/zone-scenario" "$here/zone-scenario.c"
"$here/build-initramfs.sh" -o "$cache/nullblk.cpio" -m null_blk
python3 "$iot/zoned_scenario.py" guest "$iot/zoned-nullblk.scenario" \
    > "$work/test.sh"
"$here/run.sh" -i "$cache/nullblk.cpio" -t 300 -l "$work/console" \
    -o "$work/transcript" -f "$work/zone-scenario:/bin/zone-scenario" \
    "$work/test.sh" || {
    rc=$?
    cat "$work/console" >&2
    exit $rc
}
kver=$(sed -n 's/.*GUEST-READY //p' "$work/console" | tr -d '\r')
{
    echo "QA output created by zoned-nullblk"
    cat "$work/transcript"
    echo "*** done"
} > "$out"
# Which kernel the golden data comes from, beside the .out file.
if [ $# = 0 ]; then
    {
        echo "kernel: Linux $kver"
        echo "package: $(cat "$("$here/kernel.sh")/package")"
        echo "recorded: $(date -u +%Y-%m-%d) by scripts/guest/record-nullblk.sh"
    } > "$iot/zoned-nullblk.recorded"
fi
echo "record-nullblk.sh: wrote $out (Linux $kver)"
