/*
 * modes - a tour of the x86 operating modes, in the order the CPU can
 * visit them:
 *
 *   32-bit protected mode (PVH entry)        realmode.S, early32_hook
 *   -> real mode (16-bit, segment * 16)      realmode.S trampoline at 0x8000
 *   -> 32-bit protected mode again           realmode.S
 *   -> long mode, 64-bit                     lib/entry.S, then this file
 *   -> compatibility mode (32-bit code)      compat.S
 *   -> 64-bit mode again                     this file
 *
 * Real and protected mode print from assembly; each step checks
 * something only that mode does.
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "modes.h"

const char kernel_name[] = "modes";

/* Execute the bytes 48 FF C8 in 64-bit mode, starting from 0. */
static u64 rex_w_dec(void)
{
	u64 v;
	__asm__ volatile("xor %%eax, %%eax\n\t"
			 ".byte 0x48, 0xff, 0xc8" /* REX.W DEC: DEC RAX */
			 : "=a"(v));
	return v;
}

/* Count the results of the checks the assembly code printed. */
static void record_asm_checks(void)
{
	for (u32 i = 0; i < asm_checks; i++)
		check_record(i >= asm_failed);
	asm_checks = asm_failed = 0;
}

void kmain(struct hvm_start_info *si)
{
	(void)si;
	record_asm_checks(); /* protected and real mode, before we got here */

	u64 efer = rdmsr(MSR_EFER);
	unsigned long cr0 = read_cr0(), cr4 = read_cr4();
	check((efer & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA) && (cr0 & CR0_PG) && (cr4 & CR4_PAE),
	      "long mode: EFER.LME=1, EFER.LMA=1, CR0.PG=1, CR4.PAE=1");
	u16 cs = read_cs();
	check(cs == KERNEL_CS64, "64-bit mode: C code running with CS=0x%x (L=1)", cs);
	u64 v = rex_w_dec();
	check(v == 0xffffffffffffffffull, "64-bit mode: bytes 48 FF C8 are REX.W DEC: DEC RAX (0 -> 0x%lx)", v);

	compat_mode_trip();
	record_asm_checks();

	cs = read_cs();
	check(cs == KERNEL_CS64, "64-bit mode again after a far JMP to CS=0x%x", cs);
}
