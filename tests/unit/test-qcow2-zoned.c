/*
 * Zoned qcow2: concurrent zone appends, write-pointer persistence
 * (written at flush, not per write), and large zone counts.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/aio.h"
#include "qemu/cutils.h"
#include "../../block/qcow2.h"

#define ZONE (1024 * 1024)

static char *make_zoned(const char *name, const char *opts, uint64_t size)
{
    char *path = g_strdup_printf("%s/%s-%d.qcow2", g_get_tmp_dir(), name,
                                 (int)getpid());
    g_autofree char *o = g_strdup_printf("zone.mode=host-managed,%s", opts);
    Error *err = NULL;

    if (bdrv_img_create(path, "qcow2", NULL, NULL, o, size, 0, true,
                        &err) < 0) {
        g_printerr("create: %s\n", error_get_pretty(err));
        g_assert_not_reached();
    }
    return path;
}

static BlockBackend *open_rw(const char *path)
{
    g_autofree char *str = g_strdup_printf("driver=qcow2,file.filename=%s",
                                           path);
    QDict *opts = qdict_parse_keyval(str, NULL, &error_abort);
    BlockBackend *blk = blk_new_open(NULL, opts, BDRV_O_RDWR, &error_abort);

    g_assert_nonnull(blk);
    return blk;
}

static uint64_t zone_wp(BlockBackend *blk, int64_t offset)
{
    BlockZoneDescriptor d;
    unsigned int n = 1;

    g_assert_cmpint(blk_zone_report(blk, offset, &n, &d), ==, 0);
    g_assert_cmpuint(n, ==, 1);
    return d.wp;
}

typedef struct AppendOp {
    int64_t offset;
    QEMUIOVector qiov;
    uint8_t *buf;
    size_t len;
    int ret;
    bool done;
} AppendOp;

static void append_cb(void *opaque, int ret)
{
    AppendOp *op = opaque;

    op->ret = ret;
    op->done = true;
}

static int cmp_op(const void *a, const void *b)
{
    const AppendOp *x = *(AppendOp *const *)a, *y = *(AppendOp *const *)b;

    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Many appends in flight to one zone: no overlap, no gap, right data. */
static void test_concurrent_appends(void)
{
    enum { NOPS = 96 };
    g_autofree char *path = make_zoned("zappend",
                                       "zone.size=1M,zone.max_append_bytes=16k",
                                       4 * ZONE);
    BlockBackend *blk = open_rw(path);
    AppendOp ops[NOPS];
    AppendOp *sorted[NOPS];
    uint64_t total = 0, expect;
    int k, in_flight = 0, max_in_flight = 0;

    for (k = 0; k < NOPS; k++) {
        AppendOp *op = &ops[k];

        op->len = 512 * (1 + (k * 7) % 16);
        op->buf = g_malloc(op->len);
        memset(op->buf, k + 1, op->len);
        qemu_iovec_init_buf(&op->qiov, op->buf, op->len);
        op->offset = ZONE;
        op->done = false;
        total += op->len;
        blk_aio_zone_append(blk, &op->offset, &op->qiov, 0, append_cb, op);
    }
    for (k = 0; k < NOPS; k++) {
        in_flight += !ops[k].done;
    }
    max_in_flight = in_flight;
    for (k = 0; k < NOPS; k++) {
        while (!ops[k].done) {
            aio_poll(qemu_get_aio_context(), true);
        }
        g_assert_cmpint(ops[k].ret, ==, 0);
        sorted[k] = &ops[k];
    }
    /* They overlapped in time: the appends were not serialised. */
    g_assert_cmpint(max_in_flight, >, 1);

    qsort(sorted, NOPS, sizeof(sorted[0]), cmp_op);
    expect = ZONE;
    for (k = 0; k < NOPS; k++) {
        uint8_t *back = g_malloc(sorted[k]->len);

        g_assert_cmpuint(sorted[k]->offset, ==, expect);
        expect += sorted[k]->len;
        g_assert_cmpint(blk_pread(blk, sorted[k]->offset, sorted[k]->len,
                                  back, 0), ==, 0);
        g_assert_cmpmem(back, sorted[k]->len, sorted[k]->buf,
                        sorted[k]->len);
        g_free(back);
    }
    g_assert_cmpuint(zone_wp(blk, ZONE), ==, ZONE + total);
    for (k = 0; k < NOPS; k++) {
        g_free(ops[k].buf);
    }
    blk_unref(blk);
    unlink(path);
}

static uint64_t region_entry(const char *path, uint32_t zone)
{
    uint8_t hdr[65536];
    uint32_t hlen, off;
    uint64_t region = 0, e;
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, hdr, sizeof(hdr), 0), ==, sizeof(hdr));
    hlen = ldbe32_p(hdr + 100);
    for (off = hlen; ldbe32_p(hdr + off);
         off += 8 + ROUND_UP(ldbe32_p(hdr + off + 4), 8)) {
        if (ldbe32_p(hdr + off) == QCOW2_EXT_MAGIC_ZONED) {
            region = ldbe64_p(hdr + off + 8 + 48);
        }
    }
    g_assert_cmpuint(region, !=, 0);
    g_assert_cmpint(pread(fd, &e, 8, region + 8 * zone), ==, 8);
    close(fd);
    return be64_to_cpu(e);
}

/* Writes do not touch the region; a flush writes it, after the data. */
static void test_persist_at_flush(void)
{
    g_autofree char *path = make_zoned("zpersist", "zone.size=1M", 4 * ZONE);
    BlockBackend *blk = open_rw(path);
    uint8_t buf[4096];
    int k;

    memset(buf, 0x5a, sizeof(buf));
    for (k = 0; k < 16; k++) {
        g_assert_cmpint(blk_pwrite(blk, 2 * ZONE + k * 4096, 4096, buf, 0),
                        ==, 0);
    }
    g_assert_cmpuint(zone_wp(blk, 2 * ZONE), ==, 2 * ZONE + 16 * 4096);
    g_assert_cmpuint(region_entry(path, 2), ==, 2 * ZONE);
    g_assert_cmpint(blk_flush(blk), ==, 0);
    g_assert_cmpuint(region_entry(path, 2), ==, 2 * ZONE + 16 * 4096);
    g_assert_cmpuint(region_entry(path, 1), ==, ZONE);

    /* A reset is durable when it completes. */
    g_assert_cmpint(blk_zone_mgmt(blk, BLK_ZO_RESET, 2 * ZONE, ZONE), ==, 0);
    g_assert_cmpuint(region_entry(path, 2), ==, 2 * ZONE);
    blk_unref(blk);
    unlink(path);
}

/* A reset with appends in flight: they land before it, nothing after. */
static void test_reset_in_flight(void)
{
    enum { NOPS = 16 };
    g_autofree char *path = make_zoned("zreset", "zone.size=1M", 4 * ZONE);
    BlockBackend *blk = open_rw(path);
    AppendOp ops[NOPS];
    uint8_t buf[4096], back[4096];
    int64_t off = ZONE;
    int k;

    for (k = 0; k < NOPS; k++) {
        ops[k].buf = g_malloc(4096);
        ops[k].len = 4096;
        memset(ops[k].buf, 0x40 + k, 4096);
        qemu_iovec_init_buf(&ops[k].qiov, ops[k].buf, 4096);
        ops[k].offset = ZONE;
        ops[k].done = false;
        blk_aio_zone_append(blk, &ops[k].offset, &ops[k].qiov, 0, append_cb,
                            &ops[k]);
    }
    g_assert_cmpint(blk_zone_mgmt(blk, BLK_ZO_RESET, ZONE, ZONE), ==, 0);
    for (k = 0; k < NOPS; k++) {
        while (!ops[k].done) {
            aio_poll(qemu_get_aio_context(), true);
        }
        g_assert_cmpint(ops[k].ret, ==, 0);
        g_free(ops[k].buf);
    }
    g_assert_cmpuint(zone_wp(blk, ZONE), ==, ZONE);
    g_assert_cmpuint(region_entry(path, 1), ==, ZONE);
    g_assert_cmpint(blk_pread(blk, ZONE, 4096, back, 0), ==, 0);
    memset(buf, 0, sizeof(buf));
    g_assert_cmpmem(back, 4096, buf, 4096);

    /* The zone works normally afterwards. */
    memset(buf, 0x77, sizeof(buf));
    qemu_iovec_init_buf(&ops[0].qiov, buf, 4096);
    g_assert_cmpint(blk_zone_append(blk, &off, &ops[0].qiov, 0), ==, 0);
    g_assert_cmpint(off, ==, ZONE);
    g_assert_cmpint(blk_pread(blk, ZONE, 4096, back, 0), ==, 0);
    g_assert_cmpmem(back, 4096, buf, 4096);
    blk_unref(blk);
    unlink(path);
}

/*
 * Regular sequential writes in flight (the fast path of the zoned write):
 * each is accepted at once, a reset waits for them all, then the zone
 * reads as zeroes and its entry on disk is back at the zone start.
 */
static void test_writes_in_flight(void)
{
    enum { NOPS = 16 };
    g_autofree char *path = make_zoned("zwrites", "zone.size=1M", 4 * ZONE);
    BlockBackend *blk = open_rw(path);
    AppendOp ops[NOPS];
    uint8_t buf[4096], back[4096];
    int k, in_flight = 0;

    for (k = 0; k < NOPS; k++) {
        ops[k].buf = g_malloc(4096);
        memset(ops[k].buf, 0x20 + k, 4096);
        qemu_iovec_init_buf(&ops[k].qiov, ops[k].buf, 4096);
        ops[k].done = false;
        blk_aio_pwritev(blk, ZONE + k * 4096, &ops[k].qiov, 0, append_cb,
                        &ops[k]);
    }
    for (k = 0; k < NOPS; k++) {
        in_flight += !ops[k].done;
    }
    g_assert_cmpint(in_flight, >, 1);
    /* Accepted before completing: the wp covers them all already. */
    g_assert_cmpuint(zone_wp(blk, ZONE), ==, ZONE + NOPS * 4096);
    g_assert_cmpint(blk_zone_mgmt(blk, BLK_ZO_RESET, ZONE, ZONE), ==, 0);
    for (k = 0; k < NOPS; k++) {
        /* The reset returned only after every write had landed. */
        g_assert_true(ops[k].done);
        g_assert_cmpint(ops[k].ret, ==, 0);
        g_free(ops[k].buf);
    }
    g_assert_cmpuint(zone_wp(blk, ZONE), ==, ZONE);
    g_assert_cmpuint(region_entry(path, 1), ==, ZONE);
    memset(buf, 0, sizeof(buf));
    for (k = 0; k < NOPS; k++) {
        g_assert_cmpint(blk_pread(blk, ZONE + k * 4096, 4096, back, 0), ==,
                        0);
        g_assert_cmpmem(back, 4096, buf, 4096);
    }

    /* Writes at the old wp fail; at the zone start they work again. */
    memset(buf, 0x66, sizeof(buf));
    g_assert_cmpint(blk_pwrite(blk, ZONE + NOPS * 4096, 4096, buf, 0), ==,
                    -EINVAL);
    g_assert_cmpint(blk_pwrite(blk, ZONE, 4096, buf, 0), ==, 0);
    g_assert_cmpint(blk_pwrite(blk, ZONE + 4096, 4096, buf, 0), ==, 0);
    g_assert_cmpuint(zone_wp(blk, ZONE), ==, ZONE + 2 * 4096);
    g_assert_cmpint(blk_pread(blk, ZONE + 4096, 4096, back, 0), ==, 0);
    g_assert_cmpmem(back, 4096, buf, 4096);
    g_assert_cmpint(blk_flush(blk), ==, 0);
    g_assert_cmpuint(region_entry(path, 1), ==, ZONE + 2 * 4096);
    blk_unref(blk);
    unlink(path);
}

/* 1,048,576 zones: open, report all, memory per zone. */
static void test_many_zones(void)
{
    g_autofree char *path = make_zoned("zmany", "zone.size=4k",
                                       (uint64_t)4096 * 1048576);
    BlockZoneDescriptor *d = g_new(BlockZoneDescriptor, 65536);
    gint64 t0, t1, t2;
    uint64_t off = 0, n_total = 0;
    BlockBackend *blk;

    t0 = g_get_monotonic_time();
    blk = open_rw(path);
    t1 = g_get_monotonic_time();
    while (off < (uint64_t)4096 * 1048576) {
        unsigned int n = 65536;

        g_assert_cmpint(blk_zone_report(blk, off, &n, d), ==, 0);
        g_assert_cmpuint(n, >, 0);
        n_total += n;
        off = d[n - 1].start + d[n - 1].length;
    }
    t2 = g_get_monotonic_time();
    g_assert_cmpuint(n_total, ==, 1048576);
    g_test_message("1M zones: open %.3f s, report all %.3f s",
                   (t1 - t0) / 1e6, (t2 - t1) / 1e6);
    /* Generous bounds against a loaded machine; the target is 0.5 s. */
    g_assert_cmpint(t1 - t0, <, 2000000);
    g_assert_cmpint(t2 - t1, <, 2000000);
    g_free(d);
    blk_unref(blk);
    unlink(path);
}


/* Perf (-m perf): sequential writes against appends, both at depth 32. */
typedef struct PerfJob {
    BlockBackend *blk;
    bool append;
    int submitted, completed, total;
    int64_t next;
    int64_t offsets[32];
    QEMUIOVector qiov;
} PerfJob;

static void perf_submit(PerfJob *j);

static void perf_cb(void *opaque, int ret)
{
    PerfJob *j = *(PerfJob **)opaque;

    g_assert_cmpint(ret, ==, 0);
    j->completed++;
    if (j->submitted < j->total) {
        perf_submit(j);
    }
}

static PerfJob *perf_job_ptr;

static void perf_submit(PerfJob *j)
{
    int64_t *off = &j->offsets[j->submitted % 32];

    j->submitted++;
    if (j->append) {
        *off = 0;
        blk_aio_zone_append(j->blk, off, &j->qiov, 0, perf_cb, &perf_job_ptr);
    } else {
        *off = j->next;
        j->next += j->qiov.size;
        blk_aio_pwritev(j->blk, *off, &j->qiov, 0, perf_cb, &perf_job_ptr);
    }
}

static double perf_run(bool zoned, bool append)
{
    g_autofree char *path = zoned ?
        make_zoned("zperf", "zone.size=1G,zone.max_append_bytes=64k",
                   1024 * ZONE) : NULL;
    PerfJob j = { .append = append, .total = 16384 };
    void *buf = qemu_memalign(4096, 65536);
    gint64 t0;
    int k;

    if (!zoned) {
        Error *err = NULL;

        path = g_strdup_printf("%s/zperf-plain-%d.qcow2", g_get_tmp_dir(),
                               (int)getpid());
        g_assert_cmpint(bdrv_img_create(path, "qcow2", NULL, NULL, NULL,
                                        1024 * ZONE, 0, true, &err), ==, 0);
    }
    memset(buf, 0x42, 65536);
    qemu_iovec_init_buf(&j.qiov, buf, 65536);
    j.blk = open_rw(path);
    perf_job_ptr = &j;
    t0 = g_get_monotonic_time();
    for (k = 0; k < 32; k++) {
        perf_submit(&j);
    }
    while (j.completed < j.total) {
        aio_poll(qemu_get_aio_context(), true);
    }
    g_assert_cmpint(blk_flush(j.blk), ==, 0);
    t0 = g_get_monotonic_time() - t0;
    blk_unref(j.blk);
    qemu_vfree(buf);
    unlink(path);
    return t0 / 1e6;
}

static void test_perf(void)
{
    double plain = perf_run(false, false);
    double seq = perf_run(true, false);
    double app = perf_run(true, true);

    g_test_message("1 GiB in 64k requests at depth 32: qcow2 %.3f s, zoned "
                   "writes %.3f s (%+.1f%%), zoned appends %.3f s (%.2fx of "
                   "writes)", plain, seq, (seq / plain - 1) * 100, app,
                   seq / app);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    bdrv_init();
    g_test_add_func("/qcow2-zoned/concurrent-appends", test_concurrent_appends);
    g_test_add_func("/qcow2-zoned/persist-at-flush", test_persist_at_flush);
    g_test_add_func("/qcow2-zoned/reset-in-flight", test_reset_in_flight);
    g_test_add_func("/qcow2-zoned/writes-in-flight", test_writes_in_flight);
    g_test_add_func("/qcow2-zoned/many-zones", test_many_zones);
    if (g_test_perf()) {
        g_test_add_func("/qcow2-zoned/perf", test_perf);
    }
    return g_test_run();
}
