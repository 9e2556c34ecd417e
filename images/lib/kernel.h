/*
 * kernel.h - the small runtime every test kernel links against:
 * serial console, printf, checks, exit, panic, string helpers.
 *
 * Everything here is also built for 32-bit (the multiboot kernel), so it
 * must not assume long mode. 64-bit-only parts live in trap.h and user.h.
 */
#ifndef RINGSIDE_KERNEL_H
#define RINGSIDE_KERNEL_H

#include "types.h"
#include "x86.h"

/* ---- isa-debug-exit (QEMU convention: the host exits with (code << 1) | 1) ---- */
#define DEBUG_EXIT_PORT 0xf4
#define EXIT_PASS 0 /* every check passed: host exit status 1 */
#define EXIT_FAIL 1 /* at least one check failed: host exit status 3 */
#define EXIT_PANIC 2 /* unexpected exception or internal error: host exit status 5 */

/*
 * ---- serial.c: the console: COM1, a 16550 UART driven by polling ----
 * (in a paravirtual build: the pv-ops console, virtio-console; see pvops.h)
 */
void serial_init(void);
void serial_putc(char c); /* '\n' is sent as "\r\n" */
void serial_puts(const char *s);
void serial_flush(void); /* send what is buffered; wait until the transmitter is empty */
/* COM1 itself, in every build: one byte as is (no "\r\n"), and the bounded drain. */
void com1_putc(char c);
void com1_flush(void);

/* ---- printf.c: %s %c %d %i %u %x %X %p %%, with 'l'/'ll', width and '0'/'-' flags ---- */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

/* ---- check.c: one line per check, a summary line, and the exit code ---- */

/* Each kernel defines its name; it starts the summary and panic lines. */
extern const char kernel_name[];

/* Print "ok   <what>" or "FAIL <what>" and count the result; returns ok. */
bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Count a result whose line was printed elsewhere (e.g. by assembly code). */
void check_record(bool ok);
/* Number of failed checks so far. */
unsigned checks_failed(void);
/* Print "<name>: PASS (N checks)" or "<name>: FAIL (F of N checks failed)" and exit. */
NORETURN void finish(void);
/* Leave through isa-debug-exit; halts forever if the device is absent. */
NORETURN void exit(int code);
/* Print "PANIC: ..." and exit with EXIT_PANIC. */
NORETURN void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- main.c: a 64-bit kernel's entry point, called after lib setup ---- */
struct hvm_start_info;
/* Each PVH kernel defines kmain; when it returns, finish() reports and exits. */
void kmain(struct hvm_start_info *si);

/* ---- string.c (gcc may also emit calls to these) ---- */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

#endif
