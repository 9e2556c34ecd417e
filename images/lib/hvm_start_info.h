/*
 * hvm_start_info.h - the PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h).
 *
 * A PVH loader enters the kernel at the address given by the
 * XEN_ELFNOTE_PHYS32_ENTRY ELF note, in 32-bit protected mode with paging
 * off, and passes the physical address of this structure in EBX.
 */
#ifndef RINGSIDE_HVM_START_INFO_H
#define RINGSIDE_HVM_START_INFO_H

#include "types.h"

#define HVM_START_MAGIC 0x336ec578 /* "xEn3" with the 0x80 bit of the "E" set */

struct hvm_start_info {
	u32 magic; /* HVM_START_MAGIC */
	u32 version; /* 0, or 1 when the memory map fields are valid */
	u32 flags;
	u32 nr_modules; /* entries in the module list */
	u64 modlist_paddr; /* physical address of struct hvm_modlist_entry[] */
	u64 cmdline_paddr; /* physical address of the NUL-terminated command line, or 0 */
	u64 rsdp_paddr; /* ACPI RSDP, or 0 */
	u64 memmap_paddr; /* version >= 1: struct hvm_memmap_table_entry[] */
	u32 memmap_entries;
	u32 reserved;
};

struct hvm_memmap_table_entry {
	u64 addr;
	u64 size;
	u32 type; /* E820 type: 1 = RAM */
	u32 reserved;
};

#endif
