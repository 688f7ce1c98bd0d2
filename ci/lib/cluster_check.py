#!/usr/bin/env python3
"""Checks one two-node drill (ci/cluster) from what its nodes left behind.

    cluster_check.py --drill NAME --run DIR --result FILE.json [--commit C]
                     [--seed S] [--wall-s N]

Reads, from the drill's run folder: both pmem images as `tg-log dump --jsonl`
(primary/host*.jsonl; replica/replica*.jsonl, with payloads), the host
workload's time-stamped output (primary/load.out: `committed LSN` per
acknowledged commit), the closure's (primary/closure.out), `tg-replica status
--json` (replica/status*.json), each node's figures (primary/facts,
replica/facts) and the soak's samples. Prints one result line and writes the
figures as JSON; exits 1 if a guarantee was broken, 2 if the run left too
little behind to judge (a node failed: see its logs), 3 if it failed or
could not be judged while a VM's kernel said it was starved of CPU (see
`starvation`) and no acknowledged record was lost: a verdict on the
machine, which ci/cluster answers by running the drill once more.

    cluster_check.py --self-test     checks the starvation matcher

"The replica holds the host" means what closure/tests/common/mod.rs
(`assert_replica_holds_host`) means: every record of the host's log from the
replica's head on is in the replica's image at the same position with the
same `tg-log dump` line (LSN, position, epoch, kind, length, CRC over header
and payload). On top, every acknowledged LSN the replica's history covers
must be there as a data record whose payload is the one `tg-bench load`
derived from its LSN and seed (bench/src/load.rs, `payload`).
"""

import argparse
import datetime
import json
import os
import re
import sys

HEADER_LEN = 32
RECORD_ALIGN = 64
RING_OFFSET = 4096
M64 = (1 << 64) - 1
FIELDS = ("lsn", "pos", "epoch", "kind", "len", "crc")

GUARANTEES = {
    "host-sigkill": "host SIGKILL under load (async commit): every record persisted on the primary is on the replica, then the seal",
    "host-hang": "host SIGSTOP (hung): takeover after the heartbeat bound; the resumed stale host is fenced",
    "replica-restart": "replica process SIGKILL + restart under load (sync commit): no acknowledged record lost; the host catches up",
    "link-down": "link down on the primary for 3 s under load (sync commit): commits block, then resume; nothing lost or duplicated",
    "replica-poweroff": "replica VM powered off (qemu killed) and rebooted on its NVDIMM file: recovery by scanning, catch-up, nothing acknowledged lost",
    "soak": "sustained load with the ring wrapping many times: nothing lost; memory and fds of every daemon flat",
}


class Unjudgeable(Exception):
    """The run left too little behind to check anything."""


# What a guest kernel prints when its vCPUs get no host CPU for tens of
# seconds: the soft-lockup watchdog, RCU's stall detector, the hung-task
# detector. Under TCG on a shared 2-core machine this is the host being
# starved (in one CI run, replica-poweroff's rebooted replica VM sat in
# kernel init with "soft lockup - CPU#1 stuck" at 561 s and the drill timed
# out), not anything tailguard does: it runs no kernel code of its own.
STARVED = re.compile(
    r"BUG: soft lockup"
    r"|rcu: INFO: \S+ (self-detected stall|detected stalls)"
    r"|INFO: task \S+ blocked for more than \d+ seconds"
)


def starvation(run):
    """The first starvation line in any of the run's VM consoles, as
    `vm/NAME: line`, or None."""
    vm = os.path.join(run, "vm")
    for name in sorted(os.listdir(vm)) if os.path.isdir(vm) else []:
        console = os.path.join(vm, name, "console.log")
        if not os.path.isfile(console):
            continue
        with open(console, errors="replace") as f:
            for line in f:
                if STARVED.search(line):
                    return f"vm/{name}: {line.strip()}"
    return None


def self_test():
    """The matcher against lines real 6.1 kernels print: starved, and the
    boot lines every TCG guest prints that must not count."""
    starved = [
        "[  561.204100] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [swapper/0:1]",
        "[  120.0] rcu: INFO: rcu_preempt self-detected stall on CPU",
        "[  130.0] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
        "[  242.1] INFO: task kworker/u4:2:57 blocked for more than 120 seconds.",
    ]
    quiet = [
        "[    0.000781] tsc: Marking TSC unstable due to TSCs unsynchronized",
        "[    0.621997] NMI watchdog: Perf NMI watchdog permanently disabled",
        '[    3.296643] Unstable clock detected, switching default tracing clock to "global"',
        "[    0.2] rcu: Hierarchical RCU implementation.",
        "[    0.3] rcu: \tRCU CPU stall warnings timeout set to 21 (rcu_cpu_stall_timeout).",
    ]
    bad = [l for l in starved if not STARVED.search(l)] + [l for l in quiet if STARVED.search(l)]
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "vm", "replica-2"))
        with open(os.path.join(d, "vm", "replica-2", "console.log"), "w") as f:
            f.write("\n".join(quiet + starved[:1]) + "\n")
        found = starvation(d)
        if found != "vm/replica-2: " + starved[0].strip():
            bad.append(f"starvation() found {found!r}")
        os.remove(os.path.join(d, "vm", "replica-2", "console.log"))
        if starvation(d) is not None:
            bad.append("starvation() reported a run without consoles")
    for b in bad:
        print(f"cluster_check self-test: wrong verdict on: {b}")
    print(f"cluster_check self-test: {'FAIL' if bad else 'ok'} ({len(starved) + len(quiet)} lines, 2 runs)")
    return 1 if bad else 0


def record_len(n):
    return (HEADER_LEN + n + RECORD_ALIGN - 1) // RECORD_ALIGN * RECORD_ALIGN


def payload(seed, lsn):
    """bench/src/load.rs `payload(seed, lsn)`, byte for byte."""
    rot = ((seed << 17) | (seed >> 47)) & M64
    x = (((lsn ^ rot) * 0x9E3779B97F4A7C15) & M64) | 1
    n = 16 + (x >> 11) % 1024
    p = bytearray(lsn.to_bytes(8, "little") + seed.to_bytes(8, "little"))
    while len(p) < n:
        x ^= (x << 13) & M64
        x ^= x >> 7
        x ^= (x << 17) & M64
        p.append(x & 0xFF)
    return bytes(p)


class Run:
    def __init__(self, run):
        self.run = run
        self.dump_errors = []
        self.cfg = open(os.path.join(run, "tailguard.yaml")).read()
        size = int(re.search(r"^  size-bytes: (\d+)", self.cfg, re.M).group(1))
        self.capacity = (size - RING_OFFSET) // RECORD_ALIGN * RECORD_ALIGN
        self.heartbeat_timeout_ms = int(re.search(r"heartbeat-timeout-ms: (\d+)", self.cfg).group(1))
        self.heartbeat_interval_ms = int(re.search(r"heartbeat-interval-ms: (\d+)", self.cfg).group(1))
        self.policy = re.search(r"policy: (\w+)", self.cfg).group(1)

    def path(self, *p):
        return os.path.join(self.run, *p)

    def exists(self, *p):
        return os.path.exists(self.path(*p))

    def facts(self, node):
        f = {}
        if self.exists(node, "facts"):
            for line in open(self.path(node, "facts")):
                k, _, v = line.strip().partition(" ")
                f[k] = v
        return f

    def dump(self, node, name):
        p = self.path(node, name + ".jsonl")
        if not os.path.exists(p):
            raise Unjudgeable(f"no dump {p}: the {node} node did not get that far (see {node}/ and vm/*/console.log)")
        err = self.path(node, name + ".dump.err")
        if os.path.exists(err) and open(err).read().strip():
            # A damaged image: what the scan read before the damage is
            # judged like any image (the records past it count as missing).
            self.dump_errors.append(f"tg-log dump of {node}/{name} stopped: {open(err).read().strip()}")
        return [json.loads(l) for l in open(p) if l.strip()]

    def json(self, node, name):
        p = self.path(node, name + ".json")
        if not os.path.exists(p):
            raise Unjudgeable(f"no {p}: the {node} node did not get that far")
        return json.load(open(p))

    def stamped(self, node, name):
        """[(time, text)] of a time-stamped output (ci/guest/cluster-lib.sh `stamp`)."""
        p = self.path(node, name)
        out = []
        if os.path.exists(p):
            for line in open(p, errors="replace"):
                t, _, rest = line.rstrip("\n").partition(" ")
                try:
                    out.append((float(t), rest))
                except ValueError:
                    pass
        return out

    def load(self):
        """The host workload: commits [(t, lsn)], exits [(t, status)], starts."""
        commits, exits, starts = [], [], 0
        for t, l in self.stamped("primary", "load.out"):
            if l.startswith("committed "):
                commits.append((t, int(l.split()[1])))
            elif l.startswith("exit "):
                exits.append((t, int(l.split()[1])))
            elif l.startswith("pid "):
                starts += 1
        return commits, exits, starts

    def closure(self):
        ev = {}
        for t, l in self.stamped("primary", "closure.out"):
            word, _, rest = l.partition(" ")
            if word in ("armed", "takeover", "stood-down"):
                ev[word] = (t, json.loads(rest))
            elif word == "exit":
                ev["exit"] = (t, int(rest))
        return ev

    def samples(self, node, name):
        p = self.path(node, name + ".samples")
        if not os.path.exists(p):
            return []
        return [tuple(float(x) for x in l.split()) for l in open(p) if l.strip()]


class Check:
    def __init__(self, run, drill, seed):
        self.r = run
        self.drill = drill
        self.seed = seed
        self.problems = []
        self.fig = {}

    def need(self, cond, msg):
        if not cond:
            self.problems.append(msg)
        return cond

    # --- the image checks, shared by every drill ---

    def contiguous(self, recs, what):
        """LSNs and positions of an image follow each other with no gap or duplicate."""
        for a, b in zip(recs, recs[1:]):
            if b["pos"] != a["pos"] + record_len(a["len"]):
                return self.need(False, f"{what}: record at {b['pos']} (LSN {b['lsn']}) does not follow the one at {a['pos']} (len {a['len']})")
            want = a["lsn"] if a["kind"] == "padding" else a["lsn"] + 1
            if b["lsn"] != want:
                return self.need(False, f"{what}: LSN {b['lsn']} at {b['pos']} follows LSN {a['lsn']}: a gap or a duplicate")
        return True

    def holds(self, host, replica, what="", upto=None):
        """assert_replica_holds_host: host records from the replica's head on
        (up to position `upto`, default all) are in the replica, same
        position and dump line. Returns how many."""
        w = f" ({what})" if what else ""
        if not self.need(replica, f"the replica's image holds no record{w}"):
            return 0
        first = replica[0]["pos"]
        by_pos = {r["pos"]: r for r in replica}
        n = 0
        missing = []
        for h in host:
            if h["pos"] < first or (upto is not None and h["pos"] >= upto):
                continue
            r = by_pos.get(h["pos"])
            if r is None:
                missing.append(h)
                continue
            n += 1
            diff = [f for f in FIELDS if r[f] != h[f]]
            if diff:
                self.need(False, f"record at {h['pos']} differs{w}: host {[h[f] for f in FIELDS]} vs replica {[r[f] for f in FIELDS]}")
                return n
        if missing:
            m = missing[0]
            self.need(False, f"{len(missing)} host records missing on the replica{w}, the first LSN {m['lsn']} at {m['pos']} "
                             f"(replica holds LSN {replica[0]['lsn']}..{replica[-1]['lsn']})")
        self.need(n > 0 or not host, f"the replica's history and the host's log do not overlap{w}")
        return n

    def acked_present(self, acked, replica, what=""):
        """Every acknowledged LSN the replica's history covers is there as a
        data record with the generator's payload. Returns (checked, lost, oldest)."""
        w = f" ({what})" if what else ""
        data = {r["lsn"]: r for r in replica if r["kind"] == "data"}
        if not data:
            self.need(not acked, f"the replica holds no data record but {len(acked)} were acknowledged{w}")
            return 0, len(acked), None
        oldest = min(data)
        checked, lost, bad = 0, [], []
        for lsn in acked:
            if lsn < oldest:
                continue
            checked += 1
            r = data.get(lsn)
            if r is None:
                lost.append(lsn)
            elif bytes.fromhex(r.get("payload", "")) != payload(self.seed, lsn):
                bad.append(lsn)
        self.need(not lost, f"{len(lost)} acknowledged records missing on the replica{w}: LSN {lost[:5]}{'...' if len(lost) > 5 else ''}")
        self.need(not bad, f"{len(bad)} records on the replica with the wrong payload{w}: LSN {bad[:5]}")
        return checked, len(lost) + len(bad), oldest

    def covers(self, oldest, lsn, what):
        """The replica's history (it keeps a quarter to half a ring) reaches
        back past the fault, so the checks above covered it."""
        self.need(oldest is not None and oldest <= lsn,
                  f"the replica's history starts at LSN {oldest}, after LSN {lsn} committed at {what}: the check did not cover it")

    def acked_increasing(self, commits):
        for (_, a), (_, b) in zip(commits, commits[1:]):
            if b <= a:
                return self.need(False, f"the host reported LSN {b} committed after LSN {a}: a duplicate or reordered acknowledgement")
        return True

    def same_last(self, host, replica):
        if self.need(host and replica, "an image is empty"):
            h, r = host[-1], replica[-1]
            self.need(all(h[f] == r[f] for f in FIELDS),
                      f"the host's log ends at LSN {h['lsn']} ({h['kind']} at {h['pos']}) but the replica's at LSN {r['lsn']} ({r['kind']} at {r['pos']}): the replica did not catch up")

    def closure_stood_down(self, ev):
        if "takeover" in ev:
            self.need(False, f"tg-closure took over although the host was alive: {ev['takeover'][1]}")
        self.need("armed" in ev, "tg-closure never armed (primary/closure.err)")
        self.need("stood-down" in ev, "tg-closure did not stand down when the host finished cleanly (primary/closure.err)")
        self.need(ev.get("exit", (0, None))[1] == 0, f"tg-closure exited with {ev.get('exit', (0, 'no exit line'))[1]}")

    def common(self, host, replica, acked_lsns, upto=None):
        """Contiguity of both images, the replica holds the host, acked
        present: all of them, or with `upto` (async: the replica may
        trail) those the host holds before that position."""
        self.contiguous(host, "host image")
        self.contiguous(replica, "replica image")
        self.fig["host_records"] = sum(1 for h in host if h["kind"] == "data")
        self.fig["on_replica"] = sum(1 for r in replica if r["kind"] == "data")
        self.fig["acked"] = len(acked_lsns)
        self.holds(host, replica, upto=upto)
        if upto is not None:
            behind = {h["lsn"] for h in host if h["kind"] == "data" and h["pos"] < upto}
            first_host = min((h["lsn"] for h in host if h["kind"] == "data"), default=0)
            acked_lsns = [l for l in acked_lsns if l in behind or l < first_host]
        checked, lost, oldest = self.acked_present(acked_lsns, replica)
        self.fig["acked_checked"] = checked
        self.fig["lost"] = lost
        self.fig["replica_oldest_lsn"] = oldest
        return oldest

    def gaps(self, commits):
        """The longest stretch without an acknowledged commit: (seconds, LSN before it, time it began)."""
        best = (0.0, None, None)
        for (t0, l0), (t1, _) in zip(commits, commits[1:]):
            if t1 - t0 > best[0]:
                best = (t1 - t0, l0, t0)
        return best


def tail_records(host, report):
    """Data records past what the replica held when the closure asked: the
    tail the closure shipped."""
    durable = min((d["durable"] for d in report.get("replica_durable", [])), default=None)
    if durable is None:
        return None
    return sum(1 for h in host if h["pos"] >= durable and h["kind"] == "data")


def first_commit_after(commits, t):
    for tc, l in commits:
        if tc >= t:
            return tc, l
    return None, None


def ms(x):
    return round(x * 1000.0, 1)


# --- the drills ---

def host_sigkill(c):
    r = c.r
    f = r.facts("primary")
    host, replica = r.dump("primary", "host"), r.dump("replica", "replica")
    commits, exits, _ = r.load()
    acked = [l for _, l in commits]
    ev = r.closure()
    c.acked_increasing(commits)
    oldest = c.common(host, replica, acked)
    c.covers(oldest, int(f["committed_before_kill"]), "the kill")
    c.same_last(host, replica)
    c.need(host and host[-1]["kind"] == "seal", f"the host's log does not end with a seal (last: {host[-1] if host else None})")
    c.need(replica and replica[-1]["kind"] == "seal", f"the replica's last record is {replica[-1]['kind'] if replica else None}, not a seal")
    if c.need("takeover" in ev, "tg-closure reported no takeover (primary/closure.err)"):
        t, rep = ev["takeover"]
        c.need(rep.get("reason") == "died", f"takeover reason {rep.get('reason')}, expected died")
        if host:
            c.need(host[-1]["lsn"] == rep.get("seal_lsn"), f"the seal's LSN {host[-1]['lsn']} is not the closure's seal_lsn {rep.get('seal_lsn')}")
        st = r.json("replica", "status")
        c.need(st.get("sealed") is True, f"tg-replica status does not say sealed: {st}")
        c.need(st.get("durable_tail") == rep.get("sealed_at"), f"replica durable tail {st.get('durable_tail')} != the closure's sealed_at {rep.get('sealed_at')}")
        killed = float(f["killed_at"])
        c.fig["takeover_ms"] = ms(t - killed)
        c.fig["tail_durable_us"] = rep.get("tail_durable_us")
        c.fig["sealed_us"] = rep.get("sealed_us")
        c.fig["shipped_bytes"] = rep.get("shipped_bytes")
        c.fig["tail_records"] = tail_records(host, rep)
    if acked and host:
        data_max = max((h["lsn"] for h in host if h["kind"] == "data"), default=0)
        c.need(data_max >= acked[-1], f"the host reported LSN {acked[-1]} committed but its log's data ends at {data_max}")
    c.fig["time"] = f"takeover {c.fig.get('takeover_ms')} ms after the kill ({c.fig.get('tail_records')} records shipped by the closure)"


def host_hang(c):
    r = c.r
    f = r.facts("primary")
    commits, exits, _ = r.load()
    ev = r.closure()
    stopped, resumed = float(f["stopped_at"]), float(f.get("resumed_at", "inf"))
    # A stopped host prints nothing: every line read before SIGCONT was a
    # commit made before SIGSTOP (some are read, and stamped, after it).
    before = [l for t, l in commits if t < resumed]
    after = [l for t, l in commits if t >= resumed]
    c.acked_increasing(commits)
    host_t, rep_t = r.dump("primary", "host.takeover"), r.dump("replica", "replica.takeover")
    oldest = c.common(host_t, rep_t, before)
    c.covers(oldest, int(f["committed_before_stop"]), "the SIGSTOP")
    c.same_last(host_t, rep_t)
    c.need(rep_t and rep_t[-1]["kind"] == "seal", "the replica's image at the takeover does not end with a seal")
    st = r.json("replica", "status.takeover")
    c.need(st.get("sealed") is True, f"tg-replica status after the takeover does not say sealed: {st}")
    if c.need("takeover" in ev, "tg-closure reported no takeover (primary/closure.err)"):
        t, rep = ev["takeover"]
        c.need(str(rep.get("reason", "")).startswith("hung"), f"takeover reason {rep.get('reason')}, expected hung")
        waited = t - stopped
        c.fig["takeover_ms"] = ms(waited)
        c.fig["heartbeat_timeout_ms"] = r.heartbeat_timeout_ms
        # The host's last beat may precede the SIGSTOP by up to one beat
        # interval; the closure's own figure is how long the beat was still.
        floor = r.heartbeat_timeout_ms - r.heartbeat_interval_ms
        c.need(waited * 1000 >= floor, f"taken over {ms(waited)} ms after SIGSTOP, before the {r.heartbeat_timeout_ms} ms heartbeat bound "
                                      f"less one {r.heartbeat_interval_ms} ms beat interval")
        still = re.search(r"(\d+) ms without a heartbeat", str(rep.get("reason", "")))
        if still:
            c.fig["heartbeat_still_ms"] = int(still.group(1))
            c.need(int(still.group(1)) >= r.heartbeat_timeout_ms, f"the closure judged the host hung after {still.group(1)} ms without a beat, under the {r.heartbeat_timeout_ms} ms bound")
        c.fig["tail_records"] = tail_records(host_t, rep)
    # Fencing: nothing the resumed host did reached the replica.
    final = r.dump("replica", "replica")
    if len(final) != len(rep_t) or any(a != b for a, b in zip(final, rep_t)):
        diff = next((i for i, (a, b) in enumerate(zip(final, rep_t)) if a != b), min(len(final), len(rep_t)))
        got = final[diff] if diff < len(final) else None
        c.need(False, f"the stale host was not fenced: after SIGCONT the replica's image changed at record {diff} "
                      f"(at the takeover: {rep_t[diff] if diff < len(rep_t) else 'nothing'}; after: {({k: got[k] for k in FIELDS} if got else 'nothing')})")
    st2 = r.json("replica", "status")
    c.need(st2.get("sealed") is True, f"tg-replica status at the end does not say sealed: {st2}")
    resumed_exit = [s for t, s in exits if t >= resumed]
    c.fig["committed_after_resume"] = len(after)
    if c.need(resumed_exit, "the resumed host did not exit (it was given 60 s to report an error)"):
        c.need(resumed_exit[0] != 0, "the resumed host finished without reporting an error")
        c.fig["host_error_after_s"] = round(f_exit_t(exits, resumed) - resumed, 1)
        c.fig["host_error"] = f.get("host_error", "")[:200]
    c.fig["time"] = (f"takeover {c.fig.get('takeover_ms')} ms after SIGSTOP (heartbeat still {c.fig.get('heartbeat_still_ms')} ms, bound {r.heartbeat_timeout_ms} ms); "
                     f"the resumed host was refused and stopped with an error {c.fig.get('host_error_after_s')} s after SIGCONT")


def f_exit_t(exits, after):
    return next(t for t, _ in exits if t >= after)


def restart_like(c, resumed_fact, what, fault_fact):
    """replica-restart and replica-poweroff: sync commits, the host catches up."""
    r = c.r
    f = r.facts("primary")
    host, replica = r.dump("primary", "host"), r.dump("replica", "replica")
    commits, exits, starts = r.load()
    acked = [l for _, l in commits]
    c.acked_increasing(commits)
    oldest = c.common(host, replica, acked)
    c.covers(oldest, int(f[fault_fact]), "the fault")
    c.same_last(host, replica)
    c.need(exits and exits[-1][1] == 0, f"the host load's last run did not finish cleanly (exit {exits[-1][1] if exits else 'none'}): primary/load.err")
    gap, before_gap, gap_at = c.gaps(commits)
    c.fig["stall_s"] = round(gap, 1)
    seen = float(f[resumed_fact])
    if "replica_down_at" in f:
        c.fig["outage_s"] = round(seen - float(f["replica_down_at"]), 1)
    t1, l1 = first_commit_after(commits, seen)
    if c.need(t1 is not None, f"no commit was acknowledged after the replica came back ({what})"):
        c.fig["catch_up_ms"] = ms(t1 - seen)
    c.fig["host_runs"] = starts
    return commits, gap, before_gap, gap_at


def replica_restart(c):
    commits, gap, _, _ = restart_like(c, "replica_back_at", "tg-replica restarted", "committed_at_kill")
    c.closure_stood_down(c.r.closure())
    retried = c.fig["host_runs"] - 1
    c.fig["time"] = (f"commits stalled {c.fig['stall_s']} s (replica unreachable {c.fig.get('outage_s')} s); "
                     f"first commit {c.fig.get('catch_up_ms')} ms after it accepted again"
                     + (f"; the host was started again {retried} times after commits timed out" if retried else ""))


def link_down(c):
    r = c.r
    f = r.facts("primary")
    commits, gap, _, _ = restart_like(c, "up_at", "the link came back", "committed_at_down")
    down, up = float(f["down_at"]), float(f["up_at"])
    grace = 0.2
    during = [l for t, l in commits if down + grace < t < up]
    c.need(not during, f"{len(during)} commits were acknowledged while the link was down (sync commit must block): LSN {during[:5]}")
    c.fig["down_s"] = round(up - down, 1)
    c.need(c.fig["host_runs"] == 1, f"the host load had to be restarted ({c.fig['host_runs']} runs): a commit failed instead of blocking")
    c.closure_stood_down(r.closure())
    c.fig["time"] = f"link down {c.fig['down_s']} s; commits stalled {c.fig['stall_s']} s; first commit {c.fig.get('catch_up_ms')} ms after the link was up"


def replica_poweroff(c):
    r = c.r
    commits, gap, before_gap, gap_at = restart_like(c, "replica_back_at", "the replica VM rebooted", "committed_at_poweroff")
    # Every commit acknowledged before the power-off (= before the longest
    # stall: under sync no commit completes while the replica is down) must
    # be in the image the rebooted replica found by scanning, before any
    # writer reconnected.
    rec = r.dump("replica", "replica.recovered")
    c.contiguous(rec, "recovered replica image")
    pre = [l for t, l in commits if gap_at is not None and t <= gap_at]
    checked, lost, _ = c.acked_present(pre, rec, "recovered by scanning after the power-off")
    c.need(gap >= 5, f"the longest commit stall was {gap:.1f} s: the power-off did not stall the sync host?")
    c.fig["acked_before_poweroff"] = len(pre)
    c.fig["recovered_records"] = sum(1 for x in rec if x["kind"] == "data")
    c.fig["lost"] += lost
    st = r.json("replica", "status.recovered")
    c.fig["recovered_durable_tail"] = st.get("durable_tail")
    c.fig["time"] = (f"replica unreachable {c.fig.get('outage_s')} s, commits stalled {c.fig['stall_s']} s; recovered {c.fig['recovered_records']} records by scanning; "
                     f"first commit {c.fig.get('catch_up_ms')} ms after tg-replica accepted again ({c.fig['host_runs'] - 1} host restarts after failed commits)")


def flat(c, name, samples):
    if not c.need(len(samples) >= 8, f"only {len(samples)} samples of {name}: the soak did not run long enough"):
        return
    t0, t1 = samples[0][0], samples[-1][0]
    base = next(s for s in samples if s[0] >= t0 + (t1 - t0) / 4)
    late = [s for s in samples if s[0] >= t0 + (t1 - t0) / 2]
    rss_max = max(s[1] for s in late)
    fd_max = max(s[2] for s in late)
    c.fig[f"{name}_rss_kib"] = [int(base[1]), int(samples[-1][1])]
    c.fig[f"{name}_fds"] = [int(base[2]), int(samples[-1][2])]
    c.need(rss_max - base[1] <= max(4096, base[1] * 0.10),
           f"{name}'s memory grew from {int(base[1])} KiB (a quarter in) to {int(rss_max)} KiB in the second half")
    c.need(fd_max - base[2] <= 2, f"{name}'s open files grew from {int(base[2])} to {int(fd_max)}")


def soak(c):
    r = c.r
    host, replica = r.dump("primary", "host"), r.dump("replica", "replica")
    commits, exits, starts = r.load()
    acked = [l for _, l in commits]
    c.acked_increasing(commits)
    # Async: the replica may trail the host's last records by max-lag-bytes
    # (the host does not wait for them when it exits); up to the durable
    # tail it reports it must hold everything.
    durable = r.json("replica", "status").get("durable_tail", 0)
    c.common(host, replica, acked, upto=durable)
    max_lag = int(re.search(r"max-lag-bytes: (\d+)", r.cfg).group(1)) if r.policy == "async" else 0
    if host:
        lag = host[-1]["pos"] + record_len(host[-1]["len"]) - durable
        c.fig["lag_at_end_bytes"] = lag
        c.need(0 <= lag <= max_lag, f"the replica's durable tail {durable} is {lag} bytes behind the host's end, more than max-lag-bytes {max_lag}")
    if replica:
        end = replica[-1]["pos"] + record_len(replica[-1]["len"])
        c.need(end == durable, f"the replica's image ends at {end} but it reports {durable} durable")
    c.need(exits and exits[-1][1] == 0 and starts == 1, f"the host load did not run through cleanly (runs {starts}, exit {exits[-1][1] if exits else 'none'})")
    wraps = host[-1]["pos"] // r.capacity if host else 0
    c.fig["ring_mib"] = round(r.capacity / 1048576, 1)
    c.fig["wraps"] = wraps
    c.need(wraps >= 3, f"the ring wrapped only {wraps} times")
    if commits:
        c.fig["records_per_s"] = round(len(commits) / max(commits[-1][0] - commits[0][0], 1e-6), 1)
    for node, name in (("primary", "tg-bench"), ("primary", "tg-closure"), ("replica", "tg-replica")):
        flat(c, name, r.samples(node, name))
    c.closure_stood_down(r.closure())
    c.fig["time"] = (f"{round(commits[-1][0] - commits[0][0]) if commits else 0} s at {c.fig.get('records_per_s')} records/s, ring {c.fig['ring_mib']} MiB wrapped {wraps} times; "
                     f"RSS KiB tg-bench {c.fig.get('tg-bench_rss_kib')}, tg-closure {c.fig.get('tg-closure_rss_kib')}, tg-replica {c.fig.get('tg-replica_rss_kib')}; "
                     f"fds {c.fig.get('tg-bench_fds')}, {c.fig.get('tg-closure_fds')}, {c.fig.get('tg-replica_fds')}")


DRILLS = {
    "host-sigkill": host_sigkill,
    "host-hang": host_hang,
    "replica-restart": replica_restart,
    "link-down": link_down,
    "replica-poweroff": replica_poweroff,
    "soak": soak,
}


def main():
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    ap = argparse.ArgumentParser()
    ap.add_argument("--drill", required=True, choices=sorted(DRILLS))
    ap.add_argument("--run", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wall-s", type=int, default=0)
    a = ap.parse_args()
    c = Check(Run(a.run), a.drill, a.seed)
    status = "PASS"
    abort = os.path.join(a.run, "sync", "abort")
    try:
        if os.path.exists(abort):
            c.problems.append("a node aborted: " + open(abort).read().strip())
        DRILLS[a.drill](c)
    except Unjudgeable as e:
        c.problems.append(str(e))
        status = "ERROR"
    except (KeyError, ValueError, IndexError, StopIteration) as e:
        c.problems.append(f"the run left incomplete figures ({type(e).__name__}: {e}): see {a.run}")
        status = "ERROR"
    c.problems[:0] = c.r.dump_errors
    if c.problems and status == "PASS":
        status = "FAIL"
    starved = starvation(a.run)
    if status != "PASS" and starved and c.fig.get("lost", 0) == 0:
        # Lost records are never the machine's fault: only a drill that lost
        # nothing acknowledged is handed back to be run again.
        c.problems.append(f"the host machine starved the VMs ({starved}): this verdict is about the machine")
        status = "STARVED"
    res = {
        "drill": a.drill,
        "guarantee": GUARANTEES[a.drill],
        "status": status,
        "problems": c.problems,
        "figures": c.fig,
        "commit": a.commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": a.seed,
        "wall_s": a.wall_s,
        "starvation": starved,
    }
    with open(a.result, "w") as out:
        json.dump(res, out, indent=1)
    g = c.fig
    print(f"drill {a.drill}: {status}: acked {g.get('acked', '?')}, on replica {g.get('on_replica', '?')}, "
          f"lost {g.get('lost', '?')}; {g.get('time', '')}; {a.wall_s} s")
    for p in c.problems:
        print(f"  - {p}")
    sys.exit({"PASS": 0, "FAIL": 1, "STARVED": 3}.get(status, 2))


if __name__ == "__main__":
    main()
