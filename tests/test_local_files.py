"""The local workbook as a file: links, permissions, broken files, clashing tab names and merged
cells. Every refusal is one clear line and leaves the file as it was."""

from __future__ import annotations

import os
import re
import stat
import zipfile
from pathlib import Path

import openpyxl
import pytest

import leverage_sheets as sb
from leverage.cli import main
from leverage.layout import JOURNAL_EVENTS


def laid_out(path: Path) -> Path:
    sb.init(sb.open_local(path), "journal", sample=True)
    return path


def margin_cell(path: Path, row: int = 2) -> object:
    return openpyxl.load_workbook(path)["Events"][f"{JOURNAL_EVENTS.letter('margin')}{row}"].value


def test_a_symlinked_workbook_updates_its_target(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    real = laid_out(tmp_path / "real" / "book.xlsx")
    mode = 0o640
    os.chmod(real, mode)
    link = tmp_path / "link.xlsx"
    link.symlink_to(real)
    assert sb.sync(sb.open_local(link), "journal").changed
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert isinstance(margin_cell(real), float)  # the target holds the new values
    assert stat.S_IMODE(real.stat().st_mode) == mode
    assert sorted(p.name for p in real.parent.iterdir()) == ["book.xlsx"]  # no temp left


def test_a_hard_linked_workbook_is_refused_not_split(tmp_path: Path) -> None:
    path = laid_out(tmp_path / "book.xlsx")
    other = tmp_path / "other.xlsx"
    os.link(path, other)
    before = path.read_bytes()
    with pytest.raises(sb.SheetsError, match=r"has 2 hard links: .*nothing was written"):
        sb.sync(sb.open_local(path), "journal")
    assert path.read_bytes() == before and other.read_bytes() == before
    assert path.stat().st_ino == other.stat().st_ino


def test_a_read_only_workbook_is_refused(tmp_path: Path) -> None:
    path = laid_out(tmp_path / "book.xlsx")
    os.chmod(path, 0o444)
    before, ino = path.read_bytes(), path.stat().st_ino
    with pytest.raises(sb.SheetsError, match=r"is read-only \(mode 0444\): nothing was written"):
        sb.sync(sb.open_local(path), "journal")
    assert path.read_bytes() == before and path.stat().st_ino == ino
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_a_crash_while_writing_leaves_the_old_file(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = laid_out(tmp_path / "book.xlsx")
    before = path.read_bytes()
    real_writestr = zipfile.ZipFile.writestr
    calls: list[str] = []

    def dies_half_way(self: zipfile.ZipFile, info: object, data: object, *a: object) -> None:
        calls.append("x")
        if len(calls) == 4:
            raise KeyboardInterrupt  # a kill in the middle of the package
        real_writestr(self, info, data, *a)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        sb.sync(sb.open_local(path), "journal")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["book.xlsx"]


def test_init_refuses_a_tab_that_differs_only_in_case(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "events"
    wb.active["A1"] = "my own events"
    wb.save(path)
    before = path.read_bytes()
    with pytest.raises(sb.LayoutError, match="sheet 'events' already exists, and sheet names "
                                             "ignore case"):
        sb.init(sb.open_local(path), "journal")
    assert path.read_bytes() == before
    assert main(["sheets", "init", "--file", str(path), "--template", "journal"]) == 2
    assert openpyxl.load_workbook(path).sheetnames == ["events"]


def _xls(path: Path) -> None:
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)


def _truncated(path: Path) -> None:
    laid_out(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_member(path: Path) -> None:
    laid_out(path)
    data = bytearray(path.read_bytes())
    at = data.find(b"xl/worksheets/sheet2.xml") + 60  # inside the member's compressed bytes
    data[at : at + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


BROKEN = {
    "text": (lambda p: p.write_text("date,price\n1,2\n"), "is not an .xlsx workbook"),
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "truncated": (_truncated, "is truncated or damaged"),
    "corrupt member": (_corrupt_member, "is truncated or damaged"),
    "xls renamed": (_xls, "is an old-format .xls file"),
    "zip of something else": (
        lambda p: zipfile.ZipFile(p, "w").writestr("readme.txt", "hi"), "is a zip file but not an"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_file_is_one_clear_line(tmp_path: Path, case: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "book.xlsx"
    damage, message = BROKEN[case]
    damage(path)
    before = path.read_bytes()
    for call in (lambda b: sb.sync(b, "journal"), lambda b: sb.init(b, "journal"),
                 lambda b: b.sheet_titles()):
        with pytest.raises(sb.SheetsError, match=re.escape(message)):
            call(sb.open_local(path))
    for argv in (["sheets", "sync", "--file", str(path)],
                 ["sheets", "init", "--file", str(path), "--template", "journal"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("leverage: error: workbook") and err.count("\n") == 1, err
        assert message in err and "Traceback" not in err
    assert path.read_bytes() == before


def test_merged_cells_over_computed_columns_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = laid_out(tmp_path / "book.xlsx")
    wb = openpyxl.load_workbook(path)
    first = JOURNAL_EVENTS.letter(JOURNAL_EVENTS.keys("computed")[0])
    third = JOURNAL_EVENTS.letter(JOURNAL_EVENTS.keys("computed")[2])
    wb["Events"].merge_cells(f"{first}5:{third}5")
    wb.save(path)
    before = path.read_bytes()
    with pytest.raises(sb.LayoutError, match=rf"Events!{first}5 is inside the merged range "
                                             rf"Events!{first}5:{third}5"):
        sb.sync(sb.open_local(path), "journal")
    assert main(["sheets", "sync", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unmerge it" in err
    assert path.read_bytes() == before


def test_a_formula_inside_an_array_range_is_refused(tmp_path: Path) -> None:
    """A cell covered by an array formula holds no formula of its own."""
    path = laid_out(tmp_path / "book.xlsx")
    wb = openpyxl.load_workbook(path)
    col = JOURNAL_EVENTS.letter("notional")
    ws = wb["Events"]
    ws[f"{col}2"] = openpyxl.worksheet.formula.ArrayFormula(f"{col}2:{col}9", f"={col}2:{col}9*0")
    wb.save(path)
    before = path.read_bytes()
    backend = sb.open_local(path)
    with pytest.raises(sb.LayoutError, match=rf"Events!{col}5 holds a formula"):
        backend.write_ranges([sb.Update(f"'Events'!{col}5:{col}5", [[1.0]])])
    assert path.read_bytes() == before


@pytest.mark.filterwarnings("ignore:Cell A4 is marked as a date")  # openpyxl reading it back
@pytest.mark.parametrize("typed", [2958465.999999999, "9999-12-31T23:59:59-01:00",
                                   "0001-01-01T00:00:00+01:00"])
def test_a_date_past_the_calendar_is_its_rows_error(tmp_path: Path, typed: object,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # each is a date in the cell's own terms whose UTC time (or rounding to the second)
    # leaves 0001-01-01 .. 9999-12-31: that row is refused, the rest computes
    path = laid_out(tmp_path / "book.xlsx")
    wb = openpyxl.load_workbook(path)
    ws = wb["Events"]
    ws[f"{JOURNAL_EVENTS.letter('date')}4"] = typed  # the sample's first funding row
    wb.save(path)
    assert main(["sheets", "sync", "--file", str(path)]) == 0, capsys.readouterr().err
    ws = openpyxl.load_workbook(path)["Events"]
    status = ws[f"{JOURNAL_EVENTS.letter('status')}4"].value
    assert status.startswith("date must be a date from 0001-01-01 to 9999-12-31"), status
    assert isinstance(ws[f"{JOURNAL_EVENTS.letter('equity')}5"].value, float)


def test_a_save_cleans_up_its_own_stale_temp_files_only(tmp_path: Path) -> None:
    # what a killed save (SIGKILL: no cleanup runs) leaves: ".NAME.<8 random>.tmp" beside it
    path = laid_out(tmp_path / "book.xlsx")
    old = os.stat(path).st_mtime - 3_600
    stale = [tmp_path / ".book.xlsx.k2_9xq0a.tmp", tmp_path / ".book.xlsx.abcdefgh.tmp"]
    kept = [tmp_path / ".other.xlsx.abcdefgh.tmp",      # another workbook's
            tmp_path / ".book.xlsx.abcdefgh.tmp.mine",  # not the pattern
            tmp_path / ".book.xlsx.abc.tmp",            # not mkstemp's 8 characters
            tmp_path / "book.xlsx.abcdefgh.tmp"]        # not hidden
    for p in stale + kept:
        p.write_bytes(b"x" * 1000)
        os.utime(p, (old, old))
    running = tmp_path / ".book.xlsx.zzzzzzzz.tmp"  # a save that started after this run did
    running.write_bytes(b"x")
    os.utime(running, (os.stat(path).st_mtime + 3_600,) * 2)
    folder = tmp_path / ".book.xlsx.dirdirdi.tmp"  # only files go
    folder.mkdir()
    os.utime(folder, (old, old))
    sb.sync(sb.open_local(path), "journal")
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in [*kept, running, folder])
