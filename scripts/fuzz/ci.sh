#!/usr/bin/env bash
# CI step: build the libFuzzer targets (clang, ASan + UBSan) in
# build-fuzz and run each for a bounded time (meson suite "fuzz",
# fuzz_seconds per target).  Exits 77 (skip) with a message when clang
# or its libFuzzer runtime is missing: scripts/install-deps.sh installs
# them (clang, libclang-rt-14-dev).
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/fuzz/ci.sh [BUILD_DIR] [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
secs=${2:-25}
cc=${CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1 ||
   ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
        "$cc" -x c -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
    echo "SKIP: fuzz targets not built: $cc with libFuzzer (-fsanitize=fuzzer)" \
         "not available; run scripts/install-deps.sh" >&2
    exit 77
fi
CC=$cc make BUILD="$build" CONFIGURE_FLAGS="--enable-fuzzing"
meson configure "$build" -Dfuzz_seconds="$secs"
meson test -C "$build" --suite fuzz --print-errorlogs --num-processes 1
