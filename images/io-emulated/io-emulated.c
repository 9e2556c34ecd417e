/*
 * io-emulated - a lab workload: I/O through emulated legacy devices, one
 * port access at a time.
 *
 *   - 4 KiB of text to COM1 (16550 at 0x3f8): for each byte, poll the
 *     line status register until THRE, then write the byte: at least two
 *     port accesses per byte.
 *   - 32 KiB to the ATA disk (primary channel, 0x1f0-0x1f7, control 0x3f6)
 *     by PIO: WRITE SECTORS of 64 sectors at LBA 2048, one 16-bit OUT per
 *     two bytes, then READ SECTORS of the same 64 sectors, one IN per two
 *     bytes, polling the status register (BSY, DRQ, ERR) between sectors.
 *     Interrupts are off (nIEN).
 *
 * Every one of those accesses is an exit to the device model (a trap to
 * the monitor, a KVM exit). io-virtio moves the same bytes through
 * virtio-mmio rings with a handful of exits; both print the same text and
 * the same checksum (lib/iodata.c: of the text, then of the disk data read back).
 *
 * Warning: this overwrites 32 KiB at offset 1 MiB of the disk (ringside's
 * scratch disk unless --disk FILE is given).
 */
#include "hvm_start_info.h"
#include "iodata.h"
#include "kernel.h"

const char kernel_name[] = "io-emulated";

/* ---- COM1 ---- */
#define COM1 0x3f8
#define UART_THR 0
#define UART_LSR 5
#define LSR_THRE 0x20
#define POLL_LIMIT 1000000u

static bool com1_write(const u8 *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned polls = 0;
		while (!(inb(COM1 + UART_LSR) & LSR_THRE))
			if (++polls == POLL_LIMIT)
				return false;
		outb(COM1 + UART_THR, p[i]);
	}
	return true;
}

/* ---- ATA (ATA/ATAPI-6 PIO data-in / data-out protocols) ---- */
#define ATA_DATA 0x1f0 /* 16-bit data port */
#define ATA_ERROR 0x1f1
#define ATA_COUNT 0x1f2
#define ATA_LBA0 0x1f3
#define ATA_LBA1 0x1f4
#define ATA_LBA2 0x1f5
#define ATA_DEVICE 0x1f6 /* bit 6 = LBA, bit 4 = drive, bits 0-3 = LBA 27:24 */
#define ATA_STATUS 0x1f7 /* read */
#define ATA_COMMAND 0x1f7 /* write */
#define ATA_CONTROL 0x3f6 /* write: bit 1 = nIEN; read: alternate status */

#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DF 0x20
#define ST_DRDY 0x40
#define ST_BSY 0x80

#define CMD_READ_SECTORS 0x20
#define CMD_WRITE_SECTORS 0x30
#define CMD_IDENTIFY 0xec

#define DEV_LBA 0xe0 /* LBA mode, drive 0 (bits 7 and 5 are obsolete "1"s) */

static const char *ata_error; /* why the last ATA step failed */

/* Read the alternate status 4 times: the 400 ns a device needs to post BSY. */
static void ata_delay(void)
{
	for (int i = 0; i < 4; i++)
		(void)inb(ATA_CONTROL);
}

/* Wait until BSY clears, then until (status & mask) == want; false on ERR/DF or timeout. */
static bool ata_wait(u8 mask, u8 want, u8 *status_out)
{
	u8 st = 0;
	for (unsigned polls = 0; polls < POLL_LIMIT; polls++) {
		st = inb(ATA_STATUS);
		if (st == 0xff) { /* a floating bus: nothing there */
			ata_error = "no device (status 0xff)";
			break;
		}
		if (st & ST_BSY)
			continue;
		if (st & (ST_ERR | ST_DF)) {
			ata_error = "the device reported an error";
			break;
		}
		if ((st & mask) == want) {
			if (status_out)
				*status_out = st;
			return true;
		}
	}
	if (!ata_error)
		ata_error = "timeout";
	if (status_out)
		*status_out = st;
	return false;
}

static void ata_select(u32 lba, u8 count)
{
	outb(ATA_DEVICE, (u8)(DEV_LBA | ((lba >> 24) & 0xf)));
	ata_delay();
	outb(ATA_COUNT, count);
	outb(ATA_LBA0, (u8)lba);
	outb(ATA_LBA1, (u8)(lba >> 8));
	outb(ATA_LBA2, (u8)(lba >> 16));
}

/* IDENTIFY DEVICE: an ATA disk, LBA supported; *sectors = LBA28 capacity (words 60-61). */
static bool ata_identify(u32 *sectors)
{
	u16 id[256];
	outb(ATA_CONTROL, 0x02); /* nIEN: we poll */
	outb(ATA_DEVICE, DEV_LBA);
	ata_delay();
	u8 st = inb(ATA_STATUS);
	if (st == 0xff || st == 0x00) {
		ata_error = "no device on the primary channel (status 0x00 or 0xff)";
		return false;
	}
	if (!ata_wait(ST_DRDY, ST_DRDY, &st))
		return false;
	outb(ATA_COMMAND, CMD_IDENTIFY);
	ata_delay();
	if (!ata_wait(ST_DRQ, ST_DRQ, &st))
		return false;
	for (int i = 0; i < 256; i++)
		id[i] = inw(ATA_DATA);
	if (id[0] & 0x8000) {
		ata_error = "not an ATA device (IDENTIFY word 0 bit 15)";
		return false;
	}
	if (!(id[49] & (1u << 9))) {
		ata_error = "no LBA support (IDENTIFY word 49 bit 9)";
		return false;
	}
	*sectors = (u32)id[60] | (u32)id[61] << 16;
	return true;
}

static bool ata_write(u32 lba, const u8 *buf, unsigned count)
{
	if (!ata_wait(ST_DRDY, ST_DRDY, NULL))
		return false;
	ata_select(lba, (u8)count);
	outb(ATA_COMMAND, CMD_WRITE_SECTORS);
	ata_delay();
	for (unsigned s = 0; s < count; s++) {
		if (!ata_wait(ST_DRQ, ST_DRQ, NULL))
			return false;
		const u8 *p = buf + s * IO_DISK_SECTOR;
		for (unsigned i = 0; i < IO_DISK_SECTOR; i += 2)
			outw(ATA_DATA, (u16)(p[i] | p[i + 1] << 8));
		ata_delay();
	}
	return ata_wait(ST_DRQ, 0, NULL); /* the last sector written: BSY and DRQ clear */
}

static bool ata_read(u32 lba, u8 *buf, unsigned count)
{
	if (!ata_wait(ST_DRDY, ST_DRDY, NULL))
		return false;
	ata_select(lba, (u8)count);
	outb(ATA_COMMAND, CMD_READ_SECTORS);
	ata_delay();
	for (unsigned s = 0; s < count; s++) {
		if (!ata_wait(ST_DRQ, ST_DRQ, NULL))
			return false;
		u8 *p = buf + s * IO_DISK_SECTOR;
		for (unsigned i = 0; i < IO_DISK_SECTOR; i += 2) {
			u16 w = inw(ATA_DATA);
			p[i] = (u8)w;
			p[i + 1] = (u8)(w >> 8);
		}
		ata_delay();
	}
	return ata_wait(ST_DRQ, 0, NULL);
}

static u8 text[IO_TEXT_BYTES] ALIGNED(8);
static u8 data[IO_DISK_BYTES] ALIGNED(8);
static u8 readback[IO_DISK_BYTES] ALIGNED(8);

void kmain(struct hvm_start_info *si)
{
	(void)si;
	printf("io-emulated: %u KiB of text to COM1 and %u KiB to the ATA disk, port by port\n",
	       IO_TEXT_BYTES / 1024, IO_DISK_BYTES / 1024);

	io_text(text);
	io_disk_data(data);
	u64 sum = io_sum(IO_SUM_INIT, text, sizeof(text));

	check(com1_write(text, sizeof(text)), "COM1: %u bytes written, one OUT each after polling LSR.THRE",
	      IO_TEXT_BYTES);

	/* Each step runs first: check()'s arguments are evaluated in no fixed order. */
	u32 sectors = 0;
	bool ok = ata_identify(&sectors);
	if (!check(ok, "ATA: IDENTIFY DEVICE: a disk with LBA on the primary channel%s%s",
		   ok ? "" : ": ", ok ? "" : ata_error))
		return;
	if (!check(sectors >= IO_DISK_LBA + IO_DISK_SECTORS, "ATA: the disk has at least %u sectors",
		   IO_DISK_LBA + IO_DISK_SECTORS))
		return;
	ata_error = NULL;
	ok = ata_write(IO_DISK_LBA, data, IO_DISK_SECTORS);
	if (!check(ok, "ATA: WRITE SECTORS: %u sectors at LBA %u by PIO (16-bit OUT)%s%s",
		   IO_DISK_SECTORS, IO_DISK_LBA, ok ? "" : ": ", ok ? "" : ata_error))
		return;
	ata_error = NULL;
	ok = ata_read(IO_DISK_LBA, readback, IO_DISK_SECTORS);
	if (!check(ok, "ATA: READ SECTORS: %u sectors at LBA %u by PIO (16-bit IN)%s%s",
		   IO_DISK_SECTORS, IO_DISK_LBA, ok ? "" : ": ", ok ? "" : ata_error))
		return;
	sum = io_sum(sum, readback, sizeof(readback));
	printf("io-emulated: checksum 0x%016lx\n", sum);
	check(io_equal(readback, data, sizeof(data)), "ATA: the %u KiB read back equal what was written",
	      IO_DISK_BYTES / 1024);
}
