"""``python -m bench.redteam [--quick]``: the red-team counts of docs/RELIABILITY.md, re-run.

Not a test (pytest does not collect ``bench/``) and not a benchmark: a one-off run that
prints the counts the document reports, as Markdown, over the code of the checkout:

* ``corpus``: the hostile-input corpus (``tests/test_hostile_corpus.py``) with
  ``LEVERAGE_HOSTILE_COUNTS`` set: calls through the core and through ``xlwings.server``,
  tracebacks and wrong numbers;
* ``oracle``: isolated liquidation prices of random positions (Binance linear and inverse,
  OKX linear) against an oracle that knows only the definition (equity equals maintenance
  margin) and finds the price by bisection, never the closed forms of ``leverage.core``;
* ``suites``: the fault matrices kept as tests (Google faults, exchange garbage answers,
  exchange deadlines and trickles, bad command lines, broken files, and the package patcher
  with its formula-injection and kept-Excel-parts cases),
  counted case by case from pytest's JUnit report;
* ``kill9``: ``leverage sheets sync --file`` killed with SIGKILL at random moments of a
  sync: the workbook afterwards must open and hold either the values before or after
  the sync, never a mix or a broken zip.

``--quick`` shrinks the oracle and the kills (a smoke run of the script itself).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SUITES = (
    "tests/test_google_faults.py",
    "tests/test_exchange_garbage.py",
    "tests/test_exchange_deadline.py",
    "tests/test_sheets_cli_bad_args.py",
    "tests/test_sheets_mistakes.py",
    "tests/test_local_files.py",
    "tests/test_local_package.py",
)


def corpus() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        counts = Path(tmp) / "counts.json"
        env = {**os.environ, "LEVERAGE_HOSTILE_COUNTS": str(counts)}
        proc = subprocess.run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/test_hostile_corpus.py"], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
        out: dict[str, Any] = json.loads(counts.read_text()) if counts.exists() else {}
    for key in ("tracebacks", "wrong numbers"):  # counted only when they happen
        out.setdefault(key, 0)
    out["pytest"] = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "no output"
    return out


# ------------------------------------------------------------------ oracle
def _bisect(f: Any, lo: float, hi: float) -> float:
    """A root of ``f`` in [lo, hi] where f changes sign (nan when it does not)."""
    flo, fhi = f(lo), f(hi)
    if flo == 0:
        return lo
    if fhi == 0:
        return hi
    if (flo > 0) == (fhi > 0):
        return math.nan
    for _ in range(400):
        mid = lo + (hi - lo) / 2 if hi / lo < 4 else math.sqrt(lo * hi)
        if mid in (lo, hi):
            break
        fm = f(mid)
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return lo + (hi - lo) / 2


def _oracle(exchange: str, contract: str, s: int, q: float, e: float, m: float, mmr: float,
            amt: float, fee: float) -> float:
    """Where equity meets maintenance margin, found by bisection over the price."""
    if contract == "linear":
        rate = mmr + (fee if exchange == "okx" else 0.0)
        a = 0.0 if exchange == "okx" else amt

        def gap(p: float) -> float:  # equity - maintenance, in quote
            return m + s * q * (p - e) - (q * p * rate - a)
    else:
        def gap(p: float) -> float:  # in coin; q is the contracts' USD value
            return m + s * q * (1 / e - 1 / p) - (q / p * mmr - amt)
    # the position is healthy at entry; liquidation lies on the losing side of it
    return _bisect(gap, 1e-12 * e, e) if s > 0 else _bisect(gap, e, 1e12 * e)


def oracle(rows: int, seed: int = 20) -> dict[str, Any]:
    import leverage as lv
    from leverage.errors import LeverageError

    rng = random.Random(seed)
    checked = wrong = refused = none = 0
    worst: tuple[float, Any] = (0.0, None)
    kinds = [("binance", "linear"), ("binance", "inverse"), ("okx", "linear")]
    for i in range(rows):
        exchange, contract = kinds[i % len(kinds)]
        s = rng.choice((1, -1))
        e = 10 ** rng.uniform(-5, 5.3)
        q = 10 ** rng.uniform(-3, 6)
        lev = 10 ** rng.uniform(0, 2.1)
        mmr = rng.choice((0.0, 0.004, 0.005, 0.01, 0.025, rng.uniform(0, 0.1)))
        fee = rng.choice((0.0, 0.0005)) if exchange == "okx" else 0.0
        if contract == "linear":
            m = q * e / lev
            amt = 0.0 if exchange == "okx" else rng.choice((0.0, q * e * mmr * rng.random() / 2))
            if m <= q * e * (mmr + fee) - amt:  # would not open
                continue
        else:
            m = q / e / lev
            amt = rng.choice((0.0, q / e * mmr * rng.random() / 2))
            if m <= q / e * mmr - amt:
                continue
        want = _oracle(exchange, contract, s, q, e, m, mmr, amt, fee)
        try:
            got = float(lv.liq_price("long" if s > 0 else "short", q, e, m, mmr, amt, contract,
                                     exchange=exchange, fee_rate=fee))
        except LeverageError:
            refused += 1
            continue
        checked += 1
        if math.isnan(want) or math.isnan(got):
            none += 1
            # blank means "cannot be liquidated": the oracle must agree, unless its root
            # sits at the edge of float room the library reports as none
            if math.isnan(want) != math.isnan(got) and not (
                    math.isnan(got) and want <= 1e-9 * e):
                wrong += 1
            continue
        rel = abs(got - want) / max(abs(want), 1e-300)
        if rel > 1e-7:
            wrong += 1
        if rel > worst[0]:
            worst = (rel, (exchange, contract, s, q, e, m, mmr, amt, fee, got, want))
    return {"rows checked": checked, "wrong numbers": wrong, "refused": refused,
            "no liquidation (blank)": none, "worst relative gap": f"{worst[0]:.2e}"}


# ------------------------------------------------------------------ fault suites
def suites(files: tuple[str, ...] = SUITES) -> dict[str, dict[str, Any]]:
    """Each file's cases, failures, errors and skips, and the same per test function (a
    parametrized matrix is one function: its cases are the fault runs)."""
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            report = Path(tmp) / "junit.xml"
            subprocess.run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            f"--junitxml={report}", f], cwd=ROOT, capture_output=True,
                           check=False)
            counts: dict[str, Any] = {"cases": 0, "failed": 0, "errors": 0, "skipped": 0}
            by_test: dict[str, list[int]] = {}
            if report.exists():
                for case in ET.parse(report).getroot().iter("testcase"):
                    name = case.get("name", "?").split("[")[0]
                    bad = case.find("failure") is not None or case.find("error") is not None
                    counts["cases"] += 1
                    counts["failed"] += case.find("failure") is not None
                    counts["errors"] += case.find("error") is not None
                    counts["skipped"] += case.find("skipped") is not None
                    tally = by_test.setdefault(name, [0, 0])
                    tally[0] += 1
                    tally[1] += bad
            counts["by test (cases, failed)"] = by_test
            out[f] = counts
    return out


# ------------------------------------------------------------------ kill -9
def _members(path: Path) -> dict[str, bytes] | None:
    """The workbook's parts, or None when it is not a whole zip openpyxl can load."""
    import openpyxl

    try:
        with zipfile.ZipFile(path) as z:
            if z.testzip() is not None:
                return None
            parts = {n: z.read(n) for n in z.namelist()}
        openpyxl.load_workbook(path, read_only=True).close()
    except Exception:  # any failure to open is what is counted
        return None
    return parts


def kill9(runs: int, events: int = 1000, seed: int = 9) -> dict[str, Any]:
    import leverage_sheets as sb
    import leverage_templates as templates

    rng = random.Random(seed)
    leverage = str(Path(PYTHON).with_name("leverage"))
    half = before_kept = after_kept = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.xlsx"
        positions, sample, rules = templates.sample_journal()
        many = [dict(sample[i % len(sample)], reason=f"row {i}") for i in range(events)]
        for i, ev in enumerate(many):  # spread the dates so the rows replay in order
            ev["date"] = f"2024-{1 + i * 12 // events:02d}-{1 + i % 28:02d} {i % 24:02d}:00"
        book = sb.open_local(base)
        sb.init(book, "journal")
        _write_inputs(base, positions, many, rules)
        clean = Path(tmp) / "clean.xlsx"
        shutil.copy(base, clean)
        start = time.perf_counter()
        subprocess.run([leverage, "sheets", "sync", "--file", str(clean)], check=True,
                       capture_output=True)
        took = time.perf_counter() - start
        want_before, want_after = _members(base), _members(clean)
        assert want_before and want_after
        for k in range(runs):
            target = Path(tmp) / f"k{k}.xlsx"
            shutil.copy(base, target)
            proc = subprocess.Popen([leverage, "sheets", "sync", "--file", str(target)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.5, 1.5) * took)  # before, during and after the save
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            got = _members(target)
            if got == want_before:
                before_kept += 1
            elif got is not None and _same_values(got, want_after):
                after_kept += 1
            else:
                half += 1
    return {"kills": runs, "file as before": before_kept, "file as after a clean sync": after_kept,
            "half files": half, "sync time (s)": round(took, 2), "events": events}


def _same_values(a: dict[str, bytes], b: dict[str, bytes]) -> bool:
    """The same parts, sheet by sheet (zip timestamps and member order aside)."""
    return a.keys() == b.keys() and all(a[n] == b[n] for n in a)


def _write_inputs(path: Path, positions: list[dict[str, Any]], events: list[dict[str, Any]],
                  rules: dict[str, Any]) -> None:
    """Type the journal's inputs into a laid-out workbook, as a trader would (openpyxl)."""
    import openpyxl

    from leverage import layout as L

    wb = openpyxl.load_workbook(path)
    for sheet, rows in ((L.JOURNAL_POSITIONS, positions), (L.JOURNAL_EVENTS, events)):
        ws = wb[sheet.title]
        inputs = [(i, c.key) for i, c in enumerate(sheet.columns, start=1) if c.role == "input"]
        for r, row in enumerate(rows, start=L.FIRST_DATA_ROW):
            for col, key in inputs:
                if row.get(key) is not None:
                    ws.cell(row=r, column=col, value=row[key])
    ws = wb[L.JOURNAL_RULES.title]
    for key, value in rules.items():
        ws.cell(row=L.rule_row(key), column=2, value=value)
    wb.save(path)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    parts = [a for a in argv if not a.startswith("--")] or ["corpus", "oracle", "suites", "kill9"]
    print(f"# Red-team counts, {time.strftime('%Y-%m-%d')}\n")
    print(f"Command: `python -m bench.redteam {' '.join(argv)}`".rstrip() + "\n")
    for part in parts:
        started = time.perf_counter()
        if part == "corpus":
            result: Any = corpus()
        elif part == "oracle":
            result = oracle(600 if quick else 30_000)
        elif part == "suites":
            result = suites()
        elif part == "kill9":
            result = kill9(3 if quick else 60, 300 if quick else 1000)
        else:
            print(f"unknown part {part!r}: corpus, oracle, suites or kill9", file=sys.stderr)
            return 2
        print(f"## {part} ({time.perf_counter() - started:.0f} s)\n")
        print("```\n" + json.dumps(result, indent=1) + "\n```\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
