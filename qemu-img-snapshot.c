/*
 * qemu-img snapshot: list, create, apply and delete internal snapshots.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Options, output and exit codes are those of QEMU 7.2's qemu-img: no
 * -f option, no action means open read-write and do nothing, "-d" looks
 * the snapshot up by name only while "-a" takes an ID or a name, and the
 * list has the ID/TAG/VM SIZE/DATE/VM CLOCK/ICOUNT columns.
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "block/snapshot.h"
#include "qemu/cutils.h"
#include "qemu-img.h"

enum {
    SNAPSHOT_NONE,
    SNAPSHOT_LIST,
    SNAPSHOT_APPLY,
    SNAPSHOT_CREATE,
    SNAPSHOT_DELETE,
};

/* One line of the list (no newline); @sn NULL: the column titles. */
static void print_snapshot_line(const QEMUSnapshotInfo *sn)
{
    char date[32], clock[64], icount[32] = "";
    g_autofree char *vm_size = NULL;
    uint64_t secs;
    time_t t;
    struct tm tm;

    if (!sn) {
        printf("%-10s%-17s%8s%20s%13s%11s",
               "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
        return;
    }
    /* Local time, like QEMU's tools. */
    t = sn->date_sec;
    localtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    secs = sn->vm_clock_nsec / 1000000000;
    snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d",
             (int)(secs / 3600), (int)((secs / 60) % 60), (int)(secs % 60),
             (int)((sn->vm_clock_nsec / 1000000) % 1000));
    if (sn->icount != UINT64_MAX) {
        snprintf(icount, sizeof(icount), "%" PRId64, (int64_t)sn->icount);
    }
    vm_size = size_to_str(sn->vm_state_size);
    printf("%-9s %-16s %8s%20s%13s%11s", sn->id_str, sn->name, vm_size,
           date, clock, icount);
}

static void list_snapshots(BlockDriverState *bs)
{
    QEMUSnapshotInfo *tab;
    int n, i;

    /* No snapshots, or no snapshot support: print nothing, succeed. */
    n = bdrv_snapshot_list(bs, &tab);
    if (n <= 0) {
        return;
    }
    printf("Snapshot list:\n");
    print_snapshot_line(NULL);
    printf("\n");
    for (i = 0; i < n; i++) {
        print_snapshot_line(&tab[i]);
        printf("\n");
    }
    g_free(tab);
}

static int snapshot_create(BlockDriverState *bs, const char *name)
{
    QEMUSnapshotInfo sn;
    Error *err = NULL;
    int64_t now = g_get_real_time();
    int ret;

    /* A snapshot without VM state: clock and instruction count zero. */
    memset(&sn, 0, sizeof(sn));
    pstrcpy(sn.name, sizeof(sn.name), name);
    sn.date_sec = now / G_USEC_PER_SEC;
    sn.date_nsec = (now % G_USEC_PER_SEC) * 1000;
    ret = bdrv_snapshot_create(bs, &sn, &err);
    if (ret < 0) {
        if (err) {
            error_prepend(&err, "Could not create snapshot '%s': ", name);
            error_report_err(err);
        } else {
            error_report("Could not create snapshot '%s': %d (%s)", name,
                         ret, strerror(-ret));
        }
        return 1;
    }
    return 0;
}

int img_snapshot(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPTION_OBJECT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    const char *filename, *snapshot_name = NULL;
    int action = SNAPSHOT_NONE, flags = BDRV_O_RDWR, c, ret = 0;
    BlockBackend *blk;
    BlockDriverState *bs;
    QEMUSnapshotInfo sn;
    Error *err = NULL;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":la:c:d:hqU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'l':
        case 'a':
        case 'c':
        case 'd':
            if (action != SNAPSHOT_NONE) {
                img_error_exit("Cannot mix '-l', '-a', '-c', '-d'");
            }
            action = c == 'l' ? SNAPSHOT_LIST :
                     c == 'a' ? SNAPSHOT_APPLY :
                     c == 'c' ? SNAPSHOT_CREATE : SNAPSHOT_DELETE;
            if (c == 'l') {
                flags &= ~BDRV_O_RDWR;
            } else {
                snapshot_name = optarg;
            }
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }
    if (optind != argc - 1) {
        img_error_exit("Expecting one image file name");
    }
    filename = argv[optind];

    blk = img_open(co.image_opts, filename, NULL, flags, false, co.quiet,
                   co.force_share);
    if (!blk) {
        return 1;
    }
    bs = blk_bs(blk);

    switch (action) {
    case SNAPSHOT_LIST:
        list_snapshots(bs);
        break;
    case SNAPSHOT_CREATE:
        ret = snapshot_create(bs, snapshot_name);
        break;
    case SNAPSHOT_APPLY:
        if (bdrv_snapshot_goto(bs, snapshot_name, &err) < 0) {
            error_prepend(&err, "Could not apply snapshot '%s': ",
                          snapshot_name);
            error_report_err(err);
            ret = 1;
        }
        break;
    case SNAPSHOT_DELETE:
        /* By name only, as QEMU's qemu-img looks it up. */
        if (bdrv_snapshot_find(bs, &sn, snapshot_name) < 0) {
            error_report("Could not delete snapshot '%s': snapshot not "
                         "found", snapshot_name);
            ret = 1;
        } else if (bdrv_snapshot_delete(bs, sn.id_str, sn.name, &err) < 0) {
            error_prepend(&err, "Could not delete snapshot '%s': ",
                          snapshot_name);
            error_report_err(err);
            ret = 1;
        }
        break;
    default:
        break;
    }
    blk_unref(blk);
    return ret;
}
