/*
 * ptupdate - a lab workload: page-table updates, the worst case of shadow
 * paging. 64 rounds; each maps 16 frames of a 32-frame pool at 16 virtual
 * pages, touches every page (read, then write), and unmaps them again.
 *
 * Every entry is written through pv_ops->set_pte and every unmapped page
 * is invalidated with pv_ops->invlpg; pv_ops->flush_pte_updates follows
 * each group of 16. Natively each of these is a plain store or INVLPG; a
 * shadow-paging monitor must trap every store to a page-table page
 * (thousands of traps), while the paravirtual flavour sends one
 * HC_MMU_UPDATE per group of 16 (128 hypercalls in all).
 *
 * The tables live in PML4 slot 1 (linear 0x8000000000), hung off the boot
 * PML4; the frames are a static pool inside the kernel image. Each touch
 * reads one of the first 8 words of its page and writes a new value
 * there, so later rounds read what earlier rounds wrote through other
 * mappings. The values read are summed into the checksum, and the same
 * sequence is replayed on a copy of the pool without any remapping: both
 * must agree, so a stale or wrong translation shows.
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "pvops.h"
#include "trap.h"

const char kernel_name[] = "ptupdate";

#define ROUNDS 64
#define PAGES 16 /* virtual pages mapped per round */
#define POOL 32 /* frames in the pool */
#define WORDS 8 /* words touched per frame: reads see earlier rounds' writes */
#define WINDOW_VA 0x8000000000ull /* PML4 index 1, everything else 0 */
#define TABLE_FLAGS (PTE_P | PTE_W)
#define PAGE_FLAGS (PTE_P | PTE_W)

extern u64 boot_pml4[]; /* lib/entry.S: the live PML4 */

static u64 pdpt[512] ALIGNED(4096);
static u64 pd[512] ALIGNED(4096);
static u64 pt[512] ALIGNED(4096);
static u64 pool[POOL][512] ALIGNED(4096);
static u64 model[POOL][512] ALIGNED(4096);

/* The kernel is identity mapped: a pointer is its own (guest-)physical address. */
static u64 phys(const volatile void *p)
{
	return (u64)p;
}

/* The frame virtual page i maps in round r: 16 different frames per round (3 is odd). */
static unsigned frame_of(unsigned r, unsigned i)
{
	return (r * 13 + i * 3) % POOL;
}

/* The word of page i that round r touches, and what it writes there. */
static unsigned word_of(unsigned r, unsigned i)
{
	return (r * 3 + i) % WORDS;
}

static u64 new_value(u64 old, unsigned r, unsigned i)
{
	return old * 0x100000001b3ull + ((u64)r << 8 | i) + 1;
}

static u64 fold(u64 sum, u64 v)
{
	return (sum ^ v) * 0x100000001b3ull; /* FNV-1a style */
}

/* Every touched word starts with its own value, so a read from a wrong frame shows. */
static void seed(u64 (*frames)[512])
{
	for (unsigned f = 0; f < POOL; f++)
		for (unsigned w = 0; w < WORDS; w++)
			frames[f][w] = (u64)f << 32 | w;
}

static u64 digest(u64 (*frames)[512])
{
	u64 sum = 0;
	for (unsigned f = 0; f < POOL; f++)
		for (unsigned w = 0; w < WORDS; w++)
			sum = fold(sum, frames[f][w]);
	return sum;
}

/* The workload: returns the checksum of everything read through the window. */
static u64 run_rounds(void)
{
	u64 sum = 0;
	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned i = 0; i < PAGES; i++)
			pv_ops->set_pte(&pt[i], phys(pool[frame_of(r, i)]) | PAGE_FLAGS);
		pv_ops->flush_pte_updates();

		for (unsigned i = 0; i < PAGES; i++) {
			volatile u64 *page = (volatile u64 *)(WINDOW_VA + i * 4096ull);
			unsigned w = word_of(r, i);
			u64 v = page[w];
			page[w] = new_value(v, r, i);
			sum = fold(sum, v);
		}

		for (unsigned i = 0; i < PAGES; i++) {
			pv_ops->set_pte(&pt[i], 0);
			pv_ops->invlpg(WINDOW_VA + i * 4096ull);
		}
		pv_ops->flush_pte_updates();
	}
	return sum;
}

/* The same sequence on a copy of the pool, without the window, for comparison. */
static u64 replay_rounds(u64 (*model)[512])
{
	u64 sum = 0;
	for (unsigned r = 0; r < ROUNDS; r++)
		for (unsigned i = 0; i < PAGES; i++) {
			u64 *frame = model[frame_of(r, i)];
			unsigned w = word_of(r, i);
			u64 v = frame[w];
			frame[w] = new_value(v, r, i);
			sum = fold(sum, v);
		}
	return sum;
}

void kmain(struct hvm_start_info *si)
{
	(void)si;
	printf("ptupdate: %u rounds of map %u pages, touch, unmap (%u-frame pool)\n", ROUNDS, PAGES,
	       POOL);

	/* The window: PML4[1] -> pdpt -> PDPT[0] -> pd -> PD[0] -> pt. */
	pv_ops->set_pte(&pd[0], phys(pt) | TABLE_FLAGS);
	pv_ops->set_pte(&pdpt[0], phys(pd) | TABLE_FLAGS);
	pv_ops->set_pte(&boot_pml4[1], phys(pdpt) | TABLE_FLAGS);
	pv_ops->flush_pte_updates();

	seed(pool);
	u64 sum = run_rounds();
	printf("ptupdate: checksum 0x%016lx\n", sum);

	/* Unmapped at the end: a read of the window must fault (no stale TLB entry). */
	u64 v;
	fault_reset();
	bool read = try_read64((const volatile void *)WINDOW_VA, &v);
	check(!read && last_fault.vector == VEC_PF && last_fault.cr2 == WINDOW_VA &&
		      (last_fault.error_code & PF_P) == 0,
	      "after the last unmap, a read at 0x%llx -> %s (not present)", WINDOW_VA,
	      read ? "no fault" : exception_mnemonic((unsigned)last_fault.vector));

	pv_ops->set_pte(&boot_pml4[1], 0);
	pv_ops->flush_tlb();
	pv_ops->flush_pte_updates();

	seed(model);
	check(replay_rounds(model) == sum,
	      "%u reads through the remapped window match the same accesses replayed without it",
	      ROUNDS * PAGES);
	check(digest(pool) == digest(model), "and so do the %u frames' contents after the writes", POOL);
}
