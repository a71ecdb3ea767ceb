"""Retries and a deadline for the Google Sheets API: a bounded backoff policy, and the gspread
HTTP client that follows it, reads every answer against the clock and checks it is JSON."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import requests
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from leverage.errors import InputError

from .backend import RequestFailed, SheetsError, UnexpectedAnswer, quote_prefix

_RETRY_STATUS = frozenset({HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS})
MAX_SECONDS = 86_400.0
"""Longest deadline (and watch interval) the bridge accepts: one day."""


def check_seconds(name: str, value: Any, limit: float = MAX_SECONDS) -> float:
    """``value`` as seconds when it is a finite number in (0, ``limit``]; else InputError naming
    ``name`` and the rule.

    >>> check_seconds("deadline", 30)
    30.0
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 < value <= limit:
        raise InputError(f"{name} must be a number of seconds in (0, {limit:g}], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, for 408, 429, 5xx, timeouts and dropped
    connections, within an overall ``deadline`` (seconds for one command: every attempt, wait
    and body read). ``sleep``, ``random`` and ``clock`` are injectable so tests run instantly."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 32.0
    timeout: float | tuple[float, float] | None = (10.0, 120.0)  # connect, read (seconds)
    deadline: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or (
            self.max_attempts < 1
        ):
            raise InputError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        for name in ("base_delay", "max_delay"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise InputError(f"{name} must be a finite number >= 0, got {v!r}")
        check_seconds("deadline", self.deadline)

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
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def status_text(code: int) -> str:
    """``HTTP 429 Too Many Requests`` (the phrase left out for a code HTTP does not name)."""
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def api_message(err: APIError) -> str:
    """The message of Google's error body, cut short."""
    message = err.error.get("message") if isinstance(err.error, Mapping) else None
    return " ".join(str(message or "no message").split())[:300]


def describe_body(body: bytes) -> str:
    """What a body that is not a JSON object looks like, for a message (a short prefix only)."""
    text = body.lstrip()
    if not text:
        return "an empty body"
    if text[:1] == b"<":
        return f"an HTML page starting {quote_prefix(text)}"
    try:
        value = json.loads(body)
    except ValueError:
        return f"JSON cut short or malformed, starting {quote_prefix(text)}"
    kind = {type(None): "null", bool: "a true/false", list: "a list", str: "a text"}
    return f"JSON {kind.get(type(value), 'a number')} instead of an object"


def json_object(body: bytes) -> dict[str, Any]:
    """``body`` parsed, when it is a JSON object; else :class:`UnexpectedAnswer`."""
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UnexpectedAnswer(describe_body(body))
    return value


class GoogleRefused(APIError):
    """A non-2xx answer. Unlike gspread's APIError it never fails on an odd error body:
    ``error`` is always a mapping with ``code`` and a short ``message``."""

    def __init__(self, response: requests.Response) -> None:
        try:
            error = json.loads(response.content).get("error")
            message = error.get("message")
        except (ValueError, AttributeError):
            error, message = None, None
        if not isinstance(message, str):
            message = f"no error message, the body is {describe_body(response.content)}"
        error = {"code": response.status_code, "message": message}
        Exception.__init__(self, error)
        self.response = response
        self.error = error
        self.code = response.status_code


def _parsed(response: requests.Response) -> requests.Response:
    """``response`` whose ``json()`` gives the object already checked (parsed once)."""
    parsed = json_object(response.content)
    response.json = lambda **_: parsed  # type: ignore[method-assign]
    return response


def _utc_now() -> dt.datetime:
    """Naive UTC, as google-auth keeps ``expiry``."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


_LIVE = threading.local()  # .watch: the list a request's connections are noted in


def _note(sock: Any) -> None:
    watch = getattr(_LIVE, "watch", None)
    if watch is not None and sock is not None:
        watch.append(sock)


def _noted(pool_cls: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    # the base is the pool's own connection class, known at run time only
    class Connection(pool_cls.ConnectionCls):  # type: ignore[name-defined]
        def connect(self) -> None:
            super().connect()
            _note(self.sock)

    class Noted(pool_cls):  # type: ignore[valid-type,misc]
        """Notes the socket of each connection it lends (or opens), so a watchdog can cut
        it at the deadline."""

        ConnectionCls = Connection

        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            _note(conn.sock)  # a kept-alive connection: already connected
            return conn

    return Noted


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter over connection pools that note the connections they lend."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _noted(HTTPConnectionPool), "https": _noted(HTTPSConnectionPool)}


def _watched(session: requests.Session) -> requests.Session:
    """``session``, its connections noted for :func:`_watchdog`."""
    for prefix in ("https://", "http://"):
        session.mount(prefix, _DeadlineAdapter())
    return session


def _cut(sockets: list[socket.socket]) -> None:
    """Shut the sockets down: a read blocked on them returns at once, whatever its timeout."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    """Cut the block's connections after ``seconds``: a server that sends its status line,
    headers or body a byte at a time cannot hold the command past its deadline."""
    noted: list[Any] = []
    timer = threading.Timer(seconds, _cut, [noted])
    timer.daemon = True
    _LIVE.watch = noted
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        _LIVE.watch = None


class _Expired(Exception):
    """The command's deadline passed."""


class _SignInAnswer(SheetsError):
    pass


class RetryingHTTPClient(HTTPClient):
    """gspread's HTTP client with a bounded retry loop (gspread 6.2.1's BackOffHTTPClient
    retries a permanent 429 forever) and a deadline that no slow server can stretch: the body
    is read in pieces against the clock. Counts every attempt in ``attempts``.

    Pass the class to ``gspread.Client(auth, http_client=RetryingHTTPClient)``; it retries
    with the default :class:`RetryPolicy` until :meth:`follow` gives it another."""

    def __init__(self, auth: Any, session: requests.Session | None = None) -> None:
        super().__init__(auth, session)
        # With a session given, gspread leaves signing in to it; we sign in ourselves, so a
        # token endpoint's odd answer is caught and bounded by the deadline too.
        # gspread types auth as Credentials, yet documents auth=None with a session of one's own
        self.auth = getattr(  # type: ignore[assignment]
            self, "auth", None) or getattr(session, "credentials", None)
        self.attempts = 0
        self.policy = RetryPolicy()
        self._ends_at: float | None = None
        self._token_session: requests.Session | None = None
        _watched(self.session)
        self.follow(self.policy)

    def follow(self, policy: RetryPolicy) -> RetryingHTTPClient:
        """Retry by ``policy`` from now on; its timeout, when set, replaces the client's."""
        self.policy = policy
        if policy.timeout is not None:
            self.timeout = policy.timeout
        return self

    # -- the deadline ------------------------------------------------------------------------

    @contextlib.contextmanager
    def deadline_window(self) -> Iterator[None]:
        """Run the block within one ``policy.deadline``; nested windows share the outer one."""
        if self._ends_at is not None:
            yield
            return
        self._ends_at = self.policy.clock() + self.policy.deadline
        try:
            yield
        finally:
            self._ends_at = None

    def _left(self) -> float:
        assert self._ends_at is not None
        left = self._ends_at - self.policy.clock()
        if left <= 0:
            raise _Expired
        return left

    def _timeouts(self, left: float) -> tuple[float, float]:
        t = self.timeout
        connect, read = t if isinstance(t, tuple) else (t, t)
        return (min(connect or left, left), min(read or left, left))

    # -- one attempt -------------------------------------------------------------------------

    def _sign_in(self) -> None:
        auth = self.auth
        if auth is None or not hasattr(auth, "refresh") or auth.valid:
            return
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import Request

        if self._token_session is None:
            self._token_session = _watched(requests.Session())
        send = Request(self._token_session)

        def bounded(*args: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = self._timeouts(self._left())[1]
            return send(*args, **kwargs)

        try:
            with _watchdog(self._left()):
                auth.refresh(bounded)
            expiry = auth.expiry
            usable = isinstance(auth.token, str) and auth.token and (
                expiry is None or expiry.replace(tzinfo=None) > _utc_now()
            )
        except (GoogleAuthError, _Expired):
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            usable = False
        if not usable:
            raise _SignInAnswer(
                "signing in with the service account failed: the token endpoint (token_uri in "
                "the key file) answered something that is not an access token with a positive "
                "expires_in"
            ) from None

    def _send(self, method: str, endpoint: str, kwargs: dict[str, Any]) -> requests.Response:
        self._sign_in()
        headers = dict(kwargs.pop("headers", None) or {})
        send = self.session.request
        if self.auth is not None and hasattr(self.auth, "apply"):
            self.auth.apply(headers)
            send = requests.Session.request.__get__(self.session)  # we signed in already
        left = self._left()
        connect, read = self._timeouts(left)
        with _watchdog(left):
            response = send(method, endpoint, headers=headers, timeout=(connect, read),
                            stream=True, **kwargs)
            try:
                response._content = self._read_body(response, read)
            except BaseException:
                response.close()
                raise
        response._content_consumed = True
        response.close()  # back to the pool for the next request
        return response

    def _read_body(self, response: requests.Response, read_timeout: float) -> bytes:
        """The body, a piece at a time, giving up at the deadline however slowly it comes."""
        raw = response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        pieces: list[bytes] = []
        while True:
            left = self._left()
            if sock is not None:
                sock.settimeout(min(read_timeout, left))
            piece = raw.read1(65_536, decode_content=True)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)

    def request(  # gspread's signature
        self,
        method: str,
        endpoint: str,
        params: Any = None,
        data: Any = None,
        json: Any = None,
        files: Any = None,
        headers: Any = None,
    ) -> requests.Response:
        kwargs = {"params": params, "data": data, "json": json, "files": files,
                  "headers": headers}
        with self.deadline_window():
            return self._request(method, endpoint, kwargs)

    def _request(self, method: str, endpoint: str, kwargs: dict[str, Any]) -> requests.Response:
        import urllib3.exceptions
        from google.auth.exceptions import TransportError

        started = self.policy.clock()
        reason = "no attempt was made"
        for attempt in range(1, self.policy.max_attempts + 1):
            retry_after = None
            try:
                self._left()
                self.attempts += 1
                response = self._send(method, endpoint, dict(kwargs))
                if not response.ok:
                    raise GoogleRefused(response)
                return _parsed(response)
            except GoogleRefused as err:
                code = err.code
                if code not in _RETRY_STATUS and not 500 <= code <= 599:
                    raise
                reason = f"{status_text(code)}: {api_message(err)}"
                retry_after = _retry_after(err.response)
            except (_Expired, requests.Timeout, urllib3.exceptions.ReadTimeoutError):
                self._check_deadline(reason, attempt - 1)
                reason = "the request timed out"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.HTTPError, ConnectionError, OSError):
                self._check_deadline(reason, attempt - 1)  # the watchdog cut it
                reason = "the connection was dropped"
            except TransportError:
                self._check_deadline(reason, attempt - 1)
                reason = "the connection to Google's sign-in service failed"
            if attempt < self.policy.max_attempts:
                wait = self.policy.delay(attempt, retry_after)
                if wait >= self._ends_at - self.policy.clock():  # type: ignore[operator]
                    raise self._deadline_failure(reason, attempt)
                self.policy.sleep(wait)
        raise RequestFailed(
            f"Google Sheets kept failing ({reason}) after {_attempts(self.policy.max_attempts)} "
            f"in {self.policy.clock() - started:.0f} s"
        )

    def _check_deadline(self, reason: str, failed: int) -> None:
        if self._ends_at is not None and self._ends_at <= self.policy.clock():
            raise self._deadline_failure(reason, failed) from None

    def _deadline_failure(self, reason: str, failed: int) -> RequestFailed:
        why = f"after {_attempts(failed)} (last failure: {reason})" if failed else (
            "(the answer was too slow in coming)")
        return RequestFailed(
            f"Google Sheets did not finish within the {self.policy.deadline:g} s deadline {why}"
        )


def _attempts(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''}"


def retrying(http: HTTPClient, policy: RetryPolicy) -> RetryingHTTPClient:
    """``http`` itself when it already retries, else a retrying client on its session (and
    credentials, and timeout); either way following ``policy``."""
    if not isinstance(http, RetryingHTTPClient):
        inner = http
        http = RetryingHTTPClient(getattr(inner, "auth", None), inner.session)
        http.timeout = inner.timeout
    return http.follow(policy)
