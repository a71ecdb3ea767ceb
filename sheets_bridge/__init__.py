"""Keep a Google spreadsheet (or a local .xlsx) in step with the leverage core.

The trader types positions and events; :func:`sync` reads every input in one request,
computes each derived column with the core and writes what changed in one request.

    from leverage_sheets import open_local, open_google, init, sync
    book = open_local("journal.xlsx")          # or open_google(KEY, "service_account.json")
    init(book, "journal", sample=True)
    print(sync(book, "journal"))
"""

from __future__ import annotations

from .backend import Backend, LayoutError, RequestFailed, SheetsError, Update
from .content import layout_rows
from .credentials import CREDENTIALS_ENV, SCOPE
from .engine import Progress, SyncReport, detect_template, sync, watch
from .google import GoogleBackend, open_google
from .http import RetryingHTTPClient, RetryPolicy
from .local import XlsxBackend, open_local


def init(backend: Backend, template: str, sample: bool = False) -> None:
    """Lay the template's tabs, headers, formats and drop-downs into ``backend`` (sample
    rows too with ``sample=True``). Tabs that already hold the layout keep their rows;
    a tab of the same name with other headers is refused, and nothing changes."""
    backend.lay_out(template, layout_rows(template, sample))


__all__ = [
    "CREDENTIALS_ENV",
    "SCOPE",
    "Backend",
    "GoogleBackend",
    "LayoutError",
    "Progress",
    "RequestFailed",
    "RetryPolicy",
    "RetryingHTTPClient",
    "SheetsError",
    "SyncReport",
    "Update",
    "XlsxBackend",
    "detect_template",
    "init",
    "layout_rows",
    "open_google",
    "open_local",
    "sync",
    "watch",
]
