# The README's commands. Every target runs the idempotent set-up first (venv + pinned torch,
# Fashion-MNIST from Debian, then cargo builds what it needs).
.PHONY: setup setup-tests run test lint float-settings notebooks kernel lab bench gpu-check gpu-check-cpu
JUPYTERLAB_VERSION ?= 4.6.6
CARGO ?= cargo

setup:
	@./scripts/setup.sh

# What the tests need beyond the main job: nbclient, tensorboard, Slurm and munge (root/sudo).
setup-tests:
	@./scripts/setup.sh --tests

# The main job: a whole AWS search, run as the REPL commands in scripts/demo.augwise.
run: setup
	@if [ -e runs/demo/session.json ]; then d=runs/demo-$$(date +%Y%m%d-%H%M%S); mv runs/demo $$d; echo "make run: the previous demo run is kept in $$d"; fi
	$(CARGO) run --release -p augwise-repl --bin augwise -- --run-dir runs/demo run scripts/demo.augwise

# The whole test suite (what .ci/run calls): cargo's tests inside a throw-away single-node
# Slurm cluster (scripts/slurm-cluster.sh: started in a temporary directory, stopped whatever
# happens), then every notebook executed headless on the augwise kernel.
test: setup-tests lint
	$(CARGO) test --release --workspace --no-run
	./scripts/slurm-cluster.sh run env AUGWISE_REQUIRE_SLURM=1 $(CARGO) test --release --workspace
	$(MAKE) --no-print-directory float-settings
	$(MAKE) --no-print-directory gpu-check-cpu
	$(MAKE) --no-print-directory notebooks

# The test files whose assertions rest on what a network learned or on torchvision's exact floats,
# again under other floating-point paths than this CPU's default (one intra-op thread: other
# reduction orders; oneDNN without AVX; ATen's scalar kernels): another CI machine's floats differ
# the same way, so a test that passes for one CPU's exact results fails here first (part of
# `make test`).
FLOAT_SETTINGS ?= OMP_NUM_THREADS=1 ONEDNN_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default
FLOAT_TESTS ?= --lib --test golden --test search --test training --test batched --test commands --test notebook --test tensorboard
float-settings: setup
	@for s in $(FLOAT_SETTINGS); do \
	  echo "float-settings: $$s cargo test --release -p augwise $(FLOAT_TESTS)"; \
	  env $$s $(CARGO) test --release -p augwise $(FLOAT_TESTS) || exit 1; \
	done

# rustfmt's layout (rustfmt.toml) and clippy's warnings, as errors (part of `make test`); and
# clippy.toml as scripts/clippy-toml.py makes it from the tch that Cargo.lock pins.
lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	python3 scripts/clippy-toml.py --check

# The Jupyter kernel "Rust (augwise)" (installs evcxr_jupyter the first time, ~7 min).
kernel: setup
	$(CARGO) run --release -p augwise-kernel -- install

# Execute notebooks/*.ipynb headless into target/notebooks; fails on an error cell or a
# notebook without charts. The first run compiles augwise and tch inside the kernel (~5 min).
notebooks: kernel setup-tests
	$(CARGO) run --release -p augwise-kernel -- execute notebooks/*.ipynb

# JupyterLab on notebooks/ with the augwise kernel.
lab: kernel
	@[ -x .venv/bin/jupyter-lab ] || .venv/bin/pip install --quiet --disable-pip-version-check "jupyterlab==$(JUPYTERLAB_VERSION)"
	.venv/bin/jupyter lab notebooks/

# Benchmarks, each against its PyTorch peer in the same run (see BENCHMARKS.md).
bench: setup
	$(CARGO) bench --bench train_throughput
	$(CARGO) bench --bench augment_throughput
	$(CARGO) bench --bench trajectory_throughput
	$(CARGO) bench --bench compare_power
	$(CARGO) bench --bench batched_trajectories

# What travels to a GPU host (no Rust, no network, its own torch 2.11.0): stripped binaries in
# target/gpu-check/bin and packed in target/gpu-check/bundle.tar.xz. On the host, from the
# repository root with that file and data/fashion-mnist: `bash scripts/gpu-check.sh`.
gpu-check: setup
	./scripts/gpu-bundle.sh

# The same check on this machine's CPU at toy sizes, so it cannot rot (part of `make test`).
gpu-check-cpu: gpu-check
	bash scripts/gpu-check.sh --cpu
