"""``leverage addin doctor``: check what can be checked of the Excel set-up, on any OS, and
say what to fix.

Each check gives a :class:`Finding`: ``ok`` (fine), ``note`` (worth knowing, nothing to fix
here) or ``fix`` (with the command or step that fixes it). The command exits 1 when there is
something to fix.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

MIN_XLWINGS = (0, 33)  # the [excel] extra's lower bound


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "note" or "fix"
    text: str

    def line(self) -> str:
        return f"{self.level.upper():<4}  {self.text}"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


def check_platform(platform: str = sys.platform) -> Finding:
    if platform == "win32":
        return Finding("ok", "Windows: classic xlwings runs the functions in desktop Excel")
    return Finding("note", "classic xlwings has no UDFs on this OS (Windows only): in Excel on "
                           "macOS or the web use xlwings Lite (`leverage addin lite --out DIR`)")


def check_xlwings() -> Finding:
    from leverage.cli import install_hint

    try:
        import xlwings
    except ModuleNotFoundError:
        return Finding("fix", f"xlwings is not installed: {install_hint('xlwings', 'excel')}")
    have = _version_tuple(xlwings.__version__)
    if have < MIN_XLWINGS:
        return Finding("fix", f"xlwings {xlwings.__version__} is older than "
                              f"{'.'.join(map(str, MIN_XLWINGS))}: pip install -U xlwings")
    return Finding("ok", f"xlwings {xlwings.__version__}")


def check_udf_module(module_name: str) -> Finding:
    """The UDF module imports and exposes every catalogue function as an xlwings function."""
    from leverage import CATALOGUE

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return Finding("fix", f"{module_name} does not import ({exc}): reinstall the toolkit "
                              "with the [excel] extra")
    names = list(getattr(module, "__all__", []))
    missing = [n for n in CATALOGUE if n not in names or not callable(getattr(module, n, None))]
    if missing:
        return Finding("fix", f"{module_name} lacks {', '.join(missing)}: reinstall the toolkit")
    if _decorators_active():
        plain = [n for n in names if not hasattr(getattr(module, n), "__xlfunc__")]
        if plain:
            return Finding("fix", f"{module_name}: {', '.join(plain)} are not xlwings functions")
    shown = ", ".join(f"{n}({len(inspect.signature(getattr(module, n)).parameters)})"
                      for n in names[:3])
    return Finding("ok", f"{module_name} lists all {len(names)} functions ({shown}, ...)")


def _decorators_active() -> bool:
    """Whether xlwings' decorators mark functions here (they are no-ops on Linux without
    xlwings Server)."""
    from .bridge import excel_runtime

    return excel_runtime() != "python"


def conf_sheet_rows(workbook: Path) -> dict[str, str]:
    """{key: value} of the ``xlwings.conf`` sheet of ``workbook`` (empty if it has none), keys
    as written, from A1 down to the first blank key: the rows xlwings reads (its VBA goes from
    A1 to ``End(xlDown)``; xlwings.bas, ``GetConfigFromSheet``)."""
    import openpyxl

    from leverage.layout import XLWINGS_CONF_SHEET

    wb = openpyxl.load_workbook(workbook, read_only=True, keep_vba=False)
    try:
        if XLWINGS_CONF_SHEET not in wb.sheetnames:
            return {}
        rows = {}
        for k, v in wb[XLWINGS_CONF_SHEET].iter_rows(min_col=1, max_col=2, values_only=True):
            if k is None or k == "":
                break
            rows[str(k)] = "" if v is None else str(v)
        return rows
    finally:
        wb.close()


def xlwings_keys(rows: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The settings as xlwings looks them up, and the keys it cannot read.

    xlwings upper-cases each key of the sheet (``d.Add UCase(cell.Value), ...``) and asks for
    ``"UDF MODULES"``, so ``UDF Modules``, ``udf modules`` and ``UDF MODULES`` are one key;
    two of them in one sheet make its ``Scripting.Dictionary`` raise (a key added twice).

    >>> xlwings_keys({"udf modules": "m", "Interpreter_Win": "p"})
    ({'UDF MODULES': 'm', 'INTERPRETER_WIN': 'p'}, [])
    """
    upper: dict[str, str] = {}
    twice = []
    for key, value in rows.items():
        if key.upper() in upper:
            twice.append(key)
        upper.setdefault(key.upper(), value)
    return upper, twice


def _workbook_content_type(z: zipfile.ZipFile) -> str | None:
    """The content type ``[Content_Types].xml`` gives ``/xl/workbook.xml`` (None: none)."""
    from lxml import etree

    try:
        root = etree.fromstring(z.read("[Content_Types].xml"))
    except (KeyError, etree.XMLSyntaxError):
        return None
    for node in root:
        if node.get("PartName") == "/xl/workbook.xml":
            return node.get("ContentType")
    return None


def check_workbook(workbook: Path, udf_module: str) -> list[Finding]:
    """The workbook holds VBA (.xlsm) and its ``xlwings.conf`` sheet names the UDF module."""
    from leverage.cli import install_hint

    try:
        from leverage.layout import XLWINGS_CONF_SHEET
    except ModuleNotFoundError as exc:
        return [Finding("fix", f"reading a workbook {install_hint(exc.name or '', 'templates')}")]
    if not workbook.is_file():
        return [Finding("fix", f"{workbook} does not exist: "
                               "`leverage addin workbook --out Leverage.xlsm` writes one")]
    from .workbook import XLSM_MAIN

    found = []
    try:
        with zipfile.ZipFile(workbook) as z:
            has_vba = "xl/vbaProject.bin" in z.namelist()
            content_type = _workbook_content_type(z)
        rows = conf_sheet_rows(workbook)
    except Exception as exc:  # anything openpyxl or zipfile raise on a file that is not one
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return [Finding("fix", f"{workbook.name} is not a workbook Excel can open ({reason}): "
                               "`leverage addin workbook --out Leverage.xlsm` writes one")]
    if has_vba:
        found.append(Finding("ok", f"{workbook.name} can hold the VBA of 'Import Functions'"))
    else:
        found.append(Finding("fix", f"{workbook.name} has no VBA project (.xlsx?): classic "
                                    "xlwings needs a .xlsm: `leverage addin workbook --out "
                                    "Leverage.xlsm`"))
    # Excel opens a file by its extension and its workbook part's content type together: a
    # macro workbook saved with the .xlsx type (or the reverse) is refused as "not valid"
    macro_file = has_vba or workbook.suffix.lower() == ".xlsm"
    if macro_file and content_type != XLSM_MAIN:
        found.append(Finding("fix", f"{workbook.name}: its workbook part has the content type "
                                    f"{content_type or 'none'!r}, not the macro-enabled "
                                    f"{XLSM_MAIN!r}: Excel will not open it as a .xlsm; "
                                    "`leverage addin workbook --out Leverage.xlsm` writes one"))
    config, twice = xlwings_keys(rows)
    if twice:
        found.append(Finding("fix", f"{XLWINGS_CONF_SHEET} sheet: {', '.join(twice)} repeats a "
                                    "key (xlwings reads keys in any case): keep one row each"))
    if config.get("UDF MODULES") == udf_module:
        found.append(Finding("ok", f"{XLWINGS_CONF_SHEET} sheet: UDF Modules = {udf_module}"))
    else:
        found.append(Finding("fix", f"{workbook.name}: add a sheet '{XLWINGS_CONF_SHEET}' with "
                                    f"A1 'UDF Modules' and B1 '{udf_module}' (found "
                                    f"{config.get('UDF MODULES', 'none')!r})"))
    interpreter = config.get("INTERPRETER_WIN")
    if interpreter and sys.platform == "win32" and not Path(interpreter).is_file():
        found.append(Finding("fix", f"Interpreter_Win {interpreter} does not exist: set it to "
                                    f"{sys.executable}"))
    return found


def _requirement_name(line: str) -> str:
    """A requirement's project name as pip compares them (PEP 503: case and ``-_.`` runs
    folded), or the line itself for a URL."""
    if "://" in line:
        return line
    name = re.match(r"[A-Za-z0-9._-]*", line)
    return re.sub(r"[-_.]+", "-", name.group(0) if name else line).lower()


def check_lite(folder: Path, udf_module: str) -> list[Finding]:
    """An xlwings Lite folder as ``leverage addin lite --out FOLDER`` writes it: ``main.py``
    that registers the functions, and a ``requirements.txt`` naming exactly what Pyodide must
    load: the packages the functions import (:data:`~leverage_addin.lite.LITE_REQUIREMENTS`),
    plus the toolkit's wheel URL when ``main.py`` imports the toolkit instead of carrying it.
    A missing package leaves the functions unregistered; an extra one (this toolkit by name,
    which no package index holds) makes Lite's install fail."""
    from .lite import LITE_REQUIREMENTS

    redo = f"`leverage addin lite --out {folder}` writes it"
    if not folder.is_dir():
        return [Finding("fix", f"{folder} is not a folder: {redo}")]
    found = []
    main_py, requirements = folder / "main.py", folder / "requirements.txt"
    wheel = False
    if not main_py.is_file():
        found.append(Finding("fix", f"{folder.name}: main.py is missing: {redo}"))
    else:
        text = main_py.read_text(encoding="utf-8", errors="replace")
        wheel = "_TOOLKIT_ZIP" not in text
        if f"from {udf_module} import *" not in text:
            found.append(Finding("fix", f"{folder.name}: main.py does not import the functions "
                                        f"(`from {udf_module} import *`): {redo}"))
        else:
            carried = "imports them from the wheel" if wheel else "carries the toolkit"
            found.append(Finding("ok", f"{folder.name}: main.py registers the functions "
                                       f"({carried})"))
    if not requirements.is_file():
        found.append(Finding("fix", f"{folder.name}: requirements.txt is missing: {redo}"))
        return found
    lines = [line.split("#", 1)[0].strip() if "://" not in line else line.strip()
             for line in requirements.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [_requirement_name(line) for line in lines if line]
    urls = [n for n in names if "://" in n]
    missing = [n for n in LITE_REQUIREMENTS if n not in names]
    extra = [n for n in names if "://" not in n and n not in LITE_REQUIREMENTS]
    if wheel and len(urls) != 1:
        missing.append("this toolkit's wheel URL (main.py imports it)")
    if not wheel:
        extra.extend(urls)
    if missing:
        found.append(Finding("fix", f"{folder.name}: requirements.txt lacks "
                                    f"{', '.join(missing)}: {redo}"))
    if extra:
        found.append(Finding("fix", f"{folder.name}: requirements.txt also lists "
                                    f"{', '.join(extra)}, which Pyodide need not (or cannot) "
                                    f"load: remove it, or {redo}"))
    if not missing and not extra:
        found.append(Finding("ok", f"{folder.name}: requirements.txt lists "
                                   f"{', '.join(names)}"))
    return found


def diagnose(udf_module: str, workbook: Path | None = None,
             lite: Path | None = None) -> list[Finding]:
    findings = [check_platform(), check_xlwings()]
    if findings[-1].level == "ok":
        findings.append(check_udf_module(udf_module))
    if workbook is not None:
        findings.extend(check_workbook(workbook, udf_module))
    if lite is not None:
        findings.extend(check_lite(lite, udf_module))
    return findings
