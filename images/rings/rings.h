/* rings.h - the protocol between the ring-3 program (user_program.S) and the kernel (rings.c). */
#ifndef RINGS_H
#define RINGS_H

/* System call numbers (RAX). */
#define SYS_REPORT_CS 1 /* rdi = CS as seen by ring 3 */
#define SYS_PROBE 2 /* made with CF and DF set: the kernel inspects the frame */
#define SYS_AFTER_SYSRET 3 /* rdi = RAX, rsi = CS, rdx = RFLAGS, r10 = SS after SYSRET */
#define SYS_FAULT_DONE 4 /* rdi = TEST_*: the expected fault happened (or not) */
#define SYS_REPORT_INT80 5 /* rdi = RAX after INT 0x80 */
#define SYS_EXIT 6 /* rdi = value for user_enter() to return */

#define USER_PROBE_RFLAGS 0x403 /* CF | DF | the always-1 bit: set by POPF before SYS_PROBE */
#define PROBE_RESULT 0x5ca11 /* SYS_PROBE's return value */
#define INT80_IN 41 /* RAX given to INT 0x80 ... */
#define INT80_OUT 42 /* ... and what its handler returns */
#define USER_DONE 0x600d /* SYS_EXIT argument at the end of the program */

/* The privileged operations ring 3 tries. */
#define TEST_HLT 1
#define TEST_MOV_CR3 2
#define TEST_CLI 3
#define TEST_INT81 4

#endif
