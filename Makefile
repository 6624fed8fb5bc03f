# Small helpers. `make help` lists them.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo serve test bench install clean

help: ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## /{printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install CartResQ with its test tools

demo: $(STAMP) ## simulated store through the real endpoints; prints a summary, then serves the dashboard (PORT=, SEED=)
	$(BIN)/cartresq demo $(if $(PORT),--port $(PORT)) $(if $(SEED),--seed $(SEED))

serve: $(STAMP) ## run the product on http://127.0.0.1:8000 (embedded: SQLite + in-process worker; PORT=, VAR=var/demo)
	$(if $(VAR),CARTRESQ_VAR_DIR=$(VAR)) $(BIN)/cartresq serve $(if $(PORT),--port $(PORT))

JOBS ?= 2

test: $(STAMP) ## run the whole test suite in JOBS processes (T=path to run part of it; JOBS=0 in this one); installs the node tools, names what is missing
	@bash .ci/test-deps
	$(BIN)/pytest -n $(JOBS) --dist loadgroup $(T)

bench: $(STAMP) ## run the benchmarks
	$(BIN)/cartresq bench

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var
