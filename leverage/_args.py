"""Argument checking and the scalar/array machinery shared by every formula.

Each public formula is written once, as a numpy kernel over already-checked float arrays,
and wrapped by :func:`formula`. The wrapper

* checks every argument against its rule and names it in the message,
* broadcasts scalars and arrays together (so one code path serves a cell and a column),
* returns a ``float`` when every argument was a scalar, else an ``ndarray``, and
* exposes ``func.rows(...)``: the same call, but a bad row gives ``nan`` plus a message in
  :attr:`RowResults.errors` instead of raising, so one bad row never sinks a column.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .errors import InputError, LeverageError, PositionError

MISSING: Any = object()
_EMPTY_STRINGS = ("",)


def fmt(value: Any) -> str:
    """Show a value in a message the way a trader typed it (``-5`` not ``-5.0``)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).upper()
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return "nan"
        return f"{v:.12g}"
    if isinstance(value, str):
        return repr(value)
    return type(value).__name__


class RowResults:
    """Per-row outcome of a formula over a column.

    ``values`` holds the results (``nan`` where a row failed or has no value, e.g. a
    position that cannot be liquidated); ``errors`` holds ``None`` for good rows and a
    message naming the argument and the rule for bad ones. Both have the broadcast shape.
    """

    __slots__ = ("_errors", "position_rows", "values")

    def __init__(
        self,
        values: np.ndarray,
        errors: np.ndarray | None = None,
        position_rows: np.ndarray | None = None,
    ) -> None:
        self.values = values
        self._errors = errors  # None: no row failed (the common, fast case)
        self.position_rows = position_rows  # rows that failed as a position, not an input

    @property
    def errors(self) -> np.ndarray:
        if self._errors is None:
            self._errors = np.full(np.shape(self.values), None, dtype=object)
        return self._errors

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of rows that computed."""
        if self._errors is None:
            return np.ones(np.shape(self.values), dtype=bool)
        return np.equal(self._errors, None)

    def __repr__(self) -> str:
        return f"RowResults(values={self.values!r}, errors={self.errors!r})"

    def raise_first(self) -> None:
        """Raise the first row's error (InputError or PositionError), if any."""
        if self._errors is None:
            return
        bad = _indices(np.not_equal(self._errors, None))
        if not bad:
            return
        idx = bad[0]
        message = self._errors[idx]
        if self._errors.ndim:
            where = idx[0] if len(idx) == 1 else idx
            message = f"{message} (at index {where})"
        is_position = self.position_rows is not None and bool(self.position_rows[idx])
        raise (PositionError if is_position else InputError)(message)


def as_column(value: Any) -> Any:
    """Array-likes that are not lists (a pandas Series, an xarray) as numpy arrays, so every
    kind reads them like an ndarray; everything else unchanged."""
    if hasattr(value, "__array__") and not isinstance(value, np.ndarray | numbers.Number):
        return np.asarray(value)
    return value


# --------------------------------------------------------------------------- kinds
class Kind:
    """How one argument is read: a default, and a parser to a float array plus errors."""

    default: Any = MISSING

    def parse(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip() in _EMPTY_STRINGS)


class Number(Kind):
    """A real number with a rule (``any`` finite, ``>0``, ``>=0``, ``[0,1)``, ``[0,1]``, ``(0,1]``;
    ``|nan`` variants also accept a blank meaning "there is none")."""

    _RULES: ClassVar[dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]] = {
        "any": ("be a finite number", lambda v: np.isfinite(v)),
        ">0": ("be > 0", lambda v: (v > 0) & (v < np.inf)),
        ">=0": ("be >= 0", lambda v: (v >= 0) & (v < np.inf)),
        "[0,1)": ("be >= 0 and < 1", lambda v: (v >= 0) & (v < 1)),
        "[0,1]": ("be between 0 and 1", lambda v: (v >= 0) & (v <= 1)),
        "(0,1]": ("be > 0 and <= 1", lambda v: (v > 0) & (v <= 1)),
        # a price that may be absent (blank or nan: "there is none")
        ">0|nan": ("be > 0 or blank", lambda v: ((v > 0) & (v < np.inf)) | np.isnan(v)),
        "[0,1)|nan": ("be >= 0 and < 1, or blank", lambda v: ((v >= 0) & (v < 1)) | np.isnan(v)),
    }

    def __init__(self, rule: str = "any", default: Any = MISSING) -> None:
        self.rule = rule
        self.default = default

    # Bounds of each rule for the fast whole-column check: (low, low included, high, high
    # included). Two reductions decide a clean column without building a mask.
    _BOUNDS: ClassVar[dict[str, tuple[float, bool, float, bool]]] = {
        "any": (-np.inf, False, np.inf, False),
        ">0": (0.0, False, np.inf, False),
        ">=0": (0.0, True, np.inf, False),
        "[0,1)": (0.0, True, 1.0, False),
        "[0,1]": (0.0, True, 1.0, True),
        "(0,1]": (0.0, False, 1.0, True),
    }

    def _clean(self, arr: np.ndarray) -> bool:
        bounds = self._BOUNDS.get(self.rule)
        if bounds is None or arr.size == 0:
            return False
        lo, lo_in, hi, hi_in = bounds
        low, high = arr.min(), arr.max()  # nan propagates and fails both tests
        return bool((low >= lo if lo_in else low > lo) and (high <= hi if hi_in else high < hi))

    def parse(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        arr, errors = _to_float_array(name, value, self.default)
        if errors is None and self._clean(arr):
            return arr, None
        text, check = self._RULES[self.rule]
        with np.errstate(invalid="ignore"):
            good = check(arr)
        if not good.all():
            bad = ~good
            if errors is None:
                errors = np.full(arr.shape, None, dtype=object)
            bad &= np.equal(errors, None)
            for idx in _indices(bad):
                v = arr[idx]
                rule = text if math.isfinite(v) else "be a finite number"
                errors[idx] = f"{name} must {rule}, got {fmt(v)}"
        return arr, errors


def _to_float_array(name: str, value: Any, default: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Read numbers; blank cells take the default (or are an error when required)."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value.astype(float, copy=False), None
    if _blank(value):
        if default is MISSING:
            return np.array(np.nan), np.array(f"{name} is required", dtype=object)
        return np.array(float(default)), None
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        return np.array(float(value)), None
    if isinstance(value, list | tuple | np.ndarray):
        obj = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
        if obj.dtype.kind in "fiu":
            return obj.astype(float), None
        obj = np.asarray(obj, dtype=object)
        out = np.empty(obj.shape, dtype=float)
        errors = np.full(obj.shape, None, dtype=object)
        any_error = False
        for idx, v in np.ndenumerate(obj):
            if _blank(v):
                if default is MISSING:
                    out[idx] = np.nan
                    errors[idx] = f"{name} is required"
                    any_error = True
                else:
                    out[idx] = float(default)
            elif isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_):
                out[idx] = float(v)
            else:
                out[idx] = np.nan
                errors[idx] = f"{name} must be a number, got {fmt(v)}"
                any_error = True
        return out, (errors if any_error else None)
    return np.array(np.nan), np.array(f"{name} must be a number, got {fmt(value)}", dtype=object)


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
            and float(v) in self.numbers
        ):
            return self.numbers[float(v)], None
        return np.nan, f"{name} must be {self.expected}, got {fmt(v)}"

    def parse(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
            arr = value.astype(float, copy=False)
            if self._identity_numbers and arr.size and np.isin(arr, self._keys).all():
                return arr, None
            keys = np.array(sorted(self.numbers))
            good = np.isin(arr, keys)
            mapped = np.zeros(arr.shape)
            for k, out in self.numbers.items():
                mapped[arr == k] = out
            if good.all():
                return mapped, None
            errors = np.full(arr.shape, None, dtype=object)
            for idx in _indices(~good):
                errors[idx] = f"{name} must be {self.expected}, got {fmt(arr[idx])}"
            mapped[~good] = np.nan
            return mapped, errors
        if isinstance(value, list | tuple | np.ndarray):
            obj = np.asarray(value, dtype=object)
            uniq: dict[Any, tuple[float, str | None]] = {}
            out = np.empty(obj.shape, dtype=float)
            errors = np.full(obj.shape, None, dtype=object)
            for idx, v in np.ndenumerate(obj):
                try:
                    res = uniq[v]
                except (KeyError, TypeError):
                    res = self._one(name, v)
                    with contextlib.suppress(TypeError):  # unhashable cell values
                        uniq[v] = res
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


class Static(Kind):
    """An argument that is the same for every row (a tier table, an exchange name)."""

    def __init__(self, resolve: Callable[[str, Any], Any], default: Any = None) -> None:
        self.resolve = resolve
        self.default = default

    def parse(self, name: str, value: Any) -> tuple[np.ndarray, np.ndarray | None]:
        raise TypeError("static arguments are resolved, not parsed")


# ---------------------------------------------------------------------- failures
class Fail:
    """Collects per-row domain failures raised by a kernel (bankrupt position and so on)."""

    def __init__(self, shape: tuple[int, ...], errors: np.ndarray | None) -> None:
        self.shape = shape
        self.errors = errors
        self.position: np.ndarray | None = None  # rows whose failure is a PositionError

    def __call__(self, mask: Any, template: str, kind: str = "position", **values: Any) -> None:
        """Mark rows where ``mask`` is true with ``template`` formatted per row.

        ``kind="position"`` raises :class:`PositionError` in strict mode, ``"input"``
        :class:`InputError`.
        """
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), self.shape)
        if not mask.any():
            return
        if self.errors is None:
            self.errors = np.full(self.shape, None, dtype=object)
        if self.position is None:
            self.position = np.zeros(self.shape, dtype=bool)
        # values may be given as callables so that message-only arithmetic (e.g. ``-change``)
        # runs only when some row actually failed
        vals = {
            k: np.broadcast_to(np.asarray(v() if callable(v) else v), self.shape)
            for k, v in values.items()
        }
        for idx in _indices(mask & np.equal(self.errors, None)):
            self.errors[idx] = template.format(**{k: fmt(v[idx]) for k, v in vals.items()})
            self.position[idx] = kind == "position"


# ----------------------------------------------------------------------- wrapper
def formula(**kinds: Kind) -> Callable[[Callable[..., Any]], Any]:
    """Wrap a numpy kernel into a checked public formula with a ``.rows`` twin.

    The kernel takes the public arguments (numbers as float arrays, sides as +/-1, contract
    as 0/1, statics resolved) plus a keyword-only ``fail`` and returns a float array.
    """

    def decorate(kernel: Callable[..., Any]) -> Any:
        sig = inspect.signature(kernel)
        public = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "fail"])
        names = list(public.parameters)
        missing = set(names) - set(kinds)
        if missing:
            raise TypeError(f"{kernel.__name__}: no kind for {sorted(missing)}")

        def run(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[RowResults, bool]:
            try:
                bound = public.bind(*args, **kwargs)
            except TypeError as exc:
                raise InputError(f"{kernel.__name__}: {exc}") from None
            bound.apply_defaults()
            parsed: dict[str, Any] = {}
            arrays: dict[str, np.ndarray] = {}
            errs: list[np.ndarray] = []
            for name in names:
                kind = kinds[name]
                value = bound.arguments[name]
                if isinstance(kind, Static):
                    parsed[name] = kind.resolve(name, kind.default if _blank(value) else value)
                    continue
                arr, err = kind.parse(name, as_column(value))
                arrays[name] = arr
                if err is not None:
                    errs.append(err)
            scalar = all(a.ndim == 0 for a in arrays.values())
            try:
                shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
            except ValueError:
                shapes = ", ".join(f"{n}{tuple(a.shape)}" for n, a in arrays.items() if a.ndim)
                raise InputError(f"{kernel.__name__}: columns differ in length: {shapes}") from None
            errors: np.ndarray | None = None
            if errs:
                errors = np.full(shape, None, dtype=object)
                for err in errs:  # the first argument in order wins a row
                    err = np.broadcast_to(err, shape)
                    take = np.equal(errors, None) & np.not_equal(err, None)
                    errors[take] = err[take]
            fail = Fail(shape, errors)
            with np.errstate(all="ignore"):
                values = kernel(**parsed, **arrays, fail=fail)
            values = np.asarray(values, dtype=float)
            if values.shape != shape or not values.flags.writeable:
                values = np.array(np.broadcast_to(values, shape), dtype=float)
            if fail.errors is not None:
                values[np.not_equal(fail.errors, None)] = np.nan
            return RowResults(values, fail.errors, fail.position), scalar

        @functools.wraps(kernel)
        def strict(*args: Any, **kwargs: Any) -> Any:
            res, scalar = run(args, kwargs)
            res.raise_first()
            return float(res.values) if scalar else res.values

        def rows(*args: Any, **kwargs: Any) -> RowResults:
            """Same call, but a bad row yields nan and a message instead of raising."""
            return run(args, kwargs)[0]

        strict.__signature__ = public  # type: ignore[attr-defined]
        strict.rows = rows  # type: ignore[attr-defined]
        strict.kinds = kinds  # type: ignore[attr-defined]
        return strict

    return decorate


__all__ = [
    "MISSING",
    "Contract",
    "Fail",
    "Flag",
    "InputError",
    "Kind",
    "LeverageError",
    "Number",
    "PositionError",
    "RowResults",
    "Side",
    "Static",
    "fmt",
    "formula",
]
