"""The simulated chain: Mixin withdrawals become exchange deposits and exchange withdrawals
become Mixin deposits, after delays and confirmations, with seeded faults (stuck, failed,
duplicated notification).

    chain = Chain.in_process(mixin_state, exchange_sim.venue, ChainConfig(seed=1, send_delay_s=0.2))
    task = asyncio.create_task(chain.run())      # or: await chain.step() under a test's clock
    chain.faults.add(Fault.FAIL, source=Place.EXCHANGE); chain.release()
"""

from mixmaker.sim.chain.engine import Chain
from mixmaker.sim.chain.model import ChainConfig, ChainError, Fault, Move, MoveState, Place, Withdrawal
from mixmaker.sim.chain.sides import HttpExchange, HttpMixin, LocalExchange, LocalMixin, SideUnavailableError

__all__ = ["Chain", "ChainConfig", "ChainError", "Fault", "HttpExchange", "HttpMixin", "LocalExchange", "LocalMixin",
           "Move", "MoveState", "Place", "SideUnavailableError", "Withdrawal"]
