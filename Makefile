# The two quick-start commands: `make run` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test index lint clean

# Every runtime and test dependency at the exact version and hash in the lock (torch is its CPU
# build, so no CUDA package comes in); then the project itself, nothing more. After changing
# pyproject.toml, update the lock: see README.md, "Dependencies". Then the bundled model is
# exported to ONNX once (that needs torch); queries then run without torch.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "qa: installing the locked dependencies (about 1.5 minutes on a fresh machine, quietly)"
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@echo "qa: exporting the bundled model to ONNX and timing its variants (about 15 s)"
	$(BIN)/python -m qa.encoders.choice
	touch $(STAMP)

# A first index is built by a process of its own (QA_INDEX_DIR honoured): building leaves about
# 600 MB more resident in a process than serving needs, and the server should not carry it.
run: $(STAMP)
	@$(BIN)/qa index --if-missing
	$(BIN)/qa serve

index: $(STAMP)
	$(BIN)/qa index

test: $(STAMP)
	$(BIN)/ruff check qa tests
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check qa tests
	$(BIN)/ruff format --check qa tests

clean:
	rm -rf $(VENV) index/builds index/CURRENT
