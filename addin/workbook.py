"""A macro-enabled workbook (``.xlsm``) for classic xlwings on Windows, ready for
"Import Functions".

Classic xlwings makes Excel call Python through VBA: "Import Functions" writes one VBA
module of function stubs into the workbook, and those stubs call the xlwings add-in, so the
workbook must be able to hold VBA (``.xlsm``, not ``.xlsx``) and its VBA project must
reference the add-in. xlwings ships such a VBA project in its own quickstart workbook
(``xlwings/quickstart.xlsm``, what ``xlwings quickstart`` copies); :func:`macro_workbook`
takes that ``vbaProject.bin`` unchanged and adds it to a journal or rebalance workbook built
by :mod:`templates` with the UDF formulas and the ``xlwings.conf`` sheet.

The workbook is converted part by part inside its zip (nothing is re-saved by a library),
so every sheet, chart, validation and format of the built workbook stays as it was.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, unescape

from leverage.errors import InputError

BOOKS = ("journal", "rebalance")
TEMPLATE_NAME = "quickstart.xlsm"
VBA_PART = "xl/vbaProject.bin"
VBA_REL = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
VBA_TYPE = "application/vnd.ms-office.vbaProject"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSM_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"


def xlwings_template() -> Path:
    """xlwings' quickstart workbook inside the installed xlwings package (not imported)."""
    spec = importlib.util.find_spec("xlwings")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'xlwings'", name="xlwings")
    path = Path(next(iter(spec.submodule_search_locations))) / TEMPLATE_NAME
    if not path.is_file():
        raise InputError(f"this xlwings has no {TEMPLATE_NAME} at {path}: "
                         "reinstall xlwings (pip install --force-reinstall xlwings)")
    return path


def macro_workbook(
    out: str | Path, book: str = "journal", sample: bool = True, interpreter: str | None = None
) -> Path:
    """Write the ``book`` workbook (``journal`` or ``rebalance``, UDF formulas) as a
    macro-enabled ``out`` (``.xlsm``) with xlwings' quickstart VBA project and an
    ``xlwings.conf`` sheet (``UDF Modules``, and ``Interpreter_Win`` when given).
    A file already at ``out`` is kept as ``out.bak``; the new one is written beside it and
    renamed over it (a symbolic link or read-only ``out`` is refused, never replaced)."""
    try:
        from leverage_templates import build_journal, build_rebalance
    except ModuleNotFoundError as exc:
        exc.extra = "templates"  # type: ignore[attr-defined]  # `leverage` names this extra
        raise

    out = Path(out)
    if out.suffix.lower() != ".xlsm":
        raise InputError(f"--out must be a .xlsm file name, got {str(out)!r}")
    if book not in BOOKS:
        raise InputError(f"book must be one of {', '.join(BOOKS)}, got {book!r}")
    if interpreter is not None and not interpreter.strip():
        raise InputError("interpreter must be a path to python.exe, got an empty text")
    _check_target(out)
    template = xlwings_template()
    build = build_journal if book == "journal" else build_rebalance
    with tempfile.TemporaryDirectory(prefix="leverage-xlsm-") as tmp:
        built = build(Path(tmp) / f"{book}.xlsx", mode="udf", sample=sample)
        with zipfile.ZipFile(template) as t:
            vba = t.read(VBA_PART)
        out.parent.mkdir(parents=True, exist_ok=True)
        # written beside the target and renamed within its folder: a rename from $TMPDIR
        # fails across filesystems, and the old file must stay until the new one is whole
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        staged = Path(name)
        try:
            _convert(built, staged, vba, interpreter)
            if out.exists():
                shutil.copy2(out, out.with_name(out.name + ".bak"))
            os.replace(staged, out)
        finally:
            staged.unlink(missing_ok=True)
    return out


def _check_target(out: Path) -> None:
    """Refuse a target that replacing would not write where the user means: a symbolic link
    (the link would be replaced by a file), something not a file, or a read-only file."""
    if out.is_symlink():
        raise InputError(f"--out {str(out)!r} is a symbolic link: name the file it points to "
                         f"({os.path.realpath(out)!r}) or another file")
    if out.exists() and not out.is_file():
        raise InputError(f"--out {str(out)!r} exists and is not a file")
    if out.exists() and (not out.stat().st_mode & stat.S_IWUSR or not os.access(out, os.W_OK)):
        raise InputError(f"--out {str(out)!r} is read-only: make it writable or name "
                         "another file")


def _convert(src: Path, dst: Path, vba: bytes, interpreter: str | None) -> None:
    with zipfile.ZipFile(src) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    sheets = _sheet_parts(parts)
    parts["[Content_Types].xml"] = _macro_content_types(parts["[Content_Types].xml"])
    rels = parts["xl/_rels/workbook.xml.rels"].decode()
    parts["xl/_rels/workbook.xml.rels"] = rels.replace(
        "</Relationships>",
        f'<Relationship Type="{VBA_REL}" Target="vbaProject.bin" Id="rIdVbaProject"/>'
        "</Relationships>").encode()
    # The VBA project's document modules are ThisWorkbook and Sheet1, Sheet2...: the
    # workbook and its sheets carry those code names, as in a workbook Excel saved.
    workbook = parts["xl/workbook.xml"].decode()
    parts["xl/workbook.xml"] = re.sub(r"<workbookPr(?=[\s/>])",
                                      '<workbookPr codeName="ThisWorkbook"', workbook,
                                      count=1).encode()
    for n, (title, part) in enumerate(sheets, start=1):
        xml = _with_code_name(parts[part].decode(), f"Sheet{n}")
        if title == _conf_sheet_title() and interpreter:
            xml = _append_row(xml, "Interpreter_Win", interpreter)
        parts[part] = xml.encode()
    parts[VBA_PART] = vba
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)


def _conf_sheet_title() -> str:
    from leverage.layout import XLWINGS_CONF_SHEET

    return XLWINGS_CONF_SHEET


def _sheet_parts(parts: dict[str, bytes]) -> list[tuple[str, str]]:
    """(sheet title, zip part) of every sheet, in the workbook's order."""
    rels = parts["xl/_rels/workbook.xml.rels"].decode()
    target = {}
    for rel in re.findall(r"<Relationship\b[^>]*>", rels):
        rid, where = re.search(r'Id="([^"]+)"', rel), re.search(r'Target="([^"]+)"', rel)
        if rid and where:
            path = where.group(1)
            target[rid.group(1)] = path.lstrip("/") if path.startswith("/") else f"xl/{path}"
    found = []
    for sheet in re.findall(r"<sheet\b[^>]*>", parts["xl/workbook.xml"].decode()):
        title = re.search(r'name="([^"]*)"', sheet)
        rid = re.search(r'r:id="([^"]+)"', sheet)
        if title and rid:
            found.append((unescape(title.group(1), {"&quot;": '"', "&apos;": "'"}),
                          target[rid.group(1)]))
    return found


def _macro_content_types(xml: bytes) -> bytes:
    text = xml.decode().replace(XLSX_MAIN, XLSM_MAIN)
    if 'Extension="bin"' not in text:
        text = re.sub(r"(<Types\b[^>]*>)",
                      rf'\1<Default Extension="bin" ContentType="{VBA_TYPE}"/>', text, count=1)
    return text.encode()


def _with_code_name(xml: str, code_name: str) -> str:
    if re.search(r"<sheetPr\b[^>]*\bcodeName=", xml):
        return xml
    if re.search(r"<sheetPr(?=[\s/>])", xml):
        return re.sub(r"<sheetPr(?=[\s/>])", f'<sheetPr codeName="{code_name}"', xml, count=1)
    return re.sub(r"(<worksheet\b[^>]*>)", rf'\1<sheetPr codeName="{code_name}"/>', xml,
                  count=1)


def _append_row(xml: str, key: str, value: str) -> str:
    """``xml`` (a sheet) with one more row of two text cells under its last row."""
    rows = [int(r) for r in re.findall(r'<row\b[^>]*\br="(\d+)"', xml)]
    r = max(rows, default=0) + 1
    cells = "".join(f'<c r="{col}{r}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'
                    for col, text in (("A", key), ("B", value)))
    row = f'<row r="{r}">{cells}</row>'
    if "<sheetData/>" in xml:
        return xml.replace("<sheetData/>", f"<sheetData>{row}</sheetData>", 1)
    return xml.replace("</sheetData>", f"{row}</sheetData>", 1)
