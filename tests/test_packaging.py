"""The distribution: `python -m build` makes a wheel and an sdist without setuptools
warnings, and the wheel installed next to the [excel] extra's packages only (a fresh venv)
runs `leverage --version` and `leverage addin doctor`; a missing extra names itself there."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import test_addin_cli_lite

import leverage

lite_python = test_addin_cli_lite.lite_python  # the fixture: one venv for both test files

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "Could not find a version" in done.stdout + done.stderr:
        pytest.skip("the build backend (setuptools) cannot be installed here (offline?)")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout + done.stderr


def wheel_of(dist: tuple[Path, str]) -> Path:
    return next(dist[0].glob("leverage_toolkit-*-py3-none-any.whl"))


def test_build_makes_wheel_and_sdist_without_warnings(dist: tuple[Path, str]) -> None:
    folder, log = dist
    assert list(folder.glob("leverage_toolkit-*.tar.gz"))
    assert "SetuptoolsDeprecationWarning" not in log
    assert "License classifiers" not in log and "project.license` as a TOML table" not in log
    with zipfile.ZipFile(wheel_of(dist)) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(info).decode()
        entry_points = z.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "License-Expression: MIT" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "leverage/data/tiers_snapshot.json" in names
    assert "leverage = leverage.cli:main" in entry_points


def test_wheel_claims_no_generic_top_level_name(dist: tuple[Path, str]) -> None:
    with zipfile.ZipFile(wheel_of(dist)) as z:
        tops = {n.split("/")[0] for n in z.namelist() if "/" in n}
    assert not tops & {"addin", "templates", "sheets_bridge", "demo", "exchange_bridge"}
    packages = {t for t in tops if not t.endswith((".dist-info", ".data"))}
    assert packages == {"leverage", "leverage_addin", "leverage_sheets", "leverage_templates",
                        "leverage_demo", "leverage_exchange"}


@pytest.fixture(scope="module")
def installed(dist: tuple[Path, str], lite_python: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The `leverage` command of the wheel installed by pip into a folder of its own, run by
    the fresh venv of the Lite test (numpy, pydantic, xlwings: the [excel] extra's
    dependencies), which stays without the toolkit; and the environment to run it in."""
    site = tmp_path_factory.mktemp("wheel-site")
    # this pip, run for the venv's python (--python): the script's first line names that one
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(lite_python), "install",
                           "-q", "--no-deps", "--no-index", "--target", str(site),
                           str(wheel_of(dist))], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("XLWINGS_")}
    env["PYTHONPATH"] = str(site)
    return site / "bin" / "leverage", env


def run(installed: tuple[Path, dict[str, str]], *args: str) -> subprocess.CompletedProcess[str]:
    command, env = installed
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=command.parent)


def test_installed_wheel_runs_version_and_doctor(installed: tuple[Path, dict[str, str]]) -> None:
    done = run(installed, "--version")
    assert (done.returncode, done.stdout) == (0, f"leverage {leverage.__version__}\n")
    done = run(installed, "addin", "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"OK    leverage_addin.udfs lists all {len(leverage.CATALOGUE)} functions" in done.stdout


def test_installed_wheel_names_the_missing_extras(installed: tuple[Path, dict[str, str]]) -> None:
    for command, extra in (("templates", "templates"), ("sheets", "sheets"),
                           ("demo", "sheets")):
        done = run(installed, command, "build")
        assert done.returncode == 2
        assert done.stderr == (f"leverage: error: leverage {command} needs the [{extra}] "
                               f'extra: pip install "leverage-toolkit[{extra}]"\n'), command
    done = run(installed, "addin", "workbook", "--out", "x.xlsm")
    assert done.returncode == 2 and "[templates]" in done.stderr, done.stderr


def test_sdist_carries_the_xlwings_lite_files(dist: tuple[Path, str]) -> None:
    import tarfile

    sdist = next(dist[0].glob("leverage_toolkit-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        for name in ("main.py", "requirements.txt"):
            member = next(m for m in tar.getmembers() if m.name.endswith(f"/lite/{name}"))
            kept = tar.extractfile(member)
            assert kept is not None and kept.read() == (ROOT / "lite" / name).read_bytes(), name
