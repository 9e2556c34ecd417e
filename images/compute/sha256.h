/* sha256.h - SHA-256 (FIPS 180-4), integer-only. */
#ifndef SHA256_H
#define SHA256_H

#include "types.h"

struct sha256 {
	u32 h[8]; /* chaining state */
	u8 block[64]; /* pending input */
	u32 fill; /* bytes in block */
	u64 length; /* total bytes hashed */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, u8 digest[32]);

#endif
