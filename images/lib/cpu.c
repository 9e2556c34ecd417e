/*
 * cpu.c - the task-state segment.
 *
 * In long mode the TSS no longer switches tasks; it only holds stack
 * pointers: RSP0 is loaded when an interrupt or exception moves the CPU
 * from ring 3 to ring 0, and IST1..7 are per-vector emergency stacks.
 */
#include "kernel.h"
#include "trap.h"
#include "user.h"

struct tss64 {
	u32 reserved0;
	u64 rsp[3]; /* RSP0..RSP2 */
	u64 reserved1;
	u64 ist[7]; /* IST1..IST7 */
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base; /* offset of the I/O permission bitmap: none */
} PACKED;

static struct tss64 tss ALIGNED(16);

/* entry.S */
extern u64 boot_gdt[];
extern u8 ist1_stack_top[];

void cpu_init(void)
{
	tss.rsp[0] = (u64)kernel_trap_stack_top;
	tss.ist[0] = (u64)ist1_stack_top;
	tss.iomap_base = sizeof(tss); /* past the limit: no I/O bitmap */

	/* A 16-byte system descriptor: type 9 = available 64-bit TSS. */
	u64 base = (u64)&tss;
	u64 limit = sizeof(tss) - 1;
	boot_gdt[TSS_SEL / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
				(0x89ull << 40) /* P, DPL 0, type 9 */ |
				((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	boot_gdt[TSS_SEL / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(TSS_SEL));
}
