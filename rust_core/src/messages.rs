//! Raw exchange messages → update ids + levels as scaled integers, in one pass.
//!
//! Shapes understood (each possibly wrapped in `{"stream":..,"data":{..}}` or `{"result":{..}}`):
//! - Binance `depthUpdate` diffs: `e, E, T, s, U, u, pu, b, a`;
//! - Binance REST depth snapshots: `lastUpdateId, bids, asks`;
//! - Bybit v5 `orderbook.*`: `{"topic","type":"snapshot"|"delta","data":{"s","b","a","u","seq"}}`
//!   and the REST `{"result":{"b","a","u",..}}` snapshot;
//! - a generic normalised shape for the `sequential` rule: `U?, u|nonce, b|bids, a|asks, type?`.
//!
//! Anything else (`bookTicker`, `trade`, subscription acks) is recognised and ignored. Levels go
//! into caller-owned scratch vectors, so steady-state parsing allocates nothing.

use std::fmt;

use crate::fixed::{check_scale, checked_pow10, parse_fixed, parse_size, FixedError};
use crate::json::{Cursor, JsonError};

/// The venue rules a `BookSync` can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// First applied diff `U <= L+1 <= u`, then `U == prev_u + 1`.
    BinanceSpot,
    /// First applied diff `U <= L <= u`, then `pu == prev_u`.
    BinanceFutures,
    /// Snapshot message, then `u == prev_u + 1`; a snapshot message always resets.
    Bybit,
    /// Generic: each diff carries `U..=u` (or a single `u`/`nonce`); `U == prev_u + 1`.
    Sequential,
}

impl Rule {
    pub const ALL: [Rule; 4] = [Rule::BinanceSpot, Rule::BinanceFutures, Rule::Bybit, Rule::Sequential];

    pub fn name(self) -> &'static str {
        match self {
            Rule::BinanceSpot => "binance_spot",
            Rule::BinanceFutures => "binance_futures",
            Rule::Bybit => "bybit",
            Rule::Sequential => "sequential",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// Why a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    Json(JsonError),
    Number {
        pos: usize,
        err: FixedError,
    },
    Missing(&'static str),
    /// A price or size scale past `MAX_DECIMALS` (a caller's mistake, not the message's).
    Scale(FixedError),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Json(e) => write!(f, "malformed JSON: {e}"),
            MessageError::Number { pos, err } => write!(f, "bad price or size at byte {pos}: {err}"),
            MessageError::Missing(field) => write!(f, "missing field {field}"),
            MessageError::Scale(e) => write!(f, "bad scale: {e}"),
        }
    }
}

impl std::error::Error for MessageError {}

impl From<JsonError> for MessageError {
    fn from(e: JsonError) -> Self {
        MessageError::Json(e)
    }
}

/// Update ids of one diff. `prev` is Binance futures' `pu` (may be -1 on a stream's first diff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffIds {
    pub first: u64,
    pub last: u64,
    pub prev: Option<i64>,
}

/// What a message turned out to be; its levels (if any) are in the scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Diff(DiffIds),
    Snapshot { last_update_id: u64 },
    Ignored,
}

/// One message's levels by reference: (bids, asks), (price, size) in message order.
pub type LevelSlices<'a> = (&'a [(i64, i64)], &'a [(i64, i64)]);

/// Reusable level buffers: (price, size) as scaled integers, in message order.
#[derive(Debug, Default, Clone)]
pub struct Levels {
    pub bids: Vec<(i64, i64)>,
    pub asks: Vec<(i64, i64)>,
}

impl Levels {
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    pub fn len(&self) -> usize {
        self.bids.len() + self.asks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
struct Fields<'a> {
    event: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
    first: Option<u64>,
    last: Option<u64>,
    prev: Option<i64>,
    last_update_id: Option<u64>,
    has_levels: bool,
}

/// Parse one message for `rule`, filling `levels`.
pub fn parse_message(
    raw: &[u8],
    rule: Rule,
    price_decimals: u32,
    size_decimals: u32,
    levels: &mut Levels,
) -> Result<Message, MessageError> {
    levels.clear();
    check_scales(price_decimals, size_decimals)?;
    let mut c = Cursor::new(raw);
    let mut f = Fields::default();
    let scale = (price_decimals, size_decimals);
    if scan_object(&mut c, &mut f, levels, scale, 0)? == Scan::Ignore {
        levels.clear();
        return Ok(Message::Ignored);
    }
    c.end()?;
    let msg = match rule {
        Rule::BinanceSpot | Rule::BinanceFutures => {
            if f.event == Some(b"depthUpdate") {
                Message::Diff(DiffIds {
                    first: f.first.ok_or(MessageError::Missing("U"))?,
                    last: f.last.ok_or(MessageError::Missing("u"))?,
                    prev: f.prev,
                })
            } else if let (Some(l), true) = (f.last_update_id, f.has_levels) {
                Message::Snapshot { last_update_id: l }
            } else {
                Message::Ignored
            }
        }
        Rule::Bybit => match f.kind {
            Some(b"snapshot") => Message::Snapshot { last_update_id: f.last.ok_or(MessageError::Missing("u"))? },
            Some(b"delta") => {
                let u = f.last.ok_or(MessageError::Missing("u"))?;
                Message::Diff(DiffIds { first: u, last: u, prev: None })
            }
            None if f.has_levels && f.last.is_some() => Message::Snapshot { last_update_id: f.last.unwrap() },
            _ => Message::Ignored,
        },
        Rule::Sequential => {
            if f.kind == Some(b"snapshot") || f.last_update_id.is_some() {
                let l = f.last_update_id.or(f.last).ok_or(MessageError::Missing("lastUpdateId"))?;
                Message::Snapshot { last_update_id: l }
            } else if let (Some(u), true) = (f.last, f.has_levels) {
                Message::Diff(DiffIds { first: f.first.unwrap_or(u), last: u, prev: f.prev })
            } else {
                Message::Ignored
            }
        }
    };
    if msg == Message::Ignored {
        levels.clear();
    }
    Ok(msg)
}

fn check_scales(price_decimals: u32, size_decimals: u32) -> Result<(), MessageError> {
    check_scale(price_decimals).and(check_scale(size_decimals)).map_err(MessageError::Scale)
}

#[derive(PartialEq, Eq)]
enum Scan {
    Done,
    /// A message that is certainly not book data (e.g. `"e":"trade"`): stop reading it.
    Ignore,
}

fn scan_object<'a>(
    c: &mut Cursor<'a>,
    f: &mut Fields<'a>,
    levels: &mut Levels,
    scale: (u32, u32),
    depth: u32,
) -> Result<Scan, MessageError> {
    let mut obj = c.object()?;
    while let Some(key) = obj.next_key(c)? {
        match key {
            b"data" | b"result" if depth == 0 && c.peek() == Some(b'{') => {
                if scan_object(c, f, levels, scale, depth + 1)? == Scan::Ignore {
                    return Ok(Scan::Ignore);
                }
            }
            b"e" => {
                let e = c.string()?;
                if e != b"depthUpdate" {
                    return Ok(Scan::Ignore);
                }
                f.event = Some(e);
            }
            b"type" => f.kind = Some(c.string()?),
            b"U" => f.first = Some(c.u64()?),
            b"u" | b"nonce" => f.last = Some(c.u64()?),
            b"pu" => f.prev = Some(signed(c)?),
            b"lastUpdateId" => f.last_update_id = Some(c.u64()?),
            b"b" | b"bids" if c.peek() == Some(b'[') => {
                read_levels(c, &mut levels.bids, scale)?;
                f.has_levels = true;
            }
            b"a" | b"asks" if c.peek() == Some(b'[') => {
                read_levels(c, &mut levels.asks, scale)?;
                f.has_levels = true;
            }
            _ => c.skip_value()?,
        }
    }
    Ok(Scan::Done)
}

fn signed(c: &mut Cursor<'_>) -> Result<i64, MessageError> {
    let tok = c.number()?;
    let v = parse_fixed(tok, 0).map_err(|err| MessageError::Number { pos: c.i, err })?;
    Ok(v)
}

/// `[[price, size, ...], ...]` → scaled (price, size) pairs.
#[inline]
fn read_levels(c: &mut Cursor<'_>, out: &mut Vec<(i64, i64)>, scale: (u32, u32)) -> Result<(), MessageError> {
    let start = (c.i, out.len());
    if read_levels_fast(c, out, scale) {
        return Ok(());
    }
    // Another shape (whitespace, bare numbers, extra fields): re-read it the general way.
    (c.i, _) = start;
    out.truncate(start.1);
    read_levels_general(c, out, scale)
}

/// The shape exchanges send, `[["61659.70","1.486"],...]` with no whitespace, read in one
/// pass over the bytes. false means "not this shape, or a value to look at closely": the
/// caller re-reads the array with the general reader, which also words any error.
#[inline]
fn read_levels_fast(c: &mut Cursor<'_>, out: &mut Vec<(i64, i64)>, (pd, sd): (u32, u32)) -> bool {
    let b = c.bytes();
    let mut i = c.i;
    // The caller peeked '[' (whitespace before it already skipped).
    i += 1;
    if b.get(i) == Some(&b']') {
        c.i = i + 1;
        return true;
    }
    loop {
        if b.get(i..i + 2) != Some(b"[\"") {
            return false;
        }
        let ps = i + 2;
        let Some((price, pe)) = quoted_fixed(b, ps, pd) else { return false };
        if b.get(pe..pe + 3) != Some(b"\",\"") {
            return false;
        }
        let ss = pe + 3;
        let Some((size, se)) = quoted_fixed(b, ss, sd) else { return false };
        if b.get(se..se + 2) != Some(b"\"]") {
            return false;
        }
        out.push((price, size));
        i = se + 2;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b']') => {
                c.i = i + 1;
                return true;
            }
            _ => return false,
        }
    }
}

/// `digits[.digits]"` from `i` → (value × 10^decimals, index of the closing quote), for the
/// common case only: unsigned, at most 18 digits (so no overflow checks), exact at the scale.
/// None sends the caller to the checked parser, which also words the error.
#[inline(always)]
fn quoted_fixed(b: &[u8], mut i: usize, decimals: u32) -> Option<(i64, usize)> {
    let start = i;
    let mut v: u64 = 0;
    let mut dot = usize::MAX;
    while i < b.len() {
        let c = b[i];
        let d = c.wrapping_sub(b'0');
        if d <= 9 {
            // A 20th digit may wrap; that token is refused just below, so the value is unused.
            v = v.wrapping_mul(10).wrapping_add(d as u64);
        } else if c == b'.' && dot == usize::MAX && i > start {
            dot = i;
        } else if c == b'"' {
            break;
        } else {
            return None;
        }
        i += 1;
        if i - start > 19 {
            return None;
        }
    }
    if i == start || i >= b.len() {
        return None; // empty, or no closing quote
    }
    let frac = if dot == usize::MAX { 0 } else { (i - dot - 1) as u32 };
    let v = if frac > decimals {
        // Trailing zeros past the scale are fine ("61685.99000000" at 2 dp); anything else is
        // for the checked parser to reject.
        let p = checked_pow10(frac - decimals)? as u64;
        if v % p != 0 {
            return None;
        }
        v / p
    } else {
        v.checked_mul(checked_pow10(decimals - frac)? as u64)?
    };
    (v <= i64::MAX as u64).then_some((v as i64, i))
}

fn read_levels_general(
    c: &mut Cursor<'_>,
    out: &mut Vec<(i64, i64)>,
    (pd, sd): (u32, u32),
) -> Result<(), MessageError> {
    let mut outer = c.array()?;
    while outer.next(c)? {
        let mut inner = c.array()?;
        if !inner.next(c)? {
            return Err(JsonError { pos: c.i, what: "empty level" }.into());
        }
        let at = c.i;
        let price = parse_fixed(c.decimal()?, pd).map_err(|err| MessageError::Number { pos: at, err })?;
        if !inner.next(c)? {
            return Err(JsonError { pos: c.i, what: "level without a size" }.into());
        }
        let at = c.i;
        let size = parse_size(c.decimal()?, sd).map_err(|err| MessageError::Number { pos: at, err })?;
        // Some venues add fields (order count, ...): skip them.
        while inner.next(c)? {
            c.skip_value()?;
        }
        out.push((price, size));
    }
    Ok(())
}

/// A best bid/offer message (Binance `bookTicker`): update id and scaled prices and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookTicker {
    pub update_id: u64,
    pub bid_price: i64,
    pub bid_size: i64,
    pub ask_price: i64,
    pub ask_size: i64,
}

/// Parse a Binance `bookTicker` (bare or stream-wrapped); `Ok(None)` for any other message.
pub fn parse_book_ticker(
    raw: &[u8],
    price_decimals: u32,
    size_decimals: u32,
) -> Result<Option<BookTicker>, MessageError> {
    check_scales(price_decimals, size_decimals)?;
    let mut c = Cursor::new(raw);
    let mut t = [None::<i64>; 4];
    let mut u = None;
    if !scan_ticker(&mut c, &mut t, &mut u, (price_decimals, size_decimals), 0)? {
        return Ok(None);
    }
    c.end()?;
    match (u, t) {
        (Some(update_id), [Some(bid_price), Some(bid_size), Some(ask_price), Some(ask_size)]) => {
            Ok(Some(BookTicker { update_id, bid_price, bid_size, ask_price, ask_size }))
        }
        _ => Ok(None),
    }
}

fn scan_ticker(
    c: &mut Cursor<'_>,
    t: &mut [Option<i64>; 4],
    u: &mut Option<u64>,
    (pd, sd): (u32, u32),
    depth: u32,
) -> Result<bool, MessageError> {
    let mut obj = c.object()?;
    while let Some(key) = obj.next_key(c)? {
        let slot = match key {
            b"b" => Some((0, pd)),
            b"B" => Some((1, sd)),
            b"a" => Some((2, pd)),
            b"A" => Some((3, sd)),
            _ => None,
        };
        match (key, slot) {
            (b"data", _) if depth == 0 && c.peek() == Some(b'{') => {
                if !scan_ticker(c, t, u, (pd, sd), depth + 1)? {
                    return Ok(false);
                }
            }
            (b"e", _) => {
                if c.string()? != b"bookTicker" {
                    return Ok(false);
                }
            }
            (b"u", _) => *u = Some(c.u64()?),
            (_, Some((i, d))) if c.peek() == Some(b'"') => {
                let at = c.i;
                t[i] = Some(parse_fixed(c.string()?, d).map_err(|err| MessageError::Number { pos: at, err })?);
            }
            (_, Some(_)) => return Ok(false), // depth diff: "b" is an array
            _ => c.skip_value()?,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, rule: Rule, pd: u32, sd: u32) -> (Result<Message, MessageError>, Levels) {
        let mut l = Levels::default();
        let r = parse_message(raw.as_bytes(), rule, pd, sd, &mut l);
        (r, l)
    }

    const FUT_DIFF: &str = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161255030,"T":1723161255029,"s":"BTCUSDT","U":5114213720557,"u":5114213721080,"pu":5114213720551,"b":[["61647.90","0.003"],["61650.00","0.000"]],"a":[["61660.10","1.234"]]}}"#;

    #[test]
    fn binance_futures_diff_wrapped_and_bare() {
        let (m, l) = parse(FUT_DIFF, Rule::BinanceFutures, 2, 3);
        assert_eq!(
            m,
            Ok(Message::Diff(DiffIds { first: 5114213720557, last: 5114213721080, prev: Some(5114213720551) }))
        );
        assert_eq!(l.bids, vec![(6_164_790, 3), (6_165_000, 0)]);
        assert_eq!(l.asks, vec![(6_166_010, 1_234)]);
        let bare = &FUT_DIFF[FUT_DIFF.find(",\"data\":").unwrap() + 8..FUT_DIFF.len() - 1];
        let (m2, l2) = parse(bare, Rule::BinanceFutures, 2, 3);
        assert_eq!(m2, m);
        assert_eq!(l2.bids, l.bids);
    }

    #[test]
    fn binance_snapshot_and_ignored_messages() {
        let snap =
            r#"{"lastUpdateId":100,"E":1,"T":2,"bids":[["10.00","1.000"]],"asks":[["10.10","2.000"],["10.20","3"]]}"#;
        let (m, l) = parse(snap, Rule::BinanceFutures, 2, 3);
        assert_eq!(m, Ok(Message::Snapshot { last_update_id: 100 }));
        assert_eq!(l.asks, vec![(1_010, 2_000), (1_020, 3_000)]);
        let ticker = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#;
        assert_eq!(parse(ticker, Rule::BinanceFutures, 2, 3).0, Ok(Message::Ignored));
        let spot_ticker =
            r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#;
        assert_eq!(parse(spot_ticker, Rule::BinanceSpot, 2, 3).0, Ok(Message::Ignored));
        assert_eq!(parse(r#"{"result":null,"id":1}"#, Rule::BinanceSpot, 2, 3).0, Ok(Message::Ignored));
        assert_eq!(parse(r#"{"e":"trade","p":"oops"}"#, Rule::BinanceSpot, 2, 3).0, Ok(Message::Ignored));
    }

    #[test]
    fn bybit_snapshot_delta_and_rest() {
        let snap = r#"{"topic":"orderbook.500.XRPUSDT","type":"snapshot","ts":1,"data":{"s":"XRPUSDT","b":[["1.9537","100"]],"a":[["1.9538","5"]],"u":1234,"seq":99},"cts":1}"#;
        let (m, l) = parse(snap, Rule::Bybit, 4, 0);
        assert_eq!(m, Ok(Message::Snapshot { last_update_id: 1234 }));
        assert_eq!((l.bids[0], l.asks[0]), ((19_537, 100), (19_538, 5)));
        let delta = r#"{"topic":"orderbook.500.XRPUSDT","type":"delta","ts":2,"data":{"s":"XRPUSDT","b":[],"a":[["1.9538","0"]],"u":1235,"seq":104},"cts":2}"#;
        assert_eq!(
            parse(delta, Rule::Bybit, 4, 0).0,
            Ok(Message::Diff(DiffIds { first: 1235, last: 1235, prev: None }))
        );
        let rest = r#"{"retCode":0,"retMsg":"OK","result":{"s":"XRPUSDT","b":[["1.9537","100"]],"a":[],"ts":1,"u":77,"seq":5},"time":1}"#;
        assert_eq!(parse(rest, Rule::Bybit, 4, 0).0, Ok(Message::Snapshot { last_update_id: 77 }));
        assert_eq!(parse(r#"{"success":true,"op":"subscribe"}"#, Rule::Bybit, 4, 0).0, Ok(Message::Ignored));
    }

    #[test]
    fn sequential_generic_shape_accepts_numbers() {
        let (m, l) = parse(r#"{"nonce":7,"bids":[[100.5,0.25]],"asks":[]}"#, Rule::Sequential, 1, 2);
        assert_eq!(m, Ok(Message::Diff(DiffIds { first: 7, last: 7, prev: None })));
        assert_eq!(l.bids, vec![(1_005, 25)]);
        let (m, _) = parse(r#"{"type":"snapshot","u":9,"b":[],"a":[]}"#, Rule::Sequential, 1, 2);
        assert_eq!(m, Ok(Message::Snapshot { last_update_id: 9 }));
    }

    #[test]
    fn general_shapes_parse_like_the_fast_path() {
        let fast = r#"{"e":"depthUpdate","U":1,"u":2,"pu":0,"b":[["1.50","2"],["1.40","0"]],"a":[]}"#;
        let spaced = r#"{ "e" : "depthUpdate", "U" : 1, "u" : 2, "pu" : 0, "b" : [ [ "1.50" , "2" ] , ["1.40","0",7] ], "a" : [ ] }"#;
        let (m1, l1) = parse(fast, Rule::BinanceFutures, 2, 3);
        let (m2, l2) = parse(spaced, Rule::BinanceFutures, 2, 3);
        assert_eq!(m1, m2);
        assert_eq!(l1.bids, vec![(150, 2_000), (140, 0)]);
        assert_eq!(l1.bids, l2.bids);
    }

    #[test]
    fn rejects_bad_numbers_and_shapes() {
        let cases = [
            r#"{"e":"depthUpdate","U":1,"u":2,"pu":0,"b":[["61647.901","0.003"]],"a":[]}"#, // too precise
            r#"{"e":"depthUpdate","U":1,"u":2,"pu":0,"b":[["61647.90","-0.003"]],"a":[]}"#, // negative size
            r#"{"e":"depthUpdate","U":1,"u":2,"pu":0,"b":[["abc","0.003"]],"a":[]}"#,       // junk
            r#"{"e":"depthUpdate","U":1,"u":2,"pu":0,"b":[["61647.90"]],"a":[]}"#,          // no size
            r#"{"e":"depthUpdate","U":1,"u":2,"pu":0,"b":[["61647.90","0.003"]"#,           // truncated
            r#"{"e":"depthUpdate","u":2,"pu":0,"b":[],"a":[]}"#,                            // no U
            r#"{"e":"depthUpdate","U":1,"u":2,"b":[],"a":[]} trailing"#,
            "not json",
            "",
        ];
        for raw in cases {
            assert!(parse(raw, Rule::BinanceFutures, 2, 3).0.is_err(), "{raw}");
        }
    }

    #[test]
    fn book_ticker() {
        let t = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5114213721080,"s":"BTCUSDT","b":"61659.70","B":"1.486","a":"61659.80","A":"0.981","T":1,"E":2}}"#;
        assert_eq!(
            parse_book_ticker(t.as_bytes(), 2, 3),
            Ok(Some(BookTicker {
                update_id: 5114213721080,
                bid_price: 6_165_970,
                bid_size: 1_486,
                ask_price: 6_165_980,
                ask_size: 981
            }))
        );
        assert_eq!(parse_book_ticker(FUT_DIFF.as_bytes(), 2, 3), Ok(None));
        assert_eq!(parse_book_ticker(br#"{"e":"trade","p":"1"}"#, 2, 3), Ok(None));
        assert!(parse_book_ticker(br#"{"u":1,"b":"1.001","B":"1","a":"2","A":"1"}"#, 2, 3).is_err());
    }
}
