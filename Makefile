# The two set-up commands are `make run` and `make test`; see README.md.
VENV ?= .venv
STAMP := $(VENV)/.citygrid-installed

.PHONY: run test bench lint install

$(STAMP): pyproject.toml scripts/bootstrap.sh
	VENV=$(VENV) bash scripts/bootstrap.sh
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/citygrid run

# one pytest worker per core (pytest-xdist), each with its own throw-away database
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n auto

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(VENV)/bin/python $$f || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check service gis layers demo tests bench
	$(VENV)/bin/mypy gis service demo
