/*
 * main.c - the first C code of a 64-bit kernel (called by entry.S).
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "trap.h"

NORETURN void lib_main(struct hvm_start_info *si);
NORETURN void lib_main(struct hvm_start_info *si)
{
	serial_init();
	trap_init();
	cpu_init();
	kmain(si);
	finish();
}
