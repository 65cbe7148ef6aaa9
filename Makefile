# Two commands do all set-up on a fresh machine:  make run  (web chat on the seeds)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 7860
LINTED := qa tests benchmarks train app.py

# Nothing may reach the network at run time: model weights come from site-packages.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false
# Ray (tests, local instances): loopback only, no usage stats.
export RAY_USAGE_STATS_ENABLED := 0
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0

.PHONY: install dev run index test test-fast lint eval quality tune train bench bench-load clean

install: $(VENV)/.installed

# torch first and pinned: an unpinned torch pulled in by sentence-transformers is a multi-GB CUDA build.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	# The package itself (editable: `qa` and `qa-web` commands; benchmarks import it), its
	# dependencies already pinned above.
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# Test tools, the optional Ray extra (so its tests run), and Debian's Chromium for the
# browser tests (never `playwright install`).
dev: $(VENV)/.dev-installed
$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt requirements-ray.txt
	$(BIN)/pip install -q -r requirements-dev.txt -r requirements-ray.txt
	test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	touch $@

run: install
	$(BIN)/python -m qa index   # says what it reads and embeds (progress also when not a terminal)
	$(BIN)/python app.py --host $(HOST) --port $(PORT)

index: install
	$(BIN)/python -m qa index

test: dev
	$(BIN)/python -m pytest

# ruff: lint rules and formatting (tests/test_package.py runs the same check).
lint: dev
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

test-fast: dev
	$(BIN)/python -m pytest -m "not slow and not browser"

eval: install
	$(BIN)/python -m qa index --quiet
	$(BIN)/python -m qa eval eval/seeds.jsonl

quality: install
	$(BIN)/python benchmarks/quality.py --json docs/quality.json

# The learnt answer stage (qa/models/): the reader (~52 min on 2 cores, float32), then pre-ranking,
# re-scoring and answerability around it (~19 min, +5 to index its articles on a fresh machine).
# Fixed seeds, float32 on any CPU; see qa/models/MODEL_CARD.md and README "make train".
train: install
	$(BIN)/python train/reader.py
	$(BIN)/python train/fusion.py   # also writes qa/models/MODEL_CARD.md (train/card.py)

tune: install
	$(BIN)/python benchmarks/tune.py

bench: install
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/cold_start.py --runs 5
	$(BIN)/python benchmarks/build.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/memory.py

bench-load: install
	$(BIN)/python benchmarks/load.py --json test-artifacts/load.json

clean:
	rm -rf index/* .pytest_cache test-artifacts
