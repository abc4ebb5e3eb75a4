"""Controllers decide, executors act.

    ctl = PureMarketMaking(cfg.strategy, rules)           # or AvellanedaStoikov
    ex = QuoteExecutor(tracker, rules, balances, ctl, now_ns=lambda: clock.current_timestamp_ns)
    clock.add_iterator(StrategyLoop(ctl, ex, MarketView(rules, book_sync, balances)))

Modules: `config` (validated parameters), `market` (what a controller sees), `decision`
(what it hands the executor), `pmm` and `avellaneda` (controllers), `estimators`, `timers`,
`quote_executor`, `position_executor` (triple barrier), `twap_executor`, `loop` (the tick),
`reason` (why a controller is not quoting: a category and a detail).
The per-tick proposal math is the Cython kernel `mixmaker._proposal`.
"""

from mixmaker.strategy.avellaneda import AvellanedaStoikov
from mixmaker.strategy.config import (
    AvellanedaConfig,
    BacktestConfig,
    MarketConfig,
    PMMConfig,
    RunConfig,
    load_config,
    parse_config,
)
from mixmaker.strategy.decision import Decision, Proposal, Quote
from mixmaker.strategy.errors import ConfigError, ExecutorStateError, ModelRangeError, StrategyError
from mixmaker.strategy.kernel import SCALE
from mixmaker.strategy.loop import ExecutorLoop, StrategyLoop
from mixmaker.strategy.market import Balances, MarketRules, MarketSnapshot, MarketView, OwnOrder
from mixmaker.strategy.pmm import PureMarketMaking
from mixmaker.strategy.quote_executor import QuoteExecutor
from mixmaker.strategy.reason import IdleKind, Reason
from mixmaker.strategy.runnable import CloseType, RunnableStatus

__all__ = [
    "SCALE",
    "AvellanedaConfig",
    "AvellanedaStoikov",
    "BacktestConfig",
    "Balances",
    "CloseType",
    "ConfigError",
    "Decision",
    "ExecutorLoop",
    "ExecutorStateError",
    "IdleKind",
    "MarketConfig",
    "MarketRules",
    "MarketSnapshot",
    "MarketView",
    "ModelRangeError",
    "OwnOrder",
    "PMMConfig",
    "Proposal",
    "PureMarketMaking",
    "Quote",
    "QuoteExecutor",
    "Reason",
    "RunConfig",
    "RunnableStatus",
    "StrategyError",
    "StrategyLoop",
    "load_config",
    "parse_config",
]
