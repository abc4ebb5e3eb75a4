//! Criterion benchmarks of the Rust core: raw-message parsing, sync + apply on the USD-M
//! recording, and book updates one level a call and in one batch. `cargo bench -p mixmaker-core`.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mixmaker_core::{parse_message, L2Book, Levels, Rule, SyncedBook};

fn usdm_lines() -> Option<Vec<Vec<u8>>> {
    let dir = std::env::var_os("MIXMAKER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/market"));
    let f = std::fs::File::open(dir.join("binance_usdm_btcusdt_20240808_hftbacktest.gz")).ok()?;
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    Some(
        r.split(b'\n')
            .map(|l| l.unwrap())
            .filter(|l| !l.is_empty())
            .map(|l| l[l.iter().position(|&c| c == b' ').unwrap() + 1..].to_vec())
            .collect(),
    )
}

/// Deterministic LCG so the synthetic stream needs no extra crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn synthetic_updates(n: usize) -> Vec<(bool, i64, i64)> {
    let mut r = Lcg(42);
    let mid = 6_000_000i64;
    (0..n)
        .map(|_| {
            let is_bid = r.next() % 2 == 0;
            let off = (r.next() % 2_000) as i64 + 1;
            let price = if is_bid { mid - off } else { mid + off };
            let size = if r.next() % 10 < 3 { 0 } else { (r.next() % 5_000) as i64 + 1 };
            (is_bid, price, size)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let updates = synthetic_updates(1_000_000);
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(updates.len() as u64));
    g.sample_size(10);
    g.bench_function("set_1m_synthetic", |b| {
        b.iter_batched(
            || L2Book::new(2, 3).unwrap(),
            |mut book| {
                for &(side, p, s) in &updates {
                    book.set(side, p, s);
                }
                book
            },
            BatchSize::LargeInput,
        )
    });
    // The same updates as one batch of columns (the path under `OrderBook.update_many`).
    let sides: Vec<u8> = updates.iter().map(|u| u.0 as u8).collect();
    let prices: Vec<i64> = updates.iter().map(|u| u.1).collect();
    let sizes: Vec<i64> = updates.iter().map(|u| u.2).collect();
    g.bench_function("set_columns_1m_synthetic", |b| {
        b.iter_batched(
            || L2Book::new(2, 3).unwrap(),
            |mut book| {
                book.set_columns(&sides, &prices, &sizes);
                book
            },
            BatchSize::LargeInput,
        )
    });
    // The same levels with sides alternating level by level (bid, ask, bid, ...): the layout
    // of a batch that interleaves the sides, which `set_columns` must take as fast as runs.
    let (mut alt_sides, mut alt_prices, mut alt_sizes) = (vec![], vec![], vec![]);
    type Update = (bool, i64, i64);
    let (bids, asks): (Vec<&Update>, Vec<&Update>) = updates.iter().partition(|u| u.0);
    for (b, a) in bids.iter().zip(&asks) {
        for u in [b, a] {
            alt_sides.push(u.0 as u8);
            alt_prices.push(u.1);
            alt_sizes.push(u.2);
        }
    }
    g.throughput(Throughput::Elements(alt_sides.len() as u64));
    g.bench_function("set_columns_alternating_sides", |b| {
        b.iter_batched(
            || L2Book::new(2, 3).unwrap(),
            |mut book| {
                book.set_columns(&alt_sides, &alt_prices, &alt_sizes);
                book
            },
            BatchSize::LargeInput,
        )
    });
    // ...and the same levels in runs of 16 of one side, then 16 of the other (the layout of a
    // stream of diff messages: a message's bids, then its asks), for comparison.
    let (mut run_sides, mut run_prices, mut run_sizes) = (vec![], vec![], vec![]);
    for (bc, ac) in bids.chunks(16).zip(asks.chunks(16)) {
        for u in bc.iter().chain(ac) {
            run_sides.push(u.0 as u8);
            run_prices.push(u.1);
            run_sizes.push(u.2);
        }
    }
    g.bench_function("set_columns_sides_in_runs_of_16", |b| {
        b.iter_batched(
            || L2Book::new(2, 3).unwrap(),
            |mut book| {
                book.set_columns(&run_sides, &run_prices, &run_sizes);
                book
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("set_alternating_sides", |b| {
        b.iter_batched(
            || L2Book::new(2, 3).unwrap(),
            |mut book| {
                for i in 0..alt_sides.len() {
                    book.set(alt_sides[i] != 0, alt_prices[i], alt_sizes[i]);
                }
                book
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let Some(lines) = usdm_lines() else {
        eprintln!("skipped recording benches: data not found (set MIXMAKER_DATA)");
        return;
    };
    let diffs: Vec<&Vec<u8>> = lines.iter().filter(|l| l.windows(11).any(|w| w == b"depthUpdate")).collect();
    let levels: u64 = {
        let mut lv = Levels::default();
        diffs
            .iter()
            .map(|d| {
                parse_message(d, Rule::BinanceFutures, 2, 3, &mut lv).unwrap();
                lv.len() as u64
            })
            .sum()
    };
    let mut g = c.benchmark_group("usdm");
    g.sample_size(10);
    g.throughput(Throughput::Elements(levels));
    g.bench_function("parse_depth_only", |b| {
        let mut lv = Levels::default();
        b.iter(|| {
            for d in &diffs {
                parse_message(d, Rule::BinanceFutures, 2, 3, &mut lv).unwrap();
            }
        })
    });
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("replay_all_messages", |b| {
        b.iter(|| {
            let mut s = SyncedBook::new(Rule::BinanceFutures, 2, 3, 100_000).unwrap();
            for l in &lines {
                if l.starts_with(b"{\"lastUpdateId\"") {
                    s.on_snapshot(l);
                } else {
                    s.on_message(l);
                }
            }
            s
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
