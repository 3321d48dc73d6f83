#!/bin/sh
# Long random differential stress of the qcow2 driver against QEMU 7.2's
# check and compare (scripts/stress/qcow2_stress.py; the iotest
# qcow2-stress runs a short fixed-seed slice of it in make check).
#
# Usage: scripts/stress/run.sh [BUILD_DIR] [CASES] [SEED] [JOBS]
#   defaults: build, 2000 cases, a seed from the clock, 1 job.
# Runs at low priority.  Failing cases are printed with their seed and
# kept under $STRESS_DIR (default /tmp/qcow2-stress-SEED) with the image,
# the raw mirror, replay.sh (our tools' command lines) and a log.
#
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
cases=${2:-2000}
seed=${3:-$(( $(date +%s) % 1000000 * 1000 ))}
jobs=${4:-1}
dir=${STRESS_DIR:-/tmp/qcow2-stress-$seed}
exec nice -n 10 python3 "$here/qcow2_stress.py" --quiet --cases "$cases" \
    --seed "$seed" --jobs "$jobs" --workdir "$dir" \
    --ours-img "$build/qemu-img" --ours-io "$build/qemu-io"
