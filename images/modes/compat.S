/*
 * compat.S - from 64-bit mode into compatibility mode and back.
 *
 * With EFER.LMA = 1 the CPU runs 64-bit code when CS.L = 1 and 32-bit
 * "compatibility mode" code when CS.L = 0 (CS.D = 1): a far return to
 * KERNEL_CS32 goes there, a far jump to KERNEL_CS64 comes back. Paging,
 * the GDT, IDT and TSS stay the 64-bit ones. Only the low 32 bits of the
 * general-purpose registers survive the trip (SDM vol. 1, 3.4.1.1), so
 * the stack pointer is kept in memory.
 */
#include "asm.h"
#include "modes.h"

	.text
	.code64

FUNCTION(compat_mode_trip)
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, saved_rsp(%rip)
	pushq $KERNEL_CS32
	pushq $compat_entry		/* the kernel lives below 2 GiB: a sign-extended imm32 */
	lretq

	.code32
compat_entry:
	mov $msg_compat, %esi
	call puts32

	/* CS is the 32-bit segment, yet EFER.LMA is still 1. */
	xor %ebx, %ebx
	mov %cs, %bx
	mov $MSR_EFER, %ecx
	rdmsr
	test $EFER_LMA, %eax
	setnz %al
	cmp $KERNEL_CS32, %ebx
	sete %bl
	and %bl, %al
	movzbl %al, %eax
	mov $msg_compat_cs, %esi
	call check32

	/* The same bytes as in modes.c: here 0x48 is DEC EAX, then FF C8 is DEC EAX. */
	xor %eax, %eax
	.byte 0x48, 0xff, 0xc8
	cmp $0xfffffffe, %eax
	sete %al
	movzbl %al, %eax
	mov $msg_compat_dec, %esi
	call check32

	/* 32-bit arithmetic wraps at 2^32. */
	mov $0xffffffff, %ebx
	add $1, %ebx
	setc %al
	test %ebx, %ebx
	setz %ah
	and %ah, %al
	movzbl %al, %eax
	mov $msg_compat_wrap, %esi
	call check32

	/* PUSH moves ESP by 4. */
	mov %esp, %ebx
	push %eax
	mov %esp, %ecx
	pop %eax
	sub %ecx, %ebx
	xor %eax, %eax
	cmp $4, %ebx
	sete %al
	mov $msg_compat_push, %esi
	call check32

	ljmp $KERNEL_CS64, $back64	/* far JMP with a 32-bit offset: not encodable in 64-bit mode */

	.code64
back64:
	mov saved_rsp(%rip), %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

	.section .rodata
msg_compat:	 .asciz "compatibility mode: 32-bit code under long mode, printing from assembly\n"
msg_compat_cs:	 .asciz "compatibility mode: CS=0x18 (L=0, D=1) while EFER.LMA=1"
msg_compat_dec:	 .asciz "compatibility mode: bytes 48 FF C8 are DEC EAX; DEC EAX (0 -> 0xfffffffe)"
msg_compat_wrap: .asciz "compatibility mode: 32-bit ADD 0xffffffff + 1 wraps to 0 with CF=1"
msg_compat_push: .asciz "compatibility mode: PUSH moves ESP by 4"

	.bss
	.balign 8
saved_rsp:	.skip 8

	NO_EXEC_STACK
