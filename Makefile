# raytag — the README's two set-up commands are `make demo` and `make test`.
# Both install into .venv first (re-run only when pyproject.toml or the lock change),
# then run inside a loopback-only network namespace so Ray, its workers and every
# server talk over 127.0.0.1 only, with its own PID namespace (and /proc): a `ray stop`
# run inside sees and stops only the Ray processes started there, never other Ray
# clusters of the same user, and everything left is killed when the command exits.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# spaCy (the reference NER) has a venv of its own for bench-spacy, so .venv stays as locked.
SPACY := spacy==3.8.18
SPACY_VENV ?= .venv-spacy
SPACY_STAMP := $(SPACY_VENV)/.installed
LOOPBACK := unshare -rn --pid --fork --mount-proc sh -c 'ip link set lo up && exec "$$0" "$$@"'
PYTEST_ARGS ?=

export CUDA_VISIBLE_DEVICES :=
export TF_USE_LEGACY_KERAS := 1
export RAY_DATA_DISABLE_PROGRESS_BARS := 1

.PHONY: install browser demo test test-fast test-unit bench bench-train bench-transformer bench-serve bench-spacy bench-tune lock clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

# Debian's Chromium, which the try page's browser test drives (tests/integration/test_serve.py).
# Installed when missing and allowed (root, as in CI, or password-less sudo); otherwise a note
# says how, and that one test fails with the same advice until it is there.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "note: chromium is missing: run 'apt-get install chromium' as root for the browser test" >&2; exit 0; fi; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

install: $(STAMP) browser

demo: $(STAMP)
	$(LOOPBACK) $(BIN)/raytag demo

test: $(STAMP) browser
	$(LOOPBACK) $(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tier: plain Python, no Ray, no full corpora, nothing slow (under 2 minutes on 2 cores).
test-fast: $(STAMP)
	$(LOOPBACK) $(BIN)/python -m pytest -m "not ray and not slow and not e2e and not data" $(PYTEST_ARGS)

test-unit: test-fast

bench: $(STAMP)
	$(LOOPBACK) $(BIN)/python bench/prepare_gmb.py

bench-train: $(STAMP)
	$(LOOPBACK) $(BIN)/python bench/train_bilstm.py overhead jobs/gmb_ner_bilstm.yaml

# CoNLL-2003 (from ../shared/data): Ray Train vs the plain HF Trainer, then the full-budget run.
bench-transformer: $(STAMP)
	$(LOOPBACK) $(BIN)/python bench/train_transformer.py overhead jobs/conll03_transformer.yaml --steps 150 --epochs 2
	$(LOOPBACK) $(BIN)/python bench/train_transformer.py quality jobs/conll03_transformer.yaml

# Endpoint vs in-process (both kinds), then the BiLSTM vs spaCy (installed only for this).
bench-serve: $(STAMP)
	$(BIN)/python -m pip install -q -c requirements.lock "$(SPACY)"
	$(LOOPBACK) $(BIN)/python bench/serve_load.py endpoint conll03_bilstm conll03_transformer --prepared runs/conll03_bilstm/prepared
	$(LOOPBACK) $(BIN)/python bench/serve_load.py spacy conll03_bilstm --prepared runs/conll03_bilstm/prepared

$(SPACY_STAMP): requirements.lock
	$(PYTHON) -m venv $(SPACY_VENV)
	$(SPACY_VENV)/bin/python -m pip install -q --upgrade pip
	$(SPACY_VENV)/bin/python -m pip install -q -c requirements.lock "$(SPACY)" seqeval
	touch $(SPACY_STAMP)

# spaCy's efficiency NER on CoNLL-2003 (from ../shared/data), trained and scored on the gold
# tokens (seqeval micro, model-best): the accuracy the BiLSTM is compared against. No Ray.
bench-spacy: $(SPACY_STAMP)
	$(SPACY_VENV)/bin/python bench/spacy_ner.py --out runs/bench/spacy_ner.json

bench-tune: $(STAMP)
	$(LOOPBACK) $(BIN)/python bench/tune_search.py jobs/tune_gmb_bilstm.yaml

lock: $(STAMP)
	(echo "# Exact versions the CPU install was resolved to (pip constraints). Regenerate with: make lock"; \
	 $(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^raytag') > requirements.lock

clean:
	rm -rf $(VENV) .venv-spacy runs .pytest_cache
