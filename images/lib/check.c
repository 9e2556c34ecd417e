/*
 * check.c - test bookkeeping, exit and panic.
 */
#include "kernel.h"

static unsigned n_checks, n_failed;

void check_record(bool ok)
{
	n_checks++;
	if (!ok)
		n_failed++;
}

bool check(bool ok, const char *fmt, ...)
{
	va_list ap;
	serial_puts(ok ? "ok   " : "FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	serial_putc('\n');
	check_record(ok);
	return ok;
}

unsigned checks_failed(void)
{
	return n_failed;
}

void finish(void)
{
	if (n_failed == 0 && n_checks > 0) {
		printf("%s: PASS (%u check%s)\n", kernel_name, n_checks, n_checks == 1 ? "" : "s");
		exit(EXIT_PASS);
	}
	printf("%s: FAIL (%u of %u checks failed)\n", kernel_name, n_failed, n_checks);
	exit(EXIT_FAIL);
}

void exit(int code)
{
	serial_flush();
	/* QEMU's isa-debug-exit (and ringside) stop here: host status (code << 1) | 1. */
	outl(DEBUG_EXIT_PORT, (u32)code);
	/* No debug-exit device: stop the CPU. */
	for (;;)
		__asm__ volatile("cli; hlt");
}

void panic(const char *fmt, ...)
{
	static bool in_panic;
	va_list ap;
	if (in_panic) /* a fault while printing the panic message */
		exit(EXIT_PANIC);
	in_panic = true;
	printf("PANIC: %s: ", kernel_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	serial_putc('\n');
	exit(EXIT_PANIC);
}
