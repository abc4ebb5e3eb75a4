"""Typed errors of the simulated exchange, each carrying Binance's code, message and HTTP status."""

from __future__ import annotations

from mixmaker.errors import MixmakerError


class ExchangeError(MixmakerError):
    """A request the venue refuses; `code`/`msg` go on the wire exactly as Binance sends them."""

    code = -1000
    status = 400
    default_msg = "An unknown error occured while processing the request."

    def __init__(self, msg: str | None = None) -> None:
        self.msg = msg or self.default_msg
        super().__init__(f"{self.code}: {self.msg}")

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


class BadParameter(ExchangeError):
    code = -1102
    default_msg = "A mandatory parameter was not sent, was empty/null, or malformed."


class IllegalValue(ExchangeError):
    code = -1100
    default_msg = "Illegal characters found in a parameter."


class IntervalTooBig(ExchangeError):
    code = -1127
    default_msg = "More than 24 hours between startTime and endTime."


class BadCombination(ExchangeError):
    code = -1128
    default_msg = "Combination of optional parameters invalid."


class InvalidParameter(ExchangeError):
    code = -1130
    default_msg = "Invalid data sent for a parameter."


class UnknownSymbol(ExchangeError):
    code = -1121
    default_msg = "Invalid symbol."


class FilterFailure(ExchangeError):
    code = -1013
    default_msg = "Filter failure"


class OrderRejected(ExchangeError):
    """NEW_ORDER_REJECTED: Binance's one code for insufficient funds, duplicates, post-only crosses."""

    code = -2010
    default_msg = "New order rejected."


class InsufficientBalance(OrderRejected):
    default_msg = "Account has insufficient balance for requested action."


class DuplicateOrder(OrderRejected):
    default_msg = "Duplicate order sent."


class WouldTake(OrderRejected):
    default_msg = "Order would immediately match and take."


class UnknownOrderCancel(ExchangeError):
    code = -2011
    default_msg = "Unknown order sent."


class OrderDoesNotExist(ExchangeError):
    code = -2013
    default_msg = "Order does not exist."


class InvalidSignature(ExchangeError):
    code = -1022
    default_msg = "Signature for this request is not valid."


class InvalidApiKey(ExchangeError):
    code = -2015
    status = 401
    default_msg = "Invalid API-key, IP, or permissions for action."


class TimestampOutsideWindow(ExchangeError):
    code = -1021
    default_msg = "Timestamp for this request is outside of the recvWindow."


class RateLimited(ExchangeError):
    """429 (or 418): the client must wait `retry_after` seconds (sent as `Retry-After`)."""

    status = 429

    def __init__(self, retry_after: int, msg: str | None = None) -> None:
        super().__init__(msg)
        self.retry_after = retry_after


class TooMuchWeight(RateLimited):
    """Over the IP's request weight; asking again before Retry-After earns a 418 ban."""

    code = -1003
    default_msg = "Too much request weight used; current limit is exceeded. Please use WebSocket Streams for live updates to avoid polling the API."


class IpBanned(TooMuchWeight):
    status = 418


class TooManyOrders(RateLimited):
    """Over the account's new-order rate: 429 with -1015, no ban."""

    code = -1015
    default_msg = "Too many new orders."


class BackendTimeout(ExchangeError):
    """5xx: Binance's word that the request may or may not have been executed."""

    code = -1007
    status = 503
    default_msg = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."


class UnknownAsset(ExchangeError):
    code = -1108
    default_msg = "Invalid asset."



class BadPrecision(ExchangeError):
    code = -1111
    default_msg = "Precision is over the maximum defined for this asset."
