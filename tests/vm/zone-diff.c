/*
 * Differential test of two zoned block devices: a reference (null_blk)
 * and a device under test (our image through the ublk export).  A seeded
 * random sequence of steps -- zone open/close/finish/reset of random
 * zones and ranges, reset of the whole device, O_DIRECT writes mostly at
 * the write pointer and sometimes elsewhere, reads below the write
 * pointer -- runs on both; the result of every step and the full zone
 * report after it must agree.  Allowed differences, and only those, are
 * the ones listed in guest-testing.md ("null_blk as the oracle"):
 *  - data at or past a sequential zone's write pointer is not compared;
 *  - the write pointer of a FULL zone is not compared;
 *  - writes stay inside one zone and within both devices' max request
 *    size, so the kernel never splits them;
 *  - errno is what the kernel returns to user space for both.
 * The zone report after every step also clears the kernel's zone write
 * plug error state after a failed write.
 *
 * Usage: zone-diff [-s SEED] [-n STEPS] [-l] [-v] REFERENCE DUT
 *        zone-diff -m STOPFILE DEV
 *   -l  fail unless the open/active limits were hit and implicit closes
 *       seen (for geometries that have limits)
 *   -v  print every step
 *   -m  monitor: report DEV's zones every millisecond until STOPFILE
 *       exists, then print the most zones seen open and active at once
 *       (the fio test checks that fio reached the device's limits)
 * Exit 0: no difference; 1: a difference (seed and step printed); 2: usage
 * or set-up error.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/blkzoned.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define SECTOR 512ULL
#define BLOCK 4096ULL

typedef struct Dev {
    const char *path;
    int fd;
    unsigned nr_zones;
    uint64_t max_io;            /* bytes */
    uint64_t lbs;
    struct blk_zone_report *rep;
} Dev;

static Dev ref, dut;
static uint64_t seed;
static unsigned long step_no;
static bool verbose;
static uint64_t rng_state;
static uint8_t *wbuf, *rbuf_ref, *rbuf_dut;
static uint64_t zone_len;       /* bytes */
static unsigned nr_zones;

/* Counters that show the sequence exercised what it should. */
static unsigned long n_limit_open, n_limit_active, n_implicit_close;
static unsigned long n_write_ok, n_write_err, n_reads, n_full, n_reset_all;

/* splitmix64: small, seedable, same sequence everywhere. */
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static const char *errname(int e)
{
    static char buf[32];

    switch (e) {
    case 0: return "OK";
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
    case BLK_ZONE_COND_NOT_WP: return "NOT_WP";
    case BLK_ZONE_COND_EMPTY: return "EMPTY";
    case BLK_ZONE_COND_IMP_OPEN: return "IMP_OPEN";
    case BLK_ZONE_COND_EXP_OPEN: return "EXP_OPEN";
    case BLK_ZONE_COND_CLOSED: return "CLOSED";
    case BLK_ZONE_COND_FULL: return "FULL";
    case BLK_ZONE_COND_READONLY: return "READONLY";
    case BLK_ZONE_COND_OFFLINE: return "OFFLINE";
    }
    return "?";
}

static void print_zone(const char *who, unsigned i, const struct blk_zone *z)
{
    fprintf(stderr, "  %s zone %u: type %u cond %s start 0x%llx len 0x%llx"
            " cap 0x%llx wp 0x%llx\n", who, i, z->type, cond_name(z->cond),
            (unsigned long long)(z->start * SECTOR),
            (unsigned long long)(z->len * SECTOR),
            (unsigned long long)(z->capacity * SECTOR),
            (unsigned long long)(z->wp * SECTOR));
}

static void dump_reports(void)
{
    unsigned i;

    for (i = 0; i < nr_zones; i++) {
        print_zone("ref", i, &ref.rep->zones[i]);
        print_zone("dut", i, &dut.rep->zones[i]);
    }
}

static void __attribute__((noreturn, format(printf, 1, 2)))
differ(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "zone-diff: DIFFERENCE at seed %" PRIu64 " step %lu: ",
            seed, step_no);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  reproduce: zone-diff -s %" PRIu64 " -n %lu %s %s\n",
            seed, step_no, ref.path, dut.path);
    exit(1);
}

static uint64_t sysfs_u64(const char *dev, const char *attr)
{
    char path[256], buf[64];
    const char *name = strrchr(dev, '/');
    FILE *f;
    uint64_t v = 0;

    snprintf(path, sizeof(path), "/sys/block/%s/queue/%s",
             name ? name + 1 : dev, attr);
    f = fopen(path, "r");
    if (f && fgets(buf, sizeof(buf), f)) {
        v = strtoull(buf, NULL, 0);
    }
    if (f) {
        fclose(f);
    }
    return v;
}

static int report(Dev *d)
{
    memset(d->rep, 0, sizeof(*d->rep) + nr_zones * sizeof(struct blk_zone));
    d->rep->sector = 0;
    d->rep->nr_zones = nr_zones;
    if (ioctl(d->fd, BLKREPORTZONE, d->rep) < 0) {
        return errno;
    }
    if (d->rep->nr_zones != nr_zones) {
        return ERANGE;
    }
    return 0;
}

static void dev_open(Dev *d, const char *path)
{
    uint32_t zs;
    int lbs;

    d->path = path;
    d->fd = open(path, O_RDWR | O_DIRECT);
    if (d->fd < 0 || ioctl(d->fd, BLKGETNRZONES, &d->nr_zones) < 0 ||
        ioctl(d->fd, BLKGETZONESZ, &zs) < 0 ||
        ioctl(d->fd, BLKSSZGET, &lbs) < 0) {
        fprintf(stderr, "zone-diff: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (!d->nr_zones || !zs) {
        fprintf(stderr, "zone-diff: %s is not zoned\n", path);
        exit(2);
    }
    d->lbs = lbs;
    d->max_io = sysfs_u64(path, "max_sectors_kb") * 1024;
    if (!d->max_io) {
        d->max_io = 128 * 1024;
    }
    if (!zone_len) {
        zone_len = zs * SECTOR;
    } else if (zone_len != zs * SECTOR) {
        fprintf(stderr, "zone-diff: zone sizes differ: %llu and %llu\n",
                (unsigned long long)zone_len,
                (unsigned long long)(zs * SECTOR));
        exit(2);
    }
}

/* Compare the full zone reports; the reference's is the one steps use. */
static void compare_reports(void)
{
    int er = report(&ref), ed = report(&dut);
    unsigned i;

    if (er || ed) {
        differ("zone report: ref %s, dut %s", errname(er), errname(ed));
    }
    for (i = 0; i < nr_zones; i++) {
        struct blk_zone *a = &ref.rep->zones[i], *b = &dut.rep->zones[i];
        bool full = a->cond == BLK_ZONE_COND_FULL;

        if (a->start != b->start || a->len != b->len ||
            a->capacity != b->capacity || a->type != b->type ||
            a->cond != b->cond || (!full && a->wp != b->wp) ||
            a->reset != b->reset || a->non_seq != b->non_seq) {
            dump_reports();
            differ("zone %u differs (ref %s wp +0x%llx, dut %s wp +0x%llx)",
                   i, cond_name(a->cond),
                   (unsigned long long)((a->wp - a->start) * SECTOR),
                   cond_name(b->cond),
                   (unsigned long long)((b->wp - b->start) * SECTOR));
        }
    }
}

static bool is_conv(unsigned z)
{
    return ref.rep->zones[z].type == BLK_ZONE_TYPE_CONVENTIONAL;
}

static unsigned count_cond(unsigned cond)
{
    unsigned i, n = 0;

    for (i = 0; i < nr_zones; i++) {
        n += ref.rep->zones[i].cond == cond;
    }
    return n;
}

static int do_write(Dev *d, uint64_t off, uint64_t len)
{
    ssize_t n = pwrite(d->fd, wbuf, len, off);

    if (n < 0) {
        return errno;
    }
    return (uint64_t)n == len ? 0 : -1;  /* -1: short write */
}

static int do_read(Dev *d, uint8_t *buf, uint64_t off, uint64_t len)
{
    ssize_t n = pread(d->fd, buf, len, off);

    if (n < 0) {
        return errno;
    }
    return (uint64_t)n == len ? 0 : -1;
}

static int do_zone_op(Dev *d, unsigned long req, uint64_t off, uint64_t len)
{
    struct blk_zone_range r = { .sector = off / SECTOR,
                                .nr_sectors = len / SECTOR };

    return ioctl(d->fd, req, &r) < 0 ? errno : 0;
}

static void check_result(const char *what, int a, int b)
{
    if (a != b) {
        dump_reports();
        differ("%s: ref %s, dut %s", what, errname(a), errname(b));
    }
    if (verbose) {
        printf("%lu: %s -> %s\n", step_no, what, errname(a));
    }
}

/* Remember which zones are implicitly open, to count implicit closes. */
static unsigned char prev_cond[1 << 16];

static bool may_close_implicitly;

static void note_conditions(void)
{
    unsigned i;

    for (i = 0; i < nr_zones && i < sizeof(prev_cond); i++) {
        unsigned c = ref.rep->zones[i].cond;

        if (may_close_implicitly && prev_cond[i] == BLK_ZONE_COND_IMP_OPEN &&
            c == BLK_ZONE_COND_CLOSED) {
            n_implicit_close++;
        }
        prev_cond[i] = c;
    }
}

static uint64_t pick_len(uint64_t room, uint64_t max_io)
{
    uint64_t lim = room < max_io ? room : max_io;
    uint64_t blocks = lim / BLOCK;

    if (!blocks) {
        return BLOCK;
    }
    switch (rnd_below(8)) {
    case 0:
        return blocks * BLOCK;              /* as much as fits */
    case 1:
    case 2:
        return (1 + rnd_below(blocks)) * BLOCK;
    default:
        return (1 + rnd_below(blocks < 16 ? blocks : 16)) * BLOCK;
    }
}

static void fill_wbuf(uint64_t len)
{
    uint64_t i;

    for (i = 0; i < len; i += 8) {
        uint64_t v = rnd();

        memcpy(wbuf + i, &v, 8);
    }
}

/* A random zone; often an active one, so that zones fill up and free
 * their slots instead of the sequence sitting at the active limit. */
static unsigned pick_zone(void)
{
    unsigned active[1024], n = 0, i;

    if (rnd_below(10) < 6) {
        for (i = 0; i < nr_zones && n < 1024; i++) {
            unsigned c = ref.rep->zones[i].cond;

            if (c == BLK_ZONE_COND_IMP_OPEN || c == BLK_ZONE_COND_EXP_OPEN ||
                c == BLK_ZONE_COND_CLOSED) {
                active[n++] = i;
            }
        }
        if (n) {
            return active[rnd_below(n)];
        }
    }
    return rnd_below(nr_zones);
}

static void step_write(uint64_t max_io)
{
    unsigned z = pick_zone();
    struct blk_zone *zn = &ref.rep->zones[z];
    uint64_t start = zn->start * SECTOR, cap = zn->capacity * SECTOR;
    uint64_t zlen = zn->len * SECTOR;
    uint64_t wp = zn->wp * SECTOR, off, len;
    unsigned kind = rnd_below(20);
    char what[128];
    int a, b;

    if (is_conv(z)) {
        off = start + rnd_below(zlen / BLOCK) * BLOCK;
        len = pick_len(start + zlen - off, max_io);
    } else if (kind == 0) {
        /* Past the write pointer: refused. */
        off = wp + BLOCK * (1 + rnd_below(4));
        if (off >= start + zlen) {
            off = start + zlen - BLOCK;
        }
        len = BLOCK;
    } else if (kind == 1 && wp > start) {
        /* Below the write pointer: refused. */
        off = wp - BLOCK;
        len = BLOCK;
    } else if (kind == 2 && cap < zlen) {
        /* Across the capacity, still inside the zone. */
        off = zn->cond == BLK_ZONE_COND_FULL ? start : wp;
        len = pick_len(start + zlen - off, max_io);
        if (off + len <= start + cap) {
            len = start + cap - off + BLOCK;
            if (len > max_io || off + len > start + zlen) {
                len = BLOCK;
            }
        }
    } else if (kind == 3) {
        /* Misaligned for the 4 KiB logical block: the kernel refuses. */
        off = (zn->cond == BLK_ZONE_COND_FULL ? start : wp) + 512;
        len = BLOCK;
    } else {
        /* At the write pointer (a FULL zone: at its start, refused). */
        off = zn->cond == BLK_ZONE_COND_FULL ? start : wp;
        len = pick_len(start + cap > off ? start + cap - off : BLOCK, max_io);
    }
    if (off + len > start + zlen) {
        len = start + zlen - off;
    }
    fill_wbuf(len);
    may_close_implicitly = true;
    snprintf(what, sizeof(what), "write zone %u +0x%llx len 0x%llx", z,
             (unsigned long long)(off - start), (unsigned long long)len);
    a = do_write(&ref, off, len);
    b = do_write(&dut, off, len);
    check_result(what, a, b);
    if (a == ETOOMANYREFS) {
        n_limit_open++;
    } else if (a == EOVERFLOW) {
        n_limit_active++;
    }
    if (a) {
        n_write_err++;
    } else {
        n_write_ok++;
    }
}

static void step_zone_op(void)
{
    static const struct { unsigned long req; const char *name; } ops[] = {
        { BLKOPENZONE, "open" }, { BLKCLOSEZONE, "close" },
        { BLKFINISHZONE, "finish" }, { BLKRESETZONE, "reset" },
    };
    unsigned o = rnd_below(10);
    unsigned z = rnd_below(nr_zones), n = 1;
    uint64_t off, len;
    char what[96];
    int a, b;

    /* Opens most often: they drive the zones into the limits. */
    o = o < 4 ? 0 : o < 6 ? 1 : o < 8 ? 2 : 3;
    if (rnd_below(8) == 0) {
        n = 1 + rnd_below(3);
        if (z + n > nr_zones) {
            n = nr_zones - z;
        }
    }
    off = ref.rep->zones[z].start * SECTOR;
    len = (ref.rep->zones[z + n - 1].start + ref.rep->zones[z + n - 1].len) *
          SECTOR - off;
    /* An open may close another zone implicitly (not the ones it acts
     * on, which end EXP_OPEN or keep their condition). */
    may_close_implicitly = o == 0;
    snprintf(what, sizeof(what), "%s zones %u..%u", ops[o].name, z, z + n - 1);
    a = do_zone_op(&ref, ops[o].req, off, len);
    b = do_zone_op(&dut, ops[o].req, off, len);
    check_result(what, a, b);
    if (a == ETOOMANYREFS) {
        n_limit_open++;
    } else if (a == EOVERFLOW) {
        n_limit_active++;
    }
    if (!a && ops[o].req == BLKFINISHZONE) {
        n_full++;
    }
}

static void step_reset_all(void)
{
    struct blk_zone *last = &ref.rep->zones[nr_zones - 1];
    uint64_t len = (last->start + last->len) * SECTOR;
    int a = do_zone_op(&ref, BLKRESETZONE, 0, len);
    int b = do_zone_op(&dut, BLKRESETZONE, 0, len);

    check_result("reset all", a, b);
    n_reset_all++;
}

/* Read a piece of a zone below its write pointer (all of a conventional
 * zone, up to the capacity of a FULL one) from both and compare. */
static void step_read(uint64_t max_io)
{
    unsigned z = rnd_below(nr_zones);
    struct blk_zone *zn = &ref.rep->zones[z];
    uint64_t start = zn->start * SECTOR, end, off, len;
    char what[96];
    int a, b;

    if (is_conv(z)) {
        end = start + zn->len * SECTOR;
    } else if (zn->cond == BLK_ZONE_COND_FULL) {
        end = start + zn->capacity * SECTOR;
    } else {
        end = zn->wp * SECTOR;
    }
    if (end <= start) {
        return;
    }
    off = start + rnd_below((end - start) / BLOCK) * BLOCK;
    len = pick_len(end - off, max_io);
    snprintf(what, sizeof(what), "read zone %u +0x%llx len 0x%llx", z,
             (unsigned long long)(off - start), (unsigned long long)len);
    a = do_read(&ref, rbuf_ref, off, len);
    b = do_read(&dut, rbuf_dut, off, len);
    check_result(what, a, b);
    if (!a && memcmp(rbuf_ref, rbuf_dut, len)) {
        uint64_t i = 0;

        while (rbuf_ref[i] == rbuf_dut[i]) {
            i++;
        }
        differ("%s: data differ at +0x%llx", what,
               (unsigned long long)(off - start + i));
    }
    n_reads++;
}

static int monitor(const char *stop, const char *path)
{
    unsigned max_open = 0, max_active = 0;

    dev_open(&ref, path);
    nr_zones = ref.nr_zones;
    ref.rep = calloc(1, sizeof(*ref.rep) + nr_zones * sizeof(struct blk_zone));
    if (!ref.rep) {
        return 2;
    }
    while (access(stop, F_OK) != 0) {
        unsigned open, closed;

        if (report(&ref)) {
            fprintf(stderr, "zone-diff: %s: report failed\n", path);
            return 2;
        }
        open = count_cond(BLK_ZONE_COND_IMP_OPEN) +
               count_cond(BLK_ZONE_COND_EXP_OPEN);
        closed = count_cond(BLK_ZONE_COND_CLOSED);
        max_open = open > max_open ? open : max_open;
        max_active = open + closed > max_active ? open + closed : max_active;
        usleep(1000);
    }
    printf("%u %u\n", max_open, max_active);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long steps = 5000, i;
    const char *stop = NULL;
    bool need_limits = false;
    uint64_t max_io;
    int c;

    while ((c = getopt(argc, argv, "s:n:lvm:")) != -1) {
        switch (c) {
        case 'm': stop = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'n': steps = strtoul(optarg, NULL, 0); break;
        case 'l': need_limits = true; break;
        case 'v': verbose = true; break;
        default: goto usage;
        }
    }
    if (stop && argc - optind == 1) {
        return monitor(stop, argv[optind]);
    }
    if (argc - optind != 2) {
usage:
        fprintf(stderr, "usage: zone-diff [-s SEED] [-n STEPS] [-l] [-v] "
                "REFERENCE DUT\n       zone-diff -m STOPFILE DEV\n");
        return 2;
    }
    dev_open(&ref, argv[optind]);
    dev_open(&dut, argv[optind + 1]);
    if (ref.nr_zones != dut.nr_zones || ref.lbs != dut.lbs) {
        fprintf(stderr, "zone-diff: geometry differs: %u/%u zones, "
                "block %llu/%llu\n", ref.nr_zones, dut.nr_zones,
                (unsigned long long)ref.lbs, (unsigned long long)dut.lbs);
        return 2;
    }
    nr_zones = ref.nr_zones;
    max_io = ref.max_io < dut.max_io ? ref.max_io : dut.max_io;
    if (max_io > zone_len) {
        max_io = zone_len;
    }
    ref.rep = calloc(1, sizeof(*ref.rep) + nr_zones * sizeof(struct blk_zone));
    dut.rep = calloc(1, sizeof(*dut.rep) + nr_zones * sizeof(struct blk_zone));
    if (!ref.rep || !dut.rep ||
        posix_memalign((void **)&wbuf, BLOCK, max_io) ||
        posix_memalign((void **)&rbuf_ref, BLOCK, max_io) ||
        posix_memalign((void **)&rbuf_dut, BLOCK, max_io)) {
        fprintf(stderr, "zone-diff: out of memory\n");
        return 2;
    }
    rng_state = seed;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("zone-diff: seed %" PRIu64 ", %lu steps, %u zones of 0x%llx, "
           "max I/O 0x%llx\n", seed, steps, nr_zones,
           (unsigned long long)zone_len, (unsigned long long)max_io);

    /* Start both from the same state: every sequential zone empty, and
     * the conventional zones' contents equal (zeroed). */
    step_no = 0;
    check_result("initial reset all", do_zone_op(&ref, BLKRESETZONE, 0,
                                                 nr_zones * zone_len),
                 do_zone_op(&dut, BLKRESETZONE, 0, nr_zones * zone_len));
    compare_reports();
    for (i = 0; i < nr_zones; i++) {
        if (is_conv(i)) {
            uint64_t off;

            memset(wbuf, 0, max_io);
            for (off = 0; off < zone_len; off += max_io) {
                uint64_t len = zone_len - off < max_io ? zone_len - off
                                                       : max_io;
                uint64_t at = ref.rep->zones[i].start * SECTOR + off;

                if (do_write(&ref, at, len) || do_write(&dut, at, len)) {
                    fprintf(stderr, "zone-diff: cannot clear zone %lu\n", i);
                    return 2;
                }
            }
        }
    }
    note_conditions();

    for (step_no = 1; step_no <= steps; step_no++) {
        unsigned r = rnd_below(100);

        may_close_implicitly = false;

        if (r < 55) {
            step_write(max_io);
        } else if (r < 85) {
            step_zone_op();
        } else if (r < 97) {
            step_read(max_io);
        } else if (rnd_below(3) == 0) {
            step_reset_all();
        } else {
            /* Close every open zone, so the next writes reopen them. */
            unsigned z;

            for (z = 0; z < nr_zones; z++) {
                unsigned cnd = ref.rep->zones[z].cond;

                if (cnd == BLK_ZONE_COND_IMP_OPEN ||
                    cnd == BLK_ZONE_COND_EXP_OPEN) {
                    uint64_t off = ref.rep->zones[z].start * SECTOR;

                    check_result("close open zone",
                                 do_zone_op(&ref, BLKCLOSEZONE, off, zone_len),
                                 do_zone_op(&dut, BLKCLOSEZONE, off, zone_len));
                }
            }
        }
        compare_reports();
        note_conditions();
    }
    printf("zone-diff: seed %" PRIu64 ": %lu steps agree; writes %lu ok %lu "
           "failed, %lu reads, %lu finishes, %lu resets of all, open limit "
           "hit %lu, active limit hit %lu, implicit closes %lu, "
           "now %u open\n", seed, steps, n_write_ok, n_write_err, n_reads,
           n_full, n_reset_all, n_limit_open, n_limit_active,
           n_implicit_close,
           count_cond(BLK_ZONE_COND_IMP_OPEN) +
           count_cond(BLK_ZONE_COND_EXP_OPEN));
    if (need_limits && (!n_limit_open || !n_implicit_close)) {
        fprintf(stderr, "zone-diff: the sequence did not reach the limits "
                "(open limit hit %lu, implicit closes %lu)\n",
                n_limit_open, n_implicit_close);
        return 1;
    }
    return 0;
}
