"""xlwings Lite without a package index: one ``main.py`` that carries the toolkit inside it.

xlwings Lite (Excel on the web, on macOS and on Windows, Python in Pyodide) installs what its
``requirements.txt`` names from a package index, and runs ``main.py``. This toolkit is not on
a package index, so :func:`lite_main` writes a ``main.py`` that holds the core package and the
Excel functions as a zip (base64 text). When Lite runs it, the zip is unpacked into a
temporary folder (Pyodide has an in-memory file system), the folder goes on ``sys.path``, and
``from <udf module> import *`` registers every function. ``requirements.txt`` names only
xlwings, numpy and pydantic, unpinned: Lite records the versions it installs in
``requirements-pinned.txt``, and numpy and pydantic are built into Pyodide.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import zipfile
from pathlib import Path
from types import ModuleType

from leverage.errors import InputError

# The modules of the add-in package that the Excel functions need (not the CLI helpers).
ADDIN_MODULES = ("__init__.py", "bridge.py", "udfs.py")
LITE_REQUIREMENTS = ("xlwings", "numpy", "pydantic")
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # a fixed date: the same sources give the same main.py


def _package_files(package: ModuleType, only: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """{path inside the zip: bytes} of ``package``'s Python files and data files."""
    root = Path(package.__file__ or "").parent
    top = package.__name__.replace(".", "/")
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or "__pycache__" in rel or path.suffix == ".pyc":
            continue
        if only is not None and rel not in only:
            continue
        files[f"{top}/{rel}"] = path.read_bytes()
    return files


def toolkit_zip() -> bytes:
    """The core package (with its tier tables) and the add-in's function modules, zipped."""
    import leverage

    from . import udfs

    addin = importlib.import_module(udfs.__name__.rpartition(".")[0])
    files = {**_package_files(leverage), **_package_files(addin, ADDIN_MODULES)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, _ZIP_DATE), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def lite_main(version: str) -> str:
    """The text of a self-contained ``main.py`` for xlwings Lite (see the module doc)."""
    from . import udfs

    blob = toolkit_zip()
    digest = hashlib.sha256(blob).hexdigest()[:12]
    encoded = base64.encodebytes(blob).decode("ascii")
    names = list(udfs.__all__)
    return f'''"""Leverage functions for xlwings Lite: ={names[0]}(...), =LIQ_PRICE(...)
and {len(names) - 2} more, in the category "Leverage".

Written by `leverage addin lite` from leverage-toolkit {version}. The toolkit's Python files
ride along below as a zip (base64 text): they are unpacked into a temporary folder when
xlwings Lite runs this file, and the functions are imported from there. Add your own code
at the end of this file; to update the functions, write this file again with a newer
`leverage addin lite`.
"""

import base64 as _base64
import io as _io
import sys as _sys
import tempfile as _tempfile
import zipfile as _zipfile
from pathlib import Path as _Path

_TOOLKIT_ZIP = """
{encoded}"""


def _unpack_toolkit() -> str:
    folder = _Path(_tempfile.gettempdir()) / "leverage-toolkit-{digest}"
    done = folder / ".unpacked"
    if not done.exists():
        with _zipfile.ZipFile(_io.BytesIO(_base64.b64decode(_TOOLKIT_ZIP))) as z:
            z.extractall(folder)
        done.write_text("")
    return str(folder)


_folder = _unpack_toolkit()
if _folder not in _sys.path:
    _sys.path.insert(0, _folder)

from {udfs.__name__} import *  # noqa: E402, F403
'''


def lite_main_from_wheel() -> str:
    """``main.py`` when the toolkit is installed from a wheel URL (``--wheel-url``): a plain
    import of the functions, which registers them with xlwings Lite."""
    from . import udfs

    names = list(udfs.__all__)
    return f'''"""Leverage functions: ={names[0]}(...), =LIQ_PRICE(...)
and {len(names) - 2} more.

Importing them here registers them with xlwings Lite (category "Leverage").
"""

from {udfs.__name__} import *  # noqa: F403
'''


def lite_requirements(wheel_url: str | None = None) -> str:
    """``requirements.txt`` for xlwings Lite: the packages the functions import, unpinned
    (numpy and pydantic come built for Pyodide; Lite pins what it installed itself), or a
    wheel URL of this toolkit with ``--wheel-url`` (one line: a control character such as
    a newline would add a line of its own to the file, so it is refused)."""
    if wheel_url is not None and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in wheel_url):
        raise InputError(f"--wheel-url must not contain control characters (a newline, tab "
                         f"or the like), got {wheel_url!r}")
    lines = [*LITE_REQUIREMENTS, *([wheel_url] if wheel_url else [])]
    return "".join(f"{line}\n" for line in lines)
