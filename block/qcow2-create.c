/*
 * qcow2 image creation, size measurement and option amendment.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Creation does not go through the open driver: a fresh image is laid
 * out by replaying, on an in-memory model of the host file, the same
 * sequence of cluster allocations the reference implementation performs
 * (header and first refcount structures, L1 table growth, then the
 * preallocation pass).  The model is then written to the protocol file
 * in one go.  That keeps fresh images byte-identical to the reference
 * tool's, including where refcount blocks and grown refcount tables end
 * up, which a generic allocator would not guarantee.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "block/qcow2.h"

#define QCOW2_DEFAULT_CLUSTER_SIZE 65536
#define QCOW2_L1E_SIZE 8
#define QCOW2_REFTABLE_ENTRY_SIZE 8
/* The largest request the generic layer hands a driver, as in io.c. */
#define QCOW2_REQ_MAX_BYTES ((uint64_t)(INT32_MAX & ~(4096 - 1)))

/* ---- option lists ------------------------------------------------------ */

/*
 * Order matters: "qemu-img create" prints the set and defaulted options
 * in this order on its "Formatting" line.
 */
const QemuOptsList qcow2_create_opts = {
    .name = "qcow2-create-opts",
    .desc = (const QemuOptDesc[]) {
        { "encryption", QEMU_OPT_BOOL,
          "Encrypt the image with format 'aes'. (Deprecated in favor of "
          "encrypt.format=aes)", NULL },
        { "encrypt.format", QEMU_OPT_STRING,
          "Encrypt the image, format choices: 'aes', 'luks'", NULL },
        { "encrypt.key-secret", QEMU_OPT_STRING,
          "ID of secret providing qcow AES key or LUKS passphrase", NULL },
        { "encrypt.cipher-alg", QEMU_OPT_STRING,
          "Name of encryption cipher algorithm", NULL },
        { "encrypt.cipher-mode", QEMU_OPT_STRING,
          "Name of encryption cipher mode", NULL },
        { "encrypt.ivgen-alg", QEMU_OPT_STRING,
          "Name of IV generator algorithm", NULL },
        { "encrypt.ivgen-hash-alg", QEMU_OPT_STRING,
          "Name of IV generator hash algorithm", NULL },
        { "encrypt.hash-alg", QEMU_OPT_STRING,
          "Name of encryption hash algorithm", NULL },
        { "encrypt.iter-time", QEMU_OPT_NUMBER,
          "Time to spend in PBKDF in milliseconds", NULL },
        { "cluster_size", QEMU_OPT_SIZE, "qcow2 cluster size", "65536" },
        { "extended_l2", QEMU_OPT_BOOL, "Extended L2 tables", "off" },
        { "preallocation", QEMU_OPT_STRING,
          "Preallocation mode (allowed values: off, metadata, falloc, full)",
          NULL },
        { "compression_type", QEMU_OPT_STRING,
          "Compression method used for image cluster compression", "zlib" },
        { "size", QEMU_OPT_SIZE, "Virtual disk size", NULL },
        { "compat", QEMU_OPT_STRING,
          "Compatibility level (v2 [0.10] or v3 [1.1])", NULL },
        { "backing_file", QEMU_OPT_STRING, "File name of a base image", NULL },
        { "backing_fmt", QEMU_OPT_STRING, "Image format of the base image",
          NULL },
        { "data_file", QEMU_OPT_STRING, "File name of an external data file",
          NULL },
        { "data_file_raw", QEMU_OPT_BOOL,
          "The external data file must stay valid as a raw image", NULL },
        { "lazy_refcounts", QEMU_OPT_BOOL, "Postpone refcount updates",
          "off" },
        { "refcount_bits", QEMU_OPT_NUMBER,
          "Width of a reference count entry in bits", "16" },
        /* Zoned images (docs/zoned.rst); no defaults printed unless set. */
        { "zone.mode", QEMU_OPT_STRING,
          "Zoned device model: host-managed (absent: not zoned)", NULL },
        { "zoned", QEMU_OPT_STRING, "Alias of the zone mode option", NULL,
          "zone.mode" },
        { "zone.size", QEMU_OPT_SIZE,
          "Zone size in bytes, a power of two (default 256M)", NULL },
        { "zone.capacity", QEMU_OPT_SIZE,
          "Writable bytes per zone (default: the zone size)", NULL },
        { "zone.conventional_zones", QEMU_OPT_NUMBER,
          "Number of conventional zones at the start (default 0)", NULL },
        { "zone.max_open_zones", QEMU_OPT_NUMBER,
          "Maximum open zones, 0 = no limit (default 0)", NULL },
        { "zone.max_active_zones", QEMU_OPT_NUMBER,
          "Maximum active zones, 0 = no limit (default 0)", NULL },
        { "zone.max_append_bytes", QEMU_OPT_SIZE,
          "Largest zone append in bytes (default 64K)", NULL },
        { NULL }
    },
};

const QemuOptsList qcow2_amend_opts = {
    .name = "qcow2-amend-opts",
    .desc = (const QemuOptDesc[]) {
        { "encrypt.state", QEMU_OPT_STRING,
          "Select new state of affected keyslots (active/inactive)", NULL },
        { "encrypt.keyslot", QEMU_OPT_NUMBER,
          "Select a single keyslot to modify explicitly", NULL },
        { "encrypt.old-secret", QEMU_OPT_STRING,
          "Select all keyslots that match this password", NULL },
        { "encrypt.new-secret", QEMU_OPT_STRING,
          "New secret to set in the matching keyslots. Empty string to erase",
          NULL },
        { "encrypt.iter-time", QEMU_OPT_NUMBER,
          "Time to spend in PBKDF in milliseconds", NULL },
        { "size", QEMU_OPT_SIZE, "Virtual disk size", NULL },
        { "compat", QEMU_OPT_STRING,
          "Compatibility level (v2 [0.10] or v3 [1.1])", NULL },
        { "backing_file", QEMU_OPT_STRING, "File name of a base image", NULL },
        { "backing_fmt", QEMU_OPT_STRING, "Image format of the base image",
          NULL },
        { "data_file", QEMU_OPT_STRING, "File name of an external data file",
          NULL },
        { "data_file_raw", QEMU_OPT_BOOL,
          "The external data file must stay valid as a raw image", NULL },
        { "lazy_refcounts", QEMU_OPT_BOOL, "Postpone refcount updates",
          "off" },
        { "refcount_bits", QEMU_OPT_NUMBER,
          "Width of a reference count entry in bits", "16" },
        { NULL }
    },
};

/* ---- shared helpers ---------------------------------------------------- */

/*
 * Refcount structure size for @clusters clusters of data and other
 * metadata: the fixed point where the refcount blocks and table also
 * count themselves.  With @generous, room for growing the table by half
 * is added once, as the allocator does when it must grow the table.
 */
int64_t qcow2_refcount_metadata_size(int64_t clusters, uint64_t cluster_size,
                                     int refcount_order, bool generous,
                                     uint64_t *refblock_count)
{
    int64_t per_table_cluster = cluster_size / QCOW2_REFTABLE_ENTRY_SIZE;
    int64_t per_block = cluster_size * 8 / (1 << refcount_order);
    int64_t table = 0, blocks = 0, n = 0, last;

    do {
        last = n;
        blocks = DIV_ROUND_UP(clusters + table + blocks, per_block);
        table = DIV_ROUND_UP(blocks, per_table_cluster);
        n = clusters + blocks + table;
        if (n == last && generous) {
            clusters += DIV_ROUND_UP(table, 2);
            n = 0;
            generous = false;
        }
    } while (n != last);

    if (refblock_count) {
        *refblock_count = blocks;
    }
    return (blocks + table) * cluster_size;
}

static bool qcow2_parse_version(const char *s, int *version)
{
    if (!s) {
        *version = 3;
    } else if (!strcmp(s, "0.10") || !strcmp(s, "v2")) {
        *version = 2;
    } else if (!strcmp(s, "1.1") || !strcmp(s, "v3")) {
        *version = 3;
    } else {
        return false;
    }
    return true;
}

static bool qcow2_cluster_size_valid(uint64_t cluster_size, Error **errp)
{
    if (!is_power_of_2(cluster_size) ||
        cluster_size < (1 << MIN_CLUSTER_BITS) ||
        cluster_size > (1 << MAX_CLUSTER_BITS)) {
        error_setg(errp, "Cluster size must be a power of two between %d and "
                   "%dk", 1 << MIN_CLUSTER_BITS, 1 << (MAX_CLUSTER_BITS - 10));
        return false;
    }
    return true;
}

/* ---- in-memory model of a fresh image ------------------------------------ */

typedef struct Qcow2Model {
    int cluster_bits;
    uint64_t cluster_size;
    int refcount_order;
    int refblock_bits;               /* log2(entries per refcount block) */
    uint64_t refblock_size;
    Qcow2GetRefcountFunc *get_rc;
    Qcow2SetRefcountFunc *set_rc;

    /* Host file: cluster index -> cluster buffer; absent = zeroes. */
    GHashTable *file;
    uint64_t file_end;               /* length after the writes so far */

    uint64_t reftable_offset;
    uint64_t reftable_size;          /* entries */
    int64_t max_reftable_index;
    uint64_t free_cluster_index;

    uint64_t l1_offset;
    uint64_t l1_size;
    uint64_t *l1;                    /* host order */
} Qcow2Model;

static uint8_t *model_cluster(Qcow2Model *m, uint64_t index)
{
    gpointer key = GSIZE_TO_POINTER((gsize)index);
    uint8_t *buf = g_hash_table_lookup(m->file, key);

    if (!buf) {
        buf = g_malloc0(m->cluster_size);
        g_hash_table_insert(m->file, key, buf);
    }
    return buf;
}

/* Write @len bytes (zeroes if @buf is NULL) and extend the file length. */
static void model_write(Qcow2Model *m, uint64_t offset, uint64_t len,
                        const void *buf)
{
    uint64_t done = 0;

    while (done < len) {
        uint64_t pos = offset + done;
        uint64_t in = pos & (m->cluster_size - 1);
        uint64_t n = MIN(len - done, m->cluster_size - in);
        uint8_t *c = model_cluster(m, pos >> m->cluster_bits);

        if (buf) {
            memcpy(c + in, (const uint8_t *)buf + done, n);
        } else {
            memset(c + in, 0, n);
        }
        done += n;
    }
    m->file_end = MAX(m->file_end, offset + len);
}

static uint64_t model_reftable_get(Qcow2Model *m, uint64_t index)
{
    uint64_t off = m->reftable_offset + index * QCOW2_REFTABLE_ENTRY_SIZE;
    uint8_t *c = model_cluster(m, off >> m->cluster_bits);

    return ldbe64_p(c + (off & (m->cluster_size - 1)));
}

static void model_reftable_set(Qcow2Model *m, uint64_t index, uint64_t val)
{
    uint8_t be[8];

    stbe64_p(be, val);
    model_write(m, m->reftable_offset + index * QCOW2_REFTABLE_ENTRY_SIZE,
                8, be);
}

static uint64_t model_get_refcount(Qcow2Model *m, uint64_t ci)
{
    uint64_t idx = ci >> m->refblock_bits;
    uint64_t off;

    if (idx >= m->reftable_size) {
        return 0;
    }
    off = model_reftable_get(m, idx) & REFT_OFFSET_MASK;
    if (!off) {
        return 0;
    }
    return m->get_rc(model_cluster(m, off >> m->cluster_bits),
                     ci & (m->refblock_size - 1));
}

static void model_update_max_index(Qcow2Model *m)
{
    int64_t i = m->reftable_size - 1;

    while (i > 0 && !model_reftable_get(m, i)) {
        i--;
    }
    m->max_reftable_index = i;
}

static int64_t model_alloc_noref(Qcow2Model *m, uint64_t nb)
{
    uint64_t i;

retry:
    for (i = 0; i < nb; i++) {
        uint64_t next = m->free_cluster_index++;
        if (model_get_refcount(m, next) != 0) {
            goto retry;
        }
    }
    return (m->free_cluster_index - nb) << m->cluster_bits;
}

static int model_update_refcount(Qcow2Model *m, uint64_t offset,
                                 uint64_t length, int addend);

/*
 * Create the refcount table and the missing refcount blocks describing
 * [start, +additional clusters) plus themselves, placed from @start on;
 * the new table follows the new blocks.  Returns the end of the new
 * structures.
 */
static int64_t model_refcount_area(Qcow2Model *m, uint64_t start,
                                   uint64_t additional, bool exact,
                                   uint64_t new_index, uint64_t new_offset)
{
    uint64_t total_blocks, table_size, table_clusters, extra = 0;
    uint64_t area_index, table_offset, end_offset, block_offset, i;
    uint64_t old_offset = m->reftable_offset;
    uint64_t old_size = m->reftable_size;
    uint64_t *table;
    int ret;

    qcow2_refcount_metadata_size((start >> m->cluster_bits) + additional,
                                 m->cluster_size, m->refcount_order, !exact,
                                 &total_blocks);
    if (total_blocks > QCOW_MAX_REFTABLE_SIZE / 8) {
        return -EFBIG;
    }
    area_index = (start >> m->cluster_bits) >> m->refblock_bits;
    table_size = exact ? total_blocks : total_blocks + DIV_ROUND_UP(total_blocks, 2);
    table_size = ROUND_UP(table_size, m->cluster_size / 8);
    table_clusters = table_size * 8 / m->cluster_size;
    if (table_size > QCOW_MAX_REFTABLE_SIZE / 8) {
        return -EFBIG;
    }

    table = g_new0(uint64_t, table_size);
    for (i = 0; i < MIN(table_size, (uint64_t)m->max_reftable_index + 1); i++) {
        table[i] = model_reftable_get(m, i);
    }
    if (new_offset) {
        table[new_index] = new_offset;
    }
    for (i = area_index; i < total_blocks; i++) {
        if (!table[i]) {
            extra++;
        }
    }
    table_offset = start + extra * m->cluster_size;
    end_offset = table_offset + table_clusters * m->cluster_size;

    block_offset = start;
    for (i = area_index; i < total_blocks; i++) {
        uint8_t *rb;
        uint64_t first, j, end_j;

        if (!table[i]) {
            model_write(m, block_offset, m->cluster_size, NULL);
            table[i] = block_offset;
            block_offset += m->cluster_size;
        }
        rb = model_cluster(m, table[i] >> m->cluster_bits);
        first = (i << m->refblock_bits) << m->cluster_bits;
        if (first < end_offset) {
            j = first < start ? (start - first) >> m->cluster_bits : 0;
            end_j = MIN((end_offset - first) >> m->cluster_bits,
                        m->refblock_size);
            for (; j < end_j; j++) {
                m->set_rc(rb, j, 1);
            }
        }
    }

    for (i = 0; i < table_size; i++) {
        uint8_t be[8];
        stbe64_p(be, table[i]);
        model_write(m, table_offset + i * 8, 8, be);
    }
    g_free(table);

    m->reftable_offset = table_offset;
    m->reftable_size = table_size;
    model_update_max_index(m);

    ret = model_update_refcount(m, old_offset, old_size * 8, -1);
    if (ret < 0) {
        return ret;
    }
    return end_offset;
}

/*
 * Find or create the refcount block for cluster @ci.  Creating one
 * returns -EAGAIN: the caller restarts its search because the new block
 * may sit where it meant to allocate.
 */
static int model_alloc_refblock(Qcow2Model *m, uint64_t ci, uint8_t **rb)
{
    uint64_t idx = ci >> m->refblock_bits;
    int64_t new_block, ret;
    uint64_t blocks_used;

    if (idx < m->reftable_size) {
        uint64_t off = model_reftable_get(m, idx) & REFT_OFFSET_MASK;
        if (off) {
            *rb = model_cluster(m, off >> m->cluster_bits);
            return 0;
        }
    }

    new_block = model_alloc_noref(m, 1);
    if (((uint64_t)new_block >> m->cluster_bits) >> m->refblock_bits == idx) {
        uint8_t *b;
        model_write(m, new_block, m->cluster_size, NULL);
        b = model_cluster(m, new_block >> m->cluster_bits);
        m->set_rc(b, (new_block >> m->cluster_bits) & (m->refblock_size - 1),
                  1);
    } else {
        ret = model_update_refcount(m, new_block, m->cluster_size, 1);
        if (ret < 0) {
            return ret;
        }
        model_write(m, new_block, m->cluster_size, NULL);
    }

    if (idx < m->reftable_size) {
        model_reftable_set(m, idx, new_block);
        m->max_reftable_index = MAX(m->max_reftable_index, (int64_t)idx);
        return -EAGAIN;
    }

    blocks_used = DIV_ROUND_UP(MAX(ci + 1,
                                   ((uint64_t)new_block >> m->cluster_bits) + 1),
                               m->refblock_size);
    ret = model_refcount_area(m, (blocks_used << m->refblock_bits)
                                 << m->cluster_bits,
                              0, false, idx, new_block);
    if (ret < 0) {
        return ret;
    }
    return -EAGAIN;
}

static int model_update_refcount(Qcow2Model *m, uint64_t offset,
                                 uint64_t length, int addend)
{
    uint64_t start, last, cur;
    int64_t old_idx = -1;
    uint8_t *rb = NULL;
    int ret = 0;

    if (length == 0) {
        return 0;
    }
    start = offset & ~(m->cluster_size - 1);
    last = (offset + length - 1) & ~(m->cluster_size - 1);
    for (cur = start; cur <= last; cur += m->cluster_size) {
        uint64_t ci = cur >> m->cluster_bits;
        int64_t idx = ci >> m->refblock_bits;
        uint64_t bi, rc;

        if (idx != old_idx) {
            ret = model_alloc_refblock(m, ci, &rb);
            if (ret == -EAGAIN) {
                /* The caller searches again: from the same clusters first. */
                m->free_cluster_index = MIN(m->free_cluster_index,
                                            start >> m->cluster_bits);
            }
            if (ret < 0) {
                break;
            }
        }
        old_idx = idx;
        bi = ci & (m->refblock_size - 1);
        rc = m->get_rc(rb, bi) + addend;
        m->set_rc(rb, bi, rc);
        if (rc == 0 && ci < m->free_cluster_index) {
            m->free_cluster_index = ci;
        }
    }
    if (ret < 0 && cur > offset) {
        /* Undo the part already done, like the reference allocator. */
        model_update_refcount(m, offset, cur - offset, -addend);
    }
    return ret;
}

static int64_t model_alloc_clusters(Qcow2Model *m, uint64_t bytes)
{
    uint64_t nb = DIV_ROUND_UP(bytes, m->cluster_size);
    int64_t offset;
    int ret;

    do {
        offset = model_alloc_noref(m, nb);
        ret = model_update_refcount(m, offset, bytes, 1);
    } while (ret == -EAGAIN);
    return ret < 0 ? ret : offset;
}

static int64_t model_alloc_clusters_at(Qcow2Model *m, uint64_t offset,
                                       uint64_t nb)
{
    uint64_t i;
    int ret;

    if (nb == 0) {
        return 0;
    }
    do {
        uint64_t ci = offset >> m->cluster_bits;
        for (i = 0; i < nb; i++) {
            if (model_get_refcount(m, ci + i) != 0) {
                break;
            }
        }
        ret = model_update_refcount(m, offset, i << m->cluster_bits, 1);
    } while (ret == -EAGAIN);
    return ret < 0 ? ret : (int64_t)i;
}

static int model_grow_l1(Qcow2Model *m, uint64_t l1_size)
{
    int64_t off;

    if (l1_size <= m->l1_size) {
        return 0;
    }
    off = model_alloc_clusters(m, l1_size * QCOW2_L1E_SIZE);
    if (off < 0) {
        return off;
    }
    /* Fresh image: the old table is empty, nothing to copy or free. */
    model_write(m, off, l1_size * QCOW2_L1E_SIZE, NULL);
    g_free(m->l1);
    m->l1 = g_new0(uint64_t, l1_size);
    m->l1_size = l1_size;
    m->l1_offset = off;
    return 0;
}

/* The L2 table for @l1_index, allocated (zeroed) if missing. */
static int model_get_l2(Qcow2Model *m, uint64_t l1_index, uint8_t **l2)
{
    if (!(m->l1[l1_index] & L1E_OFFSET_MASK)) {
        int64_t off = model_alloc_clusters(m, m->cluster_size);
        if (off < 0) {
            return off;
        }
        model_write(m, off, m->cluster_size, NULL);
        m->l1[l1_index] = off | QCOW_OFLAG_COPIED;
    }
    *l2 = model_cluster(m, (m->l1[l1_index] & L1E_OFFSET_MASK)
                           >> m->cluster_bits);
    return 0;
}

static void model_map(Qcow2Model *m, uint64_t guest, uint64_t host,
                      uint64_t nb)
{
    uint64_t l2_entries = m->cluster_size / 8;
    uint64_t i;

    for (i = 0; i < nb; i++) {
        uint64_t gci = (guest >> m->cluster_bits) + i;
        uint8_t *l2 = model_cluster(m, (m->l1[gci / l2_entries] &
                                        L1E_OFFSET_MASK) >> m->cluster_bits);
        stbe64_p(l2 + (gci % l2_entries) * 8,
                 (host + (i << m->cluster_bits)) | QCOW_OFLAG_COPIED);
    }
}

/*
 * preallocation=metadata: map every guest cluster, walking the L2 tables
 * in order; each run of data clusters follows its L2 table.  Returns the
 * host end of the last run (the file is extended to it).
 */
static int64_t model_prealloc_metadata(Qcow2Model *m, uint64_t size)
{
    uint64_t l2_entries = m->cluster_size / 8;
    uint64_t chunk_max = QEMU_ALIGN_DOWN((uint64_t)INT32_MAX, m->cluster_size);
    uint64_t max_req = QCOW2_REQ_MAX_BYTES >> m->cluster_bits;
    uint64_t offset = 0, bytes = size, host_end = 0;
    int ret;

    while (bytes) {
        uint64_t cur = MIN(bytes, chunk_max);
        uint64_t start = offset, remaining = cur;
        int64_t first_host = -1, next_host = -1;
        uint8_t *l2;

        while (remaining) {
            uint64_t gci = start >> m->cluster_bits;
            uint64_t nb = DIV_ROUND_UP(remaining, m->cluster_size);
            int64_t host;

            ret = model_get_l2(m, gci / l2_entries, &l2);
            if (ret < 0) {
                return ret;
            }
            nb = MIN(nb, l2_entries - gci % l2_entries);
            nb = MIN(nb, max_req);
            if (next_host < 0) {
                host = model_alloc_clusters(m, nb << m->cluster_bits);
                if (host < 0) {
                    return host;
                }
            } else {
                int64_t got = model_alloc_clusters_at(m, next_host, nb);
                if (got < 0) {
                    return got;
                }
                if (got == 0) {
                    break;
                }
                nb = got;
                host = next_host;
            }
            model_map(m, start, host, nb);
            if (first_host < 0) {
                first_host = host;
            }
            next_host = host + (nb << m->cluster_bits);
            start += MIN(remaining, nb << m->cluster_bits);
            remaining -= MIN(remaining, nb << m->cluster_bits);
        }
        cur -= remaining;
        bytes -= cur;
        offset += cur;
        host_end = ROUND_UP(first_host + cur, m->cluster_size);
    }
    return host_end;
}

/*
 * preallocation=falloc/full: refcount structures for the whole data area
 * are created first (behind the last used cluster), then the data
 * clusters in one run, then the L2 tables are filled (allocated wherever
 * free clusters are, which includes the old refcount table's place).
 * Returns the start of the data run; *data_end its end.
 */
static int64_t model_prealloc_full(Qcow2Model *m, uint64_t size,
                                   uint64_t *data_end)
{
    uint64_t l2_entries = m->cluster_size / 8;
    uint64_t nb_data = ROUND_UP(size, m->cluster_size) >> m->cluster_bits;
    uint64_t nb_l2 = DIV_ROUND_UP(nb_data, l2_entries) + 1;
    uint64_t old_end, guest = 0, host, left;
    int64_t last, start, got;
    uint8_t *l2;
    int ret;

    last = DIV_ROUND_UP(m->file_end, m->cluster_size) - 1;
    while (last >= 0 && model_get_refcount(m, last) == 0) {
        last--;
    }
    old_end = last >= 0 ? (uint64_t)(last + 1) << m->cluster_bits
                        : ROUND_UP(m->file_end, m->cluster_size);

    start = model_refcount_area(m, old_end, nb_data + nb_l2, true, 0, 0);
    if (start < 0) {
        return start;
    }
    got = model_alloc_clusters_at(m, start, nb_data);
    if (got < 0) {
        return got;
    }
    assert((uint64_t)got == nb_data);
    *data_end = start + (nb_data << m->cluster_bits);

    host = start;
    left = nb_data;
    while (left) {
        uint64_t gci = guest >> m->cluster_bits;
        uint64_t nb = MIN(left, l2_entries - gci % l2_entries);

        ret = model_get_l2(m, gci / l2_entries, &l2);
        if (ret < 0) {
            return ret;
        }
        model_map(m, guest, host, nb);
        guest += nb << m->cluster_bits;
        host += nb << m->cluster_bits;
        left -= nb;
    }
    return start;
}

/* ---- header -------------------------------------------------------------- */

typedef struct Qcow2HeaderParams {
    int version;
    int cluster_bits;
    uint64_t size;
    uint64_t l1_offset;
    uint64_t l1_size;
    uint64_t reftable_offset;
    uint64_t reftable_clusters;
    int refcount_order;
    uint64_t incompat;
    uint64_t compat;
    uint8_t compression_type;
    const char *backing_file;
    const char *backing_fmt;
} Qcow2HeaderParams;

static const struct {
    uint8_t type;
    uint8_t bit;
    const char *name;
} qcow2_feature_names[] = {
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_DIRTY_BITNR, "dirty bit" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_CORRUPT_BITNR,
      "corrupt bit" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_DATA_FILE_BITNR,
      "external data file" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_COMPRESSION_BITNR,
      "compression type" },
    { QCOW2_FEAT_TYPE_INCOMPATIBLE, QCOW2_INCOMPAT_EXTL2_BITNR,
      "extended L2 entries" },
    { QCOW2_FEAT_TYPE_COMPATIBLE, QCOW2_COMPAT_LAZY_REFCOUNTS_BITNR,
      "lazy refcounts" },
    { QCOW2_FEAT_TYPE_AUTOCLEAR, QCOW2_AUTOCLEAR_BITMAPS_BITNR, "bitmaps" },
    { QCOW2_FEAT_TYPE_AUTOCLEAR, QCOW2_AUTOCLEAR_DATA_FILE_RAW_BITNR,
      "raw external data" },
};

/* Append one extension (payload padded to 8 bytes); false if no room. */
static bool qcow2_put_ext(uint8_t *buf, size_t buf_size, size_t *pos,
                          uint32_t magic, const void *data, uint32_t len)
{
    size_t padded = ROUND_UP(len, 8);

    if (*pos + 8 + padded > buf_size) {
        return false;
    }
    stbe32_p(buf + *pos, magic);
    stbe32_p(buf + *pos + 4, len);
    memcpy(buf + *pos + 8, data, len);
    memset(buf + *pos + 8 + len, 0, padded - len);
    *pos += 8 + padded;
    return true;
}

/* Build the first cluster of a new image; -ENOSPC if it does not fit. */
static int qcow2_build_header(const Qcow2HeaderParams *p, uint8_t *buf,
                              size_t cluster_size)
{
    size_t pos;

    memset(buf, 0, cluster_size);
    stbe32_p(buf + 0, QCOW_MAGIC);
    stbe32_p(buf + 4, p->version);
    stbe32_p(buf + 20, p->cluster_bits);
    stbe64_p(buf + 24, p->size);
    stbe32_p(buf + 36, p->l1_size);
    stbe64_p(buf + 40, p->l1_offset);
    stbe64_p(buf + 48, p->reftable_offset);
    stbe32_p(buf + 56, p->reftable_clusters);
    if (p->version >= 3) {
        stbe64_p(buf + 72, p->incompat);
        stbe64_p(buf + 80, p->compat);
        stbe32_p(buf + 96, p->refcount_order);
        stbe32_p(buf + 100, sizeof(QCowHeader));
        buf[104] = p->compression_type;
        pos = sizeof(QCowHeader);
    } else {
        pos = QCOW2_V2_HEADER_LENGTH;
    }

    if (p->backing_fmt &&
        !qcow2_put_ext(buf, cluster_size, &pos,
                       QCOW2_EXT_MAGIC_BACKING_FORMAT, p->backing_fmt,
                       strlen(p->backing_fmt))) {
        return -ENOSPC;
    }
    /*
     * The feature name table is informational; like the reference tool we
     * only spend header space on it with clusters larger than 4k.
     */
    if (p->version >= 3 && cluster_size > 4096) {
        Qcow2Feature table[ARRAY_SIZE(qcow2_feature_names)];
        size_t i;

        memset(table, 0, sizeof(table));
        for (i = 0; i < ARRAY_SIZE(qcow2_feature_names); i++) {
            table[i].type = qcow2_feature_names[i].type;
            table[i].bit = qcow2_feature_names[i].bit;
            strncpy(table[i].name, qcow2_feature_names[i].name,
                    sizeof(table[i].name));
        }
        if (!qcow2_put_ext(buf, cluster_size, &pos,
                           QCOW2_EXT_MAGIC_FEATURE_TABLE, table,
                           sizeof(table))) {
            return -ENOSPC;
        }
    }
    if (pos + 8 > cluster_size) {
        return -ENOSPC;
    }
    pos += 8;       /* end of extensions: already zero */

    if (p->backing_file) {
        size_t len = strlen(p->backing_file);
        if (pos + len > cluster_size || len > 1023) {
            return -ENOSPC;
        }
        memcpy(buf + pos, p->backing_file, len);
        stbe64_p(buf + 8, pos);
        stbe32_p(buf + 16, len);
    }
    return 0;
}

/* ---- create ---------------------------------------------------------------- */

typedef struct Qcow2CreateParams {
    uint64_t size;
    int version;
    uint64_t cluster_size;
    PreallocMode prealloc;
    bool lazy_refcounts;
    int refcount_order;
    Qcow2CompressionType compression_type;
    const char *backing_file;
    const char *backing_fmt;
} Qcow2CreateParams;

/* Validate the options the way the reference tool does, in its order. */
static int qcow2_parse_create_opts(QemuOpts *opts, Qcow2CreateParams *p,
                                   Error **errp)
{
    const char *str;
    uint64_t refcount_bits;
    bool extended_l2, has_data_file;

    memset(p, 0, sizeof(*p));

    if (qemu_opt_get_bool(opts, "encryption", false) ||
        qemu_opt_get(opts, "encrypt.format")) {
        error_setg(errp, "Encrypted qcow2 images are not supported "
                   "(encryption not supported)");
        return -ENOTSUP;
    }

    str = qemu_opt_get(opts, "compat");
    if (!qcow2_parse_version(str, &p->version)) {
        error_setg(errp, "Parameter 'version' does not accept value '%s'", str);
        return -EINVAL;
    }
    str = qemu_opt_get(opts, "preallocation");
    if (!str) {
        p->prealloc = PREALLOC_MODE_OFF;
    } else {
        int mode = prealloc_mode_parse(str, NULL);
        if (mode < 0) {
            error_setg(errp, "Parameter 'preallocation' does not accept value "
                       "'%s'", str);
            return -EINVAL;
        }
        p->prealloc = mode;
    }
    str = qemu_opt_get(opts, "compression_type");
    if (!str || !strcmp(str, "zlib")) {
        p->compression_type = QCOW2_COMPRESSION_TYPE_ZLIB;
    } else if (!strcmp(str, "zstd")) {
        p->compression_type = QCOW2_COMPRESSION_TYPE_ZSTD;
    } else {
        error_setg(errp, "Parameter 'compression-type' does not accept value "
                   "'%s'", str);
        return -EINVAL;
    }
    p->backing_file = qemu_opt_get(opts, "backing_file");
    p->backing_fmt = qemu_opt_get(opts, "backing_fmt");
    if (p->backing_file && !*p->backing_file) {
        p->backing_file = NULL;
    }

    p->size = ROUND_UP(qemu_opt_get_size(opts, "size", 0), BDRV_SECTOR_SIZE);
    p->cluster_size = qemu_opt_get_size(opts, "cluster_size",
                                        QCOW2_DEFAULT_CLUSTER_SIZE);

    extended_l2 = qemu_opt_get_bool(opts, "extended_l2", false);
    if (extended_l2) {
        if (p->version < 3) {
            error_setg(errp, "Extended L2 entries are only supported with "
                       "compatibility level 1.1 and above (use version=v3 or "
                       "greater)");
            return -EINVAL;
        }
    }
    if (!qcow2_cluster_size_valid(p->cluster_size, errp)) {
        return -EINVAL;
    }
    if (extended_l2) {
        error_setg(errp, "Extended L2 entries (extended_l2=on) are not "
                   "supported");
        return -ENOTSUP;
    }
    if (p->backing_file && p->prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "Backing file and preallocation can only be used at "
                   "the same time if extended_l2 is on");
        return -EINVAL;
    }
    if (p->backing_fmt && !p->backing_file) {
        error_setg(errp, "Backing format cannot be used without backing file");
        return -EINVAL;
    }

    p->lazy_refcounts = qemu_opt_get_bool(opts, "lazy_refcounts", false);
    if (p->version < 3 && p->lazy_refcounts) {
        error_setg(errp, "Lazy refcounts only supported with compatibility "
                   "level 1.1 and above (use version=v3 or greater)");
        return -EINVAL;
    }

    refcount_bits = qemu_opt_get_number(opts, "refcount_bits", 16);
    if (refcount_bits > 64 || !is_power_of_2(refcount_bits)) {
        error_setg(errp, "Refcount width must be a power of two and may not "
                   "exceed 64 bits");
        return -EINVAL;
    }
    if (p->version < 3 && refcount_bits != 16) {
        error_setg(errp, "Different refcount widths than 16 bits require "
                   "compatibility level 1.1 or above (use version=v3 or "
                   "greater)");
        return -EINVAL;
    }
    p->refcount_order = ctz64(refcount_bits);

    has_data_file = qemu_opt_get(opts, "data_file") != NULL;
    if (qemu_opt_get_bool(opts, "data_file_raw", false) && !has_data_file) {
        error_setg(errp, "data-file-raw requires data-file");
        return -EINVAL;
    }
    if (has_data_file) {
        if (p->version < 3) {
            error_setg(errp, "External data files are only supported with "
                       "compatibility level 1.1 and above (use version=v3 or "
                       "greater)");
            return -EINVAL;
        }
        error_setg(errp, "External data files (data_file) are not supported");
        return -ENOTSUP;
    }

    if (p->compression_type != QCOW2_COMPRESSION_TYPE_ZLIB) {
        if (p->version < 3) {
            error_setg(errp, "Non-zlib compression type is only supported with "
                       "compatibility level 1.1 and above (use version=v3 or "
                       "greater)");
            return -EINVAL;
        }
#ifndef CONFIG_ZSTD
        error_setg(errp, "Unknown compression type");
        return -EINVAL;
#endif
    }
    return 0;
}

static void qcow2_model_init(Qcow2Model *m, const Qcow2CreateParams *p)
{
    memset(m, 0, sizeof(*m));
    m->cluster_size = p->cluster_size;
    m->cluster_bits = ctz64(p->cluster_size);
    m->refcount_order = p->refcount_order;
    m->refblock_bits = m->cluster_bits + 3 - p->refcount_order;
    m->refblock_size = UINT64_C(1) << m->refblock_bits;
    m->get_rc = qcow2_refcount_get_func(p->refcount_order);
    m->set_rc = qcow2_refcount_set_func(p->refcount_order);
    m->file = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                    g_free);
}

static void qcow2_model_free(Qcow2Model *m)
{
    g_hash_table_destroy(m->file);
    g_free(m->l1);
}

/*
 * Lay out the whole image in @m.  *prealloc_start and *prealloc_end give the
 * data area to preallocate in the host file (empty if none), *final_end
 * the length the file must have.
 */
static int qcow2_model_build(Qcow2Model *m, const Qcow2CreateParams *p,
                             uint64_t *prealloc_start, uint64_t *prealloc_end,
                             uint64_t *final_end, Error **errp)
{
    uint64_t cs = p->cluster_size;
    uint64_t l1_size;
    int64_t ret;

    *prealloc_start = *prealloc_end = 0;

    /* Header cluster, a one-cluster refcount table, one refcount block. */
    model_write(m, 0, cs, NULL);
    model_write(m, cs, 2 * cs, NULL);
    m->reftable_offset = cs;
    m->reftable_size = cs / 8;
    model_reftable_set(m, 0, 2 * cs);
    m->max_reftable_index = 0;
    ret = model_alloc_clusters(m, 3 * cs);
    if (ret != 0) {
        error_setg(errp, "Could not allocate clusters for qcow2 header and "
                   "refcount table");
        return -EIO;
    }

    l1_size = DIV_ROUND_UP(p->size, cs * (cs / 8));
    if (l1_size > QCOW_MAX_L1_SIZE / QCOW2_L1E_SIZE) {
        error_setg(errp, "Could not resize image: The image size is too large "
                   "(try using a larger cluster size)");
        return -EFBIG;
    }
    ret = model_grow_l1(m, l1_size);
    if (ret < 0) {
        goto fail;
    }

    if (p->prealloc == PREALLOC_MODE_METADATA) {
        ret = model_prealloc_metadata(m, p->size);
        if (ret < 0) {
            goto fail;
        }
        *final_end = MAX(m->file_end, (uint64_t)ret);
    } else if (p->prealloc == PREALLOC_MODE_FALLOC ||
               p->prealloc == PREALLOC_MODE_FULL) {
        ret = model_prealloc_full(m, p->size, prealloc_end);
        if (ret < 0) {
            goto fail;
        }
        *prealloc_start = ret;
        *final_end = MAX(m->file_end, *prealloc_end);
    } else {
        *final_end = m->file_end;
    }

    if (m->l1_size) {
        uint64_t *l1 = g_new(uint64_t, m->l1_size);
        uint64_t i;
        for (i = 0; i < m->l1_size; i++) {
            l1[i] = cpu_to_be64(m->l1[i]);
        }
        model_write(m, m->l1_offset, m->l1_size * QCOW2_L1E_SIZE, l1);
        g_free(l1);
    }
    return 0;

fail:
    error_setg_errno(errp, -ret, "Could not resize image");
    return ret;
}

static gint qcow2_cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int coroutine_fn qcow2_write_model(BdrvChild *child, Qcow2Model *m,
                                          const Qcow2CreateParams *p,
                                          uint64_t prealloc_start,
                                          uint64_t prealloc_end,
                                          uint64_t final_end, Error **errp)
{
    GList *keys = g_hash_table_get_keys(m->file);
    GArray *idx = g_array_new(false, false, sizeof(uint64_t));
    bool prealloc_done = prealloc_end == 0;
    GList *l;
    guint i;
    int ret = 0;

    for (l = keys; l; l = l->next) {
        uint64_t ci = GPOINTER_TO_SIZE(l->data);
        g_array_append_val(idx, ci);
    }
    g_list_free(keys);
    g_array_sort(idx, qcow2_cmp_u64);

    for (i = 0; i < idx->len; i++) {
        uint64_t ci = g_array_index(idx, uint64_t, i);
        uint64_t off = ci << m->cluster_bits;
        uint64_t len;

        if (off >= m->file_end) {
            continue;
        }
        if (!prealloc_done && off >= prealloc_start) {
            ret = bdrv_co_truncate(child, prealloc_end, false, p->prealloc, 0,
                                   errp);
            if (ret < 0) {
                goto out;
            }
            prealloc_done = true;
        }
        len = MIN(m->cluster_size, m->file_end - off);
        ret = bdrv_co_pwrite(child, off, len,
                             g_hash_table_lookup(m->file,
                                                 GSIZE_TO_POINTER((gsize)ci)),
                             0);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not write qcow2 image");
            goto out;
        }
    }
    if (!prealloc_done) {
        ret = bdrv_co_truncate(child, prealloc_end, false, p->prealloc, 0,
                               errp);
        if (ret < 0) {
            goto out;
        }
    }
    if (bdrv_co_getlength(child->bs) < (int64_t)final_end) {
        ret = bdrv_co_truncate(child, final_end, false, PREALLOC_MODE_OFF, 0,
                               errp);
        if (ret < 0) {
            goto out;
        }
    }
    ret = bdrv_co_flush(child->bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not flush qcow2 image");
    }
out:
    g_array_free(idx, true);
    return ret;
}

/*
 * The protocol file is created empty: the size and preallocation options
 * describe the virtual disk, not the host file.
 */
static int coroutine_fn qcow2_create_protocol_file(const char *filename,
                                                   QemuOpts *opts,
                                                   Error **errp)
{
    char *size = g_strdup(qemu_opt_get(opts, "size"));
    char *prealloc = g_strdup(qemu_opt_get(opts, "preallocation"));
    int ret;

    qemu_opt_set(opts, "size", "0", NULL);
    qemu_opt_unset(opts, "preallocation");
    ret = bdrv_co_create_file(filename, opts, errp);
    if (size) {
        qemu_opt_set(opts, "size", size, NULL);
    } else {
        qemu_opt_unset(opts, "size");
    }
    if (prealloc) {
        qemu_opt_set(opts, "preallocation", prealloc, NULL);
    }
    g_free(size);
    g_free(prealloc);
    return ret;
}

int coroutine_fn qcow2_co_create_opts(BlockDriver *drv, const char *filename,
                                      QemuOpts *opts, Error **errp)
{
    Qcow2CreateParams p;
    Qcow2ZonedCreateParams zp;
    Qcow2HeaderParams hp;
    Qcow2Model m;
    BlockDriverState *file_bs = NULL;
    BdrvChild child;
    QDict *options;
    uint64_t prealloc_start = 0, prealloc_end = 0, final_end = 0;
    uint8_t *header;
    int ret;

    ret = qcow2_zoned_parse_create_opts(opts, &zp, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_parse_create_opts(opts, &p, errp);
    if (ret < 0) {
        return ret;
    }

    qcow2_model_init(&m, &p);
    ret = qcow2_model_build(&m, &p, &prealloc_start, &prealloc_end,
                            &final_end, errp);
    if (ret < 0) {
        goto out;
    }

    hp = (Qcow2HeaderParams) {
        .version = p.version,
        .cluster_bits = m.cluster_bits,
        .size = p.size,
        .l1_offset = m.l1_offset,
        .l1_size = m.l1_size,
        .reftable_offset = m.reftable_offset,
        .reftable_clusters = m.reftable_size * 8 / m.cluster_size,
        .refcount_order = p.refcount_order,
        .incompat = p.compression_type != QCOW2_COMPRESSION_TYPE_ZLIB ?
                    QCOW2_INCOMPAT_COMPRESSION : 0,
        .compat = p.lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0,
        .compression_type = p.compression_type,
        .backing_file = p.backing_file,
        .backing_fmt = p.backing_fmt,
    };
    header = g_malloc(m.cluster_size);
    ret = qcow2_build_header(&hp, header, m.cluster_size);
    if (ret < 0) {
        g_free(header);
        error_setg(errp, "Could not assign backing file '%s' with format "
                   "'%s': %s", p.backing_file ? p.backing_file : "",
                   p.backing_fmt ? p.backing_fmt : "", strerror(-ret));
        goto out;
    }
    model_write(&m, 0, m.cluster_size, header);
    g_free(header);

    ret = qcow2_create_protocol_file(filename, opts, errp);
    if (ret < 0) {
        goto out;
    }

    options = qdict_new();
    qdict_put_str(options, "driver", "file");
    file_bs = bdrv_open(filename, options, BDRV_O_RDWR | BDRV_O_PROTOCOL,
                        errp);
    if (!file_bs) {
        ret = -EIO;
        goto out;
    }
    /*
     * A private edge to the new file: it only lives for this function.
     * It holds what a qcow2 node holds on its file, so that a file in
     * use elsewhere (say by a raw writer) is refused as QEMU refuses it
     * when it opens the new image as qcow2.
     */
    child = (BdrvChild) { .bs = file_bs, .parent = NULL,
                          .name = (char *)"file", .role = BDRV_CHILD_IMAGE,
                          .perm = BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE |
                                  BLK_PERM_RESIZE,
                          .shared = BLK_PERM_CONSISTENT_READ |
                                    BLK_PERM_WRITE_UNCHANGED };
    bdrv_parent_link(&child);
    ret = bdrv_refresh_perms(file_bs, errp);
    if (ret == 0) {
        ret = qcow2_write_model(&child, &m, &p, prealloc_start, prealloc_end,
                                final_end, errp);
    }
    bdrv_parent_unlink(&child);

out:
    if (file_bs) {
        bdrv_unref(file_bs);
    }
    qcow2_model_free(&m);
    if (ret >= 0 && zp.zoned) {
        ret = qcow2_zoned_format(filename, &zp, errp);
    }
    return ret;
}

/* ---- measure ------------------------------------------------------------- */

/* Host bytes of a fully allocated image of @size (data + all metadata). */
static uint64_t qcow2_prealloc_size(uint64_t size, uint64_t cluster_size,
                                    int refcount_order)
{
    uint64_t aligned = ROUND_UP(size, cluster_size);
    uint64_t meta = cluster_size;               /* header */
    uint64_t nl2e, nl1e;

    nl2e = ROUND_UP(aligned / cluster_size, cluster_size / 8);
    meta += nl2e * 8;
    nl1e = ROUND_UP(nl2e * 8 / cluster_size, cluster_size / 8);
    meta += nl1e * 8;
    meta += qcow2_refcount_metadata_size((meta + aligned) / cluster_size,
                                         cluster_size, refcount_order, false,
                                         NULL);
    return meta + aligned;
}

/* Version of a qcow2 node (0 if @bs is not qcow2). */
static int qcow2_node_version(BlockDriverState *bs)
{
    uint8_t hdr[8];

    if (!bs->drv || strcmp(bs->drv->format_name, "qcow2") || !bs->file) {
        return 0;
    }
    if (bs->opaque) {
        return ((BDRVQcow2State *)bs->opaque)->qcow_version;
    }
    if (bdrv_pread(bs->file, 0, sizeof(hdr), hdr, 0) < 0) {
        return 0;
    }
    return ldbe32_p(hdr + 4);
}

BlockMeasureInfo *qcow2_measure(QemuOpts *opts, BlockDriverState *in_bs,
                                Error **errp)
{
    BlockMeasureInfo *info;
    uint64_t cluster_size, refcount_bits, virtual_size, required = 0;
    uint64_t l2_tables, zoned_meta = 0;
    const char *str;
    int version;
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    bool has_backing;

    if (qemu_opt_get_bool(opts, "extended_l2", false)) {
        error_setg(errp, "Extended L2 entries (extended_l2=on) are not "
                   "supported");
        return NULL;
    }
    cluster_size = qemu_opt_get_size(opts, "cluster_size",
                                     QCOW2_DEFAULT_CLUSTER_SIZE);
    if (!qcow2_cluster_size_valid(cluster_size, errp)) {
        return NULL;
    }
    str = qemu_opt_get(opts, "compat");
    if (!str) {
        version = 3;
    } else if (!strcmp(str, "0.10")) {
        version = 2;
    } else if (!strcmp(str, "1.1")) {
        version = 3;
    } else {
        error_setg(errp, "Invalid compatibility level: '%s'", str);
        return NULL;
    }
    refcount_bits = qemu_opt_get_number(opts, "refcount_bits", 16);
    if (refcount_bits > 64 || !is_power_of_2(refcount_bits)) {
        error_setg(errp, "Refcount width must be a power of two and may not "
                   "exceed 64 bits");
        return NULL;
    }
    if (version < 3 && refcount_bits != 16) {
        error_setg(errp, "Different refcount widths than 16 bits require "
                   "compatibility level 1.1 or above (use compat=1.1 or "
                   "greater)");
        return NULL;
    }
    str = qemu_opt_get(opts, "preallocation");
    if (str) {
        int mode = prealloc_mode_parse(str, NULL);
        if (mode < 0) {
            error_setg(errp, "Parameter 'preallocation' does not accept value "
                       "'%s'", str);
            return NULL;
        }
        prealloc = mode;
    }
    has_backing = qemu_opt_get(opts, "backing_file") != NULL;
    str = qemu_opt_get(opts, "encrypt.format");
    if ((str && *str) || qemu_opt_get_bool(opts, "encryption", false)) {
        error_setg(errp, "Encrypted qcow2 images are not supported "
                   "(encryption not supported)");
        return NULL;
    }

    virtual_size = ROUND_UP(qemu_opt_get_size(opts, "size", 0), cluster_size);
    l2_tables = DIV_ROUND_UP(virtual_size / cluster_size, cluster_size / 8);
    if (l2_tables * QCOW2_L1E_SIZE > QCOW_MAX_L1_SIZE) {
        error_setg(errp, "The image size is too large (try using a larger "
                   "cluster size)");
        return NULL;
    }

    if (in_bs) {
        int64_t ssize = bdrv_getlength(in_bs);
        int64_t offset, pnum = 0;

        if (ssize < 0) {
            error_setg_errno(errp, -ssize, "Unable to get image virtual_size");
            return NULL;
        }
        virtual_size = ROUND_UP(ssize, cluster_size);
        if (has_backing) {
            /* The new backing file may share nothing with the input. */
            required = virtual_size;
        } else {
            for (offset = 0; offset < ssize; offset += pnum) {
                int ret = bdrv_block_status_above(in_bs, NULL, offset,
                                                  ssize - offset, &pnum,
                                                  NULL, NULL, NULL);
                if (ret < 0) {
                    error_setg_errno(errp, -ret, "Unable to get block status");
                    return NULL;
                }
                if (ret & BDRV_BLOCK_ZERO) {
                    /* reads as zero: nothing to store */
                } else if ((ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED)) ==
                           (BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED)) {
                    /* A partly used cluster costs a whole one. */
                    pnum = ROUND_UP(offset + pnum, cluster_size) - offset;
                    required += offset % cluster_size + pnum;
                }
            }
        }
    }

    if (prealloc == PREALLOC_MODE_FULL || prealloc == PREALLOC_MODE_FALLOC) {
        required = virtual_size;
    }

    /*
     * A zoned image also stores one write pointer per zone; count those
     * clusters as data so their refcount overhead is included too.
     */
    if (qemu_opt_get(opts, "zone.mode")) {
        uint64_t zone_size = qemu_opt_get_size(opts, "zone.size", 256 * MiB);

        if (zone_size < 4096 || !is_power_of_2(zone_size)) {
            error_setg(errp, "zone.size must be a power of two of at least "
                       "4 KiB");
            return NULL;
        }
        zoned_meta = ROUND_UP(8 * DIV_ROUND_UP(virtual_size, zone_size),
                              cluster_size);
    }

    info = g_new0(BlockMeasureInfo, 1);
    info->fully_allocated = qcow2_prealloc_size(virtual_size + zoned_meta,
                                                cluster_size,
                                                ctz64(refcount_bits));
    info->required = info->fully_allocated - virtual_size + required;
    /* Only shown when both sides could carry persistent bitmaps. */
    info->has_bitmaps = version >= 3 && in_bs && qcow2_node_version(in_bs) >= 3;
    info->bitmaps = 0;
    return info;
}

/* ---- amend --------------------------------------------------------------- */

/*
 * Version 2 has no zero flag: turn zero clusters of the active image into
 * something v2 reads as zeroes.  Without a backing file an unallocated
 * entry does; otherwise (and for preallocated zero clusters) the host
 * cluster is zeroed and mapped as data.
 */
static int coroutine_fn qcow2_expand_zero_clusters(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t *l2 = qemu_blockalign(bs->file->bs, s->cluster_size);
    uint32_t i;
    int j, ret = 0;

    for (i = 0; i < s->l1_size; i++) {
        uint64_t l2_offset = s->l1_table[i] & L1E_OFFSET_MASK;
        bool dirty = false;

        if (!l2_offset) {
            continue;
        }
        ret = bdrv_co_pread(bs->file, l2_offset, s->cluster_size, l2, 0);
        if (ret < 0) {
            goto out;
        }
        for (j = 0; j < s->l2_size; j++) {
            uint64_t e = be64_to_cpu(l2[j]);
            uint64_t off = e & L2E_OFFSET_MASK, rc = 1;
            QCow2ClusterType type = qcow2_get_cluster_type(bs, e);

            if (type != QCOW2_CLUSTER_ZERO_PLAIN &&
                type != QCOW2_CLUSTER_ZERO_ALLOC) {
                continue;
            }
            dirty = true;
            if (type == QCOW2_CLUSTER_ZERO_PLAIN) {
                int64_t n;

                if (!bs->backing) {
                    l2[j] = 0;
                    continue;
                }
                n = qcow2_alloc_clusters(bs, s->cluster_size);
                if (n < 0) {
                    ret = n;
                    goto out;
                }
                off = n;
                ret = qcow2_grow_file(bs, off + s->cluster_size);
                if (ret < 0) {
                    goto out;
                }
            } else {
                ret = qcow2_get_refcount(bs, off >> s->cluster_bits, &rc);
                if (ret < 0) {
                    goto out;
                }
            }
            ret = bdrv_co_pwrite_zeroes(bs->file, off, s->cluster_size, 0);
            if (ret < 0) {
                goto out;
            }
            l2[j] = cpu_to_be64(rc == 1 ? off | QCOW_OFLAG_COPIED : off);
        }
        if (dirty) {
            ret = qcow2_cache_flush(bs, s->refcount_block_cache);
            if (ret >= 0) {
                ret = bdrv_co_pwrite(bs->file, l2_offset, s->cluster_size, l2,
                                     0);
            }
            if (ret < 0) {
                goto out;
            }
        }
    }
    ret = 0;
out:
    qemu_vfree(l2);
    return ret;
}

static int coroutine_fn qcow2_flush_caches(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = 0;

    if (s->l2_table_cache) {
        ret = qcow2_cache_flush(bs, s->l2_table_cache);
    }
    if (ret >= 0 && s->refcount_block_cache) {
        ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    }
    return ret;
}

/*
 * Rewrite the refcount structures with entries of 2^@order bits.  The
 * new blocks and table go after everything in use; they describe the
 * current refcounts plus themselves, then the header is switched over
 * and the old structures are freed.
 */
static int coroutine_fn qcow2_change_refcount_order(BlockDriverState *bs,
                                                    int order, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2GetRefcountFunc *new_get = qcow2_refcount_get_func(order);
    Qcow2SetRefcountFunc *new_set = qcow2_refcount_set_func(order);
    uint64_t new_max = order == 6 ? UINT64_MAX : (UINT64_C(1) << (1 << order)) - 1;
    int64_t per_block = (int64_t)s->cluster_size * 8 >> order;
    uint64_t *refs = NULL, *table = NULL, *old_table;
    uint64_t old_table_offset = s->refcount_table_offset;
    uint32_t old_table_size = s->refcount_table_size, i;
    int64_t nb, start, blocks = 0, tclusters = 0, end, ci;
    uint8_t *rb = NULL;
    int ret;

    ret = qcow2_flush_caches(bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to flush the image");
        return ret;
    }
    /* Every cluster in use lies inside the file. */
    nb = bdrv_co_getlength(bs->file->bs);
    if (nb < 0) {
        error_setg_errno(errp, -nb, "Failed to get the image file length");
        return nb;
    }
    nb = MAX(size_to_clusters(s, nb), size_to_clusters(s, s->file_size));
    nb = MIN(nb, (int64_t)s->refcount_table_size * s->refcount_block_size);
    refs = g_try_new0(uint64_t, MAX(nb, 1));
    if (!refs) {
        error_setg(errp, "Not enough memory for the refcount array");
        return -ENOMEM;
    }
    start = 0;
    for (ci = 0; ci < nb; ci++) {
        ret = qcow2_get_refcount(bs, ci, &refs[ci]);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to read the refcounts");
            goto out;
        }
        if (refs[ci] > new_max) {
            error_setg(errp, "Cannot decrease refcount entry width to %i bits: "
                       "Cluster at offset %#" PRIx64 " has a refcount of %"
                       PRIu64, 1 << order, ci << s->cluster_bits, refs[ci]);
            ret = -EINVAL;
            goto out;
        }
        if (refs[ci]) {
            start = ci + 1;
        }
    }
    start = MAX(start, (int64_t)size_to_clusters(s, s->file_size));

    /* Fixed point: the new structures must describe themselves. */
    for (;;) {
        int64_t b = DIV_ROUND_UP(start + blocks + tclusters, per_block);
        int64_t t = DIV_ROUND_UP(b * 8, s->cluster_size);
        if (b == blocks && t == tclusters) {
            break;
        }
        blocks = b;
        tclusters = t;
    }
    end = start + blocks + tclusters;

    table = g_new0(uint64_t, tclusters * s->cluster_size / 8);
    rb = qemu_blockalign(bs->file->bs, s->cluster_size);
    for (i = 0; i < blocks; i++) {
        int64_t j;

        memset(rb, 0, s->cluster_size);
        for (j = 0; j < per_block; j++) {
            ci = i * per_block + j;
            if (ci >= start && ci < end) {
                new_set(rb, j, 1);
            } else if (ci < nb) {
                new_set(rb, j, refs[ci]);
            }
        }
        assert(new_get(rb, 0) <= new_max);
        ret = bdrv_co_pwrite(bs->file, (start + i) << s->cluster_bits,
                             s->cluster_size, rb, 0);
        if (ret < 0) {
            goto write_fail;
        }
        table[i] = cpu_to_be64((start + i) << s->cluster_bits);
    }
    ret = bdrv_co_pwrite(bs->file, (start + blocks) << s->cluster_bits,
                         tclusters * s->cluster_size, table, 0);
    if (ret < 0) {
        goto write_fail;
    }
    ret = bdrv_co_flush(bs->file->bs);
    if (ret < 0) {
        goto write_fail;
    }

    /* Switch: drop cached blocks of the old width first. */
    ret = qcow2_cache_empty(bs, s->refcount_block_cache);
    if (ret < 0) {
        goto write_fail;
    }
    old_table = s->refcount_table;
    s->refcount_table = g_new0(uint64_t, tclusters * s->cluster_size / 8);
    for (i = 0; i < blocks; i++) {
        s->refcount_table[i] = (start + i) << s->cluster_bits;
    }
    s->refcount_table_offset = (start + blocks) << s->cluster_bits;
    s->refcount_table_size = tclusters * s->cluster_size / 8;
    s->max_refcount_table_index = blocks - 1;
    s->refcount_order = order;
    qcow2_refcount_set_accessors(s);
    s->free_cluster_index = 0;
    s->file_size = MAX(s->file_size, end << s->cluster_bits);
    /* We wrote up to @end: nothing below it may be assumed zero. */
    s->zero_start = MAX(s->zero_start, end << s->cluster_bits);
    s->alloc_end = MAX(s->alloc_end, end << s->cluster_bits);
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        g_free(old_table);
        error_setg_errno(errp, -ret, "Failed to update the image header");
        goto out;
    }

    /* The old blocks and table are unused now. */
    for (i = 0; i < old_table_size; i++) {
        uint64_t off = old_table[i] & REFT_OFFSET_MASK;
        if (off) {
            qcow2_update_refcount(bs, off, s->cluster_size, 1, true);
        }
    }
    qcow2_update_refcount(bs, old_table_offset, (int64_t)old_table_size * 8,
                          1, true);
    g_free(old_table);
    ret = qcow2_cache_flush(bs, s->refcount_block_cache);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to free the old refcount "
                         "structures");
    }
    goto out;

write_fail:
    error_setg_errno(errp, -ret, "Failed to write the new refcount "
                     "structures");
out:
    qemu_vfree(rb);
    g_free(table);
    g_free(refs);
    return ret;
}

static int coroutine_fn qcow2_downgrade(BlockDriverState *bs, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (s->refcount_order != 4) {
        error_setg(errp, "compat=0.10 requires refcount_bits=16");
        return -ENOTSUP;
    }
    if (s->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
        ret = qcow2_mark_clean(bs);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Failed to make the image clean");
            return ret;
        }
    }
    if (s->incompatible_features) {
        error_setg(errp, "Cannot downgrade an image with incompatible features "
                   "0x%" PRIx64 " set", s->incompatible_features);
        return -ENOTSUP;
    }
    ret = qcow2_flush_caches(bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to flush the image");
        return ret;
    }
    if (s->nb_snapshots) {
        error_setg(errp, "Cannot downgrade an image with snapshots: not "
                   "supported");
        return -ENOTSUP;
    }

    /* The cached L2 tables would be stale after the rewrite below. */
    ret = qcow2_cache_empty(bs, s->l2_table_cache);
    if (ret >= 0) {
        ret = qcow2_expand_zero_clusters(bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to turn zero into data clusters");
        return ret;
    }

    s->compatible_features = 0;
    s->autoclear_features = 0;
    s->use_lazy_refcounts = false;
    s->qcow_version = 2;
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        s->qcow_version = 3;
        error_setg_errno(errp, -ret, "Failed to update the image header");
        return ret;
    }
    return 0;
}

int coroutine_fn qcow2_co_amend(BlockDriverState *bs, QemuOpts *opts,
                                bool force, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int old_version = s->qcow_version, new_version = old_version;
    const char *backing_file = NULL, *backing_fmt = NULL, *str;
    bool lazy = s->use_lazy_refcounts;
    uint64_t refcount_bits = s->refcount_bits;
    uint64_t new_size = 0;
    const QemuOptDesc *desc;
    int ret;

    for (desc = qemu_opts_list(opts)->desc; desc->name; desc++) {
        if (!qemu_opt_has(opts, desc->name)) {
            continue;
        }
        if (!strcmp(desc->name, "compat")) {
            str = qemu_opt_get(opts, "compat");
            if (!qcow2_parse_version(str, &new_version)) {
                error_setg(errp, "Unknown compatibility level %s", str);
                return -EINVAL;
            }
        } else if (!strcmp(desc->name, "size")) {
            new_size = qemu_opt_get_size(opts, "size", 0);
        } else if (!strcmp(desc->name, "backing_file")) {
            backing_file = qemu_opt_get(opts, "backing_file");
        } else if (!strcmp(desc->name, "backing_fmt")) {
            backing_fmt = qemu_opt_get(opts, "backing_fmt");
        } else if (g_str_has_prefix(desc->name, "encrypt.")) {
            error_setg(errp, "Can't amend encryption options - encryption not "
                       "present");
            return -EINVAL;
        } else if (!strcmp(desc->name, "lazy_refcounts")) {
            lazy = qemu_opt_get_bool(opts, "lazy_refcounts", lazy);
        } else if (!strcmp(desc->name, "refcount_bits")) {
            refcount_bits = qemu_opt_get_number(opts, "refcount_bits",
                                                refcount_bits);
            if (refcount_bits == 0 || refcount_bits > 64 ||
                !is_power_of_2(refcount_bits)) {
                error_setg(errp, "Refcount width must be a power of two and "
                           "may not exceed 64 bits");
                return -EINVAL;
            }
        } else if (!strcmp(desc->name, "data_file")) {
            if (qemu_opt_get(opts, "data_file")) {
                error_setg(errp, "data-file can only be set for images that "
                           "use an external data file");
                return -EINVAL;
            }
        } else if (!strcmp(desc->name, "data_file_raw")) {
            if (qemu_opt_get_bool(opts, "data_file_raw", false)) {
                error_setg(errp, "data-file-raw cannot be set on existing "
                           "images");
                return -EINVAL;
            }
        }
        /* Create-only options never reach here: the tool rejects them. */
    }

    if (new_version > old_version) {
        s->qcow_version = new_version;
        ret = qcow2_update_header(bs);
        if (ret < 0) {
            s->qcow_version = old_version;
            error_setg_errno(errp, -ret, "Failed to update the image header");
            return ret;
        }
    }

    if (backing_file || backing_fmt) {
        if (g_strcmp0(backing_file, s->image_backing_file) ||
            g_strcmp0(backing_fmt, s->image_backing_format)) {
            error_setg(errp, "Cannot amend the backing file");
            error_append_hint(errp, "You can use 'qemu-img rebase' "
                              "instead.\n");
            return -EINVAL;
        }
    }

    if (s->use_lazy_refcounts != lazy) {
        if (lazy) {
            if (new_version < 3) {
                error_setg(errp, "Lazy refcounts only supported with "
                           "compatibility level 1.1 and above (use compat=1.1 "
                           "or greater)");
                return -EINVAL;
            }
            s->compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
            ret = qcow2_update_header(bs);
            if (ret < 0) {
                s->compatible_features &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
                error_setg_errno(errp, -ret, "Failed to update the image "
                                 "header");
                return ret;
            }
            s->use_lazy_refcounts = true;
        } else {
            /* Refcounts must be exact before lazy updates are disallowed. */
            ret = qcow2_mark_clean(bs);
            if (ret < 0) {
                error_setg_errno(errp, -ret, "Failed to make the image clean");
                return ret;
            }
            s->compatible_features &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
            ret = qcow2_update_header(bs);
            if (ret < 0) {
                s->compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
                error_setg_errno(errp, -ret, "Failed to update the image "
                                 "header");
                return ret;
            }
            s->use_lazy_refcounts = false;
        }
    }

    if (refcount_bits != (uint64_t)s->refcount_bits) {
        if (new_version < 3 && refcount_bits != 16) {
            error_setg(errp, "Refcount widths other than 16 bits require "
                       "compatibility level 1.1 or above (use compat=1.1 or "
                       "greater)");
            return -EINVAL;
        }
        ret = qcow2_change_refcount_order(bs, ctz64(refcount_bits), errp);
        if (ret < 0) {
            return ret;
        }
    }

    if (new_size) {
        BdrvChild self = { .bs = bs, .parent = NULL,
                           .name = (char *)"amend" };
        ret = bdrv_co_truncate(&self, new_size, true, PREALLOC_MODE_OFF, 0,
                               errp);
        if (ret < 0) {
            return ret;
        }
    }

    if (new_version < old_version) {
        ret = qcow2_downgrade(bs, errp);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}
