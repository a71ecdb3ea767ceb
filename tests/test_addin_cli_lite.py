"""`leverage addin lite`: the main.py and requirements.txt it writes work in a Python that
has only xlwings, numpy and pydantic (what xlwings Lite installs), not this toolkit.

A fresh virtual environment is made for the test; the functions are driven there the way
xlwings Lite drives them (xlwings.server.custom_functions_meta / custom_functions_call).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from importlib.metadata import Distribution, distribution
from pathlib import Path
from typing import Any

import pytest
from test_addin import CASES, call, cell

import leverage as lv
from leverage.cli import main
from leverage_addin.lite import LITE_REQUIREMENTS

DRIVER = r'''
import asyncio, importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
assert importlib.util.find_spec("leverage") is None, "the toolkit must not be installed here"
assert importlib.util.find_spec("leverage_addin") is None, "the toolkit must not be installed here"
import xlwings, xlwings.server as xs
import main
cases = json.loads(sys.argv[2])
meta = xs.custom_functions_meta(main)
out = {"listed": sorted(f["name"] for f in meta["functions"]), "results": {}}
for name, args in cases.items():
    payload = {"client": "Office.js", "version": xlwings.__version__, "func_name": name,
               "args": [[[a]] for a in args], "caller_address": "[Book1.xlsx]Sheet1!B2",
               "session_id": "t", "culture_info_name": "en-US", "date_format": "m/d/yyyy",
               "runtime": "1.4"}
    out["results"][name] = asyncio.run(xs.custom_functions_call(payload, main))
print(json.dumps(out))
'''


def _needed(names: list[str]) -> list[Distribution]:
    """The installed distributions ``names`` and everything they need on this platform."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, Distribution] = {}
    todo = list(names)
    while todo:
        dist = distribution(todo.pop())
        key = canonicalize_name(dist.metadata["Name"])
        if key in found:
            continue
        found[key] = dist
        for spec in dist.requires or ():
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def fresh_venv(where: Path, names: list[str]) -> Path:
    """A new virtual environment at ``where`` with only the distributions ``names`` and what
    they need, as this Python has them installed (the same versions pip would install, linked:
    no download, no build, no pip); its python."""
    venv.create(where, with_pip=False)
    python = where / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path("
                                "'purelib'))"], capture_output=True, text=True, check=True
                               ).stdout.strip())
    for dist in _needed(names):
        tops = {Path(f).parts[0] for f in dist.files or ()} - {"..", "__pycache__"}
        for top in tops:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    return python


_LITE_VENV: list[Path] = []  # made once a session; test_packaging uses it too


@pytest.fixture(scope="session")
def lite_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only xlwings, numpy and pydantic (the versions this suite runs)."""
    if not _LITE_VENV:
        _LITE_VENV.append(fresh_venv(tmp_path_factory.mktemp("lite-venv"),
                                     list(LITE_REQUIREMENTS)))
    return _LITE_VENV[0]


def test_lite_files_compute_every_function_without_the_toolkit(
    lite_python: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["addin", "lite", "--out", str(tmp_path / "lite")]) == 0
    capsys.readouterr()
    lite = tmp_path / "lite"
    assert (lite / "requirements.txt").read_text().split() == ["xlwings", "numpy", "pydantic"]
    env = {**os.environ, "XLWINGS_ON_SERVER": "true", "XLWINGS_LICENSE_KEY": "noncommercial",
           "TMPDIR": str(tmp_path), "PYTHONPATH": ""}
    done = subprocess.run([lite_python, "-I", "-c", DRIVER, str(lite), json.dumps(CASES)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["listed"] == sorted(lv.CATALOGUE)
    assert set(CASES) == set(lv.CATALOGUE)
    for name, args in CASES.items():  # the same answers as the installed toolkit gives
        want: Any = call(name, *map(cell, args))
        assert out["results"][name] == json.loads(json.dumps(want)), name
    assert out["results"]["EFFECTIVE_LEVERAGE"] == [[10.0]]
    assert out["results"]["LIQ_PRICE"] == [[lv.liq_price("long", 1, 20_000, 400)]]
    assert list(tmp_path.glob("leverage-toolkit-*/leverage/data/tiers_snapshot.json"))


def test_lite_main_is_the_same_for_the_same_sources(tmp_path: Path) -> None:
    from leverage_addin.lite import lite_main

    assert lite_main("1") == lite_main("1")
    compile(lite_main("1"), "main.py", "exec")
