#!/usr/bin/env bash
# Long fuzzing runs: every libFuzzer target of tests/fuzz in turn, for
# slices of --slice seconds, round after round until --hours have passed
# (or --execs executions in total were reached).  Corpora, crash
# artifacts and logs live under the cache directory and are reused by
# the next run.  Stops at the first crash, hang, leak or sanitizer
# report (unless --keep-going) and prints where the input is.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Usage: scripts/fuzz/run.sh [options]
#   --build DIR      fuzz build directory (default build-fuzz; configured
#                    with --enable-fuzzing and built when missing)
#   --cache DIR      corpora/artifacts/logs (default ~/.cache/zoned-qcow2-fuzz)
#   --hours H        stop after H hours (default 4; fractions allowed)
#   --execs N        stop once N executions were done in total
#   --slice S        seconds per target and round (default 600)
#   --targets LIST   comma separated (default: all); TARGET:SECONDS
#                    gives that target its own slice (weighting)
#   --jobs N         libFuzzer -jobs (default 1: one process)
#   --workers N      libFuzzer -workers (default: same as --jobs)
#   --nice N         niceness (default 10)
#   --keep-going     record a finding and go on with the next slice
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$src/build-fuzz
cache=${XDG_CACHE_HOME:-$HOME/.cache}/zoned-qcow2-fuzz
hours=4 execs=0 slice=600 jobs=1 workers= niceness=10 keep=0
targets=fuzz-qcow2-open,fuzz-qcow2-repair,fuzz-qemu-io-cmds
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift ;;
    --cache) cache=$2; shift ;;
    --hours) hours=$2; shift ;;
    --execs) execs=$2; shift ;;
    --slice) slice=$2; shift ;;
    --targets) targets=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --workers) workers=$2; shift ;;
    --nice) niceness=$2; shift ;;
    --keep-going) keep=1 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '/^set -e/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 1 ;;
    esac
    shift
done
workers=${workers:-$jobs}

if [ ! -f "$build/build.ninja" ]; then
    (cd "$src" && ./configure --builddir="$build" --enable-fuzzing)
fi
ninja -C "$build" >/dev/null
# The targets run from their log directories: make the path absolute.
build=$(cd "$build" && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
"$src/scripts/fuzz/make-corpus.sh" "$build" "$cache/seeds"

export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
deadline=$(( $(date +%s) + $(python3 -c "print(int($hours * 3600))") ))
start=$(date +%s)
runid=$(date +%Y%m%d-%H%M%S)
total=0 round=0 findings=0
declare -A per_target

# Executions of the slice whose logs are in $1 (libFuzzer's final stats).
count_execs() {
    cat "$@" 2>/dev/null | sed -n 's/^stat::number_of_executed_units: *//p' |
        awk '{ s += $1 } END { print s + 0 }'
}

while :; do
    round=$((round + 1))
    for spec in ${targets//,/ }; do
        t=${spec%%:*} tslice=$slice
        [ "$t" = "$spec" ] || tslice=${spec#*:}
        now=$(date +%s)
        [ "$now" -lt "$deadline" ] || break 2
        [ "$execs" = 0 ] || [ "$total" -lt "$execs" ] || break 2
        secs=$(( deadline - now < tslice ? deadline - now : tslice ))
        extra=()
        case "$t" in
        fuzz-qemu-io-cmds)
            seeds=$cache/seeds/qemu-io max_len=4096
            extra=(-dict="$src/tests/fuzz/qemu-io.dict") ;;
        *) seeds=$cache/seeds/qcow2 max_len=65536 ;;
        esac
        corpus=$cache/corpus/$t art=$cache/artifacts/$t
        logdir=$cache/logs/$runid/$t-round$round
        mkdir -p "$corpus" "$art" "$logdir"
        par=()
        [ "$jobs" -le 1 ] || par=(-jobs="$jobs" -workers="$workers")
        set +e
        (cd "$logdir" && exec nice -n "$niceness" "$build/tests/fuzz/$t" \
            "${par[@]}" "${extra[@]}" -max_total_time="$secs" -timeout=30 \
            -rss_limit_mb=2048 -max_len=$max_len -close_fd_mask=3 \
            -print_final_stats=1 -artifact_prefix="$art/" \
            "$corpus" "$seeds" "$src/tests/fuzz/regress/$t" \
            > "$logdir/main.log" 2>&1)
        rc=$?
        set -e
        n=$(count_execs "$logdir"/*.log)
        total=$((total + n))
        per_target[$t]=$(( ${per_target[$t]:-0} + n ))
        bad=$rc
        grep -qE 'runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer' \
            "$logdir"/*.log && bad=1
        printf '%s round %d %-20s %9d execs (%d/s)  total %d  rc %d\n' \
            "$(date +%T)" "$round" "$t" "$n" $(( n / (secs > 0 ? secs : 1) )) \
            "$total" "$rc"
        if [ "$bad" != 0 ]; then
            findings=$((findings + 1))
            echo "FINDING in $t: see $logdir and $art" >&2
            grep -hE 'SUMMARY|runtime error|Test unit written' "$logdir"/*.log >&2 || true
            [ "$keep" = 1 ] || break 2
        fi
    done
done
elapsed=$(( $(date +%s) - start ))
for t in "${!per_target[@]}"; do
    echo "  $t: ${per_target[$t]} execs"
done
echo "run.sh: $total executions in ${elapsed} s, $findings finding(s)"
[ "$findings" = 0 ]
