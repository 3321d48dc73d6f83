# The differential test against null_blk (issue 11, deliverable 6): for
# each seed, a null_blk zoned device and our image of the same geometry
# exported by ublk get the same random sequence of zone operations and
# direct writes (tests/vm/zone-diff.c); every step's result and the full
# zone report after it must agree.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
. /test/lib.sh
need qemu-img qemu-storage-daemon zone-diff
STEPS=${STEPS:-5000}

# diff_seed SEED SIZE_MB ZONE_MB CAP_MB CONV MAX_OPEN MAX_ACTIVE
diff_seed() {
    seed=$1
    say "seed $seed: ${2}M, zones ${3}M capacity ${4}M, $5 conventional, limits open $6 active $7"
    nullb_create nullb0 "$2" "$3" "$4" "$5" "$6" "$7"
    # The image takes null_blk's effective limits (it clamps them).
    mo=$(cat /sys/block/nullb0/queue/max_open_zones)
    ma=$(cat /sys/block/nullb0/queue/max_active_zones)
    [ "$mo" = "$6" ] && [ "$ma" = "$7" ] ||
        say "null_blk limits are open $mo active $ma"
    img=/tmp/diff$seed.qcow2
    mkzoned $img "${2}M" "zone.size=${3}M,zone.capacity=${4}M,zone.conventional_zones=$5,zone.max_open_zones=$mo,zone.max_active_zones=$ma"
    qsd_start $img qcow2 logical-block-size=4096
    zone-diff -l -s "$seed" -n "$STEPS" "$NULLB" "$DEV" ||
        fail "zone-diff found a difference (seed $seed)"
    qsd_stop TERM
    check_clean $img
    rm -f $img
    echo 0 > /sys/kernel/config/nullb/nullb0/power
    rmdir /sys/kernel/config/nullb/nullb0
}

# Conventional zones, capacity below the zone size, both limits.
diff_seed 1 80 4 3 2 4 6
# Capacity = zone size, 2 MiB zones (no short last zone: the ublk driver
# exports whole zones only),
# an open limit only.
diff_seed 2 42 2 2 1 3 0
# No conventional zones, both limits.
diff_seed 3 64 4 4 0 3 5
say "ok"
