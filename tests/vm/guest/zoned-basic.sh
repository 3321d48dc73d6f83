# The ublk export of a zoned image as the kernel sees it: the queue's
# sysfs attributes, blkzone report against qemu-io's report of the same
# image, blkzone open/close/finish/reset as docs/zoned.rst says, limits,
# and persistence across a daemon restart (open zones come back CLOSED,
# everything else identical, data intact, qemu-img check clean).
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
. /test/lib.sh
need qemu-img qemu-io qemu-storage-daemon blkzone sha256sum

attr() { cat "$SYS/queue/$1"; }

# 16 zones of 4 MiB, capacity 3 MiB, 3 conventional, the last zone short
# (2 MiB), at most 3 open and 5 active.  The kernel's ublk driver counts
# whole zones only (dev_sectors >> log2(chunk_sectors)), so the export
# leaves the short last zone out: 15 zones, 60 MiB.
IMG=/tmp/z.qcow2
mkzoned $IMG 62M zone.size=4M,zone.capacity=3M,zone.conventional_zones=3,zone.max_open_zones=3,zone.max_active_zones=5,zone.max_append_bytes=64K
qsd_start $IMG qcow2 logical-block-size=4096
say "sysfs of $DEV"
expect_eq "$(attr zoned)" host-managed "queue/zoned"
expect_eq "$(attr chunk_sectors)" 8192 "queue/chunk_sectors"
expect_eq "$(attr nr_zones)" 15 "queue/nr_zones"
expect_eq "$(attr max_open_zones)" 3 "queue/max_open_zones"
expect_eq "$(attr max_active_zones)" 5 "queue/max_active_zones"
expect_eq "$(attr zone_append_max_bytes)" 65536 "queue/zone_append_max_bytes"
expect_eq "$(attr logical_block_size)" 4096 "queue/logical_block_size"
expect_eq "$(cat "$SYS/size")" $((60 * 2048)) "size in sectors"
expect_eq "$(cat "$SYS/ro")" 0 "ro"

Z=8192       # zone size in sectors
zoff() { echo $(($1 * Z)); }
bz() {  # bz OP ZONE [COUNT]: blkzone OP on zones; prints OK or FAIL
    if blkzone "$1" -o "$(zoff "$2")" -c "${3:-1}" "$DEV" 2>/dev/null; then
        echo OK
    else
        echo FAIL
    fi
}
expect_conds() {
    expect_eq "$(conds "$DEV")" "$1" "conditions after $2"
}
# wr ZONE OFFSET_KIB LEN_KIB: direct write of random data.  After a failed
# write the kernel fails further writes to the zone until it is reported
# (guest-testing.md), so a failure is followed by a report of the zone.
wr() {
    dd if=/dev/urandom of="$DEV" bs=4k seek=$(( ($1 * 4096 + $2) / 4 )) \
        count=$(($3 / 4)) oflag=direct conv=notrunc 2>/dev/null && return 0
    blkzone report -o "$(zoff "$1")" -c 1 "$DEV" >/dev/null
    return 1
}

say "zone operations (docs/zoned.rst)"
E="0 0 0 1 1 1 1 1 1 1 1 1 1 1 1"
expect_conds "$E" "create"
wr 3 0 8 || fail "write at the wp of zone 3"
expect_conds "0 0 0 2 1 1 1 1 1 1 1 1 1 1 1" "a write (IMP_OPEN)"
wr 3 0 4 && fail "a write below the wp of zone 3 succeeded"
blkzone report -o $(zoff 3) -c 1 "$DEV" | grep -q "wptr 0x000010 " ||
    fail "wp of zone 3 is not +16 sectors: $(blkzone report -o $(zoff 3) -c 1 "$DEV")"
expect_eq "$(bz close 3)" OK "close IMP_OPEN"
expect_conds "0 0 0 4 1 1 1 1 1 1 1 1 1 1 1" "close (CLOSED)"
expect_eq "$(bz close 3)" OK "close CLOSED (no-op)"
expect_eq "$(bz close 4)" FAIL "close EMPTY"
expect_eq "$(bz open 4)" OK "open EMPTY"
expect_conds "0 0 0 4 3 1 1 1 1 1 1 1 1 1 1" "open (EXP_OPEN)"
expect_eq "$(bz open 4)" OK "open EXP_OPEN (no-op)"
expect_eq "$(bz close 4)" OK "close EXP_OPEN at the zone start"
expect_conds "0 0 0 4 1 1 1 1 1 1 1 1 1 1 1" "close of an empty EXP_OPEN zone (EMPTY)"
expect_eq "$(bz open 3)" OK "open CLOSED"
expect_conds "0 0 0 3 1 1 1 1 1 1 1 1 1 1 1" "open of a CLOSED zone"
expect_eq "$(bz finish 5)" OK "finish EMPTY"
expect_conds "0 0 0 3 1 14 1 1 1 1 1 1 1 1 1" "finish (FULL)"
blkzone report -o $(zoff 5) -c 1 "$DEV" | grep -q "wptr 0x002000 " ||
    fail "finish did not move the wp to start + zone length"
expect_eq "$(bz open 5)" FAIL "open FULL"
expect_eq "$(bz close 5)" FAIL "close FULL"
expect_eq "$(bz finish 5)" OK "finish FULL (no-op)"
wr 5 0 4 && fail "a write to a FULL zone succeeded"
expect_eq "$(bz reset 5)" OK "reset FULL"
expect_eq "$(bz reset 0)" FAIL "reset of a conventional zone"
expect_eq "$(bz open 1)" FAIL "open of a conventional zone"
expect_eq "$(bz finish 3)" OK "finish EXP_OPEN"
expect_conds "0 0 0 14 1 1 1 1 1 1 1 1 1 1 1" "finish of an EXP_OPEN zone"
wr 3 3072 4 && fail "a write past the capacity succeeded"
expect_eq "$(bz reset 3)" OK "reset FULL"
expect_conds "$E" "reset"

say "limits: 3 open, 5 active"
expect_eq "$(bz open 6 3)" OK "open 3 zones"
expect_eq "$(bz open 9)" FAIL "a 4th explicit open"
wr 9 0 4 && fail "a write opening a 4th zone with 3 explicitly open succeeded"
expect_eq "$(bz close 6)" OK "close an empty EXP_OPEN zone"
wr 9 0 4 || fail "write with an open slot free"
# The open limit reached: the next implicit open closes zone 9.
wr 10 0 4 || fail "write zone 10 (implicit close of zone 9)"
expect_eq "$(bz close 8)" OK "close an empty EXP_OPEN zone 8"
wr 11 0 4 || fail "write zone 11"
expect_conds "0 0 0 1 1 1 1 3 1 4 2 2 1 1 1" "implicit opens and close"
# Round robin: the scan starts after zone 9, so zone 10 is closed.
wr 12 0 4 || fail "write zone 12"
expect_conds "0 0 0 1 1 1 1 3 1 4 4 2 2 1 1" "implicit close of zone 10"
wr 13 0 4 && fail "a 6th active zone was accepted"
expect_eq "$(bz open 13)" FAIL "explicit open of a 6th active zone"
# An implicit close needs a free active slot too (null_blk's rule).
wr 9 4 4 && fail "a write to a CLOSED zone with the active limit reached succeeded"
expect_eq "$(bz finish 7)" OK "finish zone 7"
wr 9 4 4 || fail "write to CLOSED zone 9 with an open slot free"
wr 10 4 4 || fail "write to CLOSED zone 10 (implicit close of zone 11)"
expect_conds "0 0 0 1 1 1 1 14 1 2 2 4 2 1 1" "implicit close of zone 11"
wr 13 0 4 || fail "write zone 13 (implicit close of zone 12)"
expect_eq "$(bz reset 10 2)" OK "reset zones 10 and 11"
wr 14 0 3072 || fail "fill zone 14"
expect_conds "0 0 0 1 1 1 1 14 1 2 1 1 4 2 14" "fill of zone 14 to its capacity"

say "persistence across a daemon restart"
# Known data in a conventional zone and a sequential one.
dd if=/dev/urandom of=/tmp/data bs=64k count=16 2>/dev/null
dd if=/tmp/data of="$DEV" bs=64k seek=$((4 * 16)) oflag=direct conv=notrunc 2>/dev/null ||
    fail "write conventional zone 1"
dd if=/tmp/data of="$DEV" bs=64k seek=$((11 * 64)) oflag=direct conv=notrunc 2>/dev/null ||
    fail "write zone 11 at its wp"
blkzone report "$DEV" | norm_blkzone > /tmp/before
grep -q ' [23] 2$' /tmp/before || fail "no open zone before the restart"
qsd_stop TERM
check_clean $IMG
zrp_all $IMG > /tmp/zrp.all
# The short last zone is not exported; the image still has it, empty.
expect_eq "$(sed -n 16p /tmp/zrp.all)" "$((15 * Z)) 4096 4096 $((15 * Z)) 1 2" "the image's short last zone"
head -n 15 /tmp/zrp.all > /tmp/zrp
# Open zones come back CLOSED (EMPTY when nothing was written in them).
while read -r s l c w z t; do
    case $z in
    2|3) if [ "$w" = "$s" ]; then z=1; else z=4; fi ;;
    esac
    echo "$s $l $c $w $z $t"
done < /tmp/before > /tmp/expected
diff /tmp/expected /tmp/zrp || fail "qemu-io zrp after the daemon stopped differs from blkzone report"
qsd_start $IMG qcow2 logical-block-size=4096
blkzone report "$DEV" | norm_blkzone > /tmp/after
diff /tmp/zrp /tmp/after || fail "blkzone report after the restart differs from qemu-io zrp"
for at in $((4 * 16)) $((11 * 64)); do
    dd if="$DEV" of=/tmp/back bs=64k skip=$at count=16 iflag=direct 2>/dev/null
    cmp /tmp/data /tmp/back || fail "data at $((at * 64)) KiB changed across the restart"
done
# Exact equality with nothing open: stop again and compare.
qsd_stop TERM
zrp_all $IMG | head -n 15 > /tmp/zrp2
diff /tmp/after /tmp/zrp2 || fail "blkzone report and qemu-io zrp differ"
check_clean $IMG

say "a second geometry: no limits, 512-byte blocks, 2 MiB zones"
IMG2=/tmp/z2.qcow2
mkzoned $IMG2 32M zone.size=2M
qsd_start $IMG2 qcow2 logical-block-size=512
expect_eq "$(attr zoned)" host-managed "queue/zoned"
expect_eq "$(attr chunk_sectors)" 4096 "queue/chunk_sectors"
expect_eq "$(attr nr_zones)" 16 "queue/nr_zones"
expect_eq "$(attr max_open_zones)" 0 "queue/max_open_zones"
expect_eq "$(attr max_active_zones)" 0 "queue/max_active_zones"
expect_eq "$(attr logical_block_size)" 512 "queue/logical_block_size"
blkzone report "$DEV" | norm_blkzone > /tmp/r2
qsd_stop TERM
zrp_all $IMG2 | diff /tmp/r2 - || fail "report of the second image differs"
say "ok"
