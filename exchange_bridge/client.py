"""A ccxt exchange client for a read-only import: credentials, base URL, testnet, retries.

ccxt is imported here and only when a client is made, so ``import leverage_exchange`` (and the
``leverage`` command) stay fast and work without the ``[exchange]`` extra installed.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from leverage.errors import LeverageError

from . import answers

KEY_ENV = "LEVERAGE_EXCHANGE_KEY"
SECRET_ENV = "LEVERAGE_EXCHANGE_SECRET"
PASSWORD_ENV = "LEVERAGE_EXCHANGE_PASSWORD"  # OKX's API passphrase
KEY_FILE_ENV = "LEVERAGE_EXCHANGE_KEY_FILE"
SUPPORTED = ("binanceusdm", "binancecoinm", "bybit", "okx")
_HOST = re.compile(r"^https?://[^/]+")
T = TypeVar("T")
_MARKET_TYPES = {"bybit": ("linear", "inverse"), "okx": ("swap",)}


class ExchangeError(LeverageError):
    """The exchange could not be read (refused key, unreachable, kept failing). The message
    is one line and never holds a credential."""


def _ccxt() -> Any:
    try:
        import ccxt
    except ImportError:
        raise ExchangeError(
            "the exchange import needs ccxt: pip install 'leverage-toolkit[exchange]'"
        ) from None
    return ccxt


def read_credentials(key_file: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``apiKey``/``secret`` (and OKX's ``password``) from a JSON key file (``key_file`` or
    ``$LEVERAGE_EXCHANGE_KEY_FILE``), else from ``$LEVERAGE_EXCHANGE_KEY`` and
    ``$LEVERAGE_EXCHANGE_SECRET``. Messages name where the key was looked for, never its value."""
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
) -> Any:
    """A ccxt client for ``exchange_id`` with its rate limiter on and markets loaded
    (``rate_limit_ms``: the limiter's base interval, ccxt's own per exchange by default)."""
    if exchange_id not in SUPPORTED:
        raise ExchangeError(f"exchange must be one of {', '.join(SUPPORTED)}, got {exchange_id!r}")
    ccxt = _ccxt()
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": timeout_ms,
        # the spot currency list is a private call needing spot permission; futures don't use it
        "options": {"fetchCurrencies": False},
        **(credentials or {}),
    }
    if exchange_id in _MARKET_TYPES:  # futures only: spot and option lists are not read
        config["options"]["fetchMarkets"] = {"types": list(_MARKET_TYPES[exchange_id])}
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    exchange = getattr(ccxt, exchange_id)(config)
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
    and check each answer's body is the JSON its API documents (:func:`answers.check_body`:
    ccxt hands an HTML page or a cut-off body on as a string)."""
    send = exchange.fetch
    exchange._leverage_requests = 0

    def counted(url: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        exchange._leverage_requests += 1
        exchange._leverage_last_method = method
        answer = send(url, method, *args, **kwargs)
        answers.check_body(exchange, url, method, answer)
        return answer

    exchange.fetch = counted


def call(exchange: Any, fn: Callable[..., T], *args: Any, retries: int = 3, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retrying a rate limit or a timeout (with back-off), and turning
    ccxt's errors into one-line :class:`ExchangeError` messages without credentials."""
    ccxt = _ccxt()
    name = getattr(exchange, "id", "exchange")
    method = answers.reads(fn)
    for attempt in range(retries + 1):
        try:
            exchange._leverage_reading = method  # for the messages of answers.check_body
            answer = fn(*args, **kwargs)
            answers.check_answer(exchange, method, answer)  # garbage is an error, not data
            return answer
        except answers.BadAnswer:
            raise
        except ccxt.PermissionDenied:  # a subclass of AuthenticationError: first
            raise ExchangeError(f"{name} refused the request: the key lacks read permission "
                                "for futures") from None
        except ccxt.AuthenticationError:
            raise ExchangeError(
                f"{name} refused the API key: check it is a valid read-only key for {name} "
                "(and, for a testnet key, pass --sandbox)"
            ) from None
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.RequestTimeout,
                ccxt.ExchangeNotAvailable) as exc:
            if attempt == retries:
                limited = isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
                what = "rate limit" if limited else "no answer"
                raise ExchangeError(
                    f"{name} kept failing ({what}) after {retries + 1} tries: try again later"
                ) from None
            time.sleep(min(0.5 * 2**attempt, 8.0))
        except ccxt.NetworkError as exc:
            raise ExchangeError(f"{name} could not be reached: {type(exc).__name__}") from None
        except ccxt.BaseError as exc:
            answers.check_error_body(exchange)  # garbage read as an error: say it is garbage
            raise ExchangeError(f"{name} answered with an error{_reading(method, exchange)}: "
                                f"{_short(exc)}") from None
        except UNEXPECTED as exc:
            raise _unexpected(name, exc, method, exchange) from None
    raise AssertionError("unreachable")  # pragma: no cover


# What reading an answer without the fields of its documented format raises (in ccxt, or in
# our own parsing of what it returns)
UNEXPECTED = (KeyError, TypeError, ValueError, IndexError, AttributeError)


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
    """``fn(exchange, ...)`` with a malformed answer as one :class:`ExchangeError` line."""

    @functools.wraps(fn)
    def wrapped(exchange: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(exchange, *args, **kwargs)
        except LeverageError:  # already one line (ExchangeError, answers.BadAnswer)
            raise
        except UNEXPECTED as exc:
            raise _unexpected(getattr(exchange, "id", "exchange"), exc) from None

    return wrapped


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"\?\S*", "", text)[:200]  # a URL's query holds the request's signature
