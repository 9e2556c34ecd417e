/*
 * iodata.h - the data the two I/O workloads (io-emulated, io-virtio) move:
 * the same console text and the same disk blocks, so that both print the
 * same text and the same checksum whichever path the bytes took.
 */
#ifndef RINGSIDE_IODATA_H
#define RINGSIDE_IODATA_H

#include "types.h"

#define IO_TEXT_LINES 64
#define IO_TEXT_LINE 64 /* bytes per line, "\r\n" included */
#define IO_TEXT_BYTES (IO_TEXT_LINES * IO_TEXT_LINE) /* 4 KiB */

#define IO_DISK_SECTOR 512
#define IO_DISK_SECTORS 64
#define IO_DISK_BYTES (IO_DISK_SECTORS * IO_DISK_SECTOR) /* 32 KiB */
#define IO_DISK_LBA 2048 /* where both kernels write: 1 MiB into the disk */

/* Fill out[IO_TEXT_BYTES] with the console text: printable ASCII lines ending in CR LF. */
void io_text(u8 *out);
/* Fill out[IO_DISK_BYTES] (8-byte aligned) with the disk data (pseudo-random, little-endian words). */
void io_disk_data(u8 *out);

/*
 * The checksum both kernels print: FNV-1a's multiply-xor step applied to
 * 64-bit little-endian words instead of bytes (a word at a time keeps the
 * instruction count low). p is 8-byte aligned, n a multiple of 8.
 */
#define IO_SUM_INIT 0xcbf29ce484222325ull
u64 io_sum(u64 h, const u8 *p, size_t n);
/* Do a and b (8-byte aligned, n a multiple of 8) hold the same bytes? */
bool io_equal(const u8 *a, const u8 *b, size_t n);

#endif
