"""Workloads for benches/peers.py: the USD-M recording and a seeded synthetic stream.

A workload is a REST-style depth snapshot plus a list of raw WebSocket depth messages
(Binance USD-M `depthUpdate`, combined-stream wrapped), all of which apply in order after
the snapshot (stale pre-snapshot diffs are already dropped). Every contender gets the same
bytes; the pre-parsed forms used by the apply-only paths are derived from them here,
outside any timed region.
"""

from __future__ import annotations

import gzip
import os
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson

USDM_FILE = "binance_usdm_btcusdt_20240808_hftbacktest.gz"
PRICE_DP = 2  # USD-M BTCUSDT
SIZE_DP = 3

# Reference figures from data/market/README.md (Python dict + Decimal replay and
# NautilusTrader 1.221.0 both agree on them).
USDM_README = {
    "applied": 6547,
    "level_updates": 443262,
    "bid": (Decimal("61659.70"), Decimal("1.486")),
    "ask": (Decimal("61659.80"), Decimal("0.981")),
    "bid_levels": 5018,
    "ask_levels": 4578,
}


def data_dir() -> Path:
    return Path(os.environ.get("MIXMAKER_DATA", "/work/shared/data/market"))


@dataclass
class Workload:
    name: str
    snapshot_raw: bytes
    msgs: list[bytes]                      # depth diffs, each applies after the snapshot
    all_lines: list[bytes] | None = None   # whole file in order (incl. ticker/trade + snapshot)
    snapshot_index: int = -1               # position of the snapshot in all_lines
    # derived (filled by prepare())
    last_update_id: int = 0
    snap_bids: list[list[str]] = field(default_factory=list)
    snap_asks: list[list[str]] = field(default_factory=list)
    parsed: list[tuple[list[list[str]], list[list[str]], int, int]] = field(default_factory=list)  # (b, a, u, E)
    n_levels: int = 0
    n_deletes: int = 0
    expected: dict | None = None           # reference replay result (scaled ints)
    expected_lines: dict | None = None     # same, for rows that replay every line of the file

    def prepare(self) -> None:
        snap = orjson.loads(self.snapshot_raw)
        self.last_update_id = snap["lastUpdateId"]
        self.snap_bids, self.snap_asks = snap["bids"], snap["asks"]
        self.parsed = []
        n = dels = 0
        for raw in self.msgs:
            d = orjson.loads(raw)
            d = d.get("data", d)
            b, a = d["b"], d["a"]
            self.parsed.append((b, a, d["u"], d["E"]))
            n += len(b) + len(a)
            dels += sum(1 for _, q in b if not float(q)) + sum(1 for _, q in a if not float(q))
        self.n_levels, self.n_deletes = n, dels
        self._check_fixed_dp()
        self.expected = reference_replay(self)

    def _check_fixed_dp(self) -> None:
        """The Python-side `int(s.replace('.', ''))` conversion used by some paths is exact only
        for fixed-decimal strings; assert the workload has them (Binance USD-M does)."""
        for b, a, _, _ in self.parsed:
            for side in (b, a):
                for p, q in side:
                    if len(p) - p.find(".") - 1 != PRICE_DP or len(q) - q.find(".") - 1 != SIZE_DP:
                        raise ValueError(f"{self.name}: not fixed-dp: {p} {q}")

    # ---- pre-parsed forms for apply-only paths (built on demand, cached) ----
    def levels_int(self) -> list[tuple[bool, int, int]]:
        """Flat (is_bid, price_int, size_int) in application order (per message: bids, then asks)."""
        if not hasattr(self, "_li"):
            out = []
            ap = out.append
            for b, a, _, _ in self.parsed:
                for p, q in b:
                    ap((True, int(p.replace(".", "")), int(q.replace(".", ""))))
                for p, q in a:
                    ap((False, int(p.replace(".", "")), int(q.replace(".", ""))))
            self._li = out
        return self._li

    def levels_float(self) -> list[tuple[bool, float, float]]:
        if not hasattr(self, "_lf"):
            out = []
            ap = out.append
            for b, a, _, _ in self.parsed:
                for p, q in b:
                    ap((True, float(p), float(q)))
                for p, q in a:
                    ap((False, float(p), float(q)))
            self._lf = out
        return self._lf

    def msg_arrays(self):
        """Per message (is_bid int8, prices int64, sizes int64) numpy arrays."""
        import numpy as np

        if not hasattr(self, "_ma"):
            out = []
            for b, a, _, _ in self.parsed:
                n = len(b) + len(a)
                side = np.zeros(n, dtype=np.int8)
                side[: len(b)] = 1
                px = np.fromiter((int(p.replace(".", "")) for p, _ in b + a), dtype=np.int64, count=n)
                sz = np.fromiter((int(q.replace(".", "")) for _, q in b + a), dtype=np.int64, count=n)
                out.append((side, px, sz))
            self._ma = out
        return self._ma

    def batch_arrays(self):
        import numpy as np

        ma = self.msg_arrays()
        return (np.concatenate([m[0] for m in ma]), np.concatenate([m[1] for m in ma]),
                np.concatenate([m[2] for m in ma]))

    def drop_caches(self) -> None:
        for k in ("_li", "_lf", "_ma"):
            if hasattr(self, k):
                delattr(self, k)


def _si(s: str) -> int:
    return int(s.replace(".", ""))


def reference_replay(w: Workload) -> dict:
    """Plain dict replay with exact scaled ints: the correctness oracle for every contender."""
    bids = {_si(p): _si(q) for p, q in w.snap_bids if _si(q)}
    asks = {_si(p): _si(q) for p, q in w.snap_asks if _si(q)}
    for b, a, _, _ in w.parsed:
        for side, levels in ((bids, b), (asks, a)):
            for p, q in levels:
                pi, qi = _si(p), _si(q)
                if qi:
                    side[pi] = qi
                else:
                    side.pop(pi, None)
    bb = max(bids)
    ba = min(asks)
    return {"bid": (bb, bids[bb]), "ask": (ba, asks[ba]), "bid_levels": len(bids), "ask_levels": len(asks)}


def load_recording(max_msgs: int | None = None) -> Workload:
    path = data_dir() / USDM_FILE
    with gzip.open(path, "rb") as f:
        lines = [ln.split(b" ", 1)[1] for ln in f.read().splitlines() if ln]
    snap_i = next(i for i, ln in enumerate(lines) if ln.startswith(b'{"lastUpdateId"'))
    snap_raw = lines[snap_i]
    last_id = orjson.loads(snap_raw)["lastUpdateId"]
    msgs = []
    for ln in lines:
        if b'"depthUpdate"' in ln:
            d = orjson.loads(ln)["data"]
            if d["u"] >= last_id:  # futures rule: drop u < L (4 stale diffs on this file)
                msgs.append(ln)
    expected_lines = None
    if max_msgs is not None and max_msgs < len(msgs):
        # rows that replay every line of the file still end at the full file's final book
        full = Workload(name="recording", snapshot_raw=snap_raw, msgs=msgs)
        full.prepare()
        expected_lines = full.expected
        msgs = msgs[:max_msgs]
    w = Workload(name="recording", snapshot_raw=snap_raw, msgs=msgs, all_lines=lines, snapshot_index=snap_i)
    w.prepare()
    w.expected_lines = expected_lines or w.expected
    return w


# ---------------------------------------------------------------------------------------
# Synthetic stream
# ---------------------------------------------------------------------------------------

def _fmt(v: int, dp: int) -> str:
    s = str(v).rjust(dp + 1, "0")
    return s[:-dp] + "." + s[-dp:]


def make_synthetic(n_updates: int = 1_000_000, seed: int = 20240808) -> Workload:
    """A seeded Binance-USD-M-shaped diff stream with exactly `n_updates` level updates.

    - Tick 0.10 (10 raw units at 2 dp) around a mid of ~60,000 that random-walks a few
      ticks per message; prices cluster near the touch (80% exponential with mean 25 ticks
      from the touch, 20% uniform up to 3,000 ticks deep).
    - ~30% of updates are deletes (size "0.000"); most hit an existing level.
    - When the mid moves, levels on the wrong side of the new touch are deleted in the same
      message, so the book is never crossed after a whole message (a real feed's invariant).
    - A REST-style snapshot of 1,000 levels per side starts it; diffs then chain by `pu`.
    - Messages hold 1 + Exp(mean 50) level updates, no duplicate (side, price) in a message.
    """
    rng = random.Random(seed)
    tick = 10
    m = 600_000  # bid anchor in ticks: bids <= m, asks >= m + 1
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}

    def rsize() -> int:
        return 1 + int(rng.expovariate(1 / 1500))

    for k in range(1000):
        bids[m - k] = rsize()
        asks[m + 1 + k] = rsize()
    last_id = 10_000_000
    snap = {
        "lastUpdateId": last_id, "E": 1723161256000, "T": 1723161256000,
        "bids": [[_fmt(t * tick, PRICE_DP), _fmt(s, SIZE_DP)] for t, s in sorted(bids.items(), reverse=True)],
        "asks": [[_fmt(t * tick, PRICE_DP), _fmt(s, SIZE_DP)] for t, s in sorted(asks.items())],
    }
    snapshot_raw = orjson.dumps(snap)

    msgs: list[bytes] = []
    done = 0
    prev_u = last_id - 1
    first = True
    ts = 1723161256000
    while done < n_updates:
        want = min(n_updates - done, 1 + int(rng.expovariate(1 / 50)))
        upd: dict[tuple[bool, int], int] = {}
        # mid move; levels now on the wrong side of the touch are deleted in this message
        step = int(round(rng.gauss(0, 1.5)))
        if step:
            if step > 0:
                crossing = [(False, t) for t in range(m + 1, m + step + 1) if t in asks]
            else:
                crossing = [(True, t) for t in range(m + step + 1, m + 1) if t in bids]
            if len(crossing) <= n_updates - done:
                m += step
                for key in crossing:
                    upd[key] = 0
                want = max(want, len(upd))
        while len(upd) < want:
            is_bid = rng.random() < 0.5
            if rng.random() < 0.8:
                off = int(rng.expovariate(1 / 25))
            else:
                off = rng.randrange(3000)
            t = m - off if is_bid else m + 1 + off
            if rng.random() < 0.30:
                book = bids if is_bid else asks
                if t not in book and book and rng.random() < 0.8:
                    # delete an existing level near this price instead (feeds delete what they have)
                    for dt in range(1, 40):
                        cand = t - dt if is_bid else t + dt
                        if cand in book:
                            t = cand
                            break
                upd[(is_bid, t)] = 0
            else:
                upd[(is_bid, t)] = rsize()
        b_out, a_out = [], []
        for (is_bid, t), s in upd.items():
            book = bids if is_bid else asks
            if s:
                book[t] = s
            else:
                book.pop(t, None)
            (b_out if is_bid else a_out).append([_fmt(t * tick, PRICE_DP), _fmt(s, SIZE_DP)])
        done += len(upd)
        ts += rng.randrange(1, 60)
        if first:
            U, u = last_id - 3, last_id + rng.randrange(1, 40)
            first = False
        else:
            U = prev_u + 1
            u = U + rng.randrange(0, 40)
        data = {"e": "depthUpdate", "E": ts, "T": ts - 1, "s": "BTCUSDT", "U": U, "u": u, "pu": prev_u,
                "b": b_out, "a": a_out}
        prev_u = u
        msgs.append(orjson.dumps({"stream": "btcusdt@depth@0ms", "data": data}))
    w = Workload(name="synthetic", snapshot_raw=snapshot_raw, msgs=msgs)
    w.prepare()
    return w
