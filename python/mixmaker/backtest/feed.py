"""The backtest feed: each message of a recording with its local receive time, and how far
into the file the reader is (for the progress bar). Containers are detected by
`mixmaker.replay.open_recording`; lines are `<ts_ns> <json>` (hftbacktest's collector)."""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from mixmaker.replay import Recording, open_recording
from mixmaker.replay.errors import UnreadableRecordingError


class UntimedRecordingError(UnreadableRecordingError):
    """A backtest needs each message's time; this recording's lines carry none."""


@dataclass
class TimedFeed:
    recording: Recording
    size: int  # bytes on disk
    position: int = 0  # bytes of the file consumed so far

    @property
    def path(self) -> Path:
        return self.recording.path

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        rec = self.recording
        with open(rec.path, "rb") as raw:
            if rec.container == "gzip":
                f: IO[bytes] = gzip.GzipFile(fileobj=raw)
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


def open_feed(path: str | Path) -> TimedFeed:
    rec = open_recording(path)
    return TimedFeed(rec, rec.path.stat().st_size)
