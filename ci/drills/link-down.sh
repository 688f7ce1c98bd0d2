# shellcheck shell=bash
# Drill link-down: the primary's link to the replica goes down for 3 s under
# load (`ip link set IFACE down` on the interface rxe0 sits on, inside the
# primary VM), then comes back.
#
# Guarantee: under commit sync, commits block while the replica cannot be
# reached (none is acknowledged while the link is down) and resume once it
# is back, within the commit time-out (10 s), so none fails; nothing is lost
# or duplicated; the closure stays armed and stands down at the end.
#
# Set-up: commit sync, host paced at 50 records/s for 2000 records (40 s; under
# TCG a sync commit across the two VMs takes 5-20 ms); the
# link goes down once LSN 400 is committed. The link is taken down on the
# primary's side so the down/up times and the commits' times come from one
# clock.
#
# Checked from the images: as replica-restart, plus no commit acknowledged
# between 0.2 s after the link went down and the moment it came back, and
# the first commit after it came back (figure: catch-up).
#
# Seen to fail when broken on purpose (`--break`: commit async, which
# does not wait for the replica): on 2026-11-25 the check said "191
# commits were acknowledged while the link was down (sync commit must
# block): LSN [503, 504, 505, 506, 507]".

DRILL_COMMIT=sync
# --break: commits that do not wait for the replica (async), so they go on
# being acknowledged while the link is down.
[ "${TG_CLUSTER_BREAK:-0}" = 0 ] || DRILL_COMMIT=async
DRILL_DAX_MIB=16
DRILL_TIMEOUT_S=420
DRILL_RATE=50         # records/s asked of the host
DRILL_RECORDS=2000    # 40 s at that rate
DRILL_FAULT_AT=400    # LSN committed when the fault is injected
DRILL_DOWN_S=3

drill_primary() {
  start_load "$DRILL_RECORDS" "$DRILL_RATE"
  start_closure
  await_line "$live/closure.out" '^[0-9.]* armed ' 60 "tg-closure arming" > /dev/null
  await_committed "$DRILL_FAULT_AT" 120
  # The window the checker holds commits to is the one the link was
  # certainly down in: from `ip link set down` returning to just before
  # `ip link set up` starts (under TCG starting `ip` alone takes a second).
  fact committed_at_down "$(committed)"
  ip link set "$TG_RDMA_NETDEV" down || fail "ip link set $TG_RDMA_NETDEV down failed"
  fact down_at "$(now)"
  say "link $TG_RDMA_NETDEV down at LSN $(committed)"
  sleep "$DRILL_DOWN_S"
  fact up_at "$(now)"
  ip link set "$TG_RDMA_NETDEV" up || fail "ip link set $TG_RDMA_NETDEV up failed"
  say "link $TG_RDMA_NETDEV up at LSN $(committed)"
  local st
  st=$(await_exit "$live/load.out" 240 "the host load finishing its $DRILL_RECORDS records")
  [ "$st" = 0 ] || fail "the host load failed (exit $st): $(tail -n 2 "$node/load.err")"
  st=$(await_exit "$live/closure.out" 60 "tg-closure standing down after the host finished")
  fact closure_exit "$st"
}
