# shellcheck shell=bash
# Drill soak: sustained load for several minutes (--soak-seconds, default
# 180) on the smallest ring the emulated NVDIMM allows (a 16 MiB devdax
# namespace: a 14 MiB ring), so the ring wraps many times and both sides
# reclaim behind each other all along.
#
# Guarantee: nothing is lost while the ring wraps (the replica trails by at
# most max-lag-bytes and holds what it has without a hole); memory and
# file descriptors of every daemon stay flat: tg-bench load (the host,
# through ReplicatedLog), tg-closure (armed all along, keep-alives every
# second) and tg-replica.
#
# Set-up: commit async (max lag 256 KiB), host paced at DRILL_SOAK_RATE
# records/s for --soak-seconds; each daemon's RSS (VmRSS) and open fds
# sampled every 5 s. Async because a sync commit across the two TCG VMs is
# a 5-20 ms round trip (tg-bench latency: the raw WRITE+READ on the same QP
# costs the same): about 60 commits/s, 7 minutes per wrap of the ring;
# the async shipper moves about 700 KB/s, a wrap every 20 s.
#
# Checked from the images and samples: every LSN the host committed that
# the replica's history covers (a quarter to half a ring behind its tail)
# is there with its payload; the replica holds the host's log from its head
# up to its own tail, and that tail is within max-lag-bytes of the host's;
# the ring wrapped at least 3 times; for each daemon, RSS in the second half
# of the run never exceeds the sample taken a quarter in by more than
# max(4 MiB, 10%), and its fd count by more than 2; the closure stood down.
#
# Seen to fail when broken on purpose (`--break`: after the soak, one
# record's header in the replica's history zeroed, as a lost write would
# leave it): on 2026-11-25 the check said "6139 host records missing on the
# replica, the first LSN 173862", "6139 acknowledged records missing" and
# "the replica's image ends at 102753728 but it reports 106382592
# durable", with tg-log's "corrupt record at position 102753728 ... before
# the persisted tail". And with a build
# that leaks on purpose (`std::hint::black_box(Box::leak(vec![1u8;
# 64].into_boxed_slice()))` per record in replica/src/replay/mod.rs
# scan_round, run with `ci/cluster --drill soak --bin DIR`): "tg-replica's
# memory grew from 9064 KiB (a quarter in) to 19360 KiB in the second
# half". (A plain `mem::forget(vec![..])` was optimised away: that run
# passed, RSS flat.)

DRILL_COMMIT=async
DRILL_MAX_LAG=262144
DRILL_DAX_MIB=16
DRILL_SOAK_RATE=${DRILL_SOAK_RATE:-1000}
DRILL_TIMEOUT_S=$(( ${TG_CLUSTER_SOAK_S:-${soak_s:-180}} * 2 + 420 ))

sampler() {   # sampler NAME PID: every 5 s until the primary is done
  while [ ! -e "$sync/primary.done" ] && kill -0 "$2" 2>/dev/null; do
    sample "$1" "$2"
    sleep 5
  done
}

drill_primary() {
  local secs=${TG_CLUSTER_SOAK_S:-180}
  start_load $(( secs * DRILL_SOAK_RATE )) "$DRILL_SOAK_RATE"
  start_closure
  await_line "$live/closure.out" '^[0-9.]* armed ' 60 "tg-closure arming" > /dev/null
  sampler tg-bench "$load_pid" &
  track "$!"
  sampler tg-closure "$closure_pid" &
  track "$!"
  local st
  st=$(await_exit "$live/load.out" $(( secs * 2 + 120 )) "the host load finishing its $(( secs * DRILL_SOAK_RATE )) records")
  [ "$st" = 0 ] || fail "the host load failed (exit $st): $(tail -n 2 "$node/load.err")"
  st=$(await_exit "$live/closure.out" 60 "tg-closure standing down after the host finished")
  fact closure_exit "$st"
}

drill_replica() {
  start_replica
  signal replica.ready
  sampler tg-replica "$replica_pid" &
  track "$!"
  await primary.done $(( ${TG_CLUSTER_SOAK_S:-180} * 2 + 300 )) "the primary finishing the soak"
  if [ "${TG_CLUSTER_BREAK:-0}" = 1 ]; then
    # --break: a hole in the replica's history (one record's header zeroed,
    # half-way through what it holds), as a lost write would leave.
    replica_status status
    stop_replica
    "$bin/tg-log" dump --jsonl "$dax" > "$node/before-damage.jsonl"
    zero_record before-damage "$(awk 'NR == int(n / 2) {print}' n="$(wc -l < "$node/before-damage.jsonl")" "$node/before-damage.jsonl" | sed 's/.*"lsn":\([0-9]*\).*/\1/')"
    dump_image replica --payload
    signal replica.done
    return 0
  fi
  replica_finish
}
