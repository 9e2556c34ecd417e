/*
 * hello - the smallest PVH kernel: print a greeting and the command line.
 *
 * Shows: the PVH entry (lib/entry.S), reading struct hvm_start_info,
 * the serial console and the isa-debug-exit convention.
 */
#include "hvm_start_info.h"
#include "kernel.h"

const char kernel_name[] = "hello";

/* The boot page tables identity-map the low 4 GiB. */
#define MAPPED_LIMIT 0x100000000ull
#define CMDLINE_MAX 256

static void print_cmdline(const struct hvm_start_info *si)
{
	serial_puts("cmdline: ");
	/* No command line is either a 0 address or an empty string (QEMU passes ""). */
	if (si->cmdline_paddr == 0 || si->cmdline_paddr >= MAPPED_LIMIT - CMDLINE_MAX ||
	    *(const char *)si->cmdline_paddr == '\0') {
		serial_puts("(none)\n");
		return;
	}
	const char *s = (const char *)si->cmdline_paddr;
	for (unsigned i = 0; i < CMDLINE_MAX && s[i]; i++)
		serial_putc(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
	serial_putc('\n');
}

void kmain(struct hvm_start_info *si)
{
	printf("Hello from ringside guest!\n");
	if (check(si->magic == HVM_START_MAGIC, "hvm_start_info magic is 0x%x", HVM_START_MAGIC))
		print_cmdline(si);
}
