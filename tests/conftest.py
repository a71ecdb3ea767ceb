"""Shared test set-up. Keep it generic: fixtures of one area live in that area's test files."""

import os

# formulas/schedula print progress bars otherwise.
os.environ.setdefault("TQDM_DISABLE", "1")

# xlwings picks its decorators when first imported: with XLWINGS_ON_SERVER=true they are the
# Office.js ones (xlwings Lite/Server), which tests can drive without Excel; otherwise they
# are silent no-ops on Linux. xlwings.server needs a licence key: the noncommercial one,
# for tests only (library code never sets it). Set here, before any test module imports
# xlwings, so the order tests are collected in does not matter.
os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")
