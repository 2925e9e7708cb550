#!/usr/bin/env bash
# The prepared device check (issue 13): one script, run once on a GPU host with no Rust and no
# network, from the repository root, with target/gpu-check/bundle.tar.xz (`make gpu-check`)
# and data/fashion-mnist beside it. In about 6 minutes on one H100 it:
#   1. shows which libtorch the launcher found (the host's own torch, through its Python) and
#      that the REPL also runs with nothing but LD_LIBRARY_PATH;
#   2. runs every device test (tests written once over the CPU and CUDA) on CUDA;
#   3. runs the augmentation, training (ResNet-20; WRN-28-10 fp32 / bf16 / bf16 channels-last),
#      trajectory and batched-trajectory benchmarks against their PyTorch peers on the GPU;
#   4. times the `gpu` preset's main job, command by command (scripts/gpu-check.augwise), and
#      the same stage 1 and probe in bf16 + channels-last (rewards and time vs fp32);
#   5. runs the first update again with pairs_per_trajectory=16 (issue 10's variant);
# and writes every figure to one file, $OUT/gpu-check.md, that BENCHMARKS.md takes as it is.
#
#   scripts/gpu-check.sh [--cpu] [--out DIR] [--deadline SECONDS]
#
# --deadline (default 480) bounds the whole run: each stage gets at most what is left, so the
# report and logs are complete even when a device lease is about to end.
# --cpu runs the same stages on the CPU at toy sizes (CI runs it so the script cannot rot).
# Every stage has its own time limit and a failure does not stop the next: one run gives
# every figure it can.
set -uo pipefail
cd "$(dirname "$0")/.."

device=cuda
out=${OUT:-target/gpu-check/out}
deadline=480
started=$(date +%s)
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) device=cpu ;;
    --out) out=$2; shift ;;
    --deadline) deadline=$2; shift ;;
    *) echo "gpu-check: unknown argument $1 (expected --cpu, --out DIR, --deadline SECONDS)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
report=$out/gpu-check.md
bin=target/gpu-check/bin
if [ ! -x "$bin/augwise-repl" ]; then
  [ -f target/gpu-check/bundle.tar.xz ] || { echo "gpu-check: no $bin and no bundle: run make gpu-check" >&2; exit 2; }
  tar -C target/gpu-check -xJf target/gpu-check/bundle.tar.xz
fi

# The peers' Python: the project venv here, the host's own python3 (its torch) on a GPU host.
if [ -z "${AUGWISE_PEER_PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then AUGWISE_PEER_PYTHON=$PWD/.venv/bin/python; else AUGWISE_PEER_PYTHON=$(command -v python3); fi
fi
export AUGWISE_PEER_PYTHON AUGWISE_ROOT=$PWD AUGWISE_DATA=$PWD/data
export AUGWISE_PYTHON=$AUGWISE_PEER_PYTHON
torchlib=$("$AUGWISE_PEER_PYTHON" -c 'import importlib.util as u, os; print(os.path.join(os.path.dirname(u.find_spec("torch").origin), "lib"))')
# Test and bench binaries link libtorch directly (no launcher): point the loader at it.
export LD_LIBRARY_PATH=$torchlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
threads=$(nproc)

if [ "$device" = cuda ]; then
  big=1; wrn_batches=12; train_batches=40; traj_batches=60; workers=8; preset=gpu
  # Stage 1 shortened to fit the lease: per-epoch and per-update times scale the rest.
  first="config pretrain_epochs=10"
else
  big=0; wrn_batches=2; train_batches=4; traj_batches=4; workers=1; preset=cpu
  # Toy sizes for CI: the same commands on 256 synthetic images.
  first="config data=synthetic:n=256,size=16,classes=4 pretrain_epochs=1 finetune_epochs=1 trajectories=2"
fi

failures=0
# stage NAME LIMIT_S CMD...: run, time, keep the log, append the outcome and output to the report.
stage() {
  local name=$1 limit=$2; shift 2
  local t0 t1 rc left
  left=$((deadline - ($(date +%s) - started)))
  if [ "$left" -lt 5 ]; then
    echo "### $name — SKIPPED: the ${deadline}s deadline was reached" >>"$report"
    echo "gpu-check: $name: skipped (deadline)"; failures=$((failures + 1)); return
  fi
  [ "$limit" -le "$left" ] || limit=$left
  t0=$(date +%s.%N)
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  local verdict=ok
  if [ $rc -eq 124 ]; then verdict="TIMED OUT after ${limit}s"; elif [ $rc -ne 0 ]; then verdict="FAILED (exit $rc)"; fi
  [ "$verdict" = ok ] || failures=$((failures + 1))
  { echo "### $name — $verdict, ${secs} s"; echo; echo '```'; echo "\$ $*"; tail -n 40 "$out/$name.log"; echo '```'; echo; } >>"$report"
  echo "gpu-check: $name: $verdict (${secs} s)"
}

{
  echo "# augwise device check ($device), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Host: $(nproc) CPU threads; $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo 'no nvidia-smi')."
  echo "Peers' Python: $AUGWISE_PEER_PYTHON (torch $("$AUGWISE_PEER_PYTHON" -c 'import torch; print(torch.__version__)' 2>&1))."
  echo
} >"$report"

# 1. libtorch at run time: the launcher's own search, then LD_LIBRARY_PATH alone.
stage device-launcher 60 env -u LD_LIBRARY_PATH "$bin/augwise" device
stage device-ld-library-path 60 "$bin/augwise-repl" device

# 2. Device tests (each runs its cases on the CPU, then on CUDA when present).
stage tests-training 120 "$bin/test-training" --test-threads 1
stage tests-golden 60 "$bin/test-golden" --test-threads 1
stage tests-batched 120 "$bin/test-batched" --test-threads 1

# 3. Benchmarks against the PyTorch peers, same device, same run.
stage bench-augment 90 "$bin/bench-augment_throughput" "$threads" "$device"
stage bench-train-resnet20 90 "$bin/bench-train_throughput" "$train_batches" "$threads" "$device" rounds=2
if [ "$big" = 1 ]; then
  for p in "precision=fp32" "precision=bf16" "precision=bf16 channels_last=1" "precision=bf16 channels_last=1 batch=256"; do
    # shellcheck disable=SC2086
    stage "bench-train-wrn-28-10-${p//[ =_]/-}" 90 "$bin/bench-train_throughput" "$wrn_batches" "$threads" "$device" arch=wrn-28-10 rounds=1 $p
  done
else
  stage bench-train-wrn-16-2-bf16 120 "$bin/bench-train_throughput" "$wrn_batches" "$threads" "$device" arch=wrn-16-2 rounds=1 precision=bf16 channels_last=1
fi
# k trajectories one after another vs as one grouped model (augwise and the PyTorch peer).
stage bench-batched-trajectories 120 "$bin/bench-batched_trajectories" "$([ "$big" = 1 ] && echo 30 || echo 2)" "$threads" "$device" \
  "$([ "$big" = 1 ] && echo 8 || echo 2)"
stage bench-trajectory 120 "$bin/bench-trajectory_throughput" "$traj_batches" "$threads" "$device" "$workers"

# 4. The preset's main job, one REPL command per process (each later one starts with
#    `resume`), so each command's wall time is its own line.
run=$out/run
rm -rf "$run"
prefix=$first   # set before the session exists; later commands `resume` it with its config
while read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  printf '%s\n%s\n' "$prefix" "$line" >"$out/command.augwise"
  prefix="resume $run"
  stage "job-$(echo "$line" | tr ' :+=' '----')" 400 "$bin/augwise" --preset "$preset" --device "$device" --run-dir "$run" run "$out/command.augwise"
  # Stage 6 starts its update from the same stage-1 weights and θ.
  [ "$line" = pretrain ] && rm -rf "$out/run-k16" && cp -r "$run" "$out/run-k16"
done <scripts/gpu-check.augwise

# 5. Item 4's question, last because it is the first to give way to the deadline: the same
#    stage 1 and probe in bf16 + channels-last. Its reward (mean ± 95% CI) against the fp32
#    probe above says whether bf16 moves rewards beyond noise; its times say how much it saves.
bf16_run=$out/run-bf16
rm -rf "$bf16_run"
printf '%s precision=bf16 channels_last=true\npretrain\nprobe none 2\n' "$first" >"$out/command.augwise"
stage job-bf16-channels-last-pretrain-probe 400 "$bin/augwise" --preset "$preset" --device "$device" --run-dir "$bf16_run" run "$out/command.augwise"

# 6. Issue 10's variant at the GPU's scale: the same first update with pairs_per_trajectory=16
#    (each trajectory draws 16 pairs from θ up front), from the same stage-1 weights. Its
#    rewards' spread against the per-image update's says how much more the draws matter.
if [ -d "$out/run-k16" ]; then
  "$AUGWISE_PEER_PYTHON" - "$out/run-k16/session.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    session = json.load(f)
session["config"]["pairs_per_trajectory"] = 16
with open(path, "w") as f:
    json.dump(session, f)
PY
  printf 'resume %s\nstep 1\n' "$out/run-k16" >"$out/command.augwise"
  stage job-pairs-per-trajectory-16-step-1 400 "$bin/augwise" --preset "$preset" --device "$device" --run-dir "$out/run-k16" run "$out/command.augwise"
fi

echo "gpu-check: $failures stage(s) failed or timed out; report: $report"
[ $failures -eq 0 ]
