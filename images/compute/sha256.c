/*
 * sha256.c - SHA-256 as specified in FIPS 180-4, section 6.2.
 * Written for clarity; uses only 32-bit integer operations.
 */
#include "kernel.h"
#include "sha256.h"

/* First 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const u32 K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline u32 rotr(u32 x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

/* Process one 64-byte block (FIPS 180-4, 6.2.2). */
static void compress(u32 h[8], const u8 *p)
{
	u32 w[64];
	for (int t = 0; t < 16; t++)
		w[t] = (u32)p[4 * t] << 24 | (u32)p[4 * t + 1] << 16 | (u32)p[4 * t + 2] << 8 | p[4 * t + 3];
	for (int t = 16; t < 64; t++) {
		u32 s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
		u32 s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
		w[t] = w[t - 16] + s0 + w[t - 7] + s1;
	}

	u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (int t = 0; t < 64; t++) {
		u32 S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
		u32 ch = (e & f) ^ (~e & g);
		u32 t1 = hh + S1 + ch + K[t] + w[t];
		u32 S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
		u32 maj = (a & b) ^ (a & c) ^ (b & c);
		u32 t2 = S0 + maj;
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += hh;
}

void sha256_init(struct sha256 *s)
{
	/* First 32 bits of the fractional parts of the square roots of the first 8 primes. */
	static const u32 H0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	for (int i = 0; i < 8; i++)
		s->h[i] = H0[i];
	s->fill = 0;
	s->length = 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const u8 *p = data;
	s->length += len;
	if (s->fill) { /* top up a partial block first */
		while (len && s->fill < 64) {
			s->block[s->fill++] = *p++;
			len--;
		}
		if (s->fill < 64)
			return;
		compress(s->h, s->block);
		s->fill = 0;
	}
	for (; len >= 64; len -= 64, p += 64) /* whole blocks straight from the input */
		compress(s->h, p);
	while (len--)
		s->block[s->fill++] = *p++;
}

void sha256_final(struct sha256 *s, u8 digest[32])
{
	/* Padding: 0x80, zeros, then the length in bits as a 64-bit big-endian number. */
	u64 bits = s->length * 8;
	s->block[s->fill++] = 0x80;
	if (s->fill > 56) {
		while (s->fill < 64)
			s->block[s->fill++] = 0;
		compress(s->h, s->block);
		s->fill = 0;
	}
	while (s->fill < 56)
		s->block[s->fill++] = 0;
	for (int i = 0; i < 8; i++)
		s->block[56 + i] = (u8)(bits >> (56 - 8 * i));
	compress(s->h, s->block);
	for (int i = 0; i < 8; i++) {
		digest[4 * i] = (u8)(s->h[i] >> 24);
		digest[4 * i + 1] = (u8)(s->h[i] >> 16);
		digest[4 * i + 2] = (u8)(s->h[i] >> 8);
		digest[4 * i + 3] = (u8)s->h[i];
	}
}
