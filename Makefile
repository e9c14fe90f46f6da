# The README's two commands: `make quickstart` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision pinned to the releases this project is tested with (installed first so
# pip does not pick a different build while resolving the rest).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup quickstart test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

quickstart: setup
	$(VENV)/bin/adstudy submit configs/quickstart.yaml
	$(VENV)/bin/adstudy report quickstart

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: setup
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check study trainables analysis tests

clean:
	rm -rf results report
