"""`leverage addin workbook` and `leverage addin doctor`: the .xlsm carries xlwings' own VBA
project and an xlwings.conf sheet, keeps the journal as built, and opens in LibreOffice."""

from __future__ import annotations

import errno
import math
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.formula import ArrayFormula
from xl_engine import libreoffice_available, recalc_with_libreoffice

import leverage as lv
from leverage.cli import main
from leverage_addin import doctor
from leverage_addin.cli import UDF_MODULE
from leverage_addin.workbook import XLSM_MAIN, xlwings_template
from leverage_templates import build_journal

INTERPRETER = r"C:\Users\me\leverage\.venv\Scripts\python.exe"


@pytest.fixture(scope="module")
def xlsm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("xlsm") / "Leverage.xlsm"
    assert main(["addin", "workbook", "--out", str(out), "--interpreter", INTERPRETER]) == 0
    return out


def test_the_vba_project_is_xlwings_quickstart(xlsm: Path) -> None:
    with zipfile.ZipFile(xlsm) as z, zipfile.ZipFile(xlwings_template()) as t:
        vba = z.read("xl/vbaProject.bin")
        assert vba == t.read("xl/vbaProject.bin")
        assert b"xlwings" in vba  # the project's reference to the xlwings add-in
        types = z.read("[Content_Types].xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
        workbook = z.read("xl/workbook.xml").decode()
        assert z.testzip() is None
    assert f'PartName="/xl/workbook.xml" ContentType="{XLSM_MAIN}"' in types
    assert 'Extension="bin" ContentType="application/vnd.ms-office.vbaProject"' in types
    assert 'relationships/vbaProject" Target="vbaProject.bin"' in rels
    assert '<workbookPr codeName="ThisWorkbook"' in workbook


def test_the_conf_sheet_names_the_udf_module_and_interpreter(xlsm: Path) -> None:
    assert doctor.conf_sheet_rows(xlsm) == {"UDF Modules": UDF_MODULE,
                                            "Interpreter_Win": INTERPRETER}
    wb = openpyxl.load_workbook(xlsm, keep_vba=True)
    assert wb.sheetnames == ["Instructions", "Positions", "Events", "Summary", "Rules",
                             "Charts", "Chart data", "xlwings.conf"]
    assert [ws.sheet_properties.codeName for ws in wb] == [f"Sheet{i}" for i in range(1, 9)]


def test_the_journal_is_kept_as_built(xlsm: Path, tmp_path: Path) -> None:
    built = build_journal(tmp_path / "journal.xlsx", mode="udf")
    with zipfile.ZipFile(built) as a, zipfile.ZipFile(xlsm) as b:
        same = {"xl/worksheets/sheet2.xml", "xl/charts/chart1.xml", "xl/styles.xml"}
        for part in same:  # the events sheet differs only by its code name
            assert a.read(part).replace(b"<sheetPr>", b'<sheetPr codeName="Sheet2">') == \
                b.read(part), part
        assert set(a.namelist()) | {"xl/vbaProject.bin"} == set(b.namelist())


@pytest.mark.skipif(not libreoffice_available(),
                    reason="LibreOffice (soffice) is not installed: `make libreoffice`")
def test_libreoffice_opens_it_with_the_journal_intact(xlsm: Path, tmp_path: Path) -> None:
    built = openpyxl.load_workbook(build_journal(tmp_path / "j.xlsx", mode="udf"))
    opened = openpyxl.load_workbook(recalc_with_libreoffice(xlsm, tmp_path / "lo"))
    assert opened.sheetnames == built.sheetnames
    compared = 0
    for ws in built:
        for row in ws.iter_rows():
            for c in row:
                if c.value is None or (isinstance(c.value, str) and c.value.startswith("=")):
                    continue
                got = opened[ws.title][c.coordinate].value
                if isinstance(c.value, ArrayFormula):  # the add-in's column calls
                    assert isinstance(got, ArrayFormula) and got.ref == c.value.ref, \
                        (ws.title, c.coordinate)
                    continue
                if isinstance(c.value, float):
                    assert math.isclose(got, c.value), (ws.title, c.coordinate)
                else:
                    assert got == c.value, (ws.title, c.coordinate)
                compared += 1
    assert compared > 100  # the sample journal's typed positions, events and rules
    formulas = [c.value for c in opened["Events"][2] if isinstance(c.value, str)
                and c.value.startswith("=")]
    assert formulas, "the Events sheet keeps its formulas"


def test_workbook_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["addin", "workbook", "--out", str(tmp_path / "Leverage.xlsx")]) == 2
    assert "--out must be a .xlsm file name" in capsys.readouterr().err


def test_workbook_keeps_a_previous_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "Rebalance.xlsm"
    out.write_bytes(b"mine")
    assert main(["addin", "workbook", "--out", str(out), "--book", "rebalance", "--blank"]) == 0
    assert (tmp_path / "Rebalance.xlsm.bak").read_bytes() == b"mine"
    assert openpyxl.load_workbook(out, keep_vba=True).sheetnames[-1] == "xlwings.conf"


def test_workbook_out_on_another_filesystem_than_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a rename between two folders is what fails across filesystems ("Invalid cross-device
    # link"): made to fail here whatever the machine's mounts, so the file must be written
    # beside the target and renamed within its folder
    real_replace = os.replace

    def same_folder_only(src: Any, dst: Any) -> None:
        if Path(src).resolve().parent != Path(dst).resolve().parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", same_folder_only)
    out = tmp_path / "book" / "Leverage.xlsm"
    out.parent.mkdir()
    out.write_bytes(b"mine")
    assert main(["addin", "workbook", "--out", str(out), "--blank"]) == 0
    assert openpyxl.load_workbook(out, keep_vba=True).sheetnames[-1] == "xlwings.conf"
    assert (out.parent / "Leverage.xlsm.bak").read_bytes() == b"mine"
    assert sorted(p.name for p in out.parent.iterdir()) == ["Leverage.xlsm", "Leverage.xlsm.bak"]


def test_workbook_refuses_a_symlink_or_read_only_target(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    real = tmp_path / "real.xlsm"
    real.write_bytes(b"mine")
    link = tmp_path / "Leverage.xlsm"
    link.symlink_to(real)
    assert main(["addin", "workbook", "--out", str(link), "--blank"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and real.read_bytes() == b"mine"
    locked = tmp_path / "Locked.xlsm"
    locked.write_bytes(b"mine")
    locked.chmod(0o444)
    assert main(["addin", "workbook", "--out", str(locked), "--blank"]) == 2
    assert "is read-only" in capsys.readouterr().err
    assert locked.read_bytes() == b"mine"
    assert not (tmp_path / "Locked.xlsm.bak").exists()


# ------------------------------------------------------------------------------ doctor
def test_doctor_all_good(xlsm: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["addin", "doctor", "--workbook", str(xlsm)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"OK    {UDF_MODULE} lists all {len(lv.CATALOGUE)} functions" in out
    assert "OK    xlwings.conf sheet: UDF Modules = leverage_addin.udfs" in out
    assert out.rstrip().endswith("nothing to fix")


def test_doctor_says_what_to_fix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    xlsx = build_journal(tmp_path / "journal.xlsx", mode="native")  # no VBA, no conf sheet
    assert main(["addin", "doctor", "--workbook", str(xlsx)]) == 1
    out = capsys.readouterr().out
    assert "FIX   journal.xlsx has no VBA project" in out
    assert "add a sheet 'xlwings.conf' with A1 'UDF Modules' and B1 'leverage_addin.udfs'" in out
    assert main(["addin", "doctor", "--workbook", str(tmp_path / "none.xlsm")]) == 1
    assert "does not exist" in capsys.readouterr().out


def test_doctor_checks_without_excel(monkeypatch: pytest.MonkeyPatch) -> None:
    assert doctor.check_platform("darwin").level == "note"
    assert "xlwings Lite" in doctor.check_platform("darwin").text
    assert doctor.check_platform("win32").level == "ok"
    assert doctor.check_udf_module("no_such_module").level == "fix"
    monkeypatch.setitem(sys.modules, "xlwings", None)
    found = doctor.check_xlwings()
    assert found.level == "fix" and '"leverage-toolkit[excel]"' in found.text


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04" + b"\0" * 40])
def test_doctor_on_a_file_that_is_not_a_workbook_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes
) -> None:
    book = tmp_path / "Leverage.xlsm"
    book.write_bytes(content)
    assert main(["addin", "doctor", "--workbook", str(book)]) == 1
    captured = capsys.readouterr()
    said = [line for line in captured.out.splitlines() if "Leverage.xlsm" in line]
    assert len(said) == 1 and said[0].startswith("FIX   Leverage.xlsm is not a workbook"), said
    assert "Traceback" not in captured.err
