//! A recording prepared for replay: every line's receive time and kind in columns, book
//! messages already parsed into levels, public trades into integers. Built in one pass over
//! `<ts_ns> <json>` lines (hftbacktest's collector format), saved to and loaded from a flat
//! binary file, so repeated backtests skip decompressing, splitting and parsing.
//!
//! Replaying a tape into a `BookSync` is exactly replaying the lines: each book message goes
//! through the same sync entry point with the levels `parse_message` produced, and a line the
//! parser refused is kept as bytes and refused again. `bookTicker` lines keep only their time
//! (the sync ignores them) unless the builder is asked to keep their prices.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use crate::book::L2Book;
use crate::fixed::parse_lenient;
use crate::json::Cursor;
use crate::messages::{parse_book_ticker, parse_message, DiffIds, LevelSlices, Levels, Message, MessageError, Rule};
use crate::sync::{BookSync, State};

/// What one line of the recording is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A stream diff: `BookSync::on_parsed` with `Message::Diff`.
    Diff = 0,
    /// A snapshot inside the stream (Bybit): `on_parsed` with `Message::Snapshot`.
    StreamSnapshot = 1,
    /// A REST depth snapshot: `on_snapshot_levels`.
    RestSnapshot = 2,
    /// Parsed and found to carry no book data (tickers, acks): counted as ignored.
    Ignored = 3,
    /// A public market trade.
    Trade = 4,
    /// A trade that is not a market trade (insurance fund, ADL): its time only.
    OtherTrade = 5,
    /// A stream line the parser refused, kept as bytes (`on_message` refuses it again).
    RawMessage = 6,
    /// A snapshot line the parser refused, kept as bytes (`on_snapshot`).
    RawSnapshot = 7,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            0 => Kind::Diff,
            1 => Kind::StreamSnapshot,
            2 => Kind::RestSnapshot,
            3 => Kind::Ignored,
            4 => Kind::Trade,
            5 => Kind::OtherTrade,
            6 => Kind::RawMessage,
            7 => Kind::RawSnapshot,
            _ => return None,
        })
    }
}

/// Why a recording could not become a tape.
#[derive(Debug)]
pub enum TapeError {
    /// A line without its `<ts_ns> ` prefix (1-based line number).
    Untimed {
        line: u64,
    },
    /// A trade line whose price, size or side cannot be read.
    BadTrade {
        line: u64,
        why: String,
    },
    /// The tape file is not a tape, another version, or cut short.
    BadFile(String),
    Io(io::Error),
}

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapeError::Untimed { line } => write!(f, "line {line} has no `<ts_ns> ` prefix"),
            TapeError::BadTrade { line, why } => write!(f, "line {line}: unreadable trade: {why}"),
            TapeError::BadFile(why) => write!(f, "not a usable tape: {why}"),
            TapeError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TapeError {}

impl From<io::Error> for TapeError {
    fn from(e: io::Error) -> Self {
        TapeError::Io(e)
    }
}

/// Columns of a prepared recording.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tape {
    pub rule_name: String,
    pub price_decimals: u32,
    pub size_decimals: u32,
    /// Per line: receive time, kind, index into that kind's table.
    pub ts: Vec<i64>,
    pub kind: Vec<u8>,
    pub arg: Vec<u32>,
    /// Book messages: update ids (`prev` is `i64::MIN` when absent) and their levels.
    pub first: Vec<u64>,
    pub last: Vec<u64>,
    pub prev: Vec<i64>,
    pub lv_start: Vec<u64>,
    pub n_bids: Vec<u32>,
    pub n_asks: Vec<u32>,
    pub levels: Vec<(i64, i64)>,
    /// Market trades: price, size, buyer is maker (1) or not (0).
    pub tr_price: Vec<i64>,
    pub tr_qty: Vec<i64>,
    pub tr_maker: Vec<u8>,
    /// Lines kept as bytes: `raw[raw_start[i]..raw_start[i + 1]]` (one extra end offset).
    pub raw_start: Vec<u64>,
    pub raw: Vec<u8>,
    /// bookTickers, only when asked for: line index, update id, bid, bid size, ask, ask size.
    pub tk_line: Vec<u64>,
    pub tk: Vec<[i64; 5]>,
}

const NO_PREV: i64 = i64::MIN;
const MAGIC: &[u8; 8] = b"MMTAPE\x00\x01";

impl Tape {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn trades(&self) -> usize {
        self.tr_price.len()
    }

    pub fn level_count(&self) -> usize {
        self.levels.len()
    }

    fn book_levels(&self, i: usize) -> LevelSlices<'_> {
        let s = self.lv_start[i] as usize;
        let nb = self.n_bids[i] as usize;
        let na = self.n_asks[i] as usize;
        (&self.levels[s..s + nb], &self.levels[s + nb..s + nb + na])
    }

    fn raw_line(&self, i: usize) -> &[u8] {
        &self.raw[self.raw_start[i] as usize..self.raw_start[i + 1] as usize]
    }

    /// Feed line `i` to the sync (trades and other non-book lines do nothing).
    pub fn apply(&self, i: usize, sync: &mut BookSync, book: &mut L2Book, scratch: &mut Levels) -> State {
        let a = self.arg[i] as usize;
        match Kind::from_u8(self.kind[i]) {
            Some(Kind::Diff) => {
                let ids = DiffIds {
                    first: self.first[a],
                    last: self.last[a],
                    prev: if self.prev[a] == NO_PREV { None } else { Some(self.prev[a]) },
                };
                sync.on_parsed(book, Ok(Message::Diff(ids)), self.book_levels(a))
            }
            Some(Kind::StreamSnapshot) => {
                sync.on_parsed(book, Ok(Message::Snapshot { last_update_id: self.last[a] }), self.book_levels(a))
            }
            Some(Kind::RestSnapshot) => {
                let (b, s) = self.book_levels(a);
                scratch.bids.clear();
                scratch.bids.extend_from_slice(b);
                scratch.asks.clear();
                scratch.asks.extend_from_slice(s);
                sync.on_snapshot_levels(book, self.last[a], scratch)
            }
            Some(Kind::Ignored) => sync.on_parsed(book, Ok(Message::Ignored), (&[], &[])),
            Some(Kind::RawMessage) => sync.on_message(book, self.raw_line(a)),
            Some(Kind::RawSnapshot) => sync.on_snapshot(book, self.raw_line(a)),
            Some(Kind::Trade) | Some(Kind::OtherTrade) | None => sync.state(),
        }
    }

    // ------------------------------------------------------------------ file format
    /// Write the tape; `source` is an opaque fingerprint of the recording it came from.
    pub fn write_to(&self, w: &mut impl Write, source: &[u8]) -> io::Result<()> {
        w.write_all(MAGIC)?;
        put_bytes(w, source)?;
        put_bytes(w, self.rule_name.as_bytes())?;
        w.write_all(&self.price_decimals.to_le_bytes())?;
        w.write_all(&self.size_decimals.to_le_bytes())?;
        put_i64s(w, &self.ts)?;
        put_bytes(w, &self.kind)?;
        put_u32s(w, &self.arg)?;
        put_u64s(w, &self.first)?;
        put_u64s(w, &self.last)?;
        put_i64s(w, &self.prev)?;
        put_u64s(w, &self.lv_start)?;
        put_u32s(w, &self.n_bids)?;
        put_u32s(w, &self.n_asks)?;
        let flat: Vec<i64> = self.levels.iter().flat_map(|&(p, s)| [p, s]).collect();
        put_i64s(w, &flat)?;
        put_i64s(w, &self.tr_price)?;
        put_i64s(w, &self.tr_qty)?;
        put_bytes(w, &self.tr_maker)?;
        put_u64s(w, &self.raw_start)?;
        put_bytes(w, &self.raw)?;
        put_u64s(w, &self.tk_line)?;
        let tk: Vec<i64> = self.tk.iter().flatten().copied().collect();
        put_i64s(w, &tk)?;
        Ok(())
    }

    /// The fingerprint stored in a tape file, without reading the rest.
    pub fn read_source(r: &mut impl Read) -> Result<Vec<u8>, TapeError> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(|_| TapeError::BadFile("too short".into()))?;
        if &magic != MAGIC {
            return Err(TapeError::BadFile("wrong magic or version".into()));
        }
        get_bytes(r)
    }

    /// Read a whole tape file; returns it with its source fingerprint.
    pub fn read_from(r: &mut impl Read) -> Result<(Tape, Vec<u8>), TapeError> {
        let source = Tape::read_source(r)?;
        let rule_name = String::from_utf8(get_bytes(r)?).map_err(|_| TapeError::BadFile("rule name".into()))?;
        let price_decimals = get_u32(r)?;
        let size_decimals = get_u32(r)?;
        let ts = get_i64s(r)?;
        let kind = get_bytes(r)?;
        let arg = get_u32s(r)?;
        let first = get_u64s(r)?;
        let last = get_u64s(r)?;
        let prev = get_i64s(r)?;
        let lv_start = get_u64s(r)?;
        let n_bids = get_u32s(r)?;
        let n_asks = get_u32s(r)?;
        let flat = get_i64s(r)?;
        let levels = flat.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        let tr_price = get_i64s(r)?;
        let tr_qty = get_i64s(r)?;
        let tr_maker = get_bytes(r)?;
        let raw_start = get_u64s(r)?;
        let raw = get_bytes(r)?;
        let tk_line = get_u64s(r)?;
        let tk = get_i64s(r)?.chunks_exact(5).map(|c| [c[0], c[1], c[2], c[3], c[4]]).collect();
        let t = Tape {
            rule_name,
            price_decimals,
            size_decimals,
            ts,
            kind,
            arg,
            first,
            last,
            prev,
            lv_start,
            n_bids,
            n_asks,
            levels,
            tr_price,
            tr_qty,
            tr_maker,
            raw_start,
            raw,
            tk_line,
            tk,
        };
        t.check()?;
        Ok((t, source))
    }

    /// Every index in range, so replaying a loaded file cannot panic.
    fn check(&self) -> Result<(), TapeError> {
        let bad = |w: &str| Err(TapeError::BadFile(w.into()));
        let n = self.ts.len();
        if self.kind.len() != n || self.arg.len() != n {
            return bad("line columns differ in length");
        }
        let nb = self.first.len();
        if [self.last.len(), self.prev.len(), self.lv_start.len(), self.n_bids.len(), self.n_asks.len()]
            .iter()
            .any(|&l| l != nb)
        {
            return bad("book columns differ in length");
        }
        for i in 0..nb {
            let end = self.lv_start[i] + self.n_bids[i] as u64 + self.n_asks[i] as u64;
            if end > self.levels.len() as u64 {
                return bad("levels out of range");
            }
        }
        let nt = self.tr_price.len();
        if self.tr_qty.len() != nt || self.tr_maker.len() != nt {
            return bad("trade columns differ in length");
        }
        if self.raw_start.is_empty() || self.raw_start.windows(2).any(|w| w[0] > w[1]) {
            return bad("raw offsets");
        }
        if *self.raw_start.last().unwrap() != self.raw.len() as u64 {
            return bad("raw bytes cut short");
        }
        let nr = self.raw_start.len() - 1;
        for i in 0..n {
            let a = self.arg[i] as usize;
            let ok = match Kind::from_u8(self.kind[i]) {
                Some(Kind::Diff | Kind::StreamSnapshot | Kind::RestSnapshot) => a < nb,
                Some(Kind::Trade) => a < nt,
                Some(Kind::RawMessage | Kind::RawSnapshot) => a < nr,
                Some(Kind::Ignored | Kind::OtherTrade) => true,
                None => false,
            };
            if !ok {
                return bad("a line points outside its table");
            }
        }
        if self.tk.len() != self.tk_line.len() {
            return bad("ticker columns differ in length");
        }
        if Rule::from_name(&self.rule_name).is_none() {
            return bad("unknown rule");
        }
        Ok(())
    }
}

fn put_bytes(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    w.write_all(&(b.len() as u64).to_le_bytes())?;
    w.write_all(b)
}

macro_rules! put_get {
    ($put:ident, $get:ident, $t:ty, $n:expr) => {
        fn $put(w: &mut impl Write, v: &[$t]) -> io::Result<()> {
            let mut buf = Vec::with_capacity(v.len() * $n);
            for x in v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            put_bytes(w, &buf)
        }

        fn $get(r: &mut impl Read) -> Result<Vec<$t>, TapeError> {
            let b = get_bytes(r)?;
            if b.len() % $n != 0 {
                return Err(TapeError::BadFile("column length".into()));
            }
            Ok(b.chunks_exact($n).map(|c| <$t>::from_le_bytes(c.try_into().unwrap())).collect())
        }
    };
}

put_get!(put_i64s, get_i64s, i64, 8);
put_get!(put_u64s, get_u64s, u64, 8);
put_get!(put_u32s, get_u32s, u32, 4);

fn get_u32(r: &mut impl Read) -> Result<u32, TapeError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|_| TapeError::BadFile("cut short".into()))?;
    Ok(u32::from_le_bytes(b))
}

/// Longest column a tape file may declare (guards the allocation against a corrupt header).
const MAX_COLUMN: u64 = 1 << 36;

fn get_bytes(r: &mut impl Read) -> Result<Vec<u8>, TapeError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(|_| TapeError::BadFile("cut short".into()))?;
    let n = u64::from_le_bytes(b);
    if n > MAX_COLUMN {
        return Err(TapeError::BadFile("column too long".into()));
    }
    let mut v = Vec::new();
    r.take(n).read_to_end(&mut v)?;
    if v.len() as u64 != n {
        return Err(TapeError::BadFile("cut short".into()));
    }
    Ok(v)
}

/// Builds a tape line by line.
pub struct TapeBuilder {
    tape: Tape,
    rule: Rule,
    keep_tickers: bool,
    scratch: Levels,
    line: u64,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl TapeBuilder {
    pub fn new(rule: Rule, price_decimals: u32, size_decimals: u32, keep_tickers: bool) -> Self {
        let tape = Tape {
            rule_name: rule.name().to_string(),
            price_decimals,
            size_decimals,
            raw_start: vec![0],
            ..Tape::default()
        };
        TapeBuilder { tape, rule, keep_tickers, scratch: Levels::default(), line: 0 }
    }

    /// One line (its end of line may still be attached).
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), TapeError> {
        self.line += 1;
        let sp = line.iter().position(|&c| c == b' ');
        let ts = match sp {
            Some(sp) if sp > 0 && line[..sp].iter().all(u8::is_ascii_digit) => {
                std::str::from_utf8(&line[..sp]).ok().and_then(|s| s.parse::<i64>().ok())
            }
            _ => None,
        };
        let (Some(sp), Some(ts)) = (sp, ts) else {
            return Err(TapeError::Untimed { line: self.line });
        };
        let mut end = line.len();
        while end > sp + 1 && matches!(line[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        self.push(ts, &line[sp + 1..end])
    }

    /// One message with its receive time.
    pub fn push(&mut self, ts: i64, raw: &[u8]) -> Result<(), TapeError> {
        let t = &mut self.tape;
        let (pd, sd) = (t.price_decimals, t.size_decimals);
        t.ts.push(ts);
        if contains(&raw[..raw.len().min(80)], b"\"e\":\"trade\"") {
            if contains(raw, b"\"X\":\"") && !contains(raw, b"\"X\":\"MARKET\"") {
                t.kind.push(Kind::OtherTrade as u8);
                t.arg.push(0);
                return Ok(());
            }
            let (p, q, m) = parse_trade(raw, pd, sd).map_err(|why| TapeError::BadTrade { line: self.line, why })?;
            t.kind.push(Kind::Trade as u8);
            t.arg.push(t.tr_price.len() as u32);
            t.tr_price.push(p);
            t.tr_qty.push(q);
            t.tr_maker.push(m as u8);
            return Ok(());
        }
        let rest = raw.len() >= 2 && contains(&raw[..raw.len().min(32)], b"\"lastUpdateId\"");
        let parsed = parse_message(raw, self.rule, pd, sd, &mut self.scratch);
        let kind = match (rest, parsed) {
            (true, Ok(Message::Snapshot { last_update_id })) => {
                self.push_book(last_update_id, last_update_id, NO_PREV);
                Kind::RestSnapshot
            }
            (true, _) => self.push_raw(raw, Kind::RawSnapshot),
            (false, Ok(Message::Diff(ids))) => {
                self.push_book(ids.first, ids.last, ids.prev.unwrap_or(NO_PREV));
                Kind::Diff
            }
            (false, Ok(Message::Snapshot { last_update_id })) => {
                self.push_book(last_update_id, last_update_id, NO_PREV);
                Kind::StreamSnapshot
            }
            (false, Ok(Message::Ignored)) => {
                if self.keep_tickers {
                    if let Ok(Some(k)) = parse_book_ticker(raw, pd, sd) {
                        let t = &mut self.tape;
                        t.tk_line.push(t.ts.len() as u64 - 1);
                        t.tk.push([k.update_id as i64, k.bid_price, k.bid_size, k.ask_price, k.ask_size]);
                    }
                }
                self.tape.arg.push(0);
                Kind::Ignored
            }
            (false, Err(_)) => self.push_raw(raw, Kind::RawMessage),
        };
        self.tape.kind.push(kind as u8);
        Ok(())
    }

    fn push_book(&mut self, first: u64, last: u64, prev: i64) {
        let t = &mut self.tape;
        t.arg.push(t.first.len() as u32);
        t.first.push(first);
        t.last.push(last);
        t.prev.push(prev);
        t.lv_start.push(t.levels.len() as u64);
        t.n_bids.push(self.scratch.bids.len() as u32);
        t.n_asks.push(self.scratch.asks.len() as u32);
        t.levels.extend_from_slice(&self.scratch.bids);
        t.levels.extend_from_slice(&self.scratch.asks);
    }

    fn push_raw(&mut self, raw: &[u8], kind: Kind) -> Kind {
        let t = &mut self.tape;
        t.arg.push(t.raw_start.len() as u32 - 1);
        t.raw.extend_from_slice(raw);
        t.raw_start.push(t.raw.len() as u64);
        kind
    }

    /// Every line of `r` (gzip already undone), split on `\n`.
    pub fn push_lines(&mut self, r: &mut impl BufRead) -> Result<(), TapeError> {
        let mut line = Vec::with_capacity(1 << 16);
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            self.push_line(&line)?;
        }
    }

    /// A whole recording file, gzip (one or more members) or plain text.
    pub fn build_file(path: &str, rule: Rule, pd: u32, sd: u32, keep_tickers: bool) -> Result<Tape, TapeError> {
        let mut head = [0u8; 2];
        let n = std::fs::File::open(path)?.read(&mut head)?;
        let file = std::fs::File::open(path)?;
        let mut b = TapeBuilder::new(rule, pd, sd, keep_tickers);
        if n == 2 && head == [0x1f, 0x8b] {
            let gz = flate2::bufread::MultiGzDecoder::new(io::BufReader::with_capacity(1 << 20, file));
            b.push_lines(&mut io::BufReader::with_capacity(1 << 20, gz))?;
        } else {
            b.push_lines(&mut io::BufReader::with_capacity(1 << 20, file))?;
        }
        Ok(b.finish())
    }

    pub fn finish(self) -> Tape {
        self.tape
    }
}

/// Price, size and "buyer is maker" of a Binance trade (bare or stream-wrapped).
fn parse_trade(raw: &[u8], pd: u32, sd: u32) -> Result<(i64, i64, bool), String> {
    fn scan<'a>(
        c: &mut Cursor<'a>,
        f: &mut (Option<&'a [u8]>, Option<&'a [u8]>, Option<bool>),
        depth: u32,
    ) -> Result<(), MessageError> {
        let mut obj = c.object()?;
        while let Some(key) = obj.next_key(c)? {
            match key {
                b"data" if depth == 0 && c.peek() == Some(b'{') => scan(c, f, 1)?,
                b"p" if c.peek() == Some(b'"') => f.0 = Some(c.string()?),
                b"q" if c.peek() == Some(b'"') => f.1 = Some(c.string()?),
                b"m" => {
                    let rest = &c.bytes()[c.i..];
                    f.2 = Some(rest.starts_with(b"true"));
                    c.skip_value()?;
                }
                _ => c.skip_value()?,
            }
        }
        Ok(())
    }
    let mut c = Cursor::new(raw);
    let mut f = (None, None, None);
    scan(&mut c, &mut f, 0).map_err(|e| e.to_string())?;
    let (Some(p), Some(q), Some(m)) = f else {
        return Err("needs p, q and m".into());
    };
    let p = parse_lenient(p, pd).map_err(|e| format!("price: {e}"))?;
    let q = parse_lenient(q, sd).map_err(|e| format!("size: {e}"))?;
    Ok((p, q, m))
}

/// Our resting orders, as the replay needs to know them: it hands a trade or a book change
/// back to the caller only when it may touch one of them.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// (price, size queued ahead of us) of each live buy, and of each live sell.
    pub bids: Vec<(i64, i64)>,
    pub asks: Vec<(i64, i64)>,
}

impl Watch {
    fn trade_matters(&self, price: i64, buyer_is_maker: bool) -> bool {
        if buyer_is_maker {
            self.bids.iter().any(|&(p, _)| price <= p)
        } else {
            self.asks.iter().any(|&(p, _)| price >= p)
        }
    }

    fn book_matters(&self, book: &L2Book) -> bool {
        if !self.bids.is_empty() {
            let ask = book.best_ask();
            for &(p, q) in &self.bids {
                if ask.is_some_and(|a| a.0 <= p) || (q > 0 && book.side(true).size_at(p) < q) {
                    return true;
                }
            }
        }
        if !self.asks.is_empty() {
            let bid = book.best_bid();
            for &(p, q) in &self.asks {
                if bid.is_some_and(|b| b.0 >= p) || (q > 0 && book.side(false).size_at(p) < q) {
                    return true;
                }
            }
        }
        false
    }
}

/// What stopped the replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Event {
    /// No line left.
    End = 0,
    /// The next line's time reached the stop time; it is not consumed yet (the next call
    /// consumes it whatever the stop).
    Time = 1,
    /// A trade that may touch a watched order was consumed.
    Trade = 2,
    /// A line that moved the synced book in a way that may touch a watched order was consumed.
    Book = 3,
}

/// Clock boundaries the caller lets the replay pass without stopping: at each, while it is
/// before `until`, the book is synced and its best bid and ask prices (and, when given, the last
/// trade's price) are the ones the caller's last decision was made on, that decision stands, so
/// the boundary is counted in `Player::skipped` and not stopped at. The first boundary that
/// differs is a `Time` stop as usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// The next clock boundary, and the step to the one after.
    pub tick_ns: i64,
    pub step_ns: i64,
    /// The first time the decision may differ whatever the book (a timer, an order's age).
    pub until_ns: i64,
    pub bid: i64,
    pub ask: i64,
    pub last_trade_price: Option<i64>,
}

impl Hold {
    fn stands(&self, at: i64, sync: &BookSync, book: &L2Book, last_trade_price: Option<i64>) -> bool {
        at < self.until_ns
            && sync.state() == State::Synced
            && book.best_bid().is_some_and(|b| b.0 == self.bid)
            && book.best_ask().is_some_and(|a| a.0 == self.ask)
            && self.last_trade_price.is_none_or(|p| last_trade_price == Some(p))
    }
}

/// A position in a tape, replaying into a sync and its book.
#[derive(Debug, Default, Clone)]
pub struct Player {
    pub pos: usize,
    /// The line at `pos` already stopped on time: consume it next, whatever the stop.
    pub holding: bool,
    /// The last consumed line had stopped on time first.
    pub held: bool,
    pub ts: i64,
    pub trade: (i64, i64, bool),
    pub market_trades: u64,
    /// The price of the last market trade consumed (kept whether or not `trades` are).
    pub last_trade_price: Option<i64>,
    /// Market trades consumed since the caller last drained them: (ts, price, size).
    pub trades: Vec<(i64, i64, i64)>,
    pub keep_trades: bool,
    /// Clock boundaries passed under a `Hold` in the last `run_held`.
    pub skipped: u64,
    scratch: Levels,
}

impl Player {
    pub fn new(keep_trades: bool) -> Self {
        Player { keep_trades, ..Player::default() }
    }

    /// Replay until a line's time reaches `stop_ns`, a watched order may be touched, or the end.
    pub fn run(&mut self, tape: &Tape, sync: &mut BookSync, book: &mut L2Book, stop_ns: i64, watch: &Watch) -> Event {
        self.replay(tape, sync, book, stop_ns, watch, None)
    }

    /// `run` with the clock boundary `hold.tick_ns` as the time stop (or `due_ns`, a request's
    /// arrival, when it comes first), passing every boundary at which `hold` stands: their
    /// number is `skipped`. A line at or after a boundary is applied only once that boundary
    /// passed, as with `run` (the caller ticks it first).
    pub fn run_held(
        &mut self,
        tape: &Tape,
        sync: &mut BookSync,
        book: &mut L2Book,
        due_ns: i64,
        hold: Hold,
        watch: &Watch,
    ) -> Event {
        self.skipped = 0;
        let mut h = hold;
        if h.step_ns <= 0 {
            return self.replay(tape, sync, book, h.tick_ns.min(due_ns), watch, None);
            // no next boundary to pass to
        }
        self.replay(tape, sync, book, h.tick_ns.min(due_ns), watch, Some((&mut h, due_ns)))
    }

    fn replay(
        &mut self,
        tape: &Tape,
        sync: &mut BookSync,
        book: &mut L2Book,
        mut stop_ns: i64,
        watch: &Watch,
        mut hold: Option<(&mut Hold, i64)>,
    ) -> Event {
        let n = tape.len();
        while self.pos < n {
            let i = self.pos;
            let ts = tape.ts[i];
            if !self.holding && ts >= stop_ns {
                // Boundaries before this line at which the decision stands pass uncounted by the caller.
                let mut stop = true;
                if let Some((h, due)) = hold.as_mut() {
                    while stop_ns == h.tick_ns && h.stands(stop_ns, sync, book, self.last_trade_price) {
                        self.skipped += 1;
                        h.tick_ns = h.tick_ns.saturating_add(h.step_ns);
                        stop_ns = h.tick_ns.min(*due);
                        if ts < stop_ns {
                            stop = false;
                            break;
                        }
                    }
                }
                if stop {
                    self.holding = true;
                    self.ts = ts;
                    return Event::Time;
                }
            }
            self.held = self.holding;
            self.holding = false;
            self.pos += 1;
            self.ts = ts;
            match Kind::from_u8(tape.kind[i]) {
                Some(Kind::Trade) => {
                    let a = tape.arg[i] as usize;
                    let (p, q, m) = (tape.tr_price[a], tape.tr_qty[a], tape.tr_maker[a] != 0);
                    self.market_trades += 1;
                    self.last_trade_price = Some(p);
                    if self.keep_trades {
                        self.trades.push((ts, p, q));
                    }
                    if watch.trade_matters(p, m) {
                        self.trade = (p, q, m);
                        return Event::Trade;
                    }
                }
                Some(Kind::OtherTrade) => {}
                Some(Kind::Ignored) => {
                    tape.apply(i, sync, book, &mut self.scratch); // counted, never moves the book
                }
                _ => {
                    let before = sync.last_update_id();
                    let state = tape.apply(i, sync, book, &mut self.scratch);
                    if sync.last_update_id() != before && state == State::Synced && watch.book_matters(book) {
                        return Event::Book;
                    }
                }
            }
        }
        Event::End
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF1: &[u8] = br#"{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"X","U":8,"u":10,"pu":7,"b":[["100.0","1.000"]],"a":[["100.2","2.000"]]}}"#;
    const SNAP: &[u8] = br#"{"lastUpdateId":9,"E":1,"T":1,"bids":[["99.9","1.000"]],"asks":[["100.1","1.000"]]}"#;
    const DIFF2: &[u8] = br#"{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"X","U":11,"u":12,"pu":10,"b":[["100.0","0.000"]],"a":[["100.1","0.500"]]}}"#;
    const TRADE: &[u8] = br#"{"stream":"x@trade","data":{"e":"trade","E":1,"T":1,"s":"X","t":5,"p":"100.1","q":"0.300","X":"MARKET","m":false}}"#;
    const TICKER: &[u8] = br#"{"stream":"x@bookTicker","data":{"e":"bookTicker","u":12,"s":"X","b":"100.0","B":"1.000","a":"100.1","A":"0.500","T":1,"E":1}}"#;

    fn lines() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (i, m) in [DIFF1, SNAP, TRADE, DIFF2, TICKER, b"{not json".as_slice()].iter().enumerate() {
            let mut l = format!("{} ", 1000 + i).into_bytes();
            l.extend_from_slice(m);
            l.push(b'\n');
            out.push(l);
        }
        out
    }

    fn tape(keep: bool) -> Tape {
        let mut b = TapeBuilder::new(Rule::BinanceFutures, 1, 3, keep);
        for l in lines() {
            b.push_line(&l).unwrap();
        }
        b.finish()
    }

    #[test]
    fn a_tape_replays_exactly_like_the_lines() {
        let t = tape(true);
        assert_eq!(t.len(), 6);
        assert_eq!(t.tr_price, vec![1001]);
        assert_eq!(t.tk.len(), 1);
        let (mut a, mut ab) = (BookSync::new(Rule::BinanceFutures, 100), L2Book::new(1, 3).unwrap());
        let (mut b, mut bb) = (BookSync::new(Rule::BinanceFutures, 100), L2Book::new(1, 3).unwrap());
        let mut p = Player::default();
        assert_eq!(p.run(&t, &mut a, &mut ab, i64::MAX, &Watch::default()), Event::End);
        for l in lines() {
            let raw = &l[5..l.len() - 1];
            if contains(&raw[..raw.len().min(32)], b"\"lastUpdateId\"") {
                b.on_snapshot(&mut bb, raw);
            } else if !contains(raw, b"\"e\":\"trade\"") {
                b.on_message(&mut bb, raw);
            }
        }
        assert_eq!(a.stats(), b.stats());
        assert_eq!(a.state(), b.state());
        assert_eq!(ab.best_bid(), bb.best_bid());
        assert_eq!(ab.best_ask(), bb.best_ask());
        assert_eq!(p.market_trades, 1);
        assert_eq!(p.last_trade_price, Some(1001));
    }

    #[test]
    fn the_player_stops_on_time_and_on_what_touches_our_orders() {
        let t = tape(false);
        let mut s = BookSync::new(Rule::BinanceFutures, 100);
        let mut book = L2Book::new(1, 3).unwrap();
        let mut p = Player::default();
        assert_eq!(p.run(&t, &mut s, &mut book, 1001, &Watch::default()), Event::Time);
        assert_eq!((p.pos, p.ts), (1, 1001));
        // held: the same line is consumed next even though its time is still >= the stop
        let w = Watch { bids: vec![], asks: vec![(1001, 1000)] }; // our ask at 100.1, 1.000 queued ahead
        assert_eq!(p.run(&t, &mut s, &mut book, i64::MAX, &w), Event::Trade); // the snapshot did not touch it
        assert_eq!(p.trade, (1001, 300, false));
        assert!(!p.held);
        assert_eq!(p.run(&t, &mut s, &mut book, i64::MAX, &w), Event::Book); // the level shrank to 0.5
        assert_eq!(p.pos, 4);
        assert_eq!(p.run(&t, &mut s, &mut book, i64::MAX, &w), Event::End);
        assert_eq!(s.stats().parse_errors, 1);
        let mut q = Player::default();
        let (mut s2, mut b2) = (BookSync::new(Rule::BinanceFutures, 100), L2Book::new(1, 3).unwrap());
        assert_eq!(q.run(&t, &mut s2, &mut b2, 1001, &Watch::default()), Event::Time);
        assert_eq!(q.run(&t, &mut s2, &mut b2, 1001, &Watch::default()), Event::Time); // line 1 consumed, line 2 stops
        assert_eq!(q.pos, 2);
        assert_eq!(q.run(&t, &mut s2, &mut b2, i64::MAX, &Watch::default()), Event::End);
        assert_eq!(q.pos, 6);
    }

    /// The player, the sync and its book after the snapshot (best bid 100.0, best ask 100.1),
    /// stopped on time at the trade line (1002).
    fn at_the_trade() -> (Tape, BookSync, L2Book, Player) {
        let t = tape(false);
        let mut s = BookSync::new(Rule::BinanceFutures, 100);
        let mut book = L2Book::new(1, 3).unwrap();
        let mut p = Player::default();
        assert_eq!(p.run(&t, &mut s, &mut book, 1002, &Watch::default()), Event::Time);
        assert_eq!(
            (s.state(), book.best_bid().map(|b| b.0), book.best_ask().map(|a| a.0)),
            (State::Synced, Some(1000), Some(1001))
        );
        (t, s, book, p)
    }

    /// The next boundary is 1003: the caller ticked 1002 when the player stopped there.
    fn hold(until_ns: i64, bid: i64, last_trade_price: Option<i64>) -> Hold {
        Hold { tick_ns: 1003, step_ns: 1, until_ns, bid, ask: 1001, last_trade_price }
    }

    #[test]
    fn boundaries_pass_while_the_held_prices_stand_and_the_first_that_differs_stops() {
        let (t, mut s, mut book, mut p) = at_the_trade();
        let w = Watch::default();
        // 1003 stands (DIFF2, which takes the best bid away, is after it); at 1004 the best bid
        // is 99.9: a Time stop there, the ticker line not consumed.
        assert_eq!(p.run_held(&t, &mut s, &mut book, i64::MAX, hold(i64::MAX, 1000, None), &w), Event::Time);
        assert_eq!((p.skipped, p.ts, p.pos), (1, 1004, 4));
        // held again at the new best bid: 1004 and 1005 both pass, then the tape ends
        let again = Hold { tick_ns: 1004, ..hold(i64::MAX, 999, None) };
        assert_eq!(p.run_held(&t, &mut s, &mut book, i64::MAX, again, &w), Event::End);
        assert_eq!((p.skipped, p.pos), (2, 6));
        // a boundary that is not before `until` is not passed
        let (t, mut s, mut book, mut p) = at_the_trade();
        assert_eq!(p.run_held(&t, &mut s, &mut book, i64::MAX, hold(1003, 1000, None), &w), Event::Time);
        assert_eq!((p.skipped, p.ts, p.pos), (0, 1003, 3));
        // the last trade's price, when held, must be the one seen (the trade at 1002 is at 100.1)
        let (t, mut s, mut book, mut p) = at_the_trade();
        assert_eq!(p.run_held(&t, &mut s, &mut book, i64::MAX, hold(i64::MAX, 1000, Some(1001)), &w), Event::Time);
        assert_eq!((p.skipped, p.ts), (1, 1004));
        let (t, mut s, mut book, mut p) = at_the_trade();
        assert_eq!(p.run_held(&t, &mut s, &mut book, i64::MAX, hold(i64::MAX, 1000, Some(999)), &w), Event::Time);
        assert_eq!((p.skipped, p.ts), (0, 1003));
        // other prices than the book's: nothing passes; a request due first stops there
        let (t, mut s, mut book, mut p) = at_the_trade();
        assert_eq!(p.run_held(&t, &mut s, &mut book, i64::MAX, hold(i64::MAX, 999, None), &w), Event::Time);
        assert_eq!((p.skipped, p.ts, p.pos), (0, 1003, 3));
        let (t, mut s, mut book, mut p) = at_the_trade();
        let later = Hold { tick_ns: 1004, ..hold(i64::MAX, 1000, None) };
        assert_eq!(p.run_held(&t, &mut s, &mut book, 1003, later, &w), Event::Time);
        assert_eq!((p.skipped, p.ts), (0, 1003));
        // a watched order still stops the replay between boundaries
        let (t, mut s, mut book, mut p) = at_the_trade();
        let ours = Watch { bids: vec![], asks: vec![(1001, 100)] };
        assert_eq!(p.run_held(&t, &mut s, &mut book, i64::MAX, hold(i64::MAX, 1000, None), &ours), Event::Trade);
        assert_eq!(p.skipped, 0);
    }

    #[test]
    fn a_tape_survives_its_file_and_refuses_a_bad_one() {
        let t = tape(true);
        let mut buf = Vec::new();
        t.write_to(&mut buf, b"src").unwrap();
        let (back, src) = Tape::read_from(&mut buf.as_slice()).unwrap();
        assert_eq!((back, src), (t, b"src".to_vec()));
        assert!(Tape::read_from(&mut &buf[..buf.len() - 3]).is_err());
        assert!(Tape::read_from(&mut &b"MMTAPE\x00\x02"[..]).is_err());
    }

    #[test]
    fn untimed_lines_are_refused_with_their_number() {
        let mut b = TapeBuilder::new(Rule::BinanceFutures, 1, 3, false);
        b.push_line(b"1 {}\n").unwrap();
        match b.push_line(b"{\"e\":1}\n") {
            Err(TapeError::Untimed { line: 2 }) => {}
            other => panic!("{other:?}"),
        }
    }
}
