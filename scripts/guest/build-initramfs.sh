#!/bin/sh
# Build an uncompressed cpio initramfs for the test guest: busybox, the
# given kernel modules (decompressed, with their dependencies and a
# modules.dep), the given host binaries with their shared libraries, and
# extra files.  scripts/guest/run.sh boots it with a test script.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/guest/build-initramfs.sh -o OUT.cpio [-m MODULE]...
#            [-b BINARY]... [-f SRC:DST]...
#   -m MODULE   kernel module to include, with its dependencies
#   -b BINARY   host executable (path or name in $PATH) with its ldd closure,
#               installed under the same path
#   -f SRC:DST  any file, installed as DST
# The kernel comes from scripts/guest/kernel.sh (GUEST_CACHE, GUEST_KERNEL).
set -e
here=$(cd "$(dirname "$0")" && pwd)
out=
mods=
bins=
files=
while getopts o:m:b:f: opt; do
    case $opt in
    o) out=$OPTARG ;;
    m) mods="$mods $OPTARG" ;;
    b) bins="$bins $OPTARG" ;;
    f) files="$files $OPTARG" ;;
    *) sed -n '/^# Usage/,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
       exit 1 ;;
    esac
done
[ -n "$out" ] || { echo "build-initramfs.sh: -o OUT is required" >&2; exit 1; }

kdir=$("$here/kernel.sh")
ver=$(cat "$kdir/version")
busybox=$(command -v busybox) || {
    echo "build-initramfs.sh: busybox-static is not installed" >&2; exit 1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/guest-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" \
         "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp" \
         "$root/etc" "$root/test" "$root/lib/modules/$ver"
cp "$busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
chmod 755 "$root/init"

# Modules: resolve dependencies against the unpacked tree, store them
# decompressed (busybox modprobe loads .ko.xz slowly and noisily).
for m in $mods; do
    modprobe -d "$kdir" -S "$ver" --show-depends "$m" > "$root/deps" || {
        echo "build-initramfs.sh: no module $m" >&2; exit 1; }
    sed -n 's/^insmod \([^ ]*\).*/\1/p' "$root/deps"
done > "$root/kos"
sort -u "$root/kos" | while read -r ko; do
    rel=${ko#"$kdir"/}
    dst="$root/${rel%.xz}"
    mkdir -p "$(dirname "$dst")"
    case $ko in
    *.xz) xz -dc "$ko" > "$dst" ;;
    *) cp "$ko" "$dst" ;;
    esac
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ ! -f "$kdir/lib/modules/$ver/$f" ] ||
        cp "$kdir/lib/modules/$ver/$f" "$root/lib/modules/$ver/"
done
rm -f "$root/deps" "$root/kos"
depmod -b "$root" "$ver"

# Binaries and their shared libraries, the ELF interpreter included.
copy_path() {
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
}
for b in $bins; do
    p=$(command -v "$b") || { echo "build-initramfs.sh: no binary $b" >&2; exit 1; }
    copy_path "$p"
    ldd "$p" 2>/dev/null |
        sed -n 's/.*=>[ \t]*\(\/[^ \t]*\).*/\1/p; s/^[ \t]*\(\/[^ \t]*\).*/\1/p' |
        while read -r lib; do
            copy_path "$lib"
        done
done
for f in $files; do
    src=${f%%:*}
    dst=${f#*:}
    mkdir -p "$root$(dirname "$dst")"
    cp -L "$src" "$root$dst"
done
echo "$ver" > "$root/etc/kernel-version"

mkdir -p "$(dirname "$out")"
(cd "$root" && find . | cpio -o -H newc --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
