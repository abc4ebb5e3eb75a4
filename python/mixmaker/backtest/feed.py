"""The backtest feed: a recording of `<ts_ns> <json>` lines (hftbacktest's collector), read in
one pass in Rust into a `Tape` (every line's time and kind in columns, book messages parsed to
integers, trades as integers, bookTickers kept only when asked for).

A tape is cached on disk so repeated runs skip decompressing and parsing: beside the recording
(`<file>.mmtape`) when that folder is writable, else in `$MIXMAKER_CACHE` (default
`~/.cache/mixmaker/tapes`). It is used only while it matches the recording's path, size and
modification time and the venue rule and decimals; `mixmaker backtest --prepare` writes it ahead.
A process keeps the last tapes it loaded (`KEPT_TAPES_MAX`) while their files are unchanged, so
the runs of a sweep's worker read the file once.
Containers are detected by `mixmaker.replay.open_recording`."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mixmaker.replay import Recording, VenueSpec, open_recording
from mixmaker.replay.errors import UnreadableRecordingError

TAPE_SUFFIX = ".mmtape"
TAPE_FORMAT = "mmtape-1"


class UntimedRecordingError(UnreadableRecordingError):
    """A backtest needs each message's time; this recording's lines carry none."""


@dataclass
class TimedFeed:
    recording: Recording
    size: int  # bytes on disk
    position: int = 0  # bytes of the file consumed so far (the line-by-line reader)
    cache: bool = True  # read and write the tape cache
    tape_source: str = field(default="", init=False)  # "cache" or "recording": where the last tape came from

    @property
    def path(self) -> Path:
        return self.recording.path

    def tape(self, spec: VenueSpec, *, keep_tickers: bool = False) -> Any:
        """The recording as a `mixmaker._core.Tape` for `spec`: from a fresh cache, or read now
        (and cached, unless `cache` is off)."""
        from mixmaker._core import Tape

        fp = self.fingerprint(spec, keep_tickers)
        if self.cache:
            for where in cache_paths(self.path):
                key = _tape_file_key(fp, where)
                if key is None:
                    continue
                kept = _kept_tape(key)
                if kept is not None:
                    self.tape_source = "cache"
                    return kept
                try:
                    if Tape.read_source(str(where)) == fp:
                        tape, _ = Tape.load(str(where))
                        _keep_tape(key, tape)
                        self.tape_source = "cache"
                        return tape
                except (OSError, ValueError):
                    pass  # unreadable or stale: rebuilt below
        tape = self.read(spec, keep_tickers=keep_tickers)
        self.tape_source = "recording"
        if self.cache:
            saved = self.save(tape, spec, keep_tickers=keep_tickers)
            key = _tape_file_key(fp, saved) if saved is not None else None
            if key is not None:
                _keep_tape(key, tape)
        return tape

    def read(self, spec: VenueSpec, *, keep_tickers: bool = False) -> Any:
        """Read the recording itself (no cache) into a Tape."""
        from mixmaker._core import Tape

        rec = self.recording
        try:
            if rec.container == "zip":
                with zipfile.ZipFile(rec.path) as z:
                    data = z.read(rec.member or "")
                tape = Tape.from_bytes(data, spec.rule, spec.price_decimals, spec.size_decimals, keep_tickers)
            else:
                tape = Tape.build(str(rec.path), spec.rule, spec.price_decimals, spec.size_decimals, keep_tickers)
        except ValueError as e:
            if getattr(e, "kind", None) == "untimed":
                raise UntimedRecordingError(rec.path, str(e)) from None
            raise UnreadableRecordingError(rec.path, str(e)) from None
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise UnreadableRecordingError(rec.path, str(e)) from e
        self.position = self.size
        return tape

    def save(self, tape: Any, spec: VenueSpec, *, keep_tickers: bool = False) -> Path | None:
        """Write the tape to the first writable cache place; None if there is none."""
        fp = self.fingerprint(spec, keep_tickers)
        for where in cache_paths(self.path):
            try:
                where.parent.mkdir(parents=True, exist_ok=True)
                tmp = where.with_name(f".{where.name}.{os.getpid()}.tmp")
                tape.save(str(tmp), fp)
                os.replace(tmp, where)
                return where
            except OSError:
                try:
                    tmp.unlink(missing_ok=True)
                except (OSError, UnboundLocalError):
                    pass
                continue
        return None

    def fingerprint(self, spec: VenueSpec, keep_tickers: bool) -> bytes:
        st = self.path.stat()
        return (f"{TAPE_FORMAT}|{self.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{spec.rule.value}|"
                f"{spec.price_decimals}|{spec.size_decimals}|tickers={int(keep_tickers)}").encode()

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """(receive time, raw JSON) of each line, in Python (the tape is the fast path)."""
        rec = self.recording
        with open(rec.path, "rb") as raw:
            if rec.container == "gzip":
                f: IO[bytes] = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]  # a GzipFile reads bytes
            elif rec.container == "zip":
                f = zipfile.ZipFile(raw).open(rec.member or "")
            else:
                f = raw
            for lineno, line in enumerate(f, 1):
                sp = line.find(b" ")
                if sp <= 0 or not line[:sp].isdigit():
                    raise UntimedRecordingError(rec.path, f"line {lineno} has no `<ts_ns> ` prefix")
                if not lineno & 1023:
                    self.position = raw.tell()
                yield int(line[:sp]), line[sp + 1:].rstrip(b"\r\n")
        self.position = self.size


# Tapes loaded in this process, by (fingerprint, tape file, its size, mtime and inode), most
# recently used last: a process that runs many backtests of one recording (a sweep's worker, a
# notebook, a benchmark) reads its tape once. A tape is immutable; the key changes whenever the
# recording or the tape file does, so what is kept is exactly what the file would give.
_KEPT_TAPES: OrderedDict[tuple[bytes, str, int, int, int], Any] = OrderedDict()
KEPT_TAPES_MAX = 2


def _tape_file_key(fp: bytes, where: Path) -> tuple[bytes, str, int, int, int] | None:
    try:
        st = where.stat()
    except OSError:
        return None
    return (fp, str(where), st.st_size, st.st_mtime_ns, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _kept_tape(key: tuple[bytes, str, int, int, int]) -> Any:
    tape = _KEPT_TAPES.get(key)
    if tape is not None:
        _KEPT_TAPES.move_to_end(key)
    return tape


def _keep_tape(key: tuple[bytes, str, int, int, int], tape: Any) -> None:
    _KEPT_TAPES[key] = tape
    _KEPT_TAPES.move_to_end(key)
    while len(_KEPT_TAPES) > KEPT_TAPES_MAX:
        _KEPT_TAPES.popitem(last=False)


def cache_paths(recording: Path) -> list[Path]:
    """Where a recording's tape may live, in order of preference."""
    home = Path(os.environ.get("MIXMAKER_CACHE") or Path.home() / ".cache" / "mixmaker" / "tapes")
    tag = hashlib.sha256(str(recording.resolve()).encode()).hexdigest()[:12]
    out = []
    if _writable(recording.parent):
        out.append(recording.with_name(recording.name + TAPE_SUFFIX))
    out.append(home / f"{recording.name}-{tag}{TAPE_SUFFIX}")
    return out


def _writable(folder: Path) -> bool:
    """Writable by its mode bits and for us: root may write anywhere, but a folder made read-only
    (a shared data set) is left alone."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(folder, os.W_OK)


def open_feed(path: str | Path, *, cache: bool = True) -> TimedFeed:
    rec = open_recording(path)
    return TimedFeed(rec, rec.path.stat().st_size, cache=cache)


def prepare(path: str | Path, spec: VenueSpec | None = None) -> tuple[Path | None, Any]:
    """Read a recording into a tape and write it to the cache: (where, tape)."""
    feed = open_feed(path)
    spec = spec or feed.recording.detect_venue()
    tape = feed.read(spec)
    return feed.save(tape, spec), tape
