/*
 * pvops.h - the paravirtualization switch: one table of function pointers
 * for every operation a guest kernel does differently when it knows it
 * runs under a hypervisor (the same idea as Linux's pv_ops).
 *
 * Every workload of the virtualization lab is built twice from one source:
 * build/NAME.elf (the native table: CLI/STI, PUSHF/POPF, direct page-table
 * writes, MOV CR3, INVLPG, the local APIC timer) and build/NAME-pv.elf,
 * compiled with -DPV=1 (the paravirtual table: the hypercalls of
 * docs/VIRTUALIZATION.md, "CONTRACT: the hypercall ABI"). The workloads
 * only ever call pv_ops->...; the single line that picks the table is in
 * pvops.c.
 *
 * A paravirtual build checks for the ringside monitor before kmain() runs
 * (lib/main.c calls pv_init()); outside `--virt para` it prints
 * "FAIL not running under the ringside monitor (--virt para)" and exits
 * with EXIT_FAIL. When the monitor is there it prints nothing, so a
 * workload's serial output is the same in both flavours.
 */
#ifndef RINGSIDE_PVOPS_H
#define RINGSIDE_PVOPS_H

#include "types.h"

#ifndef PV
#define PV 0 /* 1 in the paravirtual build (-DPV=1) */
#endif

/* ---- The hypercall ABI (docs/VIRTUALIZATION.md): VMCALL, RAX = number ---- */
#define HC_NOP 0
#define HC_MMU_UPDATE 1 /* RDI = struct mmu_update[], RSI = count (<= 512) */
#define HC_SET_CR3 2 /* RDI = new CR3 (guest-physical) */
#define HC_IRQ_EVENT_CHECK 3 /* deliver a pending interrupt now if irq_mask is clear */
#define HC_SET_TIMER 4 /* RDI = vector, RSI = period in microseconds (0 = stop) */
#define HC_REGISTER_SHARED 5 /* RDI = guest-physical address of the shared page */

#define HC_ENOSYS (-1) /* unknown hypercall */
#define HC_EINVAL (-2) /* bad argument */
#define HC_EPERM (-3) /* not permitted */

#define PV_CPUID_LEAF 0x40000000u /* EBX, ECX, EDX = "RingsideVMM\0" */
#define PV_CPUID_VERSION_LEAF 0x40000001u /* EAX = ABI version */
#define PV_ABI_VERSION 1

/* HC_MMU_UPDATE requests: ptr & 3 is the command (Xen's mmu_update). */
struct mmu_update {
	u64 ptr;
	u64 val;
};
#define MMU_PT_UPDATE 0 /* ptr & ~7 = guest-physical address of a PTE, val = new value */
#define MMU_INVLPG 1 /* val = guest-virtual address */
#define MMU_FLUSH_TLB 2 /* all non-global translations */
#define MMU_BATCH_MAX 512 /* the monitor's limit per hypercall */

/* The page shared with the monitor (HC_REGISTER_SHARED). */
struct pv_shared_page {
	volatile u8 irq_mask; /* 1 = interrupts masked: the guest's virtual IF = 0 */
	volatile u8 irq_pending; /* set by the monitor: an interrupt waits for irq_mask = 0 */
	u8 unused[4094];
};

/* Raw hypercalls (pvops.c); they must only run under the monitor. */
long hypercall0(u64 nr);
long hypercall1(u64 nr, u64 a1);
long hypercall2(u64 nr, u64 a1, u64 a2);

/* ---- The table ---- */
struct pv_ops {
	const char *name; /* "native" or "paravirt" */

	/* Interrupt flag (native: CLI, STI, PUSHF/POPF; pv: the shared irq_mask). */
	void (*irq_disable)(void);
	void (*irq_enable)(void); /* pv: may deliver a pending interrupt right here */
	unsigned long (*irq_save)(void); /* disable; returns a token for irq_restore */
	void (*irq_restore)(unsigned long flags);
	bool (*irqs_enabled)(void);
	/*
	 * The last thing an interrupt handler does before IRETQ. Native:
	 * nothing (IRETQ restores IF from the frame). pv: the monitor set
	 * irq_mask when it delivered the interrupt; clear it and deliver
	 * whatever became pending meanwhile.
	 */
	void (*irq_exit)(void);
	/*
	 * Enable interrupts and wait for the next one (native: STI; HLT, which
	 * cannot miss an interrupt that arrives in between; pv: unmask, deliver
	 * what is pending, then HLT, which the monitor emulates as "wait for an
	 * interrupt"). Returns with interrupts enabled.
	 */
	void (*safe_halt)(void);

	/*
	 * Page tables. set_pte, invlpg and flush_tlb may be queued (pv: one
	 * HC_MMU_UPDATE per batch); flush_pte_updates makes every queued
	 * operation take effect. Native: each takes effect at once. Every
	 * write to a page-table entry goes through set_pte, also while a
	 * table is being built (under --virt para the tables are read-only).
	 */
	void (*set_pte)(volatile u64 *ptep, u64 val);
	void (*invlpg)(u64 va);
	void (*flush_tlb)(void);
	void (*flush_pte_updates)(void);
	/* Switch address space (flushes the queue first). */
	void (*write_cr3)(u64 cr3);

	/*
	 * A periodic timer interrupt on `vector` every period_us microseconds
	 * (native: the local APIC timer, xAPIC at 0xfee00000, divide by 16, a
	 * 1 GHz bus clock as QEMU/KVM/ringside model it; pv: HC_SET_TIMER).
	 */
	void (*timer_start)(u8 vector, u32 period_us);
	void (*timer_stop)(void);
	void (*timer_eoi)(void); /* end of a timer interrupt: local APIC EOI in both flavours */

	/*
	 * The console: lib/serial.c's bytes (all that printf prints, with
	 * '\n' already sent as "\r\n"), one at a time. Native: COM1, a
	 * polled LSR read and an OUT per byte (two traps per byte under a
	 * monitor). pv: the bytes are gathered in a line buffer and sent to
	 * virtio-console's transmitq as one descriptor chain per line (or
	 * per full buffer): one trapped QueueNotify write per line. Until
	 * pv_init has set the device up, and if it is missing, they go to
	 * COM1. console_flush sends a buffered partial line and waits until
	 * the bytes are out (exit() calls it through serial_flush()).
	 */
	void (*console_putc)(char c);
	void (*console_flush)(void);
};

/* The one switch: &native_pv_ops, or &para_pv_ops when built with PV=1. */
extern const struct pv_ops *const pv_ops;
extern const struct pv_ops native_pv_ops, para_pv_ops;

/*
 * Paravirtual build only (lib/main.c calls it before kmain): find the
 * monitor through CPUID, check the ABI version, register the shared page
 * with interrupts masked. Exits with EXIT_FAIL if the monitor is absent.
 */
void pv_init(void);

/*
 * The pv console's virtio-console (virtio-mmio slot 0, transmitq 1),
 * set up once by pv_init. A kernel that wants to use the device itself
 * (io-virtio's pv build) shares this driver and its queue instead of
 * resetting the device under printf's feet.
 *
 * pv_console_status: true if the console prints through virtio-console;
 * *magic = the MagicValue register pv_init read, *why = why the device is
 * not used (NULL when it is).
 *
 * pv_console_send: the buffered partial line first, then `count` buffers
 * of `len` bytes (buf, buf + len, ...), one descriptor chain each and one
 * notification per queue-full, waiting until the device has used them.
 * False, with *why, if the console is not on virtio-console or the device
 * did not complete (the console then falls back to COM1).
 */
#if PV
bool pv_console_status(u32 *magic, const char **why);
bool pv_console_send(const void *buf, u32 len, unsigned count, const char **why);
#endif

/* The local APIC vector for spurious interrupts that timer_start sets up. */
#define PV_SPURIOUS_VECTOR 0xff

#endif
