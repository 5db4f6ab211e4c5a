#!/usr/bin/env bash
# Starts (or stops) a one-node Slurm cluster on this machine, as root, for
# the sweep test: munged, slurmctld and slurmd with a generated slurm.conf
# in a state directory. `local_cluster.sh start DIR` prints nothing on
# success and leaves the daemons' process ids in DIR/*.pid;
# `local_cluster.sh stop DIR` stops the daemons it started, by those ids.
set -euo pipefail
cmd=${1:?start|stop}
state=${2:?state directory}
mkdir -p "$state"
state=$(cd "$state" && pwd)

stop() {
  for d in slurmd slurmctld munged; do
    if [ -s "$state/$d.pid" ]; then
      pid=$(cat "$state/$d.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$state/$d.pid"
    fi
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
mkdir -p "$state/spool" "$state/ctld" "$state/log" "$state/munge"
chmod 700 "$state/munge"

# munge: a fresh key and a socket of our own.
dd if=/dev/urandom bs=1 count=1024 of="$state/munge/munge.key" 2>/dev/null
chmod 400 "$state/munge/munge.key"
munged --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
  --pid-file="$state/munged.pid" --log-file="$state/log/munged.log" \
  --seed-file="$state/munge/munge.seed" --force

cat > "$state/slurm.conf" <<CONF
ClusterName=refit-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

export SLURM_CONF="$state/slurm.conf"
slurmctld -f "$state/slurm.conf"
slurmd -f "$state/slurm.conf"
# Wait for the node to come up.
for _ in $(seq 100); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    exit 0
  fi
  sleep 0.2
done
echo "slurm did not come up; logs in $state/log" >&2
sinfo >&2 || true
tail -n 20 "$state"/log/*.log >&2 || true
stop
exit 1
