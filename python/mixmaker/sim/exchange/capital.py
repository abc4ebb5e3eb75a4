"""Deposits and withdrawals of the simulated exchange (Binance's SAPI `capital` endpoints).

Withdrawals, as on Binance: `withdraw/apply` debits `amount` from the account; the network fee
(`transactionFee`) comes out of it, so `amount - fee` goes on chain and the history's `amount`
is that net figure. Status 4 (processing) until the withdrawal is on chain, then 6 (completed)
with its `txId`; a failed (5) or rejected (3) one returns the whole debit to the account.
Without an external chain a withdrawal completes by itself after `withdraw_delay_ms`; with one
(mixmaker.sim.chain) the chain decides when, and whether.

Networks (`config/getall`, what ccxt's `fetch_currencies` reads): each coin moves on its default
network (its own name, USDT on ETH), plus any network switched on for it; `set_network` turns a
network's deposits or withdrawals off (`depositEnable`/`withdrawEnable` false), and a withdrawal
on a network the coin does not have, or whose withdrawals are off, is refused (-4018/-4019).

Deposits: an address per account and network (`deposit/address`); a chain transfer to it shows
in `deposit/hisrec` as pending (status 0, `confirmTimes` "k/N") and is credited once, at N
confirmations (status 1), however often the chain reports it. A deposit flagged `echo` is
listed twice: the duplicated notification a client must not credit twice.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mixmaker.sim import networks
from mixmaker.sim.exchange import wire
from mixmaker.sim.exchange.accounts import Accounts
from mixmaker.sim.exchange.errors import BadParameter, BadPrecision, NetworkUnknown, UnknownAsset, WithdrawSuspended
from mixmaker.sim.exchange.params import decimal as _decimal
from mixmaker.sim.exchange.params import integer as _int

PRECISION = Decimal("0.00000001")  # withdrawIntegerMultiple of every simulated network
_ADDRESS_REGEX = {"BTC": "^(bc1|[13])[a-zA-HJ-NP-Z0-9]{25,62}$", "ETH": "^(0x)[0-9A-Fa-f]{40}$",
                  "TRX": "^T[1-9A-HJ-NP-Za-km-z]{33}$"}
BalanceMoved = Callable[[str, str, Decimal, int], None]


class WithdrawStatus(enum.IntEnum):
    EMAIL_SENT = 0
    CANCELLED = 1
    AWAITING_APPROVAL = 2
    REJECTED = 3
    PROCESSING = 4
    FAILURE = 5
    COMPLETED = 6


class DepositStatus(enum.IntEnum):
    PENDING = 0
    SUCCESS = 1
    CREDITED_CANNOT_WITHDRAW = 6
    WRONG_DEPOSIT = 7
    WAITING_USER_CONFIRM = 8


@dataclass
class Transfer:
    """A deposit or withdrawal, as the SAPI history endpoints report it. `amount` is what went
    (or goes) on chain; a withdrawal debited `amount + fee`."""

    id: str
    account: str
    coin: str
    amount: Decimal
    network: str
    address: str
    tx_id: str
    time_ms: int
    fee: Decimal = Decimal(0)
    client_id: str = ""  # a withdrawal's `withdrawOrderId`
    tag: str = ""
    status: int = 0  # WithdrawStatus or DepositStatus
    complete_ms: int = 0
    confirmations: int = 0
    required: int = 0
    info: str = ""
    echo: bool = False  # a deposit listed twice (duplicated notification)


class Capital:
    def __init__(self, accounts: Accounts, assets: Callable[[], set[str]], clock: Callable[[], int],
                 balance_moved: BalanceMoved) -> None:
        self.accounts = accounts
        self._assets = assets
        self.clock = clock
        self._balance_moved = balance_moved
        self.withdraw_delay_ms = 0  # without an external chain: "processing" this long, then "completed"
        self.withdraw_fees: dict[str, Decimal] = {}  # coin -> network fee of a withdrawal
        self.default_networks: dict[str, str] = {"USDT": "ETH"}  # coin -> network when none is asked for
        # (coin, network) -> (deposits on, withdrawals on): networks besides the default, or switched off
        self.network_switches: dict[tuple[str, str], tuple[bool, bool]] = {}
        self.external_chain = False
        self.deposits: list[Transfer] = []
        self.withdrawals: list[Transfer] = []
        self.addresses: dict[str, tuple[str, str]] = {}  # deposit address -> (account, network)
        self.version = 0

    def network(self, coin: str, asked: str | None = None) -> str:
        return asked or self.default_networks.get(coin, coin)

    def networks_of(self, coin: str) -> dict[str, tuple[bool, bool]]:
        """The networks `coin` moves on: network -> (deposits on, withdrawals on)."""
        out = {self.network(coin): (True, True)}
        out.update({net: onoff for (c, net), onoff in self.network_switches.items() if c == coin})
        return out

    def set_network(self, coin: str, network: str, *, deposit: bool = True, withdraw: bool = True) -> None:
        """Adds a network to `coin`, or switches its deposits/withdrawals off or on."""
        self.network_switches[(coin, network)] = (deposit, withdraw)
        self.version += 1

    def config(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """`GET /sapi/v1/capital/config/getall`: every coin the venue lists, with its networks."""
        rows = []
        for coin in sorted(self._assets()):
            free, locked = self.accounts.free(account, coin), self.accounts.locked(account, coin)
            nets = self.networks_of(coin)
            fee = self.withdraw_fees.get(coin, Decimal(0))
            rows.append({
                "coin": coin, "name": coin, "depositAllEnable": any(d for d, _ in nets.values()),
                "withdrawAllEnable": any(w for _, w in nets.values()), "free": wire.amount(free),
                "locked": wire.amount(locked), "freeze": "0", "withdrawing": "0", "ipoing": "0", "ipoable": "0",
                "storage": "0", "isLegalMoney": False, "trading": True,
                "networkList": [{
                    "network": net, "coin": coin, "withdrawIntegerMultiple": wire.amount(PRECISION),
                    "isDefault": net == self.network(coin), "depositEnable": dep, "withdrawEnable": wd,
                    "depositDesc": "" if dep else "Deposit suspended", "withdrawDesc": "" if wd else "Withdraw suspended",
                    "specialTips": "", "name": net, "resetAddressStatus": False, "addressRegex": _ADDRESS_REGEX.get(net, ""),
                    "addressRule": "", "memoRegex": "", "withdrawFee": wire.amount(fee),
                    "withdrawMin": wire.amount(fee + PRECISION), "withdrawMax": "9999999999.99999999", "minConfirm": 1,
                    "unLockConfirm": 0, "sameAddress": False, "estimatedArrivalTime": 1, "busy": False,
                } for net, (dep, wd) in sorted(nets.items())],
            })
        return rows

    def coin(self, params: Mapping[str, str]) -> str:
        coin = params.get("coin")
        if not coin:
            raise BadParameter("Mandatory parameter 'coin' was not sent, was empty/null, or malformed.")
        if coin not in self._assets():
            raise UnknownAsset()
        return coin

    # ---- deposits -------------------------------------------------------------------------------

    def address_of(self, account: str, network: str) -> str:
        address = networks.address(network, f"binance-sim:{account}:{network}")
        if address not in self.addresses:
            self.addresses[address] = (account, network)
            self.version += 1
        return address

    def deposit_address(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        coin = self.coin(params)
        network = self.network(coin, params.get("network"))
        if network not in self.networks_of(coin):
            raise NetworkUnknown(f"{coin} cannot be deposited on network {network}.")
        return {"address": self.address_of(account, network), "coin": coin, "tag": "", "url": ""}

    def deposit(self, account: str, coin: str, amount: Decimal | str, network: str | None = None) -> Transfer:
        """Credit an on-chain deposit at once (the test or operator side of funding an account)."""
        value = Decimal(amount)
        if coin not in self._assets():
            raise UnknownAsset()
        net = self.network(coin, network)
        n = len(self.deposits) + 1
        t = self._new_deposit(account, coin, value, net, self.address_of(account, net), "",
                              networks.tx_hash(net, f"binance-sim-deposit:{n}:{self.clock()}"), 1, 1)
        self._credit(t)
        return t

    def deposit_from_params(self, params: Mapping[str, str]) -> dict[str, Any]:
        """The operator's `POST /sim/deposit` (standalone runs): credit `account` with `amount` of `coin`."""
        value = _decimal(params, "amount")
        if value <= 0:
            raise BadParameter("Parameter 'amount' must be positive.")
        account = params.get("account")
        if not account:
            raise BadParameter("Mandatory parameter 'account' was not sent, was empty/null, or malformed.")
        t = self.deposit(account, self.coin(params), value, params.get("network") or None)
        return {"id": t.id, "txId": t.tx_id, "address": t.address}

    def _new_deposit(self, account: str, coin: str, amount: Decimal, network: str, address: str, tag: str, tx_id: str,
                     confirmations: int, required: int) -> Transfer:
        t = Transfer(f"dep{len(self.deposits) + 1}", account, coin, amount, network, address, tx_id, self.clock(),
                     tag=tag, status=DepositStatus.PENDING, confirmations=confirmations, required=required)
        self.deposits.append(t)
        self.version += 1
        return t

    def _credit(self, t: Transfer) -> None:
        now = self.clock()
        self.accounts.credit(t.account, t.coin, t.amount)
        t.status, t.complete_ms = DepositStatus.SUCCESS, now
        self.version += 1
        self._balance_moved(t.account, t.coin, t.amount, now)

    def deposit_history(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for t in _history(self.deposits, account, params):
            row = {
                "id": t.id, "amount": wire.amount(t.amount), "coin": t.coin, "network": t.network, "status": int(t.status),
                "address": t.address, "addressTag": t.tag, "txId": t.tx_id, "insertTime": t.time_ms,
                "transferType": 0, "confirmTimes": f"{min(t.confirmations, t.required)}/{t.required}",
                "unlockConfirm": t.required, "walletType": 0,
            }
            if t.complete_ms:
                row["completeTime"] = t.complete_ms
            rows.extend((row, dict(row)) if t.echo else (row,))
        return rows

    # ---- withdrawals ----------------------------------------------------------------------------

    def withdraw(self, account: str, params: Mapping[str, str]) -> dict[str, Any]:
        coin = self.coin(params)
        value = _decimal(params, "amount")
        address = params.get("address") or ""
        if value <= 0 or not address:
            raise BadParameter("Mandatory parameter 'amount' or 'address' was not sent, was empty/null, or malformed.")
        if value % PRECISION:
            raise BadPrecision()
        network = self.network(coin, params.get("network"))
        nets = self.networks_of(coin)
        if network not in nets:
            raise NetworkUnknown(f"{coin} cannot be withdrawn on network {network}.")
        if not nets[network][1]:
            raise WithdrawSuspended()
        fee = self.withdraw_fees.get(coin, Decimal(0))
        if value <= fee:
            raise BadParameter(f"The withdrawal amount must exceed the network fee of {wire.amount(fee)} {coin}.")
        now = self.clock()
        self.accounts.debit(account, coin, value)
        t = Transfer(f"wd{len(self.withdrawals) + 1}", account, coin, value - fee, network,
                     address, "", now, fee=fee, client_id=params.get("withdrawOrderId") or "",
                     tag=params.get("addressTag") or "", status=WithdrawStatus.PROCESSING)
        self.withdrawals.append(t)
        self.version += 1
        self._balance_moved(account, coin, -value, now)
        return {"id": t.id}

    def withdrawal_history(self, account: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        self._settle()
        return [self._withdrawal_row(t) for t in _history(self.withdrawals, account, params)]

    def _settle(self) -> None:
        """Without an external chain, a processing withdrawal completes once its delay is over."""
        if self.external_chain:
            return
        now = self.clock()
        for t in self.withdrawals:
            if t.status == WithdrawStatus.PROCESSING and now >= t.time_ms + self.withdraw_delay_ms:
                self._complete(t, networks.tx_hash(t.network, f"binance-sim-withdrawal:{t.id}:{t.time_ms}"),
                               t.time_ms + self.withdraw_delay_ms)

    def _complete(self, t: Transfer, tx_id: str, at_ms: int) -> None:
        t.status, t.tx_id, t.complete_ms = WithdrawStatus.COMPLETED, tx_id, at_ms
        self.version += 1

    @staticmethod
    def _withdrawal_row(t: Transfer) -> dict[str, Any]:
        done = t.status == WithdrawStatus.COMPLETED
        row = {
            "id": t.id, "amount": wire.amount(t.amount), "transactionFee": wire.amount(t.fee), "coin": t.coin,
            "status": int(t.status), "address": t.address, "txId": t.tx_id, "applyTime": _utc(t.time_ms),
            "network": t.network, "transferType": 0, "info": t.info, "confirmNo": 1 if done else 0, "walletType": 0,
        }
        if t.tag:
            row["addressTag"] = t.tag
        if t.client_id:
            row["withdrawOrderId"] = t.client_id
        if t.complete_ms:
            row["completeTime"] = _utc(t.complete_ms)
        return row

    # ---- the external chain (mixmaker.sim.chain) ------------------------------------------------

    def attach_chain(self) -> None:
        """From now on withdrawals wait for the chain's word (`chain_withdrawal_sent`/`_failed`)."""
        if not self.external_chain:
            self._settle()  # what completed on its own before the chain came stays completed
            self.external_chain = True
            self.version += 1

    def chain_withdrawals(self) -> list[dict[str, Any]]:
        """Withdrawals still processing: the ones the chain has to carry (or fail)."""
        return [{"id": t.id, "account": t.account, "coin": t.coin, "network": t.network, "amount": wire.amount(t.amount),
                 "address": t.address, "tag": t.tag, "time_ms": t.time_ms}
                for t in self.withdrawals if t.status == WithdrawStatus.PROCESSING]

    def _withdrawal(self, withdrawal_id: str) -> Transfer:
        found = next((t for t in self.withdrawals if t.id == withdrawal_id), None)
        if found is None:
            raise BadParameter(f"No withdrawal {withdrawal_id}.")
        return found

    def chain_withdrawal_sent(self, withdrawal_id: str, tx_id: str) -> None:
        """On chain under `tx_id` (idempotent)."""
        t = self._withdrawal(withdrawal_id)
        if t.status == WithdrawStatus.COMPLETED and t.tx_id == tx_id:
            return
        if t.status != WithdrawStatus.PROCESSING:
            raise BadParameter(f"Withdrawal {withdrawal_id} is already {WithdrawStatus(t.status).name}.")
        self._complete(t, tx_id, self.clock())

    def chain_withdrawal_failed(self, withdrawal_id: str, status: WithdrawStatus = WithdrawStatus.FAILURE,
                                info: str = "") -> None:
        """Failed or rejected: the whole debit (amount and fee) returns to the account (idempotent)."""
        if status not in (WithdrawStatus.FAILURE, WithdrawStatus.REJECTED):
            raise ValueError(f"a withdrawal fails as FAILURE or REJECTED, not {status!r}")
        t = self._withdrawal(withdrawal_id)
        if t.status == status:
            return
        if t.status != WithdrawStatus.PROCESSING:
            raise BadParameter(f"Withdrawal {withdrawal_id} is already {WithdrawStatus(t.status).name}.")
        now = self.clock()
        back = t.amount + t.fee
        self.accounts.credit(t.account, t.coin, back)
        t.status, t.info = status, info or ("Rejected" if status == WithdrawStatus.REJECTED else "Withdrawal failed")
        self.version += 1
        self._balance_moved(t.account, t.coin, back, now)

    def owns_address(self, network: str, address: str, tag: str = "", coin: str = "") -> bool:
        """Is `address` one of ours on `network` (and, if named, is `coin` one the venue lists)?"""
        owner = self.addresses.get(address)
        return owner is not None and owner[1] == network and not tag and (not coin or coin in self._assets())

    def chain_deposit(self, *, network: str, coin: str, address: str, tag: str, amount: Decimal, tx_id: str,
                      confirmations: int, required: int, echo: bool = False) -> Transfer:
        """The chain reports a transfer to one of our addresses with `confirmations` so far."""
        owner = self.addresses.get(address)
        if owner is None or owner[1] != network:
            raise BadParameter(f"{address} is not a deposit address on {network}.")
        if amount <= 0 or amount % PRECISION:
            raise BadParameter(f"Deposit amount {amount} is not a positive multiple of {PRECISION}.")
        t = next((d for d in self.deposits if d.tx_id == tx_id and d.address == address), None)
        if t is None:
            t = self._new_deposit(owner[0], coin, amount, network, address, tag, tx_id, 0, required)
            if coin not in self._assets():
                t.status = DepositStatus.WRONG_DEPOSIT  # a token the venue does not list: never credited
        elif (t.coin, t.amount, t.tag) != (coin, amount, tag):
            raise BadParameter(f"Deposit {tx_id} reported again with other values.")
        if confirmations > t.confirmations:
            t.confirmations = confirmations
            self.version += 1
        if t.status == DepositStatus.PENDING and t.confirmations >= t.required:
            self._credit(t)
        if echo and not t.echo and t.status == DepositStatus.SUCCESS:
            t.echo = True
            self.version += 1
        return t


def _history(transfers: list[Transfer], account: str, params: Mapping[str, str]) -> list[Transfer]:
    coin = params.get("coin")
    start = _int(params, "startTime") if "startTime" in params else 0
    end = _int(params, "endTime") if "endTime" in params else 2**63
    client_id = params.get("withdrawOrderId")
    rows = [t for t in transfers if t.account == account and (not coin or t.coin == coin) and start <= t.time_ms <= end
            and (not client_id or t.client_id == client_id)]
    return list(reversed(rows))[: _int(params, "limit") if "limit" in params else 1000]


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))
