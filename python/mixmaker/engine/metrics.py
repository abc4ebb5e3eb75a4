"""Prometheus metrics and `/health` on one HTTP port, served on the engine's own event loop (so a
scrape reads the engine's state between two of its steps, never from another thread).

    GET /metrics   the Prometheus text format (prometheus-client)
    GET /health    JSON: ready or not, and for every part that is not, why; HTTP 200 or 503

Metrics (all prefixed `mixmaker_`): book state, gaps, resyncs and messages (total and per second)
per market; the tick's duration per exchange account; exchange orders by state; fills per pool;
the rate limiter's waits, queue, 429s and 418s; moves by state and the oldest one's age per state;
the last reconciliation's differences per account and asset, its age, and the halts of moves; user orders by state; pools' members and
value; the workers' runs and errors; Mixin snapshots taken in.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mixmaker.engine.overview import overview
from mixmaker.funds.moves import MoveState
from mixmaker.users.orders import OrderState

if TYPE_CHECKING:
    from mixmaker.engine.runtime import Engine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EngineCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._last_messages: dict[str, tuple[float, int]] = {}

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        ready = GaugeMetricFamily("mixmaker_ready", "1 when every part of the engine is ready", labels=[])
        ready.add_metric([], 1.0 if e.health.ready else 0.0)
        yield ready
        parts = GaugeMetricFamily("mixmaker_part_ready", "1 when the part is ready", labels=["part"])
        for name, p in e.health.parts.items():
            parts.add_metric([name], 1.0 if p.ready else 0.0)
        yield parts
        if e.store is None or e.health.phase in ("stopped",):
            return
        ov = overview(e)
        yield from self._books(ov)
        yield from self._ticks()
        states = GaugeMetricFamily("mixmaker_exchange_orders", "exchange orders the trackers hold, by state",
                                   labels=["state"])
        for state, n in sorted(ov.order_states.items()):
            states.add_metric([state], n)
        yield states
        fills = CounterMetricFamily("mixmaker_fills", "fills booked, per pool", labels=["pool"])
        members = GaugeMetricFamily("mixmaker_pool_members", "user orders holding shares of the pool", labels=["pool"])
        value = GaugeMetricFamily("mixmaker_pool_value", "the pool's value at the synced mid, in its quote asset "
                                  "(analytics: a float)", labels=["pool", "quote"])
        for pool in ov.pools:
            fills.add_metric([pool.pool_id], pool.fills)
            members.add_metric([pool.pool_id], len(pool.members))
            if pool.value is not None:
                value.add_metric([pool.pool_id, pool.quote], float(pool.value) / 10 ** e.ledger.decimals(pool.quote))
        yield from (fills, members, value)
        yield from self._limiters()
        yield from self._moves(ov)
        yield from self._reconciliation(ov)
        users = GaugeMetricFamily("mixmaker_user_orders", "user orders by state", labels=["state"])
        counts = Counter(o.state.value for o in ov.orders)
        for s in OrderState:
            users.add_metric([s.value], counts.get(s.value, 0))
        yield users
        runs = CounterMetricFamily("mixmaker_worker_runs", "passes of each worker", labels=["worker"])
        errors = CounterMetricFamily("mixmaker_worker_errors", "failed passes of each worker", labels=["worker"])
        for name, w in e.workers.items():
            runs.add_metric([name], w.stats.runs)
            errors.add_metric([name], w.stats.errors)
        yield from (runs, errors)
        intake = CounterMetricFamily("mixmaker_snapshots", "Mixin snapshots taken in by intake", labels=[])
        intake.add_metric([], e.reader.stats.handled if hasattr(e, "reader") else 0)
        yield intake

    def _books(self, ov: Any) -> Iterator[Metric]:
        synced = GaugeMetricFamily("mixmaker_book_synced", "1 while the book is synced", labels=["market"])
        gaps = CounterMetricFamily("mixmaker_book_gaps", "sequence gaps seen", labels=["market"])
        resyncs = CounterMetricFamily("mixmaker_book_resyncs", "resyncs from a REST snapshot", labels=["market"])
        msgs = CounterMetricFamily("mixmaker_book_messages", "depth messages applied", labels=["market"])
        rate = GaugeMetricFamily("mixmaker_book_messages_per_second", "depth messages per second since the last "
                                 "scrape", labels=["market"])
        now = time.monotonic()
        for b in ov.books:
            synced.add_metric([b.market], 1.0 if b.synced else 0.0)
            gaps.add_metric([b.market], b.stats.get("gaps", 0))
            resyncs.add_metric([b.market], b.stats.get("resyncs", 0))
            n = b.stats.get("applied", 0)
            msgs.add_metric([b.market], n)
            t0, n0 = self._last_messages.get(b.market, (now, n))
            rate.add_metric([b.market], (n - n0) / (now - t0) if now > t0 else 0.0)
            self._last_messages[b.market] = (now, n)
        yield from (synced, gaps, resyncs, msgs, rate)

    def _ticks(self) -> Iterator[Metric]:
        last = GaugeMetricFamily("mixmaker_tick_duration_seconds", "the last tick's work, per exchange account",
                                 labels=["account"])
        worst = GaugeMetricFamily("mixmaker_tick_duration_max_seconds", "the longest tick so far", labels=["account"])
        count = CounterMetricFamily("mixmaker_ticks", "ticks measured", labels=["account"])
        for name, t in self.engine.tick_times.items():
            last.add_metric([name], t.get("last_s", 0.0))
            worst.add_metric([name], t.get("max_s", 0.0))
            count.add_metric([name], t.get("count", 0))
        yield from (last, worst, count)

    def _limiters(self) -> Iterator[Metric]:
        waited = CounterMetricFamily("mixmaker_limiter_wait_seconds", "time requests waited in the rate limiter",
                                     labels=["account"])
        queued = GaugeMetricFamily("mixmaker_limiter_queued", "requests waiting now", labels=["account"])
        limited = CounterMetricFamily("mixmaker_limiter_429", "HTTP 429 answers", labels=["account"])
        banned = CounterMetricFamily("mixmaker_limiter_418", "HTTP 418 answers", labels=["account"])
        admitted = CounterMetricFamily("mixmaker_limiter_admitted", "requests let through", labels=["account"])
        for name, conn in self.engine.connectors.items():
            s = conn.limiter.stats
            waited.add_metric([name], s.waited_s_total)
            queued.add_metric([name], s.queued)
            limited.add_metric([name], s.rate_limited)
            banned.add_metric([name], s.banned)
            admitted.add_metric([name], s.admitted)
        yield from (waited, queued, limited, banned, admitted)

    def _moves(self, ov: Any) -> Iterator[Metric]:
        by_state = GaugeMetricFamily("mixmaker_moves", "moves between Mixin and the exchanges not finished, by state",
                                     labels=["state"])
        oldest = GaugeMetricFamily("mixmaker_move_oldest_age_seconds", "the oldest unfinished move's age, by state",
                                   labels=["state"])
        counts = Counter(m.state for m in ov.moves)
        for state in (s for s in MoveState if not s.terminal):
            by_state.add_metric([state.value], counts.get(state, 0))
            oldest.add_metric([state.value], max((m.age_s for m in ov.moves if m.state is state), default=0.0))
        yield from (by_state, oldest)

    def _reconciliation(self, ov: Any) -> Iterator[Metric]:
        e = self.engine
        diffs = GaugeMetricFamily("mixmaker_reconciliation_difference", "what the venue holds minus the ledger, in "
                                  "the asset (last check; analytics: a float)", labels=["place", "asset"])
        ok = GaugeMetricFamily("mixmaker_reconciliation_ok", "1 when the last check found no difference", labels=[])
        age = GaugeMetricFamily("mixmaker_reconciliation_age_seconds", "since the last check", labels=[])
        halted = GaugeMetricFamily("mixmaker_funds_halts", "active halts of moves (a difference at two checks, a "
                                   "changed deposit address)", labels=[])
        rec = ov.reconciliation
        if rec is not None and e.store is not None:
            lines = e.store.query("SELECT account, asset, diff_units FROM reconciliation_diffs WHERE check_id = ?",
                                  (rec["check_id"],))
            for account, asset, units in lines:
                diffs.add_metric([account, asset], int(units) / 10 ** e.ledger.decimals(asset))
            ok.add_metric([], 1.0 if rec["ok"] else 0.0)
            age.add_metric([], (time.time_ns() - rec["at_ns"]) / 1e9)
        halted.add_metric([], len(ov.halts))
        yield from (diffs, ok, age, halted)


class MetricsServer:
    def __init__(self, engine: Engine, host: str, port: int) -> None:
        self.engine = engine
        self.host, self.port = host, port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(EngineCollector(engine))
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.port

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE})

    async def _health(self, request: web.Request) -> web.Response:
        report = self.engine.health.report()
        return web.Response(text=json.dumps(report, indent=1), status=200 if report["ready"] else 503,
                            content_type="application/json")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
