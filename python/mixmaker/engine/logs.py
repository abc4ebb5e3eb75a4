"""Structured logs: one event per line, human or JSON, with the ids that tie it to a user order,
a pool, an exchange order, a move, a Mixin request or a snapshot, and never a secret.

    with log_ids(user_order=o.order_id):     # every line logged inside carries it
        await worker.step(o.order_id)

- Ids come from a context variable (`log_ids`), set and reset by the engine around each step in
  its own task, so a layer's own log lines inside the step carry the step's ids (a coroutine that
  goes on as a task of its own takes a copy of them).
- `Redactor` replaces every registered secret (exchange API secrets, the keystore's keys) by
  `***` in the rendered line, whatever path it took there (a message, an argument, a traceback).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from mixmaker.engine.config import LogFormat

IDS = ("user_order", "pool", "order", "move", "request", "snapshot", "payout")
_IDS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("mixmaker_log_ids", default=None)


@contextlib.contextmanager
def log_ids(**ids: str | None) -> Iterator[None]:
    """Adds ids to every line logged inside (nested calls add to the outer ones)."""
    merged = {**(_IDS.get() or {}), **{k: v for k, v in ids.items() if v}}
    token = _IDS.set(merged)
    try:
        yield
    finally:
        _IDS.reset(token)


def current_ids() -> dict[str, str]:
    return dict(_IDS.get() or {})


class _IdsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_ids()
        extra = getattr(record, "ids", None)
        if isinstance(extra, dict):
            ids.update({k: str(v) for k, v in extra.items() if v})
        record.ids = ids
        return True


class Redactor:
    """The secrets a line must never show: strings, or maskers (an object that keeps its secret to
    itself, such as `ApiCredentials`, masks a line without handing the secret out)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._maskers: list[Callable[[str], str]] = []

    def add(self, *secrets: str | None) -> None:
        for s in secrets:
            if s and len(s) >= 6:  # a short string would mask ordinary words
                self._secrets.add(s)

    def add_masker(self, mask: Callable[[str], str]) -> None:
        self._maskers.append(mask)

    def __call__(self, text: str) -> str:
        for mask in self._maskers:
            text = mask(text)
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "***")
        return text


REDACT = Redactor()


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        t = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        ids = " ".join(f"{k}={v}" for k, v in sorted(getattr(record, "ids", {}).items()))
        line = f"{t} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if ids:
            line += f"  [{ids}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return REDACT(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": round(record.created, 6), "level": record.levelname.lower(),
                               "logger": record.name, "msg": record.getMessage()}
        doc.update(getattr(record, "ids", {}))
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update({k: v for k, v in fields.items() if k not in doc})
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return REDACT(json.dumps(doc, default=str, separators=(",", ":")))


def setup(fmt: LogFormat, level: str = "info", *, stream: TextIO | None = None) -> logging.Handler:
    """Sends mixmaker's (and ccxt's, aiohttp's) logs to `stream` (stderr) in `fmt`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.JSON else HumanFormatter())
    handler.addFilter(_IdsFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_mixmaker", False):
            root.removeHandler(h)
    handler._mixmaker = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def event(logger: logging.Logger, msg: str, *, level: int = logging.INFO, ids: dict[str, str] | None = None,
          **fields: Any) -> None:
    """A log line with ids and fields (JSON keys; appended as `k=v` in human logs' message)."""
    text = msg
    if fields:
        text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
    logger.log(level, "%s", text, extra={"ids": ids or {}, "fields": fields})
