"""Typed Mixin errors. The API answers application errors as HTTP 202 with
`{"error": {"status", "code", "description", "extra"}}`; each code a bot meets has a class."""

from __future__ import annotations

from typing import Any

from mixmaker.errors import MixmakerError


class MixinError(MixmakerError):
    """Anything that went wrong talking to Mixin or preparing a call."""


class MixinApiError(MixinError):
    """An error answered by the API. `code` is Mixin's code, `extra` its details (may be {})."""

    code: int = 0
    retryable = False  # safe to repeat the same idempotent call after a pause
    # Mixin refused what the payment asks (address, memo, amount, receivers): any build of the
    # same payment gets the same answer, so it is a refusal of the payment itself.
    refuses_payment = False

    def __init__(self, code: int, description: str = "", extra: Any = None, *, request_id: str | None = None):
        self.code = code
        self.description = description or DESCRIPTIONS.get(code, "")
        self.extra = extra if extra is not None else {}
        self.request_id = request_id
        where = f" (X-Request-Id {request_id})" if request_id else ""
        detail = f" {self.extra}" if self.extra else ""
        super().__init__(f"Mixin error {code}: {self.description}{detail}{where}")


class UnauthorizedError(MixinApiError):
    """401: the token was refused (wrong key, session, sig or expired). Check the keystore and clock."""


class ForbiddenError(MixinApiError):
    pass


class NotFoundError(MixinApiError):
    pass


class RateLimitedError(MixinApiError):
    retryable = True


class InvalidFieldError(MixinApiError):
    """10002: a request field is invalid; `extra` names it."""


class LockedByAnotherTransactionError(MixinApiError):
    """10105: the outputs are being spent by another transaction; retry after it settles."""

    retryable = True


class InputLockedError(MixinApiError):
    """Kernel 2000002: an input is locked by another transaction (UTXO contention); retryable."""

    retryable = True


class NotRegisteredError(MixinApiError):
    """10404: the bot is not registered with the Safe sequencer; register it before paying."""


class InsufficientBalanceError(MixinApiError):
    pass


class PinError(MixinApiError):
    """PIN/TIP errors are never retried: five wrong PINs lock the account for a day."""


class PinFormatError(PinError):
    pass


class PinIncorrectError(PinError):
    pass


class AmountLimitError(MixinApiError):
    """The amount is outside what Mixin accepts for this transfer or withdrawal."""

    refuses_payment = True


class FeeError(MixinApiError):
    """The fee paid is missing or too small: fetch /safe/assets/{id}/fees again."""


class RequestIdConflictError(MixinApiError):
    """20125: this request id was already used with different content."""


class WithdrawalMemoError(MixinApiError):
    refuses_payment = True


class InvalidReceiversError(MixinApiError):
    refuses_payment = True


class InvalidAddressError(MixinApiError):
    refuses_payment = True


class ServerError(MixinApiError):
    """HTTP 500 (codes 500, 7000, 7001): the request may or may not have been applied."""

    retryable = True


class MixinTransportError(MixinError):
    """No usable answer (timeout, connection reset, unparsable body). The call may have been applied."""


class RequestIdMismatchError(MixinTransportError):
    """The response echoed another X-Request-Id: it is not the answer to our call."""


class LocalPaymentError(MixinError):
    """A payment cannot be built from what we hold (not enough outputs, bad amount, ...)."""


def is_utxo_contention(e: MixinError) -> bool:
    """The outputs a transaction spends are locked by another transaction (10105, kernel 2000002)
    or no longer unspent (a 10002 about `inputs`): another payment got to them first. Read the
    outputs again and build anew (before a broadcast), or wait for the other to settle."""
    if isinstance(e, (LockedByAnotherTransactionError, InputLockedError)):
        return True
    return isinstance(e, InvalidFieldError) and isinstance(e.extra, dict) and e.extra.get("field") == "inputs"


DESCRIPTIONS: dict[int, str] = {
    400: "The request body can't be parsed as valid data.",
    401: "Unauthorized, maybe invalid token.",
    403: "Forbidden.",
    404: "The endpoint is not found.",
    429: "Too Many Requests.",
    500: "Internal Server Error.",
    7000: "Blaze server error.",
    7001: "The blaze operation timeout.",
    10002: "The request data has invalid field.",
    10105: "Locked by another transaction.",
    10404: "User not registered with the sequencer.",
    20117: "Insufficient balance.",
    20118: "PIN format error.",
    20119: "PIN error.",
    20120: "Transfer amount is too small.",
    20124: "Insufficient transaction fee.",
    20125: "The transfer has been paid by someone else.",
    20127: "The withdraw amount is too small.",
    20131: "Withdrawal memo format error.",
    20134: "The withdraw amount is too large.",
    20135: "The withdraw fee is too small.",
    20150: "Receivers contain duplicate or invalid data.",
    30102: "Invalid address format.",
    2000002: "Input locked by another transaction.",
}

_CLASSES: dict[int, type[MixinApiError]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    429: RateLimitedError,
    500: ServerError,
    7000: ServerError,
    7001: ServerError,
    10002: InvalidFieldError,
    10105: LockedByAnotherTransactionError,
    10404: NotRegisteredError,
    20117: InsufficientBalanceError,
    20118: PinFormatError,
    20119: PinIncorrectError,
    20120: AmountLimitError,
    20124: FeeError,
    20125: RequestIdConflictError,
    20127: AmountLimitError,
    20131: WithdrawalMemoError,
    20134: AmountLimitError,
    20135: FeeError,
    20150: InvalidReceiversError,
    30102: InvalidAddressError,
    2000002: InputLockedError,
}


def error_for(code: int, description: str = "", extra: Any = None, *, request_id: str | None = None) -> MixinApiError:
    return _CLASSES.get(code, MixinApiError)(code, description, extra, request_id=request_id)
