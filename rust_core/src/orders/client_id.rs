//! Client order ids: `prefix + nonce + instance`, all in base62 (`0-9A-Za-z`), which every
//! venue's character set accepts (OKX allows letters and digits only).
//!
//! - `nonce` is microseconds since the epoch, forced strictly increasing (`max(now, last + 1)`)
//!   and written at a fixed width, so a process's ids sort in the order they were made. The
//!   tracker persists the last nonce and passes it back after a restart (`start_after`), so a
//!   clock that steps back cannot repeat an id.
//! - `instance` is a random tag per process: two processes sharing a prefix and a microsecond
//!   still differ.
//! - `prefix` lets the tracker pick its own orders out of a venue's open orders.
use std::fmt;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 62^9 ≈ 1.35e16 µs: good until the year 2397.
pub const NONCE_WIDTH: usize = 9;
pub const INSTANCE_WIDTH: usize = 4;
const NONCE_LIMIT: u64 = 13_537_086_546_263_552; // 62^9

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientIdError {
    BadPrefix(String),
    BadInstance(String),
    TooLong { prefix: String, needed: usize, max_len: usize },
    NonceExhausted,
}

impl fmt::Display for ClientIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIdError::BadPrefix(p) => write!(f, "client id prefix {p:?} must be 1-16 letters or digits"),
            ClientIdError::BadInstance(i) => write!(f, "instance tag {i:?} must be {INSTANCE_WIDTH} letters or digits"),
            ClientIdError::TooLong { prefix, needed, max_len } => write!(
                f,
                "client ids with prefix {prefix:?} need {needed} characters but the venue allows {max_len}: use a shorter prefix"
            ),
            ClientIdError::NonceExhausted => write!(f, "client id nonce passed 62^{NONCE_WIDTH}"),
        }
    }
}

impl std::error::Error for ClientIdError {}

fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn encode(mut n: u64, out: &mut [u8; NONCE_WIDTH]) {
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
}

fn decode(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        Some(acc * 62 + d as u64)
    })
}

#[derive(Clone, Debug)]
pub struct ClientIdGenerator {
    prefix: String,
    instance: String,
    last: u64,
}

impl ClientIdGenerator {
    pub fn new(prefix: &str, max_len: usize, instance: &str, start_after: u64) -> Result<Self, ClientIdError> {
        if prefix.is_empty() || prefix.len() > 16 || !is_base62(prefix) {
            return Err(ClientIdError::BadPrefix(prefix.to_string()));
        }
        if instance.len() != INSTANCE_WIDTH || !is_base62(instance) {
            return Err(ClientIdError::BadInstance(instance.to_string()));
        }
        let needed = prefix.len() + NONCE_WIDTH + INSTANCE_WIDTH;
        if needed > max_len {
            return Err(ClientIdError::TooLong { prefix: prefix.to_string(), needed, max_len });
        }
        Ok(ClientIdGenerator { prefix: prefix.to_string(), instance: instance.to_string(), last: start_after })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The last nonce handed out (persist it; pass it as `start_after` after a restart).
    pub fn last(&self) -> u64 {
        self.last
    }

    pub fn len(&self) -> usize {
        self.prefix.len() + NONCE_WIDTH + INSTANCE_WIDTH
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// A new id; `now_us` is the wall clock in microseconds.
    pub fn next(&mut self, now_us: u64) -> Result<String, ClientIdError> {
        let nonce = now_us.max(self.last.saturating_add(1));
        if nonce >= NONCE_LIMIT {
            return Err(ClientIdError::NonceExhausted);
        }
        self.last = nonce;
        let mut digits = [0u8; NONCE_WIDTH];
        encode(nonce, &mut digits);
        let mut id = String::with_capacity(self.len());
        id.push_str(&self.prefix);
        id.push_str(std::str::from_utf8(&digits).expect("base62 is ASCII"));
        id.push_str(&self.instance);
        Ok(id)
    }

    /// The nonce of an id made with this prefix (by any process), or None if it is not ours.
    pub fn nonce_of(&self, id: &str) -> Option<u64> {
        let rest = id.strip_prefix(self.prefix.as_str())?;
        if rest.len() != NONCE_WIDTH + INSTANCE_WIDTH || !is_base62(rest) {
            return None;
        }
        decode(&rest.as_bytes()[..NONCE_WIDTH])
    }

    pub fn is_ours(&self, id: &str) -> bool {
        self.nonce_of(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_monotonic_fixed_width_and_recognised() {
        let mut g = ClientIdGenerator::new("mm", 36, "AbC9", 0).unwrap();
        let t = 1_764_000_000_000_000u64;
        let a = g.next(t).unwrap();
        let b = g.next(t).unwrap(); // same microsecond: nonce + 1
        let c = g.next(t - 5_000_000).unwrap(); // clock stepped back: still increasing
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a.len(), 2 + NONCE_WIDTH + INSTANCE_WIDTH);
        assert_eq!(g.nonce_of(&a), Some(t));
        assert_eq!(g.nonce_of(&c), Some(t + 2));
        assert!(g.is_ours(&b));
        assert!(!g.is_ours("xx0000000000AbC9"));
        assert!(!g.is_ours(&a[..a.len() - 1]));
        assert!(!g.is_ours(&format!("{}-", &a[..a.len() - 1])));
    }

    #[test]
    fn start_after_survives_a_restart_with_a_clock_behind() {
        let mut g = ClientIdGenerator::new("mm", 36, "0000", 0).unwrap();
        let first = g.next(2_000).unwrap();
        let mut g2 = ClientIdGenerator::new("mm", 36, "0000", g.last()).unwrap();
        let after = g2.next(1_000).unwrap();
        assert!(after > first);
    }

    #[test]
    fn limits_are_checked() {
        assert!(matches!(ClientIdGenerator::new("x-MG43", 36, "0000", 0), Err(ClientIdError::BadPrefix(_))));
        assert!(matches!(ClientIdGenerator::new("", 36, "0000", 0), Err(ClientIdError::BadPrefix(_))));
        assert!(matches!(ClientIdGenerator::new("mm", 36, "00-0", 0), Err(ClientIdError::BadInstance(_))));
        assert_eq!(
            ClientIdGenerator::new("abcdefghijklmnop", 28, "0000", 0).unwrap_err(),
            ClientIdError::TooLong { prefix: "abcdefghijklmnop".into(), needed: 29, max_len: 28 }
        );
        let mut g = ClientIdGenerator::new("m", 14, "0000", NONCE_LIMIT - 2).unwrap();
        assert!(g.next(0).is_ok());
        assert_eq!(g.next(0), Err(ClientIdError::NonceExhausted));
    }

    #[test]
    fn base62_round_trips() {
        for n in [0u64, 1, 61, 62, 3843, 1_764_000_123_456_789, NONCE_LIMIT - 1] {
            let mut d = [0u8; NONCE_WIDTH];
            encode(n, &mut d);
            assert_eq!(decode(&d), Some(n));
        }
    }
}
