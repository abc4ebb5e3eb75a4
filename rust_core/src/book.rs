//! The L2 book: price levels as exact scaled integers.
//!
//! Each side maps a price to a *key* that grows away from the best price (asks: the price;
//! bids: `!price`, bitwise not, which reverses order and, unlike negation, is total over i64).
//! Keys near the best live in a dense *ladder*: a window of `WINDOW` slots, one per price tick,
//! holding sizes, with a two-level occupancy bitmap. Setting a level there is O(1); finding the
//! next best after the best is deleted is a bit scan. Keys beyond the window on the worse side
//! live in a hash map (`far.rs`: O(1) to update, sorted only when read in order). A key better
//! than the window re-centres it, as does an empty window with levels still outside, so the
//! best level is always in the ladder and reading it is O(1).
//!
//! A batch (`set_columns`, `apply_levels`) keeps the best slot as a lower bound
//! while it writes and finds the exact best once at its end.
//!
//! The tick is learnt, never trusted: a snapshot sets it to the gcd of its price gaps, and a
//! price that falls between two slots shrinks it (to the gcd again) and re-lays the ladder, so
//! a wrong guess costs one re-layout, never a wrong book. A slot per tick instead of per raw
//! unit matters: BTCUSDT futures quote 0.10 at 2 decimals, so a per-unit ladder would be 90%
//! empty slots, ten times the cache footprint and a tenth of the price range.

#[cfg(test)]
use std::collections::BTreeMap;

use crate::far::FarLevels;
use crate::fixed::{check_scale, pow10, FixedError};

/// Ladder slots (ticks) per side: 13,107.2 USD of BTCUSDT at its 0.10 tick; the re-centre
/// leaves a quarter of it for better prices. Measured before ticks were learnt: a 2^20 window
/// was slower on the recording (page faults and TLB misses outweigh the fewer far updates);
/// with ticks, 2^15 and 2^16 were no faster.
pub const WINDOW: usize = 1 << 17;
/// Largest tick the ladder uses (in raw units). Above it the exact-division test in `slot`
/// would no longer tell off-tick keys apart; a gcd that large falls back to a tick of 1.
pub const MAX_TICK: i64 = 1 << 40;
/// A batch's runs of one side shorter than this go level by level: setting up the run loop
/// costs more than it saves. A batch whose runs are shorter than this on average is split by
/// side first (with sides in random order, run by run, a batch was twice as slow as `set`).
const SHORT_RUN: usize = 8;
const WORDS: usize = WINDOW / 64;
const SUMMARY: usize = WORDS / 64;

/// A zeroed array on the heap (built as a Vec: `Box::new([0; N])` would go through the stack).
fn zeroed<T: Copy + Default, const N: usize>() -> Box<[T; N]> {
    vec![T::default(); N].into_boxed_slice().try_into().unwrap_or_else(|_| unreachable!("length is N"))
}

/// Write one ladder slot: the size, its occupancy bit, the summary bit, the level count, and
/// `best` as a lower bound (see `BookSide::set_in_window`).
#[inline(always)]
fn write_slot(
    sizes: &mut [i64; WINDOW],
    bits: &mut [u64; WORDS],
    summary: &mut [u64; SUMMARY],
    (in_ladder, best): (&mut usize, &mut usize),
    slot: usize,
    size: i64,
) {
    // The occupancy bit says whether the slot held a level, so the old size is never read:
    // the store to a cold ladder line does not stall the loop the way a load does.
    sizes[slot] = size;
    let live = (size != 0) as u64;
    let (w, bit) = (slot >> 6, 1u64 << (slot & 63));
    let was = bits[w];
    let word = (was & !bit) | (bit * live);
    bits[w] = word;
    // The summary changes only when a whole word of 64 ticks empties or fills: rare, so a
    // branch here is predictable, and it keeps every update off one shared summary word (a
    // read-modify-write chain through memory from each update to the next).
    if (was == 0) != (word == 0) {
        summary[w >> 6] ^= 1u64 << (w & 63);
    }
    *in_ladder = *in_ladder + live as usize - ((was >> (slot & 63)) & 1) as usize;
    let lower = slot.min(*best);
    *best = if live != 0 { lower } else { *best };
}

/// A level beyond the ladder window, out of line: the batch loop stays small.
#[inline(never)]
fn set_far(outside: &mut FarLevels, key: i64, size: i64) {
    outside.set(key, size);
}

/// Length of the run at the start of `sides` (nonzero = bid) that is all on side `bid`.
/// Eight bytes a step: a byte-at-a-time scan cost a tenth of the whole batch.
/// How often consecutive levels change side (any nonzero byte is a bid).
fn side_switches(sides: &[u8]) -> usize {
    sides.windows(2).map(|w| ((w[0] != 0) != (w[1] != 0)) as usize).sum()
}

fn run_len(sides: &[u8], bid: bool) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut done = 0;
    for chunk in sides.chunks_exact(8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        // Bytes that end the run: for bids the zero bytes (the classic has-a-zero-byte test,
        // exact for the lowest one), for asks the nonzero ones.
        let stop = if bid { v.wrapping_sub(ONES) & !v & HIGHS } else { v };
        if stop != 0 {
            return done + stop.trailing_zeros() as usize / 8;
        }
        done += 8;
    }
    let rest = &sides[done..];
    done + rest.iter().position(|&x| (x != 0) != bid).unwrap_or(rest.len())
}

/// Greatest common divisor (binary; gcd(0, x) = x).
fn gcd(mut a: u128, mut b: u128) -> u128 {
    if a == 0 || b == 0 {
        return a | b;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// The gcd of the gaps between `prices`: the coarsest tick they all sit on. None with fewer
/// than two distinct prices.
pub fn tick_of(prices: impl IntoIterator<Item = i64>) -> Option<i64> {
    let mut prices = prices.into_iter();
    let first = prices.next()? as i128;
    let g = prices.fold(0u128, |g, p| gcd(g, (p as i128 - first).unsigned_abs()));
    i64::try_from(g).ok().filter(|&g| g > 0)
}

/// One side of the book.
#[derive(Debug, Clone)]
pub struct BookSide {
    /// `key = price ^ key_mask`: -1 (all ones) for bids, so the key is `!price`; 0 for asks.
    key_mask: i64,
    /// Key of slot 0. The window never wraps: `base + (WINDOW - 1) * tick <= i64::MAX`.
    base: i64,
    /// Raw price units per slot, `1..=MAX_TICK`. Every ladder key is `base + slot * tick`.
    tick: i64,
    /// `tick = odd << tick_shift`; `tick_inv` is the odd part's inverse mod 2^64 (see `slot`).
    tick_shift: u32,
    tick_inv: u64,
    // Fixed-size arrays, so a slot below WINDOW needs no bounds check.
    sizes: Box<[i64; WINDOW]>,
    bits: Box<[u64; WORDS]>,
    /// Bit w set iff `bits[w] != 0`.
    summary: Box<[u64; SUMMARY]>,
    in_ladder: usize,
    /// Levels with keys >= base + WINDOW * tick (worse than the window).
    outside: FarLevels,
    /// Slot of the best level when `in_ladder > 0`. Inside a batch (`set_lazy`) it is only a
    /// lower bound of the occupied slots, and the window may be empty with levels outside;
    /// `settle` restores both, and every public method leaves the side settled.
    best_slot: usize,
}

impl BookSide {
    pub fn new(is_bid: bool) -> Self {
        BookSide {
            key_mask: -(is_bid as i64),
            base: 0,
            tick: 1,
            tick_shift: 0,
            tick_inv: 1,
            sizes: zeroed(),
            bits: zeroed(),
            summary: zeroed(),
            in_ladder: 0,
            outside: FarLevels::default(),
            best_slot: 0,
        }
    }

    /// Price → key, and key → price (the same involution).
    #[inline(always)]
    fn key(&self, price: i64) -> i64 {
        price ^ self.key_mask
    }

    pub fn is_bid(&self) -> bool {
        self.key_mask != 0
    }

    /// Slot of `key` if it falls in the window and on a tick.
    #[inline(always)]
    fn slot(&self, key: i64) -> Option<usize> {
        // Exact division by multiplication (Granlund–Montgomery): for u64 `off`,
        // rotr(off * inv(odd), shift) equals off / tick when tick divides off, and exceeds
        // u64::MAX / tick otherwise. As tick <= MAX_TICK, u64::MAX / tick >= WINDOW, so one
        // compare tests "on a tick" and "in the window"; a key below base wraps to a huge
        // `off`, and fails it too. No division on the hot path.
        let off = key.wrapping_sub(self.base) as u64;
        let q = off.wrapping_mul(self.tick_inv).rotate_right(self.tick_shift);
        (q < WINDOW as u64).then_some(q as usize)
    }

    /// Key of a ladder slot.
    #[inline(always)]
    fn slot_key(&self, slot: usize) -> i64 {
        self.base + slot as i64 * self.tick
    }

    /// The price units per ladder slot.
    pub fn tick(&self) -> i64 {
        self.tick
    }

    /// Width of the window in key units.
    fn span(&self) -> i128 {
        WINDOW as i128 * self.tick as i128
    }

    /// Use `tick` raw units per slot from now on (1 if it is out of range). Levels already in
    /// the book are re-laid; any that fall between the new ticks shrink it to their gcd.
    pub fn set_tick(&mut self, tick: i64) {
        let best = self.best_key();
        let levels = self.drain_ladder();
        self.set_tick_params(tick);
        match best {
            Some(best) => self.lay_out(best, levels),
            None => self.base = 0, // keeps "the window never wraps" for any tick
        }
    }

    fn set_tick_params(&mut self, tick: i64) {
        let tick = if (1..=MAX_TICK).contains(&tick) { tick } else { 1 };
        let shift = tick.trailing_zeros();
        let odd = (tick >> shift) as u64;
        // Newton's iteration for the inverse mod 2^64: each step doubles the correct bits,
        // starting from 3 (odd * odd == 1 mod 8).
        let mut inv = odd;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inv)));
        }
        debug_assert_eq!(odd.wrapping_mul(inv), 1);
        (self.tick, self.tick_shift, self.tick_inv) = (tick, shift, inv);
    }

    #[inline(always)]
    fn mark(&mut self, slot: usize) {
        let w = slot >> 6;
        self.bits[w] |= 1 << (slot & 63);
        self.summary[w >> 6] |= 1 << (w & 63);
    }

    #[inline(always)]
    fn unmark(&mut self, slot: usize) {
        let w = slot >> 6;
        self.bits[w] &= !(1 << (slot & 63));
        if self.bits[w] == 0 {
            self.summary[w >> 6] &= !(1 << (w & 63));
        }
    }

    /// First occupied slot at or after `from`.
    #[inline]
    fn next_slot(&self, from: usize) -> Option<usize> {
        if from >= WINDOW {
            return None;
        }
        let w = from >> 6;
        let m = self.bits[w] & (!0u64 << (from & 63));
        if m != 0 {
            return Some((w << 6) | m.trailing_zeros() as usize);
        }
        let next_w = w + 1;
        if next_w >= WORDS {
            return None;
        }
        let mut sw = next_w >> 6;
        let mut m = self.summary[sw] & (!0u64 << (next_w & 63));
        loop {
            if m != 0 {
                let w = (sw << 6) | m.trailing_zeros() as usize;
                return Some((w << 6) | self.bits[w].trailing_zeros() as usize);
            }
            sw += 1;
            if sw >= SUMMARY {
                return None;
            }
            m = self.summary[sw];
        }
    }

    /// Set the absolute size at `price`; a size of 0 deletes the level (absent or not).
    /// Sizes must be `>= 0`; parsers and the Python face reject negatives before this.
    #[inline]
    pub fn set(&mut self, price: i64, size: i64) {
        self.set_lazy(price, size);
        self.settle();
    }

    /// `set` without settling the best level: a batch calls `settle` once at its end.
    #[inline(always)]
    pub(crate) fn set_lazy(&mut self, price: i64, size: i64) {
        debug_assert!(size >= 0, "negative size reached the book");
        let key = self.key(price);
        match self.slot(key) {
            Some(slot) if self.in_ladder > 0 => self.set_in_window(slot, size),
            _ => self.set_slow(key, size),
        }
    }

    /// The hot path: a level inside a non-empty window. Insert, update and delete differ only
    /// in data, not in control flow (the bitmaps are written with masks, the best slot with a
    /// min), because on real feeds which of the three comes next is a coin toss the branch
    /// predictor loses. A deleted best is found again by `settle`.
    #[inline(always)]
    fn set_in_window(&mut self, slot: usize, size: i64) {
        let counts = (&mut self.in_ladder, &mut self.best_slot);
        write_slot(&mut self.sizes, &mut self.bits, &mut self.summary, counts, slot, size);
    }

    /// Make `best_slot` exact again and pull an emptied window over the levels left outside.
    #[inline(always)]
    pub(crate) fn settle(&mut self) {
        if self.in_ladder == 0 {
            if !self.outside.is_empty() {
                self.refill();
            }
            return;
        }
        let s = self.best_slot;
        if self.bits[s >> 6] & (1 << (s & 63)) == 0 {
            self.best_slot = self.next_slot(s).expect("an occupied slot at or after the lower bound");
        }
    }

    /// Set several levels of this side without settling (the batch settles once at its end).
    ///
    /// The inner loop holds the side's grid and counters in locals: through `self`, the
    /// compiler reloads and stores them around every write to the arrays (measured: 15%).
    /// Levels beyond the window stay in the loop too: on the USD-M recording a few far
    /// round-number prices take 3% of all updates, and leaving the loop for each cost 4%.
    /// Nothing is prefetched: out-of-order execution overlaps the ladder misses better than
    /// prefetching 4 to 64 levels ahead did (measured: 7% faster without on cold caches, 11%
    /// on warm ones).
    pub(crate) fn set_run_lazy(&mut self, prices: &[i64], sizes: &[i64]) {
        let n = prices.len().min(sizes.len());
        let mut i = 0;
        while i < n {
            if self.in_ladder > 0 {
                i += self.set_run_in_window(&prices[i..n], &sizes[i..n]);
            }
            // A level the fast loop cannot take (better than the window, between its ticks,
            // or an empty window).
            if i < n {
                self.set_lazy(prices[i], sizes[i]);
                i += 1;
            }
        }
    }

    /// The fast loop of `set_run_lazy`: levels in the (non-empty) window or beyond it, up to
    /// the first one that is neither. Returns how many it took. Not inlined, so that the
    /// caller's state does not crowd its registers.
    #[inline(never)]
    fn set_run_in_window(&mut self, prices: &[i64], sizes: &[i64]) -> usize {
        let (mask, inv, shift) = (self.key_mask, self.tick_inv, self.tick_shift);
        // As `slot`, without the bound check, and with the key folded into the multiply:
        // (key - base) * inv = price * (±inv) + c mod 2^64, where key = price or -price - 1.
        let (mul, add) = if mask == 0 {
            (inv, (self.base as u64).wrapping_neg().wrapping_mul(inv))
        } else {
            (inv.wrapping_neg(), (!(self.base as u64)).wrapping_mul(inv))
        };
        let slot_of = |price: i64| (price as u64).wrapping_mul(mul).wrapping_add(add).rotate_right(shift);
        // First key beyond the window (i128: base + span may pass i64::MAX).
        let far_from = self.base as i128 + self.span();
        let (mut in_ladder, mut best) = (self.in_ladder, self.best_slot);
        let (cells, bits, summary) = (&mut *self.sizes, &mut *self.bits, &mut *self.summary);
        let outside = &mut self.outside;
        let mut taken = 0;
        for (&price, &size) in prices.iter().zip(sizes) {
            let slot = slot_of(price);
            if slot < WINDOW as u64 {
                write_slot(cells, bits, summary, (&mut in_ladder, &mut best), slot as usize, size);
            } else if (price ^ mask) as i128 >= far_from {
                // Worse than the whole window: no effect on the ladder or the best.
                set_far(outside, price ^ mask, size);
            } else {
                break;
            }
            taken += 1;
        }
        (self.in_ladder, self.best_slot) = (in_ladder, best);
        taken
    }

    /// Everything else: an empty window, or a key outside the window or between its ticks.
    #[cold]
    #[inline(never)]
    fn set_slow(&mut self, key: i64, size: i64) {
        self.settle();
        if self.in_ladder == 0 {
            // Settled, an empty window means an empty side.
            if size != 0 {
                self.recentre(key);
                self.set_on_key(key, size);
            }
            return;
        }
        if let Some(slot) = self.slot(key) {
            return self.set_in_window(slot, size);
        }
        let off = key as i128 - self.base as i128;
        if off < 0 {
            // Better than the whole window: move the window here. (A delete there is of a
            // level that cannot exist: nothing is stored below base.)
            if size != 0 {
                self.recentre(key);
                self.set_on_key(key, size);
            }
        } else if off < self.span() {
            // Between two ticks of the window, so no level exists there yet; the tick was
            // too coarse. Shrink it to the gcd and re-lay the ladder.
            if size != 0 {
                let finer = gcd(self.tick as u128, off as u128) as i64;
                self.set_tick(finer);
                self.set_slow(key, size);
            }
        } else {
            self.outside.set(key, size);
        }
    }

    /// Set `key` right after `recentre(key)` (the window may hold nothing else, so this must not
    /// settle first: that would move the window back over the levels outside).
    fn set_on_key(&mut self, key: i64, size: i64) {
        let slot = self.slot(key).expect("a window placed on the key holds it");
        self.set_in_window(slot, size);
    }

    /// The window emptied: pull it over the levels that are left outside, if any.
    #[cold]
    fn refill(&mut self) {
        if let Some(k) = self.outside.min_key() {
            self.recentre(k);
        }
    }

    /// Base of a window holding `key` a quarter in (less near the ends of i64), on its tick.
    fn base_for(&self, key: i64) -> i64 {
        let tick = self.tick as i128;
        let highest = i64::MAX as i128 - (WINDOW as i128 - 1) * tick;
        let mut steps = (WINDOW / 4) as i128;
        if key as i128 - steps * tick > highest {
            steps = (key as i128 - highest + tick - 1) / tick;
        }
        steps = steps.min((key as i128 - i64::MIN as i128) / tick);
        (key as i128 - steps * tick) as i64
    }

    /// Place the window so `key` sits a quarter in, and move every level to where it belongs.
    /// `key` must be no worse than every level (it is the new best, or the best already).
    fn recentre(&mut self, key: i64) {
        let levels = self.drain_ladder();
        self.lay_out(key, levels);
    }

    /// Empty the ladder, returning its levels (key, size), best first.
    fn drain_ladder(&mut self) -> Vec<(i64, i64)> {
        let mut levels: Vec<(i64, i64)> = Vec::with_capacity(self.in_ladder);
        let mut slot = if self.in_ladder > 0 { self.next_slot(self.best_slot) } else { None };
        while let Some(s) = slot {
            levels.push((self.slot_key(s), self.sizes[s]));
            self.sizes[s] = 0;
            self.unmark(s);
            slot = self.next_slot(s + 1);
        }
        self.in_ladder = 0;
        levels
    }

    /// `recentre` on an empty ladder, given the levels that were in it.
    fn lay_out(&mut self, key: i64, mut levels: Vec<(i64, i64)>) {
        // Every level the new window covers must sit on one of its ticks; shrink the tick
        // until they do (each round at least halves it, so this ends).
        let base = loop {
            let base = self.base_for(key);
            let end = base as i128 + self.span();
            let mut g = self.tick as u128;
            let ladder_in = levels.iter().map(|l| l.0).filter(|&k| (k as i128) < end);
            for k in ladder_in.chain(self.outside.keys_below(end)) {
                debug_assert!(k >= base, "a level better than the new window");
                g = gcd(g, (k as i128 - base as i128) as u128);
            }
            if g == self.tick as u128 {
                break base;
            }
            self.set_tick_params(g as i64);
        };
        self.base = base;
        self.best_slot = WINDOW;
        // Levels outside that the new window now covers come in; ladder levels it no longer
        // covers go out.
        let end = base as i128 + self.span();
        levels.extend(self.outside.take_below(end));
        for (k, size) in levels {
            match self.slot(k) {
                Some(s) => {
                    self.sizes[s] = size;
                    self.mark(s);
                    self.in_ladder += 1;
                    self.best_slot = self.best_slot.min(s);
                }
                None => {
                    debug_assert!(k as i128 >= end, "a level inside the window but off its ticks");
                    self.outside.set(k, size);
                }
            }
        }
    }

    pub fn clear(&mut self) {
        let mut slot = if self.in_ladder > 0 { self.next_slot(self.best_slot) } else { None };
        while let Some(s) = slot {
            self.sizes[s] = 0;
            self.unmark(s);
            slot = self.next_slot(s + 1);
        }
        self.in_ladder = 0;
        self.outside.clear();
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.in_ladder + self.outside.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.in_ladder == 0
    }

    /// Best (price, size), O(1).
    #[inline]
    pub fn best(&self) -> Option<(i64, i64)> {
        (self.in_ladder > 0).then(|| (self.key(self.slot_key(self.best_slot)), self.sizes[self.best_slot]))
    }

    #[inline]
    fn best_key(&self) -> Option<i64> {
        (self.in_ladder > 0).then(|| self.slot_key(self.best_slot))
    }

    /// Size at exactly `price` (0 when there is no level).
    pub fn size_at(&self, price: i64) -> i64 {
        let key = self.key(price);
        match self.slot(key) {
            Some(s) => self.sizes[s],
            None => self.outside.get(key),
        }
    }

    /// Levels from the best outwards.
    pub fn iter(&self) -> SideIter<'_> {
        SideIter { side: self, slot: if self.in_ladder > 0 { Some(self.best_slot) } else { None }, outside: None }
    }

    /// Total size of the levels priced at `price` or better (bids `>= price`, asks `<= price`).
    pub fn volume_to_price(&self, price: i64) -> i128 {
        let limit = self.key(price);
        self.iter().take_while(|&(p, _)| self.key(p) <= limit).map(|(_, s)| s as i128).sum()
    }

    /// The price of the level at which the cumulative size from the best reaches `volume`,
    /// or None when the side holds less than that.
    pub fn price_for_volume(&self, volume: i64) -> Option<i64> {
        let mut cum: i128 = 0;
        for (price, size) in self.iter() {
            cum += size as i128;
            if cum >= volume as i128 {
                return Some(price);
            }
        }
        None
    }

    /// Notional (Σ price × size, in price units × size units) of taking `volume` from the best
    /// outwards, or None when the side holds less. VWAP = notional / volume.
    pub fn notional_for_volume(&self, volume: i64) -> Option<i128> {
        let mut left = volume as i128;
        let mut notional: i128 = 0;
        if left <= 0 {
            return None;
        }
        for (price, size) in self.iter() {
            let take = left.min(size as i128);
            notional += take * price as i128;
            left -= take;
            if left == 0 {
                return Some(notional);
            }
        }
        None
    }
}

/// Iterator over (price, size) from the best level outwards: the ladder, then the levels
/// beyond it (sorted when the iteration first gets there).
pub struct SideIter<'a> {
    side: &'a BookSide,
    slot: Option<usize>,
    outside: Option<std::vec::IntoIter<(i64, i64)>>,
}

impl Iterator for SideIter<'_> {
    type Item = (i64, i64);
    #[inline]
    fn next(&mut self) -> Option<(i64, i64)> {
        let side = self.side;
        if let Some(s) = self.slot {
            self.slot = side.next_slot(s + 1);
            return Some((side.key(side.slot_key(s)), side.sizes[s]));
        }
        let far = self.outside.get_or_insert_with(|| side.outside.sorted().into_iter());
        far.next().map(|(k, s)| (side.key(k), s))
    }
}

/// An L2 book with a fixed decimal scale for prices and sizes.
#[derive(Debug, Clone)]
pub struct L2Book {
    pub bids: BookSide,
    pub asks: BookSide,
    price_decimals: u32,
    size_decimals: u32,
    update_id: u64,
}

impl L2Book {
    pub fn new(price_decimals: u32, size_decimals: u32) -> Result<Self, FixedError> {
        check_scale(price_decimals)?;
        check_scale(size_decimals)?;
        Ok(L2Book {
            bids: BookSide::new(true),
            asks: BookSide::new(false),
            price_decimals,
            size_decimals,
            update_id: 0,
        })
    }

    pub fn price_decimals(&self) -> u32 {
        self.price_decimals
    }

    pub fn size_decimals(&self) -> u32 {
        self.size_decimals
    }

    pub fn update_id(&self) -> u64 {
        self.update_id
    }

    pub fn set_update_id(&mut self, id: u64) {
        self.update_id = id;
    }

    #[inline]
    pub fn side_mut(&mut self, is_bid: bool) -> &mut BookSide {
        if is_bid {
            &mut self.bids
        } else {
            &mut self.asks
        }
    }

    #[inline]
    pub fn side(&self, is_bid: bool) -> &BookSide {
        if is_bid {
            &self.bids
        } else {
            &self.asks
        }
    }

    #[inline]
    pub fn set(&mut self, is_bid: bool, price: i64, size: i64) {
        self.side_mut(is_bid).set(price, size);
    }

    /// Apply one message's levels (absolute sizes), settling each side once at the end.
    #[inline]
    pub fn apply_levels(&mut self, bids: &[(i64, i64)], asks: &[(i64, i64)]) {
        for &(p, s) in bids {
            self.bids.set_lazy(p, s);
        }
        for &(p, s) in asks {
            self.asks.set_lazy(p, s);
        }
        self.bids.settle();
        self.asks.settle();
    }

    /// Apply a batch of levels given as columns, in order; `sides[i]` is nonzero for a bid.
    /// Neither side reads the other, so applying each side's levels in their order gives
    /// exactly the book of applying the batch level by level, whatever the order of sides.
    /// A batch in long runs of one side (a message's bids, then its asks) goes run by run, so
    /// the loop over a run knows its side and keeps that side's counters in registers; a batch
    /// whose sides interleave is first split by side (branch-free: the order of sides is a coin
    /// toss the predictor loses) and each side goes in as one run. Both sides settle once, at
    /// the end.
    pub fn set_columns(&mut self, sides: &[u8], prices: &[i64], sizes: &[i64]) {
        let n = sides.len().min(prices.len()).min(sizes.len());
        let (sides, prices, sizes) = (&sides[..n], &prices[..n], &sizes[..n]);
        if n >= 2 * SHORT_RUN && side_switches(sides) * SHORT_RUN > n {
            self.set_columns_split(sides, prices, sizes);
        } else {
            let mut start = 0;
            while start < n {
                let bid = sides[start] != 0;
                let end = start + run_len(&sides[start..n], bid);
                let side = self.side_mut(bid);
                if end - start < SHORT_RUN {
                    for k in start..end {
                        side.set_lazy(prices[k], sizes[k]);
                    }
                } else {
                    side.set_run_lazy(&prices[start..end], &sizes[start..end]);
                }
                start = end;
            }
        }
        self.bids.settle();
        self.asks.settle();
    }

    /// `set_columns` for interleaved sides, a chunk at a time (the buffers stay in cache):
    /// each level is written to both sides' buffers and only the count of its own side moves
    /// on, so the split has no branch on the side. Chunks go in order, so each side's levels
    /// keep theirs.
    fn set_columns_split(&mut self, sides: &[u8], prices: &[i64], sizes: &[i64]) {
        const CHUNK: usize = 4096;
        let m = CHUNK.min(sides.len());
        let (mut bp, mut bs, mut ap, mut asz) = (vec![0i64; m], vec![0i64; m], vec![0i64; m], vec![0i64; m]);
        for ((sd, pr), sz) in sides.chunks(CHUNK).zip(prices.chunks(CHUNK)).zip(sizes.chunks(CHUNK)) {
            let (mut nb, mut na) = (0usize, 0usize);
            for i in 0..sd.len() {
                let bid = (sd[i] != 0) as usize;
                let (p, s) = (pr[i], sz[i]);
                bp[nb] = p;
                bs[nb] = s;
                ap[na] = p;
                asz[na] = s;
                nb += bid;
                na += 1 - bid;
            }
            self.bids.set_run_lazy(&bp[..nb], &bs[..nb]);
            self.asks.set_run_lazy(&ap[..na], &asz[..na]);
        }
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.update_id = 0;
    }

    /// Replace the whole book. The snapshot's price gaps set the ladder's tick (see the
    /// module note); both sides share it.
    pub fn load(&mut self, bids: &[(i64, i64)], asks: &[(i64, i64)], update_id: u64) {
        self.clear();
        if let Some(tick) = tick_of(bids.iter().chain(asks).map(|l| l.0)) {
            self.bids.set_tick(tick);
            self.asks.set_tick(tick);
        }
        self.apply_levels(bids, asks);
        self.update_id = update_id;
    }

    #[inline]
    pub fn best_bid(&self) -> Option<(i64, i64)> {
        self.bids.best()
    }

    #[inline]
    pub fn best_ask(&self) -> Option<(i64, i64)> {
        self.asks.best()
    }

    /// Crossed or locked: a single venue's book can be neither, so either means bad data.
    #[inline]
    pub fn is_crossed(&self) -> bool {
        match (self.bids.best_key(), self.asks.best_key()) {
            (Some(bk), Some(ak)) => !bk >= ak,
            _ => false,
        }
    }

    /// best ask − best bid, in price units (i128: prices far apart may differ by more than an i64).
    pub fn spread(&self) -> Option<i128> {
        Some(self.best_ask()?.0 as i128 - self.best_bid()?.0 as i128)
    }

    /// best bid + best ask (twice the mid), exact in price units.
    pub fn mid_x2(&self) -> Option<i128> {
        Some(self.best_ask()?.0 as i128 + self.best_bid()?.0 as i128)
    }

    /// Mid price as a float in real units (analytics only).
    pub fn mid_f64(&self) -> Option<f64> {
        Some(self.mid_x2()? as f64 / 2.0 / pow10(self.price_decimals) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded LCG, so the randomised tests need no extra crate and replay exactly.
    fn lcg(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        }
    }

    fn book() -> L2Book {
        let mut b = L2Book::new(2, 3).unwrap();
        b.load(
            &[(10_000, 1_000), (9_990, 2_000), (9_980, 3_000)],
            &[(10_010, 500), (10_020, 1_500), (10_050, 4_000)],
            7,
        );
        b
    }

    #[test]
    fn best_levels_and_ordering() {
        let b = book();
        assert_eq!(b.best_bid(), Some((10_000, 1_000)));
        assert_eq!(b.best_ask(), Some((10_010, 500)));
        assert_eq!(b.bids.iter().map(|x| x.0).collect::<Vec<_>>(), vec![10_000, 9_990, 9_980]);
        assert_eq!(b.asks.iter().map(|x| x.0).collect::<Vec<_>>(), vec![10_010, 10_020, 10_050]);
        assert_eq!(b.spread(), Some(10));
        assert_eq!(b.mid_x2(), Some(20_010));
        assert_eq!(b.update_id(), 7);
        assert!(!b.is_crossed());
    }

    #[test]
    fn set_updates_deletes_and_moves_best() {
        let mut b = book();
        b.set(true, 10_000, 0);
        assert_eq!(b.best_bid(), Some((9_990, 2_000)));
        b.set(true, 9_990, 2_500);
        assert_eq!(b.best_bid(), Some((9_990, 2_500)));
        b.set(true, 10_005, 1);
        assert_eq!(b.best_bid(), Some((10_005, 1)));
        b.set(false, 12_345, 0); // deleting an absent level is normal
        assert_eq!(b.asks.len(), 3);
        b.set(false, 10_010, 0);
        b.set(false, 10_020, 0);
        b.set(false, 10_050, 0);
        assert_eq!(b.best_ask(), None);
        assert_eq!(b.spread(), None);
        assert!(b.asks.is_empty());
    }

    #[test]
    fn crossed_and_locked_are_detected() {
        let mut b = book();
        b.set(true, 10_010, 1);
        assert!(b.is_crossed(), "locked");
        b.set(true, 10_010, 0);
        assert!(!b.is_crossed());
        b.set(false, 9_000, 1);
        assert!(b.is_crossed());
    }

    #[test]
    fn depth_queries() {
        let b = book();
        assert_eq!(b.bids.volume_to_price(9_990), 3_000);
        assert_eq!(b.bids.volume_to_price(10_001), 0);
        assert_eq!(b.asks.volume_to_price(10_020), 2_000);
        assert_eq!(b.asks.volume_to_price(1), 0);
        assert_eq!(b.asks.price_for_volume(500), Some(10_010));
        assert_eq!(b.asks.price_for_volume(501), Some(10_020));
        assert_eq!(b.asks.price_for_volume(6_001), None);
        assert_eq!(b.bids.price_for_volume(6_000), Some(9_980));
        // take 1_000 from asks: 500 @ 10_010 + 500 @ 10_020
        assert_eq!(b.asks.notional_for_volume(1_000), Some(500 * 10_010 + 500 * 10_020));
        assert_eq!(b.asks.notional_for_volume(0), None);
        assert_eq!(b.asks.notional_for_volume(6_001), None);
        assert_eq!(b.bids.size_at(9_990), 2_000);
        assert_eq!(b.bids.size_at(9_991), 0);
    }

    /// Random updates across several price regimes (tight, wide, jumps far beyond the window)
    /// against a plain BTreeMap model, checking best, length and full order after each step.
    /// Each case starts the ladder on a tick guess and draws prices from a grid: equal (the
    /// usual case), finer (the guess must shrink, sometimes only after many steps), coarser.
    #[test]
    fn ladder_matches_a_btreemap_model() {
        let mut rnd = lcg(7);
        // (tick guess, price grid, 1 in N prices off the grid by one unit)
        let cases: [(i64, i64, u64); 6] =
            [(1, 1, 0), (10, 10, 0), (10, 10, 20_000), (64, 1, 0), (7, 21, 0), (1 << 40, 3, 0)];
        for (guess, grid, odd_one_in) in cases {
            for is_bid in [true, false] {
                let mut side = BookSide::new(is_bid);
                side.set_tick(guess);
                let mut model: BTreeMap<i64, i64> = BTreeMap::new();
                let mut centre: i64 = 6_000_000;
                let window = WINDOW as i64 * grid;
                for step in 0..30_000u32 {
                    if step % 5_000 == 0 {
                        // Jump: sometimes far beyond the window in either direction.
                        centre += (rnd() % 5) as i64 * window / 2 - window;
                    }
                    let spread = match rnd() % 10 {
                        0 => 4 * WINDOW as u64,
                        1..=3 => WINDOW as u64 / 2,
                        _ => 500,
                    };
                    let mut price = (centre / grid + (rnd() % spread) as i64 - (spread / 2) as i64) * grid;
                    if odd_one_in > 0 && rnd() % odd_one_in == 0 {
                        price += 1;
                    }
                    let size = if rnd() % 3 == 0 { 0 } else { (rnd() % 1000) as i64 + 1 };
                    side.set(price, size);
                    if size == 0 {
                        model.remove(&price);
                    } else {
                        model.insert(price, size);
                    }
                    let want_best = if is_bid { model.last_key_value() } else { model.first_key_value() };
                    assert_eq!(side.best(), want_best.map(|(p, s)| (*p, *s)), "{guess}/{grid} step {step}");
                    assert_eq!(side.len(), model.len());
                    if step % 997 == 0 {
                        let want: Vec<(i64, i64)> = if is_bid {
                            model.iter().rev().map(|(p, s)| (*p, *s)).collect()
                        } else {
                            model.iter().map(|(p, s)| (*p, *s)).collect()
                        };
                        assert_eq!(side.iter().collect::<Vec<_>>(), want, "{guess}/{grid} step {step}");
                        let probe = centre;
                        let want_vol: i128 = want
                            .iter()
                            .filter(|(p, _)| if is_bid { *p >= probe } else { *p <= probe })
                            .map(|(_, s)| *s as i128)
                            .sum();
                        assert_eq!(side.volume_to_price(probe), want_vol);
                        for &(p, s) in want.iter().step_by(97) {
                            assert_eq!(side.size_at(p), s);
                            assert_eq!(side.size_at(p + 1), model.get(&(p + 1)).copied().unwrap_or(0));
                        }
                    }
                }
                // The tick only ever shrinks to what the prices need, and never below it.
                assert!(side.tick() >= 1 && (guess % side.tick() == 0 || guess > MAX_TICK));
                if odd_one_in == 0 && guess <= MAX_TICK && guess % grid == 0 {
                    assert_eq!(side.tick(), grid, "{guess}/{grid}: the tick shrank to the grid");
                }
                side.clear();
                assert_eq!((side.len(), side.best()), (0, None));
            }
        }
    }

    #[test]
    fn run_len_matches_a_byte_scan() {
        let mut rnd = lcg(5);
        for _ in 0..20_000 {
            let n = (rnd() % 40) as usize;
            // Long runs of one side with the odd byte of the other, any nonzero value a bid.
            let flip = 1 + rnd() % 12;
            let v: Vec<u8> = (0..n).map(|_| if rnd() % flip == 0 { (rnd() % 256) as u8 } else { 0 }).collect();
            let v: Vec<u8> = if rnd() % 2 == 0 {
                v
            } else {
                v.iter().map(|&b| if b == 0 { 1 + (rnd() % 255) as u8 } else { 0 }).collect()
            };
            for bid in [true, false] {
                let want = v.iter().position(|&x| (x != 0) != bid).unwrap_or(n);
                assert_eq!(run_len(&v, bid), want, "{v:?} bid={bid}");
            }
        }
    }

    /// The batch path (`set_columns`: runs per side or, when sides interleave, split by side;
    /// a lazy best) against the same model. Batches are built to hurt it: the best deleted and re-added inside one run,
    /// a window emptied mid-run while levels remain beyond it, jumps far out and back.
    #[test]
    fn batches_match_the_model() {
        let mut rnd = lcg(11);
        let mut book = L2Book::new(2, 3).unwrap();
        book.load(&[(6_000_000, 5)], &[(6_000_010, 5)], 1);
        let mut model = [BTreeMap::<i64, i64>::new(), BTreeMap::new()]; // [asks, bids]
        model[1].insert(6_000_000, 5);
        model[0].insert(6_000_010, 5);
        let mut runs = [0usize; 2]; // [short, long]
        let mut split = 0; // batches whose sides interleave: split by side first
        for round in 0..3_000u32 {
            let n = 1 + (rnd() % 120) as usize;
            let (mut sides, mut prices, mut sizes) = (vec![], vec![], vec![]);
            // Some rounds switch sides every level or two (short runs, level by level), others
            // rarely (long runs, through the batch loop).
            let switch = [2, 3, 16, 64][(rnd() % 4) as usize];
            let mut bid = rnd() % 2 == 0;
            for _ in 0..n {
                if rnd() % switch == 0 {
                    bid = !bid;
                }
                let m = &model[bid as usize];
                let best = if bid { m.last_key_value() } else { m.first_key_value() }.map(|(p, _)| *p);
                let price = match (rnd() % 10, best) {
                    (0..=2, Some(b)) => b, // hit the best (often a delete)
                    (3, _) => 6_000_000 + (rnd() % 40) as i64 * 1_000_000 - 20_000_000, // far away
                    (4, Some(b)) => b + if bid { 10 } else { -10 }, // improve it
                    _ => 6_000_000 + ((rnd() % 400) as i64 - 200) * 10,
                };
                let size = if rnd() % 3 == 0 { 0 } else { (rnd() % 100) as i64 + 1 };
                // Any nonzero byte is a bid (numpy int8 -1 arrives as 0xff).
                sides.push(if bid { [1u8, 0xff, 0x80, 0x7f][(rnd() % 4) as usize] } else { 0 });
                prices.push(price);
                sizes.push(size);
                if size == 0 {
                    model[bid as usize].remove(&price);
                } else {
                    model[bid as usize].insert(price, size);
                }
            }
            book.set_columns(&sides, &prices, &sizes);
            split += (n >= 2 * SHORT_RUN && side_switches(&sides) * SHORT_RUN > n) as usize;
            for run in sides.chunk_by(|a: &u8, b: &u8| (*a != 0) == (*b != 0)) {
                runs[(run.len() >= SHORT_RUN) as usize] += 1;
            }
            let want_bid = model[1].last_key_value().map(|(p, s)| (*p, *s));
            let want_ask = model[0].first_key_value().map(|(p, s)| (*p, *s));
            assert_eq!((book.best_bid(), book.best_ask()), (want_bid, want_ask), "round {round}");
            assert_eq!((book.bids.len(), book.asks.len()), (model[1].len(), model[0].len()), "round {round}");
            if round % 101 == 0 {
                let bids: Vec<(i64, i64)> = model[1].iter().rev().map(|(p, s)| (*p, *s)).collect();
                let asks: Vec<(i64, i64)> = model[0].iter().map(|(p, s)| (*p, *s)).collect();
                assert_eq!(book.bids.iter().collect::<Vec<_>>(), bids, "round {round}");
                assert_eq!(book.asks.iter().collect::<Vec<_>>(), asks, "round {round}");
            }
        }
        assert!(runs[0] > 5_000 && runs[1] > 1_000, "both paths taken: {runs:?} (short, long) runs");
        assert!(split > 500, "the split path taken: {split} batches");
    }

    #[test]
    fn snapshot_sets_the_tick_and_off_tick_prices_refine_it() {
        let mut b = L2Book::new(2, 3).unwrap();
        b.load(&[(6_165_970, 1), (6_165_960, 2), (6_100_000, 3)], &[(6_165_980, 4), (6_166_500, 5)], 1);
        assert_eq!((b.bids.tick(), b.asks.tick()), (10, 10));
        b.set(true, 6_165_965, 7); // between two ticks: the bid ladder re-lays at tick 5
        assert_eq!(b.bids.tick(), 5);
        assert_eq!(
            b.bids.iter().collect::<Vec<_>>(),
            vec![(6_165_970, 1), (6_165_965, 7), (6_165_960, 2), (6_100_000, 3)]
        );
        b.set(true, 6_165_963, 0); // deleting an absent off-tick level changes nothing
        assert_eq!((b.bids.tick(), b.bids.len()), (5, 4));
        assert_eq!(tick_of([5, 5]), None);
        assert_eq!(tick_of([-20, 10, 40]), Some(30));
        assert_eq!(tick_of([i64::MIN, i64::MAX]), None, "gap beyond i64");
        let mut one = L2Book::new(0, 0).unwrap();
        one.load(&[(i64::MIN, 1)], &[(i64::MAX, 1)], 1); // a gcd beyond MAX_TICK falls back to 1
        assert_eq!((one.best_bid(), one.best_ask(), one.bids.tick()), (Some((i64::MIN, 1)), Some((i64::MAX, 1)), 1));
    }

    #[test]
    fn extreme_prices_keep_order() {
        let mut b = L2Book::new(0, 0).unwrap();
        for is_bid in [true, false] {
            for p in [i64::MAX, i64::MIN, 0, i64::MAX - 1, i64::MIN + 1] {
                b.set(is_bid, p, 1);
            }
            let mut want = vec![i64::MIN, i64::MIN + 1, 0, i64::MAX - 1, i64::MAX];
            if is_bid {
                want.reverse();
            }
            assert_eq!(b.side(is_bid).iter().map(|x| x.0).collect::<Vec<_>>(), want);
            b.set(is_bid, want[0], 0);
            assert_eq!(b.side(is_bid).best(), Some((want[1], 1)));
        }
        assert!(L2Book::new(19, 0).is_err());
    }
}
