"""Where `--paper` finds the simulators: the `sims.json` that `mixmaker sim all --state DIR` writes
(URLs, the bot's keystore, the exchange account and its API key), and the command that starts
them, shared by the demo and the tests so both start the world the same way.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from mixmaker.connectors.binance import BinanceEndpoints
from mixmaker.connectors.credentials import ApiCredentials
from mixmaker.engine.errors import SimsNotFoundError
from mixmaker.mixin.keystore import Keystore

SIMS_FILE = "sims.json"
LOCK_FILE = "lock"


@dataclass(frozen=True, repr=False)
class Sims:
    """What a running `sim all` says about itself."""

    folder: Path
    mixin_url: str
    keystore: dict[str, str]  # the bot's, as the dashboard gives it (secret: never printed)
    rest_url: str
    ws_url: str
    account: str  # the bot's account name inside the exchange simulator
    api_key: str
    api_secret: SecretStr
    chain_url: str
    pid: int

    @property
    def endpoints(self) -> BinanceEndpoints:
        return BinanceEndpoints(self.rest_url, self.ws_url, f"{self.ws_url}/ws-api/v3")

    def credentials(self) -> ApiCredentials:
        return ApiCredentials(self.api_key, self.api_secret.get_secret_value())

    def bot_keystore(self) -> Keystore:
        return Keystore.from_dict(self.keystore)

    @property
    def app_id(self) -> str:
        return self.keystore["app_id"]

    def __repr__(self) -> str:
        return f"Sims(folder={self.folder}, mixin={self.mixin_url}, exchange={self.rest_url}, pid={self.pid})"


def sims_file(path: Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".json" else path / SIMS_FILE


def read_sims(path: Path) -> Sims:
    """`path`: the state folder of `sim all`, or its sims.json."""
    f = sims_file(path)
    try:
        d = json.loads(f.read_text())
        ex, mx = d["exchange"], d["mixin"]
        return Sims(f.parent, mx["url"], dict(mx["keystore"]), ex["rest_url"], ex["ws_url"], ex["account"],
                    ex["api_key"], SecretStr(ex["api_secret"]), d.get("chain", {}).get("url", ""), int(d.get("pid", 0)))
    except FileNotFoundError:
        raise SimsNotFoundError(f"{f}: not there; start the simulators first: "
                                f"`mixmaker sim all --state {f.parent}`") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SimsNotFoundError(f"{f}: not a sims.json of `mixmaker sim all` ({type(e).__name__})") from None


def folder_in_use(folder: Path) -> bool:
    """True while a `sim all` holds the folder's lock (it runs)."""
    lock = Path(folder) / LOCK_FILE
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


async def reachable(sims: Sims, timeout_s: float = 2.0) -> bool:
    """Both simulators answer."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
            async with http.get(f"{sims.rest_url}/api/v3/ping") as r:
                if r.status != 200:
                    return False
            async with http.post(f"{sims.mixin_url}/_sim/balances", json={"user_id": sims.app_id}) as r:
                return r.status == 200
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


async def wait_for_sims(folder: Path, timeout_s: float = 60.0) -> Sims:
    """The sims of `folder` once a `sim all` runs there and both simulators answer."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    last = "no sims.json yet"
    while loop.time() < end:
        if folder_in_use(sims_file(folder).parent):
            try:
                sims = read_sims(folder)
                if await reachable(sims):
                    return sims
                last = "the simulators do not answer yet"
            except SimsNotFoundError as e:
                last = str(e)
        else:
            last = "no `mixmaker sim all` runs on this folder"
        await asyncio.sleep(0.2)
    raise SimsNotFoundError(f"{folder}: {last} (waited {timeout_s:.0f} s)")


def sim_all_command(state: Path, *, seed: int, feed: str = "synthetic") -> list[str]:
    """The simulators as the demo starts them (and the paper tests, the same way): the chain
    between them carries the moves (a withdrawal on one side is a deposit on the other after a
    couple of seconds and two confirmations), and both venues take their usual withdrawal fees
    (Mixin's in the asset or, for an ERC-20 token, in ETH; the exchange's per network)."""
    return [sys.executable, "-m", "mixmaker.cli", "sim", "all", "--state", str(state), "--seed", str(seed),
            "--feed", feed, "--symbols", "BTCUSDT", "--send-delay", "1", "--block-time", "0.5",
            "--confirmations", "2"]


def sim_env() -> dict[str, Any]:
    return dict(os.environ)
