"""A ccxt exchange client for a read-only import: credentials, base URL, testnet, retries.

ccxt is imported here and only when a client is made, so ``import leverage_exchange`` (and the
``leverage`` command) stay fast and work without the ``[exchange]`` extra installed.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from leverage.conventions import CCXT_IDS
from leverage.errors import InputError, LeverageError

from . import answers

KEY_ENV = "LEVERAGE_EXCHANGE_KEY"
SECRET_ENV = "LEVERAGE_EXCHANGE_SECRET"
PASSWORD_ENV = "LEVERAGE_EXCHANGE_PASSWORD"  # OKX's and Bitget's API passphrase
KEY_FILE_ENV = "LEVERAGE_EXCHANGE_KEY_FILE"
SUPPORTED = tuple(CCXT_IDS)  # every convention's ccxt ids (leverage.conventions)
_HOST = re.compile(r"^https?://[^/]+")
T = TypeVar("T")


class ExchangeError(LeverageError):
    """The exchange could not be read (refused key, unreachable, kept failing). The message
    is one line and never holds a credential."""


RETRY_AFTER_CAP = 60.0
"""Longest Retry-After honoured without a :class:`Deadline` (seconds); with one, the deadline
is the bound."""


class Deadline:
    """An overall bound for one exchange command: every request, retry wait and answer read
    (per-request timeouts alone let a server that sends a byte every 0.25 s, or pages that
    never end, run forever). The clock starts when it is made; ``clock`` and ``sleep`` are
    injectable so tests need no wall-clock time.

    >>> Deadline(30, clock=lambda: 100.0).left()
    30.0
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from leverage_sheets.http import check_seconds

        self.seconds = check_seconds("deadline", seconds)
        self.clock = clock
        self.sleep = sleep
        self.ends_at = clock() + self.seconds

    def left(self) -> float:
        """Seconds until the deadline (0 or less: passed)."""
        return self.ends_at - self.clock()

    def passed(self, name: str, doing: str = "") -> ExchangeError:
        """The error of a command stopped at the deadline."""
        return ExchangeError(
            f"{name} did not finish within the deadline of {self.seconds:g} s{doing} (a slow "
            "or endless answer, or retries): try again later or give --deadline more seconds"
        )


def _ccxt() -> Any:
    try:
        import ccxt
    except ImportError:
        raise ExchangeError(
            "the exchange import needs ccxt: pip install 'leverage-toolkit[exchange]'"
        ) from None
    return ccxt


def read_credentials(key_file: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``apiKey``/``secret`` (and OKX's or Bitget's ``password``) from a JSON key file
    (``key_file`` or ``$LEVERAGE_EXCHANGE_KEY_FILE``), else from ``$LEVERAGE_EXCHANGE_KEY``
    and ``$LEVERAGE_EXCHANGE_SECRET``. Messages name where the key was looked for, never its
    value."""
    path = key_file or os.environ.get(KEY_FILE_ENV)
    if path:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise ExchangeError(
                f"key file {os.fspath(path)!r} could not be read as JSON "
                '({"apiKey": "...", "secret": "..."})'
            ) from None
        if not isinstance(data, Mapping) or not data.get("apiKey") or not data.get("secret"):
            raise ExchangeError(f"key file {os.fspath(path)!r} must hold apiKey and secret")
        creds = {"apiKey": str(data["apiKey"]), "secret": str(data["secret"])}
        if data.get("password"):
            creds["password"] = str(data["password"])
        return creds
    key, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
    if not key or not secret:
        raise ExchangeError(
            f"no API key: set {KEY_ENV} and {SECRET_ENV} (or {KEY_FILE_ENV} / --key-file) to a "
            "read-only key of the exchange"
        )
    creds = {"apiKey": key, "secret": secret}
    if os.environ.get(PASSWORD_ENV):
        creds["password"] = os.environ[PASSWORD_ENV]
    return creds


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def wallet_credentials(address: Any) -> dict[str, str]:
    """``{"walletAddress": address}``: how ccxt reads an account by its public wallet address
    alone (Hyperliquid's info endpoint needs no key). The address must be ``0x`` and 40 hex
    digits.

    >>> wallet_credentials("0x" + "ab" * 20)["walletAddress"][:6]
    '0xabab'
    """
    text = address.strip() if isinstance(address, str) else address
    if not isinstance(text, str) or not _ADDRESS.match(text):
        shown = repr(text if not isinstance(text, str) or len(text) <= 60 else text[:60] + "…")
        raise InputError(f"address must be a wallet address, 0x followed by 40 hex digits "
                         f"(42 characters), got {shown}")
    return {"walletAddress": text}


def redirect(exchange: Any, base_url: str) -> None:
    """Send every request of ``exchange`` to ``base_url`` (a proxy or a local test server),
    keeping each endpoint's path: ``https://fapi.binance.com/fapi/v1`` becomes
    ``<base_url>/fapi/v1``."""
    if not re.match(r"^https?://[^/\s]+/?$", base_url or ""):
        raise ExchangeError(f"api-url must look like http://host:port, got {base_url!r}")
    base = base_url.rstrip("/")

    def swap(node: Any) -> Any:
        if isinstance(node, str):
            return _HOST.sub(base, node.replace("{hostname}", "x"))
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        return node

    exchange.urls["api"] = swap(exchange.urls["api"])


def connect(
    exchange_id: str,
    credentials: Mapping[str, str] | None = None,
    *,
    api_url: str | None = None,
    sandbox: bool = False,
    timeout_ms: int = 10_000,
    rate_limit_ms: float | None = None,
    deadline: Deadline | None = None,
    portfolio_margin: bool = False,
) -> Any:
    """A ccxt client for ``exchange_id`` with its rate limiter on and markets loaded
    (``rate_limit_ms``: the limiter's base interval, ccxt's own per exchange by default).
    With ``deadline`` every request of the client, loading the markets included, ends by it:
    its connection is cut when the deadline passes, however slowly the answer comes.
    ``portfolio_margin``: a Binance portfolio-margin account (ccxt's ``portfolioMargin``
    option: the account's futures through /papi; Binance USDⓈ-M only)."""
    if exchange_id not in SUPPORTED:
        raise ExchangeError(f"exchange must be one of {', '.join(SUPPORTED)}, got {exchange_id!r}")
    if portfolio_margin and exchange_id != "binanceusdm":
        raise ExchangeError(f"portfolio_margin applies to binanceusdm (Binance portfolio "
                            f"margin), got {exchange_id!r}")
    ccxt = _ccxt()
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": timeout_ms,
        # the spot currency list is a private call needing spot permission; futures don't use it
        "options": {"fetchCurrencies": False},
        **(credentials or {}),
    }
    from .fetch import venue  # here: the fetch modules import this one

    market_types = venue(exchange_id).MARKET_TYPES
    # ccxt options an exchange needs for a futures import (Gate, Bitget: defaultType swap, so
    # fetch_balance reads the futures account, not spot)
    config["options"].update(getattr(venue(exchange_id), "OPTIONS", {}))
    if market_types:  # futures only: spot and option lists are not read
        config["options"]["fetchMarkets"] = {"types": list(market_types)}
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    if portfolio_margin:
        config["options"]["portfolioMargin"] = True
    exchange = getattr(ccxt, exchange_id)(config)
    exchange._leverage_deadline = deadline
    if deadline is not None:
        from leverage_sheets.http import _watched

        _watched(exchange.session)  # its connections are noted, for the watchdog to cut
    _count_requests(exchange)
    if sandbox:
        try:
            exchange.set_sandbox_mode(True)
        except ccxt.NotSupported:
            raise ExchangeError(f"{exchange_id} has no testnet in ccxt: drop --sandbox") from None
    if api_url:
        redirect(exchange, api_url)
    call(exchange, exchange.load_markets)
    return exchange


def _count_requests(exchange: Any) -> None:
    """Count HTTP requests (``exchange._leverage_requests``) for reports and the benchmark,
    and bound each by the client's :class:`Deadline` when it has one: none starts after it,
    its timeout is at most what is left, and its connection is cut at the deadline. Each
    answer's body must be the JSON its API documents (:func:`answers.check_body`: ccxt hands
    an HTML page or a cut-off body on as a string)."""
    send = exchange.fetch
    exchange._leverage_requests = 0
    timeout_ms = exchange.timeout

    def counted(url: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(exchange, "_leverage_deadline", None)
        exchange._leverage_last_method = method
        if deadline is None:
            exchange._leverage_requests += 1
            answer = send(url, method, *args, **kwargs)
        else:
            from leverage_sheets.http import _watchdog

            left = deadline.left()
            if left <= 0:
                raise deadline.passed(exchange.id)
            exchange._leverage_requests += 1
            exchange.timeout = min(timeout_ms, left * 1000.0)
            with _watchdog(left):
                answer = send(url, method, *args, **kwargs)
            if deadline.left() <= 0:  # the watchdog may have cut it short: not an answer
                raise deadline.passed(exchange.id)
        answers.check_body(exchange, url, method, answer)
        return answer

    exchange.fetch = counted


def call(exchange: Any, fn: Callable[..., T], *args: Any, retries: int = 3, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retrying a rate limit or a timeout (with back-off), and turning
    ccxt's errors into one-line :class:`ExchangeError` messages without credentials."""
    ccxt = _ccxt()
    name = getattr(exchange, "id", "exchange")
    deadline: Deadline | None = getattr(exchange, "_leverage_deadline", None)
    method = answers.reads(fn)
    for attempt in range(retries + 1):
        try:
            exchange._leverage_reading = method  # for the messages of answers.check_body
            answer = fn(*args, **kwargs)
            answers.check_answer(exchange, method, answer)  # garbage is an error, not data
            return answer
        except LeverageError:
            raise  # already one line (a nested call's, the deadline's, a bad answer's)
        except Exception as exc:
            # whatever the cut connection looked like to ccxt: the deadline is the cause
            if deadline is not None and deadline.left() <= 0:
                raise deadline.passed(name) from None
            if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
                limited = True
            elif isinstance(exc, ccxt.RequestTimeout | ccxt.ExchangeNotAvailable):
                limited = False
            else:
                said = _one_line(ccxt, name, exc, method, exchange)
                if said is exc:
                    raise
                raise said from None
        if attempt == retries:
            what = "rate limit" if limited else "no answer"
            raise ExchangeError(
                f"{name} kept failing ({what}) after {retries + 1} tries: try again later"
            )
        wait = min(0.5 * 2**attempt, 8.0)
        asked = _retry_after(exchange) if limited else None
        if asked is not None:
            wait = max(wait, asked if deadline is not None else min(asked, RETRY_AFTER_CAP))
        if deadline is not None and wait >= deadline.left():
            doing = f" (it asked to wait {asked:g} s before retrying)" if asked else ""
            raise deadline.passed(name, doing)
        (deadline.sleep if deadline is not None else time.sleep)(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(exchange: Any) -> float | None:
    """The seconds the last answer's ``Retry-After`` header asks to wait (``None``: none, or
    an HTTP date or other text: the back-off applies)."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    try:
        text = headers.get("Retry-After")
        value = float(text) if text is not None else None
    except (TypeError, ValueError, AttributeError):
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _one_line(ccxt: Any, name: str, exc: Exception, method: str = "",
              exchange: Any = None) -> Exception:
    """ccxt's error (or a malformed answer) as one :class:`ExchangeError` line naming what
    was being read; anything else as it is."""
    if isinstance(exc, ccxt.PermissionDenied):  # a subclass of AuthenticationError: first
        return ExchangeError(f"{name} refused the request: the key lacks read permission "
                             "for futures")
    if isinstance(exc, ccxt.AuthenticationError):
        return ExchangeError(
            f"{name} refused the API key: check it is a valid read-only key for {name} "
            "(and, for a testnet key, pass --sandbox)"
        )
    if isinstance(exc, ccxt.NetworkError):
        return ExchangeError(f"{name} could not be reached: {type(exc).__name__}")
    if isinstance(exc, ccxt.BaseError):
        answers.check_error_body(exchange)  # garbage read as an error: say it is garbage
        return ExchangeError(f"{name} answered with an error{_reading(method, exchange)}: "
                             f"{_short(exc)}")
    if isinstance(exc, UNEXPECTED):
        return _unexpected(name, exc, method, exchange)
    return exc


# What reading an answer without the fields of its documented format raises (in ccxt, or in
# our own parsing of what it returns); OverflowError: a number or time past float or calendar
# range ("1e400", a time in year 3,170,843)
UNEXPECTED = (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError)


def _reading(method: str, exchange: Any) -> str:
    """`` to GET /fapi/v1/income (reading funding, fetch_funding_history)``: what was asked."""
    endpoint = answers.where(exchange)
    to = f" to {endpoint}" if endpoint else ""
    return f"{to} (reading {answers.READS.get(method, method)}, {method})" if method else to


def _unexpected(name: str, exc: Exception, method: str = "", exchange: Any = None) -> ExchangeError:
    return ExchangeError(
        f"{name} answered something unexpected{_reading(method, exchange)} "
        f"({type(exc).__name__}: {_short(exc)})"
    )


def parsing_answers(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn(exchange, ...)`` (or ``fn(fetched, ...)``, the answers it read) with a malformed
    answer as one :class:`ExchangeError` line; a toolkit error passes as it is (said once)."""

    @functools.wraps(fn)
    def wrapped(exchange: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(exchange, *args, **kwargs)
        except LeverageError:  # already one line (ExchangeError, answers.BadAnswer)
            raise
        except UNEXPECTED as exc:
            name = getattr(exchange, "id", None) or getattr(exchange, "exchange", "exchange")
            raise _unexpected(str(name), exc) from None

    return wrapped


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"\?\S*", "", text)[:200]  # a URL's query holds the request's signature
