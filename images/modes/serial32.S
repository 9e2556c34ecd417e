/*
 * serial32.S - serial output and checks for 32-bit code.
 *
 * The same machine code runs in 32-bit protected mode (from early32_hook)
 * and in compatibility mode (compat.S): both execute with a 32-bit code
 * segment (D = 1), so 32-bit operands, addresses and stack slots.
 */
#include "asm.h"
#include "modes.h"

	.text
	.code32

/* uart_init32: 115200 8N1, no interrupts, FIFOs on (as lib/serial.c). */
	.globl uart_init32
uart_init32:
	mov $(COM1 + 1), %dx
	mov $0x00, %al		/* IER: no interrupts */
	out %al, %dx
	mov $(COM1 + 3), %dx
	mov $0x80, %al		/* LCR: DLAB */
	out %al, %dx
	mov $(COM1 + 0), %dx
	mov $0x01, %al		/* DLL: divisor 1 */
	out %al, %dx
	mov $(COM1 + 1), %dx
	mov $0x00, %al		/* DLM */
	out %al, %dx
	mov $(COM1 + 3), %dx
	mov $0x03, %al		/* LCR: 8N1 */
	out %al, %dx
	mov $(COM1 + 2), %dx
	mov $0xc7, %al		/* FCR: enable and clear FIFOs */
	out %al, %dx
	mov $(COM1 + 4), %dx
	mov $0x03, %al		/* MCR: DTR, RTS */
	out %al, %dx
	ret

/* putc32: send AL, waiting for LSR.THRE. Clobbers EDX. */
	.globl putc32
putc32:
	push %eax
	mov $(COM1 + 5), %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	pop %eax
	mov $COM1, %dx
	out %al, %dx
	ret

/* puts32: send the NUL-terminated string at ESI ('\n' as CR LF). Clobbers EAX, EDX, ESI. */
	.globl puts32
puts32:
1:	lodsb
	test %al, %al
	jz 3f
	cmp $'\n', %al
	jne 2f
	mov $'\r', %al
	call putc32
	mov $'\n', %al
2:	call putc32
	jmp 1b
3:	ret

/* check32: print "ok   " (EAX != 0) or "FAIL " (EAX == 0), the string at ESI, a newline; count it. */
	.globl check32
check32:
	push %esi
	incl asm_checks
	test %eax, %eax
	jnz 1f
	incl asm_failed
	mov $str_fail, %esi
	jmp 2f
1:	mov $str_ok, %esi
2:	call puts32
	pop %esi
	call puts32
	mov $str_nl, %esi
	call puts32
	ret

	.section .rodata
str_ok:		.asciz "ok   "
str_fail:	.asciz "FAIL "
str_nl:		.asciz "\n"

	.bss
	.balign 4
	.globl asm_checks, asm_failed
asm_checks:	.skip 4
asm_failed:	.skip 4

	NO_EXEC_STACK
