"""`/sim/chain/*`: what the simulated chain (mixmaker.sim.chain) asks of an exchange simulator
running in another process. Not Binance's API: unsigned, and only ever on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixmaker.sim.exchange.capital import WithdrawStatus
from mixmaker.sim.exchange.errors import BadParameter
from mixmaker.sim.exchange.operations import Venue
from mixmaker.sim.exchange.params import decimal, integer, required


def attach(venue: Venue, params: Mapping[str, str]) -> Any:
    venue.capital.attach_chain()
    return {}


def withdrawals(venue: Venue, params: Mapping[str, str]) -> Any:
    venue.capital.attach_chain()  # whoever polls the withdrawals is the chain that settles them
    return venue.capital.chain_withdrawals()


def withdrawal_sent(venue: Venue, params: Mapping[str, str]) -> Any:
    venue.capital.chain_withdrawal_sent(required(params, "id"), required(params, "txId"))
    return {}


def withdrawal_failed(venue: Venue, params: Mapping[str, str]) -> Any:
    name = params.get("status") or "FAILURE"
    if name not in ("FAILURE", "REJECTED"):
        raise BadParameter(f"status must be FAILURE or REJECTED, not {name!r}")
    status = WithdrawStatus[name]
    venue.capital.chain_withdrawal_failed(required(params, "id"), status, params.get("info") or "")
    return {}


def owns(venue: Venue, params: Mapping[str, str]) -> Any:
    return {"owns": venue.capital.owns_address(required(params, "network"), required(params, "address"),
                                               params.get("tag") or "", params.get("coin") or "")}


def deposit(venue: Venue, params: Mapping[str, str]) -> Any:
    t = venue.capital.chain_deposit(
        network=required(params, "network"), coin=required(params, "coin"), address=required(params, "address"),
        tag=params.get("tag") or "", amount=decimal(params, "amount"), tx_id=required(params, "txId"),
        confirmations=integer(params, "confirmations"), required=integer(params, "required"),
        echo=params.get("echo") == "true")
    return {"id": t.id, "status": int(t.status)}
