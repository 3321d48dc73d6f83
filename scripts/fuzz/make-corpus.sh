#!/usr/bin/env bash
# Generate the seed corpora of the libFuzzer targets (tests/fuzz/):
# small qcow2 images (512-byte clusters) made with our qemu-img/qemu-io
# and, when installed, Debian's QEMU, covering v2/v3, refcount widths,
# extended L2, compressed clusters, internal snapshots, lazy refcounts
# left dirty, backing file references and zoned images of various
# geometries and zone conditions; plus qemu-io command scripts.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/fuzz/make-corpus.sh BUILD_DIR OUT_DIR
#   writes OUT_DIR/qcow2/* (images, shared by the image targets) and
#   OUT_DIR/qemu-io/* (command scripts).  Idempotent: an existing
#   OUT_DIR/.done is kept as is.
set -euo pipefail
build=$(cd "$1" && pwd)
out=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$out/.done" ] && exit 0
mkdir -p "$out/qcow2" "$out/qemu-io"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# Instrumented tools must not fail on their own leaks here.
export ASAN_OPTIONS=detect_leaks=0
n=0

# seed TOOLDIR NAME CREATE_OPTS SIZE [qemu-io commands...]
seed() {
    local img=$1 io=$2 name=$3 opts=$4 size=$5
    shift 5
    rm -f t.qcow2
    "$img" create -q -f qcow2 -o "$opts" t.qcow2 "$size" >/dev/null 2>&1 || return 0
    local c args=()
    for c in "$@"; do
        args+=(-c "$c")
    done
    if [ ${#args[@]} -gt 0 ]; then
        # Through a quiet shell: "abort" kills qemu-io and the shell
        # waiting for it reports that on its stderr.
        bash -c '"$@"; :' _ "$io" -f qcow2 "${args[@]}" t.qcow2 \
            >/dev/null 2>&1
    fi
    cp t.qcow2 "$out/qcow2/$name"
    n=$((n + 1))
}

snap() {
    "$1" snapshot -c "$2" t.qcow2 >/dev/null 2>&1 || true
}

gen() {
    local img=$1 io=$2 tag=$3 zoned=$4
    local cs=cluster_size=512
    seed "$img" "$io" "$tag-empty-v3" "$cs" 64k
    seed "$img" "$io" "$tag-empty-v2" "$cs,compat=0.10" 64k
    seed "$img" "$io" "$tag-data-v3" "$cs" 64k \
        "write -P 0x11 0 1k" "write -P 0x22 8k 512" "write -z 16k 1k"
    seed "$img" "$io" "$tag-data-v2" "$cs,compat=0.10" 64k \
        "write -P 0x11 0 1k" "write -z 4k 512" "discard 0 512"
    seed "$img" "$io" "$tag-compressed" "$cs" 64k \
        "write -c -P 0x33 0 512" "write -c -P 0x44 4k 512" \
        "write -P 0x55 1k 512"
    seed "$img" "$io" "$tag-compressed-v2" "$cs,compat=0.10" 64k \
        "write -c -P 0x33 0 512"
    seed "$img" "$io" "$tag-refbits1" "$cs,refcount_bits=1" 64k \
        "write -P 0x66 0 2k"
    seed "$img" "$io" "$tag-refbits8" "$cs,refcount_bits=8" 64k \
        "write -P 0x66 0 2k"
    seed "$img" "$io" "$tag-refbits64" "$cs,refcount_bits=64" 64k \
        "write -P 0x66 0 2k"
    seed "$img" "$io" "$tag-extl2" "cluster_size=16k,extended_l2=on" 256k \
        "write -P 0x77 0 1k" "write -z 8k 512"
    seed "$img" "$io" "$tag-lazy" "$cs,lazy_refcounts=on" 64k \
        "write -P 0x88 0 1k"
    # Left dirty: killed before the refcounts were written.
    seed "$img" "$io" "$tag-lazy-dirty" "$cs,lazy_refcounts=on" 64k \
        "write -P 0x88 0 1k" "write -P 0x89 4k 512" abort
    "$img" create -q -f qcow2 base.qcow2 64k >/dev/null 2>&1 || true
    seed "$img" "$io" "$tag-backing" \
        "$cs,backing_file=base.qcow2,backing_fmt=qcow2" 64k \
        "write -P 0x99 512 512" || true
    seed "$img" "$io" "$tag-snapshots" "$cs" 64k "write -P 0xaa 0 1k"
    snap "$img" s1
    "$io" -f qcow2 -c "write -P 0xbb 0 512" -c "write -c 4k 512" t.qcow2 \
        >/dev/null 2>&1 || true
    snap "$img" s2
    cp t.qcow2 "$out/qcow2/$tag-snapshots"
    seed "$img" "$io" "$tag-snapshots-v2" "$cs,compat=0.10" 64k \
        "write -P 0xaa 0 1k"
    snap "$img" s1
    cp t.qcow2 "$out/qcow2/$tag-snapshots-v2"
    [ "$zoned" = 1 ] || return 0
    local z=zone.mode=host-managed
    seed "$img" "$io" "$tag-zoned-4x16k" "$cs,$z,zone.size=16k" 64k \
        "write -P 0x01 0 1k" "zone_append -P 0x02 16k 512"
    seed "$img" "$io" "$tag-zoned-conv" \
        "$cs,$z,zone.size=16k,zone.conventional_zones=2" 64k \
        "write -P 0x03 0 512" "write -P 0x04 4k 512" \
        "write -P 0x05 32k 1k" "zone_finish 48k 16k"
    seed "$img" "$io" "$tag-zoned-cap" \
        "$cs,$z,zone.size=16k,zone.capacity=8k,zone.max_open_zones=2,zone.max_active_zones=3" \
        64k "write -P 0x06 0 8k" "write 16k 512" "zone_close 16k 16k"
    # A last zone shorter than the others.
    seed "$img" "$io" "$tag-zoned-short" "$cs,$z,zone.size=16k" 56k \
        "write -P 0x07 48k 512"
    seed "$img" "$io" "$tag-zoned-v2" "$cs,compat=0.10,$z,zone.size=16k" 32k
    seed "$img" "$io" "$tag-zoned-append" \
        "$cs,$z,zone.size=32k,zone.max_append_bytes=4k" 128k \
        "zone_append 0 4k" "zone_append 0 512" "zone_open 32k 32k" \
        "zone_reset 0 32k"
}

gen "$build/qemu-img" "$build/qemu-io" ours 1
if [ -x /usr/bin/qemu-img ] && [ -x /usr/bin/qemu-io ]; then
    gen /usr/bin/qemu-img /usr/bin/qemu-io qemu72 0
fi
q10=${QEMU10_DIR:-/opt/zoned-qcow2/qemu-10.0}/usr/bin
if [ -x "$q10/qemu-img" ]; then
    gen "$q10/qemu-img" "$q10/qemu-io" qemu10 0
fi

# qemu-io command scripts: a 'Z' first selects the zoned image.
i=0
while IFS= read -r line; do
    [ -n "$line" ] || continue
    printf '%b' "$line" > "$out/qemu-io/cmd-$i"
    i=$((i + 1))
done <<'CMDS'
write -P 0xab 0 4k\nread -P 0xab 0 4k\nread -v 0 32
write -z 0 8k\nread -P 0 0 8k\nmap\nalloc 0 64k
write -c -P 0x11 0 4k\nread -C -P 0x11 0 4k
readv -P 0 0 512 1k\nwritev -P 1 512 512 512
aio_write -P 0x22 0 4k\naio_read 4k 4k\naio_flush\nflush
discard 0 8k\ntruncate 2M\nlength\ninfo
write -b 0 512\nread -b 0 512\nread -l 100 -p 0 512
write -u 0 4k\nwrite -f -n 4k 4k\nmap
Zzone_report 0 8\nzone_open 128k 128k\nwrite 128k 4k\nzone_finish 128k 128k
Zzone_append -P 0x33 128k 4k\nzone_report -q 0 16\nzone_reset 0 1M
Zzone_close 256k 128k\nzone_mgmt\nwrite -P 1 0 4k\nhelp zone_append
help\nhelp read\nbreak a b\nresume a\nremove_break a
CMDS
touch "$out/.done"
echo "make-corpus: $n images, $i command scripts in $out"
