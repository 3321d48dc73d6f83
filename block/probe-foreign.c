/*
 * Signatures of the image formats QEMU knows and we do not implement.
 *
 * Probing falls back to raw, and raw would let a guest write over the
 * header of, say, a VMDK image.  An image that carries one of these
 * signatures is refused instead, with the format named.  The offsets and
 * magic values come from each format's published layout.
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include "block/block.h"

typedef struct ForeignSignature {
    const char *format;
    uint32_t offset;          /* where the magic sits in the first bytes */
    uint32_t len;
    const char *magic;
} ForeignSignature;

static const ForeignSignature foreign_signatures[] = {
    { "vmdk",      0,  4, "KDMV" },                  /* sparse extent v4 */
    { "vmdk",      0,  4, "COWD" },                  /* ESX extent (v3) */
    { "vmdk",      0, 21, "# Disk DescriptorFile" }, /* text descriptor */
    { "vdi",       0, 39, "<<< Oracle VM VirtualBox Disk Image >>>" },
    { "vdi",      64,  4, "\x7f\x10\xda\xbe" },     /* signature, LE */
    { "vhdx",      0,  8, "vhdxfile" },
    { "vpc",       0,  8, "conectix" },              /* dynamic: footer copy */
    { "qed",       0,  4, "QED\0" },
    { "luks",      0,  6, "LUKS\xba\xbe" },
    { "parallels", 0, 16, "WithoutFreeSpace" },
    { "parallels", 0, 16, "WithouFreSpacExt" },
    { "bochs",     0, 22, "Bochs Virtual HD Image" },
    { "cloop",     0, 23, "#!/bin/sh\n#V2.0 Format\n" },
    { "qcow",      0,  8, "QFI\xfb\0\0\0\x01" },    /* version 1 */
};

const char *bdrv_probe_foreign(const uint8_t *buf, size_t buf_size)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(foreign_signatures); i++) {
        const ForeignSignature *f = &foreign_signatures[i];

        if (buf_size >= (size_t)f->offset + f->len &&
            !memcmp(buf + f->offset, f->magic, f->len)) {
            return f->format;
        }
    }
    return NULL;
}

const char *bdrv_probe_foreign_tail(const uint8_t *tail, size_t tail_size)
{
    /* A DMG image ends with a 512-byte "koly" trailer. */
    if (tail_size >= 512 && !memcmp(tail + tail_size - 512, "koly", 4)) {
        return "dmg";
    }
    return NULL;
}
