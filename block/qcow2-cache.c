/*
 * qcow2 metadata table cache (L2 tables, refcount blocks).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Tables are whole clusters kept in on-disk byte order.  Lookup is a
 * small chained hash on the host offset plus a one-entry "last hit"
 * shortcut, so the read/rewrite path costs a few loads.  Eviction picks
 * the least recently used unreferenced entry.  Write ordering between
 * caches is expressed as a dependency: before any dirty table of a cache
 * is written, the cache it depends on is written and bs->file flushed.
 */
#include "qemu/osdep.h"
#include "qcow2.h"

typedef struct Qcow2CachedTable {
    uint64_t offset;        /* 0: slot empty (offset 0 is the header) */
    uint64_t lru_counter;
    int ref;
    int hash_next;          /* next slot in the bucket chain, -1 = end */
    bool dirty;
} Qcow2CachedTable;

struct Qcow2Cache {
    Qcow2CachedTable *entries;
    uint8_t *table_array;
    int size;
    int table_size;
    int table_shift;
    int overlap_class;
    int *buckets;
    unsigned int bucket_mask;
    int last;               /* slot of the last hit, -1 = none */
    int hand;               /* where the next eviction scan starts */
    Qcow2Cache *depends;
    bool depends_on_flush;
    uint64_t lru_counter;
};

static inline void *cache_table(Qcow2Cache *c, int i)
{
    return c->table_array + ((size_t)i << c->table_shift);
}

static inline int cache_slot_of(Qcow2Cache *c, const void *table)
{
    ptrdiff_t d = (const uint8_t *)table - c->table_array;
    int i = d >> c->table_shift;

    assert(d >= 0 && i < c->size);
    return i;
}

static inline unsigned int cache_hash(Qcow2Cache *c, uint64_t offset)
{
    uint64_t k = offset >> c->table_shift;

    return (unsigned int)((k * UINT64_C(0x9e3779b97f4a7c15)) >> 40) &
           c->bucket_mask;
}

Qcow2Cache *qcow2_cache_create(BlockDriverState *bs, int num_tables,
                               int table_size, int overlap_class)
{
    Qcow2Cache *c;
    unsigned int nb = 1;
    int i;

    assert(num_tables > 0 && is_power_of_2(table_size));
    c = g_new0(Qcow2Cache, 1);
    c->size = num_tables;
    c->table_size = table_size;
    c->table_shift = ctz64(table_size);
    c->overlap_class = overlap_class;
    c->entries = g_new0(Qcow2CachedTable, num_tables);
    c->table_array = qemu_try_blockalign(bs->file ? bs->file->bs : bs,
                                         (size_t)num_tables * table_size);
    if (!c->table_array) {
        g_free(c->entries);
        g_free(c);
        return NULL;
    }
    while (nb < (unsigned int)num_tables * 2) {
        nb <<= 1;
    }
    c->buckets = g_new(int, nb);
    c->bucket_mask = nb - 1;
    for (i = 0; i < (int)nb; i++) {
        c->buckets[i] = -1;
    }
    for (i = 0; i < num_tables; i++) {
        c->entries[i].hash_next = -1;
    }
    c->last = -1;
    return c;
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    int i;

    if (!c) {
        return;
    }
    for (i = 0; i < c->size; i++) {
        assert(c->entries[i].ref == 0);
    }
    qemu_vfree(c->table_array);
    g_free(c->entries);
    g_free(c->buckets);
    g_free(c);
}

int qcow2_cache_get_table_size(Qcow2Cache *c)
{
    return c->table_size;
}

static int cache_find(Qcow2Cache *c, uint64_t offset)
{
    int i;

    if (c->last >= 0 && c->entries[c->last].offset == offset) {
        return c->last;
    }
    for (i = c->buckets[cache_hash(c, offset)]; i >= 0;
         i = c->entries[i].hash_next) {
        if (c->entries[i].offset == offset) {
            return i;
        }
    }
    return -1;
}

static void cache_unlink(Qcow2Cache *c, int i)
{
    int *pp = &c->buckets[cache_hash(c, c->entries[i].offset)];

    while (*pp != i) {
        assert(*pp >= 0);
        pp = &c->entries[*pp].hash_next;
    }
    *pp = c->entries[i].hash_next;
    c->entries[i].hash_next = -1;
    c->entries[i].offset = 0;
    if (c->last == i) {
        c->last = -1;
    }
}

static void cache_link(Qcow2Cache *c, int i, uint64_t offset)
{
    unsigned int h = cache_hash(c, offset);

    c->entries[i].offset = offset;
    c->entries[i].hash_next = c->buckets[h];
    c->buckets[h] = i;
}

static int coroutine_fn cache_flush_dependency(BlockDriverState *bs,
                                               Qcow2Cache *c)
{
    int ret = qcow2_cache_flush(bs, c->depends);

    if (ret < 0) {
        return ret;
    }
    c->depends = NULL;
    c->depends_on_flush = false;
    return 0;
}

static int coroutine_fn cache_entry_flush(BlockDriverState *bs,
                                          Qcow2Cache *c, int i)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = 0;

    if (!c->entries[i].dirty || !c->entries[i].offset) {
        return 0;
    }
    if (c->depends) {
        ret = cache_flush_dependency(bs, c);
    } else if (c->depends_on_flush) {
        ret = bdrv_co_flush(bs->file->bs);
        if (ret >= 0) {
            c->depends_on_flush = false;
        }
    }
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_pre_write_overlap_check(bs, c->overlap_class,
                                        c->entries[i].offset, c->table_size);
    if (ret < 0) {
        return ret;
    }
    (void)s;
    ret = bdrv_co_pwrite(bs->file, c->entries[i].offset, c->table_size,
                         cache_table(c, i), 0);
    if (ret < 0) {
        return ret;
    }
    c->entries[i].dirty = false;
    return 0;
}

int coroutine_fn qcow2_cache_write(BlockDriverState *bs, Qcow2Cache *c)
{
    int result = 0;
    int i, ret;

    for (i = 0; i < c->size; i++) {
        ret = cache_entry_flush(bs, c, i);
        if (ret < 0 && result != -ENOSPC) {
            result = ret;
        }
    }
    return result;
}

int coroutine_fn qcow2_cache_flush(BlockDriverState *bs, Qcow2Cache *c)
{
    int result = qcow2_cache_write(bs, c);
    int ret;

    if (result == 0) {
        ret = bdrv_co_flush(bs->file->bs);
        if (ret < 0) {
            result = ret;
        }
    }
    return result;
}

int coroutine_fn qcow2_cache_set_dependency(BlockDriverState *bs,
                                            Qcow2Cache *c,
                                            Qcow2Cache *dependency)
{
    int ret;

    /* Keep chains one level deep so a cycle can never form. */
    if (dependency->depends) {
        ret = cache_flush_dependency(bs, dependency);
        if (ret < 0) {
            return ret;
        }
    }
    if (c->depends && c->depends != dependency) {
        ret = cache_flush_dependency(bs, c);
        if (ret < 0) {
            return ret;
        }
    }
    c->depends = dependency;
    return 0;
}

void qcow2_cache_depends_on_flush(Qcow2Cache *c)
{
    c->depends_on_flush = true;
}

int coroutine_fn qcow2_cache_empty(BlockDriverState *bs, Qcow2Cache *c)
{
    int ret = qcow2_cache_flush(bs, c);
    int i;

    if (ret < 0) {
        return ret;
    }
    for (i = 0; i < c->size; i++) {
        assert(c->entries[i].ref == 0);
        if (c->entries[i].offset) {
            cache_unlink(c, i);
        }
        c->entries[i].lru_counter = 0;
    }
    c->lru_counter = 0;
    return 0;
}

static int coroutine_fn cache_do_get(BlockDriverState *bs, Qcow2Cache *c,
                                     uint64_t offset, void **table,
                                     bool read_from_disk)
{
    int i, victim = -1;
    uint64_t min_lru = UINT64_MAX;
    int ret;

    assert(offset != 0 && (offset & (c->table_size - 1)) == 0);
retry:
    i = cache_find(c, offset);
    if (i >= 0) {
        goto found;
    }

    /*
     * Approximate LRU: the oldest of a window of unreferenced entries
     * after a rotating hand, so big caches do not cost a full scan.
     */
    {
        int n, seen = 0;

        i = c->hand;
        for (n = 0; n < c->size; n++, i = i + 1 == c->size ? 0 : i + 1) {
            if (c->entries[i].ref) {
                continue;
            }
            if (!c->entries[i].offset) {
                victim = i;
                break;
            }
            if (c->entries[i].lru_counter < min_lru) {
                min_lru = c->entries[i].lru_counter;
                victim = i;
            }
            if (++seen >= 32) {
                break;
            }
        }
        if (victim >= 0) {
            c->hand = victim + 1 == c->size ? 0 : victim + 1;
        }
    }
    if (victim < 0) {
        /* Every table is in use: the cache is too small for the caller. */
        return -ENOSPC;
    }
    i = victim;
    if (c->entries[i].dirty) {
        /* Writing yields: someone may load @offset meanwhile. */
        c->entries[i].ref++;
        ret = cache_entry_flush(bs, c, i);
        c->entries[i].ref--;
        if (ret < 0) {
            return ret;
        }
        goto retry;
    }
    if (c->entries[i].offset) {
        cache_unlink(c, i);
    }
    /*
     * Hold the slot while reading; it becomes visible to lookups only
     * once it is filled.  Misses happen with s->lock held, so nobody
     * else loads the same table meanwhile.
     */
    c->entries[i].ref++;
    if (read_from_disk) {
        ret = bdrv_co_pread(bs->file, offset, c->table_size,
                            cache_table(c, i), 0);
        if (ret < 0) {
            c->entries[i].ref--;
            return ret;
        }
    }
    c->entries[i].ref--;
    cache_link(c, i, offset);

found:
    c->entries[i].ref++;
    c->last = i;
    *table = cache_table(c, i);
    return 0;
}

int coroutine_fn qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c,
                                 uint64_t offset, void **table)
{
    int i = c->last;

    /* Hot path: the same table as last time. */
    if (i >= 0 && c->entries[i].offset == offset) {
        c->entries[i].ref++;
        *table = cache_table(c, i);
        return 0;
    }
    return cache_do_get(bs, c, offset, table, true);
}

void *qcow2_cache_try_get(Qcow2Cache *c, uint64_t offset)
{
    int i = cache_find(c, offset);

    if (i < 0) {
        return NULL;
    }
    c->entries[i].ref++;
    c->last = i;
    return cache_table(c, i);
}

int coroutine_fn qcow2_cache_get_empty(BlockDriverState *bs, Qcow2Cache *c,
                                       uint64_t offset, void **table)
{
    return cache_do_get(bs, c, offset, table, false);
}

void qcow2_cache_put(Qcow2Cache *c, void **table)
{
    int i = cache_slot_of(c, *table);

    assert(c->entries[i].ref > 0);
    if (--c->entries[i].ref == 0) {
        c->entries[i].lru_counter = ++c->lru_counter;
    }
    *table = NULL;
}

void qcow2_cache_entry_mark_dirty(Qcow2Cache *c, void *table)
{
    int i = cache_slot_of(c, table);

    assert(c->entries[i].offset != 0);
    c->entries[i].dirty = true;
}

void *qcow2_cache_peek(Qcow2Cache *c, uint64_t offset)
{
    int i = c->last;

    if (likely(i >= 0 && c->entries[i].offset == offset)) {
        return cache_table(c, i);
    }
    i = cache_find(c, offset);
    if (i < 0) {
        return NULL;
    }
    c->last = i;
    return cache_table(c, i);
}

void *qcow2_cache_is_table_offset(Qcow2Cache *c, uint64_t offset)
{
    int i = cache_find(c, offset);

    return i >= 0 ? cache_table(c, i) : NULL;
}

void qcow2_cache_discard(Qcow2Cache *c, void *table)
{
    int i = cache_slot_of(c, table);

    if (c->entries[i].ref) {
        return;     /* in use: the holder still needs it */
    }
    cache_unlink(c, i);
    c->entries[i].dirty = false;
    c->entries[i].lru_counter = 0;
}
