/*
 * irq - a lab workload: a periodic timer interrupt against critical
 * sections guarded by the interrupt flag.
 *
 * A timer interrupts every 500 us on vector 0x40 (pv_ops->timer_start:
 * the local APIC timer natively, HC_SET_TIMER paravirtually). The main
 * loop runs critical sections that increment two counters, `a` at the
 * start and `b` at the end, with some work in between; odd sections are
 * guarded by irq_disable/irq_enable (CLI/STI natively), even ones by
 * irq_save/irq_restore (PUSHF; CLI / POPF natively). The interrupt handler
 * checks that it never lands inside a section: a == b and the in-section
 * flag clear. A monitor that loses the guest's CLI, or lets POPF fail to
 * restore the flag silently, shows up as a torn section.
 *
 * Natively each CLI/STI/POPF is one instruction; under trap-and-emulate
 * each is a trap; the paravirtual flavour writes a byte of the shared
 * page (irq_mask) and makes a hypercall only when an interrupt is pending.
 *
 * The first interrupt is awaited with pv_ops->safe_halt (STI; HLT): the
 * timer is known to run before the measured loop starts. (A machine whose
 * timer never fires stops there: ringside reports a halt that can never
 * end.) The loop then runs until at least TICKS interrupts came, bounded
 * by the TSC and by an iteration count, so a timer that stops fails the
 * check instead of hanging.
 * Only the first SECTIONS sections feed the checksum: the output does not
 * depend on how many interrupts arrived or when.
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "pvops.h"
#include "trap.h"

const char kernel_name[] = "irq";

#define TIMER_VECTOR 0x40
#define PERIOD_US 500
#define TICKS 20 /* at least this many timer interrupts */
#define SECTIONS 256 /* critical sections that feed the checksum */
#define WORK 16 /* mixing steps inside each section */
#define MAX_SECTIONS 4000000u /* give up after this many sections ... */
#define MAX_TSC (1ull << 32) /* ... or this many TSC cycles (1-4 s) */

static volatile u64 a, b; /* a++ opens a section, b++ closes it */
static volatile bool in_section;
static volatile unsigned ticks, torn, unmasked;

static void timer_irq(struct trap_frame *f)
{
	(void)f;
	if (in_section || a != b)
		torn++;
	if (pv_ops->irqs_enabled()) /* an interrupt gate (or the monitor) must mask */
		unmasked++;
	ticks++;
	pv_ops->timer_eoi();
	pv_ops->irq_exit();
}

static u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (u64)hi << 32 | lo;
}

/* The inside of one critical section; returns the section's contribution. */
static u64 section(u64 x)
{
	in_section = true;
	a++;
	for (unsigned k = 0; k < WORK; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	b++;
	in_section = false;
	return x;
}

void kmain(struct hvm_start_info *si)
{
	(void)si;
	/*
	 * Firmware may hand over with the 8259s unmasked, the PIT running and
	 * IRQ 0 on vector 8 (QEMU's SeaBIOS does): it would arrive as a bogus
	 * "#DF" once interrupts are on. The local APIC timer is this kernel's
	 * only source, so mask both 8259s first.
	 */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	printf("irq: a %u us timer interrupt against IF-guarded critical sections\n", PERIOD_US);

	/* The flag operations themselves, before any interrupt source is on. */
	pv_ops->irq_disable();
	bool off = !pv_ops->irqs_enabled();
	unsigned long flags = pv_ops->irq_save();
	bool saved_off = !(flags & RFLAGS_IF) && !pv_ops->irqs_enabled();
	pv_ops->irq_restore(flags);
	bool nested_off = !pv_ops->irqs_enabled();
	pv_ops->irq_enable();
	bool on = pv_ops->irqs_enabled();
	flags = pv_ops->irq_save();
	bool save_on = (flags & RFLAGS_IF) && !pv_ops->irqs_enabled();
	pv_ops->irq_restore(flags);
	bool restored_on = pv_ops->irqs_enabled();
	pv_ops->irq_disable();
	check(off && saved_off && nested_off,
	      "irq_disable masks; irq_save/irq_restore inside it keep interrupts masked");
	check(on && save_on && restored_on, "irq_enable unmasks; irq_save masks, irq_restore unmasks again");

	trap_set_handler(TIMER_VECTOR, timer_irq);
	pv_ops->timer_start(TIMER_VECTOR, PERIOD_US);
	for (unsigned i = 0; i < 1000 && ticks == 0; i++)
		pv_ops->safe_halt(); /* returns with interrupts enabled */
	check(ticks > 0, "the first timer interrupt (vector 0x%x) woke HLT", TIMER_VECTOR);

	u64 x = 0x2545f4914f6cdd1dull, sum = 0, start = rdtsc();
	unsigned n = 0; /* sections run */
	while (n < MAX_SECTIONS) {
		if (n & 1) {
			pv_ops->irq_disable();
			x = section(x);
			pv_ops->irq_enable();
		} else {
			unsigned long fl = pv_ops->irq_save();
			x = section(x);
			pv_ops->irq_restore(fl);
		}
		n++;
		if (n <= SECTIONS)
			sum = (sum ^ x) * 0x100000001b3ull;
		else if (ticks >= TICKS || rdtsc() - start > MAX_TSC)
			break;
	}

	pv_ops->irq_disable();
	pv_ops->timer_stop();
	unsigned got = ticks;

	printf("irq: checksum 0x%016lx\n", sum);
	if (got >= TICKS)
		check(true, "at least %u timer interrupts (vector 0x%x) arrived during the sections",
		      TICKS, TIMER_VECTOR);
	else
		check(false, "only %u of %u timer interrupts (vector 0x%x) arrived in %u sections", got,
		      TICKS, TIMER_VECTOR, n);
	check(torn == 0, "no interrupt landed inside a critical section (%u torn)", torn);
	check(unmasked == 0, "the handler always ran with interrupts masked (%u times not)", unmasked);
	check(a == n && b == n, "every section ran to the end");
}
