//! Levels beyond the book's ladder window: updated often (a few far prices, such as round
//! numbers, are hot on real feeds), read in order rarely (only by depth queries that walk past
//! the window and by a window move). So they live in a hash map, O(1) per update, and are
//! sorted when an ordered read asks for them.
//!
//! The hash is MurmurHash3's 64-bit finaliser over the key xor a per-map random seed: two
//! multiplies, where SipHash would cost more than the whole ladder update. It must mix well:
//! with a folded single multiply, one process in three (depending on its seed) replayed the
//! USD-M recording 40% slower, all of it in the hot far prices. The random seed keeps anyone
//! who can place far orders from precomputing colliding prices.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// Far levels of one side, keyed like the ladder (keys grow away from the best).
#[derive(Debug, Clone)]
pub struct FarLevels {
    map: HashMap<i64, i64, KeyHash>,
}

impl Default for FarLevels {
    fn default() -> Self {
        let seed = RandomState::new().hash_one(0x6d69_786d_616b_6572_u64);
        FarLevels { map: HashMap::with_hasher(KeyHash { seed }) }
    }
}

impl FarLevels {
    #[inline]
    pub fn get(&self, key: i64) -> i64 {
        self.map.get(&key).copied().unwrap_or(0)
    }

    /// Set the size at `key`; 0 removes the level.
    #[inline]
    pub fn set(&mut self, key: i64, size: i64) {
        if size == 0 {
            self.map.remove(&key);
        } else {
            self.map.insert(key, size);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The smallest key (the best far level), O(n).
    pub fn min_key(&self) -> Option<i64> {
        self.map.keys().copied().min()
    }

    /// Keys below `end`, unordered.
    pub fn keys_below(&self, end: i128) -> impl Iterator<Item = i64> + '_ {
        self.map.keys().copied().filter(move |&k| (k as i128) < end)
    }

    /// Remove and return the levels with keys below `end`, unordered, O(n).
    pub fn take_below(&mut self, end: i128) -> Vec<(i64, i64)> {
        let taken: Vec<(i64, i64)> =
            self.map.iter().filter(|(&k, _)| (k as i128) < end).map(|(&k, &s)| (k, s)).collect();
        for (k, _) in &taken {
            self.map.remove(k);
        }
        taken
    }

    /// All levels, best (smallest key) first, O(n log n).
    pub fn sorted(&self) -> Vec<(i64, i64)> {
        let mut v: Vec<(i64, i64)> = self.map.iter().map(|(&k, &s)| (k, s)).collect();
        v.sort_unstable_by_key(|&(k, _)| k);
        v
    }
}

#[derive(Debug, Clone, Copy)]
struct KeyHash {
    seed: u64,
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { seed: self.seed, hash: 0 }
    }
}

struct KeyHasher {
    seed: u64,
    hash: u64,
}

impl Hasher for KeyHasher {
    #[inline]
    fn write_i64(&mut self, key: i64) {
        // fmix64: every input bit reaches every output bit, high (hashbrown's tag) and low
        // (its bucket) alike.
        let mut h = (key as u64) ^ self.seed ^ self.hash.rotate_left(29);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        self.hash = h;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only i64 keys are hashed here; this keeps the Hasher contract for anything else.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_i64(i64::from_le_bytes(b));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_reads_and_moves() {
        let mut f = FarLevels::default();
        for (k, s) in [(50, 5), (-7, 1), (10, 2), (i64::MAX, 9), (i64::MIN, 3)] {
            f.set(k, s);
        }
        f.set(10, 0);
        f.set(11, 0); // removing an absent level is a no-op
        assert_eq!((f.len(), f.get(50), f.get(10), f.min_key()), (4, 5, 0, Some(i64::MIN)));
        assert_eq!(f.sorted(), vec![(i64::MIN, 3), (-7, 1), (50, 5), (i64::MAX, 9)]);
        let mut below: Vec<i64> = f.keys_below(50).collect();
        below.sort();
        assert_eq!(below, vec![i64::MIN, -7]);
        let mut taken = f.take_below(51);
        taken.sort();
        assert_eq!(taken, vec![(i64::MIN, 3), (-7, 1), (50, 5)]);
        assert_eq!(f.sorted(), vec![(i64::MAX, 9)]);
        f.clear();
        assert!(f.is_empty() && f.min_key().is_none());
    }

    #[test]
    fn hash_spreads_nearby_prices() {
        // Prices a tick apart must not share low or high hash bits wholesale.
        let h = KeyHash { seed: 0x9e37_79b9_7f4a_7c15 };
        let hashes: std::collections::HashSet<u64> =
            (0..4096i64).map(|p| h.hash_one(6_000_000 + 10 * p) & 0xfff).collect();
        assert!(hashes.len() > 2_000, "only {} distinct low-12-bit buckets of 4096", hashes.len());
        let tops: std::collections::HashSet<u64> = (0..4096i64).map(|p| h.hash_one(6_000_000 + 10 * p) >> 57).collect();
        assert_eq!(tops.len(), 128, "every 7-bit control tag in use");
    }
}
