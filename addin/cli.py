"""``leverage addin ...``: what to paste or save so that Excel finds the leverage functions.

    leverage addin desktop [--out FOLDER]   classic xlwings on Windows (UDF Modules, xlwings.conf)
    leverage addin lite [--out FOLDER]      xlwings Lite (main.py and requirements.txt)
    leverage addin workbook --out FILE.xlsm a macro-enabled workbook for classic xlwings
    leverage addin doctor                   check the set-up and say what to fix
    leverage addin functions                the Excel functions and their arguments

Registering these commands imports neither xlwings nor the core: ``leverage`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from leverage.errors import InputError

UDF_MODULE = "leverage_addin.udfs"

def conf_rows(interpreter: str | None = None) -> list[tuple[str, str]]:
    """The (key, value) settings classic xlwings needs, as in an ``xlwings.conf`` sheet."""
    rows = [("UDF Modules", UDF_MODULE)]
    if interpreter:
        rows.append(("Interpreter_Win", interpreter))
    return rows


def conf_file_text(rows: list[tuple[str, str]]) -> str:
    """``xlwings.conf`` file format: one ``"KEY","VALUE"`` line per setting."""
    for key, value in rows:
        if '"' in key or '"' in value:
            raise InputError(f"xlwings.conf values cannot contain a double quote, got {value!r}")
    return "".join(f'"{key}","{value}"\n' for key, value in rows)


def _write(folder: str, name: str, text: str) -> Path:
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out must be a folder, got the file {folder!r}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    # compared and kept as bytes: a previous file in another encoding is kept as it was
    if path.exists() and (old := path.read_bytes()) != text.encode("utf-8"):
        backup = path.with_name(path.name + ".bak")
        backup.write_bytes(old)
        print(f"kept the previous {name} as {backup}")
    path.write_text(text, encoding="utf-8")
    return path


def _interpreter(args: argparse.Namespace) -> str | None:
    """--interpreter, else on Windows this Python (the one the toolkit is installed in)."""
    return args.interpreter or (sys.executable if sys.platform == "win32" else None)


def _cmd_desktop(args: argparse.Namespace) -> int:
    interpreter = _interpreter(args)
    rows = conf_rows(interpreter)
    print("Classic xlwings (Excel on Windows)")
    print(f"  UDF Modules (xlwings ribbon tab):  {UDF_MODULE}")
    if interpreter:
        print(f"  Interpreter (xlwings ribbon tab):  {interpreter}")
    print("\nOr an 'xlwings.conf' sheet in the workbook (column A key, column B value, from A1):")
    for i, (key, value) in enumerate(rows, 1):
        print(f"  A{i}: {key:<16} B{i}: {value}")
    text = conf_file_text(rows)
    if args.out:
        path = _write(args.out, "xlwings.conf", text)
        print(f"\nwrote {path} (xlwings reads it for workbooks in that folder)")
    else:
        print("\nOr a file 'xlwings.conf' next to the workbook (--out FOLDER writes it):")
        print(text, end="")
    print("\nThen in Excel: xlwings tab > Import Functions, and type "
          "=EFFECTIVE_LEVERAGE(100000, 10000)")
    return 0


def _cmd_lite(args: argparse.Namespace) -> int:
    from leverage.cli import package_version

    from .lite import lite_main, lite_main_from_wheel, lite_requirements

    requirements = lite_requirements(args.wheel_url)
    main = lite_main_from_wheel() if args.wheel_url else lite_main(package_version())
    if args.out:
        for name, text in (("main.py", main), ("requirements.txt", requirements)):
            print(f"wrote {_write(args.out, name, text)}")
        print("In Excel: xlwings Lite task pane > paste each file into its tab "
              "(requirements.txt first), then type =EFFECTIVE_LEVERAGE(100000, 10000)")
        return 0
    print("# ---- requirements.txt (xlwings Lite task pane, requirements.txt tab) ----")
    print(requirements, end="")
    print("# ---- main.py (xlwings Lite task pane, main.py tab; add your own code below) ----")
    print(main, end="")
    return 0


def _cmd_workbook(args: argparse.Namespace) -> int:
    from .workbook import macro_workbook

    interpreter = _interpreter(args)
    path = macro_workbook(args.out, args.book, sample=not args.blank, interpreter=interpreter)
    print(f"wrote {path}")
    print("Then: open it in Excel on Windows (with `xlwings addin install` done), enable "
          "macros, xlwings tab > Import Functions.")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import diagnose

    findings = diagnose(UDF_MODULE, Path(args.workbook) if args.workbook else None,
                        Path(args.lite) if args.lite else None)
    for finding in findings:
        print(finding.line())
    to_fix = sum(f.level == "fix" for f in findings)
    print(f"{to_fix} thing(s) to fix" if to_fix else "nothing to fix")
    return 1 if to_fix else 0


def _cmd_functions(args: argparse.Namespace) -> int:
    import inspect

    from . import udfs

    for name in udfs.__all__:
        fn = getattr(udfs, name)
        params = []
        for p in inspect.signature(fn).parameters.values():
            params.append(p.name if p.default is inspect.Parameter.empty else f"[{p.name}]")
        print(f"={name}({', '.join(params)})")
        print(f"    {fn.__doc__}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``leverage addin`` and its commands to the ``leverage`` parser."""
    addin = subparsers.add_parser(
        "addin", help="set up the Excel functions (xlwings add-in or xlwings Lite)"
    )
    sub = addin.add_subparsers(dest="addin_command", required=True)
    desktop = sub.add_parser(
        "desktop", help="classic xlwings on Windows: UDF Modules value and xlwings.conf"
    )
    desktop.add_argument("--out", help="folder of your workbook: write xlwings.conf there")
    desktop.add_argument(
        "--interpreter", help="python.exe Excel should run (default: this one, on Windows)"
    )
    desktop.set_defaults(run=_cmd_desktop)
    lite = sub.add_parser("lite", help="xlwings Lite (Excel on the web/Mac): main.py, requirements")
    lite.add_argument("--out", help="folder to write main.py and requirements.txt into")
    lite.add_argument(
        "--wheel-url", help="a URL of this toolkit's wheel that Lite can download: "
                            "main.py then imports it instead of carrying the toolkit"
    )
    lite.set_defaults(run=_cmd_lite)
    workbook = sub.add_parser(
        "workbook", help="a macro-enabled .xlsm (journal or rebalance) for classic xlwings, "
                         "built on xlwings' quickstart workbook"
    )
    workbook.add_argument("--out", required=True, help="file to write, e.g. Leverage.xlsm")
    workbook.add_argument("--book", choices=("journal", "rebalance"), default="journal",
                          help="which workbook (default: journal)")
    workbook.add_argument("--blank", action="store_true", help="without the worked sample")
    workbook.add_argument(
        "--interpreter", help="python.exe Excel should run (default: this one, on Windows)"
    )
    workbook.set_defaults(run=_cmd_workbook)
    doctor = sub.add_parser("doctor", help="check the Excel set-up and say what to fix")
    doctor.add_argument("--workbook", help="also check this workbook (.xlsm)")
    doctor.add_argument("--lite", help="also check this xlwings Lite folder (main.py, "
                                       "requirements.txt)")
    doctor.set_defaults(run=_cmd_doctor)
    functions = sub.add_parser("functions", help="list the Excel functions and their arguments")
    functions.set_defaults(run=_cmd_functions)
