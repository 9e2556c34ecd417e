/*
 * entry.S - PVH entry point: 32-bit protected mode -> 64-bit long mode.
 *
 * A PVH loader (QEMU -kernel, ringside) finds the entry address in the
 * XEN_ELFNOTE_PHYS32_ENTRY note below and jumps there with:
 *   - 32-bit protected mode, paging off, interrupts off
 *   - CS, DS, ES, SS flat 4 GiB segments (of the *loader's* GDT)
 *   - EBX = physical address of struct hvm_start_info
 * Nothing else is promised: no stack, no usable GDT, no IDT.
 *
 * The steps to reach long mode (SDM vol. 3, 10.8.5 "Initializing IA-32e Mode"):
 *   1. load our own GDT and reload every segment register
 *   2. build page tables (long mode requires paging; we identity-map 4 GiB)
 *   3. CR4.PAE = 1, CR3 = PML4, EFER.LME = 1
 *   4. CR0.PG = 1: the CPU is now in compatibility mode (EFER.LMA = 1)
 *   5. far jump to a code segment with L = 1: 64-bit mode
 */
#include "asm.h"

/* ---- The PVH ELF note (Xen's XEN_ELFNOTE_PHYS32_ENTRY = 18) ---- */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz: "Xen\0" */
	.long 8			/* descsz: the entry address, 8 bytes in a 64-bit ELF (as Linux) */
	.long 18		/* type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.quad pvh_start32
	.balign 4

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
	.type pvh_start32, @function
pvh_start32:
	cli
	cld
	mov %ebx, %ebp			/* keep the start_info pointer while we work */

	/* 1. Our own GDT. The loader's may be gone or laid out differently. */
	lgdt boot_gdtr
	ljmp $KERNEL_CS32, $1f		/* reload CS */
1:	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs

	/* Zero .bss (the loader should have, but the PVH ABI does not say so). */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx
	xor %eax, %eax
	rep stosl

	mov $boot_stack_top, %esp
	mov %ebp, boot_start_info

	/* Hook for kernels that want to play in 32-bit mode first (modes.S). */
	call early32_hook

	/*
	 * 2. Page tables: PML4[0] -> PDPT, PDPT[0..3] -> 4 page directories,
	 * each PD maps 1 GiB with 2 MiB pages. All entries are user-accessible
	 * (PTE_U) so that ring-3 test code can run from the kernel image.
	 * The upper halves of the entries are already zero (.bss).
	 */
	mov $(boot_pdpt + PTE_P + PTE_W + PTE_U), %eax
	mov %eax, boot_pml4

	mov $boot_pdpt, %edi
	mov $(boot_pd + PTE_P + PTE_W + PTE_U), %eax
	mov $4, %ecx
2:	mov %eax, (%edi)
	add $4096, %eax
	add $8, %edi
	dec %ecx
	jnz 2b

	mov $boot_pd, %edi
	mov $(PTE_P + PTE_W + PTE_U + PTE_PS), %eax
	mov $2048, %ecx
3:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	dec %ecx
	jnz 3b

	/* The top GiB (0xc0000000..) is the MMIO hole (local APIC...): uncached. */
	mov $(boot_pd + 3 * 4096), %edi
	mov $512, %ecx
4:	orl $(PTE_PCD + PTE_PWT), (%edi)
	add $8, %edi
	dec %ecx
	jnz 4b

	/* 3. PAE paging, our PML4, long mode enable. Explicit values, not read-modify-write. */
	mov $CR4_PAE, %eax
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	mov $EFER_LME, %eax
	xor %edx, %edx
	wrmsr

	/* 4. Paging on: with EFER.LME = 1 this activates long mode (EFER.LMA = 1). */
	mov $(CR0_PG + CR0_ET + CR0_PE), %eax
	mov %eax, %cr0

	/* 5. Still running 32-bit code (compatibility mode) until CS has L = 1. */
	ljmp $KERNEL_CS64, $start64

	.code64
start64:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov $boot_stack_top, %rsp
	mov boot_start_info(%rip), %edi	/* zero-extends into RDI */
	call lib_main			/* never returns */
5:	cli
	hlt
	jmp 5b
	.size pvh_start32, . - pvh_start32

/* ---- The GDT (layout in x86.h). Accessed bits preset: the CPU need not write them. ---- */
	.section .data
	.balign 16
	.globl boot_gdt, boot_gdt_end
boot_gdt:
	.quad 0				/* 0x00 null */
	.quad 0x00af9b000000ffff	/* 0x08 KERNEL_CS64: P, DPL 0, code r/x, G, L */
	.quad 0x00cf93000000ffff	/* 0x10 KERNEL_DS: P, DPL 0, data r/w, G, B, 4 GiB */
	.quad 0x00cf9b000000ffff	/* 0x18 KERNEL_CS32: P, DPL 0, code r/x, G, D */
	.quad 0x00cffb000000ffff	/* 0x20 USER_CS32: as above, DPL 3 */
	.quad 0x00cff3000000ffff	/* 0x28 USER_DS: data, DPL 3 */
	.quad 0x00affb000000ffff	/* 0x30 USER_CS64: 64-bit code, DPL 3 */
	.quad 0, 0			/* 0x38 TSS: 16-byte system descriptor, filled by cpu.c */
	.quad 0x00009b000000ffff	/* 0x48 KERNEL_CS16: base 0, limit 0xffff, byte granular */
	.quad 0x000093000000ffff	/* 0x50 KERNEL_DS16: base 0, limit 0xffff */
boot_gdt_end:
	.if (boot_gdt_end - boot_gdt) != GDT_SIZE
	.error "GDT_SIZE in x86.h does not match the GDT"
	.endif

	.balign 8
	.globl boot_gdtr
boot_gdtr:				/* LGDT operand: 2-byte limit, then the base */
	.word GDT_SIZE - 1
	.quad boot_gdt			/* 32-bit LGDT reads 4 bytes of it, 64-bit LGDT 8 */

/* ---- Page tables and the boot stack ---- */
	.section .bss
	.balign 4096
	.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4 * 4096

	.balign 16
	.globl boot_stack_top
boot_stack:	.skip 16384
boot_stack_top:

	/* Ring 0 stack on entry from ring 3 (TSS.RSP0, SYSCALL), see cpu.c and user_entry.S. */
	.globl kernel_trap_stack_top
	.skip 16384
kernel_trap_stack_top:

	/* Interrupt stack table entry 1: #DF and NMI. */
	.globl ist1_stack_top
	.skip 8192
ist1_stack_top:

	/* A stack for ring-3 code (user.h). */
	.globl user_stack_top
	.skip 16384
user_stack_top:

	.balign 8
	.globl boot_start_info
boot_start_info: .skip 8

	NO_EXEC_STACK
