/*
 * syscall - a lab workload: 2000 system calls from ring 3, each a full
 * user -> kernel -> user round trip (INT 0x80 through a DPL-3 gate, back
 * with IRETQ). Under a monitor every one of them is a trap the monitor
 * reflects into the guest kernel and a return it must let through; this
 * is the cost a paravirtual kernel cannot avoid by rewriting itself.
 *
 * The ring-3 loop (user_loop, run through user_call) calls SYS_MIX(acc, i)
 * and folds the results; the kernel recomputes the same chain in ring 0
 * and compares. Both flavours (syscall.elf, syscall-pv.elf) are the same
 * code: a system call involves no pv-ops.
 *
 * A host quirk: on KVM's PVM flavour (the lab's development host) INT 0x80
 * from ring 3 raises #UD at the INT instead of going through the gate.
 * The #UD handler recognises that case (the bytes CD 80 at the faulting
 * RIP, from CPL 3), runs the same system call and resumes after the INT:
 * the ring-3 program and the output are the same either way.
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "trap.h"
#include "user.h"

const char kernel_name[] = "syscall";

#define CALLS 2000
#define SYSCALL_VECTOR 0x80
#define SYS_MIX 1 /* (a, b) -> mix(a, b) */

/* The "small computation on the arguments" (a 64-bit multiply-xorshift). */
static u64 mix(u64 a, u64 b)
{
	u64 x = a ^ (b * 0x9e3779b97f4a7c15ull);
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return x;
}

/* Ring-3 side: what each round trip folds into the running value. */
static u64 fold(u64 acc, u64 r)
{
	return (acc << 7 | acc >> 57) + r;
}

static struct {
	u64 calls; /* system calls handled, any path */
	u64 unknown; /* calls with an unknown number */
} kstats;

static void syscall_dispatch(struct trap_frame *f)
{
	kstats.calls++;
	switch (f->rax) {
	case SYS_MIX:
		f->rax = mix(f->rdi, f->rsi);
		break;
	default:
		kstats.unknown++;
		f->rax = ~0ull;
	}
}

/* INT 0x80 through its DPL-3 gate: the architectural path. */
static void int80_handler(struct trap_frame *f)
{
	if ((f->cs & 3) != 3)
		trap_unexpected(f);
	syscall_dispatch(f);
}

/* #UD at an INT 0x80 in ring 3 (kvm-pvm): the same call, then skip the INT. */
static void ud_handler(struct trap_frame *f)
{
	const u8 *insn = (const u8 *)f->rip;
	if ((f->cs & 3) != 3 || insn[0] != 0xcd || insn[1] != SYSCALL_VECTOR)
		trap_unexpected(f);
	f->rip += 2;
	syscall_dispatch(f);
}

static inline u64 sys2(u64 nr, u64 a, u64 b)
{
	u64 r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "memory");
	return r;
}

struct syscall_job {
	u64 acc; /* out */
	u32 calls; /* out: round trips done */
};

/* Runs in ring 3 (user_call). */
static void user_loop(void *arg)
{
	struct syscall_job *job = arg;
	u64 acc = 0x5eed;
	u32 i;
	for (i = 0; i < CALLS; i++)
		acc = fold(acc, sys2(SYS_MIX, acc, i));
	job->acc = acc;
	job->calls = i;
}

void kmain(struct hvm_start_info *si)
{
	(void)si;
	printf("syscall: %u user <-> kernel round trips (INT 0x80, IRETQ)\n", CALLS);

	trap_set_handler(SYSCALL_VECTOR, int80_handler);
	idt_set_dpl(SYSCALL_VECTOR, 3);
	trap_set_handler(VEC_UD, ud_handler);

	static struct syscall_job job;
	user_call(user_loop, &job);

	u64 expect = 0x5eed;
	for (u32 i = 0; i < CALLS; i++)
		expect = fold(expect, mix(expect, i));

	printf("syscall: checksum 0x%016lx\n", job.acc);
	check(job.calls == CALLS && kstats.calls == CALLS && kstats.unknown == 0,
	      "ring 3 made %u system calls, the kernel handled %lu", job.calls, kstats.calls);
	check(job.acc == expect, "ring 3's result matches the same computation done in ring 0");
}
