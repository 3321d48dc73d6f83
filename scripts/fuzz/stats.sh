#!/usr/bin/env bash
# Sum the executions of every slice run.sh logged under a cache
# directory (all runs), per target, and list the crash artifacts.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/fuzz/stats.sh [CACHE_DIR]
set -euo pipefail
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/zoned-qcow2-fuzz}
total=0 secs=0
for t in fuzz-qcow2-open fuzz-qcow2-repair fuzz-qemu-io-cmds; do
    n=0 s=0
    for d in "$cache"/logs/*/"$t"-round*; do
        [ -d "$d" ] || continue
        e=$(cat "$d"/*.log | sed -n 's/^stat::number_of_executed_units: *//p' |
            awk '{ s += $1 } END { print s + 0 }')
        # Slice length: libFuzzer's "Done N runs in S second(s)".
        l=$(cat "$d"/*.log | sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' |
            awk '{ s += $1 } END { print s + 0 }')
        n=$((n + e)) s=$((s + l))
    done
    printf '%-20s %10d execs in %6d s (%d/s)\n' "$t" "$n" "$s" \
        $(( s > 0 ? n / s : 0 ))
    total=$((total + n)) secs=$((secs + s))
done
printf '%-20s %10d execs in %6d s\n' total "$total" "$secs"
found=$(find "$cache/artifacts" -type f 2>/dev/null | wc -l)
echo "artifacts (crash/leak/timeout/oom inputs): $found"
find "$cache/artifacts" -type f 2>/dev/null
