#!/bin/sh
# Host side of one test of the meson suite "vm": make sure the guest
# initramfs of this build exists (built once per build directory, rebuilt
# when any input changes), boot the Linux 6.12 guest under TCG with the
# test script and map the outcome to meson's exit codes: 0 pass, 1 fail,
# 77 skip (with the reason on stdout: no kernel, no QEMU, a missing tool,
# a guest that does not boot).
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: tests/vm/vm-test.sh BUILD_DIR TEST [-s SMP] [-M MEM] [-t TIMEOUT]
#   TEST is a script in tests/vm/guest/ (without .sh).  VM_KEEP=1 keeps
#   the console log in BUILD_DIR/tests/vm/TEST.console after a pass too.
set -e
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
guest="$src/scripts/guest"
build=$(cd "$1" && pwd)
name=$2
shift 2
smp=1
mem=2G
timeout=600
while getopts s:M:t: opt; do
    case $opt in
    s) smp=$OPTARG ;;
    M) mem=$OPTARG ;;
    t) timeout=$OPTARG ;;
    *) exit 1 ;;
    esac
done
script="$here/guest/$name.sh"
[ -f "$script" ] || { echo "vm-test: no test $script" >&2; exit 1; }

skip() { echo "SKIP: $name: $*"; exit 77; }

command -v qemu-system-x86_64 >/dev/null ||
    skip "qemu-system-x86_64 is not installed (scripts/install-deps.sh)"
kdir=$(GUEST_OFFLINE=1 "$guest/kernel.sh" 2>/dev/null) ||
    skip "no guest kernel in ${GUEST_CACHE:-/var/cache/zoned-qcow2/guest}" \
         "(scripts/install-deps.sh downloads it)"

# Everything the guest tests use.  Host tools are found in $PATH; our
# tools come from this build.
tools="busybox fio blkzone mkfs.f2fs fsck.f2fs mkfs.btrfs mkfs.ext4 fsck.ext4
       sha256sum cpio depmod xz"
for t in $tools; do
    command -v "$t" >/dev/null ||
        skip "host tool $t is missing (scripts/install-deps.sh)"
done
qsd=
for p in "$build/qemu-storage-daemon" "$build/storage-daemon/qemu-storage-daemon"; do
    [ -x "$p" ] && qsd=$p && break
done
[ -n "$qsd" ] || skip "this build has no qemu-storage-daemon"
zdiff="$build/tests/vm/zone-diff"
for p in "$build/qemu-img" "$build/qemu-io" "$zdiff"; do
    [ -x "$p" ] || skip "$p is not built"
done
mods="ublk_drv null_blk f2fs btrfs ext4"

# The initramfs is named by a hash of its inputs, so a rebuilt daemon or
# a changed tool gives a new one; a lock keeps parallel tests from
# building it twice.
vmdir="$build/tests/vm"
mkdir -p "$vmdir"
key=$( {
    cat "$kdir/version" "$guest/build-initramfs.sh" "$guest/init"
    echo "$mods"
    for p in "$qsd" "$build/qemu-img" "$build/qemu-io" "$zdiff"; do
        sha256sum < "$p"
    done
    for t in $tools; do
        ls -lL "$(command -v "$t")"
    done
} | sha256sum | cut -c1-16)
cpio="$vmdir/initramfs-$key.cpio"
exec 9>"$vmdir/initramfs.lock"
flock 9
if [ ! -f "$cpio" ]; then
    echo "vm-test: building $cpio"
    rm -f "$vmdir"/initramfs-*.cpio
    margs=
    for m in $mods; do margs="$margs -m $m"; done
    bargs=
    for t in fio blkzone mkfs.f2fs fsck.f2fs mkfs.btrfs mkfs.ext4 fsck.ext4; do
        bargs="$bargs -b $(command -v "$t")"
    done
    # Our tools go to /usr/local/bin; the ldd closure of each is copied.
    # build-initramfs.sh installs binaries under their host path, so stage
    # them in a directory named like the guest's.
    stage=$(mktemp -d "${TMPDIR:-/tmp}/vm-stage.XXXXXX")
    mkdir -p "$stage/usr/local/bin"
    fargs=
    for p in "$qsd" "$build/qemu-img" "$build/qemu-io" "$zdiff"; do
        b=$(basename "$p")
        ldd "$p" 2>/dev/null |
            sed -n 's/.*=>[ \t]*\(\/[^ \t]*\).*/\1/p; s/^[ \t]*\(\/[^ \t]*\).*/\1/p' \
            >> "$stage/libs"
        fargs="$fargs -f $p:/usr/local/bin/$b"
    done
    for l in $(sort -u "$stage/libs"); do
        fargs="$fargs -f $l:$l"
    done
    # shellcheck disable=SC2086
    if ! "$guest/build-initramfs.sh" -o "$cpio" $margs $bargs $fargs \
            > "$vmdir/initramfs.log" 2>&1; then
        rm -rf "$stage"
        cat "$vmdir/initramfs.log" >&2
        echo "vm-test: building the initramfs failed" >&2
        exit 1
    fi
    rm -rf "$stage"
fi
flock -u 9

log="$vmdir/$name.console"
out="$vmdir/$name.out"
start=$(date +%s)
set +e
"$guest/run.sh" -i "$cpio" -s "$smp" -M "$mem" -t "$timeout" -l "$log" \
    -o "$out" -f "$here/guest/lib.sh:/test/lib.sh" "$script"
rc=$?
set -e
cat "$out"
echo "vm-test: $name: exit $rc after $(( $(date +%s) - start )) s"
case $rc in
0)
    [ -n "$VM_KEEP" ] || rm -f "$log"
    exit 0 ;;
77)
    exit 77 ;;
esac
if ! grep -q 'GUEST-READY' "$log" 2>/dev/null; then
    tail -n 30 "$log" 2>/dev/null
    skip "the guest did not boot (console: $log)"
fi
echo "--- last lines of the console ($log) ---"
tail -n 60 "$log"
[ "$rc" != 124 ] || echo "vm-test: $name timed out after ${timeout}s"
exit 1
