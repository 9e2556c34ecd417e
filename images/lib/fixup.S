/*
 * fixup.S - memory accesses that may fault on purpose.
 *
 * bool try_read64(const volatile void *p, u64 *out)
 * bool try_write64(volatile void *p, u64 value)
 *
 * Return true if the access worked. If it raised an exception, the
 * FIXUP entry makes the trap handler record the fault in last_fault and
 * resume at the "return false" label.
 */
#include "asm.h"

	.text
	.code64

FUNCTION(try_read64)
1:	mov (%rdi), %rax
	mov %rax, (%rsi)
	mov $1, %eax
	ret
2:	xor %eax, %eax
	ret
	FIXUP(1b, 2b)

FUNCTION(try_write64)
1:	mov %rsi, (%rdi)
	mov $1, %eax
	ret
2:	xor %eax, %eax
	ret
	FIXUP(1b, 2b)

	NO_EXEC_STACK
