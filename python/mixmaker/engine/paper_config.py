"""The paper config as text, so the demo runs on exactly `examples/paper.toml` from an installed
wheel (a test keeps the two identical)."""

PAPER_TOML = '''# mixmaker paper trading: the same engine as a live run, against the local simulators.
#
#   mixmaker sim all --state sims/                   # exchange + Mixin + chain, in their own process
#   mixmaker run --paper examples/paper.toml         # finds them through sims/sims.json
#
# `mixmaker demo` runs on this file too (with its database in the demo's state folder).
# Relative paths are relative to the current directory. Numbers are read exactly as written.

[engine]
database = "mixmaker-state/paper.db"
metrics_host = "127.0.0.1"
metrics_port = 9108            # Prometheus /metrics and /health; 0 = any free port
log_format = "human"           # or "json": one object per line
log_level = "info"
tick_s = 0.5                   # the strategies' clock
intake_poll_s = 0.5            # Mixin snapshots read this often
worker_interval_s = 0.5        # user orders and payouts driven this often
tracker_poll_s = 2
connect_timeout_s = 60         # a venue that does not answer at start for this long: the run stops
sample_interval_s = 1          # the run report's samples (price, quotes, inventory, pool value)
stop_timeout_s = 20

[paper]
sims = "sims"                  # the folder of `mixmaker sim all --state DIR` (or its sims.json)

[mixin]
# In paper mode the keystore and the URL come from sims.json.
url = "https://api.mixin.one"

[exchanges.binance]
kind = "binance"               # paper: the simulator's URLs and API key from sims.json

[assets.BTC]
mixin_asset_id = "c6d0c728-2624-429b-8e0d-d9d19b6592fa"
decimals = 8
venues.binance = { currency = "BTC", network = "BTC" }

[assets.USDT]
mixin_asset_id = "4d8c508b-91c5-375b-92b0-ee702ed2dac5"   # USDT (ERC-20)
decimals = 8
venues.binance = { currency = "USDT", network = "ETH" }

# Not traded: Mixin takes the network fee of an ERC-20 withdrawal in ETH, paid from the bot's fee
# float (bot:fees), which payments from [funds] fee_payers fund.
[assets.ETH]
mixin_asset_id = "43d61dcd-e413-450d-80b8-101d5e903357"
decimals = 8

[markets."binance:BTC/USDT"]
price_decimals = 2
size_decimals = 5

# Hummingbot's pure market making, in its units (spreads in percent, times in seconds).
[presets.tight]
kind = "pmm"
bid_spread = 0.0001
ask_spread = 0.0001
order_amount = 0.001
order_refresh_time = 2
filled_order_delay = 0.2

[presets.wide]
kind = "pmm"
bid_spread = 0.0003
ask_spread = 0.0003
order_amount = 0.001
order_refresh_time = 2
filled_order_delay = 0.2

[limits]
bot_share = "0.10"             # of a member's gain, when the member stops
funding_timeout_s = 600        # an order still awaiting funds then is refunded

[limits.assets.BTC]
min = "0.0001"
max_per_user = "1"
dust = "0.000001"

[limits.assets.USDT]
min = "10"
max_per_user = "100000"
dust = "0.01"

[pools]
offer = ["binance:BTC/USDT:tight", "binance:BTC/USDT:wide"]
paused = []

# Funds in motion: users' payments go from the Mixin wallet to the exchange by chain (a withdrawal
# to the exchange's deposit address), and back the same way when they stop; every move is followed
# until it arrived, and the ledger is compared with what Mixin and the exchange hold.
[funds]
reconcile_interval_s = 5       # ledger compared with what the venues hold (a difference twice: moves halt)
batch_wait_s = 0.5             # a request waits this long for others to join its move
max_fee_fraction = "0.10"      # a move whose network fee is more of it waits for more
fee_hold_s = 5                 # then it goes anyway (back to Mixin), or the orders stay on Mixin (to the exchange)
consolidate_at = 200           # unspent outputs of an asset before the oldest are merged
to_send_s = 120                # how long each stage may take before a move is stuck (alerted)
to_chain_s = 120
to_credit_s = 120
retry_attempts = 3             # a withdrawal the venue failed is retried (the first attempt included)
retry_delay_s = 1
# The demo's operator: a payment from this Mixin user funds the bot's fee float (bot:fees).
fee_payers = ["5e7d0c1a-9b2f-4a63-8c4e-1f0a2b3c4d5e"]

[funds.min]                    # the smallest move to an exchange, per asset
BTC = "0.0002"
USDT = "5"
'''
