/*
 * Unit tests for the qcow2 metadata cache: hits, LRU eviction, write-back
 * of dirty tables, dependency ordering between caches, discard.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "block/aio.h"
#include "../../block/qcow2.h"

#define TS 4096          /* table size */

typedef struct Fixture {
    char *path;
    BlockDriverState *file_bs;
    BdrvChild child;
    BlockDriverState bs;
    BDRVQcow2State s;
} Fixture;

static void fixture_init(Fixture *f)
{
    Error *err = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-qcow2-cache-XXXXXX", NULL);
    QDict *opts = qdict_new();
    uint8_t *zero = g_malloc0(64 * TS);
    int fd;

    f->path = g_build_filename(dir, "cache.img", NULL);
    fd = open(f->path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    g_assert_cmpint(write(fd, zero, 64 * TS), ==, 64 * TS);
    close(fd);
    g_free(zero);

    qdict_put_str(opts, "driver", "file");
    f->file_bs = bdrv_open(f->path, opts, BDRV_O_RDWR, &err);
    g_assert_nonnull(f->file_bs);

    memset(&f->bs, 0, sizeof(f->bs));
    memset(&f->s, 0, sizeof(f->s));
    f->child.bs = f->file_bs;
    f->child.parent = &f->bs;
    f->child.name = (char *)"file";
    f->bs.file = &f->child;
    f->bs.opaque = &f->s;
    f->s.cluster_size = TS;
    f->s.cluster_bits = 12;
    f->s.overlap_check = 0;
}

static void fixture_fini(Fixture *f)
{
    g_autofree char *dir = g_path_get_dirname(f->path);

    bdrv_unref(f->file_bs);
    unlink(f->path);
    rmdir(dir);
    g_free(f->path);
}

static uint8_t file_byte(Fixture *f, uint64_t offset)
{
    uint8_t b;
    int fd = open(f->path, O_RDONLY);

    g_assert_cmpint(pread(fd, &b, 1, offset), ==, 1);
    close(fd);
    return b;
}

static void set_file_byte(Fixture *f, uint64_t offset, uint8_t b)
{
    int fd = open(f->path, O_WRONLY);

    g_assert_cmpint(pwrite(fd, &b, 1, offset), ==, 1);
    close(fd);
}

typedef struct CoTest {
    void (*fn)(Fixture *f);
    Fixture *f;
    bool done;
} CoTest;

static void coroutine_fn co_entry(void *opaque)
{
    CoTest *t = opaque;

    t->fn(t->f);
    t->done = true;
}

static void run_in_coroutine(void (*fn)(Fixture *f))
{
    Fixture f;
    CoTest t = { fn, &f, false };
    Coroutine *co;

    fixture_init(&f);
    co = qemu_coroutine_create(co_entry, &t);
    qemu_coroutine_enter(co);
    while (!t.done) {
        aio_poll(qemu_get_aio_context(), true);
    }
    fixture_fini(&f);
}

/* ---- tests ------------------------------------------------------------------- */

static void co_hits_and_lru(Fixture *f)
{
    Qcow2Cache *c = qcow2_cache_create(&f->bs, 3, TS, QCOW2_OL_ACTIVE_L2);
    uint8_t *t1, *t2, *t3, *t4, *t;

    set_file_byte(f, 1 * TS, 0x11);
    set_file_byte(f, 2 * TS, 0x22);
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 1 * TS, (void **)&t1), ==, 0);
    g_assert_cmpint(t1[0], ==, 0x11);
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 2 * TS, (void **)&t2), ==, 0);
    g_assert_cmpint(t2[0], ==, 0x22);
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 3 * TS, (void **)&t3), ==, 0);
    qcow2_cache_put(c, (void **)&t1);
    qcow2_cache_put(c, (void **)&t3);
    qcow2_cache_put(c, (void **)&t2);

    /* A hit returns the same memory without reading the file again. */
    set_file_byte(f, 1 * TS, 0x99);
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 1 * TS, (void **)&t), ==, 0);
    g_assert_cmpint(t[0], ==, 0x11);
    g_assert_true(qcow2_cache_peek(c, 1 * TS) == t);
    qcow2_cache_put(c, (void **)&t);

    /* Least recently used now: table 3 (1 and 2 were put later). */
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 4 * TS, (void **)&t4), ==, 0);
    qcow2_cache_put(c, (void **)&t4);
    g_assert_null(qcow2_cache_is_table_offset(c, 3 * TS));
    g_assert_nonnull(qcow2_cache_is_table_offset(c, 1 * TS));
    g_assert_nonnull(qcow2_cache_is_table_offset(c, 2 * TS));
    g_assert_null(qcow2_cache_peek(c, 5 * TS));

    /* All in use: no victim. */
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 1 * TS, (void **)&t1), ==, 0);
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 2 * TS, (void **)&t2), ==, 0);
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 4 * TS, (void **)&t4), ==, 0);
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 5 * TS, (void **)&t), ==,
                    -ENOSPC);
    qcow2_cache_put(c, (void **)&t1);
    qcow2_cache_put(c, (void **)&t2);
    qcow2_cache_put(c, (void **)&t4);
    qcow2_cache_destroy(c);
}

static void co_writeback(Fixture *f)
{
    Qcow2Cache *c = qcow2_cache_create(&f->bs, 2, TS, QCOW2_OL_ACTIVE_L2);
    uint8_t *t;

    g_assert_cmpint(qcow2_cache_get_empty(&f->bs, c, 6 * TS, (void **)&t),
                    ==, 0);
    memset(t, 0x66, TS);
    qcow2_cache_entry_mark_dirty(c, t);
    qcow2_cache_put(c, (void **)&t);
    g_assert_cmpint(file_byte(f, 6 * TS), ==, 0);

    /* Eviction writes the dirty table back. */
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 7 * TS, (void **)&t), ==, 0);
    qcow2_cache_put(c, (void **)&t);
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 8 * TS, (void **)&t), ==, 0);
    qcow2_cache_put(c, (void **)&t);
    g_assert_cmpint(file_byte(f, 6 * TS), ==, 0x66);
    g_assert_cmpint(file_byte(f, 7 * TS - 1), ==, 0x66);
    g_assert_cmpint(file_byte(f, 7 * TS), ==, 0);

    /* Discarded tables are dropped without being written. */
    g_assert_cmpint(qcow2_cache_get(&f->bs, c, 9 * TS, (void **)&t), ==, 0);
    memset(t, 0x99, TS);
    qcow2_cache_entry_mark_dirty(c, t);
    qcow2_cache_put(c, (void **)&t);
    qcow2_cache_discard(c, qcow2_cache_is_table_offset(c, 9 * TS));
    g_assert_cmpint(qcow2_cache_flush(&f->bs, c), ==, 0);
    g_assert_cmpint(file_byte(f, 9 * TS), ==, 0);
    g_assert_null(qcow2_cache_is_table_offset(c, 9 * TS));
    qcow2_cache_destroy(c);
}

static void co_dependency(Fixture *f)
{
    Qcow2Cache *l2 = qcow2_cache_create(&f->bs, 2, TS, QCOW2_OL_ACTIVE_L2);
    Qcow2Cache *rc = qcow2_cache_create(&f->bs, 2, TS,
                                        QCOW2_OL_REFCOUNT_BLOCK);
    uint8_t *t;

    g_assert_cmpint(qcow2_cache_get(&f->bs, rc, 10 * TS, (void **)&t), ==, 0);
    t[0] = 0xaa;
    qcow2_cache_entry_mark_dirty(rc, t);
    qcow2_cache_put(rc, (void **)&t);
    g_assert_cmpint(qcow2_cache_get(&f->bs, l2, 11 * TS, (void **)&t), ==, 0);
    t[0] = 0xbb;
    qcow2_cache_entry_mark_dirty(l2, t);
    qcow2_cache_put(l2, (void **)&t);
    g_assert_cmpint(qcow2_cache_set_dependency(&f->bs, l2, rc), ==, 0);

    /* Writing the L2 cache writes the refcount cache first. */
    g_assert_cmpint(qcow2_cache_write(&f->bs, l2), ==, 0);
    g_assert_cmpint(file_byte(f, 10 * TS), ==, 0xaa);
    g_assert_cmpint(file_byte(f, 11 * TS), ==, 0xbb);

    /* Without a dependency, the other cache is left alone. */
    g_assert_cmpint(qcow2_cache_get(&f->bs, rc, 10 * TS, (void **)&t), ==, 0);
    t[0] = 0xcc;
    qcow2_cache_entry_mark_dirty(rc, t);
    qcow2_cache_put(rc, (void **)&t);
    g_assert_cmpint(qcow2_cache_get(&f->bs, l2, 11 * TS, (void **)&t), ==, 0);
    t[0] = 0xdd;
    qcow2_cache_entry_mark_dirty(l2, t);
    qcow2_cache_put(l2, (void **)&t);
    g_assert_cmpint(qcow2_cache_write(&f->bs, l2), ==, 0);
    g_assert_cmpint(file_byte(f, 11 * TS), ==, 0xdd);
    g_assert_cmpint(file_byte(f, 10 * TS), ==, 0xaa);

    /* Reverse dependency (refcount decrease after L2 update). */
    g_assert_cmpint(qcow2_cache_get(&f->bs, l2, 11 * TS, (void **)&t), ==, 0);
    t[0] = 0xee;
    qcow2_cache_entry_mark_dirty(l2, t);
    qcow2_cache_put(l2, (void **)&t);
    g_assert_cmpint(qcow2_cache_set_dependency(&f->bs, rc, l2), ==, 0);
    g_assert_cmpint(qcow2_cache_flush(&f->bs, rc), ==, 0);
    g_assert_cmpint(file_byte(f, 11 * TS), ==, 0xee);
    g_assert_cmpint(file_byte(f, 10 * TS), ==, 0xcc);

    g_assert_cmpint(qcow2_cache_empty(&f->bs, l2), ==, 0);
    g_assert_null(qcow2_cache_is_table_offset(l2, 11 * TS));
    qcow2_cache_destroy(l2);
    qcow2_cache_destroy(rc);
}

/* Many tables: the hash keeps lookups right across evictions. */
static void co_many(Fixture *f)
{
    Qcow2Cache *c = qcow2_cache_create(&f->bs, 7, TS, QCOW2_OL_ACTIVE_L2);
    uint8_t *t;
    int i, round;

    for (i = 1; i < 64; i++) {
        set_file_byte(f, (uint64_t)i * TS, i);
    }
    for (round = 0; round < 3; round++) {
        for (i = 1; i < 64; i++) {
            int k = (i * 17 + round * 5) % 63 + 1;

            g_assert_cmpint(qcow2_cache_get(&f->bs, c, (uint64_t)k * TS,
                                            (void **)&t), ==, 0);
            g_assert_cmpint(t[0], ==, k);
            qcow2_cache_put(c, (void **)&t);
        }
    }
    qcow2_cache_destroy(c);
}

static void test_hits_and_lru(void)
{
    run_in_coroutine(co_hits_and_lru);
}

static void test_writeback(void)
{
    run_in_coroutine(co_writeback);
}

static void test_dependency(void)
{
    run_in_coroutine(co_dependency);
}

static void test_many(void)
{
    run_in_coroutine(co_many);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop();
    bdrv_init();
    g_test_add_func("/qcow2-cache/hits-and-lru", test_hits_and_lru);
    g_test_add_func("/qcow2-cache/writeback", test_writeback);
    g_test_add_func("/qcow2-cache/dependency", test_dependency);
    g_test_add_func("/qcow2-cache/many", test_many);
    return g_test_run();
}
