/*
 * early32.S - the default (empty) early32_hook.
 *
 * entry.S calls early32_hook in 32-bit protected mode, after loading the
 * GDT, zeroing .bss and setting up the stack, before building page tables.
 * A kernel may define its own (strong) early32_hook to override this weak
 * one; it must return in 32-bit protected mode with the GDT, segments and
 * stack as it found them. It may clobber EAX, ECX, EDX (cdecl).
 */
#include "asm.h"

	.text
	.code32
	.weak early32_hook
	.type early32_hook, @function
early32_hook:
	ret
	.size early32_hook, . - early32_hook

	NO_EXEC_STACK
