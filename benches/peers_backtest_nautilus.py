"""NautilusTrader 1.221 as a backtest peer: the recording turned into its data objects (order
book deltas at L2, trade ticks; timed apart), and the same maker as benches/maker_20hz.toml as a
Strategy on a 50 ms timer.

The maker, side by side with mixmaker's PMM settings: on each 50 ms timer event, from the mid
of the cached L2 book, one post-only buy at floor(mid x (1 - 0.005 %)) and one post-only sell
at floor(mid x (1 + 0.005 %)) on the 0.1 tick, 0.01 BTC each; an open order at the wanted price
is kept, any other is cancelled and the wanted one submitted at once. The venue: L2 book, 25 ms
latency (LatencyModel), fills from the book and from trades (`trade_execution`), the
instrument's maker fee. NautilusTrader has no risk-averse queue model for L2 data: its fill
model fills a limit order when the book or a trade reaches it. Counted: orders submitted,
cancels sent, fills (OrderFilled events).
"""

from __future__ import annotations

import gzip
from datetime import timedelta
from decimal import Decimal

import orjson
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import BookOrder, OrderBookDelta, TradeTick
from nautilus_trader.model.enums import (
    AccountType,
    AggressorSide,
    BookAction,
    BookType,
    OmsType,
    OrderSide,
    RecordFlag,
    TimeInForce,
)
from nautilus_trader.model.identifiers import TradeId, Venue
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy

SPREAD = Decimal("0.00005")
QTY = "0.010"


def instrument():
    return TestInstrumentProvider.btcusdt_perp_binance()


def build_data(path: str) -> list:
    """The recording as Nautilus objects: the REST snapshot as CLEAR + ADDs, then the levels of
    every diff that continues it as OrderBookDelta (the last of each message flagged F_LAST),
    and every market trade after the snapshot as a TradeTick (the engine takes the data's kind
    from its first element, which must be book data)."""
    inst = instrument()
    iid = inst.id
    out: list = []
    last_u = None
    trade_no = 0
    with gzip.open(path, "rb") as f:
        for line in f:
            sp = line.index(b" ")
            ts = int(line[:sp])
            msg = orjson.loads(line[sp + 1:])
            data = msg.get("data")
            if data is None:
                if "lastUpdateId" not in msg:
                    continue
                last_u = msg["lastUpdateId"]
                deltas = [OrderBookDelta.clear(iid, 0, ts, ts)]
                for side, levels in ((OrderSide.BUY, msg["bids"]), (OrderSide.SELL, msg["asks"])):
                    for px, sz in levels:
                        deltas.append(OrderBookDelta(iid, BookAction.ADD, BookOrder(side, Price(float(px), 1), Quantity(float(sz), 3), 0), 0, 0, ts, ts))
                deltas[-1] = _last(deltas[-1])
                out += deltas
                continue
            e = data.get("e")
            if e == "depthUpdate":
                if last_u is None or data["u"] < last_u:
                    continue
                deltas = []
                for side, key in ((OrderSide.BUY, "b"), (OrderSide.SELL, "a")):
                    for px, sz in data[key]:
                        q = Quantity(float(sz), 3)
                        action = BookAction.DELETE if q.as_double() == 0 else BookAction.UPDATE
                        deltas.append(OrderBookDelta(iid, action, BookOrder(side, Price(float(px), 1), q, 0), 0, data["u"], ts, ts))
                if deltas:
                    deltas[-1] = _last(deltas[-1])
                    out += deltas
            elif e == "trade" and data.get("X", "MARKET") == "MARKET" and last_u is not None:
                trade_no += 1
                out.append(TradeTick(iid, Price(float(data["p"]), 1), Quantity(float(data["q"]), 3),
                                     AggressorSide.SELLER if data["m"] else AggressorSide.BUYER,
                                     TradeId(str(data["t"])), ts, ts))
    return out


def _last(d: OrderBookDelta) -> OrderBookDelta:
    return OrderBookDelta(d.instrument_id, d.action, d.order, RecordFlag.F_LAST, d.sequence, d.ts_event, d.ts_init)


class MakerConfig(StrategyConfig, frozen=True):
    instrument_id: str
    step_ms: int = 50
    quote: bool = True


class Maker(Strategy):
    def __init__(self, config: MakerConfig) -> None:
        super().__init__(config)
        self.iid = None
        self.decisions = self.submitted = self.cancels = self.fills = 0

    def on_start(self) -> None:
        from nautilus_trader.model.identifiers import InstrumentId

        self.iid = InstrumentId.from_str(self.config.instrument_id)
        self.inst = self.cache.instrument(self.iid)
        self.subscribe_order_book_deltas(self.iid, book_type=BookType.L2_MBP)
        self.subscribe_trade_ticks(self.iid)
        if self.config.quote:
            self.clock.set_timer("quote", timedelta(milliseconds=self.config.step_ms), callback=self.on_quote)

    def on_order_filled(self, event) -> None:
        self.fills += 1

    def on_quote(self, event) -> None:
        self.decisions += 1
        book = self.cache.order_book(self.iid)
        if book is None:
            return
        bid, ask = book.best_bid_price(), book.best_ask_price()
        if bid is None or ask is None or ask <= bid:
            return
        tick = Decimal("0.1")
        mid2 = bid.as_decimal() + ask.as_decimal()
        want_bid = ((mid2 * (1 - SPREAD) / 2) / tick).to_integral_value(rounding="ROUND_FLOOR") * tick
        want_ask = ((mid2 * (1 + SPREAD) / 2) / tick).to_integral_value(rounding="ROUND_FLOOR") * tick
        have_bid = have_ask = False
        for o in self.cache.orders_open(instrument_id=self.iid) + self.cache.orders_inflight(instrument_id=self.iid):
            if o.is_pending_cancel:
                continue
            px = o.price.as_decimal()
            if o.side == OrderSide.BUY and px == want_bid and not have_bid:
                have_bid = True
            elif o.side == OrderSide.SELL and px == want_ask and not have_ask:
                have_ask = True
            elif o.is_open:
                self.cancel_order(o)
                self.cancels += 1
        for side, px, have in ((OrderSide.BUY, want_bid, have_bid), (OrderSide.SELL, want_ask, have_ask)):
            if have:
                continue
            if (side == OrderSide.BUY and px >= ask.as_decimal()) or (side == OrderSide.SELL and px <= bid.as_decimal()):
                continue
            order = self.order_factory.limit(self.iid, side, Quantity.from_str(QTY), Price(px, 1),
                                             time_in_force=TimeInForce.GTC, post_only=True)
            self.submit_order(order)
            self.submitted += 1


def run(data: list, quote: bool) -> dict:
    inst = instrument()
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(Venue("BINANCE"), OmsType.NETTING, AccountType.MARGIN, [Money(1_000_000, USDT)],
                     book_type=BookType.L2_MBP, latency_model=LatencyModel(base_latency_nanos=25_000_000),
                     trade_execution=True)
    engine.add_instrument(inst)
    engine.add_data(data, sort=False)
    strategy = Maker(MakerConfig(instrument_id=str(inst.id), quote=quote))
    engine.add_strategy(strategy)
    engine.run()
    out = {"decisions": strategy.decisions, "orders": strategy.submitted, "cancels": strategy.cancels,
           "fills": strategy.fills}
    engine.dispose()
    return out
