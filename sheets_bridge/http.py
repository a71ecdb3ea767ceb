"""Retries for the Google Sheets API: a bounded backoff policy and the gspread HTTP client
that follows it."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import requests
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient

from leverage.errors import InputError

from .backend import RequestFailed

_RETRY_STATUS = frozenset({HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS})


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, for 408, 429, 5xx, timeouts and dropped
    connections. ``sleep`` and ``random`` are injectable so tests run instantly."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 32.0
    timeout: float | tuple[float, float] | None = (10.0, 120.0)  # connect, read (seconds)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or (
            self.max_attempts < 1
        ):
            raise InputError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        for name in ("base_delay", "max_delay"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise InputError(f"{name} must be a finite number >= 0, got {v!r}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): half the capped
        exponential step plus a random half, and never less than the server's Retry-After
        (itself capped)."""
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = step * (0.5 + 0.5 * self.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


def _retry_after(response: requests.Response | None) -> float | None:
    text = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def status_text(code: int) -> str:
    """``HTTP 429 Too Many Requests`` (the phrase left out for a code HTTP does not name)."""
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def api_message(err: APIError) -> str:
    """The message of Google's error body, cut short."""
    message = err.error.get("message") if isinstance(err.error, Mapping) else None
    return str(message or "no message")[:300]


class RetryingHTTPClient(HTTPClient):
    """gspread's HTTP client with a bounded retry loop (gspread 6.2.1's BackOffHTTPClient
    retries a permanent 429 forever). Counts every attempt in ``attempts``.

    Pass the class to ``gspread.Client(auth, http_client=RetryingHTTPClient)``; it retries
    with the default :class:`RetryPolicy` until :meth:`follow` gives it another."""

    def __init__(self, auth: Any, session: requests.Session | None = None) -> None:
        super().__init__(auth, session)
        self.attempts = 0
        self.policy = RetryPolicy()
        self.follow(self.policy)

    def follow(self, policy: RetryPolicy) -> RetryingHTTPClient:
        """Retry by ``policy`` from now on; its timeout, when set, replaces the client's."""
        self.policy = policy
        if policy.timeout is not None:
            self.timeout = policy.timeout
        return self

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        from google.auth.exceptions import TransportError

        started = time.monotonic()
        for attempt in range(1, self.policy.max_attempts + 1):
            self.attempts += 1
            retry_after = None
            try:
                return super().request(*args, **kwargs)
            except APIError as err:
                code = err.response.status_code
                if code not in _RETRY_STATUS and not 500 <= code <= 599:
                    raise
                reason = f"{status_text(code)}: {api_message(err)}"
                retry_after = _retry_after(err.response)
            except requests.Timeout:
                reason = "the request timed out"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                reason = "the connection was dropped"
            except TransportError:
                reason = "the connection to Google's sign-in service failed"
            if attempt < self.policy.max_attempts:
                self.policy.sleep(self.policy.delay(attempt, retry_after))
        raise RequestFailed(
            f"Google Sheets kept failing ({reason}) after {self.policy.max_attempts} attempts "
            f"in {time.monotonic() - started:.0f} s"
        )


def retrying(http: HTTPClient, policy: RetryPolicy) -> RetryingHTTPClient:
    """``http`` itself when it already retries, else a retrying client on its session (and
    credentials, and timeout); either way following ``policy``."""
    if not isinstance(http, RetryingHTTPClient):
        inner = http
        http = RetryingHTTPClient(getattr(inner, "auth", None), inner.session)
        http.timeout = inner.timeout
    return http.follow(policy)
