"""lite/: the xlwings Lite files kept in the repository (and the sdist) for Excel on Mac or
the web without Python are what `leverage addin lite` writes from these sources, and the
README gives main.py's real size. `make lite` writes them again."""

from __future__ import annotations

import re
from pathlib import Path

import leverage as lv
from leverage.cli import main, package_version
from leverage_addin.lite import lite_main, lite_main_from_wheel, lite_requirements

ROOT = Path(__file__).resolve().parent.parent
LITE = ROOT / "lite"
STALE = "lite/{} is not what `leverage addin lite` writes from these sources: run `make lite`"


def test_kept_files_are_what_the_command_writes() -> None:
    assert (LITE / "requirements.txt").read_text(encoding="utf-8") == lite_requirements(), \
        STALE.format("requirements.txt")
    # compared as text, not printed: main.py is a long base64 block
    assert (LITE / "main.py").read_text(encoding="utf-8") == lite_main(package_version()), \
        STALE.format("main.py")


def test_the_command_writes_those_files(tmp_path: Path) -> None:
    assert main(["addin", "lite", "--out", str(tmp_path)]) == 0
    for name in ("main.py", "requirements.txt"):
        assert (tmp_path / name).read_bytes() == (LITE / name).read_bytes(), STALE.format(name)


def test_readme_gives_main_py_real_size() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stated = re.findall(r"`lite/main\.py` \(about (\d+) KB\)", readme)
    assert len(stated) == 1, "the README states main.py's size once, as `lite/main.py` (about N KB)"
    real_kb = (LITE / "main.py").stat().st_size / 1024
    assert abs(int(stated[0]) - real_kb) <= max(5, 0.1 * real_kb), (stated[0], real_kb)


def test_wheel_main_counts_the_functions() -> None:
    text = lite_main_from_wheel()
    assert f"and {len(lv.CATALOGUE) - 2} more." in text
    compile(text, "main.py", "exec")
