/*
 * ctxswitch - a lab workload: address-space switches. Four PML4s map the
 * same virtual page (0x8000000000, PML4 slot 1) to four different frames,
 * and share the boot identity map (slot 0) where the code runs. The kernel
 * switches CR3 2000 times, in a scrambled order, and after each switch
 * reads the private page's tag and updates one of its words.
 *
 * Natively a switch is MOV CR3 (which also flushes the TLB); under a
 * shadow-paging monitor it traps, and the monitor must find or build the
 * shadow of the new PML4; the paravirtual flavour asks for it with
 * HC_SET_CR3 (pv_ops->write_cr3).
 *
 * The checksum folds everything read through the private page; the same
 * sequence is replayed on the frames through the identity map to check it.
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "pvops.h"
#include "trap.h"

const char kernel_name[] = "ctxswitch";

#define SPACES 4
#define SWITCHES 2000
#define PRIVATE_VA 0x8000000000ull /* PML4 index 1, everything else 0 */
#define TABLE_FLAGS (PTE_P | PTE_W)
#define TAG(s) (0x7a67000000000000ull | (u64)(s)) /* word 0 of space s's frame */

extern u64 boot_pml4[]; /* lib/entry.S: slot 0 = the identity map of the low 4 GiB */

static u64 pml4[SPACES][512] ALIGNED(4096);
static u64 pdpt[SPACES][512] ALIGNED(4096);
static u64 pd[SPACES][512] ALIGNED(4096);
static u64 pt[SPACES][512] ALIGNED(4096);
static u64 frame[SPACES][512] ALIGNED(4096);

static u64 phys(const volatile void *p)
{
	return (u64)p; /* identity mapped */
}

/* Which space the i-th switch goes to: every space often, in no simple cycle. */
static unsigned space_of(unsigned i)
{
	return (i * 3 + (i >> 3)) % SPACES;
}

static unsigned word_of(unsigned i)
{
	return 1 + (i * 7) % 511; /* word 0 holds the tag */
}

static u64 fold(u64 sum, u64 v)
{
	return (sum ^ v) * 0x100000001b3ull;
}

static void seed_frames(void)
{
	for (unsigned s = 0; s < SPACES; s++) {
		frame[s][0] = TAG(s);
		for (unsigned w = 1; w < 512; w++)
			frame[s][w] = (u64)s << 16 | w;
	}
}

/* The workload. *wrong_tag counts switches after which the page was not the new space's. */
static u64 run_switches(unsigned *wrong_tag)
{
	volatile u64 *page = (volatile u64 *)PRIVATE_VA;
	u64 sum = 0;
	for (unsigned i = 0; i < SWITCHES; i++) {
		unsigned s = space_of(i), w = word_of(i);
		pv_ops->write_cr3(phys(pml4[s]));
		u64 tag = page[0];
		if (tag != TAG(s))
			(*wrong_tag)++;
		u64 v = page[w];
		page[w] = v * 31 + i;
		sum = fold(fold(sum, tag), v);
	}
	pv_ops->write_cr3(phys(boot_pml4));
	return sum;
}

static u64 replay_switches(void)
{
	u64 sum = 0;
	for (unsigned i = 0; i < SWITCHES; i++) {
		unsigned s = space_of(i), w = word_of(i);
		u64 v = frame[s][w];
		frame[s][w] = v * 31 + i;
		sum = fold(fold(sum, TAG(s)), v);
	}
	return sum;
}

static u64 frames_digest(void)
{
	u64 sum = 0;
	for (unsigned s = 0; s < SPACES; s++)
		for (unsigned w = 0; w < 512; w++)
			sum = fold(sum, frame[s][w]);
	return sum;
}

void kmain(struct hvm_start_info *si)
{
	(void)si;
	printf("ctxswitch: %u CR3 switches between %u address spaces\n", SWITCHES, SPACES);

	for (unsigned s = 0; s < SPACES; s++) {
		pv_ops->set_pte(&pt[s][0], phys(frame[s]) | PTE_P | PTE_W);
		pv_ops->set_pte(&pd[s][0], phys(pt[s]) | TABLE_FLAGS);
		pv_ops->set_pte(&pdpt[s][0], phys(pd[s]) | TABLE_FLAGS);
		pv_ops->set_pte(&pml4[s][0], boot_pml4[0]); /* the shared identity map */
		pv_ops->set_pte(&pml4[s][1], phys(pdpt[s]) | TABLE_FLAGS);
	}
	pv_ops->flush_pte_updates();
	seed_frames();

	unsigned wrong_tag = 0;
	u64 sum = run_switches(&wrong_tag);
	u64 written = frames_digest();
	printf("ctxswitch: checksum 0x%016lx\n", sum);

	check(wrong_tag == 0, "after each of the %u switches the page at 0x%llx was the new space's",
	      SWITCHES, PRIVATE_VA);
	seed_frames();
	check(replay_switches() == sum && frames_digest() == written,
	      "reads and writes through the 4 spaces match the same accesses through the identity map");
}
