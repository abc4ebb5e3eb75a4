"""SIGINT/SIGTERM for a long-running command: the first asks for a graceful stop (an event the
command waits on), the second exits at once, leaving the state the next start reconciles."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    def __init__(self, what: str = "mixmaker") -> None:
        self.what = what
        self.stop = asyncio.Event()
        self.count = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> StopSignals:
        self._loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def _on_signal(self, sig: signal.Signals) -> None:
        self.count += 1
        if self.count == 1:
            print(f"{self.what}: {sig.name}: stopping (quoting stops, open orders are cancelled); "
                  "again to exit at once", file=sys.stderr, flush=True)
            self.stop.set()
            return
        print(f"{self.what}: {sig.name} again: exiting now; the next start reconciles", file=sys.stderr, flush=True)
        os._exit(130)

    def exit_at_once(self) -> None:
        """From now on (the event loop gone, the process winding down after a stop) a signal exits
        at once too, without a traceback from wherever the interpreter was."""

        def now(sig: int, _frame: object) -> None:
            print(f"{self.what}: {signal.Signals(sig).name}: exiting now", file=sys.stderr, flush=True)
            os._exit(130)

        for sig in SIGNALS:
            signal.signal(sig, now)

    def remove(self) -> None:
        if self._loop is not None:
            for sig in SIGNALS:
                self._loop.remove_signal_handler(sig)
            self._loop = None
