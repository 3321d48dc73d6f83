/*
 * Unit tests for the export registry (block/export/export.c), drained
 * sections (block/io.c) and the BlockBackend accessors exports use, with
 * a fake export type and an in-memory protocol whose requests the test
 * can hold in flight.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/error.h"
#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/export.h"

/* ---- "holdmem": 1 MiB in memory; requests can be held in flight ------ */

#define HM_SIZE (1 * MiB)

typedef struct HoldMemState {
    uint8_t *buf;
    bool zoned;
} HoldMemState;

static bool hm_hold;            /* new requests wait in hm_held */
static CoQueue hm_held;
static unsigned int hm_waiting;
static unsigned int hm_reads, hm_writes;   /* requests the driver saw */

static int coroutine_fn hm_open(BlockDriverState *bs, QDict *options,
                                int flags, Error **errp)
{
    HoldMemState *s = bs->opaque;
    const char *z = qdict_get_try_str(options, "zoned");

    s->zoned = z && !strcmp(z, "on");
    qdict_del(options, "zoned");
    s->buf = g_malloc0(HM_SIZE);
    return 0;
}

static void coroutine_fn hm_close(BlockDriverState *bs)
{
    HoldMemState *s = bs->opaque;

    g_free(s->buf);
}

static void hm_refresh_limits(BlockDriverState *bs, Error **errp)
{
    HoldMemState *s = bs->opaque;

    bs->bl.request_alignment = 4096;
    if (s->zoned) {
        bs->bl.zoned = BLK_Z_HM;
        bs->bl.zone_size = 64 * KiB;
        bs->bl.zone_capacity = 48 * KiB;
        bs->bl.nr_zones = HM_SIZE / (64 * KiB);
        bs->bl.nr_conv_zones = 2;
        bs->bl.max_open_zones = 3;
        bs->bl.max_active_zones = 5;
        bs->bl.max_append_sectors = 128;
        bs->bl.write_granularity = 8192;
    }
}

/* Every request leaves the loop at least once, as real I/O does. */
static void coroutine_fn hm_wait(void)
{
    if (hm_hold) {
        hm_waiting++;
        qemu_co_queue_wait(&hm_held, NULL);
        hm_waiting--;
    } else {
        aio_co_schedule(qemu_get_current_aio_context(),
                        qemu_coroutine_self());
        qemu_coroutine_yield();
    }
}

static int coroutine_fn hm_preadv(BlockDriverState *bs, int64_t offset,
                                  int64_t bytes, QEMUIOVector *qiov,
                                  size_t qiov_offset, BdrvRequestFlags flags)
{
    HoldMemState *s = bs->opaque;

    hm_reads++;
    hm_wait();
    qemu_iovec_from_buf(qiov, qiov_offset, s->buf + offset, bytes);
    return 0;
}

static int coroutine_fn hm_pwritev(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, QEMUIOVector *qiov,
                                   size_t qiov_offset, BdrvRequestFlags flags)
{
    HoldMemState *s = bs->opaque;

    hm_writes++;
    hm_wait();
    qemu_iovec_to_buf(qiov, qiov_offset, s->buf + offset, bytes);
    return 0;
}

static int64_t coroutine_fn hm_getlength(BlockDriverState *bs)
{
    return HM_SIZE;
}

static BlockDriver bdrv_holdmem = {
    .format_name = "holdmem",
    .protocol_name = "holdmem",
    .instance_size = sizeof(HoldMemState),
    .bdrv_co_open = hm_open,
    .bdrv_co_close = hm_close,
    .bdrv_refresh_limits = hm_refresh_limits,
    .bdrv_co_preadv_part = hm_preadv,
    .bdrv_co_pwritev_part = hm_pwritev,
    .bdrv_co_getlength = hm_getlength,
};

static void hm_release_all(void)
{
    hm_hold = false;
    qemu_co_queue_restart_all(&hm_held);
}

/* ---- the "fake" export ------------------------------------------------ */

typedef struct FakeExport {
    bool polling;               /* would take new requests */
    unsigned int drained_begins, drained_ends;
    bool shutdown_requested;
    unsigned int completed_at_shutdown;
} FakeExport;

typedef struct FakeRequest {
    BlockExport *exp;
    QEMUIOVector qiov;
    uint8_t buf[4096];
} FakeRequest;

/* What the registry did, as the driver saw it. */
static unsigned int fake_creates, fake_deletes;
static unsigned int fake_completed;         /* requests done */
static unsigned int fake_completed_at_delete;
static FakeExport fake_last;                /* copy taken at delete */

static int fake_create(BlockExport *exp, QDict *opts, Error **errp)
{
    FakeExport *f = exp->opaque;
    const char *fail = qdict_get_try_str(opts, "fail");

    if (fail && !strcmp(fail, "on")) {
        error_setg(errp, "fake export refuses to start");
        return -EINVAL;
    }
    qdict_del(opts, "fail");
    qdict_del(opts, "fake-opt");
    f->polling = true;
    fake_creates++;
    return 0;
}

static void fake_request_shutdown(BlockExport *exp)
{
    FakeExport *f = exp->opaque;

    f->polling = false;
    f->shutdown_requested = true;
    f->completed_at_shutdown = fake_completed;
}

static void fake_delete(BlockExport *exp)
{
    FakeExport *f = exp->opaque;

    g_assert_cmpuint(exp->refcount, ==, 0);
    fake_deletes++;
    fake_completed_at_delete = fake_completed;
    fake_last = *f;
}

static void fake_drained_begin(BlockExport *exp)
{
    FakeExport *f = exp->opaque;

    f->polling = false;
    f->drained_begins++;
}

static void fake_drained_end(BlockExport *exp)
{
    FakeExport *f = exp->opaque;

    f->polling = true;
    f->drained_ends++;
}

static const BlockExportDriver fake_export = {
    .type = "fake",
    .instance_size = sizeof(FakeExport),
    .create = fake_create,
    .request_shutdown = fake_request_shutdown,
    .delete = fake_delete,
    .drained_begin = fake_drained_begin,
    .drained_end = fake_drained_end,
};

static void fake_request_done(void *opaque, int ret)
{
    FakeRequest *r = opaque;
    unsigned int deletes = fake_deletes;

    g_assert_cmpint(ret, ==, 0);
    fake_completed++;
    blk_exp_unref(r->exp);
    /*
     * Even the last reference must not delete the export (and free its
     * BlockBackend) under this callback: blk_aio's completion code
     * still uses the BlockBackend after we return.
     */
    g_assert_cmpuint(fake_deletes, ==, deletes);
    g_free(r);
}

/* What a real export does per request: hold a reference while it runs. */
static void fake_submit_read(BlockExport *exp, int64_t offset)
{
    FakeRequest *r = g_new0(FakeRequest, 1);

    r->exp = exp;
    blk_exp_ref(exp);
    qemu_iovec_init_buf(&r->qiov, r->buf, sizeof(r->buf));
    blk_aio_preadv(exp->blk, offset, &r->qiov, 0, fake_request_done, r);
}

/* ---- helpers ------------------------------------------------------------ */

static void reset_counters(void)
{
    fake_creates = fake_deletes = fake_completed = 0;
    fake_completed_at_delete = 0;
    memset(&fake_last, 0, sizeof(fake_last));
    hm_reads = hm_writes = 0;
    hm_hold = false;
}

static QDict *kv(const char *s)
{
    return qdict_parse_keyval(s, NULL, &error_abort);
}

static BlockDriverState *open_node(const char *opts)
{
    return bdrv_open(NULL, kv(opts), BDRV_O_RDWR, &error_abort);
}

static void run_loop(unsigned int n)
{
    while (n--) {
        aio_poll(qemu_get_aio_context(), false);
    }
}

/* blk_exp_add must fail with exactly @msg and leave nothing registered. */
static void expect_add_error(const char *opts, const char *msg)
{
    Error *err = NULL;

    g_assert_null(blk_exp_add(kv(opts), &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, msg);
    error_free(err);
    g_assert_false(blk_exp_any());
}

/* ---- tests ----------------------------------------------------------- */

static void test_drained_stops_export(void)
{
    BlockDriverState *bs;
    BlockExport *exp;
    FakeExport *f;

    reset_counters();
    bs = open_node("driver=holdmem,node-name=mem0");
    exp = blk_exp_add(kv("type=fake,id=e0,node-name=mem0,writable=on"),
                      &error_abort);
    f = exp->opaque;
    g_assert_true(f->polling);
    g_assert_true(exp->writable);
    g_assert_true(blk_exp_find("e0") == exp);

    /* A request in flight: the section waits for it. */
    fake_submit_read(exp, 0);
    g_assert_cmpuint(hm_reads, ==, 1);
    g_assert_cmpuint(fake_completed, ==, 0);
    bdrv_drained_begin(bs);
    g_assert_cmpuint(fake_completed, ==, 1);
    g_assert_false(f->polling);
    g_assert_cmpuint(f->drained_begins, ==, 1);

    /* Sections nest; the export hears the outermost one only. */
    bdrv_drained_begin(bs);
    g_assert_cmpuint(f->drained_begins, ==, 1);

    /* Started anyway while drained: waits before reaching the node. */
    fake_submit_read(exp, 4096);
    run_loop(20);
    g_assert_cmpuint(hm_reads, ==, 1);
    g_assert_cmpuint(fake_completed, ==, 1);

    bdrv_drained_end(bs);
    run_loop(20);
    g_assert_cmpuint(f->drained_ends, ==, 0);
    g_assert_cmpuint(hm_reads, ==, 1);

    bdrv_drained_end(bs);
    g_assert_cmpuint(f->drained_ends, ==, 1);
    g_assert_true(f->polling);
    AIO_WAIT_WHILE(qemu_get_aio_context(), fake_completed < 2);
    g_assert_cmpuint(hm_reads, ==, 2);

    blk_exp_close_all();
    g_assert_cmpuint(fake_deletes, ==, 1);
    g_assert_null(blk_exp_find("e0"));
    bdrv_unref(bs);
}

/* A section on a child node reaches the export on its parent. */
static void test_drained_child_reaches_export(void)
{
    BlockDriverState *top, *file;
    BlockExport *exp;
    FakeExport *f;

    reset_counters();
    top = open_node("driver=raw,node-name=top,file.driver=holdmem,"
                    "file.node-name=mem1");
    file = bdrv_find_node("mem1");
    g_assert_nonnull(file);
    g_assert_true(bdrv_find_node("top") == top);
    exp = blk_exp_add(kv("type=fake,id=e1,node-name=top"), &error_abort);
    f = exp->opaque;
    g_assert_false(exp->writable);

    fake_submit_read(exp, 0);
    bdrv_drained_begin(file);
    g_assert_cmpuint(fake_completed, ==, 1);
    g_assert_cmpuint(f->drained_begins, ==, 1);
    g_assert_cmpuint(top->quiesce_counter, ==, 1);
    fake_submit_read(exp, 0);
    run_loop(20);
    g_assert_cmpuint(hm_reads, ==, 1);
    bdrv_drained_end(file);
    g_assert_cmpuint(f->drained_ends, ==, 1);
    g_assert_cmpuint(top->quiesce_counter, ==, 0);
    AIO_WAIT_WHILE(qemu_get_aio_context(), fake_completed < 2);

    blk_exp_close_all();
    bdrv_unref(top);
    g_assert_null(bdrv_find_node("mem1"));
    g_assert_null(bdrv_find_node("top"));
}

/* A drained section entered from a coroutine (snapshot, amend) works. */
typedef struct CoDrain {
    BlockDriverState *bs;
    bool done;
} CoDrain;

static void coroutine_fn co_drain_entry(void *opaque)
{
    CoDrain *c = opaque;

    bdrv_drained_begin(c->bs);
    g_assert_cmpuint(fake_completed, ==, 1);
    bdrv_drained_end(c->bs);
    c->done = true;
}

static void test_drained_in_coroutine(void)
{
    CoDrain c = { 0 };
    BlockExport *exp;

    reset_counters();
    c.bs = open_node("driver=holdmem,node-name=mem2");
    exp = blk_exp_add(kv("type=fake,id=e2,node-name=mem2"), &error_abort);
    fake_submit_read(exp, 0);
    qemu_coroutine_enter(qemu_coroutine_create(co_drain_entry, &c));
    AIO_WAIT_WHILE(qemu_get_aio_context(), !c.done);
    g_assert_cmpuint(((FakeExport *)exp->opaque)->drained_ends, ==, 1);
    blk_exp_close_all();
    bdrv_unref(c.bs);
}

static void release_bh(void *opaque)
{
    /* close_all is waiting: the export must still be there. */
    g_assert_cmpuint(fake_deletes, ==, 0);
    g_assert_true(blk_exp_any());
    hm_release_all();
}

static void test_shutdown_waits_for_requests(void)
{
    BlockDriverState *bs;
    BlockExport *exp;

    reset_counters();
    bs = open_node("driver=holdmem,node-name=mem3");
    exp = blk_exp_add(kv("type=fake,id=e3,node-name=mem3"), &error_abort);
    hm_hold = true;
    fake_submit_read(exp, 0);
    fake_submit_read(exp, 4096);
    fake_submit_read(exp, 8192);
    g_assert_cmpuint(hm_waiting, ==, 3);
    g_assert_cmpuint(exp->refcount, ==, 4);

    aio_bh_schedule_oneshot(qemu_get_aio_context(), release_bh, NULL);
    blk_exp_close_all();
    g_assert_true(fake_last.shutdown_requested);
    g_assert_cmpuint(fake_last.completed_at_shutdown, ==, 0);
    g_assert_cmpuint(fake_completed_at_delete, ==, 3);
    g_assert_cmpuint(fake_deletes, ==, 1);
    g_assert_false(blk_exp_any());
    /* The export's BlockBackend is gone: only our reference is left. */
    g_assert_cmpint(bs->refcnt, ==, 1);
    bdrv_unref(bs);
}

static void test_add_errors(void)
{
    BlockDriverState *bs, *ro;
    BlockExport *exp;

    reset_counters();
    bs = open_node("driver=holdmem,node-name=mem4");
    ro = bdrv_open(NULL, kv("driver=holdmem,node-name=ro4,read-only=on"),
                   0, &error_abort);

    expect_add_error("id=x,node-name=mem4", "Parameter 'type' is missing");
    expect_add_error("type=fake,node-name=mem4", "Parameter 'id' is missing");
    expect_add_error("type=fake,id=x", "Parameter 'node-name' is missing");
    expect_add_error("type=nope,id=x,node-name=mem4",
                     "Unknown export type 'nope'");
    expect_add_error("type=fake,id=x,node-name=nope",
                     "Cannot find node 'nope'");
    expect_add_error("type=fake,id=x,node-name=mem4,writable=maybe",
                     "Parameter 'writable' expects 'on' or 'off'");
    expect_add_error("type=fake,id=x,node-name=ro4,writable=on",
                     "Cannot export read-only node 'ro4' as writable");
    g_assert_cmpuint(fake_creates, ==, 0);

    /* The driver fails: nothing to delete, nothing left attached. */
    expect_add_error("type=fake,id=x,node-name=mem4,fail=on",
                     "fake export refuses to start");
    g_assert_cmpuint(fake_deletes, ==, 0);
    g_assert_cmpint(bs->refcnt, ==, 1);

    /* A key nobody took: the export that was created is torn down. */
    expect_add_error("type=fake,id=x,node-name=mem4,fake-opt=1,bogus=2",
                     "Export type 'fake' does not support the option "
                     "'bogus'");
    g_assert_cmpuint(fake_creates, ==, 1);
    g_assert_cmpuint(fake_deletes, ==, 1);
    g_assert_true(fake_last.shutdown_requested);
    g_assert_cmpint(bs->refcnt, ==, 1);

    /* A read-only export of a read-only node is fine; ids are unique. */
    exp = blk_exp_add(kv("type=fake,id=x,node-name=ro4,writable=off"),
                      &error_abort);
    g_assert_nonnull(exp);
    {
        Error *err = NULL;

        g_assert_null(blk_exp_add(kv("type=fake,id=x,node-name=mem4"),
                                  &err));
        g_assert_cmpstr(error_get_pretty(err), ==,
                        "Export 'x' already exists");
        error_free(err);
    }
    blk_exp_close_all();
    g_assert_false(blk_exp_any());
    bdrv_unref(ro);
    bdrv_unref(bs);
}

static void test_accessors(void)
{
    BlockDriverState *plain, *zoned;
    BlockBackend *blk;
    BlockZoneGeometry geo;

    plain = open_node("driver=holdmem,node-name=plain");
    zoned = open_node("driver=holdmem,node-name=zoned,zoned=on");

    blk = blk_new_with_perm(plain, BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL,
                            &error_abort);
    blk_get_zone_geometry(blk, &geo);
    g_assert_cmpint(geo.model, ==, BLK_Z_NONE);
    g_assert_cmpuint(geo.zone_size, ==, 0);
    g_assert_cmpuint(geo.nr_zones, ==, 0);
    g_assert_cmpuint(blk_get_logical_block_size(blk), ==, 4096);
    blk_unref(blk);

    blk = blk_new_with_perm(zoned, BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL,
                            &error_abort);
    blk_get_zone_geometry(blk, &geo);
    g_assert_cmpint(geo.model, ==, BLK_Z_HM);
    g_assert_cmpuint(geo.zone_size, ==, 64 * KiB);
    g_assert_cmpuint(geo.zone_capacity, ==, 48 * KiB);
    g_assert_cmpuint(geo.nr_zones, ==, 16);
    g_assert_cmpuint(geo.nr_conv_zones, ==, 2);
    g_assert_cmpuint(geo.max_open_zones, ==, 3);
    g_assert_cmpuint(geo.max_active_zones, ==, 5);
    g_assert_cmpuint(geo.max_append_bytes, ==, 64 * KiB);
    g_assert_cmpuint(blk_get_logical_block_size(blk), ==, 8192);
    blk_unref(blk);

    bdrv_unref(zoned);
    bdrv_unref(plain);
}

/* dev ops set inside a section hear its begin at once, then its end. */
static unsigned int ops_begins, ops_ends;

static void ops_begin(void *opaque)
{
    ops_begins++;
}

static void ops_end(void *opaque)
{
    ops_ends++;
}

static const BlockDevOps test_ops = {
    .drained_begin = ops_begin,
    .drained_end = ops_end,
};

static void test_dev_ops_inside_section(void)
{
    BlockDriverState *bs = open_node("driver=holdmem,node-name=mem5");
    BlockBackend *blk;

    bdrv_drained_begin(bs);
    blk = blk_new_with_perm(bs, BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL,
                            &error_abort);
    blk_set_dev_ops(blk, &test_ops, NULL);
    g_assert_cmpuint(ops_begins, ==, 1);
    bdrv_drained_end(bs);
    g_assert_cmpuint(ops_ends, ==, 1);
    blk_unref(blk);
    bdrv_unref(bs);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    bdrv_init();
    bdrv_register(&bdrv_holdmem);
    blk_exp_register(&fake_export);
    qemu_co_queue_init(&hm_held);

    g_test_add_func("/export/drained-stops-export",
                    test_drained_stops_export);
    g_test_add_func("/export/drained-child-reaches-export",
                    test_drained_child_reaches_export);
    g_test_add_func("/export/drained-in-coroutine",
                    test_drained_in_coroutine);
    g_test_add_func("/export/shutdown-waits-for-requests",
                    test_shutdown_waits_for_requests);
    g_test_add_func("/export/add-errors", test_add_errors);
    g_test_add_func("/export/accessors", test_accessors);
    g_test_add_func("/export/dev-ops-inside-section",
                    test_dev_ops_inside_section);
    return g_test_run();
}
