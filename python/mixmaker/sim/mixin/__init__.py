"""A Mixin-compatible server on 127.0.0.1 for tests, the demo and development without real funds.

    state = seeded_world(seed=1); bot = new_bot(state)
    with MixinSimServer(state) as sim:
        ... MixinClient(Keystore.from_dict(bot), base_url=sim.url) ...
        state.user_sends(alice.user_id, bot["app_id"], BTC, to_units("0.5"), b"memo")
"""

from mixmaker.sim.mixin.faults import FaultPlan
from mixmaker.sim.mixin.server import MixinSimServer
from mixmaker.sim.mixin.setup import default_assets, new_bot, seeded_world
from mixmaker.sim.mixin.state import FEE_USER_ID, SimAsset, SimError, SimState

__all__ = ["FEE_USER_ID", "FaultPlan", "MixinSimServer", "SimAsset", "SimError", "SimState", "default_assets",
           "new_bot", "seeded_world"]
