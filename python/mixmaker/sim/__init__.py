"""Local simulators that speak real wire protocols (an exchange, Mixin) on 127.0.0.1.

They power the tests, the demo and paper trading; nothing here touches the internet.
"""
