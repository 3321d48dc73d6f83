/*
 * qemu-img subcommands that inspect images: info, map, check, measure.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <getopt.h>

#include "block/block_int.h"
#include "block/block-backend.h"
#include "qemu/cutils.h"
#include "qemu/option.h"
#include "qemu/qobject.h"
#include "qemu/tools-common.h"
#include "qemu-img.h"

/* ---------------------------------------------------------------------- */
/* info                                                                    */
/* ---------------------------------------------------------------------- */

static const char *zone_model_name(BlockZoneModel model)
{
    switch (model) {
    case BLK_Z_HM:
        return "host-managed";
    case BLK_Z_HA:
        return "host-aware";
    default:
        return "none";
    }
}

/*
 * Zoned devices: geometry and limits from bs->bl, and how many zones are
 * in each condition (from a zone report), as a dict that "info" adds to
 * its JSON as "zone-info" and prints under "Zoned device information:".
 * NULL for ordinary images.
 */
static QObject *img_zone_info(BlockDriverState *bs)
{
    static const BlockZoneState states[] = {
        BLK_ZS_NOT_WP, BLK_ZS_EMPTY, BLK_ZS_IOPEN, BLK_ZS_EOPEN,
        BLK_ZS_CLOSED, BLK_ZS_RDONLY, BLK_ZS_FULL, BLK_ZS_OFFLINE,
    };
    const BlockLimits *bl = bdrv_get_limits(bs);
    uint64_t counts[ARRAY_SIZE(states)] = { 0 };
    BlockZoneDescriptor *zones;
    const unsigned int batch = 256;
    QObject *d, *cond;
    int64_t offset = 0;
    size_t i;
    int ret = 0;

    if (!bl || bl->zoned == BLK_Z_NONE) {
        return NULL;
    }
    d = qobj_dict();
    qdict_obj_put_str(d, "model", zone_model_name(bl->zoned));
    qdict_obj_put(d, "zone-size", qobj_uint(bl->zone_size));
    qdict_obj_put(d, "zone-capacity", qobj_uint(bl->zone_capacity));
    qdict_obj_put_int(d, "nr-zones", bl->nr_zones);
    qdict_obj_put_int(d, "conventional-zones", bl->nr_conv_zones);
    qdict_obj_put_int(d, "max-open-zones", bl->max_open_zones);
    qdict_obj_put_int(d, "max-active-zones", bl->max_active_zones);
    qdict_obj_put_int(d, "max-append-sectors", bl->max_append_sectors);

    zones = g_new(BlockZoneDescriptor, batch);
    for (;;) {
        unsigned int nr = batch;

        ret = bdrv_zone_report(bs, offset, &nr, zones);
        if (ret < 0 || nr == 0) {
            break;
        }
        for (unsigned int z = 0; z < nr; z++) {
            for (i = 0; i < ARRAY_SIZE(states); i++) {
                if (zones[z].state == states[i]) {
                    counts[i]++;
                }
            }
        }
        if (zones[nr - 1].start + zones[nr - 1].length <= (uint64_t)offset) {
            /* A report that does not move forward would never end. */
            ret = -EIO;
            break;
        }
        offset = zones[nr - 1].start + zones[nr - 1].length;
    }
    g_free(zones);
    if (ret < 0) {
        qdict_obj_put_str(d, "zone-report-error", strerror(-ret));
        return d;
    }
    cond = qobj_dict();
    for (i = 0; i < ARRAY_SIZE(states); i++) {
        qdict_obj_put(cond, bdrv_zone_state_name(states[i]),
                      qobj_uint(counts[i]));
    }
    qdict_obj_put(d, "zones-by-condition", cond);
    return d;
}

int img_info(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "backing-chain", no_argument, NULL, OPTION_BACKING_CHAIN },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    OutputFormat output_format = OFORMAT_HUMAN;
    bool chain = false;
    const char *filename;
    GHashTable *seen;
    QObject *list;
    char *cur_name, *cur_fmt;
    int c, ret = 0;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":f:hU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case OPTION_OUTPUT:
            output_format = img_parse_output_format(optarg);
            break;
        case OPTION_BACKING_CHAIN:
            chain = true;
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

    seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    list = qobj_list();
    cur_name = g_strdup(filename);
    cur_fmt = g_strdup(co.fmt);
    while (cur_name) {
        BlockBackend *blk;
        QObject *info, *v, *zone;
        Error *err = NULL;

        if (g_hash_table_contains(seen, cur_name)) {
            error_report("Backing file '%s' creates an infinite loop.",
                         cur_name);
            ret = 1;
            break;
        }
        g_hash_table_add(seen, g_strdup(cur_name));

        /* Metadata only: QEMU's info takes no read permission. */
        blk = img_open(co.image_opts, cur_name, cur_fmt,
                       BDRV_O_NO_BACKING | BDRV_O_NO_IO, false, false,
                       co.force_share);
        if (!blk) {
            ret = 1;
            break;
        }
        info = bdrv_query_image_info(blk_bs(blk), &err);
        if (!info) {
            error_report_err(err);
            blk_unref(blk);
            ret = 1;
            break;
        }
        zone = img_zone_info(blk_bs(blk));
        if (zone) {
            qdict_obj_put(info, "zone-info", zone);
        }
        blk_unref(blk);

        g_free(cur_name);
        g_free(cur_fmt);
        cur_name = cur_fmt = NULL;
        if (chain) {
            v = qdict_obj_get(info, "full-backing-filename");
            if (!v) {
                v = qdict_obj_get(info, "backing-filename");
            }
            if (v) {
                cur_name = g_strdup(qobj_get_str(v));
                v = qdict_obj_get(info, "backing-filename-format");
                cur_fmt = v ? g_strdup(qobj_get_str(v)) : NULL;
            }
            /* Backing files are always named by a plain filename. */
            co.image_opts = false;
        }
        qlist_obj_append(list, info);
    }
    g_free(cur_name);
    g_free(cur_fmt);
    g_hash_table_destroy(seen);

    /* As QEMU, print only once the whole chain could be read. */
    if (ret == 0 && output_format == OFORMAT_HUMAN) {
        g_autoptr(GString) out = g_string_new(NULL);
        size_t i;

        for (i = 0; i < qlist_obj_size(list); i++) {
            QObject *ordered = img_qobj_qemu_order(qlist_obj_get(list, i));
            /* Zone info reads better in its logical (insertion) order. */
            QObject *zone = qdict_obj_get(qlist_obj_get(list, i),
                                          "zone-info");

            if (i > 0) {
                g_string_append_c(out, '\n');
            }
            bdrv_image_info_print_human(ordered, out);
            if (zone) {
                /* Our addition: QEMU 7.2 has no zoned images. */
                g_string_append(out, "Zoned device information:\n");
                qobj_print_human(zone, 1, out);
            }
            qobj_unref(ordered);
        }
        fputs(out->str, stdout);
    } else if (ret == 0 && output_format == OFORMAT_JSON) {
        if (chain) {
            img_print_json(list);
        } else {
            img_print_json(qlist_obj_get(list, 0));
        }
    }
    qobj_unref(list);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* map                                                                     */
/* ---------------------------------------------------------------------- */

typedef struct MapEntry {
    int64_t start;
    int64_t length;
    int64_t offset;
    int depth;
    bool has_offset;
    bool data;
    bool zero;
    bool present;
    char *filename;     /* NULL unless has_offset with a known file */
} MapEntry;

static int map_dump_entry(OutputFormat fmt, MapEntry *e, bool more)
{
    if (fmt == OFORMAT_HUMAN) {
        if (e->data && !e->has_offset) {
            error_report("File contains external, encrypted or compressed "
                         "clusters.");
            return -1;
        }
        /* Only non-zero data is listed in this form. */
        if (e->data && !e->zero) {
            printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n",
                   (uint64_t)e->start, (uint64_t)e->length,
                   (uint64_t)e->offset, e->filename ? e->filename : "");
        }
        return 0;
    }
    printf("{ \"start\": %" PRId64 ", \"length\": %" PRId64 ", "
           "\"depth\": %d, \"present\": %s, \"zero\": %s, \"data\": %s",
           e->start, e->length, e->depth,
           e->present ? "true" : "false",
           e->zero ? "true" : "false",
           e->data ? "true" : "false");
    if (e->has_offset) {
        printf(", \"offset\": %" PRId64, e->offset);
    }
    putchar('}');
    if (more) {
        puts(",");
    }
    return 0;
}

/* Status of the range at @offset, walking down the backing chain. */
static int map_get_status(BlockDriverState *bs, int64_t offset,
                          int64_t bytes, MapEntry *e)
{
    BlockDriverState *file = NULL;
    int64_t map = 0, pnum = 0;
    int depth = 0;
    int ret;

    for (;;) {
        ret = bdrv_block_status(bs, offset, bytes, &pnum, &map, &file);
        if (ret < 0) {
            return ret;
        }
        assert(pnum > 0);
        if (ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA)) {
            break;
        }
        bs = bdrv_backing_bs(bs);
        if (!bs) {
            ret = 0;
            break;
        }
        depth++;
        bytes = pnum;
    }

    g_free(e->filename);
    *e = (MapEntry) {
        .start = offset,
        .length = pnum,
        .data = !!(ret & BDRV_BLOCK_DATA),
        .zero = !!(ret & BDRV_BLOCK_ZERO),
        .present = !!(ret & BDRV_BLOCK_ALLOCATED),
        .has_offset = !!(ret & BDRV_BLOCK_OFFSET_VALID),
        .offset = map,
        .depth = depth,
    };
    if (e->has_offset && file) {
        e->filename = g_strdup(bdrv_get_filename(file));
    }
    return 0;
}

static bool map_mergeable(const MapEntry *cur, const MapEntry *next)
{
    if (cur->length == 0) {
        return false;
    }
    if (cur->zero != next->zero || cur->data != next->data ||
        cur->depth != next->depth || cur->present != next->present ||
        cur->has_offset != next->has_offset ||
        !cur->filename != !next->filename) {
        return false;
    }
    if (cur->filename && strcmp(cur->filename, next->filename)) {
        return false;
    }
    if (cur->has_offset && cur->offset + cur->length != next->offset) {
        return false;
    }
    return true;
}

int img_map(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { "start-offset", required_argument, NULL, OPTION_START_OFFSET },
        { "max-length", required_argument, NULL, OPTION_MAX_LENGTH },
        { NULL, 0, NULL, 0 }
    };
    OutputFormat output_format = OFORMAT_HUMAN;
    const char *filename;
    int64_t start_offset = 0, max_length = -1, length;
    MapEntry cur = { 0 }, next = { 0 };
    BlockBackend *blk;
    int c, ret = 0;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":f:hU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case OPTION_OUTPUT:
            output_format = img_parse_output_format(optarg);
            break;
        case OPTION_START_OFFSET:
            start_offset = img_cvtnum("start offset", optarg);
            if (start_offset < 0) {
                return 1;
            }
            break;
        case OPTION_MAX_LENGTH:
            max_length = img_cvtnum("max length", optarg);
            if (max_length < 0) {
                return 1;
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

    blk = img_open(co.image_opts, filename, co.fmt, 0, false, false, co.force_share);
    if (!blk) {
        return 1;
    }

    if (output_format == OFORMAT_HUMAN) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
               "File");
    } else {
        putchar('[');
    }

    length = blk_getlength(blk);
    if (length < 0) {
        error_report("Failed to get size for '%s'", filename);
        ret = 1;
        goto out;
    }
    if (max_length != -1) {
        length = MIN(start_offset + max_length, length);
    }

    cur.start = start_offset;
    while (cur.start + cur.length < length) {
        int64_t offset = cur.start + cur.length;
        /* Ask in pieces of at most 1 GiB, as QEMU does. */
        int64_t n = MIN(1 * GiB, length - offset);

        ret = map_get_status(blk_bs(blk), offset, n, &next);
        if (ret < 0) {
            error_report("Could not read file metadata: %s", strerror(-ret));
            ret = 1;
            goto out;
        }
        if (map_mergeable(&cur, &next)) {
            cur.length += next.length;
            continue;
        }
        if (cur.length > 0) {
            if (map_dump_entry(output_format, &cur, true) < 0) {
                ret = 1;
                goto out;
            }
        }
        g_free(cur.filename);
        cur = next;
        next.filename = NULL;
    }
    if (map_dump_entry(output_format, &cur, false) < 0) {
        ret = 1;
        goto out;
    }
    if (output_format == OFORMAT_JSON) {
        puts("]");
    }
    ret = 0;

out:
    g_free(cur.filename);
    g_free(next.filename);
    blk_unref(blk);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* check                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct ImageCheckReport {
    const char *filename;
    const char *format;
    BdrvCheckResult r;
} ImageCheckReport;

static void check_dump_human(const ImageCheckReport *c, bool quiet)
{
    const BdrvCheckResult *r = &c->r;

    if (!(r->corruptions || r->leaks || r->check_errors)) {
        qprintf(quiet, "No errors were found on the image.\n");
    } else {
        if (r->corruptions) {
            qprintf(quiet, "\n%d errors were found on the image.\n"
                    "Data may be corrupted, or further writes to the image "
                    "may corrupt it.\n", r->corruptions);
        }
        if (r->leaks) {
            qprintf(quiet, "\n%d leaked clusters were found on the image.\n"
                    "This means waste of disk space, but no harm to data.\n",
                    r->leaks);
        }
        if (r->check_errors) {
            qprintf(quiet, "\n%d internal errors have occurred during the "
                    "check.\n", r->check_errors);
        }
    }
    if (r->bfi.total_clusters != 0 && r->bfi.allocated_clusters != 0) {
        qprintf(quiet, "%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, "
                "%0.2f%% fragmented, %0.2f%% compressed clusters\n",
                r->bfi.allocated_clusters, r->bfi.total_clusters,
                r->bfi.allocated_clusters * 100.0 / r->bfi.total_clusters,
                r->bfi.fragmented_clusters * 100.0 /
                r->bfi.allocated_clusters,
                r->bfi.compressed_clusters * 100.0 /
                r->bfi.allocated_clusters);
    }
    if (r->image_end_offset) {
        qprintf(quiet, "Image end offset: %" PRId64 "\n",
                r->image_end_offset);
    }
}

static void check_dump_json(const ImageCheckReport *c)
{
    const BdrvCheckResult *r = &c->r;
    QObject *d = qobj_dict();

    /* Optional members are only present when non-zero, as in QEMU. */
    qdict_obj_put_str(d, "filename", c->filename);
    qdict_obj_put_str(d, "format", c->format);
    qdict_obj_put_int(d, "check-errors", r->check_errors);
    if (r->image_end_offset) {
        qdict_obj_put_int(d, "image-end-offset", r->image_end_offset);
    }
    if (r->corruptions) {
        qdict_obj_put_int(d, "corruptions", r->corruptions);
    }
    if (r->leaks) {
        qdict_obj_put_int(d, "leaks", r->leaks);
    }
    if (r->corruptions_fixed) {
        qdict_obj_put_int(d, "corruptions-fixed", r->corruptions_fixed);
    }
    if (r->leaks_fixed) {
        qdict_obj_put_int(d, "leaks-fixed", r->leaks_fixed);
    }
    if (r->bfi.total_clusters) {
        qdict_obj_put(d, "total-clusters", qobj_uint(r->bfi.total_clusters));
    }
    if (r->bfi.allocated_clusters) {
        qdict_obj_put(d, "allocated-clusters",
                      qobj_uint(r->bfi.allocated_clusters));
    }
    if (r->bfi.fragmented_clusters) {
        qdict_obj_put(d, "fragmented-clusters",
                      qobj_uint(r->bfi.fragmented_clusters));
    }
    if (r->bfi.compressed_clusters) {
        qdict_obj_put(d, "compressed-clusters",
                      qobj_uint(r->bfi.compressed_clusters));
    }
    img_print_json(d);
    qobj_unref(d);
}

int img_check(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    OutputFormat output_format = OFORMAT_HUMAN;
    bool writethrough = false;
    const char *filename, *cache = "writeback";
    int flags = BDRV_O_CHECK;
    BdrvCheckMode fix = 0;
    ImageCheckReport report = { 0 };
    BlockBackend *blk;
    int c, ret;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":hf:r:T:qU", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'r':
            flags |= BDRV_O_RDWR;
            if (!strcmp(optarg, "leaks")) {
                fix = BDRV_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
            } else {
                img_error_exit("Unknown option value for -r "
                               "(expecting 'leaks' or 'all'): %s", optarg);
            }
            break;
        case 'T':
            cache = optarg;
            break;
        case OPTION_OUTPUT:
            output_format = img_parse_output_format(optarg);
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

    if (tool_parse_cache_mode(cache, &flags, &writethrough) < 0) {
        error_report("Invalid source cache option: %s", cache);
        return 1;
    }
    blk = img_open(co.image_opts, filename, co.fmt, flags, writethrough, co.quiet,
                   co.force_share);
    if (!blk) {
        return 1;
    }

    report.filename = filename;
    report.format = bdrv_get_format_name(blk_bs(blk));
    ret = bdrv_check(blk_bs(blk), &report.r, fix);
    if (ret == -ENOTSUP) {
        error_report("This image format does not support checks");
        ret = 63;
        goto out;
    }
    if (ret == 0 && (report.r.corruptions_fixed || report.r.leaks_fixed)) {
        int corruptions_fixed = report.r.corruptions_fixed;
        int leaks_fixed = report.r.leaks_fixed;

        if (output_format == OFORMAT_HUMAN) {
            qprintf(co.quiet,
                    "The following inconsistencies were found and "
                    "repaired:\n\n"
                    "    %d leaked clusters\n"
                    "    %d corruptions\n\n"
                    "Double checking the fixed image now...\n",
                    leaks_fixed, corruptions_fixed);
        }
        /* Report the state after repair, plus what was repaired. */
        memset(&report.r, 0, sizeof(report.r));
        ret = bdrv_check(blk_bs(blk), &report.r, 0);
        report.r.corruptions_fixed = corruptions_fixed;
        report.r.leaks_fixed = leaks_fixed;
    }
    if (ret == 0) {
        if (output_format == OFORMAT_HUMAN) {
            check_dump_human(&report, co.quiet);
        } else {
            check_dump_json(&report);
        }
    }
    if (ret < 0 || report.r.check_errors) {
        if (ret < 0) {
            error_report("Check failed: %s", strerror(-ret));
        } else {
            error_report("Check failed");
        }
        ret = 1;
        goto out;
    }
    if (report.r.corruptions) {
        ret = 2;
    } else if (report.r.leaks) {
        ret = 3;
    } else {
        ret = 0;
    }

out:
    blk_unref(blk);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* measure                                                                 */
/* ---------------------------------------------------------------------- */

int img_measure(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "size", required_argument, NULL, OPTION_SIZE },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 }
    };
    OutputFormat output_format = OFORMAT_HUMAN;
    const char *filename = NULL, *out_fmt = "raw";
    char *options = NULL;
    int64_t img_size = -1;
    BlockBackend *in_blk = NULL;
    BlockDriver *drv;
    QemuOptsList *list = NULL;
    QemuOpts *opts = NULL;
    BlockMeasureInfo *info = NULL;
    Error *err = NULL;
    int c, ret = 1;
    ImgCommonOpts co = { 0 };

    while ((c = getopt_long(argc, argv, ":hf:O:o:l:U", long_options,
                            NULL)) != -1) {
        switch (c) {
        case 'O':
            out_fmt = optarg;
            break;
        case 'o':
            options = img_accumulate_options(options, optarg);
            break;
        case 'l':
            error_report("Snapshots are not supported");
            goto out;
        case OPTION_OUTPUT:
            output_format = img_parse_output_format(optarg);
            break;
        case OPTION_SIZE:
            img_size = img_cvtnum("image size", optarg);
            if (img_size < 0) {
                goto out;
            }
            break;
        default:
            img_common_option(c, argv, &co);
            break;
        }
    }

    if (argc - optind > 1) {
        error_report("At most one filename argument is allowed.");
        goto out;
    } else if (argc - optind == 1) {
        filename = argv[optind];
    }
    if (!filename && (co.image_opts || co.fmt)) {
        error_report("--image-opts, -f, and -l require a filename argument.");
        goto out;
    }
    if (filename && img_size != -1) {
        error_report("--size N cannot be used together with a filename.");
        goto out;
    }
    if (!filename && img_size == -1) {
        error_report("Either --size N or one filename must be specified.");
        goto out;
    }

    if (filename) {
        in_blk = img_open(co.image_opts, filename, co.fmt, 0, false, false,
                          co.force_share);
        if (!in_blk) {
            goto out;
        }
    }

    drv = bdrv_find_format(out_fmt);
    if (!drv) {
        error_report("Unknown file format '%s'", out_fmt);
        goto out;
    }
    if (!drv->create_opts) {
        error_report("Format driver '%s' does not support image creation",
                     drv->format_name);
        goto out;
    }
    list = qemu_opts_append(NULL, drv->create_opts);
    list = qemu_opts_append(list, bdrv_file.create_opts);
    opts = qemu_opts_create(list);
    if (options && !qemu_opts_do_parse(opts, options, &err)) {
        error_report_err(err);
        error_report("Invalid options for file format '%s'", out_fmt);
        goto out;
    }
    if (img_size != -1) {
        qemu_opt_set_number(opts, "size", img_size, NULL);
    }

    info = bdrv_measure(drv, opts, in_blk ? blk_bs(in_blk) : NULL, &err);
    if (!info) {
        error_report_err(err);
        goto out;
    }

    /* The driver decides: QEMU shows bitmaps only for qcow2 v3 -> v3. */
    if (output_format == OFORMAT_HUMAN) {
        printf("required size: %" PRIu64 "\n", info->required);
        printf("fully allocated size: %" PRIu64 "\n", info->fully_allocated);
        if (info->has_bitmaps) {
            printf("bitmaps size: %" PRIu64 "\n", info->bitmaps);
        }
    } else {
        QObject *d = qobj_dict();

        qdict_obj_put(d, "required", qobj_uint(info->required));
        qdict_obj_put(d, "fully-allocated", qobj_uint(info->fully_allocated));
        if (info->has_bitmaps) {
            qdict_obj_put(d, "bitmaps", qobj_uint(info->bitmaps));
        }
        img_print_json(d);
        qobj_unref(d);
    }
    ret = 0;

out:
    g_free(info);
    if (opts) {
        qemu_opts_del(opts);
    }
    if (list) {
        qemu_opts_free(list);
    }
    if (in_blk) {
        blk_unref(in_blk);
    }
    g_free(options);
    return ret;
}

