#!/usr/bin/env bash
# The Slurm test: a one-node Slurm cluster on this machine runs scenarios/ci-smoke.toml as a
# 2-task job array made by `llamaperf slurm`; task 2, cut back to one run and submitted again,
# must resume only the missing run; `llamaperf merge` combines the two shards and every planned
# run must be there exactly once.
#
# Usage: scripts/test-slurm.sh [LLAMAPERF_BINARY]   (default: target/debug/llamaperf, built if
# missing). Needs root on Debian (installs slurmctld, slurmd, slurm-client, munge). The daemons
# run from a temporary folder with their own configuration, ports and munge socket, and are
# stopped on exit, failure or not; on failure their logs are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { echo "test-slurm: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (it installs packages and starts the Slurm daemons)"

packages=(slurmctld slurmd slurm-client munge python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  timeout 300 apt-get update -qq
  # policy-rc.d keeps the packages' init scripts from starting system-wide daemons.
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

bin=${1:-}
if [ -z "$bin" ]; then
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/llamaperf"
  [ -x "$bin" ] || cargo build --bin llamaperf
fi
bin=$(realpath "$bin")
[ -x "$bin" ] || die "$bin is not an executable"

work=$(mktemp -d /tmp/llamaperf-slurm.XXXXXX)
chmod 0755 "$work"
mkdir -p "$work"/{etc,state,spool,log,run,munge,shared}
chmod 0700 "$work/munge"
conf="$work/etc/slurm.conf"
export SLURM_CONF="$conf"
export LLAMAPERF_CACHE="${LLAMAPERF_CACHE:-$work/cache}"
pids=()

logs() {
  for f in "$work"/log/* "$work"/shared/*.out; do
    [ -f "$f" ] || continue
    echo "----- $f (last 60 lines)" >&2
    tail -n 60 "$f" >&2
  done
}

stop() {
  local status=$?
  [ "$status" -eq 0 ] || logs
  if [ -n "${job:-}" ]; then scancel --quiet "$job" 2>/dev/null || true; fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$status" -eq 0 ]; then rm -rf "$work"; else say "kept $work for inspection"; fi
  exit "$status"
}
trap stop EXIT
trap 'exit 130' INT TERM

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 1
  done
}

# munge: its own key and socket, so a system munged (if any) is left alone.
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
munged --foreground --force --key-file="$work/munge/munge.key" --socket="$socket" \
  --pid-file="$work/run/munged.pid" --log-file="$work/log/munged.log" \
  --seed-file="$work/munge/munged.seed" >>"$work/log/munged.stderr" 2>&1 &
pids+=($!)
wait_for 20 bash -c "munge --socket='$socket' -n | unmunge --socket='$socket'" \
  || die "munged did not start"

host=$(hostname -s)
# The node as slurmd sees it (CPUs, sockets, cores, threads, memory), on the loopback address.
node=$(slurmd -C | head -n 1)
[[ "$node" == NodeName=* ]] || die "slurmd -C printed '$node'"
cat >"$conf" <<EOF
ClusterName=llamaperf-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -D -i -f "$conf" >>"$work/log/slurmctld.stderr" 2>&1 &
pids+=($!)
wait_for 30 scontrol ping || die "slurmctld did not answer"
slurmd -D -N "$host" -f "$conf" >>"$work/log/slurmd.stderr" 2>&1 &
pids+=($!)
wait_for 60 bash -c "sinfo -h -n '$host' -o %T | grep -qx idle" \
  || die "node $host did not become idle: $(sinfo -h -N -o '%N %T %E' 2>&1)"
say "slurm is up: node $host idle"

# Waits for job $1 to leave the queue; every one of its $2 array tasks must have completed.
wait_job() {
  local job=$1 tasks=$2 states
  wait_for 900 bash -c "[ -z \"\$(squeue -h -j '$job' 2>/dev/null)\" ]" \
    || die "job $job still queued or running after 15 minutes: $(squeue -j "$job" 2>&1)"
  states=$(scontrol -o show job "$job" | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | paste -sd' ')
  say "job $job finished: $states"
  [[ "$states" =~ ^\ *$tasks\ JobState=COMPLETED$ ]] \
    || die "not all $tasks tasks of job $job completed: $states"
}

shared="$work/shared"
job=$("$bin" slurm scenarios/ci-smoke.toml --shards 2 --partition debug --time 00:15:00 \
  --out "$shared" --submit) || die "llamaperf slurm --submit failed"
[[ "$job" =~ ^[0-9]+$ ]] || die "llamaperf slurm --submit printed '$job', not a job id"
say "submitted job array $job"
wait_job "$job" 2

shards=("$shared"/"$host"-*)
[ "${#shards[@]}" -eq 2 ] || die "expected 2 shard folders in $shared, found ${shards[*]}"
[ -d "$shared/$host-1" ] && [ -d "$shared/$host-2" ] || die "shard folders are not <host>-<task>"

# A task that died after its first run, submitted again, runs only the run it is missing.
runs="$shared/$host-2/runs.jsonl"
[ "$(wc -l <"$runs")" -eq 2 ] || die "$runs should hold 2 runs"
kept=$(head -n 1 "$runs")
printf '%s\n' "$kept" >"$runs"
job=$(sbatch --parsable --array=2 "$shared/llamaperf-ci-smoke.sbatch") || die "sbatch failed"
job=${job%%;*}
say "resubmitted task 2 as job $job"
wait_job "$job" 1
grep -q "resuming .*: 1 runs already recorded" "$shared/slurm-${job}_2.out" \
  || die "task 2 did not resume its folder: $(cat "$shared/slurm-${job}_2.out")"
[ "$(wc -l <"$runs")" -eq 2 ] && [ "$(head -n 1 "$runs")" = "$kept" ] \
  || die "the resubmitted task did not add exactly the missing run to $runs"

merged="$work/merged"
"$bin" merge "$shared"/*/ --out "$merged" || die "llamaperf merge failed"

# Independent check: every run planned in plan.json is completed exactly once in runs.jsonl.
python3 - "$merged" <<'EOF'
import collections, json, pathlib, sys
d = pathlib.Path(sys.argv[1])
plan = json.loads((d / "plan.json").read_text())
# a runs.jsonl line names its run by its index in the plan
ids = {r["index"]: r["id"] for r in plan["runs"]}
planned = sorted(r["index"] for r in plan["runs"] if r["status"] == "planned")
lines = [json.loads(l) for l in (d / "runs.jsonl").read_text().splitlines()]
done = collections.Counter(l["index"] for l in lines if l["instance"] is None)
bad = [f"{ids[i]}: recorded {done[i]} times" for i in planned if done[i] != 1]
bad += [f"run {i}: recorded but not planned" for i in done if i not in planned]
bad += [f"{ids.get(l['index'], l['index'])}: {l['status']}" for l in lines if l["status"] == "failed"]
if not planned or bad:
    sys.exit("merged results are wrong: " + ("; ".join(bad) or "no planned runs"))
print(f"test-slurm: {len(planned)} planned runs, each recorded exactly once", file=sys.stderr)
EOF
say "ok"
