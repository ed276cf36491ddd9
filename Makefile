# Developer commands for the sale_referral_lifecycle Odoo 18 addon; the root of
# this repository is the addon, whatever the clone's folder is called. The
# tooling lives in dev/ and bench/, outside the addon's Python package.
#
#   make demo    fresh database "referral_demo" with demo data and the addon,
#                served on http://localhost:8069 (login admin, password admin)
#   make test    fresh database, the addon's whole test suite, database dropped;
#                the last line printed is "N passed, N failed[, N skipped]"
#   make lint    ruff (format check + lint), pylint-odoo with the OCA
#                configuration, OCA module and .po checks (tools from PyPI,
#                pinned in dev/lint-requirements.txt, in .cache/lint-venv),
#                and the layout check (dev/check_layout.py: one model, one file)
#   make fix     ruff format + ruff check --fix (rewrites files)
#   make bench   the benchmarks of bench/ one after the other (never run by
#                make test); BENCHES=bench/x.py picks some, BENCH_ARGS=... goes
#                to each
#   make wheel   dist/odoo_addon_sale_referral_lifecycle-*.whl (whool): the
#                addon without the tooling (dev/, bench/, Makefile, dotfiles),
#                built from a copy named after the addon
#   make clean   remove .cache/ (venvs, logs, embedded PostgreSQL data)
#
# dev/odoo_run.py runs Odoo 18 for demo, test and bench: the `odoo` package of
# $(PYTHON), or the source tree ODOO_SRC=...; PostgreSQL: the server that libpq
# reaches (PGHOST, PGPORT, PGUSER...); when none answers, or with PG_EMBEDDED=1,
# an embedded one (pgserver, from PyPI). Also: DEMO_DB=..., HTTP_PORT=...
# (demo), TEST_TAGS=... (test; default: /sale_referral_lifecycle),
# ODOO_ARGS="..." (more Odoo options, both).

PYTHON ?= python3
ADDON := sale_referral_lifecycle
CACHE := .cache
ODOO_RUN := $(PYTHON) dev/odoo_run.py
LINT_VENV := $(CACHE)/lint-venv
LINT_BIN := $(LINT_VENV)/bin
LINT_STAMP := $(LINT_VENV)/.installed
LINT_REQUIREMENTS := dev/lint-requirements.txt
# pylint-odoo and the OCA checks take the module name from the folder name.
# The link lives outside the clone: inside it would make a loop for whatever
# walks the addon's folder (Odoo's translation export does).
ADDONS_DIR := $(or $(TMPDIR),/tmp)/$(ADDON)-lint-$(shell id -u)-$(shell printf %s "$(CURDIR)" | cksum | cut -d" " -f1)
ADDON_LINK := $(ADDONS_DIR)/$(ADDON)
# Python outside the addon package that pylint should see too.
EXTRA_PYTHON = $(wildcard bench/*.py dev/*.py)
PO_FILES = $(wildcard i18n/*.po i18n/*.pot)
BENCHES ?= $(filter-out bench/benchlib.py,$(wildcard bench/*.py))
# Left out of the wheel (top-level paths): the tooling and the dotfiles.
NOT_SHIPPED := dev bench Makefile .*

.PHONY: demo test lint lint-ruff lint-pylint lint-oca lint-layout fix bench wheel \
	clean

demo:
	@$(ODOO_RUN) demo -- $(ODOO_ARGS)

test:
	@$(ODOO_RUN) test -- $(ODOO_ARGS)

lint:
	@$(MAKE) --no-print-directory --keep-going lint-ruff lint-pylint lint-oca \
		lint-layout && echo "lint: no findings"

lint-ruff: $(LINT_STAMP)
	$(LINT_BIN)/ruff format --check .
	$(LINT_BIN)/ruff check --no-fix .

lint-pylint: $(LINT_STAMP) $(ADDON_LINK)
	cd $(ADDONS_DIR) && $(CURDIR)/$(LINT_BIN)/pylint \
		--rcfile=$(CURDIR)/.pylintrc $(ADDON) $(addprefix $(ADDON)/,$(EXTRA_PYTHON))

lint-oca: $(LINT_STAMP) $(ADDON_LINK)
	cd $(ADDONS_DIR) && $(CURDIR)/$(LINT_BIN)/oca-checks-odoo-module $(ADDON)
	$(if $(PO_FILES),cd $(ADDONS_DIR) && $(CURDIR)/$(LINT_BIN)/oca-checks-po \
		--disable=po-pretty-format $(addprefix $(ADDON)/,$(PO_FILES)))

lint-layout:
	$(PYTHON) dev/check_layout.py

fix: $(LINT_STAMP)
	$(LINT_BIN)/ruff format .
	$(LINT_BIN)/ruff check --fix .

$(LINT_STAMP): $(LINT_REQUIREMENTS)
	rm -rf $(LINT_VENV)
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r $(LINT_REQUIREMENTS)
	touch $@

$(ADDON_LINK):
	mkdir -p $(ADDONS_DIR)
	ln -sfn $(CURDIR) $@

bench:
	@$(ODOO_RUN) bench $(BENCHES) -- $(BENCH_ARGS)

wheel:
	rm -rf $(CACHE)/build && mkdir -p $(CACHE)/build/$(ADDON)
	git ls-files -z --cached --others --exclude-standard \
		-- . $(foreach path,$(NOT_SHIPPED),':(exclude)$(path)') \
		| tar --null --ignore-failed-read -T - -cf - \
		| tar -xf - -C $(CACHE)/build/$(ADDON)
	GIT_CEILING_DIRECTORIES=$(CURDIR)/$(CACHE)/build \
		$(PYTHON) -m pip wheel --quiet --disable-pip-version-check --no-deps \
		--wheel-dir dist $(CACHE)/build/$(ADDON)

clean:
	rm -rf $(CACHE)
