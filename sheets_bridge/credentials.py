"""The service-account key file: where it is looked for and how it is read, without ever
showing what is inside it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .backend import SheetsError

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
"""The only scope the bridge asks for: it never needs Drive."""
CREDENTIALS_ENV = "LEVERAGE_GOOGLE_CREDENTIALS"
"""Environment variable holding the path of the service-account key file."""

def credentials_path(credentials: str | os.PathLike[str] | None = None) -> Path:
    """The key file: ``credentials`` if given, else ``$LEVERAGE_GOOGLE_CREDENTIALS``, else
    gspread's default location (``~/.config/gspread/service_account.json``)."""
    if credentials is not None and str(credentials).strip():
        return Path(credentials).expanduser()
    env = os.environ.get(CREDENTIALS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from gspread.auth import DEFAULT_SERVICE_ACCOUNT_FILENAME

    return Path(DEFAULT_SERVICE_ACCOUNT_FILENAME)


def load_credentials(path: Path) -> Any:
    """Service-account credentials limited to the spreadsheets scope.

    Every failure names the file and what is wrong with it, never what is inside it.
    """
    from google.oauth2.service_account import Credentials

    where = f"credentials file {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SheetsError(
            f"{where} does not exist: pass --credentials PATH or set {CREDENTIALS_ENV} "
            "(or use --file for a local workbook)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SheetsError(f"{where} cannot be read ({type(exc).__name__})") from None
    try:
        info = json.loads(text)
    except ValueError:
        raise SheetsError(
            f"{where} must be a JSON service-account key file; it is not JSON"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise SheetsError(
            f"{where} must be a service-account key (\"type\": \"service_account\"); create one "
            "in the Google Cloud console under IAM > Service accounts > Keys"
        )
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise SheetsError(f"{where} is missing {', '.join(missing)}")
    kind = _key_kind(info["private_key"])
    if kind is None:
        raise SheetsError(f"{where} holds a private key that cannot be read")
    if kind != "RSA":
        raise SheetsError(
            f"{where} holds an {kind} private key; Google service accounts sign in with an RSA "
            "key: create a new JSON key for the service account in the Google Cloud console"
        )
    try:
        return Credentials.from_service_account_info(info, scopes=[SCOPE])
    except Exception:  # the key failed to parse: say so without echoing it
        raise SheetsError(f"{where} holds a private key that cannot be read") from None


def _key_kind(pem: Any) -> str | None:
    """"RSA", another algorithm's short name ("EC", "Ed25519"...), or None when ``pem`` is not
    a readable unencrypted PEM private key."""
    if not isinstance(pem, str):
        return None
    try:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:  # google-auth then signs with the pure-Python rsa package, which
        return "RSA"  # refuses any other key while loading it
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except Exception:  # malformed, encrypted or unsupported: never echo why (it quotes the key)
        return None
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    return type(key).__name__.replace("PrivateKey", "") or "unknown"
