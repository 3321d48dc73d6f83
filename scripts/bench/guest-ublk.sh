#!/bin/sh
# Guest benchmark of the ublk export: fio in one Linux 6.12 guest (TCG) on
#   (a) null_blk, memory backed, zoned (the kernel's own reference),
#   (b) our ublk device over a raw image,
#   (c) our ublk device over a zoned qcow2 image,
# and the ratios b/a and c/b of the same boot.  Images live in the
# guest's tmpfs, so (b) and (c) measure the export and the format, not a
# disk.  Guests run under TCG: absolute numbers mean little, ratios do.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/bench/guest-ublk.sh [BUILD_DIR] [-r SECONDS] [-s MIB]
#   BUILD_DIR  where qemu-storage-daemon and qemu-img are (default build)
#   -r         run time of each fio job (default 8)
#   -s         device size in MiB (default 256; zones of 16 MiB)
#   -n         rounds (default 3): the ratios are medians over them
#   -a         file.aio of the images: io_uring (default), threads, native
#   -c         guest vCPUs (default 1; with 2, fio and the daemon run on
#              their own vCPU, as they would on a real machine)
#   -w         workloads, comma separated (default: all three)
#
# Workloads (fio 3.33, io_uring, O_DIRECT):
#   randread-4k-d32   4k random reads at depth 32 (after the fill), with
#                     the same fio options on all three devices: no
#                     zonemode=zbd, whose per-I/O zone locking in fio
#                     would be counted against (a) and (c) only (the
#                     devices are full, so every read is valid anyway)
#   write-64k-d32     64k sequential writes at depth 32, zonemode=zbd on
#                     the zoned devices (a plain sequential write on (b))
#   write-1m-d4       1M sequential writes at depth 4 (zbd as above)
#   Zone append: fio 3.33 has no way to issue zone appends to a block
#   device (its io_uring engine sends plain writes; append needs the
#   NVMe passthrough path of newer fio), so there is no append workload.
#
# Each device is first filled with 1M sequential writes so that reads
# hit written data everywhere; writes run on reset zones.
set -e
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=build
runtime=8
size=256
aio=io_uring
rounds=3
cpus=1
workloads=randread-4k-d32,write-64k-d32,write-1m-d4
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    build=$1
    shift
fi
while getopts a:c:n:r:s:w: opt; do
    case $opt in
    n) rounds=$OPTARG ;;
    a) aio=$OPTARG ;;
    c) cpus=$OPTARG ;;
    w) workloads=$OPTARG ;;
    r) runtime=$OPTARG ;;
    s) size=$OPTARG ;;
    *) sed -n '/^# Usage/,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
       exit 1 ;;
    esac
done
for w in $(echo "$workloads" | tr , ' '); do
    case $w in
    randread-4k-d32|write-64k-d32|write-1m-d4) ;;
    *) echo "guest-ublk.sh: unknown workload '$w'" >&2; exit 1 ;;
    esac
done
case $build in /*) ;; *) build=$top/$build ;; esac
for b in qemu-storage-daemon qemu-img; do
    [ -x "$build/$b" ] || { echo "guest-ublk.sh: no $build/$b" >&2; exit 1; }
done
command -v fio >/dev/null || { echo "guest-ublk.sh: fio missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/guest-ublk.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$top/scripts/guest/build-initramfs.sh" -o "$work/base.cpio" \
    -m ublk_drv -m null_blk -b "$build/qemu-storage-daemon" \
    -b "$build/qemu-img" -b fio -b blkzone >/dev/null

cat > "$work/bench.sh" <<EOF
#!/bin/sh
set -e
RUNTIME=$runtime
SIZE=$size
AIO=$aio
ROUNDS=$rounds
# Linux AIO is only asynchronous with O_DIRECT (tmpfs accepts it).
DIRECT=$([ "$aio" = native ] && echo ,cache.direct=on)
WORKLOADS="$(echo "$workloads" | tr , ' ')"
EOF
cat >> "$work/bench.sh" <<'EOF'
exec 2>&1
B=/opt/qb
ZONE=16
modprobe ublk_drv
cd /tmp

# One fio job; prints "RESULT round dev workload KiB/s IOPS".
job() {
    round=$1 dev=$2 path=$3 zbd=$4 name=$5
    shift 5
    fio --name="$name" --filename="$path" --direct=1 \
        --ioengine=io_uring --time_based --runtime="$RUNTIME" \
        --ramp_time=1 --zonemode="$zbd" --output-format=terse \
        --terse-version=3 "$@" > /tmp/fio.out 2>/tmp/fio.err || {
        cat /tmp/fio.err
        echo "RESULT $round $dev $name FAILED"
        return 0
    }
    # terse v3: fields 7/8 read KiB/s and IOPS, 48/49 write.
    awk -F';' -v r="$round" -v d="$dev" -v n="$name" \
        '{ printf "RESULT %s %s %s %d %d\n", r, d, n, $7 + $48, $8 + $49 }' \
        /tmp/fio.out
}

# (a) null_blk: memory backed, zoned, 4k blocks, zones as the image's;
# made through configfs (the module's gb= takes whole GiB only).
modprobe null_blk nr_devices=0
mkdir -p /sys/kernel/config
mount -t configfs none /sys/kernel/config 2>/dev/null || true
n=/sys/kernel/config/nullb/nullb0
mkdir "$n"
echo "$SIZE" > "$n/size"; echo 1 > "$n/zoned"; echo "$ZONE" > "$n/zone_size"
echo 4096 > "$n/blocksize"; echo 1 > "$n/memory_backed"
echo 2 > "$n/queue_mode"; echo 128 > "$n/hw_queue_depth"
echo 0 > "$n/irqmode"; echo 1 > "$n/power"

# (b) ublk over a raw image, (c) ublk over a zoned qcow2 image with the
# same zones as null_blk; one daemon each.
$B/qemu-img create -q -f raw /tmp/r.img "${SIZE}M"
$B/qemu-storage-daemon --blockdev driver=raw,node-name=d0,file.driver=file,file.filename=/tmp/r.img,file.aio=$AIO$DIRECT \
    --export type=ublk,id=e0,node-name=d0,writable=on,logical-block-size=4096,dev-id=0 \
    --daemonize --pidfile /tmp/qsd0.pid
$B/qemu-img create -q -f qcow2 \
    -o zone.mode=host-managed,zone.size=${ZONE}M /tmp/z.qcow2 "${SIZE}M"
$B/qemu-storage-daemon --blockdev driver=qcow2,node-name=d0,file.driver=file,file.filename=/tmp/z.qcow2,file.aio=$AIO$DIRECT \
    --export type=ublk,id=e0,node-name=d0,writable=on,dev-id=1 \
    --daemonize --pidfile /tmp/qsd1.pid

devs="null:/dev/nullb0:zbd raw:/dev/ublkb0:none zqcow2:/dev/ublkb1:zbd"

# Fill: every block written once, so reads find data everywhere.
for d in $devs; do
    IFS=: read -r name path zbd <<EOT
$d
EOT
    [ "$zbd" = none ] || blkzone reset "$path"
    fio --name=fill --filename="$path" --direct=1 --ioengine=io_uring \
        --zonemode="$zbd" --rw=write --bs=1M --iodepth=4 \
        --size="${SIZE}M" >/dev/null
done

# Rounds, each running every workload on (a), (b), (c) in turn, so
# that load changes on the host hit all three alike.
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for w in $WORKLOADS; do
        for d in $devs; do
            IFS=: read -r name path zbd <<EOT
$d
EOT
            case $w in
            randread-4k-d32)
                job "$r" "$name" "$path" none "$w" --rw=randread --bs=4k \
                    --iodepth=32 ;;
            write-64k-d32)
                [ "$zbd" = none ] || blkzone reset "$path"
                job "$r" "$name" "$path" "$zbd" "$w" --rw=write --bs=64k \
                    --iodepth=32 ;;
            write-1m-d4)
                [ "$zbd" = none ] || blkzone reset "$path"
                job "$r" "$name" "$path" "$zbd" "$w" --rw=write --bs=1M \
                    --iodepth=4 ;;
            esac
        done
    done
    r=$((r + 1))
done
kill "$(cat /tmp/qsd0.pid)" "$(cat /tmp/qsd1.pid)"
while [ -e /dev/ublkb0 ] || [ -e /dev/ublkb1 ]; do sleep 0.1; done
echo 0 > "$n/power"
rmdir "$n"
EOF

mem=$((size * 3 + 1024))
"$top/scripts/guest/run.sh" -i "$work/base.cpio" -M "${mem}M" -s "$cpus" -t 1200 \
    -f "$build/qemu-storage-daemon:/opt/qb/qemu-storage-daemon" \
    -f "$build/qemu-img:/opt/qb/qemu-img" \
    -o "$work/out" -l "$work/log" "$work/bench.sh" || {
    echo "guest-ublk.sh: the guest run failed; its output and console:" >&2
    cat "$work/out" >&2
    tail -40 "$work/log" >&2
    exit 1
}

echo "guest: $cpus vCPU(s), file.aio=$aio, $rounds round(s) of ${runtime} s"
grep '^RESULT' "$work/out" | awk -v wl="$workloads" '
    function median(list,    n, v, i, j, t) {
        n = split(list, v, " ")
        for (i = 1; i <= n; i++)
            for (j = i + 1; j <= n; j++)
                if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    { bw[$2 " " $3 " " $4] = $5; rounds[$2] = 1 }
    END {
        printf "%-16s %10s %10s %10s %7s %7s   (medians of %d rounds)\n", \
               "workload (KiB/s)", "null_blk", "ublk-raw", "ublk-zq2", \
               "b/a", "c/b", length(rounds)
        n = split(wl, order, ",")
        for (i = 1; i <= n; i++) {
            k = order[i]; la = lb = lc = rba = rcb = ""
            for (r in rounds) {
                a = bw[r " null " k]; b = bw[r " raw " k]; c = bw[r " zqcow2 " k]
                la = la " " a; lb = lb " " b; lc = lc " " c
                if (a > 0) rba = rba " " b / a
                if (b > 0) rcb = rcb " " c / b
            }
            printf "%-16s %10d %10d %10d %7.2f %7.2f\n", k, median(la), \
                   median(lb), median(lc), median(rba), median(rcb)
        }
    }'
echo "zone append: not measured (fio 3.33 cannot issue zone appends to a block device)"
