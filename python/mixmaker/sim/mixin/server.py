"""The Mixin-compatible HTTP server (aiohttp, 127.0.0.1): the Safe endpoints a bot uses, with the
real envelope (200 `data`, 202 `error`, 500 only when injected) and the real auth checks."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mixmaker.mixin.amounts import format_units, to_units
from mixmaker.mixin.errors import DESCRIPTIONS
from mixmaker.mixin.ids import hash_members, parse_uuid
from mixmaker.mixin.times import parse_rfc3339_ns
from mixmaker.sim.mixin.chain_api import chain_routes
from mixmaker.sim.mixin.faults import FaultPlan
from mixmaker.sim.mixin.state import PAGE_LIMIT, SimError, SimState
from mixmaker.sim.mixin.tokens import authenticate

Handler = Callable[[web.Request, str], Awaitable[Any]]
FAULT = web.RequestKey("fault", object)
BODY = web.RequestKey("body", bytes)


def _error(code: int, extra: Any = None, *, http: int = 202, description: str = "") -> web.Response:
    body = {"error": {"status": http, "code": code, "description": description or DESCRIPTIONS.get(code, "error"),
                      "extra": extra or {}}}
    return web.json_response(body, status=http)


class MixinSimServer:
    """`state` holds the money, `faults` the injected failures; run with `start()` (a background
    thread, for tests and sync SDKs) or `serve()` (in the caller's loop, for the CLI)."""

    def __init__(self, state: SimState | None = None, *, seed: int = 0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or SimState(seed=seed)
        self.faults = FaultPlan(seed)
        self.host, self.port = host, port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.requests_seen = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- the app -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/me", self._me),
            ("GET", "/safe/me", self._safe_me),
            ("GET", "/safe/assets", self._assets),
            ("POST", "/safe/assets/fetch", self._assets_fetch),
            ("GET", "/safe/assets/{asset_id}", self._asset),
            ("GET", "/safe/assets/{asset_id}/fees", self._fees),
            ("POST", "/safe/deposit/entries", self._deposit_entries),
            ("GET", "/safe/deposits", self._deposits),
            ("GET", "/safe/snapshots", self._snapshots),
            ("GET", "/safe/snapshots/{snapshot_id}", self._snapshot),
            ("GET", "/safe/outputs", self._outputs),
            ("POST", "/safe/keys", self._keys),
            ("POST", "/safe/transaction/requests", self._create_requests),
            ("POST", "/safe/transactions", self._broadcast),
            ("GET", "/safe/transactions/{id}", self._transaction),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, self._wrap(handler))
        # Scripting for the demo and other processes: no auth, and only ever on 127.0.0.1.
        app.router.add_post("/_sim/balances", self._sim_balances)
        app.router.add_post("/_sim/users", self._sim_user)
        app.router.add_post("/_sim/deposits", self._sim_deposit)
        app.router.add_post("/_sim/transfers", self._sim_transfer)
        # The simulated chain (mixmaker.sim.chain) when it runs in another process.
        for path, action in chain_routes(self.state).items():
            app.router.add_post(path, self._chain_handler(action))
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        self.requests_seen += 1
        rid = request.headers.get("X-Request-Id", "")
        fault = None if request.path.startswith("/_sim/") else self.faults.take(request.method, request.path)
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
        if fault and fault.kind == "500":
            resp: web.StreamResponse = _error(500, http=500)
        elif fault and fault.kind == "429":
            resp = _error(429)
        elif fault and fault.kind == "api_error":
            resp = _error(fault.code)
        else:
            request[FAULT] = fault
            try:
                resp = await handler(request)
            except web.HTTPNotFound:
                resp = _error(404, {"path": request.path})
            except web.HTTPMethodNotAllowed:
                resp = _error(404, {"path": request.path, "method": request.method})
            if fault and fault.kind == "drop_after_apply":
                # The change is made; the answer never arrives in time.
                await asyncio.sleep(fault.delay_s)
        resp.headers["X-Request-Id"] = str(uuid.uuid4()) if fault and fault.kind == "wrong_request_id" else rid
        return resp

    def _wrap(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def run(request: web.Request) -> web.Response:
            body = await request.read()
            try:
                # raw_path: the request target exactly as sent, which is what `sig` covers.
                user_id = authenticate(self.state, request.headers.get("Authorization"), request.method,
                                       request.raw_path, body)
                request[BODY] = body
                data = await handler(request, user_id)
            except SimError as e:
                return _error(e.code, e.extra, description=e.description)
            return web.json_response({"data": data})

        return run

    @staticmethod
    def _json(request: web.Request) -> Any:
        try:
            return json.loads(request[BODY] or b"null")
        except ValueError:
            raise SimError(400) from None

    @staticmethod
    def _query_int(request: web.Request, name: str, default: int, *, lo: int = 0, hi: int | None = None) -> int:
        raw = request.query.get(name)
        if raw in (None, ""):
            return default
        try:
            v = int(raw)
        except ValueError:
            raise SimError(10002, {"field": name}) from None
        if v < lo or (hi is not None and v > hi):
            raise SimError(10002, {"field": name, "reason": f"must be {lo}..{hi}"})
        return v

    # --- handlers ------------------------------------------------------------------------

    async def _me(self, request: web.Request, user_id: str) -> Any:
        u = self.state.user(user_id)
        return {"type": "user", "user_id": u.user_id, "identity_number": "7000", "full_name": u.full_name,
                "has_safe": u.safe_registered, "app_id": u.user_id if u.is_app else ""}

    async def _safe_me(self, request: web.Request, user_id: str) -> Any:
        u = self.state.user(user_id)
        if not u.safe_registered:
            raise SimError(10404)
        return {**await self._me(request, user_id), "spend_public_key": u.spend_public.hex()}

    async def _assets(self, request: web.Request, user_id: str) -> Any:
        return [a.to_json() for a in self.state.assets.values()]

    async def _assets_fetch(self, request: web.Request, user_id: str) -> Any:
        ids = self._json(request)
        if not isinstance(ids, list):
            raise SimError(10002, {"field": "body", "reason": "an array of asset ids"})
        return [self.state.assets[i].to_json() for i in ids if i in self.state.assets]

    async def _asset(self, request: web.Request, user_id: str) -> Any:
        return self.state.asset(request.match_info["asset_id"]).to_json()

    async def _fees(self, request: web.Request, user_id: str) -> Any:
        a = self.state.asset(request.match_info["asset_id"])
        return [{"type": "withdrawal_fee", "asset_id": a.fee_asset, "amount": format_units(a.withdrawal_fee)}]

    async def _deposit_entries(self, request: web.Request, user_id: str) -> Any:
        body = self._json(request)
        if not isinstance(body, dict) or body.get("members") != [user_id] or body.get("threshold") != 1:
            raise SimError(10002, {"field": "members", "reason": "only [your id] with threshold 1"})
        return [self.state.deposit_entry(user_id, str(body.get("chain_id", "")))]

    async def _deposits(self, request: web.Request, user_id: str) -> Any:
        q = request.query
        rows = self.state.pending_deposits(user_id, asset=q.get("asset", ""), destination=q.get("destination", ""),
                                           tag=q.get("tag", ""), limit=self._query_int(request, "limit", PAGE_LIMIT, lo=1, hi=PAGE_LIMIT))
        return [d.to_json(self.state) for d in rows]

    async def _snapshots(self, request: web.Request, user_id: str) -> Any:
        q = request.query
        filters = [k for k in ("app", "asset", "opponent") if q.get(k)]
        if len(filters) > 1:
            raise SimError(10002, {"field": "app,asset,opponent", "reason": "mutually exclusive"})
        if q.get("app") and q["app"] != user_id:
            raise SimError(403)
        order = q.get("order", "DESC").upper()
        if order not in ("ASC", "DESC"):
            raise SimError(10002, {"field": "order"})
        limit = self._query_int(request, "limit", PAGE_LIMIT, lo=1, hi=PAGE_LIMIT)
        offset = None
        if q.get("offset"):
            try:
                offset = parse_rfc3339_ns(q["offset"])
            except ValueError:
                raise SimError(10002, {"field": "offset"}) from None
        fault = request.get(FAULT)
        if fault and fault.kind == "repeat_boundary" and offset is not None and order == "ASC":
            # Serve a page that starts a little before the cursor: items the reader already has.
            earlier = self.state.list_snapshots(user_id, asset=q.get("asset", ""), opponent=q.get("opponent", ""),
                                                offset=offset, limit=4, order="DESC")
            if earlier:
                offset = earlier[-1].created_at
        quirks = self.faults.snapshots
        rows = self.state.list_snapshots(user_id, asset=q.get("asset", ""), opponent=q.get("opponent", ""),
                                         offset=None if quirks.ignore_offset else offset, limit=limit, order=order,
                                         exclusive=quirks.exclusive_offset, newest_first=quirks.ignore_order)
        return [s.to_json() for s in rows]

    async def _snapshot(self, request: web.Request, user_id: str) -> Any:
        return self.state.snapshot(user_id, request.match_info["snapshot_id"]).to_json()

    async def _outputs(self, request: web.Request, user_id: str) -> Any:
        q = request.query
        members = q.get("members", "")
        if not members:
            members = hash_members([user_id])
        state = q.get("state", "")
        if state not in ("", "unspent", "signed", "spent"):
            raise SimError(10002, {"field": "state"})
        rows = self.state.list_outputs(
            user_id, members=members, threshold=self._query_int(request, "threshold", 1, lo=1, hi=255),
            asset=q.get("asset", ""), state=state, offset=self._query_int(request, "offset", 0),
            limit=self._query_int(request, "limit", PAGE_LIMIT, lo=1, hi=PAGE_LIMIT), order=q.get("order", "ASC").upper())
        return [u.to_json() for u in rows]

    async def _keys(self, request: web.Request, user_id: str) -> Any:
        body = self._json(request)
        if not isinstance(body, list) or not body:
            raise SimError(10002, {"field": "body", "reason": "a non-empty array"})
        out = []
        for item in body:
            try:
                receivers = [parse_uuid(r, "receivers") for r in item["receivers"]]
                index, hint = int(item["index"]), parse_uuid(item["hint"], "hint")
            except (KeyError, TypeError, ValueError) as e:
                raise SimError(10002, {"field": "keys", "reason": str(e)}) from None
            mask, keys = self.state.ghost_keys(receivers, index, hint)
            out.append({"type": "ghost_key", "mask": mask.hex(), "keys": [k.hex() for k in keys]})
        return out

    def _request_items(self, request: web.Request) -> list[tuple[str, str]]:
        body = self._json(request)
        if not isinstance(body, list) or not body:
            raise SimError(10002, {"field": "body", "reason": "a non-empty array"})
        try:
            return [(parse_uuid(i["request_id"], "request_id"), str(i["raw"])) for i in body]
        except (KeyError, TypeError, ValueError) as e:
            raise SimError(10002, {"field": "request_id", "reason": str(e)}) from None

    async def _create_requests(self, request: web.Request, user_id: str) -> Any:
        reqs = [self.state.create_request(user_id, rid, raw) for rid, raw in self._request_items(request)]
        return [self.state.request_json(r) for r in reqs]

    async def _broadcast(self, request: web.Request, user_id: str) -> Any:
        return [self.state.request_json(r) for r in self.state.broadcast(user_id, self._request_items(request))]

    async def _transaction(self, request: web.Request, user_id: str) -> Any:
        return self.state.request_json(self.state.request(user_id, request.match_info["id"]))

    # --- scripting (/_sim) ------------------------------------------------------------------

    async def _sim_call(self, request: web.Request, action: Callable[[dict[str, Any]], Any]) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise SimError(400)
            return web.json_response({"data": action(body)})
        except SimError as e:
            return _error(e.code, e.extra, description=e.description)
        except (ValueError, KeyError, TypeError) as e:
            return _error(10002, {"reason": f"{type(e).__name__}: {e}"})

    async def _sim_balances(self, request: web.Request) -> web.Response:
        """{user_id}: the user's unspent amount per asset id, as decimal text (what the demo observes)."""
        return await self._sim_call(request, lambda b: {
            a.asset_id: format_units(self.state.balance(b["user_id"], a.asset_id))
            for a in list(self.state.assets.values())})

    async def _sim_user(self, request: web.Request) -> web.Response:
        return await self._sim_call(request, lambda b: {"user_id": self.state.add_user(
            b.get("user_id"), b.get("full_name", "user")).user_id})

    async def _sim_deposit(self, request: web.Request) -> web.Response:
        """{user_id, asset_id, amount, memo_hex?}: a chain deposit confirmed for the user."""
        return await self._sim_call(request, lambda b: self.state.deposit(
            b["user_id"], b["asset_id"], to_units(b["amount"]), memo=bytes.fromhex(b.get("memo_hex", ""))).to_json())

    async def _sim_transfer(self, request: web.Request) -> web.Response:
        """{from, to, asset_id, amount, memo_hex?}: a simulated user pays (e.g. the bot, with a memo)."""
        return await self._sim_call(request, lambda b: self.state.user_sends(
            b["from"], b["to"], b["asset_id"], to_units(b["amount"]), bytes.fromhex(b.get("memo_hex", ""))).to_json())

    def _chain_handler(self, action: Callable[[dict[str, Any]], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self._sim_call(request, action)

        return handle

    # --- running -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Starts listening in the running loop; `self.port` is the bound port afterwards."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> MixinSimServer:
        """Runs the server on its own thread and loop; returns once it listens."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.serve())
            except BaseException as e:  # reported to the starting thread
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=main, name="mixin-sim", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = self._loop = None

    def __enter__(self) -> MixinSimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
