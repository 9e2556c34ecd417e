/*
 * pvops.c - the two pv_ops tables (see pvops.h): native x86 and the
 * ringside monitor's hypercall ABI (docs/VIRTUALIZATION.md).
 */
#include "kernel.h"
#include "pvops.h"
#include "trap.h"
#include "virtio.h"

/* The one switch between the two flavours of every lab workload. */
const struct pv_ops *const pv_ops = PV ? &para_pv_ops : &native_pv_ops;

#define barrier() __asm__ volatile("" : : : "memory")

/* ---- The local APIC timer (native; xAPIC registers, SDM vol. 3, 11.5.4) ---- */
#define APIC_BASE 0xfee00000ul
#define APIC_EOI 0x0b0
#define APIC_SVR 0x0f0 /* bit 8: APIC software enable */
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INITIAL 0x380
#define APIC_TIMER_DIVIDE 0x3e0
#define APIC_SVR_ENABLE 0x100
#define APIC_BASE_ENABLE (1u << 11)
#define LVT_MASKED (1u << 16)
#define LVT_TIMER_PERIODIC (1u << 17)
#define APIC_DIVIDE_16 0x3
/* 1 GHz bus clock / 16 = 62.5 counts per microsecond. */
#define APIC_COUNTS_PER_2US 125

static void apic_write(u32 reg, u32 v) { mmio_write32(APIC_BASE + reg, v); }

/* A spurious APIC interrupt is not in service: no EOI. */
static void spurious_irq(struct trap_frame *f)
{
	(void)f;
}

/* ---- Native: the instructions themselves ---- */
static void native_irq_disable(void) { cli(); }
static void native_irq_enable(void) { sti(); }

static unsigned long native_irq_save(void)
{
	unsigned long flags;
	__asm__ volatile("pushfq; pop %0; cli" : "=r"(flags) : : "memory");
	return flags;
}

/* POPF restores IF (at CPL 0, or CPL <= IOPL; elsewhere it silently keeps it). */
static void native_irq_restore(unsigned long flags)
{
	__asm__ volatile("push %0; popfq" : : "r"(flags) : "memory", "cc");
}

static bool native_irqs_enabled(void) { return (read_flags() & RFLAGS_IF) != 0; }
static void native_irq_exit(void) {}
static void native_safe_halt(void) { sti_hlt(); }

static void native_set_pte(volatile u64 *ptep, u64 val) { *ptep = val; }
static void native_invlpg(u64 va) { invlpg((const volatile void *)va); }
static void native_flush_tlb(void) { write_cr3(read_cr3()); }
static void native_flush_pte_updates(void) {}
static void native_write_cr3(u64 cr3) { write_cr3(cr3); }

static void native_timer_start(u8 vector, u32 period_us)
{
	u64 base = rdmsr(MSR_APIC_BASE);
	if ((base & 0xfffff000) != APIC_BASE || !(base & APIC_BASE_ENABLE))
		panic("local APIC not enabled at 0x%lx (IA32_APIC_BASE=0x%lx)", APIC_BASE, base);
	trap_set_handler(PV_SPURIOUS_VECTOR, spurious_irq);
	apic_write(APIC_SVR, APIC_SVR_ENABLE | PV_SPURIOUS_VECTOR);
	apic_write(APIC_TIMER_DIVIDE, APIC_DIVIDE_16);
	apic_write(APIC_LVT_TIMER, LVT_TIMER_PERIODIC | vector);
	apic_write(APIC_TIMER_INITIAL, period_us * APIC_COUNTS_PER_2US / 2); /* starts it */
}

static void native_timer_stop(void)
{
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_TIMER_INITIAL, 0);
}

static void apic_eoi(void) { apic_write(APIC_EOI, 0); }

const struct pv_ops native_pv_ops = {
	.name = "native",
	.irq_disable = native_irq_disable,
	.irq_enable = native_irq_enable,
	.irq_save = native_irq_save,
	.irq_restore = native_irq_restore,
	.irqs_enabled = native_irqs_enabled,
	.irq_exit = native_irq_exit,
	.safe_halt = native_safe_halt,
	.set_pte = native_set_pte,
	.invlpg = native_invlpg,
	.flush_tlb = native_flush_tlb,
	.flush_pte_updates = native_flush_pte_updates,
	.write_cr3 = native_write_cr3,
	.timer_start = native_timer_start,
	.timer_stop = native_timer_stop,
	.timer_eoi = apic_eoi,
	.console_putc = com1_putc, /* lib/serial.c */
	.console_flush = com1_flush,
};

/* ---- Paravirtual: hypercalls and the shared page ---- */

/*
 * VMCALL with RAX = nr and the arguments in RDI, RSI (RDX, R10 unused
 * here). The monitor preserves every register but RAX.
 */
long hypercall0(u64 nr)
{
	long r;
	__asm__ volatile("vmcall" : "=a"(r) : "a"(nr) : "memory");
	return r;
}

long hypercall1(u64 nr, u64 a1)
{
	long r;
	__asm__ volatile("vmcall" : "=a"(r) : "a"(nr), "D"(a1) : "memory");
	return r;
}

long hypercall2(u64 nr, u64 a1, u64 a2)
{
	long r;
	__asm__ volatile("vmcall" : "=a"(r) : "a"(nr), "D"(a1), "S"(a2) : "memory");
	return r;
}

static struct pv_shared_page shared ALIGNED(4096);

static void para_irq_disable(void)
{
	shared.irq_mask = 1;
	barrier();
}

/*
 * Unmask, then look for an interrupt that arrived while masked. An
 * interrupt that comes between the two is delivered at once (the mask
 * is clear) and the monitor clears irq_pending when it delivers: at
 * worst the hypercall finds nothing to do.
 */
static void para_irq_enable(void)
{
	barrier();
	shared.irq_mask = 0;
	barrier();
	if (shared.irq_pending)
		hypercall0(HC_IRQ_EVENT_CHECK);
}

/* The token is shaped like RFLAGS (IF = enabled), as native irq_save's. */
static unsigned long para_irq_save(void)
{
	unsigned long flags = shared.irq_mask ? 0 : RFLAGS_IF;
	shared.irq_mask = 1;
	barrier();
	return flags;
}

static void para_irq_restore(unsigned long flags)
{
	if (flags & RFLAGS_IF)
		para_irq_enable();
	else
		para_irq_disable();
}

/*
 * HLT is privileged: at the guest kernel's real CPL 1 it traps, and the
 * monitor waits for the next interrupt. An interrupt that was pending at
 * unmask time has already been delivered by para_irq_enable.
 */
static void para_safe_halt(void)
{
	para_irq_enable();
	__asm__ volatile("hlt" : : : "memory");
}

static bool para_irqs_enabled(void) { return shared.irq_mask == 0; }

/* ---- The HC_MMU_UPDATE queue ---- */
#define MMU_QUEUE_LEN 64
static struct mmu_update mmu_queue[MMU_QUEUE_LEN];
static unsigned mmu_queued;

static void para_flush_pte_updates(void)
{
	if (mmu_queued == 0)
		return;
	long done = hypercall2(HC_MMU_UPDATE, (u64)mmu_queue, mmu_queued);
	if (done != (long)mmu_queued)
		panic("HC_MMU_UPDATE: %ld of %u requests done", done, mmu_queued);
	mmu_queued = 0;
}

static void mmu_queue_add(u64 ptr, u64 val)
{
	if (mmu_queued == MMU_QUEUE_LEN)
		para_flush_pte_updates();
	mmu_queue[mmu_queued].ptr = ptr;
	mmu_queue[mmu_queued].val = val;
	mmu_queued++;
}

/* The kernel is identity mapped: a kernel pointer is its guest-physical address. */
static void para_set_pte(volatile u64 *ptep, u64 val) { mmu_queue_add((u64)ptep | MMU_PT_UPDATE, val); }
static void para_invlpg(u64 va) { mmu_queue_add(MMU_INVLPG, va); }
static void para_flush_tlb(void) { mmu_queue_add(MMU_FLUSH_TLB, 0); }

static void para_write_cr3(u64 cr3)
{
	para_flush_pte_updates();
	long r = hypercall1(HC_SET_CR3, cr3);
	if (r < 0)
		panic("HC_SET_CR3(0x%lx) failed: %ld", cr3, r);
}

static u8 para_timer_vector;

static void para_timer_start(u8 vector, u32 period_us)
{
	para_timer_vector = vector;
	trap_set_handler(PV_SPURIOUS_VECTOR, spurious_irq);
	long r = hypercall2(HC_SET_TIMER, vector, period_us);
	if (r < 0)
		panic("HC_SET_TIMER(0x%x, %u) failed: %ld", vector, period_us, r);
}

static void para_timer_stop(void)
{
	long r = hypercall2(HC_SET_TIMER, para_timer_vector, 0);
	if (r < 0)
		panic("HC_SET_TIMER(0x%x, 0) failed: %ld", para_timer_vector, r);
}

#if PV
/*
 * ---- The console: virtio-console (virtio-mmio slot 0), transmitq 1 ----
 *
 * COM1 costs two trapped port accesses per byte (the LSR poll and the
 * OUT). Here the bytes collect in pvcon_line and leave as one descriptor
 * chain per line: the only exit is the QueueNotify write; the device
 * copies the line out of RAM and fills the used ring, which we poll
 * (no interrupt wanted: see PVCON_IRQ). Every transmission waits for
 * its completion, so one line buffer suffices and the output keeps its
 * order with anything written to COM1 in between (io-emulated's text):
 * the device writes where COM1 writes.
 */
#define PVCON_REGS (VIRTIO_MMIO_BASE + 0 * VIRTIO_MMIO_SLOT)
#define PVCON_TRANSMITQ 1
#define PVCON_LINE 128 /* a longer line leaves in several chains */
#define PVCON_POLL_LIMIT 10000000u
/*
 * The device also raises IRQ 5 on the 8259 when it has used a buffer
 * (ringside's virtio-queue ignores VIRTQ_AVAIL_F_NO_INTERRUPT, which the
 * spec lets a device do), and nothing here acknowledges it. These kernels
 * leave the 8259 as it powers up (vector base 0), so in a kernel that
 * enables interrupts (irq) the line would arrive as vector 5, #BR. We
 * poll: mask the line at the master 8259 (OCW1, port 0x21).
 */
#define PIC_MASTER_IMR 0x21
#define PVCON_IRQ 5

/*
 * The transmit queue on one page: 1 KiB of descriptors, then the avail
 * and used rings (alignment 16, 2 and 4: virtio 1.x, 2.7). In .bss, so
 * zeroed at entry, as the driver must hand them over (4.2.3.2).
 */
static struct {
	struct virtq_desc desc[VIRTQ_SIZE];
	struct virtq_avail avail;
	struct virtq_used used ALIGNED(4);
} pvcon_vq ALIGNED(4096);
_Static_assert(sizeof(pvcon_vq) <= 4096, "the console's virtqueue fits a page");
static char pvcon_line[PVCON_LINE];
static unsigned pvcon_len; /* bytes in pvcon_line */
static u16 pvcon_size; /* the queue size set up */
static u16 pvcon_avail; /* avail.idx, free-running */
static bool pvcon_on; /* printing through virtio-console (else COM1) */
static u32 pvcon_magic;
static const char *pvcon_why = "pv_init has not set up virtio-console";

static u32 pvcon_read(u32 off) { return mmio_read32(PVCON_REGS + off); }
static void pvcon_write(u32 off, u32 v) { mmio_write32(PVCON_REGS + off, v); }

static bool pvcon_fail(const char *why)
{
	pvcon_why = why;
	return false;
}

/*
 * The driver initialisation sequence (virtio 1.x, 3.1.1): reset,
 * ACKNOWLEDGE, DRIVER, features (VIRTIO_F_VERSION_1 only), FEATURES_OK,
 * the transmit queue, DRIVER_OK. The receive queue is left unset: this
 * console only writes.
 */
static bool pvcon_setup(void)
{
	pvcon_magic = pvcon_read(MMIO_MAGIC);
	if (pvcon_magic != VIRTIO_MAGIC)
		return pvcon_fail("no virtio device");
	if (pvcon_read(MMIO_VERSION) != VIRTIO_MMIO_VERSION)
		return pvcon_fail("not the modern (version 2) register layout");
	if (pvcon_read(MMIO_DEVICE_ID) != DEVICE_ID_CONSOLE)
		return pvcon_fail("unexpected device ID");
	pvcon_write(MMIO_STATUS, 0);
	for (unsigned i = 0; pvcon_read(MMIO_STATUS) != 0; i++)
		if (i == PVCON_POLL_LIMIT)
			return pvcon_fail("reset did not complete");
	u32 status = STATUS_ACKNOWLEDGE | STATUS_DRIVER;
	pvcon_write(MMIO_STATUS, STATUS_ACKNOWLEDGE);
	pvcon_write(MMIO_STATUS, status);

	pvcon_write(MMIO_DEVICE_FEATURES_SEL, 1);
	if (!(pvcon_read(MMIO_DEVICE_FEATURES) & F_VERSION_1_HI)) {
		pvcon_write(MMIO_STATUS, status | STATUS_FAILED);
		return pvcon_fail("VIRTIO_F_VERSION_1 not offered");
	}
	pvcon_write(MMIO_DRIVER_FEATURES_SEL, 0);
	pvcon_write(MMIO_DRIVER_FEATURES, 0);
	pvcon_write(MMIO_DRIVER_FEATURES_SEL, 1);
	pvcon_write(MMIO_DRIVER_FEATURES, F_VERSION_1_HI);
	status |= STATUS_FEATURES_OK;
	pvcon_write(MMIO_STATUS, status);
	if (!(pvcon_read(MMIO_STATUS) & STATUS_FEATURES_OK)) {
		pvcon_write(MMIO_STATUS, status | STATUS_FAILED);
		return pvcon_fail("the device refused our features");
	}

	pvcon_write(MMIO_QUEUE_SEL, PVCON_TRANSMITQ);
	if (pvcon_read(MMIO_QUEUE_READY) != 0)
		return pvcon_fail("queue already in use");
	u32 max = pvcon_read(MMIO_QUEUE_NUM_MAX);
	u32 size = VIRTQ_SIZE;
	while (size > max) /* the largest power of two <= both */
		size >>= 1;
	if (size == 0) {
		pvcon_write(MMIO_STATUS, status | STATUS_FAILED);
		return pvcon_fail("queue missing or too small");
	}
	/* pv_init runs once: the rings are still as .bss left them, all zero. */
	pvcon_vq.avail.flags = VIRTQ_AVAIL_F_NO_INTERRUPT; /* we poll */
	pvcon_size = (u16)size;
	pvcon_avail = 0;
	u64 desc = (u64)pvcon_vq.desc, avail = (u64)&pvcon_vq.avail, used = (u64)&pvcon_vq.used;
	pvcon_write(MMIO_QUEUE_NUM, size); /* identity mapped: these are guest-physical */
	pvcon_write(MMIO_QUEUE_DESC_LOW, (u32)desc);
	pvcon_write(MMIO_QUEUE_DESC_HIGH, (u32)(desc >> 32));
	pvcon_write(MMIO_QUEUE_DRIVER_LOW, (u32)avail);
	pvcon_write(MMIO_QUEUE_DRIVER_HIGH, (u32)(avail >> 32));
	pvcon_write(MMIO_QUEUE_DEVICE_LOW, (u32)used);
	pvcon_write(MMIO_QUEUE_DEVICE_HIGH, (u32)(used >> 32));
	pvcon_write(MMIO_QUEUE_READY, 1);
	outb(PIC_MASTER_IMR, inb(PIC_MASTER_IMR) | (1u << PVCON_IRQ)); /* before the first completion */
	status |= STATUS_DRIVER_OK;
	pvcon_write(MMIO_STATUS, status);
	pvcon_why = NULL;
	return true;
}

/*
 * `count` buffers of `len` bytes from buf on, one single-descriptor chain
 * each: fill up to a queue's worth of descriptors, publish them in the
 * avail ring, notify once, poll the used ring until the device has used
 * them all; repeat. Everything completes before it returns, so the
 * descriptors are reused from 0 each time.
 */
static bool pvcon_transmit(const void *buf, u32 len, unsigned count)
{
	volatile struct virtq_avail *avail = &pvcon_vq.avail;
	volatile struct virtq_used *used = &pvcon_vq.used;
	const u8 *p = buf;
	while (count > 0) {
		for (u16 n = 0; n < pvcon_size && count > 0; n++, count--, p += len) {
			pvcon_vq.desc[n].addr = (u64)p; /* identity mapped */
			pvcon_vq.desc[n].len = len;
			pvcon_vq.desc[n].flags = 0; /* device-readable, no next */
			pvcon_vq.desc[n].next = 0;
			avail->ring[pvcon_avail % pvcon_size] = n;
			pvcon_avail++;
		}
		barrier(); /* descriptors and ring entries before the index (x86 keeps stores in order) */
		avail->idx = pvcon_avail;
		barrier();
		pvcon_write(MMIO_QUEUE_NOTIFY, PVCON_TRANSMITQ);
		unsigned polls = 0;
		while (used->idx != pvcon_avail)
			if (++polls == PVCON_POLL_LIMIT)
				return pvcon_fail("the device did not complete the requests");
		barrier();
	}
	return true;
}

/*
 * Send the line buffer. If the device fails, stop using it and write the
 * line to COM1 (a line the device may have printed after all is better
 * shown twice than lost, e.g. a panic message).
 */
static void pvcon_send_line(void)
{
	unsigned n = pvcon_len;
	if (n == 0)
		return;
	pvcon_len = 0;
	if (pvcon_transmit(pvcon_line, n, 1))
		return;
	pvcon_on = false;
	for (unsigned i = 0; i < n; i++)
		com1_putc(pvcon_line[i]);
}

static void para_console_putc(char c)
{
	if (!pvcon_on) {
		com1_putc(c);
		return;
	}
	pvcon_line[pvcon_len++] = c;
	if (c == '\n' || pvcon_len == PVCON_LINE)
		pvcon_send_line();
}

/* Each transmission has completed when it returns: only a partial line is left. */
static void para_console_flush(void)
{
	pvcon_send_line();
	if (!pvcon_on)
		com1_flush();
}

bool pv_console_status(u32 *magic, const char **why)
{
	*magic = pvcon_magic;
	*why = pvcon_why;
	return pvcon_on;
}

bool pv_console_send(const void *buf, u32 len, unsigned count, const char **why)
{
	pvcon_send_line();
	if (!pvcon_on) {
		*why = pvcon_why ? pvcon_why : "the console is not on virtio-console";
		return false;
	}
	if (!pvcon_transmit(buf, len, count)) {
		pvcon_on = false;
		*why = pvcon_why;
		return false;
	}
	return true;
}

#else
/*
 * The native build never selects para_pv_ops (the switch above is a
 * constant): its console entries are plain COM1, which keeps the virtio
 * driver and its rings out of native kernels.
 */
#define para_console_putc com1_putc
#define para_console_flush com1_flush
#endif /* PV */

const struct pv_ops para_pv_ops = {
	.name = "paravirt",
	.irq_disable = para_irq_disable,
	.irq_enable = para_irq_enable,
	.irq_save = para_irq_save,
	.irq_restore = para_irq_restore,
	.irqs_enabled = para_irqs_enabled,
	.irq_exit = para_irq_enable,
	.safe_halt = para_safe_halt,
	.set_pte = para_set_pte,
	.invlpg = para_invlpg,
	.flush_tlb = para_flush_tlb,
	.flush_pte_updates = para_flush_pte_updates,
	.write_cr3 = para_write_cr3,
	.timer_start = para_timer_start,
	.timer_stop = para_timer_stop,
	/*
	 * The monitor raises the timer interrupt through the guest's virtual
	 * local APIC, which keeps it in service until an EOI (one trapped MMIO
	 * write per tick; an EOI with nothing in service is ignored).
	 */
	.timer_eoi = apic_eoi,
	.console_putc = para_console_putc,
	.console_flush = para_console_flush,
};

static void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

void pv_init(void)
{
	u32 a, b, c, d;
	cpuid(PV_CPUID_LEAF, &a, &b, &c, &d);
	u32 sig[3] = { b, c, d };
	if (memcmp(sig, "RingsideVMM\0", 12) != 0 || a < PV_CPUID_VERSION_LEAF) {
		check(false, "not running under the ringside monitor (--virt para)");
		finish();
	}
	cpuid(PV_CPUID_VERSION_LEAF, &a, &b, &c, &d);
	if (a != PV_ABI_VERSION) {
		check(false, "ringside monitor ABI version %u, this kernel speaks version %u", a,
		      PV_ABI_VERSION);
		finish();
	}
	/*
	 * From here on the console is virtio-console (if the device is there:
	 * otherwise it stays on COM1, silently, so the output is the same).
	 * Only now: a kernel not running under ringside has no business
	 * poking at 0xd0000000.
	 */
#if PV
	pvcon_on = pvcon_setup();
#endif
	/* Interrupts start masked, as IF = 0 at the PVH entry. */
	shared.irq_mask = 1;
	shared.irq_pending = 0;
	long r = hypercall1(HC_REGISTER_SHARED, (u64)&shared);
	if (r < 0) {
		check(false, "HC_REGISTER_SHARED(shared page) failed: %ld", r);
		finish();
	}
}
