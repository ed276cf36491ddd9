# sale_referral_lifecycle: make demo | make test | make lint | make bench
PYTHON ?= python3
CACHE := .cache
LINT_VENV := $(CACHE)/lint-venv
LINT_BIN := $(LINT_VENV)/bin
LINT_STAMP := $(LINT_VENV)/.installed-1
ADDON_LINK := $(CACHE)/addons/sale_referral_lifecycle

.PHONY: demo test lint bench clean

demo:
	$(PYTHON) tools/odoo_run.py demo

test:
	$(PYTHON) tools/odoo_run.py test

$(LINT_STAMP):
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_BIN)/pip install --quiet --upgrade pip
	$(LINT_BIN)/pip install --quiet \
		"ruff==0.15.22" \
		"pylint-odoo==9.3.24" \
		"oca-odoo-pre-commit-hooks==0.2.27"
	touch $@

$(ADDON_LINK):
	mkdir -p $(CACHE)/addons
	ln -sfn ../.. $@

lint: $(LINT_STAMP) $(ADDON_LINK)
	$(LINT_BIN)/ruff format --check .
	$(LINT_BIN)/ruff check .
	$(LINT_BIN)/pylint --rcfile=.pylintrc $(ADDON_LINK)
	cd $(CACHE)/addons && ../lint-venv/bin/oca-checks-odoo-module sale_referral_lifecycle/__manifest__.py
	$(LINT_BIN)/oca-checks-po i18n/*.po i18n/*.pot

bench:
	@if [ -f bench/lifecycle.py ]; then $(PYTHON) bench/lifecycle.py; \
	else echo "No benchmark yet (bench/lifecycle.py)"; fi

clean:
	rm -rf $(CACHE)
