/*
 * hole - the x86 virtualization-hole detector.
 *
 * Popek and Goldberg (1974): a machine can be virtualized by trap-and-
 * emulate alone if every *sensitive* instruction (one that reads or
 * changes privileged state) is *privileged* (traps when run outside the
 * most privileged mode). Classic x86 breaks this rule with about 17
 * instructions (Robin and Irvine, 2000). A monitor that runs the guest
 * kernel deprivileged (at CPL 1) and only emulates what traps lets those
 * instructions show the truth: the real IF, the monitor's descriptor
 * tables, the real CPL.
 *
 * This kernel runs at CPL 0 (it *is* the guest kernel) and checks, one
 * line each, that each such instruction shows what a real CPU at CPL 0
 * shows:
 *
 *    1  CLI; PUSHFQ                      IF = 0
 *    2  STI; POPFQ (IF=0); PUSHFQ        IF = 0 (POPF must clear IF at CPL 0)
 *    3  SGDT                             the GDTR this kernel loaded
 *    4  SIDT                             the IDTR this kernel loaded
 *    5  SLDT                             the LDT selector this kernel loaded
 *    6  STR                              the TSS selector this kernel loaded
 *    7  SMSW                             CR0[15:0] as this kernel wrote it
 *    8  MOV from CS and SS               RPL 0
 *    9  LAR of the kernel code selector  DPL 0
 *   10  LSL of the kernel data selector  its limit
 *   11  VERR/VERW of the kernel data     ZF = 1 (readable, writable)
 *   12  far CALL + far RET in ring 0     CS RPL 0 pushed, and after the return
 *   13  INT n via a DPL-0 gate           reaches the handler; IRETQ restores IF = 1
 *
 * Under a real CPU and under ringside's --virt none every line is "ok".
 * images/README.md lists the lines expected to fail under
 * --virt trap-only, and why. A line reads "ok   <check>: saw <value>" or
 * "FAIL <check>: saw <value>, expected <value>".
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "trap.h"

const char kernel_name[] = "hole";

#define LDT_SEL 0x58 /* the LDT descriptor (16 bytes) right after the boot GDT's entries */
#define HOLE_GDT_ENTRIES (GDT_SIZE / 8 + 2)
#define HOLE_GDT_LIMIT (HOLE_GDT_ENTRIES * 8 - 1)
#define INT_VECTOR 0x81 /* a DPL-0 interrupt gate (trap.c's default) */
#define DESC_TSS_BUSY (2ull << 40) /* type 0xb (busy) vs 0x9 (available) */

extern u64 boot_gdt[]; /* lib/entry.S */

/* This kernel's own GDT: a copy of the boot GDT plus an LDT descriptor. */
static u64 hole_gdt[HOLE_GDT_ENTRIES] ALIGNED(16);
static u64 hole_ldt[2] ALIGNED(16);

struct PACKED desc_ptr {
	u16 limit;
	u64 base;
};

/* A 16-byte system descriptor (LDT: type 2). */
static void set_system_desc(u64 *d, u64 base, u32 limit, u8 access)
{
	d[0] = (limit & 0xffff) | (base & 0xffffff) << 16 | (u64)access << 40 |
	       (u64)((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	d[1] = base >> 32;
}

static void mask_pic(void)
{
	/* Nothing may interrupt the STI windows below (QEMU's firmware leaves IRQ0 unmasked). */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

/* ---- 1, 2: the interrupt flag ---- */
static void check_cli_pushf(void)
{
	unsigned long fl;
	__asm__ volatile("cli; pushfq; pop %0" : "=r"(fl) : : "memory");
	unsigned ifl = (fl & RFLAGS_IF) != 0;
	if (ifl == 0)
		check(true, "1 CLI then PUSHFQ: saw IF=0");
	else
		check(false, "1 CLI then PUSHFQ: saw IF=%u, expected IF=0", ifl);
}

static void check_popf(void)
{
	unsigned long fl;
	/* IF=1, then POPFQ of an image with IF=0: at CPL 0 that clears IF. */
	__asm__ volatile("sti; pushq $0x2; popfq; pushfq; pop %0" : "=r"(fl) : : "memory", "cc");
	unsigned ifl = (fl & RFLAGS_IF) != 0;
	if (ifl == 0)
		check(true, "2 STI, POPFQ with IF=0, PUSHFQ: saw IF=0");
	else
		check(false, "2 STI, POPFQ with IF=0, PUSHFQ: saw IF=%u, expected IF=0 (POPF silently kept IF)",
		      ifl);
	cli();
}

/* ---- 3-6: descriptor-table registers ---- */
static void check_sgdt(void)
{
	struct desc_ptr d = { 0, 0 };
	__asm__ volatile("sgdt %0" : "=m"(d));
	if (d.limit == HOLE_GDT_LIMIT && d.base == (u64)hole_gdt)
		check(true, "3 SGDT: saw limit 0x%x, base = this kernel's GDT", d.limit);
	else
		check(false, "3 SGDT: saw limit 0x%x base 0x%lx, expected limit 0x%x base 0x%lx", d.limit,
		      d.base, HOLE_GDT_LIMIT, (u64)hole_gdt);
}

static void check_sidt(u64 idt_base, u16 idt_limit)
{
	struct desc_ptr d = { 0, 0 };
	__asm__ volatile("sidt %0" : "=m"(d));
	if (d.limit == idt_limit && d.base == idt_base)
		check(true, "4 SIDT: saw limit 0x%x, base = this kernel's IDT", d.limit);
	else
		check(false, "4 SIDT: saw limit 0x%x base 0x%lx, expected limit 0x%x base 0x%lx", d.limit,
		      d.base, idt_limit, idt_base);
}

static void check_sel(const char *what, u16 saw, u16 expected)
{
	if (saw == expected)
		check(true, "%s: saw 0x%x", what, saw);
	else
		check(false, "%s: saw 0x%x, expected 0x%x", what, saw, expected);
}

/* ---- 7: SMSW ---- */
static void check_smsw(void)
{
	/* Write CR0 ourselves (set MP), so "as the kernel last wrote it" is this value. */
	write_cr0(read_cr0() | CR0_MP);
	u16 expected = (u16)read_cr0();
	u16 msw = 0;
	__asm__ volatile("smsw %0" : "=m"(msw));
	if (msw == expected)
		check(true, "7 SMSW: saw 0x%04x = CR0[15:0] (MOV from CR0)", msw);
	else
		check(false, "7 SMSW: saw 0x%04x, expected 0x%04x = CR0[15:0] (MOV from CR0)", msw, expected);
}

/* ---- 8: the selectors' RPL ---- */
static void check_cs_ss(void)
{
	u16 cs, ss;
	__asm__ volatile("mov %%cs, %0; mov %%ss, %1" : "=r"(cs), "=r"(ss));
	if ((cs & 3) == 0 && (ss & 3) == 0)
		check(true, "8 MOV from CS, SS: saw CS=0x%x SS=0x%x (RPL 0)", cs, ss);
	else
		check(false, "8 MOV from CS, SS: saw CS=0x%x SS=0x%x (RPL %u, %u), expected RPL 0", cs, ss,
		      cs & 3, ss & 3);
}

/* ---- 9-11: LAR, LSL, VERR, VERW ---- */
static void check_lar(void)
{
	u32 ar = 0;
	u8 zf;
	__asm__ volatile("lar %2, %0; setz %1" : "+r"(ar), "=q"(zf) : "r"((u32)KERNEL_CS64) : "cc");
	ar &= 0x00f0ff00; /* bits 19:16 (the limit's top) are not promised */
	unsigned dpl = (ar >> 13) & 3;
	if (zf && dpl == 0)
		check(true, "9 LAR of the kernel CS 0x%x: saw access rights 0x%08x (DPL 0)", KERNEL_CS64, ar);
	else
		check(false, "9 LAR of the kernel CS 0x%x: saw ZF=%u access rights 0x%08x (DPL %u), expected ZF=1 DPL 0",
		      KERNEL_CS64, zf, ar, dpl);
}

static void check_lsl(void)
{
	u32 limit = 0;
	u8 zf;
	__asm__ volatile("lsl %2, %0; setz %1" : "+r"(limit), "=q"(zf) : "r"((u32)KERNEL_DS) : "cc");
	if (zf && limit == 0xffffffff)
		check(true, "10 LSL of the kernel DS 0x%x: saw limit 0x%x", KERNEL_DS, limit);
	else
		check(false, "10 LSL of the kernel DS 0x%x: saw ZF=%u limit 0x%x, expected ZF=1 limit 0xffffffff",
		      KERNEL_DS, zf, limit);
}

static void check_verr_verw(void)
{
	u8 r, w;
	u16 sel = KERNEL_DS;
	__asm__ volatile("verr %2; setz %0; verw %2; setz %1" : "=&q"(r), "=&q"(w) : "r"(sel) : "cc");
	if (r && w)
		check(true, "11 VERR, VERW of the kernel DS 0x%x: saw ZF=1, ZF=1", KERNEL_DS);
	else
		check(false, "11 VERR, VERW of the kernel DS 0x%x: saw ZF=%u, ZF=%u, expected ZF=1, ZF=1", KERNEL_DS,
		      r, w);
}

/* ---- 12: a far call and far return within ring 0 ---- */
/*
 * The far pointer is m16:32 (FF /3 without REX.W): that form means the same
 * on Intel and AMD CPUs (AMD ignores REX.W on an indirect far CALL, Intel
 * reads m16:64), and the kernel sits below 4 GiB. With a 32-bit operand
 * size the CALL pushes CS and EIP as 4 bytes each, and a 32-bit far RET
 * (LRETL) pops them.
 */
u64 far_cs_pushed, far_cs_inside;
void far_target(void);
__asm__(".text\n"
	".globl far_target\n"
	".type far_target, @function\n"
	"far_target:\n"
	"	mov %cs, %eax\n"
	"	mov %rax, far_cs_inside(%rip)\n"
	"	movzwl 4(%rsp), %eax\n" /* [rsp] = EIP, [rsp + 4] = CS */
	"	mov %rax, far_cs_pushed(%rip)\n"
	"	lretl\n"
	".size far_target, . - far_target\n");

static void check_far_call(void)
{
	static struct PACKED {
		u32 offset;
		u16 selector;
	} target;
	target.offset = (u32)(uintptr_t)far_target;
	target.selector = KERNEL_CS64;
	u16 cs_after;
	far_cs_pushed = far_cs_inside = ~0ull;
	__asm__ volatile("lcall *%1; mov %%cs, %0" : "=r"(cs_after) : "m"(target) : "rax", "memory");
	bool ok = far_cs_inside == KERNEL_CS64 && far_cs_pushed == KERNEL_CS64 && cs_after == KERNEL_CS64;
	if (ok)
		check(true, "12 far CALL (m16:32) to CS 0x%x and far RET: saw CS=0x%lx pushed, 0x%lx inside, 0x%x after",
		      KERNEL_CS64, far_cs_pushed, far_cs_inside, cs_after);
	else
		check(false, "12 far CALL (m16:32) to CS 0x%x and far RET: saw CS=0x%lx pushed, 0x%lx inside, 0x%x after, expected 0x%x each",
		      KERNEL_CS64, far_cs_pushed, far_cs_inside, cs_after, KERNEL_CS64);
}

/* ---- 13: INT n to a DPL-0 gate from CPL 0, and IRETQ ---- */
static struct {
	bool reached;
	u64 frame_cs, frame_rflags, handler_rflags;
} intn;

static void intn_handler(struct trap_frame *f)
{
	intn.reached = true;
	intn.frame_cs = f->cs;
	intn.frame_rflags = f->rflags;
	intn.handler_rflags = read_flags();
}

static void check_int_iret(void)
{
	unsigned long after;
	trap_set_handler(INT_VECTOR, intn_handler);
	__asm__ volatile("sti; int %1; pushfq; pop %0; cli" : "=r"(after) : "i"(INT_VECTOR) : "memory");
	unsigned saved_if = (intn.frame_rflags & RFLAGS_IF) != 0;
	unsigned inside_if = (intn.handler_rflags & RFLAGS_IF) != 0;
	unsigned after_if = (after & RFLAGS_IF) != 0;
	bool ok = intn.reached && (intn.frame_cs & 3) == 0 && saved_if == 1 && inside_if == 0 && after_if == 1;
	if (ok)
		check(true, "13 INT 0x%x via a DPL-0 gate, IRETQ: saw the handler run (IF=0, frame CS=0x%lx IF=1), IF=1 after IRETQ",
		      INT_VECTOR, intn.frame_cs);
	else if (!intn.reached)
		check(false, "13 INT 0x%x via a DPL-0 gate, IRETQ: saw no handler run, expected it to run", INT_VECTOR);
	else
		check(false, "13 INT 0x%x via a DPL-0 gate, IRETQ: saw the handler run (IF=%u, frame CS=0x%lx IF=%u), IF=%u after IRETQ, expected IF=0, CS RPL 0, IF=1, IF=1",
		      INT_VECTOR, inside_if, intn.frame_cs, saved_if, after_if);
}

void kmain(struct hvm_start_info *si)
{
	(void)si;
	printf("hole: sensitive but unprivileged x86 instructions, checked at CPL 0\n");
	mask_pic();

	/* Our own descriptor tables at known addresses: the boot GDT plus an LDT. */
	memcpy(hole_gdt, boot_gdt, GDT_SIZE);
	hole_gdt[TSS_SEL / 8] &= ~DESC_TSS_BUSY; /* LTR wants an available TSS */
	hole_ldt[0] = 0;
	hole_ldt[1] = 0x00cf93000000ffffull; /* a flat data segment */
	set_system_desc(&hole_gdt[LDT_SEL / 8], (u64)hole_ldt, sizeof(hole_ldt) - 1, 0x82 /* P, LDT */);
	struct desc_ptr gdtr = { HOLE_GDT_LIMIT, (u64)hole_gdt };
	__asm__ volatile("lgdt %0" : : "m"(gdtr) : "memory");
	__asm__ volatile("ltr %w0" : : "r"(TSS_SEL) : "memory");
	__asm__ volatile("lldt %w0" : : "r"(LDT_SEL) : "memory");
	/* And the IDT again, from what trap_init built (not from SIDT). */
	u64 idt_base;
	u16 idt_limit;
	idt_descriptor(&idt_base, &idt_limit);
	struct desc_ptr idtr = { idt_limit, idt_base };
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");

	check_cli_pushf();
	check_popf();
	check_sgdt();
	check_sidt(idt_base, idt_limit);
	u16 sel;
	__asm__ volatile("sldt %0" : "=r"(sel));
	check_sel("5 SLDT", sel, LDT_SEL);
	__asm__ volatile("str %0" : "=r"(sel));
	check_sel("6 STR", sel, TSS_SEL);
	check_smsw();
	check_cs_ss();
	check_lar();
	check_lsl();
	check_verr_verw();
	check_far_call();
	check_int_iret();
}
