"""`mixmaker demo`: the whole money cycle on the local simulators, in one command.

1. The simulators (`mixmaker sim all --state DIR/sims`: the exchange with a moving market, Mixin,
   the chain) start as their OWN process, so they outlive this one, as real venues would.
2. The engine starts on SQLite in DIR (`examples/paper.toml`, the same code as `mixmaker run --paper`).
3. The operator pays the bot's fee float (ETH: Mixin's fee for moving USDT, an ERC-20 token, to
   the exchange); simulated users (`crowd.py`) pay by memo: one bad memo (refunded), one order in two payments,
   orders in two pools; the funds mover sends their money to the exchange by chain (a Mixin
   withdrawal to the exchange's deposit address), the pools make markets; the users stop; funds
   come back by chain (an exchange withdrawal to the bot's Mixin deposit entry); users are paid.
4. The end: the engine stops, the report compares the ledger with what the simulators hold and
   paid (`cycle_report.py`), a summary table is printed (`--json PATH` writes it all), the
   run's PNG report is drawn, the simulators stop.

`--state DIR` makes it resumable: kill this process (even with SIGKILL) and run the same command
again: the simulators are still there (or restart from DIR/sims), the engine resumes from its
database, the users from DIR/crowd.json, and the cycle finishes with the same books.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from mixmaker.engine import config as config_mod
from mixmaker.engine import cycle_report, dashboard
from mixmaker.engine.audit import observe_paper
from mixmaker.engine.config import EngineConfig, LogFormat
from mixmaker.engine.crowd import Crowd, plan
from mixmaker.engine.logs import setup as setup_logs
from mixmaker.engine.overview import overview
from mixmaker.engine.paper_config import PAPER_TOML
from mixmaker.engine.runtime import Engine
from mixmaker.engine.signals import StopSignals
from mixmaker.engine.sims import Sims, folder_in_use, read_sims, sim_all_command, wait_for_sims
from mixmaker.engine.venues import paper_links
from mixmaker.funds.ledger import Ledger
from mixmaker.store import SqliteStore
from mixmaker.users.orders import OrderBook
from mixmaker.users.payouts import Outbox, PayoutState

log = logging.getLogger("mixmaker.demo")

REPORT_JSON, REPORT_PNG, ENGINE_LOG, SIMS_LOG = "demo-report.json", "demo-report.png", "engine.log", "sims.log"
SETTLE_GRACE_S = 180.0  # after the timeline, how long the cycle may take to finish before the run gives up


@dataclass
class DemoOptions:
    duration_s: float = 180.0
    users: int = 5
    seed: int = 1
    state: Path | None = None
    headless: bool = False
    json_path: Path | None = None
    png_path: Path | None = None
    feed: str = "synthetic"
    keep_sims: bool = False


def demo_config(state: Path) -> EngineConfig:
    cfg = config_mod.parse_text(PAPER_TOML, "examples/paper.toml (embedded)")
    return cfg.with_engine(database=state / "mixmaker.db", metrics_port=0)


# --- the simulators' process ------------------------------------------------------------------------


async def ensure_sims(folder: Path, seed: int, feed: str) -> tuple[Sims, bool]:
    """The simulators of `folder`: those already running there, or a new `sim all` process (which
    restores the folder's state). Returns (sims, started by us now)."""
    if folder_in_use(folder):
        return await wait_for_sims(folder, 30), False
    folder.mkdir(parents=True, exist_ok=True)
    logf = open(folder.parent / SIMS_LOG, "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(sim_all_command(folder, seed=seed, feed=feed), stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # its own session: Ctrl-C is ours
    logf.close()
    try:
        return await wait_for_sims(folder, 60), True
    except Exception:
        if proc.poll() is not None:
            tail = (folder.parent / SIMS_LOG).read_text(errors="replace")[-800:]
            raise RuntimeError(f"the simulators exited ({proc.returncode}): {tail}") from None
        raise


async def stop_sims(folder: Path) -> None:
    """Asks the folder's `sim all` to stop (it saves its state) and waits for it."""
    try:
        sims = read_sims(folder)
    except Exception:  # noqa: BLE001 - nothing to stop
        return
    if not folder_in_use(folder) or sims.pid <= 0:
        return
    try:
        os.kill(sims.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not folder_in_use(folder):
            return
        await asyncio.sleep(0.1)


# --- the run ------------------------------------------------------------------------------------------


def _finished(engine: Engine, crowd: Crowd) -> bool:
    if not (crowd.payments_done and crowd.stops_done):
        return False
    if any(not o.state.terminal for o in engine.orders.all()):
        return False
    return not any(p.state is PayoutState.QUEUED for p in engine.outbox.all())


async def run(opts: DemoOptions, console: Console | None = None) -> int:
    console = console or Console()
    state = opts.state or Path(tempfile.mkdtemp(prefix="mixmaker-demo-"))
    state.mkdir(parents=True, exist_ok=True)
    done = Crowd.existing(state)
    if done and done.get("finished") and (state / REPORT_JSON).exists():
        report = json.loads((state / REPORT_JSON).read_text())
        console.print(f"this demo finished already ({state}); its report:")
        _finish_outputs(report, opts, state, console, draw=False)
        return 0 if report["ok"] else 1
    cfg = demo_config(state)
    if opts.headless:
        setup_logs(LogFormat.HUMAN, "info")
    else:
        setup_logs(LogFormat.HUMAN, "info", stream=open(state / ENGINE_LOG, "a"))  # noqa: SIM115
    console.print(f"mixmaker demo: state in {state}" + ("" if opts.state else " (pass --state DIR to resume a run)"))
    signals = StopSignals("mixmaker demo").install()
    sims_dir = state / "sims"
    sims, _ = await ensure_sims(sims_dir, opts.seed, opts.feed)
    engine = Engine(cfg, paper_links(cfg, sims))
    interrupted = False
    try:
        await engine.start()
        assert engine.mixin is not None
        markets = cfg.catalog.markets
        presets = tuple(p.name for p in cfg.catalog.presets)[:2]
        payers = cfg.funds.fee_payers
        people = plan(opts.seed, opts.users, markets[0].name, (presets[0], presets[-1]),
                      operator=str(payers[0]) if payers else None)
        crowd = Crowd(state, people, cfg.catalog.assets, sims.mixin_url, engine.mixin, duration_s=opts.duration_s,
                      seed=opts.seed)
        interrupted = not await _play(engine, crowd, opts, signals, console)
        if not interrupted:
            await crowd.note_after()
    finally:
        await engine.stop()
    if interrupted:
        console.print(f"stopped before the end; run the same command with --state {state} to carry on")
        if not opts.state:
            await stop_sims(sims_dir)
        return 130
    report = await _report(cfg, sims, crowd, state)
    crowd.doc["finished"] = True
    crowd._save()
    await crowd.close()
    _finish_outputs(report, opts, state, console, draw=True, db=cfg.engine.database)
    if not opts.keep_sims:
        await stop_sims(sims_dir)
    signals.remove()
    return 0 if report["ok"] else 1


async def _play(engine: Engine, crowd: Crowd, opts: DemoOptions, signals: StopSignals, console: Console) -> bool:
    """Runs the users' timeline until the cycle is finished; False if interrupted."""
    decimals = {spec.symbol: spec.decimals for spec in engine.catalog.assets}
    deadline = crowd.started_at + opts.duration_s + SETTLE_GRACE_S
    last_line = 0.0

    def header() -> str:
        f = crowd.fraction()
        phase = ("users paying" if not crowd.payments_done else "markets made" if f < 0.55 and not crowd.stops_done
                 else "users stopping" if not crowd.stops_done else "paying users back")
        return dashboard.clock_header(phase, crowd.elapsed_s(), opts.duration_s) + (
            f"  metrics :{engine.metrics_port}" if engine.metrics_port else "")

    def activity() -> list[str]:
        recent = list(engine.activity.recent) if engine.activity is not None else []
        return [f"{time.strftime('%H:%M:%S', time.localtime(a.at_ns / 1e9))} {a.text}  "
                f"{' '.join(f'{k}={v[:8]}' for k, v in a.ids.items())}" for a in recent]

    async def step() -> bool | None:
        try:
            await crowd.act()
        except Exception as e:  # noqa: BLE001 - a refused call is tried again at the next step
            log.warning("the users' step failed: %s (again shortly)", e)
        if _finished(engine, crowd) and crowd.fraction() >= 0.5:
            return True
        if time.time() > deadline:
            log.error("the cycle did not finish %.0f s after the timeline: stopping", SETTLE_GRACE_S)
            return True
        return None

    if opts.headless:
        while not signals.stop.is_set():
            if await step():
                return True
            if time.monotonic() - last_line >= 2.0:
                last_line = time.monotonic()
                log.info("%s", dashboard.progress_line(overview(engine), header()))
            await asyncio.sleep(0.25)
        return False
    with Live(console=console, refresh_per_second=4, screen=False, transient=False) as live:
        while not signals.stop.is_set():
            if await step():
                live.update(dashboard.render(overview(engine), header(), activity(), decimals, console.width))
                return True
            live.update(dashboard.render(overview(engine), header(), activity(), decimals, console.width))
            await asyncio.sleep(0.25)
    return False


async def _report(cfg: EngineConfig, sims: Sims, crowd: Crowd, state: Path) -> dict[str, Any]:
    wallet, exchanges = await observe_paper(sims, cfg.catalog.assets, cfg.exchanges)
    store = SqliteStore(cfg.engine.database)
    try:
        ledger = Ledger(store)
        orders = OrderBook(store)
        outbox = Outbox(store, ledger, cfg.catalog.assets, cfg.catalog.limits, orders)
        report = cycle_report.build(ledger, orders, outbox, cfg.catalog.assets, users_before=crowd.doc["before"],
                                    users_after=crowd.doc["after"], bot_wallet=wallet, exchanges=exchanges,
                                    fee_payers=crowd.operators)
    finally:
        store.close()
    (state / REPORT_JSON).write_text(json.dumps(report, indent=1))
    return report


def _finish_outputs(report: dict[str, Any], opts: DemoOptions, state: Path, console: Console, *, draw: bool,
                    db: Path | None = None) -> None:
    if opts.json_path is not None:
        opts.json_path.write_text(json.dumps(report, indent=1))
    dashboard.summary(report, console)
    if draw and db is not None:
        from mixmaker.engine.report import PlotUnavailableError, plot_run

        try:
            png = plot_run(db, opts.png_path or state / REPORT_PNG, title="mixmaker demo")
            console.print(f"run report: {png}")
        except PlotUnavailableError as e:
            console.print(f"(no PNG report: {e})")


def main(opts: DemoOptions) -> int:
    try:
        return asyncio.run(run(opts))
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a command's last word: what went wrong, in one line
        print(f"mixmaker demo: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
