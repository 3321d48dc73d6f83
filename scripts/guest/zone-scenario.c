/*
 * Run a zone scenario plan on a zoned block device (in the test guest,
 * on null_blk) and print the transcript in the common format of
 * tests/qemu-iotests/zoned_scenario.py, which runs the same plan on our
 * qemu-io.  Built static on the host: gcc -static -O2 -o zone-scenario
 * zone-scenario.c.  Uses the ioctls directly (what blkzone uses) so that
 * every step reports its exact errno.
 *
 * Plan lines on stdin: "OP OFFSET LENGTH|LABEL", byte values, OP one of
 * write, read, readp (read and check the 0xa5 pattern), open, close,
 * finish, reset.  OFFSET may be wp:ZONE:DELTA, relative to the zone's
 * write pointer in the last report.  After each step the whole zone
 * report is printed.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/blkzoned.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PATTERN 0xa5

static int fd;
static unsigned nr_zones;
static struct blk_zone_report *rep;

static const char *errname(int e)
{
    static char buf[32];

    switch (e) {
    case EIO: return "EIO";
    case EINVAL: return "EINVAL";
    case ETOOMANYREFS: return "ETOOMANYREFS";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOSPC: return "ENOSPC";
    case EBUSY: return "EBUSY";
    case EAGAIN: return "EAGAIN";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENXIO: return "ENXIO";
    }
    snprintf(buf, sizeof(buf), "errno%d", e);
    return buf;
}

static const char *cond_name(unsigned c)
{
    switch (c) {
    case BLK_ZONE_COND_NOT_WP: return "nw";
    case BLK_ZONE_COND_EMPTY: return "em";
    case BLK_ZONE_COND_IMP_OPEN: return "io";
    case BLK_ZONE_COND_EXP_OPEN: return "eo";
    case BLK_ZONE_COND_CLOSED: return "cl";
    case BLK_ZONE_COND_FULL: return "fu";
    case BLK_ZONE_COND_READONLY: return "ro";
    case BLK_ZONE_COND_OFFLINE: return "of";
    }
    return "??";
}

/* geometry: print the zone list; 0: one state line; -1: refresh only */
static void report(int geometry)
{
    unsigned i;

    memset(rep, 0, sizeof(*rep) + nr_zones * sizeof(struct blk_zone));
    rep->sector = 0;
    rep->nr_zones = nr_zones;
    if (ioctl(fd, BLKREPORTZONE, rep) < 0) {
        printf("  report failed: %s\n", errname(errno));
        return;
    }
    if (geometry < 0) {
        return;
    }
    if (geometry) {
        for (i = 0; i < rep->nr_zones; i++) {
            struct blk_zone *z = &rep->zones[i];

            printf("zone %u: %s start 0x%" PRIx64 " len 0x%" PRIx64
                   " cap 0x%" PRIx64 "\n", i,
                   z->type == BLK_ZONE_TYPE_CONVENTIONAL ? "conv" : "seq",
                   (uint64_t)z->start * 512, (uint64_t)z->len * 512,
                   (uint64_t)z->capacity * 512);
        }
        return;
    }
    printf(" ");
    for (i = 0; i < rep->nr_zones; i++) {
        struct blk_zone *z = &rep->zones[i];

        /* The wp of a FULL zone is undefined (guest-testing.md). */
        if (z->cond == BLK_ZONE_COND_NOT_WP || z->cond == BLK_ZONE_COND_FULL ||
            z->cond == BLK_ZONE_COND_OFFLINE) {
            printf(" %s", cond_name(z->cond));
        } else {
            printf(" %s+0x%" PRIx64, cond_name(z->cond),
                   (uint64_t)(z->wp - z->start) * 512);
        }
    }
    printf("\n");
}

static void step(const char *op, uint64_t off, uint64_t len, char *buf)
{
    struct blk_zone_range r = { .sector = off / 512, .nr_sectors = len / 512 };
    unsigned long req = 0;
    ssize_t n;

    if (!strcmp(op, "write") || !strcmp(op, "read") || !strcmp(op, "readp")) {
        if (op[0] == 'w') {
            memset(buf, PATTERN, len);
            n = pwrite(fd, buf, len, off);
        } else {
            memset(buf, 0, len);
            n = pread(fd, buf, len, off);
        }
        if (n < 0) {
            printf("%s\n", errname(errno));
        } else if ((uint64_t)n != len) {
            printf("SHORT 0x%zx\n", (size_t)n);
        } else if (!strcmp(op, "readp")) {
            uint64_t i;

            for (i = 0; i < len && (uint8_t)buf[i] == PATTERN; i++) {
            }
            /* qemu-io names the read, not the byte: print neither. */
            if (i < len) {
                printf("MISMATCH\n");
            } else {
                printf("OK\n");
            }
        } else {
            printf("OK\n");
        }
        return;
    }
    if (!strcmp(op, "open")) {
        req = BLKOPENZONE;
    } else if (!strcmp(op, "close")) {
        req = BLKCLOSEZONE;
    } else if (!strcmp(op, "finish")) {
        req = BLKFINISHZONE;
    } else if (!strcmp(op, "reset")) {
        req = BLKRESETZONE;
    } else {
        printf("BADOP\n");
        return;
    }
    printf("%s\n", ioctl(fd, req, &r) < 0 ? errname(errno) : "OK");
}

int main(int argc, char **argv)
{
    char line[512], op[16];
    void *buf;

    if (argc != 2) {
        fprintf(stderr, "usage: zone-scenario DEVICE < PLAN\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_DIRECT);
    if (fd < 0 || ioctl(fd, BLKGETNRZONES, &nr_zones) < 0 || !nr_zones) {
        fprintf(stderr, "zone-scenario: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    rep = calloc(1, sizeof(*rep) + nr_zones * sizeof(struct blk_zone));
    if (posix_memalign(&buf, 4096, 64 << 20)) {
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    report(1);
    report(-1);
    while (fgets(line, sizeof(line), stdin)) {
        unsigned long long off, len;
        char offs[64];
        char *label = strchr(line, '|');
        unsigned z;
        long long delta;

        if (!label || sscanf(line, "%15s %63s %llu", op, offs, &len) != 3) {
            continue;
        }
        if (sscanf(offs, "wp:%u:%lld", &z, &delta) == 2) {
            /* From the last report; a FULL zone's wp means its start. */
            struct blk_zone *bz = &rep->zones[z < nr_zones ? z : 0];

            off = bz->start * 512;
            if (bz->cond != BLK_ZONE_COND_FULL) {
                off = bz->wp * 512 + delta;
            }
        } else {
            off = strtoull(offs, NULL, 0);
        }
        label[strcspn(label, "\n")] = 0;
        if (len > (64 << 20)) {
            printf("%s: TOOLONG\n", label + 1);
            continue;
        }
        printf("%s: ", label + 1);
        step(op, off, len, buf);
        report(0);
    }
    return 0;
}
