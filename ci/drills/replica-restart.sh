# shellcheck shell=bash
# Drill replica-restart: the tg-replica process is killed (SIGKILL) under
# load and started again 2 s later on the same region and epoch file.
#
# Guarantee: under commit sync no acknowledged record is lost: commits wait
# while the replica is down and resume; the host reconnects and catches up
# from the durable tail the restarted replica reports; the closure stays
# armed through it and stands down when the host finishes. (A restart
# usually takes 3-6 s under TCG; should it outlast the 10 s commit
# time-out, the commit fails as the policy says, and the host is started
# again like an application retrying: a figure, not a failure.)
#
# Set-up: commit sync, host paced at 150 records/s for 4500 records (about
# 30 s); the replica is killed once LSN 400 is committed.
#
# Checked from the images: every acknowledged LSN is in the replica's
# image with its payload; the replica holds the host's log record for
# record and ends where the host's ends; acknowledgements never repeat or
# go back; the closure armed, took nothing over and stood down.
#
# Seen to fail when broken on purpose (`--break`: tg-replica is killed
# and not restarted): on 2026-11-25 the primary gave up with "the host
# still failed 60 s after its first failure: tg-bench: replica r0: cannot
# reach 10.78.0.2:7471: Connection refused". (Damage to the replica's
# image while it is down does not break the guarantee: the host re-ships
# from the durable tail the restarted replica reports.)

DRILL_COMMIT=sync
DRILL_DAX_MIB=16
DRILL_TIMEOUT_S=420
DRILL_RATE=50         # records/s asked of the host
DRILL_RECORDS=2000    # 40 s at that rate
DRILL_FAULT_AT=400    # LSN committed when the fault is injected

drill_primary() {
  load_runner "$DRILL_RECORDS" "$DRILL_RATE" 60 &
  track "$!"
  start_closure
  await_line "$live/closure.out" '^[0-9.]* armed ' 60 "tg-closure arming" > /dev/null
  await_committed "$DRILL_FAULT_AT" 120
  fact committed_at_kill "$(committed)"
  watch_replica 120
  signal kill.replica
  await replica.restarted 120 "tg-replica's restart"
  say "replica back; host at LSN $(committed)"
  await_runner 300
  local st
  st=$(await_exit "$live/closure.out" 60 "tg-closure standing down after the host finished")
  fact closure_exit "$st"
}

drill_replica() {
  start_replica
  signal replica.ready
  await kill.replica 300 "the primary reaching LSN $DRILL_FAULT_AT"
  kill -KILL "$replica_pid"
  wait "$replica_pid" 2>/dev/null || true
  fact killed_at "$(now)"
  if [ "${TG_CLUSTER_BREAK:-0}" = 1 ]; then
    say "--break: tg-replica killed and not restarted"
    signal replica.restarted
  else
    say "tg-replica killed (SIGKILL); restarting in 2 s"
    sleep 2
    start_replica
    signal replica.restarted
  fi
  await primary.done 600 "the primary finishing the drill"
  replica_finish
}
