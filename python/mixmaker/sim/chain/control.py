"""The chain's own small HTTP API (127.0.0.1, no auth), for demos, tests and operators:

    GET  /chain/moves                  every move and where it is
    GET  /chain/status                 switches, fault rates and hits, moves in flight, failed calls
    POST /chain/release   {move_id?}   ends the stuck state of one move (or all)
    POST /chain/faults    {rates: {stuck|fail|duplicate: 0..1}, next: [{fault, times?, source?}]}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mixmaker.sim.chain.engine import Chain
from mixmaker.sim.chain.model import ChainError, Fault, Place


def status(chain: Chain) -> dict[str, Any]:
    cfg = chain.config
    return {
        "config": {"seed": cfg.seed, "send_delay_s": cfg.send_delay_s, "block_time_s": cfg.block_time_s,
                   "confirmations": cfg.confirmations, "jitter": cfg.jitter, "stuck_for_s": cfg.stuck_for_s,
                   "exchange_fail_status": cfg.exchange_fail_status},
        "rates": {f.value: r for f, r in chain.faults.rates.items()},
        "hits": {f.value: n for f, n in chain.faults.hits.items()},
        "scripted": [{"fault": f.value, "source": s.value if s else None, "times": n} for f, s, n in chain.faults.scripted],
        "attached": chain.attached,
        "moves": len(chain.moves),
        "in_flight": [m.move_id for m in chain.in_flight()],
        "errors": chain.errors,
    }


def configure_faults(chain: Chain, body: dict[str, Any]) -> None:
    """Applies `{rates: {...}, next: [...]}`; checks everything before changing anything."""
    try:
        rates = {Fault(k): float(v) for k, v in (body.get("rates") or {}).items()}
        scripted = [(Fault(n["fault"]), int(n.get("times", 1)), Place(n["source"]) if n.get("source") else None)
                    for n in body.get("next") or []]
    except (KeyError, TypeError, ValueError) as e:
        raise ChainError(f"bad fault switch: {e}") from None
    for fault, rate in rates.items():
        if not 0 <= rate <= 1:
            raise ChainError(f"rate of {fault.value} must be within 0..1, got {rate}")
    for fault, rate in rates.items():
        chain.faults.set(fault, rate)
    for fault, times, source in scripted:
        chain.faults.add(fault, times=times, source=source)


def app(chain: Chain) -> web.Application:
    def handler(action: Callable[[dict[str, Any]], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                body = await request.json() if request.can_read_body else {}
                if not isinstance(body, dict):
                    raise ChainError("the body must be a JSON object")
                return web.json_response(action(body))
            except ValueError as e:
                return web.json_response({"error": f"not JSON: {e}"}, status=400)
            except ChainError as e:
                return web.json_response({"error": str(e)}, status=400)

        return handle

    def release(body: dict[str, Any]) -> Any:
        return {"released": chain.release(body.get("move_id"))}

    def faults(body: dict[str, Any]) -> Any:
        configure_faults(chain, body)
        return status(chain)

    application = web.Application()
    application.router.add_get("/chain/moves", handler(lambda _: [m.to_json() for m in chain.moves.values()]))
    application.router.add_get("/chain/status", handler(lambda _: status(chain)))
    application.router.add_post("/chain/release", handler(release))
    application.router.add_post("/chain/faults", handler(faults))
    return application


async def serve(chain: Chain, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Starts the API in the running loop; returns its runner and the bound port."""
    runner = web.AppRunner(app(chain), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, runner.addresses[0][1]
