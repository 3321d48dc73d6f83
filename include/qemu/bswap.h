/*
 * Byte order helpers for on-disk structures (qcow2 is big-endian,
 * virtio little-endian).
 *
 * Copyright (c) 2026 The zoned-qcow2 project authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef QEMU_BSWAP_H
#define QEMU_BSWAP_H

#include <endian.h>

static inline uint16_t be16_to_cpu(uint16_t v) { return be16toh(v); }
static inline uint32_t be32_to_cpu(uint32_t v) { return be32toh(v); }
static inline uint64_t be64_to_cpu(uint64_t v) { return be64toh(v); }
static inline uint16_t cpu_to_be16(uint16_t v) { return htobe16(v); }
static inline uint32_t cpu_to_be32(uint32_t v) { return htobe32(v); }
static inline uint64_t cpu_to_be64(uint64_t v) { return htobe64(v); }
static inline uint16_t le16_to_cpu(uint16_t v) { return le16toh(v); }
static inline uint32_t le32_to_cpu(uint32_t v) { return le32toh(v); }
static inline uint64_t le64_to_cpu(uint64_t v) { return le64toh(v); }
static inline uint16_t cpu_to_le16(uint16_t v) { return htole16(v); }
static inline uint32_t cpu_to_le32(uint32_t v) { return htole32(v); }
static inline uint64_t cpu_to_le64(uint64_t v) { return htole64(v); }

/* Unaligned loads and stores from byte buffers. */
static inline uint16_t ldbe16_p(const void *p)
{ uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t ldbe32_p(const void *p)
{ uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t ldbe64_p(const void *p)
{ uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static inline void stbe16_p(void *p, uint16_t v)
{ v = htobe16(v); memcpy(p, &v, 2); }
static inline void stbe32_p(void *p, uint32_t v)
{ v = htobe32(v); memcpy(p, &v, 4); }
static inline void stbe64_p(void *p, uint64_t v)
{ v = htobe64(v); memcpy(p, &v, 8); }
static inline uint32_t ldle32_p(const void *p)
{ uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t ldle64_p(const void *p)
{ uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static inline void stle32_p(void *p, uint32_t v)
{ v = htole32(v); memcpy(p, &v, 4); }
static inline void stle64_p(void *p, uint64_t v)
{ v = htole64(v); memcpy(p, &v, 8); }

#endif
