#!/bin/sh
# Install every Debian package the build, the tests and the benchmarks
# need.  Idempotent: packages already present are not reinstalled, and
# apt is only asked when something is missing.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/install-deps.sh [--bench] [--guest]
#   --bench  also valgrind (benchmarks)
#   --guest  accepted for older scripts: what the guest test suite "vm"
#            needs (QEMU for x86, busybox, fio, f2fs/btrfs/ext4 tools and
#            the Linux 6.12 guest kernel, scripts/guest/kernel.sh) is now
#            always installed, since "make check" runs that suite
#
# clang and libclang-rt-14-dev (libFuzzer, sanitizer runtimes) build the
# fuzz targets (scripts/fuzz/ci.sh).
#
# Always: QEMU 10.0's qemu-utils from bookworm-backports, unpacked (not
# installed) into $QEMU10_DIR for the interoperability tests, beside
# Debian's QEMU 7.2 which stays the system's qemu-img/qemu-io.  The
# backports suite keeps its default low priority, so nothing else is
# upgraded from it.
set -e
QEMU10_DIR=${QEMU10_DIR:-/opt/zoned-qcow2/qemu-10.0}
QEMU10_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1

want="gcc pkg-config meson ninja-build libglib2.0-dev libaio-dev
      liburing-dev zlib1g-dev libzstd-dev qemu-utils util-linux
      python3 diffutils clang libclang-rt-14-dev
      qemu-system-x86 busybox-static cpio kmod zstd xz-utils iproute2
      f2fs-tools btrfs-progs e2fsprogs fio"
bench=0
guest=0
for a in "$@"; do
    case "$a" in
    --bench) bench=1 ;;
    --guest) guest=1 ;;
    *) echo "install-deps: unknown option $a" >&2; exit 1 ;;
    esac
done
[ $bench = 1 ] && want="$want valgrind"
: "$guest"

missing=
for p in $want; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed'; then
        missing="$missing $p"
    fi
done

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" |
        $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
    missing="$missing"   # force an update below
    need_update=1
fi

if [ -n "$missing" ] || [ -n "${need_update:-}" ]; then
    echo "install-deps: installing:$missing"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    [ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive \
        $SUDO apt-get install -y -qq --no-install-recommends $missing
else
    echo "install-deps: everything is installed"
fi

if [ ! -x "$QEMU10_DIR/usr/bin/qemu-img" ]; then
    echo "install-deps: unpacking QEMU 10.0 qemu-utils into $QEMU10_DIR"
    tmp=$(mktemp -d)
    # apt-get download works in the current directory; _apt cannot write
    # to a private mktemp directory, which is harmless (it warns).
    if ! (cd "$tmp" && apt-get download -qq "qemu-utils=$QEMU10_VERSION" 2>/dev/null); then
        $SUDO apt-get update -qq
        (cd "$tmp" && apt-get download -qq "qemu-utils=$QEMU10_VERSION" 2>/dev/null) || {
            # Any 10.x the suite offers will do.
            (cd "$tmp" && apt-get download -qq -t bookworm-backports qemu-utils 2>/dev/null)
        }
    fi
    $SUDO mkdir -p "$QEMU10_DIR"
    $SUDO dpkg-deb -x "$tmp"/qemu-utils_*.deb "$QEMU10_DIR"
    rm -rf "$tmp"
    "$QEMU10_DIR/usr/bin/qemu-img" --version | head -n 1
fi

# The guest kernel of the vm suite (downloaded from bookworm-backports and
# unpacked into its cache once; a no-op when it is there).
if ! GUEST_OFFLINE=1 "$(dirname "$0")/guest/kernel.sh" >/dev/null 2>&1; then
    echo "install-deps: fetching the guest kernel (scripts/guest/kernel.sh)"
    if [ -n "$SUDO" ]; then
        cache=${GUEST_CACHE:-/var/cache/zoned-qcow2/guest}
        $SUDO mkdir -p "$cache"
        $SUDO chown "$(id -u):$(id -g)" "$cache"
    fi
    "$(dirname "$0")/guest/kernel.sh" || {
        $SUDO apt-get update -qq
        "$(dirname "$0")/guest/kernel.sh"
    }
fi
