"""`/_sim/chain/*`: what the simulated chain (mixmaker.sim.chain) asks of a Mixin simulator
running in another process. Not Mixin's API: no auth, and only ever on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.state import SimState

Action = Callable[[dict[str, Any]], Any]


def chain_routes(state: SimState) -> dict[str, Action]:
    def attach(body: dict[str, Any]) -> Any:
        state.attach_chain()
        return {}

    def withdrawals(body: dict[str, Any]) -> Any:
        state.attach_chain()  # whoever polls the withdrawals is the chain that settles them
        return state.chain_withdrawals()

    def sent(body: dict[str, Any]) -> Any:
        state.chain_withdrawal_sent(str(body["request_id"]), str(body["withdrawal_hash"]))
        return {}

    def failed(body: dict[str, Any]) -> Any:
        state.chain_withdrawal_failed(str(body["request_id"]))
        return {}

    def owns(body: dict[str, Any]) -> Any:
        network, symbol = str(body["network"]), str(body.get("symbol", ""))
        owned = state.owns_destination(network, str(body["destination"]), str(body.get("tag", "")))
        return {"owns": owned and (not symbol or state.chain_asset(network, symbol) is not None)}

    def deposit(body: dict[str, Any]) -> Any:
        dep = state.chain_deposit(
            network=str(body["network"]), symbol=str(body["symbol"]), destination=str(body["destination"]),
            tag=str(body.get("tag", "")), amount=to_units(str(body["amount"])), deposit_hash=str(body["deposit_hash"]),
            deposit_index=int(body.get("deposit_index", 0)), sender=str(body.get("sender", "")),
            confirmations=int(body["confirmations"]), required=int(body["required"]), echo=bool(body.get("echo", False)))
        return {"credited": bool(dep.snapshot_id), "snapshot_id": dep.snapshot_id}

    return {
        "/_sim/chain/attach": attach,
        "/_sim/chain/withdrawals": withdrawals,
        "/_sim/chain/withdrawals/sent": sent,
        "/_sim/chain/withdrawals/failed": failed,
        "/_sim/chain/owns": owns,
        "/_sim/chain/deposits": deposit,
    }
