"""Read a recorded feed and yield each message's raw JSON bytes.

Formats (told apart by magic bytes, not by file name):
- gzip or plain text, one `<local_ts_ns> <raw JSON>` per line (hftbacktest's collector);
- zip with a single member of JSON lines without a timestamp (Bybit's daily ob500 files).
A line that starts with `{` is taken as bare JSON, so both line shapes work in either container.
No JSON is parsed here: the payload goes to the Rust core as bytes.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from mixmaker.replay.detect import VenueSpec, detect, resolve
from mixmaker.replay.errors import RecordingNotFoundError, UnreadableRecordingError

Container = Literal["gzip", "zip", "plain"]

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Recording:
    path: Path
    container: Container
    member: str | None = None  # the zip member holding the lines

    def messages(self) -> Iterator[bytes]:
        """Raw JSON of every non-empty line, in file order."""
        lineno = 0
        try:
            with self._open() as f:
                for lineno, line in enumerate(f, 1):  # noqa: B007 (read by the except below)
                    if line[:1] != b"{":
                        # `<ts> <json>`: drop the timestamp. Anything else passes through
                        # untouched, so the sync counts it as unreadable instead of us guessing.
                        sp = line.find(b" ")
                        if sp > 0 and line[:sp].isdigit():
                            line = line[sp + 1 :]
                    line = line.rstrip(b"\r\n")
                    if line:
                        yield line
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
            raise UnreadableRecordingError(self.path, f"{e} (after line {lineno})") from e

    def detect_venue(
        self,
        rule: str | None = None,
        price_decimals: int | None = None,
        size_decimals: int | None = None,
    ) -> VenueSpec:
        """Venue rule and decimals from the content (file name as a fallback); flags win."""
        detected = None
        if rule is None or price_decimals is None or size_decimals is None:
            detected = detect(self.messages(), self.path.name)
        return resolve(detected, str(self.path), rule, price_decimals, size_decimals)

    @contextmanager
    def _open(self) -> Iterator[IO[bytes] | gzip.GzipFile]:
        if self.container == "gzip":
            with gzip.open(self.path, "rb") as f:
                yield f
        elif self.container == "zip":
            with zipfile.ZipFile(self.path) as z, z.open(self.member or "") as f:
                yield f
        else:
            with open(self.path, "rb") as f:
                yield f


def open_recording(path: str | Path) -> Recording:
    """Check the file and pick its container; typed errors for missing or unreadable files."""
    p = Path(path)
    if not p.exists():
        raise RecordingNotFoundError(p)
    if p.is_dir():
        raise UnreadableRecordingError(p, "it is a directory")
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise UnreadableRecordingError(p, e.strerror or str(e)) from e
    if not head:
        raise UnreadableRecordingError(p, "the file is empty")
    if head.startswith(GZIP_MAGIC):
        return Recording(p, "gzip")
    if head.startswith(ZIP_MAGIC):
        return Recording(p, "zip", _zip_member(p))
    return Recording(p, "plain")


def _zip_member(p: Path) -> str:
    try:
        with zipfile.ZipFile(p) as z:
            files = [i.filename for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as e:
        raise UnreadableRecordingError(p, f"bad zip archive: {e}") from e
    if len(files) != 1:
        raise UnreadableRecordingError(p, f"expected one member in the zip, found {len(files)}")
    return files[0]
