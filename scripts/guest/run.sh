#!/bin/sh
# Boot the test guest (QEMU, TCG) with an initramfs from
# build-initramfs.sh, run SCRIPT in it and power off.  The script's
# stdout is written to OUT (second serial port); the console (kernel
# messages, the script's stderr) to LOG.  Exits with the script's exit
# code, 124 on timeout, 125 if the guest died without reporting one.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/guest/run.sh -i INITRAMFS [-o OUT] [-l LOG] [-t SECONDS]
#            [-m MODULE,...] [-f SRC:DST]... [-a APPEND] [-M MEM] [-s CPUS]
#            SCRIPT
#   -i  base initramfs          -o  script output (default: stdout)
#   -l  console log (default: discarded unless the run fails, then stderr)
#   -t  timeout in seconds (default 120)
#   -m  modules for /init to load before the script
#   -f  extra file for the guest, installed as DST (with SCRIPT, in a
#       second cpio archive appended to the initramfs)
#   -a  extra kernel command line     -M  guest memory (default 1G)
#   -s  virtual CPUs (default 1; TCG runs one vCPU faster on this host,
#       use 2 only for tests of several queues)
set -e
here=$(cd "$(dirname "$0")" && pwd)
initrd=
out=
log=
timeout=120
mods=
files=
append=
mem=1G
smp=1
while getopts i:o:l:t:m:f:a:M:s: opt; do
    case $opt in
    i) initrd=$OPTARG ;;
    o) out=$OPTARG ;;
    l) log=$OPTARG ;;
    t) timeout=$OPTARG ;;
    m) mods=$OPTARG ;;
    f) files="$files $OPTARG" ;;
    a) append="$append $OPTARG" ;;
    M) mem=$OPTARG ;;
    s) smp=$OPTARG ;;
    *) sed -n '/^# Usage/,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
       exit 1 ;;
    esac
done
shift $((OPTIND - 1))
script=$1
[ -n "$initrd" ] && [ -n "$script" ] || {
    echo "run.sh: -i INITRAMFS and SCRIPT are required" >&2; exit 1; }
kdir=$("$here/kernel.sh")

work=$(mktemp -d "${TMPDIR:-/tmp}/guest-run.XXXXXX")
qpid=
cleanup() {
    [ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The kernel unpacks concatenated cpio archives in order, so the per-run
# files go in a small second archive and the base one is reused as is.
mkdir -p "$work/root/test"
cp "$script" "$work/root/test/run"
for f in $files; do
    src=${f%%:*}
    dst=${f#*:}
    mkdir -p "$work/root$(dirname "$dst")"
    cp -L "$src" "$work/root$dst"
done
(cd "$work/root" && find . | cpio -o -H newc --quiet) > "$work/extra.cpio"
cat "$initrd" "$work/extra.cpio" > "$work/initrd.cpio"
: > "$work/out"

qemu-system-x86_64 -nodefaults -nographic -no-reboot -machine q35 \
    -m "$mem" -smp "$smp" -accel tcg,thread=multi -cpu max -monitor none \
    -serial "file:$work/console" -serial "file:$work/out" \
    -kernel "$kdir/vmlinux" -initrd "$work/initrd.cpio" \
    -append "console=ttyS0 panic=-1 loglevel=4 mods=$mods test=/test/run$append" \
    </dev/null >"$work/qemu.log" 2>&1 &
qpid=$!

rc=
i=0
while kill -0 "$qpid" 2>/dev/null; do
    if [ $i -ge $((timeout * 10)) ]; then
        kill "$qpid" 2>/dev/null || true
        rc=124
        break
    fi
    sleep 0.1
    i=$((i + 1))
done
wait "$qpid" 2>/dev/null || true
qpid=

if [ -z "$rc" ]; then
    rc=$(sed -n 's/^GUEST-EXIT \([0-9]*\).*/\1/p' "$work/console" | tail -n 1)
    [ -n "$rc" ] || rc=125
fi
cat "$work/qemu.log" >> "$work/console"
if [ -n "$log" ]; then
    cp "$work/console" "$log"
elif [ "$rc" != 0 ]; then
    cat "$work/console" >&2
fi
if [ -n "$out" ]; then
    cp "$work/out" "$out"
else
    cat "$work/out"
fi
[ "$rc" != 124 ] || echo "run.sh: guest timed out after ${timeout}s" >&2
[ "$rc" != 125 ] || echo "run.sh: guest ended without an exit code" >&2
exit "$rc"
