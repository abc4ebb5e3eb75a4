//! The L2 book: price levels as exact scaled integers.
//!
//! Each side is a `BTreeMap` (O(log N) insert/update/delete) keyed so that iteration starts at
//! the best price, with the best level cached so reading it is O(1). Bids are keyed by `!price`
//! (bitwise not: order-reversing and, unlike negation, total over i64).

use std::collections::btree_map::{self, BTreeMap};

use crate::fixed::{check_scale, pow10, FixedError};

/// One side of the book.
#[derive(Debug, Clone)]
pub struct BookSide {
    is_bid: bool,
    levels: BTreeMap<i64, i64>,
    /// (key, size) of the best level; kept equal to `levels.first_key_value()`.
    best: Option<(i64, i64)>,
}

impl BookSide {
    pub fn new(is_bid: bool) -> Self {
        BookSide { is_bid, levels: BTreeMap::new(), best: None }
    }

    #[inline(always)]
    fn key(&self, price: i64) -> i64 {
        if self.is_bid {
            !price
        } else {
            price
        }
    }

    /// Keys and prices map through the same involution.
    #[inline(always)]
    fn price(&self, key: i64) -> i64 {
        self.key(key)
    }

    pub fn is_bid(&self) -> bool {
        self.is_bid
    }

    /// Set the absolute size at `price`; a size of 0 deletes the level (absent or not).
    /// Sizes must be `>= 0`; parsers and the Python face reject negatives before this.
    #[inline]
    pub fn set(&mut self, price: i64, size: i64) {
        debug_assert!(size >= 0, "negative size reached the book");
        let key = self.key(price);
        if size == 0 {
            if self.levels.remove(&key).is_some() && self.best.is_some_and(|(k, _)| k == key) {
                self.best = self.levels.first_key_value().map(|(k, s)| (*k, *s));
            }
        } else {
            self.levels.insert(key, size);
            match self.best {
                Some((k, _)) if k < key => {}
                _ => self.best = Some((key, size)),
            }
        }
    }

    pub fn clear(&mut self) {
        self.levels.clear();
        self.best = None;
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Best (price, size), O(1).
    #[inline]
    pub fn best(&self) -> Option<(i64, i64)> {
        self.best.map(|(k, s)| (self.price(k), s))
    }

    /// Size at exactly `price` (0 when there is no level).
    pub fn size_at(&self, price: i64) -> i64 {
        self.levels.get(&self.key(price)).copied().unwrap_or(0)
    }

    /// Levels from the best outwards.
    pub fn iter(&self) -> SideIter<'_> {
        SideIter { is_bid: self.is_bid, inner: self.levels.iter() }
    }

    /// Total size of the levels priced at `price` or better (bids `>= price`, asks `<= price`).
    pub fn volume_to_price(&self, price: i64) -> i128 {
        self.levels.range(..=self.key(price)).map(|(_, s)| *s as i128).sum()
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

/// Iterator over (price, size) from the best level outwards.
pub struct SideIter<'a> {
    is_bid: bool,
    inner: btree_map::Iter<'a, i64, i64>,
}

impl Iterator for SideIter<'_> {
    type Item = (i64, i64);
    #[inline]
    fn next(&mut self) -> Option<(i64, i64)> {
        self.inner
            .next()
            .map(|(k, s)| (if self.is_bid { !*k } else { *k }, *s))
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
        match (self.bids.best, self.asks.best) {
            (Some((bk, _)), Some((ak, _))) => !bk >= ak,
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

    #[test]
    fn extreme_prices_keep_order() {
        let mut b = L2Book::new(0, 0).unwrap();
        b.set(true, i64::MAX, 1);
        b.set(true, i64::MIN, 1);
        b.set(true, 0, 1);
        assert_eq!(b.bids.iter().map(|x| x.0).collect::<Vec<_>>(), vec![i64::MAX, 0, i64::MIN]);
        assert!(L2Book::new(19, 0).is_err());
    }
}
