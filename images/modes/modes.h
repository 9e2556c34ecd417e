/* modes.h - constants shared by modes.c and the assembly files. */
#ifndef MODES_H
#define MODES_H

#define COM1 0x3f8
#define REAL_BASE 0x8000 /* the 16-bit trampoline is copied here (below 1 MiB) */
#define REAL_SEGMENT (REAL_BASE >> 4) /* real-mode CS for it: 0x0800 */
#define REAL_STACK 0x8000 /* real-mode SS:SP = 0000:8000, growing down */

#ifndef __ASSEMBLER__
#include "types.h"
/* Results of the checks done (and printed) by assembly code. */
extern u32 asm_checks, asm_failed;
/* compat.S: run the compatibility-mode part; returns its check results. */
void compat_mode_trip(void);
#endif

#endif
