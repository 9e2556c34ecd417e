/*
 * x86.h - architectural constants and tiny wrappers around system
 * instructions, shared by C and assembly (.S files include it too).
 *
 * Names follow the Intel SDM (CR0.PE, EFER.LME, ...).
 */
#ifndef RINGSIDE_X86_H
#define RINGSIDE_X86_H

/* ---- Control registers (SDM vol. 3, 2.5) ---- */
#define CR0_PE 0x00000001 /* protection enable */
#define CR0_MP 0x00000002 /* monitor coprocessor (WAIT/FWAIT and CR0.TS) */
#define CR0_ET 0x00000010 /* extension type (hardwired to 1) */
#define CR0_WP 0x00010000 /* write protect: ring 0 honours read-only pages */
#define CR0_PG 0x80000000 /* paging */

#define CR4_PAE 0x00000020 /* physical address extension (needed for long mode) */

/* ---- Model-specific registers ---- */
#define MSR_APIC_BASE 0x0000001b
#define MSR_EFER 0xc0000080 /* extended feature enable register */
#define MSR_STAR 0xc0000081 /* SYSCALL/SYSRET segment selectors */
#define MSR_LSTAR 0xc0000082 /* SYSCALL target RIP in 64-bit mode */
#define MSR_FMASK 0xc0000084 /* RFLAGS bits SYSCALL clears */

#define EFER_SCE 0x00000001 /* SYSCALL enable */
#define EFER_LME 0x00000100 /* long mode enable */
#define EFER_LMA 0x00000400 /* long mode active (read-only, set by the CPU) */
#define EFER_NXE 0x00000800 /* no-execute enable */

/* ---- RFLAGS ---- */
#define RFLAGS_CF 0x00000001
#define RFLAGS_FIXED 0x00000002 /* bit 1 always reads as 1 */
#define RFLAGS_ZF 0x00000040
#define RFLAGS_TF 0x00000100
#define RFLAGS_IF 0x00000200
#define RFLAGS_DF 0x00000400
#define RFLAGS_AC 0x00040000

/*
 * ---- GDT layout (lib/entry.S builds it) ----
 * The order of the user segments is dictated by SYSRET: it loads
 * SS = STAR[63:48] + 8 and CS = STAR[63:48] + 16 (64-bit), so the
 * 32-bit user code, user data and 64-bit user code must be adjacent.
 */
#define KERNEL_CS64 0x08 /* 64-bit code, DPL 0 (L=1) */
#define KERNEL_DS 0x10 /* flat 4 GiB data, DPL 0 */
#define KERNEL_CS32 0x18 /* 32-bit code, DPL 0 (D=1): protected/compat mode */
#define USER_CS32 0x20 /* 32-bit code, DPL 3 */
#define USER_DS 0x28 /* flat 4 GiB data, DPL 3 */
#define USER_CS64 0x30 /* 64-bit code, DPL 3 */
#define TSS_SEL 0x38 /* 64-bit TSS (16-byte descriptor: 0x38 and 0x40) */
#define KERNEL_CS16 0x48 /* 16-bit code, base 0, limit 64 KiB (for real mode) */
#define KERNEL_DS16 0x50 /* 16-bit data, base 0, limit 64 KiB (for real mode) */
#define GDT_SIZE 0x58 /* bytes: the GDT limit is GDT_SIZE - 1 */

/* ---- Page-table entry bits (SDM vol. 3, 4.5) ---- */
#define PTE_P 0x001 /* present */
#define PTE_W 0x002 /* writable */
#define PTE_U 0x004 /* user accessible */
#define PTE_PWT 0x008 /* write-through */
#define PTE_PCD 0x010 /* cache disable */
#define PTE_A 0x020 /* accessed (set by the CPU) */
#define PTE_D 0x040 /* dirty (set by the CPU, leaf entries only) */
#define PTE_PS 0x080 /* page size: 2 MiB page in a PDE */

/* ---- Page-fault error code (SDM vol. 3, 4.7) ---- */
#define PF_P 0x01 /* 0: page not present, 1: protection violation */
#define PF_W 0x02 /* the access was a write */
#define PF_U 0x04 /* the access was made in user mode (CPL 3) */
#define PF_RSVD 0x08 /* a reserved bit was set in a paging entry */
#define PF_I 0x10 /* instruction fetch */

/* ---- Exception vectors ---- */
#define VEC_DE 0
#define VEC_DB 1
#define VEC_NMI 2
#define VEC_BP 3
#define VEC_UD 6
#define VEC_DF 8
#define VEC_TS 10
#define VEC_NP 11
#define VEC_SS 12
#define VEC_GP 13
#define VEC_PF 14

#ifndef __ASSEMBLER__
#include "types.h"

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static inline u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u16 inw(u16 port)
{
	u16 v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u32 inl(u16 port)
{
	u32 v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Control registers are 64 bits wide in long mode, 32 in protected mode. */
static inline unsigned long read_cr0(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}
static inline unsigned long read_cr2(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}
static inline unsigned long read_cr3(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}
static inline unsigned long read_cr4(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}
static inline void write_cr0(unsigned long v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
/* Loading CR3 also flushes all non-global TLB entries. */
static inline void write_cr3(unsigned long v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline void write_cr4(unsigned long v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}

/* Drop the TLB entry (if any) for the page containing addr. */
static inline void invlpg(const volatile void *addr)
{
	__asm__ volatile("invlpg (%0)" : : "r"(addr) : "memory");
}

static inline u16 read_cs(void)
{
	u16 v;
	__asm__ volatile("mov %%cs, %0" : "=r"(v));
	return v;
}

static inline unsigned long read_flags(void)
{
	unsigned long v;
	__asm__ volatile("pushf; pop %0" : "=r"(v));
	return v;
}

static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" : : : "memory"); }

/*
 * Enable interrupts and halt until the next one. STI delays interrupt
 * recognition by one instruction, so an interrupt that is already pending
 * is taken after HLT has started and wakes it: no lost wake-up.
 */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }

static inline u32 mmio_read32(unsigned long addr) { return *(volatile u32 *)addr; }
static inline void mmio_write32(unsigned long addr, u32 v) { *(volatile u32 *)addr = v; }

#endif /* __ASSEMBLER__ */
#endif
