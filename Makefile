# The README's commands. Every target runs the idempotent set-up first (venv + pinned torch,
# Fashion-MNIST from Debian, then cargo builds what it needs).
.PHONY: setup run test bench
CARGO ?= cargo

setup:
	@./scripts/setup.sh

# The main job: a whole AWS search, run as the REPL commands in scripts/demo.augwise.
run: setup
	$(CARGO) run --release -p augwise-repl --bin augwise -- --run-dir runs/demo run scripts/demo.augwise

# The whole test suite (what .ci/run calls).
test: setup
	$(CARGO) test --release --workspace

# Benchmarks, each against its PyTorch peer in the same run (see BENCHMARKS.md).
bench: setup
	$(CARGO) bench --bench train_throughput
	$(CARGO) bench --bench augment_throughput
	$(CARGO) bench --bench trajectory_throughput
