"""mixmaker: a market-making execution engine."""

__version__ = "0.1.0"
