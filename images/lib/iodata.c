/*
 * iodata.c - the console text and disk data of the I/O workloads (iodata.h).
 */
#include "iodata.h"

/* A u64 that may alias the u8 buffers it is read from and written to. */
typedef u64 __attribute__((may_alias)) word;

/* xorshift64 */
static u64 next(u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Line n: "line NN: " then words of 2-8 lowercase letters separated by
 * spaces, padded with '.' to 62 characters, then CR LF.
 */
void io_text(u8 *out)
{
	u64 s = 0x1b873593deadbeefull;
	for (unsigned n = 0; n < IO_TEXT_LINES; n++) {
		u8 *line = out + n * IO_TEXT_LINE;
		unsigned i = 0;
		const char *head = "line ";
		while (*head)
			line[i++] = (u8)*head++;
		line[i++] = (u8)('0' + n / 10);
		line[i++] = (u8)('0' + n % 10);
		line[i++] = ':';
		while (i < IO_TEXT_LINE - 2 - 10) {
			line[i++] = ' ';
			unsigned len = 2 + (unsigned)(next(&s) % 7);
			for (unsigned k = 0; k < len; k++)
				line[i++] = (u8)('a' + next(&s) % 26);
		}
		while (i < IO_TEXT_LINE - 2)
			line[i++] = '.';
		line[i++] = '\r';
		line[i++] = '\n';
	}
}

void io_disk_data(u8 *out)
{
	u64 s = 0x9e3779b97f4a7c15ull;
	word *w = (word *)out;
	for (unsigned i = 0; i < IO_DISK_BYTES / 8; i++)
		w[i] = next(&s);
}

u64 io_sum(u64 h, const u8 *p, size_t n)
{
	const word *w = (const word *)p;
	for (size_t i = 0; i < n / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

bool io_equal(const u8 *a, const u8 *b, size_t n)
{
	const word *x = (const word *)a, *y = (const word *)b;
	for (size_t i = 0; i < n / 8; i++)
		if (x[i] != y[i])
			return false;
	return true;
}
