"""The ledger's vocabulary: accounts (where the money is, whose it is) and flows (why it moved).

Every account is on one side. HOLDING accounts say where money is (the Mixin wallet, an exchange
account, a move in transit); their balances are positive. CLAIM accounts say whose it is (a user
order, a pool, the bot's share, rounding, unclaimed); their balances are negative, because every
transaction sums to zero per asset. So "where the money is equals whose it is" is the same fact as
"all balances of an asset sum to zero", and it holds after every transaction.

Each entry also names its `Flow`. Money that crosses the system's edge (a payment in, a payout or a
fee out, a trade) moves a holding and a claim together; money moving inside (minting shares, a move
in transit, the bot's share) moves two holdings or two claims. Totals per flow (payments, refunds,
payouts, fees by kind, the trading result) are sums of the claim-side entries of that flow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mixmaker.funds.errors import LedgerError


class Side(enum.Enum):
    HOLDING = "holding"
    CLAIM = "claim"


class AccountKind(enum.Enum):
    """The prefix of an account's name, and the side it is on."""

    WALLET = "wallet"  # the bot's Mixin wallet (id: "mixin")
    EXCHANGE = "exchange"  # one exchange account (id: its configured name, e.g. "binance-main")
    TRANSIT = "transit"  # one move between Mixin and an exchange (id: the move id)
    USER_ORDER = "order"  # one user order's claim not in a pool (id: the user order id)
    REFUND = "refund"  # a payment owed back to its payer (id: the snapshot id)
    POOL = "pool"  # one pool's claim: its members' money (id: the pool id)
    BOT = "bot"  # the bot's own money: its share of gains (id "share"), its network-fee float (id "fees")
    ROUNDING = "rounding"  # whole units left over by integer division (id: "")
    UNCLAIMED = "unclaimed"  # money nobody can be paid: dust, unknown deposits (id: a reason)

    @property
    def side(self) -> Side:
        return Side.HOLDING if self in _HOLDING else Side.CLAIM


_HOLDING = frozenset({AccountKind.WALLET, AccountKind.EXCHANGE, AccountKind.TRANSIT})


@dataclass(frozen=True, slots=True, order=True)
class Account:
    """An account: a kind and an id, written `kind:id` in the store (`pool:binance:BTC/USDT:tight`)."""

    kind: AccountKind
    id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, AccountKind):
            raise LedgerError(f"account kind must be an AccountKind, got {self.kind!r}")
        if not isinstance(self.id, str) or any(c in self.id for c in "\n\r\t"):
            raise LedgerError(f"bad account id {self.id!r}")

    @property
    def side(self) -> Side:
        return self.kind.side

    @property
    def name(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, name: str) -> Account:
        kind, sep, ident = name.partition(":")
        try:
            return cls(AccountKind(kind), ident)
        except ValueError:
            raise LedgerError(f"not an account name: {name!r}") from None

    def __str__(self) -> str:
        return self.name


WALLET = Account(AccountKind.WALLET, "mixin")
BOT_SHARE = Account(AccountKind.BOT, "share")
# The operator's float for network fees charged in another asset than the one moved (an ERC-20
# token's Mixin withdrawal fee is in ETH): no user order holds that asset, so the bot pays.
BOT_FEES = Account(AccountKind.BOT, "fees")
ROUNDING = Account(AccountKind.ROUNDING)


def exchange(name: str) -> Account:
    return Account(AccountKind.EXCHANGE, name)


def transit(move_id: str) -> Account:
    return Account(AccountKind.TRANSIT, move_id)


def user_order(order_id: str) -> Account:
    return Account(AccountKind.USER_ORDER, order_id)


def refund(snapshot_id: str) -> Account:
    return Account(AccountKind.REFUND, snapshot_id)


def pool(pool_id: str) -> Account:
    return Account(AccountKind.POOL, pool_id)


def unclaimed(reason: str) -> Account:
    return Account(AccountKind.UNCLAIMED, reason)


class Flow(enum.Enum):
    """Why an entry moved money. `crosses` flows change what the system holds; the others move
    money between two holdings or between two claims."""

    PAYMENT = "payment"  # a user's payment in (wallet +, user order -)
    REFUND = "refund"  # a payment sent back (wallet -, user order +)
    PAYOUT = "payout"  # a stopped order paid back (wallet -, user order +)
    TRADE = "trade"  # a fill's base and quote (exchange and pool, both assets)
    FEE_TRADING = "fee_trading"  # the exchange's fee on a fill
    FEE_NETWORK = "fee_network"  # Mixin's withdrawal (network) fee
    FEE_WITHDRAWAL = "fee_withdrawal"  # an exchange's withdrawal fee
    UNKNOWN_DEPOSIT = "unknown_deposit"  # money that arrived with no known cause (wallet +, unclaimed -)
    MINT = "mint"  # shares minted: a user order's money into its pool
    BURN = "burn"  # shares burned: a pool's money back to the user order
    BOT_SHARE = "bot_share"  # the bot's share of a member's gain
    ROUNDING = "rounding"  # units left by integer division
    DUST = "dust"  # too small to send back: kept in unclaimed, reported
    MOVE = "move"  # funds between Mixin and an exchange (wallet/exchange <-> transit)
    ADJUSTMENT = "adjustment"  # an operator's correction after reconciliation, with its reason

    @property
    def crosses(self) -> bool:
        return self in _CROSSING


_CROSSING = frozenset(
    {
        Flow.PAYMENT,
        Flow.REFUND,
        Flow.PAYOUT,
        Flow.TRADE,
        Flow.FEE_TRADING,
        Flow.FEE_NETWORK,
        Flow.FEE_WITHDRAWAL,
        Flow.UNKNOWN_DEPOSIT,
        Flow.ADJUSTMENT,
    }
)

FEES = (Flow.FEE_TRADING, Flow.FEE_NETWORK, Flow.FEE_WITHDRAWAL)


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a transaction: `units` of `asset` into (+) or out of (-) `account`."""

    account: Account
    asset: str
    units: int
    flow: Flow

    def __post_init__(self) -> None:
        if type(self.units) is not int:
            raise LedgerError(f"units are exact integers, got {type(self.units).__name__} {self.units!r}")
        if not isinstance(self.flow, Flow):
            raise LedgerError(f"flow must be a Flow, got {self.flow!r}")
        if not isinstance(self.account, Account):
            raise LedgerError(f"account must be an Account, got {self.account!r}")
        if not self.asset or not isinstance(self.asset, str):
            raise LedgerError(f"bad asset {self.asset!r}")


def transfer(flow: Flow, asset: str, units: int, source: Account, dest: Account) -> tuple[Entry, Entry]:
    """`units` of `asset` go from `source` to `dest`, two accounts on the same side: from one holding
    to another (wallet -> transit), or from one owner to another (user order -> pool)."""
    if source.side is not dest.side:
        raise LedgerError(f"a transfer stays on one side: {source} and {dest} are not; use inflow/outflow")
    sign = 1 if source.side is Side.HOLDING else -1
    return Entry(source, asset, -sign * units, flow), Entry(dest, asset, sign * units, flow)


def inflow(flow: Flow, asset: str, units: int, holding: Account, claim: Account) -> tuple[Entry, Entry]:
    """Money comes in: `holding` holds `units` more, and they are `claim`'s."""
    _check_sides(holding, claim)
    return Entry(holding, asset, units, flow), Entry(claim, asset, -units, flow)


def outflow(flow: Flow, asset: str, units: int, holding: Account, claim: Account) -> tuple[Entry, Entry]:
    """Money leaves: `holding` holds `units` less, and `claim` is owed that much less."""
    _check_sides(holding, claim)
    return Entry(holding, asset, -units, flow), Entry(claim, asset, units, flow)


def _check_sides(holding: Account, claim: Account) -> None:
    if holding.side is not Side.HOLDING or claim.side is not Side.CLAIM:
        raise LedgerError(f"{holding} must be a holding and {claim} a claim")
