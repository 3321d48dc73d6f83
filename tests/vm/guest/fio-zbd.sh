# fio --zonemode=zbd with crc32c verification on the ublk export of a
# zoned image with conventional zones, a capacity below the zone size and
# open/active limits that fio must respect: sequential and random writes,
# libaio and io_uring, depth 1 and 32, 4 jobs, 2 queues in a 2-vCPU guest.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
. /test/lib.sh
need qemu-img qemu-storage-daemon fio zone-diff
[ "$(nproc)" -ge 2 ] || skip "the guest has $(nproc) vCPU, this test needs 2"

# 32 zones of 4 MiB, capacity 3 MiB, 4 conventional; at most 4 open and
# 4 active (fio never closes a zone, so its active zones are its open
# ones).  Each fio job has zones of its own (offset_increment): for random
# writes 8 from the start, conventional ones included; for sequential
# writes 7 past the conventional zones, so that the 4 jobs keep 4
# sequential zones open at once.
IMG=/tmp/fio.qcow2
LIM=4
mkzoned $IMG 128M zone.size=4M,zone.capacity=3M,zone.conventional_zones=4,zone.max_open_zones=$LIM,zone.max_active_zones=$LIM
qsd_start $IMG qcow2 num-queues=2,queue-depth=64,logical-block-size=4096
nq=$(ls -d "$SYS"/mq/* | wc -l)
expect_eq "$nq" 2 "hardware queues of $DEV"

for rw in write randwrite; do
    for eng in libaio io_uring; do
        for qd in 1 32; do
            say "fio $rw $eng iodepth $qd"
            # Every zone fio will use starts empty.
            blkzone reset "$DEV" || fail "reset all"
            if [ $rw = write ]; then
                area="--offset=16M --offset_increment=28M --size=28M"
            else
                area="--offset_increment=32M --size=32M"
            fi
            # Watch the zones while fio runs: the most open at once must
            # be the limit (fio reached it) and never more.
            rm -f /tmp/open.stop
            zone-diff -m /tmp/open.stop "$DEV" > /tmp/open.max &
            sampler=$!
            fio --eta=never --name=zbd --filename="$DEV" --direct=1 --zonemode=zbd \
                --max_open_zones=$LIM --rw=$rw --ioengine=$eng --iodepth=$qd \
                --bs=4k --bsrange=4k-64k --numjobs=4 $area --io_size=6M \
                --verify=crc32c --do_verify=1 --verify_fatal=1 \
                --group_reporting --output=/tmp/fio.out ||
                { touch /tmp/open.stop; cat /tmp/fio.out; fail "fio $rw $eng iodepth $qd"; }
            grep -E "^ *(write|read):" /tmp/fio.out
            grep -q "err= 0" /tmp/fio.out || { cat /tmp/fio.out; fail "fio reported errors"; }
            # fio must have stayed within the limits the device enforces.
            touch /tmp/open.stop
            wait $sampler
            rm -f /tmp/open.stop
            read -r max maxact < /tmp/open.max || fail "zone monitor"
            say "at most $max zones open, $maxact active"
            [ "$maxact" -le $LIM ] || fail "$maxact zones active, limit $LIM"
            [ "$max" -le $LIM ] || fail "$max zones open, limit $LIM"
            [ "$max" = $LIM ] ||
                fail "fio never reached the open limit $LIM (at most $max)"
        done
    done
done
qsd_stop TERM
check_clean $IMG
say "ok"
