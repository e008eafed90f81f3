# Two commands on a fresh machine: `make run` and `make test` (only python3 >= 3.11 and make assumed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: run test test-deps bench lint wheel clean screens

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# -qq: setuptools' editable install ends with an InformationOnly notice (a boxed "be careful with folders
	@# named like your package" block) that recent pip shows even at --quiet; errors still show.
	$(BIN)/python -m pip install -qq -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/shep serve $(ARGS)

# With SHEP_TEST_POSTGRES_URL set (CI sets it), the suites that persist state run again on PostgreSQL, a schema per test
# (tests/store_under_test.py). An explicit list: pure units stay out, as do the suites already covering both stores or
# PostgreSQL alone (store_journal, migrations, haproxy_failover) and test_packaging (its store is incidental).
STORE_SUITES := tests/test_sync_http.py tests/test_faults_http.py tests/test_async_http.py \
	tests/test_signatures_http.py tests/test_asyncclient.py tests/test_portal_http.py tests/test_provider_http.py \
	tests/test_gbdfl_http.py tests/test_zeep.py tests/test_portal.py tests/test_provider.py tests/test_cli.py \
	tests/test_queue_cli.py tests/test_demo.py tests/test_workers.py tests/test_async_crash.py \
	tests/test_outage_http.py tests/test_metrics_http.py

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)
	@if [ -n "$$SHEP_TEST_POSTGRES_URL" ]; then \
		echo "== the store-touching suites again, on PostgreSQL =="; \
		SHEP_TEST_HARNESS_STORE=postgresql $(BIN)/python -m pytest -q $(STORE_SUITES); \
	fi

# The Debian packages some tests use (tests/system-packages, the one list): without one, its tests skip and the
# closing summary of `make test` names it. apt-get, so as root; .ci/run calls this too.
# Only what is missing is installed (--no-upgrade), waiting for another apt to finish; the package lists are fetched
# only when that fails.
SYSTEM_PACKAGES = $(shell awk '$$1 ~ /^[a-z]/ { print $$2 }' tests/system-packages)
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=300 --no-install-recommends \
	--no-upgrade $(SYSTEM_PACKAGES)

test-deps:
	@[ "$$(id -u)" = 0 ] || { echo "make test-deps runs apt-get: run it as root (sudo make test-deps)" >&2; exit 1; }
	$(APT_INSTALL) || { apt-get update && $(APT_INSTALL); }

# Loopback load, bounded (about two minutes): bench/results/<date>.json and .md, and the table in README.md.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

# A PNG of each main page of the portal and of the clinic's workstation (clinic-*) in docs/screens/ (shown in
# README.md and docs/web.md), by the browser tests' own walks of diagrams 1 and 2;
# needs Chromium and its driver (Debian packages chromium, chromium-driver).
screens: $(STAMP)
	$(BIN)/python -m tests.screens

lint: $(STAMP)
	$(BIN)/ruff check .

wheel:
	$(PYTHON) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info
