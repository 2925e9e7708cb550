#!/usr/bin/env bash
# What the slurm executor costs against the local one (docs/scale-out.md, BENCHMARKS.md): one
# `evaluate` of 4 `cpu`-preset trajectories from the same stage-1 snapshot, run locally, then
# on Slurm with 1 and 2 CPUs per task; wall times, per-task times and the rewards.
#   scripts/slurm-cluster.sh run scripts/slurm-overhead.sh      # on the throw-away cluster
#   SLURM_CONF=… scripts/slurm-overhead.sh                       # on a cluster you have
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p augwise-repl
B=$PWD/target/release/augwise
W=$(mktemp -d /tmp/augwise-overhead.XXXXXX)
trap 'rm -rf "$W"' EXIT
printf 'config pretrain_epochs=1 trajectories=4\npretrain\n' | "$B" --run-dir "$W/base" --preset cpu run - >/dev/null 2>&1
for d in local s1 s2; do mkdir -p "$W/$d"; cp "$W"/base/session.json "$W"/base/snapshot-* "$W/$d/"; done
run() {
  local s e
  s=$(date +%s.%N)
  printf 'resume %s\n%s\nevaluate\n' "$W/$1" "$2" | "$B" --json --preset cpu run - >"$W/$1.out" 2>/dev/null
  e=$(date +%s.%N)
  printf '%-6s %6.1f s\n' "$1" "$(echo "$e - $s" | bc)"
}
echo "evaluate, 4 trajectories (local; slurm 1 CPU per task; slurm 2 CPUs per task):"
run local ""
run s1 "config executor=slurm slurm.poll_ms=200 slurm.cpus_per_task=1"
run s2 "config executor=slurm slurm.poll_ms=200 slurm.cpus_per_task=2"
python3 - "$W" <<'PY'
import glob, json, os, sys
w = sys.argv[1]
for d in ["s1", "s2"]:
    for f in sorted(glob.glob(f"{w}/{d}/slurm/*/results/*.json")):
        r = json.load(open(f))
        print(f"{d} task {r['index']}: {r['seconds']:.2f} s in the worker, {r['trajectory']['seconds']:.2f} s of it the trajectory")
for d in ["local", "s1", "s2"]:
    for line in open(f"{w}/{d}.out"):
        o = json.loads(line)
        if o.get("command") == "evaluate":
            print(f"{d:6} rewards", [t["reward"] for t in o["data"]["trajectories"]])
PY
