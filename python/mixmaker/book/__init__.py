"""The L2 order book and its venue sync (Rust core).

    ob = OrderBook(price_decimals=2, size_decimals=3)
    sync = BookSync(rule=SyncRule.BINANCE_FUTURES, price_decimals=2, size_decimals=3)
"""

from mixmaker._core import (
    ArgumentError,
    BookLockedError,
    BookState,
    BookSync,
    BookTicker,
    DecimalFormatError,
    MessageFormatError,
    MixmakerError,
    OrderBook,
    SyncRule,
    SyncStats,
    parse_book_ticker,
    parse_decimal,
)

__all__ = [
    "ArgumentError",
    "BookLockedError",
    "BookState",
    "BookSync",
    "BookTicker",
    "DecimalFormatError",
    "MessageFormatError",
    "MixmakerError",
    "OrderBook",
    "SyncRule",
    "SyncStats",
    "parse_book_ticker",
    "parse_decimal",
]
