#!/bin/sh
# Run the standard benchmark set (see README.rst beside this file).
# Copyright (c) 2026 The zoned-qcow2 project authors
# SPDX-License-Identifier: GPL-2.0-or-later
set -e
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
"$build/scripts/bench/coroutine-switch"
"$build/scripts/bench/cross-thread"
"$here/bench.py" throughput --build "$build"
"$here/bench.py" throughput --build "$build" --fmt qcow2 --where disk \
    --aio io_uring,native
"$here/bench.py" callgrind --build "$build"
"$here/bench.py" callgrind --build "$build" --fmt qcow2
"$here/zoned.py" --build "$build"
