"""The two venues as the chain sees them: where withdrawals come from and deposits go to.

`LocalMixin`/`LocalExchange` act on simulator objects in this process (tests, `mixmaker sim
all`); `HttpMixin`/`HttpExchange` on simulators in other processes through their `/_sim/chain`
and `/sim/chain` endpoints (`mixmaker sim chain`). Every call is idempotent, so the chain may
repeat any of them after a crash or a lost answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import aiohttp

from mixmaker.mixin.amounts import AmountError, to_units
from mixmaker.sim.chain.model import ChainError, Move, Place, Withdrawal
from mixmaker.sim.exchange.capital import WithdrawStatus
from mixmaker.sim.exchange.errors import ExchangeError
from mixmaker.sim.exchange.operations import Venue
from mixmaker.sim.mixin.state import SimError, SimState

T = TypeVar("T")


class SideUnavailableError(ChainError):
    """A venue did not answer (or refused): the chain tries again on its next step."""


class ChainSide(Protocol):
    place: Place

    async def attach(self) -> None:
        """From now on the venue's withdrawals wait for the chain instead of settling by themselves."""

    async def withdrawals(self) -> list[Withdrawal]:
        """Withdrawals waiting for the chain; asking also hands their settling to the chain."""

    async def sent(self, ref: str, tx_hash: str) -> None: ...

    async def failed(self, ref: str) -> None: ...

    async def owns(self, network: str, symbol: str, address: str, tag: str) -> bool:
        """Is `address` (with `tag`) a deposit address of this venue that takes `symbol` on `network`?"""

    async def deposit(self, move: Move, confirmations: int, required: int, echo: bool) -> bool:
        """Reports `move` with `confirmations` so far; True once the venue has credited it."""


def _local(place: Place, call: Callable[[], T]) -> T:
    """A venue in this process refusing a call is, to the chain, a call to try again later."""
    try:
        return call()
    except (SimError, ExchangeError, AmountError) as e:
        raise SideUnavailableError(f"{place.value} refused: {e}") from None


def _mixin_withdrawal(w: dict[str, Any]) -> Withdrawal:
    return Withdrawal(Place.MIXIN, w["request_id"], w["network"], w["symbol"], Decimal(w["amount"]), w["destination"],
                      w.get("tag") or "")


def _exchange_withdrawal(w: dict[str, Any]) -> Withdrawal:
    return Withdrawal(Place.EXCHANGE, w["id"], w["network"], w["coin"], Decimal(w["amount"]), w["address"],
                      w.get("tag") or "")


class LocalMixin:
    place = Place.MIXIN

    def __init__(self, state: SimState) -> None:
        self.state = state

    async def attach(self) -> None:
        self.state.attach_chain()

    async def withdrawals(self) -> list[Withdrawal]:
        self.state.attach_chain()
        return [_mixin_withdrawal(w) for w in self.state.chain_withdrawals()]

    async def sent(self, ref: str, tx_hash: str) -> None:
        _local(self.place, lambda: self.state.chain_withdrawal_sent(ref, tx_hash))

    async def failed(self, ref: str) -> None:
        _local(self.place, lambda: self.state.chain_withdrawal_failed(ref))

    async def owns(self, network: str, symbol: str, address: str, tag: str) -> bool:
        return self.state.owns_destination(network, address, tag) and self.state.chain_asset(network, symbol) is not None

    async def deposit(self, move: Move, confirmations: int, required: int, echo: bool) -> bool:
        dep = _local(self.place, lambda: self.state.chain_deposit(
            network=move.network, symbol=move.symbol, destination=move.address, tag=move.tag,
            amount=to_units(move.amount), deposit_hash=move.tx_hash, sender=f"chain:{move.source.value}",
            confirmations=confirmations, required=required, echo=echo))
        return bool(dep.snapshot_id)


class LocalExchange:
    place = Place.EXCHANGE

    def __init__(self, venue: Venue, *, fail_status: str = "FAILURE") -> None:
        self.venue = venue
        self.fail_status = WithdrawStatus[fail_status]

    async def attach(self) -> None:
        self.venue.capital.attach_chain()

    async def withdrawals(self) -> list[Withdrawal]:
        self.venue.capital.attach_chain()
        return [_exchange_withdrawal(w) for w in self.venue.capital.chain_withdrawals()]

    async def sent(self, ref: str, tx_hash: str) -> None:
        _local(self.place, lambda: self.venue.capital.chain_withdrawal_sent(ref, tx_hash))

    async def failed(self, ref: str) -> None:
        _local(self.place, lambda: self.venue.capital.chain_withdrawal_failed(ref, self.fail_status))

    async def owns(self, network: str, symbol: str, address: str, tag: str) -> bool:
        return self.venue.capital.owns_address(network, address, tag, symbol)

    async def deposit(self, move: Move, confirmations: int, required: int, echo: bool) -> bool:
        t = _local(self.place, lambda: self.venue.capital.chain_deposit(
            network=move.network, coin=move.symbol, address=move.address, tag=move.tag, amount=move.amount,
            tx_id=move.tx_hash, confirmations=confirmations, required=required, echo=echo))
        return t.complete_ms > 0


class _Http:
    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, path: str, **kw: Any) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.base_url + path, **kw) as resp:
                text = await resp.text()
                return resp.status, json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise SideUnavailableError(f"{self.base_url}{path}: {type(e).__name__}: {e}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpMixin(_Http):
    place = Place.MIXIN

    async def _call(self, path: str, body: dict[str, Any]) -> Any:
        status, doc = await self._post(path, json=body)
        if status != 200 or not isinstance(doc, dict) or "data" not in doc:
            raise SideUnavailableError(f"mixin {path}: {status} {doc}")
        return doc["data"]

    async def attach(self) -> None:
        await self._call("/_sim/chain/attach", {})

    async def withdrawals(self) -> list[Withdrawal]:
        return [_mixin_withdrawal(w) for w in await self._call("/_sim/chain/withdrawals", {})]

    async def sent(self, ref: str, tx_hash: str) -> None:
        await self._call("/_sim/chain/withdrawals/sent", {"request_id": ref, "withdrawal_hash": tx_hash})

    async def failed(self, ref: str) -> None:
        await self._call("/_sim/chain/withdrawals/failed", {"request_id": ref})

    async def owns(self, network: str, symbol: str, address: str, tag: str) -> bool:
        data = await self._call("/_sim/chain/owns", {"network": network, "symbol": symbol, "destination": address,
                                                     "tag": tag})
        return bool(data["owns"])

    async def deposit(self, move: Move, confirmations: int, required: int, echo: bool) -> bool:
        data = await self._call("/_sim/chain/deposits", {
            "network": move.network, "symbol": move.symbol, "destination": move.address, "tag": move.tag,
            "amount": str(move.amount), "deposit_hash": move.tx_hash, "sender": f"chain:{move.source.value}",
            "confirmations": confirmations, "required": required, "echo": echo})
        return bool(data["credited"])


class HttpExchange(_Http):
    place = Place.EXCHANGE

    def __init__(self, base_url: str, timeout_s: float = 5.0, *, fail_status: str = "FAILURE") -> None:
        super().__init__(base_url, timeout_s)
        self.fail_status = fail_status

    async def _call(self, path: str, params: dict[str, str]) -> Any:
        status, doc = await self._post(path, data=params)
        if status != 200:
            raise SideUnavailableError(f"exchange {path}: {status} {doc}")
        return doc

    async def attach(self) -> None:
        await self._call("/sim/chain/attach", {})

    async def withdrawals(self) -> list[Withdrawal]:
        return [_exchange_withdrawal(w) for w in await self._call("/sim/chain/withdrawals", {})]

    async def sent(self, ref: str, tx_hash: str) -> None:
        await self._call("/sim/chain/withdrawals/sent", {"id": ref, "txId": tx_hash})

    async def failed(self, ref: str) -> None:
        await self._call("/sim/chain/withdrawals/failed", {"id": ref, "status": self.fail_status})

    async def owns(self, network: str, symbol: str, address: str, tag: str) -> bool:
        data = await self._call("/sim/chain/owns", {"network": network, "address": address, "tag": tag, "coin": symbol})
        return bool(data["owns"])

    async def deposit(self, move: Move, confirmations: int, required: int, echo: bool) -> bool:
        data = await self._call("/sim/chain/deposits", {
            "network": move.network, "coin": move.symbol, "address": move.address, "tag": move.tag,
            "amount": format(move.amount, "f"), "txId": move.tx_hash, "confirmations": str(confirmations),
            "required": str(required), "echo": "true" if echo else "false"})
        return int(data["status"]) == 1
