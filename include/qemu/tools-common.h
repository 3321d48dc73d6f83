/*
 * Helpers shared by the command line tools (qemu-io, qemu-img): size
 * parsing with the tools' error messages, cache/discard/aio mode parsing,
 * --image-opts strings and the throughput report format.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_TOOLS_COMMON_H
#define QEMU_TOOLS_COMMON_H

#include "qemu/option.h"

/* ---- numbers -------------------------------------------------------- */

/*
 * Parse a byte count with an optional binary suffix (k, M, G, T, P, E;
 * "512", "4k", "1.5M", "0x1000").  Returns the value (>= 0) or -EINVAL
 * (garbage or unknown suffix) / -ERANGE (above INT64_MAX).
 */
int64_t tool_cvtnum(const char *s);

/*
 * Print qemu-io's message for a failed tool_cvtnum() to stdout:
 * "Parsing error: non-numeric argument, or extraneous/unrecognized
 * suffix -- ARG" (-EINVAL), "Parsing error: argument too large -- ARG"
 * (-ERANGE), else "Parsing error: ARG".
 */
void tool_print_cvtnum_err(int64_t rc, const char *arg);

/*
 * qemu-img flavour: parse @value as a size for the option called @name
 * and check min <= value <= max.  On failure reports (error_report) the
 * two-line "Invalid NAME specified. You may use k, M, G, T, P or E
 * suffixes for" / "kilobytes, ..." message, or "Invalid NAME specified.
 * Must be between MIN and MAX." and returns -EINVAL / -ERANGE.
 */
int64_t tool_cvtnum_full(const char *name, const char *value, int64_t min,
                         int64_t max);

/* ---- open modes ------------------------------------------------------ */

/*
 * Cache modes: "none"/"off" (O_DIRECT), "directsync" (O_DIRECT +
 * writethrough), "writeback", "writethrough", "unsafe" (no flushes).
 * Replaces the BDRV_O_CACHE_MASK bits of *flags and sets *writethrough.
 * Returns 0, or -1 for an unknown mode (nothing changed).
 */
int tool_parse_cache_mode(const char *mode, int *flags, bool *writethrough);

/* "ignore"/"off" clear BDRV_O_UNMAP, "unmap"/"on" set it.  0 or -1. */
int tool_parse_discard_flags(const char *mode, int *flags);

/*
 * "threads", "native" (BDRV_O_NATIVE_AIO) or "io_uring" (BDRV_O_IO_URING,
 * only when built with liburing).  Clears the other aio bits.  0 or -1.
 */
int tool_parse_aio(const char *mode, int *flags);

/*
 * --image-opts: parse "key=value,..." into block options.  With
 * @implied_file a first element without '=' is the "file" option (as
 * qemu-img does); otherwise a bare "word" means word=on, with QEMU's
 * deprecation warning (as qemu-io does).  Returns NULL and sets errp on
 * a syntax error.
 */
QDict *tool_parse_image_opts(const char *optstr, bool implied_file,
                             Error **errp);

/* ---- reports ---------------------------------------------------------- */

/*
 * Human size as qemu-io prints it: "512 bytes", "4 KiB", "1.500 KiB",
 * "63.938 MiB" (three decimals unless they are all zero).  Writes at most
 * @size bytes (64 is always enough).
 */
void tool_cvtstr(double value, char *str, size_t size);

/* Elapsed time as a timespec (@end - @start, both CLOCK_MONOTONIC). */
struct timespec tool_tsub(struct timespec end, struct timespec start);
/* @value per second over @t. */
double tool_tdiv(double value, struct timespec t);
/*
 * "SS.ss sec" while the whole seconds are 0, "H:MM:SS.ss" otherwise
 * (and always with @fixed).
 */
void tool_timestr(const struct timespec *t, char *ts, size_t size,
                  bool fixed);

/*
 * The two lines qemu-io prints after an I/O command:
 *   "OP TOTAL/COUNT bytes at offset OFFSET"
 *   "SIZE, CNT ops; TIME (RATE/sec and OPS ops/sec)"
 * or with @machine (-C) one line "TOTAL,CNT,H:MM:SS.ss,BPS,OPS".
 */
void tool_print_report(const char *op, const struct timespec *t,
                       int64_t offset, int64_t count, int64_t total,
                       int cnt, bool machine);

#endif
