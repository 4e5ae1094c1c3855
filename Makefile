.DEFAULT_GOAL := help
PY ?= python
SRC := service models indexes evaluation

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# PyPI's torch 2.13.0 for Linux is the CUDA 13 build (~530 MB plus the nvidia-* packages); these machines'
# package mirror serves the CPU build. Elsewhere: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

install: ## Install CPU torch (TORCH_INDEX=<PyTorch index URL> elsewhere), the package with faiss-cpu, the dev tools
	pip install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	pip install -e ".[cpu,dev,zoo]"

lint: ## ruff lint + format check, mypy --strict
	ruff check $(SRC) tests bench
	ruff format --check $(SRC) tests bench
	mypy

format: ## Apply ruff fixes and formatting
	ruff check --fix $(SRC) tests bench
	ruff format $(SRC) tests bench

test: ## Default test suite (not slow, not gpu), with coverage
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) -m pytest --cov --cov-report=term --cov-fail-under=85

test-all: ## Everything but GPU tests, slow ones included
	$(PY) -m pytest -m "not gpu"

test-gpu: ## GPU tests (needs faiss-gpu-cu12 and a CUDA device)
	$(PY) -m pytest -m gpu

serve: ## Start the service on the embedded default
	logitsearch serve
