# Two commands for a new user with Python 3.11:  make demo  |  make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install browser postgres bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("paperwire needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[embed,ann,map,postgres,test]'
	touch $(STAMP)

install: $(STAMP)

# Imports the bundled demo corpus into the default SQLite database and serves the site.
# Another port or address:  make demo PORT=8001 HOST=0.0.0.0
PORT ?= 8000
HOST ?= 127.0.0.1
demo: $(STAMP)
	$(BIN)/paperwire demo --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests (no browser download from anywhere else).
browser:
	bash scripts/install-browser.sh

# Debian's PostgreSQL server binaries for the store tests (a throwaway cluster per run).
postgres:
	bash scripts/install-postgres.sh

test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache artifacts
