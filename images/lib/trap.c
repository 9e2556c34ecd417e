/*
 * trap.c - the IDT and the C side of interrupt handling.
 */
#include "kernel.h"
#include "trap.h"

/* A 64-bit IDT gate descriptor (SDM vol. 3, 6.14.1). */
struct idt_gate {
	u16 offset_lo;
	u16 selector;
	u8 ist; /* bits 0-2: interrupt stack table index, 0 = none */
	u8 type_attr; /* P, DPL, type (0xe = 64-bit interrupt gate) */
	u16 offset_mid;
	u32 offset_hi;
	u32 reserved;
} PACKED;

#define GATE_INTERRUPT 0x8e /* present, DPL 0, interrupt gate (clears IF) */

static struct idt_gate idt[256] ALIGNED(16);
static trap_handler_fn handlers[256];

extern const u8 isr_stubs[]; /* isr.S: 256 stubs, 16 bytes each */

struct fixup_entry {
	u64 insn;
	u64 fixup;
};
extern const struct fixup_entry __fixup_start[], __fixup_end[]; /* linker script */

volatile struct fault_record last_fault;

void trap_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		u64 addr = (u64)(isr_stubs + 16 * v);
		idt[v].offset_lo = (u16)addr;
		idt[v].selector = KERNEL_CS64;
		/* #DF and NMI run on their own stack (IST1), whatever RSP was. */
		idt[v].ist = (v == VEC_DF || v == VEC_NMI) ? 1 : 0;
		idt[v].type_attr = GATE_INTERRUPT;
		idt[v].offset_mid = (u16)(addr >> 16);
		idt[v].offset_hi = (u32)(addr >> 32);
		idt[v].reserved = 0;
	}
	struct {
		u16 limit;
		u64 base;
	} PACKED idtr = { sizeof(idt) - 1, (u64)idt };
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void idt_descriptor(u64 *base, u16 *limit)
{
	*base = (u64)idt;
	*limit = sizeof(idt) - 1;
}

trap_handler_fn trap_set_handler(u8 vector, trap_handler_fn h)
{
	trap_handler_fn old = handlers[vector];
	handlers[vector] = h;
	return old;
}

void idt_set_dpl(u8 vector, unsigned dpl)
{
	idt[vector].type_attr = (u8)((GATE_INTERRUPT & ~0x60) | ((dpl & 3) << 5));
}

const char *exception_mnemonic(unsigned vector)
{
	static const char *const names[32] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
		"#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
		"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
		"#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
	};
	return vector < 32 ? names[vector] : "INT";
}

void fault_reset(void)
{
	last_fault.count = 0;
	last_fault.vector = ~0ull;
	last_fault.error_code = ~0ull;
	last_fault.rip = 0;
	last_fault.cs = 0;
	last_fault.cr2 = 0;
}

void fault_record(const struct trap_frame *f)
{
	last_fault.count++;
	last_fault.vector = f->vector;
	last_fault.error_code = f->error_code;
	last_fault.rip = f->rip;
	last_fault.cs = f->cs;
	last_fault.cr2 = f->vector == VEC_PF ? read_cr2() : 0;
}

/* An exception at a FIXUP'd instruction: record it and resume at the fixup. */
static bool apply_fixup(struct trap_frame *f)
{
	for (const struct fixup_entry *e = __fixup_start; e < __fixup_end; e++) {
		if (e->insn != f->rip)
			continue;
		fault_record(f);
		f->rip = e->fixup;
		return true;
	}
	return false;
}

/* Called by isr_common for every interrupt and exception. */
void trap_dispatch(struct trap_frame *f);
void trap_dispatch(struct trap_frame *f)
{
	if (f->vector < 32 && apply_fixup(f))
		return;
	trap_handler_fn h = handlers[f->vector & 0xff];
	if (h) {
		h(f);
		return;
	}
	trap_unexpected(f);
}

void trap_unexpected(const struct trap_frame *f)
{
	panic("unexpected %s (vector %lu) error=0x%lx rip=0x%lx cs=0x%lx rflags=0x%lx rsp=0x%lx cr2=0x%lx",
	      exception_mnemonic((unsigned)f->vector), f->vector, f->error_code, f->rip, f->cs,
	      f->rflags, f->rsp, read_cr2());
}
