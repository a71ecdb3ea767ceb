"""The formula catalogue (docs/FORMULAS.md) as Excel functions, through xlwings.

* :mod:`leverage_addin.udfs`: the Excel functions (``=LIQ_PRICE(...)`` and the rest of the
  catalogue); point xlwings' ``UDF Modules`` setting at ``leverage_addin.udfs``, or import it
  in xlwings Lite's main.py.
* :mod:`leverage_addin.bridge`: what the functions share: reading cells and ranges, calling
  the core, and turning bad rows into per-cell errors in the form the running Excel shows best.
* :mod:`leverage_addin.cli`: ``leverage addin ...``, the set-up files for each kind of Excel.

This package imports nothing heavy: xlwings and the core load with :mod:`leverage_addin.udfs`.
"""
