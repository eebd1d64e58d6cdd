# One command each, on a fresh machine: each target creates .venv and installs into it when needed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist processes for `make test` (the suite waits on git, terraform, servers and browsers
# as much as on the CPU, so one more than the cores keeps two cores busy).
PYTEST_WORKERS ?= 3

.PHONY: demo test bench lint system-deps clean image checkov

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test,lint]'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: $(STAMP)
	bash scripts/system-deps.sh --demo
	$(VENV)/bin/caas demo

test: $(STAMP) system-deps
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

bench: $(STAMP) system-deps
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# OCI archive of the portal, built without Docker (debootstrap + buildah, as root); prints the
# image digest last. Pin the manifests to it with scripts/pin-image.sh <digest>.
IMAGE_OUT ?= dist/caas-portal.oci.tar
image:
	bash scripts/image.sh $(IMAGE_OUT)

# checkov on terraform/aws and gitops-skeleton/ (its own venv, .venv-checkov).
checkov:
	bash scripts/checkov.sh

clean:
	rm -rf $(VENV) .caas .pytest_cache .mypy_cache .ruff_cache test-artifacts
