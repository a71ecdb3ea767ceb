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
