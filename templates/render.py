"""PNG pictures of a workbook's sheets, through headless LibreOffice and poppler.

LibreOffice recalculates the (native) formulas, prints every sheet to one PDF with the page
setup of the workbook (landscape, one page wide, header row repeated, the sheet's name in
the page header), and ``pdftoppm`` turns each page into a PNG named after its sheet. The
print areas are trimmed to the rows in use first, so the empty formula rows ready for new
events do not print as blank pages.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import uuid
import zipfile
from pathlib import Path

from openpyxl import load_workbook

from leverage.errors import InputError
from leverage.layout import XLWINGS_CONF_SHEET

TOOLS = ("soffice", "pdftoppm", "pdftotext")
MIN_PRINT_ROWS = 3


def _require_tools() -> dict[str, str]:
    found = {t: shutil.which(t) for t in TOOLS}
    missing = [t for t, p in found.items() if p is None]
    if missing:
        raise InputError(
            f"render needs {', '.join(missing)} on PATH (LibreOffice and poppler-utils; "
            "`make libreoffice` installs them)"
        )
    return {t: str(p) for t, p in found.items()}


def _rows_in_use(xlsx: Path) -> dict[str, int]:
    """Last row of each sheet holding something typed (not a formula), at least the header
    plus a couple of rows."""
    wb = load_workbook(xlsx, read_only=True)
    out = {}
    for ws in wb.worksheets:
        last = 1
        for row in ws.iter_rows():
            for cell in row:
                v = getattr(cell, "value", None)
                if v is not None and not (isinstance(v, str) and v.startswith("=")):
                    last = max(last, cell.row)
        out[ws.title] = max(last, MIN_PRINT_ROWS)
    wb.close()
    return out


def _trim_print_areas(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` with each print area ending at the sheet's last row in use."""
    rows = _rows_in_use(src)
    titles = load_workbook(src, read_only=True).sheetnames
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/workbook.xml":
                text = data.decode("utf-8")

                def trim(m: re.Match[str]) -> str:
                    title = titles[int(m["sheet"])]
                    return f"{m['head']}{m['col']}${rows.get(title, int(m['row']))}<"

                text = re.sub(
                    r'(?P<head><definedName name="_xlnm.Print_Area" localSheetId="(?P<sheet>\d+)"'
                    r"[^>]*>[^<]*:\$)(?P<col>[A-Z]+)\$(?P<row>\d+)<",
                    trim,
                    text,
                )
                data = text.encode("utf-8")
            zout.writestr(item, data)


def render(xlsx_path: str | Path, outdir: str | Path, *, dpi: int = 150) -> list[Path]:
    """Render every printed sheet of ``xlsx_path`` to PNG files in ``outdir``
    (``<workbook>-<sheet>-<page>.png``) and return their paths.

    Native-formula workbooks show their numbers; in a ``udf`` workbook LibreOffice has no
    add-in and the add-in cells show ``#NAME?``. Needs ``soffice``, ``pdftoppm`` and
    ``pdftotext``.
    """
    tools = _require_tools()
    src = Path(xlsx_path)
    if not src.is_file():
        raise InputError(f"xlsx_path must be an existing workbook, got {str(src)!r}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leverage-render-") as tmp_name:
        tmp = Path(tmp_name)
        trimmed = tmp / f"{src.stem}.xlsx"
        _trim_print_areas(src, trimmed)
        profile = tmp / f"profile-{uuid.uuid4().hex[:8]}"
        proc = subprocess.run(
            [tools["soffice"], f"-env:UserInstallation={profile.as_uri()}", "--headless",
             "--norestore", "--convert-to", "pdf", "--outdir", str(tmp / "pdf"), str(trimmed)],
            capture_output=True, text=True, timeout=180, check=False,
        )
        pdf = tmp / "pdf" / f"{src.stem}.pdf"
        if proc.returncode != 0 or not pdf.exists():
            raise RuntimeError(f"LibreOffice could not print {src.name}: {proc.stderr.strip()}")
        subprocess.run([tools["pdftoppm"], "-png", "-r", str(dpi), str(pdf), str(tmp / "page")],
                       check=True, capture_output=True, timeout=180)
        pages = sorted(tmp.glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        written: list[Path] = []
        counts: dict[str, int] = {}
        for page in pages:
            n = int(page.stem.rsplit("-", 1)[1])
            sheet = _page_sheet(tools["pdftotext"], pdf, n)
            if sheet == XLWINGS_CONF_SHEET:
                continue
            counts[sheet] = counts.get(sheet, 0) + 1
            name = f"{src.stem}-{_slug(sheet)}-{counts[sheet]}.png"
            target = out / name
            shutil.move(str(page), target)
            written.append(target)
    return written


def _page_sheet(pdftotext: str, pdf: Path, page: int) -> str:
    """The sheet a PDF page belongs to, read from its footer (``<sheet> | page n of m``)."""
    text = subprocess.run(
        [pdftotext, "-f", str(page), "-l", str(page), str(pdf), "-"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    found = re.findall(r"^(.+?) \| page \d+ of \d+\s*$", text, flags=re.MULTILINE)
    return found[-1].strip() if found else f"page{page}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "sheet"
