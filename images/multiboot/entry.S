/*
 * entry.S - a Multiboot (v1) kernel's header and entry point.
 *
 * The boot loader (GRUB, QEMU -kernel, ringside) finds the header in the
 * first 8 KiB of the file, loads the ELF and jumps to its entry point in
 * 32-bit protected mode with paging off, interrupts off, and:
 *   EAX = 0x2badb002 (the loader's magic)
 *   EBX = physical address of the multiboot information structure
 * CS and DS are flat 4 GiB segments, but GDTR may point anywhere: load
 * our own GDT before touching a segment register. ESP is undefined.
 */
#define MB_HEADER_MAGIC 0x1badb002
#define MB_PAGE_ALIGN 0x00000001 /* load modules on page boundaries */
#define MB_MEMORY_INFO 0x00000002 /* please fill in mem_lower/mem_upper (and the memory map) */
#define MB_FLAGS (MB_PAGE_ALIGN | MB_MEMORY_INFO)

	.section .multiboot, "a"
	.balign 4
	.long MB_HEADER_MAGIC
	.long MB_FLAGS
	.long -(MB_HEADER_MAGIC + MB_FLAGS)	/* the three fields sum to 0 */

	.text
	.code32
	.globl _start
_start:
	/* Keep what the loader gave us before anything else changes it. */
	mov %eax, %ebp			/* magic */
	mov %ebx, %esi			/* multiboot information */
	mov $stack_top, %esp		/* SS is a flat data segment (the spec says so) */
	pushf
	pop %ebx			/* EFLAGS at entry */
	cli
	cld
	lgdt gdtr
	ljmp $0x08, $1f
1:	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %fs
	mov %eax, %gs
	mov %eax, %ss

	/* Zero .bss (the stack is in it, and holds nothing yet). */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx
	xor %eax, %eax
	rep stosl
	mov $stack_top, %esp

	call idt_init
	push %ebx			/* EFLAGS at entry */
	push %esi			/* struct multiboot_info * */
	push %ebp			/* magic */
	call mb_main			/* does not return */
2:	cli
	hlt
	jmp 2b

/*
 * Exception stubs: vector (and a 0 error code where the CPU pushes none),
 * then mb_exception(vector, error, eip), which panics. 16 bytes each.
 */
	.balign 16
	.globl exception_stubs
exception_stubs:
	.set vec, 0
	.rept 32
	.balign 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	push $0
	.endif
	push $vec
	jmp exception_common
	.set vec, vec + 1
	.endr

exception_common:
	/* [esp] vector, [esp+4] error code, [esp+8] EIP */
	cld
	call mb_exception		/* cdecl: the three values are its arguments */
4:	cli
	hlt
	jmp 4b

	.data
	.balign 8
gdt:
	.quad 0				/* null */
	.quad 0x00cf9b000000ffff	/* 0x08: 32-bit code, flat 4 GiB */
	.quad 0x00cf93000000ffff	/* 0x10: data, flat 4 GiB */
gdt_end:
gdtr:
	.word gdt_end - gdt - 1
	.long gdt

	.bss
	.balign 16
	.skip 16384
stack_top:

	.section .note.GNU-stack, "", @progbits
