"""Replay recorded (or synthetic) exchange feeds through the Rust BookSync.

    rec = open_recording("binance_usdm_btcusdt_20240808_hftbacktest.gz")
    result = replay(rec.messages(), rec.detect_venue(), source=rec.path.name)

Modules: `recording` reads files, `venue` detects the rule and decimals, `synthetic` builds a
feed with no data files, `runner` drives a BookSync, `ticker_check` is the bookTicker oracle,
`report` renders results.
"""

from mixmaker.replay.detect import RULES, VenueSpec
from mixmaker.replay.errors import (
    BookSettingsError,
    CoreNotBuiltError,
    RecordingNotFoundError,
    ReplayError,
    UnknownVenueError,
    UnreadableRecordingError,
)
from mixmaker.replay.recording import Recording, open_recording
from mixmaker.replay.runner import ReplayResult, is_rest_snapshot, new_sync, replay, route
from mixmaker.replay.synthetic import SyntheticFeed, synthetic_feed

__all__ = [
    "RULES",
    "BookSettingsError",
    "CoreNotBuiltError",
    "Recording",
    "RecordingNotFoundError",
    "ReplayError",
    "ReplayResult",
    "SyntheticFeed",
    "UnknownVenueError",
    "UnreadableRecordingError",
    "VenueSpec",
    "is_rest_snapshot",
    "new_sync",
    "open_recording",
    "replay",
    "route",
    "synthetic_feed",
]
