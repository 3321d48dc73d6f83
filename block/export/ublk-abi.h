/*
 * The ublk user-space ABI as far as the ublk export uses it.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Source of the facts: Linux 6.12, include/uapi/linux/ublk_cmd.h and
 * drivers/block/ublk_drv.c.  Written here because the build host's
 * kernel headers (6.1) predate the zoned and user-copy parts of the ABI.
 * Names carry a UBLKX_ / ublkx_ prefix so that they never collide with a
 * newer <linux/ublk_cmd.h> that a build host may have.
 */
#ifndef BLOCK_EXPORT_UBLK_ABI_H
#define BLOCK_EXPORT_UBLK_ABI_H

#include <stdint.h>
#include <linux/ioctl.h>

/*
 * Control commands go to /dev/ublk-control as IORING_OP_URING_CMD on a
 * ring set up with IORING_SETUP_SQE128 (the driver refuses them on
 * 64-byte SQEs); the payload is struct ublkx_ctrl_cmd in the SQE's
 * command area.  The driver runs them only from io_uring's worker
 * threads (it answers -EAGAIN to the non-blocking attempt), so a slow
 * one such as START_DEV never blocks the submitting thread.
 */
struct ublkx_ctrl_cmd {
    uint32_t dev_id;             /* UINT32_MAX in ADD_DEV: driver picks */
    uint16_t queue_id;           /* UINT16_MAX unless queue specific */
    uint16_t len;                /* bytes at addr */
    uint64_t addr;               /* in/out buffer of the command */
    uint64_t data[1];            /* inline argument (START_DEV: pid) */
    uint16_t dev_path_len;       /* unprivileged devices only */
    uint16_t pad;
    uint32_t reserved;
};

/* ioctl-style command numbers ('u', nr, the command struct). */
#define UBLKX_CMD_GET_DEV_INFO  _IOR('u', 0x02, struct ublkx_ctrl_cmd)
#define UBLKX_CMD_ADD_DEV       _IOWR('u', 0x04, struct ublkx_ctrl_cmd)
#define UBLKX_CMD_DEL_DEV       _IOWR('u', 0x05, struct ublkx_ctrl_cmd)
#define UBLKX_CMD_START_DEV     _IOWR('u', 0x06, struct ublkx_ctrl_cmd)
#define UBLKX_CMD_STOP_DEV      _IOWR('u', 0x07, struct ublkx_ctrl_cmd)
#define UBLKX_CMD_SET_PARAMS    _IOWR('u', 0x08, struct ublkx_ctrl_cmd)

/* Device flags (ublkx_dev_info.flags), negotiated by ADD_DEV. */
#define UBLKX_F_CMD_IOCTL_ENCODE   (1ULL << 6)
/* Data moves by pread/pwrite on /dev/ublkcN instead of a shared buffer. */
#define UBLKX_F_USER_COPY          (1ULL << 7)
/* Zoned device; ADD_DEV fails with EINVAL unless USER_COPY is also set. */
#define UBLKX_F_ZONED              (1ULL << 8)

/* ublkx_dev_info.state */
#define UBLKX_S_DEV_DEAD    0
#define UBLKX_S_DEV_LIVE    1

/* In/out buffer of ADD_DEV and GET_DEV_INFO (64 bytes). */
struct ublkx_dev_info {
    uint16_t nr_hw_queues;       /* the driver caps it at the CPU count */
    uint16_t queue_depth;        /* <= 4096 */
    uint16_t state;
    uint16_t pad0;
    uint32_t max_io_buf_bytes;   /* rounded down to the page size */
    uint32_t dev_id;
    int32_t ublksrv_pid;         /* -1 once the disk was removed */
    uint32_t pad1;
    uint64_t flags;
    uint64_t ublksrv_flags;      /* ignored by the driver */
    uint32_t owner_uid;
    uint32_t owner_gid;
    uint64_t reserved1;
    uint64_t reserved2;
};

/* SET_PARAMS buffer.  chunk_sectors is the zone size of a zoned device. */
struct ublkx_param_basic {
    uint32_t attrs;
    uint8_t logical_bs_shift;    /* 9 .. PAGE_SHIFT */
    uint8_t physical_bs_shift;   /* >= logical_bs_shift */
    uint8_t io_opt_shift;
    uint8_t io_min_shift;
    uint32_t max_sectors;        /* <= max_io_buf_bytes / 512 */
    uint32_t chunk_sectors;
    uint64_t dev_sectors;
    uint64_t virt_boundary_mask;
};
#define UBLKX_ATTR_READ_ONLY       (1U << 0)
#define UBLKX_ATTR_VOLATILE_CACHE  (1U << 2)
#define UBLKX_ATTR_FUA             (1U << 3)

struct ublkx_param_discard {
    uint32_t discard_alignment;
    uint32_t discard_granularity;     /* must be non-zero */
    uint32_t max_discard_sectors;
    uint32_t max_write_zeroes_sectors;
    uint16_t max_discard_segments;    /* must be 1 */
    uint16_t reserved0;
};

struct ublkx_param_devt {
    uint32_t char_major;
    uint32_t char_minor;
    uint32_t disk_major;
    uint32_t disk_minor;
};

/* Zone limits; 0 means no limit, the append limit must be non-zero. */
struct ublkx_param_zoned {
    uint32_t max_open_zones;
    uint32_t max_active_zones;
    uint32_t max_zone_append_sectors;
    uint8_t reserved[20];
};

struct ublkx_params {
    uint32_t len;                /* sizeof this struct */
    uint32_t types;
    struct ublkx_param_basic basic;
    struct ublkx_param_discard discard;
    struct ublkx_param_devt devt;     /* read-only, never sent */
    struct ublkx_param_zoned zoned;
};
#define UBLKX_PARAM_TYPE_BASIC     (1U << 0)
#define UBLKX_PARAM_TYPE_DISCARD   (1U << 1)
#define UBLKX_PARAM_TYPE_ZONED     (1U << 3)

/*
 * I/O commands go to /dev/ublkcN (64-byte SQEs do), one per (queue, tag)
 * outstanding at a time, all of one queue from the same task.  FETCH
 * arms a tag before START_DEV (START_DEV waits until every tag of every
 * queue is armed); its completion (res 0) says a request is described in
 * the tag's descriptor.  COMMIT_AND_FETCH returns the result and re-arms
 * the tag.  Once the device stops, armed commands complete with -ENODEV.
 */
struct ublkx_io_cmd {
    uint16_t q_id;
    uint16_t tag;
    int32_t result;              /* bytes, or -errno */
    uint64_t addr;               /* 0 with USER_COPY, except: zone append
                                    returns the written sector here */
};
#define UBLKX_IO_FETCH_REQ             _IOWR('u', 0x20, struct ublkx_io_cmd)
#define UBLKX_IO_COMMIT_AND_FETCH_REQ  _IOWR('u', 0x21, struct ublkx_io_cmd)
#define UBLKX_IO_RES_OK       0
#define UBLKX_IO_RES_ABORT    (-19)   /* -ENODEV */

/*
 * Request descriptors: an array of this struct per queue, mapped
 * read-only from /dev/ublkcN at offset q_id * UBLKX_CMD_BUF_STRIDE, of
 * length round_up(depth * 24, page size).
 */
struct ublkx_io_desc {
    uint32_t op_flags;           /* op in bits 0-7, UBLKX_IO_F_* above */
    uint32_t nr_sectors;         /* REPORT_ZONES: number of zones asked */
    uint64_t start_sector;
    uint64_t addr;               /* unused with USER_COPY */
};
#define UBLKX_MAX_QUEUE_DEPTH  4096
/* Per-queue stride of the mapping: room for the deepest queue. */
#define UBLKX_CMD_BUF_STRIDE(page) \
    ((((UBLKX_MAX_QUEUE_DEPTH * sizeof(struct ublkx_io_desc)) + (page) - 1) \
      / (page)) * (page))

#define UBLKX_IO_OP_READ            0
#define UBLKX_IO_OP_WRITE           1
#define UBLKX_IO_OP_FLUSH           2
#define UBLKX_IO_OP_DISCARD         3
#define UBLKX_IO_OP_WRITE_SAME      4
#define UBLKX_IO_OP_WRITE_ZEROES    5
#define UBLKX_IO_OP_ZONE_OPEN       10
#define UBLKX_IO_OP_ZONE_CLOSE      11
#define UBLKX_IO_OP_ZONE_FINISH     12
#define UBLKX_IO_OP_ZONE_APPEND     13
#define UBLKX_IO_OP_ZONE_RESET_ALL  14
#define UBLKX_IO_OP_ZONE_RESET      15
/*
 * Zone report: nr_sectors holds how many zones to report from
 * start_sector (a zone start); the answer is an array of struct blk_zone
 * (<linux/blkzoned.h>) written through the request's user-copy buffer,
 * ended early by an entry with len 0.
 */
#define UBLKX_IO_OP_REPORT_ZONES    18

#define UBLKX_IO_F_FUA       (1U << 13)
#define UBLKX_IO_F_NOUNMAP   (1U << 15)

/*
 * User copy: the data of request (q_id, tag) is the file range of
 * /dev/ublkcN starting at this offset (the request's byte 0), up to the
 * request's length.  Reads of the request fetch write/append data,
 * writes fill read/report data.
 */
#define UBLKX_IO_BUF_OFFSET    0x80000000ULL
#define UBLKX_IO_BUF_BITS      25     /* bytes within one request */
#define UBLKX_TAG_BITS         16
#define UBLKX_QID_SHIFT        (UBLKX_IO_BUF_BITS + UBLKX_TAG_BITS)

static inline uint64_t ublkx_user_copy_pos(uint16_t q_id, uint16_t tag)
{
    return UBLKX_IO_BUF_OFFSET + ((uint64_t)q_id << UBLKX_QID_SHIFT) +
           ((uint64_t)tag << UBLKX_IO_BUF_BITS);
}

#endif
