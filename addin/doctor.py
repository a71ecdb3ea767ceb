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
    """{key: value} of the ``xlwings.conf`` sheet of ``workbook`` (empty if it has none)."""
    import openpyxl

    from leverage.layout import XLWINGS_CONF_SHEET

    wb = openpyxl.load_workbook(workbook, read_only=True, keep_vba=False)
    try:
        if XLWINGS_CONF_SHEET not in wb.sheetnames:
            return {}
        rows = wb[XLWINGS_CONF_SHEET].iter_rows(min_col=1, max_col=2, values_only=True)
        return {str(k): "" if v is None else str(v) for k, v in rows if k is not None}
    finally:
        wb.close()


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
    found = []
    try:
        with zipfile.ZipFile(workbook) as z:
            has_vba = "xl/vbaProject.bin" in z.namelist()
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
    if rows.get("UDF Modules") == udf_module:
        found.append(Finding("ok", f"{XLWINGS_CONF_SHEET} sheet: UDF Modules = {udf_module}"))
    else:
        found.append(Finding("fix", f"{workbook.name}: add a sheet '{XLWINGS_CONF_SHEET}' with "
                                    f"A1 'UDF Modules' and B1 '{udf_module}' (found "
                                    f"{rows.get('UDF Modules', 'none')!r})"))
    interpreter = rows.get("Interpreter_Win")
    if interpreter and sys.platform == "win32" and not Path(interpreter).is_file():
        found.append(Finding("fix", f"Interpreter_Win {interpreter} does not exist: set it to "
                                    f"{sys.executable}"))
    return found


def diagnose(udf_module: str, workbook: Path | None = None) -> list[Finding]:
    findings = [check_platform(), check_xlwings()]
    if findings[-1].level == "ok":
        findings.append(check_udf_module(udf_module))
    if workbook is not None:
        findings.extend(check_workbook(workbook, udf_module))
    return findings
