/*
 * user.c - SYSCALL/SYSRET setup (SDM vol. 3, 5.8.8), and user_call():
 * run a C function in ring 3 and come back through an exception.
 */
#include "kernel.h"
#include "trap.h"
#include "user.h"

extern void syscall_entry(void); /* user_entry.S */
extern u64 syscall_kernel_rsp; /* user_entry.S */
extern syscall_handler_fn syscall_handler; /* user_entry.S */

void syscall_init(syscall_handler_fn handler)
{
	syscall_handler = handler;
	syscall_kernel_rsp = (u64)kernel_trap_stack_top;

	/*
	 * STAR[47:32]: SYSCALL loads CS = this, SS = this + 8.
	 * STAR[63:48]: SYSRET (64-bit) loads CS = this + 16, SS = this + 8, RPL 3.
	 */
	wrmsr(MSR_STAR, ((u64)USER_CS32 << 48) | ((u64)KERNEL_CS64 << 32));
	wrmsr(MSR_LSTAR, (u64)syscall_entry);
	wrmsr(MSR_FMASK, SYSCALL_FMASK);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
}

/*
 * ---- user_call: the way into ring 3 is IRETQ; the way back is a trap ----
 *
 * Ring 3 has three doors back to ring 0: SYSCALL, INT n through a DPL-3
 * gate, and an exception. Only the last one is honoured by every kind of
 * machine these kernels run on. A hypervisor that runs the guest's ring 3
 * natively in the host's user mode (KVM's PVM flavour, which needs no VMX
 * or SVM) need not turn the first two into a switch to the guest's ring 0:
 * on the kvm-pvm host this lab was developed on, SYSCALL arrived at LSTAR
 * still at CPL 3 and INT 0x80 raised #UD. A privileged instruction at
 * CPL 3, though, raises #GP(0) on every x86 CPU, real or emulated, and a
 * hypervisor cannot skip delivering that: the guest kernel gets it through
 * its IDT, at CPL 0, on the TSS.RSP0 stack. A trap is the only door back
 * that every virtualization flavour honours.
 *
 * So the ring-3 side (user_call_trampoline, user_entry.S) calls fn and then
 * executes HLT at the label user_call_exit. The #GP handler below takes
 * that one fault, at that address and from CPL 3, as "fn returned", and
 * leaves the trap stack through user_return(): user_enter() returns. Any
 * other #GP goes to the handler that was installed before (or panics).
 */
extern const u8 user_call_trampoline[], user_call_exit[]; /* user_entry.S */

#define USER_CALL_DONE 0x600df00d /* what user_enter() returns when fn finished */

static trap_handler_fn gp_handler_outside_user_call;

static void user_call_gp(struct trap_frame *f)
{
	if ((f->cs & 3) == 3 && f->rip == (u64)user_call_exit && f->error_code == 0)
		user_return(USER_CALL_DONE);
	if (gp_handler_outside_user_call) {
		gp_handler_outside_user_call(f);
		return;
	}
	trap_unexpected(f);
}

void user_call(void (*fn)(void *arg), void *arg)
{
	/* The trampoline pops fn and arg from the ring-3 stack (user_enter clears all registers). */
	u64 *sp = (u64 *)((uintptr_t)user_stack_top - 2 * sizeof(u64));
	sp[0] = (u64)fn;
	sp[1] = (u64)arg;

	gp_handler_outside_user_call = trap_set_handler(VEC_GP, user_call_gp);
	u64 r = user_enter((void *)user_call_trampoline, sp);
	trap_set_handler(VEC_GP, gp_handler_outside_user_call);
	if (r != USER_CALL_DONE)
		panic("user_call: ring 3 came back with 0x%lx", r);
}
