"""The engine: one process, one store, every layer wired.

    engine = Engine(config, links)          # links: live_links(config) or paper_links(config, sims)
    await engine.start()                    # the start order below; raises if a part cannot start
    ...                                     # workers run; engine.health, overview(engine)
    await engine.stop()                     # graceful: stop quoting, cancel, finish the steps in flight

Start order (nothing moves or trades before the parts it depends on are ready):
1. the store (SQLite: the ledger, user orders, payouts, moves, the order journal, the snapshot
   cursor) and the metrics/health endpoint (it shows what is not ready yet);
2. Mixin reachable (the bot's `/me`); the exchange connectors; the funds layer
   (`mixmaker.funds.worker.FundsWorker`: mover, confirmation worker, reconciliation) on them;
3. the pools' runtimes: markets loaded and checked against the catalog, books subscribed, the
   order tracker reconciled with the venue (orders in doubt asked, fills caught up into the
   ledger) -- only then do the pools' clocks start quoting (and only on a synced book);
4. the funds layer's start-up comparison (`FundsWorker.start`): the asset map against Mixin and
   the exchanges, the deposit addresses, payments a previous run left, every move in flight asked
   at its venue, intake read to the end, transit accounts and user orders' requests against their
   moves, a first reconciliation. Only then may anything move;
5. the workers: the cycle (in FundsWorker's order: follow the moves, take in Mixin snapshots,
   drive the user orders, move funds and reconcile when due, pay out), the activity log and the
   samples for the run report.

Stop: the workers end after the pass in flight (each step of theirs is durable and idempotent),
the pools stop quoting and cancel every open order (asking the venue about any in doubt), a last
reconciliation is recorded, the connections close. A hard kill at any point leaves state the next
start reconciles: the tracker with the venue, the intake from its cursor, the moves from their
venues, the lifecycle from each order's state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mixmaker.clock import TimeIterator
from mixmaker.engine.activity import ActivityTail
from mixmaker.engine.config import EngineConfig
from mixmaker.engine.errors import EngineError
from mixmaker.engine.health import Health
from mixmaker.engine.logs import log_ids
from mixmaker.engine.metrics import MetricsServer
from mixmaker.engine.overview import fee_short_text, last_reconciliation
from mixmaker.engine.samples import Samples
from mixmaker.engine.venues import Links
from mixmaker.engine.workers import Periodic
from mixmaker.errors import MixmakerError
from mixmaker.funds import halts
from mixmaker.funds.assets import AssetCheckError
from mixmaker.funds.ledger import Ledger
from mixmaker.funds.moves import MoveState
from mixmaker.funds.reconcile import Check
from mixmaker.funds.worker import FundsWorker
from mixmaker.mixin.client import MixinClient
from mixmaker.mixin.payments import Payments
from mixmaker.mixin.snapshots import SnapshotReader
from mixmaker.store import SqliteStore
from mixmaker.users import alerts
from mixmaker.users.intake import Intake
from mixmaker.users.lifecycle import DRIVEN, OrderWorker
from mixmaker.users.orders import OrderBook
from mixmaker.users.payouts import Outbox, PayoutWorker
from mixmaker.users.pool_fills import FillBook
from mixmaker.users.pool_runtime import PoolRuntime, setups_from_catalog
from mixmaker.users.pools import PoolLedger, Pools, terms_from_catalog

log = logging.getLogger("mixmaker.engine")

STEPS_PER_PASS = 8
PARTS = ("database", "mixin", "funds", "intake", "orders", "payouts", "reconciliation")


class TickTimer(TimeIterator):
    """Two of these around a clock's iterators measure how long each tick's work takes."""

    def __init__(self, runtime_name: str, is_end: bool, shared: dict[str, Any]) -> None:
        self.name, self.is_end, self.shared = runtime_name, is_end, shared

    def tick(self, now_ns: int) -> None:
        if not self.is_end:
            self.shared["t0"] = time.perf_counter()
            return
        t0 = self.shared.get("t0")
        if t0 is not None:
            d = time.perf_counter() - t0
            self.shared["last_s"] = d
            self.shared["max_s"] = max(self.shared.get("max_s", 0.0), d)
            self.shared["sum_s"] = self.shared.get("sum_s", 0.0) + d
            self.shared["count"] = self.shared.get("count", 0) + 1


class Engine:
    def __init__(self, config: EngineConfig, links: Links) -> None:
        self.config = config
        self.catalog = config.catalog
        self.links = links
        self.health = Health()
        self.started_ns = time.time_ns()
        self.workers: dict[str, Periodic] = {}
        self.runtimes: dict[str, PoolRuntime] = {}
        self.connectors: dict[str, Any] = {}
        self.tick_times: dict[str, dict[str, Any]] = {}
        self.store: SqliteStore | None = None
        self.mixin: MixinClient | None = None
        self.funds: FundsWorker | None = None
        self.last_check: Check | None = None  # the last reconciliation of this process (the store has all)
        self.activity: ActivityTail | None = None
        self.samples: Samples | None = None
        self._stopped = False
        self.metrics: MetricsServer | None = None
        self.metrics_port: int | None = None
        self._intake_lock = asyncio.Lock()

    # --- start ------------------------------------------------------------------------------------

    async def start(self) -> None:
        e = self.config.engine
        self.health.phase = "starting"
        for part in (*PARTS[:2], *(f"exchange:{n}" for n in self.links.exchanges), *PARTS[2:]):
            self.health.set(part, False, "not started")
        if e.metrics_port is not None:  # first: /health tells what is not ready yet
            self.metrics = MetricsServer(self, e.metrics_host, e.metrics_port)
            self.metrics_port = await self.metrics.start()
            log.info("metrics and health on http://%s:%d/metrics and /health", e.metrics_host, self.metrics_port)
        db = Path(e.database)
        db.parent.mkdir(parents=True, exist_ok=True)
        self.store = store = SqliteStore(db)
        self.ledger = Ledger(store)
        self.catalog.assets.register(self.ledger)
        self.orders = OrderBook(store)
        self.outbox = Outbox(store, self.ledger, self.catalog.assets, self.catalog.limits, self.orders)
        alerts.migrate(store)
        self.health.set("database", True, str(db))

        self.mixin = MixinClient(self.links.keystore, self.links.mixin_url)
        await self._until_ok("mixin", self.mixin.me, float(e.connect_timeout_s))
        self.payments = Payments(self.mixin, store)
        self.connectors = {name: link.connector() for name, link in self.links.exchanges.items()}
        self.pool_book = PoolLedger(store, self.ledger, terms_from_catalog(self.catalog))
        for name, conn in self.connectors.items():
            setups = setups_from_catalog(self.catalog, name)
            if setups:
                self.runtimes[name] = PoolRuntime(conn, store, self.pool_book, FillBook(store, self.ledger), setups,
                                                  assets=self.catalog.assets, tick_s=str(e.tick_s),
                                                  poll_s=float(e.tracker_poll_s))
        self.funds = funds = FundsWorker(
            store, self.ledger, self.catalog.assets, self.payments,
            {name: conn.venue for name, conn in self.connectors.items()}, config=self.config.funds_config(),
            catch_up={name: self._catch_up(rt) for name, rt in self.runtimes.items()})
        self.intake = Intake(store, self.ledger, self.catalog, self.orders, self.outbox,
                             app_id=self.links.keystore.app_id, own_deposits=funds.snapshots)
        self.worker = OrderWorker(store, self.ledger, self.orders, self.outbox, funds.mover,
                                  Pools(self.pool_book, self.runtimes))
        self.payer = PayoutWorker(self.outbox, self.payments)
        self.reader = SnapshotReader(self.mixin, store)

        for name, rt in self.runtimes.items():
            shared: dict[str, Any] = {}
            self.tick_times[name] = shared
            rt.clock.add_iterator(TickTimer(name, False, shared))  # before the pools' loops (added by start)
            try:  # a venue that never answers must not hang the start: bounded, then said
                await asyncio.wait_for(rt.start(), timeout=float(e.connect_timeout_s))
            except Exception as err:
                why = f"no answer in {float(e.connect_timeout_s):.0f} s" if isinstance(err, TimeoutError) \
                    else f"{type(err).__name__}: {err}"
                self.health.set(f"exchange:{name}", False, why)
                raise EngineError(f"exchange:{name} did not start: {why}") from err
            self.health.set(f"exchange:{name}", True)
            rt.clock.add_iterator(TickTimer(name, True, shared))
        for name in self.links.exchanges:
            if name not in self.runtimes:
                self.health.set(f"exchange:{name}", True, "no pools here")

        self.health.set("funds", False, "the start-up comparison runs: nothing moves before it passed")
        try:
            self.last_check = await funds.start(self._take_in)
        except AssetCheckError as err:
            self.health.set("funds", False, str(err))
            raise EngineError(f"the asset map does not match the venues: {err}") from err
        except (MixmakerError, OSError, TimeoutError) as err:
            self.health.set("funds", False, f"{type(err).__name__}: {err}")
            raise EngineError(f"the funds layer did not start: {type(err).__name__}: {err}") from err
        self._funds_health()
        self.activity = ActivityTail(store, self.ledger, catalog=self.catalog)
        self.samples = Samples(store, self)
        interval = float(min(e.intake_poll_s, e.worker_interval_s))
        self.workers = {w.name: w.start() for w in (
            Periodic("cycle", interval, self._cycle),
            Periodic("activity", 0.5, self._activity_pass),
            Periodic("samples", float(e.sample_interval_s), self.samples.record),
        )}
        self.health.phase = "running"
        log.info("engine running: %d pools on %s, database %s", len(self.catalog.pools),
                 ", ".join(sorted(self.runtimes)) or "no exchange", db)

    @staticmethod
    def _catch_up(rt: PoolRuntime) -> Callable[[], Awaitable[None]]:
        """Books the fills not in the ledger yet (before a reconciliation reads the exchange)."""

        async def catch_up() -> None:
            await rt.tracker.catch_up()
            rt.tracker.redeliver()

        return catch_up

    async def _until_ok(self, part: str, call: Any, timeout_s: float = 60.0) -> Any:
        """A part's first call, retried while its venue is not there yet (shown in /health)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        delay = 0.2
        while True:
            try:
                result = await call()
                self.health.set(part, True)
                return result
            except Exception as e:  # noqa: BLE001 - any failure to start is retried, then reported
                why = f"{type(e).__name__}: {e}"
                self.health.set(part, False, why)
                if loop.time() + delay > end or isinstance(e, EngineError):
                    raise EngineError(f"{part} did not start after {timeout_s:.0f} s: {why}") from e
                log.warning("%s not ready: %s (retrying)", part, why)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # --- the cycle -------------------------------------------------------------------------------

    async def _take_in(self) -> int:
        """One intake poll (the cycle's and the stop's, never two at once). May raise
        `DepositNotYetKnown` (`FundsWorker.poll_intake` handles it)."""

        def handle(tx: Any, snapshot: Any) -> None:
            with log_ids(snapshot=snapshot.snapshot_id):
                self.intake.handle(tx, snapshot)

        async with self._intake_lock:
            return await self.reader.poll(handle)

    async def _cycle(self) -> None:
        """One round in the funds layer's order: follow the moves (our withdrawals' hashes known
        before intake reads the deposits), take in Mixin snapshots, drive the user orders, move
        funds (and reconcile when due), pay out. A stage that fails is reported and the others
        still run; the next round does it again."""
        funds = self.funds
        assert funds is not None
        failed: list[str] = []

        async def stage(part: str, run: Callable[[], Awaitable[Any]]) -> None:
            try:
                await run()
            except Exception as e:  # noqa: BLE001 - one stage's failure does not hold the others
                failed.append(f"{part}: {type(e).__name__}: {e}")
                self.health.set(part, False, f"{type(e).__name__}: {e}")
                log.warning("%s: %s: %s", part, type(e).__name__, e)

        async def intake() -> None:
            await funds.poll_intake(self._take_in)
            self.health.set("intake", True)

        async def move() -> None:
            await funds.move()  # the moves in flight were followed at the start of this round
            self._funds_health()

        await stage("funds", funds.follow)
        await stage("intake", intake)
        await stage("orders", self._orders_pass)
        await stage("funds", move)
        await stage("payouts", self._payouts_pass)
        if failed:
            raise EngineError("; ".join(failed))

    async def _orders_pass(self) -> None:
        failed = 0
        for o in self.orders.in_states(*DRIVEN):
            with log_ids(user_order=o.order_id, pool=o.pool_id):
                try:
                    for _ in range(STEPS_PER_PASS):
                        if not await self.worker.step(o.order_id):
                            break
                except Exception as e:  # noqa: BLE001 - one order's failed step does not hold the others
                    failed += 1
                    log.warning("user order step failed: %s: %s", type(e).__name__, e)
        self.health.set("orders", failed == 0, f"{failed} orders' steps failed (retried)" if failed else "")

    async def _payouts_pass(self) -> None:
        for p in self.outbox.queued():
            with log_ids(user_order=p.order_id or None, payout=p.payout_id, snapshot=p.snapshot_id or None):
                await self.payer.send(p)
        self.health.set("payouts", True)

    def _funds_health(self) -> None:
        """`funds`: halts and stuck moves; `reconciliation`: the last check's findings."""
        funds, store = self.funds, self.store
        if funds is None or store is None:
            return
        active = halts.active(store)
        stuck = [m for m in funds.moves.in_flight() if m.state is MoveState.STUCK]
        problems = []
        if active:
            problems.append("moves halted: " + "; ".join(h.message for h in active)
                            + " (mixmaker funds clear-halt --db PATH --reason TEXT once fixed)")
        if stuck:
            problems.append("stuck: " + "; ".join(
                f"move {m.move_id} ({m.direction.side} {m.asset} on {m.venue_account}, last: {m.last_signal})"
                for m in stuck))
        if funds.mover.fee_short:
            problems.append("fee float short: " + "; ".join(fee_short_text(self.ledger, s)
                                                             for s in funds.mover.fee_short))
        if problems:
            self.health.set("funds", False, "; ".join(problems))
        else:
            n = len(funds.moves.in_flight())
            self.health.set("funds", True, f"{n} moves in flight" if n else "")

        rec = last_reconciliation(store, self.ledger)
        if rec is None:
            self.health.set("reconciliation", False, "no check yet")
            return
        halted = [h for h in active if h.kind is halts.HaltKind.RECONCILIATION]
        diffs = ", ".join(f"{d['account']} {d['asset']} {d['difference']}" for d in rec["differences"])
        if rec["errors"]:
            self.health.set("reconciliation", False, "venues not compared: " + "; ".join(rec["errors"]))
        elif halted:
            self.health.set("reconciliation", False, "difference at two checks in a row: " + "; ".join(
                f"{h.account} {h.asset} {self.ledger.format(h.asset, h.units)}" for h in halted))
        elif diffs:
            self.health.set("reconciliation", True, f"a difference seen once (checked again): {diffs}")
        else:
            self.health.set("reconciliation", True, "ledger = Mixin wallet = exchange accounts, to the unit")

    async def _activity_pass(self) -> None:
        assert self.activity is not None
        self.activity.poll()
        for name, rt in self.runtimes.items():  # books: quoted only while synced
            for symbol, sync in rt.connector.syncs.items():
                synced = rt.connector.book(symbol) is not None
                market = rt.connector.market(symbol).unified
                why = "" if synced else (f"{getattr(sync.state, 'name', sync.state)}: "
                                         f"{sync.desync_reason or 'waiting for a snapshot'}")
                self.health.set(f"book:{name}:{market}", synced, why)

    # --- stop -------------------------------------------------------------------------------------

    async def stop(self) -> bool:
        """Graceful: True if every worker ended after its pass and no order of ours is left open."""
        if self._stopped:
            return True
        self._stopped = True
        self.health.phase = "stopping"
        timeout = float(self.config.engine.stop_timeout_s)
        log.info("stopping: quoting stops, open orders are cancelled, steps in flight finish")
        results = await asyncio.gather(*(w.stop(timeout) for w in self.workers.values()),
                                       *(rt.stop(timeout) for rt in self.runtimes.values()), return_exceptions=True)
        clean = all(r is True for r in results)
        if self.funds is not None and self.funds.started:
            try:  # the books at rest: what `mixmaker status` shows as the last reconciliation
                await self.funds.follow()
                await self.funds.poll_intake(self._take_in)
                self.last_check = await self.funds.reconcile()
            except Exception as e:  # noqa: BLE001 - a venue gone by now: the last periodic check stays
                log.warning("the reconciliation at stop failed: %s", e)
        if self.activity is not None:
            try:
                self.activity.poll()
            except Exception:  # noqa: BLE001 - the store may already be gone after a failed start
                pass
        for conn in self.connectors.values():
            await asyncio.gather(conn.close(), return_exceptions=True)
        if self.mixin is not None:
            await asyncio.gather(self.mixin.close(), return_exceptions=True)
        if self.store is not None:
            self.store.close()
        self.health.phase = "stopped"
        if self.metrics is not None:
            await self.metrics.stop()
        log.info("stopped%s", "" if clean else " (some steps or cancels did not finish in time: the next start resumes them)")
        return clean
