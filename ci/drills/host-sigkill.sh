# shellcheck shell=bash
# Drill host-sigkill: the host process is killed (SIGKILL) under load.
#
# Guarantee: every record persisted in the primary's local log reaches the
# replica (the closure ships the tail the replica lacks over its
# pre-established queue pair), followed by the seal of the epoch; the
# replica reports the stream sealed.
#
# Set-up: commit async (max lag 256 KiB) so the replica trails the host and
# the closure has a real tail to ship; the host is paced at 1000 records/s;
# it is killed 1-3 s (from the seed) after the closure armed.
#
# Checked from the images (ci/lib/cluster_check.py): the replica holds every
# record of the host's log from the replica's head on, at the same position
# with the same header and CRC, and payloads matching the workload's
# generator; the host's log and the replica's both end with the same seal;
# every LSN the host reported committed is in both; the closure reported
# `takeover` with reason `died`; `tg-replica status` says sealed at the
# closure's `sealed_at`.
#
# Seen to fail when broken on purpose (`ci/cluster --drill host-sigkill
# --break`: no closure runs, the kill is the same): on 2026-11-25 the
# check said "53 host records missing on the replica, the first LSN 7895
# (replica holds LSN 1..7894)", "53 acknowledged records missing on the
# replica", "the host's log ends at LSN 7947 but the replica's at LSN
# 7894: the replica did not catch up", "the host's log does not end with a
# seal", "the replica's last record is data, not a seal" and "tg-closure
# reported no takeover".

DRILL_COMMIT=async
DRILL_MAX_LAG=262144
DRILL_DAX_MIB=16
DRILL_TIMEOUT_S=420

drill_primary() {
  start_load 1000000 1000
  await_committed 1 60
  if [ "${TG_CLUSTER_BREAK:-0}" = 1 ]; then
    say "--break: no closure (nobody ships the tail or seals)"
    sleep 3
  else
    start_closure
    await_line "$live/closure.out" '^[0-9.]* armed ' 60 "tg-closure arming" > /dev/null
  fi
  local delay_ms=$(( 1000 + (seed * 7919) % 2000 ))
  say "killing the host in $delay_ms ms"
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  fact committed_before_kill "$(committed)"
  fact killed_at "$(now)"
  kill -KILL "$load_pid"
  say "host killed (SIGKILL) at committed LSN $(committed)"
  local st
  if [ "${TG_CLUSTER_BREAK:-0}" = 1 ]; then
    sleep 5
    await_exit "$live/load.out" 10 "the killed host's exit line" > /dev/null
    return 0
  fi
  st=$(await_exit "$live/closure.out" 60 "tg-closure's takeover and exit")
  fact closure_exit "$st"
  [ "$st" = 0 ] || fail "tg-closure exited with status $st: $(tail -n 5 "$node/closure.err")"
  await_exit "$live/load.out" 10 "the killed host's exit line" > /dev/null
  signal takeover.done
}
