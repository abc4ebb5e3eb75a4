"""MixinClient: the Safe API over aiohttp, one fresh signed token per request.

Every call says whether it is idempotent. Idempotent calls are retried with exponential
backoff on transport failures, HTTP 500 and 429; nothing else is retried, and PIN/TIP errors
never are. A response whose X-Request-Id is not ours counts as a failed call.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from mixmaker.mixin.auth import sign_authentication_token
from mixmaker.mixin.errors import (
    MixinApiError,
    MixinTransportError,
    NotFoundError,
    PinError,
    RateLimitedError,
    RequestIdMismatchError,
    error_for,
)
from mixmaker.mixin.ids import hash_members, parse_uuid
from mixmaker.mixin.keystore import Keystore
from mixmaker.mixin.models import Output, Snapshot, TransactionRequest
from mixmaker.mixin.times import format_rfc3339_ns

DEFAULT_BASE_URL = "https://api.mixin.one"
PAGE_LIMIT = 500


class MixinClient:
    def __init__(
        self,
        keystore: Keystore,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout_s: float = 10.0,
        retries: int = 4,
        backoff_s: float = 0.2,
        rate_limit_backoff_s: float = 1.0,
    ) -> None:
        self.keystore = keystore
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.rate_limit_backoff_s = rate_limit_backoff_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> MixinClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"MixinClient({self.base_url}, app_id={self.keystore.app_id})"

    # --- transport -----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        idempotent: bool,
    ) -> Any:
        """One API call: `data` on success, a MixinApiError subclass for an error envelope."""
        target = path
        q = [(k, v) for k, v in query if v not in (None, "")]
        if q:
            # Encoded once here; the URL is then sent as is so the server sees what we signed.
            target += "?" + "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe=':')}" for k, v in q)
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        attempt = 0
        while True:
            try:
                return await self._once(method, target, payload)
            except PinError:
                raise
            except (MixinTransportError, MixinApiError) as e:
                retry = idempotent and attempt < self.retries and (
                    isinstance(e, MixinTransportError) or (isinstance(e, MixinApiError) and e.retryable)
                )
                if not retry:
                    raise
                base = self.rate_limit_backoff_s if isinstance(e, RateLimitedError) else self.backoff_s
                await asyncio.sleep(base * 2**attempt)
                attempt += 1

    async def _once(self, method: str, target: str, payload: bytes) -> Any:
        request_id = str(uuid.uuid4())
        token = sign_authentication_token(self.keystore, method, target, payload, jti=request_id)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "X-Request-Id": request_id}
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = URL(self.base_url + target, encoded=True)
        try:
            async with self._session.request(
                method, url, data=payload or None, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            ) as resp:
                raw = await resp.read()
                echoed = resp.headers.get("X-Request-Id")
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as e:
            raise MixinTransportError(f"{method} {target}: no answer ({type(e).__name__}: {e})") from None
        if echoed != request_id:
            raise RequestIdMismatchError(f"{method} {target}: answer for X-Request-Id {echoed!r}, not {request_id}")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise MixinTransportError(f"{method} {target}: HTTP {status}, body is not JSON") from None
        err = doc.get("error") if isinstance(doc, dict) else None
        if err:
            raise error_for(int(err.get("code") or status), err.get("description", ""), err.get("extra"),
                            request_id=request_id)
        if status != 200 or not isinstance(doc, dict) or "data" not in doc:
            raise MixinTransportError(f"{method} {target}: HTTP {status} without data")
        return doc["data"]

    # --- account and assets --------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        """`/safe/me`; NotRegisteredError (10404) if the bot is not on the Safe sequencer."""
        return _object(await self.request("GET", "/safe/me", idempotent=True), "/safe/me")

    async def assets(self) -> list[dict[str, Any]]:
        return _objects(await self.request("GET", "/safe/assets", idempotent=True), "/safe/assets")

    async def asset(self, asset_id: str) -> dict[str, Any]:
        return _object(await self.request("GET", f"/safe/assets/{parse_uuid(asset_id, 'asset_id')}", idempotent=True),
                       "/safe/assets/{id}")

    async def fetch_assets(self, asset_ids: Iterable[str]) -> list[dict[str, Any]]:
        return _objects(await self.request("POST", "/safe/assets/fetch",
                                           body=[parse_uuid(a, "asset_id") for a in asset_ids], idempotent=True),
                        "/safe/assets/fetch")

    async def withdrawal_fees(self, asset_id: str, destination: str) -> list[dict[str, Any]]:
        return _objects(await self.request("GET", f"/safe/assets/{parse_uuid(asset_id, 'asset_id')}/fees",
                                           query=[("destination", destination)], idempotent=True),
                        "/safe/assets/{id}/fees")

    async def deposit_entry(self, chain_id: str) -> dict[str, Any]:
        """The bot's deposit address on a chain; the same address on every call."""
        body = {"members": [self.keystore.app_id], "threshold": 1, "chain_id": parse_uuid(chain_id, "chain_id")}
        entries = _objects(await self.request("POST", "/safe/deposit/entries", body=body, idempotent=True),
                           "/safe/deposit/entries")
        if not entries:
            raise MixinTransportError("/safe/deposit/entries: an empty list")
        return entries[0]

    # --- snapshots -----------------------------------------------------------------------

    async def snapshots(
        self,
        *,
        offset_ns: int | None = None,
        limit: int = PAGE_LIMIT,
        order: str = "ASC",
        asset: str | None = None,
        opponent: str | None = None,
    ) -> list[Snapshot]:
        """One page. With order ASC, `offset` is inclusive: the item at the cursor comes back."""
        if not 1 <= limit <= PAGE_LIMIT:
            raise ValueError(f"limit must be 1..{PAGE_LIMIT}")
        query = [
            ("app", None if asset or opponent else self.keystore.app_id),
            ("asset", asset),
            ("opponent", opponent),
            ("offset", None if offset_ns is None else format_rfc3339_ns(offset_ns)),
            ("limit", limit),
            ("order", order),
        ]
        rows = await self.request("GET", "/safe/snapshots", query=query, idempotent=True)
        return [Snapshot.from_json(r) for r in rows]

    async def snapshot(self, snapshot_id: str) -> Snapshot:
        d = await self.request("GET", f"/safe/snapshots/{parse_uuid(snapshot_id, 'snapshot_id')}", idempotent=True)
        return Snapshot.from_json(d)

    # --- outputs (UTXOs) -------------------------------------------------------------------

    async def outputs(self, *, asset: str | None = None, state: str = "unspent", offset: int = 0,
                      limit: int = PAGE_LIMIT) -> list[Output]:
        query = [("members", hash_members([self.keystore.app_id])), ("threshold", 1), ("asset", asset),
                 ("state", state), ("offset", offset), ("limit", limit), ("order", "ASC")]
        rows = await self.request("GET", "/safe/outputs", query=query, idempotent=True)
        return [Output.from_json(r) for r in rows]

    async def iter_outputs(self, *, asset: str | None = None, state: str = "unspent") -> AsyncIterator[Output]:
        """All outputs by ascending sequence, each once (the page boundary may repeat an item)."""
        last = -1
        while True:
            page = await self.outputs(asset=asset, state=state, offset=max(last, 0))
            fresh = [o for o in page if o.sequence > last]
            for o in fresh:
                yield o
            if not fresh or len(page) < PAGE_LIMIT:
                return
            last = fresh[-1].sequence

    # --- transactions --------------------------------------------------------------------

    async def ghost_keys(self, requests: Sequence[tuple[Sequence[str], int, str]]) -> list[dict[str, Any]]:
        """One `{mask, keys}` per (receivers, output index, hint); the same hint gives the same keys."""
        body = [{"receivers": sorted(r), "index": i, "hint": h} for r, i, h in requests]
        return _objects(await self.request("POST", "/safe/keys", body=body, idempotent=True), "/safe/keys")

    async def create_transaction_requests(self, items: Sequence[tuple[str, str]]) -> list[TransactionRequest]:
        """Verifies unsigned raws; idempotent by request id (same id + same raw = same answer)."""
        body = [{"request_id": rid, "raw": raw} for rid, raw in items]
        rows = await self.request("POST", "/safe/transaction/requests", body=body, idempotent=True)
        return [TransactionRequest.from_json(r) for r in rows]

    async def broadcast(self, items: Sequence[tuple[str, str]]) -> list[TransactionRequest]:
        """Sends signed raws. Not retried here: after an unclear outcome read `transaction()` first."""
        body = [{"request_id": rid, "raw": raw} for rid, raw in items]
        rows = await self.request("POST", "/safe/transactions", body=body, idempotent=False)
        return [TransactionRequest.from_json(r) for r in rows]

    async def transaction(self, request_id_or_hash: str) -> TransactionRequest | None:
        """The request's state, or None if Mixin has never seen it."""
        try:
            d = await self.request("GET", f"/safe/transactions/{request_id_or_hash}", idempotent=True)
        except NotFoundError:
            return None
        return TransactionRequest.from_json(d)


def _object(data: Any, what: str) -> dict[str, Any]:
    """`data` if the API answered a JSON object, else a transport error naming the call."""
    if not isinstance(data, dict):
        raise MixinTransportError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _objects(data: Any, what: str) -> list[dict[str, Any]]:
    """`data` if the API answered a list of JSON objects, else a transport error naming the call."""
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise MixinTransportError(f"{what}: expected a list of JSON objects")
    return data
