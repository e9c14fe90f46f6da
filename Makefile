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

# Lint first (seconds), then every test in two pytest-xdist workers, a test file each at a
# time (module-scoped Ray and cluster fixtures stay one per file): on 2 cores the Ray
# tests' waits overlap (measured: 254 s against 337 s in one process). pytest exits 5
# when it collected no test: that is a failure here, not a pass.
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check adstudy study trainables analysis tests bench

# The benchmarks (bench/RESULTS.md records their figures); --device cuda where a GPU is.
bench: setup
	$(PY) -m bench.throughput
	$(PY) -m bench.flops
	$(PY) -m bench.scheduler

clean:
	rm -rf results report

# The paper presets' smoke companions (configs/*_smoke.yaml: the presets' axes at a scale
# 2 CPU cores run in minutes each; about 40 min in all), each through `adstudy submit`,
# then a report per study and the loss landscape of LAMP's batch-size smoke for digit 0.
# docs/reproduction.md holds what they measured beside the papers' numbers.
REPRO_SMOKES := $(sort $(basename $(notdir $(wildcard configs/lmse_*_smoke.yaml \
	configs/lamp_*_smoke.yaml configs/iaead_*_smoke.yaml configs/ae_vs_vae*_smoke.yaml))))
.PHONY: reproduce-smoke
# The smoke presets read mnist5k.npz from the data root: ../shared/data unless set.
reproduce-smoke: export ADSTUDY_DATA ?= $(abspath ../shared/data)
reproduce-smoke: setup
	for s in $(REPRO_SMOKES); do $(VENV)/bin/adstudy submit configs/$$s.yaml || exit 1; done
	for s in $(REPRO_SMOKES); do $(VENV)/bin/adstudy report $$s || exit 1; done
	$(VENV)/bin/adstudy landscape lamp_batch_size_smoke --where "normal_class = 0"
