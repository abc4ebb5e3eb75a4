"""A bot process that pays and dies (`os._exit`, no clean-up) at a chosen step.

    python mixin_crash_worker.py KEYSTORE URL DB KIND CAUSE ASSET AMOUNT TO [CRASH_STEP]

Prints the payment's final state when it survives. Its asset lease lives 1 s, so the next run
takes over from a killed one after a second."""

from __future__ import annotations

import asyncio
import os
import sys

from mixmaker.mixin import Keystore, MixinClient
from mixmaker.mixin.payments import Payments
from mixmaker.store import SqliteStore


def main() -> None:
    keystore, url, db, kind, cause, asset, amount, to = sys.argv[1:9]
    crash_step = sys.argv[9] if len(sys.argv) > 9 else ""

    def crash_at(step: str, request_id: str) -> None:
        if step == crash_step:
            os._exit(17)

    async def run() -> None:
        async with MixinClient(Keystore.from_file(keystore), url, timeout_s=5, backoff_s=0.01) as client:
            pay = Payments(client, SqliteStore(db), crash_at=crash_at, uncertain_backoff_s=0.05, lease_ttl_s=1.0)
            if kind == "recover":
                done = await pay.recover()
                print(",".join(p.state for p in done))
                return
            fn = pay.withdraw if kind == "withdrawal" else pay.transfer
            p = await fn(cause, asset, amount, to)
            print(p.state)

    asyncio.run(run())


if __name__ == "__main__":
    main()
