//! Instruction fetch and the decoded-block cache.
//!
//! Decoding x86 is the expensive part of an interpreter, so each run of
//! straight-line code is decoded once (by iced-x86) into a *block*: a list of
//! decoded instructions, each paired with its semantic function chosen at
//! decode time. The run loop then only walks the list.
//!
//! * Key: the machine address of the first byte, the RIP it was decoded at
//!   (iced folds RIP into branch targets and RIP-relative displacements)
//!   and the code size (16/32/64), which is everything that changes what
//!   the bytes decode to. Keying by machine address means a block survives
//!   CR3 switches and is shared by every mapping of its page.
//! * A block ends after a control transfer, a system instruction, an
//!   invalid or unimplemented one, at the end of its 4 KiB page (an
//!   instruction that crosses a page is never cached: it runs through
//!   [`Cpu::fetch_decode`], which translates both pages every time), at the
//!   CS limit, or after [`MAX_BLOCK_INSNS`].
//! * Self-modifying code: a page holding a block is a *code page*. Its TLB
//!   entries lose their write fast path ([`mmu::Tlb::revoke_write`]), so
//!   every write to it reaches the slow path, which drops the page's blocks
//!   ([`Cpu::invalidate_code`]) and ends the current block.

use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::memory::{Phys, PAGE_SIZE};
use crate::platform::Platform;
use crate::state::CpuState;
use iced_x86::{Decoder, DecoderError, DecoderOptions, Instruction};
use mmu::MachineAddr;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Longest block, in instructions.
pub(crate) const MAX_BLOCK_INSNS: usize = 64;
/// Blocks kept before the whole cache is dropped and refilled.
const MAX_BLOCKS: usize = 1 << 16;
/// Direct-mapped lookup front (a power of two).
const FAST_SIZE: usize = 4096;
/// The architectural maximum instruction length.
pub(crate) const MAX_INSN_LEN: usize = 15;

/// One decoded instruction and its semantic function.
#[derive(Clone)]
pub(crate) struct DecodedInsn {
    pub insn: Instruction,
    pub handler: Handler,
}

/// Identity of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BlockKey {
    pub ma: u64,
    pub rip: u64,
    pub bits: u32,
}

/// A cached successor of a block: "if RIP is `rip` after this block, the
/// next block is `id`". Valid while the target's generation and the
/// cache's epoch are unchanged.
#[derive(Clone, Copy)]
struct Link {
    rip: u64,
    id: u32,
    gen: u32,
    epoch: u32,
}

/// Link slots per block.
const LINKS: usize = 4;

#[inline(always)]
fn link_slot(rip: u64) -> usize {
    ((rip ^ (rip >> 6)) as usize) & (LINKS - 1)
}

const NO_LINK: Link = Link {
    rip: u64::MAX,
    id: 0,
    gen: 0,
    epoch: u32::MAX,
};

struct Slot {
    key: BlockKey,
    /// Empty while the block executes (the run loop holds the list).
    insns: Vec<DecodedInsn>,
    /// RIP just past the last instruction (for the CS-limit recheck).
    end_rip: u64,
    /// IP wrap mask of the block's code size.
    ip_mask: u64,
    /// Successors, direct-mapped by exit RIP (a block can leave at its end
    /// or through any taken conditional branch inside it).
    links: [Link; LINKS],
    /// Bumped whenever the slot is freed: a run loop holding the list of a
    /// freed block sees the mismatch and drops it instead of putting it back.
    gen: u32,
    live: bool,
}

#[derive(Clone, Copy)]
struct FastEntry {
    key: BlockKey,
    id: u32,
}

const EMPTY_FAST: FastEntry = FastEntry {
    key: BlockKey {
        ma: u64::MAX,
        rip: 0,
        bits: 0,
    },
    id: 0,
};

/// Multiply-xor hasher for block keys (the std SipHash is needlessly slow
/// and the keys are not attacker-chosen hash-flooding material: a guest
/// can at worst slow its own lookups).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// The decoded-block cache.
pub(crate) struct BlockCache {
    slots: Vec<Slot>,
    free: Vec<u32>,
    map: FastMap<BlockKey, u32>,
    fast: Box<[FastEntry]>,
    /// Slot ids of the blocks in each code page (machine page address).
    page_blocks: FastMap<u64, Vec<u32>>,
    /// One bit per machine page of RAM: the page holds decoded code.
    code_bits: Vec<u64>,
    /// Bumped whenever a link could become wrong without its target being
    /// dropped: TLB flushes (the RIP → machine address map changed), system
    /// instructions and event delivery (CPL, CS, the code size, the CS
    /// limit may have changed).
    epoch: u32,
    /// Generation numbers handed to new blocks (never reused, so a stale
    /// (id, generation) pair can not match a later block in the same slot).
    next_gen: u32,
}

#[inline(always)]
fn fast_index(ma: u64) -> usize {
    ((ma ^ (ma >> 12)) as usize) & (FAST_SIZE - 1)
}

impl BlockCache {
    pub fn new(ram_size: u64) -> Self {
        let pages = ram_size.div_ceil(PAGE_SIZE) as usize;
        BlockCache {
            slots: Vec::new(),
            free: Vec::new(),
            map: FastMap::default(),
            fast: vec![EMPTY_FAST; FAST_SIZE].into_boxed_slice(),
            page_blocks: FastMap::default(),
            code_bits: vec![0; pages.div_ceil(64)],
            epoch: 0,
            next_gen: 1,
        }
    }

    /// Invalidate every block-to-block link (see `epoch`).
    #[inline(always)]
    pub fn new_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// The block that follows block `from` (generation `gen`) when RIP is
    /// `rip`, if a still-valid link says so. Generations are never reused
    /// and a dropped slot has generation 0, so a matching generation proves
    /// the target is the live block the link was made to (whose key has
    /// this RIP); the epoch proves RIP still maps to its machine address.
    #[inline(always)]
    pub fn follow(&self, from: u32, gen: u32, rip: u64) -> Option<u32> {
        let s = self.slots.get(from as usize)?;
        let l = s.links[link_slot(rip)];
        if l.rip != rip || l.epoch != self.epoch || s.gen != gen {
            return None;
        }
        match self.slots.get(l.id as usize) {
            Some(t) if t.gen == l.gen => Some(l.id),
            _ => None,
        }
    }

    /// Record that block `to` follows block `from` (generation `gen`) at
    /// `rip`.
    #[inline(always)]
    pub fn link(&mut self, from: u32, gen: u32, rip: u64, to: u32) {
        let to_gen = match self.slots.get(to as usize) {
            Some(t) if t.live => t.gen,
            _ => return,
        };
        let epoch = self.epoch;
        if let Some(s) = self.slots.get_mut(from as usize) {
            if s.gen == gen && s.live {
                s.links[link_slot(rip)] = Link {
                    rip,
                    id: to,
                    gen: to_gen,
                    epoch,
                };
            }
        }
    }

    /// Drop every block.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.new_epoch();
        self.free.clear();
        self.map.clear();
        self.fast.fill(EMPTY_FAST);
        self.page_blocks.clear();
        self.code_bits.fill(0);
    }

    /// Does the machine page at `ma_page` hold decoded code?
    #[inline(always)]
    pub fn is_code_page(&self, ma_page: u64) -> bool {
        let p = (ma_page >> 12) as usize;
        match self.code_bits.get(p / 64) {
            Some(w) => w & (1 << (p % 64)) != 0,
            None => false,
        }
    }

    /// Mark a page as holding code; true if it was not before.
    fn mark_code_page(&mut self, ma_page: u64) -> bool {
        let p = (ma_page >> 12) as usize;
        match self.code_bits.get_mut(p / 64) {
            Some(w) => {
                let was = *w & (1 << (p % 64)) != 0;
                *w |= 1 << (p % 64);
                !was
            }
            None => false,
        }
    }

    /// Find a block.
    #[inline(always)]
    pub fn lookup(&mut self, key: BlockKey) -> Option<u32> {
        let fi = fast_index(key.ma);
        let e = self.fast[fi];
        if e.key == key {
            return Some(e.id);
        }
        let id = *self.map.get(&key)?;
        self.fast[fi] = FastEntry { key, id };
        Some(id)
    }

    /// RIP past the end of block `id`.
    #[inline(always)]
    pub fn end_rip(&self, id: u32) -> u64 {
        self.slots.get(id as usize).map_or(0, |s| s.end_rip)
    }

    /// Take the instruction list of block `id` to execute it; give it back
    /// with [`BlockCache::put_back`].
    #[inline(always)]
    pub fn take(&mut self, id: u32) -> (Vec<DecodedInsn>, u32, u64) {
        match self.slots.get_mut(id as usize) {
            Some(s) => (std::mem::take(&mut s.insns), s.gen, s.ip_mask),
            None => (Vec::new(), u32::MAX, 0),
        }
    }

    /// Return a block's list after execution, unless the block was dropped
    /// meanwhile (self-modifying code).
    #[inline(always)]
    pub fn put_back(&mut self, id: u32, gen: u32, insns: Vec<DecodedInsn>) {
        if let Some(s) = self.slots.get_mut(id as usize) {
            if s.gen == gen && s.live {
                s.insns = insns;
            }
        }
    }

    /// Add a block. Returns its id and whether its page just became a code
    /// page (the caller then revokes the page's TLB write rights).
    fn insert(&mut self, key: BlockKey, insns: Vec<DecodedInsn>, end_rip: u64) -> (u32, bool) {
        if self.map.len() >= MAX_BLOCKS {
            self.clear();
        }
        let slot = Slot {
            key,
            insns,
            end_rip,
            ip_mask: ip_mask(key.bits),
            links: [NO_LINK; LINKS],
            gen: self.next_gen,
            live: true,
        };
        self.next_gen = self.next_gen.wrapping_add(1).max(1);
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, id);
        self.fast[fast_index(key.ma)] = FastEntry { key, id };
        let page = key.ma & !(PAGE_SIZE - 1);
        self.page_blocks.entry(page).or_default().push(id);
        let newly = self.mark_code_page(page);
        (id, newly)
    }

    /// Drop every block in the machine page at `ma_page`; returns how many.
    pub fn invalidate_page(&mut self, ma_page: u64) -> u64 {
        let page = ma_page & !(PAGE_SIZE - 1);
        if !self.is_code_page(page) {
            return 0;
        }
        let p = (page >> 12) as usize;
        if let Some(w) = self.code_bits.get_mut(p / 64) {
            *w &= !(1 << (p % 64));
        }
        let Some(ids) = self.page_blocks.remove(&page) else {
            return 0;
        };
        let mut n = 0;
        for id in ids {
            let Some(s) = self.slots.get_mut(id as usize) else {
                continue;
            };
            if !s.live || s.key.ma & !(PAGE_SIZE - 1) != page {
                continue;
            }
            s.live = false;
            s.gen = 0;
            s.insns = Vec::new();
            let key = s.key;
            self.map.remove(&key);
            let fi = fast_index(key.ma);
            if self.fast[fi].key == key {
                self.fast[fi] = EMPTY_FAST;
            }
            self.free.push(id);
            n += 1;
        }
        n
    }
}

/// Where the next instruction comes from.
pub(crate) enum Fetch {
    /// A cached (or freshly decoded) block.
    Block(u32),
    /// Execute one instruction without the cache (page-crossing or
    /// non-RAM code).
    Uncached,
}

/// The IP mask for a code size: IP wraps at 64 KiB in 16-bit code and
/// EIP at 4 GiB in 32-bit code.
#[inline(always)]
pub(crate) fn ip_mask(bits: u32) -> u64 {
    match bits {
        16 => 0xffff,
        32 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// The code size used to decode at the current state.
#[inline(always)]
pub(crate) fn code_bits(s: &CpuState) -> u32 {
    s.code_bitness()
}

impl Cpu {
    /// How many code bytes may be fetched at `rip` under the CS limit
    /// (#GP(0) if none), and the linear address of `rip`.
    #[inline(always)]
    fn code_window(&self, rip: u64, bits: u32) -> Result<(u64, u64), Fault> {
        if bits == 64 {
            if !crate::memory::canonical(rip) {
                return Err(Fault::gp0());
            }
            return Ok((rip, u64::MAX));
        }
        let cs = self.state.cs();
        let limit = cs.limit as u64;
        if rip > limit {
            return Err(Fault::gp0());
        }
        Ok(((cs.base.wrapping_add(rip)) & 0xffff_ffff, limit + 1 - rip))
    }

    /// Find or build the block at the current RIP.
    #[inline]
    pub(crate) fn next_block(&mut self) -> Result<Fetch, Fault> {
        let bits = code_bits(&self.state);
        let rip = self.state.rip;
        let (lin, window) = self.code_window(rip, bits)?;
        let ma = match self.fetch_translate(lin)? {
            Phys::Ram(ma) => ma,
            Phys::Mmio(_) => return Ok(Fetch::Uncached),
        };
        let key = BlockKey { ma, rip, bits };
        if let Some(id) = self.blocks.lookup(key) {
            // A block decoded under a larger CS limit may reach past the
            // current one: take the careful path then.
            if bits == 64 || self.blocks.end_rip(id) - rip <= window {
                return Ok(Fetch::Block(id));
            }
            return Ok(Fetch::Uncached);
        }
        Ok(self.build_block(key, lin, window))
    }

    /// Decode a block at `key` (its linear address is `lin`).
    #[inline(never)]
    fn build_block(&mut self, key: BlockKey, lin: u64, window: u64) -> Fetch {
        let in_page = PAGE_SIZE - (lin & (PAGE_SIZE - 1));
        let avail = in_page.min(window) as usize;
        let ram = Arc::clone(&self.ram);
        let start = key.ma as usize;
        let Some(bytes) = ram.as_slice().get(start..start + avail) else {
            return Fetch::Uncached;
        };
        let mut dec = Decoder::with_ip(key.bits, bytes, key.rip, DecoderOptions::NONE);
        let mask = ip_mask(key.bits);
        let mut insns = Vec::with_capacity(16);
        let mut insn = Instruction::default();
        let mut end_rip = key.rip;
        while dec.can_decode() {
            dec.decode_out(&mut insn);
            if dec.last_error() == DecoderError::NoMoreBytes {
                // Runs past the page or the CS limit: the uncached path
                // fetches (and faults) byte-exactly.
                break;
            }
            let sel = crate::exec::select_for(self, &insn);
            end_rip = insn.next_ip();
            insns.push(DecodedInsn {
                insn,
                handler: sel.handler,
            });
            if sel.ends_block
                || insns.len() >= MAX_BLOCK_INSNS
                || insn.next_ip() & mask != insn.next_ip()
            {
                break;
            }
        }
        if insns.is_empty() {
            return Fetch::Uncached;
        }
        self.stats.blocks_decoded += 1;
        let (id, newly_code) = self.blocks.insert(key, insns, end_rip);
        if newly_code {
            self.tlb
                .revoke_write(MachineAddr(key.ma & !(PAGE_SIZE - 1)));
        }
        Fetch::Block(id)
    }

    /// Fetch and decode one instruction at the current RIP without the
    /// cache: the instruction may cross into a second page (whose #PF
    /// reports CR2 = that page's first byte) or lie in non-RAM memory.
    /// #GP(0) past the CS limit or beyond 15 bytes.
    pub(crate) fn fetch_decode(&mut self, plat: &mut dyn Platform) -> Result<Instruction, Fault> {
        let bits = code_bits(&self.state);
        let rip = self.state.rip;
        let (lin, window) = self.code_window(rip, bits)?;
        let mut buf = [0u8; MAX_INSN_LEN];
        let in_page = (PAGE_SIZE - (lin & (PAGE_SIZE - 1))) as usize;
        let window = window.min(MAX_INSN_LEN as u64) as usize;
        let n1 = in_page.min(window);
        let p1 = self.fetch_translate(lin)?;
        self.fetch_bytes(plat, p1, &mut buf[..n1]);
        let mut insn = decode_one(bits, &buf[..n1], rip);
        let mut n = n1;
        if insn.1 == DecoderError::NoMoreBytes && n1 < window {
            // The instruction continues on the next page.
            let lin2 = lin.wrapping_add(in_page as u64) & self.lin_mask();
            let p2 = self.fetch_translate(lin2)?;
            let n2 = window - n1;
            self.fetch_bytes(plat, p2, &mut buf[n1..n1 + n2]);
            n = n1 + n2;
            insn = decode_one(bits, &buf[..n], rip);
        }
        match insn.1 {
            DecoderError::None => Ok(insn.0),
            // Out of bytes: either the CS limit cut the instruction, or it
            // is longer than 15 bytes. Both are #GP(0).
            DecoderError::NoMoreBytes => Err(Fault::gp0()),
            _ if n >= MAX_INSN_LEN && insn.0.len() >= MAX_INSN_LEN => Err(Fault::gp0()),
            // Invalid: let the handler (#UD) run so the fault comes from
            // the normal path.
            _ => Ok(insn.0),
        }
    }
}

fn decode_one(bits: u32, bytes: &[u8], rip: u64) -> (Instruction, DecoderError) {
    let mut dec = Decoder::with_ip(bits, bytes, rip, DecoderOptions::NONE);
    let insn = dec.decode();
    (insn, dec.last_error())
}

use std::sync::Arc;
