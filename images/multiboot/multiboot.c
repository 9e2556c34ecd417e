/*
 * multiboot - a Multiboot v1 kernel, as a third-party kernel would be:
 * 32-bit protected mode only, no paging, COM1 and isa-debug-exit.
 *
 * Checks what a multiboot loader must provide and prints the command
 * line. Memory sizes are only compared against bounds, since loaders
 * and machine sizes differ.
 */
#include "kernel.h"

const char kernel_name[] = "multiboot";

#define MB_LOADER_MAGIC 0x2badb002

/* multiboot_info.flags: which fields are valid */
#define MBI_MEMORY (1u << 0) /* mem_lower, mem_upper */
#define MBI_CMDLINE (1u << 2) /* cmdline */
#define MBI_MODULES (1u << 3) /* mods_count, mods_addr */

struct multiboot_info {
	u32 flags;
	u32 mem_lower; /* KiB of memory from 0 (at most 640) */
	u32 mem_upper; /* KiB of memory from 1 MiB to the first hole */
	u32 boot_device;
	u32 cmdline; /* physical address of a C string */
	u32 mods_count;
	u32 mods_addr;
	/* ... symbols, memory map, drives, ... (not used here) */
};

/* entry.S */
extern const u8 exception_stubs[];
void idt_init(void);
void mb_exception(u32 vector, u32 error, u32 eip);
NORETURN void mb_main(u32 magic, const struct multiboot_info *mbi, u32 entry_eflags);

/* A 32-bit interrupt gate. */
struct idt_gate32 {
	u16 offset_lo;
	u16 selector;
	u8 zero;
	u8 type_attr; /* 0x8e: present, DPL 0, 32-bit interrupt gate */
	u16 offset_hi;
} PACKED;

static struct idt_gate32 idt[32] ALIGNED(8);

/* Catch exceptions: without an IDT a fault would reset the machine instead. */
void idt_init(void)
{
	for (unsigned v = 0; v < 32; v++) {
		u32 addr = (u32)(uintptr_t)(exception_stubs + 16 * v);
		idt[v].offset_lo = (u16)addr;
		idt[v].selector = 0x08;
		idt[v].zero = 0;
		idt[v].type_attr = 0x8e;
		idt[v].offset_hi = (u16)(addr >> 16);
	}
	struct {
		u16 limit;
		u32 base;
	} PACKED idtr = { sizeof(idt) - 1, (u32)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void mb_exception(u32 vector, u32 error, u32 eip)
{
	panic("unexpected exception %u, error code 0x%x, eip=0x%x", vector, error, eip);
}

/* The loader passes "<kernel file name> <arguments>": print the arguments. */
static void print_cmdline(const struct multiboot_info *mbi)
{
	const char *s = (mbi->flags & MBI_CMDLINE) ? (const char *)(uintptr_t)mbi->cmdline : NULL;
	if (s) {
		while (*s && *s != ' ')
			s++;
		while (*s == ' ')
			s++;
	}
	if (!s || !*s) {
		printf("cmdline: (none)\n");
		return;
	}
	serial_puts("cmdline: ");
	for (unsigned i = 0; i < 256 && s[i]; i++)
		serial_putc(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
	serial_putc('\n');
}

void mb_main(u32 magic, const struct multiboot_info *mbi, u32 entry_eflags)
{
	serial_init();
	printf("multiboot: a Multiboot v1 kernel in 32-bit protected mode\n");

	if (!check(magic == MB_LOADER_MAGIC, "EAX = 0x%x, the multiboot loader magic", magic))
		finish(); /* EBX means nothing then */

	check(!(entry_eflags & (RFLAGS_IF | 0x20000)), "entered with EFLAGS.IF=0 and EFLAGS.VM=0");
	unsigned long cr0 = read_cr0();
	check((cr0 & (CR0_PE | CR0_PG)) == CR0_PE, "CR0.PE=1, CR0.PG=0: protected mode without paging");

	bool mem = mbi->flags & MBI_MEMORY;
	check(mem && mbi->mem_lower >= 512 && mbi->mem_lower <= 640,
	      "mem_lower is between 512 and 640 KiB (flags bit 0 set)");
	check(mem && mbi->mem_upper >= 64 * 1024, "mem_upper is at least 64 MiB");

	print_cmdline(mbi);
	printf("modules: %u\n", (mbi->flags & MBI_MODULES) ? mbi->mods_count : 0);
	finish();
}
