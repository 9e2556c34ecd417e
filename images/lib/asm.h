/* asm.h - helpers for the .S files. */
#ifndef RINGSIDE_ASM_H
#define RINGSIDE_ASM_H

#include "x86.h"

/*
 * FIXUP(insn, fixup): if the instruction at label `insn` faults with an
 * exception (vector < 32), the trap handler records the fault in
 * `last_fault` and resumes at label `fixup` instead of panicking.
 * The table is collected by the linker script (__fixup_start/__fixup_end).
 * This is the same idea as Linux's exception tables.
 */
#define FIXUP(insn, fixup)               \
	.pushsection .fixup_table, "a"; \
	.balign 8;                      \
	.quad insn, fixup;              \
	.popsection

/* Functions: global, 16-byte aligned. */
#define FUNCTION(name) \
	.globl name;   \
	.type name, @function; \
	.balign 16;    \
	name:

/* Every object says it does not need an executable stack (ld warns otherwise). */
#define NO_EXEC_STACK .section .note.GNU-stack, "", @progbits

#endif
