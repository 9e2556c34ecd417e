/*
 * main.c - the first C code of a 64-bit kernel (called by entry.S).
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "trap.h"

#if PV
#include "pvops.h"
#endif

NORETURN void lib_main(struct hvm_start_info *si);
NORETURN void lib_main(struct hvm_start_info *si)
{
	serial_init();
	trap_init();
	cpu_init();
#if PV
	pv_init(); /* the paravirtual build: find the monitor first (pvops.h) */
#endif
	kmain(si);
	finish();
}
