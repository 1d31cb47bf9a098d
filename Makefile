# The two quick-start commands: `make run` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test index lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned, so nothing else can pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	# Export the bundled model to ONNX once (needs torch); queries then run without torch.
	$(BIN)/python -m qa.encoders.onnx
	touch $(STAMP)

run: $(STAMP)
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
