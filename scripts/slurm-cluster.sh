#!/usr/bin/env bash
# A throw-away single-node Slurm cluster for augwise's tests (Debian's slurmctld, slurmd,
# slurm-client and munge, installed by scripts/setup.sh). Everything — munge's key and socket,
# slurm.conf, state, spool, logs and pid files — lives in DIR; nothing in /etc changes and no
# systemd is needed. Clients find the cluster through SLURM_CONF=DIR/slurm.conf.
#
#   scripts/slurm-cluster.sh start DIR   # prints `export SLURM_CONF=…`; waits until the node is idle
#   scripts/slurm-cluster.sh stop DIR    # cancels every job, stops the daemons (by pid file)
#   scripts/slurm-cluster.sh run CMD…    # start in a temporary DIR, run CMD with SLURM_CONF set,
#                                        # stop whatever happens; CMD's exit status
set -euo pipefail

die() { echo "slurm-cluster: $*" >&2; exit 1; }

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

start() {
  local dir=$1
  for b in munged slurmctld slurmd sbatch squeue scancel; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || die "$b not found: run scripts/setup.sh (installs Debian's slurm and munge)"
  done
  mkdir -p "$dir"/{munge,state,spool,log,run}
  dir=$(cd "$dir" && pwd)
  # Other users (slurmd runs jobs as the submitter) must reach the socket and files.
  chmod 0755 "$dir" "$dir"/munge
  local host user
  host=$(hostname -s)
  user=$(id -un)
  # munge: a private key (0400) and socket in DIR.
  [ -s "$dir/munge/munge.key" ] || { head -c 1024 /dev/urandom > "$dir/munge/munge.key"; chmod 0400 "$dir/munge/munge.key"; }
  /usr/sbin/munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" --force
  local ctld_port d_port
  ctld_port=$(free_port)
  d_port=$(free_port)
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  cat > "$dir/slurm.conf" <<EOF
ClusterName=augwise-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
MaxArraySize=10001
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
  export SLURM_CONF=$dir/slurm.conf
  /usr/sbin/slurmctld -f "$SLURM_CONF"
  /usr/sbin/slurmd -f "$SLURM_CONF"
  local i
  for i in $(seq 1 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.2
  done
  tail -n 20 "$dir"/log/*.log >&2 || true
  stop "$dir"
  die "the node did not become idle in 20 s (logs above)"
}

# Every process that carries this cluster's SLURM_CONF (job steps and what they run, a
# client that hangs), but this script and its ancestors.
cluster_processes() {
  local conf="SLURM_CONF=$1/slurm.conf" keep=" $$ " p pid
  pid=$$
  while [ "$pid" -gt 1 ] 2>/dev/null; do
    pid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    keep="$keep$pid "
  done
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    case "$keep" in *" $pid "*) continue ;; esac
    if { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qxF "$conf"; then echo "$pid"; fi
  done
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  export SLURM_CONF=$dir/slurm.conf
  # `scontrol shutdown` leaves running jobs behind: cancel them first, and give the steps a
  # few seconds to end while slurmd still runs.
  if [ -f "$SLURM_CONF" ] && scancel --quiet --user="$(id -un)" 2>/dev/null; then
    for _ in $(seq 1 50); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  local p pid
  for p in slurmd slurmctld munged; do
    pid=$(cat "$dir/run/$p.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for p in slurmd slurmctld munged; do
    pid=$(cat "$dir/run/$p.pid" 2>/dev/null || true)
    [ -z "$pid" ] && continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  # Whatever is left of the cluster (a step slurmd did not reap, a worker it started).
  for pid in $(cluster_processes "$dir"); do kill -9 "$pid" 2>/dev/null || true; done
}

case "${1:-}" in
  start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
  run)
    shift
    [ $# -ge 1 ] || die "usage: $0 run CMD…"
    dir=$(mktemp -d /tmp/augwise-slurm.XXXXXX)
    child=
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    # The command runs in the background so that a signal is handled now, not when it ends.
    trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 130' INT TERM
    start "$dir" >/dev/null
    export SLURM_CONF=$dir/slurm.conf
    echo "slurm-cluster: single-node cluster up (SLURM_CONF=$SLURM_CONF)" >&2
    set +e
    "$@" &
    child=$!
    wait "$child"
    rc=$?
    set -e
    exit $rc
    ;;
  *) die "usage: $0 start DIR | stop DIR | run CMD…" ;;
esac
