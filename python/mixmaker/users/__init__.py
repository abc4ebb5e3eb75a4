"""The user layer: what a person who pays the bot experiences. The memo protocol (`memo`), the
catalog of markets, presets and limits (`catalog`), snapshot intake (`intake`), user orders and
their lifecycle (`orders`), refunds and payouts (`payouts`), statements (`statement`) and the
seam to the pools (`pools_api`)."""
