/*
 * printf.c - a tiny printf to the serial console.
 *
 * Conversions: %s %c %d %i %u %x %X %p %%
 * Length:      l, ll (e.g. %lx, %llu)
 * Flags:       '0' (zero pad), '-' (left align); a decimal field width.
 */
#include "kernel.h"

struct spec {
	bool left; /* '-' */
	bool zero; /* '0' */
	unsigned width;
};

static int pad(unsigned n, char c)
{
	for (unsigned i = 0; i < n; i++)
		serial_putc(c);
	return (int)n;
}

/* Print s (len bytes) in a field of spec->width. */
static int emit(const struct spec *sp, const char *s, unsigned len, char padc)
{
	int n = 0;
	unsigned fill = sp->width > len ? sp->width - len : 0;
	if (!sp->left)
		n += pad(fill, padc);
	for (unsigned i = 0; i < len; i++)
		serial_putc(s[i]);
	n += (int)len;
	if (sp->left)
		n += pad(fill, ' ');
	return n;
}

/*
 * *v /= base, returning the remainder. On x86-64 this is one DIV; 32-bit
 * code has no 64-bit divide instruction (gcc would call libgcc's
 * __udivdi3, which we do not link), so divide bit by bit there.
 */
static unsigned divmod(unsigned long long *v, unsigned base)
{
#ifdef __x86_64__
	unsigned r = (unsigned)(*v % base);
	*v /= base;
	return r;
#else
	unsigned long long q = 0;
	unsigned r = 0;
	for (int bit = 63; bit >= 0; bit--) {
		r = (r << 1) | (unsigned)((*v >> bit) & 1);
		if (r >= base) {
			r -= base;
			q |= 1ull << bit;
		}
	}
	*v = q;
	return r;
#endif
}

static int emit_number(const struct spec *sp, unsigned long long v, unsigned base, bool upper,
		       bool negative)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char buf[24];
	unsigned i = sizeof(buf);
	do {
		buf[--i] = digits[divmod(&v, base)];
	} while (v);
	if (negative) {
		if (sp->zero && !sp->left && sp->width) {
			/* "-0042": sign before the zero padding */
			struct spec rest = *sp;
			serial_putc('-');
			rest.width = sp->width ? sp->width - 1 : 0;
			return 1 + emit(&rest, buf + i, (unsigned)(sizeof(buf) - i), '0');
		}
		buf[--i] = '-';
	}
	return emit(sp, buf + i, (unsigned)(sizeof(buf) - i), sp->zero && !sp->left ? '0' : ' ');
}

int vprintf(const char *fmt, va_list ap)
{
	int n = 0;
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			serial_putc(*fmt);
			n++;
			continue;
		}
		fmt++;
		struct spec sp = { false, false, 0 };
		for (;; fmt++) {
			if (*fmt == '-')
				sp.left = true;
			else if (*fmt == '0')
				sp.zero = true;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			sp.width = sp.width * 10 + (unsigned)(*fmt++ - '0');
		unsigned longs = 0;
		while (*fmt == 'l') {
			longs++;
			fmt++;
		}

		unsigned long long u;
		long long s;
		switch (*fmt) {
		case 'd':
		case 'i':
			s = longs >= 2 ? va_arg(ap, long long) : longs ? va_arg(ap, long) : va_arg(ap, int);
			u = s < 0 ? 0ull - (unsigned long long)s : (unsigned long long)s;
			n += emit_number(&sp, u, 10, false, s < 0);
			break;
		case 'u':
		case 'x':
		case 'X':
			u = longs >= 2 ? va_arg(ap, unsigned long long)
			    : longs   ? va_arg(ap, unsigned long)
				      : va_arg(ap, unsigned int);
			n += emit_number(&sp, u, *fmt == 'u' ? 10 : 16, *fmt == 'X', false);
			break;
		case 'p':
			serial_puts("0x");
			n += 2 + emit_number(&sp, (unsigned long)va_arg(ap, void *), 16, false, false);
			break;
		case 'c': {
			char c = (char)va_arg(ap, int);
			n += emit(&sp, &c, 1, ' ');
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			n += emit(&sp, str, (unsigned)strlen(str), ' ');
			break;
		}
		case '%':
			serial_putc('%');
			n++;
			break;
		case '\0':
			return n; /* a lone '%' at the end */
		default: /* unknown: print it as is */
			serial_putc('%');
			serial_putc(*fmt);
			n += 2;
			break;
		}
	}
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
