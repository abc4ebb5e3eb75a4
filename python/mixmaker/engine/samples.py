"""Time series of a run, kept in the engine's store (so a resumed run's report covers the whole
run): each market's mid, each pool's best quotes, inventory and value. The PNG report
(`report.py`) plots them.

Series names: `mid:<market>`, `bid:<pool>`, `ask:<pool>`, `base:<pool>`, `quote:<pool>`,
`value:<pool>` (in the pool's quote asset). Values are decimal text: exact where they are money.
"""

from __future__ import annotations

import time
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

from mixmaker.money import to_decimal
from mixmaker.orders import Side
from mixmaker.store import Store

if TYPE_CHECKING:
    from mixmaker.engine.runtime import Engine

MIGRATIONS = [
    """CREATE TABLE engine_samples (
        at_ns BIGINT NOT NULL, series TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (at_ns, series))""",
]


class Samples:
    def __init__(self, store: Store, engine: Engine) -> None:
        self.store = store
        self.engine = engine
        store.migrate("engine_samples", MIGRATIONS)

    async def record(self) -> None:
        from mixmaker.engine.overview import books, pools

        e = self.engine
        now = time.time_ns()
        rows: list[tuple[int, str, str]] = []
        for b in books(e):
            if b.mid is not None:
                rows.append((now, f"mid:{b.market}", str(b.mid)))
        for p in pools(e):
            bids = [q.price for q in p.quotes if q.side == Side.BUY]
            asks = [q.price for q in p.quotes if q.side == Side.SELL]
            if bids:
                rows.append((now, f"bid:{p.pool_id}", str(max(bids))))
            if asks:
                rows.append((now, f"ask:{p.pool_id}", str(min(asks))))
            for asset, what in ((p.base, "base"), (p.quote, "quote")):
                rows.append((now, f"{what}:{p.pool_id}", e.ledger.format(asset, p.holdings.get(asset, 0))))
            if p.value is not None:
                quote_decimals = e.ledger.decimals(p.quote)
                rows.append((now, f"value:{p.pool_id}",
                             str(to_decimal(p.value.numerator // p.value.denominator, quote_decimals))))
        if rows:
            with self.store.transaction() as tx:
                for r in rows:
                    tx.execute("INSERT INTO engine_samples (at_ns, series, value) VALUES (?, ?, ?) "
                               "ON CONFLICT DO NOTHING", r)


def read(store: Store) -> dict[str, list[tuple[int, Decimal]]]:
    out: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for at, series, value in store.query("SELECT at_ns, series, value FROM engine_samples ORDER BY at_ns"):
        out[series].append((int(at), Decimal(value)))
    return dict(out)
