"""`mixmaker sim mixin`: a server in its own process, a keystore for its bot, and the /_sim
scripting endpoints a demo uses to make a simulated user pay the bot with a memo."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import urllib.request

from mixin_world import run

from mixmaker.mixin import Keystore, MixinClient
from mixmaker.mixin.snapshots import SnapshotReader
from mixmaker.sim.mixin.setup import BTC
from mixmaker.store import SqliteStore


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_sim_mixin_command_serves_a_bot_and_scripted_users(tmp_path):
    ks_path = tmp_path / "ks.json"
    proc = subprocess.Popen([sys.executable, "-m", "mixmaker.cli", "sim", "mixin", "--port", "0", "--seed", "3",
                             "--keystore-out", str(ks_path)], stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for _ in range(5):
            line = proc.stderr.readline()
            m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "the server did not report its address"
        assert stat.S_IMODE(os.stat(ks_path).st_mode) == 0o600
        ks = Keystore.from_file(ks_path)
        alice = _post(url + "/_sim/users", {"full_name": "alice"})["data"]["user_id"]
        _post(url + "/_sim/deposits", {"user_id": alice, "asset_id": BTC, "amount": "1"})
        sent = _post(url + "/_sim/transfers", {"from": alice, "to": ks.app_id, "asset_id": BTC, "amount": "0.3",
                                               "memo_hex": b"MM:order-9".hex()})["data"]
        assert sent["amount"] == "0.3" and sent["user_id"] == ks.app_id
        bad = _post(url + "/_sim/transfers", {"from": alice, "to": ks.app_id, "asset_id": BTC, "amount": "5"})
        assert bad["error"]["code"] == 20117

        got = []

        async def main():
            async with MixinClient(ks, url) as c:
                await SnapshotReader(c, SqliteStore()).poll(lambda tx, s: got.append(s))

        run(main())
        assert [(str(s.amount), s.memo, s.opponent_id) for s in got] == [("0.30000000",
                                                                         b"MM:order-9", alice)]
    finally:
        proc.terminate()
        proc.wait(10)


def test_sim_mixin_refuses_a_bad_port():
    r = subprocess.run([sys.executable, "-m", "mixmaker.cli", "sim", "mixin", "--port", "70000"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--port" in r.stderr
