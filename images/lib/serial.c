/*
 * serial.c - the console: COM1 (a 16550 UART at I/O port 0x3f8), output
 * only, polled.
 *
 * In the paravirtual build (-DPV=1) the bytes go through the pv-ops
 * console instead (lib/pvops.c: virtio-console, a line per descriptor
 * chain, so the kernel does not trap to the monitor on every byte). It
 * falls back to COM1 until pv_init has set it up, and for good if the
 * device is missing or stops completing. The "\r\n" conversion stays
 * here: the same bytes leave the kernel either way.
 */
#include "kernel.h"

#if PV
#include "pvops.h"
#endif

#define COM1 0x3f8
/* Register offsets from the base port. */
#define UART_THR 0 /* transmit holding register (write) */
#define UART_DLL 0 /* divisor latch, low byte (when LCR.DLAB = 1) */
#define UART_IER 1 /* interrupt enable */
#define UART_DLM 1 /* divisor latch, high byte (when LCR.DLAB = 1) */
#define UART_FCR 2 /* FIFO control (write) */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status */

#define LCR_8N1 0x03 /* 8 data bits, no parity, 1 stop bit */
#define LCR_DLAB 0x80 /* divisor latch access */
#define LSR_THRE 0x20 /* transmit holding register empty: may write a byte */
#define LSR_TEMT 0x40 /* transmitter completely empty */

void serial_init(void)
{
	outb(COM1 + UART_IER, 0x00); /* no interrupts: we poll */
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DLL, 0x01); /* divisor 1: 115200 baud */
	outb(COM1 + UART_DLM, 0x00);
	outb(COM1 + UART_LCR, LCR_8N1); /* also clears DLAB */
	outb(COM1 + UART_FCR, 0xc7); /* enable and clear FIFOs, 14-byte trigger */
	outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
}

void com1_putc(char c)
{
	while (!(inb(COM1 + UART_LSR) & LSR_THRE))
		;
	outb(COM1 + UART_THR, (u8)c);
}

void com1_flush(void)
{
	/* Bounded: a UART that never drains must not hang the exit path. */
	for (unsigned i = 0; i < 100000; i++)
		if (inb(COM1 + UART_LSR) & LSR_TEMT)
			return;
}

#if PV
static void put_raw(char c) { pv_ops->console_putc(c); }
#else
static void put_raw(char c) { com1_putc(c); }
#endif

void serial_putc(char c)
{
	if (c == '\n')
		put_raw('\r'); /* serial consoles expect CR LF */
	put_raw(c);
}

void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

void serial_flush(void)
{
#if PV
	pv_ops->console_flush(); /* sends a buffered partial line */
#else
	com1_flush();
#endif
}
