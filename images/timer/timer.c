/*
 * timer - timer interrupts from the 8254 PIT (through the 8259 PIC) and
 * from the local APIC timer, counted in a STI; HLT loop.
 *
 * Interrupt routing: the PIC's INTR output reaches the CPU through the
 * local APIC's LINT0 pin programmed as ExtINT ("virtual wire" mode, as
 * firmware leaves it); the APIC timer is the APIC's own interrupt source.
 *
 * If the interrupts never come, HLT would wait forever: so the *first*
 * tick of each timer is awaited by polling (bounded by PIT counter
 * reloads, and by a poll count in case the PIT is stuck too) and only
 * then does the kernel halt between ticks. A timer can also stop after
 * its first tick, so every later wait has a watchdog: the *other* timer
 * (the APIC timer while the PIT is tested, the PIT while the APIC timer
 * is), whose interrupts also end HLT. If about half a second of
 * watchdog ticks pass without a tick of the timer under test, the check
 * fails with a message. (Only both timers failing at once could still
 * hang the kernel: then nothing at all can end HLT.)
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "trap.h"

const char kernel_name[] = "timer";

#define TICKS 20

/* ---- 8259 PIC ---- */
#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI 0x20
#define PIC1_VECTOR 0x20 /* IRQ0-7 -> vectors 0x20-0x27 (0x08-0x0f would clash with exceptions) */
#define PIC2_VECTOR 0x28 /* IRQ8-15 -> 0x28-0x2f */

static void pic_init(void)
{
	outb(PIC1_CMD, 0x11); /* ICW1: initialize, edge triggered, cascade, ICW4 follows */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, PIC1_VECTOR); /* ICW2: vector base */
	outb(PIC2_DATA, PIC2_VECTOR);
	outb(PIC1_DATA, 0x04); /* ICW3: the slave is on IRQ2 */
	outb(PIC2_DATA, 0x02); /* ICW3: slave identity 2 */
	outb(PIC1_DATA, 0x01); /* ICW4: 8086 mode, normal EOI */
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, 0xff); /* OCW1: mask everything for now */
	outb(PIC2_DATA, 0xff);
}

/* ---- 8254 PIT ---- */
#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_HZ 1193182
#define PIT_RATE 1000 /* interrupts per second */
#define PIT_DIVISOR ((PIT_HZ + PIT_RATE / 2) / PIT_RATE)

static void pit_start_periodic(void)
{
	outb(PIT_CMD, 0x34); /* channel 0, low then high byte, mode 2 (rate generator), binary */
	outb(PIT_CH0, PIT_DIVISOR & 0xff);
	outb(PIT_CH0, PIT_DIVISOR >> 8);
}

static u16 pit_read_count(void)
{
	outb(PIT_CMD, 0x00); /* latch channel 0's count */
	u16 lo = inb(PIT_CH0);
	u16 hi = inb(PIT_CH0);
	return (u16)(lo | hi << 8);
}

/* ---- Local APIC (xAPIC, memory mapped) ---- */
#define APIC_BASE 0xfee00000ul
#define APIC_EOI 0x0b0
#define APIC_SVR 0x0f0 /* spurious interrupt vector register; bit 8 = APIC software enable */
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_LVT_ERROR 0x370
#define APIC_TIMER_INITIAL 0x380
#define APIC_TIMER_CURRENT 0x390
#define APIC_TIMER_DIVIDE 0x3e0

#define APIC_BASE_ENABLE (1u << 11) /* IA32_APIC_BASE: the APIC is globally enabled */
#define LVT_MASKED (1u << 16)
#define LVT_TIMER_PERIODIC (1u << 17)
#define LVT_EXTINT (7u << 8)
#define LVT_NMI (4u << 8)
#define APIC_TIMER_VECTOR 0x40
#define APIC_WATCHDOG_VECTOR 0x41 /* the APIC timer as the PIT's watchdog */
#define APIC_SPURIOUS_VECTOR 0xff
/* Divide by 16; 62500 counts = 1 ms with the 1 GHz APIC clock QEMU and KVM model. */
#define APIC_DIVIDE_16 0x3
#define APIC_TIMER_COUNT 62500
#define APIC_WATCHDOG_COUNT 625000 /* 10 ms */
#define APIC_WATCHDOG_MS 10

/* A wait for the next tick gives up after this many milliseconds of watchdog ticks. */
#define WATCHDOG_LIMIT_MS 500

static u32 apic_read(u32 reg) { return mmio_read32(APIC_BASE + reg); }
static void apic_write(u32 reg, u32 v) { mmio_write32(APIC_BASE + reg, v); }

/* ---- Interrupt handlers ---- */
static volatile unsigned pit_ticks, apic_ticks, apic_watchdog_ticks;

static void pit_irq(struct trap_frame *f)
{
	(void)f;
	pit_ticks++;
	outb(PIC1_CMD, PIC_EOI);
}

static void apic_timer_irq(struct trap_frame *f)
{
	(void)f;
	apic_ticks++;
	apic_write(APIC_EOI, 0);
}

static void apic_watchdog_irq(struct trap_frame *f)
{
	(void)f;
	apic_watchdog_ticks++;
	apic_write(APIC_EOI, 0);
}

/*
 * Spurious interrupts (PIC IRQ7 and IRQ15, the APIC spurious vector) are
 * not in service, so no EOI is owed; except that a spurious IRQ15 came
 * through the master's IRQ2, which the master did put in service.
 */
static void spurious_irq(struct trap_frame *f)
{
	if (f->vector == PIC2_VECTOR + 7)
		outb(PIC1_CMD, PIC_EOI);
}

/*
 * Wait with interrupts enabled until *counter != 0. Gives up after about
 * 500 PIT periods (0.5 s), or a million polls if the PIT counter is stuck.
 */
static bool wait_first_tick(volatile unsigned *counter)
{
	u16 last = pit_read_count();
	unsigned periods = 0;
	sti();
	for (unsigned polls = 0; polls < 1000000 && periods < 500; polls++) {
		if (*counter)
			break;
		u16 now = pit_read_count();
		if (now > last) /* the count went up: it reloaded, one period passed */
			periods++;
		last = now;
	}
	cli();
	return *counter != 0;
}

/*
 * Halt until *counter reaches n; each interrupt wakes HLT. The watchdog
 * counter ticks every watchdog_ms milliseconds (another timer, whose
 * interrupts wake HLT too): if it ticks for WATCHDOG_LIMIT_MS while
 * *counter stands still, give up. Returns true if *counter reached n.
 */
static bool halt_until(volatile unsigned *counter, unsigned n, volatile unsigned *watchdog,
		       unsigned watchdog_ms)
{
	unsigned limit = WATCHDOG_LIMIT_MS / watchdog_ms;
	while (*counter < n) {
		unsigned seen = *counter, start = *watchdog;
		while (*counter == seen) {
			if (*watchdog - start >= limit)
				return false;
			__asm__ volatile("sti; hlt; cli" : : : "memory");
		}
	}
	return true;
}

void kmain(struct hvm_start_info *si)
{
	(void)si;
	printf("timer: PIT (IRQ0 via the 8259 PIC) and local APIC timer interrupts\n");

	trap_set_handler(PIC1_VECTOR + 0, pit_irq);
	trap_set_handler(PIC1_VECTOR + 7, spurious_irq);
	trap_set_handler(PIC2_VECTOR + 7, spurious_irq);
	trap_set_handler(APIC_TIMER_VECTOR, apic_timer_irq);
	trap_set_handler(APIC_WATCHDOG_VECTOR, apic_watchdog_irq);
	trap_set_handler(APIC_SPURIOUS_VECTOR, spurious_irq);

	/* The local APIC: enabled, virtual wire mode so the PIC's interrupts get through. */
	u64 base = rdmsr(MSR_APIC_BASE);
	check((base & 0xfffff000) == APIC_BASE && (base & APIC_BASE_ENABLE),
	      "local APIC enabled at 0x%lx (IA32_APIC_BASE)", (unsigned long)(base & 0xfffff000));
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_LVT_ERROR, LVT_MASKED);
	apic_write(APIC_SVR, 0x100 | APIC_SPURIOUS_VECTOR);
	apic_write(APIC_LVT_LINT0, LVT_EXTINT);
	apic_write(APIC_LVT_LINT1, LVT_NMI);

	/* ---- PIT ---- */
	pic_init();
	pit_start_periodic();
	outb(PIC1_DATA, 0xfe); /* unmask IRQ0 only */
	bool first = wait_first_tick(&pit_ticks);
	if (check(first, "PIT: first IRQ0 arrived (vector 0x%x)", PIC1_VECTOR)) {
		/* The watchdog: the APIC timer, periodic, every 10 ms. */
		apic_write(APIC_TIMER_DIVIDE, APIC_DIVIDE_16);
		apic_write(APIC_LVT_TIMER, LVT_TIMER_PERIODIC | APIC_WATCHDOG_VECTOR);
		apic_write(APIC_TIMER_INITIAL, APIC_WATCHDOG_COUNT);
		if (halt_until(&pit_ticks, TICKS, &apic_watchdog_ticks, APIC_WATCHDOG_MS))
			check(true, "PIT: %u ticks at %u Hz in a STI; HLT loop", TICKS, PIT_RATE);
		else
			check(false, "PIT: IRQ0 stopped after %u of %u ticks (no tick for %u ms of APIC timer watchdog)",
			      pit_ticks, TICKS, WATCHDOG_LIMIT_MS);
		apic_write(APIC_LVT_TIMER, LVT_MASKED);
		apic_write(APIC_TIMER_INITIAL, 0); /* stops the watchdog */
	}
	outb(PIC1_DATA, 0xff); /* mask the PIC; the PIT keeps counting (wait_first_tick uses it) */

	/* ---- Local APIC timer ---- */
	apic_write(APIC_TIMER_DIVIDE, APIC_DIVIDE_16);
	apic_write(APIC_LVT_TIMER, LVT_TIMER_PERIODIC | APIC_TIMER_VECTOR);
	apic_write(APIC_TIMER_INITIAL, APIC_TIMER_COUNT); /* starts the timer */
	first = wait_first_tick(&apic_ticks);
	if (check(first, "APIC timer: first interrupt arrived (vector 0x%x)", APIC_TIMER_VECTOR)) {
		/* The watchdog: the PIT's IRQ0 again, every millisecond. */
		outb(PIC1_DATA, 0xfe);
		if (halt_until(&apic_ticks, TICKS, &pit_ticks, 1000 / PIT_RATE))
			check(true, "APIC timer: %u ticks, periodic mode, EOI after each", TICKS);
		else
			check(false, "APIC timer: stopped after %u of %u ticks (no tick for %u ms of PIT watchdog)",
			      apic_ticks, TICKS, WATCHDOG_LIMIT_MS);
		outb(PIC1_DATA, 0xff);
	}
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_TIMER_INITIAL, 0); /* stops the timer */
	check(apic_read(APIC_TIMER_CURRENT) == 0, "APIC timer: stopped (initial count 0 -> current count 0)");
}
