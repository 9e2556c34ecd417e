/*
 * escape - can the guest reach memory that is not its own?
 *
 * A guest controls its page tables, so it can write any frame number into
 * a PTE. Whatever translates guest-physical addresses to machine memory
 * (the emulator's bounds-checked RAM, EPT, a shadow or paravirtual
 * monitor's p2m table) must make a frame past the end of guest RAM lead
 * nowhere: on a PC there is no memory there, so a read returns all-ones
 * (no device answers) and a write is dropped. It must never reach host
 * memory beyond the guest's RAM, and never wrap around into the guest's
 * own RAM either.
 *
 * The kernel learns where its RAM ends from the PVH memory map (the
 * highest end of an E820 RAM range, and of reserved ranges adjoining it),
 * then maps, in PML4 slot 1 (0x8000000000), 4 KiB pages whose PTEs point
 * at frames past that end: the first one, 16 MiB and 64 MiB further, and
 * 0xbff00000 (the last MiB below the 32-bit MMIO hole) when that is not
 * RAM. No probe ever points into 0xc0000000-0xffffffff, where the devices
 * live. Each probe
 * reads 8 bytes (all-ones expected), writes a pattern, and reads again
 * (still all-ones: the write went nowhere).
 *
 * The last page of RAM is mapped just below the first probe page, so an
 * 8-byte access can also straddle the end of RAM: half of it hits RAM and
 * half of it hits nothing. At the end, the words the kernel wrote into
 * its last RAM page must still be there.
 *
 * QEMU 7.2 differs from hardware here: it drops the writes but reads 0,
 * not all-ones, from addresses nothing decodes. The kernel checks the
 * hardware's value, so it fails under QEMU (and is not in `make check`).
 *
 * The output names the probes by their distance from the end of RAM,
 * never by address, so it is the same for any RAM size up to 3 GiB - 1 MiB.
 * (A probe that would land in the MMIO hole moves up past it. With more
 * RAM, 0xbff00000 is RAM and is skipped with a "skip" line, and so is the
 * straddling access when RAM ends exactly at the hole.)
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "trap.h"

const char kernel_name[] = "escape";

#define PAGE 4096ull
#define MIB (1024ull * 1024)
#define WINDOW_VA 0x8000000000ull /* PML4 index 1, everything else 0 */
#define TABLE_FLAGS (PTE_P | PTE_W)
/* Not RAM: uncached, like the MMIO hole in lib/entry.S. */
#define PROBE_FLAGS (PTE_P | PTE_W | PTE_PCD | PTE_PWT)
#define RAM_FLAGS (PTE_P | PTE_W)
#define ALL_ONES 0xffffffffffffffffull
#define MMIO_HOLE_START 0xc0000000ull
#define MMIO_HOLE_END 0x100000000ull
#define BELOW_HOLE 0xbff00000ull
#define MEMMAP_MAX 128 /* entries we are willing to read */
#define E820_RAM 1

/* The canaries written into the last RAM page (first and last word). */
#define CANARY_FIRST 0x1122334455667788ull
#define CANARY_LAST 0x8877665544332211ull
/* What the straddling write stores at the last 4 bytes of RAM and beyond. */
#define STRADDLE_PATTERN 0xa5a5a5a5c3c3c3c3ull

/*
 * Window pages: 0 maps the last RAM page, 1.. the probes (page 1 is the
 * frame at the end of RAM, so pages 0 and 1 are physically contiguous
 * across the end of RAM).
 */
#define WIN_LAST_RAM 0
#define WIN_PROBE0 1

extern u64 boot_pml4[]; /* lib/entry.S: the live PML4 */

static u64 pdpt[512] ALIGNED(4096);
static u64 pd[512] ALIGNED(4096);
static u64 pt[512] ALIGNED(4096);

/* The kernel is identity mapped: a pointer is its own (guest-)physical address. */
static u64 phys(const volatile void *p)
{
	return (u64)p;
}

static volatile u64 *window(unsigned page)
{
	return (volatile u64 *)(WINDOW_VA + page * PAGE);
}

static void map(unsigned page, u64 gpa, u64 flags)
{
	pt[page] = gpa | flags;
	invlpg(window(page));
}

/* The end of guest RAM, page aligned (0 if there is no memory map). */
static u64 ram_end(const struct hvm_start_info *si)
{
	if (si->version < 1 || si->memmap_paddr == 0 || si->memmap_entries == 0 ||
	    si->memmap_entries > MEMMAP_MAX ||
	    si->memmap_paddr >= MMIO_HOLE_START - MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry))
		return 0;
	const struct hvm_memmap_table_entry *e = (const void *)si->memmap_paddr;
	u64 end = 0;
	for (u32 i = 0; i < si->memmap_entries; i++)
		if (e[i].type == E820_RAM && e[i].addr + e[i].size > end)
			end = e[i].addr + e[i].size;
	/*
	 * Firmware may carve its tables out of the top of RAM and mark them
	 * reserved (QEMU's map ends RAM 128 KiB early and reserves the rest
	 * for ACPI). Those pages are still RAM behind the map, so step over
	 * any range that starts at or before the end and reaches past it.
	 */
	for (bool grew = true; grew;) {
		grew = false;
		for (u32 i = 0; i < si->memmap_entries; i++)
			if (e[i].addr <= end && e[i].addr + e[i].size > end) {
				end = e[i].addr + e[i].size;
				grew = true;
			}
	}
	return (end + PAGE - 1) & ~(PAGE - 1); /* past a partial last page too */
}

/*
 * The frame `offset` bytes past the end of RAM, counting only the address
 * space outside the MMIO hole: a probe that would land in the hole moves
 * up by the size of the hole (so with RAM ending at 3 GiB, "RAM end" is
 * 4 GiB).
 */
static u64 past_ram(u64 end, u64 offset)
{
	u64 gpa = end + offset;
	if (end < MMIO_HOLE_END && gpa + PAGE > MMIO_HOLE_START)
		gpa += MMIO_HOLE_END - MMIO_HOLE_START;
	return gpa;
}

/* CPUID.80000008H:EAX[7:0]: a PTE may hold frame addresses below 2^MAXPHYADDR. */
static u64 phys_limit(void)
{
	u32 a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000000u), "c"(0));
	if (a < 0x80000008u)
		return 1ull << 36; /* the architectural default */
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000008u), "c"(0));
	return 1ull << (a & 0xff);
}

static const char *fault_name(void)
{
	return exception_mnemonic((unsigned)last_fault.vector);
}

/* Read, write a pattern, read again: the frame behind window page `page` must be empty. */
static void probe(unsigned page, const char *what, u64 pattern)
{
	volatile u64 *p = window(page);
	u64 before = 0, after = 0;

	fault_reset();
	if (!try_read64(p, &before)) {
		check(false, "%s: the read raised %s (error code 0x%lx)", what, fault_name(),
		      last_fault.error_code);
		return;
	}
	if (!try_write64(p, pattern)) {
		check(false, "%s: read 0x%016lx, then the write raised %s (error code 0x%lx)", what,
		      before, fault_name(), last_fault.error_code);
		return;
	}
	if (!try_read64(p, &after)) {
		check(false, "%s: read 0x%016lx, wrote, then the read raised %s", what, before,
		      fault_name());
		return;
	}
	check(before == ALL_ONES && after == ALL_ONES,
	      "%s: read 0x%016lx, wrote 0x%016lx, read 0x%016lx", what, before, pattern, after);
}

/*
 * An 8-byte access at the last 4 bytes of RAM: the low half is RAM, the
 * high half is past its end. Before: the high half of CANARY_LAST, then
 * all-ones. The write changes only the RAM half.
 */
static void probe_straddle(void)
{
	volatile u64 *last = window(WIN_LAST_RAM);
	volatile void *p = (volatile u8 *)last + PAGE - 4;
	u64 before = 0, after = 0;
	u64 want_before = (CANARY_LAST >> 32) | 0xffffffff00000000ull;
	u64 want_after = (STRADDLE_PATTERN & 0xffffffffull) | 0xffffffff00000000ull;

	fault_reset();
	bool ok = try_read64(p, &before) && try_write64(p, STRADDLE_PATTERN) &&
		  try_read64(p, &after);
	if (!ok) {
		check(false, "8 bytes across the end of RAM: %s at RIP 0x%lx", fault_name(),
		      last_fault.rip);
		return;
	}
	check(before == want_before && after == want_after,
	      "8 bytes across the end of RAM: read 0x%016lx, wrote 0x%016lx, read 0x%016lx", before,
	      (u64)STRADDLE_PATTERN, after);
}

void kmain(struct hvm_start_info *si)
{
	u64 end = ram_end(si);
	if (!check(end >= 2 * MIB, "the PVH memory map gives the end of RAM (start_info version %u)",
		   si->version))
		return;
	printf("escape: probing frames past the end of RAM through PTEs at 0x%llx\n", WINDOW_VA);

	/* The window: PML4[1] -> pdpt -> PDPT[0] -> pd -> PD[0] -> pt. */
	pd[0] = phys(pt) | TABLE_FLAGS;
	pdpt[0] = phys(pd) | TABLE_FLAGS;
	boot_pml4[1] = phys(pdpt) | TABLE_FLAGS;
	write_cr3(read_cr3());

	/* Canaries in the last page of RAM, through the window (RAM may end above 4 GiB). */
	map(WIN_LAST_RAM, end - PAGE, RAM_FLAGS);
	volatile u64 *last = window(WIN_LAST_RAM);
	last[0] = CANARY_FIRST;
	last[511] = CANARY_LAST;

	static const struct {
		u64 offset; /* from the end of RAM */
		const char *what;
	} past_end[] = {
		{ 0, "RAM end" },
		{ 16 * MIB, "RAM end + 16 MiB" },
		{ 64 * MIB, "RAM end + 64 MiB" },
	};
	u64 limit = phys_limit();
	unsigned page = WIN_PROBE0;
	for (unsigned i = 0; i < ARRAY_SIZE(past_end); i++, page++) {
		u64 gpa = past_ram(end, past_end[i].offset);
		if (gpa + PAGE > limit) {
			printf("skip %s: past MAXPHYADDR\n", past_end[i].what);
			continue;
		}
		map(page, gpa, PROBE_FLAGS);
		probe(page, past_end[i].what, 0x5a5a5a5a00000000ull | (i + 1));
	}
	if (BELOW_HOLE >= end) {
		map(page, BELOW_HOLE, PROBE_FLAGS);
		probe(page, "0xbff00000 (below the MMIO hole)", 0x5a5a5a5a00000004ull);
	} else {
		printf("skip 0xbff00000: it is RAM\n");
	}

	/*
	 * Only when the first probe page (window page 1) is the frame right
	 * after the last RAM page (window page 0).
	 */
	bool straddle = past_ram(end, 0) == end && end + PAGE <= limit;
	if (straddle)
		probe_straddle();
	else
		printf("skip 8 bytes across the end of RAM: the MMIO hole follows it\n");

	u64 first = last[0], tail = last[511];
	u64 want_tail = CANARY_LAST;
	if (straddle)
		want_tail = (CANARY_LAST & 0xffffffffull) | (STRADDLE_PATTERN << 32);
	check(first == CANARY_FIRST && tail == want_tail,
	      "the last RAM page still holds what was written there: 0x%016lx, 0x%016lx", first,
	      tail);

	for (unsigned i = 0; i < page; i++)
		map(i, 0, 0);
	boot_pml4[1] = 0;
	write_cr3(read_cr3());
}
