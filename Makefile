# Two set-up commands: `make demo` and `make test`. Both create .venv and install the project.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TQDM_DISABLE := 1
export MPLBACKEND := Agg

.PHONY: demo test bench lint render libreoffice desktop bytecode dist clean

# --no-compile: pip compiles the installed packages one file at a time (half of the install's
# time); `make bytecode` does it on every core, beside the other set-up steps of `make test`.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	touch $(STAMP)

# (dbus/ is left out: `make desktop` may be installing it meanwhile)
bytecode: $(STAMP)
	@$(BIN)/python -W ignore -m compileall -q -j 0 -x '/dbus/' \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null

# Headless LibreOffice is the second spreadsheet engine the workbook tests use.
# Installed from Debian's packages when missing (CI runs as root); without root the
# tests that need it are skipped with a reason.
libreoffice:
	@if command -v soffice >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing headless LibreOffice and poppler (Debian packages)..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends libreoffice-calc-nogui poppler-utils >/dev/null; \
	else echo "note: LibreOffice not installed and no root: LibreOffice tests will be skipped"; fi

# dbus-python with its GLib main loop: what apprise's dbus:// (desktop:// on Linux) needs, so
# tests/test_watch_channels.py delivers the simulated day to a notification server on a private
# session bus. No wheel exists: pip builds it (meson, from PyPI) against Debian's libdbus and
# GLib headers, installed when missing (CI runs as root); without root the test is skipped
# with a reason. Not in the [dev] extra, which must install without C headers.
DESKTOP_DEBS := libdbus-1-dev libglib2.0-dev pkg-config
desktop: $(STAMP)
	@if [ "$$(uname -s)" != "Linux" ] || $(BIN)/python -c "import dbus.mainloop.glib" 2>/dev/null; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		if [ "$$(dpkg-query -W -f='$${Status}\n' $(DESKTOP_DEBS) 2>/dev/null | grep -c ' installed$$')" != "$(words $(DESKTOP_DEBS))" ]; then \
			echo "installing the D-Bus and GLib headers (Debian packages) for dbus-python..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $(DESKTOP_DEBS) >/dev/null; \
		fi && echo "building dbus-python into $(VENV)..." && \
		$(BIN)/python -m pip install --quiet 'dbus-python>=1.3'; \
	else echo "note: dbus-python not installed and no root: the desktop notification test will be skipped"; fi

demo: $(STAMP)
	$(BIN)/leverage demo --out out

# pytest-xdist workers: one more than the machine's cores (2 here), because about a third of
# the suite's time is waiting (loopback servers holding requests, retries' back-off,
# LibreOffice and pip subprocesses), which a third worker fills (measured: 3 workers 222 s,
# bench/RESULTS.md). --dist loadfile keeps each test file on one worker, so its module-scoped
# fixtures (built workbooks, fake servers) are made once; tests/conftest.py starts the
# costliest files first and keeps files that share a session fixture together.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
# The dbus-python build, mypy, ruff and the bytecode: side by side, as make -j runs them.
test: $(STAMP) libreoffice
	@$(MAKE) --no-print-directory -j4 bytecode desktop typecheck lint
	@# pytest's exit 5 is "no tests collected": a broken collection, never a pass
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile; \
		status=$$?; [ $$status -ne 5 ] || echo "make test: pytest collected no tests" >&2; \
		exit $$status

# mypy over the core and the bridges under their installed names (leverage_addin is addin/,
# ...): links in .venv/mypy-path let mypy find them; its cache in .venv keeps re-runs fast.
TYPED := leverage leverage_addin leverage_sheets leverage_exchange leverage_templates
.PHONY: typecheck
typecheck: $(STAMP)
	@mkdir -p $(VENV)/mypy-path
	@ln -sfn $(CURDIR)/addin $(VENV)/mypy-path/leverage_addin
	@ln -sfn $(CURDIR)/sheets_bridge $(VENV)/mypy-path/leverage_sheets
	@ln -sfn $(CURDIR)/exchange_bridge $(VENV)/mypy-path/leverage_exchange
	@ln -sfn $(CURDIR)/templates $(VENV)/mypy-path/leverage_templates
	$(BIN)/python -m mypy $(addprefix -p ,$(TYPED))

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

# PNG pictures of every template sheet, for a person to look at.
render: $(STAMP) libreoffice
	$(BIN)/leverage templates render --out out/render

# The wheel and sdist in dist/ (pip install dist/leverage_toolkit-*.whl, on any OS).
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build --outdir dist .

clean:
	rm -rf $(VENV) out dist build .pytest_cache .ruff_cache

# lite/: the xlwings Lite main.py and requirements.txt kept in the repository (and the sdist)
# for Excel on Mac or the web without Python; written again from the current sources.
.PHONY: lite
lite: $(STAMP)
	rm -f lite/main.py lite/requirements.txt
	$(BIN)/leverage addin lite --out lite
