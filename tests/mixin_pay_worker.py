"""A bot process that pays a list of causes, for the tests where two payers overlap.

    python mixin_pay_worker.py SPEC.json

SPEC holds: keystore, url, db, payments [{cause, kind, asset, amount, to}], seed, and optionally
ready_file (written once set up), go_file (waited for before paying), concurrent (pay all at once
instead of one after another), lease_ttl_s, and pause_at {step, cause, marker}: on reaching that
step for that cause, write `marker` and sleep (the test then kills the process with SIGKILL).

Each cause is retried on any error but a refusal (PaymentFailedError) until `deadline_s`. At the
end it prints one JSON object: {cause: {"state": journal state, "error": last error or ""}}."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

from mixmaker.mixin import Keystore, MixinClient
from mixmaker.mixin.ids import unique_object_id
from mixmaker.mixin.payments import PaymentFailedError, Payments
from mixmaker.store import SqliteStore


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    rng = random.Random(spec.get("seed", 0))
    pause = spec.get("pause_at") or {}
    pause_rid = unique_object_id(pause["cause"], pause.get("kind", "transfer")) if pause else ""

    def crash_at(step: str, request_id: str) -> None:
        if pause and step == pause["step"] and request_id == pause_rid:
            Path(pause["marker"]).write_text(str(os.getpid()))
            time.sleep(3600)  # holding whatever it holds, until the test kills it

    async def run() -> dict[str, dict[str, str]]:
        kw = {"lease_ttl_s": spec["lease_ttl_s"]} if "lease_ttl_s" in spec else {}
        async with MixinClient(Keystore.from_file(spec["keystore"]), spec["url"], timeout_s=5, backoff_s=0.01) as c:
            pay = Payments(c, SqliteStore(spec["db"]), crash_at=crash_at, uncertain_backoff_s=0.05, **kw)
            if spec.get("ready_file"):
                Path(spec["ready_file"]).write_text("ready")
            go = spec.get("go_file")
            while go and not Path(go).exists():
                await asyncio.sleep(0.005)
            errors: dict[str, str] = {}
            deadline = time.monotonic() + spec.get("deadline_s", 60)

            async def one(p: dict[str, str]) -> None:
                await asyncio.sleep(rng.random() * 0.05)
                fn = pay.withdraw if p["kind"] == "withdrawal" else pay.transfer
                while True:
                    try:
                        await fn(p["cause"], p["asset"], p["amount"], p["to"])
                        errors[p["cause"]] = ""
                        return
                    except PaymentFailedError as e:
                        errors[p["cause"]] = f"refused: {e}"
                        return
                    except Exception as e:  # retryable or unclear: try again, as a caller would
                        errors[p["cause"]] = f"{type(e).__name__}: {e}"
                        if time.monotonic() > deadline:
                            return
                        await asyncio.sleep(0.05 + rng.random() * 0.1)

            todo = list(spec["payments"])
            rng.shuffle(todo)
            if spec.get("concurrent"):
                await asyncio.gather(*(one(p) for p in todo))
            else:
                for p in todo:
                    await one(p)
            out = {}
            for p in spec["payments"]:
                row = pay.payment(unique_object_id(p["cause"], p["kind"]))
                out[p["cause"]] = {"state": row.state if row else "missing", "error": errors.get(p["cause"], "")}
            return out

    print(json.dumps(asyncio.run(run())), flush=True)


if __name__ == "__main__":
    main()
