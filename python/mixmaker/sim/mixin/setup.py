"""Ready-made worlds for the simulator: the usual assets, and a bot with a fresh keystore."""

from __future__ import annotations

from typing import Any

from mixmaker.mixin import curve
from mixmaker.mixin.amounts import to_units
from mixmaker.sim.mixin.state import SimAsset, SimState

BTC = "c6d0c728-2624-429b-8e0d-d9d19b6592fa"
ETH = "43d61dcd-e413-450d-80b8-101d5e903357"
USDT_ERC20 = "4d8c508b-91c5-375b-92b0-ee702ed2dac5"
XIN = "c94ac88f-4671-3976-b60a-09064f1811e8"
EOS = "6cfe566e-4aad-470b-8c9a-2fd35b49c68d"

EVM_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


def default_assets() -> list[SimAsset]:
    return [
        SimAsset(BTC, "BTC", "Bitcoin", BTC, fee_asset_id="", withdrawal_fee=to_units("0.0001"),
                 min_withdrawal=to_units("0.0002"), max_withdrawal=to_units("100"), address_pattern=r"^(bc1|[13])[0-9A-Za-z]{25,62}$"),
        SimAsset(ETH, "ETH", "Ether", ETH, withdrawal_fee=to_units("0.002"), min_withdrawal=to_units("0.001"),
                 address_pattern=EVM_ADDRESS),
        # An ERC-20 token pays its withdrawal fee in the chain's asset (ETH): two transactions.
        SimAsset(USDT_ERC20, "USDT", "Tether USD", ETH, fee_asset_id=ETH, withdrawal_fee=to_units("0.003"),
                 min_withdrawal=to_units("1"), address_pattern=EVM_ADDRESS),
        SimAsset(XIN, "XIN", "Mixin", ETH, withdrawal_fee=to_units("0.01"), address_pattern=EVM_ADDRESS),
        SimAsset(EOS, "EOS", "EOS", EOS, withdrawal_fee=to_units("0.1"), address_pattern=r"^[a-z1-5.]{1,12}$",
                 memo_possibility="possible"),
    ]


def seeded_world(seed: int = 0, **kw: Any) -> SimState:
    state = SimState(seed=seed, **kw)
    for a in default_assets():
        state.add_asset(a)
    return state


def new_bot(state: SimState, *, safe_registered: bool = True) -> dict[str, str]:
    """Registers a bot (app user + session) and returns its keystore as the dashboard gives it."""
    session_seed = state._random_bytes(32)
    spend_seed = state._random_bytes(32)
    server_seed = state._random_bytes(32)
    app_id, session_id = state._new_uuid(), state._new_uuid()
    state.add_app(app_id, session_id, curve.public_from_seed(session_seed), curve.public_from_seed(spend_seed),
                  safe_registered=safe_registered)
    return {
        "app_id": app_id,
        "session_id": session_id,
        "session_private_key": session_seed.hex(),
        "server_public_key": curve.public_from_seed(server_seed).hex(),
        "spend_private_key": spend_seed.hex(),
    }
