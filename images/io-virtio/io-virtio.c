/*
 * io-virtio - a lab workload: the same I/O as io-emulated (4 KiB of
 * console text, 32 KiB written to the disk and read back), through
 * virtio-mmio devices (virtio 1.x, "modern" MMIO registers, version 2)
 * and split virtqueues this kernel sets up itself:
 *
 *   slot 0 at 0xd0000000: virtio-console (device ID 3), transmitq = queue 1:
 *       64 buffers of 64 bytes (one per line), one notification
 *   slot 1 at 0xd0001000: virtio-blk (device ID 2), requestq = queue 0:
 *       8 requests of 4 KiB (header, data, status: 3 descriptors each),
 *       one notification for all the writes, one for all the reads
 *
 * Completion is found by polling the used ring; no interrupts. Where
 * io-emulated makes tens of thousands of port accesses (each an exit to
 * the device model), this makes a few dozen register accesses: the ring
 * memory is ordinary RAM the device reads and writes itself.
 *
 * The text and the data are io-emulated's (lib/iodata.c), so the serial
 * output carries the same text and the same checksum line value.
 *
 * The paravirtual build (io-virtio-pv.elf) prints everything through
 * virtio-console already (lib/pvops.c's console, set up by pv_init), so
 * it does not reset that device: it sends the text through the pv
 * console's driver and transmitq, in the same 64 chains with one
 * notification. virtio-blk is driven here in both builds.
 * Warning: this overwrites 32 KiB at offset 1 MiB of the disk.
 */
#include "hvm_start_info.h"
#include "iodata.h"
#include "kernel.h"
#include "pvops.h"
#include "virtio.h"

const char kernel_name[] = "io-virtio";

#define POLL_LIMIT 10000000u

struct vq {
	unsigned long regs; /* the device's MMIO base */
	u16 index;
	u16 size;
	struct vq_mem *mem;
	u16 avail_idx; /* next free slot in avail.ring, free-running */
};

#define barrier() __asm__ volatile("" : : : "memory")

static u32 reg_read(unsigned long regs, u32 off) { return mmio_read32(regs + off); }
static void reg_write(unsigned long regs, u32 off, u32 v) { mmio_write32(regs + off, v); }

static u64 phys(const volatile void *p)
{
	return (u64)p; /* identity mapped */
}

static const char *virtio_error;

/*
 * The driver initialisation sequence (virtio 1.x, 3.1.1): reset,
 * ACKNOWLEDGE, DRIVER, features (VIRTIO_F_VERSION_1 only), FEATURES_OK.
 * The queues are set up next and DRIVER_OK is written after them.
 */
static bool virtio_probe(unsigned long regs, u32 want_id, u32 *magic_out)
{
	u32 magic = reg_read(regs, MMIO_MAGIC);
	*magic_out = magic;
	if (magic != VIRTIO_MAGIC) {
		virtio_error = "no virtio device";
		return false;
	}
	if (reg_read(regs, MMIO_VERSION) != VIRTIO_MMIO_VERSION) {
		virtio_error = "not the modern (version 2) register layout";
		return false;
	}
	if (reg_read(regs, MMIO_DEVICE_ID) != want_id) {
		virtio_error = "unexpected device ID";
		return false;
	}
	reg_write(regs, MMIO_STATUS, 0);
	for (unsigned i = 0; reg_read(regs, MMIO_STATUS) != 0; i++)
		if (i == POLL_LIMIT) {
			virtio_error = "reset did not complete";
			return false;
		}
	u32 status = STATUS_ACKNOWLEDGE;
	reg_write(regs, MMIO_STATUS, status);
	status |= STATUS_DRIVER;
	reg_write(regs, MMIO_STATUS, status);

	reg_write(regs, MMIO_DEVICE_FEATURES_SEL, 1);
	if (!(reg_read(regs, MMIO_DEVICE_FEATURES) & F_VERSION_1_HI)) {
		virtio_error = "VIRTIO_F_VERSION_1 not offered";
		reg_write(regs, MMIO_STATUS, status | STATUS_FAILED);
		return false;
	}
	reg_write(regs, MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(regs, MMIO_DRIVER_FEATURES, 0);
	reg_write(regs, MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(regs, MMIO_DRIVER_FEATURES, F_VERSION_1_HI);
	status |= STATUS_FEATURES_OK;
	reg_write(regs, MMIO_STATUS, status);
	if (!(reg_read(regs, MMIO_STATUS) & STATUS_FEATURES_OK)) {
		virtio_error = "the device refused our features";
		reg_write(regs, MMIO_STATUS, status | STATUS_FAILED);
		return false;
	}
	return true;
}

static bool vq_setup(struct vq *q, unsigned long regs, u16 index, struct vq_mem *mem)
{
	reg_write(regs, MMIO_QUEUE_SEL, index);
	if (reg_read(regs, MMIO_QUEUE_READY) != 0) {
		virtio_error = "queue already in use";
		return false;
	}
	u32 max = reg_read(regs, MMIO_QUEUE_NUM_MAX);
	u32 size = VIRTQ_SIZE;
	while (size > max) /* the largest power of two <= both */
		size >>= 1;
	if (size < 4) {
		virtio_error = "queue missing or too small";
		return false;
	}
	memset(mem, 0, sizeof(*mem));
	q->regs = regs;
	q->index = index;
	q->size = (u16)size;
	q->mem = mem;
	q->avail_idx = 0;
	reg_write(regs, MMIO_QUEUE_NUM, size);
	reg_write(regs, MMIO_QUEUE_DESC_LOW, (u32)phys(mem->desc));
	reg_write(regs, MMIO_QUEUE_DESC_HIGH, (u32)(phys(mem->desc) >> 32));
	reg_write(regs, MMIO_QUEUE_DRIVER_LOW, (u32)phys(&mem->avail));
	reg_write(regs, MMIO_QUEUE_DRIVER_HIGH, (u32)(phys(&mem->avail) >> 32));
	reg_write(regs, MMIO_QUEUE_DEVICE_LOW, (u32)phys(&mem->used));
	reg_write(regs, MMIO_QUEUE_DEVICE_HIGH, (u32)(phys(&mem->used) >> 32));
	reg_write(regs, MMIO_QUEUE_READY, 1);
	return true;
}

static void driver_ok(unsigned long regs)
{
	reg_write(regs, MMIO_STATUS, reg_read(regs, MMIO_STATUS) | STATUS_DRIVER_OK);
}

/* Make descriptor chain `head` available (the descriptors are already written). */
static void vq_push(struct vq *q, u16 head)
{
	volatile struct virtq_avail *avail = &q->mem->avail;
	avail->ring[q->avail_idx % q->size] = head;
	q->avail_idx++;
	barrier(); /* the ring entry before the index (x86 keeps stores in order) */
	avail->idx = q->avail_idx;
}

/* Notify, then poll until the device has used every chain made available. */
static bool vq_kick_and_wait(struct vq *q)
{
	barrier();
	reg_write(q->regs, MMIO_QUEUE_NOTIFY, q->index);
	volatile struct virtq_used *used = &q->mem->used;
	for (unsigned i = 0; i < POLL_LIMIT; i++) {
		if (used->idx == q->avail_idx) {
			barrier();
			return true;
		}
	}
	virtio_error = "the device did not complete the requests";
	return false;
}

/* ---- virtio-console: the text, one buffer per line ---- */
static u8 text[IO_TEXT_BYTES] ALIGNED(4096);

#if !PV /* the pv build sends it through the pv console's driver (kmain) */
static struct vq_mem console_tx_mem;

static bool console_send(unsigned long regs)
{
	struct vq q;
	if (!vq_setup(&q, regs, 1 /* transmitq0 */, &console_tx_mem))
		return false;
	driver_ok(regs);
	unsigned line = 0;
	while (line < IO_TEXT_LINES) {
		u16 n = 0;
		for (; n < q.size && line < IO_TEXT_LINES; n++, line++) {
			q.mem->desc[n].addr = phys(text + line * IO_TEXT_LINE);
			q.mem->desc[n].len = IO_TEXT_LINE;
			q.mem->desc[n].flags = 0; /* device-readable */
			q.mem->desc[n].next = 0;
			vq_push(&q, n);
		}
		if (!vq_kick_and_wait(&q))
			return false;
	}
	return true;
}
#endif

/* ---- virtio-blk: 4 KiB requests ---- */
#define BLK_T_IN 0 /* read */
#define BLK_T_OUT 1 /* write */
#define BLK_S_OK 0
#define BLK_REQ_BYTES 4096
#define BLK_REQS (IO_DISK_BYTES / BLK_REQ_BYTES)

struct blk_req_header {
	u32 type;
	u32 reserved;
	u64 sector;
};

static struct vq_mem blk_mem;
static struct blk_req_header blk_headers[BLK_REQS] ALIGNED(4096);
static volatile u8 blk_status[BLK_REQS];
static u8 data[IO_DISK_BYTES] ALIGNED(4096);
static u8 readback[IO_DISK_BYTES] ALIGNED(4096);

/* All BLK_REQS requests in one batch; BLK_REQS * 3 <= the queue size. */
static bool blk_transfer(struct vq *q, u32 type, u8 *buf)
{
	if (BLK_REQS * 3 > q->size) {
		virtio_error = "queue too small for one batch";
		return false;
	}
	for (u16 r = 0; r < BLK_REQS; r++) {
		struct virtq_desc *d = &q->mem->desc[3 * r];
		blk_headers[r].type = type;
		blk_headers[r].reserved = 0;
		blk_headers[r].sector = IO_DISK_LBA + r * (BLK_REQ_BYTES / IO_DISK_SECTOR);
		blk_status[r] = 0xff;
		d[0].addr = phys(&blk_headers[r]);
		d[0].len = sizeof(blk_headers[r]);
		d[0].flags = DESC_F_NEXT;
		d[0].next = (u16)(3 * r + 1);
		d[1].addr = phys(buf + r * BLK_REQ_BYTES);
		d[1].len = BLK_REQ_BYTES;
		d[1].flags = DESC_F_NEXT | (type == BLK_T_IN ? DESC_F_WRITE : 0);
		d[1].next = (u16)(3 * r + 2);
		d[2].addr = phys(&blk_status[r]);
		d[2].len = 1;
		d[2].flags = DESC_F_WRITE;
		d[2].next = 0;
		vq_push(q, (u16)(3 * r));
	}
	if (!vq_kick_and_wait(q))
		return false;
	for (unsigned r = 0; r < BLK_REQS; r++)
		if (blk_status[r] != BLK_S_OK) {
			virtio_error = "a request completed with an error status";
			return false;
		}
	return true;
}

/* One check line for a device probe; a missing device gets its own message. */
static bool report_probe(const char *name, unsigned long regs, unsigned slot, u32 id, bool ok, u32 magic)
{
	if (magic != VIRTIO_MAGIC)
		return check(false, "%s at 0x%lx (slot %u): no virtio device (MagicValue 0x%08x, expected 0x%08x)",
			     name, regs, slot, magic, VIRTIO_MAGIC);
	return check(ok, "%s at 0x%lx (slot %u): device ID %u, VIRTIO_F_VERSION_1 negotiated%s%s", name, regs,
		     slot, id, ok ? "" : ": ", ok ? "" : virtio_error);
}

/* ": why" after a failed step, nothing after a good one. */
#define WHY(ok) (ok) ? "" : ": ", (ok) ? "" : virtio_error

void kmain(struct hvm_start_info *si)
{
	(void)si;
	printf("io-virtio: %u KiB of text to virtio-console and %u KiB to virtio-blk, through virtqueues\n",
	       IO_TEXT_BYTES / 1024, IO_DISK_BYTES / 1024);

	io_text(text);
	io_disk_data(data);
	u64 sum = io_sum(IO_SUM_INIT, text, sizeof(text));

	/* Each step runs first: check()'s arguments are evaluated in no fixed order. */
	const unsigned long con = VIRTIO_MMIO_BASE, blk = VIRTIO_MMIO_BASE + VIRTIO_MMIO_SLOT;
	u32 magic = 0;
	virtio_error = NULL;
#if PV
	/*
	 * The paravirtual runtime already drives virtio-console: printf goes
	 * through its transmitq (lib/pvops.c). Resetting the device here would
	 * take the queue away from the console, so the text goes through the
	 * same driver and queue: the same chains, one notification.
	 */
	bool ok = pv_console_status(&magic, &virtio_error);
	if (report_probe("virtio-console", con, 0, DEVICE_ID_CONSOLE, ok, magic)) {
		ok = pv_console_send(text, IO_TEXT_LINE, IO_TEXT_LINES, &virtio_error);
		check(ok, "virtio-console: %u bytes sent as %u buffers on transmitq%s%s", IO_TEXT_BYTES,
		      IO_TEXT_LINES, WHY(ok));
	}
#else
	bool ok = virtio_probe(con, DEVICE_ID_CONSOLE, &magic);
	if (report_probe("virtio-console", con, 0, DEVICE_ID_CONSOLE, ok, magic)) {
		ok = console_send(con);
		check(ok, "virtio-console: %u bytes sent as %u buffers on transmitq%s%s", IO_TEXT_BYTES,
		      IO_TEXT_LINES, WHY(ok));
	}
#endif

	virtio_error = NULL;
	ok = virtio_probe(blk, DEVICE_ID_BLOCK, &magic);
	if (!report_probe("virtio-blk", blk, 1, DEVICE_ID_BLOCK, ok, magic))
		return;
	u64 capacity = (u64)reg_read(blk, MMIO_CONFIG) | (u64)reg_read(blk, MMIO_CONFIG + 4) << 32;
	if (!check(capacity >= IO_DISK_LBA + IO_DISK_SECTORS, "virtio-blk: the disk has at least %u sectors",
		   IO_DISK_LBA + IO_DISK_SECTORS))
		return;
	struct vq q;
	ok = vq_setup(&q, blk, 0 /* requestq */, &blk_mem);
	if (ok)
		driver_ok(blk);
	if (ok)
		ok = blk_transfer(&q, BLK_T_OUT, data);
	if (!check(ok, "virtio-blk: %u write requests of %u KiB at LBA %u, one notification%s%s", BLK_REQS,
		   BLK_REQ_BYTES / 1024, IO_DISK_LBA, WHY(ok)))
		return;
	ok = blk_transfer(&q, BLK_T_IN, readback);
	if (!check(ok, "virtio-blk: %u read requests of %u KiB at LBA %u, one notification%s%s", BLK_REQS,
		   BLK_REQ_BYTES / 1024, IO_DISK_LBA, WHY(ok)))
		return;
	sum = io_sum(sum, readback, sizeof(readback));
	printf("io-virtio: checksum 0x%016lx\n", sum);
	check(io_equal(readback, data, sizeof(data)), "virtio-blk: the %u KiB read back equal what was written",
	      IO_DISK_BYTES / 1024);
}
