/*
 * trap.h - the IDT, exception/interrupt dispatch, and expected faults
 * (64-bit kernels only).
 */
#ifndef RINGSIDE_TRAP_H
#define RINGSIDE_TRAP_H

#include "types.h"

/* What isr.S leaves on the stack; lowest address first. */
struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector;
	u64 error_code; /* 0 for vectors without one */
	/* pushed by the CPU: */
	u64 rip, cs, rflags, rsp, ss;
};

typedef void (*trap_handler_fn)(struct trap_frame *f);

/* Fill all 256 IDT gates (interrupt gates, DPL 0) and load IDTR. */
void trap_init(void);
/* What trap_init loaded into IDTR (from memory, not from SIDT). */
void idt_descriptor(u64 *base, u16 *limit);
/* Call h for this vector instead of panicking (NULL: panic again). Returns the previous handler. */
trap_handler_fn trap_set_handler(u8 vector, trap_handler_fn h);
/* Panic with a description of the trap: what happens to vectors nobody handles. */
NORETURN void trap_unexpected(const struct trap_frame *f);
/* Gate DPL: 3 lets ring 3 use INT n on this vector, 0 makes that a #GP. */
void idt_set_dpl(u8 vector, unsigned dpl);
/* "#GP", "#PF", ... or "IRQ/INT" for vectors >= 32. */
const char *exception_mnemonic(unsigned vector);

/* The last fault caught through a FIXUP entry (asm.h). */
struct fault_record {
	u64 count; /* faults caught since fault_reset() */
	u64 vector;
	u64 error_code;
	u64 rip; /* the faulting instruction */
	u64 cs; /* CS of the interrupted code: CPL = cs & 3 */
	u64 cr2; /* for #PF: the faulting linear address */
};
extern volatile struct fault_record last_fault;
void fault_reset(void);
/* Store f in last_fault (for handlers that deal with a fault themselves). */
void fault_record(const struct trap_frame *f);

/* fixup.S: accesses that may fault on purpose (see last_fault). */
bool try_read64(const volatile void *p, u64 *out);
bool try_write64(volatile void *p, u64 value);

/* cpu.c: the TSS (RSP0 for ring 3 -> 0 transitions, IST1 for #DF and NMI). */
void cpu_init(void);

#endif
