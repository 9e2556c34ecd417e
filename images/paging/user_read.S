/*
 * user_read.S - ring-3 code for paging.c: read the quadword at
 * user_read_address. That read should raise #PF, and paging.c's handler
 * ends the program. If the read works, HLT raises #GP instead, which
 * ends it too: the kernel tells the two apart by the vector.
 */
#include "asm.h"

	.text
	.code64
FUNCTION(user_read)
	mov user_read_address(%rip), %rax
	mov (%rax), %rax
	hlt
	ud2

	.data
	.balign 8
	.globl user_read_address
user_read_address:
	.quad 0

	NO_EXEC_STACK
