/*
 * qcow2 format driver: private definitions shared by block/qcow2*.c.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * On-disk structures are big-endian.  Metadata tables held in the caches
 * stay in on-disk byte order; the L1 table and the refcount table are
 * kept in host order in memory and converted when written.
 */
#ifndef BLOCK_QCOW2_H
#define BLOCK_QCOW2_H

#include "qemu/coroutine.h"
#include "qemu/iov.h"
#include "qemu/option.h"
#include "qemu/qobject.h"
#include "block/block_int.h"

#define QCOW_MAGIC ((uint32_t)('Q' << 24 | 'F' << 16 | 'I' << 8 | 0xfb))

#define MIN_CLUSTER_BITS 9
#define MAX_CLUSTER_BITS 21
#define DEFAULT_CLUSTER_BITS 16

/* Sane upper bounds for tables we load completely into memory. */
#define QCOW_MAX_REFTABLE_SIZE (8 * MiB)
#define QCOW_MAX_L1_SIZE       (32 * MiB)
#define QCOW_MAX_SNAPSHOTS     65536
#define QCOW_MAX_HEADER_EXT    (64 * KiB)

/* Largest host offset a table entry can express (bits 9..55). */
#define QCOW_MAX_HOST_OFFSET   ((INT64_C(1) << 56) - 1)

/* L1/L2 entry flags and masks. */
#define QCOW_OFLAG_COPIED      (UINT64_C(1) << 63)
#define QCOW_OFLAG_COMPRESSED  (UINT64_C(1) << 62)
#define QCOW_OFLAG_ZERO        (UINT64_C(1) << 0)

#define L1E_OFFSET_MASK        UINT64_C(0x00fffffffffffe00)
#define L2E_OFFSET_MASK        UINT64_C(0x00fffffffffffe00)
#define L1E_RESERVED_MASK      UINT64_C(0x7f000000000001ff)
#define L2E_STD_RESERVED_MASK  UINT64_C(0x3f000000000001fe)
#define REFT_OFFSET_MASK       UINT64_C(0xfffffffffffffe00)
#define REFT_RESERVED_MASK     UINT64_C(0x1ff)

#define QCOW2_COMPRESSED_SECTOR_SIZE 512

/* Header extension magics. */
#define QCOW2_EXT_MAGIC_END             0
#define QCOW2_EXT_MAGIC_BACKING_FORMAT  0xe2792aca
#define QCOW2_EXT_MAGIC_FEATURE_TABLE   0x6803f857
#define QCOW2_EXT_MAGIC_CRYPTO_HEADER   0x0537be77
#define QCOW_CRYPT_LUKS                 2   /* header crypt_method */
#define QCOW2_EXT_MAGIC_BITMAPS         0x23852875
#define QCOW2_EXT_MAGIC_DATA_FILE       0x44415441
#define QCOW2_EXT_MAGIC_ZONED           0x007a6264

/* Zoned extension: bytes we read and write (longer ones are accepted). */
#define QCOW2_ZONED_EXT_LEN             56
/* Write-pointer entry of a conventional zone: zone start | this bit. */
#define QCOW2_ZONED_CONV_WP_FLAG        (UINT64_C(1) << 59)
#define QCOW2_ZONED_HOST_MANAGED        1

/* Incompatible feature bits. */
enum {
    QCOW2_INCOMPAT_DIRTY_BITNR       = 0,
    QCOW2_INCOMPAT_CORRUPT_BITNR     = 1,
    QCOW2_INCOMPAT_DATA_FILE_BITNR   = 2,
    QCOW2_INCOMPAT_COMPRESSION_BITNR = 3,
    QCOW2_INCOMPAT_EXTL2_BITNR       = 4,
    QCOW2_INCOMPAT_ZONED_BITNR       = 5,   /* reserved for our zoned format */

    QCOW2_INCOMPAT_DIRTY       = 1 << QCOW2_INCOMPAT_DIRTY_BITNR,
    QCOW2_INCOMPAT_CORRUPT     = 1 << QCOW2_INCOMPAT_CORRUPT_BITNR,
    QCOW2_INCOMPAT_DATA_FILE   = 1 << QCOW2_INCOMPAT_DATA_FILE_BITNR,
    QCOW2_INCOMPAT_COMPRESSION = 1 << QCOW2_INCOMPAT_COMPRESSION_BITNR,
    QCOW2_INCOMPAT_EXTL2       = 1 << QCOW2_INCOMPAT_EXTL2_BITNR,
    QCOW2_INCOMPAT_ZONED       = 1 << QCOW2_INCOMPAT_ZONED_BITNR,

    /* What this driver implements. */
    QCOW2_INCOMPAT_MASK        = QCOW2_INCOMPAT_DIRTY
                               | QCOW2_INCOMPAT_CORRUPT
                               | QCOW2_INCOMPAT_COMPRESSION
                               | QCOW2_INCOMPAT_ZONED,
};

/* Compatible feature bits. */
enum {
    QCOW2_COMPAT_LAZY_REFCOUNTS_BITNR = 0,
    QCOW2_COMPAT_LAZY_REFCOUNTS       = 1 << QCOW2_COMPAT_LAZY_REFCOUNTS_BITNR,
    QCOW2_COMPAT_FEAT_MASK            = QCOW2_COMPAT_LAZY_REFCOUNTS,
};

/* Autoclear feature bits. */
enum {
    QCOW2_AUTOCLEAR_BITMAPS_BITNR       = 0,
    QCOW2_AUTOCLEAR_DATA_FILE_RAW_BITNR = 1,
    QCOW2_AUTOCLEAR_BITMAPS       = 1 << QCOW2_AUTOCLEAR_BITMAPS_BITNR,
    QCOW2_AUTOCLEAR_DATA_FILE_RAW = 1 << QCOW2_AUTOCLEAR_DATA_FILE_RAW_BITNR,
    /*
     * Bits we understand.  Bitmaps are not tracked: a read-write open
     * flags them in use (inconsistent) and keeps the bit; every other
     * autoclear bit is cleared.
     */
    QCOW2_AUTOCLEAR_MASK          = QCOW2_AUTOCLEAR_BITMAPS,
};

enum {
    QCOW2_FEAT_TYPE_INCOMPATIBLE = 0,
    QCOW2_FEAT_TYPE_COMPATIBLE   = 1,
    QCOW2_FEAT_TYPE_AUTOCLEAR    = 2,
};

typedef enum Qcow2CompressionType {
    QCOW2_COMPRESSION_TYPE_ZLIB = 0,
    QCOW2_COMPRESSION_TYPE_ZSTD = 1,
} Qcow2CompressionType;

/* The fixed part of the header (104 bytes + compression type + padding). */
typedef struct QEMU_PACKED QCowHeader {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;                  /* in bytes */
    uint32_t crypt_method;
    uint32_t l1_size;               /* entries */
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;

    /* Version 3 and later. */
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;

    /* Optional: header_length >= 112. */
    uint8_t compression_type;
    uint8_t padding[7];
} QCowHeader;

QEMU_BUILD_BUG_ON(sizeof(QCowHeader) != 112);
#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_V3_MIN_HEADER_LENGTH 104

typedef struct QEMU_PACKED QCowExtension {
    uint32_t magic;
    uint32_t len;
} QCowExtension;

/* One entry of the feature name table extension (48 bytes). */
typedef struct QEMU_PACKED Qcow2Feature {
    uint8_t type;
    uint8_t bit;
    char name[46];
} Qcow2Feature;

/* Bitmaps extension payload (kept as is and written back). */
typedef struct QEMU_PACKED Qcow2BitmapHeaderExt {
    uint32_t nb_bitmaps;
    uint32_t reserved32;
    uint64_t bitmap_directory_size;
    uint64_t bitmap_directory_offset;
} Qcow2BitmapHeaderExt;

/* On-disk snapshot table entry header (variable length follows). */
typedef struct QEMU_PACKED QCowSnapshotHeader {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    uint16_t id_str_size;
    uint16_t name_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint32_t vm_state_size;
    uint32_t extra_data_size;
} QCowSnapshotHeader;

/* An extension we do not interpret: kept and written back verbatim. */
typedef struct Qcow2UnknownHeaderExtension {
    uint32_t magic;
    uint32_t len;
    struct Qcow2UnknownHeaderExtension *next;
    uint8_t data[];
} Qcow2UnknownHeaderExtension;

/* One snapshot table entry in memory (qcow2-snapshot.c). */
typedef struct QCowSnapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id_str;
    char *name;
    uint64_t disk_size;              /* without extra data: image size */
    uint64_t vm_state_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;                 /* UINT64_MAX: not recorded */
    /* Extra data size as read (0 for new entries) and the bytes beyond
     * the fields we know, written back unchanged. */
    uint32_t extra_data_size;
    uint8_t *unknown_extra_data;
} QCowSnapshot;

/*
 * What an L2 entry (or its absence) means.  The order matters: the
 * *_PLAIN/UNALLOCATED types have no host cluster.
 */
typedef enum QCow2ClusterType {
    QCOW2_CLUSTER_UNALLOCATED,
    QCOW2_CLUSTER_ZERO_PLAIN,
    QCOW2_CLUSTER_ZERO_ALLOC,
    QCOW2_CLUSTER_NORMAL,
    QCOW2_CLUSTER_COMPRESSED,
} QCow2ClusterType;

/* Metadata overlap check classes (bitmask). */
typedef enum QCow2MetadataOverlap {
    QCOW2_OL_MAIN_HEADER     = 1 << 0,
    QCOW2_OL_ACTIVE_L1       = 1 << 1,
    QCOW2_OL_ACTIVE_L2       = 1 << 2,
    QCOW2_OL_REFCOUNT_TABLE  = 1 << 3,
    QCOW2_OL_REFCOUNT_BLOCK  = 1 << 4,
    QCOW2_OL_SNAPSHOT_TABLE  = 1 << 5,
    QCOW2_OL_INACTIVE_L1     = 1 << 6,
    QCOW2_OL_INACTIVE_L2     = 1 << 7,
    QCOW2_OL_BITMAP_DIRECTORY = 1 << 8,
    QCOW2_OL_ZONED_META      = 1 << 9,   /* write-pointer region */

    /* Everything cheap to check (no table walks beyond memory). */
    QCOW2_OL_CACHED          = QCOW2_OL_MAIN_HEADER | QCOW2_OL_ACTIVE_L1
                             | QCOW2_OL_ACTIVE_L2 | QCOW2_OL_REFCOUNT_TABLE
                             | QCOW2_OL_REFCOUNT_BLOCK
                             | QCOW2_OL_SNAPSHOT_TABLE
                             | QCOW2_OL_INACTIVE_L1
                             | QCOW2_OL_BITMAP_DIRECTORY
                             | QCOW2_OL_ZONED_META,
    QCOW2_OL_ALL             = QCOW2_OL_CACHED | QCOW2_OL_INACTIVE_L2,
} QCow2MetadataOverlap;

typedef struct Qcow2Cache Qcow2Cache;

/* The zoned extension, in host byte order (layout: docs/interop/qcow2.txt). */
typedef struct Qcow2ZonedHeaderExt {
    uint8_t zoned;
    uint64_t zone_size;
    uint64_t zone_capacity;
    uint32_t conventional_zones;
    uint32_t nr_zones;
    uint32_t max_active_zones;
    uint32_t max_open_zones;
    uint32_t max_append_bytes;
    uint64_t zonedmeta_size;
    uint64_t zonedmeta_offset;
} Qcow2ZonedHeaderExt;

/* Zoned runtime state (qcow2.c); NULL for ordinary images. */
typedef struct Qcow2ZonedState Qcow2ZonedState;

/* A range of bytes inside a newly allocated cluster run to copy. */
typedef struct Qcow2COWRegion {
    uint64_t offset;     /* relative to the start of the run */
    uint64_t bytes;
} Qcow2COWRegion;

/*
 * An allocation in flight: the guest range [guest_offset, +nb_clusters)
 * is being given the host clusters at alloc_offset.  Later writes to an
 * overlapping guest range wait on dependent_requests until the L2
 * entries are linked.
 */
typedef struct QCowL2Meta {
    uint64_t guest_offset;       /* cluster aligned */
    uint64_t alloc_offset;       /* host, cluster aligned */
    int nb_clusters;
    /* Parts of the run not covered by the write: copied from the data
     * the guest currently sees there (read through the driver). */
    Qcow2COWRegion cow_start;
    Qcow2COWRegion cow_end;
    bool cow_start_zero;         /* that data is known to be zero */
    bool cow_end_zero;
    bool new_is_zero;            /* the new host clusters read as zero */
    CoQueue dependent_requests;
    struct QCowL2Meta *next;         /* in s->cluster_allocs */
} QCowL2Meta;

typedef uint64_t Qcow2GetRefcountFunc(const void *refcount_array,
                                      uint64_t index);
typedef void Qcow2SetRefcountFunc(void *refcount_array, uint64_t index,
                                  uint64_t value);

typedef struct BDRVQcow2State {
    /* Geometry. */
    int cluster_bits;
    int cluster_size;
    int l2_bits;                 /* log2(entries per L2 table) */
    int l2_size;                 /* entries per L2 table */
    int64_t cluster_offset_mask; /* compressed descriptor: host offset */
    int csize_shift;             /* compressed descriptor: sector count */
    int64_t csize_mask;

    /* Header fields. */
    int qcow_version;
    uint64_t size;               /* virtual size, bytes */
    uint32_t crypt_method_header;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t header_length;      /* as on disk (v2: 72) */
    uint8_t *unknown_header_fields;  /* v3 bytes beyond what we know */
    int unknown_header_fields_size;
    Qcow2CompressionType compression_type;
    uint64_t backing_file_offset;    /* 0: none */
    uint32_t backing_file_size;
    char *image_backing_file;        /* as stored in the header, or NULL */
    char *image_backing_format;      /* backing format extension, or NULL */
    Qcow2UnknownHeaderExtension *unknown_exts;  /* kept, in file order */
    Qcow2Feature *feature_table;     /* from the image, may be NULL */
    int nb_features;
    bool has_bitmaps_ext;
    Qcow2BitmapHeaderExt bitmaps_ext;    /* in disk order */
    bool has_zoned_ext;
    Qcow2ZonedHeaderExt zoned_ext;
    Qcow2ZonedState *zoned;

    /* L1 table of the active image (host byte order). */
    uint64_t *l1_table;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint32_t l1_vm_state_index;

    /* Refcounts. */
    uint64_t *refcount_table;        /* host byte order */
    uint64_t refcount_table_offset;
    uint32_t refcount_table_size;    /* entries (in memory) */
    uint32_t refcount_table_disk_entries; /* entries of the table on disk */
    uint64_t refcount_table_generation;   /* bumped by each growth */
    uint32_t max_refcount_table_index; /* highest used entry */
    int refcount_order;
    int refcount_bits;
    uint64_t refcount_max;
    int refcount_block_bits;         /* log2(entries per refcount block) */
    int refcount_block_size;         /* entries per refcount block */
    Qcow2GetRefcountFunc *get_refcount;
    Qcow2SetRefcountFunc *set_refcount;
    uint64_t free_cluster_index;     /* search hint */
    uint64_t free_byte_offset;       /* compressed writes: partial cluster */
    /* A refcount dropped to 0 since the L2 cache was last flushed. */
    bool freed_unwritten;

    /* Snapshot table (qcow2-snapshot.c). */
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    int snapshots_size;
    QCowSnapshot *snapshots;

    /* Caches. */
    Qcow2Cache *l2_table_cache;
    Qcow2Cache *refcount_block_cache;
    uint64_t l2_cache_size;          /* bytes */
    uint64_t refcount_cache_size;    /* bytes */

    /* Protects metadata (caches, tables, refcounts, cluster_allocs). */
    CoMutex lock;
    QCowL2Meta *cluster_allocs;      /* allocations in flight */

    /* Options. */
    int overlap_check;               /* QCOW2_OL_* to check */
    bool use_lazy_refcounts;
    bool discard_passthrough;
    bool signaled_corruption;

    /* Host file growth: see qcow2_grow_file(). */
    int64_t file_size;               /* current length of bs->file */
    int64_t open_file_size;          /* its length at open (never trimmed) */
    int64_t zero_start;              /* at and above: never written by us */
    int64_t alloc_end;               /* end of the highest allocation */
    /*
     * End of the highest host cluster we made an L1/L2 entry point at.
     * The close-time trim never goes below it: with corrupted refcounts
     * (say a compressed descriptor overlapping a later allocation) the
     * cluster may be unreferenced yet hold guest data.
     */
    int64_t linked_end;
    /*
     * End of the data of the highest compressed cluster written (rounded
     * to 512 once qemu-img convert signals the end).  QEMU leaves the file
     * there, not at the end of that host cluster.
     */
    int64_t compressed_end;
    bool file_grown;                 /* we extended the file ahead */
    bool file_lazy;                  /* file_size may pass the real end */
    bool activated;                  /* qcow2_co_activate() succeeded */
    int64_t prealloc_step;

    /*
     * The image looks metadata-preallocated (more referenced clusters
     * than the host file really holds): block status then asks the file
     * whether data clusters are holes.  Decided on first use.
     */
    bool metadata_preallocation;
    bool metadata_preallocation_checked;

    /* Bounce buffer of cluster_size zeroes for COW (aligned). */
    void *zero_cluster;

    /*
     * Filter of host clusters that may hold metadata, indexed by cluster
     * number modulo its size.  Bits are only ever set, so a clear bit
     * proves a cluster is data: the rewrite fast path then skips the
     * table walks of the overlap check.
     */
#define QCOW2_META_FILTER_BITS 65536
    uint64_t meta_filter[QCOW2_META_FILTER_BITS / 64];
} BDRVQcow2State;

/* ---- inline helpers ----------------------------------------------------- */

static inline int64_t start_of_cluster(BDRVQcow2State *s, int64_t offset)
{
    return offset & ~(int64_t)(s->cluster_size - 1);
}

static inline int64_t offset_into_cluster(BDRVQcow2State *s, int64_t offset)
{
    return offset & (s->cluster_size - 1);
}

static inline uint64_t size_to_clusters(BDRVQcow2State *s, uint64_t size)
{
    return (size + (s->cluster_size - 1)) >> s->cluster_bits;
}

static inline int64_t size_to_l1(BDRVQcow2State *s, int64_t size)
{
    int shift = s->cluster_bits + s->l2_bits;
    return (size + (INT64_C(1) << shift) - 1) >> shift;
}

static inline int offset_to_l1_index(BDRVQcow2State *s, uint64_t offset)
{
    return offset >> (s->l2_bits + s->cluster_bits);
}

static inline int offset_to_l2_index(BDRVQcow2State *s, int64_t offset)
{
    return (offset >> s->cluster_bits) & (s->l2_size - 1);
}

static inline bool offset_is_cluster_aligned(BDRVQcow2State *s, int64_t o)
{
    return offset_into_cluster(s, o) == 0;
}

static inline int64_t qcow2_vm_state_offset(BDRVQcow2State *s)
{
    return (int64_t)s->l1_vm_state_index << (s->cluster_bits + s->l2_bits);
}

static inline QCow2ClusterType qcow2_get_cluster_type(BlockDriverState *bs,
                                                      uint64_t l2_entry)
{
    BDRVQcow2State *s = bs->opaque;

    if (l2_entry & QCOW_OFLAG_COMPRESSED) {
        return QCOW2_CLUSTER_COMPRESSED;
    }
    if ((l2_entry & QCOW_OFLAG_ZERO) && s->qcow_version >= 3) {
        return (l2_entry & L2E_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC
                                            : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    return (l2_entry & L2E_OFFSET_MASK) ? QCOW2_CLUSTER_NORMAL
                                        : QCOW2_CLUSTER_UNALLOCATED;
}

/* Note that host clusters [offset, offset+size) hold metadata. */
static inline void qcow2_meta_filter_add(BDRVQcow2State *s, uint64_t offset,
                                         uint64_t size)
{
    uint64_t c, last;

    if (!size) {
        return;
    }
    /* Saturate: corrupted snapshot entries may name ranges near 2^64. */
    last = (offset + size - 1 < offset ? UINT64_MAX : offset + size - 1) >>
           s->cluster_bits;
    for (c = offset >> s->cluster_bits; c <= last; c++) {
        uint64_t b = c & (QCOW2_META_FILTER_BITS - 1);

        s->meta_filter[b / 64] |= UINT64_C(1) << (b % 64);
        if (last - c >= QCOW2_META_FILTER_BITS) {
            c = last - QCOW2_META_FILTER_BITS;   /* wrapped: all set */
        }
    }
}

/* May [offset, offset+size) touch a metadata cluster? */
static inline bool qcow2_meta_filter_hit(BDRVQcow2State *s, uint64_t offset,
                                         uint64_t size)
{
    uint64_t c = offset >> s->cluster_bits;
    uint64_t last = (offset + size - 1) >> s->cluster_bits;

    for (; c <= last; c++) {
        uint64_t b = c & (QCOW2_META_FILTER_BITS - 1);

        if (s->meta_filter[b / 64] & (UINT64_C(1) << (b % 64))) {
            return true;
        }
    }
    return false;
}

/* Refcounts are exact unless lazy refcounts are in use. */
static inline bool qcow2_need_accurate_refcounts(BDRVQcow2State *s)
{
    return !(s->incompatible_features & QCOW2_INCOMPAT_DIRTY);
}

static inline bool qcow2_is_corrupt(BDRVQcow2State *s)
{
    return s->incompatible_features & QCOW2_INCOMPAT_CORRUPT;
}

/* Host offset and length (bytes) described by a compressed L2 entry. */
static inline void qcow2_parse_compressed_l2_entry(BDRVQcow2State *s,
                                                   uint64_t l2_entry,
                                                   uint64_t *coffset,
                                                   int *csize)
{
    uint64_t nb_sectors;

    *coffset = l2_entry & s->cluster_offset_mask;
    nb_sectors = ((l2_entry >> s->csize_shift) & s->csize_mask) + 1;
    *csize = nb_sectors * QCOW2_COMPRESSED_SECTOR_SIZE -
             (*coffset & (QCOW2_COMPRESSED_SECTOR_SIZE - 1));
}

/* ---- qcow2.c functions: the zoned emulation ----------------------------- */

/* Load and validate the write pointers; fills bs->bl (open path). */
int coroutine_fn qcow2_zoned_open(BlockDriverState *bs, Error **errp);
void qcow2_zoned_close(BlockDriverState *bs);
/* Write dirty write pointers after making data and metadata durable. */
int coroutine_fn qcow2_zoned_persist(BlockDriverState *bs);
/*
 * Check (and with BDRV_FIX_ERRORS repair) the zoned extension and every
 * write pointer; for qcow2_co_check, called with s->lock held and the
 * metadata caches written.  Prints what it finds on stderr.
 */
int coroutine_fn qcow2_zoned_check(BlockDriverState *bs,
                                   BdrvCheckResult *res, BdrvCheckMode fix);

/* ---- qcow2-open.c functions: open, activate, close ---------------------- */

int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename);
int coroutine_fn qcow2_co_open(BlockDriverState *bs, QDict *options,
                               int flags, Error **errp);
/*
 * Driver callback: the open went through; make the updates it implies.
 * Coroutine, s->lock not held, no request in flight.  0 or -errno.
 */
int coroutine_fn qcow2_co_activate(BlockDriverState *bs, Error **errp);
void coroutine_fn qcow2_co_close(BlockDriverState *bs);
/* Limits of any qcow2 image (qcow2.c adds the zoned ones). */
void qcow2_refresh_limits(BlockDriverState *bs, Error **errp);
/* Write the dirty metadata tables to bs->file (s->lock not held). */
int coroutine_fn qcow2_co_flush_caches(BlockDriverState *bs);
int64_t coroutine_fn qcow2_co_getlength(BlockDriverState *bs);
/* The runtime option list of the driver (l2-cache-size, ...). */
extern const QemuOptsList qcow2_runtime_opts;

/* ---- qcow2-file.c functions: the length of the host file ---------------- */

/* Make sure bs->file is at least @end long, growing ahead in steps. */
int coroutine_fn qcow2_grow_file(BlockDriverState *bs, int64_t end);
/*
 * Grow the file over [offset, +bytes) that a table names past its end if
 * the refcounts say those clusters are ours; else signal corruption (-EIO).
 */
int coroutine_fn qcow2_cover_allocated(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, const char *what);
/* At a clean close: trim what was reserved ahead, cover lazy growth. */
void coroutine_fn qcow2_trim_file(BlockDriverState *bs);

/* ---- qcow2-refcount.c functions ----------------------------------------- */

int coroutine_fn qcow2_refcount_init(BlockDriverState *bs);
void qcow2_refcount_close(BlockDriverState *bs);
/* Pick the per-width accessors for s->refcount_order. */
void qcow2_refcount_set_accessors(BDRVQcow2State *s);
Qcow2GetRefcountFunc *qcow2_refcount_get_func(int refcount_order);
Qcow2SetRefcountFunc *qcow2_refcount_set_func(int refcount_order);

int coroutine_fn qcow2_get_refcount(BlockDriverState *bs,
                                    int64_t cluster_index,
                                    uint64_t *refcount);
/* Add @addend to the refcount of every cluster of [offset, +length). */
int coroutine_fn qcow2_update_refcount(BlockDriverState *bs, int64_t offset,
                                       int64_t length, int64_t addend,
                                       bool decrease);
int coroutine_fn qcow2_update_cluster_refcount(BlockDriverState *bs,
                                               int64_t cluster_index,
                                               uint64_t addend,
                                               bool decrease);
/* Allocate @size bytes of clusters (refcount 1); returns host offset. */
int64_t coroutine_fn qcow2_alloc_clusters(BlockDriverState *bs,
                                          uint64_t size);
/* Allocate clusters at a given host offset if free; returns count. */
int64_t coroutine_fn qcow2_alloc_clusters_at(BlockDriverState *bs,
                                             uint64_t offset,
                                             int64_t nb_clusters);
/* Allocate @size bytes for compressed data (sub-cluster granularity). */
int64_t coroutine_fn qcow2_alloc_bytes(BlockDriverState *bs, int size);
void coroutine_fn qcow2_free_clusters(BlockDriverState *bs, int64_t offset,
                                      int64_t size);
/* Drop the references of an L2 entry (normal or compressed cluster). */
void coroutine_fn qcow2_free_any_cluster(BlockDriverState *bs,
                                         uint64_t l2_entry);
/* Offset just past the last cluster with a non-zero refcount. */
int64_t coroutine_fn qcow2_get_last_allocated_end(BlockDriverState *bs);
/*
 * Check that writing [offset, +size) does not overlap metadata of a class
 * in s->overlap_check & ~@ign.  Returns 0 or the first QCOW2_OL_* hit.
 */
int qcow2_check_metadata_overlap(BlockDriverState *bs, int ign,
                                 int64_t offset, int64_t size);
/* The same, signalling corruption (-EIO) on overlap. */
int qcow2_pre_write_overlap_check(BlockDriverState *bs, int ign,
                                  int64_t offset, int64_t size);
/*
 * 1 if clearly more clusters are referenced than the host file holds
 * (as after preallocation=metadata), 0 if not, or -errno.  s->lock held.
 */
int coroutine_fn qcow2_detect_metadata_preallocation(BlockDriverState *bs);
/*
 * Make a new metadata table live: write @size bytes of @buf at @offset
 * (overlap-checked; nothing when @size is 0) and make them stable, then
 * rewrite the @hdr_size header bytes at @hdr_offset that name the table.
 * Until that last write the old table stays in use, so a crash at worst
 * leaks the new clusters.  What the table points at must be stable
 * already.  Returns 0 or -errno.
 */
int coroutine_fn qcow2_write_table_and_header(BlockDriverState *bs,
                                              int64_t offset,
                                              const void *buf, uint64_t size,
                                              size_t hdr_offset,
                                              const void *hdr,
                                              size_t hdr_size);
/* Write the in-memory refcount table entries [first, first+n) to disk. */
int coroutine_fn qcow2_write_refcount_table_entries(BlockDriverState *bs,
                                                    uint32_t first,
                                                    uint32_t n);
/* amend refcount_bits=: rewrite the refcount structures, 2^@order bits. */
int coroutine_fn qcow2_change_refcount_order(BlockDriverState *bs, int order,
                                             Error **errp);
/*
 * New refcount blocks and a new table at @start (see qcow2-refcount.c);
 * returns the end of them or -errno.
 */
int64_t coroutine_fn qcow2_refcount_area(BlockDriverState *bs, uint64_t start,
                                         uint64_t additional, bool exact,
                                         uint64_t new_index,
                                         uint64_t new_offset);
/*
 * Bytes of refcount blocks and table needed for @clusters clusters plus
 * themselves (*refblock_count: the blocks); @generous adds the room a
 * table growth reserves.
 */
int64_t qcow2_refcount_metadata_size(int64_t clusters, uint64_t cluster_size,
                                     int refcount_order, bool generous,
                                     uint64_t *refblock_count);

/* ---- qcow2-io.c functions: the data path, without zone rules ----------- */

int coroutine_fn qcow2_co_preadv_data(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      size_t qiov_offset,
                                      BdrvRequestFlags flags);
int coroutine_fn qcow2_co_pwritev_data(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       size_t qiov_offset,
                                       BdrvRequestFlags flags);
int coroutine_fn
qcow2_co_pwritev_compressed_data(BlockDriverState *bs, int64_t offset,
                                 int64_t bytes, QEMUIOVector *qiov,
                                 size_t qiov_offset);
int coroutine_fn qcow2_co_pwrite_zeroes_data(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags);
int coroutine_fn qcow2_co_pdiscard_data(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes);
int coroutine_fn qcow2_co_make_empty_data(BlockDriverState *bs);
int coroutine_fn qcow2_co_block_status_data(BlockDriverState *bs,
                                            bool want_zero, int64_t offset,
                                            int64_t bytes, int64_t *pnum,
                                            int64_t *map,
                                            BlockDriverState **file);

/* ---- qcow2-resize.c functions ------------------------------------------- */

/* Resize (grow, maybe preallocated, or shrink); refused for zoned images. */
int coroutine_fn qcow2_co_truncate(BlockDriverState *bs, int64_t offset,
                                   bool exact, PreallocMode prealloc,
                                   BdrvRequestFlags flags, Error **errp);

/* ---- qcow2-header.c functions ------------------------------------------- */

/*
 * Read and check the header at open: fixed fields, extensions, table
 * locations.  *pfirst gets the first cluster (the caller frees it, also
 * on failure), for qcow2_read_backing_name().
 */
int coroutine_fn qcow2_read_header(BlockDriverState *bs, int flags,
                                   uint8_t **pfirst, Error **errp);
int qcow2_read_backing_name(BlockDriverState *bs, const uint8_t *first,
                            Error **errp);
/* Validate a table's offset/size against format limits. */
int qcow2_validate_table(BlockDriverState *bs, uint64_t offset,
                         uint64_t entries, size_t entry_len,
                         int64_t max_size_bytes, const char *table_name,
                         Error **errp);
/* Write the header (and all extensions) back to the image. */
int coroutine_fn qcow2_update_header(BlockDriverState *bs);
/* Set/clear the dirty bit (lazy refcounts). */
int coroutine_fn qcow2_mark_dirty(BlockDriverState *bs);
int coroutine_fn qcow2_mark_clean(BlockDriverState *bs);
/*
 * The single corruption path: with @fatal, sets the corrupt bit, writes
 * the header and refuses further writes (-EIO); otherwise only reports.
 * The message is printed once per open image.
 */
void qcow2_signal_corruption(BlockDriverState *bs, bool fatal,
                             int64_t offset, int64_t size,
                             const char *fmt, ...) QEMU_PRINTF(5, 6);
int coroutine_fn qcow2_mark_corrupt(BlockDriverState *bs);
/* "qemu-img info": the driver's general and qcow2-specific info. */
int qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi);
QObject *qcow2_get_specific_info(BlockDriverState *bs, Error **errp);

void qcow2_report_unsupported_feature(BDRVQcow2State *s, Error **errp,
                                      uint64_t mask);
void qcow2_free_unknown_exts(BDRVQcow2State *s);
/* Parse the extensions in [start, end) of the first cluster @buf. */
int qcow2_read_extensions(BlockDriverState *bs, const uint8_t *buf,
                          uint64_t start, uint64_t end, Error **errp);
/*
 * Check the zoned extension against the image (virtual size, file size,
 * bit present); the message names the offending field.
 */
int qcow2_zoned_validate_ext(BlockDriverState *bs, Error **errp);
int coroutine_fn qcow2_co_change_backing_file(BlockDriverState *bs,
                                              const char *backing_file,
                                              const char *backing_fmt);

/* Zoned creation parameters (zone.* options). */
typedef struct Qcow2ZonedCreateParams {
    bool zoned;
    uint64_t zone_size;
    uint64_t zone_capacity;
    uint32_t conventional_zones;
    uint32_t max_open_zones;
    uint32_t max_active_zones;
    uint32_t max_append_bytes;
} Qcow2ZonedCreateParams;

/*
 * Parse and validate the zone.* create options for an image of @size
 * bytes; p->zoned stays false without zone.mode.  Also rejects options
 * a zoned image cannot have (backing file, compat=0.10, ...).
 */
int qcow2_zoned_parse_create_opts(QemuOpts *opts, Qcow2ZonedCreateParams *p,
                                  Error **errp);
/* With zone.mode, give the other zone.* options their defaults. */
void qcow2_zoned_create_opts_defaults(QemuOpts *opts);
/* Turn the freshly created image @filename into a zoned one. */
int coroutine_fn qcow2_zoned_format(const char *filename,
                                    const Qcow2ZonedCreateParams *p,
                                    Error **errp);

/* ---- qcow2-cluster.c functions ------------------------------------------ */

/*
 * Look up the mapping of guest @offset: sets *bytes to the length (at most
 * the input value, never crossing an L2 table) of the run with the same
 * type and contiguous host clusters, *host_offset to the host byte for
 * @offset (0 if none; for compressed clusters the raw L2 entry is
 * returned in *host_offset) and returns the type or -errno.
 */
int coroutine_fn qcow2_get_host_offset(BlockDriverState *bs, uint64_t offset,
                                       uint64_t *bytes,
                                       uint64_t *host_offset,
                                       QCow2ClusterType *type);
/* Write L1 entries [l1_index rounded to a sector) to disk. */
int coroutine_fn qcow2_write_l1_entry(BlockDriverState *bs, int l1_index);
int coroutine_fn qcow2_grow_l1_table(BlockDriverState *bs,
                                     uint64_t min_size, bool exact_size);
/*
 * Prepare an allocating write of guest [offset, +*bytes): returns with
 * *host_offset set and *m filled (or NULL if the range needs no
 * allocation: the clusters are normal and writable in place).  Shortens
 * *bytes to what was handled.  Called with s->lock held; may drop it while
 * waiting for conflicting allocations.
 */
int coroutine_fn qcow2_alloc_host_offset(BlockDriverState *bs,
                                         uint64_t offset, uint64_t *bytes,
                                         uint64_t *host_offset,
                                         QCowL2Meta **m);
/* Link the clusters of @m into the L2 table (s->lock held). */
int coroutine_fn qcow2_alloc_cluster_link_l2(BlockDriverState *bs,
                                             QCowL2Meta *m);
/* Undo an allocation that failed before linking (s->lock held). */
void coroutine_fn qcow2_alloc_cluster_abort(BlockDriverState *bs,
                                            QCowL2Meta *m);
/* Allocate space for one compressed cluster at guest @offset. */
int coroutine_fn qcow2_alloc_compressed_cluster_offset(BlockDriverState *bs,
                                                       uint64_t offset,
                                                       int compressed_size,
                                                       uint64_t *host_offset);
/* Discard or zero whole clusters of [offset, +bytes) (s->lock held). */
int coroutine_fn qcow2_cluster_discard(BlockDriverState *bs, uint64_t offset,
                                       uint64_t bytes, bool full_discard);
int coroutine_fn qcow2_subcluster_zeroize(BlockDriverState *bs,
                                          uint64_t offset, uint64_t bytes,
                                          int flags);
/* Wait until no allocation in flight touches [offset, +bytes). */
int coroutine_fn qcow2_wait_for_allocations(BlockDriverState *bs,
                                            uint64_t offset, uint64_t bytes);
/*
 * Give guest @offset a writable L2 table (allocated, or copied if shared)
 * as an allocating write would (s->lock held).
 */
int coroutine_fn qcow2_prepare_l2_table(BlockDriverState *bs,
                                        uint64_t offset);
/* Read an L2 entry through the cache; 0 if no L2 table. */
int coroutine_fn qcow2_get_l2_entry(BlockDriverState *bs, uint64_t offset,
                                    uint64_t *l2_entry);

/* ---- qcow2-snapshot.c functions ----------------------------------------- */

/* Load the snapshot table named by the header (open path). */
int coroutine_fn qcow2_read_snapshots(BlockDriverState *bs, Error **errp);
/* Write the snapshot table anew from memory (check repair). */
int coroutine_fn qcow2_rewrite_snapshot_table(BlockDriverState *bs,
                                              bool free_old);
/* Free s->snapshots and its strings. */
void qcow2_free_snapshots(BDRVQcow2State *s);
/* The snapshot list of "qemu-img info", with QEMU's JSON keys. */
QObject *qcow2_query_snapshots(BlockDriverState *bs);
/* Driver callbacks: contracts in block_int.h. */
int coroutine_fn qcow2_snapshot_create(BlockDriverState *bs,
                                       QEMUSnapshotInfo *sn_info,
                                       Error **errp);
int coroutine_fn qcow2_snapshot_goto(BlockDriverState *bs,
                                     const char *id_or_name, Error **errp);
int coroutine_fn qcow2_snapshot_delete(BlockDriverState *bs, const char *id,
                                       const char *name, Error **errp);
int qcow2_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_tab);

/* ---- qcow2-cache.c functions -------------------------------------------- */

Qcow2Cache *qcow2_cache_create(BlockDriverState *bs, int num_tables,
                               int table_size, int overlap_class);
void qcow2_cache_destroy(Qcow2Cache *c);
/* Load (or find) the table at host @offset; *table must be put back. */
int coroutine_fn qcow2_cache_get(BlockDriverState *bs, Qcow2Cache *c,
                                 uint64_t offset, void **table);
/* Like get, without reading: for freshly allocated tables. */
int coroutine_fn qcow2_cache_get_empty(BlockDriverState *bs, Qcow2Cache *c,
                                       uint64_t offset, void **table);
/*
 * Cache hit only, no reference taken: the pointer is valid until the
 * caller next yields.  For lock-free fast paths.
 */
void *qcow2_cache_peek(Qcow2Cache *c, uint64_t offset);
/* Cache hit only (never yields): table with a reference, or NULL. */
void *qcow2_cache_try_get(Qcow2Cache *c, uint64_t offset);
void qcow2_cache_put(Qcow2Cache *c, void **table);
void qcow2_cache_entry_mark_dirty(Qcow2Cache *c, void *table);
/* Table at @offset if cached (no reference taken), else NULL. */
void *qcow2_cache_is_table_offset(Qcow2Cache *c, uint64_t offset);
/* Forget the entry of a table whose cluster was freed. */
void qcow2_cache_discard(Qcow2Cache *c, void *table);
/* Write dirty tables (after the dependency); flush bs->file too. */
int coroutine_fn qcow2_cache_write(BlockDriverState *bs, Qcow2Cache *c);
int coroutine_fn qcow2_cache_flush(BlockDriverState *bs, Qcow2Cache *c);
/* @c must not be written before @dependency is flushed. */
int coroutine_fn qcow2_cache_set_dependency(BlockDriverState *bs,
                                            Qcow2Cache *c,
                                            Qcow2Cache *dependency);
void qcow2_cache_depends_on_flush(Qcow2Cache *c);
/* Flush then drop every entry (no reference may be held). */
int coroutine_fn qcow2_cache_empty(BlockDriverState *bs, Qcow2Cache *c);
int qcow2_cache_get_table_size(Qcow2Cache *c);

/* ---- qcow2-threads.c functions ------------------------------------------ */

/*
 * Compress @src_size bytes into @dest (at most @dest_size bytes) with the
 * image's compression type in a worker thread.  Returns the compressed
 * size, -ENOMEM if it does not fit, other -errno on failure.
 */
ssize_t coroutine_fn qcow2_co_compress(BlockDriverState *bs, void *dest,
                                       size_t dest_size, const void *src,
                                       size_t src_size);
/* Decompress into exactly @dest_size bytes; 0 or -errno. */
ssize_t coroutine_fn qcow2_co_decompress(BlockDriverState *bs, void *dest,
                                         size_t dest_size, const void *src,
                                         size_t src_size);
/* Synchronous forms (used by tests and the thread functions). */
ssize_t qcow2_compress_buf(Qcow2CompressionType type, void *dest,
                           size_t dest_size, const void *src,
                           size_t src_size);
ssize_t qcow2_decompress_buf(Qcow2CompressionType type, void *dest,
                             size_t dest_size, const void *src,
                             size_t src_size);

/* ---- qcow2-create.c functions (qcow2aux) -------------------------------- */

int coroutine_fn qcow2_co_create_opts(BlockDriver *drv, const char *filename,
                                      QemuOpts *opts, Error **errp);
extern const QemuOptsList qcow2_create_opts;
extern const QemuOptsList qcow2_amend_opts;
int coroutine_fn qcow2_co_amend(BlockDriverState *bs, QemuOpts *opts,
                                bool force, Error **errp);
BlockMeasureInfo *qcow2_measure(QemuOpts *opts, BlockDriverState *in_bs,
                                Error **errp);

/* ---- qcow2-check.c functions (qcow2aux) --------------------------------- */

void G_GNUC_PRINTF(2, 3) qcow2_check_msg(BDRVQcow2State *s,
                                         const char *fmt, ...);
int coroutine_fn qcow2_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                                BdrvCheckMode fix);

#endif
