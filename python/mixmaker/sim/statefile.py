"""A simulator's durable state: one JSON document replaced atomically (write a temporary file in
the same folder, fsync it, rename it over the old one, fsync the folder), so a reader or a
restarted process sees either the previous state or the new one, never half of one."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from mixmaker.errors import MixmakerError


class StateFileError(MixmakerError):
    """A state file that exists but cannot be read back: refuse to start rather than begin empty."""


def write_atomic(path: Path, document: Any, *, mode: int = 0o600) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path: Path) -> Any | None:
    """The document at `path`, or None if there is none yet."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise StateFileError(f"{path}: not a readable state file ({e}); move it away to start afresh") from None
