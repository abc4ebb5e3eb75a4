"""The ledger: double-entry, append-only, exact integer units per asset, one idempotency key per
transaction. Balances are derived from the entries (kept summed in `ledger_balances` inside the
same store transaction, and re-derivable by `verify()`).

`post()` writes inside the caller's store transaction, so money and the state it depends on (a
snapshot's cursor, a user order's state, a share mint) commit together or not at all. Posting a
key twice with the same entries changes nothing; with other entries it is a `LedgerConflictError`.

The SQL is the subset PostgreSQL runs unchanged (BIGINT units, `ON CONFLICT`, `?` placeholders
that the store translates).
"""

from __future__ import annotations

import enum
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from mixmaker.funds.accounts import FEES, Account, AccountKind, Entry, Flow, Side
from mixmaker.funds.errors import LedgerConflictError, LedgerError, OverdraftError, UnbalancedError
from mixmaker.money import MAX_DECIMALS, format_units
from mixmaker.store import Store
from mixmaker.store.base import Transaction

MIGRATIONS = [
    "CREATE TABLE ledger_assets (asset TEXT PRIMARY KEY, decimals INTEGER NOT NULL)",
    """CREATE TABLE ledger_transactions (
        tx_key TEXT PRIMARY KEY, cause TEXT NOT NULL, ref TEXT NOT NULL, created_ns BIGINT NOT NULL,
        detail TEXT NOT NULL)""",
    """CREATE TABLE ledger_entries (
        tx_key TEXT NOT NULL REFERENCES ledger_transactions (tx_key), seq INTEGER NOT NULL,
        account TEXT NOT NULL, asset TEXT NOT NULL, units BIGINT NOT NULL, flow TEXT NOT NULL,
        PRIMARY KEY (tx_key, seq))""",
    "CREATE INDEX ledger_entries_by_account ON ledger_entries (account, asset)",
    "CREATE INDEX ledger_transactions_by_ref ON ledger_transactions (ref)",
    """CREATE TABLE ledger_balances (
        account TEXT NOT NULL, asset TEXT NOT NULL, units BIGINT NOT NULL, PRIMARY KEY (account, asset))""",
]


# What one balance or entry can hold: a BIGINT (i64) in SQLite and PostgreSQL. SQLite turns an
# overflowing `+` into a REAL and fails a SUM that passes it, so the ledger checks the first and
# never sums raw units in SQL (see `_SUM`).
MAX_UNITS = 2**63 - 1
# SUM over units is taken as SUM(units / 2**32) and SUM(units % 2**32) (both truncate toward zero
# in SQLite and PostgreSQL, so units = high * 2**32 + low exactly): neither half can overflow.
_SPLIT = 2**32
_SUM = f"SUM(units / {_SPLIT}), SUM(units % {_SPLIT})"


def _joined(high: int | Decimal, low: int | Decimal) -> int:
    """A sum the database returned in two halves (each within 64 bits), joined exactly."""
    return int(high) * _SPLIT + int(low)


class Cause(enum.Enum):
    """What a transaction records; with the cause's own id it makes the idempotency key."""

    PAYMENT = "payment"  # snapshot id
    REFUND = "refund"  # snapshot id
    UNKNOWN_DEPOSIT = "unknown-deposit"  # snapshot id
    DUST = "dust"  # snapshot id or user order id
    MOVE_SENT = "move-sent"  # move id
    MOVE_ARRIVED = "move-arrived"  # move id
    MOVE_REVERSED = "move-reversed"  # move id (the venue or the network refused it)
    MOVE_FEE = "move-fee"  # move id: the network's or the exchange's withdrawal fee, to whoever caused the move
    MINT = "mint"  # user order id (and the payment it mints for, if several)
    FILL = "fill"  # venue account, symbol, trade id
    BURN = "burn"  # user order id
    PAYOUT = "payout"  # user order id
    ADJUSTMENT = "adjustment"  # an operator's reconciliation fix id


def tx_key(cause: Cause, *parts: str) -> str:
    """The idempotency key of a transaction: `cause:part:part`. A ':' inside a part (a venue's
    trade id, say) is escaped as %3A (and '%' as %25), so two different causes never share a key
    (`fill:a:b:c` could otherwise be ("a:b", "c") or ("a", "b:c")); ids without them read as is."""
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise LedgerError(f"a {cause.value} key needs its cause's ids, got {parts!r}")
    return ":".join((cause.value, *(p.replace("%", "%25").replace(":", "%3A") for p in parts)))


# Fills may be delivered in any order (a sell before the buy that funded it), and an operator's
# adjustment fixes a known difference: neither is held to "no account overdrawn".
_UNCHECKED = frozenset({Flow.TRADE, Flow.FEE_TRADING, Flow.ADJUSTMENT})


@dataclass(frozen=True, slots=True)
class Posted:
    key: str
    cause: str
    ref: str
    created_ns: int
    entries: tuple[Entry, ...]
    detail: Mapping[str, object]


class Ledger:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate("ledger", MIGRATIONS)
        self._decimals: dict[str, int] = dict(store.query("SELECT asset, decimals FROM ledger_assets"))

    # --- assets ---------------------------------------------------------------------------

    def register_asset(self, asset: str, decimals: int, *, tx: Transaction | None = None) -> None:
        """Declares an asset and its scale (units are `10**-decimals`). A scale never changes.

        With `tx`, inside the caller's store transaction (an asset first met in a snapshot is
        declared together with its first posting)."""
        if not asset or not isinstance(asset, str) or ":" in asset:
            raise LedgerError(f"bad asset symbol {asset!r}")
        if type(decimals) is not int or not 0 <= decimals <= MAX_DECIMALS:
            raise LedgerError(f"asset {asset}: decimals must be 0..{MAX_DECIMALS}, got {decimals!r}")
        known = self._decimals.get(asset)
        if tx is not None:
            # Always written in `tx` (cheap, idempotent): if an earlier `tx` rolled back, the cache
            # knows the asset but the table may not.
            tx.execute("INSERT INTO ledger_assets (asset, decimals) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       (asset, decimals))
            known = tx.query("SELECT decimals FROM ledger_assets WHERE asset = ?", (asset,))[0][0]
            self._decimals[asset] = known
        elif known is None:
            with self.store.transaction() as wtx:
                wtx.execute("INSERT INTO ledger_assets (asset, decimals) VALUES (?, ?) ON CONFLICT DO NOTHING",
                            (asset, decimals))
            known = self.store.query("SELECT decimals FROM ledger_assets WHERE asset = ?", (asset,))[0][0]
            self._decimals[asset] = known
        if known != decimals:
            raise LedgerError(f"asset {asset} is kept at {known} decimals in this ledger, not {decimals}")

    def decimals(self, asset: str) -> int:
        try:
            return self._decimals[asset]
        except KeyError:
            raise LedgerError(f"asset {asset!r} is not registered in the ledger") from None

    def assets(self) -> dict[str, int]:
        return dict(self._decimals)

    def format(self, asset: str, units: int) -> str:
        return format_units(units, self.decimals(asset))

    # --- writing --------------------------------------------------------------------------

    def post(self, tx: Transaction, key: str, entries: Iterable[Entry], *, ref: str = "",
             detail: Mapping[str, object] | None = None) -> bool:
        """Records one transaction inside the caller's store transaction `tx`.

        Returns True if it was new, False if `key` was already posted with the same entries.
        Raises `UnbalancedError` if an asset does not sum to zero, `LedgerConflictError` if the key
        was posted with other entries, `OverdraftError` if a holding would go below zero or a claim
        above it (fills and adjustments excepted). On any error the caller's transaction must not
        commit (let the exception leave the `with store.transaction()` block)."""
        lines = tuple(e for e in entries if e.units != 0)
        self._validate(key, lines)
        cause = key.partition(":")[0]
        inserted = tx.execute(
            "INSERT INTO ledger_transactions (tx_key, cause, ref, created_ns, detail) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (key, cause, ref, time.time_ns(), json.dumps(dict(detail or {}), sort_keys=True, default=str)),
        )
        if not inserted:
            have = _multiset(self._entries(tx, key))
            if have != _multiset(lines):
                raise LedgerConflictError(f"transaction {key!r} was already posted with other entries")
            return False
        for seq, e in enumerate(lines):
            tx.execute("INSERT INTO ledger_entries (tx_key, seq, account, asset, units, flow) VALUES (?, ?, ?, ?, ?, ?)",
                       (key, seq, e.account.name, e.asset, e.units, e.flow.value))
            tx.execute(
                "INSERT INTO ledger_balances (account, asset, units) VALUES (?, ?, ?) ON CONFLICT (account, asset) "
                "DO UPDATE SET units = ledger_balances.units + excluded.units",
                (e.account.name, e.asset, e.units),
            )
        self._check_overdraft(tx, key, lines)
        return True

    def post_now(self, key: str, entries: Iterable[Entry], *, ref: str = "",
                 detail: Mapping[str, object] | None = None) -> bool:
        """`post` in a store transaction of its own."""
        with self.store.transaction() as tx:
            return self.post(tx, key, entries, ref=ref, detail=detail)

    def _validate(self, key: str, lines: Sequence[Entry]) -> None:
        if not isinstance(key, str) or ":" not in key:
            raise LedgerError(f"an idempotency key is 'cause:id', got {key!r}")
        if not lines:
            raise LedgerError(f"transaction {key!r} moves nothing")
        sums: Counter[str] = Counter()
        for e in lines:
            if not isinstance(e, Entry):
                raise LedgerError(f"transaction {key!r}: not an Entry: {e!r}")
            self.decimals(e.asset)
            if not -MAX_UNITS <= e.units <= MAX_UNITS:
                raise LedgerError(f"transaction {key!r}: {e.units} units of {e.asset} is more than the ledger holds")
            sums[e.asset] += e.units
        off = {a: s for a, s in sums.items() if s}
        if off:
            raise UnbalancedError(f"transaction {key!r} does not balance: {off}")

    def _check_overdraft(self, tx: Transaction, key: str, lines: Sequence[Entry]) -> None:
        for e in lines:
            units = tx.query("SELECT units FROM ledger_balances WHERE account = ? AND asset = ?",
                             (e.account.name, e.asset))[0][0]
            if type(units) is not int:  # SQLite made the overflowing sum a REAL
                raise LedgerError(f"transaction {key!r}: {e.account} would hold more {e.asset} than the ledger "
                                  f"holds ({MAX_UNITS} units)")
            if e.flow in _UNCHECKED:
                continue
            leaving = e.units < 0 if e.account.side is Side.HOLDING else e.units > 0
            if not leaving:
                continue
            if (units < 0) if e.account.side is Side.HOLDING else (units > 0):
                have = -units if e.account.side is Side.CLAIM else units
                raise OverdraftError(
                    f"transaction {key!r} overdraws {e.account} in {e.asset}: "
                    f"it would hold {self.format(e.asset, have)}"
                )

    # --- reading --------------------------------------------------------------------------

    def balance(self, account: Account, asset: str, *, tx: Transaction | None = None) -> int:
        """The signed balance (holdings positive, claims negative); with `tx`, as that store
        transaction sees it."""
        rows = (tx or self.store).query("SELECT units FROM ledger_balances WHERE account = ? AND asset = ?",
                                        (account.name, asset))
        return rows[0][0] if rows else 0

    def owed(self, account: Account, asset: str) -> int:
        """What a claim is owed (or a holding holds), as a positive number when all is well."""
        b = self.balance(account, asset)
        return -b if account.side is Side.CLAIM else b

    def balances(self, kind: AccountKind | None = None, *, nonzero: bool = True) -> dict[tuple[Account, str], int]:
        """Signed balances by (account, asset), optionally of one kind of account."""
        sql = "SELECT account, asset, units FROM ledger_balances"
        params: tuple[object, ...] = ()
        if kind is not None:
            sql += " WHERE account LIKE ?"
            params = (f"{kind.value}:%",)
        out = {(Account.parse(a), asset): u for a, asset, u in self.store.query(sql + " ORDER BY account, asset", params)}
        return {k: v for k, v in out.items() if v or not nonzero}

    def holdings_of(self, account: Account, *, tx: Transaction | Store | None = None) -> dict[str, int]:
        """What an account holds or is owed, per asset, as positive numbers; with `tx`, as that
        store transaction (or that store) sees it."""
        rows = (tx or self.store).query("SELECT asset, units FROM ledger_balances WHERE account = ? ORDER BY asset",
                                        (account.name,))
        sign = -1 if account.side is Side.CLAIM else 1
        return {a: sign * u for a, u in rows if u}

    def flows(self, asset: str | None = None) -> dict[tuple[Flow, str], int]:
        """What each flow brought into the system's claims, per asset (payments positive; refunds,
        payouts and fees negative; the trading result either way; internal flows sum to zero)."""
        sql = f"SELECT flow, asset, account, {_SUM} FROM ledger_entries"
        params: tuple[object, ...] = ()
        if asset is not None:
            sql += " WHERE asset = ?"
            params = (asset,)
        out: Counter[tuple[Flow, str]] = Counter()
        for flow, a, account, high, low in self.store.query(sql + " GROUP BY flow, asset, account", params):
            if Account.parse(account).side is Side.CLAIM:
                out[(Flow(flow), a)] -= _joined(high, low)
        return dict(out)

    def fees(self, asset: str) -> dict[Flow, int]:
        """Fees paid, by kind, as positive numbers."""
        f = self.flows(asset)
        return {kind: -f.get((kind, asset), 0) for kind in FEES}

    def transaction(self, key: str) -> Posted | None:
        rows = self.store.query("SELECT tx_key, cause, ref, created_ns, detail FROM ledger_transactions WHERE tx_key = ?",
                                (key,))
        if not rows:
            return None
        k, cause, ref, created, detail = rows[0]
        return Posted(k, cause, ref, created, tuple(self._entries(self.store, k)), json.loads(detail))

    def transactions(self, *, ref: str | None = None, account: Account | None = None) -> list[Posted]:
        """Transactions about one reference (a user order, a pool, a move) or touching one account."""
        if ref is not None:
            keys = [r[0] for r in self.store.query(
                "SELECT tx_key FROM ledger_transactions WHERE ref = ? ORDER BY created_ns, tx_key", (ref,))]
        elif account is not None:
            keys = [r[0] for r in self.store.query(
                "SELECT DISTINCT e.tx_key, t.created_ns FROM ledger_entries e JOIN ledger_transactions t "
                "ON t.tx_key = e.tx_key WHERE e.account = ? ORDER BY t.created_ns, e.tx_key", (account.name,))]
        else:
            raise LedgerError("transactions() needs a ref or an account")
        return [p for p in (self.transaction(k) for k in keys) if p is not None]

    def verify(self) -> list[str]:
        """Problems found, none when all is well: every asset sums to zero, and every kept balance
        equals the sum of its entries."""
        problems = []
        derived = {(a, s): _joined(high, low) for a, s, high, low in self.store.query(
            f"SELECT account, asset, {_SUM} FROM ledger_entries GROUP BY account, asset")}
        kept = {(a, s): u for a, s, u in self.store.query("SELECT account, asset, units FROM ledger_balances")}
        for k in sorted(set(derived) | set(kept)):
            if derived.get(k, 0) != kept.get(k, 0):
                problems.append(f"{k[0]} {k[1]}: kept balance {kept.get(k, 0)} != sum of entries {derived.get(k, 0)}")
        per_asset: Counter[str] = Counter()
        for (_, asset), units in derived.items():
            per_asset[asset] += units
        for asset, total in sorted(per_asset.items()):
            if total:
                problems.append(f"{asset}: accounts sum to {total}, not 0 (where the money is != whose it is)")
        # Only the groups whose halves are not both zero come back; their exact sums decide.
        suspect = self.store.query(
            f"SELECT tx_key, asset, {_SUM} FROM ledger_entries GROUP BY tx_key, asset "
            f"HAVING SUM(units / {_SPLIT}) <> 0 OR SUM(units % {_SPLIT}) <> 0")
        problems += [f"transaction {k} does not balance in {a}: {_joined(h, lo)}" for k, a, h, lo in suspect
                     if _joined(h, lo)]
        return problems

    @staticmethod
    def _entries(q: Transaction | Store, key: str) -> list[Entry]:
        rows = q.query("SELECT account, asset, units, flow FROM ledger_entries WHERE tx_key = ? ORDER BY seq", (key,))
        return [Entry(Account.parse(a), asset, u, Flow(f)) for a, asset, u, f in rows]


def _multiset(entries: Iterable[Entry]) -> Counter[tuple[str, str, int, str]]:
    return Counter((e.account.name, e.asset, e.units, e.flow.value) for e in entries)
