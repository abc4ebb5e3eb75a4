"""How the engine reaches its venues: the Mixin API (URL, keystore) and each exchange account
(endpoints, credentials). A live run takes them from the config (keystore file, keys from the
environment or a keys file); `--paper` from the simulators' sims.json, with everything else of
the config unchanged, so both run the same code."""

from __future__ import annotations

from dataclasses import dataclass

from mixmaker.connectors.binance import LIVE, BinanceEndpoints, BinanceSpotConnector
from mixmaker.connectors.credentials import ApiCredentials
from mixmaker.engine.config import EngineConfig, Mode
from mixmaker.engine.errors import EngineError
from mixmaker.engine.logs import REDACT
from mixmaker.engine.secrets import exchange_keys, load_keystore
from mixmaker.engine.sims import Sims
from mixmaker.mixin.keystore import Keystore


@dataclass(frozen=True, repr=False)
class ExchangeLink:
    account: str  # the config's name: the ledger's exchange account and the connector's venue name
    endpoints: BinanceEndpoints
    credentials: ApiCredentials

    def connector(self) -> BinanceSpotConnector:
        return BinanceSpotConnector(self.credentials, self.endpoints, name=self.account)


@dataclass(frozen=True, repr=False)
class Links:
    mode: Mode
    mixin_url: str
    keystore: Keystore
    exchanges: dict[str, ExchangeLink]
    sims: Sims | None = None

    def __repr__(self) -> str:
        return f"Links({self.mode.value}, mixin={self.mixin_url}, exchanges={sorted(self.exchanges)})"


def _register_secrets(keystore: Keystore, creds: list[ApiCredentials]) -> None:
    for c in creds:
        REDACT.add_masker(c.redact)
    for s in (keystore.session_private_key, keystore.spend_private_key):
        if s is not None:
            REDACT.add(s.reveal().hex())


def live_links(cfg: EngineConfig) -> Links:
    if cfg.mixin.keystore is None:
        raise EngineError("mixin.keystore: a live run needs the bot's keystore")
    keystore = load_keystore(cfg.mixin.keystore)
    exchanges = {}
    for name, ex in cfg.exchanges.items():
        endpoints = LIVE
        if ex.rest_url and ex.ws_market_url and ex.ws_api_url:
            endpoints = BinanceEndpoints(ex.rest_url, ex.ws_market_url, ex.ws_api_url)
        try:
            creds = exchange_keys(ex)
        except ValueError as e:
            raise EngineError(f"exchanges.{name}: {e}") from None
        exchanges[name] = ExchangeLink(name, endpoints, creds)
    _register_secrets(keystore, [x.credentials for x in exchanges.values()])
    return Links(Mode.LIVE, cfg.mixin.url, keystore, exchanges)


def paper_links(cfg: EngineConfig, sims: Sims) -> Links:
    """Every exchange account of the config trades on the simulator's one account."""
    keystore = sims.bot_keystore()
    exchanges = {name: ExchangeLink(name, sims.endpoints, sims.credentials()) for name in cfg.exchanges}
    _register_secrets(keystore, [x.credentials for x in exchanges.values()])
    return Links(Mode.PAPER, sims.mixin_url, keystore, exchanges, sims)
