# The two set-up commands are `make run` and `make test`; see README.md.
VENV ?= .venv
STAMP := $(VENV)/.citygrid-installed

.PHONY: run test bench lint install messages

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

# The pages' texts: extract every marked text (babel.cfg) into layers/locale/messages.pot and
# merge it into both catalogues; then fill the new empty msgstr of zh_CN and en
# (tests/layers/test_i18n.py names any left empty). No .mo is written: layers/i18n.py compiles
# the .po in memory.
messages: $(STAMP)
	PYTHONPATH=. $(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output \
		--omit-header -w 100 -o layers/locale/messages.pot .
	$(VENV)/bin/pybabel update -i layers/locale/messages.pot -d layers/locale -D messages \
		--no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date -w 100
