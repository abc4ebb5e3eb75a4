"""The demo's simulated users: people who pay the bot by memo on the Mixin simulator, then stop.

The plan comes from the seed and the number of users, on a timeline in fractions of the run's
length: every user is created and funded at once (their balance is then noted: "before"); user 0
pays with a memo that is not one (refunded); user 1 funds one order in two payments (create,
then add); the others fund one order each, in the two pools in turn; later each member stops
(a small payment with a stop memo, returned with the payout). With an `operator` (one of the
config's `[funds] fee_payers`), the operator first pays the bot's fee float in ETH: Mixin takes
the network fee of an ERC-20 withdrawal (USDT going to the exchange) in ETH, from that float.

Durable and resumable: the plan's start time and every action's intent and completion are kept
in `DIR/crowd.json` (written atomically). A restarted demo carries on from there; an action
whose intent was written but not its completion is checked against the simulator before it is
done again (a payment: is the bot's snapshot with that payer and memo there?), so nothing is paid
twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from mixmaker.engine.logs import event
from mixmaker.funds.assets import AssetMap
from mixmaker.mixin.amounts import to_units as mixin_units
from mixmaker.mixin.client import MixinClient
from mixmaker.money import to_decimal
from mixmaker.sim import statefile
from mixmaker.users import memo as m

log = logging.getLogger("mixmaker.crowd")

FILE = "crowd.json"
FORMAT = 1
NAMESPACE = uuid.UUID("0b7f6c8e-2d1a-4c3b-9e5f-7a6d5c4b3a21")
WALLET = {"BTC": Decimal("1"), "USDT": Decimal("5000")}  # each user's balance before paying
STOP_PAYMENT = ("USDT", Decimal("1"))
OPERATOR_WALLET = {"ETH": Decimal("1")}
FEE_FLOAT = ("ETH", Decimal("0.05"))  # the operator's payment into bot:fees


@dataclass(frozen=True)
class Payment:
    key: str  # the action's durable key
    at: float  # fraction of the run
    asset: str
    amount: Decimal
    memo: bytes


@dataclass
class Person:
    index: int
    user_id: str
    name: str
    order_id: str | None
    pool: str | None  # preset name
    payments: list[Payment] = field(default_factory=list)
    stop: Payment | None = None
    wallet: dict[str, Decimal] = field(default_factory=lambda: dict(WALLET))  # funded at the start
    operator: bool = False  # pays the fee float, has no order


def plan(seed: int, users: int, market: str, presets: tuple[str, str], operator: str | None = None) -> list[Person]:
    """Who pays what and when. Needs at least 3 users (a refund, and both pools); the operator
    (if any) comes last and pays the fee float at once."""
    if users < 3:
        raise ValueError("the demo needs at least 3 users: one refunded, and members in both pools")
    rng = random.Random(seed)
    people = []
    if operator is not None:
        op = Person(users, operator, "operator", None, None, wallet=dict(OPERATOR_WALLET), operator=True)
        op.payments.append(Payment("fee-float", 0.0, FEE_FLOAT[0], FEE_FLOAT[1], b"fee float"))
    for i in range(users):
        uid = str(uuid.uuid5(NAMESPACE, f"{seed}:user:{i}"))
        if i == 0:
            p = Person(i, uid, f"user{i}", None, None)
            p.payments.append(Payment(f"pay:{i}:0", 0.05, "USDT", Decimal("50"), b"please make me rich"))
            people.append(p)
            continue
        oid = str(uuid.uuid5(NAMESPACE, f"{seed}:order:{i}"))
        preset = presets[(i - 1) % 2]
        btc = to_decimal(rng.randrange(400, 2000), 5)  # 0.004 .. 0.02 BTC
        usdt = Decimal(rng.randrange(200, 1200))
        at = 0.05 + 0.2 * rng.random()
        p = Person(i, uid, f"user{i}", oid, preset)
        if i == 1:  # one order in two payments: a create, then an add
            create = m.CreateMemo(oid, market, preset, mixin_units(btc), mixin_units(usdt))
            p.payments.append(Payment(f"pay:{i}:0", at, "BTC", btc, m.to_extra(create)))
            p.payments.append(Payment(f"pay:{i}:1", at + 0.1, "USDT", usdt, m.to_extra(m.AddMemo(oid))))
        else:
            kind = rng.choice(("both", "base", "quote"))
            b = btc if kind in ("both", "base") else Decimal(0)
            q = usdt if kind in ("both", "quote") else Decimal(0)
            create = m.CreateMemo(oid, market, preset, mixin_units(b), mixin_units(q))
            for j, (asset, amount) in enumerate((("BTC", b), ("USDT", q))):
                if amount:
                    p.payments.append(Payment(f"pay:{i}:{j}", at + 0.02 * j, asset, amount, m.to_extra(create)))
        stop_at = 0.6 + 0.3 * (i - 1) / max(1, users - 2)
        p.stop = Payment(f"stop:{i}", stop_at, STOP_PAYMENT[0], STOP_PAYMENT[1], m.to_extra(m.StopMemo(oid)))
        people.append(p)
    if operator is not None:
        people.append(op)
    return people


class Crowd:
    """Plays the plan against the Mixin simulator, durably."""

    def __init__(self, folder: Path, people: list[Person], assets: AssetMap, mixin_url: str, bot: MixinClient,
                 *, duration_s: float, seed: int) -> None:
        self.path = Path(folder) / FILE
        self.people = people
        self.assets = assets
        self.mixin_url = mixin_url.rstrip("/")
        self.bot = bot
        self.duration_s = duration_s
        doc = statefile.read(self.path)
        if doc is None:
            doc = {"format": FORMAT, "seed": seed, "users": len(people), "duration_s": duration_s,
                   "started_at": time.time(), "done": [], "intents": [], "before": {}, "after": {}}
            statefile.write_atomic(self.path, doc)
        elif (doc.get("seed"), doc.get("users")) != (seed, len(people)):
            raise ValueError(f"{self.path}: a run of seed {doc.get('seed')} with {doc.get('users')} users is here; "
                             "resume it with the same --seed and --users, or use another --state folder")
        self.doc: dict[str, Any] = doc
        self.done: set[str] = set(doc["done"])
        self._http: aiohttp.ClientSession | None = None

    @classmethod
    def existing(cls, folder: Path) -> dict[str, Any] | None:
        return statefile.read(Path(folder) / FILE)

    # --- time ---------------------------------------------------------------------------------

    @property
    def started_at(self) -> float:
        return float(self.doc["started_at"])

    def elapsed_s(self) -> float:
        return time.time() - self.started_at

    def fraction(self) -> float:
        return self.elapsed_s() / float(self.doc["duration_s"])

    @property
    def stops_done(self) -> bool:
        return all(p.stop is None or p.stop.key in self.done for p in self.people)

    @property
    def payments_done(self) -> bool:
        return all(pay.key in self.done for p in self.people for pay in p.payments)

    # --- acting -------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        async with self._http.post(f"{self.mixin_url}{path}", json=body) as r:
            doc = await r.json(content_type=None)
            if r.status != 200 or "data" not in doc:
                raise RuntimeError(f"the Mixin simulator refused {path}: {r.status} {doc}")
            return doc["data"]

    def _save(self) -> None:
        self.doc["done"] = sorted(self.done)
        statefile.write_atomic(self.path, self.doc)

    def _intend(self, key: str) -> bool:
        """Records the intent; True if it had been recorded before (a crash may have done it)."""
        if key in self.doc["intents"]:
            return True
        self.doc["intents"].append(key)
        self._save()
        return False

    def _did(self, key: str) -> None:
        self.done.add(key)
        self._save()

    async def balances(self, user_id: str) -> dict[str, str]:
        """A user's balance per asset symbol, as the simulator holds it."""
        got = await self._post("/_sim/balances", {"user_id": user_id})
        return {spec.symbol: got.get(spec.mixin_asset_id, "0") for spec in self.assets}

    async def act(self) -> list[str]:
        """Does whatever is due now; returns what it did."""
        did = []
        now = self.fraction()
        for p in self.people:
            did += await self._setup(p)
            for pay in [*p.payments, *([p.stop] if p.stop else [])]:
                if pay.key not in self.done and now >= pay.at:
                    await self._pay(p, pay)
                    did.append(pay.key)
        return did

    async def _setup(self, p: Person) -> list[str]:
        did = []
        key = f"user:{p.index}"
        if key not in self.done:
            await self._post("/_sim/users", {"user_id": p.user_id, "full_name": p.name})
            self._did(key)
            did.append(key)
        for asset, amount in p.wallet.items():
            key = f"fund:{p.index}:{asset}"
            if key in self.done:
                continue
            again = self._intend(key)
            if not (again and Decimal((await self.balances(p.user_id))[asset]) > 0):
                await self._post("/_sim/deposits", {"user_id": p.user_id, "asset_id": self.assets.symbol(asset).mixin_asset_id,
                                                    "amount": str(amount)})
            self._did(key)
            did.append(key)
        if p.user_id not in self.doc["before"]:
            self.doc["before"][p.user_id] = await self.balances(p.user_id)
            self._save()
        return did

    async def _pay(self, p: Person, pay: Payment) -> None:
        again = self._intend(pay.key)
        spec = self.assets.symbol(pay.asset)
        if again and await self._seen(p, pay):
            self._did(pay.key)
            return
        await self._post("/_sim/transfers", {"from": p.user_id, "to": self.bot.keystore.app_id,
                                             "asset_id": spec.mixin_asset_id, "amount": str(pay.amount),
                                             "memo_hex": pay.memo.hex()})
        self._did(pay.key)
        event(log, f"{p.name} pays {pay.amount} {pay.asset}", ids={"user_order": p.order_id or ""},
              memo=pay.memo[:60].decode(errors="replace"))

    async def _seen(self, p: Person, pay: Payment) -> bool:
        """The bot already has this payment (its payer, memo and amount)."""
        units = mixin_units(pay.amount)
        for s in await self.bot.snapshots(opponent=p.user_id, order="DESC", limit=500):
            if s.units == units and s.memo == pay.memo:
                return True
        return False

    @property
    def operators(self) -> set[str]:
        return {p.user_id for p in self.people if p.operator}

    async def note_after(self) -> dict[str, dict[str, str]]:
        for p in self.people:
            self.doc["after"][p.user_id] = await self.balances(p.user_id)
        self._save()
        after: dict[str, dict[str, str]] = self.doc["after"]
        return after

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
