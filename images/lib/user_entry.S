/*
 * user_entry.S - getting into ring 3 and back.
 *
 * u64 user_enter(void *rip, void *rsp)
 *	Save the kernel's callee-saved registers and stack pointer, then
 *	IRETQ to ring 3 at rip with stack rsp (CS = USER_CS64|3,
 *	SS = USER_DS|3, RFLAGS = 0x2: interrupts off). Returns the value
 *	later given to user_return().
 *
 * void user_return(u64 value)
 *	Called by kernel code running on behalf of ring 3 (a syscall or
 *	trap handler, on the TSS.RSP0 stack): abandon that stack and return
 *	from user_enter() with value.
 *
 * user_call_trampoline, user_call_exit
 *	The ring-3 side of user_call() (user.c): pop fn and arg from the
 *	user stack, call fn(arg), then execute HLT at user_call_exit. At CPL 3
 *	HLT raises #GP(0), which is how user_call() learns that fn returned.
 *
 * syscall_entry
 *	The LSTAR target. SYSCALL saved RIP in RCX and RFLAGS in R11 and
 *	switched CS/SS, but not RSP: we are still on the user stack. Switch
 *	to the kernel stack, build a struct syscall_frame (user.h), call
 *	syscall_handler(frame) and SYSRET with its return value in RAX.
 *	All registers except RAX, RCX and R11 are preserved for the caller.
 *	FMASK (user.c) cleared IF, so nothing interrupts the stack switch,
 *	and DF, as the C code expects.
 */
#include "asm.h"

	.text
	.code64

FUNCTION(user_enter)
	push %rbp
	push %rbx
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, user_saved_ksp(%rip)

	pushq $(USER_DS | 3)		/* SS */
	push %rsi			/* RSP */
	pushq $RFLAGS_FIXED		/* RFLAGS: IF = 0, IOPL = 0 */
	pushq $(USER_CS64 | 3)		/* CS: RPL 3 makes IRETQ return to ring 3 */
	push %rdi			/* RIP */

	/* Do not leak kernel values into ring 3 (and keep runs deterministic). */
	xor %eax, %eax
	xor %ebx, %ebx
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %ebp, %ebp
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	iretq

FUNCTION(user_return)
	mov %rdi, %rax
	mov user_saved_ksp(%rip), %rsp
	/* IRETQ to ring 3 loaded null into DS/ES (their DPL 0 < CPL 3); restore them. */
	mov $KERNEL_DS, %ecx
	mov %ecx, %ds
	mov %ecx, %es
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret

FUNCTION(user_call_trampoline)
	pop %rax			/* fn */
	pop %rdi			/* arg: the first argument of the C ABI */
	call *%rax			/* RSP was 16-byte aligned before the CALL, as the ABI wants */
	/*
	 * HLT would stop the CPU for good at CPL 0 (interrupts are off), so
	 * make sure this really is ring 3 first: if IRETQ left us in ring 0,
	 * UD2 turns the bug into a clean panic instead of a hang.
	 */
	mov %cs, %eax
	test $3, %al
	jz 1f
	.globl user_call_exit
user_call_exit:
	hlt				/* #GP(0) at CPL 3: back to the kernel (user.c) */
1:	ud2				/* not reached */

FUNCTION(syscall_entry)
	mov %rsp, syscall_user_rsp(%rip)
	mov syscall_kernel_rsp(%rip), %rsp
	/* struct syscall_frame, last member first */
	pushq $0			/* padding: 12 pushes keep RSP 16-byte aligned */
	pushfq				/* entry_rflags: what FMASK left (MOV does not touch flags) */
	pushq syscall_user_rsp(%rip)	/* user_rsp */
	push %r11			/* user_rflags */
	push %rcx			/* user_rip */
	push %r9
	push %r8
	push %r10
	push %rdx
	push %rsi
	push %rdi
	push %rax			/* nr */
	mov %rsp, %rdi
	call *syscall_handler(%rip)
	add $8, %rsp			/* nr: RAX now holds the result */
	pop %rdi
	pop %rsi
	pop %rdx
	pop %r10
	pop %r8
	pop %r9
	pop %rcx			/* SYSRET jumps to RCX ... */
	pop %r11			/* ... with RFLAGS = R11 */
	pop %rsp			/* the user stack (the rest of the frame is abandoned) */
	sysretq

	.bss
	.balign 8
user_saved_ksp:		.skip 8
syscall_user_rsp:	.skip 8
	.globl syscall_kernel_rsp, syscall_handler
syscall_kernel_rsp:	.skip 8
syscall_handler:	.skip 8

	NO_EXEC_STACK
