/*
 * compute - a CPU-bound benchmark: SHA-256 over a pseudo-random buffer
 * and a heapsort of 64-bit integers. Integer instructions only.
 *
 * The default work is about 380 million instructions (see README.md for
 * how that was measured); "scale=K" on the command line multiplies it
 * (K rounds of everything). The SHA-256 code is checked against FIPS
 * 180-4 test vectors first; with scale=1 the results are also compared
 * with reference values computed on the host (Python's hashlib and the
 * same generator).
 *
 * The heavy work (filling the buffer, hashing it, sorting and summing)
 * runs in 64-bit ring 3, as a user program would, through user_call()
 * (lib/user.c). Two reasons: it is what a benchmark of "plain user code"
 * should measure, and some hypervisors only run guest ring 3 natively:
 * KVM's PVM flavour emulates every guest ring-0 instruction in the host,
 * about a thousand times slower. Ring 3 cannot print (I/O ports need
 * CPL <= IOPL), so it leaves its results in a struct compute_job, and
 * ring 0 prints them before and after: the output is the same either way.
 */
#include "hvm_start_info.h"
#include "kernel.h"
#include "sha256.h"
#include "user.h"

const char kernel_name[] = "compute";

#define BUF_KIB 64 /* the hashed buffer */
#define SHA_ROUNDS 72 /* times the buffer is hashed, per unit of scale */
#define SORT_N 65536 /* integers per heapsort */
#define SORT_ROUNDS 2 /* heapsorts per unit of scale */
#define MAX_SCALE 100000

/* Results for scale=1. */
static const char REF_DIGEST[] = "799ef06b898e43246ae7772e294b0c8d3bd2ca8be010d8546f8ea0fb0e13705f";
#define REF_SORT_CHECKSUM 0x10abc10842f79689ull

static u8 buffer[BUF_KIB * 1024] ALIGNED(64);
static u64 numbers[SORT_N];

/* xorshift64* (Vigna): a small deterministic generator. */
static u64 rng_state;
static u64 rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void to_hex(const u8 *bytes, unsigned n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool sha256_matches(const char *msg, const char *expected_hex)
{
	struct sha256 s;
	u8 digest[32];
	char hex[65];
	sha256_init(&s);
	sha256_update(&s, msg, strlen(msg));
	sha256_final(&s, digest);
	to_hex(digest, 32, hex);
	return strncmp(hex, expected_hex, 64) == 0;
}

/* ---- Heapsort: in place, O(n log n) in every case ---- */
static void sift_down(u64 *a, size_t root, size_t n)
{
	for (;;) {
		size_t child = 2 * root + 1;
		if (child >= n)
			return;
		if (child + 1 < n && a[child + 1] > a[child])
			child++;
		if (a[root] >= a[child])
			return;
		u64 t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

static void heapsort(u64 *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;) /* build a max-heap */
		sift_down(a, i, n);
	for (size_t end = n; end-- > 1;) { /* move the max to the end, repeat */
		u64 t = a[0];
		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

/* "scale=K" anywhere in the command line; 1 if absent or malformed. */
static u32 parse_scale(const struct hvm_start_info *si)
{
	if (si->cmdline_paddr == 0 || si->cmdline_paddr >= 0x100000000ull)
		return 1;
	const char *p = (const char *)si->cmdline_paddr;
	for (unsigned i = 0; i < 4096 && p[i]; i++) {
		if ((i == 0 || p[i - 1] == ' ') && strncmp(p + i, "scale=", 6) == 0) {
			u32 v = 0;
			const char *d = p + i + 6;
			if (*d < '0' || *d > '9')
				return 1;
			for (; *d >= '0' && *d <= '9'; d++) {
				v = v * 10 + (u32)(*d - '0');
				if (v > MAX_SCALE)
					return MAX_SCALE;
			}
			return v ? v : 1;
		}
	}
	return 1;
}

/*
 * What ring 0 asks of ring 3 and what comes back. Everything ring 3
 * touches (this struct, buffer, numbers, rng_state, its code and stack)
 * is in the kernel image, which the boot page tables map with PTE_U.
 */
struct compute_job {
	u32 scale; /* in */
	u8 digest[32]; /* out: SHA-256 of the buffer, hashed SHA_ROUNDS * scale times */
	u64 checksum; /* out: FNV-1a style mix of all the sorted arrays */
	bool sorted; /* out: every array came out in ascending order */
};

/* Runs in ring 3 (user_call): no printing, no privileged instructions. */
static void compute_work(void *arg)
{
	struct compute_job *job = arg;

	/* ---- SHA-256 over the buffer, SHA_ROUNDS * scale times ---- */
	rng_state = 0x0123456789abcdefull;
	for (unsigned i = 0; i < sizeof(buffer); i += 8) {
		u64 r = rng_next();
		for (unsigned b = 0; b < 8; b++)
			buffer[i + b] = (u8)(r >> (8 * b));
	}
	struct sha256 s;
	sha256_init(&s);
	for (u32 r = 0; r < SHA_ROUNDS * job->scale; r++)
		sha256_update(&s, buffer, sizeof(buffer));
	sha256_final(&s, job->digest);

	/* ---- Heapsort of SORT_N random integers, SORT_ROUNDS * scale times ---- */
	u64 checksum = 0;
	bool sorted = true;
	for (u32 r = 0; r < SORT_ROUNDS * job->scale; r++) {
		for (unsigned i = 0; i < SORT_N; i++)
			numbers[i] = rng_next();
		heapsort(numbers, SORT_N);
		for (unsigned i = 0; i < SORT_N; i++) {
			if (i && numbers[i - 1] > numbers[i])
				sorted = false;
			checksum = (checksum ^ numbers[i]) * 0x100000001b3ull; /* FNV-1a style mix */
		}
	}
	job->checksum = checksum;
	job->sorted = sorted;
}

void kmain(struct hvm_start_info *si)
{
	u32 scale = parse_scale(si);
	printf("compute: SHA-256 and heapsort benchmark, scale=%u\n", scale);

	/* FIPS 180-4 examples: one block, and a message whose padding needs a second block. */
	bool ok = check(sha256_matches("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
			"SHA-256(\"abc\") matches the FIPS 180-4 test vector");
	ok &= check(sha256_matches("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
				   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
		    "SHA-256 of the 448-bit two-block test vector");
	if (!ok)
		return; /* no point benchmarking a wrong implementation */

	/* The outputs start as failures: if ring 3 never ran, the checks say so. */
	static struct compute_job job;
	job.scale = scale;
	job.sorted = false;
	user_call(compute_work, &job);

	char hex[65];
	to_hex(job.digest, 32, hex);
	printf("sha256(%u KiB buffer x %u) = %s\n", BUF_KIB, SHA_ROUNDS * scale, hex);
	check(job.sorted, "heapsort: %u x %u integers in ascending order", SORT_ROUNDS * scale, SORT_N);
	printf("sort checksum = 0x%016lx\n", job.checksum);

	if (scale == 1) {
		check(strncmp(hex, REF_DIGEST, 64) == 0, "SHA-256 digest matches the reference for scale=1");
		check(job.checksum == REF_SORT_CHECKSUM, "sort checksum matches the reference for scale=1");
	}
}
