"""Exceptions raised by the leverage library.

Every rejection is a :class:`LeverageError`, a ``ValueError`` subclass, so callers that
already catch ``ValueError`` keep working. The message always names the argument, the
rule and the value, e.g. ``margin must be >= 0, got -5``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Why a row has no answer, for code and for people.

    ``reason`` is a stable code to test (e.g. ``"unknown_position"``: never match the
    message's text); ``message`` is what the status cell shows; ``argument`` names the input
    at fault, when one is.
    """

    reason: str
    message: str
    argument: str | None = None

    def __str__(self) -> str:
        return self.message


class LeverageError(ValueError):
    """Base class of every error this library raises on purpose."""


class InputError(LeverageError):
    """An argument breaks its rule (wrong type, NaN, out of range, unknown name)."""


class PositionError(LeverageError):
    """The inputs are valid one by one but the position they describe has no answer
    (bankrupt position, target on the wrong side of entry, target out of reach)."""


class TierTableError(InputError):
    """A tier table is malformed: gaps, overlaps, unsorted bands, bad rates."""


class LeverageWarning(UserWarning):
    """A flag on an answer that still stands: the value is returned, but an input looks
    mistyped (a rate typed as a percent, a funding rate above 1 % a period, a leverage above
    the tier's maximum). Scalar calls emit it with :func:`warnings.warn`; ``.rows`` calls put
    the message in :attr:`~leverage.RowResults.warnings` instead."""
