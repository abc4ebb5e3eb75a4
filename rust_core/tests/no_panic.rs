//! No panic from outside input: the parsers, the sync, the book and the order set take random
//! and mutated bytes, any scale and extreme integers, and answer with a value or an error.
//! A seeded generator (no extra crate) so a failure replays; `cargo test` (debug) also checks
//! every arithmetic overflow. The recordings join the corpus when `$MIXMAKER_DATA` or
//! `../shared/data/market` holds them.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use mixmaker_core::fixed::{format_fixed, parse_fixed, parse_lenient, parse_size, to_f64};
use mixmaker_core::orders::{ClientIdGenerator, Event, Fill, Order, OrderSet, Side};
use mixmaker_core::sync::SyncedBook;
use mixmaker_core::{parse_book_ticker, parse_message, L2Book, Levels, Rule, State};

/// xorshift64*: small, seeded, good enough to pick bytes and positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    /// An integer near a boundary or anywhere.
    fn int(&mut self) -> i64 {
        const EDGES: [i64; 10] = [0, 1, -1, i64::MAX, i64::MIN, i64::MAX - 1, i64::MIN + 1, 1 << 62, -(1 << 62), 10];
        if self.chance(2) {
            EDGES[self.below(EDGES.len())]
        } else {
            self.next() as i64 >> self.below(64)
        }
    }
}

const SAMPLES: [&str; 6] = [
    r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":100,"u":105,"pu":99,"b":[["61647.90","0.003"],["61650.00","0.000"]],"a":[["61660.10","1.234"]]}}"#,
    r#"{"lastUpdateId":100,"E":1,"T":2,"bids":[["61650.00","1.000"],["61640.00","2.5"]],"asks":[["61660.10","2.000"]]}"#,
    r#"{"topic":"orderbook.500.XRPUSDT","type":"snapshot","ts":1,"data":{"s":"XRPUSDT","b":[["1.9537","100"]],"a":[["1.9538","5"]],"u":1234,"seq":99},"cts":1}"#,
    r#"{"topic":"orderbook.500.XRPUSDT","type":"delta","ts":2,"data":{"s":"XRPUSDT","b":[],"a":[["1.9538","0"]],"u":1235,"seq":104},"cts":2}"#,
    r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5,"s":"BTCUSDT","b":"61659.70","B":"1.486","a":"61659.80","A":"0.981"}}"#,
    r#"{"nonce":7,"U":6,"bids":[[100.5,0.25]],"asks":[[101,1e2]]}"#,
];
const TOKENS: [&[u8]; 10] = [
    b"99999999999999999999",
    b"-1",
    b"1e400",
    b"0.0000000000000000001",
    b"18446744073709551616",
    b"9223372036854775808",
    b"",
    b"[[[[[[[[",
    b"\"",
    b"1.",
];

fn corpus() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = SAMPLES.iter().map(|s| s.as_bytes().to_vec()).collect();
    let dir = std::env::var_os("MIXMAKER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/market"));
    for name in ["binance_usdm_btcusdt_20240808_hftbacktest.gz", "binance_spot_btcusdt_20240808_hftbacktest.gz"] {
        let Ok(f) = std::fs::File::open(dir.join(name)) else { continue };
        let lines = BufReader::new(flate2::read::GzDecoder::new(f)).split(b'\n').take(120);
        // `<local_ts_ns> <raw JSON>`: keep the JSON.
        out.extend(lines.map_while(Result::ok).filter_map(|l| {
            let at = l.iter().position(|&c| c == b' ')?;
            Some(l[at + 1..].to_vec())
        }));
    }
    out
}

fn mutate(raw: &[u8], r: &mut Rng) -> Vec<u8> {
    let mut b = raw.to_vec();
    for _ in 0..=r.below(3) {
        if b.is_empty() {
            b.extend((0..r.below(16)).map(|_| r.next() as u8));
            continue;
        }
        let i = r.below(b.len());
        match r.below(6) {
            0 => {
                let digits: Vec<usize> = (0..b.len()).filter(|&k| b[k].is_ascii_digit()).collect();
                if !digits.is_empty() {
                    b[digits[r.below(digits.len())]] = b'0' + r.below(10) as u8;
                }
            }
            1 => b[i] = r.next() as u8,
            2 => {
                let end = (i + 1 + r.below(40)).min(b.len());
                b.drain(i..end);
            }
            3 => b.truncate(i),
            4 => {
                let end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                b.splice(i..end, TOKENS[r.below(TOKENS.len())].iter().copied());
            }
            _ => b.splice(i..i, (0..1 + r.below(8)).map(|_| r.next() as u8)).for_each(drop),
        }
    }
    b
}

fn scale(r: &mut Rng) -> u32 {
    if r.chance(4) {
        [19, 25, 40, u32::MAX][r.below(4)]
    } else {
        r.below(19) as u32
    }
}

#[test]
fn parsers_answer_any_bytes_at_any_scale() {
    let corpus = corpus();
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut levels = Levels::default();
    for _ in 0..40_000 {
        let raw = match r.below(3) {
            0 => (0..r.below(80)).map(|_| r.next() as u8).collect(),
            1 => corpus[r.below(corpus.len())].clone(),
            _ => mutate(&corpus[r.below(corpus.len())], &mut r),
        };
        let (pd, sd) = (scale(&mut r), scale(&mut r));
        let rule = Rule::ALL[r.below(Rule::ALL.len())];
        if parse_message(&raw, rule, pd, sd, &mut levels).is_ok() {
            assert!(levels.bids.iter().chain(&levels.asks).all(|&(_, s)| s >= 0), "a negative size parsed");
        }
        let _ = parse_book_ticker(&raw, pd, sd);
        let text = &raw[..raw.len().min(40)];
        let _ = (parse_fixed(text, pd), parse_size(text, pd), parse_lenient(text, pd));
        let _ = (format_fixed(r.int(), pd.min(40)), to_f64(r.int(), pd));
    }
}

#[test]
fn sync_takes_any_stream_and_never_reports_a_crossed_book() {
    let corpus = corpus();
    let mut r = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..400 {
        let rule = Rule::ALL[r.below(Rule::ALL.len())];
        let (pd, sd) = if r.chance(2) { (2, 3) } else { (r.below(19) as u32, r.below(19) as u32) };
        let mut s = SyncedBook::new(rule, pd, sd, 1 + r.below(64)).expect("valid scales");
        let start = r.below(corpus.len());
        for k in 0..r.below(80) {
            let base = &corpus[(start + k) % corpus.len()];
            let raw = if r.chance(5) { mutate(base, &mut r) } else { base.clone() };
            let state = if raw.starts_with(b"{\"lastUpdateId\"") || r.chance(20) {
                s.on_snapshot(&raw)
            } else {
                s.on_message(&raw)
            };
            if state == State::Synced {
                let book = s.book().expect("synced");
                assert!(!book.is_crossed(), "SYNCED over a crossed book");
                let _ = (book.spread(), book.mid_f64(), book.bids.iter().count());
            }
        }
    }
}

#[test]
fn book_takes_extreme_prices_and_sizes() {
    let mut r = Rng(0x5851_F42D_4C95_7F2D);
    for _ in 0..300 {
        let mut b = L2Book::new(r.below(19) as u32, r.below(19) as u32).expect("valid scales");
        for _ in 0..r.below(60) {
            let (price, size) = (r.int(), r.int().max(0));
            match r.below(5) {
                0 => b.load(&[(price, size), (r.int(), 1)], &[(r.int(), r.int().max(0))], r.next()),
                1 => b.set_columns(&[1, 0, 1], &[price, r.int(), price / 2], &[size, size, 0]),
                2 => b.apply_levels(&[(price, size)], &[(r.int(), size)]),
                _ => b.set(r.chance(2), price, size),
            }
            let side = b.side(r.chance(2));
            let _ = (side.volume_to_price(r.int()), side.price_for_volume(r.int()), side.notional_for_volume(r.int()));
            let _ = (b.spread(), b.mid_x2(), b.mid_f64(), b.is_crossed());
            assert_eq!(b.bids.iter().count(), b.bids.len());
            assert_eq!(b.asks.iter().count(), b.asks.len());
        }
    }
}

#[test]
fn orders_take_extreme_numbers() {
    let mut r = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..300 {
        let mut set = OrderSet::new();
        for k in 0..4 {
            let side = if r.chance(2) { Side::Buy } else { Side::Sell };
            if let Ok(o) = Order::new(&format!("c{k}"), "S", side, r.int(), r.int(), r.next() as u32) {
                let _ = set.insert(o);
            }
        }
        for _ in 0..r.below(30) {
            let cid = format!("c{}", r.below(4));
            let fill = Fill {
                trade_id: format!("t{}", r.below(6)),
                price: r.int(),
                qty: r.int(),
                fee: r.int(),
                fee_asset: String::new(),
                is_maker: false,
            };
            let ev = match r.below(5) {
                0 => Event::Fill(fill),
                1 => Event::Accepted { exchange_id: format!("E{}", r.below(3)) },
                2 => Event::NotFound,
                3 => Event::CancelRequested,
                _ => Event::Submitted,
            };
            let _ = set.apply(&cid, &ev);
            let _ = set.exposure("S");
            if let Some(o) = set.get(&cid) {
                let _ = (o.avg_price(), o.remaining(), o.overfill());
            }
        }
        let mut g = ClientIdGenerator::new("mm", r.below(40), "abcd", r.next() >> r.below(64)).ok();
        if let Some(g) = g.as_mut() {
            for _ in 0..3 {
                if let Ok(id) = g.next(r.next() >> r.below(64)) {
                    assert_eq!(g.nonce_of(&id), Some(g.last()));
                }
            }
        }
    }
}
