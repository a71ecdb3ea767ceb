"""Shared test set-up. Keep it generic: fixtures of one area live in that area's test files;
the loopback Google Sheets server several areas use (``fake``) lives here."""

import os
import sys
from typing import Any

import pytest

# formulas/schedula print progress bars otherwise.
os.environ.setdefault("TQDM_DISABLE", "1")

# xlwings picks its decorators when first imported: with XLWINGS_ON_SERVER=true they are the
# Office.js ones (xlwings Lite/Server), which tests can drive without Excel; otherwise they
# are silent no-ops on Linux. xlwings.server needs a licence key: the noncommercial one,
# for tests only (library code never sets it). Set here, before any test module imports
# xlwings, so the order tests are collected in does not matter.
os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

# xlwings' Office.js calls run every argument through js_to_none, which tries
# `from pyodide.ffi import JsNull` each time; off Pyodide every failed import searches all of
# sys.path again (half a call's time in the hostile-cell tests). A None in sys.modules makes
# the same import fail at once, as it fails anyway outside Pyodide.
sys.modules.setdefault("pyodide", None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fake() -> Any:
    """The loopback Google Sheets server (tests/fake_sheets.py) of one test module; it must end
    with no request it failed to serve. The exchange tests name their own ``fake`` (a
    recorded exchange), which overrides this one in their files."""
    from fake_sheets import FakeSheets

    with FakeSheets() as server:
        yield server
        assert not server.server_errors, server.server_errors[0]


class _FolderNamesAreNotPackages:
    """The repository's folders (addin/, sheets_bridge/, ...) install as leverage_addin,
    leverage_sheets, ...; pytest puts the repository on sys.path, where the folder names would
    import too, as second copies of the same modules (a monkeypatch on one misses the other).
    Refuse them here, as an installed wheel would."""

    FOLDERS = frozenset({"addin", "sheets_bridge", "templates", "demo", "exchange_bridge"})

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in self.FOLDERS:
            raise ModuleNotFoundError(
                f"{name!r} is a folder of the repository; import its installed name "
                "(leverage_addin, leverage_sheets, leverage_templates, leverage_demo, "
                "leverage_exchange)", name=name
            )


sys.meta_path.insert(0, _FolderNamesAreNotPackages())


def _hypothesis_profile() -> None:
    """No example database, the same examples every run, and nothing timed: no per-example
    deadline and no "too slow" health check, so a busy machine cannot fail a property that
    holds. Hypothesis's own caches go to a folder of this process's, not to a .hypothesis/ in
    the repository that every xdist worker would write at once."""
    import atexit
    import shutil
    import tempfile

    from hypothesis import HealthCheck, settings
    from hypothesis.configuration import set_hypothesis_home_dir

    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        home = tempfile.mkdtemp(prefix="hypothesis-")
        atexit.register(shutil.rmtree, home, True)
        set_hypothesis_home_dir(home)

    settings.register_profile("leverage-tests", database=None, deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("leverage-tests")


_hypothesis_profile()


# -- pytest-xdist (`make test` runs `-n auto --dist loadfile`) ---------------------------------
# A file's tests stay on one worker (its module-scoped fixtures are built once), files that
# share a session fixture go together, and the costliest files start first so that no worker
# is left with a long file at the end (`pytest --durations=0` gives the costs); a file missing
# here just starts after these.
SAME_WORKER = {"tests/test_packaging.py": "tests/test_addin_cli_lite.py"}  # the Lite venv
# Tests that alone outweigh most files (the ``formulas`` engine recalculating a workbook): each
# is a unit of its own, so the rest of its file can run on the other worker meanwhile.
_T = "tests/test_templates.py::test_"
ALONE = {
    f"{_T}udf_journal_matches_core_with_addin_functions",
    f"{_T}udf_rebalance_matches_core_with_addin_functions",
}
COSTLIEST_FIRST = [  # seconds of one worker, `-n 3` on the 2 cores (load 1-2), 2026-12-07
    "tests/test_templates.py",  # 69
    "tests/test_sheets_bridge.py",  # 42
    "tests/test_google_faults.py",  # 30, mostly waiting on held requests and deadlines
    "tests/test_hostile_corpus.py",  # 28
    "tests/test_rebalance_guardrails.py",  # 22
    "tests/test_sheets_init_memory.py",  # 21
    "tests/test_fast_path.py",  # 20
    "tests/test_demo.py",  # 20
    "tests/test_exchange_import.py",  # 18
    "tests/test_exchange_v5.py",  # 17
    "tests/test_addin.py",  # 16
    "tests/test_journal_workbook.py",  # 16
    "tests/test_rebalance_totals.py",  # 15
    "tests/test_exchange_garbage.py",  # 14
    "tests/test_addin_cli_workbook.py",  # 14
    f"{_T}udf_journal_matches_core_with_addin_functions",  # 14
    "tests/test_local_package.py",  # 13
    "tests/test_exchange_state.py",  # 13
    "tests/test_watch.py",  # 12
    "tests/test_print_look.py",  # 11
    "tests/test_addin_cli_lite.py",  # 9, with tests/test_packaging.py 8
]


def _scope(nodeid: str) -> str:
    test = nodeid.split("[", 1)[0]
    if test in ALONE:
        return test
    path = nodeid.split("::", 1)[0]
    return SAME_WORKER.get(path, path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(COSTLIEST_FIRST)}
    # stable: within a file the order is the file's own (some checks run last on purpose)
    items.sort(key=lambda item: rank.get(_scope(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ByFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

        def schedule(self) -> None:
            self.config.option.loadscopereorder = False  # the order above, not by test count
            super().schedule()

    return ByFile(config, log)
