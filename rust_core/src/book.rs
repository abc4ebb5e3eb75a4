//! The L2 book: price levels as exact scaled integers.
//!
//! Each side maps a price to a *key* that grows away from the best price (asks: the price;
//! bids: `!price`, bitwise not, which reverses order and, unlike negation, is total over i64).
//! Keys near the best live in a dense *ladder*: a window of `WINDOW` slots holding sizes, with
//! a two-level occupancy bitmap. Setting a level there is O(1); finding the next best after the
//! best is deleted is a bit scan. Keys beyond the window on the worse side live in a BTreeMap
//! (O(log N)). A key better than the window re-centres it, as does an empty window with levels
//! still outside, so the best level is always in the ladder and reading it is O(1).

use std::collections::BTreeMap;

use crate::fixed::{check_scale, pow10, FixedError};

/// Ladder slots per side. In raw units: 1,310.72 USD of a 2-decimal price; the re-centre
/// leaves a quarter of it for better prices. Measured: a 2^20 window was slower on the
/// recording (page faults and TLB misses outweigh the fewer BTreeMap updates).
pub const WINDOW: usize = 1 << 17;
const WORDS: usize = WINDOW / 64;
const SUMMARY: usize = WORDS / 64;

/// One side of the book.
#[derive(Debug, Clone)]
pub struct BookSide {
    is_bid: bool,
    /// Key of slot 0; `base <= i64::MAX - WINDOW + 1` so the window never wraps.
    base: i64,
    sizes: Box<[i64]>,
    bits: Box<[u64]>,
    /// Bit w set iff `bits[w] != 0`.
    summary: Box<[u64]>,
    in_ladder: usize,
    /// Levels with keys >= base + WINDOW (worse than the window).
    outside: BTreeMap<i64, i64>,
    /// Slot of the best level; meaningful only when `in_ladder > 0`.
    best_slot: usize,
}

impl BookSide {
    pub fn new(is_bid: bool) -> Self {
        BookSide {
            is_bid,
            base: 0,
            sizes: vec![0; WINDOW].into_boxed_slice(),
            bits: vec![0; WORDS].into_boxed_slice(),
            summary: vec![0; SUMMARY].into_boxed_slice(),
            in_ladder: 0,
            outside: BTreeMap::new(),
            best_slot: 0,
        }
    }

    /// Price → key, and key → price (the same involution).
    #[inline(always)]
    fn key(&self, price: i64) -> i64 {
        if self.is_bid {
            !price
        } else {
            price
        }
    }

    pub fn is_bid(&self) -> bool {
        self.is_bid
    }

    /// Slot of `key` if it falls in the window.
    #[inline(always)]
    fn slot(&self, key: i64) -> Option<usize> {
        // Sound because the window never wraps (see `base`).
        let off = key.wrapping_sub(self.base) as u64;
        (off < WINDOW as u64).then_some(off as usize)
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
        debug_assert!(size >= 0, "negative size reached the book");
        let key = self.key(price);
        if self.in_ladder == 0 {
            if size == 0 {
                return;
            }
            self.recentre(key);
        }
        match self.slot(key) {
            Some(slot) => {
                let old = std::mem::replace(&mut self.sizes[slot], size);
                if size != 0 {
                    if old == 0 {
                        self.mark(slot);
                        self.in_ladder += 1;
                        if slot < self.best_slot {
                            self.best_slot = slot;
                        }
                    }
                } else if old != 0 {
                    self.unmark(slot);
                    self.in_ladder -= 1;
                    if slot == self.best_slot {
                        match self.next_slot(slot + 1) {
                            Some(next) => self.best_slot = next,
                            None => self.refill(),
                        }
                    }
                }
            }
            None if key > self.base => {
                if size == 0 {
                    self.outside.remove(&key);
                } else {
                    self.outside.insert(key, size);
                }
            }
            None => {
                // Better than the whole window: move the window here.
                if size != 0 {
                    self.recentre(key);
                    self.set(price, size);
                }
            }
        }
    }

    /// The window emptied: pull it over the levels that are left outside, if any.
    fn refill(&mut self) {
        if let Some((&k, _)) = self.outside.first_key_value() {
            self.recentre(k);
        }
    }

    /// Place the window so `key` sits a quarter in, and move every level to where it belongs.
    fn recentre(&mut self, key: i64) {
        let base = key.saturating_sub((WINDOW / 4) as i64).min(i64::MAX - WINDOW as i64 + 1);
        let mut moved: Vec<(i64, i64)> = Vec::with_capacity(self.in_ladder);
        let mut slot = self.next_slot(0);
        while let (Some(s), true) = (slot, self.in_ladder > 0) {
            moved.push((self.base + s as i64, self.sizes[s]));
            self.sizes[s] = 0;
            self.unmark(s);
            self.in_ladder -= 1;
            slot = self.next_slot(s + 1);
        }
        self.base = base;
        self.best_slot = WINDOW;
        // Levels outside that the new window now covers come in; ladder levels it no longer
        // covers go out.
        let still_outside = match base.checked_add(WINDOW as i64) {
            Some(end) => self.outside.split_off(&end),
            None => BTreeMap::new(), // the window reaches i64::MAX: nothing is beyond it
        };
        moved.extend(std::mem::replace(&mut self.outside, still_outside));
        for (k, size) in moved {
            match self.slot(k) {
                Some(s) => {
                    self.sizes[s] = size;
                    self.mark(s);
                    self.in_ladder += 1;
                    self.best_slot = self.best_slot.min(s);
                }
                None => {
                    debug_assert!(k > self.base, "a level better than the new window");
                    self.outside.insert(k, size);
                }
            }
        }
    }

    pub fn clear(&mut self) {
        let mut slot = if self.in_ladder > 0 { Some(self.best_slot) } else { None };
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
        (self.in_ladder > 0).then(|| (self.key(self.base + self.best_slot as i64), self.sizes[self.best_slot]))
    }

    #[inline]
    fn best_key(&self) -> Option<i64> {
        (self.in_ladder > 0).then(|| self.base + self.best_slot as i64)
    }

    /// Size at exactly `price` (0 when there is no level).
    pub fn size_at(&self, price: i64) -> i64 {
        let key = self.key(price);
        match self.slot(key) {
            Some(s) => self.sizes[s],
            None => self.outside.get(&key).copied().unwrap_or(0),
        }
    }

    /// Levels from the best outwards.
    pub fn iter(&self) -> SideIter<'_> {
        SideIter {
            side: self,
            slot: if self.in_ladder > 0 { Some(self.best_slot) } else { None },
            outside: self.outside.iter(),
        }
    }

    /// Total size of the levels priced at `price` or better (bids `>= price`, asks `<= price`).
    pub fn volume_to_price(&self, price: i64) -> i128 {
        let limit = self.key(price);
        self.iter()
            .take_while(|&(p, _)| self.key(p) <= limit)
            .map(|(_, s)| s as i128)
            .sum()
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
/// beyond it.
pub struct SideIter<'a> {
    side: &'a BookSide,
    slot: Option<usize>,
    outside: std::collections::btree_map::Iter<'a, i64, i64>,
}

impl Iterator for SideIter<'_> {
    type Item = (i64, i64);
    #[inline]
    fn next(&mut self) -> Option<(i64, i64)> {
        let side = self.side;
        if let Some(s) = self.slot {
            self.slot = side.next_slot(s + 1);
            return Some((side.key(side.base + s as i64), side.sizes[s]));
        }
        self.outside.next().map(|(&k, &s)| (side.key(k), s))
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

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.update_id = 0;
    }

    /// Replace the whole book.
    pub fn load(&mut self, bids: &[(i64, i64)], asks: &[(i64, i64)], update_id: u64) {
        self.clear();
        for &(p, s) in bids {
            self.bids.set(p, s);
        }
        for &(p, s) in asks {
            self.asks.set(p, s);
        }
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

    /// best ask − best bid, in price units.
    pub fn spread(&self) -> Option<i64> {
        Some(self.best_ask()?.0 - self.best_bid()?.0)
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

    fn book() -> L2Book {
        let mut b = L2Book::new(2, 3).unwrap();
        b.load(&[(10_000, 1_000), (9_990, 2_000), (9_980, 3_000)], &[(10_010, 500), (10_020, 1_500), (10_050, 4_000)], 7);
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
    #[test]
    fn ladder_matches_a_btreemap_model() {
        let mut seed: u64 = 7;
        let mut rnd = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        for is_bid in [true, false] {
            let mut side = BookSide::new(is_bid);
            let mut model: BTreeMap<i64, i64> = BTreeMap::new();
            let mut centre: i64 = 6_000_000;
            for step in 0..60_000u32 {
                if step % 5_000 == 0 {
                    // Jump: sometimes far beyond the window in either direction.
                    centre += (rnd() % 5) as i64 * WINDOW as i64 / 2 - WINDOW as i64;
                }
                let spread = match rnd() % 10 {
                    0 => 4 * WINDOW as u64,
                    1..=3 => WINDOW as u64 / 2,
                    _ => 500,
                };
                let price = centre + (rnd() % spread) as i64 - (spread / 2) as i64;
                let size = if rnd() % 3 == 0 { 0 } else { (rnd() % 1000) as i64 + 1 };
                side.set(price, size);
                if size == 0 {
                    model.remove(&price);
                } else {
                    model.insert(price, size);
                }
                let want_best = if is_bid { model.last_key_value() } else { model.first_key_value() };
                assert_eq!(side.best(), want_best.map(|(p, s)| (*p, *s)), "step {step}");
                assert_eq!(side.len(), model.len());
                if step % 997 == 0 {
                    let want: Vec<(i64, i64)> = if is_bid {
                        model.iter().rev().map(|(p, s)| (*p, *s)).collect()
                    } else {
                        model.iter().map(|(p, s)| (*p, *s)).collect()
                    };
                    assert_eq!(side.iter().collect::<Vec<_>>(), want, "step {step}");
                    let probe = centre;
                    let want_vol: i128 = want.iter().filter(|(p, _)| if is_bid { *p >= probe } else { *p <= probe }).map(|(_, s)| *s as i128).sum();
                    assert_eq!(side.volume_to_price(probe), want_vol);
                }
            }
            side.clear();
            assert_eq!((side.len(), side.best()), (0, None));
        }
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
