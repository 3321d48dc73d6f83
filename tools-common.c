/*
 * Helpers shared by qemu-io and qemu-img.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/tools-common.h"
#include "qemu/cutils.h"
#include "block/block.h"

int64_t tool_cvtnum(const char *s)
{
    uint64_t value;
    int ret;

    ret = qemu_strtosz(s, NULL, &value);
    if (ret < 0) {
        return ret;
    }
    /* Offsets and lengths are signed in the block layer. */
    if (value > INT64_MAX) {
        return -ERANGE;
    }
    return value;
}

void tool_print_cvtnum_err(int64_t rc, const char *arg)
{
    if (rc == -EINVAL) {
        printf("Parsing error: non-numeric argument, or extraneous/"
               "unrecognized suffix -- %s\n", arg);
    } else if (rc == -ERANGE) {
        printf("Parsing error: argument too large -- %s\n", arg);
    } else {
        printf("Parsing error: %s\n", arg);
    }
}

int64_t tool_cvtnum_full(const char *name, const char *value, int64_t min,
                         int64_t max)
{
    uint64_t res;
    int ret;

    ret = qemu_strtosz(value, NULL, &res);
    if (ret < 0 && ret != -ERANGE) {
        error_report("Invalid %s specified. You may use k, M, G, T, P or E "
                     "suffixes for", name);
        error_report("kilobytes, megabytes, gigabytes, terabytes, "
                     "petabytes and exabytes.");
        return -EINVAL;
    }
    if (ret == -ERANGE || res > (uint64_t)max || (int64_t)res < min) {
        error_report("Invalid %s specified. Must be between %" PRId64
                     " and %" PRId64 ".", name, min, max);
        return -ERANGE;
    }
    return res;
}

int tool_parse_cache_mode(const char *mode, int *flags, bool *writethrough)
{
    int cache_flags;
    bool wt;

    if (!strcmp(mode, "none") || !strcmp(mode, "off")) {
        cache_flags = BDRV_O_NOCACHE;
        wt = false;
    } else if (!strcmp(mode, "directsync")) {
        cache_flags = BDRV_O_NOCACHE;
        wt = true;
    } else if (!strcmp(mode, "writeback")) {
        cache_flags = 0;
        wt = false;
    } else if (!strcmp(mode, "writethrough")) {
        cache_flags = 0;
        wt = true;
    } else if (!strcmp(mode, "unsafe")) {
        cache_flags = BDRV_O_NO_FLUSH;
        wt = false;
    } else {
        return -1;
    }
    *flags = (*flags & ~BDRV_O_CACHE_MASK) | cache_flags;
    *writethrough = wt;
    return 0;
}

int tool_parse_discard_flags(const char *mode, int *flags)
{
    if (!strcmp(mode, "ignore") || !strcmp(mode, "off")) {
        *flags &= ~BDRV_O_UNMAP;
    } else if (!strcmp(mode, "unmap") || !strcmp(mode, "on")) {
        *flags |= BDRV_O_UNMAP;
    } else {
        return -1;
    }
    return 0;
}

int tool_parse_aio(const char *mode, int *flags)
{
    int aio_flags;

    if (!strcmp(mode, "threads")) {
        aio_flags = 0;
    } else if (!strcmp(mode, "native")) {
        aio_flags = BDRV_O_NATIVE_AIO;
#ifdef CONFIG_LINUX_IO_URING
    } else if (!strcmp(mode, "io_uring")) {
        aio_flags = BDRV_O_IO_URING;
#endif
    } else {
        return -1;
    }
    *flags = (*flags & ~(BDRV_O_NATIVE_AIO | BDRV_O_IO_URING)) | aio_flags;
    return 0;
}

QDict *tool_parse_image_opts(const char *optstr, bool implied_file,
                             Error **errp)
{
    return qdict_parse_keyval(optstr, implied_file ? "file" : NULL, errp);
}

void tool_cvtstr(double value, char *str, size_t size)
{
    static const char *const units[] = {
        " EiB", " PiB", " TiB", " GiB", " MiB", " KiB",
    };
    const char *suffix = " bytes";
    char *zeros;
    int i;

    for (i = 0; i < ARRAY_SIZE(units); i++) {
        double unit = (double)(INT64_C(1) << (10 * (6 - i)));
        if (value >= unit) {
            value /= unit;
            suffix = units[i];
            break;
        }
    }
    if (i < ARRAY_SIZE(units)) {
        snprintf(str, size, "%.3f", value);
    } else {
        /* Plain byte counts use six decimals, trimmed like the rest. */
        snprintf(str, size, "%f", value);
    }
    /* "4.000 KiB" reads better as "4 KiB"; the first ".000" ends it. */
    zeros = strstr(str, ".000");
    if (zeros) {
        *zeros = '\0';
    }
    g_strlcat(str, suffix, size);
}

struct timespec tool_tsub(struct timespec end, struct timespec start)
{
    end.tv_nsec -= start.tv_nsec;
    if (end.tv_nsec < 0) {
        end.tv_nsec += 1000000000L;
        end.tv_sec--;
    }
    end.tv_sec -= start.tv_sec;
    return end;
}

double tool_tdiv(double value, struct timespec t)
{
    return value / (t.tv_sec + t.tv_nsec / 1e9);
}

void tool_timestr(const struct timespec *t, char *ts, size_t size,
                  bool fixed)
{
    double secs = (t->tv_sec % 60) + t->tv_nsec / 1e9;

    if (fixed || t->tv_sec) {
        snprintf(ts, size, "%u:%02u:%05.2f",
                 (unsigned)(t->tv_sec / 3600),
                 (unsigned)((t->tv_sec % 3600) / 60), secs);
    } else {
        snprintf(ts, size, "%05.2f sec", secs);
    }
}

void tool_print_report(const char *op, const struct timespec *t,
                       int64_t offset, int64_t count, int64_t total,
                       int cnt, bool machine)
{
    char size_str[64], rate_str[64], time_str[64];

    tool_timestr(t, time_str, sizeof(time_str), machine);
    if (machine) {
        printf("%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, time_str,
               tool_tdiv(total, *t), tool_tdiv(cnt, *t));
        return;
    }
    tool_cvtstr(total, size_str, sizeof(size_str));
    tool_cvtstr(tool_tdiv(total, *t), rate_str, sizeof(rate_str));
    printf("%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n",
           op, total, count, offset);
    printf("%s, %d ops; %s (%s/sec and %.4f ops/sec)\n",
           size_str, cnt, time_str, rate_str, tool_tdiv(cnt, *t));
}
