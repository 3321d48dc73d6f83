#!/bin/sh
# The README's main job: a short tour of the tools on a scratch image.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
set -e
build=${1:-build}
img_dir=$(mktemp -d "${TMPDIR:-/tmp}/zq-demo.XXXXXX")
trap 'rm -rf "$img_dir"' EXIT
QEMU_IMG="$build/qemu-img"
QEMU_IO="$build/qemu-io"

step() { printf '\n$ %s\n' "$*"; "$@"; }

raw="$img_dir/demo.raw"
step "$QEMU_IMG" create -f raw "$raw" 64M
step "$QEMU_IO" -f raw -c 'write -P 0xab 0 64k' -c 'aio_write -P 0xcd 1M 128k' \
    -c 'aio_flush' -c 'read -P 0xab 0 64k' -c 'read -v 1M 32' "$raw"
step "$QEMU_IMG" info -f raw "$raw"
step "$QEMU_IMG" map -f raw "$raw"
q="$img_dir/demo.qcow2"
step "$QEMU_IMG" convert -f raw -O qcow2 "$raw" "$q"
step "$QEMU_IMG" info "$q"
step "$QEMU_IMG" check "$q"
step "$QEMU_IMG" compare "$raw" "$q"
