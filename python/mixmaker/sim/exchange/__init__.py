"""A Binance-spot-compatible exchange simulator: matching engine, REST, WebSocket, fault injection."""
