"""Pools and shares: who owns which part of a pool, exactly.

A pool is one (market, preset) run by one controller and one executor; its money is the ledger
claim `pool:<pool id>` (every member's, in both of the market's assets). A user order joins by
minting shares and leaves by burning all of them:

- **mint**: a tranche of the order's claim (what was just credited on the exchange, every
  asset of it) moves into the pool's claim, for
  `floor(S * order_value / pool_value)` new shares, both values at the synced mid and the pool
  valued BEFORE the new money is added (the first member gets `order_value * SHARE_SCALE`).
  The floor favours the members already in: nobody's part shrinks when someone joins.
- **burn**: the order is entitled, per asset, to `e = pool_units * s / S` (a Fraction). Its gain
  is `value_now(e) - value_at_mint`; the bot's cut per asset is `e * bot_share * max(gain, 0) /
  value_now`. Of the pool's claim, `floor(e - cut)` goes to the order (BURN), `floor(cut)` to the
  bot (BOT_SHARE) and what is left of `floor(e)` (0 or 1 unit) to `rounding` (ROUNDING). The
  fraction `e - floor(e)` stays with the remaining members (less than one unit).

Values are in the quote asset's ledger units, as exact `Fraction`s; a mid is a Fraction of
quote units per base unit (`mid_units`). The ledger transaction and the shares row of a mint
(or the burn row of a burn) are written in the caller's store transaction, with the user
order's state change, so they commit together. Shares are integers kept as decimal text (they
may exceed 64 bits); SQL stays what PostgreSQL runs unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil, floor
from typing import TYPE_CHECKING, Protocol

from mixmaker.funds.accounts import (
    BOT_SHARE,
    ROUNDING,
    Account,
    Entry,
    Flow,
    pool,
    transfer,
    user_order,
)
from mixmaker.funds.ledger import Cause, Ledger, tx_key
from mixmaker.store import Store
from mixmaker.store.base import Row, Transaction
from mixmaker.users.errors import PoolNotReadyError, UserError

if TYPE_CHECKING:
    from mixmaker.users.catalog import Catalog

#: Shares issued per quote unit of value to a pool's first member: a share is worth about a
#: millionth of a unit at first, so the floor of a later mint loses members nothing that counts.
SHARE_SCALE = 10**6

MIGRATIONS = [
    """CREATE TABLE pool_shares (
        order_id TEXT NOT NULL, mint_id TEXT NOT NULL, pool_id TEXT NOT NULL, shares TEXT NOT NULL,
        value_at_mint TEXT NOT NULL, mid TEXT NOT NULL, minted_ns BIGINT NOT NULL,
        PRIMARY KEY (order_id, mint_id))""",
    "CREATE INDEX pool_shares_by_pool ON pool_shares (pool_id)",
    """CREATE TABLE pool_burns (
        order_id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, shares TEXT NOT NULL, pool_shares TEXT NOT NULL,
        value_at_mint TEXT NOT NULL, value_now TEXT NOT NULL, mid TEXT NOT NULL, burned_ns BIGINT NOT NULL)""",
    # Members on their way out: their parts are kept out of the pool's budget until the burn.
    "CREATE TABLE pool_releases (order_id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, requested_ns BIGINT NOT NULL)",
]

Query = Transaction | Store


class PoolError(UserError):
    """A mint or burn that cannot be done as asked (unknown pool, empty order, a pool that owes)."""


@dataclass(frozen=True, slots=True)
class PoolTerms:
    """What the share arithmetic needs to know of a pool (the catalog's PoolSpec carries it)."""

    pool_id: str
    base: str  # ledger symbols
    quote: str
    bot_share: Fraction  # of a member's gain, 0 <= bot_share < 1

    def __post_init__(self) -> None:
        if not isinstance(self.bot_share, Fraction) or not 0 <= self.bot_share < 1:
            raise PoolError(f"pool {self.pool_id}: bot_share must be a Fraction in [0, 1), got {self.bot_share!r}")
        if self.base == self.quote:
            raise PoolError(f"pool {self.pool_id}: base and quote are the same asset {self.base}")

    @property
    def assets(self) -> tuple[str, str]:
        return (self.base, self.quote)

    def value(self, holdings: Mapping[str, int | Fraction], mid: Fraction) -> Fraction:
        """`base * mid + quote`, in quote units."""
        return holdings.get(self.base, 0) * mid + Fraction(holdings.get(self.quote, 0))


@dataclass(frozen=True, slots=True)
class Minted:
    order_id: str
    mint_id: str
    pool_id: str
    shares: int
    value: Fraction  # the order's value at mint, quote units
    mid: Fraction
    units: dict[str, int]  # what moved into the pool


@dataclass(frozen=True, slots=True)
class Burned:
    order_id: str
    pool_id: str
    shares: int
    pool_shares: int  # S before the burn
    value_at_mint: Fraction
    value_now: Fraction  # of the entitlement at the burn's mid
    mid: Fraction
    to_order: dict[str, int] = field(default_factory=dict)
    to_bot: dict[str, int] = field(default_factory=dict)
    to_rounding: dict[str, int] = field(default_factory=dict)

    @property
    def gain(self) -> Fraction:
        return self.value_now - self.value_at_mint


@dataclass(frozen=True, slots=True)
class MemberFigures:
    """One user order's place in its pool, for statements and `status`."""

    order_id: str
    pool_id: str
    shares: int
    pool_shares: int  # the pool's total now (or at the burn)
    value_at_mint: Fraction
    entitlement: dict[str, Fraction]  # its exact part of each asset now (or at the burn)
    value_now: Fraction | None  # at the given mid (or the burn's)
    burned: Burned | None


def mid_units(price_num: int, price_den: int, price_decimals: int, base_decimals: int, quote_decimals: int) -> Fraction:
    """A book price (`price_num / price_den` in the market's price units) as quote ledger units
    per base ledger unit."""
    return Fraction(price_num * 10**quote_decimals, price_den * 10**price_decimals * 10**base_decimals)


def _fraction(text: str) -> Fraction:
    return Fraction(text)


def _text(f: Fraction) -> str:
    return f"{f.numerator}/{f.denominator}"


class PoolLedger:
    """Mint and burn of shares on the ledger; the share rows live in the same store."""

    def __init__(self, store: Store, ledger: Ledger, terms: Iterable[PoolTerms]) -> None:
        self.store = store
        self.ledger = ledger
        self.terms: dict[str, PoolTerms] = {}
        for t in terms:
            self.add(t)
        store.migrate("pools", MIGRATIONS)

    def add(self, terms: PoolTerms) -> None:
        for a in terms.assets:
            self.ledger.decimals(a)  # registered, or a LedgerError now rather than at the first mint
        self.terms[terms.pool_id] = terms

    def term(self, pool_id: str) -> PoolTerms:
        try:
            return self.terms[pool_id]
        except KeyError:
            raise PoolError(f"unknown pool {pool_id!r}") from None

    # --- reading (inside a transaction or not) -------------------------------------------------

    def claim(self, q: Query, account: Account) -> dict[str, int]:
        """What a claim account is owed, per asset (positive), as `q` (the caller's open
        transaction, or the store) sees it."""
        return self.ledger.holdings_of(account, tx=q)

    def holdings(self, pool_id: str, q: Query | None = None) -> dict[str, int]:
        return self.claim(q or self.store, pool(pool_id))

    def total_shares(self, pool_id: str, q: Query | None = None) -> int:
        rows = (q or self.store).query(
            "SELECT s.shares FROM pool_shares s WHERE s.pool_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM pool_burns b WHERE b.order_id = s.order_id)", (pool_id,))
        return sum(int(r[0]) for r in rows)

    def members(self, pool_id: str, q: Query | None = None) -> list[str]:
        """Orders holding shares of the pool now."""
        rows = (q or self.store).query(
            "SELECT DISTINCT s.order_id FROM pool_shares s WHERE s.pool_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM pool_burns b WHERE b.order_id = s.order_id) ORDER BY s.order_id", (pool_id,))
        return [r[0] for r in rows]

    def pool_of(self, order_id: str, q: Query | None = None) -> str | None:
        rows = (q or self.store).query("SELECT pool_id FROM pool_shares WHERE order_id = ? LIMIT 1", (order_id,))
        return rows[0][0] if rows else None

    def shares_of(self, order_id: str, q: Query | None = None) -> tuple[int, Fraction]:
        """(shares, value at mint) over all of an order's mints."""
        rows = (q or self.store).query("SELECT shares, value_at_mint FROM pool_shares WHERE order_id = ?", (order_id,))
        return sum(int(s) for s, _ in rows), sum((_fraction(v) for _, v in rows), Fraction(0))

    def entitlement(self, order_id: str, q: Query | None = None) -> dict[str, Fraction]:
        """The order's exact part of each of its pool's assets now (empty once burned)."""
        q = q or self.store
        pid = self.pool_of(order_id, q)
        if pid is None or self._burn_row(q, order_id) is not None:
            return {}
        s, _ = self.shares_of(order_id, q)
        total = self.total_shares(pid, q)
        held = self.holdings(pid, q)
        return {a: Fraction(held.get(a, 0) * s, total) for a in self.term(pid).assets}

    def member(self, order_id: str, mid: Fraction | None = None) -> MemberFigures | None:
        pid = self.pool_of(order_id)
        if pid is None:
            return None
        s, vm = self.shares_of(order_id)
        burned = self.burned(order_id)
        if burned is not None:
            t = self.term(pid)
            ent = {a: Fraction(burned.to_order.get(a, 0) + burned.to_bot.get(a, 0) + burned.to_rounding.get(a, 0))
                   for a in t.assets}
            return MemberFigures(order_id, pid, s, burned.pool_shares, vm, ent, burned.value_now, burned)
        ent = self.entitlement(order_id)
        value = self.term(pid).value(ent, mid) if mid is not None else None
        return MemberFigures(order_id, pid, s, self.total_shares(pid), vm, ent, value, None)

    def mark_releasing(self, order_id: str) -> None:
        """The member is leaving: from now on its part is not the pool's to trade with."""
        pid = self.pool_of(order_id)
        if pid is None:
            raise PoolError(f"order {order_id} holds no shares")
        with self.store.transaction() as tx:
            tx.execute("INSERT INTO pool_releases (order_id, pool_id, requested_ns) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                       (order_id, pid, time.time_ns()))

    def releasing(self, pool_id: str, q: Query | None = None) -> list[str]:
        """Members of the pool on their way out (released, not burned yet)."""
        rows = (q or self.store).query(
            "SELECT r.order_id FROM pool_releases r WHERE r.pool_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM pool_burns b WHERE b.order_id = r.order_id) ORDER BY r.order_id", (pool_id,))
        return [r[0] for r in rows]

    def reserved(self, pool_id: str) -> dict[str, int]:
        """Units of each asset kept for leaving members (the ceiling of their exact parts)."""
        out: dict[str, int] = {}
        for order_id in self.releasing(pool_id):
            for a, e in self.entitlement(order_id).items():
                out[a] = out.get(a, 0) + ceil(e)
        return out

    def burned(self, order_id: str, q: Query | None = None) -> Burned | None:
        """The order's burn as it was booked, or None if it has not burned."""
        row = self._burn_row(q or self.store, order_id)
        return self._burned_from(row, q) if row is not None else None

    # --- mint ---------------------------------------------------------------------------------

    def mint(self, tx: Transaction, order_id: str, pool_id: str, mid: Fraction, amounts: Mapping[str, int], *,
             tranche: int = 0) -> Minted:
        """Moves `amounts` (ledger units per asset: the tranche just credited on the exchange) from
        the order's claim into the pool for new shares, inside `tx`. Idempotent by (order id,
        tranche): a second call returns the first mint as it was, whatever the mid is now."""
        t = self.term(pool_id)
        mint_id = str(tranche)
        key = tx_key(Cause.MINT, order_id) if tranche == 0 else tx_key(Cause.MINT, order_id, mint_id)
        done = tx.query("SELECT pool_id, shares, value_at_mint, mid FROM pool_shares WHERE order_id = ? AND mint_id = ?",
                        (order_id, mint_id))
        if done:
            pid, shares, value, m = done[0]
            units = {e.asset: -e.units for e in self._entries(tx, key) if e.account == pool(pid) and e.flow is Flow.MINT}
            return Minted(order_id, mint_id, pid, int(shares), _fraction(value), _fraction(m), units)
        if not isinstance(mid, Fraction) or mid <= 0:
            raise PoolError(f"mint of {order_id}: the mid must be a positive Fraction, got {mid!r}")
        other = tx.query("SELECT pool_id FROM pool_shares WHERE order_id = ? AND pool_id <> ? LIMIT 1", (order_id, pool_id))
        if other:
            raise PoolError(f"order {order_id} already holds shares of pool {other[0][0]}, not {pool_id}")
        if self._burn_row(tx, order_id) is not None:
            raise PoolError(f"order {order_id} has burned its shares; it cannot mint again")
        amounts = {a: u for a, u in amounts.items() if u}
        stray = sorted(set(amounts) - set(t.assets))
        if stray:
            raise PoolError(f"order {order_id} brings {stray}, which pool {pool_id} does not trade")
        claim = self.claim(tx, user_order(order_id))
        short = {a: u for a, u in amounts.items() if u < 0 or claim.get(a, 0) < u}
        if short:
            raise PoolError(f"order {order_id} is not owed {short} (its claim: {claim}); nothing minted")
        order_value = t.value(amounts, mid)
        if order_value <= 0:
            raise PoolError(f"order {order_id} holds nothing to mint")
        held = self.holdings(pool_id, tx)
        total = self.total_shares(pool_id, tx)
        entries: list[Entry] = []
        if total == 0:
            shares = floor(order_value * SHARE_SCALE)
            # A pool without members owns nothing: whatever is left (units of rounding) is not
            # the new member's to take.
            for a, u in sorted(held.items()):
                if u < 0:
                    raise PoolError(f"pool {pool_id} has no members and owes {-u} units of {a}: adjust it first")
                entries += transfer(Flow.ROUNDING, a, u, pool(pool_id), ROUNDING)
        else:
            if any(u < 0 for u in held.values()):
                raise PoolError(f"pool {pool_id} owes money ({held}): no mint until it is adjusted")
            pool_value = t.value(held, mid)
            if pool_value <= 0:
                raise PoolError(f"pool {pool_id} has shares but no value at mid {mid}: no mint")
            shares = floor(total * order_value / pool_value)
        if shares <= 0:
            raise PoolError(f"order {order_id} is too small for a share of pool {pool_id}")
        for a in t.assets:
            entries += transfer(Flow.MINT, a, amounts.get(a, 0), user_order(order_id), pool(pool_id))
        self.ledger.post(tx, key, entries, ref=order_id, detail={
            "pool": pool_id, "tranche": tranche, "shares": str(shares), "value": _text(order_value), "mid": _text(mid)})
        tx.execute("INSERT INTO pool_shares (order_id, mint_id, pool_id, shares, value_at_mint, mid, minted_ns) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (order_id, mint_id, pool_id, str(shares), _text(order_value), _text(mid), time.time_ns()))
        return Minted(order_id, mint_id, pool_id, shares, order_value, mid, amounts)

    # --- burn ---------------------------------------------------------------------------------

    def burn(self, tx: Transaction, order_id: str, mid: Fraction) -> Burned:
        """Burns all of the order's shares inside `tx`, paying its part of each asset into the
        order's claim, less the bot's share of the gain. Idempotent by order id."""
        row = self._burn_row(tx, order_id)
        if row is not None:
            return self._burned_from(row, tx)
        pid = self.pool_of(order_id, tx)
        if pid is None:
            raise PoolError(f"order {order_id} holds no shares")
        if not isinstance(mid, Fraction) or mid <= 0:
            raise PoolError(f"burn of {order_id}: the mid must be a positive Fraction, got {mid!r}")
        t = self.term(pid)
        s, value_at_mint = self.shares_of(order_id, tx)
        total = self.total_shares(pid, tx)
        held = self.holdings(pid, tx)
        if any(u < 0 for u in held.values()):
            raise PoolError(f"pool {pid} owes money ({held}): no burn until it is adjusted")
        ent = {a: Fraction(held.get(a, 0) * s, total) for a in t.assets}
        value_now = t.value(ent, mid)
        gain = value_now - value_at_mint
        share = t.bot_share * gain / value_now if gain > 0 and value_now > 0 else Fraction(0)
        entries: list[Entry] = []
        to_order: dict[str, int] = {}
        to_bot: dict[str, int] = {}
        to_rounding: dict[str, int] = {}
        for a in t.assets:
            cut = ent[a] * share
            whole, mine, bots = floor(ent[a]), floor(ent[a] - cut), floor(cut)
            rest = whole - mine - bots  # 0 or 1: the two floors lost at most one unit between them
            to_order[a], to_bot[a], to_rounding[a] = mine, bots, rest
            entries += transfer(Flow.BURN, a, mine, pool(pid), user_order(order_id))
            entries += transfer(Flow.BOT_SHARE, a, bots, pool(pid), BOT_SHARE)
            entries += transfer(Flow.ROUNDING, a, rest, pool(pid), ROUNDING)
        detail = {"pool": pid, "shares": str(s), "pool_shares": str(total), "value_at_mint": _text(value_at_mint),
                  "value_now": _text(value_now), "mid": _text(mid)}
        if any(e.units for e in entries):
            self.ledger.post(tx, tx_key(Cause.BURN, order_id), entries, ref=order_id, detail=detail)
        tx.execute("INSERT INTO pool_burns (order_id, pool_id, shares, pool_shares, value_at_mint, value_now, mid, burned_ns) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (order_id, pid, str(s), str(total), _text(value_at_mint), _text(value_now), _text(mid), time.time_ns()))
        return Burned(order_id, pid, s, total, value_at_mint, value_now, mid, to_order, to_bot, to_rounding)

    # --- internals ----------------------------------------------------------------------------

    @staticmethod
    def _burn_row(q: Query, order_id: str) -> Row | None:
        rows = q.query("SELECT order_id, pool_id, shares, pool_shares, value_at_mint, value_now, mid FROM pool_burns "
                       "WHERE order_id = ?", (order_id,))
        return rows[0] if rows else None

    def _burned_from(self, row: Row, q: Query | None = None) -> Burned:
        order_id, pid, s, total, vm, vn, mid = row
        assets = self.term(pid).assets if pid in self.terms else ()
        out: dict[Flow, dict[str, int]] = {f: dict.fromkeys(assets, 0) for f in (Flow.BURN, Flow.BOT_SHARE, Flow.ROUNDING)}
        for e in self._entries(q or self.store, tx_key(Cause.BURN, order_id)):
            if e.account == pool(pid) and e.flow in out:
                out[e.flow][e.asset] = out[e.flow].get(e.asset, 0) + e.units
        return Burned(order_id, pid, int(s), int(total), _fraction(vm), _fraction(vn), _fraction(mid),
                      out[Flow.BURN], out[Flow.BOT_SHARE], out[Flow.ROUNDING])

    @staticmethod
    def _entries(q: Query, key: str) -> list[Entry]:
        rows = q.query("SELECT account, asset, units, flow FROM ledger_entries WHERE tx_key = ? ORDER BY seq", (key,))
        return [Entry(Account.parse(a), asset, u, Flow(f)) for a, asset, u, f in rows]


# --- the PoolBook the user-order worker drives ------------------------------------------------------

class PoolMarkets(Protocol):
    """What `Pools` needs from the pools' runtime (`mixmaker.users.pool_runtime.PoolRuntime`)."""

    def mid(self, pool_id: str) -> Fraction | None: ...

    async def release(self, order_id: str) -> bool: ...


def terms_from_catalog(catalog: Catalog) -> list[PoolTerms]:
    """Every pool of a `mixmaker.users.catalog.Catalog`, with the catalog's bot share."""
    bot_share = catalog.limits.bot_share
    return [PoolTerms(p.pool_id, p.market.base, p.market.quote, bot_share) for p in catalog.pools]


class Pools:
    """`mixmaker.users.pools_api.PoolBook`: the share book plus the runtime that values pools at
    the synced mid and frees leaving members' parts. `markets` maps each exchange account (the
    pool id's first part) to its runtime."""

    def __init__(self, book: PoolLedger, markets: Mapping[str, PoolMarkets]) -> None:
        self.book = book
        self.markets = dict(markets)

    def _market(self, pool_id: str) -> PoolMarkets | None:
        return self.markets.get(pool_id.partition(":")[0])

    def _mid(self, pool_id: str) -> Fraction:
        self.book.term(pool_id)
        m = self._market(pool_id)
        mid = m.mid(pool_id) if m is not None else None
        if mid is None:
            raise PoolNotReadyError(f"pool {pool_id} cannot be valued now: no synced book (or its runtime is not running)")
        return mid

    def ready(self, pool_id: str) -> bool:
        try:
            self._mid(pool_id)
        except (PoolNotReadyError, PoolError):
            return False
        return True

    def mint(self, tx: Transaction, order_id: str, pool_id: str, amounts: Mapping[str, int], *, tranche: int = 0) -> int:
        done = tx.query("SELECT shares FROM pool_shares WHERE order_id = ? AND mint_id = ?", (order_id, str(tranche)))
        if done:
            return int(done[0][0])  # repeated after a crash: the same shares, whatever the mid is now
        return self.book.mint(tx, order_id, pool_id, self._mid(pool_id), amounts, tranche=tranche).shares

    async def release(self, order_id: str) -> bool:
        pid = self.book.pool_of(order_id)
        if pid is None:
            return True
        m = self._market(pid)
        if m is None:
            return False  # its runtime is not running here: nothing can be freed yet
        return await m.release(order_id)

    def burn(self, tx: Transaction, order_id: str) -> dict[str, int]:
        pid = self.book.pool_of(order_id, tx)
        if pid is None:
            return {}
        done = self.book.burned(order_id, tx)
        if done is not None:
            return dict(done.to_order)  # repeated after a crash: what it credited, whatever the mid is now
        return dict(self.book.burn(tx, order_id, self._mid(pid)).to_order)

    def shares(self, order_id: str) -> int:
        if self.book.burned(order_id) is not None:
            return 0
        return self.book.shares_of(order_id)[0]

    def member(self, order_id: str) -> MemberFigures | None:
        pid = self.book.pool_of(order_id)
        m = self._market(pid) if pid is not None else None
        return self.book.member(order_id, m.mid(pid) if m is not None and pid is not None else None)
