"""`leverage addin doctor` reads a workbook's xlwings.conf sheet as xlwings does (keys in any
case, down to the first blank), checks the .xlsm's content type, and checks an xlwings Lite
folder (main.py, and requirements.txt naming exactly what Pyodide must load)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from leverage.cli import main
from leverage_addin import doctor
from leverage_addin.cli import UDF_MODULE
from leverage_addin.workbook import XLSM_MAIN

XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"


@pytest.fixture(scope="module")
def xlsm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("doctor") / "Leverage.xlsm"
    assert main(["addin", "workbook", "--out", str(out), "--blank"]) == 0
    return out


def _rewritten(src: Path, dst: Path, old: bytes, new: bytes, parts: str) -> Path:
    """A copy of ``src`` with ``old`` replaced by ``new`` in the parts whose name starts with
    ``parts`` (the test fails if nothing was replaced)."""
    replaced = 0
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename.startswith(parts) and old in data:
                replaced += data.count(old)
                data = data.replace(old, new)
            out.writestr(info, data)
    assert replaced, f"{old!r} not found in {parts}"
    return dst


def _doctor(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(["addin", "doctor", *args])
    return code, capsys.readouterr().out


def test_conf_keys_are_read_in_any_case(xlsm: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    upper = _rewritten(xlsm, tmp_path / "Upper.xlsm", b">UDF Modules<", b">UDF MODULES<", "xl/")
    assert "UDF MODULES" in doctor.conf_sheet_rows(upper)
    code, out = _doctor(capsys, "--workbook", str(upper))
    assert code == 0, out
    assert f"OK    xlwings.conf sheet: UDF Modules = {UDF_MODULE}" in out


def test_a_key_repeated_in_another_case_is_named() -> None:
    config, twice = doctor.xlwings_keys({"UDF Modules": "a", "udf modules": "b"})
    assert config == {"UDF MODULES": "a"} and twice == ["udf modules"]


def test_a_macro_workbook_with_the_xlsx_content_type_is_named(
    xlsm: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out = _doctor(capsys, "--workbook", str(xlsm))
    assert code == 0 and "content type" not in out, out
    bad = _rewritten(xlsm, tmp_path / "Mislabelled.xlsm", XLSM_MAIN.encode(), XLSX_MAIN.encode(),
                     "[Content_Types].xml")
    code, out = _doctor(capsys, "--workbook", str(bad))
    assert code == 1
    assert f"FIX   Mislabelled.xlsm: its workbook part has the content type '{XLSX_MAIN}'" in out


@pytest.fixture
def lite(tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    folder = tmp_path / "lite"
    assert main(["addin", "lite", "--out", str(folder)]) == 0
    capsys.readouterr()
    return folder


def test_a_lite_folder_as_written_passes(lite: Path, capsys: pytest.CaptureFixture) -> None:
    code, out = _doctor(capsys, "--lite", str(lite))
    assert code == 0, out
    assert "OK    lite: main.py registers the functions (carries the toolkit)" in out
    assert "OK    lite: requirements.txt lists xlwings, numpy, pydantic" in out


def test_a_lite_folder_from_a_wheel_url_passes(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "wheel"
    url = "https://example.invalid/leverage_toolkit-0.1.0-py3-none-any.whl"
    assert main(["addin", "lite", "--out", str(folder), "--wheel-url", url]) == 0
    code, out = _doctor(capsys, "--lite", str(folder))
    assert code == 0, out
    assert "imports them from the wheel" in out
    (folder / "requirements.txt").write_text("xlwings\nnumpy\npydantic\n")  # the URL dropped
    code, out = _doctor(capsys, "--lite", str(folder))
    assert code == 1 and "lacks this toolkit's wheel URL" in out


@pytest.mark.parametrize(("requirements", "said"), [
    ("xlwings\npydantic\n", "requirements.txt lacks numpy"),
    ("xlwings\nnumpy\npydantic\nleverage-toolkit\n", "also lists leverage-toolkit"),
    ("xlwings\nnumpy\npydantic\nhttps://example.invalid/x.whl\n",
     "also lists https://example.invalid/x.whl"),
])
def test_a_lite_requirements_file_that_is_not_exact_is_named(
    lite: Path, capsys: pytest.CaptureFixture, requirements: str, said: str
) -> None:
    (lite / "requirements.txt").write_text(requirements)
    code, out = _doctor(capsys, "--lite", str(lite))
    assert code == 1 and said in out, out


def test_pins_comments_and_spelling_do_not_matter(lite: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    (lite / "requirements.txt").write_text("# for Lite\nXLWings==0.33.0\n\nnumpy  # built in\n"
                                           "Pydantic>=2\n")
    code, out = _doctor(capsys, "--lite", str(lite))
    assert code == 0, out


def test_a_lite_folder_without_main_py_is_named(lite: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    (lite / "main.py").unlink()
    code, out = _doctor(capsys, "--lite", str(lite))
    assert code == 1 and "FIX   lite: main.py is missing" in out
    code, out = _doctor(capsys, "--lite", str(tmp_path / "nowhere"))
    assert code == 1 and "is not a folder" in out
