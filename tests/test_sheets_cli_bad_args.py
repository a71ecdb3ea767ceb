"""Every ``leverage sheets`` and ``leverage templates`` subcommand given bad arguments: a
non-zero exit and one clear line on stderr, never a traceback. No network: each case fails
before any request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from leverage.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _cases(tmp: Path, journal: str = "journal.xlsx") -> dict[str, list[str]]:
    """Name -> arguments; ``tmp/a-file.txt`` is a regular file (even root cannot make a
    folder under a file, which permissions alone would not guarantee)."""
    a_file = tmp / "a-file.txt"
    book = str(tmp / "book.xlsx")
    key = ["--key", "1abcDEF", "--credentials", str(tmp / "missing.json")]
    out: dict[str, list[str]] = {
        "templates alone": ["templates"],
        "build without --out": ["templates", "build"],
        "build --out under a file": ["templates", "build", "--out", f"{a_file}/sub"],
        "build --out a file": ["templates", "build", "--out", str(a_file)],
        "build --out in /proc": ["templates", "build", "--out", "/proc/leverage-out"],
        "build --formulas bogus": ["templates", "build", "--out", str(tmp), "--formulas", "x"],
        "render --out under a file": ["templates", "render", "--out", f"{a_file}/sub"],
        "render --out in /proc": ["templates", "render", "--out", "/proc/leverage-out"],
        "sheets alone": ["sheets"],
        "init without target": ["sheets", "init", "--template", "journal"],
        "init both targets": ["sheets", "init", "--key", "1abc", "--file", book,
                              "--template", "journal"],
        "init bad template": ["sheets", "init", "--file", book, "--template", "ledger"],
        "init file under a file": ["sheets", "init", "--file", f"{a_file}/b.xlsx",
                                   "--template", "journal"],
        "init file in /proc": ["sheets", "init", "--file", "/proc/b.xlsx", "--template",
                               "journal"],
        "init file not xlsx": ["sheets", "init", "--file", str(a_file), "--template", "journal"],
        "init --credentials with --file": ["sheets", "init", "--file", book, "--credentials",
                                           "x.json", "--template", "journal"],
        "init missing key file": ["sheets", "init", *key, "--template", "journal"],
        "sync bad key": ["sheets", "sync", "--key", "not a key!", "--credentials", "x"],
        "sync bad key url": ["sheets", "sync", "--key", "https://example.com/nope"],
        "sync missing workbook": ["sheets", "sync", "--file", book],
        "sync --max-runs without --watch": ["sheets", "sync", "--file", book, "--max-runs", "2"],
        "sync --max-runs 0": ["sheets", "sync", "--file", book, "--watch", "1", "--max-runs",
                              "0"],
        "sync --max-runs 1e9": ["sheets", "sync", "--file", book, "--watch", "1",
                                "--max-runs", "1e9"],
        "sync --template bogus": ["sheets", "sync", "--file", book, "--template", "x"],
    }
    for bad in ("1e308", "-1", "0", "nan", "inf", "-inf", "1e-400", "abc", ""):
        # a workbook that syncs: the old --watch 1e308 failed only when it came to sleep
        out[f"sync --watch {bad!r}"] = ["sheets", "sync", "--file", journal, "--watch", bad,
                                        "--max-runs", "2"]
        out[f"sync --deadline {bad!r}"] = ["sheets", "sync", *key, "--deadline", bad]
        out[f"init --deadline {bad!r}"] = ["sheets", "init", *key, "--template", "journal",
                                           "--deadline", bad]
    return out


NAMES = list(_cases(Path("tmp")))


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("book") / "journal.xlsx"
    assert main(["sheets", "init", "--file", str(path), "--template", "journal"]) == 0
    return str(path)


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_command_line_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], journal: str, name: str
) -> None:
    (tmp_path / "a-file.txt").write_text("not a folder")
    before = Path(journal).read_bytes()
    try:
        code = main(_cases(tmp_path, journal)[name])
    except SystemExit as exc:  # argparse: the usage, then one "error:" line
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "error: " in err.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file.txt"]  # nothing half-made
    assert Path(journal).read_bytes() == before


def test_build_into_an_unwritable_place_prints_nothing_else(tmp_path: Path) -> None:
    """In a real process: no 'Exception ignored' noise from half-built workbooks either."""
    blocker = tmp_path / "a-file.txt"
    blocker.write_text("x")
    run = subprocess.run(
        [sys.executable, "-m", "leverage.cli", "templates", "build", "--out", f"{blocker}/sub"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "--out must be a folder you can write to" in run.stderr
    assert list(tmp_path.iterdir()) == [blocker]
