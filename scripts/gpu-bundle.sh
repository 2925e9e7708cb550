#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on a GPU host that has no Rust and no network
# (`make gpu-check`): stripped release binaries — the augwise launcher and REPL, the
# benchmarks, the device test suites — in target/gpu-check/bin, and the same
# packed as target/gpu-check/bundle.tar.xz (what travels; ~20 MB of the 64 MiB allowed).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/gpu-check
rm -rf "$out/bin" "$out/bundle.tar.xz"
mkdir -p "$out/bin"

# Cargo names test and bench executables with a hash: read them from its JSON messages.
exe() { grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//'; }
cargo build --release -p augwise-repl --bins
benches=$(cargo build --release --benches --message-format=json | exe)
tests=$(cargo test --release --no-run --test training --test golden --test batched --message-format=json | exe)

# Shipped names: `augwise` is the launcher (finds the host's libtorch), `augwise-repl` the REPL.
strip -o "$out/bin/augwise" target/release/augwise-launch
strip -o "$out/bin/augwise-repl" target/release/augwise
for f in $benches $tests; do
  name=$(basename "$f" | sed 's/-[0-9a-f]\{16\}$//')
  kind=bench; grep -qx "$f" <<<"$tests" && kind=test
  # --benches also builds the crates' own (empty) bench harnesses: keep benches/*.rs only.
  [ "$kind" = test ] || [ -f "benches/$name.rs" ] || continue
  strip -o "$out/bin/$kind-$name" "$f"
done
tar -C "$out" -cJf "$out/bundle.tar.xz" bin
echo "gpu-bundle: $(ls "$out/bin" | tr '\n' ' ')"
echo "gpu-bundle: $out/bundle.tar.xz $(du -h "$out/bundle.tar.xz" | cut -f1) (carry it with data/fashion-mnist)"
