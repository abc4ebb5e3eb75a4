"""Mixin times: RFC 3339 with up to nanoseconds, kept as integer nanoseconds (never as floats
or milliseconds, which would lose the cursor's precision)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def parse_rfc3339_ns(text: str) -> int:
    m = _RFC3339.match(text or "")
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, frac, tz = m.groups()
    dt = datetime.fromisoformat(base + ("+00:00" if tz == "Z" else tz))
    return int(dt.timestamp()) * 1_000_000_000 + int((frac or "").ljust(9, "0"))


def format_rfc3339_ns(ns: int) -> str:
    """Fixed nine fraction digits, UTC: the form we send as a cursor."""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
