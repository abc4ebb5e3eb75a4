"""The people of the end-to-end funds flow, acting on the Mixin simulator over its HTTP scripting
endpoints (so the same driver serves a simulator in this process or in `mixmaker sim all`), and
what the bot's wallet shows of them through the real Mixin client."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from funds_checks import ASSETS

from mixmaker.mixin import Keystore, MixinClient
from mixmaker.mixin.amounts import to_units
from mixmaker.users import memo as m

MARKET = "binance:BTC/USDT"


async def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, json=body) as r:
        doc = await r.json(content_type=None)
        assert r.status == 200 and "data" in doc, doc
        return doc["data"]


@dataclass
class People:
    mixin_url: str
    bot: str
    operator: str = ""
    users: dict[str, str] = field(default_factory=dict)
    orders: dict[str, str] = field(default_factory=dict)  # name -> order id

    @classmethod
    async def new(cls, sims: dict[str, Any], names: tuple[str, ...] = ("u1", "u2", "u3", "u4")) -> People:
        p = cls(sims["mixin"]["url"], sims["mixin"]["keystore"]["app_id"])
        p.operator = (await _post(f"{p.mixin_url}/_sim/users", {"full_name": "operator"}))["user_id"]
        await _post(f"{p.mixin_url}/_sim/deposits", {"user_id": p.operator, "asset_id": ASSETS["ETH"], "amount": "1"})
        for name in names:
            uid = (await _post(f"{p.mixin_url}/_sim/users", {"full_name": name}))["user_id"]
            p.users[name] = uid
            for sym, amount in (("BTC", "1"), ("USDT", "5000")):
                await _post(f"{p.mixin_url}/_sim/deposits", {"user_id": uid, "asset_id": ASSETS[sym], "amount": amount})
        return p

    async def pay(self, who: str, sym: str, amount: str, extra: bytes = b"") -> None:
        sender = self.operator if who == "operator" else self.users[who]
        await _post(f"{self.mixin_url}/_sim/transfers", {"from": sender, "to": self.bot, "asset_id": ASSETS[sym],
                                                         "amount": amount, "memo_hex": extra.hex()})

    def order(self, name: str) -> str:
        return self.orders.setdefault(name, str(uuid.uuid4()))

    async def create(self, who: str, name: str, sym: str, amount: str, *, preset: str, base: str = "0",
                     quote: str = "0") -> None:
        memo = m.CreateMemo(self.order(name), MARKET, preset, to_units(base), to_units(quote))
        await self.pay(who, sym, amount, m.to_extra(memo))

    async def add(self, who: str, name: str, sym: str, amount: str) -> None:
        await self.pay(who, sym, amount, m.to_extra(m.AddMemo(self.order(name))))

    async def stop(self, who: str, name: str, sym: str = "USDT", amount: str = "1") -> None:
        await self.pay(who, sym, amount, m.to_extra(m.StopMemo(self.order(name))))

    async def standard_flow_payments(self) -> None:
        """u1: a bad memo (refunded); u2: one order in two payments (tight); u3: BTC only (tight);
        u4: both assets (wide). The operator funds the bot's fee float in ETH."""
        await self.pay("operator", "ETH", "0.1")
        await self.pay("u1", "USDT", "50", b"not a memo at all")
        await self.create("u2", "o2", "USDT", "360", preset="tight", quote="600")
        await self.create("u3", "o3", "BTC", "0.012", preset="tight", base="0.012")
        await self.create("u4", "o4", "BTC", "0.01", preset="wide", base="0.01", quote="600")
        await self.add("u2", "o2", "USDT", "240")
        await self.add("u4", "o4", "USDT", "600")

    async def standard_flow_stops(self) -> None:
        await self.stop("u3", "o3")
        await self.stop("u2", "o2")
        await self.stop("u4", "o4", "BTC", "0.0001")

    async def observed(self, keystore: dict[str, str]) -> tuple[Counter[str], Counter[str], Counter[str]]:
        """From the bot's own snapshots: what the people paid it, what it sent them back, and how
        many transfers it sent per (user, request id) and withdrawals per ("withdrawal", request
        id) (each must be 1: nothing paid twice)."""
        people = {self.operator, *self.users.values()}
        symbol = {aid: sym for sym, aid in ASSETS.items()}
        paid, received, sends = Counter(), Counter(), Counter()
        async with MixinClient(Keystore.from_dict(keystore), self.mixin_url) as c:
            seen: set[str] = set()
            offset = 0
            while True:
                page = await c.snapshots(offset_ns=offset, limit=500, order="ASC")
                fresh = [s for s in page if s.snapshot_id not in seen]
                for s in fresh:
                    seen.add(s.snapshot_id)
                    if s.withdrawal is not None and s.units < 0:
                        sends[("withdrawal", s.request_id)] += 1
                        continue
                    if s.opponent_id not in people or s.asset_id not in symbol:
                        continue
                    if s.units > 0:
                        paid[symbol[s.asset_id]] += s.units
                    else:
                        received[symbol[s.asset_id]] += -s.units
                        sends[(s.opponent_id, s.request_id)] += 1
                if len(page) < 500 or not fresh:
                    break
                offset = page[-1].created_at_ns
        return paid, received, sends
