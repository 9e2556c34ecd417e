/*
 * user.c - SYSCALL/SYSRET setup (SDM vol. 3, 5.8.8).
 */
#include "kernel.h"
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
