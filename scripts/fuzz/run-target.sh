#!/usr/bin/env bash
# Run one libFuzzer target for a bounded time on the seed corpus (the
# meson tests of suite "fuzz" call this).  Fails on any crash, hang,
# leak or sanitizer report.  The seeds are not modified: new inputs go
# to a scratch directory that is removed afterwards.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/fuzz/run-target.sh BUILD_DIR TARGET_EXE SECONDS
set -euo pipefail
build=$(cd "$1" && pwd) secs=$3
# meson passes the target relative to the build directory.
exe=$(cd "$build" && realpath "$2")
src=$(cd "$(dirname "$0")/../.." && pwd)
name=$(basename "$exe")
corpus="$build/fuzz-corpus"
"$src/scripts/fuzz/make-corpus.sh" "$build" "$corpus" >&2
dict=()
case "$name" in
fuzz-qemu-io-cmds)
    seeds="$corpus/qemu-io"
    dict=(-dict="$src/tests/fuzz/qemu-io.dict") ;;
*) seeds="$corpus/qcow2" ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir "$work/new"
set +e
"$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -close_fd_mask=3 -print_final_stats=1 "${dict[@]}" \
    -artifact_prefix="$work/" "$work/new" "$seeds" "$src/tests/fuzz/regress/$name" \
    2>&1 | tee log | grep -E '^(INFO|#[0-9]+ *DONE|stat::number_of_executed|stat::average_exec|==[0-9]+==|SUMMARY)|runtime error' >&2
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ] || grep -qE 'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer' log; then
    tail -n 60 log >&2
    for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
        [ -e "$f" ] || continue
        echo "artifact $(basename "$f") (base64):" >&2
        base64 "$f" >&2
    done
    exit 1
fi
