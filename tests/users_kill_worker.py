"""The user layer as its own process, for kill tests: intake, the order worker and the payout
worker in a loop on one database, against a Mixin simulator over HTTP.

    python users_kill_worker.py KEYSTORE URL DB [STEP:N]

Prints one line per pass ("pass N handled H moved M paid P") and "idle" when a few passes in a
row found nothing to do; then exits 0. With STEP:N it SIGKILLs itself the N-th time it reaches
STEP (intake inside a page's transaction, Payments' recorded/signed/broadcast/sent, the payout
worker's paid/booked, the order worker's steps); a test also kills it at random moments."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

from users_catalog import catalog
from users_world import Clock, UserLayer

from mixmaker.mixin import Keystore, MixinClient


@dataclass
class Remote:
    """What UserLayer needs of a World, for a simulator in another process."""

    keystore: Keystore
    url: str
    bot: dict[str, str]

    def client(self, **kw: Any) -> MixinClient:
        return MixinClient(self.keystore, self.url, timeout_s=5, backoff_s=0.01, rate_limit_backoff_s=0.02)


def main() -> None:
    keystore_path, url, db = sys.argv[1:4]
    bot = json.loads(open(keystore_path).read())
    remote = Remote(Keystore.from_dict(bot), url, bot)
    kill_step, _, kill_n = (sys.argv[4] if len(sys.argv) > 4 else "").partition(":")
    seen: Counter[str] = Counter()

    def crash_at(step: str, ident: str) -> None:
        seen[step] += 1
        if step == kill_step and seen[step] == int(kill_n):
            os.kill(os.getpid(), signal.SIGKILL)

    layer = UserLayer(remote, db, catalog(), Clock(), crash_at=crash_at)  # type: ignore[arg-type]

    async def loop() -> None:
        quiet = 0
        n = 0
        while quiet < 3:
            n += 1
            handled = await layer.poll()
            moved = await layer.worker.run_once()
            paid = await layer.pay_out()
            print(f"pass {n} handled {handled} moved {moved} paid {paid}", flush=True)
            quiet = quiet + 1 if not (handled or moved or paid or layer.outbox.queued()) else 0
        print("idle", flush=True)

    asyncio.run(loop())


if __name__ == "__main__":
    main()
