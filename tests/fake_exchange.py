"""The loopback exchanges the tests use: they live in the package (``exchange_bridge.replay``),
since ``leverage demo`` and the benchmark replay the same recorded accounts."""

from exchange_bridge.replay import *  # noqa: F403
from exchange_bridge.replay import __all__  # noqa: F401
