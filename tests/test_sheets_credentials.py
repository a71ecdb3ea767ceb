"""No credential ever reaches a message, a log line or the terminal.

The service-account key is generated here at test time (a throwaway RSA key); no key file
is committed. Sign-in goes to a local token endpoint that refuses it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import leverage_sheets as sb
from leverage.cli import main

KEY_ID = "d3adb33fd3adb33fd3adb33fd3adb33fd3adb33f"
EMAIL = "bridge-test@example-project.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class _TokenEndpoint(BaseHTTPRequestHandler):
    """Answers every POST with the server's ``answer``: (status, body)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if body[:1] == b"<" else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        pause = self.server.trickle  # type: ignore[attr-defined]
        for i in range(0, len(body), 1 if pause else len(body) or 1):
            time.sleep(pause)
            try:
                self.wfile.write(body[i : i + 1] if pause else body)
            except OSError:  # the client hung up
                return

    def log_message(self, *args: Any) -> None:
        return None


def _token_server(status: int, body: bytes, trickle: float = 0.0) -> Iterator[HTTPServer]:
    """A token endpoint on 127.0.0.1; ``trickle``: seconds between the body's bytes."""
    server = HTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    server.answer = (status, body)  # type: ignore[attr-defined]
    server.trickle = trickle  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def token_uri() -> Iterator[str]:
    refusal = {"error": "invalid_grant", "error_description": "Invalid JWT"}
    for server in _token_server(400, json.dumps(refusal).encode()):
        yield f"http://127.0.0.1:{server.server_address[1]}/token"


def _key_file(tmp_path: Path, pem: str, token_uri: str, **over: Any) -> Path:
    info = {
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": KEY_ID,
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    info.update(over)
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return path


def _secrets(pem: str) -> list[str]:
    body = pem.splitlines()[1]  # a line of the key itself
    return [body, "PRIVATE KEY", KEY_ID, EMAIL]


def _clean(text: str, pem: str) -> None:
    for secret in _secrets(pem):
        assert secret not in text, f"{secret[:12]}... leaked"


def test_credentials_are_scoped_to_spreadsheets_only(tmp_path: Path, pem: str,
                                                     token_uri: str) -> None:
    creds = sb.credentials.load_credentials(_key_file(tmp_path, pem, token_uri))
    assert creds.scopes == ["https://www.googleapis.com/auth/spreadsheets"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("not json {", "it is not JSON"),
        ("PEM", "it is not JSON"),
        ('{"type": "authorized_user", "private_key": "PEM"}', "must be a service-account key"),
        ('{"type": "service_account", "private_key": "PEM"}', "missing client_email, token_uri"),
        ("BROKEN", "holds a private key that cannot be read"),
    ],
)
def test_a_bad_key_file_is_named_never_shown(
    tmp_path: Path, pem: str, token_uri: str, content: str | None, expected: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "sa.json"
    if content == "BROKEN":  # right shape, key body cut short
        path = _key_file(tmp_path, pem, token_uri, private_key=pem[:400])
    elif content is not None:
        path.write_text(content.replace("PEM", pem.replace("\n", "\\n")))
    with pytest.raises(sb.SheetsError, match=expected) as err:
        sb.open_google("1abcDEF", credentials=path)
    assert str(path) in str(err.value)
    shown = "".join(traceback.format_exception(err.value))  # what a crash would print
    _clean(shown + caplog.text, pem)
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_a_refused_sign_in_reports_without_secrets(
    tmp_path: Path, pem: str, token_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps: list[float] = []
    backend = sb.open_google(
        "1abcDEF", credentials=_key_file(tmp_path, pem, token_uri),
        policy=sb.RetryPolicy(max_attempts=2, sleep=sleeps.append),
    )
    with pytest.raises(sb.SheetsError, match="signing in with the service account failed") as err:
        sb.sync(backend, "journal")
    assert sleeps == []  # a refused sign-in is not retried
    _clean(str(err.value) + caplog.text, pem)


def test_an_unreachable_sign_in_is_retried_then_reported(
    tmp_path: Path, pem: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps: list[float] = []
    closed = "http://127.0.0.1:9/token"  # discard port: nothing listens
    backend = sb.open_google(
        "1abcDEF", credentials=_key_file(tmp_path, pem, closed),
        policy=sb.RetryPolicy(max_attempts=3, sleep=sleeps.append),
    )
    with pytest.raises(sb.RequestFailed, match=r"after 3 attempts.*nothing was written") as err:
        sb.sync(backend, "journal")
    assert len(sleeps) == 2
    _clean(str(err.value) + caplog.text, pem)


def test_cli_takes_the_key_file_from_the_environment(
    tmp_path: Path, pem: str, token_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _key_file(tmp_path, pem, token_uri)
    monkeypatch.setenv(sb.CREDENTIALS_ENV, str(path))
    assert main(["sheets", "sync", "--key", "1abcDEF", "--template", "journal"]) == 2
    out = capsys.readouterr()
    assert "leverage: error: " in out.err and "signing in" in out.err
    _clean(out.out + out.err, pem)
    monkeypatch.setenv(sb.CREDENTIALS_ENV, str(tmp_path / "gone.json"))
    assert main(["sheets", "init", "--key", "1abcDEF", "--template", "journal"]) == 2
    assert f"credentials file '{tmp_path / 'gone.json'}' does not exist" in capsys.readouterr().err


def test_cli_rejects_a_bad_key_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sheets", "sync", "--key", "not a key!", "--credentials", "/nonexistent"]) == 2
    assert "key must be the ID from the spreadsheet's URL" in capsys.readouterr().err


# ------------------------------------------------------------------------ odd token endpoints

ACCESS_TOKEN = "ya29.a0AfB_byC-never-print-this-token"


@pytest.fixture(scope="module")
def odd_token_server() -> Iterator[HTTPServer]:
    yield from _token_server(200, b"")


def _token(**fields: Any) -> bytes:
    return json.dumps({"access_token": ACCESS_TOKEN, "token_type": "Bearer", **fields}).encode()


ODD_TOKEN_ANSWERS = {
    "html": b"<html><body>Sign in to continue</body></html>",
    "null": b"null",
    "truncated": _token(expires_in=3599)[:30],
    "expires_in text": _token(expires_in="soon"),
    "expires_in list": _token(expires_in=[3599]),
    "expires_in huge": _token(expires_in=1e308),
    "expires_in negative": _token(expires_in=-5),
    "no token": b'{"expires_in": 3599}',
}


@pytest.mark.parametrize("answer", ODD_TOKEN_ANSWERS)
def test_an_odd_token_answer_is_one_line_without_secrets(
    tmp_path: Path, pem: str, odd_token_server: HTTPServer, answer: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    odd_token_server.answer = (200, ODD_TOKEN_ANSWERS[answer])  # type: ignore[attr-defined]
    uri = f"http://127.0.0.1:{odd_token_server.server_address[1]}/token"
    backend = sb.open_google("1abcDEF", credentials=_key_file(tmp_path, pem, uri),
                             policy=sb.RetryPolicy(max_attempts=1, deadline=20))
    with pytest.raises(sb.SheetsError, match="signing in with the service account failed") as e:
        sb.sync(backend, "journal")
    message = str(e.value)
    assert "\n" not in message and len(message) < 400
    _clean(message + caplog.text, pem)
    assert ACCESS_TOKEN not in message + caplog.text
    assert e.value.__suppress_context__ or e.value.__context__ is None


def test_cli_reports_an_odd_token_answer_in_one_line(
    tmp_path: Path, pem: str, odd_token_server: HTTPServer, capsys: pytest.CaptureFixture[str],
) -> None:
    odd_token_server.answer = (200, _token(expires_in="soon"))  # type: ignore[attr-defined]
    uri = f"http://127.0.0.1:{odd_token_server.server_address[1]}/token"
    args = ["sheets", "sync", "--key", "1abcDEF", "--template", "journal", "--deadline", "20",
            "--credentials", str(_key_file(tmp_path, pem, uri))]
    assert main(args) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and "token_uri" in out.err
    _clean(out.err, pem)
    assert ACCESS_TOKEN not in out.err


@pytest.mark.parametrize("curve", ["EC", "Ed25519"])
def test_a_non_rsa_key_is_refused_by_name(tmp_path: Path, token_uri: str, curve: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key = (ec.generate_private_key(ec.SECP256R1()) if curve == "EC"
           else ed25519.Ed25519PrivateKey.generate())
    other = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    path = _key_file(tmp_path, other, token_uri)
    assert main(["sheets", "sync", "--key", "1abcDEF", "--credentials", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"holds an {curve} private key; Google service accounts sign in with an RSA key" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    _clean(err, other)


def test_a_trickling_token_endpoint_cannot_outlast_the_deadline(tmp_path: Path, pem: str) -> None:
    for server in _token_server(200, _token(expires_in=3599), trickle=0.2):
        uri = f"http://127.0.0.1:{server.server_address[1]}/token"
        backend = sb.open_google("1abcDEF", credentials=_key_file(tmp_path, pem, uri),
                                 policy=sb.RetryPolicy(max_attempts=3, deadline=1.5))
        started = time.monotonic()
        with pytest.raises(sb.RequestFailed, match=r"within the 1\.5 s deadline") as err:
            sb.sync(backend, "journal")
        assert time.monotonic() - started < 1.5 + 2.0
        _clean(str(err.value), pem)
