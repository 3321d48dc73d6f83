/*
 * qcow2 image creation, size measurement and option amendment.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Creation works as QEMU's does: a minimal image (header, refcount table,
 * one refcount block) is written, opened with the driver, and finished
 * through the driver's own paths (allocator, header update, truncate
 * with preallocation, backing file change).  There is one refcount
 * allocator, in qcow2-refcount.c, and it places structures where QEMU
 * does, so fresh images are byte-identical to QEMU's.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "block/qcow2.h"

#define QCOW2_DEFAULT_CLUSTER_SIZE 65536
#define QCOW2_L1E_SIZE 8

/* ---- option lists ------------------------------------------------------ */

/*
 * Options that create and amend share: one description each, so that
 * their help texts cannot drift apart.
 */
#define QCOW2_OPT_ITER_TIME \
    { "encrypt.iter-time", QEMU_OPT_NUMBER, \
      "Time to spend in PBKDF in milliseconds", NULL }

#define QCOW2_COMMON_OPTS \
    { "size", QEMU_OPT_SIZE, "Virtual disk size", NULL }, \
    { "compat", QEMU_OPT_STRING, \
      "Compatibility level (v2 [0.10] or v3 [1.1])", NULL }, \
    { "backing_file", QEMU_OPT_STRING, "File name of a base image", NULL }, \
    { "backing_fmt", QEMU_OPT_STRING, "Image format of the base image", \
      NULL }, \
    { "data_file", QEMU_OPT_STRING, "File name of an external data file", \
      NULL }, \
    { "data_file_raw", QEMU_OPT_BOOL, \
      "The external data file must stay valid as a raw image", NULL }, \
    { "lazy_refcounts", QEMU_OPT_BOOL, "Postpone refcount updates", "off" }, \
    { "refcount_bits", QEMU_OPT_NUMBER, \
      "Width of a reference count entry in bits", "16" }

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
        QCOW2_OPT_ITER_TIME,
        { "cluster_size", QEMU_OPT_SIZE, "qcow2 cluster size", "65536" },
        { "extended_l2", QEMU_OPT_BOOL, "Extended L2 tables", "off" },
        { "preallocation", QEMU_OPT_STRING,
          "Preallocation mode (allowed values: off, metadata, falloc, full)",
          NULL },
        { "compression_type", QEMU_OPT_STRING,
          "Compression method used for image cluster compression", "zlib" },
        QCOW2_COMMON_OPTS,
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
        QCOW2_OPT_ITER_TIME,
        QCOW2_COMMON_OPTS,
        { NULL }
    },
};

/* ---- shared helpers ---------------------------------------------------- */

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

/* ---- the initial image ------------------------------------------------- */

/*
 * The smallest image the driver opens: the header, a one-cluster refcount
 * table and one empty refcount block, in clusters 0, 1 and 2.  Everything
 * else (the refcounts of these clusters, the feature table, the L1 table,
 * preallocation, the backing file) is then done through the open driver,
 * in the order QEMU's create uses, so that the same allocator places
 * every structure.
 */
static int coroutine_fn qcow2_write_initial_image(BdrvChild *child,
                                                  const Qcow2CreateParams *p,
                                                  Error **errp)
{
    uint64_t cs = p->cluster_size;
    uint8_t *buf = qemu_try_blockalign(child->bs, 3 * cs);
    QCowHeader *h = (QCowHeader *)buf;
    int ret;

    if (!buf) {
        error_setg(errp, "Could not allocate the initial image");
        return -ENOMEM;
    }
    memset(buf, 0, 3 * cs);
    h->magic = cpu_to_be32(QCOW_MAGIC);
    h->version = cpu_to_be32(p->version);
    h->cluster_bits = cpu_to_be32(ctz64(cs));
    h->refcount_table_offset = cpu_to_be64(cs);
    h->refcount_table_clusters = cpu_to_be32(1);
    h->refcount_order = cpu_to_be32(p->refcount_order);
    h->header_length = cpu_to_be32(sizeof(QCowHeader));
    if (p->version >= 3) {
        h->incompatible_features =
            cpu_to_be64(p->compression_type != QCOW2_COMPRESSION_TYPE_ZLIB ?
                        QCOW2_INCOMPAT_COMPRESSION : 0);
        h->compatible_features =
            cpu_to_be64(p->lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
        h->compression_type = p->compression_type;
    }
    stbe64_p(buf + cs, 2 * cs);     /* refcount table entry 0 */

    ret = bdrv_co_pwrite(child, 0, 3 * cs, buf, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write qcow2 header");
    }
    qemu_vfree(buf);
    return ret;
}

/*
 * Open the initial image with the driver and finish it there: account
 * for the first three clusters, write the full header, grow to the
 * virtual size with the requested preallocation, set the backing file.
 */
static int coroutine_fn qcow2_finish_image(const char *filename,
                                           const Qcow2CreateParams *p,
                                           Error **errp)
{
    QDict *options = qdict_new();
    BlockDriverState *bs;
    BDRVQcow2State *s;
    BdrvChild self;
    int64_t off;
    int ret;

    qdict_put_str(options, "driver", "qcow2");
    bs = bdrv_open(filename, options,
                   BDRV_O_RDWR | BDRV_O_RESIZE | BDRV_O_NO_FLUSH, errp);
    if (!bs) {
        return -EIO;
    }
    s = bs->opaque;

    qemu_co_mutex_lock(&s->lock);
    off = qcow2_alloc_clusters(bs, 3 * p->cluster_size);
    if (off == 0) {
        ret = qcow2_update_header(bs);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not update qcow2 header");
        }
    } else {
        /* A fresh image has nothing else allocated: the start is free. */
        ret = off < 0 ? off : -EIO;
        error_setg_errno(errp, -ret, "Could not allocate clusters for qcow2 "
                         "header and refcount table");
    }
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        goto out;
    }

    self = (BdrvChild) { .bs = bs, .parent = NULL, .name = (char *)"create" };
    ret = bdrv_co_truncate(&self, p->size, false, p->prealloc, 0, errp);
    if (ret < 0) {
        /* bdrv_img_create() words -EFBIG itself. */
        error_prepend(errp, "Could not resize image: ");
        goto out;
    }

    if (p->backing_file) {
        ret = bdrv_co_change_backing_file(bs, p->backing_file,
                                          p->backing_fmt);
        if (ret < 0) {
            error_setg(errp, "Could not assign backing file '%s' with format "
                       "'%s': %s", p->backing_file,
                       p->backing_fmt ? p->backing_fmt : "", strerror(-ret));
            goto out;
        }
    }
    ret = 0;
out:
    bdrv_unref(bs);
    return ret < 0 ? ret : 0;
}

int coroutine_fn qcow2_co_create_opts(BlockDriver *drv, const char *filename,
                                      QemuOpts *opts, Error **errp)
{
    Qcow2CreateParams p;
    Qcow2ZonedCreateParams zp;
    BlockDriverState *file_bs;
    BdrvChild child;
    QDict *options;
    int ret;

    ret = qcow2_zoned_parse_create_opts(opts, &zp, errp);
    if (ret < 0) {
        return ret;
    }
    ret = qcow2_parse_create_opts(opts, &p, errp);
    if (ret < 0) {
        return ret;
    }
    if (p.backing_file && strlen(p.backing_file) > 1023) {
        /* Refused before anything is written, as by the header update. */
        error_setg(errp, "Could not assign backing file '%s' with format "
                   "'%s': %s", p.backing_file,
                   p.backing_fmt ? p.backing_fmt : "", strerror(ENOSPC));
        return -ENOSPC;
    }

    ret = qcow2_create_protocol_file(filename, opts, errp);
    if (ret < 0) {
        return ret;
    }

    options = qdict_new();
    qdict_put_str(options, "driver", "file");
    file_bs = bdrv_open(filename, options, BDRV_O_RDWR | BDRV_O_PROTOCOL,
                        errp);
    if (!file_bs) {
        return -EIO;
    }
    /*
     * A private edge to the new file while the initial image is written.
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
        ret = qcow2_write_initial_image(&child, &p, errp);
    }
    bdrv_parent_unlink(&child);
    /* Drop the locks for the driver's own open; @file_bs stays for the flush. */
    bdrv_refresh_perms(file_bs, NULL);

    if (ret >= 0) {
        ret = qcow2_finish_image(filename, &p, errp);
    }
    if (ret >= 0) {
        /*
         * The driver ran without flushes, as QEMU's create does: one
         * flush of the file now puts the whole image on disk (the initial
         * write through @file_bs is not flushed yet, so this is not
         * skipped).
         */
        ret = bdrv_co_flush(file_bs);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not flush qcow2 image");
        }
    }
    bdrv_unref(file_bs);
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
