"""The `leverage` command: every subcommand is registered, and bad input never prints a
traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from leverage.cli import build_parser, main


def test_every_part_registers_its_subcommands() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"liq", "tiers", "addin", "templates", "sheets", "demo"} <= set(sub.choices)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["templates", "build", "--out", "{file}"], "--out must be a folder"),
        (["templates", "render", "--out", "{file}"], "--out must be a folder"),
        (["demo", "--out", "{file}/below"], "Not a directory"),
        (["sheets", "sync", "--file", "{dir}/missing.xlsx"], "does not exist"),
        (["tiers", "kraken:XBT"], "tiers must be a known table name"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    argv = [a.format(file=a_file, dir=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.startswith("leverage: error: ")
