# File systems on the ublk export of zoned images: f2fs (-m, conventional
# zones for its metadata) and btrfs (-O zoned): mount, write files,
# unmount, restart the daemon, mount again, verify every file.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
. /test/lib.sh
need qemu-img qemu-storage-daemon mkfs.f2fs fsck.f2fs mkfs.btrfs sha256sum

mkdir -p /mnt /tmp/src
# Files of various sizes, some larger than a zone.
i=0
for kb in 1 4 13 64 100 512 1024 3000 5000 9000; do
    dd if=/dev/urandom of=/tmp/src/f$i bs=1k count=$kb 2>/dev/null
    i=$((i + 1))
done
(cd /tmp/src && sha256sum f*) > /tmp/sums

# cycle FSTYPE IMG MKFS...: the whole cycle on one image.
cycle() {
    fs=$1 img=$2
    shift 2
    qsd_start "$img" qcow2 logical-block-size=4096
    say "$fs: $*"
    run "$@" "$DEV"
    load_module "$fs"
    mount -t "$fs" "$DEV" /mnt || fail "$fs: mount"
    mkdir /mnt/d
    cp /tmp/src/f* /mnt/d/ || fail "$fs: copy files"
    # A second generation: rewrite some files, so the fs writes in new zones.
    cp /tmp/src/f9 /mnt/d/f9.copy && cp /tmp/src/f8 /mnt/d/f9.copy ||
        fail "$fs: rewrite"
    umount /mnt || fail "$fs: umount"
    qsd_stop TERM
    check_clean "$img"
    qsd_start "$img" qcow2 logical-block-size=4096
    mount -t "$fs" "$DEV" /mnt || fail "$fs: mount after the restart"
    (cd /mnt/d && sha256sum -c /tmp/sums > /tmp/ck) || { cat /tmp/ck; false; } || fail "$fs: files changed across the restart"
    cmp /mnt/d/f9.copy /tmp/src/f8 || fail "$fs: rewritten file changed"
    umount /mnt || fail "$fs: umount"
    if [ "$fs" = f2fs ]; then
        run fsck.f2fs "$DEV"
    fi
    qsd_stop TERM
    check_clean "$img"
    rm -f "$img"
}

# f2fs keeps its metadata in conventional zones: 16 of 4 MiB.
mkzoned /tmp/f2fs.qcow2 512M zone.size=4M,zone.conventional_zones=16
cycle f2fs /tmp/f2fs.qcow2 mkfs.f2fs -f -m
mkzoned /tmp/btrfs.qcow2 512M zone.size=8M
cycle btrfs /tmp/btrfs.qcow2 mkfs.btrfs -f -O zoned -d single -m single
say "ok"
