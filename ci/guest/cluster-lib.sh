# shellcheck shell=bash
# Inside one VM of the two-node cluster (ci/cluster → ci/guest/init →
# ci/guest/cluster-node): what a drill's node functions are built from.
# Source it; do not run it.
#
# The two guests coordinate through files in the run folder's sync/ (a host
# folder both VMs share read-write): `signal NAME` creates sync/NAME (its
# content: a time stamp or a value), `await NAME SECONDS WHAT` waits for it.
# Every wait is bounded and names what did not happen; a node that fails
# writes sync/abort, which ends every wait of the other node at once.
#
# Environment (from ci/cluster): TG_CLUSTER_RUN (the run folder),
# TG_CLUSTER_ROLE (primary|replica), TG_CLUSTER_DRILL, TG_CLUSTER_BIN (the
# tailguard binaries), TG_CLUSTER_BOOT (1, or 2 for a rebooted replica),
# TG_CLUSTER_SEED; from ci/guest/init: TG_RDMA_NETDEV, TG_RDMA_IP.

run=${TG_CLUSTER_RUN:?set by ci/cluster}
role=${TG_CLUSTER_ROLE:?set by ci/cluster}
bin=${TG_CLUSTER_BIN:?set by ci/cluster}
boot=${TG_CLUSTER_BOOT:-1}
seed=${TG_CLUSTER_SEED:-1}
sync=$run/sync
node=$run/$role
cfg=$run/tailguard.yaml
replica_addr=10.78.0.2
replica_port=7471
dax=/dev/dax0.0
py=/usr/bin/python3
[ -x "$py" ] || py=python3
# The host's per-commit output goes to this VM's own /tmp (appending line
# by line to the shared folder is a synchronous 9p write each: too slow to
# keep up with the commits); tg_cleanup copies it to $node at the end.
live=/tmp/tg-$role
mkdir -p "$node" "$live"

# Processes this node started, killed on exit (the VM powers off after,
# but a drill must not depend on that). A file, not a shell array: the
# host's load_runner runs in a background subshell, whose additions to an
# array the main shell's clean-up would never see. Emptied at every boot.
tg_pids=$live/pids
: > "$tg_pids"
# track PID...: kill these on exit.
track() { printf '%s\n' "$@" >> "$tg_pids"; }

now() { printf '%s' "$EPOCHREALTIME"; }
say() { printf '%s %s: %s\n' "$(date +%T.%3N)" "$role" "$*"; }

# signal NAME [VALUE]: creates sync/NAME atomically (VALUE: default the time).
signal() {
  local f=$sync/$1
  printf '%s\n' "${2:-$(now)}" > "$f.$role.tmp" && mv -f "$f.$role.tmp" "$f"
}

# fail MESSAGE: tells the other node (sync/abort) and exits.
fail() {
  say "error: $*"
  [ -e "$sync/abort" ] || signal abort "$role: $*"
  exit 1
}

# mono: sets $now to whole seconds since boot. Every wait's deadline is on
# this clock (/proc/uptime, CLOCK_BOOTTIME), not the wall clock
# (EPOCHSECONDS), which a TCG guest's timekeeping can step forward under
# load: a wait then fails at once although what it waits for is on time
# (issue 13, section 4). No fork: it runs in every poll.
mono() { local up _; read -r up _ < /proc/uptime; now=${up%.*}; }

# await NAME SECONDS WHAT: waits for sync/NAME; fails naming WHAT.
await() {
  local name=$1 secs=$2 what=$3 end now
  mono; end=$(( now + secs ))
  while [ ! -e "$sync/$name" ]; do
    if [ -e "$sync/abort" ]; then
      say "stopping: the other node aborted ($(cat "$sync/abort"))"
      exit 1
    fi
    mono; [ "$now" -lt "$end" ] || [ -e "$sync/$name" ] || fail "$what did not happen within $secs s (no $sync/$name)"
    sleep 0.05
  done
}

# value NAME: the content of sync/NAME.
value() { cat "$sync/$1"; }

# fact KEY VALUE: one figure for the checker (ci/lib/cluster_check.py).
fact() { printf '%s %s\n' "$1" "$2" >> "$node/facts"; }

# stamper OUT: starts the time stamper of OUT and waits until it runs; sets
# stamp_fifo (write the lines to stamp there) and tracks it. Each
# line is prefixed with the time it was read (seconds, this VM's clock); the
# checker compares times from one node only.
#
# The stamper is python3, whose start-up reads dozens of files over the
# VM's shared root filesystem: under TCG on a busy machine it took several
# seconds, and a process whose output went straight into a stamper started
# with it had its first lines (its `pid` line) stamped and seen that much
# later, enough to miss a 10 s bound (the replica-restart drill failed so,
# its `pid` line stamped 7 s after tg-closure had started). So the stamper
# is started first and awaited (ready file), and only then the process.
# It stamps every writer that opens the FIFO, one after another, until it is
# killed at clean-up: the host load's restarts reuse one stamper (see
# start_load) rather than paying python's start-up on every restart, which
# kept the primary busy through a replica's outage (7-12 s from one run's
# exit to the next one's `pid` line in replica-poweroff).
stamper() {
  local out=$1 ready i
  # In the guest's own /tmp: a FIFO on the shared folders may not be possible.
  stamp_fifo=$(mktemp -u "${TMPDIR:-/tmp}/tg-stamp.XXXXXX")
  ready=$stamp_fifo.ready
  mkfifo "$stamp_fifo"
  "$py" -u -c '
import sys, time
open(sys.argv[2], "w").close()  # running: the caller may start the writer
while True:
    with open(sys.argv[1], "rb") as f:
        for line in iter(f.readline, b""):
            sys.stdout.write("%.6f %s" % (time.time(), line.decode(errors="replace")))
            sys.stdout.flush()' "$stamp_fifo" "$ready" >> "$out" &
  track "$!"
  for i in $(seq 1 1200); do
    [ -e "$ready" ] && return 0
    kill -0 "$!" 2>/dev/null || fail "the time stamper ($py) for $out exited at start"
    sleep 0.05
  done
  fail "the time stamper ($py) for $out did not start within 60 s"
}

# check_dax: the devdax device is the size the config's log.size-bytes says
# (ci/cluster sized the namespace; both nodes must agree to the byte).
log_size() { sed -n 's/^  size-bytes: \([0-9]*\).*/\1/p' "$cfg"; }
check_dax() {
  local want have
  want=$(log_size)
  have=$(cat /sys/bus/dax/devices/dax0.0/size 2>/dev/null || echo none)
  [ "$have" = "$want" ] || fail "$dax is $have bytes but log.size-bytes in $cfg is $want: the NVDIMM namespace was not created at the size ci/cluster asked (TG_VM_DAX_SIZE); remove the run folder's NVDIMM files and retry"
}

# wait_listen SECONDS: until tg-replica accepts on its control address.
wait_listen() {
  local end now; mono; end=$(( now + $1 ))
  until (exec 3<>"/dev/tcp/$replica_addr/$replica_port") 2>/dev/null; do
    kill -0 "$replica_pid" 2>/dev/null || fail "tg-replica exited at start: $(tail -n 5 "$node/tg-replica.$boot.log")"
    mono; [ "$now" -lt "$end" ] || fail "tg-replica did not listen on $replica_addr:$replica_port within $1 s (log: $node/tg-replica.$boot.log)"
    sleep 0.1
  done
}

# watch_replica SECONDS: records (facts, this node's clock) when tg-replica's
# control address stops accepting (replica_down_at) and when it accepts
# again (replica_back_at), probing every 50 ms: the primary's own view of an
# outage, on the clock its commits are stamped with. Returns once the
# prober runs (call it before the fault); the prober stops at the first
# accept after an outage, or after SECONDS.
#
# One long-lived python3 process, not a bash probe per attempt: under TCG,
# with the host committing flat out beside it, fork+exec of a probe over
# the 9p root takes longer than the probe's own 1 s bound, so every probe
# "failed" and the replica looked down 40 s after it was back.
watch_replica() {
  local ready i pid
  ready=$(mktemp -u "${TMPDIR:-/tmp}/tg-watch.XXXXXX")
  "$py" -u -c '
import socket, sys, time
addr, port, seconds, facts, ready = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
def fact(name, t):
    with open(facts, "a") as f:
        f.write("%s %.6f\n" % (name, t))
open(ready, "w").close()
end, up = time.time() + seconds, True
while time.time() < end:
    t = time.time()
    try:
        socket.create_connection((addr, port), timeout=1).close()
        if not up:
            fact("replica_back_at", t)
            sys.exit(0)
    except OSError:
        if up:
            up = False
            fact("replica_down_at", t)
    time.sleep(0.05)' "$replica_addr" "$replica_port" "$1" "$node/facts" "$ready" &
  pid=$!
  track "$pid"
  for i in $(seq 1 1200); do
    [ -e "$ready" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "the replica watcher ($py) exited at start"
    sleep 0.05
  done
  fail "the replica watcher ($py) did not start within 60 s"
}

start_replica() {
  "$bin/tg-replica" serve --config "$cfg" 2>> "$node/tg-replica.$boot.log" &
  replica_pid=$!
  track "$replica_pid"
  wait_listen 60
  say "tg-replica serving (pid $replica_pid)"
}

# stop_replica: SIGTERM, bounded wait, then SIGKILL.
stop_replica() {
  [ -n "${replica_pid:-}" ] || return 0
  kill -TERM "$replica_pid" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do kill -0 "$replica_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$replica_pid" 2>/dev/null || true
  wait "$replica_pid" 2>/dev/null || true
  replica_pid=
}

# start_load RECORDS [RATE]: tg-bench load as the host, in the background.
# Its output, time-stamped, goes to $live/load.out: `pid P` first, then
# `committed LSN` per commit, then `exit STATUS`. Sets load_pid.
start_load() {
  local records=$1 rate=${2:-}
  [ -n "${load_fifo:-}" ] || { stamper "$live/load.out"; load_fifo=$stamp_fifo; }
  {
    "$bin/tg-bench" load --quiet --config "$cfg" --records "$records" \
      ${rate:+--rate "$rate"} --seed "$seed" 2>> "$node/load.err" &
    echo "pid $!"
    local rc=0; wait $! || rc=$?
    echo "exit $rc"
  } > "$load_fifo" &
  track "$!"
  local i
  for i in $(seq 1 200); do
    load_pid=$(sed -n 's/^[0-9.]* pid //p' "$live/load.out" 2>/dev/null | tail -n1)
    [ -n "$load_pid" ] && kill -0 "$load_pid" 2>/dev/null && break
    sleep 0.05
  done
  [ -n "$load_pid" ] || fail "tg-bench load did not start within 10 s: $(tail -n 3 "$node/load.err" 2>/dev/null)"
  track "$load_pid"
  say "host load started (pid $load_pid, $records records${rate:+ at $rate/s}, seed $seed)"
}

# load_runner TOTAL RATE RETRY_S: runs the host until TOTAL records are
# committed, starting it again 2 s after each failed run (a commit that
# timed out, a replica not reachable at start), as an application would;
# gives up when runs still fail RETRY_S after the first failure. Ends by
# creating $live/runner.done. Run it in the background; see await_runner.
load_runner() {
  local total=$1 rate=$2 retry_s=$3 n exits rc end give_up="" now
  while :; do
    n=$(grep -c ' committed ' "$live/load.out" 2>/dev/null || true)
    [ "${n:-0}" -lt "$total" ] || break
    exits=$(grep -c ' exit ' "$live/load.out" 2>/dev/null || true)
    start_load $(( total - ${n:-0} )) "$rate"
    mono; end=$(( now + 900 ))
    while [ "$(grep -c ' exit ' "$live/load.out")" -le "${exits:-0}" ]; do
      mono; [ "$now" -lt "$end" ] || fail "a run of the host load did not end within 900 s"
      sleep 0.2
    done
    rc=$(grep ' exit ' "$live/load.out" | tail -n1 | awk '{print $3}')
    [ "$rc" != 0 ] || break
    mono; give_up=${give_up:-$(( now + retry_s ))}
    [ "$now" -lt "$give_up" ] || fail "the host still failed $retry_s s after its first failure: $(tail -n 1 "$node/load.err")"
    say "host exited with status $rc ($(tail -n 1 "$node/load.err")); starting it again in 2 s"
    sleep 2
  done
  touch "$live/runner.done"
}

# await_runner SECONDS: until load_runner is done.
await_runner() {
  local end now; mono; end=$(( now + $1 ))
  while [ ! -e "$live/runner.done" ]; do
    if [ -e "$sync/abort" ]; then say "stopping: $(cat "$sync/abort")"; exit 1; fi
    mono; [ "$now" -lt "$end" ] || [ -e "$live/runner.done" ] || fail "the host did not finish its records within $1 s (last committed: $(committed)); see $node/load.err"
    sleep 0.5
  done
}

# start_closure: tg-closure run --once (exits after its takeover or
# stand-down instead of re-arming), output time-stamped in $live/closure.out
# (`pid P`, `armed {json}`, `takeover {json}` or `stood-down {json}`,
# `exit STATUS`). Sets closure_pid.
start_closure() {
  stamper "$live/closure.out"
  {
    "$bin/tg-closure" run --once --config "$cfg" --wait-host-ms 30000 2>> "$node/closure.err" &
    echo "pid $!"
    local rc=0; wait $! || rc=$?
    echo "exit $rc"
  } > "$stamp_fifo" &
  track "$!"
  closure_pid=$(await_line "$live/closure.out" '^[0-9.]* pid ' 10 "tg-closure start" | awk '{print $3}')
  track "$closure_pid"
}

# await_line FILE REGEX SECONDS WHAT: prints the first line matching REGEX.
# FILE must be in $live (this VM's own /tmp): a file on the shared folder
# is written through 9p, and a poll of it is the other side of a cache.
# It looks once more after the deadline before it fails, and the failure
# shows how the file ended.
await_line() {
  local file=$1 re=$2 secs=$3 what=$4 end line now last=0
  case $file in
    "$live"/*) ;;
    *) fail "await_line $file: poll a file in $live, not on the shared folder (it is copied to $node at exit)" ;;
  esac
  mono; end=$(( now + secs ))
  while :; do
    line=$(grep -m1 -E "$re" "$file" 2>/dev/null || true)
    [ -z "$line" ] || { printf '%s\n' "$line"; return 0; }
    [ "$last" = 0 ] || fail "$what did not happen within $secs s (no line matching '$re' in $file, which ends: $(tail -n 3 "$file" 2>/dev/null | tr '\n' '|'))"
    if [ -e "$sync/abort" ]; then say "stopping: the other node aborted ($(cat "$sync/abort"))"; exit 1; fi
    mono; [ "$now" -lt "$end" ] || last=1
    sleep 0.05
  done
}

# committed: the last LSN the host reported committed (0 if none).
committed() {
  local l
  l=$(tail -n 64 "$live/load.out" 2>/dev/null | grep ' committed ' | tail -n1 | awk '{print $3}')
  echo "${l:-0}"
}

# await_committed N SECONDS: until the host has committed LSN N.
await_committed() {
  local n=$1 secs=$2 end now
  mono; end=$(( now + secs ))
  while [ "$(committed)" -lt "$n" ]; do
    if [ -e "$sync/abort" ]; then say "stopping: the other node aborted ($(cat "$sync/abort"))"; exit 1; fi
    grep -q ' exit ' "$live/load.out" 2>/dev/null && fail "the host load exited before committing LSN $n: $(tail -n 3 "$node/load.err")"
    mono; [ "$now" -lt "$end" ] || [ "$(committed)" -ge "$n" ] || fail "the host did not commit LSN $n within $secs s (last committed: $(committed)); see $node/load.err"
    sleep 0.1
  done
}

# await_exit FILE SECONDS WHAT: until FILE (a stamped output) has its
# `exit` line; prints the status.
await_exit() {
  await_line "$1" '^[0-9.]* exit ' "$2" "$3" | awk '{print $3}'
}

# sample NAME PID: appends `time rss_kib fds` for PID to NAME.samples.
sample() {
  local rss fds
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$2/status" 2>/dev/null) || return 0
  fds=$(ls "/proc/$2/fd" 2>/dev/null | wc -l)
  [ -n "$rss" ] && printf '%s %s %s\n' "$(now)" "$rss" "$fds" >> "$node/$1.samples"
}

# dump_image NAME [--payload]: the records of this node's pmem image, one
# JSON object per line (tg-log dump --jsonl), into $node/NAME.jsonl, and
# its superblock and control block (tg-log stat) into $node/NAME.stat. A
# dump that stops on a damaged record leaves what it read and its error in
# $node/NAME.dump.err: judging that is the checker's job, not a node's.
dump_image() {
  local name=$1; shift
  "$bin/tg-log" stat "$dax" > "$node/$name.stat" 2>&1 || true
  if ! "$bin/tg-log" dump --jsonl "$@" "$dax" > "/tmp/$name.jsonl" 2> "$node/$name.dump.err"; then
    say "tg-log dump $dax failed: $(cat "$node/$name.dump.err")"
  fi
  cp "/tmp/$name.jsonl" "$node/$name.jsonl"
  rm -f "/tmp/$name.jsonl"
  say "dumped $dax: $(wc -l < "$node/$name.jsonl") records → $node/$name.jsonl"
}

# zero_record NAME LSN: overwrites the header of record LSN (as found in
# $node/NAME.jsonl) in this node's devdax with zeros: damage for the
# drills' --break runs. devdax takes no write(2), only aligned mappings.
zero_record() {
  "$py" - "$dax" "$node/$1.jsonl" "$2" "$(log_size)" <<'PYEOF'
import json, mmap, os, sys
dax, dump, lsn, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cap = (size - 4096) // 64 * 64
pos = next(r["pos"] for r in map(json.loads, open(dump)) if r["lsn"] == lsn and r["kind"] == "data")
off = 4096 + pos % cap
fd = os.open(dax, os.O_RDWR)
length = (off + 64 + (2 << 20) - 1) // (2 << 20) * (2 << 20)
m = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[off:off + 64] = bytes(64)
m.close()
print(f"zeroed the header of LSN {lsn} at position {pos} (region offset {off})")
PYEOF
}

# replica_status NAME: tg-replica status --json into $node/NAME.json.
replica_status() {
  "$bin/tg-replica" status --json --config "$cfg" > "$node/$1.json" 2>> "$node/tg-replica.$boot.log" \
    || fail "tg-replica status failed: $(tail -n 3 "$node/tg-replica.$boot.log")"
}

# save_live: copies the live outputs into $node (the run folder).
save_live() { cp -f "$live"/* "$node"/ 2>/dev/null || true; }

tg_cleanup() {
  local rc=$? p
  for p in $(cat "$tg_pids" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  save_live
  if [ "$rc" != 0 ] && [ ! -e "$sync/abort" ]; then signal abort "$role: exited with status $rc"; fi
  exit "$rc"
}
