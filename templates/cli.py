"""``leverage templates build|render``: write the workbooks, or PNG pictures of their sheets.

    leverage templates build --out DIR [--formulas native|udf] [--blank]
    leverage templates render --out DIR
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from leverage.errors import InputError
from leverage.layout import MODES


def register(subparsers: Any) -> None:
    """Add ``templates`` with its ``build`` and ``render`` subcommands."""
    parser = subparsers.add_parser("templates", help="ready-made journal and rebalance workbooks")
    sub = parser.add_subparsers(dest="templates_command", required=True)
    build = sub.add_parser("build", help="write journal-<mode>.xlsx and rebalance-<mode>.xlsx")
    build.add_argument("--out", required=True, type=Path, help="folder to write into")
    # native by default: it computes in Excel, LibreOffice and Google Sheets alike, where the
    # add-in's formulas show #NAME? anywhere but Excel with the add-in
    build.add_argument("--formulas", choices=MODES, default="native",
                       help="native (default): plain spreadsheet formulas, for Excel, "
                            "LibreOffice and Google Sheets; udf: cells call the Excel add-in's "
                            "functions")
    build.add_argument("--blank", action="store_true",
                       help="empty workbooks instead of the worked sample")
    build.set_defaults(run=_build)
    render = sub.add_parser("render", help="PNG of every sheet of the native sample workbooks "
                                           "(needs LibreOffice and poppler)")
    render.add_argument("--out", required=True, type=Path, help="folder for the PNG files")
    render.set_defaults(run=_render)


def _out_folder(path: Path) -> Path:
    """``path``, created if need be, once a file can be written in it: checked before any
    workbook is built, so a bad folder costs one clear line and nothing half-written."""
    if path.exists() and not path.is_dir():
        raise InputError(f"--out must be a folder, got the file {str(path)!r}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InputError(
            f"--out must be a folder you can write to; {str(path)!r} is not ({why})"
        ) from None
    return path


def _build(args: argparse.Namespace) -> int:
    from . import build_journal, build_rebalance

    _out_folder(args.out)
    mode = args.formulas
    for path in (
        build_journal(args.out / f"journal-{mode}.xlsx", mode=mode, sample=not args.blank),
        build_rebalance(args.out / f"rebalance-{mode}.xlsx", mode=mode, sample=not args.blank),
    ):
        print(path)
    return 0


def _render(args: argparse.Namespace) -> int:
    from . import build_journal, build_rebalance, render

    _out_folder(args.out)
    with tempfile.TemporaryDirectory(prefix="leverage-templates-") as tmp:
        books = (build_journal(Path(tmp) / "journal.xlsx", mode="native"),
                 build_rebalance(Path(tmp) / "rebalance.xlsx", mode="native"))
        for book in books:
            for png in render(book, args.out):
                print(png)
    return 0
