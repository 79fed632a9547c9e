# Two entry points (see README): `make demo` and `make test`. Both bootstrap everything they
# need (a virtualenv with maturin and pytest, the Rust crates) from the package registries.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test venv develop lint rust-test py-test conformance wheel-test browser-test cuda-codegen-test cuda-emu cuda-emu-test gpu-bundle gpu-bundle-test bench fuzz miri asan tsan stress freethreaded

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.5,<2" "pytest>=7" "hypothesis>=6" "numpy>=1.24" "mypy>=1.18" "ruff>=0.6" typing_extensions

venv: $(PY)

develop: $(PY)
	$(VENV)/bin/maturin develop --release --quiet

demo: develop
	$(PY) examples/seed_walkthrough.py

# rustfmt and clippy ship with rustup's default profile; skip (loudly) where they are absent.
# ruff's rule set and mypy's strictness are configured in pyproject.toml.
lint: $(PY)
	$(VENV)/bin/ruff check python tests/python examples bench scripts
	$(VENV)/bin/mypy --strict python/opdispatch
	@if cargo fmt --version >/dev/null 2>&1; then cargo fmt --all -- --check; else echo "rustfmt not installed: format check skipped"; fi
	@if cargo clippy --version >/dev/null 2>&1; then cargo clippy --quiet --workspace --all-targets -- -D warnings; else echo "clippy not installed: lint skipped"; fi

rust-test:
	cargo test --workspace --quiet
	# The snapshot reclamation's fallback (real fences instead of membarrier) under the stress tests.
	OPDISPATCH_NO_MEMBARRIER=1 cargo test --quiet -p opdispatch-dispatch --test stress --lib
	cargo run --quiet --example define_op -p opdispatch-dispatch

py-test: develop
	$(PY) -m pytest -q tests/python

conformance: develop
	$(PY) scripts/conformance_ratchet.py

# `maturin build` into a temp dir, then the wheel into a fresh virtualenv (no network): the
# installed package (Python sources, py.typed, stubs, _C) must import and run an operator.
wheel-test: $(PY)
	MATURIN=$(VENV)/bin/maturin PYTHON=$(PY) scripts/wheel_test.sh

# The dispatch-table page in headless Chromium (Debian's package, installed here when apt can;
# otherwise the test says why it skips).
browser-test: develop
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || echo "apt-get install chromium failed"; fi
	@$(PY) scripts/browser_test.py; rc=$$?; if [ $$rc = 77 ]; then echo "browser test skipped (see above)"; exit 0; fi; exit $$rc

test: lint rust-test py-test conformance wheel-test browser-test cuda-codegen-test cuda-emu-test

# The generated CUDA kernels compile to PTX with NVRTC, which needs no GPU: PyPI's
# nvidia-cuda-nvrtc wheel (CUDA 13, the bindings' version) provides libnvrtc.so.13.
NVRTC_WHEEL := "nvidia-cuda-nvrtc>=13,<14"
cuda-codegen-test: $(PY)
	$(PY) -m pip install --quiet $(NVRTC_WHEEL)
	LD_LIBRARY_PATH="$$($(PY) scripts/cuda_libs.py nvrtc)" \
		OPDISPATCH_REQUIRE_NVRTC=1 cargo test -p opdispatch-cuda --quiet nvrtc

# The CUDA backend without a GPU: tests/cuda_emulator stands in for libcuda and libcublas over
# host memory (kernels compiled by the real NVRTC, run by host implementations chosen by name;
# see its README), and the CUDA pytest cases run against it.
EMU_DIR := target/cuda-emu
cuda-emu: $(PY)
	$(PY) -m pip install --quiet $(NVRTC_WHEEL)
	cargo build --release --quiet -p opdispatch-cuda-emulator
	mkdir -p $(EMU_DIR)
	ln -sf ../release/libopdispatch_cuda_emulator.so $(EMU_DIR)/libcuda.so
	ln -sf ../release/libopdispatch_cuda_emulator.so $(EMU_DIR)/libcublas.so

cuda-emu-test: develop cuda-emu
	LD_LIBRARY_PATH="$$PWD/$(EMU_DIR):$$($(PY) scripts/cuda_libs.py nvrtc)" \
		$(PY) -m pytest -q tests/python/test_cuda.py
	LD_LIBRARY_PATH="$$PWD/$(EMU_DIR):$$($(PY) scripts/cuda_libs.py nvrtc)" \
		OPDISPATCH_GPU_CHECK_EMULATED=1 scripts/gpu_check.sh $(PY) gpu_bundle_emu

# The extension built for CPython 3.12 (the GPU machine's python3, which has no Rust there) with
# the Python package, into the ignored gpu_bundle/: `PYTHONPATH=gpu_bundle python3 ...` there.
# Its own target directory keeps the develop build (another Python) warm.
PY312 ?= /root/.pyenv/versions/3.12.1/bin/python3.12
gpu-bundle: $(PY)
	@test -x $(PY312) || { echo "gpu-bundle: no CPython 3.12 at $(PY312) (set PY312=...)"; exit 1; }
	rm -rf gpu_bundle target/py312/wheels
	CARGO_TARGET_DIR=target/py312 $(VENV)/bin/maturin build --release --quiet -i $(PY312) --out target/py312/wheels
	$(PY) -m zipfile -e target/py312/wheels/opdispatch-*-cp312-*.whl gpu_bundle
	@ls gpu_bundle/opdispatch/_C.cpython-312-*.so

# The Python suite against gpu_bundle under CPython 3.12 (skips, saying why, where pyenv's
# 3.12 is absent, as on CI).
gpu-bundle-test:
	@if [ ! -x $(PY312) ]; then echo "gpu-bundle-test skipped: no CPython 3.12 at $(PY312)"; exit 0; fi; \
	$(MAKE) --no-print-directory gpu-bundle && \
	{ test -x .venv312/bin/python || { $(PY312) -m venv .venv312 && .venv312/bin/python -m pip install --quiet "pytest>=7" "hypothesis>=6" "numpy>=1.24" typing_extensions; }; } && \
	PYTHONPATH=$$PWD/gpu_bundle .venv312/bin/python -m pytest -q -p no:cacheprovider tests/python

bench: develop
	cargo bench -p opdispatch-dispatch --bench dispatch
	$(PY) bench/bench_calls.py

# ---- Hardening (nightly toolchain, installed by rustup; none of these is part of `make test`,
# which runs the fuzz bodies on stable through `cargo test -p opdispatch-fuzz`). See docs/HARDENING.md.
NIGHTLY ?= nightly
FUZZ_SECONDS ?= 120
FUZZ_TARGETS ?= schema keys registration registration_threads
HOST := $(shell rustc -vV | sed -n 's/^host: //p')

# Coverage-guided libFuzzer runs, FUZZ_SECONDS each, starting from the committed seed corpus
# (new inputs go to fuzz/target/work-<target>, findings to fuzz/artifacts/).
fuzz:
	rustup toolchain install $(NIGHTLY) --profile minimal
	cargo +$(NIGHTLY) fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz
	cd fuzz && for t in $(FUZZ_TARGETS); do mkdir -p target/work-$$t && \
		cargo +$(NIGHTLY) fuzz run -O $$t target/work-$$t corpus/$$t -- \
		-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; done

# The keys, schema and dispatch crates' unit tests under Miri (the RCU uses its fence path there).
miri:
	rustup toolchain install $(NIGHTLY) --profile minimal --component miri,rust-src
	cargo +$(NIGHTLY) miri setup
	cargo +$(NIGHTLY) miri test -p opdispatch-keys -p opdispatch-schema -p opdispatch-dispatch --lib

# The dispatcher's stress and unit tests under AddressSanitizer / ThreadSanitizer (std rebuilt
# instrumented, so TSan sees its atomics), in their own target directory.
asan tsan:
	rustup toolchain install $(NIGHTLY) --profile minimal --component rust-src
	RUSTFLAGS="-Zsanitizer=$(if $(filter asan,$@),address,thread)" RUSTDOCFLAGS="-Zsanitizer=$(if $(filter asan,$@),address,thread)" \
		TSAN_OPTIONS="halt_on_error=1" cargo +$(NIGHTLY) test -Zbuild-std --target $(HOST) \
		--target-dir target/$@ -p opdispatch-dispatch --test stress --lib

# Leak and load figures (bench/stress.py; STRESS_SCALE=0.1 for a quick run).
stress: develop
	$(PY) bench/stress.py

# The Python suite on a free-threaded CPython (not part of `make test`: building the interpreter
# takes minutes). scripts/build_freethreaded_python.sh builds it into FT_PREFIX when missing
# (3.14: pyo3 0.30 refuses free-threaded 3.13); the extension goes to its own target directory
# so the GIL build's artifacts stay warm. PYTHON_GIL=0 keeps the GIL off although the module
# still declares `gil_used = true` (docs/HARDENING.md), so the free-threaded paths are what runs.
FT_VERSION ?= 3.14
FT_PREFIX ?= /opt/py$(subst .,,$(FT_VERSION))t
FT_VENV ?= .venv-ft
freethreaded:
	FT_VERSION=$(FT_VERSION) FT_PREFIX=$(FT_PREFIX) scripts/build_freethreaded_python.sh
	test -x $(FT_VENV)/bin/python || $(FT_PREFIX)/bin/python$(FT_VERSION)t -m venv $(FT_VENV)
	$(FT_VENV)/bin/python -m pip install --quiet "maturin>=1.5,<2" "pytest>=7" "hypothesis>=6" "numpy>=1.24" typing_extensions
	CARGO_TARGET_DIR=target/freethreaded VIRTUAL_ENV=$$PWD/$(FT_VENV) $(FT_VENV)/bin/maturin develop --release --quiet
	PYTHON_GIL=0 $(FT_VENV)/bin/python -X faulthandler -m pytest -q tests/python
