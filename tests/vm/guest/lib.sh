# Helpers for the guest tests of the meson suite "vm" (sourced by each
# tests/vm/guest/*.sh, which run in the guest as /test/run).  Images live
# in the guest's tmpfs /tmp; our tools are in /usr/local/bin.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
T0=$(cut -d' ' -f1 /proc/uptime)

say() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
fail() {
    echo "FAIL: $*"
    [ -z "$QSD_LOG" ] || [ ! -s "$QSD_LOG" ] || {
        echo "--- daemon log ---"; cat "$QSD_LOG"; }
    exit 1
}
skip() { echo "SKIP: $*"; exit 77; }
need() {
    for t in "$@"; do
        command -v "$t" >/dev/null || skip "no $t in the guest"
    done
}
# Run a command; on failure show its output and fail.
run() {
    out=$("$@" 2>&1) || { echo "$out"; fail "command failed: $*"; }
    [ -z "$VERBOSE" ] || echo "$out"
}
expect_eq() {
    [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

load_module() {
    modprobe "$@" || skip "cannot load module $1"
}

# mkzoned IMG SIZE ZONE-OPTIONS: a zoned qcow2 image (docs/zoned.rst).
mkzoned() {
    run qemu-img create -f qcow2 -o "zone.mode=host-managed,$3" "$1" "$2"
}

# qsd_start IMG [FORMAT [EXPORT-OPTIONS]]: export IMG through ublk and set
# DEV (/dev/ublkbN), QSD_PID.  The daemon returns once the device is ready.
QSD_LOG=/tmp/qsd.log
qsd_start() {
    load_module ublk_drv
    before=$(ls /dev/ublkb* 2>/dev/null)
    rm -f /run/qsd.pid
    qemu-storage-daemon \
        --blockdev "driver=${2:-qcow2},node-name=disk0,file.driver=file,file.filename=$1" \
        --export "type=ublk,id=exp0,node-name=disk0,writable=on${3:+,$3}" \
        --pidfile /run/qsd.pid --daemonize >> "$QSD_LOG" 2>&1 ||
        fail "qemu-storage-daemon did not start for $1"
    QSD_PID=$(cat /run/qsd.pid) || fail "no pidfile"
    DEV=
    for d in $(ls /dev/ublkb* 2>/dev/null); do
        echo "$before" | grep -qx "$d" || DEV=$d
    done
    [ -n "$DEV" ] && [ -b "$DEV" ] || fail "no new /dev/ublkbN after the daemon started"
    SYS=/sys/block/${DEV#/dev/}
}

# Wait up to $2 seconds (default 60) for pid $1 to end.
wait_gone() {
    i=0
    while [ -d "/proc/$1" ]; do
        [ $i -lt $(( ${2:-60} * 10 )) ] || return 1
        sleep 0.1
        i=$((i + 1))
    done
}

# qsd_stop [SIGNAL]: stop the daemon (SIGTERM by default) and check that
# the device went away.
qsd_stop() {
    kill -"${1:-TERM}" "$QSD_PID" || fail "cannot signal the daemon"
    wait_gone "$QSD_PID" 60 || fail "the daemon did not exit after SIG${1:-TERM}"
    i=0
    while [ -e "$DEV" ]; do
        [ $i -lt 100 ] || fail "$DEV still exists after the daemon ended"
        sleep 0.1
        i=$((i + 1))
    done
    QSD_PID=
}

# nullb_create NAME SIZE_MB ZONE_MB CAP_MB CONV MAX_OPEN MAX_ACTIVE:
# a memory-backed zoned null_blk device with 4 KiB blocks, through
# configfs; sets NULLB (/dev/NAME).
nullb_create() {
    load_module null_blk nr_devices=0
    [ -d /sys/kernel/config/nullb ] ||
        mount -t configfs configfs /sys/kernel/config 2>/dev/null
    d=/sys/kernel/config/nullb/$1
    mkdir "$d" || fail "configfs: cannot create $d"
    echo 1 > "$d/memory_backed"
    echo 4096 > "$d/blocksize"
    echo "$2" > "$d/size"
    echo 1 > "$d/zoned"
    echo "$3" > "$d/zone_size"
    echo "$4" > "$d/zone_capacity"
    echo "$5" > "$d/zone_nr_conv"
    echo "$6" > "$d/zone_max_open"
    echo "$7" > "$d/zone_max_active"
    echo 1 > "$d/power" || fail "null_blk $1 refused its configuration"
    NULLB=/dev/$1
    [ -b "$NULLB" ] || fail "no $NULLB"
}

# Zone reports in one canonical form, one zone a line, 512-byte sectors:
# "start len cap wp cond type", wp absolute.  blkzone prints the write
# pointer relative to the zone start, and 0 for a conventional zone, which
# has none; qemu-io's zrp prints it absolute, start + length for a
# conventional zone.  A conventional zone's wp is therefore shown as "-".
norm_blkzone() {
    sed -n 's/.*start: \(0x[0-9a-f]*\), len \(0x[0-9a-f]*\), cap \(0x[0-9a-f]*\), wptr \(0x[0-9a-f]*\).*zcond: *\([0-9]*\).*type: *\([0-9]*\).*/\1 \2 \3 \4 \5 \6/p' |
        while read -r s l c w z t; do
            if [ "$t" = 1 ]; then w=-; else w=$((s + w)); fi
            echo "$((s)) $((l)) $((c)) $w $z $t"
        done
}
norm_zrp() {
    sed -n 's/.*start: \(0x[0-9a-f]*\), len \(0x[0-9a-f]*\), cap \(0x[0-9a-f]*\), wptr \(0x[0-9a-f]*\), zcond: *\([0-9]*\).*type: *\([0-9]*\).*/\1 \2 \3 \4 \5 \6/p' |
        while read -r s l c w z t; do
            if [ "$t" = 1 ]; then w=-; else w=$((w)); fi
            echo "$((s)) $((l)) $((c)) $w $z $t"
        done
}
# qemu-io's report of every zone of IMG (the daemon must be stopped).
zrp_all() {
    qemu-io -f qcow2 -r -c 'zrp 0 4294967295' "$1" | norm_zrp
}
# The conditions of every zone of the device, as "c0 c1 ...".
conds() {
    blkzone report "$1" | norm_blkzone | cut -d' ' -f5 | tr '\n' ' ' |
        sed 's/ $//'
}
# qemu-img check IMG must report no corruption and no leak.
check_clean() {
    out=$(qemu-img check "$1" 2>&1) || {
        echo "$out"; fail "qemu-img check $1 failed"; }
    echo "$out" | grep -q "No errors were found" || {
        echo "$out"; fail "qemu-img check $1 is not clean"; }
}
