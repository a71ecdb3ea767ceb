"""Tiered maintenance margin: the exchanges' leverage brackets.

A tier covers the notional band ``min_notional <= notional < max_notional`` (half-open,
the lower bound belongs to the tier). Within a tier, maintenance margin is
``MM = notional × mmr − maint_amount``. Exchanges choose the maintenance amount ("cum")
so that MM is continuous across tier boundaries::

    cum_k = cum_{k−1} + min_notional_k × (mmr_k − mmr_{k−1})

so a position sitting exactly on a boundary has the same MM in either tier; only the
maximum leverage differs there, and we report the upper tier's (the band that starts at
the boundary), as Binance's ``notionalFloor`` inclusive brackets do.

Tables come from the dated snapshot shipped in ``leverage/data/tiers_snapshot.json`` (named
like ``binance:BTCUSDT``), from a JSON file in ccxt's ``fetch_leverage_tiers()`` shape
(:func:`load_ccxt_tiers`), or from rows typed in a spreadsheet (:meth:`TierTable.from_rows`).
"""

from __future__ import annotations

import bisect
import gzip
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._args import fmt, percent_text, real
from .errors import InputError, TierTableError

_CUM_TOLERANCE = 1e-6  # relative, on the maintenance amount's continuity check
# Currencies a linear (USDⓈ-margined) table's notional is counted in; any other currency
# is a coin-margined (inverse) table's base coin.
QUOTE_CURRENCIES = frozenset({"USDT", "USDC", "USD", "BUSD", "FDUSD", "TUSD", "DAI", "USDE"})


class Tier(BaseModel):
    """One leverage bracket."""

    model_config = ConfigDict(frozen=True)

    min_notional: float = Field(ge=0, description="lower bound of the notional band (inclusive)")
    max_notional: float = Field(gt=0, description="upper bound of the notional band (exclusive)")
    mmr: float = Field(ge=0, lt=1, description="maintenance margin rate, a fraction")
    maint_amount: float = Field(default=0.0, description="maintenance amount (cum) deducted")
    max_leverage: float | None = Field(
        default=None, gt=0, description="largest leverage the band allows (None: not published)"
    )

    @model_validator(mode="after")
    def _band(self) -> Tier:
        if not self.max_notional > self.min_notional:
            raise ValueError(
                f"max_notional must be > min_notional, got {fmt(self.max_notional)} <= "
                f"{fmt(self.min_notional)}"
            )
        return self


class TierTable(BaseModel):
    """An ordered, gap-free list of tiers for one symbol."""

    model_config = ConfigDict(frozen=True)

    name: str = ""
    currency: str = ""
    source: str = ""
    tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _contiguous(self) -> TierTable:
        check_tiers(self.tiers, self.name)
        return self

    # -- arrays used by the vectorized formulas --------------------------------
    @cached_property
    def bounds(self) -> np.ndarray:
        return np.array([t.min_notional for t in self.tiers])

    @cached_property
    def mmrs(self) -> np.ndarray:
        return np.array([t.mmr for t in self.tiers])

    @cached_property
    def maint_amounts(self) -> np.ndarray:
        return np.array([t.maint_amount for t in self.tiers])

    @cached_property
    def max_leverages(self) -> np.ndarray:
        return np.array([np.nan if t.max_leverage is None else t.max_leverage for t in self.tiers])

    @cached_property
    def leverage_caps(self) -> np.ndarray:
        """The most leverage each band may allow: the published max, or for a band without
        one the nearest published max below it (``inf`` when none is published at or below).
        Exchanges' max leverage never rises with size, so a band whose maximum the source
        left out allows at most what the band below does (maybe less: :func:`max_open` does
        not count on it).

        >>> get_tier_table("binance:BTCUSD_PERP").leverage_caps[-4:].tolist()
        [4.0, 4.0, 4.0, 4.0]
        """
        caps = self.max_leverages.copy()
        for k in range(len(caps)):
            if np.isnan(caps[k]):
                caps[k] = caps[k - 1] if k else np.inf
        return caps

    @cached_property
    def contract(self) -> str:
        """``"linear"`` or ``"inverse"``: the positions this table is for, from its ccxt
        symbol (``BTC/USD:BTC`` settles in its base coin: inverse) or else its currency (a
        coin-margined table counts notional in coin); ``""`` when unknown (rows typed in a
        sheet), and then the table is taken as given.

        >>> [get_tier_table(n).contract for n in ("binance:BTCUSD_PERP", "binance:BTCUSDT")]
        ['inverse', 'linear']
        """
        parts = self.name.split(":")
        for i, part in enumerate(parts[:-1]):
            if "/" in part:
                return "inverse" if parts[i + 1] == part.split("/")[0] else "linear"
        currency = self.currency.strip().upper()
        if not currency:
            return ""
        return "linear" if currency in QUOTE_CURRENCIES else "inverse"

    @cached_property
    def continuous(self) -> bool:
        """Whether MM is continuous across every bound (True for exchange tables with amounts)."""
        return all(
            abs(b.maint_amount - (a.maint_amount + b.min_notional * (b.mmr - a.mmr)))
            <= _CUM_TOLERANCE * max(1.0, abs(b.maint_amount))
            for a, b in zip(self.tiers, self.tiers[1:], strict=False)
        )

    def index(self, notional: Any) -> np.ndarray:
        """Tier number (0-based) whose band contains ``notional``; beyond the table, the last."""
        idx = np.searchsorted(self.bounds, notional, side="right") - 1
        return np.clip(idx, 0, len(self.tiers) - 1)

    def lookup(self, notional: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mmr, maint_amount, max_leverage)`` of the tier each notional falls in."""
        i = self.index(notional)
        return self.mmrs[i], self.maint_amounts[i], self.max_leverages[i]

    @cached_property
    def _bounds_list(self) -> list[float]:
        return [t.min_notional for t in self.tiers]

    def max_leverage_at(self, notional: Any) -> Any:
        """The max leverage of the tier each notional falls in, as :attr:`leverage_caps`
        (``inf``: none published at or below it); a float for a float, in plain Python (one
        row of the scalar path: no arrays)."""
        if notional.__class__ is float and notional == notional:
            k = min(max(bisect.bisect_right(self._bounds_list, notional) - 1, 0),
                    len(self.tiers) - 1)
            return float(self.leverage_caps[k])
        return self.leverage_caps[self.index(notional)]  # one gather, not lookup's three

    def rate_at(self, notional: float) -> tuple[float, float]:
        """``(mmr, maint_amount)`` of the tier ``notional`` (a float) falls in, in plain
        Python (one row of the journal's replay: no arrays); beyond the table, the last."""
        k = min(max(bisect.bisect_right(self._bounds_list, notional) - 1, 0),
                len(self.tiers) - 1)
        tier = self.tiers[k]
        return tier.mmr, tier.maint_amount

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: Any, name: str = "") -> TierTable:
        """Build from spreadsheet rows.

        Five columns: ``min_notional, max_notional, mmr, maint_amount, max_leverage``;
        four columns: ``min_notional, max_notional, mmr, max_leverage`` (maintenance amount
        derived). A leading header row of text and blank rows are skipped.
        """
        table = [list(r) if isinstance(r, Sequence | np.ndarray) else [r] for r in rows]
        table = [r for r in table if any(v not in (None, "") for v in r)]
        if table and all(isinstance(v, str) for v in table[0] if v not in (None, "")):
            table = table[1:]  # a header row
        if not table:
            raise TierTableError("tiers has no rows")
        width = len(table[0])
        if width not in (4, 5):
            raise TierTableError(
                "tiers must have 4 columns (min_notional, max_notional, mmr, max_leverage) or 5 "
                f"(min_notional, max_notional, mmr, maint_amount, max_leverage), got {width}"
            )
        for i, r in enumerate(table):
            if len(r) != width:
                raise TierTableError(
                    f"tiers row {i + 1} has {len(r)} values where row 1 has {width}: every row "
                    "needs the same columns"
                )
        raw: list[list[float | None]] = []
        for i, r in enumerate(table):
            # the third column is the mmr, a rate: "0.5%" typed as text is 0.005
            vals = [_tier_number(v, f"tiers row {i + 1}", rate=j == 2) for j, v in enumerate(r)]
            if width == 4:
                vals.insert(3, None)
            raw.append(vals)
        return _table_from_raw(raw, name=name)


def _tier_number(v: Any, where: str, rate: bool = False) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if rate and isinstance(v, str) and percent_text(v) is not None:
        return percent_text(v)
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise TierTableError(f"{where}: values must be numbers, got {fmt(v)}")
    return real(v)


# Columns of a tier row that must be finite numbers (max_notional may be open: blank or inf).
_FINITE_COLUMNS = ("min_notional", "mmr", "maint_amount", "max_leverage")


def _table_from_raw(raw: list[list[float | None]], **meta: str) -> TierTable:
    """Rows of (min, max, mmr, maint_amount or None, max_leverage); derive missing amounts."""
    tiers = []
    prev_mmr, prev_cum = 0.0, 0.0
    for i, (lo, hi, mmr, cum, lev) in enumerate(raw):
        where = f"tier {i + 1}"
        if lo is None:
            raise TierTableError(f"{where}: min_notional is required")
        if mmr is None:
            raise TierTableError(f"{where}: mmr is required")
        for label, v in zip(_FINITE_COLUMNS, (lo, mmr, cum, lev), strict=True):
            if v is not None and not math.isfinite(v):
                raise TierTableError(f"{where}: {label} must be a finite number, got {fmt(v)}")
        if hi is not None and math.isnan(hi):
            raise TierTableError(f"{where}: max_notional must be a number or blank, got nan")
        if cum is not None and cum < 0:
            raise TierTableError(f"{where}: maint_amount must be >= 0, got {fmt(cum)}")
        hi = math.inf if hi is None else hi
        if cum is None:
            cum = 0.0 if i == 0 else prev_cum + lo * (mmr - prev_mmr)
        try:
            tiers.append(
                Tier(min_notional=lo, max_notional=hi, mmr=mmr, maint_amount=cum, max_leverage=lev)
            )
        except ValueError as exc:
            raise TierTableError(f"{where}: {_first_pydantic_message(exc)}") from None
        prev_mmr, prev_cum = mmr, cum
    try:
        return TierTable(tiers=tuple(tiers), **meta)
    except ValueError as exc:
        raise TierTableError(_first_pydantic_message(exc)) from None


def _first_pydantic_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        e = errors()[0]
        loc = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", exc)).removeprefix("Value error, ")
        return f"{loc} {msg}".strip() if loc else msg
    return str(exc)


def check_tiers(tiers: Sequence[Tier], name: str = "") -> None:
    """Reject gaps, overlaps, an unsorted table, and a discontinuous maintenance amount."""
    label = f"tiers {name}: " if name else "tiers: "
    if not tiers:
        raise TierTableError(f"{label}at least one tier is required")
    if tiers[0].min_notional != 0:
        raise TierTableError(
            f"{label}the first tier must start at notional 0, got {fmt(tiers[0].min_notional)}"
        )
    # A table with no maintenance amounts at all (Bybit's older risk limits) applies one
    # rate to the whole position, so its MM jumps at the bounds on purpose; any table that
    # does carry amounts must carry the continuous ones.
    has_amounts = any(t.maint_amount != 0 for t in tiers)
    for k in range(1, len(tiers)):
        a, b = tiers[k - 1], tiers[k]
        if b.min_notional > a.max_notional:
            raise TierTableError(
                f"{label}gap between tier {k} (ends {fmt(a.max_notional)}) and tier {k + 1} "
                f"(starts {fmt(b.min_notional)})"
            )
        if b.min_notional < a.max_notional:
            raise TierTableError(
                f"{label}tier {k + 1} (starts {fmt(b.min_notional)}) overlaps tier {k} "
                f"(ends {fmt(a.max_notional)})"
            )
        expected = a.maint_amount + b.min_notional * (b.mmr - a.mmr)
        off = abs(b.maint_amount - expected)
        if has_amounts and off > _CUM_TOLERANCE * max(1.0, abs(expected)):
            raise TierTableError(
                f"{label}tier {k + 1} maint_amount must be {fmt(expected)} so that maintenance "
                f"margin is continuous at notional {fmt(b.min_notional)}, got {fmt(b.maint_amount)}"
            )


# ------------------------------------------------------------------ ccxt & registry
# ccxt has renamed tier fields over the years; each tuple lists the names of one field, the
# current one first (older ccxt and the raw Binance bracket use the later spellings).
_FIELDS = {
    "min": ("minNotional", "notionalFloor"),
    "max": ("maxNotional", "notionalCap"),
    "mmr": ("maintenanceMarginRate", "maintenanceMarginRatio", "maintMarginRatio"),
    "lev": ("maxLeverage", "initialLeverage"),
}
STALE_AFTER_DAYS = 30
CACHE_ENV = "LEVERAGE_TIERS_CACHE"


class StaleTiersWarning(UserWarning):
    """A cached tier table is older than :data:`STALE_AFTER_DAYS`: fetch it again."""


def _field(t: Mapping[str, Any], key: str) -> Any:
    for name in _FIELDS[key]:
        v = t.get(name)
        if v not in (None, ""):
            return v
    return None


def _ccxt_number(v: Any, label: str) -> float | None:
    """Numbers as ccxt gives them: float, int, or the exchange's decimal string."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise ValueError(f"{label} must be a number, got {fmt(v)}")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be a number, got {fmt(v)}") from None
    if math.isinf(x) and label == "maxNotional":
        return None
    return x


def _family(exchange: str) -> str:
    """The family whose table names a ccxt id shares (USDⓈ-M and COIN-M are both Binance):
    its convention's name, from the registry; any other name is its own family."""
    from .conventions import CCXT_IDS  # here, not on top: the conventions import this module

    return CCXT_IDS.get(exchange, exchange)


def table_name(exchange: str, symbol: str) -> str:
    """The one name of a tier table: ``family:BASEQUOTE``, from a ccxt id and a symbol.

    A ccxt unified symbol (``SOL/USDT:USDT``) is written the way Binance and Bybit name the
    market: base and quote run together, ``_PERP`` for a coin-margined perpetual (settled in
    the base coin), ``_YYMMDD`` for a dated future. A name that is already a market id is kept.

    >>> table_name("binanceusdm", "SOL/USDT:USDT")
    'binance:SOLUSDT'
    >>> table_name("binancecoinm", "BTC/USD:BTC")
    'binance:BTCUSD_PERP'
    >>> table_name("", "binance:BTCUSDT")
    'binance:BTCUSDT'
    """
    exchange, symbol = exchange.strip(), symbol.strip()
    if not exchange and ":" in symbol and "/" not in symbol.split(":", 1)[0]:
        exchange, symbol = symbol.split(":", 1)
    family = _family(exchange.lower())
    if "/" in symbol:
        base, rest = symbol.split("/", 1)
        quote, _, settle_expiry = rest.partition(":")
        settle, _, expiry = settle_expiry.partition("-")
        symbol = base + quote
        if expiry:
            symbol += "_" + expiry
        elif settle and settle == base:
            symbol += "_PERP"
    return f"{family}:{symbol}" if family else symbol


@lru_cache(maxsize=8192)  # names repeat: every row of a journal looks its symbol up
def _key(name: str) -> str:
    return table_name("", name).lower()


def tables_from_ccxt(data: Mapping[str, Any], exchange: str = "") -> dict[str, TierTable]:
    """Tier tables from ccxt's ``fetch_leverage_tiers()`` result ({symbol: [tier, ...]}).

    Each tier has ``minNotional, maxNotional, maintenanceMarginRate, maxLeverage`` (older
    ccxt: ``notionalFloor, notionalCap, maintenanceMarginRatio``), numbers or decimal strings,
    and an exchange-specific ``info``; the maintenance amount is read from ``info.cum``
    (Binance), ``info.mmDeduction`` (Bybit) or ``info.deduction`` (Gate) when present, else
    derived for continuity.
    A last tier without ``maxNotional`` is open-ended; a tier that starts at the previous
    tier's maximum + 1 (OKX counts whole contracts) continues it without a gap. Tables are
    keyed by the name they were given (``exchange:SYMBOL``); :func:`get_tier_table` also
    finds them by :func:`table_name`.
    """
    out: dict[str, TierTable] = {}
    for symbol, rows in data.items():
        if symbol.startswith("_"):
            continue
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise TierTableError(f"tiers {symbol}: expected a list of tiers, got {fmt(rows)}")
        raw: list[list[float | None]] = []
        try:
            ordered = sorted(rows, key=lambda r: _ccxt_number(_field(r, "min"), "minNotional") or 0)
        except ValueError as exc:
            raise TierTableError(f"tiers {symbol}: {exc}") from None
        for i, t in enumerate(ordered):
            try:
                info = t.get("info") or {}
                if not isinstance(info, Mapping):
                    info = {}
                # the maintenance amount: Binance's cum, Bybit's mmDeduction, Gate's deduction
                cum = next((info[k] for k in ("cum", "mmDeduction", "deduction")
                            if info.get(k) not in (None, "")), None)
                lo = _ccxt_number(_field(t, "min"), "minNotional")
                if raw and lo is not None and raw[-1][1] is not None and lo - raw[-1][1] == 1:
                    lo = raw[-1][1]  # OKX: [0, 500], [501, 1000]: the band continues
                raw.append(
                    [
                        lo,
                        _ccxt_number(_field(t, "max"), "maxNotional"),
                        _ccxt_number(_field(t, "mmr"), "maintenanceMarginRate"),
                        _ccxt_number(cum, "info.cum"),
                        _ccxt_number(_field(t, "lev"), "maxLeverage"),
                    ]
                )
            except ValueError as exc:
                raise TierTableError(f"tiers {symbol} tier {i + 1}: {exc}") from None
        name = symbol if ":" in symbol and not exchange else f"{exchange}:{symbol}".strip(":")
        currency = str(rows[0].get("currency") or "") if rows else ""
        try:
            out[name] = _table_from_raw(raw, name=name, currency=currency)
        except TierTableError as exc:
            raise TierTableError(f"tiers {name}: {exc}") from None
    return out


def load_ccxt_tiers(path: str | os.PathLike[str], exchange: str = "") -> dict[str, TierTable]:
    """Read a JSON file saved from ccxt, e.g.::

        json.dump(ccxt.binanceusdm().fetch_leverage_tiers(), open("tiers.json", "w"))

    and register its tables so formulas accept them by name (``exchange:SYMBOL``).
    """
    tables = tables_from_ccxt(_read_json(path), exchange)
    _registry().update({_key(k): v for k, v in tables.items()})
    return tables


def _read_json(path: str | os.PathLike[str]) -> Any:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TierTableError(f"tiers file {os.fspath(path)!r} could not be read: {exc}") from None
    if not isinstance(data, dict):
        raise TierTableError(f"tiers file {os.fspath(path)!r} must hold a JSON object")
    return data


# ------------------------------------------------------------------ the local cache
def tier_cache_dir() -> Path:
    """Where ``leverage tiers fetch`` saves tables: ``$LEVERAGE_TIERS_CACHE``, else
    ``$XDG_CACHE_HOME/leverage-toolkit/tiers`` (``~/.cache/...``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "leverage-toolkit" / "tiers"


def save_tier_cache(
    exchange: str,
    fetched: Mapping[str, Any],
    today: date | None = None,
    folder: str | os.PathLike[str] | None = None,
) -> tuple[Path, int]:
    """Save ccxt's ``fetch_leverage_tiers()`` result for ``exchange`` (a ccxt id) in the
    cache, dated ``today``, under the table names of :func:`table_name`. Every table is
    checked first, so a bad answer leaves the previous cache in place. Returns the file and
    the number of tables."""
    today = today or datetime.now(UTC).date()
    named = {table_name(exchange, s): rows for s, rows in fetched.items() if not s.startswith("_")}
    tables_from_ccxt(named)  # refuse a table we could not use, before replacing the file
    folder = Path(folder) if folder is not None else tier_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{exchange}.json"
    payload = {"_meta": {"exchange": exchange, "fetched": today.isoformat()}, **named}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, default=str))
    tmp.replace(path)
    _registry.cache_clear()
    return path, len(named)


def _cached_tables() -> dict[str, TierTable]:
    folder = tier_cache_dir()
    out: dict[str, TierTable] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        data = _read_json(path)
        meta = data.get("_meta") or {}
        fetched = str(meta.get("fetched", ""))
        source = f"cache {path.name} (fetched {fetched or 'undated'})"
        try:
            day: date | None = date.fromisoformat(fetched)
        except ValueError:
            day = None
        for name, table in tables_from_ccxt(data).items():
            out[_key(name)] = table.model_copy(update={"source": source})
            _FETCHED[_key(name)] = day
    return out


_FETCHED: dict[str, date | None] = {}  # table key → the day its cache file was fetched


def cache_age_days(name: str, today: date | None = None) -> int | None:
    """Days since the cached table ``name`` was fetched; None for a shipped table."""
    key = _key(name)
    table = _lookup(key)  # builds the registry, and so _FETCHED
    fetched = _FETCHED.get(key)
    if fetched is None or table is None or table is _snapshot().get(key) \
            or table is _FULL_TABLES.get(key):
        return None
    return ((today or datetime.now(UTC).date()) - fetched).days


@lru_cache(maxsize=1)
def _snapshot() -> dict[str, TierTable]:
    text = resources.files("leverage").joinpath("data/tiers_snapshot.json").read_text()
    data = json.loads(text)
    sources = data.get("_meta", {}).get("sources", {})
    tables = tables_from_ccxt(data)

    def describe(src: Any) -> str:
        if isinstance(src, dict):
            return f"{src.get('source', '')} ({src.get('source_date', 'undated')})"
        return str(src or "")

    for k in tables:
        src = sources.get(k)
        day = str(src.get("source_date", ""))[:10] if isinstance(src, dict) else ""
        try:
            _SHIPPED_DATES[_key(k)] = date.fromisoformat(day)
        except ValueError:
            _SHIPPED_DATES[_key(k)] = None
    return {
        _key(k): v.model_copy(update={"source": describe(sources.get(k))})
        for k, v in tables.items()
    }


_SHIPPED_DATES: dict[str, date | None] = {}  # table key → its shipped source's date


@lru_cache(maxsize=1)
def _registry() -> dict[str, TierTable]:
    """Names resolve to the freshest table: a fetched (cached) table wins over a shipped one
    unless the shipped one is dated later than the fetch (an undated shipped table is older
    than any fetch); ``$LEVERAGE_TIERS_FILE`` overrides both. The full Binance USDⓈ-M
    snapshot (:func:`_binance_full`) answers the names nothing here holds."""
    _FETCHED.clear()
    reg = _cached_tables()
    for key, table in _snapshot().items():
        fetched, shipped = _FETCHED.get(key), _SHIPPED_DATES.get(key)
        if key not in reg or fetched is None or (shipped is not None and shipped > fetched):
            reg[key] = table
    extra = os.environ.get("LEVERAGE_TIERS_FILE")
    if extra:
        reg.update({_key(k): v for k, v in tables_from_ccxt(_read_json(extra)).items()})
    return reg


BINANCE_FULL = "data/binance_usdm_tiers.json.gz"
"""Every Binance USDⓈ-M symbol's brackets, compact (``[min, max, mmr, cum, max_leverage]``
rows), gzip'd; its ``_meta`` names the source and date (leverage/data/SOURCES.md)."""


@lru_cache(maxsize=1)
def _binance_full() -> tuple[dict[str, tuple[str, list[list[float | None]]]], dict[str, str]]:
    """The full Binance snapshot as (settle currency, raw rows) by table key, and its
    ``_meta``; a table is built only when a name asks for it (900 tables would cost every
    start-up)."""
    data = json.loads(gzip.decompress(resources.files("leverage").joinpath(BINANCE_FULL)
                                      .read_bytes()))
    meta = data.pop("_meta")
    return {_key(table_name("binanceusdm", s)): (s.rsplit(":", 1)[1].split("-")[0], rows)
            for s, rows in data.items()}, meta


_FULL_TABLES: dict[str, TierTable] = {}


def _from_full(key: str) -> TierTable | None:
    raw, meta = _binance_full()
    if key not in raw:
        return None
    settle, rows = raw[key]
    table = _FULL_TABLES.get(key)
    if table is None:
        name = "binance:" + key.split(":", 1)[1].upper()
        # every market of the file is USDⓈ-margined: linear (ETH/BTC:BTC too, so its
        # settle coin is not written as the currency, which would read as coin-margined)
        table = _table_from_raw([list(r) for r in rows], name=name,
                                currency=settle if settle in QUOTE_CURRENCIES else "",
                                source=f"{meta['source']} ({meta['date']})")
        _FULL_TABLES[key] = table
    return table


def _lookup(key: str) -> TierTable | None:
    """The table of a key: the registry's, or the full Binance snapshot's when the registry
    has none or only a fetch older than the snapshot."""
    table = _registry().get(key)
    fetched = _FETCHED.get(key)
    if table is None or (fetched is not None and table is not _snapshot().get(key)
                         and fetched < full_snapshot_date()):
        return _from_full(key) or table
    return table


def full_snapshot_date() -> date:
    """The date of the shipped full Binance USDⓈ-M snapshot."""
    return date.fromisoformat(_binance_full()[1]["date"])


def table_date(name: str) -> date | None:
    """The day the table ``name`` was fetched or its shipped source was dated (None: the
    source gives no date)."""
    key = _key(name)
    table = _lookup(key)
    if table is None:
        return None
    if table is _FULL_TABLES.get(key):
        return full_snapshot_date()
    if table is _snapshot().get(key):
        return _SHIPPED_DATES.get(key)
    return _FETCHED.get(key)


def shipped_tables() -> list[TierTable]:
    """The curated snapshot's tables (``leverage/data/tiers_snapshot.json``)."""
    return list(_snapshot().values())


def tier_table_names() -> list[str]:
    """Names accepted as ``tiers`` (``exchange:SYMBOL``): fetched, shipped, and every
    Binance USDⓈ-M symbol of the full snapshot."""
    names = {_key(t.name): t.name for t in _registry().values()}
    for key in _binance_full()[0]:
        names.setdefault(key, "binance:" + key.split(":", 1)[1].upper())
    return sorted(names.values())


def get_tier_table(name: str) -> TierTable:
    """A registered table by name, case-insensitive (``binance:btcusdt`` works, and so does
    the ccxt spelling ``binanceusdm:BTC/USDT:USDT``). A cached table older than 30 days
    is returned with a :class:`StaleTiersWarning`."""
    table = _lookup(_key(name))
    if table is None:
        names = tier_table_names()
        known = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        raise InputError(
            f"tiers must be a known table name ({known}; `leverage tiers fetch` adds an "
            f"exchange's tables), got {name!r}"
        ) from None
    age = cache_age_days(name)
    if age is not None and age > STALE_AFTER_DAYS:
        warnings.warn(
            f"tiers {table.name} were fetched {age} days ago ({table.source}): run "
            "`leverage tiers fetch` again, exchanges change their tiers often",
            StaleTiersWarning,
            stacklevel=2,
        )
    return table


def resolve_tiers(argname: str, value: Any) -> TierTable | None:
    """Accept ``None``, a :class:`TierTable`, a registered name, or spreadsheet rows."""
    if value is None:
        return None
    if isinstance(value, TierTable):
        return value
    if isinstance(value, str):
        return get_tier_table(value) if value.strip() else None
    if isinstance(value, Iterable):
        return TierTable.from_rows(value)
    raise InputError(f"{argname} must be a tier table, a table name or rows, got {fmt(value)}")


def tier_of_root(c: Any, sign: Any, tiers: TierTable, fee_rate: Any = 0.0) -> Any:
    """Tier index holding the root of ``n + sign × (MM(n) + fee_rate × n) = c``.

    Every isolated or cross liquidation condition ``equity(P) = MM(P)`` takes this form once
    written in the notional ``n`` at the liquidation price (``leverage.core`` gives ``c`` and
    ``sign`` per contract and side). With a continuous MM the left side increases with ``n``,
    so the root lies at or above bound ``b_j`` exactly when ``c − sign × M_j >= b_j``, with
    ``M_j = MM(b_j) + fee_rate × b_j``: the tier is the number of bounds after the first that
    pass this test, whatever each row's sign, so one scan serves longs and shorts alike and the
    answer is always consistent with the tier used. ``sign`` is +1/−1 or an array of them.
    Returns ``0`` (a scalar) when every row sits in the first tier, the common case for
    retail-sized positions; a plain ``int`` for one row.
    """
    if len(tiers.tiers) == 1:
        return 0
    if c.__class__ is float and sign.__class__ is float and fee_rate.__class__ is float:
        return _one_tier(c, -sign, _bound_maint(tiers, fee_rate)[0])  # a scalar call's row
    sign, c = np.asarray(sign), np.asarray(c)
    if np.ndim(fee_rate) == 0:
        bounds, maint = _bound_maint(tiers, float(fee_rate))
        if c.ndim == 0 and sign.ndim == 0:
            return _one_tier(float(c), -float(sign), bounds)
        return _tier_count(c, -sign, tiers.bounds, maint)
    fee = np.asarray(fee_rate)
    maint_rows = [b * (r + fee) - a for b, r, a in
                  zip(tiers.bounds, tiers.mmrs, tiers.maint_amounts, strict=True)]
    return _tier_count(c, -sign, tiers.bounds, maint_rows)


_BOUND_MAINT: dict[tuple[int, float], tuple[TierTable, list[tuple[float, float]], np.ndarray]] = {}


def _bound_maint(tiers: TierTable, fee_rate: float) -> tuple[list[tuple[float, float]], Any]:
    """Per bound after the first, ``(b_j, M_j)`` as floats, and ``M_j`` as an array, kept
    per table and fee (the table is held too, so its id stays its own)."""
    key = (id(tiers), fee_rate)
    hit = _BOUND_MAINT.get(key)
    if hit is None or hit[0] is not tiers:
        maint = tiers.bounds * (tiers.mmrs + fee_rate) - tiers.maint_amounts
        if len(_BOUND_MAINT) >= 256:  # tables typed in cells come and go
            _BOUND_MAINT.clear()
        hit = _BOUND_MAINT[key] = (
            tiers, list(zip(tiers.bounds.tolist()[1:], maint.tolist()[1:], strict=True)), maint
        )
    return hit[1], hit[2]


def _one_tier(c: float, neg_sign: float, bounds: list[tuple[float, float]]) -> int:
    """:func:`_tier_count` for one row, in floats (the same operations, the same rounding)."""
    k = 0
    for b, m in bounds:
        if not neg_sign * m + c >= b:
            break
        k += 1
    return k


def _tier_count(c: np.ndarray, neg_sign: np.ndarray, bounds: np.ndarray, maint: Any) -> Any:
    """Number of bounds after the first with ``c − sign × M_j >= b_j``, by a linear scan.

    Tables have a dozen tiers and most positions sit in the lowest few, so counting with an
    early stop (at the first bound no row reaches) beats a binary search on a column; the
    count is one byte a row and the scan reuses two buffers. 0 when every row is in the
    first tier.
    """
    shape = np.broadcast_shapes(c.shape, neg_sign.shape, *(np.shape(m) for m in maint))
    k: np.ndarray | None = None
    work = np.empty(shape)
    above = np.empty(shape, dtype=bool)
    for j in range(1, len(bounds)):
        np.multiply(neg_sign, maint[j], out=work)
        work += c
        np.greater_equal(work, bounds[j], out=above)
        if not above.any():
            break
        if k is None:
            k = np.zeros(shape, dtype=np.uint8 if len(bounds) < 256 else np.intp)
        k += above
    return 0 if k is None else k


def clip_to_band(notional: Any, k: Any, tiers: TierTable) -> Any:
    """Keep a root's notional inside the band of the tier it was solved in.

    Needed only where MM jumps at a bound (tables without maintenance amounts, like Bybit's
    older risk limits): there the root sits on the bound itself, since liquidation happens as
    the notional crosses it. For continuous tables this changes nothing, so it is skipped.
    """
    if tiers.continuous:
        return notional
    upper = np.append(tiers.bounds[1:], np.inf)
    return np.where(notional > 0, np.clip(notional, tiers.bounds[k], upper[k]), notional)


# ------------------------------------------------------------------ the rate from a symbol
SYMBOL_FAMILY = "binance"
"""The tier family of a Symbol typed without one (``BTCUSDT``): the workbooks' liquidation
formula is Binance's, so a bare symbol is read as Binance's market; ``bybit:BTCUSDT`` names
another exchange's table."""

OVERRIDE_FACTOR = 2.0
"""A typed maintenance rate more than this factor away from its symbol's tier is flagged."""


def symbol_table_name(symbol: Any, family: str = SYMBOL_FAMILY) -> str:
    """The tier table name a Symbol cell stands for: ``BTCUSDT`` → ``binance:BTCUSDT``,
    ``bybit:BTCUSDT`` as typed, a ccxt symbol (``SOL/USDT:USDT``) as :func:`table_name`
    writes it; "" for a blank cell or anything that is not text.

    >>> symbol_table_name(" btcusdt "), symbol_table_name("bybit:ETHUSDT")
    ('binance:BTCUSDT', 'bybit:ETHUSDT')
    """
    return _symbol_table_name(symbol, family) if isinstance(symbol, str) else ""


@lru_cache(maxsize=4096)  # a journal names the same few symbols on every row
def _symbol_table_name(symbol: str, family: str) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        return ""
    text = symbol.strip()
    head = text.split(":", 1)[0]
    if ":" in text and "/" not in head:
        return table_name("", text)
    return table_name(family, text.upper() if "/" not in text else text)


def symbol_table(symbol: Any, family: str = SYMBOL_FAMILY) -> TierTable | None:
    """The tier table of a Symbol cell (see :func:`symbol_table_name`), or None when no
    table of that name is shipped or fetched: an unknown symbol is not an error, the row
    then needs a typed rate. The Symbol names the market, so its table is used whatever the
    row's Contract says (``BTCUSD_PERP`` is Binance's coin-margined BTC perpetual)."""
    name = symbol_table_name(symbol, family)
    if not name:
        return None
    key = _key(name)
    table = _lookup(key)
    if table is not None and _FETCHED.get(key) is not None:
        get_tier_table(name)  # the warning of a stale cached table
    return table


def is_blank(value: Any) -> bool:
    """A cell with nothing typed: None, or text of only spaces."""
    return value is None or (isinstance(value, str) and not value.strip())


def symbol_rate(symbol: Any, notional: float,
                family: str = SYMBOL_FAMILY) -> tuple[float, float] | None:
    """``(mmr, maint_amount)`` of the tier the position's ``notional`` falls in, from its
    Symbol's table; None when the symbol has no table or the notional is not a number.

    The notional is the position's at entry, ``qty × entry`` (linear, in quote) or
    ``qty ÷ entry`` (inverse, in coin): one rate per position state, as freqtrade's
    ``get_maintenance_ratio_and_amt(pair, amount × open_rate)`` reads Binance's brackets.

    >>> symbol_rate("BTCUSDT", 30_000.0)   # binance:BTCUSDT tier 1
    (0.004, 0.0)
    >>> symbol_rate("BTCUSDT", 1_000_000.0)  # tier 3: 0.65 %, amount 1,500
    (0.0065, 1500.0)
    """
    table = symbol_table(symbol, family)
    if table is None or not isinstance(notional, int | float) or not math.isfinite(notional):
        return None
    return table.rate_at(abs(float(notional)))


OVERRIDE_NOTE = ("maint. margin rate differs from the tier of {name} by more than 2x: check "
                 "it, or clear it to use the tier")


def override_note(typed_mmr: float, tier_mmr: float, name: str) -> str:
    """The Check of a typed maintenance rate more than :data:`OVERRIDE_FACTOR` away from
    the rate of its symbol's tier, either way ("" when within): a typed rate stays the
    override, but a mistyped rate is where the most common wrong liquidation price comes
    from.

    >>> override_note(0.05, 0.004, "binance:BTCUSDT")[:59]
    'maint. margin rate differs from the tier of binance:BTCUSDT'
    >>> override_note(0.005, 0.004, "binance:BTCUSDT")
    ''
    """
    if not (tier_mmr > 0 and typed_mmr >= 0):
        return ""
    if typed_mmr <= OVERRIDE_FACTOR * tier_mmr and tier_mmr <= OVERRIDE_FACTOR * typed_mmr:
        return ""
    return OVERRIDE_NOTE.format(name=name)
