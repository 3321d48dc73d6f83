# fio --zonemode=zbd with crc32c verification on the ublk export of a
# zoned image with conventional zones, a capacity below the zone size and
# open/active limits that fio must respect: sequential and random writes,
# libaio and io_uring, depth 1 and 32, 4 jobs, 2 queues in a 2-vCPU guest.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
. /test/lib.sh
need qemu-img qemu-storage-daemon fio
[ "$(nproc)" -ge 2 ] || skip "the guest has $(nproc) vCPU, this test needs 2"

# 32 zones of 4 MiB, capacity 3 MiB, 4 conventional; at most 6 open and
# 6 active.  Each fio job gets 8 zones of its own (offset_increment).
IMG=/tmp/fio.qcow2
mkzoned $IMG 128M zone.size=4M,zone.capacity=3M,zone.conventional_zones=4,zone.max_open_zones=6,zone.max_active_zones=6
qsd_start $IMG qcow2 num-queues=2,queue-depth=64,logical-block-size=4096
nq=$(ls -d "$SYS"/mq/* | wc -l)
expect_eq "$nq" 2 "hardware queues of $DEV"

for rw in write randwrite; do
    for eng in libaio io_uring; do
        for qd in 1 32; do
            say "fio $rw $eng iodepth $qd"
            # Every zone fio will use starts empty.
            blkzone reset "$DEV" || fail "reset all"
            fio --name=zbd --filename="$DEV" --direct=1 --zonemode=zbd \
                --max_open_zones=6 --rw=$rw --ioengine=$eng --iodepth=$qd \
                --bs=4k --bsrange=4k-64k --numjobs=4 --size=32M \
                --offset_increment=32M --io_size=6M \
                --verify=crc32c --do_verify=1 --verify_fatal=1 \
                --group_reporting --output=/tmp/fio.out ||
                { cat /tmp/fio.out; fail "fio $rw $eng iodepth $qd"; }
            grep -E "^ *(write|read):" /tmp/fio.out
            grep -q "err= 0" /tmp/fio.out || { cat /tmp/fio.out; fail "fio reported errors"; }
            # fio must have stayed within the limits the device enforces.
            # fio must have stayed within the limit the device enforces;
            # random writes over 32 zones leave it reached.
            open=$(conds "$DEV" | tr ' ' '\n' | grep -c '^[23]$')
            [ "$open" -le 6 ] || fail "$open zones open, limit 6"
            [ $rw = write ] || [ "$open" = 6 ] ||
                fail "random writes left $open zones open, not the limit 6"
        done
    done
done
qsd_stop TERM
check_clean $IMG
say "ok"
