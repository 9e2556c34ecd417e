/*
 * realmode.S - from the PVH entry (32-bit protected mode) down to real
 * mode and back up again. lib/entry.S calls early32_hook before it
 * builds page tables; after we return it enters long mode.
 *
 * Going down (SDM vol. 3, 10.9.2 "Switching Back to Real-Address Mode"):
 *   1. copy the 16-bit code below 1 MiB (real mode can only address 1 MiB)
 *   2. far jump to a 16-bit code segment (limit 64 KiB): 16-bit protected mode
 *   3. load every data segment register with a 16-bit, 64 KiB data segment,
 *      so the hidden segment limits/attributes are what real mode expects
 *   4. clear CR0.PE, then far jump to set CS to a real-mode segment value
 *   5. load real-mode segment values and SS:SP; LIDT the real-mode IVT
 * Going up:
 *   6. LGDT (32-bit operand size: a 16-bit LGDT only loads 24 bits of base)
 *   7. set CR0.PE, far jump (32-bit offset) to a 32-bit code segment
 *   8. reload the data segment registers and the 32-bit stack
 */
#include "asm.h"
#include "modes.h"

	.text
	.code32

	.globl early32_hook
	.type early32_hook, @function
early32_hook:
	push %ebx
	push %esi
	push %edi
	push %ebp

	call uart_init32
	mov $msg_banner, %esi
	call puts32

	/* Where the PVH loader left us: protected mode, no paging, in our 32-bit CS. */
	mov %cr0, %ebx
	xor %eax, %eax
	mov %ebx, %ecx
	and $(CR0_PE | CR0_PG), %ecx
	cmp $CR0_PE, %ecx
	sete %al
	xor %ecx, %ecx
	mov %cs, %cx
	cmp $KERNEL_CS32, %ecx
	sete %cl
	and %ecx, %eax
	mov $msg_pm_entry, %esi
	call check32

	/* 1. Copy the trampoline to REAL_BASE. */
	mov $tramp_start, %esi
	mov $REAL_BASE, %edi
	mov $(tramp_end - tramp_start), %ecx
	cld
	rep movsb

	/* 2. Into 16-bit protected mode, running the copy. */
	mov %esp, saved_esp
	ljmp $KERNEL_CS16, $(REAL_BASE + pm16 - tramp_start)

/* 7. (continued) Back from real mode: CS = KERNEL_CS32 again. */
pm32_back:
	/* 8. */
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %fs
	mov %eax, %gs
	mov %eax, %ss
	mov saved_esp, %esp

	/* Add the real-mode code's check counts to ours. */
	movzwl (REAL_BASE + checks16 - tramp_start), %eax
	add %eax, asm_checks
	movzwl (REAL_BASE + failed16 - tramp_start), %eax
	add %eax, asm_failed

	mov %cr0, %eax
	test $CR0_PE, %eax
	setnz %al
	xor %ecx, %ecx
	mov %cs, %cx
	cmp $KERNEL_CS32, %ecx
	sete %cl
	and %cl, %al
	movzbl %al, %eax
	mov $msg_pm_back, %esi
	call check32

	pop %ebp
	pop %edi
	pop %esi
	pop %ebx
	ret
	.size early32_hook, . - early32_hook

/*
 * The trampoline: position independent 16-bit code, run at REAL_BASE.
 * Addresses inside it are offsets from tramp_start (DS = CS = 0x0800 in
 * real mode).
 */
	.code16
tramp_start:

pm16:	/* 3. 16-bit protected mode, CS base 0: running at REAL_BASE + offset. */
	mov $KERNEL_DS16, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs
	mov %ax, %ss

	/* 4. Protection off. Still fetching with the old CS until the far jump. */
	mov %cr0, %eax
	and $~CR0_PE, %eax
	mov %eax, %cr0
	ljmp $REAL_SEGMENT, $(real16 - tramp_start)

real16:	/* 5. Real mode: linear address = segment * 16 + offset. */
	mov %cs, %ax
	mov %ax, %ds
	mov %ax, %es
	xor %ax, %ax
	mov %ax, %ss
	mov $REAL_STACK, %sp
	lidt (real_idtr - tramp_start)

	mov $(msg_real_hello - tramp_start), %si
	call puts16

	/* CR0.PE really is 0, and CS holds a plain segment number. */
	mov %cr0, %eax
	test $CR0_PE, %al
	setz %al
	mov %cs, %bx
	cmp $REAL_SEGMENT, %bx
	sete %ah
	and %ah, %al
	mov $(msg_real_pe - tramp_start), %si
	call check16

	/* Two segment:offset pairs, one linear address: 0900:0010 = 0901:0000 = 0x9010. */
	mov $0x0900, %ax
	mov %ax, %es
	mov $0x0901, %ax
	mov %ax, %fs
	movb $0x5a, %es:0x0010
	movb $0xa5, %fs:0x0000
	cmpb $0xa5, %es:0x0010
	sete %al
	mov $(msg_real_seg - tramp_start), %si
	call check16

	/* 16-bit arithmetic: 0xffff + 1 wraps to 0 and sets CF. */
	mov $0xffff, %bx
	add $1, %bx
	setc %al
	test %bx, %bx
	setz %ah
	and %ah, %al
	mov $(msg_real_wrap - tramp_start), %si
	call check16

	/* 6. and 7.: back to protected mode. */
	cli
	lgdtl (gdtr16 - tramp_start)
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $KERNEL_CS32, $pm32_back

/* putc16: send AL. */
putc16:
	push %ax
	push %dx
	mov %al, %ah
	mov $(COM1 + 5), %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	mov %ah, %al
	mov $COM1, %dx
	out %al, %dx
	pop %dx
	pop %ax
	ret

/* puts16: send the string at DS:SI ('\n' as CR LF). */
puts16:
	push %ax
	push %si
1:	lodsb
	test %al, %al
	jz 3f
	cmp $'\n', %al
	jne 2f
	mov $'\r', %al
	call putc16
	mov $'\n', %al
2:	call putc16
	jmp 1b
3:	pop %si
	pop %ax
	ret

/* check16: "ok   " if AL != 0 else "FAIL ", then the string at DS:SI; count it. */
check16:
	push %si
	incw (checks16 - tramp_start)
	test %al, %al
	jnz 1f
	incw (failed16 - tramp_start)
	mov $(str_fail16 - tramp_start), %si
	jmp 2f
1:	mov $(str_ok16 - tramp_start), %si
2:	call puts16
	pop %si
	call puts16
	mov $(str_nl16 - tramp_start), %si
	call puts16
	ret

	.balign 4
real_idtr:			/* the real-mode interrupt vector table: 256 x 4 bytes at 0 */
	.word 0x3ff
	.long 0
	.balign 4
gdtr16:				/* our GDT, for LGDTL in real mode */
	.word GDT_SIZE - 1
	.long boot_gdt
checks16:	.word 0
failed16:	.word 0
str_ok16:	.asciz "ok   "
str_fail16:	.asciz "FAIL "
str_nl16:	.asciz "\n"
msg_real_hello:	.asciz "real mode: hello from 16-bit code copied to 0x8000, printing with IN/OUT\n"
msg_real_pe:	.asciz "real mode: CR0.PE=0, CS=0x0800"
msg_real_seg:	.asciz "real mode: 0900:0010 and 0901:0000 are the same byte (linear 0x9010)"
msg_real_wrap:	.asciz "real mode: 16-bit ADD 0xffff + 1 wraps to 0 with CF=1"
tramp_end:

	.section .rodata
msg_banner:	.asciz "modes: real, protected, long and compatibility mode round trip\n"
msg_pm_entry:	.asciz "PVH entry: 32-bit protected mode, CR0.PE=1, CR0.PG=0, CS=0x18"
msg_pm_back:	.asciz "protected mode again: CR0.PE=1, CS=0x18"

	.bss
	.balign 4
saved_esp:	.skip 4

	NO_EXEC_STACK
