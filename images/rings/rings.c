/*
 * rings - privilege levels: ring 0 -> ring 3 and back, every way there is.
 *
 *   ring 0 -> 3: IRETQ with a CS/SS of RPL 3 (user_enter, lib/user_entry.S)
 *   ring 3 -> 0: SYSCALL (EFER.SCE, STAR, LSTAR, FMASK), back with SYSRET
 *   ring 3 -> 0: an exception (#GP for privileged instructions); the CPU
 *                takes the ring-0 stack from TSS.RSP0
 *   ring 3 -> 0: INT 0x80 through an IDT gate with DPL 3
 *
 * The ring-3 side is user_program.S; it reports through system calls,
 * and this file prints one check per observation.
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "rings.h"
#include "trap.h"
#include "user.h"

const char kernel_name[] = "rings";

extern const u8 user_program[], user_after_probe[]; /* user_program.S */
#define TRAP_STACK_SIZE 16384

static bool on_trap_stack(const void *p)
{
	uintptr_t q = (uintptr_t)p, top = (uintptr_t)kernel_trap_stack_top;
	return q < top && q >= top - TRAP_STACK_SIZE;
}

/* ---- INT 0x80: a system call the old way ---- */
static struct {
	u64 cpl, ss;
	bool trap_stack;
	bool called;
} int80;

static void int80_handler(struct trap_frame *f)
{
	int80.called = true;
	int80.cpl = f->cs & 3;
	int80.ss = f->ss;
	int80.trap_stack = on_trap_stack(f);
	f->rax = f->rax == INT80_IN ? INT80_OUT : 0; /* the "return value" */
}

/* The gate for 0x81 has DPL 0: ring 3 must never get here. */
static void int81_handler(struct trap_frame *f)
{
	(void)f;
	check(false, "INT 0x81 from ring 3 reached its DPL-0 gate");
}

/* ---- The expected #GP faults ---- */
static void check_gp(const char *what)
{
	u64 vec = last_fault.vector, err = last_fault.error_code, cpl = last_fault.cs & 3;
	check(last_fault.count == 1 && vec == VEC_GP && err == 0 && cpl == 3,
	      "%s in ring 3 -> %s (vector %lu), error code 0x%lx, from CPL %lu", what,
	      exception_mnemonic((unsigned)vec), vec, err, cpl);
	fault_reset();
}

/*
 * INT n through a gate whose DPL < CPL: #GP with a selector-style error
 * code naming the IDT entry: (n << 3) | 2 (bit 1 = IDT, bit 0 = EXT).
 * Only the flag bits are checked here: QEMU 7.2's TCG reports
 * (n << 4) | 2 for 64-bit IDTs (fixed upstream later), and this output
 * must be the same under every emulator and on hardware.
 */
static void check_gp_idt(const char *what)
{
	u64 vec = last_fault.vector, err = last_fault.error_code, cpl = last_fault.cs & 3;
	check(last_fault.count == 1 && vec == VEC_GP && (err & 3) == 2 && cpl == 3,
	      "%s in ring 3 -> %s (vector %lu), error code flags IDT=%lu EXT=%lu, from CPL %lu",
	      what, exception_mnemonic((unsigned)vec), vec, (err >> 1) & 1, err & 1, cpl);
	fault_reset();
}

static u64 syscall_handler(struct syscall_frame *f)
{
	switch (f->nr) {
	case SYS_REPORT_CS:
		check(f->rdi == (USER_CS64 | 3), "IRETQ to ring 3: user code runs with CS=0x%lx (CPL %lu)",
		      f->rdi, f->rdi & 3);
		return 0;
	case SYS_PROBE: {
		u16 cs = read_cs();
		check(cs == KERNEL_CS64, "SYSCALL: handler runs with CS=0x%x (CPL %u)", cs, cs & 3);
		check(f->user_rip == (u64)user_after_probe, "SYSCALL: RCX = address of the next instruction");
		check(f->user_rflags == USER_PROBE_RFLAGS, "SYSCALL: R11 = user RFLAGS 0x%lx (CF, DF set)",
		      f->user_rflags);
		/*
		 * Only the FMASK bits are checked: the other bits should be the
		 * user's (CF set), but QEMU 7.2's TCG clears the arithmetic flags.
		 */
		check((f->entry_rflags & SYSCALL_FMASK) == 0,
		      "SYSCALL: FMASK cleared IF, TF, DF and AC for the kernel");
		return PROBE_RESULT;
	}
	case SYS_AFTER_SYSRET:
		check(f->rsi == (USER_CS64 | 3) && f->r10 == (USER_DS | 3),
		      "SYSRET: back in ring 3 with CS=0x%lx SS=0x%lx", f->rsi, f->r10);
		check(f->rdi == PROBE_RESULT, "SYSRET: RAX = 0x%lx (the handler's return value)", f->rdi);
		check(f->rdx == USER_PROBE_RFLAGS,
		      "SYSRET: RFLAGS = 0x%lx restored from R11 (CF, DF set again)", f->rdx);
		return 0;
	case SYS_FAULT_DONE:
		switch (f->rdi) {
		case TEST_HLT:
			check_gp("HLT");
			break;
		case TEST_MOV_CR3:
			check_gp("MOV RAX, CR3");
			break;
		case TEST_CLI:
			check_gp("CLI (IOPL 0)");
			break;
		case TEST_INT81:
			check_gp_idt("INT 0x81 via a DPL-0 gate");
			break;
		default:
			check(false, "unknown test %lu", f->rdi);
		}
		return 0;
	case SYS_REPORT_INT80:
		check(int80.called && int80.cpl == 3, "INT 0x80 via a DPL-3 gate: handler saw CPL %lu",
		      int80.cpl);
		check(int80.trap_stack && int80.ss == (USER_DS | 3),
		      "INT 0x80: CPU switched to the TSS.RSP0 stack, saved user SS=0x%lx", int80.ss);
		check(f->rdi == INT80_OUT, "INT 0x80: IRETQ returned RAX=%lu to ring 3", f->rdi);
		return 0;
	case SYS_EXIT:
		user_return(f->rdi);
	default:
		check(false, "unknown system call %lu", f->nr);
		user_return(0);
	}
}

void kmain(struct hvm_start_info *si)
{
	(void)si;
	printf("rings: ring 0 <-> ring 3 with IRETQ, SYSCALL/SYSRET, #GP and INT n\n");

	u16 cs = read_cs();
	check(cs == KERNEL_CS64, "kernel starts in ring 0: CS=0x%x (CPL %u)", cs, cs & 3);

	syscall_init(syscall_handler);
	trap_set_handler(0x80, int80_handler);
	idt_set_dpl(0x80, 3);
	trap_set_handler(0x81, int81_handler); /* gate stays DPL 0 */
	fault_reset();

	u64 r = user_enter((void *)user_program, user_stack_top);

	cs = read_cs();
	check(r == USER_DONE && cs == KERNEL_CS64,
	      "ring 3 program finished; back in kmain with CS=0x%x (result 0x%lx)", cs, r);
}
