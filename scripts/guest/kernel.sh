#!/bin/sh
# Fetch and unpack the test guest's Linux kernel into the cache, once.
# Prints the kernel directory: it holds vmlinux (uncompressed, booted
# directly through its PVH note, which is faster than the bzImage),
# lib/modules/<version>/ and a file "version".
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/guest/kernel.sh
#   GUEST_CACHE   cache directory (default /var/cache/zoned-qcow2/guest)
#   GUEST_KERNEL  Debian package (default linux-image-6.12.95+deb12-amd64,
#                 from bookworm-backports; see docs/devel/guest-testing.rst)
#   GUEST_OFFLINE=1  only print the directory if the kernel is there,
#                 never download (exit 1 otherwise)
set -e
cache=${GUEST_CACHE:-/var/cache/zoned-qcow2/guest}
pkg=${GUEST_KERNEL:-linux-image-6.12.95+deb12-amd64}
kdir="$cache/$pkg"

if [ -f "$kdir/vmlinux" ] && [ -f "$kdir/version" ]; then
    echo "$kdir"
    exit 0
fi

[ -z "$GUEST_OFFLINE" ] || exit 1
mkdir -p "$cache"
deb=$(ls "$cache/${pkg}_"*.deb 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
    # apt-get download writes to the current directory; as root it warns
    # that _apt cannot write there, which is harmless.
    (cd "$cache" && apt-get download -qq "$pkg" 2>/dev/null) || {
        echo "kernel.sh: cannot download $pkg (is bookworm-backports in" \
             "the apt sources? run scripts/install-deps.sh --guest)" >&2
        exit 1
    }
    deb=$(ls "$cache/${pkg}_"*.deb | head -n 1)
fi

tmp="$kdir.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
dpkg-deb -x "$deb" "$tmp/root"
ver=$(ls "$tmp/root/lib/modules" | head -n 1)
bz="$tmp/root/boot/vmlinuz-$ver"

# The bzImage payload is zstd data followed by a 4-byte size trailer; its
# place is given by the x86 boot header: setup_sects at 0x1f1,
# payload_offset at 0x248 and payload_length at 0x24c.
u() { od -An -tu"$1" -j "$2" -N"$1" "$bz" | tr -d ' '; }
setup=$(u 1 $((0x1f1)))
poff=$(u 4 $((0x248)))
plen=$(u 4 $((0x24c)))
start=$(( (setup + 1) * 512 + poff ))
tail -c +$((start + 1)) "$bz" | head -c $((plen - 4)) | zstd -qdc > "$tmp/vmlinux"

mkdir -p "$tmp/lib/modules"
mv "$tmp/root/lib/modules/$ver" "$tmp/lib/modules/"
depmod -b "$tmp" "$ver"
rm -rf "$tmp/root"
echo "$ver" > "$tmp/version"
echo "$deb" | sed 's|.*/||' > "$tmp/package"
rm -rf "$kdir"
mv "$tmp" "$kdir"
echo "$kdir"
