# SIGKILL of the daemon under fio load: the device goes away cleanly, the
# image then opens, qemu-img check finds no corruption, and the data
# acknowledged before the last completed flush reads back.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
. /test/lib.sh
need qemu-img qemu-io qemu-storage-daemon fio sha256sum

IMG=/tmp/kill.qcow2
mkzoned $IMG 256M zone.size=4M,zone.conventional_zones=2,zone.max_open_zones=8
qsd_start $IMG qcow2 logical-block-size=4096
dmesg -c > /dev/null

# Flushed data: 2 MiB in conventional zone 1 and 6 MiB from the start of
# sequential zone 4 (zone 4 full, zone 5 written to +2 MiB); conv=fsync
# flushes the device before dd returns.
dd if=/dev/urandom of=/tmp/a bs=1M count=2 2>/dev/null
dd if=/dev/urandom of=/tmp/b bs=1M count=6 2>/dev/null
dd if=/tmp/a of="$DEV" bs=1M seek=4 oflag=direct conv=notrunc,fsync 2>/dev/null ||
    fail "write conventional data"
dd if=/tmp/b of="$DEV" bs=1M seek=16 oflag=direct conv=notrunc,fsync 2>/dev/null ||
    fail "write sequential data"

# Load: writes in zones 8.. until the daemon dies.
fio --eta=never --name=load --filename="$DEV" --direct=1 --zonemode=zbd --rw=write \
    --ioengine=io_uring --iodepth=32 --bs=64k --offset=32M --numjobs=2 \
    --offset_increment=96M --size=96M --time_based --runtime=60 \
    --fsync=16 --output=/tmp/fio.out > /dev/null 2>&1 &
fio_pid=$!
sleep 4
[ -d /proc/$fio_pid ] || { cat /tmp/fio.out; fail "fio ended before the kill"; }
say "SIGKILL"
kill -KILL "$QSD_PID"
wait_gone "$QSD_PID" 20 || fail "the daemon survived SIGKILL"
wait_gone "$fio_pid" 60 || fail "fio hangs after the daemon died"
i=0
while [ -e "$DEV" ]; do
    [ $i -lt 300 ] || fail "$DEV still exists 30 s after the daemon died"
    sleep 0.1
    i=$((i + 1))
done
say "$DEV is gone"
if dmesg | grep -E -i 'BUG|WARNING|Oops|hung task|general protection'; then
    fail "kernel complaints after the daemon died"
fi

# The image opens; a crash may leak clusters (exit 3), nothing worse.
qemu-img check $IMG > /tmp/check 2>&1
rc=$?
grep -v "^Leaked cluster" /tmp/check
[ $rc = 0 ] || [ $rc = 3 ] || fail "qemu-img check exit $rc after SIGKILL"
grep -q -e ERROR -e corrupt /tmp/check && fail "qemu-img check reports corruption"
qemu-io -c 'zrp 0 8' $IMG | norm_zrp > /tmp/zones
sed -n 5p /tmp/zones > /tmp/z4
sed -n 6p /tmp/zones > /tmp/z5
read -r s l c w z t < /tmp/z4
expect_eq "$z" 14 "zone 4 (written full before the flush)"
read -r s l c w z t < /tmp/z5
expect_eq "$((w - s))" $((2 * 2048)) "zone 5's write pointer (sectors)"
run qemu-img convert -O raw $IMG /tmp/kill.raw
dd if=/tmp/kill.raw bs=1M skip=4 count=2 2>/dev/null | cmp - /tmp/a ||
    fail "flushed conventional data lost"
dd if=/tmp/kill.raw bs=1M skip=16 count=6 2>/dev/null | cmp - /tmp/b ||
    fail "flushed sequential data lost"
rm -f /tmp/kill.raw
# Leaks are repaired as a user would; the image is clean after that.
run qemu-img check -r leaks $IMG
check_clean $IMG
# The image can be exported again and written.
qsd_start $IMG qcow2 logical-block-size=4096
blkzone reset "$DEV" || fail "reset all after the crash"
qsd_stop TERM
check_clean $IMG
say "ok"
