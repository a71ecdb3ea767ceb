"""The loopback exchanges the tests use: they live in the package (``leverage_exchange.replay``),
since ``leverage demo`` and the benchmark replay the same recorded accounts."""

from leverage_exchange.replay import *  # noqa: F403
from leverage_exchange.replay import __all__  # noqa: F401
