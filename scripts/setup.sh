#!/usr/bin/env bash
# One-time, idempotent set-up for augwise on a fresh machine (2nd run: a few seconds).
#  1. .venv with PyPI torch pinned to the version tch expects (+ torchvision for the peers),
#     and the stable symlink .venv/libtorch that .cargo/config.toml points LIBTORCH at;
#  2. the default dataset, Fashion-MNIST, from Debian's dataset-fashion-mnist package,
#     unpacked without root into data/fashion-mnist;
# and with --tests (what `make test` needs beyond the main job):
#  3. nbclient (`jupyter execute`, the headless notebook runner) and the tensorboard package in
#     .venv (the tests read augwise's event files with its reader);
#  4. Slurm and munge from Debian (the tests' throw-away cluster, scripts/slurm-cluster.sh;
#     needs root or sudo).
set -euo pipefail
TESTS=0
[ "${1:-}" = "--tests" ] && TESTS=1
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0        # tch 0.24 checks for exactly this version (the GPU hosts ship it)
TORCHVISION_VERSION=0.26.0  # the torchvision built against it
NBCLIENT_VERSION=0.11.0     # `jupyter execute`: runs the notebooks headless (CI)
TENSORBOARD_VERSION=2.21.0  # its event reader checks RUN_DIR/tensorboard in the tests
PYTHON=${PYTHON:-python3}

have_torch() {
  [ -x .venv/bin/python ] && .venv/bin/python - <<PY 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("torch") == "$TORCH_VERSION" and m.version("torchvision") == "$TORCHVISION_VERSION" else 1)
PY
}

if ! have_torch; then
  echo "setup: installing torch==$TORCH_VERSION into .venv (first time only, ~1-2 min)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check \
    "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
if [ "$TESTS" = 1 ] && [ ! -x .venv/bin/jupyter-execute ]; then
  echo "setup: installing nbclient==$NBCLIENT_VERSION into .venv (jupyter execute)"
  .venv/bin/pip install --quiet --disable-pip-version-check "nbclient==$NBCLIENT_VERSION" "nbformat==5.11.1"
fi
if [ "$TESTS" = 1 ] && ! .venv/bin/python -c "import tensorboard" 2>/dev/null; then
  echo "setup: installing tensorboard==$TENSORBOARD_VERSION into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "tensorboard==$TENSORBOARD_VERSION"
fi
site=$(.venv/bin/python -c "import torch, os; print(os.path.relpath(os.path.dirname(torch.__file__), '.venv'))")
if [ "$(readlink .venv/libtorch 2>/dev/null)" != "$site" ]; then
  ln -sfn "$site" .venv/libtorch
fi

fm=data/fashion-mnist
if [ ! -s "$fm/t10k-labels-idx1-ubyte.gz" ]; then
  echo "setup: fetching Fashion-MNIST from Debian's dataset-fashion-mnist package"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null 2>&1 || { echo "setup: apt-get update failed (need root or sudo)"; exit 1; }
    (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null)
  fi
  dpkg -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/x"
  mkdir -p "$fm"
  cp "$tmp"/x/usr/share/datasets/fashion-mnist/*.gz "$fm/"
fi

[ "$TESTS" = 1 ] || exit 0

# Slurm for the tests' single-node cluster: daemons and clients, never started as services
# here (scripts/slurm-cluster.sh runs them in a temporary directory).
if ! { [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/sbin/munged ] && command -v sbatch >/dev/null; }; then
  echo "setup: installing Debian's slurmctld, slurmd, slurm-client and munge (the tests' cluster)"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1 || {
    $SUDO apt-get update -qq >/dev/null 2>&1
    $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
  }
fi
