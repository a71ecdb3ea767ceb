"""The `leverage` command's own behaviour that set-up relies on: `--version`, a subcommand
whose extra is not installed names the extra, and a closed pipe ends the output quietly."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import leverage
from leverage import cli


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"leverage {leverage.__version__}\n"


def test_extras_come_from_the_installed_metadata() -> None:
    assert cli.extras_providing("xlwings") == ["excel"]
    assert cli.extras_providing("google.auth") == ["sheets"]
    assert cli.extras_providing("openpyxl") == ["sheets", "templates"]
    assert cli.install_hint("openpyxl", "templates") == (
        'needs the [templates] extra: pip install "leverage-toolkit[templates]"')
    assert cli.install_hint("openpyxl", "demo").endswith('"leverage-toolkit[sheets]"')
    assert cli.install_hint("left_pad") == (
        "the Python package 'left_pad' is missing: pip install left_pad")


@pytest.fixture
def templates_without_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `templates` entry point as it loads when openpyxl is not installed."""
    (tmp_path / "tpl_without_openpyxl.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'openpyxl'\", name='openpyxl')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = cli.entry_points

    def entry_points(group: str) -> list[EntryPoint]:
        eps = [ep for ep in real(group=group) if ep.name != "templates"]
        return [*eps, EntryPoint("templates", "tpl_without_openpyxl:register", group)]

    monkeypatch.setattr(cli, "entry_points", entry_points)


@pytest.mark.usefixtures("templates_without_extra")
@pytest.mark.parametrize("argv", [["templates"], ["templates", "build", "--out", "x"]])
def test_a_missing_extra_names_itself(capsys: pytest.CaptureFixture, argv: list[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == ('leverage: error: leverage templates needs the [templates] extra: '
                   'pip install "leverage-toolkit[templates]"\n')


@pytest.mark.usefixtures("templates_without_extra")
def test_help_lists_the_missing_extra(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert 'templates (not installed: needs the [templates] extra' in out
    assert cli.main(["tiers"]) == 0  # the other commands still work


def test_a_module_missing_at_run_time_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # `leverage addin functions` with the addin registered but xlwings absent
    monkeypatch.setitem(sys.modules, "xlwings", None)
    monkeypatch.delitem(sys.modules, "leverage_addin.udfs", raising=False)
    # `from . import udfs` looks at the package's attribute first
    monkeypatch.delattr("leverage_addin.udfs", raising=False)
    assert cli.main(["addin", "functions"]) == 2
    assert capsys.readouterr().err == ('leverage: error: leverage addin needs the [excel] '
                                       'extra: pip install "leverage-toolkit[excel]"\n')


def test_a_closed_pipe_is_no_error() -> None:
    # like `leverage addin functions | head -0`: the reader is gone before the first write
    proc = subprocess.Popen([sys.executable, "-c", "from leverage.cli import main; "
                             "raise SystemExit(main(['addin', 'functions']))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert err == ""


def test_a_command_whose_extra_brings_the_missing_one_names_its_own() -> None:
    # [exchange] installs ccxt and [sheets]: asking for [sheets] first, then [exchange],
    # makes the trader install twice
    for module in ("gspread", "openpyxl", "ccxt"):
        assert cli.install_hint(module, "exchange") == (
            'needs the [exchange] extra: pip install "leverage-toolkit[exchange]"'), module


@pytest.fixture
def exchange_without_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `exchange` entry point as it loads with only [excel] installed (no gspread)."""
    (tmp_path / "ex_without_sheets.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'gspread'\", name='gspread')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = cli.entry_points

    def entry_points(group: str) -> list[EntryPoint]:
        eps = [ep for ep in real(group=group) if ep.name != "exchange"]
        return [*eps, EntryPoint("exchange", "ex_without_sheets:register", group)]

    monkeypatch.setattr(cli, "entry_points", entry_points)


@pytest.mark.usefixtures("exchange_without_extra")
def test_exchange_import_names_everything_missing_at_once(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["exchange", "import", "--since", "2024-01-01", "--file", "j.xlsx"]) == 2
    assert capsys.readouterr().err == ('leverage: error: leverage exchange needs the [exchange] '
                                       'extra: pip install "leverage-toolkit[exchange]"\n')


def test_exchange_without_ccxt_says_so_before_asking_for_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    pytest.importorskip("leverage_exchange")
    monkeypatch.setitem(sys.modules, "ccxt", None)  # [sheets] installed, ccxt not
    for name in ("LEVERAGE_EXCHANGE_KEY", "LEVERAGE_EXCHANGE_SECRET",
                 "LEVERAGE_EXCHANGE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    for argv in (["exchange", "import", "--since", "2024-01-01", "--file",
                  str(tmp_path / "j.xlsx")], ["exchange", "reconcile"],
                 ["tiers", "fetch", "--exchange", "binanceusdm"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "[exchange]" in err and "API key" not in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "unwanted"), [
    (["demo", "--help"], "``"),
    (["tiers", "--help"], "(default: None)"),
    (["sheets", "init", "--help"], "--watch"),
    # the Sheets part of the deadline is import's alone
    (["tiers", "--help"], "Sheets part"),
    (["exchange", "reconcile", "--help"], "Sheets part"),
    (["watch", "--help"], "for import"),
])
def test_help_texts_say_only_what_applies(capsys: pytest.CaptureFixture, argv: list[str],
                                          unwanted: str) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert unwanted not in out, out
