/*
 * user.h - running code in ring 3 (64-bit kernels only). See user_entry.S.
 */
#ifndef RINGSIDE_USER_H
#define RINGSIDE_USER_H

#include "types.h"

/* What syscall_entry passes to the handler; registers as SYSCALL left them. */
struct syscall_frame {
	u64 nr; /* RAX */
	u64 rdi, rsi, rdx, r10, r8, r9; /* arguments, Linux order */
	u64 user_rip; /* RCX: the instruction after SYSCALL */
	u64 user_rflags; /* R11: RFLAGS before SYSCALL */
	u64 user_rsp; /* RSP: SYSCALL does not switch stacks */
	u64 entry_rflags; /* kernel RFLAGS on entry: user RFLAGS with FMASK bits cleared */
	u64 pad;
};

/* Returns the value for RAX; may also edit the frame (user_rip...). */
typedef u64 (*syscall_handler_fn)(struct syscall_frame *f);

/*
 * Enable SYSCALL/SYSRET: EFER.SCE, STAR (segments), LSTAR (entry),
 * FMASK (IF, TF, DF, AC cleared on entry), and the handler to call.
 */
void syscall_init(syscall_handler_fn handler);
#define SYSCALL_FMASK (RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_AC)

/* Run ring-3 code at rip with stack rsp until something calls user_return(). */
u64 user_enter(void *rip, void *rsp);
NORETURN void user_return(u64 value);

/*
 * Call fn(arg) in 64-bit ring 3, on user_stack_top, and return (in ring 0)
 * when fn returns. fn, arg and everything fn touches must be mapped
 * user-accessible (the boot page tables map all of the image with PTE_U).
 * fn cannot print or use I/O ports: it passes its results back through
 * memory. The way back is a #GP from a HLT at user_call_exit (user_entry.S),
 * caught by a temporary #GP handler; user.c explains why.
 */
void user_call(void (*fn)(void *arg), void *arg);

/* A 16 KiB stack for ring-3 code (reachable: the boot page tables set PTE_U). */
extern u8 user_stack_top[];

/* The kernel stack (16 KiB) used on entry from ring 3 (TSS.RSP0, SYSCALL). */
extern u8 kernel_trap_stack_top[];

#endif
