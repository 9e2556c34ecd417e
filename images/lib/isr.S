/*
 * isr.S - interrupt entry stubs for all 256 vectors, and the common path.
 *
 * Each stub is 16 bytes long, so the stub for vector v is at
 * isr_stubs + 16 * v (trap.c points the IDT gates there). A stub makes
 * the stack look the same for every vector:
 *
 *     [rsp + 0]  vector
 *     [rsp + 8]  error code (pushed by the CPU for some exceptions, else 0)
 *     [rsp + 16] RIP, CS, RFLAGS, RSP, SS (pushed by the CPU)
 *
 * isr_common then pushes the general-purpose registers, giving the
 * struct trap_frame of trap.h, and calls trap_dispatch(frame).
 */
#include "asm.h"

	.text
	.code64
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	/* The CPU pushes an error code for #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX. */
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr
	/* Longest stub: pushq $0 (2) + pushq $imm32 (5) + jmp rel32 (5) = 12 bytes. */

FUNCTION(isr_common)
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	cld				/* the C ABI wants DF = 0; the interrupted code may have set it */
	mov %rsp, %rdi			/* struct trap_frame * (RSP is 16-byte aligned here) */
	call trap_dispatch
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp			/* vector and error code */
	iretq

	NO_EXEC_STACK
