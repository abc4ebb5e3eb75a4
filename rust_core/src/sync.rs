//! Snapshot + diffs under a venue's sequence rule, with gap detection and resync.
//!
//! `BookSync` holds the sync state; the book it keeps true is passed in on every call, so the
//! same `L2Book` can live inside a Python object (see the extension crate) or a plain struct
//! ([`SyncedBook`]).
//!
//! States: AwaitingSnapshot → (snapshot) → Synced → (gap, crossed book, unreadable message) →
//! Desynced → (fresh snapshot + buffered diffs that bridge it) → Synced. While not synced,
//! diffs are buffered (bounded, oldest dropped first) and the book must not be read.

use std::collections::VecDeque;
use std::fmt;

use crate::book::L2Book;
use crate::fixed::{format_fixed, FixedError};
use crate::messages::{parse_message, DiffIds, LevelSlices, Levels, Message, MessageError, Rule};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    AwaitingSnapshot,
    Synced,
    Desynced,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::AwaitingSnapshot => "AWAITING_SNAPSHOT",
            State::Synced => "SYNCED",
            State::Desynced => "DESYNCED",
        }
    }
}

/// Counters a user can read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Diffs applied to the book (live or replayed from the buffer).
    pub applied: u64,
    /// Diffs already covered by the book (before the snapshot, or duplicates): ignored.
    pub stale: u64,
    /// Sequence breaks: a diff that does not continue the last applied one.
    pub gaps: u64,
    /// Messages after which the book was crossed or locked.
    pub crossed: u64,
    /// Messages that could not be read.
    pub parse_errors: u64,
    /// Desynced → synced transitions.
    pub resyncs: u64,
    /// Snapshots loaded.
    pub snapshots: u64,
    /// Snapshots refused: older than the book, or not bridging the buffered diffs.
    pub snapshots_rejected: u64,
    /// Messages that carry no book data (tickers, trades, acks).
    pub ignored: u64,
    /// Buffered diffs dropped because the buffer was full.
    pub buffer_dropped: u64,
}

/// Why the book last stopped being synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesyncReason {
    Gap { last_applied: u64, diff: DiffIds },
    Crossed { update_id: u64, bid: i64, ask: i64, price_decimals: u32 },
    Unreadable(MessageError),
    SnapshotTooOld { snapshot: u64, next_diff: DiffIds },
}

impl fmt::Display for DesyncReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DesyncReason::Gap { last_applied, diff } => {
                write!(f, "gap: last applied u={last_applied}, next diff U={} u={}", diff.first, diff.last)?;
                if let Some(pu) = diff.prev {
                    write!(f, " pu={pu}")?;
                }
                Ok(())
            }
            DesyncReason::Crossed { update_id, bid, ask, price_decimals } => write!(
                f,
                "crossed book after u={update_id}: best bid {} >= best ask {}",
                format_fixed(*bid, *price_decimals),
                format_fixed(*ask, *price_decimals)
            ),
            DesyncReason::Unreadable(e) => write!(f, "unreadable message: {e}"),
            DesyncReason::SnapshotTooOld { snapshot, next_diff } => write!(
                f,
                "snapshot lastUpdateId={snapshot} does not bridge the next buffered diff U={} u={}: need a newer snapshot",
                next_diff.first, next_diff.last
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Apply,
    Stale,
    Gap,
}

#[derive(Debug, Clone)]
struct BufferedDiff {
    ids: DiffIds,
    levels: Levels,
}

/// The sync state for one book under one venue rule.
#[derive(Debug, Clone)]
pub struct BookSync {
    rule: Rule,
    state: State,
    max_buffer: usize,
    buffer: VecDeque<BufferedDiff>,
    scratch: Levels,
    /// Update id the book is at; None before the first snapshot.
    last: Option<u64>,
    /// A diff has been applied since the last snapshot (switches to the continuity rule).
    bridged: bool,
    stats: Stats,
    reason: Option<DesyncReason>,
}

impl BookSync {
    pub fn new(rule: Rule, max_buffer: usize) -> Self {
        BookSync {
            rule,
            state: State::AwaitingSnapshot,
            max_buffer: max_buffer.max(1),
            buffer: VecDeque::new(),
            scratch: Levels::default(),
            last: None,
            bridged: false,
            stats: Stats::default(),
            reason: None,
        }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    pub fn last_update_id(&self) -> Option<u64> {
        self.last
    }

    pub fn desync_reason(&self) -> Option<&DesyncReason> {
        self.reason.as_ref()
    }

    /// Forget everything: back to awaiting a snapshot (e.g. after a reconnect).
    pub fn reset(&mut self, book: &mut L2Book) {
        book.clear();
        self.state = State::AwaitingSnapshot;
        self.buffer.clear();
        self.last = None;
        self.bridged = false;
        self.reason = None;
    }

    /// Feed one raw stream message (diffs, and for Bybit also snapshots).
    pub fn on_message(&mut self, book: &mut L2Book, raw: &[u8]) -> State {
        let parsed = parse_message(raw, self.rule, book.price_decimals(), book.size_decimals(), &mut self.scratch);
        self.on_parsed_scratch(book, parsed)
    }

    /// What `on_message` does once the message is parsed, for a message `parse_message` read
    /// ahead of time (a prepared recording): `levels` are the levels it filled.
    pub fn on_parsed(
        &mut self,
        book: &mut L2Book,
        parsed: Result<Message, MessageError>,
        levels: LevelSlices<'_>,
    ) -> State {
        self.scratch.bids.clear();
        self.scratch.bids.extend_from_slice(levels.0);
        self.scratch.asks.clear();
        self.scratch.asks.extend_from_slice(levels.1);
        self.on_parsed_scratch(book, parsed)
    }

    fn on_parsed_scratch(&mut self, book: &mut L2Book, parsed: Result<Message, MessageError>) -> State {
        match parsed {
            Err(e) => self.unreadable(e),
            Ok(Message::Ignored) => self.stats.ignored += 1,
            Ok(Message::Snapshot { last_update_id }) => {
                // An in-stream snapshot supersedes every diff the stream sent before it.
                self.stats.stale += self.buffer.len() as u64;
                self.buffer.clear();
                self.load_snapshot(book, last_update_id)
            }
            Ok(Message::Diff(ids)) => {
                if self.state == State::Synced {
                    self.apply_live(book, ids);
                } else {
                    let levels = self.scratch.clone();
                    self.push_buffer(BufferedDiff { ids, levels });
                }
            }
        }
        self.state
    }

    /// Feed a REST snapshot (or any snapshot message the rule knows).
    pub fn on_snapshot(&mut self, book: &mut L2Book, raw: &[u8]) -> State {
        match parse_message(raw, self.rule, book.price_decimals(), book.size_decimals(), &mut self.scratch) {
            Err(e) => self.unreadable(e),
            Ok(Message::Snapshot { last_update_id }) => self.load_snapshot(book, last_update_id),
            Ok(_) => self.unreadable(MessageError::Missing("snapshot (lastUpdateId with bids and asks)")),
        }
        self.state
    }

    /// Load a snapshot already parsed into `levels` (Python's object path).
    pub fn on_snapshot_levels(&mut self, book: &mut L2Book, last_update_id: u64, levels: &Levels) -> State {
        self.scratch.clone_from(levels);
        self.load_snapshot(book, last_update_id);
        self.state
    }

    fn unreadable(&mut self, e: MessageError) {
        self.stats.parse_errors += 1;
        self.desync(DesyncReason::Unreadable(e));
    }

    fn desync(&mut self, reason: DesyncReason) {
        self.state = State::Desynced;
        self.reason = Some(reason);
    }

    fn check(&self, ids: DiffIds) -> Result<Check, MessageError> {
        let last = self.last.unwrap_or(0);
        Ok(match self.rule {
            Rule::BinanceFutures if !self.bridged => {
                // `pu == L` also bridges: that diff starts exactly where the snapshot ends.
                if ids.last < last {
                    Check::Stale
                } else if ids.first <= last || ids.prev == Some(last as i64) {
                    Check::Apply
                } else {
                    Check::Gap
                }
            }
            Rule::BinanceFutures => {
                if ids.last <= last {
                    Check::Stale
                } else if ids.prev.ok_or(MessageError::Missing("pu"))? == last as i64 {
                    Check::Apply
                } else {
                    Check::Gap
                }
            }
            Rule::BinanceSpot | Rule::Sequential => {
                if ids.last <= last {
                    Check::Stale
                } else if ids.first <= last.saturating_add(1) {
                    Check::Apply
                } else {
                    Check::Gap
                }
            }
            Rule::Bybit => {
                if ids.last <= last {
                    Check::Stale
                } else if ids.last == last.saturating_add(1) {
                    Check::Apply
                } else {
                    Check::Gap
                }
            }
        })
    }

    /// Apply `levels` for `ids`; false (and desynced) when the book came out crossed.
    #[inline]
    fn apply(&mut self, book: &mut L2Book, ids: DiffIds, levels: &Levels) -> bool {
        book.apply_levels(&levels.bids, &levels.asks);
        book.set_update_id(ids.last);
        self.last = Some(ids.last);
        self.bridged = true;
        self.stats.applied += 1;
        if book.is_crossed() {
            self.crossed(book);
            return false;
        }
        true
    }

    fn crossed(&mut self, book: &L2Book) {
        self.stats.crossed += 1;
        let (bid, ask) = (book.best_bid().map_or(0, |b| b.0), book.best_ask().map_or(0, |a| a.0));
        self.desync(DesyncReason::Crossed {
            update_id: book.update_id(),
            bid,
            ask,
            price_decimals: book.price_decimals(),
        });
    }

    fn apply_live(&mut self, book: &mut L2Book, ids: DiffIds) {
        match self.check(ids) {
            Err(e) => self.unreadable(e),
            Ok(Check::Stale) => self.stats.stale += 1,
            Ok(Check::Gap) => {
                self.stats.gaps += 1;
                self.desync(DesyncReason::Gap { last_applied: self.last.unwrap_or(0), diff: ids });
                let levels = self.scratch.clone();
                self.push_buffer(BufferedDiff { ids, levels });
            }
            Ok(Check::Apply) => {
                let levels = std::mem::take(&mut self.scratch);
                if !self.apply(book, ids, &levels) {
                    // Keep the crossing diff: a later snapshot may predate it.
                    self.push_buffer(BufferedDiff { ids, levels: levels.clone() });
                }
                self.scratch = levels;
            }
        }
    }

    fn push_buffer(&mut self, diff: BufferedDiff) {
        if self.buffer.len() >= self.max_buffer {
            self.buffer.pop_front();
            self.stats.buffer_dropped += 1;
        }
        self.buffer.push_back(diff);
    }

    fn load_snapshot(&mut self, book: &mut L2Book, snapshot_id: u64) {
        // A Bybit snapshot is always current; elsewhere an older snapshot than the synced book
        // would move it backwards.
        if self.state == State::Synced && self.rule != Rule::Bybit && self.last.is_some_and(|l| snapshot_id <= l) {
            self.stats.snapshots_rejected += 1;
            return;
        }
        let was = self.state;
        self.stats.snapshots += 1;
        book.load(&self.scratch.bids, &self.scratch.asks, snapshot_id);
        self.last = Some(snapshot_id);
        self.bridged = false;
        self.state = State::Synced;
        self.reason = None;
        if book.is_crossed() {
            self.crossed(book);
            return;
        }
        self.replay_buffer(book, snapshot_id);
        if self.state == State::Synced && was == State::Desynced {
            self.stats.resyncs += 1;
        }
    }

    /// Apply buffered diffs on top of a fresh snapshot, in update-id order (late arrivals too).
    fn replay_buffer(&mut self, book: &mut L2Book, snapshot_id: u64) {
        self.buffer.make_contiguous().sort_by_key(|d| d.ids.last);
        while let Some(d) = self.buffer.pop_front() {
            match self.check(d.ids) {
                Err(e) => self.unreadable(e),
                Ok(Check::Stale) => {
                    self.stats.stale += 1;
                    continue;
                }
                Ok(Check::Apply) => {
                    if self.apply(book, d.ids, &d.levels) {
                        continue;
                    }
                    self.buffer.push_front(d);
                }
                Ok(Check::Gap) => {
                    let reason = if self.bridged {
                        self.stats.gaps += 1;
                        DesyncReason::Gap { last_applied: self.last.unwrap_or(0), diff: d.ids }
                    } else {
                        self.stats.snapshots_rejected += 1;
                        DesyncReason::SnapshotTooOld { snapshot: snapshot_id, next_diff: d.ids }
                    };
                    self.buffer.push_front(d);
                    self.desync(reason);
                }
            }
            break;
        }
    }
}

/// A book and its sync in one value, for pure-Rust users and benchmarks.
#[derive(Debug, Clone)]
pub struct SyncedBook {
    pub sync: BookSync,
    pub book: L2Book,
}

impl SyncedBook {
    pub fn new(rule: Rule, price_decimals: u32, size_decimals: u32, max_buffer: usize) -> Result<Self, FixedError> {
        Ok(SyncedBook { sync: BookSync::new(rule, max_buffer), book: L2Book::new(price_decimals, size_decimals)? })
    }

    pub fn on_message(&mut self, raw: &[u8]) -> State {
        self.sync.on_message(&mut self.book, raw)
    }

    pub fn on_snapshot(&mut self, raw: &[u8]) -> State {
        self.sync.on_snapshot(&mut self.book, raw)
    }

    /// The book, only while synced: never stale data.
    pub fn book(&self) -> Option<&L2Book> {
        (self.sync.state() == State::Synced).then_some(&self.book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fut_diff(first: u64, last: u64, pu: i64, bid: &str, ask: &str) -> String {
        format!(
            r#"{{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":{first},"u":{last},"pu":{pu},"b":[["{bid}","1.000"]],"a":[["{ask}","1.000"]]}}"#
        )
    }

    fn snap(l: u64) -> String {
        format!(r#"{{"lastUpdateId":{l},"bids":[["100.00","5.000"]],"asks":[["101.00","5.000"]]}}"#)
    }

    fn futures() -> SyncedBook {
        SyncedBook::new(Rule::BinanceFutures, 2, 3, 100).unwrap()
    }

    #[test]
    fn futures_buffer_snapshot_bridge_and_continuity() {
        let mut s = futures();
        assert_eq!(s.on_message(fut_diff(1, 5, 0, "99.00", "102.00").as_bytes()), State::AwaitingSnapshot);
        assert_eq!(s.on_message(fut_diff(6, 10, 5, "99.10", "102.10").as_bytes()), State::AwaitingSnapshot);
        assert_eq!(s.on_message(fut_diff(11, 15, 10, "99.20", "102.20").as_bytes()), State::AwaitingSnapshot);
        assert!(s.book().is_none());
        // Snapshot at L=8: diff 1..5 is stale (u < L), 6..10 bridges (U <= 8 <= u), 11..15 chains.
        assert_eq!(s.on_snapshot(snap(8).as_bytes()), State::Synced);
        let st = s.sync.stats();
        assert_eq!((st.stale, st.applied, st.snapshots, st.resyncs), (1, 2, 1, 0));
        assert_eq!(s.sync.last_update_id(), Some(15));
        let book = s.book().unwrap();
        assert_eq!(book.bids.size_at(9_900), 0);
        assert_eq!(book.bids.size_at(9_920), 1_000);
        assert_eq!(book.update_id(), 15);
        // Live: duplicate is stale, a pu mismatch is a gap.
        assert_eq!(s.on_message(fut_diff(11, 15, 10, "99.20", "102.20").as_bytes()), State::Synced);
        assert_eq!(s.sync.stats().stale, 2);
        assert_eq!(s.on_message(fut_diff(21, 25, 20, "99.30", "102.30").as_bytes()), State::Desynced);
        assert_eq!(s.sync.stats().gaps, 1);
        assert!(s.book().is_none());
        assert!(s.sync.desync_reason().unwrap().to_string().contains("last applied u=15"));
        // A snapshot at 20 + the buffered 21..25 (pu=20) brings it back.
        assert_eq!(s.on_snapshot(snap(20).as_bytes()), State::Synced);
        assert_eq!(s.sync.stats().resyncs, 1);
        assert_eq!(s.sync.last_update_id(), Some(25));
    }

    #[test]
    fn snapshot_too_old_waits_for_a_newer_one() {
        let mut s = futures();
        s.on_message(fut_diff(50, 60, 49, "99.00", "102.00").as_bytes());
        assert_eq!(s.on_snapshot(snap(40).as_bytes()), State::Desynced);
        assert!(matches!(s.sync.desync_reason(), Some(DesyncReason::SnapshotTooOld { .. })));
        assert_eq!(s.sync.buffered(), 1);
        assert_eq!(s.on_snapshot(snap(55).as_bytes()), State::Synced);
        assert_eq!(s.sync.last_update_id(), Some(60));
    }

    #[test]
    fn spot_rule() {
        let mut s = SyncedBook::new(Rule::BinanceSpot, 2, 8, 100).unwrap();
        let d = |a: u64, b: u64| {
            format!(
                r#"{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":{a},"u":{b},"b":[["100.50000000","1.00000000"]],"a":[]}}"#
            )
        };
        s.on_message(d(1, 10).as_bytes());
        s.on_message(d(11, 20).as_bytes());
        // L=10: 1..10 is stale (u <= L), 11..20 bridges (U <= L+1 <= u).
        assert_eq!(s.on_snapshot(snap(10).as_bytes()), State::Synced);
        assert_eq!((s.sync.stats().stale, s.sync.stats().applied), (1, 1));
        assert_eq!(s.on_message(d(21, 30).as_bytes()), State::Synced);
        assert_eq!(s.on_message(d(32, 40).as_bytes()), State::Desynced);
    }

    #[test]
    fn bybit_rule_and_snapshot_reset() {
        let mut s = SyncedBook::new(Rule::Bybit, 4, 0, 100).unwrap();
        let m = |kind: &str, u: u64, bid: &str| {
            format!(
                r#"{{"topic":"orderbook.500.XRPUSDT","type":"{kind}","ts":1,"data":{{"s":"XRPUSDT","b":[["{bid}","10"]],"a":[["2.0000","10"]],"u":{u},"seq":1}},"cts":1}}"#
            )
        };
        assert_eq!(s.on_message(m("snapshot", 100, "1.9000").as_bytes()), State::Synced);
        assert_eq!(s.on_message(m("delta", 101, "1.9100").as_bytes()), State::Synced);
        assert_eq!(s.on_message(m("delta", 101, "1.9100").as_bytes()), State::Synced);
        assert_eq!(s.sync.stats().stale, 1);
        assert_eq!(s.on_message(m("delta", 103, "1.9200").as_bytes()), State::Desynced);
        // A snapshot message resets, even with u = 1 (service restart).
        assert_eq!(s.on_message(m("snapshot", 1, "1.8000").as_bytes()), State::Synced);
        assert_eq!(s.book().unwrap().best_bid(), Some((18_000, 10)));
        assert_eq!(s.book().unwrap().bids.len(), 1);
    }

    #[test]
    fn crossed_and_unreadable_desync() {
        let mut s = futures();
        s.on_snapshot(snap(10).as_bytes());
        assert_eq!(s.on_message(fut_diff(9, 11, 0, "101.50", "102.00").as_bytes()), State::Desynced);
        assert_eq!(s.sync.stats().crossed, 1);
        assert!(s.sync.desync_reason().unwrap().to_string().contains("101.50"));
        let mut s = futures();
        s.on_snapshot(snap(10).as_bytes());
        assert_eq!(s.on_message(b"{\"e\":\"depthUpdate\",\"U\":11,"), State::Desynced);
        assert_eq!(s.sync.stats().parse_errors, 1);
        assert_eq!(s.on_snapshot(b"{\"e\":\"trade\"}"), State::Desynced);
    }

    #[test]
    fn buffer_is_bounded_and_reordered_diffs_replay_in_order() {
        let mut s = SyncedBook::new(Rule::BinanceFutures, 2, 3, 2).unwrap();
        s.on_message(fut_diff(1, 5, 0, "99.00", "102.00").as_bytes());
        s.on_message(fut_diff(11, 15, 10, "99.20", "102.20").as_bytes());
        s.on_message(fut_diff(6, 10, 5, "99.10", "102.10").as_bytes()); // late: drops 1..5
        assert_eq!(s.sync.stats().buffer_dropped, 1);
        assert_eq!(s.sync.buffered(), 2);
        assert_eq!(s.on_snapshot(snap(7).as_bytes()), State::Synced);
        assert_eq!(s.sync.last_update_id(), Some(15));
        assert_eq!(s.sync.stats().applied, 2);
    }

    #[test]
    fn older_snapshot_is_refused_while_synced() {
        let mut s = futures();
        s.on_snapshot(snap(10).as_bytes());
        s.on_message(fut_diff(9, 12, 0, "99.00", "102.00").as_bytes());
        assert_eq!(s.on_snapshot(snap(11).as_bytes()), State::Synced);
        assert_eq!(s.sync.stats().snapshots_rejected, 1);
        assert_eq!(s.book.bids.size_at(9_900), 1_000);
    }
}
