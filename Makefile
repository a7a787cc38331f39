# q2jax: `make demo` and `make test` work from a clean clone (they create .venv).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,qm]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/q2jax fit --xyz q2jax/data/ch3f/ch3f-optimized.xyz \
		--hessian q2jax/data/ch3f/ch3f-hessian.npy --out out/demo-ch3f

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check q2jax adapters tests examples benchmarks

clean:
	rm -rf out .pytest_cache
