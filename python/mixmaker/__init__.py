"""mixmaker: a market-making execution engine."""

__version__ = "0.1.0"

try:  # registers pickling of the core's enums (mixmaker._enum_pickle)
    from mixmaker import _enum_pickle  # noqa: F401
except ImportError:  # the extension is not built: the parts that need it say so when used
    pass
