//! A CPU-bound kernel (SHA-256 over a buffer, then an insertion sort),
//! checked against a Rust reference, and the MIPS benchmark built on it.
//!
//! Benchmark: `cargo test -p cpu --release -- --ignored mips --nocapture`.

use super::Machine;
use crate::cpu::CpuExit;
use iced_x86::code_asm::*;
use mmu::MachineAddr;
use std::time::Instant;

const KTAB: u64 = 0x50000;
const WBUF: u64 = 0x50100;
const HST: u64 = 0x50200;
const IVTAB: u64 = 0x50300;
const REPS: u64 = 0x50400;
const MSG: u64 = 0x60000;
const ARR0: u64 = 0x100000;
const ARR: u64 = 0x140000;

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Reference SHA-256 (FIPS 180-4), written plainly.
fn sha256(msg: &[u8]) -> [u32; 8] {
    let mut data = msg.to_vec();
    let bitlen = (msg.len() as u64) * 8;
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&bitlen.to_be_bytes());
    let mut h = IV;
    for block in data.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let choose = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(choose)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for i in 0..8 {
            h[i] = h[i].wrapping_add(v[i]);
        }
    }
    h
}

/// Padded message blocks for `msg`.
fn padded(msg: &[u8]) -> Vec<u8> {
    let mut data = msg.to_vec();
    let bitlen = (msg.len() as u64) * 8;
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&bitlen.to_be_bytes());
    data
}

/// The kernel: `reps` × { H = IV; SHA-256 over `blocks` blocks at MSG;
/// ARR = ARR0; insertion-sort `n` dwords at ARR }.
fn kernel(a: &mut CodeAssembler, reps: u32, blocks: u32, n: u32) {
    let mut rep = a.create_label();
    a.mov(r15d, reps).unwrap();
    a.mov(qword_ptr(REPS), r15).unwrap();
    a.set_label(&mut rep).unwrap();
    // H = IV
    a.mov(rsi, IVTAB).unwrap();
    a.mov(rdi, HST).unwrap();
    a.mov(ecx, 8u32).unwrap();
    a.cld().unwrap();
    a.rep().movsd().unwrap();
    a.mov(rsi, MSG).unwrap();
    a.mov(ebp, blocks).unwrap();

    let mut outer = a.create_label();
    a.set_label(&mut outer).unwrap();
    // W[0..16] = big-endian words of the block
    let mut w16 = a.create_label();
    a.xor(edi, edi).unwrap();
    a.set_label(&mut w16).unwrap();
    a.mov(eax, dword_ptr(rsi + rdi * 4)).unwrap();
    a.bswap(eax).unwrap();
    a.mov(dword_ptr(rdi * 4 + WBUF), eax).unwrap();
    a.inc(edi).unwrap();
    a.cmp(edi, 16).unwrap();
    a.jne(w16).unwrap();
    // W[16..64]
    let mut w64 = a.create_label();
    a.set_label(&mut w64).unwrap();
    a.mov(eax, dword_ptr(rdi * 4 + (WBUF - 60))).unwrap();
    a.mov(ebx, eax).unwrap();
    a.ror(ebx, 7).unwrap();
    a.mov(ecx, eax).unwrap();
    a.ror(ecx, 18).unwrap();
    a.xor(ebx, ecx).unwrap();
    a.shr(eax, 3).unwrap();
    a.xor(ebx, eax).unwrap();
    a.mov(eax, dword_ptr(rdi * 4 + (WBUF - 8))).unwrap();
    a.mov(ecx, eax).unwrap();
    a.ror(ecx, 17).unwrap();
    a.mov(edx, eax).unwrap();
    a.ror(edx, 19).unwrap();
    a.xor(ecx, edx).unwrap();
    a.shr(eax, 10).unwrap();
    a.xor(ecx, eax).unwrap();
    a.add(ebx, ecx).unwrap();
    a.add(ebx, dword_ptr(rdi * 4 + (WBUF - 64))).unwrap();
    a.add(ebx, dword_ptr(rdi * 4 + (WBUF - 28))).unwrap();
    a.mov(dword_ptr(rdi * 4 + WBUF), ebx).unwrap();
    a.inc(edi).unwrap();
    a.cmp(edi, 64).unwrap();
    a.jne(w64).unwrap();
    // a..h = H
    let regs = [r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d];
    for (i, r) in regs.iter().enumerate() {
        a.mov(*r, dword_ptr(HST + 4 * i as u64)).unwrap();
    }
    let mut round = a.create_label();
    a.xor(edi, edi).unwrap();
    a.set_label(&mut round).unwrap();
    // S1(e)
    a.mov(eax, r12d).unwrap();
    a.ror(eax, 6).unwrap();
    a.mov(ebx, r12d).unwrap();
    a.ror(ebx, 11).unwrap();
    a.xor(eax, ebx).unwrap();
    a.mov(ebx, r12d).unwrap();
    a.ror(ebx, 25).unwrap();
    a.xor(eax, ebx).unwrap();
    // ch(e, f, g)
    a.mov(ebx, r12d).unwrap();
    a.and(ebx, r13d).unwrap();
    a.mov(ecx, r12d).unwrap();
    a.not(ecx).unwrap();
    a.and(ecx, r14d).unwrap();
    a.xor(ebx, ecx).unwrap();
    // t1
    a.add(eax, ebx).unwrap();
    a.add(eax, r15d).unwrap();
    a.add(eax, dword_ptr(rdi * 4 + KTAB)).unwrap();
    a.add(eax, dword_ptr(rdi * 4 + WBUF)).unwrap();
    // S0(a)
    a.mov(ebx, r8d).unwrap();
    a.ror(ebx, 2).unwrap();
    a.mov(ecx, r8d).unwrap();
    a.ror(ecx, 13).unwrap();
    a.xor(ebx, ecx).unwrap();
    a.mov(ecx, r8d).unwrap();
    a.ror(ecx, 22).unwrap();
    a.xor(ebx, ecx).unwrap();
    // maj(a, b, c)
    a.mov(ecx, r8d).unwrap();
    a.and(ecx, r9d).unwrap();
    a.mov(edx, r8d).unwrap();
    a.and(edx, r10d).unwrap();
    a.xor(ecx, edx).unwrap();
    a.mov(edx, r9d).unwrap();
    a.and(edx, r10d).unwrap();
    a.xor(ecx, edx).unwrap();
    a.add(ebx, ecx).unwrap();
    // rotate the working variables
    a.mov(r15d, r14d).unwrap();
    a.mov(r14d, r13d).unwrap();
    a.mov(r13d, r12d).unwrap();
    a.lea(r12d, dword_ptr(r11 + rax)).unwrap();
    a.mov(r11d, r10d).unwrap();
    a.mov(r10d, r9d).unwrap();
    a.mov(r9d, r8d).unwrap();
    a.lea(r8d, dword_ptr(rax + rbx)).unwrap();
    a.inc(edi).unwrap();
    a.cmp(edi, 64).unwrap();
    a.jne(round).unwrap();
    for (i, r) in regs.iter().enumerate() {
        a.add(dword_ptr(HST + 4 * i as u64), *r).unwrap();
    }
    a.add(rsi, 64).unwrap();
    a.dec(ebp).unwrap();
    a.jnz(outer).unwrap();

    // ARR = ARR0, then insertion sort (unsigned).
    a.mov(rsi, ARR0).unwrap();
    a.mov(rdi, ARR).unwrap();
    a.mov(ecx, n).unwrap();
    a.rep().movsd().unwrap();
    let mut sort_outer = a.create_label();
    let mut inner = a.create_label();
    let mut place = a.create_label();
    let mut done = a.create_label();
    a.mov(ecx, 1u32).unwrap();
    a.set_label(&mut sort_outer).unwrap();
    a.cmp(ecx, n).unwrap();
    a.jae(done).unwrap();
    a.mov(eax, dword_ptr(rcx * 4 + ARR)).unwrap();
    a.lea(rdx, qword_ptr(rcx - 1)).unwrap();
    a.set_label(&mut inner).unwrap();
    a.test(rdx, rdx).unwrap();
    a.js(place).unwrap();
    a.mov(ebx, dword_ptr(rdx * 4 + ARR)).unwrap();
    a.cmp(ebx, eax).unwrap();
    a.jbe(place).unwrap();
    a.mov(dword_ptr(rdx * 4 + (ARR + 4)), ebx).unwrap();
    a.dec(rdx).unwrap();
    a.jmp(inner).unwrap();
    a.set_label(&mut place).unwrap();
    a.mov(dword_ptr(rdx * 4 + (ARR + 4)), eax).unwrap();
    a.inc(ecx).unwrap();
    a.jmp(sort_outer).unwrap();
    a.set_label(&mut done).unwrap();
    a.dec(qword_ptr(REPS)).unwrap();
    a.jnz(rep).unwrap();
    a.hlt().unwrap();
}

/// A pseudo-random generator for test data (xorshift).
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

struct Setup {
    m: Machine,
    want_hash: [u32; 8],
    want_sorted: Vec<u32>,
}

fn setup(reps: u32, msg_len: usize, n: u32) -> Setup {
    let mut m = Machine::long64();
    let mut seed = 0x1234_5678_9abc_def0;
    let msg: Vec<u8> = (0..msg_len).map(|_| xorshift(&mut seed) as u8).collect();
    let data = padded(&msg);
    m.ram.write(MachineAddr(MSG), &data).unwrap();
    for (i, k) in K.iter().enumerate() {
        m.write(KTAB + 4 * i as u64, 4, *k as u64);
    }
    for (i, v) in IV.iter().enumerate() {
        m.write(IVTAB + 4 * i as u64, 4, *v as u64);
    }
    let arr: Vec<u32> = (0..n).map(|_| xorshift(&mut seed) as u32).collect();
    for (i, v) in arr.iter().enumerate() {
        m.write(ARR0 + 4 * i as u64, 4, *v as u64);
    }
    let blocks = (data.len() / 64) as u32;
    m.load(|a| kernel(a, reps, blocks, n));
    let mut want_sorted = arr;
    want_sorted.sort_unstable();
    Setup {
        m,
        want_hash: sha256(&msg),
        want_sorted,
    }
}

fn check(s: &Setup) {
    for (i, w) in s.want_hash.iter().enumerate() {
        assert_eq!(s.m.read(HST + 4 * i as u64, 4), *w as u64, "H[{i}]");
    }
    for (i, w) in s.want_sorted.iter().enumerate() {
        assert_eq!(s.m.read(ARR + 4 * i as u64, 4), *w as u64, "ARR[{i}]");
    }
}

#[test]
fn reference_sha256_known_answer() {
    // FIPS 180-2 example: "abc".
    assert_eq!(
        sha256(b"abc"),
        [
            0xba7816bf, 0x8f01cfea, 0x414140de, 0x5dae2223, 0xb00361a3, 0x96177a9c, 0xb410ff61,
            0xf20015ad
        ]
    );
}

#[test]
fn sha256_and_sort_kernel_is_correct() {
    let mut s = setup(2, 300, 200);
    assert_eq!(s.m.run(), CpuExit::Halted);
    check(&s);
}

/// MIPS on the kernel. Run with `--release -- --ignored mips --nocapture`.
#[test]
#[ignore]
fn mips() {
    let mut s = setup(150, 64 * 60, 600);
    let t = Instant::now();
    let mut exit;
    loop {
        exit = s.m.cpu.run(&mut s.m.plat, 20_000);
        if exit != CpuExit::Budget {
            break;
        }
    }
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(exit, CpuExit::Halted);
    check(&s);
    let n = s.m.cpu.instructions();
    println!(
        "{n} instructions in {dt:.3} s = {:.1} MIPS ({:?})",
        n as f64 / dt / 1e6,
        s.m.cpu.stats()
    );
}
