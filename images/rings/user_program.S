/*
 * user_program.S - the code rings.c runs in ring 3.
 *
 * It reports what it sees through SYSCALL (numbers in rings.h) and tries
 * instructions ring 3 may not execute. Each of those has a FIXUP entry:
 * the kernel's #GP handler records the fault and resumes ring 3 at the
 * next step, which tells the kernel to look at the recorded fault.
 */
#include "asm.h"
#include "rings.h"

	.text
	.code64

FUNCTION(user_program)
	/* 1. The low two bits of CS are the current privilege level. */
	xor %edi, %edi
	mov %cs, %di
	mov $SYS_REPORT_CS, %eax
	syscall

	/* 2. SYSCALL with CF and DF set: R11 must carry them to the kernel. */
	pushq $USER_PROBE_RFLAGS	/* known flags: CF, DF, all others 0 (IF stays 0) */
	popfq
	mov $SYS_PROBE, %eax
	syscall
	.globl user_after_probe
user_after_probe:			/* SYSCALL saved this address in RCX */
	pushfq				/* SYSRET restored RFLAGS from R11 */
	pop %rdx
	cld
	mov %rax, %rdi
	xor %esi, %esi
	mov %cs, %si
	xor %r10d, %r10d
	mov %ss, %r10w
	mov $SYS_AFTER_SYSRET, %eax
	syscall

	/* 3. Privileged instructions: #GP(0) at CPL 3. */
1:	hlt
2:	mov $TEST_HLT, %edi
	mov $SYS_FAULT_DONE, %eax
	syscall
	FIXUP(1b, 2b)

1:	mov %cr3, %rax
2:	mov $TEST_MOV_CR3, %edi
	mov $SYS_FAULT_DONE, %eax
	syscall
	FIXUP(1b, 2b)

1:	cli				/* needs CPL <= IOPL, and IOPL is 0 */
2:	mov $TEST_CLI, %edi
	mov $SYS_FAULT_DONE, %eax
	syscall
	FIXUP(1b, 2b)

	/* 4. A software interrupt through a DPL-3 gate is allowed... */
	mov $INT80_IN, %eax
	int $0x80
	mov %rax, %rdi
	mov $SYS_REPORT_INT80, %eax
	syscall

	/* ... through a DPL-0 gate it is a #GP (error code: vector, IDT bit). */
1:	int $0x81
2:	mov $TEST_INT81, %edi
	mov $SYS_FAULT_DONE, %eax
	syscall
	FIXUP(1b, 2b)

	/* 5. Back to the kernel for good. */
	mov $USER_DONE, %edi
	mov $SYS_EXIT, %eax
	syscall
	ud2				/* not reached */

	NO_EXEC_STACK
