"""Routes every REST request of a ccxt async exchange through our `RateLimiter`.

ccxt sends each REST request from `fetch2`, which first awaits `throttle(cost)` when
`enableRateLimit` is on. We keep that switch on and replace, on this one instance:
- `fetch2`, to open a record of the call (a context variable, so concurrent calls on one
  instance do not mix) and, when it returns or raises, to tell the limiter the request is over;
- `throttle`, to wait in our limiter with that endpoint's priority and pool weights instead of
  ccxt's own single bucket, holding one of its in-flight slots;
- `on_rest_response`, to note that the answer came and feed the venue's usage headers and
  429/418 answers back.
ccxt's in-`fetch2` retries are switched off: they would go out without passing `throttle`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from typing import Any

from mixmaker.connectors.limiter import Priority, RateLimiter

CostFn = Callable[[str, str, str, "float | None"], "tuple[Priority, dict[str, int]]"]
UsageFn = Callable[[Mapping[str, str]], dict[str, int]]
RetryAfterFn = Callable[[int, Mapping[str, str], str, int], "float | None"]


class _Call:
    """One `fetch2` call: its endpoint, what the limiter admitted it with, whether it was answered."""

    __slots__ = ("answered", "cost", "endpoint")

    def __init__(self, endpoint: tuple[str, str, str]) -> None:
        self.endpoint = endpoint
        self.cost: dict[str, int] | None = None
        self.answered = False


_CALL: contextvars.ContextVar[_Call] = contextvars.ContextVar("mixmaker_ccxt_call")
#: Seconds a request may wait in the limiter before it is given up as RequestNotSentError (None:
#: no limit). Set by the caller around a ccxt call (see CcxtVenue).
QUEUE_DEADLINE_S: contextvars.ContextVar[float | None] = contextvars.ContextVar("mixmaker_queue_deadline", default=None)


def route_through(exchange: Any, limiter: RateLimiter, *, cost: CostFn, usage: UsageFn, retry_after: RetryAfterFn) -> None:
    """Makes `limiter` the only way out for `exchange`'s REST requests."""
    if getattr(exchange, "_mixmaker_limiter", None) is not None:
        raise ValueError(f"{exchange.id}: already routed through a rate limiter")
    exchange.enableRateLimit = True
    exchange.options["maxRetriesOnFailure"] = 0
    exchange._mixmaker_limiter = limiter
    fetch2, on_rest_response = exchange.fetch2, exchange.on_rest_response

    async def routed_fetch2(path: str, api: Any = ["public"], method: str = "GET", params: Any = {},  # noqa: B006 - ccxt's signature
                            config: Any = {}) -> Any:  # noqa: B006
        api_name = api[0] if isinstance(api, (list, tuple)) else str(api)
        call = _Call((api_name, str(method), str(path)))
        token = _CALL.set(call)
        try:
            return await fetch2(path, api, method, params, config)
        finally:
            _CALL.reset(token)
            if call.cost is not None:
                # No answer (a timeout, a dropped connection): it may still reach the venue.
                limiter.finish(call.cost, answered=call.answered)

    async def routed_throttle(ccxt_cost: float | None = None) -> None:
        call = _CALL.get(None)
        if call is None:
            # Not from fetch2 (ccxt's WS throttles are per connection objects, not this method):
            # nothing will say when it is answered, so it only waits for room.
            priority, pools = cost("public", "GET", "", ccxt_cost)
            await limiter.acquire(pools, priority, timeout=QUEUE_DEADLINE_S.get())
            return
        priority, pools = cost(*call.endpoint, ccxt_cost)
        await limiter.start(pools, priority, timeout=QUEUE_DEADLINE_S.get())
        call.cost = pools

    def observed_on_rest_response(code: int, reason: str, url: str, method: str, headers: Any, body: Any,
                                   request_headers: Any, request_body: Any) -> Any:
        call = _CALL.get(None)
        if call is not None:
            call.answered = True
        for pool, used in usage(headers or {}).items():
            limiter.observe_used(pool, used)
        if code in (418, 429):
            limiter.rate_limited(retry_after(code, headers or {}, body or "", int(time.time() * 1000)), banned=code == 418)
        elif 200 <= code < 300:
            limiter.succeeded()
        return on_rest_response(code, reason, url, method, headers, body, request_headers, request_body)

    exchange.fetch2 = routed_fetch2
    exchange.throttle = routed_throttle
    exchange.on_rest_response = observed_on_rest_response
