# Two commands on a fresh machine: `make run` and `make test` (only python3 >= 3.11 and make assumed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: run test lint wheel clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/shep serve $(ARGS)

# With SHEP_TEST_POSTGRES_URL set (CI sets it), the suites that run gateways over HTTP run a second time
# with every gateway, queue and party on PostgreSQL.
POSTGRES_SUITES := tests/test_sync_http.py tests/test_faults_http.py tests/test_async_http.py \
	tests/test_signatures_http.py tests/test_asyncclient.py tests/test_portal_http.py tests/test_provider_http.py \
	tests/test_gbdfl_http.py tests/test_zeep.py

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)
	@if [ -n "$$SHEP_TEST_POSTGRES_URL" ]; then \
		echo "== the HTTP suites again, on PostgreSQL =="; \
		SHEP_TEST_HARNESS_STORE=postgresql $(BIN)/python -m pytest -q $(POSTGRES_SUITES); \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .

wheel:
	$(PYTHON) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) build dist *.egg-info
