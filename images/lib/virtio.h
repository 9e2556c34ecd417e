/*
 * virtio.h - virtio-mmio registers and split-virtqueue layout (virtio 1.x,
 * 4.2.2 and 2.7), shared by the two drivers in these kernels:
 *
 *   - io-virtio's own (virtio-console and virtio-blk, the lab workload);
 *   - the paravirtual console of lib/pvops.c (virtio-console only), which
 *     a pv build's printf goes through.
 *
 * ringside's virtio-mmio slots are at 0xd0000000 + slot * 0x1000
 * (docs/VIRTUALIZATION.md, "CONTRACT: devices the workloads use").
 */
#ifndef RINGSIDE_VIRTIO_H
#define RINGSIDE_VIRTIO_H

#include "types.h"

/* ---- virtio-mmio registers (version 2, the "modern" layout) ---- */
#define VIRTIO_MMIO_BASE 0xd0000000ul
#define VIRTIO_MMIO_SLOT 0x1000ul
#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEVICE_FEATURES 0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES 0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC_LOW 0x080
#define MMIO_QUEUE_DESC_HIGH 0x084
#define MMIO_QUEUE_DRIVER_LOW 0x090
#define MMIO_QUEUE_DRIVER_HIGH 0x094
#define MMIO_QUEUE_DEVICE_LOW 0x0a0
#define MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define MMIO_CONFIG 0x100

#define VIRTIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VERSION 2

/* Device status bits (virtio 1.x, 2.1). */
#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_FAILED 0x80

#define F_VERSION_1_HI (1u << 0) /* VIRTIO_F_VERSION_1 = feature bit 32 */

#define DEVICE_ID_BLOCK 2
#define DEVICE_ID_CONSOLE 3

/* ---- Split virtqueues ---- */
#define VIRTQ_SIZE 64 /* the kernels' queue size (a power of two; ringside offers up to 256) */
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2 /* device-writable */
/* avail.flags: "no interrupt when you use a buffer" (the drivers here poll). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};

struct virtq_avail {
	u16 flags;
	u16 idx;
	u16 ring[VIRTQ_SIZE];
	u16 used_event;
};

struct virtq_used_elem {
	u32 id;
	u32 len;
};

struct virtq_used {
	u16 flags;
	u16 idx;
	struct virtq_used_elem ring[VIRTQ_SIZE];
	u16 avail_event;
};

/* One queue's rings: each part on its own page (more than the 16/2/4-byte alignment needed). */
struct vq_mem {
	struct virtq_desc desc[VIRTQ_SIZE] ALIGNED(4096);
	struct virtq_avail avail ALIGNED(4096);
	struct virtq_used used ALIGNED(4096);
};

#endif
