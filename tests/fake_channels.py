"""Loopback stand-ins for the services alert channels talk to, for tests/test_notify.py.

* :class:`WebhookReceiver`: a plain HTTP server recording each request (the generic JSON
  webhook, ``json://127.0.0.1:port/...``); paths under ``/hang`` hold the request until the
  receiver closes (a channel that never answers), ``/fail`` answers 500.
* :class:`ServiceProxy`: an HTTPS proxy on loopback. apprise's Telegram, Discord and Slack
  plugins post to fixed hosts (api.telegram.org, discord.com, hooks.slack.com); with
  ``HTTPS_PROXY`` pointing here, requests sends ``CONNECT host:443``, and the proxy, instead
  of opening a tunnel to the internet, terminates TLS itself with a certificate for that host
  signed by the test CA (``REQUESTS_CA_BUNDLE``), reads the real HTTP request and answers as
  the service documents. Any other host is refused (403), so nothing leaves the machine.
* :class:`SmtpServer`: aiosmtpd with STARTTLS required and AUTH (after TLS) checked against
  one login, recording each message.
* :class:`TestPki`: a CA and one server certificate (DNS names of the three services,
  ``localhost`` and IP 127.0.0.1), made with ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

T = TypeVar("T")
SERVICE_HOSTS = ("api.telegram.org", "discord.com", "hooks.slack.com")


@dataclass(frozen=True)
class Recorded:
    host: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class TestPki:
    """A throw-away CA and a server certificate it signs, written under ``folder``."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leverage test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in (*SERVICE_HOSTS, "localhost")]
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = folder / "ca.pem"
        self.cert_file = folder / "server.pem"
        self.key_file = folder / "server.key"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


class Recorder(Generic[T]):
    """What a fake server received, in order, with a wait for the first ``count`` items."""

    def __init__(self) -> None:
        self.requests: list[T] = []
        self.arrived = threading.Condition()

    def record(self, item: T) -> None:
        with self.arrived:
            self.requests.append(item)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[T]:
        """The first ``count`` requests, waiting for them up to ``timeout`` seconds."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)


class WebhookReceiver(Recorder[Recorded]):
    """``http://127.0.0.1:<port>/...``: records POSTs, answers 200 (or as the path says)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.record(
                    Recorded("127.0.0.1", "POST", self.path, dict(self.headers), body)
                )
                if self.path.startswith("/hang"):
                    receiver.release.wait()  # until the receiver closes: a channel that hangs
                status = 500 if self.path.startswith("/fail") else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _service_answer(host: str, path: str) -> tuple[int, str, bytes]:
    """What each service answers a delivered message, per its documents."""
    if host == "api.telegram.org" and path.endswith("/sendMessage"):
        # core.telegram.org/bots/api#making-requests: {"ok": true, "result": <Message>}
        message = {"message_id": 1, "date": 0, "chat": {"id": 987654321, "type": "private"}}
        return 200, "application/json", json.dumps({"ok": True, "result": message}).encode()
    if host == "discord.com" and path.startswith("/api/webhooks/"):
        # Discord "Execute Webhook": 204 No Content unless ?wait=true
        return 204, "", b""
    if host == "hooks.slack.com" and path.startswith("/services/"):
        # Slack incoming webhooks answer 200 with the text "ok"
        return 200, "text/html", b"ok"
    return 404, "text/plain", b"not found"


class ServiceProxy(Recorder[Recorded]):
    """An HTTPS proxy on loopback that plays Telegram, Discord and Slack (see the module)."""

    def __init__(self, pki: TestPki) -> None:
        super().__init__()
        self.refused: list[str] = []
        context = pki.server_context()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            tunnel_host = ""

            def do_CONNECT(self) -> None:
                host, _, port = self.path.rpartition(":")
                if host not in SERVICE_HOSTS or port != "443":
                    proxy.refused.append(self.path)
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.close_connection = True
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                # From here on the client speaks TLS to "host": answer as that host.
                tls = context.wrap_socket(self.connection, server_side=True)
                self.connection = tls
                self.rfile = tls.makefile("rb")
                self.wfile = tls.makefile("wb")
                self.tunnel_host = host
                self.close_connection = False

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                proxy.record(
                    Recorded(self.tunnel_host, "POST", self.path, dict(self.headers), body)
                )
                status, kind, answer = _service_answer(self.tunnel_host, self.path)
                self.send_response(status)
                if kind:
                    self.send_header("Content-Type", kind)
                if status != 204:
                    self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if status != 204:
                    self.wfile.write(answer)
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class _MailHandler:
    sink: Recorder[Recorded]
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        tls = session.ssl is not None
        self.sink.record(
            Recorded(
                "smtp", "DATA", ",".join(envelope.rcpt_tos),
                {"tls": str(tls), "from": str(envelope.mail_from)}, bytes(content),
            )
        )
        return "250 OK"


class SmtpServer(Recorder[Recorded]):
    """aiosmtpd on 127.0.0.1 with STARTTLS required and AUTH LOGIN/PLAIN for one account."""

    def __init__(self, pki: TestPki, user: str, password: str) -> None:
        super().__init__()
        self.handler = _MailHandler(self)

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and data.login.decode() == user
                and data.password.decode() == password
            )
            if ok:
                self.handler.logins.append(user)
            return AuthResult(success=ok, handled=False)

        with socket.socket() as probe:  # a free port: aiosmtpd's Controller needs one given
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port,
            tls_context=pki.server_context(), require_starttls=True,
            auth_required=True, auth_require_tls=True, authenticator=authenticate,
        )
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


# Made-up credentials in each service's documented shape (apprise's URL formats).
TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TG_CHAT = "987654321"
DISCORD_ID, DISCORD_TOKEN = "112233445566", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
SLACK_A, SLACK_B, SLACK_C = "T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"
MAIL_USER, MAIL_PASSWORD = "alerts", "p4ssw0rd-Very-Secret"
HOOK_SECRET = "hk-7f3e9a1c2b"


def every_channel(hook_port: int, smtp_port: int) -> str:
    """An alerts file with one channel of each kind the tests reach on loopback: the webhook,
    email with STARTTLS, Telegram, Discord and Slack (the last three through the proxy)."""
    return (
        f"json://127.0.0.1:{hook_port}/hook/{HOOK_SECRET}\n"
        f"mailtos://{MAIL_USER}:{MAIL_PASSWORD}@127.0.0.1:{smtp_port}"
        "?to=trader@example.org&from=alerts@example.org&mode=starttls\n"
        f"tgram://{TG_TOKEN}/{TG_CHAT}\n"
        f"discord://{DISCORD_ID}/{DISCORD_TOKEN}\n"
        f"slack://{SLACK_A}/{SLACK_B}/{SLACK_C}/#alerts\n"
    )


def route_services(env: Any, proxy_url: str, ca_file: Path) -> None:
    """Send the https services through the loopback proxy and trust the test CA (``env`` a
    pytest MonkeyPatch): requests (apprise's HTTP client) reads the proxy and CA variables,
    smtplib's default context SSL_CERT_FILE."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY"):
        env.delenv(name, raising=False)
    env.setenv("HTTPS_PROXY", proxy_url)
    env.setenv("NO_PROXY", "127.0.0.1,localhost")
    env.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    env.setenv("SSL_CERT_FILE", str(ca_file))
