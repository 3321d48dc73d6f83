# Non-zoned qcow2 and raw images through the ublk export: an ordinary
# disk with discard; mkfs.ext4, files, fio verify, fsck -n clean.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
. /test/lib.sh
need qemu-img qemu-storage-daemon mkfs.ext4 fsck.ext4 fio sha256sum

mkdir -p /mnt /tmp/src
for i in 0 1 2 3 4; do
    dd if=/dev/urandom of=/tmp/src/f$i bs=1k count=$((i * 700 + 3)) 2>/dev/null
done
(cd /tmp/src && sha256sum f*) > /tmp/sums
say "files ready"
load_module ext4
say "ext4 loaded"

for fmt in qcow2 raw; do
    img=/tmp/plain.$fmt
    run qemu-img create -f $fmt $img 256M
    qsd_start $img $fmt
    say "$fmt: $DEV"
    expect_eq "$(cat "$SYS/queue/zoned")" none "queue/zoned"
    expect_eq "$(cat "$SYS/size")" $((256 * 2048)) "size in sectors"
    [ "$(cat "$SYS/queue/discard_max_bytes")" -gt 0 ] || fail "no discard"
    fio --eta=never --name=v --filename="$DEV" --direct=1 --rw=randwrite --bs=4k \
        --bsrange=4k-128k --ioengine=libaio --iodepth=16 --size=64M \
        --verify=crc32c --verify_fatal=1 --output=/tmp/fio.out ||
        { cat /tmp/fio.out; fail "$fmt: fio verify"; }
    run mkfs.ext4 -q -F "$DEV"
    mount -t ext4 "$DEV" /mnt || fail "$fmt: mount"
    cp /tmp/src/f* /mnt/ || fail "$fmt: copy"
    rm /mnt/f0
    cp /tmp/src/f0 /mnt/f0
    fstrim /mnt 2>/dev/null || true
    umount /mnt || fail "$fmt: umount"
    fsck.ext4 -n -f "$DEV" > /tmp/fsck 2>&1 || { cat /tmp/fsck; fail "$fmt: fsck -n"; }
    qsd_stop TERM
    [ $fmt = raw ] || check_clean $img
    qsd_start $img $fmt
    mount -t ext4 "$DEV" /mnt || fail "$fmt: mount after restart"
    (cd /mnt && sha256sum -c /tmp/sums > /tmp/ck) || { cat /tmp/ck; false; } || fail "$fmt: files changed"
    umount /mnt
    fsck.ext4 -n -f "$DEV" > /tmp/fsck 2>&1 || { cat /tmp/fsck; fail "$fmt: fsck -n after restart"; }
    qsd_stop TERM
    [ $fmt = raw ] || check_clean $img
    rm -f $img
done
say "ok"
