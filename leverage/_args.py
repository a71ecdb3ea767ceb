"""Argument checking and the scalar/array machinery shared by every formula.

Each public formula is written once, as a numpy kernel over already-checked float arrays,
and wrapped by :func:`formula`, which names each argument's rule as a keyword
(``@formula(qty=Number(gt=0), mmr=Number(ge=0, lt=1), ...)``) and takes every default from
the kernel's signature. The wrapper

* checks every argument against its rule and names it in the message,
* broadcasts scalars and arrays together (so one code path serves a cell and a column),
* returns a ``float`` when every argument was a scalar, else an ``ndarray``, and
* exposes ``func.rows(...)``: the same call, but a bad row gives ``nan`` plus a message in
  :attr:`RowResults.errors` instead of raising, so one bad row never sinks a column, and
* exposes ``func.rules``: argument -> its :class:`Kind` (with the default), whose
  ``describe()`` is the rule in the words of the messages and whose ``per_call`` says whether
  the argument is one value for the whole call (a tier table, an exchange).

:func:`check_columns` reads other tables (journal events, portfolio rows) by the same rules.
"""

from __future__ import annotations

import contextlib
import copy
import decimal
import functools
import inspect
import math
import numbers
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from .errors import InputError, LeverageError, LeverageWarning, PositionError

MISSING: Any = object()
NONE = np.array(None, dtype=object)
"""``None`` as numpy's type stubs accept it in a comparison: ``np.equal(cells, NONE)`` is
``np.equal(cells, None)``, the mask of blank cells of an object array."""
_BIG_INT = 2**1023  # ints this large or larger do not fit a float
_EMPTY_STRINGS = ("",)


QUOTE_LIMIT = 40  # characters of a text quoted in a message; Excel cells hold 32,767


def fmt(value: Any) -> str:
    """Show a value in a message the way a trader typed it (``-5`` not ``-5.0``); a long text
    as its first :data:`QUOTE_LIMIT` characters and ``…``, so a message stays one short line.

    >>> fmt(-5.0), fmt(True), fmt("abc"), fmt(10**400)
    ('-5', 'TRUE', "'abc'", 'an integer of 401 digits')
    >>> fmt("x" * 100_000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' (100000 characters)"
    """
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).upper()
    if isinstance(value, numbers.Real):
        v = real(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v) and isinstance(value, numbers.Integral):
            return f"an integer of {len(str(abs(int(value))))} digits"
        return f"{v:.12g}"
    if isinstance(value, str):
        if len(value) <= QUOTE_LIMIT:
            return repr(value)
        quoted = repr(value[:QUOTE_LIMIT])
        return f"{quoted[:-1]}…{quoted[-1]} ({len(value)} characters)"
    return type(value).__name__


def real(value: numbers.Real | float | np.integer | np.floating) -> float:
    """``float(value)``, but a number beyond float range (a huge int or fraction) as ±inf
    instead of an OverflowError, so it is reported as not finite like any other."""
    try:
        return float(value)
    except OverflowError:
        return -math.inf if value < 0 else math.inf


class RowResults:
    """Per-row outcome of a formula over a column.

    ``values`` holds the results (``nan`` where a row failed or has no value, e.g. a
    position that cannot be liquidated); ``errors`` holds ``None`` for good rows and a
    message naming the argument and the rule for bad ones; ``warnings`` holds ``None`` for
    rows with nothing to flag and a message for rows that computed but look mistyped (a
    funding rate above 1 % a period, a leverage above the tier's maximum). All three have
    the broadcast shape; a row with an error has no warning.
    """

    __slots__ = ("_errors", "_warnings", "position_rows", "values")

    def __init__(
        self,
        values: np.ndarray,
        errors: np.ndarray | None = None,
        position_rows: np.ndarray | None = None,
        warnings: np.ndarray | None = None,
    ) -> None:
        self.values = values
        self._errors = errors  # None: no row failed (the common, fast case)
        self.position_rows = position_rows  # rows that failed as a position, not an input
        self._warnings = warnings  # None: no row is flagged (the common, fast case)

    @property
    def errors(self) -> np.ndarray:
        if self._errors is None:
            self._errors = np.full(np.shape(self.values), None, dtype=object)
        return self._errors

    @property
    def warnings(self) -> np.ndarray:
        if self._warnings is None:
            self._warnings = np.full(np.shape(self.values), None, dtype=object)
        return self._warnings

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of rows that computed."""
        if self._errors is None:
            return np.ones(np.shape(self.values), dtype=bool)
        return np.equal(self._errors, NONE)

    def __repr__(self) -> str:
        flagged = "" if self._warnings is None else f", warnings={self._warnings!r}"
        return f"RowResults(values={self.values!r}, errors={self.errors!r}{flagged})"

    def raise_first(self) -> None:
        """Raise the first row's error (InputError or PositionError), if any."""
        if self._errors is None:
            return
        bad = _indices(np.not_equal(self._errors, NONE))
        if not bad:
            return
        idx = bad[0]
        message = _at_index(self._errors, idx)
        is_position = self.position_rows is not None and bool(self.position_rows[idx])
        raise (PositionError if is_position else InputError)(message)

    def warn_first(self) -> None:
        """Emit the first flagged row's message as a :class:`LeverageWarning` (saying how many
        other rows are flagged), if any row is; the values stand."""
        if self._warnings is None:
            return
        flagged = _indices(np.not_equal(self._warnings, NONE))
        if not flagged:
            return
        message = _at_index(self._warnings, flagged[0])
        if len(flagged) > 1:
            message += f" (and {len(flagged) - 1} more rows)"
        warnings.warn(message, LeverageWarning, stacklevel=3)


def _at_index(messages: np.ndarray, idx: tuple[int, ...]) -> str:
    """A row's message, with the row's index when the result is a column."""
    message = messages[idx]
    if messages.ndim:
        where = int(idx[0]) if len(idx) == 1 else tuple(int(i) for i in idx)
        message = f"{message} (at index {where})"
    return message


def as_column(value: Any) -> Any:
    """Array-likes that are not lists (a pandas Series, an xarray) as numpy arrays, so every
    kind reads them like an ndarray; everything else unchanged."""
    if hasattr(value, "__array__") and not isinstance(value, np.ndarray | numbers.Number):
        return np.asarray(value)
    return value


# --------------------------------------------------------------------------- kinds
class Kind:
    """How one argument is read: a parser to a float array plus per-row errors.

    ``default`` is what a blank cell means. A formula's kinds carry none: the wrapper takes
    each default from the function's signature (:meth:`with_default`), the one place it is
    written. A kind used on its own (:func:`check_columns`) may be given one.
    """

    default: Any = MISSING
    per_call: bool = False  # True: one value for the whole call (a tier table, an exchange)

    def parse(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def describe(self) -> str:
        """The rule in words, as messages show it after the argument's name."""
        raise NotImplementedError

    def fast(self, name: str, value: Any) -> float | None:
        """One plain scalar ``value`` read by this rule, or ``None`` when it is not a plain
        scalar or breaks the rule (then :meth:`parse` reads it and says what is wrong)."""
        return None

    def with_default(self, default: Any) -> Kind:
        """A copy that reads a blank as ``default``."""
        twin = copy.copy(self)
        twin.default = default
        return twin


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip() in _EMPTY_STRINGS)


class Number(Kind):
    """A finite real number within optional bounds.

    ``gt``/``ge`` (greater than / at least) and ``lt``/``le`` (less than / at most) are the
    bounds; the message is built from them. ``blank_means_none=True`` accepts a blank (or
    ``nan``) meaning "there is none" and says so in the message.

    >>> Number(ge=0, lt=1).describe()
    'must be >= 0 and < 1'
    >>> Number(gt=0, blank_means_none=True).describe()
    'must be > 0 or blank'
    >>> Number().describe()
    'must be a finite number'
    """

    def __init__(
        self,
        *,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
        le: float | None = None,
        blank_means_none: bool = False,
        default: Any = MISSING,
    ) -> None:
        if (gt is not None and ge is not None) or (lt is not None and le is not None):
            raise TypeError("give at most one lower bound (gt/ge) and one upper bound (lt/le)")
        self.gt, self.ge, self.lt, self.le = gt, ge, lt, le
        self.blank_means_none = blank_means_none
        self.default = default
        low = gt if gt is not None else ge
        high = lt if lt is not None else le
        # (low, low included, high, high included) for the fast whole-column check
        self._low = -np.inf if low is None else float(low)
        self._low_in = ge is not None
        self._high = np.inf if high is None else float(high)
        self._high_in = le is not None

    not_a_number = "must be a number"  # what a text this kind cannot read is told

    def read_text(self, text: str) -> float | None:
        """A text read as a number (``None``: this kind reads no text)."""
        return None

    def describe(self) -> str:
        parts = [
            f"{op} {fmt(bound)}"
            for op, bound in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
            if bound is not None
        ]
        if not parts:
            return "must be " + ("a finite number or blank" if self.blank_means_none
                                 else "a finite number")
        text = "must be " + " and ".join(parts)
        if self.blank_means_none:
            text += ", or blank" if len(parts) > 1 else " or blank"
        return text

    def _within(self, v: np.ndarray) -> np.ndarray:
        low = v >= self._low if self._low_in else v > self._low
        high = v <= self._high if self._high_in else v < self._high
        return low & high

    def _clean(self, arr: np.ndarray) -> bool:
        """Two reductions decide a clean column without building a mask (nan fails both)."""
        if arr.size == 0:
            return False
        return bool(self._within(arr.min()) and self._within(arr.max()))

    def fast(self, name: str, value: Any) -> float | None:
        cls = value.__class__
        if cls is float:
            v = value
        elif cls is int:
            if not -_BIG_INT < value < _BIG_INT:
                return None  # beyond float range: the array path names it
            v = float(value)
        elif value is None or cls is str:
            if not _blank(value):
                v = self.read_text(value)
                if v is None:
                    return None
            # a blank takes the default, which stands for itself (as in parse)
            elif self.default is MISSING:
                return math.nan if self.blank_means_none else None
            else:
                return float(self.default)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
            try:
                v = float(value)
            except (OverflowError, ValueError):
                return None  # the array path names it
        else:
            return None
        low = v >= self._low if self._low_in else v > self._low
        high = v <= self._high if self._high_in else v < self._high
        if (low and high) or (self.blank_means_none and v != v):
            return v
        return None

    def parse(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        default = math.nan if self.blank_means_none and self.default is MISSING else self.default
        arr, errors, filled = _to_float_array(name, value, default, self)
        if errors is None and self._clean(arr):
            return arr, None
        with np.errstate(invalid="ignore"):
            good = self._within(arr)
            if self.blank_means_none:
                good |= np.isnan(arr)
        if filled is not None:
            good |= filled  # a default stands for itself: only typed values are judged
        if not good.all():
            bad = ~good
            if errors is None:
                errors = np.full(arr.shape, None, dtype=object)
            bad &= np.equal(errors, NONE)
            rule = self.describe()
            for idx in _indices(bad):
                v = arr[idx]
                said = rule if math.isfinite(v) else "must be a finite number"
                errors[idx] = f"{name} {said}, got {fmt(v)}"
        return arr, errors


# one way to match each text (no nested choices), so a long text fails in linear time
_PERCENT = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*%\s*")
PERCENT_TEXT_LIMIT = 60  # characters: a typed percent is short; a longer text is not one


def percent_text(text: str) -> float | None:
    """A percent typed as text (``"0.5%"``, ``" 0.5 %"``, ``"-0.01%"``) as the fraction it
    stands for, the decimal point moved exactly (``"0.5%"`` is the float ``0.005``, not
    ``0.5 / 100``); ``None`` for any other text.

    >>> percent_text("0.5%"), percent_text(" -0.01 %"), percent_text("0.5"), percent_text("%")
    (0.005, -0.0001, None, None)
    """
    if len(text) > PERCENT_TEXT_LIMIT or "%" not in text:
        return None
    m = _PERCENT.fullmatch(text)
    if m is None:
        return None
    return float(decimal.Decimal(m.group(1)).scaleb(-2))


class Rate(Number):
    """A rate: a fraction (``0.005`` is 0.5 %) that is also read from percent text, so a
    cell holding ``"0.5%"`` as text means 0.005. Bounds as :class:`Number`; the bounds apply
    to the fraction (``"150%"`` is 1.5).

    >>> rule = Rate(ge=0, lt=1)
    >>> rule.fast("mmr", "0.5%"), rule.fast("mmr", 0.005)
    (0.005, 0.005)
    >>> rule.parse("mmr", ["0.5%", 0.01, "half"])[1].tolist()
    [None, None, "mmr must be a number or a percent like 0.5%, got 'half'"]
    """

    not_a_number = "must be a number or a percent like 0.5%"

    def read_text(self, text: str) -> float | None:
        return percent_text(text)


PERCENT_LIKE = 0.05
"""A rate at or above this (5 %) typed as a number looks like a percent typed without the
``%``: ``mmr 0.5`` meant as 0.5 % is 50 %."""


def percent_hint(name: str, value: Any) -> str | None:
    """What to type instead, for a rate that looks like a percent typed as a number (its size
    is :data:`PERCENT_LIKE`, 5 %, or more); ``None`` for any other value.

    >>> percent_hint("mmr", 0.5)
    'mmr 0.5 is 50 %; for 0.5 % type 0.005 or 0.5%'
    >>> percent_hint("mmr", 0.005) is None
    True
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    v = real(value)
    if not math.isfinite(v) or abs(v) < PERCENT_LIKE:
        return None
    return f"{name} {fmt(v)} is {fmt(v * 100)} %; for {fmt(v)} % type {fmt(v / 100)} or {fmt(v)}%"


VOLATILITY_PERCENT_LIKE = 5.0
"""An annualised volatility at or above this (500 % a year) typed as a number looks like a
percent typed without the ``%``: ``60`` meant as 60 % is 6,000 %. Crypto's most volatile
markets stay well below it; 60 % is ``0.6``."""


def percent_hints(*, like: float = PERCENT_LIKE, **rates: Any) -> np.ndarray | None:
    """Per row, the :func:`percent_hint` of each named rate that looks like a percent (its
    size is ``like`` or more; ``like`` at least :data:`PERCENT_LIKE`), joined with ``"; "``
    (``None`` where none does); ``None`` when no row has one. For the notes of
    :meth:`Fail.__call__` and :meth:`Fail.warn`."""
    arrays = {k: np.asarray(v, dtype=float) for k, v in rates.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    out = np.full(shape, None, dtype=object)
    found = False
    for name, arr in arrays.items():
        with np.errstate(invalid="ignore"):
            looks = np.broadcast_to(np.abs(arr) >= like, shape)
        if not looks.any():
            continue
        found = True
        arr = np.broadcast_to(arr, shape)
        for idx in _indices(looks):
            hint = percent_hint(name, float(arr[idx]))
            out[idx] = hint if out[idx] is None else f"{out[idx]}; {hint}"
    return out if found else None


def _to_float_array(
    name: str, value: Any, default: Any, kind: Number | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | bool | None]:
    """Read numbers; blank cells take the default (or are an error when required); a text is
    read by ``kind.read_text`` (a rate's percent) or is an error.

    Returns the floats, per-cell errors (``None``: none) and which cells took the default
    (``None``: none did).
    """
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value.astype(float, copy=False), None, None
    if _blank(value):
        if default is MISSING:
            return np.array(np.nan), np.array(f"{name} is required", dtype=object), None
        return np.array(float(default)), None, True
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        return np.array(real(value)), None, None
    read_text = None if kind is None else kind.read_text
    not_a_number = "must be a number" if kind is None else kind.not_a_number
    if isinstance(value, list | tuple | np.ndarray):
        obj = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
        if obj.dtype.kind in "fiu":
            return obj.astype(float), None, None
        obj = np.asarray(obj, dtype=object)
        out = np.empty(obj.shape, dtype=float)
        errors = np.full(obj.shape, None, dtype=object)
        filled = np.zeros(obj.shape, dtype=bool)
        any_error = False
        for idx, v in np.ndenumerate(obj):
            if _blank(v):
                if default is MISSING:
                    out[idx] = np.nan
                    errors[idx] = f"{name} is required"
                    any_error = True
                else:
                    out[idx] = float(default)
                    filled[idx] = True
            elif isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_):
                out[idx] = real(v)
            else:
                read = read_text(v) if read_text is not None and isinstance(v, str) else None
                if read is not None:
                    out[idx] = read
                    continue
                out[idx] = np.nan
                errors[idx] = f"{name} {not_a_number}, got {fmt(v)}"
                any_error = True
        return out, (errors if any_error else None), (filled if filled.any() else None)
    read = read_text(value) if read_text is not None and isinstance(value, str) else None
    if read is not None:
        return np.array(read), None, None
    error = np.array(f"{name} {not_a_number}, got {fmt(value)}", dtype=object)
    return np.array(np.nan), error, None


def _indices(mask: np.ndarray) -> list[tuple[int, ...]]:
    """Indices of true cells, also for 0-d masks."""
    if mask.ndim == 0:
        return [()] if bool(mask) else []
    return list(zip(*np.nonzero(mask), strict=True))


class _Choice(Kind):
    """A word from a small vocabulary, mapped to a number (side -> +/-1, contract -> 0/1)."""

    words: ClassVar[dict[str, float]]
    numbers: ClassVar[dict[float, float]]
    expected: ClassVar[str]

    def __init__(self, default: Any = MISSING) -> None:
        self.default = default
        self._keys = np.array(sorted(self.numbers))
        self._identity_numbers = all(k == v for k, v in self.numbers.items())

    def describe(self) -> str:
        return f"must be {self.expected}"

    def fast(self, name: str, value: Any) -> float | None:
        if value.__class__ is str:
            word = self.words.get(value.strip().lower())
            if word is not None:
                return word
        if isinstance(value, list | tuple | np.ndarray) or as_column(value) is not value:
            return None
        v, err = self._one(name, value)
        return None if err is not None else v

    def _one(self, name: str, v: Any) -> tuple[float, str | None]:
        if _blank(v):
            if self.default is MISSING:
                return np.nan, f"{name} is required"
            v = self.default
        if isinstance(v, str):
            key = v.strip().lower()
            if key in self.words:
                return self.words[key], None
        elif (
            isinstance(v, numbers.Real)
            and not isinstance(v, bool | np.bool_)
            and real(v) in self.numbers
        ):
            return self.numbers[real(v)], None
        return np.nan, f"{name} must be {self.expected}, got {fmt(v)}"

    def parse(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
            arr = value.astype(float, copy=False)
            if self._identity_numbers and arr.size and np.isin(arr, self._keys).all():
                return arr, None
            keys = np.array(sorted(self.numbers))
            good = np.isin(arr, keys)
            mapped = np.zeros(arr.shape)
            for k, number in self.numbers.items():
                mapped[arr == k] = number
            if good.all():
                return mapped, None
            errors = np.full(arr.shape, None, dtype=object)
            for idx in _indices(~good):
                errors[idx] = f"{name} must be {self.expected}, got {fmt(arr[idx])}"
            mapped[~good] = np.nan
            return mapped, errors
        if isinstance(value, list | tuple | np.ndarray):
            obj = np.asarray(value, dtype=object)
            # keyed by type too: TRUE == 1 and Decimal(1) == 1 in a dict, not in a rule
            uniq: dict[tuple[type, Any], tuple[float, str | None]] = {}
            out = np.empty(obj.shape, dtype=float)
            errors = np.full(obj.shape, None, dtype=object)
            for idx, v in np.ndenumerate(obj):
                try:
                    res = uniq[type(v), v]
                except (KeyError, TypeError):
                    res = self._one(name, v)
                    with contextlib.suppress(TypeError):  # unhashable cell values
                        uniq[type(v), v] = res
                out[idx], errors[idx] = res
            return out, (errors if any(e is not None for e in errors.flat) else None)
        v, err = self._one(name, value)
        return np.array(v), (None if err is None else np.array(err, dtype=object))


class Side(_Choice):
    """``long``/``short`` (or ``buy``/``sell``, ``1``/``-1``), read as +1/-1."""

    words: ClassVar[dict[str, float]] = {
        "long": 1.0, "buy": 1.0, "short": -1.0, "sell": -1.0, "1": 1.0, "-1": -1.0
    }
    numbers: ClassVar[dict[float, float]] = {1.0: 1.0, -1.0: -1.0}
    expected: ClassVar[str] = "long or short (also buy/sell, 1/-1)"


class Contract(_Choice):
    """``linear`` (USDⓈ-margined) or ``inverse`` (coin-margined), read as 0/1."""

    words: ClassVar[dict[str, float]] = {"linear": 0.0, "inverse": 1.0, "usdm": 0.0, "coinm": 1.0}
    # 0/1 is the parsed form, so already-parsed columns pass through
    numbers: ClassVar[dict[float, float]] = {0.0: 0.0, 1.0: 1.0}
    expected: ClassVar[str] = "linear or inverse"


class Flag(_Choice):
    """TRUE/FALSE (also 1/0, yes/no)."""

    words: ClassVar[dict[str, float]] = {
        "true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "1": 1.0, "0": 0.0
    }
    numbers: ClassVar[dict[float, float]] = {1.0: 1.0, 0.0: 0.0}
    expected: ClassVar[str] = "TRUE or FALSE"

    def _one(self, name: str, v: Any) -> tuple[float, str | None]:
        if _blank(v) and self.default is not MISSING:
            v = self.default
        if isinstance(v, bool | np.bool_):
            return float(bool(v)), None
        return super()._one(name, v)


class PerCall(Kind):
    """An argument that is the same for every row (a tier table, an exchange name):
    ``resolve(name, value)`` turns it into what the kernel takes, or raises InputError."""

    per_call = True

    def __init__(self, resolve: Callable[[str, Any], Any], words: str) -> None:
        self.resolve = resolve
        self.words = words

    def describe(self) -> str:
        return f"must be {self.words}"

    def parse(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        raise TypeError("per-call arguments are resolved, not parsed")


# ---------------------------------------------------------------------- failures
class Fail:
    """Collects per-row domain failures raised by a kernel (bankrupt position and so on), and
    the flags (:meth:`warn`) of rows that compute but look mistyped."""

    def __init__(self, shape: tuple[int, ...], errors: np.ndarray | None) -> None:
        self.shape = shape
        self.errors = errors
        self.position: np.ndarray | None = None  # rows whose failure is a PositionError
        self.warnings: np.ndarray | None = None  # rows flagged by warn()

    def __call__(
        self, mask: Any, template: str, kind: str = "position", notes: Any = None, **values: Any
    ) -> None:
        """Mark rows where ``mask`` is true with ``template`` formatted per row.

        ``kind="position"`` raises :class:`PositionError` in strict mode, ``"input"``
        :class:`InputError`. ``notes`` (per row: a text or ``None``) is appended after
        ``"; "`` where a row has one (e.g. :func:`percent_hint`).
        """
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), self.shape)
        if not mask.any():
            return
        if self.errors is None:
            self.errors = np.full(self.shape, None, dtype=object)
        if self.position is None:
            self.position = np.zeros(self.shape, dtype=bool)
        for idx in _fill(self.errors, mask, template, notes, values):
            self.position[idx] = kind == "position"

    def warn(self, mask: Any, template: str, notes: Any = None, **values: Any) -> None:
        """Flag rows where ``mask`` is true (the value stands): ``template`` formatted per row,
        plus ``notes`` as in :meth:`__call__`. A row keeps its first flag."""
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), self.shape)
        if not mask.any():
            return
        if self.warnings is None:
            self.warnings = np.full(self.shape, None, dtype=object)
        _fill(self.warnings, mask, template, notes, values)


def _fill(
    messages: np.ndarray, mask: np.ndarray, template: str, notes: Any, values: dict[str, Any]
) -> list[tuple[int, ...]]:
    """Write ``template`` (and the row's note) into the rows of ``mask`` that have no message
    yet; the rows written."""
    shape = messages.shape
    # values may be given as callables so that message-only arithmetic (e.g. ``-change``)
    # runs only when some row actually failed
    vals = {
        k: np.broadcast_to(np.asarray(v() if callable(v) else v), shape)
        for k, v in values.items()
    }
    if callable(notes):
        notes = notes()
    if notes is not None:
        notes = np.broadcast_to(np.asarray(notes, dtype=object), shape)
    rows = _indices(mask & np.equal(messages, NONE))
    for idx in rows:
        message = template.format(**{k: fmt(v[idx]) for k, v in vals.items()})
        if notes is not None and notes[idx] is not None:
            message = f"{message}; {notes[idx]}"
        messages[idx] = message
    return rows


class _SlowPath(Exception):
    """A scalar call hit a row with no answer: the array path computes and reports it."""


class _ScalarFail(Fail):
    """:class:`Fail` for the scalar fast path: the first failing mask hands the call back to
    the array path, whose :class:`Fail` builds the message."""

    def __init__(self) -> None:
        super().__init__((), None)

    def __call__(
        self, mask: Any, template: str, kind: str = "position", notes: Any = None, **values: Any
    ) -> None:
        if mask:
            raise _SlowPath

    def warn(self, mask: Any, template: str, notes: Any = None, **values: Any) -> None:
        if mask:
            raise _SlowPath  # the array path builds the flag and the strict call warns


try:  # numpy's error state lives in a context variable: setting it costs a tenth of errstate
    from numpy._core._ufunc_config import (  # type: ignore[attr-defined]  # private: no stubs
        _extobj_contextvar,
        _make_extobj,
    )

    _IGNORE_ALL = _make_extobj(all="ignore")
except ImportError:  # another numpy layout: the public context manager, a little slower
    _extobj_contextvar = None


def _quietly(kernel: Callable[..., Any], given: dict[str, Any]) -> Any:
    """``kernel(**given)`` under ``np.errstate(all="ignore")`` (nan and inf are answers)."""
    if _extobj_contextvar is None:
        with np.errstate(all="ignore"):
            return kernel(**given)
    token = _extobj_contextvar.set(_IGNORE_ALL)
    try:
        return kernel(**given)
    finally:
        _extobj_contextvar.reset(token)


# ----------------------------------------------------------------------- wrapper
def formula(
    *, returns_none: bool = False, **kinds: Kind
) -> Callable[[Callable[..., Any]], Any]:
    """Wrap a numpy kernel into a checked public formula with a ``.rows`` twin.

    ``kinds`` names each argument's rule (``qty=Number(gt=0)``); defaults are the kernel's
    own signature defaults. The kernel receives numbers as float arrays, sides as +/-1,
    contract as 0/1 and per-call arguments resolved; it may declare a keyword-only ``fail``
    (:class:`Fail`) to mark rows that have no answer.

    A result beyond float range (``inf``) is an error of that row naming its inputs, never a
    number; so is ``nan`` unless ``returns_none=True`` says the kernel returns ``nan`` for
    "there is none" (a liquidation price that does not exist).

    The wrapped function exposes ``rules``: argument name -> its :class:`Kind` with the
    signature's default, e.g. ``liq_price.rules["mmr"].describe()``.
    """

    def decorate(kernel: Callable[..., Any]) -> Any:
        sig = inspect.signature(kernel)
        takes_fail = "fail" in sig.parameters
        public = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "fail"])
        names = list(public.parameters)
        missing = set(names) - set(kinds)
        if missing:
            raise TypeError(f"{kernel.__name__}: no kind for {sorted(missing)}")
        doubled = [n for n in names if kinds[n].default is not MISSING]
        if doubled:
            raise TypeError(f"{kernel.__name__}: defaults belong in the signature: {doubled}")
        rules = {
            name: kinds[name].with_default(
                MISSING if p.default is inspect.Parameter.empty else p.default
            )
            for name, p in public.parameters.items()
        }
        # PerCall is the one kind with ``per_call`` set: its ``resolve`` reads the argument
        per_call = {n: r for n in names if isinstance(r := rules[n], PerCall)}
        by_row = [n for n in names if n not in per_call]
        numeric = [n for n in by_row if isinstance(rules[n], Number)]  # named on overflow

        def run(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[RowResults, bool]:
            try:
                bound = public.bind(*args, **kwargs)
            except TypeError as exc:
                raise InputError(f"{kernel.__name__}: {exc}") from None
            values_in = bound.arguments
            parsed: dict[str, Any] = {}
            for name, call in per_call.items():
                value = values_in.get(name, call.default)
                with _unreadable(name, call, value):
                    parsed[name] = call.resolve(name, call.default if _blank(value) else value)
            arrays: dict[str, np.ndarray] = {}
            errs: list[np.ndarray] = []
            for name in by_row:
                rule = rules[name]
                value = values_in.get(name, rule.default)
                with _unreadable(name, rule, value):
                    arr, err = rule.parse(name, as_column(value))
                arrays[name] = arr
                if err is not None:
                    errs.append(err)
            scalar = all(a.ndim == 0 for a in arrays.values())
            try:
                shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
            except ValueError:
                shapes = ", ".join(f"{n}{tuple(a.shape)}" for n, a in arrays.items() if a.ndim)
                raise InputError(f"{kernel.__name__}: columns differ in length: {shapes}") from None
            errors = _first_per_row(errs, shape)
            fail: Fail
            if len(shape) >= 1 and shape[0] > BLOCK_ROWS:
                blocks = _in_blocks(kernel, parsed, arrays, takes_fail, shape, errors)
                fail, values = blocks, blocks.values
            else:
                fail = Fail(shape, errors)
                extra = {"fail": fail} if takes_fail else {}
                with np.errstate(all="ignore"):
                    values = kernel(**parsed, **arrays, **extra)
                values = np.asarray(values, dtype=float)
                if values.shape != shape or not values.flags.writeable:
                    values = np.array(np.broadcast_to(values, shape), dtype=float)
            _out_of_range(values, fail, {n: arrays[n] for n in numeric}, returns_none)
            flags = fail.warnings
            if fail.errors is not None:
                bad = np.not_equal(fail.errors, NONE)
                values[bad] = np.nan
                if flags is not None:
                    flags[bad] = None  # a row that failed has its error, not a flag
            return RowResults(values, fail.errors, fail.position, flags), scalar

        # The scalar fast path: where each argument goes, decided once here instead of by
        # ``Signature.bind`` per call. Only plain positional-or-keyword signatures take it.
        position = {name: i for i, name in enumerate(names)}
        defaults = [rules[name].default for name in names]
        # per-call arguments first, then the row arguments (the array path's order)
        calls = [(name, position[name], call) for name, call in per_call.items()]
        reads = [(name, position[name], rules[name]) for name in by_row]
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in public.parameters.values())

        def fast(args: tuple[Any, ...], kwargs: dict[str, Any]) -> float | None:
            """A call whose arguments are all plain scalars (numbers, words) and that has an
            answer, read by the same rules and computed by the same kernel on Python floats
            (IEEE doubles: the array path's rounding, without arrays); ``None`` for anything
            else (a bad argument, a row with no answer, a division by zero), which :func:`run`
            then computes and reports with its messages."""
            if len(args) > len(names):
                return None
            values = [*args, *defaults[len(args):]]
            for key, value in kwargs.items():
                i = position.get(key)
                if i is None or i < len(args):
                    return None
                values[i] = value
            given: dict[str, Any] = {}
            try:
                for name, i, call in calls:
                    value = values[i]
                    if value is MISSING:
                        return None
                    given[name] = call.resolve(name, call.default if _blank(value) else value)
                for name, i, rule in reads:
                    value = values[i]
                    if value is MISSING:
                        return None
                    v = rule.fast(name, value)
                    if v is None:
                        return None
                    given[name] = v
                if takes_fail:
                    given["fail"] = _ScalarFail()
                out = _quietly(kernel, given)
                if takes_fail and given["fail"].errors is not None:
                    return None
                if out.__class__ is not float and np.ndim(out) != 0:
                    return None
                out = float(out)
                if math.isfinite(out) or (returns_none and out != out):
                    return out  # a number, or nan where nan means "there is none"
                return None  # beyond float range: the array path names it
            except Exception:  # the array path raises it again, or says what is wrong
                return None

        @functools.wraps(kernel)
        def strict(*args: Any, **kwargs: Any) -> Any:
            if plain:
                out = fast(args, kwargs)
                if out is not None:
                    return out
            res, scalar = run(args, kwargs)
            res.raise_first()
            res.warn_first()
            return float(res.values) if scalar else res.values

        def rows(*args: Any, **kwargs: Any) -> RowResults:
            """Same call, but a bad row yields nan and a message instead of raising."""
            return run(args, kwargs)[0]

        strict.__signature__ = public  # type: ignore[attr-defined]
        strict.rows = rows  # type: ignore[attr-defined]
        # the scalar fast path on its own (None: not taken), for the tests that compare it
        strict.fast_path = fast if plain else lambda args, kwargs: None  # type: ignore[attr-defined]
        strict.rules = rules  # type: ignore[attr-defined]
        # one answer per row (a column call in a workbook), with the scalar fast path above
        strict.per_row = True  # type: ignore[attr-defined]
        return strict

    return decorate


BLOCK_ROWS = 65_536
"""A long column is computed this many rows at a time: the kernel's temporaries then stay a
few hundred kB (in the CPU's cache, and a small part of the result's memory) however long the
column. Every formula is row by row, so the blocks give the rows the whole column gives."""


class _Blocks(Fail):
    """The rows of every block's :class:`Fail`, gathered over the column, and its values."""

    def __init__(self, shape: tuple[int, ...], errors: np.ndarray | None) -> None:
        super().__init__(shape, errors)
        self.values = np.empty(shape)


def _in_blocks(
    kernel: Callable[..., Any],
    parsed: dict[str, Any],
    arrays: dict[str, np.ndarray],
    takes_fail: bool,
    shape: tuple[int, ...],
    errors: np.ndarray | None,
) -> _Blocks:
    """``kernel`` over a column of ``shape[0]`` rows (an Excel range is ``(n, 1)``),
    :data:`BLOCK_ROWS` rows at a time. An argument with one row (or fewer dimensions)
    broadcasts over every block as it is."""
    n = shape[0]
    whole = _Blocks(shape, errors)
    for start in range(0, n, BLOCK_ROWS):
        rows = slice(start, min(start + BLOCK_ROWS, n))
        block = {k: a[rows] if a.ndim == len(shape) and a.shape[0] == n else a
                 for k, a in arrays.items()}
        # a view: the block's failures land in the column's errors when it has them already
        fail = Fail((rows.stop - start, *shape[1:]),
                    None if whole.errors is None else whole.errors[rows])
        extra = {"fail": fail} if takes_fail else {}
        with np.errstate(all="ignore"):
            whole.values[rows] = kernel(**parsed, **block, **extra)
        if fail.errors is not None:
            if whole.errors is None:
                whole.errors = np.full(shape, None, dtype=object)
            whole.errors[rows] = fail.errors
        if fail.position is not None:
            if whole.position is None:
                whole.position = np.zeros(shape, dtype=bool)
            whole.position[rows] = fail.position
        if fail.warnings is not None:
            if whole.warnings is None:
                whole.warnings = np.full(shape, None, dtype=object)
            whole.warnings[rows] = fail.warnings
    return whole


@contextlib.contextmanager
def _unreadable(name: str, rule: Kind, value: Any) -> Any:
    """A value no rule foresaw (a ragged nested list, an object whose ``__array__`` fails) is
    still an InputError naming the argument, never a bare TypeError or ValueError."""
    try:
        yield
    except LeverageError:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError, IndexError):
        raise InputError(f"{name} {rule.describe()}, got {fmt(value)}") from None


def _out_of_range(
    values: np.ndarray, fail: Fail, arrays: dict[str, np.ndarray], returns_none: bool
) -> None:
    """Rows whose result is beyond float range (or lost to an intermediate overflow) are
    errors naming the row's inputs. One reduction decides the common all-finite case."""
    with np.errstate(all="ignore"):
        if math.isfinite(values.sum()) or values.size == 0:
            return
    inputs = ", ".join(f"{name}={{{name}}}" for name in arrays)
    # kind given by name: the inputs' columns fill only the template's fields
    fail(np.isinf(values), f"the result is too large for a number ({inputs})", kind="position",
         **arrays)
    if not returns_none:
        fail(
            np.isnan(values),
            f"the result cannot be computed: a number in the calculation is too large or too "
            f"small ({inputs})",
            kind="position",
            **arrays,
        )


def _first_per_row(errs: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray | None:
    """Per row, the first message in argument order (``None``: no row has one)."""
    if not errs:
        return None
    errors = np.full(shape, None, dtype=object)
    for err in errs:
        err = np.broadcast_to(err, shape)
        take = np.equal(errors, NONE) & np.not_equal(err, NONE)
        errors[take] = err[take]
    return errors


# ------------------------------------------------------------------ columns
class Columns:
    """Named columns read by their rules (see :func:`check_columns`).

    ``columns[name]`` is the float array of that column (sides as +/-1, contract as 0/1, nan
    on a bad cell); ``errors`` holds per row the first broken rule's message (in the order the
    rules were given) or ``None``; ``ok`` is the mask of good rows.
    """

    __slots__ = ("errors", "ok", "values")

    def __init__(self, values: dict[str, np.ndarray], errors: np.ndarray) -> None:
        self.values = values
        self.errors = errors
        self.ok = np.equal(errors, NONE)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    @property
    def first_error(self) -> str | None:
        """The first bad row's message, ``None`` when every row is good."""
        bad = _indices(~self.ok)
        return self.errors[bad[0]] if bad else None

    def raise_first(self) -> None:
        """Raise :class:`InputError` with the first bad row's message, if any."""
        RowResults(np.zeros(self.errors.shape), self.errors).raise_first()


def _one_row(data: Mapping[str, Any], rules: dict[str, Kind]) -> Columns | None:
    """:func:`check_columns` of one row of plain scalars that all keep their rules (a journal
    event's fields), without the column machinery; ``None`` for anything else."""
    values: dict[str, np.ndarray] = {}
    for name, rule in rules.items():
        v = rule.fast(name, data.get(name))
        if v is None:
            return None
        values[name] = np.array(v)
    return Columns(values, np.full((), None, dtype=object))


def check_columns(data: Any, **rules: Kind) -> Columns:
    """Read each named column by its rule, the same rules the formulas use.

    ``data`` is a mapping (name -> a column or a single value; a missing name reads as blank)
    or a sequence of row mappings (one dict per row). Every column is broadcast to one shape.

    >>> cols = check_columns(
    ...     [{"qty": 1, "mmr": ""}, {"qty": -2, "mmr": 0.01}],
    ...     qty=Number(gt=0), mmr=Number(ge=0, lt=1, default=0.005),
    ... )
    >>> cols["mmr"].tolist(), cols.errors.tolist()
    ([0.005, 0.01], [None, 'qty must be > 0, got -2'])
    >>> check_columns({"side": "up"}, side=Side()).first_error
    "side must be long or short (also buy/sell, 1/-1), got 'up'"
    """
    if isinstance(data, Mapping):
        one = _one_row(data, rules)
        if one is not None:
            return one
        read = {name: as_column(data.get(name)) for name in rules}
    else:
        read = {name: [row.get(name) for row in data] for name in rules}
    values: dict[str, np.ndarray] = {}
    errs: list[np.ndarray] = []
    for name, rule in rules.items():
        arr, err = rule.parse(name, read[name])
        values[name] = arr
        if err is not None:
            errs.append(err)
    shape = np.broadcast_shapes(*(a.shape for a in values.values()))
    values = {k: np.broadcast_to(v, shape) for k, v in values.items()}
    errors = _first_per_row(errs, shape)
    return Columns(values, np.full(shape, None, dtype=object) if errors is None else errors)


__all__ = [
    "MISSING",
    "Columns",
    "Contract",
    "Fail",
    "Flag",
    "InputError",
    "Kind",
    "LeverageError",
    "Number",
    "PerCall",
    "PositionError",
    "Rate",
    "RowResults",
    "Side",
    "check_columns",
    "fmt",
    "formula",
    "percent_hint",
    "percent_text",
]
